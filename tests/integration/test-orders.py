#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Orders through the real daemon: deliveryctl orders / order ID, the
stock seeded from the catalog, and the tracking page GET /t/TOKEN.

Nothing in the daemon creates orders yet (the conversation comes later),
so, as test-outbox.py does for outbound messages, these tests let the
daemon create its schema once, stop it, write orders with sqlite3 as the
orders module would have (the unit tests check that module's own
writes), and start it again."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import TIMEOUT, DaemonTestCase, main  # noqa: E402

CURL = shutil.which("curl")
T0 = 1796400000 * 1000000  # 2026-12-04T16:00:00Z, 13:00 in São Paulo
MIN = 60 * 1000000
TOKEN = "7kq2xmabcdefghjkmnpqrstvwxyz0123"  # 32 characters of the token alphabet
PUBLIC = "https://pedidos.example.com"


def curl(url):
    """(status, headers {lower-case name: value}, body)."""
    p = subprocess.run([CURL, "-sS", "-D", "-", "--max-time", str(TIMEOUT), url], capture_output=True, timeout=TIMEOUT)
    head, _, body = p.stdout.decode("utf-8").partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def insert_order(db, oid, customer, status, created_at, token, lang="pt", history=()):
    db.execute(
        "INSERT INTO orders (id, customer, channel, lang, status, address, zone, zone_name, delivery_fee_cents, "
        "subtotal_cents, total_cents, payment, eta, tracking_token, created_at, updated_at) "
        "VALUES (?, ?, 'sms', ?, ?, 'Rua Augusta 1500 apto 12', 'centro-sul', 'Consolação e Bela Vista', 500, "
        "11980, 12480, 'pix', ?, ?, ?, ?)",
        (oid, customer, lang, status, created_at + 25 * MIN, token, created_at, created_at))
    db.execute("INSERT INTO order_items VALUES (?, 0, 'pz-calabresa', 2, 5290, 'Pizza Calabresa')", (oid,))
    db.execute("INSERT INTO order_items VALUES (?, 1, 'bebida-coca-2l', 1, 1400, 'Coca-Cola 2L')", (oid,))
    db.execute("INSERT INTO order_history (order_id, at, status) VALUES (?, ?, 'CREATED')", (oid, created_at))
    for at, st in history:
        db.execute("INSERT INTO order_history (order_id, at, status) VALUES (?, ?, ?)", (oid, at, st))


