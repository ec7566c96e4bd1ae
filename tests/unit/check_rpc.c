/* Unit tests for common/rpc: framing, request/response correlation, error replies, timeouts,
 * lost connections and hostile peers, over real loopback sockets. Each test runs an event_base
 * in the test itself, always with a deadline, so a broken RPC layer fails a test instead of
 * hanging it. Hostile peers are plain sockets that write raw bytes. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "rpc/rpc.h"
#include "util/timeutil.h"

#define MAX_FRAME (1 << 20)
#define DEADLINE_MS 3000      /* longest any test waits for something that should happen */
#define CALL_TIMEOUT_MS 10000 /* a call timeout that never fires within a test */

/* ---- test state ------------------------------------------------------------------------------ */

/* How the test server answers a RegisterTaskManager request. */
typedef enum server_mode {
    SERVE_ECHO,   /* reply with jobmanager_id = resource_id, heartbeat_interval_ms = num_slots */
    SERVE_HOLD,   /* keep the request; the test answers it later with server_answer */
    SERVE_ERROR,  /* rpc_reply_error(NOT_FOUND, "no job <resource_id>") */
    SERVE_CLOSE,  /* rpc_close the connection inside on_message */
    SERVE_SILENT, /* never answer */
} server_mode;

/* What one rpc_call's reply callback saw. */
typedef struct reply_rec {
    int calls;         /* times the callback ran: must end at 1 */
    int order;         /* completion order among all calls of the test (1, 2, ...) */
    int status;
    char message[512];
    char jm_id[4096];  /* reply's jobmanager_id */
    int64_t interval;  /* reply's heartbeat_interval_ms */
    int64_t at_ms;     /* when it completed */
    bool close_conn;   /* rpc_close the connection inside the callback */
} reply_rec;

#define MAX_HELD 8
#define MAX_RECS 4

static struct test_state {
    struct event_base *base;
    rpc_server *srv;
    int port;
    server_mode mode;

    /* server side */
    int accepted;
    rpc_conn *srv_conn;             /* the last accepted connection, NULL once closed */
    int srv_closed;
    int srv_close_status;
    char srv_close_reason[256];
    int messages;                   /* non-reply messages received */
    uint64_t last_id;
    char last_resource_id[4096];
    int nheld;
    uint64_t held_id[MAX_HELD];
    char held_resource_id[MAX_HELD][64];

    /* client side */
    rpc_conn *client;               /* NULL once closed */
    int opened;
    int client_closed;
    int client_close_status;
    char client_close_reason[256];
    bool close_in_open, close_in_close;
    int completed;
    reply_rec rec[MAX_RECS];
} T;

/* ---- the event loop with a deadline -------------------------------------------------------------- */

static void deadline_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    *(bool *)arg = true;
}

/* Run the loop until *value >= target or timeout_ms passed; true if the value was reached. */
static bool run_until(const int *value, int target, int timeout_ms) {
    bool expired = false;
    struct event *t = evtimer_new(T.base, deadline_cb, &expired);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(t, &tv);
    while (*value < target && !expired) event_base_loop(T.base, EVLOOP_ONCE);
    event_free(t);
    return *value >= target;
}

/* Run the loop for ms milliseconds, whatever happens. */
static void run_for(int ms) {
    static const int never = 0;
    run_until(&never, 1, ms);
}

/* ---- messages ------------------------------------------------------------------------------------ */

/* A RegisterTaskManager request on caller-provided storage. */
typedef struct request {
    rpc_envelope env;
    Flint__Rpc__RegisterTaskManager reg;
} request;

static rpc_envelope *request_init(request *r, const char *resource_id, uint32_t slots) {
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    Flint__Rpc__RegisterTaskManager reg = FLINT__RPC__REGISTER_TASK_MANAGER__INIT;
    r->env = env;
    r->reg = reg;
    r->reg.resource_id = (char *)resource_id;
    r->reg.num_slots = slots;
    r->env.body_case = FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER;
    r->env.register_task_manager = &r->reg;
    return &r->env;
}

/* A one-way Heartbeat on caller-provided storage. */
typedef struct beat {
    rpc_envelope env;
    Flint__Rpc__Heartbeat hb;
} beat;

static rpc_envelope *beat_init(beat *b, const char *resource_id) {
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    Flint__Rpc__Heartbeat hb = FLINT__RPC__HEARTBEAT__INIT;
    b->env = env;
    b->hb = hb;
    b->hb.resource_id = (char *)resource_id;
    b->env.body_case = FLINT__RPC__ENVELOPE__BODY_HEARTBEAT;
    b->env.heartbeat = &b->hb;
    return &b->env;
}

/* Answer request id on c with the echo reply. */
static void send_echo(rpc_conn *c, uint64_t id, const char *resource_id, int64_t slots) {
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.id = id;
    Flint__Rpc__RegisterTaskManagerResponse resp = FLINT__RPC__REGISTER_TASK_MANAGER_RESPONSE__INIT;
    resp.jobmanager_id = (char *)resource_id;
    resp.heartbeat_interval_ms = slots;
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER_RESPONSE;
    reply.register_task_manager_response = &resp;
    ck_assert_int_eq(rpc_reply(c, &req, &reply), 0);
}

/* Answer the i-th held request. */
static void server_answer(int i) {
    ck_assert_int_lt(i, T.nheld);
    ck_assert_ptr_nonnull(T.srv_conn);
    send_echo(T.srv_conn, T.held_id[i], T.held_resource_id[i], i);
}

/* ---- server callbacks ----------------------------------------------------------------------------- */

