#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test-units.py — the systemd units: valid for this systemd, hardened, and
still letting the daemon do its work.

Checks, on copies of the units whose Exec lines point at the built
binaries:
  - "systemd-analyze verify" accepts the service and both socket units
    without a word about them;
  - "systemd-analyze security --offline=true" rates the service's exposure
    at MAX_EXPOSURE or better;
  - the sandbox still allows what deliveryd needs: IPv4/IPv6 and Unix
    sockets, no IP address deny list, no private network, writable state
    and runtime directories (and nothing else), the system calls it makes;
  - the socket units hand over "http" and "lmtp" to deliveryd.service, the
    names open_listener() in src/manager.c asks for.

Environment: top_srcdir and top_builddir (absolute), as set by "make check".
Exit status: 0 pass, 1 fail, 77 skip (no systemd-analyze).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

MAX_EXPOSURE = 2.5
# daemon.drain_timeout's default (src/conf.c): TimeoutStopSec= must exceed it.
DRAIN_TIMEOUT_USEC = 10 * 1000000
# System calls deliveryd, deliveryctl (ExecReload=), SQLite, libcurl,
# OpenSSL and glibc's resolver make (seen with strace, as an unprivileged
# user, plus their close relatives); the filter must allow every one.
NEEDED_SYSCALLS = """
    accept4 bind connect listen socket getsockname getsockopt setsockopt
    sendmsg sendto recvfrom recvmsg shutdown poll ppoll
    epoll_create1 epoll_ctl epoll_wait epoll_pwait signalfd4 timerfd_create
    timerfd_settime eventfd2 rt_sigaction rt_sigprocmask
    openat close read write pread64 pwrite64 lseek newfstatat fstat fcntl
    flock fdatasync fsync ftruncate unlink mkdir chmod readlink getcwd access
    mmap munmap mprotect brk madvise futex clone3 clone getrandom
    clock_gettime getpid gettid geteuid prlimit64 ioctl exit_group
""".split()

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL: {msg}")


def ok(msg):
    print(f"ok: {msg}")


def run(args, **kw):
    env = dict(os.environ, SYSTEMD_COLORS="0", SYSTEMD_PAGER="", LC_ALL="C.UTF-8")
    return subprocess.run(args, capture_output=True, text=True, env=env, **kw)


def parse_unit(text):
    """systemd unit syntax: {section: [(key, value), ...]}, with continuation
    lines joined and repeated keys kept in order."""
    sections, current, pending = {}, None, ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is None or "=" not in line:
            fail(f"unparseable unit line: {raw!r}")
            continue
        k, v = line.split("=", 1)
        current.append((k.strip(), v.strip()))
    return sections


def values(unit, section, key):
    """Every value of key, as systemd folds them: an empty assignment resets
    the list, the others accumulate."""
    out = []
    for k, v in unit.get(section, []):
        if k == key:
            out = [] if v == "" else out + [v]
    return out


def last(unit, section, key):
    v = values(unit, section, key)
    return v[-1] if v else None


def is_yes(v):
    return v is not None and v.lower() in ("1", "yes", "true", "on")


def timespan_usec(s):
    units = {"us": 1, "usec": 1, "ms": 1000, "msec": 1000, "": 1000000, "s": 1000000, "sec": 1000000,
             "m": 60000000, "min": 60000000, "h": 3600000000, "hr": 3600000000}
    total = 0
    for num, unit in re.findall(r"([0-9.]+)\s*([a-z]*)", s):
        if unit not in units:
            return None
        total += float(num) * units[unit]
    return int(total)


def expand_syscall_groups(names, seen=None):
    """@group names to system call names, through systemd-analyze syscall-filter."""
    seen = set() if seen is None else seen
    out = set()
    for n in names:
        if not n.startswith("@"):
            out.add(n)
            continue
        if n in seen:
            continue
        seen.add(n)
        r = run(["systemd-analyze", "syscall-filter", "--no-pager", n])
        if r.returncode != 0:
            fail(f"systemd-analyze syscall-filter {n} failed: {r.stderr.strip()}")
            continue
        members = [l.strip() for l in r.stdout.splitlines()[1:]]
        out |= expand_syscall_groups([m for m in members if m and not m.startswith("#")], seen)
    return out


