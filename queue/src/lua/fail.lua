-- ARGV: id, the archive part holding the results, then groups of 8: index, fence, kind, error, backoff (ms), cell,
-- result, persistent (0/1). kind: "retryable" goes back to the queue after the backoff unless
-- it has used every attempt, in which case it is dead-lettered with `result`;
-- "permanent" records `result` (a failed result); "released" goes back to the
-- queue at once without using up an attempt (a worker shutting down);
-- "paused" does the same and pauses the sweep with `error` as the reason (the
-- provider refused an API key: every job would fail the same way).
-- Fail fast: a "retryable" or "permanent" failure marked persistent (no
-- connection, 404, 400: a reason that will not pass) of a model none of whose
-- jobs has an answer yet is "held": the job goes back to the queue after the
-- backoff without using up an attempt, and when the sweep's `fail_fast` such
-- failures of one model have been held the sweep pauses with the reason
-- (`candor resume` after the fix). Nothing is recorded as failed meanwhile.
-- Returns per group: "retried", "dead", "failed", "released", "paused", "held", "done" (it
-- already had a result) or "stale" (the lease is no longer held).
local id = ARGV[1]
local meta = k(id, 'meta')
if not redis.call('HGET', meta, 'total') then
  return redis.error_reply('NOSWEEP no such sweep')
end
local max_attempts = tonumber(redis.call('HGET', meta, 'max_attempts'))
local ncls = tonumber(redis.call('HGET', meta, 'classifiers'))
local fail_fast = tonumber(redis.call('HGET', meta, 'fail_fast') or '0')
local per_model = tonumber(redis.call('HGET', meta, 'cells_per_model') or '0')
local now = now_ms()

-- The model (its index in the spec) of report cell `cell`, and whether no job
-- of it has an answer (ok, incomplete, truncated or filtered) yet.
local function unanswered(cell)
  local m = math.floor(tonumber(cell) / per_model)
  local tally = k(id, 'tally')
  for c = m * per_model, (m + 1) * per_model - 1 do
    local got = redis.call('HMGET', tally, c .. ':ok', c .. ':incomplete', c .. ':truncated', c .. ':filtered')
    for _, n in ipairs(got) do
      if tonumber(n or '0') > 0 then
        return false, m
      end
    end
  end
  return true, m
end

local function hold(idx, err, backoff, cell)
  local none, m = unanswered(cell)
  if not none then
    return false
  end
  redis.call('ZREM', k(id, 'leases'), idx)
  redis.call('HDEL', k(id, 'fences'), idx)
  redis.call('HINCRBY', k(id, 'attempts'), idx, -1)
  redis.call('HSET', k(id, 'errors'), idx, err)
  redis.call('ZADD', k(id, 'retry'), now + backoff, idx)
  local n = redis.call('HINCRBY', k(id, 'failfast'), m, 1)
  if n >= fail_fast and redis.call('HGET', meta, 'state') == 'running' then
    redis.call('HSET', meta, 'state', 'paused', 'reason',
      'fail fast: ' .. n .. ' calls failed and none succeeded, for a reason that will not pass: ' .. err)
    redis.call('LREM', 'candor:active', 0, id)
  end
  return true
end

local part = ARGV[2]
local gone = part_gone(id, part)
local out = {}
for i = 3, #ARGV, 8 do
  local idx, fence, kind, err, backoff, cell, result, persistent =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 5], ARGV[i + 6],
    ARGV[i + 7]
  if gone then
    out[#out + 1] = 'stale'
  elseif redis.call('GETBIT', k(id, 'done'), idx) == 1 then
    out[#out + 1] = 'done'
  elseif redis.call('HGET', k(id, 'fences'), idx) ~= fence then
    out[#out + 1] = 'stale'
  elseif persistent == '1' and fail_fast > 0 and per_model > 0
      and (kind == 'retryable' or kind == 'permanent') and hold(idx, err, backoff, cell) then
    out[#out + 1] = 'held'
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
      record(id, idx, 'failed', 0, cell, result, ncls, part)
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
    record(id, idx, 'failed', 0, cell, result, ncls, part)
    out[#out + 1] = 'failed'
  end
end
return out
