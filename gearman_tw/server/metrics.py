# -*- test-case-name: tests.test_server_metrics -*-
"""
Prometheus metrics for a job server, through C{prometheus_client}.

The job path only bumps plain integers (L{gearman_tw.server.model.Function}
counters and L{gearman_tw.server.stats.ServerStats}); they are turned into
metric families when Prometheus scrapes C{/metrics}.  The families with a
sample per function are written here, a slice of functions per reactor turn
(a server with 10,000 functions has 110,000 of those samples, and 20 per
histogram of a function that ran jobs); the others go through
C{prometheus_client}.
"""

from __future__ import annotations

from typing import Callable, Iterator, List, Mapping, Optional, Sequence, Tuple

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from twisted.web.resource import Resource
from twisted.web.server import Request

from gearman_tw.server import sliced
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.model import PRIORITY_NAMES, Function
from gearman_tw.server.stats import Histogram

#: The families with a sample per function (per priority when the getter
#: takes one): name, type, help, getter.
_PER_FUNCTION: List[Tuple[str, str, str, bool, Callable[..., int]]] = [
    ("gearman_jobs_submitted_total", "counter", "New jobs submitted.", True, lambda f, p: f.submitted[p]),
    ("gearman_jobs_completed_total", "counter", "Jobs ended with WORK_COMPLETE.", False, lambda f: f.completed),
    (
        "gearman_jobs_failed_total",
        "counter",
        "Jobs ended with WORK_FAIL (including retries exhausted).",
        False,
        lambda f: f.failed,
    ),
    ("gearman_jobs_exception_total", "counter", "Jobs ended with WORK_EXCEPTION.", False, lambda f: f.exceptions),
    ("gearman_jobs_started_total", "counter", "Attempts: jobs handed to workers.", False, lambda f: f.started),
    (
        "gearman_jobs_retried_total",
        "counter",
        "Attempts that ended without ending their job, which was queued again.",
        False,
        lambda f: f.retried,
    ),
    ("gearman_jobs_timed_out_total", "counter", "Attempts ended by a time limit.", False, lambda f: f.timedOut),
    ("gearman_jobs_dead_lettered_total", "counter", "Jobs kept as dead letters.", False, lambda f: f.deadLettered),
    (
        "gearman_jobs_answered_from_results_total",
        "counter",
        "Submissions answered from a stored result within the unique window.",
        False,
        lambda f: f.answeredFromResults,
    ),
    ("gearman_queue_depth", "gauge", "Jobs waiting for a worker.", True, lambda f, p: f.queued[p]),
    ("gearman_jobs_running", "gauge", "Jobs held by workers.", False, lambda f: f.running),
    ("gearman_workers", "gauge", "Worker registrations (CAN_DO) per function.", False, lambda f: f.workers),
]

#: The histograms per function, for the functions that observed something:
#: name, help, getter.
_PER_FUNCTION_HISTOGRAMS: List[Tuple[str, str, Callable[[Function], Optional[Histogram]]]] = [
    (
        "gearman_function_wait_seconds",
        "Time from submission to a worker taking the job, per function.",
        lambda f: f.waitTimes,
    ),
    (
        "gearman_function_run_seconds",
        "Time from a worker taking the job to its end (or to a failure that was retried), per function.",
        lambda f: f.runTimes,
    ),
]

_PRIORITY_LABELS = [label.lower().encode("ascii") for label in PRIORITY_NAMES]


def labelValue(name: bytes) -> str:
    """
    A function name as a label value: its text when it is UTF-8, else its
    text with each backslash doubled and each byte that is not part of
    UTF-8 text written C{\\xNN} (two hexadecimal digits).  Names that are
    not UTF-8 so have distinct values, which a scrape needs (two samples
    of a family with the same labels are refused), rather than all
    becoming the same replacement characters; only a UTF-8 name that
    spells out such escapes can have the value of one that is not.
    """
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        return name.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def _label(name: bytes) -> bytes:
    """
    A function name as a label value of the text exposition format.
    """
    text = labelValue(name).encode("utf-8")
    return text.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b'"', b'\\"')


def functionSamples(functions: Sequence[Function]) -> Iterator[bytes]:
    """
    The families with a sample per function, in Prometheus's text
    exposition format, a slice of C{functions} per chunk; the histograms
    per function only for the functions that observed something.
    """
    labels = [_label(f.name) for f in functions]
    for name, kind, documentation, perPriority, getter in _PER_FUNCTION:
        metric = name.encode("ascii")
        yield b"# HELP %s %s\n# TYPE %s %s\n" % (metric, documentation.encode("ascii"), metric, kind.encode("ascii"))
        for start in range(0, len(functions), sliced.SLICE):
            run = functions[start : start + sliced.SLICE]
            names = labels[start : start + sliced.SLICE]
            if perPriority:
                yield b"".join(
                    b'%s{function="%s",priority="%s"} %d\n' % (metric, label, _PRIORITY_LABELS[p], getter(f, p))
                    for f, label in zip(run, names)
                    for p in range(3)
                )
            else:
                yield b"".join(
                    b'%s{function="%s"} %d\n' % (metric, label, getter(f)) for f, label in zip(run, names)
                )
    for name, documentation, histogramOf in _PER_FUNCTION_HISTOGRAMS:
        metric = name.encode("ascii")
        yield b"# HELP %s %s\n# TYPE %s histogram\n" % (metric, documentation.encode("ascii"), metric)
        for start in range(0, len(functions), sliced.SLICE):
            run = functions[start : start + sliced.SLICE]
            names = labels[start : start + sliced.SLICE]
            yield b"".join(
                _histogramSamples(metric, label, histogram)
                for histogram, label in zip(map(histogramOf, run), names)
                if histogram is not None
            )


