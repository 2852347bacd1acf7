# -*- test-case-name: tests.test_queue_postgresql -*-
"""
The PostgreSQL persistent queue, through psycopg 3 (hidden in this module).

C{--queue postgresql://USER:PASSWORD@HOST:PORT/DATABASE?table=NAME} keeps
background jobs in two tables of the database, named from C{table}
(C{gearman_tw} by default):

  - C{NAME_jobs}: one row per stored job, C{key BIGINT PRIMARY KEY} (the job
    server's number for the record), then C{function}, C{unique_key},
    C{data} (C{BYTEA}, stored verbatim), C{priority}, C{when_to_run},
    C{attempts} and C{due};
  - C{NAME_kept}: what outlives a job (dead letters, stored results, policy
    changes), C{(kind, ident, value)}, with C{PRIMARY KEY (kind, ident)}.

Table names only ever reach SQL as quoted identifiers
(C{psycopg.sql.Identifier}) and every value as a parameter, never in SQL text.

All database work happens on one dedicated thread, over one connection.
Stores and deletes that arrive while a transaction commits wait and go
together into the next one (group commit): one transaction per batch, one
statement per kind of change (C{unnest} of arrays, binary parameters).  When
a batch holds several kinds of change, each is made in a savepoint, so that
deletes the database refuses fail alone and the stores beside them commit.

Connections that break (the database restarted or failed over, the network
cut) are replaced: a batch whose connection broke is retried on a new one
until the queue's timeout (C{?timeout=SECONDS}, 10 by default) has passed
since its oldest change arrived, and only then fails with L{QueueError} --
until then the job server holds the submitters' JOB_CREATED.  No answer
within the timeout counts as a broken connection: a watchdog on the reactor
shuts the connection's socket down, which ends the thread's wait.

Retrying is safe whatever an earlier attempt did: stores are C{INSERT ... ON
CONFLICT (key) DO NOTHING} (a row already there is checked to be the same
job), deletes and rewrites are idempotent.  A store whose COMMIT went
unanswered may have been committed; if its batch finally fails, it is
withdrawn before the add fails: the keys are deleted behind a placeholder
insert of the same keys, which waits for any transaction still holding them
(so the delete comes after that transaction, whatever its outcome).  A
withdrawal that fails too, like any delete that fails, is kept and retried
with backoff until it succeeds (L{DeleteRetries}).  So a job answered
QUEUE_ERROR does not run after a restart, and no job is acknowledged that
was not stored.

At open, a table left by gearmand's C{libpq} queue (C{queue} by default,
C{?gearmand_table=NAME}, C{?gearmand_table=} for none) is taken over in
the same transaction that makes ours: its rows become jobs of ours, numbered
after ours, and the table is dropped.  A table of that name whose columns
are not gearmand's is left alone.

Standby (C{twistd gearman --standby}, L{gearman_tw.server.standby}): several
servers share the tables, and only the one holding the lease serves.
L{PostgreSQLQueue.lease} makes the lease, a row of table C{NAME_lease}
(made when it is first taken, if missing): the holder's name and when it
expires, by the database's clock.  From then on the queue writes only
while its server holds it: every write transaction first locks that row
(C{SELECT ... FOR SHARE}) and checks the holder and the expiry, and
otherwise writes nothing and fails with L{QueueError} ("this server does
not hold the lease of the namespace").  A server taking the lease updates
the row, so it waits for the write transactions that checked it, and then
sees what they stored; later ones see it has changed hands.  Reads are not
fenced, and a queue without a lease writes as before, with no statement
more.  With a lease, gearmand's table is taken over by the server that
takes the lease, not at open.
"""

from __future__ import annotations

import math
import os
import re
import socket
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from gearman_tw.errors import QueueError
from gearman_tw.interfaces import ILease, IPersistentQueue
from gearman_tw.queues import DeleteRetries, QueuedJob

if TYPE_CHECKING:
    import psycopg

#: The tables' name (prefix) unless C{?table=} says otherwise.
DEFAULT_TABLE = "gearman_tw"

#: The table gearmand's libpq queue writes unless told otherwise
#: (gearmand's C{--libpq-table}).
GEARMAND_TABLE = "queue"

#: Seconds a change may wait for the database, reconnections included,
#: before it fails.
DEFAULT_TIMEOUT = 10.0

#: Seconds between two connection attempts at first; doubled after each
#: failed one, up to L{MAX_RECONNECT_DELAY}.
FIRST_RECONNECT_DELAY = 0.05

#: The longest wait (seconds) between two connection attempts.
MAX_RECONNECT_DELAY = 1.0

#: A batch that waited behind others past its timeout still gets this long
#: (seconds, or the timeout if shorter) for one attempt.
MIN_ATTEMPT = 1.0

#: Seconds between two looks of the watchdog at a batch past its time
#: that has no connection to stop yet.
WATCH_AGAIN = 0.1

#: Rows fetched per round trip by L{PostgreSQLQueue.replay}.
REPLAY_CHUNK = 10000

#: PostgreSQL's longest name (longer ones are cut short).
MAX_NAME = 63

#: The longest C{?table=} name: C{_jobs}, C{_kept} or C{_lease} follows
#: it.
MAX_TABLE_NAME = MAX_NAME - len("_lease")

#: Why a write of a server that does not hold the lease fails.
FENCED = "this server does not hold the lease of the namespace"

# The URL's query parameters that are ours; the others go to libpq.
_OURS = ("table", "gearmand_table", "timeout")

# An unquoted SQL name: letters, digits and underscores, not starting with
# a digit.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# What the database thread is asked to do.
_ADD = 0
_DONE = 1
_UPDATE = 2
_KEEP = 3
_WITHDRAW = 4
_CALL = 5

_WHAT = {_ADD: "add", _DONE: "done", _UPDATE: "update", _KEEP: "keep", _WITHDRAW: "done"}

# gearmand's columns, and the types its CREATE TABLE gives them (checked
# before a take-over).
_GEARMAND_COLUMNS = {
    "unique_key": ("character varying", "text"),
    "function_name": ("character varying", "text"),
    "priority": ("integer", "smallint", "bigint"),
    "data": ("bytea",),
    "when_to_run": ("integer", "bigint"),
}

