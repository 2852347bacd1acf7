# -*- test-case-name: tests.test_server_metrics -*-
"""
Cheap statistics for the job server's hot path: plain counters and
fixed-bucket histograms, exposed to Prometheus by
L{gearman_tw.server.metrics}.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import List, Sequence, Tuple

#: Seconds: job wait and run times, and persistent queue latency.
DEFAULT_BUCKETS: Tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)


class Histogram:
    """
    Counts of observations per bucket (not cumulative) plus their sum.
    """

    __slots__ = ("buckets", "counts", "total")

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self.counts: List[int] = [0] * (len(self.buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        """
        Record one observation.
        """
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value

    def cumulative(self) -> List[Tuple[str, int]]:
        """
        Prometheus-style (upper bound, cumulative count) pairs, C{+Inf} last.
        """
        result = []
        running = 0
        for bound, count in zip(self.buckets, self.counts):
            running += count
            result.append((repr(bound), running))
        running += self.counts[-1]
        result.append(("+Inf", running))
        return result


class ServerStats:
    """
    Server-wide statistics beside the per-function counters.

    @ivar wait: seconds jobs waited between submission and assignment.
    @ivar run: seconds jobs ran, assignment to end.
    @ivar queueLatency: seconds persistent queue operations took.
    @ivar connections: connections accepted so far.
    """

    __slots__ = ("wait", "run", "queueLatency", "connections", "queueErrors")

    def __init__(self) -> None:
        self.wait = Histogram()
        self.run = Histogram()
        self.queueLatency = Histogram()
        self.connections = 0
        self.queueErrors = 0
