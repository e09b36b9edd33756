-- ARGV: sweep id, batch key, model, created (ms), then the batch's custom_ids.
-- Records a batch before it is submitted (candor-exec's Journal::intend):
-- each custom_id no recorded batch holds is given to it (HSETNX on
-- `batchof`); one that another batch holds is left out and answered with
-- that batch's key. The batch is recorded with the custom_ids it took, and
-- not at all when it took none. Running it again for the same key answers
-- the same (the custom_ids it holds count as taken).
-- Returns a flat array: custom_id, key of the batch holding it, ...
-- Fails with NOSWEEP when the sweep is gone.
local id, key = ARGV[1], ARGV[2]
local _, state = meta_and_state(id)
if not state then
  return redis.error_reply('NOSWEEP no such sweep')
end
local of = k(id, 'batchof')
local taken, held = {}, {}
for i = 5, #ARGV do
  local cid = ARGV[i]
  if redis.call('HSETNX', of, cid, key) == 1 then
    taken[#taken + 1] = cid
  else
    local other = redis.call('HGET', of, cid)
    if other == key then
      taken[#taken + 1] = cid
    else
      held[#held + 1] = cid
      held[#held + 1] = other
    end
  end
end
if #taken > 0 then
  local b = { key = key, model = ARGV[3], created_ms = tonumber(ARGV[4]), ids = taken, ended = false }
  redis.call('HSET', k(id, 'batches'), key, batch_json(b))
end
return held
