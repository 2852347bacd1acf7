"""
Tests for L{gearman_tw.tap}: C{twistd gearman}'s options and service tree.
"""

import errno
import io
import os
import sys
from typing import List

from twisted.application.service import IServiceCollection, IServiceMaker, ServiceMaker
from twisted.internet.defer import fail, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.testing import EventLoggingObserver, MemoryReactorClock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.plugin import IPlugin, getPlugins
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from gearman_tw import __version__, tap
from gearman_tw.errors import QueueError
from gearman_tw.server.service import CannotStart, GearmanService, ProcessService


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(args))
    return options


def started(testCase: SynchronousTestCase, options: tap.Options) -> MemoryReactorClock:
    """
    Start the service tree of C{options} on a memory reactor, stopped at
    C{testCase}'s cleanup.

    @return: the reactor.
    """
    reactor = MemoryReactorClock()
    top = tap.makeService(options, reactor)
    top.startService()
    testCase.addCleanup(top.stopService)
    return reactor


class OptionsTests(SynchronousTestCase):
    """
    Tests for L{tap.Options}.
    """

    def test_defaults(self) -> None:
        """
        With no options the server listens on every IPv4 address at 4730,
        with gearmand's defaults for everything else.
        """
        self.patch(tap.os, "environ", {})
        options = parse()
        self.assertEqual(options["endpoints"], ["tcp:4730:backlog=32"])
        self.assertEqual(options["job-retries"], 0)
        self.assertEqual(options["worker-wakeup"], 0)
        self.assertEqual(options["verbose"], "ERROR")
        self.assertFalse(options["round-robin"])
        self.assertFalse(options["exceptions"])

    def test_environmentPort(self) -> None:
        """
        C{$GEARMAND_PORT} replaces the default port, as in gearmand.
        """
        self.patch(tap.os, "environ", {"GEARMAND_PORT": "4999"})
        self.assertEqual(parse()["endpoints"], ["tcp:4999:backlog=32"])
        self.assertEqual(parse("--port", "5000")["endpoints"], ["tcp:5000:backlog=32"])

    def test_badEnvironmentPort(self) -> None:
        """
        A C{$GEARMAND_PORT} that is not a number is a usage error.
        """
        self.patch(tap.os, "environ", {"GEARMAND_PORT": "http"})
        self.assertRaises(UsageError, parse)

    def test_listen(self) -> None:
        """
        Each C{--listen} address becomes a TCP endpoint at C{--port}; IPv6
        colons are escaped.
        """
        options = parse("-p", "4731", "-L", "127.0.0.1", "--listen", "::1", "-b", "64")
        self.assertEqual(
            options["endpoints"],
            ["tcp:4731:interface=127.0.0.1:backlog=64", "tcp:4731:interface=\\:\\:1:backlog=64"],
        )

    def test_endpoint(self) -> None:
        """
        C{--endpoint} takes any endpoint description, repeatably, alongside
        C{--listen}.
        """
        options = parse("--endpoint", "unix:/tmp/g.sock", "-L", "127.0.0.1", "-e", "tcp:0")
        self.assertEqual(
            options["endpoints"],
            ["tcp:4730:interface=127.0.0.1:backlog=32", "unix:/tmp/g.sock:mode=660", "tcp:0"],
        )

    def test_socketMode(self) -> None:
        """
        A Unix socket description without C{mode=} gets mode 660 (Twisted's
        default is 666); one with it is kept as it is.  HTTP sockets too.
        """
        for given, used in [
            ("unix:/tmp/g.sock", "unix:/tmp/g.sock:mode=660"),
            ("unix:/tmp/g.sock:mode=0600", "unix:/tmp/g.sock:mode=0600"),
            ("unix:address=/tmp/a\\:b:lockfile=0", "unix:address=/tmp/a\\:b:lockfile=0:mode=660"),
            ("unix:mode=640:address=/tmp/g.sock", "unix:mode=640:address=/tmp/g.sock"),
            ("tcp:0", "tcp:0"),
        ]:
            self.assertEqual(parse("--endpoint", given)["endpoint"], [used])
            self.assertEqual(parse("--http-endpoint", given)["http-endpoints"], [used])

    def test_badEndpoint(self) -> None:
        """
        An C{--endpoint} or C{--http-endpoint} description Twisted cannot
        parse is a usage error naming it, not a traceback later.
        """
        for description in ("foo:bar", "tcp:x", "tcp:1:colour=red", "unix:/tmp/g.sock:mode=rw", "unix"):
            for option in ("--endpoint", "--http-endpoint"):
                with self.assertRaises(UsageError) as caught:
                    parse(option, description)
                self.assertIn(
                    "%s %s is not a valid endpoint description: " % (option, description), str(caught.exception)
                )

    def test_listenNames(self) -> None:
        """
        C{--listen} takes IP addresses and host names (resolved when
        listening); anything else is a usage error.
        """
        for address in ("127.0.0.1", "::1", "0.0.0.0", "localhost", "gearman.example.", "fe80::1%lo"):
            self.assertEqual(parse("--listen", address)["listen"], [address])
        for address in ("999.1.1.1", "10.0.0", "bad name", "", "a..b", "host:4730"):
            with self.assertRaises(UsageError) as caught:
                parse("--listen", address)
            self.assertEqual(
                str(caught.exception), "--listen takes an IP address or a host name, not %r" % (address,)
            )

    def test_gearmandOptions(self) -> None:
        """
        gearmand's short options are accepted with the same meaning.
        """
        options = parse("-j", "3", "-w", "2", "-R", "-t", "8", "--job-handle-prefix", "P")
        self.assertEqual(options["job-retries"], 3)
        self.assertEqual(options["worker-wakeup"], 2)
        self.assertTrue(options["round-robin"])
        self.assertEqual(options["job-handle-prefix"], "P")

    def test_verbose(self) -> None:
        """
        C{--verbose} takes a gearmand level name in any case.
        """
        self.assertEqual(parse("--verbose", "info")["verbose"], "INFO")
        self.assertRaises(UsageError, parse, "--verbose", "LOUD")

    def test_rangeChecks(self) -> None:
        """
        Out-of-range numbers are usage errors, not surprises at run time.
        """
        for args in (
            ("--port", "70000"),
            ("--port", "-1"),
            ("--backlog", "0"),
            ("--job-retries", "256"),
            ("--worker-wakeup", "-1"),
            ("--max-packet-size", "10"),
            ("--drain-timeout", "-1"),
            ("--keepalive-idle", "0"),
            ("--gc-threshold", "-1"),
            ("--keep-freed-memory", "-1"),
            ("--port", "x"),
        ):
            self.assertRaises(UsageError, parse, *args)

    def test_version(self) -> None:
        """
        C{--version} prints our version and exits.
        """
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        self.assertRaises(SystemExit, parse, "--version")
        self.assertIn("gearman_tw %s" % (__version__,), out.getvalue())


