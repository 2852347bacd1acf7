# -*- test-case-name: tests.integration.differential.test_jobs -*-
"""
Differential tests of the reference's section 3: job semantics (coalescing,
queue order, NOOP, retries, disconnects, CAN_DO_TIMEOUT, C{maxqueue},
status, epoch jobs).
"""

from __future__ import annotations

import time
from typing import Callable, Sequence, Tuple

from tests.integration.differential.harness import (
    CAN_DO,
    CAN_DO_TIMEOUT,
    CANT_DO,
    CLOSED,
    GET_STATUS,
    GET_STATUS_UNIQUE,
    GRAB_JOB,
    GRAB_JOB_UNIQ,
    JOB_ASSIGN,
    JOB_ASSIGN_UNIQ,
    NO_JOB_,
    NOOP_,
    NOT_FOUND_RESULT,
    OK,
    OPTION_REQ,
    OPTION_RES,
    PRE_SLEEP,
    QUEUE_FULL,
    RESET_ABILITIES,
    SUBMIT_JOB,
    SUBMIT_JOB_BG,
    SUBMIT_JOB_EPOCH,
    SUBMIT_JOB_HIGH,
    SUBMIT_JOB_HIGH_BG,
    SUBMIT_JOB_LOW,
    SUBMIT_JOB_LOW_BG,
    SUBMIT_REDUCE_JOB,
    WORK_COMPLETE,
    WORK_DATA,
    WORK_EXCEPTION,
    WORK_FAIL,
    WORK_STATUS,
    WORK_WARNING,
    DifferentialTestCase,
    Script,
    created,
    incomplete,
    pkt,
    status,
    statusUnique,
)


def _future(seconds: int = 3600) -> bytes:
    """
    An epoch C{seconds} from now, as SUBMIT_JOB_EPOCH takes it.
    """
    return b"%d" % (int(time.time()) + seconds,)


