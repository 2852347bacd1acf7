"""
The monitor page at / in a real browser: headless Chromium (Debian's
chromium and chromium-driver) driven by Selenium.
"""

import os
import subprocess

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.integration.servers import freePort, requireProgram, run, startOurs, stopProcess, waitFor

CHROMEDRIVER = "/usr/bin/chromedriver"


def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        if os.environ.get("CI"):
            raise
        raise SkipTest("selenium is not installed")
    requireProgram(CHROMEDRIVER)
    options = webdriver.ChromeOptions()
    options.binary_location = requireProgram("chromium")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class MonitorTests(SynchronousTestCase):
    """
    The page shows the server's functions and follows them live.
    """

    def waitFor(self, predicate, timeout=20.0):
        value = waitFor(predicate, timeout)
        self.assertTrue(value, "the page did not show it in %ss" % (timeout,))
        return value

    def cells(self, driver, function):
        """
        The cells of C{function}'s row by class, read in one go (the page
        rebuilds the table every second).
        """
        return driver.execute_script(
            "var row = document.querySelector('tr[data-function=\"' + arguments[0] + '\"]');"
            "if (!row) return null; var out = {};"
            "row.querySelectorAll('td').forEach(function (td) { out[td.className] = td.textContent; });"
            "return out;",
            function,
        )

    def test_liveUpdates(self) -> None:
        """
        Queued background jobs appear, then as a worker runs them the
        completed count and the queue follow, without reloading the page.
        """
        gearman = requireProgram("gearman")
        httpPort = freePort()
        server = startOurs(self, "--http-port", str(httpPort))
        driver = browser()
        self.addCleanup(driver.quit)
        address = ["-h", "127.0.0.1", "-p", str(server.port)]
        for n in range(3):
            run([gearman, *address, "-b", "-f", "resize"], input=b"img%d" % n)
        run([gearman, *address, "-b", "-I", "-f", "resize"], input=b"urgent")
        driver.get("http://127.0.0.1:%d/" % (httpPort,))
        self.assertEqual(driver.title, "Gearman job server")
        cells = self.waitFor(lambda: self.cells(driver, "resize"))
        self.assertEqual(
            (cells["queued"], cells["high"], cells["normal"], cells["workers"], cells["completed"]),
            ("4", "1", "3", "0", "0"),
        )
        self.assertIn("queue memory", driver.find_element("id", "server").text)
        worker = subprocess.Popen(
            [gearman, *address, "-w", "-f", "resize", "--", "cat"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(stopProcess, worker)
        cells = self.waitFor(
            lambda: (lambda c: c if c and c["completed"] == "4" else None)(self.cells(driver, "resize"))
        )
        self.assertEqual((cells["queued"], cells["workers"]), ("0", "1"))
        for n in range(5):
            run([gearman, *address, "-f", "resize"], input=b"more%d" % n)
        self.waitFor(lambda: (self.cells(driver, "resize") or {}).get("completed") == "9")
        self.assertEqual(driver.find_element("id", "error").text, "")
        # The browser asked for no favicon.ico, which would have been a job.
        self.assertIsNone(self.cells(driver, "favicon.ico"))
