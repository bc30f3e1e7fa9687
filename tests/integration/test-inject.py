# SPDX-License-Identifier: MIT
"""deliveryctl inject: the operator's path into the same durable inbox,
validated like the others; what was acknowledged survives kill -9."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import DELIVERYCTL, TOP_SRCDIR, DaemonTestCase, main  # noqa: E402


class Inject(DaemonTestCase):
    def test_inject_sms_is_stored_in_order_and_survives_kill(self):
        d = self.daemon().start()
        p = d.ctl("inject", "sms", "+5511987654321", "quero 2 calabresa e 1 coca")
        self.assertRegex(p.stdout, r"^stored: inbox message 1$")
        p = d.ctl("--json", "inject", "sms", "+14255550182", "Where is my order? ñ ü 🍕")
        self.assertEqual(json.loads(p.stdout), {"id": 2, "outcome": "stored"})
        d.wait_log(r"^<6>event=inbound id=2 source=inject outcome=stored$")
        d.proc.kill()  # no drain, no goodbye: what was acknowledged must be there
        d.proc.wait()

        again = self.daemon(state=d.state).start()
        rows = json.loads(again.ctl("inbox", "--json").stdout)
        self.assertEqual([(r["id"], r["customer"], r["body"], r["channel"], r["source"]) for r in rows], [
            (1, "+5511987654321", "quero 2 calabresa e 1 coca", "sms", "inject"),
            (2, "+14255550182", "Where is my order? ñ ü 🍕", "sms", "inject"),
        ])
        # the conversation takes them on at once: each stored message is
        # there, waiting or answered, never lost
        for r in rows:
            self.assertIn(r["status"], ("incoming", "active", "done"))
        s = again.stats()
        self.assertEqual(sum(s["inbox"].get(k, 0) for k in ("incoming", "active", "done")), 2)
        self.assertEqual(again.stop(), 0)

    def test_bad_input_is_refused_and_stores_nothing(self):
        d = self.daemon(overrides=["sms.max_length=10"]).start()
        cases = [
            (["inject", "sms", "5511987654321", "oi"], 1, "is not a phone number in E.164 form"),
            (["inject", "sms", "+0511987654321", "oi"], 1, "is not a phone number in E.164 form"),
            (["inject", "sms", "+55 11 98765", "oi"], 1, "is not a phone number in E.164 form"),
            (["inject", "sms", "+5511987654321", ""], 1, "the text must have 1 to 10 bytes (sms.max_length), not 0"),
            (["inject", "sms", "+5511987654321", "ç" * 6], 1, "the text must have 1 to 10 bytes (sms.max_length), not 12"),
            (["inject", "fax", "+5511987654321", "oi"], 2, "unknown channel 'fax'"),
            (["inject", "mail"], 2, "usage"),
            (["inject", "sms", "+5511987654321"], 2, "usage"),
        ]
        for args, code, msg in cases:
            p = d.ctl(*args, check=False)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertIn(msg, p.stderr, args)
        self.assertEqual(json.loads(d.ctl("inbox", "--json").stdout), [])
        self.assertEqual(d.stats()["counters"]["inbound_total"]["accepted"], 0)
        self.assertEqual(d.stop(), 0)


class InjectMail(DaemonTestCase):
    def test_inject_mail_file_and_stdin(self):
        d = self.daemon(overrides=["mail.addresses=pedidos@pizzaria.example"]).start()
        eml = os.path.join(TOP_SRCDIR, "tests", "data", "mail", "latin1.eml")
        p = d.ctl("--json", "inject", "mail", eml)
        self.assertEqual(json.loads(p.stdout), {"id": 1, "outcome": "stored"})
        # the same mail again, from standard input: the same Message-ID, a duplicate
        with open(eml, "rb") as f:
            p = subprocess.run([DELIVERYCTL, "-c", d.config, "-o", "control.socket=" + d.control, "--json", "inject",
                                "mail", "-"], stdin=f, capture_output=True, text=True)
        self.assertEqual(json.loads(p.stdout), {"id": 1, "outcome": "duplicate"})
        rows = json.loads(d.ctl("inbox", "--json").stdout)
        self.assertEqual(len(rows), 1)
        r = rows[0]
        self.assertEqual((r["channel"], r["source"], r["customer"], r["recipient"], r["subject"], r["authenticated"]),
                         ("email", "inject", "jose.araujo@uol.example", "pedidos@pizzaria.example",
                          "Pedido de pizza à noite", True))
        self.assertTrue(r["body"].startswith("Boa noite, gostaria de pedir uma pizza portuguesa"))
        self.assertEqual(d.stop(), 0)

    def test_inject_mail_refused(self):
        d = self.daemon(overrides=["mail.max_size=1K"]).start()
        big = os.path.join(self.tmp, "big.eml")
        with open(big, "w") as f:
            f.write("From: a@example.com\n\n" + "x\n" * 1000)
        p = d.ctl("inject", "mail", big, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("larger than mail.max_size", p.stderr)
        small = os.path.join(self.tmp, "small.eml")
        with open(small, "w") as f:
            f.write("From: a@example.com\nTo: b@example.com\n\noi\n")
        p = d.ctl("inject", "mail", small, check=False)  # mail.addresses is empty: for whom?
        self.assertEqual(p.returncode, 1)
        self.assertIn("mail.addresses is empty", p.stderr)
        p = d.ctl("inject", "mail", os.path.join(self.tmp, "missing.eml"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("No such file or directory", p.stderr)
        self.assertEqual(json.loads(d.ctl("inbox", "--json").stdout), [])
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
