-- ARGV: sweep id, batch key. Forgets a recorded batch that was never
-- created (candor-exec's Journal::abandon), only while it has no provider
-- id: its custom_ids are freed where they still point at it. Returns 1 if
-- it was forgotten, 0 if it has a provider id or is not recorded.
local id, key = ARGV[1], ARGV[2]
local batches, of = k(id, 'batches'), k(id, 'batchof')
local json = redis.call('HGET', batches, key)
if not json then
  return 0
end
local b = cjson.decode(json)
if type(b.provider_id) == 'string' then
  return 0
end
for _, cid in ipairs(b.ids) do
  if redis.call('HGET', of, cid) == key then
    redis.call('HDEL', of, cid)
  end
end
redis.call('HDEL', batches, key)
return 1
