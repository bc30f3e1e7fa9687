# SPDX-License-Identifier: MIT
"""sms.transport=sns (and eum) against fake AWS endpoints on loopback.

The fake (FakeSns) is a plain-http server on 127.0.0.1 that the daemon
reaches through aws.endpoint_sns.  It checks every request as SNS would:
the path, the Content-Type, the form fields of Publish, X-Amz-Date, and
the SigV4 Authorization header, recomputed (aws_fake.py) from the
fake credentials the daemon has in its environment; a wrong signature gets
403 SignatureDoesNotMatch.  It answers by phone number: the SNS sample
PublishResponse, a Throttling error, the InvalidParameter error of the
vectors.  FakeEum does the same for End User Messaging SMS
SendTextMessage (JSON, X-Amz-Target, signing name sms-voice).  Rows are
put into the outbox with sqlite3 while the daemon is stopped, as in
test-outbox.py."""

import datetime
import json
import os
import re
import sqlite3
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from aws_fake import FakeAwsServer, check_sigv4  # noqa: E402
import harness  # noqa: E402
from harness import TIMEOUT, VECTORS, DaemonTestCase, main, read_text  # noqa: E402

harness.require_vectors()

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLEtokenEXAMPLE//+=="
REGION = "sa-east-1"
ENV = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN}

PUBLISH_RESPONSE = read_text(os.path.join(VECTORS, "sms", "sns-publish-response.xml"))
MESSAGE_ID = "94f20ce6-13c5-43a0-9a9e-ca52d816e90b"
INVALID_PARAMETER = read_text(os.path.join(VECTORS, "sms", "constructed-sns-error-response.http")).split("\n\n", 1)[1]
THROTTLING = INVALID_PARAMETER.replace("<Code>InvalidParameter</Code>", "<Code>Throttling</Code>").replace(
    "<Message>Invalid parameter: PhoneNumber Reason: +1206555 is not valid to publish to</Message>",
    "<Message>Rate exceeded</Message>")
SIGNATURE_ERROR = INVALID_PARAMETER.replace("<Code>InvalidParameter</Code>", "<Code>SignatureDoesNotMatch</Code>")

NOW = int(time.time() * 1000000)
DAY = 86400 * 1000000

OK_PHONE = "+5511987654321"
THROTTLED_PHONE = "+5511987654322"
INVALID_PHONE = "+1206555"
# Spaces, a plus, form metacharacters and UTF-8: all must arrive percent-encoded.
BODY = "Seu pedido #7KQ2XM saiu: R$ 49,90 & taxa=5+1 ção ~ok"


def insert(db, to, body):
    cur = db.execute(
        "INSERT INTO outbox (channel, recipient, body, status, attempts, next_attempt_at, expires_at, created_at) "
        "VALUES ('sms', ?, ?, 'queued', 0, 0, ?, ?)", (to, body, NOW + DAY, NOW))
    return cur.lastrowid


