-- wrk script for the credential-guessing scenario of bench/run, by BENCH_MODE:
--   login          correct password logins: POST /login with the form in BENCH_LOGIN_BODY
--   bearer         GET /prompt with a new random Bearer value on every request
--   bearer-spread  the same, each from a new random X-Forwarded-For address (the gateway trusts the proxy)
-- Prints a RESULT line like report.lua's, with the count of every answer status (s303=…, s429=…).
local mode = os.getenv("BENCH_MODE") or "bearer"
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local threads = {}

if mode == "login" then
  wrk.method = "POST"
  wrk.body = os.getenv("BENCH_LOGIN_BODY")
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
else
  request = function()
    local characters = {}
    for i = 1, 32 do
      local k = math.random(1, #alphabet)
      characters[i] = alphabet:sub(k, k)
    end
    local headers = { ["Authorization"] = "Bearer " .. table.concat(characters) }
    if mode == "bearer-spread" then
      headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
    end
    return wrk.format("GET", "/prompt", headers)
  end
end

function setup(thread)
  table.insert(threads, thread)
  thread:set("seed", #threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + seed)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local counts = {}
  for status, count in pairs(totals) do
    table.insert(counts, string.format("s%d=%d", status, count))
  end
  table.sort(counts)
  local e = summary.errors
  io.write(string.format("RESULT rps=%.1f p50=%d p99=%d errors=%d non2xx=%d requests=%d %s\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, summary.requests, table.concat(counts, " ")))
end
