"""
The Gearman job server: job semantics, protocol, admin commands and service.
"""

from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.model import Peer
from gearman_tw.server.service import GearmanService

__all__ = ["GearmanServerFactory", "GearmanService", "JobServer", "Peer"]