class FakeSns(FakeAwsServer):
    """A fake SNS Publish endpoint.  answers: phone -> list of (status, body),
    used in turn (the last one repeats).  problems: what was wrong with the
    requests; requests: the form of each request that passed the checks."""

    def __init__(self, answers):
        self.answers = {k: list(v) for k, v in answers.items()}
        self.reply_type = "text/xml"
        super().__init__()

    def respond(self, req, body):
        status, reply = self.handle(req, body)
        return status, {"Content-Type": self.reply_type}, reply

    def problem(self, msg):
        with self.lock:
            self.problems.append(msg)
        return 400, INVALID_PARAMETER.replace("<Code>InvalidParameter</Code>", "<Code>FakeRefused</Code>")

    service = "sns"
    signed_headers = "content-type;host;x-amz-date;x-amz-security-token"

    def check_signature(self, req, body):
        return check_sigv4(req.headers, "POST", "/", body, AKID, SECRET, TOKEN, REGION, self.service,
                           self.signed_headers)

    def handle(self, req, body):
        if req.path != "/":
            return self.problem("path %r" % req.path)
        if req.headers.get("Content-Type") != "application/x-www-form-urlencoded; charset=utf-8":
            return self.problem("Content-Type %r" % req.headers.get("Content-Type"))
        if req.headers.get("Host") != "127.0.0.1:%d" % self.port:
            return self.problem("Host %r" % req.headers.get("Host"))
        why = self.check_signature(req, body)
        if why:
            with self.lock:
                self.problems.append("refused: " + why)
            return 403, SIGNATURE_ERROR
        text = body.decode("ascii", "replace")
        # Form-encoded strictly: only unreserved characters and escapes.
        if not re.fullmatch(r"([A-Za-z0-9._~-]|%[0-9A-F]{2})+=([A-Za-z0-9._~-]|%[0-9A-F]{2})*"
                            r"(&([A-Za-z0-9._~-]|%[0-9A-F]{2})+=([A-Za-z0-9._~-]|%[0-9A-F]{2})*)*", text):
            return self.problem("not strictly form-encoded: %r" % text)
        form = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True)
        with self.lock:
            self.requests.append(form)
        fields = dict(form)
        if len(fields) != len(form):
            return self.problem("a field twice: %r" % form)
        phone = fields.get("PhoneNumber")
        with self.lock:
            answers = self.answers.get(phone)
            if not answers:
                return self.problem("unexpected PhoneNumber %r" % phone)
            return answers.pop(0) if len(answers) > 1 else answers[0]


EUM_OK = read_text(os.path.join(VECTORS, "sms", "constructed-sendtextmessage-response.json"))
EUM_MESSAGE_ID = "00000000-0000-0000-0000-000000000000"
EUM_VALIDATION = read_text(os.path.join(VECTORS, "sms", "constructed-sendtextmessage-validation-error.http")).split(
    "\n\n", 1)[1]
EUM_THROTTLING = json.dumps({"__type": "ThrottlingException", "Message": "Rate exceeded"})


class FakeEum(FakeSns):
    """A fake End User Messaging SMS endpoint: SendTextMessage in AWS JSON 1.0."""
    service = "sms-voice"
    signed_headers = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"

    def __init__(self, answers):
        super().__init__(answers)
        self.reply_type = "application/x-amz-json-1.0"

    def problem(self, msg):
        with self.lock:
            self.problems.append(msg)
        return 400, json.dumps({"__type": "FakeRefused"})

    def handle(self, req, body):
        if req.path != "/":
            return self.problem("path %r" % req.path)
        if req.headers.get("Content-Type") != "application/x-amz-json-1.0":
            return self.problem("Content-Type %r" % req.headers.get("Content-Type"))
        if req.headers.get("X-Amz-Target") != "PinpointSMSVoiceV2.SendTextMessage":
            return self.problem("X-Amz-Target %r" % req.headers.get("X-Amz-Target"))
        why = self.check_signature(req, body)
        if why:
            with self.lock:
                self.problems.append("refused: " + why)
            return 403, json.dumps({"__type": "InvalidSignatureException"})
        try:
            o = json.loads(body)
        except ValueError:
            return self.problem("not JSON: %r" % body)
        with self.lock:
            self.requests.append(o)
            answers = self.answers.get(o.get("DestinationPhoneNumber"))
            if not answers:
                return self.problem("unexpected DestinationPhoneNumber %r" % o.get("DestinationPhoneNumber"))
            return answers.pop(0) if len(answers) > 1 else answers[0]


