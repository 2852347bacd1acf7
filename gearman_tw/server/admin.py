# -*- test-case-name: tests.test_server_admin -*-
"""
gearmand 1.1.20's text admin protocol, byte for byte (reference section 4).
"""

from __future__ import annotations

import base64
import heapq
import itertools
import os
import re
from operator import itemgetter
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

from twisted.internet.defer import Deferred

from gearman_tw.numbers import atoi32
from gearman_tw.server.jobs import JobServer, whenFired
from gearman_tw.server.lifecycle import PoliciesError, parseSetting
from gearman_tw.server.model import Function, Job, Peer
from gearman_tw.server.results import OUTCOME_NAMES

T = TypeVar("T")

#: The version gearmand reports, with our own name after the C{+} the way
#: Debian appends C{+ds}: parsers of gearmand's version still read it.
GEARMAND_VERSION = "1.1.20"

#: More words than this and gearmand closes the connection without a reply.
MAX_WORDS = 5

_SPACES = re.compile(b" +")


def adminWords(line: bytes) -> List[bytes]:
    """
    The words of an admin line, as the commands read them (the access
    policy reads the same words).
    """
    return _SPACES.split(line)


#: gearmand's hash table size (its --hashtable-buckets default).
HASH_BUCKETS = 991

#: Listings of more rows than this are made and sent in slices of this many
#: rows, the server serving everyone else between two slices.
LISTING_SLICE = 2000

#: Hashing a row's name for gearmand's order costs about half a
#: microsecond a byte: a slice counts a row as one plus one for every this
#: many bytes of its name, so that a slice of long names hashes no more
#: than a slice of short ones would (about 32 KB).
KEY_BYTES_PER_ROW = 16


