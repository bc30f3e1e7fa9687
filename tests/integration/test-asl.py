# SPDX-License-Identifier: MIT
"""The ASL interpreter's conformance cases, run through the real
"deliveryctl asl run": each tests/asl/NAME.json holds a definition, an
input, the scripted tasks and what must come out ("expect": the status and
the output, or the error and cause; or "load_error": a part of the message
that refuses the definition, exit status 2).  A case with "needs":
"intrinsics" is skipped while asl-data refuses intrinsic functions.

The command runs with no configuration file at all: asl run needs none."""

import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import DELIVERYCTL, TOP_SRCDIR, main  # noqa: E402

CASES = sorted(glob.glob(os.path.join(TOP_SRCDIR, "tests", "asl", "*.json")))
NO_CONFIG = "/nonexistent/deliveryd.conf"


def run_asl(tmp, definition, input_=None, tasks=None, extra=()):
    def_path = os.path.join(tmp, "machine.asl.json")
    with open(def_path, "w") as f:
        f.write(definition if isinstance(definition, str) else json.dumps(definition))
    argv = [DELIVERYCTL, "-c", NO_CONFIG, "asl", "run", def_path]
    if input_ is not None:
        p = os.path.join(tmp, "input.json")
        with open(p, "w") as f:
            json.dump(input_, f)
        argv += ["--input", p]
    if tasks is not None:
        p = os.path.join(tmp, "tasks.json")
        with open(p, "w") as f:
            json.dump(tasks, f)
        argv += ["--tasks", p]
    return subprocess.run(argv + list(extra), capture_output=True, text=True, timeout=60)


def intrinsics_supported():
    with tempfile.TemporaryDirectory() as tmp:
        r = run_asl(tmp, {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {
            "s.$": "States.Format('{}', $.a)"}, "End": True}}}, {"a": 1})
        return r.returncode == 0


class Conformance(unittest.TestCase):
    def test_cases(self):
        self.assertGreaterEqual(len(CASES), 40, "the conformance cases are missing")
        have_intrinsics = intrinsics_supported()
        skipped = []
        for path in CASES:
            name = os.path.basename(path)
            with open(path) as f:
                case = json.load(f)
            if case.get("needs") == "intrinsics" and not have_intrinsics:
                skipped.append(name)
                continue
            with self.subTest(case=name), tempfile.TemporaryDirectory() as tmp:
                r = run_asl(tmp, case["definition"], case.get("input"), case.get("tasks"))
                if "load_error" in case:
                    self.assertEqual(r.returncode, 2, f"{name}: {r.stdout} {r.stderr}")
                    self.assertEqual(r.stdout, "")
                    self.assertIn(case["load_error"], r.stderr, name)
                    continue
                self.assertEqual(r.stderr, "", name)
                got = json.loads(r.stdout)
                want = case["expect"]
                for key, value in want.items():
                    self.assertIn(key, got, f"{name}: {r.stdout}")
                    self.assertEqual(got[key], value, f"{name}: {key}")
                self.assertEqual(r.returncode, 0 if want["status"] == "SUCCEEDED" else 1, name)
        if skipped:
            print(f"skipped (need intrinsic functions): {' '.join(skipped)}", file=sys.stderr)


class Usage(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="deliveryd-asl-")

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.tmp])

    def test_usage_errors(self):
        for argv in (["asl"], ["asl", "walk", "x"], ["asl", "run"], ["asl", "run", "a", "b"],
                     ["asl", "run", "a", "--input"], ["asl", "run", "a", "--bogus", "x"],
                     ["asl", "run", "a", "--max-transitions", "0"], ["asl", "run", "a", "--repeat", "0"],
                     ["asl", "run", "a", "--repeat", "x"], ["asl", "run", "a", "--repeat"]):
            r = subprocess.run([DELIVERYCTL, "-c", NO_CONFIG] + argv, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, argv)
            self.assertIn("deliveryctl", r.stderr)

    def test_missing_and_broken_files(self):
        r = subprocess.run([DELIVERYCTL, "asl", "run", os.path.join(self.tmp, "nope.json")], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read the definition", r.stderr)
        r = run_asl(self.tmp, "{not json")
        self.assertEqual(r.returncode, 2)
        self.assertIn("is not JSON", r.stderr)
        ok = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
        r = run_asl(self.tmp, ok, tasks={"f": [{"return": 1, "throw": {"error": "E"}}]})
        self.assertEqual(r.returncode, 2)
        self.assertIn("tasks: f[0] needs exactly one of return, throw, no_callback", r.stderr)
        r = run_asl(self.tmp, ok, tasks={"f": [{"retrun": 1}]})
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown field 'retrun'", r.stderr)

    def test_max_transitions(self):
        loop = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}}
        r = run_asl(self.tmp, loop, extra=["--max-transitions", "50"])
        self.assertEqual(r.returncode, 1)
        got = json.loads(r.stdout)
        self.assertEqual(got["status"], "FAILED")
        self.assertEqual(got["error"], "States.Runtime")
        self.assertIn("more than 50 state transitions", got["cause"])

    def test_repeat(self):
        """--repeat N: N executions, each with the tasks' lists from the
        start (a list of two answers gives the first one every time), the
        last outcome on stdout, the time on stderr; one failure fails it."""
        d = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                              "Parameters": {"FunctionName": "f", "Payload.$": "$"},
                                              "ResultSelector": {"v.$": "$.Payload"}, "End": True}}}
        r = run_asl(self.tmp, d, {}, {"f": [{"return": 1}, {"return": 2}]}, extra=["--repeat", "25"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"status": "SUCCEEDED", "output": {"v": 1}})
        self.assertRegex(r.stderr, r"^deliveryctl: asl run: 25 executions in \d+\.\d{6} s\n$")
        r = run_asl(self.tmp, d, {}, {"f": [{"throw": {"error": "E"}}]}, extra=["--repeat", "3"])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout)["error"], "E")
        r = run_asl(self.tmp, d, {}, {"f": [{"return": 1}]})
        self.assertEqual(r.stderr, "", "one execution says nothing on stderr")

    def test_input_from_stdin_and_default(self):
        d = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
        r = run_asl(self.tmp, d)
        self.assertEqual(json.loads(r.stdout), {"status": "SUCCEEDED", "output": {}})
        p = os.path.join(self.tmp, "machine.asl.json")
        r = subprocess.run([DELIVERYCTL, "asl", "run", p, "--input", "-"], input='{"a": [1, 2]}',
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"status": "SUCCEEDED", "output": {"a": [1, 2]}})


if __name__ == "__main__":
    main()
