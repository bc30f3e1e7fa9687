#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The man pages must say what the programs do.

Checks, against the built binaries rather than against the sources:

  * man/deliveryd.conf.5 has one entry (".TP" then ".B section.key" under
    KEYS) for every key that "deliveryd --dump-config" prints, and none for
    a key deliveryd does not know; each entry states a type, default and
    reloadability, and the type, enum choices, bounds and default agree with
    what deliveryd reports (its --dump-config of an empty file, and its
    messages for deliberately bad -o values);
  * every command that "deliveryctl --help" lists is a ".TP" entry under
    COMMANDS in man/deliveryctl.1, and the page documents no other;
  * every option of "deliveryd --help" and "deliveryctl --help" is in the
    OPTIONS entries of deliveryd.8 and deliveryctl.1, and no other;
  * groff (and man-db's "man --warnings", as lintian runs it) format every
    page without a single warning.

Run by automake with top_srcdir and top_builddir set (absolute paths).
Exit 0 on success, 1 on any drift (every problem is listed), 77 when the
pages agree with the code but no roff formatter is installed to lint them.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(HERE))
TOP_BUILDDIR = os.environ.get("top_builddir") or TOP_SRCDIR

DELIVERYD = os.path.join(TOP_BUILDDIR, "src", "deliveryd")
DELIVERYCTL = os.path.join(TOP_BUILDDIR, "src", "deliveryctl")
EXAMPLE_CONF = os.path.join(TOP_SRCDIR, "etc", "deliveryd.conf")
PAGES = {
    "deliveryd.8": os.path.join(TOP_SRCDIR, "man", "deliveryd.8"),
    "deliveryd.conf.5": os.path.join(TOP_SRCDIR, "man", "deliveryd.conf.5"),
    "deliveryctl.1": os.path.join(TOP_SRCDIR, "man", "deliveryctl.1"),
}

problems = []


def problem(msg):
    problems.append(msg)


# ---- running the programs ----------------------------------------------------


def clean_env():
    """The environment without what would change the built-in defaults or
    make deliveryd believe systemd started it."""
    env = dict(os.environ)
    for k in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
              "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(k, None)
    env["LC_ALL"] = "C.UTF-8"
    return env


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, env=kw.pop("env", clean_env()), timeout=60, **kw)


def parse_dump(text):
    """--dump-config output -> {"section.key": (value, has_source_comment)}."""
    keys = {}
    section = None
    source = False
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            source = True
            continue
        m = re.fullmatch(r"\[([^\]]+)\]", line)
        if m:
            section = m.group(1)
            continue
        m = re.fullmatch(r"([^=\s]+) = ?(.*)", line)
        if not m or not section:
            raise ValueError(f"unexpected --dump-config line {line!r}")
        keys[f"{section}.{m.group(1)}"] = (m.group(2), source)
        source = False
    return keys


# ---- value syntax, as src/strutil.c parses it -------------------------------

DURATION_UNITS = {
    "us": 1, "usec": 1, "ms": 1000, "msec": 1000,
    "s": 10**6, "sec": 10**6, "second": 10**6, "seconds": 10**6,
    "m": 60 * 10**6, "min": 60 * 10**6, "minute": 60 * 10**6, "minutes": 60 * 10**6,
    "h": 3600 * 10**6, "hour": 3600 * 10**6, "hours": 3600 * 10**6,
    "d": 86400 * 10**6, "day": 86400 * 10**6, "days": 86400 * 10**6,
}


def parse_duration(s):
    terms = re.findall(r"\s*(\d+) *([a-z]*)", s)
    if not terms or re.sub(r"\s*\d+ *[a-z]*", "", s).strip():
        raise ValueError(f"not a duration: {s!r}")
    return sum(int(n) * DURATION_UNITS[u or "s"] for n, u in terms)


def parse_size(s):
    m = re.fullmatch(r"(\d+) *([kmg]?)(i?b)?", s.strip(), re.I)
    if not m or (m.group(3) and m.group(3).lower() == "ib" and not m.group(2)):
        raise ValueError(f"not a size: {s!r}")
    return int(m.group(1)) * 1024 ** " kmg".index((m.group(2) or " ").lower())


def parse_number(type_, s):
    if type_ == "size":
        return parse_size(s)
    if type_ == "duration":
        return parse_duration(s)
    return int(s)


# ---- reading roff ----------------------------------------------------------

ESCAPES = {"-": "-", "e": "\\", "&": "", "~": " ", " ": " ", "|": "", "^": "", "(aq": "'", "(dq": '"',
           "(em": "\u2014", "(en": "\u2013", "(bu": "\u2022"}


