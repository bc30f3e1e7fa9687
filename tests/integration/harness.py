# SPDX-License-Identifier: MIT
"""Integration test harness: starts the real deliveryd with a temporary state
directory, ephemeral ports and a test-owned NOTIFY_SOCKET, and talks to it with
the real deliveryctl and real clients.

Nothing here sleeps to wait for the daemon: readiness is READY=1 on the notify
socket, and every other wait is for an observable event with a deadline.
"""

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOP_BUILDDIR = os.environ.get("top_builddir") or TOP_SRCDIR
DELIVERYD = os.path.join(TOP_BUILDDIR, "src", "deliveryd")
DELIVERYCTL = os.path.join(TOP_BUILDDIR, "src", "deliveryctl")
ETC = os.path.join(TOP_SRCDIR, "etc")
# The shared test data (AWS vectors, labelled messages): beside the source tree.
TEST_DATA = os.environ.get("DELIVERYD_TEST_DATA") or os.path.join(TOP_SRCDIR, "..", "shared")
VECTORS = os.path.join(TEST_DATA, "vectors")


def require_vectors():
    """For a test whose every case needs the shared wire vectors: without
    them (a tree not beside ../shared, no --with-test-data), it is skipped
    (automake's exit status 77), not failed."""
    if not os.path.isdir(VECTORS):
        print("%s not found: skipped" % VECTORS)
        sys.exit(77)

# DELIVERYD_TEST_VALGRIND=1 (make check-valgrind) runs every daemon under
# valgrind; a memory error or a leak fails the test that started it.
VALGRIND = os.environ.get("DELIVERYD_TEST_VALGRIND") == "1"

# Generous: the machines running the suite are shared and may be slow
# (sanitizer builds, valgrind). A deadline only bounds a wait for an event.
TIMEOUT = float(os.environ.get("DELIVERYD_TEST_TIMEOUT", "120" if VALGRIND else "30"))


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def make_etc(tmp, extra="", name="deliveryd.conf"):
    """Copy the example configuration, catalog, zones, workflow, nlu rules and
    templates into tmp/etc and append extra to the config; returns the config path."""
    etc = os.path.join(tmp, "etc")
    os.makedirs(etc, exist_ok=True)
    for f in ("deliveryd.conf", "catalog.conf", "zones.conf", "order.asl.json"):
        shutil.copy(os.path.join(ETC, f), os.path.join(etc, f))
    shutil.copytree(os.path.join(ETC, "nlu"), os.path.join(etc, "nlu"), dirs_exist_ok=True)
    shutil.copytree(os.path.join(ETC, "templates"), os.path.join(etc, "templates"), dirs_exist_ok=True)
    path = os.path.join(etc, name)
    if extra:
        with open(path, "a", encoding="utf-8") as f:
            f.write("\n" + extra)
    return path


def set_stock(config, n, overrides=None):
    """Give every product of the catalog beside config n units, and the SKUs
    of overrides ({sku: units}) theirs (before the daemon's first start: the
    stock table is seeded from the catalog once)."""
    path = os.path.join(os.path.dirname(config), "catalog.conf")
    overrides = overrides or {}
    out, sku = [], None
    for line in read_text(path).split("\n"):
        m = re.match(r"\[(.+)\]$", line)
        if m:
            sku = m.group(1)
        elif re.match(r"stock = \d+$", line):
            line = "stock = %d" % overrides.get(sku, n)
        out.append(line)
    write_text(path, "\n".join(out))


SMS_TOPIC = "arn:aws:sns:us-east-1:123456789012:two-way-sms"


class SnsFixture:
    """A test signing key for SNS messages, with its certificate already in
    a certificate cache directory under SNS's default-looking URL, and a
    maker of signed two-way SMS notifications."""

    def __init__(self, tmp):
        import sns_sign
        self.sns_sign = sns_sign
        self.key, self.cert = sns_sign.make_test_cert(tmp)
        self.cache = os.path.join(tmp, "certs")
        os.makedirs(self.cache, exist_ok=True)
        self.seed()

    def seed(self, url=None):
        """Put the certificate in the cache under url (as the daemon names it)."""
        import hashlib
        url = url or self.sns_sign.DEFAULT_CERT_URL
        shutil.copy(self.cert, os.path.join(self.cache, hashlib.sha256(url.encode()).hexdigest() + ".pem"))

    def sign(self, msg, **kw):
        return self.sns_sign.sign(msg, self.key, **kw)

    def sms(self, text="quero 2 calabresa", sender="+5511987654321", inbound_id=None, message_id=None,
            topic=SMS_TOPIC, **sign):
        import uuid
        with open(os.path.join(VECTORS, "sms", "constructed-two-way-inbound-in-sns-envelope.json"),
                  encoding="utf-8") as f:
            m = json.load(f)
        payload = json.loads(m["Message"])
        payload.update(originationNumber=sender, messageBody=text, inboundMessageId=inbound_id or str(uuid.uuid4()))
        m.update(Message=json.dumps(payload), MessageId=message_id or str(uuid.uuid4()), TopicArn=topic)
        return self.sign(m, **sign)

    @staticmethod
    def write(msg, path):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(msg, f)
        return path


