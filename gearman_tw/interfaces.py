# -*- test-case-name: tests.test_server_jobs -*-
"""
The interfaces of gearman_tw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from gearman_tw.queues import QueuedJob
    from gearman_tw.server.model import Job, JobStatus, Peer, UniqueStatus


class IJobServer(Interface):
    """
    The state of one Gearman job server: functions, queues, jobs and the
    connections that use them.  Every method acts at once and answers the
    connection through its reply methods; none does I/O of its own.

    Connections are represented by C{Peer} objects
    (L{gearman_tw.server.model.Peer}), whose reply methods each kind of
    connection renders its own way.
    """

    functions = Attribute("Every known function by name (bytes).")
    jobs = Attribute(
        "Live job objects by handle (bytes); queued jobs may be kept in a"
        " compact form elsewhere: lookup() finds every job, jobCount() counts them,"
        " liveJobs() lists them."
    )
    peers = Attribute("Every open connection, oldest first.")
    exceptions = Attribute("Whether new connections start with the exceptions option on.")
    replaying = Attribute("Whether what a persistent queue kept is being rebuilt (the server starts).")

    def peerConnected(peer: "Peer") -> None:
        """
        Register a new connection.
        """

    def peerLost(peer: "Peer") -> None:
        """
        Forget a closed connection, requeueing the jobs it held as a worker
        and abandoning the foreground jobs only it waited for.
        """

    def submit(
        peer: "Peer",
        name: bytes,
        unique: bytes,
        data: bytes,
        priority: int,
        background: bool,
        when: int,
        reducer: Optional[bytes],
    ) -> None:
        """
        Create a job or coalesce with a live one, and answer C{peer} with
        JOB_CREATED or ERROR.
        """

    def lookup(handle: bytes) -> Optional["Job"]:
        """
        The live job with C{handle}, or C{None}; reading it changes nothing.
        """

    def liveJobs() -> Iterable["Job"]:
        """
        Every live job, queued or running.
        """

    def jobCount() -> int:
        """
        How many jobs are live, queued or running.
        """

    def canDo(peer: "Peer", name: bytes, timeout: float) -> None:
        """
        Register C{peer} as a worker for C{name}; C{timeout} seconds (0 for
        none) bound each job's run.
        """

    def cantDo(peer: "Peer", name: bytes) -> None:
        """
        Unregister C{peer} for C{name}, requeueing its jobs of C{name}.
        """

    def resetAbilities(peer: "Peer") -> None:
        """
        Unregister C{peer} for every function, requeueing its jobs.
        """

    def preSleep(peer: "Peer") -> None:
        """
        C{peer} sleeps until a NOOP wakes it.
        """

    def grab(peer: "Peer", form: int, answerEmpty: bool) -> bool:
        """
        Answer a GRAB_JOB, GRAB_JOB_UNIQ or GRAB_JOB_ALL (C{form}, see
        L{gearman_tw.server.model.ASSIGN}) with C{peer.assign}, or with
        C{peer.noJob} unless C{answerEmpty} is false; whether a job was
        handed out.
        """

    def workData(peer: "Peer", handle: bytes, data: bytes) -> None:
        """
        Forward WORK_DATA to the job's clients.
        """

    def workWarning(peer: "Peer", handle: bytes, data: bytes) -> None:
        """
        Forward WORK_WARNING to the job's clients.
        """

    def workStatus(peer: "Peer", handle: bytes, numerator: bytes, denominator: bytes) -> None:
        """
        Record and forward WORK_STATUS.
        """

    def workComplete(peer: "Peer", handle: bytes, data: bytes) -> None:
        """
        Forward WORK_COMPLETE and end the job.
        """

    def workFail(peer: "Peer", handle: bytes, detail: Optional[bytes]) -> None:
        """
        Forward WORK_FAIL (with what followed the handle, if anything did)
        and end the job.
        """

    def workException(peer: "Peer", handle: bytes, data: bytes) -> None:
        """
        Forward WORK_EXCEPTION (or WORK_FAIL) and end the job.
        """

    def getStatus(handle: bytes) -> "JobStatus":
        """
        What GET_STATUS answers for a job handle.
        """

    def getStatusUnique(unique: bytes) -> "UniqueStatus":
        """
        What GET_STATUS_UNIQUE answers for a unique key.
        """

    def cancel(handle: bytes) -> bool:
        """
        Cancel a job; C{False} if there is no such job.
        """

    def dropFunction(name: bytes) -> Optional[bool]:
        """
        Forget an idle function: C{True} if dropped, C{False} if busy,
        C{None} if unknown.
        """

    def setMaxQueue(name: bytes, limits: Tuple[int, int, int]) -> None:
        """
        Set a function's (HIGH, NORMAL, LOW) queue limits, 0 for none.
        """

    def whenIdle(callback: Callable[[], object]) -> None:
        """
        Call C{callback} once no worker holds a job.
        """


class IGearmanClient(Interface):
    """
    Submits jobs to Gearman job servers.

    Argument errors raise at once (C{TypeError}, C{ValueError}) and nothing
    is sent; what servers and workers do arrives through the Deferreds.
    """

    servers = Attribute("The names of the servers in the pool (list of str).")

    def submit(
        function: Union[bytes, str],
        data: Union[bytes, str],
        unique: Union[bytes, str, None],
        priority: str,
        background: bool,
        when: Optional[object],
        timeout: Optional[float],
        onData: Optional[Callable[[bytes], object]],
        onWarning: Optional[Callable[[bytes], object]],
        onStatus: Optional[Callable[[int, int], object]],
    ) -> object:
        """
        Submit a job; return a task whose C{result} Deferred fires with the
        WORK_COMPLETE data (a background job's handle) or fails with
        C{JobFailed}, C{JobException}, C{ServerError}, C{ServerUnavailable},
        C{ConnectionLost} or C{JobTimeout}.
        """

    def submitJob(function: Union[bytes, str], data: Union[bytes, str]) -> "Deferred[bytes]":
        """
        Submit a job; return its result Deferred.
        """

    def submitBatch(jobs: Iterable[Any], **defaults: Any) -> "Deferred[list]":
        """
        Submit many jobs (C{(function, data)} pairs or dicts of C{submit}'s
        arguments) pipelined; fire with their results (data or Failure) in
        order.
        """

    def getStatus(handle: Union[bytes, str], server: Optional[str] = None) -> "Deferred[Any]":
        """
        Fire with a C{JobStatus} C{(known, running, numerator,
        denominator)} for a handle.
        """

    def getStatusUnique(function: Union[bytes, str], unique: Union[bytes, str]) -> "Deferred[Any]":
        """
        Fire with a C{UniqueJobStatus} C{(known, running, numerator,
        denominator, waiting)} for a unique key.
        """

    def echo(data: Union[bytes, str], server: Optional[str]) -> "Deferred[bytes]":
        """
        Fire with the data a server echoes back.
        """

    def connectedServers() -> List[str]:
        """
        The names of the servers whose connection is ready now.
        """

    def whenConnected(failFast: bool = False) -> "Deferred[None]":
        """
        A new Deferred that fires once at least one server is ready; with
        C{failFast}, that fails with L{gearman_tw.errors.ServerUnavailable}
        once every server has failed a connection attempt.
        """


class IGearmanWorker(Interface):
    """
    Runs registered functions for Gearman job servers.
    """

    functions = Attribute("The registered functions by name (bytes).")

    def register(
        name: Union[bytes, str],
        function: Callable[[Any], Any],
        timeout: Optional[float] = None,
        threaded: bool = False,
        concurrency: Optional[int] = None,
    ) -> None:
        """
        Register C{function} (taking a job, returning bytes, str or a
        Deferred of them) under C{name}, before or while running.
        """

    def unregister(name: Union[bytes, str]) -> "Deferred[None]":
        """
        Stop taking jobs of C{name}; fire once none of them runs any more.
        """

    def whenRegistered() -> "Deferred[None]":
        """
        A new Deferred that fires once every reachable server has confirmed
        every function.
        """

    def runningJobs() -> list:
        """
        The jobs running now.
        """


class IPersistentQueue(Interface):
    """
    Durable storage of background jobs, gearmand's persistent-queue contract:
    a job is stored (L{add}) before the client is told it exists, removed
    (L{done}) when it ends, and every stored job is handed back (L{replay})
    when the server starts, before it accepts connections.

    Every method returns a Deferred and never blocks the reactor.  Records
    are C{gearman_tw.queues.QueuedJob}s; C{key}, an integer the job server
    gives each record, identifies one: every add's keys are above every key
    added before (since L{open}), and the server numbers new records above
    the largest key L{replay} returned.

    Beyond gearmand's contract, a job attempted again keeps its attempts and
    the end of its backoff (L{update}), and what outlives a job, such as a
    dead letter, is kept as records of a kind (L{keep}, L{kept}).
    """

    name = Attribute("A short name of the backend, e.g. 'sqlite'.")

    def open() -> "Deferred[None]":
        """
        Connect or open storage; called once before L{replay}.
        """

    def close() -> "Deferred[None]":
        """
        Flush and release storage.
        """

    def add(job: "QueuedJob") -> "Deferred[None]":
        """
        Store C{job}; fires once it is durable, or fails with C{QueueError}.
        """

    def done(key: int) -> "Deferred[None]":
        """
        Forget the record with C{key}; fires once that is durable.
        """

    def addMany(jobs: Sequence[Any]) -> "Deferred[None]":
        """
        Store several jobs at once (the job server batches what one reactor
        turn submits); fires once all are durable.

        @param jobs: L{QueuedJob <gearman_tw.queues.QueuedJob>}s: a
            sequence, not always a list (the job server makes each job as
            it is read), which does not change.
        """

    def doneMany(keys: list) -> "Deferred[None]":
        """
        Forget the records with these keys at once.
        """

    def replay() -> "Deferred[list]":
        """
        Fire with every stored job in key order (oldest first).
        """

    def update(jobs: list) -> "Deferred[None]":
        """
        Rewrite stored jobs in place (same keys), for their C{attempts} and
        C{due}; a key no longer stored is left alone (never stored again).
        Fires once durable.
        """

    def keep(kind: bytes, records: list, done: list, dropped: list) -> "Deferred[None]":
        """
        In one atomic change: store C{records}, C{(ident, value)} pairs of
        bytes, among the records of C{kind} (replacing any with the same
        ident), forget the jobs stored under the keys C{done}, and forget
        the records of C{kind} whose idents are in C{dropped}.  A crash
        leaves all of it or none.

        Records of a kind are what outlives a job (dead letters, kind
        C{gearman_tw.queues.DEAD_LETTERS}).  A change that fails is not
        retried: the jobs in C{done} stay stored.
        """

    def kept(kind: bytes) -> "Deferred[list]":
        """
        Fire with every record of C{kind}, as C{(ident, value)} pairs.
        """


class ILease(Interface):
    """
    The right to serve a persistent queue's namespace, held by one server
    at a time: it expires C{ttl} seconds (by the database's clock) after it
    was last taken or renewed.  A queue that made a lease writes only while
    its server holds it.
    """

    ttl = Attribute("Seconds the lease lasts without a renewal.")

    def acquire() -> "Deferred[bool]":
        """
        Take the lease if nobody holds it (or extend it if this server
        does); fire with whether this server holds it now.
        """

    def renew() -> "Deferred[bool]":
        """
        Extend the lease if this server holds it; fire with whether it does.
        """

    def release() -> "Deferred[None]":
        """
        Give the lease up, if this server holds it.
        """
