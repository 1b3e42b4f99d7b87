/* nousu-top -- nousud's rising leaderboards, live in a terminal.
 *
 * Asks the daemon's control endpoint (SPEC §7) over REQ: `stats` for the
 * header (events/s from two successive answers), then `top` once per niche
 * for the table. Interactive mode redraws in place on the terminal's
 * alternate screen every --interval-ms, and leaves the terminal as it found
 * it on q, Ctrl-C, SIGTERM and around Ctrl-Z. --once prints one plain table
 * (no escape sequences) and exits, for scripts.
 *
 * Replies are untrusted bytes: libnousu's msgpack reader (which bounds every
 * container against the bytes that follow before anything is allocated)
 * renders them as JSON, and jansson reads that. The cost is irrelevant at
 * one refresh a second, and no msgpack walking is duplicated here.
 *
 * A REQ socket whose request got no answer cannot send again, so after a
 * timeout the socket is closed and a new one connected (the "lazy pirate"
 * pattern of the ZeroMQ guide). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <locale.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>
#include <zmq.h>

#include "cli.h"

#define PROG "nousu-top"
#define DEFAULT_CONTROL "tcp://127.0.0.1:7713" /* SPEC §2 */
#define TOP_MAX 1000                           /* SPEC §7: n at most 1,000 */
#define NICHE_MAX 64
#define REPLY_MAX_BYTES (16 * 1024 * 1024)
#define CREATOR_COL_MAX 40 /* interactive: wider ids are cut, marked '~' */

/* ---------------------------------------------------------------- options */

typedef struct options {
    const char *endpoint, *server_key, *key_file;
    const char **niches; /* none: one board over every niche */
    int n_niches;
    int64_t n, interval_ms, timeout_ms;
    bool once;
} options;

static void usage(FILE *f) {
    fprintf(f,
            "Usage: " PROG " [OPTIONS]\n"
            "Show nousud's leaderboards of rising creators, per niche, refreshed in\n"
            "place, with the daemon's event and alert rates. Keys: q quits (so do\n"
            "Ctrl-C and SIGTERM), space refreshes now.\n"
            "\n"
            "  -e, --endpoint URL      control endpoint (default " DEFAULT_CONTROL ")\n"
            "  -N, --niche NICHE       show this niche's board; may be repeated;\n"
            "                          none: one board over every niche\n"
            "  -n, --count N           creators per board, 1..1000 (default 20)\n"
            "  -i, --interval-ms MS    refresh period (default 1000)\n"
            "  -1, --once              print one plain table (no escape sequences)\n"
            "                          and exit, for scripts\n"
            "  -t, --timeout-ms MS     wait this long for each answer (default 2000)\n"
            "      --curve-server-key KEY  the daemon's CURVE public key (Z85)\n"
            "      --curve-keys FILE   this client's public and secret key, one per line\n"
            "  -h, --help              this help\n"
            "  -V, --version           print the version\n"
            "\n"
            "Columns: RANK (within its niche's board), CREATOR, NICHE (- when unknown),\n"
            "FOLLOWERS, Z and VELOCITY (weighted engagement over the last 24 h against\n"
            "the creator's baseline, SPEC 5).\n"
            "\n"
            "Exit status: 0 after --once or on q, Ctrl-C, SIGTERM; 1 when the daemon\n"
            "does not answer within --timeout-ms (the first time, in interactive\n"
            "mode; later the last table stays up, marked stale, and the tool keeps\n"
            "asking) or answers with an error; 2 bad usage.\n");
}

