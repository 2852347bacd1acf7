# -*- test-case-name: tests.test_server_jobs -*-
"""
The job server's state and gearmand 1.1's job semantics, without any I/O.

L{JobServer} holds functions, queues and jobs, and acts on L{Peer} objects:
one per connection, holding that connection's worker and client state and a
C{write} callable.  The network protocol (L{gearman_tw.server.protocol})
turns packets into calls here; the unit tests call it directly.

Section numbers in comments refer to C{shared/reference/protocol.md}.
"""

from __future__ import annotations

import heapq
import socket
import struct
from collections import deque
from typing import Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union, cast

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from gearman_tw.interfaces import IJobServer, IPersistentQueue
from gearman_tw.protocol import PacketType, encode, encodeRaw
from gearman_tw.queues import QueuedJob
from gearman_tw.server.stats import ServerStats

HIGH, NORMAL, LOW = 0, 1, 2
PRIORITY_NAMES = ("HIGH", "NORMAL", "LOW")

#: gearmand stores uniques in 64 bytes, NUL included; longer ones are refused.
MAX_UNIQUE = 64
#: gearmand's job handle buffer (64 bytes, NUL included).
MAX_HANDLE = 63
#: SET_CLIENT_ID is cut to this length.
MAX_CLIENT_ID = 127
#: OPTION_REQ names longer than this are unknown.
MAX_OPTION = 63

#: How many functions without workers, jobs or limits a server keeps by
#: default (L{JobServer.idleFunctions}): C{status} goes on listing a
#: function its workers left, as gearmand's does, while a stream of new
#: names cannot make the server grow without end.
IDLE_FUNCTIONS = 10000

#: A job of at most this many clients forgets a lost one at once; one of more
#: when they are half of its clients (L{_Clients}).
_FEW_CLIENTS = 16

#: Workers of at most this many functions are looked at whole by a GRAB;
#: for more, only the functions with something queued are.
_FEW_ABILITIES = 32

_NOOP = encode(PacketType.NOOP)
_NO_JOB = encode(PacketType.NO_JOB)
_NO_CLIENTS: Tuple[()] = ()
# A plain int: an IntEnum member costs an attribute lookup per use.
_JOB_CREATED = int(PacketType.JOB_CREATED)


def _error(code: bytes, text: bytes) -> bytes:
    return encode(PacketType.ERROR, code, text)


_ERR_UNIQUE_TOO_LARGE = _error(b"ARGUMENT_TOO_LARGE", b"Unique value too large")
_ERR_QUEUE_FULL = _error(b"QUEUE_ERROR", b"Job queue is full")
_ERR_NOT_FOUND_DATA = _error(b"JOB_NOT_FOUND", b"Job does not exist on server")
_ERR_NOT_FOUND_RESULT = _error(b"JOB_NOT_FOUND", b"Job given in work result not found")
_ERR_NOT_FOUND_EXCEPTION = _error(
    b"JOB_NOT_FOUND", b"An exception was received for a job that does not exist"
)
_ERR_HANDLE_TOO_LARGE = _error(
    b"ARGUMENT_TOO_LARGE",
    b"Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf",
)


def atoi(value: bytes) -> int:
    """
    Read a leading decimal integer as C's C{strtol} does: leading white space
    and a sign are allowed, anything after the digits is ignored, and no
    digits at all read as 0.

    Unlike C{strtol} the result is not clamped, so callers can tell an
    overflow; but a number of more than 20 digits (which overflows any C
    integer) reads as +/-10**20, so that huge inputs cost nothing.
    """
    value = value.lstrip(b" \t\n\r\v\f")
    sign = 1
    if value[:1] in (b"-", b"+"):
        if value[:1] == b"-":
            sign = -1
        value = value[1:]
    end = 0
    for byte in value:
        if 48 <= byte <= 57:
            end += 1
        else:
            break
    if not end:
        return 0
    digits = value[:end].lstrip(b"0")
    if len(digits) > _MAX_DIGITS:
        return sign * _HUGE
    return sign * int(digits) if digits else 0


_MAX_DIGITS = 20
_HUGE = 10**_MAX_DIGITS
_LONG_MIN = -(2**63)
_LONG_MAX = 2**63 - 1


def _strtol(value: bytes) -> int:
    # atoi clamped to a 64-bit long, as glibc's strtol (under atoi) does.
    number = atoi(value)
    if number > _LONG_MAX:
        return _LONG_MAX
    if number < _LONG_MIN:
        return _LONG_MIN
    return number


def atoi32(value: bytes) -> int:
    """
    C's C{atoi} on a 64-bit glibc system: C{strtol} (clamped to 64 bits)
    cut to a signed 32-bit C{int}, so C{4294967297} reads as 1 and
    C{3000000000} as a negative number.
    """
    number = _strtol(value) & 0xFFFFFFFF
    return number - 0x100000000 if number & 0x80000000 else number


def _uint32(value: bytes) -> int:
    # gearmand's (uint32_t)atoi(value).
    return _strtol(value) & 0xFFFFFFFF


#: gearmand copies a WORK_STATUS denominator into an 11-byte buffer: longer
#: ones make it drop the packet; it reads at most 10 characters.
_MAX_DENOMINATOR = 11


def defaultHandlePrefix() -> bytes:
    """
    gearmand's default job handle prefix: C{H:} and the host name.
    """
    return b"H:" + socket.gethostname().encode("utf-8", "replace")


#: What a function has at a priority where it never queued a job: shared,
#: empty and immutable (L{JobServer._newQueue} puts a deque in its place).
_NO_QUEUE: Tuple[()] = ()
# Typed as what it stands for: being a tuple, it cannot be written by mistake.
_NO_QUEUES = cast("List[Deque[Entry]]", (_NO_QUEUE, _NO_QUEUE, _NO_QUEUE))
#: Shared by every function without limits; never changed (L{JobServer.setMaxQueue}
#: gives a function a list of its own).
_NO_LIMITS = [0, 0, 0]


class Function:
    """
    A function name with its three priority queues and its workers.

    A function without workers or jobs is small (about 400 bytes, its name
    and its entries in the server's dictionaries included): its queues and
    dictionaries are shared empty values until it needs its own, and a
    server keeps only so many of them (L{JobServer.idleFunctions}).

    @ivar ident: the number its server's L{QueuedRecord}s know it by.
    @ivar queues: FIFO queues of runnable jobs (L{Job}s or
        L{QueuedRecord}s), indexed by priority; an empty tuple at a
        priority that never had one.
    @ivar pending: epoch jobs not due yet, which count as NORMAL (in
        L{queued}), as in gearmand.
    @ivar running: jobs now held by a worker.
    @ivar storing: new jobs the persistent queue is storing (queued once
        stored); they count towards L{maxQueue}.
    @ivar workers: CAN_DO registrations (a worker registering twice counts twice).
    @ivar sleepers: workers of the function to NOOP when a job arrives,
        oldest first: every registered worker is here, or has the function
        in its L{Peer.unlisted}.  Entries may be stale (the worker is
        awake, or was NOOPed already) and are checked when popped.
    @ivar uniques: live jobs by coalescing key.
    @ivar maxQueue: per-priority queue limits, 0 for none.
    @ivar submitted: new jobs per priority since the function was created
        (and C{completed}, C{failed}, C{exceptions}: how jobs ended).
    """

    __slots__ = (
        "name",
        "ident",
        "queues",
        "pending",
        "running",
        "storing",
        "workers",
        "sleepers",
        "uniques",
        "maxQueue",
        "submitted",
        "completed",
        "failed",
        "exceptions",
    )

    def __init__(self, name: bytes, ident: int) -> None:
        self.name = name
        self.ident = ident
        self.queues = _NO_QUEUES
        self.pending = 0
        self.running = 0
        self.storing = 0
        self.workers = 0
        self.sleepers: Dict[Peer, None] = _NO_SLEEPERS
        self.uniques: Dict[bytes, Job] = _NO_UNIQUES
        self.maxQueue = _NO_LIMITS
        # Totals for metrics: new jobs per priority, and how jobs ended.
        self.submitted = [0, 0, 0]
        self.completed = 0
        self.failed = 0
        self.exceptions = 0

    @property
    def queued(self) -> List[int]:
        """
        Jobs waiting per priority, as C{prioritystatus} counts them: the
        entries of L{queues}, including jobs that were cancelled but not yet
        reaped, and the epoch jobs not yet due as NORMAL ones.
        """
        q = self.queues
        return [len(q[0]), len(q[1]) + self.pending, len(q[2])]

    @property
    def total(self) -> int:
        """
        Queued plus running jobs, as C{status} counts them.
        """
        q = self.queues
        return len(q[0]) + len(q[1]) + len(q[2]) + self.pending + self.running

    def hasRunnable(self) -> bool:
        """
        Whether a GRAB could find a job (reaped or not) in any queue.
        """
        q = self.queues
        return bool(q[0] or q[1] or q[2])

    def idle(self) -> bool:
        """
        Whether the function has no workers, no jobs and no limits: nothing
        but its name and counters.
        """
        return not (
            self.workers
            or self.running
            or self.storing
            or self.pending
            or self.hasRunnable()
            or self.maxQueue is not _NO_LIMITS
        )


