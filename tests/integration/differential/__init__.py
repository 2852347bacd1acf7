"""
Differential tests: the same scripted exchange against C gearmand 1.1.20 and
our server, with identical transcripts required.

L{tests.integration.differential.harness} holds the machinery (scripts,
steps, the comparison); the C{test_*} modules hold the scenarios, by section
of the reference (C{shared/reference/protocol.md}):

  - C{test_framing}: 1, framing, limits and ERROR replies;
  - C{test_packets}: 2, each request packet type;
  - C{test_jobs}: 3, job semantics (coalescing, order, NOOP, retries,
    disconnects, timeouts, C{maxqueue}, status, epoch);
  - C{test_admin}: 4, the text admin protocol and its listing order.

Run them with::

    .venv/bin/python -m twisted.trial tests.integration.differential
"""