def plain(s):
    """Roff text -> what a reader sees (near enough to compare words)."""
    def repl(m):
        e = m.group(1)
        if e.startswith("f"):
            return ""
        return ESCAPES.get(e, "?")
    return re.sub(r"\\(f(?:\[[^\]]*\]|\(..|.)|\(..|\[[^\]]*\]|.)", repl, s)


def split_args(s):
    """Macro arguments: blank-separated, "..." quotes with "" for a quote."""
    args, i = [], 0
    while i < len(s):
        if s[i] == " ":
            i += 1
            continue
        if s[i] == '"':
            i += 1
            buf = ""
            while i < len(s):
                if s[i] == '"':
                    if s[i + 1:i + 2] == '"':
                        buf += '"'
                        i += 2
                        continue
                    i += 1
                    break
                buf += s[i]
                i += 1
            args.append(buf)
        else:
            j = i
            while j < len(s) and s[j] != " ":
                j += 2 if s[j] == "\\" else 1
            args.append(s[i:j])
            i = j
    return args


def line_text(line):
    """One input line -> its text; font macros lose their markup."""
    m = re.match(r"\.(B|I|SM|SB|BR|BI|IB|IR|RB|RI)(?: (.*))?$", line)
    if m:
        args = split_args(m.group(2) or "")
        joiner = " " if len(m.group(1)) == 1 or m.group(1) in ("SM", "SB") else ""
        return plain(joiner.join(args))
    return plain(line)


def read_entries(path):
    """Every ".TP" entry of a page: (section, tag text, raw body lines)."""
    with open(path, encoding="utf-8") as f:
        lines = [l for l in f.read().splitlines() if not l.startswith('.\\"') and not l.startswith("'\\\"")]
    entries = []
    section = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(".SH"):
            section = plain(" ".join(split_args(line[3:])))
        if line == ".TP" or line.startswith(".TP "):
            if i + 1 >= len(lines):
                break
            tag = line_text(lines[i + 1])
            body = []
            j = i + 2
            while j < len(lines) and not re.match(r"\.(TP|SH|SS)\b", lines[j]):
                body.append(lines[j])
                j += 1
            entries.append((section, tag.strip(), body))
            i = j
            continue
        i += 1
    return entries


# ---- deliveryd.conf.5 --------------------------------------------------------

TYPE_CLASS = {"string": "text", "path": "text", "list": "text", "address": "address", "integer": "integer",
              "size": "size", "duration": "duration", "enum": "enum", "boolean": "boolean"}


def probe_types(conf, keys):
    """What deliveryd says about a value no type accepts: its type class
    (and enum choices) for each key."""
    bad = "@@@"
    r = run([DELIVERYD, "-c", conf, "--check-config"] + [a for k in keys for a in ("-o", f"{k}={bad}")])
    said = {}
    for line in r.stderr.splitlines():
        m = re.match(r"-o ([^=]+)=" + re.escape(bad) + r": \S+: (.*)$", line)
        if m:
            said[m.group(1)] = m.group(2)
    out = {}
    for k in keys:
        msg = said.get(k)
        if msg is None or msg.startswith("cannot read"):
            out[k] = ("text", None)
        elif msg.startswith("invalid address"):
            out[k] = ("address", None)
        elif msg.startswith("invalid number"):
            out[k] = ("integer", None)
        elif msg.startswith("invalid size"):
            out[k] = ("size", None)
        elif msg.startswith("invalid duration"):
            out[k] = ("duration", None)
        elif msg.startswith("invalid boolean"):
            out[k] = ("boolean", None)
        elif (m := re.match(r"invalid value '.*' \(one of: (.*)\)$", msg)):
            out[k] = ("enum", m.group(1).split(", "))
        else:
            problem(f"cannot tell the type of {k} from deliveryd's message {msg!r}: update {__file__}")
            out[k] = (None, None)
    return out