class CoalescingTests(DifferentialTestCase):
    """
    Reference section 3.3: unique coalescing.
    """

    def test_emptyUnique(self) -> None:
        """
        An empty unique never coalesces (3.3).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:3"))
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:4"))
        s.do("c", GET_STATUS_UNIQUE, b"", expect=statusUnique(b"", 0, 0, 0, 0, 0))
        s.admin("a", b"status\n", expect=b"f\t4\t0\t0\n.\n")
        self.compare(s)

    def test_dashUnique(self) -> None:
        """
        Unique C{-} coalesces on function and workload; with empty data it
        never does (3.3).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"-", b"data", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB_BG, b"f", b"-", b"data", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"-", b"other", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB, b"g", b"-", b"data", expect=created(b"T:3"))
        s.do("c", SUBMIT_JOB, b"f", b"-", b"", expect=created(b"T:4"))
        s.do("c", SUBMIT_JOB, b"f", b"-", b"", expect=created(b"T:5"))
        s.do("c", SUBMIT_JOB_HIGH, b"f", b"-", b"data", expect=created(b"T:1"))
        # gearmand never finds a C{-} job by unique, neither as C{-} nor
        # as its data, and a job whose unique equals the data is separate.
        s.do("c", GET_STATUS_UNIQUE, b"-", expect=statusUnique(b"-", 0, 0, 0, 0, 0))
        s.do("c", GET_STATUS_UNIQUE, b"data", expect=statusUnique(b"data", 0, 0, 0, 0, 0))
        s.do("c", SUBMIT_JOB, b"f", b"data", b"zzz", expect=created(b"T:6"))
        s.do("c", SUBMIT_JOB, b"f", b"x", b"y", expect=created(b"T:7"))
        s.do("c", SUBMIT_JOB, b"f", b"-", b"x", expect=created(b"T:8"))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:1\0f\0-\0data"))
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:2\0f\0-\0other"))
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:4\0f\0-\0"))
        self.compare(s)

    def test_dashUniqueListing(self) -> None:
        """
        How C{show unique jobs} lists a C{-} job (3.3, 4.2).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_BG, b"f", b"-", b"data", expect=created(b"T:1"))
        s.admin("a", b"show unique jobs\n")
        self.compare(s)

    def test_dashAndEmpty(self) -> None:
        """
        C{-} coalesces on equal data only, and never with empty data; an
        empty unique never coalesces; C{show unique jobs} lists them all
        (3.3, 4.2).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"-", b"x", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"-", b"x", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"-", b"y", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB, b"g", b"-", b"x", expect=created(b"T:3"))
        s.do("c", SUBMIT_JOB, b"f", b"-", b"", expect=created(b"T:4"))
        s.do("c", SUBMIT_JOB, b"f", b"-", b"", expect=created(b"T:5"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:6"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:7"))
        s.admin("c", b"show unique jobs\n")
        self.compare(s)

    def test_namedUnique(self) -> None:
        """
        Another unique coalesces with a live job of the same function, queued
        or running, whatever its priority (the first one stays); not across
        functions, nor after the job ended.  A client that submitted twice
        gets the result twice (3.3).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c1", SUBMIT_JOB, b"f", b"u", b"first", expect=created(b"T:1"))
        s.do("c2", SUBMIT_JOB_HIGH, b"f", b"u", b"second", expect=created(b"T:1"))
        s.admin("a", b"prioritystatus\n", expect=b"f\t0\t1\t0\t1\n.\n")
        s.do("c3", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 0, 0, 0, 2))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0first"))
        s.do("w", WORK_DATA, b"T:1", b"early", c1=(WORK_DATA, b"T:1\0early"), c2=(WORK_DATA, b"T:1\0early"))
        s.do("c4", SUBMIT_JOB, b"f", b"u", b"fourth", expect=created(b"T:1"), c1=[], c2=[])
        s.do("c3", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 1, 0, 0, 3))
        s.do("c3", SUBMIT_JOB, b"g", b"u", b"third", expect=created(b"T:2"))
        s.do("c2", SUBMIT_JOB, b"f", b"u", b"late", expect=created(b"T:1"))
        s.do(
            "w",
            WORK_COMPLETE,
            b"T:1",
            b"done",
            expect=[],
            c1=(WORK_COMPLETE, b"T:1\0done"),
            c2=[(WORK_COMPLETE, b"T:1\0done")] * 2,
            c3=[],
            c4=(WORK_COMPLETE, b"T:1\0done"),
        )
        s.do("c1", SUBMIT_JOB, b"f", b"u", b"again", expect=created(b"T:3"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:3\0f\0again"))
        self.compare(s)

    def test_statusUniqueAcrossFunctions(self) -> None:
        """
        GET_STATUS_UNIQUE finds a live job of any function; with the unique
        in two functions, gearmand answers for the newest job (3.11).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB_BG, b"g", b"u", b"x", expect=created(b"T:2"))
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 0, 0, 0, 0))
        s.do("c", SUBMIT_JOB_BG, b"g", b"v", b"x", expect=created(b"T:3"))
        s.do("c", SUBMIT_JOB, b"f", b"v", b"x", expect=created(b"T:4"))
        s.do("c", GET_STATUS_UNIQUE, b"v", expect=statusUnique(b"v", 1, 0, 0, 0, 1))
        s.do("w", CAN_DO, b"g")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0g\0x"))
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 1, 0, 0, 0))
        s.do("w", WORK_COMPLETE, b"T:2", b"")
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 0, 0, 0, 1))
        self.compare(s)

    def test_firstSubmissionWins(self) -> None:
        """
        A coalesced submit keeps the first data and priority: a later HIGH
        does not promote; maxqueue is not checked (3.3).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"a", b"1", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"b", b"2", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB_HIGH, b"f", b"b", b"3", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB_LOW_BG, b"f", b"a", b"4", expect=created(b"T:1"))
        s.admin("a", b"prioritystatus\n", expect=b"f\t0\t2\t0\t0\n.\n")
        s.admin("a", b"maxqueue f 1\n", expect=OK)
        s.do("c", SUBMIT_JOB, b"f", b"b", b"5", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB, b"f", b"c", b"6", expect=QUEUE_FULL)
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\x002"))
        self.compare(s)

    def test_sameConnectionTwice(self) -> None:
        """
        One connection submitting the same unique twice gets every later
        packet twice (3.3).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB_LOW, b"f", b"u", b"y", expect=created(b"T:1"))
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 0, 0, 0, 2))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_STATUS, b"T:1", b"1", b"2", c=[(WORK_STATUS, b"T:1\x001\x002")] * 2)
        s.do("w", WORK_WARNING, b"T:1", b"w", c=[(WORK_WARNING, b"T:1\0w")] * 2)
        s.do("w", WORK_DATA, b"T:1", b"d", c=[(WORK_DATA, b"T:1\0d")] * 2)
        s.do("w", WORK_FAIL, b"T:1", c=[(WORK_FAIL, b"T:1")] * 2)
        s.do("c", SUBMIT_JOB, b"f", b"v", b"x", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB, b"f", b"v", b"x", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB, b"f", b"v", b"x", expect=created(b"T:2"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\0x"))
        s.do("w", WORK_COMPLETE, b"T:2", b"r", c=[(WORK_COMPLETE, b"T:2\0r")] * 3)
        self.compare(s)

    def test_backgroundAttachesNothing(self) -> None:
        """
        A background submit coalescing onto a foreground job gets
        JOB_CREATED only; a foreground submit onto a background job gets
        the results (3.3).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("fg", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("bg", SUBMIT_JOB_BG, b"f", b"u", b"y", expect=created(b"T:1"))
        s.do("bg", SUBMIT_JOB_BG, b"f", b"v", b"z", expect=created(b"T:2"))
        s.do("fg", SUBMIT_JOB, b"f", b"v", b"z", expect=created(b"T:2"))
        s.do("bg", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 0, 0, 0, 1))
        s.do("bg", GET_STATUS_UNIQUE, b"v", expect=statusUnique(b"v", 1, 0, 0, 0, 1))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_COMPLETE, b"T:1", b"1", fg=(WORK_COMPLETE, b"T:1\x001"), bg=[])
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\0z"))
        s.do("w", WORK_COMPLETE, b"T:2", b"2", fg=(WORK_COMPLETE, b"T:2\x002"), bg=[])
        self.compare(s)

    def test_backgroundOntoForeground(self) -> None:
        """
        A background submit coalescing onto a foreground job attaches
        nothing: only the foreground client gets the result (3.3).
        """
        s = Script()
        s.open("fg")
        s.open("bg")
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("fg", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("bg", SUBMIT_JOB_BG, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_COMPLETE, b"T:1", b"r", expect=[], fg=(WORK_COMPLETE, b"T:1\0r"), bg=[])
        self.compare(s)


def _roundRobinScript(order: Sequence[Tuple[int, bytes]], workers: bytes) -> Script:
    """
    A worker of C{e}, C{f} and C{g} submits two jobs of each and grabs them
    all: in C{order} (handle number, function), then NO_JOB; C{workers}
    is what the admin C{workers} list shows after.
    """
    s = Script()
    s.do("w", CAN_DO, b"e")
    s.do("w", CAN_DO, b"f")
    s.do("w", CAN_DO, b"g")
    number = 0
    for name in (b"e", b"f", b"g"):
        for _ in range(2):
            number += 1
            s.do("w", SUBMIT_JOB_BG, name, b"", name, expect=created(b"T:%d" % (number,)))
    for handle, name in order:
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:%d\0%s\0%s" % (handle, name, name)))
    s.do("w", GRAB_JOB, expect=NO_JOB_)
    s.admin("w", b"workers\n", expect=workers)
    return s


class QueueOrderTests(DifferentialTestCase):
    """
    Reference section 3.4: queue order and dispatch.
    """

    def test_fifo(self) -> None:
        """
        Jobs of one priority run in submission order (3.4).
        """
        s = Script()
        for number in range(1, 6):
            s.do("c", SUBMIT_JOB_BG, b"f", b"", b"%d" % (number,), expect=created(b"T:%d" % (number,)))
        s.do("w", CAN_DO, b"f")
        for number in range(1, 6):
            s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:%d\0f\0%d" % (number, number)))
        self.compare(s)

    def test_fifoAndPriority(self) -> None:
        """
        FIFO within a priority, HIGH before NORMAL before LOW, whatever the
        order of submission and foreground or background (3.4).
        """
        s = Script()
        submits = [
            (SUBMIT_JOB_LOW, b"l1"),
            (SUBMIT_JOB, b"n1"),
            (SUBMIT_JOB_HIGH, b"h1"),
            (SUBMIT_JOB_LOW_BG, b"l2"),
            (SUBMIT_JOB_BG, b"n2"),
            (SUBMIT_JOB_HIGH_BG, b"h2"),
        ]
        for number, (ptype, data) in enumerate(submits, 1):
            s.do("c", ptype, b"f", b"", data, expect=created(b"T:%d" % (number,)))
        s.do("w", CAN_DO, b"f", expect=[])
        for number, data in [(3, b"h1"), (6, b"h2"), (2, b"n1"), (5, b"n2"), (1, b"l1"), (4, b"l2")]:
            s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:%d\0f\0%s" % (number, data)))
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        self.compare(s)

    def test_newestFunctionFirst(self) -> None:
        """
        GRAB tries the worker's functions newest CAN_DO first (C{workers}
        lists them so), and priority only orders jobs within a function: a
        LOW job of the newest beats a HIGH job of an older one (3.4).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_HIGH_BG, b"f", b"", b"fh", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB_LOW_BG, b"g", b"", b"gl", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB_BG, b"g", b"", b"gn", expect=created(b"T:3"))
        s.do("c", SUBMIT_JOB_BG, b"e", b"", b"en", expect=created(b"T:4"))
        s.do("w", CAN_DO, b"e")
        s.do("w", CAN_DO, b"f")
        s.do("w", CAN_DO, b"g")
        s.admin("w", b"workers\n", expect=b"FD 127.0.0.1 - : g f e\nFD 127.0.0.1 - :\n.\n")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:3\0g\0gn"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0g\0gl"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0fh"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:4\0e\0en"))
        s.do("w", CAN_DO, b"e")
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"f2", expect=created(b"T:5"))
        s.do("c", SUBMIT_JOB_BG, b"e", b"", b"e2", expect=created(b"T:6"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:6\0e\0e2"))
        self.compare(s)

    def test_roundRobin(self) -> None:
        """
        With C{--round-robin} the function served moves to the end of the
        worker's list (3.4).
        """
        order = [(5, b"g"), (3, b"f"), (1, b"e"), (6, b"g"), (4, b"f"), (2, b"e")]
        self.compare(_roundRobinScript(order, b"FD 127.0.0.1 - : g f e\n.\n"), "--round-robin")

    def test_noRoundRobin(self) -> None:
        """
        Without C{--round-robin} the newest function is drained first (3.4).
        """
        order = [(5, b"g"), (6, b"g"), (3, b"f"), (4, b"f"), (1, b"e"), (2, b"e")]
        self.compare(_roundRobinScript(order, b"FD 127.0.0.1 - : g f e\n.\n"))

    def test_withoutRoundRobin(self) -> None:
        """
        Without C{--round-robin}, jobs a client submitted alternating
        between two functions are grabbed newest function first (3.4).
        """
        s = Script()
        for number, (name, data) in enumerate(
            [(b"fa", b"fa0"), (b"fb", b"fb0"), (b"fa", b"fa1"), (b"fb", b"fb1")], 1
        ):
            s.do("c", SUBMIT_JOB, name, b"", data, expect=created(b"T:%d" % (number,)))
        s.do("w", CAN_DO, b"fa", expect=[])
        s.do("w", CAN_DO, b"fb", expect=[])
        for number, name, data in [(2, b"fb", b"fb0"), (4, b"fb", b"fb1"), (1, b"fa", b"fa0"), (3, b"fa", b"fa1")]:
            s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:%d\0%s\0%s" % (number, name, data)))
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        self.compare(s)

    def test_requeueToTail(self) -> None:
        """
        A job whose worker disconnects goes to the tail of its queue, with
        a retry counted (3.4, 3.7).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"", b"1", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"2", expect=created(b"T:2"))
        s.do("w1", CAN_DO, b"f")
        s.do("w1", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("w1", WORK_STATUS, b"T:1", b"1", b"3", c=(WORK_STATUS, b"T:1\x001\x003"))
        s.close("w1", c=[])
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 0, 0, 0))
        s.admin("a", b"show jobs\n", expect=b"T:1\t1\t0\t0\nT:2\t0\t0\t0\n.\n")
        s.do("w2", CAN_DO, b"f")
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\x002"))
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("w2", WORK_COMPLETE, b"T:1", b"r", c=(WORK_COMPLETE, b"T:1\0r"))
        self.compare(s)

    def test_requeueNewestGrabbedFirst(self) -> None:
        """
        A lost worker's jobs are requeued newest grabbed first (3.4).
        """
        s = Script()
        for number in range(1, 5):
            s.do("c", SUBMIT_JOB_BG, b"f", b"", b"%d" % (number,), expect=created(b"T:%d" % (number,)))
        s.do("w1", CAN_DO, b"f")
        for number in range(1, 4):
            s.do("w1", GRAB_JOB, expect=(JOB_ASSIGN, b"T:%d\0f\0%d" % (number, number)))
        s.close("w1")
        s.do("w2", CAN_DO, b"f")
        for number in (4, 3, 2, 1):
            s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:%d\0f\0%d" % (number, number)))
        s.do("w2", GRAB_JOB, expect=NO_JOB_)
        self.compare(s)

    def test_requeueNewestGrabbedFirstAndWakes(self) -> None:
        """
        A worker holding two jobs disconnects: they are requeued newest
        grabbed first, and a sleeping worker is NOOPed (3.4, 3.5).
        """
        s = Script()
        s.open("c")
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"a", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"b", expect=created(b"T:2"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0a"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\0b"))
        s.do("s", CAN_DO, b"f", expect=[])
        s.do("s", PRE_SLEEP, expect=[])
        s.close("w", s=NOOP_)
        s.do("s", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\0b"))
        s.do("s", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0a"))
        s.do("s", GRAB_JOB, expect=NO_JOB_)
        self.compare(s)

    def test_cancelledStayQueued(self) -> None:
        """
        A cancelled queued job stays queued and counted until a GRAB reaches
        it; then it is freed silently and the next job is tried (3.4, 4.2).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"", b"1", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"2", expect=created(b"T:2"))
        s.admin("a", b"cancel job T:1\n", expect=OK, c=(WORK_FAIL, b"T:1"))
        s.admin("a", b"status\n", expect=b"f\t2\t0\t0\n.\n")
        s.admin("a", b"show jobs\n", expect=b"T:1\t0\t1\t0\nT:2\t0\t0\t0\n.\n")
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 0, 0, 0))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\x002"))
        s.admin("a", b"status\n", expect=b"f\t1\t1\t1\n.\n")
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 0, 0, 0, 0))
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        self.compare(s)


