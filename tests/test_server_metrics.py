"""
Tests for L{gearman_tw.server.metrics} and L{gearman_tw.server.stats}.
"""

import re
from typing import Dict, List, Sequence, Tuple

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from gearman_tw.server import sliced
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.lifecycle import Policies
from gearman_tw.server.metrics import JobServerCollector, MetricsResource, functionSamples
from gearman_tw.server.model import ASSIGN, HIGH, LOW, NORMAL
from gearman_tw.server.packets import PacketPeer
from gearman_tw.server.stats import DEFAULT_BUCKETS, Histogram
from tests.test_server_jobs import Conn


def samples(text: str) -> dict:
    """
    {(sample name, sorted label items): value} from an exposition.
    """
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


class MetricsTests(SynchronousTestCase):
    """
    /metrics after a known workload.
    """

    def test_workload(self) -> None:
        """
        Submissions per priority, endings, queue depth, running jobs,
        workers, connections and the wait/run histograms add up.
        """
        clock = Clock()
        server = JobServer(clock, handlePrefix=b"H")
        out: list = []
        client = PacketPeer(out.append, 1, "127.0.0.1", exceptions=True)
        worker = PacketPeer(out.append, 2, "127.0.0.1")
        server.peerConnected(client)
        server.peerConnected(worker)
        server.canDo(worker, b"f")
        for priority in (HIGH, HIGH, NORMAL, LOW):
            server.submit(client, b"f", b"", b"x", priority, False)
        server.submit(client, b"g", b"", b"y", NORMAL, True)
        clock.advance(2)
        for handle, end in ((b"H:1", "complete"), (b"H:2", "fail"), (b"H:3", "exception")):
            server.grab(worker, ASSIGN)
            clock.advance(0.5)
            if end == "complete":
                server.workComplete(worker, handle, handle + b"\0ok")
            elif end == "fail":
                server.workFail(worker, handle)
            else:
                server.workException(worker, handle, handle + b"\0boom")
        server.grab(worker, ASSIGN)

        request = DummyRequest([b""])
        # A DummyRequest stands in for the Request render_GET is annotated with.
        body = MetricsResource(JobServerCollector(server)).render_GET(request)  # type: ignore[arg-type]
        assert isinstance(body, bytes)
        contentType = request.responseHeaders.getRawHeaders(b"content-type")
        assert contentType is not None
        self.assertTrue(contentType[0].startswith(b"text/plain"))
        found = samples(body.decode("utf-8"))
        f = (("function", "f"),)
        self.assertEqual(found[("gearman_jobs_submitted_total", (("function", "f"), ("priority", "high")))], 2)
        self.assertEqual(found[("gearman_jobs_submitted_total", (("function", "f"), ("priority", "low")))], 1)
        self.assertEqual(found[("gearman_jobs_submitted_total", (("function", "g"), ("priority", "normal")))], 1)
        self.assertEqual(found[("gearman_jobs_completed_total", f)], 1)
        self.assertEqual(found[("gearman_jobs_failed_total", f)], 1)
        self.assertEqual(found[("gearman_jobs_exception_total", f)], 1)
        self.assertEqual(found[("gearman_jobs_running", f)], 1)
        self.assertEqual(found[("gearman_workers", f)], 1)
        self.assertEqual(found[("gearman_queue_depth", (("function", "g"), ("priority", "normal")))], 1)
        self.assertEqual(found[("gearman_connections", ())], 2)
        self.assertEqual(found[("gearman_jobs", ())], 2)
        self.assertEqual(found[("gearman_job_wait_seconds_count", ())], 4)
        self.assertEqual(found[("gearman_job_run_seconds_count", ())], 3)
        self.assertEqual(found[("gearman_job_run_seconds_sum", ())], 1.5)
        self.assertEqual(found[("gearman_job_run_seconds_bucket", (("le", "0.25"),))], 0)
        self.assertEqual(found[("gearman_job_run_seconds_bucket", (("le", "0.5"),))], 3)
        self.assertEqual(found[("gearman_function_wait_seconds_count", f)], 4)
        self.assertEqual(found[("gearman_function_run_seconds_count", f)], 3)
        self.assertEqual(found[("gearman_function_run_seconds_sum", f)], 1.5)
        self.assertEqual(found[("gearman_function_run_seconds_bucket", (("function", "f"), ("le", "0.5")))], 3)
        self.assertNotIn(("gearman_function_wait_seconds_count", (("function", "g"),)), found)


