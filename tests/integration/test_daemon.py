"""Integration tests of nousud against a real redis-server and real ZeroMQ
sockets: ingest on both endpoints, acks, dedup, dead letters, windows,
control queries, configuration errors and shutdown."""
import os
import subprocess
import threading
import time
import unittest

import msgpack
import redis

from harness import (NOUSUD, REDIS_MODULE, Case, RedisServer, counts_in_redis, ev, now_ms, pack,
                     wait_for)

HOUR = 3600 * 1000
DAY = 24 * HOUR


class Ingest(Case):
    def test_single_and_batch_are_counted(self):
        t = now_ms() - 1000
        p = self.d.push()
        p.send(pack(ev("ig:a", "like", t, actor="u1", followers=2000, niche="knitting")))
        p.send(pack([ev("ig:a", "comment", t, actor="u2", n=2),
                     ev("ig:a", "save", t, actor=7),
                     ev("ig:b", "view", t)]))
        self.d.wait_accepted(4)
        c = self.d.creator("ig:a")
        self.assertEqual(c["counts"]["like"], 1)
        self.assertEqual(c["counts"]["comment"], 2)
        self.assertEqual(c["counts"]["save"], 1)
        self.assertEqual(c["counts"]["view"], 0)
        # like 1 + 2 comments x 3 + save 4
        self.assertEqual(c["engagement"], 11)
        self.assertEqual(c["followers"], 2000)
        self.assertEqual(c["niche"], "knitting")
        self.assertEqual(c["tier"], "micro")
        self.assertEqual(c["unique_engagers"], 3)
        self.assertIsNone(c["last_alert"])
        self.assertEqual(self.d.creator("ig:b")["counts"]["view"], 1)

    def test_out_of_order_events_land_in_their_bucket(self):
        t = now_ms() - 1000
        p = self.d.push()
        # an event 30 h old (baseline), the newest, then one 2 h older (recent)
        p.send(pack([ev("ig:o", "share", t - 30 * HOUR),
                     ev("ig:o", "like", t, followers=3000),
                     ev("ig:o", "comment", t - 2 * HOUR)]))
        self.d.wait_accepted(3)
        c = self.d.creator("ig:o")
        self.assertEqual(c["engagement"], 1 + 3)
        self.assertEqual(c["counts"]["share"], 0)
        self.assertEqual(c["first_seen"], t - 30 * HOUR)
        self.assertEqual(c["last_seen"], t)
        # baseline: E_hist 4 over 1.x days of history in the span
        self.assertGreater(c["expected"], 0)

    def test_windows_roll_forward(self):
        t0 = now_ms() - 5 * DAY
        p = self.d.push()
        p.send(pack([ev("ig:r", "like", t0, followers=3000, n=10)]))
        p.send(pack([ev("ig:r", "like", t0 + 2 * DAY, n=5)]))
        self.d.wait_accepted(2)
        c = self.d.creator("ig:r")
        # the first like left the 24 h window two days later
        self.assertEqual(c["engagement"], 5)
        self.assertEqual(c["counts"]["like"], 5)
        # E_hist = 10 over days_hist: span ends 24..25 h before now, first is
        # 2 days before now -> about 1 day; mu = (10 + 90) / (1 + 1) ~ 50
        self.assertAlmostEqual(c["expected"], 50, delta=2.5)

    def test_too_old_and_future_are_rejected_and_dead_lettered(self):
        t = now_ms()
        p = self.d.push()
        p.send(pack(ev("ig:t", "like", t - 1000)))
        self.d.wait_accepted(1)
        p.send(pack([ev("ig:t", "like", t - 1000 - 25 * HOUR),
                     ev("ig:t", "like", t + 10 * 60 * 1000),
                     ev("ig:t", "like", t - 2000)]))
        self.d.wait_accepted(2)
        st = wait_for(lambda: self.d.stats()["events_rejected"] >= 2 and self.d.stats())
        self.assertEqual(st["rejected"]["too_old"], 1)
        self.assertEqual(st["rejected"]["future"], 1)
        reasons = sorted(e[1][b"reason"] for e in self.r.xrange("nousu:deadletter"))
        self.assertEqual(reasons, [b"future", b"too_old"])

    def test_event_ids_are_counted_once(self):
        t = now_ms() - 1000
        p = self.d.push()
        batch = [ev("ig:d", "like", t, id="e1"), ev("ig:d", "like", t, id="e2"),
                 ev("ig:d", "like", t, id="e1")]
        p.send(pack(batch))
        p.send(pack(batch))
        st = wait_for(lambda: self.d.stats()["events_duplicate"] >= 4 and self.d.stats())
        self.assertEqual(st["events_accepted"], 2)
        self.assertEqual(self.d.creator("ig:d")["counts"]["like"], 2)

    def test_malformed_frames_are_dead_lettered_and_daemon_keeps_serving(self):
        p = self.d.push()
        garbage = [b"", b"\xc1", b"\xdd\xff\xff\xff\xff", b"\x91" * 100 + b"\x80",
                   b"\x81\xa1a", pack(5), pack("hello"), pack({"creator": "x"}) + b"\x00"]
        for g in garbage:
            p.send(g)
        t = now_ms() - 1000
        p.send(pack([ev("ig:g", "like", t), 42, ev("ig:g", "nope", t),
                     {"creator": "ig:g", "type": "like", "ts": 1.5e12}]))
        self.d.wait_accepted(1)
        st = wait_for(lambda: self.d.stats()["events_rejected"] >= len(garbage) + 3
                      and self.d.stats())
        self.assertEqual(st["rejected"]["malformed"], len(garbage))
        self.assertEqual(st["rejected"]["not_a_map"], 1)
        self.assertEqual(st["rejected"]["unknown_type"], 1)
        self.assertEqual(st["rejected"]["bad_type"], 1)
        entries = self.r.xrange("nousu:deadletter")
        self.assertEqual(len(entries), len(garbage) + 3)
        raws = {e[1][b"raw"] for e in entries}
        self.assertIn(b"\xdd\xff\xff\xff\xff", raws)
        self.assertIn(pack(42), raws)  # the element's own bytes, not the frame
        for _, f in entries:
            self.assertEqual(f[b"source"], b"ingest")
            self.assertGreater(int(f[b"received"]), 0)
        self.assertTrue(self.d.try_ping())

    def test_oversize_and_batch_too_large(self):
        d = self.start_daemon("small", extra=["--max_frame_bytes=4096",
                                              "--max_batch_events=10"])
        p = d.push()
        t = now_ms() - 1000
        p.send(pack([ev("ig:s", "like", t, post="x" * 100)] * 40))
        p.send(pack([ev("ig:s", "like", t)] * 11))
        p.send(pack([ev("ig:s", "like", t)] * 10))
        d.wait_accepted(10)
        st = wait_for(lambda: d.stats()["events_rejected"] >= 2 and d.stats())
        self.assertEqual(st["rejected"]["oversize"], 1)
        self.assertEqual(st["rejected"]["batch_too_large"], 1)
        raw = self.r.xrange("nousu:deadletter")[0][1][b"raw"]
        self.assertEqual(len(raw), 4096)  # cut at 4 KiB