static bool niche_valid(const char *s) {
    size_t n = strlen(s);
    return n >= 1 && n <= NICHE_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

enum { OPT_SERVER_KEY = 256, OPT_KEYS };

static bool parse_option(int c, options *o) {
    switch (c) {
    case 'e': o->endpoint = optarg; return true;
    case 'N':
        if (!niche_valid(optarg)) {
            fprintf(stderr, PROG ": --niche: expected 1..64 characters of [a-z0-9_-], got '%s'\n",
                    optarg);
            return false;
        }
        o->niches[o->n_niches++] = optarg;
        return true;
    case 'n': return cli_int(PROG, "--count", optarg, 1, TOP_MAX, &o->n);
    case 'i': return cli_int(PROG, "--interval-ms", optarg, 100, 86400000, &o->interval_ms);
    case 't': return cli_int(PROG, "--timeout-ms", optarg, 1, 86400000, &o->timeout_ms);
    case '1': o->once = true; return true;
    case OPT_SERVER_KEY: o->server_key = optarg; return true;
    case OPT_KEYS: o->key_file = optarg; return true;
    case 'h': usage(stdout); exit(0);
    case 'V': printf(PROG " %s\n", nousu_version()); exit(0);
    }
    return false;
}

/* o->niches must have room for argc entries (each --niche takes one). */
static int parse_options(int argc, char **argv, options *o) {
    static const struct option longs[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"niche", required_argument, NULL, 'N'},
        {"count", required_argument, NULL, 'n'},
        {"interval-ms", required_argument, NULL, 'i'},
        {"once", no_argument, NULL, '1'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"curve-server-key", required_argument, NULL, OPT_SERVER_KEY},
        {"curve-keys", required_argument, NULL, OPT_KEYS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "e:N:n:i:1t:hV", longs, NULL)) != -1)
        if (!parse_option(c, o))
            goto usage;
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        goto usage;
    }
    if (!o->once && !isatty(STDOUT_FILENO)) {
        fprintf(stderr, PROG ": standard output is not a terminal; use --once for a plain table\n");
        goto usage;
    }
    return 0;
usage:
    fprintf(stderr, "Try '" PROG " --help'.\n");
    return -EINVAL;
}

/* --------------------------------------------------------------- terminal */

/* Everything the signal handlers touch. */
static struct termios term_saved;
static volatile sig_atomic_t term_raw;    /* term_saved holds the settings to restore */
static volatile sig_atomic_t term_screen; /* on the alternate screen */
static volatile sig_atomic_t resized;     /* SIGWINCH, or back from Ctrl-Z: redraw */

static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

#define ESC_ENTER "\033[?1049h\033[?25l\033[2J" /* alternate screen, hide cursor, clear */
#define ESC_LEAVE "\033[?25h\033[?1049l"        /* show cursor, normal screen */

/* Keys unbuffered and unechoed; Ctrl-C, Ctrl-Z still send signals (ISIG).
 * Async-signal-safe (write, tcgetattr, tcsetattr). */
static void term_enter(void) {
    if (!term_raw && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &term_saved) == 0) {
        struct termios t = term_saved;
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0)
            term_raw = 1;
    }
    if (!term_screen) {
        write_all(STDOUT_FILENO, ESC_ENTER, sizeof ESC_ENTER - 1);
        term_screen = 1;
    }
}

/* Undoes term_enter(); harmless when there is nothing to undo. Async-signal-safe. */
static void term_leave(void) {
    if (term_screen) {
        write_all(STDOUT_FILENO, ESC_LEAVE, sizeof ESC_LEAVE - 1);
        term_screen = 0;
    }
    if (term_raw) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &term_saved);
        term_raw = 0;
    }
}

/* Ctrl-Z: hand the shell a normal terminal, stop, and take it back on fg. */
static void on_tstp(int sig) {
    int saved_errno = errno;
    bool was_on = term_screen;
    sigset_t set;
    term_leave();
    signal(sig, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig); /* stops here until SIGCONT */
    struct sigaction sa = {.sa_handler = on_tstp};
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    if (was_on)
        term_enter();
    resized = 1;
    errno = saved_errno;
}

static void on_winch(int sig) {
    (void)sig;
    resized = 1;
}