class MakeServiceTests(SynchronousTestCase):
    """
    Tests for L{tap.makeService}.
    """

    def build(self, *args: str):
        reactor = MemoryReactorClock()
        top = tap.makeService(parse(*args), reactor)
        return reactor, top, IServiceCollection(top).getServiceNamed("gearman")

    def test_unstarted(self) -> None:
        """
        makeService builds a service tree without listening.
        """
        reactor, top, gearman = self.build("-L", "127.0.0.1", "-p", "4740")
        self.assertIsInstance(gearman, GearmanService)
        self.assertFalse(top.running)
        self.assertEqual(reactor.tcpServers, [])

    def test_listens(self) -> None:
        """
        Started, the service listens on every configured endpoint with the
        backlog given.
        """
        reactor, top, gearman = self.build("-L", "127.0.0.1", "-L", "127.0.0.2", "-b", "50")
        top.startService()
        self.addCleanup(top.stopService)
        self.assertEqual(
            [(port, backlog, interface) for port, _, backlog, interface in reactor.tcpServers],
            [(4730, 50, "127.0.0.1"), (4730, 50, "127.0.0.2")],
        )

    def test_namedEndpoints(self) -> None:
        """
        Every endpoint is named for start-up failures; the root service
        reports them.
        """
        reactor, top, gearman = self.build("-L", "127.0.0.1", "-L", "::1", "-p", "4740", "-e", "tcp:0")
        self.assertIsInstance(top, ProcessService)
        self.assertEqual(
            [endpoint.name for endpoint in gearman.endpoints], ["127.0.0.1:4740", "[::1]:4740", "tcp:0"]
        )
        for endpoint in gearman.endpoints:
            self.assertTrue(verifyObject(IStreamServerEndpoint, endpoint))
        self.assertEqual([endpoint.name for endpoint in self.build()[2].endpoints], ["port 4730"])

    def test_unixSocketMode(self) -> None:
        """
        A Unix socket listens with mode 0660 unless its description says
        otherwise.
        """
        reactor, top, gearman = self.build("-e", "unix:/tmp/a.sock", "-e", "unix:/tmp/b.sock:mode=600")
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        self.assertEqual(
            [(address, mode) for address, _, _, mode, _ in reactor.unixServers],
            [("/tmp/a.sock", 0o660), ("/tmp/b.sock", 0o600)],
        )

    def test_exitOnStartFailure(self) -> None:
        """
        Under twistd a start-up failure after the reactor runs makes the
        process exit with an error.
        """
        from gearman_tw.server.tuning import exitWithErrorAtExit

        self.assertIs(self.build()[2].exitOnStartFailure, exitWithErrorAtExit)

    def tuning(self, *args: str):
        """
        The L{ProcessTuning} of the service tree C{args} build.
        """
        from gearman_tw.server.tuning import ProcessTuning

        _, top, gearman = self.build(*args)
        tuned = IServiceCollection(top).getServiceNamed("tuning")
        self.assertIsInstance(tuned, ProcessTuning)
        self.assertIs(tuned.server, gearman)
        return tuned

    def test_tuningFirst(self) -> None:
        """
        The process tuning is the first service of the tree, so it starts
        before the job server and stops after it has drained.
        """
        _, top, gearman = self.build()
        self.assertEqual([service.name for service in top][:2], ["tuning", "gearman"])

    def test_keepFreedMemory(self) -> None:
        """
        C{--keep-freed-memory} is in MiB, 64 by default, and reaches the
        process tuning in bytes.
        """
        self.assertEqual(self.tuning().keepFreedMemory, 64 << 20)
        self.assertEqual(self.tuning("--keep-freed-memory", "0").keepFreedMemory, 0)
        self.assertEqual(self.tuning("--keep-freed-memory", "8").keepFreedMemory, 8 << 20)

    def test_gcThreshold(self) -> None:
        """
        C{--gc-threshold} (50000 by default) reaches the process tuning.
        """
        self.assertEqual(self.tuning().gcThreshold, 50000)
        self.assertEqual(self.tuning("--gc-threshold", "0").gcThreshold, 0)

    def test_switchInterval(self) -> None:
        """
        With an SQLite queue the process keeps the switch interval that
        queue asks for; with the memory queue it is left alone.
        """
        from gearman_tw.queues.sqlite import SWITCH_INTERVAL

        self.assertIsNone(self.tuning().switchInterval)
        path = os.path.join(self.mktemp(), "q.db")
        os.makedirs(os.path.dirname(path))
        self.assertEqual(self.tuning("-q", "sqlite:" + path).switchInterval, SWITCH_INTERVAL)

    def test_hangupReloadsPolicy(self) -> None:
        """
        With C{--access-policy}, SIGHUP reloads the policy; without, it
        only rotates the log.
        """
        self.assertEqual(self.tuning().onHangup, [])
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("")
        (hook,) = self.tuning("--access-policy", path).onHangup
        self.assertEqual(hook.__name__, "reload")

    def test_processTuningApplied(self) -> None:
        """
        Starting the tree C{twistd gearman} runs installs the signal
        handlers and applies the garbage collector, allocator and switch
        interval settings; stopping it puts back those it can.
        """
        import gc
        import signal

        from gearman_tw.server import tuning

        for number in (signal.SIGUSR1, signal.SIGHUP):
            self.addCleanup(signal.signal, number, signal.getsignal(number))
        self.addCleanup(gc.set_threshold, *gc.get_threshold())
        self.addCleanup(gc.unfreeze)
        self.addCleanup(sys.setswitchinterval, sys.getswitchinterval())
        sys.setswitchinterval(0.005)
        allocator: List[int] = []
        self.patch(tuning, "keepFreedMemory", allocator.append)
        before = gc.get_threshold(), signal.getsignal(signal.SIGUSR1)
        path = os.path.join(self.mktemp(), "q.db")
        os.makedirs(os.path.dirname(path))
        options = parse("-L", "127.0.0.1", "-q", "sqlite:" + path, "--gc-threshold", "4321")
        top = tap.makeService(options, MemoryReactorClock())
        tuned = IServiceCollection(top).getServiceNamed("tuning")
        gearman = IServiceCollection(top).getServiceNamed("gearman")
        # No queue file is opened here: only the process settings matter.
        self.patch(gearman.factory.server, "queue", None)
        top.privilegedStartService()
        top.startService()
        self.assertEqual(signal.getsignal(signal.SIGUSR1), tuned._onSignal)
        self.assertEqual(signal.getsignal(signal.SIGHUP), tuned._onHangup)
        self.assertEqual(gc.get_threshold()[0], 4321)
        self.assertEqual(allocator, [64 << 20])
        self.assertLess(sys.getswitchinterval(), 0.001)
        self.successResultOf(top.stopService())
        self.assertEqual((gc.get_threshold(), signal.getsignal(signal.SIGUSR1)), before)
        self.assertAlmostEqual(sys.getswitchinterval(), 0.005)

    def test_serverSettings(self) -> None:
        """
        The job server gets the options that shape its semantics.
        """
        _, _, gearman = self.build(
            "-j", "2", "-w", "1", "-R", "--exceptions", "--job-handle-prefix", "X"
        )
        server = gearman.factory.server
        self.assertEqual(server.jobRetries, 2)
        self.assertEqual(server.workerWakeup, 1)
        self.assertTrue(server.roundRobin)
        self.assertTrue(server.exceptions)
        self.assertEqual(server.handlePrefix, b"X:")

    def test_factorySettings(self) -> None:
        """
        Packet size, keepalive and verbosity reach the factory and admin.
        """
        _, _, gearman = self.build(
            "--max-packet-size", "2048", "--keepalive", "--keepalive-idle", "60", "--verbose", "debug"
        )
        factory = gearman.factory
        self.assertEqual(factory.maxPacketSize, 2048)
        self.assertEqual(factory.keepAlive.idle, 60)
        self.assertEqual(factory.admin.verbosity, "DEBUG")

    def test_keepaliveOff(self) -> None:
        """
        Without C{--keepalive} connections keep the system default.
        """
        _, _, gearman = self.build()
        self.assertIsNone(gearman.factory.keepAlive)

    def test_adminShutdown(self) -> None:
        """
        The admin C{shutdown} command is wired to the service only with
        C{--admin-shutdown}.
        """
        _, _, gearman = self.build()
        self.assertIsNone(gearman.factory.admin.shutdown)
        _, _, gearman = self.build("--admin-shutdown")
        self.assertEqual(gearman.factory.admin.shutdown, gearman.shutdown)

    def test_version(self) -> None:
        """
        The admin C{version} reports gearmand's version with ours after it.
        """
        _, _, gearman = self.build()
        self.assertTrue(gearman.factory.admin.version.startswith("1.1.20+gearman-tw-"))