class Acknowledged(Case):
    def test_ack_counts_and_errors(self):
        t = now_ms() - 1000
        dl = self.d.dealer()
        batch = [ev("ig:k", "like", t, id="a"), {"creator": "ig:k"},
                 ev("ig:k", "like", t, id="a"), ev("ig:k", "share", t)]
        ack = self.d.request(dl, b"req-1", pack(batch))
        self.assertEqual((ack["ok"], ack["dup"], ack["rejected"]), (2, 1, 1))
        self.assertEqual(ack["errors"], [{"i": 1, "reason": "missing_type"}])
        # effects are committed before the ack: visible right away
        self.assertEqual(self.d.creator("ig:k")["engagement"], 1 + 4)

    def test_request_id_replays_first_ack(self):
        t = now_ms() - 1000
        dl = self.d.dealer()
        payload = pack([ev("ig:q", "like", t), ev("ig:q", "like", t), {"creator": "ig:q"}])
        first = self.d.request(dl, b"same-id", payload)
        again = self.d.request(dl, b"same-id", payload)
        self.assertEqual(first, again)
        self.assertEqual((first["ok"], first["rejected"]), (2, 1))
        self.assertEqual(self.d.creator("ig:q")["counts"]["like"], 2)
        st = self.d.stats()
        self.assertEqual(st["requests_replayed"], 1)
        # the replay neither counts nor dead-letters the rejection again
        self.assertEqual(st["events_rejected"], 1)
        self.assertEqual(len(self.r.xrange("nousu:deadletter")), 1)

    def test_frame_rejected_whole_counts_one(self):
        dl = self.d.dealer()
        ack = self.d.request(dl, b"r", b"\x92\x80")
        self.assertEqual((ack["ok"], ack["dup"], ack["rejected"]), (0, 0, 1))
        self.assertEqual(ack["errors"], [{"i": -1, "reason": "malformed"}])
        entry = self.r.xrange("nousu:deadletter")[0][1]
        self.assertEqual(entry[b"source"], b"ingest_ack")

    def test_single_map_is_a_batch_of_one(self):
        dl = self.d.dealer()
        ack = self.d.request(dl, b"one", pack(ev("ig:1", "like", now_ms() - 10)))
        self.assertEqual((ack["ok"], ack["dup"], ack["rejected"], ack["errors"]), (1, 0, 0, []))

    def test_bad_envelope_is_dead_lettered(self):
        dl = self.d.dealer()
        dl.send_multipart([b"x" * 33, pack(ev("ig:e", "like", now_ms()))])
        dl.send_multipart([b"only-one-frame"])
        st = wait_for(lambda: self.d.stats()["bad_envelopes"] >= 2 and self.d.stats())
        self.assertEqual(st["events_accepted"], 0)
        self.assertEqual(len(self.r.xrange("nousu:deadletter")), 2)


