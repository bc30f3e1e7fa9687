# SPDX-License-Identifier: MIT
"""POST /webhooks/sns through the running daemon, with curl: messages signed
here with a test key whose certificate is in the daemon's certificate cache
(or served by a fake SNS host over HTTPS), for SMS and SES e-mail; every kind
of forgery, replay and malformed body refused with the right status and no
effect; duplicates acknowledged with no effect; subscriptions confirmed
against a fake SNS endpoint only for allowed topics."""

import copy
import hashlib
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from harness import SMS_TOPIC, TIMEOUT, VECTORS, DaemonTestCase, SnsFixture, main  # noqa: E402
import sns_sign  # noqa: E402

CURL = shutil.which("curl")
MAIL_TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-inbound"
CERT_URL = sns_sign.DEFAULT_CERT_URL
HOST = "sns.us-east-1.amazonaws.com"


def load_vector(rel):
    with open(os.path.join(VECTORS, rel), encoding="utf-8") as f:
        return json.load(f)


class FakeSns:
    """An HTTPS server that answers as sns.us-east-1.amazonaws.com (the daemon
    reaches it through http_client.connect_to and trusts its test CA): it
    serves the signing certificate and answers subscription confirmations."""

    def __init__(self, tmp, signing_cert):
        self.requests = []
        ca_key, ca = os.path.join(tmp, "ca.key"), os.path.join(tmp, "ca.pem")
        key, csr, crt = (os.path.join(tmp, n) for n in ("host.key", "host.csr", "host.pem"))
        ext = os.path.join(tmp, "host.ext")
        run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
            "-subj", "/CN=deliveryd test CA")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + HOST)
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:%s\n" % HOST)
        run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
            "-days", "2", "-extfile", ext)
        self.ca = ca
        with open(signing_cert, "rb") as f:
            pem = f.read()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                fake.requests.append(self.path)
                if self.path.endswith(".pem"):
                    body, ctype = pem, "application/x-pem-file"
                elif "Action=ConfirmSubscription" in self.path:
                    body = (b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>"
                            b"arn:aws:sns:us-east-1:123456789012:two-way-sms:1</SubscriptionArn>"
                            b"</ConfirmSubscriptionResult></ConfirmSubscriptionResponse>")
                    ctype = "text/xml"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@unittest.skipUnless(CURL, "curl is not installed")
