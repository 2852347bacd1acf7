# -*- test-case-name: tests.integration.differential -*-
"""
The differential harness: scripted exchanges run in lockstep against C
gearmand 1.1.20 and our server, with identical transcripts required.

A L{Script} is a list of steps on named connections (opened at first use):
send bytes, send admin lines, close, wait.  After every step a barrier runs
an ECHO_REQ round trip on each open connection, the acting one first, then
in the order they were opened, and records every packet that arrived before
the ECHO_RES; so each step's transcript is "what every connection received
because of this step".  Both servers run the script in lockstep (step 1 on
gearmand, step 1 on ours, step 2 ...), so the waits of timing tests are paid
once, and both are started in parallel.

Transcripts are compared step by step.  Only what must differ is normalised:
file descriptors in C{workers}, the pid in C{getpid}, the version suffix in
C{version} and the line ending of C{maxqueue}'s C{OK}.  Steps may also carry
the concrete reply the reference (C{shared/reference/protocol.md}, cited by
section) gives, checked on both servers, so a test fails even if both
servers agree on a wrong answer.

Where the reference marks a gearmand behaviour as a bug that we fix, a test
either runs its script against our server only (L{DifferentialTestCase.ours};
such tests end in C{Ours}), or keeps comparing everything else and states
what each server sends at that one point (L{Script.differs}).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.protocol import PacketType
from tests.integration.servers import (
    RawConnection,
    ServerProcess,
    packet,
    startGearmand,
    startOurs,
)

# Packet types as numbered on the wire (reference section 2), restated here
# rather than taken from the code under test.
CAN_DO = 1
CANT_DO = 2
RESET_ABILITIES = 3
PRE_SLEEP = 4
UNUSED = 5
NOOP = 6
SUBMIT_JOB = 7
JOB_CREATED = 8
GRAB_JOB = 9
NO_JOB = 10
JOB_ASSIGN = 11
WORK_STATUS = 12
WORK_COMPLETE = 13
WORK_FAIL = 14
GET_STATUS = 15
ECHO_REQ = 16
ECHO_RES = 17
SUBMIT_JOB_BG = 18
ERROR = 19
STATUS_RES = 20
SUBMIT_JOB_HIGH = 21
SET_CLIENT_ID = 22
CAN_DO_TIMEOUT = 23
ALL_YOURS = 24
WORK_EXCEPTION = 25
OPTION_REQ = 26
OPTION_RES = 27
WORK_DATA = 28
WORK_WARNING = 29
GRAB_JOB_UNIQ = 30
JOB_ASSIGN_UNIQ = 31
SUBMIT_JOB_HIGH_BG = 32
SUBMIT_JOB_LOW = 33
SUBMIT_JOB_LOW_BG = 34
SUBMIT_JOB_SCHED = 35
SUBMIT_JOB_EPOCH = 36
SUBMIT_REDUCE_JOB = 37
SUBMIT_REDUCE_JOB_BACKGROUND = 38
GRAB_JOB_ALL = 39
JOB_ASSIGN_ALL = 40
GET_STATUS_UNIQUE = 41
STATUS_RES_UNIQUE = 42

#: (argument count, has data) of the types L{wellFormed} builds.
_SHAPES: Dict[int, Tuple[int, bool]] = {
    NOOP: (0, False),
    JOB_CREATED: (1, False),
    NO_JOB: (0, False),
    JOB_ASSIGN: (2, True),
    ECHO_RES: (0, True),
    ERROR: (2, False),
    STATUS_RES: (5, False),
    ALL_YOURS: (0, False),
    OPTION_RES: (1, False),
    JOB_ASSIGN_UNIQ: (3, True),
    SUBMIT_JOB_SCHED: (7, True),
    JOB_ASSIGN_ALL: (4, True),
    STATUS_RES_UNIQUE: (6, False),
    UNUSED: (0, False),
}

REQ = b"\0REQ"
RES = b"\0RES"

#: The item recorded when the server closed the connection.
CLOSED = "CLOSED"

#: How long one read may wait for the server.
READ_TIMEOUT = 3.0

#: How long a step that closes a connection waits for the servers to notice.
SETTLE = 0.15

#: One thing a connection received: a C{(type, payload)} packet, an admin
#: reply or raw bytes, L{CLOSED}, or a C{(what, bytes)} problem.
Item = Union[Tuple[int, bytes], bytes, str, Tuple[str, bytes]]

#: Starts a server: L{startGearmand} or L{startOurs}.
Starter = Callable[..., ServerProcess]

#: A L{Script}, or a function that builds one once the servers are up (for
#: scripts that depend on the time, such as epochs a few seconds ahead).
ScriptSource = Union["Script", Callable[[], "Script"]]


def pkt(ptype: int, *args: bytes, magic: bytes = REQ) -> bytes:
    """
    A request packet with C{args} joined by NULs.
    """
    return packet(ptype, *args, magic=magic)


def wellFormed(ptype: int, magic: bytes = REQ) -> bytes:
    """
    A packet of C{ptype} with as many arguments as its type has (2).
    """
    argc, hasData = _SHAPES[ptype]
    args = [b"a%d" % (i,) for i in range(argc)]
    if hasData:
        args.append(b"data")
    return pkt(ptype, *args, magic=magic)


def err(code: bytes, text: bytes) -> Tuple[int, bytes]:
    """
    An expected ERROR packet (1.4).
    """
    return (ERROR, code + b"\0" + text)


def created(handle: bytes) -> Tuple[int, bytes]:
    """
    An expected JOB_CREATED packet.
    """
    return (JOB_CREATED, handle)


def status(handle: bytes, known: int, running: int, num: int, den: int) -> Tuple[int, bytes]:
    """
    An expected STATUS_RES packet.
    """
    return (STATUS_RES, b"%s\0%d\0%d\0%d\0%d" % (handle, known, running, num, den))


def statusUnique(
    unique: bytes, known: int, running: int, num: int, den: int, clients: int
) -> Tuple[int, bytes]:
    """
    An expected STATUS_RES_UNIQUE packet.
    """
    return (
        STATUS_RES_UNIQUE,
        b"%s\0%d\0%d\0%d\0%d\0%d" % (unique, known, running, num, den, clients),
    )


def incomplete(command: bytes) -> bytes:
    """
    The admin reply to a command with too few or too many words (4.2).
    """
    return (
        b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+%s\r\n"
        % (command,)
    )


def unknown(word: bytes) -> bytes:
    """
    The admin reply to an unknown command C{word} (4.1).
    """
    return b"ERR UNKNOWN_COMMAND Unknown+server+command%s\r\n" % (word,)


NOOP_ = (NOOP, b"")
NO_JOB_ = (NO_JOB, b"")
INVALID_COMMAND = err(b"INVALID_COMMAND", b"Command not expected")
NOT_FOUND_DATA = err(b"JOB_NOT_FOUND", b"Job does not exist on server")
NOT_FOUND_RESULT = err(b"JOB_NOT_FOUND", b"Job given in work result not found")
NOT_FOUND_EXCEPTION = err(
    b"JOB_NOT_FOUND", b"An exception was received for a job that does not exist"
)
QUEUE_FULL = err(b"QUEUE_ERROR", b"Job queue is full")
OK = b"OK\r\n"
STILL_USED = b"ERR there are still connected workers or executing clients\r\n"


def _short(data: bytes) -> str:
    if len(data) <= 160:
        return repr(data)
    return "%r...(%d bytes)...%r" % (data[:60], len(data), data[-60:])


def _typeName(ptype: int) -> str:
    try:
        return PacketType(ptype).name
    except ValueError:
        return str(ptype)


def describe(item: Any) -> str:
    """
    A readable form of one transcript item.
    """
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int):
        return "%s %s" % (_typeName(item[0]), _short(item[1]))
    if isinstance(item, bytes):
        return _short(item)
    return repr(item)


def _items(value: Any) -> List[Item]:
    """
    An expectation as a list of items: one packet, reply or L{CLOSED}, or a
    list of them.
    """
    if isinstance(value, (bytes, str)) or (
        isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int)
    ):
        return [value]
    return list(value)


def _show(received: Dict[str, List[Item]]) -> str:
    if not received:
        return "nothing"
    return "; ".join(
        "%s: %s" % (conn, ", ".join(map(describe, items))) for conn, items in received.items()
    )


class Step:
    """
    One action of a script, run on every server, then (if C{barrier}) an
    ECHO barrier on every open connection.

    @ivar expect: the reference's transcript for this step, by connection;
        connections not named are only compared between the servers.
    @ivar expectOn: by server name (C{"gearmand"}, C{"ours"}), expectations
        for that server only, by connection.
    @ivar uncompared: the connections whose transcript of this step is not
        compared between the servers.
    @ivar pause: seconds to wait once, after the action ran on all servers.
    """

    barrier = True
    pause = 0.0

    def __init__(self, conn: str, expect: Optional[Dict[str, Any]] = None) -> None:
        self.conn = conn
        self.expect = {name: _items(value) for name, value in (expect or {}).items()}
        self.expectOn: Dict[str, Dict[str, List[Item]]] = {}
        self.uncompared: Set[str] = set()

    def run(self, world: World) -> None:
        """
        Act on one server.
        """
        raise NotImplementedError()

    def collect(self, world: World) -> None:
        """
        Record what arrived, after the pause and before the barrier.
        """

    def sendData(self, world: World, data: bytes) -> Optional[RawConnection]:
        """
        Send C{data} on this step's connection of C{world}.

        @return: the connection, or L{None} (with a record of why) if it is
            gone, cannot connect or is closed by the server.
        """
        conn = world.connection(self.conn)
        if conn is None:
            return None
        try:
            conn.send(data)
        except OSError:
            world.lost(self.conn, CLOSED)
            return None
        return conn

    def expectations(self, worldName: str) -> Dict[str, List[Item]]:
        """
        What the connections must receive during this step on server
        C{worldName}.
        """
        result = dict(self.expect)
        result.update(self.expectOn.get(worldName, {}))
        return result

    def compared(self, received: Dict[str, List[Item]]) -> Dict[str, List[Item]]:
        """
        The part of one server's transcript of this step that must equal the
        other's.
        """
        return {conn: items for conn, items in received.items() if conn not in self.uncompared}


class Send(Step):
    """
    Send raw bytes.
    """

    def __init__(
        self,
        conn: str,
        data: bytes,
        expect: Optional[Dict[str, Any]],
        barrier: bool,
        pause: float,
    ) -> None:
        Step.__init__(self, conn, expect)
        self.data = data
        self.barrier = barrier
        self.pause = pause

    def __str__(self) -> str:
        if len(self.data) >= 12 and self.data[:1] == b"\0":
            ptype = int.from_bytes(self.data[4:8], "big")
            return "%s sends %s%s %s" % (
                self.conn,
                _typeName(ptype),
                "" if self.data[:4] == REQ else " magic %r" % (self.data[:4],),
                _short(self.data[12:]),
            )
        return "%s sends %s" % (self.conn, _short(self.data))

    def run(self, world: World) -> None:
        self.sendData(world, self.data)


class Admin(Step):
    """
    Send admin text and record each reply line or list, normalised.
    """

    def __init__(
        self, conn: str, data: bytes, replies: int, expect: Optional[Dict[str, Any]]
    ) -> None:
        Step.__init__(self, conn, expect)
        self.data = data
        self.replies = replies
        self.commands = [
            (line.split() or [b""])[0].lower() for line in data.split(b"\n")[: max(replies, 1)]
        ]

    def __str__(self) -> str:
        return "%s admin %s" % (self.conn, _short(self.data))

    def run(self, world: World) -> None:
        conn = self.sendData(world, self.data)
        if conn is None:
            return
        for index in range(self.replies):
            try:
                reply = conn.admin(b"")
            except TimeoutError:
                world.lost(self.conn, ("TIMEOUT", conn.buffer))
                return
            except (EOFError, OSError):
                world.lost(self.conn, CLOSED)
                return
            command = self.commands[index] if index < len(self.commands) else b""
            world.record(self.conn, world.normalise(command, reply))


class Close(Step):
    """
    Close a connection from the peer's side.
    """

    pause = SETTLE

    def __str__(self) -> str:
        return "%s closes" % (self.conn,)

    def run(self, world: World) -> None:
        conn = world.conns.get(self.conn)
        if conn is not None:
            conn.close()
        world.gone.add(self.conn)


class Wait(Step):
    """
    Let real time pass.
    """

    def __init__(self, seconds: float, expect: Optional[Dict[str, Any]]) -> None:
        Step.__init__(self, "", expect)
        self.pause = seconds

    def __str__(self) -> str:
        return "wait %ss" % (self.pause,)

    def run(self, world: World) -> None:
        pass


class Quiet(Step):
    """
    Wait, then record the raw bytes that arrived (for text mixed with
    packets, or replies the barrier must not consume).
    """

    barrier = False

    def __init__(self, conn: str, seconds: float, expect: Optional[Dict[str, Any]]) -> None:
        Step.__init__(self, conn, expect)
        self.pause = seconds

    def __str__(self) -> str:
        return "%s reads raw bytes for %ss" % (self.conn, self.pause)

    def run(self, world: World) -> None:
        pass

    def collect(self, world: World) -> None:
        conn = world.connection(self.conn)
        if conn is not None:
            world.record(self.conn, conn.quiet(0.01))


class Script:
    """
    A scripted exchange over named connections.

    Each method adds a step.  C{expect} is what the acting connection must
    receive during the step (its replies, up to the barrier); keyword
    arguments name what other connections must receive.  Either is one item
    or a list of items: C{(type, payload)} packets, admin replies as bytes,
    and L{CLOSED}.
    """

    def __init__(self) -> None:
        self.steps: List[Step] = []

    @staticmethod
    def _expect(conn: str, expect: Any, others: Dict[str, Any]) -> Dict[str, Any]:
        result = dict(others)
        if expect is not None:
            result[conn] = expect
        return result

    def send(
        self,
        conn: str,
        data: bytes,
        expect: Any = None,
        barrier: bool = True,
        pause: float = 0.0,
        **others: Any,
    ) -> Script:
        """
        Send raw bytes on C{conn}, then wait C{pause} seconds.  Without
        C{barrier} nothing is read (for bytes that only make sense with the
        next step's).
        """
        self.steps.append(Send(conn, data, self._expect(conn, expect, others), barrier, pause))
        return self

    def do(self, conn: str, ptype: int, *args: bytes, expect: Any = None, **others: Any) -> Script:
        """
        Send one request packet of type C{ptype} on C{conn}.
        """
        return self.send(conn, pkt(ptype, *args), expect, True, **others)

    def open(self, conn: str) -> Script:
        """
        Open C{conn} without sending anything.
        """
        return self.send(conn, b"")

    def admin(
        self, conn: str, line: bytes, expect: Any = None, replies: int = 1, **others: Any
    ) -> Script:
        """
        Send admin text (one line, or C{replies} pipelined lines) and read
        C{replies} replies.
        """
        self.steps.append(Admin(conn, line, replies, self._expect(conn, expect, others)))
        return self

    def adminBoth(self, conn: str, line: bytes, expect: Any) -> Script:
        """
        Send C{line} with gearadmin's C{\\r\\n}, then with Python gear's bare
        C{\\n}; both must get C{expect} (if not L{None}).
        """
        self.admin(conn, line + b"\r\n", expect=expect)
        return self.admin(conn, line + b"\n", expect=expect)

    def close(self, conn: str, **others: Any) -> Script:
        """
        Close C{conn} from our side and give the servers a moment to notice.
        """
        self.steps.append(Close(conn, others))
        return self

    def raw(self, conn: str, seconds: float = 0.2, expect: Any = None) -> Script:
        """
        Wait C{seconds} and record the bytes C{conn} received, unparsed.
        """
        self.steps.append(Quiet(conn, seconds, self._expect(conn, expect, {})))
        return self

    def wait(self, seconds: float, **others: Any) -> Script:
        """
        Let real time pass (for timers), then run the barrier.
        """
        self.steps.append(Wait(seconds, others))
        return self

    def differs(self, conn: str, gearmand: Any, ours: Any) -> Script:
        """
        Where we deliberately differ from gearmand: what C{conn} received
        during the last step is not compared between the servers; instead
        gearmand must have sent C{gearmand} and ours C{ours}.
        """
        step = self.steps[-1]
        step.uncompared.add(conn)
        step.expectOn.setdefault("gearmand", {})[conn] = _items(gearmand)
        step.expectOn.setdefault("ours", {})[conn] = _items(ours)
        return self


class World:
    """
    One server and the script's connections to it, with the transcript.

    @ivar name: C{"gearmand"} or C{"ours"}.
    @ivar steps: per step, what each connection received (only connections
        that received something).
    """

    def __init__(self, name: str, server: ServerProcess) -> None:
        self.name = name
        self.server = server
        self.conns: Dict[str, RawConnection] = {}
        self.gone: Set[str] = set()
        self.steps: List[Dict[str, List[Item]]] = []
        self._tokens = itertools.count()

    def connection(self, name: str) -> Optional[RawConnection]:
        """
        The open connection C{name}, connecting at first use; L{None} (and
        a record of why) if it is gone or cannot connect.
        """
        if name in self.gone:
            self.record(name, "GONE")
            return None
        conn = self.conns.get(name)
        if conn is None:
            try:
                conn = RawConnection(self.server.port, timeout=READ_TIMEOUT)
            except OSError as e:
                exited = self.server.process.poll()
                why = "" if exited is None else "; server exited with %s" % (exited,)
                self.lost(name, "CONNECT FAILED: %s%s" % (e, why))
                return None
            self.conns[name] = conn
        return conn

    def record(self, name: str, item: Item) -> None:
        """
        Record that connection C{name} received C{item} in this step.
        """
        self.steps[-1].setdefault(name, []).append(item)

    def lost(self, name: str, item: Item) -> None:
        """
        Record C{item} and give up on connection C{name}.
        """
        self.record(name, item)
        self.gone.add(name)

    def barrier(self, first: str = "") -> None:
        """
        ECHO round trip on every open connection, C{first} (the one that
        acted) first, recording what arrives before each ECHO_RES.
        """
        names = sorted(self.conns, key=lambda name: name != first)
        for name in names:
            conn = self.conns[name]
            if name in self.gone:
                continue
            token = b"barrier %d" % (next(self._tokens),)
            try:
                conn.sendPacket(ECHO_REQ, token)
            except OSError:
                pass
            while True:
                try:
                    ptype, payload = conn.readPacket()
                except TimeoutError:
                    self.lost(name, ("TIMEOUT", conn.buffer))
                    break
                except (EOFError, OSError):
                    self.lost(name, CLOSED)
                    break
                if ptype == ECHO_RES and payload == token:
                    break
                self.record(name, (ptype, payload))

    def normalise(self, command: bytes, reply: bytes) -> bytes:
        """
        Replace what legitimately differs between the servers (4.2).
        """
        if command == b"workers":
            return re.sub(rb"(?m)^\d+ (?=\S+ )", b"FD ", reply)
        if command == b"maxqueue" and self.name == "ours" and reply == b"OK\n":
            # gearmand's OK\r\n breaks pygearman; ours is OK\n on purpose.
            return b"OK\r\n"
        if command == b"getpid" and reply == b"OK %d\n" % (self.server.pid,):
            return b"OK <pid>\n"
        if command == b"version":
            if self.name == "gearmand" and re.fullmatch(rb"OK 1\.1\.20(\+ds)?\n", reply):
                return b"OK <version>\n"
            if self.name == "ours" and reply == b"OK 1.1.20+gearman-tw-0.1.0\n":
                return b"OK <version>\n"
        return reply

    def close(self) -> None:
        """
        Close every connection.
        """
        for conn in self.conns.values():
            conn.close()


def _stopAll(servers: Sequence[ServerProcess]) -> None:
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        server.stop()
        shutil.rmtree(os.path.dirname(server.logPath), True)


class DifferentialTestCase(SynchronousTestCase):
    """
    Runs L{Script}s against both servers, or against one of them.
    """

    def startServers(self, starters: Sequence[Starter], options: Sequence[str]) -> List[ServerProcess]:
        """
        Start a fresh server with each of C{starters}, in parallel, every one
        with C{options}; they are stopped at cleanup.
        """
        with ThreadPoolExecutor(len(starters)) as pool:
            futures = [pool.submit(start, None, *options) for start in starters]
        servers, errors = [], []
        for future in futures:
            try:
                servers.append(future.result())
            except BaseException as e:
                errors.append(e)
        self.addCleanup(_stopAll, servers)
        if errors:
            raise errors[0]
        return servers

    def runScript(self, source: ScriptSource, worlds: List[World]) -> None:
        """
        Run a script in lockstep on C{worlds}; fail unless the compared
        parts of their transcripts are equal and every expectation holds.
        """
        script = source if isinstance(source, Script) else source()
        try:
            for step in script.steps:
                for world in worlds:
                    world.steps.append({})
                    step.run(world)
                if step.pause:
                    time.sleep(step.pause)
                for world in worlds:
                    step.collect(world)
                if step.barrier:
                    for world in worlds:
                        world.barrier(step.conn)
        finally:
            for world in worlds:
                world.close()
        problems = []
        if len(worlds) == 2:
            theirs, ours = worlds
            for index, step in enumerate(script.steps):
                if step.compared(theirs.steps[index]) != step.compared(ours.steps[index]):
                    problems.append(
                        "step %d (%s): servers differ\n  gearmand: %s\n  ours:     %s"
                        % (index, step, _show(theirs.steps[index]), _show(ours.steps[index]))
                    )
        for world in worlds:
            for index, step in enumerate(script.steps):
                for conn, want in step.expectations(world.name).items():
                    got = world.steps[index].get(conn, [])
                    if got != want:
                        problems.append(
                            "step %d (%s): %s on %s: expected %s, got %s"
                            % (
                                index,
                                step,
                                world.name,
                                conn,
                                ", ".join(map(describe, want)) or "nothing",
                                ", ".join(map(describe, got)) or "nothing",
                            )
                        )
        if problems:
            lines = ["\n".join(problems), ""]
            for world in worlds:
                lines.append("%s transcript:" % (world.name,))
                for index, step in enumerate(script.steps):
                    lines.append("  %2d %s -> %s" % (index, step, _show(world.steps[index])))
            self.fail("\n".join(lines))

    def compare(self, script: ScriptSource, *options: str) -> Tuple[World, World]:
        """
        Run C{script} against gearmand and ours, both started with
        C{options}; the transcripts must be equal and meet the expectations.

        @return: gearmand's and our L{World}, for further checks.
        """
        gearmand, ours = self.startServers((startGearmand, startOurs), options)
        worlds = (World("gearmand", gearmand), World("ours", ours))
        self.runScript(script, list(worlds))
        return worlds

    def ours(self, script: ScriptSource, *options: str) -> World:
        """
        Run C{script} against our server only (where we deliberately differ
        from gearmand) and check the expectations.
        """
        (ours,) = self.startServers((startOurs,), options)
        world = World("ours", ours)
        self.runScript(script, [world])
        return world

    def gearmand(self, script: ScriptSource, *options: str) -> World:
        """
        Run C{script} against gearmand only (to record a gearmand quirk that
        we deliberately do not copy) and check the expectations.
        """
        (gearmand,) = self.startServers((startGearmand,), options)
        world = World("gearmand", gearmand)
        self.runScript(script, [world])
        return world
