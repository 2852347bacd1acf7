"""
Tests for L{gearman_tw.server.standby} with a fake lease and clock, and for
the Redis lease and fenced writes against a real redis-server.
"""

from typing import List

from twisted.application.service import Service
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from gearman_tw.errors import QueueError
from gearman_tw.interfaces import ILease
from gearman_tw.protocol import REQ, PacketType, encode
from gearman_tw.queues.redis import RedisLease, RedisQueue
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.standby import RENEW_FRACTION, SAFE_FRACTION, StandbyService
from tests.leasemixin import LeaseContractMixin
from tests.redisserver import RedisServer


@implementer(ILease)
class FakeLease:
    """
    A lease whose answers the test gives: each call waits on a Deferred.
    """

    ttl = 4.0

    def __init__(self) -> None:
        self.calls: List[str] = []
        self.answers: List[Deferred[bool]] = []
        self.released = 0

    def _ask(self, what: str) -> "Deferred[bool]":
        self.calls.append(what)
        d: Deferred[bool] = Deferred()
        self.answers.append(d)
        return d

    def acquire(self) -> "Deferred[bool]":
        return self._ask("acquire")

    def renew(self) -> "Deferred[bool]":
        return self._ask("renew")

    def release(self) -> "Deferred[None]":
        self.released += 1
        return succeed(None)

    def answer(self, held: bool) -> None:
        self.answers.pop(0).callback(held)


class Recording(Service):
    """
    A child service that records whether it was started.
    """

    def __init__(self) -> None:
        self.events: List[str] = []

    def privilegedStartService(self) -> None:
        self.events.append("privileged")

    def startService(self) -> None:
        Service.startService(self)
        self.events.append("start")

    def stopService(self) -> None:  # type: ignore[override]
        Service.stopService(self)
        self.events.append("stop")


