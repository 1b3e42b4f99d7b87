#!/usr/bin/python3
"""poll.py -- sample Redis and the bench's processes every 100 ms beside a
bench/run.sh run, to line a slow stretch of --latency-log up with what the
machine was doing then.

Usage:
  bench/poll.py RUN_OUTPUT POLL_FILE
      waits for run.sh's "redis-server ... on 127.0.0.1:PORT (pid N), nousud
      pid M" line in RUN_OUTPUT (run.sh's stdout, redirected to a file), then
      writes one JSON line per 100 ms to POLL_FILE until redis-server exits
      (or 30 min pass).
  bench/poll.py --show POLL_FILE LATENCY_LOG [--from HH:MM:SS] [--to HH:MM:SS]
      one line per sample: wall clock, the worst latency of the risers sent
      in it, Redis CPU, commits and their time, AOF figures, page faults and
      CPU of both processes, dirty and writeback memory.

Example:
  MODULE=1 bench/run.sh build-bench -- --events=3000000 --latency-log=/tmp/lat \\
      >/tmp/run.out 2>&1 & bench/poll.py /tmp/run.out /tmp/poll; wait
  bench/poll.py --show /tmp/poll /tmp/lat | awk '$2 > 50'
"""
import json
import os
import re
import sys
import time

INFO_KEYS = ("used_cpu_sys", "used_cpu_user", "aof_delayed_fsync", "aof_buffer_length",
             "aof_current_size", "aof_rewrite_in_progress", "used_memory")


def proc_stat(pid):
    """(minor faults, major faults, CPU seconds) of pid, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[7]), int(fields[9]), (int(fields[11]) + int(fields[12])) / tick


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            if k in ("Dirty", "Writeback"):
                out[k] = int(v.split()[0])
    return out


def wait_for_run(path, deadline):
    pat = re.compile(r"on 127\.0\.0\.1:(\d+) \(pid (\d+)\), nousud pid (\d+)")
    while time.time() < deadline:
        try:
            with open(path) as f:
                m = pat.search(f.read())
            if m:
                return int(m[1]), int(m[2]), int(m[3])
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"poll.py: no run.sh start line in {path}")


def sample(r, pids):
    info = r.info("all")
    s = {"t": time.time()}
    for k in INFO_KEYS:
        if k in info:
            s[k] = info[k]
    fc = info.get("cmdstat_fcall")
    if fc:
        s["fcalls"], s["fcall_us"] = fc["calls"], fc["usec"]
    for name, pid in pids.items():
        st = proc_stat(pid)
        if st:
            s[name] = st
    s.update(meminfo())
    return s


def poll(run_output, poll_file):
    import redis  # Debian's python3-redis
    port, redis_pid, nousud_pid = wait_for_run(run_output, time.time() + 60)
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    pids = {"redis": redis_pid, "nousud": nousud_pid}
    end = time.time() + 1800
    with open(poll_file, "w") as out:
        while time.time() < end and proc_stat(redis_pid):
            t0 = time.time()
            try:
                out.write(json.dumps(sample(r, pids)) + "\n")
            except Exception:  # Redis stopping: the run is over
                break
            time.sleep(max(0.0, 0.1 - (time.time() - t0)))


def hms(t):
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 10) % 10}"


def show(poll_file, latency_log, lo, hi):
    with open(poll_file) as f:
        samples = [json.loads(line) for line in f]
    lat = []
    with open(latency_log) as f:
        for line in f:
            sent, ms = line.split()[:2]
            lat.append((float(sent), float(ms)))
    print("time        lat_ms rcpu% fcalls fc_ms aofbufKB aofMB dly rw  rflt  rcpu  nflt  ncpu"
          " dirtyMB wbMB")
    for a, b in zip(samples, samples[1:]):
        clock = hms(b["t"])[:8]
        if (lo and clock < lo) or (hi and clock > hi):
            continue
        dt = b["t"] - a["t"]
        worst = max((ms for sent, ms in lat if a["t"] <= sent < b["t"]), default=0.0)
        rcpu = (b["used_cpu_sys"] + b["used_cpu_user"] - a["used_cpu_sys"] - a["used_cpu_user"])
        calls = b.get("fcalls", 0) - a.get("fcalls", 0)
        fc_ms = (b.get("fcall_us", 0) - a.get("fcall_us", 0)) / 1000
        cols = [hms(b["t"]), f"{worst:6.1f}", f"{100 * rcpu / dt:5.0f}", f"{calls:6d}",
                f"{fc_ms:5.0f}", f"{b.get('aof_buffer_length', 0) / 1024:8.0f}",
                f"{b.get('aof_current_size', 0) / 2**20:5.0f}",
                f"{b.get('aof_delayed_fsync', 0):3d}", f"{b.get('aof_rewrite_in_progress', 0):2d}"]
        for name in ("redis", "nousud"):
            if name in a and name in b:
                cols += [f"{b[name][0] - a[name][0]:5d}", f"{100 * (b[name][2] - a[name][2]) / dt:5.0f}"]
            else:
                cols += ["    -", "    -"]
        cols += [f"{b.get('Dirty', 0) / 1024:7.0f}", f"{b.get('Writeback', 0) / 1024:4.0f}"]
        print(" ".join(cols))


def main(argv):
    if len(argv) >= 3 and argv[0] == "--show":
        opts = dict(zip(argv[3::2], argv[4::2]))
        show(argv[1], argv[2], opts.get("--from"), opts.get("--to"))
    elif len(argv) == 2:
        poll(argv[0], argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
