/* Resource manager bookkeeping: registered taskmanagers, slots and who holds them, heartbeat
 * expiry (see jm_rm.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "rm"
#include "jm_rm.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

struct jm_rm {
    jm_tm **tms;          /* registration order; each owned */
    int n, cap;
    int64_t timeout_ms;
    int rr_next;          /* round robin: the taskmanager index the next allocation starts at */
    jm_rm_lost_fn lost;
    void *lost_ud;
};

jm_rm *jm_rm_new(int64_t heartbeat_timeout_ms) {
    assert(heartbeat_timeout_ms > 0);
    jm_rm *rm = XNEW(jm_rm);
    rm->timeout_ms = heartbeat_timeout_ms;
    return rm;
}

static void tm_free(jm_tm *tm) {
    if (!tm) return;
    free(tm->slot_job);
    free(tm);
}

void jm_rm_free(jm_rm *rm) {
    if (!rm) return;
    for (int i = 0; i < rm->n; i++) tm_free(rm->tms[i]);
    free(rm->tms);
    free(rm);
}

void jm_rm_set_lost_hook(jm_rm *rm, jm_rm_lost_fn fn, void *ud) {
    assert(rm);
    rm->lost = fn;
    rm->lost_ud = ud;
}

/* Tell the hook that tm is about to go. */
static void notify_lost(jm_rm *rm, jm_tm *tm, const char *reason) {
    tm->lost = true;
    if (rm->lost) rm->lost(tm, reason, rm->lost_ud);
}

static int find_index(const jm_rm *rm, const char *resource_id) {
    for (int i = 0; i < rm->n; i++)
        if (strcmp(rm->tms[i]->resource_id, resource_id) == 0) return i;
    return -1;
}

static void remove_at(jm_rm *rm, int i) {
    assert(i >= 0 && i < rm->n);
    tm_free(rm->tms[i]);
    memmove(&rm->tms[i], &rm->tms[i + 1], (size_t)(rm->n - i - 1) * sizeof *rm->tms);
    rm->n--;
}

static int check_registration(const Flint__Rpc__RegisterTaskManager *m, flint_err *err) {
    if (!m->resource_id || !m->resource_id[0] || strlen(m->resource_id) >= sizeof((jm_tm *)0)->resource_id)
        return flint_err_set(err, FLINT_INVALID, "registration without a valid resource_id");
    if (!m->host || !m->host[0] || strlen(m->host) >= sizeof((jm_tm *)0)->host)
        return flint_err_set(err, FLINT_INVALID, "registration of %s without a valid host",
                             m->resource_id);
    if (m->data_port == 0 || m->data_port > 65535)
        return flint_err_set(err, FLINT_INVALID, "registration of %s with data port %u",
                             m->resource_id, m->data_port);
    if (m->num_slots == 0 || m->num_slots > 1024)
        return flint_err_set(err, FLINT_INVALID, "registration of %s with %u slots (1..1024)",
                             m->resource_id, m->num_slots);
    return 0;
}

int jm_rm_register(jm_rm *rm, const Flint__Rpc__RegisterTaskManager *msg, rpc_conn *conn,
                   int64_t now_ms, rpc_conn **replaced, flint_err *err) {
    assert(rm && msg);
    *replaced = NULL;
    if (check_registration(msg, err)) return err ? err->code : FLINT_INVALID;
    int i = find_index(rm, msg->resource_id);
    jm_tm *tm;
    if (i >= 0) {
        tm = rm->tms[i];
        /* A new instance under a known id: whatever ran on the old one is gone. */
        notify_lost(rm, tm, "it registered again (restarted)");
        if (tm->conn != conn) *replaced = tm->conn;
        free(tm->slot_job);
        memset(tm, 0, sizeof *tm);
    } else {
        if (rm->n == rm->cap) {
            rm->cap = rm->cap ? rm->cap * 2 : 8;
            rm->tms = xrealloc(rm->tms, (size_t)rm->cap * sizeof *rm->tms);
        }
        tm = rm->tms[rm->n++] = XNEW(jm_tm);
    }
    snprintf(tm->resource_id, sizeof tm->resource_id, "%s", msg->resource_id);
    snprintf(tm->host, sizeof tm->host, "%s", msg->host);
    tm->data_port = (int)msg->data_port;
    tm->num_slots = tm->free_slots = (int)msg->num_slots;
    tm->slot_job = xcalloc((size_t)tm->num_slots, sizeof *tm->slot_job);
    if (msg->hardware) {
        tm->hardware.cpu_cores = msg->hardware->cpu_cores;
        tm->hardware.physical_memory = msg->hardware->physical_memory;
        tm->hardware.free_memory = msg->hardware->free_memory;
        tm->hardware.managed_memory = msg->hardware->managed_memory;
    }
    tm->registered_ms = time_wall_ms();
    tm->last_heartbeat_ms = now_ms;
    tm->conn = conn;
    log_info("registered taskmanager %s at %s (data port %d, %d slots)%s", tm->resource_id, tm->host,
             tm->data_port, tm->num_slots, i >= 0 ? " again" : "");
    return 0;
}

