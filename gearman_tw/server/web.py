# -*- test-case-name: tests.test_server_http -*-
"""
The HTTP site of a job server: gearmand's HTTP protocol, the JSON API,
metrics and the monitor page, on one twisted.web L{Site}.
"""

from __future__ import annotations

from functools import partial
from importlib.resources import files
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Site

from gearman_tw.server.http import (
    DEFAULT_MAX_BODY,
    DEFAULT_NO_WORKER_TIMEOUT,
    GearmanResource,
    LimitedRequest,
)
from gearman_tw.server.jobs import JobServer


def makeResource(
    server: JobServer,
    reactor: IReactorTime,
    version: str = "1.1.20",
    noWorkerTimeout: float = DEFAULT_NO_WORKER_TIMEOUT,
    **kwargs: Any,
) -> GearmanResource:
    """
    The root resource for C{server}: gearmand's HTTP protocol, C{/api/},
    C{/metrics} and the monitor page at C{/}.
    """
    root = GearmanResource(server, reactor, version, noWorkerTimeout, **kwargs)
    try:
        from gearman_tw.server.metrics import MetricsResource
    except ImportError:
        pass  # prometheus_client is optional: no /metrics without it.
    else:
        root.putChild(b"metrics", MetricsResource(server))
    root.monitor = _monitorPage
    return root


def _monitorPage(request: Any) -> bytes:
    request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-store")
    return _MONITOR


_MONITOR = (files("gearman_tw.server") / "monitor.html").read_bytes()


def makeSite(
    server: JobServer, reactor: IReactorTime, maxBody: int = DEFAULT_MAX_BODY, **kwargs: Any
) -> Site:
    """
    A L{Site} serving L{makeResource}.

    @param maxBody: the largest request body accepted on any route, in
        bytes: a larger one is answered with 413 while it arrives (see
        L{LimitedRequest}).
    """
    site = Site(
        makeResource(server, reactor, maxBody=maxBody, **kwargs),
        requestFactory=partial(LimitedRequest, maxBody=maxBody),
        reactor=reactor,
    )
    site.displayTracebacks = False
    return site
