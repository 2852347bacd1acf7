"""
Tests for L{gearman_tw.server.http} and L{gearman_tw.server.web}: the
request body limit, enforced while the request arrives, the JSON API's
answers to malformed input, its dead letter and policy routes, and who may
use the site (the Host, Origin and token checks, the access policy, and
GETs that never run jobs), through a real L{Site} over a
L{StringTransport}.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from importlib.resources import files
from typing import Any, Dict, List, Optional, Tuple, Type, cast
from unittest import mock

import jsonschema
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Request, Site

from gearman_tw import tap
from gearman_tw.protocol import PacketType as P
from gearman_tw.server.admin import AdminCommands
from gearman_tw.server.http import API_ROUTES, DEFAULT_MAX_BODY, POLICY_KEYS, AccessPolicy
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.lifecycle import Policies, PoliciesError
from gearman_tw.server.model import HIGH, LOW, NORMAL
from gearman_tw.server.packets import PacketPeer
from gearman_tw.server.web import makeResource, makeSite
from tests.test_server_jobs import Conn

#: The OpenAPI document, read as the package ships it.
DOCUMENT = (files("gearman_tw.server") / "openapi.json").read_bytes()
SPEC = json.loads(DOCUMENT)

_ADDRESS = IPv4Address("TCP", "127.0.0.1", 12345)


class Response:
    """
    One parsed HTTP/1.1 response.
    """

    def __init__(self, code: int, headers: Dict[bytes, bytes], body: bytes) -> None:
        self.code = code
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def parseResponses(data: bytes) -> List[Response]:
    """
    Every complete response in C{data} (Content-Length or chunked bodies).
    """
    responses = []
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        if not separator:
            break
        lines = head.split(b"\r\n")
        code = int(lines[0].split(b" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if code == 100:
            data = rest
            continue
        if headers.get(b"transfer-encoding") == b"chunked":
            body = b""
            while True:
                size, _, rest = rest.partition(b"\r\n")
                length = int(size, 16)
                body += rest[:length]
                rest = rest[length + 2 :]
                if length == 0:
                    break
        else:
            length = int(headers.get(b"content-length", b"0"))
            body, rest = rest[:length], rest[length:]
        responses.append(Response(code, headers, body))
        data = rest
    return responses


class SiteHarness:
    """
    A job server behind L{makeSite} on a L{Clock}, and connections to it
    over L{StringTransport}; every request the site builds is kept.
    """

    def __init__(self, local: Any = None, queue: Any = None, **kwargs: Any) -> None:
        """
        @param local: the server's end of every connection (by default
            10.0.0.1, not loopback, so the Host header is not checked).
        @param queue: the job server's persistent queue, if any.
        """
        self.local = local
        self.clock = Clock()
        self.server = JobServer(self.clock, handlePrefix=b"T", queue=queue)
        self.site = makeSite(self.server, self.clock, noWorkerTimeout=5, **kwargs)
        self.requests: List[Any] = []
        factory = self.site.requestFactory

        def keep(*args: Any, **kw: Any) -> Any:
            request = factory(*args, **kw)
            self.requests.append(request)
            return request

        # Site takes any callable of the channel as its request factory
        # (see its docstring), though its attribute is typed as the class.
        self.site.requestFactory = cast(Type[Request], keep)

    def connect(self) -> Tuple[Any, StringTransport]:
        channel = self.site.buildProtocol(_ADDRESS)
        transport = StringTransport(hostAddress=self.local, peerAddress=_ADDRESS)
        channel.makeConnection(transport)
        return channel, transport

    def send(self, data: bytes) -> Tuple[List[Response], StringTransport]:
        """
        Send C{data} on a new connection; the responses that came back.
        """
        channel, transport = self.connect()
        channel.dataReceived(data)
        self.clock.advance(0)
        return parseResponses(transport.value()), transport


def post(path: bytes, body: bytes, *headers: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s" % (
        path,
        b"".join(h + b"\r\n" for h in headers),
        len(body),
        body,
    )


def chunked(path: bytes, *headers: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n\r\n" % (
        path,
        b"".join(h + b"\r\n" for h in headers),
    )


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class BodyLimitTests(SynchronousTestCase):
    """
    Bodies over the site's limit are refused with 413 as they arrive: by
    Content-Length before any body is read, and a chunked body as soon as
    it passes the limit; nothing past the limit is kept.
    """

    def setUp(self) -> None:
        self.harness = SiteHarness(maxBody=1000)

    def assertRefused(self, responses: List[Response], transport: StringTransport) -> None:
        self.assertEqual([r.code for r in responses], [413])
        self.assertIn(b"limit of 1000 bytes", responses[0].body)
        self.assertEqual(responses[0].headers[b"connection"], b"close")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.harness.server.jobCount(), 0)
        self.assertEqual(self.harness.server.functions, {})

    def test_contentLengthRefusedAtHeaders(self) -> None:
        """
        A Content-Length of 10 GB is answered with 413 as soon as the
        headers end, before any of the body, and the connection closes.
        """
        headers = b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (10 * 2**30,)
        responses, transport = self.harness.send(headers)
        self.assertRefused(responses, transport)
        self.assertIn(b"10737418240 bytes", responses[0].body)

    def test_contentLengthBodyNotKept(self) -> None:
        """
        Body bytes of a refused request that arrive anyway are dropped, and
        the request never reaches a resource, even when all of it came.
        """
        channel, transport = self.harness.connect()
        channel.dataReceived(b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
        for _ in range(10):
            channel.dataReceived(b"x" * 100)
        channel.dataReceived(b"x")
        self.harness.clock.advance(0)
        self.assertRefused(parseResponses(transport.value()), transport)
        request = self.harness.requests[-1]
        self.assertEqual(request.content.tell(), 0)
        self.assertEqual(request.bodyLength, 0)

    def test_everyRoute(self) -> None:
        """
        The one limit holds for gearmand's C{POST /FUNCTION}, for
        C{POST /api/jobs}, and for any other path and method.
        """
        big = b"Content-Length: 1001\r\n\r\n"
        for start in (
            b"POST /f HTTP/1.1\r\n",
            b"POST /api/jobs HTTP/1.1\r\n",
            b"PUT /api/server HTTP/1.1\r\n",
            b"GET /metrics HTTP/1.1\r\n",
            b"DELETE /api/jobs/T:1 HTTP/1.1\r\n",
            b"PATCH /api/functions/f/policy HTTP/1.1\r\n",
            b"GET / HTTP/1.0\r\n",
        ):
            responses, transport = self.harness.send(start + b"Host: x\r\n" + big)
            self.assertRefused(responses, transport)

    def test_expectContinue(self) -> None:
        """
        A client that asks C{Expect: 100-continue} gets the 413 instead of
        an invitation to send its body.
        """
        responses, transport = self.harness.send(
            b"POST /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n"
        )
        self.assertNotIn(b"100 Continue", transport.value())
        self.assertRefused(responses, transport)

    def test_chunkedStoppedPastLimit(self) -> None:
        """
        A chunked body is refused as soon as it passes the limit; the
        request holds at most the limit, however much more arrives, and is
        never processed.
        """
        channel, transport = self.harness.connect()
        channel.dataReceived(chunked(b"/api/jobs"))
        request = self.harness.requests[-1]
        for _ in range(3):
            channel.dataReceived(chunk(b"x" * 300))
        self.assertEqual(transport.value(), b"")
        self.assertEqual(request.content.tell(), 900)
        channel.dataReceived(chunk(b"x" * 300))
        self.assertRefused(parseResponses(transport.value()), transport)
        for _ in range(100):
            channel.dataReceived(chunk(b"x" * 300))
            self.assertLessEqual(request.content.tell(), 1000)
        channel.dataReceived(b"0\r\n\r\n")
        self.harness.clock.advance(0)
        self.assertRefused(parseResponses(transport.value()), transport)
        channel.connectionLost(Failure(ConnectionError()))

    def test_chunkedOneSegment(self) -> None:
        """
        A whole chunked body over the limit in one segment, with a
        pipelined request after it, gets one 413 and nothing else.
        """
        data = chunked(b"/f") + chunk(b"x" * 700) + chunk(b"x" * 700) + b"0\r\n\r\n"
        data += b"GET /api/server HTTP/1.1\r\nHost: x\r\n\r\n"
        responses, transport = self.harness.send(data)
        self.assertRefused(responses, transport)

    def test_withinLimit(self) -> None:
        """
        Bodies of exactly the limit, by Content-Length or chunked, are
        served as before.
        """
        responses, _ = self.harness.send(post(b"/f", b"a" * 1000, b"X-Gearman-Background: true"))
        self.assertEqual([r.code for r in responses], [200])
        body = b"b" * 400 + b"c" * 600
        responses, _ = self.harness.send(
            chunked(b"/g", b"X-Gearman-Background: true")
            + chunk(body[:400])
            + chunk(body[400:])
            + b"0\r\n\r\n"
        )
        self.assertEqual([r.code for r in responses], [200])
        server = self.harness.server
        jobs = [server.lookup(b"T:%d" % n) for n in (1, 2)]
        self.assertEqual([job.data for job in jobs if job is not None], [b"a" * 1000, body])
        spec = json.dumps({"function": "h", "data": "d" * 900, "background": True}).encode()
        self.assertLess(len(spec), 1000)
        responses, _ = self.harness.send(post(b"/api/jobs", spec))
        self.assertEqual([r.code for r in responses], [202])

    def test_default(self) -> None:
        """
        Without C{maxBody} the limit is L{DEFAULT_MAX_BODY}.
        """
        harness = SiteHarness()
        responses, transport = harness.send(
            b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (DEFAULT_MAX_BODY + 1,)
        )
        self.assertEqual([r.code for r in responses], [413])
        self.assertTrue(transport.disconnecting)
        channel, transport = harness.connect()
        channel.dataReceived(b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (DEFAULT_MAX_BODY,))
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)
        channel.connectionLost(Failure(ConnectionError()))

    def test_resourceAloneLimits(self) -> None:
        """
        The resource tree served by a plain L{Site} still refuses bodies
        over its limit on every route, reading no more than the limit.
        """
        clock = Clock()
        server = JobServer(clock, handlePrefix=b"T")
        site = Site(makeResource(server, clock, maxBody=10), reactor=clock)
        for method, path in (
            (b"POST", b"/f"),
            (b"POST", b"/api/jobs"),
            (b"POST", b"/api/functions/f/deadletters/retry"),
            (b"POST", b"/api/functions/f/deadletters/purge"),
            (b"PATCH", b"/api/functions/f/policy"),
        ):
            channel = site.buildProtocol(_ADDRESS)
            transport = StringTransport(peerAddress=_ADDRESS)
            channel.makeConnection(transport)
            channel.dataReceived(request(method, path, b"Host: x", body=b'{"max-running": 1, "max-rate": 2}'))
            [response] = parseResponses(transport.value())
            self.assertEqual(response.code, 413, path)
            if path.startswith(b"/api/"):
                self.assertEqual(response.json(), {"error": "the body is larger than the limit of 10 bytes"})
        self.assertEqual(server.jobCount(), 0)
        self.assertEqual(server.policyChanges(b"f"), {})


class MaxBodyOptionTests(SynchronousTestCase):
    """
    C{twistd gearman --http-max-body}.
    """

    def parse(self, *argv: str) -> tap.Options:
        options = tap.Options()
        options.parseOptions(list(argv))
        return options

    def test_default(self) -> None:
        """
        The default is L{DEFAULT_MAX_BODY}; negative sizes are refused.
        """
        self.assertEqual(self.parse()["http-max-body"], DEFAULT_MAX_BODY)
        self.assertEqual(self.parse("--http-max-body", "0")["http-max-body"], 0)
        self.assertRaises(tap.usage.UsageError, self.parse, "--http-max-body", "-1")

    def test_site(self) -> None:
        """
        The HTTP site built by L{tap.makeService} refuses bodies over
        C{--http-max-body} on every route.
        """
        options = self.parse("-L", "127.0.0.1", "--http-port", "8080", "--http-max-body", "100")
        top = tap.makeService(options, MemoryReactorClock())
        [site] = {
            service.factory
            for service in _services(top)
            if isinstance(getattr(service, "factory", None), Site)
        }
        self.assertEqual(site.resource.maxBody, 100)
        for path in (b"/f", b"/api/jobs"):
            channel = site.buildProtocol(_ADDRESS)
            transport = StringTransport(peerAddress=_ADDRESS)
            channel.makeConnection(transport)
            channel.dataReceived(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n" % (path,))
            self.assertEqual([r.code for r in parseResponses(transport.value())], [413])


def _services(top: Any) -> List[Any]:
    found = [top]
    for child in getattr(top, "services", []):
        found.extend(_services(child))
    return found


#: A value of every JSON type.
_VALUES: Dict[str, Any] = {
    "null": None,
    "boolean": True,
    "number": 1,
    "fraction": 1.5,
    "string": "s",
    "array": [1],
    "object": {"a": 1},
}

#: The JSON types each field of a submission takes.
_FIELD_TYPES = {
    "function": {"string"},
    "data": {"string"},
    "data_base64": {"string"},
    "unique": {"string"},
    "priority": {"string"},  # and only "high", "normal" or "low"
    "background": {"boolean"},
}


class JSONSubmitTests(SynchronousTestCase):
    """
    C{POST /api/jobs} answers every malformed body with 400 and a JSON
    error that names the field at fault; valid bodies work as before.
    """

    def setUp(self) -> None:
        self.harness = SiteHarness()
        schema = dict(SPEC["paths"]["/api/jobs"]["post"]["responses"]["400"]["content"]["application/json"]["schema"])
        schema["components"] = SPEC["components"]
        self.errorSchema = schema
        self.submitSchema = {"$ref": "#/components/schemas/Submit", "components": SPEC["components"]}

    def submit(self, body: bytes) -> Response:
        responses, _ = self.harness.send(post(b"/api/jobs", body))
        [response] = responses
        return response

    def assertBad(
        self, body: bytes, field: Optional[str] = None, words: str = "", schema: bool = True
    ) -> Dict[str, Any]:
        """
        C{body} gets a documented 400 naming C{field}, and submits nothing.

        @param schema: whether the documented C{Submit} schema refuses what
            Python's lenient json module makes of C{body} (JSON Schema
            cannot express encodings, duplicate keys or base64 validity).
        """
        if schema:
            try:
                value = json.loads(body)
            except (ValueError, RecursionError):
                pass
            else:
                self.assertRaises(jsonschema.ValidationError, jsonschema.validate, value, self.submitSchema)
        response = self.submit(body)
        self.assertEqual(response.code, 400, body[:200])
        self.assertEqual(response.headers[b"content-type"], b"application/json")
        error = response.json()
        jsonschema.validate(error, self.errorSchema)
        if field is not None:
            self.assertEqual(error.get("field"), field, error)
            self.assertIn(field, error["error"])
        else:
            self.assertNotIn("field", error)
        self.assertIn(words, error["error"])
        self.assertEqual(self.harness.server.jobCount(), 0)
        return error

    def spec(self, **fields: Any) -> bytes:
        value: Dict[str, Any] = {"function": "f", "background": True}
        value.update(fields)
        return json.dumps(value).encode()

    def test_wrongTypes(self) -> None:
        """
        Every field given a value of every JSON type it does not take gets
        400 naming the field and the type.
        """
        for field, types in _FIELD_TYPES.items():
            for name, value in _VALUES.items():
                kind = "number" if name == "fraction" else name
                if kind in types:
                    continue
                article = "" if kind == "null" else "an " if kind[0] in "aeiou" else "a "
                self.assertBad(self.spec(**{field: value}), field, "not " + article + kind)

    def test_badValues(self) -> None:
        """
        Strings of the right type but a wrong value: an empty function,
        unknown priorities, invalid base64, NUL in a name or key.
        """
        self.assertBad(self.spec(function=""), "function", "empty")
        self.assertBad(self.spec(priority="urgent"), "priority")
        self.assertBad(self.spec(priority="HIGH"), "priority")
        self.assertBad(self.spec(data_base64="abc"), "data_base64", "base64", schema=False)
        self.assertBad(self.spec(data_base64="é"), "data_base64", "base64", schema=False)
        self.assertBad(self.spec(data_base64="AA E="), "data_base64", "base64", schema=False)
        self.assertBad(self.spec(function="a\0b"), "function", "NUL")
        self.assertBad(self.spec(unique="a\0b"), "unique", "NUL")

    def test_uniqueBytes(self) -> None:
        """
        A unique key of more than 64 bytes in UTF-8 gets 400 naming
        C{unique}, although it may have no more than the 64 characters the
        schema allows; 64 bytes are accepted.
        """
        error = self.assertBad(self.spec(unique="\u00e9" * 33), "unique", "66 bytes", schema=False)
        self.assertIn("64", error["error"])
        self.assertBad(self.spec(unique="u" * 65), "unique", "65 bytes")
        response = self.submit(self.spec(unique="\u00e9" * 32))
        self.assertEqual(response.code, 202)

    def test_unknownField(self) -> None:
        """
        A field the API does not know (a typo, say) is refused, not ignored.
        """
        self.assertBad(self.spec(backgroud=True), "backgroud", "unknown")

    def test_deepNesting(self) -> None:
        """
        Arrays or objects nested 10,000 deep, at the top or in a field, get
        400, not a RecursionError.
        """
        deep = b"[" * 10000 + b"]" * 10000
        self.assertBad(deep, None, "deep")
        self.assertBad(b'{"function": "f", "data": ' + deep + b"}", None, "deep")
        self.assertBad(b'{"a":' * 10000 + b"1" + b"}" * 10000, None, "deep")

    def test_invalidUTF8(self) -> None:
        """
        A body that is not UTF-8 gets 400.
        """
        self.assertBad(b'{"function": "\xff\xfe"}', None, "UTF-8")
        self.assertBad(b'{"function": "f", "data": "\xed\xa0\x80"}', None, "UTF-8", schema=False)
        self.assertBad(b"\xff\xfe{\x00", None)

    def test_loneSurrogates(self) -> None:
        """
        A C{\\ud800} escape (a lone surrogate, which UTF-8 cannot encode) in
        any string field, or in a key, gets 400 naming the field.
        """
        for field in ("function", "data", "unique"):
            body = self.spec(**{field: "PLACEHOLDER"}).replace(b"PLACEHOLDER", b"\\ud800")
            self.assertBad(body, field, "surrogate", schema=False)
        self.assertBad(self.spec(priority="PLACEHOLDER").replace(b"PLACEHOLDER", b"\\udfff"), "priority")
        self.assertBad(
            self.spec(data_base64="PLACEHOLDER").replace(b"PLACEHOLDER", b"\\ud800"), "data_base64", schema=False
        )
        error = self.assertBad(b'{"function": "f", "\\ud800": 1}', "\\ud800", "unknown")
        error["error"].encode("utf-8")  # no lone surrogate in the answer

    def test_numbers(self) -> None:
        """
        Huge numbers, and the NaN and Infinity literals Python's json
        module accepts but JSON does not, get 400.
        """
        self.assertBad(b'{"function": "f", "background": 1' + b"0" * 5000 + b"}", None, "number")
        self.assertBad(self.spec(background=1e300 * 1e300), None, "Infinity")
        for literal in (b"NaN", b"Infinity", b"-Infinity"):
            self.assertBad(b'{"function": "f", "data": ' + literal + b"}", None, literal.decode().lstrip("-"))
        self.assertBad(self.spec(background=10**400), "background", "number")

    def test_duplicateKeys(self) -> None:
        """
        A key given twice gets 400 naming it, rather than the last one
        silently winning.
        """
        self.assertBad(
            b'{"function": "f", "function": "g", "background": true}', "function", "more than once", schema=False
        )

    def test_notAnObject(self) -> None:
        """
        A body that is valid JSON but not an object, an empty body, or not
        JSON at all, gets 400.
        """
        for body in (b"[]", b'"f"', b"1", b"null", b"true", b"", b"{not json", b'{"function": "f"'):
            self.assertBad(body, None)
        self.assertBad(b'{"data": "x"}', "function", "missing")

    def test_valid(self) -> None:
        """
        Valid submissions are queued exactly as before.
        """
        server = self.harness.server
        cases = [
            ({"function": "a", "data": "hé", "background": True}, (b"a", b"", "h\u00e9".encode(), NORMAL)),
            (
                {"function": "b", "data_base64": "AAE=", "data": "ignored", "background": True},
                (b"b", b"", b"\0\1", NORMAL),
            ),
            ({"function": "c", "unique": "u", "priority": "high", "background": True}, (b"c", b"u", b"", HIGH)),
            ({"function": "d", "priority": "low", "background": True}, (b"d", b"", b"", LOW)),
            ({"function": "e", "unique": "", "priority": "normal", "background": True}, (b"e", b"", b"", NORMAL)),
        ]
        for spec, (name, unique, data, priority) in cases:
            jsonschema.validate(spec, self.submitSchema)
            response = self.submit(json.dumps(spec).encode())
            self.assertEqual(response.code, 202)
            job = server.lookup(response.json()["handle"].encode())
            assert job is not None
            self.assertEqual((job.function.name, job.unique, job.data, job.priority), (name, unique, data, priority))
        channel, transport = self.harness.connect()
        channel.dataReceived(post(b"/api/jobs", b'{"function": "fg", "background": false}'))
        self.assertEqual(transport.value(), b"")
        self.assertEqual(server.functions[b"fg"].total, 1)
        self.harness.clock.advance(5)
        [response] = parseResponses(transport.value())
        self.assertEqual(response.code, 504)


class JSONStatusTests(SynchronousTestCase):
    """
    C{GET /api/jobs/HANDLE} and C{GET /api/unique/KEY} with handles and keys
    that hold NUL bytes (C{%00}) answer as for any unknown job.
    """

    def test_nulInPath(self) -> None:
        """
        Percent-encoded NULs in a handle or unique key are part of it, not
        field separators: 200, unknown, with the handle or key given.
        """
        harness = SiteHarness()
        [response], _ = harness.send(b"GET /api/jobs/%00%00%00abc HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(response.code, 200)
        self.assertEqual(
            response.json(),
            {"handle": "\0\0\0abc", "known": False, "running": False, "numerator": 0, "denominator": 0},
        )
        [response], _ = harness.send(b"GET /api/unique/%00%00%00%00abc HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.json()["unique"], "\0\0\0\0abc")
        self.assertFalse(response.json()["known"])


def operations() -> Dict[Tuple[str, str], Dict[str, Any]]:
    """
    Every operation of the OpenAPI document: {(METHOD, path): operation}.
    """
    return {
        (method.upper(), path): operation
        for path, item in SPEC["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


def schemaOf(response: Dict[str, Any], media: str = "application/json") -> Dict[str, Any]:
    """
    The schema of a documented response, resolvable on its own.
    """
    return dict(response["content"][media]["schema"], components=SPEC["components"])


#: Methods tried on every documented path.
_METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS")


class APIRoutesTests(SynchronousTestCase):
    """
    The JSON API's routes are the OpenAPI document's operations, no more
    and no fewer; C{GET /api/} lists them and C{GET /api/openapi.json}
    serves the document.
    """

    def get(self, path: bytes) -> Response:
        [response], _ = SiteHarness().send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % (path,))
        return response

    def test_routesAreDocumented(self) -> None:
        """
        L{API_ROUTES}, by which the API answers, names exactly the
        document's operations.
        """
        self.assertEqual({(r.method.decode(), r.path) for r in API_ROUTES}, set(operations()))

    def test_document(self) -> None:
        """
        C{GET /api/openapi.json} answers the document as the package ships
        it, as JSON.
        """
        response = self.get(b"/api/openapi.json")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers[b"content-type"], b"application/json")
        self.assertEqual(response.body, DOCUMENT)
        jsonschema.validate(response.json(), schemaOf(SPEC["paths"]["/api/openapi.json"]["get"]["responses"]["200"]))

    def test_index(self) -> None:
        """
        C{GET /api/} lists every operation with the document's summary, and
        links to the document.
        """
        response = self.get(b"/api/")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers[b"content-type"], b"application/json")
        index = response.json()
        jsonschema.validate(index, schemaOf(SPEC["paths"]["/api/"]["get"]["responses"]["200"]))
        self.assertEqual(self.get(index["openapi"].encode()).body, DOCUMENT)
        self.assertEqual(
            {(r["method"], r["path"]): r["summary"] for r in index["routes"]},
            {key: operation["summary"] for key, operation in operations().items()},
        )
        self.assertEqual(len(index["routes"]), len(operations()))

    def test_otherMethods(self) -> None:
        """
        Every method a documented path does not document is answered 404
        "no such API path", as any undocumented path is.
        """
        documented = operations()
        for path in SPEC["paths"]:
            concrete = path.replace("{handle}", "T:1").replace("{unique}", "u").replace("{name}", "f").encode()
            for method in _METHODS:
                if (method.decode(), path) in documented:
                    continue
                harness = SiteHarness()
                [response], _ = harness.send(request(method, concrete, b"Host: x"))
                self.assertEqual(response.code, 404, (method, path))
                if method != b"HEAD":
                    self.assertEqual(response.json(), {"error": "no such API path"}, (method, path))
                self.assertEqual(harness.server.functions, {})
        for path in (
            b"/api",
            b"/api/nothing",
            b"/api/server/",
            b"/api/jobs/T:1/more",
            b"/api/openapi.json/x",
            b"/api/functions/f",
            b"/api/functions/f/deadletters/",
            b"/api/functions/f/deadletters/1",
            b"/api/deadletters/f",
        ):
            response = self.get(path)
            self.assertEqual((response.code, response.json()), (404, {"error": "no such API path"}), path)


#: The server's end of a connection to a loopback-only site.
_LOOPBACK = IPv4Address("TCP", "127.0.0.1", 8080)


def request(method: bytes, path: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    """
    A request with exactly C{headers}: no Host header unless one is given.
    """
    return b"%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s" % (
        method,
        path,
        b"".join(h + b"\r\n" for h in headers),
        len(body),
        body,
    )


def metricSamples(body: bytes) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """
    {(sample name, sorted label items): value} from a C{/metrics} body.
    """
    found = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


class SecurityTestCase(SynchronousTestCase):
    """
    Helpers for the tests of who may do what on the site.
    """

    def answer(self, harness: SiteHarness, data: bytes) -> Response:
        """
        The one response to C{data}, sent on a new connection.
        """
        responses, _ = harness.send(data)
        self.assertEqual(len(responses), 1, responses)
        return responses[0]

    def assertRefused(self, response: Response, code: int, words: str) -> None:
        """
        C{response} is a C{code} refusal whose one-line reason holds
        C{words}: JSON C{{"error": ...}} under C{/api/}, else text.
        """
        self.assertEqual(response.code, code, response.body)
        if response.headers[b"content-type"] == b"application/json":
            reason = response.json()["error"]
            self.assertEqual(list(response.json()), ["error"])
        else:
            self.assertEqual(response.headers[b"content-type"], b"text/plain; charset=utf-8")
            self.assertTrue(response.body.endswith(b"\n"))
            reason = response.body[:-1].decode("utf-8")
        self.assertNotIn("\n", reason)
        self.assertIn(words, reason)
        self.assertEqual(response.headers[b"cache-control"], b"no-store")

    def assertNothingSubmitted(self, harness: SiteHarness) -> None:
        harness.clock.advance(0)
        self.assertEqual(harness.server.functions, {})
        self.assertEqual(harness.server.jobCount(), 0)
        self.assertEqual(len(harness.server.peers), 0)


class GetNeverRunsJobTests(SecurityTestCase):
    """
    Only POST and PUT submit jobs: a GET or HEAD of a path that is not one
    of the site's own (C{/favicon.ico}, C{/metrics} without
    C{prometheus_client}) answers at once and creates no job or function,
    where gearmand would run a job named after the path.
    """

    def test_getAndHead(self) -> None:
        """
        GET and HEAD of any function path answer 405 with C{Allow: POST,
        PUT}, and submit nothing.
        """
        harness = SiteHarness()
        for path in (b"/f", b"/favicon.ico", b"/robots.txt", b"/f?x=1", b"//f", b"/a/b"):
            for method in (b"GET", b"HEAD"):
                response = self.answer(harness, request(method, path, b"Host: x"))
                self.assertEqual(response.code, 405, (method, path))
                self.assertEqual(response.headers[b"allow"], b"POST, PUT")
                if method == b"GET":
                    self.assertIn(b"POST", response.body)
                    self.assertEqual(response.body.count(b"\n"), 1)
        self.assertNothingSubmitted(harness)

    def test_otherMethods(self) -> None:
        """
        Other methods on a function path are refused with the same
        C{Allow}; POST and PUT still submit.
        """
        harness = SiteHarness()
        response = self.answer(harness, request(b"DELETE", b"/f", b"Host: x"))
        self.assertEqual((response.code, response.headers[b"allow"]), (405, b"POST, PUT"))
        self.assertNothingSubmitted(harness)
        for method in (b"POST", b"PUT"):
            response = self.answer(
                harness,
                request(method, b"/f", b"Host: x", b"X-Gearman-Background: true", b"X-Gearman-Unique: " + method),
            )
            self.assertEqual(response.headers[b"x-gearman-command"], b"JOB_CREATED")
        self.assertEqual(harness.server.functions[b"f"].total, 2)

    def test_metricsWithoutPrometheus(self) -> None:
        """
        Without C{prometheus_client}, C{/metrics} answers 501 with a
        one-line reason naming C{pip install prometheus_client}, and is no
        job.
        """
        with mock.patch.dict(sys.modules, {"gearman_tw.server.metrics": None}):
            harness = SiteHarness()
        for method in (b"GET", b"HEAD"):
            response = self.answer(harness, request(method, b"/metrics", b"Host: x"))
            self.assertEqual(response.code, 501)
        response = self.answer(harness, request(b"GET", b"/metrics", b"Host: x"))
        self.assertIn(b"pip install prometheus_client", response.body)
        self.assertEqual(response.body.count(b"\n"), 1)
        self.assertNothingSubmitted(harness)


class HostTests(SecurityTestCase):
    """
    On a connection to a loopback address, a Host header that is neither an
    IP address, C{localhost}, nor an allowed name is refused with 403 on
    every route, reads included: a page whose name an attacker has made
    resolve to 127.0.0.1 (DNS rebinding) must not read the API.
    """

    def test_foreignNames(self) -> None:
        """
        Names other than C{localhost} are refused, on every route and
        method, and nothing is submitted.
        """
        harness = SiteHarness(local=_LOOPBACK)
        for host in (
            b"evil.example",
            b"evil.example:8080",
            b"rebind.localhost:8080",
            b"localhost.evil.example",
            b"127.0.0.1.nip.io:8080",
            b"x",
            b"127.0.0.1:8080@evil.example",
            b"[::1",
        ):
            for path in (b"/api/functions", b"/api/server", b"/", b"/metrics"):
                response = self.answer(harness, request(b"GET", path, b"Host: " + host))
                self.assertRefused(response, 403, "--http-allowed-host")
            response = self.answer(
                harness, request(b"POST", b"/f", b"Host: " + host, b"X-Gearman-Background: true", body=b"x")
            )
            self.assertRefused(response, 403, "Host")
        response = self.answer(harness, request(b"GET", b"/api/server", b"Host: evil.example"))
        self.assertEqual(response.headers[b"content-type"], b"application/json")
        self.assertNothingSubmitted(harness)

    def test_addressesAndLocalhost(self) -> None:
        """
        IP addresses, C{localhost} (any case, with a port or a final dot)
        and no Host header at all are served.
        """
        harness = SiteHarness(local=_LOOPBACK)
        for host in (
            b"127.0.0.1:8080",
            b"127.0.0.1",
            b"[::1]:8080",
            b"[::1]",
            b"localhost:8080",
            b"LocalHost",
            b"localhost.",
            b"10.1.2.3:80",
        ):
            response = self.answer(harness, request(b"GET", b"/api/server", b"Host: " + host))
            self.assertEqual(response.code, 200, host)
        self.assertEqual(self.answer(harness, request(b"GET", b"/api/server")).code, 200)

    def test_allowedHosts(self) -> None:
        """
        The names given to L{AccessPolicy} are served too, in any case.
        """
        harness = SiteHarness(local=_LOOPBACK, policy=AccessPolicy(allowedHosts=["gearman.example"]))
        response = self.answer(harness, request(b"GET", b"/api/server", b"Host: GEARMAN.example:8080"))
        self.assertEqual(response.code, 200)
        response = self.answer(harness, request(b"GET", b"/api/server", b"Host: other.example"))
        self.assertRefused(response, 403, "other.example")

    def test_otherAddresses(self) -> None:
        """
        On a connection to an address that is not loopback, any name is
        served, unless names were given: then only they (and addresses and
        C{localhost}) are.
        """
        response = self.answer(SiteHarness(), request(b"GET", b"/api/server", b"Host: evil.example"))
        self.assertEqual(response.code, 200)
        harness = SiteHarness(policy=AccessPolicy(allowedHosts=["gearman.example"]))
        response = self.answer(harness, request(b"GET", b"/api/server", b"Host: evil.example"))
        self.assertRefused(response, 403, "evil.example")
        response = self.answer(harness, request(b"GET", b"/api/server", b"Host: gearman.example"))
        self.assertEqual(response.code, 200)

    def test_ipv6Loopback(self) -> None:
        """
        Connections to ::1, and to 127.0.0.1 through an IPv6 socket
        (::ffff:127.0.0.1), are loopback too.
        """
        for address in ("::1", "::ffff:127.0.0.1"):
            harness = SiteHarness(local=IPv6Address("TCP", address, 8080))
            response = self.answer(harness, request(b"GET", b"/api/server", b"Host: evil.example"))
            self.assertRefused(response, 403, "evil.example")


class CrossSiteTests(SecurityTestCase):
    """
    A request that may change something (any method but GET and HEAD) sent
    by a page of another origin is refused with 403, with or without a
    token: its C{Origin} is not the origin it was sent to, or its
    C{Sec-Fetch-Site} is C{cross-site} or C{same-site}.
    """

    host = b"Host: 127.0.0.1:8080"

    def setUp(self) -> None:
        self.harness = SiteHarness(local=_LOOPBACK)

    def test_foreignOrigins(self) -> None:
        """
        A C{text/plain} POST (which a page may send anywhere without asking)
        from another origin, to the JSON API or to gearmand's path, is
        refused and submits nothing.
        """
        spec = json.dumps({"function": "f", "background": True}).encode()
        for origin in (
            b"http://127.0.0.1:9999",
            b"http://evil.example",
            b"http://localhost:8080",
            b"https://127.0.0.1:8080",
            b"null",
            b"http://127.0.0.1:8080/path",
            b"127.0.0.1:8080",
        ):
            headers = (self.host, b"Origin: " + origin, b"Content-Type: text/plain")
            response = self.answer(self.harness, request(b"POST", b"/api/jobs", *headers, body=spec))
            self.assertRefused(response, 403, "origin")
            for method in (b"POST", b"PUT"):
                response = self.answer(
                    self.harness, request(method, b"/f", *headers, b"X-Gearman-Background: true", body=b"x")
                )
                self.assertRefused(response, 403, "origin")
        self.assertNothingSubmitted(self.harness)

    def test_fetchSite(self) -> None:
        """
        C{Sec-Fetch-Site: cross-site} or C{same-site} is refused even
        without an Origin header.
        """
        for site in (b"cross-site", b"same-site", b"Cross-Site"):
            response = self.answer(
                self.harness,
                request(b"POST", b"/f", self.host, b"Sec-Fetch-Site: " + site, b"X-Gearman-Background: true"),
            )
            self.assertRefused(response, 403, "cross-site")
        self.assertNothingSubmitted(self.harness)

    def test_sameOrigin(self) -> None:
        """
        The origin the request was sent to, a request typed by the user
        (C{Sec-Fetch-Site: none}) and a request with neither header (curl)
        are served.
        """
        for headers in (
            (b"Origin: http://127.0.0.1:8080", b"Sec-Fetch-Site: same-origin"),
            (b"Sec-Fetch-Site: none",),
            (),
        ):
            response = self.answer(
                self.harness, request(b"POST", b"/f", self.host, b"X-Gearman-Background: true", *headers)
            )
            self.assertEqual(response.code, 200, headers)
            self.assertEqual(response.headers[b"x-gearman-command"], b"JOB_CREATED")
        response = self.answer(
            self.harness,
            request(b"POST", b"/f", b"Host: localhost", b"Origin: http://LOCALHOST:80", b"X-Gearman-Background: true"),
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers[b"x-gearman-command"], b"JOB_CREATED")

    def test_cancel(self) -> None:
        """
        C{DELETE /api/jobs/HANDLE} from another origin is refused and the
        job stays; from the same origin it cancels.
        """
        response = self.answer(
            self.harness, request(b"POST", b"/f", self.host, b"X-Gearman-Background: true", body=b"x")
        )
        handle = response.headers[b"x-gearman-job-handle"]
        path = b"/api/jobs/" + handle
        for header in (b"Origin: http://evil.example", b"Sec-Fetch-Site: cross-site"):
            response = self.answer(self.harness, request(b"DELETE", path, self.host, header))
            self.assertRefused(response, 403, "origin" if header.startswith(b"Origin") else "cross-site")
            self.assertEqual(response.headers[b"content-type"], b"application/json")
        self.assertEqual(self.harness.server.functions[b"f"].total, 1)
        response = self.answer(self.harness, request(b"DELETE", path, self.host, b"Origin: http://127.0.0.1:8080"))
        self.assertEqual((response.code, response.json()["cancelled"]), (200, True))

    def test_readsOpen(self) -> None:
        """
        GETs from other origins are served (a browser keeps the answer from
        the page: no CORS header allows it).
        """
        response = self.answer(
            self.harness,
            request(
                b"GET", b"/api/functions", self.host, b"Origin: http://evil.example", b"Sec-Fetch-Site: cross-site"
            ),
        )
        self.assertEqual(response.code, 200)
        self.assertNotIn(b"access-control-allow-origin", response.headers)

    def test_anyAddress(self) -> None:
        """
        The origin check holds on connections to any address, not only
        loopback.
        """
        harness = SiteHarness()
        response = self.answer(
            harness, request(b"POST", b"/f", b"Host: x", b"Origin: http://evil.example", b"X-Gearman-Background: true")
        )
        self.assertRefused(response, 403, "origin")
        self.assertNothingSubmitted(harness)


class TokenTests(SecurityTestCase):
    """
    With a token, every request that may change something needs
    C{Authorization: Bearer TOKEN}; reads stay open.
    """

    def setUp(self) -> None:
        self.harness = SiteHarness(policy=AccessPolicy(token=b"s3cret"))
        self.harness.server.submit(PacketPeer(lambda data: None, -1, "-"), b"queued", b"", b"x", NORMAL, True)
        self.handle = b"T:1"

    def writes(self, *headers: bytes) -> List[bytes]:
        spec = json.dumps({"function": "g", "background": True}).encode()
        return [
            request(b"POST", b"/f", b"Host: x", b"X-Gearman-Background: true", *headers, body=b"x"),
            request(b"PUT", b"/f", b"Host: x", b"X-Gearman-Background: true", *headers, body=b"x"),
            request(b"POST", b"/api/jobs", b"Host: x", *headers, body=spec),
            request(b"DELETE", b"/api/jobs/" + self.handle, b"Host: x", *headers),
        ]

    def assertUntouched(self) -> None:
        self.harness.clock.advance(0)
        self.assertEqual(set(self.harness.server.functions), {b"queued"})
        self.assertEqual(self.harness.server.functions[b"queued"].total, 1)
        self.assertIsNotNone(self.harness.server.lookup(self.handle))

    def test_missing(self) -> None:
        """
        Without the header: 401 with C{WWW-Authenticate: Bearer}, nothing
        done.
        """
        for data in self.writes():
            response = self.answer(self.harness, data)
            self.assertRefused(response, 401, "Authorization: Bearer")
            self.assertTrue(response.headers[b"www-authenticate"].startswith(b"Bearer"))
        self.assertUntouched()

    def test_wrong(self) -> None:
        """
        A wrong token, another scheme or an empty token: 401, nothing done.
        """
        for header in (
            b"Authorization: Bearer s3creT",
            b"Authorization: Bearer s3cret2",
            b"Authorization: Bearer s3cre",
            b"Authorization: Bearer",
            b"Authorization: Basic czNjcmV0",
            b"Authorization: s3cret",
        ):
            for data in self.writes(header):
                response = self.answer(self.harness, data)
                self.assertRefused(response, 401, "token")
                self.assertTrue(response.headers[b"www-authenticate"].startswith(b"Bearer"))
        self.assertUntouched()

    def test_right(self) -> None:
        """
        The right token (the scheme in any case) is served.
        """
        for header in (b"Authorization: Bearer s3cret", b"Authorization: bearer  s3cret"):
            codes = [self.answer(self.harness, data).code for data in self.writes(header)]
            self.assertEqual(codes, [200, 200, 202, 200])
        job = self.harness.server.lookup(self.handle)
        assert job is not None
        self.assertTrue(job.ignore)  # cancelled

    def test_readsOpen(self) -> None:
        """
        The monitor page, the API's reads and the metrics need no token.
        """
        for path in (
            b"/",
            b"/api/server",
            b"/api/functions",
            b"/api/workers",
            b"/api/jobs/T:1",
            b"/api/unique/u",
            b"/metrics",
        ):
            response = self.answer(self.harness, request(b"GET", path, b"Host: x"))
            self.assertEqual(response.code, 200, path)

    def test_noTokenByDefault(self) -> None:
        """
        Without a token, writes need no header (only the origin checks).
        """
        response = self.answer(SiteHarness(), self.writes()[0])
        self.assertEqual(response.code, 200)


class RefusedCounterTests(SecurityTestCase):
    """
    Every refusal is counted in C{gearman_http_refused_total}, by reason.
    """

    def test_counted(self) -> None:
        """
        One Host refusal, two cross-site ones and three token ones show in
        C{/metrics}.
        """
        harness = SiteHarness(local=_LOOPBACK, policy=AccessPolicy(token=b"t"))
        host = b"Host: 127.0.0.1:8080"
        self.answer(harness, request(b"GET", b"/api/server", b"Host: evil.example"))
        self.answer(harness, request(b"POST", b"/f", host, b"Origin: http://evil.example"))
        self.answer(harness, request(b"DELETE", b"/api/jobs/T:1", host, b"Sec-Fetch-Site: cross-site"))
        for _ in range(3):
            self.answer(harness, request(b"POST", b"/f", host))
        response = self.answer(harness, request(b"GET", b"/metrics", host))
        found = metricSamples(response.body)
        self.assertEqual(
            {
                reason: found[("gearman_http_refused_total", (("reason", reason),))]
                for reason in ("host", "origin", "token")
            },
            {"host": 1, "origin": 2, "token": 3},
        )
        self.assertEqual(harness.site.resource.policy.refused, {"host": 1, "origin": 2, "token": 3})


class AccessControlTests(SecurityTestCase):
    """
    With an access policy (C{--access-policy}), HTTP submissions, cancels
    and listings are decided per function by its rules, for the request's
    address, its bearer token's name and its certificate's name.
    """

    POLICY = """
