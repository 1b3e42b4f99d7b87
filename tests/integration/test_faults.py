"""Fault injection with real processes: kill -9 of redis-server and of nousud
under acknowledged load, SIGTERM mid-stream, a subscriber that stops reading,
and a flood of garbage frames next to good traffic.

The acknowledged load is a lazy-pirate producer (Pirate): a DEALER that keeps
each request until it is acked, resends the same request_id with the same
event ids when no ack comes in time, and has a bounded window in flight. What
each test must end with is exact: every event counted once, per creator and
per type. Each test prints its figures (sent, counted, lost, duplicated, ...)
to stderr, so they show in the ctest log. Every wait is against a deadline.
"""
import collections
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

import msgpack
import zmq

import world
from harness import (Case, RedisServer, counts_in_redis, ev, now_ms, pack, stop_pid, tool,
                     wait_for)

# SPEC §3 order, the order of the per-type counts in a creator's stored state
TYPES = ("view", "like", "comment", "share", "save", "mention", "follow", "unfollow", "post")


def restartable_port():
    """A free loopback port below the kernel's ephemeral range, for a Redis
    restarted on the same port: no outgoing connection (and no free_port() of
    another test) can take it in the moment the server is down."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(10000, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port below %d" % low)


AOF = {"appendonly": True, "appendfsync": "always"}


def figures(test, **kv):
    print("\n[%s] %s" % (test, " ".join("%s=%s" % (k, v) for k, v in kv.items())),
          file=sys.stderr, flush=True)


def log_lines(daemon, *needles):
    """The daemon's log lines holding any of the needles, for the report."""
    return [x for x in daemon.read_log().splitlines() if any(n in x for n in needles)]


class Workload:
    """n_requests acknowledged requests of `size` events with unique ids,
    spread over creators and types; what each (creator, type) must count."""

    def __init__(self, tag, n_requests=60, size=200, n_creators=16):
        base = now_ms() - 120 * 1000
        self.size = size
        self.requests = []   # (request_id, payload)
        self.expect = {}     # request_id -> Counter((creator, type))
        self.creators = sorted({"f:%s%d" % (tag, c) for c in range(n_creators)})
        k = 0
        for r in range(n_requests):
            evs, exp = [], collections.Counter()
            for _ in range(size):
                c = "f:%s%d" % (tag, k % n_creators)
                t = TYPES[(k // n_creators) % 6]  # view .. mention
                evs.append(ev(c, t, base + k, id="%s-%d" % (tag, k)))
                exp[(c, t)] += 1
                k += 1
            rid = ("%s-req-%d" % (tag, r)).encode()
            self.requests.append((rid, pack(evs)))
            self.expect[rid] = exp
        self.events = k

    def expected(self, rids=None):
        total = collections.Counter()
        for rid in (self.expect if rids is None else rids):
            total.update(self.expect[rid])
        return total


class Pirate:
    """Lazy pirate over a DEALER, in its own thread (its socket lives there).
    At most `window` requests in flight; a request without an ack after
    timeout_s is resent unchanged. Records the first ack of each request and
    any later ack that differs from it (SPEC §4: a request already committed
    is answered with the ack it got the first time)."""

    def __init__(self, endpoint, requests, window=8, timeout_s=1.0):
        self.endpoint = endpoint
        self.payload = dict(requests)
        self.todo = collections.deque(rid for rid, _ in requests)
        self.window, self.timeout_s = window, timeout_s
        self.inflight = {}          # rid -> monotonic time of the last send
        self.acks = {}              # rid -> first ack
        self.sends = self.resends = self.extra_acks = 0
        self.mismatches = []        # (rid, first ack, later ack)
        self.error = None
        self.limit = None           # first sends allowed so far (None: all)
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.thread = None

    def start(self):
        with self.lock:  # after a pause, whatever was in flight goes again now
            for rid in self.inflight:
                self.inflight[rid] = 0.0
        self.halt.clear()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self):
        self.halt.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "producer thread did not stop"

    def hold_after(self, n):
        """Send no new request past the n-th (None: no limit), so that a
        fault lands mid-stream however fast the daemon is; requests already
        in flight are still resent."""
        with self.lock:
            self.limit = n

    def in_flight(self):
        with self.lock:
            return len(self.inflight)

    def done(self):
        with self.lock:
            return self.error is not None or (not self.todo and not self.inflight)

    def acked(self):
        with self.lock:
            return dict(self.acks)

    def wait_done(self, timeout):
        wait_for(self.done, timeout, "every request acked")
        self.stop()
        if self.error:
            raise self.error

    def _send(self, s, rid, now):
        s.send_multipart([rid, self.payload[rid]])
        self.inflight[rid] = now

    def _run(self):
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.endpoint)
        try:
            while not self.halt.is_set() and not self.done():
                now = time.monotonic()
                with self.lock:
                    while (self.todo and len(self.inflight) < self.window and
                           (self.limit is None or self.sends < self.limit)):
                        self._send(s, self.todo.popleft(), now)
                        self.sends += 1
                    for rid, at in list(self.inflight.items()):
                        if now - at >= self.timeout_s:
                            self._send(s, rid, now)
                            self.resends += 1
                if not s.poll(20):
                    continue
                while True:
                    try:
                        rid, body = s.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    ack = msgpack.unpackb(body, raw=False)
                    with self.lock:
                        if rid in self.inflight:
                            del self.inflight[rid]
                            self.acks[rid] = ack
                        elif rid in self.acks:
                            self.extra_acks += 1
                            if ack != self.acks[rid]:
                                self.mismatches.append((rid, self.acks[rid], ack))
                        else:
                            raise AssertionError("ack for a request never sent: %r" % rid)
        except Exception as e:  # reported by wait_done
            with self.lock:
                self.error = e
        finally:
            s.close(0)


