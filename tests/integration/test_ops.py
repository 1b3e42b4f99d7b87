"""Running it like ops would: Prometheus metrics that move with traffic,
/healthz following Redis, the systemd notification protocol (READY, STATUS,
WATCHDOG, RELOADING, STOPPING), SIGHUP reload under traffic without losing an
event, and the shipped unit file's verification and security score."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import BUILD, Case, RedisServer, free_port, ev, now_ms, pack, wait_for

ROOT = os.path.join(os.path.dirname(__file__), "../..")
UNIT = os.path.join(ROOT, "systemd/nousud.service")


def scrape(port, path="/metrics"):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


class Metrics(Case):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.m = self.start_daemon("m", extra=["--metrics=127.0.0.1:%d" % self.port])

    def test_metrics_move_with_traffic(self):
        status, text = scrape(self.port)
        self.assertEqual(status, 200)
        self.assertEqual(metric(text, "nousu_events_total", '{result="accepted"}'), 0)
        self.assertEqual(metric(text, "nousu_redis_up"), 1)
        self.assertIsNotNone(metric(text, "process_start_time_seconds"))
        self.assertIn('nousu_build_info{version="', text)
        t = now_ms() - 1000
        p = self.m.push()
        p.send(pack([ev("ig:m", "like", t)] * 5 + [{"creator": "ig:m"}]))
        p.send(b"\xc1")
        self.m.wait_accepted(5)

        def moved():
            _, x = scrape(self.port)
            return metric(x, "nousu_events_total", '{result="accepted"}') == 5 and x
        text = wait_for(moved, what="metrics to move")
        self.assertEqual(metric(text, "nousu_events_total", '{result="rejected"}'), 2)
        self.assertEqual(metric(text, "nousu_rejected_total", '{reason="malformed"}'), 1)
        self.assertEqual(metric(text, "nousu_rejected_total", '{reason="missing_type"}'), 1)
        self.assertGreaterEqual(metric(text, "nousu_commits_total"), 1)
        self.assertGreaterEqual(metric(text, "nousu_redis_roundtrip_seconds_count"), 1)
        self.assertEqual(metric(text, "nousu_commit_events_bucket", '{le="+Inf"}'),
                         metric(text, "nousu_commit_events_count"))
        # one lag per commit, none negative, none past the test's own length
        commits = metric(text, "nousu_commits_total")
        self.assertEqual(metric(text, "nousu_commit_lag_seconds_count"), commits)
        self.assertEqual(metric(text, "nousu_commit_lag_seconds_bucket", '{le="+Inf"}'), commits)
        lag = metric(text, "nousu_commit_lag_seconds_sum")
        self.assertGreaterEqual(lag, 0)
        self.assertLess(lag, commits * 60)
        # a Prometheus text format sanity check: every sample has HELP/TYPE
        for name in set(re.findall(r"^([a-z_]+?)(?:_bucket|_sum|_count)?[{ ]", text, re.M)):
            self.assertTrue(re.search(r"^# TYPE %s" % name, text, re.M) or
                            re.search(r"^# TYPE %s" % name.rsplit("_", 1)[0], text, re.M), name)

    def test_healthz_follows_redis(self):
        self.assertEqual(scrape(self.port, "/healthz")[0], 200)
        self.assertEqual(scrape(self.port, "/nope")[0], 404)
        self.redis.stop()
        # the loop notices on its next Redis call; nudge it with an event
        self.m.push().send(pack(ev("ig:h", "like", now_ms() - 10)))
        wait_for(lambda: scrape(self.port, "/healthz")[0] == 503, what="healthz 503")
        _, text = scrape(self.port)
        self.assertEqual(metric(text, "nousu_redis_up"), 0)
        self.assertGreaterEqual(metric(text, "nousu_batch_pending_events"), 1)
        # back on its port: healthy again, and the batch it kept is committed
        self.redis = RedisServer(self.dir, port=self.redis.port)
        wait_for(lambda: scrape(self.port, "/healthz")[0] == 200, what="healthz 200")
        self.m.wait_accepted(1)


class Notify(Case):
    def test_notification_protocol(self):
        path = os.path.join(self.dir, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(5)
        self.addCleanup(s.close)
        d = self.start_daemon("n", env={"NOTIFY_SOCKET": path})
        seen = []

        def until(word):
            while True:
                msg = s.recv(4096).decode()
                seen.append(msg)
                if word in msg:
                    return msg
        until("READY=1")
        until("WATCHDOG=1")
        status = until("STATUS=")
        self.assertIn("events/s", status)
        os.kill(d.proc.pid, signal.SIGHUP)
        until("RELOADING=1")
        until("READY=1")
        os.kill(d.proc.pid, signal.SIGTERM)
        until("STOPPING=1")
        self.assertEqual(d.proc.wait(10), 0)


def write_atomically(path, text):
    """As an editor or config manager would: never a half-written file."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


class Reload(Case):
    def test_sighup_under_traffic_loses_nothing(self):
        conf = os.path.join(self.dir, "n.conf")
        write_atomically(conf, "log_level = info\nrising_min_velocity = 3\n")
        d = self.start_daemon("r", config_file=conf)
        p = d.push()
        t = now_ms() - 1000
        sent = 0
        for i in range(40):
            p.send(pack([ev("ig:r%d" % (i % 7), "like", t, id="x%d-%d" % (i, k))
                         for k in range(50)]))
            sent += 50
            if i == 10:
                write_atomically(conf, "log_level = debug\nrising_min_velocity = 4\n")
                os.kill(d.proc.pid, signal.SIGHUP)
                wait_for(lambda: "configuration reloaded" in d.read_log(), what="reload")
            if i == 25:
                write_atomically(conf, "log_level = info\nkey_prefix = elsewhere:\n")
                os.kill(d.proc.pid, signal.SIGHUP)
                wait_for(lambda: "keeping the running" in d.read_log(), what="refused reload")
        st = d.wait_accepted(sent)
        self.assertEqual(st["events_accepted"], sent)
        log = d.read_log()
        self.assertIn("changed: log_level, rising_min_velocity", log)
        self.assertRegex(log, r"reload: .*key_prefix.*keeping the running configuration")


def install_tree(tmp):
    subprocess.run(["cmake", "--install", BUILD, "--prefix", os.path.join(tmp, "usr")],
                   check=True, capture_output=True)


class Unit(unittest.TestCase):
    def test_security_exposure(self):
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", UNIT],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for nousud.service: ([0-9.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 1.5)

    def test_verify_without_warnings(self):
        tmp = tempfile.mkdtemp(prefix="nousu-unit-")
        self.addCleanup(shutil.rmtree, tmp, True)
        install_tree(tmp)
        unit = os.path.join(tmp, "nousud.service")
        with open(UNIT) as f:
            text = f.read()
        # the installed binary, as the unit would run it
        text = text.replace("/usr/sbin/nousud", os.path.join(tmp, "usr/sbin/nousud"))
        with open(unit, "w") as f:
            f.write(text)
        env = dict(os.environ, MANPATH=os.path.join(tmp, "usr/share/man"))
        r = subprocess.run(["systemd-analyze", "verify", "--man=yes", unit],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "", r.stderr)


if __name__ == "__main__":
    unittest.main()
