#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kill -9 at random moments while DELIVERYD_CRASH_ORDERS (200) orders run
through the order workflow: every order must end as it would have without
the crashes, the stock must be exact, and no task's effect may happen twice.

The same seeded plan runs twice, each on its own state directory: once
without a kill (the reference), once with DELIVERYD_CRASH_KILLS (60) kill -9
at random points of its progress, some of them while the daemon is still
starting, each followed by a restart on the same state directory.  One
customer per order, each of them a thread that does what a customer, the
store and the courier do, in order:

  delivered         card or cash, PREPARING, READY, IN_DELIVERY, DELIVERED
  pix               Pix code, paid (deliveryctl order ID paid), then delivered
  pix-cancel        Pix code, the customer cancels before paying
  cancel            confirmed, the customer cancels (allowed)
  cancel-late       PREPARING, the customer cancels (refused), then delivered
  address           a new address in the same zone, then delivered
  address-fee       a new address in a dearer zone, the customer accepts the
                    new fee, then delivered
  address-late      IN_DELIVERY, the customer asks for a new address
                    (refused), then delivered
  scarce            takes açaí, whose stock is exactly what these orders take
  sold-out          asks for açaí once the scarce orders have it: told it is
                    sold out, no order
  sold-out-partial  açaí and another product: the order goes on without açaí

Customers text through signed SNS webhooks (POST /webhooks/sns), the store
and the courier use POST /api/orders/ID/status with the bearer token; the
Pix confirmation is deliveryctl order ID paid.  Every sender retries what
was not acknowledged, as SNS or an MTA does; an acknowledgement that a
killed daemon could not give shows up as a refusal of the retry, which the
sender checks against the order.

Compared per customer between the two runs: whether there is an order, its
final status, cancel reason, payment, items, fee and totals, address and
zone, the statuses of its history in order, the states its execution went
through, its stock reservations, and every message sent to the customer
(counted, with order ids, times, tracking links and Pix codes made
neutral); the stock of every SKU.  Checked in both: each customer's order
ended on the branch meant, each status once in a history, each message to
a customer once, each message from a customer stored once and handled, the
stock of every SKU equal to the catalog's minus what the orders that were
not cancelled hold (and reserved by them), exactly one execution per order
and started once, nothing left running or unsent.
Reported, not failed on: how many outbound messages were flagged
possible_duplicate (a kill between handing one to the transport and
recording it).