def counted_by_control(d, creators):
    """(creator, type) -> count from the control `creator` query."""
    got = collections.Counter()
    for c in creators:
        r = d.creator(c)
        if r.get("error") == "unknown_creator":
            continue
        assert "counts" in r, r
        for t, n in r["counts"].items():
            if n:
                got[(c, t)] += n
    return got


def counted_in_redis(r, creators):
    """(creator, type) -> count straight from the creators' stored state (the
    running counts of the recent window), without asking the daemon."""
    got = collections.Counter()
    for c in creators:
        for i, n in enumerate(counts_in_redis(r, c)):
            if n:
                got[(c, TYPES[i])] += int(n)
    return got


def stats_alive(d):
    """The daemon's stats; a daemon that died fails the test with its log."""
    try:
        if d.proc.poll() is None:
            return d.stats()
    except TimeoutError:
        try:
            d.proc.wait(5)  # dying (a sanitizer report takes a moment)?
        except subprocess.TimeoutExpired:
            raise AssertionError("nousud does not answer control queries") from None
    raise AssertionError("nousud died, status %d; log tail:\n%s"
                         % (d.proc.returncode, d.read_log()[-3000:]))


def wait_daemon(d, cond, timeout, what):
    """wait_for, with the daemon's log tail in the failure."""
    try:
        return wait_for(cond, timeout, what)
    except AssertionError as e:
        raise AssertionError("%s; nousud log tail:\n%s" % (e, d.read_log()[-3000:])) from None


def compare(expect, got):
    lost = sum(max(0, n - got.get(k, 0)) for k, n in expect.items())
    dup = sum(max(0, n - expect.get(k, 0)) for k, n in got.items())
    return lost, dup


def committed_requests(r, rids):
    """Request ids whose commit is in Redis (their stored ack)."""
    return [rid for rid in rids if r.exists(b"nousu:req:" + rid)]


