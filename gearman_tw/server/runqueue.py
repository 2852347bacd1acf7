# -*- test-case-name: tests.test_server_runqueue -*-
"""
The jobs waiting to run, in each function's three FIFO queues.

Most queued jobs of a busy server are plain background jobs: no unique
key, reducer or start time, and small data.  L{RunQueue} keeps those as
compact records (L{QueuedRecord}, with the job's key in the persistent
queue if one stores it) from submission until a worker takes one, and
hands out L{Job}s only: the job server, the admin commands and the tests
never see a record.
"""

from __future__ import annotations

import itertools
import struct
from collections import deque
from typing import Callable, Deque, Dict, Iterator, List, Optional, Tuple

from gearman_tw.server.model import NO_QUEUE, NO_QUEUES, Entry, Function, Job

#: A queued background job as L{RunQueue} keeps it: one bytes object,
#: L{_RECORD} (handle number, priority, created, the function's
#: L{Function.ident}), then the data (see L{packRecord}).  A L{Job} per
#: queued job made a background submission about twice as expensive, most
#: of it in collections walking the queue; a tuple of the same fields still
#: made five objects per job for PyPy's collector to copy and mark.  Bytes
#: hold no references: neither collector looks inside them.
QueuedRecord = bytes

#: Data longer than this is not copied into a record: the job is a L{Job},
#: which keeps the bytes that arrived.
MAX_RECORD_DATA = 4096

_RECORD = struct.Struct("<IBdQ")
_RECORD_SIZE = _RECORD.size
_NUMBER = struct.Struct("<I")

#: A record of a job the persistent queue stores has this bit set in its
#: priority byte, and its L{Job.queueKey} (L{_KEY}) before the data.
_STORED = 0x80
_KEY = struct.Struct("<Q")
_STORED_RECORD = struct.Struct("<IBdQQ")
_STORED_SIZE = _STORED_RECORD.size


def packRecord(number: int, function: int, priority: int, data: bytes, created: float, key: int = 0) -> QueuedRecord:
    """
    A L{QueuedRecord} of these fields.

    @param function: the job's L{Function.ident}.
    @param key: its L{Job.queueKey} if the persistent queue stores it, or
        0.
    """
    if key:
        return _STORED_RECORD.pack(number, priority | _STORED, created, function, key) + data
    return _RECORD.pack(number, priority, created, function) + data


def unpackRecord(record: QueuedRecord) -> Tuple[int, int, int, bytes, float]:
    """
    The fields of a L{QueuedRecord}: C{(handle number, function ident,
    priority, data, created)} (its queue key: L{recordKey}).
    """
    number, priority, created, function = _RECORD.unpack_from(record)
    if priority & _STORED:
        return number, function, priority & ~_STORED, record[_STORED_SIZE:], created
    return number, function, priority, record[_RECORD_SIZE:], created


def recordKey(record: QueuedRecord) -> Optional[int]:
    """
    The L{Job.queueKey} of a L{QueuedRecord}, or C{None} if the persistent
    queue does not store its job.
    """
    if record[4] & _STORED:
        key: int = _KEY.unpack_from(record, _RECORD_SIZE)[0]
        return key
    return None


def recordNumber(record: QueuedRecord) -> int:
    """
    The handle number of a L{QueuedRecord}.
    """
    number: int = _NUMBER.unpack_from(record)[0]
    return number


