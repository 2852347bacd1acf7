# -*- test-case-name: tests.test_cli -*-
"""
The command line of C{gearman-tw}: which command a line asks for, its
options, and the job servers it names.

Flag letters mean what they mean in libgearman's C{gearman} and
C{gearadmin} (C{-h} host, C{-p} port, C{-t} milliseconds, C{-c} a count of
jobs, ...), so three spellings of a command work::

    gearman-tw submit -f reverse hello       # a command word
    gearman-tw -f reverse hello              # gearman's own line
    gearman-tw --status -h gearman.example   # gearadmin's own line

Options may follow the positional arguments; C{--} ends them.
"""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass, field
from typing import Any, Dict, List, NoReturn, Optional, Sequence, Set, Tuple

from gearman_tw._version import __version__

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4730

#: Each command and what it does, in the order C{--help} lists them.
COMMANDS: Dict[str, str] = {
    "submit": "submit jobs and print their results (gearman)",
    "worker": "run a command for each job of some functions (gearman -w)",
    "status": "functions with queued, running and worker counts",
    "priority-status": "queued jobs per priority",
    "workers": "connections and their functions",
    "jobs": "queued and running jobs",
    "unique-jobs": "the unique key of every job",
    "top": "a live view of status, refreshed until q is pressed",
    "version": "the server's version",
    "verbose": "the server's log level",
    "getpid": "the server's process id",
    "cancel": "cancel a queued job",
    "create-function": "create a function",
    "drop-function": "drop an idle function",
    "maxqueue": "set a function's queue limits",
    "shutdown": "stop the server (if it allows it)",
}

#: The commands that are one admin command per server.
ADMIN_COMMANDS = frozenset(COMMANDS) - {"submit", "worker", "top"}

#: gearadmin's options and the command each one is here.
GEARADMIN: Dict[str, str] = {
    "--status": "status",
    "--priority-status": "priority-status",
    "--workers": "workers",
    "--show-jobs": "jobs",
    "--show-unique-jobs": "unique-jobs",
    "--server-version": "version",
    "--server-verbose": "verbose",
    "--getpid": "getpid",
    "--cancel-job": "cancel",
    "--create-function": "create-function",
    "--drop-function": "drop-function",
    "--shutdown": "shutdown",
}
_GEARADMIN_VALUES = frozenset(("--cancel-job", "--create-function", "--drop-function"))

# Options that take a value, over every command: the scan that finds the
# command word must step over their values.
_SHORT_VALUES = frozenset("hptfuci")
_LONG_VALUES = frozenset(
    (
        "--host",
        "--server",
        "--port",
        "--timeout",
        "--function",
        "--unique",
        "--count",
        "--pidfile",
        "--priority",
        "--at",
        "--concurrency",
        "--client-id",
        "--interval",
    )
)

_ENDPOINT_PREFIXES = ("tcp", "tcp6", "unix", "tls", "ssl")


class UsageError(Exception):
    """
    The command line is wrong: C{str()} says how, in one line.
    """


class HelpRequested(Exception):
    """
    C{--help} or C{-H} was given: C{text} is the help to print.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass
class Invocation:
    """
    A parsed command line.

    @ivar command: the command (a key of L{COMMANDS}).
    @ivar options: its options; C{options.args} holds the positional
        arguments, those after C{--} included.
    @ivar servers: the job servers, as L{gearman_tw.endpoints.clientEndpoint}
        takes them.
    @ivar notes: warnings to print before running (a deprecated spelling).
    """

    command: str
    options: argparse.Namespace
    servers: List[str]
    notes: List[str] = field(default_factory=list)


class _Parser(argparse.ArgumentParser):
    """
    Raises L{UsageError} instead of printing and exiting.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class _Help(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help="show this help"
        )

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: Optional[str] = None
    ) -> None:
        raise HelpRequested(parser.format_help())


def _port(value: str) -> int:
    if value.isdigit():
        port = int(value)
    else:
        try:
            port = socket.getservbyname(value, "tcp")
        except OSError:
            raise argparse.ArgumentTypeError("not a port number or service name: %r" % (value,))
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError("port out of range: %s" % (value,))
    return port


