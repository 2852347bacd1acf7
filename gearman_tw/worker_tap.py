# -*- test-case-name: tests.test_worker_tap -*-
"""
C{twistd gearman-worker}: run Python functions as a Gearman worker::

    twistd -n gearman-worker --server 127.0.0.1:4730 \\
        --function reverse=myapp.tasks:reverse --concurrency 4
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from twisted.application.service import IService
from twisted.python import usage

from gearman_tw._version import __version__
from gearman_tw.worker import DEFAULT_DRAIN_TIMEOUT

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime


def _oneLine(error: BaseException) -> str:
    """
    C{"ZeroDivisionError: division by zero"}, on one line.
    """
    return " ".join(("%s: %s" % (type(error).__name__, error)).split())


def _importModule(name: str) -> Optional[ModuleType]:
    """
    Import the module C{name}.

    @return: the module, or C{None} if neither it nor a package above it
        exists.

    @raise usage.UsageError: importing it (or a package above it) raised,
        or imported another module that does not exist.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        parts = name.split(".")
        if e.name in {".".join(parts[:end]) for end in range(1, len(parts) + 1)}:
            return None
        raise usage.UsageError("importing %s raised %s" % (name, _oneLine(e)))
    except Exception as e:
        raise usage.UsageError("importing %s raised %s" % (name, _oneLine(e)))


def _missingModule(name: str) -> str:
    """
    Which of C{name} and the packages above it does not exist.
    """
    parts = name.split(".")
    for end in range(1, len(parts)):
        if _importModule(".".join(parts[:end])) is None:
            return ".".join(parts[:end])
    return name


def loadCallable(reference: str) -> Callable[..., Any]:
    """
    Import C{package.module:callable} (or C{package.module.callable}); the
    name after the colon may be dotted (C{module:Class.method}).  Names are
    found as C{python -m} finds them: see L{useCurrentFolder}.

    @raise usage.UsageError: saying whether the module does not exist, has
        no such attribute, or raised while being imported; or that what is
        found is not callable.
    """
    try:
        return _loadCallable(reference)
    except usage.UsageError as e:
        raise usage.UsageError("cannot load %s: %s" % (reference, e))


def _loadCallable(reference: str) -> Callable[..., Any]:
    moduleName, colon, attributes = reference.partition(":")
    if colon:
        splits = [(moduleName, attributes)]
    else:
        # The longest importable prefix is the module.
        parts = reference.split(".")
        splits = [(".".join(parts[:end]), ".".join(parts[end:])) for end in range(len(parts) - 1, 0, -1)]
    names = [name for split in splits for name in split[0].split(".") + split[1].split(".")]
    if not splits or not all(name.isidentifier() for name in names):
        raise usage.UsageError("not a name of the form package.module:callable")
    for moduleName, attributes in splits:  # noqa: B007 (the split found is used after the loop)
        module = _importModule(moduleName)
        if module is not None:
            break
    else:
        raise usage.UsageError("no module named %s" % (_missingModule(splits[0][0]),))
    found: Any = module
    for index, attribute in enumerate(attributes.split(".")):
        try:
            found = getattr(found, attribute)
        except AttributeError:
            if index == 0 and moduleName != splits[0][0]:
                # package.module.callable, without the module.
                raise usage.UsageError("no module named %s.%s" % (moduleName, attribute))
            raise usage.UsageError("%s has no attribute %s" % (moduleName, attributes))
    if not callable(found):
        raise usage.UsageError("%s is not callable" % (attributes,))
    return found


def useCurrentFolder() -> None:
    """
    Put the current folder first on the import path, as C{python -m} does
    (the C{twistd} script puts its own folder there), so that
    C{--function} finds the project's modules when run from its folder.
    """
    here = os.getcwd()
    if not any(os.path.abspath(entry or os.curdir) == here for entry in sys.path):
        sys.path.insert(0, here)


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

    def opt_version(self) -> None:
        """
        Show the version and exit.
        """
        print("gearman_tw %s" % (__version__,))
        raise SystemExit(0)

    def opt_function(self, spec: str) -> None:
        """
        NAME=package.module:callable, a function to serve (repeatable); the
        current folder is searched first, as by python -m.
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
        useCurrentFolder()
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
