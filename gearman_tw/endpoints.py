# -*- test-case-name: tests.test_endpoints -*-
"""
Naming job servers: C{host:port} strings or Twisted endpoint descriptions.
"""

from __future__ import annotations

import re
from typing import Tuple, Union

from twisted.internet.endpoints import HostnameEndpoint, clientFromString
from twisted.internet.interfaces import IStreamClientEndpoint

DEFAULT_PORT = 4730

#: Endpoint description prefixes passed to L{clientFromString} as they are.
ENDPOINT_TYPES = ("tcp", "tcp6", "tls", "ssl", "unix")

_HOST_PORT = re.compile(r"^(?:\[(?P<ip6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$")


def clientEndpoint(
    reactor: object, server: Union[str, IStreamClientEndpoint]
) -> Tuple[IStreamClientEndpoint, str]:
    """
    An endpoint to connect to a job server, and a name for it.

    @param server: C{"host"}, C{"host:port"}, C{"[ipv6]:port"}, an endpoint
        description such as C{"tls:host=h:port=4730"} or C{"unix:path=/s"},
        or an endpoint object.
    @raise TypeError: C{server} is neither a str nor an endpoint.
    @raise ValueError: C{server} is not a job server address.
    """
    if not isinstance(server, str):
        if not IStreamClientEndpoint.providedBy(server):
            raise TypeError(
                "a job server is a 'host:port' str, an endpoint description or an endpoint, not %s"
                % (type(server).__name__,)
            )
        return server, repr(server)
    prefix = server.split(":", 1)[0]
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
