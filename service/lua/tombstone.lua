-- Revocation: the tombstone and the removal of the cached record, atomically, so no fill can slip between.
-- KEYS: record, tombstone
-- ARGV: tombstone seconds (longer than any record lives)
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
redis.call('DEL', KEYS[1])
return 1
