"""
Tests for L{gearman_tw.server.reactor}: Twisted's own reactor test suites
run against L{GearmanReactor}, and what C{twistd gearman} installs.
"""

import socket
from typing import Callable, Dict, List, Type, cast

from twisted.internet.abstract import FileDescriptor
from twisted.internet.test import test_core, test_fdset, test_tcp, test_threads, test_time, test_unix
from twisted.internet.test.reactormixins import ReactorBuilder
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from gearman_tw.server.reactor import GearmanReactor, installIfNone

_REACTOR = "gearman_tw.server.reactor.GearmanReactor"

#: The tests of Twisted's suites that do not apply, and why.
_NOT_APPLICABLE = {
    # By design: events are handled without a log context (the module's
    # docstring); gearman_tw's log events name their connection themselves.
    "test_logPrefix": "GearmanReactor gives events no log context, by design",
    # Skipped for Twisted's EPollReactor too: epoll drops a closed file
    # descriptor from its set without telling anyone.
    "test_lostFileDescriptor": "epoll cannot detect lost file descriptors",
}


def _skipped(reason: str) -> Callable[[SynchronousTestCase], None]:
    def test(self: SynchronousTestCase) -> None:
        raise SkipTest(reason)

    return test


def _forGearmanReactor(name: str, builder: Type[ReactorBuilder]) -> Type[SynchronousTestCase]:
    """
    The test case Twisted's C{builder} makes for L{GearmanReactor}, less the
    tests that do not apply to it, called C{name} (the name it is bound to
    here, so that trial's workers find it).
    """
    attributes: Dict[str, object] = {"_reactors": [_REACTOR], "__module__": __name__}
    for test, reason in _NOT_APPLICABLE.items():
        if hasattr(builder, test):
            attributes[test] = _skipped(reason)
    ours = cast(Type[ReactorBuilder], type(builder.__name__, (builder,), attributes))
    [case] = ours.makeTestCaseClasses().values()
    case.__name__ = case.__qualname__ = name
    return case  # type: ignore[return-value]


FDSetTests = _forGearmanReactor("FDSetTests", test_fdset.ReactorFDSetTestsBuilder)
SystemEventTests = _forGearmanReactor("SystemEventTests", test_core.SystemEventTestsBuilder)
TimeTests = _forGearmanReactor("TimeTests", test_time.TimeTestsBuilder)
ThreadTests = _forGearmanReactor("ThreadTests", test_threads.ThreadTestsBuilder)
TCPClientTests = _forGearmanReactor("TCPClientTests", test_tcp.TCP4ClientTestsBuilder)
TCPPortTests = _forGearmanReactor("TCPPortTests", test_tcp.TCPPortTestsBuilder)
TCPConnectionTests = _forGearmanReactor("TCPConnectionTests", test_tcp.TCPConnectionTestsBuilder)
TCPTransportTests = _forGearmanReactor("TCPTransportTests", test_tcp.TCPTransportTestsBuilder)
UNIXTests = _forGearmanReactor("UNIXTests", test_unix.UNIXTestsBuilder)


class _ErrorOnRead(FileDescriptor):
    """
    A descriptor on one end of a socket pair whose C{doRead} raises.
    """

    def __init__(self, sock: socket.socket, reactor: GearmanReactor) -> None:
        super().__init__(reactor)
        self.sock = sock
        self.reasons: List[Failure] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def doRead(self) -> None:
        raise ZeroDivisionError("bad read")

    def connectionLost(self, reason: Failure) -> None:
        self.reasons.append(reason)
        self.reactor.stop()  # type: ignore[attr-defined]


class GearmanReactorTests(SynchronousTestCase):
    """
    What L{GearmanReactor} does that Twisted's suites do not ask.
    """

    def test_installIfNone(self) -> None:
        """
        With a reactor installed (trial's), nothing is installed.
        """
        from twisted.internet import reactor

        self.assertFalse(installIfNone())
        from twisted.internet import reactor as after

        self.assertIs(after, reactor)

    def test_errorInRead(self) -> None:
        """
        An exception from C{doRead} is logged and the descriptor is
        disconnected with it; the reactor runs on.
        """
        reactor = GearmanReactor()
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        descriptor = _ErrorOnRead(ours, reactor)
        reactor.addReader(descriptor)
        theirs.send(b"x")
        reactor.callLater(5, reactor.stop)
        reactor.run(installSignalHandlers=False)
        [reason] = descriptor.reasons
        self.assertIsInstance(reason.value, ZeroDivisionError)
        self.assertNotIn(descriptor, reactor.getReaders())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
