# SPDX-License-Identifier: MIT
"""Received mail is parsed in a process of its own, the mail parser: this
checks, against the real daemon, that it is one (a child with nothing of the
daemon's: its socket, /dev/null and a pipe for stderr, no secrets in its
environment, no new privileges, a memory limit, a title of its own); that
mail over LMTP and over SNS (SES) and `deliveryctl inject mail` go through
it; that a parser killed while it reads a message, or stopped at its
deadline, costs that message a "try again later" (LMTP 451, SNS 503, an
inject error) and nothing else, and the message goes through when it comes
again; and that a parser that dies at every start makes the daemon pause
between starts instead of spinning, while SMS, /healthz and the control
socket are answered as usual.  The failure points (deliveryd/mail-parser/*,
libfiu) are enabled in one parser process through its pid with fiu-ctrl, or
in every one with fiu-run."""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from harness import SMS_TOPIC, TIMEOUT, VECTORS, DaemonTestCase, SnsFixture, main  # noqa: E402
import sns_sign  # noqa: E402

FIU_RUN = shutil.which("fiu-run")
FIU_CTRL = shutil.which("fiu-ctrl")
SWAKS = shutil.which("swaks")
CURL = shutil.which("curl")
POINTS = os.environ.get("DELIVERYD_FAULT_POINTS") == "yes"
SANITIZED = "sanitize" in os.environ.get("DELIVERYD_SANITIZERS", "")
# fiu-run preloads a small library (no malloc wrapper without -x); under
# ASan the preload order check would refuse to start.
ENV = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))}

OURS = "pedidos@pizzaria.example"
MAIL_TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-inbound"
HANG = "deliveryd/mail-parser/hang"
DIED = r"Mail parser process \d+ (died of signal|exited with status)"
STOPPED = r"Mail parser process \d+ took longer than mail.parser_timeout"


def mail(message_id, text="quero 2 calabresa"):
    return ("From: Ana <ana@example.com>\r\nTo: %s\r\nSubject: Pedido\r\nMessage-ID: <%s>\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\n\r\n%s\r\n" % (OURS, message_id, text)).encode()


class Base(DaemonTestCase):
    def start(self, overrides=(), fiu=None, **kw):
        """A daemon with LMTP, SNS and our address; fiu: None, or the
        fiu-run commands to start it with (and its control fifo, for fiu-ctrl)."""
        self.sns = SnsFixture(self.tmp)
        self.lmtp = os.path.join(self.tmp, "lmtp.sock")
        self.ctrl = os.path.join(self.tmp, "fiu-ctrl")
        wrapper = []
        if fiu is not None:
            wrapper = [FIU_RUN, "-f", self.ctrl] + [a for c in fiu for a in ("-c", c)]
            kw["env"] = dict(ENV, **kw.get("env", {}))
        d = self.daemon(overrides=["lmtp.listen=unix:" + self.lmtp, "mail.addresses=" + OURS,
                                   "sns.topics=%s %s" % (SMS_TOPIC, MAIL_TOPIC),
                                   "sns.certificate_cache=" + self.sns.cache] + list(overrides),
                        wrapper=wrapper, **kw)
        d.start()
        self.url = "http://127.0.0.1:%d" % d.http_port()
        return d

    def parser(self, d):
        return d.stats()["mail_parser"]

    def wait_parser(self, d, pred, what):
        deadline = time.monotonic() + TIMEOUT
        while True:
            p = self.parser(d)
            if pred(p):
                return p
            self.assertLess(time.monotonic(), deadline, "the mail parser never got %s: %r" % (what, p))
            time.sleep(0.02)

    def swaks(self, message, background=False):
        path = os.path.join(self.tmp, "mail-%s.eml" % uuid.uuid4().hex)
        with open(path, "wb") as f:
            f.write(message)
        cmd = [SWAKS, "--protocol", "LMTP", "--socket", self.lmtp, "--from", "ana@example.com", "--to", OURS,
               "--data", "@" + path, "--timeout", str(int(TIMEOUT))]
        if background:
            return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT).stdout

    def ses(self, message):
        with open(os.path.join(VECTORS, "ses", "received-sns-action-utf8.json"), encoding="utf-8") as f:
            n = json.load(f)
        n["receipt"]["recipients"] = [OURS]
        n["receipt"]["action"]["encoding"] = "BASE64"
        n["mail"]["messageId"] = uuid.uuid4().hex
        n["content"] = base64.b64encode(message).decode()
        with open(os.path.join(VECTORS, "sms", "constructed-two-way-inbound-in-sns-envelope.json"),
                  encoding="utf-8") as f:
            m = json.load(f)
        m.update(Message=json.dumps(n), MessageId=str(uuid.uuid4()), TopicArn=MAIL_TOPIC,
                 Subject="Amazon SES Email Receipt Notification")
        path = os.path.join(self.tmp, "sns-%s.json" % uuid.uuid4().hex)
        return SnsFixture.write(sns_sign.sign(m, self.sns.key), path)

    def post(self, body_path, background=False):
        cmd = [CURL, "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", str(TIMEOUT), "-H",
               "x-amz-sns-message-type: Notification", "--data-binary", "@" + body_path, self.url + "/webhooks/sns"]
        if background:
            return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return self.http_answer(subprocess.run(cmd, capture_output=True, text=True).stdout)

    @staticmethod
    def http_answer(out):
        text, _, code = out.rpartition("\n")
        return int(code), text

    def inbox(self, d):
        return json.loads(d.ctl("inbox", "--json").stdout)

    def fiu_ctrl(self, pid, command):
        subprocess.run([FIU_CTRL, "-f", self.ctrl, "-c", command, str(pid)], check=True, timeout=TIMEOUT,
                       capture_output=True)


