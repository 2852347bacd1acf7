# -*- test-case-name: tests.test_server_sliced -*-
"""
Long HTTP bodies made and sent a slice per reactor turn, as fast as the
client reads, so that one request for a listing of a large server (the
functions, the workers, C{/metrics}) never stalls everyone else.  The admin
protocol's listings do the same (L{gearman_tw.server.admin.Listing}).
"""

from __future__ import annotations

from typing import Iterable, Iterator, List, Optional, Sequence, TypeVar, Union

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

T = TypeVar("T")

#: Items (functions, workers) made into one slice of a body.
SLICE = 1000

#: Bytes of a body made in one slice, about, for items of any size (see
#: L{bounded}).
SLICE_BYTES = 1 << 20


def slices(items: Sequence[T], size: int = SLICE) -> Iterator[Sequence[T]]:
    """
    C{items} in runs of C{size}.
    """
    for start in range(0, len(items), size):
        yield items[start : start + size]


def bounded(items: Iterable[Iterable[bytes]], size: int = SLICE_BYTES, count: int = SLICE) -> Iterator[bytes]:
    """
    The pieces of C{items} (each an iterable of pieces of bytes, made as
    they are read) joined into chunks: a chunk ends after C{count} items, or
    after the piece that brings it to C{size} bytes, in the middle of an
    item if need be.  So that making a chunk takes bounded work whatever
    the items hold, each item should come in pieces of bounded size.
    """
    run: List[bytes] = []
    length = 0
    done = 0
    for item in items:
        for piece in item:
            run.append(piece)
            length += len(piece)
            if length >= size:
                yield b"".join(run)
                run, length, done = [], 0, 0
        done += 1
        if done >= count:
            if run:
                yield b"".join(run)
            run, length, done = [], 0, 0
    if run:
        yield b"".join(run)


@implementer(IPushProducer)
class SlicedBody:
    """
    Writes the chunks of an iterator to a request, one per reactor turn,
    pausing while the connection's buffer is full, and finishes it.  Making
    a chunk should take a bounded amount of work.
    """

    def __init__(self, request: Request, chunks: Iterator[bytes], clock: IReactorTime) -> None:
        self._request = request
        self._chunks = chunks
        self._clock = clock
        self._call: Optional[IDelayedCall] = None
        self._paused = False
        self._done = False

    def start(self) -> None:
        request = self._request
        request.registerProducer(self, True)
        request.notifyFinish().addErrback(lambda _: self.stopProducing())
        self._schedule()

    def _schedule(self) -> None:
        if self._call is None and not self._paused and not self._done:
            self._call = self._clock.callLater(0, self._step)

    def _step(self) -> None:
        self._call = None
        if self._done or self._paused:
            return
        chunk = next(self._chunks, None)
        if chunk is None:
            self._done = True
            self._request.unregisterProducer()
            self._request.finish()
            return
        if chunk:
            self._request.write(chunk)
        self._schedule()

    def pauseProducing(self) -> None:
        self._paused = True
        if self._call is not None:
            self._call.cancel()
            self._call = None

    def resumeProducing(self) -> None:
        self._paused = False
        self._schedule()

    def stopProducing(self) -> None:
        """
        The request is gone: make nothing more.
        """
        self._done = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


def render(
    request: Request, chunks: Union[Iterator[bytes], List[bytes]], clock: IReactorTime, small: bool
) -> Union[bytes, int]:
    """
    Answer C{request} with the joined C{chunks}: at once when C{small},
    else a chunk per reactor turn (L{SlicedBody}).

    @return: what a resource's C{render} returns.
    """
    if small:
        return b"".join(chunks)
    SlicedBody(request, iter(chunks), clock).start()
    return NOT_DONE_YET
