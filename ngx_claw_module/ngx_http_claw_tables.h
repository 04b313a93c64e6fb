
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_TABLES_H_INCLUDED_
#define _NGX_HTTP_CLAW_TABLES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_parse.h"


/*
 * A tenant's configuration, as one position-independent block: the same
 * bytes are built from a registry line or an admin request, stored in the
 * zone, compared on reload and copied (up to "head") by every request.
 *
 *   ngx_http_claw_tconf_t
 *   address             socklen, aligned to 8
 *   tokens              ntokens * 32
 *   allow               nallow * 20
 *   id                  id_len
 *   upstream            upstream_len
 *   ---- head ----
 *   domains             ndomains * (1 length byte + name)
 */

typedef struct {
    uint32_t                     size;
    uint32_t                     head;
    int64_t                      max_body;      /* -1: the location's */
    ngx_http_claw_rate_t         rate;          /* number 0: server default */
    int32_t                      burst;         /* -1: server default */
    int32_t                      conn;          /* -1: server default */
    uint16_t                     socklen;
    u_char                       id_len;
    u_char                       upstream_len;
    u_char                       ntokens;
    u_char                       ndomains;
    u_char                       state;         /* NGX_HTTP_CLAW_STATE_* */
    u_char                       nallow;
    time_t                       seen;          /* copies for the admin API
                                                   only: the slot's */
} ngx_http_claw_tconf_t;

#define NGX_HTTP_CLAW_TCONF_HEAD_MAX                                          \
    (sizeof(ngx_http_claw_tconf_t) + ngx_align(sizeof(ngx_http_claw_addr_t), 8)\
     + NGX_HTTP_CLAW_MAX_TOKENS * NGX_HTTP_CLAW_DIGEST_LEN                    \
     + NGX_HTTP_CLAW_MAX_ALLOW * sizeof(ngx_http_claw_cidr_t)                 \
     + NGX_HTTP_CLAW_ID_MAX + NGX_HTTP_CLAW_UPSTREAM_MAX)

/* the whole block, custom domains included */
#define NGX_HTTP_CLAW_TCONF_MAX                                               \
    (NGX_HTTP_CLAW_TCONF_HEAD_MAX                                             \
     + NGX_HTTP_CLAW_MAX_DOMAINS * (1 + NGX_HTTP_CLAW_HOST_MAX))

#define ngx_http_claw_tconf_addr(tc)                                          \
    ((ngx_http_claw_addr_t *) ((u_char *) (tc)                                \
                               + sizeof(ngx_http_claw_tconf_t)))
#define ngx_http_claw_tconf_tokens(tc)                                        \
    ((u_char *) ngx_http_claw_tconf_addr(tc) + ngx_align((tc)->socklen, 8))
#define ngx_http_claw_tconf_allow(tc)                                         \
    ((ngx_http_claw_cidr_t *) (ngx_http_claw_tconf_tokens(tc)                 \
                               + (tc)->ntokens * NGX_HTTP_CLAW_DIGEST_LEN))
#define ngx_http_claw_tconf_id(tc)                                            \
    ((u_char *) (ngx_http_claw_tconf_allow(tc) + (tc)->nallow))
#define ngx_http_claw_tconf_upstream(tc)                                      \
    (ngx_http_claw_tconf_id(tc) + (tc)->id_len)
#define ngx_http_claw_tconf_domains(tc)                                       \
    (ngx_http_claw_tconf_upstream(tc) + (tc)->upstream_len)


/* the containers' answer times, as a histogram (then +Inf) */
#define NGX_HTTP_CLAW_TTFB_BUCKETS   11


typedef struct ngx_http_claw_tenant_s  ngx_http_claw_tenant_t;
typedef struct ngx_http_claw_name_s    ngx_http_claw_name_t;


/* a change of one tenant, allocated up front, then committed */
typedef struct {
    ngx_http_claw_tconf_t       *src;           /* process memory */
    uint32_t                     hash;
    unsigned                     same:1;
    ngx_http_claw_tconf_t       *conf;          /* new copy in the zone */
    ngx_http_claw_tenant_t      *slot;          /* for a new tenant */
    ngx_http_claw_name_t        *names;         /* via tnext */
} ngx_http_claw_change_t;


