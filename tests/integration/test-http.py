# SPDX-License-Identifier: MIT
"""The HTTP service with real clients (curl and raw sockets): health,
Prometheus metrics, 404/405, and the connection bounds that protect it,
slow clients (slowloris) included."""

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SMS_TOPIC, TIMEOUT, VECTORS, DaemonTestCase, SnsFixture, main  # noqa: E402

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


def still_open(sock):
    """True when the server has neither closed nor answered the connection yet."""
    return not select.select([sock], [], [], 0)[0]


def connect_from(addr, port):
    """A connection from a given loopback address (127.0.0.x), as from another client."""
    s = socket.socket()
    s.settimeout(TIMEOUT)
    s.bind((addr, 0))
    s.connect(("127.0.0.1", port))
    return s


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


def fast_get(port, path="/healthz"):
    """A whole request in one write, as a client that means it sends it."""
    c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        c.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        return read_response(c)
    finally:
        c.close()


class BlackHole:
    """A TCP server that accepts connections and never says a word: an
    upstream the daemon waits on (here, for an SNS signing certificate)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.cond:
                self.held.append(c)
                self.cond.notify_all()

    def wait_for(self, n):
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.held) >= n, TIMEOUT):
                raise AssertionError("the daemon never opened %d connection(s) upstream" % n)

    def close(self):
        if self.sock.fileno() < 0:
            return
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join()
        for c in self.held:
            c.close()


class Trickler:
    """Slow clients: connections that send a request line and then a header
    line every `every` seconds, never the end of the head."""

    HEAD = b"POST /webhooks/sns HTTP/1.1\r\nHost: x\r\n"

    def __init__(self, every=0.5):
        self.every = every
        self.socks = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def open(self, addr, port):
        s = connect_from(addr, port)
        s.sendall(self.HEAD)
        with self.lock:
            self.socks.append(s)
        return s

    def _run(self):
        while not self.stop.wait(self.every):
            with self.lock:
                socks = list(self.socks)
            for s in socks:
                try:
                    s.sendall(b"X-a: b\r\n")
                except OSError:
                    pass  # closed by the server: the tests look at that themselves

    def close(self):
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


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

    def wait_closed_counter(self, d, reason, n):
        """Wait until the daemon has closed at least n connections for reason;
        returns how many it has."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            got = self.closed_counter(d, reason)
            if got >= n:
                return got
            if time.monotonic() > deadline:
                self.fail("the daemon never closed %d connection(s) for %s" % (n, reason))
            time.sleep(0.01)

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

    def crowded_daemon(self):
        """A daemon with 16 connection slots, 8 a client address, whose
        deadlines are out of the way: only eviction makes room."""
        d = self.daemon(overrides=["http.max_connections=16", "http.max_connections_per_ip=8",
                                   "http.header_timeout=5min", "http.connection_timeout=1h"]).start()
        d.allowed = (r"HTTP: closed \d+ connection\(s\) .* evicted [1-9]",)
        return d, d.http_port()

    def test_full_table_evicts_the_longest_waiting(self):
        # Three addresses of slow clients want 24 slots.
        d, port = self.crowded_daemon()
        slow = Trickler()
        try:
            held = []
            for addr in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
                for _ in range(8):
                    held.append(slow.open(addr, port))
                    # one at a time, so that the order of arrival is known
                    if len(held) <= 16:
                        d.wait_http_connections(len(held))
                    else:
                        self.assertEqual(self.wait_closed_counter(d, "evicted", len(held) - 16), len(held) - 16)
            for s in held[:8]:
                self.assertTrue(closed_by_peer(s), "one of the longest waiting connections was kept")
            self.assertTrue(all(still_open(s) for s in held[8:]), "a connection was evicted out of turn")

            # A customer's request still gets in, and its answer: the next
            # longest waiting connection makes room for it (and stays gone).
            for _ in range(3):
                self.assertEqual(fast_get(port), (200, b"ok\n"))
            self.assertTrue(closed_by_peer(held[8]))
            self.assertTrue(all(still_open(s) for s in held[9:]))
            self.assertEqual(self.closed_counter(d, "evicted"), 9)
            self.assertEqual(self.closed_counter(d, "full"), 0)
            d.wait_log(r"<4>.*HTTP: closed 0 connection\(s\) .* evicted [1-9]\d* waiting")
        finally:
            slow.close()
        self.assertEqual(d.stop(), 0)

    def test_fast_requests_are_never_evicted(self):
        # Slow clients from four addresses keep coming back for the 16
        # slots while a customer sends request after request.
        d, port = self.crowded_daemon()
        slow = Trickler()
        stop = threading.Event()

        def attack():
            addrs = ["127.0.0.%d" % i for i in range(2, 6)]
            mine = []
            while not stop.is_set():
                mine = [s for s in mine if still_open(s)]
                for addr in addrs:
                    if sum(1 for s in mine if s.getsockname()[0] == addr) < 8:
                        try:
                            mine.append(slow.open(addr, port))
                        except OSError:
                            pass
                stop.wait(0.01)

        attacker = threading.Thread(target=attack, daemon=True)
        attacker.start()
        try:
            self.wait_closed_counter(d, "evicted", 16)
            for _ in range(30):
                d.wait_http_connections(16)  # the slow ones are back in every slot
                self.assertEqual(fast_get(port), (200, b"ok\n"))
        finally:
            stop.set()
            attacker.join()
            slow.close()
        self.assertGreater(self.closed_counter(d, "evicted"), 16)  # the slow ones came back, and went again
        self.assertEqual(self.closed_counter(d, "full"), 0)
        self.assertEqual(d.stop(), 0)

    @unittest.skipUnless(os.path.isdir(VECTORS), "the shared test vectors are not beside the source tree")
    def test_full_table_of_busy_connections_turns_the_new_one_away(self):
        # Two requests wait on a certificate download that never ends: with
        # http.max_connections=2 both slots are busy, not waiting for a
        # request, so neither may be evicted.
        sns = SnsFixture(self.tmp)
        upstream = BlackHole()
        self.addCleanup(upstream.close)
        d = self.daemon(overrides=["http.max_connections=2", "sns.topics=" + SMS_TOPIC,
                                   "sns.certificate_cache=" + sns.cache, "sns.fetch_timeout=2min",
                                   "http_client.connect_to=sns.us-east-1.amazonaws.com:443:127.0.0.1:%d" % upstream.port
                                   ]).start()
        d.allowed = (r"HTTP: closed 0 connection\(s\) .* evicted 0 waiting one\(s\) to let new ones in and turned "
                     r"away 1 ", r"Signing certificate .* could not be downloaded")  # the upstream that never answers
        port = d.http_port()
        busy = []
        for i in range(2):
            url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-held-%d.pem" % i
            body = json.dumps(sns.sms(cert_url=url)).encode()
            c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            c.sendall(b"POST /webhooks/sns HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                      b"x-amz-sns-message-type: Notification\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            busy.append(c)
            upstream.wait_for(i + 1)

        third = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.assertTrue(closed_by_peer(third), "a connection over http.max_connections was let in")
        third.close()
        self.assertEqual(self.closed_counter(d, "full"), 1)
        self.assertEqual(self.closed_counter(d, "evicted"), 0)
        self.assertTrue(all(still_open(c) for c in busy), "a busy connection was evicted")

        # The downloads fail, the two requests get their (failed) answers,
        # and the slots are free again.
        upstream.close()
        for c in busy:
            status, _ = read_response(c)
            self.assertIsNotNone(status, "a busy connection was closed without an answer")
            c.close()
        self.assertEqual(curl("http://127.0.0.1:%d/healthz" % port), (200, "ok\n"))
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
