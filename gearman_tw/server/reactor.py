# -*- test-case-name: tests.test_server_reactor -*-
"""
An epoll reactor that dispatches each event with a plain call.

Twisted's reactors wrap every read and write event in a log context
(C{callWithLogger}: eight Python calls) so that legacy log lines name the
connection they came from.  A job server handles one small read per
packet it is sent, and that wrapping was about a fifth of its CPU time on
a stream of small jobs.  L{GearmanReactor} is Twisted's
L{PosixReactorBase} (timers, threads, signals, TCP, UNIX and TLS) with its
own epoll registry and dispatch, built only on Twisted's public
interfaces; log events say which connection they are about themselves, as
gearman_tw's do.

C{twistd gearman} installs it unless a reactor was chosen (C{twistd
--reactor=...}) or installed already; C{twistd --reactor=gearman} selects
it for any twistd plugin.  It runs on Linux (epoll) only.
"""

from __future__ import annotations

import select
import sys
from typing import Dict, List, Optional, Union

from twisted.internet import error
from twisted.internet.interfaces import IHalfCloseableDescriptor, IReactorFDSet, IReadDescriptor, IWriteDescriptor
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST, installReactor
from twisted.internet.posixbase import PosixReactorBase
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

# epoll's event bits (Linux's values, for importing the module elsewhere).
_IN = getattr(select, "EPOLLIN", 1)
_OUT = getattr(select, "EPOLLOUT", 4)
_GONE = getattr(select, "EPOLLHUP", 16) | getattr(select, "EPOLLERR", 8)

Descriptor = Union[IReadDescriptor, IWriteDescriptor]


@implementer(IReactorFDSet)
class GearmanReactor(PosixReactorBase):
    """
    A reactor on epoll(7) whose events call C{doRead} and C{doWrite}
    directly, without a log context around each.

    @ivar _epoll: the epoll object.
    @ivar _registered: what is registered with C{_epoll}, by file
        descriptor.
    @ivar _readers: descriptors watched for reading, with the file
        descriptor they were added with (a closed one no longer knows it).
    @ivar _writers: likewise for writing.
    """

    log = Logger()

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._registered: Dict[int, Descriptor] = {}
        self._readers: Dict[IReadDescriptor, int] = {}
        self._writers: Dict[IWriteDescriptor, int] = {}
        super().__init__()

    # IReactorFDSet

    def addReader(self, reader: IReadDescriptor) -> None:
        if reader not in self._readers:
            fd = reader.fileno()
            self._readers[reader] = fd
            self._watch(reader, fd)

    def addWriter(self, writer: IWriteDescriptor) -> None:
        if writer not in self._writers:
            fd = writer.fileno()
            self._writers[writer] = fd
            self._watch(writer, fd)

    def removeReader(self, reader: IReadDescriptor) -> None:
        fd = self._readers.pop(reader, None)
        if fd is not None:
            self._watch(reader, fd)

    def removeWriter(self, writer: IWriteDescriptor) -> None:
        fd = self._writers.pop(writer, None)
        if fd is not None:
            self._watch(writer, fd)

    def removeAll(self) -> List[Descriptor]:
        waker = getattr(self, "waker", None)
        every: List[Descriptor] = [*self._readers, *self._writers]
        removed = [d for d in dict.fromkeys(every) if d is not waker]
        for descriptor in removed:
            self.removeReader(descriptor)  # type: ignore[arg-type]
            self.removeWriter(descriptor)  # type: ignore[arg-type]
        return removed

    def getReaders(self) -> List[IReadDescriptor]:
        return list(self._readers)

    def getWriters(self) -> List[IWriteDescriptor]:
        return list(self._writers)

    def _watch(self, descriptor: Descriptor, fd: int) -> None:
        """
        Make C{_epoll} watch C{fd} for what C{descriptor} is now added for.
        """
        mask = (_IN if descriptor in self._readers else 0) | (_OUT if descriptor in self._writers else 0)
        current = self._registered.get(fd)
        if current is not None and current is not descriptor:
            # A descriptor that closed without being removed left its
            # number to this one.
            self._forget(fd)
            current = None
        if not mask:
            if current is not None:
                self._forget(fd)
        elif current is None:
            self._epoll.register(fd, mask)
            self._registered[fd] = descriptor
        else:
            self._epoll.modify(fd, mask)

    def _forget(self, fd: int) -> None:
        del self._registered[fd]
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            # Already closed: the kernel dropped it from the set.
            pass

    # The loop

    def doIteration(self, timeout: Optional[float]) -> None:
        """
        Wait up to C{timeout} seconds (for ever if C{None}) for events, and
        handle each.
        """
        try:
            events = self._epoll.poll(-1 if timeout is None else timeout, max(len(self._registered), 1))
        except InterruptedError:
            return
        registered = self._registered
        for fd, event in events:
            # Looked up for each event: an earlier one may have closed it.
            descriptor = registered.get(fd)
            if descriptor is not None:
                self._dispatch(descriptor, fd, event)

    def _dispatch(self, descriptor: Descriptor, fd: int, event: int) -> None:
        """
        Call C{descriptor}'s C{doRead} or C{doWrite} for C{event}, and
        disconnect it if that says it is done or raises.
        """
        why: Optional[BaseException] = None
        inRead = False
        try:
            if event & _GONE and not event & _IN:
                # Hung up, all input read: done if it was reading (perhaps a
                # half-close), lost if it was only writing.
                inRead = descriptor in self._readers
                why = CONNECTION_DONE if inRead else CONNECTION_LOST
            elif descriptor.fileno() == -1:
                why = error.ConnectionFdescWentAway("File descriptor lost")
            else:
                if event & _IN:
                    why = descriptor.doRead()  # type: ignore[union-attr]
                    inRead = True
                if not why and event & _OUT and descriptor in self._writers:
                    why = descriptor.doWrite()  # type: ignore[union-attr]
                    inRead = False
        except BaseException as e:
            why = e
            self.log.failure("Unhandled error handling {descriptor!r}", descriptor=descriptor)
        if why:
            self._disconnect(descriptor, why, inRead)

    def _disconnect(self, descriptor: Descriptor, why: BaseException, inRead: bool) -> None:
        """
        Stop watching C{descriptor} and tell it why: a half-closeable
        descriptor whose peer finished sending only stops reading.
        """
        self.removeReader(descriptor)  # type: ignore[arg-type]
        if inRead and isinstance(why, error.ConnectionDone) and IHalfCloseableDescriptor.providedBy(descriptor):
            descriptor.readConnectionLost(Failure(why))  # type: ignore[union-attr]
            return
        self.removeWriter(descriptor)  # type: ignore[arg-type]
        descriptor.connectionLost(Failure(why))


def install() -> GearmanReactor:
    """
    Install a L{GearmanReactor} as Twisted's global reactor.

    @raise twisted.internet.error.ReactorAlreadyInstalledError: one is
        installed already.
    """
    reactor = GearmanReactor()
    installReactor(reactor)
    return reactor


def installIfNone() -> bool:
    """
    Install a L{GearmanReactor} unless a reactor is installed already (chosen
    with C{twistd --reactor}, or imported by some module).

    @return: whether it was installed (never without epoll: off Linux).
    """
    if "twisted.internet.reactor" in sys.modules or not hasattr(select, "epoll"):
        return False
    install()
    return True


__all__ = ["GearmanReactor", "install", "installIfNone"]
