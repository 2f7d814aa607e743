-- Reads one breaker's record. KEYS: snapshot, version.
-- Returns {raw snapshot, raw version, wrong types}: raw values are nil when missing or of
-- another type than a string; wrong types names those fields ('snapshot', 'version'), which
-- a plain MGET would silently read as missing.
local wrong = ''
local function get(key, field)
  local ok, value = pcall(redis.call, 'GET', key)
  if ok then return value end
  wrong = wrong .. field .. ' '
  return false
end
return {get(KEYS[1], 'snapshot'), get(KEYS[2], 'version'), wrong}
