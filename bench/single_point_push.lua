-- Single-point pushes for bench/ingest.py: every request POSTs one point with its own value and ts.
--
--   wrk -t2 -c16 -d30s -s bench/single_point_push.lua http://127.0.0.1:PORT/api/v1/metrics -- TOKEN START_MS 2
--
-- Request n (counted over all threads, from 0) pushes value n at START_MS - n milliseconds, so the
-- benchmark can check that every accepted point was stored exactly once (distinct values). wrk's own
-- summary counts 3xx as success and only socket errors and statuses above 399 as errors, so the
-- statuses are counted here and done() prints one "result key=value" line per figure.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  token = args[1]
  start_ms = tonumber(args[2])
  -- wrk's -t, passed in: a thread's init() runs before the next thread's setup(), so no thread could
  -- count them itself. Thread k numbers its requests k, k + stride, k + 2 stride, ...
  stride = tonumber(args[3])
  sent = 0
  non2xx = 0
  statuses = {}
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local n = sent * stride + id
  sent = sent + 1
  local at = start_ms - n
  local seconds = math.floor(at / 1000)
  local body = string.format(
    '{"points":[{"metric":"bench.push","value":%d,"ts":"%s.%03dZ"}]}',
    n, os.date("!%Y-%m-%dT%H:%M:%S", seconds), at - seconds * 1000
  )
  return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local non2xx_total = 0
  local by_status = {}
  for _, thread in ipairs(threads) do
    non2xx_total = non2xx_total + thread:get("non2xx")
    for code, count in pairs(thread:get("statuses")) do
      by_status[code] = (by_status[code] or 0) + count
    end
  end
  local e = summary.errors
  io.write(string.format("result requests=%d duration_us=%d non2xx=%d\n",
    summary.requests, summary.duration, non2xx_total))
  io.write(string.format("result connect=%d read=%d write=%d timeout=%d\n",
    e.connect, e.read, e.write, e.timeout))
  io.write(string.format("result p50_us=%d p99_us=%d max_us=%d\n",
    latency:percentile(50), latency:percentile(99), latency.max))
  for code, count in pairs(by_status) do
    io.write(string.format("result status_%d=%d\n", code, count))
  end
end