class NoopTests(DifferentialTestCase):
    """
    Reference section 3.5: PRE_SLEEP and NOOP.
    """

    def test_sleepAndWake(self) -> None:
        """
        A sleeping worker gets one NOOP per GRAB cycle when a job arrives,
        and one at once if it sleeps with jobs queued; awake workers and
        sleepers of other functions get none (3.5).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("awake", CAN_DO, b"f")
        s.do("other", CAN_DO, b"g")
        s.do("other", PRE_SLEEP, expect=[])
        s.do("w", PRE_SLEEP, expect=[])
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"1", expect=created(b"T:1"), w=NOOP_, awake=[], other=[])
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"2", expect=created(b"T:2"), w=[])
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"3", expect=created(b"T:3"), w=[])
        s.do("w", PRE_SLEEP, expect=NOOP_)
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\x002"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:3\0f\x003"))
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        s.do("w", PRE_SLEEP, expect=[])
        s.do("c", SUBMIT_JOB_LOW, b"f", b"", b"4", expect=created(b"T:4"), w=NOOP_, awake=[], other=[])
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:4\0f\0\x004"))
        s.do("w", PRE_SLEEP, expect=[])
        s.do("w", WORK_COMPLETE, b"T:4", b"", expect=[], c=(WORK_COMPLETE, b"T:4\0"))
        self.compare(s)

    def test_onlySleepersOfTheFunction(self) -> None:
        """
        Awake workers and sleeping workers of other functions get no NOOP
        (3.5).
        """
        s = Script()
        s.do("awake", CAN_DO, b"f")
        s.do("other", CAN_DO, b"g")
        s.do("other", PRE_SLEEP)
        s.do("both", CAN_DO, b"g")
        s.do("both", CAN_DO, b"f")
        s.do("both", PRE_SLEEP)
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"), awake=[], other=[], both=NOOP_)
        s.do("c", SUBMIT_JOB, b"g", b"", b"y", expect=created(b"T:2"), awake=[], other=NOOP_, both=[])
        self.compare(s)

    def test_preSleepWithQueuedJob(self) -> None:
        """
        PRE_SLEEP with a runnable job for one of the worker's functions gets
        a NOOP at once (3.5).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_BG, b"g", b"", b"x", expect=created(b"T:1"))
        s.do("w", CAN_DO, b"f")
        s.do("w", PRE_SLEEP, expect=[])
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        s.do("w", CAN_DO, b"g")
        s.do("w", PRE_SLEEP, expect=NOOP_)
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0g\0x"))
        s.do("w", PRE_SLEEP, expect=[])
        self.compare(s)

    def test_canDoWhileSleeping(self) -> None:
        """
        A worker that registers a function while asleep is woken by that
        function's jobs.
        """
        s = Script()
        s.do("w", PRE_SLEEP, expect=[])
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        self.compare(s)

    def test_requeueWakesSleepers(self) -> None:
        """
        A requeued job NOOPs the function's sleeping workers (3.5, 3.7).
        """
        s = Script()
        s.do("w1", CAN_DO, b"f")
        s.do("w2", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("w1", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w2", GRAB_JOB, expect=NO_JOB_)
        s.do("w2", PRE_SLEEP, expect=[])
        s.do("w1", CANT_DO, b"f", expect=[], w2=NOOP_)
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w3", CAN_DO, b"f")
        s.do("w3", PRE_SLEEP, expect=[])
        s.close("w2", w3=NOOP_)
        self.compare(s)

    def test_workerWakeupOne(self) -> None:
        """
        With C{--worker-wakeup 1} each job NOOPs at most one sleeper, with a
        rotating start (3.5).
        """
        s = Script()
        for worker in ("A", "B", "C"):
            s.do(worker, CAN_DO, b"f")
            s.do(worker, PRE_SLEEP)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"1", A=NOOP_, B=[], C=[])
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"2", A=[], B=NOOP_, C=[])
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"3", A=[], B=[], C=NOOP_)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"4", A=[], B=[], C=[])
        for worker in ("C", "A", "B"):
            s.do(worker, GRAB_JOB)
        for worker in ("B", "C", "A"):
            s.do(worker, PRE_SLEEP, expect=NOOP_)
        for worker in ("A", "B", "C"):
            s.do(worker, GRAB_JOB)
            s.do(worker, GRAB_JOB, expect=NO_JOB_)
            s.do(worker, PRE_SLEEP, expect=[])
        for number in range(5, 9):
            s.do("c", SUBMIT_JOB_BG, b"f", b"", b"%d" % (number,))
        self.compare(s, "--worker-wakeup", "1")

    def test_wakeupOneWithRequeue(self) -> None:
        """
        With C{--worker-wakeup 1} a requeued job also NOOPs just one of the
        sleepers (3.5, 3.7).
        """
        s = Script()
        s.do("holder", CAN_DO, b"f", expect=[])
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("holder", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("a", CAN_DO, b"f", expect=[])
        s.do("b", CAN_DO, b"f", expect=[])
        s.do("a", PRE_SLEEP, expect=[])
        s.do("b", PRE_SLEEP, expect=[])
        s.close("holder")
        for world in self.compare(s, "--worker-wakeup", "1"):
            self.assertIn(world.steps[-1], [{"a": [NOOP_]}, {"b": [NOOP_]}], world.name)

    def test_wakeOneOurs(self) -> None:
        """
        By default each new job NOOPs one sleeping worker, in turn (a
        deliberate difference: gearmand NOOPs every sleeper, 3.5, which
        costs 60+ ms with 5,000 sleeping workers).
        """
        s = Script()
        for worker in ("A", "B", "C"):
            s.do(worker, CAN_DO, b"f")
            s.do(worker, PRE_SLEEP)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"1", A=NOOP_, B=[], C=[])
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"2", A=[], B=NOOP_, C=[])
        self.ours(s)

    def test_preSleepTwiceOurs(self) -> None:
        """
        PRE_SLEEP again after a NOOP but without a GRAB still gets the
        worker woken by the next job (3.5: gearmand never wakes it again).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("w", PRE_SLEEP)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"1", expect=created(b"T:1"), w=NOOP_)
        s.do("other", CAN_DO, b"f")
        s.do("other", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("w", PRE_SLEEP, expect=[])
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"2", expect=created(b"T:2"), w=NOOP_)
        self.ours(s)


class RetryTests(DifferentialTestCase):
    """
    Reference section 3.7: worker loss and C{--job-retries}.
    """

    def test_jobRetriesTwo(self) -> None:
        """
        With C{-j 2} the first loss requeues (num/den reset) and the second
        fails the job to its clients with a bare-handle WORK_FAIL (3.7).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("w1", CAN_DO, b"f")
        s.do("w1", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w1", WORK_STATUS, b"T:1", b"1", b"2", c=(WORK_STATUS, b"T:1\x001\x002"))
        s.close("w1", c=[])
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 0, 0, 0))
        s.admin("a", b"show jobs\n", expect=b"T:1\t1\t0\t0\n.\n")
        s.do("w2", CAN_DO, b"f")
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.close("w2", c=(WORK_FAIL, b"T:1"))
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 0, 0, 0, 0))
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 0, 0, 0, 0, 0))
        s.admin("a", b"status\n", expect=b"f\t0\t0\t0\n.\n")
        s.admin("a", b"show jobs\n", expect=b".\n")
        self.compare(s, "--job-retries", "2")

    def test_jobRetriesCantDo(self) -> None:
        """
        CANT_DO and RESET_ABILITIES count as losses for C{-j} too, however a
        job was lost before; a background job just ends (3.7).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"bg", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"fg", expect=created(b"T:2"))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0bg"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\0fg"))
        s.do("w", CANT_DO, b"f", c=[])
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\0fg"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0bg"))
        s.do("w", RESET_ABILITIES, c=(WORK_FAIL, b"T:2"))
        s.admin("a", b"status\n", expect=b"f\t0\t0\t0\n.\n")
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        # Two CANT_DOs, re-registering in the same write each time.
        s.do("c", SUBMIT_JOB, b"f", b"", b"again", expect=created(b"T:3"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:3\0f\0again"))
        s.send("w", pkt(CANT_DO, b"f") + pkt(CAN_DO, b"f"), expect=[], c=[])
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:3\0f\0again"))
        s.send("w", pkt(CANT_DO, b"f") + pkt(CAN_DO, b"f"), expect=[], c=(WORK_FAIL, b"T:3"))
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        self.compare(s, "--job-retries", "2")

    def test_unlimitedRetries(self) -> None:
        """
        By default jobs are requeued however often their workers are lost
        (3.7).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        for attempt in range(4):
            worker = "w%d" % (attempt,)
            s.do(worker, CAN_DO, b"f")
            s.do(worker, GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
            s.close(worker, c=[])
        s.admin("a", b"show jobs\n", expect=b"T:1\t4\t0\t0\n.\n")
        self.compare(s)

    def test_jobRetriesOne(self) -> None:
        """
        With C{-j 1} the first loss fails the job (3.7).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.close("w", c=(WORK_FAIL, b"T:1"))
        self.compare(s, "--job-retries", "1")


def _requeueScript(lose: Callable[[Script], object], holderStays: bool) -> Script:
    """
    The holder of the oldest of two jobs, which reported status, loses it
    by C{lose}: the job is requeued at the tail, unannounced, with its
    status reset, and a sleeping worker is told; the next worker gets the
    other job first.  If C{holderStays}, its late result is not found.
    """
    s = Script()
    s.do("c", SUBMIT_JOB, b"f", b"", b"a", expect=created(b"T:1"))
    s.do("c", SUBMIT_JOB, b"f", b"", b"b", expect=created(b"T:2"))
    s.do("w1", CAN_DO, b"f", expect=[])
    s.do("w1", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0a"))
    s.do("w1", WORK_STATUS, b"T:1", b"1", b"2", expect=[], c=(WORK_STATUS, b"T:1\x001\x002"))
    s.do("sleeper", CAN_DO, b"f", expect=[])
    # Job 2 is queued: the NOOP comes at once.
    s.do("sleeper", PRE_SLEEP, expect=NOOP_)
    lose(s)
    s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 0, 0, 0))
    s.do("w2", CAN_DO, b"f", expect=[])
    s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\0b"))
    s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0a"))
    s.do("w2", GRAB_JOB, expect=NO_JOB_)
    if holderStays:
        s.do("w1", WORK_COMPLETE, b"T:1", b"late", expect=NOT_FOUND_RESULT)
    s.do("w2", WORK_COMPLETE, b"T:1", b"r", expect=[], c=(WORK_COMPLETE, b"T:1\0r"))
    return s


class RequeueTests(DifferentialTestCase):
    """
    Reference sections 3.4 and 3.7: each way a worker loses a job requeues
    it to the tail; retries.
    """

    def test_disconnect(self) -> None:
        """
        The holder disconnects: its job goes to the tail, unannounced.
        """
        self.compare(_requeueScript(lambda s: s.close("w1", c=[]), holderStays=False))

    def test_cantDo(self) -> None:
        """
        CANT_DO requeues the held job to the tail; the old holder's result
        gets JOB_NOT_FOUND.
        """
        self.compare(_requeueScript(lambda s: s.do("w1", CANT_DO, b"f", expect=[], c=[]), holderStays=True))

    def test_resetAbilities(self) -> None:
        """
        RESET_ABILITIES requeues the held job to the tail; the old holder's
        result gets JOB_NOT_FOUND.
        """
        self.compare(_requeueScript(lambda s: s.do("w1", RESET_ABILITIES, expect=[], c=[]), holderStays=True))

    def test_jobRetries(self) -> None:
        """
        C{--job-retries 2}: requeued after the first worker loss, failed to
        the client with a bare-handle WORK_FAIL after the second; then it is
        gone (3.7).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"", b"a", expect=created(b"T:1"))
        s.do("w0", CAN_DO, b"f", expect=[])
        s.do("w0", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0a"))
        s.close("w0", c=[])
        s.do("w1", CAN_DO, b"f", expect=[])
        s.do("w1", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0a"))
        s.close("w1", c=(WORK_FAIL, b"T:1"))
        s.admin("c", b"status\n", expect=b"f\t0\t0\t0\n.\n")
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 0, 0, 0, 0))
        self.compare(s, "--job-retries", "2")

    def test_canDoTimeout(self) -> None:
        """
        CAN_DO_TIMEOUT of 1 ms (read as 1 s): the job is requeued after the
        timeout; the worker is not told and its late result gets
        JOB_NOT_FOUND; another worker gets the job (3.9).
        """
        s = Script()
        s.open("c")
        s.do("w", CAN_DO_TIMEOUT, b"f", b"1", expect=[])
        s.do("c", SUBMIT_JOB, b"f", b"", b"a", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0a"))
        s.wait(0.5, w=[], c=[])
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 1, 0, 0))
        s.wait(1.0, w=[], c=[])
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 0, 0, 0))
        s.do("w", WORK_COMPLETE, b"T:1", b"late", expect=NOT_FOUND_RESULT)
        s.do("w2", CAN_DO, b"f", expect=[])
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0a"))
        s.admin("w", b"workers\n")
        self.compare(s)


