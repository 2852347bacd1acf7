"""
Tests for L{gearman_tw.server.http} and L{gearman_tw.server.web}: the
request body limit, enforced while the request arrives, and the JSON API's
answers to malformed input, through a real L{Site} over a L{StringTransport}.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

import jsonschema
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site

from gearman_tw import tap
from gearman_tw.server.http import DEFAULT_MAX_BODY
from gearman_tw.server.jobs import HIGH, LOW, NORMAL, JobServer
from gearman_tw.server.web import makeResource, makeSite

_DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
with open(os.path.join(_DOCS, "openapi.json")) as f:
    SPEC = json.load(f)

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

    def __init__(self, **kwargs: Any) -> None:
        self.clock = Clock()
        self.server = JobServer(self.clock, handlePrefix=b"T")
        self.site = makeSite(self.server, self.clock, noWorkerTimeout=5, **kwargs)
        self.requests: List[Any] = []
        factory = self.site.requestFactory

        def keep(*args: Any, **kw: Any) -> Any:
            request = factory(*args, **kw)
            self.requests.append(request)
            return request

        self.site.requestFactory = keep

    def connect(self) -> Tuple[Any, StringTransport]:
        channel = self.site.buildProtocol(_ADDRESS)
        transport = StringTransport(peerAddress=_ADDRESS)
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
        self.assertEqual([server.lookup(b"T:%d" % n).data for n in (1, 2)], [b"a" * 1000, body])
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
        for path, code in ((b"/f", 413), (b"/api/jobs", 413)):
            channel = site.buildProtocol(_ADDRESS)
            transport = StringTransport(peerAddress=_ADDRESS)
            channel.makeConnection(transport)
            channel.dataReceived(post(path, b'{"function": "f", "data": "xxxxxxx"}'))
            [response] = parseResponses(transport.value())
            self.assertEqual(response.code, code)
        self.assertEqual(server.jobCount(), 0)


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
            ({"function": "b", "data_base64": "AAE=", "data": "ignored", "background": True}, (b"b", b"", b"\0\1", NORMAL)),
            ({"function": "c", "unique": "u", "priority": "high", "background": True}, (b"c", b"u", b"", HIGH)),
            ({"function": "d", "priority": "low", "background": True}, (b"d", b"", b"", LOW)),
            ({"function": "e", "unique": "", "priority": "normal", "background": True}, (b"e", b"", b"", NORMAL)),
        ]
        for spec, (name, unique, data, priority) in cases:
            jsonschema.validate(spec, self.submitSchema)
            response = self.submit(json.dumps(spec).encode())
            self.assertEqual(response.code, 202)
            job = server.lookup(response.json()["handle"].encode())
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
