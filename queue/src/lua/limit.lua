-- ARGV: key, op, rpm, input tpm, output tpm (0: no limit), then per op:
--   take:   requests, input tokens, output tokens -> 0 if granted, else ms to wait
--   settle: deltas of requests, input tokens, output tokens (may be negative) -> 0
--   cool:   ms to hold off -> 0
-- A generic cell rate algorithm per limit, no burst, at 98% of the limit:
-- each grant moves a theoretical arrival time on by cost × (60 s / limit);
-- the next grant waits until that time has come. The clock is Redis's, so
-- every worker of the fleet shares one clock and one budget.
local h = 'candor:rl:' .. ARGV[1]
local op = ARGV[2]
local lim = { tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]) }
local now = now_ms()
local function interval(l) return 60000 / (l * 0.98) end
if op == 'cool' then
  local until_ms = now + tonumber(ARGV[6])
  local cur = tonumber(redis.call('HGET', h, 'cool') or '0')
  if until_ms > cur then redis.call('HSET', h, 'cool', until_ms) end
  redis.call('PEXPIRE', h, 3600000)
  return 0
end
local tat = {}
for d = 1, 3 do tat[d] = tonumber(redis.call('HGET', h, 't' .. d) or '0') end
if op == 'settle' then
  for d = 1, 3 do
    if lim[d] > 0 then
      redis.call('HSET', h, 't' .. d, tat[d] + tonumber(ARGV[5 + d]) * interval(lim[d]))
    end
  end
  return 0
end
local wait = 0
local cool = tonumber(redis.call('HGET', h, 'cool') or '0')
if cool > now then wait = cool - now end
for d = 1, 3 do
  if lim[d] > 0 and tat[d] > now and tat[d] - now > wait then wait = tat[d] - now end
end
if wait > 0 then return math.ceil(wait) end
for d = 1, 3 do
  if lim[d] > 0 then
    redis.call('HSET', h, 't' .. d, math.max(tat[d], now) + tonumber(ARGV[5 + d]) * interval(lim[d]))
  end
end
redis.call('PEXPIRE', h, 3600000)
return 0
