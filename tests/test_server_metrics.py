"""
Tests for L{gearman_tw.server.metrics} and L{gearman_tw.server.stats}.
"""

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from gearman_tw.server.jobs import JobServer
from gearman_tw.server.metrics import JobServerCollector, MetricsResource
from gearman_tw.server.model import ASSIGN, HIGH, LOW, NORMAL
from gearman_tw.server.packets import PacketPeer
from gearman_tw.server.stats import Histogram


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
