"""Tests of one plugin's internals, one folder per plugin (behaviour through the API lives in
the folders named by API: tests/http, tests/websocket, ...)."""
