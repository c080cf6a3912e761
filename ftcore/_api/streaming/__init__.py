"""Streaming responses (API.md §10): sans-IO parsers (text, lines, Server-Sent Events), fed
by the request layer from the body's chunks, whatever the transport."""

from .errors import StreamLimitError
from .lines import LineSplitter
from .sse import SseParser
from .text import TextDecoder

__all__ = ["StreamLimitError", "LineSplitter", "SseParser", "TextDecoder"]
