// SPDX-License-Identifier: MIT
// bench/bench.py's baseline: the same order-like definition and scripted
// tasks (bench/order-like.*.json) run in memory by aws-local-stepfunctions,
// N executions one after the other in one node process.  Prints one JSON
// line: executions, seconds, states entered per execution.
// Usage: node asl-local.mjs MODULE_DIR DEFINITION TASKS N
// Security: test tool; reads only the files it is given.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

// node 20 has no Promise.withResolvers (node 22 has); the library needs it.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new this((a, b) => { resolve = a; reject = b; });
    return { promise, resolve, reject };
  };
}

const [moduleDir, defPath, tasksPath, nArg] = process.argv.slice(2);
const { StateMachine } = await import(pathToFileURL(path.join(moduleDir, "node_modules", "aws-local-stepfunctions",
  "build", "main.node.esm.js")).href);
const definition = JSON.parse(fs.readFileSync(defPath, "utf8"));
const tasks = JSON.parse(fs.readFileSync(tasksPath, "utf8"));
const n = Number(nArg);

// The scripted tasks, as deliveryctl asl run plays them: each function's
// successive calls take the successive entries, the last one repeating.
function handlers() {
  const calls = {};
  const out = {};
  for (const [state, def] of Object.entries(definition.States)) {
    if (def.Type !== "Task") continue;
    const fn = def.Parameters.FunctionName;
    out[state] = () => {
      const list = tasks[fn];
      const i = calls[fn] = (calls[fn] ?? -1) + 1;
      return { Payload: list[Math.min(i, list.length - 1)].return, StatusCode: 200, ExecutedVersion: "$LATEST" };
    };
  }
  return out;
}

const sm = new StateMachine(definition);
// One execution with its event log, to count the states it enters.
const first = sm.run({ order_id: "BENCH0" }, { overrides: { taskResourceLocalHandlers: handlers() } });
let entered = 0;
for await (const e of first.eventLogs) {
  if (e.type === "StateEntered") entered++;
}
await first.result;
const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  const r = sm.run({ order_id: "BENCH" + i }, { overrides: { taskResourceLocalHandlers: handlers() } });
  await r.result;
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ executions: n, seconds, states_per_execution: entered }));
