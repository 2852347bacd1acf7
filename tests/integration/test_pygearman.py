# -*- test-case-name: tests.integration.test_pygearman -*-
"""
pygearman's admin client (C{gearman.admin_client.GearmanAdminClient}, the
Python 3 fork of python-gearman, PyPI C{pygearman}) against our server.

pygearman reads admin replies up to C{\\n} and compares the line as a
whole, so the C{\\r} of a C{OK\\r\\n} reply stays in it: C{send_maxqueue}
expects exactly C{OK} and raises C{ProtocolError("Expected 'OK',
received: OK\\r")}, against gearmand 1.1.20 as well.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.integration.servers import startOurs

try:
    from gearman.admin_client import GearmanAdminClient
except ImportError:
    GearmanAdminClient = None

#: Seconds pygearman waits for one reply.
POLL_TIMEOUT = 5.0


class PyGearmanAdminTests(SynchronousTestCase):
    """
    Every admin call of pygearman's C{GearmanAdminClient} works against
    gearman_tw.
    """

    def setUp(self) -> None:
        if GearmanAdminClient is None:
            message = "pygearman is not installed (pip install pygearman)"
            if os.environ.get("CI"):
                raise AssertionError(message)
            raise SkipTest(message)
        self.server = startOurs(self)

    def client(self) -> "GearmanAdminClient":
        """
        A new admin client of the server, closed at cleanup.  One client
        per call: after a call that raised, pygearman still counts that
        command as waiting and takes the next reply for its answer.
        """
        admin = GearmanAdminClient(["127.0.0.1:%d" % (self.server.port,)], poll_timeout=POLL_TIMEOUT)
        self.addCleanup(admin.shutdown)
        return admin

    def test_maxqueue(self) -> None:
        """
        C{send_maxqueue} returns C{"OK"} rather than raising
        C{ProtocolError}.
        """
        self.assertEqual(self.client().send_maxqueue("resize", 2), "OK")

    def test_listings(self) -> None:
        """
        C{get_status}, C{get_workers}, C{get_version}, C{get_pid} and
        C{ping_server} parse our replies.
        """
        raw = self.server.connect()
        self.addCleanup(raw.close)
        raw.admin(b"create function made\n")
        self.assertEqual(
            self.client().get_status(), ({"task": "made", "queued": 0, "running": 0, "workers": 0},)
        )
        # The connections of this test: raw's and the clients' (open
        # until cleanup), none a worker.
        workers = self.client().get_workers()
        self.assertEqual({(w["ip"], w["client_id"], w["tasks"]) for w in workers}, {("127.0.0.1", "-", ())})
        self.assertEqual(len(workers), 3)
        self.assertTrue(self.client().get_version().startswith("OK 1.1.20"))
        self.assertEqual(self.client().get_pid(), "OK %d" % (self.server.pid,))
        self.assertGreaterEqual(self.client().ping_server(), 0)
