# -*- test-case-name: tests.test_cli,tests.integration.test_cli_top -*-
"""
C{gearman-tw top}: the functions of one or more job servers with their
queued, running and worker counts, redrawn in the terminal every
C{--interval} seconds, like top(1), until C{q} is pressed.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from gearman_tw.cli.admin import DEFAULT_TIMEOUT, why
from gearman_tw.cli.options import Invocation, UsageError

#: Seconds between two looks at the keyboard.
KEY_INTERVAL = 0.05


def render(
    servers: Sequence[str],
    rows: Dict[str, List[Any]],
    errors: Dict[str, str],
    width: int,
    height: int,
    now: float,
    interval: float,
) -> List[str]:
    """
    The lines of one screen: a title, totals, a line per server that did
    not answer, then the functions, the busiest first, as many as fit.

    @param rows: each server's L{gearman_tw.admin.FunctionStatus} rows.
    @param errors: why each server that did not answer did not.
    """
    many = len(servers) > 1
    clock = time.strftime("%H:%M:%S", time.localtime(now))
    lines = ["gearman-tw top - %s - %s - every %gs - q quits" % (", ".join(servers), clock, interval)]
    found = [(server, row) for server in servers for row in rows.get(server, [])]
    lines.append(
        "%d functions, %d queued, %d running, %d workers"
        % (
            len(found),
            sum(row.queued for _, row in found),
            sum(row.running for _, row in found),
            sum(row.workers for _, row in found),
        )
    )
    lines += [errors[server] for server in servers if server in errors]
    lines.append("")
    found.sort(key=lambda pair: (-pair[1].queued, -pair[1].running, pair[1].function, pair[0]))
    table = [(["SERVER"] if many else []) + ["FUNCTION", "QUEUED", "RUNNING", "WORKERS"]]
    for server, row in found:
        name = row.function.decode("utf-8", "replace")
        table.append(([server] if many else []) + [name, str(row.queued), str(row.running), str(row.workers)])
    room = max(height - len(lines), 1)
    hidden = len(table) - room
    if hidden > 0:
        table = table[: room - 1]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    numbers = len(widths) - 3
    for row in table:
        cells = [cell.rjust(w) if i >= numbers else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    if hidden > 0:
        lines.append("... and %d more" % (hidden + 1,))
    return [line[: max(width - 1, 0)] for line in lines[:height]]


class Top:
    """
    The view: keeps an admin connection to each server, asks each for
    C{status} every C{interval} seconds (never twice at once), and draws.

    @ivar done: fires once C{q} was pressed or L{stop} called.
    """

    def __init__(
        self,
        reactor: Any,
        screen: Any,
        servers: Sequence[str],
        interval: float,
        timeout: float,
        connect: Callable[..., "Deferred[Any]"],
        keys: Any,
    ) -> None:
        """
        @param screen: a curses window.
        @param keys: the curses module, for its key codes.
        """
        self.reactor = reactor
        self.screen = screen
        self.servers = list(servers)
        self.interval = interval
        self.timeout = timeout
        self.connect = connect
        self.keys = keys
        self.rows: Dict[str, List[Any]] = {}
        self.errors: Dict[str, str] = {}
        self.admins: Dict[str, Any] = {}
        self.busy: Set[str] = set()
        self.stopped = False
        self.done: Deferred[None] = Deferred()
        self._refreshing = LoopingCall(self.refresh)
        self._refreshing.clock = reactor
        self._reading = LoopingCall(self.readKeys)
        self._reading.clock = reactor

    def start(self) -> "Deferred[None]":
        self._refreshing.start(self.interval)
        self._reading.start(KEY_INTERVAL)
        return self.done

    def refresh(self) -> None:
        for server in self.servers:
            if server not in self.busy:
                self.busy.add(server)
                self._status(server).addBoth(self._answered, server)
        self.draw()

    def _answered(self, result: object, server: str) -> None:
        self.busy.discard(server)
        self.draw()

    def _status(self, server: str) -> "Deferred[None]":
        admin = self.admins.get(server)
        if admin is None:
            d = maybeDeferred(self.connect, server, reactor=self.reactor, timeout=self.timeout)
            d.addCallback(self._connected, server)
        else:
            d = succeed(admin)
        d.addCallback(lambda connection: connection.status())

        def got(rows: List[Any]) -> None:
            self.rows[server] = rows
            self.errors.pop(server, None)

        def failed(failure: Failure) -> None:
            connection = self.admins.pop(server, None)
            if connection is not None:
                connection.close()
            self.rows.pop(server, None)
            self.errors[server] = why(server, failure)

        return d.addCallbacks(got, failed)

    def _connected(self, admin: Any, server: str) -> Any:
        if self.stopped:
            admin.close()
        else:
            self.admins[server] = admin
        return admin

    def readKeys(self) -> None:
        # Bounded: a key held down cannot keep the reactor here.
        for _ in range(64):
            key = self.screen.getch()
            if key == -1:
                return
            if key in (ord("q"), ord("Q")):
                self.stop()
                return
            if key == self.keys.KEY_RESIZE:
                self.draw()

    def draw(self) -> None:
        if self.stopped:
            return
        height, width = self.screen.getmaxyx()
        lines = render(self.servers, self.rows, self.errors, width, height, self.reactor.seconds(), self.interval)
        self.screen.erase()
        for y, line in enumerate(lines):
            try:
                self.screen.addstr(y, 0, line)
            except self.keys.error:
                # The last cell of the screen cannot be written to.
                pass
        self.screen.refresh()

    def stop(self) -> None:
        """
        Stop refreshing, close the connections and fire L{done}.
        """
        if self.stopped:
            return
        self.stopped = True
        for loop in (self._refreshing, self._reading):
            if loop.running:
                loop.stop()
        admins, self.admins = self.admins, {}
        for admin in admins.values():
            admin.close()
        self.done.callback(None)


def top(
    reactor: Any, invocation: Invocation, connect: Optional[Callable[..., "Deferred[Any]"]] = None
) -> "Deferred[None]":
    """
    Run C{gearman-tw top} in the terminal until C{q}.

    @raise UsageError: standard input or output is not a terminal.
    """
    import curses

    if connect is None:
        from gearman_tw.admin import connectAdmin as connect
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("top needs a terminal (gearman-tw status lists the same once)")
    options = invocation.options
    timeout = options.timeout / 1000.0 if options.timeout else DEFAULT_TIMEOUT
    screen = curses.initscr()
    restored: List[bool] = []

    def restore(result: object = None) -> object:
        if not restored:
            restored.append(True)
            screen.keypad(False)
            curses.nocbreak()
            curses.echo()
            curses.endwin()
        return result

    try:
        curses.noecho()
        curses.cbreak()
        screen.keypad(True)
        screen.nodelay(True)
        try:
            curses.curs_set(0)
        except curses.error:
            pass
        view = Top(reactor, screen, invocation.servers, options.interval, timeout, connect, curses)  # type: ignore[arg-type]
        done = view.start()
    except BaseException:
        restore()
        raise

    def interrupted() -> None:
        view.stop()
        restore()

    # Ctrl-C stops the reactor: leave the terminal as it was.
    trigger = reactor.addSystemEventTrigger("before", "shutdown", interrupted)

    def finished(result: object) -> object:
        reactor.removeSystemEventTrigger(trigger)
        return restore(result)

    return done.addBoth(finished)
