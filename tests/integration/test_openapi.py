"""
The JSON API against its OpenAPI description, gearman_tw/server/openapi.json
(served at /api/openapi.json): every documented operation is exercised,
every answer's status is documented and its body matches the schema, the
live index lists exactly the documented operations, and setup.py installs
the document with the package.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.resources import files

import jsonschema
import referencing
import referencing.jsonschema
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool

from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.http import AccessPolicy
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.lifecycle import Policies
from gearman_tw.server.web import makeSite
from gearman_tw.worker import GearmanWorker
from tests.integration.servers import REPO

#: The document as the package ships it.
DOCUMENT = (files("gearman_tw.server") / "openapi.json").read_bytes()
SPEC = json.loads(DOCUMENT)

#: The largest request body the site under test accepts.
MAX_BODY = 1024


def operations():
    """
    Every operation of the document, as C{(METHOD, path)}.
    """
    return {
        (method.upper(), path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method != "parameters"
    }


class OpenAPITests(TestCase):
    """
    The live API answers as its OpenAPI document says.
    """

    timeout = 60

    @inlineCallbacks
    def setUp(self):
        self.server = JobServer(reactor, handlePrefix=b"T")
        self.addCleanup(self.stopTimers)
        gear = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(GearmanServerFactory(self.server))
        self.addCleanup(gear.stopListening)
        http = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            makeSite(
                self.server, reactor, noWorkerTimeout=0.3, maxBody=MAX_BODY, policy=AccessPolicy(token=b"t0ken")
            )
        )
        self.addCleanup(http.stopListening)
        self.base = "http://127.0.0.1:%d" % (http.getHost().port,)
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.http = HTTPClient(Agent(reactor, pool=pool))
        self.addCleanup(self.settle)
        self.addCleanup(pool.closeCachedConnections)
        worker = GearmanWorker(["127.0.0.1:%d" % gear.getHost().port])
        worker.register("echo", lambda job: job.data)
        worker.register("fail", lambda job: job.fail())

        def explode(job):
            raise RuntimeError("no")

        worker.register("explode", explode)
        worker.startService()
        self.addCleanup(worker.stopService)
        for _ in range(500):
            if all(
                self.server.functions.get(n) and self.server.functions[n].workers
                for n in (b"echo", b"fail", b"explode")
            ):
                break
            yield self.sleep(0.02)
        self.covered = set()

    def stopTimers(self):
        """
        Cancel the job server's timers (the expiry of stored results).
        """
        self.server.stopTimers()

    def sleep(self, seconds):
        d = Deferred()
        reactor.callLater(seconds, d.callback, None)
        return d

    def settle(self):
        return self.sleep(0.05)

    @inlineCallbacks
    def call(self, method, path, template, body=None, headers=None):
        """
        Make a request and check the answer against the spec's entry for
        C{template}: a documented status, a documented media type, a body
        its schema accepts; return the decoded body.

        @param headers: the request's headers; by default the token.
        """
        data = json.dumps(body).encode() if body is not None else None
        if headers is None:
            headers = {"Authorization": "Bearer t0ken"}
        response = yield self.http.request(method, self.base + path, data=data, headers=headers)
        content = yield response.content()
        operation = SPEC["paths"][template][method.lower()]
        responses = operation["responses"]
        self.assertIn(str(response.code), responses, "%s %s answered %d, undocumented" % (method, path, response.code))
        [media] = response.headers.getRawHeaders("Content-Type")
        media = media.split(";")[0]
        documented = responses[str(response.code)]["content"]
        self.assertIn(media, documented, "%s %s answered %d as %s, undocumented" % (method, path, response.code, media))
        value = json.loads(content) if media == "application/json" else content.decode("utf-8")
        self.assertNotEqual(value, {"error": "no such API path"}, "%s %s has no route" % (method, path))
        schema = dict(documented[media]["schema"])
        schema["components"] = SPEC["components"]
        jsonschema.validate(value, schema)
        if "requestBody" in operation and body is not None:
            request = dict(operation["requestBody"]["content"]["application/json"]["schema"])
            request["components"] = SPEC["components"]
            if response.code != 400:
                jsonschema.validate(body, request)
        self.covered.add((template, method.lower(), str(response.code)))
        return value

    @inlineCallbacks
    def test_everyOperation(self):
        """
        Every documented operation and response code, exercised.
        """
        index = yield self.call("GET", "/api/", "/api/")
        yield self.call("GET", index["openapi"], "/api/openapi.json")
        yield self.call("GET", "/api/server", "/api/server")
        done = yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "echo", "data": "hi"})
        self.assertEqual(done["result"]["text"], "hi")
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "echo", "data_base64": "/w=="})
        failed = yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "fail"})
        self.assertEqual(failed["state"], "failed")
        raised = yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "explode"})
        self.assertEqual((raised["state"], raised["exception"]["text"]), ("exception", "no"))
        queued = yield self.call(
            "POST",
            "/api/jobs",
            "/api/jobs",
            {"function": "later", "unique": "u", "priority": "low", "background": True},
        )
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": ""})
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "x", "unique": "u" * 65})
        tooLong = yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "x", "unique": "\u00e9" * 33})
        self.assertEqual(tooLong["field"], "unique")
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "echo", "data": "x" * MAX_BODY})
        self.server.setMaxQueue(b"later", (1, 1, 1))
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "later", "background": True})
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "nobody"})
        yield self.call("GET", "/api/functions", "/api/functions")
        yield self.call("GET", "/api/workers", "/api/workers")
        yield self.call("GET", "/api/jobs/" + queued["handle"], "/api/jobs/{handle}")
        yield self.call("GET", "/api/unique/u", "/api/unique/{unique}")
        yield self.call("DELETE", "/api/jobs/" + queued["handle"], "/api/jobs/{handle}")
        yield self.call("DELETE", "/api/jobs/T:999", "/api/jobs/{handle}")
        # Dead letters: a background job that fails is kept.
        self.server.setPolicies(Policies.fromText("[functions.fail]\ndead-letters = 5\n"))
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "fail", "background": True})
        for _ in range(500):
            if self.server.deadLetters.of(b"fail"):
                break
            yield self.sleep(0.02)
        counts = yield self.call("GET", "/api/deadletters", "/api/deadletters")
        self.assertEqual(counts, [{"function": "fail", "kept": 1, "dropped": 0}])
        letters = "/api/functions/{name}/deadletters"
        [letter] = yield self.call("GET", "/api/functions/fail/deadletters", letters)
        self.assertEqual(letter["error"]["text"], "WORK_FAIL")
        yield self.call("GET", "/api/functions/fail/deadletters", letters, headers={})
        [cut] = yield self.call("GET", "/api/functions/fail/deadletters?limit=1&data=0", letters)
        self.assertEqual((cut["data"]["base64"], cut["truncated"]), ("", False))
        bad = yield self.call("GET", "/api/functions/fail/deadletters?limit=all", letters)
        self.assertEqual(bad["field"], "limit")
        retry = letters + "/retry"
        retried = yield self.call("POST", "/api/functions/fail/deadletters/retry", retry, {"ids": [letter["id"]]})
        self.assertEqual(retried["retried"], 1)
        yield self.call("POST", "/api/functions/fail/deadletters/retry", retry, {"ids": "all"})
        yield self.call("POST", "/api/functions/fail/deadletters/retry", retry, headers={})
        yield self.call(
            "POST", "/api/functions/fail/deadletters/retry", retry, headers={"Origin": "http://evil.example"}
        )
        yield self.call("POST", "/api/functions/fail/deadletters/retry", retry, {"ids": [1] * MAX_BODY})
        purge = letters + "/purge"
        yield self.call("POST", "/api/functions/fail/deadletters/purge", purge)
        yield self.call("POST", "/api/functions/fail/deadletters/purge", purge, [])
        yield self.call("POST", "/api/functions/fail/deadletters/purge", purge, headers={})
        yield self.call(
            "POST", "/api/functions/fail/deadletters/purge", purge, headers={"Sec-Fetch-Site": "cross-site"}
        )
        yield self.call("POST", "/api/functions/fail/deadletters/purge", purge, {"ids": [1] * MAX_BODY})
        policyPath = "/api/functions/{name}/policy"
        policy = yield self.call("GET", "/api/functions/fail/policy", policyPath)
        self.assertEqual((policy["dead-letters"], policy["changed"]), (5, {}))
        changed = yield self.call(
            "PATCH", "/api/functions/fail/policy", policyPath, {"dead-letters": 7, "backoff": {"base": 0.5}}
        )
        self.assertEqual(changed["changed"], {"dead-letters": 7, "backoff": {"base": 0.5}})
        changed = yield self.call("PATCH", "/api/functions/fail/policy", policyPath, {"backoff": None})
        self.assertEqual((changed["dead-letters"], changed["changed"]), (7, {"dead-letters": 7}))
        bad = yield self.call("PATCH", "/api/functions/fail/policy", policyPath, {"max-rate": -1})
        self.assertEqual(bad["field"], "max-rate")
        yield self.call("PATCH", "/api/functions/fail/policy", policyPath, {"max-running": 1}, headers={})
        yield self.call(
            "PATCH", "/api/functions/fail/policy", policyPath, {"max-running": 1}, headers={"Origin": "null"}
        )
        yield self.call("PATCH", "/api/functions/fail/policy", policyPath, {"max-attempts": 10**MAX_BODY})
        yield self.call("DELETE", "/api/functions/fail/policy", policyPath, headers={})
        yield self.call(
            "DELETE", "/api/functions/fail/policy", policyPath, headers={"Sec-Fetch-Site": "same-site"}
        )
        reset = yield self.call("DELETE", "/api/functions/fail/policy", policyPath)
        self.assertEqual((reset["reset"], reset["policy"]), (True, policy))
        self.assertEqual(self.server.policyChanges(b"fail"), {})
        # Stored results: a live job's state, a background job's result.
        self.server.setPolicies(Policies.fromText("[functions.echo]\nkeep-results = 60\n"))
        waiting = yield self.call(
            "POST", "/api/jobs", "/api/jobs", {"function": "idle", "unique": "w", "background": True}
        )
        results, uniqueResult = "/api/results/{handle}", "/api/unique/{unique}/result"
        live = yield self.call("GET", "/api/results/" + waiting["handle"], results)
        self.assertEqual(live["outcome"], "queued")
        ended = yield self.call(
            "POST", "/api/jobs", "/api/jobs", {"function": "echo", "unique": "r", "data": "kept", "background": True}
        )
        for _ in range(500):
            if self.server.resultOf(ended["handle"].encode()) is not None:
                break
            yield self.sleep(0.02)
        kept = yield self.call("GET", "/api/results/" + ended["handle"], results)
        self.assertEqual((kept["outcome"], kept["data"]["text"]), ("complete", "kept"))
        byUnique = yield self.call("GET", "/api/unique/r/result", uniqueResult)
        self.assertEqual(byUnique, kept)
        yield self.call("GET", "/api/unique/w/result", uniqueResult)
        yield self.call("GET", "/api/results/T:999", results)
        yield self.call("GET", "/api/unique/nothing/result", uniqueResult)
        yield self.call("GET", "/api/results/" + ended["handle"], results, headers={})
        yield self.call("GET", "/api/unique/r/result", uniqueResult, headers={})
        yield self.unstored(policyPath, retry, purge)
        # Refusals: no token, another origin, a name not this server's.
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "echo"}, headers={})
        yield self.call("DELETE", "/api/jobs/" + queued["handle"], "/api/jobs/{handle}", headers={})
        yield self.call(
            "POST", "/api/jobs", "/api/jobs", {"function": "echo"}, headers={"Origin": "http://evil.example"}
        )
        yield self.call(
            "DELETE", "/api/jobs/" + queued["handle"], "/api/jobs/{handle}", headers={"Sec-Fetch-Site": "cross-site"}
        )
        foreign = {"Host": "evil.example"}
        for path, template in (
            ("/api/", "/api/"),
            ("/api/openapi.json", "/api/openapi.json"),
            ("/api/server", "/api/server"),
            ("/api/functions", "/api/functions"),
            ("/api/workers", "/api/workers"),
            ("/api/jobs/T:1", "/api/jobs/{handle}"),
            ("/api/unique/u", "/api/unique/{unique}"),
            ("/api/results/T:1", "/api/results/{handle}"),
            ("/api/unique/u/result", "/api/unique/{unique}/result"),
            ("/api/deadletters", "/api/deadletters"),
            ("/api/functions/fail/deadletters", "/api/functions/{name}/deadletters"),
            ("/api/functions/fail/policy", "/api/functions/{name}/policy"),
        ):
            yield self.call("GET", path, template, headers=foreign)
        self.flushLoggedErrors(RuntimeError)
        documented = {
            (path, method, code)
            for path, operations in SPEC["paths"].items()
            for method, operation in operations.items()
            if method != "parameters"
            for code in operation["responses"]
        }
        self.assertEqual(documented - self.covered, set())

    @inlineCallbacks
    def unstored(self, policyPath, retry, purge):
        """
        The answers of a server whose persistent queue cannot store what
        the lifecycle keeps: 503, saying why.
        """
        from gearman_tw.errors import QueueError
        from tests.test_server_lifecycle_store import letter
        from tests.test_server_persistence import FakeQueue

        class Full(FakeQueue):
            def addMany(self, jobs):
                return succeed(None)

            def keep(self, kind, records, done, dropped):
                return fail(QueueError("disk full"))

        server = JobServer(reactor, handlePrefix=b"T", queue=Full())
        server.restoreDeadLetters([(b"1", letter(1).encode()), (b"2", letter(2).encode())])
        http = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            makeSite(server, reactor, maxBody=MAX_BODY, policy=AccessPolicy(token=b"t0ken"))
        )
        self.addCleanup(http.stopListening)
        base, self.base = self.base, "http://127.0.0.1:%d" % (http.getHost().port,)
        try:
            answer = yield self.call("PATCH", "/api/functions/f/policy", policyPath, {"max-running": 1})
            self.assertIn("disk full", answer["error"])
            yield self.call("DELETE", "/api/functions/f/policy", policyPath)
            retried = yield self.call("POST", "/api/functions/f/deadletters/retry", retry, {"ids": [2]})
            self.assertIn("1 retried", retried["error"])
            yield self.call("POST", "/api/functions/f/deadletters/purge", purge)
        finally:
            self.base = base

    @inlineCallbacks
    def test_indexIsTheDocument(self):
        """
        The live index lists exactly the document's operations, and the
        live document is the shipped one.
        """
        index = yield (yield self.http.get(self.base + "/api/")).json()
        self.assertEqual({(r["method"], r["path"]) for r in index["routes"]}, operations())
        response = yield self.http.get(self.base + index["openapi"])
        self.assertEqual(response.headers.getRawHeaders("Content-Type"), ["application/json"])
        self.assertEqual((yield response.content()), DOCUMENT)


class DocumentTests(SynchronousTestCase):
    """
    The document is sound OpenAPI 3.1 as far as JSON Schema can tell, and
    installed with the package.
    """

    def test_schemas(self) -> None:
        """
        Every schema is valid JSON Schema 2020-12 (OpenAPI 3.1's dialect)
        and every C{$ref} in the document resolves.
        """
        self.assertEqual(SPEC["openapi"][:4], "3.1.")
        registry = referencing.Registry().with_resource(
            "", referencing.Resource.from_contents(SPEC, default_specification=referencing.jsonschema.DRAFT202012)
        )
        resolver = registry.resolver()
        refs = []

        def walk(value):
            if isinstance(value, dict):
                if isinstance(value.get("$ref"), str):
                    refs.append(value["$ref"])
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(SPEC)
        self.assertTrue(refs)
        for ref in refs:
            resolver.lookup(ref)
        for schema in SPEC["components"]["schemas"].values():
            jsonschema.Draft202012Validator.check_schema(schema)
        for path, item in SPEC["paths"].items():
            for method, operation in item.items():
                if method == "parameters":
                    continue
                self.assertIn("summary", operation, (method, path))
                for response in operation["responses"].values():
                    for content in response.get("content", {}).values():
                        jsonschema.Draft202012Validator.check_schema(content["schema"])

    def test_installed(self) -> None:
        """
        setup.py puts the document in the installed package, byte for
        byte.
        """
        output = tempfile.mkdtemp(prefix="gearman_tw-build-")
        self.addCleanup(shutil.rmtree, output, True)
        result = subprocess.run(
            [sys.executable, "setup.py", "-q", "build_py", "--build-lib", output],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stdout)
        installed = os.path.join(output, "gearman_tw", "server", "openapi.json")
        self.assertTrue(os.path.isfile(installed), "setup.py does not install gearman_tw/server/openapi.json")
        with open(installed, "rb") as f:
            self.assertEqual(f.read(), DOCUMENT)