#: Shared by every function without sleepers or keyed jobs; never written
#: (L{JobServer} gives a function a dictionary of its own first).
_NO_SLEEPERS: Dict["Peer", None] = {}
_NO_UNIQUES: Dict[bytes, "Job"] = {}


class Job:
    """
    One job, queued or running.

    @ivar clients: the foreground submissions attached to the job, one entry
        per submission (a connection that submitted twice appears twice);
        a job of many clients may keep some that left (L{_Clients}).
    @ivar background: a background submission holds the job: it runs even
        when every client has gone.
    @ivar persisted: the job was created by a background submission (the
        C{persisted} column of C{show jobs}).
    @ivar ignore: the job was cancelled or abandoned; queued, it is freed when
        a GRAB reaches it.
    @ivar numerator: the last WORK_STATUS numerator, as C{atoi} read it.
    @ivar queueKey: the job's record number in the persistent queue, if
        stored there.
    @ivar waiting: while the persistent queue stores the job, the
        connection whose submission is storing it (it waits for JOB_CREATED;
        others that coalesce meanwhile are in C{JobServer._alsoWaiting}).
    """

    __slots__ = (
        "handle",
        "function",
        "unique",
        "key",
        "data",
        "priority",
        "background",
        "persisted",
        "when",
        "reducer",
        "clients",
        "worker",
        "retries",
        "numerator",
        "denominator",
        "ignore",
        "timer",
        "queueKey",
        "waiting",
        "created",
        "started",
    )

    def __init__(
        self,
        handle: bytes,
        function: Function,
        unique: bytes,
        key: Optional[bytes],
        data: bytes,
        priority: int,
        background: bool,
        when: int,
        reducer: Optional[bytes],
        created: float = 0.0,
    ) -> None:
        self.handle = handle
        self.function = function
        self.unique = unique
        self.key = key
        self.data = data
        self.priority = priority
        self.background = background
        self.persisted = background
        self.when = when
        self.reducer = reducer
        # A shared empty tuple until a client attaches: one object fewer
        # per background job for the memory and the garbage collector.
        self.clients: List[Peer] = _NO_CLIENTS  # type: ignore[assignment]
        self.worker: Optional[Peer] = None
        self.retries = 0
        self.numerator = 0
        self.denominator = 0
        self.ignore = False
        self.timer: Optional[IDelayedCall] = None
        self.queueKey: Optional[int] = None
        self.waiting: Optional[Peer] = None
        self.created = created
        self.started = 0.0


#: A queued background job with no unique key, reducer, start time or
#: persistent record, and small data (L{MAX_RECORD_DATA}), as the server
#: keeps it from submission until a worker takes it or something asks for
#: it by handle (L{JobServer.lookup} turns it into a L{Job}), in
#: L{JobServer.records}: one bytes object, L{_RECORD}
#: (handle number, priority, created, the function's L{Function.ident}),
#: then the data (see L{packRecord}).  A L{Job} per queued
#: job made a background submission about twice as expensive, most of it
#: in collections walking the queue; a tuple of the same fields still made
#: five objects per job for PyPy's collector to copy and mark.  Bytes hold
#: no references: neither collector looks inside them.
QueuedRecord = bytes
#: What a queue holds.
Entry = Union[Job, QueuedRecord]

#: Data longer than this is not copied into a record: the job is a L{Job},
#: which keeps the bytes that arrived.
MAX_RECORD_DATA = 4096

_RECORD = struct.Struct("<IBdQ")
_RECORD_SIZE = _RECORD.size
_NUMBER = struct.Struct("<I")


def packRecord(number: int, function: int, priority: int, data: bytes, created: float) -> QueuedRecord:
    """
    A L{QueuedRecord} of these fields.

    @param function: the job's L{Function.ident}.
    """
    return _RECORD.pack(number, priority, created, function) + data


def unpackRecord(record: QueuedRecord) -> Tuple[int, int, int, bytes, float]:
    """
    The fields of a L{QueuedRecord}: C{(handle number, function ident,
    priority, data, created)}.
    """
    number, priority, created, function = _RECORD.unpack_from(record)
    return number, function, priority, record[_RECORD_SIZE:], created


def recordNumber(record: QueuedRecord) -> int:
    """
    The handle number of a L{QueuedRecord}.
    """
    return _NUMBER.unpack_from(record)[0]


class _Clients(List["Peer"]):
    """
    The clients of a job of many clients after one left: a list that keeps
    the lost connections (L{Peer.lost}) until they are half of it.

    @ivar departed: how many entries are lost connections.
    """

    __slots__ = ("departed",)

    departed: int


def _liveCount(clients: List["Peer"]) -> int:
    """
    How many of a job's C{clients} entries are connections still open.
    """
    if clients.__class__ is _Clients:
        return len(clients) - clients.departed  # type: ignore[attr-defined]
    return len(clients)


