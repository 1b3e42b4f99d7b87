"""The Python client (clients/python/nousu) against the real daemon: PUSH and
acknowledged producers (ok / dup / rejected, a resend answered with the
first ack, an unreachable daemon), the subscriber on the demo-size world,
catch-up and follow() from the nousu:alerts stream (no gap, no duplicate),
control queries, and the two examples as subprocesses."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYCLIENT = os.path.join(HERE, "../../clients/python")
sys.path.insert(0, PYCLIENT)

import json  # noqa: E402
import logging  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

import msgpack  # noqa: E402
import zmq  # noqa: E402

import nousu  # noqa: E402
import world  # noqa: E402
from harness import Case, free_port, now_ms, wait_for  # noqa: E402

EXAMPLES = os.path.join(PYCLIENT, "examples")


def world_part(events, creators):
    return [e for e in events if e["creator"] in creators]


def kinds_by_creator(alerts, creators=None):
    """{creator: {kinds}} (world.EXPECTED's shape; a creator may get a kind
    twice, more than 24 h of event time apart)."""
    got = {c: set() for c in (creators if creators is not None else world.EXPECTED)}
    for a in alerts:
        got.setdefault(a["creator"], set()).add(a["kind"])
    return got


def expected(creators):
    return {c: world.EXPECTED[c] for c in creators}


def produce(endpoint, events, ack=False, batch_size=500):
    with nousu.Producer(endpoint, batch_size=batch_size, ack=ack) as p:
        for e in events:
            p.add(e)
    return p


class DropFirstAck(threading.Thread):
    """A ROUTER/DEALER relay between a producer and nousud's ingest_ack that
    loses the first ack on its way back, as a network would."""

    def __init__(self, front, back):
        super().__init__(daemon=True)
        self.front_ep, self.back_ep = front, back
        self.ready, self.halt = threading.Event(), threading.Event()
        self.requests, self.dropped, self.forwarded = [], [], []

    def run(self):
        ctx = zmq.Context.instance()
        front, back = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
        for s in (front, back):
            s.setsockopt(zmq.LINGER, 0)
        front.bind(self.front_ep)
        back.connect(self.back_ep)
        self.ready.set()
        owner = {}
        poller = zmq.Poller()
        poller.register(front, zmq.POLLIN)
        poller.register(back, zmq.POLLIN)
        try:
            while not self.halt.is_set():
                for s, _ in poller.poll(20):
                    if s is front:
                        ident, rid, payload = front.recv_multipart()
                        owner[rid] = ident  # a resend comes from a new socket
                        self.requests.append(rid)
                        back.send_multipart([rid, payload])
                    else:
                        rid, ack = back.recv_multipart()
                        if not self.dropped:
                            self.dropped.append((rid, ack))
                            continue
                        self.forwarded.append((rid, ack))
                        front.send_multipart([owner[rid], rid, ack])
        finally:
            front.close()
            back.close()

    def stop(self):
        self.halt.set()
        self.join(5)


class Producers(Case):
    def test_push_round_trip(self):
        t = now_ms() - 60 * 1000
        evs = [{"creator": "py:push", "type": "like", "ts": t + i, "id": "p%d" % (i % 13),
                "actor": "u%d" % i} for i in range(15)]
        evs += [{"creator": "py:push", "type": "comment", "ts": t + 20 + i, "actor": i,
                 "followers": 2500, "niche": "knitting"} for i in range(5)]
        with nousu.Producer(self.d.ep["ingest"], batch_size=7) as p:
            for e in evs:
                p.add(e)
            self.assertEqual(p.batches_sent, 2)  # 14 sent by add(), 6 left
            self.assertEqual(p.buffered, 6)
            self.assertIsNone(p.flush())
        self.assertEqual((p.events_sent, p.batches_sent, p.buffered), (20, 3, 0))
        # 15 likes, two of them repeating an id: 13 counted
        st = wait_for(lambda: (lambda s: s["events_accepted"] + s["events_duplicate"] >= 20
                               and s)(nousu.stats(self.d.ep["control"])),
                      what="20 events in")
        self.assertEqual((st["events_accepted"], st["events_duplicate"]), (18, 2))
        c = nousu.creator(self.d.ep["control"], "py:push")
        self.assertEqual(c["counts"]["like"], 13)
        self.assertEqual(c["counts"]["comment"], 5)
        self.assertEqual((c["followers"], c["niche"], c["tier"]), (2500, "knitting", "micro"))
        self.assertEqual(c["unique_engagers"], 18)
        self.assertTrue(nousu.ping(self.d.ep["control"])["pong"])
        self.assertEqual(nousu.top(self.d.ep["control"], "knitting")["creators"], [])
        self.assertEqual(nousu.creator(self.d.ep["control"], "py:nobody"),
                         {"error": "unknown_creator"})
        self.assertEqual(nousu.control(self.d.ep["control"], {"op": "dance"}).keys(), {"error"})

    def test_ack_counts_ok_dup_rejected(self):
        t = now_ms() - 60 * 1000
        acks = []
        p = nousu.Producer(self.d.ep["ingest_ack"], ack=True, batch_size=6, on_ack=acks.append)
        batch1 = [{"creator": "py:ack", "type": "like", "ts": t, "id": "a"},
                  {"creator": "py:ack", "type": "like", "ts": t, "id": "b"},
                  {"creator": "py:ack", "type": "like", "ts": t, "id": "a"},    # dup
                  {"creator": "py:ack", "type": "like", "ts": t + 0.5},         # bad_type
                  {"creator": "py:ack", "type": "comment", "ts": t},            # no id: ok
                  {"creator": "py:ack", "type": "dance", "ts": t, "id": "c"}]   # unknown_type
        for e in batch1:
            p.add(e)  # the sixth fills the batch: sent and acknowledged here
        self.assertEqual(len(acks), 1)
        a = acks[0]
        self.assertEqual((a.ok, a.dup, a.rejected, a.events), (3, 1, 2, 6))
        self.assertEqual(a.errors, [{"i": 3, "reason": "bad_type", "event": 3},
                                    {"i": 5, "reason": "unknown_type", "event": 5}])
        # a second, short batch: indexes map back to all the events added
        p.add({"creator": "py:ack", "type": "save", "ts": t, "id": "b"})        # dup of b
        p.add({"type": "save", "ts": t, "id": "d"})                             # no creator
        p.add({"creator": "py:ack", "type": "save", "ts": t, "id": "e"})
        got = p.flush()
        self.assertEqual(got, nousu.Ack(1, 1, 1, [{"i": 1, "reason": "missing_creator",
                                                   "event": 7}]))
        self.assertIsNone(p.flush())  # nothing left
        tot = p.totals
        self.assertEqual((tot.ok, tot.dup, tot.rejected, tot.batches), (4, 2, 3, 2))
        self.assertEqual([e["event"] for e in tot.errors], [3, 5, 7])
        self.assertEqual((p.events_added, p.events_sent, p.resends, p.buffered), (9, 9, 0, 0))
        p.close()
        # acked means committed: the daemon's counters already show it
        st = self.d.stats()
        self.assertEqual((st["events_accepted"], st["events_duplicate"], st["events_rejected"]),
                         (4, 2, 3))
        c = self.d.creator("py:ack")
        self.assertEqual((c["counts"]["like"], c["counts"]["comment"], c["counts"]["save"]),
                         (2, 1, 1))

    def test_resend_gets_the_first_ack(self):
        relay = DropFirstAck("ipc://%s/relay.sock" % self.dir, self.d.ep["ingest_ack"])
        relay.start()
        self.addCleanup(relay.stop)
        self.assertTrue(relay.ready.wait(5))
        t = now_ms() - 60 * 1000
        p = nousu.Producer(relay.front_ep, ack=True, timeout_ms=500, retries=3)
        for i in range(10):
            p.add({"creator": "py:resend", "type": "share", "ts": t + i, "id": "r%d" % i})
        t0 = time.monotonic()
        a = p.flush()
        p.close()
        self.assertLess(time.monotonic() - t0, 2.5)
        self.assertEqual((a.ok, a.dup, a.rejected), (10, 0, 0))
        # the same request id each time (once more per slow ack on a loaded
        # machine); the daemon answered every resend with the ack it gave the
        # first time, without applying the batch again
        self.assertGreaterEqual(p.resends, 1)
        self.assertEqual(len(relay.requests), p.resends + 1)
        self.assertEqual(set(relay.requests), {relay.requests[0]})
        self.assertEqual(len(relay.requests[0]), 16)
        self.assertEqual(relay.dropped[0], relay.forwarded[0])
        st = self.d.stats()
        self.assertEqual((st["requests"], st["requests_replayed"]), (p.resends + 1, p.resends))
        self.assertEqual((st["events_accepted"], st["events_duplicate"]), (10, 0))
        self.assertEqual(self.d.creator("py:resend")["counts"]["share"], 10)

    def test_unreachable_daemon_raises_then_resumes(self):
        ep = "ipc://%s/late-ingest_ack.sock" % self.dir  # where a daemon "late" will bind
        p = nousu.Producer(ep, ack=True, timeout_ms=200, retries=2)
        t = now_ms() - 60 * 1000
        for i in range(3):
            p.add({"creator": "py:late", "type": "save", "ts": t + i, "id": "l%d" % i})
        t0 = time.monotonic()
        with self.assertRaises(nousu.NousuError) as cm:
            p.flush()
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertIsInstance(cm.exception, nousu.NousuTimeout)
        self.assertIn("3 attempts", str(cm.exception))
        self.assertEqual((p.buffered, p.resends), (3, 2))
        # the daemon comes: the kept batch goes under its request id, once
        late = self.start_daemon("late")
        a = p.flush()
        p.close()
        self.assertEqual((a.ok, a.dup, a.rejected), (3, 0, 0))
        self.assertEqual(late.creator("py:late")["counts"]["save"], 3)
        # the other helpers are bounded too
        t0 = time.monotonic()
        with self.assertRaises(nousu.NousuTimeout):
            nousu.control("ipc://%s/nobody.sock" % self.dir, {"op": "ping"}, timeout_ms=200)
        with self.assertRaises(nousu.NousuError):
            list(nousu.catch_up("127.0.0.1", free_port(), 0, timeout_ms=500))
        self.assertLess(time.monotonic() - t0, 3.0)
        with self.assertRaises(ValueError):
            p.add(["not", "a", "map"])

    def test_stale_and_unreadable_acks(self):
        # Not nousud: a ROUTER that first answers with another request id
        # (dropped: the producer keeps waiting), then with junk for an ack.
        ep = "ipc://%s/fake.sock" % self.dir
        router = zmq.Context.instance().socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.bind(ep)
        self.addCleanup(router.close)

        def serve():
            if router.poll(5000):
                ident, rid, _ = router.recv_multipart()
                router.send_multipart([ident, b"x" * 16, msgpack.packb({"ok": 1})])
                router.send_multipart([ident, rid, b"\xc1"])
        th = threading.Thread(target=serve, daemon=True)
        th.start()
        p = nousu.Producer(ep, ack=True, timeout_ms=2000, retries=0)
        p.add({"creator": "py:fake", "type": "like", "ts": now_ms()})
        with self.assertRaisesRegex(nousu.NousuError, "committed the batch"):
            p.flush()
        th.join(5)
        self.assertEqual((p.buffered, p.events_sent, p.resends), (0, 1, 0))
        self.assertIsNone(p.flush())
        p.close()


class Subscribers(Case):
    def test_subscriber_receives_the_worlds_alerts(self):
        every = nousu.Subscriber(self.d.ep["alerts"])
        susp = nousu.Subscriber(self.d.ep["alerts"], topics=("suspicious.",))
        self.addCleanup(every.close)
        self.addCleanup(susp.close)
        self.assertTrue(every.wait_connected(5000) and susp.wait_connected(5000))
        events = world.build(now_ms() - 60 * 1000)
        # acknowledged: the last ack comes once every alert is out
        p = produce(self.d.ep["ingest_ack"], events, ack=True)
        self.assertEqual((p.totals.ok, p.totals.rejected), (len(events), 0))
        n = self.r.xlen("nousu:alerts")
        got = []
        deadline = time.monotonic() + 10
        while len(got) < n and time.monotonic() < deadline:
            a = every.recv(1000)
            if a is not None:
                got.append(a)
        self.assertEqual(kinds_by_creator(got), world.EXPECTED)
        self.assertIsNone(every.recv(200))  # and nothing else
        for a in got:
            self.assertIsInstance(a, nousu.Alert)
            self.assertEqual((a.source, a.topic), ("live", "%s.%s" % (a["kind"], a["niche"])))
            self.assertEqual(a.seq, a["seq"])
        stream = [(int(f[b"seq"]), f[b"topic"].decode()) for _, f in self.r.xrange("nousu:alerts")]
        self.assertEqual([(a.seq, a.topic) for a in got], stream)
        only = []
        while True:
            a = susp.recv(200)
            if a is None:
                break
            only.append(a)
        self.assertEqual([a.seq for a in only], [a.seq for a in got if a["kind"] == "suspicious"])
        self.assertEqual(kinds_by_creator(only, ()), {"w:burst": {"suspicious"},
                                                       "w:jump": {"suspicious"}})
        self.assertEqual(every.malformed, 0)
        # the module-level catch-up sees the same alerts, filtered alike
        self.assertEqual([a.seq for a in nousu.catch_up("127.0.0.1", self.redis.port, 0)],
                         [s for s, _ in stream])
        self.assertEqual([a.seq for a in susp.catch_up("127.0.0.1", self.redis.port, 0)],
                         [a.seq for a in only])

    def test_follow_recovers_then_goes_live(self):
        events = world.build(now_ms() - 60 * 1000)
        sub = nousu.Subscriber(self.d.ep["alerts"])
        self.addCleanup(sub.close)
        self.assertTrue(sub.wait_connected(5000))
        # alerts happen before follow(): in the stream, and queued live too
        part1, part2 = {"w:riser", "w:grad"}, {"w:burst", "w:jump", "w:steady", "w:nano"}
        produce(self.d.ep["ingest_ack"], world_part(events, part1), ack=True)
        n1 = self.r.xlen("nousu:alerts")
        gen = sub.follow(0, "127.0.0.1", self.redis.port, timeout_ms=1500, sync_poll_ms=200)
        first = [next(gen) for _ in range(n1)]
        self.assertEqual([(a.seq, a.source) for a in first],
                         [(s, "stream") for s in range(1, n1 + 1)])
        self.assertEqual(kinds_by_creator(first, part1), expected(part1))
        # more alerts while following: live, and the queued copies of the
        # first ones skipped
        produce(self.d.ep["ingest_ack"], world_part(events, part2), ack=True)
        n2 = self.r.xlen("nousu:alerts") - n1
        rest = list(gen)  # ends after 1.5 s without an alert
        self.assertEqual([(a.seq, a.source) for a in rest],
                         [(s, "live") for s in range(n1 + 1, n1 + n2 + 1)])
        self.assertEqual(kinds_by_creator(rest, part2), expected(part2))
        self.assertEqual(sub.skipped, n1)

    def test_catch_up_pages_and_follow_closes_the_gap(self):
        # Entries written straight into the stream (not published): catch-up
        # pages through them, skips a bad one, and follow() finds an alert
        # that never arrives live by reading the stream again until its
        # subscription is proven live.
        def put(seq, kind, niche, msg=None):
            m = {"v": 1, "seq": seq, "kind": kind, "creator": "fake:%d" % seq, "niche": niche,
                 "ts": now_ms() - 1000, "z": 5.0, "reasons": ["test"]}
            self.r.xadd("nousu:alerts", {"seq": str(seq), "topic": "%s.%s" % (kind, niche),
                                         "msg": msg if msg is not None else msgpack.packb(m)},
                        id="%d-0" % seq)

        put(1, "rising", "knitting")
        put(2, "rising", "cooking")
        put(3, "rising", "cooking", msg=b"\xc1not msgpack")
        put(4, "graduated", "gaming")
        port = self.redis.port
        with self.assertLogs("nousu", "WARNING") as logs:
            self.assertEqual([a.seq for a in nousu.catch_up("127.0.0.1", port, 0, page_size=2)],
                             [1, 2, 4])
        self.assertIn("3-0 is not a valid alert", logs.output[0])
        logging.getLogger("nousu").setLevel(logging.ERROR)  # the bad entry again below
        self.addCleanup(logging.getLogger("nousu").setLevel, logging.NOTSET)
        self.assertEqual([a.seq for a in nousu.catch_up("127.0.0.1", port, 2)], [4])
        self.assertEqual([a.topic for a in nousu.catch_up("127.0.0.1", port, 0,
                                                          topics=["rising.knit"])],
                         ["rising.knitting"])
        self.assertEqual(list(nousu.catch_up("127.0.0.1", port, 0, prefix="other:")), [])

        sub = nousu.Subscriber(self.d.ep["alerts"], topics=("rising.", "suspicious."))
        self.addCleanup(sub.close)
        gen = sub.follow(1, "127.0.0.1", port, timeout_ms=3000, sync_poll_ms=100, page_size=2)
        self.assertEqual(next(gen).seq, 2)
        put(5, "rising", "knitting")
        t0 = time.monotonic()
        a = next(gen)
        self.assertEqual((a.seq, a.source, a["creator"]), (5, "stream", "fake:5"))
        self.assertLess(time.monotonic() - t0, 1.5)
        put(6, "graduated", "gaming")  # not subscribed
        put(7, "suspicious", "fitness")
        self.assertEqual(next(gen).seq, 7)
        gen.close()


class Examples(Case):
    def run_example(self, name, *args, **kw):
        return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args],
                              capture_output=True, text=True, timeout=60, **kw)

    def test_examples(self):
        port = str(self.redis.port)
        # subscribe.py follows from seq 0 while produce.py plays part of the world
        sub = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, "subscribe.py"),
                                "--endpoint", self.d.ep["alerts"], "--since", "0",
                                "--redis", "127.0.0.1:" + port, "--count", "1",
                                "--timeout-ms", "20000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            events = world_part(world.build(now_ms() - 60 * 1000), {"w:riser", "w:grad"})
            path = os.path.join(self.dir, "events.jsonl")
            with open(path, "w") as f:
                for i in range(0, len(events), 100):  # objects and arrays of them
                    f.write(json.dumps(events[i]) + "\n")
                    f.write(json.dumps(events[i + 1:i + 100]) + "\n")
            r = self.run_example("produce.py", "--ack", "--endpoint", self.d.ep["ingest_ack"],
                                 "--batch-size", "250", path)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("ok %d, dup 0, rejected 0" % len(events), r.stderr)
            out, err = sub.communicate(timeout=30)
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()
        stream = [(int(f[b"seq"]), msgpack.unpackb(f[b"msg"], raw=False)["creator"])
                  for _, f in self.r.xrange("nousu:alerts")]
        self.assertEqual({c for _, c in stream}, {"w:riser", "w:grad"})
        self.assertEqual(sub.returncode, 0, err)
        self.assertEqual([(a["seq"], a["creator"]) for a in map(json.loads, out.splitlines())],
                         stream[:1])
        # after the fact: --since 0 prints them all, --since 1 all but the
        # first; both end on their timeout
        for since in (0, 1):
            r = self.run_example("subscribe.py", "-e", self.d.ep["alerts"], "-s", str(since),
                                 "-r", "127.0.0.1:" + port, "-t", "300")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([(a["seq"], a["creator"]) for a in map(json.loads,
                                                                     r.stdout.splitlines())],
                             stream[since:])
        # a topic filter
        r = self.run_example("subscribe.py", "-e", self.d.ep["alerts"], "-s", "0",
                             "-r", "127.0.0.1:" + port, "-t", "300", "rising.")
        self.assertEqual([json.loads(x)["creator"] for x in r.stdout.splitlines()], ["w:riser"])

        # bad lines and rejected events are reported; exit status 1
        t = now_ms() - 1000
        lines = [json.dumps({"creator": "py:ex", "type": "like", "ts": t, "id": "x1"}),
                 "{not json",
                 json.dumps([{"creator": "py:ex", "type": "like", "ts": t + 0.5},
                             {"creator": "py:ex", "type": "like", "ts": t, "id": "x1"}])]
        r = self.run_example("produce.py", "--ack", "-e", self.d.ep["ingest_ack"],
                             input="\n".join(lines) + "\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("stdin:2: not JSON", r.stderr)
        self.assertIn("stdin:3/0: bad_type", r.stderr)
        self.assertIn("ok 1, dup 1, rejected 1", r.stderr)
        # fire and forget, generated events
        r = self.run_example("produce.py", "-e", self.d.ep["ingest"], "--generate", "50",
                             "--creator", "py:gen", "--type", "save")
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: self.d.stats()["events_accepted"] >= len(events) + 1 + 50,
                 what="generated events")
        self.assertEqual(self.d.creator("py:gen")["counts"]["save"], 50)
        # no daemon: exit status 2, quickly
        r = self.run_example("produce.py", "--ack", "-e", "ipc://%s/none.sock" % self.dir,
                             "--timeout-ms", "100", "--retries", "1", "--generate", "1")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no ack", r.stderr)


if __name__ == "__main__":
    unittest.main()
