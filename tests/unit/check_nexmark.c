/* Unit tests for common/nexmark (the Nexmark generator) and source.nexmark: the 1/3/46 mix, ids
 * and the in-flight / active windows, hot ratios, prices, timestamps, string shapes and extra
 * sizes, channels, determinism under a seed and across splits, rows of every table, and the
 * source operator (splitting, bounds, errors) and its job API function. */
#include <check.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flint/flint.h"
#include "graph/graph.h"
#include "nexmark/nexmark.h"
#include "operators/operator.h"
#include "task/chain.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#define N_EVENTS 100000   /* 2000 cycles: 2000 persons, 6000 auctions, 92000 bids */

/* ---- helpers --------------------------------------------------------------------------------- */

static nexmark_gen *gen(int64_t seed, double rate) {
    nexmark_config c;
    nexmark_config_init(&c);
    c.seed = seed;
    nexmark_config_set_rate(&c, rate);
    return nexmark_gen_new(&c);
}

static flint_schema *schema(const char *text) {
    flint_schema *s = NULL;
    flint_err err = {0};
    ck_assert_msg(flint_schema_parse(text, &s, &err) == FLINT_OK, "%s: %s", text, err.msg);
    return s;
}

static bool str_eq(nexmark_str s, const char *c) { return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

static bool all_lower(nexmark_str s) {
    for (uint32_t i = 0; i < s.len; i++)
        if (s.ptr[i] < 'a' || s.ptr[i] > 'z') return false;
    return true;
}

/* Letters and spaces, no leading or trailing space (the benchmark's trimmed nextString). */
static bool words(nexmark_str s, uint32_t max) {
    if (s.len > max) return false;
    if (s.len && (s.ptr[0] == ' ' || s.ptr[s.len - 1] == ' ')) return false;
    for (uint32_t i = 0; i < s.len; i++)
        if (s.ptr[i] != ' ' && (s.ptr[i] < 'a' || s.ptr[i] > 'z')) return false;
    return true;
}

static bool in_list(nexmark_str s, const char *const *list) {
    for (; *list; list++)
        if (str_eq(s, *list)) return true;
    return false;
}

/* ---- the event mix and ids ---------------------------------------------------------------------- */

START_TEST(proportions_1_3_46_per_50) {
    nexmark_gen *g = gen(1, 0);
    nexmark_event *ev = XNEW(nexmark_event);
    int64_t count[3] = {0};
    for (int64_t n = 0; n < N_EVENTS; n++) {
        nexmark_gen_event(g, n, ev);
        ck_assert_int_eq(ev->number, n);
        ck_assert_int_eq(ev->type, nexmark_event_type_of(n));
        int r = (int)(n % 50);
        ck_assert_int_eq(ev->type, r < 1 ? NEXMARK_PERSON : r < 4 ? NEXMARK_AUCTION : NEXMARK_BID);
        count[ev->type]++;
    }
    ck_assert_int_eq(count[NEXMARK_PERSON], N_EVENTS / 50);
    ck_assert_int_eq(count[NEXMARK_AUCTION], N_EVENTS / 50 * 3);
    ck_assert_int_eq(count[NEXMARK_BID], N_EVENTS / 50 * 46);
    free(ev);
    nexmark_gen_free(g);
}
END_TEST

START_TEST(person_and_auction_ids_count_from_1000) {
    nexmark_gen *g = gen(2, 0);
    nexmark_event *ev = XNEW(nexmark_event);
    int64_t next_person = 1000, next_auction = 1000;
    for (int64_t n = 0; n < N_EVENTS; n++) {
        nexmark_gen_event(g, n, ev);
        if (ev->type == NEXMARK_PERSON) {
            ck_assert_int_eq(ev->person.id, next_person++);
            ck_assert_int_eq(nexmark_last_person_id(n) + 1000, ev->person.id);
        } else if (ev->type == NEXMARK_AUCTION) {
            ck_assert_int_eq(ev->auction.id, next_auction++);
            ck_assert_int_eq(nexmark_last_auction_id(n) + 1000, ev->auction.id);
        }
    }
    ck_assert_int_eq(next_person, 1000 + N_EVENTS / 50);
    ck_assert_int_eq(next_auction, 1000 + N_EVENTS / 50 * 3);
    /* The benchmark's "last id" arithmetic around a cycle's start. */
    ck_assert_int_eq(nexmark_last_person_id(0), 0);
    ck_assert_int_eq(nexmark_last_person_id(49), 0);
    ck_assert_int_eq(nexmark_last_person_id(50), 1);
    ck_assert_int_eq(nexmark_last_auction_id(1), 0);
    ck_assert_int_eq(nexmark_last_auction_id(3), 2);
    ck_assert_int_eq(nexmark_last_auction_id(49), 2);
    ck_assert_int_eq(nexmark_last_auction_id(50), 2);
    ck_assert_int_eq(nexmark_last_auction_id(51), 3);
    free(ev);
    nexmark_gen_free(g);
}
END_TEST

/* Bids' auctions among the last 100 auctions (+10 ahead), bidders and sellers among the last 1000
 * people (+10 ahead); the hot ones at the benchmark's ratios. */
START_TEST(bid_and_auction_references_stay_in_their_windows) {
    nexmark_gen *g = gen(3, 0);
    nexmark_event *ev = XNEW(nexmark_event);
    int64_t bids = 0, hot_auction = 0, hot_bidder = 0, auctions = 0, hot_seller = 0;
    for (int64_t n = 0; n < 2 * N_EVENTS; n++) {
        nexmark_gen_event(g, n, ev);
        int64_t last_p = nexmark_last_person_id(n), last_a = nexmark_last_auction_id(n);
        int64_t min_p = last_p + 1 > 1000 ? last_p + 1 - 1000 : 0;
        if (ev->type == NEXMARK_BID) {
            int64_t a = ev->bid.auction - 1000, b = ev->bid.bidder - 1000;
            int64_t min_a = last_a - 100 > 0 ? last_a - 100 : 0;
            ck_assert_msg(a >= min_a && a <= last_a + 10, "event %lld: auction %lld outside [%lld, %lld]",
                          (long long)n, (long long)a, (long long)min_a, (long long)last_a + 10);
            ck_assert_msg(b >= min_p && b <= last_p + 10, "event %lld: bidder %lld outside [%lld, %lld]",
                          (long long)n, (long long)b, (long long)min_p, (long long)last_p + 10);
            bids++;
            hot_auction += a == last_a / 100 * 100;
            hot_bidder += b == last_p / 100 * 100 + 1;
        } else if (ev->type == NEXMARK_AUCTION) {
            int64_t s = ev->auction.seller - 1000;
            ck_assert(s >= min_p && s <= last_p + 10);
            ck_assert(ev->auction.category >= 10 && ev->auction.category < 15);
            auctions++;
            hot_seller += s == last_p / 100 * 100;
        }
    }
    /* P(hot) = 1 - 1/ratio, plus the random picks that hit the hot id. */
    double fa = (double)hot_auction / bids, fb = (double)hot_bidder / bids, fs = (double)hot_seller / auctions;
    ck_assert_msg(fa > 0.49 && fa < 0.53, "hot auction fraction %.3f", fa);
    ck_assert_msg(fb > 0.74 && fb < 0.77, "hot bidder fraction %.3f", fb);
    ck_assert_msg(fs > 0.73 && fs < 0.78, "hot seller fraction %.3f", fs);
    free(ev);
    nexmark_gen_free(g);
}
END_TEST

/* ---- values ---------------------------------------------------------------------------------------- */

START_TEST(prices_are_log_uniform_in_100_to_1e8) {
    nexmark_gen *g = gen(4, 0);
    nexmark_event *ev = XNEW(nexmark_event);
    int64_t n_prices = 0, below_1e4 = 0, below_1e6 = 0, lo = INT64_MAX, hi = 0;
    for (int64_t n = 0; n < 2 * N_EVENTS; n++) {
        nexmark_gen_event(g, n, ev);
        int64_t p;
        if (ev->type == NEXMARK_BID) {
            p = ev->bid.price;
        } else if (ev->type == NEXMARK_AUCTION) {
            p = ev->auction.initial_bid;
            ck_assert(ev->auction.reserve >= p + 100 && ev->auction.reserve <= p + 100000000);
        } else {
            continue;
        }
        ck_assert_msg(p >= 100 && p <= 100000000, "price %lld", (long long)p);
        n_prices++;
        below_1e4 += p < 10000;
        below_1e6 += p < 1000000;
        if (p < lo) lo = p;
        if (p > hi) hi = p;
    }
    /* 10^(6U) * 100 < 10^4 when U < 1/3, < 10^6 when U < 2/3. */
    double f1 = (double)below_1e4 / n_prices, f2 = (double)below_1e6 / n_prices;
    ck_assert_msg(fabs(f1 - 1.0 / 3) < 0.01 && fabs(f2 - 2.0 / 3) < 0.01, "fractions %.3f %.3f", f1, f2);
    ck_assert_int_lt(lo, 110);
    ck_assert_int_gt(hi, 90000000);
    free(ev);
    nexmark_gen_free(g);
}
END_TEST

START_TEST(timestamps_follow_the_inter_event_delay) {
    /* 1000 events/s: one event per ms. */
    nexmark_gen *g = gen(5, 1000);
    nexmark_event *ev = XNEW(nexmark_event);
    ck_assert(fabs(nexmark_gen_config(g)->inter_event_delay_us - 1000.0) < 1e-9);
    for (int64_t n = 0; n < 5000; n++) {
        nexmark_gen_event(g, n, ev);
        int64_t t = ev->type == NEXMARK_PERSON ? ev->person.date_time
                  : ev->type == NEXMARK_AUCTION ? ev->auction.date_time : ev->bid.date_time;
        ck_assert_int_eq(t, NEXMARK_DEFAULT_BASE_TIME + n);
        ck_assert_int_eq(t, nexmark_timestamp(g, n));
        if (ev->type == NEXMARK_AUCTION) {
            /* Expires within twice the time until 100 more auctions (1666 events) exist. */
            int64_t len = ev->auction.expires - t;
            ck_assert(len >= 1 && len <= 2 * 1666);
        }
    }
    nexmark_gen_free(g);
    /* 3 events/ms: the benchmark's integer arithmetic, (n * delay_us) / 1000 truncated. */
    g = gen(5, 3000);
    for (int64_t n = 0; n < 3000; n++)
        ck_assert_int_eq(nexmark_timestamp(g, n), NEXMARK_DEFAULT_BASE_TIME + (int64_t)(n * (1e6 / 3000)) / 1000);
    ck_assert_int_eq(nexmark_timestamp(g, 2999), NEXMARK_DEFAULT_BASE_TIME + 999);
    nexmark_gen_free(g);
    /* No rate: the benchmark's default timeline of 10000 events/s. */
    g = gen(5, 0);
    ck_assert_int_eq(nexmark_timestamp(g, 100000), NEXMARK_DEFAULT_BASE_TIME + 10000);
    nexmark_gen_free(g);
    free(ev);
}
END_TEST

START_TEST(strings_have_the_benchmark_shapes) {
    static const char *const cities[] = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend",
                                         "Redmond", "Seattle", "Kent", "Cheyenne", NULL};
    static const char *const states[] = {"AZ", "CA", "ID", "OR", "WA", "WY", NULL};
    static const char *const first[] = {"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah",
                                        "Deiter", "Walter", NULL};
    nexmark_gen *g = gen(6, 0);
    nexmark_event *ev = XNEW(nexmark_event);
    for (int64_t n = 0; n < N_EVENTS; n++) {
        nexmark_gen_event(g, n, ev);
        if (ev->type == NEXMARK_PERSON) {
            const nexmark_person *p = &ev->person;
            ck_assert(in_list(p->city, cities) && in_list(p->state, states));
            const char *sp = memchr(p->name.ptr, ' ', p->name.len);
            ck_assert(sp);
            nexmark_str f = {p->name.ptr, (uint32_t)(sp - p->name.ptr)};
            ck_assert(in_list(f, first));
            /* nextString(7) "@" nextString(5) ".com" */
            const char *at = memchr(p->email_address.ptr, '@', p->email_address.len);
            ck_assert(at && p->email_address.len >= 5 && p->email_address.len <= 6 + 1 + 4 + 4);
            ck_assert(memcmp(p->email_address.ptr + p->email_address.len - 4, ".com", 4) == 0);
            ck_assert_int_eq(p->credit_card.len, 19);
            for (int i = 0; i < 19; i++)
                ck_assert(i % 5 == 4 ? p->credit_card.ptr[i] == ' ' : isdigit((unsigned char)p->credit_card.ptr[i]));
            ck_assert(all_lower(p->extra));
        } else if (ev->type == NEXMARK_AUCTION) {
            ck_assert(words(ev->auction.item_name, 19) && words(ev->auction.description, 99));
            ck_assert(all_lower(ev->auction.extra));
        } else {
            ck_assert(all_lower(ev->bid.extra));
        }
    }
    free(ev);
    nexmark_gen_free(g);
}
END_TEST

