# SPDX-License-Identifier: MIT
"""A failed fsync is never retried: with libfiu making fsync/fdatasync fail
(EIO), the daemon refuses to start, or, when it happens while running, says
why, stops and exits non-zero; restarted on a healthy disk it comes back with
what was committed."""

import os
import shutil
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import VECTORS, DaemonTestCase, SnsFixture, main  # noqa: E402

FIU_RUN = shutil.which("fiu-run")
FIU_CTRL = shutil.which("fiu-ctrl")
SYNC_FAILS = ["-c", "enable name=posix/io/sync/fsync,failinfo=5", "-c", "enable name=posix/io/sync/fdatasync,failinfo=5"]


# libfiu's preload library wraps malloc() too, which cannot be combined with
# AddressSanitizer's allocator (the process crashes at start); the normal
# build runs these tests.
SANITIZED = ("sanitize" in os.environ.get("DELIVERYD_SANITIZERS", "")
             or os.environ.get("DELIVERYD_TEST_VALGRIND") == "1")


@unittest.skipUnless(FIU_RUN and FIU_CTRL, "libfiu's fiu-run and fiu-ctrl are not installed (apt-get install fiu-utils)")
@unittest.skipIf(SANITIZED, "libfiu's LD_PRELOAD cannot run under AddressSanitizer or valgrind")
class StoreFailure(DaemonTestCase):
    def test_fsync_failure_at_start(self):
        d = self.daemon(wrapper=[FIU_RUN, "-x", "-f", ""] + SYNC_FAILS)
        d.allowed = (r"Failed to open the store",)
        d.start(wait_ready=False)
        self.assertEqual(d.wait(), 1)
        d.wait_log(r"^<3>Failed to open the store: .*deliveryd\.sqlite.*: disk I/O error$")
        self.assertNotIn("READY=1", d.notify.assignments())

    def test_fsync_failure_while_running(self):
        ctrl = os.path.join(self.tmp, "fiu-ctrl")
        d = self.daemon(wrapper=[FIU_RUN, "-x", "-f", ctrl])
        d.allowed = (r"Store write failed",)
        d.start()
        self.assertEqual(d.stats()["state"], "running")

        # The disk goes bad; the next write is the record of a reload.  (The
        # reload is asked for over the control socket: fiu-run's remote
        # control thread starts before main() and would take a SIGHUP.)
        subprocess.run([FIU_CTRL, "-f", ctrl] + SYNC_FAILS + [str(d.proc.pid)], check=True, timeout=30)
        p = d.ctl("reload", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(d.wait(), 1)
        d.wait_log(r"^<3>Store write failed \(record configuration\): Input/output error\. Not retrying: stopping so "
                   r"that deliveryd restarts from the last committed state\.$")
        stopping = d.notify.wait_for("STOPPING=1")
        self.assertIn("STATUS=Store failed: Input/output error", stopping)
        self.assertIn("ERRNO=5", stopping)
        # it did not pretend the reload went well
        after = d.notify.messages[d.notify.messages.index(stopping):]
        self.assertFalse(any("READY=1" in m.split("\n") for m in after), d.notify.messages)

        self.assertIn("the store failed while recording the reload", p.stderr)

        # systemd restarts it on a healthy disk: what was committed is there.
        again = self.daemon(state=d.state).start()
        self.assertEqual(again.stats()["state"], "running")
        self.assertEqual(again.stop(), 0)
        db = sqlite3.connect(os.path.join(d.state, "deliveryd.sqlite"))
        results = [r[0] for r in db.execute("SELECT result FROM config_history ORDER BY id")]
        self.assertEqual(results[0], "started")
        self.assertEqual(results[-1], "started")


@unittest.skipUnless(FIU_RUN and FIU_CTRL, "libfiu's fiu-run and fiu-ctrl are not installed (apt-get install fiu-utils)")
@unittest.skipIf(SANITIZED, "libfiu's LD_PRELOAD cannot run under AddressSanitizer or valgrind")
@unittest.skipUnless(shutil.which("curl") and os.path.isdir(VECTORS), "curl or the shared vectors missing")
class WebhookStoreFailure(DaemonTestCase):
    def test_webhook_answers_5xx_never_2xx_or_4xx(self):
        import json

        sns = SnsFixture(self.tmp)
        m = sns.sms()
        body = sns.write(m, os.path.join(self.tmp, "body.json"))
        cache = sns.cache

        ctrl = os.path.join(self.tmp, "fiu-ctrl")
        d = self.daemon(wrapper=[FIU_RUN, "-x", "-f", ctrl],
                        overrides=["sns.topics=" + m["TopicArn"], "sns.certificate_cache=" + cache])
        d.allowed = (r"Store write failed",)
        d.start()
        url = "http://127.0.0.1:%d/webhooks/sns" % d.http_port()
        subprocess.run([FIU_CTRL, "-f", ctrl] + SYNC_FAILS + [str(d.proc.pid)], check=True, timeout=30)
        p = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "30", "--data-binary",
                            "@" + body, url], capture_output=True, text=True)
        text, _, code = p.stdout.rpartition("\n")
        # SNS retries a 5xx; a 2xx or 4xx would lose the message.
        self.assertEqual(code, "503", p.stdout + p.stderr)
        self.assertIn("storage failed", text)
        self.assertEqual(d.wait(), 1)

        again = self.daemon(state=d.state, overrides=["sns.topics=" + m["TopicArn"], "sns.certificate_cache=" + cache])
        again.start()
        url = "http://127.0.0.1:%d/webhooks/sns" % again.http_port()
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
                            "--data-binary", "@" + body, url], capture_output=True, text=True)
        self.assertEqual(p.stdout, "200")  # SNS's retry is stored
        self.assertEqual(len(json.loads(again.ctl("inbox", "--json").stdout)), 1)
        self.assertEqual(again.stop(), 0)


if __name__ == "__main__":
    main()
