# -*- test-case-name: tests.test_server_lifecycle -*-
"""
Per-function job lifecycle policies: how many attempts a job gets, how long
it waits before the next, whether a failure counts as one, and how long a
worker may hold it.

A policy file (C{twistd gearman --policies FILE}) is TOML: a C{[default]}
table, and a table per function name or glob under C{[functions]}; the
first table (in file order) whose glob matches a function's name applies,
else the default::

    [default]
    max-attempts = 5
    backoff = { base = 1.0, factor = 2.0, cap = 300.0, jitter = 0.1 }

    [functions."resize_*"]
    time-limit = 30
    retry-failures = true

A table gives only what differs from the default.  Without a file every
function has L{Policy}'s defaults, which are gearmand's behaviour: attempts
bounded only by C{--job-retries}, requeued at once, failures final, no time
limit but the worker's own C{CAN_DO_TIMEOUT}.
"""

from __future__ import annotations

import dataclasses
import math
import random
from fnmatch import fnmatchcase
from typing import Any, Callable, Dict, List, Optional, Tuple

from gearman_tw.server.tomlfile import TOMLFileError, parseTOML, readTOML


class PoliciesError(ValueError):
    """
    A policy file is not valid; the message says where and why, in a line.
    """


# Below this, e ** x (and so factor ** exponent) is a finite float.
_EXP_SAFE = 700.0


