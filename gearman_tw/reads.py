"""
Read sizes that follow the traffic.

Twisted's TCP and UNIX transports read C{bufferSize} bytes at a time
(C{recv}, or C{recvmsg} for UNIX sockets), 64 KiB by default.  Under PyPy
each such call allocates the whole 64 KiB in the young generation whatever
arrives, so a connection trading small packets fills PyPy's nursery every
few dozen reads and pays a minor collection for it.  L{ReadSizer} reads
small while reads come in small and large once one fills its buffer: bulk
transfers keep large reads, small packets stop costing collections.  Reads
shrink again only after two reads in a row that each completed every
packet, the second one small: not in the middle of a large packet, nor
after each of a run of packets just larger than a small read (which would
then take two reads apiece).
"""

from __future__ import annotations

from typing import Optional

from twisted.internet import tcp, unix
from twisted.internet.interfaces import ITransport

#: Bytes read at a time while reads come in smaller than this.
SMALL_READ = 4096

#: Bytes read at a time once a read filled its buffer (Twisted's default).
LARGE_READ = 65536

# Transports that read C{bufferSize} bytes at a time from their own socket.
_SIZED = (tcp.Server, tcp.Client, unix.Server, unix.Client)


class ReadSizer:
    """
    Sets a transport's read size from how much its last read brought.
    """

    __slots__ = ("_transport", "_partial")

    def __init__(self, transport: ITransport) -> None:
        self._transport = transport
        self._partial = False
        transport.bufferSize = SMALL_READ  # type: ignore[attr-defined]

    @classmethod
    def forTransport(cls, transport: ITransport) -> Optional["ReadSizer"]:
        """
        A sizer for C{transport}, or C{None} when it does not read with a
        C{bufferSize} of its own (TLS, test transports).
        """
        if type(transport) in _SIZED:
            return cls(transport)
        return None

    def received(self, length: int, partial: bool) -> None:
        """
        The transport just read C{length} bytes.

        @param partial: a packet is still arriving after this read.
        """
        transport = self._transport
        size = transport.bufferSize  # type: ignore[attr-defined]
        if length >= size:
            if size != LARGE_READ:
                transport.bufferSize = LARGE_READ  # type: ignore[attr-defined]
        elif length < SMALL_READ and size != SMALL_READ and not partial and not self._partial:
            transport.bufferSize = SMALL_READ  # type: ignore[attr-defined]
        self._partial = partial