class HistogramTests(SynchronousTestCase):
    """
    Tests for L{Histogram}.
    """

    def test_cumulative(self) -> None:
        """
        Buckets are upper-inclusive and cumulative, with +Inf last.
        """
        histogram = Histogram((1.0, 2.0))
        for value in (0.5, 1.0, 1.5, 3.0):
            histogram.observe(value)
        self.assertEqual(histogram.cumulative(), [("1.0", 2), ("2.0", 3), ("+Inf", 4)])
        self.assertEqual(histogram.total, 6.0)


def families(chunks: Sequence[bytes]) -> Dict[str, str]:
    """
    {family name: type} of an exposition made of C{chunks}.
    """
    return {family.name: family.type for family in text_string_to_metric_families(b"".join(chunks).decode("utf-8"))}


def buckets(found: dict, name: str, function: str) -> List[Tuple[str, float]]:
    """
    The (le, cumulative count) samples of C{function}'s histogram C{name},
    in bucket order, C{+Inf} last.
    """
    bounds = [repr(bound) for bound in DEFAULT_BUCKETS] + ["+Inf"]
    return [(le, found[(name + "_bucket", (("function", function), ("le", le)))]) for le in bounds]


def expected(values: Sequence[float]) -> List[Tuple[str, float]]:
    """
    The cumulative buckets of C{values} in L{DEFAULT_BUCKETS}, each bound
    inclusive, as L{buckets} reads them.
    """
    result = [(repr(bound), float(sum(1 for value in values if value <= bound))) for bound in DEFAULT_BUCKETS]
    return result + [("+Inf", float(len(values)))]


