"""
HTTP against a live job server in this process: gearmand's HTTP protocol and
the JSON API, with jobs run by real workers (ours and the libgearman CLI).
"""

import base64
import json
import select
import socket
import subprocess
import time
import urllib.error
import urllib.request

from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool

from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.lifecycle import Policies
from gearman_tw.server.web import makeSite
from gearman_tw.worker import GearmanWorker
from tests.integration.servers import freePort, requireProgram, startOurs, stopProcess, waitForPort


class HTTPTests(TestCase):
    """
    HTTP requests run jobs on a job server listening on loopback.
    """

    timeout = 60

    @inlineCallbacks
    def setUp(self):
        self.server = JobServer(reactor, handlePrefix=b"T")
        gear = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            GearmanServerFactory(self.server)
        )
        self.addCleanup(gear.stopListening)
        self.gearPort = gear.getHost().port
        site = makeSite(self.server, reactor, noWorkerTimeout=0.5)
        http = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
        self.addCleanup(http.stopListening)
        self.url = "http://127.0.0.1:%d/" % (http.getHost().port,)
        self.seen = []
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.http = HTTPClient(Agent(reactor, pool=pool))
        self.addCleanup(self.settle)
        self.addCleanup(pool.closeCachedConnections)

    def settle(self) -> Deferred:
        """
        Let closed connections finish closing on the server side too.
        """
        d: Deferred[None] = Deferred()
        reactor.callLater(0.05, d.callback, None)
        return d

    def worker(self, **functions) -> Deferred:
        worker = GearmanWorker(["127.0.0.1:%d" % self.gearPort], concurrency=2)
        for name, function in functions.items():
            worker.register(name, function)
        worker.startService()
        self.addCleanup(worker.stopService)
        return self.waitFor(
            lambda: all(
                self.server.functions.get(n.encode()) and self.server.functions[n.encode()].workers for n in functions
            )
        )

    @inlineCallbacks
    def waitFor(self, predicate, timeout=10.0):
        for _ in range(int(timeout / 0.02)):
            if predicate():
                return
            d = Deferred()
            reactor.callLater(0.02, d.callback, None)
            yield d
        self.fail("condition not met in time")

    def reverse(self, job):
        self.seen.append(job.data)
        return job.data[::-1]

    @inlineCallbacks
    def test_post(self):
        """
        POST /FUNCTION returns the result with the job handle and command
        headers, as gearmand does.
        """
        yield self.worker(reverse=self.reverse)
        response = yield self.http.post(self.url + "reverse", b"Hello world!")
        self.assertEqual(response.code, 200)
        self.assertEqual((yield response.content()), b"!dlrow olleH")
        headers = response.headers
        self.assertEqual(headers.getRawHeaders("X-Gearman-Command"), ["WORK_COMPLETE"])
        self.assertTrue(headers.getRawHeaders("X-Gearman-Job-Handle")[0].startswith("T:"))
        self.assertTrue(headers.getRawHeaders("Server")[0].startswith("Gearman/1.1.20"))

    @inlineCallbacks
    def test_cliWorker(self):
        """
        A libgearman CLI worker serves HTTP jobs; a GET runs none (gearmand
        would run one with no workload): 405 with C{Allow: POST, PUT}.
        """
        gearman = requireProgram("gearman")
        process = subprocess.Popen(
            [gearman, "-h", "127.0.0.1", "-p", str(self.gearPort), "-w", "-f", "wc", "--", "wc", "-c"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(stopProcess, process)
        yield self.waitFor(lambda: b"wc" in self.server.functions and self.server.functions[b"wc"].workers)
        response = yield self.http.post(self.url + "wc", b"12345")
        self.assertEqual((yield response.content()).strip(), b"5")
        submitted = self.server.functions[b"wc"].submitted[:]
        response = yield self.http.get(self.url + "wc")
        self.assertEqual((response.code, response.headers.getRawHeaders("Allow")), (405, ["POST, PUT"]))
        yield response.content()
        self.assertEqual(self.server.functions[b"wc"].submitted, submitted)

    @inlineCallbacks
    def test_streamedData(self):
        """
        WORK_DATA chunks come before the result in the body; the last status
        and every warning come as headers.
        """

        def stream(job):
            job.sendData(b"a")
            job.sendStatus(1, 2)
            job.sendWarning(b"careful")
            job.sendData(b"b")
            return b"!"

        yield self.worker(stream=stream)
        response = yield self.http.post(self.url + "stream", b"x")
        self.assertEqual((yield response.content()), b"ab!")
        self.assertEqual(response.headers.getRawHeaders("X-Gearman-Status"), ["1/2"])
        self.assertEqual(response.headers.getRawHeaders("X-Gearman-Warning"), ["careful"])

    @inlineCallbacks
    def test_background(self):
        """
        X-Gearman-Background: true answers at once with the handle and an
        empty body; the job then runs.
        """
        response = yield self.http.post(
            self.url + "later", b"data", headers={"X-Gearman-Background": "true", "X-Gearman-Priority": "high"}
        )
        self.assertEqual(response.code, 200)
        self.assertEqual((yield response.content()), b"")
        self.assertEqual(response.headers.getRawHeaders("X-Gearman-Command"), ["JOB_CREATED"])
        handle = response.headers.getRawHeaders("X-Gearman-Job-Handle")[0].encode()
        job = self.server.jobs[handle]
        self.assertEqual((job.data, job.priority), (b"data", 0))
        yield self.worker(later=self.reverse)
        yield self.waitFor(lambda: not self.server.jobs)
        self.assertEqual(self.seen, [b"data"])

    @inlineCallbacks
    def test_coalescing(self):
        """
        Without X-Gearman-Unique, equal bodies coalesce (gearmand's "-");
        both requests get the one result.
        """
        release = Deferred()

        def slow(job):
            self.seen.append(job.data)
            return release

        yield self.worker(slow=slow)
        first = self.http.post(self.url + "slow", b"same")
        yield self.waitFor(lambda: self.seen)
        second = self.http.post(self.url + "slow", b"same")
        yield self.waitFor(lambda: len(next(iter(self.server.jobs.values())).clients) == 2)
        release.callback(b"once")
        responses = yield gatherResults([first, second])
        bodies = yield gatherResults([r.content() for r in responses])
        self.assertEqual(bodies, [b"once", b"once"])
        self.assertEqual(self.seen, [b"same"])

    @inlineCallbacks
    def test_failures(self):
        """
        WORK_FAIL and WORK_EXCEPTION answer 500 with the command header (and
        the exception's text).
        """

        def explode(job):
            raise ValueError("kaboom")

        def refuse(job):
            job.fail()

        yield self.worker(explode=explode, refuse=refuse)
        response = yield self.http.post(self.url + "explode", b"")
        self.assertEqual(response.code, 500)
        self.assertEqual(response.headers.getRawHeaders("X-Gearman-Command"), ["WORK_EXCEPTION"])
        self.assertEqual((yield response.content()), b"kaboom")
        response = yield self.http.post(self.url + "refuse", b"")
        self.assertEqual(response.code, 500)
        self.assertEqual(response.headers.getRawHeaders("X-Gearman-Command"), ["WORK_FAIL"])
        yield response.content()
        self.flushLoggedErrors(ValueError)

    @inlineCallbacks
    def test_noWorker(self):
        """
        A job for a function with no worker gets 504 after the timeout and
        is dropped from the queue.
        """
        response = yield self.http.post(self.url + "nobody", b"x")
        self.assertEqual(response.code, 504)
        yield response.content()
        yield self.waitFor(
            lambda: self.server.functions[b"nobody"].total == 0 or all(j.ignore for j in self.server.jobs.values())
        )

    @inlineCallbacks
    def test_rawPaths(self):
        """
        The function name is the raw path without leading slashes: query
        strings are part of it, as in gearmand; HEAD / names no job.
        """
        yield self.worker(**{"f?x=1": self.reverse})
        response = yield self.http.post(self.url + "/f?x=1", b"ab")
        self.assertEqual((yield response.content()), b"ba")
        response = yield self.http.head(self.url)
        self.assertEqual(response.headers.getRawHeaders("X-Gearman-Job-Handle"), ["(null)"])
        response = yield self.http.request("DELETE", self.url + "f")
        self.assertEqual(response.code, 405)
        yield response.content()

    @inlineCallbacks
    def test_api(self):
        """
        The JSON API lists functions and workers, reports job status, submits
        jobs from JSON and cancels queued ones.
        """
        yield self.worker(reverse=self.reverse)
        response = yield self.http.post(
            self.url + "api/jobs", json.dumps({"function": "reverse", "data": "abc"}).encode()
        )
        result = yield response.json()
        self.assertEqual(result["result"]["text"], "cba")
        self.assertEqual(result["state"], "complete")
        response = yield self.http.post(
            self.url + "api/jobs",
            json.dumps({"function": "queued", "data_base64": "AAE=", "background": True, "unique": "u1"}).encode(),
        )
        self.assertEqual(response.code, 202)
        handle = (yield response.json())["handle"]
        self.assertEqual(self.server.jobs[handle.encode()].data, b"\x00\x01")
        status = yield (yield self.http.get(self.url + "api/jobs/" + handle)).json()
        self.assertEqual(status, {"handle": handle, "known": True, "running": False, "numerator": 0, "denominator": 0})
        unique = yield (yield self.http.get(self.url + "api/unique/u1")).json()
        self.assertTrue(unique["known"])
        functions = yield (yield self.http.get(self.url + "api/functions")).json()
        byName = {f["name"]: f for f in functions}
        self.assertEqual(byName["queued"]["queued"], 1)
        self.assertEqual(byName["reverse"]["workers"], 2)
        workers = yield (yield self.http.get(self.url + "api/workers")).json()
        self.assertEqual(sum(1 for w in workers if w["functions"] == ["reverse"]), 2)
        info = yield (yield self.http.get(self.url + "api/server")).json()
        self.assertEqual(info["queue"], "memory")
        response = yield self.http.delete(self.url + "api/jobs/" + handle)
        self.assertEqual((yield response.json())["cancelled"], True)
        response = yield self.http.delete(self.url + "api/jobs/T:999")
        self.assertEqual(response.code, 404)
        yield response.content()
        response = yield self.http.post(self.url + "api/jobs", b"{not json")
        self.assertEqual(response.code, 400)
        yield response.content()

    @inlineCallbacks
    def test_deadLetters(self):
        """
        A background job its worker fails is kept as a dead letter, which
        the API lists with its data and the worker's words, and submits
        again: the worker, now fine, completes it.
        """
        self.server.setPolicies(Policies.fromText("[functions.flaky]\ndead-letters = 10\n"))
        broken = [True, False]

        def flaky(job):
            self.seen.append(job.data)
            if broken.pop(0):
                raise ValueError("disk full")
            return job.data

        yield self.worker(flaky=flaky)
        response = yield self.http.post(
            self.url + "api/jobs", json.dumps({"function": "flaky", "data": "img", "background": True}).encode()
        )
        self.assertEqual(response.code, 202)
        yield response.content()
        yield self.waitFor(lambda: self.server.deadLetters.of(b"flaky"))
        counts = yield (yield self.http.get(self.url + "api/deadletters")).json()
        self.assertEqual(counts, [{"function": "flaky", "kept": 1, "dropped": 0}])
        [letter] = yield (yield self.http.get(self.url + "api/functions/flaky/deadletters")).json()
        self.assertEqual((letter["data"]["text"], letter["error"]["text"]), ("img", "disk full"))
        policy = yield (yield self.http.get(self.url + "api/functions/flaky/policy")).json()
        self.assertEqual(policy["dead-letters"], 10)
        response = yield self.http.post(
            self.url + "api/functions/flaky/deadletters/retry", json.dumps({"ids": [letter["id"]]}).encode()
        )
        self.assertEqual((yield response.json()), {"function": "flaky", "retried": 1, "kept": 0})
        yield self.waitFor(lambda: self.server.functions[b"flaky"].completed == 1)
        self.assertEqual(self.seen, [b"img", b"img"])
        functions = yield (yield self.http.get(self.url + "api/functions")).json()
        [flakyRow] = [f for f in functions if f["name"] == "flaky"]
        self.assertEqual((flakyRow["dead_lettered"], flakyRow["exceptions"], flakyRow["retried"]), (1, 1, 0))
        self.assertEqual(self.server.deadLetters.functions(), {})
        self.flushLoggedErrors(ValueError)

    @inlineCallbacks
    def test_clientGoesAway(self):
        """
        An HTTP client that disconnects while its job is queued abandons it,
        as a binary client would: the job never runs.
        """
        import socket

        port = int(self.url.rsplit(":", 1)[1].strip("/"))
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /orphan HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc")
        yield self.waitFor(lambda: b"orphan" in self.server.functions and self.server.jobs)
        sock.close()
        yield self.waitFor(lambda: all(job.ignore for job in self.server.jobs.values()))
        yield self.worker(orphan=self.reverse)
        yield self.waitFor(lambda: not self.server.jobs)
        self.assertEqual(self.seen, [])

    @inlineCallbacks
    def test_workersShowsFd(self):
        """
        C{workers} lists a waiting HTTP client with its connection's file
        descriptor, as gearmand does, not -1.
        """
        import socket

        from gearman_tw.server.admin import AdminCommands

        port = int(self.url.rsplit(":", 1)[1].strip("/"))
        sock = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(sock.close)
        sock.sendall(b"POST /waiting HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc")
        yield self.waitFor(lambda: b"waiting" in self.server.functions and self.server.jobs)
        [job] = self.server.jobs.values()
        [peer] = job.clients
        self.assertGreaterEqual(peer.fd, 0)
        listing = AdminCommands(self.server).execute(peer, b"workers")
        self.assertIn(b"%d 127.0.0.1 - :\n" % (peer.fd,), listing)
        self.assertNotIn(b"-1 ", listing)

    @inlineCallbacks
    def test_bodyTooLarge(self):
        """
        A body over the server's limit gets 413 and submits nothing.
        """
        site = makeSite(self.server, reactor, maxBody=10)
        http = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
        self.addCleanup(http.stopListening)
        response = yield self.http.post("http://127.0.0.1:%d/f" % (http.getHost().port,), b"x" * 11)
        self.assertEqual(response.code, 413)
        yield response.content()
        self.assertEqual(self.server.jobs, {})


def memory(pid: int) -> dict:
    """
    The resident set size now (C{VmRSS}) and at its peak (C{VmHWM}) of
    process C{pid}, in KiB.
    """
    values = {}
    with open("/proc/%d/status" % (pid,)) as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


class HTTPBodyLimitProcessTests(TestCase):
    """
    C{twistd gearman --http-port} refuses bodies over its limit while they
    arrive, so a hostile client cannot make it hold them in memory.
    """

    timeout = 120

    def startServer(self, *args: str):
        httpPort = freePort()
        server = startOurs(self, "--http-port", str(httpPort), *args)
        waitForPort(httpPort, server.process)
        return server, httpPort

    def connect(self, port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(sock.close)
        return sock

    def readResponse(self, sock: socket.socket, timeout: float = 10.0) -> bytes:
        """
        Everything the server sends until it closes, or C{timeout}.
        """
        sock.settimeout(timeout)
        data = b""
        try:
            while True:
                more = sock.recv(65536)
                if not more:
                    break
                data += more
        except (socket.timeout, ConnectionResetError):
            pass
        return data

    def test_hugeContentLength(self):
        """
        A Content-Length of 10 GB is answered with 413 as soon as the
        headers arrive, on gearmand's route and on the JSON API, and the
        server's memory does not grow.
        """
        server, port = self.startServer()
        before = memory(server.pid)
        for path in (b"/reverse", b"/api/jobs"):
            sock = self.connect(port)
            started = time.monotonic()
            sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % (path, 10 * 2**30))
            sock.sendall(b"x" * 65536)
            response = self.readResponse(sock, timeout=5.0)
            self.assertTrue(response.startswith(b"HTTP/1.1 413 "), response[:200])
            self.assertIn(b"larger than the limit of 67108864 bytes", response)
            self.assertLess(time.monotonic() - started, 2.0)
        after = memory(server.pid)
        self.assertLess(after["VmHWM"] - before["VmHWM"], 16 * 1024, (before, after))

    def test_chunkedCutOff(self):
        """
        A chunked body streamed past the limit (200 MB on C{/api/jobs}) is
        cut off near the limit with 413; the server's peak memory stays
        where it was.
        """
        server, port = self.startServer()
        before = memory(server.pid)
        sock = self.connect(port)
        sock.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n%s\r\n" % (2**20, b"x" * 2**20)
        sent, response, cut = 0, b"", False
        while sent < 200 * 2**20:
            if select.select([sock], [], [], 0)[0]:
                response = sock.recv(65536)
                break
            try:
                sock.sendall(piece)
            except OSError:
                cut = True
                break
            sent += 2**20
        else:
            sock.sendall(b"0\r\n\r\n")
        response += self.readResponse(sock, timeout=30.0)
        after = memory(server.pid)
        self.assertTrue(response.startswith(b"HTTP/1.1 413 ") or cut, response[:200])
        self.assertLess(sent, 100 * 2**20)
        self.assertLess(after["VmHWM"] - before["VmHWM"], 16 * 1024, (before, after))

    def test_maxBodyOption(self):
        """
        C{--http-max-body} sets the one limit of every route; bodies within
        it are served as before.
        """
        server, port = self.startServer("--http-max-body", "1000")
        for path in (b"/f", b"/api/jobs"):
            sock = self.connect(port)
            sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1001\r\n\r\n" % (path,))
            response = self.readResponse(sock)
            self.assertTrue(response.startswith(b"HTTP/1.1 413 "), response[:200])
            self.assertIn(b"limit of 1000 bytes", response)
        sock = self.connect(port)
        sock.sendall(
            b"POST /f HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Gearman-Background: true\r\n"
            b"Content-Length: 1000\r\n\r\n" + b"x" * 1000
        )
        response = self.readResponse(sock)
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response[:200])
        self.assertIn(b"X-Gearman-Command: JOB_CREATED", response)


class APIDocumentProcessTests(TestCase):
    """
    C{twistd gearman --http-port} serves the JSON API's index and OpenAPI
    document.
    """

    timeout = 60

    def get(self, port: int, path: bytes) -> bytes:
        """
        The whole response to C{GET path}, read until the server closes.
        """
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(sock.close)
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % (path,))
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            more = sock.recv(65536)
            if not more:
                break
            data += more
        return data

    def test_documentAndIndex(self):
        """
        C{GET /api/openapi.json} answers the package's document as JSON,
        and C{GET /api/} an index that links to it.
        """
        from importlib.resources import files

        document = (files("gearman_tw.server") / "openapi.json").read_bytes()
        httpPort = freePort()
        server = startOurs(self, "--http-port", str(httpPort))
        waitForPort(httpPort, server.process)
        head, _, body = self.get(httpPort, b"/api/openapi.json").partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        self.assertIn(b"\r\nContent-Type: application/json\r\n", head + b"\r\n")
        self.assertEqual(body, document)
        head, _, body = self.get(httpPort, b"/api/").partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        index = json.loads(body)
        self.assertEqual(index["openapi"], "/api/openapi.json")
        summary = json.loads(document)["paths"]["/api/jobs"]["post"]["summary"]
        self.assertIn({"method": "POST", "path": "/api/jobs", "summary": summary}, index["routes"])


