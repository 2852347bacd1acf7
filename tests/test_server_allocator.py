"""
Tests for L{gearman_tw.server.allocator}.
"""

import resource

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from gearman_tw.server.allocator import keepFreedMemory


def _faultsForLargeBuffers(count: int = 20, size: int = 1 << 20) -> int:
    """
    Minor page faults taken while making and freeing C{count} pairs of
    C{size}-byte buffers, as a server does for large payloads.
    """
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for n in range(count):
        first = bytes([n % 256]) * size
        second = first + b"!"
        del first, second
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


class KeepFreedMemoryTests(SynchronousTestCase):
    """
    Tests for L{keepFreedMemory}.
    """

    def test_largeBuffersReused(self) -> None:
        """
        Once set, making and freeing 1 MiB buffers reuses the heap: far
        fewer page faults than one per page of each buffer.
        """
        if not keepFreedMemory(64 << 20):
            raise SkipTest("not glibc")
        _faultsForLargeBuffers(2)
        faults = _faultsForLargeBuffers()
        pages = 20 * 2 * (1 << 20) // resource.getpagesize()
        self.assertLess(faults, pages // 10)
