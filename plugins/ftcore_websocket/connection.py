"""The WebSocket connection state machine, sans-IO: bytes in, events out, bytes to write.

How a transport drives it:

    conn.receive_data(chunk)          # b"" when the peer closed the TCP stream (EOF)
    for event in conn.events():       # parsed lazily, one event at a time, so that the echo
        ...                           # of a message leaves before a later frame fails it
        write(conn.send_text("hi"))   # every send returns the bytes to write now
    write(conn.data_to_send())        # automatic replies: pong, close echo, failure close

Outgoing bytes keep the order in which the codec produced them: automatic replies wait in a
queue, every method returning bytes hands over that queue first and then its own bytes, and
`data_to_send()` drains the queue alone. A transport that writes what it is handed, as it is
handed, never reorders the stream. Once `state` is CLOSED the transport writes
`data_to_send()` one last time and closes the socket (a client may first wait for EOF).
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from . import handshake
from .codes import CloseCode
from .deflate import Deflater, DeflateParams, Inflater, negotiate_offer
from .errors import HandshakeError, LocalProtocolError, Misuse, RemoteProtocolError
from .events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    Event,
    HandshakeAccepted,
    HandshakeRejected,
    HandshakeRequest,
    Headers,
    Ping,
    TextMessage,
)
from .frames import (
    BINARY,
    CLOSE,
    FIN,
    MAX_CLOSE_REASON_BYTES,
    MAX_CONTROL_PAYLOAD,
    PING,
    PONG,
    TEXT,
    build_close_payload,
)
from .http_head import HeadReader, parse_head
from .reader import FrameReader
from .writer import FrameWriter

DEFAULT_MAX_MESSAGE_BYTES = 16 * 2**20

HeaderPairs = Iterable[Tuple[str, str]]


class Role(Enum):
    CLIENT = "client"
    SERVER = "server"


class State(IntEnum):
    """The values are the WebSocket API's `readyState` numbers."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2  # we sent a close frame and wait for the peer's
    CLOSED = 3


# Rules: the handshake either opens the connection or ends it. An open connection ends through
# CLOSING when we close first, or at once when the peer closes first (we echo its close), when
# we fail it, or when the stream ends. CLOSED is final.
_TRANSITIONS = {
    State.CONNECTING: (State.OPEN, State.CLOSED),
    State.OPEN: (State.CLOSING, State.CLOSED),
    State.CLOSING: (State.CLOSED,),
    State.CLOSED: (),
}


