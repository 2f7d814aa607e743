--[[
  Compare-and-set of one breaker's record, and its publication, in one atomic step.

  Input:
    KEYS[1]  snapshot    the statechart's persisted snapshot (JSON)
    KEYS[2]  version     the record's version
    KEYS[3]  state       plain copies for redis-cli: top-level state,
    KEYS[4]  counter       consecutive failures,
    KEYS[5]  opened_at     epoch ms on server time (absent: never opened)
    KEYS[6]  write       the write id of the snapshot (ARGV[11] of the write that made it)
    (one hash tag: one Cluster slot)
    KEYS[7]  seq         the store's change counter, numbering every change message so
                         that a follower sees a lost one as a gap (only when ARGV[13] is
                         'numbered'; otherwise another key of the breaker's slot)
    KEYS[8]  fence       an operator's fence: while it is there, only its holder writes

    ARGV[1]  expected version (0: no record, or one that cannot be read)
    ARGV[2]  new version
    ARGV[3]  snapshot JSON
    ARGV[4]  state
    ARGV[5]  counter
    ARGV[6]  opened_at ('' = never opened)
    ARGV[7]  change channel (the breaker's own, in its slot, when ARGV[13] is 'sharded')
    ARGV[8]  breaker name
    ARGV[9]  expected write id ('' = do not compare)
    ARGV[10] deadline, epoch ms on server time: a write its client gave up on (run late from
             the client's offline queue) must not land
    ARGV[11] this write's id
    ARGV[12] the version limit: stored versions are below it (the caller checks a new one, also below it)
    ARGV[13] how to publish: 'numbered' (PUBLISH, numbered with KEYS[7]), 'plain' (PUBLISH)
             or 'sharded' (SPUBLISH, Redis 7: the message stays inside the slot's shard)
    ARGV[14] ms after which KEYS[1..6] expire, all at one instant ('' = kept: the MSET and
             SET below drop any expiry an earlier write set)
    ARGV[15] this writer's fence id ('' = a fleet write, which yields to any fence)
    ARGV[16] ms a fence lives: an operator gone after its conflict holds nobody back longer

  An operator's write (ARGV[15] set) that meets a conflict sets the fence before answering: the
  other writers' compare-and-sets yield (FENCED) until the operator's next write, built by the
  statechart on the record this conflict returns, lands and lifts it (or the fence expires).
  So an operator's action lands on its second write whatever the fleet's write rate.

  Output:
    {WRITTEN, wrong types}
    {CONFLICT, stored version, raw version, raw snapshot, wrong types}
    {LATE}
    {FENCED, ms the fence still lives}
  Raw values are false (nil) when missing; wrong types names the fields ('snapshot',
  'version') whose keys held another type than a string, so that the client reports them.

  Portable Lua: it runs as is on Redis (Lua 5.1, numbers are doubles) and on ioredis-mock
  (fengari: Lua 5.3 with 32-bit integers, so whole-number arithmetic on epoch ms wraps and
  string.format('%d') fails above 2^31; a number from redis.call is a float, 1.0 .. '' is
  '1.0'; GET of another type returns something else than a string instead of failing).
]]
local WRITTEN, CONFLICT, LATE, FENCED = 1, 0, 2, 3

-- A key of another type (someone's HSET) reads as absent instead of failing the script, so
-- that the write below replaces it and the breaker never stays stuck on it.
local wrong = ''
local function get(key, field)
  local ok, value = pcall(redis.call, 'GET', key)
  if ok and (value == false or type(value) == 'string') then return value end
  wrong = wrong .. field .. ' '
  return false
end

-- Float arithmetic (1000.0): on 32-bit integers, seconds * 1000 wraps.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000.0 + math.floor(tonumber(time[2]) / 1000)
if now > tonumber(ARGV[10]) then
  return {LATE}
end

local fenceOk, fence = pcall(redis.call, 'GET', KEYS[8])
if not fenceOk or type(fence) ~= 'string' then fence = false end
if fence and fence ~= ARGV[15] then
  return {FENCED, redis.call('PTTL', KEYS[8])}
end

local rawVersion = get(KEYS[2], 'version')
local rawSnapshot = get(KEYS[1], 'snapshot')
-- Only a whole number from 1 to below the version limit is a version (room is left for the
-- next write); anything else reads as no record (0), so that a write replaces it.
local stored = tonumber(rawVersion or '') or 0
if stored ~= math.floor(stored) or stored < 1 or stored >= tonumber(ARGV[12]) then
  stored = 0
end
-- The version alone can repeat after a data loss (a stale instance re-creates the record at a
-- version another instance already wrote); the write id cannot. It is compared with the write
-- key alone, never read out of the snapshot's JSON (whose layout is the statechart's to change).
-- A record without its write key (evicted alone, deleted by hand) matches no expected write id:
-- the conflict's reply holds the record, and a writer that finds it is its very base writes
-- again expecting the version alone.
local storedWrite = get(KEYS[6], 'write') or ''
if stored ~= tonumber(ARGV[1]) or (ARGV[9] ~= '' and storedWrite ~= ARGV[9]) then
  if ARGV[15] ~= '' then redis.call('SET', KEYS[8], ARGV[15], 'PX', ARGV[16]) end
  return {CONFLICT, stored, rawVersion, rawSnapshot, wrong}
end
if fence then redis.call('DEL', KEYS[8]) end
-- MSET replaces a key of any type.
redis.call('MSET', KEYS[1], ARGV[3], KEYS[2], ARGV[2], KEYS[3], ARGV[4], KEYS[4], ARGV[5],
  KEYS[6], ARGV[11])
if ARGV[6] == '' then
  redis.call('DEL', KEYS[5])
else
  redis.call('SET', KEYS[5], ARGV[6])
end
if ARGV[14] ~= '' then
  -- One absolute deadline for every key: a reader meets the whole record or none of it.
  local at = string.format('%.0f', now + tonumber(ARGV[14]))
  for i = 1, 6 do redis.call('PEXPIREAT', KEYS[i], at) end
end
local seq = ''
if ARGV[13] == 'numbered' then
  -- A counter that starts again (FLUSHALL, a lost key) starts above every number it gave before:
  -- at the server's time in ms times 1000. A follower that missed the first message after the
  -- loss then sees the counter differ from its last number, never the same number again.
  if redis.call('EXISTS', KEYS[7]) == 0 then
    redis.call('SET', KEYS[7], string.format('%.0f', now * 1000.0))
  end
  seq = string.format('%.0f', redis.call('INCR', KEYS[7]))
end
-- JSON holds no raw newline, so the message splits on the first three; the name, which may
-- hold newlines, goes last.
local publish = ARGV[13] == 'sharded' and 'SPUBLISH' or 'PUBLISH'
redis.call(publish, ARGV[7], ARGV[2] .. '\n' .. ARGV[3] .. '\n' .. seq .. '\n' .. ARGV[8])
return {WRITTEN, wrong}
