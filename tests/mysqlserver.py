"""
A throwaway MariaDB server for tests, on a free loopback port, with its
socket and data in a temporary directory.

The first server of a test run installs the system tables
(C{mariadb-install-db}, about a second) into a template directory, which
every server then copies (a few milliseconds), so each test gets a fresh
server in well under a second.  InnoDB runs with a small buffer pool and
redo log, and otherwise its durable defaults
(C{innodb_flush_log_at_trx_commit=1}, the doublewrite buffer).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

from tests.integration.servers import freePort, freeze, requireProgram

#: The database and the account the queue uses.
DATABASE = "gearman"
USER = "gearman"
PASSWORD = "s3cret'\"pass"

#: What the queue's account may do: what docs/queue-mysql.rst asks for.
PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER"

#: Seconds the server may take to start, or to stop when asked.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

# Small and quick, but durable: the settings are InnoDB's defaults apart
# from sizes.
_INNODB = ["--innodb-buffer-pool-size=8M", "--innodb-log-file-size=16M"]

_template: List[str] = []


def _programs() -> Sequence[str]:
    """
    The server and the installer; skip the test without them (fail in CI).
    """
    server = "/usr/sbin/mariadbd" if os.path.exists("/usr/sbin/mariadbd") else "mariadbd"
    return requireProgram(server), requireProgram("mariadb-install-db")


def _asRoot() -> List[str]:
    # mariadbd refuses to run as root unless told to.
    return ["--user=root"] if os.geteuid() == 0 else []


def _templateDirectory() -> str:
    """
    A data directory with the system tables installed, made once per
    process and removed at its exit.
    """
    if _template:
        return _template[0]
    _, install = _programs()
    directory = tempfile.mkdtemp(prefix="mariadb-template-")
    atexit.register(shutil.rmtree, directory, True)
    data = os.path.join(directory, "data")
    result = subprocess.run(
        [
            install,
            "--no-defaults",
            "--datadir=" + data,
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            *_asRoot(),
            *_INNODB,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError("mariadb-install-db failed:\n%s" % (result.stdout.decode("utf-8", "replace"),))
    _template.append(data)
    return data


class MariaDBServer:
    """
    mariadbd in a temporary directory, with a database L{DATABASE} and an
    account L{USER} that may use it, on 127.0.0.1 at L{port}.

    @ivar process: the running server, if any.
    """

    def __init__(self) -> None:
        self.binary = _programs()[0]
        self.directory = tempfile.mkdtemp(prefix="mariadb-test-")
        self.data = os.path.join(self.directory, "data")
        self.socket = os.path.join(self.directory, "mysqld.sock")
        self.port = freePort()
        self.process: Optional[subprocess.Popen] = None
        try:
            shutil.copytree(_templateDirectory(), self.data)
            self.start()
            self.sql("CREATE DATABASE `%s`" % (DATABASE,), database=None)
            for host in ("127.0.0.1", "localhost"):
                self.sql("CREATE USER %s@%s IDENTIFIED BY %s", USER, host, PASSWORD, database=None)
                self.sql("GRANT %s ON `%s`.* TO %%s@%%s" % (PRIVILEGES, DATABASE), USER, host, database=None)
        except BaseException:
            self.stop()
            raise

    def url(self, scheme: str = "mysql", **parameters: str) -> str:
        """
        The queue URL of this server, with the password percent-encoded.
        """
        from urllib.parse import quote, urlencode

        url = "%s://%s:%s@127.0.0.1:%d/%s" % (scheme, USER, quote(PASSWORD, safe=""), self.port, DATABASE)
        if parameters:
            url += "?" + urlencode(parameters)
        return url

    def start(self) -> None:
        """
        Start (or restart) the server on the same port and data, and wait
        until it answers.
        """
        self.process = subprocess.Popen(
            [
                self.binary,
                "--no-defaults",
                "--datadir=" + self.data,
                "--socket=" + self.socket,
                "--port=%d" % (self.port,),
                "--bind-address=127.0.0.1",
                "--pid-file=" + os.path.join(self.directory, "mysqld.pid"),
                "--log-error=" + os.path.join(self.directory, "error.log"),
                "--tmpdir=" + self.directory,
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-flush-log-at-trx-commit=1",
                *_asRoot(),
                *_INNODB,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.connect(timeout=1).close()
                return
            except Exception:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.errorLog()
                self.kill()
                raise AssertionError("mariadbd did not start:\n%s" % (log[-3000:],))
            time.sleep(0.02)

    def errorLog(self) -> str:
        try:
            with open(os.path.join(self.directory, "error.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def connect(self, timeout: float = 10, **options: Any) -> Any:
        """
        A new PyMySQL connection as root over the Unix socket, in the
        queue's database once it exists, autocommitting.
        """
        import pymysql  # type: ignore[import-untyped,unused-ignore]

        return pymysql.connect(
            unix_socket=self.socket,
            user="root",
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            autocommit=True,
            **options,
        )

    def sql(self, statement: str, *parameters: Any, database: Optional[str] = DATABASE) -> List[Any]:
        """
        Run one statement as root (in C{database}) and return its rows.
        """
        options: Dict[str, Any] = {} if database is None else {"database": database}
        connection = self.connect(**options)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, parameters or None)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def kill(self) -> None:
        """
        Kill the server (SIGKILL, so without a shutdown), keeping its data.
        """
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(STOP_TIMEOUT)

    def restart(self) -> None:
        """
        Shut the server down (SIGTERM; SIGKILL if it takes too long) and
        start it again.
        """
        process = self.process
        if process is not None and process.poll() is None:
            self.resume()
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        self.start()

    def pause(self) -> None:
        """
        Freeze the server (SIGSTOP): connections stay open, nothing is
        answered.
        """
        if self.process is None or self.process.poll() is not None:
            raise AssertionError("mariadbd is not running: nothing to pause")
        freeze([self.process.pid])

    def resume(self) -> None:
        """
        Let a frozen server go on (SIGCONT).
        """
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """
        Kill the server and remove its directory.
        """
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
