# -*- test-case-name: tests.test_cli -*-
"""
What C{gearman-tw} tells a person on standard error: one line per error,
and the library's log events worth seeing, each connection's state once.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, TextIO, Tuple

from twisted.logger import ILogObserver, LogLevel, formatEvent
from zope.interface import implementer

from gearman_tw.errors import GearmanError, JobException, JobFailed, ServerError, ServerUnavailable

_LEVELS = [LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error, LogLevel.critical]


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def sentence(text: str) -> str:
    """
    C{text} to follow C{"gearman-tw: "}: its first word in lower case,
    unless it is an acronym (C{"TLS"}).
    """
    if text[:1].isupper() and text[1:2].islower():
        return text[:1].lower() + text[1:]
    return text


class CannotReach(GearmanError):
    """
    No job server could be used: C{str()} names each and says why.

    @ivar servers: C{(server, reason)} pairs.
    """

    def __init__(self, servers: Sequence[Tuple[str, str]]) -> None:
        super().__init__(tuple(servers))
        self.servers = tuple(servers)

    def __str__(self) -> str:
        return "cannot reach " + "; ".join("%s: %s" % pair for pair in self.servers)


def cannotReach(error: ServerUnavailable) -> CannotReach:
    """
    The L{CannotReach} of a client's or admin connection's failure.
    """
    return CannotReach(error.servers or [("the job server", error.message)])


def explain(error: BaseException) -> str:
    """
    One line saying what went wrong.
    """
    if isinstance(error, JobException):
        return "job raised: %s" % (_text(error.data),)
    if isinstance(error, JobFailed):
        return "job failed"
    if isinstance(error, ServerError):
        return "server error %s: %s" % (_text(error.code), _text(error.text))
    return str(error) or type(error).__name__


@implementer(ILogObserver)
class StateLog:
    """
    A log observer that prints gearman_tw's log events of at least a
    level, and failures logged anywhere, as C{gearman-tw: ...} lines; an
    event about a server (a C{server} field) is printed only when it says
    something new about that server, so a worker with several connections
    to a server that is down says so once, not once per connection and
    attempt.
    """

    def __init__(self, err: TextIO, level: Optional[LogLevel]) -> None:
        """
        @param level: the least level printed; L{None} prints nothing but
            failures.
        """
        self.err = err
        self.least = len(_LEVELS) if level is None else _LEVELS.index(level)
        self._said: Dict[str, str] = {}

    def __call__(self, event: Dict[str, Any]) -> None:
        level = event.get("log_level")
        rank = _LEVELS.index(level) if level in _LEVELS else 0
        failure = event.get("log_failure")
        namespace = str(event.get("log_namespace", ""))
        if failure is not None and rank >= _LEVELS.index(LogLevel.error):
            pass
        elif not namespace.startswith("gearman_tw") or rank < self.least:
            return
        text = formatEvent(event).strip()
        if failure is not None:
            text = "%s: %s" % (text, failure.getErrorMessage()) if text else failure.getErrorMessage()
        if not text:
            return
        server = event.get("server")
        if isinstance(server, str):
            if self._said.get(server) == text:
                return
            self._said[server] = text
        self.err.write("gearman-tw: %s\n" % (sentence(text),))
        self.err.flush()
