# -*- test-case-name: tests.test_server_writes -*-
"""
Replies sent straight to the socket.

Twisted's TCP transport buffers every C{write} and sends it on the reactor's
next turn, once the socket polls writable: two C{epoll_ctl} calls and a
reactor turn for each reply, most of the cost of a small job.  A job server
writes small replies to sockets that are almost always writable, so
L{socketWriter} sends at once and leaves only what the kernel does not take
to the transport.  While the server handles one read (L{WriteBatch}),
replies to each connection are gathered and sent in one call at its end.
"""

from __future__ import annotations

from typing import Callable, List

from twisted.internet import tcp, unix
from twisted.internet.interfaces import ITransport

# Transports whose buffers and socket L{socketWriter} understands: plain
# TCP and UNIX stream servers (not TLS, which wraps them, nor subclasses).
_DIRECT = (tcp.Server, unix.Server)


class WriteBatch:
    """
    Writes made while the server handles one read, sent when it ends.

    @ivar active: writes are being gathered.
    """

    __slots__ = ("active", "_flushes")

    def __init__(self) -> None:
        self.active = False
        self._flushes: List[Callable[[], None]] = []

    def begin(self) -> None:
        """
        Gather writes until L{flush}.
        """
        self.active = True

    def defer(self, flush: Callable[[], None]) -> None:
        """
        Call C{flush} (a connection's sender) at the end of the batch.
        """
        self._flushes.append(flush)

    def flush(self) -> None:
        """
        Send everything gathered since L{begin}, one call per connection.
        """
        self.active = False
        flushes = self._flushes
        if flushes:
            self._flushes = []
            for flush in flushes:
                flush()


def socketWriter(transport: ITransport, batch: WriteBatch) -> Callable[[bytes], None]:
    """
    A C{write} for C{transport} that sends to its socket at once when
    nothing is waiting in the transport's buffer, and otherwise (or after a
    partial send, or an error) hands the bytes to C{transport.write}, so
    order, back-pressure and error handling stay the transport's.

    Other transports get their own C{write}.
    """
    if type(transport) not in _DIRECT:
        return transport.write
    t = transport  # type: tcp.Server
    write = t.write
    pending: List[bytes] = []

    def sendNow(data: bytes) -> None:
        if t._tempDataLen or t.dataBuffer or t.disconnecting or not t.connected:
            write(data)
            return
        try:
            sent = t.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            # Let the transport meet the error and close the connection.
            write(data)
            return
        if sent < len(data):
            write(data[sent:])

    def flush() -> None:
        data = b"".join(pending) if len(pending) > 1 else pending[0]
        pending.clear()
        sendNow(data)

    def writeNow(data: bytes) -> None:
        if pending:
            pending.append(data)
        elif batch.active:
            pending.append(data)
            batch.defer(flush)
        else:
            sendNow(data)

    return writeNow
