/* The Nexmark benchmark's event generator (persons, auctions and bids of an online auction), with
 * the semantics of the benchmark's reference generator, as a pure function of (seed, event number).
 *
 * The event sequence. Event n (0, 1, 2, ...) is a person when n % 50 < 1, an auction when
 * n % 50 < 4, else a bid (1 : 3 : 46). Its event time is base_time + (n * inter_event_delay_us) /
 * 1000 ms. Ids are derived from n: person n/50 (base 0) and auctions 3 * (n/50) + 0..2, both
 * offset by 1000. Every other value is drawn from a small PRNG seeded from (seed, n), so any event
 * can be generated alone, in any order, by any number of parallel generators: the parts that
 * splits generate are disjoint pieces of one sequence, identical whatever the split. See
 * docs/nexmark.md for the fields, the distributions and how the source splits the sequence.
 *
 * Costs: generating an event allocates nothing (its strings go into the event, or straight into
 * a row builder's buffer) and touches only the generator's read-only tables. A generator is not
 * thread-safe; use one per thread (about 2 KiB each). */
#ifndef FLINT_NEXMARK_H
#define FLINT_NEXMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flint/row.h"

/* ---- the benchmark's constants ------------------------------------------------------------- */
#define NEXMARK_PERSON_PROPORTION 1
#define NEXMARK_AUCTION_PROPORTION 3
#define NEXMARK_BID_PROPORTION 46
#define NEXMARK_TOTAL_PROPORTION 50        /* events per cycle */
#define NEXMARK_FIRST_PERSON_ID 1000
#define NEXMARK_FIRST_AUCTION_ID 1000
#define NEXMARK_FIRST_CATEGORY_ID 10
#define NEXMARK_NUM_CATEGORIES 5
#define NEXMARK_HOT_AUCTION_RATIO 2        /* 1 - 1/2 of bids go to a hot auction */
#define NEXMARK_HOT_SELLER_RATIO 4         /* 1 - 1/4 of auctions are by a hot seller */
#define NEXMARK_HOT_BIDDER_RATIO 4         /* 1 - 1/4 of bids are by a hot bidder */
#define NEXMARK_HOT_CHANNEL_RATIO 2        /* 1 - 1/2 of bids come through a hot channel */
#define NEXMARK_HOT_BATCH 100              /* hot ids: the first (sellers, auctions) or second
                                              (bidders) id of each batch of 100 */
#define NEXMARK_IN_FLIGHT_AUCTIONS 100
#define NEXMARK_ACTIVE_PEOPLE 1000
#define NEXMARK_ID_LEAD 10                 /* ids up to 10 ahead of the last one created */
#define NEXMARK_CHANNELS 10000
#define NEXMARK_AVG_PERSON_BYTES 200
#define NEXMARK_AVG_AUCTION_BYTES 500
#define NEXMARK_AVG_BID_BYTES 100
#define NEXMARK_DEFAULT_RATE 10000.0       /* events/s of the timeline when none is given */
#define NEXMARK_DEFAULT_BASE_TIME INT64_C(1436918400000) /* 2015-07-15 00:00:00 UTC */

/* ---- configuration ------------------------------------------------------------------------- */
typedef struct nexmark_config {
    int64_t seed;                 /* values of every event depend on it */
    int64_t base_time_ms;         /* event time of event 0 (epoch ms) */
    double inter_event_delay_us;  /* event-time distance between events n and n+1 */
} nexmark_config;

/* Defaults: seed 0, NEXMARK_DEFAULT_BASE_TIME, the delay of NEXMARK_DEFAULT_RATE. */
void nexmark_config_init(nexmark_config *c);
/* The timeline of events_per_second events over all generators: a delay of 1e6 / rate us
 * (NEXMARK_DEFAULT_RATE when rate <= 0 or not finite). */
void nexmark_config_set_rate(nexmark_config *c, double events_per_second);

/* ---- events ---------------------------------------------------------------------------------- */
typedef enum nexmark_event_type {
    NEXMARK_PERSON = 0,
    NEXMARK_AUCTION = 1,
    NEXMARK_BID = 2
} nexmark_event_type;

/* A string inside an event (or a static table): not NUL-terminated. */
typedef struct nexmark_str {
    const char *ptr;
    uint32_t len;
} nexmark_str;

