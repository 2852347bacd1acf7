"""
Crash tests: background jobs acknowledged by C{twistd gearman --queue ...}
survive C{kill -9} with their priority, unique key, data and epoch time.
"""

import base64
import os
import signal
import tempfile
import threading
import time
from typing import List, Optional, Tuple

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import RawConnection, packet, startOurs
from tests.mixins import SynchronousTestCaseMixin
from tests.redisserver import RedisServer

SUBMIT_JOB_BG, SUBMIT_JOB_HIGH_BG, SUBMIT_JOB_LOW_BG, SUBMIT_JOB_EPOCH = 18, 32, 34, 36
CAN_DO, GRAB_JOB_UNIQ, WORK_COMPLETE, JOB_CREATED, NO_JOB, JOB_ASSIGN_UNIQ = 1, 30, 13, 8, 10, 31


class DurabilityMixin(SynchronousTestCaseMixin):
    """
    Crash tests for the queue named by L{queueURL}.
    """

    def queueURL(self) -> str:
        raise NotImplementedError()

    def start(self):
        return startOurs(self, "--queue", self.url)

    def setUp(self) -> None:
        self.url = self.queueURL()

    def crash(self, server) -> None:
        server.stop(signal.SIGKILL)

    def drain(self, server) -> List[Tuple[bytes, bytes, bytes]]:
        """
        Grab every runnable job: (function, unique, data) in the order given.
        """
        worker = server.connect()
        self.addCleanup(worker.close)
        worker.sendPacket(CAN_DO, b"f")
        jobs: List[Tuple[bytes, bytes, bytes]] = []
        for _ in range(100000):
            worker.sendPacket(GRAB_JOB_UNIQ)
            ptype, payload = worker.readPacket()
            if ptype == NO_JOB:
                return jobs
            self.assertEqual(ptype, JOB_ASSIGN_UNIQ)
            handle, function, unique, data = payload.split(b"\0", 3)
            jobs.append((function, unique, data))
            worker.sendPacket(WORK_COMPLETE, handle, b"")
        self.fail("too many jobs")

    def test_killAndReplay(self) -> None:
        """
        After kill -9 and a restart every acknowledged, unfinished job is
        delivered once, in priority order, with unique and data intact; jobs
        finished before the crash are not; a future epoch job waits; a new
        submission coalesces with a replayed unique.
        """
        server = self.start()
        client = server.connect()
        self.addCleanup(client.close)
        submissions = []
        for n in range(4):
            submissions.append((SUBMIT_JOB_LOW_BG, b"", b"low%d" % n))
            submissions.append((SUBMIT_JOB_BG, b"", b"normal%d" % n))
            submissions.append((SUBMIT_JOB_HIGH_BG, b"", b"high%d" % n))
        submissions.append((SUBMIT_JOB_BG, b"key-a", b"unique-a"))
        submissions.append((SUBMIT_JOB_LOW_BG, b"key-b", b"unique-b\0binary"))
        for ptype, unique, data in submissions:
            client.sendPacket(ptype, b"f", unique, data)
        future = int(time.time()) + 3600
        client.sendPacket(SUBMIT_JOB_EPOCH, b"f", b"", b"%d" % future, b"epoch")
        created = client.readPackets(len(submissions) + 1)
        self.assertEqual({ptype for ptype, _ in created}, {JOB_CREATED})

        # Finish two jobs before the crash.
        worker = server.connect()
        self.addCleanup(worker.close)
        worker.sendPacket(CAN_DO, b"f")
        finished = []
        for _ in range(2):
            worker.sendPacket(GRAB_JOB_UNIQ)
            ptype, payload = worker.readPacket()
            handle, _, _, data = payload.split(b"\0", 3)
            finished.append(data)
            worker.sendPacket(WORK_COMPLETE, handle, b"")
        worker.sync()
        self.assertEqual(finished, [b"high0", b"high1"])
        # The "done" is written after WORK_COMPLETE is answered; a crash in
        # that window redelivers the job (documented); give it time.
        time.sleep(0.5)
        self.crash(server)

        restarted = self.start()
        admin = restarted.connect()
        self.addCleanup(admin.close)
        self.assertIn(b"f\t%d\t0\t0\n" % (len(submissions) + 1 - 2,), admin.admin(b"status\n"))
        again = restarted.connect()
        self.addCleanup(again.close)
        again.sendPacket(SUBMIT_JOB_BG, b"f", b"key-a", b"ignored")
        handle = again.readPacket()
        self.assertIn(b"T:", handle[1])
        self.assertIn(b"f\t%d\t0\t0\n" % (len(submissions) + 1 - 2,), admin.admin(b"status\n"))
        delivered = self.drain(restarted)
        self.assertEqual(
            delivered,
            [(b"f", b"", b"high%d" % n) for n in (2, 3)]
            + [(b"f", b"", b"normal%d" % n) for n in range(4)]
            + [(b"f", b"key-a", b"unique-a")]
            + [(b"f", b"", b"low%d" % n) for n in range(4)]
            + [(b"f", b"key-b", b"unique-b\0binary")],
        )
        # The epoch job is still held for its time.
        self.assertIn(b"f\t1\t0\t1\n", admin.admin(b"status\n"))

    def test_crashDuringBurst(self) -> None:
        """
        kill -9 in the middle of a burst of submissions: every job whose
        JOB_CREATED reached the client is delivered after the restart.
        """
        server = self.start()
        client = server.connect()
        self.addCleanup(client.close)
        total = 3000
        burst = b"".join(packet(SUBMIT_JOB_BG, b"f", b"", b"burst%d" % n) for n in range(total))
        sender = threading.Thread(target=lambda: _sendQuietly(client, burst))
        sender.start()
        acknowledged = 0
        try:
            while True:
                ptype, _ = client.readPacket(timeout=10)
                self.assertEqual(ptype, JOB_CREATED)
                acknowledged += 1
                if acknowledged == 500:
                    os.kill(server.pid, signal.SIGKILL)
        except (EOFError, ConnectionResetError, TimeoutError):
            pass
        sender.join(30)
        server.stop()
        self.assertGreaterEqual(acknowledged, 500)
        restarted = self.start()
        delivered = {data for _, _, data in self.drain(restarted)}
        missing = [n for n in range(acknowledged) if b"burst%d" % n not in delivered]
        self.assertEqual(missing, [])


    def takeAndLose(self, server, function: bytes) -> bytes:
        """
        A worker takes a job of C{function} and goes away; the job's data.
        """
        worker = server.connect()
        worker.sendPacket(CAN_DO, function)
        worker.sendPacket(GRAB_JOB_UNIQ)
        ptype, payload = worker.readPacket()
        worker.close()
        self.assertEqual(ptype, JOB_ASSIGN_UNIQ)
        return payload.split(b"\0", 3)[3]

    def assertNothingToTake(self, server, function: bytes) -> None:
        worker = server.connect()
        self.addCleanup(worker.close)
        worker.sendPacket(CAN_DO, function)
        worker.sendPacket(GRAB_JOB_UNIQ)
        self.assertEqual(worker.readPacket()[0], NO_JOB)

    def test_lifecycleSurvivesCrash(self) -> None:
        """
        kill -9 keeps a job's attempts (it is given up after what was left
        of them), a job waiting out its backoff (it goes on waiting), a
        policy changed at run time, and dead letters (listed, with why,
        after the next crash).
        """
        server = self.startWithPolicies(
            "[default]\nmax-attempts = 2\ndead-letters = 5\n\n[functions.slow]\nbackoff = { base = 3600, jitter = 0 }\n"
        )
        client = server.connect()
        self.addCleanup(client.close)
        client.sendPacket(SUBMIT_JOB_BG, b"f", b"key-f", b"fragile")
        client.sendPacket(SUBMIT_JOB_BG, b"slow", b"", b"patient")
        self.assertEqual([ptype for ptype, _ in client.readPackets(2)], [JOB_CREATED, JOB_CREATED])
        self.assertEqual(self.takeAndLose(server, b"f"), b"fragile")
        self.assertEqual(self.takeAndLose(server, b"slow"), b"patient")
        admin = server.connect()
        self.addCleanup(admin.close)
        # Both lost attempts are seen (and their updates sent) before
        # this answer; give the queue time to commit them.
        self.assertIn(b"slow\t1\t0\t0\n", admin.admin(b"status\n"))
        self.assertEqual(admin.admin(b"policy set slow dead-letters 7\n"), b"OK\n")
        time.sleep(0.5)
        self.crash(server)

        restarted = self.startWithPolicies()
        self.assertNothingToTake(restarted, b"slow")
        admin = restarted.connect()
        self.addCleanup(admin.close)
        self.assertIn(b"dead-letters 7\n", admin.admin(b"policy slow\n"))
        # The second attempt at f is its last.
        self.assertEqual(self.takeAndLose(restarted, b"f"), b"fragile")
        letters = admin.admin(b"deadletters f\n").splitlines()
        self.assertEqual(len(letters), 2, letters)
        self.assertEqual(letters[0].split(b"\t")[1], b"2")
        time.sleep(0.5)
        self.crash(restarted)

        again = self.startWithPolicies()
        admin = again.connect()
        self.addCleanup(admin.close)
        [line, end] = admin.admin(b"deadletters f\n").splitlines()
        fields = line.split(b"\t")
        self.assertEqual((fields[1], fields[4], fields[5], end), (b"2", b"key-f", b"worker lost", b"."))
        self.assertEqual(admin.admin(b"status\n"), b"slow\t1\t0\t0\n.\n")
        self.assertNothingToTake(again, b"slow")
        self.assertEqual(admin.admin(b"retry deadletters f\n"), b"OK 1\n")
        time.sleep(0.5)
        self.crash(again)

        last = self.startWithPolicies()
        admin = last.connect()
        self.addCleanup(admin.close)
        self.assertEqual(admin.admin(b"deadletters f\n"), b".\n")
        self.assertEqual(self.drain(last), [(b"f", b"key-f", b"fragile")])


    def startWithPolicies(self, policies: Optional[str] = None):
        """
        Start our server on the queue with the policy file C{policies} (a
        TOML text), written the first time; later calls start it again
        with the same file.
        """
        if policies is not None:
            self.policies = os.path.join(tempfile.mkdtemp(), "policies.toml")
            with open(self.policies, "w") as f:
                f.write(policies)
        return startOurs(self, "--queue", self.url, "--policies", self.policies)

    def completeAndCrash(self, server, handle: bytes, data: bytes, result: bytes) -> None:
        """
        A worker takes the next job of C{f} (C{handle}, with C{data}) and
        completes it with C{result}; once the queue had time to forget it,
        the server is killed.
        """
        worker = server.connect()
        self.addCleanup(worker.close)
        worker.sendPacket(CAN_DO, b"f")
        worker.sendPacket(GRAB_JOB_UNIQ)
        ptype, payload = worker.readPacket()
        self.assertEqual((ptype, payload.split(b"\0", 3)[::3]), (JOB_ASSIGN_UNIQ, [handle, data]))
        worker.sendPacket(WORK_COMPLETE, handle, result)
        worker.sync()
        time.sleep(0.5)
        self.crash(server)

    def test_resultsSurviveCrash(self) -> None:
        """
        kill -9 keeps stored results: found by handle and unique after a
        restart, answering a submission within the unique window; new
        handles do not reuse theirs.
        """
        server = self.startWithPolicies("[default]\nkeep-results = 3600\nunique-window = 3600\n")
        client = server.connect()
        self.addCleanup(client.close)
        client.sendPacket(SUBMIT_JOB_BG, b"f", b"img-7", b"in")
        ptype, handle = client.readPacket()
        self.assertEqual(ptype, JOB_CREATED)
        self.completeAndCrash(server, handle, b"in", b"out\0put")

        restarted = self.startWithPolicies()
        admin = restarted.connect()
        self.addCleanup(admin.close)
        lines = admin.admin(b"result " + handle + b"\n").splitlines()
        self.assertIn(b"outcome complete", lines)
        self.assertIn(b"data " + base64.b64encode(b"out\0put"), lines)
        self.assertEqual(admin.admin(b"result unique img-7\n").splitlines(), lines)
        # Not run again: the job ended before the crash.
        self.assertEqual(self.drain(restarted), [])
        again = restarted.connect()
        self.addCleanup(again.close)
        again.sendPacket(SUBMIT_JOB_BG, b"f", b"img-7", b"in")
        self.assertEqual(again.readPacket(), (JOB_CREATED, handle))
        again.sendPacket(SUBMIT_JOB_BG, b"f", b"other", b"in")
        ptype, other = again.readPacket()
        self.assertGreater(int(other.rsplit(b":", 1)[1]), int(handle.rsplit(b":", 1)[1]))

    def test_handlesNeverGivenTwice(self) -> None:
        """
        A job queued across a restart gets a new handle (as in gearmand),
        and no handle given before the restart (its old one, or one whose
        job ended) is given to another job: a client asking for the result
        by the handle it was given never gets another job's.
        """
        server = self.startWithPolicies("[default]\nkeep-results = 3600\n")
        client = server.connect()
        self.addCleanup(client.close)
        before = []
        for data in (b"ran", b"queued", b"queued-too"):
            client.sendPacket(SUBMIT_JOB_BG, b"f", b"", data)
            ptype, handle = client.readPacket()
            self.assertEqual(ptype, JOB_CREATED)
            before.append(handle)
        # The first ends before the crash (its result kept, its handle the
        # lowest); the others are queued.
        self.completeAndCrash(server, before[0], b"ran", b"result of ran")

        restarted = self.startWithPolicies()
        again = restarted.connect()
        self.addCleanup(again.close)
        after = []
        for n in range(3):
            again.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"new%d" % n)
            ptype, handle = again.readPacket()
            self.assertEqual(ptype, JOB_CREATED)
            after.append(handle)
        admin = restarted.connect()
        self.addCleanup(admin.close)
        replayed = [line.split(b"\t")[0] for line in admin.admin(b"show jobs\n").splitlines() if b"\t" in line]
        self.assertEqual(set(replayed) & set(before), set())
        self.assertEqual(set(after) & set(before), set())
        self.assertEqual(len(set(replayed) | set(after)), 5)
        # The queued jobs' old handles name nothing now; the first its own
        # result.
        for handle in before[1:]:
            self.assertEqual(admin.admin(b"result " + handle + b"\n"), b"ERR UNKNOWN_JOB\r\n")
        lines = admin.admin(b"result " + before[0] + b"\n").splitlines()
        self.assertIn(b"handle " + before[0], lines)
        self.assertIn(b"data " + base64.b64encode(b"result of ran"), lines)