class ClientDisconnectTests(DifferentialTestCase):
    """
    Reference section 3.8: clients going away.
    """

    def test_queuedJobAbandoned(self) -> None:
        """
        A queued foreground job whose only client leaves is marked ignored,
        still counted and known, and freed at the next GRAB without running
        (3.8).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.close("c")
        s.admin("a", b"status\n", expect=b"f\t1\t0\t0\n.\n")
        s.admin("a", b"show jobs\n", expect=b"T:1\t0\t1\t0\n.\n")
        s.do("a", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 0, 0, 0))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        s.admin("a", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s)

    def test_abandonedJobUniqueOurs(self) -> None:
        """
        An abandoned queued job gives up its unique: a new submit with it
        makes a new job that runs and answers (a deliberate difference:
        gearmand coalesces onto the dead job and the client waits forever,
        3.8).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.close("c")
        s.do("a", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 0, 0, 0, 0, 0))
        s.do("c2", SUBMIT_JOB, b"f", b"u", b"y", expect=created(b"T:2"))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\0y"))
        self.ours(s)

    def test_queuedJobAbandonedNoUnique(self) -> None:
        """
        An abandoned queued job without a unique is never run: the next
        GRAB gets NO_JOB (3.8).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.close("c")
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        s.admin("a", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        s.do("a", GET_STATUS, b"T:1", expect=status(b"T:1", 0, 0, 0, 0))
        self.compare(s)

    def test_runningJobAbandoned(self) -> None:
        """
        A running job whose client leaves finishes; the worker's WORK_*
        are accepted silently (3.8).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.close("c")
        s.admin("a", b"show jobs\n", expect=b"T:1\t0\t1\t0\n.\n")
        s.do("w", WORK_DATA, b"T:1", b"d", expect=[])
        s.do("w", WORK_STATUS, b"T:1", b"1", b"2", expect=[])
        s.do("a", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 1, 1, 2))
        s.do("w", WORK_COMPLETE, b"T:1", b"r", expect=[])
        s.admin("a", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s)

    def test_otherClientKeepsJob(self) -> None:
        """
        Other attached clients keep a job alive when one leaves (3.8).
        """
        s = Script()
        s.do("c1", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("c2", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.close("c1")
        s.admin("a", b"show jobs\n", expect=b"T:1\t0\t0\t0\n.\n")
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_COMPLETE, b"T:1", b"r", expect=[], c2=(WORK_COMPLETE, b"T:1\0r"))
        self.compare(s)

    def test_backgroundJobSurvives(self) -> None:
        """
        A background job runs with no client at all (3.8).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:1"))
        s.close("c")
        s.admin("a", b"show jobs\n", expect=b"T:1\t0\t0\t1\n.\n")
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        self.compare(s)

    def test_coalescedBackgroundKeptOurs(self) -> None:
        """
        A background job that a foreground submit coalesced onto, or that
        coalesced onto a foreground job, still runs when the foreground
        client leaves (3.8: gearmand drops it).
        """
        s = Script()
        s.do("bg", SUBMIT_JOB_BG, b"f", b"u", b"1", expect=created(b"T:1"))
        s.do("fg", SUBMIT_JOB, b"f", b"u", b"1", expect=created(b"T:1"))
        s.do("fg", SUBMIT_JOB, b"f", b"v", b"2", expect=created(b"T:2"))
        s.do("bg", SUBMIT_JOB_BG, b"f", b"v", b"2", expect=created(b"T:2"))
        s.close("fg")
        s.admin("a", b"show jobs\n", expect=b"T:1\t0\t0\t1\nT:2\t0\t0\t0\n.\n")
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\x002"))
        self.ours(s)

    def test_coalescedBackgroundSurvivesOurs(self) -> None:
        """
        A background submit coalesced onto a foreground job keeps the job
        alive when the foreground client leaves, and it runs (3.8: gearmand
        drops it).
        """
        s = Script()
        s.do("fg", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("bg", SUBMIT_JOB_BG, b"f", b"u", b"x", expect=created(b"T:1"))
        s.close("fg")
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        self.ours(s)

    def test_coalescedBackgroundGearmand(self) -> None:
        """
        What gearmand does with a background job a foreground submit
        coalesced onto when that client leaves (3.8 says: dropped).
        """
        s = Script()
        s.do("bg", SUBMIT_JOB_BG, b"f", b"u", b"1", expect=created(b"T:1"))
        s.do("fg", SUBMIT_JOB, b"f", b"u", b"1", expect=created(b"T:1"))
        s.close("fg")
        s.admin("a", b"show jobs\n", expect=b"T:1\t0\t1\t0\n.\n")
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        self.gearmand(s)


class CanDoTimeoutTests(DifferentialTestCase):
    """
    Reference section 3.9: CAN_DO_TIMEOUT (real time: 1 s minimum).
    """

    def test_timeoutRequeues(self) -> None:
        """
        An expired CAN_DO_TIMEOUT (500 ms read as 1 s) requeues the job at
        the tail with a retry; nobody is told; the worker stays registered
        and its late WORK_COMPLETE gets JOB_NOT_FOUND (3.9).
        """
        s = Script()
        s.do("w", CAN_DO_TIMEOUT, b"f", b"500")
        s.do("c", SUBMIT_JOB, b"f", b"", b"1", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"2", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB_BG, b"g", b"", b"3", expect=created(b"T:3"))
        s.do("c", SUBMIT_JOB_BG, b"g", b"", b"4", expect=created(b"T:4"))
        # 0 and negative timeouts mean none.
        s.do("z", CAN_DO_TIMEOUT, b"g", b"0")
        s.do("z", GRAB_JOB, expect=(JOB_ASSIGN, b"T:3\0g\x003"))
        s.do("n", CAN_DO_TIMEOUT, b"g", b"-5")
        s.do("n", GRAB_JOB, expect=(JOB_ASSIGN, b"T:4\0g\x004"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.wait(0.6, w=[], c=[])
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 1, 0, 0))
        s.wait(0.7, w=[], c=[])
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 0, 0, 0))
        s.do("c", GET_STATUS, b"T:3", expect=status(b"T:3", 1, 1, 0, 0))
        s.do("c", GET_STATUS, b"T:4", expect=status(b"T:4", 1, 1, 0, 0))
        s.admin("a", b"status\n", expect=b"f\t2\t0\t1\ng\t2\t2\t2\n.\n")
        s.do("w", WORK_COMPLETE, b"T:1", b"late", expect=NOT_FOUND_RESULT, c=[])
        s.do("w2", CAN_DO, b"f")
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\x002"))
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("w2", WORK_COMPLETE, b"T:2", b"r", c=(WORK_COMPLETE, b"T:2\0r"))
        s.do("z", WORK_COMPLETE, b"T:3", b"r", expect=[])
        s.do("n", WORK_COMPLETE, b"T:4", b"r", expect=[])
        s.admin("a", b"show jobs\n", expect=b"T:1\t1\t0\t0\n.\n", c=[])
        s.do("w2", WORK_COMPLETE, b"T:1", b"r", c=(WORK_COMPLETE, b"T:1\0r"))
        self.compare(s)

    def test_timeoutWithRetries(self) -> None:
        """
        With C{-j 1} an expired CAN_DO_TIMEOUT fails the job to its client
        (3.7, 3.9).
        """
        s = Script()
        s.do("w", CAN_DO_TIMEOUT, b"f", b"1")
        s.do("c", SUBMIT_JOB, b"f", b"", b"1", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.wait(1.3, c=(WORK_FAIL, b"T:1"), w=[])
        s.admin("a", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s, "--job-retries", "1")

    def test_canDoTimeoutJunkAndExceptionToBackground(self) -> None:
        """
        CAN_DO_TIMEOUT with a junk number registers without a timeout; a
        WORK_EXCEPTION for a background job goes nowhere and ends it
        (3.6, 3.9).
        """
        s = Script()
        s.open("c")
        s.do("w", CAN_DO_TIMEOUT, b"f", b"junk", expect=[])
        s.admin("w", b"workers\n")
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_STATUS, b"T:1", b"1", b"3", expect=[])
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 1, 1, 3))
        s.do("w", WORK_EXCEPTION, b"T:1", b"e", expect=[], c=[])
        s.admin("c", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s)


class MaxQueueTests(DifferentialTestCase):
    """
    Reference section 3.10: C{maxqueue} and QUEUE_ERROR.
    """

    def test_oneLimit(self) -> None:
        """
        C{maxqueue f n} limits queued plus running jobs of every priority,
        foreground and background, but a submit that coalesces is not
        checked; C{maxqueue f} lifts the limit (3.10).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"u", b"0", expect=created(b"T:1"))
        s.admin("a", b"maxqueue f 2\r\n", expect=OK)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"1", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"2", expect=QUEUE_FULL)
        s.do("c", SUBMIT_JOB, b"f", b"u", b"0", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB_HIGH_BG, b"f", b"", b"3", expect=QUEUE_FULL)
        s.do("c", SUBMIT_JOB_LOW, b"f", b"", b"4", expect=QUEUE_FULL)
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", b"1", b"5", expect=QUEUE_FULL)
        s.do("c", SUBMIT_REDUCE_JOB, b"f", b"", b"r", b"a", b"6", expect=QUEUE_FULL)
        s.do("c", SUBMIT_JOB, b"g", b"", b"7", expect=created(b"T:3"))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x000"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"8", expect=QUEUE_FULL)
        s.do("w", WORK_COMPLETE, b"T:1", b"", c=[(WORK_COMPLETE, b"T:1\0")] * 2)
        s.do("c", SUBMIT_JOB, b"f", b"", b"9", expect=created(b"T:4"))
        s.admin("a", b"maxqueue f\n", expect=OK)
        s.do("c", SUBMIT_JOB, b"f", b"", b"10", expect=created(b"T:5"))
        self.compare(s)

    def test_twoAndThreeLimits(self) -> None:
        """
        Two numbers set HIGH and NORMAL (LOW unlimited); three set all; each
        submit compares the total with its own priority's limit; junk or a
        negative number lifts that priority's limit (3.10).
        """
        s = Script()
        s.admin("a", b"create function f\r\n", expect=OK)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:1"))
        s.admin("a", b"maxqueue f 1 2\r\n", expect=OK)
        s.do("c", SUBMIT_JOB_HIGH_BG, b"f", b"", b"h", expect=QUEUE_FULL)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"n", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"n", expect=QUEUE_FULL)
        s.do("c", SUBMIT_JOB_LOW_BG, b"f", b"", b"l", expect=created(b"T:3"))
        s.do("c", SUBMIT_JOB_LOW_BG, b"f", b"", b"l", expect=created(b"T:4"))
        s.admin("a", b"maxqueue f 6 5 4\n", expect=OK)
        s.do("c", SUBMIT_JOB_LOW_BG, b"f", b"", b"l", expect=QUEUE_FULL)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"n", expect=created(b"T:5"))
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"n", expect=QUEUE_FULL)
        s.do("c", SUBMIT_JOB_HIGH_BG, b"f", b"", b"h", expect=created(b"T:6"))
        s.do("c", SUBMIT_JOB_HIGH_BG, b"f", b"", b"h", expect=QUEUE_FULL)
        s.admin("a", b"prioritystatus\n", expect=b"f\t1\t3\t2\t0\n.\n")
        s.admin("a", b"maxqueue f junk -3 9\r\n", expect=OK)
        s.do("c", SUBMIT_JOB_HIGH_BG, b"f", b"", b"h", expect=created(b"T:7"))
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"n", expect=created(b"T:8"))
        s.admin("a", b"prioritystatus\n", expect=b"f\t2\t4\t2\t0\n.\n")
        self.compare(s)

    def test_limitForms(self) -> None:
        """
        Negative or junk numbers mean unlimited; the name is case-sensitive
        and unknown functions are silently ignored (not created); bare
        C{maxqueue} is an error (3.10, 4.2).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:1"))
        s.admin("a", b"maxqueue f -1\n", expect=OK)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:2"))
        s.admin("a", b"maxqueue f junk\n", expect=OK)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:3"))
        s.admin("a", b"maxqueue F 1\n", expect=OK)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:4"))
        s.admin("a", b"maxqueue nosuch 1\n", expect=OK)
        s.admin("a", b"status\n", expect=b"f\t4\t0\t0\n.\n")
        s.do("c", SUBMIT_JOB_BG, b"nosuch", b"", b"x", expect=created(b"T:5"))
        s.do("c", SUBMIT_JOB_BG, b"nosuch", b"", b"x", expect=created(b"T:6"))
        s.admin("a", b"maxqueue f 1x\n", expect=OK)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=QUEUE_FULL)
        s.admin("a", b"maxqueue f 0\n", expect=OK)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:7"))
        s.admin("a", b"maxqueue\n", expect=incomplete(b"maxqueue"))
        s.admin("a", b"maxqueue\r\n", expect=incomplete(b"maxqueue"))
        s.admin("a", b"MAXQUEUE f 1\r\n", expect=OK)
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=QUEUE_FULL)
        s.admin("a", b"maxqueue f 1 2 3 4\n")
        self.compare(s)


class StatusTests(DifferentialTestCase):
    """
    Reference section 3.11: GET_STATUS and GET_STATUS_UNIQUE; 3.6: what
    clients hear of exceptions.
    """

    def test_getStatus(self) -> None:
        """
        GET_STATUS: unknown handles are echoed with zeros; known jobs show
        running and the last WORK_STATUS (3.11).
        """
        s = Script()
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 0, 0, 0, 0))
        s.do("c", GET_STATUS, b"", expect=status(b"", 0, 0, 0, 0))
        s.do("c", SUBMIT_JOB_BG, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 0, 0, 0))
        s.do("c", GET_STATUS, b"t:1", expect=status(b"t:1", 0, 0, 0, 0))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 1, 0, 0))
        s.do("w", WORK_STATUS, b"T:1", b"3", b"4", expect=[], c=[])
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 1, 3, 4))
        s.do("w", WORK_COMPLETE, b"T:1", b"", c=[])
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 0, 0, 0, 0))
        self.compare(s)

    def test_getStatusUnique(self) -> None:
        """
        GET_STATUS_UNIQUE reports any live job with the unique and its
        foreground client count (a background submit adds none); unknown,
        differently cased and empty uniques give zeros (3.11).
        """
        s = Script()
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 0, 0, 0, 0, 0))
        s.do("c", SUBMIT_JOB_BG, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 0, 0, 0, 0))
        s.do("c", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("d", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 0, 0, 0, 2))
        s.do("d", SUBMIT_JOB_BG, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 0, 0, 0, 2))
        s.do("c", SUBMIT_JOB, b"g", b"", b"x", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB_BG, b"f", b"bg", b"x", expect=created(b"T:3"))
        s.do("c", GET_STATUS_UNIQUE, b"bg", expect=statusUnique(b"bg", 1, 0, 0, 0, 0))
        s.do("c", GET_STATUS_UNIQUE, b"", expect=statusUnique(b"", 0, 0, 0, 0, 0))
        s.do("c", GET_STATUS_UNIQUE, b"U", expect=statusUnique(b"U", 0, 0, 0, 0, 0))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_STATUS, b"T:1", b"5", b"6")
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 1, 5, 6, 2))
        s.close("d")
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 1, 1, 5, 6, 1))
        s.do("w", WORK_COMPLETE, b"T:1", b"")
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 0, 0, 0, 0, 0))
        self.compare(s)

    def test_exceptionClients(self) -> None:
        """
        Two clients of one job: the one with the C{exceptions} option gets
        WORK_EXCEPTION as sent, the other a WORK_FAIL (gearmand adds a stray
        NUL, we send the bare handle); the job ends (3.6).
        """
        s = Script()
        s.do("exc", OPTION_REQ, b"exceptions", expect=(OPTION_RES, b"exceptions"))
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("exc", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("plain", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_EXCEPTION, b"T:1", b"boom\0!", expect=[], exc=(WORK_EXCEPTION, b"T:1\0boom\0!"))
        s.differs("plain", gearmand=(WORK_FAIL, b"T:1\0"), ours=(WORK_FAIL, b"T:1"))
        s.admin("exc", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s)

    def test_serverExceptions(self) -> None:
        """
        With C{--exceptions} a client that never asked for the option gets
        WORK_EXCEPTION as sent, and the job ends (3.6).
        """
        s = Script()
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_EXCEPTION, b"T:1", b"boom", expect=[], c=(WORK_EXCEPTION, b"T:1\0boom"))
        s.admin("c", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s, "--exceptions")

    def test_getStatusCancelledAndOtherFunction(self) -> None:
        """
        A cancelled queued job is still known to GET_STATUS, and
        GET_STATUS_UNIQUE finds a unique in any function.  Its unique is
        given up at once by us (a deliberate difference, 4.2,
        docs/differences.rst), still counted by gearmand; both list it.
        """
        s = Script()
        s.open("admin")
        s.do("c", SUBMIT_JOB_BG, b"g", b"u", b"x", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"v", b"x", expect=created(b"T:2"))
        s.admin("admin", b"cancel job T:2\n", expect=OK, c=(WORK_FAIL, b"T:2"))
        s.send(
            "c",
            pkt(GET_STATUS, b"T:2") + pkt(GET_STATUS_UNIQUE, b"u"),
            expect=[status(b"T:2", 1, 0, 0, 0), statusUnique(b"u", 1, 0, 0, 0, 0)],
        )
        s.do("c", GET_STATUS_UNIQUE, b"v")
        s.differs("c", gearmand=statusUnique(b"v", 1, 0, 0, 0, 1), ours=statusUnique(b"v", 0, 0, 0, 0, 0))
        s.admin("admin", b"show jobs\n")
        s.admin("admin", b"show unique jobs\n", expect=b"u\nv\n.\n")
        self.compare(s)


class EpochTests(DifferentialTestCase):
    """
    Reference section 3.12: SUBMIT_JOB_EPOCH.
    """

    def test_pastAndJunk(self) -> None:
        """
        Junk, 0 or a past time run at once, as background NORMAL jobs (3.12).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", b"1000000000", b"past", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", b"junk", b"junk", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"u", b"0", b"zero", expect=created(b"T:3"))
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", b"-5", b"neg", expect=created(b"T:4"))
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"u", b"0", b"again", expect=created(b"T:3"))
        s.do("c", SUBMIT_JOB_LOW_BG, b"f", b"", b"low", expect=created(b"T:5"))
        s.admin("a", b"prioritystatus\n", expect=b"f\t0\t4\t1\t0\n.\n")
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:1\0f\0\0past"))
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:2\0f\0\0junk"))
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:3\0f\0u\0zero"))
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:4\0f\0\0neg"))
        s.do("w", WORK_COMPLETE, b"T:3", b"r", c=[])
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:5\0f\0\0low"))
        self.compare(s)

    def test_pastAndFuture(self) -> None:
        """
        A junk epoch runs now; a future one is held: counted in NORMAL, not
        grabbed (3.12).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", b"junk", b"now", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", _future(), b"later", expect=created(b"T:2"))
        s.admin("c", b"prioritystatus\n", expect=b"f\t0\t2\t0\t0\n.\n")
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0now"))
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        self.compare(s)

    def test_futureHeld(self) -> None:
        """
        A future job waits in NORMAL, counted by C{status} and
        C{prioritystatus}, and GRAB skips it (3.12).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"e", _future(), b"later", expect=created(b"T:1"))
        s.admin("a", b"status\n", expect=b"f\t1\t0\t0\n.\n")
        s.admin("a", b"prioritystatus\n", expect=b"f\t0\t1\t0\t0\n.\n")
        s.admin("a", b"show jobs\n", expect=b"T:1\t0\t0\t1\n.\n")
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 0, 0, 0))
        s.do("c", GET_STATUS_UNIQUE, b"e", expect=statusUnique(b"e", 1, 0, 0, 0, 0))
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"e", b"0", b"now", expect=created(b"T:1"))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        s.do("c", SUBMIT_JOB_HIGH_BG, b"f", b"", b"high", expect=created(b"T:2"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\0high"))
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"normal", expect=created(b"T:3"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:3\0f\0normal"))
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        self.compare(s)

    def test_overflow(self) -> None:
        """
        An epoch that overflows C{strtoll} gets no reply and the connection
        is dropped (3.12).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", b"9223372036854775808", b"x", expect=CLOSED)
        s.do("d", SUBMIT_JOB_EPOCH, b"f", b"", b"99999999999999999999999", b"x", expect=CLOSED)
        s.do("e", SUBMIT_JOB_EPOCH, b"f", b"", b"-9223372036854775809", b"x", expect=CLOSED)
        s.admin("a", b"status\n", expect=b".\n")
        self.compare(s)

    def test_epochOverflow(self) -> None:
        """
        A 30-digit epoch gets no reply, and nothing is queued (3.12).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", b"9" * 30, b"x", expect=CLOSED)
        s.admin("admin", b"status\n")
        self.compare(s)

    def test_futureLowFallsThroughOurs(self) -> None:
        """
        A future job does not block LOW jobs of its function (3.12:
        gearmand answers NO_JOB yet NOOPs at PRE_SLEEP).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", _future(), b"later", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB_LOW_BG, b"f", b"", b"low", expect=created(b"T:2"))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\0low"))
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        s.do("w", PRE_SLEEP, expect=[])
        self.ours(s)

    def test_futureLowGearmand(self) -> None:
        """
        gearmand's quirk, recorded: a future job ahead of a LOW job makes
        GRAB answer NO_JOB while PRE_SLEEP NOOPs at once (3.12).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", _future(), b"later", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB_LOW_BG, b"f", b"", b"low", expect=created(b"T:2"))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        s.do("w", PRE_SLEEP, expect=NOOP_)
        self.gearmand(s)

    def test_futureWakesAtDueTimeOurs(self) -> None:
        """
        A future job becomes runnable at its due time at the NORMAL tail,
        and sleeping workers are NOOPed then, not at submit (3.12: gearmand
        1.1.20 never wakes them).
        """
        # Far enough ahead that the server's start-up (seconds, on a busy
        # machine) cannot pass it before the job is submitted.
        due = int(time.time()) + 5
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("w", PRE_SLEEP)
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", b"%d" % (due,), b"later", expect=created(b"T:1"), w=[])
        s.wait(max(0.0, due - time.time() + 0.3), w=NOOP_)
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0later"))
        self.ours(s)

    def test_runnableWhenDueOurs(self) -> None:
        """
        A job due in a second or two is not handed out before then; when
        due it NOOPs a sleeping worker and is grabbed (3.12: gearmand has no
        timer).
        """

        def script() -> Script:
            # Built once the server is up, so start-up cannot eat the delay.
            due = int(time.time()) + 2
            s = Script()
            s.do("s", CAN_DO, b"f", expect=[])
            s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", b"%d" % (due,), b"soon", expect=created(b"T:1"))
            s.do("s", GRAB_JOB, expect=NO_JOB_)
            s.do("s", PRE_SLEEP, expect=[])
            s.wait(max(0.0, due - time.time()) + 0.2, s=NOOP_)
            s.do("s", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0soon"))
            return s

        self.ours(script)


class CStringArgumentTests(DifferentialTestCase):
    """
    gearmand reads some last arguments as C strings: a NUL ends them.
    """

    def test_statusArguments(self) -> None:
        """
        GET_STATUS and GET_STATUS_UNIQUE look up and echo their argument
        only up to a NUL.
        """
        s = Script()
        s.do("c", SUBMIT_JOB_BG, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("c", GET_STATUS, b"T:1\0junk", expect=status(b"T:1", 1, 0, 0, 0))
        s.do("c", GET_STATUS, b"t:1\0x", expect=status(b"t:1", 0, 0, 0, 0))
        s.do("c", GET_STATUS_UNIQUE, b"u\0junk", expect=statusUnique(b"u", 1, 0, 0, 0, 0))
        s.do("c", GET_STATUS_UNIQUE, b"x\0junk", expect=statusUnique(b"x", 0, 0, 0, 0, 0))
        self.compare(s)

    def test_workerArguments(self) -> None:
        """
        WORK_FAIL finds its job by the handle up to a NUL and forwards the
        payload as sent; CAN_DO keeps a name with a NUL whole, but the
        admin lists print it up to the NUL.
        """
        s = Script()
        s.do("w", CAN_DO, b"f\0junk")
        s.admin("a", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_FAIL, b"T:1\0junk", expect=[], c=(WORK_FAIL, b"T:1\0junk"))
        s.do("w", CANT_DO, b"f\0junk")
        s.admin("a", b"status\n", expect=b"f\t0\t0\t0\nf\t0\t0\t1\n.\n")
        self.compare(s)
