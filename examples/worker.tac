# A worker with two functions, hosted by twistd:
#
#     twistd -n -y examples/worker.tac
#
# It serves "reverse" and "countdown" (examples/tasks.py) for the job server
# at $GEARMAN_SERVER (default 127.0.0.1:4730), two jobs at a time.
import os
import sys

from twisted.application.service import Application

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gearman_tw.worker import GearmanWorker  # noqa: E402
from tasks import countdown, reverse  # noqa: E402

application = Application("gearman-worker")
worker = GearmanWorker([os.environ.get("GEARMAN_SERVER", "127.0.0.1:4730")], concurrency=2)
worker.register("reverse", reverse)
worker.register("countdown", countdown, timeout=60)
worker.setServiceParent(application)