class Control(Case):
    def test_errors(self):
        self.assertEqual(self.d.control_raw(b"\xc1"), {"error": "malformed"})
        self.assertEqual(self.d.control_raw(b"\xdd\xff\xff\xff\xff"), {"error": "malformed"})
        self.assertEqual(self.d.control({"op": "fly"}), {"error": "unknown_op"})
        self.assertEqual(self.d.control({"x": 1}), {"error": "missing_op"})
        self.assertEqual(self.d.control({"op": "creator"}), {"error": "missing_creator"})
        self.assertEqual(self.d.control({"op": "creator", "creator": "nobody"}),
                         {"error": "unknown_creator"})
        self.assertEqual(self.d.control({"op": "top", "n": 0}), {"error": "bad_n"})
        self.assertEqual(self.d.control({"op": "top", "n": 1001}), {"error": "bad_n"})
        self.assertEqual(self.d.control({"op": "top"}), {"niche": None, "creators": []})
        st = self.d.stats()
        for k in ("events_accepted", "events_rejected", "events_duplicate",
                  "alerts_published", "uptime_s"):
            self.assertIn(k, st)
        pong = self.d.control({"op": "ping"})
        self.assertTrue(pong["pong"])
        self.assertTrue(pong["version"])


class Overlap(Case):
    """The loop reads the next batches while Redis works on a commit, and
    the committer sends the next commit behind it (two deep): a commit held
    up in Redis stops neither intake nor the control endpoint, and the
    commits land in order once Redis goes on."""

    daemon_args = ("--redis_timeout_ms=30000", "--lateness_s=60")

    def test_next_batches_are_read_and_sent_while_a_commit_waits_in_redis(self):
        t = now_ms() - 1000
        p = self.d.push()
        # writes wait in Redis (FCALL of a library without no-writes too)
        self.r.execute_command("CLIENT", "PAUSE", 30000, "WRITE")
        paused = True
        try:
            p.send(pack([ev("ov:a", "like", t, actor="a%d" % i) for i in range(3)]))
            # frames are counted when their batch goes to the committer
            wait_for(lambda: self.d.stats()["frames"] == 1, what="batch A sent to Redis")
            p.send(pack([ev("ov:b", "share", t), ev("ov:b", "save", t)]))
            wait_for(lambda: self.d.stats()["frames"] == 2, what="batch B sent behind A")
            p.send(pack([ev("ov:a", "comment", t, actor="a9")]))
            st = wait_for(lambda: (lambda s: s["pending_events"] == 6 and s)(self.d.stats()),
                          what="batch C read while A's commit waits")
            # nothing committed yet; C is held, two commits being the most sent
            self.assertEqual((st["events_accepted"], st["commits"], st["frames"]), (0, 0, 2))
            self.assertEqual(counts_in_redis(self.r, "ov:a")[1], 0)
            self.r.execute_command("CLIENT", "UNPAUSE")
            paused = False
            self.d.wait_accepted(6)
        finally:
            if paused:
                self.r.execute_command("CLIENT", "UNPAUSE")
        st = self.d.stats()
        self.assertEqual((st["commits"], st["frames"], st["pending_events"]), (3, 3, 0))
        self.assertEqual(counts_in_redis(self.r, "ov:a")[1:3], [3, 1])
        self.assertEqual(counts_in_redis(self.r, "ov:b")[3:5], [1, 1])

    def test_commits_sent_behind_a_lost_one_are_retried_in_order(self):
        t = now_ms() - 1000
        p = self.d.push()
        self.r.execute_command("CLIENT", "PAUSE", 30000, "WRITE")
        try:
            p.send(pack([ev("ord:x", "like", t, actor="a1")]))
            wait_for(lambda: self.d.stats()["frames"] == 1, what="batch A sent to Redis")
            # two minutes older than A's event: too old once A is in (lateness_s
            # 60), accepted if B went first
            p.send(pack([ev("ord:x", "share", t - 120000)]))
            wait_for(lambda: self.d.stats()["frames"] == 2, what="batch B sent behind A")
            # both commits are lost with the daemon's connections
            self.r.execute_command("CLIENT", "KILL", "TYPE", "normal")
        finally:
            self.r.execute_command("CLIENT", "UNPAUSE")
        st = wait_for(lambda: (lambda s: s["events_accepted"] + s["events_rejected"] == 2 and s)(
            self.d.stats()), what="both batches committed again")
        self.assertEqual((st["events_accepted"], st["events_rejected"], st["commits"]), (1, 1, 2))
        self.assertEqual(counts_in_redis(self.r, "ord:x")[1:4], [1, 0, 0])
        self.assertGreaterEqual(st["redis_errors"], 1)


