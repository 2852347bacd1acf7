"""
Tests for L{gearman_tw.cli}: the command line as libgearman's C{gearman}
and C{gearadmin} spell it, what the commands print, and the library
changes they need (a client that fails fast, a reconnector that says
nothing about attempts its own stop cancelled).
"""

import io
import json
from typing import Any, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectingCancelledError, ProcessDone, ProcessTerminated
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.admin import AdminError, FunctionStatus
from gearman_tw.cli import main
from gearman_tw.cli.admin import admin
from gearman_tw.cli.messages import StateLog, sentence
from gearman_tw.cli.options import HelpRequested, UsageError, parse, route, serverName
from gearman_tw.cli.top import Top, render
from gearman_tw.cli.worker import CommandRun
from gearman_tw.client import GearmanClient
from gearman_tw.connection import JobServerConnection
from gearman_tw.errors import JobFailed, ServerUnavailable
from gearman_tw.reconnect import Reconnector
from gearman_tw.server import JobServer
from gearman_tw.testing import MemoryServerEndpoint


class GearmanFlagsTests(SynchronousTestCase):
    """
    The letters of libgearman's C{gearman} mean the same here.
    """

    def test_servers(self) -> None:
        """
        C{-h HOST} (repeatable) and C{-p PORT} name the servers, as in
        gearman; C{-p} is the port of hosts given without one.
        """
        invocation = parse(["status", "-h", "a", "-h", "b:1", "-p", "4731", "-h", "[::1]"])
        self.assertEqual(invocation.servers, ["a:4731", "b:1", "[::1]:4731"])
        self.assertEqual(parse(["status"]).servers, ["127.0.0.1:4730"])
        self.assertEqual(parse(["status", "-p", "9"]).servers, ["127.0.0.1:9"])
        self.assertEqual(parse(["status", "--server", "unix:path=/s"]).servers, ["unix:path=/s"])

    def test_ssl(self) -> None:
        """
        C{-S} (gearman's TLS flag) makes each host a verifying C{tls:}
        description.
        """
        self.assertEqual(
            parse(["status", "-S", "-h", "gm.example", "-h", "[::1]:5"]).servers,
            ["tls:host=gm.example:port=4730", "tls:host=\\:\\:1:port=5"],
        )

    def test_submitLetters(self) -> None:
        """
        C{-f} (repeatable), C{-u}, C{-b}, C{-I}, C{-L}, C{-t} (milliseconds),
        C{-n}, C{-N}, C{-s} and C{-P} are gearman's client flags.
        """
        options = parse(["submit", "-f", "a", "-f", "b", "-u", "key", "-b", "-I", "-t", "1500", "-P", "x", "y"]).options
        self.assertEqual(
            (options.functions, options.unique, options.background, options.priority, options.timeout, options.prefix),
            (["a", "b"], "key", True, "high", 1500, True),
        )
        self.assertEqual(options.args, ["x", "y"])
        self.assertEqual(parse(["submit", "-L", "f"]).options.priority, "low")
        self.assertEqual(parse(["submit", "f"]).options.priority, "normal")
        self.assertTrue(parse(["submit", "-n", "f"]).options.lines)
        self.assertTrue(parse(["submit", "-N", "f"]).options.lines_stripped)
        self.assertTrue(parse(["submit", "-s", "f"]).options.no_input)

    def test_workerLetters(self) -> None:
        """
        C{-c} is a count of jobs (then exit), C{-f} repeats, C{-n}/C{-N} send
        the command's output line by line, C{-w} is accepted.
        """
        options = parse(["worker", "-w", "-c", "5", "-f", "a", "-f", "b", "-N", "--", "tr", "-d", "x"]).options
        self.assertEqual((options.count, options.functions, options.lines_stripped), (5, ["a", "b"], True))
        self.assertEqual(options.args, ["tr", "-d", "x"])
        self.assertEqual(options.concurrency, 1)
        self.assertEqual(parse(["worker", "f", "--concurrency", "3", "cat"]).options.concurrency, 3)

    def test_functionPositional(self) -> None:
        """
        Without C{-f}, the first argument is the function.
        """
        options = parse(["submit", "rev", "a", "b"]).options
        self.assertEqual((options.functions, options.args), (["rev"], ["a", "b"]))
        options = parse(["worker", "rev", "--", "rev"]).options
        self.assertEqual((options.functions, options.args), (["rev"], ["rev"]))

    def test_optionsAfterPositionals(self) -> None:
        """
        Options may come after the arguments, as getopt allows; C{--} ends
        them (even a second C{--} is then an argument).
        """
        options = parse(["submit", "rev", "abc", "-u", "u1", "-t", "20", "-h", "h:1"]).options
        self.assertEqual((options.args, options.unique, options.timeout, options.hosts), (["abc"], "u1", 20, ["h:1"]))
        options = parse(["worker", "rev", "-c", "1", "--", "sed", "-e", "s/a/b/", "--"]).options
        self.assertEqual((options.count, options.args), (1, ["sed", "-e", "s/a/b/", "--"]))
        options = parse(["worker", "-f", "x", "--", "-weird"]).options
        self.assertEqual(options.args, ["-weird"])

    def test_gearmanLine(self) -> None:
        """
        A gearman command line works as it is: C{-f} without a command word
        submits, C{-w} runs a worker.
        """
        self.assertEqual(
            route(["-h", "h", "-p", "1", "-f", "rev", "status"])[:2],
            ("submit", ["-h", "h", "-p", "1", "-f", "rev", "status"]),
        )
        invocation = parse(["-w", "-f", "rev", "-c", "1", "--", "rev"])
        self.assertEqual((invocation.command, invocation.options.args), ("worker", ["rev"]))
        invocation = parse(["-bIf", "rev", "data"])
        self.assertEqual(
            (invocation.command, invocation.options.functions, invocation.options.priority), ("submit", ["rev"], "high")
        )

    def test_gearadminLine(self) -> None:
        """
        gearadmin's options name the admin commands.
        """
        self.assertEqual(parse(["--status", "-h", "h", "-p", "1"]).command, "status")
        self.assertEqual(parse(["-h", "h", "--server-version"]).command, "version")
        self.assertEqual(parse(["--show-unique-jobs"]).command, "unique-jobs")
        invocation = parse(["--cancel-job", "T:1"])
        self.assertEqual((invocation.command, invocation.options.args), ("cancel", ["T:1"]))
        self.assertEqual(parse(["--drop-function=f"]).options.args, ["f"])
        self.assertRaises(UsageError, parse, ["--status", "--workers"])

    def test_legacyServer(self) -> None:
        """
        The old C{-s SERVER} before a command word still names a server,
        with a note; anywhere else C{-s} is gearman's flag.
        """
        invocation = parse(["-s", "unix:path=/s", "worker", "reverse", "--", "rev"])
        self.assertEqual((invocation.command, invocation.servers), ("worker", ["unix:path=/s"]))
        self.assertIn("-h SERVER", invocation.notes[0])
        invocation = parse(["-s", "-f", "rev"])
        self.assertEqual((invocation.command, invocation.options.no_input, invocation.notes), ("submit", True, []))

    def test_help(self) -> None:
        """
        C{-H} and C{--help} are help (C{-h} is the host); C{--version}.
        """
        self.assertIn("commands:", self.assertRaises(HelpRequested, parse, ["-H"]).text)
        self.assertIn("commands:", self.assertRaises(HelpRequested, parse, ["--help"]).text)
        self.assertIn("-c COUNT", self.assertRaises(HelpRequested, parse, ["worker", "--help"]).text)
        self.assertIn("gearman-tw ", self.assertRaises(HelpRequested, parse, ["--version"]).text)

    def test_usageErrors(self) -> None:
        """
        Wrong lines raise L{UsageError} with one line saying why.
        """
        for argv in (
            [],
            ["frobnicate"],
            ["submit"],
            ["submit", "-t", "0", "f"],
            ["submit", "-t", "1.5", "f"],
            ["submit", "-n", "f", "data"],
            ["status", "-p", "70000"],
            ["cancel"],
            ["maxqueue", "f", "x"],
            ["worker", "f", "tr", "-d", "x"],
            ["worker", "-c", "-1", "f"],
        ):
            error = self.assertRaises(UsageError, parse, argv)
            self.assertNotIn("\n", str(error), argv)
        self.assertIn("after --", str(self.assertRaises(UsageError, parse, ["worker", "f", "tr", "-d", "x"])))

    def test_serverName(self) -> None:
        """
        Endpoint descriptions pass as they are.
        """
        self.assertEqual(serverName("tls:host=h:port=1", 9), "tls:host=h:port=1")
        self.assertEqual(serverName("h", 9), "h:9")
        self.assertEqual(serverName("h", 9, ssl=True), "tls:host=h:port=9")


