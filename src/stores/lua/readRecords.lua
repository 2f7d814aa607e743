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
local reply = {}
for i = 1, #KEYS, 2 do
  local wrong = ''
  local function get(key, field)
    local ok, value = pcall(redis.call, 'GET', key)
    if ok then return value end
    wrong = wrong .. field .. ' '
    return false
  end
  local snapshot = get(KEYS[i], 'snapshot')
  local version = get(KEYS[i + 1], 'version')
  reply[#reply + 1] = snapshot
  reply[#reply + 1] = version
  reply[#reply + 1] = wrong
end
return reply