/* current + extra averages 200 / 500 / 100 bytes, as the benchmark counts sizes. */
START_TEST(extra_pads_to_the_average_sizes) {
    nexmark_gen *g = gen(7, 0);
    nexmark_event *ev = XNEW(nexmark_event);
    double size[3] = {0}, extra[3] = {0};
    int64_t count[3] = {0};
    for (int64_t n = 0; n < 5 * N_EVENTS; n++) {
        nexmark_gen_event(g, n, ev);
        double s;
        if (ev->type == NEXMARK_PERSON) {
            const nexmark_person *p = &ev->person;
            s = 8 + p->name.len + p->email_address.len + p->credit_card.len + p->city.len + p->state.len;
            extra[0] += p->extra.len;
        } else if (ev->type == NEXMARK_AUCTION) {
            s = 8 + ev->auction.item_name.len + ev->auction.description.len + 40;
            extra[1] += ev->auction.extra.len;
        } else {
            s = 32;
            extra[2] += ev->bid.extra.len;
        }
        size[ev->type] += s;
        count[ev->type]++;
    }
    static const double want[3] = {NEXMARK_AVG_PERSON_BYTES, NEXMARK_AVG_AUCTION_BYTES, NEXMARK_AVG_BID_BYTES};
    for (int t = 0; t < 3; t++) {
        double avg = (size[t] + extra[t]) / (double)count[t];
        ck_assert_msg(fabs(avg - want[t]) < want[t] * 0.01, "type %d: average size %.1f, want %.0f", t, avg, want[t]);
    }
    /* Bids: 68 bytes of extra on average, within [54, 81]. */
    ck_assert(fabs(extra[2] / (double)count[2] - 67.5) < 0.5);
    free(ev);
    nexmark_gen_free(g);
}
END_TEST