@unittest.skipUnless(SWAKS and CURL and os.path.isdir(VECTORS), "swaks, curl or the shared vectors missing")
class MailParserProcess(Base):
    def test_a_process_of_its_own(self):
        d = self.start(env={"AWS_SECRET_ACCESS_KEY": "not-for-the-parser"})
        p = self.parser(d)
        pid, daemon = p["pid"], d.stats()["pid"]
        self.assertIsInstance(pid, int)
        self.assertNotEqual(pid, daemon)
        self.assertEqual(p["state"], "idle")
        with open("/proc/%d/status" % pid) as f:
            status = dict(line.split(":\t", 1) for line in f.read().splitlines())
        self.assertEqual(int(status["PPid"]), daemon)
        self.assertEqual(status["NoNewPrivs"].strip(), "1")
        # its socket, /dev/null, and a pipe for stderr: no listener, no store, no journal
        fds = {int(f): os.readlink("/proc/%d/fd/%s" % (pid, f)) for f in os.listdir("/proc/%d/fd" % pid)}
        self.assertEqual(sorted(fds), [0, 1, 2, 3], fds)
        self.assertEqual((fds[0], fds[1]), ("/dev/null", "/dev/null"))
        self.assertTrue(fds[2].startswith("pipe:"), fds)
        self.assertTrue(fds[3].startswith("socket:"), fds)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            self.assertEqual(f.read().rstrip(b"\0"), b"deliveryd: mail parser")
        with open("/proc/%d/comm" % pid) as f:
            self.assertEqual(f.read().strip(), "mail-parser")
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read()
        for secret in (b"AWS_SECRET_ACCESS_KEY", b"NOTIFY_SOCKET"):
            self.assertNotIn(secret, env)
        with open("/proc/%d/limits" % pid) as f:
            limit = [line.split()[3] for line in f if line.startswith("Max address space")][0]
        # sanitizer builds need terabytes of address space for their shadow memory
        self.assertEqual(limit, "unlimited" if SANITIZED else str(256 * 1024 * 1024))

        # mail from all three doors goes through it
        self.assertIn("250 2.0.0 delivered as inbox message 1", self.swaks(mail("one@example.com")))
        self.assertEqual(self.post(self.ses(mail("two@example.com", "onde está meu pedido?"))), (200, "OK\n"))
        path = os.path.join(self.tmp, "three.eml")
        with open(path, "wb") as f:
            f.write(mail("three@example.com", "cardápio"))
        self.assertIn("inbox message 3", d.ctl("inject", "mail", path).stdout)
        self.assertEqual([(r["source"], r["body"]) for r in self.inbox(d)],
                         [("lmtp", "quero 2 calabresa"), ("sns", "onde está meu pedido?"), ("inject", "cardápio")])
        p = self.parser(d)
        self.assertEqual((p["pid"], p["parsed"], p["started"], p["died"]), (pid, 3, 1, 0))
        self.assertEqual(d.stop(), 0)
        # it went with the daemon, reaped
        self.assertFalse(os.path.exists("/proc/%d" % pid))