def _histogramSamples(metric: bytes, label: bytes, histogram: Histogram) -> bytes:
    """
    One function's histogram in the text exposition format: its cumulative
    buckets, C{+Inf} last, then its sum and count.
    """
    bucket = b'%s_bucket{function="%s",le="' % (metric, label)
    cumulative = histogram.cumulative()
    lines = [b'%s%s"} %d\n' % (bucket, bound.encode("ascii"), count) for bound, count in cumulative]
    lines.append(b'%s_sum{function="%s"} %s\n' % (metric, label, repr(histogram.total).encode("ascii")))
    lines.append(b'%s_count{function="%s"} %d\n' % (metric, label, cumulative[-1][1]))
    return b"".join(lines)


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(
        name, documentation, buckets=histogram.cumulative(), sum_value=histogram.total
    )


class JobServerCollector:
    """
    A custom collector reading a L{JobServer}'s counters, but for those
    per function (L{functionSamples}).

    @ivar refused: HTTP requests refused, by reason (see
        L{gearman_tw.server.http.AccessPolicy}), if the HTTP site counts them:
        C{gearman_http_refused_total}.
    @ivar aclRefused: requests the access policy refused, by action (see
        L{gearman_tw.server.acl.AccessControl}), if there is a policy:
        C{gearman_acl_refused_total}.
    """

    def __init__(
        self,
        server: JobServer,
        refused: Optional[Mapping[str, int]] = None,
        aclRefused: Optional[Mapping[str, int]] = None,
    ) -> None:
        self.server = server
        self.refused = refused
        self.aclRefused = aclRefused

    def collect(self) -> Iterator[Metric]:
        server = self.server
        stats = server.stats
        oldest = GaugeMetricFamily(
            "gearman_oldest_queued_seconds",
            "Age of the oldest job waiting at the head of a function's queues.",
            labels=["function"],
        )
        now = server.reactor.seconds()
        for function in server.runQueue.withWork():
            submitted = server.runQueue.oldest(function)
            if submitted is not None:
                oldest.add_metric([labelValue(function.name)], max(now - submitted, 0.0))
        yield oldest
        letters = server.deadLetters
        kept = GaugeMetricFamily("gearman_dead_letters", "Dead letters kept.", labels=["function"])
        for name, count in sorted(letters.functions().items()):
            kept.add_metric([labelValue(name)], count)
        yield kept
        dropped = CounterMetricFamily(
            "gearman_dead_letters_dropped", "Dead letters dropped for room.", labels=["function"]
        )
        for name, count in sorted(letters.dropped.items()):
            dropped.add_metric([labelValue(name)], count)
        yield dropped
        results = GaugeMetricFamily("gearman_stored_results", "Stored results kept.", labels=["function"])
        for name, count in sorted(server.results.functions().items()):
            results.add_metric([labelValue(name)], count)
        yield results
        yield GaugeMetricFamily("gearman_connections", "Open connections.", value=len(server.peers))
        yield CounterMetricFamily(
            "gearman_connections_accepted", "Connections accepted.", value=stats.connections
        )
        yield GaugeMetricFamily("gearman_jobs", "Live jobs, queued or running.", value=server.jobCount())
        yield CounterMetricFamily(
            "gearman_queue_errors", "Persistent queue failures.", value=stats.queueErrors
        )
        yield _histogram(
            "gearman_job_wait_seconds", "Time from submission to a worker taking the job.", stats.wait
        )
        yield _histogram(
            "gearman_job_run_seconds", "Time from a worker taking the job to its end.", stats.run
        )
        yield _histogram(
            "gearman_queue_operation_seconds",
            "Persistent queue batch latency (store or forget).",
            stats.queueLatency,
        )
        if self.refused is not None:
            refused = CounterMetricFamily(
                "gearman_http_refused",
                "HTTP requests refused: host (a name not this server's), origin "
                "(from another site) or token (missing or wrong).",
                labels=["reason"],
            )
            for reason, count in sorted(self.refused.items()):
                refused.add_metric([reason], count)
            yield refused
        if self.aclRefused is not None:
            acl = CounterMetricFamily(
                "gearman_acl_refused",
                "Requests the access policy refused: submit, work (CAN_DO) or admin.",
                labels=["action"],
            )
            for action, count in sorted(self.aclRefused.items()):
                acl.add_metric([action], count)
            yield acl


def registryFor(collector: JobServerCollector) -> CollectorRegistry:
    """
    A registry holding only C{collector}'s metrics.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    return registry


class MetricsResource(Resource):
    """
    C{/metrics} in Prometheus's text exposition format.

    @ivar collector: what it shows, but for the samples per function
        (L{functionSamples}), read from the collector's job server.
    """

    isLeaf = True

    def __init__(self, collector: JobServerCollector) -> None:
        super().__init__()
        self.collector = collector
        self.registry = registryFor(collector)

    def render_GET(self, request: Request) -> object:
        """
        The exposition: at once for a few functions, else a slice of
        functions per reactor turn.
        """
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        server = self.collector.server
        functions = list(server.functions.values())
        return sliced.render(
            request, self._chunks(functions), server.reactor, small=len(functions) <= sliced.SLICE
        )

    def _chunks(self, functions: Sequence[Function]) -> Iterator[bytes]:
        yield from functionSamples(functions)
        yield generate_latest(self.registry)
