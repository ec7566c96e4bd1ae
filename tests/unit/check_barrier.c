/* Unit tests for checkpoint barriers on the taskmanager (taskmanager/checkpoint/cp_barrier.h and
 * the per-channel blocking of tm_input): the barrier payload, alignment in EXACTLY_ONCE (only the
 * channels that delivered the barrier are blocked, the snapshot comes with the last one), the
 * barrier tracker of AT_LEAST_ONCE (nothing blocked), newer barriers subsuming an alignment,
 * aborts, stale and duplicate barriers, channels that end (end of partition) before delivering
 * a barrier -- or after their end of data, counting as every later barrier --, and blocked
 * channels over real local and remote input channels: a blocked channel's records wait (in its
 * own buffers) while the others flow, and come after the unblock in order; each channel's end is
 * reported. */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/cp_barrier.h"
#include "config/config.h"
#include "network/tm_net.h"
#include "util/log.h"
#include "util/timeutil.h"

static tm_barrier mkb(int64_t id) {
    tm_barrier b;
    memset(&b, 0, sizeof b);
    b.checkpoint_id = id;
    b.timestamp = 1700000000000 + id;
    b.type = 0;
    b.mode = 0;
    snprintf(b.target, sizeof b.target, "/cp/job/chk-%lld", (long long)id);
    snprintf(b.shared, sizeof b.shared, "/cp/job/shared");
    return b;
}

/* ---- the payload ---------------------------------------------------------------------------- */

START_TEST(test_codec) {
    tm_barrier b = mkb(42), c;
    b.type = 2;
    b.mode = 1;
    uint8_t buf[TM_BARRIER_MAX];
    size_t n = tm_barrier_encode(&b, buf);
    ck_assert_uint_eq(n, 22 + strlen(b.target) + strlen(b.shared));
    ck_assert(tm_barrier_decode(buf, n, &c));
    ck_assert_int_eq(c.checkpoint_id, 42);
    ck_assert_int_eq(c.timestamp, b.timestamp);
    ck_assert_int_eq(c.type, 2);
    ck_assert_int_eq(c.mode, 1);
    ck_assert_str_eq(c.target, b.target);
    ck_assert_str_eq(c.shared, b.shared);
    /* truncated, too long, a bad id, a bad type */
    ck_assert(!tm_barrier_decode(buf, n - 1, &c));
    ck_assert(!tm_barrier_decode(buf, 10, &c));
    uint8_t big[TM_BARRIER_MAX + 1];
    memcpy(big, buf, n);
    big[n] = 0;
    ck_assert(!tm_barrier_decode(big, n + 1, &c));
    tm_barrier z = mkb(0);
    n = tm_barrier_encode(&z, buf);
    ck_assert(!tm_barrier_decode(buf, n, &c));
    b.type = 9;
    n = tm_barrier_encode(&b, buf);
    ck_assert(!tm_barrier_decode(buf, n, &c));
    /* a savepoint without shared directory */
    tm_barrier s = mkb(7);
    s.type = 1;
    s.shared[0] = '\0';
    n = tm_barrier_encode(&s, buf);
    ck_assert(tm_barrier_decode(buf, n, &c));
    ck_assert_str_eq(c.shared, "");
}
END_TEST

/* ---- alignment ------------------------------------------------------------------------------ */

