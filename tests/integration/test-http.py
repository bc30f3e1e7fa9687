# SPDX-License-Identifier: MIT
"""The HTTP service with real clients (curl and raw sockets): health,
Prometheus metrics, 404/405, and the connection bounds that protect it,
slow clients (slowloris) included."""

import os
import select
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import TIMEOUT, DaemonTestCase, main  # noqa: E402

CURL = shutil.which("curl")


def curl(url, *args):
    p = subprocess.run([CURL, "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", str(TIMEOUT)] + list(args) +
                       [url], capture_output=True, text=True)
    body, _, code = p.stdout.rpartition("\n")
    return int(code), body


def closed_by_peer(sock):
    """True when the server closes the connection (EOF or reset) before the deadline."""
    sock.settimeout(TIMEOUT)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def trickle_until_closed(sock, line, every=0.2):
    """Send line every `every` seconds, as a slow client does, until the
    server closes the connection; returns the seconds that took, or None
    when it did not within TIMEOUT."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < TIMEOUT:
        if select.select([sock], [], [], every)[0]:
            try:
                if not sock.recv(4096):
                    return time.monotonic() - t0
            except ConnectionResetError:
                return time.monotonic() - t0
            continue
        try:
            sock.sendall(line)
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0
    return None


def read_response(sock):
    """One HTTP/1.1 response with a Content-Length: (status, body), or
    (None, b"") when the server closed the connection instead."""
    f = sock.makefile("rb")
    try:
        first = f.readline()
    except ConnectionResetError:
        first = b""
    if not first:
        f.close()
        return None, b""
    status = int(first.split()[1])
    length = 0
    while True:
        line = f.readline().strip()
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    body = f.read(length)
    f.close()
    return status, body


@unittest.skipUnless(CURL, "curl is not installed")
class Http(DaemonTestCase):
    def test_healthz_metrics_and_errors(self):
        d = self.daemon().start()
        base = "http://127.0.0.1:%d" % d.http_port()
        self.assertEqual(curl(base + "/healthz"), (200, "ok\n"))

        code, body = curl(base + "/nope")
        self.assertEqual(code, 404)
        p = subprocess.run([CURL, "-sS", "-i", "-X", "POST", "--max-time", str(TIMEOUT), base + "/metrics"],
                           capture_output=True, text=True)
        self.assertIn("HTTP/1.1 405", p.stdout)
        self.assertIn("Allow: GET", p.stdout)

        p = subprocess.run([CURL, "-sS", "-i", "--max-time", str(TIMEOUT), base + "/metrics"], capture_output=True,
                           text=True)
        self.assertIn("Content-Type: text/plain; version=0.0.4; charset=utf-8", p.stdout)
        body = p.stdout.split("\n\n", 1)[1]
        lines = body.splitlines()
        self.assertIn("# TYPE deliveryd_http_responses_total counter", lines)
        self.assertIn('deliveryd_http_responses_total{class="2xx"} 1', lines)  # the healthz above
        self.assertIn('deliveryd_http_responses_total{class="4xx"} 2', lines)  # the 404 and the 405
        self.assertIn("deliveryd_config_generation 1", lines)
        self.assertIn('deliveryd_reloads_total{result="ok"} 0', lines)
        # every sample line is "name{labels} value" or "name value"
        for l in lines:
            if not l.startswith("#"):
                self.assertRegex(l, r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$')
        s = d.stats()
        self.assertEqual(s["counters"]["http_responses_total"]["4xx"], 2)
        self.assertEqual(d.stop(), 0)

    def test_idle_connection_is_cut_at_the_timeout(self):
        d = self.daemon(overrides=["http.connection_timeout=1s"]).start()
        c = socket.create_connection(("127.0.0.1", d.http_port()), timeout=TIMEOUT)
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost")  # and then nothing: a slow client
        self.assertTrue(closed_by_peer(c), "the daemon kept an idle connection open past http.connection_timeout")
        c.close()
        self.assertEqual(curl("http://127.0.0.1:%d/healthz" % d.http_port()), (200, "ok\n"))
        self.assertEqual(d.stop(), 0)

    def test_per_client_connection_limit(self):
        d = self.daemon(overrides=["http.max_connections_per_ip=2"]).start()
        port = d.http_port()
        held = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(2)]
        d.wait_http_connections(2)
        third = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        third.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(closed_by_peer(third), "a third connection from one address was served")
        third.close()
        for h in held:
            h.close()
        self.assertEqual(d.stop(), 0)

    def closed_counter(self, d, reason):
        return d.stats()["counters"]["http_connections_closed_total"][reason]

    def trickle_past(self, deadline, opening, line):
        """A client sends opening, then line every 0.2 s, and never stops: it
        must be closed by http.<deadline> (2 s here; the idle timeout is out
        of the way, only the deadline can close it).  Returns the daemon."""
        d = self.daemon(overrides=["http.%s=2s" % deadline, "http.connection_timeout=1h"]).start()
        c = socket.create_connection(("127.0.0.1", d.http_port()), timeout=TIMEOUT)
        c.sendall(opening)
        took = trickle_until_closed(c, line)
        c.close()
        self.assertIsNotNone(took, "a trickling connection was never closed")
        self.assertGreater(took, 1.5, "closed before http.%s" % deadline)
        self.assertEqual(self.closed_counter(d, deadline), 1)  # the metric's reason is the key's name
        return d

    def test_trickled_head_is_cut_at_the_header_timeout(self):
        d = self.trickle_past("header_timeout", b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-a: b\r\n")
        d.wait_log(r"<5>.*HTTP: closed 1 connection\(s\) too slow to send their request \(1 past http.header_timeout")
        self.assertEqual(curl("http://127.0.0.1:%d/healthz" % d.http_port()), (200, "ok\n"))
        self.assertEqual(d.stop(), 0)

    def test_trickled_body_is_cut_at_the_body_timeout(self):
        d = self.trickle_past("body_timeout",
                              b"POST /webhooks/sns HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", b"x")
        self.assertEqual(self.closed_counter(d, "header_timeout"), 0)
        self.assertEqual(d.stop(), 0)

    def test_keep_alive_connection_serves_requests_then_waits_under_the_header_deadline(self):
        d = self.daemon(overrides=["http.header_timeout=2s", "http.connection_timeout=1h"]).start()
        c = socket.create_connection(("127.0.0.1", d.http_port()), timeout=TIMEOUT)
        for _ in range(3):
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_response(c), (200, b"ok\n"))
        # Idle between requests, it holds a slot as a slow client does.
        self.assertTrue(closed_by_peer(c), "an idle keep-alive connection outlived http.header_timeout")
        c.close()
        self.assertEqual(self.closed_counter(d, "header_timeout"), 1)
        self.assertEqual(d.stop(), 0)

    def test_oversized_headers_refused(self):
        d = self.daemon().start()
        port = d.http_port()
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
        c.settimeout(TIMEOUT)
        try:
            reply = c.recv(4096)
        except ConnectionResetError:
            reply = b""
        c.close()
        # refused with a 4xx, or cut off: never served
        self.assertFalse(reply.startswith(b"HTTP/1.1 200"), reply)
        if reply:
            self.assertRegex(reply, rb"^HTTP/1\.1 4\d\d ")
        self.assertEqual(curl("http://127.0.0.1:%d/healthz" % port), (200, "ok\n"))
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
