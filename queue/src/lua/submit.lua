-- ARGV: id, bundle, early stopping's decision table (empty: no early
-- stopping), then field/value pairs of the sweep's meta (among them the
-- budget's `budget` and `reserve`, in micro-USD, that lease.lua reads; 0 or
-- absent: none).
-- Returns 1 if the sweep was created, 0 if it already existed.
local id = ARGV[1]
local meta = k(id, 'meta')
if redis.call('EXISTS', meta) == 1 then
  return 0
end
local now = now_ms()
redis.call('SET', k(id, 'bundle'), ARGV[2])
if #ARGV[3] > 0 then
  redis.call('SET', k(id, 'early'), ARGV[3])
end
for i = 4, #ARGV, 2 do
  redis.call('HSET', meta, ARGV[i], ARGV[i + 1])
end
redis.call('HSET', meta, 'state', 'running', 'created_ms', now, 'done', 0, 'failed', 0, 'incomplete', 0,
  'dead', 0, 'retried', 0, 'lease_expiries', 0, 'leased', 0)
redis.call('SET', k(id, 'cursor'), 0)
redis.call('ZADD', 'candor:sweeps', now, id)
redis.call('RPUSH', 'candor:active', id)
return 1
