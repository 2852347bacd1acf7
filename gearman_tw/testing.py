# -*- test-case-name: tests.test_client -*-
"""
In-memory fakes for testing code that uses gearman_tw, without sockets::

    clock = Clock()
    server = JobServer(clock)
    endpoint = MemoryServerEndpoint(server, clock)
    client = GearmanClient([endpoint], reactor=clock)
    client.startService()
    task = client.submit("f", b"x")
    endpoint.flush()
"""

from __future__ import annotations

from typing import List, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.test import iosim
from zope.interface import implementer

from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.protocol import GearmanServerProtocol


@implementer(IStreamClientEndpoint)
class MemoryServerEndpoint:
    """
    A client endpoint whose connections reach a L{JobServer} in memory.

    @ivar pumps: one L{iosim.IOPump} per connection made.
    @ivar refuse: while true, connection attempts fail.
    """

    def __init__(self, server: JobServer, clock: Clock) -> None:
        self.server = server
        self.clock = clock
        self.factory = GearmanServerFactory(server)
        self.pumps: List[iosim.IOPump] = []
        self.refuse = False

    def connect(self, protocolFactory: IProtocolFactory) -> "Deferred[IProtocol]":
        if self.refuse:
            return fail(ConnectionRefusedError())
        factory = self.factory
        # There is no address to give; and neither factory declines a
        # connection (buildProtocol returning None).
        client, server, pump = iosim.connectedServerAndClient(
            lambda: cast(GearmanServerProtocol, factory.buildProtocol(None)),
            lambda: cast(IProtocol, protocolFactory.buildProtocol(None)),  # type: ignore[arg-type]
            greet=False,
            clock=self.clock,
        )
        server.factory = factory
        pump.flush()
        self.pumps.append(pump)
        return succeed(client)

    def flush(self) -> None:
        """
        Deliver every byte written so far, in both directions.
        """
        for pump in self.pumps:
            pump.flush()

    def disconnectAll(self) -> None:
        """
        Drop every connection, as if the server went away.
        """
        for pump in self.pumps:
            pump.client.transport.loseConnection()
        self.flush()


def flushAll(endpoints: List[MemoryServerEndpoint], rounds: int = 5) -> None:
    """
    Flush several endpoints in turn until traffic between them settles.
    """
    for _ in range(rounds):
        for endpoint in endpoints:
            endpoint.flush()
