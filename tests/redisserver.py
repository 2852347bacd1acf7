"""
A throwaway redis-server for tests, on a free loopback port.
"""

import shutil
import socket
import subprocess
import tempfile
import time

from tests.integration.servers import freePort, requireProgram


class RedisServer:
    """
    redis-server with append-only persistence in a temporary directory.
    """

    def __init__(self) -> None:
        self.binary = requireProgram("redis-server")
        self.directory = tempfile.mkdtemp(prefix="redis-test-")
        self.port = freePort()
        self.start()

    def start(self) -> None:
        """
        Start (or restart) the server on the same port and directory.
        """
        binary = self.binary
        self.process = subprocess.Popen(
            [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", self.directory,
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise AssertionError("redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        """
        Stop the server, keeping its data.
        """
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def empty(self, timeout: float = 60) -> None:
        """
        Delete every key and rewrite the append-only file, waiting for the
        rewrite: what comes next starts from an empty server, and does not
        pay for a rewrite of what came before.
        """
        self.command(b"FLUSHALL")
        self.command(b"BGREWRITEAOF")
        deadline = time.monotonic() + timeout
        while b"aof_rewrite_in_progress:0" not in self.info() or b"aof_rewrite_scheduled:0" not in self.info():
            if time.monotonic() > deadline:
                raise AssertionError("Redis did not rewrite its append-only file in %g s" % (timeout,))
            time.sleep(0.05)

    def info(self) -> bytes:
        """
        What C{INFO persistence} answers.
        """
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
            connection.sendall(b"*2\r\n$4\r\nINFO\r\n$11\r\npersistence\r\n")
            answer = b""
            # A bulk reply: $length, then that many bytes and CRLF.
            for _ in range(1000):
                head, _, body = answer.partition(b"\r\n")
                if head.startswith(b"$") and len(body) >= int(head[1:]):
                    return body[: int(head[1:])]
                chunk = connection.recv(65536)
                if not chunk:
                    break
                answer += chunk
        raise AssertionError("Redis answered INFO with %r" % (answer[:200],))

    def command(self, *arguments: bytes) -> bytes:
        """
        Run one command over a blocking connection of its own and return
        the first line of its answer, which must be a status reply.
        """
        import socket

        command = b"*%d\r\n" % (len(arguments),) + b"".join(
            b"$%d\r\n%s\r\n" % (len(argument), argument) for argument in arguments
        )
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
            connection.sendall(command)
            answer = connection.recv(4096)
        if not answer.startswith(b"+"):
            raise AssertionError("Redis answered %r" % (answer,))
        return answer.split(b"\r\n")[0]
