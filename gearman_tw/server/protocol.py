# -*- test-case-name: tests.test_server_protocol -*-
"""
The job server's connection protocol: framing, then dispatch to L{JobServer}.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Tuple, Union

from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from gearman_tw.numbers import atoi
from gearman_tw.protocol import TEXT, PacketParser, PacketType, encode, encodeRaw
from gearman_tw.reads import ReadSizer
from gearman_tw.server.acl import OPEN_ADMIN, Identities, certificateName, jobRefusal
from gearman_tw.server.admin import adminWords, errLine
from gearman_tw.server.flow import FREE_INPUT, OutputFlow
from gearman_tw.server.model import (
    ASSIGN,
    ASSIGN_ALL,
    ASSIGN_UNIQ,
    HIGH,
    LOW,
    MAX_CLIENT_ID,
    MAX_HANDLE,
    MAX_OPTION,
    MAX_UNIQUE,
    NORMAL,
    JobStatus,
    UniqueStatus,
)
from gearman_tw.server.packets import PacketPeer
from gearman_tw.server.writes import connectionSender, sendsDirectly

if TYPE_CHECKING:
    from gearman_tw.server.factory import GearmanServerFactory

#: CAN_DO_TIMEOUT values longer than this drop the connection, as in gearmand.
MAX_TIMEOUT_DIGITS = 20

_INVALID_MAGIC = encode(PacketType.ERROR, b"INVALID_MAGIC", b"Request magic expected")
_INVALID_COMMAND = encode(PacketType.ERROR, b"INVALID_COMMAND", b"Command not expected")
_UNKNOWN_OPTION = encode(
    PacketType.ERROR, b"UNKNOWN_OPTION", b"Server does not recognize given option"
)

# (priority, background) of the plain submit packets, by packet type.  The
# packet tables are keyed by plain ints: the parser gives ints, and looking
# one up among IntEnum keys is slower.
_SUBMITS: Dict[int, Tuple[int, bool]] = {
    int(PacketType.SUBMIT_JOB): (NORMAL, False),
    int(PacketType.SUBMIT_JOB_BG): (NORMAL, True),
    int(PacketType.SUBMIT_JOB_HIGH): (HIGH, False),
    int(PacketType.SUBMIT_JOB_HIGH_BG): (HIGH, True),
    int(PacketType.SUBMIT_JOB_LOW): (LOW, False),
    int(PacketType.SUBMIT_JOB_LOW_BG): (LOW, True),
}

#: How each GRAB asks for its job (L{gearman_tw.server.model.Peer.assign}).
GRAB_FORMS: Dict[int, int] = {
    int(PacketType.GRAB_JOB): ASSIGN,
    int(PacketType.GRAB_JOB_UNIQ): ASSIGN_UNIQ,
    int(PacketType.GRAB_JOB_ALL): ASSIGN_ALL,
}

_INT64_MAX = 2**63 - 1


def statusPayload(status: Union[JobStatus, UniqueStatus]) -> bytes:
    """
    The payload of STATUS_RES (for a L{JobStatus}) or STATUS_RES_UNIQUE (for
    a L{UniqueStatus}): the handle or unique, then each number.
    """
    return b"\0".join([status[0]] + [b"%d" % value for value in status[1:]])

# Why a connection's reading is paused (bits of GearmanServerProtocol._pauses).
# Admin commands that name a job, and what their refusal says of it.
_JOB_VERBS = {b"result": "see", b"cancel": "cancel"}

#: Bytes of admin replies one read may make before the rest of its lines
#: wait until they are sent (and read, if the connection's output is full).
ADMIN_READ_OUTPUT = 1 << 20

_LISTING = 1  # a long admin reply is being sent, or waits
_OUTPUT = 2  # its unsent replies passed the factory's maxOutput
_INPUT = 4  # its large packet waits for room in the factory's InputBudget


class _DropConnection(Exception):
    """
    The packet is one gearmand answers by closing the connection.
    """


def strtoll(value: bytes) -> int:
    """
    Read an epoch time as gearmand does with C{strtoll}: junk reads as 0.

    @raise _DropConnection: the number overflows a signed 64-bit integer.
    """
    number = atoi(value)
    if number > _INT64_MAX or number < -_INT64_MAX - 1:
        raise _DropConnection()
    return number


class GearmanServerProtocol(Protocol):
    """
    One connection to the job server, speaking binary Gearman and the text
    admin protocol on the same stream.

    @ivar peer: this connection's state in the job server.
    @ivar flow: what its transport holds unsent.
    @ivar received: bytes received so far.
    """

    factory: "GearmanServerFactory"
    peer: PacketPeer
    flow: OutputFlow

    def __init__(self) -> None:
        self._parser: Optional[PacketParser] = None
        self._closing = False
        self._reads: Optional[ReadSizer] = None
        # A long admin reply being sent a slice per reactor turn, and what
        # arrived meanwhile (this connection's next commands wait for it).
        self._listing: Optional[Iterator[bytes]] = None
        # An admin reply waits for the persistent queue (see _text).
        self._replyWaits = False
        # Bytes of admin replies made in this read.
        self._adminBytes = 0
        self._held: List[bytes] = []
        self._sliceCall: Optional[IDelayedCall] = None
        self._pauses = 0
        # How this connection's last GRAB asked, while its empty answer
        # waits for the end of the reactor turn (L{_grab}).
        self.emptyGrab: Optional[int] = None
        # Bytes of the factory's InputBudget granted to this connection, and
        # whether it waits for a grant.
        self._reserved = 0
        self._awaiting = False
        self.received = 0
        self._identities: Optional[Identities] = None
        # (stream offset, time): where the unfinished packet that overdue()
        # last saw begins, and when it first saw it.
        self._unfinished: Optional[Tuple[int, float]] = None
        # The address this connection counts against (the factory's
        # per-address limit), until it closes.
        self.limitedAddress: Optional[str] = None

    def connectionMade(self) -> None:
        factory = self.factory
        transport = self.transport
        assert transport is not None
        self._parser = PacketParser(maxPacketSize=factory.maxPacketSize)
        fileno = getattr(transport, "fileno", None)
        fd = fileno() if fileno is not None else factory.nextConnectionNumber()
        address = transport.getPeer()
        # UNIX socket peers have no address: "workers" shows "unix", and
        # they count as local for the admin "shutdown" command.
        host = getattr(address, "host", None) or ("unix" if isinstance(address, UNIXAddress) else "-")
        self.flow = OutputFlow(
            transport,
            factory.maxOutput,
            self._outputFull,
            self._outputDrained,
            streaming=not sendsDirectly(transport),
        )
        self.peer = PacketPeer(
            connectionSender(transport, self.flow), fd, host, factory.server.exceptions, factory.writes
        )
        factory.configureTransport(transport)
        self._reads = ReadSizer.forTransport(transport)
        factory.connections[self] = None
        factory.server.peerConnected(self.peer)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._closing = True
        self.emptyGrab = None
        self._listing = None
        if self._sliceCall is not None and self._sliceCall.active():
            self._sliceCall.cancel()
        self._budget(0)
        self.factory.connectionClosed(self, reason)
        self.factory.server.peerLost(self.peer)

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        fence = self.factory.fence
        if fence is not None and not fence():
            # A standby's lease may be lost: serve nothing more.
            self.close()
            return
        self.received += len(data)
        self._adminBytes = 0
        if self._listing is not None:
            # Read before reading paused: parsed once the listing is sent.
            self._held.append(data)
            return
        parser = self._parser
        assert parser is not None
        handlers = _HANDLERS
        submits = _SUBMITS
        peer = self.peer
        factory = self.factory
        submit = factory.server.submit if factory.acl is None else self._checkedSubmit
        # Replies go out at the end of the read, one write per connection
        # (the factory's WriteBatch).
        writes = factory.writes
        writes.begin()
        packets = parser.packets(data)
        try:
            for ptype, args, payload in packets:
                if self.emptyGrab is not None:
                    # Its NO_JOB goes before the reply to what follows.
                    self.answerGrab()
                kind = submits.get(ptype)
                if kind is not None:
                    # The hot path: plain submissions go straight in.
                    submit(peer, args[0], args[1], args[2], kind[0], kind[1])
                    continue
                handler = handlers.get(ptype)
                try:
                    if handler is None:
                        self._unexpected(ptype, payload)
                    else:
                        handler(self, args, payload)
                except _DropConnection:
                    self._drop("refused packet %d" % (ptype,))
                    return
                if self._closing or self._listing is not None:
                    # A listing goes out first; the rest of this read stays
                    # in the parser until it has.
                    return
            failure = parser.failure
            if failure is not None:
                if failure.code is not None:
                    peer.write(encode(PacketType.ERROR, failure.code, failure.text))
                self._drop(failure.text.decode("ascii", "replace"))
        finally:
            # Closed here, not when collected: the parser then keeps only
            # the packets this read did not handle, even after an error.
            packets.close()
            pending = parser.pending
            reads = self._reads
            if reads is not None:
                reads.received(len(data), pending > 0)
            if pending > FREE_INPUT or self._reserved or self._awaiting:
                self._budget(parser.needed if pending > FREE_INPUT else 0)
            server = factory.server
            if server.storing:
                # Start storing what this read submitted now, so the queue
                # works while the reactor reads the next connection.
                server.flushStores()
            writes.flush()

    def _drop(self, why: str) -> None:
        # Send what this read gathered now: some transports (TLS) drop
        # writes made after loseConnection.
        self.factory.writes.flush()
        self.factory.log.error(
            "Closing connection from {host}: {why}", host=self.peer.host, why=why
        )
        self.close()

    def close(self) -> None:
        """
        Close the connection once what was written to it is sent.
        """
        self._closing = True
        self.flow.detach()
        self.transport.loseConnection()  # type: ignore[union-attr]

    # Flow control

    def _pause(self, reason: int) -> None:
        if not self._pauses:
            self.transport.pauseProducing()  # type: ignore[union-attr]
        self._pauses |= reason

    def _resume(self, reason: int) -> None:
        if self._pauses & reason:
            self._pauses &= ~reason
            if not self._pauses and not self._closing:
                self.transport.resumeProducing()  # type: ignore[union-attr]

    @property
    def paused(self) -> bool:
        """
        The server stopped reading from this connection for now.
        """
        return bool(self._pauses)

    def _outputFull(self) -> None:
        self._pause(_OUTPUT)

    def _outputDrained(self) -> None:
        self._resume(_OUTPUT)
        if self._listing is not None and self._sliceCall is None and not self._closing:
            self._sliceCall = self.factory.server.reactor.callLater(0, self._slice)

    def _budget(self, size: int) -> None:
        """
        Hold C{size} bytes of the factory's L{InputBudget} for the packet
        arriving (0 when none is large), pausing reading until granted.
        """
        if size == self._reserved and not self._awaiting:
            return
        budget = self.factory.inputBudget
        if self._reserved or self._awaiting:
            budget.release(self, self._reserved)
            self._reserved = 0
            self._awaiting = False
        if size:
            if budget.reserve(self, size):
                self._reserved = size
            else:
                self._awaiting = True
                self._pause(_INPUT)

    def inputGranted(self, size: int) -> None:
        """
        The L{InputBudget} granted this connection's waiting reservation.
        """
        self._awaiting = False
        self._reserved = size
        self._resume(_INPUT)

    def overdue(self, now: float, timeout: float) -> bool:
        """
        Whether this connection has kept the same packet or line unfinished,
        or has said nothing since it connected, for C{timeout} seconds, as
        seen by calls to this method at times C{now} (its first sight of an
        unfinished packet starts the clock).  Connections whose reading the
        server paused are never overdue.
        """
        parser = self._parser
        if self._pauses or self._closing or parser is None:
            self._unfinished = None
            return False
        pending = parser.pending
        if not pending and self.received:
            self._unfinished = None
            return False
        start = self.received - pending
        seen = self._unfinished
        if seen is None or seen[0] != start:
            self._unfinished = (start, now)
            return False
        return now - seen[1] >= timeout

    def _unexpected(self, ptype: int, payload: bytes) -> None:
        if ptype < 0:
            self.peer.write(_INVALID_MAGIC)
        else:
            self.peer.write(_INVALID_COMMAND)

    # Access control (only with a policy: factory.acl)

    @property
    def identities(self) -> Identities:
        """
        Who this connection's peer is, for the access policy: its address
        and the name on its TLS client certificate (known once it has sent
        a packet, the handshake done).
        """
        identities = self._identities
        if identities is None:
            name = certificateName(self.transport)
            identities = self._identities = Identities(
                ["cert:" + name] if name else [], getattr(self.transport.getPeer(), "host", None)  # type: ignore[union-attr]
            )
        return identities

    def _refused(self, action: str, function: bytes) -> Optional[str]:
        """
        Why the policy refuses this peer C{action} on C{function}, or
        C{None} (also when there is no policy).
        """
        acl = self.factory.acl
        if acl is None:
            return None
        why = acl.check(self.identities, action, function)
        if why is not None:
            self.factory.log.warn("Refused: {why}", why=why)
        return why

    def _refusedPacket(self, action: str, function: bytes) -> bool:
        why = self._refused(action, function)
        if why is None:
            return False
        self.peer.write(encode(PacketType.ERROR, b"PERMISSION_DENIED", why.encode("utf-8", "replace")))
        return True

    def _checkedSubmit(
        self, peer: PacketPeer, name: bytes, unique: bytes, data: bytes, priority: int, background: bool
    ) -> None:
        if not self._refusedPacket("submit", name):
            self.factory.server.submit(peer, name, unique, data, priority, background)

    def _adminTarget(self, line: bytes) -> Optional[bytes]:
        """
        The function an admin line acts on for the policy (C{*} for all),
        or C{None} for the commands open to everyone.

        C{result} and C{cancel job} act on the function of the job they
        name, or on C{*} when the server does not know it.
        """
        words = adminWords(line)
        command = words[0].lower()
        if not command or command in OPEN_ADMIN:
            # No command (a blank line, answered as an unknown one).
            return None
        if command in (b"create", b"drop") and len(words) == 3 and words[1].lower() == b"function":
            return words[2]
        if command == b"maxqueue" and len(words) >= 2:
            return words[1]
        if command in (b"deadletters", b"policy") and len(words) == 2:
            return words[1]
        if command == b"policy" and len(words) >= 3 and words[1].lower() in (b"set", b"reset"):
            return words[2]
        if command in (b"retry", b"purge") and len(words) >= 3 and words[1].lower() == b"deadletters":
            return words[2]
        if command == b"result" and len(words) in (2, 3):
            server = self.factory.server
            unique = len(words) == 3
            live = server.lookupUnique(words[2]) if unique else server.lookup(words[1])
            if live is not None:
                return live.function.name  # type: ignore[no-any-return]
            stored = server.resultOfUnique(words[2]) if unique else server.resultOf(words[1])
            if stored is not None:
                return stored.function  # type: ignore[no-any-return]
        if command == b"cancel" and len(words) == 3 and words[1].lower() == b"job":
            job = self.factory.server.lookup(words[2])
            if job is not None:
                return job.function.name  # type: ignore[no-any-return]
        return b"*"

    # Admin

    def _text(self, args: List[bytes], line: bytes) -> None:
        if self.factory.acl is not None:
            target = self._adminTarget(line)
            why = None if target is None else self._refused("admin", target)
            if why is not None:
                verb = _JOB_VERBS.get(adminWords(line)[0].lower())
                if verb is not None:
                    # The same refusal whether or not the job exists and
                    # whatever its function: who may not administer every
                    # function learns neither (as over HTTP).  The log
                    # above has the whole reason.
                    why = jobRefusal(self.identities, verb)
                self.peer.write(errLine(b"PERMISSION_DENIED", why))
                return
        reply = self.factory.admin.execute(self.peer, line)
        if reply is None:
            self._drop("admin line with too many words")
        elif isinstance(reply, bytes):
            self.peer.write(reply)
            self._adminBytes += len(reply)
            if self._adminBytes >= ADMIN_READ_OUTPUT:
                # Lines read together that ask for much (results, dead
                # letters) wait until these replies are sent and read, as
                # the rest of a listing would.
                self._hold(iter(()))
        elif isinstance(reply, Deferred):
            # Answered once the persistent queue has the change; the lines
            # after it wait, so the replies keep their order.
            self._replyWaits = True
            self._hold(iter(()))
            reply.addCallbacks(self._deferredReply, self._deferredFailed)
        else:
            self._hold(iter(reply))

    def _hold(self, listing: Iterator[bytes]) -> None:
        """
        Send C{listing} a slice at a time; until it is all sent (and read,
        when the connection's output is full) read nothing more.
        """
        self._listing = listing
        self._pause(_LISTING)
        self._sliceCall = self.factory.server.reactor.callLater(0, self._slice)

    def _deferredReply(self, reply: bytes) -> None:
        self._replyWaits = False
        if self._closing or self._listing is None:
            return
        self._listing = iter([reply])
        if self._sliceCall is None:
            self._slice()

    def _deferredFailed(self, failure: Failure) -> None:
        self.factory.log.failure("Admin command failed", failure)
        self._deferredReply(b"ERR UNKNOWN_ERROR the+command+failed:+see+the+server's+log\r\n")

    def _slice(self) -> None:
        """
        Make and send the next slice of the listing; once it is all sent
        and the connection's output not full, read and handle this
        connection's next commands again.
        """
        self._sliceCall = None
        listing = self._listing
        if listing is None or self._closing or self._replyWaits:
            return
        chunk = next(listing, None)
        if chunk is not None:
            if chunk:
                self.peer.write(chunk)
            if not self.flow.full:
                # Otherwise the next slice waits until the client has read
                # this one (_outputDrained).
                self._sliceCall = self.factory.server.reactor.callLater(0, self._slice)
            return
        if self.flow.full:
            return  # _outputDrained comes back here
        self._listing = None
        held, self._held = self._held, []
        self._resume(_LISTING)
        self.dataReceived(b"".join(held))

    # Worker packets

    def _canDo(self, args: List[bytes], payload: bytes) -> None:
        if self._refusedPacket("work", args[0]):
            return
        self.factory.server.canDo(self.peer, args[0], 0)

    def _canDoTimeout(self, args: List[bytes], payload: bytes) -> None:
        name, value = args
        if self._refusedPacket("work", name):
            return
        if len(value) > MAX_TIMEOUT_DIGITS:
            raise _DropConnection()
        milliseconds = atoi(value)
        if milliseconds >= _INT64_MAX or milliseconds <= -_INT64_MAX - 1:
            # strtoll's overflow results: gearmand drops the connection.
            raise _DropConnection()
        if milliseconds <= 0:
            timeout = 0.0
        else:
            timeout = max(milliseconds, 1000) / 1000.0
        self.factory.server.canDo(self.peer, name, timeout)

    def _cantDo(self, args: List[bytes], payload: bytes) -> None:
        self.factory.server.cantDo(self.peer, args[0])

    def _resetAbilities(self, args: List[bytes], payload: bytes) -> None:
        self.factory.server.resetAbilities(self.peer)

    def _preSleep(self, args: List[bytes], payload: bytes) -> None:
        self.factory.server.preSleep(self.peer)

    def _grab(self, args: List[bytes], payload: bytes, form: int) -> None:
        # Nothing to grab now: ask again once the reactor has handled this
        # turn's reads, which may submit jobs (the factory's grabLater).
        # Answered at once, the worker would send PRE_SLEEP, be woken by a
        # NOOP and GRAB again: three packets more for the same job.
        if not self.factory.server.grab(self.peer, form, answerEmpty=False):
            self.emptyGrab = form
            self.factory.grabLater(self)

    def answerGrab(self) -> None:
        """
        Answer the GRAB that found nothing (L{emptyGrab}): with a job if one
        came since, else NO_JOB.
        """
        form, self.emptyGrab = self.emptyGrab, None
        if form is not None and not self._closing:
            self.factory.server.grab(self.peer, form)

    def _workData(self, args: List[bytes], payload: bytes) -> None:
        self.factory.server.workData(self.peer, args[0], args[1])

    def _workWarning(self, args: List[bytes], payload: bytes) -> None:
        self.factory.server.workWarning(self.peer, args[0], args[1])

    def _workStatus(self, args: List[bytes], payload: bytes) -> None:
        self.factory.server.workStatus(self.peer, args[0], args[1], args[2])

    def _workComplete(self, args: List[bytes], payload: bytes) -> None:
        self.factory.server.workComplete(self.peer, args[0], args[1])

    def _workFail(self, args: List[bytes], payload: bytes) -> None:
        # gearmand reads the handle as a C string and forwards the payload:
        # what follows the handle's NUL goes to the clients as sent.
        handle, separator, detail = payload.partition(b"\0")
        self.factory.server.workFail(self.peer, handle, detail if separator else None)

    def _workException(self, args: List[bytes], payload: bytes) -> None:
        self.factory.server.workException(self.peer, args[0], args[1])

    # Client packets (plain submissions are dispatched in dataReceived)

    def _submitEpoch(self, args: List[bytes], payload: bytes) -> None:
        name, unique, epoch, data = args
        when = strtoll(epoch)
        if self._refusedPacket("submit", name):
            return
        self.factory.server.submit(
            self.peer, name, unique, data, NORMAL, True, when if when > 0 else 0
        )

    def _submitReduce(self, args: List[bytes], payload: bytes) -> None:
        name, unique, reducer, _aggregator, data = args
        if self._refusedPacket("submit", name):
            return
        # An empty reducer is no reducer, as in gearmand.
        self.factory.server.submit(self.peer, name, unique, data, NORMAL, False, 0, reducer or None)

    def _submitReduceBackground(self, args: List[bytes], payload: bytes) -> None:
        name, unique, reducer, _aggregator, data = args
        if self._refusedPacket("submit", name):
            return
        self.factory.server.submit(self.peer, name, unique, data, NORMAL, True, 0, reducer or None)

    def _getStatus(self, args: List[bytes], payload: bytes) -> None:
        handle = args[0].split(b"\0", 1)[0]
        if len(handle) > MAX_HANDLE:
            # gearmand neither answers nor keeps the connection.
            raise _DropConnection()
        self.peer.write(encodeRaw(PacketType.STATUS_RES, statusPayload(self.factory.server.getStatus(handle))))

    def _getStatusUnique(self, args: List[bytes], payload: bytes) -> None:
        unique = args[0].split(b"\0", 1)[0]
        # gearmand closes at 64 bytes, but we keep 64-byte uniques whole,
        # so those must be askable; longer ones close as in gearmand.
        if len(unique) > MAX_UNIQUE:
            raise _DropConnection()
        status = self.factory.server.getStatusUnique(unique)
        self.peer.write(encodeRaw(PacketType.STATUS_RES_UNIQUE, statusPayload(status)))

    # Any side

    def _echo(self, args: List[bytes], payload: bytes) -> None:
        self.peer.write(encodeRaw(PacketType.ECHO_RES, payload))

    def _setClientId(self, args: List[bytes], payload: bytes) -> None:
        self.peer.clientId = args[0][:MAX_CLIENT_ID]

    def _optionReq(self, args: List[bytes], payload: bytes) -> None:
        name = args[0]
        option = name.split(b"\0", 1)[0]
        if len(option) <= MAX_OPTION and option.lower() == b"exceptions":
            self.peer.exceptions = True
            self.peer.write(encode(PacketType.OPTION_RES, name))
        else:
            self.peer.write(_UNKNOWN_OPTION)


_HANDLERS: Dict[int, Callable[[GearmanServerProtocol, List[bytes], bytes], None]] = {
    TEXT: GearmanServerProtocol._text,
    PacketType.CAN_DO: GearmanServerProtocol._canDo,
    PacketType.CANT_DO: GearmanServerProtocol._cantDo,
    PacketType.RESET_ABILITIES: GearmanServerProtocol._resetAbilities,
    PacketType.PRE_SLEEP: GearmanServerProtocol._preSleep,
    PacketType.WORK_STATUS: GearmanServerProtocol._workStatus,
    PacketType.WORK_COMPLETE: GearmanServerProtocol._workComplete,
    PacketType.WORK_FAIL: GearmanServerProtocol._workFail,
    PacketType.WORK_EXCEPTION: GearmanServerProtocol._workException,
    PacketType.WORK_DATA: GearmanServerProtocol._workData,
    PacketType.WORK_WARNING: GearmanServerProtocol._workWarning,
    PacketType.GET_STATUS: GearmanServerProtocol._getStatus,
    PacketType.GET_STATUS_UNIQUE: GearmanServerProtocol._getStatusUnique,
    PacketType.ECHO_REQ: GearmanServerProtocol._echo,
    PacketType.SET_CLIENT_ID: GearmanServerProtocol._setClientId,
    PacketType.CAN_DO_TIMEOUT: GearmanServerProtocol._canDoTimeout,
    PacketType.OPTION_REQ: GearmanServerProtocol._optionReq,
    PacketType.SUBMIT_JOB_EPOCH: GearmanServerProtocol._submitEpoch,
    PacketType.SUBMIT_REDUCE_JOB: GearmanServerProtocol._submitReduce,
    PacketType.SUBMIT_REDUCE_JOB_BACKGROUND: GearmanServerProtocol._submitReduceBackground,
}
_HANDLERS.update(
    (ptype, partial(GearmanServerProtocol._grab, form=form))
    for ptype, form in GRAB_FORMS.items()
)
_HANDLERS = {int(ptype): handler for ptype, handler in _HANDLERS.items()}