/* a tenant's counters as the metrics read them */
typedef struct {
    u_char                       id[NGX_HTTP_CLAW_ID_MAX];
    u_char                       id_len;
    uint64_t                     requests[5];
    uint64_t                     auth_failures;
    uint64_t                     rate_limited;
    uint64_t                     conn_limited;
    uint64_t                     lockouts;
    uint64_t                     refused_state[2];  /* suspended, maint. */
    uint64_t                     refused_address;
    uint64_t                     refused_body;
    uint64_t                     refused_down;
    uint64_t                     up;
    uint64_t                     revoked;
    uint64_t                     bytes_sent;
    uint64_t                     active;
    uint64_t                     upstream_failed;
    uint64_t                     ttfb[NGX_HTTP_CLAW_TTFB_BUCKETS + 1];
    uint64_t                     ttfb_ms;
    uint64_t                     seen;
    uint64_t                     wakes;
    uint64_t                     wake_failures;
    uint64_t                     refused_wake;
} ngx_http_claw_counters_t;


/* a custom domain in the zone's name table */
struct ngx_http_claw_name_s {
    ngx_http_claw_name_t        *next;          /* hash chain */
    ngx_http_claw_name_t        *tnext;         /* the tenant's list */
    ngx_http_claw_tenant_t      *tenant;
    uint32_t                     hash;
    u_char                       len;
    u_char                       name[1];
};


/*
 * A tenant's slot: stable for the tenant's whole life, so limit state
 * and counters outlive configuration changes.  "refs" counts one for the
 * tables and one per request that pinned the slot (and may use it after
 * the lock is released); a slot deleted while pinned is unlinked, marked
 * dead and freed by the last unpin.  "revoked" moves whenever a token of
 * the tenant is taken away or the tenant goes: workers then look again at
 * the requests they relay for it.
 *
 * A request takes the zone's lock once, to find and pin its tenant; its
 * limits are decided, and its pin given back, with atomic operations.
 */

#define NGX_HTTP_CLAW_CLASSES  5                /* 1xx ... 5xx */

typedef struct ngx_http_claw_hold_s    ngx_http_claw_hold_t;
typedef struct ngx_http_claw_ledger_s  ngx_http_claw_ledger_t;

struct ngx_http_claw_tenant_s {
    ngx_http_claw_tenant_t      *next;          /* hash chain */
    ngx_http_claw_tconf_t       *conf;
    ngx_http_claw_name_t        *names;
    ngx_http_claw_hold_t        *holds;         /* one per worker using it */
    uint64_t                     uid;
    uint32_t                     hash;
    uint32_t                     mark;
    unsigned                     dead:1;

    /* updated without the lock */
    ngx_atomic_t                 refs;
    ngx_atomic_t                 active;
    ngx_atomic_t                 revoked;

    /*
     * The rate limiter's state: GCRA's theoretical arrival time, in
     * nanoseconds; compared and set where ngx_atomic_t has 64 bits, under
     * the lock elsewhere
     */
#if (NGX_HAVE_ATOMIC_OPS && NGX_PTR_SIZE == 8)
    ngx_atomic_t                 tat;
#else
    uint64_t                     tat;
#endif

    ngx_atomic_t                 requests[NGX_HTTP_CLAW_CLASSES];
    ngx_atomic_t                 auth_failures;
    ngx_atomic_t                 rate_limited;   /* conn_limited included */
    ngx_atomic_t                 conn_limited;
    ngx_atomic_t                 lockouts;
    ngx_atomic_t                 refused_state[2];
    ngx_atomic_t                 refused_address;
    ngx_atomic_t                 refused_body;
    ngx_atomic_t                 revoked_requests;
    ngx_atomic_t                 bytes_sent;
    ngx_atomic_t                 refused_down;

    /* its container's failed attempts and answer times, as the edge's */
    ngx_atomic_t                 upstream_failed;
    ngx_atomic_t                 ttfb[NGX_HTTP_CLAW_TTFB_BUCKETS + 1];
    ngx_atomic_t                 ttfb_ms;

