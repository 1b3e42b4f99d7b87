"""ZMQ_MAXMSGSIZE on every socket the daemon binds, the PUB included (a
subscription is an inbound message too): a message over transport_max_bytes
disconnects its sender before the daemon ever sees it, and the daemon keeps
serving everyone else."""
import msgpack
import zmq

from harness import Case, ev, now_ms, pack, wait_for

LIMIT = 65536
BIG = b"\x92" + b"\xc4" + b"\x00" * (LIMIT * 2)  # anything over the limit


class MaxMsgSize(Case):
    daemon_args = ["--transport_max_bytes=%d" % LIMIT, "--max_frame_bytes=4096"]

    def sock(self, kind, ep):
        s = self.d.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.d.ep[ep])
        self.d.sockets.append(s)
        return s

    def test_oversize_messages_never_reach_the_daemon(self):
        self.sock(zmq.PUSH, "ingest").send(BIG)
        self.sock(zmq.DEALER, "ingest_ack").send_multipart([b"rid", BIG])
        req = self.sock(zmq.REQ, "control")
        req.send(BIG)
        sub = self.sock(zmq.SUB, "alerts")
        sub.setsockopt(zmq.SUBSCRIBE, b"x" * (LIMIT * 2))
        # a frame under the transport cap but over max_frame_bytes is read
        # and rejected as oversize: the contrast shows where each limit acts
        self.sock(zmq.PUSH, "ingest").send(pack([ev("ig:o", "like", now_ms(), post="p" * 100)] * 60))
        good = self.d.push()
        good.send(pack(ev("ig:ok", "like", now_ms() - 10)))
        st = self.d.wait_accepted(1)
        st = wait_for(lambda: self.d.stats()["rejected"].get("oversize") == 1 and self.d.stats())
        self.assertEqual(st["frames"], 2)  # the good frame and the oversize one
        self.assertEqual(st["requests"], 0)
        self.assertFalse(req.poll(300))  # no answer: the request never arrived
        self.assertTrue(self.d.try_ping())
        # a well-behaved subscriber still gets alerts after the huge subscription
        ok_sub = self.d.sub(b"graduated.")
        t = now_ms() - 1000
        got = False
        for i in range(50):  # a new graduate each time, until one reaches us
            good.send(pack([ev("ig:g%d" % i, "like", t - 7200000, followers=9000),
                            ev("ig:g%d" % i, "like", t, followers=11000)]))
            got = ok_sub.poll(100)
            if got:
                break
        self.assertTrue(got)
        topic, body = ok_sub.recv_multipart()
        self.assertEqual(topic, b"graduated._")
        self.assertTrue(msgpack.unpackb(body)["creator"].startswith("ig:g"))