@unittest.skipUnless(SWAKS and CURL and os.path.isdir(VECTORS), "swaks, curl or the shared vectors missing")
@unittest.skipUnless(FIU_RUN and FIU_CTRL and POINTS, "built without libfiu failure points, or fiu-run missing")
class MailParserFailures(Base):
    def stop(self, d):
        # libfiu's remote-control thread, started before main(), does not
        # block SIGTERM: under fiu-run the daemon ends by the signal.
        self.assertIn(d.stop(), (0, -signal.SIGTERM))

    def hang_next(self, d):
        """The parser process running now will never finish its next message."""
        pid = self.parser(d)["pid"]
        self.fiu_ctrl(pid, "enable name=" + HANG)
        return pid

    def test_killed_while_parsing(self):
        d = self.start(fiu=[])
        d.allowed = (DIED,)

        # LMTP: 451 for that message, and the MTA's retry is delivered
        pid = self.hang_next(d)
        client = self.swaks(mail("kill-1@example.com"), background=True)
        self.wait_parser(d, lambda p: p["state"] == "parsing", "the message")
        os.kill(pid, signal.SIGKILL)
        out = client.communicate(timeout=TIMEOUT)[0]
        self.assertIn("451 4.3.0 message could not be read now, try again later", out)
        d.wait_log(r"^<4>Mail parser process %d died of signal Killed while parsing a message" % pid)
        self.assertEqual(self.inbox(d), [])
        self.assertIn("250 2.0.0 delivered as inbox message 1", self.swaks(mail("kill-1@example.com")))

        # SNS (SES): 503, and SNS's retry of the same notification is stored
        pid = self.hang_next(d)
        body = self.ses(mail("kill-2@example.com", "onde está meu pedido?"))
        client = self.post(body, background=True)
        self.wait_parser(d, lambda p: p["state"] == "parsing", "the notification")
        os.kill(pid, signal.SIGKILL)
        self.assertEqual(self.http_answer(client.communicate(timeout=TIMEOUT)[0]),
                         (503, "mail could not be read now, try again\n"))
        self.assertEqual(self.post(body), (200, "OK\n"))
        self.assertEqual([r["body"] for r in self.inbox(d)], ["quero 2 calabresa", "onde está meu pedido?"])
        p = self.parser(d)
        self.assertEqual((p["died"], p["timed_out"], p["state"]), (2, 0, "idle"))
        self.assertNotEqual(p["pid"], pid)
        self.stop(d)

    def test_deadline(self):
        d = self.start(["mail.parser_timeout=1s"], fiu=[])
        d.allowed = (STOPPED,)

        pid = self.hang_next(d)
        out = self.swaks(mail("slow-1@example.com"))
        self.assertIn("451 4.3.0 message could not be read now, try again later", out)
        d.wait_log(r"^<4>Mail parser process %d took longer than mail.parser_timeout over one message; stopping it"
                   % pid)
        # the next message is read by a new process, in time
        self.assertIn("250 2.0.0 delivered as inbox message 1", self.swaks(mail("slow-2@example.com")))

        # inject: an error, nothing stored; then it works
        self.hang_next(d)
        path = os.path.join(self.tmp, "slow.eml")
        with open(path, "wb") as f:
            f.write(mail("slow-3@example.com", "cardápio"))
        p = d.ctl("inject", "mail", path, check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("the mail could not be read now (Connection timed out); nothing was received, try again",
                      p.stderr)
        self.assertIn("inbox message 2", d.ctl("inject", "mail", path).stdout)

        self.assertEqual([r["body"] for r in self.inbox(d)], ["quero 2 calabresa", "cardápio"])
        s = self.parser(d)
        self.assertEqual((s["timed_out"], s["died"], s["state"]), (2, 2, "idle"))
        self.stop(d)

    def test_dies_at_every_start(self):
        # libfiu's preload library keeps the commands it was started with
        # to the end: not ours to free (make check-valgrind).
        supp = os.path.join(self.tmp, "libfiu.supp")
        with open(supp, "w") as f:
            f.write("{\n  libfiu-run-preload-commands\n  Memcheck:Leak\n  match-leak-kinds: definite\n"
                    "  fun:malloc\n  fun:strdup\n  obj:*/fiu_run_preload.so\n}\n")
        d = self.start(fiu=["enable name=deliveryd/mail-parser/start"],
                       env={"VALGRIND_OPTS": "--suppressions=" + supp})
        d.allowed = (DIED, r"mail parser\[\d+\]")
        daemon = d.stats()["pid"]
        self.wait_parser(d, lambda p: p["died"] >= 1, "to die")

        # Each mail costs one start, and gets 451; the starts wait longer
        # and longer (the daemon does not spin).
        clients = [self.swaks(mail("dead-%d@example.com" % i), background=True) for i in range(4)]
        for c in clients:
            self.assertIn("451 4.3.0 message could not be read now, try again later", c.communicate(timeout=TIMEOUT)[0])
        p = self.parser(d)
        self.assertLessEqual(p["started"], 1 + len(clients), p)
        self.assertGreaterEqual(p["failures_in_a_row"], 3, p)
        self.assertGreater(p["restart_delay_ms"], 0, p)

        # Everything else is answered as usual meanwhile.
        with urllib.request.urlopen(self.url + "/healthz", timeout=TIMEOUT) as r:
            self.assertEqual(r.status, 200)
        sms = SnsFixture.write(self.sns.sms("quero 1 coca"), os.path.join(self.tmp, "sms.json"))
        self.assertEqual(self.post(sms), (200, "OK\n"))
        self.assertIn("inbox message", d.ctl("inject", "sms", "+5511987654322", "cardapio").stdout)
        self.assertEqual([r["body"] for r in self.inbox(d)], ["quero 1 coca", "cardapio"])

        # With no mail waiting no process is started, and the daemon is idle.
        def cpu():
            with open("/proc/%d/stat" % daemon) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        before, used, start = self.parser(d)["started"], cpu(), time.monotonic()
        time.sleep(2)
        used, elapsed = cpu() - used, time.monotonic() - start
        self.assertEqual(self.parser(d)["started"], before)
        self.assertLess(used, elapsed / 2, "the daemon used %.2fs of CPU in %.2fs while waiting" % (used, elapsed))
        self.stop(d)


if __name__ == "__main__":
    main()
