#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make bench: how fast the real deliveryd is, beside baselines measured in
the same run on the same machine.

  ingest        signed SNS two-way SMS POSTed by wrk (bench/ingest.lua);
                nginx `return 200` and raw SQLite inserts for ratios; then
                every message checked stored exactly once
  conversation  K customers in parallel each order through deliveryctl inject
  workflow      N orders through the local engine to DELIVERED; the
                order-like definition through `deliveryctl asl run` and
                aws-local-stepfunctions
  footprint     RSS idle and under load; start to READY=1 with a 1 GiB store

Prints a table and writes bench/results/bench-STAMP.json.  The issue's
targets are printed beside the figures, never asserted.  Sizes come from
the environment: BENCH_INGEST_N, BENCH_CONNECTIONS, BENCH_CUSTOMERS,
BENCH_ORDERS, BENCH_ASL_N, BENCH_DB_GIB, BENCH_ONLY=ingest,workflow,...

Security: test tool.  It starts its own daemons and nginx on 127.0.0.1
with throw-away keys and talks to nothing else.
"""

import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import harness  # noqa: E402

ENV = os.environ.get
INGEST_N = int(ENV("BENCH_INGEST_N", "20000"))
CONNECTIONS = int(ENV("BENCH_CONNECTIONS", "64"))
CUSTOMERS = int(ENV("BENCH_CUSTOMERS", "50"))
ORDERS = int(ENV("BENCH_ORDERS", "200"))
DRIVE_CONNECTIONS = int(ENV("BENCH_DRIVE_CONNECTIONS", "32"))
ASL_N = int(ENV("BENCH_ASL_N", "300"))
DB_GIB = float(ENV("BENCH_DB_GIB", "1"))
ONLY = [s for s in ENV("BENCH_ONLY", "ingest,conversation,workflow,footprint").split(",") if s]
ORDER_TEXT = "quero 2 calabresa pra Rua Augusta 1500, pago no cartao"

TARGETS = {
    "ingest_msgs_per_s": ">= 20000 on 2 cores",
    "ingest_p99_ms": "<= 50",
    "turn_p99_ms": "<= 10",
    "transitions_per_s": ">= aws-local-stepfunctions in memory (~60000)",
    "asl_run_ratio": ">= 2x aws-local-stepfunctions executions/s",
    "rss_idle_mib": "<= 32",
    "ready_ms": "<= 200",
}


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def big_stock(d):
    """Stock that the benchmark cannot sell out (the catalog's maximum)."""
    common.set_stock(d, 1000000)


# ---- baselines ---------------------------------------------------------------

def sqlite_inserts(tmp, bodies, batch):
    """Raw SQLite with the daemon's durability (WAL, synchronous=FULL): one
    row a message in a table shaped like the inbox and one key row, `batch`
    messages a transaction.  Returns messages (= rows pairs) per second and
    transactions per second."""
    path = os.path.join(tmp, "raw-%d.sqlite" % batch)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute("CREATE TABLE inbox (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, body TEXT NOT NULL, "
              "received_at TEXT NOT NULL) STRICT")
    c.execute("CREATE TABLE inbox_keys (key TEXT PRIMARY KEY, inbox_id INTEGER NOT NULL) STRICT, WITHOUT ROWID")
    t0 = time.monotonic()
    txns = 0
    for i in range(0, len(bodies), batch):
        c.execute("BEGIN IMMEDIATE")
        for j, b in enumerate(bodies[i:i + batch]):
            cur = c.execute("INSERT INTO inbox (customer, body, received_at) VALUES (?, ?, "
                            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))", ("+5511900000000", b))
            c.execute("INSERT INTO inbox_keys VALUES (?, ?)", ("k%d-%d" % (i, j), cur.lastrowid))
        c.execute("COMMIT")
        txns += 1
    dt = time.monotonic() - t0
    c.close()
    return {"batch": batch, "messages": len(bodies), "seconds": round(dt, 3),
            "msgs_per_s": round(len(bodies) / dt), "txn_per_s": round(txns / dt)}