class SmsAwsFakeSns(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.fakes = []

    def tearDown(self):
        for f in self.fakes:
            f.close()
        super().tearDown()

    def fake(self, answers):
        f = FakeSns(answers)
        self.fakes.append(f)
        return f

    def prepared_state(self, rows):
        d = self.daemon().start()
        self.assertEqual(d.stop(), 0)
        db = sqlite3.connect(os.path.join(d.state, "deliveryd.sqlite"))
        with db:
            ids = [insert(db, to, body) for to, body in rows]
        db.close()
        return d.state, ids

    def sns_daemon(self, fake, state, env=ENV, extra=()):
        return self.daemon(state=state, env=env, overrides=[
            "sms.transport=sns",
            "aws.region=" + REGION,
            "aws.endpoint_sns=http://127.0.0.1:%d/" % fake.port,
            "sms.max_per_second=1000",
        ] + list(extra)).start()

    def rows(self, d):
        return {r["id"]: r for r in json.loads(d.ctl("outbox", "--json").stdout)}

    def wait_rows(self, d, want):
        """Wait until each row id has the status want[id]; returns the rows."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            rows = self.rows(d)
            if all(rows[i]["status"] == s for i, s in want.items()):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError("outbox never reached %r: %r" % (want, rows))
            time.sleep(0.02)

    def test_publish_success_throttling_and_invalid_parameter(self):
        fake = self.fake({
            OK_PHONE: [(200, PUBLISH_RESPONSE)],
            THROTTLED_PHONE: [(400, THROTTLING), (200, PUBLISH_RESPONSE)],
            INVALID_PHONE: [(400, INVALID_PARAMETER)],
        })
        state, (ok, throttled, invalid) = self.prepared_state(
            [(OK_PHONE, BODY), (THROTTLED_PHONE, "b"), (INVALID_PHONE, "c")])
        d = self.sns_daemon(fake, state, extra=["sms.sender_id=Pizzaria", "sms.origination_number=+18005550199"])
        rows = self.wait_rows(d, {ok: "sent", throttled: "deferred", invalid: "failed"})
        self.assertEqual(fake.problems, [])

        self.assertEqual((rows[ok]["attempts"], rows[ok]["transport_id"]), (1, MESSAGE_ID))
        # Throttling: deferred, to be tried again after the backoff (at least 10 s)
        t = rows[throttled]
        self.assertEqual(t["attempts"], 1)
        self.assertIn("Throttling", t["last_error"])
        self.assertIsNotNone(t["next_attempt_at"])
        due = datetime.datetime.strptime(t["next_attempt_at"][:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=datetime.timezone.utc)
        self.assertGreater(due.timestamp(), time.time() + 5)
        # InvalidParameter: failed for good
        self.assertEqual(rows[invalid]["attempts"], 1)
        self.assertIn("InvalidParameter", rows[invalid]["last_error"])
        self.assertNotIn("not valid to publish", rows[invalid]["last_error"])  # SNS's text is not kept

        # the request, field by field, in order
        first = [f for f in fake.requests if dict(f)["PhoneNumber"] == OK_PHONE]
        self.assertEqual(first, [[
            ("Action", "Publish"), ("Version", "2010-03-31"), ("PhoneNumber", OK_PHONE), ("Message", BODY),
            ("MessageAttributes.entry.1.Name", "AWS.SNS.SMS.SMSType"),
            ("MessageAttributes.entry.1.Value.DataType", "String"),
            ("MessageAttributes.entry.1.Value.StringValue", "Transactional"),
            ("MessageAttributes.entry.2.Name", "AWS.SNS.SMS.SenderID"),
            ("MessageAttributes.entry.2.Value.DataType", "String"),
            ("MessageAttributes.entry.2.Value.StringValue", "Pizzaria"),
            ("MessageAttributes.entry.3.Name", "AWS.MM.SMS.OriginationNumber"),
            ("MessageAttributes.entry.3.Value.DataType", "String"),
            ("MessageAttributes.entry.3.Value.StringValue", "+18005550199"),
        ]])

        # the operator's retry sends the deferred one now; the failed one is never sent again
        d.ctl("outbox", "retry", str(throttled))
        rows = self.wait_rows(d, {throttled: "sent"})
        self.assertEqual((rows[throttled]["attempts"], rows[throttled]["transport_id"]), (2, MESSAGE_ID))
        phones = [dict(f)["PhoneNumber"] for f in fake.requests]
        self.assertEqual(sorted(phones), sorted([OK_PHONE, THROTTLED_PHONE, THROTTLED_PHONE, INVALID_PHONE]))
        self.assertEqual(fake.problems, [])
        self.assertEqual(d.stats()["outbox"], {"queued": 0, "sending": 0, "sent": 2, "deferred": 0, "failed": 1})
        # the body is customer data: never in the journal
        self.assertFalse([l for l in d.log if "saiu" in l])
        self.assertEqual(d.stop(), 0)

    def test_kill_9_while_sending_every_message_goes_after_restart(self):
        """kill -9 while a Publish is in flight: after the restart every
        decided message is sent, the interrupted one again, flagged as a
        possible duplicate, and nothing is lost."""
        phones = ["+551190000%04d" % i for i in range(6)]
        hanging = phones[2]
        received = threading.Event()
        release = threading.Event()

        class Hanging(FakeSns):
            def respond(self, req, body):
                if "PhoneNumber=%s" % urllib.parse.quote(hanging, safe="") in body.decode():
                    received.set()
                    release.wait(TIMEOUT)  # the daemon dies meanwhile
                return super().respond(req, body)

        first = Hanging({p: [(200, PUBLISH_RESPONSE)] for p in phones})
        self.fakes.append(first)
        state, ids = self.prepared_state([(p, "Pedido %d confirmado." % i) for i, p in enumerate(phones)])
        d = self.sns_daemon(first, state)
        self.assertTrue(received.wait(TIMEOUT), "the daemon never sent to %s" % hanging)
        d.proc.kill()
        d.proc.wait()
        release.set()

        second = self.fake({p: [(200, PUBLISH_RESPONSE)] for p in phones})
        d = self.sns_daemon(second, state)
        rows = self.wait_rows(d, {i: "sent" for i in ids})
        interrupted = ids[phones.index(hanging)]
        self.assertTrue(rows[interrupted]["possible_duplicate"], rows[interrupted])
        # every row that was being sent at the kill is flagged and counted, and only those
        flagged = [i for i in ids if rows[i]["possible_duplicate"]]
        self.assertEqual(d.stats()["counters"]["outbound_possible_duplicates_total"]["sms"], len(flagged))
        # each message reached the provider at least once across both runs
        sent = [dict(f)["PhoneNumber"] for f in first.requests + second.requests]
        self.assertEqual(set(sent), set(phones))
        self.assertEqual(second.problems + first.problems, [])
        self.assertEqual(d.stop(), 0)

    def test_credentials_from_the_shared_file(self):
        # The daemon's one credentials chain, not only the environment.
        path = os.path.join(self.tmp, "aws-credentials")
        with open(path, "w") as f:
            f.write("[pizzaria]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n"
                    % (AKID, SECRET, TOKEN))
        fake = self.fake({OK_PHONE: [(200, PUBLISH_RESPONSE)]})
        state, (ok,) = self.prepared_state([(OK_PHONE, "x")])
        d = self.sns_daemon(fake, state, env={"AWS_SHARED_CREDENTIALS_FILE": path, "AWS_PROFILE": "pizzaria",
                                              "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "",
                                              "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": ""})
        rows = self.wait_rows(d, {ok: "sent"})
        self.assertEqual(fake.problems, [])
        self.assertEqual(rows[ok]["transport_id"], MESSAGE_ID)
        self.assertEqual(d.stop(), 0)

    def test_without_credentials_sms_are_deferred(self):
        fake = self.fake({OK_PHONE: [(200, PUBLISH_RESPONSE)]})
        state, (ok,) = self.prepared_state([(OK_PHONE, "x")])
        d = self.sns_daemon(fake, state, env={"AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.tmp, "none"),
                                              "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "",
                                              "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": ""})
        rows = self.wait_rows(d, {ok: "deferred"})
        self.assertIn("no AWS credentials", rows[ok]["last_error"])
        self.assertEqual(fake.requests, [])
        self.assertEqual(d.stop(), 0)

    def test_without_optional_attributes_only_the_sms_type_is_sent(self):
        fake = self.fake({OK_PHONE: [(200, PUBLISH_RESPONSE)]})
        state, (ok,) = self.prepared_state([(OK_PHONE, "x")])
        d = self.sns_daemon(fake, state)
        self.wait_rows(d, {ok: "sent"})
        self.assertEqual(fake.problems, [])
        self.assertEqual([k for k, _ in fake.requests[0] if k.startswith("MessageAttributes")], [
            "MessageAttributes.entry.1.Name", "MessageAttributes.entry.1.Value.DataType",
            "MessageAttributes.entry.1.Value.StringValue"])
        self.assertEqual(d.stop(), 0)

    def test_fake_refuses_a_wrong_signature_and_the_message_waits(self):
        fake = self.fake({OK_PHONE: [(200, PUBLISH_RESPONSE)]})
        state, (ok,) = self.prepared_state([(OK_PHONE, "x")])
        d = self.sns_daemon(fake, state, env=dict(ENV, AWS_SECRET_ACCESS_KEY="not-the-secret"))
        rows = self.wait_rows(d, {ok: "deferred"})
        self.assertEqual(fake.problems, ["refused: signature mismatch"])
        self.assertEqual(fake.requests, [])
        self.assertIn("SignatureDoesNotMatch", rows[ok]["last_error"])
        self.assertEqual(d.stop(), 0)

    def test_eum_send_text_message_success_throttling_and_validation_error(self):
        fake = FakeEum({
            OK_PHONE: [(200, EUM_OK)],
            THROTTLED_PHONE: [(400, EUM_THROTTLING), (200, EUM_OK)],
            INVALID_PHONE: [(400, EUM_VALIDATION)],
        })
        self.fakes.append(fake)
        state, (ok, throttled, invalid) = self.prepared_state(
            [(OK_PHONE, BODY), (THROTTLED_PHONE, "b"), (INVALID_PHONE, "c")])
        d = self.daemon(state=state, env=ENV, overrides=[
            "sms.transport=eum", "aws.region=" + REGION, "aws.endpoint_eum=http://127.0.0.1:%d/" % fake.port,
            "sms.max_per_second=1000", "sms.origination_number=+18005550199"]).start()
        rows = self.wait_rows(d, {ok: "sent", throttled: "deferred", invalid: "failed"})
        self.assertEqual(fake.problems, [])
        self.assertEqual((rows[ok]["attempts"], rows[ok]["transport_id"]), (1, EUM_MESSAGE_ID))
        self.assertEqual(rows[throttled]["attempts"], 1)
        self.assertIn("ThrottlingException", rows[throttled]["last_error"])
        self.assertIn("ValidationException", rows[invalid]["last_error"])
        first = [o for o in fake.requests if o["DestinationPhoneNumber"] == OK_PHONE]
        self.assertEqual(first, [{"DestinationPhoneNumber": OK_PHONE, "MessageBody": BODY,
                                  "MessageType": "TRANSACTIONAL", "OriginationIdentity": "+18005550199"}])
        d.ctl("outbox", "retry", str(throttled))
        rows = self.wait_rows(d, {throttled: "sent"})
        self.assertEqual(rows[throttled]["attempts"], 2)
        self.assertEqual(len(fake.requests), 4)
        self.assertEqual(fake.problems, [])
        self.assertEqual(d.stop(), 0)

    def test_an_unreachable_endpoint_defers(self):
        fake = self.fake({})
        fake.close()
        self.fakes.remove(fake)
        state, (ok,) = self.prepared_state([(OK_PHONE, "x")])
        d = self.sns_daemon(fake, state)
        rows = self.wait_rows(d, {ok: "deferred"})
        self.assertEqual(rows[ok]["attempts"], 1)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
