# -*- test-case-name: tests.test_endpoints -*-
"""
TLS that verifies the peer and says why it refuses one: the options of our
C{tls:} client endpoints (the job server's certificate and host name) and
of C{twistd gearman --ssl --ssl-ca-file} (client certificates).

Only imported when TLS is used: it needs pyOpenSSL and service_identity,
which install with the package.
"""

from __future__ import annotations

import os
import re
from typing import Any, List, Optional, Sequence, Tuple, Union

from OpenSSL import SSL, crypto
from OpenSSL.crypto import X509
from service_identity import CertificateError, VerificationError
from service_identity.cryptography import (
    verify_certificate_hostname,
    verify_certificate_ip_address,
)
from twisted.internet import ssl
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.error import VerifyError
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from zope.interface import implementer

#: OpenSSL's X509_V_ERR_* codes (the same in every version) and what they mean.
_VERIFY_ERRORS = {
    2: "unable to get issuer certificate",
    7: "certificate signature failure",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
    23: "certificate revoked",
    26: "unsupported certificate purpose",
}

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)

#: OpenSSL's reasons for a handshake that met something other than TLS.
_NOT_TLS = ("wrong version number", "http request", "packet length too long", "unknown protocol")


class CertificateRejected(SSL.Error):
    """
    The peer's certificate failed verification.

    Its C{args} are pyOpenSSL's error queue, C{[(library, function,
    reason)]}, as Twisted's TLS code expects of every C{OpenSSL.SSL.Error}.

    @ivar reason: which certificate and why, for people.
    """

    def __init__(self, reason: str) -> None:
        super().__init__([("certificate verification", "", reason)])
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def verifyErrorText(code: int) -> str:
    """
    What OpenSSL's certificate verification error C{code} means.
    """
    return _VERIFY_ERRORS.get(code, "verification error %d" % (code,))


def _subject(certificate: X509) -> str:
    return certificate.to_cryptography().subject.rfc4514_string() or "(no subject)"


def _untrusted(side: str, certificate: X509, error: int, depth: int) -> CertificateRejected:
    """
    The refusal of C{side}'s certificate for verification error C{error}
    at C{certificate}, C{depth} steps up the chain from the peer's own.
    """
    if depth == 0:
        return CertificateRejected(
            "%s certificate %s not trusted: %s" % (side, _subject(certificate), verifyErrorText(error))
        )
    return CertificateRejected(
        "%s certificate not trusted: %s (%s)" % (side, verifyErrorText(error), _subject(certificate))
    )


def pemCertificates(data: bytes) -> List[bytes]:
    """
    The PEM certificate blocks in C{data}, in order (keys are skipped).
    """
    return _PEM_CERTIFICATE.findall(data)


def loadAuthorities(path: str) -> List[ssl.Certificate]:
    """
    The CA certificates in PEM file C{path}, or in the files of directory
    C{path} (files without a PEM certificate are skipped).

    @raise ValueError: C{path} cannot be read or holds no certificate.
    """
    try:
        if os.path.isdir(path):
            names = sorted(os.path.join(path, name) for name in os.listdir(path))
            files = [name for name in names if os.path.isfile(name)]
        else:
            files = [path]
        blocks: List[bytes] = []
        for name in files:
            with open(name, "rb") as f:
                blocks.extend(pemCertificates(f.read()))
    except OSError as e:
        raise ValueError("cannot read CA certificates from %s: %s" % (path, e.strerror or e))
    if not blocks:
        raise ValueError("no PEM certificate in %s" % (path,))
    try:
        return [ssl.Certificate.loadPEM(block) for block in blocks]
    except (SSL.Error, crypto.Error, ValueError) as e:
        raise ValueError("bad PEM certificate in %s: %s" % (path, e))


class Identity:
    """
    A certificate with its private key, and the chain of certificates sent
    with it.

    @ivar certificate: the certificate and its key.
    @ivar chain: the intermediate certificates that link it to a trusted
        authority, in order.
    """

    def __init__(self, certificate: ssl.PrivateCertificate, chain: Sequence[ssl.Certificate] = ()) -> None:
        self.certificate = certificate
        self.chain = list(chain)


def loadIdentity(certificatePath: str, keyPath: Optional[str] = None) -> Identity:
    """
    A certificate and its private key from PEM files: the certificate first
    in C{certificatePath}, then the chain to send with it, and the key
    there too unless C{keyPath} is given.

    @raise ValueError: a file cannot be read, or they do not hold a
        certificate and its key.
    """
    try:
        with open(certificatePath, "rb") as f:
            pem = f.read()
        if keyPath:
            with open(keyPath, "rb") as f:
                pem += b"\n" + f.read()
    except OSError as e:
        raise ValueError("cannot read %s: %s" % (e.filename, e.strerror or e))
    try:
        certificate = ssl.PrivateCertificate.loadPEM(pem)
        chain = [ssl.Certificate.loadPEM(block) for block in pemCertificates(pem)[1:]]
    except (SSL.Error, crypto.Error, ValueError, VerifyError):
        raise ValueError(
            "no certificate and matching private key in %s"
            % (" and ".join(filter(None, [certificatePath, keyPath])),)
        )
    return Identity(certificate, chain)


