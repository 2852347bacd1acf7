"""
A throwaway PostgreSQL server for tests, on a free loopback port.

Each L{PostgresServer} is a cluster of its own: C{initdb} into a temporary
directory, then C{postgres} on 127.0.0.1 at a free port with its Unix socket
in that directory, C{fsync} and C{synchronous_commit} on, and a database
made for the test.  The binaries are Debian's (C{/usr/lib/postgresql/*/bin},
the C{postgresql} package the Makefile installs).

PostgreSQL refuses to run as root, and tests and CI do run as root: then
C{initdb} and C{postgres} run as the C{postgres} account (its uid and gid set
by C{subprocess} itself, as C{runuser -u postgres --} would, but without a
C{runuser} process between us and the postmaster, so that the signals of
L{kill}, L{pause} and L{resume} reach it), with the temporary directory
owned by it.

Every wait is bounded; L{stop} removes everything.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from twisted.trial.unittest import SkipTest

from tests.integration.servers import freePort, freeze

#: Where Debian installs the server binaries, one folder per major version.
BINARIES = "/usr/lib/postgresql/*/bin"

#: Seconds a start, a stop or a kill may take at most.
WAIT = 30.0

#: The superuser role C{initdb} makes, and that tests connect as.
SUPERUSER = "gearman"


def findBinaries() -> str:
    """
    The folder of the newest PostgreSQL server binaries installed; skip the
    test without one, or fail in CI.
    """
    found = []
    for folder in glob.glob(BINARIES):
        match = re.search(r"/(\d+)/bin$", folder)
        if match and all(os.access(os.path.join(folder, name), os.X_OK) for name in ("initdb", "postgres")):
            found.append((int(match.group(1)), folder))
    if not found:
        message = "PostgreSQL is not installed (no %s/postgres; Debian package: postgresql)" % (BINARIES,)
        if os.environ.get("CI"):
            raise AssertionError(message)
        raise SkipTest(message)
    return max(found)[1]


def _account() -> Optional[Tuple[int, int]]:
    """
    The uid and gid to run PostgreSQL as: the C{postgres} account's when we
    are root, none (ourselves) otherwise.
    """
    if os.getuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        message = "running as root, and there is no postgres account to run PostgreSQL as"
        if os.environ.get("CI"):
            raise AssertionError(message)
        raise SkipTest(message)
    return entry.pw_uid, entry.pw_gid


def _children(pid: int) -> List[int]:
    """
    The processes whose parent is C{pid} (PostgreSQL's backends and
    auxiliary processes, for the postmaster).
    """
    children = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the name: state, ppid.
        if len(fields) > 1 and fields[0] != b"Z" and int(fields[1]) == pid:
            children.append(int(stat.split("/")[2]))
    return children


def _alive(pid: int) -> bool:
    """
    Whether C{pid} is a process that has not ended (a zombie has).
    """
    try:
        with open("/proc/%d/stat" % (pid,), "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _signal(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class PostgresServer:
    """
    A PostgreSQL cluster in a temporary directory, serving one database.

    @ivar port: its TCP port on 127.0.0.1 (kept over restarts).
    @ivar directory: the temporary directory: the cluster (C{data}), the
        Unix socket and the log.
    @ivar process: the postmaster, while it runs.
    """

    def __init__(self, database: str = "gearman") -> None:
        self.binaries = findBinaries()
        self.account = _account()
        self.database = database
        self.directory = tempfile.mkdtemp(prefix="postgres-test-")
        self.data = os.path.join(self.directory, "data")
        self.logPath = os.path.join(self.directory, "log")
        self.process: Optional[subprocess.Popen] = None
        self._paused: List[int] = []
        self.port = 0
        try:
            if self.account is not None:
                os.chown(self.directory, *self.account)
            self._run(
                [
                    os.path.join(self.binaries, "initdb"),
                    "--pgdata", self.data,
                    "--username", SUPERUSER,
                    "--auth", "trust",
                    "--encoding", "UTF8",
                    "--locale", "C",
                    # The files initdb writes are not fsynced (the cluster
                    # is as new as the test); the server runs with fsync.
                    "--no-sync",
                ]
            )
            # A port taken between freePort() and the bind: try another.
            for attempt in range(3):
                self.port = freePort()
                try:
                    self.start()
                    break
                except AssertionError:
                    if attempt == 2:
                        raise
            self.execute("CREATE DATABASE %s" % (database,), database="postgres")
        except BaseException:
            self.stop()
            raise

    def _popen(self, argv: List[str], **kwargs: Any) -> subprocess.Popen:
        options: Dict[str, Any] = dict(stdin=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C"))
        if self.account is not None:
            options.update(user=self.account[0], group=self.account[1], extra_groups=[])
        options.update(kwargs)
        return subprocess.Popen(argv, **options)

    def _run(self, argv: List[str]) -> None:
        process = self._popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.directory)
        try:
            output, _ = process.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(WAIT)
            raise AssertionError("%s did not finish within %d s" % (argv[0], WAIT))
        if process.returncode:
            raise AssertionError("%s failed: %s" % (argv[0], output.decode("utf-8", "replace")))

    def start(self) -> None:
        """
        Start (or restart) the server on the same port and cluster, and wait
        until it accepts connections.
        """
        log = open(self.logPath, "ab")
        try:
            self.process = self._popen(
                [
                    os.path.join(self.binaries, "postgres"),
                    "-D", self.data,
                    "-h", "127.0.0.1",
                    "-p", str(self.port),
                    "-k", self.directory,
                    "-c", "fsync=on",
                    "-c", "synchronous_commit=on",
                    "-c", "max_connections=40",
                    "-c", "shared_buffers=16MB",
                    # Dynamic shared memory as files in the cluster, so
                    # that a killed server leaves none in /dev/shm.
                    "-c", "dynamic_shared_memory_type=mmap",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                # Our own signals (a test run's ^C) are not its.
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + WAIT
        while True:
            if self.process.poll() is not None:
                self.process = None
                raise AssertionError("postgres did not start: %s" % (self.log()[-2000:],))
            try:
                self.execute("SELECT 1", database="postgres", timeout=2)
                return
            except Exception:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("postgres did not accept connections within %d s" % (WAIT,))
            time.sleep(0.05)

    def _processes(self) -> List[int]:
        """
        The postmaster and every process it started.
        """
        if self.process is None or self.process.poll() is not None:
            return []
        return [self.process.pid] + _children(self.process.pid)

    def kill(self) -> None:
        """
        Kill the server and all its processes at once (SIGKILL, a crash),
        keeping its cluster: the next L{start} recovers from the WAL.
        """
        if self.process is None:
            return
        pid = self.process.pid
        if self.process.poll() is None:
            # Stopped first, so that it starts no process meanwhile.
            _signal([pid], signal.SIGSTOP)
        processes = [pid] + _children(pid)
        _signal(processes, signal.SIGKILL)
        self._paused = []
        self.process.wait(WAIT)
        self.process = None
        # The backends hold the shared memory a new postmaster checks.
        deadline = time.monotonic() + WAIT
        while any(_alive(child) for child in processes[1:]):
            if time.monotonic() > deadline:
                raise AssertionError("postgres processes outlived SIGKILL for %d s" % (WAIT,))
            time.sleep(0.02)

    def shutdown(self) -> None:
        """
        Stop the server gracefully (a fast shutdown: sessions are ended),
        keeping its cluster; killed if it does not end within L{WAIT}.
        """
        if self.process is None:
            return
        self.resume()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def restart(self) -> None:
        """
        A graceful L{shutdown} and a L{start}.
        """
        self.shutdown()
        self.start()

    def pause(self) -> None:
        """
        Freeze the server and all its processes (SIGSTOP): connections stay
        open, nothing is answered.
        """
        processes = self._processes()
        # The postmaster first, so that it starts no process meanwhile.
        freeze(processes)
        self._paused.extend(processes)

    def resume(self) -> None:
        """
        Let a paused server go on (SIGCONT).
        """
        paused, self._paused = self._paused, []
        _signal(paused[::-1], signal.SIGCONT)

    def stop(self) -> None:
        """
        Stop the server (killed if it must be) and remove its directory.

        A server killed last is started and shut down once more first: a
        postmaster removes the System V shared memory a killed one left
        (its C{postmaster.pid} names it).
        """
        try:
            if self.process is None and os.path.exists(os.path.join(self.data, "postmaster.pid")):
                try:
                    self.start()
                except AssertionError:
                    pass
            self.shutdown()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        """
        What the server has logged so far.
        """
        try:
            with open(self.logPath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def url(self, user: str = SUPERUSER, database: Optional[str] = None, **query: str) -> str:
        """
        A C{postgresql://} URL of the test database, with C{query} (e.g.
        C{table=NAME}) after it.
        """
        from urllib.parse import urlencode

        url = "postgresql://%s@127.0.0.1:%d/%s" % (user, self.port, database or self.database)
        if query:
            url += "?" + urlencode(query)
        return url

    def connect(self, database: Optional[str] = None, user: str = SUPERUSER, timeout: int = 5) -> Any:
        """
        A new psycopg connection in autocommit mode, over TCP.
        """
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            dbname=database or self.database,
            autocommit=True,
            connect_timeout=timeout,
        )

    def execute(
        self, statement: Any, parameters: Sequence[Any] = (), database: Optional[str] = None, timeout: int = 5
    ) -> List[Tuple[Any, ...]]:
        """
        Run one statement over a connection of its own (autocommit); its
        rows, if it returns any.
        """
        with self.connect(database, timeout=timeout) as connection:
            cursor = connection.execute(statement, parameters or None)
            return cursor.fetchall() if cursor.description is not None else []
