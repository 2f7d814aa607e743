--[[
  Adds one instance's window counts to a breaker's fleet window and returns the fleet's totals,
  in one atomic step. The window is one hash in the breaker's hash slot; its fields are
  `<generation>:<bucket>:<kind>`, kind `c` (counted calls), `f` (failures), `s` (slow calls),
  `if:<instance>` / `is:<instance>` (the instance reported failures / slow calls, for a quorum),
  `p:<instance>` (the instance flushed counts; its value is the instance's flush period in ms).
  Buckets that left the window are deleted by the next flush, and the whole hash expires when
  nobody flushes for a window.

  The `p:` fields tell a flushing instance whether it counts alone, and how long the others may
  hold counts before they flush them: a rate decision waits that long when it is not alone.

  A flush lands at most once: its client may send it again after a reconnect (ioredis resends
  what got no answer), so a flush run after its deadline, or a second time (its id key is
  there), adds nothing and only reads the totals.

  Input:
    KEYS[1]  window   the breaker's window hash
    KEYS[2]  flush    this flush's id key, in the breaker's hash slot

    ARGV[1]  generation the counts belong to (each closed period has a window of its own)
    ARGV[2]  the current bucket (the flush time on the breaker's clock, in tenths of a window)
    ARGV[3]  the oldest bucket still in the window
    ARGV[4]  counted calls
    ARGV[5]  failures
    ARGV[6]  slow calls
    ARGV[7]  the flushing instance ('' = instances are not told apart)
    ARGV[8]  ms the hash lives after this flush
    ARGV[9]  deadline, epoch ms on server time: a flush its client gave up on adds nothing
    ARGV[10] ms the id key lives (past the deadline)
    ARGV[11] the flushing instance's flush period in ms

  Output:
    {calls, failures, slow, failing instances, slow instances, other instances, their longest
    flush period}: the totals of the generation over the buckets still in the window; the other
    instances are those that flushed counts into them, the flusher excluded.

  Portable Lua (Redis's 5.1 and ioredis-mock's fengari 5.3): bucket numbers are compared as
  numbers, which stay exact as doubles; no integer arithmetic on them.
]]
local key = KEYS[1]
local generation, bucket, first = ARGV[1], ARGV[2], tonumber(ARGV[3])
local calls, failures, slow = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local instance = ARGV[7]

-- A key of another type in the way is replaced: the window is a cache of counts, never worth
-- failing a flush for.
if not pcall(redis.call, 'HLEN', key) then redis.call('DEL', key) end

-- Float arithmetic (1000.0): on 32-bit integers, seconds * 1000 wraps.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000.0 + math.floor(tonumber(time[2]) / 1000)
local fresh = now <= tonumber(ARGV[9])
  and redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[10])

local prefix = generation .. ':' .. bucket .. ':'
if fresh then
  if calls > 0 then
    redis.call('HINCRBY', key, prefix .. 'c', calls)
    if instance ~= '' then redis.call('HSET', key, prefix .. 'p:' .. instance, ARGV[11]) end
  end
  if failures > 0 then
    redis.call('HINCRBY', key, prefix .. 'f', failures)
    if instance ~= '' then redis.call('HSET', key, prefix .. 'if:' .. instance, 1) end
  end
  if slow > 0 then
    redis.call('HINCRBY', key, prefix .. 's', slow)
    if instance ~= '' then redis.call('HSET', key, prefix .. 'is:' .. instance, 1) end
  end
end

local all = redis.call('HGETALL', key)
local totals = { c = 0, f = 0, s = 0 }
local failing, slowing, present = {}, {}, {}
local nFailing, nSlowing, nOthers, othersFlush = 0, 0, 0, 0
local dead = {}
for i = 1, #all, 2 do
  local field, value = all[i], all[i + 1]
  local g, b, kind = string.match(field, '^([^:]*):([^:]*):(.*)$')
  local at = tonumber(b or '')
  if at == nil or at < first then
    dead[#dead + 1] = field
  elseif g == generation then
    if kind == 'c' or kind == 'f' or kind == 's' then
      totals[kind] = totals[kind] + (tonumber(value) or 0)
    elseif string.sub(kind, 1, 3) == 'if:' then
      local id = string.sub(kind, 4)
      if not failing[id] then failing[id] = true; nFailing = nFailing + 1 end
    elseif string.sub(kind, 1, 3) == 'is:' then
      local id = string.sub(kind, 4)
      if not slowing[id] then slowing[id] = true; nSlowing = nSlowing + 1 end
    elseif string.sub(kind, 1, 2) == 'p:' then
      local id = string.sub(kind, 3)
      if id ~= instance then
        if not present[id] then present[id] = true; nOthers = nOthers + 1 end
        othersFlush = math.max(othersFlush, tonumber(value) or 0)
      end
    end
  end
end
-- In slices: unpack has a limit on the arguments it spreads (Lua 5.3 keeps it in table).
local spread = unpack or table.unpack
for i = 1, #dead, 500 do
  redis.call('HDEL', key, spread(dead, i, math.min(i + 499, #dead)))
end
redis.call('PEXPIRE', key, ARGV[8])
return {totals.c, totals.f, totals.s, nFailing, nSlowing, nOthers, othersFlush}