class AckedLoad(Case):
    """Shared checks of the acknowledged-load tests."""

    def check_exact(self, name, w, p, **extra):
        got = counted_by_control(self.live_daemon(), w.creators)
        expect = w.expected()
        lost, dup = compare(expect, got)
        in_redis = counted_in_redis(self.r, w.creators)
        acks = p.acked()
        bad_acks = {rid: a for rid, a in acks.items()
                    if (a["ok"], a["dup"], a["rejected"]) != (w.size, 0, 0)}
        figures(name, sent=w.events, counted=sum(got.values()),
                counted_in_redis=sum(in_redis.values()),
                lost=lost, duplicated=dup, requests=len(w.requests), acked=len(acks),
                sends=p.sends, resends=p.resends, extra_acks=p.extra_acks,
                ack_mismatches=len(p.mismatches), acks_not_ok=len(bad_acks), **extra)
        for rid, first, later in p.mismatches[:5]:
            figures(name, mismatch=rid.decode(), first=first, later=later)
        for rid, a in list(bad_acks.items())[:5]:
            figures(name, ack_not_ok=rid.decode(), ack=a)
        self.assertEqual((lost, dup), (0, 0), "events lost / double counted")
        self.assertEqual(got, expect)
        self.assertEqual(in_redis, expect)
        self.assertEqual(len(acks), len(w.requests))
        # SPEC §4: a resent request is answered with the ack of its commit
        self.assertEqual(bad_acks, {}, "acks that do not say ok=%d" % w.size)
        self.assertEqual(p.mismatches, [], "later acks that differ from the first")

    def live_daemon(self):
        return [d for d in self.daemons if d.proc.poll() is None][-1]