@unittest.skipUnless(os.path.isdir(VECTORS), "the shared test vectors are not beside the source tree")
class SnsWebhook(DaemonTestCase):
    allowed_warnings = ()

    def setUp(self):
        super().setUp()
        self.sns = SnsFixture(self.tmp)
        self.key, self.cert, self.cache = self.sns.key, self.sns.cert, self.sns.cache
        self.fake = FakeSns(self.tmp, self.cert)

    def tearDown(self):
        self.fake.close()
        super().tearDown()

    def seed_cache(self, url=CERT_URL):
        self.sns.seed(url)

    def start(self, *overrides, cache=None, state=None):
        d = self.daemon(state=state, overrides=[
            "sns.topics=%s %s" % (SMS_TOPIC, MAIL_TOPIC),
            "sns.certificate_cache=" + (cache or self.cache),
            "http_client.connect_to=%s:443:127.0.0.1:%d" % (HOST, self.fake.port),
            "http_client.ca_file=" + self.fake.ca,
            "mail.addresses=pedidos@pizzaria.example",
        ] + list(overrides))
        d.allowed = (r"event=sns_rejected", r"event=sns_ignored")
        d.start()
        self.base = "http://127.0.0.1:%d/webhooks/sns" % d.http_port()
        return d

    def post(self, body, headers=("x-amz-sns-message-type: Notification",)):
        path = os.path.join(self.tmp, "body-%s" % uuid.uuid4().hex)
        with open(path, "wb") as f:
            f.write(body if isinstance(body, bytes) else json.dumps(body).encode())
        cmd = [CURL, "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", str(TIMEOUT), "-H",
               "Content-Type: text/plain; charset=UTF-8", "--data-binary", "@" + path]
        for h in headers:
            cmd += ["-H", h]
        p = subprocess.run(cmd + [self.base], capture_output=True, text=True)
        text, _, code = p.stdout.rpartition("\n")
        return int(code), text

    def sms(self, *args, **kw):
        return self.sns.sms(*args, **kw)

    def inbox(self, d):
        return json.loads(d.ctl("inbox", "--json").stdout)

    def rejected(self, d):
        return d.stats()["counters"]["inbound_rejected_total"]

    def test_sms_accepted_stored_and_deduplicated(self):
        self.seed_cache()
        d = self.start()
        msg = self.sms("quero 2 calabresa pra Rua Augusta 1500", inbound_id="in-1")
        self.assertEqual(self.post(msg), (200, "OK\n"))
        rows = self.inbox(d)
        self.assertEqual(len(rows), 1)
        self.assertEqual((rows[0]["channel"], rows[0]["source"], rows[0]["customer"], rows[0]["recipient"],
                          rows[0]["body"]),
                         ("sms", "sns", "+5511987654321", "+12125550101", "quero 2 calabresa pra Rua Augusta 1500"))
        self.assertIn(rows[0]["status"], ("incoming", "active", "done"))
        # SNS redelivers the same notification: acknowledged, no second message
        self.assertEqual(self.post(msg), (200, "OK\n"))
        # End User Messaging publishes the same SMS again under a new MessageId
        self.assertEqual(self.post(self.sms("quero 2 calabresa pra Rua Augusta 1500", inbound_id="in-1")),
                         (200, "OK\n"))
        self.assertEqual(len(self.inbox(d)), 1)
        c = d.stats()["counters"]["inbound_total"]
        self.assertEqual((c["accepted"], c["duplicate"]), (1, 2))
        self.assertEqual(self.fake.requests, [])  # the cached certificate was used, nothing downloaded
        # both signature versions are accepted by default
        self.assertEqual(self.post(self.sms("oi", version="1")), (200, "OK\n"))
        self.assertEqual(d.stop(), 0)

    def test_copies_arriving_at_once(self):
        self.seed_cache()
        d = self.start()
        msg = self.sms("duas vezes ao mesmo tempo")
        path = os.path.join(self.tmp, "same.json")
        with open(path, "w") as f:
            json.dump(msg, f)
        cmd = [CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(TIMEOUT), "--data-binary",
               "@" + path, self.base]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(8)]
        codes = [p.communicate()[0] for p in procs]
        self.assertEqual(codes, ["200"] * 8)
        self.assertEqual(len(self.inbox(d)), 1)
        c = d.stats()["counters"]["inbound_total"]
        self.assertEqual((c["accepted"], c["duplicate"]), (1, 7))
        self.assertEqual(d.stop(), 0)

    def test_certificate_downloaded_once_and_cached(self):
        empty = os.path.join(self.tmp, "empty-cache")
        os.mkdir(empty)
        d = self.start(cache=empty)
        d.allowed += (r"Stored SNS signing certificate",)
        self.assertEqual(self.post(self.sms("um")), (200, "OK\n"))
        self.assertEqual(self.post(self.sms("dois")), (200, "OK\n"))
        self.assertEqual(self.fake.requests, ["/SimpleNotificationService-deliveryd-test.pem"])
        cached = os.path.join(empty, hashlib.sha256(CERT_URL.encode()).hexdigest() + ".pem")
        with open(cached, "rb") as a, open(self.cert, "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertEqual([r["body"] for r in self.inbox(d)], ["um", "dois"])
        self.assertEqual(d.stop(), 0)

    def test_forgeries_and_bad_input_refused_with_no_effect(self):
        # The checks run on worker threads by default, on the loop with 0.
        for threads in ("2", "0"):
            with self.subTest(verify_threads=threads):
                self.check_forgeries("sns.verify_threads=" + threads, state=os.path.join(self.tmp, "t" + threads))

    def check_forgeries(self, *overrides, state):
        self.seed_cache()
        for url in ("https://sns.us-east-1.amazonaws.com.evil.example/x.pem", "http://%s/x.pem" % HOST,
                    "https://user@%s/x.pem" % HOST, "https://%s:8443/x.pem" % HOST):
            self.seed_cache(url)  # even with a certificate at hand, the URL alone is refused
        d = self.start("http.max_body=4K", *overrides, state=state)
        good = self.sms("intact")

        tampered = copy.deepcopy(good)
        tampered["Message"] = tampered["Message"].replace("intact", "forged")
        wrong_version = dict(good, SignatureVersion="1")  # a v2 signature labelled v1
        no_sig = {k: v for k, v in good.items() if k != "Signature"}
        cases = [
            ("tampered body", tampered, 403, "signature"),
            ("wrong version", wrong_version, 403, "signature"),
            ("no signature", no_sig, 400, "parse"),
            ("lookalike host", self.sms(cert_url="https://sns.us-east-1.amazonaws.com.evil.example/x.pem"), 403,
             "cert_url"),
            ("http URL", self.sms(cert_url="http://%s/x.pem" % HOST), 403, "cert_url"),
            ("userinfo URL", self.sms(cert_url="https://user@%s/x.pem" % HOST), 403, "cert_url"),
            ("port URL", self.sms(cert_url="https://%s:8443/x.pem" % HOST), 403, "cert_url"),
            ("old timestamp", self.sms(timestamp="2022-07-28T22:19:51.853Z"), 403, "timestamp"),
            ("future timestamp", self.sms(timestamp="2099-01-01T00:00:00.000Z"), 403, "timestamp"),
            ("unknown topic", sns_sign.sign(dict(good, TopicArn="arn:aws:sns:us-east-1:999999999999:other"),
                                            self.key), 403, "topic"),
            ("raw delivery", b"quero 2 calabresa", 400, "signature"),
            ("malformed JSON", b'{"Type": "Notification", ', 400, "parse"),
            ("duplicate keys", b'{"Type":"Notification","Type":"Notification"}', 400, "parse"),
            ("oversize body", self.sms("x" * 5000), 413, "size"),
            ("bad SMS payload", sns_sign.sign(dict(good, Message='{"originationNumber":"12","messageBody":"x",'
                                                                 '"inboundMessageId":"i"}'), self.key), 400,
             "parse"),
        ]
        expected = {r: 0 for r in ("signature", "cert_url", "topic", "timestamp", "size", "parse")}
        for name, body, status, reason in cases:
            code, text = self.post(body)
            self.assertEqual(code, status, "%s: %s" % (name, text))
            expected[reason] += 1
            self.assertEqual(self.rejected(d), expected, name)
        self.assertEqual(self.inbox(d), [])
        self.assertEqual(d.stats()["counters"]["inbound_total"]["accepted"], 0)
        # and the intact one still goes through
        self.assertEqual(self.post(good), (200, "OK\n"))
        self.assertEqual([r["body"] for r in self.inbox(d)], ["intact"])
        self.assertEqual(d.stop(), 0)

    def test_min_signature_version(self):
        self.seed_cache()
        d = self.start("sns.min_signature_version=2")
        self.assertEqual(self.post(self.sms("v1", version="1"))[0], 403)
        self.assertEqual(self.post(self.sms("v2", version="2")), (200, "OK\n"))
        self.assertEqual([r["body"] for r in self.inbox(d)], ["v2"])
        self.assertEqual(d.stop(), 0)

    def ses(self, mail_bytes, encoding="BASE64", message_id=None, no_verdicts=False):
        import base64
        n = load_vector("ses/received-sns-action-utf8.json")
        n["receipt"]["recipients"] = ["pedidos@pizzaria.example"]
        n["receipt"]["action"]["encoding"] = encoding
        n["receipt"]["dmarcVerdict"] = {"status": "PASS"}
        if no_verdicts:  # SES may leave verdicts out: no verdict is not a refusal
            for k in ("spfVerdict", "dkimVerdict", "dmarcVerdict"):
                n["receipt"].pop(k, None)
        n["mail"]["messageId"] = message_id or uuid.uuid4().hex
        n["content"] = base64.b64encode(mail_bytes).decode() if encoding == "BASE64" else mail_bytes.decode()
        m = load_vector("sms/constructed-two-way-inbound-in-sns-envelope.json")
        m.update(Message=json.dumps(n), MessageId=str(uuid.uuid4()), TopicArn=MAIL_TOPIC, Subject="Amazon SES Email Receipt Notification")
        return sns_sign.sign(m, self.key)

    def test_ses_mail_accepted(self):
        self.seed_cache()
        d = self.start()
        mail = ("From: Ana Souza <Ana.Souza@Example.COM>\r\nTo: pedidos@pizzaria.example\r\n"
                "Subject: =?ISO-8859-1?Q?Pedido_=E0_noite?=\r\nMessage-ID: <abc123@example.com>\r\n"
                "Date: Fri, 04 Dec 2026 19:00:00 -0300\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
                "Quero uma pizza margherita, por favor.\r\n\r\n-- \r\nAna\r\n").encode()
        self.assertEqual(self.post(self.ses(mail)), (200, "OK\n"))
        # the same mail again through another SES delivery: a duplicate by its Message-ID
        self.assertEqual(self.post(self.ses(mail, encoding="UTF8")), (200, "OK\n"))
        rows = self.inbox(d)
        self.assertEqual(len(rows), 1)
        r = rows[0]
        self.assertEqual((r["channel"], r["source"], r["customer"], r["recipient"], r["subject"], r["body"],
                          r["authenticated"]),
                         ("email", "sns", "ana.souza@example.com", "pedidos@pizzaria.example", "Pedido à noite",
                          "Quero uma pizza margherita, por favor.", True))
        self.assertIn(r["status"], ("incoming", "active", "done"))
        # without verdicts: stored, its authentication unknown
        other = mail.replace(b"abc123@example.com", b"abc124@example.com")
        self.assertEqual(self.post(self.ses(other, no_verdicts=True)), (200, "OK\n"))
        self.assertIsNone(self.inbox(d)[-1]["authenticated"])
        self.assertEqual(d.stop(), 0)

    def test_ses_bounce_stored_as_ignored(self):
        self.seed_cache()
        d = self.start()
        bounce = (b"From: MAILER-DAEMON@example.com\r\nTo: pedidos@pizzaria.example\r\nSubject: Undelivered\r\n"
                  b"Message-ID: <bounce1@example.com>\r\n\r\nYour message could not be delivered.\r\n")
        self.assertEqual(self.post(self.ses(bounce)), (200, "OK\n"))
        rows = self.inbox(d)
        self.assertEqual([(r["status"], r["reason"]) for r in rows], [("ignored", "bounce")])
        self.assertEqual(d.stats()["counters"]["inbound_total"]["ignored"], 1)
        self.assertEqual(d.stats()["counters"]["inbound_total"]["accepted"], 0)
        self.assertEqual(d.stop(), 0)

    def test_other_payload_acknowledged_and_ignored(self):
        self.seed_cache()
        d = self.start()
        m = self.sms()
        m = sns_sign.sign(dict(m, Message='{"AlarmName":"cpu","NewStateValue":"ALARM"}'), self.key)
        self.assertEqual(self.post(m), (200, "ignored\n"))
        self.assertEqual(self.inbox(d), [])
        self.assertEqual(d.stats()["counters"]["inbound_total"]["ignored"], 1)
        d.wait_log(r"^<5>event=sns_ignored message_id=%s " % m["MessageId"])
        self.assertEqual(d.stop(), 0)

    def confirmation(self, topic):
        m = load_vector("sms/constructed-two-way-inbound-in-sns-envelope.json")
        for k in ("Subject", "UnsubscribeURL"):
            m.pop(k, None)
        m.update(Type="SubscriptionConfirmation", MessageId=str(uuid.uuid4()), TopicArn=topic,
                 Token="2336412f37fb687f5d51e6e2425c464de12884", Message="You have chosen to subscribe to the topic.",
                 SubscribeURL="https://%s/?Action=ConfirmSubscription&TopicArn=%s&Token=2336412f37fb687f5d51e6e2425c464de12884"
                 % (HOST, topic))
        return sns_sign.sign(m, self.key)

    def test_subscription_confirmed_only_for_allowed_topics(self):
        self.seed_cache()
        d = self.start()
        self.assertEqual(self.post(self.confirmation(SMS_TOPIC),
                                   headers=("x-amz-sns-message-type: SubscriptionConfirmation",)),
                         (200, "confirmed\n"))
        self.assertEqual(len(self.fake.requests), 1)
        self.assertIn("Action=ConfirmSubscription", self.fake.requests[0])
        code, _ = self.post(self.confirmation("arn:aws:sns:us-east-1:999999999999:someone-else"))
        self.assertEqual(code, 403)
        self.assertEqual(len(self.fake.requests), 1)  # nothing fetched for the stranger
        d.wait_log(r"^<6>event=sns_subscription_confirmed topic=%s " % SMS_TOPIC)
        self.assertEqual(d.stop(), 0)
        import sqlite3
        db = sqlite3.connect(os.path.join(d.state, "deliveryd.sqlite"))
        self.assertEqual(db.execute("SELECT type, topic_arn, status FROM sns_events").fetchall(),
                         [("SubscriptionConfirmation", SMS_TOPIC, "confirmed")])

    def test_slow_client_cut_off(self):
        self.seed_cache()
        d = self.start("http.connection_timeout=1s")
        c = socket.create_connection(("127.0.0.1", d.http_port()), timeout=TIMEOUT)
        c.sendall(b"POST /webhooks/sns HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Type\":")
        c.settimeout(TIMEOUT)
        try:
            while c.recv(4096):
                pass
        except ConnectionResetError:
            pass
        c.close()
        self.assertEqual(self.inbox(d), [])
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