class Peer:
    """
    One connection's state, as a worker and as a client.

    @ivar write: sends bytes to the connection.
    @ivar fd: the number C{workers} shows for the connection.
    @ivar host: the peer's address as C{workers} shows it.
    @ivar clientId: from SET_CLIENT_ID, C{b"-"} until then.
    @ivar abilities: C{(function, timeout in seconds or 0)} in CAN_DO order,
        oldest first; duplicates are kept.
    @ivar newest: the newest position of each function in C{abilities},
        or C{None} until a GRAB needs it again.
    @ivar unlisted: the functions whose L{Function.sleepers} a wake-up took
        this worker off since its last PRE_SLEEP; the next PRE_SLEEP puts it
        back on them (so a PRE_SLEEP costs nothing per ability).
    @ivar sleeping: the worker sent PRE_SLEEP and no GRAB since.
    @ivar noopSent: a NOOP was sent since the last GRAB or PRE_SLEEP.
    @ivar held: the jobs this worker holds, in the order it grabbed them.
    @ivar attached: the jobs this connection waits on as a client, with the
        number of its submissions attached to each.
    @ivar exceptions: the C{exceptions} option is on.
    @ivar lost: the connection is gone (L{lose}).
    """

    __slots__ = (
        "write",
        "fd",
        "host",
        "clientId",
        "abilities",
        "newest",
        "unlisted",
        "sleeping",
        "noopSent",
        "held",
        "attached",
        "exceptions",
        "lost",
        "_replies",
        "_out",
        "_collected",
        "lastException",
        "__weakref__",
    )

    def __init__(
        self, write: Callable[[bytes], object], fd: int, host: str, exceptions: bool = False
    ) -> None:
        self.write = write
        self.fd = fd
        self.host = host
        self.clientId = b"-"
        self.abilities: List[Tuple[Function, float]] = []
        # The newest position of each function in abilities, made when a
        # GRAB needs it (L{JobServer._newestFirst}); None when stale.
        self.newest: Optional[Dict[Function, int]] = None
        self.unlisted: Dict[Function, None] = {}
        self.sleeping = False
        self.noopSent = False
        self.held: Dict[Job, None] = {}
        self.attached: Dict[Job, int] = {}
        self.exceptions = exceptions
        self.lost = False
        self._replies: Optional[Deque[Union[bytes, Job]]] = None
        self._out = write
        self._collected: Optional[List[bytes]] = None
        # The handle of the job this worker last ended with WORK_EXCEPTION.
        self.lastException: Optional[bytes] = None

    # Writes go to C{write}: the transport; a list while a batch collects
    # them (L{startBatch}); or L{_buffer} while a JOB_CREATED waits for the
    # persistent queue (L{hold}).

    def startBatch(self) -> None:
        """
        Collect what is written until L{endBatch}, then write it at once.
        """
        if self._collected is None:
            self._collected = []
            if self._replies is None:
                self.write = self._collected.append

    def endBatch(self) -> None:
        """
        Write what was collected since L{startBatch}.
        """
        collected = self._collected
        if collected is None:
            return
        self._collected = None
        if self._replies is None:
            self.write = self._out
        if collected:
            self._out(b"".join(collected) if len(collected) > 1 else collected[0])

    def _send(self, data: bytes) -> None:
        if self._collected is not None:
            self._collected.append(data)
        else:
            self._out(data)

    def hold(self, job: Job) -> None:
        """
        Reserve the next reply for C{job}'s JOB_CREATED: everything written
        to this connection after now waits behind it until the persistent
        queue has stored C{job} (L{release}), so replies keep their order.
        """
        if self._replies is None:
            self._replies = deque()
            self.write = self._buffer
        self._replies.append(job)

    def resolve(self, job: Job, data: bytes) -> None:
        """
        Answer the first reply held for C{job} with C{data} instead of
        JOB_CREATED (the queue could not store it).
        """
        replies = self._replies
        if replies is not None and job in replies:
            replies[replies.index(job)] = data

    def release(self) -> None:
        """
        Send the held replies that are ready, in order and in one write: up
        to the first job the persistent queue is still storing.
        """
        replies = self._replies
        if replies is None:
            return
        ready: List[bytes] = []
        while replies:
            head = replies[0]
            if type(head) is bytes:
                ready.append(head)
            elif head.waiting is None:  # type: ignore[union-attr]
                ready.append(encodeRaw(_JOB_CREATED, head.handle))  # type: ignore[union-attr]
            else:
                break
            replies.popleft()
        if ready:
            self._send(b"".join(ready) if len(ready) > 1 else ready[0])
        if not replies:
            self._replies = None
            self.write = self._collected.append if self._collected is not None else self._out

    def _buffer(self, data: bytes) -> None:
        assert self._replies is not None
        self._replies.append(data)

    def lose(self) -> None:
        """
        The connection is gone: whatever is written to it from now on is
        dropped.
        """
        self.lost = True
        self.write = self._out = _discard
        self._replies = self._collected = None


def _discard(data: bytes) -> None:
    """
    Drop bytes written to a lost connection.
    """


