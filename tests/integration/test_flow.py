"""
The server's bounds on what one peer can make it hold, in a real process:
a client that never reads, connections that half-send large packets, and
connections that send a packet one byte at a time.
"""

from __future__ import annotations

import socket
import time
from typing import List

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import packet, startOurs


def rss(pid: int) -> int:
    """
    The resident memory of process C{pid}, in bytes.
    """
    with open("/proc/%d/status" % (pid,)) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def rawSocket(port: int, buffers: int = 65536) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffers)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffers)
    sock.connect(("127.0.0.1", port))
    return sock


def sendUntilStalled(sock: socket.socket, data: bytes, stall: float = 1.0, limit: float = 30.0) -> int:
    """
    Send C{data} until the socket takes nothing for C{stall} seconds (or
    all is sent); return the bytes sent.
    """
    view = memoryview(data)
    sent = 0
    sock.settimeout(stall)
    deadline = time.monotonic() + limit
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += sock.send(view[sent : sent + (1 << 20)])
        except socket.timeout:
            break
    return sent


class FlowProcessTests(SynchronousTestCase):
    """
    Memory and connections stay bounded whatever one peer does.
    """

    def assertServed(self, server) -> None:  # type: ignore[no-untyped-def]
        other = server.connect()
        self.addCleanup(other.close)
        started = time.monotonic()
        self.assertEqual(other.sync(b"still here"), [])
        self.assertLess(time.monotonic() - started, 2.0)

    def test_nonReader(self) -> None:
        """
        A client sending 256 MiB of ECHOs without reading a reply raises
        the server's memory by a small part of that (the server stops
        reading from it past --max-output-buffer), others are served
        meanwhile, and the server goes on once it leaves.
        """
        server = startOurs(self, "--max-output-buffer", str(1 << 20))
        self.assertServed(server)
        before = rss(server.pid)
        sock = rawSocket(server.port)
        self.addCleanup(sock.close)
        echo = packet(16, b"x" * 65536)
        sent = sendUntilStalled(sock, echo * 4096)
        self.assertLess(sent, 64 << 20)
        grown = rss(server.pid) - before
        self.assertLess(grown, 48 << 20, "RSS grew by %d MiB" % (grown >> 20,))
        self.assertServed(server)
        sock.close()
        self.assertServed(server)

    def test_halfSentPackets(self) -> None:
        """
        Eight connections each sending half of a 64 MiB packet hold about
        one of them in memory (--max-input-buffer), not all eight; when
        the first finishes its packet, it is answered.
        """
        server = startOurs(self, "--max-input-buffer", str(64 << 20))
        self.assertServed(server)
        before = rss(server.pid)
        size = 64 * 1024 * 1024 - 64
        echo = packet(16, b"h" * size)
        socks: List[socket.socket] = []
        for _ in range(8):
            sock = rawSocket(server.port)
            self.addCleanup(sock.close)
            socks.append(sock)
            sendUntilStalled(sock, echo[: len(echo) // 2], stall=0.5)
        grown = rss(server.pid) - before
        self.assertLess(grown, 160 << 20, "RSS grew by %d MiB" % (grown >> 20,))
        self.assertServed(server)
        first = socks[0]
        first.settimeout(30)
        first.sendall(echo[len(echo) // 2 :])
        got = 0
        while got < len(echo):
            chunk = first.recv(1 << 20)
            self.assertTrue(chunk, "closed after %d bytes" % (got,))
            got += len(chunk)
        self.assertEqual(got, len(echo))

    def test_slowSender(self) -> None:
        """
        With --packet-timeout 2, a connection sending a packet a byte at a
        time, and one that says nothing, are closed within a few seconds,
        while a client that keeps finishing its packets stays.
        """
        server = startOurs(self, "--packet-timeout", "2")
        slow = rawSocket(server.port)
        silent = rawSocket(server.port)
        self.addCleanup(slow.close)
        self.addCleanup(silent.close)
        steady = server.connect()
        self.addCleanup(steady.close)
        echo = packet(16, b"s" * 100)
        started = time.monotonic()
        closed = None
        for index in range(40):
            try:
                slow.send(echo[index : index + 1])
            except OSError:
                closed = time.monotonic() - started
                break
            self.assertEqual(steady.sync(b"%d" % (index,)), [])
            time.sleep(0.25)
        if closed is None:
            self.fail("the slow sender was not closed in 10 s")
        self.assertLess(closed, 6.0)
        silent.settimeout(2)
        self.assertEqual(silent.recv(10), b"")
        self.assertEqual(steady.sync(b"last"), [])


class SlicedHTTPListingTests(SynchronousTestCase):
    """
    C{/metrics} of a server with many functions is made a slice per
    reactor turn: Gearman clients are answered promptly meanwhile (with
    100,000 functions an ECHO waited 8 s with prometheus_client making the
    whole page, 0.9 s with our own formatting in one go, 0.06 s sliced).
    """

    def test_metricsDoNotStall(self) -> None:
        import threading
        import urllib.request

        from tests.integration.servers import freePort

        httpPort = freePort()
        server = startOurs(self, "--http-port", str(httpPort))
        worker = server.connect()
        self.addCleanup(worker.close)
        names = [b"function-%06d" % (n,) for n in range(100000)]
        worker.send(b"".join(packet(1, name) for name in names))
        worker.sync()
        client = server.connect()
        self.addCleanup(client.close)
        fetched: List[bytes] = []

        def scrape() -> None:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % (httpPort,), timeout=60) as r:
                fetched.append(r.read())

        scraper = threading.Thread(target=scrape)
        scraper.start()
        self.addCleanup(scraper.join, 60)
        slowest = 0.0
        deadline = time.monotonic() + 60
        while scraper.is_alive() and time.monotonic() < deadline:
            started = time.monotonic()
            self.assertEqual(client.sync(b"ping"), [])
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.01)
        scraper.join(60)
        self.assertEqual(len(fetched), 1)
        self.assertEqual(fetched[0].count(b"gearman_workers{function="), 100000)
        self.assertLess(slowest, 0.5)
