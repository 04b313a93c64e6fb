
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Failed credential checks per client address, shared by all workers in
 * a small zone of their own: a GCRA bucket per address (the limiter of
 * tenants' rates, with failures for requests), the least recently
 * failing addresses evicted first when the zone is full.  Tenants never
 * compete with them for room.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_parse.h"
#include "ngx_http_claw_fail.h"


typedef struct ngx_http_claw_fail_s  ngx_http_claw_fail_t;

struct ngx_http_claw_fail_s {
    ngx_http_claw_fail_t        *next;          /* hash chain */
    ngx_queue_t                  queue;         /* most recent first */
    uint64_t                     tat;           /* microseconds */
    uint64_t                     share_seen;    /* cluster mode */
    ngx_msec_t                   share_when;
    uint32_t                     hash;
    u_char                       len;
    u_char                       key[NGX_HTTP_CLAW_FAIL_KEY];
};


typedef struct {
    ngx_uint_t                   nbuckets;      /* a power of two */
    ngx_http_claw_fail_t       **buckets;
    ngx_queue_t                  queue;
} ngx_http_claw_fail_shctx_t;


static ngx_int_t ngx_http_claw_fail_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_claw_fail_t *ngx_http_claw_fail_find_locked(
    ngx_http_claw_fail_shctx_t *sh, uint32_t hash, u_char *key, size_t len);
static void ngx_http_claw_fail_expire_locked(ngx_http_claw_fails_t *fails,
    uint64_t now, ngx_uint_t n);


static ngx_uint_t  ngx_http_claw_fail_tag;


/* a zone of a thirty-second of the tenants' zone, 256k at least */

ngx_int_t
ngx_http_claw_fail_add_zone(ngx_conf_t *cf, ngx_http_claw_fails_t *fails,
    ngx_str_t *name, size_t size)
{
    ngx_str_t  zname;

    zname.len = name->len + sizeof(":fails") - 1;
    zname.data = ngx_pnalloc(cf->pool, zname.len);
    if (zname.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zname.data, "%V:fails", name);

    size = ngx_max(size / 32, 64 * ngx_pagesize);

    fails->shm_zone = ngx_shared_memory_add(cf, &zname, size,
                                            &ngx_http_claw_fail_tag);
    if (fails->shm_zone == NULL) {
        return NGX_ERROR;
    }

    fails->shm_zone->init = ngx_http_claw_fail_init_zone;
    fails->shm_zone->data = fails;

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_fail_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_claw_fails_t  *ofails = data;

    size_t                       len;
    ngx_uint_t                   n;
    ngx_slab_pool_t             *shpool;
    ngx_http_claw_fails_t       *fails;
    ngx_http_claw_fail_shctx_t  *sh;

    fails = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    fails->shpool = shpool;

    if (ofails) {
        fails->sh = ofails->sh;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        fails->sh = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_claw_fail_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    /* a record takes a 64-byte slab: about a bucket per two records */

    for (n = 64; n * 2 <= shm_zone->shm.size / 128; n *= 2) {
        /* void */
    }

    sh->nbuckets = n;
    sh->buckets = ngx_slab_calloc(shpool, n * sizeof(ngx_http_claw_fail_t *));
    if (sh->buckets == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&sh->queue);

    shpool->data = sh;
    fails->sh = sh;

    len = sizeof(" in claw zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in claw zone \"%V\"%Z",
                &shm_zone->shm.name);

    shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * Each failure is a request to the bucket: "limit" a minute, so that
 * limit failures at once fill it.  Returns the seconds until the address
 * may try again, 0 when it may now.
 */

time_t
ngx_http_claw_fail_wait(ngx_http_claw_fails_t *fails, u_char *key,
    size_t len, ngx_uint_t limit)
{
    uint32_t                     hash;
    uint64_t                     now, wait, next;
    ngx_http_claw_fail_t        *f;
    ngx_http_claw_fail_shctx_t  *sh;

    sh = fails->sh;
    hash = ngx_murmur_hash2(key, len);
    now = (uint64_t) ngx_current_msec * 1000;

    /*
     * No address of this bucket failed lately, as nearly always: no lock.
     * A failure counted meanwhile is as one counted just after the check.
     */

    if (((ngx_http_claw_fail_t * volatile *) sh->buckets)
            [hash & (sh->nbuckets - 1)]
        == NULL)
    {
        return 0;
    }

    wait = 0;

    ngx_shmtx_lock(&fails->shpool->mutex);

    f = ngx_http_claw_fail_find_locked(sh, hash, key, len);

    if (f) {
        wait = ngx_http_claw_gcra(f->tat, now, 60000000 / limit, limit - 1,
                                  &next);
    }

    ngx_shmtx_unlock(&fails->shpool->mutex);

    return (time_t) ((wait + 999999) / 1000000);
}


void
ngx_http_claw_fail_add(ngx_http_claw_fails_t *fails, u_char *key, size_t len,
    ngx_uint_t limit, ngx_log_t *log)
{
    uint32_t                     hash;
    uint64_t                     now, next;
    ngx_uint_t                   tries;
    ngx_http_claw_fail_t        *f, **fp;
    ngx_http_claw_fail_shctx_t  *sh;

    sh = fails->sh;
    hash = ngx_murmur_hash2(key, len);
    now = (uint64_t) ngx_current_msec * 1000;

    ngx_shmtx_lock(&fails->shpool->mutex);

    ngx_http_claw_fail_expire_locked(fails, now, 2);

    f = ngx_http_claw_fail_find_locked(sh, hash, key, len);

    if (f == NULL) {

        /* a full zone forgets the addresses that failed longest ago */

        for (tries = 0; /* void */ ; tries++) {
            f = ngx_slab_alloc_locked(fails->shpool,
                                      sizeof(ngx_http_claw_fail_t));

            if (f || tries == 8 || ngx_queue_empty(&sh->queue)) {
                break;
            }

            ngx_http_claw_fail_expire_locked(fails, (uint64_t) -1, 16);
        }

        if (f == NULL) {
            ngx_shmtx_unlock(&fails->shpool->mutex);
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "claw: no room in the zone \"%V\" to count a "
                          "failed credential", &fails->shm_zone->shm.name);
            return;
        }

        f->hash = hash;
        f->len = (u_char) len;
        ngx_memcpy(f->key, key, len);
        f->tat = now;
        f->share_seen = 0;
        f->share_when = 0;

        fp = &sh->buckets[hash & (sh->nbuckets - 1)];
        f->next = *fp;
        *fp = f;

    } else {
        ngx_queue_remove(&f->queue);
    }

    ngx_queue_insert_head(&sh->queue, &f->queue);

    /* a full bucket stays full: it drains at the limit's pace */

    if (ngx_http_claw_gcra(f->tat, now, 60000000 / limit, limit - 1, &next)
        == 0)
    {
        f->tat = next;
    }

    ngx_shmtx_unlock(&fails->shpool->mutex);
}


/*
 * Cluster mode: failures of the address on other nodes, in all, fill
 * its bucket here as if they had been made here (a full bucket is as
 * full as it gets).
 */

void
ngx_http_claw_fail_debit(ngx_http_claw_fails_t *fails, u_char *key,
    size_t len, uint64_t others, ngx_uint_t limit, ngx_msec_t stale)
{
    uint64_t                     now, debit, interval, full;
    ngx_http_claw_fail_t        *f;
    ngx_http_claw_fail_shctx_t  *sh;

    sh = fails->sh;
    now = (uint64_t) ngx_current_msec * 1000;

    ngx_shmtx_lock(&fails->shpool->mutex);

    f = ngx_http_claw_fail_find_locked(sh, ngx_murmur_hash2(key, len), key,
                                       len);

    if (f == NULL) {
        ngx_shmtx_unlock(&fails->shpool->mutex);
        return;
    }

    if (f->share_when == 0
        || (ngx_msec_int_t) (ngx_current_msec - f->share_when)
           > (ngx_msec_int_t) stale)
    {
        /*
         * Unlike a rate's, a first count is taken whole: the counters
         * live a minute past the address's last failure anywhere, and a
         * bucket holds no more than a full one
         */
        debit = others;
        f->share_seen = others;

    } else if (others > f->share_seen) {
        debit = others - f->share_seen;
        f->share_seen = others;

    } else {
        debit = 0;
    }

    f->share_when = ngx_current_msec;

    if (debit) {
        interval = 60000000 / limit;
        full = now + limit * interval;

        f->tat = ngx_min(ngx_max(f->tat, now) + debit * interval,
                         ngx_max(full, f->tat));
    }

    ngx_shmtx_unlock(&fails->shpool->mutex);
}


static ngx_http_claw_fail_t *
ngx_http_claw_fail_find_locked(ngx_http_claw_fail_shctx_t *sh, uint32_t hash,
    u_char *key, size_t len)
{
    ngx_http_claw_fail_t  *f;

    for (f = sh->buckets[hash & (sh->nbuckets - 1)]; f; f = f->next) {
        if (f->hash == hash && f->len == len
            && ngx_memcmp(f->key, key, len) == 0)
        {
            return f;
        }
    }

    return NULL;
}


/* drops up to n least recently failing addresses whose bucket drained */

static void
ngx_http_claw_fail_expire_locked(ngx_http_claw_fails_t *fails, uint64_t now,
    ngx_uint_t n)
{
    ngx_queue_t                 *q;
    ngx_http_claw_fail_t        *f, **fp;
    ngx_http_claw_fail_shctx_t  *sh;

    sh = fails->sh;

    while (n-- && !ngx_queue_empty(&sh->queue)) {
        q = ngx_queue_last(&sh->queue);
        f = ngx_queue_data(q, ngx_http_claw_fail_t, queue);

        if (f->tat > now) {
            return;
        }

        ngx_queue_remove(q);

        for (fp = &sh->buckets[f->hash & (sh->nbuckets - 1)];
             *fp;
             fp = &(*fp)->next)
        {
            if (*fp == f) {
                *fp = f->next;
                break;
            }
        }

        ngx_slab_free_locked(fails->shpool, f);
    }
}
