-- Compare-and-set of one breaker's record, and its publication, in one atomic step.
-- KEYS: snapshot, version, state, counter, opened_at (one hash tag: one Cluster slot)
-- ARGV: expected version, snapshot JSON, state, counter, opened_at ('' = none), channel, name
-- Returns {1, new version} when written, else {0, stored version, stored snapshot or nil}.
local stored = tonumber(redis.call('GET', KEYS[2]) or '0')
if stored ~= tonumber(ARGV[1]) then
  return {0, stored, redis.call('GET', KEYS[1])}
end
local version = stored + 1
redis.call('MSET', KEYS[1], ARGV[2], KEYS[2], version, KEYS[3], ARGV[3], KEYS[4], ARGV[4])
if ARGV[5] == '' then
  redis.call('DEL', KEYS[5])
else
  redis.call('SET', KEYS[5], ARGV[5])
end
-- The snapshot is JSON, which holds no raw newline; the name, which may, goes last.
redis.call('PUBLISH', ARGV[6], version .. '\n' .. ARGV[2] .. '\n' .. ARGV[7])
return {1, version}
