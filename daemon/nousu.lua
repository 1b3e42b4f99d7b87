#!lua name=nousu
--
-- nousu.lua -- the Redis Function library of nousud (loaded by store.c with
-- FUNCTION LOAD REPLACE; Functions are persisted in the RDB/AOF, unlike
-- cached EVAL scripts). Every write of the daemon to a creator's counters goes
-- through nousu_commit, so one commit is atomic: counters, event-id dedup,
-- request ids and their acks land together or not at all.
--
-- Key layout (P = key_prefix, c = creator id; docs/redis-keys.md):
--   P{c}          string the creator's state, one msgpack map (see STATE):
--                        snapshots, running sums of the recent window and the
--                        baseline, cooldowns, leaderboard
--   P{c}:b        hash   h -> one recent bucket, a msgpack array (BUCKET)
--   P{c}:u:<h>    hll    unique actors of bucket h
--   P{c}:e        hash   h -> E for the baseline buckets
--   P:ids:<slice>  string the generations of a slice's id sets (see Dedup)
--   P:ids:<slice>:<g>:<b> set  event ids remembered for dedup (64-bit hashes
--                        as decimals: an intset), by 60 s slice of wall clock
--   P:ids:chain   string the last commit and where its chain began (see Dedup)
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

-- STATE: one msgpack map per creator, read and written whole, which is far
-- cheaper in Redis CPU and memory than a hash of fields and a key per bucket:
--   now first H fol folts below gbase niche nichets ef eft rE r[9] ria rse hE
--   cd[3] (last alert ts per kind) lak lat (last alert) bd bz bv (board) bxp
--   cur (the bucket of H, where live events land)
-- BUCKET: { E, t0..t8, ia, se, f, ft } (B_*). Only the current one rides in
-- the state; the older recent ones are kept apart in P{c}:b, so that a commit
-- reads and writes only the buckets its events touch (a creator active all
-- day has 25 of them).
local B_E, B_T0, B_IA, B_SE, B_F, B_FT = 1, 2, 11, 12, 13, 14

local function new_bucket()
  return { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0 }
end

local function state_key(prefix, c)
  return prefix .. '{' .. c .. '}'
end

local function state_get(prefix, c)
  local raw = redis.call('GET', state_key(prefix, c))
  if not raw then return nil end
  return cmsgpack.unpack(raw)
end

-- Keep the key's TTL: the commit sets it, alerts and boards only edit.
local function state_put_keepttl(prefix, c, st)
  redis.call('SET', state_key(prefix, c), cmsgpack.pack(st), 'KEEPTTL')
end

local function floordiv(a, b)
  return math.floor(a / b)
end

----------------------------------------------------------------------------
-- per-creator state, loaded lazily and written back once per commit

local DAY_MS = 86400 * 1000
local TTL_REFRESH_MS = 3600 * 1000

local Creator = {}
Creator.__index = Creator

local function new_state()
  return { now = 0, first = 0, fol = -1, folts = 0, below = 0, gbase = 0, nichets = 0,
           ef = -1, eft = 0, rE = 0, r = { 0, 0, 0, 0, 0, 0, 0, 0, 0 }, ria = 0, rse = 0,
           hE = 0, cd = { 0, 0, 0 } }
end