Run time on a 2-core machine, default size: 25 to 30 s (the reference run
about 11 s, the run with kills 12 to 20 s), about 35 s with the daemon
under ASan+UBSan, twice that when the machine is busy with other work;
DELIVERYD_CRASH_ORDERS=50 takes a quarter of it (40 orders and 12 kills
are the default under valgrind).
DELIVERYD_CRASH_SEED picks another plan; the kill moments are random."""

import collections
import http.client
import json
import os
import random
import re
import signal
import sqlite3
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

harness.require_vectors()

# Under valgrind (make check-valgrind) every start takes seconds: smaller.
ORDERS = int(os.environ.get("DELIVERYD_CRASH_ORDERS", "40" if harness.VALGRIND else "200"))
KILLS = int(os.environ.get("DELIVERYD_CRASH_KILLS", "12" if harness.VALGRIND else "60"))
SEED = int(os.environ.get("DELIVERYD_CRASH_SEED", "200"))
# A wait may span several kills and restarts (slower still under the
# sanitizers): generous, and only a bound for a wait on an event.
WAIT = 4 * harness.TIMEOUT
TOKEN = "crash-courier-token"
BASE = [
    "http.public_url=https://pizza.example",
    "http.api_token=" + TOKEN,
    "pix.key=pix@pizza.example",
    "pix.merchant_city=SAO PAULO",
    "sms.max_per_second=1000",
    "sns.topics=" + harness.SMS_TOPIC,
]
STOCK = 100000
SCARCE = "sobremesa-acai"

# (kind, share of the orders); "delivered" takes what the others leave.
KINDS = [("pix", 0.10), ("pix-cancel", 0.05), ("cancel", 0.10), ("cancel-late", 0.10), ("address", 0.07),
         ("address-fee", 0.07), ("address-late", 0.07), ("scarce", 0.04), ("sold-out", 0.03),
         ("sold-out-partial", 0.03)]
# (Portuguese, English) words for one line of an order.
ITEMS = [("1 margherita", "1 margherita"), ("2 calabresa", "2 calabresa"), ("1 portuguesa", "1 portuguesa"),
         ("1 quatro queijos", "1 quatro queijos"), ("2 x-burguer", "2 x-burguer"), ("1 x-salada", "1 x-salada"),
         ("1 batata", "1 fries"), ("1 coca", "1 coke"), ("2 guaraná", "2 guarana"),
         ("1 suco de laranja", "1 orange juice"), ("1 brownie", "1 brownie")]
# Addresses of the first zone (R$ 5,00): the order's, and the one it moves to.
HOME = ["Rua Augusta 1500", "Rua Frei Caneca 100", "Rua Bela Cintra 200"]
MOVE_SAME_ZONE = "Rua Treze de Maio 50"
MOVE_DEARER = "Rua Teodoro Sampaio 500"
NEXT = ("PREPARING", "READY", "IN_DELIVERY", "DELIVERED")

PT = {"and": " e ", "order": "quero %s pra %s, pago %s", "yes": "sim", "cancel": "quero cancelar",
      "move": "quero mudar o endereço para %s",
      "pay": {"card": "no cartão", "cash": "em dinheiro", "pix": "no pix"}}
EN = {"and": " and ", "order": "i want %s to %s, paying %s", "yes": "yes", "cancel": "i want to cancel my order",
      "move": "change the delivery address to %s", "pay": {"card": "by card", "cash": "cash", "pix": "with pix"}}


class Customer:
    """One customer of the plan and what they do."""

    def __init__(self, i, kind, rnd):
        self.phone = "+5511966%06d" % i
        self.kind = kind
        self.words = EN if rnd.random() < 0.2 else PT
        lines = rnd.sample(ITEMS, rnd.randint(1, 3))
        en = self.words is EN
        items = [line[1] if en else line[0] for line in lines]
        if kind in ("scarce", "sold-out-partial"):
            items.insert(0, "1 açaí")
        elif kind == "sold-out":
            items = ["1 açaí"]
        payment = "pix" if kind.startswith("pix") else rnd.choice(("card", "cash"))
        self.text = self.words["order"] % (", ".join(items[:-1]) + self.words["and"] + items[-1]
                                           if len(items) > 1 else items[0], rnd.choice(HOME),
                                           self.words["pay"][payment])
        self.sent = 0  # texts acknowledged


def plan(n, seed):
    rnd = random.Random(seed)
    kinds = []
    for kind, share in KINDS:
        kinds += [kind] * max(1, round(share * n))
    kinds = (kinds + ["delivered"] * n)[:n]
    rnd.shuffle(kinds)
    return [Customer(i, kind, rnd) for i, kind in enumerate(kinds)]


class Observer(threading.Thread):
    """Reads the daemon's store (read-only, as another process may) every few
    milliseconds, whether the daemon is up or not, and wakes the customers
    whose condition came true."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.lock = threading.Lock()
        self.orders = {}  # customer -> (id, status, payment_status)
        self.bodies = collections.defaultdict(list)  # recipient -> bodies
        self.last = 0
        self.waiters = []
        self.done = threading.Event()
        self.db = None

    def query(self, sql, args=()):
        if self.db is None:
            self.db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=5, check_same_thread=False)
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error:
            self.db.close()
            self.db = None
            raise

    def poll(self):
        orders = self.query("SELECT customer, id, status, payment_status FROM orders")
        bodies = self.query("SELECT id, recipient, body FROM outbox WHERE id > ? ORDER BY id", (self.last,))
        with self.lock:
            self.orders = {c: (i, s, p) for c, i, s, p in orders}
            for i, to, body in bodies:
                self.bodies[to].append(body)
                self.last = i
            self.waiters = [w for w in self.waiters if not self.test(w)]

    @staticmethod
    def test(w):
        if w[0]():
            w[1].set()
            return True
        return False

    def run(self):
        while not self.done.is_set():
            try:
                self.poll()
            except sqlite3.Error:
                pass  # not there yet, or being recovered by a starting daemon
            self.done.wait(0.03)
        if self.db:
            self.db.close()

    def wait(self, what, pred, stop):
        w = (pred, threading.Event())
        with self.lock:
            if self.test(w):
                return
            self.waiters.append(w)
        deadline = time.monotonic() + WAIT
        while not w[1].wait(0.2):
            if stop.is_set():
                raise Stopped()
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for " + what)

    def order(self, c):
        return self.orders.get(c.phone, (None, None, None))

    def said(self, c, pattern):
        rx = re.compile(pattern)
        return any(rx.search(b) for b in self.bodies.get(c.phone, ()))


