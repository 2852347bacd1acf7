# -*- test-case-name: tests.integration.test_install -*-
"""
The package installed the way users install it, each way into a new
virtualenv: C{pip install .} and C{pip install -e .}.  From a directory
outside the source tree, with no C{PYTHONPATH}, C{twistd gearman} and
C{twistd gearman-worker} must work, and so must the documented options that
need more than Twisted: C{--queue redis://}, C{/metrics} and C{--ssl}.

The installs are offline and take a few seconds each: pip reads the
package's requirements from a wheelhouse in C{build/test-wheels/}, which the
first run downloads from the package index (again whenever setup.py or
pyproject.toml change).  Slow (about 40 seconds in all, each way's
virtualenv made once per test process) but part of C{make test}; in CI
(C{$CI} set) nothing here skips.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from typing import Dict, List, Optional, Sequence

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.integration.servers import REPO, RawConnection, freePort, packet, twistdArgv, waitForPort
from tests.mixins import SynchronousTestCaseMixin

#: Seconds one pip or venv command may take.
PIP_TIMEOUT = 300

#: What the package is built from: the files setup.py reads and ships.
SOURCES = ["setup.py", "pyproject.toml", "README.md", "gearman_tw", os.path.join("twisted", "plugins")]

#: Build requirements (pyproject.toml), fetched into the wheelhouse too;
#: wheel for pip's default ones when a tree has no pyproject.toml.
BUILD_REQUIREMENTS = ["setuptools>=64", "wheel"]

#: The ECHO_REQ and ECHO_RES packet types.
ECHO_REQ, ECHO_RES = 16, 17


def _ignore(directory: str, names: List[str]) -> List[str]:
    return [n for n in names if n in ("__pycache__", "dropin.cache") or n.endswith(".pyc")]


def copySources(destination: str) -> str:
    """
    Copy what the package is built from into C{destination}/src, so that a
    build writes nothing into this checkout (other tests run beside it).
    """
    target = os.path.join(destination, "src")
    for name in SOURCES:
        source = os.path.join(REPO, name)
        if not os.path.exists(source):
            continue
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(target, name), ignore=_ignore)
        else:
            os.makedirs(os.path.dirname(os.path.join(target, name)), exist_ok=True)
            shutil.copy(source, os.path.join(target, name))
    return target


def cleanEnvironment() -> Dict[str, str]:
    """
    The environment a user's shell would have: no C{PYTHONPATH} pointing at
    this checkout, no virtualenv of ours active.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def runChecked(argv: List[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """
    Run C{argv} to completion within L{PIP_TIMEOUT}; fail with its output if
    it does not succeed.
    """
    kwargs.setdefault("env", cleanEnvironment())
    try:
        result = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=PIP_TIMEOUT, **kwargs
        )
    except subprocess.TimeoutExpired as e:
        output = (e.output or b"")[-3000:].decode("utf-8", "replace")
        raise AssertionError("%s timed out after %d s:\n%s" % (what, PIP_TIMEOUT, output))
    if result.returncode != 0:
        output = result.stdout[-3000:].decode("utf-8", "replace")
        raise AssertionError("%s failed (exit status %d):\n%s" % (what, result.returncode, output))
    return result


def wheelhouse() -> str:
    """
    A directory of wheels for everything a plain install of the package
    needs, build requirements included; made once per version of setup.py
    and pyproject.toml (several test processes may ask at once).

    Making it needs the package index: without one, this skips, or fails
    in CI.
    """
    digest = hashlib.sha256(repr(BUILD_REQUIREMENTS).encode("ascii"))
    for name in ("setup.py", "pyproject.toml"):
        if os.path.exists(os.path.join(REPO, name)):
            with open(os.path.join(REPO, name), "rb") as f:
                digest.update(f.read())
    parent = os.path.join(REPO, "build", "test-wheels")
    os.makedirs(parent, exist_ok=True)
    directory = os.path.join(parent, digest.hexdigest()[:16])
    with open(os.path.join(parent, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(directory):
            return directory
        for stale in os.listdir(parent):
            if stale != "lock":
                shutil.rmtree(os.path.join(parent, stale), ignore_errors=True)
        scratch = tempfile.mkdtemp(prefix="gearman_tw-wheels-")
        try:
            source = copySources(scratch)
            download = os.path.join(scratch, "wheels")
            # The package's dependencies (read from its metadata) and the
            # build backend, as wheels.
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "-d", download, source]
                + BUILD_REQUIREMENTS,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=PIP_TIMEOUT,
                env=cleanEnvironment(),
            )
            if result.returncode != 0:
                message = "cannot download the package's requirements:\n" + result.stdout[-3000:].decode(
                    "utf-8", "replace"
                )
                if os.environ.get("CI"):
                    raise AssertionError(message)
                raise SkipTest(message)
            shutil.move(download, directory)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return directory


class Installation:
    """
    The package installed into a new virtualenv, from a copy of this tree.

    @ivar root: a temporary directory holding the copy (C{src}), the
        virtualenv (C{venv}) and an empty directory to run commands in
        (C{elsewhere}).
    @ivar error: why the installation failed, or L{None}.
    @ivar skipped: why it could not be tried, or L{None}.
    """

    def __init__(self, editable: bool) -> None:
        self.root = tempfile.mkdtemp(prefix="gearman_tw-install-")
        atexit.register(shutil.rmtree, self.root, True)
        self.venv = os.path.join(self.root, "venv")
        self.elsewhere = os.path.join(self.root, "elsewhere")
        os.mkdir(self.elsewhere)
        self.error: Optional[str] = None
        self.skipped: Optional[str] = None
        try:
            wheels = wheelhouse()
            source = copySources(self.root)
            runChecked([sys.executable, "-m", "venv", self.venv], "python -m venv")
            # The virtualenv's own pip (the one Python ships), as a user's.
            runChecked(
                [self.bin("pip"), "install", "--quiet", "--no-index", "--find-links", wheels]
                + (["-e", source] if editable else [source]),
                "pip install" + (" -e" if editable else ""),
                cwd=self.elsewhere,
            )
        except AssertionError as e:
            self.error = str(e)
        except SkipTest as e:
            self.skipped = str(e)

    def bin(self, name: str) -> str:
        return os.path.join(self.venv, "bin", name)

    def check(self) -> None:
        """
        Fail if the installation failed, skip if it could not be tried.
        """
        if self.skipped is not None:
            raise SkipTest(self.skipped)
        if self.error is not None:
            raise AssertionError(self.error)


_installations: Dict[bool, Installation] = {}


def installed(editable: bool) -> Installation:
    """
    Install once per test process and mode: every test of a mode shares it.
    """
    if editable not in _installations:
        _installations[editable] = Installation(editable)
    installation = _installations[editable]
    installation.check()
    return installation


def version() -> str:
    namespace: Dict[str, str] = {}
    with open(os.path.join(REPO, "gearman_tw", "_version.py")) as f:
        exec(f.read(), namespace)
    return namespace["__version__"]


class InstalledMixin(SynchronousTestCaseMixin):
    """
    Tests of an installed package; L{editable} says how it is installed.
    """

    editable = False

    def setUp(self) -> None:
        self.installation = installed(self.editable)

    def runCommand(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """
        Run a command of the virtualenv from outside the source tree.
        """
        name, *args = argv
        return subprocess.run(
            [self.installation.bin(name), *args],
            cwd=self.installation.elsewhere,
            env=cleanEnvironment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )

    def startServer(self, *args: str) -> int:
        """
        Start the virtualenv's C{twistd -n gearman} on a free 127.0.0.1 port
        with extra C{args}, from outside the source tree; stopped at cleanup.

        @return: its port; the process is C{self.server}.
        """
        port = freePort()
        log = open(os.path.join(self.installation.root, "server-%d.log" % (port,)), "w+b")
        self.addCleanup(log.close)
        twistd = [self.installation.bin("twistd")]
        process = subprocess.Popen(
            twistdArgv("gearman", "--port", str(port), "--listen", "127.0.0.1", *args, twistd=twistd),
            cwd=self.installation.elsewhere,
            env=cleanEnvironment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

        def stop() -> None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)

        self.addCleanup(stop)
        self.server = process
        try:
            waitForPort(port, process)
        except AssertionError as e:
            log.seek(0)
            raise AssertionError("%s\n%s" % (e, log.read()[-3000:].decode("utf-8", "replace")))
        return port

    def assertAllFound(self, names: Sequence[str], found: str) -> None:
        """
        The virtualenv's Python finds every one of C{names}.

        @param found: the source of a function C{found(name)} that says
            whether C{name} is there.
        """
        script = found + (
            "import sys\n"
            "for name in sys.argv[1:]:\n"
            "    if not found(name):\n"
            "        print('missing', name)\n"
        )
        result = self.runCommand("python", "-c", script, *names)
        self.assertEqual((result.returncode, result.stdout), (0, b""))

    def assertEchoes(self, port: int) -> None:
        connection = RawConnection(port)
        self.addCleanup(connection.close)
        connection.sendPacket(ECHO_REQ, b"installed")
        self.assertEqual(connection.readPacket(), (ECHO_RES, b"installed"))

    def test_version(self) -> None:
        """
        C{twistd gearman --version} names the package and its version.
        """
        result = self.runCommand("twistd", "gearman", "--version")
        self.assertEqual(result.returncode, 0, result.stdout[-3000:])
        self.assertTrue(
            result.stdout.startswith(b"gearman_tw %s " % (version().encode("ascii"),)), result.stdout[-3000:]
        )

    def test_serves(self) -> None:
        """
        C{twistd -n gearman} starts a server that answers an ECHO.
        """
        self.assertEchoes(self.startServer())

    def test_workerHelp(self) -> None:
        """
        C{twistd gearman-worker --help} shows the worker's options.
        """
        result = self.runCommand("twistd", "gearman-worker", "--help")
        self.assertEqual(result.returncode, 0, result.stdout[-3000:])
        self.assertIn(b"--function", result.stdout)

    def test_gearmanTw(self) -> None:
        """
        The C{gearman-tw} command is installed.
        """
        result = self.runCommand("gearman-tw", "--help")
        self.assertEqual(result.returncode, 0, result.stdout[-3000:])

    def test_redisQueue(self) -> None:
        """
        C{--queue redis://} works with no further installs: the server
        replays the queue from a real Redis and starts.
        """
        from tests.redisserver import RedisServer

        redis = RedisServer()
        self.addCleanup(redis.stop)
        port = self.startServer("--queue", "redis://127.0.0.1:%d/0?namespace=install" % (redis.port,))
        self.assertEchoes(port)

    def test_metrics(self) -> None:
        """
        C{/metrics} works with no further installs: Prometheus's text
        format, not the 501 that says C{prometheus_client} is missing.
        """
        httpPort = freePort()
        self.startServer("--http-port", str(httpPort))
        waitForPort(httpPort, self.server)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % (httpPort,), timeout=10) as response:
            self.assertEqual(response.status, 200)
            body = response.read()
        self.assertIn(b"# TYPE gearman_", body)

    def test_everyPackage(self) -> None:
        """
        Every package of the tree is installed (setup.py finds them, so a new
        one cannot be forgotten).
        """
        packages = sorted(
            os.path.relpath(directory, REPO).replace(os.sep, ".")
            for directory, _, files in os.walk(os.path.join(REPO, "gearman_tw"))
            if "__init__.py" in files
        )
        self.assertIn("gearman_tw.server", packages)
        self.assertAllFound(
            packages,
            "def found(name):\n"
            "    import importlib.util\n"
            "    return importlib.util.find_spec(name) is not None\n",
        )

    def test_packageData(self) -> None:
        """
        The installed package holds the tree's data files: C{py.typed}, the
        monitor page and the OpenAPI document.
        """
        wanted = ["gearman_tw/py.typed"] + [
            "gearman_tw/server/" + name
            for name in sorted(os.listdir(os.path.join(REPO, "gearman_tw", "server")))
            if name.endswith((".html", ".json"))
        ]
        self.assertIn("gearman_tw/server/monitor.html", wanted)
        self.assertAllFound(
            wanted,
            "def found(name):\n"
            "    import importlib.resources as r\n"
            "    package, _, resource = name.rpartition('/')\n"
            "    return r.files(package.replace('/', '.')).joinpath(resource).is_file()\n",
        )

    def test_ssl(self) -> None:
        """
        C{--ssl} works with no further installs (no C{[tls]} extra): a TLS
        client that checks the certificate gets an ECHO answered.
        """
        from tests.tlscerts import Certificates

        certificates = Certificates(self)
        port = self.startServer(*certificates.serverArgs())
        context = certificates.context()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as connection:
                connection.sendall(packet(ECHO_REQ, b"over TLS"))
                reply = b""
                while len(reply) < 12 + len(b"over TLS"):
                    data = connection.recv(4096)
                    if not data:
                        break
                    reply += data
        self.assertEqual(reply, packet(ECHO_RES, b"over TLS", magic=b"\0RES"))


class InstallTests(InstalledMixin, SynchronousTestCase):
    """
    C{pip install .} into a new virtualenv.
    """

    def test_dropinInSitePackages(self) -> None:
        """
        The dropin is installed in site-packages' C{twisted/plugins}, beside
        Twisted's own, and no C{__init__.py} of ours replaces Twisted's.
        """
        script = (
            "import os, twisted.plugins as p\n"
            "here = os.path.dirname(p.__file__)\n"
            "print(os.path.isfile(os.path.join(here, 'gearman_plugin.py')),"
            " os.path.isfile(os.path.join(here, 'twisted_web.py')))\n"
        )
        result = self.runCommand("python", "-c", script)
        self.assertEqual(result.stdout, b"True True\n")


class EditableInstallTests(InstalledMixin, SynchronousTestCase):
    """
    C{pip install -e .} into a new virtualenv: the developer's install.
    """

    editable = True

    def test_editsTakeEffect(self) -> None:
        """
        The package is imported from the source tree, not a copy of it.
        """
        script = (
            "import gearman_tw, twisted.plugins.gearman_plugin as p\n"
            "print(gearman_tw.__file__)\n"
            "print(p.__file__)\n"
        )
        result = self.runCommand("python", "-c", script)
        source = os.path.join(self.installation.root, "src")
        self.assertEqual(
            result.stdout.decode("utf-8").split(),
            [
                os.path.join(source, "gearman_tw", "__init__.py"),
                os.path.join(source, "twisted", "plugins", "gearman_plugin.py"),
            ],
        )


class MakeRunTests(SynchronousTestCase):
    """
    C{make run} installs what the server needs, not the test toolchain.
    """

    def test_runInstallsNoTestTools(self) -> None:
        """
        What C{make run} would do in a new checkout installs the package
        (editable) and nothing from requirements-test.txt.
        """
        make = shutil.which("make")
        if make is None:
            if os.environ.get("CI"):
                raise AssertionError("make is not installed")
            raise SkipTest("make is not installed")
        venv = os.path.join(tempfile.mkdtemp(prefix="gearman_tw-make-"), "venv")
        self.addCleanup(shutil.rmtree, os.path.dirname(venv), True)
        env = cleanEnvironment()
        for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
            env.pop(name, None)
        result = subprocess.run(
            [make, "-n", "-C", REPO, "run", "VENV=" + venv, "PORT=1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stdout)
        commands = result.stdout.decode("utf-8")
        self.assertNotIn("requirements-test", commands)
        self.assertIn("pip install --quiet -e .", commands)
