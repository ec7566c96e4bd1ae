/* Unit tests of the jobmanager's resource manager: registration, slots and the heartbeat timeout
 * logic, driven with explicit times (no sockets, no clocks). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jm_rm.h"
#include "util/log.h"

static Flint__Rpc__RegisterTaskManager reg(const char *id, unsigned slots) {
    Flint__Rpc__RegisterTaskManager m = FLINT__RPC__REGISTER_TASK_MANAGER__INIT;
    m.resource_id = (char *)id;
    m.host = "10.0.0.1";
    m.data_port = 4000;
    m.num_slots = slots;
    return m;
}

/* Fake connections: only their identity matters to the resource manager. */
static rpc_conn *fake_conn(int n) { return (rpc_conn *)(intptr_t)(0x1000 + n); }

START_TEST(register_counts_slots) {
    jm_rm *rm = jm_rm_new(1000);
    rpc_conn *replaced;
    Flint__Rpc__RegisterTaskManager a = reg("tm-a", 2), b = reg("tm-b", 3);
    ck_assert_int_eq(jm_rm_register(rm, &a, fake_conn(1), 0, &replaced, NULL), 0);
    ck_assert_ptr_null(replaced);
    ck_assert_int_eq(jm_rm_register(rm, &b, fake_conn(2), 0, &replaced, NULL), 0);
    ck_assert_int_eq(jm_rm_count(rm), 2);
    ck_assert_int_eq(jm_rm_slots_total(rm), 5);
    ck_assert_int_eq(jm_rm_slots_free(rm), 5);
    ck_assert_str_eq(jm_rm_get(rm, 0)->resource_id, "tm-a");
    ck_assert_ptr_eq(jm_rm_find_conn(rm, fake_conn(2)), jm_rm_find(rm, "tm-b"));
    jm_rm_free(rm);
}
END_TEST

START_TEST(reregistration_replaces_connection) {
    jm_rm *rm = jm_rm_new(1000);
    rpc_conn *replaced;
    Flint__Rpc__RegisterTaskManager a = reg("tm-a", 2);
    jm_rm_register(rm, &a, fake_conn(1), 0, &replaced, NULL);
    a.num_slots = 4;
    ck_assert_int_eq(jm_rm_register(rm, &a, fake_conn(7), 10, &replaced, NULL), 0);
    ck_assert_ptr_eq(replaced, fake_conn(1));
    ck_assert_int_eq(jm_rm_count(rm), 1);
    ck_assert_int_eq(jm_rm_slots_total(rm), 4);
    ck_assert_ptr_null(jm_rm_find_conn(rm, fake_conn(1)));
    jm_rm_free(rm);
}
END_TEST

START_TEST(invalid_registrations_are_refused) {
    jm_rm *rm = jm_rm_new(1000);
    rpc_conn *replaced;
    flint_err err = {0};
    Flint__Rpc__RegisterTaskManager m = reg("", 2);
    ck_assert_int_eq(jm_rm_register(rm, &m, fake_conn(1), 0, &replaced, &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "resource_id"));
    m = reg("tm", 0);
    ck_assert_int_eq(jm_rm_register(rm, &m, fake_conn(1), 0, &replaced, &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "slots"));
    m = reg("tm", 1);
    m.data_port = 70000;
    ck_assert_int_eq(jm_rm_register(rm, &m, fake_conn(1), 0, &replaced, &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "port"));
    m = reg("tm", 1);
    m.host = NULL;
    ck_assert_int_eq(jm_rm_register(rm, &m, fake_conn(1), 0, &replaced, &err), FLINT_INVALID);
    ck_assert_int_eq(jm_rm_count(rm), 0);
    jm_rm_free(rm);
}
END_TEST

static int expired_seen;
static void on_expired(jm_tm *tm, void *ud) {
    (void)ud;
    ck_assert_str_eq(tm->resource_id, "tm-a");
    expired_seen++;
}

START_TEST(heartbeat_timeout_drops_silent_taskmanager) {
    jm_rm *rm = jm_rm_new(1000);
    rpc_conn *replaced;
    Flint__Rpc__RegisterTaskManager a = reg("tm-a", 1), b = reg("tm-b", 1);
    jm_rm_register(rm, &a, fake_conn(1), 0, &replaced, NULL);
    jm_rm_register(rm, &b, fake_conn(2), 0, &replaced, NULL);
    /* b keeps heartbeating, a falls silent. */
    ck_assert_int_eq(jm_rm_heartbeat(rm, "tm-b", 600), 0);
    ck_assert_int_eq(jm_rm_expire(rm, 1000, on_expired, NULL), 0); /* exactly at the timeout: kept */
    ck_assert_int_eq(jm_rm_heartbeat(rm, "tm-b", 1200), 0);
    expired_seen = 0;
    ck_assert_int_eq(jm_rm_expire(rm, 1001, on_expired, NULL), 1);
    ck_assert_int_eq(expired_seen, 1);
    ck_assert_int_eq(jm_rm_count(rm), 1);
    ck_assert_ptr_null(jm_rm_find(rm, "tm-a"));
    ck_assert_int_eq(jm_rm_heartbeat(rm, "tm-a", 1100), FLINT_NOT_FOUND);
    /* b last beat at 1200: alive at 2200, gone at 2201. */
    ck_assert_int_eq(jm_rm_expire(rm, 2200, NULL, NULL), 0);
    ck_assert_int_eq(jm_rm_expire(rm, 2201, NULL, NULL), 1);
    ck_assert_int_eq(jm_rm_count(rm), 0);
    jm_rm_free(rm);
}
END_TEST

START_TEST(heartbeats_keep_taskmanager_alive) {
    jm_rm *rm = jm_rm_new(500);
    rpc_conn *replaced;
    Flint__Rpc__RegisterTaskManager a = reg("tm-a", 1);
    jm_rm_register(rm, &a, fake_conn(1), 0, &replaced, NULL);
    for (int64_t t = 100; t <= 10000; t += 400) {
        ck_assert_int_eq(jm_rm_heartbeat(rm, "tm-a", t), 0);
        ck_assert_int_eq(jm_rm_expire(rm, t + 450, NULL, NULL), 0);
    }
    ck_assert_int_eq(jm_rm_count(rm), 1);
    jm_rm_free(rm);
}
END_TEST

START_TEST(unregister_unknown_is_not_found) {
    jm_rm *rm = jm_rm_new(500);
    ck_assert_int_eq(jm_rm_unregister(rm, "nobody", "test"), FLINT_NOT_FOUND);
    jm_rm_free(rm);
}
END_TEST

int main(void) {
    log_set_level(LOG_ERROR);
    Suite *s = suite_create("jm_rm");
    TCase *tc = tcase_create("registration");
    tcase_add_test(tc, register_counts_slots);
    tcase_add_test(tc, reregistration_replaces_connection);
    tcase_add_test(tc, invalid_registrations_are_refused);
    tcase_add_test(tc, unregister_unknown_is_not_found);
    suite_add_tcase(s, tc);
    tc = tcase_create("heartbeats");
    tcase_add_test(tc, heartbeat_timeout_drops_silent_taskmanager);
    tcase_add_test(tc, heartbeats_keep_taskmanager_alive);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