class NotifyListener:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.queue = queue.Queue()
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            msg = data.decode("utf-8", "replace")
            self.messages.append(msg)
            self.queue.put(msg)

    def wait_for(self, assignment, timeout=TIMEOUT):
        """Wait for a message holding the line assignment (e.g. "READY=1",
        or "STATUS=" for any STATUS); returns the whole message."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on NOTIFY_SOCKET within %ss; got %r" % (assignment, timeout, self.messages))
            try:
                msg = self.queue.get(timeout=left)
            except queue.Empty:
                continue
            for line in msg.split("\n"):
                if line == assignment or (assignment.endswith("=") and line.startswith(assignment)):
                    return msg

    def assignments(self):
        return [line for m in self.messages for line in m.split("\n") if line]

    def close(self):
        self.closed = True
        self.sock.close()


class Daemon:
    """One deliveryd process under test."""

    def __init__(self, tmp, config=None, overrides=(), env=None, wrapper=(), args=(), state=None):
        self.tmp = tmp
        self.config = config or make_etc(tmp)
        self.state = state or os.path.join(tmp, "state")
        self.control = os.path.join(tmp, "control.sock")
        self.overrides = [
            "daemon.state_directory=" + self.state,
            "control.socket=" + self.control,
            "http.listen=127.0.0.1:0",
            # The workflow from the source tree, not the installed one.
            "engine.definition=" + os.path.join(TOP_SRCDIR, "statemachine", "order.asl.json"),
        ] + list(overrides)
        self.env = dict(env or {})
        self.wrapper = list(wrapper)
        self.args = list(args)
        self.proc = None
        self.notify = None
        self.log = []
        self.log_cond = threading.Condition()

    def command(self):
        vg = []
        if VALGRIND:
            self.valgrind_log = os.path.join(self.tmp, "valgrind-%d.log" % len(os.listdir(self.tmp)))
            vg = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                  "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99", "--log-file=" + self.valgrind_log]
        cmd = self.wrapper + vg + [DELIVERYD, "-c", self.config]
        for o in self.overrides:
            cmd += ["-o", o]
        return cmd + self.args

    def start(self, wait_ready=True):
        npath = os.path.join(self.tmp, "notify-%d.sock" % len(os.listdir(self.tmp)))
        self.notify = NotifyListener(npath)
        env = dict(os.environ)
        env.update({"NOTIFY_SOCKET": npath, "DELIVERYD_LOG_PREFIX": "1"})
        if VALGRIND:
            env["DELIVERYD_PCRE2_JIT"] = "0"  # valgrind cannot follow JIT code
        env.update(self.env)
        self.proc = subprocess.Popen(self.command(), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.log_reader = threading.Thread(target=self._read_log, daemon=True)
        self.log_reader.start()
        self.ready_message = None
        if wait_ready:
            try:
                self.ready_message = self.notify.wait_for("READY=1")
            except AssertionError:
                self.kill()
                raise AssertionError("deliveryd did not become ready; log:\n" + "\n".join(self.log))
        return self

    def _read_log(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.log_cond:
                self.log.append(line)
                self.log_cond.notify_all()

    def wait_log(self, pattern, timeout=TIMEOUT):
        """Wait until a log line matches the regular expression; returns it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.log_cond:
            while True:
                for line in self.log:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no log line matching %r; log:\n%s" % (pattern, "\n".join(self.log)))
                self.log_cond.wait(left)

    def warnings(self, allowed=()):
        """Log lines at warning level or worse that no allowed pattern explains,
        and any report of a sanitizer."""
        out = []
        for line in self.log:
            if "ERROR: AddressSanitizer" in line or "ERROR: LeakSanitizer" in line or "runtime error:" in line:
                out.append(line)
                continue
            m = re.match(r"<([0-7])>", line)
            if m and int(m.group(1)) <= 4 and not any(re.search(a, line) for a in allowed):
                out.append(line)
        return out

    def ctl(self, *args, check=True, overrides=()):
        cmd = [DELIVERYCTL, "-c", self.config, "-o", "control.socket=" + self.control]
        for o in overrides:
            cmd += ["-o", o]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=TIMEOUT)
        if check and p.returncode != 0:
            raise AssertionError("deliveryctl %s failed (%d): %s%s" % (" ".join(args), p.returncode, p.stdout,
                                                                       p.stderr))
        return p

    def stats(self):
        return json.loads(self.ctl("stats", "--json").stdout)

    def http_port(self):
        return self.stats()["http"]["port"]

    def wait_http_connections(self, n, timeout=TIMEOUT):
        """Wait until the daemon has accepted n HTTP connections."""
        deadline = time.monotonic() + timeout
        while self.stats()["http"].get("connections", 0) < n:
            if time.monotonic() > deadline:
                raise AssertionError("the daemon never saw %d HTTP connection(s)" % n)
            time.sleep(0.01)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=TIMEOUT):
        try:
            code = self.proc.wait(timeout=timeout)
            # the whole log, up to the exit, before anyone reads it
            self.log_reader.join(timeout)
            return code
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("deliveryd did not exit within %ss; log:\n%s" % (timeout, "\n".join(self.log)))

    def stop(self):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def valgrind_errors(self):
        path = getattr(self, "valgrind_log", None)
        if not path or not os.path.exists(path):
            return ""
        return read_text(path).strip()

    def close(self):
        self.kill()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        if self.notify:
            self.notify.close()


class DaemonTestCase(unittest.TestCase):
    """Gives each test a temporary directory and stops every daemon it
    started; a daemon that logged an unexpected warning fails the test."""

    allowed_warnings = ()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="deliveryd-it-")
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.close()
        for d in self.daemons:
            vg = d.valgrind_errors()
            if vg:
                self.fail("valgrind found problems in the daemon:\n" + vg)
            bad = d.warnings(self.allowed_warnings + tuple(getattr(d, "allowed", ())))
            if bad:
                self.fail("unexpected warnings in the daemon's log:\n" + "\n".join(bad))
        shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon(self, **kw):
        d = Daemon(self.tmp, **kw)
        self.daemons.append(d)
        return d


def main():
    if not os.access(DELIVERYD, os.X_OK):
        raise SystemExit("%s not built" % DELIVERYD)
    unittest.main(verbosity=2)
