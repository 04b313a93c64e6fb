
/*
 * Copyright (C) ngx_claw_module authors
 *
 * The tenant tables in the shared zone: tenants by id, custom domains by
 * name, and the ledgers of what each worker holds.  Requests pin a
 * tenant's slot in the one critical section they take, and work on a
 * copy of its configuration; every change, from the registry file on
 * reload or from the admin API, is prepared (allocated) first and then
 * committed under one lock, so no request ever sees half a change.
 * Nothing here does I/O or knows where a change came from.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_tables.h"
#include "ngx_http_claw_token.h"


/* tenants' counts are shared by the workers without the lock */

#if !(NGX_HAVE_ATOMIC_OPS)
#error "ngx_claw_module needs the atomic operations this nginx lacks"
#endif


static ngx_int_t ngx_http_claw_prepare(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch);
static void ngx_http_claw_unprepare(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch);
static ngx_int_t ngx_http_claw_alloc_change_locked(
    ngx_http_claw_tables_t *tb, ngx_http_claw_change_t *ch,
    ngx_uint_t slot);
static ngx_int_t ngx_http_claw_alloc_try_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch, ngx_uint_t slot);
static ngx_uint_t ngx_http_claw_room_locked(ngx_http_claw_tables_t *tb);
static void ngx_http_claw_unprepare_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch);
static ngx_uint_t ngx_http_claw_commit_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch, uint32_t mark);
static void ngx_http_claw_revoke_tokens_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t, ngx_http_claw_tconf_t *conf);
static void ngx_http_claw_revoke_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t);
static void *ngx_http_claw_snapshot(ngx_http_claw_tables_t *tb,
    ngx_pool_t *pool, ngx_uint_t what, ngx_uint_t *n);
static ngx_int_t ngx_http_claw_order(ngx_http_claw_tenant_t *a,
    uint32_t hash, u_char *id, size_t len);


static ngx_str_t  ngx_http_claw_no_id = ngx_null_string;
static int ngx_libc_cdecl ngx_http_claw_tconf_cmp(const void *one,
    const void *two);
static void ngx_http_claw_unlink_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t);
static void ngx_http_claw_unlink_names_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t);
static ngx_http_claw_tenant_t *ngx_http_claw_find_id_locked(
    ngx_http_claw_shctx_t *sh, uint32_t hash, u_char *id, size_t len);
static ngx_http_claw_tenant_t *ngx_http_claw_find_domain_locked(
    ngx_http_claw_shctx_t *sh, uint32_t hash, u_char *name, size_t len);
static ngx_http_claw_hold_t *ngx_http_claw_hold_locked(
    ngx_http_claw_tables_t *tb, ngx_http_claw_tenant_t *t);
static ngx_uint_t ngx_http_claw_reclaim_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_ledger_t *ledger);
static ngx_uint_t ngx_http_claw_reclaim_all_locked(
    ngx_http_claw_tables_t *tb);
static void ngx_http_claw_unhold_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_hold_t *h);
static void ngx_http_claw_free_tenant_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t);


/*
 * A new zone gets its tables; a zone kept across a reload (same name and
 * size) keeps them, tenants, limit state and counters included.  What
 * the registry holds is put in later, when the cycle commits.
 */

