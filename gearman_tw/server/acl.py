# -*- test-case-name: tests.test_server_acl -*-
"""
Access control per function: who may submit to, work on, or administer
which functions, from a policy file the server reloads on SIGHUP.

A policy is a TOML file of rules; each names who it is for and the function
name patterns (shell globs) each right covers::

    [tokens]
    # Names for HTTP bearer tokens: "token:ops" in a rule below.
    ops = "9c1e0f0d6c6b4e7f"

    [[allow]]
    who = ["cert:web-*", "token:ops"]   # TLS client certificate names, tokens
    submit = ["resize.*", "email"]

    [[allow]]
    who = ["cert:worker-*", "address:10.0.0.0/8"]
    work = ["resize.*"]

    [[allow]]
    who = ["cert:admin"]
    admin = ["*"]

A peer's identities are C{cert:NAME} for the common name of the TLS client
certificate it presented (verified by C{--ssl-ca-file}), C{token:NAME} for
an HTTP request with a bearer token named in C{[tokens]}, and C{address:IP}
for its address; a C{who} pattern C{"*"} matches everyone.  Anything no rule
allows is refused: a submission gets an C{ERROR} packet (HTTP 403), a
C{CAN_DO} an C{ERROR} packet (the ability is not registered), an admin
command an C{ERR PERMISSION_DENIED} line.  Admin commands that name a
function (C{drop function}, C{create function}, C{maxqueue}, C{cancel job})
need C{admin} on that function; the others (listings, C{shutdown}) need it
on C{"*"}; C{version}, C{getpid} and C{verbose} are open to all.
"""

from __future__ import annotations

import ipaddress
from fnmatch import fnmatchcase
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Tuple, Union

from twisted.logger import Logger

from gearman_tw.server.tomlfile import TOMLFileError, parseTOML

#: The rights a rule can give.
ACTIONS = ("submit", "work", "admin")

#: Admin commands anyone may use.
OPEN_ADMIN = frozenset([b"version", b"getpid", b"verbose"])

#: Entries a connection's cache of decisions holds before it starts again.
_CACHE_SIZE = 1024

_Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class PolicyError(Exception):
    """
    A policy file that cannot be read or does not say something valid; the
    message is one line naming the file and the problem.
    """


class _Rule:
    __slots__ = ("names", "networks", "everyone", "rights")

    def __init__(self, who: List[str], rights: Dict[str, Tuple[str, ...]]) -> None:
        self.names: List[str] = []
        self.networks: List[_Network] = []
        self.everyone = False
        for pattern in who:
            if pattern == "*":
                self.everyone = True
            elif pattern.startswith("address:"):
                self.networks.append(ipaddress.ip_network(pattern[len("address:") :], strict=False))
            else:
                self.names.append(pattern)
        self.rights = rights

    def covers(self, identities: "Identities") -> bool:
        if self.everyone:
            return True
        for name in identities.names:
            for pattern in self.names:
                if fnmatchcase(name, pattern):
                    return True
        address = identities.address
        if address is not None:
            for network in self.networks:
                if address in network:
                    return True
        return False


class Policy:
    """
    A parsed policy: rules, and names for HTTP bearer tokens.

    @ivar tokens: token value to its name.
    """

    def __init__(self, rules: List[_Rule], tokens: Dict[bytes, str]) -> None:
        self._rules = rules
        self.tokens = tokens

    @classmethod
    def fromFile(cls, path: str) -> "Policy":
        """
        Read a policy file.

        @raise PolicyError: it cannot be read or is not a valid policy.
        """
        try:
            with open(path, "rb") as f:
                text = f.read()
        except OSError as e:
            raise PolicyError("cannot read the access policy %s: %s" % (path, e.strerror or e))
        try:
            return cls.fromText(text.decode("utf-8"))
        except UnicodeDecodeError:
            raise PolicyError("access policy %s: not UTF-8 text" % (path,))
        except PolicyError as e:
            raise PolicyError("access policy %s: %s" % (path, e))

    @classmethod
    def fromText(cls, text: str) -> "Policy":
        """
        Parse a policy from TOML text.

        @raise PolicyError: it is not a valid policy.
        """
        data = _loadTOML(text)
        unknown = set(data) - {"tokens", "allow"}
        if unknown:
            raise PolicyError("unknown table %s (expected tokens, allow)" % (sorted(unknown)[0],))
        tokens: Dict[bytes, str] = {}
        for name, value in _table(data.get("tokens", {}), "tokens").items():
            if not isinstance(value, str) or not value.strip() or not value.isascii():
                raise PolicyError("token %r must be a non-empty ASCII string" % (name,))
            token = value.strip().encode("ascii")
            if token in tokens:
                raise PolicyError("tokens %r and %r are the same" % (tokens[token], name))
            tokens[token] = name
        allow = data.get("allow", [])
        if not isinstance(allow, list):
            raise PolicyError("allow must be an array of tables ([[allow]])")
        rules = []
        for number, entry in enumerate(allow, 1):
            where = "rule %d" % (number,)
            entry = _table(entry, where)
            unknown = set(entry) - {"who", *ACTIONS}
            if unknown:
                raise PolicyError(
                    "%s: unknown key %s (expected who, %s)" % (where, sorted(unknown)[0], ", ".join(ACTIONS))
                )
            who = _strings(entry.get("who"), where + ": who")
            if not who:
                raise PolicyError("%s: who names no one" % (where,))
            for pattern in who:
                if pattern.startswith("address:"):
                    try:
                        ipaddress.ip_network(pattern[len("address:") :], strict=False)
                    except ValueError:
                        raise PolicyError("%s: %r is not an address or network" % (where, pattern))
                elif pattern != "*" and not pattern.startswith(("cert:", "token:")):
                    raise PolicyError(
                        "%s: %r must start with cert:, token: or address:, or be *" % (where, pattern)
                    )
                elif pattern.startswith("token:") and not any(
                    fnmatchcase(name, pattern[len("token:") :]) for name in tokens.values()
                ):
                    raise PolicyError("%s: %r names no token of [tokens]" % (where, pattern))
            rights = {
                action: tuple(_strings(entry[action], "%s: %s" % (where, action)))
                for action in ACTIONS
                if action in entry
            }
            rules.append(_Rule(who, rights))
        return cls(rules, tokens)

    def allows(self, identities: "Identities", action: str, function: str) -> bool:
        """
        Whether a rule covering C{identities} gives C{action} on a pattern
        matching C{function}.
        """
        for rule in self._rules:
            patterns = rule.rights.get(action)
            if patterns and rule.covers(identities):
                for pattern in patterns:
                    if fnmatchcase(function, pattern):
                        return True
        return False