/* No SA_RESTART: a signal interrupts zmq_poll so the loop reacts at once. */
static void term_signals(void) {
    struct sigaction sa = {.sa_handler = on_winch};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
    sa.sa_handler = on_tstp;
    sigaction(SIGTSTP, &sa, NULL);
}

static void term_size(int *ret_cols, int *ret_rows) {
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        *ret_cols = ws.ws_col;
        *ret_rows = ws.ws_row;
    } else {
        *ret_cols = 80;
        *ret_rows = 24;
    }
}

/* ------------------------------------------------------------- the client */

typedef struct client {
    void *ctx, *sock;
    const char *endpoint;
    const nousu_curve *curve;
    int timeout_ms;
    bool keys;         /* read key presses from stdin while waiting */
    bool quit, now;    /* q pressed; space pressed */
} client;

static int client_connect(client *c) {
    int linger = 0;
    int64_t maxmsg = REPLY_MAX_BYTES;
    c->sock = zmq_socket(c->ctx, ZMQ_REQ);
    if (!c->sock)
        return -zmq_errno();
    /* linger 0: a request nobody answered must not hold up exit. */
    if (zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
        zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) < 0)
        goto fail;
    if (c->curve &&
        (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, c->curve->server_key, 40) < 0 ||
         zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, c->curve->public_key, 40) < 0 ||
         zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, c->curve->secret_key, 40) < 0))
        goto fail;
    if (zmq_connect(c->sock, c->endpoint) < 0)
        goto fail;
    return 0;
fail:;
    int err = zmq_errno();
    zmq_close(c->sock);
    c->sock = NULL;
    return -err;
}

static void client_close(client *c) {
    if (c->sock)
        zmq_close(c->sock);
    c->sock = NULL;
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    c->ctx = NULL;
}

/* Consume the keys waiting on stdin. */
static void read_keys(client *c) {
    char buf[64];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0)
        c->keys = false; /* end of input: nothing more to read */
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == 'q' || buf[i] == 'Q')
            c->quit = true;
        else if (buf[i] == ' ' || buf[i] == 'r')
            c->now = true;
    }
}

static int64_t mono_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Wait until deadline (monotonic ms) for the socket (when wait_sock) or a
 * key. Returns 1 when the socket is readable; 0 at the deadline, or, when
 * not waiting for the socket, as soon as space or a resize asks for a new
 * frame; -ECANCELED on q or a stop signal. */
static int client_wait(client *c, int64_t deadline, bool wait_sock) {
    for (;;) {
        if (cli_stop || c->quit)
            return -ECANCELED;
        int64_t left = deadline - mono_now();
        if (left <= 0 || (!wait_sock && (c->now || resized)))
            return 0;
        zmq_pollitem_t items[2];
        int n = 0, key = -1;
        if (wait_sock)
            items[n++] = (zmq_pollitem_t){c->sock, 0, ZMQ_POLLIN, 0};
        if (c->keys) {
            key = n;
            items[n++] = (zmq_pollitem_t){NULL, STDIN_FILENO, ZMQ_POLLIN, 0};
        }
        /* With no items zmq_poll() just sleeps (in slices of at most a
         * second, which its usleep() can take); a signal (EINTR) goes round
         * the loop to look at the flags again. */
        int r = zmq_poll(n ? items : NULL, n, (long)(left < 1000 ? left : 1000));
        if (r < 0 && zmq_errno() != EINTR)
            return -zmq_errno();
        if (r <= 0)
            continue;
        if (key >= 0 && (items[key].revents & ZMQ_POLLIN))
            read_keys(c);
        if (wait_sock && (items[0].revents & ZMQ_POLLIN))
            return 1;
    }
}

/* One request, one answer. Returns 0 with *ret_reply a JSON object (new
 * reference: json_decref() it); -ETIMEDOUT when no answer came within the
 * timeout (the socket is then replaced, so the next call starts clean);
 * -ECANCELED on q or a stop signal; -EBADMSG when the answer is not one
 * msgpack map; -errno from ZeroMQ. */
