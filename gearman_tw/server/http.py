# -*- test-case-name: tests.test_server_http -*-
"""
HTTP in front of the job server, as a twisted.web resource tree:

  - gearmand's HTTP protocol: C{POST /FUNCTION} (body = workload; C{PUT}
    too) runs a job and answers with its result; headers
    C{X-Gearman-Unique}, C{X-Gearman-Background: true} and
    C{X-Gearman-Priority: high|low} work as in gearmand.  Unlike gearmand,
    C{GET} and C{HEAD} never run a job;
  - our JSON API under C{/api/};
  - Prometheus metrics at C{/metrics} (see L{gearman_tw.server.metrics});
  - a live monitor page at C{/}.

Request bodies are limited as they arrive, by L{LimitedRequest}: one limit
for every route, enforced before a body is held in memory.

Who may use the site is decided by an L{AccessPolicy} before any route
sees the request: names in C{Host} on loopback connections (against DNS
rebinding), the origin of requests that may change something, and
optionally a bearer token for those.

Each HTTP job is submitted through an in-process connection to the
L{JobServer}, so coalescing, priorities and disconnects behave exactly as
for a binary client.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import re
import time
from importlib.resources import files
from typing import (
    IO,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    NoReturn,
    Optional,
    Tuple,
    TypeVar,
    Union,
    cast,
)

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import REQUEST_ENTITY_TOO_LARGE, RESPONSES
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from gearman_tw.server import sliced
from gearman_tw.server.acl import AccessControl, Identities, certificateName, jobRefusal
from gearman_tw.server.deadletters import DeadLetter
from gearman_tw.server.jobs import JobServer, whenFired
from gearman_tw.server.lifecycle import DEFAULT_POLICY, PoliciesError, Policy, changed
from gearman_tw.server.model import HIGH, LOW, MAX_UNIQUE, NORMAL, Function, Job, Peer
from gearman_tw.server.results import OUTCOME_NAMES, StoredResult

T = TypeVar("T")

_PRIORITIES = {b"high": HIGH, b"low": LOW}

#: Seconds a job for a function with no worker waits before a 504.
DEFAULT_NO_WORKER_TIMEOUT = 30.0

#: The largest request body accepted (bytes).
DEFAULT_MAX_BODY = 64 * 1024 * 1024


class LimitedRequest(Request):
    """
    A request whose body may not exceed C{maxBody} bytes, on any route.

    A declared Content-Length over the limit is answered with 413 as soon
    as the headers end, before any of the body is read; a body without one
    (chunked) is answered with 413 as soon as it passes the limit, and
    nothing past the limit is kept.  Either way the connection is closed,
    which stops reading from it, and the request never reaches a resource.

    Both hooks are L{twisted.web.iweb.IRequest}'s: C{gotLength} when the
    headers are done, C{handleContentChunk} for each piece of the body.

    @ivar maxBody: the limit, in bytes.
    @ivar bodyLength: the body bytes received so far.
    @ivar refused: whether this request was answered with 413.
    """

    def __init__(self, *args: Any, maxBody: int = DEFAULT_MAX_BODY, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.maxBody = maxBody
        self.bodyLength = 0
        self.refused = False

    def gotLength(self, length: Optional[int]) -> None:
        if length is not None and length > self.maxBody:
            super().gotLength(0)  # an empty body: none of it will be kept
            # Expect: 100-continue would have the channel invite the body
            # after our answer; a final status replaces the invitation.
            self.requestHeaders.removeHeader(b"Expect")
            self._refuse(
                "Request body of %d bytes is larger than the limit of %d bytes\n"
                % (length, self.maxBody)
            )
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        self.bodyLength += len(data)
        if self.bodyLength > self.maxBody:
            self._refuse("Request body is larger than the limit of %d bytes\n" % (self.maxBody,))
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # The body of a refused request may still end in the bytes already
        # received; it was answered, so it is not processed.
        if not self.refused:
            super().requestReceived(command, path, version)

    def _refuse(self, reason: str) -> None:
        """
        Answer 413 with C{reason} now, before the request line is handed
        over (so not through L{write}, which needs it), and close.
        """
        self.refused = True
        body = reason.encode("ascii")
        headers = Headers()
        headers.setRawHeaders(b"Content-Type", [b"text/plain; charset=utf-8"])
        headers.setRawHeaders(b"Content-Length", [b"%d" % (len(body),)])
        headers.setRawHeaders(b"Connection", [b"close"])
        code = REQUEST_ENTITY_TOO_LARGE
        self.channel.writeHeaders(b"HTTP/1.1", b"%d" % (code,), RESPONSES[code], headers)
        self.channel.write(body)
        self.channel.loseConnection()


#: Methods that only read: neither their origin nor a token is checked.
SAFE_METHODS = frozenset([b"GET", b"HEAD"])

#: The reasons a request is refused, as counted in L{AccessPolicy.refused}.
REFUSAL_REASONS = ("host", "origin", "token")

_DEFAULT_PORTS = {"http": 80, "https": 443}

_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


class Refusal(NamedTuple):
    """
    Why a request is refused.

    @ivar code: the HTTP status: 401 or 403 (503 while the server starts).
    @ivar reason: C{"host"}, C{"origin"} or C{"token"} (counted by the
        L{AccessPolicy}), or C{"acl"} (counted by the access policy), or
        C{"starting"}.
    @ivar message: one line for people.
    """

    code: int
    reason: str
    message: str


def _splitAuthority(value: str) -> Optional[Tuple[str, Optional[int]]]:
    """
    The host (lower case, IPv6 without brackets, no final dot) and port of
    a C{Host} header or of an origin's authority, or L{None} if it is not
    one: a name, an IPv4 address or a bracketed IPv6 address, then an
    optional C{:PORT}.
    """
    value = value.strip().lower()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
        if not bracket:
            return None
    else:
        host, colon, digits = value.partition(":")
        rest = colon + digits
        if not _NAME.fullmatch(host):
            return None
        host = host[:-1] if host.endswith(".") else host
    if not rest:
        return host, None
    if not rest.startswith(":") or not rest[1:].isascii() or not rest[1:].isdigit() or len(rest) > 6:
        return None
    port = int(rest[1:])
    return (host, port) if port <= 65535 else None


def _isAddress(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _isLoopback(address: IAddress) -> bool:
    """
    Whether C{address} (the server's end of a connection) is a loopback
    address: 127.0.0.0/8, ::1 or 127.0.0.0/8 mapped into IPv6.
    """
    if not isinstance(address, (IPv4Address, IPv6Address)):
        return False
    try:
        ip = ipaddress.ip_address(address.host.partition("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _quote(value: bytes, limit: int = 80) -> str:
    """
    A header value for a one-line message: ASCII, no control characters,
    at most C{limit} characters.
    """
    text = value.decode("ascii", "replace")
    text = "".join(c if " " <= c < "\x7f" else "?" for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


def bearerToken(request: Request) -> Optional[bytes]:
    """
    The token of C{request}'s C{Authorization: Bearer TOKEN} header, or
    L{None} when it has no such header.
    """
    scheme, _, given = (request.getHeader(b"authorization") or b"").strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    return given.strip()


class AccessPolicy:
    """
    Who may use the HTTP site; checked before any route sees a request.

      - On a connection to a loopback address, or on any connection when
        C{allowedHosts} is not empty, the C{Host} header must name an IP
        address, C{localhost} or one of C{allowedHosts}: a page whose name
        an attacker points at 127.0.0.1 (DNS rebinding) gets 403 even for
        reads.
      - A request with a method other than GET and HEAD (one that may
        change something) gets 403 if it comes from a page of another
        origin: its C{Origin} header is not the scheme, host and port it
        was sent to, or its C{Sec-Fetch-Site} is C{cross-site} or
        C{same-site}.  Always, with or without a token.
      - With a C{token}, such a request also needs C{Authorization: Bearer
        TOKEN}, or gets 401.

    @ivar token: the bearer token, or L{None} for none.  The tokens of
        C{acl}'s policy are accepted too.
    @ivar acl: the access policy, whose rules decide per function
        (L{GearmanResource.refused}), or L{None}.
    @ivar allowedHosts: host names served besides IP addresses and
        C{localhost}, in lower case.
    @ivar refused: how many requests were refused, by reason (the keys of
        L{REFUSAL_REASONS}).
    """

    def __init__(
        self,
        token: Optional[bytes] = None,
        allowedHosts: Iterable[str] = (),
        acl: Optional[AccessControl] = None,
    ) -> None:
        self.token = token
        self.acl = acl
        self.allowedHosts = frozenset(name.lower().rstrip(".") for name in allowedHosts)
        self.refused: Dict[str, int] = dict.fromkeys(REFUSAL_REASONS, 0)

    def check(self, request: Request) -> Optional[Refusal]:
        """
        Why C{request} must be refused, counted in L{refused}; L{None} if
        it may go on.
        """
        refusal = self._check(request)
        if refusal is not None:
            self.refused[refusal.reason] += 1
        return refusal

    def _check(self, request: Request) -> Optional[Refusal]:
        host = request.getHeader(b"host")
        if host is not None and (self.allowedHosts or _isLoopback(request.getHost())):
            authority = _splitAuthority(host.decode("latin-1"))
            name = authority[0] if authority is not None else ""
            if not (name == "localhost" or _isAddress(name) or name in self.allowedHosts):
                return Refusal(
                    403,
                    "host",
                    "Host %s is not a name of this server: use its address or localhost, "
                    "or allow the name with --http-allowed-host" % (_quote(host),),
                )
        if request.method in SAFE_METHODS:
            return None
        site = (request.getHeader(b"sec-fetch-site") or b"").lower()
        if site in (b"cross-site", b"same-site"):
            return Refusal(
                403,
                "origin",
                "a cross-site request (Sec-Fetch-Site: %s) may not change anything here"
                % (site.decode("ascii"),),
            )
        origin = request.getHeader(b"origin")
        if origin is not None and not self._sameOrigin(origin, host, request.isSecure()):
            return Refusal(
                403,
                "origin",
                "a request from another origin (%s) may not change anything here" % (_quote(origin),),
            )
        return self._token(request)

    def checkToken(self, request: Request) -> Optional[Refusal]:
        """
        Why C{request}, a read that shows jobs' data (a function's dead
        letters), must be refused for want of the token, counted in
        L{refused}; L{None} if it may go on (always, without a token).
        The other checks were made before any route saw it.
        """
        refusal = self._token(request)
        if refusal is not None:
            self.refused[refusal.reason] += 1
        return refusal

    def _token(self, request: Request) -> Optional[Refusal]:
        if self.token is not None:
            given = bearerToken(request)
            if given is None:
                return Refusal(401, "token", "this request needs the token: Authorization: Bearer TOKEN")
            if not hmac.compare_digest(given, self.token) and (
                self.acl is None or self.acl.tokenName(given) is None
            ):
                return Refusal(401, "token", "the bearer token is not this server's")
        return None

    @staticmethod
    def _sameOrigin(origin: bytes, host: Optional[bytes], secure: bool) -> bool:
        """
        Whether C{origin} (an C{Origin} header) is the scheme, host and port
        of a request to C{host} (its C{Host} header), over TLS or not.
        """
        if host is None:
            return False
        scheme, separator, authority = origin.decode("latin-1").lower().partition("://")
        if not separator or scheme not in _DEFAULT_PORTS:
            return False
        theirs = _splitAuthority(authority)
        ours = _splitAuthority(host.decode("latin-1"))
        if theirs is None or ours is None:
            return False
        ourScheme = "https" if secure else "http"
        return (scheme, theirs[0], theirs[1] or _DEFAULT_PORTS[scheme]) == (
            ourScheme,
            ours[0],
            ours[1] or _DEFAULT_PORTS[ourScheme],
        )


#: The answer to every request while the server replays its persistent
#: queue.
_REPLAYING = Refusal(
    503, "starting", "the server is starting: it is replaying its persistent queue; try again shortly"
)


class _RefusalPage(Resource):
    """
    The answer to a request its L{AccessPolicy} refused, or that comes
    while the server starts: the status and a one-line reason, as JSON
    under C{/api/} and as text elsewhere.
    """

    isLeaf = True

    def __init__(self, refusal: Refusal, asJSON: bool) -> None:
        super().__init__()
        self.refusal = refusal
        self.asJSON = asJSON

    def render(self, request: Request) -> bytes:
        refusal = self.refusal
        request.setResponseCode(refusal.code)
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        if refusal.code == 401:
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="gearman"')
        elif refusal.code == 503:
            request.setHeader(b"Retry-After", b"1")
        if self.asJSON:
            request.setHeader(b"Content-Type", b"application/json")
            return json.dumps({"error": refusal.message}).encode("utf-8") + b"\n"
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return refusal.message.encode("utf-8") + b"\n"


def _readBody(request: Request, maxBody: int) -> Optional[bytes]:
    """
    C{request}'s body, or L{None} if it is longer than C{maxBody} (reading
    at most one byte more), for a resource served without
    L{LimitedRequest}.
    """
    if request.content is None:
        return b""
    body = cast(IO[bytes], request.content).read(maxBody + 1)
    return None if len(body) > maxBody else body


def _fileno(request: Request) -> int:
    """
    The file descriptor of C{request}'s connection, which C{workers} shows
    as gearmand does for its HTTP clients; -1 if it has none.
    """
    try:
        # Not every transport has a handle (ITransport promises none).
        transport: Any = request.channel.transport
        return int(transport.getHandle().fileno())
    except (AttributeError, OSError, ValueError):
        return -1


# How an HTTP request's job ends, for its renderer.
_CREATED = "created"
_COMPLETE = "complete"
_FAILED = "failed"
_EXCEPTION = "exception"
_ERROR = "error"
_NO_WORKER = "no worker"


class _HTTPPeer(Peer):
    """
    An HTTP request's job as a connection of the job server: the replies
    go to the L{_HTTPJob}.
    """

    __slots__ = ("_held", "_job")

    def __init__(self, job: "_HTTPJob", fd: int, host: str) -> None:
        super().__init__(fd, host, exceptions=True)
        self._job = job
        self._held: Optional[Job] = None

    def created(self, handle: bytes) -> None:
        if not self.lost:
            self._job.created(handle)

    def hold(self, job: Job) -> None:
        self._held = job

    def refuse(self, job: Job, code: bytes, text: bytes) -> None:
        if job is self._held:
            self._held = None
            self.error(code, text)

    def release(self) -> None:
        held = self._held
        if held is not None and held.waiting is None:
            self._held = None
            self.created(held.handle)

    def error(self, code: bytes, text: bytes) -> None:
        if not self.lost:
            self._job.errorCode = code
            self._job.render(self._job, _ERROR, text)

    def noop(self) -> None:
        """
        Never a worker: nothing to wake.
        """

    def noJob(self) -> None:
        """
        Never a worker: never grabs.
        """

    def assign(self, job: Job, form: int) -> None:
        raise AssertionError("an HTTP request is never a worker")

    def workData(self, job: Job, data: bytes) -> None:
        self._job.chunks.append(data)

    def workWarning(self, job: Job, data: bytes) -> None:
        self._job.warnings.append(data)

    def workStatus(self, job: Job, numerator: bytes, denominator: bytes) -> None:
        self._job.status = (numerator, denominator)

    def workComplete(self, job: Job, data: bytes) -> None:
        if not self.lost:
            self._job.render(self._job, _COMPLETE, data)

    def workFail(self, job: Job, detail: Optional[bytes] = None) -> None:
        if not self.lost:
            self._job.render(self._job, _FAILED, b"")

    def workException(self, job: Job, data: bytes) -> None:
        if not self.lost:
            self._job.render(self._job, _EXCEPTION, data)


class _HTTPJob:
    """
    One HTTP request's job, seen through an in-process connection.

    @ivar render: called once with the job, how it ended (C{_CREATED} for a
        background job once queued, C{_COMPLETE}, C{_FAILED},
        C{_EXCEPTION}, C{_ERROR} (see L{errorCode}) or C{_NO_WORKER}) and
        the data that came with the end.
    """

    def __init__(
        self,
        resource: "GearmanResource",
        request: Request,
        name: bytes,
        background: bool,
        render: Callable[["_HTTPJob", str, bytes], None],
    ) -> None:
        self.resource = resource
        self.request = request
        self.name = name
        self.background = background
        self.render = render
        self.handle: Optional[bytes] = None
        self.chunks: List[bytes] = []
        self.warnings: List[bytes] = []
        self.status: Optional[Tuple[bytes, bytes]] = None
        self.errorCode = b""
        self.done = False
        self.timer: Optional[IDelayedCall] = None
        host = getattr(request.getClientAddress(), "host", None) or "-"
        self.peer = _HTTPPeer(self, _fileno(request), host)

    def start(self, unique: bytes, data: bytes, priority: int, noWorkerTimeout: float) -> None:
        server = self.resource.server
        server.peerConnected(self.peer)
        self.request.notifyFinish().addErrback(self._gone)
        server.submit(self.peer, self.name, unique, data, priority, self.background)
        if self.done:
            return
        function = server.functions.get(self.name)
        if not self.background and (function is None or not function.workers):
            self.timer = self.resource.reactor.callLater(noWorkerTimeout, self._noWorker)

    def created(self, handle: bytes) -> None:
        """
        The job server made or joined the job C{handle}: a background job
        is answered now, a foreground one when it ends.
        """
        self.handle = handle
        if self.background:
            self.render(self, _CREATED, b"")

    def _noWorker(self) -> None:
        self.timer = None
        function = self.resource.server.functions.get(self.name)
        if function is not None and function.workers:
            return
        job = self.resource.server.lookup(self.handle or b"")
        if job is not None and job.worker is not None:
            return
        self.render(self, _NO_WORKER, b"")

    def finish(self) -> None:
        """
        Leave the job server; a queued job nobody else waits for is dropped.
        """
        if self.done:
            return
        self.done = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        self.resource.reactor.callLater(0, self.resource.server.peerLost, self.peer)

    def _gone(self, failure: Failure) -> None:
        # The HTTP client went away: as a binary client's disconnect.
        if not self.done:
            self.done = True
            if self.timer is not None and self.timer.active():
                self.timer.cancel()
            self.resource.server.peerLost(self.peer)


class GearmanResource(Resource):
    """
    The root resource: gearmand's HTTP protocol on every path, except the
    names in C{children} (C{api}, C{metrics}) and C{GET /} (the monitor).

    Every request is first put to C{policy}; a refused one never reaches
    a route.

    @ivar server: the job server.
    @ivar version: the version string for the C{Server} header.
    @ivar policy: who may use the site.
    """

    log = Logger()

    # Resource declares a legacy C{server = None}, which putChild copies to
    # children; here it is the job server.
    server: JobServer  # type: ignore[assignment]

    def __init__(
        self,
        server: JobServer,
        reactor: IReactorTime,
        version: str = "1.1.20",
        noWorkerTimeout: float = DEFAULT_NO_WORKER_TIMEOUT,
        maxBody: int = DEFAULT_MAX_BODY,
        info: Optional[Callable[[], Dict[str, Any]]] = None,
        policy: Optional[AccessPolicy] = None,
    ) -> None:
        super().__init__()
        self.server = server
        self.reactor = reactor
        self.version = version
        self.noWorkerTimeout = noWorkerTimeout
        self.maxBody = maxBody
        self.policy = AccessPolicy() if policy is None else policy
        self.started = reactor.seconds()
        self.api = APIResource(self, info)
        self.putChild(b"api", self.api)

    def getChild(self, path: bytes, request: Request) -> Resource:
        return self

    def refused(self, request: Request, action: str, function: bytes) -> Optional[str]:
        """
        Why the access policy refuses C{request} C{action} on C{function},
        or L{None} (also when there is no policy).  The request's
        identities are its address, its bearer token's name in the policy
        and its TLS client certificate's name.
        """
        acl = self.policy.acl
        if acl is None:
            return None
        return acl.check(self.identities(acl, request), action, function)

    def identities(self, acl: AccessControl, request: Request) -> Identities:
        """
        Who C{request} is for C{acl}: its address, its bearer token's name
        in the policy and its TLS client certificate's name.
        """
        names = []
        given = bearerToken(request)
        name = None if given is None else acl.tokenName(given)
        if name is not None:
            names.append("token:" + name)
        certificate = certificateName(getattr(request.channel, "transport", None))
        if certificate is not None:
            names.append("cert:" + certificate)
        address = getattr(request.getClientAddress(), "host", None)
        return Identities(names, address)

    def renderRefusal(self, request: Request, why: str, asJSON: bool) -> bytes:
        """
        Answer C{request} with 403 and C{why}, as a refusal of the access
        policy.
        """
        return _RefusalPage(Refusal(403, "acl", why), asJSON).render(request)

    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:
        # The first segment: every request passes here once, before any
        # route sees it.
        if request.prepath == [path]:
            refusal = self.policy.check(request)
            if refusal is not None:
                return _RefusalPage(refusal, asJSON=path == b"api")
            if self.server.replaying:
                # Not served until the jobs, policies and results stored
                # are back, as the Gearman port accepts nothing until then.
                return _RefusalPage(_REPLAYING, asJSON=path == b"api")
            # Function names are taken from the raw URI, so only our own
            # names are looked up as children; everything else is a function.
            if path in self.children:
                return self.children[path]
        return self

    def render(self, request: Request) -> Any:
        request.setHeader(b"Server", b"Gearman/" + self.version.encode("ascii"))
        method = request.method
        function = request.uri.lstrip(b"/")
        if not function:
            if method not in (b"GET", b"POST", b"PUT", b"HEAD"):
                request.setResponseCode(405)
                request.setHeader(b"Allow", b"GET, POST, PUT, HEAD")
                return b""
            if method == b"HEAD":
                request.setHeader(b"X-Gearman-Job-Handle", b"(null)")
                return b""
            if method == b"GET" and self.monitor is not None:
                return self.monitor(request)
            request.setResponseCode(404, b"NOT_FOUND")
            return b""
        if method not in (b"POST", b"PUT"):
            # gearmand runs a job for GET and HEAD too: any link, prefetch or
            # favicon.ico would, and a page of any site could make one.
            request.setResponseCode(405)
            request.setHeader(b"Allow", b"POST, PUT")
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"Only POST (or PUT) /FUNCTION runs a job, with the body as its workload\n"
        why = self.refused(request, "submit", function)
        if why is not None:
            return self.renderRefusal(request, why, asJSON=False)
        body = _readBody(request, self.maxBody)
        if body is None:
            request.setResponseCode(413)
            return b"Request body is larger than the limit of %d bytes\n" % (self.maxBody,)
        unique = request.getHeader(b"X-Gearman-Unique")
        background = (request.getHeader(b"X-Gearman-Background") or b"").lower() == b"true"
        priority = _PRIORITIES.get((request.getHeader(b"X-Gearman-Priority") or b"").lower(), NORMAL)
        job = _HTTPJob(self, request, function, background, self._renderGearman)
        # gearmand's HTTP default unique is "-": equal bodies coalesce.
        job.start(b"-" if unique is None else unique, body, priority, self.noWorkerTimeout)
        return NOT_DONE_YET

    #: Renders the monitor page for C{GET /}; set by L{makeResource}.
    monitor: Optional[Callable[[Request], bytes]] = None

    def _renderGearman(self, job: _HTTPJob, outcome: str, data: bytes) -> None:
        request = job.request
        job.finish()
        if request.finished or getattr(request, "_disconnected", False):
            return
        if job.handle is not None:
            request.setHeader(b"X-Gearman-Job-Handle", job.handle)
        if job.status is not None:
            request.setHeader(b"X-Gearman-Status", b"%s/%s" % job.status)
        for warning in job.warnings:
            request.responseHeaders.addRawHeader(b"X-Gearman-Warning", _headerValue(warning))
        body = b""
        if outcome == _CREATED:
            request.setHeader(b"X-Gearman-Command", b"JOB_CREATED")
        elif outcome == _COMPLETE:
            request.setHeader(b"X-Gearman-Command", b"WORK_COMPLETE")
            body = b"".join(job.chunks) + data
        elif outcome == _FAILED:
            request.setResponseCode(500, b"Job Failed")
            request.setHeader(b"X-Gearman-Command", b"WORK_FAIL")
        elif outcome == _EXCEPTION:
            request.setResponseCode(500, b"Job Exception")
            request.setHeader(b"X-Gearman-Command", b"WORK_EXCEPTION")
            body = data
        elif outcome == _ERROR:
            code = job.errorCode
            request.setResponseCode(503 if code == b"QUEUE_ERROR" else 400, code)
            request.setHeader(b"X-Gearman-Command", b"ERROR")
            body = data + b"\n"
        else:
            request.setResponseCode(504, b"No Worker")
            body = b"No worker for this function\n"
        request.setHeader(b"Content-Length", b"%d" % (len(body),))
        if request.method != b"HEAD":
            request.write(body)
        request.finish()


def _describeFunction(f: Function, storedResults: int) -> Dict[str, Any]:
    """
    A function as C{GET /api/functions} lists it, with the number of
    results it keeps (L{JobServer.results}).
    """
    return {
        "name": f.name.decode("utf-8", "replace"),
        "total": f.total,
        "queued": f.total - f.running,
        "running": f.running,
        "workers": f.workers,
        "queued_by_priority": {"high": f.queued[0], "normal": f.queued[1], "low": f.queued[2]},
        "submitted": sum(f.submitted),
        "completed": f.completed,
        "failed": f.failed,
        "exceptions": f.exceptions,
        "retried": f.retried,
        "dead_lettered": f.deadLettered,
        "stored_results": storedResults,
        "answered_from_results": f.answeredFromResults,
    }


def _describeLiveResult(job: Job) -> Dict[str, Any]:
    """
    A live job as C{GET /api/results/HANDLE} shows it: where it stands.
    """
    return {
        "function": job.function.name.decode("utf-8", "replace"),
        "handle": job.handle.decode("utf-8", "replace"),
        "unique": job.unique.decode("utf-8", "replace"),
        "outcome": "running" if job.worker is not None else "queued",
    }


def _describeStoredResult(result: StoredResult) -> Dict[str, Any]:
    """
    The stored result of an ended job as C{GET /api/results/HANDLE} shows
    it: how it ended, its data, when it ended and until when it is kept.
    """
    return {
        "function": result.function.decode("utf-8", "replace"),
        "handle": result.handle.decode("utf-8", "replace"),
        "unique": result.unique.decode("utf-8", "replace"),
        "outcome": OUTCOME_NAMES[result.outcome],
        "data": _text(result.data),
        "finished": result.finished,
        "expires": result.expires,
    }


def _describeDeadLetter(letter: DeadLetter, dataLimit: Optional[int] = None) -> Dict[str, Any]:
    """
    A dead letter as C{GET /api/functions/NAME/deadletters} lists it, but
    for its C{data} and C{error}, left as bytes (L{_deadLetterJSON} writes
    them as L{_text} would describe them).

    @param dataLimit: if not L{None}, at most this many bytes of the data
        (L{_cutData}), and the fields C{data_size} (the whole data's) and
        C{truncated} (whether it was cut).
    """
    data = letter.data
    described: Dict[str, Any] = {
        "id": letter.ident,
        "handle": letter.handle.decode("utf-8", "replace"),
        "unique": letter.unique.decode("utf-8", "replace"),
        "data": data,
        "priority": _PRIORITY_OF[letter.priority],
        "attempts": letter.attempts,
        "error": letter.error,
        "submitted": letter.submitted,
        "failed": letter.failed,
        "reducer": None if letter.reducer is None else letter.reducer.decode("utf-8", "replace"),
    }
    if dataLimit is not None:
        described["data"] = _cutData(data, dataLimit)
        described["data_size"] = len(data)
        described["truncated"] = len(described["data"]) < len(data)
    return described


def _cutData(data: bytes, limit: int) -> bytes:
    """
    At most C{limit} bytes of C{data}, from its start: fewer (by up to
    three) when that cuts UTF-8 data between characters and so keeps it
    UTF-8, for its C{text}.
    """
    if len(data) <= limit:
        return data
    cut = limit
    while cut > 0 and limit - cut < 3 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    if cut < limit:
        try:
            data[:cut].decode("utf-8")
        except UnicodeDecodeError:
            cut = limit
    return data[:cut]


#: Bytes of a letter's data or error (a multiple of 3, for base64) or
#: characters of its text written as one piece (L{_bytesJSON}).
_PIECE = 3 << 14


def _bytesJSON(value: bytes) -> Iterator[bytes]:
    """
    C{_text(value)} as C{json.dumps} with sorted keys writes it, in pieces
    of bounded size.
    """
    yield b'{"base64": "'
    for start in range(0, len(value), _PIECE):
        yield base64.b64encode(value[start : start + _PIECE])
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        yield b'"}'
        return
    yield b'", "text": "'
    for start in range(0, len(text), _PIECE):
        # Each character is escaped alone, so the pieces join.
        yield json.dumps(text[start : start + _PIECE])[1:-1].encode("ascii")
    yield b'"}'


def _deadLetterJSON(described: Dict[str, Any], before: bytes = b"") -> Iterator[bytes]:
    """
    A letter L{_describeDeadLetter} described, after C{before}, as
    C{json.dumps} with sorted keys writes it, in pieces of bounded size:
    however large its data and error, no piece holds more than L{_PIECE}
    of them.
    """
    separator = before + b"{"
    for key in sorted(described):
        value = described[key]
        yield separator + json.dumps(key).encode("utf-8") + b": "
        if isinstance(value, bytes):
            yield from _bytesJSON(value)
        else:
            yield json.dumps(value).encode("utf-8")
        separator = b", "
    yield b"}"


def _deadLettersJSON(letters: List[DeadLetter], dataLimit: Optional[int]) -> Iterator[Iterator[bytes]]:
    """
    The JSON array of C{letters}, an item of pieces per letter (for
    L{sliced.bounded}).
    """
    yield iter([b"["])
    for n, letter in enumerate(letters):
        yield _deadLetterJSON(_describeDeadLetter(letter, dataLimit), b", " if n else b"")
    yield iter([b"]\n"])


def _queryCount(request: Request, name: str) -> Optional[int]:
    """
    The query parameter C{name} of C{request}, a whole number of at least
    0 in decimal digits, or L{None} if not given.

    @raise BadSubmission: if it is given twice or is not such a number.
    """
    values = cast(Dict[bytes, List[bytes]], request.args or {}).get(name.encode("ascii"))
    if values is None:
        return None
    if len(values) != 1:
        raise BadSubmission("%s is given more than once" % (name,), name)
    value = values[0]
    if not (value.isdigit() and value.isascii()):
        raise BadSubmission("%s must be a whole number of at least 0, in decimal digits" % (name,), name)
    digits = value.lstrip(b"0") or b"0"
    # Past 18 digits, more than any list or letter holds: read no further.
    return int(digits) if len(digits) <= 18 else 10**18


def _describeDeadLetterCount(count: Tuple[bytes, int, int]) -> Dict[str, Any]:
    """
    A function's dead letters as C{GET /api/deadletters} counts them.
    """
    name, kept, dropped = count
    return {"function": name.decode("utf-8", "replace"), "kept": kept, "dropped": dropped}


def _describeWorker(p: Peer) -> Dict[str, Any]:
    """
    A connection as C{GET /api/workers} lists it.
    """
    return {
        "fd": p.fd,
        "ip": p.host,
        "client_id": p.clientId.split(b"\0", 1)[0].decode("utf-8", "replace"),
        "functions": [f.name.decode("utf-8", "replace") for f, _ in reversed(p.abilities)],
        "running": [j.handle.decode("utf-8", "replace") for j in p.held],
    }


def _jsonArray(items: List[T], describe: Callable[[T], Dict[str, Any]]) -> Iterator[bytes]:
    """
    The JSON array of C{describe(item)} for C{items}, as C{json.dumps}
    with sorted keys writes it, a slice of items per chunk.
    """
    yield b"["
    separator = b""
    for run in sliced.slices(items):
        yield separator + ", ".join(json.dumps(describe(item), sort_keys=True) for item in run).encode("utf-8")
        separator = b", "
    yield b"]\n"


def _headerValue(value: bytes) -> bytes:
    return value.replace(b"\r", b" ").replace(b"\n", b" ")


def _text(value: bytes) -> Dict[str, str]:
    """
    Bytes for JSON: as text when UTF-8, always as base64 too.
    """
    encoded = {"base64": base64.b64encode(value).decode("ascii")}
    try:
        encoded["text"] = value.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return encoded


#: The OpenAPI document of the JSON API, as served at C{GET /api/openapi.json}.
OPENAPI_DOCUMENT = (files("gearman_tw.server") / "openapi.json").read_bytes()


class Route(NamedTuple):
    """
    One operation of the JSON API.

    @ivar method: the HTTP method.
    @ivar path: the path as the OpenAPI document writes it, parameters in
        braces: C{/api/jobs/{handle}}.
    @ivar render: the method of L{APIResource} that answers it, called with
        the resource, the request and the path's parameters (bytes, decoded
        from the URL).
    """

    method: bytes
    path: str
    render: Callable[..., Any]


_API_PREFIX = "/api/"


def _segments(path: str) -> List[Optional[bytes]]:
    """
    The segments of a route's path after C{/api/}: bytes to match, or
    L{None} for a parameter.
    """
    return [
        None if part.startswith("{") else part.encode("ascii")
        for part in path[len(_API_PREFIX) :].split("/")
    ]


def _match(pattern: List[Optional[bytes]], segments: List[bytes]) -> Optional[List[bytes]]:
    """
    The parameters of C{segments} (a request's path after C{/api/}) if it
    matches C{pattern}, else L{None}.
    """
    if len(pattern) != len(segments):
        return None
    parameters = []
    for expected, segment in zip(pattern, segments):
        if expected is None:
            parameters.append(segment)
        elif expected != segment:
            return None
    return parameters


class APIResource(Resource):
    """
    The JSON API, one method per route of L{API_ROUTES}, described by
    L{OPENAPI_DOCUMENT} (C{gearman_tw/server/openapi.json}):

      - C{GET /api/}: an index of the routes;
      - C{GET /api/openapi.json}: the OpenAPI document;
      - C{GET /api/server}: version, uptime, queue backend, process id;
      - C{GET /api/functions}: what C{status} and C{prioritystatus} show;
      - C{GET /api/workers}: what C{workers} shows;
      - C{GET /api/jobs/HANDLE}, C{GET /api/unique/UNIQUE}: a job's status;
      - C{GET /api/results/HANDLE}, C{GET /api/unique/UNIQUE/result}: where
        a live job stands, else the stored result of an ended one (the
        C{result} admin command);
      - C{POST /api/jobs}: submit a job described in JSON;
      - C{DELETE /api/jobs/HANDLE}: cancel a job;
      - C{GET /api/deadletters}: how many dead letters each function keeps
        and dropped (the C{deadletters} admin command);
      - C{GET /api/functions/NAME/deadletters}: a function's dead letters
        (C{deadletters FUNCTION});
      - C{POST /api/functions/NAME/deadletters/retry} and C{.../purge}:
        submit them again or forget them, all or those of an C{"ids"} list
        (C{retry deadletters}, C{purge deadletters});
      - C{GET /api/functions/NAME/policy}: the lifecycle policy that
        applies to a function (C{policy FUNCTION}), and which of its keys
        were changed at run time;
      - C{PATCH /api/functions/NAME/policy}: change keys of it at run time
        (C{policy set FUNCTION KEY VALUE});
      - C{DELETE /api/functions/NAME/policy}: take back every run-time
        change (C{policy reset FUNCTION}).

    Any other method or path is answered with 404.
    """

    isLeaf = True

    def __init__(self, root: GearmanResource, info: Optional[Callable[[], Dict[str, Any]]]) -> None:
        super().__init__()
        self.root = root
        self.info = info
        self._routes = [(route, _segments(route.path)) for route in API_ROUTES]
        paths = json.loads(OPENAPI_DOCUMENT)["paths"]
        listed = []
        for route in API_ROUTES:
            method = route.method.decode("ascii")
            entry = {"method": method, "path": route.path}
            operation = paths.get(route.path, {}).get(method.lower(), {})
            if "summary" in operation:
                entry["summary"] = operation["summary"]
            listed.append(entry)
        self._index = {"openapi": _API_PREFIX + "openapi.json", "routes": listed}

    def _json(self, request: Request, value: Any, code: int = 200) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return json.dumps(value, sort_keys=True).encode("utf-8") + b"\n"

    def _error(self, request: Request, code: int, message: str) -> bytes:
        return self._json(request, {"error": message}, code)

    def render(self, request: Request) -> Any:
        # Request.process sets it before any resource renders.
        segments = cast(List[bytes], request.postpath)
        for route, pattern in self._routes:
            if route.method != request.method:
                continue
            parameters = _match(pattern, segments)
            if parameters is not None:
                return route.render(self, request, *parameters)
        return self._error(request, 404, "no such API path")

    def renderIndex(self, request: Request) -> bytes:
        return self._json(request, self.routes())

    def routes(self) -> Dict[str, Any]:
        """
        What C{GET /api/} answers: every route of L{API_ROUTES}, with its
        summary from the document, and where the document is.
        """
        return self._index

    def renderDocument(self, request: Request) -> bytes:
        """
        C{GET /api/openapi.json}: the OpenAPI document, as shipped.
        """
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return OPENAPI_DOCUMENT

    def renderServer(self, request: Request) -> bytes:
        return self._json(request, self.serverInfo())

    def renderFunctions(self, request: Request) -> bytes:
        why = self.root.refused(request, "admin", b"*")
        if why is not None:
            return self.root.renderRefusal(request, why, asJSON=True)
        server = self.root.server
        functions = list(server.functions.values())
        stored = server.results.functions()
        return self._jsonList(request, functions, lambda f: _describeFunction(f, stored.get(f.name, 0)))

    def renderWorkers(self, request: Request) -> bytes:
        why = self.root.refused(request, "admin", b"*")
        if why is not None:
            return self.root.renderRefusal(request, why, asJSON=True)
        return self._jsonList(request, list(self.root.server.peers), _describeWorker)

    def renderJob(self, request: Request, handle: bytes) -> bytes:
        return self._json(request, self.jobStatus(handle))

    def renderUnique(self, request: Request, unique: bytes) -> bytes:
        return self._json(request, self.uniqueStatus(unique))

    def cancel(self, request: Request, handle: bytes) -> bytes:
        """
        C{DELETE /api/jobs/HANDLE}: cancel a queued job, as the C{cancel
        job} admin command does.
        """
        job = self.root.server.lookup(handle)
        acl = self.root.policy.acl
        if acl is not None:
            identities = self.root.identities(acl, request)
            if acl.check(identities, "admin", b"*" if job is None else job.function.name) is not None:
                return self.root.renderRefusal(request, jobRefusal(identities, "cancel"), asJSON=True)
        if not self.root.server.cancel(handle):
            return self._error(request, 404, "no such job")
        return self._json(request, {"handle": handle.decode("utf-8", "replace"), "cancelled": True})

    def renderResult(self, request: Request, handle: bytes) -> bytes:
        """
        C{GET /api/results/HANDLE}: where the live job with the handle
        stands, else the stored result of the job that had it, as the
        C{result HANDLE} admin command answers (see L{_renderResult}).
        """
        server = self.root.server
        return self._renderResult(request, lambda: server.lookup(handle), lambda: server.resultOf(handle))

    def renderUniqueResult(self, request: Request, unique: bytes) -> bytes:
        """
        C{GET /api/unique/UNIQUE/result}: the same for the newest job with
        the unique key in any function, live or ended (C{result unique
        UNIQUE}).
        """
        server = self.root.server
        return self._renderResult(
            request, lambda: server.lookupUnique(unique), lambda: server.resultOfUnique(unique)
        )

    def _renderResult(
        self,
        request: Request,
        live: Callable[[], Optional[Job]],
        stored: Callable[[], Optional[StoredResult]],
    ) -> bytes:
        """
        Answer the C{live} job's state, else the C{stored} result, else 404.

        A result holds a job's data, so with a token this read needs it,
        as a function's dead letters do; with an access policy it needs
        C{admin} on the job's function, and for an unknown job on every
        function (C{*}), as the admin command.  A refusal never names the
        function, and is the same for an unknown job: who may not
        administer every function cannot tell a job it may not see from
        one the server does not know.
        """
        refusal = self.root.policy.checkToken(request)
        if refusal is not None:
            return _RefusalPage(refusal, asJSON=True).render(request)
        job = live()
        result = None if job is not None else stored()
        acl = self.root.policy.acl
        if acl is not None:
            function = job.function.name if job is not None else result.function if result is not None else b"*"
            identities = self.root.identities(acl, request)
            if acl.check(identities, "admin", function) is not None:
                return self.root.renderRefusal(request, jobRefusal(identities, "see"), asJSON=True)
        if job is not None:
            return self._json(request, _describeLiveResult(job))
        if result is None:
            return self._error(request, 404, "no such job: the server neither runs it nor keeps its result")
        return self._json(request, _describeStoredResult(result))

    def renderDeadLetterCounts(self, request: Request) -> Any:
        """
        C{GET /api/deadletters}: each function that keeps dead letters or
        dropped some, by name, as the C{deadletters} admin command lists
        them.
        """
        why = self.root.refused(request, "admin", b"*")
        if why is not None:
            return self.root.renderRefusal(request, why, asJSON=True)
        letters = self.root.server.deadLetters
        kept = letters.functions()
        counts = [
            (name, kept.get(name, 0), letters.dropped.get(name, 0)) for name in sorted(set(kept) | set(letters.dropped))
        ]
        return self._jsonList(request, counts, _describeDeadLetterCount)

    def renderDeadLetters(self, request: Request, name: bytes) -> Any:
        """
        C{GET /api/functions/NAME/deadletters}: the function's dead letters,
        oldest first (none for a function the server does not know).  They
        hold jobs' data, so with a token (C{--http-token-file}) this read
        needs it, as writes do.

        The query parameter C{limit=N} lists only the newest N, and
        C{data=N} at most N bytes of each one's data (L{_cutData}), with
        its whole size and whether it was cut.  The list is made and sent
        a slice per reactor turn when it is long or large, a slice holding
        at most L{sliced.SLICE} letters and about L{sliced.SLICE_BYTES}
        bytes, so a few letters of megabytes take several turns.
        """
        refusal = self.root.policy.checkToken(request)
        if refusal is not None:
            return _RefusalPage(refusal, asJSON=True).render(request)
        why = self.root.refused(request, "admin", name)
        if why is not None:
            return self.root.renderRefusal(request, why, asJSON=True)
        try:
            limit = _queryCount(request, "limit")
            dataLimit = _queryCount(request, "data")
        except BadSubmission as e:
            return self._badRequest(request, e)
        letters = self.root.server.deadLetters.of(name)
        if limit is not None:
            letters = letters[max(len(letters) - limit, 0) :]
        size = sum(
            (len(letter.data) if dataLimit is None else min(len(letter.data), dataLimit)) + len(letter.error)
            for letter in letters
        )
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return sliced.render(
            request,
            sliced.bounded(_deadLettersJSON(letters, dataLimit)),
            self.root.reactor,
            small=len(letters) <= sliced.SLICE and size <= sliced.SLICE_BYTES // 4,
        )

    def retryDeadLetters(self, request: Request, name: bytes) -> Any:
        """
        C{POST /api/functions/NAME/deadletters/retry}: submit the function's
        dead letters again as new background jobs, all of them or those
        the body's C{"ids"} names (see L{parseIdents}); answers, once each
        new job is stored, how many ran again (one the queue refused is
        put back, among the C{kept}).
        """
        idents = self._deadLetterIdents(request, name)
        if isinstance(idents, bytes):
            return idents
        retried = self.root.server.retryDeadLettersWhenStored(name, idents)

        def answer(outcome: Tuple[int, Optional[str]]) -> bytes:
            count, why = outcome
            if why is not None:
                reason = "%d retried, but the persistent queue could not forget their letters: %s" % (count, why)
                return self._error(request, 503, reason)
            return self._deadLetterCounts(request, name, "retried", count)

        return self._later(request, retried, answer)

    def purgeDeadLetters(self, request: Request, name: bytes) -> Any:
        """
        C{POST /api/functions/NAME/deadletters/purge}: forget the function's
        dead letters, all of them or those the body's C{"ids"} names;
        answers how many were forgotten, once the persistent queue forgot
        them too (503 if it could not).
        """
        idents = self._deadLetterIdents(request, name)
        if isinstance(idents, bytes):
            return idents
        server = self.root.server
        purged, kept = server.keeping(lambda: server.purgeDeadLetters(name, idents))
        return self._whenKept(
            request,
            kept,
            lambda: self._deadLetterCounts(request, name, "purged", purged),
            "purged, but the persistent queue could not forget them",
        )

    def _deadLetterIdents(self, request: Request, name: bytes) -> Union[bytes, Optional[List[int]]]:
        """
        Check C{request} as the C{retry}/C{purge deadletters} admin words
        are (C{admin} on the function) and read its ids; or the answer
        refusing it.
        """
        why = self.root.refused(request, "admin", name)
        if why is not None:
            return self.root.renderRefusal(request, why, asJSON=True)
        body = _readBody(request, self.root.maxBody)
        if body is None:
            return self._error(request, 413, "the body is larger than the limit of %d bytes" % (self.root.maxBody,))
        try:
            return parseIdents(body)
        except BadSubmission as e:
            return self._badRequest(request, e)

    def _deadLetterCounts(self, request: Request, name: bytes, done: str, count: int) -> bytes:
        """
        C{{"function": NAME, DONE: COUNT, "kept": LEFT}}.
        """
        kept = self.root.server.deadLetters.functions().get(name, 0)
        return self._json(request, {"function": name.decode("utf-8", "replace"), done: count, "kept": kept})

    def _whenKept(
        self,
        request: Request,
        kept: "Optional[Deferred[Optional[str]]]",
        answer: Callable[[], bytes],
        unstored: str,
    ) -> Any:
        """
        C{answer()} once the persistent queue made the changes C{kept}
        stands for (at once if none; see L{JobServer.keeping}), or 503
        saying C{unstored} and why.
        """
        if kept is None:
            return answer()

        def reply(why: Optional[str]) -> bytes:
            return answer() if why is None else self._error(request, 503, "%s: %s" % (unstored, why))

        return self._later(request, kept, reply)

    def _later(self, request: Request, result: "Deferred[Any]", answer: Callable[[Any], bytes]) -> Any:
        """
        Answer C{request} with C{answer} of C{result}: at once if it has
        fired, else once it does (nothing if the client has gone).
        """
        body = whenFired(result, answer)
        if isinstance(body, bytes):
            return body
        gone: List[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def send(body: bytes) -> None:
            if not gone:
                request.write(body)
                request.finish()

        body.addCallback(send)
        return NOT_DONE_YET

    def renderPolicy(self, request: Request, name: bytes) -> bytes:
        """
        C{GET /api/functions/NAME/policy}: the lifecycle policy that applies
        to the function, known to the server or not (see
        L{functionPolicy}).
        """
        why = self.root.refused(request, "admin", name)
        if why is not None:
            return self.root.renderRefusal(request, why, asJSON=True)
        return self._json(request, self.functionPolicy(name))

    def changePolicy(self, request: Request, name: bytes) -> Any:
        """
        C{PATCH /api/functions/NAME/policy}: change the function's policy
        at run time, as C{policy set} does, by the keys and values of the
        body (see L{parsePolicyChanges}; C{null} takes back a key's
        change), all or none of them; answers the policy that applies now,
        as C{GET} does.  Checked as the dead letter writes are (C{admin} on
        the function).
        """
        why = self.root.refused(request, "admin", name)
        if why is not None:
            return self.root.renderRefusal(request, why, asJSON=True)
        body = _readBody(request, self.root.maxBody)
        if body is None:
            return self._error(request, 413, "the body is larger than the limit of %d bytes" % (self.root.maxBody,))
        server = self.root.server
        try:
            changes = parsePolicyChanges(body)
            _, kept = server.keeping(lambda: server.changePolicy(name, changes))
        except BadSubmission as e:
            return self._badRequest(request, e)
        except PoliciesError as e:
            return self._badRequest(request, BadSubmission(_printable(str(e))))
        return self._whenKept(
            request,
            kept,
            lambda: self._json(request, self.functionPolicy(name)),
            "the change applies, but the persistent queue could not store it",
        )

    def resetPolicy(self, request: Request, name: bytes) -> Any:
        """
        C{DELETE /api/functions/NAME/policy}: take back every run-time
        change of the function's policy, as C{policy reset} does; answers
        C{{"function": NAME, "reset": BOOL, "policy": POLICY}}: whether
        there was a change, and the policy that applies now.
        """
        why = self.root.refused(request, "admin", name)
        if why is not None:
            return self.root.renderRefusal(request, why, asJSON=True)
        server = self.root.server
        reset, kept = server.keeping(lambda: server.resetPolicy(name))
        return self._whenKept(
            request,
            kept,
            lambda: self._json(
                request,
                {"function": name.decode("utf-8", "replace"), "reset": reset, "policy": self.functionPolicy(name)},
            ),
            "the reset applies, but the persistent queue could not store it",
        )

    def functionPolicy(self, name: bytes) -> Dict[str, Any]:
        """
        The lifecycle policy that applies to function C{name}
        (L{JobServer.policyOf}), as the C{policy FUNCTION} admin command
        shows it: every key of the policy file, C{max-attempts} from
        C{--job-retries} where neither the file nor a change sets it; and
        C{"changed"}, the keys changed at run time with the values given
        (L{JobServer.policyChanges}; empty when none).
        """
        server = self.root.server
        described = server.policyOf(name).describe()
        described.setdefault("max-attempts", server.jobRetries)
        described["changed"] = server.policyChanges(name)
        return described

    def _badRequest(self, request: Request, e: "BadSubmission") -> bytes:
        """
        Answer 400 with C{e}'s reason, and the field at fault if one is.
        """
        error: Dict[str, Any] = {"error": e.message}
        if e.field is not None:
            error["field"] = e.field
        return self._json(request, error, 400)

    def serverInfo(self) -> Dict[str, Any]:
        """
        What C{GET /api/server} answers.
        """
        info: Dict[str, Any] = {
            "version": self.root.version,
            "uptime": self.root.reactor.seconds() - self.root.started,
            "time": time.time(),
            "queue": getattr(self.root.server.queue, "name", "memory"),
            "jobs": self.root.server.jobCount(),
            "connections": len(self.root.server.peers),
        }
        if self.info is not None:
            info.update(self.info())
        return info

    def _jsonList(self, request: Request, items: List[T], describe: Callable[[T], Dict[str, Any]]) -> Any:
        """
        Answer a JSON array describing C{items}, made and sent a slice per
        reactor turn when they are many.
        """
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return sliced.render(
            request, _jsonArray(items, describe), self.root.reactor, small=len(items) <= sliced.SLICE
        )

    def jobStatus(self, handle: bytes) -> Dict[str, Any]:
        """
        A job's status by handle, as GET_STATUS reports it.
        """
        status = self.root.server.getStatus(handle)
        return {
            "handle": handle.decode("utf-8", "replace"),
            "known": status.known,
            "running": status.running,
            "numerator": status.numerator,
            "denominator": status.denominator,
        }

    def uniqueStatus(self, unique: bytes) -> Dict[str, Any]:
        """
        A job's status by unique key, as GET_STATUS_UNIQUE reports it.
        """
        status = self.root.server.getStatusUnique(unique)
        return {
            "unique": unique.decode("utf-8", "replace"),
            "known": status.known,
            "running": status.running,
            "numerator": status.numerator,
            "denominator": status.denominator,
            "clients": status.clients,
        }

    def submit(self, request: Request) -> Any:
        """
        C{POST /api/jobs}: a JSON object with C{"function"}, C{"data"}
        (text) or C{"data_base64"}, and optionally C{"unique"},
        C{"priority"} (C{"high"}, C{"normal"} or C{"low"}) and
        C{"background"}.  Anything else is answered with 400 and a JSON
        error naming the field at fault (see L{parseSubmission}).
        """
        body = _readBody(request, self.root.maxBody)
        if body is None:
            return self._error(request, 413, "the body is larger than the limit of %d bytes" % (self.root.maxBody,))
        try:
            name, unique, data, priority, background = parseSubmission(body)
        except BadSubmission as e:
            return self._badRequest(request, e)
        why = self.root.refused(request, "submit", name)
        if why is not None:
            return self.root.renderRefusal(request, why, asJSON=True)
        job = _HTTPJob(self.root, request, name, background, self._renderJSON)
        job.start(unique, data, priority, self.root.noWorkerTimeout)
        return NOT_DONE_YET

    def _renderJSON(self, job: _HTTPJob, outcome: str, data: bytes) -> None:
        request = job.request
        job.finish()
        if request.finished or getattr(request, "_disconnected", False):
            return
        handle = job.handle.decode("utf-8", "replace") if job.handle is not None else None
        code = 200
        if outcome == _CREATED:
            value: Dict[str, Any] = {"handle": handle, "state": "queued"}
            code = 202
        elif outcome == _COMPLETE:
            value = {"handle": handle, "state": "complete", "result": _text(b"".join(job.chunks) + data)}
        elif outcome == _FAILED:
            value = {"handle": handle, "state": "failed"}
        elif outcome == _EXCEPTION:
            value = {"handle": handle, "state": "exception", "exception": _text(data)}
        elif outcome == _ERROR:
            errorCode = job.errorCode
            code = 503 if errorCode == b"QUEUE_ERROR" else 400
            value = {"error": data.decode("utf-8", "replace"), "code": errorCode.decode("ascii", "replace")}
        else:
            code = 504
            value = {"handle": handle, "error": "no worker for this function"}
        if job.warnings:
            value["warnings"] = [_text(w) for w in job.warnings]
        request.write(self._json(request, value, code))
        request.finish()


#: Every operation of the JSON API, and only those: L{APIResource} answers
#: them, C{GET /api/} lists them, and the tests hold them equal to the
#: OpenAPI document's.
API_ROUTES = (
    Route(b"GET", "/api/", APIResource.renderIndex),
    Route(b"GET", "/api/openapi.json", APIResource.renderDocument),
    Route(b"GET", "/api/server", APIResource.renderServer),
    Route(b"GET", "/api/functions", APIResource.renderFunctions),
    Route(b"GET", "/api/workers", APIResource.renderWorkers),
    Route(b"POST", "/api/jobs", APIResource.submit),
    Route(b"GET", "/api/jobs/{handle}", APIResource.renderJob),
    Route(b"DELETE", "/api/jobs/{handle}", APIResource.cancel),
    Route(b"GET", "/api/unique/{unique}", APIResource.renderUnique),
    Route(b"GET", "/api/results/{handle}", APIResource.renderResult),
    Route(b"GET", "/api/unique/{unique}/result", APIResource.renderUniqueResult),
    Route(b"GET", "/api/deadletters", APIResource.renderDeadLetterCounts),
    Route(b"GET", "/api/functions/{name}/deadletters", APIResource.renderDeadLetters),
    Route(b"POST", "/api/functions/{name}/deadletters/retry", APIResource.retryDeadLetters),
    Route(b"POST", "/api/functions/{name}/deadletters/purge", APIResource.purgeDeadLetters),
    Route(b"GET", "/api/functions/{name}/policy", APIResource.renderPolicy),
    Route(b"PATCH", "/api/functions/{name}/policy", APIResource.changePolicy),
    Route(b"DELETE", "/api/functions/{name}/policy", APIResource.resetPolicy),
)


class BadSubmission(Exception):
    """
    A request body the API refuses: a C{POST /api/jobs} submission, the
    ids of dead letters to retry or purge, or changes of a policy.

    @ivar message: why, for people.
    @ivar field: the field at fault, if one is.
    """

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


#: The fields of a submission.
_FIELDS = ("function", "data", "data_base64", "unique", "priority", "background")

_PRIORITY_NAMES = {"high": HIGH, "normal": NORMAL, "low": LOW}
_PRIORITY_OF = {value: name for name, value in _PRIORITY_NAMES.items()}


def _printable(text: str) -> str:
    """
    C{text} with any lone surrogate written as an escape, so an answer
    that quotes it is valid UTF-8.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _kind(value: Any) -> str:
    """
    The JSON type of a decoded value, with its article, for messages.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _object(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    value: Dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise BadSubmission("%s is given more than once" % (_printable(key),), _printable(key))
        value[key] = item
    return value


def _constant(name: str) -> NoReturn:
    raise BadSubmission("the body is not valid JSON: %s is not a JSON number" % (name,))


def _decode(body: bytes) -> Any:
    """
    Parse a JSON text strictly: encoded as RFC 8259 allows (UTF-8, or
    UTF-16/32 as Python's json module detects them) without surrogates, no
    NaN or Infinity, no key twice, no absurd nesting or number.

    @raise BadSubmission: if it is not such a text.
    """
    encoding = json.detect_encoding(body)
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as e:
        raise BadSubmission("the body is not valid %s text: %s" % (encoding.upper(), e.reason))
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except RecursionError:
        raise BadSubmission("the body is not acceptable JSON: it is nested too deeply")
    except json.JSONDecodeError as e:
        raise BadSubmission("the body is not valid JSON: %s" % (e,))
    except ValueError:
        # int() refuses numbers of more than sys.get_int_max_str_digits().
        raise BadSubmission("the body is not acceptable JSON: it has a number with too many digits")


def _string(spec: Dict[str, Any], field: str) -> Optional[bytes]:
    """
    A string field as UTF-8, or L{None} if it is absent.
    """
    if field not in spec:
        return None
    value = spec[field]
    if not isinstance(value, str):
        raise BadSubmission("%s must be a string, not %s" % (field, _kind(value)), field)
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadSubmission("%s has a lone surrogate (\\ud800-\\udfff), which is not text" % (field,), field)


def parseSubmission(body: bytes) -> Tuple[bytes, bytes, bytes, int, bool]:
    """
    The job a C{POST /api/jobs} body describes, checked against the
    C{Submit} schema of L{OPENAPI_DOCUMENT}, and with a C{unique} of at
    most L{MAX_UNIQUE} bytes (which JSON Schema, counting characters,
    cannot say).

    @return: C{(function, unique, data, priority, background)}.
    @raise BadSubmission: for anything but a valid submission.
    """
    spec = _decode(body)
    if not isinstance(spec, dict):
        raise BadSubmission("the body must be a JSON object, not %s" % (_kind(spec),))
    for key in spec:
        if key not in _FIELDS:
            raise BadSubmission(
                "%s is an unknown field (known: %s)" % (_printable(key), ", ".join(_FIELDS)), _printable(key)
            )
    name = _string(spec, "function")
    if name is None:
        raise BadSubmission("function is missing", "function")
    if not name:
        raise BadSubmission("function must not be empty", "function")
    text = _string(spec, "data")
    encoded = _string(spec, "data_base64")
    if encoded is not None:
        try:
            data = base64.b64decode(encoded, validate=True)
        except binascii.Error as e:
            raise BadSubmission("data_base64 is not valid base64: %s" % (e,), "data_base64")
    else:
        data = text or b""
    unique = _string(spec, "unique") or b""
    if len(unique) > MAX_UNIQUE:
        raise BadSubmission(
            "unique is %d bytes long in UTF-8, more than the %d the server keeps" % (len(unique), MAX_UNIQUE),
            "unique",
        )
    # The binary protocol separates arguments with NUL: such a name or key
    # could never be asked for by a worker, nor sent to one intact.
    for field, value in (("function", name), ("unique", unique)):
        if b"\0" in value:
            raise BadSubmission("%s must not contain NUL" % (field,), field)
    priority = spec.get("priority", "normal")
    if not isinstance(priority, str) or priority not in _PRIORITY_NAMES:
        given = ("a string, %s" % (json.dumps(priority),)) if isinstance(priority, str) else _kind(priority)
        raise BadSubmission('priority must be "high", "normal" or "low", not %s' % (given,), "priority")
    background = spec.get("background", False)
    if not isinstance(background, bool):
        raise BadSubmission("background must be true or false, not %s" % (_kind(background),), "background")
    return name, unique, data, _PRIORITY_NAMES[priority], background


def parseIdents(body: bytes) -> Optional[List[int]]:
    """
    The dead letters a C{POST /api/functions/NAME/deadletters/retry} (or
    C{.../purge}) body names, checked against the C{DeadLetterIds} schema
    of L{OPENAPI_DOCUMENT}: L{None}, all of them, for an empty body or an
    object without C{"ids"}; else the ids of C{{"ids": [ID, ...]}} (an
    empty array names none).

    @raise BadSubmission: for anything else.
    """
    if not body.strip():
        return None
    spec = _decode(body)
    if not isinstance(spec, dict):
        raise BadSubmission("the body must be a JSON object, not %s" % (_kind(spec),))
    for key in spec:
        if key != "ids":
            raise BadSubmission("%s is an unknown field (known: ids)" % (_printable(key),), _printable(key))
    if "ids" not in spec:
        return None
    idents = spec["ids"]
    if not isinstance(idents, list):
        raise BadSubmission("ids must be an array of dead letter ids, not %s" % (_kind(idents),), "ids")
    for position, ident in enumerate(idents):
        if isinstance(ident, bool) or not isinstance(ident, int) or ident < 1:
            number = isinstance(ident, (int, float)) and not isinstance(ident, bool)
            given = json.dumps(ident) if number else _kind(ident)
            raise BadSubmission(
                "ids[%d] must be a dead letter id (a whole number, 1 or more), not %s" % (position, given), "ids"
            )
    return idents


#: The keys of a lifecycle policy, as the policy file and
#: C{GET /api/functions/NAME/policy} write them.
POLICY_KEYS = tuple(Policy(maxAttempts=0).describe())


def parsePolicyChanges(body: bytes) -> Dict[str, Any]:
    """
    The changes a C{PATCH /api/functions/NAME/policy} body asks for,
    checked against the C{PolicyChanges} schema of L{OPENAPI_DOCUMENT}
    and by the policy file's rules (L{gearman_tw.server.lifecycle}): an
    object of policy keys (L{POLICY_KEYS}) and values as the policy file
    gives them, or C{null} to take back the run-time change of that key.

    @return: the changes, for L{JobServer.changePolicy}.
    @raise BadSubmission: for anything else, naming the key at fault.
    """
    if not body.strip():
        raise BadSubmission("the body is empty: it must be a JSON object of policy keys")
    spec = _decode(body)
    if not isinstance(spec, dict):
        raise BadSubmission("the body must be a JSON object of policy keys, not %s" % (_kind(spec),))
    for key, value in spec.items():
        if key not in POLICY_KEYS:
            raise BadSubmission(
                "%s is an unknown policy key (known: %s)" % (_printable(key), ", ".join(POLICY_KEYS)), _printable(key)
            )
        if value is None:
            continue
        if key == "backoff" and not (value is False or isinstance(value, dict)):
            raise BadSubmission("backoff must be false or an object, not %s" % (_kind(value),), key)
        try:
            # Checked alone, so the reason names the key, not the function:
            # "max-rate must be a number".
            changed(DEFAULT_POLICY, {key: value}, "")
        except PoliciesError as e:
            raise BadSubmission(_printable(str(e).strip()), key)
    return spec
