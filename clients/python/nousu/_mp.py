"""Bounded msgpack decoding of what the daemon (or anyone on the wire) sends."""
import msgpack

from .errors import NousuError

# Acks, alerts and control replies are small; refuse anything huge before
# msgpack allocates it.
MAX_REPLY_BYTES = 4 * 1024 * 1024


def unpack_map(buf, what):
    """Decode one msgpack map (str keys as str); NousuError otherwise."""
    if len(buf) > MAX_REPLY_BYTES:
        raise NousuError("%s: %d bytes, more than %d" % (what, len(buf), MAX_REPLY_BYTES))
    try:
        obj = msgpack.unpackb(buf, raw=False, strict_map_key=False,
                              max_bin_len=MAX_REPLY_BYTES, max_str_len=MAX_REPLY_BYTES,
                              max_array_len=1 << 20, max_map_len=1 << 20, max_ext_len=0)
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise NousuError("%s: not msgpack: %s" % (what, e)) from None
    if not isinstance(obj, dict):
        raise NousuError("%s: not a map but %s" % (what, type(obj).__name__))
    return obj