def _sendQuietly(connection: RawConnection, data: bytes) -> None:
    try:
        connection.send(data)
    except OSError:
        pass


class SQLiteDurabilityTests(DurabilityMixin, SynchronousTestCase):
    def queueURL(self) -> str:
        return "sqlite:" + os.path.join(tempfile.mkdtemp(), "queue.db")


class RedisDurabilityTests(DurabilityMixin, SynchronousTestCase):
    def queueURL(self) -> str:
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)
        return "redis://127.0.0.1:%d/0?namespace=crash" % (self.redis.port,)


ERROR = 19


class SQLiteStorageFaultTests(SynchronousTestCase):
    """
    A server whose SQLite file goes away refuses jobs instead of
    acknowledging jobs no restart would find.
    """

    def test_directoryDeleted(self) -> None:
        """
        With the queue's directory deleted under a running server, a
        background submission gets ERROR QUEUE_ERROR naming the cause, not
        JOB_CREATED (as gearmand's libsqlite3 queue answers).
        """
        import shutil

        directory = tempfile.mkdtemp()
        server = startOurs(self, "--queue", "sqlite:" + os.path.join(directory, "queue.db"))
        client = server.connect()
        self.addCleanup(client.close)
        client.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"before")
        self.assertEqual(client.readPacket()[0], JOB_CREATED)
        shutil.rmtree(directory)
        for n in range(3):
            client.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"after%d" % n)
            ptype, payload = client.readPacket()
            self.assertEqual(ptype, ERROR)
            code, message = payload.split(b"\0", 1)
            self.assertEqual(code, b"QUEUE_ERROR")
            self.assertIn(b"deleted", message)