[tokens]
ops = "ops-token"
ci = "ci-token"

[[allow]]
who = "token:ops"
submit = "report.*"
admin = "report.*"

[[allow]]
who = "token:ci"
admin = "*"

[[allow]]
who = "address:127.0.0.1"
submit = "public"
"""

    def setUp(self) -> None:
        from gearman_tw.server.acl import AccessControl

        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "policy.toml")
        with open(path, "w") as f:
            f.write(self.POLICY)
        self.acl = AccessControl(path)
        self.harness = SiteHarness(policy=AccessPolicy(acl=self.acl))

    def submit(self, path: bytes, *headers: bytes) -> Response:
        return self.answer(
            self.harness,
            request(b"POST", path, b"Host: x", b"X-Gearman-Background: true", *headers, body=b"x"),
        )

    def test_submit(self) -> None:
        """
        A submission the rules do not allow gets 403 saying who may not do
        what, and makes nothing; the token's name and the address decide.
        """
        ops = b"Authorization: Bearer ops-token"
        self.assertRefused(self.submit(b"/billing", ops), 403, "token:ops, address:127.0.0.1 may not submit to billing")
        spec = json.dumps({"function": "billing", "data": "x", "background": True}).encode()
        response = self.answer(self.harness, request(b"POST", b"/api/jobs", b"Host: x", ops, body=spec))
        self.assertRefused(response, 403, "may not submit to billing")
        self.assertNothingSubmitted(self.harness)
        self.assertEqual(self.submit(b"/report.daily", ops).code, 200)
        self.assertEqual(self.submit(b"/public").code, 200)
        self.assertRefused(self.submit(b"/report.daily"), 403, "address:127.0.0.1 may not submit to report.daily")
        self.assertEqual(self.acl.refused["submit"], 3)

    def test_unknownTokenIsNoOne(self) -> None:
        """
        A bearer token the policy does not name gives no name: the request
        is decided by its address alone.
        """
        response = self.submit(b"/report.daily", b"Authorization: Bearer guess")
        self.assertRefused(response, 403, "address:127.0.0.1 may not submit to report.daily")

    def test_cancel(self) -> None:
        """
        Cancelling needs admin on the job's function; the refusal names no
        function, and is the same for a job the server does not know.
        """
        self.harness.server.submit(PacketPeer(lambda data: None, -1, "-"), b"billing", b"", b"x", NORMAL, True)
        ops = b"Authorization: Bearer ops-token"
        for handle in (b"T:1", b"T:404"):
            response = self.answer(self.harness, request(b"DELETE", b"/api/jobs/" + handle, b"Host: x", ops))
            self.assertRefused(
                response, 403, "token:ops, address:127.0.0.1 may not cancel this job: that needs admin on its function"
            )
        self.assertIsNotNone(self.harness.server.lookup(b"T:1"))
        ci = b"Authorization: Bearer ci-token"
        response = self.answer(self.harness, request(b"DELETE", b"/api/jobs/T:1", b"Host: x", ci))
        self.assertEqual(response.code, 200)

    def test_listings(self) -> None:
        """
        Listing functions and workers needs admin on every function.
        """
        for route in (b"/api/functions", b"/api/workers"):
            ops = b"Authorization: Bearer ops-token"
            response = self.answer(self.harness, request(b"GET", route, b"Host: x", ops))
            self.assertRefused(response, 403, "may not administer every function")
            ci = b"Authorization: Bearer ci-token"
            self.assertEqual(self.answer(self.harness, request(b"GET", route, b"Host: x", ci)).code, 200)

    def test_tokenFileAndPolicy(self) -> None:
        """
        With both --http-token-file and a policy, a policy token passes the
        token check too, and the rules still decide.
        """
        self.harness = SiteHarness(policy=AccessPolicy(token=b"file-token", acl=self.acl))
        self.assertEqual(self.submit(b"/report.daily", b"Authorization: Bearer ops-token").code, 200)
        self.assertRefused(self.submit(b"/report.daily", b"Authorization: Bearer nope"), 401, "token")
        self.assertRefused(
            self.submit(b"/report.daily", b"Authorization: Bearer file-token"), 403, "may not submit"
        )

    def test_deadLetters(self) -> None:
        """
        As the admin words they mirror: listing a function's dead letters,
        retrying, purging them and its policy need admin on the function;
        the counts of every function's need it on every function.  A
        refused request changes nothing.
        """
        self.harness.server.setPolicies(Policies.fromText("[default]\ndead-letters = 5\n"))
        for name in (b"billing", b"report.daily"):
            client = Conn(self.harness.server)
            client.created(name, background=True)
            worker = Conn(self.harness.server)
            worker.canDo(name)
            worker.fail(worker.take()[0])
        ops = b"Authorization: Bearer ops-token"
        ci = b"Authorization: Bearer ci-token"
        routes = [
            (b"GET", b"/deadletters"),
            (b"GET", b"/policy"),
            (b"POST", b"/deadletters/retry"),
            (b"POST", b"/deadletters/purge"),
        ]
        for method, route in routes:
            response = self.answer(
                self.harness, request(method, b"/api/functions/billing" + route, b"Host: x", ops)
            )
            self.assertRefused(response, 403, "token:ops, address:127.0.0.1 may not administer billing")
        self.assertEqual(len(self.harness.server.deadLetters.of(b"billing")), 1)
        self.assertEqual(self.harness.server.jobCount(), 0)
        self.assertEqual(self.acl.refused["admin"], 4)
        response = self.answer(self.harness, request(b"GET", b"/api/deadletters", b"Host: x", ops))
        self.assertRefused(response, 403, "may not administer every function")
        response = self.answer(self.harness, request(b"GET", b"/api/deadletters", b"Host: x", ci))
        self.assertEqual([c["function"] for c in response.json()], ["billing", "report.daily"])
        for method, route in routes:
            response = self.answer(
                self.harness, request(method, b"/api/functions/report.daily" + route, b"Host: x", ops)
            )
            self.assertEqual(response.code, 200, route)
        self.assertEqual(response.json(), {"function": "report.daily", "purged": 0, "kept": 0})
        self.assertEqual(self.harness.server.functions[b"report.daily"].total, 1)  # retried

    def test_policyChanges(self) -> None:
        """
        Changing or resetting a function's policy needs admin on the
        function, as C{policy set} and C{policy reset} do; a refused
        request changes nothing, however bad its body.
        """
        server = self.harness.server
        server.changePolicy(b"billing", {"max-rate": 5})
        ops = b"Authorization: Bearer ops-token"
        writes = [
            (b"PATCH", b'{"max-running": 1}'),
            (b"PATCH", b"not json"),
            (b"DELETE", b""),
        ]
        for method, body in writes:
            response = self.answer(
                self.harness, request(method, b"/api/functions/billing/policy", b"Host: x", ops, body=body)
            )
            self.assertRefused(response, 403, "token:ops, address:127.0.0.1 may not administer billing")
        self.assertEqual(server.policyChanges(b"billing"), {"max-rate": 5})
        self.assertEqual(self.acl.refused["admin"], 3)
        path = b"/api/functions/report.daily/policy"
        response = self.answer(self.harness, request(b"PATCH", path, b"Host: x", ops, body=b'{"max-running": 1}'))
        self.assertEqual((response.code, response.json()["changed"]), (200, {"max-running": 1}))
        response = self.answer(self.harness, request(b"DELETE", path, b"Host: x", ops))
        self.assertEqual((response.code, response.json()["reset"]), (200, True))
        ci = b"Authorization: Bearer ci-token"
        path = b"/api/functions/billing/policy"
        response = self.answer(self.harness, request(b"DELETE", path, b"Host: x", ci))
        self.assertEqual((response.code, response.json()["reset"]), (200, True))

    def test_results(self) -> None:
        """
        A job's result, by handle or unique key, needs admin on the job's
        function, live or ended, as the C{result} admin command does; for
        an unknown job admin on every function.  A refusal names no
        function and is the same for a job of a function the request may
        not administer and for an unknown job, so it tells neither whether
        the job exists nor its function.
        """
        server = self.harness.server
        server.setPolicies(Policies.fromText("[default]\nkeep-results = 60\n"))
        client = Conn(server)
        worker = Conn(server)
        ended = client.created(b"billing", unique=b"b1", data=b"x", background=True)
        worker.canDo(b"billing")
        worker.complete(worker.take()[0], b"invoice")
        live = client.created(b"billing", unique=b"b2", background=True)
        mine = client.created(b"report.daily", unique=b"r1", background=True)
        done = client.created(b"report.weekly", unique=b"r2", background=True)
        worker.canDo(b"report.weekly")
        worker.complete(worker.take()[0], b"done")
        ops = b"Authorization: Bearer ops-token"
        ci = b"Authorization: Bearer ci-token"

        def get(path: bytes, *headers: bytes) -> Response:
            return self.answer(self.harness, request(b"GET", path, b"Host: x", *headers))

        hidden = [
            b"/api/results/" + ended,
            b"/api/results/" + live,
            b"/api/results/T:99",
            b"/api/unique/b1/result",
            b"/api/unique/b2/result",
            b"/api/unique/nothing/result",
        ]
        refusals = [get(path, ops) for path in hidden]
        for response in refusals:
            self.assertRefused(response, 403, "token:ops, address:127.0.0.1 may not see this job")
            self.assertNotIn(b"billing", response.body)
            self.assertNotIn(b"every function", response.body)
        self.assertEqual(len({response.body for response in refusals}), 1)
        self.assertEqual(self.acl.refused["admin"], len(hidden))
        self.assertEqual(get(b"/api/results/" + mine, ops).json()["outcome"], "queued")
        self.assertEqual(get(b"/api/unique/r1/result", ops).json()["handle"], mine.decode())
        self.assertEqual(get(b"/api/results/" + done, ops).json()["data"]["text"], "done")
        self.assertEqual(get(b"/api/unique/r2/result", ops).json()["outcome"], "complete")
        self.assertEqual(
            [get(path, ci).code for path in hidden],
            [200, 200, 404, 200, 200, 404],
        )
        self.assertEqual(get(b"/api/results/" + ended, ci).json()["data"]["text"], "invoice")
        self.assertRefused(get(b"/api/results/" + mine), 403, "address:127.0.0.1 may not see this job")

    def test_counted(self) -> None:
        """
        Refusals show in C{gearman_acl_refused_total}, by action.
        """
        self.submit(b"/billing")
        self.submit(b"/billing")
        self.answer(self.harness, request(b"GET", b"/api/workers", b"Host: x"))
        response = self.answer(self.harness, request(b"GET", b"/metrics", b"Host: x"))
        found = metricSamples(response.body)
        self.assertEqual(
            {a: found[("gearman_acl_refused_total", (("action", a),))] for a in ("submit", "work", "admin")},
            {"submit": 2, "work": 0, "admin": 1},
        )


#: Three dead letters kept per function; C{fragile}'s failures attempted
#: once more after a backoff.
_POLICIES = """
[default]
dead-letters = 3