@dataclasses.dataclass(frozen=True)
class Backoff:
    """
    Exponential backoff with jitter: before attempt M{n + 1} a job waits
    M{min(cap, base * factor ** (n - 1))} seconds, give or take C{jitter}
    of that (a fraction: 0.1 is +/-10%).
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.1

    def delay(self, attempts: int, uniform: Callable[[float, float], float]) -> float:
        """
        Seconds to wait after C{attempts} attempts, with C{uniform(a, b)}
        giving the jitter (C{random.uniform}).
        """
        exponent = max(attempts - 1, 0)
        growth = exponent * math.log(self.factor)
        if self.base <= 0 or self.cap <= 0:
            seconds = 0.0
        elif growth >= math.log(self.cap) - math.log(self.base):
            # Compared as logarithms: factor ** exponent overflows a float
            # long before the attempts run out.
            seconds = self.cap
        elif growth < _EXP_SAFE:
            seconds = self.base * self.factor**exponent
        else:
            # A tiny base: the power alone would overflow.
            seconds = math.exp(math.log(self.base) + growth)
        if self.jitter:
            seconds *= 1 + uniform(-self.jitter, self.jitter)
        return max(seconds, 0.0)


#: How many results a function keeps at most by default (C{results}).
DEFAULT_RESULTS = 1000


@dataclasses.dataclass(frozen=True)
class Policy:
    """
    What happens to the jobs of a function.

    @ivar maxAttempts: attempts before a job is given up (its clients get
        WORK_FAIL); C{None} for C{--job-retries}, 0 for no limit.
    @ivar backoff: the wait before a job is queued again; C{None} to queue
        it again at once.
    @ivar retryFailures: a background job that ends in WORK_FAIL or
        WORK_EXCEPTION is attempted again, as one whose worker was lost.
    @ivar retryForeground: ... also when foreground clients wait for it
        (they are told only once the attempts are used up).
    @ivar timeLimit: seconds a worker may hold a job when it did not say
        with CAN_DO_TIMEOUT; 0 for no limit.
    @ivar deadLetters: how many background jobs that used up their
        attempts (or failed, when failures are not retried) the function
        keeps as dead letters; 0 to drop them, as gearmand does.
    @ivar maxRunning: at most this many of the function's jobs run at once,
        across all workers (the others wait queued); 0 for no limit.
    @ivar maxRate: at most this many of the function's jobs start per
        second, on average (a bucket of C{max(1, maxRate)} starts that
        refills at that rate; the others wait queued); 0 for no limit.
    @ivar keepResults: seconds the final result of a background job is kept
        (to be fetched by handle or unique); 0 to keep none.
    @ivar results: how many results the function keeps at most (the oldest
        dropped beyond).
    @ivar uniqueWindow: seconds after a job with a unique key completed
        during which a submission with that key is answered from its result
        instead of running again (the result is kept that long); 0 for none.
    """

    maxAttempts: Optional[int] = None
    backoff: Optional[Backoff] = None
    retryFailures: bool = False
    retryForeground: bool = False
    timeLimit: float = 0.0
    deadLetters: int = 0
    maxRunning: int = 0
    maxRate: float = 0.0
    keepResults: float = 0.0
    results: int = DEFAULT_RESULTS
    uniqueWindow: float = 0.0
    #: Whether any job's result may be kept (the job path's one check).
    storesResults: bool = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "storesResults", bool(self.results and (self.keepResults or self.uniqueWindow)))

    def describe(self) -> Dict[str, Any]:
        """
        The policy as the policy file's keys and values (C{max-attempts}
        absent when it follows C{--job-retries}, C{backoff} C{False} when
        there is none).
        """
        described: Dict[str, Any] = {}
        for key, field in _KEYS.items():
            value = getattr(self, field)
            if field == "maxAttempts" and value is None:
                continue
            if field == "backoff":
                value = False if value is None else dataclasses.asdict(value)
            described[key] = value
        return described

    def keepsResultFor(self, background: bool, coalesces: bool, completed: bool) -> float:
        """
        Seconds to keep the final result of a job (0: not kept): a
        background job's for C{keep-results}; one that coalesces by a key
        and C{completed}, for at least C{unique-window}.
        """
        if not self.results:
            return 0.0
        seconds = self.keepResults if background else 0.0
        if coalesces and completed and self.uniqueWindow > seconds:
            seconds = self.uniqueWindow
        return seconds

    def retriesFailure(self, hasClients: bool) -> bool:
        """
        Whether a job that ended in WORK_FAIL or WORK_EXCEPTION, with or
        without foreground clients waiting, is attempted again.
        """
        return self.retryFailures and (self.retryForeground or not hasClients)


#: gearmand's behaviour.
DEFAULT_POLICY = Policy()

# TOML keys of a table and the Policy fields they set.
_KEYS = {
    "max-attempts": "maxAttempts",
    "backoff": "backoff",
    "retry-failures": "retryFailures",
    "retry-foreground": "retryForeground",
    "time-limit": "timeLimit",
    "dead-letters": "deadLetters",
    "max-running": "maxRunning",
    "max-rate": "maxRate",
    "keep-results": "keepResults",
    "results": "results",
    "unique-window": "uniqueWindow",
}
_BACKOFF_KEYS = ("base", "factor", "cap", "jitter")


class Policies:
    """
    The policies of every function: a default and tables by name or glob.
    """

    def __init__(self, default: Policy = DEFAULT_POLICY, tables: Optional[List[Tuple[str, Policy]]] = None) -> None:
        self.default = default
        self.tables = list(tables or [])

    def forFunction(self, name: bytes) -> Policy:
        """
        The policy of the function C{name}: its first matching table's, else
        the default.
        """
        if self.tables:
            text = name.decode("utf-8", "surrogateescape")
            for pattern, policy in self.tables:
                if fnmatchcase(text, pattern):
                    return policy
        return self.default

    @classmethod
    def fromFile(cls, path: str) -> "Policies":
        """
        Read a policy file.

        @raise PoliciesError: it cannot be read or is not valid.
        """
        try:
            data = readTOML(path, "the policy file")
        except TOMLFileError as e:
            raise PoliciesError(str(e))
        try:
            return cls.fromData(data)
        except PoliciesError as e:
            raise PoliciesError("the policy file %s: %s" % (path, e))

    @classmethod
    def fromText(cls, text: str) -> "Policies":
        """
        Parse policies from TOML text.

        @raise PoliciesError: it is not valid.
        """
        try:
            return cls.fromData(parseTOML(text))
        except TOMLFileError as e:
            raise PoliciesError(str(e))

    @classmethod
    def fromData(cls, data: Dict[str, Any]) -> "Policies":
        """
        Policies from parsed TOML.

        @raise PoliciesError: it is not valid.
        """
        unknown = sorted(set(data) - {"default", "functions"})
        if unknown:
            raise PoliciesError("unknown table [%s] (expected [default] and [functions])" % (unknown[0],))
        default = _policy(_table(data.get("default", {}), "[default]"), DEFAULT_POLICY, "[default]")
        tables = []
        for pattern, table in _table(data.get("functions", {}), "[functions]").items():
            where = "[functions.%s]" % (_quoted(pattern),)
            tables.append((pattern, _policy(_table(table, where), default, where)))
        return cls(default, tables)


def changed(policy: Policy, changes: Dict[str, Any], where: str = "the change") -> Policy:
    """
    C{policy} with C{changes}: policy file keys and values (as TOML or JSON
    reads them) changed at run time.

    @raise PoliciesError: a key is unknown or a value out of range.
    """
    return _policy(_table(changes, where), policy, where)


def parseSetting(key: str, text: str) -> Dict[str, Any]:
    """
    One setting given as the policy file writes it, e.g. C{backoff} and
    C{"{ base = 1, factor = 2 }"}, as a change for L{changed}.

    @raise PoliciesError: C{text} is not a TOML value, or C{key} not a key.
    """
    if key not in _KEYS:
        raise PoliciesError("unknown key %s (expected %s)" % (key, ", ".join(_KEYS)))
    try:
        parsed = parseTOML("value = " + text)
    except TOMLFileError:
        parsed = {}
    if list(parsed) != ["value"]:
        raise PoliciesError("%s: %s is not a value as the policy file writes one" % (key, text.strip() or "nothing"))
    return {key: parsed["value"]}


def _quoted(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else '"%s"' % (key,)


def _table(value: Any, where: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise PoliciesError("%s must be a table" % (where,))
    return value


def _number(value: Any, where: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise PoliciesError("%s must be a number" % (where,))
    try:
        number = float(value)
    except OverflowError:  # a whole number beyond any float
        number = math.inf
    if number < minimum or number == math.inf:
        raise PoliciesError("%s must be a finite number of at least %s" % (where, minimum))
    return number


def _policy(table: Dict[str, Any], base: Policy, where: str) -> Policy:
    """
    C{base} with what C{table} sets.
    """
    changes: Dict[str, Any] = {}
    for key, value in table.items():
        field = _KEYS.get(key)
        at = "%s %s" % (where, key)
        if field is None:
            raise PoliciesError("%s: unknown key %s (expected %s)" % (where, key, ", ".join(_KEYS)))
        if field in ("maxAttempts", "deadLetters", "maxRunning", "results"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                meaning = "none kept" if field in ("deadLetters", "results") else "no limit"
                raise PoliciesError("%s must be a whole number, 0 or more (0: %s)" % (at, meaning))
            changes[field] = value
        elif field == "backoff":
            changes[field] = _backoff(value, base.backoff, at)
        elif field in ("retryFailures", "retryForeground"):
            if not isinstance(value, bool):
                raise PoliciesError("%s must be true or false" % (at,))
            changes[field] = value
        else:
            changes[field] = _number(value, at)
    return dataclasses.replace(base, **changes)


def _backoff(value: Any, base: Optional[Backoff], where: str) -> Optional[Backoff]:
    """
    The backoff a table gives: C{base}'s (else L{Backoff}'s defaults) with
    the keys it sets; C{false} for none.
    """
    if value is False:
        return None
    table = _table(value, where)
    unknown = sorted(set(table) - set(_BACKOFF_KEYS))
    if unknown:
        raise PoliciesError("%s: unknown key %s (expected %s)" % (where, unknown[0], ", ".join(_BACKOFF_KEYS)))
    fields = {key: _number(table[key], "%s.%s" % (where, key)) for key in _BACKOFF_KEYS if key in table}
    backoff = dataclasses.replace(base or Backoff(), **fields)
    if backoff.factor < 1:
        raise PoliciesError("%s.factor must be at least 1" % (where,))
    if backoff.jitter > 1:
        raise PoliciesError("%s.jitter must be a fraction from 0 to 1" % (where,))
    return backoff


def uniform(low: float, high: float) -> float:
    """
    A random number from C{low} to C{high}, for L{Backoff.delay}'s jitter.
    """
    return random.uniform(low, high)
