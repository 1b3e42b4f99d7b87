#!/usr/bin/python3
"""Send engagement events to nousud, from JSON lines or generated.

    produce.py [-e ENDPOINT] [--ack] [--batch-size N] [FILE ...]     # JSON lines
    produce.py [-e ENDPOINT] [--ack] --generate 100 --creator ig:alice

Each input line is one event object ({"creator": ..., "type": ..., "ts": ...},
SPEC §3) or an array of them; "-" or no FILE reads stdin. Values go out as
they are: the daemon judges them. With --ack every batch waits for the
daemon's acknowledgement and every rejected event is reported as
FILE:LINE: reason. Exit status: 0 all sent (and accepted), 1 some lines were
not JSON or some events were rejected, 2 the daemon did not answer.
"""
import argparse
import json
import os
import sys
import time

try:
    import nousu
except ImportError:  # run from the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import nousu


def read_events(files, problems):
    """(event, "FILE:LINE") for every event of the input; a line that is not
    JSON is reported and counted in problems."""
    for name in files or ["-"]:
        f = sys.stdin if name == "-" else open(name, encoding="utf-8")
        label = "stdin" if name == "-" else name
        with f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as e:
                    print("%s:%d: not JSON: %s" % (label, lineno, e), file=sys.stderr)
                    problems.append(lineno)
                    continue
                for k, ev in enumerate(obj if isinstance(obj, list) else [obj]):
                    where = "%s:%d" % (label, lineno) + ("/%d" % k if isinstance(obj, list) else "")
                    yield ev, where


def generate(n, creator, type_):
    now = int(time.time() * 1000)
    run = os.urandom(4).hex()
    for i in range(n):
        ev = {"creator": creator, "type": type_, "ts": now - (n - i),
              "id": "%s:%s:%d" % (creator, run, i), "actor": "u%d" % (i % 97)}
        yield ev, "generated:%d" % i


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-e", "--endpoint",
                    help="nousud ingest endpoint (default tcp://127.0.0.1:7710, "
                         "with --ack tcp://127.0.0.1:7711)")
    ap.add_argument("-a", "--ack", action="store_true",
                    help="acknowledged ingest: wait for each batch's ack, resend on timeout")
    ap.add_argument("-b", "--batch-size", type=int, default=1000, help="events per message")
    ap.add_argument("--timeout-ms", type=int, default=3000, help="--ack: wait per attempt")
    ap.add_argument("--retries", type=int, default=3, help="--ack: resends per batch")
    ap.add_argument("--generate", type=int, metavar="N",
                    help="send N generated events instead of reading JSON lines")
    ap.add_argument("--creator", default="py:example", help="--generate: the creator")
    ap.add_argument("--type", default="like", help="--generate: the event type")
    ap.add_argument("files", nargs="*", metavar="FILE", help="JSON lines ('-': stdin)")
    args = ap.parse_args()
    endpoint = args.endpoint or ("tcp://127.0.0.1:7711" if args.ack else "tcp://127.0.0.1:7710")

    problems = []
    if args.generate is not None:
        source = generate(args.generate, args.creator, args.type)
    else:
        source = read_events(args.files, problems)
    where = []  # event index -> input position, to report rejections
    try:
        with nousu.Producer(endpoint, batch_size=args.batch_size, ack=args.ack,
                            timeout_ms=args.timeout_ms, retries=args.retries) as p:
            for ev, pos in source:
                if not isinstance(ev, dict):
                    print("%s: not an object" % pos, file=sys.stderr)
                    problems.append(pos)
                    continue
                if args.ack:
                    where.append(pos)
                p.add(ev)
    except nousu.NousuError as e:
        print("produce: %s" % e, file=sys.stderr)
        return 2
    status = 1 if problems else 0
    if args.ack:
        t = p.totals
        for err in t.errors:
            pos = where[err["event"]] if err["event"] is not None else "batch"
            print("%s: %s" % (pos, err["reason"]), file=sys.stderr)
        print("sent %d events in %d batches: ok %d, dup %d, rejected %d" %
              (p.events_sent, p.batches_sent, t.ok, t.dup, t.rejected), file=sys.stderr)
        if t.rejected:
            status = 1
    else:
        print("queued %d events in %d batches" % (p.events_sent, p.batches_sent),
              file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