ngx_int_t
ngx_http_claw_tables_init_zone(ngx_http_claw_tables_t *tb,
    ngx_shm_zone_t *shm_zone, ngx_http_claw_tables_t *otb)
{
    size_t                  len;
    ngx_uint_t              n;
    ngx_slab_pool_t        *shpool;
    ngx_http_claw_shctx_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    tb->shpool = shpool;

    if (otb) {
        tb->sh = otb->sh;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        tb->sh = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_claw_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    /*
     * A tenant takes a few hundred bytes at least, so one bucket per
     * 512 bytes of zone keeps chains short at any fill.
     */

    for (n = 64; n * 2 <= shm_zone->shm.size / 512; n *= 2) {
        /* void */
    }

    sh->nbuckets = n;

    sh->ids = ngx_slab_calloc(shpool, n * sizeof(ngx_http_claw_tenant_t *));
    sh->names = ngx_slab_calloc(shpool, n * sizeof(ngx_http_claw_name_t *));

    if (sh->ids == NULL || sh->names == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;
    tb->sh = sh;

    len = sizeof(" in claw zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in claw zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is reported by the caller, with what did not fit */
    shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * A reload put the registry in another zone (a new size or name): the
 * old workers, still on this one until they exit, must no longer take
 * changes (they would never reach the new zone), nor keep relaying for
 * credentials whose revocation they could no longer see.
 */

void
ngx_http_claw_tables_retire(ngx_shm_zone_t *shm_zone)
{
    ngx_slab_pool_t        *shpool;
    ngx_http_claw_shctx_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    sh = shpool->data;

    if (sh == NULL) {
        return;
    }

    ngx_memory_barrier();
    sh->retired = 1;
    (void) ngx_atomic_fetch_add(&sh->revoked, 1);
}


ngx_uint_t
ngx_http_claw_tables_retired(ngx_http_claw_tables_t *tb)
{
    return tb->sh->retired != 0;
}


/*
 * Makes the zone hold exactly the given tenants, in two steps: every
 * allocation first (a zone too small fails the reload with the zone as
 * it was), then, when the cycle commits, the whole switch under one
 * lock, so no request sees a mix of the two registries.  A tenant whose
 * configuration did not change keeps its block, and every surviving
 * tenant keeps its slot: limit state and counters carry over.
 */

ngx_int_t
ngx_http_claw_tables_prepare_all(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *changes, ngx_uint_t n, ngx_log_t *log)
{
    ngx_uint_t               i;
    ngx_http_claw_change_t  *ch;

    for (i = 0; i < n; i++) {
        ch = &changes[i];
        ch->hash = ngx_murmur_hash2(ngx_http_claw_tconf_id(ch->src),
                                    ch->src->id_len);

        if (ngx_http_claw_prepare(tb, ch) != NGX_OK) {
            ngx_log_error(NGX_LOG_EMERG, log, 0,
                          "claw zone \"%V\" is too small for %ui tenants "
                          "(stopped at \"%*s\")", &tb->shm_zone->shm.name,
                          n, (size_t) ch->src->id_len,
                          ngx_http_claw_tconf_id(ch->src));

            ngx_http_claw_tables_abort_all(tb, changes, i);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* returns the number of tenants removed */

ngx_uint_t
ngx_http_claw_tables_commit_all(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *changes, ngx_uint_t n)
{
    uint32_t                 mark;
    ngx_uint_t               i, removed;
    ngx_http_claw_shctx_t   *sh;
    ngx_http_claw_tenant_t  *t, **tp;

    sh = tb->sh;

    ngx_shmtx_lock(&tb->shpool->mutex);

    mark = ++sh->mark;

    for (i = 0; i < n; i++) {
        ngx_http_claw_commit_locked(tb, &changes[i], mark);
    }

    removed = 0;

    for (i = 0; i < sh->nbuckets; i++) {
        tp = &sh->ids[i];

        while (*tp) {
            t = *tp;

            if (t->mark == mark) {
                tp = &t->next;
                continue;
            }

            *tp = t->next;
            ngx_http_claw_unlink_locked(tb, t);
            removed++;
        }
    }

    ngx_shmtx_unlock(&tb->shpool->mutex);

    return removed;
}


void
ngx_http_claw_tables_abort_all(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *changes, ngx_uint_t n)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        ngx_http_claw_unprepare(tb, &changes[i]);
    }
}


static ngx_int_t
ngx_http_claw_prepare(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch)
{
    ngx_int_t                rc;
    ngx_http_claw_tenant_t  *t;
    ngx_http_claw_tconf_t   *src;

    src = ch->src;

    ngx_shmtx_lock(&tb->shpool->mutex);

    t = ngx_http_claw_find_id_locked(tb->sh, ch->hash,
                                     ngx_http_claw_tconf_id(src),
                                     src->id_len);

    ch->same = (t && t->conf->size == src->size
                && ngx_memcmp(t->conf, src, src->size) == 0);

    rc = ch->same ? NGX_OK : ngx_http_claw_alloc_change_locked(tb, ch,
                                                               t == NULL);

    ngx_shmtx_unlock(&tb->shpool->mutex);

    return rc;
}


/*
 * What a change puts in the zone: the configuration block, the custom
 * domains' name records and, for a new tenant, its slot.  A full zone
 * first gives up the workers' records of tenants they have no request
 * of; then it is an error: nothing is half allocated, no tenant evicted.
 */

static ngx_int_t
ngx_http_claw_alloc_change_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch, ngx_uint_t slot)
{
    ngx_uint_t  i;

    for (i = 0; /* void */; i++) {
        if (ngx_http_claw_alloc_try_locked(tb, ch, slot) == NGX_OK) {

            if (ngx_http_claw_room_locked(tb)) {
                return NGX_OK;
            }

            ngx_http_claw_unprepare_locked(tb, ch);
        }

        if (i == 1 || ngx_http_claw_reclaim_all_locked(tb) == 0) {
            return NGX_ERROR;
        }
    }
}


/*
 * Tenants leave the last thirty-second of the zone's pages, two at
 * least, to the workers' records: a request always finds room for one
 */

static ngx_uint_t
ngx_http_claw_room_locked(ngx_http_claw_tables_t *tb)
{
    ngx_uint_t  reserve;

    reserve = tb->shm_zone->shm.size / ngx_pagesize / 32;

    return tb->shpool->pfree >= ngx_max(reserve, 2);
}


static ngx_int_t
ngx_http_claw_alloc_try_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch, ngx_uint_t slot)
{
    u_char                 *d;
    size_t                  len;
    ngx_uint_t              i;
    ngx_http_claw_name_t   *name;
    ngx_http_claw_tconf_t  *src;

    src = ch->src;

    if (slot) {
        ch->slot = ngx_slab_alloc_locked(tb->shpool,
                                         sizeof(ngx_http_claw_tenant_t));
        if (ch->slot == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(ch->slot, sizeof(ngx_http_claw_tenant_t));

        /* a new tenant is not idle: a restart must not look like one */
        ch->slot->seen = ngx_time();
    }

    ch->conf = ngx_slab_alloc_locked(tb->shpool, src->size);
    if (ch->conf == NULL) {
        goto failed;
    }

    ngx_memcpy(ch->conf, src, src->size);

    d = ngx_http_claw_tconf_domains(src);

    for (i = 0; i < src->ndomains; i++) {
        len = *d++;

        name = ngx_slab_alloc_locked(tb->shpool,
                                  offsetof(ngx_http_claw_name_t, name) + len);
        if (name == NULL) {
            goto failed;
        }

        name->len = (u_char) len;
        ngx_memcpy(name->name, d, len);
        name->hash = ngx_murmur_hash2(d, len);
        name->tenant = NULL;
        name->next = NULL;
        name->tnext = ch->names;
        ch->names = name;

        d += len;
    }

    return NGX_OK;

failed:

    ngx_http_claw_unprepare_locked(tb, ch);

    return NGX_ERROR;
}


static void
ngx_http_claw_unprepare(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch)
{
    ngx_shmtx_lock(&tb->shpool->mutex);
    ngx_http_claw_unprepare_locked(tb, ch);
    ngx_shmtx_unlock(&tb->shpool->mutex);
}


static void
ngx_http_claw_unprepare_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch)
{
    ngx_http_claw_name_t  *name, *next;

    for (name = ch->names; name; name = next) {
        next = name->tnext;
        ngx_slab_free_locked(tb->shpool, name);
    }

    if (ch->conf) {
        ngx_slab_free_locked(tb->shpool, ch->conf);
    }

    if (ch->slot) {
        ngx_slab_free_locked(tb->shpool, ch->slot);
    }

    ch->names = NULL;
    ch->conf = NULL;
    ch->slot = NULL;
}


static ngx_uint_t
ngx_http_claw_commit_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch, uint32_t mark)
{
    ngx_uint_t               b, created;
    ngx_http_claw_name_t    *name;
    ngx_http_claw_shctx_t   *sh;
    ngx_http_claw_tenant_t  *t;

    sh = tb->sh;

    t = ngx_http_claw_find_id_locked(sh, ch->hash,
                                     ngx_http_claw_tconf_id(ch->src),
                                     ch->src->id_len);

    if (ch->same) {
        if (t && t->conf->size == ch->src->size
            && ngx_memcmp(t->conf, ch->src, ch->src->size) == 0)
        {
            t->mark = mark;
            return 0;
        }

        /*
         * Changed since it was judged the same: changes are serialised by
         * the journal lock, so this is not expected; allocate here, and
         * change nothing if that fails.
         */

        if (ngx_http_claw_alloc_change_locked(tb, ch, t == NULL) != NGX_OK) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "claw zone \"%V\" full: tenant \"%*s\" not "
                          "changed", &tb->shm_zone->shm.name,
                          (size_t) ch->src->id_len,
                          ngx_http_claw_tconf_id(ch->src));
            return 0;
        }
    }

    created = (t == NULL);
    sh->changes++;

    if (t == NULL) {
        t = ch->slot;
        ch->slot = NULL;

        t->uid = ++sh->uid;
        t->hash = ch->hash;
        t->refs = 1;                        /* the tables' */

        b = t->hash & (sh->nbuckets - 1);
        t->next = sh->ids[b];
        sh->ids[b] = t;
        sh->ntenants++;

    } else {
        ngx_http_claw_unlink_names_locked(tb, t);

        if (t->conf) {
            ngx_http_claw_revoke_tokens_locked(tb, t, ch->conf);
            ngx_slab_free_locked(tb->shpool, t->conf);
        }
    }

    t->conf = ch->conf;
    t->mark = mark;
    ch->conf = NULL;

    t->names = ch->names;
    ch->names = NULL;

    for (name = t->names; name; name = name->tnext) {
        name->tenant = t;
        b = name->hash & (sh->nbuckets - 1);
        name->next = sh->names[b];
        sh->names[b] = name;
    }

    if (ch->slot) {
        ngx_slab_free_locked(tb->shpool, ch->slot);
        ch->slot = NULL;
    }

    return created;
}


/* the caller has removed t from its id chain */

static void
ngx_http_claw_unlink_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t)
{
    ngx_http_claw_unlink_names_locked(tb, t);

    ngx_slab_free_locked(tb->shpool, t->conf);
    t->conf = NULL;

    tb->sh->ntenants--;
    tb->sh->changes++;

    t->dead = 1;

    /* pinned: workers look again at what they relay for it */

    if (t->refs > 1) {
        ngx_http_claw_revoke_locked(tb, t);
    }

    /* with the lock held nobody pins it any more: the last unpin frees */

    if (ngx_atomic_fetch_add(&t->refs, (ngx_atomic_int_t) -1) == 1) {
        ngx_http_claw_free_tenant_locked(tb, t);
    }
}