class CommitInterval(Case):
    """commit_interval_ms: while a commit is under way, the next batch goes
    to Redis that long after it, taking what arrived meanwhile; a full batch
    goes at once, and so does one arriving when nothing is in hand."""

    daemon_args = ("--commit_interval_ms=4000", "--iteration_max_events=5",
                   "--redis_timeout_ms=30000")

    def unpause(self):
        try:
            self.r.execute_command("CLIENT", "UNPAUSE")
        except redis.exceptions.ConnectionError:
            pass  # Redis already stopped (cleanups run after tearDown)

    def held_behind_a_commit(self, creator, n):
        """One event sent to a Redis holding writes back, then n more, apart:
        each would be a commit of its own without the interval. Returns the
        PUSH socket once the n are read (and held)."""
        t = now_ms() - 1000
        p = self.d.push()
        self.r.execute_command("CLIENT", "PAUSE", 30000, "WRITE")
        self.addCleanup(self.unpause)
        p.send(pack([ev(creator, "like", t, actor="a0")]))
        wait_for(lambda: self.d.stats()["frames"] == 1, what="the first commit sent")
        for i in range(n):
            time.sleep(0.3)
            p.send(pack([ev(creator, "like", t, actor="b%d" % i)]))
        wait_for(lambda: self.d.stats()["pending_events"] == n + 1, what="%d events read" % n)
        return p

    def test_events_within_the_interval_share_one_commit(self):
        self.held_behind_a_commit("iv:a", 3)
        time.sleep(0.3)  # the committer would have taken the next batch by now
        self.assertEqual(self.d.stats()["frames"], 1)
        self.r.execute_command("CLIENT", "UNPAUSE")
        st = self.d.wait_accepted(4)
        self.assertEqual((st["commits"], st["frames"]), (2, 4))
        self.assertEqual(counts_in_redis(self.r, "iv:a")[1], 4)

    def test_a_full_batch_does_not_wait(self):
        p = self.held_behind_a_commit("iv:b", 2)
        p.send(pack([ev("iv:b", "share", now_ms() - 1000) for _ in range(3)]))  # 5: full
        wait_for(lambda: self.d.stats()["frames"] == 4, timeout=3.0,  # well within the 4 s
                 what="the full batch sent behind the first")
        self.r.execute_command("CLIENT", "UNPAUSE")
        st = self.d.wait_accepted(6)
        self.assertEqual(st["commits"], 2)
        self.assertEqual(counts_in_redis(self.r, "iv:b")[1:4], [3, 0, 3])

    def test_a_batch_arriving_when_nothing_is_in_hand_does_not_wait(self):
        t = now_ms() - 1000
        p = self.d.push()
        for i in range(3):  # each right after the one before was committed
            p.send(pack([ev("iv:c", "like", t, actor="a%d" % i)]))
            st = self.d.wait_accepted(i + 1, timeout=3.0)
        self.assertEqual(st["commits"], 3)

    def test_a_held_batch_is_committed_at_shutdown(self):
        self.held_behind_a_commit("iv:d", 2)
        threading.Timer(1.0, self.unpause).start()
        self.assertEqual(self.d.stop(), 0)  # SIGTERM with both in hand
        self.assertEqual(counts_in_redis(self.r, "iv:d")[1], 3)
        self.assertIn("everything taken in is committed (3 events accepted)", self.d.read_log())