def nginx_return_200(tmp, bodies_file, threads, connections, seconds=5):
    """nginx (one worker, as the daemon is one loop) answering `return 200`
    to the same POSTs from the same wrk script."""
    if not shutil.which("nginx"):
        return {"skipped": "nginx not installed (bench/setup)"}
    prefix = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    port = common.free_port()
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write("worker_processes 1;\npid %s/nginx.pid;\nerror_log %s/logs/error.log;\n"
                "events { worker_connections 4096; }\nhttp {\n access_log off;\n client_body_buffer_size 64k;\n"
                " server {\n  listen 127.0.0.1:%d;\n  location / { return 200 \"OK\\n\"; }\n }\n}\n"
                % (prefix, prefix, port))
    p = subprocess.Popen(["nginx", "-p", prefix, "-c", conf, "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    return {"skipped": "nginx did not start"}
                time.sleep(0.05)
        out = wrk(port, bodies_file, threads, connections, duration=seconds, loop=True)
        out["msgs_per_s"] = round(out["ok"] / seconds)
        return out
    finally:
        p.terminate()
        p.wait()


def wrk(port, bodies_file, threads, connections, duration, loop=False, until=None):
    """Run wrk with bench/ingest.lua; with until (a function returning true
    when done), stop it with SIGINT as soon as until() holds.  Returns the
    script's WRK line as a dict, with the wall-clock seconds."""
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--latency", "--timeout", "10s",
           "-s", os.path.join(common.HERE, "ingest.lua"), "http://127.0.0.1:%d/webhooks/sns" % port, "--",
           bodies_file, str(threads)] + (["loop"] if loop else [])
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done_at = None
    if until:
        while p.poll() is None:
            if until():
                done_at = time.monotonic()
                p.send_signal(signal.SIGINT)
                break
            time.sleep(0.02)
    out, _ = p.communicate(timeout=duration + 60)
    m = re.search(r"^WRK (\{.*\})$", out, re.M)
    if not m:
        raise SystemExit("bench: wrk gave no result:\n" + out)
    r = json.loads(m.group(1))
    r["wall_s"] = round((done_at or time.monotonic()) - t0, 3)
    return r


# ---- ingest ------------------------------------------------------------------

def accepted_metric(port):
    """deliveryd_inbound_total{outcome="accepted"} from GET /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    m = re.search(r'^deliveryd_inbound_total\{outcome="accepted"\} (\d+)', text, re.M)
    return int(m.group(1)) if m else 0


def bench_ingest(tmp, res):
    common.need("wrk")
    signer = common.Signer(tmp)
    log("signing %d SNS notifications" % INGEST_N)
    sent = []
    bodies_file = os.path.join(tmp, "bodies.txt")
    with open(bodies_file, "w") as f:
        for i in range(INGEST_N):
            body, mid, inbound = signer.sms("+55119%08d" % (i % 5000), "cardapio")
            sent.append((mid, inbound))
            f.write(body + "\n")
    d = common.daemon(tmp, signer)
    d.start()
    pid = d.proc.pid
    res["footprint"] = {"rss_idle_kib": None}
    time.sleep(1)
    res["footprint"]["rss_idle_kib"] = common.rss_kib(pid)
    port = d.http_port()
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], common.rss_kib(pid) or 0)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    progress = {"n": -1, "at": time.monotonic()}

    def all_in():
        # Duplicates do not count: a thread resends its last body while its
        # other answers are in flight.  No progress for 10 s ends it too.
        # The counter comes from GET /metrics: `deliveryctl stats` counts
        # the store's rows by status, work that would slow the daemon it
        # measures when asked 50 times a second.
        n = accepted_metric(port)
        if n != progress["n"]:
            progress.update(n=n, at=time.monotonic())
        return n >= INGEST_N or time.monotonic() - progress["at"] > 10

    log("ingest: wrk -t2 -c%d, %d messages" % (CONNECTIONS, INGEST_N))
    cpu0 = common.cpu_seconds(pid)
    w = wrk(port, bodies_file, 2, CONNECTIONS, duration=600, until=all_in)
    cpu_acked = common.cpu_seconds(pid) - cpu0
    stop.set()
    sampler.join()
    res["footprint"]["rss_load_kib"] = peak[0]
    # Let the conversation answer what came in before the store is read.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        s = d.stats()["inbox"]
        if s["incoming"] + s["active"] == 0:
            break
        time.sleep(0.2)
    cpu_answered = common.cpu_seconds(pid) - cpu0
    # Idle again: a daemon that keeps using CPU now is spinning.
    cpu1 = common.cpu_seconds(pid)
    time.sleep(1)
    cpu_idle = common.cpu_seconds(pid) - cpu1
    counters = d.stats()["counters"]
    db = common.db(d)
    keys = dict(db.execute("SELECT key, inbox_id FROM inbox_keys"))
    rows = db.execute("SELECT count(*), min(received_at), max(received_at) FROM inbox WHERE source = 'sns'").fetchone()
    db.close()
    # Keys are stored with a prefix naming their kind (sns:, sms:); match on the id itself.
    by_id = {}
    for k, iid in keys.items():
        by_id[k.split(":", 1)[-1]] = iid
    missing = [mid for mid, inbound in sent if mid not in by_id and inbound not in by_id]
    if missing:
        log("ingest: not stored: message(s) %s" % [i for i, (mid, _) in enumerate(sent) if mid in set(missing)][:10])
    ids = {by_id.get(mid) or by_id.get(inbound) for mid, inbound in sent}
    ids.discard(None)
    d.stop()
    span = None
    if rows[1] and rows[2]:
        import datetime
        f = "%Y-%m-%dT%H:%M:%S.%fZ"
        span = (datetime.datetime.strptime(rows[2], f) - datetime.datetime.strptime(rows[1], f)).total_seconds()
    res["ingest"] = {
        "messages": INGEST_N, "connections": CONNECTIONS, "wrk_threads": 2,
        "answered_2xx": w["ok"], "answered_other": w["bad"], "requests_sent": w["sent"],
        "wall_s": w["wall_s"], "msgs_per_s": round(INGEST_N / w["wall_s"]),
        "msgs_per_s_store_clock": round(rows[0] / span) if span else None,
        "p50_ms": w["p50_us"] / 1000.0, "p99_ms": w["p99_us"] / 1000.0, "max_ms": w["max_us"] / 1000.0,
        "stored_rows": rows[0], "missing": len(missing), "stored_twice": rows[0] - len(ids),
        "daemon_inbound": counters["inbound_total"], "daemon_rejected": counters["inbound_rejected_total"],
        "daemon_http": counters["http_responses_total"],
        "exactly_once": not missing and rows[0] == INGEST_N and len(ids) == INGEST_N,
        # The daemon's own CPU time per message (user + system), up to the
        # last acknowledgement and up to the last reply queued: what a
        # message costs, whatever else the machine was doing.
        "cpu_us_per_msg_acked": round(cpu_acked * 1e6 / INGEST_N, 1),
        "cpu_us_per_msg_answered": round(cpu_answered * 1e6 / INGEST_N, 1),
        "cpu_idle_after_s": round(cpu_idle, 3),
    }
    log("ingest: nginx baseline")
    res["ingest"]["nginx"] = nginx_return_200(tmp, bodies_file, 2, CONNECTIONS)
    with open(bodies_file) as f:
        bodies = [line for _, line in zip(range(INGEST_N), f)]
    log("ingest: raw SQLite baselines")
    res["ingest"]["sqlite"] = [sqlite_inserts(tmp, bodies[:min(len(bodies), 3000)], 1),
                               sqlite_inserts(tmp, bodies, CONNECTIONS)]
    res["sqlite_txn_per_s"] = res["ingest"]["sqlite"][0]["txn_per_s"]


# ---- conversation ------------------------------------------------------------

def outbox_count(db, who):
    return db.execute("SELECT count(*) FROM outbox WHERE recipient = ?", (who,)).fetchone()[0]


def run_customers(d, customers, turns, timeout=120):
    """Each customer in its own thread says each text of turns through
    deliveryctl inject and waits for the reply before the next.  Returns
    the wall-clock seconds and the errors."""
    errors = []

    def one(who):
        db = common.db(d)
        try:
            for text in turns:
                n = outbox_count(db, who)
                p = d.ctl("inject", "sms", who, text, check=False)
                if p.returncode != 0:
                    errors.append("%s: inject failed: %s" % (who, p.stderr.strip()))
                    return
                deadline = time.monotonic() + timeout
                while outbox_count(db, who) <= n:
                    if time.monotonic() > deadline:
                        errors.append("%s: no reply to %r" % (who, text))
                        return
                    time.sleep(0.002)
        finally:
            db.close()

    t0 = time.monotonic()
    ts = [threading.Thread(target=one, args=(w,)) for w in customers]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.monotonic() - t0, errors


def turn_latencies(d, customers):
    """inject -> queued reply for every inbound message of these customers,
    from the daemon's own clocks: inbox.received_at (ms) to the created_at
    (us) of the first outbox row for the customer at or after it."""
    import datetime
    db = common.db(d)
    out = []
    try:
        for who in customers:
            replies = [r[0] for r in db.execute("SELECT created_at FROM outbox WHERE recipient = ? ORDER BY id",
                                                (who,))]
            for (received,) in db.execute("SELECT received_at FROM inbox WHERE customer = ? ORDER BY id", (who,)):
                t = datetime.datetime.strptime(received, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=datetime.timezone.utc).timestamp() * 1e6
                # received_at has ms resolution: the reply may seem up to 1 ms early.
                r = next((c for c in replies if c >= t - 1000), None)
                if r is not None:
                    out.append(max(0.0, (r - t) / 1000.0))
    finally:
        db.close()
    return out


def bench_conversation(tmp, res):
    d = common.daemon(tmp)
    big_stock(d)
    d.start()
    customers = ["+55118%08d" % i for i in range(CUSTOMERS)]
    turns = [ORDER_TEXT, "sim"]
    log("conversation: %d customers, %d turns each" % (CUSTOMERS, len(turns)))
    wall, errors = run_customers(d, customers, turns)
    lat = turn_latencies(d, customers)
    orders = json.loads(d.ctl("orders", "--json").stdout)
    d.stop()
    res["conversation"] = {
        "customers": CUSTOMERS, "turns": CUSTOMERS * len(turns), "wall_s": round(wall, 3),
        "turns_per_s": round(CUSTOMERS * len(turns) / wall, 1), "p50_ms": percentile_ms(lat, 50),
        "p99_ms": percentile_ms(lat, 99), "orders_placed": len(orders), "errors": errors[:5],
        "note": "turns/s includes one deliveryctl process per turn; latency is the daemon's own",
    }


def percentile_ms(values, p):
    v = common.percentile(values, p)
    return None if v is None else round(v, 2)


# ---- workflow ----------------------------------------------------------------

def api_status(conn, oid, status):
    conn.request("POST", "/api/orders/%s/status" % oid, body=json.dumps({"status": status}),
                 headers={"Authorization": "Bearer " + common.API_TOKEN, "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status


def bench_workflow(tmp, res):
    d = common.daemon(tmp)
    big_stock(d)
    d.start()
    port = d.http_port()
    customers = ["+55117%08d" % i for i in range(ORDERS)]
    log("workflow: %d orders placed by %d customers" % (ORDERS, ORDERS))
    t0 = time.monotonic()
    _, errors = run_customers(d, customers, [ORDER_TEXT, "sim"])
    db = common.db(d)

    def confirmed():
        return db.execute("SELECT count(*) FROM orders WHERE status = 'CONFIRMED'").fetchone()[0]

    deadline = time.monotonic() + 300
    while confirmed() < ORDERS - len(errors) and time.monotonic() < deadline:
        time.sleep(0.05)
    ids = [r[0] for r in db.execute("SELECT id FROM orders WHERE status = 'CONFIRMED'")]
    transitions_confirmed = db.execute("SELECT coalesce(sum(transitions), 0) FROM executions").fetchone()[0]
    t_confirmed = time.monotonic()
    log("workflow: driving %d orders to DELIVERED through the API" % len(ids))
    bad = []

    def driver(part):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for status in ("PREPARING", "READY", "IN_DELIVERY", "DELIVERED"):
            for oid in part:
                s = api_status(conn, oid, status)
                if s != 202:
                    bad.append((oid, status, s))
        conn.close()

    nthreads = DRIVE_CONNECTIONS
    ts = [threading.Thread(target=driver, args=(ids[i::nthreads],)) for i in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        n = db.execute("SELECT count(*) FROM executions WHERE status = 'SUCCEEDED'").fetchone()[0]
        if n >= len(ids):
            break
        time.sleep(0.05)
    t1 = time.monotonic()
    ex = db.execute("SELECT count(*), sum(transitions), min(created_at), max(updated_at) FROM executions "
                    "WHERE status = 'SUCCEEDED'").fetchone()
    delivered = db.execute("SELECT count(*) FROM orders WHERE status = 'DELIVERED'").fetchone()[0]
    db.close()
    d.stop()
    engine_s = (ex[3] - ex[2]) / 1e6 if ex[0] else None
    res["workflow"] = {
        "orders": ORDERS, "delivered": delivered, "executions_succeeded": ex[0], "transitions": ex[1],
        "wall_s": round(t1 - t0, 3), "drive_s": round(t1 - t_confirmed, 3),
        "executions_per_s": round(ex[0] / (t1 - t0), 1) if ex[0] else None,
        "executions_per_s_drive": round(ex[0] / (t1 - t_confirmed), 1) if ex[0] else None,
        "transitions_per_s": round((ex[1] or 0) / engine_s) if engine_s else None,
        # The engine while the status reports pour in from DRIVE_CONNECTIONS
        # connections: the transitions they caused over the drive phase.
        "drive_connections": DRIVE_CONNECTIONS,
        "transitions_per_s_drive": round(((ex[1] or 0) - transitions_confirmed) / (t1 - t_confirmed)),
        "api_refusals": bad[:5], "errors": errors[:5],
        "note": "executions/s from the first SMS to the last DELIVERED (conversation included); "
                "_drive: from all CONFIRMED to all DELIVERED (four API calls an order)",
    }
    if res.get("sqlite_txn_per_s") and res["workflow"]["transitions_per_s_drive"]:
        res["workflow"]["ratio_to_sqlite_txn"] = round(res["workflow"]["transitions_per_s_drive"] /
                                                       res["sqlite_txn_per_s"], 2)
    res["asl"] = bench_asl(tmp)


def bench_asl(tmp):
    defn = os.path.join(common.HERE, "order-like.asl.json")
    tasks = os.path.join(common.HERE, "order-like.tasks.json")
    inp = os.path.join(tmp, "input.json")
    harness.write_text(inp, '{"order_id": "BENCH"}')
    log("asl: %d executions through deliveryctl asl run" % ASL_N)
    cmd = [harness.DELIVERYCTL, "asl", "run", defn, "--input", inp, "--tasks", tasks]
    t0 = time.monotonic()
    for _ in range(ASL_N):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0 or '"SUCCEEDED"' not in p.stdout:
            return {"error": "asl run failed: " + p.stdout + p.stderr}
    ours_cold = ASL_N / (time.monotonic() - t0)
    n_mem = ASL_N * 10
    log("asl: %d executions in one deliveryctl asl run --repeat" % n_mem)
    p = subprocess.run(cmd + ["--repeat", str(n_mem)], capture_output=True, text=True)
    m = re.search(r"(\d+) executions in ([0-9.]+) s", p.stderr)
    if p.returncode != 0 or not m:
        return {"error": "asl run --repeat failed: " + p.stdout + p.stderr}
    ours = int(m.group(1)) / float(m.group(2))
    out = {"executions": ASL_N, "deliveryctl_exec_per_s": round(ours, 1),
           "deliveryctl_exec_per_s_process_each": round(ours_cold, 1),
           "note": "in memory: deliveryctl asl run --repeat vs one node process; process each: one process an "
                   "execution (start, parse, check, run) for both"}
    moddir = os.path.join(common.BUILD, "node")
    if not shutil.which("node") or not os.path.isdir(os.path.join(moddir, "node_modules", "aws-local-stepfunctions")):
        out["aws_local_stepfunctions"] = {"skipped": "not installed (bench/setup)"}
        return out
    n_node = ASL_N * 10
    log("asl: %d executions through aws-local-stepfunctions" % n_node)
    p = subprocess.run(["node", os.path.join(common.HERE, "asl-local.mjs"), moddir, defn, tasks, str(n_node)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        out["aws_local_stepfunctions"] = {"error": p.stderr[-500:]}
        return out
    r = json.loads(p.stdout.strip().splitlines()[-1])
    node_rate = r["executions"] / r["seconds"]
    # the same one-process-an-execution cost for node, for a fair second ratio
    t0 = time.monotonic()
    cold = 20
    for _ in range(cold):
        subprocess.run(["node", os.path.join(common.HERE, "asl-local.mjs"), moddir, defn, tasks, "1"],
                       capture_output=True, check=True)
    node_cold = cold / (time.monotonic() - t0)
    out["aws_local_stepfunctions"] = {
        "version": json.load(open(os.path.join(moddir, "node_modules", "aws-local-stepfunctions",
                                               "package.json")))["version"],
        "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
        "exec_per_s_in_memory": round(node_rate, 1),
        "transitions_per_s_in_memory": round(node_rate * r["states_per_execution"]),
        "states_per_execution": r["states_per_execution"],
        "exec_per_s_process_each": round(node_cold, 1)}
    out["ratio_to_in_memory"] = round(ours / node_rate, 3)
    out["ratio_process_each"] = round(ours_cold / node_cold, 2)
    return out


# ---- footprint ---------------------------------------------------------------

def big_database(tmp):
    """A store of DB_GIB GiB (done inbox rows and sent outbox rows, as a
    busy year leaves), built once and cached under the build directory."""
    cache = os.path.join(common.BUILD, "footprint-%sgib" % DB_GIB)
    path = os.path.join(cache, "deliveryd.sqlite")
    if os.path.exists(path) and os.path.exists(path + ".complete"):
        return cache
    shutil.rmtree(cache, ignore_errors=True)
    log("footprint: building a %s GiB store in %s (once)" % (DB_GIB, cache))
    d = common.daemon(tmp, state=cache)
    d.start()
    d.stop()
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=OFF")
    body = "quero 2 calabresa e 1 coca pra Rua Augusta 1500, pago no pix " * 12
    target = DB_GIB * (1 << 30)
    i = 0
    while os.path.getsize(path) + (os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0) < target:
        c.execute("BEGIN")
        for _ in range(20000):
            who = "+5511%09d" % (i % 200000)
            cur = c.execute("INSERT INTO inbox (channel, source, customer, body, status, received_at) VALUES "
                            "('sms', 'sns', ?, ?, 'done', '2026-01-01T00:00:00.000Z')", (who, body))
            c.execute("INSERT INTO inbox_keys VALUES (?, ?)", ("sns:%d" % i, cur.lastrowid))
            c.execute("INSERT INTO outbox (channel, recipient, body, status, next_attempt_at, expires_at, created_at, "
                      "sent_at) VALUES ('sms', ?, ?, 'sent', 0, 0, 0, 0)", (who, body))
            i += 1
        c.execute("COMMIT")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    harness.write_text(path + ".complete", "%d rows\n" % i)
    return cache


def bench_footprint(tmp, res):
    fp = res.setdefault("footprint", {})
    if fp.get("rss_idle_kib") is None:
        d = common.daemon(tmp)
        d.start()
        time.sleep(1)
        fp["rss_idle_kib"] = common.rss_kib(d.proc.pid)
        d.stop()
    state = big_database(tmp)
    times = []
    for i in range(5):
        d = common.daemon(tmp, state=state)
        t0 = time.monotonic()
        d.start()
        times.append((time.monotonic() - t0) * 1000)
        if i == 0:
            fp["rss_idle_big_db_kib"] = common.rss_kib(d.proc.pid)
        d.stop()
        d.close()
    fp["db_bytes"] = os.path.getsize(os.path.join(state, "deliveryd.sqlite"))
    fp["ready_ms"] = [round(t, 1) for t in times]
    fp["ready_ms_median"] = round(statistics.median(times), 1)
    fp["note"] = "READY: from fork to READY=1 on the notify socket, page cache warm, 5 starts"


# ---- report ------------------------------------------------------------------

def row(name, value, target=""):
    print("  %-44s %-22s %s" % (name, value, target))


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%.2f" % v) + unit
    if isinstance(v, int):
        return "{:,}".format(v) + unit
    return str(v) + unit


def report(res):
    m = res["machine"]
    print("\ndeliveryd bench  %s  (%s cores, %s, %s GiB RAM, disk %s)" % (res["started_at"], m["nproc"], m["cpu"],
                                                                       m["ram_gib"], m["disk"]))
    print("  %-44s %-22s %s" % ("measure", "value", "target (not asserted)"))
    i = res.get("ingest")
    if i:
        row("ingest msgs/s (wrk -t2 -c%d, %d msgs)" % (i["connections"], i["messages"]), fmt(i["msgs_per_s"]),
            TARGETS["ingest_msgs_per_s"])
        row("ingest msgs/s by the store's clock", fmt(i["msgs_per_s_store_clock"]))
        row("ingest ack p50 / p99 ms", "%s / %s" % (fmt(i["p50_ms"]), fmt(i["p99_ms"])), TARGETS["ingest_p99_ms"])
        row("  stored exactly once", "%s (missing %d, twice %d)" % (i["exactly_once"], i["missing"],
                                                                    i["stored_twice"]))
        row("  daemon CPU us/msg: to ack / to reply queued", "%s / %s" % (fmt(i["cpu_us_per_msg_acked"]),
                                                                          fmt(i["cpu_us_per_msg_answered"])))
        n = i.get("nginx", {})
        if "msgs_per_s" in n:
            row("nginx return 200 req/s (1 worker)", fmt(n["msgs_per_s"]),
                "ratio %.3f" % (i["msgs_per_s"] / n["msgs_per_s"]))
        for s in i.get("sqlite", []):
            row("raw SQLite WAL+FULL, %d msg/txn" % s["batch"], fmt(s["msgs_per_s"]) + " msgs/s",
                "ratio %.2f" % (i["msgs_per_s"] / s["msgs_per_s"]))
    c = res.get("conversation")
    if c:
        row("conversation turns/s (%d customers)" % c["customers"], fmt(c["turns_per_s"]))
        row("turn inject->queued reply p50 / p99 ms", "%s / %s" % (fmt(c["p50_ms"]), fmt(c["p99_ms"])),
            TARGETS["turn_p99_ms"])
    w = res.get("workflow")
    if w:
        row("workflow executions/s (SMS to DELIVERED)", fmt(w["executions_per_s"]))
        row("workflow executions/s (drive phase)", fmt(w["executions_per_s_drive"]))
        row("durable transitions/s (whole run)", fmt(w["transitions_per_s"]))
        row("durable transitions/s (drive, %d conns)" % w["drive_connections"], fmt(w["transitions_per_s_drive"]),
            TARGETS["transitions_per_s"])
        if w.get("ratio_to_sqlite_txn") is not None:
            row("  ratio to raw SQLite txn/s", fmt(w["ratio_to_sqlite_txn"]))
    a = res.get("asl")
    if a:
        row("asl run executions/s (in memory, --repeat)", fmt(a.get("deliveryctl_exec_per_s")))
        row("asl run executions/s (process each)", fmt(a.get("deliveryctl_exec_per_s_process_each")))
        n = a.get("aws_local_stepfunctions", {})
        if "exec_per_s_in_memory" in n:
            row("aws-local-stepfunctions exec/s in memory", fmt(n["exec_per_s_in_memory"]),
                "%s transitions/s" % fmt(n["transitions_per_s_in_memory"]))
            row("aws-local-stepfunctions exec/s process each", fmt(n["exec_per_s_process_each"]))
            row("  ratio asl run / aws-local-stepfunctions", fmt(a["ratio_to_in_memory"]), TARGETS["asl_run_ratio"])
            row("  ratio, process each", fmt(a["ratio_process_each"]))
        else:
            row("aws-local-stepfunctions", str(n))
    f = res.get("footprint")
    if f:
        row("RSS idle MiB", fmt((f.get("rss_idle_kib") or 0) / 1024.0), TARGETS["rss_idle_mib"])
        if f.get("rss_load_kib"):
            row("RSS under ingest load MiB (peak)", fmt(f["rss_load_kib"] / 1024.0))
        if f.get("ready_ms_median") is not None:
            row("start to READY=1 ms, %.2f GiB store" % (f["db_bytes"] / (1 << 30)), fmt(f["ready_ms_median"]),
                TARGETS["ready_ms"])


def main():
    if not os.access(harness.DELIVERYD, os.X_OK):
        raise SystemExit("bench: %s is not built (make first)" % harness.DELIVERYD)
    os.makedirs(common.BUILD, exist_ok=True)
    res = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": common.machine(),
           "targets": TARGETS, "git": subprocess.run(["git", "-C", common.TOP_SRCDIR, "describe", "--always",
                                                      "--dirty"], capture_output=True, text=True).stdout.strip()}
    steps = {"ingest": bench_ingest, "conversation": bench_conversation, "workflow": bench_workflow,
             "footprint": bench_footprint}
    for name in ONLY:
        if name not in steps:
            raise SystemExit("bench: unknown BENCH_ONLY step %r (ingest, conversation, workflow, footprint)" % name)
    for name in ONLY:
        tmp = tempfile.mkdtemp(prefix="bench-%s-" % name, dir=common.BUILD)
        try:
            steps[name](tmp, res)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    report(res)
    path = common.write_json("bench", res)
    print("\nresults: " + path)


if __name__ == "__main__":
    main()
