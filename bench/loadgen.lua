-- wrk script for the benchmarks. Arguments after "--": <request file> <delay ms>.
-- Each line of the request file is "METHOD PATH" or "METHOD PATH JSON-BODY"; every
-- thread takes its own share of the lines (POSTs carry single-use CAPTCHA ids, so no
-- line is sent twice unless the file runs out). done() prints one JSON line.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = counter
  lines = {}
  local n = 0
  for line in io.lines(args[1]) do
    if n % (tonumber(args[3]) or 1) == tid then
      table.insert(lines, line)
    end
    n = n + 1
  end
  idx = 0
  statuses = {}
  wrapped = 0
end

function request()
  idx = idx + 1
  if idx > #lines then
    idx = 1
    wrapped = wrapped + 1
  end
  local line = lines[idx]
  local method, path, body = line:match("^(%S+) (%S+) ?(.*)$")
  if body ~= nil and body ~= "" then
    return wrk.format(method, path,
      {["Content-Type"] = "application/json", ["Connection"] = "close"}, body)
  end
  return wrk.format(method, path, {["Connection"] = "close"})
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

--DELAY--

function done(summary, latency, requests)
  local merged = {}
  local wraps = 0
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, count in pairs(s) do
      merged[code] = (merged[code] or 0) + count
    end
    wraps = wraps + thread:get("wrapped")
  end
  local parts = {}
  for code, count in pairs(merged) do
    table.insert(parts, string.format('"%s": %d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "socket_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %f, ' ..
    '"wrapped": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, wraps, table.concat(parts, ", ")))
end