static void srv_message(rpc_conn *c, rpc_envelope *env, void *ud) {
    (void)ud;
    T.messages++;
    T.last_id = env->id;
    ck_assert_uint_eq(env->reply_to, 0);
    if (env->body_case == FLINT__RPC__ENVELOPE__BODY_HEARTBEAT) {
        snprintf(T.last_resource_id, sizeof T.last_resource_id, "%s", env->heartbeat->resource_id);
        return; /* one-way */
    }
    ck_assert_int_eq(env->body_case, FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER);
    const Flint__Rpc__RegisterTaskManager *reg = env->register_task_manager;
    snprintf(T.last_resource_id, sizeof T.last_resource_id, "%s", reg->resource_id);
    switch (T.mode) {
    case SERVE_ECHO:
        send_echo(c, env->id, reg->resource_id, reg->num_slots);
        break;
    case SERVE_HOLD:
        ck_assert_int_lt(T.nheld, MAX_HELD);
        T.held_id[T.nheld] = env->id;
        snprintf(T.held_resource_id[T.nheld], sizeof T.held_resource_id[0], "%s", reg->resource_id);
        T.nheld++;
        break;
    case SERVE_ERROR:
        ck_assert_int_eq(rpc_reply_error(c, env, FLINT_NOT_FOUND, "no job %s", reg->resource_id), 0);
        break;
    case SERVE_CLOSE:
        rpc_close(c);
        T.srv_conn = NULL;
        break;
    case SERVE_SILENT:
        break;
    }
}

static void srv_close(rpc_conn *c, int status, const char *reason, void *ud) {
    (void)ud;
    T.srv_closed++;
    T.srv_close_status = status;
    snprintf(T.srv_close_reason, sizeof T.srv_close_reason, "%s", reason);
    if (T.srv_conn == c) T.srv_conn = NULL;
}

static void srv_accept(rpc_conn *c, void *ud) {
    (void)ud;
    T.accepted++;
    T.srv_conn = c;
    rpc_handlers h = {.on_message = srv_message, .on_close = srv_close};
    rpc_conn_set_handlers(c, &h);
}

/* ---- client callbacks ------------------------------------------------------------------------------ */

static void cli_open(rpc_conn *c, void *ud) {
    (void)ud;
    T.opened++;
    if (T.close_in_open) {
        rpc_close(c);
        T.client = NULL;
    }
}

static void cli_close(rpc_conn *c, int status, const char *reason, void *ud) {
    (void)ud;
    T.client_closed++;
    T.client_close_status = status;
    snprintf(T.client_close_reason, sizeof T.client_close_reason, "%s", reason);
    if (T.close_in_close) rpc_close(c); /* must be harmless */
    T.client = NULL;
}

static void cli_reply(rpc_conn *c, int status, const char *message, rpc_envelope *reply, void *ud) {
    reply_rec *r = ud;
    r->calls++;
    r->order = ++T.completed;
    r->status = status;
    r->at_ms = time_mono_ms();
    snprintf(r->message, sizeof r->message, "%s", message ? message : "");
    if (status == FLINT_OK) {
        ck_assert_ptr_nonnull(reply);
        ck_assert_int_eq(reply->body_case, FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER_RESPONSE);
        snprintf(r->jm_id, sizeof r->jm_id, "%s", reply->register_task_manager_response->jobmanager_id);
        r->interval = reply->register_task_manager_response->heartbeat_interval_ms;
    } else {
        ck_assert_ptr_null(reply);
    }
    if (r->close_conn) {
        rpc_close(c);
        T.client = NULL;
    }
}

/* ---- fixture ----------------------------------------------------------------------------------- */

static void setup(void) {
    memset(&T, 0, sizeof T);
    T.base = event_base_new();
    ck_assert_ptr_nonnull(T.base);
    flint_err err = {0};
    T.srv = rpc_listen(T.base, "127.0.0.1", 0, MAX_FRAME, srv_accept, NULL, &err);
    ck_assert_msg(T.srv != NULL, "rpc_listen: %s", err.msg);
    T.port = rpc_server_port(T.srv);
    ck_assert_int_gt(T.port, 0);
}

static void teardown(void) {
    if (T.client) rpc_close(T.client);
    T.client = NULL;
    rpc_server_free(T.srv);
    event_base_free(T.base);
}

/* Connect the test client (with max_frame) and wait until it is open. */
static rpc_conn *connect_client(size_t max_frame) {
    rpc_handlers h = {.on_open = cli_open, .on_close = cli_close};
    flint_err err = {0};
    T.client = rpc_connect(T.base, "127.0.0.1", T.port, max_frame, &h, &err);
    ck_assert_msg(T.client != NULL, "rpc_connect: %s", err.msg);
    ck_assert_msg(run_until(&T.opened, 1, DEADLINE_MS), "connection did not open");
    ck_assert_msg(run_until(&T.accepted, 1, DEADLINE_MS), "server did not accept");
    return T.client;
}

/* Start a call that records into T.rec[i]. */
static void call(int i, const char *resource_id, uint32_t slots, int64_t timeout_ms) {
    request r;
    ck_assert_int_eq(rpc_call(T.client, request_init(&r, resource_id, slots), timeout_ms, cli_reply,
                              &T.rec[i]),
                     0);
    ck_assert_uint_ne(r.env.id, 0); /* the id is set on the caller's envelope */
}

static void assert_contains(const char *haystack, const char *needle) {
    ck_assert_msg(strstr(haystack, needle) != NULL, "'%s' does not contain '%s'", haystack, needle);
}

