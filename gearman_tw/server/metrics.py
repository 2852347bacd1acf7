# -*- test-case-name: tests.test_server_metrics -*-
"""
Prometheus metrics for a job server, through C{prometheus_client}.

The job path only bumps plain integers (L{gearman_tw.server.jobs.Function}
counters and L{gearman_tw.server.stats.ServerStats}); this collector turns
them into metric families when Prometheus scrapes C{/metrics}.
"""

from __future__ import annotations

from typing import Iterator, Mapping, Optional

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

from gearman_tw.server.jobs import PRIORITY_NAMES, JobServer
from gearman_tw.server.stats import Histogram


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(
        name, documentation, buckets=histogram.cumulative(), sum_value=histogram.total
    )


class JobServerCollector:
    """
    A custom collector reading a L{JobServer}'s counters.

    @ivar refused: HTTP requests refused, by reason (see
        L{gearman_tw.server.http.AccessPolicy}), if the HTTP site counts them.
    @ivar aclRefused: requests the access policy refused, by action (see
        L{gearman_tw.server.acl.AccessControl}), if there is a policy.
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
        submitted = CounterMetricFamily(
            "gearman_jobs_submitted", "New jobs submitted.", labels=["function", "priority"]
        )
        completed = CounterMetricFamily(
            "gearman_jobs_completed", "Jobs ended with WORK_COMPLETE.", labels=["function"]
        )
        failed = CounterMetricFamily(
            "gearman_jobs_failed",
            "Jobs ended with WORK_FAIL (including retries exhausted).",
            labels=["function"],
        )
        exceptions = CounterMetricFamily(
            "gearman_jobs_exception", "Jobs ended with WORK_EXCEPTION.", labels=["function"]
        )
        queued = GaugeMetricFamily(
            "gearman_queue_depth", "Jobs waiting for a worker.", labels=["function", "priority"]
        )
        running = GaugeMetricFamily("gearman_jobs_running", "Jobs held by workers.", labels=["function"])
        workers = GaugeMetricFamily(
            "gearman_workers", "Worker registrations (CAN_DO) per function.", labels=["function"]
        )
        for function in server.functions.values():
            name = function.name.decode("utf-8", "replace")
            for priority, label in enumerate(PRIORITY_NAMES):
                level = label.lower()
                submitted.add_metric([name, level], function.submitted[priority])
                queued.add_metric([name, level], function.queued[priority])
            completed.add_metric([name], function.completed)
            failed.add_metric([name], function.failed)
            exceptions.add_metric([name], function.exceptions)
            running.add_metric([name], function.running)
            workers.add_metric([name], function.workers)
        yield from (submitted, completed, failed, exceptions, queued, running, workers)
        stats = server.stats
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


def registryFor(
    server: JobServer,
    refused: Optional[Mapping[str, int]] = None,
    aclRefused: Optional[Mapping[str, int]] = None,
) -> CollectorRegistry:
    """
    A registry holding only C{server}'s metrics, C{refused} as
    C{gearman_http_refused_total} and C{aclRefused} as
    C{gearman_acl_refused_total} if given.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobServerCollector(server, refused, aclRefused))  # type: ignore[arg-type]
    return registry


class MetricsResource(Resource):
    """
    C{/metrics} in Prometheus's text exposition format.
    """

    isLeaf = True

    def __init__(
        self,
        server: JobServer,
        refused: Optional[Mapping[str, int]] = None,
        aclRefused: Optional[Mapping[str, int]] = None,
    ) -> None:
        super().__init__()
        self.registry = registryFor(server, refused, aclRefused)

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self.registry)