class Connection:
    """One WebSocket connection, client or server side."""

    def __init__(
        self, role: Union[Role, str], max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ) -> None:
        self.role = Role(role)
        self.max_message_bytes = max_message_bytes
        self.subprotocol: Optional[str] = None  # settled by the handshake
        self.extensions = ""  # the negotiated Sec-WebSocket-Extensions value
        self._state = State.CONNECTING
        self._outgoing: List[bytes] = []
        self._eof = False
        self._head: Optional[HeadReader] = HeadReader()
        self._early = bytearray()  # server: frames that came before accept()
        self._reader: FrameReader  # both exist from the moment the connection is OPEN
        self._writer: FrameWriter
        self._key = ""  # client: the Sec-WebSocket-Key we sent
        self._offered_subprotocols: Tuple[str, ...] = ()
        self._offered_deflate = False
        self._request: Optional[handshake.ClientRequest] = None  # server: waiting for an answer

    @property
    def state(self) -> State:
        return self._state

    # -- opening handshake -----------------------------------------------------------------

    def initiate(
        self,
        host: str,
        target: str = "/",
        headers: HeaderPairs = (),
        subprotocols: Sequence[str] = (),
        deflate: bool = False,
    ) -> bytes:
        """Client: the upgrade request to write. The answer comes as HandshakeAccepted or
        HandshakeRejected; `deflate` offers permessage-deflate with client_max_window_bits."""
        if self.role is not Role.CLIENT or self._key:
            raise LocalProtocolError("initiate() is called once, by a client")
        key = handshake.new_key()
        request = handshake.build_request(host, target, key, headers, subprotocols, deflate)
        self._key = key
        self._offered_subprotocols = tuple(subprotocols)
        self._offered_deflate = deflate
        return request

    def accept(
        self, subprotocol: Optional[str] = None, deflate: bool = True, headers: HeaderPairs = ()
    ) -> bytes:
        """Server: answer the HandshakeRequest with a 101 and open the connection.

        permessage-deflate is accepted when the client offered it and `deflate` is true.
        """
        request = self._pending_request()
        if subprotocol is not None and subprotocol not in request.subprotocols:
            raise LocalProtocolError(
                "subprotocol %r was not offered" % subprotocol, Misuse.SUBPROTOCOL
            )
        negotiated = negotiate_offer(request.extensions) if deflate else None
        extensions, params = negotiated if negotiated else ("", None)
        response = handshake.build_accept(request.key, subprotocol, extensions, headers)
        self._open(subprotocol, extensions, params)
        if self._early:
            self._reader.feed(bytes(self._early))
            self._early = bytearray()
        return self._with_queued(response)

    def reject(self, status_code: int = 400, headers: HeaderPairs = (), body: bytes = b"") -> bytes:
        """Server: refuse the HandshakeRequest; the connection is closed once this returns."""
        self._pending_request()
        response = handshake.build_reject(status_code, headers, body)
        self._transition(State.CLOSED)
        return self._with_queued(response)

    def _pending_request(self) -> handshake.ClientRequest:
        if self._request is None or self._state is not State.CONNECTING:
            raise LocalProtocolError("no handshake request is waiting for an answer")
        return self._request

    def _open(
        self, subprotocol: Optional[str], extensions: str, params: Optional[DeflateParams]
    ) -> None:
        self._transition(State.OPEN)
        self.subprotocol = subprotocol
        self.extensions = extensions
        is_client = self.role is Role.CLIENT
        self._writer = FrameWriter(is_client, Deflater(params) if params else None)
        self._reader = FrameReader(
            not is_client, self.max_message_bytes, Inflater(params) if params else None
        )

    # -- receiving -------------------------------------------------------------------------

    def receive_data(self, data: Union[bytes, memoryview]) -> None:
        """Feed bytes read from the peer; b"" means the peer closed its side (EOF).

        Nothing is parsed yet: iterate `events()` until it runs dry. Data after the
        connection is closed is ignored. A view of a buffer the caller reuses is read in
        place, by `next_event` only: what it keeps is copied before it returns (`reader.py`);
        frames are never parsed after a close.
        """
        state = self._state
        if not data:
            self._eof = True
        elif state is State.OPEN or state is State.CLOSING:
            self._reader.feed(data)
        elif self._head is not None:
            self._head.feed(data)
        elif state is State.CONNECTING:
            self._early += data

    def events(self) -> Iterator[Event]:
        """The events in the data received so far, parsed as the iteration goes."""
        return iter(self.next_event, None)

    def next_event(self) -> Optional[Event]:
        """The next event, or None until more data arrives."""
        state = self._state
        if state is State.OPEN or state is State.CLOSING:
            try:
                event = self._reader.next_event()
            except RemoteProtocolError as exc:
                return self._fail(exc.close_code, exc.reason)
            if event is None:
                if self._eof:
                    return self._fail(
                        CloseCode.ABNORMAL_CLOSURE, "connection closed without a close frame"
                    )
                return None
            kind = type(event)
            if kind is TextMessage or kind is BinaryMessage:
                return event
            if isinstance(event, Ping):
                if state is State.OPEN:
                    self._outgoing.append(self._writer.frame(FIN | PONG, event.payload))
            elif isinstance(event, CloseReceived):
                self._on_close_received(event.code)
            return event
        if state is State.CONNECTING:
            return self._next_handshake_event()
        return None

    def _on_close_received(self, code: int) -> None:
        if self._state is State.OPEN:  # the peer closes first: echo its code
            payload = build_close_payload(None if code == CloseCode.NO_STATUS_RCVD else code)
            self._outgoing.append(self._writer.frame(FIN | CLOSE, payload))
        self._transition(State.CLOSED)

    def _fail(self, code: CloseCode, reason: str) -> ConnectionFailed:
        """End the connection because of the peer, queueing our close frame if still due."""
        if self._state is State.OPEN and code != CloseCode.ABNORMAL_CLOSURE:
            short = reason.encode("utf-8")[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")
            self._outgoing.append(self._writer.frame(FIN | CLOSE, build_close_payload(code, short)))
        self._transition(State.CLOSED)
        return ConnectionFailed(int(code), reason)

    def _next_handshake_event(self) -> Optional[Event]:
        if self._head is None:  # server: the request waits for accept() or reject()
            if self._eof:
                closed = HandshakeError("connection closed during the handshake")
                return self._handshake_failed(closed, None, ())
            return None
        status: Optional[int] = None
        headers: Headers = ()
        try:
            found = self._head.take_head()
            if found is None:
                if self._eof:
                    raise HandshakeError("connection closed during the handshake")
                return None
            head, rest = found
            self._head = None
            start_line, headers = parse_head(head)
            if self.role is Role.SERVER:
                return self._handshake_request(start_line, headers, rest)
            status = handshake.parse_status_line(start_line)
            return self._handshake_response(status, headers, rest)
        except HandshakeError as exc:
            return self._handshake_failed(exc, status, headers)

    def _handshake_response(self, status: int, headers: Headers, rest: bytes) -> HandshakeAccepted:
        outcome = handshake.check_response(
            status, headers, self._key, self._offered_subprotocols, self._offered_deflate
        )
        self._open(outcome.subprotocol, outcome.extensions, outcome.deflate)
        if rest:
            self._reader.feed(rest)
        return HandshakeAccepted(headers, outcome.subprotocol, outcome.extensions)

    def _handshake_request(
        self, request_line: str, headers: Headers, rest: bytes
    ) -> HandshakeRequest:
        request = handshake.check_request(request_line, headers)
        self._request = request
        self._early += rest
        return HandshakeRequest(request.target, headers, request.subprotocols, request.extensions)

    def _handshake_failed(
        self, exc: HandshakeError, status: Optional[int], headers: Headers
    ) -> HandshakeRejected:
        self._head = None
        if self.role is Role.SERVER and not self._eof:
            status = exc.status_code
            self._outgoing.append(handshake.build_reject(status))
        self._transition(State.CLOSED)
        return HandshakeRejected(status, headers, exc.reason)

    # -- sending ---------------------------------------------------------------------------

    def send_text(self, data: str) -> bytes:
        """A text message, in one frame."""
        if self._state is not State.OPEN:
            raise LocalProtocolError("cannot send in state %s" % self._state.name)
        frame = self._writer.message(TEXT, data.encode("utf-8"))
        return self._with_queued(frame) if self._outgoing else frame

    def send_binary(self, data: bytes) -> bytes:
        """A binary message, in one frame."""
        if self._state is not State.OPEN:
            raise LocalProtocolError("cannot send in state %s" % self._state.name)
        frame = self._writer.message(BINARY, data)
        return self._with_queued(frame) if self._outgoing else frame

    def send_ping(self, payload: bytes = b"") -> bytes:
        """A ping (at most 125 bytes); the peer's answer arrives as a Pong event."""
        if self._state is not State.OPEN:
            raise LocalProtocolError("cannot send in state %s" % self._state.name)
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise LocalProtocolError("ping payload longer than 125 bytes", Misuse.PING)
        return self._with_queued(self._writer.frame(FIN | PING, payload))

    def close(self, code: Optional[int] = CloseCode.NORMAL_CLOSURE, reason: str = "") -> bytes:
        """Start the closing handshake; the peer's answer arrives as CloseReceived.

        `code=None` sends a close frame without a code.
        """
        if self._state is not State.OPEN:
            raise LocalProtocolError("cannot close in state %s" % self._state.name)
        payload = build_close_payload(code, reason)
        self._transition(State.CLOSING)
        return self._with_queued(self._writer.frame(FIN | CLOSE, payload))

    def data_to_send(self) -> bytes:
        """The automatic replies produced while reading (pongs, close frames, a rejection)."""
        return self._with_queued(b"")

    def _with_queued(self, data: bytes) -> bytes:
        if not self._outgoing:
            return data
        self._outgoing.append(data)
        out = b"".join(self._outgoing)
        self._outgoing = []
        return out

    def _transition(self, new: State) -> None:
        if new not in _TRANSITIONS[self._state]:
            raise LocalProtocolError("no transition from %s to %s" % (self._state.name, new.name))
        self._state = new