class RedisStorageFaultTests(SynchronousTestCase):
    """
    Redis faults: the answer agrees with what is stored, and deletes are
    retried.
    """

    def setUp(self) -> None:
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)
        self.url = "redis://127.0.0.1:%d/0?namespace=faults" % (self.redis.port,)

    def drain(self, server) -> List[bytes]:
        """
        The data of every job a worker is given, each completed.
        """
        return [data for _, _, data in DurabilityMixin.drain(self, server)]  # type: ignore[arg-type]

    def test_deletesRefusedRetried(self) -> None:
        """
        Jobs that completed while Redis refused deletes (NOREPLICAS) are
        deleted once it takes them again, and do not come back after a
        graceful restart.
        """
        server = startOurs(self, "--queue", self.url)
        client = server.connect()
        self.addCleanup(client.close)
        for n in range(5):
            client.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"job%d" % n)
        self.assertEqual({ptype for ptype, _ in client.readPackets(5)}, {JOB_CREATED})
        self.redis.command(b"CONFIG", b"SET", b"min-replicas-to-write", b"1")
        self.assertEqual(sorted(self.drain(server)), [b"job%d" % n for n in range(5)])
        time.sleep(1)
        self.redis.command(b"CONFIG", b"SET", b"min-replicas-to-write", b"0")
        self.assertIn(server.stop(), (0, -signal.SIGTERM))
        restarted = startOurs(self, "--queue", self.url)
        self.assertEqual(self.drain(restarted), [])

    def test_frozenPastTimeout(self) -> None:
        """
        With Redis frozen (SIGSTOP) past the queue's timeout (10 s), every
        client gets QUEUE_ERROR, and none of those jobs runs after a
        restart: a client that retries gets its job once.
        """
        server = startOurs(self, "--queue", self.url)
        clients = [server.connect() for _ in range(3)]
        for client in clients:
            self.addCleanup(client.close)
            # The server answers once it has replayed the queue.
            client.sync()
        os.kill(self.redis.process.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, self.redis.process.pid, signal.SIGCONT)
        for n, client in enumerate(clients):
            client.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"frozen%d" % n)
        time.sleep(11)
        os.kill(self.redis.process.pid, signal.SIGCONT)
        for client in clients:
            ptype, payload = client.readPacket(timeout=30)
            self.assertEqual((ptype, payload.split(b"\0")[0]), (ERROR, b"QUEUE_ERROR"))
        self.assertIn(server.stop(), (0, -signal.SIGTERM))
        restarted = startOurs(self, "--queue", self.url)
        self.assertEqual(self.drain(restarted), [])