-- A commit touches thousands of creators, most of them for one event in
-- their current bucket: every table made per creator costs ~0.3 us (with its
-- garbage collection). So the bookkeeping tables start as the shared EMPTY,
-- read-only, and are made on their first write (Creator:w).
-- (sealed on first use: a library's load runs without setmetatable)
local EMPTY, sealed = {}, false

local function creator_load(cfg, c)
  if not sealed then
    setmetatable(EMPTY, { __newindex = function() error('nousu: write to EMPTY') end })
    sealed = true
  end
  local base = state_key(cfg.prefix, c)
  local raw = redis.call('GET', base)
  local s = raw and cmsgpack.unpack(raw)
  -- one constructor: the table is sized once, not grown field by field
  return setmetatable({
    c = c, base = base, cfg = cfg, is_new = not s, s = s or new_state(),
    bk = EMPTY,          -- h -> bucket, loaded (or created) by this commit
    bnew = EMPTY,        -- h -> true: bucket created by this commit
    bdirty = EMPTY,      -- h -> true: to write back
    bdel = EMPTY,        -- h -> true (left the recent window)
    edirty = EMPTY,      -- h -> E or false (delete) for the baseline hash
    actors = EMPTY,      -- h -> actors waiting for PFADD
    run_actors = EMPTY,  -- h -> lists of actors of runs, waiting for PFADD
    hll = EMPTY,         -- h -> true: PFADD done by this commit
    checkpoints = EMPTY,
    watching = false,
    pcd = EMPTY,         -- kind -> ts of a checkpoint expected to fire it
    pgbase = false,      -- see Creator:gbase
  }, Creator)
end

-- The bookkeeping table name, writable.
function Creator:w(name)
  local t = self[name]
  if t == EMPTY then
    t = {}
    self[name] = t
  end
  return t
end

-- Load the buckets hs (those not loaded yet) in one HMGET.
function Creator:load_buckets(hs)
  local want = {}
  for _, h in ipairs(hs) do
    if self.bk[h] == nil and not self.bdel[h] then want[#want + 1] = h end
  end
  if #want == 0 then return end
  local raw = redis.call('HMGET', self.base .. ':b', unpack(want))
  local bk = self:w('bk')
  for i, h in ipairs(want) do
    bk[h] = raw[i] and cmsgpack.unpack(raw[i]) or false
  end
end

-- The bucket h for writing (created when it has none yet).
function Creator:bucket(h)
  local s = self.s
  if h == s.H then
    if not s.cur then
      s.cur = new_bucket()
      self:w('bnew')[h] = true
    end
    return s.cur
  end
  self:load_buckets({ h })
  local b = self.bk[h]
  if not b then
    b = new_bucket()
    self:w('bk')[h] = b
    self:w('bnew')[h] = true
  end
  self:w('bdirty')[h] = true
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
  local s = self.s
  s.ef, s.eft = -1, 0
  local flat = redis.call('HGETALL', self.base .. ':b')
  local bk = self:w('bk')
  for i = 1, #flat, 2 do
    local h = tonumber(flat[i])
    if bk[h] == nil then bk[h] = cmsgpack.unpack(flat[i + 1]) end
  end
  bk[s.H] = s.cur or false -- the current bucket, for the scan below
  for h, b in pairs(bk) do
    local ft = b and not self.bdel[h] and b[B_FT] or 0
    if ft > 0 and (s.eft == 0 or ft < s.eft) then s.ef, s.eft = b[B_F], ft end
  end
  bk[s.H] = nil
end

-- Move the windows so that they end at bucket newH: buckets leaving the
-- recent window are subtracted from its sums and folded into the baseline;
-- baseline buckets falling off the end are subtracted from hE.
function Creator:roll(newH)
  local s, R, B = self.s, self.cfg.recent, self.cfg.hist
  local oldH = s.H
  if oldH == nil then s.H = newH return end
  if newH <= oldH then return end
  -- the current bucket becomes an older one, kept in P{c}:b
  if s.cur then
    self:w('bk')[oldH], self:w('bdirty')[oldH], s.cur = s.cur, true, nil
  end
  local early_left = false
  local leaving = {}
  for h = oldH - R + 1, math.min(oldH, newH - R) do leaving[#leaving + 1] = h end
  self:load_buckets(leaving)
  for _, h in ipairs(leaving) do
    local b = self.bk[h]
    if b then
      local e = b[B_E]
      s.rE = s.rE - e
      for k = 1, NTYPES do s.r[k] = s.r[k] - b[B_T0 + k - 1] end
      s.ria = s.ria - b[B_IA]
      s.rse = s.rse - b[B_SE]
      if b[B_FT] > 0 and b[B_FT] == s.eft then early_left = true end
      if e ~= 0 and h > newH - R - B then
        s.hE = s.hE + e
        self:w('edirty')[h] = e
      end
      self.bk[h] = false
      if self.bdirty[h] then self.bdirty[h] = nil end
      self:w('bdel')[h] = true
    end
  end
  for h = oldH - R - B + 1, math.min(oldH - R, newH - R - B) do
    local e = self:hist_e(h)
    if e ~= 0 then s.hE = s.hE - e end
    self:w('edirty')[h] = false
  end
  s.H = newH
  if early_left then self:recompute_early() end
end

-- Apply one accepted event. ev = {i, creator, type, ts, n, idh, actor,
-- sponsored, followers, niche}
function Creator:apply(ev)
  local s, cfg = self.s, self.cfg
  local t, ts, n = ev[3], ev[4], ev[5]
  if ts > s.now then
    s.now = ts
    self:roll(floordiv(ts, cfg.bucket_ms))
  end
  if s.first == 0 or ts < s.first then s.first = ts end
  local h = floordiv(ts, cfg.bucket_ms)
  local e = cfg.weight[t + 1] * n
  if h > s.H - cfg.recent then
    self:add_recent(self:bucket(h), h, ev, e)
  elseif h > s.H - cfg.recent - cfg.hist and e ~= 0 then
    self:w('edirty')[h] = self:hist_e(h) + e
    s.hE = s.hE + e
  end
  self:snapshot(ev)
end

function Creator:add_recent(b, h, ev, e)
  local s = self.s
  local t, ts, n = ev[3], ev[4], ev[5]
  b[B_T0 + t] = b[B_T0 + t] + n
  s.r[t + 1] = s.r[t + 1] + n
  if e ~= 0 then
    b[B_E] = b[B_E] + e
    s.rE = s.rE + e
    if ev[8] == 1 then
      b[B_SE] = b[B_SE] + e
      s.rse = s.rse + e
    end
  end
  local actor = ev[7]
  if actor and INTERACTION[t] then
    b[B_IA] = b[B_IA] + n
    s.ria = s.ria + n
    local list = self.actors[h]
    if not list then list = {} self:w('actors')[h] = list end
    list[#list + 1] = actor
  end
  local fol = ev[9]
  if fol then
    if b[B_FT] == 0 or ts < b[B_FT] then b[B_F], b[B_FT] = fol, ts end
    if s.eft == 0 or ts < s.eft then s.ef, s.eft = fol, ts end
  end
end

-- Latest follower count and niche: the newest ts wins.
function Creator:snapshot(ev)
  local s, ts, fol, niche = self.s, ev[4], ev[9], ev[10]
  if fol then
    if ts >= s.folts then s.fol, s.folts = fol, ts end
    if fol <= self.cfg.micro_max and ts > s.below then s.below = ts end
  end
  if niche and ts >= s.nichets then s.niche, s.nichets = niche, ts end
end

-- PFADD of list[first..last] (all of list by default), 1000 at a time.
-- niches: niche -> the newest now of a creator in it this commit (finish
-- writes them); niche false or nil: none.
local function niche_now(niches, niche, now)
  if niche and (niches[niche] or 0) < now then niches[niche] = now end
end

local function pfadd(key, list, first, last)
  last = last or #list
  for i = first or 1, last, 1000 do
    redis.call('PFADD', key, unpack(list, i, math.min(i + 999, last)))
  end
end

-- The actors of events applied one by one (self.actors) and of whole runs
-- (self.run_actors: h -> the runs' lists, added as they are).
function Creator:flush_actors()
  for h, list in pairs(self.actors) do
    if not self.bdel[h] then
      pfadd(self.base .. ':u:' .. h, list)
      self:w('hll')[h] = true
    end
  end
  for h, lists in pairs(self.run_actors) do
    if not self.bdel[h] then
      for _, list in ipairs(lists) do pfadd(self.base .. ':u:' .. h, list) end
      self:w('hll')[h] = true
    end
  end
  self.actors, self.run_actors = EMPTY, EMPTY
end

function Creator:uniques()
  local ks = {}
  for h = self.s.H - self.cfg.recent + 1, self.s.H do ks[#ks + 1] = self.base .. ':u:' .. h end
  return redis.call('PFCOUNT', unpack(ks))
end

-- Dirty buckets back to P{c}:b, left ones out; its TTL (a backstop, like
-- every key's) is refreshed hourly.
function Creator:flush_buckets()
  local base, ttl = self.base, self.cfg.ttl_str
  local set, del = {}, {}
  for h in pairs(self.bdirty) do
    set[#set + 1] = h
    set[#set + 1] = cmsgpack.pack(self.bk[h])
  end
  for h in pairs(self.bdel) do del[#del + 1] = h end
  if #set > 0 then redis.call('HSET', base .. ':b', unpack(set)) end
  for i = 1, #del, 1000 do redis.call('HDEL', base .. ':b', unpack(del, i, math.min(i + 999, #del))) end
  local s = self.s
  if #set > 0 and (s.bxp == nil or self.cfg.wall - s.bxp >= TTL_REFRESH_MS) then
    redis.call('EXPIRE', base .. ':b', ttl)
    s.bxp = self.cfg.wall
  end
  self:flush_actors()
  for h in pairs(self.bnew) do
    if self.hll[h] and not self.bdel[h] then redis.call('EXPIRE', base .. ':u:' .. h, ttl) end
  end
  local dels = {}
  for h in pairs(self.bdel) do dels[#dels + 1] = base .. ':u:' .. h end
  for i = 1, #dels, 1000 do redis.call('DEL', unpack(dels, i, math.min(i + 999, #dels))) end
end

function Creator:flush_hist()
  local eset, edel = {}, {}
  for h, v in pairs(self.edirty) do
    if v then eset[#eset + 1] = h eset[#eset + 1] = S(v) else edel[#edel + 1] = h end
  end
  local key = self.base .. ':e'
  if #eset > 0 then
    redis.call('HSET', key, unpack(eset))
    redis.call('EXPIRE', key, self.cfg.ttl_str)
  end
  for i = 1, #edel, 1000 do
    redis.call('HDEL', key, unpack(edel, i, math.min(i + 999, #edel)))
  end
end

-- One SET of the whole state, with the wall-clock TTL that frees an
-- abandoned creator (event time, not the TTL, decides what is in a window).
function Creator:flush(niches)
  local cfg = self.cfg
  self:flush_buckets()
  self.packed = cmsgpack.pack(self.s) -- also the daemon's, when it asks (run[5])
  redis.call('SET', self.base, self.packed, 'EX', cfg.ttl_str)
  self:flush_hist()
  niche_now(niches, self.s.niche, self.s.now)
end

-- The daemon needs the state after the commit only where a rule was in
-- play (the checkpoints carry the rest) or the creator is on a leaderboard.
function Creator:interesting()
  return self.s.bd ~= nil or self.watching or #self.checkpoints > 0
end

-- What the daemon needs to evaluate the rules (detect.c).
function Creator:summary(uniques)
  local s = self.s
  return { self.c, s.now, s.first, s.fol, s.folts, s.ef, s.eft,
           s.below, self:gbase(), s.rE, s.hE, s.r, s.ria, s.rse,
           s.cd[1], s.cd[2], s.cd[3], s.niche or false, s.bd or false,
           uniques or -1 }
end

----------------------------------------------------------------------------
-- Checkpoints. The rules of SPEC §5 hold "after any event", so a commit keeps
-- the creator's state right after an event where one of them may start to
-- hold, whatever the batch boundaries: a replay in other batch sizes yields
-- the same snapshots, hence the same alerts with the same ts. This is only a
-- filter (the arithmetic of detect.c, loosely); detect.c decides.
-- det = [micro_min, micro_max, min_history_ms, prior_rate, min_E, min_velocity,
--        min_z, min_rate, follower_jump, suspicious_max_velocity, cooldown_ms,
--        max_checkpoints, audience_min_interactions, audience_min_unique_ratio]
-- Kinds: 0 rising, 1 suspicious, 2 graduated (alert_kind in detect.h).

-- A kind cools down after an alert stored in Redis, or after a checkpoint of
-- this commit where it is expected to fire (its alert is sent after the
-- commit, so the stored cooldown cannot show it yet).
function Creator:cooling(k, now)
  local cd = math.max(self.s.cd[k + 1], self.pcd[k] or 0)
  return cd > 0 and math.abs((now or self.s.now) - cd) < self.cfg.det[11]
end

-- The crossing the last graduated alert was about (that crossing is not
-- alerted again), including one expected from a checkpoint of this commit.
function Creator:gbase()
  return self.pgbase or self.s.gbase
end

function Creator:days_hist()
  local s, cfg = self.s, self.cfg
  local span_end = (s.H - cfg.recent + 1) * cfg.bucket_ms
  local span_start = span_end - cfg.hist * cfg.bucket_ms
  local d = (span_end - math.max(span_start, s.first)) / DAY_MS
  return math.max(0, math.min(d, cfg.hist * cfg.bucket_ms / DAY_MS))
end

-- Which rules hold on the sums, cooldowns aside: graduated, the volume rules
-- of rising, the follower jump of suspicious. E and now default to the
-- state's (a run asks about other values of the two, see Creator:run_fits).
function Creator:conditions(E, now)
  local s, d = self.s, self.cfg.det
  E, now = E or s.rE, now or s.now
  local fol = s.fol
  if fol > d[2] then
    return s.below > 0 and s.below < s.folts and s.below ~= self:gbase(), false, false
  end
  if fol < d[1] or now - s.first < d[3] then return false, false, false end
  local mu = (s.hE + d[4] * fol) / (self:days_hist() + 1)
  local volume = E >= d[5] and E >= d[6] * mu and (E - mu) / math.sqrt(mu + 1) >= d[7]
    and E >= d[8] * fol
  local jump = s.ef > 0 and s.eft < s.folts and fol >= (1 + d[9]) * s.ef and E < d[10] * mu
  return false, volume, jump
end

function Creator:watch()
  local grad, volume, jump = self:conditions()
  local firing = (grad and not self:cooling(2)) or (jump and not self:cooling(1))
    or (volume and not (self:cooling(0) and self:cooling(1)))
  if firing and not self.watching and #self.checkpoints < self.cfg.det[12] then
    self:flush_actors()
    local u = self:uniques()
    local cps, pcd = self:w('checkpoints'), self:w('pcd')
    cps[#cps + 1] = self:summary(u)
    local s, d = self.s, self.cfg.det
    if grad then pcd[2], self.pgbase = s.now, s.below end
    if jump then pcd[1] = s.now end
    if volume then
      local fails = s.ria >= d[13] and s.ria > 0 and u / s.ria < d[14]
      pcd[fails and 1 or 0] = s.now
    end
  end
  self.watching = firing
end

----------------------------------------------------------------------------
-- Runs (nousu_commit_runs). The rest of a run (every event of it but the
-- first, see plan.h) falls in one bucket, carries no follower count and comes
-- with its sums. It is applied as one aggregate when that cannot skip a
-- checkpoint: when no event inside it can be the first of a stretch where a
-- rule fires. Over such a rest, with the follower count, H, hE and first
-- fixed, and cooldowns not in the future:
--   E and now only grow; the volume rules and "not cooling" only go from
--   false to true as they do; graduated is constant; the follower jump holds
--   on an interval (E < max_velocity * mu goes from true to false).
-- So the rules can start to fire inside the rest only if they may fire at
-- its end with the jump judged at its start (may_fire); and they cannot stop
-- firing if the monotone part already fires now (fires_from_now).
-- REST = { n, ts_min, ts_max, counts[9], E, ia, se, actors, niche, nichets,
--          detail (the same events one by one, msgpack) }
local R_N, R_TSMIN, R_TSMAX, R_COUNTS, R_E, R_IA, R_SE, R_ACTORS, R_NICHE, R_NICHETS, R_DETAIL =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11

function Creator:may_fire(E1, now1)
  local grad, volume = self:conditions(E1, now1)
  local _, _, jump = self:conditions(self.s.rE, now1)
  return (grad and not self:cooling(2, now1)) or (jump and not self:cooling(1, now1))
    or (volume and not (self:cooling(0, now1) and self:cooling(1, now1)))
end

function Creator:fires_from_now()
  local grad, volume = self:conditions()
  return (grad and not self:cooling(2)) or (volume and not (self:cooling(0) and self:cooling(1)))
end

function Creator:run_fits(r)
  local s, cfg = self.s, self.cfg
  local h = floordiv(r[R_TSMIN], cfg.bucket_ms)
  if s.H == nil or h > s.H or h <= s.H - cfg.recent then return false end
  if s.first == 0 or r[R_TSMIN] < s.first then return false end
  local now1 = math.max(s.now, r[R_TSMAX])
  if r[R_TSMIN] < now1 - cfg.lateness_ms then return false end -- one may be too old
  for k = 0, 2 do
    if math.max(s.cd[k + 1], self.pcd[k] or 0) > s.now then return false end
  end
  if #self.checkpoints >= cfg.det[12] then return true end
  if not self:may_fire(s.rE + r[R_E], now1) then return true end
  return self.watching and self:fires_from_now()
end

function Creator:apply_run(r)
  local s = self.s
  if r[R_TSMAX] > s.now then s.now = r[R_TSMAX] end
  local h = floordiv(r[R_TSMIN], self.cfg.bucket_ms)
  local b = self:bucket(h)
  local counts = r[R_COUNTS]
  for k = 1, NTYPES do
    local c = counts[k]
    if c ~= 0 then
      b[B_T0 + k - 1] = b[B_T0 + k - 1] + c
      s.r[k] = s.r[k] + c
    end
  end
  b[B_E], s.rE = b[B_E] + r[R_E], s.rE + r[R_E]
  b[B_IA], s.ria = b[B_IA] + r[R_IA], s.ria + r[R_IA]
  b[B_SE], s.rse = b[B_SE] + r[R_SE], s.rse + r[R_SE]
  if #r[R_ACTORS] > 0 then
    local lists = self.run_actors[h]
    if not lists then lists = {} self:w('run_actors')[h] = lists end
    lists[#lists + 1] = r[R_ACTORS]
  end
  local niche = r[R_NICHE]
  if niche and r[R_NICHETS] >= s.nichets then s.niche, s.nichets = niche, r[R_NICHETS] end
end

----------------------------------------------------------------------------
-- Event-id dedup. An id is remembered as its 64-bit hash, a signed decimal
-- (so that Redis keeps the sets as intsets: 8 bytes an id), for the horizon
-- plus up to one slice, in the set P:ids:<slice>:<gen>:<b>:
--   slice  60 s of wall clock: the ids that expire together, when the slice
--          leaves the horizon (by the daemon's clock, as a TTL: Redis's
--          clock may differ). A commit asks every live slice:
--          3 for the default 120 s horizon. Longer slices would mean fewer
--          calls and more ids held; shorter ones the reverse;
--   gen    a slice's sets come in generations, each with its own number of
--          sets B (a power of 2), chosen so that a set holds about
--          cfg.set_ids ids: under Redis's set-max-intset-entries (512 by
--          default), past which a set turns into a hash table at ~64 B an
--          id. A slice starts with B for the previous slice's count (at least
--          cfg.dedup_buckets) and opens a generation GEN_GROWTH times larger
--          when the current one is full, as in a surge;
--   b      the set: the id's place (the top 16 bits of its hash, sent by the
--          daemon) scaled to B, so that ids sorted by place fall into the
--          sets of any generation in contiguous stretches.
-- P:ids:<slice> lists the slice's generations, msgpack [[B, ids]...]. A
-- commit asks each set its ids fall into once (SMISMEMBER) and adds to each
-- set of the current generation once (SADD).
-- With the nousu Redis module loaded (daemon/redis-module), a generation is
-- instead `parts` tables P:ids:<slice>:<gen>:t<p> (strings of 8-byte slots,
-- daemon/idtable.h), {slots, ids, 1, parts, made[, since]} in P:ids:<slice>
-- (since: the wall clock of its first ids, for the pace): an id in
-- part floor(place * parts / 65536), as for the sets. A commit asks and adds
-- to each part its ids fall into in one call per 1000 ids, where the sets
-- take one call per set (and the sets a commit touches grow with the slice).
-- Parts have up to TABLE_PART_SLOTS slots (2 MiB, sized to fill a jemalloc
-- size class: a commit that makes one takes ~6 ms more at half load, where
-- parts of 8 MiB took 20-30 and doubled the alerts' p99), planned at most
-- 3/4 full (less TABLE_FILL: parts fill unevenly; the module refuses past
-- 7/8). A table's slots are allocated,
-- and zeroed, when it is made (~116 ms for 256 MB), so generations are made
-- ahead, a few parts a commit, sized from the slice's pace (Dedup:prepare;
-- `made` counts the parts made); one a commit needs and finds not made
-- (the first commits, a surge) is made at once, of TABLE_NOW_PARTS at most.
-- Generations of both kinds may share a slice (the module loaded, or
-- unloaded, mid-slice); a live table without the module fails the commit.
-- P:ids:<slice>:<gen> is a bitmap of the generation's sets already given
-- their TTL (bit b for set b), read once per commit: a set is touched by
-- hundreds of commits, and a PEXPIRE each time was a third of the dedup's
-- calls. The bitmap lives only while the slice is current (plus the skew),
-- so it expires before its sets: a set written after that gets its TTL
-- again, never none.

local DEDUP_SLICE_MS = 60000
local DEDUP_SKEW_MS = 5000 -- kept this much longer: daemons' clocks differ
local PLACES = 65536
local GEN_GROWTH = 8
-- a part's slots: up to 2 MiB with its header, the sds header and NUL
local TABLE_MIN_SLOTS, TABLE_PART_SLOTS = 65536, (2097152 - 32) / 8
local TABLE_FILL = 0.98
local TABLE_NOW_PARTS = 8 -- the most parts a commit makes at once (16 MiB, ~25 ms)
-- parts made ahead: 2 a commit put 40-60 ms into a commit at half load
local PREPARE_MS, PREPARE_PER_COMMIT = 15000, 1
local AHEAD_DONE = 0.8 -- parts made ahead are spread over this much of their window
-- An extra generation is planned once the last is AHEAD_FROM full, at most
-- AHEAD_GROWTH times its size: its parts are made while the last fills, so
-- the parts a second grow with the ratio of the two. Uncapped, a slice sized
-- at a lull got 32 parts (256 MB) made in 2.4 s: Redis ran its commits 7
-- times slower, alerts took 300 ms.
local AHEAD_FROM, AHEAD_GROWTH = 0.25, 4

local Dedup = {}
Dedup.__index = Dedup

local function dedup_new(cfg)
  -- known: ids seen before (and, in nousu_commit, earlier in the commit);
  -- fresh: nousu_commit's ids to remember, as { id, place };
  -- skip: ids of too-old events of nousu_commit_runs, not to be remembered;
  -- gens: slice -> its generations, read once per commit
  local self = setmetatable({ cfg = cfg, known = {}, fresh = {}, skip = {}, gens = {} }, Dedup)
  self.cur = floordiv(cfg.wall, DEDUP_SLICE_MS)
  self.oldest = floordiv(cfg.wall - cfg.horizon_ms, DEDUP_SLICE_MS)
  -- the current slice is asked until its end leaves the horizon
  self.ttl_ms = S((self.cur + 1) * DEDUP_SLICE_MS + cfg.horizon_ms + DEDUP_SKEW_MS - cfg.wall)
  self.timed_ttl_ms = S((self.cur + 1) * DEDUP_SLICE_MS + DEDUP_SKEW_MS - cfg.wall)
  -- the module answers (an empty array) where a Redis without it errors
  local probe = redis.pcall('NOUSU.IDHAS', cfg.prefix .. 'ids:probe')
  self.tables = type(probe) == 'table' and probe.err == nil
  return self
end

local function is_table(gen) return gen[3] == 1 end

-- The ids a generation takes: 3/4 of its parts' slots (less TABLE_FILL),
-- or B sets' worth.
function Dedup:room(gen)
  if is_table(gen) then return math.floor(gen[4] * math.floor(gen[1] * 3 / 4) * TABLE_FILL) end
  return gen[1] * self.cfg.set_ids
end

-- The slots of a part of at least n slots that fill their allocation:
-- past 4 KB jemalloc rounds to 4 size classes a doubling, so a table of
-- exactly 8 MiB of slots took 10 MiB (32 bytes: the table's header, the
-- sds header and NUL, rounded up).
local function fill_class(n)
  local bytes, m = n * 8 + 32, 4096
  while m * 2 <= bytes do m = m * 2 end
  return math.floor((math.ceil(bytes / (m / 4)) * (m / 4) - 32) / 8)
end

-- A generation of tables for want ids: parts (a power of 2) of at most
-- cfg.table_part_slots before fill_class; ahead: its parts are to be made
-- ahead (made 0), else they are made as ids reach them (made = parts).
function Dedup:table_gen(want, ahead)
  local need = math.max(want / (0.75 * TABLE_FILL), TABLE_MIN_SLOTS)
  local parts = 1
  while need / parts > self.cfg.table_part_slots and parts < PLACES do parts = parts * 2 end
  return { fill_class(math.ceil(need / parts)), 0, 1, parts, ahead and 0 or parts }
end

function Dedup:slice_key(slice)
  return self.cfg.prefix .. 'ids:' .. slice
end

function Dedup:slice_gens(slice)
  local gens = self.gens[slice]
  if not gens then
    local raw = redis.call('GET', self:slice_key(slice))
    gens = raw and cmsgpack.unpack(raw) or {}
    self.gens[slice] = gens
  end
  return gens
end

-- fn(b, i, j) for each stretch places[i..j] (ascending) in one set of B.
local function each_set(places, B, fn)
  local width = PLACES / B
  local n, i = #places, 1
  while i <= n do
    local b = math.floor(places[i] / width)
    local limit, j = (b + 1) * width, i
    while j < n and places[j + 1] < limit do j = j + 1 end
    fn(b, i, j)
    i = j + 1
  end
end

-- Mark as known the ids (sorted by place) remembered within the horizon.
function Dedup:prefetch(ids, places)
  if #ids == 0 then return end
  local known = self.known
  local function mark(r, k)
    for x = 1, #r do
      if r[x] == 1 then known[ids[k + x - 1]] = true end
    end
  end
  for slice = self.oldest, self.cur do
    for g, gen in ipairs(self:slice_gens(slice)) do
      -- sets <base><b> of gen[1], or the module's parts <base>t<p> of gen[4]
      local cmd, n, base = 'SMISMEMBER', gen[1], self:slice_key(slice) .. ':' .. g .. ':'
      if is_table(gen) then
        if not self.tables then
          error('nousu: live event-id tables need the nousu Redis module (loadmodule '
                .. 'nousu.so) and +nousu.idadd +nousu.idhas in the ACL (docs/operations.md)')
        end
        cmd, n, base = 'NOUSU.IDHAS', gen[4], base .. 't'
      end
      each_set(places, n, function(b, i, j)
        for k = i, j, 1000 do
          mark(redis.call(cmd, base .. b, unpack(ids, k, math.min(k + 999, j))), k)
        end
      end)
    end
  end
end

-- The generation of the current slice that n more ids go into, and its number.
function Dedup:gen_for(n)
  local gens, cfg = self:slice_gens(self.cur), self.cfg
  local last = gens[#gens]
  if last and is_table(last) ~= self.tables then last = nil end -- a new kind
  if last and not self.tables and last[2] + n <= self:room(last) then return last, #gens end
  local before = 0
  for _, gen in ipairs(self:slice_gens(self.cur - 1)) do before = before + gen[2] end
  if self.tables then
    -- the first with room: one made ahead takes ids once the one before is full
    for g, gen in ipairs(gens) do
      if is_table(gen) and gen[2] + n <= self:room(gen) then return gen, g end
    end
    -- made now, in this commit: a few parts at most; Dedup:prepare makes the
    -- rest ahead from the pace (a slice sized from a busy one, made at once
    -- after a lull with no commit to make it ahead, stalled Redis 460 ms)
    local want = last and 2 * self:room(last) or before * 1.25
    local now = TABLE_NOW_PARTS * math.floor(self.cfg.table_part_slots * 3 / 4 * TABLE_FILL)
    gens[#gens + 1] = self:table_gen(math.max(math.min(want, now), n), false)
    return gens[#gens], #gens
  end
  local want
  if last then
    want = GEN_GROWTH * last[1]
  else
    want = math.max(cfg.dedup_buckets, before / cfg.set_ids)
  end
  want = math.max(want, n / cfg.set_ids)
  local B = 1
  while B < want and B < PLACES do B = B * 2 end
  gens[#gens + 1] = { B, 0 }
  return gens[#gens], #gens
end

-- The chain: P:ids:chain is "<commit id> <start> <empty> <counts>", the last
-- commit applied (either form, any writer), the wall clock of the first
-- commit of its chain, 1 when no ids were live when that chain began, and
-- the ids each live slice held after it (live_counts; '-' while the commit
-- runs). A commit continues the chain when it names the last commit as the
-- one it follows (expect: the daemon's commit before it; commit ids are
-- unique per daemon) and the live slices hold what the last commit left:
-- so a chain is one daemon's commits, with no ids from anyone else between
-- (the counts catch a writer that does not follow chains, e.g. an older
-- library loaded by an older daemon). The key says '-' before any id is
-- written, so a commit that fails half way breaks the chain too.
-- The daemon keeps a filter of the ids it sent since claim (its wall clock
-- then; daemon/idfilter.c) and sends, with the claim, the indexes of the
-- ids its filter may hold. Those alone need looking up when every id live
-- in Redis is one of the chain's and the filter holds the chain's ids: ids
-- from before the chain are dead once its first slice is two slices behind
-- the oldest live one (one slice for a writer whose clock is ahead), or
-- there were none.
function Dedup:live_counts()
  local parts = {}
  for slice = self.oldest, self.cur + 1 do -- cur + 1: a writer whose clock is ahead
    local n = 0
    for _, gen in ipairs(self:slice_gens(slice)) do n = n + gen[2] end
    if n > 0 then parts[#parts + 1] = S(slice) .. ':' .. S(n) end
  end
  return table.concat(parts, ',')
end

-- counts as recorded, less the slices no longer live.
function Dedup:still_live(counts)
  local parts = {}
  for slice, n in string.gmatch(counts, '(%-?%d+):(%d+)') do
    local k = tonumber(slice)
    if k >= self.oldest and k <= self.cur + 1 then parts[#parts + 1] = slice .. ':' .. n end
  end
  return table.concat(parts, ',')
end

function Dedup:chain_value(counts)
  local c = self.chain
  return c.id .. ' ' .. S(c.start) .. ' ' .. (c.empty and '1' or '0') .. ' ' .. counts
end

-- Follow the chain with this commit; true when the daemon's filter is to be
-- trusted.
function Dedup:follow_chain(commit_id, expect, claim)
  local key = self.cfg.prefix .. 'ids:chain'
  if not commit_id or commit_id == '' then
    redis.call('DEL', key)
    return false
  end
  local raw = redis.call('GET', key)
  local last, start, empty, counts
  if raw then last, start, empty, counts = string.match(raw, '^(%S+) (%-?%d+) ([01]) (%S*)$') end
  local live = self:live_counts()
  local held = expect ~= nil and expect ~= '' and last == expect and counts ~= '-'
      and self:still_live(counts) == live
  if held then
    start, empty = tonumber(start), empty == '1'
  else
    start, empty = self.cfg.wall, live == ''
  end
  self.chain = { key = key, id = commit_id, start = start, empty = empty,
                 ttl = S(self.cfg.horizon_ms + 2 * DEDUP_SLICE_MS) }
  redis.call('SET', key, self:chain_value('-'), 'PX', self.chain.ttl)
  claim = held and claim and tonumber(claim)
  if not claim then return false end
  local function dead_before(wall) return floordiv(wall, DEDUP_SLICE_MS) + 2 <= self.oldest end
  return (empty or dead_before(start)) and (start >= claim or dead_before(claim))
end

-- The commit's ids are written: the chain may go on from it.
function Dedup:end_chain()
  if self.chain then
    redis.call('SET', self.chain.key, self:chain_value(self:live_counts()), 'PX', self.chain.ttl)
  end
end

-- Bit b of a Redis bitmap (BITFIELD's order: from the top of byte 0).
local function has_bit(bitmap, b)
  local byte = string.byte(bitmap, math.floor(b / 8) + 1)
  return byte ~= nil and bit.band(byte, 2 ^ (7 - b % 8)) ~= 0
end

-- Set the bits of the list in the bitmap at key (made: the key exists).
local function set_bits(key, bits, made, ttl_ms)
  local args = {}
  for k = 1, #bits, 1900 do -- 4 arguments a bit: under Lua's 8,000
    local n = 0
    for x = k, math.min(k + 1899, #bits) do
      args[n + 1], args[n + 2], args[n + 3], args[n + 4] = 'SET', 'u1', bits[x], 1
      n = n + 4
    end
    redis.call('BITFIELD', key, unpack(args, 1, n))
  end
  if #bits > 0 and not made then redis.call('PEXPIRE', key, ttl_ms) end
end

-- Remember ids not known before (sorted by place) in the current slice.
function Dedup:remember(ids, places)
  if #ids == 0 then return end
  local gen, g = self:gen_for(#ids)
  gen[2] = gen[2] + #ids
  local gkey = self:slice_key(self.cur) .. ':' .. g
  if is_table(gen) then
    gen[6] = gen[6] or self.cfg.wall
    self:remember_in_tables(gkey .. ':t', gen, ids, places)
    return
  end
  local base, timed = gkey .. ':', redis.call('GET', gkey)
  local new = {}
  each_set(places, gen[1], function(b, i, j)
    local key = base .. b
    for k = i, j, 1000 do
      redis.call('SADD', key, unpack(ids, k, math.min(k + 999, j)))
    end
    if not (timed and has_bit(timed, b)) then
      redis.call('PEXPIRE', key, self.ttl_ms)
      new[#new + 1] = b
    end
  end)
  set_bits(gkey, new, timed, self.timed_ttl_ms)
  self:save_gens(self.cur, self.ttl_ms)
end

function Dedup:save_gens(slice, ttl_ms)
  redis.call('SET', self:slice_key(slice), cmsgpack.pack(self:slice_gens(slice)), 'PX', ttl_ms)
end

-- Ids not known before (sorted by place) into the parts of gen at base<p>
-- (a part is made by the first IDADD, if not ahead); a PEXPIRE a part a
-- commit, as cheap as asking whether it has one. NOUSU.IDADDN does both for
-- up to 1000 ids in one call, each to the part of its place, the id's top 16
-- bits (a commit at half load touched ~64 parts: 128 calls); when Redis
-- refuses it (a module of before it, an ACL without it:
-- any error that is not the module's own, "nousu: ..."), IDADD as before.
function Dedup:remember_in_tables(base, gen, ids, places)
  local k, n = 1, #ids
  while k <= n and self.idaddn ~= false do
    local j = math.min(k + 999, n)
    local r = redis.pcall('NOUSU.IDADDN', base, gen[4], gen[1], self.ttl_ms, unpack(ids, k, j))
    if type(r) == 'table' and r.err then
      if k > 1 or string.find(r.err, 'nousu:', 1, true) then error(r.err) end
      self.idaddn = false
    else
      k = j + 1
    end
  end
  if self.idaddn == false then
    each_set(places, gen[4], function(p, i, j)
      local key = base .. p
      for x = i, j, 1000 do
        redis.call('NOUSU.IDADD', key, gen[1], unpack(ids, x, math.min(x + 999, j)))
      end
      redis.call('PEXPIRE', key, self.ttl_ms)
    end)
  end
  self:prepare()
  self:save_gens(self.cur, self.ttl_ms) -- with what prepare made ahead in it
end

-- Tables are made ahead, PREPARE_PER_COMMIT parts a commit (an 8 MB part
-- took 6 ms on a quiet Redis, 20-30 at half load on a VM: page faults),
-- sized from this slice's pace plus a quarter: once this slice's last
-- generation is AHEAD_FROM full and the pace says its tables will not
-- hold the rest of the slice, one more for the difference (at most
-- AHEAD_GROWTH times the last); over the last PREPARE_MS, the next slice's
-- first. (A pace over less than a second of ids means little: without one,
-- nothing is planned in the first 5 s of a slice.)
function Dedup:prepare()
  local cfg, gens = self.cfg, self:slice_gens(self.cur)
  local elapsed = cfg.wall - self.cur * DEDUP_SLICE_MS
  local left = (self.cur + 1) * DEDUP_SLICE_MS - cfg.wall
  local n, free = 0, 0
  for _, g in ipairs(gens) do
    n = n + g[2]
    if is_table(g) then free = free + self:room(g) - g[2] end
  end
  local pace, measured = self:pace(gens, n, elapsed)
  local last = gens[#gens]
  if (measured or elapsed >= 5000) and last and is_table(last) and last[5] >= last[4]
      and last[2] >= self:room(last) * AHEAD_FROM and pace * left > free then
    local want = math.min(pace * left - free, AHEAD_GROWTH * self:room(last))
    gens[#gens + 1] = self:table_gen(math.max(want, self:room(last) / 4), true)
  end
  -- an extra generation's window: its predecessor filling from AHEAD_FROM to full
  local prev = gens[#gens - 1]
  local progress = prev and is_table(prev)
      and (prev[2] / self:room(prev) - AHEAD_FROM) / (1 - AHEAD_FROM) or 1
  local budget = self:make_ahead(self.cur, #gens, PREPARE_PER_COMMIT, self.ttl_ms, progress)
  local nxt = self.cur + 1
  if budget == 0 or left > PREPARE_MS then return end
  local ngens = self:slice_gens(nxt)
  if not ngens[1] then ngens[1] = self:table_gen(pace * DEDUP_SLICE_MS, true) end
  local ttl = S(tonumber(self.ttl_ms) + DEDUP_SLICE_MS)
  progress = (PREPARE_MS - left) / PREPARE_MS
  if self:make_ahead(nxt, 1, budget, ttl, progress) < budget then self:save_gens(nxt, ttl) end
end

-- The ids a second into this slice (of n in elapsed ms), plus a quarter,
-- and whether it was measured: over its latest generations of tables, back
-- to the first whose ids began a second ago or more (since, gen[6]); else
-- over the whole slice (not measured). The slice's average understates a
-- pace that rose (a slice begun in a lull): each generation planned from it
-- came short, and the next smaller, until a slice held 27.
function Dedup:pace(gens, n, elapsed)
  local ids = 0
  for g = #gens, 1, -1 do
    local gen = gens[g]
    if gen[6] then
      ids = ids + gen[2]
      if self.cfg.wall - gen[6] >= 1000 then return ids / (self.cfg.wall - gen[6]) * 1.25, true end
    elseif gen[2] > 0 then
      break -- sets, or tables of a Function before since
    end -- else made ahead, not taking ids yet
  end
  return n / math.max(elapsed, 1000) * 1.25, false
end

-- Make up to budget parts of generation g of slice that are still to be
-- made ahead (the caller saves the slice's generations), no more than its
-- share of the window they are made in of which progress (0 to 1) has
-- passed: all of them in the first commits of the window, 2 a commit,
-- stalled Redis for up to a second at 300k ids/s (a part takes 6-14 ms
-- to make). Returns the budget left.
function Dedup:make_ahead(slice, g, budget, ttl, progress)
  local gens = self:slice_gens(slice)
  local gen = gens[g]
  if not gen or not is_table(gen) or gen[5] >= gen[4] then return budget end
  local base = self:slice_key(slice) .. ':' .. g .. ':t'
  local due = math.ceil(gen[4] * math.max(progress, 0) / AHEAD_DONE)
  local upto = math.min(gen[5] + budget, gen[4], math.max(due, gen[5]))
  for p = gen[5], upto - 1 do
    redis.call('NOUSU.IDADD', base .. p, gen[1])
    redis.call('PEXPIRE', base .. p, ttl)
  end
  budget, gen[5] = budget - (upto - gen[5]), upto
  return budget
end

-- { id, place } pairs in place order, as two lists.
local function by_place(list)
  table.sort(list, function(a, b) return a[2] < b[2] end)
  local ids, places = {}, {}
  for i, e in ipairs(list) do ids[i], places[i] = e[1], e[2] end
  return ids, places
end

-- nousu_commit: true when the id was already seen within the horizon or
-- earlier in the commit; otherwise it is to be remembered.
function Dedup:seen(id, place)
  if self.known[id] then return true end
  self.known[id] = true
  self.fresh[#self.fresh + 1] = { id, place }
  return false
end

function Dedup:flush()
  self:remember(by_place(self.fresh))
end

----------------------------------------------------------------------------
-- nousu_commit: apply every unit (a PULL frame or an acknowledged request)
-- read in one loop iteration.
--
-- ARGV[1] = msgpack [cfg, units]; ARGV[2] = commit id (unique per batch,
--   the same on every retry of that batch); ARGV[3] = the commit this one
--   must follow, or '' (see predecessor_done: when it was not committed,
--   returns the integer 1 and writes nothing); ARGV[4] = the daemon's commit
--   before this one, or '' (see the chain, in Dedup)
--   cfg   = [prefix, wall_ms, bucket_ms, recent, hist, lateness_ms,
--            horizon_ms, request_ttl_s, micro_max, ttl_s, weights[9], det,
--            dedup_buckets, dedup_set_ids, verify_hints]
--   unit  = [rid or nil, total, pre_errors [[i, reason]...], events]
--   event = [i, creator, type, ts, n, id (hash, decimal), actor, sponsored,
--            followers, niche, id place (see Dedup)]
-- Returns msgpack [units_out, creators, checkpoints]
--   unit_out = [status, ok, dup, too_old_indexes, ack or nil]
--     status 0 applied, 1 request already committed (ack replayed)
--   creators = creators touched whose rules were in play or who are on a
--     leaderboard, after the commit (Creator:summary)
--   checkpoints = summaries with unique engagers after the events where a
--     rule may have started to hold, in event order per creator

local function parse_cfg(a)
  -- (numbers that go into commands as strings, formatted once)
  return { prefix = a[1], wall = a[2], bucket_ms = a[3], recent = a[4], hist = a[5],
           lateness_ms = a[6], horizon_ms = a[7], request_ttl = S(a[8]), micro_max = a[9],
           ttl_s = a[10], ttl_str = S(a[10]), weight = a[11], det = a[12],
           dedup_buckets = a[13], set_ids = a[14], verify_hints = a[15],
           table_part_slots = a[16] or TABLE_PART_SLOTS } -- a[16]: tests only
end

local function make_ack(unit, ok, dup, too_old)
  local errors = {}
  for _, e in ipairs(unit[3]) do errors[#errors + 1] = { i = e[1], reason = e[2] } end
  for _, i in ipairs(too_old) do errors[#errors + 1] = { i = i, reason = 'too_old' } end
  table.sort(errors, function(a, b) return a.i < b.i end)
  return cmsgpack.pack({ ok = ok, dup = dup, rejected = unit[2] - ok - dup, errors = errors })
end

local function state_of(cfg, c, creators, order)
  local st = creators[c]
  if not st then
    st = creator_load(cfg, c)
    creators[c] = st
    order[#order + 1] = st
  end
  return st
end

local function apply_unit(cfg, unit, creators, order, dedup)
  local ok, dup, too_old = 0, 0, {}
  for _, ev in ipairs(unit[4]) do
    local st = state_of(cfg, ev[2], creators, order)
    if st.s.now ~= 0 and ev[4] < st.s.now - cfg.lateness_ms then
      too_old[#too_old + 1] = ev[1]
    elseif ev[6] and dedup:seen(ev[6], ev[11]) then
      dup = dup + 1
    else
      st:apply(ev)
      st:watch()
      ok = ok + 1
    end
  end
  return ok, dup, too_old
end

-- Which units are requests already committed (answered with their first
-- ack), and the event ids of the others, asked for all at once.
local function prepare(cfg, units, dedup)
  local replay, ids = {}, {}
  for u, unit in ipairs(units) do
    local prev = unit[1] and redis.call('GET', cfg.prefix .. 'req:' .. unit[1])
    if prev then
      replay[u] = prev
    else
      for _, ev in ipairs(unit[4]) do
        if ev[6] then ids[#ids + 1] = { ev[6], ev[11] } end
      end
    end
  end
  dedup:prefetch(by_place(ids))
  return replay
end

-- niches: niche -> newest ts, of hinted runs so far (see take_hint)
local function finish(cfg, order, niches)
  local summaries, checkpoints = {}, {}
  niches = niches or {}
  for _, st in ipairs(order) do
    st:flush(niches)
    if st:interesting() then summaries[#summaries + 1] = st:summary() end
    for _, cp in ipairs(st.checkpoints) do checkpoints[#checkpoints + 1] = cp end
  end
  local nk = cfg.prefix .. 'nichenow'
  for niche, now in pairs(niches) do
    if num(redis.call('HGET', nk, niche), 0) < now then redis.call('HSET', nk, niche, S(now)) end
  end
  return summaries, checkpoints
end

-- A daemon sends its next commit before the reply of the last one (the
-- committer prepares one while Redis runs the other), naming that last one:
-- if it was not applied (an error, a lost connection, the runs form
-- declined), this one must not be either, or events would land out of
-- order. The daemon then sends both again, in order.
local function predecessor_done(cfg, after)
  return not after or after == '' or redis.call('EXISTS', cfg.prefix .. 'commit:' .. after) == 1
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
  if not predecessor_done(cfg, args[3]) then return 1 end
  local creators, order, out = {}, {}, {}
  local dedup = dedup_new(cfg)
  dedup:follow_chain(args[2], args[4])
  local replay = prepare(cfg, req[2], dedup)
  -- A request resent while the first copy waited in the same queue (no ack
  -- in time, e.g. during a Redis outage) is in this very commit: answer it
  -- with the ack of its first copy, as if that were already stored.
  local acked = {}
  for u, unit in ipairs(req[2]) do
    local again = replay[u] or (unit[1] and acked[unit[1]])
    if again then
      out[#out + 1] = { 1, 0, 0, {}, again }
    else
      local ok, dup, too_old = apply_unit(cfg, unit, creators, order, dedup)
      local ack = false
      if unit[1] then
        ack = make_ack(unit, ok, dup, too_old)
        redis.call('SET', cfg.prefix .. 'req:' .. unit[1], ack, 'EX', cfg.request_ttl)
        acked[unit[1]] = ack
      end
      out[#out + 1] = { 0, ok, dup, too_old, ack }
    end
  end
  local summaries, checkpoints = finish(cfg, order)
  dedup:flush()
  dedup:end_chain()
  local reply = cmsgpack.pack({ out, summaries, checkpoints })
  if ckey then redis.call('SET', ckey, reply, 'EX', COMMIT_TTL_S) end
  return reply
end

----------------------------------------------------------------------------
-- nousu_commit_runs: the same commit as nousu_commit, its events grouped
-- into per-creator runs by the daemon (plan.c, wire.c). The daemon sends it
-- only when no event id and no request id appears twice in it.
--
-- ARGV[1] = msgpack [cfg, units, runs]; ARGV[2] = commit id;
-- ARGV[3] = msgpack [[id...], [place...], maybe or nil], every event id of
--   the commit, sorted by place (see Dedup); maybe: when there is a claim,
--   the indexes (ascending) of the ids the daemon's filter may hold;
-- ARGV[4] = msgpack [run index...], the run of each of those ids;
-- ARGV[5] = the commit this one must follow, or '' (see predecessor_done);
-- ARGV[6] = the events of hinted runs, ARGV[7] = the hinted runs (below);
-- ARGV[8] = the daemon's commit before this one, or ''; ARGV[9] = its claim
--   (the wall clock since which its filter holds every id it sent), or ''
--   (see the chain, in Dedup); ARGV[10] = the id of the module's stash
--   holding ARGV[6] and ARGV[7] (daemon/redis-module/stash.c; both are then
--   ''), or '' or absent. A stash that is gone (Redis restarted between the
--   two commands) makes the commit answer 0 before it writes anything, as
--   for a request committed before; the stash is dropped once read.
--   unit = [rid or nil, total, pre_errors, events in runs], or for a frame
--          with no request id and no rejection, just its number of events
--   run  = [creator, first event, REST or nil, nil, want or nil], or for a
--          run with a hint its place in ARGV[7] (see Hints): its events are
--          msgpack [first event, REST or nil] at a place in ARGV[6],
--          unpacked only when the hint is not taken
--          want: true when the daemon wants the creator's state after the
--          commit, unless it takes the hint (it keeps states, statecache.h)
--   event = as in nousu_commit, creator nil, + [12] = its unit (1-based)
-- Returns what nousu_commit returns, except that a plain frame's result is
-- its count alone (all ok), plus a 4th element, the number of hints taken
-- (verified, in verify mode), and a 5th, [run index, state bytes, ...] for
-- the runs that wanted it, and a 6th, true when only the ids the daemon's
-- filter may hold were looked up (the chain); or without writing anything, the integer 0 when
-- a request of the commit was committed before (the daemon then sends the
-- commit as nousu_commit, which answers such requests), or 1 when the
-- predecessor was not committed.

-- One event applied alone: lateness, dedup against the ids known before the
-- commit (no id is twice in it), apply, watch.
-- A unit's duplicates and too-old events, made when it has one: a commit of
-- single-event frames has as many units as events.
local function tally_of(tally, u)
  local t = tally[u]
  if not t then
    t = { dup = 0, too_old = {} }
    tally[u] = t
  end
  return t
end

local function take_event(cfg, st, ev, dedup, tally)
  if st.s.now ~= 0 and ev[4] < st.s.now - cfg.lateness_ms then
    local t = tally_of(tally, ev[12])
    t.too_old[#t.too_old + 1] = ev[1]
    if ev[6] then dedup.skip[ev[6]] = true end -- not remembered
  elseif ev[6] and dedup.known[ev[6]] then
    local t = tally_of(tally, ev[12])
    t.dup = t.dup + 1
  else
    st:apply(ev)
    st:watch()
  end
end

local function take_run(cfg, st, run, dedup, tally, walk)
  take_event(cfg, st, run[2], dedup, tally)
  local rest = run[3]
  if not rest then return end
  if not walk and st:run_fits(rest) then
    st:apply_run(rest)
    st:watch()
  else
    for _, ev in ipairs(cmsgpack.unpack(rest[R_DETAIL])) do take_event(cfg, st, ev, dedup, tally) end
  end
end

-- Runs holding an id seen before: walked event by event.
local function runs_to_walk(dedup, ids, owners_arg)
  local walk = {}
  if next(dedup.known) == nil then return walk end
  local owners = cmsgpack.unpack(owners_arg)
  for j, id in ipairs(ids) do
    if dedup.known[id] then walk[owners[j]] = true end
  end
  return walk
end

-- list[i] for each index i of the list at, in its order.
local function pick(list, at)
  local out = {}
  for k, i in ipairs(at) do out[k] = list[i] end
  return out
end

-- Remember the commit's ids but those seen before and those of events too old.
function Dedup:flush_runs(ids, places)
  if next(self.known) ~= nil or next(self.skip) ~= nil then
    local keep, kplaces = {}, {}
    for j, id in ipairs(ids) do
      if not self.known[id] and not self.skip[id] then
        keep[#keep + 1], kplaces[#kplaces + 1] = id, places[j]
      end
    end
    ids, places = keep, kplaces
  end
  self:remember(ids, places)
end

----------------------------------------------------------------------------
-- Hints. The daemon computes the state after a run itself when the run is
-- "hot" (hint.c): all its events in the creator's current bucket, none too
-- old, no follower count, no rule that may start to hold, the creator its
-- only run in the commit and on no leaderboard. Such a run is, in runs, only
-- a number p: its place in ARGV[7], a flat array where from p on follow
--   creator, want, offset and length of its events in ARGV[6], then its
--   hint: state bytes it started from, state bytes after, the bucket h of
--   the actors (a decimal string), true when that bucket is new, niche
--   after or false, now after, the number n of actors, the n actors.
-- Flat, because each table Lua unpacks costs Redis more than the strings in
-- it. If the state in Redis is still those bytes, the run is taken as the
-- hint says: one SET ... GET, the PFADD. Otherwise (another writer came
-- first, an id of the run was seen before) the run is taken the usual way,
-- which stays the authority. With cfg.verify_hints every hinted run is taken
-- the usual way and the result compared with the hint: tests run so.
local H_WANT, H_OFF, H_LEN, H_OLD, H_NEW, H_BUCKET, H_NEWB, H_NICHE, H_NOW, H_N =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10

-- Writes the hint's new state if the state in Redis is its old one: one SET
-- ... GET, which returns what it replaced. When that was not the old state
-- (rare: another writer came first) it is put back, with the TTL a state
-- write gives anyway, and false returned: the run is then taken the usual
-- way, which writes the state again.
local function swap_hint(cfg, key, flat, p)
  local old = redis.call('SET', key, flat[p + H_NEW], 'EX', cfg.ttl_str, 'GET')
  if old == flat[p + H_OLD] then return true end
  if old then
    redis.call('SET', key, old, 'EX', cfg.ttl_str)
  else
    redis.call('DEL', key)
  end
  return false
end

-- The state in Redis is the hint's new one now (swap_hint).
local function take_hint(cfg, key, flat, p, niches)
  local n = flat[p + H_N]
  if n > 0 then
    local hk = key .. ':u:' .. flat[p + H_BUCKET]
    pfadd(hk, flat, p + H_N + 1, p + H_N + n)
    if flat[p + H_NEWB] then redis.call('EXPIRE', hk, cfg.ttl_str) end
  end
  niche_now(niches, flat[p + H_NICHE], flat[p + H_NOW])
end

-- A hinted run as a run taken the usual way: its events from ARGV[6], or
-- from the stash (only these bytes become a Lua string).
local function hinted_run(flat, p, fallbacks, stash)
  local off, last = flat[p + H_OFF], flat[p + H_OFF] + flat[p + H_LEN] - 1
  local evs = cmsgpack.unpack(stash and redis.call('NOUSU.STASHGET', stash, 'events', off, last)
                              or string.sub(fallbacks, off, last))
  return { flat[p], evs[1], evs[2], nil, flat[p + H_WANT] }
end

-- The hints the nousu module takes (NOUSU.HINTS, daemon/redis-module/hints.c):
-- what swap_hint and take_hint do, in C, for every hinted run not walked.
-- Returns the number taken and the set of places of those it refused (stale:
-- taken the usual way here), or 0 and nil when the module is not loaded or
-- refused before writing anything (this code then takes them all itself).
-- An error after it wrote is the commit's error, as take_hint's would be.
local function module_hints(cfg, runs, walk, hints, niches, stash)
  local leave = {}
  for i, run in ipairs(runs) do
    if walk[i] and type(run) == 'number' then leave[#leave + 1] = run end
  end
  leave = #leave > 0 and cmsgpack.pack(leave) or ''
  local r
  if stash then
    r = redis.pcall('NOUSU.HINTSOF', stash, cfg.prefix, cfg.ttl_str, leave)
  else
    r = redis.pcall('NOUSU.HINTS', cfg.prefix, cfg.ttl_str, hints, leave)
  end
  if r.err then
    if string.find(r.err, 'partly written', 1, true) then error(r.err) end
    return 0, nil
  end
  local refused, nn = {}, r[3]
  for _, p in ipairs(r[2]) do refused[p] = true end
  for k = 1, #nn, 2 do niche_now(niches, nn[k], nn[k + 1]) end
  return r[1], refused
end

-- The hint at p as verify_hints reads it.
local function hint_at(flat, p)
  return { flat[p + H_OLD], flat[p + H_NEW], nil, flat[p + H_BUCKET], flat[p + H_NEWB],
           flat[p + H_NICHE], flat[p + H_NOW] }
end

-- The first difference between two decoded values, as a path, or nil.
local function differ(a, b, path)
  if type(a) ~= 'table' or type(b) ~= 'table' then
    if a ~= b then return path .. ' ' .. tostring(a) .. ' vs ' .. tostring(b) end
    return nil
  end
  for k, v in pairs(a) do
    local d = differ(v, b[k], path .. '.' .. tostring(k))
    if d then return d end
  end
  for k, v in pairs(b) do
    if a[k] == nil then return path .. '.' .. tostring(k) .. ' missing vs ' .. tostring(v) end
  end
  return nil
end

-- A hinted run must end in the same state, and must be one where no rule
-- could start to hold (a hint taken as is makes no checkpoint).
local function verify_hints(cfg, list, creators)
  for _, e in ipairs(list) do
    if creators[e[1]]:interesting() then
      error('nousu: hint for ' .. e[1] .. ' where a rule was in play')
    end
    local raw = redis.call('GET', state_key(cfg.prefix, e[1]))
    local h, new = e[2], cmsgpack.unpack(e[2][2])
    local d = differ(raw and cmsgpack.unpack(raw) or false, new, 'state')
    if d then error('nousu: hint for ' .. e[1] .. ' differs: ' .. d) end
    if tonumber(h[4]) ~= new.H or h[5] ~= (cmsgpack.unpack(h[1]).cur == nil)
        or h[6] ~= (new.niche or false) or h[7] ~= new.now then
      error('nousu: hint for ' .. e[1] .. ': bucket, new bucket, niche or now disagree with its state')
    end
  end
  return #list
end

local function commit_runs(keys, args)
  local req = cmsgpack.unpack(args[1])
  local cfg = parse_cfg(req[1])
  local stash = args[10] ~= nil and args[10] ~= '' and args[10] or nil
  local function unstash(r)
    if stash then redis.call('NOUSU.STASHDEL', stash) end
    return r
  end
  local ckey = cfg.prefix .. 'commit:' .. args[2]
  local done = redis.call('GET', ckey)
  if done then return unstash(done) end
  if not predecessor_done(cfg, args[5]) then return unstash(1) end
  local units, runs = req[2], req[3]
  for _, unit in ipairs(units) do
    if type(unit) == 'table' and unit[1] and redis.call('GET', cfg.prefix .. 'req:' .. unit[1]) then
      return unstash(0)
    end
  end
  if stash and not redis.call('NOUSU.STASHLEN', stash) then return 0 end -- lost: nothing written
  local dedup = dedup_new(cfg)
  local idlist = cmsgpack.unpack(args[3])
  local ids, places = idlist[1], idlist[2]
  local filtered = dedup:follow_chain(args[2], args[8], args[9]) and idlist[3]
  if filtered then
    dedup:prefetch(pick(ids, filtered), pick(places, filtered))
  else
    dedup:prefetch(ids, places)
  end
  local walk = runs_to_walk(dedup, ids, args[4])
  local tally, creators, order, niches, verify = {}, {}, {}, {}, {}
  local taken, refused = 0, nil -- refused: nil when the module was not used
  if (args[7] or stash) and not cfg.verify_hints then
    taken, refused = module_hints(cfg, runs, walk, args[7], niches, stash)
  end
  local flat -- unpacked only for the hinted runs taken here
  for i, run in ipairs(runs) do
    local p = type(run) == 'number' and run
    if not (p and refused and not walk[i] and not refused[p]) then -- else the module took it
      flat = flat or (p and cmsgpack.unpack(stash and redis.call('NOUSU.STASHGET', stash, 'hints')
                                             or args[7]))
      local key = p and not walk[i] and not refused and state_key(cfg.prefix, flat[p])
      local fresh
      if not key then
        fresh = false
      elseif cfg.verify_hints then
        fresh = redis.call('GET', key) == flat[p + H_OLD]
      else
        fresh = swap_hint(cfg, key, flat, p)
      end
      if fresh and not cfg.verify_hints then
        take_hint(cfg, key, flat, p, niches)
        taken = taken + 1
      else
        if p then
          run = hinted_run(flat, p, args[6], stash)
          runs[i] = run
        end
        take_run(cfg, state_of(cfg, run[1], creators, order), run, dedup, tally, walk[i])
        if fresh then verify[#verify + 1] = { run[1], hint_at(flat, p) } end
      end
    end
  end
  local out = {}
  for u, unit in ipairs(units) do
    local t = tally[u]
    if type(unit) == 'number' and not t then
      out[u] = unit -- a plain frame, all of it ok: its count alone
    else
      if type(unit) == 'number' then unit = { false, unit, {}, unit } end
      t = t or { dup = 0, too_old = {} }
      table.sort(t.too_old)
      local ok, ack = unit[4] - t.dup - #t.too_old, false
      if unit[1] then
        ack = make_ack(unit, ok, t.dup, t.too_old)
        redis.call('SET', cfg.prefix .. 'req:' .. unit[1], ack, 'EX', cfg.request_ttl)
      end
      out[u] = { 0, ok, t.dup, t.too_old, ack }
    end
  end
  local summaries, checkpoints = finish(cfg, order, niches)
  if cfg.verify_hints then taken = verify_hints(cfg, verify, creators) end
  dedup:flush_runs(ids, places)
  dedup:end_chain()
  local states = {}
  for i, run in ipairs(runs) do
    if type(run) == 'table' and run[5] then -- a hint taken stays a number
      states[#states + 1] = i
      states[#states + 1] = creators[run[1]].packed
    end
  end
  local reply = cmsgpack.pack({ out, summaries, checkpoints, taken, states, filtered and true or false })
  redis.call('SET', ckey, reply, 'EX', COMMIT_TTL_S)
  return unstash(reply)
end

----------------------------------------------------------------------------
-- nousu_alert: cooldown check, sequence number, stream append -- atomically,
-- so that several daemons sharing one Redis agree on cooldowns and seq.
-- ARGV[1] = msgpack [prefix, creator, kind_index, kind, ts, cooldown_ms,
--                    maxlen, topic, msg_head, msg_tail, grad_base]
-- The published message is msg_head .. msgpack(seq) .. msg_tail.
-- Returns msgpack [seq, msg], or [0] when a cooldown holds or a graduated
-- alert's crossing (grad_base) was alerted already.

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
  local st = state_get(prefix, c)
  if not st then return cmsgpack.pack({ 0 }) end
  local cd = st.cd[k + 1]
  if cd > 0 and math.abs(ts - cd) < cooldown then return cmsgpack.pack({ 0 }) end
  -- That crossing was alerted already: the daemon decided on a checkpoint
  -- made before, by another daemon, or by its own commit that ran while this
  -- alert's commit was still being answered (the committer is two deep).
  if a[11] and st.gbase == a[11] then return cmsgpack.pack({ 0 }) end
  st.cd[k + 1], st.lak, st.lat = ts, kind, ts
  if a[11] then st.gbase = a[11] end
  state_put_keepttl(prefix, c, st)
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
    local st = state_get(prefix, c)
    local old = st and st.bd
    if old and old ~= niche then redis.call('ZREM', board_key(prefix, old), c) end
    if st and add == 1 then
      redis.call('ZADD', board_key(prefix, niche), S(z), c)
      redis.call('ZADD', prefix .. 'top', S(z), c)
      st.bd, st.bz, st.bv = niche, z, vel
      state_put_keepttl(prefix, c, st)
    elseif old then
      redis.call('ZREM', board_key(prefix, old), c)
      redis.call('ZREM', prefix .. 'top', c)
      st.bd, st.bz, st.bv = nil, nil, nil
      state_put_keepttl(prefix, c, st)
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
    local st = state_get(prefix, c)
    local bd = st and st.bd
    local nnow = bd and num(redis.call('HGET', prefix .. 'nichenow', bd), 0) or 0
    if not bd or st.now < nnow - stale then
      redis.call('ZREM', key, c)
      redis.call('ZREM', prefix .. 'top', c)
      if bd then redis.call('ZREM', board_key(prefix, bd), c) end
    else
      res[#res + 1] = { c, st.niche or false, st.fol, st.bz or 0, st.bv or 0 }
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
      out[#out + 1] = { st:summary(), uniques(st.base, st.s.H, recent),
                        st.s.lak or false, st.s.lat or 0 }
    end
  end
  return cmsgpack.pack(out)
end

redis.register_function{ function_name = 'nousu_commit', callback = commit,
                         flags = { 'allow-cross-slot-keys' } }
redis.register_function{ function_name = 'nousu_commit_runs', callback = commit_runs,
                         flags = { 'allow-cross-slot-keys' } }
redis.register_function{ function_name = 'nousu_alert', callback = alert,
                         flags = { 'allow-cross-slot-keys' } }
redis.register_function{ function_name = 'nousu_board', callback = board,
                         flags = { 'allow-cross-slot-keys' } }
redis.register_function{ function_name = 'nousu_top', callback = top,
                         flags = { 'allow-cross-slot-keys' } }
redis.register_function{ function_name = 'nousu_creator', callback = creator,
                         flags = { 'allow-cross-slot-keys' } }
