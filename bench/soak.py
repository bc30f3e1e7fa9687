#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make soak: deliveryd killed, starved and stalled while messages flow,
then an invariant checker over the whole history in its store.

  kill      SOAK_MESSAGES mixed messages (SNS SMS, SNS e-mail, LMTP) from
            senders that retry until acknowledged, as SNS and an MTA do;
            customers order and a driver moves orders to DELIVERED; the
            daemon is killed with SIGKILL at SOAK_KILLS random points and
            restarted each time
  faults    libfiu (fiu-run -x): EIO and ENOSPC on write/pwrite, EIO on
            fsync and fdatasync, malloc failure, each while messages flow;
            every answer must be 2xx or 5xx (HTTP), 250 or 4xx (LMTP)
  slowloris SOAK_SLOW connections trickling header bytes, and opened
            again when the daemon closes them, under the default
            connection limits, while legitimate requests go on

Prints a report and writes bench/results/soak-STAMP.json.  Sizes:
SOAK_KILLS (200), SOAK_MESSAGES (10000), SOAK_SLOW (1000),
SOAK_SLOW_SECONDS (30), SOAK_SEED, SOAK_ONLY=kill,faults,slowloris.
Exit status 1 when an invariant is broken.

Security: test tool.  Everything it starts listens on 127.0.0.0/8 or a
Unix socket in its own directory.
"""

import http.client
import json
import os
import queue
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import harness  # noqa: E402

ENV = os.environ.get
KILLS = int(ENV("SOAK_KILLS", "200"))
MESSAGES = int(ENV("SOAK_MESSAGES", "10000"))
SLOW = int(ENV("SOAK_SLOW", "1000"))
SLOW_SECONDS = float(ENV("SOAK_SLOW_SECONDS", "30"))
SEED = int(ENV("SOAK_SEED", str(int(time.time()))))
ONLY = [s for s in ENV("SOAK_ONLY", "kill,faults,slowloris").split(",") if s]
OURS = "pedidos@pizzaria.example"
STOCK = 1000000
SENDERS = 8
TEXTS = ["quero 1 calabresa pra Rua Augusta 1500, pago no cartao", "sim", "onde esta meu pedido?", "cardapio"]


def log(*a):
    print("soak:", *a, file=sys.stderr, flush=True)


# ---- the traffic ---------------------------------------------------------------

class Message:
    """One message to deliver until acknowledged: kind sms|mail (SNS) or lmtp."""

    __slots__ = ("kind", "customer", "body", "keys", "raw", "acked", "tries", "answers")

    def __init__(self, kind, customer, body=None, keys=(), raw=None):
        self.kind, self.customer, self.body, self.keys, self.raw = kind, customer, body, list(keys), raw
        self.acked = False
        self.tries = 0
        self.answers = []


def make_messages(signer, n, rng):
    """n messages: each customer's texts in order (order, yes, status, menu,
    again), 60 % SMS over SNS, 20 % e-mail over SNS, 20 % LMTP."""
    out = []
    i = 0
    while len(out) < n:
        r = rng.random()
        if r < 0.6:
            who = "+55116%08d" % i
            for t in TEXTS:
                body, mid, inbound = signer.sms(who, t)
                out.append(Message("sms", who, body, ["sns:" + mid, "sms:" + inbound]))
        else:
            who = "cliente%d@example.com" % i
            for t in TEXTS[2:]:
                if r < 0.8:
                    body, mid, msgid = signer.mail(who, OURS, t)
                    out.append(Message("mail", who, body, ["sns:" + mid, "mail:%s %s" % (msgid.strip("<>"), OURS),
                                                           "mail:%s %s" % (msgid, OURS)]))
                else:
                    msgid = "<%s@lmtp.bench.example>" % os.urandom(8).hex()
                    raw = ("From: %s\r\nTo: %s\r\nSubject: pedido\r\nMessage-ID: %s\r\n"
                           "Date: Fri, 04 Dec 2026 12:00:00 +0000\r\n\r\n%s\r\n" % (who, OURS, msgid, t))
                    out.append(Message("lmtp", who, keys=["mail:%s %s" % (msgid.strip("<>"), OURS),
                                                          "mail:%s %s" % (msgid, OURS)], raw=raw))
        i += 1
    return out[:n]


def lmtp_send(path, m, timeout=10):
    """One LMTP transaction; returns the reply code to DATA (or raises OSError)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if not line:
                raise OSError("connection closed")
            if line[3:4] != b"-":
                return int(line[:3])

    try:
        code = reply()
        if code != 220:
            return code  # 421: refused before the greeting, an answer all the same
        for cmd in (b"LHLO soak.example\r\n", b"MAIL FROM:<%s>\r\n" % m.customer.encode(),
                    b"RCPT TO:<%s>\r\n" % OURS.encode()):
            s.sendall(cmd)
            code = reply()
            if code >= 400:
                return code
        s.sendall(b"DATA\r\n")
        code = reply()
        if code != 354:
            return code
        data = m.raw.replace("\r\n.", "\r\n..").encode() + b".\r\n"
        s.sendall(data)
        code = reply()
        s.sendall(b"QUIT\r\n")
        return code
    finally:
        f.close()
        s.close()


