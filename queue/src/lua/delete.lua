-- ARGV: id. Deletes a sweep that has ended (done, cancelled, out of budget):
-- its bundle, part references, counters, journal of batches and every other
-- key (the caller then removes its archive parts). A running or paused
-- sweep is left as it is (cancel it first). Returns the state it had (the
-- caller tells "running"/"paused" apart as a refusal), or false if there is
-- no such sweep. UNLINK frees the memory off Redis's main thread.
local id = ARGV[1]
local _, state = meta_and_state(id)
if not state then
  return false
end
if state == 'running' or state == 'paused' then
  return state
end
for _, name in ipairs({'meta', 'bundle', 'cursor', 'leases', 'fences', 'attempts', 'retry', 'errors',
                       'dying', 'done', 'partof', 'outcome', 'parts', 'partids', 'gone', 'dead', 'tally', 'early', 'cutoff', 'decided',
                       'failures', 'failfast', 'batches', 'batchof'}) do
  redis.call('UNLINK', k(id, name))
end
redis.call('ZREM', 'candor:sweeps', id)
redis.call('SREM', 'candor:dying', id)
redis.call('LREM', 'candor:active', 0, id)
return state