START_TEST(channels_hot_half_the_time_urls_stable) {
    static const char *const hot[] = {"Google", "Facebook", "Baidu", "Apple", NULL};
    nexmark_gen *g = gen(8, 0);
    nexmark_event *ev = XNEW(nexmark_event);
    int64_t bids = 0, n_hot[4] = {0}, with_id = 0, others = 0;
    char **url_of = xcalloc(NEXMARK_CHANNELS, sizeof *url_of);
    char *hot_url[4] = {0};
    for (int64_t n = 0; n < 3 * N_EVENTS; n++) {
        if (nexmark_event_type_of(n) != NEXMARK_BID) continue;
        nexmark_gen_event(g, n, ev);
        const nexmark_bid *b = &ev->bid;
        bids++;
        ck_assert(b->url.len > 24 && memcmp(b->url.ptr, "https://www.nexmark.com/", 24) == 0);
        char **slot;
        if (in_list(b->channel, hot)) {
            int i = 0;
            while (!str_eq(b->channel, hot[i])) i++;
            n_hot[i]++;
            slot = &hot_url[i];
        } else {
            ck_assert(b->channel.len > 8 && memcmp(b->channel.ptr, "channel-", 8) == 0);
            char num[16];
            snprintf(num, sizeof num, "%.*s", (int)b->channel.len - 8, b->channel.ptr + 8);
            int ch = atoi(num);
            ck_assert(ch >= 0 && ch < NEXMARK_CHANNELS);
            others++;
            with_id += memmem(b->url.ptr, b->url.len, "&channel_id=", 12) != NULL;
            slot = &url_of[ch];
        }
        /* One URL per channel. */
        if (!*slot)
            *slot = xstrndup(b->url.ptr, b->url.len);
        else
            ck_assert(str_eq(b->url, *slot));
    }
    double fh = (double)(bids - others) / bids, fid = (double)with_id / others;
    ck_assert_msg(fabs(fh - 0.5) < 0.01, "hot channel fraction %.3f", fh);
    for (int i = 0; i < 4; i++) ck_assert_msg(fabs((double)n_hot[i] / bids - 0.125) < 0.01, "%s", hot[i]);
    ck_assert_msg(fid > 0.85 && fid < 0.95, "channel_id fraction %.3f", fid);
    for (int i = 0; i < NEXMARK_CHANNELS; i++) free(url_of[i]);
    for (int i = 0; i < 4; i++) free(hot_url[i]);
    free(url_of);
    free(ev);
    nexmark_gen_free(g);
}
END_TEST

