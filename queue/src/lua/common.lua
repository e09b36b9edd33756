-- Shared by every candor script. Key layout, for sweep ID:
--   candor:sweeps            ZSET   id -> created (ms)
--   candor:active            LIST   ids of running sweeps, rotated for round-robin leasing
--   candor:fence             STRING fencing token counter
--   candor:archive           STRING the identity of the archive the results are in (set by the
--                                   first coordinator; workers with --redis check theirs against it)
--   candor:dying             SET    ids of sweeps with jobs to dead-letter (see lease.lua)
--   candor:s:ID:meta         HASH   name, total, state, counters
--   candor:s:ID:bundle       STRING the spec bundle (JSON)
--   candor:s:ID:cursor       STRING next job index never leased
--   candor:s:ID:leases       ZSET   index -> lease deadline (ms)
--   candor:s:ID:fences       HASH   index -> fencing token of its current lease
--   candor:s:ID:attempts     HASH   index -> leases so far (jobs not finished)
--   candor:s:ID:retry        ZSET   index -> when it may be leased again (ms)
--   candor:s:ID:errors       HASH   index -> last retryable error
--   candor:s:ID:dying        HASH   index -> why it is to be dead-lettered
--   candor:s:ID:done         BITMAP one bit per job with a result
--   candor:s:ID:partof       STRING u32 (big-endian) per job at byte 4*index: the number of the
--                                   archive part that holds its result (0: none)
--   candor:s:ID:outcome      STRING u40 (big-endian) per job at byte 5*index: (status code + 1) << 32
--                                   | classifier bits, for what the tally does not hold (0: none)
--   candor:s:ID:parts        HASH   part number -> part name (in the archive)
--   candor:s:ID:partids      HASH   part name -> part number
--   candor:s:ID:gone         SET    part names condemned as garbage: never recorded after
--   candor:s:ID:dead         HASH   index -> why it was dead-lettered
--   candor:s:ID:tally        HASH   "CELL:ok|incomplete|failed|truncated|filtered|yK" -> count
--   candor:s:ID:early        STRING early stopping's decision table (candor-core early::DecisionTable):
--                                   8 bytes per count n of outputs, at byte 8n: lo, hi (u32 big-endian);
--                                   a cell with n outputs, y of them yes, gets more seeds iff lo <= y <= hi,
--                                   and past the table's end it stops
--   candor:s:ID:cutoff       HASH   cell -> first seed skipped (early stopping)
--   candor:s:ID:decided      HASH   cell -> highest seed whose start was decided
--   candor:s:ID:failures     HASH   "MODEL\tKIND" -> failed jobs; "MODEL\tKIND\tfirst" -> the first error
--   candor:s:ID:failfast     HASH   model index -> calls that failed for good before it answered once
--   candor:s:ID:batches      HASH   batch key -> the provider batch recorded before it was submitted, as
--                                   candor-exec's journal::Recorded in JSON: key, model, provider_id (once
--                                   created), created_ms, ids (its custom_ids), ended (its results read)
--   candor:s:ID:batchof      HASH   custom_id -> key of the recorded batch holding it (batch_intend.lua)
-- delete.lua names every candor:s:ID:* key above: keep it in step.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function k(id, name)
  return 'candor:s:' .. id .. ':' .. name
end

-- A recorded batch (a table with the fields of `candor:s:ID:batches`) as
-- JSON. Written here rather than by cjson.encode, which would write an
-- empty `ids` as {} and a large `created_ms` in exponent notation.
local function batch_json(b)
  local ids = {}
  for i, cid in ipairs(b.ids) do
    ids[i] = cjson.encode(cid)
  end
  local pid = ''
  if type(b.provider_id) == 'string' then
    pid = ',"provider_id":' .. cjson.encode(b.provider_id)
  end
  return '{"key":' .. cjson.encode(b.key) .. ',"model":' .. cjson.encode(b.model) .. pid
    .. ',"created_ms":' .. string.format('%.0f', b.created_ms) .. ',"ids":[' .. table.concat(ids, ',')
    .. '],"ended":' .. tostring(b.ended == true) .. '}'