class StandbyServiceTests(SynchronousTestCase):
    """
    L{StandbyService} starts its children only while it holds the lease.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.lease = FakeLease()
        self.lost: List[str] = []
        self.standby = StandbyService(self.lease, self.clock, self.lost.append, poll=0.5)
        self.child = Recording()
        self.child.setServiceParent(self.standby)

    def start(self) -> None:
        self.standby.privilegedStartService()
        self.standby.startService()

    def serve(self) -> None:
        self.start()
        self.lease.answer(True)

    def test_waitsWithoutStarting(self) -> None:
        """
        While another server holds the lease, nothing starts; it asks again
        every poll interval.
        """
        self.start()
        self.assertEqual(self.child.events, [])
        self.lease.answer(False)
        self.assertEqual(self.lease.calls, ["acquire"])
        self.clock.advance(0.5)
        self.assertEqual(self.lease.calls, ["acquire", "acquire"])
        self.lease.answer(False)
        self.assertFalse(self.standby.mayServe())
        self.assertEqual(self.child.events, [])

    def test_askFailsThenRetries(self) -> None:
        self.start()
        self.lease.answers.pop(0).errback(QueueError("redis down"))
        self.clock.advance(0.5)
        self.lease.answer(True)
        self.assertEqual(self.child.events, ["privileged", "start"])

    def test_servesOnceTaken(self) -> None:
        """
        Once it holds the lease its children start (privileged first), and
        it may serve until the safe part of the lease's time has passed.
        """
        self.serve()
        self.assertEqual(self.child.events, ["privileged", "start"])
        self.assertTrue(self.standby.mayServe())
        self.assertEqual(self.standby.validUntil, 1000 + 4.0 * SAFE_FRACTION)

    def test_renewedKeepsServing(self) -> None:
        """
        It renews every part of the lease's time; each renewal extends
        from when it was sent.
        """
        self.serve()
        for _ in range(5):
            self.clock.advance(4.0 * RENEW_FRACTION)
            self.assertEqual(self.lease.calls[-1], "renew")
            self.clock.advance(0.2)
            self.lease.answer(True)
        self.assertTrue(self.standby.mayServe())
        self.assertEqual(self.lost, [])

    def test_renewRefused(self) -> None:
        """
        A renewal another server holds the lease against stops it at once.
        """
        self.serve()
        self.clock.advance(1.0)
        self.lease.answer(False)
        self.assertEqual(self.lost, ["another server holds the lease"])
        self.assertFalse(self.standby.mayServe())

    def test_noRenewalInTime(self) -> None:
        """
        A renewal that goes unanswered (a cut network, a paused database)
        stops it when the safe part of the lease's time is over, before the
        lease can pass to another server.
        """
        self.serve()
        self.clock.advance(4.0 * SAFE_FRACTION - 0.01)
        self.assertTrue(self.standby.mayServe())
        self.assertEqual(self.lost, [])
        self.clock.advance(0.01)
        self.assertEqual(len(self.lost), 1)
        self.assertIn("not renewed within 3.2 s", self.lost[0])
        self.assertFalse(self.standby.mayServe())

    def test_pausedProcess(self) -> None:
        """
        A process paused past its lease (SIGSTOP) finds on the first read
        after it resumes, before any timer ran, that it may not serve.
        """
        self.serve()
        # The reactor's clock jumped; no timer has run yet.
        self.clock.rightNow += 60
        self.assertFalse(self.standby.mayServe())
        self.assertEqual(len(self.lost), 1)

    def test_lostOnce(self) -> None:
        self.serve()
        self.clock.advance(1.0)
        self.lease.answer(False)
        self.clock.advance(100)
        self.standby.mayServe()
        self.assertEqual(len(self.lost), 1)

    def test_renewErrorRetried(self) -> None:
        """
        A renewal that fails is tried again; one that then succeeds in time
        keeps it serving.
        """
        self.serve()
        self.clock.advance(1.0)
        self.lease.answers.pop(0).errback(QueueError("timeout"))
        self.clock.advance(1.0)
        self.lease.answer(True)
        self.clock.advance(2.5)
        self.assertTrue(self.standby.mayServe())
        self.assertEqual(self.lost, [])
        self.flushLoggedErrors()

    def test_stopReleases(self) -> None:
        """
        Stopping stops the children, then gives the lease up.
        """
        self.serve()
        self.successResultOf(self.standby.stopService())
        self.assertEqual(self.child.events, ["privileged", "start", "stop"])
        self.assertEqual(self.lease.released, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_queueClosedLast(self) -> None:
        """
        The queue the lease lives in is closed after the children stopped
        and the lease was given up; also by a server that lost the lease
        (its children still stop) and by one that never held it.
        """
        order: List[str] = []
        for served, lose in ((True, False), (True, True), (False, False)):
            order.clear()
            lease = FakeLease()

            def release() -> "Deferred[None]":
                order.append("release")
                return succeed(None)

            lease.release = release  # type: ignore[method-assign]

            def close() -> "Deferred[None]":
                order.append("close")
                return succeed(None)

            standby = StandbyService(lease, self.clock, lambda why: None, closeQueue=close)
            child = Recording()
            child.setServiceParent(standby)
            standby.startService()
            if served:
                lease.answer(True)
            if lose:
                self.clock.advance(lease.ttl)
            self.successResultOf(standby.stopService())
            child.events.append("|")
            expected = ["release", "close"] if served and not lose else ["close"]
            self.assertEqual(order, expected)
            self.assertEqual("stop" in child.events, served)

    def test_stopWhileStandingBy(self) -> None:
        self.start()
        self.successResultOf(self.standby.stopService())
        self.lease.answer(True)
        self.assertEqual(self.child.events, [])
        self.assertEqual(self.lease.released, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class FenceTests(SynchronousTestCase):
    """
    The job server's connections obey the factory's fence.
    """

    def setUp(self) -> None:
        self.allowed = True
        self.factory = GearmanServerFactory(JobServer(Clock()))
        self.factory.fence = lambda: self.allowed

    def test_newConnectionsRefused(self) -> None:
        self.assertIsNotNone(self.factory.buildProtocol(None))
        self.allowed = False
        self.assertIsNone(self.factory.buildProtocol(None))

    def test_readsRefused(self) -> None:
        """
        A read once the fence is down is not handled: the connection closes
        and nothing is submitted.
        """
        protocol = self.factory.buildProtocol(None)
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.allowed = False
        protocol.dataReceived(encode(PacketType.SUBMIT_JOB_BG, b"f", b"", b"x", magic=REQ))
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.factory.server.jobCount(), 0)


class RedisLeaseTests(LeaseContractMixin, TestCase):
    """
    The Redis queue's lease, and its fenced writes, against redis-server.
    """

    timeout = 60
    leaseType = RedisLease
    ttl = 0.3
    expiry = 0.5
    fencedAdd = "redis add: FENCED this server does not hold the lease of the namespace"
    fenced = "does not hold the lease"

    def setUp(self) -> None:
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)

    def makeQueue(self) -> RedisQueue:
        queue = RedisQueue(port=self.redis.port, namespace="ha", reactor=reactor, timeout=5)
        self.addCleanup(queue.close)
        return queue