static int client_call(client *c, const msgpack_sbuffer *req, json_t **ret_reply) {
    if (!c->sock) {
        int r = client_connect(c);
        if (r < 0)
            return r;
    }
    if (zmq_send(c->sock, req->data, req->size, 0) < 0)
        return zmq_errno() == EINTR ? -ECANCELED : -zmq_errno();
    int r = client_wait(c, mono_now() + c->timeout_ms, true);
    if (r <= 0) {
        zmq_close(c->sock); /* a REQ socket owing an answer cannot send again */
        c->sock = NULL;
        return r == 0 ? -ETIMEDOUT : r;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, c->sock, 0) < 0) {
        r = -zmq_errno();
        zmq_msg_close(&msg);
        return r;
    }
    char *text = NULL;
    json_t *j = NULL;
    r = zmq_msg_more(&msg) ? -EBADMSG
                           : nousu_msgpack_to_json(zmq_msg_data(&msg), zmq_msg_size(&msg), &text);
    zmq_msg_close(&msg);
    if (r == 0)
        j = json_loads(text, 0, NULL);
    free(text);
    if (r < 0)
        return r;
    if (!json_is_object(j)) {
        json_decref(j);
        return -EBADMSG;
    }
    *ret_reply = j;
    return 0;
}

/* ------------------------------------------------------------ the queries */

static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* {"op":"top","niche":NICHE,"n":N}, niche left out for every niche. */
static void request_top(msgpack_sbuffer *sb, const char *niche, int64_t n) {
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, niche ? 3 : 2);
    pack_str(&pk, "op"), pack_str(&pk, "top");
    if (niche)
        pack_str(&pk, "niche"), pack_str(&pk, niche);
    pack_str(&pk, "n"), msgpack_pack_int64(&pk, n);
}

static void request_stats(msgpack_sbuffer *sb) {
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "op"), pack_str(&pk, "stats");
}

/* What is on screen: the newest answers, and the rate between two stats. */
typedef struct view {
    const options *o;
    json_t **boards; /* one `top` answer per niche (or one for all), or NULL */
    int n_boards;
    json_t *stats;
    uint64_t last_accepted;
    int64_t last_stats_ms; /* monotonic, when stats last arrived; 0: never */
    double rate;           /* events accepted per second; < 0: not known yet */
    time_t refreshed;      /* wall clock of the last complete refresh */
    int64_t failing_since; /* monotonic ms of the first failed refresh; 0: fine */
    char status[256];      /* why the table is stale, or "" */
} view;

