# SPDX-License-Identifier: MIT
"""deliveryctl parse TEXT: the rules backend's reading of a customer's
message as one line of JSON, with the example configuration and no daemon;
a broken rules file is reported as file:line and exits 1, by deliveryctl
parse and by deliveryd --check-config alike."""

import ctypes
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import DELIVERYCTL, DELIVERYD, TOP_SRCDIR, DaemonTestCase, main, make_etc, read_text, write_text  # noqa: E402

CASES = [
    ("Boa noite, queria pedir duas calabresas pra Rua Teodoro Sampaio 800, pago em dinheiro",
     '{"intent": "place_order", "lang": "pt", "items": [{"sku": "pz-calabresa", "qty": 2}], "payment": "cash", '
     '"address": "Rua Teodoro Sampaio 800", "order_id": null}'),
    ("cadê meu pedido 9XK4MB?",
     '{"intent": "order_status", "lang": "pt", "items": [], "payment": null, "address": null, "order_id": "9XK4MB"}'),
    ("quero mudar o endereço pra Av. Paulista, 1000 - apto 42",
     '{"intent": "change_address", "lang": "pt", "items": [], "payment": null, '
     '"address": "Av. Paulista, 1000 - apto 42", "order_id": null}'),
    ("SIM",
     '{"intent": "confirm", "lang": "pt", "items": [], "payment": null, "address": null, "order_id": null}'),
    ("PARE",
     '{"intent": "opt_out", "lang": "pt", "items": [], "payment": null, "address": null, "order_id": null}'),
    ("I'd like a portuguese pizza and two cokes, paying by card",
     '{"intent": "place_order", "lang": "en", "items": [{"sku": "pz-portuguesa", "qty": 1}, '
     '{"sku": "bebida-coca-2l", "qty": 2}], "payment": "card", "address": null, "order_id": null}'),
    ("status of order #9xk4mb?",
     '{"intent": "order_status", "lang": "en", "items": [], "payment": null, "address": null, "order_id": "9XK4MB"}'),
    ("2 cheeseburgers to 1500 Augusta Street",
     '{"intent": "place_order", "lang": "en", "items": [{"sku": "lanche-x-burguer", "qty": 2}], "payment": null, '
     '"address": "1500 Augusta Street", "order_id": null}'),
    ("talk to a person please",
     '{"intent": "human", "lang": "en", "items": [], "payment": null, "address": null, "order_id": null}'),
    ("what is the meaning of life",
     '{"intent": "other", "lang": "en", "items": [], "payment": null, "address": null, "order_id": null}'),
]


PR_SET_MDWE = 65  # what MemoryDenyWriteExecute= sets up (Linux 6.3)


def deny_write_execute():
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_MDWE, 1, 0, 0, 0) != 0:
        os._exit(77)


def parse(text, config=None, *extra, cwd=None, preexec_fn=None):
    argv = [DELIVERYCTL, "-c", config or os.path.join("etc", "deliveryd.conf")] + list(extra) + ["parse", text]
    return subprocess.run(argv, capture_output=True, cwd=cwd or TOP_SRCDIR, timeout=60, preexec_fn=preexec_fn)


class Parse(DaemonTestCase):
    def test_examples(self):
        for text, want in CASES:
            with self.subTest(text=text):
                p = parse(text)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stderr, b"")
                self.assertEqual(p.stdout.decode("utf-8"), want + "\n")

    def test_without_jit(self):
        # The unit's MemoryDenyWriteExecute=yes refuses PCRE2 JIT: the
        # interpreter must give the same answers.
        for text, want in CASES:
            with self.subTest(text=text):
                p = parse(text, preexec_fn=deny_write_execute)
                if p.returncode == 77:
                    raise unittest.SkipTest("this kernel has no PR_SET_MDWE")
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout.decode("utf-8"), want + "\n")

    def test_any_bytes_give_utf8_json(self):
        # the argument is not UTF-8: still one valid object
        p = parse(b"Rua \xff\xfe Augusta 1500 \xc3")
        self.assertEqual(p.returncode, 0, p.stderr)
        obj = json.loads(p.stdout.decode("utf-8"))
        self.assertEqual(obj["address"], "Rua Augusta 1500")

    def test_broken_rules_give_file_and_line(self):
        conf = make_etc(self.tmp)
        rules = os.path.join(self.tmp, "etc", "nlu", "intents.conf")
        text = read_text(rules)
        # a second [intent help] is refused at its header
        write_text(rules, text + "\n[intent help]\nen = ^socorro$\n")
        p = parse("ajuda", conf)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"")
        self.assertEqual(p.stderr.decode().splitlines(), [
            "%s:%d: duplicate section [intent help]" % (rules, len(text.splitlines()) + 2),
            "deliveryctl: %s: configuration has problems; see above" % conf,
        ])

        # a bad pattern: PCRE2's message and offset, at its line
        write_text(rules, text.replace("[intent help]\n", "[intent help]\nen = (unclosed\n", 1))
        line = text.splitlines().index("[intent help]") + 2
        want = "%s:%d: bad pattern '(unclosed': missing closing parenthesis at offset 9" % (rules, line)
        p = parse("ajuda", conf)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.decode().splitlines()[0], want)

        c = subprocess.run([DELIVERYD, "-c", conf, "--check-config"], capture_output=True, text=True, timeout=60)
        self.assertEqual(c.returncode, 1)
        self.assertEqual(c.stderr.splitlines()[0], want)

    def test_missing_rules_point_at_the_key(self):
        conf = make_etc(self.tmp, "[nlu]\nrules = nope.conf\n")
        line = len(read_text(conf).splitlines())
        p = parse("oi", conf)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d: nlu.rules: cannot read '%s/etc/nope.conf': No such file or directory"
                      % (conf, line, os.path.realpath(self.tmp)), p.stderr.decode())

    def test_config_problem(self):
        conf = make_etc(self.tmp, "[nlu]\nbackend = gpt\n")
        line = len(read_text(conf).splitlines())
        p = parse("oi", conf)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"")
        self.assertIn("%s:%d: nlu.backend: invalid value 'gpt' (one of: rules, bedrock)" % (conf, line),
                      p.stderr.decode())

    def test_override_max_input(self):
        text = " " * 300 + "quero 2 calabresas"
        p = parse(text, None, "-o", "nlu.max_input=256")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["items"], [])
        p = parse(text)
        self.assertEqual(json.loads(p.stdout)["items"], [{"sku": "pz-calabresa", "qty": 2}])

    def test_usage(self):
        p = subprocess.run([DELIVERYCTL, "-c", os.path.join(TOP_SRCDIR, "etc", "deliveryd.conf"), "parse"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: deliveryctl parse TEXT", p.stderr)


if __name__ == "__main__":
    main()
