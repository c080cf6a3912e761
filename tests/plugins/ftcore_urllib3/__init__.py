"""Internals of the urllib3 HTTP transport (plugins/ftcore_urllib3)."""
