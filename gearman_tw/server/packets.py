# -*- test-case-name: tests.test_server_packets -*-
"""
The job server's replies as Gearman packets.

L{PacketPeer} is a binary-protocol connection as the job server sees it:
each reply the server makes (L{gearman_tw.server.model.Peer}) becomes a
packet, and packets are gathered while the server handles a read (a
L{WriteBatch <gearman_tw.server.writes.WriteBatch>}) and sent in one write
when it ends.  A JOB_CREATED that waits for the persistent queue holds the
replies after it, so a connection sees its replies in the order it asked.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Tuple, Union

from gearman_tw.protocol import HEADER, RES, PacketType, encode
from gearman_tw.server.model import ASSIGN, ASSIGN_ALL, Job, Peer, StoredRun
from gearman_tw.server.writes import WriteBatch

_NOOP = encode(PacketType.NOOP)
_NO_JOB = encode(PacketType.NO_JOB)
_WORK_DATA = int(PacketType.WORK_DATA)
_WORK_WARNING = int(PacketType.WORK_WARNING)
_WORK_STATUS = int(PacketType.WORK_STATUS)
_WORK_COMPLETE = int(PacketType.WORK_COMPLETE)
_WORK_FAIL = int(PacketType.WORK_FAIL)
_WORK_EXCEPTION = int(PacketType.WORK_EXCEPTION)
_JOB_CREATED = int(PacketType.JOB_CREATED)

#: JOB_CREATED's header for each handle length a server gives.
_CREATED_HEADS = [HEADER.pack(RES, _JOB_CREATED, size) for size in range(256)]

#: ERROR packets by (code, text): the server refuses with a few of them.
_ERRORS: Dict[Tuple[bytes, bytes], bytes] = {}


def _packet(ptype: int, handle: bytes, data: bytes) -> bytes:
    """
    A packet of C{handle}, a NUL and C{data}.
    """
    return b"".join((HEADER.pack(RES, ptype, len(handle) + 1 + len(data)), handle, b"\0", data))


def _jobCreated(handle: bytes) -> bytes:
    size = len(handle)
    return (_CREATED_HEADS[size] if size < 256 else HEADER.pack(RES, _JOB_CREATED, size)) + handle


class _LastForwarded:
    """
    The last large packet forwarded to a job's clients, so that a job of
    many clients encodes each worker packet once.
    """

    __slots__ = ("data", "handle", "packet", "ptype")

    def __init__(self) -> None:
        self.ptype = 0
        self.handle = self.data = self.packet = b""

    def encode(self, ptype: int, handle: bytes, data: bytes) -> bytes:
        """
        The packet of C{ptype} with C{handle} and C{data}.
        """
        if data is self.data and handle is self.handle and ptype == self.ptype:
            return self.packet
        packet = _packet(ptype, handle, data)
        if len(data) > 64:
            self.ptype, self.handle, self.data, self.packet = ptype, handle, data, packet
        return packet


_forwarded = _LastForwarded()


def _createdAll(prefix: bytes, numbers: List[int]) -> bytes:
    """
    The JOB_CREATED packets of the handles C{prefix} and each of
    C{numbers}: in one join where, as usual, the numbers have as many
    digits each.
    """
    digits = list(map(b"%d".__mod__, numbers))
    if not digits:
        return b""
    head = _jobCreated(prefix + digits[0])[: -len(digits[0])]
    if len(set(map(len, digits))) == 1:
        return head + head.join(digits)
    return b"".join([_jobCreated(prefix + number) for number in digits])


class PacketPeer(Peer):
    """
    A binary-protocol connection: replies are encoded as packets and sent
    through C{send}.

    While C{batch} is active (the server is handling a read), what is
    written is gathered and sent in one call when the batch ends; otherwise
    it is sent at once.
    """

    __slots__ = ("_batch", "_out", "_replies", "_send")

    batchesStores = True

    def __init__(
        self,
        send: Callable[[bytes], object],
        fd: int,
        host: str,
        exceptions: bool = False,
        batch: Optional[WriteBatch] = None,
    ) -> None:
        """
        @param send: writes bytes to the connection.
        @param batch: the server's batch of writes; none (every write sent
            at once) by default.
        """
        super().__init__(fd, host, exceptions)
        self._send = send
        self._batch = WriteBatch() if batch is None else batch
        self._out: List[bytes] = []
        # The replies after a JOB_CREATED that waits for the persistent
        # queue: bytes, the jobs whose JOB_CREATED it is (L{hold}), and
        # runs of jobs whose JOB_CREATED they are (L{holdCreated}).
        self._replies: Optional[Deque[Union[bytes, Job, StoredRun]]] = None

    def write(self, data: bytes) -> None:
        """
        Send C{data} (encoded packets or admin text) after the replies
        before it.
        """
        if self._replies is not None:
            self._replies.append(data)
            self.heldRun = None
        else:
            self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        out = self._out
        if out:
            out.append(data)
        elif self._batch.active:
            out.append(data)
            self._batch.defer(self.flush)
        else:
            self._send(data)

    def flush(self) -> None:
        """
        Send what was gathered during the batch, in one write.
        """
        out = self._out
        if out:
            data = b"".join(out) if len(out) > 1 else out[0]
            out.clear()
            self._send(data)

    def lose(self) -> None:
        Peer.lose(self)
        self._send = _discard
        self._replies = None
        self.heldRun = None
        self._out.clear()

    # Answers to a submission

    def created(self, handle: bytes) -> None:
        data = _jobCreated(handle)
        # Every submission's reply: the common case (more replies of one
        # read, nothing held) appends without a further call (measured: 6%
        # of a background submission's cost through write()).
        out = self._out
        if out and self._replies is None:
            out.append(data)
        else:
            self.write(data)

    def hold(self, job: Job) -> None:
        if self._replies is None:
            self._replies = deque()
        self._replies.append(job)
        self.heldRun = None

    def holdCreated(self, run: StoredRun) -> None:
        if self._replies is None:
            self._replies = deque()
        self._replies.append(run)
        self.heldRun = run
        run.batch.peers[self] = None

    def refuse(self, job: Job, code: bytes, text: bytes) -> None:
        replies = self._replies
        if replies is not None and job in replies:
            replies[replies.index(job)] = encode(PacketType.ERROR, code, text)

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
            if isinstance(head, bytes):
                ready.append(head)
            elif isinstance(head, StoredRun):
                batch = head.batch
                if not batch.done:
                    break
                if batch.error is None:
                    ready.append(_createdAll(batch.handlePrefix, head.numbers))
                else:
                    ready.append(encode(PacketType.ERROR, *batch.error) * len(head.numbers))
            elif head.waiting is None:
                ready.append(_jobCreated(head.handle))
            else:
                break
            replies.popleft()
        if not replies:
            self._replies = None
            self.heldRun = None
        if ready:
            # Ahead of any reply still held.
            self._deliver(b"".join(ready))

    def error(self, code: bytes, text: bytes) -> None:
        key = (code, text)
        packet = _ERRORS.get(key)
        if packet is None:
            packet = encode(PacketType.ERROR, code, text)
            if len(_ERRORS) < 64:
                _ERRORS[key] = packet
        self.write(packet)

    # Replies to a worker

    def noop(self) -> None:
        self.write(_NOOP)

    def noJob(self) -> None:
        self.write(_NO_JOB)

    def assign(self, job: Job, form: int) -> None:
        if form == ASSIGN:
            packet = encode(PacketType.JOB_ASSIGN, job.handle, job.function.name, job.data)
        elif form == ASSIGN_ALL and job.reducer is not None:
            packet = encode(
                PacketType.JOB_ASSIGN_ALL, job.handle, job.function.name, job.unique, job.reducer, job.data
            )
        else:
            packet = encode(PacketType.JOB_ASSIGN_UNIQ, job.handle, job.function.name, job.unique, job.data)
        self.write(packet)

    # A job's progress and end

    def workData(self, job: Job, data: bytes) -> None:
        self.write(_forwarded.encode(_WORK_DATA, job.handle, data))

    def workWarning(self, job: Job, data: bytes) -> None:
        self.write(_forwarded.encode(_WORK_WARNING, job.handle, data))

    def workStatus(self, job: Job, numerator: bytes, denominator: bytes) -> None:
        self.write(encode(PacketType.WORK_STATUS, job.handle, numerator, denominator))

    def workComplete(self, job: Job, data: bytes) -> None:
        self.write(_forwarded.encode(_WORK_COMPLETE, job.handle, data))

    def workFail(self, job: Job, detail: Optional[bytes] = None) -> None:
        if detail is None:
            self.write(encode(PacketType.WORK_FAIL, job.handle))
        else:
            self.write(_packet(_WORK_FAIL, job.handle, detail))

    def workException(self, job: Job, data: bytes) -> None:
        self.write(_forwarded.encode(_WORK_EXCEPTION, job.handle, data))


def _discard(data: bytes) -> None:
    """
    Drop bytes written to a lost connection.
    """
