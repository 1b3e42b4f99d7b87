"""NOUSU.HINTS of the nousu Redis module (daemon/redis-module/hints.c) on a
real redis-server: the command alone (compare-and-set of the state, PFADD,
TTLs, niches, the places it must leave, refusals, errors before and after a
write, the writes in the AOF rather than the command), then the Function
using it (test_runs.Hints again with the module; a run with an id seen
before left to the Function) and a daemon with commit_hints=on.
Skipped when the module was not built (no redismodule.h)."""
import glob
import os
import unittest

import msgpack
import redis

import test_runs
from harness import (MODULE_SO, Case, RedisServer, counts_in_redis, ev, now_ms, pack,
                     redis_for, stop_pid)
from test_runs import LIKE, Ev

HAVE_MODULE = os.path.exists(MODULE_SO)
SKIP = "nousu.so not built (no redismodule.h: bash .ci/redismodule-h)"
TTL = 3600


def pk(obj):
    return msgpack.packb(obj, use_bin_type=False)


def flat(*hints):
    """ARGV[7] for hints (creator, old, new, bucket, new bucket?, niche or
    False, now, actors), and each one's place."""
    objs, places = [], []
    for c, old, new, bucket, newb, niche, now, actors in hints:
        places.append(len(objs) + 1)
        objs += [c, False, 1, 1, old, new, bucket, newb, niche, now, len(actors)] + actors
    return pk(objs), places


def hints_cmd(r, blob, leave=(), prefix="p:", ttl=TTL):
    return r.execute_command("NOUSU.HINTS", prefix, ttl, blob, pk(list(leave)) if leave else "")


def cmd_calls(r, name):
    return r.info("commandstats").get("cmdstat_" + name, {}).get("calls", 0)


