"""
Example worker functions, used by examples/worker.tac and the README.
"""

from twisted.internet import reactor
from twisted.internet.task import deferLater


def reverse(job):
    """
    Reverse the workload.
    """
    return job.data[::-1]


def countdown(job):
    """
    Count down from the workload's number, a status update a tick, then say
    how far it counted.
    """
    total = int(job.data or b"3")

    def tick(left):
        job.sendStatus(total - left, total)
        if left == 0:
            return b"counted %d" % (total,)
        return deferLater(reactor, 0.01, tick, left - 1)

    return tick(total)
