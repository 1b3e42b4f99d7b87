#!/usr/bin/python3
"""function_microbench.py -- Redis time per event inside nousu_commit, without
the daemon: the Function library (daemon/nousu.lua, or the file given) is
loaded into a throwaway redis-server and fed hand-built commits.

  zipf:   20,000 events over 10,000 creators (Zipf s=1.1), fresh creators
  allday: 5,000 creators with 24 h of history (25 live buckets each), then
          2 events each in the current hour -- the common case of a live stream
  ids:    the zipf commit with an id on every event
  hints:  3,000 hinted runs (daemon/hint.c: the daemon sent the state after
          the run), each taken: the Function's fixed cost per creator; with
          the nousu module built (NOUSU_BUILD, default build/), again in a
          Redis with it, the hints as arguments and stashed (NOUSU.STASH),
          in turn
  dedup (only with --dedup, ~1 min per size): the cost of an id as the
          current dedup slice fills (1M, 3M, 6M ids), for each Redis
          set-max-intset-entries given: commits of 20,000 events with ids,
          less the same commits without ids (runs form, 200 creators)

  dedup-live (only with --dedup-live=..., ~3 min per size): the 3 slices a
          commit asks each filled to 1M, then (another Redis) 3M ids; the cost of an id looked up
          against that of one only added, as along a daemon's chain with its
          filter of ids sent (daemon/idfilter.c)

Usage: bench/function_microbench.py [--dedup=512,2048 | --dedup-live=4096] [LUA_FILE]
"""
import contextlib
import os
import random
import shutil
import sys
import tempfile
import time

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
from harness import MODULE_SO, RedisServer  # noqa: E402
import test_runs  # noqa: E402

HOUR = 3600 * 1000
DAY = 24 * HOUR
DET = [1000, 10000, 3 * DAY, 0.03, 50, 3, 4, 0.03, 0.2, 1.5, DAY, 4, 30, 0.3]


def bench_cfg(now, set_ids=384, *more):
    """The commit's cfg (nousu.lua, parse_cfg): the daemon's defaults."""
    return ["nousu:", now, HOUR, 25, 168, DAY, 120000, 86400, 10000, 3600,
            test_runs.WEIGHTS, DET, 16, set_ids, *more]


@contextlib.contextmanager
def loaded_redis(lua, module=None, **config):
    """A throwaway redis-server with the library loaded; its client."""
    d = tempfile.mkdtemp(prefix="nousu-fn-bench-")
    redis = RedisServer(d, module=module)
    try:
        r = redis.client
        for k, v in config.items():
            r.execute_command("CONFIG", "SET", k.replace("_", "-"), str(v))
        with open(lua, "rb") as f:
            r.execute_command("FUNCTION", "LOAD", "REPLACE", f.read())
        yield r
    finally:
        redis.stop()
        shutil.rmtree(d, ignore_errors=True)


def commit(r, now, events):
    cfg = bench_cfg(now)
    blob = msgpack.packb([cfg, [[None, len(events), [], events]]], use_bin_type=False)
    t = time.perf_counter()
    r.execute_command("FCALL", "nousu_commit", 0, blob)
    return time.perf_counter() - t


def ev(i, creator, t, ts, idv=None, actor=None):
    return [i, creator, t, ts, 1, idv, actor, None, None, None, 0]


def commit_runs(r, now, events):
    """The same events as one unit in the runs form, built by the port of
    daemon/plan.c + wire.c that test_runs.py checks against the daemon's."""
    return time_runs(r, bench_cfg(now), [test_runs.Ev(e[1], e[2], e[3], e[4], actor=e[6])
                                         for e in events])


def time_runs(r, cfg, evs, chain=None, filtered=False):
    """Seconds for one nousu_commit_runs of evs (test_runs.Ev), one unit.
    chain: {"last": commit id} to follow the dedup chain as a daemon does;
    filtered: with a claim, and no id flagged (all fresh), as a daemon's
    filter of ids sent would send them (nousu.lua, the chain)."""
    blob, groups, owners, _ = test_runs.runs_form(cfg, [test_runs.Unit(None, evs)])
    cid, more = os.urandom(8).hex(), []
    if chain is not None:
        if filtered:
            groups = msgpack.packb(msgpack.unpackb(groups) + [[]])
        more = ["", "", msgpack.packb([]), chain["last"], "0" if filtered else ""]
        chain["last"] = cid
    t = time.perf_counter()
    out = r.execute_command("FCALL", "nousu_commit_runs", 0, blob, cid, groups, owners, *more)
    took = time.perf_counter() - t
    if filtered and not msgpack.unpackb(out)[5]:
        raise SystemExit("dedup: the chain broke, the commit was not filtered")
    return took