class RefusingReactor(MemoryReactorClock):
    """
    A memory reactor on which every TCP port is in use.
    """

    def listenTCP(self, port, factory, backlog=50, interface=""):
        raise CannotListenError(interface, port, OSError(errno.EADDRINUSE, "Address already in use"))


class FailingQueue:
    """
    A persistent queue that cannot be opened.
    """

    persistent = True
    name = "failing"

    def open(self):
        return fail(QueueError("cannot open /nowhere/q.db: no such directory /nowhere"))

    def close(self):
        return succeed(None)


class StartFailureTests(SynchronousTestCase):
    """
    A service tree from L{tap.makeService} that cannot start says why in one
    log line and makes the process exit with status 1.
    """

    def setUp(self) -> None:
        self.events = EventLoggingObserver()
        globalLogPublisher.addObserver(self.events)
        self.addCleanup(globalLogPublisher.removeObserver, self.events)

    def critical(self):
        return [
            (formatEvent(event), event.get("log_failure"))
            for event in self.events
            if event["log_level"] == LogLevel.critical
        ]

    def test_portInUse(self) -> None:
        """
        A port in use: L{CannotStart}, a L{SystemExit} with status 1 that
        twistd lets end the process without a traceback, after one critical
        line naming the address.
        """
        top = tap.makeService(parse("-L", "127.0.0.1", "-p", "4740"), RefusingReactor())
        with self.assertRaises(CannotStart) as caught:
            top.privilegedStartService()
        self.assertIsInstance(caught.exception, SystemExit)
        self.assertIsInstance(caught.exception, Exception)
        self.assertEqual(caught.exception.code, 1)
        message = "cannot listen on 127.0.0.1:4740: Address already in use"
        self.assertEqual(str(caught.exception), message)
        self.assertEqual(self.critical(), [("Cannot start the job server: " + message, None)])

    def test_httpPortInUse(self) -> None:
        """
        An HTTP socket that cannot listen is reported the same way.
        """
        top = tap.makeService(parse("-e", "unix:/tmp/g.sock", "--http-port", "8080"), RefusingReactor())
        with self.assertRaises(CannotStart) as caught:
            top.privilegedStartService()
        message = "cannot listen on tcp:8080:interface=127.0.0.1: Address already in use"
        self.assertEqual(str(caught.exception), message)
        self.assertEqual(self.critical(), [("Cannot start the job server: " + message, None)])

    def test_queueFailsBeforeReactorRuns(self) -> None:
        """
        A queue that fails to open while the reactor is not running yet (in
        C{startService}) is logged in one line, and the reactor is stopped
        as soon as it runs, rather than serving nothing forever.
        """
        reactor = MemoryReactorClock()
        top = tap.makeService(parse("-L", "127.0.0.1"), reactor)
        gearman = IServiceCollection(top).getServiceNamed("gearman")
        gearman.factory.server.queue = FailingQueue()
        exits = []
        gearman.exitOnStartFailure = lambda: exits.append(1)
        top.privilegedStartService()
        top.startService()
        self.assertEqual(exits, [1])
        self.assertEqual(
            self.critical(),
            [("Cannot start the job server: cannot open /nowhere/q.db: no such directory /nowhere", None)],
        )
        self.assertFalse(reactor.hasStopped)
        reactor.run()
        self.assertTrue(reactor.hasStopped)


