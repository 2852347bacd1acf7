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
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

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

    @param kwargs: passed to L{GearmanResource}, C{policy} included.
    """
    root = GearmanResource(server, reactor, version, noWorkerTimeout, **kwargs)
    metrics: Resource
    try:
        from gearman_tw.server.metrics import JobServerCollector, MetricsResource
    except ImportError:
        metrics = NoMetrics()  # prometheus_client is optional
    else:
        acl = root.policy.acl
        metrics = MetricsResource(
            JobServerCollector(server, refused=root.policy.refused, aclRefused=None if acl is None else acl.refused)
        )
    root.putChild(b"metrics", metrics)
    root.monitor = _monitorPage
    return root


class NoMetrics(Resource):
    """
    C{/metrics} without C{prometheus_client}: 501 with how to get it.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setResponseCode(501)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        return b"Metrics need prometheus_client: pip install prometheus_client\n"


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
    @param kwargs: passed to L{makeResource}; C{policy}, an
        L{gearman_tw.server.http.AccessPolicy}, says who may use the site.
    """
    site = Site(
        makeResource(server, reactor, maxBody=maxBody, **kwargs),
        requestFactory=partial(LimitedRequest, maxBody=maxBody),
        reactor=reactor,
    )
    site.displayTracebacks = False
    return site
