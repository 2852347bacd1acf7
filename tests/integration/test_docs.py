# -*- test-case-name: tests.integration.test_docs -*-
"""
The Sphinx documentation builds without warnings and includes the API
reference pydoctor generates from the docstrings (docs/conf.py).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from typing import Dict, List, Optional, Set

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import REPO

#: Seconds one build may take (pydoctor alone takes about 15).
BUILD_TIMEOUT = 300

#: The pages api.rst must link to, relative to the HTML output directory.
API_PAGES = [
    "api/gearman_tw.client.GearmanClient.html",
    "api/gearman_tw.worker.GearmanWorker.html",
    "api/gearman_tw.errors.html",
]


class _Build:
    """
    One C{sphinx-build -W} of docs/ into a temporary directory.

    @ivar output: the HTML output directory.
    @ivar returncode: sphinx-build's exit status.
    @ivar log: what it wrote to stdout and stderr.
    """

    def __init__(self) -> None:
        self.output = tempfile.mkdtemp(prefix="gearman_tw-docs-")
        atexit.register(shutil.rmtree, self.output, True)
        try:
            result = subprocess.run(
                [sys.executable, "-m", "sphinx", "-q", "-W", "-b", "html", os.path.join(REPO, "docs"), self.output],
                env=dict(os.environ, PYTHONPATH=REPO),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT,
            )
        except subprocess.TimeoutExpired as e:
            self.returncode: Optional[int] = None
            self.log = "sphinx-build timed out after %d s\n%s" % (
                BUILD_TIMEOUT,
                (e.output or b"").decode("utf-8", "replace"),
            )
        else:
            self.returncode = result.returncode
            self.log = result.stdout.decode("utf-8", "replace")


_builds: Dict[str, _Build] = {}


def build() -> _Build:
    """
    Build the docs once per process: every test here reads the same build.
    """
    if "html" not in _builds:
        _builds["html"] = _Build()
    return _builds["html"]


class _Links(HTMLParser):
    """
    Collect the C{href} of every C{<a>} in a page.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: Set[str] = set()

    def handle_starttag(self, tag: str, attrs: List) -> None:
        if tag == "a":
            for name, value in attrs:
                if name == "href" and value:
                    self.hrefs.add(value.split("#")[0])


class DocsTests(SynchronousTestCase):
    """
    C{sphinx-build -W -b html docs} succeeds and the result holds pydoctor's
    API reference, linked from api.html.
    """

    def setUp(self) -> None:
        self.build = build()

    def read(self, page: str) -> str:
        """
        The text of C{page} (relative to the output directory); fail if the
        build did not write it.
        """
        path = os.path.join(self.build.output, page)
        if not os.path.isfile(path):
            self.fail("the docs build wrote no %s\n%s" % (page, self.build.log))
        with open(path, encoding="utf-8") as f:
            return f.read()

    def links(self, page: str) -> Set[str]:
        """
        The link targets in C{page}, without fragments.
        """
        parser = _Links()
        parser.feed(self.read(page))
        return parser.hrefs

    def test_buildSucceeds(self) -> None:
        """
        sphinx-build exits with status 0 although warnings are errors.
        """
        self.assertEqual(self.build.returncode, 0, self.build.log)

    def test_apiPages(self) -> None:
        """
        pydoctor wrote a page for L{gearman_tw.client.GearmanClient},
        L{gearman_tw.worker.GearmanWorker} and L{gearman_tw.errors}, each
        titled with the name it documents, and the reference's index.
        """
        for page in API_PAGES:
            name = os.path.basename(page)[: -len(".html")]
            self.assertIn("<title>%s" % (name,), self.read(page), page)
        self.assertIn("gearman_tw.client", self.read("api/index.html"))

    def test_apiPageLinks(self) -> None:
        """
        api.html (docs/api.rst) links to the reference's index and to the
        pages of the client, the worker and the errors.
        """
        links = self.links("api.html")
        for page in ["api/index.html"] + API_PAGES:
            self.assertIn(page, links)

    def test_apiPageInTableOfContents(self) -> None:
        """
        The front page's table of contents links to api.html.
        """
        self.assertIn("api.html", self.links("index.html"))

    def test_narrativeLinksToReference(self) -> None:
        """
        Roles like C{:class:} in the narrative pages link into the reference
        through pydoctor's intersphinx inventory.
        """
        self.assertIn("api/gearman_tw.client.GearmanClient.html", self.links("client.html"))
