#!lua name=nousu
--
-- nousu.lua -- the Redis Function library of nousud (loaded by store.c with
-- FUNCTION LOAD REPLACE; Functions are persisted in the RDB/AOF, unlike
-- cached EVAL scripts). Every write of the daemon to a creator's counters goes
-- through nousu_commit, so one commit is atomic: counters, event-id dedup,
-- request ids and their acks land together or not at all.
--
-- Key layout (P = key_prefix, c = creator id; docs/redis-keys.md):
--   P{c}:m        hash   meta + running sums of the recent and baseline windows
--   P{c}:b:<h>    hash   one recent bucket h: E, t0..t8 (counts per type), ia,
--                        se, f/ft (earliest follower snapshot in the bucket)
--   P{c}:u:<h>    hll    unique actors of bucket h
--   P{c}:e        hash   h -> E for the baseline buckets
--   P{c}:ids      zset   64-bit hashes of event ids -> wall ms first seen
--   P:req:<rid>   string the ack given for request rid
--   P:commit:<id> string reply of a recent commit, for its retries (10 min)
--   P:seq         string alert sequence counter
--   P:alerts / P:deadletter   streams
--   P:top / P:top:<niche>     zsets: leaderboards by z
--   P:nichenow    hash   niche -> newest event ts among its creators
--
-- Numbers travel as msgpack (cmsgpack); Lua numbers are doubles, exact for
-- the integers involved (< 2^53).

local NTYPES = 9
-- how long a commit's reply is kept for a retry of that same commit
local COMMIT_TTL_S = 600
local INTERACTION = { [1] = true, [2] = true, [3] = true, [4] = true, [5] = true }

local function S(x)
  return string.format('%.17g', x)
end

local function num(v, d)
  if v == nil or v == false then return d end
  return tonumber(v)
end