/* a slot nobody pins, unlinked: its ledger records go with it */

static void
ngx_http_claw_free_tenant_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t)
{
    ngx_http_claw_hold_t  *h, *next;

    for (h = t->holds; h; h = next) {
        next = h->tnext;
        ngx_queue_remove(&h->queue);
        ngx_slab_free_locked(tb->shpool, h);
    }

    ngx_slab_free_locked(tb->shpool, t);
}


/* takes a tenant's custom domains out of the name table, and frees them */

static void
ngx_http_claw_unlink_names_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t)
{
    ngx_http_claw_name_t   *name, *next, **np;
    ngx_http_claw_shctx_t  *sh;

    sh = tb->sh;

    for (name = t->names; name; name = next) {
        next = name->tnext;

        for (np = &sh->names[name->hash & (sh->nbuckets - 1)];
             *np;
             np = &(*np)->next)
        {
            if (*np == name) {
                *np = name->next;
                break;
            }
        }

        ngx_slab_free_locked(tb->shpool, name);
    }

    t->names = NULL;
}


/* a token of the old configuration missing from the new one is revoked */

static void
ngx_http_claw_revoke_tokens_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t, ngx_http_claw_tconf_t *conf)
{
    u_char      *old;
    ngx_uint_t   i;

    /* a tenant suspended or put in maintenance keeps nothing open */

    if (!ngx_http_claw_state_open(conf->state)
        && ngx_http_claw_state_open(t->conf->state))
    {
        ngx_http_claw_revoke_locked(tb, t);
        return;
    }

    old = ngx_http_claw_tconf_tokens(t->conf);

    for (i = 0; i < t->conf->ntokens; i++) {
        if (ngx_http_claw_digest_find(old + i * NGX_HTTP_CLAW_DIGEST_LEN,
                                      ngx_http_claw_tconf_tokens(conf),
                                      conf->ntokens)
            < 0)
        {
            ngx_http_claw_revoke_locked(tb, t);
            return;
        }
    }
}


/*
 * Workers compare both numbers with what they saw: the zone's to learn
 * cheaply that something was revoked, the tenant's to learn for whom.
 */

static void
ngx_http_claw_revoke_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t)
{
    (void) ngx_atomic_fetch_add(&t->revoked, 1);
    (void) ngx_atomic_fetch_add(&tb->sh->revoked, 1);
}


/*
 * A tenant's container, marked down after max_fails failed attempts in a
 * row (claw_health): requests are answered at once meanwhile, and after
 * the timeout one request at a time is let through to try it.  Returns 0
 * to go on (with *probe set for the one let through), else how long to
 * wait.  Atomics only: shared by every worker, no lock.
 */

ngx_msec_t
ngx_http_claw_tables_health(ngx_http_claw_tenant_t *t, ngx_msec_t now,
    ngx_msec_t timeout, ngx_uint_t *probe)
{
    ngx_msec_int_t     left;
    ngx_atomic_uint_t  until, p;

    *probe = 0;

    until = t->down_until;

    if (until == 0) {
        return 0;
    }

    left = (ngx_msec_int_t) (until - now);

    if (left > 0) {
        return (ngx_msec_t) left;
    }

    /* a probe that never reported (its request ended before) expires */

    p = t->probe;

    if (p && (ngx_msec_int_t) (now - p) < (ngx_msec_int_t) timeout) {
        return 1000;
    }

    if (!ngx_atomic_cmp_set(&t->probe, p, now ? now : 1)) {
        return 1000;
    }

    *probe = 1;

    return 0;
}


/* an attempt's outcome; 1 when it marked the container down, 2 up again */

ngx_uint_t
ngx_http_claw_tables_health_report(ngx_http_claw_tenant_t *t, ngx_uint_t ok,
    ngx_msec_t now, ngx_uint_t max_fails, ngx_msec_t timeout)
{
    ngx_atomic_uint_t  n, until;

    if (ok) {
        if (t->fails) {
            t->fails = 0;
        }

        until = t->down_until;

        if (until && ngx_atomic_cmp_set(&t->down_until, until, 0)) {
            t->probe = 0;
            return 2;
        }

        return 0;
    }

    n = ngx_atomic_fetch_add(&t->fails, 1) + 1;

    if (n < max_fails) {
        return 0;
    }

    until = now + timeout;

    t->down_until = until ? until : 1;
    t->probe = 0;

    return (n == max_fails) ? 1 : 0;
}


/*
 * Whether a request authenticated with the token of this digest (or a
 * session minted from it) may go on: its tenant is still there and
 * still has the token.
 */

ngx_uint_t
ngx_http_claw_tables_holds(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t, u_char *digest)
{
    ngx_uint_t  ok;

    ngx_shmtx_lock(&tb->shpool->mutex);

    ok = !t->dead
         && ngx_http_claw_state_open(t->conf->state)
         && ngx_http_claw_digest_find(digest,
                                      ngx_http_claw_tconf_tokens(t->conf),
                                      t->conf->ntokens)
            >= 0;

    ngx_shmtx_unlock(&tb->shpool->mutex);

    return ok;
}


/*
 * Finds a tenant and pins its slot for the request; the request gets a
 * copy of the tenant's configuration, so the lock is held for the lookup
 * and a copy of a few hundred bytes, no longer.  NULL with *full set: the
 * tenant is there, but the zone has no room for this worker's record.
 */

ngx_http_claw_tenant_t *
ngx_http_claw_tables_acquire(ngx_http_claw_tables_t *tb,
    ngx_uint_t domain, uint32_t hash, u_char *name, size_t len,
    ngx_http_claw_tconf_t *copy, ngx_atomic_uint_t *revoked,
    ngx_http_claw_hold_t **hold, ngx_uint_t *full)
{
    ngx_http_claw_hold_t    *h;
    ngx_http_claw_tenant_t  *t;

    *full = 0;
    *hold = NULL;

    ngx_shmtx_lock(&tb->shpool->mutex);

    if (domain) {
        t = ngx_http_claw_find_domain_locked(tb->sh, hash, name, len);

    } else {
        t = ngx_http_claw_find_id_locked(tb->sh, hash, name, len);
    }

    if (t) {
        h = ngx_http_claw_hold_locked(tb, t);

        if (h == NULL && tb->ledger) {
            *full = 1;
            t = NULL;
            goto done;
        }

        /* the ref first: a worker killed between the two leaves refs
         * too high (a deleted tenant never freed), never too low */

        (void) ngx_atomic_fetch_add(&t->refs, 1);

        if (h) {
            h->pins++;
            *hold = h;
        }

        *revoked = t->revoked;
        ngx_memcpy(copy, t->conf, t->conf->head);
    }

done:

    ngx_shmtx_unlock(&tb->shpool->mutex);

    return t;
}


/*
 * The request ends: without the lock, unless it was the last pin of a
 * deleted tenant.  The worker's own record first: a worker killed between
 * the two leaves a count too high (a slot never freed), never too low.
 * Its pins last: a record without pins is another process's to free
 * (ngx_http_claw_reclaim_all_locked), and is not written any more.
 */

void
ngx_http_claw_tables_release(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t, ngx_http_claw_hold_t *hold, ngx_uint_t active)
{
    if (hold) {
        if (active) {
            hold->active--;
        }

        ngx_memory_barrier();
        hold->pins--;
    }

    if (active) {
        (void) ngx_atomic_fetch_add(&t->active, (ngx_atomic_int_t) -1);
    }

    if (ngx_atomic_fetch_add(&t->refs, (ngx_atomic_int_t) -1) == 1) {
        ngx_shmtx_lock(&tb->shpool->mutex);
        ngx_http_claw_free_tenant_locked(tb, t);
        ngx_shmtx_unlock(&tb->shpool->mutex);
    }
}