START_TEST(test_exactly_once_aligns) {
    tm_aligner a;
    tm_aligner_init(&a, 3, true);
    tm_barrier b = mkb(1);
    tm_align_result r = tm_aligner_on_barrier(&a, 0, &b, 1000);
    ck_assert(r.block && !r.trigger && !r.unblock_all && !r.aborted);
    ck_assert_int_eq(tm_aligner_pending(&a), 1);
    r = tm_aligner_on_barrier(&a, 2, &b, 3000);
    ck_assert(r.block && !r.trigger);
    /* a duplicate from a blocked channel changes nothing */
    r = tm_aligner_on_barrier(&a, 0, &b, 3500);
    ck_assert(!r.block && !r.trigger && !r.unblock_all);
    r = tm_aligner_on_barrier(&a, 1, &b, 9000);
    ck_assert(r.trigger && r.unblock_all && !r.block);
    ck_assert_int_eq(r.alignment_ns, 8000);
    ck_assert_int_eq(tm_aligner_pending(&a), 0);
    /* the same checkpoint again (a stale barrier) is ignored */
    r = tm_aligner_on_barrier(&a, 1, &b, 9500);
    ck_assert(!r.block && !r.trigger && !r.unblock_all);
    /* the next one aligns from scratch */
    tm_barrier b2 = mkb(2);
    r = tm_aligner_on_barrier(&a, 1, &b2, 10000);
    ck_assert(r.block && !r.trigger);
    r = tm_aligner_on_barrier(&a, 0, &b2, 10000);
    r = tm_aligner_on_barrier(&a, 2, &b2, 12000);
    ck_assert(r.trigger && r.unblock_all);
    ck_assert_int_eq(r.alignment_ns, 2000);
    tm_aligner_free(&a);
}
END_TEST

START_TEST(test_single_channel) {
    tm_aligner a;
    tm_aligner_init(&a, 1, true);
    tm_barrier b = mkb(5);
    tm_align_result r = tm_aligner_on_barrier(&a, 0, &b, 1);
    ck_assert(r.trigger && !r.block && !r.unblock_all);
    ck_assert_int_eq(r.alignment_ns, 0);
    tm_aligner_free(&a);
}
END_TEST

START_TEST(test_newer_barrier_subsumes) {
    tm_aligner a;
    tm_aligner_init(&a, 3, true);
    tm_barrier b1 = mkb(1), b2 = mkb(2);
    tm_align_result r = tm_aligner_on_barrier(&a, 0, &b1, 0);
    ck_assert(r.block);
    /* checkpoint 2 overtakes on channel 1: 1 is given up, everything unblocked, 1 blocks */
    r = tm_aligner_on_barrier(&a, 1, &b2, 10);
    ck_assert_int_eq(r.aborted, 1);
    ck_assert(r.unblock_all && r.block && !r.trigger);
    ck_assert_int_eq(tm_aligner_pending(&a), 2);
    /* late barriers of 1 are ignored */
    r = tm_aligner_on_barrier(&a, 1, &b1, 20);
    ck_assert(!r.block && !r.trigger && !r.aborted && !r.unblock_all);
    r = tm_aligner_on_barrier(&a, 2, &b1, 20);
    ck_assert(!r.block && !r.trigger);
    r = tm_aligner_on_barrier(&a, 0, &b2, 30);
    ck_assert(r.block && !r.trigger);
    r = tm_aligner_on_barrier(&a, 2, &b2, 40);
    ck_assert(r.trigger && r.unblock_all);
    ck_assert_int_eq(r.alignment_ns, 30);
    tm_aligner_free(&a);
}
END_TEST

START_TEST(test_abort) {
    tm_aligner a;
    tm_aligner_init(&a, 2, true);
    tm_barrier b3 = mkb(3), b5 = mkb(5), b6 = mkb(6);
    ck_assert(tm_aligner_on_barrier(&a, 0, &b3, 0).block);
    ck_assert_int_eq(tm_aligner_abort(&a, 4), 0);    /* not the pending one */
    ck_assert_int_eq(tm_aligner_pending(&a), 3);
    ck_assert_int_eq(tm_aligner_abort(&a, 3), 3);    /* notified aborted: unblock */
    ck_assert_int_eq(tm_aligner_pending(&a), 0);
    tm_align_result r = tm_aligner_on_barrier(&a, 1, &b3, 5);
    ck_assert(!r.block && !r.trigger);               /* its late barrier is ignored */
    /* aborted before any barrier of it arrived: its barriers never start an alignment */
    ck_assert_int_eq(tm_aligner_abort(&a, 5), 0);
    r = tm_aligner_on_barrier(&a, 0, &b5, 6);
    ck_assert(!r.block && !r.trigger);
    r = tm_aligner_on_barrier(&a, 1, &b5, 6);
    ck_assert(!r.block && !r.trigger);
    /* abort of whatever is pending (end of input, cancel) */
    ck_assert(tm_aligner_on_barrier(&a, 1, &b6, 7).block);
    ck_assert_int_eq(tm_aligner_abort(&a, 0), 6);
    ck_assert_int_eq(tm_aligner_abort(&a, 0), 0);
    tm_aligner_free(&a);
}
END_TEST

