"""
Throwaway certificates for TLS tests, made with C{cryptography}.
"""

import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
from typing import List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def makeCertificate(
    common: str,
    issuer: Optional[Tuple[x509.Certificate, ec.EllipticCurvePrivateKey]] = None,
    ca: bool = False,
    names: Sequence[str] = ("localhost", "127.0.0.1"),
    expired: bool = False,
) -> Tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """
    A certificate for C{common}, self-signed or signed by C{issuer}.

    @param names: its subject alternative names (host names and IP
        addresses), unless it is a CA's.
    @param expired: whether it expired yesterday, instead of being valid
        from yesterday for 30 days.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)) if expired else (
        now - datetime.timedelta(days=1),
        now + datetime.timedelta(days=30),
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(issuer[0].subject if issuer else _name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_alternativeName(name) for name in names]), critical=False
        )
    signer = issuer[1] if issuer else key
    return builder.sign(signer, hashes.SHA256()), key


def _alternativeName(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def writePEM(directory: str, name: str, certificate: x509.Certificate, key) -> Tuple[str, str]:
    """
    Write C{name}.crt and C{name}.key into C{directory}; return their paths.
    """
    certPath = os.path.join(directory, name + ".crt")
    keyPath = os.path.join(directory, name + ".key")
    with open(certPath, "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(keyPath, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return certPath, keyPath


class Certificates:
    """
    A test CA (C{caName}) with a certificate for a server (C{localhost} and
    C{127.0.0.1}) and one for a client, and another CA with a client
    certificate of its own, as PEM files in a temporary directory.

    @ivar server: the server's certificate and key paths; likewise
        C{client}, and C{stranger} (signed by the other CA).
    """

    def __init__(self, testCase, caName: str = "test CA") -> None:
        self.directory = tempfile.mkdtemp()
        testCase.addCleanup(shutil.rmtree, self.directory, True)
        self.ca = makeCertificate(caName, ca=True)
        self.caPath, _ = writePEM(self.directory, "ca", *self.ca)
        self.server = self.issue("server")
        self.client = self.issue("client")
        other = makeCertificate("another CA", ca=True)
        self.otherCAPath, _ = writePEM(self.directory, "other-ca", *other)
        self.stranger = self.issue("stranger", issuer=other)

    def issue(self, name: str, **kwargs) -> Tuple[str, str]:
        """
        Write a certificate for C{name} signed by the CA (unless C{kwargs},
        passed to L{makeCertificate}, say otherwise) and its key; return
        their paths.
        """
        kwargs.setdefault("issuer", self.ca)
        return writePEM(self.directory, name, *makeCertificate(name, **kwargs))

    def serverArgs(self, mutual: bool = False, server: Optional[Tuple[str, str]] = None) -> List[str]:
        """
        C{twistd gearman} options serving TLS with the server certificate
        (or C{server}), requiring client certificates if C{mutual}.
        """
        certificate, key = server or self.server
        args = ["--ssl", "--ssl-certificate", certificate, "--ssl-key", key]
        return args + ["--ssl-ca-file", self.caPath] if mutual else args

    def context(self, client: Optional[Tuple[str, str]] = None) -> ssl.SSLContext:
        """
        A Python TLS client context trusting the CA, presenting C{client}
        if given.
        """
        context = ssl.create_default_context(cafile=self.caPath)
        if client is not None:
            context.load_cert_chain(*client)
        return context

    def description(
        self,
        port: int,
        trustRoots: Optional[str] = None,
        client: Optional[Tuple[str, str]] = None,
        host: str = "127.0.0.1",
    ) -> str:
        """
        A C{tls:} endpoint description of a server at C{port}.
        """
        description = "tls:host=%s:port=%d" % (host, port)
        if trustRoots is not None:
            description += ":trustRoots=" + trustRoots
        if client is not None:
            description += ":certificate=%s:privateKey=%s" % client
        return description
