"""
twistd dropins for C{twistd gearman} and C{twistd gearman-worker}; they
import nothing but the service maker, and load their taps lazily.
"""

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
