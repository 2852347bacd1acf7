# -*- test-case-name: tests.test_server_flow -*-
"""
What one connection may make the server hold: its replies not yet sent
(L{OutputFlow}) and the large packets it has begun to send (L{InputBudget},
shared by every connection).

Both stop a peer by no longer reading from it, so its own socket buffers
fill and it waits; nothing it sent is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict

from twisted.internet.interfaces import IPushProducer, ITransport
from zope.interface import implementer

if TYPE_CHECKING:
    from gearman_tw.server.protocol import GearmanServerProtocol

#: Default bound on a connection's unsent replies (C{--max-output-buffer}).
DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024

#: Default bound on the memory of large packets still arriving, all
#: connections together (C{--max-input-buffer}).
DEFAULT_MAX_INPUT = 256 * 1024 * 1024

#: A connection holding at most this many bytes of an unfinished packet
#: needs no share of the L{InputBudget}: a couple of reads' worth.
FREE_INPUT = 128 * 1024


@implementer(IPushProducer)
class OutputFlow:
    """
    How much a connection's transport holds unsent, learnt through the
    transport's producer interface (C{registerProducer}).

    On plain TCP and UNIX server transports it registers as a pull producer:
    the transport then calls L{resumeProducing} each time it has sent all it
    held, so L{buffered} says exactly whether anything waits there.  On any
    other transport (TLS) it registers as a push producer: the transport
    calls L{pauseProducing} once it holds more than its own buffer size and
    L{resumeProducing} once that is sent, and bytes are counted in between.

    @ivar limit: unsent bytes past which L{full} is set and the owner told
        (0: no limit).
    @ivar buffered: the transport may hold bytes not yet sent.
    @ivar backlog: bytes handed to the transport since it last had nothing
        to send (from the moment it paused us, on a push registration).
    @ivar full: L{backlog} passed L{limit}; the owner has been told and is
        told again when it is all sent.
    """

    __slots__ = (
        "limit",
        "buffered",
        "backlog",
        "full",
        "_counting",
        "_streaming",
        "_transport",
        "_onFull",
        "_onDrained",
    )

    def __init__(
        self,
        transport: ITransport,
        limit: int,
        onFull: Callable[[], None],
        onDrained: Callable[[], None],
        streaming: bool,
    ) -> None:
        self.limit = limit
        self.buffered = False
        self.backlog = 0
        self.full = False
        self._streaming = streaming
        self._counting = not streaming
        self._transport = transport
        self._onFull = onFull
        self._onDrained = onDrained
        transport.registerProducer(self, streaming)  # type: ignore[attr-defined]

    def handed(self, size: int) -> None:
        """
        C{size} bytes were given to the transport's C{write}.
        """
        self.buffered = True
        if self._counting:
            self.backlog += size
            if self.limit and self.backlog > self.limit and not self.full:
                self.full = True
                self._onFull()

    def detach(self) -> None:
        """
        Stop watching the transport; call before C{loseConnection}, which
        otherwise waits for the producer to go.
        """
        transport, self._transport = self._transport, None  # type: ignore[assignment]
        if transport is not None:
            transport.unregisterProducer()  # type: ignore[attr-defined]

    # IPushProducer (and IPullProducer's resumeProducing)

    def pauseProducing(self) -> None:
        """
        The transport holds more than its buffer size: count from here.
        """
        self._counting = True

    def resumeProducing(self) -> None:
        """
        The transport has sent everything it held.
        """
        self.buffered = False
        self.backlog = 0
        if self._streaming:
            self._counting = False
        if self.full:
            self.full = False
            self._onDrained()

    def stopProducing(self) -> None:
        """
        The connection is gone; its protocol hears of it from the transport.
        """


class InputBudget:
    """
    Memory for packets larger than L{FREE_INPUT} while they arrive, shared
    by every connection of a server.

    A connection reserves the size of the packet it has begun (its header
    says it) before it may read on.  Reservations are granted first come,
    first served; a connection whose reservation does not fit waits with
    reading paused until earlier ones are released.  A granted reservation
    is never taken back, so the packets being read always complete, and one
    packet larger than the whole budget is granted when nothing else is
    reserved: memory held stays below C{limit} plus one packet.

    @ivar limit: bytes that may be reserved at once (0: no limit).
    @ivar used: bytes reserved now.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiting: Dict["GearmanServerProtocol", int] = {}

    def reserve(self, who: "GearmanServerProtocol", size: int) -> bool:
        """
        Reserve C{size} bytes for C{who} now, or queue the request and
        return C{False}: C{who.inputGranted(size)} is called when it is
        granted.
        """
        if not self._waiting and self._fits(size):
            self.used += size
            return True
        self._waiting[who] = size
        return False

    def release(self, who: "GearmanServerProtocol", size: int) -> None:
        """
        Give back a granted reservation, or withdraw C{who}'s queued request
        (C{size} 0).
        """
        if size:
            self.used -= size
        else:
            self._waiting.pop(who, None)
        while self._waiting:
            who, size = next(iter(self._waiting.items()))
            if not self._fits(size):
                break
            del self._waiting[who]
            self.used += size
            who.inputGranted(size)

    @property
    def waiting(self) -> int:
        """
        Connections waiting for a reservation.
        """
        return len(self._waiting)

    def _fits(self, size: int) -> bool:
        return not self.limit or not self.used or self.used + size <= self.limit
