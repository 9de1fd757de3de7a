-- One call per API request with a well-formed token: the cached token record and its window.
-- KEYS: record, tombstone, window, last-used gate (one hash slot: the digest is their tag)
-- ARGV: window (microseconds), unique member, last-used gate seconds, clock override ('' in service)
-- Returns {'miss'} | {'unknown'} | {'garbled'} | {'ok', record, allowed, remaining, reset, now, mark_used}
local record = redis.call('GET', KEYS[1])
if not record then
  return {'miss'}
end
if record == 'x' then
  return {'unknown'}
end
local limit = tonumber(string.match(record, '^v1:%d+:%d+:(%d+)$'))
if not limit or limit < 1 then
  return {'garbled'}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  -- a record beside a tombstone came from an older snapshot: never serve it
  redis.call('DEL', KEYS[1])
  return {'miss'}
end
local w = slide(KEYS[3], limit, tonumber(ARGV[1]), ARGV[2], clock(ARGV[4]), true)
local mark = 0
if redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[3]) then
  mark = 1
end
return {'ok', record, w[1], w[2], w[3], w[4], mark}
