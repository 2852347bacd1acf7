# -*- test-case-name: tests.test_queues -*-
"""
The default queue: nothing is persisted, as with gearmand's builtin queue.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from gearman_tw.interfaces import IPersistentQueue
from gearman_tw.queues import QueuedJob


@implementer(IPersistentQueue)
class MemoryQueue:
    """
    A queue that stores nothing; the job server skips it on the hot path.
    """

    name = "memory"
    persistent = False

    def open(self) -> "Deferred[None]":
        return succeed(None)

    def close(self) -> "Deferred[None]":
        return succeed(None)

    # IPersistentQueue types records as object (interfaces.py does not
    # import QueuedJob).
    def add(self, job: QueuedJob) -> "Deferred[None]":
        return succeed(None)

    def done(self, key: int) -> "Deferred[None]":
        return succeed(None)

    def addMany(self, jobs: Sequence[QueuedJob]) -> "Deferred[None]":
        return succeed(None)

    def doneMany(self, keys: List[int]) -> "Deferred[None]":
        return succeed(None)

    def replay(self) -> "Deferred[List[QueuedJob]]":
        return succeed([])

    def update(self, jobs: List[QueuedJob]) -> "Deferred[None]":
        return succeed(None)

    def keep(
        self, kind: bytes, records: List[Tuple[bytes, bytes]], done: List[int], dropped: List[bytes]
    ) -> "Deferred[None]":
        return succeed(None)

    def kept(self, kind: bytes) -> "Deferred[List[Tuple[bytes, bytes]]]":
        return succeed([])
