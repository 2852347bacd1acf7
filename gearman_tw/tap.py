# -*- test-case-name: tests.test_tap -*-
"""
C{twistd gearman}: the job server, with options mirroring gearmand's.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, List

from twisted.application.service import IService
from twisted.python import usage

from gearman_tw._version import __version__
from gearman_tw.protocol import DEFAULT_MAX_PACKET_SIZE
from gearman_tw.verbosity import LOG_LEVELS

if TYPE_CHECKING:
    from twisted.internet.interfaces import IStreamServerEndpoint

#: gearman_tw.server.flow's and factory's defaults (this module imports no
#: server code until makeService).
_DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024
_DEFAULT_MAX_INPUT = 256 * 1024 * 1024
_DEFAULT_PACKET_TIMEOUT = 60.0

#: gearman_tw.server.http.DEFAULT_MAX_BODY, which this module does not import
#: (the tap imports twisted.web only when HTTP is served).
_DEFAULT_HTTP_MAX_BODY = 64 * 1024 * 1024

#: gearmand's log levels, most severe first.


#: What --http-allowed-host takes: a DNS name, perhaps with a final dot.
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")


def _readToken(path: str) -> bytes:
    """
    The token in the file at C{path}, without surrounding whitespace.

    @raise usage.UsageError: if the file cannot be read, or holds no token,
        or one that is not printable ASCII without spaces.
    """
    try:
        with open(path, "rb") as f:
            token = f.read().strip()
    except OSError as e:
        raise usage.UsageError("--http-token-file: cannot read %s: %s" % (path, e.strerror or e))
    if not token:
        raise usage.UsageError("--http-token-file: %s is empty" % (path,))
    if not re.fullmatch(rb"[\x21-\x7e]+", token):
        raise usage.UsageError(
            "--http-token-file: the token in %s must be printable ASCII without spaces" % (path,)
        )
    return token


#: The mode of a Unix socket whose description does not say C{mode=}: its
#: owner and group may connect (Twisted's own default, 666, lets anyone).
DEFAULT_SOCKET_MODE = "660"


def _fields(description: str) -> List[str]:
    """
    The fields of an endpoint description: what lies between colons that no
    backslash escapes (escapes are kept).
    """
    fields: List[str] = []
    start = index = 0
    while index < len(description):
        if description[index] == "\\":
            index += 2
            continue
        if description[index] == ":":
            fields.append(description[start:index])
            start = index + 1
        index += 1
    fields.append(description[start:])
    return fields


def _withSocketMode(description: str) -> str:
    """
    C{description}, with C{mode=}L{DEFAULT_SOCKET_MODE} added if it is a
    Unix socket's that says no mode.
    """
    fields = _fields(description)
    if fields[0].lower() != "unix":
        return description
    if any(field.partition("=")[0] == "mode" for field in fields[1:]):
        return description
    return "%s:mode=%s" % (description, DEFAULT_SOCKET_MODE)


#: What TLS needs, and how to get it.
_TLS_NEEDS = "needs pyOpenSSL and service_identity (pip install pyOpenSSL service_identity)"


def _checkDescription(option: str, description: str) -> None:
    """
    Parse a server endpoint description, as C{makeService} will.

    @raise usage.UsageError: Twisted cannot parse it, or it needs a module
        that is not installed (pyOpenSSL for C{ssl:}).
    """
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    try:
        # Makes the endpoint (as makeService will), without listening.
        serverFromString(reactor, description)
    except ImportError as e:
        if (e.name or "").split(".")[0] in ("OpenSSL", "service_identity", "cryptography"):
            raise usage.UsageError("%s %s %s: %s" % (option, description, _TLS_NEEDS, e))
        raise usage.UsageError("%s %s needs a module that is not installed: %s" % (option, description, e))
    except Exception as e:
        raise usage.UsageError("%s %s is not a valid endpoint description: %s" % (option, description, e))


def _socketName(address: str, port: int) -> str:
    """
    What a start-up failure calls an --port/--listen socket.
    """
    if not address:
        return "port %d" % (port,)
    return ("[%s]:%d" if ":" in address else "%s:%d") % (address, port)


def _defaultPort() -> str:
    return os.environ.get("GEARMAND_PORT", "4730")


def _escape(address: str) -> str:
    return address.replace("\\", "\\\\").replace(":", "\\:")


def _describe(address: str, port: int, backlog: int, tls: bool) -> str:
    """
    A description of the endpoint for an --port/--listen socket, for logs
    and tests; C{makeService} builds TLS endpoints itself.
    """
    interface = ":interface=%s" % (_escape(address),) if address else ""
    return "%s:%d%s:backlog=%d" % ("ssl" if tls else "tcp", port, interface, backlog)


class Options(usage.Options):
    """
    Command-line options of C{twistd gearman}.
    """

    synopsis = "[options]"
    longdesc = (
        "Run a Gearman job server, compatible with gearmand 1.1. With no "
        "--listen or --endpoint it listens on every IPv4 address at --port."
    )

    optParameters = [
        ["backlog", "b", 32, "Listen backlog of --port/--listen sockets.", int],
        ["job-retries", "j", 0, "Fail a job after this many attempts (0: no limit).", int],
        [
            "idle-functions",
            None,
            10000,
            "Functions without workers, jobs or limits kept for status listings; "
            "beyond this many, the one idle longest is forgotten.",
            int,
        ],
        ["worker-wakeup", "w", 0, "Sleeping workers to wake per new job (0: all).", int],
        ["job-handle-prefix", None, None, "Job handle prefix (default: H:<host name>)."],
        ["keepalive-idle", None, None, "Seconds idle before the first keepalive probe.", int],
        ["keepalive-interval", None, None, "Seconds between keepalive probes.", int],
        ["keepalive-count", None, None, "Keepalive probes before dropping a peer.", int],
        ["verbose", None, "ERROR", "Log level: " + ", ".join(LOG_LEVELS) + "."],
        [
            "max-packet-size",
            None,
            DEFAULT_MAX_PACKET_SIZE,
            "Largest packet payload accepted, in bytes.",
            int,
        ],
        ["max-connections", None, 0, "Most connections open at once (0: no limit).", int],
        [
            "max-connections-per-address",
            None,
            0,
            "Most connections open at once from one IP address (0: no limit).",
            int,
        ],
        [
            "max-output-buffer",
            None,
            _DEFAULT_MAX_OUTPUT,
            "Bytes of replies a connection may leave unread before the server stops "
            "reading from it until it catches up (0: no limit).",
            int,
        ],
        [
            "max-input-buffer",
            None,
            _DEFAULT_MAX_INPUT,
            "Bytes of large packets being received, all connections together, past "
            "which further large packets wait their turn (0: no limit).",
            int,
        ],
        [
            "packet-timeout",
            None,
            _DEFAULT_PACKET_TIMEOUT,
            "Seconds a connection may take to finish a packet it began, or to send its "
            "first one, before it is closed (0: no limit).",
            float,
        ],
        [
            "policies",
            None,
            None,
            "TOML file of per-function job lifecycle policies: attempts, backoff, "
            "retried failures, time limits (see docs/lifecycle.rst); reloaded on SIGHUP.",
        ],
        [
            "access-policy",
            None,
            None,
            "TOML file saying who may submit to, work on or administer which "
            "functions (see docs/security.rst); reloaded on SIGHUP.",
        ],
        [
            "drain-timeout",
            None,
            30.0,
            "Seconds a stopping server waits for running jobs.",
            float,
        ],
        [
            "http-port",
            None,
            None,
            "Serve HTTP (gearmand's protocol, JSON API, metrics, monitor) on this port, "
            "at the --http-listen addresses (127.0.0.1 by default).",
            int,
        ],
        [
            "http-token-file",
            None,
            None,
            "File holding a token that HTTP requests which change anything (job "
            "submissions, cancels) must send as Authorization: Bearer TOKEN.",
        ],
        [
            "http-no-worker-timeout",
            None,
            30.0,
            "Seconds an HTTP job for a function with no worker waits before a 504.",
            float,
        ],
        [
            "http-max-body",
            None,
            _DEFAULT_HTTP_MAX_BODY,
            "Largest HTTP request body accepted on any route, in bytes; a larger one "
            "gets 413 while it arrives.",
            int,
        ],
        [
            "queue",
            "q",
            "memory",
            "Persistent queue for background jobs: memory, sqlite:PATH, "
            "redis://HOST:PORT/DB?namespace=NAME, redis+sentinel://HOST:PORT,HOST:PORT/SERVICE/DB, "
            "postgresql://USER:PASSWORD@HOST:PORT/DB or mysql://USER:PASSWORD@HOST:PORT/DB.",
        ],
        [
            "lease-time",
            None,
            3.0,
            "With --standby: seconds the serving server's lease lasts without a renewal; a "
            "standby takes over within about this long after the server dies.",
            float,
        ],
        ["ssl-certificate", None, None, "PEM certificate (chain) for --ssl."],
        ["ssl-key", None, None, "PEM private key for --ssl (default: in the certificate file)."],
        [
            "ssl-ca-file",
            None,
            None,
            "PEM CA certificates: with --ssl, require client certificates they sign.",
        ],
        [
            "gc-threshold",
            None,
            50000,
            "Young objects between garbage collections (Python's default is 700; "
            "0 keeps it). Higher is much faster with many queued jobs.",
            int,
        ],
        [
            "keep-freed-memory",
            None,
            64,
            "MiB of freed memory the C allocator keeps for reuse, so large payloads do "
            "not pay page faults per job (glibc; 0 keeps its defaults).",
            int,
        ],
        [
            "priority-scope",
            None,
            "function",
            "function: a worker takes its first function's most urgent job (gearmand 1.1); "
            "global: the most urgent job of any of its functions (gearmand 2.0).",
        ],
        ["threads", "t", 4, "Accepted for gearmand compatibility; ignored.", int],
        ["hashtable-buckets", None, 991, "Accepted for gearmand compatibility; ignored.", int],
    ]

    optFlags = [
        ["round-robin", "R", "Rotate each worker's functions after every job."],
        ["exceptions", None, "Turn the exceptions option on for every connection."],
        ["keepalive", None, "Turn TCP keepalive on for every connection."],
        ["ssl", None, "Serve TLS on the --port/--listen sockets (needs pyOpenSSL)."],
        [
            "standby",
            None,
            "Serve only while holding the lease of the --queue namespace; stand by, "
            "with no port open, while another server holds it, and take over when it dies.",
        ],
        [
            "admin-shutdown",
            None,
            "Obey the admin 'shutdown [graceful]' command from loopback peers.",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["endpoint"] = []
        self["endpoints"] = []
        self["http-endpoint"] = []
        self["http-listen"] = []
        self["http-allowed-host"] = []
        self["port"] = None
        self._portGiven = False

    def opt_listen(self, address: str) -> None:
        """
        Listen on this address at --port (repeatable).
        """
        try:
            ipaddress.ip_address(address)
        except ValueError:
            # A host name, resolved when listening; not all digits, which
            # would be a mistyped IPv4 address.
            if not _HOST_NAME.fullmatch(address) or address.rstrip(".").rpartition(".")[2].isdigit():
                raise usage.UsageError(
                    "--listen takes an IP address or a host name, not %r" % (address,)
                )
        self["listen"].append(address)

    opt_L = opt_listen

    def opt_endpoint(self, description: str) -> None:
        """
        Listen on a Twisted server endpoint, e.g. tcp:4730:interface=127.0.0.1,
        unix:/run/gearman.sock or ssl:4730:privateKey=key.pem (repeatable).
        """
        self["endpoint"].append(description)

    opt_e = opt_endpoint

    def opt_port(self, value: str) -> None:
        """
        Port to listen on (default 4730, or $GEARMAND_PORT).
        """
        try:
            self["port"] = int(value)
        except ValueError:
            raise usage.UsageError("--port must be a number")
        self._portGiven = True

    opt_p = opt_port

    def opt_http_endpoint(self, description: str) -> None:
        """
        Serve HTTP on a Twisted server endpoint, e.g. tcp:8080 or
        ssl:8443:privateKey=key.pem (repeatable).
        """
        self["http-endpoint"].append(description)

    def opt_http_listen(self, address: str) -> None:
        """
        Serve --http-port at this IPv4 or IPv6 address (repeatable; default: 127.0.0.1).
        """
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise usage.UsageError("--http-listen takes an IPv4 or IPv6 address, not %r" % (address,))
        self["http-listen"].append(address)

    def opt_http_allowed_host(self, name: str) -> None:
        """
        Also serve HTTP requests whose Host is this name (repeatable; see docs/security.rst).
        """
        if not _HOST_NAME.fullmatch(name):
            raise usage.UsageError("--http-allowed-host takes a host name, not %r" % (name,))
        self["http-allowed-host"].append(name.lower().rstrip("."))

    def opt_version(self) -> None:
        """
        Show the version and exit.
        """
        print("gearman_tw %s (gearmand 1.1.20 compatible)" % (__version__,))
        raise SystemExit(0)

    def postOptions(self) -> None:
        # Before anything imports Twisted's default reactor (checking an
        # endpoint description does): twistd gearman runs on GearmanReactor
        # unless twistd --reactor chose another.
        from gearman_tw.server.reactor import installIfNone

        installIfNone()
        port = self["port"]
        if port is None:
            try:
                port = int(_defaultPort())
            except ValueError:
                raise usage.UsageError("GEARMAND_PORT must be a port number")
        if not 0 <= port <= 65535:
            raise usage.UsageError("--port must be between 0 and 65535")
        self["port"] = port
        if self["backlog"] < 1:
            raise usage.UsageError("--backlog must be at least 1")
        for name in ("job-retries", "worker-wakeup"):
            if not 0 <= self[name] <= 255:
                raise usage.UsageError("--%s must be between 0 and 255" % (name,))
        verbosity = self["verbose"].upper()
        if verbosity not in LOG_LEVELS:
            raise usage.UsageError("--verbose must be one of " + ", ".join(LOG_LEVELS))
        self["verbose"] = verbosity
        if self["max-packet-size"] < 1024:
            raise usage.UsageError("--max-packet-size must be at least 1024")
        for name in (
            "max-connections",
            "max-connections-per-address",
            "max-output-buffer",
            "max-input-buffer",
            "packet-timeout",
            "idle-functions",
        ):
            if self[name] < 0:
                raise usage.UsageError("--%s must not be negative" % (name,))
        if self["gc-threshold"] < 0:
            raise usage.UsageError("--gc-threshold must not be negative")
        if self["keep-freed-memory"] < 0:
            raise usage.UsageError("--keep-freed-memory must not be negative")
        if self["drain-timeout"] < 0:
            raise usage.UsageError("--drain-timeout must not be negative")
        if self["priority-scope"] not in ("function", "global"):
            raise usage.UsageError("--priority-scope must be function or global")
        for name in ("keepalive-idle", "keepalive-interval", "keepalive-count"):
            value = self[name]
            if value is not None and value < 1:
                raise usage.UsageError("--%s must be at least 1" % (name,))
        from gearman_tw.errors import QueueError
        from gearman_tw.queues import queueFromURL

        if self["policies"] is not None:
            from gearman_tw.server.lifecycle import Policies, PoliciesError

            try:
                Policies.fromFile(self["policies"])
            except PoliciesError as e:
                raise usage.UsageError(str(e))
        if self["access-policy"] is not None:
            from gearman_tw.server.acl import Policy, PolicyError

            try:
                Policy.fromFile(self["access-policy"])
            except PolicyError as e:
                raise usage.UsageError(str(e))

        try:
            queue = queueFromURL(self["queue"], object())
        except QueueError as e:
            raise usage.UsageError(str(e))
        if self["standby"] and not hasattr(queue, "lease"):
            raise usage.UsageError(
                "--standby needs a queue that holds a lease the servers share "
                "(redis://, redis+sentinel://, postgresql://, mysql://), not %s"
                % (getattr(queue, "name", self["queue"]),)
            )
        if not 0.1 <= self["lease-time"] <= 3600:
            raise usage.UsageError("--lease-time must be from 0.1 to 3600 seconds")
        if self["ssl"]:
            if not self["ssl-certificate"]:
                raise usage.UsageError("--ssl needs --ssl-certificate")
            for name in ("ssl-certificate", "ssl-key", "ssl-ca-file"):
                if self[name] and not os.path.isfile(self[name]):
                    raise usage.UsageError("--%s: no such file: %s" % (name, self[name]))
            try:
                from gearman_tw.tls import serverOptions

                serverOptions(self["ssl-certificate"], self["ssl-key"], self["ssl-ca-file"])
            except ImportError as e:
                raise usage.UsageError("--ssl %s: %s" % (_TLS_NEEDS, e))
            except ValueError as e:
                raise usage.UsageError("--ssl: %s" % (e,))
        elif self["ssl-certificate"] or self["ssl-key"] or self["ssl-ca-file"]:
            raise usage.UsageError("--ssl-certificate, --ssl-key and --ssl-ca-file need --ssl")
        for description in self["endpoint"]:
            _checkDescription("--endpoint", description)
        # Unix sockets default to DEFAULT_SOCKET_MODE, not Twisted's 666.
        self["endpoint"] = [_withSocketMode(description) for description in self["endpoint"]]
        # (interface, port) pairs served by --port/--listen, TLS with --ssl.
        # --endpoint alone replaces the default socket; an explicit --port
        # still listens beside it.
        if self["listen"]:
            self["sockets"] = [(address, port) for address in self["listen"]]
        elif self["endpoint"] and not self._portGiven:
            self["sockets"] = []
        else:
            self["sockets"] = [("", port)]
        self["endpoints"] = [
            _describe(address, port, self["backlog"], self["ssl"]) for address, port in self["sockets"]
        ] + self["endpoint"]
        httpPort = self["http-port"]
        if httpPort is not None and not 0 <= httpPort <= 65535:
            raise usage.UsageError("--http-port must be between 0 and 65535")
        if self["http-no-worker-timeout"] <= 0:
            raise usage.UsageError("--http-no-worker-timeout must be positive")
        if self["http-max-body"] < 0:
            raise usage.UsageError("--http-max-body must not be negative")
        if self["http-listen"] and httpPort is None:
            raise usage.UsageError("--http-listen needs --http-port")
        for description in self["http-endpoint"]:
            _checkDescription("--http-endpoint", description)
        self["http-endpoint"] = [_withSocketMode(description) for description in self["http-endpoint"]]
        self["http-endpoints"] = list(self["http-endpoint"])
        if httpPort is not None:
            self["http-endpoints"][:0] = [
                "%s:%d:interface=%s" % ("tcp6" if ":" in a else "tcp", httpPort, _escape(a))
                for a in self["http-listen"] or ["127.0.0.1"]
            ]
        self["http-token"] = None
        if self["http-token-file"] is not None:
            self["http-token"] = _readToken(self["http-token-file"])
        if (self["http-token"] or self["http-allowed-host"]) and not self["http-endpoints"]:
            raise usage.UsageError(
                "--http-token-file and --http-allowed-host need --http-port or --http-endpoint"
            )


def _reloadPolicies(server: Any, path: str) -> bool:
    """
    Read the policy file at C{path} again for C{server}; if it is not
    valid, log why and keep the policies in force.
    """
    from gearman_tw.server.lifecycle import Policies, PoliciesError

    try:
        policies = Policies.fromFile(path)
    except PoliciesError as e:
        server.log.error("Keeping the lifecycle policies in force: {why}", why=str(e))
        return False
    server.setPolicies(policies)
    server.log.info("Lifecycle policies reloaded from {path}", path=path)
    return True


def makeService(options: Options, reactor: Any = None) -> IService:
    """
    Build the (unstarted) job server service tree from parsed C{options}.
    """
    from twisted.internet.endpoints import serverFromString

    from gearman_tw.server.admin import GEARMAND_VERSION, AdminCommands
    from gearman_tw.server.factory import GearmanServerFactory, KeepAlive, filteredLogger
    from gearman_tw.server.jobs import JobServer
    from gearman_tw.server.service import GearmanService, NamedEndpoint, ProcessService
    from gearman_tw.server.tuning import ProcessTuning, exitWithErrorAtExit

    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    from gearman_tw.queues import queueFromURL

    prefix = options["job-handle-prefix"]
    policies = None
    if options["policies"] is not None:
        from gearman_tw.server.lifecycle import Policies

        policies = Policies.fromFile(options["policies"])
    server = JobServer(
        reactor,
        handlePrefix=None if prefix is None else prefix.encode("utf-8"),
        jobRetries=options["job-retries"],
        idleFunctions=options["idle-functions"],
        roundRobin=bool(options["round-robin"]),
        globalPriority=options["priority-scope"] == "global",
        workerWakeup=options["worker-wakeup"],
        exceptions=bool(options["exceptions"]),
        queue=queueFromURL(options["queue"], reactor),
        policies=policies,
    )
    verbosity = options["verbose"]
    server.log = filteredLogger("gearman_tw.server", verbosity)
    admin = AdminCommands(
        server, version="%s+gearman-tw-%s" % (GEARMAND_VERSION, __version__), verbosity=verbosity
    )
    acl = None
    if options["access-policy"] is not None:
        from gearman_tw.server.acl import AccessControl

        acl = AccessControl(options["access-policy"], filteredLogger("gearman_tw.server", options["verbose"]))
    keepAlive = None
    if options["keepalive"]:
        keepAlive = KeepAlive(
            options["keepalive-idle"], options["keepalive-interval"], options["keepalive-count"]
        )
    factory = GearmanServerFactory(
        server,
        admin,
        maxPacketSize=options["max-packet-size"],
        keepAlive=keepAlive,
        log=filteredLogger("gearman_tw.server", verbosity),
        maxConnections=options["max-connections"],
        maxPerAddress=options["max-connections-per-address"],
        maxOutput=options["max-output-buffer"],
        maxInput=options["max-input-buffer"],
        packetTimeout=options["packet-timeout"],
        acl=acl,
    )
    # Named, so that a socket that cannot listen is reported in one line.
    endpoints = [
        NamedEndpoint(_socketEndpoint(reactor, options, address, port), _socketName(address, port))
        for address, port in options["sockets"]
    ]
    endpoints.extend(
        NamedEndpoint(serverFromString(reactor, description), description)
        for description in options["endpoint"]
    )
    gearman = GearmanService(
        factory,
        endpoints,
        reactor,
        drainTimeout=options["drain-timeout"],
        exitOnStartFailure=exitWithErrorAtExit,
    )
    # SIGHUP reloads the policy files.
    hangupHooks: List[Callable[[], object]] = []
    if acl is not None:
        hangupHooks.append(acl.reload)
    if policies is not None:
        hangupHooks.append(partial(_reloadPolicies, server, options["policies"]))
    # Signals, GC, allocator and switch interval: process-wide, so set here,
    # not by the server or the queue.
    tuning = ProcessTuning(
        gearman,
        reactor,
        gcThreshold=options["gc-threshold"],
        keepFreedMemory=options["keep-freed-memory"] << 20,
        switchInterval=getattr(server.queue, "switchInterval", None),
        onHangup=hangupHooks,
    )
    if options["admin-shutdown"]:
        admin.shutdown = gearman.shutdown
    # Logs a socket that cannot listen in one line, and exits with status 1.
    top = ProcessService()
    # First, so it starts before the server and stops after it has drained.
    tuning.setName("tuning")
    tuning.setServiceParent(top)
    serving: Any = top
    if options["standby"]:
        serving = _standby(server.queue, gearman, factory, reactor, options["lease-time"])
        serving.setServiceParent(top)
    gearman.setName("gearman")
    gearman.setServiceParent(serving)
    if options["http-endpoints"]:
        from twisted.application.strports import service as strportsService

        from gearman_tw.server.http import AccessPolicy
        from gearman_tw.server.web import makeSite

        site = makeSite(
            server,
            reactor,
            version=admin.version,
            noWorkerTimeout=options["http-no-worker-timeout"],
            maxBody=options["http-max-body"],
            policy=AccessPolicy(options["http-token"], options["http-allowed-host"], acl),
        )
        for description in options["http-endpoints"]:
            http = strportsService(description, site, reactor=reactor)
            http.endpoint = NamedEndpoint(http.endpoint, description)
            http.setServiceParent(serving)
    return top


def _standby(queue: Any, gearman: Any, factory: Any, reactor: Any, leaseTime: float) -> Any:
    """
    The service that starts the job server's listeners only while this
    server holds the lease of the queue's namespace; one that may have lost
    it stops serving at once and ends the process with status 1.
    """
    from gearman_tw.server.standby import StandbyService
    from gearman_tw.server.tuning import exitWithErrorAtExit

    holder = "%s:%d:%s" % (socket.gethostname(), os.getpid(), os.urandom(4).hex())

    def lost(why: str) -> None:
        gearman.fence()
        exitWithErrorAtExit()
        reactor.stop()

    standby = StandbyService(queue.lease(holder.encode("utf-8"), leaseTime), reactor, lost, closeQueue=queue.close)
    gearman.ownsQueue = False
    factory.fence = standby.mayServe
    standby.setName("standby")
    return standby


def _socketEndpoint(reactor: Any, options: Options, address: str, port: int) -> IStreamServerEndpoint:
    """
    The endpoint of one --port/--listen socket: TCP, or TLS with --ssl.
    """
    from twisted.internet.endpoints import (
        SSL4ServerEndpoint,
        TCP4ServerEndpoint,
        TCP6ServerEndpoint,
    )

    backlog = options["backlog"]
    ipv6 = ":" in address
    if not options["ssl"]:
        kind = TCP6ServerEndpoint if ipv6 else TCP4ServerEndpoint
        return kind(reactor, port, backlog=backlog, interface=address or ("::" if ipv6 else ""))
    from gearman_tw.tls import serverOptions

    contextFactory = serverOptions(options["ssl-certificate"], options["ssl-key"], options["ssl-ca-file"])
    return SSL4ServerEndpoint(reactor, port, contextFactory, backlog=backlog, interface=address)
