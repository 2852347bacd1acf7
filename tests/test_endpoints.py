"""
Tests for L{gearman_tw.endpoints} and L{gearman_tw.tls}: naming job servers,
and TLS that verifies the peer, client and server side, over in-memory
connections.
"""

from __future__ import annotations

import os
import tempfile
from typing import List, Optional, Tuple, Union

from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLContextFactory,
    IOpenSSLServerConnectionCreator,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.test.iosim import connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw import tls
from gearman_tw.endpoints import _parameters, clientEndpoint
from tests.tlscerts import Certificates, makeCertificate, writePEM


class _Peer(Protocol):
    """
    Sends C{greeting} once connected; keeps what it receives and why it
    was lost.
    """

    greeting = b""

    def __init__(self) -> None:
        self.received = b""
        self.reason: Optional[Failure] = None

    def connectionMade(self) -> None:
        if self.greeting:
            self.transport.write(self.greeting)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.reason = reason


class _Client(_Peer):
    greeting = b"hello"


def exchange(
    clientOptions: IOpenSSLClientConnectionCreator,
    serverOptions: Union[IOpenSSLContextFactory, IOpenSSLServerConnectionCreator],
) -> Tuple[_Peer, _Peer]:
    """
    Connect a client that says C{hello} to a server over TLS in memory, and
    run the exchange to its end.

    @return: the client's and the server's application protocols.
    """
    clock = Clock()
    serverFactory = TLSMemoryBIOFactory(serverOptions, False, Factory.forProtocol(_Peer), clock)
    clientFactory = TLSMemoryBIOFactory(clientOptions, True, Factory.forProtocol(_Client), clock)
    client, server, pump = connectedServerAndClient(
        lambda: serverFactory.buildProtocol(None),
        lambda: clientFactory.buildProtocol(None),
        greet=False,
        clock=clock,
    )
    # Taken now: a wrapper forgets its protocol once the connection is lost.
    clientPeer, serverPeer = client.wrappedProtocol, server.wrappedProtocol
    assert isinstance(clientPeer, _Client) and isinstance(serverPeer, _Peer)
    pump.flush()
    return clientPeer, serverPeer


def serverOptions(
    certificates: Certificates, caPath: Optional[str] = None, paths: Optional[Tuple[str, str]] = None
) -> Union[IOpenSSLContextFactory, IOpenSSLServerConnectionCreator]:
    """
    The options of a server with C{certificates}' server certificate (or
    C{paths}), as C{twistd gearman --ssl} builds them.
    """
    return tls.serverOptions(*(paths or certificates.server), caPath=caPath)


def rejection(peer: _Peer) -> str:
    """
    The reason of a peer's L{tls.CertificateRejected} loss.
    """
    if peer.reason is None:
        raise AssertionError("the connection was not lost")
    peer.reason.trap(tls.CertificateRejected)
    return str(peer.reason.value)


class ParametersTests(SynchronousTestCase):
    """
    Endpoint description arguments are split as Twisted splits them.
    """

    def test_split(self) -> None:
        """
        Positional and keyword parameters; a backslash escapes C{:} and
        C{=}; the first C{=} names a parameter, later ones are its value.
        """
        self.assertEqual(
            _parameters(r"h:4730:trustRoots=/a\:b:endpoint=tcp\:x\:1:x=a=b:e\=f"),
            (["h", "4730", "e=f"], {"trustRoots": "/a:b", "endpoint": "tcp:x:1", "x": "a=b"}),
        )

    def test_loneBackslash(self) -> None:
        """
        A description ending with a lone backslash is a C{ValueError}.
        """
        self.assertRaises(ValueError, _parameters, "host=h\\")