class RunQueue:
    """
    Every function's queues of runnable jobs (L{Function.queues}).

    An entry is a L{Job}, or a L{QueuedRecord} while its job is a plain
    background job nobody has taken or cancelled.  A record is live while
    it is in L{_records} by its handle number; one L{detach}ed becomes a
    L{Job} in L{jobs}, and its entry is reaped when its queue reaches it,
    freeing that job if it is still there.

    @ivar jobs: the server's live L{Job}s by handle, where a taken record's
        job joins them.
    """

    def __init__(
        self,
        jobs: Dict[bytes, Job],
        handleOf: Callable[[int], bytes],
        free: Callable[[Job], None],
        busy: Callable[[Function], None],
    ) -> None:
        """
        @param jobs: see L{jobs}.
        @param handleOf: the handle of a handle number.
        @param free: called with each cancelled or abandoned L{Job} reaped
            from a queue.
        @param busy: called with a function that queues its first job since
            it was last idle.
        """
        self.jobs = jobs
        self._handleOf = handleOf
        self._free = free
        self._busy = busy
        self._records: Dict[int, QueuedRecord] = {}
        # Functions by L{Function.ident}, which is never reused: those that
        # queued a job since they were last idle (only they can have records).
        self._byIdent: Dict[int, Function] = {}
        # Every function with something in its queues (and perhaps some
        # whose queues emptied since: they are dropped when met), so that a
        # GRAB from a worker of many functions looks only at those with work.
        self._runnable: Dict[Function, None] = {}

    def __len__(self) -> int:
        """
        How many jobs are queued as records.
        """
        return len(self._records)

    # Adding

    def push(self, job: Job) -> None:
        """
        Queue C{job} at the tail of its function's queue of its priority.
        """
        function = job.function
        queue = function.queues[job.priority]
        if not queue:
            if queue.__class__ is not deque:
                queue = self._newQueue(function, job.priority)
            self._runnable[function] = None
        queue.append(job)

    def pushRecord(
        self, function: Function, number: int, priority: int, data: bytes, created: float, key: int = 0
    ) -> None:
        """
        Queue a plain background job (no unique, reducer or start time, at
        most L{MAX_RECORD_DATA} bytes of data) as a compact record.

        @param key: its L{Job.queueKey} if the persistent queue stored it.
        """
        record = packRecord(number, function.ident, priority, data, created, key)
        self._records[number] = record
        queue = function.queues[priority]
        if not queue:
            if queue.__class__ is not deque:
                queue = self._newQueue(function, priority)
            self._runnable[function] = None
        queue.append(record)

    def pushRecords(self, function: Function, priority: int, numbers: List[int], records: List[QueuedRecord]) -> None:
        """
        Queue plain background jobs of one function and priority as their
        compact records (from L{packRecord}), with their handle numbers.
        """
        self._records.update(zip(numbers, records))
        queue = function.queues[priority]
        if not queue:
            if queue.__class__ is not deque:
                queue = self._newQueue(function, priority)
            self._runnable[function] = None
        queue.extend(records)

    def _newQueue(self, function: Function, priority: int) -> Deque[Entry]:
        """
        A deque for C{function}'s jobs at C{priority}, where it has none
        (L{NO_QUEUE}).  The function is listed by its ident until it is
        idle again (L{retire}), for the records it may queue.
        """
        self._byIdent[function.ident] = function
        queues = function.queues
        if queues is NO_QUEUES:
            self._busy(function)
            queues = function.queues = [NO_QUEUE, NO_QUEUE, NO_QUEUE]  # type: ignore[list-item]
        queue: Deque[Entry] = deque()
        queues[priority] = queue
        return queue

    def retire(self, function: Function) -> None:
        """
        C{function} is idle: give up its queues.
        """
        function.queues = NO_QUEUES
        self._byIdent.pop(function.ident, None)
        self._runnable.pop(function, None)

    # Taking

    def livePriority(self, function: Function) -> Optional[int]:
        """
        The priority of C{function}'s next live queued job, or C{None}:
        the cancelled and abandoned jobs at the heads of its queues are
        freed on the way, as gearmand does on PRE_SLEEP and GRAB.
        """
        records = self._records
        for priority, queue in enumerate(function.queues):
            while queue:
                head = queue[0]
                if isinstance(head, bytes):
                    number = recordNumber(head)
                    if records.get(number) is head:
                        return priority
                    queue.popleft()
                    detached = self.jobs.get(self._handleOf(number))
                    if detached is not None:
                        self._free(detached)
                    continue
                if not head.ignore:
                    return priority
                queue.popleft()
                self._free(head)
        return None

    def take(self, function: Function) -> Optional[Job]:
        """
        Take C{function}'s next live job out of its queues (it joins
        L{jobs} if it was a record), freeing cancelled ones on the way.
        """
        priority = self.livePriority(function)
        if priority is None:
            return None
        head = function.queues[priority].popleft()
        if isinstance(head, bytes):
            job = self._job(head)
            del self._records[recordNumber(head)]
            self.jobs[job.handle] = job
            return job
        return head

    def withWork(self) -> List[Function]:
        """
        The functions with something in their queues (perhaps only jobs
        cancelled since).
        """
        runnable = self._runnable
        for function in list(runnable):
            if not function.hasRunnable():
                del runnable[function]
        return list(runnable)

    def hasLive(self) -> bool:
        """
        Whether a live job is queued (cancelled and abandoned ones do not
        count).
        """
        if self._records:
            return True
        for function in self._byIdent.values():
            for queue in function.queues:
                for entry in queue:
                    if isinstance(entry, Job) and not entry.ignore:
                        return True
        return False

    # Looking

    def oldest(self, function: Function) -> Optional[float]:
        """
        When the oldest job at the head of one of C{function}'s queues was
        submitted (a cancelled one not yet reaped included), or C{None} if
        its queues are empty.
        """
        times = []
        for queue in function.queues:
            if queue:
                head = queue[0]
                times.append(unpackRecord(head)[4] if isinstance(head, bytes) else head.created)
        return min(times) if times else None

    def has(self, number: int) -> bool:
        """
        Whether a live record has handle number C{number}.
        """
        return number in self._records

    def find(self, number: int) -> Optional[Job]:
        """
        A copy, as a L{Job}, of the queued record with handle number
        C{number}, if there is one: reading it changes nothing (the record
        stays queued; see L{detach} to act on it).
        """
        record = self._records.get(number)
        return None if record is None else self._job(record)

    def detach(self, number: int) -> Optional[Job]:
        """
        Make the queued record with handle number C{number} a L{Job} in
        L{jobs}, for a caller that will end it (the job server's cancel):
        it keeps its place in its queue, which frees it (through C{free})
        on reaching it, unless it is gone from L{jobs} by then.
        """
        record = self._records.pop(number, None)
        if record is None:
            return None
        job = self.jobs[self._handleOf(number)] = self._job(record)
        return job

    def withdraw(self, job: Job, scan: int) -> bool:
        """
        Take the queued L{Job} C{job} (not a record) out of its queue, for
        a job that ended while queued (rare: a late result); looked for
        among the C{scan} entries at the tail, where a job queued again
        goes.

        @return: whether it was found there.
        """
        queue = job.function.queues[job.priority]
        for offset, queued in enumerate(itertools.islice(reversed(queue), scan)):
            if queued is job:
                # One indexed deletion: indexing a deque costs the distance
                # to its nearer end.
                del queue[len(queue) - 1 - offset]
                return True
        return False

    def queued(self) -> Iterator[Job]:
        """
        The jobs queued as records now, as L{Job} copies, oldest first.  The
        records are noted at once; the copies are made as the iterator is
        read.
        """
        return map(self._job, list(self._records.values()))

    def _job(self, record: QueuedRecord) -> Job:
        number, ident, priority, data, created = unpackRecord(record)
        # A function with queued jobs is never dropped: it is listed.
        job = Job(self._handleOf(number), self._byIdent[ident], b"", None, data, priority, True, 0, None, created)
        if record[4] & _STORED:
            job.queueKey = recordKey(record)
        return job
