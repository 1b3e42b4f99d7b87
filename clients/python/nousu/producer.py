"""Events -> msgpack batches -> nousud's ingest (PUSH) or ingest-ack (DEALER)
endpoint, SPEC §3 and §4.

Fire and forget (PUSH): each batch is one frame holding a msgpack array of
event maps. Acknowledged (DEALER): each batch goes out as
[request_id, batch] and the producer waits for [request_id, ack]; without
an ack within timeout_ms it closes the socket, opens a new one and sends the
same request again (the "lazy pirate" pattern), at most `retries` times.
The daemon applies a request id once and answers a resend with the ack it
gave the first time, so a resend never counts twice.
"""
import os
import time
from collections.abc import Mapping

import msgpack
import zmq

from ._mp import unpack_map
from .errors import NousuError, NousuTimeout

MAX_BATCH_EVENTS = 10000           # SPEC §3
DEFAULT_MAX_BATCH_BYTES = 1 << 20  # the daemon's default frame limit
_HEADER_BYTES = 5                  # the largest msgpack array header
_MAX_ERRORS_KEPT = 1000            # in Producer.totals; the counts stay exact


class Ack:
    """The daemon's answer to one or more batches (SPEC §4).

    ok + dup + rejected is the number of events. Each entry of `errors` is a
    dict {"i": index in its batch (-1: the whole frame), "reason": str,
    "event": index among all events added to this producer, or None for a
    frame rejected whole}.
    """

    __slots__ = ("ok", "dup", "rejected", "errors", "batches")

    def __init__(self, ok=0, dup=0, rejected=0, errors=None, batches=0):
        self.ok, self.dup, self.rejected = ok, dup, rejected
        self.errors = list(errors or ())
        self.batches = batches

    @property
    def events(self):
        return self.ok + self.dup + self.rejected

    def _merge(self, other, max_errors=None):
        self.ok += other.ok
        self.dup += other.dup
        self.rejected += other.rejected
        self.batches += other.batches
        room = len(other.errors) if max_errors is None else max(0, max_errors - len(self.errors))
        self.errors.extend(other.errors[:room])

    def as_dict(self):
        return {"ok": self.ok, "dup": self.dup, "rejected": self.rejected,
                "errors": list(self.errors)}

    def __eq__(self, other):
        if not isinstance(other, Ack):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __repr__(self):
        return "Ack(ok=%d, dup=%d, rejected=%d, errors=%r)" % (
            self.ok, self.dup, self.rejected, self.errors)


def _decode_ack(buf, first, events):
    """The ack map -> Ack; NousuError when it is not one."""
    m = unpack_map(buf, "ack")
    counts = []
    for k in ("ok", "dup", "rejected"):
        v = m.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise NousuError("ack: %r is %r, not a count" % (k, v))
        counts.append(v)
    errors = []
    raw = m.get("errors")
    if raw is not None:
        if not isinstance(raw, list) or len(raw) > events + 1:
            raise NousuError("ack: errors is not a list of at most %d entries" % (events + 1))
        for e in raw:
            i = e.get("i") if isinstance(e, dict) else None
            reason = e.get("reason") if isinstance(e, dict) else None
            if isinstance(reason, bytes):
                reason = reason.decode("utf-8", "replace")
            if not isinstance(i, int) or isinstance(i, bool) or not isinstance(reason, str):
                raise NousuError("ack: bad error entry %r" % (e,))
            errors.append({"i": i, "reason": reason,
                           "event": first + i if 0 <= i < events else None})
    return Ack(*counts, errors=errors, batches=1)


class _Batch:
    """A sealed batch: the frame, its request id (ack mode), where its events
    start among all events added."""

    __slots__ = ("frame", "events", "first", "request_id", "sends")

    def __init__(self, frame, events, first):
        self.frame, self.events, self.first = frame, events, first
        self.request_id = os.urandom(16)
        self.sends = 0


