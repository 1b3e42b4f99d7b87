"""The daemon under a least-privilege Redis ACL user (docs/security.md): the
whole pipeline works with exactly the documented permissions; the password
comes from a file and shows up neither in argv nor in the log; a wrong
password stops start-up with a reason."""
import os
import shutil
import subprocess
import tempfile
import unittest

import world
from harness import NOUSUD, Daemon, RedisServer, now_ms, pack, stop_pid, wait_for
from test_e2e import kinds_by_creator, play, stream_alerts

DOCS = os.path.join(os.path.dirname(__file__), "../../docs/security.md")
PASSWORD = "s3cret-for-nousud-only"


def documented_acl():
    """The ACL SETUSER line of docs/security.md, with its placeholder."""
    with open(DOCS) as f:
        for line in f:
            line = line.strip()
            if line.startswith("ACL SETUSER nousud "):
                return line.split()[3:]
    raise AssertionError("no ACL SETUSER line in docs/security.md")


class RedisAcl(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nousu-acl-")
        self.redis = RedisServer(self.dir)
        self.addCleanup(stop_pid, self.redis.proc)  # also when setUp fails
        rules = [r.replace("<password>", PASSWORD) for r in documented_acl()]
        self.redis.client.execute_command("ACL", "SETUSER", "nousud", *rules)
        # the default user no longer lets anyone in without a password
        self.redis.client.execute_command("ACL", "SETUSER", "default", "on", ">admin-only")
        self.pwfile = os.path.join(self.dir, "redis.pass")
        with open(self.pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(self.pwfile, 0o600)

    def tearDown(self):
        self.redis.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_pipeline_under_least_privilege(self):
        d = Daemon(self.dir, self.redis.port, extra=["--redis_user=nousud",
                                                     "--redis_password_file=" + self.pwfile])
        try:
            events = world.build(now_ms() - 60 * 1000)
            play([d], events)
            d.wait_accepted(len(events), timeout=60)
            dl = d.dealer()
            ack = d.request(dl, b"acl-1", pack({"creator": "ig:a", "type": "like",
                                                "ts": now_ms() - 10, "id": "x"}))
            self.assertEqual(ack["ok"], 1)
            d.push().send(b"\xc1")
            wait_for(lambda: d.stats()["events_rejected"] == 1)
            self.assertTrue(d.control({"op": "top"})["creators"])
            self.assertEqual(d.creator("ig:a")["counts"]["like"], 1)
            with open("/proc/%d/cmdline" % d.proc.pid, "rb") as f:
                self.assertNotIn(PASSWORD.encode(), f.read())
        finally:
            self.assertEqual(d.stop(), 0)
        self.assertNotIn(PASSWORD, d.read_log())
        admin = self.redis.client
        admin.execute_command("AUTH", "admin-only")
        got = kinds_by_creator(stream_alerts(admin))
        for creator, kinds in world.EXPECTED.items():
            self.assertEqual(got.get(creator, set()), kinds, creator)
        self.assertEqual(len(admin.xrange("nousu:deadletter")), 1)

    def test_wrong_password_stops_start_up(self):
        with open(self.pwfile, "w") as f:
            f.write("wrong-password\n")
        r = subprocess.run([NOUSUD, "--redis_port=%d" % self.redis.port, "--metrics=",
                            "--redis_user=nousud", "--redis_password_file=" + self.pwfile,
                            "--ingest=", "--ingest_ack=", "--alerts=", "--control="],
                           capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("AUTH", r.stderr)
        self.assertNotIn("wrong-password", r.stderr)


if __name__ == "__main__":
    unittest.main()
