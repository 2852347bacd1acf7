"""
TLS on the job server's port (C{twistd gearman --ssl}, mutual TLS with
C{--ssl-ca-file}) and our client and worker verifying the server, against
real processes: our server, Python's C{ssl}, C{openssl s_client}.
"""

import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gearman_tw.client import GearmanClient
from gearman_tw.errors import ServerUnavailable
from gearman_tw.worker import GearmanWorker
from tests.integration.servers import REPO, packet, requireProgram, startOurs, stopProcess, waitFor
from tests.tlscerts import Certificates, makeCertificate, writePEM

#: ECHO_REQ "hello" and its ECHO_RES.
ECHO = packet(16, b"hello")
ECHOED = b"\0RES\0\0\0\x11\0\0\0\x05hello"


def exchange(port: int, context: ssl.SSLContext, data: bytes, until: bytes) -> Tuple[bytes, int]:
    """
    Send C{data} over TLS right after the handshake and read until C{until}
    arrives, the server closes, or 5 s pass.

    @return: what was read, and the local port the connection came from.
    @raise ssl.SSLError: the server refused the connection.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        local = raw.getsockname()[1]
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(data)
            reply = b""
            deadline = time.monotonic() + 5
            while until not in reply and time.monotonic() < deadline:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return reply, local


def logged(server, text: str) -> bool:
    """
    Whether C{server} logs C{text} within 5 s.
    """
    return bool(waitFor(lambda: text in server.log(), 5.0))


class TLSTests(SynchronousTestCase):
    """
    The server speaks Gearman over TLS with gearmand's --ssl options.
    """

    def setUp(self) -> None:
        self.certificates = Certificates(self)

    def test_echo(self) -> None:
        """
        A TLS client verifying the server's certificate gets ECHO_RES.
        """
        server = startOurs(self, *self.certificates.serverArgs())
        reply, _ = exchange(server.port, self.certificates.context(), ECHO, ECHOED)
        self.assertEqual(reply, ECHOED)

    def test_chain(self) -> None:
        """
        Certificates after the first in --ssl-certificate are sent as the
        chain: a client trusting only the root verifies a server whose
        certificate an intermediate signed.
        """
        c = self.certificates
        intermediate = makeCertificate("intermediate", issuer=c.ca, ca=True)
        leafPath, leafKey = writePEM(c.directory, "leaf", *makeCertificate("leaf", issuer=intermediate))
        middlePath, _ = writePEM(c.directory, "middle", *intermediate)
        with open(leafPath, "ab") as out, open(middlePath, "rb") as middle:
            out.write(middle.read())
        server = startOurs(self, *c.serverArgs(server=(leafPath, leafKey)))
        reply, _ = exchange(server.port, c.context(), ECHO, ECHOED)
        self.assertEqual(reply, ECHOED)

    def test_plainRefused(self) -> None:
        """
        A plaintext client on the TLS port gets no Gearman answer, and the
        server logs one line saying so, without a traceback.
        """
        server = startOurs(self, *self.certificates.serverArgs())
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as bare:
            checked = bare.getsockname()[1]
        conn = server.connect()
        self.addCleanup(conn.close)
        local = conn.sock.getsockname()[1]
        conn.send(b"status\n")
        self.assertNotIn(b".\n", conn.quiet(0.5))
        self.assertTrue(
            logged(server, "TLS handshake with 127.0.0.1:%d failed: not TLS, a plaintext client?" % (local,)),
            server.log(),
        )
        self.assertNotIn("Traceback", server.log())
        # A peer that only connected and closed, as a port check does, is no failure.
        self.assertNotIn("127.0.0.1:%d " % (checked,), server.log())

    def test_clientCertificateRequired(self) -> None:
        """
        With --ssl-ca-file, a client with a certificate the CA signed is
        served; one without a certificate, with one from another CA, or
        with an expired one is refused in the handshake, and the server
        logs one line per refusal naming the peer and the reason.
        """
        c = self.certificates
        server = startOurs(self, *c.serverArgs(mutual=True))
        reply, _ = exchange(server.port, c.context(c.client), ECHO, ECHOED)
        self.assertEqual(reply, ECHOED)
        refusals = [
            (None, "no client certificate (peer did not return a certificate)"),
            (c.stranger, "client certificate CN=stranger not trusted: unable to get local issuer certificate"),
            (c.issue("late", expired=True), "client certificate CN=late not trusted: certificate has expired"),
        ]
        for client, why in refusals:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
                local = raw.getsockname()[1]
                with c.context(client).wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(ECHO)
                    with self.assertRaises(ssl.SSLError):
                        tls.recv(4096)
            line = "TLS handshake with 127.0.0.1:%d failed: %s" % (local, why)
            self.assertTrue(logged(server, line), server.log())
            self.assertEqual(server.log().count("TLS handshake with 127.0.0.1:%d " % (local,)), 1)
        self.assertNotIn("Traceback", server.log())

    def test_noServiceWithoutCertificate(self) -> None:
        """
        A client refused in the handshake gets nothing done: the job it
        submitted at once (TLS 1.3 lets it send before the server has
        checked its certificate) is not queued.
        """
        c = self.certificates
        server = startOurs(self, *c.serverArgs(mutual=True))
        submit = packet(7, b"refused-fn", b"", b"data")  # SUBMIT_JOB
        for client in (None, c.stranger):
            with self.assertRaises(ssl.SSLError):
                exchange(server.port, c.context(client), submit, b"JOB_CREATED")
        status, _ = exchange(server.port, c.context(c.client), b"status\n", b".\n")
        self.assertTrue(status.endswith(b".\n"), status)
        self.assertNotIn(b"refused-fn", status)


class OpenSSLClientTests(SynchronousTestCase):
    """
    C{openssl s_client}, a real TLS client process, against our mutual TLS
    server.
    """

    def setUp(self) -> None:
        self.openssl = requireProgram("openssl")
        self.certificates = Certificates(self)
        self.server = startOurs(self, *self.certificates.serverArgs(mutual=True))

    def sClient(self, *args: str) -> subprocess.CompletedProcess:
        """
        Run C{openssl s_client} with C{args}, verifying the server as
        C{localhost} against the test CA, send the admin command
        C{version}, and give it 3 s for the answer.
        """
        process = subprocess.Popen(
            [
                self.openssl,
                "s_client",
                "-connect",
                "127.0.0.1:%d" % (self.server.port,),
                "-CAfile",
                self.certificates.caPath,
                "-verify_return_error",
                "-verify_hostname",
                "localhost",
                "-quiet",
                "-no_ign_eof",
                *args,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stdin is not None
            process.stdin.write(b"version\n")
            process.stdin.flush()
            time.sleep(1.0)
            # Closing stdin makes s_client end the session (-no_ign_eof).
            stdout, stderr = process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def test_withCertificate(self) -> None:
        """
        s_client with a client certificate the CA signed verifies the
        server and gets the admin command answered.
        """
        result = self.sClient("-cert", self.certificates.client[0], "-key", self.certificates.client[1])
        self.assertRegex(result.stdout, rb"^OK \S+\n$")
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_withoutCertificate(self) -> None:
        """
        s_client without a certificate is refused (TLS alert
        C{certificate required}) and gets no answer; the server logs why.
        """
        result = self.sClient()
        self.assertEqual(result.stdout, b"")
        self.assertIn(b"alert certificate required", result.stderr)
        self.assertNotEqual(result.returncode, 0)
        self.assertTrue(logged(self.server, "failed: no client certificate"), self.server.log())

    def test_otherCA(self) -> None:
        """
        s_client with a certificate of another CA is refused (TLS alert
        C{unknown ca}) and gets no answer; the server logs why.
        """
        result = self.sClient("-cert", self.certificates.stranger[0], "-key", self.certificates.stranger[1])
        self.assertEqual(result.stdout, b"")
        self.assertIn(b"alert unknown ca", result.stderr)
        self.assertNotEqual(result.returncode, 0)
        self.assertTrue(
            logged(self.server, "failed: client certificate CN=stranger not trusted"), self.server.log()
        )


class TLSClientTests(TestCase):
    """
    GearmanClient and GearmanWorker over C{tls:} endpoint descriptions,
    which verify the server's certificate and host name.
    """

    timeout = 60

    def setUp(self) -> None:
        self.certificates = Certificates(self)

    @inlineCallbacks
    def roundTrip(self, client: str, worker: Optional[str] = None):
        """
        Submit a job through a client on C{client} to a worker on C{worker}
        (the same server by default); fire with its result.
        """
        gearmanWorker = GearmanWorker([worker or client])
        gearmanWorker.register("upper", lambda job: job.data.upper())
        gearmanWorker.startService()
        self.addCleanup(gearmanWorker.stopService)
        gearmanClient = GearmanClient([client], timeout=30)
        gearmanClient.startService()
        self.addCleanup(gearmanClient.stopService)
        result = yield gearmanClient.submitJob("upper", b"secret")
        return result

    @inlineCallbacks
    def refusal(self, description: str):
        """
        Submit a job through a client on C{description}; fire with why the
        server could not be used.
        """
        client = GearmanClient([description], connectTimeout=3)
        client.startService()
        self.addCleanup(client.stopService)
        try:
            yield client.submitJob("upper", b"secret")
        except ServerUnavailable as e:
            self.assertEqual([name for name, _ in e.servers], [description])
            self.assertIn(e.servers[0][1], str(e))
            return e.servers[0][1]
        self.fail("the job was submitted")

    @inlineCallbacks
    def test_jobOverTLS(self):
        """
        A job submitted and worked over TLS, both sides verifying the
        server's certificate against the test CA, given as a PEM file or
        as a directory of them.
        """
        c = self.certificates
        server = startOurs(self, *c.serverArgs())
        trust = os.path.join(c.directory, "trust")
        os.mkdir(trust)
        shutil.copy(c.caPath, os.path.join(trust, "ca.pem"))
        result = yield self.roundTrip(
            self.certificates.description(server.port, c.caPath, host="localhost"),
            self.certificates.description(server.port, trust),
        )
        self.assertEqual(result, b"SECRET")

    @inlineCallbacks
    def test_mutualTLS(self):
        """
        Against a server requiring client certificates, a client and a
        worker presenting one work a job.
        """
        c = self.certificates
        server = startOurs(self, *c.serverArgs(mutual=True))
        result = yield self.roundTrip(self.certificates.description(server.port, c.caPath, c.client))
        self.assertEqual(result, b"SECRET")

    @inlineCallbacks
    def test_noClientCertificate(self):
        """
        A client without a certificate, against a server requiring one,
        fails its submission saying that the server asked for one.
        """
        c = self.certificates
        server = startOurs(self, *c.serverArgs(mutual=True))
        why = yield self.refusal(self.certificates.description(server.port, c.caPath))
        self.assertEqual(why, "TLS failure: tlsv13 alert certificate required")
        self.assertTrue(logged(server, "failed: no client certificate"), server.log())

    @inlineCallbacks
    def test_untrusted(self):
        """
        A client trusting another CA than the server's fails its
        submission with an error naming the server and why.
        """
        c = self.certificates
        server = startOurs(self, *c.serverArgs())
        why = yield self.refusal(self.certificates.description(server.port, c.otherCAPath))
        self.assertEqual(why, "server certificate CN=server not trusted: unable to get local issuer certificate")
        self.assertTrue(logged(server, "failed: the client ended it (tlsv1 alert unknown ca)"), server.log())

    @inlineCallbacks
    def test_platformTrustByDefault(self):
        """
        Without C{trustRoots}, the server's certificate is verified against
        the platform's trust store, which does not hold a private CA.
        """
        c = self.certificates
        server = startOurs(self, *c.serverArgs())
        why = yield self.refusal(self.certificates.description(server.port))
        self.assertEqual(why, "server certificate CN=server not trusted: unable to get local issuer certificate")

    @inlineCallbacks
    def test_selfSigned(self):
        """
        A server with a self-signed certificate, not in the trust roots, is
        refused as such.
        """
        c = self.certificates
        server = startOurs(self, *c.serverArgs(server=c.issue("lonely", issuer=None)))
        why = yield self.refusal(self.certificates.description(server.port, c.caPath))
        self.assertEqual(why, "server certificate CN=lonely not trusted: self-signed certificate")

    @inlineCallbacks
    def test_wrongHostName(self):
        """
        A certificate the trusted CA signed for another name than the one
        connected to is refused.
        """
        c = self.certificates
        server = startOurs(self, *c.serverArgs(server=c.issue("elsewhere", names=["gearman.example"])))
        for host in ("localhost", "127.0.0.1"):
            why = yield self.refusal(self.certificates.description(server.port, c.caPath, host=host))
            self.assertEqual(why, "server certificate CN=elsewhere is not valid for %s" % (host,))

    def test_sslRefused(self):
        """
        An C{ssl:} description, which Twisted does not verify, is refused
        when the client is made.
        """
        with self.assertRaises(ValueError) as caught:
            GearmanClient(["ssl:host=127.0.0.1:port=4730"])
        self.assertIn("use tls:host=HOST:port=PORT", str(caught.exception))
        self.assertTrue(re.search("ssl: client descriptions do not verify", str(caught.exception)))


def shellBlocks(page: str, section: str) -> List[str]:
    """
    The C{code-block:: sh} blocks of C{section} in docs/C{page}, dedented.
    """
    with open(os.path.join(REPO, "docs", page), encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"^%s\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)" % (re.escape(section),), text, re.M | re.S)
    if match is None:
        raise AssertionError("no section %r in %s" % (section, page))
    blocks = re.findall(r"^\.\. code-block:: sh\n\n((?:(?:    .*)?\n)+)", match.group(1), re.M)
    return ["\n".join(line[4:] for line in block.splitlines()).strip() + "\n" for block in blocks]


class DocumentedSetupTests(SynchronousTestCase):
    """
    The TLS set-up of docs/security.rst, run as written: its openssl
    commands, the server command and the C{gearman-tw} commands.
    """

    def test_setup(self) -> None:
        """
        The documented certificates serve mutual TLS, and the documented
        worker and submission print C{SHOUT}.
        """
        requireProgram("openssl")
        certificates, serverCommand, clientCommands = shellBlocks("security.rst", "TLS")
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        made = subprocess.run(
            ["sh", "-e", "-c", certificates],
            cwd=directory,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        self.assertEqual(made.returncode, 0, made.stdout)
        argv = shlex.split(serverCommand)
        self.assertEqual(argv[:5], ["twistd", "-n", "gearman", "--port", "4730"])
        # startOurs picks the port; files are named relative to the directory.
        server = startOurs(
            self, *[os.path.join(directory, a) if os.path.isfile(os.path.join(directory, a)) else a for a in argv[5:]]
        )

        def command(line: str) -> List[str]:
            words = shlex.split(line.replace("port=4730", "port=%d" % (server.port,)))
            self.assertEqual(words[0], "gearman-tw")
            return [sys.executable, "-m", "gearman_tw", *words[1:]]

        env = dict(os.environ, PYTHONPATH=REPO)
        workerLine, submitLine = clientCommands.splitlines()
        self.assertTrue(workerLine.endswith(" &"))
        worker = subprocess.Popen(
            command(workerLine[:-2]), cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.addCleanup(stopProcess, worker)
        result = subprocess.run(
            command(submitLine), cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30
        )
        self.assertEqual((result.returncode, result.stdout), (0, b"SHOUT"), result.stderr)
        self.assertNotIn("TLS handshake", server.log())