class MainTests(SynchronousTestCase):
    """
    L{main}'s exit statuses and messages.
    """

    def test_usage(self) -> None:
        """
        A wrong command line exits with status 2 and one line.
        """
        err = io.StringIO()
        failure = self.failureResultOf(main(Clock(), "submit", err=err), SystemExit)
        self.assertEqual(failure.value.code, 2)
        self.assertEqual(err.getvalue().count("\n"), 1)
        self.assertTrue(err.getvalue().startswith("gearman-tw: "))

    def test_help(self) -> None:
        """
        Help goes to standard output and exits 0.
        """
        out = io.StringIO()
        self.successResultOf(main(Clock(), "-H", out=out))
        self.assertIn("commands:", out.getvalue())


class FakeAdmin:
    """
    An admin connection with canned answers.

    @ivar asked: each method called, with its arguments, in order.
    """

    def __init__(self, answers: Dict[str, Any]) -> None:
        self.answers = answers
        self.asked: List[Tuple[str, Tuple[Any, ...]]] = []
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def __getattr__(self, name: str) -> Any:
        answer = self.answers[name]

        def ask(*args: Any) -> Deferred:
            self.asked.append((name, args))
            return answer if isinstance(answer, Deferred) else succeed(answer)

        return ask


class AdminTests(SynchronousTestCase):
    """
    Admin commands ask every server and report each.
    """

    def setUp(self) -> None:
        self.admins: Dict[str, FakeAdmin] = {}

    def connect(self, server: str, reactor: Any, timeout: float) -> Deferred:
        if server not in self.admins:
            return fail(ServerUnavailable("cannot connect", [(server, "connection refused")]))
        return succeed(self.admins[server])

    def ask(self, *argv: str) -> tuple:
        out, err = io.StringIO(), io.StringIO()
        d = admin(Clock(), parse(argv), out, err, connect=self.connect)
        failure = self.failureResultOf(d, SystemExit) if d.called and isinstance(d.result, Failure) else None
        if failure is None:
            self.successResultOf(d)
        return (failure.value.code if failure else 0), out.getvalue(), err.getvalue()

    def test_oneDown(self) -> None:
        """
        With several servers, each is asked; one that is down is reported
        on standard error, the others' rows are printed with a SERVER
        column, and the status is 1.
        """
        self.admins["a:1"] = FakeAdmin({"status": [FunctionStatus(b"f", 3, 1, 2)]})
        self.admins["c:1"] = FakeAdmin({"status": [FunctionStatus(b"g", 0, 0, 1)]})
        status, out, err = self.ask("status", "-h", "a:1", "-h", "b:1", "-h", "c:1")
        self.assertEqual(status, 1)
        self.assertEqual(err, "gearman-tw: cannot reach b:1: connection refused\n")
        self.assertEqual(
            [line.split() for line in out.splitlines()],
            [
                ["SERVER", "FUNCTION", "QUEUED", "RUNNING", "WORKERS"],
                ["a:1", "f", "2", "1", "2"],
                ["c:1", "g", "0", "0", "1"],
            ],
        )
        self.assertTrue(self.admins["a:1"].closed and self.admins["c:1"].closed)

    def test_json(self) -> None:
        """
        C{--json} prints one object per server, with its result or error.
        """
        self.admins["a:1"] = FakeAdmin({"status": [FunctionStatus(b"f", 3, 1, 2)]})
        status, out, err = self.ask("status", "--json", "-h", "a:1", "-h", "b:1")
        self.assertEqual(status, 1)
        self.assertEqual(
            json.loads(out),
            [
                {"server": "a:1", "result": [{"function": "f", "queued": 2, "running": 1, "workers": 2, "total": 3}]},
                {"server": "b:1", "error": "cannot reach b:1: connection refused"},
            ],
        )

    def test_values(self) -> None:
        """
        One server's value is printed bare; several get a column each.
        """
        self.admins["a:1"] = FakeAdmin({"version": "1.1.20", "verbose": "ERROR", "getpid": 7})
        self.admins["b:1"] = FakeAdmin({"version": "1.1.19"})
        self.assertEqual(self.ask("version", "-h", "a:1"), (0, "1.1.20\n", ""))
        self.assertEqual(self.ask("verbose", "-h", "a:1"), (0, "ERROR\n", ""))
        self.assertEqual(
            self.ask("getpid", "-h", "a:1", "--json")[1], '[\n  {\n    "server": "a:1",\n    "result": 7\n  }\n]\n'
        )
        status, out, err = self.ask("version", "-h", "a:1", "-h", "b:1")
        self.assertEqual(
            [line.split() for line in out.splitlines()], [["SERVER", "VERSION"], ["a:1", "1.1.20"], ["b:1", "1.1.19"]]
        )

    def test_cancelOnSeveral(self) -> None:
        """
        A job is on one server: cancelling it there succeeds even though
        the others do not know it; no server knowing it is status 1.
        """
        self.admins["a:1"] = FakeAdmin({"cancelJob": False})
        self.admins["b:1"] = FakeAdmin({"cancelJob": True})
        self.assertEqual(self.ask("cancel", "T:1", "-h", "a:1", "-h", "b:1"), (0, "b:1: cancelled T:1\n", ""))
        self.assertEqual(self.ask("cancel", "T:1", "-h", "a:1"), (1, "", "gearman-tw: no such job: T:1\n"))

    def test_adminError(self) -> None:
        """
        An ERR reply names the server.
        """
        self.admins["a:1"] = FakeAdmin({"dropFunction": fail(AdminError("NOT_FOUND", "no such function"))})
        self.assertEqual(
            self.ask("drop-function", "f", "-h", "a:1"), (1, "", "gearman-tw: a:1: ERR NOT_FOUND: no such function\n")
        )

    def test_uniqueAndShutdown(self) -> None:
        """
        C{unique-jobs} lists keys; C{shutdown --graceful} asks for a
        graceful one.
        """
        admin = FakeAdmin({"showUniqueJobs": [b"k1", b""]})
        self.admins["a:1"] = admin
        self.assertEqual(self.ask("unique-jobs", "-h", "a:1"), (0, "UNIQUE\nk1\n\n", ""))
        admin.answers["shutdown"] = None
        self.assertEqual(self.ask("shutdown", "--graceful", "-h", "a:1"), (0, "", ""))
        self.assertEqual([args for name, args in admin.asked if name == "shutdown"], [(True,)])