/*
 * Admits a request of a pinned tenant, or says how long to wait (*wait,
 * nanoseconds; 0 with a refusal: over the concurrency limit).  The rate
 * is judged before the concurrency, as a refusal reports the rate first;
 * the count of requests in flight is taken, then the rate spent, and the
 * count given back if another request spent the rate in between.
 */

ngx_uint_t
ngx_http_claw_tables_admit(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t, ngx_http_claw_hold_t *hold, uint64_t now,
    uint64_t interval, int64_t burst, int64_t conn, uint64_t *wait,
    uint64_t *next)
{
    uint64_t           tat;
    ngx_atomic_uint_t  active;

    *wait = 0;
    *next = 0;

    /* a cluster node cut off from the others takes its share only */

    if (tb->sh->share > 1) {
        interval *= tb->sh->share;
    }

#if (NGX_HAVE_ATOMIC_OPS && NGX_PTR_SIZE == 8)

    if (interval) {
        *wait = ngx_http_claw_gcra(t->tat, now, interval, burst, next);

        if (*wait) {
            return 0;
        }
    }

    active = ngx_atomic_fetch_add(&t->active, 1);

    if (conn && active >= (ngx_atomic_uint_t) conn) {
        (void) ngx_atomic_fetch_add(&t->active, (ngx_atomic_int_t) -1);
        return 0;
    }

    while (interval) {
        tat = t->tat;

        *wait = ngx_http_claw_gcra(tat, now, interval, burst, next);

        if (*wait) {
            (void) ngx_atomic_fetch_add(&t->active, (ngx_atomic_int_t) -1);
            return 0;
        }

        if (ngx_atomic_cmp_set(&t->tat, tat, *next)) {
            break;
        }
    }

#else

    ngx_shmtx_lock(&tb->shpool->mutex);

    if (interval) {
        *wait = ngx_http_claw_gcra(t->tat, now, interval, burst, next);
    }

    active = t->active;

    if (*wait || (conn && active >= (ngx_atomic_uint_t) conn)) {
        ngx_shmtx_unlock(&tb->shpool->mutex);
        return 0;
    }

    if (interval) {
        t->tat = *next;
    }

    /* releases give it back without the lock */
    (void) ngx_atomic_fetch_add(&t->active, 1);

    ngx_shmtx_unlock(&tb->shpool->mutex);

    (void) tat;

#endif

    if (hold) {
        hold->active++;
    }

    return 1;
}


/* this worker's record for t, created on its first request */

static ngx_http_claw_hold_t *
ngx_http_claw_hold_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t)
{
    ngx_http_claw_hold_t    *h;
    ngx_http_claw_ledger_t  *ledger;

    ledger = tb->ledger;

    if (ledger == NULL) {
        return NULL;
    }

    for (h = t->holds; h; h = h->tnext) {
        if (h->ledger == ledger) {
            return h;
        }
    }

    h = ngx_slab_alloc_locked(tb->shpool, sizeof(ngx_http_claw_hold_t));

    if (h == NULL) {
        /* room for tenants first: the records of idle ones go */
        ngx_http_claw_reclaim_all_locked(tb);
        h = ngx_slab_alloc_locked(tb->shpool, sizeof(ngx_http_claw_hold_t));

        if (h == NULL) {
            return NULL;
        }
    }

    h->tenant = t;
    h->ledger = ledger;
    h->pins = 0;
    h->active = 0;
    h->waiting = 0;
    h->share_round = 0;
    h->tnext = t->holds;
    t->holds = h;
    ngx_queue_insert_tail(&ledger->holds, &h->queue);

    return h;
}


/* frees a ledger's records of tenants it has no request of; how many */

static ngx_uint_t
ngx_http_claw_reclaim_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_ledger_t *ledger)
{
    ngx_uint_t             n;
    ngx_queue_t           *q, *next;
    ngx_http_claw_hold_t  *h;

    n = 0;

    for (q = ngx_queue_head(&ledger->holds);
         q != ngx_queue_sentinel(&ledger->holds);
         q = next)
    {
        next = ngx_queue_next(q);
        h = ngx_queue_data(q, ngx_http_claw_hold_t, queue);

        if (h->pins == 0) {
            /* its owner's last writes, active before pins, are seen */
            ngx_memory_barrier();
            ngx_http_claw_unhold_locked(tb, h);
            n++;
        }
    }

    return n;
}


/* every worker's records of tenants it has no request of; how many */

static ngx_uint_t
ngx_http_claw_reclaim_all_locked(ngx_http_claw_tables_t *tb)
{
    ngx_uint_t               n;
    ngx_http_claw_ledger_t  *ledger;

    n = 0;

    for (ledger = tb->sh->ledgers; ledger; ledger = ledger->next) {
        n += ngx_http_claw_reclaim_locked(tb, ledger);
    }

    return n;
}


/* a record goes: what it still counts is given back */

static void
ngx_http_claw_unhold_locked(ngx_http_claw_tables_t *tb,
    ngx_http_claw_hold_t *h)
{
    ngx_http_claw_hold_t    **hp;
    ngx_http_claw_tenant_t   *t;

    t = h->tenant;

    for (hp = &t->holds; *hp; hp = &(*hp)->tnext) {
        if (*hp == h) {
            *hp = h->tnext;
            break;
        }
    }

    ngx_queue_remove(&h->queue);

    if (h->active) {
        (void) ngx_atomic_fetch_add(&t->active,
                                    - (ngx_atomic_int_t) h->active);
    }

    if (h->waiting) {
        (void) ngx_atomic_fetch_add(&t->waiting,
                                    - (ngx_atomic_int_t) h->waiting);
    }

    if (h->pins
        && ngx_atomic_fetch_add(&t->refs, - (ngx_atomic_int_t) h->pins)
           == h->pins)
    {
        ngx_http_claw_free_tenant_locked(tb, t);
    }

    ngx_slab_free_locked(tb->shpool, h);
}


/*
 * A worker starts: it gives back what dead workers still held (a worker
 * killed with requests in flight never ran their cleanups), then takes
 * its own ledger.  The master unlocks a mutex a dead worker held.
 */

