#!/usr/bin/python3
"""Print nousud's alerts (SPEC §6) as they are published.

    /usr/bin/python3 subscribe.py [--endpoint tcp://127.0.0.1:7712] [TOPIC_PREFIX ...]

An alert is two ZeroMQ frames: the topic "<kind>.<niche>" and a msgpack map.
A topic prefix such as "rising." or "graduated.gaming" filters them; none
means every alert. Needs the Debian packages python3-zmq and python3-msgpack.
"""
import argparse
import json
import signal
import sys

import msgpack
import zmq


def as_json(value):
    """JSON for what msgpack may carry and JSON may not: bytes as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value)


def main():
    # SIGTERM ends the loop like Ctrl-C does, so the socket is closed cleanly.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", default="tcp://127.0.0.1:7712")
    ap.add_argument("topics", nargs="*", help="topic prefixes (default: all)")
    args = ap.parse_args()

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    for t in args.topics or [""]:
        sub.setsockopt(zmq.SUBSCRIBE, t.encode())
    sub.connect(args.endpoint)

    try:
        while True:
            frames = sub.recv_multipart()
            if len(frames) != 2:
                print("malformed message: %d frames" % len(frames), file=sys.stderr)
                continue
            topic, body = frames
            try:
                # Bounded unpacking: an alert is small, refuse anything huge.
                alert = msgpack.unpackb(body, raw=False, max_bin_len=1 << 16,
                                        max_str_len=1 << 16, max_array_len=1 << 10,
                                        max_map_len=1 << 10)
            except (ValueError, msgpack.UnpackException) as e:
                print("malformed alert on %r: %s" % (topic, e), file=sys.stderr)
                continue
            if not isinstance(alert, dict):
                print("malformed alert on %r: not a map" % topic, file=sys.stderr)
                continue
            print("%s %s" % (topic.decode(errors="replace"),
                             json.dumps(alert, default=as_json, separators=(",", ":"))),
                  flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
        ctx.term()


if __name__ == "__main__":
    main()
