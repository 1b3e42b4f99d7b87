"""The nousu Redis module (daemon/redis-module/, its id tables) on a real
redis-server: its two commands, its tables as plain strings (saved, loaded
and expired by a Redis without it), and the Function's event-id dedup on
them: one generation per slice sized from the slice before, a full table
followed by one twice as large, a duplicate counted once, and a live table
without the module failing the commit with a reason rather than
forgetting ids. Skipped when the module was not built (no redismodule.h)."""
import glob
import math
import os
import random
import struct
import unittest

import redis

import harness
import test_function
from harness import MODULE_SO, RedisServer, now_ms, redis_for, redis_with_library, stop_pid
from test_function import LUA

HAVE_MODULE = os.path.exists(MODULE_SO)
SKIP = "nousu.so not built (no redismodule.h: bash .ci/redismodule-h)"


def fill_class(n):
    """nousu.lua's: the slots of a part of at least n slots that fill their
    jemalloc size class (4 a doubling), 32 bytes of headers included."""
    b, m = n * 8 + 32, 4096
    while m * 2 <= b:
        m *= 2
    return (math.ceil(b / (m // 4)) * (m // 4) - 32) // 8


def gen(want, part_max=(2097152 - 32) // 8, n=0, made=None, since=None):
    """nousu.lua's Dedup:table_gen: 3/4 full less 2%, at least 65536 slots,
    in parts (a power of 2) of at most part_max slots before fill_class;
    since: the wall clock of its first ids."""
    need = max(want / (0.75 * 0.98), 65536)
    parts = 1
    while need / parts > part_max and parts < 65536:
        parts *= 2
    g = [fill_class(math.ceil(need / parts)), n, 1, parts, parts if made is None else made]
    return g if since is None else g + [since]


def table_ids(raw):
    return set(harness.table_ids(raw))


@unittest.skipUnless(HAVE_MODULE, SKIP)
class Commands(unittest.TestCase):
    def setUp(self):
        self.redis = redis_for(self, "nousu-mod-", module=MODULE_SO)
        self.dir, self.r = self.redis.dir, self.redis.client

    def add(self, key, slots, *ids):
        return self.r.execute_command("NOUSU.IDADD", key, slots, *ids)

    def has(self, key, *ids):
        return self.r.execute_command("NOUSU.IDHAS", key, *ids)

    def test_add_and_has(self):
        self.assertEqual(self.add("t", 64, 1, 2, 3, 0, -5, 3), 5)  # 3 twice: once
        self.assertEqual(self.add("t", 64, 2, 7), 1)
        self.assertEqual(self.has("t", 1, 2, 4, 0, -5, -6, 7), [1, 1, 0, 1, 1, 0, 1])
        self.assertEqual(self.has("absent", 1, 2), [0, 0])
        raw = self.r.get("t")
        self.assertEqual(len(raw), 16 + 64 * 8)
        self.assertEqual(raw[:8], b"nousuid1")
        self.assertEqual(struct.unpack("<Q", raw[8:16])[0], 6)
        # -5 as its two's complement; 0 as the stand-in the header names
        self.assertEqual(table_ids(raw), {1, 2, 3, 7, (1 << 64) - 5, 0x9e3779b97f4a7c15})

    def test_many_ids_none_lost_none_invented(self):
        rng = random.Random(7)
        ids = [rng.getrandbits(63) - (1 << 62) for _ in range(3000)]
        for k in range(0, 3000, 500):
            self.assertEqual(self.add("m", 4096, *ids[k:k + 500]), 500)
        self.assertEqual(self.has("m", *ids), [1] * 3000)
        others = [rng.getrandbits(63) for _ in range(3000)]
        self.assertEqual(sum(self.has("m", *others)), len(set(others) & set(ids)))

    def test_refusals_change_nothing(self):
        self.add("t", 64, *range(1, 41))
        before = self.r.get("t")
        with self.assertRaisesRegex(redis.ResponseError, "full"):
            self.add("t", 64, *range(100, 117))  # 40 + 17 > 56, 7/8 of 64
        with self.assertRaisesRegex(redis.ResponseError, "full"):
            self.add("new", 64, *range(1, 58))
        self.assertFalse(self.r.exists("new"))
        with self.assertRaisesRegex(redis.ResponseError, "from 64 to 2"):
            self.add("u", 32, 1)
        with self.assertRaisesRegex(redis.ResponseError, "signed 64-bit"):
            self.add("t", 64, 50, "x")
        self.assertEqual(self.r.get("t"), before)
        self.r.set("s", "a user's string")
        with self.assertRaisesRegex(redis.ResponseError, "WRONGTYPE"):
            self.add("s", 64, 1)
        with self.assertRaisesRegex(redis.ResponseError, "WRONGTYPE"):
            self.has("s", 1)
        self.assertEqual(self.r.get("s"), b"a user's string")

    def addn(self, base, parts, slots, ttl_ms, ids):
        """ids: unsigned 64-bit, sent as the signed decimals nousu.lua sends."""
        return self.r.execute_command("NOUSU.IDADDN", base, parts, slots, ttl_ms,
                                      *(i - (1 << 64) if i >= 1 << 63 else i for i in ids))

    def test_idaddn_puts_each_id_in_the_part_of_its_place_and_sets_ttls(self):
        rng = random.Random(3)
        ids = sorted((rng.getrandbits(64) for _ in range(400)), key=lambda i: i >> 48)
        self.assertEqual(self.addn("g:t", 4, 4096, 90000, ids), 400)
        for p in range(4):
            self.assertEqual(table_ids(self.r.get("g:t%d" % p)),
                             {i for i in ids if (i >> 48) // 16384 == p})
            self.assertTrue(80000 < self.r.pttl("g:t%d" % p) <= 90000)
        last = (1 << 64) - 5  # place 65535: the last part
        self.assertEqual(self.addn("g:t", 4, 4096, 90000, ids[:10] + [last]), 1)
        self.assertEqual(self.has("g:t3", -5), [1])
        self.assertEqual(self.addn("g:t", 4, 4096, 90000, []), 0)

    def test_idaddn_refusals_change_nothing(self):
        self.add("g:t1", 64, *range(1, 50))
        before = self.r.get("g:t1")
        # part 0 would be fine, part 1 overflows (49 + 8 > 56): neither written
        high = [(40000 << 48) + i for i in range(8)]
        with self.assertRaisesRegex(redis.ResponseError, "full"):
            self.addn("g:t", 2, 64, 1000, [100, 101] + high)
        self.assertFalse(self.r.exists("g:t0"))
        self.assertEqual((self.r.get("g:t1"), self.r.pttl("g:t1")), (before, -1))
        for parts, ids, msg in ((3, [1], "power of 2"), (2, [high[0], 1], "ascend by place"),
                                (2, [1, high[0], 5], "ascend by place")):
            with self.assertRaisesRegex(redis.ResponseError, msg):
                self.addn("g:t", parts, 64, 1000, ids)
        with self.assertRaisesRegex(redis.ResponseError, "wrong number"):
            self.r.execute_command("NOUSU.IDADDN", "g:t", 2, 64)
        self.r.set("g:t0", "a user's string")
        with self.assertRaisesRegex(redis.ResponseError, "WRONGTYPE"):
            self.addn("g:t", 2, 64, 1000, [1, high[0]])
        self.assertEqual(self.r.get("g:t1"), before)

    def test_idaddn_is_in_the_aof_as_idadd_and_pexpireat(self):
        self.redis.stop()
        aof = RedisServer(self.dir, appendonly=True, module=MODULE_SO)
        self.addCleanup(stop_pid, aof.proc)
        high = 40000 << 48  # place 40000: part 1 of 2
        aof.client.execute_command("NOUSU.IDADDN", "g:t", 2, 64, 600000, 7, 8, high - (1 << 64))
        want = {k: (table_ids(aof.client.get(k)), aof.client.pexpiretime(k)) for k in ("g:t0", "g:t1")}
        aof.stop()
        text = b"".join(open(f, "rb").read()
                        for f in glob.glob(os.path.join(self.dir, "appendonlydir", "*.aof")))
        self.assertNotIn(b"IDADDN", text.upper())
        self.assertIn(b"PEXPIREAT", text.upper())
        again = RedisServer(self.dir, appendonly=True, module=MODULE_SO, expect_empty=False)
        self.addCleanup(stop_pid, again.proc)
        got = {k: (table_ids(again.client.get(k)), again.client.pexpiretime(k)) for k in want}
        self.assertEqual(got, want)
        self.assertEqual((want["g:t0"][0], want["g:t1"][0]), ({7, 8}, {high}))

    def test_tables_are_strings_for_a_redis_without_the_module(self):
        self.add("t", 64, 10, 20)
        self.r.pexpire("t", 600000)
        self.r.save()
        self.redis.stop()
        plain = RedisServer(self.dir, port=self.redis.port, expect_empty=False, module=None)
        self.addCleanup(stop_pid, plain.proc)
        self.assertEqual(table_ids(plain.client.get("t")), {10, 20})
        self.assertGreater(plain.client.pttl("t"), 0)
        with self.assertRaisesRegex(redis.ResponseError, "unknown command"):
            plain.client.execute_command("NOUSU.IDHAS", "t", 10)


@unittest.skipUnless(HAVE_MODULE, SKIP)
class Dedup(test_function.Function):
    """The Function's dedup with the module loaded: test_function's helpers,
    none of its tests (they run in test_function)."""

    def setUp(self):
        # MODULE LOAD and UNLOAD, refused by default, from here only
        self.redis = redis_with_library(self, LUA, "nousu-modfn-", module=MODULE_SO,
                                        extra=["--enable-module-command", "local"])
        self.r = self.redis.client
        self.wall = 0
        self.part_slots = None  # the Function's TABLE_PART_SLOTS (2^20), or this

    def cfg(self, dedup_buckets=16, set_ids=384):
        c = super().cfg(dedup_buckets, set_ids)
        return c + [False, self.part_slots] if self.part_slots else c

    def table(self, wall, gen, part=0):
        return self.r.get("nousu:ids:%d:%d:t%d" % (wall // 60000, gen, part))

    @staticmethod
    def room(g):
        return int(g[3] * (g[0] * 3 // 4) * 0.98)  # TABLE_FILL

    def test_ids_in_tables_counted_once(self):
        rng = random.Random(5)
        hashes = [rng.getrandbits(64) for _ in range(400)]
        w0 = (self.now() // 60000) * 60000 + 1000
        self.assertEqual(self.dedup_commit(hashes[:300], w0), [300, 0])
        # one generation: a table of the smallest size, 300 ids in it
        self.assertEqual(self.slice_gens(w0), [gen(300, n=300, since=w0)])
        raw = self.table(w0, 1)
        self.assertEqual(len(raw), 16 + gen(300)[0] * 8)
        self.assertEqual(len(raw) + 16, 655360)  # a jemalloc size class, filled
        self.assertEqual(table_ids(raw), set(hashes[:300]))
        self.assertEqual(list(self.r.scan_iter("nousu:ids:*:*:[0-9]*")), [])  # no sets
        ttl = ((w0 // 60000) + 1) * 60000 + 120000 + 5000 - w0
        self.assertTrue(ttl - 5000 < self.r.pttl("nousu:ids:%d:1:t0" % (w0 // 60000)) <= ttl)
        # 200 again and 100 new, in the next slice: the old ones are found there
        w1 = w0 + 60000
        self.assertEqual(self.dedup_commit(hashes[100:400], w1), [100, 200])
        # sized from the slice before: 300 ids x 1.25, still the smallest
        self.assertEqual(self.slice_gens(w1), [gen(375, n=100, since=w1)])
        self.assertEqual(table_ids(self.table(w1, 1)), set(hashes[300:400]))

    def test_a_full_table_is_followed_by_one_twice_its_size(self):
        rng = random.Random(6)
        w0 = (self.now() // 60000) * 60000 + 1000
        room = self.room(gen(0))
        first = [rng.getrandbits(64) for _ in range(room - 10)]
        for k in range(0, len(first), 10000):
            self.dedup_commit(first[k:k + 10000], w0)
        more = [rng.getrandbits(64) for _ in range(20)]
        self.assertEqual(self.dedup_commit(more, w0 + 500), [20, 0])
        self.assertEqual(self.slice_gens(w0), [gen(0, n=room - 10, since=w0),
                                               gen(2 * room, n=20, since=w0 + 500)])
        self.assertEqual(table_ids(self.table(w0, 2)), set(more))
        # the ids of both generations are found
        both = first[:50] + more
        self.assertEqual(self.dedup_commit(both, w0 + 600), [0, 70])

    def test_parts_by_place(self):
        """A generation of 4 parts of 16384 slots: each id in the part of its
        place (its top 16 bits), all found again."""
        self.part_slots = 16384
        rng = random.Random(9)
        hashes = [rng.getrandbits(64) for _ in range(1000)]
        w0 = (self.now() // 60000) * 60000 + 1000
        self.assertEqual(self.dedup_commit(hashes, w0), [1000, 0])
        g = gen(1000, 16384, n=1000, since=w0)
        self.assertEqual(g[3], 4)
        self.assertEqual(self.slice_gens(w0), [g])
        for p in range(4):
            raw = self.table(w0, 1, p)
            self.assertEqual(len(raw), 16 + g[0] * 8)
            self.assertEqual(table_ids(raw), {h for h in hashes if (h >> 48) * 4 // 65536 == p})
        self.assertEqual(self.dedup_commit(hashes[::7] + [rng.getrandbits(64)], w0 + 100),
                         [1, len(hashes[::7])])

    def test_next_slice_made_ahead(self):
        """Over the last 15 s of a slice, commits make the parts of the
        next slice's first generation, sized from this slice's pace: at most
        1 a commit, and spread over the first 4/5 of those 15 s (5 s in, 2
        of 4 are due; 10 s in, all); the next slice then fills them."""
        self.part_slots = 16384
        rng = random.Random(10)
        hashes = [rng.getrandbits(64) for _ in range(1600)]
        s0 = (self.now() // 60000) * 60000
        self.assertEqual(self.dedup_commit(hashes[:1000], s0 + 40000), [1000, 0])
        self.assertIsNone(self.r.get("nousu:ids:%d" % (s0 // 60000 + 1)))  # 20 s left
        self.assertEqual(self.dedup_commit(hashes[1000:1200], s0 + 50000), [200, 0])
        # 1200 ids in the 10 s since the first, plus a quarter: 9000 in the
        # next 60 s, the smallest generation, 4 parts; 2 due, 1 made a commit
        nxt = s0 + 60000
        self.assertEqual(gen(9000, 16384), gen(0, 16384))
        self.assertEqual(self.slice_gens(nxt), [gen(9000, 16384, made=1)])
        self.dedup_commit(hashes[1200:1210], s0 + 50000)
        self.dedup_commit(hashes[1210:1220], s0 + 50000)
        self.assertEqual(self.slice_gens(nxt), [gen(9000, 16384, made=2)])
        self.assertEqual([self.r.exists(self.table_key(nxt, p)) for p in range(4)], [1, 1, 0, 0])
        self.assertEqual(table_ids(self.table(nxt, 1, 0)), set())
        ttl = (nxt // 60000 + 1) * 60000 + 120000 + 5000 - (s0 + 50000)
        self.assertTrue(ttl - 5000 < self.r.pttl(self.table_key(nxt, 0)) <= ttl)
        for k in range(1220, 1300, 40):
            self.dedup_commit(hashes[k:k + 40], s0 + 55000)
        self.assertEqual(self.slice_gens(nxt), [gen(9000, 16384)])
        self.assertEqual([self.r.exists(self.table_key(nxt, p)) for p in range(4)], [1] * 4)
        # the next slice takes the generation made for it, and finds the old ids
        self.assertEqual(self.dedup_commit(hashes[1250:1600], nxt + 1000), [300, 50])
        self.assertEqual(self.slice_gens(nxt), [gen(9000, 16384, n=300, since=nxt + 1000)])

    def test_the_next_generation_made_ahead(self):
        """Once a generation is a quarter full and this slice's pace says its
        tables will not hold the rest of the slice, one more is made ahead,
        sized for the difference, at most 1 part a commit and no faster
        than the first fills from 1/4 to 4/5 of the rest (AHEAD_FROM,
        AHEAD_DONE); it takes ids only once the first is full."""
        self.part_slots = 16384
        rng = random.Random(11)
        s0 = (self.now() // 60000) * 60000
        g1 = gen(37000, 16384)
        room = self.room(g1)
        first = [rng.getrandbits(64) for _ in range(room)]
        self.assertEqual(self.dedup_commit(first[:37000], s0 + 30000), [37000, 0])
        # 37000 ids in 30 s (the first generation's are too new for a pace), x 1.25:
        # 46250 more to come, room - 37000 free: a generation for the difference
        g2 = gen(max(46250 - (room - 37000), room / 4), 16384)
        self.assertEqual(g2[3], 4)
        # 3 of its 4 parts due, 1 made: the most a commit makes
        self.assertEqual(self.due(37000 / room, 4), 3)
        self.assertEqual(self.slice_gens(s0), [g1[:1] + [37000] + g1[2:] + [s0 + 30000],
                                               g2[:4] + [1]])
        self.assertEqual([self.r.exists(self.table_key(s0, p, 2)) for p in range(4)],
                         [1, 0, 0, 0])
        self.dedup_commit(first[37000:37500], s0 + 30100)
        self.assertEqual(self.slice_gens(s0)[1], g2[:4] + [2])
        # paced: with the first 38010/room full, 3 of 4 parts are due
        self.assertEqual(self.due(38010 / room, 4), 3)
        self.dedup_commit(first[37500:38000], s0 + 30100)
        self.dedup_commit(first[38000:38010], s0 + 30100)
        self.assertEqual(self.slice_gens(s0)[1], g2[:4] + [3])
        self.assertFalse(self.r.exists(self.table_key(s0, 3, 2)))
        for k in range(38010, room, 2000):
            self.dedup_commit(first[k:k + 2000], s0 + 30200)
        self.assertEqual(self.slice_gens(s0)[1], g2)  # all made before it is needed
        gens = self.slice_gens(s0)
        self.assertEqual(len(gens), 2)  # no third: the second is empty yet
        self.assertEqual(gens[0][1], room)
        # full: the next ids go to the one made ahead, found there after
        more = [rng.getrandbits(64) for _ in range(50)]
        self.assertEqual(self.dedup_commit(more, s0 + 30300), [50, 0])
        self.assertEqual(self.slice_gens(s0)[1], g2[:1] + [50] + g2[2:] + [s0 + 30300])
        self.assertEqual(self.dedup_commit(more[:5] + first[:5], s0 + 30400), [0, 10])

    @staticmethod
    def due(fill, parts):
        """Parts of an extra generation due with its predecessor fill full."""
        return math.ceil(parts * (fill - 0.25) / 0.75 / 0.8)

    def lull_then_surge(self, surge_ms):
        """A slice whose first generation filled slowly (60,199 ids over 19 s)
        and whose second (made at once when the first was full: 8 parts at
        most, TABLE_NOW_PARTS) takes 39,000 ids in surge_ms: the extra
        generation then planned, the second's room, the first's and s0."""
        self.part_slots = 16384
        rng = random.Random(12)
        s0 = (self.now() // 60000) * 60000
        g1 = gen(1000, 16384)
        room1 = self.room(g1)
        ids = [rng.getrandbits(64) for _ in range(room1 + 40000)]
        for k in range(0, room1, 10000):
            self.dedup_commit(ids[k:min(k + 10000, room1)], s0 + 1000)
        self.assertEqual(self.dedup_commit(ids[room1:room1 + 1000], s0 + 20000), [1000, 0])
        g2 = gen(8 * math.floor(16384 * 3 / 4 * 0.98), 16384, n=1000, since=s0 + 20000)
        self.assertEqual(self.slice_gens(s0), [g1[:1] + [room1] + g1[2:] + [s0 + 1000], g2])
        room2 = self.room(g2)
        # under a quarter full, then over it: planned at 40,000 ids
        self.dedup_commit(ids[room1 + 1000:room1 + 14000], s0 + 20000 + surge_ms)
        self.assertLess(14000, room2 / 4)
        self.assertEqual(len(self.slice_gens(s0)), 2)
        self.dedup_commit(ids[room1 + 14000:room1 + 40000], s0 + 20000 + surge_ms)
        gens = self.slice_gens(s0)
        self.assertEqual(gens[1][1], 40000)
        self.assertEqual(len(gens), 3)
        return gens[2], room2, room1, s0

    def test_the_pace_of_a_slice_is_its_latest_generations(self):
        """The extra generation is sized from the pace of the generation
        taking ids (40,000 in 8 s), not the slice's average (100,199 in 28
        s), which came short once the pace rose."""
        g3, room2, room1, _ = self.lull_then_surge(8000)
        left, free = 32000, room2 - 40000
        self.assertLess(40000 / 8000 * 1.25 * left - free, 4 * room2)
        self.assertEqual(g3[:4], gen(40000 / 8000 * 1.25 * left - free, 16384)[:4])
        average = (room1 + 40000) / 28000 * 1.25 * left - free
        self.assertNotEqual(g3[:4], gen(average, 16384)[:4])

    def test_planned_early_in_a_slice_from_a_measured_pace(self):
        """Within the first 5 s of a slice, an extra generation is planned
        once the pace is measured over a second of ids, not left until 5 s
        in (when a surge had filled the last: the parts then due came at
        once, 2 a commit, 64 MB of Redis page faults in 0.2 s)."""
        self.part_slots = 16384
        rng = random.Random(13)
        s0 = (self.now() // 60000) * 60000
        ids = [rng.getrandbits(64) for _ in range(21000)]
        self.assertEqual(self.dedup_commit(ids[:1000], s0 + 100), [1000, 0])
        g1 = gen(1000, 16384, n=1000, since=s0 + 100)
        room = self.room(g1)
        self.dedup_commit(ids[1000:20000], s0 + 1000)  # a quarter full, 0.9 s of ids
        self.assertGreater(20000, room / 4)
        self.assertEqual(len(self.slice_gens(s0)), 1)
        self.dedup_commit(ids[20000:], s0 + 1100)  # a second of ids: 21,000 of them
        gens = self.slice_gens(s0)
        self.assertEqual(len(gens), 2)
        want = min(21000 / 1000 * 1.25 * (60000 - 1100) - (room - 21000), 4 * room)
        self.assertEqual(gens[1][:4], gen(want, 16384)[:4])

    def test_an_extra_generation_is_at_most_4_times_the_last(self):
        """At 40,000 ids in 2 s the rest of the slice wants 869,602 more ids:
        the extra generation is 4 times the last instead; the one after it
        will be planned once it is a quarter full, with time to make it."""
        g3, room2, _, s0 = self.lull_then_surge(2000)
        self.assertGreater(40000 / 2000 * 1.25 * 38000 - (room2 - 40000), 4 * room2)
        self.assertEqual(g3[:4], gen(4 * room2, 16384)[:4])

    def table_key(self, wall, part, gen=1):
        return "nousu:ids:%d:%d:t%d" % (wall // 60000, gen, part)

    def test_without_nousu_idaddn_in_the_acl_the_function_uses_idadd(self):
        self.r.execute_command("ACL", "SETUSER", "old", "on", ">pw", "~*", "&*", "+@all",
                               "-nousu.idaddn")
        rng = random.Random(4)
        hashes = [rng.getrandbits(64) for _ in range(300)]
        w0 = (self.now() // 60000) * 60000 + 1000
        mine = self.r
        self.r = redis.Redis(host="127.0.0.1", port=self.redis.port, username="old", password="pw")
        try:
            self.assertEqual(self.dedup_commit(hashes, w0), [300, 0])
            self.assertEqual(self.dedup_commit(hashes[:50], w0 + 10), [0, 50])
        finally:
            self.r = mine
        st = self.r.info("commandstats")
        self.assertGreater(st["cmdstat_nousu.idadd"]["calls"], 0)
        self.assertEqual(st.get("cmdstat_nousu.idaddn", {}).get("calls", 0), 0)
        self.assertEqual(table_ids(self.table(w0, 1)), set(hashes))

    def test_sets_then_the_module(self):
        """Ids remembered in sets (before the module was loaded) are still
        found; new ids go to a table, a generation of its own."""
        rng = random.Random(8)
        hashes = [rng.getrandbits(64) for _ in range(60)]
        w0 = (self.now() // 60000) * 60000 + 1000
        self.r.execute_command("MODULE", "UNLOAD", "nousu")
        self.assertEqual(self.dedup_commit(hashes[:30], w0), [30, 0])
        self.assertEqual(self.slice_gens(w0), [[4, 30]])  # 10 ids a set, dedup_commit's cfg
        self.r.execute_command("MODULE", "LOAD", MODULE_SO)
        self.assertEqual(self.dedup_commit(hashes, w0 + 100), [30, 30])
        self.assertEqual(self.slice_gens(w0), [[4, 30], gen(30, n=30, since=w0 + 100)])

    def test_live_tables_without_the_module_fail_the_commit(self):
        w0 = (self.now() // 60000) * 60000 + 1000
        self.assertEqual(self.dedup_commit([11, 12], w0), [2, 0])
        self.r.execute_command("MODULE", "UNLOAD", "nousu")
        with self.assertRaisesRegex(redis.ResponseError, "nousu Redis module"):
            self.dedup_commit([11, 13], w0 + 100)
        self.r.execute_command("MODULE", "LOAD", MODULE_SO)
        self.assertEqual(self.dedup_commit([11, 13], w0 + 200), [1, 1])

    @staticmethod
    def now():
        return now_ms()


# test_function's own tests run there, not here
for name in [n for n in vars(test_function.Function) if n.startswith("test_")]:
    if name not in vars(Dedup):
        setattr(Dedup, name, None)

if __name__ == "__main__":
    unittest.main()