    /*
     * Idle and asleep (claw_wake): the time of its last admitted request
     * or tunnel byte (ngx_time()); in ngx_current_msec, when the wake
     * under way ends (0: none; it names the wake), the wake whose hook
     * said it started, the wake that failed, when a probe last saw its
     * container accept, the last probe of it
     */
    ngx_atomic_t                 seen;
    ngx_atomic_t                 wake_deadline;
    ngx_atomic_t                 wake_hooked;
    ngx_atomic_t                 wake_failed;
    ngx_atomic_t                 wake_up;
    ngx_atomic_t                 wake_probe;
    ngx_atomic_t                 waiting;        /* requests held */
    ngx_atomic_t                 wakes;          /* hook calls that started
                                                    one */
    ngx_atomic_t                 wake_failures;
    ngx_atomic_t                 refused_wake;

    /* its container's passive health (claw_health), in ngx_current_msec */
    ngx_atomic_t                 fails;          /* in a row */
    ngx_atomic_t                 down_until;     /* 0: up */
    ngx_atomic_t                 probe;          /* one request let through */

    /* cluster mode: other nodes' admissions, as last debited here */
    uint64_t                     share_seen;
    ngx_msec_t                   share_when;
};


/*
 * What each worker holds: pinned slots and admitted requests per tenant,
 * one record per tenant the worker has served, kept (and found again
 * through the tenant) so that a request allocates nothing.  Only the
 * worker writes its counts.  A worker that dies without releasing them
 * (kill -9, a crash) leaves its ledger behind, and the next worker to
 * start gives it all back, so no concurrency count stays stuck.
 */

struct ngx_http_claw_hold_s {
    ngx_queue_t                  queue;         /* the ledger's */
    ngx_http_claw_hold_t        *tnext;         /* the tenant's */
    ngx_http_claw_tenant_t      *tenant;
    ngx_http_claw_ledger_t      *ledger;
    uint32_t                     pins;
    uint32_t                     active;
    uint32_t                     waiting;       /* held by claw_wake */
    uint32_t                     share_round;   /* the worker's own */
    uint32_t                     share_index;
};


struct ngx_http_claw_ledger_s {
    ngx_http_claw_ledger_t      *next;
    ngx_int_t                    slot;          /* ngx_process_slot */
    ngx_pid_t                    pid;           /* 0: free */
    ngx_queue_t                  holds;
};


typedef struct {
    ngx_uint_t                   nbuckets;      /* a power of two */
    ngx_http_claw_tenant_t     **ids;
    ngx_http_claw_name_t       **names;
    ngx_http_claw_ledger_t      *ledgers;       /* one per process slot */
    ngx_uint_t                   ntenants;
    uint64_t                     uid;
    uint64_t                     changes;       /* of tenants and domains */
    uint32_t                     mark;

    /* the edge's, for the metrics: failed attempts, answer times */
    ngx_atomic_t                 upstream_failed;
    ngx_atomic_t                 ttfb[NGX_HTTP_CLAW_TTFB_BUCKETS + 1];
    ngx_atomic_t                 ttfb_ms;

    /* read without the lock */
    ngx_atomic_t                 revoked;       /* of any tenant */
    ngx_atomic_t                 retired;       /* replaced by a reload */
    ngx_atomic_t                 share;         /* > 1: rates divided */
} ngx_http_claw_shctx_t;


typedef struct {
    ngx_http_claw_shctx_t       *sh;
    ngx_slab_pool_t             *shpool;
    ngx_shm_zone_t              *shm_zone;
    ngx_http_claw_ledger_t      *ledger;        /* this worker's */
} ngx_http_claw_tables_t;


ngx_int_t ngx_http_claw_tables_init_zone(ngx_http_claw_tables_t *tb,
    ngx_shm_zone_t *shm_zone, ngx_http_claw_tables_t *otb);
void ngx_http_claw_tables_retire(ngx_shm_zone_t *shm_zone);
ngx_uint_t ngx_http_claw_tables_retired(ngx_http_claw_tables_t *tb);
ngx_int_t ngx_http_claw_tables_init_worker(ngx_http_claw_tables_t *tb,
    ngx_log_t *log);
void ngx_http_claw_tables_exit_worker(ngx_http_claw_tables_t *tb);

ngx_http_claw_tenant_t *ngx_http_claw_tables_acquire(
    ngx_http_claw_tables_t *tb, ngx_uint_t domain, uint32_t hash,
    u_char *name, size_t len, ngx_http_claw_tconf_t *copy,
    ngx_atomic_uint_t *revoked, ngx_http_claw_hold_t **hold,
    ngx_uint_t *full);
