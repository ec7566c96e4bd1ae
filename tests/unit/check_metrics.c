/* Unit tests for common/metrics: counters and gauges, meters (a rate over a window), histograms
 * (window statistics), metric dumps and their protobuf form, name filtering, process metrics, and
 * the Prometheus writer (families, HELP/TYPE, label escaping, summaries). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "metrics/metrics_proto.h"

START_TEST(test_counter_gauge) {
    metric_counter c;
    metric_counter_init(&c);
    for (int i = 0; i < 1000; i++) metric_counter_inc(&c);
    metric_counter_add(&c, 24);
    ck_assert_int_eq(metric_counter_get(&c), 1024);
    metric_gauge g;
    metric_gauge_init(&g, INT64_MIN);
    ck_assert(metric_gauge_get(&g) == INT64_MIN);
    metric_gauge_set(&g, 42);
    ck_assert_int_eq(metric_gauge_get(&g), 42);
}
END_TEST

START_TEST(test_meter_rate_over_window) {
    metric_meter m;
    metric_meter_init(&m, 5000);
    const int64_t s = 1000000000LL;
    ck_assert(metric_meter_update(&m, 0, 0) == 0);            /* one sample: no rate */
    ck_assert(fabs(metric_meter_update(&m, 100, s) - 100) < 1e-9);
    for (int i = 2; i <= 10; i++) metric_meter_update(&m, 100 * i, i * s);
    ck_assert(fabs(metric_meter_rate(&m) - 100) < 1e-9);
    /* the rate changes: after a window at 1000/s only the new rate counts */
    int64_t count = 1000;
    for (int i = 11; i <= 20; i++) metric_meter_update(&m, count += 1000, i * s);
    ck_assert_msg(fabs(metric_meter_rate(&m) - 1000) < 1e-9, "rate %f", metric_meter_rate(&m));
    /* more samples than slots: still right */
    for (int i = 21; i <= 200; i++) metric_meter_update(&m, count += 10, i * s);
    ck_assert_msg(fabs(metric_meter_rate(&m) - 10) < 1e-9, "rate %f", metric_meter_rate(&m));
    /* a count that does not grow: 0 */
    for (int i = 201; i <= 210; i++) metric_meter_update(&m, count, i * s);
    ck_assert(metric_meter_rate(&m) == 0);
}
END_TEST

START_TEST(test_histogram_stats) {
    metric_histogram h;
    metric_histogram_init(&h, 100);
    metric_hist_stats st;
    metric_histogram_stats(&h, &st);
    ck_assert_int_eq(st.count, 0);
    for (int i = 1; i <= 100; i++) metric_histogram_update(&h, i);
    metric_histogram_stats(&h, &st);
    ck_assert_int_eq(st.count, 100);
    ck_assert(st.min == 1 && st.max == 100);
    ck_assert(fabs(st.mean - 50.5) < 1e-9);
    ck_assert(fabs(st.p50 - 50.5) < 1e-9);
    ck_assert(st.p99 > 98 && st.p99 <= 100);
    /* the window keeps the last 100 values */
    for (int i = 0; i < 100; i++) metric_histogram_update(&h, 1000);
    metric_histogram_stats(&h, &st);
    ck_assert_int_eq(st.count, 200);
    ck_assert(st.min == 1000 && st.max == 1000 && st.stddev == 0);
    metric_histogram_destroy(&h);
}
END_TEST

START_TEST(test_set_and_proto_roundtrip) {
    metric_set s, back;
    metric_set_init(&s);
    metric_set_init(&back);
    metric_set_add(&s, NULL, "numRecordsIn", METRIC_KIND_COUNTER, 7);
    metric_set_add(&s, "Source: lines", "numRecordsOut", METRIC_KIND_COUNTER, 9);
    metric_hist_stats st = {.count = 3, .min = 1, .max = 5, .mean = 3, .p50 = 3, .p99 = 5};
    metric_set_add_hist(&s, NULL, "mailboxLatencyMs", &st);
    size_t n;
    Flint__Rpc__MetricValue **p = metric_set_to_proto(&s, &n);
    ck_assert_int_eq(n, 3);
    metric_set_from_proto(&back, p, n);
    metric_proto_free(p, n);
    ck_assert_int_eq(back.n, 3);
    const metric_value *v = metric_set_find(&back, "Source: lines", "numRecordsOut");
    ck_assert_ptr_nonnull(v);
    ck_assert(v->value == 9 && v->kind == METRIC_KIND_COUNTER);
    ck_assert_ptr_null(metric_set_find(&back, NULL, "numRecordsOut"));   /* scoped to its operator */
    v = metric_set_find(&back, NULL, "mailboxLatencyMs");
    ck_assert(v && v->kind == METRIC_KIND_HISTOGRAM && v->hist.count == 3 && v->hist.p99 == 5);
    metric_set_clear(&s);
    metric_set_clear(&back);
}
END_TEST

