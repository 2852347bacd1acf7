"""
gearman_tw: a Gearman job server, client and worker library for Twisted.
"""

from gearman_tw._version import __version__
from gearman_tw.errors import (
    ConnectionLost,
    GearmanError,
    JobException,
    JobFailed,
    JobTimeout,
    ProtocolError,
    QueueError,
    ServerError,
    ServerUnavailable,
)
from gearman_tw.protocol import Priority

__all__ = [
    "ConnectionLost",
    "GearmanError",
    "Priority",
    "JobException",
    "JobFailed",
    "JobTimeout",
    "ProtocolError",
    "QueueError",
    "ServerError",
    "ServerUnavailable",
    "__version__",
]
