"""
Tests for L{gearman_tw.errors}: every error says what happened, to whom.
"""

from twisted.trial.unittest import SynchronousTestCase

import gearman_tw
from gearman_tw.errors import (
    JobException,
    JobFailed,
    JobTimeout,
    ServerError,
    ServerUnavailable,
)


class ErrorTextTests(SynchronousTestCase):
    """
    C{str()} of each error names the job and what happened.
    """

    def test_jobFailed(self) -> None:
        """
        L{JobFailed} names the handle and function it knows; it can be made
        with neither, as a worker's function raises it.
        """
        self.assertEqual(str(JobFailed(b"H:vm:1", b"reverse")), "job H:vm:1 (reverse) failed")
        self.assertEqual(str(JobFailed(b"H:vm:1")), "job H:vm:1 failed")
        self.assertEqual(str(JobFailed()), "job failed")

    def test_jobException(self) -> None:
        """
        L{JobException} gives the worker's text, decoded.
        """
        error = JobException(b"H:1", b"division by zero", b"calc")
        self.assertEqual(str(error), "job H:1 (calc) raised: division by zero")
        self.assertEqual(error.data, b"division by zero")

    def test_jobTimeout(self) -> None:
        """
        L{JobTimeout} says whether the job was created, and the limit.
        """
        self.assertEqual(
            str(JobTimeout(b"H:vm:626", 0.5, b"f")), "job H:vm:626 (f) did not finish within 0.5 s"
        )
        self.assertEqual(str(JobTimeout(None, 3, b"f")), "job (f) was not created within 3 s")
        self.assertIsInstance(JobTimeout(None, 1), TimeoutError)

    def test_serverError(self) -> None:
        """
        L{ServerError} gives the code and the server's text.
        """
        self.assertEqual(
            str(ServerError(b"QUEUE_ERROR", b"queue full")), "job server error QUEUE_ERROR: queue full"
        )

    def test_serverUnavailable(self) -> None:
        """
        L{ServerUnavailable} lists each server tried with its reason.
        """
        error = ServerUnavailable(
            "no job server is connected", [("127.0.0.1:1", "connection refused"), ("h:4730", "timed out")]
        )
        self.assertEqual(
            str(error),
            "no job server is connected (tried 127.0.0.1:1: connection refused; h:4730: timed out)",
        )
        self.assertEqual(str(ServerUnavailable("the client is stopped")), "the client is stopped")

    def test_exported(self) -> None:
        """
        Every error, L{JobTimeout} included, is exported from the package.
        """
        for name in ("JobTimeout", "JobFailed", "JobException", "ServerError", "ServerUnavailable", "ConnectionLost"):
            self.assertIn(name, gearman_tw.__all__)
            self.assertIs(getattr(gearman_tw, name), getattr(gearman_tw.errors, name))

    def test_priorityExported(self) -> None:
        """
        L{gearman_tw.Priority} is the client's priority type, and its members
        equal their strings.
        """
        from gearman_tw.client import HIGH, Priority

        self.assertIs(gearman_tw.Priority, Priority)
        self.assertIs(Priority.HIGH, HIGH)
        self.assertEqual(Priority("low"), "low")