class RedisKilled(AckedLoad):
    def setUp(self):
        self.redis_opts = dict(AOF, port=restartable_port())
        super().setUp()

    def test_kill9_redis_mid_stream_counts_exact(self):
        w = Workload("a")
        p = Pirate(self.d.ep["ingest_ack"], w.requests)
        port = self.redis.port
        p.start()
        kills, not_durable = [], []
        for frac, outage in ((0.25, "short"), (0.6, "past the producer's timeout")):
            p.hold_after(int(frac * len(w.requests)) + p.window)
            wait_for(lambda: len(p.acked()) >= frac * len(w.requests) or p.done(), 30,
                     "%d%% acked" % (frac * 100))
            self.assertFalse(p.done(), "the stream ended before the kill")
            errors = stats_alive(self.d)["redis_errors"]
            stop_pid(self.redis.proc, signal.SIGKILL)
            acked_at_kill = len(p.acked())
            # more requests, into the outage
            p.hold_after(int(frac * len(w.requests)) + 2 * p.window)
            # the daemon finds Redis gone on its next commit, keeps the batch
            wait_daemon(self.d, lambda: stats_alive(self.d)["redis_errors"] > errors, 10,
                        "commit failure")
            if outage != "short":
                # requests in flight are resent while the daemon holds its batch
                resends = p.resends
                wait_daemon(self.d, lambda: p.resends > resends, 10, "a resend during the outage")
            self.redis = RedisServer(self.dir, port=port, expect_empty=False, **AOF)
            self.r = self.redis.client
            # appendfsync always: everything acked before the kill survived it
            acked = list(p.acked())
            not_durable += sorted(set(acked) - set(committed_requests(self.r, acked)))
            kills.append("%d/%d" % (acked_at_kill, len(w.requests)))
        p.hold_after(None)
        p.wait_done(40)
        st = stats_alive(self.d)
        reconnects = len(log_lines(self.d, "redis: reconnected"))
        for line in log_lines(self.d, "redis:")[:8]:
            figures("kill9-redis", log=line)
        self.check_exact("kill9-redis", w, p, kills_at_acked=",".join(kills),
                         acked_lost_by_kill=len(not_durable), reconnects=reconnects,
                         redis_errors=st["redis_errors"], commits=st["commits"],
                         replayed=st["requests_replayed"], daemon_dup=st["events_duplicate"])
        self.assertEqual(not_durable, [], "acked requests missing after the restart")
        self.assertEqual(reconnects, 2)
        self.assertIsNone(self.d.proc.poll())

    def test_ids_resent_after_a_redis_restart_found_along_the_chain(self):
        """The committer's filter of ids sent (dedup_filter_mb) spares Redis
        the lookups only along the chain of P:ids:chain. Redis killed and
        restarted from its AOF brings the chain back as of the last commit,
        so the daemon goes on trusting its filter: the resent ids it flags
        must be found in the restored sets."""
        t = now_ms() - 1000
        push = self.d.push()

        def send(ids):
            push.send(pack([ev("f:chain", "like", t, id=i) for i in ids]))

        def wait(accepted, dup):
            return wait_daemon(self.d, lambda: (lambda st: st["events_accepted"] >= accepted
                                                and st["events_duplicate"] >= dup and st)(
                                                    stats_alive(self.d)), 20, "events counted")
        a, b = ["a%d" % i for i in range(100)], ["b%d" % i for i in range(100)]
        send(a)
        wait(100, 0)
        send(b)
        st = wait(200, 0)
        self.assertEqual(st["dedup_filtered_commits"], 1)
        stop_pid(self.redis.proc, signal.SIGKILL)
        self.redis = RedisServer(self.dir, port=self.redis.port, expect_empty=False, **AOF)
        self.r = self.redis.client
        send(a[:20] + b[:20] + ["c%d" % i for i in range(50)])
        st = wait(250, 40)
        figures("ids-after-restart", accepted=st["events_accepted"],
                duplicate=st["events_duplicate"], filtered=st["dedup_filtered_commits"],
                redis_errors=st["redis_errors"])
        self.assertEqual((st["events_accepted"], st["events_duplicate"]), (250, 40))
        self.assertEqual(st["dedup_filtered_commits"], 2)  # the chain held across the restart
        self.assertEqual(counts_in_redis(self.r, "f:chain")[TYPES.index("like")], 250)

    def test_request_resent_during_outage_is_applied_once(self):
        """SPEC §4: a resent request is not applied again and gets the ack of
        the first time, with or without event ids. During an outage the
        daemon holds its batch and reads nothing more, so a lazy-pirate
        resend queues right behind the original, and both are read into the
        same commit after the restart."""
        t = now_ms() - 1000
        dl = self.d.dealer()
        port = self.redis.port
        stop_pid(self.redis.proc, signal.SIGKILL)
        dl.send_multipart([b"held", pack(ev("f:held", "like", t, id="held-1"))])
        wait_daemon(self.d, lambda: stats_alive(self.d)["redis_errors"] >= 1, 10,
                    "commit failure")
        requests = {  # request_id -> events: without ids, then with ids
            b"noid": [ev("f:noid", "like", t), ev("f:noid", "comment", t)],
            b"ids": [ev("f:ids", "like", t, id="i1"), ev("f:ids", "comment", t, id="i2")]}
        for rid, evs in requests.items():
            dl.send_multipart([rid, pack(evs)])
            dl.send_multipart([rid, pack(evs)])  # no ack in time: resent as is
        self.redis = RedisServer(self.dir, port=port, expect_empty=False, **AOF)
        self.r = self.redis.client
        acks = collections.defaultdict(list)
        deadline = time.monotonic() + 10
        while sum(map(len, acks.values())) < 5 and time.monotonic() < deadline:
            if dl.poll(100):
                rid, body = dl.recv_multipart()
                acks[rid].append(msgpack.unpackb(body, raw=False))
        # one more resend of each, after the commit: answered from Redis
        for rid, evs in requests.items():
            dl.send_multipart([rid, pack(evs)])
            self.assertTrue(dl.poll(5000), "no ack for the late resend")
            got_rid, body = dl.recv_multipart()
            acks[got_rid].append(msgpack.unpackb(body, raw=False))
        creators = ["f:noid", "f:ids"]
        got = counted_by_control(self.d, creators)
        expect = collections.Counter({(c, t): 1 for c in creators for t in ("like", "comment")})
        lost, dup = compare(expect, got)
        st = stats_alive(self.d)
        figures("resend-during-outage", sent=4, counted=sum(got.values()), lost=lost,
                duplicated=dup, accepted=st["events_accepted"], replayed=st["requests_replayed"],
                acks={r.decode(): [(a["ok"], a["dup"]) for a in v] for r, v in acks.items()})
        self.assertEqual((lost, dup), (0, 0), "a resent request was applied twice")
        self.assertEqual(len(acks[b"held"]), 1)
        for rid in requests:
            first = acks[rid][0]
            self.assertEqual((first["ok"], first["dup"], first["rejected"]), (2, 0, 0), rid)
            self.assertEqual(acks[rid], [first] * 3, "acks of %r differ" % rid)


