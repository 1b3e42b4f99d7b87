"""NOUSU.HINTS of the nousu Redis module (daemon/redis-module/hints.c) on a
real redis-server: the command alone (compare-and-set of the state, PFADD,
TTLs, niches, the places it must leave, refusals, errors before and after a
write, the writes in the AOF rather than the command), the stash
(NOUSU.STASH and its kin, stash.c), then the Function using them
(test_runs.Hints again with the module, and again with every hint
stashed; a run with an id seen before left to the Function; a stash lost)
and a daemon with commit_hints=on.
Skipped when the module was not built (no redismodule.h)."""
import glob
import os
import time
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

    def test_a_state_of_the_same_length_is_written_in_place_and_gets_the_ttl(self):
        old, new = b"o" * 200, b"n" * 199 + b"!"
        self.r.set("p:{a}", old, ex=100)
        blob, _ = flat(("a", old, new, "7", True, False, 1, []))
        self.assertEqual(hints_cmd(self.r, blob), [1, [], []])
        self.assertEqual(self.r.get("p:{a}"), new)
        self.assertGreater(self.r.ttl("p:{a}"), 100)

    def test_a_shared_value_is_not_written_over(self):
        """Redis shares small integers between keys: the state's own copy
        changes, the other key's stays."""
        self.r.set("p:{a}", b"42")
        self.r.set("other", b"42")
        self.assertEqual(hints_cmd(self.r, flat(("a", b"42", b"43", "7", True, False, 1, []))[0]),
                         [1, [], []])
        self.assertEqual((self.r.get("p:{a}"), self.r.get("other")), (b"43", b"42"))

    def test_a_state_of_another_length_is_replaced_whole(self):
        self.r.set("p:{a}", b"old", ex=100)
        blob, _ = flat(("a", b"old", b"x" * 300, "7", True, False, 1, []),
                       ("a", b"x" * 300, b"s", "7", False, False, 2, []))
        self.assertEqual(hints_cmd(self.r, blob), [2, [], []])
        self.assertEqual(self.r.get("p:{a}"), b"s")
        self.assertGreater(self.r.ttl("p:{a}"), 100)

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


def stash_info(r):
    return {k: v for k, v in r.info("nousu").items() if k.startswith("nousu_stash_")}


