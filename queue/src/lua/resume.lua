-- ARGV: id. Leases a paused sweep's jobs again; a model it gave up on (fail
-- fast) gets as many calls again before it is given up on once more.
-- Returns its state, or false.
local id = ARGV[1]
local meta, state = meta_and_state(id)
if not state then
  return false
end
if state == 'paused' then
  redis.call('HSET', meta, 'state', 'running')
  redis.call('HDEL', meta, 'reason')
  redis.call('LREM', 'candor:active', 0, id)
  redis.call('RPUSH', 'candor:active', id)
  state = 'running'
end
return state
