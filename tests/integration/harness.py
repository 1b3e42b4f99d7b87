"""harness.py -- real processes for integration tests.

A throwaway redis-server on a free loopback port in a temp dir, nousud with
ipc:// endpoints in the same dir, ZeroMQ helpers. Every process is started
here and stopped by its PID; every wait is a condition polled against a
deadline, never a fixed sleep.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import msgpack
import redis
import zmq

BUILD = os.environ.get("NOUSU_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
# NOUSU_REDIS_MODULE=path: every redis-server loads that module (the nousu
# tables for event ids instead of intsets; .ci/test runs the id tests so too).
REDIS_MODULE = os.environ.get("NOUSU_REDIS_MODULE") or None
MODULE_SO = os.path.join(BUILD, "nousu.so")
NOUSUD = os.path.join(BUILD, "nousud")
TOOLS = os.path.join(BUILD, "clients")


def tool(name):
    return os.path.join(TOOLS, name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=10.0, what="condition", interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def stop_pid(proc, sig=signal.SIGTERM, timeout=10.0):
    """Stop a process we started, by its PID; returns its exit status."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


class RedisServer:
    """redis-server on a loopback port, its files in workdir. appendfsync
    (always, everysec, no) applies with appendonly. A restart on the same
    port and dir from its AOF passes expect_empty=False."""

    def __init__(self, workdir, appendonly=False, port=None, appendfsync=None,
                 expect_empty=True, module=REDIS_MODULE, extra=()):
        self.dir = workdir
        self.port = port or free_port()
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", workdir, "--save", "", "--daemonize", "no",
                "--appendonly", "yes" if appendonly else "no",
                "--logfile", os.path.join(workdir, "redis.log")]
        if appendfsync:
            args += ["--appendfsync", appendfsync]
        if module:
            args += ["--loadmodule", module]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.client = redis.Redis(host="127.0.0.1", port=self.port)
            wait_for(lambda: self.proc.poll() is not None or self._ping(), what="redis-server")
            # The server that answers is this one, not another process that
            # took the port (a restart on the same port can lose that race).
            assert self.proc.poll() is None, "redis-server exited (port %d taken?)" % self.port
            assert self.client.info("server")["process_id"] == self.proc.pid, \
                "another process answers on port %d" % self.port
            # Refuse a dirty database: the tests own it entirely.
            if expect_empty:
                assert self.client.dbsize() == 0, "redis db not empty"
        except BaseException:
            stop_pid(self.proc, signal.SIGKILL)
            raise

    def _ping(self):
        try:
            return self.client.ping()
        except redis.exceptions.ConnectionError:
            return False

    def stop(self):
        stop_pid(self.proc)


def redis_for(case, prefix, **kw):
    """A fresh redis-server (RedisServer keyword arguments) in a temp dir for
    a TestCase. The server is stopped by its PID and the dir removed when the
    test ends, also when setUp fails after this call. Returns the server."""
    workdir = tempfile.mkdtemp(prefix=prefix)
    case.addCleanup(shutil.rmtree, workdir, True)
    server = RedisServer(workdir, **kw)
    case.addCleanup(stop_pid, server.proc)
    return server


def redis_with_library(case, lua_path, prefix, module=REDIS_MODULE, extra=()):
    """redis_for with the Function library loaded."""
    server = redis_for(case, prefix, module=module, extra=extra)
    with open(lua_path, "rb") as f:
        server.client.execute_command("FUNCTION", "LOAD", "REPLACE", f.read())
    return server


