-- The window alone: for failed authentications per client address, and for a valid token that cannot be
-- cached while a tombstone stands beside it.
-- KEYS: window
-- ARGV: limit, window (microseconds), unique member, clock override, '1' to count or '0' to only look
-- Returns {allowed, remaining, reset, now}
return slide(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], clock(ARGV[4]), ARGV[5] == '1')
