-- ARGV: id, then archive part names the caller found in the archive and
-- that are old enough to be garbage. Each one no job names (no result was
-- recorded from it) is condemned: added to `gone`, so that no result can be
-- recorded from it afterwards, and returned for the caller to remove.
-- A part that holds a recorded result is kept.
local id = ARGV[1]
if not redis.call('HGET', k(id, 'meta'), 'total') then
  return {}
end
local out = {}
for i = 2, #ARGV do
  local name = ARGV[i]
  if redis.call('HEXISTS', k(id, 'partids'), name) == 0 then
    redis.call('SADD', k(id, 'gone'), name)
    out[#out + 1] = name
  end
end
return out
