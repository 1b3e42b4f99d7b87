#!/usr/bin/python3
"""Print nousud's alerts as JSON lines, optionally catching up first.

    subscribe.py [-e ENDPOINT] [-n COUNT] [-t TIMEOUT_MS] [TOPIC_PREFIX ...]
    subscribe.py --since SEQ [--redis HOST:PORT] [--prefix nousu:] ...

A topic prefix such as "rising." or "graduated.gaming" filters the alerts;
none means every alert. --since SEQ first prints every alert after SEQ from
the Redis stream, then goes on live, each alert printed once (no gap, no
duplicate). The Redis password, if any, comes from the environment variable
NOUSU_REDIS_PASSWORD, never from the command line.
"""
import argparse
import json
import os
import signal
import sys

try:
    import nousu
except ImportError:  # run from the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import nousu


def as_json(value):
    """What msgpack may carry and JSON may not: bytes as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value)


def redis_address(text):
    if text.startswith("/"):
        return text, 0
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT or /path/to/socket")
    return host, int(port)


def main():
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # like Ctrl-C
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-e", "--endpoint", default="tcp://127.0.0.1:7712",
                    help="nousud alerts endpoint (default %(default)s)")
    ap.add_argument("-n", "--count", type=int, default=0,
                    help="stop after COUNT alerts (default: no limit)")
    ap.add_argument("-t", "--timeout-ms", type=int, default=None,
                    help="stop after this long without an alert (default: never)")
    ap.add_argument("-s", "--since", type=int, default=None, metavar="SEQ",
                    help="first print the alerts after SEQ from the Redis stream")
    ap.add_argument("-r", "--redis", type=redis_address, default=("127.0.0.1", 6379),
                    metavar="HOST:PORT", help="Redis for --since (default 127.0.0.1:6379)")
    ap.add_argument("-p", "--prefix", default="nousu:", help="Redis key prefix")
    ap.add_argument("topics", nargs="*", help="topic prefixes (default: all)")
    args = ap.parse_args()

    printed = 0
    try:
        with nousu.Subscriber(args.endpoint, topics=args.topics or ("",)) as sub:
            if args.since is not None:
                alerts = sub.follow(args.since, args.redis[0], args.redis[1], args.prefix,
                                    timeout_ms=args.timeout_ms)
            else:
                alerts = iter(lambda: sub.recv(args.timeout_ms), None)
            try:
                for alert in alerts:
                    print(json.dumps(alert, default=as_json, separators=(",", ":")), flush=True)
                    printed += 1
                    if args.count and printed >= args.count:
                        break
            finally:
                if hasattr(alerts, "close"):
                    alerts.close()  # follow(): its Redis connection
    except KeyboardInterrupt:
        pass
    except nousu.NousuError as e:
        print("subscribe: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
