"""world.py -- a small deterministic world of creators, in event time, with
planted roles: the end-to-end tests play it through the real daemon and
check that each role gets exactly the alerts it should.

Every creator emits events in event-time order; the world's events are
merged by ts so the stream is roughly ordered as producers would send it.
"""
import random

HOUR = 3600 * 1000
DAY = 24 * HOUR

# creator -> expected alert kinds
EXPECTED = {
    "w:riser": {"rising"},        # engagement 10x its baseline, broad audience
    "w:burst": {"suspicious"},    # volume from 5 accounts
    "w:jump": {"suspicious"},     # +25% followers, flat engagement
    "w:grad": {"graduated"},      # crosses 10,000 followers
    "w:steady": set(),            # steady micro creator
    "w:macro": set(),             # macro tier, huge spike
    "w:nano": set(),              # nano tier spike
    "w:unknown": set(),           # no follower count ever
}

NICHE = {"w:riser": "knitting", "w:burst": "fitness", "w:jump": "fitness",
         "w:grad": "gaming", "w:steady": "cooking", "w:macro": "travel",
         "w:nano": "cooking", "w:unknown": "cooking"}


class Gen:
    def __init__(self, end_ms, seed=7):
        self.end = end_ms
        self.start = end_ms - 10 * DAY
        self.rng = random.Random(seed)
        self.events = []
        self.seq = 0

    def add(self, creator, type_, ts, actor=None, n=1, followers=None):
        self.seq += 1
        e = {"creator": creator, "type": type_, "ts": int(ts), "id": "%s#%d" % (creator, self.seq)}
        if actor is not None:
            e["actor"] = actor
        if n != 1:
            e["n"] = n
        if followers is not None:
            e["followers"] = followers
        if self.seq % 7 == 0 or followers is not None:
            e["niche"] = NICHE[creator]
        self.events.append(e)

    def daily(self, creator, days, per_day, followers, actors=200, with_actor=True,
              types=(("like", 1), ("comment", 3)), n=1):
        """Roughly per_day weighted engagement per day, spread over the day."""
        rng = self.rng
        for d in days:
            e = 0
            while e < per_day:
                t, w = rng.choice(types)
                ts = self.start + d * DAY + rng.random() * DAY
                actor = ("%s-fan%d" % (creator, rng.randrange(actors))) if with_actor else None
                fol = followers(ts) if callable(followers) else followers
                self.add(creator, t, ts, actor, n=n,
                         followers=fol if rng.random() < 0.2 else None)
                e += w * n
            ts = self.start + d * DAY + rng.random() * DAY
            self.add(creator, "view", ts, n=50,
                     followers=followers(ts) if callable(followers) else followers)

    def spike(self, creator, t0, t1, total, actors, followers, types, n=1):
        rng = self.rng
        e = 0
        while e < total:
            t, w = rng.choice(types)
            ts = t0 + rng.random() * (t1 - t0)
            self.add(creator, t, ts, actors(rng), n=n,
                     followers=followers if rng.random() < 0.1 else None)
            e += w * n


def build(end_ms, seed=7):
    g = Gen(end_ms, seed)
    last = g.end - 20 * HOUR
    everyday = range(0, 10)
    # the riser: ~60/day for 10 days, then +600 from 500 new people in the last 20 h
    g.daily("w:riser", everyday, 60, 3000)
    g.spike("w:riser", last, g.end, 600, lambda r: "new%d" % r.randrange(500), 3050,
            (("like", 1), ("comment", 3), ("save", 4), ("share", 4)))
    # the burst: steady ~80/day without actors, then 1,000 from 5 accounts
    g.daily("w:burst", everyday, 80, 4000, with_actor=False)
    g.spike("w:burst", last, g.end, 1000, lambda r: "bot%d" % r.randrange(5), 4000,
            (("comment", 3), ("share", 4)))
    # the follower jump: 2,000 followers for 9 days, 2,500 on the last day
    g.daily("w:jump", range(0, 9), 40, 2000)
    g.daily("w:jump", [9], 40, lambda ts: 2000 + int(500 * (ts - (g.start + 9 * DAY)) / DAY))
    g.add("w:jump", "follow", g.end - 1000, n=500, followers=2500)
    # the graduate: 9,600 -> 10,400 followers over 10 days, modest engagement
    g.daily("w:grad", everyday, 60,
            lambda ts: 9600 + int(800 * (ts - g.start) / (10 * DAY)))
    g.daily("w:steady", everyday, 150, 5000)
    g.daily("w:macro", range(0, 9), 20000, 500000, n=100)
    g.spike("w:macro", last, g.end, 200000, lambda r: "m%d" % r.randrange(100000), 500000,
            (("like", 1),), n=500)
    g.daily("w:nano", everyday, 5, 300)
    g.spike("w:nano", last, g.end, 300, lambda r: "n%d" % r.randrange(300), 300, (("like", 1),))
    g.daily("w:unknown", everyday, 20, None)
    g.spike("w:unknown", last, g.end, 500, lambda r: "u%d" % r.randrange(500), None,
            (("like", 1),))
    g.events.sort(key=lambda e: e["ts"])
    return g.events