START_TEST(test_at_least_once) {
    tm_aligner a;
    tm_aligner_init(&a, 3, false);
    tm_barrier b = mkb(1), b2 = mkb(2);
    tm_align_result r = tm_aligner_on_barrier(&a, 2, &b, 100);
    ck_assert(!r.block && !r.trigger && !r.unblock_all);
    r = tm_aligner_on_barrier(&a, 0, &b, 200);
    ck_assert(!r.block && !r.trigger);
    r = tm_aligner_on_barrier(&a, 1, &b, 700);
    ck_assert(r.trigger && !r.block && !r.unblock_all);
    ck_assert_int_eq(r.alignment_ns, 600);
    /* a newer one subsumes a pending one here too, without blocking */
    r = tm_aligner_on_barrier(&a, 0, &b2, 800);
    tm_barrier b3 = mkb(3);
    r = tm_aligner_on_barrier(&a, 1, &b3, 900);
    ck_assert_int_eq(r.aborted, 2);
    ck_assert(!r.block && !r.trigger);
    tm_aligner_free(&a);
}
END_TEST

/* A source subtask finished (its channel ended) without the barrier another one already sent:
 * the alignment is given up at once and the blocked channels go on, instead of waiting forever. */
START_TEST(test_channel_end_during_alignment) {
    tm_aligner a;
    tm_aligner_init(&a, 3, true);
    tm_barrier b4 = mkb(4), b5 = mkb(5);
    ck_assert(tm_aligner_on_barrier(&a, 0, &b4, 0).block);
    tm_align_result r = tm_aligner_on_end(&a, 2, 10);
    ck_assert_int_eq(r.ended, 4);
    ck_assert(r.unblock_all && !r.trigger && !r.block && !r.aborted);
    ck_assert_int_eq(tm_aligner_pending(&a), 0);
    r = tm_aligner_on_barrier(&a, 1, &b4, 20);   /* a late barrier of it is ignored */
    ck_assert(!r.block && !r.trigger && !r.ended);
    r = tm_aligner_on_end(&a, 2, 30);            /* a second end changes nothing */
    ck_assert(!r.ended && !r.unblock_all);
    /* a later checkpoint cannot align either: given up with its first barrier, nothing blocked */
    r = tm_aligner_on_barrier(&a, 0, &b5, 40);
    ck_assert_int_eq(r.ended, 5);
    ck_assert(!r.block && !r.trigger && !r.aborted);
    ck_assert_int_eq(tm_aligner_pending(&a), 0);
    r = tm_aligner_on_barrier(&a, 1, &b5, 50);
    ck_assert(!r.block && !r.trigger && !r.ended);
    tm_aligner_free(&a);
}
END_TEST

/* A channel that delivered the barrier and then ended owes nothing (possible in AT_LEAST_ONCE,
 * where it is not blocked): the checkpoint completes; the next one cannot. */
