# SPDX-License-Identifier: MIT
"""Socket activation through the real systemd-socket-activate: the daemon
serves HTTP and LMTP on the sockets it is handed, by FileDescriptorName,
instead of binding its own."""

import os
import shutil
import socket
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import TIMEOUT, DaemonTestCase, main  # noqa: E402

ACTIVATE = shutil.which("systemd-socket-activate")


def free_port():
    # The port is free now; systemd-socket-activate binds it a moment later.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(ACTIVATE, "systemd-socket-activate is not installed")
class SocketActivation(DaemonTestCase):
    def activated(self, listens, names, overrides=()):
        wrapper = [ACTIVATE, "-E", "NOTIFY_SOCKET", "-E", "DELIVERYD_LOG_PREFIX", "--fdname=" + ":".join(names)]
        for l in listens:
            wrapper += ["-l", l]
        return self.daemon(wrapper=wrapper, overrides=list(overrides))

    def test_http_and_lmtp_sockets_by_name(self):
        port = free_port()
        lmtp_path = os.path.join(self.tmp, "lmtp.sock")
        # The config points elsewhere: the passed sockets must win.
        d = self.activated(["127.0.0.1:%d" % port, lmtp_path], ["http", "lmtp"],
                           overrides=["lmtp.listen=unix:" + os.path.join(self.tmp, "unused.sock")])
        d.start(wait_ready=False)
        d.wait_log(r"^Listening on .*lmtp\.sock as 4\.$")  # systemd-socket-activate is ready
        # systemd-socket-activate starts the daemon on the first connection,
        # which the daemon then serves.
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=TIMEOUT) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.read(), b"ok\n")
        d.notify.wait_for("READY=1")
        s = d.stats()
        self.assertEqual(s["http"]["port"], port)
        self.assertTrue(s["http"]["socket_activated"])
        self.assertEqual(s["lmtp"]["listen"], "unix:" + lmtp_path)
        self.assertTrue(s["lmtp"]["socket_activated"])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "unused.sock")))
        d.wait_log(r"^<6>Listening for http on 127\.0\.0\.1:%d \(socket activation\)$" % port)

        # and LMTP on the other
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(TIMEOUT)
            c.connect(lmtp_path)
            greeting = c.recv(512)
            c.sendall(b"QUIT\r\n")
            bye = c.recv(512)
        self.assertRegex(greeting, rb"^220 \S+ LMTP")
        self.assertTrue(bye.startswith(b"221 "), bye)
        self.assertEqual(d.stop(), 0)

    def test_unknown_name_is_reported(self):
        port = free_port()
        d = self.activated(["127.0.0.1:%d" % port], ["smtp"])
        d.allowed = (r"Ignoring a socket passed by systemd with unknown name 'smtp'",)
        d.start(wait_ready=False)
        d.wait_log(r"^Listening on 127\.0\.0\.1:%d as 3\.$" % port)
        # the daemon does not serve a socket it does not know; connect only to wake it
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        d.notify.wait_for("READY=1")
        d.wait_log(r"^<4>Ignoring a socket passed by systemd with unknown name 'smtp' \(expected http or lmtp\)\.$")
        # it bound its own from the config instead
        self.assertFalse(d.stats()["http"]["socket_activated"])
        c.close()
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