/* ---- determinism --------------------------------------------------------------------------------- */

START_TEST(same_seed_same_events_any_order) {
    nexmark_gen *a = gen(42, 0), *b = gen(42, 0), *c = gen(43, 0);
    nexmark_event *x = XNEW(nexmark_event), *y = XNEW(nexmark_event);
    flint_schema *s = schema(nexmark_table_schema(NEXMARK_TABLE_ALL));
    flint_row_builder ba, bb;
    flint_row_builder_init(&ba, s);
    flint_row_builder_init(&bb, s);
    int differ = 0;
    for (int64_t n = 0; n < 5000; n++) {
        /* b generates backwards: an event does not depend on the ones generated before it. */
        int64_t m = 4999 - n;
        ck_assert(nexmark_gen_row(a, m, NEXMARK_TABLE_ALL, &ba));
        nexmark_gen_event(b, m, y);
        ck_assert(nexmark_event_row(y, NEXMARK_TABLE_ALL, &bb));
        ck_assert_int_eq(ba.len, bb.len);
        ck_assert(memcmp(ba.buf, bb.buf, ba.len) == 0);
        nexmark_gen_event(c, m, x);
        flint_row_builder_reset(&bb);
        nexmark_event_row(x, NEXMARK_TABLE_ALL, &bb);
        differ += ba.len != bb.len || memcmp(ba.buf, bb.buf, ba.len) != 0;
    }
    ck_assert_int_gt(differ, 4990); /* another seed, other values (ids and times aside) */
    flint_row_builder_free(&ba);
    flint_row_builder_free(&bb);
    flint_schema_free(s);
    free(x);
    free(y);
    nexmark_gen_free(a);
    nexmark_gen_free(b);
    nexmark_gen_free(c);
}
END_TEST

/* ---- rows ------------------------------------------------------------------------------------------ */

