-- wrk script: the /auth requests of the load benchmark. MIX picks which:
--   mix (default):
--     90% update_session of a live session (token i, session s<i>, created by warmup.lua)
--      8% new_session under a fresh session id (admitted while the token has a free slot)
--      2% denied (a token that does not exist, one of TOKENS names: repeated)
--   new: new_session only, under a fresh session id of a token without a session limit
--        (bench-open-<i>, OPEN_TOKENS of them): every request is an admission
--   unknown: random tokens that were never seen (a fresh value every request): every request
--        is refused, and none can be answered from an earlier one
--   recheck: update_session of live sessions only (the 90% of the mix alone)
-- With RATE set (requests per second, for all connections together), each connection paces
-- itself with wrk's delay() hook; without it, wrk sends as fast as it can.
local tokens = tonumber(os.getenv("TOKENS") or "10000")
local rate = tonumber(os.getenv("RATE") or "0")
local connections = tonumber(os.getenv("CONNECTIONS") or "64")
local mix = os.getenv("MIX") or "mix"
local open_tokens = tonumber(os.getenv("OPEN_TOKENS") or "1000")
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0) * 7919)
end

function request()
  counter = counter + 1
  if mix == "new" then
    local t = math.random(0, open_tokens - 1)
    return wrk.format("GET", string.format(
      "/auth?name=live/%d&proto=hls&ip=10.201.0.1&token=bench-open-%04d&session_id=o%d-%d-%d",
      t % 50, t, id or 0, counter, math.random(1000000000)))
  elseif mix == "unknown" then
    return wrk.format("GET", string.format(
      "/auth?name=live/1&proto=hls&ip=10.202.0.1&token=never-seen-%d-%d-%d",
      id or 0, counter, math.random(1000000000)))
  end
  local roll = math.random(100)
  if mix == "recheck" then
    roll = 1
  end
  local t = math.random(0, tokens - 1)
  local path
  if roll <= 90 then
    path = string.format("/auth?name=live/%d&proto=hls&ip=10.%d.%d.1&token=bench-token-%05d&session_id=s%d&request_type=update_session",
      t % 50, t % 200, t % 250, t, t)
  elseif roll <= 98 then
    path = string.format("/auth?name=live/%d&proto=hls&ip=10.200.0.1&token=bench-token-%05d&session_id=n%d-%d-%d",
      t % 50, t, id or 0, counter, math.random(1000000000))
  else
    path = string.format("/auth?name=live/1&proto=hls&ip=10.200.0.2&token=no-such-token-%05d", t)
  end
  return wrk.format("GET", path)
end

if rate > 0 then
  -- Milliseconds between two requests on one connection for the total to come to `rate`.
  local gap = 1000 * connections / rate
  function delay()
    return gap
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format("RESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p99_us=%d p999_us=%d max_us=%d errors=%d non2xx=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