[functions.fragile]
max-attempts = 2
retry-failures = true
backoff = { base = 2.0, factor = 3.0, cap = 60.0, jitter = 0.0 }
time-limit = 30
"""


class DeadLetterTestCase(SecurityTestCase):
    """
    A site whose job server keeps dead letters (L{_POLICIES}), and ways to
    make them and to check answers against the OpenAPI document.
    """

    def setUp(self) -> None:
        self.harness = SiteHarness(**self.siteOptions())
        self.server = self.harness.server
        self.server.setPolicies(Policies.fromText(_POLICIES))
        self.clock = self.harness.clock
        self.clock.advance(1000)
        self.client = Conn(self.server)

    def siteOptions(self) -> Dict[str, Any]:
        return {}

    def kill(self, name: bytes, data: bytes = b"x", error: Optional[bytes] = None, **kw: Any) -> bytes:
        """
        Submit a background job to C{name}, then have a worker take it and,
        five seconds later, fail it (or raise C{error}): a dead letter.

        @return: its handle.
        """
        handle = self.client.created(name, data=data, background=True, **kw)
        worker = Conn(self.server)
        worker.canDo(name)
        taken, _ = worker.take()
        self.assertEqual(taken, handle)
        self.clock.advance(5)
        if error is None:
            worker.fail(handle)
        else:
            worker.exception(handle, error)
        worker.lose()
        return handle

    def ids(self, name: bytes) -> List[int]:
        return [letter.ident for letter in self.server.deadLetters.of(name)]

    def call(self, method: bytes, path: bytes, template: str, code: int, *headers: bytes, body: bytes = b"") -> Any:
        """
        The decoded answer to C{method path}, which must be C{code}, a JSON
        body its documented schema (for the operation C{template})
        accepts.
        """
        response = self.answer(self.harness, request(method, path, b"Host: x", *headers, body=body))
        self.assertEqual(response.code, code, response.body)
        self.assertEqual(response.headers[b"content-type"], b"application/json")
        self.assertEqual(response.headers[b"cache-control"], b"no-store")
        value = response.json()
        operation = operations()[(method.decode(), template)]
        jsonschema.validate(value, schemaOf(operation["responses"][str(code)]))
        return value


class DeadLetterListingTests(DeadLetterTestCase):
    """
    C{GET /api/deadletters} and C{GET /api/functions/NAME/deadletters}
    show what the C{deadletters} admin words show, and each letter's data,
    priority and times.
    """

    def test_counts(self) -> None:
        """
        Each function that keeps dead letters or dropped some, by name,
        with how many it keeps and dropped for room; none at first.
        """
        self.assertEqual(self.call(b"GET", b"/api/deadletters", "/api/deadletters", 200), [])
        self.kill(b"b")
        for _ in range(4):
            self.kill(b"a")
        self.assertEqual(
            self.call(b"GET", b"/api/deadletters", "/api/deadletters", 200),
            [{"function": "a", "kept": 3, "dropped": 1}, {"function": "b", "kept": 1, "dropped": 0}],
        )
        self.server.purgeDeadLetters(b"a")
        self.assertEqual(
            self.call(b"GET", b"/api/deadletters", "/api/deadletters", 200),
            [{"function": "a", "kept": 0, "dropped": 1}, {"function": "b", "kept": 1, "dropped": 0}],
        )

    def test_letters(self) -> None:
        """
        A function's dead letters, oldest first, with their handle, unique,
        data (base64, and text when UTF-8), priority by name, attempts, why
        the last attempt ended, and when they were submitted and given up
        (epoch seconds).
        """
        first = self.kill(b"f", data=b"\xff\x00", unique=b"u1", priority=HIGH)
        second = self.kill(b"f", data=b"caf\xc3\xa9", error=b"disk full", priority=LOW)
        one, two = self.ids(b"f")
        template = "/api/functions/{name}/deadletters"
        self.assertEqual(
            self.call(b"GET", b"/api/functions/f/deadletters", template, 200),
            [
                {
                    "id": one,
                    "handle": first.decode(),
                    "unique": "u1",
                    "data": {"base64": "/wA="},
                    "priority": "high",
                    "attempts": 1,
                    "error": {"base64": "V09SS19GQUlM", "text": "WORK_FAIL"},
                    "submitted": 1000.0,
                    "failed": 1005.0,
                    "reducer": None,
                },
                {
                    "id": two,
                    "handle": second.decode(),
                    "unique": "",
                    "data": {"base64": "Y2Fmw6k=", "text": "caf\u00e9"},
                    "priority": "low",
                    "attempts": 1,
                    "error": {"base64": "ZGlzayBmdWxs", "text": "disk full"},
                    "submitted": 1005.0,
                    "failed": 1010.0,
                    "reducer": None,
                },
            ],
        )

    def test_unknownFunction(self) -> None:
        """
        A function the server does not know, or knows without dead letters,
        has none: an empty list, and nothing is created.
        """
        self.client.created(b"known", background=True)
        for name in (b"known", b"nobody", b"%00", b""):
            path = b"/api/functions/%s/deadletters" % (name,)
            self.assertEqual(self.call(b"GET", path, "/api/functions/{name}/deadletters", 200), [], name)
        self.assertEqual(set(self.server.functions), {b"known"})

    def test_encodedNameAndReducer(self) -> None:
        """
        The name is percent-decoded as one segment (a C{/} in it as
        C{%2F}); a reduce job's letter names its reducer.
        """
        self.kill(b"a/b c", reducer=b"sum")
        [letter] = self.call(
            b"GET", b"/api/functions/a%2Fb%20c/deadletters", "/api/functions/{name}/deadletters", 200
        )
        self.assertEqual(letter["reducer"], "sum")
        path = b"/api/functions/a/deadletters"
        self.assertEqual(self.call(b"GET", path, "/api/functions/{name}/deadletters", 200), [])

    def test_many(self) -> None:
        """
        A long list is sent a slice per reactor turn and is whole, oldest
        first.
        """
        self.server.setPolicies(Policies.fromText("[default]\ndead-letters = 5000\n"))
        for n in range(2500):
            self.kill(b"f", data=b"%d" % (n,))
        channel, transport = self.harness.connect()
        channel.dataReceived(request(b"GET", b"/api/functions/f/deadletters", b"Host: x"))
        self.assertEqual(parseResponses(transport.value()), [])
        self.clock.advance(0)
        self.clock.advance(0)
        [response] = parseResponses(transport.value())
        letters = response.json()
        self.assertEqual([letter["data"]["text"] for letter in letters], ["%d" % (n,) for n in range(2500)])
        self.assertEqual([letter["id"] for letter in letters], self.ids(b"f"))

    def test_functionCounters(self) -> None:
        """
        C{GET /api/functions} counts per function the attempts retried and
        the jobs kept as dead letters, besides its other fields.
        """
        handle = self.client.created(b"fragile", background=True)
        for _ in range(2):
            worker = Conn(self.server)
            worker.canDo(b"fragile")
            self.assertEqual(worker.take()[0], handle)
            worker.fail(handle)
            worker.lose()
            self.clock.advance(2)
        self.kill(b"f")
        self.client.created(b"g", background=True)
        functions = self.call(b"GET", b"/api/functions", "/api/functions", 200)
        self.assertEqual(
            {f["name"]: (f["retried"], f["dead_lettered"], f["failed"]) for f in functions},
            {"fragile": (1, 1, 1), "f": (0, 1, 1), "g": (0, 0, 0)},
        )


class DeadLetterActionTests(DeadLetterTestCase):
    """
    C{POST /api/functions/NAME/deadletters/retry} and C{.../purge} act as
    C{retry deadletters} and C{purge deadletters}: on all of a function's
    dead letters, or on those of a list of ids.
    """

    retry = "/api/functions/{name}/deadletters/retry"
    purge = "/api/functions/{name}/deadletters/purge"

    def test_retryIds(self) -> None:
        """
        The letters named are submitted again as background jobs with their
        unique, data and priority, and forgotten; ids the function does not
        keep are ignored, and an empty list names none.
        """
        self.kill(b"f", data=b"d0")
        self.kill(b"f", data=b"d1", unique=b"u1", priority=HIGH)
        self.kill(b"f", data=b"d2")
        one, two, three = self.ids(b"f")
        path = b"/api/functions/f/deadletters/retry"
        body = json.dumps({"ids": [two, 999999]}).encode()
        answer = self.call(b"POST", path, self.retry, 200, body=body)
        self.assertEqual(answer, {"function": "f", "retried": 1, "kept": 2})
        [job] = self.server.liveJobs()
        self.assertEqual((job.data, job.unique, job.priority, job.background), (b"d1", b"u1", HIGH, True))
        self.assertEqual(self.ids(b"f"), [one, three])
        answer = self.call(b"POST", path, self.retry, 200, body=b'{"ids": []}')
        self.assertEqual(answer, {"function": "f", "retried": 0, "kept": 2})
        self.assertEqual(self.server.jobCount(), 1)

    def test_retryAll(self) -> None:
        """
        Without a body, or without ids, every letter of the function is
        submitted again; another function's stay.
        """
        self.kill(b"f", data=b"d0")
        self.kill(b"f", data=b"d1")
        self.kill(b"g")
        answer = self.call(b"POST", b"/api/functions/f/deadletters/retry", self.retry, 200)
        self.assertEqual(answer, {"function": "f", "retried": 2, "kept": 0})
        self.assertEqual(sorted(job.data for job in self.server.liveJobs()), [b"d0", b"d1"])
        self.assertEqual(self.server.deadLetters.functions(), {b"g": 1})
        answer = self.call(b"POST", b"/api/functions/g/deadletters/retry", self.retry, 200, body=b"{}\n")
        self.assertEqual(answer, {"function": "g", "retried": 1, "kept": 0})
        answer = self.call(b"POST", b"/api/functions/nobody/deadletters/retry", self.retry, 200)
        self.assertEqual(answer, {"function": "nobody", "retried": 0, "kept": 0})
        self.assertNotIn(b"nobody", self.server.functions)

    def test_retryRefused(self) -> None:
        """
        A letter the server refuses to submit again (its function's queue
        is full) is not counted and stays kept, saying why.
        """
        self.kill(b"f")
        self.client.created(b"f", background=True)
        self.server.setMaxQueue(b"f", (1, 1, 1))
        answer = self.call(b"POST", b"/api/functions/f/deadletters/retry", self.retry, 200)
        self.assertEqual(answer, {"function": "f", "retried": 0, "kept": 1})
        [letter] = self.call(b"GET", b"/api/functions/f/deadletters", "/api/functions/{name}/deadletters", 200)
        self.assertTrue(letter["error"]["text"].startswith("retry refused: "), letter)
        self.assertEqual(self.server.jobCount(), 1)

    def test_purge(self) -> None:
        """
        The letters named, or all of them, are forgotten, and nothing is
        submitted.
        """
        self.kill(b"f")
        self.kill(b"f")
        one, two = self.ids(b"f")
        path = b"/api/functions/f/deadletters/purge"
        answer = self.call(b"POST", path, self.purge, 200, body=json.dumps({"ids": [one, one]}).encode())
        self.assertEqual(answer, {"function": "f", "purged": 1, "kept": 1})
        self.assertEqual(self.ids(b"f"), [two])
        self.assertEqual(self.call(b"POST", path, self.purge, 200), {"function": "f", "purged": 1, "kept": 0})
        self.assertEqual(self.call(b"POST", path, self.purge, 200), {"function": "f", "purged": 0, "kept": 0})
        self.assertEqual(self.server.jobCount(), 0)

    def test_badBodies(self) -> None:
        """
        Anything but an empty body or a C{DeadLetterIds} object gets 400
        with a one-line reason (and the field at fault, when one is), and
        changes nothing; the documented schema refuses it too where JSON
        Schema can tell.
        """
        self.kill(b"f")
        kept = self.ids(b"f")
        idsSchema = {"$ref": "#/components/schemas/DeadLetterIds", "components": SPEC["components"]}
        deep = b"[" * 10000 + b"]" * 10000
        cases: List[Tuple[bytes, Optional[str], str, bool]] = [
            (b"[]", None, "JSON object, not an array", True),
            (b'"ids"', None, "not a string", True),
            (b"1", None, "not a number", True),
            (b"null", None, "not null", True),
            (b"{not json", None, "not valid JSON", False),
            (b'{"ids": [1]', None, "not valid JSON", False),
            (b"\xff\xfe{\x00", None, "", False),
            (b'{"ids": "%d"}' % (kept[0],), "ids", "not a string", True),
            (b'{"ids": 1}', "ids", "not a number", True),
            (b'{"ids": null}', "ids", "not null", True),
            (b'{"ids": {"1": 1}}', "ids", "not an object", True),
            (b'{"ids": [1, "2"]}', "ids", "ids[1] must be a dead letter id", True),
            (b'{"ids": [1.5]}', "ids", "not 1.5", True),
            (b'{"ids": [true]}', "ids", "not a boolean", True),
            (b'{"ids": [0]}', "ids", "not 0", True),
            (b'{"ids": [-3]}', "ids", "not -3", True),
            (b'{"ids": [null]}', "ids", "not null", True),
            (b'{"ids": [[1]]}', "ids", "not an array", True),
            (b'{"id": [1]}', "id", "unknown field", True),
            (b'{"ids": [1], "ids": [2]}', "ids", "more than once", False),
            (b'{"ids": [NaN]}', None, "NaN", False),
            (b'{"ids": ' + deep + b"}", None, "deep", False),
            (b'{"ids": [1' + b"0" * 5000 + b"]}", None, "too many digits", False),
        ]
        for template in (self.retry, self.purge):
            path = template.replace("{name}", "f").encode()
            for body, field, words, schema in cases:
                if schema:
                    self.assertRaises(jsonschema.ValidationError, jsonschema.validate, json.loads(body), idsSchema)
                error = self.call(b"POST", path, template, 400, body=body)
                self.assertNotIn("\n", error["error"])
                self.assertIn(words, error["error"], body[:100])
                self.assertEqual(error.get("field"), field, body[:100])
        self.assertEqual(self.ids(b"f"), kept)
        self.assertEqual(self.server.jobCount(), 0)


class PolicyRouteTests(DeadLetterTestCase):
    """
    C{GET /api/functions/NAME/policy} answers the lifecycle policy that
    applies to a function, known or not, with every key of the policy
    file, as C{policy FUNCTION} shows it.
    """

    template = "/api/functions/{name}/policy"

    def adminPolicy(self, name: bytes) -> Dict[str, str]:
        """
        What the admin command C{policy NAME} shows, by key.
        """
        reply = AdminCommands(self.server).execute(Conn(self.server).peer, b"policy " + name)
        assert isinstance(reply, bytes)
        return dict(line.split(" ", 1) for line in reply.decode().splitlines()[:-1])  # type: ignore[misc]

    def test_table(self) -> None:
        """
        A function a table matches gets that table's settings over the
        default's.
        """
        self.assertEqual(
            self.call(b"GET", b"/api/functions/fragile/policy", self.template, 200),
            {
                "max-attempts": 2,
                "backoff": {"base": 2.0, "factor": 3.0, "cap": 60.0, "jitter": 0.0},
                "retry-failures": True,
                "retry-foreground": False,
                "time-limit": 30.0,
                "dead-letters": 3,
                "max-running": 0,
                "max-rate": 0.0,
                "keep-results": 0.0,
                "results": 1000,
                "unique-window": 0.0,
                "changed": {},
            },
        )
        self.assertEqual(self.server.functions, {})

    def test_default(self) -> None:
        """
        Any other function, known or not, gets the default, with
        C{max-attempts} from C{--job-retries}.
        """
        self.server.jobRetries = 4
        self.client.created(b"known", background=True)
        for name in (b"known", b"unknown"):
            self.assertEqual(
                self.call(b"GET", b"/api/functions/%s/policy" % (name,), self.template, 200),
                {
                    "max-attempts": 4,
                    "backoff": False,
                    "retry-failures": False,
                    "retry-foreground": False,
                    "time-limit": 0.0,
                    "dead-letters": 3,
                    "max-running": 0,
                    "max-rate": 0.0,
                    "keep-results": 0.0,
                    "results": 1000,
                    "unique-window": 0.0,
                    "changed": {},
                },
            )
        self.assertEqual(set(self.server.functions), {b"known"})

    def test_sameAsAdmin(self) -> None:
        """
        The keys are the admin command's, which are the policy file's, and
        so are the values; C{changed} holds the keys changed at run time.
        """
        self.server.setPolicies(
            Policies.fromText("[default]\nmax-running = 7\nmax-rate = 2.5\nretry-failures = true\n")
        )
        self.server.changePolicy(b"changed", {"max-running": 3})
        for name in (b"fragile", b"other", b"changed"):
            policy = self.call(b"GET", b"/api/functions/%s/policy" % (name,), self.template, 200)
            shown = self.adminPolicy(name)
            self.assertEqual(set(policy) - {"changed"}, set(shown))
            self.assertEqual(set(policy), set(SPEC["components"]["schemas"]["Policy"]["required"]))
            self.assertEqual(policy["max-rate"], float(shown["max-rate"]))
            self.assertEqual(policy["max-running"], int(shown["max-running"]))
            self.assertEqual(policy["retry-failures"], shown["retry-failures"] == "true")
            self.assertEqual(policy["changed"], self.server.policyChanges(name))
        self.assertEqual((policy["max-running"], policy["changed"]), (3, {"max-running": 3}))

    def test_keys(self) -> None:
        """
        L{POLICY_KEYS}, which C{PATCH} takes, are the keys C{GET} shows and
        the ones the C{Policy} and C{PolicyChanges} schemas know.
        """
        schemas = SPEC["components"]["schemas"]
        self.assertEqual(set(POLICY_KEYS), set(schemas["PolicyChanges"]["properties"]))
        self.assertEqual(set(POLICY_KEYS) | {"changed"}, set(schemas["Policy"]["properties"]))
        shown = self.call(b"GET", b"/api/functions/f/policy", self.template, 200)
        self.assertEqual(set(shown), set(POLICY_KEYS) | {"changed"})


class PolicyChangeTests(DeadLetterTestCase):
    """
    C{PATCH /api/functions/NAME/policy} changes a function's policy at run
    time as C{policy set} does, and C{DELETE} takes the changes back as
    C{policy reset} does; both answer the policy that applies then.
    """

    template = "/api/functions/{name}/policy"

    def patch(self, name: bytes, changes: Any, code: int = 200) -> Any:
        """
        The answer to C{PATCH} of C{changes} (a value, sent as JSON, or
        bytes, sent as they are) to function C{name}'s policy.
        """
        body = changes if isinstance(changes, bytes) else json.dumps(changes).encode()
        return self.call(b"PATCH", b"/api/functions/%s/policy" % (name,), self.template, code, body=body)

    def get(self, name: bytes) -> Any:
        return self.call(b"GET", b"/api/functions/%s/policy" % (name,), self.template, 200)

    def reset(self, name: bytes) -> Any:
        return self.call(b"DELETE", b"/api/functions/%s/policy" % (name,), self.template, 200)

    def test_patch(self) -> None:
        """
        The keys given are changed over the file's and the others kept; the
        answer is what C{GET} then answers, with C{changed} naming the keys
        changed and the values given, and the server applies it.
        """
        answer = self.patch(b"fragile", {"max-running": 2, "backoff": {"base": 0.5}, "retry-foreground": True})
        self.assertEqual(answer, self.get(b"fragile"))
        self.assertEqual(
            answer["changed"], {"max-running": 2, "backoff": {"base": 0.5}, "retry-foreground": True}
        )
        self.assertEqual(
            (answer["max-running"], answer["backoff"], answer["retry-foreground"]),
            # The file's backoff with the base changed.
            (2, {"base": 0.5, "factor": 3.0, "cap": 60.0, "jitter": 0.0}, True),
        )
        self.assertEqual((answer["max-attempts"], answer["time-limit"]), (2, 30.0))
        policy = self.server.policyOf(b"fragile")
        self.assertEqual((policy.maxRunning, policy.retryForeground), (2, True))
        answer = self.patch(b"fragile", {"time-limit": 5, "backoff": False})
        self.assertEqual(
            answer["changed"], {"max-running": 2, "backoff": False, "retry-foreground": True, "time-limit": 5}
        )
        self.assertEqual((answer["time-limit"], answer["backoff"]), (5.0, False))
        self.assertEqual(self.server.policyChanges(b"fragile"), answer["changed"])
        self.assertEqual(self.server.functions, {})

    def test_patchKnownFunction(self) -> None:
        """
        A function the server knows gets its new policy at once.
        """
        self.client.created(b"f", background=True)
        self.patch(b"f", {"max-running": 1, "dead-letters": 0})
        function = self.server.functions[b"f"]
        self.assertEqual((function.policy.maxRunning, function.policy.deadLetters), (1, 0))

    def test_patchNull(self) -> None:
        """
        C{null} takes back the run-time change of a key, and is nothing for
        a key not changed; an empty object changes nothing.
        """
        before = self.get(b"fragile")
        self.patch(b"fragile", {"max-running": 2, "time-limit": 5})
        answer = self.patch(b"fragile", {"time-limit": None, "max-rate": None})
        self.assertEqual((answer["changed"], answer["time-limit"]), ({"max-running": 2}, 30.0))
        self.assertEqual(self.patch(b"fragile", {}), answer)
        self.assertEqual(self.patch(b"fragile", {"max-running": None}), before)
        self.assertEqual(self.server.policyChanges(b"fragile"), {})
        self.assertEqual(self.patch(b"other", {"backoff": None})["changed"], {})

    def test_sameAsAdmin(self) -> None:
        """
        A change made over HTTP is the one C{policy set} makes: the admin
        command shows it, and C{policy reset} takes it back.
        """
        self.patch(b"f", {"max-rate": 2.5, "backoff": {"base": 1, "cap": 10}})
        admin = AdminCommands(self.server)
        peer = Conn(self.server).peer
        reply = admin.execute(peer, b"policy f")
        assert isinstance(reply, bytes)
        self.assertIn(b"max-rate 2.5\n", reply)
        self.assertIn(b"backoff base=1 cap=10 factor=2 jitter=0.1\n", reply)
        self.assertEqual(admin.execute(peer, b"policy set f max-running 4"), b"OK\n")
        self.assertEqual(
            self.get(b"f")["changed"], {"max-rate": 2.5, "backoff": {"base": 1, "cap": 10}, "max-running": 4}
        )
        self.assertEqual(admin.execute(peer, b"policy reset f"), b"OK 1\n")
        self.assertEqual(self.get(b"f")["changed"], {})

    def test_reset(self) -> None:
        """
        C{DELETE} takes back every run-time change: it answers whether there
        was one and the policy that applies now, the file's.
        """
        before = self.get(b"fragile")
        self.patch(b"fragile", {"max-running": 2, "time-limit": 5})
        answer = self.reset(b"fragile")
        self.assertEqual(answer, {"function": "fragile", "reset": True, "policy": before})
        self.assertEqual(self.server.policyChanges(b"fragile"), {})
        self.assertEqual(self.server.policyOf(b"fragile").timeLimit, 30.0)
        self.assertEqual(self.reset(b"fragile"), {"function": "fragile", "reset": False, "policy": before})
        answer = self.reset(b"a%2Fb%20c")
        self.assertEqual((answer["function"], answer["reset"]), ("a/b c", False))
        self.assertEqual(self.server.functions, {})

    def test_keptOverReload(self) -> None:
        """
        A change stays when the policy file is read again, over the new
        file's value.
        """
        self.patch(b"fragile", {"time-limit": 5})
        self.server.setPolicies(Policies.fromText("[functions.fragile]\ntime-limit = 60\nmax-running = 9\n"))
        answer = self.get(b"fragile")
        self.assertEqual((answer["time-limit"], answer["max-running"]), (5.0, 9))
        self.assertEqual(self.reset(b"fragile")["policy"]["time-limit"], 60.0)

    def test_badBodies(self) -> None:
        """
        Anything but a C{PolicyChanges} object the policy file's rules take
        gets 400 with a one-line reason (and the key at fault, when one
        is), and changes nothing, not even the keys that were right; the
        documented schema refuses it too where JSON Schema can tell.
        """
        self.patch(b"fragile", {"max-running": 2})
        before = self.get(b"fragile")
        schema = {"$ref": "#/components/schemas/PolicyChanges", "components": SPEC["components"]}
        cases: List[Tuple[bytes, Optional[str], str, bool]] = [
            (b"", None, "body is empty", False),
            (b"  \r\n", None, "body is empty", False),
            (b"[]", None, "JSON object of policy keys, not an array", True),
            (b"null", None, "not null", True),
            (b'"max-running"', None, "not a string", True),
            (b"{not json", None, "not valid JSON", False),
            (b"\xff\xfe{\x00", None, "", False),
            (b'{"max-running": 1, "max-running": 2}', "max-running", "more than once", False),
            (b'{"max-rate": NaN}', None, "NaN", False),
            (b'{"max-rate": Infinity}', None, "Infinity", False),
            (b'{"max-rate": 1' + b"0" * 5000 + b"}", None, "too many digits", False),
            (b'{"bogus": 1}', "bogus", "bogus is an unknown policy key (known: max-attempts, backoff,", True),
            (b'{"bogus": null}', "bogus", "unknown policy key", True),
            (b'{"max_running": 1}', "max_running", "unknown policy key", True),
            (b'{"max-running": 3, "\\ud800": 1}', "\\ud800", "unknown policy key", True),
            (b'{"max-attempts": -1}', "max-attempts", "max-attempts must be a whole number, 0 or more", True),
            (b'{"max-attempts": 1.5}', "max-attempts", "whole number", True),
            (b'{"max-attempts": 2.0}', "max-attempts", "whole number", False),
            (b'{"max-attempts": true}', "max-attempts", "whole number", True),
            (b'{"max-running": "2"}', "max-running", "whole number", True),
            (b'{"dead-letters": -1}', "dead-letters", "(0: none kept)", True),
            (b'{"max-rate": -0.5}', "max-rate", "max-rate must be a finite number of at least 0", True),
            (b'{"max-rate": 1e400}', "max-rate", "finite number", False),
            (b'{"time-limit": 1' + b"0" * 400 + b"}", "time-limit", "finite number", False),
            (b'{"time-limit": "30"}', "time-limit", "time-limit must be a number", True),
            (b'{"retry-failures": 1}', "retry-failures", "retry-failures must be true or false", True),
            (b'{"retry-foreground": "yes"}', "retry-foreground", "true or false", True),
            (b'{"backoff": true}', "backoff", "backoff must be false or an object, not a boolean", True),
            (b'{"backoff": [1]}', "backoff", "not an array", True),
            (b'{"backoff": {"base": "1"}}', "backoff", "backoff.base must be a number", True),
            (b'{"backoff": {"factor": 0.5}}', "backoff", "backoff.factor must be at least 1", True),
            (b'{"backoff": {"jitter": 2}}', "backoff", "backoff.jitter", True),
            (b'{"backoff": {"bases": 1}}', "backoff", "backoff: unknown key bases", True),
            (b'{"backoff": {"base": 1, "base": 2}}', "base", "more than once", False),
            (b'{"max-running": 3, "max-rate": -1}', "max-rate", "max-rate", True),
        ]
        for body, field, words, refusedBySchema in cases:
            if refusedBySchema:
                self.assertRaises(jsonschema.ValidationError, jsonschema.validate, json.loads(body), schema)
            error = self.patch(b"fragile", body, 400)
            self.assertNotIn("\n", error["error"])
            self.assertIn(words, error["error"], body[:100])
            self.assertEqual(error.get("field"), field, body[:100])
        self.assertEqual(self.get(b"fragile"), before)
        self.assertEqual(self.server.policyChanges(b"fragile"), {"max-running": 2})
        for body in (b'{"max-running": 3}', b'{"backoff": {"base": 1}}', b'{"max-rate": null}', b"{}"):
            jsonschema.validate(json.loads(body), schema)

    def test_refusedByServer(self) -> None:
        """
        A change the job server refuses (L{PoliciesError}) is answered 400
        with its reason, never as an internal error.
        """

        def refuse(name: bytes, changes: Dict[str, Any]) -> Any:
            raise PoliciesError("the change of f: no")

        self.server.changePolicy = refuse  # type: ignore[method-assign]
        self.assertEqual(self.patch(b"f", {"max-running": 1}, 400), {"error": "the change of f: no"})


class DeadLetterGuardTests(DeadLetterTestCase):
    """
    Retrying and purging dead letters, and changing or resetting a policy,
    go through the checks every write does; listing a function's dead
    letters, which hold jobs' data, needs the token too; the counts and
    the policy are open reads.
    """

    def siteOptions(self) -> Dict[str, Any]:
        return {"policy": AccessPolicy(token=b"s3cret"), "local": _LOOPBACK}

    host = b"Host: 127.0.0.1:8080"

    def guarded(self, *headers: bytes) -> List[bytes]:
        return [
            request(b"GET", b"/api/functions/f/deadletters", self.host, *headers),
            request(b"POST", b"/api/functions/f/deadletters/retry", self.host, *headers),
            request(b"POST", b"/api/functions/f/deadletters/purge", self.host, *headers, body=b'{"ids": [1]}'),
            request(b"PATCH", b"/api/functions/f/policy", self.host, *headers, body=b'{"max-running": 1}'),
            request(b"DELETE", b"/api/functions/f/policy", self.host, *headers),
        ]

    def assertUntouched(self) -> None:
        self.clock.advance(0)
        self.assertEqual(self.ids(b"f"), self.kept)
        self.assertEqual(self.server.jobCount(), 0)
        self.assertEqual(self.server.policyChanges(b"f"), {"max-rate": 5})

    def setUp(self) -> None:
        super().setUp()
        self.kill(b"f")
        self.kept = self.ids(b"f")
        self.server.changePolicy(b"f", {"max-rate": 5})

    def test_token(self) -> None:
        """
        Without the token, or with a wrong one: 401 with
        C{WWW-Authenticate: Bearer}, counted, and nothing done.
        """
        for headers in ((), (b"Authorization: Bearer s3creT",), (b"Authorization: Basic czNjcmV0",)):
            for data in self.guarded(*headers):
                response = self.answer(self.harness, data)
                self.assertRefused(response, 401, "token")
                self.assertTrue(response.headers[b"www-authenticate"].startswith(b"Bearer"))
                self.assertEqual(response.headers[b"content-type"], b"application/json")
        self.assertUntouched()
        self.assertEqual(self.harness.site.resource.policy.refused["token"], 15)

    def test_rightToken(self) -> None:
        """
        With the token, each is served.
        """
        responses = [self.answer(self.harness, data) for data in self.guarded(b"Authorization: Bearer s3cret")]
        self.assertEqual([response.code for response in responses], [200] * 5)
        self.assertEqual(self.server.jobCount(), 1)
        self.assertEqual(responses[3].json()["changed"], {"max-rate": 5, "max-running": 1})
        self.assertEqual(responses[4].json()["reset"], True)
        self.assertEqual(self.server.policyChanges(b"f"), {})

    def test_readsOpen(self) -> None:
        """
        The counts and a function's policy need no token, even asked from
        another origin.
        """
        for path in (b"/api/deadletters", b"/api/functions/f/policy"):
            response = self.answer(
                self.harness, request(b"GET", path, self.host, b"Origin: http://evil.example")
            )
            self.assertEqual(response.code, 200, path)

    def test_otherOrigin(self) -> None:
        """
        Retrying, purging, or changing or resetting a policy from a page of
        another origin is refused with 403, even with the token.
        """
        token = b"Authorization: Bearer s3cret"
        for header in (b"Origin: http://evil.example", b"Sec-Fetch-Site: cross-site"):
            for data in self.guarded(token, header)[1:]:
                response = self.answer(self.harness, data)
                self.assertRefused(response, 403, "origin" if header.startswith(b"Origin") else "cross-site")
        self.assertUntouched()

    def test_foreignHost(self) -> None:
        """
        A Host that is not a name of this server is refused on every route.
        """
        host = b"Host: evil.example"
        token = b"Authorization: Bearer s3cret"
        for method, path in (
            (b"GET", b"/api/deadletters"),
            (b"GET", b"/api/functions/f/deadletters"),
            (b"POST", b"/api/functions/f/deadletters/retry"),
            (b"POST", b"/api/functions/f/deadletters/purge"),
            (b"GET", b"/api/functions/f/policy"),
            (b"PATCH", b"/api/functions/f/policy"),
            (b"DELETE", b"/api/functions/f/policy"),
        ):
            response = self.answer(self.harness, request(method, path, host, token))
            self.assertRefused(response, 403, "Host evil.example")
        self.assertUntouched()


#: Results kept a minute, three per function; C{window}'s completed jobs
#: answer submissions with their unique key for 30 seconds.
_RESULT_POLICIES = """
[default]
keep-results = 60
results = 3

