# SPDX-License-Identifier: MIT
"""nlu.backend = bedrock against a fake Bedrock Runtime on loopback.

The fake (FakeBedrock) is a plain-http server on 127.0.0.1 that
"deliveryctl parse" reaches through aws.endpoint_bedrock.  It checks every
request as Bedrock would: the path (the model id's ':' percent-encoded
once on the wire, and signed encoded twice), the headers, the SigV4
signature recomputed with aws_fake.py from the fake credentials given in
the environment (403 InvalidSignatureException otherwise), and the
Converse body (one user message, the customer's text only; the tool with
the catalog's SKUs forced by toolChoice; temperature 0; no prices in the
system prompt).  It answers by the customer's text, with the recorded
Converse responses of the vectors (bedrock/) where they fit: a toolUse
(whose intent and items must be printed), a text-only answer, invalid
JSON, a toolUse naming an unknown SKU, a 429 ThrottlingException and an
answer slower than nlu.timeout_ms — each of the last five must print
exactly what the rules print, with a note on stderr saying why.  The
daemon itself asks the same fake for the conversation: a customer's order
is priced from Bedrock's items, and a throttled one from the rules'."""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from aws_fake import FakeAwsServer, check_sigv4  # noqa: E402
import harness  # noqa: E402
from harness import DELIVERYCTL, TIMEOUT, TOP_SRCDIR, VECTORS, DaemonTestCase, main, read_text  # noqa: E402

harness.require_vectors()

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLEtokenEXAMPLE//+=="
REGION = "sa-east-1"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
PATH = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
TOOL = "parse_customer_message"
SIGNED_HEADERS = "accept;content-type;host;x-amz-date;x-amz-security-token"
SKUS = ["pz-margherita", "pz-calabresa", "pz-portuguesa", "pz-quatro-queijos", "pz-frango-catupiry",
        "lanche-x-burguer", "lanche-x-salada", "porcao-batata", "bebida-coca-2l", "bebida-guarana-2l",
        "bebida-suco-laranja", "sobremesa-brownie", "sobremesa-acai"]

TOOL_USE = json.loads(read_text(os.path.join(VECTORS, "bedrock", "constructed-converse-response-tool-use.json")))
END_TURN = read_text(os.path.join(VECTORS, "bedrock", "constructed-converse-response-end-turn.json"))
ERRORS = read_text(os.path.join(VECTORS, "bedrock", "constructed-converse-errors.txt"))


def tool_answer(tool_input):
    """The vectors' toolUse response, for our tool with this input."""
    o = json.loads(json.dumps(TOOL_USE))
    use = o["output"]["message"]["content"][0]["toolUse"]
    use["name"] = TOOL
    use["input"] = tool_input
    return json.dumps(o)


def recorded_error(status, error_type):
    """(status, headers, body) of an error of constructed-converse-errors.txt."""
    for m in re.finditer(r"^HTTP/1\.1 (\d+)\n((?:[^\n]+\n)+)\n([^\n]+)", ERRORS, re.M):
        headers = dict(line.split(": ", 1) for line in m.group(2).splitlines())
        if int(m.group(1)) == status and headers.get("x-amzn-ErrorType") == error_type:
            return status, headers, m.group(3)
    raise AssertionError("no %d %s in the vectors" % (status, error_type))


MENU_INPUT = {"intent": "place_order", "lang": "pt", "items": [{"sku": "pz-quatro-queijos", "qty": 3},
                                                               {"sku": "sobremesa-acai", "qty": 1}],
              "payment": "card", "address": "Rua Augusta 1500", "order_id": None}

# the customer's text -> (what the fake does, the reason deliveryctl gives for the fallback or None)
SCENARIOS = {
    "me ve aquela de sempre": ("tool_use", None),
    "quero 2 calabresa pra Rua Augusta 1500, pago no pix": ("text_only", "no_tool"),
    "cadê meu pedido 9XK4MB?": ("invalid_json", "invalid"),
    "quero uma pizza de abacaxi e 2 coca": ("unknown_sku", "invalid"),
    "I'd like a portuguese pizza and two cokes, paying by card": ("throttle", "throttled"),
    "me manda o cardápio": ("slow", "timeout"),
}