class Daemon:
    """nousud on ipc:// endpoints inside workdir."""

    def __init__(self, workdir, redis_port, name="d", extra=(), config_file=None, env=None,
                 log_name=None, ready=None):
        self.dir = workdir
        self.ep = {k: "ipc://%s/%s-%s.sock" % (workdir, name, k)
                   for k in ("ingest", "ingest_ack", "alerts", "control")}
        # every hinted run is checked against the Function's own computation
        args = [NOUSUD, "--redis_port=%d" % redis_port, "--metrics=", "--commit_hints=verify"]
        if config_file:
            args += ["-c", config_file]
        args += ["--%s=%s" % (k, v) for k, v in self.ep.items()]
        args += list(extra)
        self.log = open(os.path.join(workdir, (log_name or name) + ".log"), "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=None if env is None else {**os.environ, **env})
        self.ctx = zmq.Context.instance()
        self.sockets = []
        ready = ready or Daemon.try_ping
        try:
            wait_for(lambda: self.proc.poll() is not None or ready(self), what="nousud ready")
            assert self.proc.poll() is None, "nousud exited: " + self.read_log()
        except BaseException:
            stop_pid(self.proc, signal.SIGKILL)
            raise

    def read_log(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def try_ping(self):
        try:
            return self.control({"op": "ping"}, timeout_ms=200).get("pong")
        except TimeoutError:
            return False

    def control_raw(self, payload, timeout_ms=3000):
        s = self.ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.ep["control"])
        try:
            s.send(payload)
            if not s.poll(timeout_ms):
                raise TimeoutError("control")
            return msgpack.unpackb(s.recv(), raw=False)
        finally:
            s.close()

    def control(self, req, timeout_ms=3000):
        return self.control_raw(msgpack.packb(req), timeout_ms)

    def stats(self):
        return self.control({"op": "stats"})

    def creator(self, cid):
        return self.control({"op": "creator", "creator": cid})

    def push(self):
        s = self.ctx.socket(zmq.PUSH)
        self.sockets.append(s)
        s.setsockopt(zmq.LINGER, 2000)
        s.connect(self.ep["ingest"])
        return s

    def dealer(self):
        s = self.ctx.socket(zmq.DEALER)
        self.sockets.append(s)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.ep["ingest_ack"])
        return s

    def request(self, dealer, rid, payload, timeout_ms=5000):
        dealer.send_multipart([rid, payload])
        if not dealer.poll(timeout_ms):
            raise TimeoutError("ack")
        got_rid, ack = dealer.recv_multipart()
        assert got_rid == rid
        return msgpack.unpackb(ack, raw=False)

    def sub(self, topic=b""):
        s = self.ctx.socket(zmq.SUB)
        self.sockets.append(s)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SUBSCRIBE, topic)
        s.connect(self.ep["alerts"])
        return s

    def wait_accepted(self, n, timeout=20.0):
        return wait_for(lambda: self.stats()["events_accepted"] >= n and self.stats(),
                        timeout, "%d events accepted" % n)

    def stop(self, sig=signal.SIGTERM):
        for s in self.sockets:
            s.close(linger=0)
        self.sockets = []
        rc = stop_pid(self.proc, sig)
        self.log.close()
        return rc


class Case(unittest.TestCase):
    """A temp dir with a fresh Redis and one daemon."""

    daemon_args = ()
    redis_opts = {}  # RedisServer keyword arguments, e.g. appendonly=True

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nousu-it-")
        self.redis = RedisServer(self.dir, **self.redis_opts)
        # unittest skips tearDown when setUp fails; cleanups always run
        self.addCleanup(stop_pid, self.redis.proc)
        self.r = self.redis.client
        self.daemons = []
        self.d = self.start_daemon()

    def start_daemon(self, name="d", extra=None, **kw):
        d = Daemon(self.dir, self.redis.port, name,
                   extra=self.daemon_args if extra is None else extra, **kw)
        self.addCleanup(stop_pid, d.proc, signal.SIGKILL)  # no-op after tearDown
        self.daemons.append(d)
        return d

    def tearDown(self):
        problems = []
        for d in self.daemons:
            if d.proc.poll() is None:
                rc = d.stop()
                if rc != 0:
                    problems.append("%s exited %d" % (d.log.name, rc))
            log = d.read_log()
            # ASan/UBSan builds: any report fails the test that caused it.
            if "Sanitizer" in log or "runtime error:" in log:
                problems.append(log[-4000:])
        self.redis.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            self.fail("\n".join(problems))


def now_ms():
    return int(time.time() * 1000)


def ev(creator, type_, ts, **kw):
    e = {"creator": creator, "type": type_, "ts": ts}
    e.update(kw)
    return e


def table_ids(raw):
    """The ids in a table of the nousu module (daemon/idtable.h), sorted:
    where each sits depends on the order they came in."""
    n = (len(raw) - 16) // 8
    return sorted(v for v in struct.unpack("<%dQ" % n, raw[16:]) if v)


def creator_state(r, creator, prefix="nousu:"):
    """A creator's state as the Function library stores it (one msgpack map
    per creator: docs/redis-keys.md), or None."""
    raw = r.get("%s{%s}" % (prefix, creator))
    return msgpack.unpackb(raw, raw=False, strict_map_key=False) if raw else None


def counts_in_redis(r, creator, prefix="nousu:"):
    """Per-type counts of the creator's recent window, straight from Redis."""
    st = creator_state(r, creator, prefix)
    return list(st["r"]) if st else [0] * 9


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)
