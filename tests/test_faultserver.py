"""
Tests for L{tests.faultserver}: the fault-injecting proxy, in memory in front
of a L{JobServer} and on loopback TCP in front of real job servers.
"""

from __future__ import annotations

from typing import Any, Dict, Generator, List, Optional, Tuple

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from gearman_tw.protocol import REQ, RES, TEXT, PacketParser, PacketType, encode
from gearman_tw.server.jobs import JobServer
from gearman_tw.testing import MemoryServerEndpoint, flushAll
from tests.faultserver import (
    TO_CLIENT,
    TO_SERVER,
    FaultEndpoint,
    FaultProxy,
    FaultProxyServer,
    Record,
    countPackets,
    listenFaultProxy,
)
from tests.mixins import TestCaseMixin

P = PacketType


class RawPeer(Protocol):
    """
    A client or worker that sends raw request packets and records every
    response packet.

    @ivar data: every byte received.
    @ivar received: the packets received, as C{(type, arguments)}.
    @ivar lostReason: why the connection was lost, once it is.
    """

    def __init__(self) -> None:
        self.parser = PacketParser(RES)
        self.data = b""
        self.received: List[Record] = []
        self.lostReason: Optional[Failure] = None
        self._given: Dict[int, int] = {}
        self._waiters: List[Tuple[int, "Deferred[List[bytes]]"]] = []
        self._lost: List["Deferred[None]"] = []

    def send(self, ptype: int, *args: bytes) -> None:
        """
        Send one request packet.
        """
        assert self.transport is not None
        self.transport.write(encode(ptype, *args, magic=REQ))

    def types(self) -> List[int]:
        """
        The types of the packets received, in order.
        """
        return [ptype for ptype, _ in self.received]

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        for ptype, args, payload in self.parser.feed(data):
            self.received.append((ptype, args if ptype != TEXT else [payload]))
            for index, (wanted, waiter) in enumerate(self._waiters):
                if wanted == ptype:
                    del self._waiters[index]
                    self._given[ptype] = self._given.get(ptype, 0) + 1
                    waiter.callback(args)
                    break

    def waitFor(self, ptype: int) -> "Deferred[List[bytes]]":
        """
        @return: a Deferred that fires with the arguments of the next packet
            of type C{ptype} not yet given to a caller.
        """
        matching = [args for received, args in self.received if received == ptype]
        given = self._given.get(ptype, 0)
        if len(matching) > given:
            self._given[ptype] = given + 1
            return succeed(matching[given])
        d: "Deferred[List[bytes]]" = Deferred()
        self._waiters.append((ptype, d))
        return d

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.lostReason = reason
        waiters, self._lost = self._lost, []
        for waiter in waiters:
            waiter.callback(None)

    def whenLost(self) -> "Deferred[None]":
        """
        @return: a Deferred that fires once the connection is lost.
        """
        if self.lostReason is not None:
            return succeed(None)
        d: "Deferred[None]" = Deferred()
        self._lost.append(d)
        return d

    def close(self) -> "Deferred[None]":
        """
        Abort the connection.

        @return: a Deferred that fires once it is lost.
        """
        lost = self.whenLost()
        if self.lostReason is None and self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]
        return lost


