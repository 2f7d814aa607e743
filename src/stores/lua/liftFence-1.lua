--[[
  Lifts an operator's fence, if it is still this operator's: its action met a conflict (which set
  the fence) and then had nothing to write, or failed. Another operator's fence stays.

  Input:
    KEYS[1]  fence   the breaker's fence key
    ARGV[1]  the operator's fence id

  Output:
    1 when lifted, 0 when there was none of this operator's.
]]
local ok, held = pcall(redis.call, 'GET', KEYS[1])
if ok and held == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
