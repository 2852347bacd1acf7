# -*- test-case-name: tests.test_server_writes -*-
"""
Replies sent straight to the socket.

Twisted's TCP transport buffers every C{write} and sends it on the reactor's
next turn, once the socket polls writable: two C{epoll_ctl} calls and a
reactor turn for each reply, most of the cost of a small job.  A job server
writes small replies to sockets that are almost always writable, so
L{connectionSender} sends at once and leaves only what the kernel does not
take to the transport.  While the server handles one read (L{WriteBatch}),
replies to each connection are gathered and sent in one call at its end,
whatever the transport.  Every sender tells the connection's L{OutputFlow}
what it leaves to the transport, which bounds what may wait there.

The socket is the transport's public C{getHandle()}; whether the transport
still holds unsent bytes is learnt from the L{OutputFlow}, the producer
the transport tells when its buffer empties.
"""

from __future__ import annotations

from typing import Callable, List

from twisted.internet import tcp, unix
from twisted.internet.interfaces import ITransport

from gearman_tw.server.flow import OutputFlow

# Transports whose socket L{connectionSender} writes to: plain
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
        Call C{flush} (a connection's L{PacketPeer.flush
        <gearman_tw.server.packets.PacketPeer.flush>}) at the end of the
        batch.
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


class _Sender:
    """
    Sends to a transport through its C{write}, telling the connection's
    L{OutputFlow} what it hands over.
    """

    __slots__ = ("_flow", "_transport")

    def __init__(self, transport: ITransport, flow: OutputFlow) -> None:
        self._transport = transport
        self._flow = flow

    def send(self, data: bytes) -> None:
        self._transport.write(data)
        self._flow.handed(len(data))


class _SocketSender(_Sender):
    """
    Sends straight to a TCP or UNIX server transport's socket: see
    L{connectionSender}.
    """

    __slots__ = ()

    def send(self, data: bytes) -> None:
        t = self._transport  # type: tcp.Server  # type: ignore[assignment]
        flow = self._flow
        if flow.buffered or t.disconnecting or not t.connected:
            t.write(data)
            flow.handed(len(data))
            return
        try:
            sent = t.getHandle().send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            # Let the transport meet the error and close the connection.
            t.write(data)
            return
        if sent < len(data):
            t.write(data[sent:])
            flow.handed(len(data) - sent)


def sendsDirectly(transport: ITransport) -> bool:
    """
    Whether L{connectionWriter} sends straight to C{transport}'s socket:
    its L{OutputFlow} must then register as a pull producer, to hear each
    time the transport's buffer empties.
    """
    return type(transport) in _DIRECT


def connectionSender(transport: ITransport, flow: OutputFlow) -> Callable[[bytes], None]:
    """
    A C{send} for C{transport}.

    For plain TCP and UNIX server transports it sends to the socket at once
    when nothing is waiting in the transport's buffer, and otherwise (or
    after a partial send, or an error) hands the bytes to
    C{transport.write}, so order, back-pressure and error handling stay the
    transport's.  Other transports (TLS, say) get everything through their
    own C{write}.  C{flow} hears of every byte left to the transport.
    """
    if type(transport) in _DIRECT:
        return _SocketSender(transport, flow).send
    return _Sender(transport, flow).send
