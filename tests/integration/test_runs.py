"""The two commit forms of the Function library (daemon/nousu.lua) give the
same result: nousu_commit (events one by one, in batch order) and
nousu_commit_runs (events grouped into per-creator runs, the rest of each run
pre-aggregated, as daemon/plan.c and daemon/wire.c build them -- ported here).

Every commit goes to one Redis twice: under prefix "a:" as nousu_commit and
under prefix "b:" as nousu_commit_runs. The replies are compared, and after
the commits every key of one prefix against the other: creator states,
buckets, baseline hashes, unique-actor HLLs, dedup sets, acks, niches.
Each scenario also asserts it produced what it is meant to exercise
(checkpoints, too_old events, dups, replayed requests), so that no comparison
is vacuous."""
import bisect
import collections
import math
import os
import random
import re
import unittest

import msgpack

from harness import redis_with_library, table_ids

LUA = os.environ.get("NOUSU_LUA") or os.path.join(os.path.dirname(__file__),
                                                  "../../daemon/nousu.lua")
MIN = 60 * 1000
HOUR = 60 * MIN
DAY = 24 * HOUR
BUCKET_MS = HOUR
RECENT, HIST = 25, 168
LATENESS = 2 * HOUR
HORIZON = 120000
MICRO_MAX = 10000
WEIGHTS = [0, 1, 3, 4, 4, 5, 0, 0, 0]
# det array of nousu.lua (bench/function_microbench.py DET)
DET = [1000, 10000, 3 * DAY, 0.03, 50, 3, 4, 0.03, 0.2, 1.5, DAY, 4, 30, 0.3]
# small, so that the scenarios' ids fill several generations of sets per
# slice (see Dedup in nousu.lua)
DEDUP_BUCKETS = 2
DEDUP_SET_IDS = 16
VIEW, LIKE, COMMENT, SHARE, SAVE, MENTION, FOLLOW, UNFOLLOW, POST = range(9)
T0 = (1_700_000_000_000 // HOUR) * HOUR  # event time, on an hour
W0 = T0 + 3 * DAY  # wall clock of the commits (only dedup slices read it)


def pk(obj):
    # cmsgpack reads msgpack str, not bin: pack bytes as str like store.c does
    return msgpack.packb(obj, use_bin_type=False)


def up(b):
    return msgpack.unpackb(b, raw=True, strict_map_key=False)


# ---- the batch, as the daemon holds it after decoding -------------------------

class Ev:
    """One accepted event (event.h); None stands for an absent field."""

    def __init__(self, creator, t, ts, n=1, idh=None, actor=None, sponsored=None, fol=None,
                 niche=None):
        self.creator, self.t, self.ts, self.n = creator, t, ts, n
        self.idh, self.actor, self.sponsored, self.fol, self.niche = idh, actor, sponsored, fol, niche


class Unit:
    """A frame or request: items are Ev (accepted) or a reason string
    (rejected by the decoder); whole: the frame rejected whole."""

    def __init__(self, rid, items, whole=False):
        self.rid, self.items, self.whole = rid, items, whole


def whole_rejected():
    return Unit(None, ["malformed"], whole=True)


# ---- port of daemon/plan.c + daemon/wire.c ------------------------------------

def is_interaction(t):
    return LIKE <= t <= MENTION


def id_str(h):
    """pack_id: the 64-bit hash as a signed decimal."""
    return str(h - (1 << 64) if h >= 1 << 63 else h)


def id_place(h):
    """id_place: the top 16 bits of the hash."""
    return h >> 48


def wire_event(e, i, unit1=0):
    """pack_event: [i, creator, type, ts, n, id, actor, sponsored, followers,
    niche, id place(, unit)]; the creator is nil inside a run."""
    a = [i, None if unit1 else e.creator, e.t, e.ts, e.n,
         id_str(e.idh) if e.idh is not None else None,
         e.actor if e.actor else None,
         1 if e.sponsored == 1 else None,
         e.fol if e.fol is not None and e.fol >= 0 else None,
         e.niche if e.niche else None,
         id_place(e.idh) if e.idh is not None else 0]
    if unit1:
        a.append(unit1)
    return a


def unit_head(u):
    """pack_unit_head: [rid or nil, total, [[i, reason]...]]."""
    pre = [[-1 if u.whole else i, it] for i, it in enumerate(u.items) if isinstance(it, str)]
    return [u.rid, 1 if u.whole else len(u.items), pre]


def accepted(units):
    """collect(): (unit, item, event) of the accepted events in batch order."""
    return [(ui, i, it) for ui, u in enumerate(units) for i, it in enumerate(u.items)
            if isinstance(it, Ev)]


def events_form(cfg, units):
    """wire_pack_events: ARGV[1] of nousu_commit."""
    out = []
    for u in units:
        evs = [wire_event(it, i) for i, it in enumerate(u.items) if isinstance(it, Ev)]
        out.append(unit_head(u) + [evs])
    return pk([cfg, out])


def plan_runs(units):
    """plan_build: the accepted events by creator (in order of first
    appearance), cut where the bucket changes or an event carries followers.
    Also whether an id or a request id repeats (the daemon then sends the
    events form only)."""
    evs = accepted(units)
    by_creator = collections.OrderedDict()
    for pe in evs:
        by_creator.setdefault(pe[2].creator, []).append(pe)
    runs = []
    for c, lst in by_creator.items():
        first = None
        for pe in lst:
            e = pe[2]
            if first is None or not (e.ts // BUCKET_MS == first.ts // BUCKET_MS
                                     and (e.fol is None or e.fol < 0)):
                first = e
                runs.append([])
            runs[-1].append(pe)
    ids = [pe[2].idh for pe in evs if pe[2].idh is not None]
    rids = [u.rid for u in units if u.rid]
    repeats = len(set(ids)) != len(ids) or len(set(rids)) != len(rids)
    return runs, repeats


def wire_rest(run):
    """pack_rest: [n, ts_min, ts_max, counts[9], E, ia, se, actors, niche,
    nichets, detail] of every event of the run but the first."""
    rest = run[1:]
    counts = [0] * 9
    E = ia = se = 0
    actors = []
    niche, nichets = None, 0
    for _, _, e in rest:
        w = WEIGHTS[e.t] * e.n
        counts[e.t] += e.n
        E += w
        if e.sponsored == 1:
            se += w
        if e.actor and is_interaction(e.t):
            ia += e.n
            actors.append(e.actor)
        # the newest ts wins; among equal ones the later event
        if e.niche and (niche is None or e.ts >= nichets):
            niche, nichets = e.niche, e.ts
    detail = pk([wire_event(e, i, ui + 1) for ui, i, e in rest])
    return [len(rest), min(e.ts for _, _, e in rest), max(e.ts for _, _, e in rest), counts,
            E, ia, se, actors, niche, nichets, detail]


def runs_form(cfg, units):
    """wire_pack_runs + wire_pack_ids: ARGV[1], ARGV[3], ARGV[4] of
    nousu_commit_runs, and the runs (for the scenario's counts)."""
    runs, repeats = plan_runs(units)
    assert not repeats, "the daemon sends such a batch as nousu_commit only"
    in_runs = [0] * len(units)
    for ui, _, _ in accepted(units):
        in_runs[ui] += 1
    # a frame with no request id and no rejection: its count alone
    wunits = [unit_head(u) + [in_runs[k]] if u.rid or unit_head(u)[2] else in_runs[k]
              for k, u in enumerate(units)]
    wruns = []
    for run in runs:
        ui, i, e = run[0]
        wruns.append([e.creator, wire_event(e, i, ui + 1), wire_rest(run) if len(run) > 1 else None])
    refs = []  # (hash, run 1-based)
    for k, run in enumerate(runs):
        for _, _, e in run:
            if e.idh is not None:
                refs.append((e.idh, k + 1))
    refs.sort(key=lambda r: id_place(r[0]))  # by place (the order inside one is free)
    ids = [[id_str(h) for h, _ in refs], [id_place(h) for h, _ in refs]]
    return pk([cfg, wunits, wruns]), pk(ids), pk([k for _, k in refs]), runs


# ---- comparisons ----------------------------------------------------------------

def assert_same(a, b, path="$"):
    """Deep equality, numbers within 1e-9."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            raise AssertionError("%s: keys differ: only in a %r, only in b %r"
                                 % (path, sorted(set(a) - set(b), key=repr)[:10],
                                    sorted(set(b) - set(a), key=repr)[:10]))
        for k in a:
            assert_same(a[k], b[k], "%s.%s" % (path, k.decode() if isinstance(k, bytes) else k))
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            raise AssertionError("%s: lengths differ: %d vs %d\n a=%r\n b=%r"
                                 % (path, len(a), len(b), a, b))
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, "%s[%d]" % (path, k))
    elif (isinstance(a, (int, float)) and isinstance(b, (int, float))
          and not isinstance(a, bool) and not isinstance(b, bool)):
        if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9):
            raise AssertionError("%s: %r vs %r" % (path, a, b))
    elif a != b:
        raise AssertionError("%s: %r vs %r" % (path, a, b))


def normal_reply(raw):
    """A commit reply with its acks decoded, the creators sorted and the
    checkpoints grouped by creator (in event order within each); the count
    of hints taken that nousu_commit_runs adds is left out (none here)."""
    units, summaries, checkpoints = up(raw)[:3]
    # nousu_commit_runs answers a plain frame with its count alone
    units = [[0, u, 0, [], False] if isinstance(u, int) else u for u in units]
    units = [u[:4] + [up(u[4]) if isinstance(u[4], bytes) else u[4]] for u in units]
    return [units, sorted(summaries, key=lambda s: s[0]),
            sorted(checkpoints, key=lambda s: s[0])]  # stable: per-creator order kept


def days_hist(now, first):
    H = now // BUCKET_MS
    span_end = (H - RECENT + 1) * BUCKET_MS
    span_start = span_end - HIST * BUCKET_MS
    d = (span_end - max(span_start, first)) / DAY
    return max(0, min(d, HIST * BUCKET_MS / DAY))


def rules_of(s):
    """Which rules hold on a summary (Creator:conditions, cooldowns aside):
    the set of 'graduated', 'volume', 'jump'."""
    c, now, first, fol, folts, ef, eft, below, gbase, rE, hE = s[:11]
    d, out = DET, set()
    if fol > d[1]:
        if 0 < below < folts and below != gbase:
            out.add("graduated")
        return out
    if fol < d[0] or now - first < d[2]:
        return out
    mu = (hE + d[3] * fol) / (days_hist(now, first) + 1)
    if rE >= d[4] and rE >= d[5] * mu and (rE - mu) / math.sqrt(mu + 1) >= d[6] and rE >= d[7] * fol:
        out.add("volume")
    if ef > 0 and eft < folts and fol >= (1 + d[8]) * ef and rE < d[9] * mu:
        out.add("jump")
    return out


def zipf_picker(rng, n, s=1.1, name="z%d"):
    cum, total = [], 0.0
    for k in range(1, n + 1):
        total += 1 / k ** s
        cum.append(total)
    return lambda: name % bisect.bisect(cum, rng.random() * total)


def hinted(run, hint, want):
    """A run of the runs form as the daemon sends it with a hint (wire.c):
    its place in ARGV[7], ARGV[6] (its events) and ARGV[7] (flat: creator,
    want, offset, length, then the hint's objects, its actors last)."""
    fallbacks = pk([run[1], run[2]])
    old, new, actors, h, new_bucket, niche, now = hint
    flat = [run[0], bool(want), 1, len(fallbacks), old, new, str(h), new_bucket, niche, now,
            len(actors)] + actors
    return 1, fallbacks, pk(flat)


class Runs(unittest.TestCase):
    def setUp(self):
        self.redis = redis_with_library(self, LUA, "nousu-runs-")
        self.r = self.redis.client
        self.n_commits = 0
        self.stats = collections.Counter()
        self.creators = set()
        self.cp_rules = collections.Counter()
        self.ids_used = set()

    @staticmethod
    def cfg(prefix, wall):
        return [prefix, wall, BUCKET_MS, RECENT, HIST, LATENESS, HORIZON, 86400, MICRO_MAX,
                30 * 86400, WEIGHTS, DET, DEDUP_BUCKETS, DEDUP_SET_IDS]

    def new_id(self, rng):
        while True:
            h = rng.getrandbits(64)
            if h not in self.ids_used:
                self.ids_used.add(h)
                return h

    # -- one commit, both forms ---------------------------------------------------

    def commit(self, units, wall):
        """Commit units under a: as nousu_commit and under b: as
        nousu_commit_runs (same commit id) and compare the replies. Returns the
        decoded reply of the events form."""
        self.n_commits += 1
        cid = "cid:%d" % self.n_commits
        for _, _, e in accepted(units):
            self.creators.add(e.creator)
        got_a = self.r.execute_command("FCALL", "nousu_commit", 0,
                                       events_form(self.cfg("a:", wall), units), cid)
        argv1, ids, owners, runs = runs_form(self.cfg("b:", wall), units)
        got_b = self.r.execute_command("FCALL", "nousu_commit_runs", 0, argv1, cid, ids, owners)
        self.assertIsInstance(got_b, bytes, "nousu_commit_runs refused commit %s" % cid)
        ra, rb = normal_reply(got_a), normal_reply(got_b)
        try:
            assert_same(ra, rb, "reply(%s)" % cid)
        except AssertionError as e:
            raise AssertionError("commit %s: nousu_commit vs nousu_commit_runs: %s" % (cid, e))
        self.tally(units, ra, runs)
        return ra

    def tally(self, units, reply, runs):
        out, _, cps = reply
        st = self.stats
        st["commits"] += 1
        st["events"] += len(accepted(units))
        st["ok"] += sum(u[1] for u in out)
        st["dup"] += sum(u[2] for u in out)
        st["too_old"] += sum(len(u[3]) for u in out)
        st["replayed_units"] += sum(1 for u in out if u[0] == 1)
        st["checkpoints"] += len(cps)
        st["runs"] += len(runs)
        st["runs_with_rest"] += sum(1 for r in runs if len(r) > 1)
        st["events_in_rests"] += sum(len(r) - 1 for r in runs)
        for cp in cps:
            for rule in rules_of(cp):
                self.cp_rules[rule] += 1

    # -- everything a prefix holds --------------------------------------------------

    def world(self, prefix):
        r = self.r
        w = {"state": {}, "b": {}, "e": {}, "u": {}}
        for c in sorted(self.creators):
            base = "%s{%s}" % (prefix, c)
            raw = r.get(base)
            w["state"][c] = up(raw) if raw is not None else None
            w["b"][c] = {int(h): up(v) for h, v in r.hgetall(base + ":b").items()}
            w["e"][c] = {int(h): float(v) for h, v in r.hgetall(base + ":e").items()}
            w["u"][c] = {int(k.rsplit(b":", 1)[1]): r.pfcount(k)
                         for k in r.scan_iter(match=base + ":u:*", count=1000)}
        n = len(prefix)
        # the dedup: each slice's generations, and every set or table
        # (ids:<slice> the generations, ids:<slice>:<g> the bitmap of sets given a TTL,
        # ids:<slice>:<g>:t<p> a table of the module, ids:chain the last commit and its chain)
        w["ids"] = {k[n:]: (r.get(k) if k.endswith(b":chain") else
                            table_ids(r.get(k)) if re.search(rb":t\d+$", k) else
                            up(r.get(k)) if k.count(b":") == 2 else
                            r.get(k) if k.count(b":") == 3 else sorted(r.smembers(k)))
                    for k in r.scan_iter(match=prefix + "ids:*", count=1000)}
        w["req"] = {k[n:]: up(r.get(k)) for k in r.scan_iter(match=prefix + "req:*", count=1000)}
        w["commit"] = {k[n:]: normal_reply(r.get(k))
                       for k in r.scan_iter(match=prefix + "commit:*", count=1000)}
        w["nichenow"] = {k: float(v) for k, v in r.hgetall(prefix + "nichenow").items()}
        # every key: its type and whether it has a TTL
        w["keys"] = {k[n:]: (r.type(k), r.ttl(k) > 0)
                     for k in r.scan_iter(match=prefix + "*", count=1000)}
        return w

    def assert_worlds_equal(self):
        wa, wb = self.world("a:"), self.world("b:")
        try:
            assert_same(wa, wb, "world")
        except AssertionError as e:
            raise AssertionError("state after the commits, a: (nousu_commit) vs b: "
                                 "(nousu_commit_runs): %s" % e)
        # the comparison covered something
        self.assertGreater(sum(1 for s in wa["state"].values() if s is not None), 0)
        self.assertGreater(sum(len(v) for v in wa["u"].values()), 0)
        return wa

    def report(self, name):
        print("\n%s: %s; checkpoint rules %s" % (name, dict(sorted(self.stats.items())),
                                                  dict(self.cp_rules)))

    # -- random events -----------------------------------------------------------

    @staticmethod
    def random_type(rng):
        return rng.choices(range(9), weights=[30, 30, 10, 5, 5, 3, 5, 2, 2])[0]

    # ---- scenario 1: Zipf creators, late and too old events ---------------------

    def test_zipf_creators_late_and_too_old(self):
        rng = random.Random(101)
        pick = zipf_picker(rng, 400)
        niches = ["cats", "dogs", "tech", "food"]
        n_commits, n_units, per_unit = 5, 4, 220
        total, k = n_commits * n_units * per_unit, 0
        start = T0 + 17 * MIN
        for ci in range(n_commits):
            units = []
            for ui in range(n_units):
                items = []
                for _ in range(per_unit):
                    clock = start + 3 * HOUR * k // total
                    k += 1
                    if rng.random() < 0.02:
                        items.append("bad_ts")
                        continue
                    x = rng.random()
                    if x < 0.78:
                        lag = rng.randrange(60000)
                    elif x < 0.92:
                        lag = rng.randrange(100 * MIN)  # late: often an older hour
                    else:
                        lag = rng.randrange(2 * HOUR + MIN, 3 * HOUR)  # beyond lateness
                    if rng.random() < 0.01:
                        # niches at one ts: a run's first event, then a rest
                        # (the newest niche wins; among equal ts the later)
                        c, ns = pick(), rng.sample(niches, 3)
                        items.append(Ev(c, LIKE, clock - lag, fol=rng.randrange(100, 20000),
                                        niche=ns[0]))
                        items.append(Ev(c, VIEW, clock - lag, niche=ns[1]))
                        items.append(Ev(c, COMMENT, clock - lag, niche=ns[2], actor="t"))
                        continue
                    t = self.random_type(rng)
                    y = rng.random()
                    items.append(Ev(
                        pick(), t, clock - lag,
                        n=1 if rng.random() < 0.9 else rng.randint(2, 20),
                        idh=self.new_id(rng) if rng.random() < 0.5 else None,
                        actor="u%d" % rng.randrange(3000) if rng.random() < 0.85 else None,
                        sponsored=1 if y < 0.1 else (0 if y < 0.15 else None),
                        fol=rng.randrange(100, 20000) if rng.random() < 0.03 else None,
                        niche=rng.choice(niches) if rng.random() < 0.05 else None))
                units.append(Unit("s1-%d-%d" % (ci, ui) if ui % 2 == 0 else None, items))
            if ci == 2:
                units.insert(1, whole_rejected())
            self.commit(units, W0 + ci * 5000)
        self.assert_worlds_equal()
        self.report("zipf")
        st = self.stats
        self.assertGreaterEqual(st["events"], 4000)
        self.assertGreater(st["too_old"], 0)
        self.assertGreater(st["runs_with_rest"], 0)
        self.assertGreater(st["events_in_rests"], st["events"] // 3)

    # ---- scenario 2: micro creators, history then a burst: checkpoints ----------

    def test_micro_creators_burst_checkpoints(self):
        rng = random.Random(202)
        creators = ["m%d" % i for i in range(14)]
        niche = {c: "k%d" % (i % 3) for i, c in enumerate(creators)}
        base_fol = {c: 3000 + 40 * (i % 4) for i, c in enumerate(creators)}
        burst_at = T0 + 5 * MIN

        # six days of steady history, one commit a day: an event every ~2 h,
        # a follower count every ~6 h, niches now and then
        for day in range(6, 0, -1):
            evs = []
            for c in creators:
                t = burst_at - day * DAY
                j = 0
                while t < burst_at - (day - 1) * DAY - 10 * MIN:
                    j += 1
                    ty = rng.choice([LIKE, LIKE, COMMENT, VIEW, SHARE])
                    evs.append(Ev(c, ty, t, actor="h%d" % rng.randrange(500),
                                  idh=self.new_id(rng) if rng.random() < 0.3 else None,
                                  fol=base_fol[c] + rng.randrange(-20, 20) if j % 3 == 0 else None,
                                  niche=niche[c] if rng.random() < 0.3 else None))
                    t += rng.randrange(90 * MIN, 150 * MIN)
            evs.sort(key=lambda e: e.ts)
            half = len(evs) // 2
            self.commit([Unit("h%d-0" % day, evs[:half]), Unit(None, evs[half:])],
                        W0 + (6 - day) * 5000)

        # m13: cooldowns of rising and suspicious stored ahead of its event
        # time (cooling starts 25 minutes into the burst hour)
        for kind in (0, 1):
            self.alert_both("m13", burst_at + DAY + 25 * MIN, kind)

        # the burst: distinct actors liking, over three commits in the hour,
        # follower counts now and then (they cut runs)
        burst = []
        for i, c in enumerate(creators):
            if i == 13:
                # crosses the volume rule before its cooldowns start
                for j in range(200):
                    burst.append(Ev(c, LIKE, burst_at + 20 * MIN + rng.randrange(10 * MIN),
                                    actor="f%d" % j))
            if i >= 12:
                continue  # m12: steady only
            size = 0 if i in (9, 10, 11) else rng.randrange(150, 320)
            for j in range(size):
                ts = burst_at + rng.randrange(50 * MIN)
                x = rng.random()
                ty = LIKE if x < 0.8 else (COMMENT if x < 0.9 else VIEW)
                burst.append(Ev(c, ty, ts, actor="b%s-%d" % (c, j),
                                n=1 if rng.random() < 0.95 else 2,
                                idh=self.new_id(rng) if rng.random() < 0.5 else None,
                                sponsored=1 if rng.random() < 0.05 else None,
                                fol=base_fol[c] + j if rng.random() < 0.02 else None,
                                niche=niche[c] if rng.random() < 0.1 else None))
            # m9: a follower jump on flat engagement; m10: graduates;
            # m11: a jump then back (jump holds on an interval)
            if i == 9:
                for j in range(30):
                    burst.append(Ev(c, LIKE, burst_at + rng.randrange(50 * MIN), actor="j%d" % j))
                burst.append(Ev(c, VIEW, burst_at + 20 * MIN, fol=int(base_fol[c] * 1.5)))
            if i == 10:
                for j in range(30):
                    burst.append(Ev(c, LIKE, burst_at + rng.randrange(50 * MIN), actor="g%d" % j))
                burst.append(Ev(c, VIEW, burst_at + 25 * MIN, fol=12000))
            if i == 11:
                for j in range(30):
                    burst.append(Ev(c, COMMENT, burst_at + rng.randrange(50 * MIN), actor="k%d" % j))
                burst.append(Ev(c, VIEW, burst_at + 10 * MIN, fol=int(base_fol[c] * 1.4)))
                burst.append(Ev(c, VIEW, burst_at + 30 * MIN, fol=base_fol[c]))
        burst.sort(key=lambda e: e.ts)
        # a little disorder: neighbours swapped
        for _ in range(len(burst) // 10):
            p = rng.randrange(len(burst) - 1)
            burst[p], burst[p + 1] = burst[p + 1], burst[p]
        parts = [burst[:len(burst) // 3], burst[len(burst) // 3:2 * len(burst) // 3],
                 burst[2 * len(burst) // 3:]]
        wall = W0 + 60000
        first_cp = {}
        for pi, part in enumerate(parts):
            q = len(part) // 2
            reply = self.commit([Unit("burst%d" % pi, part[:q]), Unit(None, part[q:])], wall)
            wall += 5000
            for cp in reply[2]:
                first_cp.setdefault(cp[0], cp)
            if pi == 0:
                # alerts for the first checkpoints: cooldowns stored in the
                # state, read by the later commits of both forms
                for c, cp in sorted(first_cp.items()):
                    self.alert_both(c.decode(), cp[1])

        # the next hour: more likes, a follower count, late ones from the
        # burst hour (some beyond the lateness window)
        nxt = []
        for i, c in enumerate(creators):
            for j in range(rng.randrange(20, 80)):
                x = rng.random()
                ts = (burst_at + HOUR + rng.randrange(40 * MIN) if x < 0.8 else
                      burst_at + rng.randrange(50 * MIN) if x < 0.93 else
                      burst_at - rng.randrange(2 * HOUR, 4 * HOUR))
                nxt.append(Ev(c, rng.choice([LIKE, LIKE, COMMENT, SHARE]), ts,
                              actor="n%s-%d" % (c, j),
                              fol=base_fol[c] + 400 if rng.random() < 0.02 else None,
                              niche="late" if rng.random() < 0.02 and c != "m12" else None))
        # m12: niches at one ts, a run's first event (with followers) and its rest
        tie = burst_at + HOUR + 45 * MIN
        nxt += [Ev("m12", LIKE, tie, fol=3001, niche="t1", actor="x"),
                Ev("m12", VIEW, tie, niche="t2"), Ev("m12", VIEW, tie, niche="t3"),
                Ev("m12", VIEW, tie - 1000, niche="t4")]
        ontime = sorted((e for e in nxt if e.ts >= burst_at + HOUR), key=lambda e: e.ts)
        for e in (e for e in nxt if e.ts < burst_at + HOUR):
            ontime.insert(rng.randrange(len(ontime) + 1), e)
        nxt = ontime
        self.commit([Unit("next", nxt)], wall)

        self.assert_worlds_equal()
        self.report("micro")
        st = self.stats
        self.assertGreaterEqual(st["events"], 2000)
        self.assertGreater(st["checkpoints"], 0)
        self.assertGreater(self.cp_rules["volume"], 0)  # the rising rule
        self.assertGreater(self.cp_rules["jump"], 0)
        self.assertGreater(self.cp_rules["graduated"], 0)
        self.assertGreater(st["too_old"], 0)
        self.assertGreater(st["runs_with_rest"], 0)

    def alert_both(self, c, ts, kind=0):
        name = ["rising", "suspicious", "graduated"][kind]
        replies = []
        for prefix in ("a:", "b:"):
            a = pk([prefix, c, kind, name, ts, DAY, 1000, name + "._", b"\x81\xa3seq", b"",
                    None])
            replies.append(up(self.r.execute_command("FCALL", "nousu_alert", 0, a)))
        assert_same(replies[0], replies[1], "alert(%s)" % c)
        self.assertNotEqual(replies[0], [0])

    # ---- scenario 3: ids, then resent ones (dups) ------------------------------

    def test_ids_and_dups(self):
        rng = random.Random(303)
        creators = ["d%d" % i for i in range(60)]
        sent = []  # (creator, ts) of earlier events, by id
        by_id = {}
        start = T0 + 7 * MIN
        walls = [W0, W0 + 20000, W0 + 40000, W0 + 65000, W0 + 300000]
        for ci, wall in enumerate(walls):
            ids_here = set()
            units = []
            for ui in range(3):
                items = []
                for j in range(260):
                    if rng.random() < 0.01:
                        items.append("bad_id")
                        continue
                    resend = ci > 0 and rng.random() < 0.15
                    if resend:
                        h = rng.choice(sent)
                        if h in ids_here:
                            resend = False
                    if not resend:
                        h = self.new_id(rng)
                        sent.append(h)
                    ids_here.add(h)
                    if resend and rng.random() < 0.5:
                        c, ts = by_id[h]  # the same event again
                    else:
                        c = rng.choice(creators)
                        x = rng.random()
                        ts = start + ci * 25 * MIN + rng.randrange(25 * MIN)
                        if x < 0.06:
                            ts -= rng.randrange(2 * HOUR + 30 * MIN, 3 * HOUR)  # too old
                        elif x < 0.15:
                            ts -= rng.randrange(80 * MIN)
                    by_id.setdefault(h, (c, ts))
                    items.append(Ev(c, self.random_type(rng), ts, idh=h,
                                    actor="u%d" % rng.randrange(400) if rng.random() < 0.9 else None,
                                    sponsored=1 if rng.random() < 0.1 else None,
                                    fol=rng.randrange(1000, 9000) if rng.random() < 0.02 else None))
                units.append(Unit("s3-%d-%d" % (ci, ui) if ui != 1 else None, items))
            self.commit(units, wall)
        w = self.assert_worlds_equal()
        # both forms filled several generations of sets in a slice
        slices = [gens for k, gens in w["ids"].items() if k.count(b":") == 1]
        self.assertGreater(max(len(gens) for gens in slices), 1)
        self.report("ids")
        st = self.stats
        self.assertGreaterEqual(st["events"], 3500)
        self.assertGreater(st["dup"], 0)
        self.assertGreater(st["too_old"], 0)
        self.assertGreater(st["runs_with_rest"], 0)

    # ---- scenario 4: a request committed before ----------------------------------

    def dump_prefix(self, prefix):
        return {k: (self.r.type(k), self.r.dump(k), self.r.ttl(k) > 0)
                for k in self.r.scan_iter(match=prefix + "*", count=1000)}

    def commit_refused(self, units, wall):
        """A commit holding a request committed before: nousu_commit_runs
        must answer 0 and write nothing; then both prefixes get the events
        form (as store_commit falls back), whose replies are compared."""
        self.n_commits += 1
        cid = "cid:%d" % self.n_commits
        for _, _, e in accepted(units):
            self.creators.add(e.creator)
        before = self.dump_prefix("b:")
        argv1, ids, owners, runs = runs_form(self.cfg("b:", wall), units)
        got = self.r.execute_command("FCALL", "nousu_commit_runs", 0, argv1, cid, ids, owners)
        self.assertEqual(got, 0)
        self.assertEqual(self.dump_prefix("b:"), before, "nousu_commit_runs refused but wrote")
        self.stats["refused"] += 1
        replies = [normal_reply(self.r.execute_command(
            "FCALL", "nousu_commit", 0, events_form(self.cfg(p, wall), units), cid))
            for p in ("a:", "b:")]
        assert_same(replies[0], replies[1], "reply(%s)" % cid)
        self.tally(units, replies[0], runs)
        return replies[0]

    def test_request_already_committed(self):
        rng = random.Random(404)
        creators = ["q%d" % i for i in range(10)]

        def evs(n, base):
            return [Ev(rng.choice(creators), self.random_type(rng), base + rng.randrange(30 * MIN),
                       idh=self.new_id(rng) if rng.random() < 0.5 else None,
                       actor="u%d" % rng.randrange(50)) for _ in range(n)]

        r1 = Unit("r1", evs(40, T0))
        r2 = Unit("r2", evs(40, T0) + ["bad_n"])
        first = self.commit([r1, r2, Unit(None, evs(30, T0))], W0)

        # r1 again, with a frame and a new request: the runs form refuses the
        # whole commit without writing; the daemon then sends the events form
        units = [Unit(None, evs(30, T0 + HOUR)), r1, Unit("r3", evs(40, T0 + HOUR))]
        ra = self.commit_refused(units, W0 + 5000)
        # r1 answered with its first ack, nothing applied for it
        self.assertEqual(ra[0][1][:4], [1, 0, 0, []])
        self.assertEqual(ra[0][1][4], first[0][0][4])
        self.assertEqual(ra[0][0][0], 0)
        self.assertEqual(ra[0][2][0], 0)
        self.assertGreater(ra[0][2][1], 0)

        # r3 now committed too: a commit holding it is refused again
        ra = self.commit_refused([Unit("r4", evs(10, T0 + HOUR)), Unit("r3", units[2].items)],
                                 W0 + 9000)
        self.assertEqual([u[0] for u in ra[0]], [0, 1])
        # and a commit of new requests only goes through in the runs form
        self.commit([Unit("r5", evs(20, T0 + HOUR)), Unit(None, evs(20, T0 + HOUR))], W0 + 9000)
        self.assert_worlds_equal()
        self.report("replay")
        self.assertEqual(self.stats["replayed_units"], 2)
        self.assertEqual(self.stats["refused"], 2)


class Chain(unittest.TestCase):
    """The dedup chain (nousu.lua, Dedup:follow_chain): a daemon's filter
    (daemon/idfilter.c) is trusted -- only the ids it flags are looked up --
    along an unbroken run of that daemon's commits, once no id from before
    the run can be live; any other writer's commit breaks the run."""

    def setUp(self):
        self.redis = redis_with_library(self, LUA, "nousu-chain-")
        self.r = self.redis.client
        self.rng = random.Random(77)
        self.n = 0
        self.w = (W0 // MIN) * MIN + 1000  # early in a 60 s slice

    def fresh(self, n):
        return [self.rng.getrandbits(64) for _ in range(n)]

    def send(self, wall, hashes, maybe=(), expect="", claim="", cid=None):
        """One runs-form commit of hashes at wall; maybe: those the daemon's
        filter flags. Returns (ok, dup, filtered, commit id)."""
        self.n += 1
        cid = cid or "d:%d" % self.n
        evs = [Ev("c%d" % (i % 5), LIKE, T0 + 10 * MIN + i, idh=h) for i, h in enumerate(hashes)]
        argv1, ids, owners, _ = runs_form(Runs.cfg("nousu:", wall), [Unit(None, evs)])
        if claim != "":
            idl = up(ids)
            flagged = {id_str(h).encode() for h in maybe}
            ids = pk(idl + [[k + 1 for k, x in enumerate(idl[0]) if x in flagged]])
        raw = self.r.execute_command("FCALL", "nousu_commit_runs", 0, argv1, cid, ids, owners,
                                     "", "", pk([]), expect, str(claim))
        out = up(raw)
        u = out[0][0]
        ok, dup = (u, 0) if isinstance(u, int) else (u[1], u[2])
        return ok, dup, out[5], cid

    def chain(self):
        """[last commit, start, empty]: P:ids:chain less its counts."""
        return self.r.get("nousu:ids:chain").decode().split(" ")[:3]

    def counts(self):
        return self.r.get("nousu:ids:chain").decode().split(" ")[3]

    def test_filter_trusted_along_one_chain_from_an_empty_redis(self):
        w, a, b = self.w, self.fresh(20), self.fresh(10)
        claim = w - 1
        ok, dup, filtered, c1 = self.send(w, a, claim=claim)
        self.assertEqual((ok, dup, filtered), (20, 0, False))  # no chain to follow yet
        self.assertEqual(self.chain(), [c1, str(w), "1"])  # ... but no ids were live
        ok, dup, filtered, c2 = self.send(w + 1000, b + a[:3], maybe=a[:3], expect=c1, claim=claim)
        self.assertEqual((ok, dup, filtered), (10, 3, True))  # the flagged ids are looked up
        # ... and only those: an id the filter does not flag is taken as new
        # (why the filter must hold every id sent)
        ok, dup, filtered, c3 = self.send(w + 2000, a[3:5], expect=c2, claim=claim)
        self.assertEqual((ok, dup, filtered), (2, 0, True))
        # without a claim, every id is looked up
        ok, dup, filtered, c4 = self.send(w + 3000, a[5:8], expect=c3)
        self.assertEqual((ok, dup, filtered), (0, 3, False))
        self.assertEqual(self.chain(), [c4, str(w), "1"])
        # a filter newer than the chain (the daemon reset it) is not trusted
        ok, dup, filtered, c5 = self.send(w + 4000, a[8:10], expect=c4, claim=w + 3500)
        self.assertEqual((ok, dup, filtered), (0, 2, False))
        # the events form follows the chain too; a commit without an id ends it
        evs = [Ev("c0", LIKE, T0 + 11 * MIN, idh=h) for h in self.fresh(2)]
        self.r.execute_command("FCALL", "nousu_commit", 0,
                               events_form(Runs.cfg("nousu:", w + 5000), [Unit(None, evs)]),
                               "e:1", "", c5)
        self.assertEqual(self.chain(), ["e:1", str(w), "1"])
        self.r.execute_command("FCALL", "nousu_commit", 0,
                               events_form(Runs.cfg("nousu:", w + 6000), [Unit(None, evs)]))
        self.assertIsNone(self.r.get("nousu:ids:chain"))

    def test_another_writer_breaks_the_chain_until_its_ids_are_dead(self):
        w, claim = self.w, self.w - 1
        _, _, _, c1 = self.send(w, self.fresh(10), claim=claim)
        _, _, filtered, c2 = self.send(w + 1000, self.fresh(10), expect=c1, claim=claim)
        self.assertTrue(filtered)
        x = self.fresh(6)
        self.send(w + 1500, x, cid="other:1")  # another daemon, its ids unknown to the filter
        ok, dup, filtered, c3 = self.send(w + 2000, x[:2] + self.fresh(3), expect=c2, claim=claim)
        self.assertEqual((ok, dup, filtered), (3, 2, False))
        self.assertEqual(self.chain(), [c3, str(w + 2000), "0"])  # a new chain, ids were live
        ok, dup, filtered, c4 = self.send(w + 3000, x[2:4], expect=c3, claim=claim)
        self.assertEqual((ok, dup, filtered), (0, 2, False))  # held, but x may be live
        # two slices after the chain's first, behind the oldest live one: x is dead
        start_slice = (w + 2000) // MIN
        w_trust = (start_slice + 2) * MIN + HORIZON
        _, _, filtered, c5 = self.send(w_trust - 1000, self.fresh(2), expect=c4, claim=claim)
        self.assertFalse(filtered)
        _, _, filtered, c6 = self.send(w_trust, self.fresh(2), expect=c5, claim=claim)
        self.assertTrue(filtered)
        # a lost commit (expect names one that never landed) breaks it too
        _, _, filtered, _ = self.send(w_trust + 1000, self.fresh(2), expect="d:999", claim=claim)
        self.assertFalse(filtered)

    def test_ids_written_outside_the_chain_break_it(self):
        w, claim = self.w, self.w - 1
        _, _, _, c1 = self.send(w, self.fresh(10), claim=claim)
        _, _, filtered, c2 = self.send(w + 1000, self.fresh(10), expect=c1, claim=claim)
        self.assertTrue(filtered)
        slice_ = w // MIN
        self.assertEqual(self.counts(), "%d:20" % slice_)  # the live slices' ids
        # a writer that does not follow chains (an older library) adds ids:
        # the chain names c2 still, but the counts differ
        key = "nousu:ids:%d" % slice_
        gens = up(self.r.get(key))
        gens[-1][1] += 5
        self.r.set(key, pk(gens))
        _, _, filtered, c3 = self.send(w + 2000, self.fresh(2), expect=c2, claim=claim)
        self.assertFalse(filtered)
        self.assertEqual(self.chain(), [c3, str(w + 2000), "0"])
        # a commit that failed half way leaves '-' for counts: no chain
        w2 = (slice_ + 3) * MIN + HORIZON  # (c3's chain would be trusted here)
        self.r.set("nousu:ids:chain", "%s %d 0 -" % (c3, w + 2000))
        _, _, filtered, c4 = self.send(w2, self.fresh(2), expect=c3, claim=claim)
        self.assertFalse(filtered)
        _, _, filtered, c5 = self.send(w2 + HORIZON + 3 * MIN, self.fresh(2), expect=c4, claim=claim)
        self.assertTrue(filtered)


class Hints(unittest.TestCase):
    """Runs with a hint (nousu.lua, take_hint): taken as the hint says when the
    creator's state is still the bytes the hint started from, the usual way
    otherwise, and in verify mode checked against the usual way. The hints
    here come from hint_for, a Python port of daemon/hint.c's hot path."""

    redis_kw = {}  # redis_with_library's keyword arguments (test_module_hints)

    def setUp(self):
        self.redis = redis_with_library(self, LUA, "nousu-hints-", **self.redis_kw)
        self.r = self.redis.client
        self.n = 0
        self.t = T0 + 10 * MIN

    def send(self, prefix, evs, hint=None, verify=False, want=False, after=None, cid=None):
        self.n += 1
        cfg = Runs.cfg(prefix, W0) + [verify]
        argv1, ids, owners, _ = runs_form(cfg, [Unit(None, evs)])
        # ARGV[5] (after), then with a hint ARGV[6] and ARGV[7]
        more = [after or ""] if after is not None or hint is not None else []
        if hint is not None or want:
            req = msgpack.unpackb(argv1, raw=True, strict_map_key=False)
            if hint is None:
                req[2][0] += [None, True]
            else:
                req[2][0], fallbacks, flat = hinted(req[2][0], hint, want)
                more += [fallbacks, flat]
            argv1 = pk(req)
        return self.r.execute_command("FCALL", "nousu_commit_runs", 0, argv1,
                                      cid or "h%d" % self.n, ids, owners, *more)

    def state(self, prefix):
        return up(self.r.get(prefix + "{h}"))

    def hint_for(self, prefix, evs, wrong=False):
        """The hint of one hot run: [old bytes, new bytes, actors, h, new
        bucket, niche, now]."""
        old = self.r.get(prefix + "{h}")
        st = msgpack.unpackb(old, raw=False, strict_map_key=False)
        new_bucket = "cur" not in st
        cur = st.get("cur") or [0] * 12 + [-1, 0]
        actors = []
        for e in evs:
            st["now"] = max(st["now"], e.ts)
            cur[1 + e.t] += e.n
            st["r"][e.t] += e.n
            w = WEIGHTS[e.t] * e.n
            cur[0] += w
            st["rE"] += w
            if e.actor and is_interaction(e.t):
                cur[10] += e.n
                st["ria"] += e.n
                actors.append(e.actor)
            if e.niche and e.ts >= st["nichets"]:
                st["niche"], st["nichets"] = e.niche, e.ts
        st["cur"] = cur
        if wrong:
            st["rE"] += 1
        return [old, pk(st), actors, st["H"], new_bucket, st.get("niche") or False, st["now"]]

    def base(self, *prefixes):
        for p in prefixes:
            self.send(p, [Ev("h", LIKE, self.t, actor="u0", niche="cats")])

    def later(self):
        return [Ev("h", LIKE, self.t + 1000, actor="u1"),
                Ev("h", COMMENT, self.t + 2000, actor="u2", niche="dogs"),
                Ev("h", VIEW, self.t + 3000, n=5)]

    def test_hint_is_taken_as_is_when_the_state_is_unchanged(self):
        self.base("a:", "b:", "c:")
        evs = self.later()
        self.send("a:", evs)
        self.send("b:", evs, self.hint_for("b:", evs))
        self.assertEqual(self.state("b:"), self.state("a:"))
        self.assertEqual(self.r.pfcount("b:{h}:u:%d" % self.state("a:")[b"H"]), 3)
        self.assertEqual(self.r.hgetall("b:nichenow"), self.r.hgetall("a:nichenow"))
        # taken as is: a wrong hint is written, not recomputed
        self.send("c:", evs, self.hint_for("c:", evs, wrong=True))
        self.assertEqual(self.state("c:")[b"rE"], self.state("a:")[b"rE"] + 1)

    def test_stale_hint_is_taken_the_usual_way(self):
        self.base("a:", "b:")
        evs = self.later()
        hint = self.hint_for("b:", evs, wrong=True)
        more = [Ev("h", SAVE, self.t + 500)]
        self.send("a:", more)
        self.send("b:", more)  # the state moved on after the hint was made
        self.send("a:", evs)
        self.send("b:", evs, hint)
        self.assertEqual(self.state("b:"), self.state("a:"))
        self.assertGreater(self.r.ttl("b:{h}"), 0)  # put back with a state's TTL

    def test_hint_for_a_state_gone_is_taken_the_usual_way(self):
        self.base("b:")
        evs = self.later()
        hint = self.hint_for("b:", evs, wrong=True)
        self.r.delete("b:{h}")  # expired, or removed by an operator
        self.send("a:", evs)
        self.send("b:", evs, hint)
        self.assertEqual(self.state("b:"), self.state("a:"))

    def test_verify_passes_a_right_hint_and_fails_a_wrong_one(self):
        self.base("a:", "b:", "c:")
        evs = self.later()
        self.send("a:", evs)
        self.send("b:", evs, self.hint_for("b:", evs), verify=True)
        self.assertEqual(self.state("b:"), self.state("a:"))
        with self.assertRaisesRegex(Exception, "hint for h differs: state.rE"):
            self.send("c:", evs, self.hint_for("c:", evs, wrong=True), verify=True)

    # -- what the daemon's state cache relies on (statecache.h) --------------------

    def test_wanted_states_come_back_unless_the_hint_was_taken(self):
        self.base("a:", "b:")
        evs = self.later()
        # no hint: the state after the commit comes back, as Redis holds it
        out = up(self.send("a:", evs, want=True))
        self.assertEqual(out[4], [1, self.r.get("a:{h}")])
        # a hint taken: the daemon knows the state already
        more = [Ev("h", SAVE, self.t + 4000)]
        out = up(self.send("b:", evs, self.hint_for("b:", evs), want=True))
        self.assertEqual((out[3], out[4]), (1, []))
        # a stale hint: taken the usual way, and the state comes back
        hint = self.hint_for("b:", more, wrong=True)
        self.send("b:", [Ev("h", VIEW, self.t + 3500)])
        out = up(self.send("b:", more, hint, want=True))
        self.assertEqual((out[3], out[4]), (0, [1, self.r.get("b:{h}")]))
        # verify mode: every hinted run's state comes back (Redis packs it)
        out = up(self.send("b:", more, self.hint_for("b:", more), verify=True, want=True))
        self.assertEqual(out[4], [1, self.r.get("b:{h}")])
        # not wanted: nothing
        self.assertEqual(up(self.send("a:", more))[4], [])

    def test_a_commit_after_one_not_applied_is_not_applied(self):
        self.base("a:")
        before = self.r.get("a:{h}")
        evs = [Ev("h", SAVE, self.t + 500)]
        # the commit it follows never reached Redis, or failed
        self.assertEqual(self.send("a:", evs, after="inst:7", cid="inst:8"), 1)
        self.assertEqual(self.r.get("a:{h}"), before)
        self.assertIsNone(self.r.get("a:commit:inst:8"))
        # once it is committed, the same commit goes through, once
        self.assertIsInstance(self.send("a:", evs, cid="inst:7"), bytes)
        self.assertIsInstance(self.send("a:", evs, after="inst:7", cid="inst:8"), bytes)
        self.assertIsInstance(self.send("a:", evs, after="inst:7", cid="inst:8"), bytes)
        self.assertEqual(self.state("a:")[b"r"][SAVE], 2)
        # the events form checks it the same way (ARGV[3])
        cfg = Runs.cfg("a:", W0) + [False]
        argv = events_form(cfg, [Unit(None, evs)])
        self.assertEqual(self.r.execute_command("FCALL", "nousu_commit", 0, argv, "inst:10",
                                                "inst:9"), 1)
        self.assertEqual(self.state("a:")[b"r"][SAVE], 2)
        self.assertIsInstance(self.r.execute_command("FCALL", "nousu_commit", 0, argv, "inst:10",
                                                     "inst:8"), bytes)
        self.assertEqual(self.state("a:")[b"r"][SAVE], 3)


if __name__ == "__main__":
    unittest.main()