int jm_rm_heartbeat(jm_rm *rm, const char *resource_id, int64_t now_ms) {
    jm_tm *tm = jm_rm_find(rm, resource_id);
    if (!tm) return FLINT_NOT_FOUND;
    tm->last_heartbeat_ms = now_ms;
    return 0;
}

int jm_rm_unregister(jm_rm *rm, const char *resource_id, const char *reason) {
    int i = find_index(rm, resource_id);
    if (i < 0) return FLINT_NOT_FOUND;
    log_info("taskmanager %s at %s is gone: %s", rm->tms[i]->resource_id, rm->tms[i]->host, reason);
    notify_lost(rm, rm->tms[i], reason);
    remove_at(rm, i);
    return 0;
}

int jm_rm_expire(jm_rm *rm, int64_t now_ms, void (*fn)(jm_tm *tm, void *ud), void *ud) {
    int dropped = 0;
    for (int i = 0; i < rm->n;) {
        jm_tm *tm = rm->tms[i];
        int64_t silent = now_ms - tm->last_heartbeat_ms;
        if (silent <= rm->timeout_ms) {
            i++;
            continue;
        }
        log_warn("taskmanager %s at %s sent no heartbeat for %lld ms (heartbeat.timeout %lld ms)",
                 tm->resource_id, tm->host, (long long)silent, (long long)rm->timeout_ms);
        char reason[128];
        snprintf(reason, sizeof reason, "no heartbeat for %lld ms (heartbeat.timeout %lld ms)",
                 (long long)silent, (long long)rm->timeout_ms);
        notify_lost(rm, tm, reason);
        if (fn) fn(tm, ud);
        remove_at(rm, i);
        dropped++;
    }
    return dropped;
}

jm_tm *jm_rm_find(jm_rm *rm, const char *resource_id) {
    int i = find_index(rm, resource_id);
    return i < 0 ? NULL : rm->tms[i];
}

jm_tm *jm_rm_find_conn(jm_rm *rm, const rpc_conn *conn) {
    for (int i = 0; i < rm->n; i++)
        if (rm->tms[i]->conn == conn) return rm->tms[i];
    return NULL;
}

int jm_rm_count(const jm_rm *rm) { return rm->n; }

jm_tm *jm_rm_get(jm_rm *rm, int i) {
    assert(i >= 0 && i < rm->n);
    return rm->tms[i];
}

int jm_rm_slots_total(const jm_rm *rm) {
    int n = 0;
    for (int i = 0; i < rm->n; i++) n += rm->tms[i]->num_slots;
    return n;
}

int jm_rm_slots_free(const jm_rm *rm) {
    int n = 0;
    for (int i = 0; i < rm->n; i++) n += rm->tms[i]->free_slots;
    return n;
}

/* ---- slots --------------------------------------------------------------------------------- */

static int lowest_free_slot(const jm_tm *tm) {
    for (int s = 0; s < tm->num_slots; s++)
        if (!tm->slot_job[s][0]) return s;
    return -1;
}

int jm_rm_allocate(jm_rm *rm, const char *job_id, int n, jm_slot_ref *out) {
    assert(rm && job_id && job_id[0] && strlen(job_id) < 33 && n >= 0 && (out || n == 0));
    int avail = 0;
    for (int i = 0; i < rm->n; i++)
        if (!rm->tms[i]->lost) avail += rm->tms[i]->free_slots;
    if (avail < n) return FLINT_UNAVAILABLE;
    if (rm->rr_next >= rm->n) rm->rr_next = 0;
    int i = rm->rr_next;
    for (int got = 0; got < n; i = (i + 1) % rm->n) {
        jm_tm *tm = rm->tms[i];
        if (tm->lost || tm->free_slots == 0) continue;
        int s = lowest_free_slot(tm);
        assert(s >= 0);
        snprintf(tm->slot_job[s], sizeof tm->slot_job[s], "%s", job_id);
        tm->free_slots--;
        out[got].tm = tm;
        out[got].index = s;
        got++;
    }
    rm->rr_next = rm->n ? i % rm->n : 0;
    return 0;
}

int jm_rm_release_job(jm_rm *rm, const char *job_id) {
    assert(rm && job_id);
    int freed = 0;
    for (int i = 0; i < rm->n; i++) {
        jm_tm *tm = rm->tms[i];
        for (int s = 0; s < tm->num_slots; s++) {
            if (strcmp(tm->slot_job[s], job_id) != 0) continue;
            tm->slot_job[s][0] = '\0';
            tm->free_slots++;
            freed++;
        }
    }
    return freed;
}

int jm_rm_job_slots(const jm_rm *rm, const char *job_id) {
    assert(rm && job_id);
    int held = 0;
    for (int i = 0; i < rm->n; i++)
        for (int s = 0; s < rm->tms[i]->num_slots; s++)
            if (strcmp(rm->tms[i]->slot_job[s], job_id) == 0) held++;
    return held;
}