START_TEST(test_channel_end_after_barrier) {
    tm_aligner a;
    tm_aligner_init(&a, 2, false);
    tm_barrier b1 = mkb(1), b2 = mkb(2);
    ck_assert(!tm_aligner_on_barrier(&a, 0, &b1, 0).trigger);
    tm_align_result r = tm_aligner_on_end(&a, 0, 5);
    ck_assert(!r.ended && !r.unblock_all);
    ck_assert_int_eq(tm_aligner_pending(&a), 1);
    r = tm_aligner_on_barrier(&a, 1, &b1, 10);
    ck_assert(r.trigger && !r.ended);
    r = tm_aligner_on_barrier(&a, 1, &b2, 20);
    ck_assert_int_eq(r.ended, 2);
    ck_assert(!r.trigger && !r.unblock_all);
    tm_aligner_free(&a);
}
END_TEST

/* Checkpoints after tasks finish: a channel that delivered its end of data and then ended counts
 * as having delivered the pending barrier and every later one. */
START_TEST(test_end_of_data_counts_as_barrier) {
    tm_aligner a;
    tm_aligner_init(&a, 3, true);
    tm_barrier b1 = mkb(1), b2 = mkb(2), b3 = mkb(3);
    tm_aligner_on_end_of_data(&a, 2);
    tm_align_result r = tm_aligner_on_end(&a, 2, 0);   /* before any barrier */
    ck_assert(!r.ended && !r.trigger && !r.unblock_all);
    ck_assert(tm_aligner_on_barrier(&a, 0, &b1, 10).block);
    r = tm_aligner_on_barrier(&a, 1, &b1, 30);
    ck_assert(r.trigger && r.unblock_all && !r.ended);
    ck_assert_int_eq(r.alignment_ns, 20);
    /* the last channel owing the barrier ends after its end of data: aligned */
    ck_assert(tm_aligner_on_barrier(&a, 0, &b2, 40).block);
    tm_aligner_on_end_of_data(&a, 1);
    r = tm_aligner_on_end(&a, 1, 45);
    ck_assert(r.trigger && r.unblock_all && !r.block && !r.ended);
    ck_assert_int_eq(r.alignment_ns, 5);
    ck_assert_int_eq(tm_aligner_pending(&a), 0);
    /* one live channel left: its barrier aligns at once */
    r = tm_aligner_on_barrier(&a, 0, &b3, 50);
    ck_assert(r.trigger && !r.block && !r.ended);
    tm_aligner_free(&a);
}
END_TEST

/* A trigger for a task whose upstream tasks all finished: each channel counts at its end of
 * partition (after the records still in it); at once when all ended; never blocks. */
START_TEST(test_trigger_after_upstream_finished) {
    tm_aligner a;
    tm_aligner_init(&a, 2, true);
    tm_barrier b1 = mkb(1), b2 = mkb(2), b3 = mkb(3);
    tm_aligner_on_end_of_data(&a, 0);
    tm_aligner_on_end_of_data(&a, 1);
    ck_assert(!tm_aligner_on_end(&a, 0, 0).trigger);
    tm_align_result r = tm_aligner_on_trigger(&a, &b1, 10);
    ck_assert(!r.trigger && !r.block && !r.ended && !r.aborted);
    ck_assert_int_eq(tm_aligner_pending(&a), 1);
    r = tm_aligner_on_end(&a, 1, 25);   /* the last channel's end: aligned */
    ck_assert(r.trigger && !r.block && !r.ended);
    ck_assert_int_eq(r.alignment_ns, 15);
    r = tm_aligner_on_trigger(&a, &b2, 30);   /* everything ended: at once */
    ck_assert(r.trigger && !r.ended);
    r = tm_aligner_on_trigger(&a, &b1, 40);   /* older than one seen */
    ck_assert(!r.trigger && r.aborted == 1);
    tm_aligner_free(&a);
    /* a channel that ended without end of data can never deliver it */
    tm_aligner_init(&a, 2, true);
    tm_aligner_on_end(&a, 0, 0);
    r = tm_aligner_on_trigger(&a, &b3, 10);
    ck_assert(!r.trigger && r.ended == 3);
    tm_aligner_free(&a);
}
END_TEST

/* ---- blocked channels over real inputs ---------------------------------------------------------- */