static const char *fmt(const flint_row *r) {
    static char buf[8192];
    size_t n = flint_row_format(r, "|", buf, sizeof buf);
    ck_assert(n < sizeof buf);
    return buf;
}

START_TEST(rows_of_every_table) {
    ck_assert_str_eq(nexmark_table_schema(NEXMARK_TABLE_BID),
                     "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, "
                     "dateTime TIMESTAMP(3), extra STRING");
    static const int ncols[4] = {8, 10, 7, 27};
    flint_schema *s[4];
    flint_row_builder b[4];
    for (int t = 0; t < 4; t++) {
        s[t] = schema(nexmark_table_schema((nexmark_table)t));
        ck_assert_int_eq(flint_schema_field_count(s[t]), ncols[t]);
        flint_row_builder_init(&b[t], s[t]);
        nexmark_table back;
        ck_assert(nexmark_table_parse(nexmark_table_name((nexmark_table)t), &back) && back == (nexmark_table)t);
    }
    nexmark_table t;
    ck_assert(nexmark_table_parse("BID", &t) && t == NEXMARK_TABLE_BID);
    ck_assert(!nexmark_table_parse("bids", &t) && !nexmark_table_parse(NULL, &t));
    ck_assert_int_eq(flint_schema_field_type(s[0], 6), FLINT_TIMESTAMP);
    ck_assert_int_eq(flint_schema_field_index(s[1], "initialBid"), 3);
    ck_assert_int_eq(flint_schema_field_index(s[3], "bid_price"), 22);

    nexmark_gen *g = gen(9, 0);
    nexmark_event *ev = XNEW(nexmark_event);
    for (int64_t n = 0; n < 3000; n++) {
        nexmark_gen_event(g, n, ev);
        for (int k = 0; k < 4; k++) {
            bool has = nexmark_gen_row(g, n, (nexmark_table)k, &b[k]);
            ck_assert(has == (k == 3 || k == (int)ev->type));
            if (!has) continue;
            flint_row r = flint_row_builder_row(&b[k]);
            flint_err err = {0};
            ck_assert_msg(flint_row_check(s[k], r.data, r.len, &err) == FLINT_OK, "%s", err.msg);
            char want[4096];
            if (ev->type == NEXMARK_BID) {
                const nexmark_bid *x = &ev->bid;
                snprintf(want, sizeof want, "%lld|%lld|%lld|%.*s|%.*s|%lld|%.*s", (long long)x->auction,
                         (long long)x->bidder, (long long)x->price, (int)x->channel.len, x->channel.ptr,
                         (int)x->url.len, x->url.ptr, (long long)x->date_time, (int)x->extra.len, x->extra.ptr);
            } else if (ev->type == NEXMARK_PERSON) {
                const nexmark_person *x = &ev->person;
                snprintf(want, sizeof want, "%lld|%.*s|%.*s|%.*s|%.*s|%.*s|%lld|%.*s", (long long)x->id,
                         (int)x->name.len, x->name.ptr, (int)x->email_address.len, x->email_address.ptr,
                         (int)x->credit_card.len, x->credit_card.ptr, (int)x->city.len, x->city.ptr,
                         (int)x->state.len, x->state.ptr, (long long)x->date_time, (int)x->extra.len, x->extra.ptr);
            } else {
                const nexmark_auction *x = &ev->auction;
                snprintf(want, sizeof want, "%lld|%.*s|%.*s|%lld|%lld|%lld|%lld|%lld|%lld|%.*s", (long long)x->id,
                         (int)x->item_name.len, x->item_name.ptr, (int)x->description.len, x->description.ptr,
                         (long long)x->initial_bid, (long long)x->reserve, (long long)x->date_time,
                         (long long)x->expires, (long long)x->seller, (long long)x->category, (int)x->extra.len,
                         x->extra.ptr);
            }
            const char *got = fmt(&r);
            if (k < 3) {
                ck_assert_str_eq(got, want);
                continue;
            }
            /* all: event_type, dateTime, then nulls but for the event's block. */
            char full[8192];
            int first = ev->type == NEXMARK_PERSON ? 2 : ev->type == NEXMARK_AUCTION ? 10 : 20;
            int len = snprintf(full, sizeof full, "%d|%lld", (int)ev->type, (long long)nexmark_timestamp(g, n));
            for (int i = 2; i < 27; i++) {
                if (i == first) len += snprintf(full + len, sizeof full - (size_t)len, "|%s", want);
                if (i >= first && i < first + ncols[ev->type]) continue;
                len += snprintf(full + len, sizeof full - (size_t)len, "|null");
            }
            ck_assert_str_eq(got, full);
        }
    }
    for (int k = 0; k < 4; k++) {
        flint_row_builder_free(&b[k]);
        flint_schema_free(s[k]);
    }
    free(ev);
    nexmark_gen_free(g);
}
END_TEST

/* ---- source.nexmark --------------------------------------------------------------------------------- */

