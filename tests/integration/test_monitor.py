"""
The monitor page at / in a real browser: headless Chromium (Debian's
chromium and chromium-driver) driven by Selenium.
"""

import json
import os
import subprocess
import urllib.request

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.integration.servers import freePort, requireProgram, run, startOurs, stopProcess, waitFor

CHROMEDRIVER = "/usr/bin/chromedriver"

CAN_DO, GRAB_JOB, NO_JOB, JOB_ASSIGN, WORK_FAIL, SUBMIT_JOB_BG, WORK_EXCEPTION = 1, 9, 10, 11, 14, 18, 25

#: Failures are attempted once more, then kept as dead letters, and
#: their results kept a minute.
POLICIES = """
[functions.resize]
max-attempts = 2
retry-failures = true
dead-letters = 10
keep-results = 60
"""


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

    def letters(self, driver):
        """
        The rows of the dead letters list, each as its cells by class, and
        the list's title and summary; L{None} while it is hidden.
        """
        return driver.execute_script(
            "var section = document.getElementById('deadletters');"
            "if (section.hidden) return null;"
            "var rows = [];"
            "document.querySelectorAll('#dead-letters tr').forEach(function (tr) {"
            "  var out = {}; tr.querySelectorAll('td').forEach(function (td) { out[td.className] = td.textContent; });"
            "  rows.push(out); });"
            "return {name: document.getElementById('dead-function').textContent,"
            "  summary: document.getElementById('dead-summary').textContent,"
            "  error: document.getElementById('dead-error').textContent, rows: rows};"
        )

    def test_deadLetters(self) -> None:
        """
        The functions table shows each function's retried attempts, dead
        letters and stored results; a function's button lists its dead letters, oldest
        first, and the list follows a retry made through the API.
        """
        policies = self.mktemp()
        with open(policies, "w") as f:
            f.write(POLICIES)
        httpPort = freePort()
        server = startOurs(self, "--http-port", str(httpPort), "--policies", policies)
        client = server.connect()
        self.addCleanup(client.close)
        for data in (b"img0", b"img1"):
            client.sendPacket(SUBMIT_JOB_BG, b"resize", b"", data)
            client.readPacket()
        worker = server.connect()
        self.addCleanup(worker.close)
        worker.sendPacket(CAN_DO, b"resize")
        attempts = 0
        while True:
            worker.sendPacket(GRAB_JOB)
            ptype, payload = worker.readPacket()
            if ptype == NO_JOB:
                break
            self.assertEqual(ptype, JOB_ASSIGN)
            handle, _, data = payload.split(b"\0", 2)
            if data == b"img0":
                worker.sendPacket(WORK_FAIL, handle)
            else:
                worker.sendPacket(WORK_EXCEPTION, handle, b"disk full")
            attempts += 1
        self.assertEqual(attempts, 4)
        driver = browser()
        self.addCleanup(driver.quit)
        driver.get("http://127.0.0.1:%d/" % (httpPort,))
        cells = self.waitFor(lambda: self.cells(driver, "resize"))
        self.assertEqual(
            (cells["failed"], cells["retried"], cells["dead"], cells["results"]), ("2", "2", "2", "2")
        )
        self.assertIsNone(self.letters(driver))
        driver.execute_script(
            "document.querySelector('tr[data-function=\"resize\"] button.show-dead').click();"
        )
        shown = self.waitFor(lambda: (lambda v: v if v and v["rows"] else None)(self.letters(driver)))
        self.assertEqual(
            (shown["name"], shown["summary"], shown["error"]), ("resize", "2 kept, 0 dropped for room", "")
        )
        self.assertEqual(
            [(row["data"], row["error"], row["attempts"], row["priority"]) for row in shown["rows"]],
            [("img0", "WORK_FAIL", "2", "normal"), ("img1", "disk full", "2", "normal")],
        )
        first, second = (int(row["id"]) for row in shown["rows"])
        self.assertLess(first, second)
        self.assertTrue(driver.current_url.endswith("#deadletters/resize"), driver.current_url)
        request = urllib.request.Request(
            "http://127.0.0.1:%d/api/functions/resize/deadletters/retry" % (httpPort,),
            data=json.dumps({"ids": [first]}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            self.assertEqual(json.load(response), {"function": "resize", "retried": 1, "kept": 1})
        shown = self.waitFor(lambda: (lambda v: v if v and len(v["rows"]) == 1 else None)(self.letters(driver)))
        self.assertEqual((shown["summary"], shown["rows"][0]["data"]), ("1 kept, 0 dropped for room", "img1"))
        self.assertEqual((self.cells(driver, "resize") or {}).get("queued"), "1")
        driver.find_element("id", "dead-close").click()
        self.waitFor(lambda: self.letters(driver) is None)
        self.assertEqual(driver.find_element("id", "error").text, "")

    def test_deadLettersNeedToken(self) -> None:
        """
        With a token, which the page does not send, the dead letters list
        says it needs one; the rest of the page works.
        """
        token = self.mktemp()
        with open(token, "w") as f:
            f.write("s3cret\n")
        httpPort = freePort()
        startOurs(self, "--http-port", str(httpPort), "--http-token-file", token)
        driver = browser()
        self.addCleanup(driver.quit)
        driver.get("http://127.0.0.1:%d/#deadletters/resize" % (httpPort,))
        shown = self.waitFor(lambda: (lambda v: v if v and v["error"] else None)(self.letters(driver)))
        self.assertEqual((shown["name"], shown["rows"]), ("resize", []))
        self.assertIn("needs the server's token", shown["error"])
        self.waitFor(lambda: "queue memory" in driver.find_element("id", "server").text)
        self.assertEqual(driver.find_element("id", "error").text, "")
