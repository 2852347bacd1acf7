"""
The HTTP face of C{twistd gearman} against real clients: a page of another
origin in headless Chromium cannot submit or cancel jobs, a name pointed at
127.0.0.1 (DNS rebinding) cannot read the API, GETs never run jobs, HTTP
listens on loopback only by default, and C{--http-token-file} guards
writes (policy changes included), a function's dead letters and a job's
stored result, which an access policy limits to those who may administer
its function.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from typing import Dict, Optional, Tuple

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import REPO, ServerProcess, freePort, startOurs, twistdArgv, waitFor, waitForPort
from tests.integration.test_monitor import browser

#: The attacker's page: it tries, from its own origin, what any web page
#: may try without the user's leave.  Filled in with the server's base URL
#: and the handle of a job to cancel.
ATTACK = """<!DOCTYPE html>
<html><head><title>loading</title></head><body><pre id="out"></pre><script>
var base = %(base)s;
function attempt(url, init) {
  return fetch(url, init).then(
    function (r) { return "sent " + r.type; },
    function (e) { return "error " + e.name; });
}
Promise.all([
  attempt(base + "/api/jobs", {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "text/plain"},
    body: JSON.stringify({function: "evil_api", data: "x", background: true})}),
  attempt(base + "/evil_gearmand", {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: "x"}),
  attempt(base + "/api/jobs/" + %(handle)s, {method: "DELETE"}),
  attempt(base + "/api/jobs/" + %(handle)s, {method: "DELETE", mode: "no-cors"}),
  attempt(base + "/api/functions/victim/policy", {method: "PATCH",
    headers: {"Content-Type": "text/plain"}, body: JSON.stringify({"max-running": 0})}),
  attempt(base + "/api/functions/victim/policy", {method: "DELETE"}),
]).then(function (results) {
  document.getElementById("out").textContent = results.join("\\n");
  document.title = "done";
});
</script></body></html>
"""


#: An access policy: C{ops} may submit anything and administer
#: C{report.*}, C{root} administer everything.
RESULT_ACL = """
[tokens]
ops = "ops-token"
root = "root-token"

[[allow]]
who = "token:ops"
submit = "*"
admin = "report.*"

