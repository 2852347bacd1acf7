# -*- test-case-name: tests.test_server_jobs -*-
"""
The job server: gearmand 1.1's job semantics over the model
(L{gearman_tw.server.model}), without any I/O.

L{JobServer} holds functions, queues and jobs, and acts on
L{Peer <gearman_tw.server.model.Peer>} objects, one per connection, through
their reply methods.  The network protocol
(L{gearman_tw.server.protocol}) turns packets into calls here and
L{PacketPeer <gearman_tw.server.packets.PacketPeer>} turns the replies
into packets; the HTTP face does both its own way; the unit tests call it
directly.

Section numbers in comments refer to C{shared/reference/protocol.md}.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import socket
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union, cast

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gearman_tw.errors import QueueError
from gearman_tw.interfaces import IJobServer, IPersistentQueue
from gearman_tw.numbers import uint32
from gearman_tw.queues import DEAD_LETTERS, HANDLES, POLICY_CHANGES, RESULTS, QueuedJob
from gearman_tw.server.deadletters import DeadLetter, DeadLetters
from gearman_tw.server.lifecycle import Policies, PoliciesError, Policy, changed, uniform
from gearman_tw.server.model import (
    ASSIGN_UNIQ,
    HIGH,
    LOW,
    MAX_HANDLE,
    MAX_UNIQUE,
    NO_CLIENTS,
    NO_LIMITS,
    NO_SLEEPERS,
    NO_UNIQUES,
    NORMAL,
    Clients,
    Function,
    Job,
    JobStatus,
    Peer,
    RateState,
    StoreBatch,
    UniqueStatus,
    liveCount,
)
from gearman_tw.server.results import COMPLETE, EXCEPTION, FAIL, Results, StoredResult
from gearman_tw.server.runqueue import MAX_RECORD_DATA, RunQueue, packRecord
from gearman_tw.server.stats import Histogram, ServerStats

#: How many functions without workers, jobs or limits a server keeps by
#: default (L{JobServer.idleFunctions}): C{status} goes on listing a
#: function its workers left, as gearmand's does, while a stream of new
#: names cannot make the server grow without end.
IDLE_FUNCTIONS = 10000

#: A job of at most this many clients forgets a lost one at once; one of more
#: when they are half of its clients (L{Clients}).
_FEW_CLIENTS = 16

#: Workers of at most this many functions are looked at whole by a GRAB;
#: for more, only the functions with something queued are.
_FEW_ABILITIES = 32

#: gearmand copies a WORK_STATUS denominator into an 11-byte buffer: longer
#: ones make it drop the packet; it reads at most 10 characters.
_MAX_DENOMINATOR = 11

# gearmand's refusals: (code, text) of an ERROR.
_UNIQUE_TOO_LARGE = (b"ARGUMENT_TOO_LARGE", b"Unique value too large")
_QUEUE_FULL = (b"QUEUE_ERROR", b"Job queue is full")
_NOT_FOUND_DATA = (b"JOB_NOT_FOUND", b"Job does not exist on server")
_NOT_FOUND_RESULT = (b"JOB_NOT_FOUND", b"Job given in work result not found")
_NOT_FOUND_EXCEPTION = (b"JOB_NOT_FOUND", b"An exception was received for a job that does not exist")
_HANDLE_TOO_LARGE = (
    b"ARGUMENT_TOO_LARGE",
    b"Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf",
)


# The record of the highest dead letter number given.
_LAST_IDENT = b"last"

# Why an attempt ended, for dead letters.
_WORK_FAIL = b"WORK_FAIL"
_WORKER_LOST = b"worker lost"
_GIVEN_BACK = b"worker gave it back"
_TIME_LIMIT = b"time limit"


class _Resubmitter(Peer):
    """
    The submitter of a dead letter run again (C{retry deadletters}): it is
    answered nothing, but a refusal (a full queue, a persistent queue that
    could not store the job) puts the letter back among the dead.

    @ivar refused: the submission was refused at once.
    """

    __slots__ = ("_letter", "_putBack", "_server", "refused", "settled")

    def __init__(self, server: "JobServer", letter: DeadLetter) -> None:
        super().__init__(-1, "-")
        self._server = server
        self._letter = letter
        self.refused = False
        self._putBack = False
        #: Fires with whether the letter ran again (its job queued, and
        #: stored with a persistent queue) or was put back, and why the
        #: queue could not forget the letter, if it could not.
        self.settled: Deferred[Tuple[bool, Optional[str]]] = Deferred()

    def _ignore(self, *args: object) -> None:
        pass

    def _settle(self, retried: bool, why: Optional[str] = None) -> None:
        if not self.settled.called:
            self.settled.callback((retried, why))

    def _submitted(self, *args: object) -> None:
        # Queued (and stored, with a persistent queue): the letter goes,
        # and the retry is done once the queue forgot it too (a crash
        # before would keep both); after a refusal, release() only ends
        # the wait.
        if self._putBack:
            self._settle(False)
            return
        dropped = self._server._dropLetters(self._letter.function, [self._letter])
        dropped.addCallback(lambda why: self._settle(True, why))

    def created(self, handle: bytes) -> None:
        server = self._server
        job = server.lookup(handle)
        if server._persistent and job is not None and job.queueKey is None and not self._putBack:
            # A job the queue does not store (a reduce job): the letter's
            # record goes only when that job ends.
            server._dropWhenEnded(job, self._letter)
            self._settle(True)
            return
        self._submitted()

    def error(self, code: bytes, text: bytes) -> None:
        self.refused = True
        self._keepAgain(text)

    def refuse(self, job: Job, code: bytes, text: bytes) -> None:
        self._keepAgain(text)

    def _keepAgain(self, why: bytes) -> None:
        # Put back whatever the function's limit is now (a lowered limit
        # applies to new letters, as after a restart), saying why beside
        # why its last attempt ended.
        self._putBack = True
        error = self._letter.error
        if error.startswith(_RETRY_REFUSED) and _BEFORE in error:
            error = error.split(_BEFORE, 1)[1]
        letter = dataclasses.replace(self._letter, error=_RETRY_REFUSED + why + _BEFORE + error)
        self._server._keepLetter(letter, None)
        self._settle(False)

    release = _submitted  # type: ignore[assignment]
    hold = noop = noJob = assign = _ignore  # type: ignore[assignment]
    workData = workWarning = workStatus = workComplete = workFail = workException = _ignore  # type: ignore[assignment]


#: The max-rate buckets of forgotten functions kept at least (beyond, the
#: oldest go; see L{JobServer._forgetFunction}).
_FORGOTTEN_RATES = 1024

#: Jobs a worker had taken back by a policy's time limit that are
#: remembered for its late packets (the newest).
_TAKEN_BACK = 64

#: Entries looked through for a job that ended while it waited
#: (L{JobServer._withdraw}) before it is left to be freed when reached.
_WITHDRAW_SCAN = 10000

#: Handle numbers given between two attempts to store the next block when
#: the persistent queue could not.
_HANDLES_RETRY = 1024

#: The kinds of records a job server keeps in a persistent queue
#: (L{JobServer.restoreAll}).
KEPT = (POLICY_CHANGES, HANDLES, RESULTS, DEAD_LETTERS)

#: Handle numbers a persistent queue is told at once may be in use
#: (L{JobServer.reserveHandles}): a restart skips at most this many, so
#: the 32-bit counter comes round after 65,536 restarts at the earliest.
HANDLE_BLOCK = 1 << 16

T = TypeVar("T")
R = TypeVar("R")

# A dead letter whose retry was refused says why, then why its last
# attempt ended.
_RETRY_REFUSED = b"retry refused: "
_BEFORE = b"; before: "


def whenFired(d: "Deferred[T]", answer: Callable[[T], R]) -> "Union[R, Deferred[R]]":
    """
    C{answer} of C{d}'s result: at once if C{d} has fired (no persistent
    queue, say), else a Deferred of it; for the callers of
    L{JobServer.keeping} and L{JobServer.retryDeadLettersWhenStored}.
    """
    fired: List[T] = []
    d.addCallback(fired.append)
    if fired:
        return answer(fired[0])
    return d.addCallback(lambda _: answer(fired[0]))


def _takenBack(peer: Peer, handle: bytes) -> bool:
    """
    Whether a policy's time limit took the job C{handle} back from worker
    C{peer} (and the worker has not ended that attempt since).
    """
    taken = peer.takenBack
    return taken is not None and handle in taken


def _untake(peer: Peer, handle: bytes) -> bool:
    """
    Note that worker C{peer} ended, late, an attempt at job C{handle} that
    a time limit took back from it (once per time taken back).

    @return: whether there was one.
    """
    taken = peer.takenBack
    count = None if taken is None else taken.get(handle)
    if not count:
        return False
    if count == 1:
        del taken[handle]  # type: ignore[union-attr]
    else:
        taken[handle] = count - 1  # type: ignore[index]
    return True


def _restoredKey(record: QueuedJob) -> bytes:
    """
    The key a replayed job with a unique coalesces by.
    """
    return b"-\0" + record.data if record.unique == b"-" else record.unique


def defaultHandlePrefix() -> bytes:
    """
    gearmand's default job handle prefix: C{H:} and the host name.
    """
    return b"H:" + socket.gethostname().encode("utf-8", "replace")


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
    @ivar jobs: live L{Job}s by handle, but those queued as compact
        records in L{runQueue}; L{lookup} finds a job of either kind,
        L{jobCount} counts both, L{liveJobs} lists both.
    @ivar runQueue: the runnable jobs of every function.
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
        policies: Optional[Policies] = None,
        random: Callable[[float, float], float] = uniform,
        globalPriority: bool = False,
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
        @param policies: each function's lifecycle policy; gearmand's
            behaviour for every function by default.
        @param random: C{random.uniform}, for the backoff's jitter.
        @param globalPriority: a worker of several functions takes the most
            urgent job of any of them (gearmand 2.0's order) rather than the
            first function's most urgent one (1.1's).
        """
        self.reactor = reactor
        prefix = defaultHandlePrefix() if handlePrefix is None else handlePrefix
        self.handlePrefix = prefix + b":"
        self._now = reactor.seconds
        self.jobRetries = jobRetries
        self.roundRobin = roundRobin
        self.workerWakeup = workerWakeup
        self.exceptions = exceptions
        self.functions: Dict[bytes, Function] = {}
        self._lastFunctionIdent = 0
        # Functions whose lowercased name differs from their name, by that
        # lowercased name, for L{dropFunction}.
        self._folded: Dict[bytes, List[Function]] = {}
        self.idleFunctions = idleFunctions
        # The max-rate buckets of functions forgotten before they refilled.
        self._rates: Dict[bytes, Tuple[RateState, float]] = {}
        #: The server is rebuilding what its persistent queue kept (the
        #: service sets it while replaying): HTTP answers 503 meanwhile.
        self.replaying = False
        self.policies = Policies() if policies is None else policies
        # Policy keys changed at run time, by function name (over the file).
        self._policyChanges: Dict[bytes, Dict[str, Any]] = {}
        self._uniform = random
        self.deadLetters = DeadLetters()
        self.results = Results()
        self._resultsTimer: Optional[IDelayedCall] = None
        self.globalPriority = globalPriority
        # Functions that became idle (L{Function.idle}), longest idle first;
        # entries may be stale (the function got work since) and are
        # checked when met.
        self._idle: Dict[Function, None] = {}
        self.jobs: Dict[bytes, Job] = {}
        self.runQueue = RunQueue(self.jobs, self.handleOf, self._free, self._busy)
        self.peers: Dict[Peer, None] = {}
        self._lastHandle = 0
        # The handle counter came round past 2**32 - 1 (L{_unusedNumber}).
        self._wrapped = False
        # Past this handle number L{_nextNumber} takes its slow path: the
        # counter coming round, or (with a persistent queue) time to store
        # the next block of numbers (L{reserveHandles}).
        self._numberLimit = 0xFFFFFFFF
        # The kept-records changes sent to the queue during keeping().
        self._collected: Optional[List[Deferred[Optional[str]]]] = None
        # Epoch jobs not due yet, and jobs waiting out a retry's backoff:
        # (due, sequence number, job), a heap.
        self._pending: List[Tuple[float, int, Job]] = []
        self._lastHold = 0
        # Live jobs by unique key (not C{-}) across functions, oldest first,
        # for GET_STATUS_UNIQUE (a dict as an ordered set: forgetting one is
        # O(1) however many share a key).
        self._uniqueJobs: Dict[bytes, Dict[Job, None]] = {}
        self._pendingTimer: Optional[IDelayedCall] = None
        self._idleWaiters: List[Callable[[], object]] = []
        self.queue = queue
        self._persistent = queue is not None and getattr(queue, "persistent", True)
        self.stats = ServerStats()
        # Stores and dones made during one reactor turn, sent as one batch:
        # new jobs, and live ones a background submission joined.
        self._toStore: List[Job] = []
        self._toStoreJoined: List[Job] = []
        # Plain background jobs to store, as records (L{_storeRecord}).
        self._batch: Optional[StoreBatch] = None
        self._toForget: List[int] = []
        # Stored jobs attempted again, with the end of their backoff, to
        # update in the queue (L{_flushUpdates}).
        self._toUpdate: Dict[Job, float] = {}
        # Dead letters run again as jobs the queue does not store, whose
        # records are forgotten when those jobs end (L{_free}).
        self._lettersOfJobs: Dict[Job, List[DeadLetter]] = {}
        # Submissions that joined a job while it was being stored, besides
        # the one storing it (Job.waiting).
        self._alsoWaiting: Dict[Job, List[Peer]] = {}
        # The last record number given to a stored job, and the last one
        # sent to the queue (or replayed from it): a job that ends before
        # its key is sent has nothing to forget there.
        self._lastKey = 0
        self._sentKey = 0

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
        self._dropAbilities(peer, _WORKER_LOST)
        peer.noopSent = False
        peer.lose()
        for job, count in peer.attached.items():
            # A job of many clients keeps the lost ones (they are written
            # nothing) until they are half of its list, so that thousands
            # of clients of one job leaving one by one cost O(1) each.
            clients = job.clients
            gone = count + (clients.departed if isinstance(clients, Clients) else 0)
            if len(clients) <= _FEW_CLIENTS or 2 * gone >= len(clients):
                clients = job.clients = [c for c in clients if not c.lost]
                if not clients and not job.background:
                    self._abandon(job)
            else:
                if not isinstance(clients, Clients):
                    clients = job.clients = Clients(clients)
                clients.departed = gone
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
            function = self.functions[name] = Function(name, self._lastFunctionIdent, self._policyFor(name))
            if self._rates:
                # Forgotten while its max-rate bucket refilled: not a
                # fresh bucket, or forgetting would lift the limit (unless
                # the rate changed since: a new rate starts full).
                saved = self._rates.pop(name, None)
                if saved is not None and saved[1] == function.policy.maxRate:
                    function.rate = saved[0]
            folded = name.lower()
            if folded != name:
                self._folded.setdefault(folded, []).append(function)
        return function

    def setPolicies(self, policies: Policies) -> None:
        """
        Give every function its policy from C{policies} (a reloaded file):
        running jobs keep their time limits, the rest applies from now on.
        """
        self.policies = policies
        for function in self.functions.values():
            self._applyPolicy(function, self._policyFor(function.name))

    def _policyFor(self, name: bytes) -> Policy:
        """
        The policy of function C{name}: the file's, with the changes made
        at run time.
        """
        policy = self.policies.forFunction(name)
        changes = self._policyChanges.get(name)
        return policy if changes is None else changed(policy, changes)

    def _applyPolicy(self, function: Function, policy: Policy) -> None:
        """
        Give C{function} a new policy: running jobs keep their time limits,
        the rest applies from now on.
        """
        old = function.policy
        function.policy = policy
        rateChanged = policy.maxRate != old.maxRate
        if rateChanged:
            # A new rate starts with a full bucket; none keeps none.  The
            # old bucket's refill timer goes with it: the wake below is
            # the one it would have made.
            if function.rate is not None:
                function.rate.stop()
            function.rate = None
        before, after = old.maxRunning, policy.maxRunning
        opened = before and (not after or after > before)
        if (opened or rateChanged) and function.hasRunnable():
            # Room a lower limit kept closed: wake a sleeper per slot (and
            # per start a new rate's full bucket allows).
            room = after - function.running if after else len(function.sleepers)
            if policy.maxRate:
                room = min(room, int(max(1.0, policy.maxRate)))
            for _ in range(max(room, 0)):
                if not function.sleepers:
                    break
                self._wake(function)

    def policyOf(self, name: bytes) -> Policy:
        """
        The policy that applies to function C{name}, known or not.
        """
        function = self.functions.get(name)
        return self._policyFor(name) if function is None else function.policy

    def policyChanges(self, name: bytes) -> Dict[str, Any]:
        """
        The policy keys of function C{name} changed at run time.
        """
        return dict(self._policyChanges.get(name, {}))

    def changePolicy(self, name: bytes, changes: Dict[str, Any]) -> Policy:
        """
        Change the policy of function C{name} (known or not) at run time:
        C{changes} are policy file keys and values (C{None} takes back an
        earlier change of that key), kept over the file's as it is
        reloaded, and by a persistent queue over restarts.

        @return: the policy that applies now.
        @raise PoliciesError: a key is unknown or a value out of range.
        """
        merged = dict(self._policyChanges.get(name, {}))
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            elif isinstance(value, dict) and isinstance(merged.get(key), dict):
                # A backoff table given in parts keeps the parts given before.
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        where = "the change of %s" % (name.decode("utf-8", "replace"),)
        policy = changed(self.policies.forFunction(name), merged, where)
        if merged:
            self._policyChanges[name] = merged
        else:
            self._policyChanges.pop(name, None)
        function = self.functions.get(name)
        if function is not None:
            self._applyPolicy(function, policy)
        self._storePolicyChanges(name, merged)
        return policy

    def resetPolicy(self, name: bytes) -> bool:
        """
        Take back every run-time change of function C{name}'s policy.

        @return: whether there was one.
        """
        if name not in self._policyChanges:
            return False
        self.changePolicy(name, dict.fromkeys(self._policyChanges[name]))
        return True

    def _storePolicyChanges(self, name: bytes, changes: Dict[str, Any]) -> None:
        if not self._persistent:
            return
        records = [(name, json.dumps(changes).encode("utf-8"))] if changes else []
        self._keep(
            POLICY_CHANGES,
            records,
            [],
            [] if changes else [name],
            "Persistent queue could not store the policy changes of {function}",
            function=name.decode("utf-8", "replace"),
        )

    def _keep(
        self,
        kind: bytes,
        records: List[Tuple[bytes, bytes]],
        done: List[int],
        dropped: List[bytes],
        failed: str,
        /,
        **fields: Any,
    ) -> "Deferred[Optional[str]]":
        """
        Change the persistent queue's records of C{kind} (see
        L{IPersistentQueue.keep}), logging C{failed} (a log format, with
        C{fields}) if the queue cannot.

        @return: fires when the queue made the change (with C{None}) or
            could not (with why); L{keeping} waits for it.
        """
        assert self.queue is not None
        d = cast("Deferred[Optional[str]]", self.queue.keep(kind, records, done, dropped))
        d.addCallbacks(lambda _: None, self._queueFailed, errbackArgs=(failed, fields))
        if self._collected is not None:
            self._collected.append(d)
        return d

    def keeping(self, change: Callable[[], T]) -> "Tuple[T, Optional[Deferred[Optional[str]]]]":
        """
        Make C{change} (a run-time policy change, a purge of dead letters),
        and learn when the persistent queue has what it changed.

        @return: what C{change} returned, and, if it sent changes to the
            persistent queue, a Deferred that fires once the queue made
            them all, with C{None}, or with why the first it could not make
            failed.
        """
        outer, self._collected = self._collected, []
        try:
            result = change()
        finally:
            collected, self._collected = self._collected, outer
        if outer is not None:
            outer.extend(collected)
        if not collected:
            return result, None
        d = DeferredList(collected)
        d.addCallback(lambda results: next((why for _, why in results if why is not None), None))
        return result, d  # type: ignore[return-value]

    def _queueFailed(self, failure: Failure, failed: str, fields: Dict[str, Any]) -> str:
        """
        Count and log a change the persistent queue could not make: the
        queue's own failures (L{QueueError}) as one line saying why,
        anything else with its traceback.

        @return: why, in a line.
        """
        self.stats.queueErrors += 1
        if failure.check(QueueError):
            self.log.error(failed + ": {error}", error=failure.getErrorMessage(), **fields)
        else:
            self.log.failure(failed, failure, **fields)
        return failure.getErrorMessage() or failure.type.__name__

    def restorePolicyChanges(self, records: List[Tuple[bytes, bytes]]) -> None:
        """
        Apply the run-time policy changes a persistent queue kept
        (L{POLICY_CHANGES} records).

        @raise QueueError: a record is not a valid change.
        """
        for name, value in records:
            try:
                changes = json.loads(value.decode("utf-8"))
                policy = changed(self.policies.forFunction(name), changes)
            except (ValueError, PoliciesError) as e:
                raise QueueError("corrupt policy change record for %r: %s" % (name, e))
            self._policyChanges[name] = changes
            function = self.functions.get(name)
            if function is not None:
                self._applyPolicy(function, policy)

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
        self.runQueue.retire(function)
        function.sleepers = NO_SLEEPERS
        function.uniques = NO_UNIQUES
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
        Forget a function that has no workers and no jobs (but the state of
        its max-rate bucket until it is full again).
        """
        state = function.rate
        if state is not None:
            state.stop()
            rate = function.policy.maxRate
            if rate and state.refilled(self.reactor.seconds(), rate) < max(1.0, rate):
                rates = self._rates
                rates[function.name] = (state, rate)
                if len(rates) > max(self.idleFunctions, _FORGOTTEN_RATES):
                    del rates[next(iter(rates))]
        del self.functions[function.name]
        self.runQueue.retire(function)
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
                function.maxQueue = NO_LIMITS
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
        if sleepers is NO_SLEEPERS:
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
            self._requeueHeld(peer, held, _GIVEN_BACK)
        if peer.noopSent:
            # It may have been woken for this function's job.
            self._rewake(dropped)
        self._retire(function)

    def resetAbilities(self, peer: Peer) -> None:
        """
        Drop all of C{peer}'s registrations and requeue its jobs
        (RESET_ABILITIES).
        """
        self._dropAbilities(peer, _GIVEN_BACK)

    def _dropAbilities(self, peer: Peer, why: bytes) -> None:
        """
        L{resetAbilities}, C{why} saying why its jobs' attempts ended.
        """
        abilities, peer.abilities = peer.abilities, []
        peer.newest = None
        peer.unlisted = {}
        for function, _ in abilities:
            function.workers -= 1
            function.sleepers.pop(peer, None)
        if peer.held:
            self._requeueHeld(peer, list(peer.held), why)
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
            function = abilities[index][0]
            if self._mayStart(function) and self.runQueue.livePriority(function) is not None:
                peer.noopSent = True
                peer.noop()
                return
        # The worker is among the sleepers of each of its functions (since
        # its CAN_DO) but those a wake-up took it off since it last slept.
        unlisted = peer.unlisted
        if unlisted:
            for function in unlisted:
                sleepers = function.sleepers
                if sleepers is NO_SLEEPERS:
                    sleepers = function.sleepers = {}
                sleepers[peer] = None
            unlisted.clear()

    def _mayStart(self, function: Function) -> bool:
        """
        Whether a job of C{function} may start now under its policy's
        C{max-running} and C{max-rate}.  When the rate stops it, a timer
        wakes the function's sleepers once a start is allowed again.
        """
        if function.full():
            return False
        rate = function.policy.maxRate
        if not rate:
            return True
        now = self.reactor.seconds()
        capacity = max(1.0, rate)
        state = function.rate
        if state is None:
            state = function.rate = RateState(capacity, now)
        else:
            state.tokens = state.refilled(now, rate)
            state.at = now
        if state.tokens >= 1:
            return True
        if state.timer is None or not state.timer.active():
            state.timer = self.reactor.callLater((1 - state.tokens) / rate, self._rateRefilled, function)
        return False

    def _rateRefilled(self, function: Function) -> None:
        """
        A job of C{function} may start again under its C{max-rate}: wake a
        sleeper if jobs wait.
        """
        if function.rate is not None:
            function.rate.timer = None
        if function.hasRunnable():
            self._wake(function)

    def _mostUrgent(self, abilities: List[Tuple[Function, float]], order: Sequence[int]) -> Sequence[int]:
        """
        Of the positions C{order} in C{abilities}, the first whose function's
        next live job has the most urgent priority (none if none has one).
        """
        best: Optional[int] = None
        bestPriority = LOW + 1
        livePriority = self.runQueue.livePriority
        for index in order:
            function = abilities[index][0]
            priority = livePriority(function) if self._mayStart(function) else None
            if priority is not None and priority < bestPriority:
                best, bestPriority = index, priority
                if priority == HIGH:
                    break
        return () if best is None else (best,)

    def _newestFirst(self, peer: Peer) -> Sequence[int]:
        """
        The positions in C{peer.abilities} a GRAB or PRE_SLEEP looks at,
        newest registration first: all of them for a worker of a few
        functions; for one of many, only those whose function has something
        queued (found through the run queue, so that the abilities without
        work cost nothing).
        """
        abilities = peer.abilities
        count = len(abilities)
        if count <= _FEW_ABILITIES:
            return range(count - 1, -1, -1)
        withWork = self.runQueue.withWork()
        if len(withWork) >= count:
            return range(count - 1, -1, -1)
        newest = peer.newest
        if newest is None:
            newest = peer.newest = {function: index for index, (function, _) in enumerate(abilities)}
        positions = [newest[function] for function in withWork if function in newest]
        positions.sort(reverse=True)
        return positions

    def grab(self, peer: Peer, form: int = ASSIGN_UNIQ, answerEmpty: bool = True) -> bool:
        """
        Hand C{peer} the next job it can do, or NO_JOB (GRAB_JOB,
        GRAB_JOB_UNIQ, GRAB_JOB_ALL: C{form} is how it asked, for
        L{Peer.assign}).

        @param answerEmpty: answer NO_JOB when there is nothing to grab;
            if C{False}, the caller will ask again (or answer) later.
        @return: whether C{peer} was handed a job.

        Functions are tried newest registration first, and within one
        function HIGH, NORMAL then LOW (3.4); with L{globalPriority}, the
        most urgent job of any function first, newest registration first
        among equals.
        """
        woken = peer.noopSent
        peer.sleeping = False
        peer.noopSent = False
        abilities = peer.abilities
        count = len(abilities)
        order: Sequence[int] = range(count - 1, -1, -1) if count <= _FEW_ABILITIES else self._newestFirst(peer)
        if self.globalPriority and count > 1:
            order = self._mostUrgent(abilities, order)
        for index in order:
            function, timeout = abilities[index]
            if not self._mayStart(function):
                continue
            job = self.runQueue.take(function)
            if job is None:
                continue
            if function.rate is not None:
                function.rate.tokens -= 1
            function.started += 1
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
            waited = now - job.created
            self.stats.wait.observe(waited)
            times = function.waitTimes
            if times is None:
                times = function.waitTimes = Histogram()
            times.observe(waited)
            limit = timeout or function.policy.timeLimit
            if limit:
                job.timer = self.reactor.callLater(limit, self._timedOut, job, not timeout)
            peer.assign(job, form)
            return True
        if answerEmpty:
            peer.noJob()
        return False

    def lookup(self, handle: bytes) -> Optional[Job]:
        """
        The live job with C{handle}, if any.  A job queued as a compact
        record is a copy: reading it changes nothing, and L{cancel} is how
        to end it.
        """
        job = self.jobs.get(handle)
        if job is None and len(self.runQueue):
            number = self.handleNumber(handle)
            if number is not None:
                return self.runQueue.find(number)
        return job

    def jobCount(self) -> int:
        """
        How many jobs are live, queued or running.
        """
        return len(self.jobs) + len(self.runQueue)

    def liveJobs(self) -> Iterator[Job]:
        """
        Every live job, queued or running, as it is now: those kept in
        L{jobs} by creation, then those queued as records (copies, see
        L{lookup}) by handle number.
        """
        jobs = list(self.jobs.values())
        return itertools.chain(jobs, self.runQueue.queued())

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

    def handleOf(self, number: int) -> bytes:
        """
        Our handle with C{number}.
        """
        return b"%s%d" % (self.handlePrefix, number)

    # Work results

    def _held(self, peer: Peer, handle: bytes) -> Optional[Job]:
        job = self.jobs.get(handle)
        if job is None or job.worker is not peer:
            return None
        return job

    def _heldOrRefuse(self, peer: Peer, handle: bytes, refusal: Tuple[bytes, bytes]) -> Optional[Job]:
        """
        The job C{handle} if C{peer} holds it; else C{None}, and C{peer} is
        answered ERROR C{refusal}, unless a time limit took the job back
        from it (then nothing: see L{_lateResult}).
        """
        job = self._held(peer, handle)
        if job is None and not _takenBack(peer, handle):
            peer.error(*refusal)
        return job

    def _withdraw(self, job: Job) -> None:
        """
        End C{job}, which waits (queued, or out a backoff) and is not
        running: out of its queue or the held jobs, and freed.
        """
        pending = self._pending
        found = False
        if len(pending) <= _WITHDRAW_SCAN:
            for index, entry in enumerate(pending):
                if entry[2] is job:
                    pending[index] = pending[-1]
                    pending.pop()
                    heapq.heapify(pending)
                    job.function.pending -= 1
                    found = True
                    break
        self._detachClients(job)
        if not found and not self.runQueue.withdraw(job, _WITHDRAW_SCAN):
            # Not near where a job queued again goes (many queued since):
            # ended as a cancel would be, freed when its queue reaches it
            # (counted until then), rather than searched for.
            self.cancel(job.handle)
            return
        self._free(job)
        self._retire(job.function)
        if self._idleWaiters:
            self._checkIdle()

    def _lateResult(self, peer: Peer, handle: bytes) -> Optional[Job]:
        """
        The job C{handle} that a policy's time limit took back from worker
        C{peer}, which now ends it late, if the job has not been taken
        again since (it waits, queued or out a backoff): its result is
        still the job's.  A worker that never asked for a limit (gearmand
        has none) is not answered an ERROR, which would end Perl's and
        PHP's workers; what else it sends for the job is ignored.

        @return: the job to end, if any; C{None} also when C{peer} is not
            owed this quiet (it is then answered ERROR as in gearmand).
        """
        if not _untake(peer, handle):
            return None
        job = self.jobs.get(handle)
        if job is not None and job.worker is None and not job.ignore:
            return job
        return None

    def workData(self, peer: Peer, handle: bytes, data: bytes) -> None:
        """
        Forward WORK_DATA to the job's clients.
        """
        job = self._heldOrRefuse(peer, handle, _NOT_FOUND_DATA)
        if job is None:
            return
        for client in job.clients:
            client.workData(job, data)

    def workWarning(self, peer: Peer, handle: bytes, data: bytes) -> None:
        """
        Forward WORK_WARNING to the job's clients.
        """
        job = self._heldOrRefuse(peer, handle, _NOT_FOUND_DATA)
        if job is None:
            return
        for client in job.clients:
            client.workWarning(job, data)

    def workStatus(self, peer: Peer, handle: bytes, numerator: bytes, denominator: bytes) -> None:
        """
        Store a job's progress and forward WORK_STATUS as sent.

        As in gearmand, each number is stored as C{(uint32_t)atoi}, and a
        denominator longer than 11 bytes (up to a NUL) leaves the stored
        denominator as it was and the packet unforwarded, without a reply.
        """
        job = self._heldOrRefuse(peer, handle, _NOT_FOUND_RESULT)
        if job is None:
            return
        job.numerator = uint32(numerator)
        stored = denominator
        if len(stored) > _MAX_DENOMINATOR:
            stored = stored.split(b"\0", 1)[0]
            if len(stored) > _MAX_DENOMINATOR:
                return
        job.denominator = uint32(stored[: _MAX_DENOMINATOR - 1])
        for client in job.clients:
            client.workStatus(job, numerator, denominator)

    def workComplete(self, peer: Peer, handle: bytes, data: bytes) -> None:
        """
        Forward WORK_COMPLETE and end the job.
        """
        job = self._heldOrRefuse(peer, handle, _NOT_FOUND_RESULT)
        if job is None:
            late = self._lateResult(peer, handle)
            if late is not None:
                # Done after all, before anyone took it again: not run
                # twice.
                self._completed(late, data)
                self._withdraw(late)
            return
        self._completed(job, data)
        self._finish(job)

    def _completed(self, job: Job, data: bytes) -> None:
        for client in job.clients:
            client.workComplete(job, data)
        function = job.function
        function.completed += 1
        if function.policy.storesResults:
            self._keepResult(job, COMPLETE, data)

    def workFail(self, peer: Peer, handle: bytes, detail: Optional[bytes] = None) -> None:
        """
        Forward WORK_FAIL and end the job.

        @param detail: what the worker sent after the handle and a NUL,
            forwarded as sent; C{None} for a bare handle.
        """
        if len(handle) > MAX_HANDLE:
            peer.error(*_HANDLE_TOO_LARGE)
            return
        job = self._held(peer, handle)
        if job is None:
            if handle == peer.lastException:
                # Perl's Gearman::Worker follows WORK_EXCEPTION with
                # WORK_FAIL; gearmand's JOB_NOT_FOUND for it makes that
                # worker die.  Accept it quietly.
                peer.lastException = None
                return
            if _untake(peer, handle):
                # Failed late, once its time limit took it back: that
                # attempt was counted then.
                return
            peer.error(*_NOT_FOUND_RESULT)
            return
        why = _WORK_FAIL if detail is None else detail
        if job.function.policy.retriesFailure(bool(job.clients)):
            self._attemptAgain(job, why)
            return
        for client in job.clients:
            client.workFail(job, detail)
        job.function.failed += 1
        self._keepDead(job, job.retries + 1, why)
        if job.function.policy.storesResults:
            self._keepResult(job, FAIL, detail or b"")
        self._finish(job)

    def workException(self, peer: Peer, handle: bytes, data: bytes) -> None:
        """
        End the job with WORK_EXCEPTION to clients that asked for exceptions
        and WORK_FAIL to the others (3.6).
        """
        job = self._heldOrRefuse(peer, handle, _NOT_FOUND_EXCEPTION)
        if job is None:
            if _untake(peer, handle):
                # As a late WORK_FAIL; Perl's WORK_FAIL after it is quiet too.
                peer.lastException = handle
            return
        peer.lastException = handle
        if job.function.policy.retriesFailure(bool(job.clients)):
            self._attemptAgain(job, data)
            return
        for client in job.clients:
            if client.exceptions:
                client.workException(job, data)
            else:
                client.workFail(job)
        job.function.exceptions += 1
        self._keepDead(job, job.retries + 1, data)
        if job.function.policy.storesResults:
            self._keepResult(job, EXCEPTION, data)
        self._finish(job)

    def _failToClients(self, job: Job) -> None:
        # gearmand 1.1.20 adds a NUL after the handle when it turns an
        # exception into WORK_FAIL; we always send the bare handle (3.6).
        for client in job.clients:
            client.workFail(job)

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
            peer.error(*_UNIQUE_TOO_LARGE)
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
                if function.policy.uniqueWindow and self._answerFromResult(peer, function, key, background):
                    return
        limit = function.maxQueue[priority]
        if limit and function.total + function.storing >= limit:
            peer.error(*_QUEUE_FULL)
            return
        if background and not unique and not when and reducer is None and len(data) <= MAX_RECORD_DATA:
            # Most background submissions: queued as a compact record
            # (once stored, with a persistent queue).
            if not self._persistent:
                number = self._nextNumber()
                function.submitted[priority] += 1
                self.runQueue.pushRecord(function, number, priority, data, self._now())
                if function.sleepers:
                    self._wake(function)
                peer.created(b"%s%d" % (self.handlePrefix, number))
                return
            if peer.batchesStores:
                self._storeRecord(peer, function, priority, data)
                return
        if background and self._persistent and reducer is None:
            job = self._create(function, unique, key, data, priority, True, when, None, False)
            self._store(job, peer, True)
            return
        job = self._create(function, unique, key, data, priority, background, when, reducer)
        if not background:
            self._attach(peer, job)
        peer.created(job.handle)

    def _nextNumber(self) -> int:
        """
        The number of the next job's handle.
        """
        last = self._lastHandle
        if last >= self._numberLimit:
            if self._wrapped or last >= 0xFFFFFFFF:
                return self._unusedNumber()
            self.reserveHandles()
        self._lastHandle = last + 1
        return last + 1

    def reserveHandles(self) -> "Deferred[Optional[str]]":
        """
        With a persistent queue, store that handle numbers up to a block
        above the last one given may be in use, so that a server started
        again on the queue (after a crash, or a standby taking over) gives
        new handles above them: no handle ever names two jobs, and a stored
        result found by handle is that job's.  The next block is stored
        when half of this one is given, long before it is needed.

        @return: fires once stored (a failure is logged, counted, and fires
            it with why).
        """
        if not self._persistent or self._wrapped:
            # Once the counter came round, numbers in use are skipped.
            return succeed(None)
        mark = min(0xFFFFFFFF, self._lastHandle + HANDLE_BLOCK)
        # Near the end the counter comes round instead (L{_unusedNumber}).
        self._numberLimit = 0xFFFFFFFF if mark == 0xFFFFFFFF else mark - HANDLE_BLOCK // 2
        stored = self._keep(
            HANDLES, [(b"next", b"%d" % (mark,))], [], [], "Persistent queue could not store the handle numbers given"
        )
        stored.addCallback(self._handlesReserved)
        return stored

    def _handlesReserved(self, why: Optional[str]) -> Optional[str]:
        if why is not None and not self._wrapped:
            # Try again soon (not at every job while the queue fails).
            self._numberLimit = min(self._numberLimit, self._lastHandle + _HANDLES_RETRY)
        return why

    def restoreAll(self, jobs: List[QueuedJob], kept: Dict[bytes, List[Tuple[bytes, bytes]]]) -> None:
        """
        Rebuild what a persistent queue kept, as a server (re)started on it:
        the replayed C{jobs}, and the records C{kept} by kind (L{KEPT}).
        The run-time policy changes first, which the rest follows; then the
        handle numbers given, stored results and dead letters, so that the
        jobs get new handles numbered above all of theirs.  Then call
        L{reserveHandles}.

        @raise QueueError: a record is corrupt.
        """
        self.restorePolicyChanges(kept.get(POLICY_CHANGES, []))
        self.restoreHandles(kept.get(HANDLES, []))
        self.restoreResults(kept.get(RESULTS, []))
        self.restoreDeadLetters(kept.get(DEAD_LETTERS, []))
        self.restoreJobs(jobs)

    def restoreHandles(self, records: List[Tuple[bytes, bytes]]) -> None:
        """
        Number new handles above those a server before this one may have
        given (the L{HANDLES} record a persistent queue kept).  Once every
        record is restored, L{reserveHandles} stores a block of this
        server's own (the service does both when it replays the queue).

        @raise QueueError: the record is not a number.
        """
        for ident, value in records:
            if ident != b"next" or not value.isdigit() or len(value) > 10:
                raise QueueError("corrupt handle numbers record")
            self._raiseHandles(int(value))

    def _raiseHandles(self, number: Optional[int]) -> None:
        """
        Give new handles numbers above C{number} (a number kept from before
        a restart), unless the counter came round or it is not ours.
        """
        if number is not None and self._lastHandle < number <= 0xFFFFFFFF:
            self._lastHandle = number

    def _unusedNumber(self) -> int:
        """
        The next handle number once the 32-bit counter has come round: the
        numbers of jobs still live and of stored results are skipped
        (gearmand would hand out a live job's handle again), so a handle
        never names two jobs the server knows of.
        """
        self._wrapped = True
        self._numberLimit = -1
        number = self._lastHandle
        runQueue, jobs, results = self.runQueue, self.jobs, self.results
        # Bounded: fewer than 2**32 jobs and results can be kept.
        while True:
            number = number % 0xFFFFFFFF + 1
            if runQueue.has(number):
                continue
            handle = self.handleOf(number)
            if handle not in jobs and handle not in results:
                self._lastHandle = number
                return number

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
            peer.created(job.handle)

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
            if uniques is NO_UNIQUES:
                uniques = function.uniques = {}
            uniques[key] = job
            if unique != b"-":
                jobs = self._uniqueJobs.get(unique)
                if jobs is None:
                    self._uniqueJobs[unique] = {job: None}
                else:
                    jobs[job] = None
        if runnable:
            if when and when > now:
                self._hold(job)
            else:
                self.runQueue.push(job)
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

    def _storeRecord(self, peer: Peer, function: Function, priority: int, data: bytes) -> None:
        """
        Store a plain background job as part of this turn's L{StoreBatch},
        answering C{peer} once the queue has it; then queue it as a record.
        (Until then its handle number is in no table; it is not given again
        meanwhile, which would take 2**32 more submissions.)
        """
        number = self._nextNumber()
        function.submitted[priority] += 1
        function.storing += 1
        batch = self._batch
        if batch is None:
            if not self.storing:
                self.reactor.callLater(0, self.flushStores)
            batch = self._batch = StoreBatch(self.handlePrefix)
        key = self._lastKey = self._lastKey + 1
        run = peer.heldRun
        if run is None or run.batch is not batch or run.function is not function or run.priority != priority:
            run = batch.run(function, priority, peer)
        run.numbers.append(number)
        run.keys.append(key)
        run.datas.append(data)
        run.records.append(packRecord(number, function.ident, priority, data, self._now(), key))

    @property
    def storing(self) -> bool:
        """
        Jobs wait to be sent to the persistent queue (L{flushStores}).
        """
        return bool(self._toStore or self._toStoreJoined) or self._batch is not None

    def flushStores(self) -> None:
        """
        Send the jobs waiting to be stored to the persistent queue as one
        batch; done at the end of each read and, for other submissions, of
        the reactor turn.
        """
        if not self.storing:
            return
        assert self.queue is not None
        new, joined, batch = self._toStore, self._toStoreJoined, self._batch
        self._toStore, self._toStoreJoined, self._batch = [], [], None
        self._sentKey = self._lastKey
        records = [
            QueuedJob(job.function.name, job.queueKey, job.unique, job.data, job.priority, job.when)  # type: ignore[arg-type]
            for job in new
            # Not cancelled in the read that submitted it.
            if job.queueKey is not None
        ]
        for job in joined:
            if job.queueKey is not None:
                # A live job: with the attempts it had, and its backoff.
                due = self._dueOf(job) if job.function.pending else 0.0
                record = QueuedJob(
                    job.function.name, job.queueKey, job.unique, job.data, job.priority, job.when, job.retries, due
                )
                records.append(record)
        stored: Sequence[QueuedJob] = records
        if batch is not None:
            if records:
                records.extend(batch.queuedJobs())
            else:
                stored = batch.queuedJobs()
        began = self.reactor.seconds()
        if not stored:
            # All ended or were cancelled before they could be sent.
            self._stored(None, new, joined, began, batch)
            return
        d = self.queue.addMany(stored)
        d.addCallbacks(
            self._stored, self._storeFailed, callbackArgs=(new, joined, began, batch), errbackArgs=(new, joined, batch)
        )

    def _dueOf(self, job: Job) -> float:
        """
        When C{job}, waiting out a backoff, is due; 0 if it is not waiting.
        """
        for due, _, pending in self._pending:
            if pending is job:
                return due if not job.when or due > job.when else 0.0
        return 0.0

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

    def _stored(
        self, _: object, new: List[Job], joined: List[Job], began: float, batch: Optional[StoreBatch] = None
    ) -> None:
        self.stats.queueLatency.observe(self.reactor.seconds() - began)
        peers = self._waitingFor(new + joined)
        if batch is not None:
            batch.done = True
            for run in batch.runs:
                function = run.function
                function.storing -= len(run.numbers)
                self.runQueue.pushRecords(function, run.priority, run.numbers, run.records)
                for _ in run.numbers:
                    if not function.sleepers:
                        break
                    self._wake(function)
            peers.update(batch.peers)
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

    def _storeFailed(
        self, failure: object, new: List[Job], joined: List[Job], batch: Optional[StoreBatch] = None
    ) -> None:
        self.stats.queueErrors += 1
        value = getattr(failure, "value", None)
        message = str(value if value is not None else "queue error").encode("utf-8", "replace")
        self.log.error(
            "Persistent queue could not store {count} jobs: {error}",
            count=len(new) + len(joined) + (len(batch) if batch is not None else 0),
            error=message.decode("utf-8"),
        )
        if batch is not None:
            batch.done = True
            batch.error = (b"QUEUE_ERROR", message)
            for run in batch.runs:
                run.function.storing -= len(run.numbers)
                self._retire(run.function)
        for job in new + joined:
            job.queueKey = None
            waiting = [job.waiting] if job.waiting is not None else []
            for peer in waiting + self._alsoWaiting.get(job, []):
                peer.refuse(job, b"QUEUE_ERROR", message)
        peers = self._waitingFor(new + joined)
        for job in new:
            job.function.storing -= 1
            self._detachClients(job)
            self._free(job)
            self._retire(job.function)
        if batch is not None:
            peers.update(batch.peers)
        for peer in peers:
            peer.release()

    def _unstore(self, job: Job) -> None:
        key = self._takeKey(job)
        if key is not None and self.queue is not None:
            self._forget(key)

    def _takeKey(self, job: Job) -> Optional[int]:
        """
        C{job} is no longer stored: the key to forget in the persistent
        queue, or C{None} if it has none there.  A job that ended in the
        read that gave it its key (cancelled, or a joined job completed)
        is left out of the batch its key would have gone in: a done for it
        would make a hole in that batch's keys, which the SQLite queue
        would count towards the batch (and delete it with a live job).
        """
        key = job.queueKey
        job.queueKey = None
        return key if key is not None and key <= self._sentKey else None

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
            self._queueFailed,
            errbackArgs=("Persistent queue could not forget {count} jobs", {"count": len(batch)}),
        )

    def restoreJobs(self, records: List[QueuedJob]) -> None:
        """
        Rebuild the background jobs replayed from the persistent queue, in
        key order.  Of the records of one function with one unique key only
        the newest is the live job new submissions with the key join: a
        submission joins a live job with its key, so the older ones are
        jobs whose end the crash kept the queue from learning (one that
        completed, or one given up whose dead letter could not be stored).
        They run again, once, without the key (at least once, as every
        job of a persistent queue).
        """
        newest: Dict[Tuple[bytes, bytes], int] = {}
        for index, record in enumerate(records):
            if record.unique:
                newest[(record.function, _restoredKey(record))] = index
        for index, record in enumerate(records):
            self.restore(record, not record.unique or newest[(record.function, _restoredKey(record))] == index)

    def restore(self, record: QueuedJob, coalesces: bool = True) -> Job:
        """
        Rebuild a background job replayed from the persistent queue; it
        gets a new handle, as in gearmand, and is not stored again.

        @param coalesces: new submissions with its unique key join it (it
            is the newest record with the key).
        """
        function = self.function(record.function)
        self._lastKey = self._sentKey = max(self._lastKey, record.key)
        key: Optional[bytes] = None
        if record.unique and coalesces:
            key = _restoredKey(record)
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
        job.retries = record.attempts
        if record.due > self.reactor.seconds():
            # Stopped while waiting out a retry's backoff.
            self._hold(job, record.due)
        else:
            self._queue(job)
        return job

    def restoreDeadLetters(self, records: List[Tuple[bytes, bytes]]) -> None:
        """
        Keep the dead letters a persistent queue kept (L{DEAD_LETTERS}
        records), oldest first; a policy's limit applies from the next one.

        @raise QueueError: a record is not a dead letter.
        """
        letters = []
        for ident, value in records:
            if ident == _LAST_IDENT:
                if not value.isdigit():
                    raise QueueError("corrupt dead letter record (the last number)")
                self.deadLetters.reserve(int(value))
            else:
                letters.append(DeadLetter.decode(value))
        for letter in sorted(letters, key=lambda letter: letter.ident):
            self.deadLetters.add(letter, None)
            # Their handles are shown and found by: new jobs get others.
            self._raiseHandles(self.handleNumber(letter.handle))

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
        self.runQueue.push(job)
        self._wake(job.function)

    def _busy(self, function: Function) -> None:
        """
        An idle function queues a job: it is no longer idle.
        """
        self._idle.pop(function, None)

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
                peer.noop()
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

    # Epoch jobs (3.12) and retries after a backoff: held aside until due,
    # then queued at the tail.

    def _hold(self, job: Job, due: Optional[float] = None) -> None:
        """
        Hold C{job} aside until C{due} (its epoch time by default), then
        queue it at its priority's tail.
        """
        job.function.pending += 1
        self._lastHold += 1
        heapq.heappush(self._pending, (job.when if due is None else due, self._lastHold, job))
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
        The epoch jobs that are not due yet, and the jobs waiting out a
        retry's backoff.
        """
        return (entry[2] for entry in self._pending)

    # Status

    def getStatus(self, handle: bytes) -> JobStatus:
        """
        What GET_STATUS answers for C{handle} (3.11).
        """
        job = self.jobs.get(handle)
        if job is None:
            number = self.handleNumber(handle)
            known = number is not None and self.runQueue.has(number)
            return JobStatus(handle, known, False, 0, 0)
        return JobStatus(handle, True, job.worker is not None, job.numerator, job.denominator)

    def getStatusUnique(self, unique: bytes) -> UniqueStatus:
        """
        What GET_STATUS_UNIQUE answers for C{unique} (3.11).
        """
        job = self._findUnique(unique) if unique else None
        if job is None:
            return UniqueStatus(unique, False, False, 0, 0, 0)
        return UniqueStatus(
            unique, True, job.worker is not None, job.numerator, job.denominator, liveCount(job.clients)
        )

    def lookupUnique(self, unique: bytes) -> Optional[Job]:
        """
        The newest live job with C{unique} in any function, as
        GET_STATUS_UNIQUE finds it.
        """
        return self._findUnique(unique) if unique else None

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
        job = self.jobs.get(handle)
        if job is None:
            number = self.handleNumber(handle)
            job = None if number is None else self.runQueue.detach(number)
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
        job.clients = NO_CLIENTS  # type: ignore[assignment]

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

    def _release(self, job: Job) -> None:
        """
        Take C{job} back from its worker: the one path by which a running job
        stops running, whether it ended (L{_finish}) or is attempted again
        (L{_requeueHeld}, L{_timedOut}, L{_attemptAgain}).  Whoever calls it calls
        L{_checkIdle} once done.
        """
        worker = job.worker
        assert worker is not None
        del worker.held[job]
        job.worker = None
        function = job.function
        function.running -= 1
        if function.policy.maxRunning and function.hasRunnable():
            # A slot under its limit opened: someone must come for the rest
            # (the queued jobs' own wake-ups found it full).
            self._wake(function)
        timer = job.timer
        if timer is not None:
            job.timer = None
            if timer.active():
                timer.cancel()

    def _finish(self, job: Job) -> None:
        """
        Free a job that its worker ended.
        """
        self._ran(job)
        self._release(job)
        self._detachClients(job)
        self._free(job)
        if self._idleWaiters:
            self._checkIdle()

    def _ran(self, job: Job) -> None:
        """
        Observe how long the attempt at C{job} its worker just ended ran,
        server-wide and for its function.
        """
        ran = self.reactor.seconds() - job.started
        self.stats.run.observe(ran)
        function = job.function
        times = function.runTimes
        if times is None:
            times = function.runTimes = Histogram()
        times.observe(ran)

    def _free(self, job: Job) -> None:
        self._forgetUnique(job)
        self.jobs.pop(job.handle, None)
        if job.queueKey is not None:
            self._unstore(job)
        if self._lettersOfJobs:
            letters = self._lettersOfJobs.pop(job, None)
            if letters:
                self._dropLetters(job.function.name, letters)

    def _dropWhenEnded(self, job: Job, letter: DeadLetter) -> None:
        """
        Forget C{letter}'s record in the persistent queue once C{job} (a
        job the queue does not store, which runs it again) has ended.
        """
        self._lettersOfJobs.setdefault(job, []).append(letter)

    # Requeue (3.7)

    def _requeueHeld(self, peer: Peer, jobs: List[Job], why: bytes) -> None:
        """
        Take C{jobs} back from C{peer}, newest grabbed first.
        """
        for job in reversed(jobs):
            self._release(job)
            self._retry(job, why)
        if self._idleWaiters:
            self._checkIdle()

    def _attemptAgain(self, job: Job, why: bytes) -> None:
        """
        A job whose policy retries failures failed: its worker is done with
        it, and it is attempted again (or given up) as one whose worker was
        lost.
        """
        self._ran(job)
        self._release(job)
        self._retry(job, why)
        if self._idleWaiters:
            self._checkIdle()

    def _timedOut(self, job: Job, byPolicy: bool = False) -> None:
        """
        A CAN_DO_TIMEOUT, or C{byPolicy} the function's time limit, ran
        out: requeue the job as if its worker was lost.  A worker that did
        not ask for a limit is not told; what it sends for the job later is
        taken quietly (L{_lateResult}).
        """
        job.timer = None
        worker = job.worker
        if worker is None:
            return
        if byPolicy:
            taken = worker.takenBack
            if taken is None:
                taken = worker.takenBack = {}
            elif len(taken) >= _TAKEN_BACK and job.handle not in taken:
                del taken[next(iter(taken))]
            # Once per time taken back: the worker may have held it twice.
            taken[job.handle] = taken.get(job.handle, 0) + 1
        self._release(job)
        job.function.timedOut += 1
        self._retry(job, _TIME_LIMIT)
        if self._idleWaiters:
            self._checkIdle()

    def _retry(self, job: Job, why: bytes) -> None:
        """
        Count an attempt that did not end C{job} (C{why} says how it
        ended), then queue it again, at once or after its policy's backoff,
        or give it up once its attempts are used up (its clients get
        WORK_FAIL; a background job may be kept as a dead letter).
        """
        if job.ignore:
            if job.clients or job.background:
                # Abandoned while running, then joined by a new submission.
                job.ignore = False
            else:
                self._forgetUnique(job)
        job.retries += 1
        policy = job.function.policy
        limit = self.jobRetries if policy.maxAttempts is None else policy.maxAttempts
        if limit and job.retries >= limit:
            self.log.info(
                "Job {handle} failed after {retries} attempts",
                handle=job.handle.decode("ascii", "replace"),
                retries=job.retries,
            )
            self._failToClients(job)
            self._detachClients(job)
            job.function.failed += 1
            self._keepDead(job, job.retries, why)
            if policy.storesResults:
                self._keepResult(job, FAIL, why)
            self._free(job)
            return
        job.numerator = job.denominator = 0
        if not job.ignore:
            job.function.retried += 1
        backoff = policy.backoff
        due = 0.0
        if backoff is not None and not job.ignore:
            delay = backoff.delay(job.retries, self._uniform)
            if delay > 0:
                due = self.reactor.seconds() + delay
        if job.queueKey is not None:
            self._update(job, due)
        if due:
            self._hold(job, due)
        else:
            self._enqueue(job)

    def _update(self, job: Job, due: float) -> None:
        """
        Store a stored job's attempts and the end of its backoff, with this
        reactor turn's other updates.
        """
        if not self._toUpdate:
            self.reactor.callLater(0, self._flushUpdates)
        self._toUpdate[job] = due

    def _flushUpdates(self) -> None:
        assert self.queue is not None
        updates, self._toUpdate = self._toUpdate, {}
        records = [
            QueuedJob(job.function.name, job.queueKey, job.unique, job.data, job.priority, job.when, job.retries, due)
            for job, due in updates.items()
            # Still stored (not ended since).
            if job.queueKey is not None
        ]
        if records:
            d = self.queue.update(records)
            failed = "Persistent queue could not store the attempts of {count} jobs"
            d.addErrback(self._queueFailed, failed, {"count": len(records)})

    # Stored results

    def _keepResult(self, job: Job, outcome: int, data: bytes) -> None:
        """
        Keep the final result of C{job}, if its function's policy keeps it;
        with a persistent queue the job is forgotten with the result kept,
        in one change.
        """
        policy = job.function.policy
        seconds = policy.keepsResultFor(job.background, job.key is not None, outcome == COMPLETE)
        if not seconds:
            return
        now = self.reactor.seconds()
        result = StoredResult(
            job.function.name, job.handle, job.unique, job.key or b"", outcome, data, now, now + seconds
        )
        dropped = self.results.add(result, policy.results)
        self._armResults()
        if self._persistent:
            key = self._takeKey(job)
            self._changeResults([result], [] if key is None else [key], dropped)

    def _changeResults(self, kept: List[StoredResult], done: List[int], dropped: List[StoredResult]) -> None:
        self._keep(
            RESULTS,
            [(result.handle, result.encode()) for result in kept],
            done,
            [r.handle for r in dropped],
            "Persistent queue could not store {kept} results and forget {dropped}",
            kept=len(kept),
            dropped=len(dropped),
        )

    def _armResults(self) -> None:
        due = self.results.nextExpiry()
        timer = self._resultsTimer
        if timer is not None and timer.active():
            if due is not None and timer.getTime() <= due:
                return
            timer.cancel()
        self._resultsTimer = None
        if due is not None:
            self._resultsTimer = self.reactor.callLater(max(0.0, due - self.reactor.seconds()), self._expireResults)

    def _expireResults(self) -> None:
        self._resultsTimer = None
        expired = self.results.expire(self.reactor.seconds())
        if expired and self._persistent:
            self._changeResults([], [], expired)
        self._armResults()

    def _answerFromResult(self, peer: Peer, function: Function, key: bytes, background: bool) -> bool:
        """
        Answer a submission with the result of the job with its key that
        completed within the function's unique window, if there is one: a
        background one JOB_CREATED with that job's handle, a foreground one
        that and WORK_COMPLETE with its data.

        @return: whether it was answered.
        """
        now = self.reactor.seconds()
        result = self.results.byKey(function.name, key, now)
        if result is None or result.outcome != COMPLETE or result.finished + function.policy.uniqueWindow <= now:
            return False
        function.answeredFromResults += 1
        peer.created(result.handle)
        if not background:
            ended = Job(result.handle, function, result.unique, key, b"", NORMAL, False, 0, None, result.finished)
            peer.workComplete(ended, result.data)
        return True

    def resultOf(self, handle: bytes) -> Optional[StoredResult]:
        """
        The stored result of the job with C{handle}, unless expired.
        """
        return self.results.byHandle(handle, self.reactor.seconds())

    def resultOfUnique(self, unique: bytes) -> Optional[StoredResult]:
        """
        The newest stored result of a job with C{unique}, unless expired.
        """
        return self.results.byUnique(unique, self.reactor.seconds())

    def restoreResults(self, records: List[Tuple[bytes, bytes]]) -> None:
        """
        Keep the results a persistent queue kept (L{RESULTS} records), but
        those expired since (forgotten there too); new job handles are
        numbered above theirs, so that a handle never names two jobs.

        @raise QueueError: a record is not a stored result.
        """
        now = self.reactor.seconds()
        results = sorted((StoredResult.decode(value) for _, value in records), key=lambda r: r.finished)
        expired = []
        for result in results:
            if result.expires <= now:
                expired.append(result)
                continue
            self.results.add(result, None)
            self._raiseHandles(self.handleNumber(result.handle))
        if expired and self._persistent:
            self._changeResults([], [], expired)
        self._armResults()

    # Dead letters

    def _keepDead(self, job: Job, attempts: int, why: bytes) -> None:
        """
        Keep a background job given up as a dead letter, if its function's
        policy keeps them.
        """
        limit = job.function.policy.deadLetters
        if not limit or not job.background:
            return
        # Forgotten with the letter kept, in one change.
        key = self._takeKey(job)
        letter = DeadLetter(
            self.deadLetters.nextIdent(),
            job.function.name,
            job.handle,
            job.unique,
            job.data,
            job.priority,
            attempts,
            why,
            job.created,
            self.reactor.seconds(),
            job.reducer,
        )
        self._keepLetter(letter, limit, key)
        job.function.deadLettered += 1

    def _keepLetter(self, letter: DeadLetter, limit: Optional[int], key: Optional[int] = None) -> None:
        """
        Keep C{letter} (dropping its function's oldest beyond C{limit}, if
        not C{None}), in
        the persistent queue too, where the job stored under C{key} is
        forgotten with it.
        """
        dropped = self.deadLetters.add(letter, limit)
        if not self._persistent:
            return
        self._keep(
            DEAD_LETTERS,
            # And the highest number given, so that a restart never gives
            # a purged letter's number again.
            [(b"%d" % (letter.ident,), letter.encode()), (_LAST_IDENT, b"%d" % (self.deadLetters.lastIdent,))],
            [] if key is None else [key],
            [b"%d" % (old.ident,) for old in dropped],
            "Persistent queue could not keep dead letter {ident} of {function}",
            ident=letter.ident,
            function=letter.function.decode("utf-8", "replace"),
        )

    def _dropLetters(self, name: bytes, letters: List[DeadLetter]) -> "Deferred[Optional[str]]":
        """
        Forget C{letters} (of function C{name}) in the persistent queue.

        @return: fires once forgotten (or with why not).
        """
        if not self._persistent or not letters:
            return succeed(None)
        return self._keep(
            DEAD_LETTERS,
            [],
            [],
            [b"%d" % (letter.ident,) for letter in letters],
            "Persistent queue could not forget {count} dead letters of {function}",
            count=len(letters),
            function=name.decode("utf-8", "replace"),
        )

    def retryDeadLetters(self, name: bytes, idents: Optional[List[int]] = None) -> int:
        """
        Submit the dead letters of function C{name} numbered C{idents} (all
        if C{None}) again, as new background jobs (a unique one joins a live
        job with its key), and forget them.

        @return: how many were submitted.
        """
        return sum(not resubmitter.refused for resubmitter in self._resubmit(name, idents))

    def retryDeadLettersWhenStored(
        self, name: bytes, idents: Optional[List[int]] = None
    ) -> "Deferred[Tuple[int, Optional[str]]]":
        """
        L{retryDeadLetters}, firing once each new job is stored (a
        persistent queue may refuse one later, which puts its letter back)
        and its letter forgotten, with how many ran again, and why the
        queue could not forget a letter if it could not (then the letter
        comes back after a restart, beside its new job).
        """
        settled = [resubmitter.settled for resubmitter in self._resubmit(name, idents)]
        d = DeferredList(settled)
        d.addCallback(
            lambda results: (
                sum(retried for _, (retried, _) in results),
                next((why for _, (_, why) in results if why is not None), None),
            )
        )
        return d  # type: ignore[return-value]

    def _resubmit(self, name: bytes, idents: Optional[List[int]]) -> List[_Resubmitter]:
        resubmitters = []
        for letter in self.deadLetters.remove(name, idents):
            resubmitter = _Resubmitter(self, letter)
            self.submit(resubmitter, name, letter.unique, letter.data, letter.priority, True, 0, letter.reducer)
            resubmitters.append(resubmitter)
        return resubmitters

    def purgeDeadLetters(self, name: bytes, idents: Optional[List[int]] = None) -> int:
        """
        Forget the dead letters of function C{name} numbered C{idents} (all
        if C{None}).

        @return: how many were forgotten.
        """
        letters = self.deadLetters.remove(name, idents)
        self._dropLetters(name, letters)
        return len(letters)

    def stopTimers(self) -> None:
        """
        Cancel the timers that would run something later (epoch jobs and
        backoffs coming due, results expiring, rate limits refilling), for
        a server that stops: the reactor is left with none of its calls.
        """
        for timer in (self._pendingTimer, self._resultsTimer):
            if timer is not None and timer.active():
                timer.cancel()
        self._pendingTimer = self._resultsTimer = None
        for function in self.functions.values():
            if function.rate is not None:
                function.rate.stop()

    # Draining

    def hasWork(self) -> bool:
        """
        Whether any job is running, queued and runnable now, or waiting out a
        retry's backoff (cancelled, abandoned and not-yet-due epoch jobs do
        not count).
        """
        if any(function.running for function in self.functions.values()) or self.runQueue.hasLive():
            return True
        # A retry's wait: held like an epoch job, but with no epoch time.
        return any(not job.when and not job.ignore for _, _, job in self._pending)

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