/* ---- raw sockets ------------------------------------------------------------------------------- */

static int raw_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s", strerror(errno));
    return fd;
}

static void raw_write(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        ck_assert_msg(n > 0, "write: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static void put_header(unsigned char *p, uint32_t len) {
    p[0] = (unsigned char)(len >> 24);
    p[1] = (unsigned char)(len >> 16);
    p[2] = (unsigned char)(len >> 8);
    p[3] = (unsigned char)len;
}

/* The peer must have closed fd: a read gives EOF or a reset, never "would block". */
static void raw_expect_closed(int fd) {
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    ck_assert_msg(n == 0 || (n < 0 && errno == ECONNRESET), "connection still open (read %zd: %s)",
                  n, n < 0 ? strerror(errno) : "data");
}

/* A listening socket on a free port that never accepts: the kernel completes the handshake. */
static int raw_listen(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A port nothing listens on. */
static int closed_port(void) {
    int port;
    int fd = raw_listen(&port);
    close(fd);
    return port;
}

/* After a hostile client was thrown out, a well-behaved one must still be served. */
static void assert_still_serving(void) {
    T.opened = 0;
    int accepted = T.accepted;
    T.client = NULL;
    rpc_handlers h = {.on_open = cli_open, .on_close = cli_close};
    flint_err err = {0};
    T.client = rpc_connect(T.base, "127.0.0.1", T.port, MAX_FRAME, &h, &err);
    ck_assert_ptr_nonnull(T.client);
    ck_assert(run_until(&T.opened, 1, DEADLINE_MS));
    ck_assert(run_until(&T.accepted, accepted + 1, DEADLINE_MS));
    T.mode = SERVE_ECHO;
    call(3, "after", 9, CALL_TIMEOUT_MS);
    ck_assert_msg(run_until(&T.rec[3].calls, 1, DEADLINE_MS), "no reply after a bad client");
    ck_assert_int_eq(T.rec[3].status, FLINT_OK);
    ck_assert_str_eq(T.rec[3].jm_id, "after");
}

/* Send raw bytes from a plain socket; the server must close that connection as a protocol error
 * whose reason contains `why`, and go on serving others. */
static void hostile_client(const void *bytes, size_t len, const char *why) {
    int fd = raw_connect(T.port);
    raw_write(fd, bytes, len);
    shutdown(fd, SHUT_WR);
    ck_assert_msg(run_until(&T.srv_closed, 1, DEADLINE_MS), "server did not drop the connection");
    ck_assert_int_eq(T.srv_closed, 1);
    ck_assert_int_eq(T.srv_close_status, FLINT_PROTOCOL);
    assert_contains(T.srv_close_reason, why);
    ck_assert_int_eq(T.messages, 0);
    raw_expect_closed(fd);
    close(fd);
    assert_still_serving();
}

/* ---- basics ---------------------------------------------------------------------------------- */

START_TEST(test_listen_and_connect) {
    connect_client(MAX_FRAME);
    ck_assert_int_eq(T.accepted, 1);
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", T.port);
    ck_assert_str_eq(rpc_conn_peer(T.client), want);
    char local[64];
    rpc_conn_local_addr(T.client, local, sizeof local);
    ck_assert_str_eq(local, "127.0.0.1");
    assert_contains(rpc_conn_peer(T.srv_conn), "127.0.0.1:");

    int x;
    ck_assert_ptr_null(rpc_conn_data(T.client));
    rpc_conn_set_data(T.client, &x);
    ck_assert_ptr_eq(rpc_conn_data(T.client), &x);
}
END_TEST

START_TEST(test_listen_port_in_use) {
    flint_err err = {0};
    rpc_server *again = rpc_listen(T.base, "127.0.0.1", T.port, MAX_FRAME, srv_accept, NULL, &err);
    ck_assert_ptr_null(again);
    ck_assert_int_eq(err.code, FLINT_UNAVAILABLE);
    char port[16];
    snprintf(port, sizeof port, "%d", T.port);
    assert_contains(err.msg, port);
}
END_TEST

START_TEST(test_call_and_reply) {
    connect_client(MAX_FRAME);
    call(0, "tm-1", 4, CALL_TIMEOUT_MS);
    ck_assert_uint_eq(rpc_pending_count(T.client), 1);
    ck_assert(run_until(&T.rec[0].calls, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[0].status, FLINT_OK);
    ck_assert_str_eq(T.rec[0].jm_id, "tm-1");
    ck_assert_int_eq(T.rec[0].interval, 4);
    ck_assert_uint_eq(rpc_pending_count(T.client), 0);
    ck_assert_int_eq(T.client_closed, 0);
}
END_TEST

START_TEST(test_send_one_way) {
    connect_client(MAX_FRAME);
    beat b1, b2;
    ck_assert_int_eq(rpc_send(T.client, beat_init(&b1, "first")), 0);
    ck_assert_int_eq(rpc_send(T.client, beat_init(&b2, "second")), 0);
    ck_assert_uint_ne(b1.env.id, 0);
    ck_assert_uint_gt(b2.env.id, b1.env.id);
    ck_assert(run_until(&T.messages, 2, DEADLINE_MS));
    ck_assert_str_eq(T.last_resource_id, "second");
    ck_assert_uint_eq(T.last_id, b2.env.id);
    ck_assert_uint_eq(rpc_pending_count(T.client), 0);
}
END_TEST

START_TEST(test_large_message) {
    /* A message far larger than a socket buffer arrives whole. */
    connect_client(MAX_FRAME);
    static char big[4000];
    memset(big, 'x', sizeof big - 1);
    call(0, big, 1, CALL_TIMEOUT_MS);
    ck_assert(run_until(&T.rec[0].calls, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[0].status, FLINT_OK);
    ck_assert_str_eq(T.rec[0].jm_id, big);
}
END_TEST

/* ---- correlation, errors, timeouts ------------------------------------------------------------- */

START_TEST(test_replies_in_reverse_order) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_HOLD;
    call(0, "a", 1, CALL_TIMEOUT_MS);
    call(1, "b", 2, CALL_TIMEOUT_MS);
    ck_assert_uint_eq(rpc_pending_count(T.client), 2);
    ck_assert(run_until(&T.nheld, 2, DEADLINE_MS));
    ck_assert_str_eq(T.held_resource_id[0], "a");
    ck_assert_uint_ne(T.held_id[0], T.held_id[1]);

    server_answer(1); /* b first */
    ck_assert(run_until(&T.completed, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[1].calls, 1);
    ck_assert_int_eq(T.rec[0].calls, 0);
    ck_assert_uint_eq(rpc_pending_count(T.client), 1);
    server_answer(0);
    ck_assert(run_until(&T.completed, 2, DEADLINE_MS));

    ck_assert_int_eq(T.rec[0].status, FLINT_OK);
    ck_assert_str_eq(T.rec[0].jm_id, "a");
    ck_assert_int_eq(T.rec[1].status, FLINT_OK);
    ck_assert_str_eq(T.rec[1].jm_id, "b");
    ck_assert_int_eq(T.rec[1].order, 1);
    ck_assert_int_eq(T.rec[0].order, 2);
    ck_assert_uint_eq(rpc_pending_count(T.client), 0);
}
END_TEST

START_TEST(test_replies_in_mixed_order) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_HOLD;
    call(0, "a", 1, CALL_TIMEOUT_MS);
    call(1, "b", 1, CALL_TIMEOUT_MS);
    call(2, "c", 1, CALL_TIMEOUT_MS);
    ck_assert(run_until(&T.nheld, 3, DEADLINE_MS));
    server_answer(1);
    server_answer(0);
    server_answer(2);
    ck_assert(run_until(&T.completed, 3, DEADLINE_MS));
    static const char *ids[] = {"a", "b", "c"};
    static const int order[] = {2, 1, 3};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(T.rec[i].calls, 1);
        ck_assert_int_eq(T.rec[i].status, FLINT_OK);
        ck_assert_str_eq(T.rec[i].jm_id, ids[i]);
        ck_assert_int_eq(T.rec[i].interval, i); /* server_answer(i) sends i */
        ck_assert_int_eq(T.rec[i].order, order[i]);
    }
}
END_TEST

START_TEST(test_reply_error) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_ERROR;
    call(0, "job-42", 1, CALL_TIMEOUT_MS);
    ck_assert(run_until(&T.rec[0].calls, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[0].status, FLINT_NOT_FOUND);
    ck_assert_str_eq(T.rec[0].message, "no job job-42");
    ck_assert_int_eq(T.client_closed, 0); /* an error reply is not a connection error */
}
END_TEST

START_TEST(test_reply_error_bad_code) {
    /* A peer's error code outside the status list (or "ok") still fails the call. */
    connect_client(MAX_FRAME);
    T.mode = SERVE_HOLD;
    call(0, "a", 1, CALL_TIMEOUT_MS);
    call(1, "b", 1, CALL_TIMEOUT_MS);
    ck_assert(run_until(&T.nheld, 2, DEADLINE_MS));
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.id = T.held_id[0];
    ck_assert_int_eq(rpc_reply_error(T.srv_conn, &req, 9999, "strange"), 0);
    req.id = T.held_id[1];
    ck_assert_int_eq(rpc_reply_error(T.srv_conn, &req, FLINT_OK, "not ok"), 0);
    ck_assert(run_until(&T.completed, 2, DEADLINE_MS));
    ck_assert_int_eq(T.rec[0].status, FLINT_ERR);
    ck_assert_str_eq(T.rec[0].message, "strange");
    ck_assert_int_ne(T.rec[1].status, FLINT_OK);
    ck_assert_str_eq(T.rec[1].message, "not ok");
}
END_TEST

START_TEST(test_timeout) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_SILENT;
    int64_t start = time_mono_ms();
    call(0, "slow", 1, 50);
    ck_assert(run_until(&T.rec[0].calls, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[0].status, FLINT_TIMEOUT);
    assert_contains(T.rec[0].message, "50 ms");
    ck_assert_int_ge(T.rec[0].at_ms - start, 45);
    ck_assert_uint_eq(rpc_pending_count(T.client), 0);
    /* The connection survives a timeout. */
    ck_assert_int_eq(T.client_closed, 0);
    T.mode = SERVE_ECHO;
    call(1, "fast", 1, CALL_TIMEOUT_MS);
    ck_assert(run_until(&T.rec[1].calls, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[1].status, FLINT_OK);
    ck_assert_int_eq(T.rec[0].calls, 1);
}
END_TEST

START_TEST(test_late_reply_ignored) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_HOLD;
    call(0, "late", 1, 30);
    ck_assert(run_until(&T.rec[0].calls, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[0].status, FLINT_TIMEOUT);
    server_answer(0);
    run_for(100);
    ck_assert_int_eq(T.rec[0].calls, 1); /* the reply found no request and was dropped */
    ck_assert_int_eq(T.client_closed, 0);
}
END_TEST

START_TEST(test_timeouts_independent) {
    /* A short timeout fires alone; the longer call still gets its reply. */
    connect_client(MAX_FRAME);
    T.mode = SERVE_HOLD;
    call(0, "short", 1, 30);
    call(1, "long", 1, CALL_TIMEOUT_MS);
    ck_assert(run_until(&T.rec[0].calls, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[0].status, FLINT_TIMEOUT);
    ck_assert_int_eq(T.rec[1].calls, 0);
    ck_assert_uint_eq(rpc_pending_count(T.client), 1);
    server_answer(1);
    ck_assert(run_until(&T.rec[1].calls, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[1].status, FLINT_OK);
    ck_assert_str_eq(T.rec[1].jm_id, "long");
}
END_TEST

/* ---- lost connections ------------------------------------------------------------------------ */

START_TEST(test_server_close_fails_pending) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_HOLD;
    call(0, "a", 1, CALL_TIMEOUT_MS);
    call(1, "b", 1, CALL_TIMEOUT_MS);
    ck_assert(run_until(&T.nheld, 2, DEADLINE_MS));
    int64_t start = time_mono_ms();
    rpc_close(T.srv_conn);
    T.srv_conn = NULL;
    ck_assert_msg(run_until(&T.client_closed, 1, DEADLINE_MS), "client did not notice the close");
    ck_assert_int_lt(time_mono_ms() - start, 1000);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(T.rec[i].calls, 1);
        ck_assert_int_eq(T.rec[i].status, FLINT_CLOSED);
        assert_contains(T.rec[i].message, "closed");
    }
    ck_assert_int_eq(T.client_closed, 1);
    ck_assert_int_eq(T.client_close_status, FLINT_CLOSED);
    ck_assert_ptr_null(T.client);
    ck_assert_int_eq(T.srv_closed, 0); /* rpc_close does not call on_close */
}
END_TEST

START_TEST(test_client_close_seen_by_server) {
    connect_client(MAX_FRAME);
    rpc_close(T.client);
    T.client = NULL;
    ck_assert(run_until(&T.srv_closed, 1, DEADLINE_MS));
    ck_assert_int_eq(T.srv_close_status, FLINT_CLOSED);
    ck_assert_int_eq(T.client_closed, 0);
}
END_TEST

START_TEST(test_close_fails_own_pending) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_SILENT;
    call(0, "a", 1, CALL_TIMEOUT_MS);
    rpc_close(T.client);
    T.client = NULL;
    ck_assert_int_eq(T.rec[0].calls, 1);
    ck_assert_int_eq(T.rec[0].status, FLINT_CLOSED);
    run_for(20);
    ck_assert_int_eq(T.rec[0].calls, 1);
}
END_TEST

START_TEST(test_connect_refused) {
    int port = closed_port();
    rpc_handlers h = {.on_open = cli_open, .on_close = cli_close};
    flint_err err = {0};
    T.client = rpc_connect(T.base, "127.0.0.1", port, MAX_FRAME, &h, &err);
    ck_assert_msg(T.client != NULL, "%s", err.msg);
    call(0, "early", 1, CALL_TIMEOUT_MS); /* queued before the connection exists */
    ck_assert(run_until(&T.client_closed, 1, DEADLINE_MS));
    ck_assert_int_eq(T.opened, 0);
    ck_assert_int_eq(T.client_close_status, FLINT_UNAVAILABLE);
    assert_contains(T.client_close_reason, "refused");
    ck_assert_int_eq(T.rec[0].calls, 1);
    ck_assert_int_eq(T.rec[0].status, FLINT_UNAVAILABLE);
}
END_TEST

/* ---- hostile peers --------------------------------------------------------------------------- */

START_TEST(test_oversized_frame) {
    unsigned char hdr[4];
    put_header(hdr, 1u << 30); /* claims 1 GB */
    hostile_client(hdr, sizeof hdr, "exceeds rpc.max-frame-size");
}
END_TEST

START_TEST(test_truncated_frame) {
    unsigned char buf[14];
    put_header(buf, 100);
    memset(buf + 4, 0x08, 10);
    hostile_client(buf, sizeof buf, "inside a frame");
}
END_TEST

START_TEST(test_truncated_header) {
    static const unsigned char buf[2] = {0, 0};
    hostile_client(buf, sizeof buf, "inside a frame");
}
END_TEST

START_TEST(test_undecodable_frame) {
    unsigned char buf[4 + 5];
    put_header(buf, 5);
    memset(buf + 4, 0xff, 5); /* a varint that never ends */
    hostile_client(buf, sizeof buf, "undecodable");
}
END_TEST

START_TEST(test_frame_without_body) {
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.id = 7;
    unsigned char buf[64];
    size_t len = flint__rpc__envelope__pack(&env, buf + 4);
    ck_assert_uint_gt(len, 0);
    put_header(buf, (uint32_t)len);
    hostile_client(buf, 4 + len, "without a message body");
}
END_TEST

START_TEST(test_empty_frame) {
    static const unsigned char buf[4] = {0, 0, 0, 0};
    hostile_client(buf, sizeof buf, "without a message body");
}
END_TEST

START_TEST(test_good_frame_then_garbage) {
    /* A good frame is delivered; the garbage behind it in the same write closes the connection. */
    beat b;
    rpc_envelope *env = beat_init(&b, "good");
    env->id = 1;
    unsigned char buf[128];
    size_t len = flint__rpc__envelope__pack(env, buf + 4);
    put_header(buf, (uint32_t)len);
    put_header(buf + 4 + len, 3);
    memset(buf + 8 + len, 0xff, 3);
    int fd = raw_connect(T.port);
    raw_write(fd, buf, 8 + len + 3);
    ck_assert(run_until(&T.srv_closed, 1, DEADLINE_MS));
    ck_assert_int_eq(T.messages, 1);
    ck_assert_str_eq(T.last_resource_id, "good");
    ck_assert_int_eq(T.srv_close_status, FLINT_PROTOCOL);
    raw_expect_closed(fd);
    close(fd);
}
END_TEST

START_TEST(test_client_gets_garbage) {
    /* A "server" that answers a pending call with garbage fails the call, not hangs it. */
    int port;
    int lfd = raw_listen(&port);
    rpc_handlers h = {.on_open = cli_open, .on_close = cli_close};
    flint_err err = {0};
    T.client = rpc_connect(T.base, "127.0.0.1", port, MAX_FRAME, &h, &err);
    ck_assert_ptr_nonnull(T.client);
    ck_assert(run_until(&T.opened, 1, DEADLINE_MS));
    call(0, "x", 1, CALL_TIMEOUT_MS);
    int fd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    unsigned char hdr[4];
    put_header(hdr, 0x7fffffff);
    raw_write(fd, hdr, sizeof hdr);
    ck_assert(run_until(&T.client_closed, 1, DEADLINE_MS));
    ck_assert_int_eq(T.client_close_status, FLINT_PROTOCOL);
    ck_assert_int_eq(T.rec[0].calls, 1);
    ck_assert_int_eq(T.rec[0].status, FLINT_PROTOCOL);
    assert_contains(T.rec[0].message, "exceeds");
    close(fd);
    close(lfd);
}
END_TEST

/* ---- frame size limits --------------------------------------------------------------------- */

START_TEST(test_send_too_large) {
    connect_client(1024);
    static char big[2000];
    memset(big, 'x', sizeof big - 1);
    beat b;
    ck_assert_int_eq(rpc_send(T.client, beat_init(&b, big)), FLINT_TOO_LARGE);
    request r;
    ck_assert_int_eq(rpc_call(T.client, request_init(&r, big, 1), CALL_TIMEOUT_MS, cli_reply, &T.rec[0]),
                     FLINT_TOO_LARGE);
    ck_assert_uint_eq(rpc_pending_count(T.client), 0);
    /* Nothing went out: the next small message is the first the server sees. */
    beat small;
    ck_assert_int_eq(rpc_send(T.client, beat_init(&small, "small")), 0);
    ck_assert(run_until(&T.messages, 1, DEADLINE_MS));
    run_for(20);
    ck_assert_int_eq(T.messages, 1);
    ck_assert_str_eq(T.last_resource_id, "small");
    ck_assert_int_eq(T.rec[0].calls, 0);
    ck_assert_int_eq(T.client_closed, 0);
}
END_TEST

/* A heartbeat whose serialized envelope is exactly `size` bytes, in storage that stays valid. */
static rpc_envelope *beat_of_size(beat *b, char *id, size_t idcap, size_t size) {
    for (size_t n = 0; n + 1 < idcap; n++) {
        memset(id, 'y', n);
        id[n] = '\0';
        rpc_envelope *env = beat_init(b, id);
        env->id = 1; /* rpc_send sets a small id: same encoded size */
        if (flint__rpc__envelope__get_packed_size(env) == size) return env;
    }
    ck_abort_msg("cannot build a message of %zu bytes", size);
    return NULL;
}

START_TEST(test_receive_limit_exact) {
    /* A server with a 1024-byte limit takes a 1024-byte frame and refuses a 1025-byte one. */
    rpc_server_free(T.srv);
    flint_err err = {0};
    T.srv = rpc_listen(T.base, "127.0.0.1", 0, 1024, srv_accept, NULL, &err);
    ck_assert_ptr_nonnull(T.srv);
    T.port = rpc_server_port(T.srv);
    connect_client(MAX_FRAME);

    static char id[1100];
    beat b;
    ck_assert_int_eq(rpc_send(T.client, beat_of_size(&b, id, sizeof id, 1024)), 0);
    ck_assert(run_until(&T.messages, 1, DEADLINE_MS));
    ck_assert_uint_eq(strlen(T.last_resource_id), strlen(id));

    ck_assert_int_eq(rpc_send(T.client, beat_of_size(&b, id, sizeof id, 1025)), 0);
    ck_assert(run_until(&T.srv_closed, 1, DEADLINE_MS));
    ck_assert_int_eq(T.srv_close_status, FLINT_PROTOCOL);
    assert_contains(T.srv_close_reason, "1025");
    ck_assert_int_eq(T.messages, 1);
    ck_assert(run_until(&T.client_closed, 1, DEADLINE_MS));
}
END_TEST

/* ---- rpc_close inside callbacks --------------------------------------------------------------- */

START_TEST(test_close_in_reply_callback) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_HOLD;
    T.rec[0].close_conn = true;
    call(0, "a", 1, CALL_TIMEOUT_MS);
    call(1, "b", 1, CALL_TIMEOUT_MS);
    ck_assert(run_until(&T.nheld, 2, DEADLINE_MS));
    /* Both replies are written at once, so they usually arrive in one read: the frame behind
     * the one whose callback closed the connection must not be dispatched. */
    server_answer(0);
    server_answer(1);
    ck_assert(run_until(&T.rec[0].calls, 1, DEADLINE_MS));
    ck_assert_ptr_null(T.client);
    ck_assert_int_eq(T.rec[0].status, FLINT_OK);
    ck_assert_int_eq(T.rec[1].calls, 1);
    ck_assert_int_eq(T.rec[1].status, FLINT_CLOSED);
    ck_assert_int_eq(T.client_closed, 0); /* rpc_close does not call on_close */
    ck_assert(run_until(&T.srv_closed, 1, DEADLINE_MS));
    run_for(20);
    ck_assert_int_eq(T.rec[1].calls, 1);
}
END_TEST

START_TEST(test_close_in_reply_callback_fails_others) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_HOLD;
    T.rec[0].close_conn = true;
    call(0, "a", 1, CALL_TIMEOUT_MS);
    call(1, "b", 1, CALL_TIMEOUT_MS);
    ck_assert(run_until(&T.nheld, 2, DEADLINE_MS));
    server_answer(0);
    ck_assert(run_until(&T.rec[0].calls, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[1].calls, 1);
    ck_assert_int_eq(T.rec[1].status, FLINT_CLOSED);
    ck_assert_int_eq(T.rec[1].order, 2);
    server_answer(1); /* to a closed peer: dropped */
    run_for(20);
    ck_assert_int_eq(T.rec[1].calls, 1);
}
END_TEST

START_TEST(test_close_in_timeout_callback) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_SILENT;
    T.rec[0].close_conn = true;
    call(0, "a", 1, 20);
    call(1, "b", 1, CALL_TIMEOUT_MS);
    ck_assert(run_until(&T.rec[0].calls, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[0].status, FLINT_TIMEOUT);
    ck_assert_int_eq(T.rec[1].calls, 1);
    ck_assert_int_eq(T.rec[1].status, FLINT_CLOSED);
    ck_assert_ptr_null(T.client);
    ck_assert(run_until(&T.srv_closed, 1, DEADLINE_MS));
}
END_TEST

START_TEST(test_close_in_open_callback) {
    T.close_in_open = true;
    rpc_handlers h = {.on_open = cli_open, .on_close = cli_close};
    flint_err err = {0};
    T.client = rpc_connect(T.base, "127.0.0.1", T.port, MAX_FRAME, &h, &err);
    ck_assert_ptr_nonnull(T.client);
    ck_assert(run_until(&T.opened, 1, DEADLINE_MS));
    ck_assert_ptr_null(T.client);
    ck_assert(run_until(&T.srv_closed, 1, DEADLINE_MS));
    ck_assert_int_eq(T.client_closed, 0);
}
END_TEST

START_TEST(test_close_in_message_callback) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_CLOSE;
    call(0, "a", 1, CALL_TIMEOUT_MS);
    beat b; /* written with the call: the server must not see it after closing */
    ck_assert_int_eq(rpc_send(T.client, beat_init(&b, "after-close")), 0);
    ck_assert(run_until(&T.rec[0].calls, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[0].status, FLINT_CLOSED);
    ck_assert(run_until(&T.client_closed, 1, DEADLINE_MS));
    ck_assert_int_eq(T.messages, 1);
    ck_assert_str_eq(T.last_resource_id, "a");
    ck_assert_int_eq(T.srv_closed, 0);
}
END_TEST

START_TEST(test_close_in_close_callback) {
    connect_client(MAX_FRAME);
    T.close_in_close = true;
    rpc_close(T.srv_conn);
    T.srv_conn = NULL;
    ck_assert(run_until(&T.client_closed, 1, DEADLINE_MS));
    run_for(20);
    ck_assert_int_eq(T.client_closed, 1);
}
END_TEST

START_TEST(test_server_free_closes_connections) {
    connect_client(MAX_FRAME);
    T.mode = SERVE_HOLD;
    call(0, "a", 1, CALL_TIMEOUT_MS);
    ck_assert(run_until(&T.nheld, 1, DEADLINE_MS));
    rpc_server_free(T.srv);
    T.srv = NULL;
    T.srv_conn = NULL;
    ck_assert(run_until(&T.client_closed, 1, DEADLINE_MS));
    ck_assert_int_eq(T.rec[0].status, FLINT_CLOSED);
}
END_TEST

/* ---- rpc_call_sync -------------------------------------------------------------------------- */

/* The test server's event loop, run by another thread while the main thread blocks. */
static atomic_bool server_stop;

static void wake_cb(evutil_socket_t fd, short what, void *arg) { (void)fd, (void)what, (void)arg; }

static void *server_thread(void *arg) {
    (void)arg;
    struct event *wake = event_new(T.base, -1, EV_PERSIST, wake_cb, NULL);
    struct timeval tv = {0, 10 * 1000};
    event_add(wake, &tv);
    while (!atomic_load(&server_stop)) event_base_loop(T.base, EVLOOP_ONCE);
    event_free(wake);
    return NULL;
}

/* rpc_call_sync against the test server running in a thread. */
static int sync_call(const char *resource_id, int64_t timeout_ms, rpc_envelope **reply,
                     flint_err *err) {
    pthread_t th;
    atomic_store(&server_stop, false);
    ck_assert_int_eq(pthread_create(&th, NULL, server_thread, NULL), 0);
    request r;
    int rc = rpc_call_sync("127.0.0.1", T.port, request_init(&r, resource_id, 3), timeout_ms,
                           MAX_FRAME, reply, err);
    atomic_store(&server_stop, true);
    pthread_join(th, NULL);
    return rc;
}

START_TEST(test_sync_ok) {
    rpc_envelope *reply = NULL;
    flint_err err = {0};
    int rc = sync_call("sync-1", 2000, &reply, &err);
    ck_assert_msg(rc == FLINT_OK, "%s", err.msg);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->body_case, FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER_RESPONSE);
    ck_assert_str_eq(reply->register_task_manager_response->jobmanager_id, "sync-1");
    ck_assert_int_eq(reply->register_task_manager_response->heartbeat_interval_ms, 3);
    rpc_envelope_free(reply);
}
END_TEST

