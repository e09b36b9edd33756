-- ARGV: id, the archive part holding the results, then groups of 10: index,
-- fence, status, classifier bits, cell, dead (0/1), error, result (JSON, needed
-- only when failed), cache hits, cost (micro-USD). Fence "0" skips the fence check (the coordinator
-- dead-lettering a job nobody holds). Returns per group: 1 recorded, 2 the job
-- already had a result, 0 refused: the lease is no longer held under that fence,
-- or the part was condemned as garbage.
local id = ARGV[1]
local meta = k(id, 'meta')
local total = redis.call('HGET', meta, 'total')
if not total then
  return redis.error_reply('NOSWEEP no such sweep')
end
local ncls = tonumber(redis.call('HGET', meta, 'classifiers'))
local part = ARGV[2]
local gone = part_gone(id, part)
local out = {}
for i = 3, #ARGV, 10 do
  local idx, fence = ARGV[i], ARGV[i + 1]
  if gone then
    out[#out + 1] = 0
  elseif redis.call('GETBIT', k(id, 'done'), idx) == 1 then
    out[#out + 1] = 2
  elseif fence ~= '0' and redis.call('HGET', k(id, 'fences'), idx) ~= fence then
    out[#out + 1] = 0
  else
    record(id, idx, ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4], ARGV[i + 7], ncls, part)
    if ARGV[i + 8] ~= '0' then
      redis.call('HINCRBY', meta, 'cache_hits', tonumber(ARGV[i + 8]))
    end
    if ARGV[i + 9] ~= '0' then
      redis.call('HINCRBY', meta, 'spent', tonumber(ARGV[i + 9]))
      if tonumber(ARGV[i + 9]) > tonumber(redis.call('HGET', meta, 'cost_max') or '0') then
        redis.call('HSET', meta, 'cost_max', ARGV[i + 9])
      end
      redis.call('HINCRBY', k(id, 'tally'), ARGV[i + 4] .. ':cost', tonumber(ARGV[i + 9]))
    end
    if ARGV[i + 5] == '1' then
      redis.call('HSET', k(id, 'dead'), idx, ARGV[i + 6])
      redis.call('HINCRBY', meta, 'dead', 1)
    end
    out[#out + 1] = 1
  end
end
return out