class Producer:
    """Send events to nousud.

        with Producer("tcp://127.0.0.1:7710") as p:          # PUSH, ingest
            p.add({"creator": "ig:alice", "type": "like", "ts": now_ms})

        with Producer("tcp://127.0.0.1:7711", ack=True) as p: # DEALER, ingest-ack
            for e in events:
                p.add(e)
        print(p.totals)                                       # Ack(ok=..., ...)

    Events are dicts as in SPEC §3, sent as they are (the daemon judges them;
    strings go out as msgpack str, bytes as bin). add() buffers and sends a
    batch when it holds `batch_size` events or would grow past
    `max_batch_bytes`; flush() sends what is buffered.

    PUSH: a send blocks while ZeroMQ's queue is at its high-water mark (the
    daemon is not keeping up, or not there); with send_timeout_ms it raises
    NousuTimeout after that long instead and keeps the batch.

    ack=True: flush() waits for each batch's ack, resending the same request
    (same request id, same bytes) on a fresh socket after each timeout_ms
    without one, `retries` times; then it raises NousuTimeout and keeps the
    batch under its request id: the next flush() sends it again, and the
    daemon still counts it once. Acks are summed in `totals`, handed to
    `on_ack(ack)` if given, and returned by flush().

    Not thread-safe: use a producer from one thread at a time.
    """

    def __init__(self, endpoint, batch_size=1000, ack=False, timeout_ms=3000, retries=3,
                 *, max_batch_bytes=DEFAULT_MAX_BATCH_BYTES, send_timeout_ms=None,
                 sndhwm=100, linger_ms=2000, on_ack=None, context=None):
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError("batch_size must be 1..%d" % MAX_BATCH_EVENTS)
        if timeout_ms <= 0 or retries < 0:
            raise ValueError("timeout_ms must be > 0 and retries >= 0")
        if max_batch_bytes <= _HEADER_BYTES:
            raise ValueError("max_batch_bytes too small")
        self.endpoint = endpoint
        self.ack = bool(ack)
        self.batch_size = batch_size
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.max_batch_bytes = max_batch_bytes
        self.send_timeout_ms = send_timeout_ms
        self.sndhwm = sndhwm
        self.linger_ms = linger_ms
        self.on_ack = on_ack
        self._own_ctx = context is None
        self._ctx = zmq.Context() if context is None else context
        self._sock = None
        self._buf = []          # encoded events of the batch being gathered
        self._buf_bytes = 0
        self._sealed = []       # batches waiting to be sent (or acked), oldest first
        self._first = 0         # index of the next sealed batch's first event
        self.totals = Ack()     # ack mode: every ack received, summed
        self.events_added = 0
        self.events_sent = 0    # PUSH: queued in ZeroMQ; ack mode: acknowledged
        self.batches_sent = 0
        self.resends = 0
        self._open()

    # ------------------------------------------------------------ sockets

    def _open(self):
        s = self._ctx.socket(zmq.DEALER if self.ack else zmq.PUSH)
        try:
            s.setsockopt(zmq.SNDHWM, self.sndhwm)
            if self.ack:
                # Unacknowledged requests are resent, never lingered over; an
                # attempt whose send cannot even be queued counts as timed out.
                s.setsockopt(zmq.LINGER, 0)
                s.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
                s.setsockopt(zmq.MAXMSGSIZE, 4 * 1024 * 1024)
            else:
                s.setsockopt(zmq.LINGER, self.linger_ms)
                if self.send_timeout_ms is not None:
                    s.setsockopt(zmq.SNDTIMEO, self.send_timeout_ms)
            s.connect(self.endpoint)
        except zmq.ZMQError as e:
            s.close(linger=0)
            raise NousuError("%s: %s" % (self.endpoint, e)) from None
        self._sock = s

    def _reopen(self):
        # Lazy pirate: a DEALER that may hold a queued request for a dead
        # peer, or a late ack, is thrown away; the resend goes on a new one.
        self._sock.close(linger=0)
        self._sock = None
        self._open()

    # ------------------------------------------------------------- events

    def add(self, event):
        """Buffer one event (a dict, SPEC §3). Sends the batch once it is full.

        The event is always buffered: when sending a batch fails (NousuError,
        NousuTimeout) the events stay, and the next add() or flush() sends
        them again, in order, under the same request ids. Raises ValueError
        for something that is not a mapping or cannot fit in one frame.
        """
        if not isinstance(event, Mapping):
            raise ValueError("an event is a mapping, not %s" % type(event).__name__)
        try:
            enc = msgpack.packb(dict(event), use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            raise ValueError("event cannot be encoded as msgpack: %s" % e) from None
        if len(enc) > self.max_batch_bytes - _HEADER_BYTES:
            raise ValueError("event of %d bytes is larger than max_batch_bytes" % len(enc))
        if self._buf and self._buf_bytes + len(enc) > self.max_batch_bytes - _HEADER_BYTES:
            self._seal()
        self._buf.append(enc)
        self._buf_bytes += len(enc)
        self.events_added += 1
        if len(self._buf) >= self.batch_size:
            self._seal()
        if self._sealed:
            self._send_sealed()

    def flush(self):
        """Send everything buffered. Ack mode: returns the Ack summed over the
        batches this call sent (None when there was nothing to send); PUSH:
        returns None once ZeroMQ has queued the batches."""
        if self._buf:
            self._seal()
        return self._send_sealed()

    @property
    def buffered(self):
        """Events added but not yet sent (PUSH) or acknowledged (ack mode)."""
        return len(self._buf) + sum(b.events for b in self._sealed)

    def _seal(self):
        n = len(self._buf)
        frame = msgpack.Packer().pack_array_header(n) + b"".join(self._buf)
        self._sealed.append(_Batch(frame, n, self._first))
        self._first += n
        self._buf = []
        self._buf_bytes = 0

    def _send_sealed(self):
        if self._sock is None:
            raise NousuError("producer is closed")
        got = None
        while self._sealed:
            b = self._sealed[0]
            if self.ack:
                raw = self._request(b)
                # Acknowledged means committed, whatever the ack says.
                self._sealed.pop(0)
                self.events_sent += b.events
                self.batches_sent += 1
                try:
                    a = _decode_ack(raw, b.first, b.events)
                except NousuError as e:
                    msg = "%s: %s (the daemon committed the batch of %d events; it is not " \
                          "sent again)" % (self.endpoint, e, b.events)
                    raise NousuError(msg) from None
                self.totals._merge(a, _MAX_ERRORS_KEPT)
                if got is None:
                    got = Ack()
                got._merge(a)
                if self.on_ack is not None:
                    self.on_ack(a)
            else:
                try:
                    self._sock.send(b.frame)
                except zmq.Again:
                    msg = "%s: send queue full for %d ms (nousud not keeping up or not " \
                          "running); %d events kept" % (self.endpoint, self.send_timeout_ms,
                                                        self.buffered)
                    raise NousuTimeout(msg) from None
                except zmq.ZMQError as e:
                    raise NousuError("%s: %s" % (self.endpoint, e)) from None
                self._sealed.pop(0)
                self.events_sent += b.events
                self.batches_sent += 1
        return got

    # ---------------------------------------------------- acknowledged mode

    def _request(self, b):
        """Send b and wait for its ack (returned undecoded): lazy pirate,
        the same request id each time."""
        for _ in range(self.retries + 1):
            if b.sends:
                self.resends += 1
            b.sends += 1
            deadline = time.monotonic() + self.timeout_ms / 1000.0
            try:
                self._sock.send_multipart([b.request_id, b.frame])
            except zmq.Again:
                pass  # could not even be queued: a timed-out attempt
            except zmq.ZMQError as e:
                raise NousuError("%s: %s" % (self.endpoint, e)) from None
            else:
                raw = self._wait_ack(b, deadline)
                if raw is not None:
                    return raw
            self._reopen()
        n = self.retries + 1
        raise NousuTimeout("%s: no ack from nousud after %d attempt%s of %d ms; %d events kept "
                           "(the next flush resends them under the same request id)" %
                           (self.endpoint, n, "" if n == 1 else "s", self.timeout_ms,
                            self.buffered))

    def _wait_ack(self, b, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sock.poll(max(1, int(left * 1000))):
                if time.monotonic() >= deadline:
                    return None
                continue
            frames = self._sock.recv_multipart(zmq.NOBLOCK)
            if len(frames) == 2 and frames[0] == b.request_id:
                return frames[1]
            # a stale ack (for a request already answered) or junk: dropped

    # ----------------------------------------------------------- lifetime

    def close(self, linger_ms=None):
        """Close the socket; with its own context, wait at most linger_ms
        (default: the producer's linger_ms for PUSH, 0 in ack mode) for
        queued batches to leave. Events not flushed are discarded: flush()
        first (the context manager does)."""
        if linger_ms is None:
            linger_ms = 0 if self.ack else self.linger_ms
        if self._sock is not None:
            self._sock.close(linger=linger_ms)
            self._sock = None
        if self._own_ctx and self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.close()
        return False

    def __del__(self):
        try:
            if self._sock is not None:
                self._sock.close(linger=0)
        except Exception:
            pass