class Listing:
    """
    A long admin reply, made and sent a slice at a time: each step of
    C{chunks} does a bounded amount of work and gives the bytes it made
    (perhaps none).  Joined, the chunks are the reply.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks


#: An admin reply: its bytes, a long one made a slice at a time, or one
#: that waits for the persistent queue.
Reply = Union[bytes, Listing, "Deferred[bytes]"]

#: A job as the C{show} commands list it: handle, retries, ignored,
#: persisted, unique.
_JobRow = Tuple[bytes, int, bool, bool, bytes]


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def gearmandHash(key: bytes) -> int:
    """
    The bucket gearmand files C{key} under: Jenkins' one-at-a-time hash in
    signed 32-bit arithmetic over signed chars (0 becomes 1), modulo 991.
    """
    value = 0
    for byte in key:
        value = _int32(value + (byte - 256 if byte > 127 else byte))
        value = _int32(value + (value << 10))
        value = _int32(value ^ (value >> 6))
    value = _int32(value + (value << 3))
    value = _int32(value ^ (value >> 11))
    value = _int32(value + (value << 15))
    return ((value & 0xFFFFFFFF) or 1) % HASH_BUCKETS


def hashOrder(items: List[T], key: Callable[[T], bytes]) -> List[T]:
    """
    C{items} (oldest first) in the order gearmand lists its hash tables:
    buckets ascending, newest first within a bucket.
    """
    indexed = list(enumerate(items))
    indexed.sort(key=lambda pair: (gearmandHash(key(pair[1])), -pair[0]))
    return [item for _, item in indexed]


def _rowCost(name: bytes) -> int:
    """
    What a row whose name is C{name} counts for in a slice.
    """
    return 1 + len(name) // KEY_BYTES_PER_ROW


def _hashListing(items: Iterable[T], key: Callable[[T], bytes], line: Callable[[T], bytes]) -> Iterator[bytes]:
    """
    The lines of C{items} (oldest first) in L{hashOrder}, then C{.}, made a
    slice per step (L{LISTING_SLICE}, L{_rowCost}): the hashing in one
    pass, the lines in another.
    """
    buckets: Dict[int, List[T]] = {}
    work = 0
    for item in items:
        name = key(item)
        bucket = gearmandHash(name)
        entries = buckets.get(bucket)
        if entries is None:
            buckets[bucket] = [item]
        else:
            entries.append(item)
        work += _rowCost(name)
        if work >= LISTING_SLICE:
            work = 0
            yield b""
    lines: List[bytes] = []
    for bucket in sorted(buckets):
        for item in reversed(buckets[bucket]):
            lines.append(line(item))
            if len(lines) >= LISTING_SLICE:
                yield b"".join(lines)
                lines = []
    lines.append(b".\n")
    yield b"".join(lines)


def _reply(items: List[T], key: Callable[[T], bytes], line: Callable[[T], bytes]) -> Reply:
    """
    The listing of C{items} in gearmand's hash order: at once when it is
    short, as a L{Listing} when it is long.
    """
    listing = _hashListing(items, key, line)
    if len(items) <= LISTING_SLICE and sum(_rowCost(key(item)) for item in items) < LISTING_SLICE:
        return b"".join(listing)
    return Listing(listing)


def errLine(code: bytes, text: str) -> bytes:
    """
    An admin error reply: C{ERR}, C{code} and C{text} (one line, its spaces
    written C{+}, as gearmand writes its reasons).
    """
    return b"ERR %s %s\r\n" % (code, text.replace(" ", "+").encode("utf-8", "replace"))


def _retried(outcome: Tuple[int, Optional[str]]) -> bytes:
    """
    The answer to C{retry deadletters}: how many ran again, or that their
    letters could not be forgotten (they would come back after a restart,
    beside their new jobs).
    """
    retried, why = outcome
    if why is None:
        return b"OK %d\n" % (retried,)
    return errLine(b"QUEUE_ERROR", "%d retried but the queue could not forget their letters: %s" % (retried, why))


def _whenKept(kept: "Optional[Deferred[Optional[str]]]", reply: bytes, unstored: str) -> Reply:
    """
    C{reply} once the persistent queue made the changes C{kept} stands for
    (see L{JobServer.keeping}), or C{ERR QUEUE_ERROR}, C{unstored} and why
    it could not.
    """
    if kept is None:
        return reply

    return whenFired(kept, lambda why: reply if why is None else errLine(b"QUEUE_ERROR", "%s: %s" % (unstored, why)))


def _cstring(value: bytes) -> bytes:
    """
    A name as a listing prints it: as gearmand's C string, up to the first
    NUL, and with a carriage return or newline in it written C{\\r} or
    C{\\n}, so that no name can forge lines of a listing.
    """
    value = value.split(b"\0", 1)[0]
    if b"\n" in value or b"\r" in value:
        value = value.replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    return value


def _number(value: object) -> str:
    """
    A policy's number as the policy file would give it: whole numbers
    without a fraction.
    """
    if isinstance(value, float) and value.is_integer():
        return "%d" % (value,)
    return str(value)


def _whole(value: bytes) -> bytes:
    """
    C{value} as the value of a C{KEY VALUE} line: as L{_field}, whole.
    """
    return _field(value, len(value))


def _field(value: bytes, limit: int = 200) -> bytes:
    """
    C{value} as one field of a tab-separated admin line: tabs, line breaks
    and NULs as spaces, at most C{limit} bytes, C{-} if empty.
    """
    value = value[:limit].translate(_FIELD_SAFE)
    return value or b"-"


_FIELD_SAFE = bytes(range(256)).replace(b"\t", b" ").replace(b"\n", b" ").replace(b"\r", b" ").replace(b"\0", b" ")


def _unknown(word: bytes) -> bytes:
    return b"ERR UNKNOWN_COMMAND Unknown+server+command%s\r\n" % (word,)


def _incomplete(command: bytes) -> bytes:
    # The command word as sent: gearmand echoes C{MAXQUEUE} in capitals.
    return (
        b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+%s\r\n"
        % (command,)
    )


_OK = b"OK\r\n"

# A stored result's data is sent as base64, this many characters a line.
_DATA_LINE = 65536

_OUTCOMES = [name.encode("ascii") for name in OUTCOME_NAMES]
_MAXQUEUE_OK = b"OK\n"


class AdminCommands:
    """
    Answers the text admin commands of one job server.

    @ivar version: what C{version} reports.
    @ivar verbosity: the log level name C{verbose} reports.
    @ivar shutdown: called with C{graceful} for C{shutdown [graceful]} from a
        loopback peer, or C{None} to answer C{shutdown} as gearmand 1.1.20
        does (unknown command).
    """

    def __init__(
        self,
        server: JobServer,
        version: str = GEARMAND_VERSION,
        verbosity: str = "ERROR",
        shutdown: Optional[Callable[[bool], object]] = None,
        pid: Optional[int] = None,
    ) -> None:
        self.server = server
        self.version = version
        self.verbosity = verbosity
        self.shutdown = shutdown
        self._pid = pid

    def execute(self, peer: Peer, line: bytes) -> Optional[Reply]:
        """
        Run one admin line.

        @param line: the line without its line ending.
        @return: the reply (a L{Listing} for a long list), or C{None} if the
            connection must be closed without one.
        """
        words = adminWords(line)
        if len(words) > MAX_WORDS:
            return None
        command = words[0].lower()
        handler = self._commands.get(command)
        if handler is None:
            return _unknown(words[0])
        return handler(self, peer, words)

    def _status(self, peer: Peer, words: List[bytes]) -> Reply:
        return _reply(
            list(self.server.functions.values()),
            _functionName,
            lambda f: b"%s\t%d\t%d\t%d\n" % (_cstring(f.name), f.total, f.running, f.workers),
        )

    def _priorityStatus(self, peer: Peer, words: List[bytes]) -> Reply:
        return _reply(
            list(self.server.functions.values()),
            _functionName,
            lambda f: b"%s\t%d\t%d\t%d\t%d\n" % (_cstring(f.name), f.queued[0], f.queued[1], f.queued[2], f.workers),
        )

    def _workers(self, peer: Peer, words: List[bytes]) -> Reply:
        # Newest connection first, as gearmand lists them.
        peers = list(self.server.peers)
        peers.reverse()
        if len(peers) <= LISTING_SLICE and sum(len(p.abilities) for p in peers) <= LISTING_SLICE:
            return b"".join([_workerLine(p) for p in peers] + [b".\n"])
        return Listing(_workersListing(peers))

    def _version(self, peer: Peer, words: List[bytes]) -> bytes:
        return b"OK %s\n" % (self.version.encode("ascii"),)

    def _verbose(self, peer: Peer, words: List[bytes]) -> bytes:
        return b"OK %s\n" % (self.verbosity.encode("ascii"),)

    def _getpid(self, peer: Peer, words: List[bytes]) -> bytes:
        pid = os.getpid() if self._pid is None else self._pid
        return b"OK %d\n" % (pid,)

    def _maxqueue(self, peer: Peer, words: List[bytes]) -> bytes:
        if len(words) < 2:
            return _incomplete(words[0])
        # gearmand reads each limit with atoi into an int: 4294967297 is 1,
        # and negative results (3000000000 too) are 0.
        numbers = [max(0, atoi32(word)) for word in words[2:]]
        if not numbers:
            limits = (0, 0, 0)
        elif len(numbers) == 1:
            limits = (numbers[0],) * 3
        elif len(numbers) == 2:
            limits = (numbers[0], numbers[1], 0)
        else:
            limits = (numbers[0], numbers[1], numbers[2])
        self.server.setMaxQueue(words[1], limits)
        # gearmand answers OK\r\n, which Python's pygearman admin client
        # refuses; its other replies to maxqueue end in CRLF as gearmand's.
        return _MAXQUEUE_OK

    def _jobRows(self) -> List[_JobRow]:
        """
        C{(handle, retries, ignore, persisted, unique)} of every live job,
        by handle number.
        """
        ordered = [self._numberedRow(job) for job in self.server.liveJobs()]
        ordered.sort(key=_first)
        return [row for _, row in ordered]

    def _numberedRow(self, job: Job) -> Tuple[int, _JobRow]:
        return (
            self.server.handleNumber(job.handle) or 0,
            (job.handle, job.retries, job.ignore, job.persisted, job.unique),
        )

    def _show(self, peer: Peer, words: List[bytes]) -> Reply:
        if len(words) < 2:
            return _unknown(words[0])
        what = words[1].lower()
        if what == b"jobs" and len(words) == 2:
            key, line = _handleOfRow, _jobLine
        elif what == b"unique" and len(words) == 3 and words[2].lower() == b"jobs":
            key, line = _uniqueOfRow, _uniqueLine
        else:
            return b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n"
        if self.server.jobCount() <= LISTING_SLICE:
            return _reply(self._jobRows(), key, line)
        return Listing(self._jobListing(key, line))

    def _jobListing(self, key: Callable[[_JobRow], bytes], line: Callable[[_JobRow], bytes]) -> Iterator[bytes]:
        """
        L{_jobRows} (the jobs as they were at the first step) made and
        sorted a slice per step, then merged as L{_hashListing} lists them.
        """
        jobs = self.server.liveJobs()
        runs: List[List[Tuple[int, _JobRow]]] = []
        while True:
            run = [self._numberedRow(job) for job in itertools.islice(jobs, LISTING_SLICE)]
            if not run:
                break
            run.sort(key=_first)
            runs.append(run)
            yield b""
        # Merged as they are listed: no step orders more than a slice.
        merged = heapq.merge(*runs, key=_first)
        yield from _hashListing((row for _, row in merged), key, line)

    def _cancel(self, peer: Peer, words: List[bytes]) -> bytes:
        if len(words) <= 2:
            return _unknown(words[0])
        if len(words) != 3 or words[1].lower() != b"job":
            return b"ERR UNKNOWN_ERROR\r\n"
        if self.server.cancel(words[2]):
            return _OK
        return b"ERR UNKNOWN_JOB\r\n"

    def _create(self, peer: Peer, words: List[bytes]) -> bytes:
        if len(words) != 3 or words[1].lower() != b"function":
            return _incomplete(words[0])
        # gearmand 1.1.20 drops the name's last character when the line
        # ends in a bare newline; we keep the name whole.
        self.server.createFunction(words[2])
        return _OK

    def _drop(self, peer: Peer, words: List[bytes]) -> bytes:
        if len(words) != 3 or words[1].lower() != b"function":
            return _incomplete(words[0])
        dropped = self.server.dropFunction(words[2])
        if dropped is None:
            return b"ERR function not found\r\n"
        if not dropped:
            return b"ERR there are still connected workers or executing clients\r\n"
        return _OK

    # Dead letters: words of our own, which no gearmand client sends.

    def _deadLetters(self, peer: Peer, words: List[bytes]) -> bytes:
        """
        C{deadletters}: each function keeping some, with how many it keeps
        and has dropped for room; C{deadletters FUNCTION}: its dead letters,
        oldest first.
        """
        letters = self.server.deadLetters
        if len(words) == 1:
            counts = letters.functions()
            names = sorted(set(counts) | set(letters.dropped))
            lines = [
                b"%s\t%d\t%d\n" % (_cstring(name), counts.get(name, 0), letters.dropped.get(name, 0)) for name in names
            ]
            return b"".join(lines) + b".\n"
        if len(words) != 2:
            return _incomplete(words[0])
        return b"".join(
            b"%d\t%d\t%d\t%s\t%s\t%s\n"
            % (
                letter.ident,
                letter.attempts,
                letter.failed,
                letter.handle,
                _field(letter.unique),
                _field(letter.error),
            )
            for letter in letters.of(words[1])
        ) + b".\n"

    def _policy(self, peer: Peer, words: List[bytes]) -> Reply:
        """
        C{policy FUNCTION}: the lifecycle policy that applies to a function
        (known or not), one C{KEY VALUE} line per setting, as in the policy
        file; C{policy set FUNCTION KEY VALUE} changes one setting at run
        time (VALUE as the file writes it, without spaces); C{policy reset
        FUNCTION} takes back every run-time change.
        """
        if len(words) == 5 and words[1].lower() == b"set":
            key, value = (word.decode("utf-8", "replace") for word in words[3:])
            try:
                setting = parseSetting(key, value)
                _, kept = self.server.keeping(lambda: self.server.changePolicy(words[2], setting))
            except PoliciesError as e:
                return errLine(b"INVALID_ARGUMENTS", str(e))
            return _whenKept(kept, b"OK\n", "the change applies but could not be stored")
        if len(words) == 3 and words[1].lower() == b"reset":
            reset, kept = self.server.keeping(lambda: self.server.resetPolicy(words[2]))
            return _whenKept(kept, b"OK %d\n" % (reset,), "the reset applies but could not be stored")
        if len(words) != 2:
            return _incomplete(words[0])
        described = self.server.policyOf(words[1]).describe()
        if "max-attempts" not in described:
            described["max-attempts"] = self.server.jobRetries
        lines = []
        for key in sorted(described):
            value = described[key]
            if isinstance(value, dict):
                text = " ".join("%s=%s" % (name, _number(value[name])) for name in sorted(value))
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = _number(value)
            lines.append(b"%s %s\n" % (key.encode("ascii"), text.encode("ascii")))
        return b"".join(lines) + b".\n"

    def _result(self, peer: Peer, words: List[bytes]) -> bytes:
        """
        C{result HANDLE}, C{result unique UNIQUE}: where a live job stands,
        else the stored result of the job (the newest with that unique), as
        C{KEY VALUE} lines then C{.}; C{ERR UNKNOWN_JOB} if neither.
        """
        server = self.server
        job: Optional[Job]
        if len(words) == 2:
            job = server.lookup(words[1])
            stored = None if job is not None else server.resultOf(words[1])
        elif len(words) == 3 and words[1].lower() == b"unique":
            job = server.lookupUnique(words[2])
            stored = None if job is not None else server.resultOfUnique(words[2])
        else:
            return _incomplete(words[0])
        if job is not None:
            outcome = b"running" if job.worker is not None else b"queued"
            return b"function %s\nhandle %s\nunique %s\noutcome %s\n.\n" % (
                _whole(job.function.name),
                _whole(job.handle),
                _whole(job.unique),
                outcome,
            )
        if stored is None:
            return b"ERR UNKNOWN_JOB\r\n"
        encoded = base64.b64encode(stored.data)
        return b"".join(
            [
                b"function %s\nhandle %s\nunique %s\noutcome %s\n"
                % (_whole(stored.function), _whole(stored.handle), _whole(stored.unique), _OUTCOMES[stored.outcome]),
                b"finished %.3f\nexpires %.3f\n" % (stored.finished, stored.expires),
            ]
            + [b"data %s\n" % (encoded[i : i + _DATA_LINE],) for i in range(0, len(encoded), _DATA_LINE)]
            + [b".\n"]
        )

    def _retryDead(self, peer: Peer, words: List[bytes]) -> Reply:
        """
        C{retry deadletters FUNCTION [ID]}: answered, once each new job is
        stored, with how many ran again (the others were put back).
        """
        parsed = self._deadArguments(words)
        if isinstance(parsed, bytes):
            return parsed
        return whenFired(self.server.retryDeadLettersWhenStored(*parsed), _retried)

    def _purgeDead(self, peer: Peer, words: List[bytes]) -> Reply:
        """
        C{purge deadletters FUNCTION [ID]}: answered, once the persistent
        queue forgot them too, with how many.
        """
        parsed = self._deadArguments(words)
        if isinstance(parsed, bytes):
            return parsed
        purged, kept = self.server.keeping(lambda: self.server.purgeDeadLetters(*parsed))
        return _whenKept(kept, b"OK %d\n" % (purged,), "purged but the queue could not forget them")

    def _deadArguments(self, words: List[bytes]) -> Union[bytes, Tuple[bytes, Optional[List[int]]]]:
        """
        The function and letter numbers of C{retry|purge deadletters
        FUNCTION [ID]} (all of a function's letters, or the one numbered
        ID), or the error reply.
        """
        if len(words) not in (3, 4) or words[1].lower() != b"deadletters":
            return _incomplete(words[0])
        idents = None
        if len(words) == 4:
            if not words[3].isdigit() or len(words[3]) > 18:
                return b"ERR INVALID_ARGUMENTS dead+letter+numbers+are+whole+numbers\r\n"
            idents = [int(words[3])]
        return words[2], idents

    def _shutdown(self, peer: Peer, words: List[bytes]) -> bytes:
        if self.shutdown is None or not _isLoopback(peer.host):
            return _unknown(words[0])
        graceful = len(words) > 1 and words[1].lower() == b"graceful"
        if len(words) > 1 and not graceful:
            return b"ERR UNKNOWN_ARGS\r\n"
        self.shutdown(graceful)
        return _OK

    _commands = {
        b"status": _status,
        b"prioritystatus": _priorityStatus,
        b"workers": _workers,
        b"version": _version,
        b"verbose": _verbose,
        b"getpid": _getpid,
        b"maxqueue": _maxqueue,
        b"show": _show,
        b"cancel": _cancel,
        b"create": _create,
        b"drop": _drop,
        b"shutdown": _shutdown,
        b"deadletters": _deadLetters,
        b"policy": _policy,
        b"result": _result,
        b"retry": _retryDead,
        b"purge": _purgeDead,
    }


def _handleOfRow(row: _JobRow) -> bytes:
    return row[0]


def _uniqueOfRow(row: _JobRow) -> bytes:
    return row[4]


_first = itemgetter(0)


def _jobLine(row: _JobRow) -> bytes:
    return b"%s\t%d\t%d\t%d\n" % row[:4]


def _uniqueLine(row: _JobRow) -> bytes:
    return b"%s\n" % (_cstring(row[4]),)


def _functionName(function: Function) -> bytes:
    return function.name


def _workerLine(peer: Peer) -> bytes:
    names = b"".join(b" " + _cstring(function.name) for function, _ in reversed(peer.abilities))
    return b"%d %s %s :%s\n" % (peer.fd, peer.host.encode("ascii"), _cstring(peer.clientId), names)


def _workersListing(peers: List[Peer]) -> Iterator[bytes]:
    """
    The C{workers} lines of C{peers}, then C{.}: about L{LISTING_SLICE}
    connections or abilities per step.
    """
    lines: List[bytes] = []
    work = 0
    for peer in peers:
        lines.append(_workerLine(peer))
        work += 1 + len(peer.abilities)
        if work >= LISTING_SLICE:
            yield b"".join(lines)
            lines = []
            work = 0
    lines.append(b".\n")
    yield b"".join(lines)


def _isLoopback(host: str) -> bool:
    return host.startswith("127.") or host in ("::1", "localhost") or host == "unix"
