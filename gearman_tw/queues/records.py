# -*- test-case-name: tests.test_queues -*-
"""
The stored form of queued jobs, shared by the SQLite and Redis queues: each
record is a header (key, priority, when, then the lengths of function,
unique and data) followed by those three, and records go back to back.
"""

from __future__ import annotations

import struct
from typing import Iterator, List

from gearman_tw.errors import QueueError
from gearman_tw.queues import QueuedJob

_RECORD = struct.Struct(">QBqIII")


def encodeRecords(jobs: List[QueuedJob]) -> bytes:
    """
    The stored form of C{jobs}, back to back.
    """
    pack = _RECORD.pack
    return b"".join(
        [
            pack(key, priority, when, len(function), len(unique), len(data)) + function + unique + data
            for function, key, unique, data, priority, when in jobs
        ]
    )


def decodeRecords(blob: bytes) -> Iterator[QueuedJob]:
    """
    The jobs stored in C{blob}.

    @raise QueueError: the blob is cut short.
    """
    unpack = _RECORD.unpack_from
    header = _RECORD.size
    offset = 0
    end = len(blob)
    while offset < end:
        if end - offset < header:
            raise QueueError("corrupt queue record")
        key, priority, when, functionLength, uniqueLength, dataLength = unpack(blob, offset)
        offset += header
        stop = offset + functionLength + uniqueLength + dataLength
        if stop > end:
            raise QueueError("corrupt queue record")
        function = blob[offset : offset + functionLength]
        offset += functionLength
        unique = blob[offset : offset + uniqueLength]
        offset += uniqueLength
        yield QueuedJob(function, key, unique, blob[offset:stop], priority, when)
        offset = stop
