# SPDX-License-Identifier: MIT
"""The reply templates are part of the configuration: --check-config
reports a broken template at its file:line, a missing directory at the key
that names it, and a reload with a broken template keeps the running
configuration; a fixed one is taken up."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import DELIVERYD, ETC, DaemonTestCase, main, make_etc, read_text, write_text  # noqa: E402


def check(config, *extra, cwd=None):
    return subprocess.run([DELIVERYD, "-c", config, "--check-config"] + list(extra), capture_output=True, text=True,
                          cwd=cwd)


class Templates(DaemonTestCase):
    def test_example_templates_are_found_beside_the_config(self):
        p = subprocess.run([DELIVERYD, "-c", os.path.join(ETC, "deliveryd.conf"), "--dump-config"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("templates = %s" % os.path.join(os.path.realpath(ETC), "templates"), p.stdout.splitlines())
        self.assertIn("max_segments = 3", p.stdout.splitlines())
        self.assertIn("fold_accents = no", p.stdout.splitlines())

    def test_every_template_problem_with_its_line(self):
        conf = make_etc(self.tmp)
        tdir = os.path.join(self.tmp, "etc", "templates")
        ask = os.path.join(tdir, "pt-BR", "ask_items.txt")
        write_text(ask, "# what to ask first\nOi, {nome}!\nO que vai ser?\n")
        summary = os.path.join(tdir, "en", "summary.txt")
        write_text(summary, read_text(summary) + "Total: {total\n")
        n = len(read_text(summary).splitlines())
        os.unlink(os.path.join(tdir, "en", "help.txt"))
        write_text(os.path.join(tdir, "en", "hepl.txt"), "typo\n")
        p = check(conf)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        lines = p.stderr.splitlines()
        self.assertEqual(lines, [
            ask + ":2: placeholder {nome} is not declared for template ask_items (it may use: {store})",
            summary + ":%d: unterminated '{' (write '{{' for a literal brace)" % n,
            os.path.join(tdir, "en", "help.txt") + ": cannot read template: No such file or directory",
            os.path.join(tdir, "en") + ": hepl.txt: unknown template id 'hepl' (see deliveryd.conf(5))",
            conf + ": configuration has problems; see above",
        ])

    def test_catalog_and_template_problems_together(self):
        conf = make_etc(self.tmp)
        with open(os.path.join(self.tmp, "etc", "catalog.conf"), "a") as f:
            f.write("\n[pz-margherita]\nname = Again\nprice = 1\nstock = 1\n")
        write_text(os.path.join(self.tmp, "etc", "templates", "en", "eta.txt"), "{when}\n")
        p = check(conf)
        self.assertEqual(p.returncode, 1)
        self.assertIn("duplicate product [pz-margherita]", p.stderr)
        self.assertIn("en/eta.txt:1: placeholder {when} is not declared for template eta", p.stderr)

    def test_missing_directory_points_at_the_key(self):
        conf = make_etc(self.tmp)
        shutil.rmtree(os.path.join(self.tmp, "etc", "templates"))
        line = read_text(conf).splitlines().index("templates = templates") + 1
        p = check(conf)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d: store.templates: cannot read '%s/etc/templates': No such file or directory" %
                      (conf, line, os.path.realpath(self.tmp)), p.stderr)

        p = check(conf, "-o", "store.templates=elsewhere", cwd=self.tmp)
        self.assertIn("-o store.templates=elsewhere: store.templates: cannot read '%s/elsewhere': "
                      "No such file or directory" % os.path.realpath(self.tmp), p.stderr)

        # a copy somewhere else, named in the file
        shutil.copytree(os.path.join(ETC, "templates"), os.path.join(self.tmp, "replies"))
        write_text(conf, read_text(conf).replace("templates = templates", "templates = ../replies"))
        p = check(conf)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_bad_sms_keys(self):
        p = check(os.path.join(ETC, "deliveryd.conf"), "-o", "sms.max_segments=11", "-o", "sms.fold_accents=maybe")
        self.assertEqual(p.returncode, 1)
        self.assertIn("-o sms.max_segments=11: sms.max_segments: value '11' out of range (1 to 10)", p.stderr)
        self.assertIn("-o sms.fold_accents=maybe: sms.fold_accents: invalid boolean 'maybe' (use yes or no)", p.stderr)
        p = check(os.path.join(ETC, "deliveryd.conf"), "-o", "sms.max_segments=1", "-o", "sms.fold_accents=yes")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_reload_with_a_broken_template_keeps_running(self):
        conf = make_etc(self.tmp)
        tpl = os.path.join(self.tmp, "etc", "templates", "pt-BR", "status.txt")
        good = read_text(tpl)
        d = self.daemon(config=conf)
        d.allowed = (r"Reload refused", r"status\.txt:\d+: ")
        d.start()
        write_text(tpl, good + "Pedido {order_idd}\n")
        n = len(read_text(tpl).splitlines())
        p = d.ctl("reload", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d: placeholder {order_idd} is not declared for template status" % (tpl, n), p.stderr)
        self.assertIn("reload refused: still running generation 1", p.stderr)
        self.assertEqual(d.stats()["state"], "running")

        write_text(tpl, good)
        p = d.ctl("reload")
        self.assertIn("reloaded: generation 2", p.stdout)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
