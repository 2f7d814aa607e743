--[[
  Reads what tells records apart, for many breakers in one round trip: enough for a resync to
  see which records differ from what its breakers hold, without moving whole snapshots.

  Input:
    KEYS[3i-2]  version of breaker i
    KEYS[3i-1]  write (write id) of breaker i
    KEYS[3i]    snapshot of breaker i
    (no ARGV; on a Cluster, only keys of one slot: one breaker per call)

  Output:
    {version 1, write 1, snapshot length 1, version 2, ...}
  A version or write id is false (nil) when missing; the length is 0 for a missing snapshot
  and -1 for a key of another type than a string (a record the full read then reports).
]]
-- Filled from the last breaker to the first: ioredis-mock returns a table as an array only
-- when its keys were added in that order (a table constructor's order); Redis takes either.
local reply = {}
for i = math.floor(#KEYS / 3), 1, -1 do
  local okVersion, version = pcall(redis.call, 'GET', KEYS[3 * i - 2])
  local okWrite, write = pcall(redis.call, 'GET', KEYS[3 * i - 1])
  local okLength, length = pcall(redis.call, 'STRLEN', KEYS[3 * i])
  -- Another type fails GET and STRLEN on Redis, and returns something else on ioredis-mock.
  if not okVersion or (version ~= false and type(version) ~= 'string') then
    version = 'wrong type'
  end
  if not okWrite or type(write) ~= 'string' then write = false end
  if not okLength or type(length) ~= 'number' then length = -1 end
  reply[3 * i] = length
  reply[3 * i - 1] = write
  reply[3 * i - 2] = version
end
return reply
