"""The Redis Function library (daemon/nousu.lua) on a real redis-server,
called directly: commit retries, window sums against hand calculations,
alert cooldowns and seq, leaderboard staleness."""
import os
import random
import unittest

import msgpack

from harness import REDIS_MODULE, counts_in_redis, creator_state, now_ms, redis_with_library

LUA = os.path.join(os.path.dirname(__file__), "../../daemon/nousu.lua")
HOUR = 3600 * 1000
DAY = 24 * HOUR
WEIGHTS = [0, 1, 3, 4, 4, 5, 0, 0, 0]
LIKE, COMMENT, SHARE = 1, 2, 3


def pk(obj):
    # cmsgpack reads msgpack str, not bin: pack bytes as str like store.c does
    return msgpack.packb(obj, use_bin_type=False)


def up(b):
    return msgpack.unpackb(b, raw=True, strict_map_key=False)


class Function(unittest.TestCase):
    def setUp(self):
        self.redis = redis_with_library(self, LUA, "nousu-fn-")
        self.r = self.redis.client
        self.wall = now_ms()

    def cfg(self, dedup_buckets=16, set_ids=384):
        det = [1000, 10000, 3 * DAY, 0.03, 50, 3, 4, 0.03, 0.2, 1.5, DAY, 4, 30, 0.3]
        return ["nousu:", self.wall, HOUR, 25, 168, DAY, 120000, 86400, 10000, 3600, WEIGHTS,
                det, dedup_buckets, set_ids]

    def commit(self, units, commit_id=None, cfg=None):
        args = [pk([cfg or self.cfg(), units])] + ([commit_id] if commit_id else [])
        out = up(self.r.execute_command("FCALL", "nousu_commit", 0, *args))
        return out[0], {c[0].decode(): c for c in out[1]}

    @staticmethod
    def ev(i, creator, t, ts, n=1, idh=None, actor=None, fol=None, niche=None):
        # ids travel as the decimal of a 64-bit hash, with its place (top 16 bits)
        return [i, creator, t, ts, n, idh, actor, None, fol, niche, 0]

    def test_retried_commit_is_not_applied_twice(self):
        t = self.wall - 1000
        unit = [None, 1, [], [self.ev(0, "c", LIKE, t, n=5)]]
        self.commit([unit], "inst:1")
        self.commit([unit], "inst:1")  # the reply was lost: same id
        self.assertEqual(counts_in_redis(self.r, "c")[LIKE], 5)
        self.commit([unit], "inst:2")  # a new batch is applied
        self.assertEqual(counts_in_redis(self.r, "c")[LIKE], 10)

    def test_window_sums_by_hand(self):
        now = (self.wall // HOUR) * HOUR + 30 * 60 * 1000  # half past an hour
        evs = [
            self.ev(0, "w", COMMENT, now - 9 * DAY),          # before the baseline: 0
            self.ev(1, "w", SHARE, now - 5 * DAY, fol=3000),  # baseline: 4
            self.ev(2, "w", LIKE, now - 2 * DAY, n=10),       # baseline: 10
            self.ev(3, "w", LIKE, now - 23 * HOUR, n=7),      # recent: 7
            self.ev(4, "w", COMMENT, now, actor="a"),         # recent: 3
        ]
        self.commit([[None, 5, [], evs]])
        st = creator_state(self.r, "w")
        self.assertEqual((st["now"], st["first"], st["fol"]), (now, now - 9 * DAY, 3000))
        self.assertEqual(st["rE"], 10)
        self.assertEqual(st["hE"], 14)
        self.assertEqual(st["r"][LIKE], 7)
        self.assertEqual(st["r"][COMMENT], 1)
        self.assertEqual(st["ria"], 1)
        # one more hour later, the like of 23 h ago moves to the baseline
        self.commit([[None, 1, [], [self.ev(0, "w", LIKE, now + 2 * HOUR)]]])
        st = creator_state(self.r, "w")
        self.assertEqual((st["rE"], st["hE"]), (3 + 1, 14 + 7))
        # eight days later everything has left both windows
        self.commit([[None, 1, [], [self.ev(0, "w", LIKE, now + 9 * DAY)]]])
        st = creator_state(self.r, "w")
        self.assertEqual((st["rE"], st["hE"]), (1, 0))
        self.assertEqual(self.r.hlen("nousu:{w}:e"), 0)
        # only the current bucket is left, and it rides in the state
        self.assertEqual(self.r.hlen("nousu:{w}:b"), 0)
        self.assertEqual(creator_state(self.r, "w")["cur"][0], 1)
        self.assertEqual(len(list(self.r.scan_iter("nousu:{w}:u:*"))), 0)

    def test_too_old_dedup_and_request_replay(self):
        t = self.wall - 1000
        unit = [b"rid", 4, [[3, "bad_ts"]], [
            self.ev(0, "d", LIKE, t, idh="-1234567890123"),
            self.ev(1, "d", LIKE, t, idh="-1234567890123"),
            self.ev(2, "d", LIKE, t - 25 * HOUR)]]
        out, _ = self.commit([unit])
        status, ok, dup, late, ack = out[0]
        self.assertEqual((status, ok, dup, late), (0, 1, 1, [2]))
        ack = msgpack.unpackb(ack, raw=False)
        self.assertEqual((ack["ok"], ack["dup"], ack["rejected"]), (1, 1, 2))
        self.assertEqual(ack["errors"], [{"i": 2, "reason": "too_old"},
                                         {"i": 3, "reason": "bad_ts"}])
        out2, _ = self.commit([unit])
        self.assertEqual(out2[0][0], 1)
        self.assertEqual(out2[0][4], out[0][4])
        self.assertEqual(counts_in_redis(self.r, "d")[LIKE], 1)

    @unittest.skipIf(REDIS_MODULE, "intsets; with the module, ids go to tables (test_module.py)")
    def test_dedup_is_global_compact_and_expires(self):
        t = self.wall - 1000
        evs = [self.ev(i, "x%d" % (i % 3), LIKE, t, idh=str(-10**15 + i * 7919)) for i in range(400)]
        out, _ = self.commit([[None, 400, [], evs]])
        self.assertEqual(out[0][1:3], [400, 0])
        # the same ids for other creators: one id, counted once, globally
        again = [self.ev(i, "y", LIKE, t, idh=e[5]) for i, e in enumerate(evs)]
        out, _ = self.commit([[None, 400, [], again]])
        self.assertEqual(out[0][1:3], [0, 400])
        keys = list(self.r.scan_iter("nousu:ids:*:*:*"))
        self.assertEqual(len(keys), 1)  # one 30 s slice, one generation, place 0
        self.assertEqual(self.r.object("encoding", keys[0]), b"intset")
        self.assertEqual(self.r.scard(keys[0]), 400)
        # kept until the slice's end leaves the horizon (120 s), plus 5 s
        ttl = ((self.wall // 60000) + 1) * 60000 + 120000 + 5000 - self.wall
        for key in keys + ["nousu:ids:%d" % (self.wall // 60000)]:
            self.assertTrue(ttl - 5000 < self.r.pttl(key) <= ttl, (key, self.r.pttl(key), ttl))

    def id_ev(self, i, h, ts):
        """An event with the id of 64-bit hash h, as the daemon sends it."""
        signed = str(h - (1 << 64) if h >= 1 << 63 else h)
        return [i, "g", LIKE, ts, 1, signed, None, None, None, None, h >> 48]

    def dedup_commit(self, hashes, wall):
        self.wall = wall
        evs = [self.id_ev(i, h, wall - 1000) for i, h in enumerate(hashes)]
        out, _ = self.commit([[None, len(evs), [], evs]], cfg=self.cfg(2, 10))
        return out[0][1:3]  # ok, dup

    def slice_gens(self, wall):
        return up(self.r.get("nousu:ids:%d" % (wall // 60000)))

    @unittest.skipIf(REDIS_MODULE, "intsets; with the module, ids go to tables (test_module.py)")
    def test_dedup_sets_sized_per_slice_and_generation(self):
        rng = random.Random(5)
        hashes = [rng.getrandbits(64) for _ in range(30)]
        w0 = (self.wall // 60000) * 60000 + 1000  # early in a 60 s slice
        # dedup_buckets 2, 10 ids a set: 15 ids fit 2 sets
        self.assertEqual(self.dedup_commit(hashes[:15], w0), [15, 0])
        self.assertEqual(self.slice_gens(w0), [[2, 15]])
        # 10 more overflow them: a generation 8 times larger
        self.assertEqual(self.dedup_commit(hashes[15:25], w0 + 1000), [10, 0])
        self.assertEqual(self.slice_gens(w0), [[2, 15], [16, 10]])
        # the next slice starts from the count of this one: 25 ids, 4 sets
        w1 = w0 + 60000
        self.assertEqual(self.dedup_commit(hashes[25:], w1), [5, 0])
        self.assertEqual(self.slice_gens(w1), [[4, 5]])
        # every id is in the set its place picks, in its generation
        for slice_wall, gens, part in ((w0, [[2, 15], [16, 10]], [hashes[:15], hashes[15:25]]),
                                       (w1, [[4, 5]], [hashes[25:]])):
            for g, ((B, n), hs) in enumerate(zip(gens, part), start=1):
                for h in hs:
                    key = "nousu:ids:%d:%d:%d" % (slice_wall // 60000, g, (h >> 48) * B // 65536)
                    signed = h - (1 << 64) if h >= 1 << 63 else h
                    self.assertTrue(self.r.sismember(key, signed), (key, h))
        sets = list(self.r.scan_iter("nousu:ids:*:*:*"))
        self.assertEqual(sum(self.r.scard(k) for k in sets), 30)
        self.assertTrue(all(self.r.object("encoding", k) == b"intset" for k in sets))
        # all 30 known across both slices and all generations, within the horizon
        self.assertEqual(self.dedup_commit(hashes, w1 + 1000), [0, 30])
        # once the first slice's end is 120 s old it is no longer asked
        self.assertEqual(self.dedup_commit(hashes, w0 + 59000 + 120000 - 1), [0, 30])
        self.assertEqual(self.dedup_commit(hashes, w0 + 59000 + 120000), [25, 5])

    def pexpire_calls(self):
        return self.r.info("commandstats").get("cmdstat_pexpire", {}).get("calls", 0)

    @unittest.skipIf(REDIS_MODULE, "intsets; with the module, ids go to tables (test_module.py)")
    def test_dedup_set_ttl_given_once_per_set(self):
        rng = random.Random(9)
        w0 = (self.wall // 60000) * 60000 + 1000
        hashes = [rng.getrandbits(64) for _ in range(20)]
        place = lambda h: (h >> 48) * 2 // 65536  # noqa: E731 (its set of 2)
        slice_ = w0 // 60000
        bitmap, set_key = "nousu:ids:%d:1" % slice_, "nousu:ids:%d:1:%%d" % slice_
        self.assertEqual(self.dedup_commit(hashes[:12], w0), [12, 0])  # 2 sets of 10
        sets = {place(h) for h in hashes[:12]}
        self.assertEqual([self.r.getbit(bitmap, b) for b in (0, 1)],
                         [1 if b in sets else 0 for b in (0, 1)])
        # the bitmap lives while the slice is current (+5 s), the sets for the horizon
        self.assertTrue(0 < self.r.pttl(bitmap) <= 60000 - 1000 + 5000)
        set_ttl = 60000 - 1000 + 120000 + 5000
        # more ids into the same generation: a PEXPIRE only for a set not seen before
        before = self.pexpire_calls()
        self.assertEqual(self.dedup_commit(hashes[12:16], w0 + 500), [4, 0])
        self.assertEqual(self.pexpire_calls() - before, len({place(h) for h in hashes[12:16]} - sets))
        for b in sets:
            self.assertTrue(set_ttl - 5000 < self.r.pttl(set_key % b) <= set_ttl)
        # once the bitmap is gone (expired), the sets written get their TTL again
        self.r.delete(bitmap)
        for b in (0, 1):
            self.r.persist(set_key % b)
        self.assertEqual(self.dedup_commit(hashes[16:], w0 + 1000), [4, 0])
        self.assertEqual(self.slice_gens(w0), [[2, 20]])
        for b in {place(h) for h in hashes[16:]}:
            self.assertGreater(self.r.pttl(set_key % b), 0)
        self.assertEqual(self.dedup_commit(hashes, w0 + 2000), [0, 20])

    def alert(self, creator, kind_i, kind, ts):
        a = pk(["nousu:", creator, kind_i, kind, ts, DAY, 1000, kind + "._",
                b"\x81\xa3seq", b"", None])
        return up(self.r.execute_command("FCALL", "nousu_alert", 0, a))

    def test_alert_cooldown_and_seq(self):
        t = self.wall
        self.commit([[None, 3, [], [self.ev(i, c, LIKE, t - 1000) for i, c in enumerate("abc")]]])
        self.assertEqual(self.alert("nobody", 0, "rising", t), [0])  # no such creator
        self.assertEqual(self.alert("a", 0, "rising", t)[0], 1)
        self.assertEqual(self.alert("a", 0, "rising", t + DAY - 1), [0])
        self.assertEqual(self.alert("a", 1, "suspicious", t)[0], 2)
        self.assertEqual(self.alert("b", 0, "rising", t)[0], 3)
        self.assertEqual(self.alert("a", 0, "rising", t + DAY)[0], 4)
        ids = [sid for sid, _ in self.r.xrange("nousu:alerts")]
        self.assertEqual(ids, [b"1-0", b"2-0", b"3-0", b"4-0"])
        # msg is head .. msgpack(seq) .. tail
        self.assertEqual(msgpack.unpackb(self.r.xrange("nousu:alerts")[3][1][b"msg"]), {"seq": 4})
        # a lost counter never makes seq go backwards
        self.r.delete("nousu:seq")
        self.assertEqual(self.alert("c", 0, "rising", t)[0], 5)

    def test_top_drops_stale_members(self):
        t = self.wall - 1000
        self.commit([[None, 2, [], [self.ev(0, "old", LIKE, t - 2 * DAY + 1, niche="k"),
                                     self.ev(1, "new", LIKE, t - 2 * DAY + 1, niche="k")]]])
        b = pk(["nousu:", [["old", "k", 1, 9.0, 5.0], ["new", "k", 1, 5.0, 4.0]]])
        self.r.execute_command("FCALL", "nousu_board", 0, b)
        top = up(self.r.execute_command("FCALL", "nousu_top", 0, "nousu:", "k", 10, DAY))
        self.assertEqual([e[0] for e in top], [b"old", b"new"])
        # only "new" moves on by two days: "old" had no event for 24 h
        self.commit([[None, 1, [], [self.ev(0, "new", LIKE, t)]]])
        top = up(self.r.execute_command("FCALL", "nousu_top", 0, "nousu:", "k", 10, DAY))
        self.assertEqual([e[0] for e in top], [b"new"])
        # a velocity drop takes it off
        b = pk(["nousu:", [["new", "k", 0, 1.0, 1.0]]])
        self.r.execute_command("FCALL", "nousu_board", 0, b)
        self.assertEqual(up(self.r.execute_command("FCALL", "nousu_top", 0, "nousu:", "", 10, DAY)), [])


if __name__ == "__main__":
    unittest.main()