# SQLSTATE classes (and codes) after which a batch is retried on a new
# connection: connection exceptions, transaction rollbacks (serialization,
# deadlock), operator intervention (shutdown, cannot connect now, a
# statement cancelled), insufficient resources (too many connections), and
# a read-only transaction (a standby after a failover).
_RETRIED_CLASSES = ("08", "40", "53", "57")
_RETRIED_CODES = ("25006",)

# What the server says when it refuses a connection for a while: starting
# up, shutting down or recovering, or out of connection slots.
_RETRIED_FATAL = (
    "the database system is",
    "too many clients",
    "connection slots are reserved",
    "terminating connection",
)


class _Op:
    """
    A change (or a call) waiting for the database thread, on the reactor
    thread.
    """

    __slots__ = ("kind", "payload", "deferred", "arrived")

    def __init__(self, kind: int, payload: Any, deferred: "Deferred[Any]", arrived: float) -> None:
        self.kind = kind
        self.payload = payload
        self.deferred = deferred
        self.arrived = arrived


class _Attempt:
    """
    What the database thread knows of one batch over its attempts.

    @ivar committing: the current attempt has sent its COMMIT.
    @ivar uncertain: an attempt's COMMIT went unanswered: it may have been
        committed.
    """

    def __init__(self) -> None:
        self.committing = False
        self.uncertain = False


class _Failed(Exception):
    """
    A batch (or call) failed for good, in the database thread.

    @ivar why: the reason, one line.
    @ivar uncertain: an attempt may have committed it all the same.
    """

    def __init__(self, why: str, uncertain: bool) -> None:
        super().__init__(why)
        self.why = why
        self.uncertain = uncertain


class _Refused(Exception):
    """
    A change that cannot be made (not the database's error).
    """


class _Fenced(_Refused):
    """
    A batch of a server that does not hold the lease: nothing of it is
    written.
    """


# A line to log: its format, and its fields (C{warn} for a warning).
_Note = Tuple[str, Dict[str, Any]]


class _Written(NamedTuple):
    """
    What a batch's transaction did: the reason each change failed (C{None}
    for those made), and whether an earlier attempt may have committed.
    """

    errors: List[Optional[str]]
    uncertain: bool


def _checkName(name: str, what: str, limit: int) -> str:
    """
    C{name}, if it is a plain SQL name of C{limit} characters at most.

    @raise QueueError: it is not.
    """
    if not _NAME.match(name) or len(name) > limit:
        raise QueueError(
            "postgresql: bad %s name %r: use up to %d letters (a-z, A-Z), digits and underscores, not starting"
            " with a digit" % (what, name, limit)
        )
    return name