def _positive(kind: type, what: str) -> Any:
    def convert(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError("%s must be a number, not %r" % (what, value))
        if not number > 0:
            raise argparse.ArgumentTypeError("%s must be positive, not %s" % (what, value))
        return number

    return convert


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError("a count must be a whole number of jobs, not %r" % (value,))
    return int(value)


def _parser(command: str, usage: str) -> _Parser:
    parser = _Parser(
        prog="gearman-tw " + command,
        usage=usage,
        description=COMMANDS[command],
        add_help=False,
        allow_abbrev=False,
    )
    servers = parser.add_argument_group("job servers")
    servers.add_argument(
        "-h",
        "--host",
        "--server",
        dest="hosts",
        action="append",
        metavar="HOST",
        help="a job server: HOST, HOST:PORT, [IPV6]:PORT or an endpoint description "
        "(tls:host=H:port=P:trustRoots=ca.pem, unix:path=/s); repeatable; default %s" % (DEFAULT_HOST,),
    )
    servers.add_argument(
        "-p",
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="the port of every HOST given without one (%d)" % (DEFAULT_PORT,),
    )
    servers.add_argument(
        "-S", "--ssl", action="store_true", help="TLS to every HOST, verifying it with the platform's trust store"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print the connections' state changes")
    parser.add_argument("-H", "--help", action=_Help)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    return parser


def _timeout(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("-t", "--timeout", type=_positive(int, "timeout"), metavar="MS", help=what)


def _functions(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("-f", "--function", dest="functions", action="append", metavar="FUNCTION", help=what)


def _submitParser() -> _Parser:
    parser = _parser("submit", "gearman-tw submit [options] {FUNCTION | -f FUNCTION...} [DATA...]")
    _functions(parser, "submit each job to this function (repeatable); then every argument is data")
    parser.add_argument("-u", "--unique", help="unique key: jobs with equal keys run once")
    parser.add_argument("-b", "--background", action="store_true", help="run in the background; print the job handle")
    priority = parser.add_argument_group("priority")
    priority.add_argument("-I", "--high", dest="priority", action="store_const", const="high", help="high priority")
    priority.add_argument("-L", "--low", dest="priority", action="store_const", const="low", help="low priority")
    priority.add_argument("--priority", choices=["high", "normal", "low"])
    parser.set_defaults(priority="normal")
    data = parser.add_argument_group("job data (default: one job of all of standard input)")
    data.add_argument("-n", "--lines", action="store_true", help="one job per line of standard input, newline included")
    data.add_argument("-N", "--lines-stripped", action="store_true", help="one job per line, without its newline")
    data.add_argument("-s", "--no-input", action="store_true", help="one job of empty data; do not read standard input")
    parser.add_argument("-P", "--prefix", action="store_true", help="prefix output with the function's name")
    parser.add_argument("--at", type=int, metavar="EPOCH", help="run a background job at this time")
    _timeout(parser, "time limit of each job, in milliseconds")
    parser.add_argument("-i", "--pidfile", help="write the process id to this file")
    return parser


def _workerParser() -> _Parser:
    parser = _parser("worker", "gearman-tw worker [options] {FUNCTION | -f FUNCTION...} [--] [COMMAND [ARG...]]")
    _functions(parser, "serve this function (repeatable); then every argument is the command")
    parser.add_argument("-c", "--count", type=_count, default=0, help="exit after this many jobs (0: never)")
    parser.add_argument(
        "-n", "--lines", action="store_true", help="send each line of the command's output to the client as it comes"
    )
    parser.add_argument("-N", "--lines-stripped", action="store_true", help="the same, without the newline")
    parser.add_argument("-w", "--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--concurrency", type=_positive(int, "concurrency"), default=1, metavar="N", help="jobs run at once (1)"
    )
    parser.add_argument("--client-id", metavar="ID", help="the name the server's workers listing shows")
    _timeout(parser, "kill the command and fail the job after this many milliseconds")
    parser.add_argument("-i", "--pidfile", help="write the process id to this file")
    return parser


_ADMIN_ARGS = {
    "cancel": "HANDLE",
    "create-function": "NAME",
    "drop-function": "NAME",
    "maxqueue": "NAME [ALL | HIGH NORMAL [LOW]]",
    "shutdown": "[--graceful]",
}


def _adminParser(command: str) -> _Parser:
    rest = _ADMIN_ARGS.get(command, "")
    parser = _parser(command, ("gearman-tw %s [options] %s" % (command, rest)).rstrip())
    parser.add_argument("--json", action="store_true", help="print JSON: one object per server")
    _timeout(parser, "time limit to connect and of each reply, in milliseconds (10000)")
    if command == "shutdown":
        parser.add_argument("--graceful", action="store_true", help="finish the running jobs first")
    return parser


def _topParser() -> _Parser:
    parser = _parser("top", "gearman-tw top [options]")
    parser.add_argument(
        "--interval",
        type=_positive(float, "interval"),
        default=1.0,
        metavar="SECONDS",
        help="seconds between refreshes (1)",
    )
    _timeout(parser, "time limit to connect and of each reply, in milliseconds (10000)")
    return parser


def commandParser(command: str) -> _Parser:
    """
    The parser of C{command}'s options.
    """
    if command == "submit":
        return _submitParser()
    if command == "worker":
        return _workerParser()
    if command == "top":
        return _topParser()
    return _adminParser(command)


def overview() -> str:
    """
    What C{gearman-tw --help} prints.
    """
    lines = [
        "usage: gearman-tw COMMAND [options] [ARG...]",
        "       gearman-tw [gearman options]      (as libgearman's gearman, -w for a worker)",
        "       gearman-tw --status [gearadmin options]  (as gearadmin)",
        "",
        "Submit Gearman jobs, run workers and query job servers.",
        "",
        "commands:",
    ]
    width = max(len(name) for name in COMMANDS)
    lines += ["  %s  %s" % (name.ljust(width), text) for name, text in COMMANDS.items()]
    lines += [
        "",
        "Servers: -h HOST[:PORT] (repeatable), -p PORT, -S for TLS; default %s:%d." % (DEFAULT_HOST, DEFAULT_PORT),
        "gearman-tw COMMAND --help shows a command's options.",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class _Scan:
    """
    What comes before the first positional argument of a command line.

    @ivar first: the index of the first positional argument, or L{None}.
    @ivar letters: the short flags seen.
    @ivar longs: the long options seen.
    @ivar gearadmin: indexes of gearadmin options seen.
    @ivar legacy: indexes of C{-s SERVER} seen.
    """

    first: Optional[int] = None
    letters: Set[str] = field(default_factory=set)
    longs: Set[str] = field(default_factory=set)
    gearadmin: List[int] = field(default_factory=list)
    legacy: List[int] = field(default_factory=list)


def _scan(argv: Sequence[str], legacyServer: bool) -> _Scan:
    """
    Read options as getopt would, up to the first positional argument.

    @param legacyServer: read a lone C{-s} as taking a value (the server,
        as it once did) rather than as gearman's flag.
    """
    scan = _Scan()
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return scan
        if token.startswith("--"):
            name = token.split("=", 1)[0]
            scan.longs.add(name)
            if name in GEARADMIN:
                scan.gearadmin.append(i)
                if name in _GEARADMIN_VALUES and "=" not in token:
                    i += 1
            elif name in _LONG_VALUES and "=" not in token:
                i += 1
        elif token.startswith("-") and token != "-":
            if token == "-s" and legacyServer:
                scan.legacy.append(i)
                i += 1
            else:
                for position, letter in enumerate(token[1:], 1):
                    scan.letters.add(letter)
                    if letter in _SHORT_VALUES:
                        if position == len(token) - 1:
                            i += 1
                        break
        else:
            scan.first = i
            return scan
        i += 1
    return scan


def route(argv: Sequence[str]) -> Tuple[str, List[str], List[str]]:
    """
    Which command a command line asks for.

    @return: the command, the arguments for its parser (the command word
        left out, a gearadmin option replaced by its value), and notes to
        print.
    @raise UsageError: no command, or an unknown one.
    @raise HelpRequested: C{--help} without a command.
    """
    argv = list(argv)
    # The old "gearman-tw -s SERVER COMMAND": -s before a command word.
    scan = _scan(argv, legacyServer=True)
    if scan.legacy and scan.first is not None and argv[scan.first] in COMMANDS and not scan.gearadmin:
        rest = list(argv)
        for index in scan.legacy:
            rest[index] = "--server"
        del rest[scan.first]
        note = "-s SERVER is now -h SERVER (in gearman, -s means: do not read standard input)"
        return argv[scan.first], rest, [note]
    scan = _scan(argv, legacyServer=False)
    if scan.gearadmin:
        if len(scan.gearadmin) > 1:
            raise UsageError(
                "one gearadmin command at a time: %s" % (" ".join(argv[i].split("=")[0] for i in scan.gearadmin),)
            )
        index = scan.gearadmin[0]
        flag, equals, value = argv[index].partition("=")
        rest = argv[:index] + argv[index + 1 :]
        if flag in _GEARADMIN_VALUES:
            if not equals:
                if index + 1 >= len(argv):
                    raise UsageError("%s needs a value" % (flag,))
                value = argv[index + 1]
                rest = argv[:index] + argv[index + 2 :]
            rest.append(value)
        return GEARADMIN[flag], rest, []
    if scan.letters & {"f", "w"}:
        return ("worker" if "w" in scan.letters else "submit"), argv, []
    if scan.first is not None:
        word = argv[scan.first]
        if word in COMMANDS:
            return word, argv[: scan.first] + argv[scan.first + 1 :], []
        raise UsageError("unknown command %r (gearman-tw --help lists them)" % (word,))
    if "H" in scan.letters or "--help" in scan.longs:
        raise HelpRequested(overview())
    if "--version" in scan.longs:
        raise HelpRequested("gearman-tw %s\n" % (__version__,))
    raise UsageError("no command given (gearman-tw --help lists them)")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def serverName(value: str, port: int, ssl: bool = False) -> str:
    """
    The job server C{-h value} names: C{host} gets C{port}; with C{ssl},
    a C{tls:} description.

    @raise UsageError: C{value} is empty.
    """
    if not value:
        raise UsageError("an empty host name")
    prefix, colon, _ = value.partition(":")
    if colon and prefix in _ENDPOINT_PREFIXES:
        return value
    if value.startswith("["):
        host, _, after = value[1:].partition("]")
        explicit = after[1:] if after.startswith(":") else ""
        if not ssl:
            return "[%s]:%s" % (host, explicit or port)
    else:
        host, _, explicit = value.partition(":")
        if not ssl:
            return "%s:%s" % (host, explicit or port)
    return "tls:host=%s:port=%s" % (_escape(host), explicit or port)


def _split(args: List[str]) -> Tuple[List[str], List[str]]:
    """
    The arguments before the first C{--}, and those after it.
    """
    if "--" in args:
        index = args.index("--")
        return args[:index], args[index + 1 :]
    return args, []


def parse(argv: Sequence[str]) -> Invocation:
    """
    Parse a whole command line.

    @raise UsageError: it is wrong.
    @raise HelpRequested: it asks for help (or the version).
    """
    command, rest, notes = route(argv)
    parser = commandParser(command)
    head, tail = _split(rest)
    try:
        options = parser.parse_intermixed_args(head)
    except UsageError as e:
        if command == "worker" and "unrecognized arguments" in str(e):
            raise UsageError("%s (put the command after --)" % (e,))
        raise UsageError("%s: %s" % (command, e))
    options.args += tail
    _check(command, options)
    servers = [serverName(host, options.port, options.ssl) for host in (options.hosts or [DEFAULT_HOST])]
    return Invocation(command, options, servers, notes)


def _check(command: str, options: argparse.Namespace) -> None:
    """
    Check the positional arguments, and settle the ones that name a
    function.

    @raise UsageError: they do not fit the command.
    """
    args = options.args
    if command in ("submit", "worker"):
        if not options.functions:
            if not args:
                raise UsageError("%s: name a function (FUNCTION or -f FUNCTION)" % (command,))
            options.functions = [args.pop(0)]
        if command == "submit":
            given = [name for name, on in (("-n", options.lines), ("-N", options.lines_stripped)) if on]
            if args and given:
                raise UsageError(
                    "submit: %s makes jobs of standard input's lines, but DATA arguments were given" % (given[0],)
                )
            if options.lines and options.lines_stripped:
                raise UsageError("submit: -n or -N, not both")
        elif options.lines and options.lines_stripped:
            raise UsageError("worker: -n or -N, not both")
        return
    wanted = {"cancel": (1, 1), "create-function": (1, 1), "drop-function": (1, 1), "maxqueue": (1, 4)}.get(
        command, (0, 0)
    )
    low, high = wanted
    if not low <= len(args) <= high:
        usage = "gearman-tw %s %s" % (command, _ADMIN_ARGS.get(command, ""))
        raise UsageError("%s: wrong number of arguments (usage: %s)" % (command, usage.rstrip()))
    if command == "maxqueue":
        try:
            options.limits = [int(n) for n in args[1:]]
        except ValueError:
            raise UsageError("maxqueue: limits are numbers: %s" % (" ".join(args[1:]),))