[[allow]]
who = "token:root"
admin = "*"
"""


class PageServer:
    """
    A little HTTP server on 127.0.0.1, in a thread, serving one page at
    every path: another origin than the job server's.
    """

    def __init__(self, page: bytes) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/" % (self.httpd.server_address[1],)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def call(
    url: str, method: str = "GET", body: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None
) -> Tuple[int, Dict[str, str], bytes]:
    """
    One request with urllib (no Origin header): status, headers, body.
    """
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read()


def refused(base: str) -> Dict[str, float]:
    """
    C{gearman_http_refused_total} by reason, from C{/metrics}.
    """
    from prometheus_client.parser import text_string_to_metric_families

    _, _, body = call(base + "/metrics")
    found = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            if sample.name == "gearman_http_refused_total":
                found[sample.labels["reason"]] = sample.value
    return found


def accepts(address: str, port: int) -> bool:
    """
    Whether something accepts connections at C{address}, C{port}.
    """
    try:
        socket.create_connection((address, port), timeout=5).close()
    except ConnectionRefusedError:
        return False
    return True


class BrowserTests(SynchronousTestCase):
    """
    A real browser, headless Chromium, against C{twistd gearman
    --http-port} with no other HTTP option: the defaults must hold.
    """

    def setUp(self) -> None:
        self.httpPort = freePort()
        self.server = startOurs(self, "--http-port", str(self.httpPort), "--http-no-worker-timeout", "2")
        waitForPort(self.httpPort, self.server.process)
        self.base = "http://127.0.0.1:%d" % (self.httpPort,)
        self.driver = browser()
        self.addCleanup(self.driver.quit)

    def status(self) -> bytes:
        """
        What the admin C{status} command lists.
        """
        admin = self.server.connect()
        try:
            return admin.admin(b"status\n")
        finally:
            admin.close()

    def test_crossOriginWrites(self) -> None:
        """
        A page served from another origin POSTs C{text/plain} to
        C{/api/jobs} and to gearmand's C{/FUNCTION} (which a page may do
        without asking), DELETEs a queued job, and PATCHes and DELETEs a
        function's policy: the browser sends both POSTs, the server refuses
        them, and no job is created or cancelled, no policy changed.
        """
        code, _, body = call(
            self.base + "/api/jobs",
            "POST",
            json.dumps({"function": "victim", "data": "keep me", "background": True}).encode(),
        )
        self.assertEqual(code, 202)
        handle = json.loads(body)["handle"]
        self.assertEqual(self.status(), b"victim\t1\t0\t0\n.\n")
        code, _, _ = call(self.base + "/api/functions/victim/policy", "PATCH", b'{"max-running": 3}')
        self.assertEqual(code, 200)
        page = PageServer((ATTACK % {"base": json.dumps(self.base), "handle": json.dumps(handle)}).encode())
        self.addCleanup(page.stop)
        self.driver.get(page.url)
        self.assertTrue(waitFor(lambda: self.driver.title == "done", 30), "the page did not finish")
        results = self.driver.find_element("id", "out").text.split("\n")
        # Both POSTs left the browser (their answers are opaque to the page);
        # the DELETEs and PATCH did not get past the browser's own checks.
        self.assertEqual(results[:2], ["sent opaque", "sent opaque"])
        self.assertEqual(results[2:], ["error TypeError"] * 4)
        self.assertEqual(self.status(), b"victim\t1\t0\t0\n.\n")
        code, _, body = call(self.base + "/api/jobs/" + handle)
        self.assertEqual(json.loads(body)["known"], True)
        code, _, body = call(self.base + "/api/functions")
        self.assertEqual([f["name"] for f in json.loads(body)], ["victim"])
        code, _, body = call(self.base + "/api/functions/victim/policy")
        self.assertEqual(json.loads(body)["changed"], {"max-running": 3})
        # The server saw them, and refused them for their origin: the two
        # POSTs and the preflights.
        self.assertGreaterEqual(refused(self.base).get("origin", 0), 5)

    def test_rebinding(self) -> None:
        """
        A page whose name resolves to 127.0.0.1 (Chromium resolves every
        C{*.localhost} there, as DNS rebinding would an attacker's name) is
        refused: not the API, not the monitor page; by address or as
        C{localhost} they are served.
        """
        call(self.base + "/api/jobs", "POST", json.dumps({"function": "secret", "background": True}).encode())
        rebound = "http://rebind.localhost:%d" % (self.httpPort,)
        self.driver.get(rebound + "/api/functions")
        text = self.driver.find_element("tag name", "body").text
        self.assertIn("not a name of this server", text)
        self.assertNotIn("secret", text)
        self.driver.get(rebound + "/")
        self.assertNotEqual(self.driver.title, "Gearman job server")
        self.assertIn("not a name of this server", self.driver.find_element("tag name", "body").text)
        self.driver.get(self.base + "/api/functions")
        self.assertIn("secret", self.driver.find_element("tag name", "body").text)
        self.driver.get("http://localhost:%d/" % (self.httpPort,))
        self.assertEqual(self.driver.title, "Gearman job server")
        self.assertGreaterEqual(refused(self.base).get("host", 0), 2)


class ProcessTests(SynchronousTestCase):
    """
    C{twistd gearman}'s HTTP options in a real server process.
    """

    def startServer(self, *args: str) -> Tuple[ServerProcess, str]:
        httpPort = freePort()
        server = startOurs(self, "--http-port", str(httpPort), *args)
        waitForPort(httpPort, server.process)
        return server, "http://127.0.0.1:%d" % (httpPort,)

    def test_getIsNoJob(self) -> None:
        """
        A GET of C{/favicon.ico} or of any function answers 405 at once and
        leaves no function or job behind.
        """
        server, base = self.startServer()
        for path in ("/favicon.ico", "/reverse", "/a/b?c=d"):
            code, headers, _ = call(base + path)
            self.assertEqual((code, headers.get("Allow")), (405, "POST, PUT"))
        admin = server.connect()
        self.addCleanup(admin.close)
        self.assertEqual(admin.admin(b"status\n"), b".\n")

    def test_loopbackOnly(self) -> None:
        """
        C{--http-port} listens at 127.0.0.1 only, even when C{--listen}
        names other addresses; C{--http-listen} names others.
        """
        httpPort = freePort()
        server = startOurs(self, "--listen", "127.0.0.2", "--http-port", str(httpPort))
        waitForPort(httpPort, server.process)
        socket.create_connection(("127.0.0.2", server.port), timeout=5).close()
        self.assertFalse(accepts("127.0.0.2", httpPort))
        otherPort = freePort()
        startOurs(self, "--http-port", str(otherPort), "--http-listen", "127.0.0.2")
        self.assertTrue(waitFor(lambda: accepts("127.0.0.2", otherPort)))
        self.assertFalse(accepts("127.0.0.1", otherPort))

    def test_token(self) -> None:
        """
        With C{--http-token-file}, writes need the token (401 with
        C{WWW-Authenticate: Bearer} without it) and reads do not.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("s3cret\n")
        server, base = self.startServer("--http-token-file", path)
        background = {"X-Gearman-Background": "true"}
        code, headers, body = call(base + "/f", "POST", b"x", background)
        self.assertEqual(code, 401)
        self.assertTrue(headers["WWW-Authenticate"].startswith("Bearer"))
        self.assertEqual(body.count(b"\n"), 1)
        code, _, _ = call(base + "/f", "POST", b"x", dict(background, Authorization="Bearer wrong"))
        self.assertEqual(code, 401)
        code, headers, _ = call(base + "/f", "POST", b"x", dict(background, Authorization="Bearer s3cret"))
        self.assertEqual((code, headers["X-Gearman-Command"]), (200, "JOB_CREATED"))
        code, _, body = call(base + "/api/functions")
        self.assertEqual((code, [f["name"] for f in json.loads(body)]), (200, ["f"]))
        self.assertEqual(refused(base)["token"], 2)

    def test_tokenForPolicyAndDeadLetters(self) -> None:
        """
        With C{--http-token-file}, changing or resetting a function's
        policy and listing its dead letters (which hold jobs' data) need
        the token: 401 without it, and nothing changes; its policy stays
        an open read.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("s3cret\n")
        server, base = self.startServer("--http-token-file", path)
        policy = base + "/api/functions/f/policy"
        change = json.dumps({"max-running": 2}).encode()
        for method, url, body in (
            ("PATCH", policy, change),
            ("DELETE", policy, None),
            ("GET", base + "/api/functions/f/deadletters", None),
        ):
            code, headers, answer = call(url, method, body)
            self.assertEqual(code, 401, (method, url))
            self.assertTrue(headers["WWW-Authenticate"].startswith("Bearer"))
            self.assertIn("Authorization: Bearer", json.loads(answer)["error"])
        code, _, answer = call(policy)
        self.assertEqual((code, json.loads(answer)["changed"]), (200, {}))
        admin = server.connect()
        self.addCleanup(admin.close)
        self.assertIn(b"max-running 0\n", admin.admin(b"policy f\n"))
        token = {"Authorization": "Bearer s3cret"}
        code, _, answer = call(policy, "PATCH", change, token)
        self.assertEqual((code, json.loads(answer)["changed"]), (200, {"max-running": 2}))
        self.assertIn(b"max-running 2\n", admin.admin(b"policy f\n"))
        code, _, answer = call(base + "/api/functions/f/deadletters", headers=token)
        self.assertEqual((code, json.loads(answer)), (200, []))
        code, _, answer = call(policy, "DELETE", headers=token)
        self.assertEqual((code, json.loads(answer)["reset"]), (200, True))
        self.assertEqual(refused(base)["token"], 3)

    def test_tokenForResults(self) -> None:
        """
        With C{--http-token-file}, a job's result (which holds its data)
        needs the token, by handle or unique key, known or not: 401
        without it; its status stays an open read.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("s3cret\n")
        server, base = self.startServer("--http-token-file", path)
        token = {"Authorization": "Bearer s3cret"}
        code, headers, _ = call(
            base + "/f", "POST", b"x", dict(token, **{"X-Gearman-Background": "true", "X-Gearman-Unique": "u"})
        )
        handle = headers["X-Gearman-Job-Handle"]
        paths = ["/api/results/" + handle, "/api/results/H:nothing:1", "/api/unique/u/result", "/api/unique/v/result"]
        for path in paths:
            code, headers, answer = call(base + path)
            self.assertEqual(code, 401, path)
            self.assertTrue(headers["WWW-Authenticate"].startswith("Bearer"))
            self.assertIn("Authorization: Bearer", json.loads(answer)["error"])
        self.assertEqual([call(base + path, headers=token)[0] for path in paths], [200, 404, 200, 404])
        code, _, answer = call(base + "/api/results/" + handle, headers=token)
        self.assertEqual(json.loads(answer)["outcome"], "queued")
        code, _, answer = call(base + "/api/jobs/" + handle)
        self.assertEqual((code, json.loads(answer)["known"]), (200, True))
        self.assertEqual(refused(base)["token"], 4)

    def test_accessPolicyForResults(self) -> None:
        """
        With C{--access-policy}, a job's result needs admin on its
        function; a request without it gets the same 403 for a job of
        another function as for an unknown job, naming neither.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(RESULT_ACL)
        server, base = self.startServer("--access-policy", path)
        ops = {"Authorization": "Bearer ops-token"}
        root = {"Authorization": "Bearer root-token"}
        handles = {}
        for function in ("billing", "report.daily"):
            code, headers, _ = call(base + "/" + function, "POST", b"x", dict(ops, **{"X-Gearman-Background": "true"}))
            self.assertEqual(code, 200)
            handles[function] = headers["X-Gearman-Job-Handle"]
        hidden = [call(base + "/api/results/" + h, headers=ops) for h in (handles["billing"], "H:nothing:1")]
        self.assertEqual([code for code, _, _ in hidden], [403, 403])
        self.assertEqual(hidden[0][2], hidden[1][2])
        self.assertNotIn(b"billing", hidden[0][2])
        code, _, answer = call(base + "/api/results/" + handles["report.daily"], headers=ops)
        self.assertEqual((code, json.loads(answer)["function"]), (200, "report.daily"))
        code, _, answer = call(base + "/api/results/" + handles["billing"], headers=root)
        self.assertEqual((code, json.loads(answer)["outcome"]), (200, "queued"))
        self.assertEqual(call(base + "/api/results/H:nothing:1", headers=root)[0], 404)

    def test_tokenFileMissing(self) -> None:
        """
        A token file that cannot be read stops the server at start-up with
        a one-line reason.
        """
        missing = self.mktemp()
        result = subprocess.run(
            twistdArgv("gearman", "--port", "0", "--http-port", "0", "--http-token-file", missing),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=REPO),
            timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        [line] = [line for line in result.stdout.decode().splitlines() if "--http-token-file:" in line]
        self.assertIn("cannot read %s: No such file or directory" % (missing,), line)