class StateLogTests(SynchronousTestCase):
    """
    L{StateLog} prints what a person watching needs, once.
    """

    def test_oncePerState(self) -> None:
        """
        The same state of the same server is printed once, however many
        connections report it; a new state is printed.
        """
        err = io.StringIO()
        log = StateLog(err, LogLevel.info)
        down = {
            "log_namespace": "gearman_tw.reconnect.Reconnector",
            "log_level": LogLevel.warn,
            "server": "s:1",
            "why": "connection refused",
            "log_format": "Cannot reach job server {server}: {why}; retrying",
        }
        up = dict(down, log_level=LogLevel.info, log_format="Connected to job server {server}")
        for event in (down, down, dict(down, server="t:1"), down, up, up, down):
            log(event)
        self.assertEqual(
            err.getvalue().splitlines(),
            [
                "gearman-tw: cannot reach job server s:1: connection refused; retrying",
                "gearman-tw: cannot reach job server t:1: connection refused; retrying",
                "gearman-tw: connected to job server s:1",
                "gearman-tw: cannot reach job server s:1: connection refused; retrying",
            ],
        )

    def test_levels(self) -> None:
        """
        Below the level, or outside gearman_tw, nothing is printed, but
        failures logged anywhere are.
        """
        err = io.StringIO()
        log = StateLog(err, None)
        log({"log_namespace": "gearman_tw.x", "log_level": LogLevel.warn, "log_format": "hidden"})
        log({"log_namespace": "twisted", "log_level": LogLevel.info, "log_format": "hidden too"})
        log(
            {
                "log_namespace": "twisted",
                "log_level": LogLevel.critical,
                "log_format": "Unhandled",
                "log_failure": Failure(ValueError("boom")),
            }
        )
        self.assertEqual(err.getvalue(), "gearman-tw: unhandled: boom\n")

    def test_sentence(self) -> None:
        """
        Messages start in lower case, acronyms excepted.
        """
        self.assertEqual(sentence("Cannot reach"), "cannot reach")
        self.assertEqual(sentence("TLS failure"), "TLS failure")


