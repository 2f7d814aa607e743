-- Compare-and-set of one breaker's record, and its publication, in one atomic step.
-- KEYS: snapshot, version, state, counter, opened_at (one hash tag: one Cluster slot)
-- ARGV: expected version, new version, snapshot JSON, state, counter,
--       opened_at ('' = never opened), channel, name
-- Returns {1} when written, else {0, stored version, stored snapshot (absent if missing)}.
local stored = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if stored ~= tonumber(ARGV[1]) then
  return {0, stored, redis.call('GET', KEYS[1])}
end
redis.call('MSET', KEYS[1], ARGV[3], KEYS[2], ARGV[2], KEYS[3], ARGV[4], KEYS[4], ARGV[5])
if ARGV[6] == '' then
  redis.call('DEL', KEYS[5])
else
  redis.call('SET', KEYS[5], ARGV[6])
end
-- JSON holds no raw newline, so the message splits on the first two; the name, which may
-- hold newlines, goes last.
redis.call('PUBLISH', ARGV[7], ARGV[2] .. '\n' .. ARGV[3] .. '\n' .. ARGV[8])
return {1}
