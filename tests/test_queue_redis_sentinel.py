"""
Tests for the Redis queue behind Redis Sentinel (C{redis+sentinel://}),
against real redis-server and redis-sentinel processes
(L{tests.sentinelserver}): the shared queue contract and the standby lease
over a Sentinel-managed master, failovers (kill -9 of the master), the
replicas every add waits for, and the URL.
"""

import signal
import time
from typing import Any, List

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

import tests.test_server_standby as standby
from gearman_tw.errors import QueueError
from gearman_tw.queues import queueFromURL
from gearman_tw.queues.redis import DEFAULT_REPLICA_TIMEOUT, DEFAULT_TIMEOUT, RedisQueue
from tests.integration.servers import freePort
from tests.sentinelserver import SERVICE, SentinelCluster
from tests.test_queues import PersistentQueueMixin, job, sleep

log = Logger()

#: For queues whose writes should succeed: time enough for a replica on a
#: loaded machine (the tests share it with others).
PATIENT = dict(timeout=10, replica_timeout=3)


def waitCalls(node: Any) -> int:
    """
    How many WAIT commands the Redis C{node} has run.
    """
    for line in node.call("INFO", "commandstats").decode("utf-8").splitlines():
        if line.startswith("cmdstat_wait:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


class SentinelQueueTests(PersistentQueueMixin, TestCase):
    """
    The queue contract over a master found through three sentinels, with
    one replica that every add waits for.
    """

    def setUp(self):
        self.cluster = SentinelCluster()
        self.addCleanup(self.cluster.stop)

    def makeQueue(self, namespace="test"):
        return queueFromURL(self.cluster.url(namespace=namespace, **PATIENT), reactor)

    @inlineCallbacks
    def test_replicaHasWhatWasAcknowledged(self):
        """
        An add is acknowledged once the replica has it: the replica answers
        it right after, with no pause for replication.
        """
        queue = yield self.openQueue()
        [replica] = self.cluster.replicas
        for n in range(1, 21):
            yield queue.add(job(n))
            self.assertEqual(replica.call("HEXISTS", "test:jobs", str(n)), 1)

    @inlineCallbacks
    def test_waits(self):
        """
        Adds, keeps and lease writes are each followed by one WAIT;
        deletes and updates are not.
        """
        queue = yield self.openQueue()
        master = self.cluster.master
        before = waitCalls(master)
        yield queue.add(job(1))
        yield queue.addMany([job(2), job(3)])
        yield queue.keep(b"deadletter", [(b"1", b"x")], [1], [])
        self.assertEqual(waitCalls(master) - before, 3)
        yield queue.done(2)
        yield queue.update([job(3, attempts=1)])
        self.assertEqual(waitCalls(master) - before, 3)
        lease = queue.lease(b"me", 30)
        self.assertTrue((yield lease.acquire()))
        self.assertTrue((yield lease.renew()))
        self.assertEqual(waitCalls(master) - before, 5)
        self.assertEqual((yield queue.replay()), [job(3, attempts=1)])

    @inlineCallbacks
    def test_noReplicas(self):
        """
        With C{replicas=0} nothing waits for the replicas.
        """
        queue = queueFromURL(self.cluster.url(namespace="none", replicas=0), reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        before = waitCalls(self.cluster.master)
        yield queue.add(job(1))
        yield queue.keep(b"deadletter", [(b"1", b"x")], [1], [])
        self.assertEqual(waitCalls(self.cluster.master), before)

    @inlineCallbacks
    def test_fewerReplicasWarned(self):
        """
        Opening a queue that waits for more replicas than the master has
        warns that adds will fail.
        """
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        queue = queueFromURL(self.cluster.url(namespace="two", replicas=2, timeout=5, replica_timeout=2), reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        self.assertTrue(
            any("has 1 replicas connected, and every add waits for 2" in formatEvent(event) for event in events),
            [formatEvent(event) for event in events],
        )
        failure = yield self.assertFailure(queue.add(job(1)), QueueError)
        self.assertEqual(str(failure), "redis add: only 1 of 2 replicas acknowledged it within 2 s")
        self.assertEqual((yield queue.replay()), [])
        self.flushLoggedErrors()


class SentinelLeaseTests(standby.RedisLeaseTests):
    """
    The standby lease and fenced writes over a master found through the
    sentinels.
    """

    # Every take and renewal waits for a replica: longer than plain
    # Redis's, so that a loaded machine answers within the lease.
    ttl = 1.0
    expiry = 1.4

    def setUp(self) -> None:
        self.cluster = SentinelCluster()
        self.addCleanup(self.cluster.stop)

    def makeQueue(self) -> RedisQueue:
        queue = queueFromURL(self.cluster.url(namespace="ha", **PATIENT), reactor)
        assert isinstance(queue, RedisQueue)
        self.addCleanup(queue.close)
        return queue


class FailoverTests(TestCase):
    """
    kill -9 of the master: the queue follows the sentinels to the replica
    they promote, by itself.
    """

    timeout = 120

    @inlineCallbacks
    def openQueue(self, cluster, **parameters):
        parameters.setdefault("replica_timeout", 2)
        queue = queueFromURL(cluster.url(**parameters), reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        return queue

    @inlineCallbacks
    def addUntil(self, queue, cluster, first: int, successes: int, deadline: float = 60.0):
        """
        Add jobs numbered from C{first}, one at a time, until C{successes}
        were acknowledged after the master was killed, or C{deadline}
        seconds after the kill.

        @return: the keys acknowledged, the keys failed (QueueError), and
            the seconds from the kill to the first acknowledgement.
        """
        acknowledged: List[int] = []
        failed: List[int] = []
        firstSuccess = None
        key = first
        while len(acknowledged) < successes and time.monotonic() - cluster.killedAt < deadline:
            key += 1
            try:
                yield queue.add(job(key))
            except QueueError:
                failed.append(key)
                yield sleep(0.05)
                continue
            if firstSuccess is None:
                firstSuccess = time.monotonic() - cluster.killedAt
            acknowledged.append(key)
        return acknowledged, failed, firstSuccess

    @inlineCallbacks
    def test_followsFailover(self):
        """
        With two replicas and C{replicas=1}: every add acknowledged before
        the kill is replayed from the promoted replica; adds made during
        the failover are acknowledged and stored, or fail with QueueError
        (and are not replayed once their withdrawal is through); adds
        succeed again, through the same queue, once a replica is promoted.
        """
        cluster = SentinelCluster(replicas=2)
        self.addCleanup(cluster.stop)
        queue = yield self.openQueue(cluster, namespace="f", timeout=5)
        before = list(range(1, 51))
        for key in before:
            yield queue.add(job(key))
        cluster.waitUntilReady()
        cluster.killMaster()
        acknowledged, failed, firstSuccess = yield self.addUntil(queue, cluster, 1000, 20)
        failover = cluster.waitForFailover()
        log.info(
            "Sentinel failover: replica promoted {failover:.2f} s, first add acknowledged {first} s after kill -9",
            failover=failover,
            first=firstSuccess,
        )
        self.assertEqual(
            len(acknowledged), 20, "acknowledged %s, failed %s\n%s" % (acknowledged, failed, cluster.logs())
        )
        replayed = {j.key for j in (yield queue.replay())}
        self.assertEqual(set(before) - replayed, set())
        self.assertEqual(set(acknowledged) - replayed, set())
        self.assertEqual(replayed - set(before) - set(acknowledged) - set(failed), set())
        # The promoted replica is the master the queue writes to.
        self.assertEqual(cluster.master.call("HLEN", "f:jobs"), len(replayed))
        # Failed adds are gone once their withdrawals are through (retried
        # if the replicas did not confirm them at first).
        for _ in range(100):
            replayed = {j.key for j in (yield queue.replay())}
            if not replayed & set(failed):
                break
            yield sleep(0.1)
        self.assertEqual(replayed, set(before) | set(acknowledged))
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_noReplicaLeft(self):
        """
        With one replica and C{replicas=1}: after the failover the new
        master has no replica, so adds fail with QueueError (never
        acknowledged on the master alone) until the old master is back as
        a replica; then they succeed.  What was acknowledged before the
        kill is replayed, the failed adds are not.
        """
        cluster = SentinelCluster(replicas=1)
        self.addCleanup(cluster.stop)
        queue = yield self.openQueue(cluster, namespace="one", timeout=5, replica_timeout=1.5)
        for key in range(1, 11):
            yield queue.add(job(key))
        cluster.killMaster()
        cluster.waitForFailover()
        failures = set()
        for key in range(100, 130):
            try:
                yield queue.add(job(key))
            except QueueError as e:
                failures.add(str(e))
                if "only 0 of 1 replicas" in str(e):
                    break
            else:
                self.fail("acknowledged %d with no replica" % (key,))
        self.assertIn("redis add: only 0 of 1 replicas acknowledged it within 1.5 s", failures)
        [old] = cluster.replicas
        cluster.restartAsReplica(old)
        yield queue.add(job(200))
        self.assertEqual([j.key for j in (yield queue.replay())], list(range(1, 11)) + [200])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_withoutReplicas(self):
        """
        With C{replicas=0}, adds succeed again on the promoted replica alone
        (what the old master had not sent it yet would be lost).
        """
        cluster = SentinelCluster(replicas=1)
        self.addCleanup(cluster.stop)
        queue = yield self.openQueue(cluster, namespace="zero", timeout=5, replicas=0)
        yield queue.add(job(1))
        cluster.waitUntilReady()
        cluster.killMaster()
        acknowledged, failed, _ = yield self.addUntil(queue, cluster, 10, 3)
        self.assertEqual(len(acknowledged), 3)
        cluster.waitForFailover()
        self.assertEqual(len(cluster.master.call("HKEYS", "zero:jobs")), len((yield queue.replay())))
        self.assertTrue(set(acknowledged) | {1} <= {j.key for j in (yield queue.replay())})
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_sentinelDown(self):
        """
        With one of the three sentinels dead before the queue opens, the
        queue still opens, follows the failover the other two make, and
        closes within its bound (it does not wait for the dead one).
        """
        cluster = SentinelCluster(replicas=2)
        self.addCleanup(cluster.stop)
        cluster.waitUntilReady()
        cluster.sentinels[0].kill()
        queue = queueFromURL(cluster.url(namespace="s", **PATIENT), reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        yield queue.add(job(1))
        cluster.killMaster()
        acknowledged, failed, _ = yield self.addUntil(queue, cluster, 10, 3)
        self.assertEqual(len(acknowledged), 3, failed)
        self.assertEqual({j.key for j in (yield queue.replay())} - set(failed), {1} | set(acknowledged))
        began = time.monotonic()
        yield queue.close()
        self.assertLess(time.monotonic() - began, 4)
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_leaseSurvivesFailover(self):
        """
        A lease taken (acknowledged by a replica) before the failover is
        still held after it: the holder renews it on the new master and
        writes, and another server neither takes it nor writes.
        """
        cluster = SentinelCluster(replicas=2)
        self.addCleanup(cluster.stop)
        first = yield self.openQueue(cluster, namespace="ha", timeout=5)
        second = yield self.openQueue(cluster, namespace="ha", timeout=5)
        a, b = first.lease(b"a", 60), second.lease(b"b", 60)
        self.assertTrue((yield a.acquire()))
        yield first.add(job(1))
        cluster.waitUntilReady()
        cluster.killMaster()
        acknowledged, _, _ = yield self.addUntil(first, cluster, 1, 1)
        self.assertEqual(len(acknowledged), 1)
        self.assertTrue((yield a.renew()))
        self.assertFalse((yield b.acquire()))
        failure = yield self.assertFailure(second.add(job(9)), QueueError)
        self.assertIn("does not hold the lease", str(failure))
        self.assertEqual([j.key for j in (yield first.replay())], [1] + acknowledged)
        self.flushLoggedErrors()


class ReplicaWaitTests(TestCase):
    """
    A replica that does not acknowledge (paused with SIGSTOP): writes fail
    within the bound and leave nothing behind.
    """

    timeout = 120

    def setUp(self):
        self.cluster = SentinelCluster()
        self.addCleanup(self.cluster.stop)
        [self.replica] = self.cluster.replicas

    @inlineCallbacks
    def openQueue(self):
        queue = queueFromURL(self.cluster.url(namespace="w", timeout=5, replica_timeout=1.5), reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        return queue

    def pause(self):
        self.replica.signal(signal.SIGSTOP)
        self.addCleanup(self.replica.signal, signal.SIGCONT)

    @inlineCallbacks
    def test_addFails(self):
        """
        An add the paused replica does not acknowledge fails with QueueError
        within the replica timeout and its withdrawal's; it is withdrawn,
        and not replayed later, not even from the replica after a failover.
        """
        queue = yield self.openQueue()
        yield queue.add(job(1))
        self.pause()
        began = time.monotonic()
        failure = yield self.assertFailure(queue.addMany([job(2), job(3)]), QueueError)
        elapsed = time.monotonic() - began
        self.assertEqual(str(failure), "redis add: only 0 of 1 replicas acknowledged it within 1.5 s")
        # Its WAIT, then its withdrawal's.
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertLess(elapsed, 6)
        self.assertEqual((yield queue.replay()), [job(1)])
        self.replica.signal(signal.SIGCONT)
        # The replica catches up with the add and its withdrawal; promoted,
        # it has the first job only.
        self.cluster.waitUntilReady()
        self.cluster.killMaster()
        self.cluster.waitForFailover()
        self.assertEqual(self.cluster.master.call("HKEYS", "w:jobs"), [b"1"])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_keepFails(self):
        """
        A keep the replica does not acknowledge fails with QueueError.
        """
        queue = yield self.openQueue()
        yield queue.add(job(1))
        self.pause()
        failure = yield self.assertFailure(queue.keep(b"deadletter", [(b"1", b"x")], [1], []), QueueError)
        self.assertEqual(str(failure), "redis keep: only 0 of 1 replicas acknowledged it within 1.5 s")
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_leaseFails(self):
        """
        A lease the replica does not acknowledge is not taken: acquire
        fails with QueueError (a standby asks again), so a server never
        serves on a lease a failover could lose.
        """
        queue = yield self.openQueue()
        lease = queue.lease(b"a", 30)
        self.pause()
        failure = yield self.assertFailure(lease.acquire(), QueueError)
        self.assertEqual(str(failure), "redis lease: only 0 of 1 replicas acknowledged it within 1.5 s")
        self.replica.signal(signal.SIGCONT)
        self.assertTrue((yield lease.acquire()))
        self.flushLoggedErrors()


class SentinelOpenTests(TestCase):
    """
    Opening a queue whose sentinels or master cannot be used.
    """

    timeout = 60

    @inlineCallbacks
    def test_sentinelsRefused(self):
        """
        With every sentinel refusing connections, open fails at once,
        saying so.
        """
        ports = [freePort(), freePort()]
        queue = queueFromURL("redis+sentinel://127.0.0.1:%d,127.0.0.1:%d/%s" % (ports[0], ports[1], SERVICE), reactor)
        began = time.monotonic()
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertEqual(
            str(failure),
            "cannot reach any Redis Sentinel at 127.0.0.1:%d, 127.0.0.1:%d: connection refused" % tuple(ports),
        )
        self.assertLess(time.monotonic() - began, 5)

    @inlineCallbacks
    def test_oneSentinelUp(self):
        """
        One sentinel that answers is enough.
        """
        cluster = SentinelCluster()
        self.addCleanup(cluster.stop)
        url = "redis+sentinel://127.0.0.1:%d,127.0.0.1:%d/%s?replica_timeout=3" % (
            freePort(),
            cluster.sentinels[1].port,
            SERVICE,
        )
        queue = queueFromURL(url, reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        yield queue.add(job(1))
        self.assertEqual((yield queue.replay()), [job(1)])

    @inlineCallbacks
    def test_unknownService(self):
        """
        A service the sentinels do not monitor fails open as soon as they
        have all answered, naming it.
        """
        cluster = SentinelCluster()
        self.addCleanup(cluster.stop)
        url = cluster.url(timeout=1, replica_timeout=0.5).replace("/%s/" % (SERVICE,), "/elsewhere/")
        queue = queueFromURL(url, reactor)
        began = time.monotonic()
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertIn("named a master 'elsewhere' that is up (asked for up to 1 s)", str(failure))
        self.assertLess(time.monotonic() - began, 0.9)

    @inlineCallbacks
    def test_passwords(self):
        """
        A master and replicas with a password, and sentinels with one of
        their own: both go in the URL.  A wrong master password fails open
        with QueueError saying why.
        """
        cluster = SentinelCluster(password="p@ss word", sentinelPassword="watch")
        self.addCleanup(cluster.stop)
        hosts = ",".join("127.0.0.1:%d" % (s.port,) for s in cluster.sentinels)
        url = "redis+sentinel://:p%%40ss%%20word@%s/%s/3?sentinel_password=watch&timeout=4&replica_timeout=3" % (
            hosts,
            SERVICE,
        )
        queue = queueFromURL(url, reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        yield queue.add(job(1))
        self.assertEqual((yield queue.replay()), [job(1)])
        self.assertIn(b"db3:keys=1,", cluster.command("INFO", "keyspace"))
        wrong = queueFromURL(url.replace("p%40ss", "wrong"), reactor)
        failure = yield self.assertFailure(wrong.open(), QueueError)
        yield wrong.close()
        where = "cannot use Redis at 127.0.0.1:%d, the master of 'gearman'" % (cluster.master.port,)
        self.assertIn(where, str(failure))
        self.assertIn("WRONGPASS", str(failure))
        self.flushLoggedErrors()


class SentinelURLTests(SynchronousTestCase):
    """
    Tests for L{RedisQueue.fromSentinelURL}, through L{queueFromURL}.
    """

    def test_full(self):
        """
        Every part of the URL is read; the password and service are
        percent-decoded.
        """
        queue = queueFromURL(
            "redis+sentinel://:s%40cret@a.example:26380,[::1]:26381,b/my%20master/2"
            "?namespace=ns&replicas=2&replica_timeout=0.25&timeout=3&sentinel_password=w",
            reactor,
        )
        self.assertIsInstance(queue, RedisQueue)
        self.assertEqual(
            (
                queue.sentinels,
                queue.service,
                queue.database,
                queue.password,
                queue.namespace,
                queue.replicas,
                queue.replicaTimeout,
                queue.timeout,
                queue.sentinelPassword,
            ),
            (
                [("a.example", 26380), ("::1", 26381), ("b", 26379)],
                "my master",
                2,
                "s@cret",
                "ns",
                2,
                0.25,
                3.0,
                "w",
            ),
        )

    def test_defaults(self):
        """
        Without them: database 0, namespace gearman, one replica waited for
        1 s, a 10 s timeout, no passwords.
        """
        queue = queueFromURL("redis+sentinel://h:1/mymaster", reactor)
        self.assertEqual(
            (queue.sentinels, queue.service, queue.database, queue.password, queue.namespace),
            ([("h", 1)], "mymaster", 0, None, "gearman"),
        )
        self.assertEqual(
            (queue.replicas, queue.replicaTimeout, queue.timeout, queue.sentinelPassword),
            (1, DEFAULT_REPLICA_TIMEOUT, DEFAULT_TIMEOUT, None),
        )
        self.assertEqual(queueFromURL("redis+sentinel://h/m/", reactor).database, 0)
        self.assertEqual(queueFromURL("redis+sentinel://h/m?replicas=0", reactor).replicas, 0)

    def test_bad(self):
        """
        A malformed URL is a one-line QueueError saying what is wrong.
        """
        cases = {
            "redis+sentinel://": "must name the sentinels",
            "redis+sentinel://h1,,h2/m": "must name the sentinels",
            "redis+sentinel://h1:26379": "must name the master's service",
            "redis+sentinel://h1:26379/": "must name the master's service",
            "redis+sentinel://h1:x/m": "bad port",
            "redis+sentinel://h1:70000/m": "bad port",
            "redis+sentinel://[::1/m": "bad sentinel address",
            "redis+sentinel://h/m/db": "the database a number",
            "redis+sentinel://h/m/0/extra": "/SERVICE or /SERVICE/DB",
            "redis+sentinel://user:pw@h/m": "user names are not supported",
            "redis+sentinel://pw@h/m": "give the password as :PASSWORD@",
            "redis+sentinel://h/m?replicas=-1": "replicas must be a whole number",
            "redis+sentinel://h/m?replicas=one": "replicas must be a whole number",
            "redis+sentinel://h/m?timeout=0": "timeout must be a positive number of seconds",
            "redis+sentinel://h/m?replica_timeout=nan": "replica_timeout must be a positive number",
            "redis+sentinel://h/m?replica_timeout=10": "replica_timeout (10 s) must be less than timeout (10 s)",
            "redis+sentinel://h/m?namespace=a&namespace=b": "given 2 times",
            "redis+sentinel://h/m?namespace=": "namespace must not be empty",
            "redis+sentinel://h/m?wait=1": "unknown URL parameter 'wait'",
            "redis+sentinel://h/m?novalue": "bad query",
            "redis+sentinel://h/m#x": "#fragment",
        }
        for url, expected in cases.items():
            with self.assertRaises(QueueError, msg=url) as caught:
                queueFromURL(url, reactor)
            message = str(caught.exception)
            self.assertTrue(message.startswith("redis+sentinel: "), message)
            self.assertIn(expected, message, url)
            self.assertNotIn("\n", message)

    def test_plainRedisUnchanged(self):
        """
        A C{redis://} URL waits for no replica and asks no sentinel.
        """
        queue = queueFromURL("redis://127.0.0.1:6380/1", reactor)
        self.assertEqual((queue.sentinels, queue.replicas), (None, 0))

