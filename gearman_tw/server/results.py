# -*- test-case-name: tests.test_server_results -*-
"""
Stored results: the final result of a job (its WORK_COMPLETE data, or how
it failed) kept for a time, per the function's policy (C{keep-results},
C{unique-window}), so that it can be fetched after the job has ended, by
its handle or its unique key, and a submission with the same unique key
can be answered from it.
"""

from __future__ import annotations

import dataclasses
import heapq
import struct
from typing import Dict, Iterator, List, Optional, Tuple

from gearman_tw.errors import QueueError

#: How a job ended: L{StoredResult.outcome}.
COMPLETE = 0
FAIL = 1
EXCEPTION = 2

#: The outcomes by name, as the admin command and the JSON API show them.
OUTCOME_NAMES = ("complete", "fail", "exception")

# The stored form: finished, expires, outcome, then the lengths of
# function, handle, unique, key and data, followed by those.
_STORED = struct.Struct(">ddB5I")


@dataclasses.dataclass(frozen=True)
class StoredResult:
    """
    The final result of one job.

    @ivar unique: its unique key as submitted (empty for none).
    @ivar key: the key it coalesced by (the unique, or C{-} and its data),
        empty for none: a submission with that key may be answered from
        this result (C{unique-window}).
    @ivar outcome: L{COMPLETE}, L{FAIL} or L{EXCEPTION}.
    @ivar data: the WORK_COMPLETE data, the WORK_EXCEPTION data, or why it
        failed (the worker's WORK_FAIL words, C{worker lost}...).
    @ivar finished: when it ended, and C{expires}: until when it is kept
        (epoch seconds).
    """

    function: bytes
    handle: bytes
    unique: bytes
    key: bytes
    outcome: int
    data: bytes
    finished: float
    expires: float

    def encode(self) -> bytes:
        """
        The form a persistent queue keeps.
        """
        fields = (self.function, self.handle, self.unique, self.key, self.data)
        header = _STORED.pack(self.finished, self.expires, self.outcome, *[len(field) for field in fields])
        return header + b"".join(fields)

    @classmethod
    def decode(cls, value: bytes) -> "StoredResult":
        """
        The result L{encode} gave C{value}.

        @raise QueueError: C{value} is not one.
        """
        if len(value) < _STORED.size:
            raise QueueError("corrupt stored result record")
        finished, expires, outcome, *lengths = _STORED.unpack_from(value)
        if _STORED.size + sum(lengths) != len(value) or outcome >= len(OUTCOME_NAMES):
            raise QueueError("corrupt stored result record")
        fields = []
        offset = _STORED.size
        for length in lengths:
            fields.append(value[offset : offset + length])
            offset += length
        function, handle, unique, key, data = fields
        return cls(function, handle, unique, key, outcome, data, finished, expires)