void ngx_http_claw_tables_release(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t, ngx_http_claw_hold_t *hold,
    ngx_uint_t active);
ngx_uint_t ngx_http_claw_tables_admit(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t, ngx_http_claw_hold_t *hold, uint64_t now,
    uint64_t interval, int64_t burst, int64_t conn, uint64_t *wait,
    uint64_t *next);
/* what other nodes admitted of a tenant, in all (cluster mode) */
typedef struct {
    u_char                      *id;
    size_t                       len;
    uint64_t                     others;
    uint64_t                     interval;      /* ns, as admitted here */
} ngx_http_claw_debit_t;

void ngx_http_claw_tables_debit(ngx_http_claw_tables_t *tb,
    ngx_http_claw_debit_t *d, ngx_uint_t n, uint64_t now,
    ngx_msec_t stale);
void ngx_http_claw_tables_share(ngx_http_claw_tables_t *tb, ngx_uint_t n);
ngx_http_claw_tenant_t *ngx_http_claw_tables_peek(ngx_http_claw_tables_t *tb,
    ngx_uint_t domain, u_char *name, size_t len);
ngx_int_t ngx_http_claw_tables_owns(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t, u_char *domain, size_t len);
ngx_msec_t ngx_http_claw_tables_health(ngx_http_claw_tenant_t *t,
    ngx_msec_t now, ngx_msec_t timeout, ngx_uint_t *probe);
ngx_uint_t ngx_http_claw_tables_health_report(ngx_http_claw_tenant_t *t,
    ngx_uint_t ok, ngx_msec_t now, ngx_uint_t max_fails, ngx_msec_t timeout);
ngx_uint_t ngx_http_claw_tables_holds(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t, u_char *digest);

ngx_int_t ngx_http_claw_tables_prepare(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tconf_t *src, ngx_http_claw_change_t *ch, ngx_str_t *owner,
    ngx_pool_t *pool);
ngx_uint_t ngx_http_claw_tables_commit(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch);
void ngx_http_claw_tables_abort(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch);
ngx_int_t ngx_http_claw_tables_remove(ngx_http_claw_tables_t *tb,
    u_char *id, size_t len);

ngx_int_t ngx_http_claw_tables_prepare_all(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *changes, ngx_uint_t n, ngx_log_t *log);
ngx_uint_t ngx_http_claw_tables_commit_all(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *changes, ngx_uint_t n);
void ngx_http_claw_tables_abort_all(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *changes, ngx_uint_t n);

ngx_http_claw_tconf_t *ngx_http_claw_tables_get(ngx_http_claw_tables_t *tb,
    u_char *id, size_t len, ngx_pool_t *pool);
uint64_t ngx_http_claw_tables_changes(ngx_http_claw_tables_t *tb);
ngx_uint_t ngx_http_claw_tables_count(ngx_http_claw_tables_t *tb);
ngx_http_claw_tconf_t **ngx_http_claw_tables_list(ngx_http_claw_tables_t *tb,
    ngx_pool_t *pool, ngx_uint_t *n);
ngx_http_claw_tconf_t **ngx_http_claw_tables_page(ngx_http_claw_tables_t *tb,
    ngx_pool_t *pool, ngx_str_t *after, ngx_uint_t limit, ngx_uint_t *n,
    ngx_uint_t *more);
ngx_http_claw_counters_t *ngx_http_claw_tables_counters(
    ngx_http_claw_tables_t *tb, ngx_pool_t *pool, ngx_uint_t *n);

size_t ngx_http_claw_tconf_size(ngx_http_claw_entry_t *e, size_t *head);
void ngx_http_claw_tconf_build(ngx_http_claw_tconf_t *tc,
    ngx_http_claw_entry_t *e);
size_t ngx_http_claw_tconf_line(ngx_http_claw_tconf_t *tc, u_char *buf);
void ngx_http_claw_tconf_entry(ngx_http_claw_tconf_t *tc,
    ngx_http_claw_entry_t *e);


#endif /* _NGX_HTTP_CLAW_TABLES_H_INCLUDED_ */
