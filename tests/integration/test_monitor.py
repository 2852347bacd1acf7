"""
The monitor page at / in a real browser: headless Chromium (Debian's
chromium and chromium-driver) driven by Selenium.
"""

import json
import os
import subprocess
import urllib.request
from typing import cast

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

    def test_retryAndPurge(self) -> None:
        """
        From the page, with the server's token given in its field: a
        letter retried (its job queued again), one purged, then the rest
        purged after a confirmation; each answer is shown.
        """
        policies = self.mktemp()
        with open(policies, "w") as f:
            f.write(POLICIES)
        token = self.mktemp()
        with open(token, "w") as f:
            f.write("s3cret\n")
        httpPort = freePort()
        server = startOurs(self, "--http-port", str(httpPort), "--policies", policies, "--http-token-file", token)
        client = server.connect()
        self.addCleanup(client.close)
        for n in range(4):
            client.sendPacket(SUBMIT_JOB_BG, b"resize", b"", b"img%d" % n)
            client.readPacket()
        worker = server.connect()
        self.addCleanup(worker.close)
        worker.sendPacket(CAN_DO, b"resize")
        for _ in range(8):
            worker.sendPacket(GRAB_JOB)
            ptype, payload = worker.readPacket()
            self.assertEqual(ptype, JOB_ASSIGN)
            worker.sendPacket(WORK_FAIL, payload.split(b"\0", 1)[0])
        driver = browser()
        self.addCleanup(driver.quit)
        driver.get("http://127.0.0.1:%d/#deadletters/resize" % (httpPort,))
        self.waitFor(lambda: (lambda v: v if v and v["error"] else None)(self.letters(driver)))
        driver.execute_script(
            "var field = document.getElementById('dead-token'); field.value = 's3cret';"
            "field.dispatchEvent(new Event('change'));"
        )
        shown = self.waitFor(lambda: (lambda v: v if v and len(v["rows"]) == 4 else None)(self.letters(driver)))
        self.assertEqual(shown["error"], "")
        first, second = shown["rows"][0]["id"], shown["rows"][1]["id"]
        click = (
            "document.querySelector('tr[data-letter=\"' + arguments[0] + '\"] button.dead-' + arguments[1])"
            ".click();"
        )
        for action, ident, left, answer in (
            ("retry", first, 3, "1 retried, 3 kept"),
            ("purge", second, 2, "1 purged, 2 kept"),
        ):
            # Clicked twice at once: one request, whose answer stays shown.
            driver.execute_script(click + click, ident, action)
            self.waitFor(lambda n=left: (lambda v: v if v and len(v["rows"]) == n else None)(self.letters(driver)))
            self.waitFor(lambda answer=answer: driver.find_element("id", "dead-done").text == answer)
            self.assertEqual(driver.find_element("id", "dead-error").text, "")
        # The retried letter is a queued job again.
        self.waitFor(lambda: (self.cells(driver, "resize") or {}).get("queued") == "1")
        driver.find_element("id", "dead-purge-all").click()
        driver.switch_to.alert.accept()
        self.waitFor(lambda: (lambda v: v if v and not v["rows"] else None)(self.letters(driver)))
        self.waitFor(lambda: driver.find_element("id", "dead-done").text == "2 purged, 0 kept")
        admin = server.connect()
        self.addCleanup(admin.close)
        self.assertEqual(admin.admin(b"deadletters resize\n"), b".\n")

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


SUBMIT_JOB, JOB_CREATED, WORK_COMPLETE = 7, 8, 13