class FunctionHistogramTests(SynchronousTestCase):
    """
    C{gearman_function_wait_seconds} and C{gearman_function_run_seconds}:
    the wait and run time histograms per function.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.server = JobServer(
            self.clock, handlePrefix=b"H", policies=Policies.fromText("[functions.retried]\nretry-failures = true\n")
        )
        self.client = Conn(self.server)
        self.worker = Conn(self.server)

    def scrape(self) -> List[bytes]:
        """
        The chunks of the samples per function of the server's functions.
        """
        return list(functionSamples(list(self.server.functions.values())))

    def found(self) -> dict:
        """
        The samples per function, parsed as in L{samples}.
        """
        return samples(b"".join(self.scrape()).decode("utf-8"))

    def test_wait(self) -> None:
        """
        Each job a worker takes adds the time since its submission to its
        function's wait histogram, whether it was queued as a compact record
        (a background job) or as a job (a foreground one).
        """
        background = self.client.created(b"f", background=True)
        # Queued as a record: no job until a worker takes it.
        self.assertNotIn(background, self.server.jobs)
        self.client.created(b"f")
        self.client.created(b"other")
        self.worker.canDo(b"f")
        self.clock.advance(0.25)
        self.assertEqual(self.worker.take()[0], background)
        self.clock.advance(0.25)
        self.worker.take()
        self.client.created(b"f", background=True)
        self.clock.advance(400)
        self.worker.take()

        found = self.found()
        self.assertEqual(buckets(found, "gearman_function_wait_seconds", "f"), expected([0.25, 0.5, 400.0]))
        self.assertEqual(found[("gearman_function_wait_seconds_bucket", (("function", "f"), ("le", "0.1")))], 0)
        self.assertEqual(found[("gearman_function_wait_seconds_bucket", (("function", "f"), ("le", "0.25")))], 1)
        self.assertEqual(found[("gearman_function_wait_seconds_bucket", (("function", "f"), ("le", "300.0")))], 2)
        self.assertEqual(found[("gearman_function_wait_seconds_bucket", (("function", "f"), ("le", "+Inf")))], 3)
        self.assertEqual(found[("gearman_function_wait_seconds_sum", (("function", "f"),))], 400.75)
        self.assertEqual(found[("gearman_function_wait_seconds_count", (("function", "f"),))], 3)
        self.assertNotIn(("gearman_function_wait_seconds_count", (("function", "other"),)), found)
        # Server-wide, as before.
        self.assertEqual(self.server.stats.wait.total, 400.75)

    def test_run(self) -> None:
        """
        Each job its worker ends (completed, failed or with an exception)
        adds the time since it was taken to its function's run histogram.
        """
        self.worker.canDo(b"f", b"g")
        for seconds, end in ((0.25, self.worker.complete), (1.0, self.worker.fail), (60.0, self.worker.exception)):
            handle = self.client.created(b"f", background=True)
            self.assertEqual(self.worker.take()[0], handle)
            self.clock.advance(seconds)
            end(handle)
        handle = self.client.created(b"g")
        self.clock.advance(3.0)
        self.worker.take()
        self.clock.advance(0.002)
        self.worker.complete(handle)

        found = self.found()
        self.assertEqual(buckets(found, "gearman_function_run_seconds", "f"), expected([0.25, 1.0, 60.0]))
        self.assertEqual(found[("gearman_function_run_seconds_bucket", (("function", "f"), ("le", "0.25")))], 1)
        self.assertEqual(found[("gearman_function_run_seconds_bucket", (("function", "f"), ("le", "1.0")))], 2)
        self.assertEqual(found[("gearman_function_run_seconds_bucket", (("function", "f"), ("le", "30.0")))], 2)
        self.assertEqual(found[("gearman_function_run_seconds_bucket", (("function", "f"), ("le", "60.0")))], 3)
        self.assertEqual(found[("gearman_function_run_seconds_sum", (("function", "f"),))], 61.25)
        self.assertEqual(found[("gearman_function_run_seconds_count", (("function", "f"),))], 3)
        self.assertEqual(found[("gearman_function_run_seconds_bucket", (("function", "g"), ("le", "0.001")))], 0)
        self.assertEqual(found[("gearman_function_run_seconds_bucket", (("function", "g"), ("le", "0.0025")))], 1)
        self.assertEqual(found[("gearman_function_run_seconds_count", (("function", "g"),))], 1)
        self.assertEqual(found[("gearman_function_wait_seconds_sum", (("function", "g"),))], 3.0)

    def test_retriesCounted(self) -> None:
        """
        An attempt that ends in a retry (a failure its function's policy
        retries) counts in the run histogram like the one that ends the job.
        """
        self.worker.canDo(b"retried")
        handle = self.client.created(b"retried", background=True)
        self.worker.take()
        self.clock.advance(0.5)
        self.worker.fail(handle)
        self.assertEqual(self.worker.take()[0], handle)
        self.clock.advance(2.0)
        self.worker.complete(handle)

        function = self.server.functions[b"retried"]
        self.assertEqual((function.retried, function.completed), (1, 1))
        found = self.found()
        self.assertEqual(buckets(found, "gearman_function_run_seconds", "retried"), expected([0.5, 2.0]))
        self.assertEqual(found[("gearman_function_run_seconds_bucket", (("function", "retried"), ("le", "0.5")))], 1)
        self.assertEqual(found[("gearman_function_run_seconds_bucket", (("function", "retried"), ("le", "2.5")))], 2)
        self.assertEqual(found[("gearman_function_run_seconds_sum", (("function", "retried"),))], 2.5)
        self.assertEqual(found[("gearman_function_run_seconds_count", (("function", "retried"),))], 2)
        self.assertEqual(found[("gearman_function_wait_seconds_count", (("function", "retried"),))], 2)

    def test_lazy(self) -> None:
        """
        A function has no histogram until its first observation: none for
        one with a worker and a queued job, only the wait one for one whose
        job is still running; and nothing of theirs in the exposition but
        the families' C{HELP} and C{TYPE}.
        """
        self.worker.canDo(b"idle")
        self.client.created(b"queued", background=True)
        self.client.created(b"running", background=True)
        self.worker.canDo(b"running")
        self.worker.take()
        idle, queued, running = (self.server.functions[name] for name in (b"idle", b"queued", b"running"))
        self.assertEqual((idle.waitTimes, idle.runTimes), (None, None))
        self.assertEqual((queued.waitTimes, queued.runTimes), (None, None))
        self.assertIsInstance(running.waitTimes, Histogram)
        self.assertIsNone(running.runTimes)

        chunks = self.scrape()
        kinds = families(chunks)
        self.assertEqual(kinds["gearman_function_wait_seconds"], "histogram")
        self.assertEqual(kinds["gearman_function_run_seconds"], "histogram")
        text = b"".join(chunks)
        self.assertEqual(text.count(b"# TYPE gearman_function_wait_seconds histogram\n"), 1)
        self.assertEqual(text.count(b"# TYPE gearman_function_run_seconds histogram\n"), 1)
        self.assertNotIn(b"gearman_function_run_seconds_", text)
        self.assertEqual(
            set(re.findall(rb'gearman_function_wait_seconds_\w+\{function="([^"]*)"', text)), {b"running"}
        )

    def test_parses(self) -> None:
        """
        The exposition parses as histograms, with function names that need
        escaping kept; each has its cumulative buckets, C{+Inf} equal to
        its count, and its sum.
        """
        name = b'a"b\\c\nd'
        self.worker.canDo(name)
        handle = self.client.created(name)
        self.clock.advance(0.0005)
        self.worker.take()
        self.worker.complete(handle)

        parsed = {
            family.name: family
            for family in text_string_to_metric_families(b"".join(self.scrape()).decode("utf-8"))
        }
        wait = parsed["gearman_function_wait_seconds"]
        self.assertEqual(wait.type, "histogram")
        label = {"function": 'a"b\\c\nd'}
        values = {
            (sample.name, sample.labels.get("le")): sample.value
            for sample in wait.samples
            if sample.labels["function"] == label["function"]
        }
        self.assertEqual(values[("gearman_function_wait_seconds_bucket", "0.0005")], 1)
        self.assertEqual(values[("gearman_function_wait_seconds_bucket", "+Inf")], 1)
        self.assertEqual(values[("gearman_function_wait_seconds_count", None)], 1)
        self.assertEqual(values[("gearman_function_wait_seconds_sum", None)], 0.0005)
        self.assertEqual(len(values), len(DEFAULT_BUCKETS) + 3)
        run = parsed["gearman_function_run_seconds"]
        self.assertEqual(run.type, "histogram")
        self.assertIn(("gearman_function_run_seconds_count", label, 1.0), [s[:3] for s in run.samples])

    def test_sliced(self) -> None:
        """
        The histograms are written a slice of functions per chunk, like the
        other families per function.
        """
        self.patch(sliced, "SLICE", 2)
        names = [b"f%d" % (number,) for number in range(6)]
        self.worker.canDo(*names)
        for name in names[:5]:
            self.client.created(name, background=True)
            self.worker.take()
        chunks = self.scrape()
        header = chunks.index(
            b"# HELP gearman_function_wait_seconds Time from submission to a worker taking the job, per function.\n"
            b"# TYPE gearman_function_wait_seconds histogram\n"
        )
        self.assertEqual(
            [set(re.findall(rb'function="([^"]*)"', chunk)) for chunk in chunks[header + 1 : header + 4]],
            [{b"f0", b"f1"}, {b"f2", b"f3"}, {b"f4"}],
        )
        self.assertTrue(chunks[header + 4].startswith(b"# HELP gearman_function_run_seconds "))


class LabelTests(SynchronousTestCase):
    """
    Function names as label values: distinct for distinct names, those
    that are not UTF-8 text and those with backslashes included, in every
    family with a C{function} label.
    """

    #: Names that decoding with replacement characters, or with backslash
    #: escapes alone, would give the same label.
    NAMES = [b"\xff\xfe", b"\xfe\xff", b"\xff\\xfe", b"\\xff\xfe", b"a\\b", b"caf\xc3\xa9"]

    def test_distinct(self) -> None:
        """
        A scrape has no two samples of a family with the same labels, and
        each name's label is its text, but for a name that is not UTF-8
        its text with backslashes doubled and bytes that are not UTF-8 as
        C{\\xNN}.
        """
        clock = Clock()
        server = JobServer(clock, handlePrefix=b"H", policies=Policies.fromText("[default]\ndead-letters = 5\n"))
        client = Conn(server)
        for name in self.NAMES:
            worker = Conn(server)
            worker.canDo(name)
            handle = client.created(name, background=True)
            self.assertEqual(worker.take()[0], handle)
            worker.fail(handle)
            worker.lose()
            client.created(name, background=True)
        request = DummyRequest([b""])
        body = MetricsResource(JobServerCollector(server)).render_GET(request)  # type: ignore[arg-type]
        assert isinstance(body, bytes)
        seen: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], int] = {}
        labels: Dict[str, set] = {}
        for family in text_string_to_metric_families(body.decode("utf-8")):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                seen[key] = seen.get(key, 0) + 1
                if "function" in sample.labels:
                    labels.setdefault(sample.name, set()).add(sample.labels["function"])
        self.assertEqual([key for key, count in seen.items() if count > 1], [])
        expected = {"\\xff\\xfe", "\\xfe\\xff", "\\xff\\\\xfe", "\\\\xff\\xfe", "a\\b", "caf\u00e9"}
        for metric in (
            "gearman_jobs_failed_total",
            "gearman_queue_depth",
            "gearman_oldest_queued_seconds",
            "gearman_dead_letters",
            "gearman_function_run_seconds_count",
        ):
            self.assertEqual(labels[metric], expected, metric)
