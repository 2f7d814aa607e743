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
local reply = {}
for i = 1, #KEYS, 3 do
  local okVersion, version = pcall(redis.call, 'GET', KEYS[i])
  local okWrite, write = pcall(redis.call, 'GET', KEYS[i + 1])
  local okLength, length = pcall(redis.call, 'STRLEN', KEYS[i + 2])
  if not okVersion then version = 'wrong type' end
  if not okWrite then write = false end
  if not okLength then length = -1 end
  reply[#reply + 1] = version
  reply[#reply + 1] = write
  reply[#reply + 1] = length
end
return reply
