"""
twistd dropins for C{twistd gearman} and C{twistd gearman-worker}; they
import nothing but the service maker, and load their taps lazily.
"""

from twisted.application.reactors import Reactor
from twisted.application.service import ServiceMaker

gearman = ServiceMaker(
    "Gearman job server",
    "gearman_tw.tap",
    "A Gearman job server, compatible with gearmand 1.1",
    "gearman",
)

gearmanWorker = ServiceMaker(
    "Gearman worker",
    "gearman_tw.worker_tap",
    "Run Python callables as Gearman worker functions",
    "gearman-worker",
)

# twistd --reactor=gearman: the reactor twistd gearman runs on by default.
gearmanReactor = Reactor(
    "gearman",
    "gearman_tw.server.reactor",
    "epoll, each event handled without a log context (Linux; gearman_tw)",
)