class FakeJob:
    def __init__(self) -> None:
        self.handle, self.function, self.unique, self.data = b"H:1", b"f", b"", b"in"
        self.sent: List[bytes] = []

    def sendData(self, data: bytes) -> None:
        self.sent.append(data)


class FakeProcess:
    def __init__(self) -> None:
        self.written: List[bytes] = []
        self.signals: List[str] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def closeStdin(self) -> None:
        pass

    def signalProcess(self, signal: str) -> None:
        self.signals.append(signal)


class CommandRunTests(SynchronousTestCase):
    """
    L{CommandRun}: one job's run of the worker's command.
    """

    def start(self, lines: Optional[bool] = None, limit: Optional[float] = None) -> tuple:
        job, stderr, clock = FakeJob(), io.BytesIO(), Clock()
        run = CommandRun(job, ["cmd", "arg"], stderr, clock, lines, limit)
        run.makeConnection(FakeProcess())
        return run, job, stderr, clock

    def test_result(self) -> None:
        """
        The job's data goes in; the output is the result.
        """
        run, job, stderr, clock = self.start()
        self.assertEqual(run.transport.written, [b"in"])
        run.outReceived(b"ou")
        run.outReceived(b"t")
        run.processEnded(Failure(ProcessDone(0)))
        self.assertEqual(self.successResultOf(run.finished), b"out")

    def test_failureShown(self) -> None:
        """
        The command's standard error is passed on; a non-zero exit sends
        the output, fails the job and logs the job, command and status.
        """
        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        run, job, stderr, clock = self.start()
        run.outReceived(b"partial")
        run.errReceived(b"oops: broken\n")
        run.processEnded(Failure(ProcessTerminated(3)))
        self.failureResultOf(run.finished, JobFailed)
        self.assertEqual(stderr.getvalue(), b"oops: broken\n")
        self.assertEqual(job.sent, [b"partial"])
        from twisted.logger import formatEvent

        self.assertEqual([formatEvent(e) for e in events], ["Job H:1 (f) failed: cmd arg exited with status 3"])

    def test_lines(self) -> None:
        """
        With C{lines}, each line is sent as it comes (C{True}: without its
        newline), the last one too.
        """
        run, job, stderr, clock = self.start(lines=True)
        run.outReceived(b"a\nb")
        self.assertEqual(job.sent, [b"a"])
        run.outReceived(b"c\nd")
        run.processEnded(Failure(ProcessDone(0)))
        self.assertEqual(job.sent, [b"a", b"bc", b"d"])
        self.assertEqual(self.successResultOf(run.finished), b"")
        run, job, stderr, clock = self.start(lines=False)
        run.outReceived(b"a\n")
        self.assertEqual(job.sent, [b"a\n"])

    def test_timeLimit(self) -> None:
        """
        After the limit the command gets SIGTERM, then SIGKILL; the job
        fails.
        """
        self.addCleanup(lambda: None)
        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        run, job, stderr, clock = self.start(limit=0.5)
        clock.advance(0.5)
        self.assertEqual(run.transport.signals, ["TERM"])
        clock.advance(5)
        self.assertEqual(run.transport.signals, ["TERM", "KILL"])
        run.processEnded(Failure(ProcessTerminated(None, signal=9)))
        self.failureResultOf(run.finished, JobFailed)
        self.assertEqual(clock.getDelayedCalls(), [])


