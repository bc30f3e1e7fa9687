# SPDX-License-Identifier: MIT
"""The daemon's life under systemd, through a test-owned NOTIFY_SOCKET:
READY and STATUS, reload on SIGHUP with a valid and a broken configuration,
the watchdog, drain and exit 0 on SIGTERM, one instance per state directory,
and deliveryctl against a daemon that is not there."""

import json
import os
import signal
import socket
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import TIMEOUT, DaemonTestCase, main, make_etc, read_text, write_text  # noqa: E402


class Lifecycle(DaemonTestCase):
    def test_ready_status_and_stats(self):
        d = self.daemon().start()
        ready = d.ready_message
        status = [a for a in ready.split("\n") if a.startswith("STATUS=")]
        self.assertEqual(len(status), 1, ready)
        self.assertRegex(status[0], r"^STATUS=Serving: generation 1, http 127\.0\.0\.1:\d+, lmtp off$")
        s = d.stats()
        self.assertEqual(s["state"], "running")
        self.assertEqual(s["pid"], d.proc.pid)
        self.assertEqual(s["config"]["generation"], 1)
        port = s["http"]["port"]
        self.assertGreater(port, 0)  # port 0 in the config: an ephemeral port was bound and is reported
        self.assertEqual(s["http"]["listen"], "127.0.0.1:%d" % port)
        d.wait_log(r"^<6>Listening for http on 127\.0\.0\.1:%d$" % port)
        self.assertEqual(s["store"]["path"], os.path.join(d.state, "deliveryd.sqlite"))
        self.assertEqual(s["catalog"]["products"], 13)
        self.assertEqual(s["backends"], {"nlu": "rules", "engine": "local", "sms": "log", "mail": "log"})
        self.assertEqual(os.stat(d.control).st_mode & 0o777, 0o660)
        self.assertEqual(os.stat(d.state).st_mode & 0o777, 0o750)
        st = d.ctl("status").stdout
        self.assertIn("running (pid %d)" % d.proc.pid, st)
        self.assertIn("Pizzaria Bella Napoli: 13 products, 4 zones", st)
        self.assertEqual(d.stop(), 0)

    def test_reload_valid(self):
        conf = make_etc(self.tmp)
        d = self.daemon(config=conf).start()
        dropin = conf + ".d"
        os.mkdir(dropin)
        write_text(os.path.join(dropin, "10-name.conf"), "[store]\nname = Pizzaria Nova\n")
        d.signal(signal.SIGHUP)
        msg = d.notify.wait_for("RELOADING=1")
        self.assertRegex(msg, r"MONOTONIC_USEC=\d+")
        d.notify.wait_for("READY=1")
        s = d.stats()
        self.assertEqual(s["config"]["generation"], 2)
        self.assertEqual(s["catalog"]["store_name"], "Pizzaria Nova")
        self.assertEqual(s["counters"]["reloads_total"], {"ok": 1, "refused": 0})
        d.wait_log(r"^<6>event=config_reload result=ok generation=2 ")
        self.assertEqual(d.stop(), 0)
        # every configuration taken up is on record
        db = sqlite3.connect(os.path.join(d.state, "deliveryd.sqlite"))
        rows = db.execute("SELECT generation, result FROM config_history ORDER BY id").fetchall()
        self.assertEqual(rows, [(1, "started"), (2, "reloaded")])

    def test_reload_broken_keeps_running_config(self):
        conf = make_etc(self.tmp)
        d = self.daemon(config=conf)
        d.allowed = (r"Reload refused", r"deliveryd\.conf:\d+: ")
        d.start()
        before = d.stats()
        text = read_text(conf)
        write_text(conf, text.replace("backend = rules", "backend = oracle"))
        line = text.splitlines().index("backend = rules") + 1
        d.signal(signal.SIGHUP)
        d.notify.wait_for("RELOADING=1")
        d.notify.wait_for("READY=1")
        d.wait_log(r"^<3>Reload refused; keeping the running configuration \(generation 1\):")
        d.wait_log(r"^<3>%s:%d: nlu\.backend: invalid value 'oracle'" % (conf, line))
        s = d.stats()
        self.assertEqual(s["state"], "running")
        self.assertEqual(s["config"]["generation"], 1)
        self.assertEqual(s["backends"], before["backends"])
        self.assertEqual(s["counters"]["reloads_total"], {"ok": 0, "refused": 1})

        # deliveryctl reload says the same and fails
        p = d.ctl("reload", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d: nlu.backend: invalid value 'oracle'" % (conf, line), p.stderr)
        self.assertIn("reload refused: still running generation 1", p.stderr)

        # fixed: reload works again
        write_text(conf, text)
        p = d.ctl("reload")
        self.assertIn("reloaded: generation 2", p.stdout)
        self.assertEqual(d.stop(), 0)
        db = sqlite3.connect(os.path.join(d.state, "deliveryd.sqlite"))
        rows = db.execute("SELECT result, detail, generation FROM config_history ORDER BY id").fetchall()
        self.assertEqual([r[0] for r in rows], ["started", "refused", "refused", "reloaded"])
        self.assertIn("invalid value 'oracle'", rows[1][1])
        self.assertEqual([r[2] for r in rows], [1, 1, 1, 2])

    def test_reload_restart_only_key_is_kept(self):
        conf = make_etc(self.tmp)
        d = self.daemon(config=conf)
        d.allowed = (r"http\.listen changed, but it can only change with a restart",)
        d.start()
        port = d.http_port()
        # The harness gives -o http.listen; a changed -o cannot come from a
        # reload, so change a restart-only key in the file instead.
        write_text(conf, read_text(conf) + "\n[engine]\nbackend = stepfunctions\n"
                   "state_machine_arn = arn:aws:states:us-east-1:123456789012:stateMachine:order\n")
        d.allowed += (r"engine\.backend changed, but it can only change with a restart",
                      r"engine\.state_machine_arn changed, but it can only change with a restart")
        p = d.ctl("reload")
        self.assertIn("engine.backend changed, but it can only change with a restart", p.stderr)
        s = d.stats()
        self.assertEqual(s["config"]["generation"], 2)
        self.assertEqual(s["backends"]["engine"], "local")
        self.assertEqual(s["http"]["port"], port)
        d.wait_log(r"^<4>%s:\d+: engine\.backend changed" % conf)
        self.assertEqual(d.stop(), 0)

    def test_sigterm_drains_and_exits_zero(self):
        d = self.daemon().start()
        d.signal(signal.SIGTERM)
        msg = d.notify.wait_for("STOPPING=1")
        self.assertIn("STATUS=Draining", msg)
        self.assertEqual(d.wait(), 0)
        d.wait_log(r"^<6>Drained; exiting\.$")
        self.assertFalse(os.path.exists(d.control))

    def test_sigint_like_sigterm(self):
        d = self.daemon().start()
        d.signal(signal.SIGINT)
        d.notify.wait_for("STOPPING=1")
        self.assertEqual(d.wait(), 0)

    def test_drain_waits_for_in_flight_request(self):
        d = self.daemon(overrides=["daemon.drain_timeout=60s"]).start()
        port = d.http_port()
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers not finished: a request in flight
        d.wait_http_connections(1)  # accepted by the daemon before we signal
        d.signal(signal.SIGTERM)
        d.notify.wait_for("STOPPING=1")
        # the listener is closed: nobody new gets in
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
        self.assertIsNone(d.proc.poll(), "exited with a request still in flight")
        c.sendall(b"Connection: close\r\n\r\n")
        reply = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            reply += chunk
        c.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 503"), reply)  # healthz says draining
        self.assertTrue(reply.endswith(b"draining\n"), reply)
        self.assertEqual(d.wait(), 0)

    def test_drain_deadline(self):
        d = self.daemon(overrides=["daemon.drain_timeout=1s"])
        d.allowed = (r"Drain timeout reached with 1 connection",)
        d.start()
        c = socket.create_connection(("127.0.0.1", d.http_port()), timeout=TIMEOUT)
        c.sendall(b"GET /healthz HTTP/1.1\r\n")
        d.wait_http_connections(1)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait(), 0)
        d.wait_log(r"^<4>Drain timeout reached with 1 connection\(s\) still open; exiting\.$")
        c.close()

    def test_watchdog(self):
        d = self.daemon(env={"WATCHDOG_USEC": "200000"})
        d.start()
        d.env["WATCHDOG_PID"] = str(d.proc.pid)  # only for the record: sd_watchdog_enabled() checks it if set
        d.notify.wait_for("WATCHDOG=1")
        d.notify.wait_for("WATCHDOG=1")
        self.assertEqual(d.stop(), 0)

    def test_no_watchdog_unless_asked(self):
        d = self.daemon().start()
        self.assertEqual(d.stop(), 0)
        self.assertNotIn("WATCHDOG=1", d.notify.assignments())

    def test_second_instance_refused(self):
        a = self.daemon().start()
        b = self.daemon(state=a.state)
        b.control = os.path.join(self.tmp, "control-b.sock")
        b.overrides = [o for o in b.overrides if not o.startswith("control.socket=")] + ["control.socket=" + b.control]
        b.allowed = (r"Failed to open the store",)
        b.start(wait_ready=False)
        self.assertEqual(b.wait(), 1)
        b.wait_log(r"^<3>Failed to open the store: state directory %s is in use by another deliveryd \(pid %d\)$" %
                   (a.state, a.proc.pid))
        self.assertNotIn("READY=1", b.notify.assignments())
        self.assertEqual(a.stats()["state"], "running")
        self.assertEqual(a.stop(), 0)

    def test_missing_directories_are_created(self):
        # As on a fresh machine: neither the state directory's parents nor
        # the control socket's directory exist yet.
        state = os.path.join(self.tmp, "var", "lib", "deliveryd")
        d = self.daemon(state=state)
        d.control = os.path.join(self.tmp, "run", "deliveryd", "control.sock")
        d.overrides = [o for o in d.overrides if not o.startswith("control.socket=")] + ["control.socket=" + d.control]
        d.start()
        self.assertEqual(os.stat(state).st_mode & 0o777, 0o750)
        self.assertEqual(d.stats()["state"], "running")
        self.assertEqual(d.stop(), 0)

    def test_restart_after_kill(self):
        a = self.daemon().start()
        instance = a.stats()["store"]["instance_id"]
        a.proc.kill()
        a.proc.wait()
        b = self.daemon(state=a.state).start()  # the lock died with the process; the stale socket is replaced
        self.assertEqual(b.stats()["store"]["instance_id"], instance)
        self.assertEqual(b.stop(), 0)

    def test_ctl_daemon_not_running(self):
        d = self.daemon()
        p = d.ctl("status", check=False)
        self.assertEqual(p.returncode, 3)
        self.assertIn("deliveryd is not running (nothing listens on %s)" % d.control, p.stderr)

    def test_ctl_usage(self):
        d = self.daemon().start()
        p = d.ctl("frobnicate", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", p.stderr)
        p = d.ctl("stats", "extra", check=False)
        self.assertEqual(p.returncode, 2)
        p = d.ctl("stats")
        self.assertIn("config.generation 1", p.stdout.splitlines())
        self.assertEqual(d.stop(), 0)

    def test_control_protocol_rejects_garbage(self):
        d = self.daemon().start()

        def raw(data):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(TIMEOUT)
            s.connect(d.control)
            s.sendall(data)
            out = b""
            while not out.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
            s.close()
            return json.loads(out)

        self.assertEqual(raw(b"not json\n")["ok"], False)
        self.assertIn("malformed request", raw(b"not json\n")["error"])
        self.assertIn("malformed request", raw(b"[1,2]\n")["error"])
        self.assertIn("unknown command 'nope'", raw(b'{"command":"nope"}\n')["error"])
        self.assertIn("malformed request", raw(b'{"command":"stats","args":5}\n')["error"])
        self.assertIn("malformed request", raw(b"\0\n")["error"])
        self.assertEqual(raw(b'{"command":"stats"}\n')["ok"], True)
        self.assertEqual(d.stats()["state"], "running")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