def fetch(url: str, data=None, headers=None):
    """
    C{(code, headers, body)} of a request made with urllib (a POST when
    C{data} is given), errors included.
    """
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


class StoredResultProcessTests(SynchronousTestCase):
    """
    C{twistd gearman --http-port --policies} answers a job's stored result
    over the JSON API, as its admin command does.
    """

    POLICIES = """
[functions.echo]
keep-results = 60
"""

    def test_backgroundResult(self):
        """
        A background job submitted over HTTP is C{queued}; once
        libgearman's worker did it, its result (binary data, whole) is
        fetched by handle and by unique key, with the times and data the
        C{result} admin command shows, and the function counts it.
        """
        gearman = requireProgram("gearman")
        policies = self.mktemp()
        with open(policies, "w") as f:
            f.write(self.POLICIES)
        httpPort = freePort()
        server = startOurs(self, "--http-port", str(httpPort), "--policies", policies)
        waitForPort(httpPort, server.process)
        base = "http://127.0.0.1:%d" % (httpPort,)
        payload = b"payload\0bytes\xff"
        code, headers, _ = fetch(
            base + "/echo", payload, {"X-Gearman-Background": "true", "X-Gearman-Unique": "img-7"}
        )
        self.assertEqual((code, headers["X-Gearman-Command"]), (200, "JOB_CREATED"))
        handle = headers["X-Gearman-Job-Handle"]
        code, _, body = fetch(base + "/api/results/" + handle)
        self.assertEqual(
            (code, json.loads(body)),
            (200, {"function": "echo", "handle": handle, "unique": "img-7", "outcome": "queued"}),
        )
        before = time.time()
        worker = subprocess.Popen(
            [gearman, "-h", "127.0.0.1", "-p", str(server.port), "-w", "-f", "echo", "-c", "1", "--", "cat"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(stopProcess, worker)
        self.assertEqual(worker.wait(15), 0)
        code, _, body = fetch(base + "/api/results/" + handle)
        self.assertEqual(code, 200, body)
        result = json.loads(body)
        self.assertEqual(
            (result["function"], result["handle"], result["unique"], result["outcome"]),
            ("echo", handle, "img-7", "complete"),
        )
        self.assertEqual(list(result["data"]), ["base64"])
        self.assertEqual(base64.b64decode(result["data"]["base64"]), payload)
        self.assertTrue(before - 1 <= result["finished"] <= time.time() + 1, (before, result))
        self.assertAlmostEqual(result["expires"] - result["finished"], 60, places=3)
        code, _, body = fetch(base + "/api/unique/img-7/result")
        self.assertEqual((code, json.loads(body)), (200, result))
        admin = server.connect()
        self.addCleanup(admin.close)
        reply = admin.admin(b"result " + handle.encode() + b"\n")
        self.assertIn(b"finished %.3f\nexpires %.3f\n" % (result["finished"], result["expires"]), reply)
        self.assertIn(b"data " + result["data"]["base64"].encode() + b"\n", reply)
        code, _, body = fetch(base + "/api/functions")
        [echo] = json.loads(body)
        self.assertEqual((echo["name"], echo["completed"], echo["stored_results"]), ("echo", 1, 1))
        code, _, body = fetch(base + "/api/results/H:nothing:1")
        self.assertEqual((code, list(json.loads(body))), (404, ["error"]))
