# -*- test-case-name: tests.test_queues -*-
"""
The stored form of queued jobs, shared by the SQLite and Redis queues: each
record is a header (key, priority, when, then the lengths of function,
unique and data) followed by those three, and records go back to back.

A job attempted before (L{QueuedJob.attempts}, L{QueuedJob.due}) has the
high bit of its priority byte set and a second header (attempts, due)
after the first; records written before attempts were kept have neither
and read as never attempted.
"""

from __future__ import annotations

import struct
from typing import Iterator, List

from gearman_tw.errors import QueueError
from gearman_tw.queues import QueuedJob

#: The header of a record (key, priority, when, then the lengths of
#: function, unique and data); the whole of it for a job never attempted.
HEADER = struct.Struct(">QBqIII")
_ATTEMPTS = struct.Struct(">Id")

# Set in the priority byte of a record with the second header.
_ATTEMPTED = 0x80

#: The most attempts a record holds (more are stored as this many).
MAX_ATTEMPTS = 0xFFFFFFFF


def encodeRecord(job: QueuedJob) -> bytes:
    """
    The stored form of one job.
    """
    function, key, unique, data, priority, when, attempts, due = job
    if attempts or due:
        header = HEADER.pack(key, priority | _ATTEMPTED, when, len(function), len(unique), len(data))
        header += _ATTEMPTS.pack(min(attempts, MAX_ATTEMPTS), due)
    else:
        header = HEADER.pack(key, priority, when, len(function), len(unique), len(data))
    return b"".join((header, function, unique, data))


def encodeRecords(jobs: List[QueuedJob]) -> bytes:
    """
    The stored form of C{jobs}, back to back.
    """
    return b"".join([encodeRecord(job) for job in jobs])


def decodeRecords(blob: bytes) -> Iterator[QueuedJob]:
    """
    The jobs stored in C{blob}.

    @raise QueueError: the blob is cut short.
    """
    unpack = HEADER.unpack_from
    header = HEADER.size
    offset = 0
    end = len(blob)
    while offset < end:
        if end - offset < header:
            raise QueueError("corrupt queue record")
        key, priority, when, functionLength, uniqueLength, dataLength = unpack(blob, offset)
        offset += header
        attempts, due = 0, 0.0
        if priority & _ATTEMPTED:
            priority &= ~_ATTEMPTED
            if end - offset < _ATTEMPTS.size:
                raise QueueError("corrupt queue record")
            attempts, due = _ATTEMPTS.unpack_from(blob, offset)
            offset += _ATTEMPTS.size
        stop = offset + functionLength + uniqueLength + dataLength
        if stop > end:
            raise QueueError("corrupt queue record")
        function = blob[offset : offset + functionLength]
        offset += functionLength
        unique = blob[offset : offset + uniqueLength]
        offset += uniqueLength
        yield QueuedJob(function, key, unique, blob[offset:stop], priority, when, attempts, due)
        offset = stop