[functions.window]
unique-window = 30
"""


class StoredResultTestCase(DeadLetterTestCase):
    """
    A site whose job server keeps results (L{_RESULT_POLICIES}), and ways
    to end jobs and to read their results over HTTP.
    """

    results = "/api/results/{handle}"
    uniqueResult = "/api/unique/{unique}/result"

    def setUp(self) -> None:
        super().setUp()
        self.server.setPolicies(Policies.fromText(_RESULT_POLICIES))
        self.worker = Conn(self.server)

    def end(self, name: bytes, how: str, data: bytes = b"r", unique: bytes = b"") -> bytes:
        """
        Submit a background job to C{name} and have a worker take it and,
        two seconds later, end it C{how}: C{"complete"} with C{data},
        C{"fail"}, or C{"exception"} with C{data}.

        @return: its handle.
        """
        handle = self.client.created(name, unique=unique, background=True)
        self.worker.canDo(name)
        self.assertEqual(self.worker.take()[0], handle)
        self.clock.advance(2)
        if how == "complete":
            self.worker.complete(handle, data)
        elif how == "fail":
            self.worker.fail(handle)
        else:
            self.worker.exception(handle, data)
        return handle

    def result(self, handle: bytes, code: int = 200, *headers: bytes) -> Any:
        return self.call(b"GET", b"/api/results/" + handle, self.results, code, *headers)

    def resultOfUnique(self, unique: bytes, code: int = 200, *headers: bytes) -> Any:
        return self.call(b"GET", b"/api/unique/%s/result" % (unique,), self.uniqueResult, code, *headers)


class StoredResultRouteTests(StoredResultTestCase):
    """
    C{GET /api/results/HANDLE} and C{GET /api/unique/UNIQUE/result} answer
    what the C{result} admin command answers: a live job's state, else its
    stored result, else 404.
    """

    def test_unknown(self) -> None:
        """
        A job the server neither runs nor keeps a result of is 404 with a
        JSON reason, by handle or unique key; nothing is created.
        """
        for handle in (b"T:99", b"nothing", b"%00", b"a%2Fb"):
            answer = self.result(handle, 404)
            self.assertIn("no such job", answer["error"])
        for unique in (b"u", b"-", b"%00"):
            self.assertIn("no such job", self.resultOfUnique(unique, 404)["error"])
        self.assertEqual(self.server.functions, {})
        # A job's status stays as GET_STATUS answers it: 200, unknown.
        self.assertFalse(self.call(b"GET", b"/api/jobs/T:99", "/api/jobs/{handle}", 200)["known"])
        self.assertEqual(self.call(b"GET", b"/api/unique/", "/api/unique/{unique}", 200)["known"], False)
        self.resultOfUnique(b"", 404)

    def test_live(self) -> None:
        """
        A live job is C{queued}, then C{running} once a worker took it,
        without data or times.
        """
        handle = self.client.created(b"f", unique=b"u1", data=b"secret", background=True)
        queued = {"function": "f", "handle": handle.decode(), "unique": "u1", "outcome": "queued"}
        self.assertEqual(self.result(handle), queued)
        self.assertEqual(self.resultOfUnique(b"u1"), queued)
        self.worker.canDo(b"f")
        self.worker.take()
        running = dict(queued, outcome="running")
        self.assertEqual(self.result(handle), running)
        self.assertEqual(self.resultOfUnique(b"u1"), running)

    def test_complete(self) -> None:
        """
        A completed job's result: its data as bytes are everywhere in the
        API (base64, and text when UTF-8), when it ended and until when it
        is kept (epoch seconds).
        """
        handle = self.end(b"f", "complete", b"caf\xc3\xa9", unique=b"u1")
        expected = {
            "function": "f",
            "handle": handle.decode(),
            "unique": "u1",
            "outcome": "complete",
            "data": {"base64": "Y2Fmw6k=", "text": "caf\u00e9"},
            "finished": 1002.0,
            "expires": 1062.0,
        }
        self.assertEqual(self.result(handle), expected)
        self.assertEqual(self.resultOfUnique(b"u1"), expected)

    def test_binary(self) -> None:
        """
        Data that is not UTF-8 is given in base64 only, whole.
        """
        data = bytes(range(256)) + b"\xff\x00"
        handle = self.end(b"f", "complete", data)
        answer = self.result(handle)
        self.assertEqual(list(answer["data"]), ["base64"])
        self.assertEqual(base64.b64decode(answer["data"]["base64"]), data)

    def test_failAndException(self) -> None:
        """
        A failed job's result is C{fail} with the worker's words (none for
        a bare WORK_FAIL); an exception's is C{exception} with its data.
        """
        failed = self.end(b"f", "fail", unique=b"u1")
        raised = self.end(b"g", "exception", b"disk \xff full", unique=b"u2")
        answer = self.result(failed)
        self.assertEqual((answer["outcome"], answer["data"]), ("fail", {"base64": "", "text": ""}))
        answer = self.resultOfUnique(b"u2")
        self.assertEqual(
            (answer["function"], answer["handle"], answer["outcome"], answer["data"]),
            ("g", raised.decode(), "exception", {"base64": base64.b64encode(b"disk \xff full").decode()}),
        )

    def test_expired(self) -> None:
        """
        Once it expires, a result is 404, as an unknown job.
        """
        handle = self.end(b"f", "complete", unique=b"u1")
        self.clock.advance(59.5)
        self.assertEqual(self.result(handle)["outcome"], "complete")
        self.clock.advance(1)
        self.result(handle, 404)
        self.resultOfUnique(b"u1", 404)

    def test_liveFirst(self) -> None:
        """
        By unique key, the newest job wins: a live job with the key before
        an ended one's result, whose handle still finds that result.
        """
        ended = self.end(b"f", "complete", b"old", unique=b"u1")
        live = self.client.created(b"f", unique=b"u1", background=True)
        self.assertNotEqual(live, ended)
        self.assertEqual(
            self.resultOfUnique(b"u1"),
            {"function": "f", "handle": live.decode(), "unique": "u1", "outcome": "queued"},
        )
        self.assertEqual(self.result(ended)["data"], {"base64": "b2xk", "text": "old"})

    def test_encoded(self) -> None:
        """
        The handle and the key are one percent-decoded path segment each.
        """
        handle = self.end(b"f", "complete", unique=b"a/b c")
        self.assertEqual(self.resultOfUnique(b"a%2Fb%20c")["handle"], handle.decode())
        self.assertEqual(self.result(handle.replace(b":", b"%3A"))["unique"], "a/b c")

    def test_sameAsAdmin(self) -> None:
        """
        Every field is the C{result} admin command's, for every outcome,
        by handle and by unique key.
        """
        handles = [
            self.end(b"f", "complete", b"\x00\xffdata", unique=b"u1"),
            self.end(b"f", "fail", unique=b"u2"),
            self.end(b"g", "exception", b"boom", unique=b"u3"),
            self.client.created(b"h", unique=b"u4", background=True),
        ]
        admin = AdminCommands(self.server)
        peer = Conn(self.server).peer
        for n, handle in enumerate(handles, 1):
            unique = b"u%d" % (n,)
            for line, answer in (
                (b"result " + handle, self.result(handle)),
                (b"result unique " + unique, self.resultOfUnique(unique)),
            ):
                reply = admin.execute(peer, line)
                assert isinstance(reply, bytes)
                lines = reply.split(b"\n")
                self.assertEqual(lines[-2:], [b".", b""])
                shown: Dict[str, str] = {}
                for item in lines[:-2]:
                    key, _, value = item.decode().partition(" ")
                    shown[key] = shown.get(key, "") + value
                self.assertEqual(
                    [answer["function"], answer["handle"], answer["unique"], answer["outcome"]],
                    [shown["function"], shown["handle"], shown["unique"], shown["outcome"]],
                )
                if "finished" in shown:
                    self.assertEqual("%.3f" % (answer["finished"],), shown["finished"])
                    self.assertEqual("%.3f" % (answer["expires"],), shown["expires"])
                    self.assertEqual(answer["data"]["base64"], shown.get("data", ""))
                else:
                    self.assertNotIn("data", answer)

    def test_functionCounters(self) -> None:
        """
        C{GET /api/functions} counts per function the results it keeps
        and the submissions answered from one within the unique window.
        """
        for n in range(4):
            self.end(b"f", "complete", unique=b"f%d" % (n,))
        self.end(b"window", "complete", unique=b"w")
        self.assertEqual(self.client.submit(b"window", unique=b"w", background=True)[0][0], P.JOB_CREATED)
        self.client.created(b"idle", background=True)
        functions = self.call(b"GET", b"/api/functions", "/api/functions", 200)
        self.assertEqual(
            {f["name"]: (f["stored_results"], f["answered_from_results"]) for f in functions},
            {"f": (3, 0), "window": (1, 1), "idle": (0, 0)},
        )


class StoredResultGuardTests(StoredResultTestCase):
    """
    A result holds a job's data: with a token both routes need it, as a
    function's dead letters do, whether the job is known or not.
    """

    host = b"Host: 127.0.0.1:8080"

    def siteOptions(self) -> Dict[str, Any]:
        return {"policy": AccessPolicy(token=b"s3cret"), "local": _LOOPBACK}

    def setUp(self) -> None:
        super().setUp()
        self.handle = self.end(b"f", "complete", b"secret", unique=b"u1")

    def reads(self, *headers: bytes) -> List[bytes]:
        return [
            request(b"GET", b"/api/results/" + self.handle, self.host, *headers),
            request(b"GET", b"/api/results/T:99", self.host, *headers),
            request(b"GET", b"/api/unique/u1/result", self.host, *headers),
            request(b"GET", b"/api/unique/nothing/result", self.host, *headers),
        ]

    def test_token(self) -> None:
        """
        Without the token, or with a wrong one: 401 with
        C{WWW-Authenticate: Bearer}, counted, for known and unknown jobs
        alike, and no data.
        """
        for headers in ((), (b"Authorization: Bearer s3creT",), (b"Authorization: Basic czNjcmV0",)):
            for data in self.reads(*headers):
                response = self.answer(self.harness, data)
                self.assertRefused(response, 401, "token")
                self.assertTrue(response.headers[b"www-authenticate"].startswith(b"Bearer"))
                self.assertNotIn(b"c2VjcmV0", response.body)
        self.assertEqual(self.harness.site.resource.policy.refused["token"], 12)

    def test_rightToken(self) -> None:
        """
        With the token, each is answered: the result, or 404.
        """
        codes = [self.answer(self.harness, data).code for data in self.reads(b"Authorization: Bearer s3cret")]
        self.assertEqual(codes, [200, 404, 200, 404])

    def test_foreignHost(self) -> None:
        """
        A Host that is not a name of this server is refused, token or not.
        """
        for data in self.reads(b"Authorization: Bearer s3cret"):
            response = self.answer(self.harness, data.replace(self.host, b"Host: evil.example"))
            self.assertRefused(response, 403, "Host evil.example")

    def test_statusOpen(self) -> None:
        """
        A job's status, which holds no data, stays an open read.
        """
        response = self.answer(self.harness, request(b"GET", b"/api/jobs/" + self.handle, self.host))
        self.assertEqual(response.code, 200)


class DeadLetterSizeTests(DeadLetterTestCase):
    """
    C{GET /api/functions/NAME/deadletters} is made a bounded number of
    bytes per reactor turn, however large the letters, and can be asked
    for only the newest letters (C{limit}) and the start of their data
    (C{data}).
    """

    template = "/api/functions/{name}/deadletters"

    def setUp(self) -> None:
        super().setUp()
        self.server.setPolicies(Policies.fromText("[default]\ndead-letters = 100\n"))

    def get(self, query: bytes) -> Response:
        return self.answer(self.harness, request(b"GET", b"/api/functions/f/deadletters?" + query, b"Host: x"))

    def test_largeLettersTakeSeveralTurns(self) -> None:
        """
        Four letters of 1 MiB each (about 10 MB of JSON) are sent over
        several reactor turns, each writing about a megabyte, and the
        list is whole.
        """
        for n in range(4):
            self.kill(b"f", data=b"%d" % (n,) * (1 << 20))
        channel, transport = self.harness.connect()
        channel.dataReceived(request(b"GET", b"/api/functions/f/deadletters", b"Host: x"))
        written = [len(transport.value())]
        while self.clock.calls:
            # One reactor turn: the first call due, alone.
            call = self.clock.calls.pop(0)
            call.called = 1
            call.func(*call.args, **call.kw)
            written.append(len(transport.value()))
        steps = [after - before for before, after in zip(written, written[1:])]
        self.assertGreaterEqual(len(steps), 8, steps)
        self.assertLess(max(written[0], *steps), 3 << 19, steps)
        [response] = parseResponses(transport.value())
        letters = response.json()
        self.assertEqual([letter["data"]["text"] for letter in letters], ["%d" % (n,) * (1 << 20) for n in range(4)])
        self.assertEqual(
            [base64.b64decode(letter["data"]["base64"]) for letter in letters],
            [b"%d" % (n,) * (1 << 20) for n in range(4)],
        )

    def test_limit(self) -> None:
        """
        C{limit=N} lists the newest N letters, oldest first; C{0} none,
        more than the function keeps all of them.
        """
        for n in range(5):
            self.kill(b"f", data=b"%d" % (n,))
        ids = self.ids(b"f")
        for query, expected in (
            (b"limit=2", ids[3:]),
            (b"limit=0", []),
            (b"limit=9", ids),
            (b"limit=05", ids),
            (b"limit=" + b"9" * 30, ids),
            (b"limit=" + b"0" * 30 + b"1", ids[4:]),
        ):
            response = self.get(query)
            self.assertEqual(response.code, 200, response.body)
            self.assertEqual([letter["id"] for letter in response.json()], expected, query)
        [letter] = self.get(b"limit=1").json()
        self.assertEqual(letter["data"], {"base64": "NA==", "text": "4"})
        self.assertNotIn("data_size", letter)

    def test_data(self) -> None:
        """
        C{data=N} sends at most N bytes of each letter's data, cut between
        characters of UTF-8 text (so it keeps its C{text}), with the whole
        data's size and whether it was cut; the error is whole.
        """
        self.kill(b"f", data=b"caf\xc3\xa9!", error=b"e" * 50)
        self.kill(b"f", data=b"\xff\x00\xff")
        self.kill(b"f", data=b"ok")
        described = {}
        for n in (0, 1, 4, 5, 6, 7):
            response = self.get(b"data=%d" % (n,))
            self.assertEqual(response.code, 200, response.body)
            described[n] = [
                (letter["data"], letter["data_size"], letter["truncated"]) for letter in response.json()
            ]
            self.assertEqual(response.json()[0]["error"]["text"], "e" * 50)
        self.assertEqual(
            described[0],
            [
                ({"base64": "", "text": ""}, 6, True),
                ({"base64": "", "text": ""}, 3, True),
                ({"base64": "", "text": ""}, 2, True),
            ],
        )
        self.assertEqual(
            described[1],
            [
                ({"base64": "Yw==", "text": "c"}, 6, True),
                ({"base64": "/w=="}, 3, True),
                ({"base64": "bw==", "text": "o"}, 2, True),
            ],
        )
        self.assertEqual(described[4][0], ({"base64": "Y2Fm", "text": "caf"}, 6, True))
        self.assertEqual(described[5][0], ({"base64": "Y2Fmw6k=", "text": "caf\u00e9"}, 6, True))
        self.assertEqual(described[6][0], ({"base64": "Y2Fmw6kh", "text": "caf\u00e9!"}, 6, False))
        self.assertEqual(
            described[7][1:], [({"base64": "/wD/"}, 3, False), ({"base64": "b2s=", "text": "ok"}, 2, False)]
        )
        [letter] = self.get(b"limit=1&data=1").json()
        self.assertEqual((letter["data"], letter["truncated"]), ({"base64": "bw==", "text": "o"}, True))

    def test_badParameters(self) -> None:
        """
        A C{limit} or C{data} that is not a whole number of at least 0 in
        decimal digits, or given twice, is answered 400 with the reason
        and the parameter; other parameters are ignored.
        """
        self.kill(b"f")
        for query, field in (
            (b"limit=-1", "limit"),
            (b"limit=", "limit"),
            (b"limit=abc", "limit"),
            (b"limit=1.5", "limit"),
            (b"limit=%201", "limit"),
            (b"limit=1&limit=2", "limit"),
            (b"data=1e3", "data"),
            (b"data=%D9%A3", "data"),
            (b"limit=1&data=x", "data"),
        ):
            response = self.get(query)
            self.assertEqual(response.code, 400, query)
            self.assertEqual(response.headers[b"content-type"], b"application/json")
            self.assertEqual(response.json()["field"], field, query)
            self.assertIn(field, response.json()["error"])
        response = self.get(b"other=x")
        self.assertEqual((response.code, len(response.json())), (200, 1))


class ReplayingTests(SecurityTestCase):
    """
    While the server replays its persistent queue (as the Gearman port
    accepts nothing), every request is answered 503 with Retry-After, and
    changes nothing: a policy changed then would be overwritten by the
    stored ones, a job submitted then would race the replay.
    """

    def test_unavailable(self) -> None:
        harness = SiteHarness()
        harness.server.replaying = True
        for data in (
            request(b"GET", b"/api/functions/f/policy", b"Host: x"),
            request(b"PATCH", b"/api/functions/f/policy", b"Host: x", body=b'{"max-running": 2}'),
            request(b"POST", b"/api/jobs", b"Host: x", body=b'{"function": "f", "background": true}'),
            post(b"/f", b"x"),
            request(b"GET", b"/metrics", b"Host: x"),
            request(b"GET", b"/", b"Host: x"),
        ):
            response = self.answer(harness, data)
            self.assertRefused(response, 503, "the server is starting: it is replaying its persistent queue")
            self.assertEqual(response.headers[b"retry-after"], b"1")
        self.assertEqual(harness.server.policyChanges(b"f"), {})
        self.assertNothingSubmitted(harness)
        harness.server.replaying = False
        self.assertEqual(self.answer(harness, request(b"GET", b"/api/functions/f/policy", b"Host: x")).code, 200)


class StoredAnswerTests(SecurityTestCase):
    """
    With a persistent queue, the routes that change what it keeps answer
    once it has the change: an answer means it survives a crash.
    """

    def test_patchWaits(self) -> None:
        from twisted.internet.defer import Deferred

        from tests.test_server_lifecycle_store import letter
        from tests.test_server_persistence import FakeQueue

        queue = FakeQueue()
        keeping: Deferred[None] = Deferred()
        queue.keeping = keeping
        harness = SiteHarness(queue=queue)
        harness.server.restoreDeadLetters([(b"4", letter(4).encode())])
        for data in (
            request(b"PATCH", b"/api/functions/f/policy", b"Host: x", body=b'{"max-running": 2}'),
            request(b"POST", b"/api/functions/f/deadletters/purge", b"Host: x"),
        ):
            responses, transport = harness.send(data)
            self.assertEqual(responses, [])
            pending = transport
        keeping.callback(None)
        harness.clock.advance(0)
        [response] = parseResponses(pending.value())
        self.assertEqual((response.code, response.json()["purged"]), (200, 1))
        self.assertEqual(harness.server.policyOf(b"f").maxRunning, 2)

    def test_clientGone(self) -> None:
        """
        A client that went while its answer waited is answered nothing
        (and nothing fails).
        """
        from twisted.internet.defer import Deferred
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        from tests.test_server_persistence import FakeQueue

        queue = FakeQueue()
        keeping: Deferred[None] = Deferred()
        queue.keeping = keeping
        harness = SiteHarness(queue=queue)
        channel, transport = harness.connect()
        channel.dataReceived(request(b"PATCH", b"/api/functions/f/policy", b"Host: x", body=b'{"time-limit": 1}'))
        channel.connectionLost(Failure(ConnectionDone()))
        keeping.callback(None)
        harness.clock.advance(0)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(harness.server.policyOf(b"f").timeLimit, 1.0)
