-- The sliding window, prepended to every script that limits (Redis scripts cannot include files).
--
-- A sorted set of the admitted requests of one key, scored by their time in microseconds on Redis's own
-- clock, each member unique (two requests in one microsecond are two requests). A request at `now` is
-- admitted when fewer than `limit` admitted requests lie in (now - window, now]; a refused request adds
-- nothing, so retrying never extends a lockout.

-- Redis's clock; `override` exists only so tests can place requests on exact boundaries.
local function clock(override)
  if override ~= nil and override ~= '' then
    return tonumber(override)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Lua would print large numbers as 1.7e+15; scores must stay exact.
local function exact(n)
  return string.format('%.0f', n)
end

-- Returns {allowed (0/1), remaining after this request, reset (microseconds: when remaining next goes up), now}.
-- `add` false only looks.
local function slide(key, limit, window, member, now, add)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', exact(now - window))
  local count = redis.call('ZCARD', key)
  local allowed = 0
  if add and redis.call('ZSCORE', key, member) then
    allowed = 1  -- the same call retried after a lost reply: it counted already
  elseif count < limit then
    allowed = 1
    if add then
      redis.call('ZADD', key, exact(now), member)
      redis.call('PEXPIRE', key, math.floor(window / 1000) + 1000)
      count = count + 1
    end
  end
  local reset = now
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if oldest[2] then
    reset = tonumber(oldest[2]) + window
  end
  local remaining = limit - count
  if remaining < 0 then
    remaining = 0
  end
  return {allowed, remaining, reset, now}
end
