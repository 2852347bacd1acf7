"""
Tests for L{gearman_tw.server.acl}: policy files, decisions, reloading, and
the job server's connections refusing what the policy does not allow.
"""

from __future__ import annotations

import os
import tempfile
from typing import List, Optional, Tuple

from OpenSSL import crypto
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.protocol import REQ, RES, PacketType, encode, parseAll
from gearman_tw.server.acl import AccessControl, Identities, Policy, PolicyError, certificateName
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.protocol import GearmanServerProtocol
from tests.tlscerts import makeCertificate

P = PacketType

POLICY = """
[tokens]
ops = "ops-secret"
ci = "ci-secret"

[[allow]]
who = ["cert:web-*", "token:ops"]
submit = ["resize.*", "email"]

[[allow]]
who = ["cert:worker-*", "address:10.0.0.0/8"]
work = ["resize.*"]

[[allow]]
who = "cert:admin"
admin = ["*"]

[[allow]]
who = ["address:127.0.0.2"]
admin = ["resize.*"]

[[allow]]
who = "*"
submit = "public.*"
"""


def writePolicy(testCase: SynchronousTestCase, text: str, path: Optional[str] = None) -> str:
    if path is None:
        directory = tempfile.mkdtemp()
        testCase.addCleanup(lambda: __import__("shutil").rmtree(directory, True))
        path = os.path.join(directory, "policy.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


class PolicyTests(SynchronousTestCase):
    """
    Parsing policies and what they allow.
    """

    def setUp(self) -> None:
        self.policy = Policy.fromText(POLICY)

    def allows(self, action: str, function: str, names: Tuple[str, ...] = (), address: Optional[str] = None) -> bool:
        return self.policy.allows(Identities(names, address), action, function)

    def test_certificateNames(self) -> None:
        """
        C{cert:} patterns match certificate names by glob; rights are per
        action and per function glob.
        """
        self.assertTrue(self.allows("submit", "resize.png", ("cert:web-1",)))
        self.assertTrue(self.allows("submit", "email", ("cert:web-1",)))
        self.assertFalse(self.allows("submit", "emails", ("cert:web-1",)))
        self.assertFalse(self.allows("work", "resize.png", ("cert:web-1",)))
        self.assertTrue(self.allows("work", "resize.png", ("cert:worker-7",)))
        self.assertFalse(self.allows("submit", "resize.png", ("cert:worker-7",)))
        self.assertTrue(self.allows("admin", "anything", ("cert:admin",)))
        self.assertFalse(self.allows("admin", "anything", ("cert:administrator",)))

    def test_addresses(self) -> None:
        """
        C{address:} patterns match an address or network.
        """
        self.assertTrue(self.allows("work", "resize.x", address="10.1.2.3"))
        self.assertFalse(self.allows("work", "resize.x", address="11.1.2.3"))
        self.assertTrue(self.allows("admin", "resize.x", address="127.0.0.2"))
        self.assertFalse(self.allows("admin", "*", address="127.0.0.2"))
        self.assertFalse(self.allows("work", "resize.x", address="::1"))

    def test_everyone(self) -> None:
        """
        C{"*"} covers anyone, even a peer with no name or address.
        """
        self.assertTrue(self.allows("submit", "public.news"))
        self.assertFalse(self.allows("submit", "private"))

    def test_tokens(self) -> None:
        """
        Tokens are named; a rule names them by C{token:NAME}.
        """
        self.assertEqual(self.policy.tokens, {b"ops-secret": "ops", b"ci-secret": "ci"})
        self.assertTrue(self.allows("submit", "email", ("token:ops",)))
        self.assertFalse(self.allows("submit", "email", ("token:ci",)))

    def test_empty(self) -> None:
        """
        An empty policy allows nothing.
        """
        policy = Policy.fromText("")
        self.assertFalse(policy.allows(Identities(["cert:x"], "127.0.0.1"), "submit", "f"))

    def test_errors(self) -> None:
        """
        Every mistake is a L{PolicyError} with one line saying what is
        wrong.
        """
        cases = {
            "[[allow]\n": "not valid TOML",
            "[stuff]\n": "unknown table stuff",
            "[[allow]]\nsubmit = ['f']\n": "rule 1: who",
            "[[allow]]\nwho = []\nsubmit = ['f']\n": "rule 1: who names no one",
            "[[allow]]\nwho = 'web'\n": "must start with cert:, token: or address:",
            "[[allow]]\nwho = 'address:10.0.0.300'\n": "is not an address or network",
            "[[allow]]\nwho = 'token:nobody'\n": "names no token",
            "[[allow]]\nwho = '*'\nsubmit = [1]\n": "rule 1: submit must be a string or an array",
            "[[allow]]\nwho = '*'\nsubmitt = 'f'\n": "rule 1: unknown key submitt",
            "[tokens]\na = 'x'\nb = 'x'\n": "tokens 'a' and 'b' are the same",
            "[tokens]\na = ''\n": "token 'a' must be a non-empty ASCII string",
            "allow = 3\n": "allow must be an array of tables",
        }
        for text, expected in cases.items():
            with self.assertRaises(PolicyError, msg=text) as caught:
                Policy.fromText(text)
            message = str(caught.exception)
            self.assertIn(expected, message, text)
            self.assertNotIn("\n", message)

    def test_fileErrors(self) -> None:
        """
        A missing file, or one that is not UTF-8, is named in the error.
        """
        with self.assertRaises(PolicyError) as caught:
            Policy.fromFile("/nonexistent/policy.toml")
        self.assertIn("cannot read the access policy /nonexistent/policy.toml", str(caught.exception))
        path = writePolicy(self, "")
        with open(path, "wb") as f:
            f.write(b"\xff\xfe")
        with self.assertRaises(PolicyError) as caught:
            Policy.fromFile(path)
        self.assertIn("not UTF-8", str(caught.exception))


class AccessControlTests(SynchronousTestCase):
    """
    L{AccessControl}: decisions with reasons, counting, reloading.
    """

    def test_checkAndCount(self) -> None:
        """
        A refusal says who may not do what; refusals are counted per
        action.
        """
        acl = AccessControl(writePolicy(self, POLICY))
        web = Identities(["cert:web-1"], "192.0.2.1")
        self.assertIsNone(acl.check(web, "submit", b"email"))
        self.assertEqual(
            acl.check(web, "submit", b"secret\n"),
            "cert:web-1, address:192.0.2.1 may not submit to secret\\n",
        )
        self.assertEqual(acl.check(Identities(), "admin", b"*"), "anonymous may not administer every function")
        self.assertEqual(acl.refused, {"submit": 1, "work": 0, "admin": 1})

    def test_reload(self) -> None:
        """
        L{AccessControl.reload} puts a changed file in force, decisions
        already made included; a broken file is logged and the policy in
        force kept.
        """
        path = writePolicy(self, "[[allow]]\nwho = '*'\nsubmit = 'a'\n")
        events: List[dict] = []
        acl = AccessControl(path, Logger(observer=events.append))  # type: ignore[arg-type]
        anyone = Identities()
        self.assertIsNone(acl.check(anyone, "submit", b"a"))
        writePolicy(self, "[[allow]]\nwho = '*'\nsubmit = 'b'\n", path)
        self.assertTrue(acl.reload())
        self.assertIsNotNone(acl.check(anyone, "submit", b"a"))
        self.assertIsNone(acl.check(anyone, "submit", b"b"))
        writePolicy(self, "[[allow]\n", path)
        self.assertFalse(acl.reload())
        self.assertIsNone(acl.check(anyone, "submit", b"b"))
        self.assertIn("not valid TOML", events[-1]["why"])

    def test_tokenName(self) -> None:
        """
        A bearer token is named by the policy, or not known.
        """
        acl = AccessControl(writePolicy(self, POLICY))
        self.assertEqual(acl.tokenName(b"ops-secret"), "ops")
        self.assertIsNone(acl.tokenName(b"ops-secre"))


class CertificateNameTests(SynchronousTestCase):
    """
    L{certificateName} reads the common name of a peer's certificate.
    """

    def test_name(self) -> None:
        certificate, _ = makeCertificate("worker-3")
        x509 = crypto.X509.from_cryptography(certificate)

        class TLSTransport:
            def getPeerCertificate(self) -> object:
                return x509

        self.assertEqual(certificateName(TLSTransport()), "worker-3")

    def test_none(self) -> None:
        """
        No TLS, or no certificate: no name.
        """

        class NoCertificate:
            def getPeerCertificate(self) -> None:
                return None

        self.assertIsNone(certificateName(StringTransport()))
        self.assertIsNone(certificateName(NoCertificate()))


class ServerPolicyTests(SynchronousTestCase):
    """
    A job server with a policy refuses, per connection, what it does not
    allow, and serves the rest as before.
    """

    def setUp(self) -> None:
        acl = AccessControl(writePolicy(self, POLICY))
        self.factory = GearmanServerFactory(JobServer(Clock()), acl=acl)

    def connect(self, host: str = "192.0.2.1") -> Tuple[GearmanServerProtocol, StringTransport]:
        address = IPv4Address("TCP", host, 40000)
        protocol = self.factory.buildProtocol(address)
        assert protocol is not None
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        return protocol, transport

    def replies(self, transport: StringTransport) -> List[Tuple[int, List[bytes]]]:
        packets = parseAll(transport.value(), RES)
        transport.clear()
        return [(ptype, args) for ptype, args, _ in packets]

    def test_submit(self) -> None:
        """
        Every kind of submission to a function the peer may not submit to
        gets an ERROR and makes no job; others are created.
        """
        protocol, transport = self.connect()
        for packet in (
            encode(P.SUBMIT_JOB, b"private", b"", b"x", magic=REQ),
            encode(P.SUBMIT_JOB_HIGH_BG, b"private", b"", b"x", magic=REQ),
            encode(P.SUBMIT_JOB_EPOCH, b"private", b"", b"99", b"x", magic=REQ),
            encode(P.SUBMIT_REDUCE_JOB, b"private", b"", b"r", b"", b"x", magic=REQ),
            encode(P.SUBMIT_REDUCE_JOB_BACKGROUND, b"private", b"", b"r", b"", b"x", magic=REQ),
        ):
            protocol.dataReceived(packet)
            [(ptype, args)] = self.replies(transport)
            self.assertEqual((ptype, args[0]), (P.ERROR, b"PERMISSION_DENIED"))
            self.assertEqual(args[1], b"address:192.0.2.1 may not submit to private")
        self.assertEqual(self.factory.server.jobCount(), 0)
        protocol.dataReceived(encode(P.SUBMIT_JOB_BG, b"public.news", b"", b"x", magic=REQ))
        [(ptype, _)] = self.replies(transport)
        self.assertEqual(ptype, P.JOB_CREATED)
        self.assertEqual(self.factory.acl.refused["submit"], 5)  # type: ignore[union-attr]

    def test_work(self) -> None:
        """
        A CAN_DO (or CAN_DO_TIMEOUT) the policy refuses gets an ERROR and
        registers nothing: the worker is never given that function's jobs.
        """
        worker, transport = self.connect("10.1.1.1")
        worker.dataReceived(
            encode(P.CAN_DO, b"email", magic=REQ)
            + encode(P.CAN_DO_TIMEOUT, b"email2", b"10", magic=REQ)
            + encode(P.CAN_DO, b"resize.png", magic=REQ)
        )
        replies = self.replies(transport)
        self.assertEqual([(t, a[0]) for t, a in replies], [(P.ERROR, b"PERMISSION_DENIED")] * 2)
        names = sorted(f.name for f in self.factory.server.functions.values() if f.workers)
        self.assertEqual(names, [b"resize.png"])

    def test_admin(self) -> None:
        """
        Listings need admin on every function, per-function commands admin
        on theirs; version, getpid and verbose are open.
        """
        protocol, transport = self.connect("127.0.0.2")
        protocol.dataReceived(b"status\r\n")
        self.assertEqual(
            transport.value(),
            b"ERR PERMISSION_DENIED address:127.0.0.2+may+not+administer+every+function\r\n",
        )
        transport.clear()
        protocol.dataReceived(b"maxqueue resize.png 10\n")
        self.assertEqual(transport.value(), b"OK\n")
        transport.clear()
        protocol.dataReceived(b"drop function email\n")
        self.assertTrue(transport.value().startswith(b"ERR PERMISSION_DENIED"))
        transport.clear()
        protocol.dataReceived(b"version\n")
        self.assertTrue(transport.value().startswith(b"OK "))

    def test_cancelByFunction(self) -> None:
        """
        C{cancel job} needs admin on the job's function.
        """
        client, transport = self.connect("192.0.2.1")
        client.dataReceived(
            encode(P.SUBMIT_JOB_BG, b"public.a", b"", b"x", magic=REQ)
        )
        [(_, [handle])] = self.replies(transport)
        admin, transport = self.connect("127.0.0.2")
        admin.dataReceived(b"cancel job " + handle + b"\n")
        self.assertTrue(transport.value().startswith(b"ERR PERMISSION_DENIED"))
        self.assertEqual(self.factory.server.jobCount(), 1)

    def test_jobRefusalsSayNothing(self) -> None:
        """
        C{result} and C{cancel job} refused for a job of a function the peer
        may not administer get the same line as for a job the server does
        not know: it learns neither the job's function nor that it exists.
        The log keeps the whole reason.
        """
        client, transport = self.connect("192.0.2.1")
        client.dataReceived(encode(P.SUBMIT_JOB_BG, b"public.secret", b"u-1", b"x", magic=REQ))
        [(_, [handle])] = self.replies(transport)
        admin, transport = self.connect("127.0.0.2")
        replies = []
        for line in [
            b"result " + handle,
            b"result H:nowhere:1",
            b"result unique u-1",
            b"result unique u-2",
            b"cancel job " + handle,
            b"cancel job H:nowhere:1",
        ]:
            admin.dataReceived(line + b"\n")
            replies.append(transport.value())
            transport.clear()
        refusal = b"ERR PERMISSION_DENIED address:127.0.0.2+may+not+%s+this+job:+that+needs+admin+on+its+function\r\n"
        self.assertEqual(replies, [refusal % (b"see",)] * 4 + [refusal % (b"cancel",)] * 2)
        self.assertEqual(self.factory.server.jobCount(), 1)

    def test_blankLines(self) -> None:
        """
        A blank line (or one of spaces) is an unknown command, as without a
        policy, whoever sends it; other whitespace is a word, refused as any
        unknown command is to who may not administer every function.
        Nothing fails, the connection stays.
        """
        protocol, transport = self.connect("127.0.0.2")
        for line, reply in (
            (b"\n", b"ERR UNKNOWN_COMMAND"),
            (b" \n", b"ERR UNKNOWN_COMMAND"),
            (b"\t\n", b"ERR PERMISSION_DENIED"),
            (b"\x0b\n", b"ERR PERMISSION_DENIED"),
        ):
            protocol.dataReceived(line)
            self.assertTrue(transport.value().startswith(reply), line)
            self.assertFalse(transport.disconnecting)
            transport.clear()

    def test_noPolicy(self) -> None:
        """
        Without a policy everything is allowed, as before.
        """
        self.factory.acl = None
        protocol, transport = self.connect()
        protocol.dataReceived(encode(P.SUBMIT_JOB_BG, b"private", b"", b"x", magic=REQ) + b"status\n")
        self.assertTrue(transport.value().endswith(b"private\t1\t0\t0\n.\n"))


class ClientRefusalTests(SynchronousTestCase):
    """
    Our client, refused by a policy, fails that job with L{ServerError}
    and goes on with the others on the same connection.
    """

    def test_refusedJobFails(self) -> None:
        from twisted.test import iosim

        from gearman_tw.client import GearmanClientProtocol, Task
        from gearman_tw.errors import ServerError

        clock = Clock()
        acl = AccessControl(writePolicy(self, POLICY))
        factory = GearmanServerFactory(JobServer(clock), acl=acl)
        client = GearmanClientProtocol()
        _, _, pump = iosim.connectedServerAndClient(
            lambda: factory.buildProtocol(None), lambda: client, greet=False, clock=clock
        )
        refused = Task(b"private", b"x", background=True)
        allowed = Task(b"public.x", b"y", background=True)
        client.submit(refused)
        client.submit(allowed)
        pump.flush()
        failure = self.failureResultOf(refused.result, ServerError)
        refused.whenCreated().addErrback(lambda f: None)
        self.assertEqual(failure.value.code, b"PERMISSION_DENIED")
        self.assertIn("may not submit to private", str(failure.value))
        self.assertTrue(self.successResultOf(allowed.whenCreated()))
