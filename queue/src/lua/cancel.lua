-- ARGV: id. Stops leasing a running or paused sweep. Returns its state, or false.
local id = ARGV[1]
local meta, state = meta_and_state(id)
if not state then
  return false
end
if state == 'running' or state == 'paused' then
  redis.call('HSET', meta, 'state', 'cancelled', 'finished_ms', now_ms())
  redis.call('LREM', 'candor:active', 0, id)
  state = 'cancelled'
end
return state