class TopRenderTests(SynchronousTestCase):
    """
    L{render}: one screen of C{top}.
    """

    def test_busiestFirst(self) -> None:
        """
        Functions are sorted by queued then running jobs; totals on top;
        a server that did not answer says why.
        """
        rows = {"a:1": [FunctionStatus(b"idle", 0, 0, 1), FunctionStatus(b"busy", 5, 2, 2)]}
        lines = render(["a:1"], rows, {}, 80, 20, 0, 1.0)
        self.assertIn("a:1", lines[0])
        self.assertIn("q quits", lines[0])
        self.assertEqual(lines[1], "2 functions, 3 queued, 2 running, 3 workers")
        self.assertEqual(
            [line.split() for line in lines[3:]],
            [["FUNCTION", "QUEUED", "RUNNING", "WORKERS"], ["busy", "3", "2", "2"], ["idle", "0", "0", "1"]],
        )
        lines = render(["a:1", "b:1"], rows, {"b:1": "cannot reach b:1: connection refused"}, 80, 20, 0, 1.0)
        self.assertEqual(lines[2], "cannot reach b:1: connection refused")
        self.assertEqual(lines[4].split()[0], "SERVER")

    def test_fits(self) -> None:
        """
        No line is wider than the screen (less its last column), and rows
        that do not fit are counted instead.
        """
        rows = {"a:1": [FunctionStatus(b"f%02d" % i, i, 0, 0) for i in range(30)]}
        lines = render(["a:1"], rows, {}, 20, 10, 0, 1.0)
        self.assertEqual(len(lines), 10)
        self.assertTrue(all(len(line) <= 19 for line in lines))
        self.assertEqual(lines[-1], "... and 25 more")


