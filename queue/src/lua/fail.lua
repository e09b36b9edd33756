-- ARGV: id, then groups of 7: index, fence, kind, error, backoff (ms), cell,
-- result. kind: "retryable" goes back to the queue after the backoff unless
-- it has used every attempt, in which case it is dead-lettered with `result`;
-- "permanent" records `result` (a failed result); "released" goes back to the
-- queue at once without using up an attempt (a worker shutting down);
-- "paused" does the same and pauses the sweep with `error` as the reason (the
-- provider refused an API key: every job would fail the same way).
-- Returns per group: "retried", "dead", "failed", "released", "paused", "done" (it
-- already had a result) or "stale" (the lease is no longer held).
local id = ARGV[1]
local meta = k(id, 'meta')
if not redis.call('HGET', meta, 'total') then
  return redis.error_reply('NOSWEEP no such sweep')
end
local max_attempts = tonumber(redis.call('HGET', meta, 'max_attempts'))
local ncls = tonumber(redis.call('HGET', meta, 'classifiers'))
local now = now_ms()
local out = {}
for i = 2, #ARGV, 7 do
  local idx, fence, kind, err, backoff, cell, result =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 5], ARGV[i + 6]
  if redis.call('GETBIT', k(id, 'done'), idx) == 1 then
    out[#out + 1] = 'done'
  elseif redis.call('HGET', k(id, 'fences'), idx) ~= fence then
    out[#out + 1] = 'stale'
  elseif kind == 'released' or kind == 'paused' then
    if kind == 'paused' and redis.call('HGET', meta, 'state') == 'running' then
      redis.call('HSET', meta, 'state', 'paused', 'reason', err)
      redis.call('LREM', 'candor:active', 0, id)
    end
    redis.call('ZREM', k(id, 'leases'), idx)
    redis.call('HDEL', k(id, 'fences'), idx)
    redis.call('HINCRBY', k(id, 'attempts'), idx, -1)
    redis.call('ZADD', k(id, 'retry'), now, idx)
    out[#out + 1] = kind
  elseif kind == 'retryable' then
    local a = tonumber(redis.call('HGET', k(id, 'attempts'), idx) or '0')
    if a >= max_attempts then
      record(id, idx, 'failed', 0, cell, result, ncls)
      redis.call('HSET', k(id, 'dead'), idx, 'after ' .. a .. ' attempts: ' .. err)
      redis.call('HINCRBY', meta, 'dead', 1)
      out[#out + 1] = 'dead'
    else
      redis.call('ZREM', k(id, 'leases'), idx)
      redis.call('HDEL', k(id, 'fences'), idx)
      redis.call('HSET', k(id, 'errors'), idx, err)
      redis.call('ZADD', k(id, 'retry'), now + backoff, idx)
      redis.call('HINCRBY', meta, 'retried', 1)
      out[#out + 1] = 'retried'
    end
  else
    record(id, idx, 'failed', 0, cell, result, ncls)
    out[#out + 1] = 'failed'
  end
end
return out
