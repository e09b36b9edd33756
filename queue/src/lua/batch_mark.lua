-- ARGV: sweep id, batch key, what, then for `submitted` the provider's id.
-- Marks a recorded batch (candor-exec's Journal::submitted and ::ended):
-- `submitted`, created at the provider under that id; `ended`, its results
-- read. A batch no longer recorded (abandoned, its sweep deleted) is left
-- unrecorded. Returns 1 if the batch was marked, 0 if it is not recorded.
local id, key, what = ARGV[1], ARGV[2], ARGV[3]
local batches = k(id, 'batches')
local json = redis.call('HGET', batches, key)
if not json then
  return 0
end
local b = cjson.decode(json)
if what == 'submitted' then
  b.provider_id = ARGV[4]
elseif what == 'ended' then
  b.ended = true
else
  return redis.error_reply('ERR batch_mark: no such mark ' .. what)
end
redis.call('HSET', batches, key, batch_json(b))
return 1