def main():
    if shutil.which("systemd-analyze") is None:
        print("SKIP: systemd-analyze is not installed")
        return 77

    here = os.path.dirname(os.path.abspath(__file__))
    srcdir = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(here))
    builddir = os.environ.get("top_builddir") or srcdir
    deliveryd = os.path.join(builddir, "src", "deliveryd")
    deliveryctl = os.path.join(builddir, "src", "deliveryctl")
    for exe in (deliveryd, deliveryctl):
        if not os.access(exe, os.X_OK):
            fail(f"{exe} is not built (run make)")
            return 1

    template_path = os.path.join(srcdir, "systemd", "deliveryd.service.in")
    built_service = os.path.join(builddir, "systemd", "deliveryd.service")
    with open(template_path, encoding="utf-8") as f:
        template = f.read()
    for placeholder in ("@SERVICE_TYPE@", "@SERVICE_RELOAD@", "@sbindir@", "@sysconfdir@"):
        if placeholder not in template:
            fail(f"{template_path} lacks the placeholder {placeholder}")

    if os.path.exists(built_service):
        with open(built_service, encoding="utf-8") as f:
            service = f.read()
        print(f"service: {built_service}")
    else:
        # As Makefile.am's rule would, with configure.ac's choice by version.
        m = re.search(r"systemd (\d+)", run(["systemd-analyze", "--version"]).stdout)
        new = m is not None and int(m.group(1)) >= 253
        service = (template.replace("@SERVICE_TYPE@", "notify-reload" if new else "notify")
                   .replace("@SERVICE_RELOAD@", "# ExecReload= is not needed" if new
                            else "ExecReload=@bindir@/deliveryctl reload")
                   .replace("@sbindir@", "/usr/sbin").replace("@bindir@", "/usr/bin")
                   .replace("@sysconfdir@", "/etc"))
        print(f"service: generated from {template_path}")
    left = sorted(set(re.findall(r"@[A-Za-z_]+@", service)))
    if left:
        fail(f"placeholders left unsubstituted in the service: {' '.join(left)}")

    # Point the Exec lines at the built binaries, so that verify finds them.
    built = {"deliveryd": deliveryd, "deliveryctl": deliveryctl}

    def relocate(m):
        words = m.group(2).split(" ")
        for i, w in enumerate(words):
            path = w.lstrip("-@:+!")
            if path.startswith("/") and os.path.basename(path) in built:
                words[i] = w[: len(w) - len(path)] + built[os.path.basename(path)]
        return m.group(1) + " ".join(words)

    service = re.sub(r"(?m)^(Exec[A-Za-z]*=)(.*)$", relocate, service)

    units = {"deliveryd.service": service}
    for name in ("deliveryd.socket", "deliveryd-lmtp.socket"):
        path = os.path.join(srcdir, "systemd", name)
        if not os.path.exists(path):
            fail(f"{path} is missing")
            continue
        with open(path, encoding="utf-8") as f:
            units[name] = f.read()

    with tempfile.TemporaryDirectory(prefix="deliveryd-units-") as tmp:
        paths = []
        for name, text in units.items():
            p = os.path.join(tmp, name)
            with open(p, "w", encoding="utf-8") as f:
                f.write(text)
            paths.append(p)
        svc_path = os.path.join(tmp, "deliveryd.service")

        # --man=no: the man pages of Documentation= are not installed from a
        # build tree.  --recursive-errors=no: the other units on this machine
        # (network-online.target, ...) are not ours to judge.
        r = run(["systemd-analyze", "verify", "--man=no", "--recursive-errors=no"] + paths, cwd=tmp)
        ours = [l for l in (r.stdout + r.stderr).splitlines() if "deliveryd" in l]
        print("systemd-analyze verify: exit %d%s" % (r.returncode, "" if ours else ", nothing about our units"))
        for l in ours:
            print(f"  {l}")
        if r.returncode != 0:
            fail(f"systemd-analyze verify exited {r.returncode}: {r.stderr.strip()}")
        elif ours:
            fail("systemd-analyze verify has complaints about the units (above)")
        else:
            ok("systemd-analyze verify accepts the units")

        r = run(["systemd-analyze", "security", "--no-pager", "--offline=true", svc_path], cwd=tmp)
        m = re.search(r"Overall exposure level for \S+: ([0-9]+(?:\.[0-9]+)?)", r.stdout)
        if m is None:
            fail(f"no overall exposure level in systemd-analyze security's output "
                 f"(exit {r.returncode}): {r.stdout[-500:]}{r.stderr.strip()}")
        else:
            score = float(m.group(1))
            print(f"security exposure: {score} (must be <= {MAX_EXPOSURE})")
            if score > MAX_EXPOSURE:
                exposed = [l for l in r.stdout.splitlines() if l.startswith("✗")]
                fail(f"exposure {score} exceeds {MAX_EXPOSURE}; still exposed:\n  " + "\n  ".join(exposed))
            else:
                ok(f"exposure {score} <= {MAX_EXPOSURE}")

    svc = parse_unit(service)
    S = "Service"

    # Life cycle.
    t = last(svc, S, "Type")
    if t not in ("notify", "notify-reload"):
        fail(f"Type={t}: deliveryd sends READY=1, so notify or notify-reload")
    if t == "notify" and not last(svc, S, "ExecReload"):
        fail("Type=notify without ExecReload=: systemctl reload would do nothing")
    if last(svc, S, "NotifyAccess") != "main":
        fail(f"NotifyAccess={last(svc, S, 'NotifyAccess')}, expected main")
    if not last(svc, S, "WatchdogSec"):
        fail("no WatchdogSec=: the daemon pings the watchdog and expects to be restarted when stuck")
    stop = timespan_usec(last(svc, S, "TimeoutStopSec") or "")
    if stop is None or stop <= DRAIN_TIMEOUT_USEC:
        fail(f"TimeoutStopSec={last(svc, S, 'TimeoutStopSec')} does not exceed the 10 s drain timeout")
    start = last(svc, S, "ExecStart") or ""
    if not start.startswith(deliveryd + " ") or " -c " not in f" {start} ":
        fail(f"ExecStart={start}: expected deliveryd -c CONFIG")

    # The network: AWS over HTTPS, DNS, the relay, the MTA, the journal.
    families = set(" ".join(values(svc, S, "RestrictAddressFamilies")).split())
    if any(f.startswith("~") for f in families):
        fail(f"RestrictAddressFamilies= is a deny list: {' '.join(sorted(families))}")
    elif families and not {"AF_UNIX", "AF_INET", "AF_INET6"} <= families:
        fail(f"RestrictAddressFamilies={' '.join(sorted(families))} lacks one of AF_UNIX AF_INET AF_INET6")
    elif not families:
        fail("no RestrictAddressFamilies=")
    else:
        ok(f"address families: {' '.join(sorted(families))}")
    deny = " ".join(values(svc, S, "IPAddressDeny")).split()
    if any(d in ("any", "0.0.0.0/0", "::/0") for d in deny):
        fail(f"IPAddressDeny={' '.join(deny)} cuts the daemon off from AWS")
    if is_yes(last(svc, S, "PrivateNetwork")):
        fail("PrivateNetwork=yes cuts the daemon off from AWS and the MTA")
    if values(svc, S, "SocketBindDeny"):
        fail("SocketBindDeny= would stop the daemon binding the listener its configuration names")

    # Files: writes only to its state and runtime directories.
    n_failed = len(failures)
    if last(svc, S, "ProtectSystem") != "strict":
        fail(f"ProtectSystem={last(svc, S, 'ProtectSystem')}, expected strict")
    for key in ("StateDirectory", "RuntimeDirectory"):
        if values(svc, S, key) != ["deliveryd"]:
            fail(f"{key}={' '.join(values(svc, S, key))}, expected deliveryd")
        mode = last(svc, S, key + "Mode")
        if mode is not None and int(mode, 8) & 0o007:
            fail(f"{key}Mode={mode} gives access to others")
    for p in " ".join(values(svc, S, "ReadWritePaths")).split():
        if not re.match(r"-?(/var/lib/deliveryd|/run/deliveryd)(/|$)", p):
            fail(f"ReadWritePaths= opens {p} for writing")
    if not is_yes(last(svc, S, "RuntimeDirectoryPreserve")):
        fail("RuntimeDirectoryPreserve= is not yes: stopping the service would delete the LMTP socket")
    if n_failed == len(failures):
        ok("writable: state and runtime directories only")

    # The user: a static one needs its sysusers.d entry.
    user = last(svc, S, "User")
    if is_yes(last(svc, S, "DynamicUser")):
        ok("runs as a dynamic user")
    elif user in (None, "root", "0"):
        fail("the service runs as root")
    else:
        n_failed = len(failures)
        sysusers = os.path.join(srcdir, "systemd", "deliveryd.sysusers")
        try:
            with open(sysusers, encoding="utf-8") as f:
                entries = [l.split() for l in f if l.strip() and not l.lstrip().startswith("#")]
        except OSError as e:
            entries = []
            fail(f"User={user} but no sysusers.d entry: {e}")
        if entries and not any(e[:2] == ["u", user] for e in entries):
            fail(f"{sysusers} does not create the user {user}")
        group = last(svc, S, "Group")
        if group and group != user and not any(e[:2] == ["g", group] for e in entries):
            fail(f"{sysusers} does not create the group {group}")
        if shutil.which("systemd-sysusers") and entries:
            with tempfile.TemporaryDirectory(prefix="deliveryd-sysusers-") as root:
                r = run(["systemd-sysusers", "--dry-run", f"--root={root}", sysusers])
            if r.returncode != 0:
                fail(f"systemd-sysusers rejects {sysusers}: {r.stderr.strip()}")
        if n_failed == len(failures):
            ok(f"user {user} from {os.path.basename(sysusers)}")

    # System calls.
    filters = values(svc, S, "SystemCallFilter")
    allow, deny_calls = set(), set()
    for f in filters:
        if f.startswith("~"):
            deny_calls |= expand_syscall_groups(f[1:].split())
        else:
            allow |= expand_syscall_groups(f.split())
    if not allow:
        fail("SystemCallFilter= has no allow list")
    else:
        missing = sorted(s for s in NEEDED_SYSCALLS if s not in allow or s in deny_calls)
        if missing:
            fail(f"SystemCallFilter= blocks system calls deliveryd makes: {' '.join(missing)}")
        else:
            ok(f"SystemCallFilter= allows the {len(NEEDED_SYSCALLS)} system calls deliveryd makes")

    # Socket activation: the names src/manager.c asks for.
    expected = {"deliveryd.socket": ("http", None), "deliveryd-lmtp.socket": ("lmtp", "/run/deliveryd/")}
    for name, (fdname, prefix) in expected.items():
        if name not in units:
            continue
        u = parse_unit(units[name])
        got = last(u, "Socket", "FileDescriptorName")
        if got != fdname:
            fail(f"{name}: FileDescriptorName={got}, expected {fdname}")
        if last(u, "Socket", "Service") != "deliveryd.service":
            fail(f"{name}: Service={last(u, 'Socket', 'Service')}, expected deliveryd.service")
        streams = values(u, "Socket", "ListenStream")
        if len(streams) != 1:
            fail(f"{name}: {len(streams)} ListenStream= lines; each unit hands over one socket")
        elif prefix and not streams[0].startswith(prefix):
            fail(f"{name}: ListenStream={streams[0]} is not under {prefix}")
        elif not prefix and not re.match(r"^(127\.0\.0\.1:|\[::1\]:)?[0-9]+$", streams[0]):
            print(f"note: {name} listens on {streams[0]}, beyond the loopback")
        ok(f"{name}: {fdname} on {' '.join(streams)}")

    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
