"""
Tests for L{gearman_tw.numbers}: numbers read as gearmand's C library
reads them.
"""

from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.numbers import atoi, atoi32, uint32


class AtoiTests(SynchronousTestCase):
    """
    Tests for L{atoi}, L{atoi32} and L{uint32}.
    """

    def test_atoi(self) -> None:
        """
        Leading integers are read as C's strtol does, without clamping.
        """
        for text, value in (
            (b"42", 42),
            (b" -7x", -7),
            (b"+3", 3),
            (b"\t\n 8", 8),
            (b"junk", 0),
            (b"", 0),
            (b"-", 0),
            (b"50%", 50),
            (b"007", 7),
            (b"9223372036854775808", 2**63),
        ):
            self.assertEqual(atoi(text), value, text)

    def test_huge(self) -> None:
        """
        Numbers too long for any C integer read as +/-10**20, however many
        digits (Python refuses to convert more than 4300); leading zeros do
        not count.
        """
        self.assertEqual(atoi(b"1" * 5000), 10**20)
        self.assertEqual(atoi(b"-" + b"1" * 5000), -(10**20))
        self.assertEqual(atoi(b"0" * 5000 + b"12"), 12)
        self.assertEqual(atoi(b"0" * 5000), 0)

    def test_atoi32(self) -> None:
        """
        atoi32 is C's C{(int)strtol}: cut to a signed 32-bit int after
        clamping to 64 bits.
        """
        for text, value in (
            (b"5", 5),
            (b"-5", -5),
            (b"4294967297", 1),
            (b"3000000000", 3000000000 - 2**32),
            (b"2147483648", -(2**31)),
            (b"9" * 30, -1),
            (b"-" + b"9" * 30, 0),
            (b"x", 0),
        ):
            self.assertEqual(atoi32(text), value, text)

    def test_uint32(self) -> None:
        """
        uint32 is C's C{(uint32_t)atoi}: negative numbers wrap, huge ones
        clamp to 64 bits first.
        """
        for text, value in ((b"7", 7), (b"-1", 0xFFFFFFFF), (b"4294967297", 1), (b"9" * 30, 0xFFFFFFFF), (b"z", 0)):
            self.assertEqual(uint32(text), value, text)
