# SPDX-License-Identifier: MIT
"""kill -9 between commit and acknowledgement, then the same delivery again:
one message, one effect.  The daemon is killed by its own failure point
deliveryd/inbox/after-commit (libfiu), which fires right after the inbox
COMMIT and before any sender is answered: exactly the window in which SNS or
the MTA sees no answer and delivers again."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SMS_TOPIC, TIMEOUT, VECTORS, DaemonTestCase, SnsFixture, main  # noqa: E402

FIU_RUN = shutil.which("fiu-run")
SWAKS = shutil.which("swaks")
CURL = shutil.which("curl")
POINTS = os.environ.get("DELIVERYD_FAULT_POINTS") == "yes"
KILL = ["-c", "enable name=deliveryd/inbox/after-commit"]
# fiu-run preloads a small library (no malloc wrapper without -x); under
# ASan the preload order check would refuse to start.
ENV = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))}


@unittest.skipUnless(FIU_RUN and POINTS, "built without libfiu failure points, or fiu-run missing")
@unittest.skipIf(os.environ.get("DELIVERYD_TEST_VALGRIND") == "1", "a process killed by SIGKILL leaves no valgrind report")
class CrashBetweenCommitAndAck(DaemonTestCase):
    def inbox(self, d):
        return json.loads(d.ctl("inbox", "--json").stdout)

    @unittest.skipUnless(CURL and os.path.isdir(VECTORS), "curl or the shared vectors missing")
    def test_sns_redelivery_after_crash(self):
        sns = SnsFixture(self.tmp)
        body = sns.write(sns.sms(), os.path.join(self.tmp, "body.json"))
        overrides = ["sns.topics=" + SMS_TOPIC, "sns.certificate_cache=" + sns.cache]

        a = self.daemon(overrides=overrides, wrapper=[FIU_RUN, "-f", ""] + KILL, env=ENV).start()
        url = "http://127.0.0.1:%d/webhooks/sns" % a.http_port()
        post = [CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(TIMEOUT),
                "--data-binary", "@" + body, url]
        p = subprocess.run(post, capture_output=True, text=True)
        self.assertNotEqual(p.stdout, "200", "acknowledged although the daemon died before answering")
        self.assertEqual(a.wait(), -9)

        # SNS delivers again, to the restarted daemon.
        b = self.daemon(state=a.state, overrides=overrides).start()
        url = "http://127.0.0.1:%d/webhooks/sns" % b.http_port()
        p = subprocess.run(post[:-1] + [url], capture_output=True, text=True)
        self.assertEqual(p.stdout, "200")
        rows = self.inbox(b)
        self.assertEqual(len(rows), 1)  # committed before the crash, and only once
        self.assertEqual(b.stats()["counters"]["inbound_total"]["duplicate"], 1)
        self.assertEqual(b.stop(), 0)

    @unittest.skipUnless(SWAKS, "swaks is not installed")
    def test_lmtp_redelivery_after_crash(self):
        sock = os.path.join(self.tmp, "lmtp.sock")
        overrides = ["lmtp.listen=unix:" + sock, "mail.addresses=pedidos@pizzaria.example"]
        swaks = [SWAKS, "--protocol", "LMTP", "--socket", sock, "--from", "cliente@example.com", "--to",
                 "pedidos@pizzaria.example", "--header", "Message-ID: <crash-1@example.com>", "--body", "Oi"]

        a = self.daemon(overrides=overrides, wrapper=[FIU_RUN, "-f", ""] + KILL, env=ENV).start()
        p = subprocess.run(swaks, capture_output=True, text=True, timeout=TIMEOUT)
        self.assertNotIn("250 2.0.0 delivered", p.stdout)
        self.assertEqual(a.wait(), -9)

        b = self.daemon(state=a.state, overrides=overrides).start()
        p = subprocess.run(swaks, capture_output=True, text=True, timeout=TIMEOUT)
        self.assertIn("250 2.0.0 already delivered as inbox message 1", p.stdout)
        self.assertEqual(len(self.inbox(b)), 1)
        self.assertEqual(b.stop(), 0)

    def test_stop_is_recorded_before_the_acknowledgement(self):
        """The daemon dies right after the inbox commit, before the
        conversation saw the STOP: the opt-out is in the store already, so
        a message queued for that customer afterwards is never sent."""
        a = self.daemon(wrapper=[FIU_RUN, "-f", ""] + KILL, env=ENV).start()
        p = a.ctl("inject", "sms", "+5511987654321", "PARAR", check=False)
        self.assertNotEqual(p.returncode, 0, "acknowledged although the daemon died before answering")
        self.assertEqual(a.wait(), -9)
        db = sqlite3.connect(os.path.join(a.state, "deliveryd.sqlite"))
        self.assertEqual(db.execute("SELECT customer FROM opt_outs").fetchall(), [("+5511987654321",)])
        with db:
            db.execute("INSERT INTO outbox (channel, recipient, body, status, next_attempt_at, expires_at, created_at) "
                       "VALUES ('sms', '+5511987654321', 'Promoção de hoje!', 'queued', 0, 9000000000000000, 0)")
        db.close()

        b = self.daemon(state=a.state).start()
        deadline = time.monotonic() + TIMEOUT
        while True:
            rows = json.loads(b.ctl("outbox", "--json").stdout)
            if len(rows) == 2 and all(r["status"] in ("sent", "failed") for r in rows):
                break
            self.assertLess(time.monotonic(), deadline, rows)
            time.sleep(0.05)
        status = {r["body"].split(",")[0].split("!")[0]: r["status"] for r in rows}
        self.assertEqual(status["Promoção de hoje"], "failed", rows)  # the customer said STOP
        self.assertEqual(status["Tudo certo"], "sent", rows)  # the one confirmation
        self.assertEqual(b.stop(), 0)

if __name__ == "__main__":
    main()