static tm_net *mknet(const char *rid, int *port) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    tm_net *n = tm_net_new(cfg, rid, &err);
    config_free(cfg);
    ck_assert_msg(n != NULL, "tm_net_new: %s", err.msg);
    if (port) {
        *port = tm_net_listen(n, "127.0.0.1", 0, &err);
        ck_assert_msg(*port > 0, "tm_net_listen: %s", err.msg);
    }
    return n;
}

/* The next element within 10 s (FLINT_OK), or the input's status. */
static int next(tm_input *in, tm_waker *w, tm_element *el, int64_t wait_ms) {
    int64_t deadline = time_mono_ms() + wait_ms;
    for (;;) {
        int rc = tm_input_next(in, el);
        if (rc != FLINT_UNAVAILABLE) return rc;
        if (time_mono_ms() >= deadline) return FLINT_UNAVAILABLE;
        tm_waker_wait(w, time_mono_ms() + 20);
    }
}

static void emit(tm_writer *w, uint32_t v) {
    ck_assert_int_eq(tm_writer_emit(w, 0, TM_ELEM_RECORD, &v, 4), FLINT_OK);
}

static void blocked_channels(bool remote) {
    int port = 0;
    tm_net *a = mknet("tmA", remote ? &port : NULL);
    tm_net *b = remote ? mknet("tmB", NULL) : a;
    flint_err err = {0};
    tm_partition *p0 = tm_partition_create(a, "j.e.0.0", 1, &err), *p1 = tm_partition_create(a, "j.e.1.0", 1, &err);
    ck_assert(p0 && p1);
    tm_waker *pw = tm_waker_new(), *cw = tm_waker_new();
    tm_input *in = tm_input_new(b, cw);
    tm_channel_desc d[2] = {{"j.e.0.0", 0, "tmA", "127.0.0.1", port}, {"j.e.1.0", 0, "tmA", "127.0.0.1", port}};
    tm_input_add_gate(in, 2, d);
    ck_assert_int_eq(tm_input_start(in, &err), FLINT_OK);
    ck_assert_int_eq(tm_input_channel_count(in, 0), 2);
    tm_writer *w0 = tm_writer_new(p0, 0, pw), *w1 = tm_writer_new(p1, 0, pw);
    /* channel 0: 1, 2, barrier, 3, 4; channel 1 sends later */
    emit(w0, 1);
    emit(w0, 2);
    tm_barrier bar = mkb(1);
    uint8_t payload[TM_BARRIER_MAX];
    size_t plen = tm_barrier_encode(&bar, payload);
    ck_assert_int_eq(tm_writer_event(w0, TM_EVENT_CHECKPOINT_BARRIER, payload, (uint32_t)plen), FLINT_OK);
    emit(w0, 3);
    emit(w0, 4);
    tm_writer_flush(w0);
    tm_element el;
    uint32_t v;
    for (uint32_t want = 1; want <= 2; want++) {
        ck_assert_int_eq(next(in, cw, &el, 10000), FLINT_OK);
        ck_assert_int_eq(el.kind, TM_ELEM_RECORD);
        ck_assert_int_eq(el.channel, 0);
        memcpy(&v, el.data, 4);
        ck_assert_uint_eq(v, want);
    }
    ck_assert_int_eq(next(in, cw, &el, 10000), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_EVENT);
    ck_assert_int_eq(el.channel, 0);
    uint32_t type;
    memcpy(&type, el.data, 4);
    ck_assert_uint_eq(type, TM_EVENT_CHECKPOINT_BARRIER);
    tm_barrier got;
    ck_assert(tm_barrier_decode(el.data + 4, el.len - 4, &got));
    ck_assert_int_eq(got.checkpoint_id, 1);
    /* aligning: channel 0 is blocked; its 3 and 4 wait, channel 1 flows */
    tm_input_block(in, 0, 0);
    ck_assert_int_eq(next(in, cw, &el, 300), FLINT_UNAVAILABLE);
    emit(w1, 100);
    emit(w1, 101);
    tm_writer_flush(w1);
    for (uint32_t want = 100; want <= 101; want++) {
        ck_assert_int_eq(next(in, cw, &el, 10000), FLINT_OK);
        ck_assert_int_eq(el.channel, 1);
        memcpy(&v, el.data, 4);
        ck_assert_uint_eq(v, want);
    }
    ck_assert_int_eq(tm_writer_event(w1, TM_EVENT_CHECKPOINT_BARRIER, payload, (uint32_t)plen), FLINT_OK);
    emit(w1, 102);
    tm_writer_flush(w1);
    ck_assert_int_eq(next(in, cw, &el, 10000), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_EVENT);
    ck_assert_int_eq(el.channel, 1);
    /* aligned: unblock; both channels' records after their barriers arrive, each in order */
    tm_input_unblock_all(in);
    uint32_t next0 = 3, next1 = 102;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(next(in, cw, &el, 10000), FLINT_OK);
        ck_assert_int_eq(el.kind, TM_ELEM_RECORD);
        memcpy(&v, el.data, 4);
        if (el.channel == 0) ck_assert_uint_eq(v, next0++);
        else ck_assert_uint_eq(v, next1++);
    }
    ck_assert_uint_eq(next0, 5);
    ck_assert_uint_eq(next1, 103);
    /* ends: a blocked channel's end of partition waits for the unblock too */
    tm_input_block(in, 0, 1);
    ck_assert_int_eq(tm_writer_event(w0, TM_EVENT_END_OF_PARTITION, NULL, 0), FLINT_OK);
    ck_assert_int_eq(tm_writer_event(w1, TM_EVENT_END_OF_PARTITION, NULL, 0), FLINT_OK);
    /* each channel's end is reported: channel 0's alone, the blocked one's (the last) as the
     * gate's end once it is unblocked */
    ck_assert_int_eq(next(in, cw, &el, 10000), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_CHANNEL_END);
    ck_assert_int_eq(el.gate, 0);
    ck_assert_int_eq(el.channel, 0);
    ck_assert_int_eq(next(in, cw, &el, 300), FLINT_UNAVAILABLE);
    tm_input_unblock_all(in);
    ck_assert_int_eq(next(in, cw, &el, 10000), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_GATE_END);
    ck_assert_int_eq(el.channel, -1);
    ck_assert_int_eq(next(in, cw, &el, 10000), FLINT_CLOSED);

    tm_input_free(in);
    tm_writer_free(w0);
    tm_writer_free(w1);
    tm_partition_release(p0, false);
    tm_partition_release(p1, false);
    tm_waker_free(pw);
    tm_waker_free(cw);
    if (remote) tm_net_free(b);
    tm_net_free(a);
}

START_TEST(test_blocked_local) { blocked_channels(false); }
END_TEST

START_TEST(test_blocked_remote) { blocked_channels(true); }
END_TEST

static Suite *barrier_suite(void) {
    Suite *s = suite_create("barrier");
    TCase *tc = tcase_create("aligner");
    tcase_add_test(tc, test_codec);
    tcase_add_test(tc, test_exactly_once_aligns);
    tcase_add_test(tc, test_single_channel);
    tcase_add_test(tc, test_newer_barrier_subsumes);
    tcase_add_test(tc, test_abort);
    tcase_add_test(tc, test_at_least_once);
    tcase_add_test(tc, test_channel_end_during_alignment);
    tcase_add_test(tc, test_channel_end_after_barrier);
    tcase_add_test(tc, test_end_of_data_counts_as_barrier);
    tcase_add_test(tc, test_trigger_after_upstream_finished);
    suite_add_tcase(s, tc);
    tc = tcase_create("input");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_blocked_local);
    tcase_add_test(tc, test_blocked_remote);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    log_init("check_barrier", NULL, LOG_WARN);
    SRunner *sr = srunner_create(barrier_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