@unittest.skipUnless(HAVE_MODULE, SKIP)
class Stash(unittest.TestCase):
    """The stash alone: kept, read, dropped, aged, bounded, never replicated."""

    def setUp(self):
        self.redis = redis_for(self, "nousu-stash-", module=MODULE_SO,
                               extra=("stash_max_age_ms", "300", "stash_max_mb", "1"))
        self.dir, self.r = self.redis.dir, self.redis.client

    def test_kept_read_in_ranges_and_dropped(self):
        r = self.r
        self.assertEqual(r.execute_command("NOUSU.STASH", "c1", b"hh\x00h", b"eventsxyz"), b"OK")
        self.assertEqual(r.execute_command("NOUSU.STASHLEN", "c1"), [4, 9])
        self.assertEqual(r.execute_command("NOUSU.STASHGET", "c1", "hints"), b"hh\x00h")
        self.assertEqual(r.execute_command("NOUSU.STASHGET", "c1", "events", 2, 4), b"ven")
        self.assertEqual(r.execute_command("NOUSU.STASHGET", "c1", "events", 10, 9), b"")
        for bad in ((0, 3), (2, 10), (5, 3)):
            with self.assertRaisesRegex(redis.ResponseError, "range is not within"):
                r.execute_command("NOUSU.STASHGET", "c1", "events", *bad)
        with self.assertRaisesRegex(redis.ResponseError, "hints and events"):
            r.execute_command("NOUSU.STASHGET", "c1", "other")
        self.assertEqual(stash_info(r)["nousu_stash_bytes"], 13)
        r.execute_command("NOUSU.STASH", "c1", b"h", b"e")  # sent again: replaced
        self.assertEqual(stash_info(r)["nousu_stash_bytes"], 2)
        self.assertEqual(r.execute_command("NOUSU.STASHDEL", "c1"), 1)
        self.assertEqual(r.execute_command("NOUSU.STASHDEL", "c1"), 0)
        self.assertIsNone(r.execute_command("NOUSU.STASHLEN", "c1"))
        self.assertIsNone(r.execute_command("NOUSU.STASHGET", "c1", "hints"))
        self.assertEqual((stash_info(r)["nousu_stash_entries"], stash_info(r)["nousu_stash_bytes"]),
                         (0, 0))
        self.assertEqual(r.dbsize(), 0)  # not in the keyspace

    def test_old_entries_go_at_the_next_stash_and_a_full_stash_refuses(self):
        r = self.r
        r.execute_command("NOUSU.STASH", "old", b"h", b"e")
        time.sleep(0.5)  # past stash_max_age_ms (300)
        r.execute_command("NOUSU.STASH", "new", b"h", b"e")
        self.assertIsNone(r.execute_command("NOUSU.STASHLEN", "old"))
        self.assertEqual(r.execute_command("NOUSU.STASHLEN", "new"), [1, 1])
        self.assertEqual(stash_info(r)["nousu_stash_expired"], 1)
        with self.assertRaisesRegex(redis.ResponseError, "stash is full"):  # stash_max_mb 1
            r.execute_command("NOUSU.STASH", "big", b"h" * (1 << 20), b"e")
        self.assertIsNone(r.execute_command("NOUSU.STASHLEN", "big"))
        self.assertEqual(stash_info(r)["nousu_stash_refused"], 1)

    def test_hintsof_takes_the_stashed_hints_and_errs_before_writing_without(self):
        r = self.r
        r.set("p:{a}", b"old-a")
        blob, _ = flat(("a", b"old-a", b"new-a", "7", True, "cats", 5, ["u1"]))
        with self.assertRaisesRegex(redis.ResponseError, "no such stash"):
            r.execute_command("NOUSU.HINTSOF", "c9", "p:", TTL, "")
        self.assertEqual(r.get("p:{a}"), b"old-a")
        r.execute_command("NOUSU.STASH", "c9", blob, b"")
        self.assertEqual(r.execute_command("NOUSU.HINTSOF", "c9", "p:", TTL, ""),
                         [1, [], [b"cats", 5]])
        self.assertEqual((r.get("p:{a}"), r.pfcount("p:{a}:u:7")), (b"new-a", 1))

    def test_a_bad_module_argument_fails_the_load(self):
        d = os.path.join(self.dir, "bad")
        os.mkdir(d)
        with self.assertRaises(AssertionError):
            RedisServer(d, module=MODULE_SO, extra=("stash_max_age_ms", "0"))
        with open(os.path.join(d, "redis.log")) as f:
            self.assertIn("stash_max_age_ms 0: not a setting", f.read())

    def test_nothing_of_it_reaches_the_aof(self):
        self.redis.stop()
        aof = RedisServer(self.dir, appendonly=True, module=MODULE_SO)
        self.addCleanup(stop_pid, aof.proc)
        aof.client.set("p:{a}", b"s")
        aof.client.execute_command("NOUSU.STASH", "c1", flat(("a", b"s", b"t", "9", True, False, 1,
                                                               ["x"]))[0], b"evs")
        aof.client.execute_command("NOUSU.HINTSOF", "c1", "p:", TTL, "")
        aof.client.execute_command("NOUSU.STASHDEL", "c1")
        aof.stop()
        text = b"".join(open(f, "rb").read()
                        for f in glob.glob(os.path.join(self.dir, "appendonlydir", "*.aof")))
        self.assertNotIn(b"STASH", text.upper())
        self.assertNotIn(b"HINTSOF", text.upper())
        self.assertIn(b"PXAT", text)  # the hint's writes are there


@unittest.skipUnless(HAVE_MODULE, SKIP)
class FunctionHints(test_runs.Hints):
    """test_runs.Hints with the module loaded, whatever NOUSU_REDIS_MODULE
    says, and what only the module path has."""

    redis_kw = {"module": MODULE_SO, "extra": ("--enable-module-command", "yes")}
    module_cmd = "nousu.hints"  # the command that takes them

    def test_the_module_takes_the_hint(self):
        self.base("a:", "b:")
        evs = self.later()
        self.send("a:", evs)
        before = cmd_calls(self.r, self.module_cmd)
        out = test_runs.up(self.send("b:", evs, self.hint_for("b:", evs)))
        self.assertEqual(out[3], 1)
        self.assertEqual(cmd_calls(self.r, self.module_cmd), before + 1)
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
class StashedHints(FunctionHints):
    """FunctionHints again with each commit's ARGV[6] and ARGV[7] stashed
    (ARGV[10] names the stash): the same outcomes, the stash dropped by the
    commit; and a stash lost declines the commit before any write."""

    module_cmd = "nousu.hintsof"
    test_without_the_module_the_function_takes_it = None  # no module, no stash

    def send(self, prefix, evs, hint=None, verify=False, want=False, after=None, cid=None):
        real = self.r.execute_command

        def stashing(*argv):
            argv = list(argv)
            if argv[:2] == ["FCALL", "nousu_commit_runs"] and len(argv) >= 10:
                cid_ = argv[4]
                real("NOUSU.STASH", cid_, argv[9], argv[8])
                argv[8:10] = ["", ""]
                argv += [""] * (12 - len(argv)) + [cid_]
            return real(*argv)

        self.r.execute_command = stashing
        try:
            out = super().send(prefix, evs, hint, verify, want, after, cid)
        finally:
            del self.r.execute_command
        self.assertEqual(stash_info(self.r)["nousu_stash_entries"], 0)  # an error leaves it
        return out

    def test_a_stash_lost_declines_the_commit_and_writes_nothing(self):
        self.base("b:")
        evs = self.later()
        hint = self.hint_for("b:", evs)
        before = (self.r.dbsize(), self.r.get("b:{h}"))
        self.r.execute_command = lambda *a: (
            redis.Redis.execute_command(self.r, *a[:8], "", "", "", "", "gone")
            if a[:2] == ("FCALL", "nousu_commit_runs") else redis.Redis.execute_command(self.r, *a))
        try:
            self.assertEqual(test_runs.Hints.send(self, "b:", evs, hint), 0)
        finally:
            del self.r.execute_command
        self.assertEqual((self.r.dbsize(), self.r.get("b:{h}")), before)

    def test_a_commit_answered_before_drops_its_stash(self):
        self.base("b:")
        evs = self.later()
        hint = self.hint_for("b:", evs)
        first = self.send("b:", evs, hint, cid="again")
        self.assertEqual(self.send("b:", evs, hint, cid="again"), first)  # send() checks the stash