class DaemonKilled(AckedLoad):
    def test_kill9_nousud_mid_stream_counts_exact(self):
        w = Workload("b")
        p = Pirate(self.d.ep["ingest_ack"], w.requests)
        p.start()
        kills = []
        for run, frac in enumerate((0.25, 0.6)):
            d = self.live_daemon()
            p.hold_after(int(frac * len(w.requests)) + p.window)
            wait_for(lambda: len(p.acked()) >= frac * len(w.requests) or p.done(), 30,
                     "%d%% acked" % (frac * 100))
            self.assertFalse(p.done(), "the stream ended before the kill")
            # Freeze it, let requests pile up in flight, then kill it: some
            # were read (perhaps committed) and never acked.
            os.kill(d.proc.pid, signal.SIGSTOP)
            p.hold_after(int(frac * len(w.requests)) + 2 * p.window)
            wait_for(lambda: p.in_flight() > 0, 10, "requests in flight")
            d.stop(signal.SIGKILL)
            kills.append("%d/%d" % (len(p.acked()), len(w.requests)))
            # same endpoints (ipc paths), a log of its own
            self.start_daemon("d", log_name="d-run%d" % (run + 2))
        p.hold_after(None)
        p.wait_done(40)
        st = self.live_daemon().stats()
        self.check_exact("kill9-nousud", w, p, kills_at_acked=",".join(kills),
                         last_run_replayed=st["requests_replayed"],
                         last_run_accepted=st["events_accepted"],
                         last_run_dup=st["events_duplicate"])


