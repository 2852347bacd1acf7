# -*- test-case-name: tests.test_server_deadletters -*-
"""
Dead letters: background jobs that used up their attempts, kept (per the
function's policy, C{dead-letters = N}) with what is needed to run them
again or to see why they failed, instead of being dropped.
"""

from __future__ import annotations

import dataclasses
import struct
from bisect import bisect_left
from collections import deque
from typing import Deque, Dict, Iterable, List, Optional

from gearman_tw.errors import QueueError

# The stored form: ident, priority, attempts, submitted, failed, whether
# there is a reducer, then the lengths of function, handle, unique, data,
# error and reducer, followed by those.
_STORED = struct.Struct(">QBIddB6I")


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """
    A background job given up.

    @ivar ident: its number among the server's dead letters (never reused).
    @ivar handle: the handle it had.
    @ivar error: why its last attempt ended: the worker's WORK_FAIL detail
        or WORK_EXCEPTION data, or what the server saw (C{worker lost},
        C{time limit}).
    @ivar submitted: when it was submitted, and C{failed}: given up (epoch
        seconds).
    @ivar reducer: the reducer of a background reduce job.
    """

    ident: int
    function: bytes
    handle: bytes
    unique: bytes
    data: bytes
    priority: int
    attempts: int
    error: bytes
    submitted: float
    failed: float
    reducer: Optional[bytes] = None

    def encode(self) -> bytes:
        """
        The form a persistent queue keeps.
        """
        fields = (self.function, self.handle, self.unique, self.data, self.error, self.reducer or b"")
        header = _STORED.pack(
            self.ident,
            self.priority,
            min(self.attempts, 0xFFFFFFFF),
            self.submitted,
            self.failed,
            self.reducer is not None,
            *[len(field) for field in fields],
        )
        return header + b"".join(fields)

    @classmethod
    def decode(cls, value: bytes) -> "DeadLetter":
        """
        The dead letter L{encode} gave C{value}.

        @raise QueueError: C{value} is not one.
        """
        if len(value) < _STORED.size:
            raise QueueError("corrupt dead letter record")
        ident, priority, attempts, submitted, failed, reduce, *lengths = _STORED.unpack_from(value)
        if _STORED.size + sum(lengths) != len(value):
            raise QueueError("corrupt dead letter record")
        fields = []
        offset = _STORED.size
        for length in lengths:
            fields.append(value[offset : offset + length])
            offset += length
        function, handle, unique, data, error, reducer = fields
        return cls(
            ident,
            function,
            handle,
            unique,
            data,
            priority,
            attempts,
            error,
            submitted,
            failed,
            reducer if reduce else None,
        )


class DeadLetters:
    """
    The dead letters of every function, oldest first, at most a policy's
    number per function (the oldest dropped, and counted, beyond it).

    @ivar dropped: per function name, how many were dropped for room.
    """

    def __init__(self) -> None:
        self._letters: Dict[bytes, Deque[DeadLetter]] = {}
        self.dropped: Dict[bytes, int] = {}
        self._lastIdent = 0

    def nextIdent(self) -> int:
        """
        The number for a new dead letter.
        """
        self._lastIdent += 1
        return self._lastIdent

    @property
    def lastIdent(self) -> int:
        """
        The highest number given so far.
        """
        return self._lastIdent

    def reserve(self, ident: int) -> None:
        """
        Number new letters above C{ident} (the highest a persistent queue
        remembers, of letters purged since too).
        """
        self._lastIdent = max(self._lastIdent, ident)

    def add(self, letter: DeadLetter, limit: Optional[int]) -> List[DeadLetter]:
        """
        Keep C{letter}, dropping its function's oldest beyond C{limit} (none
        if C{None}).

        @return: the letters dropped.
        """
        letters = self._letters.get(letter.function)
        if letters is None:
            letters = self._letters[letter.function] = deque()
        if letters and letters[-1].ident > letter.ident:
            # Put back (a retry refused): in its place by number, as a
            # restart restores them.
            at = bisect_left([old.ident for old in letters], letter.ident)
            letters.insert(at, letter)
        else:
            letters.append(letter)
        self._lastIdent = max(self._lastIdent, letter.ident)
        dropped = []
        while limit is not None and len(letters) > limit:
            dropped.append(letters.popleft())
            self.dropped[letter.function] = self.dropped.get(letter.function, 0) + 1
        return dropped

    def functions(self) -> Dict[bytes, int]:
        """
        How many dead letters each function with some keeps.
        """
        return {name: len(letters) for name, letters in self._letters.items()}

    def of(self, function: bytes) -> List[DeadLetter]:
        """
        C{function}'s dead letters, oldest first.
        """
        return list(self._letters.get(function, ()))

    def remove(self, function: bytes, idents: Optional[Iterable[int]] = None) -> List[DeadLetter]:
        """
        Take C{function}'s dead letters numbered C{idents} (all of them if
        C{None}) out of the store.

        @return: those taken, oldest first.
        """
        letters = self._letters.get(function)
        if not letters:
            return []
        if idents is None:
            taken = list(letters)
            kept: List[DeadLetter] = []
        else:
            wanted = set(idents)
            taken = [letter for letter in letters if letter.ident in wanted]
            kept = [letter for letter in letters if letter.ident not in wanted]
        if kept:
            self._letters[function] = deque(kept)
        else:
            del self._letters[function]
        return taken

    def __len__(self) -> int:
        return sum(len(letters) for letters in self._letters.values())