end

-- A sweep's meta key and its state (false when there is no such sweep).
local function meta_and_state(id)
  local meta = k(id, 'meta')
  return meta, redis.call('HGET', meta, 'state')
end

-- Counts a failed result by its model and kind of error (the payload is the
-- JobResult as JSON), keeping the first error of each.
local function count_failure(id, payload)
  local ok, r = pcall(cjson.decode, payload)
  if not ok or type(r) ~= 'table' then
    return
  end
  local model = type(r.model) == 'string' and r.model or '?'
  local kind = type(r.error_kind) == 'string' and r.error_kind or ''
  local f = model .. '\t' .. kind
  if redis.call('HINCRBY', k(id, 'failures'), f, 1) == 1 then
    local err = type(r.error) == 'string' and r.error or ''
    redis.call('HSET', k(id, 'failures'), f .. '\tfirst', string.sub(err, 1, 1000))
  end
end

-- candor-core's Status::code.
local status_code = { ok = 0, incomplete = 1, failed = 2, truncated = 3, filtered = 4 }

-- The number of archive part `name`, given it one on its first result.
local function part_number(id, name)
  local n = redis.call('HGET', k(id, 'partids'), name)
  if n then
    return tonumber(n)
  end
  n = redis.call('HINCRBY', k(id, 'meta'), 'nparts', 1)
  redis.call('HSET', k(id, 'partids'), name, n)
  redis.call('HSET', k(id, 'parts'), n, name)
  return n
end

-- True when archive part `name` was condemned as garbage: nothing may be
-- recorded from it, its files are being removed.
local function part_gone(id, name)
  return redis.call('SISMEMBER', k(id, 'gone'), name) == 1
end

-- Records the result of job idx, held in archive part `part`; the caller
-- has checked that it has none.
local function record(id, idx, status, bits, cell, payload, ncls, part)
  redis.call('SETBIT', k(id, 'done'), idx, 1)
  redis.call('BITFIELD', k(id, 'partof'), 'SET', 'u32', '#' .. idx, part_number(id, part))
  redis.call('BITFIELD', k(id, 'outcome'), 'SET', 'u40', '#' .. idx, (status_code[status] + 1) * 4294967296 + bits)
  redis.call('ZREM', k(id, 'leases'), idx)
  redis.call('HDEL', k(id, 'fences'), idx)
  redis.call('HDEL', k(id, 'attempts'), idx)
  redis.call('HDEL', k(id, 'errors'), idx)
  redis.call('HDEL', k(id, 'dying'), idx)
  redis.call('ZREM', k(id, 'retry'), idx)
  local tally = k(id, 'tally')
  redis.call('HINCRBY', tally, cell .. ':' .. status, 1)
  if status == 'ok' then
    for c = 0, ncls - 1 do
      if bit.band(bits, bit.lshift(1, c)) ~= 0 then
        redis.call('HINCRBY', tally, cell .. ':y' .. c, 1)
      end
    end
  end
  if status == 'failed' then
    count_failure(id, payload)
  end
  local meta = k(id, 'meta')
  if status ~= 'ok' then
    redis.call('HINCRBY', meta, status, 1)
  end
  local done = redis.call('HINCRBY', meta, 'done', 1)
  local skipped = tonumber(redis.call('HGET', meta, 'skipped') or '0')
  if done + skipped >= tonumber(redis.call('HGET', meta, 'total')) then
    if redis.call('HGET', meta, 'state') == 'running' then
      redis.call('HSET', meta, 'state', 'done')
    end
    redis.call('HSET', meta, 'finished_ms', now_ms())
    redis.call('LREM', 'candor:active', 0, id)
  end
end
