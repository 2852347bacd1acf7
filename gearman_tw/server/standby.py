# -*- test-case-name: tests.test_server_standby -*-
"""
A standby: several servers share one persistent queue's namespace, and
only the one holding its lease (a key with an expiry in the queue's
database, see L{gearman_tw.interfaces.ILease}) serves.  The others wait
without listening, so that clients and workers configured with every
server's address find the one that serves; when it dies, its lease expires
and a standby takes it, replays the queue and starts listening.

Fencing: the queue writes only while its server holds the lease (the
database checks it with every write), and a server stops serving (its
listeners and connections closed, then the process, with status 1, for a
supervisor to start it again as a standby) once it cannot be sure it still
holds the lease: when a renewal is refused, or when none succeeded for
L{SAFE_FRACTION} of the lease's time, counted from when the last successful
renewal was sent.  The database counts the lease's time from when it got
that renewal, later, so the server stops before the lease can pass to
another, whatever pauses it (C{SIGSTOP}, a frozen VM, a cut network).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from gearman_tw.interfaces import ILease

#: Seconds a lease lasts without a renewal, by default.
DEFAULT_LEASE_TIME = 3.0

#: A standby asks for the lease this often (seconds), by default.
DEFAULT_POLL = 0.5

#: The part of the lease's time after the last renewal was sent that a
#: server goes on serving without a newer one.
SAFE_FRACTION = 0.8

#: The lease is renewed this often, as a part of its time.
RENEW_FRACTION = 0.25


class StandbyService(MultiService):
    """
    Starts its children (the job server's listeners) only while it holds
    the lease, and calls L{onLost} when it may have lost it.

    @ivar serving: whether it holds the lease and its children run.
    @ivar validUntil: until when (the reactor's seconds) it may serve
        without a newer renewal.
    """

    log = Logger()

    def __init__(
        self,
        lease: ILease,
        reactor: IReactorTime,
        onLost: Callable[[str], object],
        poll: float = DEFAULT_POLL,
        closeQueue: Optional[Callable[[], "Deferred[None]"]] = None,
    ) -> None:
        """
        @param lease: the lease of the queue's namespace.
        @param onLost: called once, with why, when the lease may be lost;
            C{twistd gearman} stops the process with status 1.
        @param poll: seconds between two attempts of a standby to take the
            lease.
        @param closeQueue: closes the queue the lease lives in, once the
            children have stopped and the lease was given up.
        """
        super().__init__()
        self.lease = lease
        self.reactor = reactor
        self.onLost = onLost
        self.poll = poll
        self.closeQueue = closeQueue
        self.serving = False
        self._started = False
        self.lost = False
        self.validUntil = 0.0
        self._timer: Optional[IDelayedCall] = None
        self._deadline: Optional[IDelayedCall] = None
        self._waitingLogged = False

    def mayServe(self) -> bool:
        """
        Whether this server may serve now: it holds the lease, renewed
        recently enough (the job server checks this on every read).
        """
        if self.serving and self.reactor.seconds() < self.validUntil:
            return True
        if self.serving:
            self._lose("the lease was not renewed within %g s" % (self.lease.ttl * SAFE_FRACTION,))
        return False

    # Starting and stopping

    def privilegedStartService(self) -> None:
        # The children listen once the lease is held, not before.
        Service.privilegedStartService(self)

    def startService(self) -> None:
        Service.startService(self)
        self._attempt()

    def stopService(self) -> Deferred[None]:
        """
        Stop the children if they were started, then give the lease up (if
        this server still holds it) so that a standby takes over at once,
        then close the queue.
        """
        Service.stopService(self)
        self._cancel()
        holding, self.serving = self.serving, False
        d: Deferred[Any] = MultiService.stopService(self) if self._started else succeed(None)
        if holding:
            d.addCallback(lambda _: self.lease.release())
            d.addErrback(lambda f: self.log.warn("Could not give the lease up: {why}", why=f.getErrorMessage()))
        if self.closeQueue is not None:
            d.addCallback(lambda _: self.closeQueue() if self.closeQueue is not None else None)
            d.addErrback(lambda f: self.log.failure("Closing the persistent queue failed", f))
        return d

    def _cancel(self) -> None:
        for timer in (self._timer, self._deadline):
            if timer is not None and timer.active():
                timer.cancel()
        self._timer = self._deadline = None

    # Taking the lease

    def _attempt(self) -> None:
        self._timer = None
        if not self.running:
            return
        sent = self.reactor.seconds()
        d = self.lease.acquire()
        d.addCallbacks(self._taken, self._notTaken, callbackArgs=(sent,))

    def _taken(self, held: bool, sent: float) -> None:
        if not self.running:
            if held:
                self.lease.release()
            return
        if not held:
            if not self._waitingLogged:
                self._waitingLogged = True
                self.log.info("Standing by: another server holds the lease")
            self._timer = self.reactor.callLater(self.poll, self._attempt)
            return
        self.log.info("Took the lease: serving")
        self.serving = True
        self._started = True
        self._extend(sent)
        for child in self:
            child.privilegedStartService()
        for child in self:
            child.startService()

    def _notTaken(self, failure: Failure) -> None:
        self.log.warn("Could not ask for the lease: {why}", why=failure.getErrorMessage())
        if self.running:
            self._timer = self.reactor.callLater(self.poll, self._attempt)

    # Keeping it

    def _extend(self, sent: float) -> None:
        """
        A renewal sent at C{sent} succeeded: serve until C{sent} and the
        safe part of the lease's time, and renew again a part later.
        """
        ttl = self.lease.ttl
        self.validUntil = max(self.validUntil, sent + ttl * SAFE_FRACTION)
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = self.reactor.callLater(self.validUntil - self.reactor.seconds(), self.mayServe)
        if self._timer is None or not self._timer.active():
            self._timer = self.reactor.callLater(ttl * RENEW_FRACTION, self._renew)

    def _renew(self) -> None:
        self._timer = None
        if not self.serving:
            return
        sent = self.reactor.seconds()
        d = self.lease.renew()
        d.addCallbacks(self._renewed, self._renewFailed, callbackArgs=(sent,))

    def _renewed(self, held: bool, sent: float) -> None:
        if not self.serving:
            return
        if not held:
            self._lose("another server holds the lease")
            return
        self._extend(sent)

    def _renewFailed(self, failure: Failure) -> None:
        if not self.serving:
            return
        # The deadline stops the server if no renewal succeeds in time.
        self.log.warn("Could not renew the lease: {why}", why=failure.getErrorMessage())
        self._timer = self.reactor.callLater(self.lease.ttl * RENEW_FRACTION, self._renew)

    def _lose(self, why: str) -> None:
        if self.lost:
            return
        self.lost = True
        self.serving = False
        self._cancel()
        self.log.critical("Lost the lease ({why}): this server stops serving", why=why)
        self.onLost(why)