class Orders(DaemonTestCase):
    def stopped_daemon_db(self):
        d = self.daemon().start()
        self.assertEqual(d.stop(), 0)
        return d, sqlite3.connect(os.path.join(d.state, "deliveryd.sqlite"))

    def test_stock_seeded_from_catalog_and_kept(self):
        first, db = self.stopped_daemon_db()
        stock = dict(db.execute("SELECT sku, available FROM stock"))
        self.assertEqual(stock["pz-margherita"], 20)
        self.assertEqual(stock["pz-frango-catupiry"], 0)
        self.assertEqual(stock["sobremesa-acai"], 8)
        self.assertEqual(len(stock), 13)
        with db:
            db.execute("UPDATE stock SET available = 7 WHERE sku = 'pz-margherita'")
            db.execute("DELETE FROM stock WHERE sku = 'sobremesa-brownie'")
        db.close()
        # The store is the truth: a restart keeps 7 and only adds what is missing.
        d = self.daemon(state=first.state).start()
        self.assertEqual(d.stop(), 0)
        db = sqlite3.connect(os.path.join(first.state, "deliveryd.sqlite"))
        stock = dict(db.execute("SELECT sku, available FROM stock"))
        db.close()
        self.assertEqual(stock["pz-margherita"], 7)
        self.assertEqual(stock["sobremesa-brownie"], 12)

    def test_orders_and_order(self):
        first, db = self.stopped_daemon_db()
        with db:
            # created out of order: listed oldest first
            insert_order(db, "B2C3D4", "ana@example.com", "CREATED", T0 + 10 * MIN, "b" * 32)
            insert_order(db, "7KQ2XM", "+5511987654321", "CONFIRMED", T0, TOKEN, history=[(T0 + MIN, "CONFIRMED")])
        db.close()
        d = self.daemon(state=first.state, overrides=["http.public_url=" + PUBLIC + "/"]).start()

        orders = json.loads(d.ctl("orders", "--json").stdout)
        self.assertEqual([o["id"] for o in orders], ["7KQ2XM", "B2C3D4"])

        for spelling in ("7KQ2XM", "#7kq2xm", "7kQ2xM"):
            o = json.loads(d.ctl("order", spelling, "--json").stdout)
            self.assertEqual(o["id"], "7KQ2XM")
        self.assertEqual(o["customer"], "+5511987654321")
        self.assertEqual(o["status"], "CONFIRMED")
        self.assertEqual(o["items"][0], {"sku": "pz-calabresa", "qty": 2, "unit_price_cents": 5290,
                                         "name": "Pizza Calabresa"})
        self.assertEqual(len(o["items"]), 2)
        self.assertEqual(o["address"], "Rua Augusta 1500 apto 12")
        self.assertEqual(o["zone"], "centro-sul")
        self.assertEqual(o["delivery_fee_cents"], 500)
        self.assertEqual(o["total_cents"], 12480)
        self.assertEqual(o["payment"], "pix")
        self.assertEqual(o["eta"], "2026-12-04T16:25:00Z")
        self.assertEqual(o["tracking_url"], PUBLIC + "/t/" + TOKEN)
        self.assertEqual([(h["status"], h["at"]) for h in o["history"]],
                         [("CREATED", "2026-12-04T16:00:00Z"), ("CONFIRMED", "2026-12-04T16:01:00Z")])

        text = d.ctl("order", "7KQ2XM").stdout
        self.assertRegex(text, r"order #7KQ2XM: CONFIRMED")
        self.assertIn("R$124.80", text)
        self.assertRegex(d.ctl("orders").stdout, r"(?m)^#7KQ2XM CONFIRMED .*\n#B2C3D4 CREATED ")

        p = d.ctl("order", "ZZZZZZ", "--json", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no order ZZZZZZ", p.stderr)
        self.assertEqual(p.stdout, "")
        p = d.ctl("order", "not-an-id", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not an order id", p.stderr)
        self.assertEqual(d.stop(), 0)

    def test_no_orders(self):
        d = self.daemon().start()
        self.assertEqual(json.loads(d.ctl("orders", "--json").stdout), [])
        self.assertEqual(d.ctl("orders").stdout, "")

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_tracking_page(self):
        first, db = self.stopped_daemon_db()
        with db:
            insert_order(db, "7KQ2XM", "+5511987654321", "PREPARING", T0, TOKEN,
                         history=[(T0 + MIN, "CONFIRMED"), (T0 + 5 * MIN, "PREPARING")])
            insert_order(db, "E5F6G7", "bob@example.com", "CREATED", T0, "e" * 32, lang="en")
        db.close()
        d = self.daemon(state=first.state).start()
        base = "http://127.0.0.1:%d" % d.http_port()

        status, headers, body = curl(base + "/t/" + TOKEN)
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertEqual(headers["content-security-policy"], "default-src 'none'; style-src 'unsafe-inline'")
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        self.assertEqual(headers["referrer-policy"], "no-referrer")
        self.assertEqual(headers["cache-control"], "no-store")
        self.assertIn('<meta http-equiv="refresh" content="60">', body)
        self.assertIn("Pedido #7KQ2XM", body)
        self.assertIn('<p class="status">Em preparo</p>', body)
        # times in the store's zone (America/Sao_Paulo, UTC-3)
        self.assertIn("<li><time>04/12 13:05</time> Em preparo</li>", body)
        self.assertIn("Previsão de entrega: <strong>04/12 13:25</strong>", body)
        self.assertIn("Consolação e Bela Vista", body)
        self.assertIn("2 × Pizza Calabresa", body)
        # nothing personal beyond the neighbourhood
        self.assertNotIn("5511987654321", body)
        self.assertNotIn("Augusta", body)

        status, _, body = curl(base + "/t/" + "e" * 32)
        self.assertEqual(status, 200)
        self.assertIn("Order #E5F6G7", body)
        self.assertIn("Received", body)
        self.assertNotIn("bob@example.com", body)

        wrong = TOKEN[:-1] + ("4" if TOKEN[-1] != "4" else "5")
        for path in ("/t/" + wrong, "/t/" + TOKEN.upper(), "/t/x", "/t/" + "a" * 200, "/t/%27%20OR%201=1--"):
            status, headers, body = curl(base + path)
            self.assertEqual(status, 404, path)
            self.assertEqual(body, "not found\n")
            self.assertNotIn("7KQ2XM", body)
        self.assertEqual(d.stop(), 0)

        # store.timezone: the same page in UTC.
        d = self.daemon(state=first.state, overrides=["store.timezone=UTC"]).start()
        _, _, body = curl("http://127.0.0.1:%d/t/%s" % (d.http_port(), TOKEN))
        self.assertIn("<li><time>04/12 16:05</time> Em preparo</li>", body)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
