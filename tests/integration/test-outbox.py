# SPDX-License-Identifier: MIT
"""The outbox through the real daemon and the log transport.

Nothing in the daemon writes outbound messages yet (the conversation and
the workflow come later), so these tests put rows into the database with
sqlite3 while the daemon is stopped, as a crash or an earlier run would
have left them, and then start it."""

import json
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import DaemonTestCase, main  # noqa: E402

NOW = int(time.time() * 1000000)
DAY = 86400 * 1000000


def insert(db, channel, to, body, status="queued", next_attempt_at=0, attempts=0, order_id=None, last_error=None,
           created_at=None):
    cur = db.execute(
        "INSERT INTO outbox (channel, recipient, body, status, attempts, next_attempt_at, expires_at, last_error, "
        "order_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (channel, to, body, status, attempts, next_attempt_at, NOW + DAY, last_error, order_id,
         created_at or NOW))
    return cur.lastrowid


class Outbox(DaemonTestCase):
    def stopped_daemon_db(self):
        """A state directory with the current schema, and nobody running on it."""
        d = self.daemon().start()
        self.assertEqual(d.stop(), 0)
        return d, sqlite3.connect(os.path.join(d.state, "deliveryd.sqlite"))

    def test_rows_inserted_while_stopped_are_sent_after_start(self):
        first, db = self.stopped_daemon_db()
        with db:
            sms = insert(db, "sms", "+5511987654321", "Seu pedido #7KQ2XM saiu para entrega.", order_id="7KQ2XM",
                         created_at=1700000000 * 1000000)
            mail = insert(db, "email", "ana@example.com", "Your order #7KQ2XM is on its way.")
            # a crash mid-send left this one: sent again, flagged
            crashed = insert(db, "sms", "+5511900000001", "Pedido confirmado.", status="sending", attempts=1)
            # STOP was received from this customer: nothing but the confirmation goes
            db.execute("INSERT INTO opt_outs (customer, since) VALUES ('+5511900000002', ?)", (NOW,))
            barred = insert(db, "sms", "+5511900000002", "Promoção!")
            confirmation = insert(db, "sms", "+5511900000002", "Você não receberá mais mensagens.")
            db.execute("UPDATE outbox SET opt_out_confirmation = 1 WHERE id = ?", (confirmation,))
        db.close()

        d = self.daemon(state=first.state).start()
        line = d.wait_log(r"event=outbox_sent id=%d " % sms)
        self.assertRegex(line, r"^<6>event=outbox_sent id=%d channel=sms to=\+5511987654321 bytes=%d$"
                         % (sms, len("Seu pedido #7KQ2XM saiu para entrega.".encode())))
        d.wait_log(r"event=outbox_sent id=%d channel=email to=ana@example.com bytes=" % mail)
        self.assertRegex(d.wait_log(r"event=outbox_sent id=%d " % crashed), r"possible_duplicate=1$")
        d.wait_log(r"event=outbox_sent id=%d " % confirmation)
        # the body is customer data: never in the journal
        self.assertFalse([l for l in d.log if "saiu para entrega" in l or "Promoção" in l])
        self.assertFalse([l for l in d.log if re.search(r"event=outbox_sent id=%d " % barred, l)])

        rows = json.loads(d.ctl("outbox", "--json").stdout)
        self.assertEqual([r["id"] for r in rows], [sms, mail, crashed, barred, confirmation])  # oldest first
        for r in rows:
            for k in ("id", "channel", "to", "body", "status", "attempts", "order_id", "created_at"):
                self.assertIn(k, r)
        by_id = {r["id"]: r for r in rows}
        self.assertEqual({k: by_id[sms][k] for k in ("channel", "to", "body", "status", "attempts", "order_id",
                                                      "created_at")},
                         {"channel": "sms", "to": "+5511987654321", "body": "Seu pedido #7KQ2XM saiu para entrega.",
                          "status": "sent", "attempts": 1, "order_id": "7KQ2XM", "created_at": "2023-11-14T22:13:20Z"})
        self.assertEqual(by_id[mail]["channel"], "email")
        self.assertEqual(by_id[mail]["order_id"], None)
        self.assertEqual((by_id[crashed]["status"], by_id[crashed]["attempts"], by_id[crashed]["possible_duplicate"]),
                         ("sent", 2, True))
        self.assertEqual((by_id[barred]["status"], by_id[barred]["last_error"], by_id[barred]["attempts"]),
                         ("failed", "opted out", 0))
        self.assertEqual(by_id[confirmation]["status"], "sent")

        s = d.stats()
        self.assertEqual(s["outbox"], {"queued": 0, "sending": 0, "sent": 4, "deferred": 0, "failed": 1})
        c = s["counters"]
        self.assertEqual(c["outbound_sent_total"], {"sms": 3, "email": 1})
        self.assertEqual(c["outbound_failed_total"], {"sms": 1, "email": 0})
        self.assertEqual(c["outbound_possible_duplicates_total"], {"sms": 1, "email": 0})
        self.assertIn("outbox:   0 queued, 0 sending, 0 deferred, 1 failed, 4 sent\n", d.ctl("status").stdout)
        # plain output: one line per message
        self.assertEqual(len(d.ctl("outbox").stdout.splitlines()), 5)
        self.assertEqual(d.stop(), 0)

        # sent messages stay sent across a restart
        again = self.daemon(state=first.state).start()
        self.assertEqual(again.stats()["outbox"]["sent"], 4)
        self.assertEqual(again.stop(), 0)

    def test_retry_and_drop(self):
        first, db = self.stopped_daemon_db()
        later = NOW + DAY // 2
        with db:
            failed = insert(db, "sms", "+5511987654321", "a", status="failed", attempts=3, last_error="invalid number")
            deferred = insert(db, "email", "ana@example.com", "b", status="deferred", attempts=1,
                              next_attempt_at=later, last_error="throttled")
            waiting = insert(db, "sms", "+5511987654322", "c", next_attempt_at=later)
        db.close()
        d = self.daemon(state=first.state).start()

        p = d.ctl("outbox", "drop", str(waiting))
        self.assertEqual(p.stdout, "outbound message %d: failed\n" % waiting)
        p = d.ctl("--json", "outbox", "retry", str(failed))
        self.assertEqual(json.loads(p.stdout), {"id": failed, "status": "queued"})
        d.wait_log(r"event=outbox_sent id=%d " % failed)
        d.ctl("outbox", "retry", str(deferred))
        d.wait_log(r"event=outbox_sent id=%d " % deferred)

        by_id = {r["id"]: r for r in json.loads(d.ctl("outbox", "--json").stdout)}
        self.assertEqual((by_id[failed]["status"], by_id[failed]["attempts"]), ("sent", 4))
        self.assertEqual(by_id[deferred]["status"], "sent")
        self.assertEqual((by_id[waiting]["status"], by_id[waiting]["last_error"]),
                         ("failed", "dropped by operator"))
        self.assertFalse([l for l in d.log if re.search(r"event=outbox_sent id=%d " % waiting, l)])

        cases = [
            (["outbox", "drop", str(failed)], 1, "message %d is sent and cannot be dropped" % failed),
            (["outbox", "retry", str(failed)], 1, "message %d is sent; only failed or deferred" % failed),
            (["outbox", "retry", "99"], 1, "no outbound message 99"),
            (["outbox", "drop", "99"], 1, "no outbound message 99"),
            (["outbox", "retry", "x1"], 2, "'x1' is not a message id"),
            (["outbox", "resend", "1"], 2, "usage"),
            (["outbox", "retry"], 2, "usage"),
        ]
        for args, code, msg in cases:
            p = d.ctl(*args, check=False)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertIn(msg, p.stderr, args)
        self.assertEqual(d.stats()["outbox"]["failed"], 1)
        self.assertEqual(d.stop(), 0)

    def test_sigterm_stops_sending_and_unsent_messages_wait_for_the_next_start(self):
        first, db = self.stopped_daemon_db()
        with db:
            ids = [insert(db, "sms", "+551198765432%d" % i, "m%d" % i) for i in range(5)]
        db.close()
        # one SMS a second: the first goes at once, the others wait for tokens
        d = self.daemon(state=first.state, overrides=["sms.max_per_second=1"]).start()
        d.wait_log(r"event=outbox_sent id=%d " % ids[0])
        self.assertEqual(d.stop(), 0)
        sent = [i for i in ids if any(re.search(r"event=outbox_sent id=%d " % i, l) for l in d.log)]
        self.assertLess(len(sent), len(ids))

        again = self.daemon(state=first.state, overrides=["sms.max_per_second=1000"]).start()
        for i in ids:
            if i not in sent:
                again.wait_log(r"event=outbox_sent id=%d " % i)
        rows = json.loads(again.ctl("outbox", "--json").stdout)
        self.assertEqual([(r["id"], r["status"], r["attempts"]) for r in rows], [(i, "sent", 1) for i in ids])
        self.assertEqual(again.stop(), 0)


if __name__ == "__main__":
    main()
