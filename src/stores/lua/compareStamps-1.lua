#!lua flags=no-writes,allow-cross-slot-keys
--[[
  Compares the stamps a store holds with the stored ones, for many breakers of one Redis Cluster
  node in one call, and returns only the breakers whose stamp differs: a check of a node's idle
  breakers is one call per 500 of them and an empty reply. The shebang (Redis 7 or later) lets
  the script read keys of every slot the node serves; the store reads breaker by breaker where
  Redis cannot compile it.

  Input:
    KEYS[1]      version key of the first breaker, a key of the node. The store sends the call
                 on its connection to that node and follows no redirection: after ASK it would
                 run on the node importing a slot, which reads keys not moved yet as missing.
    ARGV[1..3]   the field names of the version, write and snapshot keys
    ARGV[2i+2]   what the keys of breaker i begin with (`{prefix}{name}:`): its keys are that and
                 a field name. Read undeclared: they hash to other slots of the same node.
    ARGV[2i+3]   the stamp the store holds for breaker i: '' for no record, `version:write id`
                 for one (the write id may be empty); any other text is never equal (a breaker
                 whose followers hold different stamps, or whose record was reported corrupt)

  Output:
    {i, version, write, snapshot length, ...} for each breaker i whose stored stamp is not the
    one given, as readStamps.lua gives them: a version or write id is false (nil) when missing,
    the version 'wrong type' for a key of another type; the length is 0 for a missing snapshot
    and -1 for a key of another type. Breakers are numbered from 1.

  Errors: a key this node does not serve (its slot moved or is moving) fails the whole call
  (`Script attempted to access a non local key in a cluster node`, or MOVED or ASK for KEYS[1]):
  the store then reads the batch breaker by breaker, each call routed by its own slot.
]]
local versionField, writeField, snapshotField = ARGV[1], ARGV[2], ARGV[3]

-- A read that fails for the key's type gives `nil, true`; any other failure ends the call.
local function read(command, key)
  local value = redis.pcall(command, key)
  if type(value) == 'table' and value.err ~= nil then
    if string.sub(value.err, 1, 9) == 'WRONGTYPE' then return nil, true end
    error(value)
  end
  return value, false
end

local reply = {}
for at = 4, #ARGV - 1, 2 do
  local base, held = ARGV[at], ARGV[at + 1]
  local version, wrongVersion = read('GET', base .. versionField)
  local write = read('GET', base .. writeField)
  local length, wrongLength = read('STRLEN', base .. snapshotField)
  if type(write) ~= 'string' then write = false end
  if wrongVersion then version = 'wrong type' end
  if wrongLength then length = -1 end
  -- The stored stamp as the store writes the held one; none for what only a full read judges.
  local stored = nil
  if version == false and length == 0 then
    stored = ''
  elseif type(version) == 'string' and string.match(version, '^%d+$') and length > 0 then
    stored = version .. ':' .. (write or '')
  end
  if stored ~= held then
    reply[#reply + 1] = (at - 2) / 2
    reply[#reply + 1] = version
    reply[#reply + 1] = write
    reply[#reply + 1] = length
  end
end
return reply
