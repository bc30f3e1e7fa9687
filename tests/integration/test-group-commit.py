# SPDX-License-Identifier: MIT
"""Group commit: the inbox, the conversation and the outbox commit without
waiting for the disk, and a thread of the store syncs the write-ahead log
for all of them at once.  What is promised to the outside waits for that
sync: the webhook's 200 and the reply to the customer.  The failure point
deliveryd/store/before-sync (libfiu) holds the sync thread back, as a slow
disk would; libfiu's posix/io/sync/fdatasync makes the sync fail."""

import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import DELIVERYCTL, SMS_TOPIC, TIMEOUT, VECTORS, DaemonTestCase, SnsFixture, main  # noqa: E402

FIU_RUN = shutil.which("fiu-run")
FIU_CTRL = shutil.which("fiu-ctrl")
CURL = shutil.which("curl")
POINTS = os.environ.get("DELIVERYD_FAULT_POINTS") == "yes"
HOLD = "deliveryd/store/before-sync"
ENV = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))}
SANITIZED = ("sanitize" in os.environ.get("DELIVERYD_SANITIZERS", "")
             or os.environ.get("DELIVERYD_TEST_VALGRIND") == "1")


@unittest.skipUnless(FIU_RUN and FIU_CTRL and POINTS, "built without libfiu failure points, or fiu-utils missing")
@unittest.skipUnless(CURL and os.path.isdir(VECTORS), "curl or the shared vectors missing")
class GroupCommit(DaemonTestCase):
    def start(self, x=False):
        self.sns = SnsFixture(self.tmp)
        self.ctrl = os.path.join(self.tmp, "fiu-ctrl")
        wrapper = [FIU_RUN] + (["-x"] if x else []) + ["-f", self.ctrl]
        d = self.daemon(wrapper=wrapper, env=ENV,
                        overrides=["sns.topics=" + SMS_TOPIC, "sns.certificate_cache=" + self.sns.cache])
        return d

    def fiu(self, d, *args):
        subprocess.run([FIU_CTRL, "-f", self.ctrl] + list(args) + [str(d.proc.pid)], check=True, timeout=TIMEOUT)

    def post(self, d, message):
        body = self.sns.write(message, os.path.join(self.tmp, "body-%s.json" % message["MessageId"]))
        url = "http://127.0.0.1:%d/webhooks/sns" % d.http_port()
        return subprocess.Popen([CURL, "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", str(TIMEOUT),
                                 "--data-binary", "@" + body, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def inbox(self, d):
        return json.loads(d.ctl("inbox", "--json").stdout)

    def test_acknowledgement_and_reply_wait_for_the_disk(self):
        d = self.start()
        d.start()
        self.fiu(d, "-c", "enable name=" + HOLD)
        curl = self.post(d, self.sns.sms(text="cardápio"))

        # Committed: the conversation has run and its reply is claimed...
        deadline = time.monotonic() + TIMEOUT
        while not self.inbox(d) or self.inbox(d)[0]["status"] != "done":
            self.assertLess(time.monotonic(), deadline, "the message was never committed and handled")
            time.sleep(0.05)
        self.assertTrue(json.loads(d.ctl("outbox", "--json").stdout))
        # ...but not on disk: no answer to SNS, nothing sent to the customer.
        time.sleep(0.5)
        self.assertIsNone(curl.poll(), "acknowledged before the disk confirmed the commit")
        self.assertFalse(any("event=outbox_sent" in line for line in d.log), d.log)
        for m in json.loads(d.ctl("outbox", "--json").stdout):
            self.assertIn(m["status"], ("queued", "sending"))

        # The disk confirms: the answer and the reply go.
        self.fiu(d, "-c", "disable name=" + HOLD)
        out, err = curl.communicate(timeout=TIMEOUT)
        self.assertEqual(out.rpartition("\n")[2], "200", out + err)
        d.wait_log(r"event=outbox_sent id=1 channel=sms")
        # (Not its exit status: fiu-run's control thread, started before
        # main() blocks signals, may take the SIGTERM.)
        d.stop()

    @unittest.skipIf(SANITIZED, "libfiu's LD_PRELOAD cannot run under AddressSanitizer or valgrind")
    def test_failed_sync_answers_503_and_stops(self):
        d = self.start(x=True)
        d.allowed = (r"Store write failed",)
        d.start()
        self.fiu(d, "-c", "enable name=" + HOLD)
        curl = self.post(d, self.sns.sms(text="cardápio"))
        deadline = time.monotonic() + TIMEOUT
        while not self.inbox(d):
            self.assertLess(time.monotonic(), deadline, "the message was never committed")
            time.sleep(0.05)

        # An operator's inject waits the same way.
        inject = subprocess.Popen([DELIVERYCTL, "-c", d.config, "-o", "control.socket=" + d.control, "inject", "sms",
                                   "+5511900000077", "oi"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while len(self.inbox(d)) < 2:
            self.assertLess(time.monotonic(), deadline, "the injected message was never committed")
            time.sleep(0.05)
        self.assertIsNone(inject.poll(), "inject answered before the disk confirmed the commit")

        # The sync that would confirm them fails: SNS must hear "try again",
        # and so must the operator.
        self.fiu(d, "-c", "enable name=posix/io/sync/fdatasync,failinfo=5")
        self.fiu(d, "-c", "disable name=" + HOLD)
        out, err = curl.communicate(timeout=TIMEOUT)
        text, _, code = out.rpartition("\n")
        self.assertEqual(code, "503", out + err)
        self.assertIn("storage failed", text)
        out, err = inject.communicate(timeout=TIMEOUT)
        self.assertNotEqual(inject.returncode, 0, out)
        self.assertIn("could not be stored; nothing was received", err)
        self.assertEqual(d.wait(), 1)
        d.wait_log(r"^<3>Store write failed \(sync the write-ahead log\): Input/output error\. Not retrying")
        self.assertFalse(any("event=outbox_sent" in line for line in d.log), d.log)


if __name__ == "__main__":
    main()