ngx_int_t
ngx_http_claw_tables_init_worker(ngx_http_claw_tables_t *tb,
    ngx_log_t *log)
{
    ngx_uint_t               pins, active;
    ngx_queue_t             *q;
    ngx_http_claw_hold_t    *h;
    ngx_http_claw_shctx_t   *sh;
    ngx_http_claw_ledger_t  *ledger;

    sh = tb->sh;

    ngx_shmtx_lock(&tb->shpool->mutex);

    for (ledger = sh->ledgers; ledger; ledger = ledger->next) {

        if (ledger->pid == 0 || ledger->pid == ngx_pid
            || kill(ledger->pid, 0) == 0 || ngx_errno != NGX_ESRCH)
        {
            continue;
        }

        pins = 0;
        active = 0;

        while (!ngx_queue_empty(&ledger->holds)) {
            q = ngx_queue_head(&ledger->holds);
            h = ngx_queue_data(q, ngx_http_claw_hold_t, queue);

            pins += h->pins;
            active += h->active;

            ngx_http_claw_unhold_locked(tb, h);
        }

        if (pins) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "claw: worker %P exited holding %ui requests "
                          "(%ui admitted), given back", ledger->pid, pins,
                          active);
        }

        ledger->pid = 0;
    }

    for (ledger = sh->ledgers; ledger; ledger = ledger->next) {
        if (ledger->slot == ngx_process_slot) {
            break;
        }
    }

    if (ledger == NULL) {
        ledger = ngx_slab_alloc_locked(tb->shpool,
                                       sizeof(ngx_http_claw_ledger_t));

        if (ledger == NULL && ngx_http_claw_reclaim_all_locked(tb)) {
            ledger = ngx_slab_alloc_locked(tb->shpool,
                                           sizeof(ngx_http_claw_ledger_t));
        }

        if (ledger == NULL) {
            ngx_shmtx_unlock(&tb->shpool->mutex);

            /* the worker serves; only a crash of it could not be undone */

            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "claw zone \"%V\" has no room for the ledger of "
                          "this worker", &tb->shm_zone->shm.name);
            return NGX_OK;
        }

        ngx_memzero(ledger, sizeof(ngx_http_claw_ledger_t));
        ngx_queue_init(&ledger->holds);
        ledger->slot = ngx_process_slot;
        ledger->next = sh->ledgers;
        sh->ledgers = ledger;
    }

    ledger->pid = ngx_pid;
    tb->ledger = ledger;

    ngx_shmtx_unlock(&tb->shpool->mutex);

    return NGX_OK;
}


/*
 * A worker that exits having released everything leaves an empty ledger
 * for the next worker of its slot
 */

void
ngx_http_claw_tables_exit_worker(ngx_http_claw_tables_t *tb)
{
    ngx_http_claw_ledger_t  *ledger;

    ledger = tb->ledger;

    if (ledger == NULL) {
        return;
    }

    ngx_shmtx_lock(&tb->shpool->mutex);

    ngx_http_claw_reclaim_locked(tb, ledger);

    if (ngx_queue_empty(&ledger->holds)) {
        ledger->pid = 0;
    }

    ngx_shmtx_unlock(&tb->shpool->mutex);

    tb->ledger = NULL;
}


/*
 * One tenant put by the admin API, in three steps, all under the admin
 * lock: prepare (checks and allocations: nothing visible changes), then
 * the caller journals the change, then commit (cannot fail) or abort.
 * Returns NGX_OK, NGX_BUSY with the id of the tenant owning one of the
 * domains, or NGX_DECLINED when the zone has no room.
 */

