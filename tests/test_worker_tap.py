"""
Tests for L{gearman_tw.worker_tap}: C{twistd gearman-worker}.
"""

from twisted.application.service import IServiceMaker
from twisted.internet.task import Clock
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw import worker_tap
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
        self.assertRaises(UsageError, parse, "--function", "x=tests.test_worker_tap:NOT_CALLABLE")

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
        self.assertIsInstance(worker, GearmanWorker)
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
        self.assertTrue(worker.perServer)
        self.assertEqual(worker.concurrency, 2)

    def test_plugin(self) -> None:
        """
        twistd finds the C{gearman-worker} service maker.
        """
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertEqual(makers["gearman-worker"].module, "gearman_tw.worker_tap")


class TLSServerTests(SynchronousTestCase):
    """
    C{--server} with TLS: the job server's certificate is verified.
    """

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
