"""
Read a job server's status through the admin protocol.

    python examples/admin.py 127.0.0.1:4730
"""

import sys

from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import react

from gearman_tw.admin import connectAdmin


@inlineCallbacks
def main(reactor, server="127.0.0.1:4730"):
    admin = yield connectAdmin(server, reactor=reactor)
    try:
        print("server version %s" % ((yield admin.version()),))
        for row in (yield admin.status()):
            print(
                "%s: %d queued, %d running, %d workers"
                % (row.function.decode(), row.queued, row.running, row.workers)
            )
    finally:
        admin.close()


if __name__ == "__main__":
    react(main, sys.argv[1:])
