"""
docs/client.rst and docs/worker.rst name every constructor parameter and
every public method and attribute of the client's and worker's classes.
"""

import inspect
import os
import re
from typing import Set

from twisted.application.service import MultiService
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.client import GearmanClient, Task
from gearman_tw.worker import GearmanWorker, Job

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")

# Implementation details that are public only to the package's own modules.
_INTERNAL = {"packet", "coalescingKey", "log", "reactor"}


def documented(name: str) -> Set[str]:
    with open(os.path.join(DOCS, name), encoding="utf-8") as f:
        text = f.read()
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


def public(cls: type, instance: object) -> Set[str]:
    """
    The public names of C{cls}: its own methods and properties, the
    attributes an instance has, and its constructor's parameters.
    """
    names = {n for n in vars(cls) if not n.startswith("_")}
    names.update(n for n in vars(instance) if not n.startswith("_"))
    names.update(p for p in inspect.signature(cls).parameters if p != "self")
    inherited = set(dir(MultiService()))
    return {n for n in names if n not in inherited or n in vars(cls)} - _INTERNAL - {"startService", "stopService"}


class DocsCoverageTests(SynchronousTestCase):
    """
    The user guides name the whole public API of the client and worker.
    """

    def test_client(self) -> None:
        """
        docs/client.rst names everything public in L{GearmanClient} and
        L{Task}.
        """
        words = documented("client.rst")
        client = GearmanClient(["127.0.0.1"])
        missing = (public(GearmanClient, client) | public(Task, Task(b"f", b""))) - words
        self.assertEqual(missing, set())

    def test_worker(self) -> None:
        """
        docs/worker.rst names everything public in L{GearmanWorker} and
        L{Job}.
        """
        words = documented("worker.rst")
        worker = GearmanWorker(["127.0.0.1"])
        job = Job(None, b"H:1", b"f", b"", b"")  # type: ignore[arg-type]
        missing = (public(GearmanWorker, worker) | public(Job, job)) - words
        self.assertEqual(missing, set())
