"""Alerts: live from nousud's PUB socket, and the ones missed from the Redis
stream <prefix>alerts (SPEC §6).

Every alert is appended to the stream, with entry id "<seq>-0", *before* it
is published. So a subscriber that was away subscribes first, reads the
stream after the last seq it saw, then goes on live, skipping live alerts
whose seq it has already had: no gap, no duplicate (Subscriber.follow()).
"""
import logging
import os
import time

import msgpack
import zmq
from zmq.utils.monitor import recv_monitor_message

from .errors import NousuError

log = logging.getLogger("nousu")

MAX_TOPIC_BYTES = 255
DEFAULT_MAX_ALERT_BYTES = 256 * 1024


class Alert(dict):
    """One alert: the decoded msgpack map (SPEC §6: seq, kind, creator, niche,
    ts, z, velocity, reasons, ...), plus where it came from:

    topic   "<kind>.<niche>" as published (or as stored in the stream)
    source  "live" (the PUB socket) or "stream" (Redis catch-up)
    """

    __slots__ = ("topic", "source")

    def __init__(self, fields, topic, source):
        super().__init__(fields)
        self.topic = topic
        self.source = source

    @property
    def seq(self):
        return self["seq"]

    def __repr__(self):
        return "Alert(%r, topic=%r, source=%r)" % (dict(self), self.topic, self.source)


def _topic_text(topic):
    return topic.decode("utf-8", "replace") if isinstance(topic, bytes) else str(topic)


def decode_alert(body, topic, source="live", max_bytes=DEFAULT_MAX_ALERT_BYTES):
    """msgpack alert map -> Alert, or None when it is not a valid alert (not
    a map; seq, kind, creator or ts missing or of the wrong type). Bounded:
    nothing larger than max_bytes is unpacked."""
    if len(body) > max_bytes:
        return None
    try:
        m = msgpack.unpackb(body, raw=False, strict_map_key=False, max_bin_len=max_bytes,
                            max_str_len=max_bytes, max_array_len=1 << 12, max_map_len=1 << 12,
                            max_ext_len=0)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not isinstance(m, dict):
        return None
    seq, ts = m.get("seq"), m.get("ts")
    if (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or
            not isinstance(ts, int) or isinstance(ts, bool) or
            not isinstance(m.get("kind"), str) or not isinstance(m.get("creator"), str)):
        return None
    if topic is None:  # rebuild it as the daemon does
        topic = "%s.%s" % (m["kind"], m.get("niche") or "_")
    return Alert(m, _topic_text(topic), source)


# ------------------------------------------------------------------ catch-up

def _redis_connect(host, port, password, username, db, timeout_ms):
    try:
        import redis  # optional: only catch-up needs it
    except ImportError:
        raise NousuError("catching up from Redis needs redis-py "
                         "(Debian: python3-redis; pip: redis)") from None
    if password is None:
        password = os.environ.get("NOUSU_REDIS_PASSWORD") or None
    if username is None:
        username = os.environ.get("NOUSU_REDIS_USER") or None
    t = timeout_ms / 1000.0
    kw = dict(db=db, username=username, password=password, socket_timeout=t,
              decode_responses=False)
    if str(host).startswith("/"):
        client = redis.Redis(unix_socket_path=host, **kw)
    else:
        client = redis.Redis(host=host, port=port, socket_connect_timeout=t, **kw)
    return client, redis.exceptions.RedisError


class _Stream:
    """Pages of XRANGE <prefix>alerts after a seq."""

    def __init__(self, host, port, prefix, password, username, db, timeout_ms, page_size):
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.key = prefix + "alerts"
        self.page = page_size
        self.where = "Redis %s%s" % (host, "" if str(host).startswith("/") else ":%s" % port)
        self.client, self.error = _redis_connect(host, port, password, username, db, timeout_ms)
        self.malformed = 0

    def entries(self, after_seq, until_seq=None):
        """(seq, Alert or None) for each entry with seq > after_seq, oldest
        first, to the end of the stream (or up to, not including,
        until_seq); None for an entry that is not a valid alert."""
        start = "(%d-0" % after_seq
        while True:
            try:
                page = self.client.xrange(self.key, start, "+", count=self.page)
            except self.error as e:
                raise NousuError("%s: XRANGE %s: %s" % (self.where, self.key, e)) from None
            for sid, fields in page:
                sid = sid.decode() if isinstance(sid, bytes) else str(sid)
                start = "(" + sid
                try:
                    seq = int(sid.split("-", 1)[0])
                except ValueError:
                    raise NousuError("%s: %s: entry id %r is not <seq>-0" %
                                     (self.where, self.key, sid)) from None
                if until_seq is not None and seq >= until_seq:
                    return
                msg, topic = fields.get(b"msg"), fields.get(b"topic")
                alert = decode_alert(msg, topic, "stream") if msg is not None else None
                if alert is None:
                    self.malformed += 1
                    log.warning("%s: stream entry %s is not a valid alert, skipped", self.key, sid)
                yield seq, alert
            if len(page) < self.page:
                return

    def close(self):
        try:
            self.client.close()
        except Exception:
            pass


