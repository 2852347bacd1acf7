"""
Failover tests of C{twistd gearman --queue redis+sentinel://...}: kill -9
of the Redis master under a running job server, whose queue follows the
sentinels to the replica they promote; every background job that got
C{JOB_CREATED} is delivered by a worker afterwards.
"""

import threading
import time
from typing import List, Set

from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import RawConnection, startOurs
from tests.integration.test_durability import JOB_CREATED, SUBMIT_JOB_BG, DurabilityMixin
from tests.sentinelserver import SentinelCluster

ERROR = 19

log = Logger()


class SentinelFailoverTests(SynchronousTestCase):
    """
    A master, two replicas and three sentinels; the job server waits for
    one replica to have each job before it answers C{JOB_CREATED}.
    """

    def setUp(self) -> None:
        self.cluster = SentinelCluster(replicas=2)
        self.addCleanup(self.cluster.stop)
        # Time enough for a replica on a loaded machine.
        self.url = self.cluster.url(namespace="failover", replica_timeout=3)

    def deliveredAfterRestart(self, server) -> List[bytes]:
        """
        kill -9 the job server, start another on the same queue (so it
        replays from the master the sentinels name now), and return the
        data of every job a worker is given there.
        """
        server.stop(9)
        restarted = startOurs(self, "--queue", self.url)
        return [data for _, _, data in DurabilityMixin.drain(self, restarted)]  # type: ignore[arg-type]

    def reply(self, client: RawConnection) -> bool:
        """
        Read the answer to one submission: True for JOB_CREATED, False for
        ERROR QUEUE_ERROR (anything else fails the test).
        """
        ptype, payload = client.readPacket(timeout=40)
        if ptype == JOB_CREATED:
            return True
        self.assertEqual((ptype, payload.split(b"\0")[0]), (ERROR, b"QUEUE_ERROR"), payload)
        return False

    def assertDelivered(self, acknowledged: List[bytes], submitted: Set[bytes], delivered: List[bytes]) -> None:
        self.assertEqual(len(delivered), len(set(delivered)), "delivered twice")
        self.assertEqual([data for data in acknowledged if data not in set(delivered)], [])
        self.assertEqual(set(delivered) - submitted, set())

    def test_killMaster(self) -> None:
        """
        Jobs acknowledged before the master's kill, and those acknowledged
        after it (the server reconnects to the promoted replica by itself),
        are all delivered; submissions during the failover get JOB_CREATED
        or QUEUE_ERROR.
        """
        server = startOurs(self, "--queue", self.url)
        client = server.connect()
        self.addCleanup(client.close)
        acknowledged: List[bytes] = []
        submitted: Set[bytes] = set()
        for n in range(100):
            data = b"before%d" % (n,)
            submitted.add(data)
            client.sendPacket(SUBMIT_JOB_BG, b"f", b"", data)
        for n in range(100):
            self.assertTrue(self.reply(client))
            acknowledged.append(b"before%d" % (n,))
        self.cluster.waitUntilReady()
        self.cluster.killMaster()
        killedAt = time.monotonic()
        firstAfter = None
        after = 0
        failed = 0
        n = 0
        while after < 30 and time.monotonic() - killedAt < 60:
            n += 1
            data = b"after%d" % (n,)
            submitted.add(data)
            client.sendPacket(SUBMIT_JOB_BG, b"f", b"", data)
            if self.reply(client):
                acknowledged.append(data)
                after += 1
                if firstAfter is None:
                    firstAfter = time.monotonic() - killedAt
            else:
                failed += 1
                time.sleep(0.05)
        self.assertEqual(after, 30, "%d failed\n%s\n%s" % (failed, server.log(), self.cluster.logs()))
        # Stored on the new master: the promoted replica.
        self.cluster.waitForFailover()
        self.assertGreaterEqual(self.cluster.master.call("HLEN", "failover:jobs"), len(acknowledged))
        self.assertDelivered(acknowledged, submitted, self.deliveredAfterRestart(server))
        # For docs/queue-redis-sentinel.rst: kill -9 to the first JOB_CREATED.
        log.info(
            "Sentinel failover: first JOB_CREATED {first:.2f} s after kill -9 of the master, {failed} QUEUE_ERROR",
            first=firstAfter,
            failed=failed,
        )

    def test_killMasterUnderLoad(self) -> None:
        """
        kill -9 of the master while 16 clients submit as fast as they are
        answered (stores in flight at the kill): every job whose
        JOB_CREATED reached its client is delivered after the failover, the
        others got QUEUE_ERROR, and submissions succeed again.
        """
        server = startOurs(self, "--queue", self.url)
        self.cluster.waitUntilReady()
        stop = threading.Event()
        acknowledged: List[List[bytes]] = [[] for _ in range(16)]
        failed: List[List[bytes]] = [[] for _ in range(16)]
        errors: List[BaseException] = []

        def submit(index: int) -> None:
            client = server.connect()
            try:
                n = 0
                while not stop.is_set() and n < 5000:
                    n += 1
                    data = b"c%d-%d" % (index, n)
                    client.sendPacket(SUBMIT_JOB_BG, b"f", b"", data)
                    (acknowledged if self.reply(client) else failed)[index].append(data)
            except BaseException as e:
                errors.append(e)
            finally:
                client.close()

        threads = [threading.Thread(target=submit, args=(index,)) for index in range(16)]
        for thread in threads:
            thread.start()
        self.addCleanup(stop.set)

        def count(lists: List[List[bytes]]) -> int:
            return sum(len(items) for items in lists)

        deadline = time.monotonic() + 60
        while count(acknowledged) < 300 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        self.cluster.killMaster()
        atKill = count(acknowledged)
        self.cluster.waitForFailover()
        atFailover = count(acknowledged)
        while count(acknowledged) < atFailover + 300 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        stop.set()
        for thread in threads:
            thread.join(60)
        self.assertEqual(errors, [])
        allAcknowledged = [data for items in acknowledged for data in items]
        submitted = set(allAcknowledged) | {data for items in failed for data in items}
        self.assertGreaterEqual(len(allAcknowledged), atFailover + 300)
        self.assertDelivered(allAcknowledged, submitted, self.deliveredAfterRestart(server))
        log.info(
            "Sentinel failover under load: {acknowledged} acknowledged ({atKill} at the kill, {atFailover} when a"
            " replica was promoted), {failed} QUEUE_ERROR",
            acknowledged=len(allAcknowledged),
            atKill=atKill,
            atFailover=atFailover,
            failed=count(failed),
        )
