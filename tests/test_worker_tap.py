"""
Tests for L{gearman_tw.worker_tap}: C{twistd gearman-worker}.
"""

import importlib
import io
import os
import shutil
import sys
import tempfile
from typing import Mapping

from twisted.application.service import IServiceMaker, ServiceMaker
from twisted.internet.task import Clock
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw import __version__, worker_tap
from gearman_tw.worker import GearmanWorker


def reverse(job):
    """
    A function for the tests to load by name.
    """
    return job.data[::-1]


NOT_CALLABLE = 42


def parse(*args: str) -> worker_tap.Options:
    options = worker_tap.Options()
    options.parseOptions(list(args))
    return options


class OptionsTests(SynchronousTestCase):
    """
    Tests for L{worker_tap.Options}.
    """

    def setUp(self) -> None:
        # Parsing puts the current folder on the import path.
        self.patch(sys, "path", list(sys.path))

    def test_functions(self) -> None:
        """
        C{--function NAME=module:callable} loads the callable; C{module.callable}
        works too; servers default to 127.0.0.1:4730.
        """
        options = parse(
            "--function", "rev=tests.test_worker_tap:reverse", "-f", "r2=tests.test_worker_tap.reverse"
        )
        self.assertEqual(options["callables"], [("rev", reverse), ("r2", reverse)])
        self.assertEqual(options["servers"], ["127.0.0.1:4730"])

    def test_badFunctions(self) -> None:
        """
        Missing functions, bad specs, unimportable or uncallable references
        are usage errors.
        """
        self.assertRaises(UsageError, parse)
        self.assertRaises(UsageError, parse, "--function", "rev")
        self.assertRaises(UsageError, parse, "--function", "rev=no.such.module:f")
        with self.assertRaises(UsageError) as caught:
            parse("--function", "x=tests.test_worker_tap:NOT_CALLABLE")
        self.assertEqual(
            str(caught.exception), "cannot load tests.test_worker_tap:NOT_CALLABLE: NOT_CALLABLE is not callable"
        )

    def test_version(self) -> None:
        """
        C{--version} prints gearman_tw's version, not Twisted's, and exits.
        """
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        with self.assertRaises(SystemExit) as caught:
            parse("--version")
        self.assertEqual(caught.exception.code, 0)
        self.assertEqual(out.getvalue(), "gearman_tw %s\n" % (__version__,))

    def test_badNumbers(self) -> None:
        """
        Out-of-range numbers and bad server names are usage errors.
        """
        f = ("--function", "rev=tests.test_worker_tap:reverse")
        self.assertRaises(UsageError, parse, "--concurrency", "0", *f)
        self.assertRaises(UsageError, parse, "--timeout", "0", *f)
        self.assertRaises(UsageError, parse, "--server", "a:b:c", *f)

    def test_makeService(self) -> None:
        """
        The service is an unstarted L{GearmanWorker} with the options given.
        """
        options = parse(
            "--server",
            "127.0.0.1:4731",
            "-s",
            "unix:path=/tmp/g.sock",
            "--function",
            "rev=tests.test_worker_tap:reverse",
            "--concurrency",
            "3",
            "--threaded",
            "--timeout",
            "2",
            "--client-id",
            "me",
        )
        worker = worker_tap.makeService(options, Clock())
        assert isinstance(worker, GearmanWorker)
        self.assertFalse(worker.running)
        self.assertEqual(worker.servers, ["127.0.0.1:4731", "unix:path=/tmp/g.sock"])
        self.assertEqual(worker.concurrency, 3)
        self.assertFalse(worker.perServer)
        self.assertEqual(worker.clientId, b"me")
        function = worker.functions[b"rev"]
        self.assertEqual((function.callable, function.timeout, function.threaded), (reverse, 2, True))

    def test_perServer(self) -> None:
        """
        C{--per-server} makes C{--concurrency} count per server.
        """
        options = parse("--function", "rev=tests.test_worker_tap:reverse", "-c", "2", "--per-server")
        worker = worker_tap.makeService(options, Clock())
        assert isinstance(worker, GearmanWorker)
        self.assertTrue(worker.perServer)
        self.assertEqual(worker.concurrency, 2)

    def test_plugin(self) -> None:
        """
        twistd finds the C{gearman-worker} service maker.
        """
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        maker = makers["gearman-worker"]
        assert isinstance(maker, ServiceMaker)
        self.assertEqual(maker.module, "gearman_tw.worker_tap")


#: A little project: C{wtproject} is a package of modules for the tests.
PROJECT = {
    "wtproject/__init__.py": "",
    "wtproject/tasks.py": "def reverse(job):\n    return job.data[::-1]\n\nclass Tasks:\n    @staticmethod\n"
    "    def upper(job):\n        return job.data.upper()\n",
    "wtproject/broken.py": "raise RuntimeError('no config\\nat all')\n",
    "wtproject/needy.py": "import wtproject_missing_dependency\n",
    "wtproject/syntax.py": "def f(:\n",
}


