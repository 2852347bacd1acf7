# -*- test-case-name: tests.test_queues -*-
"""
Persistent queues for background jobs, chosen by URL:

  - C{memory} (the default): nothing persisted, as gearmand's builtin queue;
  - C{sqlite:PATH}: an embedded SQLite database (WAL, group commit);
  - C{redis://HOST:PORT/DB?namespace=NAME}: Redis, via txredisapi.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional
from urllib.parse import parse_qs, urlparse

from gearman_tw.errors import QueueError


class QueuedJob(NamedTuple):
    """
    What a persistent queue stores of a background job.

    @ivar key: the record's number, given by the job server: unique within
        the queue and increasing in submission order (replay follows it).
    @ivar unique: the job's unique key, empty for none.
    @ivar priority: 0 HIGH, 1 NORMAL, 2 LOW (gearmand's numbers).
    @ivar when: the epoch second the job may run from, 0 for at once.
    """

    function: bytes
    key: int
    unique: bytes
    data: bytes
    priority: int
    when: int = 0


def queueFromURL(url: Optional[str], reactor: Any = None) -> Any:
    """
    The persistent queue a C{--queue} URL names.

    @raise QueueError: the URL names no backend, or a backend that cannot be
        loaded.
    """
    if not url or url == "memory":
        from gearman_tw.queues.memory import MemoryQueue

        return MemoryQueue()
    if url.startswith("sqlite:"):
        from gearman_tw.queues.sqlite import SQLiteQueue

        path = url[len("sqlite:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise QueueError("sqlite: needs a path, e.g. sqlite:gearman.db")
        return SQLiteQueue(path, reactor=reactor)
    if url.startswith("redis://"):
        from gearman_tw.queues.redis import RedisQueue

        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        database = parsed.path.strip("/") or "0"
        if not database.isdigit():
            raise QueueError("redis: the database must be a number")
        return RedisQueue(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 6379,
            database=int(database),
            password=parsed.password,
            namespace=query.get("namespace", ["gearman"])[0],
            reactor=reactor,
        )
    raise QueueError("unknown queue %r: use memory, sqlite:PATH or redis://HOST:PORT/DB" % (url,))


__all__ = ["QueuedJob", "queueFromURL"]
