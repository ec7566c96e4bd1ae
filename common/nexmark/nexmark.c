/* The Nexmark generator (nexmark.h): each event a pure function of (seed, event number), with the
 * reference generator's id arithmetic, ratios and string lengths, its values drawn from a wyrand
 * stream seeded per event. Nothing is allocated per event: strings are written into the event, or
 * straight into the variable part of the row being built. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "nexmark/nexmark.h"
#include "util/alloc.h"

/* ---- the PRNG: wyrand, one stream per event, seeded through splitmix64's mixer --------------- */

#define GOLDEN UINT64_C(0x9e3779b97f4a7c15)

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

typedef struct rng {
    uint64_t s;
} rng;

static inline uint64_t rng_next(rng *r) {
    r->s += UINT64_C(0xa0761d6478bd642f);
    unsigned __int128 t = (unsigned __int128)r->s * (r->s ^ UINT64_C(0xe7037ed1a0b428db));
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

/* Uniform in [0, n) (Lemire's multiply; the bias is below n / 2^64). */
static inline int64_t rng_below(rng *r, int64_t n) {
    assert(n > 0);
    return (int64_t)(((unsigned __int128)rng_next(r) * (uint64_t)n) >> 64);
}

/* Uniform in [0, 1). */
static inline double rng_double(rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }

/* Streams of different purposes (events, channel URLs, hot URLs) never share a start state. */
enum { DOMAIN_EVENT = 1, DOMAIN_CHANNEL_URL = 2, DOMAIN_HOT_URL = 3 };

static inline rng rng_for(uint64_t key, int domain, uint64_t n) {
    rng r = {mix64(key ^ mix64(n * GOLDEN + (uint64_t)domain))};
    return r;
}

/* ---- configuration and the generator ------------------------------------------------------- */

void nexmark_config_init(nexmark_config *c) {
    memset(c, 0, sizeof *c);
    c->seed = 0;
    c->base_time_ms = NEXMARK_DEFAULT_BASE_TIME;
    nexmark_config_set_rate(c, NEXMARK_DEFAULT_RATE);
}

void nexmark_config_set_rate(nexmark_config *c, double events_per_second) {
    if (!(events_per_second > 0) || isinf(events_per_second)) events_per_second = NEXMARK_DEFAULT_RATE;
    c->inter_event_delay_us = 1e6 / events_per_second;
}

#define URL_MAX 96

struct nexmark_gen {
    nexmark_config cfg;
    uint64_t key;                         /* from the seed */
    int64_t auction_horizon_events;       /* events until 100 more auctions exist */
    char hot_url[4][URL_MAX];
    uint32_t hot_url_len[4];
    nexmark_event scratch;                /* nexmark_gen_row's event */
};

static uint32_t base_url(rng *r, char *dst);

nexmark_gen *nexmark_gen_new(const nexmark_config *config) {
    nexmark_gen *g = XNEW(nexmark_gen);
    if (config)
        g->cfg = *config;
    else
        nexmark_config_init(&g->cfg);
    if (!(g->cfg.inter_event_delay_us >= 0) || isinf(g->cfg.inter_event_delay_us))
        nexmark_config_set_rate(&g->cfg, NEXMARK_DEFAULT_RATE);
    g->key = mix64((uint64_t)g->cfg.seed ^ UINT64_C(0x6e65786d61726b21)); /* "nexmark!" */
    g->auction_horizon_events =
        (int64_t)NEXMARK_IN_FLIGHT_AUCTIONS * NEXMARK_TOTAL_PROPORTION / NEXMARK_AUCTION_PROPORTION;
    for (int i = 0; i < 4; i++) {
        rng r = rng_for(g->key, DOMAIN_HOT_URL, (uint64_t)i);
        g->hot_url_len[i] = base_url(&r, g->hot_url[i]);
    }
    return g;
}

void nexmark_gen_free(nexmark_gen *g) { free(g); }

const nexmark_config *nexmark_gen_config(const nexmark_gen *g) { return &g->cfg; }

/* As the benchmark: baseTime + (long)(eventNumber * interEventDelayUs) / 1000. Inline here. */
static inline int64_t timestamp_of(const nexmark_gen *g, int64_t n) {
    return g->cfg.base_time_ms + (int64_t)((double)n * g->cfg.inter_event_delay_us) / 1000;
}

int64_t nexmark_timestamp(const nexmark_gen *g, int64_t n) { return timestamp_of(g, n); }

/* ---- ids ---------------------------------------------------------------------------------------- */

/* Event n's place in the sequence: its cycle and offset in it (one division), and from them
 * its type and the last person and auction ids created at or before it. */
typedef struct place {
    int64_t n, last_person, last_auction;
    nexmark_event_type type;
} place;

static inline place place_of(int64_t n) {
    int64_t epoch = n / NEXMARK_TOTAL_PROPORTION, offset = n - epoch * NEXMARK_TOTAL_PROPORTION;
    place p = {.n = n};
    p.last_person = epoch * NEXMARK_PERSON_PROPORTION +
                    (offset < NEXMARK_PERSON_PROPORTION ? offset : NEXMARK_PERSON_PROPORTION - 1);
    if (offset < NEXMARK_PERSON_PROPORTION) {
        p.type = NEXMARK_PERSON;
        p.last_auction = (epoch - 1) * NEXMARK_AUCTION_PROPORTION + NEXMARK_AUCTION_PROPORTION - 1;
    } else if (offset < NEXMARK_PERSON_PROPORTION + NEXMARK_AUCTION_PROPORTION) {
        p.type = NEXMARK_AUCTION;
        p.last_auction = epoch * NEXMARK_AUCTION_PROPORTION + offset - NEXMARK_PERSON_PROPORTION;
    } else {
        p.type = NEXMARK_BID;
        p.last_auction = epoch * NEXMARK_AUCTION_PROPORTION + NEXMARK_AUCTION_PROPORTION - 1;
    }
    return p;
}

int64_t nexmark_last_person_id(int64_t n) { return place_of(n).last_person; }

int64_t nexmark_last_auction_id(int64_t n) { return place_of(n).last_auction; }

/* A random person among the active ones, possibly a few not created yet (base 0). */
static int64_t next_person_id(rng *r, const place *at) {
    int64_t people = at->last_person + 1;
    int64_t active = people < NEXMARK_ACTIVE_PEOPLE ? people : NEXMARK_ACTIVE_PEOPLE;
    return people - active + rng_below(r, active + NEXMARK_ID_LEAD);
}

/* A random auction among those likely in flight, possibly a few not created yet (base 0). */
static int64_t next_auction_id(rng *r, const place *at) {
    int64_t max = at->last_auction;
    int64_t min = max - NEXMARK_IN_FLIGHT_AUCTIONS > 0 ? max - NEXMARK_IN_FLIGHT_AUCTIONS : 0;
    return min + rng_below(r, max - min + 1 + NEXMARK_ID_LEAD);
}

/* round(10^(U*6) * 100): cents in [100, 10^8], log-uniform (10^x as 2^(x log2 10): exp2 is several
 * times faster than pow or exp10). */
static int64_t next_price(rng *r) {
    return (int64_t)floor(exp2(rng_double(r) * (6.0 * 3.321928094887362347870)) * 100.0 + 0.5);
}

/* ---- strings ------------------------------------------------------------------------------------ */

/* Where an event's strings go: NEXMARK_EVENT_BUF bytes (an event's buf, or the variable part of a
 * row being built). Every string of an event is written here, constant ones included, so a row
 * is the fixed part followed by these bytes. */
typedef struct area {
    char *base;
    uint32_t used;
} area;

static inline char *area_room(area *a, uint32_t len) {
    assert(a->used + len <= NEXMARK_EVENT_BUF && "nexmark event buffer overflow");
    return a->base + a->used;
}

static inline nexmark_str area_take(area *a, uint32_t len) {
    nexmark_str s = {a->base + a->used, len};
    a->used += len;
    return s;
}

static inline nexmark_str area_put(area *a, nexmark_str s) {
    memcpy(area_room(a, s.len), s.ptr, s.len);
    return area_take(a, s.len);
}

#define S(lit) {lit, sizeof(lit) - 1}
#define COUNT(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

/* Letter (u * 26) >> 16 for a 16-bit random u: uniform within 26/65536. */
static inline char letter16(uint64_t u) { return (char)('a' + (((u & 0xffff) * 26) >> 16)); }

/* len random lowercase letters (the bulk of every event: its extra). With SSE2, 16 letters per
 * step of four xorshift32 lanes seeded from r; else four letters per draw of r. */
static void fill_letters(rng *r, char *dst, uint32_t len) {
    uint32_t i = 0;
#ifdef __SSE2__
    if (len >= 16) {
        uint64_t a = rng_next(r), b = rng_next(r);
        __m128i s = _mm_or_si128(_mm_set_epi64x((long long)a, (long long)b), _mm_set1_epi32(1));
        const __m128i k26 = _mm_set1_epi16(26), ka = _mm_set1_epi8('a');
        for (;;) {
            __m128i x[2];
            for (int k = 0; k < 2; k++) {
                s = _mm_xor_si128(s, _mm_slli_epi32(s, 13));
                s = _mm_xor_si128(s, _mm_srli_epi32(s, 17));
                s = _mm_xor_si128(s, _mm_slli_epi32(s, 5));
                x[k] = _mm_mulhi_epu16(s, k26);
            }
            __m128i c = _mm_add_epi8(_mm_packus_epi16(x[0], x[1]), ka);
            if (i + 16 <= len) {
                _mm_storeu_si128((__m128i *)(void *)(dst + i), c);
                i += 16;
                if (i == len) return;
            } else {
                char tmp[16];
                _mm_storeu_si128((__m128i *)(void *)tmp, c);
                memcpy(dst + i, tmp, len - i);
                return;
            }
        }
    }
#endif
    for (; i + 4 <= len; i += 4) {
        uint64_t x = rng_next(r);
        dst[i] = letter16(x);
        dst[i + 1] = letter16(x >> 16);
        dst[i + 2] = letter16(x >> 32);
        dst[i + 3] = letter16(x >> 48);
    }
    if (i < len) {
        uint64_t x = rng_next(r);
        for (; i < len; i++, x >>= 16) dst[i] = letter16(x);
    }
}

#define MIN_STRING_LENGTH 3

#ifdef __SSE2__
/* Characters from v < 338 in each 16-bit lane (v = u * 338 >> 16 of a random 16-bit u, or
 * likewise): letter 'a' + v % 26 when v < 312, else other (probability 1/13). */
static inline __m128i letters_or(__m128i v, char other) {
    __m128i q = _mm_mulhi_epu16(v, _mm_set1_epi16(2521)); /* v / 26 for every v < 338 */
    __m128i c = _mm_add_epi16(_mm_sub_epi16(v, _mm_mullo_epi16(q, _mm_set1_epi16(26))), _mm_set1_epi16('a'));
    __m128i rare = _mm_cmpgt_epi16(v, _mm_set1_epi16(311));
    return _mm_or_si128(_mm_andnot_si128(rare, c), _mm_and_si128(rare, _mm_set1_epi16(other)));
}
#endif

/* The benchmark's nextString: 3 to max-1 characters, each a space with probability 1/13, else a
 * random lowercase letter; leading and trailing spaces trimmed. Character i is v = u * 338 >> 16
 * (338 = 13 * 26) of the 16-bit part i % 4 of draw i / 4: a space when v >= 312, else letter
 * v % 26. With SSE2, 8 characters (two draws) per step, the same characters. */
static nexmark_str next_string(rng *r, int max, area *a) {
    char *dst = area_room(a, (uint32_t)max + 7);
    uint32_t len = MIN_STRING_LENGTH + (uint32_t)rng_below(r, max - MIN_STRING_LENGTH);
#ifdef __SSE2__
    for (uint32_t i = 0; i < len; i += 8) {
        uint64_t x0 = rng_next(r), x1 = i + 4 < len ? rng_next(r) : 0;
        __m128i c = letters_or(_mm_mulhi_epu16(_mm_set_epi64x((long long)x1, (long long)x0), _mm_set1_epi16(338)), ' ');
        _mm_storel_epi64((__m128i *)(void *)(dst + i), _mm_packus_epi16(c, c));
    }
#else
    uint64_t x = 0;
    for (uint32_t i = 0; i < len; i++) {
        if (i % 4 == 0) x = rng_next(r);
        uint32_t v = (uint32_t)(((x & 0xffff) * 338) >> 16);
        x >>= 16;
        dst[i] = v >= 312 ? ' ' : (char)('a' + v % 26);
    }
#endif
    uint32_t start = 0;
    while (start < len && dst[start] == ' ') start++;
    while (len > start && dst[len - 1] == ' ') len--;
    if (start) memmove(dst, dst + start, len - start);
    return area_take(a, len - start);
}

/* The benchmark's nextExtra: letters so that current + extra averages desired bytes (uniform
 * within +-20% of what is missing). */
static nexmark_str next_extra(rng *r, int current, int desired, area *a) {
    uint32_t len = 0;
    if (current <= desired) {
        int missing = desired - current;
        int delta = (int)floor(missing * 0.2 + 0.5);
        len = (uint32_t)(missing - delta + (delta == 0 ? 0 : (int)rng_below(r, 2 * (int64_t)delta)));
    }
    fill_letters(r, area_room(a, len), len);
    return area_take(a, len);
}

static const char DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Decimal digits of v at dst (two at a time); returns their count. */
static uint32_t put_u64(char *dst, uint64_t v) {
    char tmp[20];
    int i = 20;
    while (v >= 100) {
        uint64_t r = v % 100;
        v /= 100;
        i -= 2;
        memcpy(tmp + i, DIGIT_PAIRS + 2 * r, 2);
    }
    if (v >= 10) {
        i -= 2;
        memcpy(tmp + i, DIGIT_PAIRS + 2 * v, 2);
    } else {
        tmp[--i] = (char)('0' + v);
    }
    memcpy(dst, tmp + i, (size_t)(20 - i));
    return (uint32_t)(20 - i);
}

#define URL_PREFIX "https://www.nexmark.com/"
#define URL_SUFFIX "item.htm?query=1"

/* "https://www.nexmark.com/<a>/<b>/<c>/item.htm?query=1": three parts of 3 or 4 characters, each
 * '_' with probability 1/13, else a random lowercase letter (the benchmark's nextString(5, '_')),
 * one draw per part: its bit 0 says 3 or 4, character i is v = u * 338 >> 15 of the 15 bits u
 * from bit 4 + 15 i. With SSE2, the 12 characters at once (the same characters). dst has room for
 * URL_MAX bytes. */
static uint32_t base_url(rng *r, char *dst) {
    memcpy(dst, URL_PREFIX, sizeof URL_PREFIX - 1);
    uint32_t n = sizeof URL_PREFIX - 1;
#ifdef __SSE2__
    uint64_t x[3], u[4] = {0};
    for (int p = 0; p < 3; p++) {
        x[p] = rng_next(r);
        for (int i = 0; i < 4; i++) u[p] |= (x[p] >> (4 + 15 * i) & 0x7fff) << (16 * i);
    }
    const __m128i k = _mm_set1_epi16(676); /* u * 338 >> 15 = u * 676 >> 16 */
    __m128i c0 = letters_or(_mm_mulhi_epu16(_mm_set_epi64x((long long)u[1], (long long)u[0]), k), '_');
    __m128i c1 = letters_or(_mm_mulhi_epu16(_mm_set_epi64x((long long)u[3], (long long)u[2]), k), '_');
    char chars[16];
    _mm_storeu_si128((__m128i *)(void *)chars, _mm_packus_epi16(c0, c1));
    for (int p = 0; p < 3; p++) {
        uint32_t len = 3 + (uint32_t)(x[p] & 1);
        memcpy(dst + n, chars + 4 * p, 4);
        dst[n + len] = '/';
        n += len + 1;
    }
#else
    for (int p = 0; p < 3; p++) {
        uint64_t x = rng_next(r);
        int len = 3 + (int)(x & 1);
        x >>= 4;
        for (int i = 0; i < len; i++, x >>= 15) {
            uint32_t v = (uint32_t)(((x & 0x7fff) * 338) >> 15);
            dst[n++] = v >= 312 ? '_' : (char)('a' + v % 26);
        }
        dst[n++] = '/';
    }
#endif
    memcpy(dst + n, URL_SUFFIX, sizeof URL_SUFFIX - 1);
    return n + (uint32_t)sizeof URL_SUFFIX - 1;
}

static uint32_t reverse32(uint32_t v) {
    v = ((v >> 1) & 0x55555555u) | ((v & 0x55555555u) << 1);
    v = ((v >> 2) & 0x33333333u) | ((v & 0x33333333u) << 2);
    v = ((v >> 4) & 0x0f0f0f0fu) | ((v & 0x0f0f0f0fu) << 4);
    v = ((v >> 8) & 0x00ff00ffu) | ((v & 0x00ff00ffu) << 8);
    return (v >> 16) | (v << 16);
}

/* Channel ch's URL: its base URL, and for 9 channels in 10 "&channel_id=<|reverse bits of ch|>"
 * (as a 32-bit int). A function of (seed, ch) only: every bid through channel ch has this URL. */
static nexmark_str channel_url(const nexmark_gen *g, int64_t ch, area *a) {
    char *dst = area_room(a, URL_MAX);
    rng r = rng_for(g->key, DOMAIN_CHANNEL_URL, (uint64_t)ch);
    uint32_t n = base_url(&r, dst);
    if (rng_below(&r, 10) > 0) {
        memcpy(dst + n, "&channel_id=", 12);
        n += 12;
        int64_t rev = (int32_t)reverse32((uint32_t)ch);
        n += put_u64(dst + n, (uint64_t)(rev < 0 ? -rev : rev));
    }
    return area_take(a, n);
}

/* ---- events ------------------------------------------------------------------------------------- */

static const nexmark_str FIRST_NAMES[] = {S("Peter"), S("Paul"),  S("Luke"),  S("John"),   S("Saul"),  S("Vicky"),
                                          S("Kate"),  S("Julie"), S("Sarah"), S("Deiter"), S("Walter")};
static const nexmark_str LAST_NAMES[] = {S("Shultz"), S("Abrams"), S("Spencer"), S("White"), S("Bartels"),
                                         S("Walton"), S("Smith"),  S("Jones"),   S("Noris")};
static const nexmark_str US_CITIES[] = {S("Phoenix"), S("Los Angeles"), S("San Francisco"), S("Boise"),
                                        S("Portland"), S("Bend"), S("Redmond"), S("Seattle"), S("Kent"),
                                        S("Cheyenne")};
static const nexmark_str US_STATES[] = {S("AZ"), S("CA"), S("ID"), S("OR"), S("WA"), S("WY")};
static const nexmark_str HOT_CHANNELS[] = {S("Google"), S("Facebook"), S("Baidu"), S("Apple")};

static void gen_person(rng *r, const place *at, int64_t ts, nexmark_person *p, area *a) {
    p->id = at->last_person + NEXMARK_FIRST_PERSON_ID;
    nexmark_str first = FIRST_NAMES[rng_below(r, COUNT(FIRST_NAMES))];
    nexmark_str last = LAST_NAMES[rng_below(r, COUNT(LAST_NAMES))];
    char *d = area_room(a, first.len + 1 + last.len);
    memcpy(d, first.ptr, first.len);
    d[first.len] = ' ';
    memcpy(d + first.len + 1, last.ptr, last.len);
    p->name = area_take(a, first.len + 1 + last.len);
    /* email: nextString(7) "@" nextString(5) ".com" */
    uint32_t start = a->used;
    next_string(r, 7, a);
    *area_room(a, 1) = '@';
    area_take(a, 1);
    next_string(r, 5, a);
    memcpy(area_room(a, 4), ".com", 4);
    area_take(a, 4);
    p->email_address.ptr = a->base + start;
    p->email_address.len = a->used - start;
    d = area_room(a, 19);
    for (int i = 0; i < 4; i++) {
        int v = (int)rng_below(r, 10000);
        if (i) *d++ = ' ';
        d[0] = (char)('0' + v / 1000);
        d[1] = (char)('0' + v / 100 % 10);
        d[2] = (char)('0' + v / 10 % 10);
        d[3] = (char)('0' + v % 10);
        d += 4;
    }
    p->credit_card = area_take(a, 19);
    p->city = area_put(a, US_CITIES[rng_below(r, COUNT(US_CITIES))]);
    p->state = area_put(a, US_STATES[rng_below(r, COUNT(US_STATES))]);
    p->date_time = ts;
    int current = 8 + (int)(p->name.len + p->email_address.len + p->credit_card.len + p->city.len +
                            p->state.len);
    p->extra = next_extra(r, current, NEXMARK_AVG_PERSON_BYTES, a);
}

static void gen_auction(const nexmark_gen *g, rng *r, const place *at, int64_t ts, nexmark_auction *x, area *a) {
    x->id = at->last_auction + NEXMARK_FIRST_AUCTION_ID;
    int64_t seller;
    if (rng_below(r, NEXMARK_HOT_SELLER_RATIO) > 0)
        seller = at->last_person / NEXMARK_HOT_BATCH * NEXMARK_HOT_BATCH;
    else
        seller = next_person_id(r, at);
    x->seller = seller + NEXMARK_FIRST_PERSON_ID;
    x->category = NEXMARK_FIRST_CATEGORY_ID + rng_below(r, NEXMARK_NUM_CATEGORIES);
    x->initial_bid = next_price(r);
    /* Lengths average the time until 100 more auctions exist (twice that at most). */
    int64_t horizon = timestamp_of(g, at->n + g->auction_horizon_events) - ts;
    x->expires = ts + 1 + rng_below(r, horizon * 2 > 1 ? horizon * 2 : 1);
    x->item_name = next_string(r, 20, a);
    x->description = next_string(r, 100, a);
    x->reserve = x->initial_bid + next_price(r);
    x->date_time = ts;
    int current = 8 + (int)(x->item_name.len + x->description.len) + 8 + 8 + 8 + 8 + 8;
    x->extra = next_extra(r, current, NEXMARK_AVG_AUCTION_BYTES, a);
}

static void gen_bid(const nexmark_gen *g, rng *r, const place *at, int64_t ts, nexmark_bid *b, area *a) {
    int64_t auction, bidder;
    if (rng_below(r, NEXMARK_HOT_AUCTION_RATIO) > 0)
        auction = at->last_auction / NEXMARK_HOT_BATCH * NEXMARK_HOT_BATCH;
    else
        auction = next_auction_id(r, at);
    b->auction = auction + NEXMARK_FIRST_AUCTION_ID;
    if (rng_below(r, NEXMARK_HOT_BIDDER_RATIO) > 0)
        bidder = at->last_person / NEXMARK_HOT_BATCH * NEXMARK_HOT_BATCH + 1;
    else
        bidder = next_person_id(r, at);
    b->bidder = bidder + NEXMARK_FIRST_PERSON_ID;
    b->price = next_price(r);
    if (rng_below(r, NEXMARK_HOT_CHANNEL_RATIO) > 0) {
        int64_t i = rng_below(r, COUNT(HOT_CHANNELS));
        b->channel = area_put(a, HOT_CHANNELS[i]);
        nexmark_str url = {g->hot_url[i], g->hot_url_len[i]};
        b->url = area_put(a, url);
    } else {
        int64_t ch = rng_below(r, NEXMARK_CHANNELS);
        char *d = area_room(a, 8 + 20);
        memcpy(d, "channel-", 8);
        b->channel = area_take(a, 8 + put_u64(d + 8, (uint64_t)ch));
        b->url = channel_url(g, ch, a);
    }
    b->date_time = ts;
    b->extra = next_extra(r, 8 + 8 + 8 + 8, NEXMARK_AVG_BID_BYTES, a);
}

/* The event at `at` into ev (type, number, the member of its type), its strings into a. */
static void gen_event(const nexmark_gen *g, const place *at, nexmark_event *ev, area *a) {
    assert(g && ev && at->n >= 0);
    rng r = rng_for(g->key, DOMAIN_EVENT, (uint64_t)at->n);
    int64_t ts = timestamp_of(g, at->n);
    ev->number = at->n;
    ev->type = at->type;
    switch (at->type) {
    case NEXMARK_PERSON: gen_person(&r, at, ts, &ev->person, a); break;
    case NEXMARK_AUCTION: gen_auction(g, &r, at, ts, &ev->auction, a); break;
    case NEXMARK_BID: gen_bid(g, &r, at, ts, &ev->bid, a); break;
    }
}

void nexmark_gen_event(nexmark_gen *g, int64_t n, nexmark_event *ev) {
    area a = {ev->buf, 0};
    place at = place_of(n);
    gen_event(g, &at, ev, &a);
    ev->used = a.used;
}

/* ---- rows ----------------------------------------------------------------------------------------- */

#define PERSON_COLS                                                                                \
    "id BIGINT, name STRING, emailAddress STRING, creditCard STRING, city STRING, state STRING, " \
    "dateTime TIMESTAMP(3), extra STRING"
#define AUCTION_COLS                                                                               \
    "id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT, "         \
    "dateTime TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra STRING"
#define BID_COLS                                                                                   \
    "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, "                   \
    "dateTime TIMESTAMP(3), extra STRING"

static const char *const SCHEMAS[] = {
    [NEXMARK_TABLE_PERSON] = PERSON_COLS,
    [NEXMARK_TABLE_AUCTION] = AUCTION_COLS,
    [NEXMARK_TABLE_BID] = BID_COLS,
    [NEXMARK_TABLE_ALL] =
        "event_type INT, dateTime TIMESTAMP(3), "
        "person_id BIGINT, person_name STRING, person_emailAddress STRING, person_creditCard STRING, "
        "person_city STRING, person_state STRING, person_dateTime TIMESTAMP(3), person_extra STRING, "
        "auction_id BIGINT, auction_itemName STRING, auction_description STRING, "
        "auction_initialBid BIGINT, auction_reserve BIGINT, auction_dateTime TIMESTAMP(3), "
        "auction_expires TIMESTAMP(3), auction_seller BIGINT, auction_category BIGINT, "
        "auction_extra STRING, "
        "bid_auction BIGINT, bid_bidder BIGINT, bid_price BIGINT, bid_channel STRING, bid_url STRING, "
        "bid_dateTime TIMESTAMP(3), bid_extra STRING",
};
static const char *const TABLE_NAMES[] = {"person", "auction", "bid", "all"};

/* Columns of each type, and where each type's block starts in the "all" table. */
enum { PERSON_NCOLS = 8, AUCTION_NCOLS = 10, BID_NCOLS = 7 };
enum { ALL_PERSON = 2, ALL_AUCTION = ALL_PERSON + PERSON_NCOLS, ALL_BID = ALL_AUCTION + AUCTION_NCOLS };
enum { ALL_NCOLS = ALL_BID + BID_NCOLS };
static const int TABLE_NCOLS[] = {PERSON_NCOLS, AUCTION_NCOLS, BID_NCOLS, ALL_NCOLS};

bool nexmark_table_parse(const char *name, nexmark_table *out) {
    for (int t = 0; name && t < 4; t++)
        if (strcasecmp(name, TABLE_NAMES[t]) == 0) {
            *out = (nexmark_table)t;
            return true;
        }
    return false;
}

const char *nexmark_table_name(nexmark_table t) { return (unsigned)t < 4 ? TABLE_NAMES[t] : "?"; }

const char *nexmark_table_schema(nexmark_table t) { return (unsigned)t < 4 ? SCHEMAS[t] : NULL; }

/* Rows are written straight into the builder's buffer, in the layout flint/row.h documents: the
 * event's strings are already in the variable part (at `fixed`), so what remains is the null
 * bitmap (one word: no table has more than 64 columns) and the slots. */
typedef struct row_writer {
    uint8_t *slots;         /* slot 0 of the row */
    uint64_t var_off;       /* offset in the row of the strings' area */
    const char *var_base;   /* where those strings are (the area they were generated into) */
} row_writer;

static inline void put_slot(const row_writer *w, int i, uint64_t v) { memcpy(w->slots + (size_t)i * 8, &v, 8); }
static inline void put_long(const row_writer *w, int i, int64_t v) { put_slot(w, i, (uint64_t)v); }
static inline void put_var(const row_writer *w, int i, nexmark_str s) {
    put_slot(w, i, (w->var_off + (uint64_t)(s.ptr - w->var_base)) << 32 | s.len);
}

static void person_slots(const row_writer *w, int c, const nexmark_person *p) {
    put_long(w, c + 0, p->id);
    put_var(w, c + 1, p->name);
    put_var(w, c + 2, p->email_address);
    put_var(w, c + 3, p->credit_card);
    put_var(w, c + 4, p->city);
    put_var(w, c + 5, p->state);
    put_long(w, c + 6, p->date_time);
    put_var(w, c + 7, p->extra);
}

static void auction_slots(const row_writer *w, int c, const nexmark_auction *x) {
    put_long(w, c + 0, x->id);
    put_var(w, c + 1, x->item_name);
    put_var(w, c + 2, x->description);
    put_long(w, c + 3, x->initial_bid);
    put_long(w, c + 4, x->reserve);
    put_long(w, c + 5, x->date_time);
    put_long(w, c + 6, x->expires);
    put_long(w, c + 7, x->seller);
    put_long(w, c + 8, x->category);
    put_var(w, c + 9, x->extra);
}

static void bid_slots(const row_writer *w, int c, const nexmark_bid *x) {
    put_long(w, c + 0, x->auction);
    put_long(w, c + 1, x->bidder);
    put_long(w, c + 2, x->price);
    put_var(w, c + 3, x->channel);
    put_var(w, c + 4, x->url);
    put_long(w, c + 5, x->date_time);
    put_var(w, c + 6, x->extra);
}

/* Make room for a whole event in b's variable part. */
static void ensure_room(flint_row_builder *b) {
    if (b->cap < flint_row_fixed_size(b->nfields) + NEXMARK_EVENT_BUF) flint_row_builder_reserve(b, NEXMARK_EVENT_BUF);
}

/* The fixed part of ev's row of table t; its strings (var_base[0..used)) are already at `fixed`. */
static void write_row(const nexmark_event *ev, nexmark_table t, flint_row_builder *b, const char *var_base,
                      uint32_t used) {
    int nf = b->nfields;
    assert(nf == TABLE_NCOLS[t] && nf <= 64 && "builder of another schema than the table's");
    size_t fixed = flint_row_fixed_size(nf);
    row_writer w = {b->buf + 8, fixed, var_base};
    uint64_t nulls = 0;
    if (t == NEXMARK_TABLE_ALL) {
        memset(b->buf + 8, 0, fixed - 8);
        int first = ev->type == NEXMARK_PERSON ? ALL_PERSON : ev->type == NEXMARK_AUCTION ? ALL_AUCTION : ALL_BID;
        int count = ev->type == NEXMARK_PERSON ? PERSON_NCOLS : ev->type == NEXMARK_AUCTION ? AUCTION_NCOLS : BID_NCOLS;
        nulls = ((UINT64_C(1) << ALL_NCOLS) - 1) & ~(((UINT64_C(1) << count) - 1) << first) & ~UINT64_C(3);
        put_long(&w, 0, (int64_t)ev->type);
    }
    memcpy(b->buf, &nulls, 8);
    int c = t == NEXMARK_TABLE_ALL ? -1 : 0;
    switch (ev->type) {
    case NEXMARK_PERSON:
        if (c < 0) put_long(&w, 1, ev->person.date_time), c = ALL_PERSON;
        person_slots(&w, c, &ev->person);
        break;
    case NEXMARK_AUCTION:
        if (c < 0) put_long(&w, 1, ev->auction.date_time), c = ALL_AUCTION;
        auction_slots(&w, c, &ev->auction);
        break;
    case NEXMARK_BID:
        if (c < 0) put_long(&w, 1, ev->bid.date_time), c = ALL_BID;
        bid_slots(&w, c, &ev->bid);
        break;
    }
    b->len = fixed + used;
}

bool nexmark_event_row(const nexmark_event *ev, nexmark_table t, flint_row_builder *b) {
    if (!nexmark_table_has(t, ev->number)) return false;
    ensure_room(b);
    memcpy(b->buf + flint_row_fixed_size(b->nfields), ev->buf, ev->used);
    write_row(ev, t, b, ev->buf, ev->used);
    return true;
}

bool nexmark_gen_row(nexmark_gen *g, int64_t n, nexmark_table t, flint_row_builder *b) {
    place at = place_of(n);
    if (t != NEXMARK_TABLE_ALL && (int)at.type != (int)t) return false;
    ensure_room(b);
    area a = {(char *)b->buf + flint_row_fixed_size(b->nfields), 0};
    gen_event(g, &at, &g->scratch, &a);
    write_row(&g->scratch, t, b, a.base, a.used);
    return true;
}
