--[[
  Reads the records of one or more breakers in one round trip.

  Input:
    KEYS[2i-1]  snapshot of breaker i
    KEYS[2i]    version of breaker i
    (no ARGV; on a Cluster, only keys of one slot: one breaker per call)

  Output:
    {snapshot 1, version 1, wrong types 1, snapshot 2, version 2, wrong types 2, ...}
  A value is false (nil) when missing or of another type than a string; wrong types names
  those fields ('snapshot', 'version'), which a plain MGET would silently read as missing.
]]
-- Filled from the last breaker to the first: ioredis-mock returns a table as an array only
-- when its keys were added in that order (a table constructor's order); Redis takes either.
local reply = {}
for i = math.floor(#KEYS / 2), 1, -1 do
  local wrong = ''
  local function get(key, field)
    local ok, value = pcall(redis.call, 'GET', key)
    -- Another type fails GET on Redis, and returns something else than a string on ioredis-mock.
    if ok and (value == false or type(value) == 'string') then return value end
    wrong = wrong .. field .. ' '
    return false
  end
  local snapshot = get(KEYS[2 * i - 1], 'snapshot')
  local version = get(KEYS[2 * i], 'version')
  reply[3 * i] = wrong
  reply[3 * i - 1] = version
  reply[3 * i - 2] = snapshot
end
return reply