class ClientEndpointTests(SynchronousTestCase):
    """
    L{clientEndpoint} with TLS descriptions.
    """

    def setUp(self) -> None:
        self.certificates = Certificates(self)

    def test_tls(self) -> None:
        """
        A C{tls:} description, with its CAs in a PEM file or a directory,
        and a client certificate, is an endpoint named by the description.
        """
        c = self.certificates
        clientPath, clientKey = c.client
        for server in [
            "tls:host=localhost:port=4730",
            "tls:localhost:4730:trustRoots=%s" % (c.caPath,),
            "tls:host=localhost:trustRoots=%s:certificate=%s:privateKey=%s" % (c.directory, clientPath, clientKey),
        ]:
            endpoint, name = clientEndpoint(Clock(), server)
            self.assertTrue(IStreamClientEndpoint.providedBy(endpoint))
            self.assertEqual(name, server)

    def test_sslRefused(self) -> None:
        """
        C{ssl:} descriptions, which verify nothing in Twisted, are refused
        with a C{ValueError} that points to C{tls:}.
        """
        with self.assertRaises(ValueError) as caught:
            clientEndpoint(Clock(), "ssl:host=localhost:port=4730")
        self.assertIn("use tls:host=HOST:port=PORT", str(caught.exception))

    def test_badDescriptions(self) -> None:
        """
        A wrong C{tls:} description is a C{ValueError} that says what is
        wrong with it, raised when the endpoint is made.
        """
        c = self.certificates
        cases = [
            ("tls:port=4730", "names no host"),
            ("tls:host=a..b", "not a host name"),
            ("tls:host=h:port=x", "must be numbers"),
            ("tls:host=h:port=70000", "bad port"),
            ("tls:host=h:colour=blue", "unknown parameter colour"),
            ("tls:h:1:2:3:4:5:6:7:8", "too many parameters"),
            ("tls:h:host=h", "host given twice"),
            ("tls:host=h:trustRoots=/nonexistent", "cannot read CA certificates from /nonexistent"),
            ("tls:host=h:trustRoots=%s" % (c.server[1],), "no PEM certificate in"),
            ("tls:host=h:privateKey=%s" % (c.server[1],), "privateKey without certificate"),
            ("tls:host=h:certificate=/nonexistent", "cannot read /nonexistent"),
            ("tls:host=h:certificate=%s" % (c.server[0],), "no certificate and matching private key"),
            (
                "tls:host=h:certificate=%s:privateKey=%s" % (c.server[0], c.issue("other")[1]),
                "no certificate and matching private key",
            ),
        ]
        for server, message in cases:
            with self.assertRaises(ValueError, msg=server) as caught:
                clientEndpoint(Clock(), server)
            self.assertIn(message, str(caught.exception), server)


class ClientOptionsTests(SynchronousTestCase):
    """
    L{tls.ClientOptions} verifies the job server's certificate and host
    name, and says why it refuses one.
    """

    def setUp(self) -> None:
        self.certificates = Certificates(self)

    def options(
        self, hostname: str = "localhost", caPath: Optional[str] = None, client: Optional[Tuple[str, str]] = None
    ) -> tls.ClientOptions:
        return tls.ClientOptions(
            hostname,
            tls.loadAuthorities(caPath or self.certificates.caPath),
            tls.loadIdentity(*client) if client else None,
        )

    def test_verified(self) -> None:
        """
        A server whose certificate the CA signed for the host name, or IP
        address, connected to is talked to.
        """
        for hostname in ("localhost", "127.0.0.1"):
            client, server = exchange(self.options(hostname), serverOptions(self.certificates))
            self.assertEqual(server.received, b"hello")
            self.assertIsNone(client.reason)

    def test_untrusted(self) -> None:
        """
        A server certificate that does not chain to the trusted CAs fails
        the connection with L{tls.CertificateRejected}, before the server
        gets any data.
        """
        client, server = exchange(self.options(caPath=self.certificates.otherCAPath), serverOptions(self.certificates))
        self.assertEqual(
            rejection(client), "server certificate CN=server not trusted: unable to get local issuer certificate"
        )
        self.assertEqual(server.received, b"")

    def test_selfSigned(self) -> None:
        """
        A self-signed server certificate the client does not trust is
        refused as such.
        """
        paths = self.certificates.issue("lonely", issuer=None)
        client, server = exchange(self.options(), serverOptions(self.certificates, paths=paths))
        self.assertEqual(rejection(client), "server certificate CN=lonely not trusted: self-signed certificate")
        self.assertEqual(server.received, b"")

    def test_platformTrustByDefault(self) -> None:
        """
        Without CAs, the platform's trust store is used: a private CA's
        certificate is refused.
        """
        client, server = exchange(tls.ClientOptions("localhost"), serverOptions(self.certificates))
        self.assertEqual(
            rejection(client), "server certificate CN=server not trusted: unable to get local issuer certificate"
        )
        self.assertEqual(server.received, b"")

    def test_wrongName(self) -> None:
        """
        A trusted certificate for other names than the one connected to is
        refused, DNS names and IP addresses alike.
        """
        for hostname in ("gearman.example", "127.0.0.2", "::1"):
            client, server = exchange(self.options(hostname), serverOptions(self.certificates))
            self.assertEqual(rejection(client), "server certificate CN=server is not valid for %s" % (hostname,))
            self.assertEqual(server.received, b"")

    def test_expired(self) -> None:
        """
        An expired server certificate is refused as such.
        """
        paths = self.certificates.issue("stale", expired=True)
        client, server = exchange(self.options(), serverOptions(self.certificates, paths=paths))
        self.assertEqual(rejection(client), "server certificate CN=stale not trusted: certificate has expired")


