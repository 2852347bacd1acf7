"""
The JSON API against its OpenAPI description, docs/openapi.json: every
documented operation is exercised, every answer's status is documented and
its body matches the schema.
"""

import json
import os

import jsonschema
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool

from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.http import AccessPolicy
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.web import makeSite
from gearman_tw.worker import GearmanWorker
from tests.integration.servers import REPO

with open(os.path.join(REPO, "docs", "openapi.json")) as f:
    SPEC = json.load(f)


class OpenAPITests(TestCase):
    """
    The live API answers as docs/openapi.json says.
    """

    timeout = 60

    @inlineCallbacks
    def setUp(self):
        self.server = JobServer(reactor, handlePrefix=b"T")
        gear = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(GearmanServerFactory(self.server))
        self.addCleanup(gear.stopListening)
        http = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            makeSite(self.server, reactor, noWorkerTimeout=0.3, policy=AccessPolicy(token=b"t0ken"))
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
            if all(self.server.functions.get(n) and self.server.functions[n].workers for n in (b"echo", b"fail", b"explode")):
                break
            yield self.sleep(0.02)
        self.covered = set()

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
        C{template}; return the decoded body.

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
        self.assertEqual(response.headers.getRawHeaders("Content-Type"), ["application/json"])
        value = json.loads(content)
        schema = dict(responses[str(response.code)]["content"]["application/json"]["schema"])
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
        yield self.call("GET", "/api/server", "/api/server")
        done = yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "echo", "data": "hi"})
        self.assertEqual(done["result"]["text"], "hi")
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "echo", "data_base64": "/w=="})
        failed = yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "fail"})
        self.assertEqual(failed["state"], "failed")
        raised = yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "explode"})
        self.assertEqual((raised["state"], raised["exception"]["text"]), ("exception", "no"))
        queued = yield self.call(
            "POST", "/api/jobs", "/api/jobs", {"function": "later", "unique": "u", "priority": "low", "background": True}
        )
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": ""})
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "x", "unique": "u" * 65})
        self.server.setMaxQueue(b"later", (1, 1, 1))
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "later", "background": True})
        yield self.call("POST", "/api/jobs", "/api/jobs", {"function": "nobody"})
        yield self.call("GET", "/api/functions", "/api/functions")
        yield self.call("GET", "/api/workers", "/api/workers")
        yield self.call("GET", "/api/jobs/" + queued["handle"], "/api/jobs/{handle}")
        yield self.call("GET", "/api/unique/u", "/api/unique/{unique}")
        yield self.call("DELETE", "/api/jobs/" + queued["handle"], "/api/jobs/{handle}")
        yield self.call("DELETE", "/api/jobs/T:999", "/api/jobs/{handle}")
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
            ("/api/server", "/api/server"),
            ("/api/functions", "/api/functions"),
            ("/api/workers", "/api/workers"),
            ("/api/jobs/T:1", "/api/jobs/{handle}"),
            ("/api/unique/u", "/api/unique/{unique}"),
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
