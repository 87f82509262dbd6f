-- wrk script: opens one live session per token (new_session, session id s<i>), in order, so
-- that the load run finds TOKENS live sessions to re-check. Runs until stopped; requests past
-- the last token re-check sessions already open.
local tokens = tonumber(os.getenv("TOKENS") or "10000")
local threads = tonumber(os.getenv("THREADS") or "2")
local next_token = 0
local thread_id = 0

function setup(thread)
  thread:set("first", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  next_token = first or 0
end

function request()
  local t = next_token % tokens
  next_token = next_token + threads
  return wrk.format("GET", string.format(
    "/auth?name=live/%d&proto=hls&ip=10.%d.%d.1&token=bench-token-%05d&session_id=s%d", t % 50, t % 200, t % 250, t, t))
end
