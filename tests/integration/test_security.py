"""CURVE on every endpoint with the daemon's own ZAP handler: an allow-listed
client gets in and out; a NULL-security client and a CURVE client with an
unknown key get nothing in and nothing out; bad key files stop start-up."""
import os
import subprocess
import tempfile

import msgpack
import zmq

import world
from harness import NOUSUD, Case, RedisServer, ev, free_port, now_ms, pack, stop_pid, tool, wait_for
from test_ops import metric, scrape
from test_e2e import stream_alerts


class Curve(Case):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nousu-it-")
        self.redis = RedisServer(self.dir)
        self.addCleanup(stop_pid, self.redis.proc)  # also when setUp fails
        self.r = self.redis.client
        self.daemons = []
        self.server_pub, server_sec = zmq.curve_keypair()
        self.good_pub, self.good_sec = zmq.curve_keypair()
        self.bad_pub, self.bad_sec = zmq.curve_keypair()
        sec = os.path.join(self.dir, "server.key")
        allowed = os.path.join(self.dir, "allowed.keys")
        with open(sec, "wb") as f:
            f.write(server_sec + b"\n")
        with open(allowed, "wb") as f:
            f.write(b"# producers and subscribers\n\n" + self.good_pub + b"\n")
        good = (self.good_pub, self.good_sec)

        def curve_ping(d):
            self.d = d
            return (self.control(good, {"op": "ping"}, 300) or {}).get("pong")
        self.metrics_port = free_port()
        self.d = self.start_daemon(extra=["--curve_secret_key_file=" + sec,
                                          "--curve_allowed_keys_file=" + allowed,
                                          "--metrics=127.0.0.1:%d" % self.metrics_port],
                                   ready=curve_ping)

    def client(self, kind, endpoint, keys):
        s = self.d.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        if keys:
            s.curve_serverkey = self.server_pub
            s.curve_publickey, s.curve_secretkey = keys
        s.connect(endpoint)
        self.d.sockets.append(s)
        return s

    def control(self, keys, req, timeout_ms=1500):
        s = self.client(zmq.REQ, self.d.ep["control"], keys)
        s.send(msgpack.packb(req))
        if not s.poll(timeout_ms):
            return None
        return msgpack.unpackb(s.recv(), raw=False)

    def test_only_allow_listed_clients_get_in_and_out(self):
        good = (self.good_pub, self.good_sec)
        bad = (self.bad_pub, self.bad_sec)
        # the harness's own control client uses NULL security: refused
        self.assertFalse(self.d.try_ping())
        self.assertIsNone(self.control(bad, {"op": "ping"}))
        self.assertTrue(self.control(good, {"op": "ping"})["pong"])

        t = now_ms() - 1000
        subs = {name: self.client(zmq.SUB, self.d.ep["alerts"], keys)
                for name, keys in (("good", good), ("bad", bad), ("null", None))}
        for s in subs.values():
            s.setsockopt(zmq.SUBSCRIBE, b"")
        for keys in (bad, None):
            p = self.client(zmq.PUSH, self.d.ep["ingest"], keys)
            p.send(pack(ev("ig:intruder", "like", t)), zmq.NOBLOCK)
            d = self.client(zmq.DEALER, self.d.ep["ingest_ack"], keys)
            d.send_multipart([b"r", pack(ev("ig:intruder", "like", t))], zmq.NOBLOCK)
        p = self.client(zmq.PUSH, self.d.ep["ingest"], good)
        for i in range(0, len(events := world.build(now_ms() - 60000)), 500):
            p.send(pack(events[i:i + 500]))
        wait_for(lambda: self.control(good, {"op": "stats"})["events_accepted"] == len(events),
                 30, "the allowed producer's events")
        d = self.client(zmq.DEALER, self.d.ep["ingest_ack"], good)
        d.send_multipart([b"ok", pack(ev("ig:friend", "like", t))])
        self.assertTrue(d.poll(5000))
        self.assertEqual(msgpack.unpackb(d.recv_multipart()[1])["ok"], 1)

        st = self.control(good, {"op": "stats"})
        self.assertEqual(st["events_accepted"], len(events) + 1)
        self.assertEqual(self.control(good, {"op": "creator", "creator": "ig:intruder"}),
                         {"error": "unknown_creator"})
        n_alerts = len(stream_alerts(self.r))
        self.assertGreater(n_alerts, 0)
        got = []
        while subs["good"].poll(1000):
            got.append(subs["good"].recv_multipart())
        self.assertEqual(len(got), n_alerts)
        self.assertFalse(subs["bad"].poll(200))
        self.assertFalse(subs["null"].poll(200))
        # the refused handshakes show in the metrics
        refused = wait_for(lambda: metric(scrape(self.metrics_port)[1],
                                          "nousu_curve_refused_total") or 0)
        self.assertGreater(refused, 0)

    def test_tools_take_key_files(self):
        keys = os.path.join(self.dir, "client.keys")
        with open(keys, "wb") as f:
            f.write(self.good_pub + b"\n" + self.good_sec + b"\n")
        line = '{"creator": "ig:cli", "type": "like", "ts": %d}\n' % (now_ms() - 1000)
        r = subprocess.run([tool("nousu-send"), "--ack", "--endpoint=" + self.d.ep["ingest_ack"],
                            "--curve-server-key", self.server_pub.decode(), "--curve-keys", keys],
                           input=line, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        good = (self.good_pub, self.good_sec)
        self.assertEqual(self.control(good, {"op": "creator", "creator": "ig:cli"})["counts"]["like"],
                         1)


class BadKeys(Case):
    def start_with(self, secret, allowed):
        """nousud with these key files (bytes); returns (exit status, stderr)."""
        paths = os.path.join(self.dir, "s.key"), os.path.join(self.dir, "a.keys")
        for path, data in zip(paths, (secret, allowed)):
            with open(path, "wb") as f:
                f.write(data)
        r = subprocess.run([NOUSUD, "--redis_port=%d" % self.redis.port, "--metrics=",
                            "--ingest=", "--ingest_ack=", "--alerts=", "--control=",
                            "--curve_secret_key_file=" + paths[0],
                            "--curve_allowed_keys_file=" + paths[1]],
                           capture_output=True, text=True, timeout=10)
        return r.returncode, r.stderr

    def test_bad_key_files_stop_start_up(self):
        rc, err = self.start_with(b"not a key\n", b"")
        self.assertNotEqual(rc, 0)
        self.assertIn("Z85", err)
        _, server_sec = zmq.curve_keypair()
        rc, err = self.start_with(server_sec, b"tooshort\n")
        self.assertNotEqual(rc, 0)
        self.assertIn("a.keys:1", err)
