-- wrk script for graphdir benchmarks: one request per line of a pool file, never the same line twice.
--
-- Environment:
--   TOKEN      bearer token (sent as "Authorization: Bearer …" on every request)
--   METHOD     DELETE | POST | GET                         (default GET)
--   PATH_TMPL  request path; {g} and {m} are replaced by the line's two fields ("<group> <member>")
--   BODY_TMPL  optional request body, same placeholders (sent with Content-Type: application/json)
--   POOL       file of "<group> <member>" lines; without it every request uses PATH_TMPL as is
--   SKIP       lines of POOL to skip first (default 0)
-- A pool that runs out starts again from its first line and counts a wrap: for writes that means
-- repeated (404/400) requests, so the harness rejects a write run with wraps > 0.
consumed, wraps = 0, 0  -- globals: done() reads them with thread:get()
local fh, method, tmpl, body_tmpl, pool, headers

local function open_pool()
  fh = assert(io.open(pool, "r"))
  local skip = tonumber(os.getenv("SKIP") or "0")
  for _ = 1, skip do fh:read("*l") end
end

function setup(thread)
  threads = threads or {}
  table.insert(threads, thread)
end

function init(args)
  method = os.getenv("METHOD") or "GET"
  tmpl = os.getenv("PATH_TMPL") or "/"
  body_tmpl = os.getenv("BODY_TMPL")
  pool = os.getenv("POOL")
  headers = { ["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "") }
  if body_tmpl then headers["Content-Type"] = "application/json" end
  if pool and pool ~= "" then open_pool() else pool = nil end
end

function request()
  consumed = consumed + 1
  if not pool then
    return wrk.format(method, tmpl, headers, body_tmpl)
  end
  local line = fh:read("*l")
  if not line then
    fh:close(); wraps = wraps + 1
    open_pool()
    line = fh:read("*l")
  end
  local g, m = line:match("^(%S+) (%S+)$")
  local path = tmpl:gsub("{g}", g):gsub("{m}", m)
  local body = nil
  if body_tmpl then body = body_tmpl:gsub("{g}", g):gsub("{m}", m) end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local c, w = 0, 0
  for _, t in ipairs(threads or {}) do
    c = c + (t:get("consumed") or 0)
    w = w + (t:get("wraps") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"consumed":%d,"wraps":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"lat_mean_us":%.1f,"lat_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, c, w,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
