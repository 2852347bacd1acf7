"""
Tests for L{gearman_tw.server.sliced} and the HTTP listings that use it:
C{/metrics}, C{/api/functions} and C{/api/workers} of a large server are
made a slice per reactor turn.
"""

from __future__ import annotations

import json
from typing import List

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from gearman_tw.server import sliced
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.metrics import JobServerCollector, MetricsResource
from gearman_tw.server.model import HIGH, NORMAL
from gearman_tw.server.packets import PacketPeer
from gearman_tw.server.web import makeResource


class TurnClock(Clock):
    """
    A L{Clock} whose L{turn} runs the calls due now, but not those they
    schedule, as one turn of a real reactor does.
    """

    def turn(self) -> None:
        due = [call for call in self.calls if call.getTime() <= self.seconds()]
        for call in due:
            if call.active():
                self.calls.remove(call)
                call.func(*call.args, **call.kw)


class StreamingRequest(DummyRequest):
    """
    A L{DummyRequest} that records a push producer instead of pulling from
    it in a loop.

    It stands in for the L{twisted.web.server.Request} that the resources
    and L{sliced} are annotated with, without being one: hence the
    C{type: ignore[arg-type]} where one is passed.
    """

    producer = None

    def registerProducer(self, producer, streaming):  # type: ignore[no-untyped-def]
        assert streaming
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None


class SlicedBodyTests(SynchronousTestCase):
    """
    L{sliced.SlicedBody} writes a chunk per reactor turn, waits while
    paused, finishes at the end and stops when the request goes.
    """

    def setUp(self) -> None:
        self.clock = TurnClock()
        self.request = StreamingRequest([b""])
        self.made: List[int] = []

        def chunks():  # type: ignore[no-untyped-def]
            for number in range(5):
                self.made.append(number)
                yield b"%d" % (number,)

        self.body = sliced.SlicedBody(self.request, chunks(), self.clock)  # type: ignore[arg-type]

    def test_turns(self) -> None:
        self.body.start()
        self.assertIs(self.request.producer, self.body)
        self.assertEqual(self.made, [])
        self.clock.turn()
        self.assertEqual(self.request.written, [b"0"])
        self.clock.turn()
        self.assertEqual(self.request.written, [b"0", b"1"])
        for _ in range(4):
            self.clock.turn()
        self.assertEqual(b"".join(self.request.written), b"01234")
        self.assertEqual(self.request.finished, 1)
        self.assertIsNone(self.request.producer)

    def test_paused(self) -> None:
        """
        While the consumer has paused it, nothing is made.
        """
        self.body.start()
        self.clock.turn()
        self.body.pauseProducing()
        for _ in range(10):
            self.clock.turn()
        self.assertEqual(self.made, [0])
        self.body.resumeProducing()
        for _ in range(10):
            self.clock.turn()
        self.assertEqual(self.made, [0, 1, 2, 3, 4])

    def test_lost(self) -> None:
        """
        Once the request is gone, nothing more is made or written.
        """
        self.body.start()
        self.clock.turn()
        self.request.processingFailed(Exception("gone"))  # type: ignore[arg-type]
        for _ in range(10):
            self.clock.turn()
        self.assertEqual(self.made, [0])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_small(self) -> None:
        """
        A small body is answered at once.
        """
        self.assertEqual(
            sliced.render(self.request, [b"a", b"b"], self.clock, small=True), b"ab"  # type: ignore[arg-type]
        )


def _server(functions: int) -> JobServer:
    clock = TurnClock()
    server = JobServer(clock, handlePrefix=b"H")
    client = PacketPeer(lambda data: None, 1, "127.0.0.1")
    server.peerConnected(client)
    for number in range(functions):
        server.submit(client, b'f"%d\n' % (number,), b"", b"x", HIGH if number % 2 else NORMAL, True)
    return server


def _drain(clock: TurnClock, request: DummyRequest, turns: int) -> int:
    """
    Advance C{clock} a turn at a time until C{request} is finished; the
    turns it took.
    """
    for turn in range(turns):
        if request.finished:
            return turn
        clock.turn()
    raise AssertionError("not finished in %d turns" % (turns,))


class SlicedListingTests(SynchronousTestCase):
    """
    With more functions than a slice, C{/metrics} and C{/api/functions}
    answer over several reactor turns, with the same content.
    """

    def test_metrics(self) -> None:
        """
        Every function's samples are there, label values escaped, and the
        server-wide families after them.
        """
        count = sliced.SLICE * 2 + 10
        server = _server(count)
        request = StreamingRequest([b""])
        body = MetricsResource(JobServerCollector(server)).render_GET(request)  # type: ignore[arg-type]
        self.assertEqual(body, NOT_DONE_YET)
        self.assertEqual(request.written, [])
        turns = _drain(server.reactor, request, 1000)  # type: ignore[arg-type]
        self.assertGreater(turns, 10)
        found = {}
        for family in text_string_to_metric_families(b"".join(request.written).decode("utf-8")):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        for number in (0, 1, count - 1):
            name = 'f"%d\n' % (number,)
            priority = "high" if number % 2 else "normal"
            self.assertEqual(
                found[("gearman_jobs_submitted_total", (("function", name), ("priority", priority)))], 1
            )
            self.assertEqual(found[("gearman_queue_depth", (("function", name), ("priority", priority)))], 1)
            self.assertEqual(found[("gearman_workers", (("function", name),))], 0)
        self.assertEqual(found[("gearman_jobs", ())], count)
        self.assertEqual(len([key for key in found if key[0] == "gearman_jobs_running"]), count)

    def test_functions(self) -> None:
        """
        C{/api/functions} is one JSON array of every function.
        """
        count = sliced.SLICE * 2 + 10
        server = _server(count)
        root = makeResource(server, server.reactor)  # type: ignore[arg-type]
        request = StreamingRequest([b"functions"])
        request.prepath = [b"api"]
        result = root.api.render(request)  # type: ignore[arg-type]
        self.assertEqual(result, NOT_DONE_YET)
        _drain(server.reactor, request, 100)  # type: ignore[arg-type]
        functions = json.loads(b"".join(request.written))
        self.assertEqual(len(functions), count)
        self.assertEqual(functions[1]["name"], 'f"1\n')
        self.assertEqual(functions[1]["queued_by_priority"], {"high": 1, "low": 0, "normal": 0})

    def test_fewAtOnce(self) -> None:
        """
        A few functions are answered at once, as before.
        """
        server = _server(3)
        request = StreamingRequest([b""])
        body = MetricsResource(JobServerCollector(server)).render_GET(request)  # type: ignore[arg-type]
        assert isinstance(body, bytes)
        self.assertIn(b'gearman_workers{function="f\\"2\\n"} 0\n', body)
