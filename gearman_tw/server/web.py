# -*- test-case-name: tests.test_server_http -*-
"""
The HTTP site of a job server: gearmand's HTTP protocol, the JSON API,
metrics and the monitor page, on one twisted.web L{Site}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Site

from gearman_tw.server.http import DEFAULT_NO_WORKER_TIMEOUT, GearmanResource
from gearman_tw.server.jobs import JobServer


def makeResource(
    server: JobServer,
    reactor: IReactorTime,
    version: str = "1.1.20",
    noWorkerTimeout: float = DEFAULT_NO_WORKER_TIMEOUT,
    **kwargs: Any,
) -> GearmanResource:
    """
    The root resource for C{server}.
    """
    return GearmanResource(server, reactor, version, noWorkerTimeout, **kwargs)


def makeSite(server: JobServer, reactor: IReactorTime, **kwargs: Any) -> Site:
    """
    A L{Site} serving L{makeResource}.
    """
    site = Site(makeResource(server, reactor, **kwargs), reactor=reactor)
    site.displayTracebacks = False
    return site
