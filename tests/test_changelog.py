"""
The changelog: every news fragment in C{newsfragments/} is named with a type
that C{pyproject.toml}'s C{[tool.towncrier]} knows, and towncrier renders
them all into a draft of the next release.
"""

import os
import re
import subprocess
import sys
from typing import Any, Dict, List, Tuple

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.test_typing import requireModules

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAGMENTS = os.path.join(ROOT, "newsfragments")

#: Files towncrier passes over in the fragments directory (it compares
#: lower-cased names).
IGNORED = {".gitignore", ".gitkeep", ".keep", "readme", "readme.md", "readme.rst"}

#: C{<issue>.<type>}, C{+<name>.<type>}, either with a C{.<counter>} for a
#: second fragment of the same issue and type.  No extension: towncrier would
#: read C{17.bugfix.rst} as the same fragment as C{17.bugfix}.
NAME = re.compile(r"^(?P<issue>[0-9]+|\+[A-Za-z0-9_-]+)\.(?P<type>[a-z]+)(?:\.[0-9]+)?$")

#: Seconds the draft build may take.
TIMEOUT = 120


def towncrierConfig() -> Dict[str, Any]:
    """
    The C{[tool.towncrier]} table of the repository's C{pyproject.toml}.
    """
    try:
        import tomllib as toml  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python < 3.11
        try:
            import tomli as toml  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            raise SkipTest("reading pyproject.toml needs Python 3.11 or tomli")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return toml.load(f)["tool"]["towncrier"]


def fragments() -> List[str]:
    """
    The names of the news fragments, sorted.
    """
    return sorted(
        name for name in os.listdir(FRAGMENTS) if name.lower() not in IGNORED
    )


def sections(text: str) -> Dict[str, str]:
    """
    The sections of a rendered release, by heading: each heading is a line
    underlined with C{-} to its length.
    """
    lines = text.splitlines()
    found: Dict[str, str] = {}
    heading = None
    body: List[str] = []
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if line and following == "-" * len(line):
            if heading is not None:
                found[heading] = "\n".join(body)
            heading, body = line, []
        else:
            body.append(line)
    if heading is not None:
        found[heading] = "\n".join(body)
    return found


def flat(text: str) -> str:
    """
    C{text} with every run of white space made one space.
    """
    return " ".join(text.split())


class FragmentNameTests(SynchronousTestCase):
    """
    Every news fragment's name says its issue and a known type.
    """

    def test_knownTypes(self) -> None:
        """
        Every file in C{newsfragments/} (but its README) is named
        C{<issue>.<type>} or C{+<name>.<type>}, perhaps with a counter, with
        one of the configured types, and is not empty.
        """
        types = {kind["directory"] for kind in towncrierConfig()["type"]}
        self.assertEqual(types, {"feature", "bugfix", "doc", "removal", "misc"})
        names = fragments()
        self.assertNotEqual(names, [])
        for name in names:
            match = NAME.match(name)
            if match is None:
                self.fail("%s is not named <issue>.<type>[.<n>]" % (name,))
            self.assertIn(match.group("type"), types, "%s has an unknown type" % (name,))
            with open(os.path.join(FRAGMENTS, name), encoding="utf-8") as f:
                self.assertNotEqual(f.read().strip(), "", "%s is empty" % (name,))

    def test_newsFile(self) -> None:
        """
        The configured news file exists and has the line below which towncrier
        inserts each release.
        """
        config = towncrierConfig()
        self.assertEqual(config["directory"], "newsfragments")
        with open(os.path.join(ROOT, config["filename"]), encoding="utf-8") as f:
            self.assertIn(".. towncrier release notes start\n", f.read())


class DraftTests(SynchronousTestCase):
    """
    C{towncrier build --draft} renders every fragment.
    """

    def draft(self) -> Tuple[str, str]:
        """
        Run C{python -m towncrier build --draft --version 0.1.0} from this
        interpreter in the repository, and return its output and errors.
        """
        requireModules("towncrier")
        try:
            result = subprocess.run(
                [sys.executable, "-m", "towncrier", "build", "--draft", "--version", "0.1.0"],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            self.fail("towncrier did not finish within %d seconds" % (TIMEOUT,))
        if result.returncode != 0:
            self.fail(
                "towncrier exited with status %d:\n%s%s"
                % (result.returncode, result.stdout, result.stderr)
            )
        return result.stdout, result.stderr

    def test_everyFragment(self) -> None:
        """
        The draft is titled with the project and version, and each fragment
        is under its type's heading: its text where the type shows content,
        its issue number where it does not.
        """
        output, _ = self.draft()
        self.assertTrue(output.startswith("gearman_tw 0.1.0 ("), output[:200])
        rendered = sections(output)
        types = {kind["directory"]: kind for kind in towncrierConfig()["type"]}
        for name in fragments():
            match = NAME.match(name)
            if match is None or match.group("type") not in types:
                continue  # test_knownTypes fails for it
            kind = types[match.group("type")]
            self.assertIn(kind["name"], rendered, "no %s section for %s" % (kind["name"], name))
            section = flat(rendered[kind["name"]])
            issue = match.group("issue")
            with open(os.path.join(FRAGMENTS, name), encoding="utf-8") as f:
                text = flat(f.read())
            if kind["showcontent"] or issue.startswith("+"):
                self.assertIn(text, section, "%s is not in the draft" % (name,))
            if not issue.startswith("+"):
                self.assertIn("#" + issue, section, "%s's issue is not in the draft" % (name,))
