# SPDX-License-Identifier: MIT
"""LMTP through the running daemon with swaks, the way Postfix's lmtp:unix:
transport delivers: per-recipient replies after DATA, only after the commit;
unknown recipients, oversize mail, dot-stuffing, redelivery; and the MIME
corpus (multipart/alternative, HTML only, ISO-8859-1 with an RFC 2047
subject, base64 and quoted-printable, pt and en quoted replies)."""

import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import TIMEOUT, TOP_SRCDIR, DaemonTestCase, main, read_text  # noqa: E402

SWAKS = shutil.which("swaks")
CORPUS = os.path.join(TOP_SRCDIR, "tests", "data", "mail")
OURS = "pedidos@pizzaria.example"
ALSO_OURS = "contato@pizzaria.example"


@unittest.skipUnless(SWAKS, "swaks is not installed")
class Lmtp(DaemonTestCase):
    def start(self, *overrides):
        self.sock = os.path.join(self.tmp, "lmtp.sock")
        d = self.daemon(overrides=["lmtp.listen=unix:" + self.sock, "mail.addresses=%s %s" % (OURS, ALSO_OURS)] +
                        list(overrides))
        d.start()
        return d

    def swaks(self, *args, to=OURS, sender="cliente@example.com"):
        cmd = [SWAKS, "--protocol", "LMTP", "--socket", self.sock, "--from", sender, "--to", to, "--timeout",
               str(int(TIMEOUT))] + list(args)
        # swaks echoes the message, which need not be UTF-8
        p = subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", timeout=TIMEOUT * 2)
        return p

    def replies(self, p):
        """Server lines of a swaks transcript ("<~ " and "<** " prefixes)."""
        return [re.sub(r"^<[-~*]*\s*", "", l).strip() for l in p.stdout.splitlines() if l.startswith("<")]

    def inbox(self, d):
        return json.loads(d.ctl("inbox", "--json").stdout)

    def test_single_recipient(self):
        d = self.start()
        p = self.swaks("--header", "Subject: Pedido", "--header", "Message-ID: <m1@example.com>", "--body",
                       "Quero uma calabresa.")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(any(re.match(r"^250 2\.0\.0 delivered as inbox message 1$", l) for l in self.replies(p)),
                        self.replies(p))
        rows = self.inbox(d)
        self.assertEqual([(r["channel"], r["source"], r["customer"], r["recipient"], r["subject"], r["body"])
                          for r in rows],
                         [("email", "lmtp", "cliente@example.com", OURS, "Pedido", "Quero uma calabresa.")])
        # redelivered by the MTA (it never saw our 250, say): acknowledged, stored once
        p = self.swaks("--header", "Subject: Pedido", "--header", "Message-ID: <m1@example.com>", "--body",
                       "Quero uma calabresa.")
        self.assertIn("250 2.0.0 already delivered as inbox message 1", self.replies(p))
        self.assertEqual(len(self.inbox(d)), 1)
        self.assertEqual(d.stop(), 0)

    def test_two_recipients_and_an_unknown_one(self):
        d = self.start()
        p = self.swaks("--header", "Message-ID: <m2@example.com>", "--body", "Oi",
                       to="%s,desconhecido@pizzaria.example,%s" % (OURS, ALSO_OURS))
        r = self.replies(p)
        self.assertTrue(any(l.startswith("550 5.1.1") for l in r), r)
        self.assertEqual(len([l for l in r if l.startswith("250 2.0.0 delivered as inbox message")]), 2, r)
        self.assertEqual(sorted(x["recipient"] for x in self.inbox(d)), sorted([OURS, ALSO_OURS]))
        self.assertEqual(d.stop(), 0)

    def test_unknown_recipient_only(self):
        d = self.start()
        p = self.swaks("--body", "x", to="ninguem@example.com")
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(any(l.startswith("550 5.1.1") for l in self.replies(p)), self.replies(p))
        self.assertEqual(self.inbox(d), [])
        self.assertEqual(d.stop(), 0)

    def test_oversize_refused(self):
        d = self.start("mail.max_size=2K")
        p = self.swaks("--body", ("x" * 70 + "\r\n") * 60)
        self.assertTrue(any(l.startswith("552 5.3.4") for l in self.replies(p)), self.replies(p))
        self.assertEqual(self.inbox(d), [])
        self.assertEqual(d.stats()["counters"]["inbound_rejected_total"]["size"], 1)
        self.assertEqual(d.stop(), 0)

    def test_dot_stuffing(self):
        d = self.start()
        body = "linha um\r\n.linha com ponto\r\n..dois pontos\r\nfim"
        p = self.swaks("--body", body)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(self.inbox(d)[0]["body"], "linha um\n.linha com ponto\n..dois pontos\nfim")
        self.assertEqual(d.stop(), 0)

    def test_mime_corpus(self):
        d = self.start()
        expect = {
            "latin1.eml": ("jose.araujo@uol.example", "Pedido de pizza à noite", "Boa noite, gostaria de pedir uma "
                           "pizza portuguesa e uma porção de batata."),
            "alternative.eml": (None, None, None),
            "html-only.eml": (None, None, None),
            "base64-utf8.eml": (None, None, None),
            "qp-soft-breaks.eml": (None, None, None),
            "gmail-reply-pt.eml": (None, None, None),
            "outlook-reply-en.eml": (None, None, None),
        }
        for name, (sender, subject, start) in expect.items():
            p = self.swaks("--data", "@" + os.path.join(CORPUS, name))
            self.assertEqual(p.returncode, 0, name + p.stdout)
            rows = self.inbox(d)
            r = rows[-1]
            self.assertIn(r["status"], ("incoming", "active", "done"), name)
            self.assertNotIn("\ufffd", r["body"], name)
            self.assertTrue(r["body"].strip(), name)
            # quoted replies and signatures are gone
            self.assertNotRegex(r["body"], r"(?m)^>", name)
            self.assertNotRegex(r["body"], r"(escreveu:|wrote:|Original Message)", name)
            if sender:
                self.assertEqual(r["customer"], sender)
            if subject:
                self.assertEqual(r["subject"], subject)
            if start:
                self.assertTrue(r["body"].startswith(start), r["body"])
        self.assertEqual(len(self.inbox(d)), len(expect))
        self.assertEqual(d.stop(), 0)

    def test_loops_and_bounces_ignored(self):
        d = self.start()
        for name, reason in (("auto-reply.eml", "auto-submitted"), ("bounce.eml", "bounce"), ("list.eml", "list")):
            p = self.swaks("--data", "@" + os.path.join(CORPUS, name), sender="" if name == "bounce.eml" else
                           "cliente@example.com")
            self.assertEqual(p.returncode, 0, name + p.stdout)
            r = self.inbox(d)[-1]
            self.assertEqual((r["status"], r["reason"]), ("ignored", reason), name)
        self.assertEqual(d.stop(), 0)

    def test_authentication_results_from_the_trusted_mta_only(self):
        d = self.start("mail.trust_local_mta=mx.pizzaria.example")
        text = read_text(os.path.join(CORPUS, "auth-results.eml"))
        p = self.swaks("--data", "@" + os.path.join(CORPUS, "auth-results.eml"))
        self.assertEqual(p.returncode, 0, p.stdout)
        r = self.inbox(d)[-1]
        self.assertIn("Authentication-Results: mx.pizzaria.example", text)
        self.assertEqual(r["authenticated"], False)  # dmarc=fail from the trusted host
        self.assertEqual(d.stop(), 0)

    def test_draining_answers_421(self):
        d = self.start()
        import socket
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(TIMEOUT)
        c.connect(self.sock)
        self.assertTrue(c.recv(512).startswith(b"220 "))
        c.sendall(b"LHLO test\r\n")
        buf = b""
        while b"250 " not in buf:
            buf += c.recv(4096)
        import signal
        d.signal(signal.SIGTERM)
        d.notify.wait_for("STOPPING=1")
        c.sendall(b"MAIL FROM:<a@example.com>\r\n")
        self.assertTrue(c.recv(512).startswith(b"421 4.3.2"))
        c.close()
        self.assertEqual(d.wait(), 0)


if __name__ == "__main__":
    main()
