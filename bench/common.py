# SPDX-License-Identifier: MIT
"""Shared pieces of bench/bench.py and bench/soak.py: paths, a fast SNS
signer, daemons started through the integration harness, small statistics.

Security: test tool.  The keys it makes are throw-away; every server it
talks to is one it started on 127.0.0.0/8.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.dirname(HERE)
TOP_BUILDDIR = os.environ.get("top_builddir") or TOP_SRCDIR
os.environ.setdefault("top_srcdir", TOP_SRCDIR)
os.environ.setdefault("top_builddir", TOP_BUILDDIR)
sys.path.insert(0, os.path.join(TOP_SRCDIR, "tests", "integration"))

import harness  # noqa: E402

BUILD = os.environ.get("BENCH_BUILD_DIR") or os.path.join(TOP_BUILDDIR, "bench-build")
RESULTS = os.environ.get("BENCH_RESULTS_DIR") or os.path.join(TOP_BUILDDIR, "bench", "results")
DEFINITION = os.path.join(TOP_SRCDIR, "statemachine", "order.asl.json")
MAIL_TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-inbound"
API_TOKEN = "bench-token"


def need(*programs):
    """Exit with a clear message naming bench/setup when a program is missing."""
    missing = [p for p in programs if not shutil.which(p)]
    if missing:
        raise SystemExit("bench: missing %s; run bench/setup (as root) first" % ", ".join(missing))


class Signer(harness.SnsFixture):
    """The integration tests' SNS signing key and certificate cache
    (sns_sign.sign() signs in process when the cryptography module is
    there), with makers of signed SMS and e-mail bodies for the benches."""

    def __init__(self, tmp):
        super().__init__(tmp)
        with open(os.path.join(harness.VECTORS, "sms", "constructed-two-way-inbound-in-sns-envelope.json"),
                  encoding="utf-8") as f:
            self.sms_template = json.load(f)

    def sms(self, sender, text):
        """A signed two-way SMS notification; returns (body, MessageId, inboundMessageId)."""
        m = dict(self.sms_template)
        payload = json.loads(m["Message"])
        inbound = str(uuid.uuid4())
        payload.update(originationNumber=sender, messageBody=text, inboundMessageId=inbound)
        mid = str(uuid.uuid4())
        m.update(Message=json.dumps(payload), MessageId=mid, TopicArn=harness.SMS_TOPIC)
        return json.dumps(self.sign(m)), mid, inbound

    def mail(self, sender, recipient, text):
        """A signed SES-inbound notification carrying a small mail; returns (body, MessageId, Message-ID)."""
        msgid = "<%s@bench.example>" % uuid.uuid4()
        raw = ("From: %s\r\nTo: %s\r\nSubject: pedido\r\nMessage-ID: %s\r\nDate: Fri, 04 Dec 2026 12:00:00 +0000\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n" % (sender, recipient, msgid, text))
        with open(os.path.join(harness.VECTORS, "ses", "received-sns-action-utf8.json"), encoding="utf-8") as f:
            ses = json.load(f)
        ses["receipt"]["recipients"] = [recipient]
        ses["receipt"]["action"]["encoding"] = "BASE64"
        ses["receipt"]["dmarcVerdict"] = {"status": "PASS"}
        ses["mail"]["messageId"] = uuid.uuid4().hex
        ses["content"] = base64.b64encode(raw.encode()).decode()
        mid = str(uuid.uuid4())
        m = dict(self.sms_template)
        m.update(Message=json.dumps(ses), MessageId=mid, TopicArn=MAIL_TOPIC,
                 Subject="Amazon SES Email Receipt Notification")
        return json.dumps(self.sign(m)), mid, msgid


def daemon(tmp, signer=None, overrides=(), wrapper=(), state=None, env=None):
    """A harness.Daemon (not started) for the benches: SNS topics and the
    signer's certificate cache, the order workflow of the source tree,
    enough connections for wrk, the API token, SMS sends not throttled."""
    o = ["engine.definition=" + DEFINITION,
         "http.api_token=" + API_TOKEN,
         "http.public_url=https://pizza.example",
         "http.max_connections=4096",
         "http.max_connections_per_ip=4096",
         "pix.key=pix@pizza.example",
         "pix.merchant_city=SAO PAULO",
         "sms.max_per_second=1000"]
    if signer:
        o += ["sns.topics=%s %s" % (harness.SMS_TOPIC, MAIL_TOPIC), "sns.certificate_cache=" + signer.cache]
    return harness.Daemon(tmp, overrides=o + list(overrides), wrapper=wrapper, state=state, env=env)


def set_stock(d, n):
    """Every product of the daemon's catalog copy gets n units (before its first start)."""
    harness.set_stock(d.config, n)


def db(d_or_path, ro=True):
    import sqlite3
    path = d_or_path if isinstance(d_or_path, str) else os.path.join(d_or_path.state, "deliveryd.sqlite")
    if ro:
        return sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    return sqlite3.connect(path, timeout=30)


def cpu_seconds(pid):
    """User + system CPU time a process has used, in seconds (None when it
    is gone): unlike wall-clock rates, it hardly moves when other work
    shares the machine."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def rss_kib(pid):
    """VmRSS of a process in KiB (None when it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def machine():
    """nproc, CPU model, RAM, the disk under the build directory, kernel."""
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    try:
        src = subprocess.run(["df", "--output=source,fstype", BUILD if os.path.exists(BUILD) else "/"],
                             capture_output=True, text=True).stdout.split("\n")[1].split()
    except (OSError, IndexError):
        src = ["?", "?"]
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(mem_kib / 1048576, 1),
            "disk": " ".join(src), "kernel": os.uname().release,
            "sqlite": subprocess.run(["sqlite3", "--version"], capture_output=True, text=True).stdout.split(" ")[0]
            if shutil.which("sqlite3") else "?"}


def write_json(name, data):
    os.makedirs(RESULTS, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = os.path.join(RESULTS, "%s-%s.json" % (name, stamp))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    return path
