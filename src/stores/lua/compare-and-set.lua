-- Compare-and-set of one breaker's record, and its publication, in one atomic step.
-- KEYS: snapshot, version, state, counter, opened_at (one hash tag: one Cluster slot)
-- ARGV: expected version, new version, snapshot JSON, state, counter,
--       opened_at ('' = never opened), channel, name,
--       expected write id ('' = do not compare), deadline (epoch ms, server time)
-- Returns {2} when the script runs after its deadline (a write the client already gave up on,
-- run late from its offline queue, must not land), {1, wrong types} when written, else {0, stored version, raw version, raw snapshot,
-- wrong types}. Raw values are nil when missing; wrong types names the fields ('snapshot',
-- 'version') that held another type than a string, so that the client can report them.

-- A key of another type (someone's HSET) reads as absent instead of failing the script, so
-- that the write below replaces it and the breaker never stays stuck on it.
local wrong = ''
local function get(key, field)
  local ok, value = pcall(redis.call, 'GET', key)
  if ok then return value end
  wrong = wrong .. field .. ' '
  return false
end

local rawVersion = get(KEYS[2], 'version')
local rawSnapshot = get(KEYS[1], 'snapshot')
-- Only a positive safe integer is a version; anything else reads as no record (0).
local stored = tonumber(rawVersion or '') or 0
if stored ~= math.floor(stored) or stored < 1 or stored > 9007199254740991 then
  stored = 0
end
local time = redis.call('TIME')
if tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) > tonumber(ARGV[10]) then
  return {2}
end
-- The version alone can repeat after a data loss (a stale instance re-creates the record at a
-- version another instance already wrote); the write id of the snapshot cannot.
local function writeId(raw)
  if not raw then return '' end
  local ok, doc = pcall(cjson.decode, raw)
  if ok and type(doc) == 'table' and type(doc.writeId) == 'string' then return doc.writeId end
  return ''
end
if stored ~= tonumber(ARGV[1]) or (ARGV[9] ~= '' and writeId(rawSnapshot) ~= ARGV[9]) then
  return {0, stored, rawVersion, rawSnapshot, wrong}
end
-- SET and MSET replace a key of any type.
redis.call('MSET', KEYS[1], ARGV[3], KEYS[2], ARGV[2], KEYS[3], ARGV[4], KEYS[4], ARGV[5])
if ARGV[6] == '' then
  redis.call('DEL', KEYS[5])
else
  redis.call('SET', KEYS[5], ARGV[6])
end
-- JSON holds no raw newline, so the message splits on the first two; the name, which may
-- hold newlines, goes last.
redis.call('PUBLISH', ARGV[7], ARGV[2] .. '\n' .. ARGV[3] .. '\n' .. ARGV[8])
return {1, wrong}
