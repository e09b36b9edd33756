-- ARGV: slots, lease ttl (ms). Hands out up to `slots` jobs, round-robin over
-- the running sweeps: each sweep in turn gets an even share of what is left.
-- Within a sweep: expired leases first, then retries that are due, then new
-- indices from the cursor. A job whose lease expired on its last attempt goes
-- to the sweep's dying list for the coordinator to dead-letter.
-- Returns a flat array: id, index, fence, attempt, ...
-- Positions the cursor may pass over (skipping stopped cells) in one call.
local MAX_SCAN = 10000

-- Early stopping: whether job idx (seed s) of a sweep should start. The
-- first job of seed s of a cell decides, once, from the cell's counts so
-- far: with n outputs, y of them compliant, it looks up entry n of the
-- sweep's decision table (`early`, `tlen` bytes, written at submit from
-- candor-core's early::keeps_going, so it decides as the local runner
-- does): unless lo <= y <= hi there, or past the table's end, seed s and
-- later seeds of that cell are skipped. Checked against Rust by
-- queue/tests/parity.rs.
local function early_admit(id, meta, idx, s, seeds, tlen)
  if s < tonumber(redis.call('HGET', meta, 'min_seeds') or '1') then
    return true
  end
  local conds = tonumber(redis.call('HGET', meta, 'conditions'))
  local queries = tonumber(redis.call('HGET', meta, 'queries'))
  local r = math.floor(idx / seeds)
  local cell = math.floor(r / (queries * conds)) * conds + (r % conds)
  local cut = redis.call('HGET', k(id, 'cutoff'), cell)
  if cut and s >= tonumber(cut) then
    return false
  end
  local decided = tonumber(redis.call('HGET', k(id, 'decided'), cell) or '-1')
  if s <= decided then
    return true
  end
  redis.call('HSET', k(id, 'decided'), cell, s)
  local tally = k(id, 'tally')
  local n = tonumber(redis.call('HGET', tally, cell .. ':ok') or '0')
  local y = tonumber(redis.call('HGET', tally, cell .. ':y0') or '0')
  if (n + 1) * 8 <= tlen then
    local e = redis.call('GETRANGE', k(id, 'early'), string.format('%.0f', n * 8), string.format('%.0f', n * 8 + 7))
    local b1, b2, b3, b4, b5, b6, b7, b8 = string.byte(e, 1, 8)
    local lo = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    local hi = ((b5 * 256 + b6) * 256 + b7) * 256 + b8
    if lo <= y and y <= hi then
      return true
    end
  end
  redis.call('HSET', k(id, 'cutoff'), cell, s)
  return false
end