class PluginTests(SynchronousTestCase):
    """
    The twistd dropin.
    """

    def test_discovered(self) -> None:
        """
        twistd finds a C{gearman} service maker that loads this tap lazily.
        """
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        maker = makers["gearman"]
        self.assertTrue(IPlugin.providedBy(maker))
        assert isinstance(maker, ServiceMaker)
        self.assertEqual(maker.module, "gearman_tw.tap")
        self.assertIsInstance(maker.options(), tap.Options)


class TLSOptionsTests(SynchronousTestCase):
    """
    gearmand's --ssl options.
    """

    def setUp(self) -> None:
        import tempfile

        from tests.tlscerts import makeCertificate, writePEM

        self.certPath, self.keyPath = writePEM(
            tempfile.mkdtemp(), "server", *makeCertificate("server")
        )

    def parseTLS(self, *args: str) -> tap.Options:
        """
        Parse C{--ssl} with the test certificate and key, then C{args}.
        """
        return parse("--ssl", "--ssl-certificate", self.certPath, "--ssl-key", self.keyPath, *args)

    def test_needsCertificate(self) -> None:
        """
        C{--ssl} without a certificate, or a missing file, is a usage error;
        so are certificate options without C{--ssl}.
        """
        self.assertRaises(UsageError, parse, "--ssl")
        self.assertRaises(UsageError, parse, "--ssl", "--ssl-certificate", "/nonexistent.pem")
        self.assertRaises(UsageError, parse, "--ssl-certificate", self.certPath)

    def test_unusableFiles(self) -> None:
        """
        A certificate file without its key, a key that is not the
        certificate's, or a CA file without a certificate (with which
        clients would be served unverified) is a usage error saying so.
        """
        import os

        from tests.tlscerts import makeCertificate, writePEM

        directory = os.path.dirname(self.certPath)
        _, otherKey = writePEM(directory, "other", *makeCertificate("other"))
        empty = os.path.join(directory, "empty.pem")
        with open(empty, "w") as f:
            f.write("no certificate here\n")
        cases = [
            (["--ssl-certificate", self.certPath], "no certificate and matching private key"),
            (["--ssl-certificate", self.certPath, "--ssl-key", otherKey], "no certificate and matching private key"),
            (
                ["--ssl-certificate", self.certPath, "--ssl-key", self.keyPath, "--ssl-ca-file", empty],
                "no PEM certificate in " + empty,
            ),
            (
                ["--ssl-certificate", self.certPath, "--ssl-key", self.keyPath, "--ssl-ca-file", self.keyPath],
                "no PEM certificate in ",
            ),
        ]
        for args, message in cases:
            with self.assertRaises(UsageError, msg=args) as caught:
                parse("--ssl", *args)
            self.assertIn(message, str(caught.exception))

    def test_clientCertificatesRequired(self) -> None:
        """
        With C{--ssl-ca-file} the TLS sockets use options that require and
        verify client certificates.
        """
        from gearman_tw.tls import ClientVerifyingOptions

        reactor = started(self, self.parseTLS("--ssl-ca-file", self.certPath, "-L", "127.0.0.1"))
        [(port, factory, contextFactory, *_)] = reactor.sslServers
        self.assertIsInstance(contextFactory, ClientVerifyingOptions)

    def test_tlsEndpoints(self) -> None:
        """
        With C{--ssl} every --port/--listen socket serves TLS; --endpoint
        descriptions are kept as given.
        """
        options = self.parseTLS("-L", "127.0.0.1", "-e", "tcp:0")
        self.assertEqual(options["endpoints"], ["ssl:4730:interface=127.0.0.1:backlog=32", "tcp:0"])
        reactor = started(self, options)
        self.assertEqual([port for port, *_ in reactor.sslServers], [4730])
        self.assertEqual([port for port, *_ in reactor.tcpServers], [0])