local function hgetall(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function floordiv(a, b)
  return math.floor(a / b)
end

----------------------------------------------------------------------------
-- per-creator state, loaded lazily and written back once per commit

local Creator = {}
Creator.__index = Creator

local function creator_load(cfg, c)
  local self = setmetatable({}, Creator)
  self.c = c
  self.base = cfg.prefix .. '{' .. c .. '}'
  self.cfg = cfg
  local m = hgetall(self.base .. ':m')
  self.m = m
  self.is_new = (m.now == nil)
  self.now = num(m.now, 0)
  self.first = num(m.first, 0)
  self.H = num(m.H, nil)
  self.r = {}
  for k = 0, NTYPES - 1 do self.r[k] = num(m['r' .. k], 0) end
  self.rE = num(m.rE, 0)
  self.ria = num(m.ria, 0)
  self.rse = num(m.rse, 0)
  self.hE = num(m.hE, 0)
  self.ef = num(m.ef, -1)
  self.eft = num(m.eft, 0)
  self.buckets = {}     -- h -> fields table (loaded)
  self.bdirty = {}      -- h -> true
  self.bdel = {}        -- h -> true (left the recent window)
  self.edirty = {}      -- h -> E or false (delete)
  self.actors = {}      -- h -> list of actors for PFADD
  self.ids = nil        -- pruned once per commit when ids are used
  return self
end

function Creator:bucket(h)
  local b = self.buckets[h]
  if b == nil then
    b = hgetall(self.base .. ':b:' .. h)
    for k, v in pairs(b) do b[k] = tonumber(v) end
    self.buckets[h] = b
  end
  return b
end

function Creator:hist_e(h)
  local v = self.edirty[h]
  if v ~= nil then return v or 0 end
  return num(redis.call('HGET', self.base .. ':e', h), 0)
end

-- The earliest follower snapshot of the recent window left with its bucket:
-- find the next one among the remaining recent buckets.
function Creator:recompute_early()
  self.ef, self.eft = -1, 0
  local lo = self.H - self.cfg.recent + 1
  for h = lo, self.H do
    local b = self.buckets[h]
    local f, ft
    if b then
      f, ft = b.f, b.ft
    else
      local r = redis.call('HMGET', self.base .. ':b:' .. h, 'f', 'ft')
      f, ft = num(r[1], nil), num(r[2], nil)
    end
    if ft and (self.eft == 0 or ft < self.eft) then self.ef, self.eft = f, ft end
  end
end

-- Move the windows so that they end at bucket newH: buckets leaving the
-- recent window are subtracted from its sums and folded into the baseline;
-- baseline buckets falling off the end are subtracted from hE.
function Creator:roll(newH)
  local R, B = self.cfg.recent, self.cfg.hist
  local oldH = self.H
  if oldH == nil then self.H = newH return end
  if newH <= oldH then return end
  local early_left = false
  for h = oldH - R + 1, math.min(oldH, newH - R) do
    local b = self:bucket(h)
    local e = b.E or 0
    self.rE = self.rE - e
    for k = 0, NTYPES - 1 do self.r[k] = self.r[k] - (b['t' .. k] or 0) end
    self.ria = self.ria - (b.ia or 0)
    self.rse = self.rse - (b.se or 0)
    if b.ft and b.ft == self.eft then early_left = true end
    if e ~= 0 then
      self.hE = self.hE + e
      self.edirty[h] = e
    end
    self.bdel[h] = true
    self.bdirty[h] = nil
  end
  for h = oldH - R - B + 1, math.min(oldH, newH - R - B) do
    local e = self:hist_e(h)
    if e ~= 0 then self.hE = self.hE - e end
    self.edirty[h] = false
  end
  self.H = newH
  if early_left then self:recompute_early() end
end

-- Apply one accepted event. ev = {i, creator, type, ts, n, idh, actor,
-- sponsored, followers, niche}
function Creator:apply(ev)
  local cfg = self.cfg
  local t, ts, n = ev[3], ev[4], ev[5]
  if ts > self.now then self.now = ts end
  if self.first == 0 or ts < self.first then self.first = ts end
  self:roll(floordiv(self.now, cfg.bucket_ms))
  local h = floordiv(ts, cfg.bucket_ms)
  local e = cfg.weight[t + 1] * n
  if h > self.H - cfg.recent then
    local b = self:bucket(h)
    self.bdirty[h] = true
    local tk = 't' .. t
    b[tk] = (b[tk] or 0) + n
    self.r[t] = self.r[t] + n
    if e ~= 0 then
      b.E = (b.E or 0) + e
      self.rE = self.rE + e
      if ev[8] == 1 then
        b.se = (b.se or 0) + e
        self.rse = self.rse + e
      end
    end
    local actor = ev[7]
    if actor and INTERACTION[t] then
      b.ia = (b.ia or 0) + n
      self.ria = self.ria + n
      local list = self.actors[h]
      if not list then list = {} self.actors[h] = list end
      list[#list + 1] = actor
    end
    local fol = ev[9]
    if fol and (b.ft == nil or ts < b.ft) then b.f, b.ft = fol, ts end
    if fol and (self.eft == 0 or ts < self.eft) then self.ef, self.eft = fol, ts end
  elseif h > self.H - cfg.recent - cfg.hist and e ~= 0 then
    self.edirty[h] = self:hist_e(h) + e
    self.hE = self.hE + e
  end
  self:snapshot(ev)
end

-- Latest follower count and niche: the newest ts wins.
function Creator:snapshot(ev)
  local m, ts, fol, niche = self.m, ev[4], ev[9], ev[10]
  if fol then
    if ts >= num(m.folts, 0) then m.fol, m.folts = fol, ts end
    if fol <= self.cfg.micro_max and ts > num(m.below, 0) then m.below = ts end
  end
  if niche and ts >= num(m.nichets, 0) then m.niche, m.nichets = niche, ts end
end

-- true when the event id (its 64-bit hash) was already seen within the
-- dedup horizon; otherwise remembers it.
function Creator:seen(idh)
  local key = self.base .. ':ids'
  local cfg = self.cfg
  if not self.ids then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. S(cfg.wall - cfg.horizon_ms))
    self.ids = true
  end
  return redis.call('ZADD', key, 'NX', S(cfg.wall), idh) == 0
end

function Creator:flush()
  local cfg, base, m = self.cfg, self.base, self.m
  local ttl = cfg.ttl_s
  m.now, m.first, m.H = self.now, self.first, self.H
  m.rE, m.ria, m.rse, m.hE, m.ef, m.eft = self.rE, self.ria, self.rse, self.hE, self.ef, self.eft
  for k = 0, NTYPES - 1 do m['r' .. k] = self.r[k] end
  local args = {}
  for k, v in pairs(m) do
    args[#args + 1] = k
    args[#args + 1] = type(v) == 'number' and S(v) or v
  end
  redis.call('HSET', base .. ':m', unpack(args))
  redis.call('EXPIRE', base .. ':m', ttl)
  for h in pairs(self.bdirty) do
    local b, fa = self.buckets[h], {}
    for k, v in pairs(b) do fa[#fa + 1] = k fa[#fa + 1] = S(v) end
    if #fa > 0 then
      redis.call('HSET', base .. ':b:' .. h, unpack(fa))
      redis.call('EXPIRE', base .. ':b:' .. h, ttl)
    end
  end
  for h, list in pairs(self.actors) do
    if not self.bdel[h] then
      for i = 1, #list, 1000 do
        redis.call('PFADD', base .. ':u:' .. h, unpack(list, i, math.min(i + 999, #list)))
      end
      redis.call('EXPIRE', base .. ':u:' .. h, ttl)
    end
  end
  for h in pairs(self.bdel) do
    redis.call('DEL', base .. ':b:' .. h, base .. ':u:' .. h)
  end
  local eset, edel = {}, {}
  for h, v in pairs(self.edirty) do
    if v then eset[#eset + 1] = h eset[#eset + 1] = S(v) else edel[#edel + 1] = h end
  end
  if #eset > 0 then redis.call('HSET', base .. ':e', unpack(eset)) end
  for i = 1, #edel, 1000 do
    redis.call('HDEL', base .. ':e', unpack(edel, i, math.min(i + 999, #edel)))
  end
  if #eset > 0 or #edel > 0 then redis.call('EXPIRE', base .. ':e', ttl) end
  if self.ids then redis.call('PEXPIRE', base .. ':ids', cfg.horizon_ms + 1000) end
  if m.niche then
    local nk = cfg.prefix .. 'nichenow'
    if num(redis.call('HGET', nk, m.niche), 0) < self.now then
      redis.call('HSET', nk, m.niche, S(self.now))
    end
  end
end

-- What the daemon needs to evaluate the rules (detect.c).
function Creator:summary()
  local m = self.m
  local counts = {}
  for k = 0, NTYPES - 1 do counts[k + 1] = self.r[k] end
  return { self.c, self.now, self.first, num(m.fol, -1), num(m.folts, 0), self.ef, self.eft,
           num(m.below, 0), num(m.gbase, 0), self.rE, self.hE, counts, self.ria, self.rse,
           num(m.cd0, 0), num(m.cd1, 0), num(m.cd2, 0), m.niche or false, m.bd or false }
end

----------------------------------------------------------------------------
-- nousu_commit: apply every unit (a PULL frame or an acknowledged request)
-- read in one loop iteration.
--
-- ARGV[1] = msgpack [cfg, units]; ARGV[2] = commit id (unique per batch,
--   the same on every retry of that batch)
--   cfg   = [prefix, wall_ms, bucket_ms, recent, hist, lateness_ms,
--            horizon_ms, request_ttl_s, micro_max, ttl_s, weights[9]]
--   unit  = [rid or nil, total, pre_errors [[i, reason]...], events]
--   event = [i, creator, type, ts, n, idh, actor, sponsored, followers, niche]
-- Returns msgpack [units_out, creators]
--   unit_out = [status, ok, dup, too_old_indexes, ack or nil]
--     status 0 applied, 1 request already committed (ack replayed)
--   creators = summaries of every creator touched (Creator:summary)

local function parse_cfg(a)
  return { prefix = a[1], wall = a[2], bucket_ms = a[3], recent = a[4], hist = a[5],
           lateness_ms = a[6], horizon_ms = a[7], request_ttl = a[8], micro_max = a[9],
           ttl_s = a[10], weight = a[11] }
end

local function make_ack(unit, ok, dup, too_old)
  local errors = {}
  for _, e in ipairs(unit[3]) do errors[#errors + 1] = { i = e[1], reason = e[2] } end
  for _, i in ipairs(too_old) do errors[#errors + 1] = { i = i, reason = 'too_old' } end
  table.sort(errors, function(a, b) return a.i < b.i end)
  return cmsgpack.pack({ ok = ok, dup = dup, rejected = unit[2] - ok - dup, errors = errors })
end

local function apply_unit(cfg, unit, creators, order)
  local ok, dup, too_old = 0, 0, {}
  for _, ev in ipairs(unit[4]) do
    local c = ev[2]
    local st = creators[c]
    if not st then
      st = creator_load(cfg, c)
      creators[c] = st
      order[#order + 1] = st
    end
    if st.now ~= 0 and ev[4] < st.now - cfg.lateness_ms then
      too_old[#too_old + 1] = ev[1]
    elseif ev[6] and st:seen(ev[6]) then
      dup = dup + 1
    else
      st:apply(ev)
      ok = ok + 1
    end
  end
  return ok, dup, too_old
end

local function commit(keys, args)
  local req = cmsgpack.unpack(args[1])
  local cfg = parse_cfg(req[1])
  -- A retried commit (its reply was lost) is answered, not applied again.
  local ckey = args[2] and (cfg.prefix .. 'commit:' .. args[2])
  if ckey then
    local done = redis.call('GET', ckey)
    if done then return done end
  end
  local creators, order, out = {}, {}, {}
  for _, unit in ipairs(req[2]) do
    local rid = unit[1]
    local rkey = rid and (cfg.prefix .. 'req:' .. rid)
    local prev = rkey and redis.call('GET', rkey)
    if prev then
      out[#out + 1] = { 1, 0, 0, {}, prev }
    else
      local ok, dup, too_old = apply_unit(cfg, unit, creators, order)
      local ack = false
      if rkey then
        ack = make_ack(unit, ok, dup, too_old)
        redis.call('SET', rkey, ack, 'EX', cfg.request_ttl)
      end
      out[#out + 1] = { 0, ok, dup, too_old, ack }
    end
  end
  local summaries = {}
  for _, st in ipairs(order) do
    st:flush()
    summaries[#summaries + 1] = st:summary()
  end
  local reply = cmsgpack.pack({ out, summaries })
  if ckey then redis.call('SET', ckey, reply, 'EX', COMMIT_TTL_S) end
  return reply
end

----------------------------------------------------------------------------
-- nousu_alert: cooldown check, sequence number, stream append -- atomically,
-- so that several daemons sharing one Redis agree on cooldowns and seq.
-- ARGV[1] = msgpack [prefix, creator, kind_index, kind, ts, cooldown_ms,
--                    maxlen, topic, msg_head, msg_tail, grad_base]
-- The published message is msg_head .. msgpack(seq) .. msg_tail.
-- Returns msgpack [seq, msg] or [0] when a cooldown holds.

local function next_seq(prefix)
  local seq = redis.call('INCR', prefix .. 'seq')
  -- The stream ids are <seq>-0: never go below what the stream already has
  -- (a lost counter with a surviving stream).
  local last = redis.call('XREVRANGE', prefix .. 'alerts', '+', '-', 'COUNT', 1)
  if last[1] then
    local top = tonumber(string.match(last[1][1], '^(%d+)'))
    if top and top >= seq then
      seq = top + 1
      redis.call('SET', prefix .. 'seq', S(seq))
    end
  end
  return seq
end

local function alert(keys, args)
  local a = cmsgpack.unpack(args[1])
  local prefix, c, k, kind, ts, cooldown = a[1], a[2], a[3], a[4], a[5], a[6]
  local mkey = prefix .. '{' .. c .. '}:m'
  local cd = num(redis.call('HGET', mkey, 'cd' .. k), nil)
  if cd and math.abs(ts - cd) < cooldown then return cmsgpack.pack({ 0 }) end
  redis.call('HSET', mkey, 'cd' .. k, S(ts), 'lak', kind, 'lat', S(ts))
  if a[11] then redis.call('HSET', mkey, 'gbase', S(a[11])) end
  local seq = next_seq(prefix)
  local msg = a[9] .. cmsgpack.pack(seq) .. a[10]
  redis.call('XADD', prefix .. 'alerts', 'MAXLEN', '~', a[7], S(seq) .. '-0',
             'seq', S(seq), 'topic', a[8], 'msg', msg)
  return cmsgpack.pack({ seq, msg })
end

----------------------------------------------------------------------------
-- nousu_board: leaderboard updates decided by detect.c.
-- ARGV[1] = msgpack [prefix, [[creator, niche or false, add(1)/drop(0), z, velocity], ...]]

local function board_key(prefix, niche)
  return prefix .. 'top:' .. niche
end

local function board(keys, args)
  local a = cmsgpack.unpack(args[1])
  local prefix = a[1]
  for _, u in ipairs(a[2]) do
    local c, niche, add, z, vel = u[1], u[2] or '_', u[3], u[4], u[5]
    local mkey = prefix .. '{' .. c .. '}:m'
    local old = redis.call('HGET', mkey, 'bd')
    if old and old ~= niche then redis.call('ZREM', board_key(prefix, old), c) end
    if add == 1 then
      redis.call('ZADD', board_key(prefix, niche), S(z), c)
      redis.call('ZADD', prefix .. 'top', S(z), c)
      redis.call('HSET', mkey, 'bd', niche, 'bz', S(z), 'bv', S(vel))
    elseif old then
      redis.call('ZREM', board_key(prefix, old), c)
      redis.call('ZREM', prefix .. 'top', c)
      redis.call('HDEL', mkey, 'bd', 'bz', 'bv')
    end
  end
  return 1
end

-- nousu_top: ARGV = [prefix, niche or '', n, stale_ms]. Members with no
-- event for stale_ms of event time while their niche moved on are dropped.
-- Returns msgpack [[creator, niche, followers, z, velocity], ...], best first.
local function top(keys, args)
  local prefix, niche, n, stale = args[1], args[2], tonumber(args[3]), tonumber(args[4])
  local key = niche ~= '' and board_key(prefix, niche) or (prefix .. 'top')
  local members = redis.call('ZREVRANGE', key, 0, -1)
  local res = {}
  for _, c in ipairs(members) do
    if #res >= n then break end
    local r = redis.call('HMGET', prefix .. '{' .. c .. '}:m', 'now', 'niche', 'fol', 'bz', 'bv', 'bd')
    local nnow = r[6] and num(redis.call('HGET', prefix .. 'nichenow', r[6]), 0) or 0
    if r[1] == false or r[6] == false or num(r[1], 0) < nnow - stale then
      redis.call('ZREM', key, c)
      redis.call('ZREM', prefix .. 'top', c)
      if r[6] then redis.call('ZREM', board_key(prefix, r[6]), c) end
    else
      res[#res + 1] = { c, r[2] or false, num(r[3], -1), num(r[4], 0), num(r[5], 0) }
    end
  end
  return cmsgpack.pack(res)
end

----------------------------------------------------------------------------
-- nousu_creator: one creator's state for the control query, plus its unique
-- engagers over the recent window. ARGV = [prefix, recent, creator...]
-- Returns msgpack [summary or false, unique, last_alert_kind, last_alert_ts]
-- per creator.

local function uniques(base, H, recent)
  if not H then return 0 end
  local ks = {}
  for h = H - recent + 1, H do ks[#ks + 1] = base .. ':u:' .. h end
  return redis.call('PFCOUNT', unpack(ks))
end

local function creator(keys, args)
  local prefix, recent = args[1], tonumber(args[2])
  local out = {}
  for i = 3, #args do
    local cfg = { prefix = prefix }
    local st = creator_load(cfg, args[i])
    if st.is_new then
      out[#out + 1] = { false, 0, false, 0 }
    else
      out[#out + 1] = { st:summary(), uniques(st.base, st.H, recent),
                        st.m.lak or false, num(st.m.lat, 0) }
    end
  end
  return cmsgpack.pack(out)
end

redis.register_function{ function_name = 'nousu_commit', callback = commit,
                         flags = { 'allow-cross-slot-keys' } }
redis.register_function{ function_name = 'nousu_alert', callback = alert,
                         flags = { 'allow-cross-slot-keys' } }
redis.register_function{ function_name = 'nousu_board', callback = board,
                         flags = { 'allow-cross-slot-keys' } }
redis.register_function{ function_name = 'nousu_top', callback = top,
                         flags = { 'allow-cross-slot-keys' } }
redis.register_function{ function_name = 'nousu_creator', callback = creator,
                         flags = { 'allow-cross-slot-keys' } }