local slots = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local now = now_ms()
local out = {}
local n = redis.call('LLEN', 'candor:active')
local tried = 0
while slots > 0 and tried < n do
  local id = redis.call('LMOVE', 'candor:active', 'candor:active', 'LEFT', 'RIGHT')
  if not id then break end
  tried = tried + 1
  local meta = k(id, 'meta')
  local state = redis.call('HGET', meta, 'state')
  if state ~= 'running' then
    redis.call('LREM', 'candor:active', 0, id)
  else
    local share = math.ceil(slots / (n - tried + 1))
    -- A budget: a copy of candor-core's budget::decide (the rule, and what
    -- differs in what it is fed, are documented there; queue/tests/parity.rs
    -- checks the two agree), kept here because Redis must decide atomically
    -- with the lease. Jobs start only while spent plus the jobs in flight,
    -- each at a unit cost, stays under the budget: the unit is the dearest
    -- job's cost so far, or the sweep's reserve (a batched sweep's bound of
    -- a job's cost, written at submit) if that is more.
    -- The rule is asked only when a job waits to start (as the local runner
    -- asks it): an idle worker's call while the last jobs run must not end a
    -- sweep whose every job has started.
    local budget = tonumber(redis.call('HGET', meta, 'budget') or '0')
    local waiting = budget > 0 and (
      tonumber(redis.call('GET', k(id, 'cursor')) or '0') < tonumber(redis.call('HGET', meta, 'total'))
      or redis.call('ZCOUNT', k(id, 'retry'), '-inf', now) > 0
      or redis.call('ZCOUNT', k(id, 'leases'), '-inf', now) > 0)
    if waiting then
      local spent = tonumber(redis.call('HGET', meta, 'spent') or '0')
      local done = tonumber(redis.call('HGET', meta, 'done') or '0')
      local reserve = tonumber(redis.call('HGET', meta, 'reserve') or '0')
      local dearest = tonumber(redis.call('HGET', meta, 'cost_max') or '0')
      local unit = math.max(dearest, reserve)
      local flight = redis.call('ZCARD', k(id, 'leases'))
      if done == 0 and reserve == 0 then
        -- No cost known yet and none reserved: one job at a time until one
        -- has finished (a recorded result here; locally a job held by fail
        -- fast counts too).
        share = math.min(share, math.max(0, 1 - flight))
      elseif spent + (flight + 1) * unit >= budget and flight > 0 and reserve > dearest then
        -- What does not fit is a reservation, not a known cost: wait for
        -- the jobs in flight to finish and show what they cost.
        share = 0
      elseif spent + (flight + 1) * unit >= budget then
        share = 0
        redis.call('HSET', meta, 'state', 'budget_exhausted', 'finished_ms', now)
        redis.call('LREM', 'candor:active', 0, id)
      else
        -- Lease at most half of what the rest of the budget buys at the
        -- unit cost, less what is in flight, but always one: a batch
        -- cannot overshoot much while costs are poorly known.
        share = math.min(share, math.max(1, math.floor((budget - spent) / math.max(unit, 1) / 2) - flight))
      end
    end
    local got = 0
    local fence = redis.call('INCR', 'candor:fence')
    local max_attempts = tonumber(redis.call('HGET', meta, 'max_attempts'))
    local leases, fences, attempts = k(id, 'leases'), k(id, 'fences'), k(id, 'attempts')
    local function take(idx)
      local a = redis.call('HINCRBY', attempts, idx, 1)
      redis.call('ZADD', leases, now + ttl, idx)
      redis.call('HSET', fences, idx, fence)
      out[#out + 1] = id
      out[#out + 1] = tostring(idx)
      out[#out + 1] = tostring(fence)
      out[#out + 1] = tostring(a)
      got = got + 1
    end
    local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, share)
    for _, idx in ipairs(expired) do
      redis.call('HINCRBY', meta, 'lease_expiries', 1)
      local a = tonumber(redis.call('HGET', attempts, idx) or '0')
      if a >= max_attempts then
        redis.call('ZREM', leases, idx)
        redis.call('HDEL', fences, idx)
        redis.call('HSET', k(id, 'dying'), idx, 'its lease expired on each of ' .. a .. ' attempts')
        redis.call('SADD', 'candor:dying', id)
      else
        take(idx)
      end
    end
    if got < share then
      local due = redis.call('ZRANGEBYSCORE', k(id, 'retry'), '-inf', now, 'LIMIT', 0, share - got)
      for _, idx in ipairs(due) do
        redis.call('ZREM', k(id, 'retry'), idx)
        take(idx)
      end
    end
    if got < share then
      -- New jobs, seed by seed: position p is job (p mod R) * S + floor(p / R),
      -- R = total / S. With early stopping, a cell's later seeds are skipped
      -- once its compliance interval is narrower than the target.
      local total = tonumber(redis.call('HGET', meta, 'total'))
      local seeds = tonumber(redis.call('HGET', meta, 'seeds') or '1')
      local round = total / seeds
      local target = tonumber(redis.call('HGET', meta, 'target_width') or '0')
      -- A sweep submitted before decision tables has none: it runs every seed.
      local tlen = target > 0 and redis.call('STRLEN', k(id, 'early')) or 0
      local cur = tonumber(redis.call('GET', k(id, 'cursor')) or '0')
      local skipped, scanned = 0, 0
      while got < share and cur < total and scanned < MAX_SCAN do
        local s = math.floor(cur / round)
        local idx = (cur % round) * seeds + s
        cur = cur + 1
        scanned = scanned + 1
        if tlen > 0 and not early_admit(id, meta, idx, s, seeds, tlen) then
          skipped = skipped + 1
        else
          take(string.format('%.0f', idx))
        end
      end
      redis.call('SET', k(id, 'cursor'), string.format('%.0f', cur))
      if skipped > 0 then
        local sk = redis.call('HINCRBY', meta, 'skipped', skipped)
        local done = tonumber(redis.call('HGET', meta, 'done') or '0')
        if done + sk >= total and redis.call('HGET', meta, 'state') == 'running' then
          redis.call('HSET', meta, 'state', 'done', 'finished_ms', now)
          redis.call('LREM', 'candor:active', 0, id)
        end
      end
    end
    if got > 0 then
      redis.call('HINCRBY', meta, 'leased', got)
    end
    slots = slots - got
  end
end
return out