START_TEST(test_sync_error_reply) {
    T.mode = SERVE_ERROR;
    rpc_envelope *reply = (rpc_envelope *)&reply; /* must be reset to NULL */
    flint_err err = {0};
    int rc = sync_call("job-7", 2000, &reply, &err);
    ck_assert_int_eq(rc, FLINT_NOT_FOUND);
    ck_assert_int_eq(err.code, FLINT_NOT_FOUND);
    ck_assert_ptr_null(reply);
    assert_contains(err.msg, "no job job-7");
}
END_TEST

START_TEST(test_sync_server_closes) {
    T.mode = SERVE_CLOSE;
    rpc_envelope *reply = NULL;
    flint_err err = {0};
    int64_t start = time_mono_ms();
    int rc = sync_call("x", 5000, &reply, &err);
    ck_assert_int_eq(rc, FLINT_CLOSED);
    ck_assert_int_lt(time_mono_ms() - start, 2000); /* noticed at once, not at the timeout */
    ck_assert_ptr_null(reply);
    assert_contains(err.msg, "closed");
}
END_TEST

START_TEST(test_sync_refused) {
    int port = closed_port();
    rpc_envelope *reply = NULL;
    flint_err err = {0};
    request r;
    int64_t start = time_mono_ms();
    int rc = rpc_call_sync("127.0.0.1", port, request_init(&r, "x", 1), 5000, MAX_FRAME, &reply, &err);
    ck_assert_int_eq(rc, FLINT_UNAVAILABLE);
    ck_assert_int_eq(err.code, FLINT_UNAVAILABLE);
    ck_assert_int_lt(time_mono_ms() - start, 2000);
    ck_assert_ptr_null(reply);
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    assert_contains(err.msg, want);
    assert_contains(err.msg, "refused");
}
END_TEST