def _certificateOptions(identity: Optional[Identity], **kwargs: Any) -> ssl.CertificateOptions:
    """
    Twisted's TLS options presenting C{identity}, if any, with C{kwargs}.
    """
    if identity is None:
        return ssl.CertificateOptions(**kwargs)
    return ssl.CertificateOptions(
        privateKey=identity.certificate.privateKey.original,
        certificate=identity.certificate.original,
        extraCertChain=[c.original for c in identity.chain] or None,
        **kwargs,
    )


@implementer(IOpenSSLClientConnectionCreator)
class ClientOptions:
    """
    TLS options of a connection to a job server: its certificate must chain
    to C{authorities} (the platform's trust store by default) and name
    C{hostname} (a DNS name or an IP address).  A refusal fails the
    connection with L{CertificateRejected} saying why.

    @ivar hostname: the name the server's certificate must hold.
    """

    def __init__(
        self,
        hostname: str,
        authorities: Optional[List[ssl.Certificate]] = None,
        identity: Optional[Identity] = None,
    ) -> None:
        """
        @param authorities: the CA certificates to trust, or L{None} for the
            platform's trust store.
        @param identity: the client certificate to present to a server that
            asks for one (mutual TLS).
        """
        self.hostname = hostname
        self._isAddress = isIPAddress(hostname) or isIPv6Address(hostname)
        # Sent in the handshake (SNI) for a DNS name, never for an address.
        self._serverName: Optional[bytes] = None
        if not self._isAddress:
            try:
                self._serverName = hostname.encode("idna")
            except UnicodeError:
                raise ValueError("not a host name: %r" % (hostname,))
        trustRoot = (
            ssl.platformTrust() if authorities is None else ssl.trustRootFromCertificates(authorities)
        )
        options = _certificateOptions(identity, trustRoot=trustRoot)
        # Our callback on the context, not on each connection: pyOpenSSL
        # raises what a context's callback raised from the handshake, so
        # TLSMemoryBIOProtocol loses the connection with it.
        self._context = options.getContext()
        self._context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify)

    def _verify(self, connection: SSL.Connection, certificate: X509, error: int, depth: int, ok: int) -> bool:
        if not ok:
            raise _untrusted("server", certificate, error, depth)
        if depth == 0:
            leaf = certificate.to_cryptography()
            try:
                if self._isAddress:
                    verify_certificate_ip_address(leaf, self.hostname)
                else:
                    verify_certificate_hostname(leaf, self.hostname)
            except (VerificationError, CertificateError):
                raise CertificateRejected(
                    "server certificate %s is not valid for %s" % (_subject(certificate), self.hostname)
                )
        return True

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        if self._serverName is not None:
            connection.set_tlsext_host_name(self._serverName)
        return connection


def serverOptions(
    certificatePath: str, keyPath: Optional[str] = None, caPath: Optional[str] = None
) -> Union[ssl.CertificateOptions, "ClientVerifyingOptions"]:
    """
    A job server's TLS options from PEM files, as gearmand's --ssl-*
    options name them (see L{loadIdentity}); with C{caPath}, clients must
    present a certificate that one of its authorities signed.

    @raise ValueError: a file cannot be read, or holds no certificate (and
        key).
    """
    identity = loadIdentity(certificatePath, keyPath)
    if caPath is None:
        return _certificateOptions(identity)
    return ClientVerifyingOptions(identity, loadAuthorities(caPath))


@implementer(IOpenSSLServerConnectionCreator)
class ClientVerifyingOptions:
    """
    A server's TLS options that require a client certificate chaining to
    C{authorities}; a refusal fails the connection with
    L{CertificateRejected} saying why.
    """

    def __init__(self, identity: Identity, authorities: List[ssl.Certificate]) -> None:
        options = _certificateOptions(
            identity,
            verify=True,
            caCerts=[c.original for c in authorities],
            requireCertificate=True,
        )
        # As in ClientOptions, our callback on the context.
        self._context = options.getContext()
        self._context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _verifyClient)

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        return SSL.Connection(self._context, None)


def _verifyClient(connection: SSL.Connection, certificate: X509, error: int, depth: int, ok: int) -> bool:
    if not ok:
        raise _untrusted("client", certificate, error, depth)
    return True


def describeFailure(connection: object, error: SSL.Error) -> Optional[Tuple[str, str]]:
    """
    Why a TLS connection failed, for a server's log line: C{("handshake",
    "no client certificate")}, or C{("connection", ...)} after the
    handshake.  L{None} when the peer only closed the connection without a
    TLS goodbye, which is no failure.

    @param connection: the connection's C{OpenSSL.SSL.Connection}, if known.
    """
    if isinstance(error, SSL.SysCallError):
        return None
    finished = getattr(connection, "get_peer_finished", None)
    stage = "connection" if finished is not None and finished() is not None else "handshake"
    if isinstance(error, CertificateRejected):
        return stage, error.reason
    details = error.args[0] if error.args else None
    if isinstance(details, list) and all(isinstance(d, tuple) and d for d in details):
        reasons = [str(d[-1]) for d in details]
    else:
        reasons = [str(error)]
    text = ", ".join(reasons)
    if "unexpected eof while reading" in reasons:
        return None
    if "peer did not return a certificate" in reasons:
        return stage, "no client certificate (%s)" % (text,)
    if any(reason in _NOT_TLS for reason in reasons):
        return stage, "not TLS, a plaintext client? (%s)" % (text,)
    if any("alert" in reason for reason in reasons):
        return stage, "the client ended it (%s)" % (text,)
    return stage, text
