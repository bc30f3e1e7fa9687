-- SPDX-License-Identifier: MIT
-- wrk script for bench/bench.py's ingest benchmark: every thread POSTs its
-- own share of the pre-signed SNS notifications (one JSON body a line in
-- the file given as the first argument; the second is the thread count),
-- each body once, and stops when it has an answer for each.  A body sent
-- again after the last (a connection still busy as the thread stops) is a
-- duplicate, acknowledged and not stored: bench.py counts what was stored.
-- With a third argument "loop" the bodies are sent round and round until
-- wrk's duration ends (the nginx baseline, where nothing is stored).
-- done() prints one JSON line "WRK {...}" with the counts and latencies.
-- Security: test tool; sends only to the URL it is given (127.0.0.1).

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local n = tonumber(args[2])
   loop = args[3] == "loop"
   bodies = {}
   local i = 0
   for line in io.lines(args[1]) do
      if i % n == tid then
         bodies[#bodies + 1] = line
      end
      i = i + 1
   end
   -- wrk calls thread 0's request() once to check the script, and sends
   -- nothing of it: give that call a copy of the first body.
   if tid == 0 and #bodies > 0 then
      table.insert(bodies, 1, bodies[1])
   end
   idx = 0
   answered = 0
   ok = 0
   bad = 0
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "text/plain; charset=UTF-8"
   wrk.headers["x-amz-sns-message-type"] = "Notification"
end

function request()
   idx = idx + 1
   local b = bodies[idx]
   if b == nil then
      b = loop and bodies[(idx - 1) % #bodies + 1] or bodies[#bodies]
   end
   return wrk.format(nil, nil, nil, b)
end

function response(status, headers, body)
   answered = answered + 1
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      bad = bad + 1
   end
   if not loop and answered >= #bodies then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local ok_n, bad_n, sent = 0, 0, 0
   for _, t in ipairs(threads) do
      ok_n = ok_n + t:get("ok")
      bad_n = bad_n + t:get("bad")
      sent = sent + t:get("idx")
   end
   io.write(string.format(
      'WRK {"requests": %d, "ok": %d, "bad": %d, "sent": %d, "duration_us": %d, ' ..
      '"p50_us": %d, "p99_us": %d, "max_us": %d, "errors_connect": %d, "errors_read": %d, ' ..
      '"errors_write": %d, "errors_timeout": %d}\n',
      summary.requests, ok_n, bad_n, sent, summary.duration, latency:percentile(50),
      latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
      summary.errors.write, summary.errors.timeout))
end