class HTTPOptionsTests(SynchronousTestCase):
    """
    The HTTP options.
    """

    def test_noHTTPByDefault(self) -> None:
        """
        Without HTTP options no HTTP service is built.
        """
        self.assertEqual(parse()["http-endpoints"], [])

    def test_httpPort(self) -> None:
        """
        C{--http-port} listens at 127.0.0.1 only, whatever C{--listen} says;
        C{--http-endpoint} adds any endpoint, as given.
        """
        options = parse("--http-port", "8080", "-L", "0.0.0.0", "--http-endpoint", "tcp:9090")
        self.assertEqual(
            options["http-endpoints"], ["tcp:8080:interface=127.0.0.1", "tcp:9090"]
        )
        self.assertEqual(parse("--http-port", "8080")["http-endpoints"], ["tcp:8080:interface=127.0.0.1"])
        self.assertEqual(parse("--http-endpoint", "tcp:9090")["http-endpoints"], ["tcp:9090"])
        self.assertRaises(UsageError, parse, "--http-port", "99999")

    def test_httpListen(self) -> None:
        """
        C{--http-listen} (repeatable) names the IPv4 or IPv6 addresses
        C{--http-port} listens at.
        """
        options = parse("--http-port", "8080", "--http-listen", "0.0.0.0", "--http-listen", "::1")
        self.assertEqual(
            options["http-endpoints"], ["tcp:8080:interface=0.0.0.0", "tcp6:8080:interface=\\:\\:1"]
        )

    def test_httpListenRefused(self) -> None:
        """
        C{--http-listen} takes only IP addresses, and only with
        C{--http-port}.
        """
        for address in ("localhost", "", "127.0.0.1:80", "[::1]", "300.0.0.1"):
            with self.assertRaises(UsageError) as caught:
                parse("--http-port", "8080", "--http-listen", address)
            self.assertIn("IPv4 or IPv6 address", str(caught.exception))
        for argv in (("--http-listen", "127.0.0.1"), ("--http-endpoint", "tcp:9090", "--http-listen", "127.0.0.1")):
            with self.assertRaises(UsageError) as caught:
                parse(*argv)
            self.assertEqual(str(caught.exception), "--http-listen needs --http-port")

    def test_httpService(self) -> None:
        """
        The HTTP site listens beside the job server when started: on
        loopback, with no C{--listen} or C{--http-listen}.
        """
        reactor = started(self, parse("--port", "4730", "--http-port", "8080"))
        ports = [(port, interface) for port, _, _, interface in reactor.tcpServers]
        self.assertEqual(ports, [(4730, ""), (8080, "127.0.0.1")])

    def test_httpServiceIPv6(self) -> None:
        """
        An IPv6 C{--http-listen} address is listened at.
        """
        reactor = started(self, parse("--http-port", "8080", "--http-listen", "::1"))
        self.assertIn((8080, "::1"), [(port, interface) for port, _, _, interface in reactor.tcpServers])

    def tokenFile(self, content: bytes) -> str:
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(content)
        return path

    def test_tokenFile(self) -> None:
        """
        C{--http-token-file} reads the token, without surrounding
        whitespace; without it there is none.
        """
        path = self.tokenFile(b"  s3cret-Token_1\n\n")
        self.assertEqual(parse("--http-port", "8080", "--http-token-file", path)["http-token"], b"s3cret-Token_1")
        self.assertIsNone(parse("--http-port", "8080")["http-token"])

    def test_tokenFileRefused(self) -> None:
        """
        A missing, unreadable or empty token file, a token with spaces or
        control characters, or a token without HTTP, is a one-line usage
        error naming the option.
        """
        missing = self.mktemp()
        directory = self.mktemp()
        os.mkdir(directory)
        for path, words in (
            (missing, "cannot read"),
            (directory, "cannot read"),
            (self.tokenFile(b""), "empty"),
            (self.tokenFile(b" \n\t\n"), "empty"),
            (self.tokenFile(b"two words"), "printable ASCII"),
            (self.tokenFile(b"t\x00k"), "printable ASCII"),
            (self.tokenFile("t\u00e9".encode()), "printable ASCII"),
        ):
            with self.assertRaises(UsageError) as caught:
                parse("--http-port", "8080", "--http-token-file", path)
            message = str(caught.exception)
            self.assertTrue(message.startswith("--http-token-file: "), message)
            self.assertIn(words, message)
            self.assertNotIn("\n", message)
        self.assertRaises(UsageError, parse, "--http-token-file", self.tokenFile(b"t"))

    def test_allowedHosts(self) -> None:
        """
        C{--http-allowed-host} (repeatable) takes host names, in lower case,
        and needs HTTP.
        """
        options = parse("--http-port", "8080", "--http-allowed-host", "Gearman.Example.", "--http-allowed-host", "b")
        self.assertEqual(options["http-allowed-host"], ["gearman.example", "b"])
        self.assertEqual(parse("--http-port", "8080")["http-allowed-host"], [])
        for name in ("", "a b", "a:80", "http://a", "a/b", "a..b"):
            self.assertRaises(UsageError, parse, "--http-port", "8080", "--http-allowed-host", name)
        self.assertRaises(UsageError, parse, "--http-allowed-host", "a")

    def test_policy(self) -> None:
        """
        The token and allowed names reach the HTTP site's policy.
        """
        from twisted.web.server import Site

        path = self.tokenFile(b"s3cret\n")
        options = parse("--http-port", "8080", "--http-token-file", path, "--http-allowed-host", "g.example")
        reactor = started(self, options)
        [site] = {factory for _, factory, _, _ in reactor.tcpServers if isinstance(factory, Site)}
        policy = site.resource.policy
        self.assertEqual((policy.token, policy.allowedHosts), (b"s3cret", frozenset(["g.example"])))