class Results:
    """
    The stored results of every function: found by handle, by unique key,
    and by a function's coalescing key; at most a policy's number per
    function (the oldest dropped beyond it), each until it expires.
    """

    def __init__(self) -> None:
        self._byHandle: Dict[bytes, StoredResult] = {}
        # The results by unique (C{-} excluded), across functions, each by
        # handle, oldest first: the newest is found, and once it goes the
        # one before.
        self._byUnique: Dict[bytes, Dict[bytes, StoredResult]] = {}
        # The newest result by (function, coalescing key).
        self._byKey: Dict[Tuple[bytes, bytes], StoredResult] = {}
        # Each function's results by handle, oldest first.
        self._perFunction: Dict[bytes, Dict[bytes, StoredResult]] = {}
        # (expires, sequence, result): a heap; entries of results gone
        # since are skipped when met.
        self._expiring: List[Tuple[float, int, StoredResult]] = []
        self._sequence = 0

    def add(self, result: StoredResult, limit: Optional[int]) -> List[StoredResult]:
        """
        Keep C{result} (replacing one with its handle), dropping its
        function's oldest beyond C{limit} (none if C{None}).

        @return: the results dropped for room.
        """
        self._remove(self._byHandle.get(result.handle))
        self._byHandle[result.handle] = result
        if result.unique and result.unique != b"-":
            self._byUnique.setdefault(result.unique, {})[result.handle] = result
        if result.key:
            self._byKey[(result.function, result.key)] = result
        kept = self._perFunction.setdefault(result.function, {})
        kept[result.handle] = result
        self._sequence += 1
        heapq.heappush(self._expiring, (result.expires, self._sequence, result))
        dropped = []
        while limit is not None and len(kept) > limit:
            oldest = kept[next(iter(kept))]
            self._remove(oldest)
            dropped.append(oldest)
        if len(self._expiring) > 2 * len(self._byHandle) + 64:
            # Results dropped for room or replaced leave their entries
            # until they expire: past twice the live ones, start afresh.
            self._expiring = [entry for entry in self._expiring if self._byHandle.get(entry[2].handle) is entry[2]]
            heapq.heapify(self._expiring)
        return dropped

    def _remove(self, result: Optional[StoredResult]) -> None:
        if result is None or self._byHandle.get(result.handle) is not result:
            return
        del self._byHandle[result.handle]
        same = self._byUnique.get(result.unique)
        if same is not None and same.get(result.handle) is result:
            del same[result.handle]
            if not same:
                del self._byUnique[result.unique]
        if self._byKey.get((result.function, result.key)) is result:
            del self._byKey[(result.function, result.key)]
        kept = self._perFunction[result.function]
        del kept[result.handle]
        if not kept:
            del self._perFunction[result.function]

    def byHandle(self, handle: bytes, now: float) -> Optional[StoredResult]:
        """
        The result of the job with C{handle}, unless expired.
        """
        return _live(self._byHandle.get(handle), now)

    def byUnique(self, unique: bytes, now: float) -> Optional[StoredResult]:
        """
        The newest result of a job with C{unique} in any function that has
        not expired.
        """
        for result in reversed(self._byUnique.get(unique, {}).values()):
            if result.expires > now:
                return result
        return None

    def byKey(self, function: bytes, key: bytes, now: float) -> Optional[StoredResult]:
        """
        The newest result of a job of C{function} that coalesced by C{key},
        unless expired.
        """
        return _live(self._byKey.get((function, key)), now)

    def of(self, function: bytes) -> List[StoredResult]:
        """
        C{function}'s results, oldest first (expired ones too, until
        L{expire} takes them).
        """
        return list(self._perFunction.get(function, {}).values())

    def functions(self) -> Dict[bytes, int]:
        """
        How many results each function with some keeps.
        """
        return {name: len(kept) for name, kept in self._perFunction.items()}

    def nextExpiry(self) -> Optional[float]:
        """
        When the next result expires, if any is kept.
        """
        expiring = self._expiring
        while expiring and self._byHandle.get(expiring[0][2].handle) is not expiring[0][2]:
            heapq.heappop(expiring)
        return expiring[0][0] if expiring else None

    def expire(self, now: float) -> List[StoredResult]:
        """
        Forget the results that expired by C{now}.

        @return: those forgotten.
        """
        expired = []
        expiring = self._expiring
        while expiring and expiring[0][0] <= now:
            result = heapq.heappop(expiring)[2]
            if self._byHandle.get(result.handle) is result:
                self._remove(result)
                expired.append(result)
        return expired

    def __contains__(self, handle: object) -> bool:
        """
        Whether a result (expired or not, until L{expire} takes it) is kept
        for the job with C{handle}.
        """
        return handle in self._byHandle

    def __iter__(self) -> Iterator[StoredResult]:
        return iter(list(self._byHandle.values()))

    def __len__(self) -> int:
        return len(self._byHandle)


def _live(result: Optional[StoredResult], now: float) -> Optional[StoredResult]:
    return result if result is not None and result.expires > now else None