def probe_bounds(conf, keys):
    """Bounds of numeric keys, from deliveryd's "out of range (LO to HI)"."""
    huge = "9" * 30
    r = run([DELIVERYD, "-c", conf, "--check-config"] + [a for k in keys for a in ("-o", f"{k}={huge}")])
    out = {}
    for line in r.stderr.splitlines():
        m = re.match(r"-o ([^=]+)=9+: \S+: value '9+' out of range \((\S+) to (\S+)\)$", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    for k in keys:
        if k not in out:
            problem(f"deliveryd did not report the range of {k} for an overflowing value: update {__file__}")
    return out


def check_conf_page(keys_from_example):
    page = PAGES["deliveryd.conf.5"]
    entries = {}
    for section, tag, body in read_entries(page):
        if section == "KEYS" and re.fullmatch(r"[a-z0-9_-]+\.[a-z0-9_-]+", tag):
            if tag in entries:
                problem(f"deliveryd.conf.5 documents {tag} twice")
            entries[tag] = body

    for k in sorted(set(keys_from_example) - set(entries)):
        problem(f"deliveryd.conf.5 does not document {k}: add a '.TP' / '.B {k}' entry under KEYS")
    for k in sorted(set(entries) - set(keys_from_example)):
        problem(f"deliveryd.conf.5 documents {k}, which 'deliveryd --dump-config' does not print")

    with tempfile.TemporaryDirectory(prefix="test-manpages.") as tmp:
        conf = os.path.join(tmp, "deliveryd.conf")
        open(conf, "w").close()
        for f in ("catalog.conf", "zones.conf"):
            shutil.copy(os.path.join(TOP_SRCDIR, "etc", f), tmp)
        shutil.copytree(os.path.join(TOP_SRCDIR, "etc", "nlu"), os.path.join(tmp, "nlu"))
        shutil.copytree(os.path.join(TOP_SRCDIR, "etc", "templates"), os.path.join(tmp, "templates"))
        r = run([DELIVERYD, "-c", conf, "--dump-config"])
        if r.returncode != 0:
            problem(f"deliveryd --dump-config of an empty file failed ({r.returncode}): {r.stderr.strip()}")
            return
        defaults = parse_dump(r.stdout)
        common = sorted(set(entries) & set(defaults))
        types = probe_types(conf, common)
        numeric = [k for k in common if types[k][0] in ("integer", "size", "duration")]
        bounds = probe_bounds(conf, numeric) if numeric else {}

    for k in common:
        body = entries[k]
        head = []
        for line in body:  # the lines before the description
            if line.startswith("."):
                break
            head.append(line)
        type_lines = [l for l in head if l.startswith("Type:")]
        default_lines = [l for l in head if l.startswith("Default:")]
        reload_lines = [l for l in head if l in ("Reloadable.", "Needs a restart.")]
        if len(type_lines) != 1 or len(default_lines) != 1 or len(reload_lines) != 1:
            problem(f"deliveryd.conf.5: {k} needs one 'Type:' line, one 'Default:' line and one "
                    f"'Reloadable.' or 'Needs a restart.' line before its description")
            continue

        tl = plain(type_lines[0])
        m = re.fullmatch(r"Type: (\w+)(?: \(([^)]*)\))?(?:, from (\S+) to (\S+))?\.", tl)
        if not m or m.group(1) not in TYPE_CLASS:
            problem(f"deliveryd.conf.5: {k}: cannot read {tl!r} (expected 'Type: TYPE[, from MIN to MAX].' "
                    f"with TYPE one of {', '.join(TYPE_CLASS)})")
            continue
        man_type, man_choices, man_lo, man_hi = m.groups()
        real_class, real_choices = types[k]
        if real_class and TYPE_CLASS[man_type] != real_class:
            problem(f"deliveryd.conf.5: {k} is documented as {man_type}, but deliveryd treats it as {real_class}")
            continue
        if real_class == "enum":
            documented = man_choices.split(", ") if man_choices else []
            if documented != real_choices:
                problem(f"deliveryd.conf.5: {k} lists ({', '.join(documented)}), "
                        f"but deliveryd accepts ({', '.join(real_choices)})")
        if k in bounds:
            lo, hi = (parse_number(man_type, b) for b in bounds[k])
            if hi == 0:  # no upper bound
                want = None if lo == 0 else (lo, None)
            else:
                want = (lo, hi)
            try:
                got = (parse_number(man_type, man_lo), parse_number(man_type, man_hi)) if man_lo else None
            except (ValueError, KeyError):
                got = ("unreadable", man_lo, man_hi)
            if got != want:
                documented = f"from {man_lo} to {man_hi}" if man_lo else "without bounds"
                problem(f"deliveryd.conf.5: {k} is documented {documented}, "
                        f"but deliveryd accepts {bounds[k][0]} to {bounds[k][1]}")

        value, from_file = defaults[k]
        if from_file:
            problem(f"deliveryd --dump-config of an empty file says {k} came from a file: update {__file__}")
        raw = default_lines[0]
        if raw.startswith("Default: empty"):
            doc = ""
        else:
            d = re.match(r"Default: \\fB(.*?)\\f[RP]", raw)
            if not d:
                problem(f"deliveryd.conf.5: {k}: write the default as 'Default: \\fBVALUE\\fR' or 'Default: empty'")
                continue
            doc = plain(d.group(1))
        if man_type in ("size", "duration", "integer"):
            try:
                same = parse_number(man_type, doc) == parse_number(man_type, value)
            except (ValueError, KeyError):
                same = False
        elif man_type == "path":  # built-in defaults depend on the build's prefix and the file's directory
            same = value == doc or (doc != "" and value.endswith("/" + doc.lstrip("/")))
        else:
            same = value == doc
        if not same:
            problem(f"deliveryd.conf.5: the default of {k} is documented as {doc!r}, but deliveryd uses {value!r}")


# ---- options and commands --------------------------------------------------


def help_options(text):
    """Options of a --help text: the lines that start with '-', up to the
    gap before the description."""
    opts = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-"):
            opts.update(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", re.split(r"\s{2,}", line)[0]))
    return opts


def page_options(page):
    opts = set()
    for section, tag, _ in read_entries(PAGES[page]):
        if section == "OPTIONS":
            opts.update(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", tag))
    return opts


def check_options(program, page):
    r = run([program, "--help"])
    if r.returncode != 0:
        problem(f"{program} --help failed ({r.returncode}): {r.stderr.strip()}")
        return ""
    in_help = help_options(r.stdout)
    if not any(o.startswith("--") for o in in_help):
        problem(f"found no options in '{os.path.basename(program)} --help': update {__file__}")
    in_page = page_options(page)
    for o in sorted(in_help - in_page):
        problem(f"{page} does not document the option {o} that '{os.path.basename(program)} --help' lists")
    for o in sorted(in_page - in_help):
        problem(f"{page} documents the option {o}, which '{os.path.basename(program)} --help' does not list")
    return r.stdout


def check_commands(help_text):
    verbs = []
    in_commands = False
    for line in help_text.splitlines():
        if line.strip() == "Commands:":
            in_commands = True
            continue
        if in_commands:
            if not line.strip():
                break
            verbs.append(line.split()[0])
    if not verbs:
        problem(f"found no commands in 'deliveryctl --help': update {__file__}")
    documented = [tag.split()[0] for section, tag, _ in read_entries(PAGES["deliveryctl.1"])
                  if section == "COMMANDS" and tag]
    for v in verbs:
        if v not in documented:
            problem(f"deliveryctl.1 does not document the command '{v}': add a '.TP' entry under COMMANDS")
    for v in documented:
        if v not in verbs:
            problem(f"deliveryctl.1 documents the command '{v}', which 'deliveryctl --help' does not list")


# ---- roff lint -------------------------------------------------------------


def lint_pages():
    """Returns False when no formatter is installed."""
    env = clean_env()
    env.update(MANROFFSEQ="", MANWIDTH="80")
    linters = []
    if shutil.which("groff"):
        linters.append(["groff", "-man", "-ww", "-z", "-Tutf8"] + (["-k"] if shutil.which("preconv") else []))
        if shutil.which("man"):
            linters.append(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
    elif shutil.which("mandoc"):
        linters.append(["mandoc", "-T", "lint", "-W", "warning"])
    if not linters:
        return False
    for name, path in PAGES.items():
        for linter in linters:
            r = subprocess.run(linter + [path], capture_output=True, text=True, env=env, timeout=60)
            out = r.stderr.strip() if linter[0] != "mandoc" else (r.stdout + r.stderr).strip()
            if r.returncode != 0 or out:
                problem(f"{name}: '{' '.join(linter)}' reports:\n    " + "\n    ".join(
                    out.splitlines() or [f"exit status {r.returncode}"]))
    return True


def main():
    for name, path in PAGES.items():
        if not os.path.exists(path):
            problem(f"{path} is missing")
    for b in (DELIVERYD, DELIVERYCTL):
        if not os.access(b, os.X_OK):
            problem(f"{b} is not built (run make first)")
    if problems:
        return report()

    r = run([DELIVERYD, "-c", EXAMPLE_CONF, "--dump-config"])
    if r.returncode != 0:
        problem(f"deliveryd -c {EXAMPLE_CONF} --dump-config failed ({r.returncode}): {r.stderr.strip()}")
    else:
        try:
            check_conf_page(parse_dump(r.stdout))
        except ValueError as e:
            problem(f"deliveryd --dump-config: {e}")

    check_options(DELIVERYD, "deliveryd.8")
    ctl_help = check_options(DELIVERYCTL, "deliveryctl.1")
    if ctl_help:
        check_commands(ctl_help)

    linted = lint_pages()
    if problems:
        return report()
    if not linted:
        print("test-manpages: the pages agree with the code, but no roff formatter is installed to check "
              "their markup (apt-get install groff-base): skipped")
        return SKIP
    print("test-manpages: OK")
    return 0


def report():
    print(f"test-manpages: the man pages and the code disagree ({len(problems)} problem(s)):", file=sys.stderr)
    for p in problems:
        print(f"  {p}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
