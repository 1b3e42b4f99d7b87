"""nousu -- a Python client for nousud (stdlib + pyzmq + msgpack).

    Producer     events -> ingest (PUSH) or ingest-ack (DEALER, acknowledged)
    Subscriber   live alerts; catch_up() / follow() from the Redis stream
    control      ping / creator / top / stats queries

The wire formats are SPEC §2-§7. redis-py is needed only for catch-up and
is imported only then.
"""
from .control import control, creator, ping, stats, top
from .errors import NousuError, NousuTimeout
from .producer import Ack, Producer
from .subscriber import Alert, Subscriber, catch_up, decode_alert, follow

__version__ = "0.1.0"

__all__ = ["Ack", "Alert", "NousuError", "NousuTimeout", "Producer", "Subscriber",
           "catch_up", "control", "creator", "decode_alert", "follow", "ping", "stats", "top"]