START_TEST(test_sync_silent_peer) {
    int port;
    int lfd = raw_listen(&port); /* accepts (in the kernel) but never answers */
    rpc_envelope *reply = NULL;
    flint_err err = {0};
    request r;
    int64_t start = time_mono_ms();
    int rc = rpc_call_sync("127.0.0.1", port, request_init(&r, "x", 1), 100, MAX_FRAME, &reply, &err);
    int64_t took = time_mono_ms() - start;
    ck_assert_int_eq(rc, FLINT_TIMEOUT);
    ck_assert_int_ge(took, 90);
    ck_assert_int_lt(took, 2000);
    ck_assert_ptr_null(reply);
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    assert_contains(err.msg, want);
    close(lfd);
}
END_TEST

START_TEST(test_body_name) {
    beat b;
    ck_assert_str_eq(rpc_body_name(beat_init(&b, "x")), "heartbeat");
    rpc_envelope empty = FLINT__RPC__ENVELOPE__INIT;
    ck_assert_str_eq(rpc_body_name(&empty), "nothing");
    rpc_envelope_free(NULL);
}
END_TEST

static Suite *rpc_suite(void) {
    Suite *s = suite_create("rpc");

    TCase *tc = tcase_create("basics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_listen_and_connect);
    tcase_add_test(tc, test_listen_port_in_use);
    tcase_add_test(tc, test_call_and_reply);
    tcase_add_test(tc, test_send_one_way);
    tcase_add_test(tc, test_large_message);
    tcase_add_test(tc, test_body_name);
    suite_add_tcase(s, tc);

    tc = tcase_create("calls");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_replies_in_reverse_order);
    tcase_add_test(tc, test_replies_in_mixed_order);
    tcase_add_test(tc, test_reply_error);
    tcase_add_test(tc, test_reply_error_bad_code);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_late_reply_ignored);
    tcase_add_test(tc, test_timeouts_independent);
    suite_add_tcase(s, tc);

    tc = tcase_create("lost");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_server_close_fails_pending);
    tcase_add_test(tc, test_client_close_seen_by_server);
    tcase_add_test(tc, test_close_fails_own_pending);
    tcase_add_test(tc, test_connect_refused);
    tcase_add_test(tc, test_server_free_closes_connections);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_oversized_frame);
    tcase_add_test(tc, test_truncated_frame);
    tcase_add_test(tc, test_truncated_header);
    tcase_add_test(tc, test_undecodable_frame);
    tcase_add_test(tc, test_frame_without_body);
    tcase_add_test(tc, test_empty_frame);
    tcase_add_test(tc, test_good_frame_then_garbage);
    tcase_add_test(tc, test_client_gets_garbage);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_send_too_large);
    tcase_add_test(tc, test_receive_limit_exact);
    suite_add_tcase(s, tc);

    tc = tcase_create("close_in_callback");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_close_in_reply_callback);
    tcase_add_test(tc, test_close_in_reply_callback_fails_others);
    tcase_add_test(tc, test_close_in_timeout_callback);
    tcase_add_test(tc, test_close_in_open_callback);
    tcase_add_test(tc, test_close_in_message_callback);
    tcase_add_test(tc, test_close_in_close_callback);
    suite_add_tcase(s, tc);

    tc = tcase_create("sync");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_sync_ok);
    tcase_add_test(tc, test_sync_error_reply);
    tcase_add_test(tc, test_sync_server_closes);
    tcase_add_test(tc, test_sync_refused);
    tcase_add_test(tc, test_sync_silent_peer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    /* A peer that closes while we write must give EPIPE, not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(rpc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