class FakeScreen:
    """
    A curses window that records what is drawn and plays keys.
    """

    def __init__(self) -> None:
        self.keys: List[int] = []
        self.lines: Dict[int, str] = {}

    def getmaxyx(self) -> tuple:
        return (20, 80)

    def getch(self) -> int:
        return self.keys.pop(0) if self.keys else -1

    def erase(self) -> None:
        self.lines = {}

    def addstr(self, y: int, x: int, text: str) -> None:
        self.lines[y] = text

    def refresh(self) -> None:
        pass


class FakeCurses:
    KEY_RESIZE = 410
    error = Exception


class TopViewTests(SynchronousTestCase):
    """
    L{Top}: refreshing, one question per server at a time, q.
    """

    def test_refreshAndQuit(self) -> None:
        """
        Each interval every server is asked (one that has not answered yet
        is not asked again); q closes the connections and ends the view.
        """
        clock, screen = Clock(), FakeScreen()
        pending: Deferred = Deferred()
        admin = FakeAdmin({"status": [FunctionStatus(b"f", 2, 0, 1)]})
        slow = FakeAdmin({"status": pending})
        connections = {"a:1": admin, "b:1": slow}
        connected: List[str] = []

        def connect(server: str, reactor: Any, timeout: float) -> Deferred:
            connected.append(server)
            return succeed(connections[server])

        view = Top(clock, screen, ["a:1", "b:1"], 1.0, 5.0, connect, FakeCurses)
        done = view.start()
        self.assertIn("a:1", screen.lines[4])
        clock.advance(1.0)
        clock.advance(1.0)
        self.assertEqual(connected, ["a:1", "b:1"])
        pending.callback([FunctionStatus(b"g", 0, 0, 0)])
        self.assertEqual(screen.lines[5].split(), ["b:1", "g", "0", "0", "0"])
        screen.keys.append(ord("q"))
        clock.advance(0.05)
        self.successResultOf(done)
        self.assertTrue(admin.closed and slow.closed)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_lostServer(self) -> None:
        """
        A server whose answer fails is shown with why, and connected to
        again next time.
        """
        clock, screen = Clock(), FakeScreen()
        attempts: List[str] = []

        def connect(server: str, reactor: Any, timeout: float) -> Deferred:
            attempts.append(server)
            return fail(ServerUnavailable("cannot connect", [(server, "connection refused")]))

        view = Top(clock, screen, ["a:1"], 1.0, 5.0, connect, FakeCurses)
        view.start()
        self.assertEqual(screen.lines[2], "cannot reach a:1: connection refused")
        clock.advance(1.0)
        self.assertEqual(attempts, ["a:1", "a:1"])
        view.stop()


