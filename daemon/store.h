/* store.h -- all state lives in Redis; this is the only module that talks to
 * it (the only includer of hiredis.h).
 *
 * One Redis round trip commits a whole loop iteration: the dead-letter
 * entries known so far and one FCALL nousu_commit carrying every unit read
 * (daemon/nousu.lua). A second, rarer round trip carries what detection
 * decided: alerts (cooldown + seq + stream append, atomically), leaderboard
 * updates, late dead-letter entries. Calls block for at most the configured
 * timeout; on any I/O error the connection is dropped and the caller retries
 * after store_connect() succeeds again. */
#ifndef NOUSU_STORE_H
#define NOUSU_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "detect.h"
#include "statecache.h"

typedef struct store store;

typedef struct store_opts {
    const char *host;
    int port;
    int db;
    const char *user;     /* "" or NULL: none */
    const char *password; /* "" or NULL: none; never logged */
    int timeout_ms;
    const char *prefix;
    size_t deadletter_maxlen;
    size_t deadletter_raw_max;
    size_t deadletter_queue_max; /* entries held while Redis is away */
    size_t dedup_filter_bytes;   /* the ids sent, for the Function (idfilter.h); 0 none */
    bool stash;                  /* hints through NOUSU.STASH when Redis has it */
} store_opts;

enum { COMMIT_HINTS_OFF, COMMIT_HINTS_ON, COMMIT_HINTS_VERIFY };

/* Everything nousu_commit needs besides the batch. */
typedef struct commit_params {
    int64_t wall_ms;
    int64_t bucket_ms, recent, hist;
    int64_t lateness_ms, horizon_ms, request_ttl_s, ttl_s;
    int64_t micro_max;
    int64_t dedup_buckets, dedup_set_ids;
    int hints; /* COMMIT_HINTS_*: the daemon computes hot runs' states */
    int64_t weight[EV__COUNT];
    /* the rules' numbers, for the Function to know where a rule may start
     * to hold (see Creator:watch in nousu.lua); detect.c decides */
    detect_params det;
    int64_t cooldown_ms;
    int64_t max_checkpoints; /* per creator per commit */
} commit_params;

typedef struct unit_result {
    bool replayed; /* request already committed: ack is the first answer */
    uint32_t ok, dup;
    uint32_t *too_old; /* item indexes within the unit */
    uint32_t n_too_old;
    char *ack; /* msgpack ack for acknowledged units */
    size_t ack_len;
} unit_result;

typedef struct creator_summary {
    char *creator;
    size_t creator_len;
    char *niche;       /* NULL: unknown */
    char *board_niche; /* NULL: not on a leaderboard */
    creator_window w;  /* unique_engagers -1, days_hist 0: the caller fills them */
    int64_t cooldown[ALERT__COUNT]; /* ts of the last alert of each kind, 0 none */
    char last_alert_kind[16];       /* "" none */
    int64_t last_alert_ts;
} creator_summary;

typedef struct commit_result {
    unit_result *units; /* one per batch unit, same order */
    size_t n_units;
    creator_summary *creators; /* after the commit: creators whose rules were in
                                  * play, or on a leaderboard */
    size_t n_creators;
    /* states right after the events where a rule may have started to hold,
     * with unique_engagers filled, in event order per creator */
    creator_summary *checkpoints;
    size_t n_checkpoints;
    uint32_t hints_sent, hints_taken; /* runs the daemon computed; taken as is */
    bool dedup_filtered;       /* only the ids the filter may hold were looked up */
    size_t dedup_filter_bytes; /* the filter's, after the commit was sent */
} commit_result;

/* Frees the arrays; r may be reused. */
void commit_result_clear(commit_result *r);

typedef struct alert_request {
    const char *creator;
    alert_kind kind;
    int64_t ts;
    int64_t cooldown_ms;
    int64_t grad_base; /* graduated: the crossing it is based on; else 0 */
    const char *topic;
    const char *head; /* the message up to the seq value */
    size_t head_len;
    const char *tail; /* after it */
    size_t tail_len;
    /* filled by store_post: */
    uint64_t seq; /* 0: a cooldown held (another daemon alerted) */
    char *msg;    /* owned by the caller after the call (free()) */
    size_t msg_len;
} alert_request;