static Flint__Graph__KeyValue *kv(const char *k, const char *v) {
    Flint__Graph__KeyValue *p = XNEW(Flint__Graph__KeyValue);
    flint__graph__key_value__init(p);
    p->key = xstrdup(k);
    p->value = xstrdup(v);
    return p;
}

/* A vertex of one source.nexmark operator. */
static Flint__Graph__JobVertex *source_vertex(const char *table, const char *out_schema, const char *events,
                                             const char *rate, const char *seed) {
    Flint__Graph__OperatorDef *d = XNEW(Flint__Graph__OperatorDef);
    flint__graph__operator_def__init(d);
    d->kind = xstrdup("source.nexmark");
    d->name = xstrdup("Source: Nexmark");
    d->input_schema = xstrdup("");
    d->output_schema = xstrdup(out_schema);
    d->params = xcalloc(4, sizeof *d->params);
    d->params[d->n_params++] = kv("table", table);
    d->params[d->n_params++] = kv("events", events);
    d->params[d->n_params++] = kv("rate", rate);
    d->params[d->n_params++] = kv("seed", seed);
    Flint__Graph__JobVertex *v = XNEW(Flint__Graph__JobVertex);
    flint__graph__job_vertex__init(v);
    v->name = xstrdup("nexmark vertex");
    v->parallelism = 1;
    v->operators = xcalloc(1, sizeof *v->operators);
    v->operators[v->n_operators++] = d;
    return v;
}

typedef struct capture {
    char **lines;
    int64_t n, cap;
    int64_t last_time;      /* dateTime of the previous row (order within a subtask) */
    int time_field;
    bool ordered;
} capture;

static int capture_row(void *ud, const flint_row *row) {
    capture *c = ud;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->lines = xrealloc(c->lines, (size_t)c->cap * sizeof *c->lines);
    }
    c->lines[c->n++] = xstrdup(fmt(row));
    int64_t t = flint_row_get_long(row, c->time_field);
    if (t < c->last_time) c->ordered = false;
    c->last_time = t;
    return FLINT_OK;
}