@implementer(IJobServer)
class JobServer:
    """
    All functions, jobs and connections of one job server.

    @ivar functions: every known function by name, in order of first use.
        A function is known while it has workers, jobs or queue limits, and
        for a while once it has none (see L{idleFunctions}).
    @ivar idleFunctions: how many functions without workers, jobs or
        limits are kept (and listed by C{status}); beyond that, the one idle
        for longest is forgotten.  gearmand keeps every function forever.
    @ivar jobs: live L{Job}s by handle.
    @ivar records: queued jobs kept as
        L{QueuedRecord <gearman_tw.server.jobs.QueuedRecord>}s, by handle
        number; L{lookup} finds a job of either kind, L{jobCount} counts
        both.
    @ivar peers: every open connection, oldest first.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        handlePrefix: Optional[bytes] = None,
        jobRetries: int = 0,
        roundRobin: bool = False,
        workerWakeup: int = 0,
        exceptions: bool = False,
        queue: Optional[IPersistentQueue] = None,
        idleFunctions: int = IDLE_FUNCTIONS,
    ) -> None:
        """
        @param reactor: the clock for CAN_DO_TIMEOUT and epoch jobs.
        @param handlePrefix: the job handle prefix; gearmand's C{H:<host>}
            by default.
        @param jobRetries: fail a job to its clients after this many
            attempts; 0 for no limit.
        @param roundRobin: rotate each worker's functions after a GRAB.
        @param workerWakeup: NOOP at most this many sleeping workers per new
            job; 0 for all of them.
        @param exceptions: turn the C{exceptions} option on for every
            connection.
        @param queue: the persistent queue for background jobs; none (as
            gearmand's builtin queue) by default.
        @param idleFunctions: see L{idleFunctions}.
        """
        self.reactor = reactor
        prefix = defaultHandlePrefix() if handlePrefix is None else handlePrefix
        self.handlePrefix = prefix + b":"
        self._now = reactor.seconds
        # JOB_CREATED's header and the handle prefix, for handle numbers of
        # as many digits as those in [_createdFrom, _createdUntil).
        self._createdHead = b""
        self._createdFrom = self._createdUntil = 0
        self.jobRetries = jobRetries
        self.roundRobin = roundRobin
        self.workerWakeup = workerWakeup
        self.exceptions = exceptions
        self.functions: Dict[bytes, Function] = {}
        # Functions by L{Function.ident}, which is never reused: those that
        # queued a job since they were last idle (L{_newQueue}), as only
        # they can have L{QueuedRecord}s.
        self._functionsByIdent: Dict[int, Function] = {}
        self._lastFunctionIdent = 0
        # Functions whose lowercased name differs from their name, by that
        # lowercased name, for L{dropFunction}.
        self._folded: Dict[bytes, List[Function]] = {}
        self.idleFunctions = idleFunctions
        # Functions that became idle (L{Function.idle}), longest idle first;
        # entries may be stale (the function got work since) and are
        # checked when met.
        self._idle: Dict[Function, None] = {}
        # Live jobs: L{Job}s by handle, and queued jobs kept as
        # L{QueuedRecord}s by handle number (sequential integers: a cheap
        # key).  L{lookup} gives a L{Job} for either.
        self.jobs: Dict[bytes, Job] = {}
        self.records: Dict[int, QueuedRecord] = {}
        self.peers: Dict[Peer, None] = {}
        self._lastHandle = 0
        # The handle counter came round past 2**32 - 1 (L{_unusedNumber}).
        self._wrapped = False
        # Epoch jobs not due yet: (when, sequence number, job), a heap.
        self._pending: List[Tuple[int, int, Job]] = []
        self._lastHold = 0
        # Live jobs by unique key (not C{-}) across functions, oldest first,
        # for GET_STATUS_UNIQUE (a dict as an ordered set: forgetting one is
        # O(1) however many share a key).
        self._uniqueJobs: Dict[bytes, Dict[Job, None]] = {}
        # Every function with something in its queues (and perhaps some
        # whose queues emptied since: they are dropped when met), so that a
        # GRAB from a worker of many functions looks only at those with work.
        self._runnable: Dict[Function, None] = {}
        self._pendingTimer: Optional[IDelayedCall] = None
        self._idleWaiters: List[Callable[[], object]] = []
        self.queue = queue
        self._persistent = queue is not None and getattr(queue, "persistent", True)
        self.stats = ServerStats()
        # Stores and dones made during one reactor turn, sent as one batch:
        # new jobs, and live ones a background submission joined.
        self._toStore: List[Job] = []
        self._toStoreJoined: List[Job] = []
        self._toForget: List[int] = []
        # Submissions that joined a job while it was being stored, besides
        # the one storing it (Job.waiting).
        self._alsoWaiting: Dict[Job, List[Peer]] = {}
        # The last record number given to a stored job.
        self._lastKey = 0

    # Connections

    def peerConnected(self, peer: Peer) -> None:
        """
        Register a new connection.
        """
        self.peers[peer] = None
        self.stats.connections += 1

    def peerLost(self, peer: Peer) -> None:
        """
        Forget a closed connection: requeue the jobs it held as a worker and
        detach it from the jobs it waited on as a client (3.7, 3.8).
        """
        self.peers.pop(peer, None)
        # As RESET_ABILITIES: unregistered before its jobs are requeued, so
        # they wake other workers, and if it was woken but never grabbed,
        # someone else is woken.
        peer.sleeping = False
        self.resetAbilities(peer)
        peer.noopSent = False
        peer.lose()
        for job, count in peer.attached.items():
            # A job of many clients keeps the lost ones (they are written
            # nothing) until they are half of its list, so that thousands
            # of clients of one job leaving one by one cost O(1) each.
            clients = job.clients
            gone = count + (clients.departed if clients.__class__ is _Clients else 0)  # type: ignore[attr-defined]
            if len(clients) <= _FEW_CLIENTS or 2 * gone >= len(clients):
                clients = job.clients = [c for c in clients if not c.lost]
                if not clients and not job.background:
                    self._abandon(job)
            else:
                if clients.__class__ is not _Clients:
                    clients = job.clients = _Clients(clients)
                clients.departed = gone  # type: ignore[attr-defined]
        peer.attached = {}
        self._checkIdle()

    # Functions

    def function(self, name: bytes) -> Function:
        """
        The function called C{name}, created on first use.
        """
        function = self.functions.get(name)
        if function is None:
            self._lastFunctionIdent += 1
            function = self.functions[name] = Function(name, self._lastFunctionIdent)
            folded = name.lower()
            if folded != name:
                self._folded.setdefault(folded, []).append(function)
        return function

    def createFunction(self, name: bytes) -> Function:
        """
        The function called C{name}, created if needed, for the C{create
        function} admin command: like a function whose last worker just
        left, it is kept for a while without workers or jobs
        (L{idleFunctions}).
        """
        function = self.function(name)
        self._retire(function)
        return function

    def _retire(self, function: Function) -> None:
        """
        Note that C{function} may have become idle: if it has, it gives up
        the memory it no longer needs and is forgotten once more than
        L{idleFunctions} functions have been idle for longer.
        """
        if not function.idle() or self.functions.get(function.name) is not function:
            return
        function.queues = _NO_QUEUES
        function.sleepers = _NO_SLEEPERS
        function.uniques = _NO_UNIQUES
        self._functionsByIdent.pop(function.ident, None)
        self._runnable.pop(function, None)
        idle = self._idle
        idle.pop(function, None)
        idle[function] = None
        while len(idle) > self.idleFunctions:
            oldest = next(iter(idle))
            del idle[oldest]
            if oldest.idle():
                self._forgetFunction(oldest)

    def _forgetFunction(self, function: Function) -> None:
        """
        Forget a function that has no workers and no jobs.
        """
        del self.functions[function.name]
        self._functionsByIdent.pop(function.ident, None)
        self._runnable.pop(function, None)
        self._idle.pop(function, None)
        folded = function.name.lower()
        if folded != function.name:
            others = self._folded[folded]
            others.remove(function)
            if not others:
                del self._folded[folded]

    def dropFunction(self, name: bytes) -> Optional[bool]:
        """
        Forget a function with no workers and no jobs.

        @param name: compared case-insensitively, as gearmand does; of
            several functions that match, the oldest counts.
        @return: C{True} if dropped, C{False} if it still has workers or
            jobs, C{None} if there is no such function.
        """
        folded = name.lower()
        matches = list(self._folded.get(folded, ()))
        function = self.functions.get(folded)
        if function is not None:
            matches.append(function)
        if not matches:
            return None
        function = min(matches, key=lambda match: match.ident)
        if function.workers or function.total or function.storing:
            return False
        self._forgetFunction(function)
        return True

    def setMaxQueue(self, name: bytes, limits: Tuple[int, int, int]) -> None:
        """
        Set a function's per-priority queue limits; unknown functions are
        ignored, as in gearmand.  A function with limits is kept even
        without workers or jobs.
        """
        function = self.functions.get(name)
        if function is not None:
            if any(limits):
                function.maxQueue = list(limits)
                self._idle.pop(function, None)
            else:
                function.maxQueue = _NO_LIMITS
                self._retire(function)

    # Workers

    def canDo(self, peer: Peer, name: bytes, timeout: float = 0) -> None:
        """
        Register C{peer} as a worker for C{name} (CAN_DO, CAN_DO_TIMEOUT).

        @param timeout: seconds a job may run before it is requeued; 0 for
            no limit.
        """
        function = self.function(name)
        peer.abilities.append((function, timeout))
        peer.newest = None
        if not function.workers:
            self._idle.pop(function, None)
        function.workers += 1
        sleepers = function.sleepers
        if sleepers is _NO_SLEEPERS:
            sleepers = function.sleepers = {}
        sleepers[peer] = None

    def cantDo(self, peer: Peer, name: bytes) -> None:
        """
        Drop every registration of C{name} by C{peer} and requeue the jobs of
        that function it holds (CANT_DO).
        """
        kept = []
        dropped = []
        for entry in peer.abilities:
            function = entry[0]
            if function.name == name:
                function.workers -= 1
                function.sleepers.pop(peer, None)
                dropped.append(entry)
            else:
                kept.append(entry)
        if not dropped:
            return
        peer.abilities = kept
        peer.newest = None
        function = dropped[0][0]
        peer.unlisted.pop(function, None)
        held = [job for job in peer.held if job.function.name == name]
        if held:
            self._requeueHeld(peer, held)
        if peer.noopSent:
            # It may have been woken for this function's job.
            self._rewake(dropped)
        self._retire(function)

    def resetAbilities(self, peer: Peer) -> None:
        """
        Drop all of C{peer}'s registrations and requeue its jobs
        (RESET_ABILITIES).
        """
        abilities, peer.abilities = peer.abilities, []
        peer.newest = None
        peer.unlisted = {}
        for function, _ in abilities:
            function.workers -= 1
            function.sleepers.pop(peer, None)
        if peer.held:
            self._requeueHeld(peer, list(peer.held))
        if peer.noopSent:
            # It may have been woken for one of these functions' jobs.
            self._rewake(abilities)
        for function, _ in abilities:
            if not function.workers:
                self._retire(function)

    def preSleep(self, peer: Peer) -> None:
        """
        C{peer} is going to sleep: NOOP it at once if a job is waiting for it,
        else when one arrives (3.5).
        """
        peer.sleeping = True
        # Clearing the flag here too spares a worker that sends PRE_SLEEP
        # twice without a GRAB from never being woken again (3.5).
        peer.noopSent = False
        abilities = peer.abilities
        for index in self._newestFirst(peer):
            if self._livePriority(abilities[index][0]) is not None:
                peer.noopSent = True
                peer.write(_NOOP)
                return
        # The worker is among the sleepers of each of its functions (since
        # its CAN_DO) but those a wake-up took it off since it last slept.
        unlisted = peer.unlisted
        if unlisted:
            for function in unlisted:
                sleepers = function.sleepers
                if sleepers is _NO_SLEEPERS:
                    sleepers = function.sleepers = {}
                sleepers[peer] = None
            unlisted.clear()

    def _livePriority(self, function: Function) -> Optional[int]:
        """
        The priority of C{function}'s next live queued job, or C{None}:
        the cancelled and abandoned jobs at the heads of its queues are
        freed on the way, as gearmand does on PRE_SLEEP and GRAB.
        """
        records = self.records
        for priority, queue in enumerate(function.queues):
            while queue:
                head = queue[0]
                if head.__class__ is bytes:
                    if records.get(recordNumber(head)) is head:
                        return priority
                    # A lookup made it a Job.
                    job = self._madeJob(head)
                    if job is None:
                        queue.popleft()
                        continue
                else:
                    job = head  # type: ignore[assignment]
                # mypy cannot tell C{head} is a Job in the else branch (a
                # subclass of bytes is not C{bytes}): C{job} is a Job here.
                if not job.ignore:  # type: ignore[union-attr]
                    return priority
                queue.popleft()
                self._free(job)  # type: ignore[arg-type]
        return None

    def _newestFirst(self, peer: Peer) -> Sequence[int]:
        """
        The positions in C{peer.abilities} a GRAB or PRE_SLEEP looks at,
        newest registration first: all of them for a worker of a few
        functions; for one of many, only those whose function has something
        queued (found through L{_runnable}, so that the abilities without
        work cost nothing).
        """
        abilities = peer.abilities
        count = len(abilities)
        runnable = self._runnable
        if count <= _FEW_ABILITIES or len(runnable) >= count:
            return range(count - 1, -1, -1)
        newest = peer.newest
        if newest is None:
            newest = peer.newest = {function: index for index, (function, _) in enumerate(abilities)}
        positions = []
        for function in list(runnable):
            if not function.hasRunnable():
                del runnable[function]
                continue
            position = newest.get(function)
            if position is not None:
                positions.append(position)
        positions.sort(reverse=True)
        return positions

    def grab(self, peer: Peer, ptype: int) -> None:
        """
        Hand C{peer} the next job it can do, or NO_JOB (GRAB_JOB,
        GRAB_JOB_UNIQ, GRAB_JOB_ALL).

        Functions are tried newest registration first, and within one
        function HIGH, NORMAL then LOW (3.4).
        """
        woken = peer.noopSent
        peer.sleeping = False
        peer.noopSent = False
        abilities = peer.abilities
        count = len(abilities)
        order = range(count - 1, -1, -1) if count <= _FEW_ABILITIES else self._newestFirst(peer)
        for index in order:
            function, timeout = abilities[index]
            job = self._take(function)
            if job is None:
                continue
            if woken:
                # It may have been woken for another function's job: make
                # sure someone else comes for those.
                self._rewake(
                    [abilities[i] for i in sorted(self._newestFirst(peer)) if abilities[i][0] is not function]
                )
            if self.roundRobin:
                del abilities[index]
                abilities.insert(0, (function, timeout))
                peer.newest = None
            job.worker = peer
            peer.held[job] = None
            function.running += 1
            now = job.started = self.reactor.seconds()
            self.stats.wait.observe(now - job.created)
            if timeout:
                job.timer = self.reactor.callLater(timeout, self._timedOut, job)
            if ptype == PacketType.GRAB_JOB:
                args: Tuple[bytes, ...] = (job.handle, function.name, job.data)
                atype = PacketType.JOB_ASSIGN
            elif ptype == PacketType.GRAB_JOB_ALL and job.reducer is not None:
                args = (job.handle, function.name, job.unique, job.reducer, job.data)
                atype = PacketType.JOB_ASSIGN_ALL
            else:
                args = (job.handle, function.name, job.unique, job.data)
                atype = PacketType.JOB_ASSIGN_UNIQ
            peer.write(encode(atype, *args))
            return
        peer.write(_NO_JOB)

    def _take(self, function: Function) -> Optional[Job]:
        """
        Pop the next live job of C{function}, freeing cancelled ones on the way.
        """
        priority = self._livePriority(function)
        if priority is None:
            return None
        job = function.queues[priority].popleft()
        if job.__class__ is bytes:
            if self.records.pop(recordNumber(job), None) is job:
                return self._makeJob(job)
            return self._madeJob(job)
        return job  # type: ignore[return-value]

    def lookup(self, handle: bytes) -> Optional[Job]:
        """
        The live job with C{handle}, if any.  A job kept as a
        L{QueuedRecord <gearman_tw.server.jobs.QueuedRecord>} becomes a L{Job} in L{jobs} (its queue keeps the
        record, which L{_madeJob} resolves).
        """
        job = self.jobs.get(handle)
        if job is None:
            number = self._recordNumber(handle)
            if number is not None:
                job = self._makeJob(self.records.pop(number))
        return job

    def jobCount(self) -> int:
        """
        How many jobs are live, queued or running.
        """
        return len(self.jobs) + len(self.records)

    def handleNumber(self, handle: bytes) -> Optional[int]:
        """
        The number of one of our handles (prefix and digits), or C{None}.
        """
        prefix = self.handlePrefix
        if handle.startswith(prefix):
            digits = handle[len(prefix) :]
            # At most 10 digits: handle numbers are 32-bit (and int() refuses
            # thousands of digits).
            if len(digits) <= 10 and digits.isdigit() and digits[0] != 0x30:
                return int(digits)
        return None

    def _recordNumber(self, handle: bytes) -> Optional[int]:
        """
        The number of the queued record with C{handle}, if there is one.
        """
        if self.records:
            number = self.handleNumber(handle)
            if number is not None and number in self.records:
                return number
        return None

    def handleOf(self, number: int) -> bytes:
        """
        Our handle with C{number}.
        """
        return b"%s%d" % (self.handlePrefix, number)

    def _makeJob(self, record: QueuedRecord) -> Job:
        """
        The L{Job} of a queued record taken out of L{records}.
        """
        number, ident, priority, data, created = unpackRecord(record)
        handle = self.handleOf(number)
        # A function with queued jobs cannot be dropped (L{dropFunction}).
        function = self._functionsByIdent[ident]
        job = self.jobs[handle] = Job(handle, function, b"", None, data, priority, True, 0, None, created)
        return job

    def _madeJob(self, record: QueuedRecord) -> Optional[Job]:
        """
        The L{Job} a lookup made of a queued record, if it is still live.
        """
        return self.jobs.get(self.handleOf(recordNumber(record)))

    # Work results

    def _held(self, peer: Peer, handle: bytes) -> Optional[Job]:
        job = self.jobs.get(handle)
        if job is None or job.worker is not peer:
            return None
        return job

    def workData(self, peer: Peer, ptype: int, handle: bytes, payload: bytes) -> None:
        """
        Forward WORK_DATA or WORK_WARNING to the job's clients.

        @param payload: the packet's payload, forwarded byte for byte.
        """
        job = self._held(peer, handle)
        if job is None:
            peer.write(_ERR_NOT_FOUND_DATA)
            return
        self._forward(job, ptype, payload)

    def workStatus(
        self, peer: Peer, handle: bytes, numerator: bytes, denominator: bytes, payload: bytes
    ) -> None:
        """
        Store a job's progress and forward WORK_STATUS as sent.

        As in gearmand, each number is stored as C{(uint32_t)atoi}, and a
        denominator longer than 11 bytes (up to a NUL) leaves the stored
        denominator as it was and the packet unforwarded, without a reply.
        """
        job = self._held(peer, handle)
        if job is None:
            peer.write(_ERR_NOT_FOUND_RESULT)
            return
        job.numerator = _uint32(numerator)
        if len(denominator) > _MAX_DENOMINATOR:
            denominator = denominator.split(b"\0", 1)[0]
            if len(denominator) > _MAX_DENOMINATOR:
                return
        job.denominator = _uint32(denominator[:_MAX_DENOMINATOR - 1])
        self._forward(job, PacketType.WORK_STATUS, payload)

    def workComplete(self, peer: Peer, handle: bytes, payload: bytes) -> None:
        """
        Forward WORK_COMPLETE and end the job.
        """
        job = self._held(peer, handle)
        if job is None:
            peer.write(_ERR_NOT_FOUND_RESULT)
            return
        self._forward(job, PacketType.WORK_COMPLETE, payload)
        job.function.completed += 1
        self._finish(job)

    def workFail(self, peer: Peer, handle: bytes, payload: Optional[bytes] = None) -> None:
        """
        Forward WORK_FAIL and end the job.

        @param payload: the packet's payload, forwarded as sent; the bare
            handle by default.
        """
        if len(handle) > MAX_HANDLE:
            peer.write(_ERR_HANDLE_TOO_LARGE)
            return
        job = self._held(peer, handle)
        if job is None:
            if handle == peer.lastException:
                # Perl's Gearman::Worker follows WORK_EXCEPTION with
                # WORK_FAIL; gearmand's JOB_NOT_FOUND for it makes that
                # worker die.  Accept it quietly.
                peer.lastException = None
                return
            peer.write(_ERR_NOT_FOUND_RESULT)
            return
        if payload is None or payload == handle:
            self._failToClients(job)
        else:
            self._forward(job, PacketType.WORK_FAIL, payload)
        job.function.failed += 1
        self._finish(job)

    def workException(self, peer: Peer, handle: bytes, payload: bytes) -> None:
        """
        End the job with WORK_EXCEPTION to clients that asked for exceptions
        and WORK_FAIL to the others (3.6).
        """
        job = self._held(peer, handle)
        if job is None:
            peer.write(_ERR_NOT_FOUND_EXCEPTION)
            return
        if job.clients:
            exception = encodeRaw(PacketType.WORK_EXCEPTION, payload)
            fail = encode(PacketType.WORK_FAIL, job.handle)
            for client in job.clients:
                client.write(exception if client.exceptions else fail)
        job.function.exceptions += 1
        peer.lastException = handle
        self._finish(job)

    def _forward(self, job: Job, ptype: int, payload: bytes) -> None:
        clients = job.clients
        if clients:
            packet = encodeRaw(ptype, payload)
            for client in clients:
                client.write(packet)

    def _failToClients(self, job: Job) -> None:
        # gearmand 1.1.20 adds a NUL after the handle when it turns an
        # exception into WORK_FAIL; we always send the bare handle (3.6).
        if job.clients:
            packet = encode(PacketType.WORK_FAIL, job.handle)
            for client in job.clients:
                client.write(packet)

    # Clients

    def submit(
        self,
        peer: Peer,
        name: bytes,
        unique: bytes,
        data: bytes,
        priority: int = NORMAL,
        background: bool = False,
        when: int = 0,
        reducer: Optional[bytes] = None,
    ) -> None:
        """
        Create a job, or attach to the live job it coalesces with (3.3), and
        answer C{peer} with JOB_CREATED or ERROR.

        @param when: epoch seconds before which the job must not run; 0 to
            run at once.
        @param reducer: the reducer of a SUBMIT_REDUCE_JOB.
        """
        if len(unique) > MAX_UNIQUE:
            peer.write(_ERR_UNIQUE_TOO_LARGE)
            return
        function = self.functions.get(name) or self.function(name)
        key: Optional[bytes] = None
        if unique:
            if unique == b"-":
                if data:
                    key = b"-\0" + data
            else:
                key = unique
            if key is not None:
                job = function.uniques.get(key)
                if job is not None:
                    self._join(peer, job, background)
                    return
        limit = function.maxQueue[priority]
        if limit and function.total + function.storing >= limit:
            peer.write(_ERR_QUEUE_FULL)
            return
        if (
            background
            and not unique
            and not when
            and reducer is None
            and not self._persistent
            and len(data) <= MAX_RECORD_DATA
        ):
            peer.write(self._queueRecord(function, data, priority))
            return
        if background and self._persistent and reducer is None:
            job = self._create(function, unique, key, data, priority, True, when, None, False)
            self._store(job, peer, True)
            return
        job = self._create(function, unique, key, data, priority, background, when, reducer)
        if not background:
            self._attach(peer, job)
        peer.write(encodeRaw(_JOB_CREATED, job.handle))

    def _queueRecord(self, function: Function, data: bytes, priority: int) -> bytes:
        """
        Queue a new background job as a
        L{QueuedRecord <gearman_tw.server.jobs.QueuedRecord>}.

        @return: its JOB_CREATED packet.
        """
        handleNumber = self._nextNumber()
        if not self._createdFrom <= handleNumber < self._createdUntil:
            self._newCreatedHead(handleNumber)
        record = packRecord(handleNumber, function.ident, priority, data, self._now())
        function.submitted[priority] += 1
        self.records[handleNumber] = record
        # L{_enqueue} inlined, as in L{_create}: every plain background
        # submission comes this way.
        queue = function.queues[priority]
        if not queue:
            if queue.__class__ is not deque:
                queue = self._newQueue(function, priority)
            self._runnable[function] = None
        queue.append(record)
        if function.sleepers:
            self._wake(function)
        return self._createdHead + b"%d" % handleNumber

    def _nextNumber(self) -> int:
        """
        The number of the next job's handle.
        """
        last = self._lastHandle
        if last >= 0xFFFFFFFF or self._wrapped:
            return self._unusedNumber()
        self._lastHandle = last + 1
        return last + 1

    def _unusedNumber(self) -> int:
        """
        The next handle number once the 32-bit counter has come round: the
        numbers of jobs still live are skipped (gearmand would hand out a
        live job's handle again).
        """
        self._wrapped = True
        number = self._lastHandle
        records, jobs = self.records, self.jobs
        # Bounded: fewer than 2**32 jobs can be live.
        while True:
            number = number % 0xFFFFFFFF + 1
            if number not in records and self.handleOf(number) not in jobs:
                self._lastHandle = number
                return number

    def _newCreatedHead(self, handleNumber: int) -> None:
        """
        Make L{_createdHead} for handle numbers with as many digits as
        C{handleNumber}.
        """
        digits = len(b"%d" % (handleNumber,))
        self._createdHead = encodeRaw(_JOB_CREATED, self.handlePrefix + b"0" * digits)[:12] + self.handlePrefix
        self._createdFrom = 10 ** (digits - 1)
        self._createdUntil = 10**digits

    def _join(self, peer: Peer, job: Job, background: bool) -> None:
        """
        A submission coalesces with the live C{job}: attach it, or make the
        job background, and answer JOB_CREATED with the job's handle.
        """
        if background:
            job.background = True
            if self._persistent and job.queueKey is None and job.reducer is None:
                # gearmand leaves such a job unstored; we keep it.
                job.persisted = True
                self._store(job, peer, False)
                return
        else:
            self._attach(peer, job)
        if job.waiting is not None:
            self._alsoWaiting.setdefault(job, []).append(peer)
            peer.hold(job)
        else:
            peer.write(encodeRaw(_JOB_CREATED, job.handle))

    def _create(
        self,
        function: Function,
        unique: bytes,
        key: Optional[bytes],
        data: bytes,
        priority: int,
        background: bool,
        when: int,
        reducer: Optional[bytes],
        runnable: bool = True,
    ) -> Job:
        """
        Make a new job with the next handle; queue it unless it must wait
        for the persistent queue first.
        """
        handle = self.handleOf(self._nextNumber())
        now = self.reactor.seconds()
        job = Job(handle, function, unique, key, data, priority, background, when, reducer, now)
        function.submitted[priority] += 1
        self.jobs[handle] = job
        if key is not None:
            uniques = function.uniques
            if uniques is _NO_UNIQUES:
                uniques = function.uniques = {}
            uniques[key] = job
            if unique != b"-":
                jobs = self._uniqueJobs.get(unique)
                if jobs is None:
                    self._uniqueJobs[unique] = {job: None}
                else:
                    jobs[job] = None
        if runnable:
            # L{_queue} inlined: this is every submission's path, and the
            # two calls it saves are ~4% of a background submission.
            if when and when > now:
                self._hold(job)
            else:
                queue = function.queues[priority]
                if not queue:
                    if queue.__class__ is not deque:
                        queue = self._newQueue(function, priority)
                    self._runnable[function] = None
                queue.append(job)
                if function.sleepers:
                    self._wake(function)
        return job

    def _queue(self, job: Job) -> None:
        if job.when and job.when > self.reactor.seconds():
            self._hold(job)
        else:
            self._enqueue(job)

    # Persistence (reference section 6)

    def _store(self, job: Job, peer: Peer, new: bool) -> None:
        """
        Store a background job, answering C{peer} (and any submission that
        joins it meanwhile) once the queue has it; a C{new} job is queued
        only then.
        """
        self._lastKey += 1
        job.queueKey = self._lastKey
        job.waiting = peer
        peer.hold(job)
        if not self.storing:
            self.reactor.callLater(0, self.flushStores)
        if new:
            job.function.storing += 1
            self._toStore.append(job)
        else:
            self._toStoreJoined.append(job)

    @property
    def storing(self) -> bool:
        """
        Jobs wait to be sent to the persistent queue (L{flushStores}).
        """
        return bool(self._toStore or self._toStoreJoined)

    def flushStores(self) -> None:
        """
        Send the jobs waiting to be stored to the persistent queue as one
        batch; done at the end of each read and, for other submissions, of
        the reactor turn.
        """
        if not self.storing:
            return
        assert self.queue is not None
        new, joined = self._toStore, self._toStoreJoined
        self._toStore, self._toStoreJoined = [], []
        records = [
            QueuedJob(job.function.name, job.queueKey, job.unique, job.data, job.priority, job.when)  # type: ignore[arg-type]
            for batch in (new, joined)
            for job in batch
        ]
        began = self.reactor.seconds()
        d = self.queue.addMany(records)
        d.addCallbacks(self._stored, self._storeFailed, callbackArgs=(new, joined, began), errbackArgs=(new, joined))

    def _waitingFor(self, jobs: List[Job]) -> Dict[Peer, None]:
        """
        Every connection waiting for one of C{jobs}; the jobs are marked
        stored (or no longer being stored).
        """
        peers: Dict[Peer, None] = {}
        alsoWaiting = self._alsoWaiting
        for job in jobs:
            peers[job.waiting] = None  # type: ignore[index]
            job.waiting = None
            if alsoWaiting:
                others = alsoWaiting.pop(job, None)
                if others is not None:
                    peers.update(dict.fromkeys(others))
        return peers

    def _stored(self, _: object, new: List[Job], joined: List[Job], began: float) -> None:
        self.stats.queueLatency.observe(self.reactor.seconds() - began)
        peers = self._waitingFor(new + joined)
        jobs = self.jobs
        for job in new:
            job.function.storing -= 1
            self._queue(job)
            if job.ignore or job.handle not in jobs:
                # Cancelled while being stored.
                self._unstore(job)
        for job in joined:
            if job.ignore or job.handle not in jobs:
                self._unstore(job)
        for peer in peers:
            peer.release()

    def _storeFailed(self, failure: object, new: List[Job], joined: List[Job]) -> None:
        self.stats.queueErrors += 1
        value = getattr(failure, "value", None)
        message = str(value if value is not None else "queue error").encode("utf-8", "replace")
        self.log.error(
            "Persistent queue could not store {count} jobs: {error}",
            count=len(new) + len(joined),
            error=message.decode("utf-8"),
        )
        error = _error(b"QUEUE_ERROR", message)
        for job in new + joined:
            job.queueKey = None
            for peer in [job.waiting] + self._alsoWaiting.get(job, []):
                peer.resolve(job, error)  # type: ignore[union-attr]
        peers = self._waitingFor(new + joined)
        for job in new:
            job.function.storing -= 1
            self._detachClients(job)
            self._free(job)
            self._retire(job.function)
        for peer in peers:
            peer.release()

    def _unstore(self, job: Job) -> None:
        key = job.queueKey
        if key is None or self.queue is None:
            return
        job.queueKey = None
        self._forget(key)

    def _forget(self, key: int) -> None:
        if not self._toForget:
            self.reactor.callLater(0, self._flushForgets)
        self._toForget.append(key)

    def _flushForgets(self) -> None:
        assert self.queue is not None
        batch, self._toForget = self._toForget, []
        began = self.reactor.seconds()
        d = self.queue.doneMany(batch)
        d.addCallbacks(
            lambda _: self.stats.queueLatency.observe(self.reactor.seconds() - began),
            lambda f: self.log.failure("Persistent queue could not forget {count} jobs", f, count=len(batch)),
        )

    def restore(self, record: QueuedJob) -> Job:
        """
        Rebuild a background job replayed from the persistent queue; it
        gets a new handle, as in gearmand, and is not stored again.
        """
        function = self.function(record.function)
        self._lastKey = max(self._lastKey, record.key)
        key: Optional[bytes] = None
        if record.unique:
            key = b"-\0" + record.data if record.unique == b"-" else record.unique
            existing = function.uniques.get(key)
            if existing is not None:
                existing.background = True
                if existing.queueKey is None:
                    existing.queueKey = record.key
                elif self.queue is not None:
                    # Two records of one job: keep one.
                    self._forget(record.key)
                return existing
        job = self._create(function, record.unique, key, record.data, record.priority, True, record.when, None, False)
        job.queueKey = record.key
        self._queue(job)
        return job

    def _attach(self, peer: Peer, job: Job) -> None:
        if job.clients:
            job.clients.append(peer)
        else:
            job.clients = [peer]
        attached = peer.attached
        attached[job] = attached.get(job, 0) + 1

    def _enqueue(self, job: Job) -> None:
        """
        Put a runnable job at the tail of its queue and wake its sleepers.
        """
        function = job.function
        queue = function.queues[job.priority]
        if not queue:
            if queue.__class__ is not deque:
                queue = self._newQueue(function, job.priority)
            self._runnable[function] = None
        queue.append(job)
        self._wake(function)

    def _newQueue(self, function: Function, priority: int) -> Deque[Entry]:
        """
        A deque for C{function}'s jobs at C{priority}, where it has none
        (L{_NO_QUEUE}).  The function is listed by its ident until it is
        idle again, for the
        L{QueuedRecord <gearman_tw.server.jobs.QueuedRecord>}s it may queue.
        """
        self._functionsByIdent[function.ident] = function
        queues = function.queues
        if queues is _NO_QUEUES:
            # An idle function getting work.
            self._idle.pop(function, None)
            queues = function.queues = [_NO_QUEUE, _NO_QUEUE, _NO_QUEUE]  # type: ignore[list-item]
        queue = queues[priority] = deque()
        return queue

    def _wake(self, function: Function) -> None:
        """
        NOOP sleeping workers of C{function} for one new runnable job: one
        of them, or C{workerWakeup} if set.  (gearmand wakes every sleeper
        by default; one per job is enough, as L{grab} and L{peerLost} wake
        another if the woken one takes other work or goes away.)
        """
        sleepers = function.sleepers
        if not sleepers:
            return
        limit = self.workerWakeup or 1
        woken = 0
        while sleepers:
            peer = next(iter(sleepers))
            del sleepers[peer]
            peer.unlisted[function] = None
            if peer.sleeping and not peer.noopSent:
                peer.noopSent = True
                peer.write(_NOOP)
                woken += 1
                if woken == limit:
                    return

    def _rewake(self, abilities: List[Tuple[Function, float]]) -> None:
        """
        A worker woken by a NOOP will not take the job it was woken for
        (it went away, gave up the function or took other work): wake
        another sleeper of each of these functions that has jobs queued.
        """
        seen = set()
        for function, _ in abilities:
            if function not in seen:
                seen.add(function)
                if function.hasRunnable():
                    self._wake(function)

    # Epoch jobs (3.12): held aside until due, then queued at the NORMAL tail.

    def _hold(self, job: Job) -> None:
        job.function.pending += 1
        self._lastHold += 1
        heapq.heappush(self._pending, (job.when, self._lastHold, job))
        self._armPending()

    def _armPending(self) -> None:
        if not self._pending:
            return
        due = self._pending[0][0]
        delay = max(0.0, due - self.reactor.seconds())
        timer = self._pendingTimer
        if timer is not None and timer.active():
            if timer.getTime() <= self.reactor.seconds() + delay:
                return
            timer.cancel()
        self._pendingTimer = self.reactor.callLater(delay, self._releaseDue)

    def _releaseDue(self) -> None:
        self._pendingTimer = None
        now = self.reactor.seconds()
        pending = self._pending
        while pending and pending[0][0] <= now:
            job = heapq.heappop(pending)[2]
            job.function.pending -= 1
            self._enqueue(job)
        self._armPending()

    def pendingJobs(self) -> Iterator[Job]:
        """
        The epoch jobs that are not due yet.
        """
        return (entry[2] for entry in self._pending)

    # Status

    def getStatus(self, handle: bytes) -> bytes:
        """
        The STATUS_RES payload for C{handle} (3.11).
        """
        job = self.jobs.get(handle)
        if job is None:
            known = self._recordNumber(handle) is not None
            return b"%s\x00%d\x000\x000\x000" % (handle, known)
        return b"%s\x001\x00%d\x00%d\x00%d" % (
            handle,
            job.worker is not None,
            job.numerator,
            job.denominator,
        )

    def getStatusUnique(self, unique: bytes) -> bytes:
        """
        The STATUS_RES_UNIQUE payload for C{unique} (3.11).
        """
        job = self._findUnique(unique) if unique else None
        if job is None:
            return b"%s\x000\x000\x000\x000\x000" % (unique,)
        return b"%s\x001\x00%d\x00%d\x00%d\x00%d" % (
            unique,
            job.worker is not None,
            job.numerator,
            job.denominator,
            _liveCount(job.clients),
        )

    def _findUnique(self, unique: bytes) -> Optional[Job]:
        """
        The newest live job with C{unique} in any function; gearmand never
        finds C{-} jobs by unique.
        """
        jobs = self._uniqueJobs.get(unique)
        return next(reversed(jobs)) if jobs else None

    # Ending jobs

    def cancel(self, handle: bytes) -> bool:
        """
        Cancel a job for the C{cancel job} admin command: its clients get
        WORK_FAIL and are detached; a queued job is freed when a GRAB
        reaches it, a running one runs on with nobody listening.

        @return: whether the job exists.
        """
        job = self.lookup(handle)
        if job is None:
            return False
        self._failToClients(job)
        self._detachClients(job)
        job.background = False
        job.persisted = False
        # Cancelling is final: the job gives up its unique key at once,
        # running or not.
        job.ignore = True
        self._forgetUnique(job)
        self._unstore(job)
        return True

    def _detachClients(self, job: Job) -> None:
        for client in job.clients:
            client.attached.pop(job, None)
        job.clients = _NO_CLIENTS  # type: ignore[assignment]

    def _abandon(self, job: Job) -> None:
        """
        Mark a job nobody waits for: it is never run (3.8).  A queued one
        gives up its unique key (gearmand coalesces new submissions onto
        the dead job, which never answers them); a running one keeps it, so
        that a new submission joins it and gets its result, as in gearmand.
        """
        job.ignore = True
        if job.worker is None:
            self._forgetUnique(job)

    def _forgetUnique(self, job: Job) -> None:
        key = job.key
        if key is not None:
            uniques = job.function.uniques
            if uniques.get(key) is job:
                del uniques[key]
                jobs = self._uniqueJobs.get(job.unique)
                if jobs is not None and jobs.pop(job, 0) is None and not jobs:
                    del self._uniqueJobs[job.unique]

    def _finish(self, job: Job) -> None:
        """
        Free a job that a worker ended.
        """
        worker = job.worker
        if worker is not None:
            del worker.held[job]
            job.worker = None
            job.function.running -= 1
            self.stats.run.observe(self.reactor.seconds() - job.started)
        if job.timer is not None:
            if job.timer.active():
                job.timer.cancel()
            job.timer = None
        self._detachClients(job)
        self._free(job)
        if self._idleWaiters:
            self._checkIdle()

    def _free(self, job: Job) -> None:
        self._forgetUnique(job)
        self.jobs.pop(job.handle, None)
        if job.queueKey is not None:
            self._unstore(job)

    # Requeue (3.7)

    def _requeueHeld(self, peer: Peer, jobs: List[Job]) -> None:
        """
        Take C{jobs} back from C{peer}, newest grabbed first.
        """
        for job in reversed(jobs):
            del peer.held[job]
            job.worker = None
            job.function.running -= 1
            if job.timer is not None:
                if job.timer.active():
                    job.timer.cancel()
                job.timer = None
            self._retry(job)
        if self._idleWaiters:
            self._checkIdle()

    def _timedOut(self, job: Job) -> None:
        """
        A CAN_DO_TIMEOUT ran out: requeue the job as if its worker was lost.
        """
        job.timer = None
        worker = job.worker
        if worker is None:
            return
        del worker.held[job]
        job.worker = None
        job.function.running -= 1
        self._retry(job)
        if self._idleWaiters:
            self._checkIdle()

    def _retry(self, job: Job) -> None:
        if job.ignore:
            if job.clients or job.background:
                # Abandoned while running, then joined by a new submission.
                job.ignore = False
            else:
                self._forgetUnique(job)
        job.retries += 1
        if self.jobRetries and job.retries >= self.jobRetries:
            self.log.info(
                "Job {handle} failed after {retries} attempts",
                handle=job.handle.decode("ascii", "replace"),
                retries=job.retries,
            )
            self._failToClients(job)
            self._detachClients(job)
            job.function.failed += 1
            self._free(job)
            if self._idleWaiters:
                self._checkIdle()
            return
        job.numerator = job.denominator = 0
        self._enqueue(job)

    # Draining

    def hasWork(self) -> bool:
        """
        Whether any job is running, or queued and runnable now (cancelled,
        abandoned and not-yet-due jobs do not count).
        """
        if self.records:
            return True
        for function in self.functions.values():
            if function.running:
                return True
            for queue in function.queues:
                for entry in queue:
                    job = self._madeJob(entry) if entry.__class__ is bytes else entry
                    if job is not None and not job.ignore:  # type: ignore[union-attr]
                        return True
        return False

    def runningCount(self) -> int:
        """
        How many jobs workers hold now.
        """
        return sum(function.running for function in self.functions.values())

    def whenIdle(self, callback: Callable[[], object]) -> None:
        """
        Call C{callback} once no worker holds a job.
        """
        self._idleWaiters.append(callback)
        self._checkIdle()

    def _checkIdle(self) -> None:
        if self._idleWaiters and not self.runningCount():
            waiters, self._idleWaiters = self._idleWaiters, []
            for waiter in waiters:
                waiter()