class FailFastTests(SynchronousTestCase):
    """
    C{GearmanClient.whenConnected(failFast=True)}, which C{gearman-tw
    submit} waits on so that a dead server fails at once.
    """

    def test_refused(self) -> None:
        """
        Once every server has failed an attempt, it fails with
        L{ServerUnavailable} naming each server and why.
        """
        clock = Clock()
        endpoints = [MemoryServerEndpoint(JobServer(clock), clock) for _ in range(2)]
        for endpoint in endpoints:
            endpoint.refuse = True
        client = GearmanClient(endpoints, reactor=clock)
        patient = client.whenConnected()
        client.startService()
        failure = self.failureResultOf(client.whenConnected(failFast=True), ServerUnavailable)
        self.assertEqual([why for _, why in failure.value.servers], ["connection refused"] * 2)
        self.assertNoResult(patient)
        client.stopService()
        self.failureResultOf(patient, ServerUnavailable)

    def test_oneUp(self) -> None:
        """
        While one server can still connect, it waits, and fires once one is
        ready.
        """
        clock = Clock()
        up = MemoryServerEndpoint(JobServer(clock), clock)
        down = MemoryServerEndpoint(JobServer(clock), clock)
        down.refuse = True
        client = GearmanClient([down, up], reactor=clock)
        d = client.whenConnected(failFast=True)
        client.startService()
        self.addCleanup(client.stopService)
        up.flush()
        self.successResultOf(d)

    def test_cancelled(self) -> None:
        """
        A cancelled wait (the command's own time limit) is left alone when
        the client connects or stops later.
        """
        clock = Clock()
        endpoint = MemoryServerEndpoint(JobServer(clock), clock)
        client = GearmanClient([endpoint], reactor=clock)
        d = client.whenConnected(failFast=True)
        d.cancel()
        self.failureResultOf(d)
        client.startService()
        endpoint.flush()
        client.stopService()


class ReconnectorStopTests(SynchronousTestCase):
    """
    A reconnector stopped during an attempt says nothing about it.
    """

    def test_cancelledAttemptSilent(self) -> None:
        """
        A connection attempt cancelled by the stop fails, for
        C{HostnameEndpoint}, with L{ConnectingCancelledError}: that is not
        a server that cannot be reached, and is not logged as one (the
        worker printed C{cannot reach ...: HostnameAddress(...)} on Ctrl-C).
        """
        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        attempt: Deferred = Deferred(lambda d: d.errback(ConnectingCancelledError("address")))

        class Endpoint:
            def connect(self, factory: Factory) -> Deferred:
                return attempt

        clock = Clock()
        reconnector = Reconnector(
            "s:1", Endpoint(), Factory.forProtocol(lambda: JobServerConnection(clock)), clock, lambda n: 1.0  # type: ignore[arg-type]
        )
        reconnector.startService()
        reconnector.stopService()
        self.assertEqual(len(events), 0)
        self.assertEqual(reconnector.lastError, None)