class DedupSizing(Case):
    """dedup_set_ids 0 (the default): ids per dedup set are 3/4 of Redis's
    set-max-intset-entries, read when the daemon connects."""

    def id_gens(self, prefix):
        return [msgpack.unpackb(self.r.get(k))
                for k in self.r.scan_iter(prefix + "ids:*")
                if k.count(b":") == 2 and not k.endswith(b":chain")]

    def send_ids(self, d, creator):
        t = now_ms() - 1000
        d.push().send(pack([ev(creator, "like", t, id="%s-%d" % (creator, i))
                            for i in range(200)]))
        d.wait_accepted(200)

    @unittest.skipIf(REDIS_MODULE, "intsets; with the module, ids go to tables (test_module.py)")
    def test_sets_sized_from_the_redis_intset_limit(self):
        # 512 (Redis's default): 384 ids a set; 200 ids fit dedup_buckets (16)
        self.send_ids(self.d, "ds:a")
        self.assertEqual(self.id_gens("nousu:"), [[[16, 200]]])
        # 8: 6 ids a set; 200 ids want 34 sets, so 64
        self.r.config_set("set-max-intset-entries", 8)
        small = self.start_daemon("small", extra=["--key_prefix=small:"])
        self.send_ids(small, "ds:b")
        self.assertEqual(self.id_gens("small:"), [[[64, 200]]])


class DedupFilter(Case):
    """The committer's filter of ids sent (idfilter.c, dedup_filter_mb): along
    one daemon's chain of commits Redis looks up only the ids it may hold;
    a resent id is still counted once, and another daemon's commit in between
    makes every id looked up again (nousu.lua, the chain)."""

    def send_ids(self, d, creator, ids, accepted, dups=0):
        t = now_ms() - 1000
        d.push().send(pack([ev(creator, "like", t, id=i) for i in ids]))
        return wait_for(lambda: (lambda st: st["events_accepted"] >= accepted
                                 and st["events_duplicate"] >= dups and st)(d.stats()))

    def test_resent_ids_counted_once_along_the_chain(self):
        a = ["a%d" % i for i in range(50)]
        st = self.send_ids(self.d, "df:a", a, 50)
        self.assertEqual(st["dedup_filtered_commits"], 0)  # no chain to follow yet
        self.assertGreater(st["dedup_filter_bytes"], 0)
        b = ["b%d" % i for i in range(50)] + a[:10]
        st = self.send_ids(self.d, "df:a", b, 100, dups=10)
        self.assertEqual(st["dedup_filtered_commits"], 1)
        self.assertEqual((st["events_accepted"], st["events_duplicate"]), (100, 10))
        self.assertEqual(self.d.creator("df:a")["counts"]["like"], 100)

    def test_another_daemon_between_commits_breaks_the_chain(self):
        d2 = self.start_daemon("second")
        self.send_ids(self.d, "df:b", ["x%d" % i for i in range(20)], 20)
        st = self.send_ids(self.d, "df:b", ["y%d" % i for i in range(20)], 40)
        self.assertEqual(st["dedup_filtered_commits"], 1)
        z = ["z%d" % i for i in range(20)]
        self.send_ids(d2, "df:b", z, 20)  # ids the first daemon's filter never saw
        st = self.send_ids(self.d, "df:b", z[:10] + ["w%d" % i for i in range(10)], 50, dups=10)
        self.assertEqual((st["events_accepted"], st["events_duplicate"]), (50, 10))
        self.assertEqual(st["dedup_filtered_commits"], 1)  # every id was looked up
        self.assertEqual(self.d.creator("df:b")["counts"]["like"], 70)