typedef struct nexmark_person {
    int64_t id;
    nexmark_str name, email_address, credit_card, city, state;
    int64_t date_time;            /* epoch ms */
    nexmark_str extra;
} nexmark_person;

typedef struct nexmark_auction {
    int64_t id;
    nexmark_str item_name, description;
    int64_t initial_bid, reserve; /* cents */
    int64_t date_time, expires;   /* epoch ms */
    int64_t seller, category;
    nexmark_str extra;
} nexmark_auction;

typedef struct nexmark_bid {
    int64_t auction, bidder, price;
    nexmark_str channel, url;
    int64_t date_time;
    nexmark_str extra;
} nexmark_bid;

#define NEXMARK_EVENT_BUF 1536

/* One generated event: the member of its type is valid. Its strings point into buf (or into
 * constant tables), so they are valid until the event is generated into again or moved. */
typedef struct nexmark_event {
    nexmark_event_type type;
    int64_t number;
    nexmark_person person;
    nexmark_auction auction;
    nexmark_bid bid;
    uint32_t used;                /* bytes of buf in use */
    char buf[NEXMARK_EVENT_BUF];
} nexmark_event;

static inline nexmark_event_type nexmark_event_type_of(int64_t n) {
    int64_t r = n % NEXMARK_TOTAL_PROPORTION;
    return r < NEXMARK_PERSON_PROPORTION ? NEXMARK_PERSON
         : r < NEXMARK_PERSON_PROPORTION + NEXMARK_AUCTION_PROPORTION ? NEXMARK_AUCTION
                                                                      : NEXMARK_BID;
}

/* The last person / auction id created at or before event n, base 0 (the benchmark's
 * lastBase0PersonId / lastBase0AuctionId): the id event n itself gets when it creates one. */
int64_t nexmark_last_person_id(int64_t n);
int64_t nexmark_last_auction_id(int64_t n);

/* ---- the generator ------------------------------------------------------------------------------- */
typedef struct nexmark_gen nexmark_gen;

/* A generator for config (copied). Free with nexmark_gen_free. */
nexmark_gen *nexmark_gen_new(const nexmark_config *config);
void nexmark_gen_free(nexmark_gen *g);
const nexmark_config *nexmark_gen_config(const nexmark_gen *g);

/* Event time of event n (epoch ms). */
int64_t nexmark_timestamp(const nexmark_gen *g, int64_t n);
/* Generate event n (n >= 0) into ev (OUT). */
void nexmark_gen_event(nexmark_gen *g, int64_t n, nexmark_event *ev);

/* ---- rows ---------------------------------------------------------------------------------------- */
/* The tables a source can produce: one event type's rows, or every event as one wide row. */
typedef enum nexmark_table {
    NEXMARK_TABLE_PERSON = 0,
    NEXMARK_TABLE_AUCTION = 1,
    NEXMARK_TABLE_BID = 2,
    NEXMARK_TABLE_ALL = 3
} nexmark_table;

/* "person", "auction", "bid", "all" (case-insensitive) -> *out. Returns false when unknown. */
bool nexmark_table_parse(const char *name, nexmark_table *out);
const char *nexmark_table_name(nexmark_table t);
/* The table's column list (flint_schema_parse syntax; see docs/nexmark.md). A static string. */
const char *nexmark_table_schema(nexmark_table t);
/* Whether event n has a row in table t. */
static inline bool nexmark_table_has(nexmark_table t, int64_t n) {
    return t == NEXMARK_TABLE_ALL || (int)nexmark_event_type_of(n) == (int)t;
}

/* Event n as a row of table t into b (OUT: a builder of nexmark_table_schema(t)'s schema; the row
 * replaces what b held). The strings are generated straight into b's buffer, in the layout
 * flint/row.h documents, and b->len is set: no copy, no allocation once b has grown to an event's
 * size. Returns false, without generating anything, when event n has no row in t. */
bool nexmark_gen_row(nexmark_gen *g, int64_t n, nexmark_table t, flint_row_builder *b);
/* The row of an already generated event into b, as nexmark_gen_row (true when it belongs to t). */
bool nexmark_event_row(const nexmark_event *ev, nexmark_table t, flint_row_builder *b);

#endif
