"""
Submit jobs from a Twisted program and wait for their results.

    python examples/submit.py 127.0.0.1:4730

Needs workers for "reverse" and "countdown" (see examples/worker.tac).
"""

import sys

from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import react

from gearman_tw.client import GearmanClient
from gearman_tw.errors import GearmanError


@inlineCallbacks
def main(reactor, server="127.0.0.1:4730"):
    client = GearmanClient([server], timeout=30)
    client.startService()
    try:
        # One job: the result Deferred fires with the WORK_COMPLETE data.
        result = yield client.submitJob("reverse", b"Hello world!")
        print(result.decode())

        # Progress reaches callbacks while the job runs.
        task = client.submit(
            "countdown",
            b"3",
            onStatus=lambda done, total: print("progress %d/%d" % (done, total)),
        )
        print((yield task.result).decode())

        # Many jobs pipelined over one connection, results in order.
        results = yield client.submitBatch([("reverse", word) for word in (b"one", b"two")])
        print(b" ".join(results).decode())

        # A background job returns its handle; ask the server about it.
        handle = yield client.submitJob("countdown", b"50", background=True)
        status = yield client.getStatus(handle)
        print("background job known: %s" % (status.known,))
    except GearmanError as e:
        print("failed: %r" % (e,))
        raise
    finally:
        yield client.stopService()


if __name__ == "__main__":
    react(main, sys.argv[1:])
