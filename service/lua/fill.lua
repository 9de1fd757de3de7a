-- Caches what PostgreSQL said about a digest, then (for a valid token) applies its window, in one call.
-- A valid record is never written while a tombstone exists: a replica that read "valid" before a revoke
-- committed cannot bring the token back. 'x' (unknown or revoked) can never grant access, so it is
-- written regardless.
-- KEYS: record, tombstone, window, last-used gate
-- ARGV: value ('x' or 'v1:token:project:limit'), record seconds, window (microseconds), unique member,
--       last-used gate seconds, clock override
if ARGV[1] == 'x' then
  redis.call('SET', KEYS[1], 'x', 'EX', ARGV[2])
  return {'unknown'}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'tombstoned'}
end
local limit = tonumber(string.match(ARGV[1], '^v1:%d+:%d+:(%d+)$'))
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local w = slide(KEYS[3], limit, tonumber(ARGV[3]), ARGV[4], clock(ARGV[6]), true)
local mark = 0
if redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[5]) then
  mark = 1
end
return {'ok', ARGV[1], w[1], w[2], w[3], w[4], mark}