class Terminated(AckedLoad):
    def test_sigterm_mid_stream_keeps_every_acked_event(self):
        w = Workload("c")
        p = Pirate(self.d.ep["ingest_ack"], w.requests)
        p.hold_after(len(w.requests) // 3 + p.window)
        p.start()
        wait_for(lambda: len(p.acked()) >= len(w.requests) // 3 or p.done(), 30, "a third acked")
        self.assertFalse(p.done(), "the stream ended before SIGTERM")
        t0 = time.monotonic()
        rc = self.d.stop(signal.SIGTERM)
        took = time.monotonic() - t0
        p.stop()
        acked = p.acked()
        committed = committed_requests(self.r, [rid for rid, _ in w.requests])
        got = counted_in_redis(self.r, w.creators)  # the daemon is gone
        expect_committed = w.expected(committed)
        lost_acked, _ = compare(w.expected(acked), got)
        lost, dup = compare(expect_committed, got)
        shutdown = log_lines(self.d, "signal", "shutdown")
        figures("sigterm", sent_so_far=p.sends * w.size, acked_events=len(acked) * w.size,
                committed_events=sum(expect_committed.values()), counted=sum(got.values()),
                acked_lost=lost_acked, lost=lost, duplicated=dup,
                committed_not_acked=len(set(committed) - set(acked)),
                exit_status=rc, exit_s="%.2f" % took)
        for line in shutdown:
            figures("sigterm", log=line)
        self.assertEqual(rc, 0)
        self.assertLess(took, 8)
        self.assertEqual(lost_acked, 0, "acked events missing from Redis")
        self.assertTrue(set(acked) <= set(committed))
        self.assertEqual((lost, dup), (0, 0))
        self.assertTrue(any("everything taken in is committed" in x for x in shutdown))
        # a new daemon on the same endpoints: the producer finishes, exactly
        self.start_daemon("d", log_name="d-run2")
        p.hold_after(None)
        p.start()
        p.wait_done(40)
        self.check_exact("sigterm-restart", w, p)


class RiserWorld(world.Gen):
    """world.py's planted riser, k times over (its niche is knitting)."""

    def add(self, creator, type_, ts, actor=None, n=1, followers=None):
        self.seq += 1
        e = ev(creator, type_, int(ts), id="%s#%d" % (creator, self.seq), niche="knitting")
        if actor is not None:
            e["actor"] = actor
        if n != 1:
            e["n"] = n
        if followers is not None:
            e["followers"] = followers
        self.events.append(e)


def risers(end_ms, k):
    """(history, spike): ten days at ~60 a day, then +600 from 500 new people
    in the last 20 h, for k creators; each part in event-time order."""
    g = RiserWorld(end_ms, seed=3)
    last = g.end - 20 * world.HOUR
    for i in range(k):
        g.daily("r:%d" % i, range(0, 10), 60, 3000)
    history, g.events = g.events, []
    for i in range(k):
        g.spike("r:%d" % i, last, g.end, 600, lambda r: "new%d" % r.randrange(500), 3050,
                (("like", 1), ("comment", 3), ("save", 4), ("share", 4)))
    return sorted(history, key=lambda e: e["ts"]), sorted(g.events, key=lambda e: e["ts"])


class SlowSubscriber(Case):
    # No cooldown: every event of a riser after its rule holds alerts again,
    # so a few thousand alerts come out of a small world. A send HWM of 10
    # (default 10,000) lets that many alerts overrun the stalled subscriber.
    daemon_args = ("--cooldown_s=0", "--sndhwm=10")

    def test_stalled_subscriber_does_not_hold_up_commits_and_tail_catches_up(self):
        stalled = self.d.ctx.socket(zmq.SUB)
        self.d.sockets.append(stalled)
        stalled.setsockopt(zmq.RCVHWM, 1)
        stalled.setsockopt(zmq.LINGER, 0)
        stalled.setsockopt(zmq.SUBSCRIBE, b"")
        stalled.connect(self.d.ep["alerts"])  # and never recv() until the end

        history, spike = risers(now_ms() - 60 * 1000, 20)
        push = self.d.push()
        for i in range(0, len(history), 2000):
            push.send(pack(history[i:i + 2000]))
        self.d.wait_accepted(len(history), 20)
        before = self.d.stats()
        self.assertEqual(before["alerts_published"], 0)
        # the spike in small acknowledged requests: many commits, each alerting
        reqs = [(b"s-%d" % i, pack(spike[i:i + 40])) for i in range(0, len(spike), 40)]
        p = Pirate(self.d.ep["ingest_ack"], reqs, window=2, timeout_s=5.0)
        p.start()
        p.wait_done(40)
        st = stats_alive(self.d)
        n_alerts = st["alerts_published"]
        stream = [(int(f[b"seq"]), f) for _, f in self.r.xrange("nousu:alerts")]
        seqs = [s for s, _ in stream]

        # what the stalled subscriber holds: read it only now
        got = []
        while stalled.poll(300):
            got.append(msgpack.unpackb(stalled.recv_multipart()[1], raw=False)["seq"])
        # seq is strictly increasing on the PUB socket: a jump is a gap, and
        # the subscriber catches up from the seq before its first gap
        last = 0
        while last < len(got) and got[last] == last + 1:
            last += 1
        tail = subprocess.run(
            [tool("nousu-tail"), "--endpoint=" + self.d.ep["alerts"], "--since=%d" % last,
             "--redis=127.0.0.1:%d" % self.redis.port, "--count=%d" % max(1, n_alerts - last),
             "--timeout-ms=3000"], capture_output=True, text=True, timeout=30)
        caught_up = [json.loads(x) for x in tail.stdout.splitlines()]
        figures("slow-subscriber", sent=len(history) + len(spike),
                counted=st["events_accepted"], lost=len(history) + len(spike) - st["events_accepted"],
                duplicated=st["events_duplicate"], commits_during_spike=st["commits"] - before["commits"],
                alerts_published=n_alerts, alerts_in_stream=len(stream),
                stalled_subscriber_got=len(got), dropped_for_it=n_alerts - len(got),
                its_last_seq=max(got, default=0), tail_since=last, tail_recovered=len(caught_up), tail_rc=tail.returncode)
        self.assertEqual(st["events_accepted"], len(history) + len(spike))
        self.assertEqual(st["events_duplicate"], 0)
        # at most 2 requests in flight: at least one commit per 2 requests
        self.assertGreaterEqual(st["commits"] - before["commits"], (len(reqs) + 1) // 2)
        # the subscriber's queue overflowed and the daemon went on: it
        # published (and committed) far past what the subscriber could hold
        self.assertGreater(n_alerts, 500)
        self.assertGreater(len(got), 0, "the stalled subscriber was never subscribed")
        self.assertLess(len(got), n_alerts // 2)
        self.assertEqual(seqs, list(range(1, n_alerts + 1)))
        self.assertEqual(got, sorted(set(got)))
        # the stream gives back every alert after the first gap, once, in
        # order: with what the subscriber holds, every alert published
        self.assertEqual(tail.returncode, 0, tail.stderr)
        self.assertEqual([a["seq"] for a in caught_up], list(range(last + 1, n_alerts + 1)))
        self.assertEqual(set(got) | {a["seq"] for a in caught_up}, set(seqs))
        by_seq = dict(stream)
        for a in caught_up[:50]:
            msg = msgpack.unpackb(by_seq[a["seq"]][b"msg"], raw=False)
            self.assertEqual((a["kind"], a["creator"]), (msg["kind"], msg["creator"]))
        self.assertEqual({a["kind"] for a in caught_up}, {"rising"})


def garbage_frames(seed=5):
    """Frames no msgpack parser accepts: container and string headers that
    claim gigabytes, deep nesting, and random bytes (kept only when Python's
    msgpack refuses them too, so each one is malformed by SPEC §3)."""
    amplification = [b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xdc\xff\xff",
                     b"\xde\xff\xff", b"\xc6\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff",
                     b"\x91\xdd\xff\xff\xff\xff", b"\x81\xa1a\xdf\xff\xff\xff\xff",
                     b"\xdd\x7f\xff\xff\xff" + b"\x80" * 64, b"\xc9\xff\xff\xff\xff\x01"]
    nesting = [b"\x91" * 100000 + b"\x80", b"\x81\xa1a" * 30000 + b"\x80",
               b"\x91" * 1000, b"\x81\xa7creator" * 5000 + b"\xa1x"]
    rng = random.Random(seed)
    rand = []
    while len(rand) < 600:
        b = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        try:
            msgpack.unpackb(b, raw=True, strict_map_key=False, object_pairs_hook=list)
        except Exception:
            rand.append(b)
    frames = []
    for i in range(2):  # the header and nesting patterns several times over
        frames += amplification * 20 + nesting * 2
    return frames + rand


class GarbageFlood(Case):
    daemon_args = ("--deadletter_maxlen=100",)

    def test_garbage_interleaved_with_good_traffic(self):
        garbage = garbage_frames()
        rng = random.Random(9)
        rng.shuffle(garbage)
        creators = ["g:%d" % i for i in range(8)]
        base = now_ms() - 60 * 1000
        good, expect = [], collections.Counter()
        for k in range(6000):
            c, t = creators[k % 8], TYPES[1 + (k // 8) % 5]
            good.append(ev(c, t, base + k, id="g-%d" % k))
            expect[(c, t)] += 1
        batches = [good[i:i + 50] for i in range(0, len(good), 50)]
        push = self.d.push()
        per = len(garbage) // len(batches) + 1
        for i, b in enumerate(batches):
            push.send(pack(b))
            for g in garbage[i * per:(i + 1) * per]:
                push.send(g)
        st = wait_for(lambda: (lambda s: s["events_accepted"] + s["events_rejected"]
                               >= len(good) + len(garbage) and s)(stats_alive(self.d)), 30,
                      "every frame accounted for")
        got = counted_by_control(self.d, creators)
        lost, dup = compare(expect, got)
        info = self.r.xinfo_stream("nousu:deadletter")
        entries = self.r.xrevrange("nousu:deadletter", count=1)
        figures("garbage", sent=len(good), counted=sum(got.values()), lost=lost, duplicated=dup,
                garbage_frames=len(garbage), rejected=st["rejected"],
                deadletter_added=info["entries-added"], deadletter_len=info["length"],
                deadletter_shed=st["deadletter_shed"], alive=self.d.proc.poll() is None)
        self.assertEqual((lost, dup), (0, 0))
        self.assertEqual(st["events_accepted"], len(good))
        self.assertEqual(st["rejected"], {"malformed": len(garbage)})
        self.assertEqual(st["events_rejected"], len(garbage))
        self.assertEqual(st["deadletter_shed"], 0)
        # every frame went to the dead-letter stream, which stayed capped
        self.assertEqual(info["entries-added"], len(garbage))
        self.assertGreaterEqual(info["length"], 100)
        self.assertLessEqual(info["length"], 200)  # MAXLEN ~ trims whole nodes of 100
        f = entries[0][1]
        self.assertEqual((f[b"reason"], f[b"source"]), (b"malformed", b"ingest"))
        # the dead-letter order is the arrival order: the newest is the last sent
        self.assertEqual(f[b"raw"], garbage[-1][:4096])
        self.assertIsNone(self.d.proc.poll())
        self.assertTrue(self.d.try_ping())


class QueuedBurst(Case):
    def setUp(self):
        self.redis_opts = {"port": restartable_port()}
        super().setUp()
    def test_small_frames_queued_during_an_outage_read_in_one_iteration(self):
        """While Redis is away the daemon holds its batch and reads nothing,
        so frames queue up; after the restart it takes them in one iteration:
        hundreds of frames, all of at most 33 bytes (ZeroMQ keeps such a
        message's bytes inside the zmq_msg_t itself). Every good event is
        counted, every bad frame dead-lettered with its own bytes."""
        t = now_ms() - 1000
        port = self.redis.port
        push = self.d.push()
        stop_pid(self.redis.proc, signal.SIGKILL)
        push.send(pack(ev("q:held", "like", t)))
        wait_daemon(self.d, lambda: stats_alive(self.d)["redis_errors"] >= 1, 10,
                    "commit failure")
        garbage, expect = [], collections.Counter()
        for i in range(400):
            c = "abcdefghij"[i % 10]  # 33-byte events
            frame = pack(ev(c, "like", t))
            self.assertLessEqual(len(frame), 33)
            push.send(frame)
            expect[(c, "like")] += 1
            garbage.append(b"\xc1" + i.to_bytes(2, "big"))
            push.send(garbage[-1])
        commits = stats_alive(self.d)["commits"]
        self.redis = RedisServer(self.dir, port=port)  # back, empty
        self.r = self.redis.client
        st = wait_for(lambda: (lambda s: s["events_accepted"] + s["events_rejected"] >= 801
                               and s)(stats_alive(self.d)), 20, "the burst committed")
        got = counted_by_control(self.d, list("abcdefghij"))
        lost, dup = compare(expect, got)
        raws = [f[b"raw"] for _, f in self.r.xrange("nousu:deadletter")]
        wrong = sum(1 for a, b in zip(raws, garbage) if a != b)
        figures("queued-burst", sent=400, counted=sum(got.values()), lost=lost, duplicated=dup,
                garbage_frames=len(garbage), dead_lettered=len(raws), raw_bytes_wrong=wrong,
                commits_for_burst=st["commits"] - commits, alive=self.d.proc.poll() is None)
        self.assertEqual((lost, dup), (0, 0))
        self.assertEqual(st["rejected"], {"malformed": 400})
        self.assertEqual(raws, garbage)
        self.assertTrue(self.d.try_ping())


if __name__ == "__main__":
    unittest.main()
