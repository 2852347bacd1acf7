"""
Tests for L{gearman_tw.server.service}: listening and stopping.
"""

from typing import List, Tuple

from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError, ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.protocol import PacketType, encode
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.packets import PacketPeer
from gearman_tw.server.protocol import GearmanServerProtocol
from gearman_tw.server.service import CLOSE_TIMEOUT, GearmanService


class RefusingReactor(MemoryReactorClock):
    """
    A memory reactor whose TCP ports are all in use.
    """

    def listenTCP(self, port, factory, backlog=50, interface=""):
        raise CannotListenError(interface, port, OSError("in use"))


def request(ptype: int, *args: bytes) -> bytes:
    return encode(ptype, *args, magic=b"\0REQ")


class ServiceTests(SynchronousTestCase):
    """
    Tests for L{GearmanService}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.server = JobServer(self.reactor, handlePrefix=b"H")
        self.factory = GearmanServerFactory(self.server)
        self.service = GearmanService(
            self.factory,
            [TCP4ServerEndpoint(self.reactor, 4730, interface="127.0.0.1")],
            self.reactor,
            drainTimeout=10,
        )

    def connect(self) -> Tuple[GearmanServerProtocol, StringTransport]:
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        assert protocol is not None
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5000))
        protocol.makeConnection(transport)
        return protocol, transport

    def closeAll(self) -> None:
        """
        Deliver connectionLost to every connection the service closed.
        """
        for protocol in list(self.factory.connections):
            transport = protocol.transport
            assert isinstance(transport, StringTransport)
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionDone()))

    def runningJob(self) -> Tuple[GearmanServerProtocol, StringTransport, GearmanServerProtocol, StringTransport]:
        """
        A client's job held by a worker.
        """
        worker, workerTransport = self.connect()
        client, clientTransport = self.connect()
        worker.dataReceived(request(PacketType.CAN_DO, b"f"))
        client.dataReceived(request(PacketType.SUBMIT_JOB, b"f", b"", b"x"))
        worker.dataReceived(request(PacketType.GRAB_JOB))
        self.assertIn(b"H:1\0f\0x", workerTransport.value())
        return worker, workerTransport, client, clientTransport

    def test_listens(self) -> None:
        """
        Starting the service listens on its endpoints; whenListening fires
        with the ports.
        """
        self.service.startService()
        self.assertEqual(len(self.reactor.tcpServers), 1)
        ports: List[object] = []
        self.service.whenListening().addCallback(ports.extend)
        self.assertEqual(len(ports), 1)

    def test_whenListeningUnstarted(self) -> None:
        """
        whenListening fails on a service that was never started.
        """
        self.failureResultOf(self.service.whenListening(), RuntimeError)

    def test_listenFailureRaises(self) -> None:
        """
        A port in use makes startService raise, so twistd exits instead of
        serving nothing.
        """
        reactor = RefusingReactor()
        service = GearmanService(
            self.factory, [TCP4ServerEndpoint(reactor, 4730)], reactor
        )
        self.assertRaises(CannotListenError, service.startService)
        self.assertFalse(service.running)

    def test_stopWaitsForRunningJobs(self) -> None:
        """
        Stopping waits for running jobs to end, then closes every connection.
        """
        self.service.startService()
        worker, workerTransport, client, clientTransport = self.runningJob()
        stopped = self.service.stopService()
        self.assertNoResult(stopped)
        self.assertFalse(clientTransport.disconnecting)
        worker.dataReceived(request(PacketType.WORK_COMPLETE, b"H:1", b"done"))
        self.assertIn(encode(PacketType.WORK_COMPLETE, b"H:1", b"done"), clientTransport.value())
        self.assertTrue(clientTransport.disconnecting)
        self.assertTrue(workerTransport.disconnecting)
        self.assertNoResult(stopped)
        self.closeAll()
        self.successResultOf(stopped)

    def test_whenStopped(self) -> None:
        """
        whenStopped fires at once for a service that is not running, and
        otherwise (a fresh Deferred per call) once stopService has drained.
        """
        self.successResultOf(self.service.whenStopped())
        self.service.startService()
        worker, _, _, _ = self.runningJob()
        first = self.service.whenStopped()
        stopped = self.service.stopService()
        second = self.service.whenStopped()
        self.assertIsNot(first, second)
        self.assertNoResult(first)
        worker.dataReceived(request(PacketType.WORK_COMPLETE, b"H:1", b"done"))
        self.closeAll()
        self.successResultOf(stopped)
        self.successResultOf(first)
        self.successResultOf(second)
        self.successResultOf(self.service.whenStopped())

    def test_closeTimeout(self) -> None:
        """
        Connections that do not close within the close timeout do not hold
        the stop up for longer.
        """
        self.service.startService()
        _, transport = self.connect()
        stopped = self.service.stopService()
        self.assertTrue(transport.disconnecting)
        self.assertNoResult(stopped)
        self.reactor.advance(CLOSE_TIMEOUT)
        self.successResultOf(stopped)

    def test_stopDrainTimeout(self) -> None:
        """
        A job still running after the drain timeout does not hold the stop
        up for longer.
        """
        self.service.startService()
        _, workerTransport, _, _ = self.runningJob()
        stopped = self.service.stopService()
        self.reactor.advance(9.9)
        self.assertNoResult(stopped)
        self.assertFalse(workerTransport.disconnecting)
        self.reactor.advance(0.1)
        self.assertTrue(workerTransport.disconnecting)
        self.closeAll()
        self.successResultOf(stopped)

    def test_stopIdle(self) -> None:
        """
        With no running job the service stops at once.
        """
        self.service.startService()
        _, transport = self.connect()
        stopped = self.service.stopService()
        self.assertTrue(transport.disconnecting)
        self.closeAll()
        self.successResultOf(stopped)

    def test_stopSendsGatheredWrites(self) -> None:
        """
        Replies gathered for a connection go out before the service closes
        it, even on a transport (TLS) that drops writes made after
        loseConnection.
        """

        class ClosingTransport(StringTransport):
            def write(self, data: bytes) -> None:
                if not self.disconnecting:
                    super().write(data)

        self.service.startService()
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        assert protocol is not None
        transport = ClosingTransport()
        protocol.makeConnection(transport)
        self.factory.writes.begin()
        protocol.peer.write(b"last reply")
        stopped = self.service.stopService()
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"last reply")
        self.closeAll()
        self.successResultOf(stopped)

    def test_gracefulShutdown(self) -> None:
        """
        A graceful shutdown stops the reactor only once no job is queued or
        running, serving open connections meanwhile.
        """
        self.service.startService()
        worker, _, client, clientTransport = self.runningJob()
        client.dataReceived(request(PacketType.SUBMIT_JOB_BG, b"f", b"", b"y"))
        self.service.shutdown(graceful=True)
        self.assertFalse(self.reactor.hasStopped)
        worker.dataReceived(request(PacketType.WORK_COMPLETE, b"H:1", b""))
        worker.dataReceived(request(PacketType.GRAB_JOB))
        self.reactor.advance(1)
        self.assertFalse(self.reactor.hasStopped)
        worker.dataReceived(request(PacketType.WORK_COMPLETE, b"H:2", b""))
        self.reactor.advance(1)
        self.assertTrue(self.reactor.hasStopped)

    def test_immediateShutdown(self) -> None:
        """
        A plain shutdown stops the reactor at the next turn.
        """
        self.reactor.running = True
        self.service.startService()
        self.service.shutdown(graceful=False)
        self.reactor.advance(0)
        self.assertTrue(self.reactor.hasStopped)


class ProcessStateTests(SynchronousTestCase):
    """
    L{GearmanService} changes nothing process-wide, so an application that
    embeds it keeps its own settings.
    """

    def test_untouched(self) -> None:
        """
        Starting, shutting down and stopping the service installs no signal
        handler and changes neither the garbage collector, the C allocator
        nor the switch interval.
        """
        import gc
        import signal
        import sys

        from gearman_tw.server import allocator

        calls: List[str] = []

        def forbidden(name: str):
            def call(*args: object) -> None:
                calls.append(name)

            return call

        self.patch(signal, "signal", forbidden("signal.signal"))
        self.patch(gc, "set_threshold", forbidden("gc.set_threshold"))
        self.patch(gc, "freeze", forbidden("gc.freeze"))
        self.patch(sys, "setswitchinterval", forbidden("sys.setswitchinterval"))
        self.patch(allocator, "keepFreedMemory", forbidden("keepFreedMemory"))
        reactor = MemoryReactorClock()
        factory = GearmanServerFactory(JobServer(reactor))
        gearman = GearmanService(factory, [TCP4ServerEndpoint(reactor, 4730)], reactor)
        gearman.privilegedStartService()
        gearman.startService()
        gearman.shutdown(graceful=True)
        reactor.advance(1)
        self.successResultOf(gearman.stopService())
        self.assertEqual(calls, [])


class LifecycleTests(SynchronousTestCase):
    """
    Privileged listening, graceful shutdown and signals.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.server = JobServer(self.reactor, handlePrefix=b"H")
        self.factory = GearmanServerFactory(self.server)

    def service(self, **kwargs) -> GearmanService:
        return GearmanService(
            self.factory, [TCP4ServerEndpoint(self.reactor, 999)], self.reactor, **kwargs
        )

    def test_privilegedListen(self) -> None:
        """
        The port is bound in privilegedStartService, before twistd drops
        privileges, and not bound again by startService.
        """
        service = self.service()
        service.privilegedStartService()
        self.assertEqual(len(self.reactor.tcpServers), 1)
        service.startService()
        self.assertEqual(len(self.reactor.tcpServers), 1)

    def test_gracefulIgnoresDeadJobs(self) -> None:
        """
        A graceful shutdown does not wait for abandoned or not-yet-due jobs.
        """
        service = self.service()
        service.startService()
        client = PacketPeer(lambda data: None, 1, "127.0.0.1")
        self.server.peerConnected(client)
        self.server.submit(client, b"f", b"", b"abandoned", 1, False)
        self.server.submit(client, b"f", b"", b"later", 1, True, when=10**10)
        self.server.peerLost(client)
        service.shutdown(graceful=True)
        self.reactor.advance(0.2)
        self.assertTrue(self.reactor.hasStopped)