ngx_int_t
ngx_http_claw_tables_prepare(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tconf_t *src, ngx_http_claw_change_t *ch, ngx_str_t *owner,
    ngx_pool_t *pool)
{
    u_char                  *d, *id;
    size_t                   len;
    ngx_uint_t               i;
    ngx_http_claw_tenant_t  *t;

    ngx_memzero(ch, sizeof(ngx_http_claw_change_t));

    ch->src = src;
    ch->hash = ngx_murmur_hash2(ngx_http_claw_tconf_id(src), src->id_len);

    d = ngx_http_claw_tconf_domains(src);

    ngx_shmtx_lock(&tb->shpool->mutex);

    for (i = 0; i < src->ndomains; i++) {
        len = *d++;

        t = ngx_http_claw_find_domain_locked(tb->sh,
                                             ngx_murmur_hash2(d, len), d,
                                             len);

        if (t && (t->conf->id_len != src->id_len
                  || ngx_memcmp(ngx_http_claw_tconf_id(t->conf),
                                ngx_http_claw_tconf_id(src), src->id_len)
                     != 0))
        {
            id = ngx_pnalloc(pool, t->conf->id_len);
            if (id != NULL) {
                ngx_memcpy(id, ngx_http_claw_tconf_id(t->conf),
                           t->conf->id_len);
                owner->data = id;
                owner->len = t->conf->id_len;
            }

            ngx_shmtx_unlock(&tb->shpool->mutex);
            return NGX_BUSY;
        }

        d += len;
    }

    ngx_shmtx_unlock(&tb->shpool->mutex);

    if (ngx_http_claw_prepare(tb, ch) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* returns 1 when the tenant is new */

ngx_uint_t
ngx_http_claw_tables_commit(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch)
{
    ngx_uint_t  created;

    ngx_shmtx_lock(&tb->shpool->mutex);
    created = ngx_http_claw_commit_locked(tb, ch, tb->sh->mark);
    ngx_shmtx_unlock(&tb->shpool->mutex);

    ngx_http_claw_unprepare(tb, ch);

    return created;
}


void
ngx_http_claw_tables_abort(ngx_http_claw_tables_t *tb,
    ngx_http_claw_change_t *ch)
{
    ngx_http_claw_unprepare(tb, ch);
}


ngx_int_t
ngx_http_claw_tables_remove(ngx_http_claw_tables_t *tb, u_char *id,
    size_t len)
{
    uint32_t                 hash;
    ngx_http_claw_tenant_t  *t, **tp;

    hash = ngx_murmur_hash2(id, len);

    ngx_shmtx_lock(&tb->shpool->mutex);

    for (tp = &tb->sh->ids[hash & (tb->sh->nbuckets - 1)];
         *tp;
         tp = &(*tp)->next)
    {
        t = *tp;

        if (t->hash == hash && t->conf->id_len == len
            && ngx_memcmp(ngx_http_claw_tconf_id(t->conf), id, len) == 0)
        {
            *tp = t->next;
            ngx_http_claw_unlink_locked(tb, t);
            ngx_shmtx_unlock(&tb->shpool->mutex);
            return NGX_OK;
        }
    }

    ngx_shmtx_unlock(&tb->shpool->mutex);

    return NGX_DECLINED;
}


/* a copy of one tenant's whole configuration, or NULL */

ngx_http_claw_tconf_t *
ngx_http_claw_tables_get(ngx_http_claw_tables_t *tb, u_char *id,
    size_t len, ngx_pool_t *pool)
{
    ngx_http_claw_tconf_t   *tc;
    ngx_http_claw_tenant_t  *t;

    tc = ngx_palloc(pool, NGX_HTTP_CLAW_TCONF_MAX);
    if (tc == NULL) {
        return NULL;
    }

    ngx_shmtx_lock(&tb->shpool->mutex);

    t = ngx_http_claw_find_id_locked(tb->sh, ngx_murmur_hash2(id, len), id,
                                     len);
    if (t) {
        ngx_memcpy(tc, t->conf, t->conf->size);
        tc->seen = t->seen;
    }

    ngx_shmtx_unlock(&tb->shpool->mutex);

    return t ? tc : NULL;
}


/* every tenant's configuration, sorted by id */

ngx_http_claw_tconf_t **
ngx_http_claw_tables_list(ngx_http_claw_tables_t *tb, ngx_pool_t *pool,
    ngx_uint_t *n)
{
    ngx_http_claw_tconf_t  **list;

    list = ngx_http_claw_snapshot(tb, pool, 0, n);

    if (list) {
        ngx_qsort(list, *n, sizeof(ngx_http_claw_tconf_t *),
                  ngx_http_claw_tconf_cmp);
    }

    return list;
}


/*
 * Up to "limit" tenants that come after the one named "after" (from the
 * first when it is empty) in an order that changes do not reshuffle: by
 * bucket of the id table, then by hash and id within the bucket.  A
 * listing page by page sees every tenant that exists throughout, once.
 * *more is set when tenants remain.
 */

ngx_http_claw_tconf_t **
ngx_http_claw_tables_page(ngx_http_claw_tables_t *tb, ngx_pool_t *pool,
    ngx_str_t *after, ngx_uint_t limit, ngx_uint_t *n, ngx_uint_t *more)
{
    u_char                   *p;
    uint32_t                  hash;
    ngx_uint_t                b, i, k, count, nb;
    ngx_http_claw_shctx_t    *sh;
    ngx_http_claw_tenant_t   *t, **bucket, *small[64];
    ngx_http_claw_tconf_t   **list, *tc;

    sh = tb->sh;

    list = ngx_palloc(pool, (limit + 1) * sizeof(ngx_http_claw_tconf_t *));
    if (list == NULL) {
        return NULL;
    }

    hash = 0;
    b = 0;

    if (after->len) {
        hash = ngx_murmur_hash2(after->data, after->len);
        b = hash & (sh->nbuckets - 1);
    }

    count = 0;
    *more = 0;

    for ( /* void */ ; b < sh->nbuckets; b++) {

        ngx_shmtx_lock(&tb->shpool->mutex);

        /* a bucket's few tenants, in order (insertion: chains are short) */

        for (nb = 0, t = sh->ids[b]; t; t = t->next) {
            nb++;
        }

        bucket = small;

        if (nb > 64) {
            bucket = ngx_palloc(pool, nb * sizeof(ngx_http_claw_tenant_t *));
            if (bucket == NULL) {
                ngx_shmtx_unlock(&tb->shpool->mutex);
                return NULL;
            }
        }

        nb = 0;

        for (t = sh->ids[b]; t; t = t->next) {

            if (after->len
                && ngx_http_claw_order(t, hash, after->data, after->len) <= 0)
            {
                continue;
            }

            for (k = nb; k > 0; k--) {
                if (ngx_http_claw_order(bucket[k - 1], t->hash,
                                        ngx_http_claw_tconf_id(t->conf),
                                        t->conf->id_len)
                    < 0)
                {
                    break;
                }

                bucket[k] = bucket[k - 1];
            }

            bucket[k] = t;
            nb++;
        }

        for (i = 0; i < nb; i++) {

            if (count == limit) {
                *more = 1;
                break;
            }

            p = ngx_palloc(pool, bucket[i]->conf->size);
            if (p == NULL) {
                ngx_shmtx_unlock(&tb->shpool->mutex);
                return NULL;
            }

            tc = (ngx_http_claw_tconf_t *) p;
            ngx_memcpy(tc, bucket[i]->conf, bucket[i]->conf->size);
            tc->seen = bucket[i]->seen;
            list[count++] = tc;
        }

        ngx_shmtx_unlock(&tb->shpool->mutex);

        /* only the bucket of "after" holds tenants to skip */

        after = &ngx_http_claw_no_id;

        if (*more) {
            break;
        }
    }

    if (!*more && b < sh->nbuckets) {
        *more = 1;
    }

    *n = count;

    return list;
}


/* the order of pages: negative when a comes before (hash, id) */

static ngx_int_t
ngx_http_claw_order(ngx_http_claw_tenant_t *a, uint32_t hash, u_char *id,
    size_t len)
{
    if (a->hash != hash) {
        return a->hash < hash ? -1 : 1;
    }

    return ngx_memn2cmp(ngx_http_claw_tconf_id(a->conf), id,
                        a->conf->id_len, len);
}


/* a number that moves whenever a tenant is added, changed or removed */

uint64_t
ngx_http_claw_tables_changes(ngx_http_claw_tables_t *tb)
{
    uint64_t  changes;

    ngx_shmtx_lock(&tb->shpool->mutex);
    changes = tb->sh->changes;
    ngx_shmtx_unlock(&tb->shpool->mutex);

    return changes;
}


ngx_uint_t
ngx_http_claw_tables_count(ngx_http_claw_tables_t *tb)
{
    ngx_uint_t  n;

    ngx_shmtx_lock(&tb->shpool->mutex);
    n = tb->sh->ntenants;
    ngx_shmtx_unlock(&tb->shpool->mutex);

    return n;
}


/* every tenant's counters, in no particular order */

ngx_http_claw_counters_t *
ngx_http_claw_tables_counters(ngx_http_claw_tables_t *tb,
    ngx_pool_t *pool, ngx_uint_t *n)
{
    return ngx_http_claw_snapshot(tb, pool, 1, n);
}


/*
 * Copies the zone bucket by bucket, each under the lock only while its
 * few entries are copied, into memory sized beforehand (and grown and
 * retried in the rare case a bucket grew meanwhile): the lock is never
 * held for the whole table nor across an allocation.
 */

static void *
ngx_http_claw_snapshot(ngx_http_claw_tables_t *tb, ngx_pool_t *pool,
    ngx_uint_t what, ngx_uint_t *n)
{
    u_char                    *buf, *p, *nbuf;
    size_t                     size, need, used, esize;
    ngx_uint_t                 b, count, cap, i;
    ngx_http_claw_shctx_t     *sh;
    ngx_http_claw_tenant_t    *t;
    ngx_http_claw_tconf_t    **list;
    ngx_http_claw_counters_t  *c;
    void                      *elts, *nelts;

    sh = tb->sh;
    esize = what ? sizeof(ngx_http_claw_counters_t)
                 : sizeof(ngx_http_claw_tconf_t *);

    ngx_shmtx_lock(&tb->shpool->mutex);
    cap = sh->ntenants + 16;
    ngx_shmtx_unlock(&tb->shpool->mutex);

    size = what ? 0 : cap * 256;
    used = 0;
    count = 0;
    buf = NULL;

    if (size) {
        buf = ngx_palloc(pool, size);
        if (buf == NULL) {
            return NULL;
        }
    }

    elts = ngx_palloc(pool, cap * esize);
    if (elts == NULL) {
        return NULL;
    }

    for (b = 0; b < sh->nbuckets; /* void */) {
        ngx_shmtx_lock(&tb->shpool->mutex);

        need = 0;
        i = 0;

        for (t = sh->ids[b]; t; t = t->next) {
            need += ngx_align(t->conf->size, 8);
            i++;
        }

        if (count + i <= cap && (what || used + need <= size)) {

            for (t = sh->ids[b]; t; t = t->next, count++) {

                if (what) {
                    c = (ngx_http_claw_counters_t *) elts + count;

                    c->id_len = t->conf->id_len;
                    ngx_memcpy(c->id, ngx_http_claw_tconf_id(t->conf),
                               c->id_len);

                    for (i = 0; i < NGX_HTTP_CLAW_CLASSES; i++) {
                        c->requests[i] = t->requests[i];
                    }

                    c->auth_failures = t->auth_failures;
                    c->rate_limited = t->rate_limited;
                    c->conn_limited = t->conn_limited;
                    c->lockouts = t->lockouts;
                    c->refused_state[0] = t->refused_state[0];
                    c->refused_state[1] = t->refused_state[1];
                    c->refused_address = t->refused_address;
                    c->refused_body = t->refused_body;
                    c->refused_down = t->refused_down;
                    c->up = (t->down_until == 0);
                    c->revoked = t->revoked_requests;
                    c->bytes_sent = t->bytes_sent;
                    c->active = t->active;
                    c->upstream_failed = t->upstream_failed;
                    c->seen = t->seen;
                    c->wakes = t->wakes;
                    c->wake_failures = t->wake_failures;
                    c->refused_wake = t->refused_wake;
                    c->ttfb_ms = t->ttfb_ms;

                    for (i = 0; i <= NGX_HTTP_CLAW_TTFB_BUCKETS; i++) {
                        c->ttfb[i] = t->ttfb[i];
                    }

                    continue;
                }

                /* offsets for now: the buffer may still move */

                p = buf + used;
                ngx_memcpy(p, t->conf, t->conf->size);
                ((uintptr_t *) elts)[count] = used;
                used += ngx_align(t->conf->size, 8);
            }

            ngx_shmtx_unlock(&tb->shpool->mutex);
            b++;
            continue;
        }

        ngx_shmtx_unlock(&tb->shpool->mutex);

        /* the table grew since the sizes were taken: grow and retry */

        if (count + i > cap) {
            cap = 2 * (cap + i);

            nelts = ngx_palloc(pool, cap * esize);
            if (nelts == NULL) {
                return NULL;
            }

            ngx_memcpy(nelts, elts, count * esize);
            ngx_pfree(pool, elts);
            elts = nelts;
        }

        if (!what && used + need > size) {
            size = 2 * (used + need);

            nbuf = ngx_palloc(pool, size);
            if (nbuf == NULL) {
                return NULL;
            }

            ngx_memcpy(nbuf, buf, used);
            ngx_pfree(pool, buf);
            buf = nbuf;
        }
    }

    if (!what) {
        list = elts;

        for (i = 0; i < count; i++) {
            list[i] = (ngx_http_claw_tconf_t *) (buf + ((uintptr_t *) elts)[i]);
        }
    }

    *n = count;

    return elts;
}


static int ngx_libc_cdecl
ngx_http_claw_tconf_cmp(const void *one, const void *two)
{
    ngx_http_claw_tconf_t  *a, *b;

    a = *(ngx_http_claw_tconf_t **) one;
    b = *(ngx_http_claw_tconf_t **) two;

    return (int) ngx_memn2cmp(ngx_http_claw_tconf_id(a),
                              ngx_http_claw_tconf_id(b), a->id_len,
                              b->id_len);
}


/*
 * The slot a name resolves to, to be compared with another slot only:
 * it is not pinned, so it must not be used after the lock is released.
 */

/*
 * Cluster mode: the admissions of other nodes since the last debit move
 * a tenant's arrival time on, as if they had been made here.  A baseline
 * older than "stale" ms (no traffic here meanwhile) is taken as it is:
 * admissions made elsewhere while this node saw none constrain nothing
 * now.  One lock for a worker's whole round.
 */

void
ngx_http_claw_tables_debit(ngx_http_claw_tables_t *tb,
    ngx_http_claw_debit_t *d, ngx_uint_t n, uint64_t now, ngx_msec_t stale)
{
    uint64_t                 debit, tat, next, cap;
    ngx_uint_t               i;
    ngx_http_claw_tenant_t  *t;

    ngx_shmtx_lock(&tb->shpool->mutex);

    for (i = 0; i < n; i++) {
        t = ngx_http_claw_find_id_locked(tb->sh,
                                         ngx_murmur_hash2(d[i].id, d[i].len),
                                         d[i].id, d[i].len);
        if (t == NULL) {
            continue;
        }

        if (t->share_when == 0
            || (ngx_msec_int_t) (ngx_current_msec - t->share_when)
               > (ngx_msec_int_t) stale)
        {
            debit = 0;
            t->share_seen = d[i].others;

        } else if (d[i].others > t->share_seen) {
            debit = d[i].others - t->share_seen;
            t->share_seen = d[i].others;

        } else {
            debit = 0;
        }

        t->share_when = ngx_current_msec;

        if (debit == 0 || d[i].interval == 0) {
            continue;
        }

        /* a minute's worth at most: the past cannot block for longer */

        cap = now + 60 * 1000000000ULL;

        for ( ;; ) {
            tat = t->tat;
            next = ngx_max(tat, now) + debit * d[i].interval;
            next = ngx_min(next, ngx_max(cap, tat));

#if (NGX_HAVE_ATOMIC_OPS && NGX_PTR_SIZE == 8)
            if (ngx_atomic_cmp_set(&t->tat, tat, next)) {
                break;
            }
#else
            t->tat = next;
            break;
#endif
        }
    }

    ngx_shmtx_unlock(&tb->shpool->mutex);
}


/* rates are divided by n (1: not) */

void
ngx_http_claw_tables_share(ngx_http_claw_tables_t *tb, ngx_uint_t n)
{
    tb->sh->share = n;
}


ngx_http_claw_tenant_t *
ngx_http_claw_tables_peek(ngx_http_claw_tables_t *tb, ngx_uint_t domain,
    u_char *name, size_t len)
{
    uint32_t                 hash;
    ngx_http_claw_tenant_t  *t;

    hash = ngx_murmur_hash2(name, len);

    ngx_shmtx_lock(&tb->shpool->mutex);

    t = domain ? ngx_http_claw_find_domain_locked(tb->sh, hash, name, len)
               : ngx_http_claw_find_id_locked(tb->sh, hash, name, len);

    ngx_shmtx_unlock(&tb->shpool->mutex);

    return t;
}


/* whether a custom domain belongs to the (pinned) tenant t */

ngx_int_t
ngx_http_claw_tables_owns(ngx_http_claw_tables_t *tb,
    ngx_http_claw_tenant_t *t, u_char *domain, size_t len)
{
    uint32_t                 hash;
    ngx_http_claw_tenant_t  *owner;

    hash = ngx_murmur_hash2(domain, len);

    ngx_shmtx_lock(&tb->shpool->mutex);

    owner = ngx_http_claw_find_domain_locked(tb->sh, hash, domain, len);

    ngx_shmtx_unlock(&tb->shpool->mutex);

    return owner == t;
}


static ngx_http_claw_tenant_t *
ngx_http_claw_find_id_locked(ngx_http_claw_shctx_t *sh, uint32_t hash,
    u_char *id, size_t len)
{
    ngx_http_claw_tenant_t  *t;

    for (t = sh->ids[hash & (sh->nbuckets - 1)]; t; t = t->next) {
        if (t->hash == hash
            && t->conf->id_len == len
            && ngx_memcmp(ngx_http_claw_tconf_id(t->conf), id, len) == 0)
        {
            return t;
        }
    }

    return NULL;
}


static ngx_http_claw_tenant_t *
ngx_http_claw_find_domain_locked(ngx_http_claw_shctx_t *sh, uint32_t hash,
    u_char *name, size_t len)
{
    ngx_http_claw_name_t  *n;

    for (n = sh->names[hash & (sh->nbuckets - 1)]; n; n = n->next) {
        if (n->hash == hash
            && n->len == len
            && ngx_memcmp(n->name, name, len) == 0)
        {
            return n->tenant;
        }
    }

    return NULL;
}


size_t
ngx_http_claw_tconf_size(ngx_http_claw_entry_t *e, size_t *head)
{
    size_t      size;
    ngx_uint_t  i;

    size = sizeof(ngx_http_claw_tconf_t) + ngx_align(e->socklen, 8)
           + e->ntokens * NGX_HTTP_CLAW_DIGEST_LEN
           + e->nallow * sizeof(ngx_http_claw_cidr_t)
           + e->id.len + e->upstream.len;

    *head = size;

    for (i = 0; i < e->ndomains; i++) {
        size += 1 + e->domains[i].len;
    }

    return size;
}


/* every byte is set, padding included, so equal tenants compare equal */

void
ngx_http_claw_tconf_build(ngx_http_claw_tconf_t *tc, ngx_http_claw_entry_t *e)
{
    u_char      *p;
    size_t       size, head;
    ngx_uint_t   i;

    size = ngx_http_claw_tconf_size(e, &head);

    ngx_memzero(tc, size);

    tc->size = (uint32_t) size;
    tc->head = (uint32_t) head;
    tc->rate = e->rate;
    tc->burst = (int32_t) e->burst;
    tc->conn = (int32_t) e->conn;
    tc->state = (u_char) e->state;
    tc->max_body = e->max_body;
    tc->nallow = (u_char) e->nallow;
    tc->socklen = (uint16_t) e->socklen;
    tc->id_len = (u_char) e->id.len;
    tc->upstream_len = (u_char) e->upstream.len;
    tc->ntokens = (u_char) e->ntokens;
    tc->ndomains = (u_char) e->ndomains;

    ngx_memcpy(ngx_http_claw_tconf_addr(tc), &e->addr, e->socklen);

    ngx_memcpy(ngx_http_claw_tconf_tokens(tc), e->tokens,
               e->ntokens * NGX_HTTP_CLAW_DIGEST_LEN);

    ngx_memcpy(ngx_http_claw_tconf_allow(tc), e->allow,
               e->nallow * sizeof(ngx_http_claw_cidr_t));

    ngx_memcpy(ngx_http_claw_tconf_id(tc), e->id.data, e->id.len);
    ngx_memcpy(ngx_http_claw_tconf_upstream(tc), e->upstream.data,
               e->upstream.len);

    p = ngx_http_claw_tconf_domains(tc);

    for (i = 0; i < e->ndomains; i++) {
        *p++ = (u_char) e->domains[i].len;
        p = ngx_cpymem(p, e->domains[i].data, e->domains[i].len);
    }
}


/*
 * A tenant as a registry line, as the file, the journal and the admin API
 * write it; with buf NULL, the length it needs.
 */

size_t
ngx_http_claw_tconf_line(ngx_http_claw_tconf_t *tc, u_char *buf)
{
    u_char                *d, *p, *t;
    size_t                 len;
    ngx_uint_t             i;
    ngx_http_claw_cidr_t  *a;
    u_char                 tmp[NGX_INT64_LEN + sizeof(" burst=")];
    u_char                 text[64];

    len = tc->id_len + 1 + tc->upstream_len
          + tc->ntokens * (sizeof(" token=sha256:") - 1
                           + 2 * NGX_HTTP_CLAW_DIGEST_LEN);

    if (tc->rate.number) {
        len += ngx_sprintf(tmp, " rate=%uDr/s", tc->rate.number) - tmp;
    }

    if (tc->burst >= 0) {
        len += ngx_sprintf(tmp, " burst=%D", tc->burst) - tmp;
    }

    if (tc->conn >= 0) {
        len += ngx_sprintf(tmp, " conn=%D", tc->conn) - tmp;
    }

    if (tc->state != NGX_HTTP_CLAW_STATE_ACTIVE) {
        len += sizeof(" state=") - 1
               + ngx_strlen(ngx_http_claw_states[tc->state]);
    }

    a = ngx_http_claw_tconf_allow(tc);

    for (i = 0; i < tc->nallow; i++) {
        len += sizeof(" allow=") - 1
               + ngx_http_claw_cidr_text(&a[i], (char *) text);
    }

    if (tc->max_body >= 0) {
        len += sizeof(" max_body=") - 1
               + ngx_http_claw_size_text(tc->max_body, (char *) text);
    }

    d = ngx_http_claw_tconf_domains(tc);

    for (i = 0; i < tc->ndomains; i++) {
        len += sizeof(" domain=") - 1 + *d;
        d += 1 + *d;
    }

    if (buf == NULL) {
        return len;
    }

    p = ngx_cpymem(buf, ngx_http_claw_tconf_id(tc), tc->id_len);
    *p++ = ' ';
    p = ngx_cpymem(p, ngx_http_claw_tconf_upstream(tc), tc->upstream_len);

    t = ngx_http_claw_tconf_tokens(tc);

    for (i = 0; i < tc->ntokens; i++) {
        p = ngx_cpymem(p, " token=sha256:", sizeof(" token=sha256:") - 1);
        p = ngx_hex_dump(p, t + i * NGX_HTTP_CLAW_DIGEST_LEN,
                         NGX_HTTP_CLAW_DIGEST_LEN);
    }

    if (tc->rate.number) {
        p = ngx_sprintf(p, " rate=%uDr/%c", tc->rate.number,
                        tc->rate.period == 1 ? 's' : 'm');
    }

    if (tc->burst >= 0) {
        p = ngx_sprintf(p, " burst=%D", tc->burst);
    }

    if (tc->conn >= 0) {
        p = ngx_sprintf(p, " conn=%D", tc->conn);
    }

    if (tc->state != NGX_HTTP_CLAW_STATE_ACTIVE) {
        p = ngx_sprintf(p, " state=%s", ngx_http_claw_states[tc->state]);
    }

    a = ngx_http_claw_tconf_allow(tc);

    for (i = 0; i < tc->nallow; i++) {
        p = ngx_cpymem(p, " allow=", sizeof(" allow=") - 1);
        p = ngx_cpymem(p, text,
                       ngx_http_claw_cidr_text(&a[i], (char *) text));
    }

    if (tc->max_body >= 0) {
        p = ngx_cpymem(p, " max_body=", sizeof(" max_body=") - 1);
        p = ngx_cpymem(p, text,
                       ngx_http_claw_size_text(tc->max_body, (char *) text));
    }

    d = ngx_http_claw_tconf_domains(tc);

    for (i = 0; i < tc->ndomains; i++) {
        p = ngx_cpymem(p, " domain=", sizeof(" domain=") - 1);
        p = ngx_cpymem(p, d + 1, *d);
        d += 1 + *d;
    }

    return p - buf;
}


/* the parsed form of a tenant block; spans point into the block */

void
ngx_http_claw_tconf_entry(ngx_http_claw_tconf_t *tc, ngx_http_claw_entry_t *e)
{
    u_char      *d;
    ngx_uint_t   i;

    ngx_memzero(e, sizeof(ngx_http_claw_entry_t));

    e->id.data = ngx_http_claw_tconf_id(tc);
    e->id.len = tc->id_len;
    e->upstream.data = ngx_http_claw_tconf_upstream(tc);
    e->upstream.len = tc->upstream_len;

    ngx_memcpy(&e->addr, ngx_http_claw_tconf_addr(tc), tc->socklen);
    e->socklen = tc->socklen;

    e->rate = tc->rate;
    e->burst = tc->burst;
    e->conn = tc->conn;
    e->state = tc->state;
    e->has_state = (tc->state != NGX_HTTP_CLAW_STATE_ACTIVE);
    e->max_body = tc->max_body;

    e->nallow = tc->nallow;
    ngx_memcpy(e->allow, ngx_http_claw_tconf_allow(tc),
               tc->nallow * sizeof(ngx_http_claw_cidr_t));

    e->ntokens = tc->ntokens;
    ngx_memcpy(e->tokens, ngx_http_claw_tconf_tokens(tc),
               tc->ntokens * NGX_HTTP_CLAW_DIGEST_LEN);

    d = ngx_http_claw_tconf_domains(tc);

    for (i = 0; i < tc->ndomains; i++) {
        e->domains[i].len = *d;
        e->domains[i].data = d + 1;
        d += 1 + *d;
    }

    e->ndomains = tc->ndomains;
}