class FakeBedrock(FakeAwsServer):
    def __init__(self, slow_seconds=3.0):
        self.slow_seconds = slow_seconds
        super().__init__()

    def respond(self, req, body):
        return self.handle(req, body)

    def problem(self, msg):
        with self.lock:
            self.problems.append(msg)
        return 400, {"Content-Type": "application/json", "x-amzn-ErrorType": "ValidationException"}, json.dumps(
            {"message": "fake: " + msg})

    def check_body(self, o):
        """What is wrong with a Converse body, or None; the customer's text."""
        msgs = o.get("messages")
        if not isinstance(msgs, list) or len(msgs) != 1 or msgs[0].get("role") != "user":
            return "messages %r" % msgs, None
        content = msgs[0].get("content")
        if not isinstance(content, list) or len(content) != 1 or set(content[0]) != {"text"}:
            return "content %r" % content, None
        text = content[0]["text"]
        if o.get("inferenceConfig", {}).get("temperature") != 0:
            return "temperature %r" % o.get("inferenceConfig"), text
        if not 0 < o["inferenceConfig"].get("maxTokens", 0) <= 4096:
            return "maxTokens %r" % o.get("inferenceConfig"), text
        tc = o.get("toolConfig", {})
        if tc.get("toolChoice") != {"tool": {"name": TOOL}}:
            return "toolChoice %r" % tc.get("toolChoice"), text
        tools = tc.get("tools", [])
        if len(tools) != 1 or tools[0]["toolSpec"]["name"] != TOOL:
            return "tools %r" % tools, text
        schema = tools[0]["toolSpec"]["inputSchema"]["json"]
        item = schema["properties"]["items"]["items"]["properties"]
        if item["sku"]["enum"] != SKUS or (item["qty"]["minimum"], item["qty"]["maximum"]) != (1, 50):
            return "item schema %r" % item, text
        if sorted(schema["required"]) != sorted(["intent", "lang", "items", "payment", "address", "order_id"]):
            return "required %r" % schema["required"], text
        system = " ".join(s["text"] for s in o.get("system", []))
        if any(sku not in system for sku in SKUS) or "52,90" in system or "52.90" in system or "R$" in system:
            return "system prompt %r" % system, text
        return None, text

    def handle(self, req, body):
        if req.path != PATH:
            return self.problem("path %r" % req.path)
        if req.headers.get("Content-Type") != "application/json" or req.headers.get("Accept") != "application/json":
            return self.problem("Content-Type %r Accept %r" % (req.headers.get("Content-Type"),
                                                               req.headers.get("Accept")))
        if req.headers.get("Host") != "127.0.0.1:%d" % self.port:
            return self.problem("Host %r" % req.headers.get("Host"))
        why = check_sigv4(req.headers, "POST", req.path, body, AKID, SECRET, TOKEN, REGION, "bedrock", SIGNED_HEADERS)
        if why:
            with self.lock:
                self.problems.append("refused: " + why)
            return recorded_error(403, "InvalidSignatureException:http://internal.amazon.com/coral/"
                                       "com.amazon.coral.service/")
        try:
            o = json.loads(body)
        except ValueError:
            return self.problem("not JSON: %r" % body[:200])
        why, text = self.check_body(o)
        if why:
            return self.problem(why)
        with self.lock:
            self.requests.append(text)
        ok = {"Content-Type": "application/json"}
        what = SCENARIOS.get(text, ("none", None))[0]
        if what == "tool_use":
            return 200, ok, tool_answer(MENU_INPUT)
        if what == "text_only":
            return 200, ok, END_TURN
        if what == "invalid_json":
            return 200, ok, tool_answer(MENU_INPUT)[:60]
        if what == "unknown_sku":
            return 200, ok, tool_answer(dict(MENU_INPUT, items=[{"sku": "pz-abacaxi", "qty": 1}]))
        if what == "throttle":
            return recorded_error(429, "ThrottlingException")
        if what == "slow":
            time.sleep(self.slow_seconds)
            return 200, ok, tool_answer(MENU_INPUT)
        return self.problem("unexpected text %r" % text)


ENV = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
       "AWS_EC2_METADATA_DISABLED": "true"}


def parse(text, overrides=(), env=None):
    argv = [DELIVERYCTL, "-c", os.path.join("etc", "deliveryd.conf")]
    for o in overrides:
        argv += ["-o", o]
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update(env if env is not None else ENV)
    return subprocess.run(argv + ["parse", text], capture_output=True, text=True, cwd=TOP_SRCDIR, env=e,
                          timeout=TIMEOUT)