class ClientCertificateTests(SynchronousTestCase):
    """
    C{--ssl-ca-file} (L{tls.serverOptions} with a CA file): the server
    requires a client certificate its CAs signed, and says why it refuses
    one.
    """

    def setUp(self) -> None:
        self.certificates = Certificates(self)

    def connect(self, client: Optional[Tuple[str, str]]) -> Tuple[_Peer, _Peer]:
        c = self.certificates
        options = tls.ClientOptions(
            "localhost", tls.loadAuthorities(c.caPath), tls.loadIdentity(*client) if client else None
        )
        return exchange(options, serverOptions(c, caPath=c.caPath))

    def test_served(self) -> None:
        """
        A client with a certificate the CA signed is served.
        """
        client, server = self.connect(self.certificates.client)
        self.assertEqual(server.received, b"hello")
        self.assertIsNone(server.reason)

    def test_noCertificate(self) -> None:
        """
        A client without a certificate is refused before the server reads
        anything from it.
        """
        client, server = self.connect(None)
        self.assertEqual(server.received, b"")
        if server.reason is None:
            self.fail("the connection was not lost")
        server.reason.trap(SSL.Error)
        self.assertEqual(
            tls.describeFailure(None, server.reason.value),
            ("handshake", "no client certificate (peer did not return a certificate)"),
        )

    def test_otherCA(self) -> None:
        """
        A client certificate from another CA is refused as such.
        """
        client, server = self.connect(self.certificates.stranger)
        self.assertEqual(server.received, b"")
        self.assertEqual(
            rejection(server), "client certificate CN=stranger not trusted: unable to get local issuer certificate"
        )

    def test_expired(self) -> None:
        """
        An expired client certificate is refused as such.
        """
        client, server = self.connect(self.certificates.issue("client", expired=True))
        self.assertEqual(server.received, b"")
        self.assertEqual(rejection(server), "client certificate CN=client not trusted: certificate has expired")


class DescribeFailureTests(SynchronousTestCase):
    """
    L{tls.describeFailure} words a server's TLS failures for its log.
    """

    def error(self, *reasons: str) -> SSL.Error:
        return SSL.Error([("SSL routines", "", reason) for reason in reasons])

    def test_reasons(self) -> None:
        """
        OpenSSL's reasons are given, with a hint for the usual ones.
        """
        cases: List[Tuple[SSL.Error, str]] = [
            (self.error("wrong version number"), "not TLS, a plaintext client? (wrong version number)"),
            (self.error("http request"), "not TLS, a plaintext client? (http request)"),
            (self.error("tlsv1 alert unknown ca"), "the client ended it (tlsv1 alert unknown ca)"),
            (self.error("no shared cipher"), "no shared cipher"),
            (tls.CertificateRejected("client certificate CN=x not trusted"), "client certificate CN=x not trusted"),
        ]
        for error, why in cases:
            self.assertEqual(tls.describeFailure(None, error), ("handshake", why))

    def test_eof(self) -> None:
        """
        A peer that only closed the connection is no failure.
        """
        self.assertIsNone(tls.describeFailure(None, self.error("unexpected eof while reading")))
        self.assertIsNone(tls.describeFailure(None, SSL.SysCallError(-1, "Unexpected EOF")))

    def test_afterHandshake(self) -> None:
        """
        Once the peer has finished the handshake, a failure is the
        connection's.
        """

        class Finished:
            def get_peer_finished(self) -> bytes:
                return b"finished"

        self.assertEqual(
            tls.describeFailure(Finished(), self.error("bad record mac")), ("connection", "bad record mac")
        )

    def test_verifyErrors(self) -> None:
        """
        The verification errors named are OpenSSL's codes for them.
        """
        codes = getattr(SSL, "X509VerificationCodes", None)
        if codes is None:
            raise self.skipTest("pyOpenSSL too old to name its verification codes")
        self.assertEqual(tls.verifyErrorText(codes.ERR_CERT_HAS_EXPIRED), "certificate has expired")
        self.assertEqual(
            tls.verifyErrorText(codes.ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY), "unable to get local issuer certificate"
        )
        self.assertEqual(tls.verifyErrorText(codes.ERR_DEPTH_ZERO_SELF_SIGNED_CERT), "self-signed certificate")
        self.assertEqual(tls.verifyErrorText(codes.ERR_CERT_NOT_YET_VALID), "certificate is not yet valid")
        self.assertEqual(tls.verifyErrorText(12345), "verification error 12345")


class LoadTests(SynchronousTestCase):
    """
    L{tls.loadAuthorities} reads a PEM file or a directory of them.
    """

    def test_directory(self) -> None:
        """
        Every certificate of every file in the directory is loaded; files
        without one are skipped.
        """
        directory = tempfile.mkdtemp()
        writePEM(directory, "one", *makeCertificate("one", ca=True))
        writePEM(directory, "two", *makeCertificate("two", ca=True))
        os.mkdir(os.path.join(directory, "sub"))
        loaded = tls.loadAuthorities(directory)
        self.assertEqual(
            sorted(c.getSubject().commonName for c in loaded), [b"one", b"two"]
        )
        self.assertIsInstance(loaded[0], ssl.Certificate)
