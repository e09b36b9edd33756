-- ARGV: id. Stops leasing a running or paused sweep. Returns its state, or false.
local id = ARGV[1]
local meta = k(id, 'meta')
local state = redis.call('HGET', meta, 'state')
if not state then
  return false
end
if state == 'running' or state == 'paused' then
  redis.call('HSET', meta, 'state', 'cancelled', 'finished_ms', now_ms())
  redis.call('LREM', 'candor:active', 0, id)
  state = 'cancelled'
end
return state
