"""
Lifecycle policies changed at run time: L{JobServer.changePolicy}, the
C{policy set} and C{policy reset} admin commands, and their storage in a
persistent queue.
"""

import json
from typing import List

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.errors import QueueError
from gearman_tw.protocol import PacketType
from gearman_tw.queues import POLICY_CHANGES
from gearman_tw.server.admin import AdminCommands
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.lifecycle import Policies, PoliciesError, parseSetting
from tests.test_server_jobs import Conn
from tests.test_server_persistence import FakeQueue

FILE = """
[default]
max-attempts = 5

[functions."r*"]
time-limit = 10
"""


class ChangePolicyTests(SynchronousTestCase):
    """
    L{JobServer.changePolicy} and L{JobServer.resetPolicy}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.queue = FakeQueue()
        self.server = JobServer(self.clock, handlePrefix=b"H", policies=Policies.fromText(FILE))
        # The same with a persistent queue.
        self.storing = JobServer(self.clock, handlePrefix=b"H", policies=Policies.fromText(FILE), queue=self.queue)

    def test_knownFunction(self) -> None:
        """
        A change applies to a known function at once, over the file's
        policy; the keys it does not name keep the file's values.
        """
        function = self.server.function(b"resize")
        policy = self.server.changePolicy(b"resize", {"max-attempts": 2, "dead-letters": 3})
        self.assertIs(function.policy, policy)
        self.assertEqual((policy.maxAttempts, policy.deadLetters, policy.timeLimit), (2, 3, 10.0))
        self.assertEqual(self.server.policyChanges(b"resize"), {"max-attempts": 2, "dead-letters": 3})

    def test_attemptsFollowChange(self) -> None:
        """
        Jobs already queued follow the changed policy: with max-attempts
        lowered to 1, a lost worker's job is given up at once.
        """
        client = Conn(self.server)
        client.created(b"f", background=True)
        self.server.changePolicy(b"f", {"max-attempts": 1, "dead-letters": 1})
        worker = Conn(self.server)
        worker.canDo(b"f")
        worker.take()
        worker.lose()
        self.assertEqual(self.server.jobCount(), 0)
        self.assertEqual(len(self.server.deadLetters.of(b"f")), 1)

    def test_unknownFunction(self) -> None:
        """
        A change of a function not known yet applies once it is.
        """
        self.server.changePolicy(b"later", {"max-running": 4})
        self.assertNotIn(b"later", self.server.functions)
        self.assertEqual(self.server.policyOf(b"later").maxRunning, 4)
        self.assertEqual(self.server.function(b"later").policy.maxRunning, 4)

    def test_merged(self) -> None:
        """
        Changes add up key by key; None takes one back; with none left the
        function follows the file again.
        """
        self.server.changePolicy(b"f", {"max-attempts": 2})
        self.server.changePolicy(b"f", {"backoff": {"base": 1}})
        self.assertEqual(self.server.policyChanges(b"f"), {"max-attempts": 2, "backoff": {"base": 1}})
        policy = self.server.changePolicy(b"f", {"max-attempts": None, "not-changed": None})
        self.assertEqual((policy.maxAttempts, policy.backoff.base), (5, 1.0))  # type: ignore[union-attr]
        self.server.changePolicy(b"f", {"backoff": None})
        self.assertEqual(self.server.policyChanges(b"f"), {})
        self.assertFalse(self.server.resetPolicy(b"f"))

    def test_invalid(self) -> None:
        """
        A change with an unknown key or a value out of range is refused
        whole: nothing changes.
        """
        self.server.changePolicy(b"f", {"max-attempts": 2})
        for changes in (
            {"max-attempts": 3, "colour": "red"},
            {"max-attempts": -1},
            {"backoff": {"factor": 0.5}},
            {"time-limit": "soon"},
            {"retry-failures": 1},
        ):
            self.assertRaises(PoliciesError, self.server.changePolicy, b"f", changes)
        self.assertEqual(self.server.policyChanges(b"f"), {"max-attempts": 2})
        self.assertEqual(self.server.function(b"f").policy.maxAttempts, 2)

    def test_keptOverReload(self) -> None:
        """
        A reloaded file changes what the run-time changes do not name; the
        changes stay.
        """
        self.server.changePolicy(b"resize", {"max-attempts": 2})
        function = self.server.function(b"resize")
        self.server.setPolicies(Policies.fromText('[functions."r*"]\ntime-limit = 20\nmax-attempts = 9\n'))
        self.assertEqual((function.policy.maxAttempts, function.policy.timeLimit), (2, 20.0))

    def test_maxRunningRaisedWakes(self) -> None:
        """
        Raising max-running at run time wakes a sleeper per slot it opens,
        as a reload does.
        """
        self.server.changePolicy(b"f", {"max-running": 1})
        client = Conn(self.server)
        for _ in range(3):
            client.created(b"f", background=True)
        busy = Conn(self.server)
        busy.canDo(b"f")
        busy.take()
        sleepers = [Conn(self.server) for _ in range(2)]
        for sleeper in sleepers:
            sleeper.canDo(b"f")
            sleeper.sleep()
        self.server.changePolicy(b"f", {"max-running": 3})
        self.assertEqual([sleeper.packets() for sleeper in sleepers], [[(PacketType.NOOP, [])]] * 2)

    def test_reset(self) -> None:
        """
        resetPolicy takes back every change of a function.
        """
        self.server.changePolicy(b"f", {"max-attempts": 2, "max-rate": 3})
        self.assertTrue(self.server.resetPolicy(b"f"))
        self.assertEqual(self.server.policyChanges(b"f"), {})
        self.assertEqual(self.server.function(b"f").policy, Policies.fromText(FILE).forFunction(b"f"))

    def test_stored(self) -> None:
        """
        With a persistent queue each change is stored under the function's
        name, as the whole of its changes in JSON; a reset drops it.
        """
        self.storing.changePolicy(b"f", {"max-attempts": 2})
        self.storing.changePolicy(b"f", {"backoff": {"base": 1.5}})
        self.storing.resetPolicy(b"f")
        [first, second, reset] = self.queue.changes
        self.assertEqual(first[:1] + first[2:], (POLICY_CHANGES, [], []))
        self.assertEqual(
            [(name, json.loads(value)) for name, value in second[1]],
            [(b"f", {"max-attempts": 2, "backoff": {"base": 1.5}})],
        )
        self.assertEqual(reset, (POLICY_CHANGES, [], [], [b"f"]))

    def test_notStoredWithoutQueue(self) -> None:
        self.server.changePolicy(b"f", {"max-attempts": 2})
        self.assertEqual(self.queue.changes, [])

    def test_restore(self) -> None:
        """
        Stored changes are applied at start over the file's policies.
        """
        self.storing.function(b"resize")
        self.storing.restorePolicyChanges([(b"resize", b'{"max-attempts": 1}'), (b"new", b'{"dead-letters": 4}')])
        self.assertEqual(self.storing.functions[b"resize"].policy.maxAttempts, 1)
        self.assertEqual(self.storing.functions[b"resize"].policy.timeLimit, 10.0)
        self.assertEqual(self.storing.policyOf(b"new").deadLetters, 4)
        self.assertEqual(self.queue.changes, [])

    def test_restoreCorrupt(self) -> None:
        for value in (b"{", b'{"colour": 1}', b"\xff", b"[1]"):
            self.assertRaises(QueueError, self.server.restorePolicyChanges, [(b"f", value)])


class ParseSettingTests(SynchronousTestCase):
    """
    L{parseSetting} reads one setting as the policy file writes it.
    """

    def test_values(self) -> None:
        self.assertEqual(parseSetting("max-attempts", "3"), {"max-attempts": 3})
        self.assertEqual(parseSetting("backoff", "{base=1,cap=5}"), {"backoff": {"base": 1, "cap": 5}})
        self.assertEqual(parseSetting("backoff", "false"), {"backoff": False})
        self.assertEqual(parseSetting("time-limit", "2.5"), {"time-limit": 2.5})

    def test_bad(self) -> None:
        for key, text in (("colour", "1"), ("max-attempts", "[1"), ("max-attempts", ""), ("max-attempts", "1\nx=2")):
            self.assertRaises(PoliciesError, parseSetting, key, text)


class PolicyAdminTests(SynchronousTestCase):
    """
    C{policy set FUNCTION KEY VALUE} and C{policy reset FUNCTION}.
    """

    def setUp(self) -> None:
        self.server = JobServer(Clock(), handlePrefix=b"H", policies=Policies.fromText(FILE))
        self.admin = AdminCommands(self.server)
        self.peer = Conn(self.server).peer

    def line(self, line: bytes) -> bytes:
        reply = self.admin.execute(self.peer, line)
        assert isinstance(reply, bytes)
        return reply

    def test_set(self) -> None:
        self.assertEqual(self.line(b"policy set resize max-attempts 2"), b"OK\n")
        self.assertEqual(self.line(b"policy set resize backoff {base=1,cap=5,jitter=0}"), b"OK\n")
        shown = self.line(b"policy resize")
        self.assertIn(b"max-attempts 2\n", shown)
        self.assertIn(b"backoff base=1 cap=5 factor=2 jitter=0\n", shown)
        self.assertIn(b"time-limit 10\n", shown)

    def test_setRefused(self) -> None:
        """
        A bad key or value is refused with the reason; nothing changes.
        """
        replies: List[bytes] = [
            self.line(b"policy set f colour 1"),
            self.line(b"policy set f max-attempts -1"),
            self.line(b"policy set f max-attempts [1"),
            self.line(b"policy set f backoff {factor=0.5}"),
            # Beyond a float, beyond Python's int reading, nested too deep.
            self.line(b"policy set f time-limit " + b"9" * 400),
            self.line(b"policy set f backoff {cap=" + b"9" * 400 + b"}"),
            self.line(b"policy set f max-attempts " + b"9" * 5000),
            self.line(b"policy set f backoff " + b"{a=" * 3000 + b"1" + b"}" * 3000),
        ]
        for reply in replies:
            self.assertTrue(reply.startswith(b"ERR INVALID_ARGUMENTS "), reply)
            self.assertTrue(reply.endswith(b"\r\n"))
            self.assertNotIn(b" ", reply[len(b"ERR INVALID_ARGUMENTS ") :])
        self.assertIn(b"unknown+key+colour", replies[0])
        self.assertIn(b"max-attempts+must+be+a+whole+number", replies[1])
        self.assertEqual(self.server.policyChanges(b"f"), {})

    def test_backoffInParts(self) -> None:
        """
        Backoff keys changed one at a time add up: a change keeps the keys
        changed before.
        """
        self.assertEqual(self.line(b"policy set f backoff {base=5}"), b"OK\n")
        self.assertEqual(self.line(b"policy set f backoff {cap=100}"), b"OK\n")
        backoff = self.server.policyOf(b"f").backoff
        assert backoff is not None
        self.assertEqual((backoff.base, backoff.cap), (5.0, 100.0))
        self.assertEqual(self.server.policyChanges(b"f"), {"backoff": {"base": 5, "cap": 100}})

    def test_reset(self) -> None:
        self.line(b"policy set f max-attempts 2")
        self.assertEqual(self.line(b"policy reset f"), b"OK 1\n")
        self.assertEqual(self.line(b"policy reset f"), b"OK 0\n")
        self.assertIn(b"max-attempts 5\n", self.line(b"policy f"))

    def test_functionsNamedSetOrReset(self) -> None:
        """
        C{policy set} and C{policy reset} alone show those functions.
        """
        self.assertIn(b"max-attempts 5\n", self.line(b"policy set"))
        self.assertIn(b"max-attempts 5\n", self.line(b"policy reset"))
        self.assertTrue(self.line(b"policy set f max-attempts").startswith(b"ERR INVALID_ARGUMENTS"))

    def test_aclTargets(self) -> None:
        """
        The access policy sees the function a change acts on.
        """
        protocol = GearmanServerFactory(self.server).buildProtocol(None)
        assert protocol is not None
        targets = [
            protocol._adminTarget(line)
            for line in (b"policy set f max-attempts 2", b"policy reset g", b"policy h", b"policy set")
        ]
        self.assertEqual(targets, [b"f", b"g", b"h", b"set"])
        # The words the command reads: a trailing space is an empty name.
        self.assertEqual(protocol._adminTarget(b"policy reset "), b"")
        self.assertEqual(protocol._adminTarget(b"deadletters f "), b"*")
