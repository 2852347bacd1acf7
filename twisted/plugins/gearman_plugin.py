"""
twistd dropin for C{twistd gearman}; imports nothing but the service maker.
"""

from twisted.application.service import ServiceMaker

gearman = ServiceMaker(
    "Gearman job server",
    "gearman_tw.tap",
    "A Gearman job server, compatible with gearmand 1.1",
    "gearman",
)
