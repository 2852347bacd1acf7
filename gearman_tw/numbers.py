# -*- test-case-name: tests.test_numbers -*-
"""
Numbers read from the wire as gearmand's C library reads them.

gearmand parses the numbers in packets and admin lines with C{atoi} and
C{strtol}: leading white space and a sign are skipped, anything after the
digits ignored, no digits read as 0, and overflows wrap or clamp as C's
integer types do.  Clients and workers that send junk get the answers
gearmand gives them, and our client reads a server's numbers as
libgearman does.
"""

from __future__ import annotations


def atoi(value: bytes) -> int:
    """
    Read a leading decimal integer as C's C{strtol} does: leading white space
    and a sign are allowed, anything after the digits is ignored, and no
    digits at all read as 0.

    Unlike C{strtol} the result is not clamped, so callers can tell an
    overflow; but a number of more than 20 digits (which overflows any C
    integer) reads as +/-10**20, so that huge inputs cost nothing.
    """
    value = value.lstrip(b" \t\n\r\v\f")
    sign = 1
    if value[:1] in (b"-", b"+"):
        if value[:1] == b"-":
            sign = -1
        value = value[1:]
    end = 0
    for byte in value:
        if 48 <= byte <= 57:
            end += 1
        else:
            break
    if not end:
        return 0
    digits = value[:end].lstrip(b"0")
    if len(digits) > _MAX_DIGITS:
        return sign * _HUGE
    return sign * int(digits) if digits else 0


_MAX_DIGITS = 20
_HUGE = 10**_MAX_DIGITS
_LONG_MIN = -(2**63)
_LONG_MAX = 2**63 - 1


def strtol(value: bytes) -> int:
    """
    L{atoi} clamped to a 64-bit C{long}, as glibc's C{strtol} (under
    C{atoi}) does.
    """
    number = atoi(value)
    if number > _LONG_MAX:
        return _LONG_MAX
    if number < _LONG_MIN:
        return _LONG_MIN
    return number


def atoi32(value: bytes) -> int:
    """
    C's C{atoi} on a 64-bit glibc system: C{strtol} (clamped to 64 bits)
    cut to a signed 32-bit C{int}, so C{4294967297} reads as 1 and
    C{3000000000} as a negative number.
    """
    number = strtol(value) & 0xFFFFFFFF
    return number - 0x100000000 if number & 0x80000000 else number


def uint32(value: bytes) -> int:
    """
    gearmand's C{(uint32_t)atoi(value)}.
    """
    return strtol(value) & 0xFFFFFFFF