class FaultEndpointTests(SynchronousTestCase):
    """
    L{FaultEndpoint}: raw peers reach a real L{JobServer} in memory through
    a L{FaultProxy} each.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.server = JobServer(self.clock, handlePrefix=b"T")
        self.endpoint = FaultEndpoint(self.server, self.clock)

    def connect(self, endpoint: Optional[IStreamClientEndpoint] = None) -> RawPeer:
        """
        Connect a L{RawPeer} through C{endpoint} (the fault endpoint by default).
        """
        endpoint = self.endpoint if endpoint is None else endpoint
        peer = self.successResultOf(endpoint.connect(Factory.forProtocol(RawPeer)))
        assert isinstance(peer, RawPeer)
        return peer

    def cycle(self, endpoint: object) -> Tuple[RawPeer, RawPeer]:
        """
        Submit a job from a raw client, let a raw worker grab and complete it.

        @param endpoint: a L{FaultEndpoint} or a L{MemoryServerEndpoint}.
        @return: the client and the worker.
        """
        client = self.connect(endpoint)  # type: ignore[arg-type]
        worker = self.connect(endpoint)  # type: ignore[arg-type]
        client.send(P.SUBMIT_JOB, b"f", b"u1", b"x")
        flushAll([endpoint])  # type: ignore[list-item]
        worker.send(P.CAN_DO, b"f")
        worker.send(P.GRAB_JOB_UNIQ)
        flushAll([endpoint])  # type: ignore[list-item]
        handle = worker.received[-1][1][0]
        worker.send(P.WORK_COMPLETE, handle, b"X")
        flushAll([endpoint])  # type: ignore[list-item]
        return client, worker

    def test_interface(self) -> None:
        """
        L{FaultEndpoint} provides L{IStreamClientEndpoint}.
        """
        self.assertTrue(verifyObject(IStreamClientEndpoint, self.endpoint))

    def test_forwardsUnchanged(self) -> None:
        """
        A submit, grab and complete cycle through the proxies gives the
        client and the worker the very bytes they get without it.
        """
        client, worker = self.cycle(self.endpoint)
        clock = Clock()
        plain = MemoryServerEndpoint(JobServer(clock, handlePrefix=b"T"), clock)
        plainClient, plainWorker = self.cycle(plain)
        self.assertEqual(
            client.received,
            [(P.JOB_CREATED, [b"T:1"]), (P.WORK_COMPLETE, [b"T:1", b"X"])],
        )
        self.assertEqual(worker.received, [(P.JOB_ASSIGN_UNIQ, [b"T:1", b"f", b"u1", b"x"])])
        self.assertEqual(client.data, plainClient.data)
        self.assertEqual(worker.data, plainWorker.data)
        for proxy in self.endpoint.proxies:
            self.assertEqual(proxy.fromClient, proxy.toServer)
            self.assertEqual(proxy.fromServer, proxy.toClient)

    def test_recordsPackets(self) -> None:
        """
        Each proxy records the packets of its connection, both ways, with
        their L{PacketType}.
        """
        self.cycle(self.endpoint)
        clientProxy, workerProxy = self.endpoint.proxies
        self.assertEqual(clientProxy.fromClient, [(P.SUBMIT_JOB, [b"f", b"u1", b"x"])])
        self.assertEqual(
            clientProxy.toClient,
            [(P.JOB_CREATED, [b"T:1"]), (P.WORK_COMPLETE, [b"T:1", b"X"])],
        )
        self.assertIsInstance(clientProxy.toClient[0][0], PacketType)
        self.assertEqual(
            [ptype for ptype, _ in workerProxy.fromClient],
            [P.CAN_DO, P.GRAB_JOB_UNIQ, P.WORK_COMPLETE],
        )
        self.assertEqual(countPackets(workerProxy.toClient, P.JOB_ASSIGN_UNIQ), 1)
        self.assertEqual(countPackets(workerProxy.fromClient, P.WORK_COMPLETE), 1)
        self.assertEqual(countPackets(clientProxy.toClient, P.JOB_ASSIGN_UNIQ), 0)

    def test_adminTextPassesThrough(self) -> None:
        """
        Admin text lines pass through both ways, recorded as L{TEXT}.
        """
        client = self.connect()
        client.transport.write(b"version\r\n")  # type: ignore[union-attr]
        self.endpoint.flush()
        proxy = self.endpoint.proxies[0]
        self.assertEqual(proxy.fromClient, [(TEXT, [b"version"])])
        self.assertTrue(client.data.startswith(b"OK "), client.data)
        self.assertEqual(proxy.toClient, [(TEXT, [client.data.rstrip(b"\n")])])

    def test_pauseBuffersClientPackets(self) -> None:
        """
        While paused the proxy reads nothing from the client and answers
        nothing; on resume everything is delivered in order.
        """
        client = self.connect()
        worker = self.connect()
        proxy = self.endpoint.proxies[0]
        proxy.pause()
        self.assertTrue(proxy.paused)
        client.send(P.ECHO_REQ, b"a")
        client.send(P.SUBMIT_JOB, b"f", b"", b"x")
        client.send(P.ECHO_REQ, b"b")
        worker.send(P.CAN_DO, b"f")
        worker.send(P.GRAB_JOB_UNIQ)
        self.endpoint.flush()
        self.assertEqual(client.received, [])
        self.assertEqual(proxy.fromClient, [])
        self.assertEqual(worker.types(), [P.NO_JOB])
        proxy.resume()
        self.endpoint.flush()
        self.assertEqual(
            client.received,
            [(P.ECHO_RES, [b"a"]), (P.JOB_CREATED, [b"T:1"]), (P.ECHO_RES, [b"b"])],
        )

    def test_pauseBuffersServerPackets(self) -> None:
        """
        While paused, packets from the server wait in the proxy.
        """
        client = self.connect()
        worker = self.connect()
        worker.send(P.CAN_DO, b"f")
        worker.send(P.PRE_SLEEP)
        self.endpoint.flush()
        proxy = self.endpoint.proxies[1]
        proxy.pause()
        client.send(P.SUBMIT_JOB, b"f", b"", b"x")
        self.endpoint.flush()
        self.assertEqual(client.types(), [P.JOB_CREATED])
        self.assertEqual(worker.received, [])
        proxy.resume()
        self.endpoint.flush()
        self.assertEqual(worker.received, [(P.NOOP, [])])

    def test_holdAndRelease(self) -> None:
        """
        A held JOB_ASSIGN_UNIQ stays back while other packets pass it, and
        reaches the worker when released.
        """
        client = self.connect()
        worker = self.connect()
        proxy = self.endpoint.proxies[1]
        proxy.hold(P.JOB_ASSIGN_UNIQ)
        client.send(P.SUBMIT_JOB, b"f", b"u1", b"x")
        worker.send(P.CAN_DO, b"f")
        worker.send(P.GRAB_JOB_UNIQ)
        worker.send(P.ECHO_REQ, b"after")
        self.endpoint.flush()
        self.assertEqual(worker.received, [(P.ECHO_RES, [b"after"])])
        assigned = (P.JOB_ASSIGN_UNIQ, [b"T:1", b"f", b"u1", b"x"])
        self.assertEqual(proxy.heldPackets(), [assigned])
        self.assertEqual(proxy.heldPackets(TO_SERVER), [])
        self.assertEqual(proxy.release(P.JOB_ASSIGN_UNIQ), 1)
        self.endpoint.flush()
        self.assertEqual(worker.received[1:], [assigned])
        self.assertEqual(proxy.heldPackets(), [])

    def test_releaseCount(self) -> None:
        """
        Releasing a count of held packets delivers that many, oldest first,
        and keeps holding that type.
        """
        worker = self.connect()
        proxy = self.endpoint.proxies[0]
        proxy.hold(P.ECHO_RES)
        worker.send(P.ECHO_REQ, b"1")
        worker.send(P.ECHO_REQ, b"2")
        self.endpoint.flush()
        self.assertEqual(proxy.release(P.ECHO_RES, count=1), 1)
        worker.send(P.ECHO_REQ, b"3")
        self.endpoint.flush()
        self.assertEqual(worker.received, [(P.ECHO_RES, [b"1"])])
        self.assertEqual(proxy.heldPackets(), [(P.ECHO_RES, [b"2"]), (P.ECHO_RES, [b"3"])])
        self.assertEqual(proxy.release(), 2)
        self.endpoint.flush()
        self.assertEqual([args for _, args in worker.received], [[b"1"], [b"2"], [b"3"]])

    def test_drop(self) -> None:
        """
        Dropped packets are recorded as read but never delivered: a count of
        them, or all of them until the rule is cleared.
        """
        client = self.connect()
        proxy = self.endpoint.proxies[0]
        proxy.drop(P.ECHO_RES, TO_CLIENT, count=1)
        for token in (b"a", b"b", b"c"):
            client.send(P.ECHO_REQ, token)
        self.endpoint.flush()
        self.assertEqual(client.received, [(P.ECHO_RES, [b"b"]), (P.ECHO_RES, [b"c"])])
        self.assertEqual(countPackets(proxy.fromServer, P.ECHO_RES), 3)
        self.assertEqual(proxy.dropped, [(TO_CLIENT, P.ECHO_RES, [b"a"])])
        proxy.drop(P.ECHO_REQ, TO_SERVER)
        client.send(P.ECHO_REQ, b"d")
        client.send(P.ECHO_REQ, b"e")
        self.endpoint.flush()
        self.assertEqual(len(client.received), 2)
        self.assertEqual(countPackets(proxy.toServer, P.ECHO_REQ), 3)
        proxy.drop(P.ECHO_REQ, TO_SERVER, count=0)
        client.send(P.ECHO_REQ, b"f")
        self.endpoint.flush()
        self.assertEqual(client.received[-1], (P.ECHO_RES, [b"f"]))

    def test_delay(self) -> None:
        """
        A delayed packet is delivered once its delay has passed on the
        clock, and the packets behind it wait for it.
        """
        client = self.connect()
        proxy = self.endpoint.proxies[0]
        proxy.delay(5, TO_CLIENT, P.JOB_CREATED)
        client.send(P.SUBMIT_JOB, b"f", b"", b"x")
        client.send(P.ECHO_REQ, b"a")
        self.endpoint.flush()
        self.clock.advance(4.9)
        self.endpoint.flush()
        self.assertEqual(client.received, [])
        self.assertEqual(proxy.fromServer, [(P.JOB_CREATED, [b"T:1"]), (P.ECHO_RES, [b"a"])])
        self.clock.advance(0.1)
        self.endpoint.flush()
        self.assertEqual(client.types(), [P.JOB_CREATED, P.ECHO_RES])

    def test_delayToServer(self) -> None:
        """
        A delay toward the server holds every packet of the client for it.
        """
        client = self.connect()
        proxy = self.endpoint.proxies[0]
        proxy.delay(2, TO_SERVER)
        client.send(P.ECHO_REQ, b"a")
        self.endpoint.flush()
        self.assertEqual((proxy.fromClient, proxy.toServer), ([(P.ECHO_REQ, [b"a"])], []))
        self.clock.advance(2)
        self.endpoint.flush()
        self.assertEqual(client.received, [(P.ECHO_RES, [b"a"])])

    def test_injectAndGarbage(self) -> None:
        """
        Injected packets and garbage reach the client at once, even while
        the proxy is paused; injected packets are recorded.
        """
        client = self.connect()
        proxy = self.endpoint.proxies[0]
        proxy.pause()
        proxy.inject(P.NOOP)
        proxy.inject(P.JOB_ASSIGN, b"T:9", b"f", b"data")
        self.endpoint.flush()
        expected = [(P.NOOP, []), (P.JOB_ASSIGN, [b"T:9", b"f", b"data"])]
        self.assertEqual(client.received, expected)
        self.assertEqual(proxy.toClient, expected)
        proxy.sendGarbage(b"garbage\0\0\0")
        self.endpoint.flush()
        self.assertTrue(client.data.endswith(b"garbage\0\0\0"))
        self.assertEqual(proxy.toClient, expected)

    def test_injectToServer(self) -> None:
        """
        A packet injected toward the server is answered to the client.
        """
        client = self.connect()
        self.endpoint.proxies[0].inject(P.ECHO_REQ, b"hi", direction=TO_SERVER)
        self.endpoint.flush()
        self.assertEqual(client.received, [(P.ECHO_RES, [b"hi"])])

    def test_refuse(self) -> None:
        """
        While C{refuse} is set, connecting fails with
        L{ConnectionRefusedError} and makes no proxy.
        """
        self.endpoint.refuse = True
        self.failureResultOf(
            self.endpoint.connect(Factory.forProtocol(RawPeer)), ConnectionRefusedError
        )
        self.assertEqual(self.endpoint.proxies, [])
        self.endpoint.refuse = False
        self.connect()
        self.assertEqual(len(self.endpoint.proxies), 1)

    def test_hang(self) -> None:
        """
        While C{hang} is set, a connection is made but its proxy starts
        paused.
        """
        self.endpoint.hang = True
        client = self.connect()
        client.send(P.ECHO_REQ, b"a")
        self.endpoint.flush()
        self.assertIsNone(client.lostReason)
        self.assertEqual(client.received, [])
        proxy = self.endpoint.proxies[0]
        self.assertTrue(proxy.paused)
        proxy.resume()
        self.endpoint.flush()
        self.assertEqual(client.received, [(P.ECHO_RES, [b"a"])])

    def test_endpointPause(self) -> None:
        """
        The endpoint's C{pause} pauses every connection and the ones made
        after it; C{resume} resumes them all.
        """
        first = self.connect()
        self.endpoint.pause()
        second = self.connect()
        first.send(P.ECHO_REQ, b"1")
        second.send(P.ECHO_REQ, b"2")
        self.endpoint.flush()
        self.assertEqual((first.received, second.received), ([], []))
        self.endpoint.resume()
        self.endpoint.flush()
        self.assertEqual(
            (first.received, second.received),
            ([(P.ECHO_RES, [b"1"])], [(P.ECHO_RES, [b"2"])]),
        )

    def test_configure(self) -> None:
        """
        C{configure} applies to the proxies made before and after it.
        """
        first = self.connect()
        self.endpoint.configure(lambda proxy: proxy.drop(P.NO_JOB))
        second = self.connect()
        for worker in (first, second):
            worker.send(P.GRAB_JOB)
            worker.send(P.ECHO_REQ, b"e")
        self.endpoint.flush()
        self.assertEqual(first.received, [(P.ECHO_RES, [b"e"])])
        self.assertEqual(second.received, [(P.ECHO_RES, [b"e"])])

    def test_disconnect(self) -> None:
        """
        C{disconnect} closes both connections of a proxy.
        """
        client = self.connect()
        proxy = self.endpoint.proxies[0]
        closed = proxy.whenClosed()
        proxy.disconnect()
        self.endpoint.flush()
        self.assertIsNotNone(client.lostReason)
        self.assertEqual(self.endpoint.factory.connections, {})
        self.successResultOf(closed)

    def test_abort(self) -> None:
        """
        C{abort} closes both connections of a proxy.
        """
        client = self.connect()
        proxy = self.endpoint.proxies[0]
        proxy.abort()
        self.endpoint.flush()
        self.assertIsNotNone(client.lostReason)
        self.assertEqual(self.endpoint.factory.connections, {})
        self.successResultOf(proxy.whenClosed())

    def test_disconnectAll(self) -> None:
        """
        C{disconnectAll} closes every connection.
        """
        peers = [self.connect(), self.connect()]
        self.endpoint.disconnectAll()
        self.assertEqual([peer.lostReason is not None for peer in peers], [True, True])
        self.assertEqual(self.endpoint.factory.connections, {})

    def test_serverCloseReachesClient(self) -> None:
        """
        Bytes that do not frame are passed to the server raw; when the
        server closes the connection, so does the proxy, toward the client.
        """
        client = self.connect()
        client.transport.write(encode(99, b"junk", magic=REQ))  # type: ignore[union-attr]
        self.endpoint.flush()
        proxy = self.endpoint.proxies[0]
        self.assertEqual(proxy.fromClient, [])
        self.assertIsNotNone(client.lostReason)
        self.assertEqual(self.endpoint.factory.connections, {})

    def test_clientCloseReachesServer(self) -> None:
        """
        When the client closes its connection, the proxy closes the one to
        the server.
        """
        client = self.connect()
        self.assertEqual(len(self.endpoint.factory.connections), 1)
        client.transport.loseConnection()  # type: ignore[union-attr]
        self.endpoint.flush()
        self.assertEqual(self.endpoint.factory.connections, {})
        self.successResultOf(self.endpoint.proxies[0].whenClosed())

    def test_badDirection(self) -> None:
        """
        A direction other than L{TO_CLIENT} and L{TO_SERVER} is refused.
        """
        proxy = FaultProxy(self.clock)
        self.assertRaises(ValueError, proxy.hold, P.NOOP, "sideways")
        self.assertRaises(ValueError, proxy.drop, P.NOOP, "sideways")


class LoopbackMixin(TestCaseMixin):
    """
    L{listenFaultProxy} on loopback TCP in front of the job server that
    L{startUpstream} starts.
    """

    timeout = 60

    def startUpstream(self) -> int:
        """
        Start the job server.

        @return: its port.
        """
        raise NotImplementedError()

    @inlineCallbacks
    def listen(self) -> Generator[Deferred[Any], Any, FaultProxyServer]:
        from twisted.internet import reactor

        server: FaultProxyServer = yield listenFaultProxy(reactor, "127.0.0.1", self.startUpstream())
        self.addCleanup(server.stop)
        return server

    @inlineCallbacks
    def connect(self, server: FaultProxyServer) -> Generator[Deferred[Any], Any, RawPeer]:
        from twisted.internet import reactor

        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.port)
        peer: RawPeer = yield connectProtocol(endpoint, RawPeer())
        self.addCleanup(peer.close)
        return peer

    @inlineCallbacks
    def test_job(self) -> Generator[Deferred[Any], Any, None]:
        """
        A job passes from a raw client through the proxy and the server to
        a raw worker and back.
        """
        server: FaultProxyServer = yield self.listen()
        client: RawPeer = yield self.connect(server)
        worker: RawPeer = yield self.connect(server)
        client.send(P.SUBMIT_JOB, b"f", b"u1", b"x")
        (handle,) = yield client.waitFor(P.JOB_CREATED)
        worker.send(P.CAN_DO, b"f")
        worker.send(P.GRAB_JOB_UNIQ)
        assigned = yield worker.waitFor(P.JOB_ASSIGN_UNIQ)
        self.assertEqual(assigned, [handle, b"f", b"u1", b"x"])
        worker.send(P.WORK_COMPLETE, handle, b"X")
        completed = yield client.waitFor(P.WORK_COMPLETE)
        self.assertEqual(completed, [handle, b"X"])
        workerProxy = [p for p in server.proxies if countPackets(p.fromClient, P.CAN_DO)]
        self.assertEqual(len(workerProxy), 1)
        self.assertEqual(countPackets(workerProxy[0].toClient, P.JOB_ASSIGN_UNIQ), 1)

    @inlineCallbacks
    def test_pause(self) -> Generator[Deferred[Any], Any, None]:
        """
        A paused proxy reads nothing from the client and answers nothing
        until it is resumed.
        """
        from twisted.internet import reactor

        server: FaultProxyServer = yield self.listen()
        client: RawPeer = yield self.connect(server)
        client.send(P.ECHO_REQ, b"ready")
        yield client.waitFor(P.ECHO_RES)
        (proxy,) = server.proxies
        proxy.pause()
        client.send(P.SUBMIT_JOB, b"f", b"", b"x")
        yield deferLater(reactor, 0.3, lambda: None)
        self.assertEqual(client.types(), [P.ECHO_RES])
        self.assertEqual(proxy.fromClient, [(P.ECHO_REQ, [b"ready"])])
        proxy.resume()
        (handle,) = yield client.waitFor(P.JOB_CREATED)
        self.assertTrue(handle.startswith(b"T:"), handle)

    @inlineCallbacks
    def test_refuse(self) -> Generator[Deferred[Any], Any, None]:
        """
        While refusing, connecting fails with L{ConnectionRefusedError};
        afterwards the same port accepts again.
        """
        from twisted.internet import reactor

        server: FaultProxyServer = yield self.listen()
        yield server.setRefuse(True)
        self.assertTrue(server.refuse)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.port)
        yield self.assertFailure(
            connectProtocol(endpoint, RawPeer()), ConnectionRefusedError
        )
        yield server.setRefuse(False)
        client: RawPeer = yield self.connect(server)
        client.send(P.ECHO_REQ, b"again")
        self.assertEqual((yield client.waitFor(P.ECHO_RES)), [b"again"])


class OursLoopbackTests(LoopbackMixin, TestCase):
    """
    The proxy in front of our job server under twistd.
    """

    def startUpstream(self) -> int:
        from tests.integration.servers import startOurs

        return startOurs(self).port


class GearmandLoopbackTests(LoopbackMixin, TestCase):
    """
    The proxy in front of C gearmand.
    """

    def startUpstream(self) -> int:
        from tests.integration.servers import startGearmand

        return startGearmand(self).port


class FaultProxyServerTests(TestCase):
    """
    L{listenFaultProxy} when the job server cannot be reached.
    """

    timeout = 30

    @inlineCallbacks
    def test_upstreamRefused(self) -> Generator[Deferred[Any], Any, None]:
        """
        When the job server refuses the proxy's connection, the proxy closes
        the client's and keeps the reason.
        """
        from twisted.internet import reactor

        from tests.integration.servers import freePort

        server: FaultProxyServer = yield listenFaultProxy(reactor, "127.0.0.1", freePort())
        self.addCleanup(server.stop)
        peer: RawPeer = yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", server.port), RawPeer())
        self.addCleanup(peer.close)
        yield peer.whenLost()
        (proxy,) = server.proxies
        yield proxy.whenClosed()
        assert proxy.upstreamFailure is not None
        self.assertTrue(proxy.upstreamFailure.check(ConnectionRefusedError))