def _loadTOML(text: str) -> Dict[str, Any]:
    try:
        return parseTOML(text)
    except TOMLFileError as e:
        raise PolicyError(str(e))


def _table(value: Any, where: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise PolicyError("%s must be a table" % (where,))
    return value


def _strings(value: Any, where: str) -> List[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError("%s must be a string or an array of strings" % (where,))
    return value


class Identities:
    """
    Who a peer is, for the policy, and the decisions made for it so far.

    @ivar names: C{cert:...} and C{token:...} names.
    @ivar address: its IP address, if it has one.
    """

    __slots__ = ("names", "address", "_decisions", "_generation")

    def __init__(self, names: Iterable[str] = (), address: Optional[str] = None) -> None:
        self.names: FrozenSet[str] = frozenset(names)
        try:
            self.address = ipaddress.ip_address(address) if address else None
        except ValueError:
            self.address = None
        self._decisions: Dict[Tuple[str, bytes], bool] = {}
        self._generation = -1

    def describe(self) -> str:
        """
        A short text naming this peer, for refusals and logs.
        """
        parts = sorted(self.names)
        if self.address is not None:
            parts.append("address:%s" % (self.address,))
        return ", ".join(parts) or "anonymous"


class AccessControl:
    """
    The server's current policy, reloadable, and the refusals it made.

    @ivar path: the policy file.
    @ivar policy: the policy in force.
    @ivar refused: refusals so far, by action.
    """

    def __init__(self, path: str, log: Optional[Logger] = None) -> None:
        """
        @param log: where reloads are logged.
        @raise PolicyError: the file is not a valid policy.
        """
        self.log = Logger() if log is None else log
        self.path = path
        self.policy = Policy.fromFile(path)
        self.refused: Dict[str, int] = {action: 0 for action in ACTIONS}
        self._generation = 0

    def reload(self) -> bool:
        """
        Read the policy file again; if it is not valid, log why and keep the
        policy in force.
        """
        try:
            policy = Policy.fromFile(self.path)
        except PolicyError as e:
            self.log.error("Keeping the access policy in force: {why}", why=str(e))
            return False
        self.policy = policy
        self._generation += 1
        self.log.info("Access policy reloaded from {path}", path=self.path)
        return True

    def tokenName(self, token: bytes) -> Optional[str]:
        """
        The name the policy gives an HTTP bearer token, if any.
        """
        import hmac

        for known, name in self.policy.tokens.items():
            if hmac.compare_digest(known, token):
                return name
        return None

    def check(self, identities: Identities, action: str, function: bytes) -> Optional[str]:
        """
        Why C{identities} may not do C{action} on C{function}, or C{None}
        when it may.  Refusals are counted in L{refused}.
        """
        if identities._generation != self._generation:
            identities._decisions = {}
            identities._generation = self._generation
        decisions = identities._decisions
        key = (action, function)
        allowed = decisions.get(key)
        if allowed is None:
            if len(decisions) >= _CACHE_SIZE:
                decisions.clear()
            name = function.decode("utf-8", "surrogateescape")
            allowed = decisions[key] = self.policy.allows(identities, action, name)
        if allowed:
            return None
        self.refused[action] += 1
        shown = function.decode("utf-8", "replace").encode("unicode_escape").decode("ascii")
        return "%s may not %s %s" % (
            identities.describe(),
            {"submit": "submit to", "work": "work on", "admin": "administer"}[action],
            "every function" if function == b"*" else shown,
        )


def jobRefusal(identities: Identities, verb: str) -> str:
    """
    The refusal of a command on one job (C{see} its result, C{cancel} it):
    it names no function, so that who may not administer every function
    cannot tell a job it may not touch from one the server does not know.
    """
    return "%s may not %s this job: that needs admin on its function" % (identities.describe(), verb)


def certificateName(transport: object) -> Optional[str]:
    """
    The common name of the TLS client certificate C{transport}'s peer
    presented, or C{None} (no TLS, no certificate).
    """
    getPeerCertificate = getattr(transport, "getPeerCertificate", None)
    if getPeerCertificate is None:
        return None
    try:
        certificate = getPeerCertificate()
    except Exception:
        return None
    if certificate is None:
        return None
    subject = certificate.get_subject()
    name = getattr(subject, "commonName", None)
    return name if isinstance(name, str) and name else None