def http_post(port, path, body, headers, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, body=body, headers=headers)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


class Target:
    """Where the daemon is now (it moves on each restart)."""

    def __init__(self):
        self.port = None
        self.lmtp = None
        self.lock = threading.Lock()


def send_one(target, m):
    """Try m once; returns the answer code or None for a connection error."""
    try:
        if m.kind == "lmtp":
            return lmtp_send(target.lmtp, m)
        if not target.port:
            return None
        return http_post(target.port, "/webhooks/sns", m.body,
                         {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"})
    except (OSError, http.client.HTTPException):
        return None


def sender(target, q, stop, pace=None):
    """Deliver each message of q until it is acknowledged (2xx / 250); a
    customer's messages are all in one queue, so they arrive in order."""
    while not stop.is_set():
        try:
            m = q.get(timeout=0.1)
        except queue.Empty:
            return
        while not stop.is_set():
            m.tries += 1
            code = send_one(target, m)
            m.answers.append(code)
            if code is not None and (200 <= code < 300 or code == 250):
                m.acked = True
                break
            time.sleep(0.02)
        if pace:
            pace()


def queues_for(messages):
    qs = [queue.Queue() for _ in range(SENDERS)]
    for m in messages:
        qs[hash(m.customer) % SENDERS].put(m)
    return qs


# ---- the order driver -----------------------------------------------------------

NEXT = {"CONFIRMED": "PREPARING", "PREPARING": "READY", "READY": "IN_DELIVERY", "IN_DELIVERY": "DELIVERED"}


def drive_orders(target, state, stop):
    """Moves every confirmed order one status on, again and again, through
    the HTTP API; refusals and dead daemons are expected."""
    path = os.path.join(state, "deliveryd.sqlite")
    while not stop.is_set():
        try:
            db = common.db(path)
            rows = db.execute("SELECT id, status FROM orders WHERE status IN ('CONFIRMED', 'PREPARING', 'READY', "
                              "'IN_DELIVERY')").fetchall()
            db.close()
        except Exception:  # the store may be mid-recovery
            rows = []
        for oid, status in rows:
            if stop.is_set():
                return
            try:
                http_post(target.port, "/api/orders/%s/status" % oid, json.dumps({"status": NEXT[status]}),
                          {"Authorization": "Bearer " + common.API_TOKEN, "Content-Type": "application/json"},
                          timeout=5)
            except (OSError, http.client.HTTPException, TypeError):
                pass
        time.sleep(0.05)


# ---- the invariants -------------------------------------------------------------

def check_history(state, messages, catalog_stock):
    """Everything the store's history must satisfy; returns (figures, broken)."""
    db = common.db(os.path.join(state, "deliveryd.sqlite"))
    keys = dict(db.execute("SELECT key, inbox_id FROM inbox_keys"))
    inbox_rows = db.execute("SELECT count(*) FROM inbox").fetchone()[0]
    acked = [m for m in messages if m.acked]
    missing, ids = 0, {}
    for m in acked:
        found = {keys[k] for k in m.keys if k in keys}
        if not found:
            missing += 1
        for i in found:
            ids.setdefault(i, set()).add(id(m))
    stored = {i for m in messages for k in m.keys if k in keys for i in [keys[k]]}
    # Two rows for one message (a key each), or one row claimed by two messages.
    twice = sum(1 for m in messages if len({keys[k] for k in m.keys if k in keys}) > 1)
    shared = sum(1 for s in ids.values() if len(s) > 1)
    orders = db.execute("SELECT count(*) FROM orders").fetchone()[0]
    executions = db.execute("SELECT count(*) FROM executions").fetchone()[0]
    orders_without = db.execute("SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM executions e "
                                "WHERE e.name = o.id OR e.name LIKE '%' || o.id || '%')").fetchone()[0]
    history_twice = db.execute("SELECT count(*) FROM (SELECT order_id, status FROM order_history GROUP BY order_id, "
                               "status HAVING count(*) > 1)").fetchone()[0]
    notify_twice = db.execute("SELECT count(*) FROM (SELECT order_id, body FROM outbox WHERE order_id IS NOT NULL "
                              "GROUP BY order_id, body HAVING count(*) > 1)").fetchone()[0]
    reservation_wrong = db.execute(
        "SELECT count(*) FROM stock_reservations r WHERE r.qty != (SELECT sum(qty) FROM order_items i "
        "WHERE i.order_id = r.order_id AND i.sku = r.sku)").fetchone()[0]
    stock_wrong = []
    for sku, available in db.execute("SELECT sku, available FROM stock"):
        held = db.execute("SELECT coalesce(sum(i.qty), 0) FROM order_items i JOIN orders o ON o.id = i.order_id "
                          "WHERE i.sku = ? AND o.status != 'CANCELLED'", (sku,)).fetchone()[0]
        initial = catalog_stock.get(sku)
        if initial is not None and initial > 0 and initial - available != held:
            stock_wrong.append((sku, initial, available, held))
    statuses = dict(db.execute("SELECT status, count(*) FROM orders GROUP BY status"))
    ex_status = dict(db.execute("SELECT status, count(*) FROM executions GROUP BY status"))
    possible_dup = db.execute("SELECT count(*) FROM outbox WHERE possible_duplicate = 1").fetchone()[0]
    outbox = dict(db.execute("SELECT status, count(*) FROM outbox GROUP BY status"))
    db.close()
    figures = {
        "messages": len(messages), "acknowledged": len(acked), "inbox_rows": inbox_rows,
        "stored_not_acknowledged": len(stored) - len({keys[k] for m in acked for k in m.keys if k in keys}),
        "acknowledged_missing": missing, "stored_twice": twice + shared,
        "orders": orders, "orders_by_status": statuses, "executions": executions,
        "executions_by_status": ex_status, "orders_without_execution": orders_without,
        "executions_started_twice": max(0, executions - orders),
        "status_applied_twice": history_twice, "notification_twice": notify_twice,
        "reservation_not_order_qty": reservation_wrong, "stock_wrong": stock_wrong,
        "possible_duplicate_sends": possible_dup, "outbox_by_status": outbox,
        "tries_max": max((m.tries for m in messages), default=0),
        "sent_again_after_no_answer": sum(1 for m in messages if m.tries > 1),
    }
    broken = []
    for k in ("acknowledged_missing", "stored_twice", "executions_started_twice", "orders_without_execution",
              "status_applied_twice", "reservation_not_order_qty"):
        if figures[k]:
            broken.append("%s = %s" % (k, figures[k]))
    if stock_wrong:
        broken.append("stock counts wrong: %s" % stock_wrong[:5])
    if len(acked) != len(messages):
        broken.append("only %d of %d messages were ever acknowledged" % (len(acked), len(messages)))
    return figures, broken


def checker_self_check(tmp, state, messages, stock0):
    """The checker must see each kind of damage: on a copy of the soaked
    store, lose an acknowledged message, store one twice, apply a status
    twice, start an execution twice and take one unit of stock; returns
    the kinds it missed."""
    import sqlite3
    copy = os.path.join(tmp, "damaged")
    shutil.copytree(state, copy)
    acked = [m for m in messages if m.acked]
    lost = acked[0]
    twice = next(m for m in acked[1:] if m.kind == "sms")
    db = sqlite3.connect(os.path.join(copy, "deliveryd.sqlite"), isolation_level=None)
    db.execute("BEGIN")
    for k in lost.keys:
        db.execute("DELETE FROM inbox_keys WHERE key = ?", (k,))
    row = db.execute("SELECT inbox_id FROM inbox_keys WHERE key = ?", (twice.keys[1],)).fetchone()[0]
    cols = ("channel, source, customer, recipient, body, subject, message_id, in_reply_to, refs, authenticated, "
            "status, reason, received_at")
    new = db.execute("INSERT INTO inbox (%s) SELECT %s FROM inbox WHERE id = ?" % (cols, cols), (row,)).lastrowid
    db.execute("UPDATE inbox_keys SET inbox_id = ? WHERE key = ?", (new, twice.keys[1]))
    db.execute("INSERT INTO order_history (order_id, at, status, reason) SELECT order_id, at, status, reason "
               "FROM order_history ORDER BY id LIMIT 1")
    db.execute("INSERT INTO executions (name, definition_hash, status, state, transitions, created_at, updated_at) "
               "SELECT name || '-again', definition_hash, status, state, transitions, created_at, updated_at "
               "FROM executions LIMIT 1")
    sku = next(k for k, v in sorted(stock0.items()) if v > 0)
    db.execute("UPDATE stock SET available = available - 1 WHERE sku = ?", (sku,))
    db.execute("COMMIT")
    db.close()
    figures, _ = check_history(copy, messages, stock0)
    shutil.rmtree(copy, ignore_errors=True)
    expect = {"acknowledged_missing": figures["acknowledged_missing"] == 1,
              "stored_twice": figures["stored_twice"] >= 1,
              "status_applied_twice": figures["status_applied_twice"] >= 1,
              "executions_started_twice": figures["executions_started_twice"] >= 1,
              "stock_wrong": any(w[0] == sku for w in figures["stock_wrong"])}
    return [k for k, ok in expect.items() if not ok]


def catalog_stock(d):
    import re
    out, sku = {}, None
    with open(os.path.join(os.path.dirname(d.config), "catalog.conf"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^\[(.+)\]", line)
            if m:
                sku = m.group(1)
            m = re.match(r"^stock = (\d+)", line)
            if m and sku:
                out[sku] = int(m.group(1))
    return out


# ---- kill -9 ------------------------------------------------------------------

def soak_kill(tmp, res):
    rng = random.Random(SEED)
    signer = common.Signer(tmp)
    log("kill: signing %d messages" % MESSAGES)
    messages = make_messages(signer, MESSAGES, rng)
    lmtp = os.path.join(tmp, "lmtp.sock")
    state = os.path.join(tmp, "state")
    extra = ["lmtp.listen=unix:" + lmtp, "mail.addresses=" + OURS, "mail.trust_local_mta=yes"]
    target = Target()
    target.lmtp = lmtp
    daemons = []

    def start():
        d = common.daemon(tmp, signer, overrides=extra, state=state)
        if daemons:
            d.config = daemons[0].config
        else:
            common.set_stock(d, STOCK)
        d.start()
        target.port = d.http_port()
        daemons.append(d)
        return d

    d = start()
    stock0 = catalog_stock(d)
    stop = threading.Event()
    acked_count = lambda: sum(1 for m in messages if m.acked)  # noqa: E731
    threads = [threading.Thread(target=sender, args=(target, q, stop)) for q in queues_for(messages)]
    threads.append(threading.Thread(target=drive_orders, args=(target, state, stop)))
    for t in threads:
        t.start()
    kills, ready_ms, t0 = [], [], time.monotonic()
    for k in range(KILLS):
        # The k-th kill at a random point of the k-th slice of the traffic.
        goal = int((k + rng.random()) * MESSAGES / KILLS)
        deadline = time.monotonic() + 120
        while acked_count() < goal and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.random() * 0.02)
        d = daemons[-1]
        kills.append(acked_count())
        d.proc.kill()
        d.proc.wait()
        d.close()
        target.port = None
        t1 = time.monotonic()
        d = start()
        ready_ms.append((time.monotonic() - t1) * 1000)
        if (k + 1) % 20 == 0:
            log("kill: %d kills, %d of %d acknowledged" % (k + 1, acked_count(), MESSAGES))
    for t in threads[:-1]:
        t.join(timeout=600)
    log("kill: all sent; letting the orders finish")
    d = daemons[-1]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        s = d.stats()
        db = common.db(d)
        open_orders = db.execute("SELECT count(*) FROM orders WHERE status NOT IN ('DELIVERED', 'CANCELLED')"
                                 ).fetchone()[0]
        db.close()
        if s["inbox"]["incoming"] + s["inbox"]["active"] == 0 and open_orders == 0:
            break
        time.sleep(0.5)
    stop.set()
    threads[-1].join()
    elapsed = time.monotonic() - t0
    code = d.stop()
    figures, broken = check_history(state, messages, stock0)
    missed = checker_self_check(tmp, state, messages, stock0)
    if missed:
        broken.append("the checker did not see damage it was shown: %s" % ", ".join(missed))
    warnings = [w for x in daemons for w in x.warnings()]
    res["kill"] = dict(figures, kills=len(kills), checker_self_check_missed=missed, seconds=round(elapsed, 1), seed=SEED,
                       restart_ready_ms_median=round(sorted(ready_ms)[len(ready_ms) // 2], 1) if ready_ms else None,
                       restart_ready_ms_max=round(max(ready_ms), 1) if ready_ms else None,
                       last_exit_status=code, warnings=len(warnings), warning_examples=warnings[:5], broken=broken)
    for x in daemons:
        x.close()


# ---- libfiu faults -------------------------------------------------------------

FAULTS = [
    # SQLite writes with pwrite() and syncs with fdatasync(); write() and
    # fsync() are the certificate cache's and the log's.
    ("write EIO", "posix/io/rw/write", 5, 0.05),
    ("write ENOSPC", "posix/io/rw/write", 28, 0.05),
    ("pwrite EIO", "posix/io/rw/pwrite", 5, 0.05),
    ("pwrite ENOSPC", "posix/io/rw/pwrite", 28, 0.05),
    ("fsync EIO", "posix/io/sync/fsync", 5, 0.2),
    ("fdatasync EIO", "posix/io/sync/fdatasync", 5, 0.2),
    ("malloc", "libc/mm/malloc", 12, 0.002),
]


def soak_faults(tmp, res):
    fiu_run, fiu_ctrl = shutil.which("fiu-run"), shutil.which("fiu-ctrl")
    if not fiu_run or not fiu_ctrl:
        res["faults"] = {"skipped": "fiu-run/fiu-ctrl not installed (bench/setup)"}
        return
    out = []
    for name, point, errno_, prob in FAULTS:
        ftmp = tempfile.mkdtemp(prefix="fault-", dir=tmp)
        signer = common.Signer(ftmp)
        rng = random.Random(SEED)
        messages = make_messages(signer, 300, rng)
        lmtp = os.path.join(ftmp, "lmtp.sock")
        state = os.path.join(ftmp, "state")
        ctrl = os.path.join(ftmp, "fiu-ctrl")
        extra = ["lmtp.listen=unix:" + lmtp, "mail.addresses=" + OURS, "mail.trust_local_mta=yes"]
        d = common.daemon(ftmp, signer, overrides=extra, state=state, wrapper=[fiu_run, "-x", "-f", ctrl])
        d.start()
        target = Target()
        target.port, target.lmtp = d.http_port(), lmtp
        # The first 100 with a healthy disk, then the fault, each message tried once.
        answers = []
        for i, m in enumerate(messages):
            if i == 100:
                subprocess.run([fiu_ctrl, "-f", ctrl, "-c", "enable_random name=%s,probability=%s,failinfo=%d"
                                % (point, prob, errno_), str(d.proc.pid)], check=False, timeout=30,
                               capture_output=True)
            if d.proc.poll() is not None:
                break
            code = send_one(target, m)
            m.tries = 1
            m.acked = code is not None and (200 <= code < 300 or code == 250)
            answers.append((m.kind, code, i >= 100))
        # A failed write or fsync makes the daemon drain and exit 1 by itself.
        deadline = time.monotonic() + 20
        while d.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        exited = d.proc.poll() is not None
        if not exited:
            subprocess.run([fiu_ctrl, "-f", ctrl, "-c", "disable name=%s" % point, str(d.proc.pid)], check=False,
                           timeout=30, capture_output=True)
            d.stop()
        status = d.wait()
        fsync_log = [line for line in d.log if "Not retrying" in line][:1]
        d.close()
        # Restarted on a healthy disk: everything acknowledged is there.
        again = common.daemon(ftmp, signer, overrides=extra, state=state)
        again.config = d.config
        again.start()
        again.stop()
        again.close()
        figures, _ = check_history(state, [m for m in messages if m.tries], catalog_stock(d))
        wrong = [(k, c) for k, c, _ in answers
                 if c is not None and not (200 <= c < 300 or 500 <= c < 600 and k != "lmtp"
                                           or k == "lmtp" and (c == 250 or 400 <= c < 500))]
        failed = sum(1 for k, c, faulty in answers if faulty and not (c is not None and (200 <= c < 300 or c == 250)))
        refused_5xx = sum(1 for k, c, faulty in answers if faulty and c is not None and (500 <= c < 600 or
                                                                                         k == "lmtp" and 400 <= c < 500))
        no_answer = sum(1 for k, c, faulty in answers if faulty and c is None)
        entry = {"fault": name, "point": point, "errno": errno_, "probability": prob, "sent": len(answers),
                 "acknowledged": figures["acknowledged"], "refused_or_cut": failed,
                 "answered_5xx_or_lmtp_4xx": refused_5xx, "no_answer": no_answer,
                 "answers_not_2xx_5xx_250_4xx": len(wrong), "wrong_examples": wrong[:5],
                 "daemon_exited": exited, "exit_status": status, "not_retrying_logged": bool(fsync_log),
                 "acknowledged_missing_after_restart": figures["acknowledged_missing"],
                 "stored_twice": figures["stored_twice"]}
        broken = []
        if wrong:
            broken.append("answers other than 2xx/5xx/250/4xx: %s" % wrong[:3])
        if figures["acknowledged_missing"] or figures["stored_twice"]:
            broken.append("acknowledged missing %d, twice %d" % (figures["acknowledged_missing"],
                                                                 figures["stored_twice"]))
        # A failed write or sync must stop the daemon (it cannot trust the
        # disk any more); a failed allocation need not: the request gets a
        # 5xx, or no answer when not even that could be made, and the next
        # one may well succeed.
        if failed and not exited and point != "libc/mm/malloc":
            broken.append("requests failed and the daemon kept running")
        if exited and status not in (0, 1):
            broken.append("the daemon died of signal %d instead of answering or exiting 1" % -status
                          if status < 0 else "the daemon exited %d" % status)
        entry["broken"] = broken
        log("faults: %-14s sent %3d, acked %3d, refused %3d, exited %s (%s)" % (name, len(answers),
                                                                              figures["acknowledged"], failed,
                                                                              exited, status))
        out.append(entry)
        shutil.rmtree(ftmp, ignore_errors=True)
    res["faults"] = out


# ---- slowloris -----------------------------------------------------------------

def slowloris_once(tmp, sources):
    """SLOW connections from `sources` addresses (127.0.0.2 ...) sending a
    header line a second for SLOW_SECONDS, each opened again when the
    daemon closes it (as slowloris tools do: closing one must not end the
    attack), under the default limits (http.max_connections 512,
    http.max_connections_per_ip 64), while a customer on 127.0.0.1 POSTs a
    signed SMS every 50 ms."""
    signer = common.Signer(tmp)
    d = harness.Daemon(tmp, overrides=["sns.topics=" + harness.SMS_TOPIC, "sns.certificate_cache=" + signer.cache])
    d.start()
    port = d.http_port()
    stop = threading.Event()
    conns, refused, reopened = [], [0], [0]

    def open_one(src):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.bind((src, 0))
            s.connect(("127.0.0.1", port))
            s.sendall(b"POST /webhooks/sns HTTP/1.1\r\nHost: x\r\n")
            return s
        except OSError:
            refused[0] += 1
            s.close()
            return None

    def attacker(src, n):
        mine = [s for s in (open_one(src) for _ in range(n)) if s]
        conns.extend(mine)
        while not stop.is_set():
            for s in list(mine):
                try:
                    s.sendall(b"X-a: b\r\n")
                except OSError:
                    mine.remove(s)
                    s.close()
            while len(mine) < n and not stop.is_set():
                s = open_one(src)
                if not s:
                    break
                reopened[0] += 1
                mine.append(s)
            stop.wait(1.0)
        for s in mine:
            s.close()

    ts = [threading.Thread(target=attacker, args=("127.0.0.%d" % (2 + i), SLOW // sources)) for i in range(sources)]
    for t in ts:
        t.start()
    time.sleep(2)
    opened = len(conns)
    lat, ok, bad = [], 0, 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < SLOW_SECONDS:
        body, _, _ = signer.sms("+5511955550000", "cardapio")
        t1 = time.monotonic()
        try:
            code = http_post(port, "/webhooks/sns", body, {"Content-Type": "text/plain; charset=UTF-8"}, timeout=5)
        except (OSError, http.client.HTTPException):
            code = None
        if code == 200:
            ok += 1
            lat.append((time.monotonic() - t1) * 1000)
        else:
            bad += 1
        time.sleep(0.05)
    stats = d.stats()
    held = stats["http"].get("connections")
    closed = stats["counters"].get("http_connections_closed_total", {})
    stop.set()
    for t in ts:
        t.join()
    alive = d.proc.poll() is None
    d.stop()
    d.close()
    broken = [] if alive and bad == 0 else (["%d legitimate requests failed" % bad] if alive else ["the daemon died"])
    return {"sources": sources, "connections_asked": SLOW, "connections_opened": opened,
            "connect_refused": refused[0], "reopened": reopened[0], "daemon_connections_seen": held,
            "daemon_closed": closed, "seconds": SLOW_SECONDS,
            "legit_ok": ok, "legit_failed": bad, "legit_p50_ms": round(common.percentile(lat, 50) or 0, 2),
            "legit_p99_ms": round(common.percentile(lat, 99) or 0, 2), "daemon_alive": alive, "broken": broken}


def soak_slowloris(tmp, res):
    out = []
    for sources in (1, 20):
        stmp = tempfile.mkdtemp(prefix="slow-", dir=tmp)
        log("slowloris: %d connections from %d address(es)" % (SLOW, sources))
        out.append(slowloris_once(stmp, sources))
        shutil.rmtree(stmp, ignore_errors=True)
    res["slowloris"] = out


# ---- report --------------------------------------------------------------------

def report(res):
    m = res["machine"]
    print("\ndeliveryd soak  %s  seed %d  (%s cores, %s, %s GiB RAM)" % (res["started_at"], SEED, m["nproc"], m["cpu"],
                                                                      m["ram_gib"]))
    k = res.get("kill")
    if k:
        print("  kill -9: %d kills, %d messages (%d acknowledged) in %.0f s; restart to READY median %s ms, max %s ms"
              % (k["kills"], k["messages"], k["acknowledged"], k["seconds"], k["restart_ready_ms_median"],
                 k["restart_ready_ms_max"]))
        for key in ("acknowledged_missing", "stored_twice", "executions_started_twice", "orders_without_execution",
                    "status_applied_twice", "reservation_not_order_qty", "notification_twice",
                    "possible_duplicate_sends", "sent_again_after_no_answer"):
            print("    %-32s %s" % (key, k[key]))
        print("    %-32s %s" % ("stock counts exact", not k["stock_wrong"]))
        print("    %-32s %s" % ("checker shown damage, missed", k["checker_self_check_missed"] or "nothing"))
        print("    %-32s %s" % ("orders", k["orders_by_status"]))
    f = res.get("faults")
    if isinstance(f, list):
        print("  libfiu faults (300 messages each, fault on after the first 100):")
        for e in f:
            print("    %-14s sent %3d acked %3d 5xx/4xx %3d no-answer %3d other %d exited %-5s status %-4s lost %d "
                  "twice %d" % (e["fault"], e["sent"], e["acknowledged"], e["answered_5xx_or_lmtp_4xx"], e["no_answer"],
                                e["answers_not_2xx_5xx_250_4xx"],
                     e["daemon_exited"], e["exit_status"], e["acknowledged_missing_after_restart"],
                     e["stored_twice"]))
    elif f:
        print("  faults:", f)
    for s in res.get("slowloris", []):
        print("  slowloris from %2d address(es): %d of %d connections open, %d opened again; legitimate: %d ok, "
              "%d failed, p50 %s ms, p99 %s ms" % (s["sources"], s["connections_opened"], s["connections_asked"],
                                                   s.get("reopened", 0), s["legit_ok"], s["legit_failed"],
                                                   s["legit_p50_ms"], s["legit_p99_ms"]))
        if s.get("daemon_closed"):
            print("    closed by the daemon: %s" % ", ".join("%s %d" % kv for kv in sorted(s["daemon_closed"].items())))
    broken = res["broken"]
    print("  invariants: " + ("all hold" if not broken else "BROKEN: " + "; ".join(broken)))


def main():
    if not os.access(harness.DELIVERYD, os.X_OK):
        raise SystemExit("soak: %s is not built (make first)" % harness.DELIVERYD)
    os.makedirs(common.BUILD, exist_ok=True)
    res = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": common.machine(),
           "seed": SEED, "kills_asked": KILLS, "messages_asked": MESSAGES}
    steps = {"kill": soak_kill, "faults": soak_faults, "slowloris": soak_slowloris}
    for name in ONLY:
        if name not in steps:
            raise SystemExit("soak: unknown SOAK_ONLY step %r (kill, faults, slowloris)" % name)
    for name in ONLY:
        tmp = tempfile.mkdtemp(prefix="soak-%s-" % name, dir=common.BUILD)
        try:
            steps[name](tmp, res)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    res["broken"] = []
    res["broken"] += ["kill: %s" % b for b in res.get("kill", {}).get("broken", [])]
    for s in res.get("slowloris", []):
        res["broken"] += ["slowloris from %d address(es): %s" % (s["sources"], b) for b in s["broken"]]
    for e in res.get("faults", []) if isinstance(res.get("faults"), list) else []:
        res["broken"] += ["faults %s: %s" % (e["fault"], b) for b in e["broken"]]
    report(res)
    print("\nresults: " + common.write_json("soak", res))
    sys.exit(1 if res["broken"] else 0)


if __name__ == "__main__":
    main()