def commit_hinted(r, now, rng, n=3000, fallback=0, stash=False, state_bytes=300):
    """n hinted runs of 4 events (3 actors), every hint taken: the states are
    reset to the hints' old bytes first (opaque here: nousu.lua compares
    them, never decodes them on this path). fallback: bytes of ARGV[6] per
    run (the events of a hinted run, read only when its hint is refused;
    ~230 B a run in the bench's commits), opaque too. stash: ARGV[6] and
    ARGV[7] go by NOUSU.STASH first (timed with the FCALL)."""
    cfg = bench_cfg(now, 384, False)
    runs, olds, flat = [], {}, []
    h = str(now // HOUR)
    for i in range(n):
        c = "c%d" % i
        old, new = os.urandom(state_bytes), os.urandom(state_bytes)
        olds["nousu:{%s}" % c] = old
        actors = ["u%d" % rng.randrange(100000) for _ in range(3)]
        runs.append(len(flat) + 1)  # the hinted run's place in ARGV[7] (wire.c)
        flat += [c, False, 1, 1, old, new, h, False, False, now, len(actors)] + actors
    blob = msgpack.packb([cfg, [4 * n], runs], use_bin_type=False)
    r.mset(olds)
    cid = os.urandom(8).hex()
    args = [os.urandom(fallback * n) if fallback else b"\x90", msgpack.packb(flat, use_bin_type=False)]
    t = time.perf_counter()
    if stash:
        r.execute_command("NOUSU.STASH", cid, args[1], args[0])
        args = ["", "", "", "", cid]
    out = r.execute_command("FCALL", "nousu_commit_runs", 0, blob, cid,
                            msgpack.packb([[], []]), msgpack.packb([]), "", *args)
    took = time.perf_counter() - t
    taken = msgpack.unpackb(out, raw=False, strict_map_key=False)[3]
    if taken != n:
        raise SystemExit("hints: %d of %d taken" % (taken, n))
    return took


def like_commit(rng, creators, wall, with_ids):
    """20,000 likes (test_runs.Ev) within 30 s before wall, with or without
    a random id each."""
    return [test_runs.Ev(rng.choice(creators), 1, wall - rng.randrange(30000),
                         idh=rng.getrandbits(64) if with_ids else None)
            for _ in range(20000)]


def dedup_steady(lua, entries, levels=(0, 1000000, 3000000, 6000000)):
    """The dedup case: every commit at one wall clock, early in a slice, so
    that all of them fill the same slice, as 60 s of traffic would."""
    with loaded_redis(lua, set_max_intset_entries=entries) as r:
        rng = random.Random(1)
        now = (int(time.time() * 1000) // 60000) * 60000 + 1000
        cfg = bench_cfg(now, entries * 3 // 4)  # as the daemon sizes sets
        creators = ["c%d" % i for i in range(200)]

        def one(with_ids):
            return time_runs(r, cfg, like_commit(rng, creators, now, with_ids))
        filled = 0
        for level in levels:
            while filled < level:
                one(True)
                filled += 20000
            without = min(one(False) for _ in range(3))
            best = min(one(True) for _ in range(3))
            filled += 60000
            print("dedup:  %5.2f us/id with %9s ids in the slice, set-max-intset-entries %d "
                  "(%d keys)" % ((best - without) * 1e6 / 20000, "{:,}".format(filled - 60000),
                                 entries, r.dbsize()), flush=True)


def dedup_live(lua, entries, levels=(1000000, 3000000)):
    """The dedup in steady state: the 3 slices a commit asks (default
    horizon) each holding as many ids, every id looked up or, along one
    daemon's chain with its filter, only added. A Redis per level, its
    slices filled in order: the chain wants a daemon's clock, which does not
    go back (and a slice's keys live ~3 min from its first commit)."""
    for level in levels:
        dedup_live_level(lua, entries, level)


def dedup_live_level(lua, entries, level):
    with loaded_redis(lua, set_max_intset_entries=entries) as r:
        rng = random.Random(2)
        s2 = int(time.time() * 1000) // 60000 + 2  # (keys live ~3 min past now)
        walls = [(s2 - k) * 60000 + 1000 for k in (2, 1, 0)]
        cfgs = [bench_cfg(w, entries * 3 // 4) for w in walls]
        creators = ["c%d" % i for i in range(200)]
        chain = {"last": ""}

        def one(cfg, with_ids, filtered=False):
            return time_runs(r, cfg, like_commit(rng, creators, cfg[1], with_ids), chain, filtered)
        for cfg in cfgs:
            for _ in range(level // 20000):
                one(cfg, True)
        now = cfgs[-1]
        without = min(one(now, False) for _ in range(3))
        looked = min(one(now, True) for _ in range(3))
        spared = min(one(now, True, True) for _ in range(3))
        print("dedup, 3 live slices of %9s ids: %5.2f us/id looked up, %5.2f filtered "
              "(set-max-intset-entries %d)" % ("{:,}".format(level), (looked - without) * 1e6 / 20000,
                                               (spared - without) * 1e6 / 20000, entries),
              flush=True)


def module_hints(lua, now, rng):
    """The hints case in a Redis with the module: as arguments and stashed,
    in turn, best of 7 each."""
    if not os.path.exists(MODULE_SO):
        print("hints+module: skipped, %s not built" % MODULE_SO)
        return
    with loaded_redis(lua, module=os.path.abspath(MODULE_SO)) as r:
        # 300 B states and 230 B of events a run; then about the bench's
        # half-load commits: 170 B states, 150 B of events (~2 a run)
        for state, fallback in ((300, 230), (170, 150)):
            best = {False: 1e9, True: 1e9}
            for _ in range(7):
                for stash in (False, True):
                    took = commit_hinted(r, now, rng, fallback=fallback, stash=stash,
                                         state_bytes=state)
                    best[stash] = min(best[stash], took)
            for stash, what in ((False, "as arguments"), (True, "stashed")):
                print("hints+module: %5.2f us/hinted run (%d B states, %d B of ARGV[6] each, %s)"
                      % (best[stash] * 1e6 / 3000, state, fallback, what))


def main():
    args = sys.argv[1:]
    dedup = [a for a in args if a.startswith("--dedup")]
    args = [a for a in args if not a.startswith("--dedup")]
    lua = args[0] if args else os.path.join(os.path.dirname(__file__), "../daemon/nousu.lua")
    if dedup:
        sizes = dedup[0].partition("=")[2] or "512"
        for entries in map(int, sizes.split(",")):
            if dedup[0].startswith("--dedup-live"):
                dedup_live(lua, entries)
            else:
                dedup_steady(lua, entries)
        return
    with loaded_redis(lua) as r:
        rng = random.Random(1)
        now = int(time.time() * 1000)
        pick = test_runs.zipf_picker(rng, 10000)
        best = min(commit(r, now, [ev(i, pick(), rng.choice((0, 1, 1, 2)), now - rng.randrange(60000))
                                   for i in range(20000)]) for _ in range(3))
        print("zipf:   %5.2f us/event" % (best * 1e6 / 20000))
        zipf_events = [ev(i, pick(), rng.choice((0, 1, 1, 2)), now - rng.randrange(60000),
                          actor="u%d" % rng.randrange(100000)) for i in range(20000)]
        best = min(commit(r, now, zipf_events) for _ in range(3))
        print("zipf+actors, events form: %5.2f us/event" % (best * 1e6 / 20000))
        best = min(commit_runs(r, now, zipf_events) for _ in range(3))
        print("zipf+actors, runs form:   %5.2f us/event (%d creators)" %
              (best * 1e6 / 20000, len({e[1] for e in zipf_events})))
        best = min(commit(r, now, [ev(i, pick(), 1, now - rng.randrange(60000),
                                      str(rng.getrandbits(63)))
                                   for i in range(20000)]) for _ in range(3))
        print("ids:    %5.2f us/event" % (best * 1e6 / 20000))
        for fallback, what in ((0, "3,000 runs, every hint taken"),
                               (230, "with 230 B of ARGV[6] each, the events, unread")):
            best = min(commit_hinted(r, now, rng, fallback=fallback) for _ in range(5))
            print("hints:  %5.2f us/hinted run (%s)" % (best * 1e6 / 3000, what))
        module_hints(lua, now, rng)
        n = 5000
        for hr in range(24, 0, -1):
            commit(r, now, [ev(i, "a%d" % i, 1, now - hr * HOUR + rng.randrange(HOUR // 2))
                            for i in range(n)])
        best = min(commit(r, now, [ev(i, "a%d" % (i % n), rng.choice((0, 1, 2)),
                                      now - rng.randrange(60000)) for i in range(2 * n)])
                   for _ in range(3))
        print("allday: %5.2f us/event (25 live buckets per creator)" % (best * 1e6 / (2 * n)))


if __name__ == "__main__":
    main()
