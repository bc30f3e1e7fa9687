# SPDX-License-Identifier: MIT
"""mail.transport = smtp through the real daemon and a real SMTP server,
Postfix's smtp-sink, on a port of the test's own: the envelope and the
bytes it receives, and what 4xx and 5xx answers do to the outbox row.

As in test-outbox.py, rows are written with sqlite3 while the daemon is
stopped, then it is started."""

import email
import email.policy
import json
import os
import quopri
import shutil
import base64
import socket
import threading
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import TIMEOUT, DaemonTestCase, main  # noqa: E402

SMTP_SINK = "/usr/sbin/smtp-sink"
NOW = int(time.time() * 1000000)
DAY = 86400 * 1000000
BODY = "Seu pedido está a caminho — R$ 64,90\nObrigado pela preferência!\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def insert(db, to, body, subject=None, in_reply_to=None, refs=None):
    cur = db.execute(
        "INSERT INTO outbox (channel, recipient, body, subject, in_reply_to, refs, status, attempts, "
        "next_attempt_at, expires_at, created_at) VALUES ('email', ?, ?, ?, ?, ?, 'queued', 0, 0, ?, ?)",
        (to, body, subject, in_reply_to, refs, NOW + DAY, NOW))
    return cur.lastrowid


class AuthRelay:
    """A minimal SMTP server that offers AUTH PLAIN and records the commands
    (smtp-sink accepts AUTH without showing what it got)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.commands = []
        self.done = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        conn, _ = self.sock.accept()
        f = conn.makefile("rwb")

        def say(line):
            f.write(line.encode() + b"\r\n")
            f.flush()

        say("220 relay ESMTP")
        data = False
        for raw in f:
            line = raw.decode().rstrip("\r\n")
            if data:
                if line == ".":
                    data = False
                    say("250 2.0.0 queued")
                continue
            self.commands.append(line)
            verb = line.split(" ")[0].upper()
            if verb == "EHLO":
                say("250-relay")
                say("250 AUTH PLAIN")
            elif verb == "AUTH":
                say("235 2.7.0 Authentication successful")
            elif verb == "DATA":
                data = True
                say("354 go ahead")
            elif verb == "QUIT":
                say("221 bye")
                break
            else:
                say("250 ok")
        conn.close()
        self.sock.close()
        self.done.set()


@unittest.skipUnless(os.access(SMTP_SINK, os.X_OK), "smtp-sink (postfix) is not installed")
class Smtp(DaemonTestCase):
    def sink(self, *options):
        """Start smtp-sink on a free port; returns (port, dump directory)."""
        # Outside self.tmp (mode 0700): as root, smtp-sink writes as an unprivileged user.
        dump = tempfile.mkdtemp(prefix="deliveryd-sink-")
        self.addCleanup(shutil.rmtree, dump, True)
        os.chmod(dump, 0o777)
        port = free_port()
        cmd = [SMTP_SINK]
        if os.geteuid() == 0:
            cmd += ["-u", "postfix" if self.have_user("postfix") else "nobody"]
        cmd += list(options) + ["-d", dump + "/%M.", "127.0.0.1:%d" % port, "10"]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.stop_sink, p)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if p.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("smtp-sink did not start: %r" % p.stderr.read())
                time.sleep(0.05)
        return port, dump

    @staticmethod
    def have_user(name):
        import pwd
        try:
            pwd.getpwnam(name)
            return True
        except KeyError:
            return False

    @staticmethod
    def stop_sink(p):
        p.terminate()
        p.wait()
        p.stderr.close()

    def daemon_with_rows(self, port, rows, extra=()):
        first = self.daemon().start()
        self.assertEqual(first.stop(), 0)
        db = sqlite3.connect(os.path.join(first.state, "deliveryd.sqlite"))
        with db:
            ids = [insert(db, *r) for r in rows]
        db.close()
        d = self.daemon(state=first.state, overrides=[
            "mail.transport=smtp", "smtp.host=127.0.0.1", "smtp.port=%d" % port, "smtp.starttls=off",
            "smtp.timeout=10s", "mail.from=pedidos@pizzaria.example"] + list(extra)).start()
        return d, ids

    def wait_row(self, d, id, statuses):
        deadline = time.monotonic() + TIMEOUT
        while True:
            by_id = {r["id"]: r for r in json.loads(d.ctl("outbox", "--json").stdout)}
            if by_id[id]["status"] in statuses:
                return by_id[id]
            self.assertLess(time.monotonic(), deadline, by_id[id])
            time.sleep(0.05)

    def test_message_is_delivered_with_envelope_headers_and_body(self):
        port, dump = self.sink()
        d, (mid, plain) = self.daemon_with_rows(port, [
            ("ana@example.com", BODY, "Pedido #7KQ2XM", "<in-1@mail.example.com>",
             "<in-0@mail.example.com> <in-1@mail.example.com>"),
            ("bia@example.com", "ok", "Confirmação do pedido", None, None),
        ])
        row = self.wait_row(d, mid, ("sent", "failed", "deferred"))
        self.assertEqual(row["status"], "sent", row)
        other = self.wait_row(d, plain, ("sent", "failed", "deferred"))
        self.assertEqual(other["status"], "sent", other)
        self.assertRegex(row["transport_id"], r"^<[0-9a-f]{32}@pizzaria\.example>$")

        files = sorted(os.listdir(dump))
        self.assertEqual(len(files), 2)
        msgs = {}
        for f in files:
            with open(os.path.join(dump, f), "rb") as fh:
                raw = fh.read()
            m = email.message_from_bytes(raw, policy=email.policy.default)
            msgs[m["X-Rcpt-Args"]] = (raw, m)
        raw, m = msgs["<ana@example.com>"]
        self.assertEqual(m["X-Mail-Args"], "<pedidos@pizzaria.example>")
        self.assertEqual(m["From"], "pedidos@pizzaria.example")
        self.assertEqual(m["To"], "ana@example.com")
        self.assertEqual(m["Subject"], "Re: Pedido #7KQ2XM")
        self.assertEqual(m["Message-ID"], row["transport_id"])
        self.assertEqual(m["In-Reply-To"], "<in-1@mail.example.com>")
        self.assertEqual(m["References"], "<in-0@mail.example.com> <in-1@mail.example.com>")
        self.assertEqual(m["Auto-Submitted"], "auto-replied")
        self.assertEqual(m["MIME-Version"], "1.0")
        self.assertIn(b"\nContent-Type: text/plain; charset=UTF-8\n", raw)
        self.assertEqual(m["Content-Transfer-Encoding"], "quoted-printable")
        self.assertIsNotNone(email.utils.parsedate_to_datetime(m["Date"]))
        body = raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[1]
        self.assertIn(b"est=C3=A1", body)
        # smtp-sink stores LF line ends and adds a line at the end
        self.assertEqual(quopri.decodestring(body.replace(b"\r\n", b"\n")).decode("utf-8").rstrip("\n"),
                         BODY.rstrip("\n"))
        self.assertEqual(m.get_content().rstrip("\n"), BODY.rstrip("\n"))

        raw, m = msgs["<bia@example.com>"]
        self.assertIn(b"Subject: =?UTF-8?B?", raw)
        self.assertEqual(m["Subject"], "Confirmação do pedido")  # not an answer: no Re:
        self.assertIsNone(m["In-Reply-To"])
        self.assertIsNone(m["References"])
        self.assertEqual(d.stats()["counters"]["outbound_sent_total"]["email"], 2)
        self.assertEqual(d.stop(), 0)

    def test_4xx_defers_and_the_row_is_retried(self):
        port, _ = self.sink("-r", "RCPT")
        d, (mid,) = self.daemon_with_rows(port, [("ana@example.com", "x", "s", None, None)])
        row = self.wait_row(d, mid, ("deferred", "failed", "sent"))
        self.assertEqual((row["status"], row["attempts"]), ("deferred", 1), row)
        self.assertRegex(row["last_error"], r"^4\d\d ")
        d.ctl("outbox", "retry", str(mid))
        deadline = time.monotonic() + TIMEOUT
        while True:
            row = self.wait_row(d, mid, ("deferred", "failed", "sent"))
            if row["attempts"] >= 2:
                break
            self.assertLess(time.monotonic(), deadline, row)
            time.sleep(0.05)
        self.assertEqual((row["status"], row["attempts"]), ("deferred", 2), row)
        self.assertEqual(d.stats()["counters"]["outbound_deferred_total"]["email"], 2)
        self.assertEqual(d.stop(), 0)

    def test_starttls_required_never_sends_in_the_clear(self):
        """smtp-sink offers no STARTTLS: with smtp.starttls=required nothing is
        sent (the message waits, deferred), with optional it goes in plain."""
        port, dump = self.sink()
        d, (mid,) = self.daemon_with_rows(port, [("ana@example.com", "x", "s", None, None)],
                                          extra=["smtp.starttls=required"])
        row = self.wait_row(d, mid, ("deferred", "failed", "sent"))
        self.assertEqual((row["status"], row["attempts"]), ("deferred", 1), row)
        self.assertRegex(row["last_error"], r"(?i)tls")
        self.assertEqual(os.listdir(dump), [])
        self.assertEqual(d.stop(), 0)

        d = self.daemon(state=d.state, overrides=[
            "mail.transport=smtp", "smtp.host=127.0.0.1", "smtp.port=%d" % port, "smtp.starttls=optional",
            "smtp.timeout=10s", "mail.from=pedidos@pizzaria.example"]).start()
        d.ctl("outbox", "retry", str(mid))
        row = self.wait_row(d, mid, ("sent", "failed"))
        self.assertEqual(row["status"], "sent", row)
        self.assertEqual(len(os.listdir(dump)), 1)
        self.assertEqual(d.stop(), 0)

    def test_5xx_fails_without_retry(self):
        port, _ = self.sink("-f", "RCPT")
        d, (mid,) = self.daemon_with_rows(port, [("ana@example.com", "x", "s", None, None)])
        row = self.wait_row(d, mid, ("deferred", "failed", "sent"))
        self.assertEqual((row["status"], row["attempts"]), ("failed", 1), row)
        self.assertRegex(row["last_error"], r"^5\d\d ")
        self.assertEqual(d.stats()["counters"]["outbound_failed_total"]["email"], 1)
        self.assertEqual(d.stop(), 0)

    def test_sigterm_waits_for_the_session_in_progress(self):
        port, dump = self.sink("-w", "2")  # two seconds before answering DATA
        d, (mid,) = self.daemon_with_rows(port, [("ana@example.com", "x", "s", None, None)])
        self.wait_row(d, mid, ("sending",))
        self.assertEqual(d.stop(), 0)
        # the drain let the session finish and recorded it
        db = sqlite3.connect(os.path.join(d.state, "deliveryd.sqlite"))
        status, transport_id = db.execute("SELECT status, transport_id FROM outbox WHERE id = ?", (mid,)).fetchone()
        db.close()
        self.assertEqual(status, "sent")
        self.assertRegex(transport_id, r"@pizzaria\.example>$")
        self.assertEqual(len(os.listdir(dump)), 1)

    def test_connection_refused_defers(self):
        d, (mid,) = self.daemon_with_rows(free_port(), [("ana@example.com", "x", "s", None, None)])
        row = self.wait_row(d, mid, ("deferred", "failed", "sent"))
        self.assertEqual(row["status"], "deferred", row)
        self.assertRegex(row["last_error"], r"^127\.0\.0\.1:\d+: ")
        self.assertNotIn("without an answer", row["last_error"])
        self.assertEqual(d.stop(), 0)

    def test_auth_with_the_credentials_file(self):
        relay = AuthRelay()
        creds = os.path.join(self.tmp, "smtp-credentials")
        with open(creds, "w") as f:
            f.write("# the relay's account\nusername = pedidos\npassword = s3cr3t pass\n")
        d, (mid,) = self.daemon_with_rows(relay.port, [("ana@example.com", "x", "s", None, None)],
                                          extra=["smtp.credentials_file=" + creds])
        row = self.wait_row(d, mid, ("deferred", "failed", "sent"))
        self.assertEqual(row["status"], "sent", row)
        self.assertTrue(relay.done.wait(TIMEOUT))
        auth = [c for c in relay.commands if c.upper().startswith("AUTH ")]
        self.assertEqual(len(auth), 1, relay.commands)
        self.assertEqual(auth[0].split(" ")[1].upper(), "PLAIN")
        self.assertEqual(base64.b64decode(auth[0].split(" ")[2]), b"\0pedidos\0s3cr3t pass")
        # AUTH comes before the envelope
        self.assertLess(relay.commands.index(auth[0]),
                        [i for i, c in enumerate(relay.commands) if c.upper().startswith("MAIL FROM")][0])
        self.assertFalse([l for l in d.log if "s3cr3t" in l])
        self.assertEqual(d.stop(), 0)

    def test_credentials_file_without_password_refuses_to_start(self):
        creds = os.path.join(self.tmp, "smtp-credentials")
        with open(creds, "w") as f:
            f.write("username = pedidos\n")
        d = self.daemon(overrides=["mail.transport=smtp", "mail.from=pedidos@pizzaria.example",
                                   "smtp.credentials_file=" + creds])
        d.allowed = (r"smtp\.credentials_file .* needs non-empty",)
        d.start(wait_ready=False)
        self.assertNotEqual(d.wait(), 0)
        self.assertTrue([l for l in d.log if "needs non-empty 'username = ' and 'password = '" in l], d.log)

    def test_no_mail_from_refuses_to_start(self):
        d = self.daemon(overrides=["mail.transport=smtp"])
        d.allowed = (r"mail\.transport=smtp needs mail\.from",)
        d.start(wait_ready=False)
        self.assertNotEqual(d.wait(), 0)
        self.assertTrue([l for l in d.log if "mail.transport=smtp needs mail.from" in l], d.log)


if __name__ == "__main__":
    main()
