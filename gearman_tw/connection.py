"""
What connections share: TCP_NODELAY for all of them (the server's too),
and a base protocol for a client's and a worker's connections to a job
server.
"""

from __future__ import annotations

from typing import List, Optional

from twisted.internet.interfaces import ITransport
from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from gearman_tw.protocol import RES, Packet, PacketParser
from gearman_tw.reads import ReadSizer


def setNoDelay(transport: ITransport) -> None:
    """
    Turn TCP_NODELAY on, where the transport has it (TCP and TLS over TCP,
    not UNIX sockets): a small packet must not wait for the reply to the
    last one.
    """
    setTcpNoDelay = getattr(transport, "setTcpNoDelay", None)
    if setTcpNoDelay is not None:
        setTcpNoDelay(True)


class JobServerConnection(Protocol):
    """
    A connection to a job server: requests go out with TCP_NODELAY
    (L{setNoDelay}), responses are parsed as they arrive and handed to
    L{packetReceived} one by one, reads are sized to them (L{ReadSizer}),
    and bad data from the server is logged and closes the connection.

    @ivar parser: this connection's response parser; its C{failure} says why
        it stopped.
    """

    log = Logger()

    def __init__(self) -> None:
        self.parser = PacketParser(magic=RES)
        self._reads: Optional[ReadSizer] = None

    def connectionMade(self) -> None:
        setNoDelay(self.transport)  # type: ignore[arg-type]
        self._reads = ReadSizer.forTransport(self.transport)  # type: ignore[arg-type]

    def receive(self, data: bytes) -> List[Packet]:
        """
        The responses C{data} completes, in order (see
        L{PacketParser.feed}).
        """
        parser = self.parser
        packets = parser.feed(data)
        if self._reads is not None:
            self._reads.received(len(data), parser.pending > 0)
        return packets

    def dataReceived(self, data: bytes) -> None:
        for ptype, args, payload in self.receive(data):
            self.packetReceived(ptype, args, payload)
        failure = self.parser.failure
        if failure is not None:
            self.log.error("Bad data from the job server: {why}", why=failure.text)
            self.transport.loseConnection()  # type: ignore[union-attr]

    def packetReceived(self, ptype: int, args: List[bytes], payload: bytes) -> None:
        """
        One response from the server (see L{PacketParser.feed}); subclasses
        handle the ones they expect.  This one logs it as unexpected.
        """
        self.log.warn("Unexpected packet {ptype} from the job server", ptype=ptype)
