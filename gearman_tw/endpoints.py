# -*- test-case-name: tests.test_endpoints -*-
"""
Naming job servers: C{host:port} strings or Twisted endpoint descriptions.

C{tls:} descriptions verify the job server's certificate and host name
(L{tlsEndpoint}); C{ssl:} ones, which in Twisted check neither unless told
to, are refused.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple, Union

from twisted.internet.endpoints import HostnameEndpoint, clientFromString, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint

DEFAULT_PORT = 4730

#: Endpoint description prefixes passed to L{clientFromString} as they are.
ENDPOINT_TYPES = ("tcp", "tcp6", "unix")

#: The parameters of a C{tls:} description, in the order positional ones take.
TLS_PARAMETERS = ("host", "port", "timeout", "bindAddress", "certificate", "privateKey", "trustRoots", "endpoint")

_HOST_PORT = re.compile(r"^(?:\[(?P<ip6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$")


def clientEndpoint(
    reactor: object, server: Union[str, IStreamClientEndpoint]
) -> Tuple[IStreamClientEndpoint, str]:
    """
    An endpoint to connect to a job server, and a name for it.

    @param server: C{"host"}, C{"host:port"}, C{"[ipv6]:port"}, an endpoint
        description such as C{"tls:host=h:port=4730"} (see L{tlsEndpoint})
        or C{"unix:path=/s"}, or an endpoint object (used as it is).
    @raise TypeError: C{server} is neither a str nor an endpoint.
    @raise ValueError: C{server} is not a job server address, or a C{tls:}
        description's files cannot be used.
    """
    if not isinstance(server, str):
        if not IStreamClientEndpoint.providedBy(server):
            raise TypeError(
                "a job server is a 'host:port' str, an endpoint description or an endpoint, not %s"
                % (type(server).__name__,)
            )
        return server, repr(server)
    prefix, _, rest = server.partition(":")
    if prefix == "tls":
        return tlsEndpoint(reactor, rest), server
    if prefix == "ssl":
        raise ValueError(
            "ssl: client descriptions do not verify the job server's certificate and name "
            "unless told to; use tls:host=HOST:port=PORT, which always does (%r)" % (server,)
        )
    if prefix in ENDPOINT_TYPES:
        return clientFromString(reactor, server), server
    match = _HOST_PORT.match(server)
    if match is None:
        raise ValueError("not a job server address: %r" % (server,))
    host = match.group("ip6") or match.group("host")
    port = int(match.group("port") or DEFAULT_PORT)
    if not 0 < port < 65536:
        raise ValueError("bad port in %r" % (server,))
    name = "[%s]:%d" % (host, port) if match.group("ip6") else "%s:%d" % (host, port)
    return HostnameEndpoint(reactor, host, port), name


def _parameters(description: str) -> Tuple[List[str], Dict[str, str]]:
    """
    The positional and keyword parameters of an endpoint description's
    arguments, split as Twisted's C{clientFromString} splits them: on
    C{:}, the first C{=} of each parameter naming it, C{\\} escaping the
    next character.

    @raise ValueError: C{description} ends with a lone backslash.
    """
    args: List[str] = []
    kwargs: Dict[str, str] = {}
    key: Optional[str] = None
    current: List[str] = []
    chars = iter(description)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError("endpoint description ends with a backslash: %r" % (description,))
            current.append(escaped)
        elif char == ":":
            if key is None:
                args.append("".join(current))
            else:
                kwargs[key] = "".join(current)
            key, current = None, []
        elif char == "=" and key is None:
            key, current = "".join(current), []
        else:
            current.append(char)
    if key is None:
        args.append("".join(current))
    else:
        kwargs[key] = "".join(current)
    return args, kwargs


def tlsEndpoint(reactor: object, description: str) -> IStreamClientEndpoint:
    """
    A TLS endpoint to a job server that verifies its certificate and host
    name, from the arguments of a C{tls:} description (what follows
    C{"tls:"}): C{host} (or the first positional argument), C{port} (4730
    by default), C{timeout} (30 s), C{bindAddress}, C{trustRoots} (a PEM
    file or a directory of them holding the CA certificates to trust;
    the platform's trust store by default), C{certificate} and
    C{privateKey} (PEM files of a client certificate for mutual TLS; the
    key may be in the certificate file) and C{endpoint} (a description of
    the endpoint to run TLS over, C{host} then only being the name to
    verify).

    A server whose certificate fails verification makes each attempt fail
    with L{gearman_tw.tls.CertificateRejected}, which says why.

    @raise ValueError: a parameter is unknown or wrong, a file cannot be
        read, or pyOpenSSL is not installed.
    """
    args, kwargs = _parameters(description)
    if len(args) > len(TLS_PARAMETERS):
        raise ValueError("too many parameters in tls:%s" % (description,))
    for name, value in zip(TLS_PARAMETERS, args):
        if name in kwargs:
            raise ValueError("%s given twice in tls:%s" % (name, description))
        kwargs[name] = value
    unknown = sorted(set(kwargs) - set(TLS_PARAMETERS))
    if unknown:
        raise ValueError(
            "unknown parameter %s in tls:%s (known: %s)" % (", ".join(unknown), description, ", ".join(TLS_PARAMETERS))
        )
    host = kwargs.get("host")
    if not host:
        raise ValueError("tls:%s names no host" % (description,))
    try:
        port = int(kwargs.get("port", DEFAULT_PORT))
        timeout = float(kwargs.get("timeout", 30))
    except ValueError:
        raise ValueError("port and timeout must be numbers in tls:%s" % (description,))
    if not 0 < port < 65536:
        raise ValueError("bad port in tls:%s" % (description,))
    try:
        from gearman_tw import tls
    except ImportError as e:
        raise ValueError(
            "tls: needs pyOpenSSL and service_identity (pip install pyOpenSSL service_identity): %s" % (e,)
        )
    trustRoots = kwargs.get("trustRoots")
    certificate = kwargs.get("certificate")
    if kwargs.get("privateKey") and not certificate:
        raise ValueError("privateKey without certificate in tls:%s" % (description,))
    options = tls.ClientOptions(
        host,
        tls.loadAuthorities(trustRoots) if trustRoots else None,
        tls.loadIdentity(certificate, kwargs.get("privateKey")) if certificate else None,
    )
    inner = kwargs.get("endpoint")
    if inner is not None:
        transport = clientFromString(reactor, inner)
    else:
        bindAddress = kwargs.get("bindAddress")
        transport = HostnameEndpoint(
            reactor, host, port, timeout, None if bindAddress is None else (bindAddress, 0)
        )
    return wrapClientTLS(options, transport)