def prime_then_send(d, tag, t, frames):
    """20 creators tag:0..19 given a like (and a follower count: micro), so
    that the daemon holds their states, then each frame in turn, a list of
    events; each waited on until accepted."""
    p = d.push()
    p.send(pack([ev("%s:%d" % (tag, i), "like", t, actor="u0", followers=3000) for i in range(20)]))
    n = 20
    d.wait_accepted(n)
    for frame in frames:
        p.send(pack(frame))
        n += len(frame)
        d.wait_accepted(n)


@unittest.skipUnless(HAVE_MODULE, SKIP)
class Daemon(Case):
    """nousud with commit_hints=on (not verify) on a Redis with the module:
    hints are taken there, from the stash (commit_stash=on, the default),
    and the counts come out as without hints."""

    redis_opts = {"module": MODULE_SO}
    daemon_args = ("--commit_hints=on",)
    via = "nousu.hintsof"  # commits whose hints are under 1 KB use NOUSU.HINTS

    def test_hot_runs_are_taken_by_the_module(self):
        t = now_ms() - 1000
        prime_then_send(self.d, "mh", t, [
            [ev("mh:%d" % i, "comment", t + k, actor="u%d" % (k + 1)) for i in range(20)] +
            [ev("mh:%d" % i, "view", t + k, n=3) for i in range(20)] for k in range(5)])
        st = self.d.stats()
        self.assertGreater(st["hints_taken"], 0)
        self.assertGreater(cmd_calls(self.r, self.via), 0)
        self.assertEqual(cmd_calls(self.r, "nousu.stash"), cmd_calls(self.r, "nousu.hintsof"))
        if self.via == "nousu.hints":
            self.assertEqual(cmd_calls(self.r, "nousu.stash"), 0)
        self.assertEqual(stash_info(self.r)["nousu_stash_entries"], 0)  # each taken, dropped
        for i in range(20):
            c = self.d.creator("mh:%d" % i)
            self.assertEqual([c["counts"][k] for k in ("like", "comment", "view")], [1, 5, 15])
            self.assertEqual((c["engagement"], c["unique_engagers"]), (1 + 5 * 3, 6))
        self.assertEqual(counts_in_redis(self.r, "mh:0")[1], 1)


@unittest.skipUnless(HAVE_MODULE, SKIP)
class DaemonStashRefused(Case):
    """A Redis whose stash refuses everything (stash_max_mb 0): each commit
    with hints finds no stash, declines before writing, and goes again as
    the events form; nothing is lost or counted twice."""

    redis_opts = {"module": MODULE_SO, "extra": ("stash_max_mb", "0")}
    daemon_args = ("--commit_hints=on",)

    def test_a_refused_stash_sends_the_commit_again_without_hints(self):
        t = now_ms() - 1000
        prime_then_send(self.d, "ms", t, [
            [ev("ms:%d" % i, "comment", t + k, actor="u%d" % (k + 1)) for i in range(20)]
            for k in range(3)])
        self.assertGreater(stash_info(self.r)["nousu_stash_refused"], 0)
        self.assertEqual(cmd_calls(self.r, "nousu.hintsof"), 0)
        st = self.d.stats()
        self.assertEqual((st["hints_taken"], st["redis_errors"]), (0, 0))
        for i in range(20):
            c = self.d.creator("ms:%d" % i)
            self.assertEqual([c["counts"][k] for k in ("like", "comment")], [1, 3])
            self.assertEqual(c["unique_engagers"], 4)


@unittest.skipUnless(HAVE_MODULE, SKIP)
class DaemonNoStash(Daemon):
    """The same with commit_stash=off: hints as arguments, no stash."""

    daemon_args = ("--commit_hints=on", "--commit_stash=off")
    via = "nousu.hints"  # and NOUSU.STASH, HINTSOF never: their counts stay equal, 0


if __name__ == "__main__":
    unittest.main()
