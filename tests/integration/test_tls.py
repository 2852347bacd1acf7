"""
TLS on the job server's port: C{twistd gearman --ssl}.
"""

import os
import socket
import ssl
import tempfile

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gearman_tw.client import GearmanClient
from gearman_tw.errors import ServerUnavailable
from gearman_tw.worker import GearmanWorker

from tests.integration.servers import startOurs
from tests.tlscerts import makeCertificate, writePEM


class TLSTests(SynchronousTestCase):
    """
    The server speaks Gearman over TLS with gearmand's --ssl options.
    """

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp()
        self.ca = makeCertificate("test CA", ca=True)
        self.caPath, _ = writePEM(self.directory, "ca", *self.ca)
        self.certPath, self.keyPath = writePEM(
            self.directory, "server", *makeCertificate("server", issuer=self.ca)
        )

    def clientContext(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.caPath)
        return context

    def roundTrip(self, port: int, context: ssl.SSLContext) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"\0REQ\0\0\0\x10\0\0\0\x05hello")
                reply = b""
                while len(reply) < 17:
                    data = tls.recv(4096)
                    if not data:
                        break
                    reply += data
                return reply

    def test_echo(self) -> None:
        """
        A TLS client verifying the server's certificate gets ECHO_RES.
        """
        server = startOurs(
            self, "--ssl", "--ssl-certificate", self.certPath, "--ssl-key", self.keyPath
        )
        self.assertEqual(
            self.roundTrip(server.port, self.clientContext()), b"\0RES\0\0\0\x11\0\0\0\x05hello"
        )

    def test_chain(self) -> None:
        """
        Certificates after the first in --ssl-certificate are sent as the
        chain: a client trusting only the root verifies a server whose
        certificate an intermediate signed.
        """
        intermediate = makeCertificate("intermediate", issuer=self.ca, ca=True)
        leaf = makeCertificate("leaf", issuer=intermediate)
        leafPath, leafKey = writePEM(self.directory, "leaf", *leaf)
        middlePath, _ = writePEM(self.directory, "middle", *intermediate)
        with open(leafPath, "ab") as out, open(middlePath, "rb") as middle:
            out.write(middle.read())
        server = startOurs(self, "--ssl", "--ssl-certificate", leafPath, "--ssl-key", leafKey)
        self.assertEqual(
            self.roundTrip(server.port, self.clientContext()), b"\0RES\0\0\0\x11\0\0\0\x05hello"
        )

    def test_plainRefused(self) -> None:
        """
        A plaintext client on the TLS port gets no Gearman answer.
        """
        server = startOurs(
            self, "--ssl", "--ssl-certificate", self.certPath, "--ssl-key", self.keyPath
        )
        conn = server.connect()
        self.addCleanup(conn.close)
        conn.send(b"status\n")
        self.assertNotIn(b".\n", conn.quiet(0.5))

    def test_clientCertificateRequired(self) -> None:
        """
        With --ssl-ca-file, a client must present a certificate the CA
        signed; with one, it is served.
        """
        server = startOurs(
            self,
            "--ssl",
            "--ssl-certificate",
            self.certPath,
            "--ssl-key",
            self.keyPath,
            "--ssl-ca-file",
            self.caPath,
        )
        anonymous = self.clientContext()
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            reply = self.roundTrip(server.port, anonymous)
            if not reply:
                raise ConnectionError("closed without a reply")
        clientPaths = writePEM(self.directory, "client", *makeCertificate("client", issuer=self.ca))
        identified = self.clientContext()
        identified.load_cert_chain(*clientPaths)
        self.assertEqual(
            self.roundTrip(server.port, identified), b"\0RES\0\0\0\x11\0\0\0\x05hello"
        )


class TLSClientTests(TestCase):
    """
    GearmanClient and GearmanWorker over tls: endpoint descriptions.
    """

    timeout = 60

    def tlsServer(self, trusted: bool = True) -> str:
        """
        Start our server with a certificate of a test CA; return a client
        endpoint description for it, whose trust roots hold that CA (or,
        with C{trusted} false, only another one).
        """
        directory = tempfile.mkdtemp()
        ca = makeCertificate("test CA", ca=True)
        trust = os.path.join(directory, "trust")
        os.mkdir(trust)
        rootPath, _ = writePEM(directory, "root", *(ca if trusted else makeCertificate("another CA", ca=True)))
        os.rename(rootPath, os.path.join(trust, "root.pem"))
        certPath, keyPath = writePEM(directory, "server", *makeCertificate("server", issuer=ca))
        server = startOurs(self, "--ssl", "--ssl-certificate", certPath, "--ssl-key", keyPath)
        return "tls:host=127.0.0.1:port=%d:trustRoots=%s" % (server.port, trust)

    @inlineCallbacks
    def test_jobOverTLS(self):
        """
        A job submitted and worked over TLS, both sides verifying the
        server's certificate against the test CA.
        """
        address = self.tlsServer()
        worker = GearmanWorker([address])
        worker.register("upper", lambda job: job.data.upper())
        worker.startService()
        self.addCleanup(worker.stopService)
        client = GearmanClient([address], timeout=30)
        client.startService()
        self.addCleanup(client.stopService)
        result = yield client.submitJob("upper", b"secret")
        self.assertEqual(result, b"SECRET")

    @inlineCallbacks
    def test_untrustedNamesTLSFailure(self):
        """
        A client that does not trust the server's certificate fails its
        submission with an error naming the server and a TLS failure.
        """
        client = GearmanClient([self.tlsServer(trusted=False)], connectTimeout=3)
        client.startService()
        self.addCleanup(client.stopService)
        try:
            yield client.submitJob("upper", b"secret")
        except ServerUnavailable as e:
            self.assertEqual(len(e.servers), 1)
            self.assertEqual(e.servers[0][1], "TLS failure: certificate verify failed")
            self.assertIn("TLS failure", str(e))
        else:
            self.fail("no ServerUnavailable")