static uint64_t j_u64(const json_t *o, const char *key) {
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

/* An {"error": reason} answer, as an error message; NULL for a real answer. */
static const char *j_error(const json_t *reply) {
    json_t *e = json_object_get(reply, "error");
    return e ? (json_is_string(e) ? json_string_value(e) : "error") : NULL;
}

static void take_stats(view *v, json_t *s) {
    int64_t now = mono_now();
    uint64_t acc = j_u64(s, "events_accepted");
    /* A restarted daemon counts from 0 again: start the rate over. */
    if (v->last_stats_ms && acc >= v->last_accepted && now > v->last_stats_ms)
        v->rate = (double)(acc - v->last_accepted) * 1000.0 / (double)(now - v->last_stats_ms);
    else
        v->rate = -1;
    v->last_accepted = acc;
    v->last_stats_ms = now;
    json_decref(v->stats);
    v->stats = s;
}

/* Ask for stats (unless --once) and every board. Returns 0, or the first
 * failure (see client_call(); -EPROTO: the daemon answered with an error,
 * which is in v->status). Boards that arrived before a failure are kept. */
static int refresh(view *v, client *c, msgpack_sbuffer *sb) {
    json_t *reply;
    int r;
    if (!v->o->once) {
        request_stats(sb);
        if ((r = client_call(c, sb, &reply)) < 0)
            return r;
        if (j_error(reply)) {
            snprintf(v->status, sizeof v->status, "stats: the daemon answered error %s",
                     j_error(reply));
            json_decref(reply);
            return -EPROTO;
        }
        take_stats(v, reply);
    }
    for (int i = 0; i < v->n_boards; i++) {
        const char *niche = v->o->n_niches ? v->o->niches[i] : NULL;
        request_top(sb, niche, v->o->n);
        if ((r = client_call(c, sb, &reply)) < 0)
            return r;
        if (j_error(reply) || !json_is_array(json_object_get(reply, "creators"))) {
            snprintf(v->status, sizeof v->status, "top %s: the daemon answered %s %s",
                     niche ? niche : "(all niches)", j_error(reply) ? "error" : "without",
                     j_error(reply) ? j_error(reply) : "a creators array");
            json_decref(reply);
            return -EPROTO;
        }
        json_decref(v->boards[i]);
        v->boards[i] = reply;
    }
    v->refreshed = time(NULL);
    return 0;
}

/* ------------------------------------------------------------- rendering */

static bool utf8_locale;

/* Decode one UTF-8 sequence at s (already valid: it went through JSON) and
 * return its length; *ret_cp the code point. */
static size_t utf8_next(const unsigned char *s, uint32_t *ret_cp) {
    if (s[0] < 0x80) {
        *ret_cp = s[0];
        return 1;
    }
    size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
    uint32_t cp = s[0] & (0x3f >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *ret_cp = 0xfffd;
            return i;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *ret_cp = cp;
    return n;
}

static int cp_width(uint32_t cp) {
    int w = utf8_locale ? wcwidth((wchar_t)cp) : 1;
    return w < 0 ? 1 : w;
}

/* Display width of s, in terminal columns. */
static int text_width(const char *s) {
    int w = 0;
    uint32_t cp;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        p += utf8_next(p, &cp);
        w += cp_width(cp);
    }
    return w;
}

/* Print s in a cell of width columns, padded with spaces on the right
 * (left) or left. Text wider than the cell is cut, its last column a '~',
 * when cut is set. Control characters are shown as '?': an id must not be
 * able to move the cursor. Returns the columns written. */
static int put_cell(FILE *f, const char *s, int width, bool left, bool cut) {
    int w = text_width(s), used = 0;
    if (!left)
        for (; w < width; w++, used++)
            fputc(' ', f);
    uint32_t cp;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_next(p, &cp);
        int cw = cp_width(cp);
        if (cut && used + cw > width - (w > width ? 1 : 0)) {
            fputc('~', f), used++;
            break;
        }
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
            fputc('?', f);
        else
            fwrite(p, 1, n, f);
        used += cw;
        p += n;
    }
    for (; left && used < width; used++)
        fputc(' ', f);
    return used;
}

typedef struct layout {
    int creator_w, niche_w;
} layout;

static const char *row_niche(const json_t *row) {
    const char *s = json_string_value(json_object_get(row, "niche"));
    return s && s[0] ? s : "-";
}

static const char *row_creator(const json_t *row) {
    const char *s = json_string_value(json_object_get(row, "creator"));
    return s ? s : "?";
}

/* Column widths that fit every row; creator capped at cap (0: no cap). */
static layout measure(const view *v, int cap) {
    layout l = {(int)strlen("CREATOR"), (int)strlen("NICHE")};
    for (int b = 0; b < v->n_boards; b++) {
        size_t i;
        json_t *row;
        json_array_foreach(json_object_get(v->boards[b], "creators"), i, row) {
            int cw = text_width(row_creator(row)), nw = text_width(row_niche(row));
            l.creator_w = cw > l.creator_w ? cw : l.creator_w;
            l.niche_w = nw > l.niche_w ? nw : l.niche_w;
        }
    }
    if (cap && l.creator_w > cap)
        l.creator_w = cap;
    return l;
}