@unittest.skipUnless(HAVE_MODULE, SKIP)
class Command(unittest.TestCase):
    def setUp(self):
        self.redis = redis_for(self, "nousu-hints-", module=MODULE_SO)
        self.dir, self.r = self.redis.dir, self.redis.client

    def test_a_fresh_hint_is_taken_and_a_stale_one_left_untouched(self):
        self.r.set("p:{a}", b"old-a", ex=100)
        self.r.set("p:{b}", b"moved-on")
        blob, (pa, pb) = flat(("a", b"old-a", b"new-a", "7", True, "cats", 5, ["u1", "u2", "u1"]),
                              ("b", b"old-b", b"new-b", "7", True, "dogs", 9, ["u3"]))
        self.assertEqual(hints_cmd(self.r, blob), [1, [pb], [b"cats", 5]])
        self.assertEqual(self.r.get("p:{a}"), b"new-a")
        self.assertGreater(self.r.ttl("p:{a}"), 100)  # the hint's TTL, not the old one
        self.assertEqual(self.r.pfcount("p:{a}:u:7"), 2)
        self.assertGreater(self.r.ttl("p:{a}:u:7"), 100)  # a new bucket gets the TTL
        self.assertEqual((self.r.get("p:{b}"), self.r.ttl("p:{b}")), (b"moved-on", -1))
        self.assertFalse(self.r.exists("p:{b}:u:7"))

    def test_an_old_bucket_keeps_its_ttl_and_no_actors_no_pfadd(self):
        self.r.set("p:{a}", b"s0")
        self.r.pfadd("p:{a}:u:3", "u0")
        blob, _ = flat(("a", b"s0", b"s1", "3", False, False, 1, ["u1"]),
                       ("a", b"s1", b"s2", "4", True, False, 2, []))
        self.assertEqual(hints_cmd(self.r, blob), [2, [], []])
        self.assertEqual(self.r.get("p:{a}"), b"s2")  # in order: the second saw the first's
        self.assertEqual((self.r.pfcount("p:{a}:u:3"), self.r.ttl("p:{a}:u:3")), (2, -1))
        self.assertFalse(self.r.exists("p:{a}:u:4"))

    def test_niches_once_each_with_the_newest_now(self):
        hs = []
        for i, (niche, now) in enumerate([("cats", 5), ("dogs", 7), ("cats", 9), (False, 11),
                                          ("cats", 3)]):
            self.r.set("p:{c%d}" % i, b"s")
            hs.append(("c%d" % i, b"s", b"t", "1", False, niche, now, []))
        taken, refused, nn = hints_cmd(self.r, flat(*hs)[0])
        self.assertEqual((taken, refused), (5, []))
        self.assertEqual(dict(zip(nn[::2], nn[1::2])), {b"cats": 9, b"dogs": 7})
        self.assertEqual(len(nn), 4)

    def test_places_to_leave_are_neither_taken_nor_refused(self):
        for c in "ab":
            self.r.set("p:{%s}" % c, b"s")
        blob, (pa, pb) = flat(("a", b"s", b"t", "1", False, False, 1, ["x"]),
                              ("b", b"s", b"t", "1", False, False, 1, ["x"]))
        self.assertEqual(hints_cmd(self.r, blob, leave=[pb]), [1, [], []])
        self.assertEqual((self.r.get("p:{a}"), self.r.get("p:{b}")), (b"t", b"s"))
        self.assertFalse(self.r.exists("p:{b}:u:1"))

    def test_a_float_now_is_refused(self):
        self.r.set("p:{a}", b"s")
        blob, (pa,) = flat(("a", b"s", b"t", "1", False, "cats", 5.5, ["x"]))
        self.assertEqual(hints_cmd(self.r, blob), [0, [pa], []])
        self.assertEqual(self.r.get("p:{a}"), b"s")

    def test_malformed_input_changes_nothing(self):
        self.r.set("p:{a}", b"s")
        blob, _ = flat(("a", b"s", b"t", "1", False, False, 1, ["x", "y"]))
        bad = [blob[:-1],                        # truncated in the last actor
               blob + b"\x00",                   # a byte after the array
               pk(["a", False, 1, 1, b"s"]),     # a hint cut short
               pk(["a", 1, 1, 1, b"s", b"t", "1", False, False, 1, 0]),  # want not a bool
               pk(["a", False, 1, 1, b"s", b"t", "1", False, False, 1, 3, "x"]),  # 3 actors, 1 there
               b"", b"\xdd\xff\xff\xff\xff"]
        for b in bad:
            with self.assertRaisesRegex(redis.ResponseError, "nousu: the hints are malformed"):
                hints_cmd(self.r, b)
        with self.assertRaisesRegex(redis.ResponseError, "places to leave"):
            self.r.execute_command("NOUSU.HINTS", "p:", TTL, blob, pk(["x"]))
        with self.assertRaisesRegex(redis.ResponseError, "TTL"):
            hints_cmd(self.r, blob, ttl=0)
        with self.assertRaisesRegex(redis.ResponseError, "wrong number"):
            self.r.execute_command("NOUSU.HINTS", "p:", TTL, blob)
        self.assertEqual((self.r.get("p:{a}"), self.r.exists("p:{a}:u:1")), (b"s", 0))
        self.assertEqual(hints_cmd(self.r, pk([])), [0, [], []])

    def test_an_error_after_a_write_says_partly_written(self):
        for c in "ab":
            self.r.set("p:{%s}" % c, b"s")
        self.r.set("p:{a}:u:1", "not a hyperloglog")
        blob, _ = flat(("a", b"s", b"t", "1", False, False, 1, ["x"]),
                       ("b", b"s", b"t", "1", False, False, 1, ["x"]))
        with self.assertRaisesRegex(redis.ResponseError,
                                    "nousu: hints partly written: PFADD p:{a}:u:1"):
            hints_cmd(self.r, blob)
        self.assertEqual((self.r.get("p:{a}"), self.r.get("p:{b}")), (b"t", b"s"))

    def test_the_aof_holds_the_writes_not_the_command(self):
        """A Redis without the module loads the AOF of one that took hints."""
        self.redis.stop()
        aof = RedisServer(self.dir, appendonly=True, module=MODULE_SO)
        self.addCleanup(stop_pid, aof.proc)
        r = aof.client
        r.set("p:{a}", b"s")
        hints_cmd(r, flat(("a", b"s", b"t", "9", True, False, 1, ["x", "y"]))[0])
        want = (r.get("p:{a}"), r.pfcount("p:{a}:u:9"), r.pttl("p:{a}"))
        aof.stop()
        text = b"".join(open(f, "rb").read()
                        for f in glob.glob(os.path.join(self.dir, "appendonlydir", "*.aof")))
        self.assertNotIn(b"NOUSU.HINTS", text.upper())
        self.assertIn(b"PXAT", text)
        plain = RedisServer(self.dir, appendonly=True, module=None, expect_empty=False)
        self.addCleanup(stop_pid, plain.proc)
        got = (plain.client.get("p:{a}"), plain.client.pfcount("p:{a}:u:9"),
               plain.client.pttl("p:{a}"))
        self.assertEqual(got[:2], want[:2])
        self.assertTrue(0 < got[2] <= want[2], (got, want))  # the same deadline, later


