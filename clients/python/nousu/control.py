"""Control queries (SPEC §7): one msgpack map in, one msgpack map out, over
a REQ socket to nousud's control endpoint."""
import msgpack
import zmq

from ._mp import unpack_map
from .errors import NousuError, NousuTimeout


def control(endpoint, request, timeout_ms=3000, *, context=None):
    """Send one request map and return the reply map, e.g.

        control("tcp://127.0.0.1:7713", {"op": "creator", "creator": "ig:alice"})

    The reply is returned as it is, including {"error": reason} answers
    (such as "unknown_creator"). No answer within timeout_ms raises
    NousuTimeout; a reply that is not a msgpack map raises NousuError.
    A fresh socket per call, so a lost reply never wedges the next one.
    """
    if not isinstance(request, dict):
        raise ValueError("a control request is a dict such as {'op': 'ping'}")
    ctx = context or zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    try:
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.MAXMSGSIZE, 16 * 1024 * 1024)
        s.connect(endpoint)
        s.send(msgpack.packb(request, use_bin_type=True))
        if not s.poll(timeout_ms):
            raise NousuTimeout("%s: no reply to %r within %d ms" %
                               (endpoint, request.get("op"), timeout_ms))
        return unpack_map(s.recv(), "control reply")
    except zmq.ZMQError as e:
        raise NousuError("%s: %s" % (endpoint, e)) from None
    finally:
        s.close(linger=0)


def ping(endpoint, timeout_ms=3000):
    """{"pong": True, "version": ...}"""
    return control(endpoint, {"op": "ping"}, timeout_ms)


def creator(endpoint, creator_id, timeout_ms=3000):
    """A creator's state, or {"error": "unknown_creator"}."""
    return control(endpoint, {"op": "creator", "creator": creator_id}, timeout_ms)


def top(endpoint, niche=None, n=10, timeout_ms=3000):
    """The creators currently rising (in one niche, or in all), best first."""
    req = {"op": "top", "n": n}
    if niche is not None:
        req["niche"] = niche
    return control(endpoint, req, timeout_ms)


def stats(endpoint, timeout_ms=3000):
    """The daemon's own counters."""
    return control(endpoint, {"op": "stats"}, timeout_ms)
