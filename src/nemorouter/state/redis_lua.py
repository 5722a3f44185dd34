"""Lua for the Redis windows: the same sliding log as memory.py, atomic inside Redis.

Per subject two keys: KEYS[2i-1] a sorted set (member = reservation id, score = time) and
KEYS[2i] a hash (`<id>:r`, `<id>:t` per entry; `_r`, `_t` running totals). Time is the
server's TIME so every gateway process agrees; ARGV `now` overrides it (tests only).
Times are integer microseconds (exact in Lua's doubles: ~1.8e15 < 2^53), as in memory.py.
Both keys get a TTL on every write, past the moment every entry has left the window, so
an expired pair is exactly an empty window. The hash's TTL is the shorter (window + 1 s,
the log's window + 2 s): a log without its hash only holds entries that count 0, while a
hash without its log would keep totals that nothing subtracts any more.
Times are passed as '%.0f' strings: Lua prints numbers with 14 digits, too few for them.
"""

from __future__ import annotations

_COMMON = """
local window = tonumber(ARGV[1])
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[2])
end
local cutoff = now - window
local function fmt(x) return string.format('%.0f', x) end
local cutoff_s = fmt(cutoff)

local function prune(z, h)
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff_s)
  if #old == 0 then return end
  local fr, ft = 0, 0
  for i = 1, #old do
    local v = redis.call('HMGET', h, old[i] .. ':r', old[i] .. ':t')
    fr = fr + (tonumber(v[1]) or 0)
    ft = ft + (tonumber(v[2]) or 0)
    redis.call('HDEL', h, old[i] .. ':r', old[i] .. ':t')
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff_s)
  -- only when non-zero: HINCRBY would create a missing hash without a TTL
  if fr ~= 0 then redis.call('HINCRBY', h, '_r', -fr) end
  if ft ~= 0 then redis.call('HINCRBY', h, '_t', -ft) end
end

"""

# ARGV: window_us, now_us, requests, tokens, id, ttl_ms, then rpm, tpm per subject (-1 = none).
# Returns {status, subject index, retry_after, used requests, used tokens, reset, now, 'r'|'t'}:
# status 1 reserved, 0 refused, 2 never fits; the usage is the first subject's; the last
# element names the dimension that refused.
ACQUIRE = (
    _COMMON
    + """
local nreq, ntok = tonumber(ARGV[3]), tonumber(ARGV[4])
local id, ttl = ARGV[5], tonumber(ARGV[6])
local n = #KEYS / 2
local rpms, tpms = {}, {}
for i = 1, n do
  rpms[i], tpms[i] = tonumber(ARGV[5 + 2 * i]), tonumber(ARGV[6 + 2 * i])
  if (rpms[i] >= 0 and nreq > rpms[i]) or (tpms[i] >= 0 and ntok > tpms[i]) then
    return {2, i, '0', 0, 0, '0', fmt(now), 'r'}
  end
end

-- microseconds until `excess` units of field `f` have left the log of z/h
local function wait(z, h, f, excess)
  local freed, start = 0, 0
  while true do
    local page = redis.call('ZRANGE', z, start, start + 99, 'WITHSCORES')
    if #page == 0 then return 0 end
    for j = 1, #page, 2 do
      freed = freed + (tonumber(redis.call('HGET', h, page[j] .. f)) or 0)
      if freed >= excess then return tonumber(page[j + 1]) - cutoff end
    end
    start = start + 100
  end
end

local worst, blocker, dim, used_r, used_t = 0, 0, 'r', {}, {}
for i = 1, n do
  local z, h = KEYS[2 * i - 1], KEYS[2 * i]
  prune(z, h)
  local u = redis.call('HMGET', h, '_r', '_t')
  used_r[i], used_t[i] = tonumber(u[1]) or 0, tonumber(u[2]) or 0
  if rpms[i] >= 0 and used_r[i] + nreq > rpms[i] then
    local w = wait(z, h, ':r', used_r[i] + nreq - rpms[i])
    if blocker == 0 or w > worst then worst, blocker, dim = w, i, 'r' end
  end
  if tpms[i] >= 0 and used_t[i] + ntok > tpms[i] then
    local w = wait(z, h, ':t', used_t[i] + ntok - tpms[i])
    if blocker == 0 or w > worst then worst, blocker, dim = w, i, 't' end
  end
end

local status = 0
if blocker == 0 then
  status = 1
  local score = fmt(now)
  for i = 1, n do
    local z, h = KEYS[2 * i - 1], KEYS[2 * i]
    redis.call('ZADD', z, score, id)
    -- the totals were read (after pruning) above, in this same atomic script
    redis.call('HSET', h, id .. ':r', nreq, id .. ':t', ntok,
      '_r', fmt(used_r[i] + nreq), '_t', fmt(used_t[i] + ntok))
    redis.call('PEXPIRE', z, ttl + 1000)
    redis.call('PEXPIRE', h, ttl)
  end
  used_r[1], used_t[1] = used_r[1] + nreq, used_t[1] + ntok
end
local reset = 0
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #oldest > 0 then reset = tonumber(oldest[2]) - cutoff end
return {status, blocker, fmt(worst), used_r[1], used_t[1], fmt(reset), fmt(now), dim}
"""
)

# ARGV: window_us, now_us, id, requests, tokens, ttl_ms. Sets the entry's counts where it is
# still in the window and corrects the totals by the difference.
ADJUST = (
    _COMMON
    + """
local id, nreq, ntok, ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
for i = 1, #KEYS / 2 do
  local z, h = KEYS[2 * i - 1], KEYS[2 * i]
  prune(z, h)
  local v = redis.call('HMGET', h, id .. ':r', id .. ':t')
  if v[1] then
    redis.call('HSET', h, id .. ':r', nreq, id .. ':t', ntok)
    redis.call('HINCRBY', h, '_r', nreq - tonumber(v[1]))
    redis.call('HINCRBY', h, '_t', ntok - tonumber(v[2]))
    redis.call('PEXPIRE', z, ttl + 1000)
    redis.call('PEXPIRE', h, ttl)
  end
end
return 1
"""
)