@unittest.skipUnless(HAVE_MODULE, SKIP)
class FunctionHints(test_runs.Hints):
    """test_runs.Hints with the module loaded, whatever NOUSU_REDIS_MODULE
    says, and what only the module path has."""

    redis_kw = {"module": MODULE_SO, "extra": ("--enable-module-command", "yes")}

    def test_the_module_takes_the_hint(self):
        self.base("a:", "b:")
        evs = self.later()
        self.send("a:", evs)
        before = cmd_calls(self.r, "nousu.hints")
        out = test_runs.up(self.send("b:", evs, self.hint_for("b:", evs)))
        self.assertEqual(out[3], 1)
        self.assertEqual(cmd_calls(self.r, "nousu.hints"), before + 1)
        self.assertEqual(cmd_calls(self.r, "pfadd") > 0, True)
        self.assertEqual(self.state("b:"), self.state("a:"))
        self.assertEqual(self.r.hgetall("b:nichenow"), self.r.hgetall("a:nichenow"))

    def test_without_the_module_the_function_takes_it(self):
        self.base("a:", "b:")
        evs = self.later()
        self.send("a:", evs)
        self.r.execute_command("MODULE", "UNLOAD", "nousu")
        out = test_runs.up(self.send("b:", evs, self.hint_for("b:", evs)))
        self.assertEqual(out[3], 1)
        self.assertEqual(self.state("b:"), self.state("a:"))

    def test_a_run_with_an_id_seen_before_is_left_to_the_function(self):
        """The module must not take a hinted run the Function walks: its
        duplicate would be counted."""
        first = [Ev("h", LIKE, self.t, idh=41, actor="u0", niche="cats")]
        self.send("a:", first)
        self.send("b:", first)
        again = [Ev("h", LIKE, self.t, idh=41, actor="u0"), Ev("h", LIKE, self.t + 1, idh=42)]
        self.send("a:", again)
        wrong = self.hint_for("b:", again)  # counts both: the dup too
        out = test_runs.up(self.send("b:", again, wrong))
        self.assertEqual(out[3], 0)
        self.assertEqual(out[0][0][2], 1)  # the duplicate, counted as one
        self.assertEqual(self.state("b:"), self.state("a:"))


@unittest.skipUnless(HAVE_MODULE, SKIP)
class Daemon(Case):
    """nousud with commit_hints=on (not verify) on a Redis with the module:
    hints are taken there and the counts come out as without hints."""

    redis_opts = {"module": MODULE_SO}
    daemon_args = ("--commit_hints=on",)

    def test_hot_runs_are_taken_by_the_module(self):
        t = now_ms() - 1000
        p = self.d.push()
        p.send(pack([ev("mh:%d" % i, "like", t, actor="u0", followers=3000) for i in range(20)]))
        self.d.wait_accepted(20)
        for k in range(5):
            p.send(pack([ev("mh:%d" % i, "comment", t + k, actor="u%d" % (k + 1))
                         for i in range(20)] +
                        [ev("mh:%d" % i, "view", t + k, n=3) for i in range(20)]))
            self.d.wait_accepted(20 + 40 * (k + 1))
        st = self.d.stats()
        self.assertGreater(st["hints_taken"], 0)
        self.assertGreater(cmd_calls(self.r, "nousu.hints"), 0)
        for i in range(20):
            c = self.d.creator("mh:%d" % i)
            self.assertEqual([c["counts"][k] for k in ("like", "comment", "view")], [1, 5, 15])
            self.assertEqual((c["engagement"], c["unique_engagers"]), (1 + 5 * 3, 6))
        self.assertEqual(counts_in_redis(self.r, "mh:0")[1], 1)


if __name__ == "__main__":
    unittest.main()
