# -*- test-case-name: tests.test_worker_tap -*-
"""
C{twistd gearman-worker}: run Python functions as a Gearman worker::

    twistd -n gearman-worker --server 127.0.0.1:4730 \\
        --function reverse=myapp.tasks:reverse --concurrency 4
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from twisted.application.service import IService
from twisted.python import usage
from twisted.python.reflect import namedAny

from gearman_tw.worker import DEFAULT_DRAIN_TIMEOUT

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime


def loadCallable(reference: str) -> Callable[..., Any]:
    """
    Import C{package.module:callable} (or C{package.module.callable}).

    @raise usage.UsageError: it cannot be imported or is not callable.
    """
    dotted = reference.replace(":", ".")
    try:
        found = namedAny(dotted)
    except Exception as e:
        raise usage.UsageError("cannot import %s: %s" % (reference, e))
    if not callable(found):
        raise usage.UsageError("%s is not callable" % (reference,))
    return found


class Options(usage.Options):
    """
    Command-line options of C{twistd gearman-worker}.
    """

    synopsis = "--server HOST:PORT --function NAME=module:callable [options]"
    longdesc = (
        "Run Python callables as Gearman functions. Each callable takes a job "
        "(handle, function, unique, data; sendData/sendStatus/sendWarning/fail) "
        "and returns bytes or str, or a Deferred of them."
    )

    optParameters = [
        ["concurrency", "c", 1, "Jobs run at once, in all (per server with --per-server).", int],
        ["timeout", None, None, "Seconds a job may run before the server reassigns it.", float],
        ["client-id", None, None, "The id the servers' 'workers' command shows."],
        [
            "drain-timeout",
            None,
            DEFAULT_DRAIN_TIMEOUT,
            "Seconds a stopping worker waits for running jobs.",
            float,
        ],
        ["threads", None, 10, "Size of the thread pool for --threaded.", int],
    ]
    optFlags = [
        ["threaded", None, "Run the functions in a thread pool."],
        ["per-server", None, "--concurrency counts jobs per server, not in all."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["servers"] = []
        self["functions"] = []

    def opt_server(self, server: str) -> None:
        """
        A job server: HOST[:PORT] or an endpoint description such as
        unix:path=/run/gearman.sock or tls:host=H:port=4730 (which verifies
        the server's certificate; add :trustRoots=CA.pem for a private CA,
        :certificate=C.pem:privateKey=K.pem for mutual TLS) (repeatable).
        """
        self["servers"].append(server)

    opt_s = opt_server

    def opt_function(self, spec: str) -> None:
        """
        NAME=package.module:callable, a function to serve (repeatable).
        """
        name, sep, reference = spec.partition("=")
        if not sep or not name or not reference:
            raise usage.UsageError("--function takes NAME=package.module:callable")
        self["functions"].append((name, reference))

    opt_f = opt_function

    def postOptions(self) -> None:
        if not self["servers"]:
            self["servers"] = ["127.0.0.1:4730"]
        if not self["functions"]:
            raise usage.UsageError("give at least one --function")
        if self["concurrency"] < 1:
            raise usage.UsageError("--concurrency must be at least 1")
        if self["timeout"] is not None and self["timeout"] <= 0:
            raise usage.UsageError("--timeout must be positive")
        if self["threads"] < 1:
            raise usage.UsageError("--threads must be at least 1")
        from twisted.internet.task import Clock

        from gearman_tw.endpoints import clientEndpoint

        for server in self["servers"]:
            try:
                clientEndpoint(Clock(), server)
            except ValueError as e:
                raise usage.UsageError(str(e))
        callables: List[Tuple[str, Callable[..., Any]]] = [
            (name, loadCallable(reference)) for name, reference in self["functions"]
        ]
        self["callables"] = callables


def makeService(options: Options, reactor: Optional[IReactorTime] = None) -> IService:
    """
    Build the (unstarted) worker service from parsed C{options}.
    """
    from gearman_tw.worker import GearmanWorker

    worker = GearmanWorker(
        options["servers"],
        concurrency=options["concurrency"],
        clientId=options["client-id"],
        reactor=reactor,
        drainTimeout=options["drain-timeout"],
        threads=options["threads"],
        perServer=bool(options["per-server"]),
    )
    for name, function in options["callables"]:
        worker.register(name, function, timeout=options["timeout"], threaded=bool(options["threaded"]))
    worker.setName("gearman-worker")
    return worker