static void put_header(FILE *f, const layout *l) {
    fputs("RANK  ", f);
    put_cell(f, "CREATOR", l->creator_w, true, false);
    fputs("  ", f);
    put_cell(f, "NICHE", l->niche_w, true, false);
    fputs("   FOLLOWERS         Z  VELOCITY", f);
}

static void put_row(FILE *f, const layout *l, int rank, const json_t *row, bool cut) {
    json_t *fol = json_object_get(row, "followers");
    char num[32];
    fprintf(f, "%4d  ", rank);
    put_cell(f, row_creator(row), l->creator_w, true, cut);
    fputs("  ", f);
    put_cell(f, row_niche(row), l->niche_w, true, cut);
    if (json_is_integer(fol))
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(fol));
    else
        snprintf(num, sizeof num, "-");
    fprintf(f, "  %10s  %8.2f  %8.2f", num, json_number_value(json_object_get(row, "z")),
            json_number_value(json_object_get(row, "velocity")));
}

/* --once: every row of every board, one header, nothing else. */
static int print_plain(const view *v) {
    layout l = measure(v, 0);
    put_header(stdout, &l);
    fputc('\n', stdout);
    for (int b = 0; b < v->n_boards; b++) {
        size_t i;
        json_t *row;
        json_array_foreach(json_object_get(v->boards[b], "creators"), i, row) {
            put_row(stdout, &l, (int)i + 1, row, false);
            fputc('\n', stdout);
        }
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -EIO;
}

/* Lines of one interactive frame, each cut to the terminal's width. */
typedef struct frame {
    FILE *f;
    char *buf;
    size_t len;
    int cols, rows, lines;
    FILE *line;
    char *lbuf;
    size_t llen;
} frame;

static FILE *line_begin(frame *fr) {
    fr->line = open_memstream(&fr->lbuf, &fr->llen);
    return fr->line;
}

/* Ends the line begun with line_begin(): cut to the width, clear the rest of
 * the screen line. No newline after the screen's last line (it would
 * scroll). bold: show it in reverse video. */
static void line_end(frame *fr, bool bold) {
    if (!fr->line)
        return;
    fclose(fr->line);
    fr->line = NULL;
    if (fr->lines < fr->rows) {
        if (fr->lines)
            fputs("\r\n", fr->f);
        if (bold)
            fputs("\033[7m", fr->f);
        put_cell(fr->f, fr->lbuf, fr->cols, true, true);
        fputs(bold ? "\033[0m\033[K" : "\033[K", fr->f);
        fr->lines++;
    }
    free(fr->lbuf);
    fr->lbuf = NULL;
}

static void put_uptime(FILE *f, uint64_t s) {
    fprintf(f, "up %llud %02u:%02u:%02u", (unsigned long long)(s / 86400),
            (unsigned)(s / 3600 % 24), (unsigned)(s / 60 % 60), (unsigned)(s % 60));
}

static void draw_header(frame *fr, const view *v) {
    FILE *f;
    char when[16] = "--:--:--";
    struct tm tm;
    if (v->refreshed && localtime_r(&v->refreshed, &tm))
        strftime(when, sizeof when, "%H:%M:%S", &tm);
    if ((f = line_begin(fr))) {
        fprintf(f, PROG "  %s  nousud ", when);
        if (v->stats)
            put_uptime(f, j_u64(v->stats, "uptime_s"));
        fprintf(f, "  %s", v->o->endpoint);
        line_end(fr, false);
    }
    if ((f = line_begin(fr))) {
        if (v->rate >= 0)
            fprintf(f, "events/s %.0f", v->rate);
        else
            fputs("events/s -", f);
        fprintf(f, "   accepted %llu   duplicate %llu   rejected %llu   alerts %llu",
                (unsigned long long)j_u64(v->stats, "events_accepted"),
                (unsigned long long)j_u64(v->stats, "events_duplicate"),
                (unsigned long long)j_u64(v->stats, "events_rejected"),
                (unsigned long long)j_u64(v->stats, "alerts_published"));
        line_end(fr, false);
    }
    if ((f = line_begin(fr))) {
        if (v->status[0]) {
            fprintf(f, "STALE: %s", v->status);
        } else {
            fprintf(f, "niches: ");
            for (int i = 0; i < v->o->n_niches; i++)
                fprintf(f, "%s%s", i ? "," : "", v->o->niches[i]);
            fprintf(f, "%s   top %lld   every %.1f s   q quit, space refresh",
                    v->o->n_niches ? "" : "all", (long long)v->o->n,
                    (double)v->o->interval_ms / 1000.0);
        }
        line_end(fr, v->status[0] != 0);
    }
    if (line_begin(fr))
        line_end(fr, false);
}

static void draw(const view *v) {
    frame fr = {0};
    term_size(&fr.cols, &fr.rows);
    fr.f = open_memstream(&fr.buf, &fr.len);
    if (!fr.f)
        return;
    fputs("\033[H", fr.f);
    draw_header(&fr, v);
    int cap = fr.cols - (6 + 2 + 2 + 10 + 2 + 8 + 2 + 8) - measure(v, 0).niche_w;
    layout l = measure(v, cap < 8 ? 8 : cap > CREATOR_COL_MAX ? CREATOR_COL_MAX : cap);
    FILE *f;
    if ((f = line_begin(&fr))) {
        put_header(f, &l);
        line_end(&fr, true);
    }
    /* Rows left, keeping the last line for "... more" when they do not fit. */
    int total = 0;
    for (int b = 0; b < v->n_boards; b++)
        total += (int)json_array_size(json_object_get(v->boards[b], "creators"));
    int room = fr.rows - fr.lines, shown = 0;
    for (int b = 0; b < v->n_boards; b++) {
        json_t *rows = json_object_get(v->boards[b], "creators"), *row;
        size_t i;
        if (b > 0 && room > 1 && line_begin(&fr)) { /* a gap between niches */
            line_end(&fr, false);
            room--;
        }
        if (json_array_size(rows) == 0 && (f = line_begin(&fr))) {
            fprintf(f, "      (%s: nobody rising)",
                    v->o->n_niches ? v->o->niches[b] : "all niches");
            line_end(&fr, false);
            room--;
        }
        json_array_foreach(rows, i, row) {
            if (shown == total - 1 ? room < 1 : room < 2)
                break;
            if ((f = line_begin(&fr))) {
                put_row(f, &l, (int)i + 1, row, true);
                line_end(&fr, false);
            }
            room--, shown++;
        }
    }
    if (shown < total && (f = line_begin(&fr))) {
        fprintf(f, "      ... %d more (a taller window shows them)", total - shown);
        line_end(&fr, false);
    }
    fputs("\033[J", fr.f);
    fclose(fr.f);
    write_all(STDOUT_FILENO, fr.buf, fr.len);
    free(fr.buf);
}

/* ------------------------------------------------------------------- main */

static const char *why(int r, const client *c) {
    static char buf[160];
    if (r == -ETIMEDOUT)
        snprintf(buf, sizeof buf, "no answer within %d ms (is nousud running, with this control "
                 "endpoint%s?)", c->timeout_ms, c->curve ? ", and are the CURVE keys right" : "");
    else if (r == -EBADMSG)
        snprintf(buf, sizeof buf, "the answer is not one msgpack map");
    else
        snprintf(buf, sizeof buf, "%s", r == -EPROTO ? "" : zmq_strerror(-r));
    return buf;
}

/* The first answer decides whether there is a daemon to show at all.
 * true to go on; false with the exit status in *ret_status (0: cancelled). */
static bool first_refresh(view *v, client *c, msgpack_sbuffer *sb, int *ret_status) {
    int r = refresh(v, c, sb);
    if (r == -ECANCELED) {
        *ret_status = 0;
        return false;
    }
    if (r < 0) {
        fprintf(stderr, PROG ": %s: %s\n", v->o->endpoint, r == -EPROTO ? v->status : why(r, c));
        *ret_status = CLI_EXIT_FAIL;
        return false;
    }
    return true;
}

static int run_once(view *v, client *c, msgpack_sbuffer *sb) {
    int status;
    if (!first_refresh(v, c, sb, &status))
        return status;
    if (print_plain(v) < 0) {
        fprintf(stderr, PROG ": writing the table: %s\n", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    return 0;
}

static int run_interactive(view *v, client *c, msgpack_sbuffer *sb) {
    /* Until there is a daemon to watch, the terminal is left alone. */
    int r;
    if (!first_refresh(v, c, sb, &r))
        return r;
    term_signals();
    atexit(term_leave);
    term_enter();
    c->keys = term_raw; /* keys only from a terminal: a file on stdin would always be ready */
    for (;;) {
        resized = 0;
        draw(v);
        int64_t next = mono_now() + v->o->interval_ms;
        c->now = false;
        while ((r = client_wait(c, next, false)) == 0 && resized && !c->now) {
            resized = 0;
            draw(v);
        }
        if (r < 0)
            break;
        r = refresh(v, c, sb);
        if (r == -ECANCELED)
            break;
        if (r == 0) {
            v->status[0] = '\0';
            v->failing_since = 0;
        } else {
            int64_t now = mono_now();
            if (!v->failing_since)
                v->failing_since = now;
            if (r != -EPROTO)
                snprintf(v->status, sizeof v->status, "%s for %llds, retrying", why(r, c),
                         (long long)((now - v->failing_since) / 1000));
            v->rate = -1;
            v->last_stats_ms = 0;
        }
    }
    term_leave();
    return 0;
}

int main(int argc, char **argv) {
    options o = {.n = 20, .interval_ms = 1000, .timeout_ms = 2000};
    cli_curve cc;
    bool use_curve;
    int status;
    o.niches = calloc((size_t)argc, sizeof *o.niches);
    if (!o.niches)
        return CLI_EXIT_FAIL;
    if (parse_options(argc, argv, &o) < 0 ||
        !cli_curve_load(PROG, o.server_key, o.key_file, &cc, &use_curve)) {
        free(o.niches);
        return CLI_EXIT_USAGE;
    }
    if (!o.endpoint)
        o.endpoint = DEFAULT_CONTROL;
    utf8_locale = setlocale(LC_CTYPE, "") && MB_CUR_MAX > 1;
    cli_signals();

    view v = {.o = &o, .rate = -1, .n_boards = o.n_niches ? o.n_niches : 1};
    client c = {.endpoint = o.endpoint, .curve = use_curve ? &cc.keys : NULL,
                .timeout_ms = (int)o.timeout_ms};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    v.boards = calloc((size_t)v.n_boards, sizeof *v.boards);
    c.ctx = zmq_ctx_new();
    if (!v.boards || !c.ctx) {
        fprintf(stderr, PROG ": out of memory\n");
        status = CLI_EXIT_FAIL;
        goto out;
    }
    int r = client_connect(&c);
    if (r < 0) {
        fprintf(stderr, PROG ": %s: %s\n", o.endpoint, zmq_strerror(-r));
        status = CLI_EXIT_FAIL;
        goto out;
    }
    status = o.once ? run_once(&v, &c, &sb) : run_interactive(&v, &c, &sb);
out:
    client_close(&c);
    for (int i = 0; v.boards && i < v.n_boards; i++)
        json_decref(v.boards[i]);
    free(v.boards);
    json_decref(v.stats);
    msgpack_sbuffer_destroy(&sb);
    free(o.niches);
    return status;
}