class Hints(Case):
    """commit_hints: the daemon computes the state after a hot run (all in
    the creator's current bucket, no rule near) and Redis takes it after
    checking the state is unchanged. The harness runs every daemon with
    commit_hints=verify, so Redis also computes each hinted run itself and
    fails the commit on any difference."""

    def play(self, d, creator):
        t = now_ms() - 1000
        p = d.push()
        p.send(pack([ev(creator, "like", t, actor="u0", followers=3000)]))
        d.wait_accepted(1)
        # its second commit: hot
        p.send(pack([ev(creator, "comment", t, actor="u1", niche="knitting"),
                     ev(creator, "view", t, n=3)]))
        d.wait_accepted(3)
        return d.stats()

    def test_a_hot_run_is_hinted_and_verified(self):
        st = self.play(self.d, "hh:a")
        self.assertEqual((st["hints_sent"], st["hints_taken"]), (1, 1))
        c = self.d.creator("hh:a")
        self.assertEqual([c["counts"][k] for k in ("like", "comment", "view")], [1, 1, 3])
        self.assertEqual((c["engagement"], c["unique_engagers"], c["niche"]), (4, 2, "knitting"))

    def test_a_run_that_may_fire_is_not_hinted(self):
        """A micro creator with history whose next commit makes it rising: the
        run is the Function's to take, so that its checkpoint (and alert) is
        made. In verify mode a hint here fails the commit."""
        t = now_ms() - 1000
        p = self.d.push()
        p.send(pack([ev("hh:r", "like", t - 5 * DAY, followers=3000)]))
        p.send(pack([ev("hh:r", "view", t, followers=3000)]))
        self.d.wait_accepted(2)
        p.send(pack([ev("hh:r", "comment", t, actor="fan%d" % i) for i in range(60)]))
        self.d.wait_accepted(62)
        st = wait_for(lambda: (lambda s: s["alerts"]["rising"] >= 1 and s)(self.d.stats()),
                      what="the rising alert")
        self.assertEqual(st["hints_sent"], 0)

    def test_hints_off(self):
        off = self.start_daemon("off", extra=["--commit_hints=off", "--key_prefix=off:"])
        st = self.play(off, "hh:b")
        self.assertEqual((st["hints_sent"], st["hints_taken"]), (0, 0))


class Lifecycle(Case):
    def test_sigterm_commits_and_exits_zero(self):
        t = now_ms() - 1000
        p = self.d.push()
        for i in range(200):
            p.send(pack([ev("ig:z", "like", t, id="z%d" % i)]))
        self.d.wait_accepted(1)
        t0 = time.monotonic()
        rc = self.d.stop()
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 8)
        log = self.d.read_log()
        self.assertIn("everything taken in is committed", log)
        # whatever was accepted is in Redis
        likes = counts_in_redis(self.r, "ig:z")[1]
        self.assertGreaterEqual(likes, 1)

    def test_redis_outage_is_survived(self):
        t = now_ms() - 1000
        p = self.d.push()
        p.send(pack(ev("ig:o", "like", t)))
        self.d.wait_accepted(1)
        self.redis.stop()
        p.send(pack(ev("ig:o", "share", t)))
        wait_for(lambda: self.d.stats()["redis_errors"] >= 1, what="commit failure")
        # Restarted empty (no persistence here): the daemon reconnects,
        # reloads its Function library and commits the batch it kept.
        self.redis = RedisServer(self.dir, port=self.redis.port)
        self.r = self.redis.client
        self.d.wait_accepted(2)
        self.assertEqual(self.d.creator("ig:o")["counts"]["share"], 1)
        self.assertIn("reconnected", self.d.read_log())


class Config(unittest.TestCase):
    def run_nousud(self, *args):
        return subprocess.run([NOUSUD, *args], capture_output=True, text=True, timeout=10)

    def test_check_config_and_errors(self):
        sample = os.path.join(os.path.dirname(__file__), "../../systemd/nousud.conf")
        r = self.run_nousud("-c", sample, "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("# comment\nredis_port = 6379\ningset = tcp://x\n")
        try:
            r = self.run_nousud("-c", f.name, "--check-config")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(f.name, r.stderr)
            self.assertIn(":3", r.stderr)
            self.assertIn("ingset", r.stderr)
        finally:
            os.unlink(f.name)
        r = self.run_nousud("--redis_port=70000", "--check-config")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("redis_port", r.stderr)

    def test_help_and_version(self):
        r = self.run_nousud("--help")
        self.assertEqual(r.returncode, 0)
        for key in ("ingest_ack", "rising_min_velocity", "weight_mention", "dedup_horizon_s"):
            self.assertIn(key, r.stdout)
        r = self.run_nousud("--version")
        self.assertEqual(r.returncode, 0)
        self.assertIn("nousud", r.stdout)


if __name__ == "__main__":
    unittest.main()
