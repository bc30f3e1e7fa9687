#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""engine.backend = stepfunctions against a fake AWS Step Functions on
loopback.

The fake (FakeSfn) is a plain-http server on 127.0.0.1 that the daemon
reaches through aws.endpoint_states.  It checks every request as Step
Functions would: the path (/), Content-Type application/x-amz-json-1.0,
the X-Amz-Target (AWSStepFunctions.ACTION), the SigV4 signature for
service "states" recomputed with aws_fake.py from the fake credentials
given in the environment (403 InvalidSignatureException otherwise), and
the JSON body of each action.  It answers with what the vectors (sfn/)
record: the StartExecution response, ThrottlingException,
ExecutionAlreadyExists, and {} for SendTaskSuccess.

A customer orders by SMS (the messages of
tests/data/conversation/full-order-pt.json, through deliveryctl inject
sms); the order's StartExecution, named by the order id and carrying the
order JSON, is throttled (retried), survives a restart of the daemon, goes
through once, and is not sent again after the next restart.
ExecutionAlreadyExists is success; a wrong secret is refused by the fake
and the request is sent again later; an event for an order reaches its
task only once a task token is known, as SendTaskSuccess."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aws_fake import FakeAwsServer, check_sigv4  # noqa: E402
import harness  # noqa: E402
from harness import DELIVERYD, TIMEOUT, TOP_SRCDIR, VECTORS, DaemonTestCase, main, read_text  # noqa: E402

harness.require_vectors()

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLEtokenEXAMPLE//+=="
REGION = "sa-east-1"
ARN = "arn:aws:states:sa-east-1:123456789012:stateMachine:order"
SIGNED_HEADERS = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
ENV = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
       "AWS_EC2_METADATA_DISABLED": "true"}
CONVERSATION = json.loads(read_text(os.path.join(TOP_SRCDIR, "tests", "data", "conversation", "full-order-pt.json")))
TASK_TOKEN = "AAAAKgAAAAIAAAAAAAAAAQ-EXAMPLE-TASK-TOKEN"


def vector(name):
    return read_text(os.path.join(VECTORS, "sfn", name))


def recorded_error(name):
    """(status, headers, body) of one of the vectors' error answers."""
    text = vector(name)
    head, body = text.split("\n\n", 1)
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return status, headers, body.strip()


START_RESPONSE = json.loads(vector("constructed-start-execution.response.json"))
SUCCESS_RESPONSE = vector("constructed-send-task-success.response.json")

# action -> the body's keys (all strings)
BODIES = {
    "StartExecution": ["stateMachineArn", "name", "input"],
    "SendTaskSuccess": ["taskToken", "output"],
    "SendTaskFailure": ["taskToken", "error", "cause"],
    "SendTaskHeartbeat": ["taskToken"],
    "DescribeExecution": ["executionArn"],
}


