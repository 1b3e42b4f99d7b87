"""The command-line tools against the real daemon: nousu-demo's planted world
gets exactly its expected alerts, nousu-send feeds JSON lines (acknowledged),
nousu-tail prints alerts and catches up from the stream with --since."""
import json
import subprocess

from harness import Case, now_ms, tool, wait_for

DEMO_EXPECTED = {("rising", "demo:riser"), ("suspicious", "demo:burst"),
                 ("graduated", "demo:grad")}


class Tools(Case):
    def tail(self, *args):
        return subprocess.Popen([tool("nousu-tail"), "--endpoint=" + self.d.ep["alerts"], *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_demo_world_and_tail_catch_up(self):
        r = subprocess.run([tool("nousu-demo"), "--endpoint=" + self.d.ep["ingest_ack"], "--ack"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = {(m.split(".")[0], c) for m, c in
               ((f[b"topic"].decode(), msg_creator(f)) for _, f in self.r.xrange("nousu:alerts"))}
        self.assertEqual(got, DEMO_EXPECTED)
        # a subscriber that was away catches up from the stream
        t = self.tail("--since=0", "--redis=127.0.0.1:%d" % self.redis.port, "--count=3",
                      "--timeout-ms=5000")
        out, err = t.communicate(timeout=30)
        self.assertEqual(t.returncode, 0, err)
        lines = [json.loads(x) for x in out.splitlines()]
        self.assertEqual({(a["kind"], a["creator"]) for a in lines}, DEMO_EXPECTED)
        self.assertEqual([a["seq"] for a in lines], [1, 2, 3])
        # --since 2 prints only what came after
        t = self.tail("--since=2", "--redis=127.0.0.1:%d" % self.redis.port,
                      "--timeout-ms=1000")
        out, _ = t.communicate(timeout=30)
        self.assertEqual([json.loads(x)["seq"] for x in out.splitlines()], [3])

    def test_send_json_lines_acknowledged(self):
        t = now_ms() - 1000
        lines = [json.dumps({"creator": "ig:js", "type": "like", "ts": t, "id": "j1"}),
                 "{not json",
                 json.dumps({"creator": "ig:js", "type": "like", "ts": t + 0.5}),
                 json.dumps([{"creator": "ig:js", "type": "comment", "ts": t, "actor": 5},
                             {"creator": "ig:js", "type": "like", "ts": t, "id": "j1"}])]
        r = subprocess.run([tool("nousu-send"), "--ack", "--endpoint=" + self.d.ep["ingest_ack"]],
                           input="\n".join(lines) + "\n", capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 1)  # an invalid line and a rejected event
        self.assertIn("stdin:2", r.stderr)
        self.assertIn("bad_type", r.stderr)
        c = self.d.creator("ig:js")
        self.assertEqual(c["counts"]["like"], 1)  # j1 twice: counted once
        self.assertEqual(c["counts"]["comment"], 1)
        st = self.d.stats()
        self.assertEqual((st["events_accepted"], st["events_duplicate"]), (2, 1))

    def test_tail_since_reads_the_stream_until_live_alerts_arrive(self):
        # A subscription that never takes effect (nothing publishes there):
        # alerts that come after the first catch-up must still be printed,
        # from the stream re-read while no live alert has proved the
        # subscription.
        t = subprocess.Popen([tool("nousu-tail"), "--endpoint=ipc://%s/nowhere" % self.dir,
                              "--since=0", "--redis=127.0.0.1:%d" % self.redis.port,
                              "--count=3", "--timeout-ms=30000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        subprocess.run([tool("nousu-demo"), "--endpoint=" + self.d.ep["ingest_ack"], "--ack"],
                       capture_output=True, timeout=120, check=True)
        out, err = t.communicate(timeout=30)
        self.assertEqual(t.returncode, 0, err)
        self.assertEqual({(a["kind"], a["creator"]) for a in map(json.loads, out.splitlines())},
                         DEMO_EXPECTED)

    def test_top_once_prints_the_leaderboard(self):
        subprocess.run([tool("nousu-demo"), "--endpoint=" + self.d.ep["ingest_ack"], "--ack"],
                       capture_output=True, timeout=120, check=True)
        r = subprocess.run([tool("nousu-top"), "--once", "--endpoint=" + self.d.ep["control"],
                            "--niche=knitting", "--niche=fitness"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("\x1b", r.stdout)  # plain text for scripts
        rows = [line.split() for line in r.stdout.splitlines()]
        riser = [row for row in rows if "demo:riser" in row]
        self.assertEqual(len(riser), 1, r.stdout)
        self.assertIn("knitting", riser[0])
        # the burst is suspicious, not rising: not on the fitness board
        self.assertNotIn("demo:burst", r.stdout)
        # a daemon that does not answer: a clear error, exit 1
        r = subprocess.run([tool("nousu-top"), "--once", "--timeout-ms=300",
                            "--endpoint=ipc://%s/nobody" % self.dir],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.strip())

    def test_tail_live_with_topic_filter(self):
        # --since 0 closes the window before the subscription is in place;
        # live alerts already printed from the stream are skipped by seq
        t = self.tail("graduated.", "--count=1", "--timeout-ms=20000", "--since=0",
                      "--redis=127.0.0.1:%d" % self.redis.port)
        wait_for(lambda: self.d.try_ping())
        subprocess.run([tool("nousu-demo"), "--endpoint=" + self.d.ep["ingest_ack"], "--ack",
                        "--batch=100"], capture_output=True, timeout=120, check=True)
        out, err = t.communicate(timeout=30)
        alerts = [json.loads(x) for x in out.splitlines()]
        self.assertEqual([(a["kind"], a["creator"]) for a in alerts],
                         [("graduated", "demo:grad")], err)


def msg_creator(fields):
    import msgpack
    return msgpack.unpackb(fields[b"msg"], raw=False)["creator"]