START_TEST(test_name_filter_and_help) {
    char buf[64];
    metric_name_filter("Source: lines -> Map", buf, sizeof buf);
    ck_assert_str_eq(buf, "Source__lines_-__Map");
    metric_name_filter("abcdef", buf, 4);
    ck_assert_str_eq(buf, "abc");
    ck_assert(strstr(metric_help("numRecordsIn"), "records") != NULL);
    ck_assert_ptr_nonnull(metric_help("no.such.metric"));
}
END_TEST

START_TEST(test_process_sample) {
    metric_process p = {0};
    metric_process_sample(&p);
    ck_assert(p.rss_bytes > 0);
    ck_assert(p.threads >= 1);
    ck_assert(p.cpu_cores >= 1);
}
END_TEST

START_TEST(test_prometheus_writer) {
    prom_writer *w = prom_new();
    metric_value a = {.name = "numRecordsIn", .kind = METRIC_KIND_COUNTER, .value = 5};
    metric_value b = {.name = "Status.CPU.Load", .kind = METRIC_KIND_GAUGE, .value = 0.25};
    metric_value h = {.name = "mailboxLatencyMs", .kind = METRIC_KIND_HISTOGRAM, .value = 2,
                      .hist = {.count = 2, .mean = 3, .p50 = 3, .p99 = 4}};
    prom_label l1[] = {{"job_name", "a \"quoted\" \\ name\nx"}, {"subtask_index", "0"}};
    prom_label l2[] = {{"job_name", "b"}, {"subtask_index", "1"}};
    prom_add(w, "taskmanager_job_task", &a, l1, 2);
    prom_add(w, "taskmanager", &b, NULL, 0);
    prom_add(w, "taskmanager_job_task", &a, l2, 2);   /* same family: written together */
    prom_add(w, "taskmanager_job_task", &h, l2, 2);
    size_t len;
    char *t = prom_finish(w, &len);
    ck_assert_uint_eq(strlen(t), len);
    const char *want =
        "# HELP flint_taskmanager_job_task_numRecordsIn The total number of records this task or operator has received.\n"
        "# TYPE flint_taskmanager_job_task_numRecordsIn counter\n"
        "flint_taskmanager_job_task_numRecordsIn{job_name=\"a \\\"quoted\\\" \\\\ name\\nx\",subtask_index=\"0\"} 5\n"
        "flint_taskmanager_job_task_numRecordsIn{job_name=\"b\",subtask_index=\"1\"} 5\n";
    ck_assert_msg(strncmp(t, want, strlen(want)) == 0, "got:\n%s", t);
    ck_assert(strstr(t, "# TYPE flint_taskmanager_Status_CPU_Load gauge\nflint_taskmanager_Status_CPU_Load 0.25\n"));
    ck_assert(strstr(t, "# TYPE flint_taskmanager_job_task_mailboxLatencyMs summary\n"));
    ck_assert(strstr(t, "flint_taskmanager_job_task_mailboxLatencyMs{job_name=\"b\",subtask_index=\"1\",quantile=\"0.99\"} 4\n"));
    ck_assert(strstr(t, "flint_taskmanager_job_task_mailboxLatencyMs_count{job_name=\"b\",subtask_index=\"1\"} 2\n"));
    ck_assert(strstr(t, "flint_taskmanager_job_task_mailboxLatencyMs_sum{job_name=\"b\",subtask_index=\"1\"} 6\n"));
    free(t);
}
END_TEST

static Suite *metrics_suite(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_counter_gauge);
    tcase_add_test(tc, test_meter_rate_over_window);
    tcase_add_test(tc, test_histogram_stats);
    tcase_add_test(tc, test_set_and_proto_roundtrip);
    tcase_add_test(tc, test_name_filter_and_help);
    tcase_add_test(tc, test_process_sample);
    tcase_add_test(tc, test_prometheus_writer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