class BedrockFake(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.fake = FakeBedrock()

    def tearDown(self):
        self.fake.close()
        super().tearDown()

    def bedrock(self, text, extra=(), env=None):
        return parse(text, ["nlu.backend=bedrock", "nlu.model_id=" + MODEL, "aws.region=" + REGION,
                            "aws.endpoint_bedrock=http://127.0.0.1:%d" % self.fake.port, "nlu.timeout_ms=1000"]
                     + list(extra), env)

    def rules(self, text):
        p = parse(text, ["nlu.backend=rules"])
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        return p.stdout

    def test_tool_use_is_printed(self):
        p = self.bedrock("me ve aquela de sempre")
        self.assertEqual(self.fake.problems, [])
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        self.assertEqual(json.loads(p.stdout), {
            "intent": "place_order", "lang": "pt",
            "items": [{"sku": "pz-quatro-queijos", "qty": 3}, {"sku": "sobremesa-acai", "qty": 1}],
            "payment": "card", "address": "Rua Augusta 1500", "order_id": None})
        # the rules read the same text differently: Bedrock's answer was used
        self.assertNotEqual(p.stdout, self.rules("me ve aquela de sempre"))
        self.assertEqual(self.fake.requests, ["me ve aquela de sempre"])

    def test_fallbacks_give_the_rules_result(self):
        for text, (what, reason) in SCENARIOS.items():
            if reason is None:
                continue
            with self.subTest(what=what):
                start = time.monotonic()
                p = self.bedrock(text)
                elapsed = time.monotonic() - start
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout, self.rules(text))
                self.assertEqual(p.stderr, "deliveryctl: parse: bedrock not used (%s); the rules answered.\n" % reason)
                self.assertIn(text, self.fake.requests)
                if what == "slow":
                    # the deadline, not the fake's answer, ended the wait
                    self.assertLess(elapsed, self.fake.slow_seconds)
        self.assertEqual(self.fake.problems, [])

    def test_wrong_secret_is_refused_and_the_rules_answer(self):
        text = "me ve aquela de sempre"
        p = self.bedrock(text, env=dict(ENV, AWS_SECRET_ACCESS_KEY="not-the-secret"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, self.rules(text))
        self.assertIn("(http_error)", p.stderr)
        self.assertEqual(self.fake.problems, ["refused: signature mismatch"])

    def test_budget_and_no_credentials_never_call(self):
        text = "me ve aquela de sempre"
        p = self.bedrock(text, extra=["nlu.max_calls_per_hour=0"])
        self.assertEqual((p.returncode, p.stdout), (0, self.rules(text)))
        self.assertIn("(budget)", p.stderr)
        p = self.bedrock(text, env={"AWS_EC2_METADATA_DISABLED": "true",
                                    "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.tmp, "none")})
        self.assertEqual((p.returncode, p.stdout), (0, self.rules(text)))
        self.assertIn("(credentials)", p.stderr)
        self.assertEqual(self.fake.requests, [])
        self.assertEqual(self.fake.problems, [])

    def wait_handled(self, d, inbox_id):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            rows = json.loads(d.ctl("inbox", "--json").stdout)
            if any(r["id"] == inbox_id and r["status"] == "done" for r in rows):
                return
            time.sleep(0.02)
        self.fail("message %d was not handled in time; log:\n%s" % (inbox_id, "\n".join(d.log)))

    def test_the_daemon_answers_with_bedrock_and_falls_back(self):
        # the conversation's NluClient asks Bedrock with the daemon's credentials chain
        d = self.daemon(env=ENV, overrides=[
            "nlu.backend=bedrock", "nlu.model_id=" + MODEL, "aws.region=" + REGION,
            "aws.endpoint_bedrock=http://127.0.0.1:%d" % self.fake.port, "nlu.timeout_ms=1000"]).start()
        who = "+5511987650000"
        p = d.ctl("--json", "inject", "sms", who, "me ve aquela de sempre")
        self.wait_handled(d, json.loads(p.stdout)["id"])
        replies = [m["body"] for m in json.loads(d.ctl("outbox", "--json").stdout) if m["to"] == who]
        self.assertEqual(len(replies), 1, replies)
        # Bedrock's items, address and payment; prices from the catalog and the zone
        self.assertIn("3x Pizza Quatro Queijos R$ 176,70\n", replies[0])
        self.assertIn("1x Acai 500ml R$ 22,00\n", replies[0])
        self.assertIn("Entrega em Rua Augusta 1500: R$ 5,00\nTotal: R$ 203,70, cartao", replies[0])
        # a 429: the rules answer this one
        p = d.ctl("--json", "inject", "sms", "+5511987650001", "I'd like a portuguese pizza and two cokes, "
                  "paying by card")
        self.wait_handled(d, json.loads(p.stdout)["id"])
        counters = d.stats()["counters"]["nlu_requests_total"]
        self.assertEqual(counters["bedrock"]["ok"], 1)
        self.assertEqual(counters["bedrock"]["throttled"], 1)
        self.assertEqual(counters["rules"]["fallback"], 1)
        self.assertEqual(self.fake.problems, [])
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
