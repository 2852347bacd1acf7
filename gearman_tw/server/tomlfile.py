# -*- test-case-name: tests.test_server_lifecycle -*-
"""
Reading the server's TOML files (the access policy, the lifecycle
policies) with one-line errors.
"""

from __future__ import annotations

from typing import Any, Dict


class TOMLFileError(ValueError):
    """
    A TOML file cannot be read or parsed; the message says why, in a line.
    """


def parseTOML(text: str) -> Dict[str, Any]:
    """
    Parse TOML text.

    @raise TOMLFileError: it is not valid TOML.
    """
    try:
        import tomllib as toml  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python < 3.11 (PyPy 3.9): the same parser, as tomli.
        try:
            import tomli as toml  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            raise TOMLFileError("reading TOML needs Python 3.11 or the tomli package")
    try:
        return toml.loads(text)  # type: ignore[no-any-return]
    except toml.TOMLDecodeError as e:
        raise TOMLFileError("not valid TOML: %s" % (e,))
    except ValueError as e:  # a whole number of more digits than Python reads
        raise TOMLFileError("not a TOML file this server reads: %s" % (e,))
    except RecursionError:
        raise TOMLFileError("not a TOML file this server reads: tables or arrays nested too deep")


def readTOML(path: str, what: str) -> Dict[str, Any]:
    """
    Read and parse the TOML file C{path}, C{what} naming it in errors
    (C{"the access policy"}).

    @raise TOMLFileError: it cannot be read, is not UTF-8 or not TOML.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TOMLFileError("cannot read %s %s: %s" % (what, path, e.strerror or e))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TOMLFileError("%s %s: not UTF-8 text" % (what, path))
    try:
        return parseTOML(text)
    except TOMLFileError as e:
        raise TOMLFileError("%s %s: %s" % (what, path, e))
