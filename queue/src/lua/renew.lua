-- ARGV: lease ttl (ms), then id, index, fence triples. Extends each lease still
-- held under that fence in a running sweep, or in one whose budget ran out
-- (jobs already running finish and are recorded, as in a local run).
-- Returns 1 (renewed) or 0 (lost) per triple.
local ttl = tonumber(ARGV[1])
local now = now_ms()
local out = {}
for i = 2, #ARGV, 3 do
  local id, idx, fence = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local ok = 0
  local state = redis.call('HGET', k(id, 'meta'), 'state')
  if (state == 'running' or state == 'budget_exhausted') and redis.call('HGET', k(id, 'fences'), idx) == fence then
    redis.call('ZADD', k(id, 'leases'), 'XX', now + ttl, idx)
    ok = 1
  end
  out[#out + 1] = ok
end
return out
