"""
Worker functions that integration tests run under C{twistd gearman-worker}.
"""

import time

from twisted.internet import reactor
from twisted.internet.task import deferLater


def reverse(job):
    return job.data[::-1]


def stream(job):
    job.sendData(b"chunk1")
    job.sendStatus(1, 2)
    job.sendWarning(b"careful")
    job.sendData(b"chunk2")
    return b"done:" + job.data


def refuse(job):
    job.fail()


def explode(job):
    raise ValueError("exploded on " + job.data.decode())


def slow(job):
    """
    Finish after the number of seconds in the workload.
    """
    return deferLater(reactor, float(job.data or b"0.5"), lambda: b"slept " + job.data)


def blocking(job):
    """
    Block the thread (run with --threaded).
    """
    time.sleep(float(job.data or b"0.2"))
    return b"blocked " + job.data
