"""What every test folder shares: bounded waits, the one result helper, manual time.

Waits here are upper bounds for things that should happen at once, never synchronisation:
a test that needs an order waits for the event itself.
"""