def catch_up(redis_host="127.0.0.1", redis_port=6379, since_seq=0, prefix="nousu:",
             password=None, *, username=None, db=0, timeout_ms=5000, page_size=1000,
             topics=None):
    """Yield the alerts of the stream <prefix>alerts whose seq is greater
    than since_seq, oldest first, reading pages of page_size entries
    (XRANGE "(<seq>-0" + COUNT n) to the end of the stream, including alerts
    added while reading. topics: prefixes to keep (None: all). Entries that
    are not valid alerts are skipped (logged on the "nousu" logger).

    The password (and ACL user) default to the environment variables
    NOUSU_REDIS_PASSWORD (and NOUSU_REDIS_USER), so they need not appear on
    a command line. redis_host starting with "/" is a unix socket. Redis
    errors raise NousuError. Needs redis-py, imported only here.
    """
    wanted = _prefixes(topics) if topics is not None else None
    s = _Stream(redis_host, redis_port, prefix, password, username, db, timeout_ms, page_size)
    try:
        for _, alert in s.entries(since_seq):
            if alert is not None and (wanted is None or _match(wanted, alert.topic)):
                yield alert
    finally:
        s.close()


def _prefixes(topics):
    if isinstance(topics, (str, bytes)):
        topics = (topics,)
    return [t.encode() if isinstance(t, str) else bytes(t) for t in topics]


def _match(prefixes, topic):
    t = topic.encode("utf-8", "replace") if isinstance(topic, str) else topic
    return any(t.startswith(p) for p in prefixes)


# --------------------------------------------------------------- subscriber