class ConnectionLimitOptionTests(SynchronousTestCase):
    """
    C{--max-connections} and C{--max-connections-per-address}.
    """

    def test_passed(self) -> None:
        """
        Both limits reach the server factory; by default there are none.
        """
        reactor = MemoryReactorClock()
        gearman = IServiceCollection(
            tap.makeService(parse("--max-connections", "100", "--max-connections-per-address", "5"), reactor)
        ).getServiceNamed("gearman")
        self.assertEqual((gearman.factory.maxConnections, gearman.factory.maxPerAddress), (100, 5))
        plain = IServiceCollection(tap.makeService(parse(), reactor)).getServiceNamed("gearman")
        self.assertEqual((plain.factory.maxConnections, plain.factory.maxPerAddress), (0, 0))

    def test_negative(self) -> None:
        """
        A negative limit is a usage error.
        """
        self.assertRaises(UsageError, parse, "--max-connections", "-1")
        self.assertRaises(UsageError, parse, "--max-connections-per-address", "-1")


class FlowOptionTests(SynchronousTestCase):
    """
    C{--max-output-buffer}, C{--max-input-buffer} and C{--packet-timeout}.
    """

    def test_passed(self) -> None:
        """
        The options reach the server factory; the defaults are the flow
        module's and the factory's.
        """
        from gearman_tw.server.factory import DEFAULT_PACKET_TIMEOUT
        from gearman_tw.server.flow import DEFAULT_MAX_INPUT, DEFAULT_MAX_OUTPUT

        reactor = MemoryReactorClock()
        options = parse("--max-output-buffer", "1000", "--max-input-buffer", "0", "--packet-timeout", "2.5")
        factory = IServiceCollection(tap.makeService(options, reactor)).getServiceNamed("gearman").factory
        self.assertEqual(
            (factory.maxOutput, factory.inputBudget.limit, factory.packetTimeout), (1000, 0, 2.5)
        )
        plain = IServiceCollection(tap.makeService(parse(), reactor)).getServiceNamed("gearman").factory
        self.assertEqual(
            (plain.maxOutput, plain.inputBudget.limit, plain.packetTimeout),
            (DEFAULT_MAX_OUTPUT, DEFAULT_MAX_INPUT, DEFAULT_PACKET_TIMEOUT),
        )

    def test_negative(self) -> None:
        """
        Negative values are usage errors.
        """
        for name in ("--max-output-buffer", "--max-input-buffer", "--packet-timeout", "--idle-functions"):
            self.assertRaises(UsageError, parse, name, "-1")

    def test_idleFunctions(self) -> None:
        """
        C{--idle-functions} reaches the job server; by default it is the
        job server's default.
        """
        from gearman_tw.server.jobs import IDLE_FUNCTIONS

        reactor = MemoryReactorClock()
        server = (
            IServiceCollection(tap.makeService(parse("--idle-functions", "5"), reactor))
            .getServiceNamed("gearman")
            .factory.server
        )
        self.assertEqual(server.idleFunctions, 5)
        plain = IServiceCollection(tap.makeService(parse(), reactor)).getServiceNamed("gearman").factory.server
        self.assertEqual(plain.idleFunctions, IDLE_FUNCTIONS)
