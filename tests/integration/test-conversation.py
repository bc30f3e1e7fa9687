# SPDX-License-Identifier: MIT
"""Multi-turn conversations through the real daemon: each case in
tests/data/conversation/*.json is a list of steps — a customer's SMS or
e-mail handed in with deliveryctl inject, an operator command, a wait —
and what must come out: the replies the outbox holds for that customer
(each a regular expression, in order; an empty list means silence), an
alert to the store, the orders created.

A step waits until the daemon has handled the message (its inbox row is
'done') before it looks at the outbox, so silence is checked, not
assumed."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import TIMEOUT, TOP_SRCDIR, DaemonTestCase, main  # noqa: E402

CASES = sorted(glob.glob(os.path.join(TOP_SRCDIR, "tests", "data", "conversation", "*.json")))
DEFAULT_FROM = "+5511987654321"
NO_WORKFLOW = "engine.definition=" + os.path.join(TOP_SRCDIR, "tests", "data", "engine", "no-workflow.asl.json")
SWAKS = shutil.which("swaks")


class Conversation(DaemonTestCase):
    def wait_handled(self, d, inbox_id):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            rows = json.loads(d.ctl("inbox", "--json").stdout)
            row = next((r for r in rows if r["id"] == inbox_id), None)
            if row and row["status"] in ("done", "corrupt"):
                self.assertEqual(row["status"], "done", "message %d was set aside; log:\n%s"
                                 % (inbox_id, "\n".join(d.log)))
                return
            time.sleep(0.02)
        self.fail("message %d was not handled in time; log:\n%s" % (inbox_id, "\n".join(d.log)))

    def outbox_for(self, d, to):
        return [m for m in json.loads(d.ctl("outbox", "--json").stdout) if m["to"] == to]

    def check_replies(self, where, got, want):
        bodies = [m["body"] for m in got]
        self.assertEqual(len(bodies), len(want), "%s: replies %r, want %d matching %r" % (where, bodies, len(want), want))
        for body, rx in zip(bodies, want):
            self.assertRegex(body, re.compile(rx, re.S), where)

    def run_case(self, path):
        case = json.load(open(path, encoding="utf-8"))
        # The conversation alone: a workflow that does nothing, so that its
        # messages do not mix with the replies (test-workflow.py runs the real one).
        overrides = [NO_WORKFLOW] + list(case.get("config", []))
        lmtp = os.path.join(self.tmp, "lmtp.sock")
        if any("lmtp" in step for step in case["steps"]):
            if not SWAKS:
                self.skipTest("swaks is not installed")
            overrides.append("lmtp.listen=unix:" + lmtp)
        d = self.daemon(overrides=overrides).start()
        seen = {}
        for n, step in enumerate(case["steps"], 1):
            where = "%s step %d (%s)" % (os.path.basename(path), n, step.get("sms") or step.get("note") or "")
            who = step.get("from", DEFAULT_FROM)
            for key in ("sms", "mail"):
                if key in step:
                    for name, value in seen.items():
                        step[key] = step[key].replace("{%s}" % name, value)
            before = {m["id"] for m in self.outbox_for(d, who)}
            if "sleep" in step:
                time.sleep(step["sleep"])
            if "sms" in step:
                p = d.ctl("--json", "inject", "sms", who, step["sms"])
                self.wait_handled(d, json.loads(p.stdout)["id"])
            if "mail" in step:
                eml = os.path.join(self.tmp, "step-%d.eml" % n)
                with open(eml, "w", encoding="utf-8", newline="\r\n") as f:
                    f.write(step["mail"])
                p = d.ctl("--json", "inject", "mail", eml, overrides=case.get("config", []))
                self.wait_handled(d, json.loads(p.stdout)["id"])
            if "lmtp" in step:
                # as the local MTA hands it over, Authentication-Results and all
                eml = os.path.join(self.tmp, "step-%d.eml" % n)
                with open(eml, "w", encoding="utf-8", newline="\r\n") as f:
                    f.write(step["lmtp"])
                last = max([r["id"] for r in json.loads(d.ctl("inbox", "--json").stdout)] or [0])
                p = subprocess.run([SWAKS, "--protocol", "LMTP", "--socket", lmtp, "--from", who, "--to",
                                    step["to"], "--data", "@" + eml], capture_output=True, text=True, timeout=TIMEOUT)
                self.assertIn("250 ", p.stdout, where)
                rows = [r for r in json.loads(d.ctl("inbox", "--json").stdout) if r["id"] > last]
                self.assertEqual(len(rows), 1, where)
                self.wait_handled(d, rows[0]["id"])
            if "ctl" in step:
                p = d.ctl(*step["ctl"], check=False)
                self.assertEqual(p.returncode, step.get("exit", 0), "%s: %s%s" % (where, p.stdout, p.stderr))
                for rx in step.get("ctl_output", []):
                    self.assertRegex(p.stdout + p.stderr, rx, where)
            new = [m for m in self.outbox_for(d, who) if m["id"] not in before]
            if "reply" in step:
                want = list(step["reply"])
                for name, value in seen.items():
                    want = [rx.replace("{%s}" % name, value) for rx in want]
                self.check_replies(where, new, want)
            if new and new[-1].get("message_id"):
                seen["last_message_id"] = new[-1]["message_id"]
            if "capture_message_id" in step:
                self.assertTrue(new and new[-1].get("message_id"), where)
                seen[step["capture_message_id"]] = new[-1]["message_id"]
            for name, rx in step.get("capture", {}).items():
                m = re.search(rx, "\n".join(r["body"] for r in new))
                self.assertTrue(m, "%s: nothing to capture as %s" % (where, name))
                seen[name] = m.group(1)
            for key, rx in step.get("reply_fields", {}).items():
                self.assertTrue(new, where)
                for name, value in seen.items():
                    rx = rx.replace("{%s}" % name, value)
                self.assertRegex(str(new[-1].get(key)), rx, "%s: %s" % (where, key))
            if "alert" in step:
                to = step["alert"]["to"]
                got = self.outbox_for(d, to)
                self.check_replies(where + " alert", got, step["alert"]["reply"])
            if "orders" in step:
                orders = [o for o in json.loads(d.ctl("orders", "--json").stdout) if o["customer"] == who]
                self.assertEqual(len(orders), len(step["orders"]), "%s: orders %r" % (where, orders))
                for got, want in zip(orders, step["orders"]):
                    for k, v in want.items():
                        self.assertEqual(got[k], v, "%s: order %s" % (where, k))
            if "phase" in step:
                conv = json.loads(d.ctl("conversation", who, "--json").stdout)
                self.assertEqual(conv["phase"], step["phase"], where)
        self.assertEqual(d.warnings(allowed=case.get("allowed_warnings", [])), [])
        self.assertEqual(d.stop(), 0)


def make_test(path):
    def test(self):
        self.run_case(path)
    return test


for _path in CASES:
    _name = "test_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(_path))[0])
    setattr(Conversation, _name, make_test(_path))


if __name__ == "__main__":
    main()