class Subscriber:
    """SUB-connect to nousud's alerts endpoint.

        with Subscriber("tcp://127.0.0.1:7712", topics=("rising.",)) as s:
            for alert in s:                  # Alert: a dict, plus .topic, .source
                print(alert["creator"], alert["z"])

    topics are topic prefixes ("" every alert, "rising." only rising,
    "rising.knitting" one niche). Alerts published before the connection is
    made are not received live: catch_up() / follow() read them from Redis.
    Messages that are not valid alerts are skipped and counted in
    `malformed`. Not thread-safe.
    """

    def __init__(self, endpoint, topics=("",), *, rcvhwm=100000,
                 max_alert_bytes=DEFAULT_MAX_ALERT_BYTES, context=None):
        self.endpoint = endpoint
        self.max_alert_bytes = max_alert_bytes
        self.malformed = 0     # messages that were not alerts
        self.skipped = 0       # follow(): live alerts already yielded
        self._topics = []
        self._own_ctx = context is None
        self._ctx = zmq.Context() if context is None else context
        self._sock = self._ctx.socket(zmq.SUB)
        self._mon = None
        try:
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.setsockopt(zmq.RCVHWM, rcvhwm)
            self._sock.setsockopt(zmq.MAXMSGSIZE, max_alert_bytes + MAX_TOPIC_BYTES + 64)
            for t in _prefixes(topics):
                self.subscribe(t)
            # Watch the handshake from the start, for wait_connected().
            self._mon = self._sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
            self._sock.connect(endpoint)
        except zmq.ZMQError as e:
            self.close()
            raise NousuError("%s: %s" % (endpoint, e)) from None
        self._connected = False

    def subscribe(self, prefix):
        """Add a topic prefix (str or bytes)."""
        p = prefix.encode() if isinstance(prefix, str) else bytes(prefix)
        self._sock.setsockopt(zmq.SUBSCRIBE, p)
        self._topics.append(p)

    def wants(self, topic):
        """Whether a topic matches one of the subscribed prefixes."""
        return _match(self._topics, topic)

    @property
    def socket(self):
        """The ZeroMQ SUB socket, for your own zmq.Poller."""
        return self._sock

    def wait_connected(self, timeout_ms=5000):
        """Wait until the connection to the daemon is established (ZeroMQ
        handshake done; the subscription follows at once). True, or False
        after timeout_ms. Useful before asking for alerts to be produced."""
        if self._connected:
            return True
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0 or not self._mon.poll(left):
                return False
            ev = recv_monitor_message(self._mon)
            if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._connected = True
                self._stop_monitor()
                return True

    def _stop_monitor(self):
        if self._mon is not None:
            try:
                self._sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self._mon.close(linger=0)
            self._mon = None

    def recv(self, timeout_ms=None):
        """The next alert, or None when none came within timeout_ms
        (None: wait for ever; 0: only what is already queued)."""
        if self._sock is None:
            raise NousuError("subscriber is closed")
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        while True:
            if deadline is None:
                wait = None
            else:
                wait = max(0, int((deadline - time.monotonic()) * 1000))
            if not self._sock.poll(wait):
                if deadline is None or time.monotonic() >= deadline:
                    return None
                continue
            frames = self._sock.recv_multipart(zmq.NOBLOCK)
            alert = None
            if len(frames) == 2 and len(frames[0]) <= MAX_TOPIC_BYTES:
                alert = decode_alert(frames[1], frames[0], "live", self.max_alert_bytes)
            if alert is not None:
                return alert
            self.malformed += 1
            log.warning("%s: a message that is not an alert (%d frames), skipped",
                        self.endpoint, len(frames))

    def __iter__(self):
        while True:
            yield self.recv(None)

    def catch_up(self, redis_host="127.0.0.1", redis_port=6379, since_seq=0, prefix="nousu:",
                 password=None, **kw):
        """catch_up() restricted to this subscriber's topic prefixes."""
        return catch_up(redis_host, redis_port, since_seq, prefix, password,
                        topics=self._topics, **kw)

    def follow(self, since_seq=0, redis_host="127.0.0.1", redis_port=6379, prefix="nousu:",
               password=None, *, timeout_ms=None, sync_poll_ms=1000, username=None, db=0,
               redis_timeout_ms=5000, page_size=1000):
        """Every alert with seq > since_seq, each once, in seq order: first
        the ones already in the stream, then live ones. Ends after timeout_ms
        without an alert (None: never).

        The subscription was made when the subscriber was created, so alerts
        published during the catch-up wait in the SUB queue; the ones the
        catch-up already yielded are skipped by seq (counted in `skipped`).
        ZeroMQ subscriptions take effect asynchronously, so until the first
        live message proves the subscription is in place, the stream is read
        again every sync_poll_ms, and at that first live message the stream
        is read up to its seq: an alert published before the subscription
        took effect is still yielded, from the stream. Redis errors raise
        NousuError, except during those periodic reads, where they are
        logged and retried.
        """
        stream = _Stream(redis_host, redis_port, prefix, password, username, db,
                         redis_timeout_ms, page_size)
        pos = since_seq          # the newest seq delivered or passed over
        try:
            for seq, alert in stream.entries(pos):
                pos = max(pos, seq)
                if alert is not None and self.wants(alert.topic):
                    yield alert
            synced = False
            idle_from = time.monotonic()
            while True:
                wait = None
                if timeout_ms is not None:
                    wait = max(0, int((idle_from + timeout_ms / 1000.0 - time.monotonic()) * 1000))
                if not synced:
                    wait = sync_poll_ms if wait is None else min(wait, sync_poll_ms)
                live = self.recv(wait)
                if live is None:
                    if (timeout_ms is not None and
                            time.monotonic() >= idle_from + timeout_ms / 1000.0):
                        return
                    if not synced:
                        try:
                            found = list(stream.entries(pos))
                        except NousuError as e:
                            log.warning("%s (retrying in %d ms)", e, sync_poll_ms)
                            continue
                        for seq, alert in found:
                            pos = max(pos, seq)
                            if alert is not None and self.wants(alert.topic):
                                yield alert
                                idle_from = time.monotonic()
                    continue
                if not synced:
                    # The subscription is in place: every alert from now on
                    # comes live. Close the window behind it from the stream.
                    synced = True
                    for seq, alert in stream.entries(pos, until_seq=live.seq):
                        pos = max(pos, seq)
                        if alert is not None and self.wants(alert.topic):
                            yield alert
                            idle_from = time.monotonic()
                if live.seq <= pos:
                    self.skipped += 1
                    continue
                pos = live.seq
                yield live
                idle_from = time.monotonic()
        finally:
            stream.close()

    def close(self):
        self._stop_monitor()
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._own_ctx and self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def follow(endpoint, since_seq=0, topics=("",), redis_host="127.0.0.1", redis_port=6379,
           prefix="nousu:", password=None, **kw):
    """Subscribe to endpoint, then Subscriber.follow(): every alert after
    since_seq, from the stream and then live, each once."""
    sub = Subscriber(endpoint, topics)
    try:
        yield from sub.follow(since_seq, redis_host, redis_port, prefix, password, **kw)
    finally:
        sub.close()
