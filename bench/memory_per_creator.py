#!/usr/bin/python3
"""memory_per_creator.py -- Redis memory per creator with a week of activity.

Starts a throwaway redis-server and nousud (ipc:// endpoints, temp dir),
plays CREATORS creators x 8 days of event time (EVENTS_PER_HOUR events an
hour each: likes/comments/saves from a pool of 150 actors, a follower snapshot
and niche now and then, ids on every event), then reports used_memory per
creator and MEMORY USAGE of each key of one creator, by key kind.

Usage: bench/memory_per_creator.py [BUILD_DIR] [CREATORS] [EVENTS_PER_HOUR]
"""
import collections
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
import harness  # noqa: E402

HOUR = 3600 * 1000


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../build")
    creators = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    per_hour = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    harness.NOUSUD = os.path.join(build, "nousud")
    case = harness.Case()
    case.setUp()
    try:
        run(case, creators, per_hour)
    finally:
        case.tearDown()
        case.doCleanups()


def run(case, creators, per_hour):
    r, d = case.r, case.d
    base = r.info("memory")["used_memory"]
    rng = random.Random(1)
    end = harness.now_ms() - 60 * 1000
    start = end - 8 * 24 * HOUR
    push = d.push()
    sent = 0
    for h in range(8 * 24):
        batch = []
        for c in range(creators):
            for k in range(per_hour):
                e = {"creator": "mem:creator%05d" % c, "ts": start + h * HOUR + rng.randrange(HOUR),
                     "type": rng.choice(("like", "like", "comment", "save", "view")),
                     "actor": "fan%d" % rng.randrange(150), "id": "%d-%d-%d" % (c, h, k)}
                if k == 0:
                    e["followers"] = 3000 + h
                    e["niche"] = "knitting"
                batch.append(e)
        batch.sort(key=lambda e: e["ts"])
        for i in range(0, len(batch), 1000):
            push.send(harness.pack(batch[i:i + 1000]))
        sent += len(batch)
    d.wait_accepted(sent, timeout=600)
    used = r.info("memory")["used_memory"] - base
    kinds = collections.Counter()
    counts = collections.Counter()
    for key in r.scan_iter(match="nousu:{mem:creator00000}*", count=1000):
        rest = key.decode().split("}", 1)[1]
        k = rest.split(":")[1] if rest else "state"
        kinds[k] += r.memory_usage(key, samples=0)
        counts[k] += 1
    per_creator = used / creators
    print("creators: %d, events: %d (%d/hour/creator, 8 days of event time)"
          % (creators, sent, per_hour))
    print("redis used_memory per creator: %.0f bytes (%.1f KiB)" % (per_creator, per_creator / 1024))
    print("one creator's keys (MEMORY USAGE):")
    names = {"state": "state (msgpack)", "b": "recent buckets hash", "u": "HyperLogLogs",
             "e": "baseline hash"}
    for k, v in sorted(kinds.items()):
        print("  %-22s %3d keys %7d bytes" % (names.get(k, k), counts[k], v))
    print("  %-22s %3d keys %7d bytes" % ("total", sum(counts.values()), sum(kinds.values())))
    ids = id_bytes = 0
    for key in r.scan_iter(match="nousu:ids:*", count=1000):
        if r.type(key) == b"set":  # not a slice's list of generations
            ids += r.scard(key)
        id_bytes += r.memory_usage(key, samples=0)
    if ids:
        print("dedup: %d ids held in %d bytes of keys = %.1f bytes per remembered id"
              % (ids, id_bytes, id_bytes / ids))
    # what the id sets hold expires after the horizon: delete them now to
    # read the windows' own memory
    for key in list(r.scan_iter(match="nousu:ids:*", count=1000)):
        r.delete(key)
    no_ids = r.info("memory")["used_memory"] - base
    if ids:
        print("so each remembered id cost %.1f bytes of used_memory" % ((used - no_ids) / ids))
    # so do the recent commits' replies, kept 10 min for a retry (with the
    # states of the creators the daemon caches, they are not small)
    replies = list(r.scan_iter(match="nousu:commit:*", count=1000))
    reply_bytes = sum(r.memory_usage(k, samples=0) for k in replies)
    for key in replies:
        r.delete(key)
    windows = r.info("memory")["used_memory"] - base
    print("recent commit replies (10 min): %d keys, %d bytes" % (len(replies), reply_bytes))
    print("redis used_memory per creator without the id sets and commit replies: "
          "%.0f bytes (%.1f KiB)" % (windows / creators, windows / creators / 1024))


if __name__ == "__main__":
    t0 = time.time()
    main()
    print("(%.1f s)" % (time.time() - t0))
