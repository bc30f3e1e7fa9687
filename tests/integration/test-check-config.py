# SPDX-License-Identifier: MIT
"""deliveryd --check-config and --dump-config: every problem reported as
file:line: message, non-zero exit; and a daemon that refuses to start on a
broken configuration."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import DELIVERYD, ETC, DaemonTestCase, main, make_etc, read_text, write_text  # noqa: E402


def check(config, *extra):
    return subprocess.run([DELIVERYD, "-c", config, "--check-config"] + list(extra), capture_output=True, text=True)


class CheckConfig(DaemonTestCase):
    def test_example_config_is_valid(self):
        p = check(os.path.join(ETC, "deliveryd.conf"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration OK (13 products, 4 zones)", p.stdout)
        self.assertEqual(p.stderr, "")

    def test_every_problem_with_its_line(self):
        conf = make_etc(self.tmp)
        with open(conf, "w") as f:
            f.write("# broken on purpose\n"      # 1
                    "[daemon]\n"                 # 2
                    "log_level = chatty\n"       # 3
                    "drain_timeout = 2h\n"       # 4
                    "[http]\n"                   # 5
                    "listen = localhost\n"       # 6
                    "max_body = 1\n"             # 7
                    "colour = blue\n"            # 8
                    "[fax]\n"                    # 9
                    "host = x\n"                 # 10
                    "[nlu]\n"                    # 11
                    "backend = gpt\n")           # 12
        p = check(conf)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        lines = p.stderr.splitlines()
        self.assertEqual(lines, [
            conf + ":3: daemon.log_level: invalid value 'chatty' (one of: emerg, alert, crit, err, warning, notice, "
                   "info, debug)",
            conf + ":4: daemon.drain_timeout: value '2h' out of range (0s to 600s)",
            conf + ":6: http.listen: invalid address 'localhost': expected host:port",
            conf + ":7: http.max_body: value '1' out of range (1024 to 67108864)",
            conf + ":8: unknown key 'colour' in section [http]",
            conf + ":9: unknown section [fax]",
            conf + ":12: nlu.backend: invalid value 'gpt' (one of: rules, bedrock)",
            conf + ": configuration has problems; see above",
        ])

    def test_missing_file(self):
        p = check(os.path.join(self.tmp, "nope.conf"))
        self.assertEqual(p.returncode, 1)
        self.assertIn(os.path.join(self.tmp, "nope.conf") + ": cannot read configuration: No such file or directory",
                      p.stderr)

    def test_workflow_definition_is_checked(self):
        bad = os.path.join(self.tmp, "order.asl.json")
        write_text(bad, '{"StartAt": "Quote", "States": {"Quote": {"Type": "Task", "Resource": '
                        '"arn:aws:states:::dynamodb:putItem", "End": true}}}')
        p = check(os.path.join(ETC, "deliveryd.conf"), "-o", "engine.definition=" + bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn("engine.definition %s: " % bad, p.stderr)
        self.assertIn("Quote", p.stderr)
        # the Step Functions backend does not load it
        p = check(os.path.join(ETC, "deliveryd.conf"), "-o", "engine.definition=" + bad, "-o",
                  "engine.backend=stepfunctions")
        self.assertNotIn("engine.definition", p.stderr)

    def test_missing_catalog_points_at_the_key(self):
        conf = make_etc(self.tmp)
        text = read_text(conf).replace("catalog = catalog.conf", "catalog = menu.conf")
        write_text(conf, text)
        line = text.splitlines().index("catalog = menu.conf") + 1
        p = check(conf)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d: store.catalog: cannot read '%s/etc/menu.conf': No such file or directory" %
                      (conf, line, self.tmp), p.stderr)

    def test_catalog_problem_points_into_the_catalog(self):
        conf = make_etc(self.tmp)
        cat = os.path.join(self.tmp, "etc", "catalog.conf")
        with open(cat, "a") as f:
            f.write("\n[pz-margherita]\nname = Again\nprice = 1\nstock = 1\n")
        n = len(read_text(cat).splitlines())
        p = check(conf)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d: duplicate product [pz-margherita]" % (cat, n - 3), p.stderr)

    def test_dropin_problem_names_the_dropin(self):
        conf = make_etc(self.tmp)
        d = conf + ".d"
        os.mkdir(d)
        with open(os.path.join(d, "50-local.conf"), "w") as f:
            f.write("[engine]\nbackend = cloud\n")
        p = check(conf)
        self.assertEqual(p.returncode, 1)
        self.assertIn(d + "/50-local.conf:2: engine.backend: invalid value 'cloud' (one of: local, stepfunctions)",
                      p.stderr)

    def test_dropin_paths_are_relative_to_the_dropin(self):
        conf = make_etc(self.tmp)
        d = conf + ".d"
        os.mkdir(d)
        write_text(os.path.join(d, "10-menu.conf"), "[store]\ncatalog = ../catalog.conf\n")
        # a relative -c, as an admin in /etc would type it
        p = subprocess.run([DELIVERYD, "-c", "etc/deliveryd.conf", "--dump-config"], capture_output=True, text=True,
                           cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("catalog = %s/etc/deliveryd.conf.d/../catalog.conf" % os.path.realpath(self.tmp),
                      p.stdout.splitlines())

    def test_control_socket_path_too_long(self):
        p = check(os.path.join(ETC, "deliveryd.conf"), "-o", "control.socket=/" + "s" * 120)
        self.assertEqual(p.returncode, 1)
        self.assertIn("control.socket: '/%s' is not a usable Unix socket path (absolute, at most 107 bytes)" %
                      ("s" * 120), p.stderr)

    def test_override_problem(self):
        p = check(os.path.join(ETC, "deliveryd.conf"), "-o", "sms.transport=pigeon", "-o", "nosuch.key=1")
        self.assertEqual(p.returncode, 1)
        self.assertIn("-o sms.transport=pigeon: sms.transport: invalid value 'pigeon' (one of: log, sns, eum)",
                      p.stderr)
        self.assertIn("-o nosuch.key=1: unknown key 'nosuch.key'", p.stderr)

    def test_dump_config_shows_effective_values_and_sources(self):
        conf = make_etc(self.tmp)
        p = subprocess.run([DELIVERYD, "-c", conf, "--dump-config", "-o", "http.max_body=1M"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.splitlines()
        self.assertIn("[http]", out)
        self.assertIn("max_body = 1048576", out)
        self.assertIn("# -o http.max_body=1M", out)
        self.assertIn("name = Pizzaria Bella Napoli", out)
        self.assertIn("catalog = %s/etc/catalog.conf" % os.path.realpath(self.tmp), out)

    def test_daemon_refuses_to_start_on_broken_config(self):
        conf = make_etc(self.tmp, "[http]\nmax_connections = many\n")
        d = self.daemon(config=conf)
        d.allowed = (r"max_connections", r"Not starting")
        d.start(wait_ready=False)
        self.assertEqual(d.wait(), 1)
        d.wait_log(r"^<3>Not starting: the configuration has problems")
        d.wait_log(r"^<3>.*deliveryd.conf:\d+: http.max_connections: invalid number 'many'")
        self.assertNotIn("READY=1", d.notify.assignments())
        self.assertFalse(os.path.exists(d.state), "nothing may be created for a configuration that is refused")

    def test_usage_errors(self):
        p = subprocess.run([DELIVERYD, "--no-such-option"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([DELIVERYD, "stray"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unexpected argument 'stray'", p.stderr)


if __name__ == "__main__":
    main()