class FakeSfn(FakeAwsServer):
    def __init__(self):
        super().__init__()
        self.throttle = 0  # how many more StartExecution to throttle; -1: all
        self.already_exists = False
        self.heartbeats_ok = 2  # SendTaskHeartbeat answered 200 this many times, then TaskTimedOut
        self.refused = []
        self.changed = threading.Condition(self.lock)

    def problem(self, msg):
        self.problems.append(msg)
        return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(
            {"__type": "com.amazon.coral.validate#ValidationException", "message": "fake: " + msg})

    def respond(self, req, body):
        with self.lock:
            try:
                return self.handle(req, body)
            finally:
                self.changed.notify_all()

    def handle(self, req, body):
        if req.path != "/":
            return self.problem("path %r" % req.path)
        if req.headers.get("Content-Type") != "application/x-amz-json-1.0":
            return self.problem("Content-Type %r" % req.headers.get("Content-Type"))
        if req.headers.get("Host") != "127.0.0.1:%d" % self.port:
            return self.problem("Host %r" % req.headers.get("Host"))
        target = req.headers.get("X-Amz-Target", "")
        action = target[len("AWSStepFunctions."):] if target.startswith("AWSStepFunctions.") else None
        if action not in BODIES:
            return self.problem("X-Amz-Target %r" % target)
        why = check_sigv4(req.headers, "POST", req.path, body, AKID, SECRET, TOKEN, REGION, "states", SIGNED_HEADERS)
        if why:
            self.refused.append(why)
            return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(
                {"__type": "InvalidSignatureException", "message": "The request signature we calculated does not "
                 "match the signature you provided."})
        try:
            o = json.loads(body)
        except ValueError:
            return self.problem("not JSON: %r" % body[:200])
        if sorted(o) != sorted(BODIES[action]) or not all(isinstance(v, str) for v in o.values()):
            return self.problem("%s body %r" % (action, o))
        self.requests.append((action, o))
        ok = {"Content-Type": "application/x-amz-json-1.0"}
        if action == "StartExecution":
            if o["stateMachineArn"] != ARN:
                return self.problem("stateMachineArn %r" % o["stateMachineArn"])
            if self.throttle:
                self.throttle -= 1 if self.throttle > 0 else 0
                return recorded_error("constructed-error-throttling.http")
            if self.already_exists:
                return recorded_error("constructed-error-execution-already-exists.http")
            arn = ARN.replace(":stateMachine:", ":execution:") + ":" + o["name"]
            return 200, ok, json.dumps(dict(START_RESPONSE, executionArn=arn))
        if action == "SendTaskSuccess":
            return 200, ok, SUCCESS_RESPONSE
        if action == "SendTaskHeartbeat":
            if self.heartbeats_ok > 0:
                self.heartbeats_ok -= 1
                return 200, ok, "{}"
            return recorded_error("constructed-error-task-timed-out.http")
        return self.problem("unexpected %s" % action)

    def wait(self, what, fn, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                v = fn()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the fake never saw " + what + "; requests: %r" % self.requests)
                self.changed.wait(left)

    def of(self, action, name=None):
        return [o for a, o in self.requests if a == action and (name is None or o.get("name") == name)]


class SfnFake(DaemonTestCase):
    allowed_warnings = (r"Step Functions refused our credentials",)

    def setUp(self):
        super().setUp()
        self.fake = FakeSfn()
        self.state = os.path.join(self.tmp, "state")

    def tearDown(self):
        self.fake.close()
        super().tearDown()

    def start(self, env=ENV, overrides=()):
        d = self.daemon(env=env, state=self.state, overrides=[
            "engine.backend=stepfunctions", "engine.state_machine_arn=" + ARN, "aws.region=" + REGION,
            "aws.endpoint_states=http://127.0.0.1:%d/" % self.fake.port, "sms.max_per_second=1000"] + list(overrides))
        return d.start()

    def db(self, sql, args=()):
        db = sqlite3.connect(os.path.join(self.state, "deliveryd.sqlite"), timeout=10)
        try:
            rows = db.execute(sql, args).fetchall()
            db.commit()
            return rows
        finally:
            db.close()

    def wait_for(self, what, fn):
        deadline = time.monotonic() + TIMEOUT
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for " + what)
            time.sleep(0.05)

    def order(self, d, who):
        """The whole conversation of full-order-pt.json; returns the order id."""
        for step in CONVERSATION["steps"]:
            n = len(json.loads(d.ctl("outbox", "--json").stdout))
            d.ctl("inject", "sms", who, step["sms"])
            self.wait_for("a reply to %r" % step["sms"],
                          lambda: len(json.loads(d.ctl("outbox", "--json").stdout)) > n)
            if "orders" in step:
                break
        orders = [o for o in json.loads(d.ctl("orders", "--json").stdout) if o["customer"] == who]
        self.assertEqual(len(orders), 1, orders)
        return orders[0]["id"]

    def request_row(self, oid, action="StartExecution"):
        return self.db("SELECT status, attempts, last_error FROM sfn_requests WHERE order_id = ? AND action = ?",
                       (oid, action))

    def check_start(self, o, oid):
        self.assertEqual(o["stateMachineArn"], ARN)
        self.assertEqual(o["name"], oid)
        execution_input = json.loads(o["input"])
        self.assertEqual(execution_input["id"], oid)
        self.assertEqual(execution_input["order_id"], oid)
        self.assertEqual(execution_input["total_cents"], 12480)
        self.assertEqual(execution_input["payment"], "pix")
        self.assertEqual(sorted((i["sku"], i["qty"]) for i in execution_input["items"]),
                         [("bebida-coca-2l", 1), ("pz-calabresa", 2)])
        self.assertEqual(execution_input["settings"], {"payment_timeout_seconds": 900, "heartbeat_seconds": 300})

    def test_throttled_then_started_across_restarts(self):
        self.fake.throttle = -1
        d = self.start()
        oid = self.order(d, "+5511987650100")
        # throttled: the client tries again by itself a few times (4), then
        # the row waits in the store for its next turn
        row = self.wait_for("the throttled attempts recorded",
                            lambda: [r for r in self.request_row(oid) if r[1] >= 4])
        self.assertEqual(row[0][0], "pending")
        self.assertIn("ThrottlingException: Rate exceeded", row[0][2])
        self.assertGreaterEqual(len(self.fake.of("StartExecution", oid)), 4)
        d.wait_log(r"event=sfn order=%s action=StartExecution result=retry status=400 code=ThrottlingException "
                   r"attempts=4" % oid)
        self.assertEqual(d.stop(), 0)
        # the request is not lost: after the restart it goes, once
        with self.fake.lock:
            self.fake.throttle = 0
            before = len(self.fake.of("StartExecution", oid))
        d = self.start()
        self.wait_for("StartExecution done", lambda: self.request_row(oid)[0][0] == "done")
        sent = self.fake.of("StartExecution", oid)
        self.assertEqual(len(sent), before + 1)
        for o in sent:
            self.check_start(o, oid)
        self.assertEqual(self.db("SELECT execution_arn FROM sfn_executions WHERE order_id = ?", (oid,)),
                         [(ARN.replace(":stateMachine:", ":execution:") + ":" + oid,)])
        d.wait_log(r"event=sfn order=%s action=StartExecution result=ok" % oid)
        self.assertEqual(d.stop(), 0)
        # after success, a restart sends nothing again: a second order's
        # start is seen, the first one's is not
        d = self.start()
        oid2 = self.order(d, "+5511987650101")
        self.fake.wait("the second order's StartExecution", lambda: self.fake.of("StartExecution", oid2))
        self.wait_for("second StartExecution done", lambda: self.request_row(oid2)[0][0] == "done")
        self.assertEqual(len(self.fake.of("StartExecution", oid)), before + 1)
        self.assertEqual(self.fake.problems, [])
        self.assertEqual(d.stop(), 0)

    def test_execution_already_exists_is_success(self):
        self.fake.already_exists = True
        d = self.start()
        oid = self.order(d, "+5511987650102")
        self.wait_for("StartExecution done", lambda: self.request_row(oid)[0][0] == "done")
        self.assertEqual(len(self.fake.of("StartExecution", oid)), 1)
        self.assertEqual(self.request_row(oid)[0][2], None)
        self.assertEqual(self.fake.problems, [])
        self.assertEqual(d.stop(), 0)

    def test_wrong_secret_is_refused_and_sent_later(self):
        d = self.start(env=dict(ENV, AWS_SECRET_ACCESS_KEY="not-the-secret"))
        oid = self.order(d, "+5511987650103")
        d.wait_log(r"Order %s: Step Functions refused our credentials for StartExecution" % oid)
        self.assertEqual(self.fake.refused[0], "signature mismatch")
        self.assertEqual(self.fake.of("StartExecution", oid), [])
        row = self.request_row(oid)
        self.assertEqual(row[0][0], "pending")
        self.assertIn("InvalidSignatureException", row[0][2])
        self.assertEqual(d.stop(), 0)
        # the operator fixes the secret: the request goes
        d = self.start()
        self.wait_for("StartExecution done", lambda: self.request_row(oid)[0][0] == "done")
        sent = self.fake.of("StartExecution", oid)
        self.assertEqual(len(sent), 1)
        self.check_start(sent[0], oid)
        self.assertEqual(self.fake.problems, [])
        self.assertEqual(d.stop(), 0)

    def test_event_needs_a_task_token(self):
        d = self.start()
        oid = self.order(d, "+5511987650104")
        self.wait_for("StartExecution done", lambda: self.request_row(oid)[0][0] == "done")
        # no token known yet: refused, nothing sent
        p = d.ctl("order", oid, "paid", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not waiting for a payment", p.stderr)
        # the Lambda side (here: the operator) registers the AwaitPayment token
        self.db("INSERT INTO sfn_task_tokens (token, order_id, wait, created_at) VALUES (?, ?, 'payment', 0)",
                (TASK_TOKEN, oid))
        d.ctl("order", oid, "paid")
        self.wait_for("SendTaskSuccess done", lambda: (self.request_row(oid, "SendTaskSuccess") or [("",)])[0][0]
                      == "done")
        sent = self.fake.of("SendTaskSuccess")
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0]["taskToken"], TASK_TOKEN)
        self.assertEqual(json.loads(sent[0]["output"]), {"event": "paid"})
        # a token answers once
        self.assertEqual(self.db("SELECT token FROM sfn_task_tokens WHERE order_id = ?", (oid,)), [])
        p = d.ctl("order", oid, "paid", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(self.fake.problems, [])
        self.assertEqual(d.stop(), 0)

    def test_heartbeats_for_the_tokens_held(self):
        """Every token the daemon holds is beaten for (engine.heartbeat / 2),
        until Step Functions says the task is over: then it is forgotten."""
        d = self.start(overrides=["engine.heartbeat=2s"])
        oid = self.order(d, "+5511987650105")
        self.wait_for("StartExecution done", lambda: self.request_row(oid)[0][0] == "done")
        self.db("INSERT INTO sfn_task_tokens (token, order_id, wait, created_at) VALUES (?, ?, 'status', 0)",
                (TASK_TOKEN, oid))
        # two beats answered, the third TaskTimedOut: the token goes
        self.wait_for("the token forgotten",
                      lambda: self.db("SELECT count(*) FROM sfn_task_tokens WHERE order_id = ?", (oid,))[0][0] == 0)
        beats = self.fake.of("SendTaskHeartbeat")
        self.assertGreaterEqual(len(beats), 3)
        self.assertEqual({b["taskToken"] for b in beats}, {TASK_TOKEN})
        rows = self.db("SELECT status FROM sfn_requests WHERE order_id = ? AND action = 'SendTaskHeartbeat' "
                       "ORDER BY id", (oid,))
        self.assertEqual([r[0] for r in rows][:2], ["done", "done"])
        self.assertEqual(rows[-1][0], "failed")
        # and no more beats for it
        n = len(self.fake.of("SendTaskHeartbeat"))
        time.sleep(2.5)  # longer than a heartbeat period: nothing may come
        self.assertEqual(len(self.fake.of("SendTaskHeartbeat")), n)
        self.assertEqual(self.fake.problems, [])
        self.assertEqual(d.stop(), 0)

    def test_check_config_wants_the_arn(self):
        conf = os.path.join(TOP_SRCDIR, "etc", "deliveryd.conf")
        p = subprocess.run([DELIVERYD, "-c", conf, "-o", "engine.backend=stepfunctions", "--check-config"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("engine.state_machine_arn: must be set with engine.backend=stepfunctions", p.stderr)
        p = subprocess.run([DELIVERYD, "-c", conf, "-o", "engine.backend=stepfunctions", "-o",
                            "engine.state_machine_arn=order", "--check-config"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("engine.state_machine_arn: 'order' is not a state machine ARN", p.stderr)
        p = subprocess.run([DELIVERYD, "-c", conf, "-o", "engine.backend=stepfunctions", "-o",
                            "engine.state_machine_arn=" + ARN, "--check-config"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual((p.returncode, p.stderr), (0, ""), p.stderr)


if __name__ == "__main__":
    main()