def _oneLine(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _why(error: BaseException) -> str:
    """
    A short reason for a psycopg (or other) error: the server's primary
    message, or libpq's first line without its "connection to server ...
    failed:" preamble.
    """
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = _oneLine(primary or str(error))
    if "failed: " in text:
        text = text.rsplit("failed: ", 1)[1]
    text = re.sub(r"^(FATAL|ERROR):\s*", "", text)
    if not text:
        return type(error).__name__
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _retried(error: BaseException) -> bool:
    """
    Whether a batch that failed with C{error} (its connection still whole)
    is tried again on a new connection.
    """
    if isinstance(error, _Refused):
        return False
    state = getattr(error, "sqlstate", None)
    if state is not None:
        return state[:2] in _RETRIED_CLASSES or state in _RETRIED_CODES
    # A connection that could not be made: libpq gives no SQLSTATE, only
    # the server's message (English unless lc_messages says otherwise).
    text = str(error)
    if "FATAL:" not in text:
        # Refused, timed out, host not found, ... (or localized).
        return True
    return any(phrase in text for phrase in _RETRIED_FATAL)


def _last(pairs: List[Tuple[Any, Any]]) -> List[Tuple[Any, Any]]:
    """
    C{pairs} with one per first item, the last given (PostgreSQL refuses to
    change a row twice in one statement).
    """
    if len({first for first, _ in pairs}) == len(pairs):
        return pairs
    return list(dict(pairs).items())


@implementer(IPersistentQueue)
class PostgreSQLQueue:
    """
    Background jobs kept in PostgreSQL.

    @ivar where: the database, as C{HOST:PORT/DATABASE}, for messages (never
        with the password).
    @ivar commits: transactions committed so far (for tests and metrics).
    @ivar retries: the deletes (and withdrawals) that failed, retried until
        they succeed.
    """

    name = "postgresql"
    persistent = True
    log = Logger()

    def __init__(
        self,
        conninfo: str,
        table: str = DEFAULT_TABLE,
        gearmandTable: Optional[str] = GEARMAND_TABLE,
        timeout: float = DEFAULT_TIMEOUT,
        reactor: Any = None,
        threadPool: Optional[ThreadPool] = None,
    ) -> None:
        """
        @param conninfo: how to connect, as libpq takes it (a
            C{postgresql://} URL or C{key=value} pairs).
        @param table: the prefix of the tables (C{_jobs}, C{_kept}).
        @param gearmandTable: the table of gearmand's libpq queue to take
            over at open, C{None} for none.
        @param timeout: seconds a change may wait for the database,
            reconnections included.
        @param threadPool: the pool to run database work in (one thread);
            one of the queue's own by default.

        @raise QueueError: psycopg is not installed, a name or the timeout
            is not valid, or C{conninfo} cannot be parsed.
        """
        try:
            import psycopg
            from psycopg import sql
        except ImportError as e:
            raise QueueError(
                "the PostgreSQL queue needs psycopg 3: pip install 'psycopg[binary]' (%s)" % (e,)
            ) from None
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        _checkName(table, "table", MAX_TABLE_NAME)
        if gearmandTable is not None:
            _checkName(gearmandTable, "gearmand_table", MAX_NAME)
            if gearmandTable in (table + "_jobs", table + "_kept", table + "_lease"):
                raise QueueError("postgresql: gearmand_table %r is one of the queue's own tables" % (gearmandTable,))
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise QueueError("postgresql: the timeout must be a positive number of seconds, not %r" % (timeout,))
        try:
            parameters = psycopg.conninfo.conninfo_to_dict(conninfo)
        except psycopg.Error as e:
            raise QueueError("postgresql: bad connection URL: %s" % (_why(e),)) from None
        for port in str(parameters.get("port") or "").split(","):
            if port and not port.isdigit():
                raise QueueError("postgresql: bad port %r in the connection URL" % (port,))
        host = str(parameters.get("host") or parameters.get("hostaddr") or "localhost")
        self.where = "%s:%s/%s" % (
            host,
            parameters.get("port") or 5432,
            parameters.get("dbname") or parameters.get("user") or "",
        )
        self.conninfo = conninfo
        self._parameters = parameters
        self.table = table
        self.jobsTable = table + "_jobs"
        self.keptTable = table + "_kept"
        self.leaseTable = table + "_lease"
        self.gearmandTable = gearmandTable
        self.timeout = float(timeout)
        self.reactor = reactor
        self.commits = 0
        self.retries = DeleteRetries(reactor, self._retryDeletes, self.name)
        self._pool = threadPool
        self._ownPool = threadPool is None
        self._shutdownTrigger: Any = None
        self._pending: List[_Op] = []
        self._inFlight = False
        self._flushed: List[Deferred[None]] = []
        self._watch: Any = None
        self._isOpen = False
        # The holder every write must hold the lease under, once a lease
        # was made (L{lease}); None: writes are not fenced.
        self._fence: Optional[bytes] = None
        # Shared by the reactor and the database thread.
        self._lock = threading.Lock()
        self._socket: Optional[socket.socket] = None
        self._stallAt: Optional[float] = None
        self._interrupted = False
        # The database thread's own.
        self._connection: Optional["psycopg.Connection[Any]"] = None
        self._leaseTableFound = False
        self._sql = self._statements(sql)

    @classmethod
    def fromURL(cls, url: str, reactor: Any = None) -> "PostgreSQLQueue":
        """
        The queue a C{postgresql://} (or C{postgres://}) URL names:
        C{postgresql://USER:PASSWORD@HOST:PORT/DATABASE?table=NAME}, with
        C{gearmand_table=NAME} (gearmand's table to take over, C{queue} by
        default, empty for none) and C{timeout=SECONDS}; any other query
        parameter is libpq's (C{sslmode}, C{connect_timeout},
        C{application_name}, C{options}, ...).

        @raise QueueError: the URL is not valid, with a one-line reason.
        """
        try:
            parts = urlsplit(url)
        except ValueError as e:
            raise QueueError("postgresql: bad URL %r: %s" % (_hidePassword(url), e)) from None
        if parts.scheme not in ("postgresql", "postgres"):
            raise QueueError("postgresql: the URL must start with postgresql:// (not %r)" % (parts.scheme,))
        ours: Dict[str, str] = {}
        theirs: List[Tuple[str, str]] = []
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in _OURS:
                if name in ours:
                    raise QueueError("postgresql: %s given twice" % (name,))
                ours[name] = value
            else:
                theirs.append((name, value))
        timeout = DEFAULT_TIMEOUT
        if "timeout" in ours:
            try:
                timeout = float(ours["timeout"])
            except ValueError:
                raise QueueError("postgresql: the timeout must be a number of seconds, not %r" % (ours["timeout"],))
        gearmandTable: Optional[str] = ours.get("gearmand_table", GEARMAND_TABLE)
        conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(theirs), ""))
        return cls(
            conninfo,
            table=ours.get("table", DEFAULT_TABLE),
            gearmandTable=gearmandTable or None,
            timeout=timeout,
            reactor=reactor,
        )

    def _statements(self, sql: Any) -> Dict[str, Any]:
        """
        The statements, with the table names quoted as identifiers.
        """
        jobs = sql.Identifier(self.jobsTable)
        kept = sql.Identifier(self.keptTable)
        lease = sql.Identifier(self.leaseTable)
        statements = {
            "createJobs": "CREATE TABLE IF NOT EXISTS {jobs} ("
            " key BIGINT PRIMARY KEY,"
            " function BYTEA NOT NULL DEFAULT '',"
            " unique_key BYTEA NOT NULL DEFAULT '',"
            " data BYTEA NOT NULL DEFAULT '',"
            " priority SMALLINT NOT NULL DEFAULT 1,"
            " when_to_run BIGINT NOT NULL DEFAULT 0,"
            " attempts BIGINT NOT NULL DEFAULT 0,"
            " due DOUBLE PRECISION NOT NULL DEFAULT 0)",
            "createKept": "CREATE TABLE IF NOT EXISTS {kept} ("
            " kind BYTEA NOT NULL, ident BYTEA NOT NULL, value BYTEA NOT NULL,"
            " PRIMARY KEY (kind, ident))",
            "checkJobs": "SELECT key, function, unique_key, data, priority, when_to_run, attempts, due"
            " FROM {jobs} LIMIT 0",
            "checkKept": "SELECT kind, ident, value FROM {kept} LIMIT 0",
            "add": "INSERT INTO {jobs} (key, function, unique_key, data, priority, when_to_run, attempts, due)"
            " SELECT * FROM unnest(%b::int8[], %b::bytea[], %b::bytea[], %b::bytea[], %b::int2[], %b::int8[],"
            " %b::int8[], %b::float8[])"
            " ON CONFLICT (key) DO NOTHING",
            "stored": "SELECT key, function, unique_key, data, priority, when_to_run FROM {jobs}"
            " WHERE key = ANY(%b::int8[])",
            "done": "DELETE FROM {jobs} WHERE key = ANY(%b::int8[])",
            "placeholders": "INSERT INTO {jobs} (key) SELECT unnest(%b::int8[]) ON CONFLICT (key) DO NOTHING",
            "update": "UPDATE {jobs} AS j SET attempts = u.attempts, due = u.due"
            " FROM unnest(%b::int8[], %b::int8[], %b::float8[]) AS u (key, attempts, due)"
            " WHERE j.key = u.key",
            "keep": "INSERT INTO {kept} (kind, ident, value)"
            " SELECT %b::bytea, ident, value FROM unnest(%b::bytea[], %b::bytea[]) AS r (ident, value)"
            " ON CONFLICT (kind, ident) DO UPDATE SET value = EXCLUDED.value",
            "drop": "DELETE FROM {kept} WHERE kind = %b::bytea AND ident = ANY(%b::bytea[])",
            "kept": "SELECT ident, value FROM {kept} WHERE kind = %b::bytea ORDER BY ident",
            "replay": "SELECT key, function, unique_key, data, priority, when_to_run, attempts, due"
            " FROM {jobs} ORDER BY key",
            "lastKey": "SELECT coalesce(max(key), 0) FROM {jobs}",
            # The lease: one row, its expiry by the database's clock.
            "createLease": "CREATE TABLE IF NOT EXISTS {lease} ("
            " id SMALLINT PRIMARY KEY DEFAULT 1 CHECK (id = 1),"
            " holder BYTEA NOT NULL,"
            " expires TIMESTAMPTZ NOT NULL)",
            # Take it if nobody holds it, if it expired, or if the holder
            # has it already.
            "takeLease": "INSERT INTO {lease} AS l (id, holder, expires)"
            " VALUES (1, %b::bytea, clock_timestamp() + make_interval(secs => %b::float8))"
            " ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires"
            " WHERE l.holder = EXCLUDED.holder OR l.expires <= clock_timestamp()"
            " RETURNING 1",
            "renewLease": "UPDATE {lease} SET expires = clock_timestamp() + make_interval(secs => %b::float8)"
            " WHERE id = 1 AND holder = %b::bytea AND expires > clock_timestamp()"
            " RETURNING 1",
            "releaseLease": "DELETE FROM {lease} WHERE id = 1 AND holder = %b::bytea",
            # First in every write transaction of a fenced queue: a server
            # taking the lease waits for the transaction to end.
            "fence": "SELECT 1 FROM {lease} WHERE id = 1 AND holder = %b::bytea AND expires > clock_timestamp()"
            " FOR SHARE",
        }
        composed = {name: sql.SQL(text).format(jobs=jobs, kept=kept, lease=lease) for name, text in statements.items()}
        if self.gearmandTable is not None:
            old = sql.Identifier(self.gearmandTable)
            composed["lockGearmand"] = sql.SQL("LOCK TABLE {old} IN ACCESS EXCLUSIVE MODE").format(old=old)
            # gearmand wrote its names as text in the database's encoding:
            # converting to that encoding gives back its bytes.  Rows in
            # their physical order, the closest to gearmand's there is.
            composed["takeOver"] = sql.SQL(
                "INSERT INTO {jobs} (key, function, unique_key, data, priority, when_to_run)"
                " SELECT %s::int8 + row_number() OVER (ORDER BY ctid),"
                " convert_to(coalesce(function_name, ''), current_setting('server_encoding')),"
                " convert_to(coalesce(unique_key, ''), current_setting('server_encoding')),"
                " coalesce(data, ''::bytea),"
                " least(greatest(coalesce(priority, 1), 0), 2),"
                " coalesce(when_to_run, 0)"
                " FROM {old}"
            ).format(jobs=jobs, old=old)
            composed["dropGearmand"] = sql.SQL("DROP TABLE {old}").format(old=old)
        return composed

    # The pipeline (on the reactor thread)

    def _run(self, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
        assert self._pool is not None
        return deferToThreadPool(self.reactor, self._pool, f, *args)

    def _enqueue(self, kind: int, payload: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self._pending.append(_Op(kind, payload, d, self.reactor.seconds()))
        self._kick()
        return d

    def _kick(self) -> None:
        """
        Send what is pending to the database thread, unless a batch is
        there already: everything pending up to the next call is one
        transaction.
        """
        if self._inFlight:
            return
        pending = self._pending
        if not pending:
            waiters, self._flushed = self._flushed, []
            for waiter in waiters:
                waiter.callback(None)
            return
        if self._pool is None:
            self._pending = []
            for op in pending:
                op.deferred.errback(Failure(QueueError("the PostgreSQL queue is not open")))
            self._kick()
            return
        if pending[0].kind == _CALL:
            unit = [pending.pop(0)]
        else:
            end = 0
            while end < len(pending) and pending[end].kind != _CALL:
                end += 1
            unit, self._pending = pending[:end], pending[end:]
        oldest = min(op.arrived for op in unit)
        remaining = max(oldest + self.timeout - self.reactor.seconds(), min(self.timeout, MIN_ATTEMPT))
        self._inFlight = True
        self._arm(remaining)
        if unit[0].kind == _CALL:
            function, _ = unit[0].payload
            d = self._run(self._attempts, function, remaining)
        else:
            d = self._run(self._writeInThread, [(op.kind, op.payload) for op in unit], remaining, self._fence)
        d.addCallbacks(self._unitDone, self._unitFailed, callbackArgs=(unit,), errbackArgs=(unit,))

    def _arm(self, remaining: float) -> None:
        """
        Watch the batch sent to the database thread: past its time, shut
        its connection's socket down, so that the thread stops waiting.
        """
        with self._lock:
            self._stallAt = time.monotonic() + remaining
            self._interrupted = False
        self._watch = self.reactor.callLater(remaining, self._check)

    def _check(self) -> None:
        self._watch = None
        with self._lock:
            at = self._stallAt
            if at is None:
                return
            left = at - time.monotonic()
            if left <= 0:
                if self._socket is not None:
                    self._interrupted = True
                    try:
                        self._socket.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                # A connection attempt (bounded by libpq), or the pause
                # between two: look again, in case it connects.
                left = WATCH_AGAIN
        # Or the thread moved the time on (a long read making progress).
        self._watch = self.reactor.callLater(left, self._check)

    def _disarm(self) -> None:
        self._inFlight = False
        if self._watch is not None:
            if self._watch.active():
                self._watch.cancel()
            self._watch = None

    def _unitDone(self, result: Any, unit: List[_Op]) -> None:
        self._disarm()
        if unit[0].kind == _CALL:
            unit[0].deferred.callback(result)
        else:
            self.commits += 1
            self._settle(unit, result.errors, result.uncertain)
        self._kick()

    def _unitFailed(self, failure: Failure, unit: List[_Op]) -> None:
        self._disarm()
        if failure.check(_Failed):
            why, uncertain = failure.value.why, failure.value.uncertain
        else:
            self.log.failure("PostgreSQL queue: unexpected error", failure)
            why, uncertain = failure.getErrorMessage(), True
        self._settle(unit, [why] * len(unit), uncertain)
        self._kick()

    def _settle(self, unit: List[_Op], errors: List[Optional[str]], uncertain: bool) -> None:
        """
        Fire the Deferreds of a batch's changes; adds that failed after an
        attempt that may have committed them are withdrawn first.
        """
        withdrawn = []
        for op, why in zip(unit, errors):
            if why is None:
                op.deferred.callback(None)
            elif op.kind == _CALL:
                self.log.error("PostgreSQL queue: {what} failed: {why}", what=op.payload[1], why=why)
                op.deferred.errback(Failure(QueueError("postgresql %s: %s" % (op.payload[1], why))))
            elif op.kind == _ADD and uncertain:
                withdrawn.append(op)
            else:
                self.log.error("PostgreSQL queue: {what} failed: {why}", what=_WHAT[op.kind], why=why)
                op.deferred.errback(Failure(QueueError("postgresql %s: %s" % (_WHAT[op.kind], why))))
        if withdrawn:
            self._withdraw(withdrawn, next(why for why in errors if why is not None))

    def _withdraw(self, ops: List[_Op], why: str) -> None:
        """
        Delete the jobs of adds that may have been stored, then fail them
        with C{why}; if the delete fails too, it is kept for retrying.
        """
        keys = [job.key for op in ops for job in op.payload]
        d = self._enqueue(_WITHDRAW, keys)

        def ended(result: object) -> None:
            if isinstance(result, Failure):
                self.retries.keep(keys, len(keys))
                self.log.error(
                    "PostgreSQL queue: add failed: {why}; its withdrawal failed too ({again}), and is retried:"
                    " until it succeeds, these {count} jobs may be stored (and run after a restart)",
                    why=why,
                    again=result.getErrorMessage(),
                    count=len(keys),
                )
            else:
                self.log.error("PostgreSQL queue: add failed: {why}; withdrawn, not stored", why=why)
            for op in ops:
                op.deferred.errback(Failure(QueueError("postgresql add: %s" % (why,))))

        d.addBoth(ended)

    def flush(self) -> Deferred[None]:
        """
        Fire once everything added or done so far is committed (or failed).
        """
        if not self._inFlight and not self._pending:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._flushed.append(d)
        return d

    # Opening and closing

    def open(self) -> Deferred[None]:
        """
        Start the database thread, connect, create the tables if needed and
        take over gearmand's table, in one transaction; nothing more once
        that succeeded (a standby's lease opens the queue to take the
        lease, then the job server opens it).

        @return: fails with L{QueueError} if that cannot be done within the
            timeout (a database that refuses connections is tried again
            until then): C{"postgresql open: cannot connect to PostgreSQL at
            HOST:PORT/DB: connection refused"}.
        """
        if self._isOpen:
            return succeed(None)
        if self._pool is None:
            self._pool = ThreadPool(1, 1, name="gearman-postgresql")
            self._pool.start()
            # Like the reactor's own pool: never keep the process alive.
            self._shutdownTrigger = self.reactor.addSystemEventTrigger("during", "shutdown", self._pool.stop)
        d = self._enqueue(_CALL, (self._openInThread, "open"))
        d.addCallback(self._opened)
        return d

    def _opened(self, notes: List[_Note]) -> None:
        self._isOpen = True
        self._log(notes)

    def _log(self, notes: List[_Note]) -> None:
        for text, fields in notes:
            fields = dict(fields)
            if fields.pop("warn", False):
                self.log.warn(text, **fields)
            else:
                self.log.info(text, **fields)

    def close(self) -> Deferred[None]:
        """
        Commit what is pending, retry the deletes that failed once more,
        close the connection and stop the thread.
        """
        return Deferred.fromCoroutine(self._close())

    async def _close(self) -> None:
        await self.flush()
        await self.retries.close()
        await self.flush()
        if self._pool is None:
            return
        try:
            await self._run(self._disconnect)
        finally:
            if self._ownPool and self._pool is not None:
                self._pool.stop()
                if self._shutdownTrigger is not None:
                    self.reactor.removeSystemEventTrigger(self._shutdownTrigger)
                    self._shutdownTrigger = None
            self._pool = None
            self._isOpen = False

    # Changes (on the reactor thread)

    # IPersistentQueue types records as object (interfaces.py does not
    # import QueuedJob).
    def add(self, job: QueuedJob) -> Deferred[None]:
        """
        Store C{job}; fires after the transaction holding it commits.
        """
        return self.addMany([job])

    def addMany(self, jobs: Sequence[QueuedJob]) -> Deferred[None]:
        """
        Store C{jobs}; fires after the transaction holding them commits, or
        fails with L{QueueError} (once they are withdrawn, if they may have
        been stored).
        """
        if not jobs:
            return succeed(None)
        return self._enqueue(_ADD, list(jobs))

    def done(self, key: int) -> Deferred[None]:
        """
        Forget the job stored under C{key}.
        """
        return self.doneMany([key])

    def doneMany(self, keys: List[int]) -> Deferred[None]:
        """
        Forget the jobs stored under C{keys}; a delete that fails is kept
        and retried until it succeeds.
        """
        if not keys:
            return succeed(None)
        keys = list(keys)
        d = self._enqueue(_DONE, keys)
        # Before the caller's errbacks: keep the deletes to retry them.
        d.addErrback(self._keepDeletes, keys)
        return d

    def _keepDeletes(self, failure: Failure, keys: List[int]) -> Failure:
        self.retries.keep(keys, len(keys))
        return failure

    def _retryDeletes(self, keys: List[int]) -> Deferred[None]:
        """
        Delete kept keys again, as one withdrawal (for L{DeleteRetries}).
        """
        return self._enqueue(_WITHDRAW, list(keys))

    def update(self, jobs: List[QueuedJob]) -> Deferred[None]:
        """
        Rewrite the attempts and due time of the jobs still stored.
        """
        if not jobs:
            return succeed(None)
        return self._enqueue(_UPDATE, list(jobs))

    def keep(
        self, kind: bytes, records: List[Tuple[bytes, bytes]], done: List[int], dropped: List[bytes]
    ) -> Deferred[None]:
        """
        Store and drop records of C{kind} and forget the jobs under C{done},
        all or nothing.  If it fails (even without an answer) the change was
        made whole or not at all; either way it is not retried.
        """
        if not records and not done and not dropped:
            return succeed(None)
        return self._enqueue(_KEEP, (bytes(kind), list(records), list(done), list(dropped)))

    def lease(self, holder: bytes, ttl: float) -> "PostgreSQLLease":
        """
        The lease of this queue's tables, for a server named C{holder}:
        from now on this queue writes only while C{holder} holds it (each
        write transaction checks it first), so a server that lost it
        writes nothing (the fence of a standby; see
        L{gearman_tw.server.standby}).
        """
        self._fence = bytes(holder)
        return PostgreSQLLease(self, bytes(holder), ttl)

    def _leaseCall(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """
        Run C{function(*args, connection, attempt)} in a transaction of its
        own, in turn with the changes.
        """
        return self._enqueue(_CALL, (partial(function, *args), "lease"))

    def kept(self, kind: bytes) -> Deferred[List[Tuple[bytes, bytes]]]:
        """
        Fire with the records of C{kind}, as C{(ident, value)}, by ident.
        """
        return self._enqueue(_CALL, (lambda connection, attempt: self._keptInThread(connection, bytes(kind)), "kept"))

    def replay(self) -> Deferred[List[QueuedJob]]:
        """
        Fire with every stored job, in key order.
        """
        return self._enqueue(_CALL, (self._replayInThread, "replay"))

    # The database thread

    def _connect(self, deadline: float) -> "psycopg.Connection[Any]":
        """
        The connection, made if needed (within the time left, but libpq
        waits 2 s at least).
        """
        import psycopg

        connection = self._connection
        if connection is not None and not connection.closed:
            return connection
        self._disconnect()
        seconds = max(2, math.ceil(deadline - time.monotonic()))
        given = self._parameters.get("connect_timeout")
        if given:
            try:
                seconds = min(seconds, max(2, int(float(given))))
            except ValueError:
                pass
        options: Dict[str, Any] = {"connect_timeout": seconds}
        if "application_name" not in self._parameters:
            options["application_name"] = "gearman_tw"
        connection = psycopg.connect(self.conninfo, autocommit=False, **options)
        try:
            guard = socket.socket(fileno=os.dup(connection.pgconn.socket))
        except OSError:
            connection.close()
            raise
        with self._lock:
            self._socket = guard
        self._connection = connection
        milliseconds = str(max(1000, int(self.timeout * 2000)))
        # A statement blocked on a lock, or a transaction whose client
        # went away unheard, ends after twice the timeout and frees its
        # rows (so that a withdrawal, or a retry, can go on): not before a
        # COMMIT unanswered within the timeout has had time to end.
        connection.execute(
            "SELECT set_config('statement_timeout', %s, false),"
            " set_config('idle_in_transaction_session_timeout', %s, false)",
            (milliseconds, milliseconds),
        )
        connection.commit()
        return connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass
        with self._lock:
            guard, self._socket = self._socket, None
        if guard is not None:
            guard.close()

    def _moveOn(self, seconds: float) -> None:
        """
        Give the read under way C{seconds} more before the watchdog stops
        it (for each round trip of a long read).
        """
        with self._lock:
            if self._stallAt is not None:
                self._stallAt = max(self._stallAt, time.monotonic() + seconds)

    def _attempts(self, work: Callable[["psycopg.Connection[Any]", _Attempt], Any], remaining: float) -> Any:
        """
        Run C{work} in a transaction, on a new connection if the last one
        broke, again until C{remaining} seconds have passed.

        @raise _Failed: it failed for good.
        """
        import psycopg

        deadline = time.monotonic() + remaining
        attempt = _Attempt()
        delay = FIRST_RECONNECT_DELAY
        try:
            # Bounded by the deadline; the count only guards against a loop.
            for _ in range(10000):
                connection = None
                attempt.committing = False
                try:
                    connection = self._connect(deadline)
                    result = work(connection, attempt)
                    attempt.committing = True
                    connection.commit()
                    return result
                except (psycopg.Error, _Refused, OSError) as e:
                    broken = connection is not None and connection.closed
                    if broken and attempt.committing:
                        attempt.uncertain = True
                    with self._lock:
                        interrupted = self._interrupted
                    if interrupted:
                        why = "no answer from PostgreSQL at %s within %g s" % (self.where, self.timeout)
                    elif connection is None:
                        why = "cannot connect to PostgreSQL at %s: %s" % (self.where, _why(e))
                    else:
                        why = _why(e)
                    if connection is not None and not broken:
                        _rollback(connection)
                    if interrupted or not (broken or _retried(e)):
                        raise _Failed(why, attempt.uncertain) from None
                    self._disconnect()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise _Failed(why, attempt.uncertain) from None
                    time.sleep(min(delay, left))
                    delay = min(delay * 2, MAX_RECONNECT_DELAY)
            raise _Failed("gave up after too many attempts", attempt.uncertain)
        finally:
            with self._lock:
                self._stallAt = None

    def _writeInThread(
        self, operations: List[Tuple[int, Any]], remaining: float, fence: Optional[bytes] = None
    ) -> _Written:
        """
        Make a batch of changes in one transaction: consecutive changes of
        one kind together (each keep alone), each run in a savepoint when
        there are several.

        @param fence: the holder that must hold the lease for anything to
            be written, or C{None}.
        """
        runs: List[Tuple[int, List[int]]] = []
        for index, (kind, _) in enumerate(operations):
            if runs and runs[-1][0] == kind and kind != _KEEP:
                runs[-1][1].append(index)
            else:
                runs.append((kind, [index]))

        def write(connection: "psycopg.Connection[Any]", attempt: _Attempt) -> List[Optional[str]]:
            import psycopg

            errors: List[Optional[str]] = [None] * len(operations)
            cursor = connection.cursor()
            if fence is not None:
                cursor.execute(self._sql["fence"], [fence])
                if cursor.fetchone() is None:
                    raise _Fenced(FENCED)
            if len(runs) == 1:
                kind, indexes = runs[0]
                self._apply(cursor, kind, [operations[i][1] for i in indexes])
                return errors
            for kind, indexes in runs:
                cursor.execute("SAVEPOINT gearman_tw")
                try:
                    self._apply(cursor, kind, [operations[i][1] for i in indexes])
                except (psycopg.Error, _Refused) as e:
                    if connection.closed or _retried(e):
                        raise
                    cursor.execute("ROLLBACK TO SAVEPOINT gearman_tw")
                    for i in indexes:
                        errors[i] = _why(e)
                else:
                    cursor.execute("RELEASE SAVEPOINT gearman_tw")
            return errors

        def attempt(connection: "psycopg.Connection[Any]", state: _Attempt) -> _Written:
            # Whether an attempt before this one may have committed.
            return _Written(write(connection, state), state.uncertain)

        result: _Written = self._attempts(attempt, remaining)
        return result

    def _apply(self, cursor: "psycopg.Cursor[Any]", kind: int, payloads: List[Any]) -> None:
        statements = self._sql
        if kind == _ADD:
            jobs: List[QueuedJob] = [job for batch in payloads for job in batch]
            columns: List[List[Any]] = [[], [], [], [], [], [], [], []]
            for job in jobs:
                row = (job.key, job.function, job.unique, job.data, job.priority, job.when, job.attempts, job.due)
                for column, value in zip(columns, row):
                    column.append(value)
            # One type per array.
            for index, convert in ((4, int), (5, int), (6, int), (7, float)):
                columns[index] = [convert(value) for value in columns[index]]
            cursor.execute(statements["add"], columns)
            if cursor.rowcount != len(jobs):
                self._checkStored(cursor, jobs)
        elif kind in (_DONE, _WITHDRAW):
            keys = sorted({key for batch in payloads for key in batch})
            if kind == _WITHDRAW:
                # Waits for any transaction that inserted one of these keys
                # and has not ended (an attempt whose COMMIT was not
                # answered), so that the delete comes after it.
                cursor.execute(statements["placeholders"], [keys])
            cursor.execute(statements["done"], [keys])
        elif kind == _UPDATE:
            pairs = _last([(job.key, job) for batch in payloads for job in batch])
            cursor.execute(
                statements["update"],
                [[key for key, _ in pairs], [job.attempts for _, job in pairs], [float(job.due) for _, job in pairs]],
            )
        else:
            for kept, records, done, dropped in payloads:
                if done:
                    cursor.execute(statements["done"], [sorted(set(done))])
                records = _last([(bytes(ident), bytes(value)) for ident, value in records])
                if records:
                    cursor.execute(
                        statements["keep"], [kept, [ident for ident, _ in records], [value for _, value in records]]
                    )
                if dropped:
                    cursor.execute(statements["drop"], [kept, [bytes(ident) for ident in dropped]])

    def _checkStored(self, cursor: "psycopg.Cursor[Any]", jobs: List[QueuedJob]) -> None:
        """
        Some jobs were there already: stored by an earlier attempt of this
        batch whose COMMIT went unanswered -- or other jobs under the same
        keys, which this refuses.

        @raise _Refused: a key holds another job.
        """
        cursor.execute(self._sql["stored"], [[job.key for job in jobs]])
        stored = {row[0]: tuple(bytes(value) for value in row[1:4]) + tuple(row[4:]) for row in cursor.fetchall()}
        for job in jobs:
            if stored.get(job.key) != (job.function, job.unique, job.data, job.priority, job.when):
                raise _Refused(
                    "record key %d holds another job: is another job server using table %s?" % (job.key, self.jobsTable)
                )

    def _openInThread(self, connection: "psycopg.Connection[Any]", attempt: _Attempt) -> List[_Note]:
        """
        Make the tables if they are missing and take over gearmand's.

        @return: what to log.
        """
        statements = self._sql
        notes: List[_Note] = []
        for table, create in ((self.jobsTable, "createJobs"), (self.keptTable, "createKept")):
            note = self._create(connection, table, create)
            if note is not None:
                notes.append(note)
        connection.execute(statements["checkJobs"])
        connection.execute(statements["checkKept"])
        # With a lease, the server that takes it takes gearmand's table
        # over (L{_takeLeaseInThread}), not a standby opening the queue.
        if self.gearmandTable is not None and self._fence is None:
            note = self._takeOver(connection)
            if note is not None:
                notes.append(note)
        for setting in ("fsync", "synchronous_commit"):
            (value,) = connection.execute("SELECT current_setting(%s)", (setting,)).fetchone() or ("",)
            if value == "off":
                notes.append(
                    (
                        "PostgreSQL queue: {setting} is off in {where}: acknowledged jobs can be lost in a crash",
                        {"setting": setting, "where": self.where, "warn": True},
                    )
                )
        return notes

    def _create(self, connection: "psycopg.Connection[Any]", table: str, create: str) -> Optional[_Note]:
        """
        Make C{table} with statement C{create} if it is missing.

        @return: what to log, if it was made.
        """
        exists = "SELECT to_regclass(%s) IS NOT NULL"
        # Only if missing: CREATE ... IF NOT EXISTS needs the privilege to
        # create even when the table exists.
        (found,) = connection.execute(exists, (self._quoted(table),)).fetchone() or (False,)
        if found:
            return None
        # Servers starting together on one database make it one after the
        # other (two CREATEs at once: one fails on a duplicate type).
        connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("gearman_tw create " + table,))
        (found,) = connection.execute(exists, (self._quoted(table),)).fetchone() or (False,)
        if found:
            return None
        connection.execute(self._sql[create])
        return ("PostgreSQL queue: created table {table} in {where}", {"table": table, "where": self.where})

    def _takeLeaseInThread(
        self, holder: bytes, ttl: float, connection: "psycopg.Connection[Any]", attempt: _Attempt
    ) -> Tuple[bool, List[_Note]]:
        """
        Take the lease (made if missing) if it is free, expired, or
        C{holder}'s; if it is taken, take gearmand's table over too.

        @return: whether C{holder} holds it, and what to log.
        """
        notes: List[_Note] = []
        if not self._leaseTableFound:
            note = self._create(connection, self.leaseTable, "createLease")
            if note is None:
                # There before this transaction: no need to look again.
                self._leaseTableFound = True
            else:
                notes.append(note)
        held = connection.execute(self._sql["takeLease"], (holder, float(ttl))).fetchone() is not None
        if held and self.gearmandTable is not None:
            note = self._takeOver(connection)
            if note is not None:
                notes.append(note)
        return held, notes

    def _renewLeaseInThread(
        self, holder: bytes, ttl: float, connection: "psycopg.Connection[Any]", attempt: _Attempt
    ) -> bool:
        return connection.execute(self._sql["renewLease"], (float(ttl), holder)).fetchone() is not None

    def _releaseLeaseInThread(self, holder: bytes, connection: "psycopg.Connection[Any]", attempt: _Attempt) -> None:
        connection.execute(self._sql["releaseLease"], (holder,))

    def _quoted(self, name: str) -> str:
        """
        C{name} as a quoted identifier (a parameter of C{to_regclass}).
        """
        return '"%s"' % (name.replace('"', '""'),)

    def _takeOver(self, connection: "psycopg.Connection[Any]") -> Optional[_Note]:
        """
        Move the rows of gearmand's table, if there is one, into ours after
        our jobs, and drop it.
        """
        assert self.gearmandTable is not None
        row = connection.execute("SELECT to_regclass(%s)::oid", (self._quoted(self.gearmandTable),)).fetchone()
        if row is None or row[0] is None:
            return None
        columns = dict(
            connection.execute(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_catalog.pg_attribute"
                " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
                (row[0],),
            ).fetchall()
        )
        if set(columns) != set(_GEARMAND_COLUMNS) or any(
            columns[name] not in types for name, types in _GEARMAND_COLUMNS.items()
        ):
            return (
                "PostgreSQL queue: table {table} in {where} is not gearmand's queue (its columns differ); left alone",
                {"table": self.gearmandTable, "where": self.where, "warn": True},
            )
        statements = self._sql
        connection.execute(statements["lockGearmand"])
        (last,) = connection.execute(statements["lastKey"]).fetchone() or (0,)
        count = connection.execute(statements["takeOver"], (last,)).rowcount
        connection.execute(statements["dropGearmand"])
        return (
            "PostgreSQL queue: took over {count} jobs from gearmand's table {table} in {where} (dropped)",
            {"count": count, "table": self.gearmandTable, "where": self.where},
        )

    def _keptInThread(self, connection: "psycopg.Connection[Any]", kind: bytes) -> List[Tuple[bytes, bytes]]:
        rows = connection.execute(self._sql["kept"], (kind,), binary=True).fetchall()
        return [(bytes(ident), bytes(value)) for ident, value in rows]

    def _replayInThread(self, connection: "psycopg.Connection[Any]", attempt: _Attempt) -> List[QueuedJob]:
        jobs: List[QueuedJob] = []
        with connection.cursor(name="gearman_tw_replay", binary=True) as cursor:
            cursor.execute(self._sql["replay"])
            while True:
                self._moveOn(self.timeout)
                rows = cursor.fetchmany(REPLAY_CHUNK)
                if not rows:
                    break
                for key, function, unique, data, priority, when, attempts, due in rows:
                    jobs.append(
                        QueuedJob(bytes(function), key, bytes(unique), bytes(data), priority, when, attempts, due)
                    )
        return jobs


@implementer(ILease)
class PostgreSQLLease:
    """
    The right to serve a queue's tables, for one server: the one row of
    table C{NAME_lease}, holding the server's name and when the lease
    expires, C{ttl} seconds after it was last taken or renewed, by the
    database's clock.

    @ivar ttl: seconds the lease lasts without a renewal.
    """

    def __init__(self, queue: PostgreSQLQueue, holder: bytes, ttl: float) -> None:
        self.queue = queue
        self.holder = holder
        self.ttl = ttl

    def acquire(self) -> Deferred[bool]:
        """
        Take the lease if nobody holds it or it expired (or extend it if
        this server holds it); fires with whether this server holds it
        now.  Opens the queue first if needed.
        """
        queue = self.queue
        d: Deferred[Any] = queue.open()
        d.addCallback(lambda _: queue._leaseCall(queue._takeLeaseInThread, self.holder, self.ttl))
        d.addCallback(self._taken)
        return d

    def _taken(self, result: Tuple[bool, List[_Note]]) -> bool:
        held, notes = result
        self.queue._log(notes)
        return held

    def renew(self) -> Deferred[bool]:
        """
        Extend the lease if this server holds it and it has not expired;
        fires with whether it does.
        """
        return self.queue._leaseCall(self.queue._renewLeaseInThread, self.holder, self.ttl)

    def release(self) -> Deferred[None]:
        """
        Give the lease up, if this server holds it, so that a standby takes
        over at once.
        """
        return self.queue._leaseCall(self.queue._releaseLeaseInThread, self.holder)


def _rollback(connection: "psycopg.Connection[Any]") -> None:
    """
    Roll back the transaction an error interrupted, keeping that error.
    """
    try:
        connection.rollback()
    except Exception:
        pass


def _hidePassword(url: str) -> str:
    """
    C{url} without the password it may hold, for messages.
    """
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


__all__ = ["PostgreSQLLease", "PostgreSQLQueue"]
