# -*- test-case-name: tests.test_server_deadletters -*-
"""
Dead letters: background jobs that used up their attempts, kept (per the
function's policy, C{dead-letters = N}) with what is needed to run them
again or to see why they failed, instead of being dropped.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Deque, Dict, Iterable, List, Optional


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

    def add(self, letter: DeadLetter, limit: int) -> None:
        """
        Keep C{letter}, dropping its function's oldest beyond C{limit}.
        """
        letters = self._letters.get(letter.function)
        if letters is None:
            letters = self._letters[letter.function] = deque()
        letters.append(letter)
        while len(letters) > limit:
            letters.popleft()
            self.dropped[letter.function] = self.dropped.get(letter.function, 0) + 1

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