def writeProject(testCase: SynchronousTestCase, files: Mapping[str, str]) -> str:
    """
    Write C{files} (their text by path) into a new folder, removed at
    C{testCase}'s cleanup.

    @return: the folder.
    """
    project = tempfile.mkdtemp()
    testCase.addCleanup(shutil.rmtree, project, True)
    for name, text in files.items():
        path = os.path.join(project, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return project


class LoadCallableTests(SynchronousTestCase):
    """
    Tests for L{worker_tap.loadCallable}, with a little project in the
    current folder.
    """

    def setUp(self) -> None:
        self.project = writeProject(self, PROJECT)
        here = os.getcwd()
        os.chdir(self.project)
        self.addCleanup(os.chdir, here)
        self.patch(sys, "path", [entry for entry in sys.path if entry not in ("", ".", self.project)])
        importlib.invalidate_caches()
        self.addCleanup(self.forget)

    def forget(self) -> None:
        for name in list(sys.modules):
            if name == "wtproject" or name.startswith("wtproject."):
                del sys.modules[name]

    def assertRefused(self, reference: str, why: str) -> None:
        with self.assertRaises(UsageError) as caught:
            worker_tap.loadCallable(reference)
        self.assertEqual(str(caught.exception), "cannot load %s: %s" % (reference, why))

    def test_currentFolder(self) -> None:
        """
        Parsing the options puts the current folder first on the import
        path, as C{python -m} does, so the project's modules are found.
        """
        options = parse("--function", "rev=wtproject.tasks:reverse", "-f", "up=wtproject.tasks:Tasks.upper")
        self.assertEqual(sys.path[0], self.project)
        [(_, reverse), (_, upper)] = options["callables"]
        self.assertIs(reverse, sys.modules["wtproject.tasks"].reverse)
        self.assertIs(upper, sys.modules["wtproject.tasks"].Tasks.upper)
        self.assertIs(worker_tap.loadCallable("wtproject.tasks.reverse"), reverse)

    def test_missingModule(self) -> None:
        """
        A module that does not exist is named as such.
        """
        worker_tap.useCurrentFolder()
        self.assertRefused("wtproject.nosuch:reverse", "no module named wtproject.nosuch")
        self.assertRefused("wtproject.nosuch.reverse", "no module named wtproject.nosuch")
        self.assertRefused("nosuchproject.tasks:reverse", "no module named nosuchproject")
        self.assertRefused("nosuchproject.tasks.reverse", "no module named nosuchproject")

    def test_missingAttribute(self) -> None:
        """
        A module that exists without the name is told apart from a missing
        module.
        """
        worker_tap.useCurrentFolder()
        self.assertRefused("wtproject.tasks:nosuch", "wtproject.tasks has no attribute nosuch")
        self.assertRefused("wtproject.tasks.nosuch", "wtproject.tasks has no attribute nosuch")
        self.assertRefused("wtproject.tasks:Tasks.nosuch", "wtproject.tasks has no attribute Tasks.nosuch")

    def test_importRaised(self) -> None:
        """
        An import that raised, or imported a module that does not exist, is
        shown as its exception, on one line.
        """
        worker_tap.useCurrentFolder()
        self.assertRefused(
            "wtproject.broken:f", "importing wtproject.broken raised RuntimeError: no config at all"
        )
        self.assertRefused(
            "wtproject.needy:f",
            "importing wtproject.needy raised ModuleNotFoundError: No module named 'wtproject_missing_dependency'",
        )
        with self.assertRaises(UsageError) as caught:
            worker_tap.loadCallable("wtproject.syntax:f")
        self.assertIn("importing wtproject.syntax raised SyntaxError: ", str(caught.exception))

    def test_badNames(self) -> None:
        """
        A reference that is not made of Python names is refused as such.
        """
        for reference in ("wtproject", "wtproject:", ":f", "my-app.tasks:f", "wtproject..tasks:f"):
            self.assertRefused(reference, "not a name of the form package.module:callable")


class TLSServerTests(SynchronousTestCase):
    """
    C{--server} with TLS: the job server's certificate is verified.
    """

    def setUp(self) -> None:
        self.patch(sys, "path", list(sys.path))

    def test_tls(self) -> None:
        """
        A C{tls:} description with a CA file and a client certificate is
        accepted.
        """
        import tempfile

        from tests.tlscerts import makeCertificate, writePEM

        directory = tempfile.mkdtemp()
        ca = makeCertificate("test CA", ca=True)
        caPath, _ = writePEM(directory, "ca", *ca)
        certPath, keyPath = writePEM(directory, "client", *makeCertificate("client", issuer=ca))
        server = "tls:host=gearman.example:port=4730:trustRoots=%s:certificate=%s:privateKey=%s" % (
            caPath,
            certPath,
            keyPath,
        )
        options = parse("--server", server, "--function", "rev=tests.test_worker_tap:reverse")
        self.assertEqual(options["servers"], [server])

    def test_unverified(self) -> None:
        """
        An C{ssl:} description, which would not verify the server, or a
        C{tls:} one whose CA file cannot be read, is a usage error saying
        why.
        """
        for server, message in [
            ("ssl:host=gearman.example:port=4730", "use tls:host=HOST:port=PORT"),
            ("tls:host=gearman.example:trustRoots=/nonexistent", "cannot read CA certificates from /nonexistent"),
        ]:
            with self.assertRaises(UsageError) as caught:
                parse("--server", server, "--function", "rev=tests.test_worker_tap:reverse")
            self.assertIn(message, str(caught.exception))