typedef struct board_update {
    const char *creator;
    const char *niche; /* NULL: unknown */
    bool add;          /* add/update with z; false: drop */
    double z, velocity;
} board_update;

typedef struct top_entry {
    char *creator;
    char *niche;
    int64_t followers;
    double z, velocity;
} top_entry;

store *store_new(const store_opts *o);
void store_destroy(store **s);

/* Connect, authenticate, select the db and load the Function library.
 * Returns 0 or -errno; the reason is logged. */
int store_connect(store *s);
bool store_connected(const store *s);
/* Close the connection (the next store_connect opens a new one). */
void store_disconnect(store *s);
/* Redis's set-max-intset-entries, read once per connection (CONFIG GET);
 * 0 when the user may not read it or there is no connection. */
int64_t store_intset_max(store *s);

/* Queue a dead-letter entry (SPEC §3); it goes out with the next round trip.
 * raw is copied (cut to deadletter_raw_max). Returns 0, or -ENOBUFS when the
 * queue is full (the entry is shed and must be counted by the caller). */
int store_deadletter(store *s, const char *reason, batch_source src, int64_t received_ms,
                     const void *raw, size_t raw_len);

/* A commit in two halves, so that the next one can be sent while Redis runs
 * this one (committer.h). Commits are answered in the order sent.
 *
 * store_commit_send: send the commit of every unit of b, applied atomically,
 * without waiting. commit_id names the batch: a retry with the same id after
 * a lost reply gets the first reply and applies nothing twice. after: the id
 * of the commit sent just before and not answered yet, or NULL; if that one
 * is not applied, this one is not either. events_form: the event-by-event
 * form, which answers requests committed before. Hints come from cache, and
 * what they make goes to it (statecache.h); cache may be NULL. b must stay
 * untouched until the reply is read. 0, -EBUSY (too many sent), -ENOMEM or
 * -EIO (connection dropped: the commits sent are lost). */
int store_commit_send(store *s, const batch *b, const commit_params *p, const char *commit_id,
                      const char *after, bool events_form, state_cache *cache);
size_t store_commits_sent(const store *s);
/* Plan b (for the store_commit_send of b that follows) and return how many
 * of its runs could be hinted but for a commit still unanswered (blind, see
 * statecache.h), or -ENOMEM; *ret_runs: its runs. */
int store_commit_blind(store *s, const batch *b, const commit_params *p, state_cache *cache,
                       size_t *ret_runs);

/* The connection's socket, -1 without one. */
int store_fd(const store *s);
/* Read what the socket has (readable: poll said so, else only parse what
 * was read before): 1 when the oldest commit's reply is here, 0 when not
 * yet, -EIO when the connection was lost (and dropped). */
int store_commit_poll(store *s, bool readable);
/* The reply of the oldest commit sent (waits for it unless polled): fills
 * ret (cleared first), the states it brings go to cache. 0; -EAGAIN: the
 * runs form was declined, nothing applied, send the events form; -ESTALE:
 * `after` was not applied, nor this one; -EIO: no reply (connection
 * dropped); -EBADMSG. */
int store_commit_recv(store *s, state_cache *cache, commit_result *ret);

/* unique engagers over the recent window (a PFCOUNT union) for each creator. */
int store_uniques(store *s, int64_t recent, creator_summary *const *creators, size_t n,
                  int64_t *ret_uniques);

/* After detection: board updates, alerts, queued dead-letter entries in one
 * round trip. Fills each alert's seq/msg. */
int store_post(store *s, const board_update *boards, size_t n_boards, alert_request *alerts,
               size_t n_alerts, size_t alerts_maxlen);

/* Dead-letter entries waiting for the next round trip. */
size_t store_deadletter_queued(const store *s);

/* Send the queued dead-letter entries now (when no other round trip is due). */
int store_flush(store *s);

/* Control queries. store_creator: 0 and *ret_found false when unknown. */
int store_creator(store *s, const char *creator, int64_t recent, creator_summary *ret,
                  bool *ret_found);
void creator_summary_clear(creator_summary *c);
int store_top(store *s, const char *niche, size_t n, int64_t stale_ms, top_entry **ret,
              size_t *ret_n);
void top_entries_free(top_entry *e, size_t n);

#endif