class MonitorNamesAndSizesTests(SynchronousTestCase):
    """
    The page copes with function names that are JavaScript's or URLs'
    words, and asks for only the dead letters it shows.
    """

    def waitFor(self, predicate, timeout=20.0):
        return MonitorTests.waitFor(cast(MonitorTests, self), predicate, timeout)

    def cells(self, driver, function):
        return MonitorTests.cells(cast(MonitorTests, self), driver, function)

    def letters(self, driver):
        return MonitorTests.letters(cast(MonitorTests, self), driver)

    def start(self, policies: str):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(policies)
        self.httpPort = freePort()
        server = startOurs(self, "--http-port", str(self.httpPort), "--policies", path)
        client = server.connect()
        self.addCleanup(client.close)
        worker = server.connect()
        self.addCleanup(worker.close)
        return client, worker

    def kill(self, client, worker, name: bytes, data: bytes, count: int = 1) -> None:
        """
        Make C{count} dead letters of C{name} holding C{data}.
        """
        worker.sendPacket(CAN_DO, name)
        for _ in range(count):
            client.sendPacket(SUBMIT_JOB_BG, name, b"", data)
            client.readPacket()
            worker.sendPacket(GRAB_JOB)
            ptype, payload = worker.readPacket()
            self.assertEqual(ptype, JOB_ASSIGN)
            worker.sendPacket(WORK_FAIL, payload.split(b"\0", 1)[0])

    def test_protoName(self) -> None:
        """
        A function named C{__proto__} has a rate of 0 and leaves the total
        a number, following the other functions' jobs.
        """
        client, worker = self.start("")
        client.sendPacket(SUBMIT_JOB_BG, b"__proto__", b"", b"x")
        client.readPacket()
        driver = browser()
        self.addCleanup(driver.quit)
        driver.get("http://127.0.0.1:%d/" % (self.httpPort,))
        self.waitFor(lambda: self.cells(driver, "__proto__"))
        worker.sendPacket(CAN_DO, b"resize")

        def busy():
            for _ in range(5):
                client.sendPacket(SUBMIT_JOB, b"resize", b"", b"x")
                self.assertEqual(client.readPacket()[0], JOB_CREATED)
                worker.sendPacket(GRAB_JOB)
                handle = worker.readPacket()[1].split(b"\0", 1)[0]
                worker.sendPacket(WORK_COMPLETE, handle, b"ok")
                client.readPacket()
            return (self.cells(driver, "resize") or {}).get("rate", "0.0") != "0.0"

        self.waitFor(busy)
        total = driver.find_element("id", "rate").text
        self.assertNotIn("NaN", total)
        self.assertGreater(float(total), 0)
        self.assertEqual(self.cells(driver, "__proto__")["rate"], "0.0")

    def test_dotNames(self) -> None:
        """
        The dead letters of a function named C{.} or C{..} cannot be asked
        for from a browser (which reads such a path segment, even as
        C{%2E}, as a directory): the page says so rather than list another
        path's answer.  The server itself takes C{%2E} for a dot.
        """
        client, worker = self.start("[default]\nmax-attempts = 1\ndead-letters = 10\n")
        for dots in (b".", b".."):
            self.kill(client, worker, dots, b"data of " + dots)
        driver = browser()
        self.addCleanup(driver.quit)
        for name in (".", ".."):
            driver.get("http://127.0.0.1:%d/#deadletters/%s" % (self.httpPort, name))
            shown = self.waitFor(lambda: (lambda v: v if v and v["error"] else None)(self.letters(driver)))
            self.assertEqual((shown["name"], shown["rows"]), (name, []))
            self.assertIn("cannot be named in a URL path", shown["error"])
            self.assertEqual(driver.find_element("id", "error").text, "")
            path = "/api/functions/%s/deadletters" % (name.replace(".", "%2E"),)
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.httpPort, path), timeout=10) as response:
                [letter] = json.load(response)
            self.assertEqual(letter["data"]["text"], "data of " + name)

    def test_onlyWhatIsShown(self) -> None:
        """
        The page asks for the newest 100 letters and the first 800 bytes of
        their data, and marks data it did not get whole as cut.
        """
        client, worker = self.start("[default]\nmax-attempts = 1\ndead-letters = 200\n")
        self.kill(client, worker, b"resize", b"x" * 1000, count=120)
        self.kill(client, worker, b"resize", b"short")
        driver = browser()
        self.addCleanup(driver.quit)
        driver.get("http://127.0.0.1:%d/#deadletters/resize" % (self.httpPort,))
        shown = self.waitFor(lambda: (lambda v: v if v and v["rows"] else None)(self.letters(driver)))
        self.assertEqual(shown["summary"], "121 kept, 0 dropped for room; the newest 100 shown")
        self.assertEqual(len(shown["rows"]), 100)
        self.assertEqual(shown["rows"][0]["data"], "x" * 200 + "\u2026")
        self.assertEqual(shown["rows"][-1]["data"], "short")
        asked = driver.execute_script(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
            ".filter(function (name) { return name.indexOf('/api/functions/') !== -1; });"
        )
        self.assertTrue(asked)
        for url in asked:
            self.assertTrue(url.endswith("/api/functions/resize/deadletters?limit=100&data=800"), url)