class Stopped(Exception):
    """Another customer failed: this one stops."""


DONE, LATE = 1, 2  # acknowledged; found done by a daemon that was killed before it could say so


class Run:
    """One run of the plan against one state directory, with kill -9 after
    each of the acknowledgements numbered in kill_at (and a random moment)."""

    def __init__(self, case, name, customers, kill_at=()):
        self.case = case
        self.name = name
        self.customers = customers
        self.tmp = os.path.join(case.tmp, name)
        os.makedirs(self.tmp)
        self.config = harness.make_etc(self.tmp)
        self.n_scarce = sum(1 for c in customers if c.kind == "scarce")
        harness.set_stock(self.config, STOCK, {SCARCE: self.n_scarce})
        self.sns = harness.SnsFixture(self.tmp)
        self.state = os.path.join(self.tmp, "state")
        self.overrides = BASE + ["sns.certificate_cache=" + self.sns.cache]
        self.up = threading.Event()
        self.port = None
        self.daemon = None
        self.obs = Observer(os.path.join(self.state, "deliveryd.sqlite"))
        self.stop = threading.Event()
        self.finished = threading.Event()  # every customer is done
        self.errors = []
        self.progress = threading.Condition()
        self.acks = 0
        self.http_slots = threading.BoundedSemaphore(16)
        self.kills = self.early_kills = self.late_kills = 0
        self.retried = 0  # requests not acknowledged at the first attempt
        self.answered_late = 0  # done by a killed daemon that could not say so
        self.kill_at = sorted(kill_at)
        self.rnd = random.Random()

    # ---- the daemon ----------------------------------------------------------

    def start_daemon(self, wait_ready=True):
        d = harness.Daemon(self.tmp, config=self.config, overrides=self.overrides, state=self.state)
        self.case.daemons.append(d)
        d.start(wait_ready=wait_ready)
        self.daemon = d
        if wait_ready:
            self.port = d.http_port()
            self.up.set()
        return d

    def kill(self):
        self.up.clear()
        d = self.daemon
        os.kill(d.proc.pid, signal.SIGKILL)
        d.wait()
        d.notify.close()
        self.kills += 1

    def killer(self):
        """Kill at each kill point, a random moment after it (mid-request,
        mid-transition, mid-send); now and then kill the restarted daemon
        again before it is ready.  Kill points the customers passed while
        the daemon was being restarted come next, and those left when they
        are done come while the daemon finishes their orders."""
        for at in self.kill_at:
            with self.progress:
                while self.acks < at and not self.finished.is_set() and not self.stop.is_set():
                    self.progress.wait(0.2)
            if self.stop.is_set():
                return
            time.sleep(self.rnd.random() * 0.05)
            self.late_kills += self.finished.is_set()
            self.kill()
            if self.rnd.random() < 0.15:
                self.start_daemon(wait_ready=False)
                time.sleep(self.rnd.random() * 0.2)
                self.kill()
                self.early_kills += 1
            self.start_daemon()

    def ack(self, retried=False, late=False):
        with self.progress:
            self.acks += 1
            self.retried += retried
            self.answered_late += late
            self.progress.notify_all()

    def wait_up(self):
        if not self.up.wait(WAIT):
            raise AssertionError("the daemon did not come back")
        if self.stop.is_set():
            raise Stopped()
        return self.port

    # ---- what the customers, the store and the courier send ------------------

    def post(self, path, body, headers):
        """POST once to the daemon that is up: (status, body), or (None, why)."""
        port = self.wait_up()
        with self.http_slots:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=harness.TIMEOUT)
            try:
                conn.request("POST", path, body=body, headers=headers)
                r = conn.getresponse()
                return r.status, r.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as e:
                return None, repr(e)
            finally:
                conn.close()

    def send(self, what, attempt):
        """Call attempt() until the daemon acknowledges: it returns DONE, or
        LATE when the daemon's refusal of the retry shows that a killed
        daemon did it and could not say so; None is no answer (a dead
        daemon, a 503): try again."""
        deadline = time.monotonic() + WAIT
        tries = 0
        while True:
            outcome = attempt()
            if outcome:
                return self.ack(retried=tries > 0, late=outcome == LATE)
            tries += 1
            if self.stop.is_set():
                raise Stopped()
            if time.monotonic() > deadline:
                raise AssertionError("%s: never acknowledged" % what)
            time.sleep(0.02)

    def sms(self, c, text):
        """The customer's text, through SNS: the same signed notification
        again until the daemon answers 2xx."""
        body = json.dumps(self.sns.sms(text=text, sender=c.phone, message_id=str(uuid.uuid4())))
        headers = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"}

        def attempt():
            code, answer = self.post("/webhooks/sns", body, headers)
            if code is not None and 400 <= code < 500:
                raise AssertionError("SNS message %r of %s refused: %s %s" % (text, c.phone, code, answer))
            return DONE if code is not None and 200 <= code < 300 else None

        self.send("%s's %r" % (c.phone, text), attempt)
        c.sent += 1

    def status(self, oid, status):
        """The store or the courier moves the order on: 202; a 409 says the
        order already has the status when a killed daemon did it."""
        body = json.dumps({"status": status})
        headers = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}

        def attempt():
            code, answer = self.post("/api/orders/%s/status" % oid, body, headers)
            if code == 202:
                return DONE
            if code == 409 and self.fresh("SELECT status FROM orders WHERE id = ?", oid) == status:
                return LATE
            if code is not None and code != 503:
                raise AssertionError("%s of %s: %s %s" % (status, oid, code, answer))
            return None

        self.send("%s of order %s" % (status, oid), attempt)

    def paid(self, oid):
        """The Pix payment arrived (deliveryctl order ID paid)."""
        def attempt():
            self.wait_up()
            if self.daemon.ctl("order", oid, "paid", check=False).returncode == 0:
                return DONE
            if self.fresh("SELECT payment_status FROM orders WHERE id = ?", oid) == "paid":
                return LATE
            return None

        self.send("payment of order %s" % oid, attempt)

    def fresh(self, sql, *args):
        """One value read from the store now (a starting daemon may be
        recovering it: then again)."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.state, "deliveryd.sqlite"), uri=True,
                                     timeout=harness.TIMEOUT)
                try:
                    row = db.execute(sql, args).fetchone()
                    return row[0] if row else None
                finally:
                    db.close()
            except sqlite3.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # ---- the customers -------------------------------------------------------

    def wait(self, what, pred):
        self.obs.wait(what, pred, self.stop)

    def wait_status(self, c, *statuses):
        self.wait("%s's order %s" % (c.phone, "/".join(statuses)), lambda: self.obs.order(c)[1] in statuses)
        return self.obs.order(c)[0]

    def wait_said(self, c, pattern):
        self.wait("a message matching %r to %s" % (pattern, c.phone), lambda: self.obs.said(c, pattern))

    def deliver(self, oid, statuses=NEXT):
        for s in statuses:
            self.status(oid, s)

    def customer(self, c):
        w = c.words
        if c.kind.startswith("sold-out"):
            # Only once the scarce orders hold every unit.
            scarce = [s for s in self.customers if s.kind == "scarce"]
            self.wait("the scarce orders", lambda: all(self.obs.order(s)[1] not in (None, "CREATED")
                                                       for s in scarce))
        self.sms(c, c.text)
        self.sms(c, w["yes"])
        if c.kind == "sold-out":
            return
        if c.kind.startswith("pix"):
            self.wait_status(c, "CREATED")
            self.wait_said(c, r"000201")  # the Pix code: the workflow waits for the payment
            oid = self.obs.order(c)[0]
            if c.kind == "pix-cancel":
                self.sms(c, w["cancel"])
                self.sms(c, w["yes"])
                self.wait_status(c, "CANCELLED")
                return
            self.paid(oid)
        oid = self.wait_status(c, "CONFIRMED")
        if c.kind == "cancel":
            self.sms(c, w["cancel"])
            self.sms(c, w["yes"])
            self.wait_status(c, "CANCELLED")
            return
        if c.kind == "cancel-late":
            self.status(oid, "PREPARING")
            self.sms(c, w["cancel"])
            self.sms(c, w["yes"])
            self.wait_said(c, "Não é mais possível cancelar|can no longer be cancelled")
            return self.deliver(oid, NEXT[1:])
        if c.kind == "address":
            self.sms(c, w["move"] % MOVE_SAME_ZONE)
            self.wait_said(c, MOVE_SAME_ZONE + ".*(Taxa|fee)")
        elif c.kind == "address-fee":
            self.sms(c, w["move"] % MOVE_DEARER)
            self.wait_said(c, "R\\$ ?9[,.]00 \\(")  # the new fee, asked
            self.sms(c, w["yes"])
            self.wait_said(c, MOVE_DEARER + ".*(Taxa|fee)")
        elif c.kind == "address-late":
            self.deliver(oid, NEXT[:3])
            self.sms(c, w["move"] % MOVE_SAME_ZONE)
            self.wait_said(c, "Não é mais possível mudar o endereço|can no longer change")
            return self.deliver(oid, NEXT[3:])
        self.deliver(oid)

    def run_customer(self, c):
        try:
            self.customer(c)
        except Stopped:
            pass
        except BaseException as e:  # the first failure stops the run
            with self.obs.lock:
                said = list(self.obs.bodies.get(c.phone, ()))
            self.errors.append("%s (%s, %r): %s; messages to the customer: %r" % (c.phone, c.kind, c.text, e, said))
            self.stop.set()
            self.up.set()

    # ---- the run -------------------------------------------------------------

    def go(self):
        t0 = time.monotonic()
        self.start_daemon()
        self.obs.start()
        threads = [threading.Thread(target=self.run_customer, args=(c,), daemon=True) for c in self.customers]
        for t in threads:
            t.start()
        killer = threading.Thread(target=self.killer, daemon=True)
        killer.start()
        for t in threads:
            t.join()
        self.finished.set()
        killer.join()
        if self.errors:
            self.obs.done.set()
            raise AssertionError("%s run: %s\nthe daemon's last log lines:\n%s" % (
                self.name, "\n".join(self.errors[:5]), "\n".join(self.daemon.log[-20:])))
        # Everything settled: nothing waiting in the inbox, running in the
        # engine or waiting to be sent.
        self.wait("everything to settle", lambda: self.fresh(
            "SELECT (SELECT count(*) FROM inbox WHERE status IN ('incoming', 'active')) + (SELECT count(*) FROM "
            "executions WHERE status = 'RUNNING') + (SELECT count(*) FROM outbox WHERE status IN ('queued', "
            "'sending', 'deferred'))") == 0)
        self.obs.done.set()
        self.case.assertEqual(self.daemon.stop(), 0)
        self.seconds = time.monotonic() - t0
        return self.result()

    # ---- what it left ----------------------------------------------------------

    def result(self):
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.state, "deliveryd.sqlite"), uri=True)
        try:
            q = lambda sql: db.execute(sql).fetchall()  # noqa: E731
            by_id = {}
            for row in q("SELECT id, customer, status, cancel_reason, payment, payment_status, address, zone, "
                         "delivery_fee_cents, subtotal_cents, total_cents FROM orders"):
                by_id[row[0]] = {"customer": row[1], "status": row[2], "cancel_reason": row[3], "payment": row[4],
                                 "payment_status": row[5], "address": row[6], "zone": row[7], "fee": row[8],
                                 "subtotal": row[9], "total": row[10], "items": [], "history": [],
                                 "reserved": [], "states": None, "execution": None}
            for oid, sku, qty, price in q("SELECT order_id, sku, qty, unit_price_cents FROM order_items "
                                          "ORDER BY order_id, line"):
                by_id[oid]["items"].append((sku, qty, price))
            for oid, status, reason in q("SELECT order_id, status, reason FROM order_history ORDER BY id"):
                by_id[oid]["history"].append((status, reason))
            for oid, sku, qty in q("SELECT order_id, sku, qty FROM stock_reservations ORDER BY order_id, sku"):
                by_id[oid]["reserved"].append((sku, qty))
            executions = collections.Counter()
            # An execution's history: the events appended to
            # execution_events, then any its state still holds.
            stored = collections.defaultdict(list)
            for name, events in q("SELECT execution, events FROM execution_events ORDER BY execution, first_id"):
                stored[name] += json.loads(events)
            for name, status, error, state in q("SELECT name, status, error, state FROM executions"):
                events = stored[name] + json.loads(state)["events"]
                if [e["id"] for e in events] != list(range(1, len(events) + 1)):
                    raise AssertionError("the history of %s is not numbered 1, 2, ...: %s"
                                         % (name, [e["id"] for e in events]))
                executions[name] += 1
                by_id[name]["execution"] = (status, error, [e["type"] for e in events].count("ExecutionStarted"))
                by_id[name]["states"] = [e["stateEnteredEventDetails"]["name"] for e in events
                                         if "stateEnteredEventDetails" in e]
            order_of = {o["customer"]: (oid, o) for oid, o in by_id.items()}
            bodies = collections.defaultdict(collections.Counter)
            possible_duplicates = 0
            for to, body, dup in q("SELECT recipient, body, possible_duplicate FROM outbox ORDER BY id"):
                bodies[to][neutral(body, order_of.get(to, (None,))[0])] += 1
                possible_duplicates += dup
            inbox = collections.defaultdict(collections.Counter)
            for who, status in q("SELECT customer, status FROM inbox"):
                inbox[who][status] += 1
            stock = dict(q("SELECT sku, available FROM stock"))
        finally:
            db.close()
        customers = {}
        for c in self.customers:
            oid, o = order_of.get(c.phone, (None, None))
            customers[c.phone] = {"order": o, "messages": dict(bodies[c.phone]), "inbox": dict(inbox[c.phone]),
                                  "sent": c.sent}
        return {"customers": customers, "stock": stock, "orders": len(by_id), "executions": executions,
                "possible_duplicates": possible_duplicates}


def neutral(body, oid):
    """A message without what differs from one run to another: the order
    id, the tracking link, the Pix code (it holds the id), clock times."""
    if oid:
        body = body.replace(oid, "ORDER")
    body = re.sub(r"/t/[0-9a-z]{32}", "/t/TOKEN", body)
    body = re.sub(r"000201.*?6304[0-9A-F]{4}", "PIXCODE", body)
    return re.sub(r"\b\d{2}:\d{2}\b", "HH:MM", body)


def outcome(kind):
    """How an order of that kind ends: (status, cancel reason), or None for no order."""
    return {"sold-out": None, "pix-cancel": ("CANCELLED", "customer"),
            "cancel": ("CANCELLED", "customer")}.get(kind, ("DELIVERED", None))


class WorkflowCrash(harness.DaemonTestCase):
    def check(self, name, run, r):
        """What must hold in any run, kills or not."""
        self.assertEqual(r["orders"], sum(1 for x in r["customers"].values() if x["order"]), name)
        self.assertEqual(max(r["executions"].values(), default=1), 1, name)
        taken = collections.Counter()
        for c in run.customers:
            who, x = c.phone, r["customers"][c.phone]
            o = x["order"]
            # the branch the customer took is the one meant
            self.assertEqual(o and (o["status"], o["cancel_reason"]), outcome(c.kind), "%s run: %s" % (name, who))
            if c.kind.startswith("address"):
                moved = {"address": MOVE_SAME_ZONE, "address-fee": MOVE_DEARER}.get(c.kind)
                self.assertEqual(o["address"] == moved, bool(moved), "%s run: %s" % (name, who))
                self.assertEqual(o["fee"], 900 if c.kind == "address-fee" else 500, "%s run: %s" % (name, who))
            if o:
                self.assertEqual(any(sku == SCARCE for sku, _, _ in o["items"]), c.kind == "scarce", who)
                self.assertEqual(o["payment_status"], {"pix": "paid", "pix-cancel": "voided", "cancel": "voided"}
                                 .get(c.kind, "authorised"), "%s run: %s" % (name, who))
            for body, n in x["messages"].items():
                self.assertEqual(n, 1, "%s run: %s got %r %d times" % (name, who, body, n))
            # every message the customer sent stored once, and handled
            self.assertEqual(x["inbox"], {"done": x["sent"]}, "%s run: %s's inbox" % (name, who))
            if not o:
                continue
            statuses = [s for s, _ in o["history"]]
            self.assertEqual(len(statuses), len(set(statuses)), "%s run: %s history %r" % (name, who, statuses))
            self.assertIn(o["status"], ("DELIVERED", "CANCELLED"), "%s run: %s" % (name, who))
            self.assertEqual(o["execution"], ("SUCCEEDED", None, 1), "%s run: %s" % (name, who))
            self.assertEqual(o["states"][:1], ["Availability"], "%s run: %s" % (name, who))
            held = collections.Counter()
            if o["status"] != "CANCELLED":
                for sku, qty, _ in o["items"]:
                    held[sku] += qty
            self.assertEqual(dict(o["reserved"]), dict(held), "%s run: %s reservations" % (name, who))
            taken.update(held)
        for sku, available in r["stock"].items():
            start = run.n_scarce if sku == SCARCE else STOCK
            self.assertEqual(available, start - taken[sku], "%s run: stock of %s" % (name, sku))
        self.assertEqual(r["stock"][SCARCE], 0, name)

    def test_kill_9_while_orders_run(self):
        customers = plan(ORDERS, SEED)
        reference = Run(self, "reference", customers)
        ref = reference.go()
        self.check("reference", reference, ref)
        for c in customers:
            c.sent = 0
        # The same requests will be acknowledged: kill after random ones.
        kill_at = random.sample(range(1, reference.acks), min(KILLS, reference.acks - 1))
        crashed = Run(self, "crash", customers, kill_at)
        got = crashed.go()
        self.check("crash", crashed, got)
        for c in customers:
            a, b = ref["customers"][c.phone], got["customers"][c.phone]
            self.assertEqual(b["order"], a["order"], "%s (%s): the order ended otherwise" % (c.phone, c.kind))
            self.assertEqual(b["messages"], a["messages"], "%s (%s): other messages" % (c.phone, c.kind))
        self.assertEqual(got["stock"], ref["stock"])
        kinds = collections.Counter(c.kind for c in customers)
        sys.stderr.write("\n%d orders (%s); %d kills (%d while starting, %d after the last request); %d requests "
                         "tried again, %d of them found done; reference %.1f s, with kills %.1f s; %d outbound "
                         "message(s) flagged possible_duplicate\n" % (
                             ORDERS, ", ".join("%s %d" % kv for kv in sorted(kinds.items())), crashed.kills,
                             crashed.early_kills, crashed.late_kills, crashed.retried, crashed.answered_late,
                             reference.seconds, crashed.seconds, got["possible_duplicates"]))


if __name__ == "__main__":
    harness.main()