static void capture_free(capture *c) {
    for (int64_t i = 0; i < c->n; i++) free(c->lines[i]);
    free(c->lines);
    memset(c, 0, sizeof *c);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Run subtask `subtask` of `parallelism` of v to its end (at most max_calls produce calls), adding
 * its rows to out. Returns the chain's status; the failure message goes to msg. */
static int run_subtask(Flint__Graph__JobVertex *v, int subtask, int parallelism, capture *out, int max_calls,
                       char *msg, size_t msg_len) {
    tm_runtime rt = {.subtask = subtask, .parallelism = parallelism, .max_parallelism = 128,
                     .task_name = "nexmark vertex", .artifact = ""};
    tm_chain c;
    flint_err err = {0};
    ck_assert_msg(tm_chain_build(&c, v, &rt, &err) == 0, "%s", err.msg);
    tm_chain_add_output(&c, 0, capture_row, out);
    out->last_time = INT64_MIN;
    out->ordered = true;
    int rc = tm_chain_open(&c);
    int calls = 0;
    for (; !rc && calls < max_calls; calls++) {
        tm_source_status st;
        int64_t wake = 0;
        rc = c.ops[0]->kind->produce(c.ops[0], 0, &st, &wake);
        if (rc || st == TM_SOURCE_END) break;
        ck_assert_int_eq(st, TM_SOURCE_MORE);
    }
    if (!rc && calls < max_calls) rc = tm_chain_end_input(&c);
    tm_chain_close(&c);
    if (msg) snprintf(msg, msg_len, "%s", rt.err.msg);
    return rc ? rc : rt.failed ? FLINT_ERR : 0;
}

/* The rows of a bounded run at parallelism p, sorted. */
static capture run_split(const char *table, int64_t events, int p, const char *seed) {
    char ev[32];
    snprintf(ev, sizeof ev, "%lld", (long long)events);
    nexmark_table t;
    ck_assert(nexmark_table_parse(table, &t));
    Flint__Graph__JobVertex *v = source_vertex(table, nexmark_table_schema(t), ev, "0", seed);
    capture all = {.time_field = t == NEXMARK_TABLE_ALL ? 1 : t == NEXMARK_TABLE_AUCTION ? 5 : t == NEXMARK_TABLE_BID ? 5 : 6};
    for (int i = 0; i < p; i++) {
        int64_t before = all.n;
        ck_assert_int_eq(run_subtask(v, i, p, &all, 1 << 30, NULL, 0), 0);
        ck_assert_msg(all.ordered, "subtask %d of %d: rows out of event-time order", i, p);
        /* Subtask i: the events of cycles i, i+p, ... below the bound. */
        int64_t want = 0;
        for (int64_t n = 0; n < events; n++) want += (n / 50) % p == i && nexmark_table_has(t, n);
        ck_assert_msg(all.n - before == want, "subtask %d of %d: %lld rows, want %lld", i, p,
                      (long long)(all.n - before), (long long)want);
    }
    flint__graph__job_vertex__free_unpacked(v, NULL);
    qsort(all.lines, (size_t)all.n, sizeof *all.lines, cmp_str);
    return all;
}

START_TEST(source_splits_one_sequence_among_subtasks) {
    static const char *const tables[] = {"bid", "all", "person", "auction"};
    const int64_t events = 20017; /* not a whole number of cycles */
    for (int k = 0; k < 4; k++) {
        capture one = run_split(tables[k], events, 1, "77");
        int64_t want = k == 0 ? 18413 : k == 1 ? events : k == 2 ? 401 : 1203;
        /* 400 cycles, then events 20000..20016: a person, 3 auctions, 13 bids. */
        ck_assert_msg(one.n == want, "%s: %lld rows, want %lld", tables[k], (long long)one.n, (long long)want);
        for (int p = 2; p <= 7; p += 5) {
            capture split = run_split(tables[k], events, p, "77");
            ck_assert_int_eq(split.n, one.n);
            for (int64_t i = 0; i < one.n; i++) ck_assert_str_eq(split.lines[i], one.lines[i]);
            capture_free(&split);
        }
        capture_free(&one);
    }
    /* The source's rows are the generator's (the reference the cluster test uses). */
    capture bids = run_split("bid", 500, 1, "5");
    nexmark_gen *g = gen(5, 0);
    flint_schema *s = schema(nexmark_table_schema(NEXMARK_TABLE_BID));
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    char **want = xcalloc(500, sizeof *want);
    int64_t nw = 0;
    for (int64_t n = 0; n < 500; n++) {
        if (!nexmark_gen_row(g, n, NEXMARK_TABLE_BID, &b)) continue;
        flint_row r = flint_row_builder_row(&b);
        want[nw++] = xstrdup(fmt(&r));
    }
    qsort(want, (size_t)nw, sizeof *want, cmp_str);
    ck_assert_int_eq(nw, bids.n);
    for (int64_t i = 0; i < nw; i++) {
        ck_assert_str_eq(bids.lines[i], want[i]);
        free(want[i]);
    }
    free(want);
    flint_row_builder_free(&b);
    flint_schema_free(s);
    nexmark_gen_free(g);
    capture_free(&bids);
}
END_TEST

START_TEST(source_unbounded_and_errors) {
    const char *bid = nexmark_table_schema(NEXMARK_TABLE_BID);
    /* Unbounded: runs as long as it is asked to, 512 events per call. */
    Flint__Graph__JobVertex *v = source_vertex("bid", bid, "-1", "0", "1");
    capture c = {.time_field = 5};
    ck_assert_int_eq(run_subtask(v, 0, 1, &c, 100, NULL, 0), 0);
    ck_assert_int_eq(c.n, 1024 * 46); /* 51200 events: 1024 cycles */
    capture_free(&c);
    flint__graph__job_vertex__free_unpacked(v, NULL);
    /* Nothing for a subtask whose first cycle is past the end. */
    v = source_vertex("bid", bid, "40", "0", "1");
    ck_assert_int_eq(run_subtask(v, 1, 2, &c, 10, NULL, 0), 0);
    ck_assert_int_eq(c.n, 0);
    ck_assert_int_eq(run_subtask(v, 0, 2, &c, 10, NULL, 0), 0);
    ck_assert_int_eq(c.n, 36);
    capture_free(&c);
    flint__graph__job_vertex__free_unpacked(v, NULL);
    /* Errors name the problem. */
    char msg[512];
    v = source_vertex("bids", bid, "10", "0", "1");
    ck_assert_int_ne(run_subtask(v, 0, 1, &c, 10, msg, sizeof msg), 0);
    ck_assert_msg(strstr(msg, "unknown Nexmark table 'bids'"), "%s", msg);
    flint__graph__job_vertex__free_unpacked(v, NULL);
    v = source_vertex("person", bid, "10", "0", "1");
    ck_assert_int_ne(run_subtask(v, 0, 1, &c, 10, msg, sizeof msg), 0);
    ck_assert_msg(strstr(msg, "is not the Nexmark person table's"), "%s", msg);
    flint__graph__job_vertex__free_unpacked(v, NULL);
    v = source_vertex("bid", bid, "10", "fast", "1");
    ck_assert_int_ne(run_subtask(v, 0, 1, &c, 10, msg, sizeof msg), 0);
    ck_assert_msg(strstr(msg, "parameter 'rate'"), "%s", msg);
    flint__graph__job_vertex__free_unpacked(v, NULL);
    capture_free(&c);
}
END_TEST

START_TEST(source_rate_limits_events) {
    /* 4000 events/s over 2 subtasks: subtask 0 makes 2000/s; 300 events take ~150 ms. */
    Flint__Graph__JobVertex *v = source_vertex("all", nexmark_table_schema(NEXMARK_TABLE_ALL), "600", "4000", "1");
    tm_runtime rt = {.subtask = 0, .parallelism = 2, .max_parallelism = 128, .task_name = "t", .artifact = ""};
    tm_chain ch;
    flint_err err = {0};
    capture c = {.time_field = 1};
    ck_assert(tm_chain_build(&ch, v, &rt, &err) == 0);
    tm_chain_add_output(&ch, 0, capture_row, &c);
    ck_assert_int_eq(tm_chain_open(&ch), 0);
    int64_t t0 = time_mono_ms(), waits = 0;
    for (;;) {
        tm_source_status st;
        int64_t wake = 0;
        ck_assert_int_eq(ch.ops[0]->kind->produce(ch.ops[0], 0, &st, &wake), 0);
        if (st == TM_SOURCE_END) break;
        if (st == TM_SOURCE_WAIT) {
            waits++;
            int64_t d = wake - time_mono_ms();
            ck_assert(d <= 1000);
            if (d > 0) usleep((useconds_t)d * 1000);
        }
    }
    int64_t took = time_mono_ms() - t0;
    ck_assert_int_eq(c.n, 300);
    ck_assert_msg(took >= 120 && took < 2000, "took %lld ms", (long long)took);
    ck_assert_int_gt(waits, 0);
    tm_chain_end_input(&ch);
    tm_chain_close(&ch);
    capture_free(&c);
    flint__graph__job_vertex__free_unpacked(v, NULL);
}
END_TEST

/* ---- the job API ---------------------------------------------------------------------------------- */

static const char *param(const Flint__Graph__OperatorDef *d, const char *key) {
    for (size_t i = 0; i < d->n_params; i++)
        if (strcmp(d->params[i]->key, key) == 0) return d->params[i]->value;
    return NULL;
}

START_TEST(api_builds_a_nexmark_source) {
    flint_env *env = graph_env_new(NULL);
    flint_env_set_parallelism(env, 2);
    flint_stream *bids = flint_source_nexmark(env, "Bid", 1000, 500.5, 9);
    flint_sink_blackhole(bids);
    ck_assert_int_eq(flint_execute(env, "nexmark"), FLINT_OK);
    Flint__Graph__JobGraph *job = graph_env_job(env);
    ck_assert_ptr_nonnull(job);
    const Flint__Graph__OperatorDef *d = job->vertices[0]->operators[0];
    ck_assert_str_eq(d->kind, "source.nexmark");
    ck_assert_str_eq(param(d, "table"), "bid");
    ck_assert_str_eq(param(d, "events"), "1000");
    ck_assert_str_eq(param(d, "rate"), "500.5");
    ck_assert_str_eq(param(d, "seed"), "9");
    flint_schema *s = schema(d->output_schema);
    flint_schema *want = schema(nexmark_table_schema(NEXMARK_TABLE_BID));
    ck_assert(flint_schema_equal(s, want));
    flint_schema_free(s);
    flint_schema_free(want);
    ck_assert_int_eq(job->vertices[0]->parallelism, 2);
    graph_env_free(env);

    env = graph_env_new(NULL);
    flint_sink_blackhole(flint_source_nexmark(env, "bids", -5, -1, 0));
    ck_assert_int_ne(flint_execute(env, "nexmark"), FLINT_OK);
    ck_assert_msg(strstr(flint_env_error(env), "unknown Nexmark table 'bids' (person, auction, bid or all)"), "%s",
                  flint_env_error(env));
    ck_assert_msg(strstr(flint_env_error(env), "Source: Nexmark"), "%s", flint_env_error(env));
    graph_env_free(env);
}
END_TEST

Suite *nexmark_suite(void) {
    Suite *s = suite_create("nexmark");
    TCase *tc = tcase_create("generator");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, proportions_1_3_46_per_50);
    tcase_add_test(tc, person_and_auction_ids_count_from_1000);
    tcase_add_test(tc, bid_and_auction_references_stay_in_their_windows);
    tcase_add_test(tc, prices_are_log_uniform_in_100_to_1e8);
    tcase_add_test(tc, timestamps_follow_the_inter_event_delay);
    tcase_add_test(tc, strings_have_the_benchmark_shapes);
    tcase_add_test(tc, extra_pads_to_the_average_sizes);
    tcase_add_test(tc, channels_hot_half_the_time_urls_stable);
    tcase_add_test(tc, same_seed_same_events_any_order);
    tcase_add_test(tc, rows_of_every_table);
    suite_add_tcase(s, tc);
    tc = tcase_create("source");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, source_splits_one_sequence_among_subtasks);
    tcase_add_test(tc, source_unbounded_and_errors);
    tcase_add_test(tc, source_rate_limits_events);
    tcase_add_test(tc, api_builds_a_nexmark_source);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(nexmark_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
