# -*- test-case-name: tests.test_server_jobs -*-
"""
What the job server is made of: functions, jobs and the connections that
use them, with gearmand 1.1's limits.

L{Peer} is a connection as the job server sees it: its state as a worker
and as a client, and the replies the server makes to it as calls
(L{Peer.created}, L{Peer.assign}, L{Peer.complete}, ...) that each kind of
connection renders its own way: L{gearman_tw.server.packets.PacketPeer} as
Gearman packets, the HTTP face as JSON.  Nothing here knows the wire format.
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Deque,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
    cast,
    overload,
)

from twisted.internet.interfaces import IDelayedCall

from gearman_tw.queues import QueuedJob
from gearman_tw.server.lifecycle import DEFAULT_POLICY, Policy
from gearman_tw.server.stats import Histogram

if TYPE_CHECKING:
    from gearman_tw.server.runqueue import QueuedRecord

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

#: How a worker asked for a job (L{Peer.assign}): GRAB_JOB (handle, function
#: and data), GRAB_JOB_UNIQ (and the unique) or GRAB_JOB_ALL (and the
#: reducer, for a job that has one).
ASSIGN, ASSIGN_UNIQ, ASSIGN_ALL = 0, 1, 2


class JobStatus(NamedTuple):
    """
    A job's state as GET_STATUS reports it.
    """

    handle: bytes
    known: bool
    running: bool
    numerator: int
    denominator: int


class UniqueStatus(NamedTuple):
    """
    A job's state as GET_STATUS_UNIQUE reports it, with how many clients
    wait for it.
    """

    unique: bytes
    known: bool
    running: bool
    numerator: int
    denominator: int
    clients: int


#: What a function has at a priority where it never queued a job: shared,
#: empty and immutable (L{gearman_tw.server.runqueue.RunQueue} puts a deque
#: in its place).
NO_QUEUE: Tuple[()] = ()
# Typed as what it stands for: being a tuple, it cannot be written by mistake.
NO_QUEUES = cast("List[Deque[Entry]]", (NO_QUEUE, NO_QUEUE, NO_QUEUE))
#: Shared by every function without limits; never changed (a function with
#: limits gets a list of its own).
NO_LIMITS = [0, 0, 0]


class Function:
    """
    A function name with its three priority queues and its workers.

    A function without workers or jobs is small (about 400 bytes, its name
    and its entries in the server's dictionaries included): its queues and
    dictionaries are shared empty values until it needs its own, and a
    server keeps only so many of them
    (L{JobServer.idleFunctions <gearman_tw.server.jobs.JobServer.idleFunctions>}).

    @ivar ident: the number the run queue's compact records know it by.
    @ivar queues: FIFO queues of runnable jobs, indexed by priority, kept
        by the server's L{RunQueue <gearman_tw.server.runqueue.RunQueue>}
        (which alone knows what an entry is); an empty tuple at a priority
        that never had one.
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
    @ivar policy: what happens to its jobs (L{gearman_tw.server.lifecycle}).
    @ivar submitted: new jobs per priority since the function was created
        (and C{completed}, C{failed}, C{exceptions}: how jobs ended;
        C{started}: attempts, jobs handed to workers; C{retried}: attempts
        that ended without ending their job;
        C{timedOut}: attempts a time limit ended; C{deadLettered}: jobs
        kept as dead letters; C{answeredFromResults}: submissions answered
        from a stored result within the unique window).
    @ivar waitTimes: seconds its jobs waited between submission and a
        worker taking them; C{None} until one was taken.
    @ivar runTimes: seconds its attempts ran, a worker taking the job to
        its end or to a failure that was retried; C{None} until one ended.
    """

    __slots__ = (
        "answeredFromResults",
        "completed",
        "deadLettered",
        "exceptions",
        "failed",
        "ident",
        "maxQueue",
        "name",
        "pending",
        "policy",
        "rate",
        "queues",
        "retried",
        "running",
        "runTimes",
        "sleepers",
        "started",
        "storing",
        "submitted",
        "timedOut",
        "uniques",
        "waitTimes",
        "workers",
    )

    def __init__(self, name: bytes, ident: int, policy: Policy = DEFAULT_POLICY) -> None:
        self.name = name
        self.ident = ident
        self.policy = policy
        # For max-rate: (starts left, when counted, timer to wake sleepers).
        self.rate: Optional[RateState] = None
        self.queues = NO_QUEUES
        self.pending = 0
        self.running = 0
        self.storing = 0
        self.workers = 0
        self.sleepers: Dict[Peer, None] = NO_SLEEPERS
        self.uniques: Dict[bytes, Job] = NO_UNIQUES
        self.maxQueue = NO_LIMITS
        # Totals for metrics: new jobs per priority, and how jobs ended.
        self.submitted = [0, 0, 0]
        self.completed = 0
        self.failed = 0
        self.exceptions = 0
        self.started = 0
        self.retried = 0
        self.timedOut = 0
        self.deadLettered = 0
        self.answeredFromResults = 0
        # Made by the first observation: an idle function costs nothing.
        self.waitTimes: Optional[Histogram] = None
        self.runTimes: Optional[Histogram] = None

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

    def full(self) -> bool:
        """
        Whether as many of its jobs run as its policy's C{max-running}
        allows: a GRAB passes it by.
        """
        limit = self.policy.maxRunning
        return bool(limit) and self.running >= limit

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
            or self.maxQueue is not NO_LIMITS
        )


class RateState:
    """
    A function's starts under its C{max-rate}: a bucket of C{tokens} last
    counted at C{at}, and the timer that wakes its sleepers when one is back.
    """

    __slots__ = ("at", "timer", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at
        self.timer: Optional[IDelayedCall] = None

    def refilled(self, now: float, rate: float) -> float:
        """
        The starts the bucket holds at C{now}, refilled at C{rate} a second
        since last counted, up to its size, C{max(1, rate)}.
        """
        return min(max(1.0, rate), self.tokens + (now - self.at) * rate)

    def stop(self) -> None:
        """
        Cancel the timer that would wake the function's sleepers.
        """
        timer, self.timer = self.timer, None
        if timer is not None and timer.active():
            timer.cancel()


#: Shared by every function without sleepers or keyed jobs; never written
#: (the server gives a function a dictionary of its own first).
NO_SLEEPERS: Dict["Peer", None] = {}
NO_UNIQUES: Dict[bytes, "Job"] = {}


class Job:
    """
    One job, queued or running.

    @ivar clients: the foreground submissions attached to the job, one entry
        per submission (a connection that submitted twice appears twice);
        a job of many clients may keep some that left (L{Clients}).
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
        others that coalesce meanwhile wait too, as the server knows).
    """

    __slots__ = (
        "background",
        "clients",
        "created",
        "data",
        "denominator",
        "function",
        "handle",
        "ignore",
        "key",
        "numerator",
        "persisted",
        "priority",
        "queueKey",
        "reducer",
        "retries",
        "started",
        "timer",
        "unique",
        "waiting",
        "when",
        "worker",
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
        self.clients: List[Peer] = NO_CLIENTS  # type: ignore[assignment]
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


NO_CLIENTS: Tuple[()] = ()


class StoreBatch:
    """
    The plain background jobs (no unique key, reducer or start time, small
    data) submitted while the persistent queue is given one batch to store
    (L{gearman_tw.server.jobs.JobServer.flushStores}).  They are no L{Job}s
    until stored, then queued as compact records; their JOB_CREATED
    replies wait, in order, with the connections that submitted them
    (L{Peer.holdCreated}).

    @ivar handlePrefix: the job server's, for their handles.
    @ivar runs: the jobs in runs (L{StoredRun}), in the order submitted.
    @ivar peers: the connections with replies waiting for this batch.
    @ivar done: the queue stored the batch, or failed to.
    @ivar error: the ERROR (code and text) each job's submission is
        answered with if the queue failed to store the batch, or C{None}.
    """

    __slots__ = ("done", "error", "handlePrefix", "peers", "runs")

    def __init__(self, handlePrefix: bytes) -> None:
        self.handlePrefix = handlePrefix
        self.runs: List[StoredRun] = []
        self.peers: Dict[Peer, None] = {}
        self.done = False
        self.error: Optional[Tuple[bytes, bytes]] = None

    def __len__(self) -> int:
        """
        How many jobs the batch holds.
        """
        return sum(len(run.numbers) for run in self.runs)

    def queuedJobs(self) -> "BatchJobs":
        """
        What the persistent queue stores of the jobs.
        """
        return BatchJobs(self.runs, len(self))

    def run(self, function: Function, priority: int, peer: Peer) -> "StoredRun":
        """
        Start a run of jobs of C{function} at C{priority} submitted by
        C{peer}, which holds their replies from now on.
        """
        run = StoredRun(self, function, priority, peer)
        self.runs.append(run)
        peer.holdCreated(run)
        return run


class BatchJobs(Sequence[QueuedJob]):
    """
    The L{QueuedJob}s of the jobs of a L{StoreBatch}, for the persistent
    queue: each made as the queue reads it.  (Made as the jobs were
    submitted, and kept until the batch went to the queue, they made
    storing a job a third dearer, measured with Redis: hundreds of
    objects grown cold between their making and their reading.)
    """

    __slots__ = ("_count", "_runs")

    def __init__(self, runs: List["StoredRun"], count: int) -> None:
        """
        @param count: how many jobs C{runs} hold.
        """
        self._runs = runs
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[QueuedJob]:
        # (A QueuedJob is a tuple: made as one, without the arguments of
        # its constructor.)
        new = tuple.__new__
        for run in self._runs:
            name, priority = run.function.name, run.priority
            for key, data in zip(run.keys, run.datas):
                yield new(QueuedJob, (name, key, b"", data, priority, 0, 0, 0.0))

    @overload
    def __getitem__(self, index: int) -> QueuedJob: ...

    @overload
    def __getitem__(self, index: slice) -> List[QueuedJob]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[QueuedJob, List[QueuedJob]]:
        return list(self)[index]


class StoredRun:
    """
    Jobs of one function and priority in a L{StoreBatch}, submitted one
    after another by one connection with no other reply to it between
    them: queued together once stored, and their JOB_CREATED sent
    together.

    @ivar numbers: their handle numbers.
    @ivar keys: their keys in the persistent queue.
    @ivar datas: their data.
    @ivar records: their compact records (L{gearman_tw.server.runqueue}).
    """

    __slots__ = ("batch", "datas", "function", "keys", "numbers", "peer", "priority", "records")

    def __init__(self, batch: StoreBatch, function: Function, priority: int, peer: Peer) -> None:
        self.batch = batch
        self.function = function
        self.priority = priority
        self.peer = peer
        self.numbers: List[int] = []
        self.keys: List[int] = []
        self.datas: List[bytes] = []
        self.records: List[QueuedRecord] = []


#: What a function's queue holds: L{Job}s, and the compact records the run
#: queue keeps plain background jobs as.
Entry = Union[Job, "QueuedRecord"]


class Clients(List["Peer"]):
    """
    The clients of a job of many clients after one left: a list that keeps
    the lost connections (L{Peer.lost}) until they are half of it.

    @ivar departed: how many entries are lost connections.
    """

    __slots__ = ("departed",)

    departed: int


def liveCount(clients: List["Peer"]) -> int:
    """
    How many of a job's C{clients} entries are connections still open.
    """
    if isinstance(clients, Clients):
        return len(clients) - clients.departed
    return len(clients)


class Peer:
    """
    One connection as the job server sees it: its state as a worker and as
    a client, and the replies the server makes to it.

    The replies are methods that subclasses implement for their kind of
    connection (L{gearman_tw.server.packets.PacketPeer} encodes them as
    Gearman packets); each answers one request or forwards one worker
    packet, in the order the server calls them.

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
    @ivar lastException: the handle of the job this worker last ended with
        WORK_EXCEPTION.
    @ivar heldRun: the L{StoredRun} whose JOB_CREATED replies are the last
        this connection holds, if any (L{holdCreated}): a job added to it
        is answered in its turn.
    @ivar takenBack: how many times a policy's time limit took each job
        (the newest few, by handle) back from this worker, whose late
        packets for them are taken quietly; C{None} until there is one.
    """

    __slots__ = (
        "__weakref__",
        "abilities",
        "attached",
        "clientId",
        "exceptions",
        "fd",
        "held",
        "host",
        "lastException",
        "heldRun",
        "lost",
        "newest",
        "noopSent",
        "sleeping",
        "takenBack",
        "unlisted",
    )

    def __init__(self, fd: int, host: str, exceptions: bool = False) -> None:
        self.fd = fd
        self.host = host
        self.clientId = b"-"
        self.abilities: List[Tuple[Function, float]] = []
        self.newest: Optional[Dict[Function, int]] = None
        self.unlisted: Dict[Function, None] = {}
        self.sleeping = False
        self.noopSent = False
        self.held: Dict[Job, None] = {}
        self.attached: Dict[Job, int] = {}
        self.exceptions = exceptions
        self.lost = False
        self.heldRun: Optional[StoredRun] = None
        self.lastException: Optional[bytes] = None
        self.takenBack: Optional[Dict[bytes, int]] = None

    def lose(self) -> None:
        """
        The connection is gone: replies made to it from now on are dropped.
        """
        self.lost = True

    # Answers to a submission

    def created(self, handle: bytes) -> None:
        """
        JOB_CREATED: the submission made or joined the job C{handle}.
        """
        raise NotImplementedError()

    def hold(self, job: Job) -> None:
        """
        The submission's JOB_CREATED for C{job} waits until the persistent
        queue has stored it (L{release}); replies made meanwhile keep their
        order behind it.
        """
        raise NotImplementedError()

    #: Whether L{holdCreated} may be used: a submission from this peer may
    #: be stored as part of a L{StoreBatch}, not as a L{Job}.
    batchesStores = False

    def holdCreated(self, run: StoredRun) -> None:
        """
        The JOB_CREATED replies of the jobs of C{run} (those in it now and
        those added while it is L{heldRun}) wait until the persistent queue
        has stored its batch (L{release}), or are answered with the batch's
        C{error} if it could not; replies made meanwhile keep their order
        behind them.  C{run} is L{heldRun} until another reply is made.
        Only for a peer whose L{batchesStores} is set.
        """
        raise NotImplementedError()

    def refuse(self, job: Job, code: bytes, text: bytes) -> None:
        """
        The persistent queue could not store C{job}: its held JOB_CREATED is
        answered with ERROR C{code} C{text} instead.
        """
        raise NotImplementedError()

    def release(self) -> None:
        """
        The persistent queue stored (or refused) some held jobs: send the
        held replies that are ready.
        """
        raise NotImplementedError()

    def error(self, code: bytes, text: bytes) -> None:
        """
        ERROR C{code} C{text}: the request was refused.
        """
        raise NotImplementedError()

    # Replies to a worker

    def noop(self) -> None:
        """
        NOOP: wake up, there may be a job for you.
        """
        raise NotImplementedError()

    def noJob(self) -> None:
        """
        NO_JOB: nothing to grab.
        """
        raise NotImplementedError()

    def assign(self, job: Job, form: int) -> None:
        """
        Hand C{job} to this worker, as it asked: C{form} is L{ASSIGN},
        L{ASSIGN_UNIQ} or L{ASSIGN_ALL}.
        """
        raise NotImplementedError()

    # A job's progress and end, forwarded to its clients

    def workData(self, job: Job, data: bytes) -> None:
        """
        WORK_DATA from C{job}'s worker.
        """
        raise NotImplementedError()

    def workWarning(self, job: Job, data: bytes) -> None:
        """
        WORK_WARNING from C{job}'s worker.
        """
        raise NotImplementedError()

    def workStatus(self, job: Job, numerator: bytes, denominator: bytes) -> None:
        """
        WORK_STATUS from C{job}'s worker, its numbers as sent.
        """
        raise NotImplementedError()

    def workComplete(self, job: Job, data: bytes) -> None:
        """
        WORK_COMPLETE: C{job} ended with C{data}.
        """
        raise NotImplementedError()

    def workFail(self, job: Job, detail: Optional[bytes] = None) -> None:
        """
        WORK_FAIL: C{job} failed.  C{detail} is what a worker sent after the
        handle, forwarded as sent; C{None} for a bare handle.
        """
        raise NotImplementedError()

    def workException(self, job: Job, data: bytes) -> None:
        """
        WORK_EXCEPTION: C{job} ended with an exception (sent only to clients
        with the C{exceptions} option; the others get L{workFail}).
        """
        raise NotImplementedError()
