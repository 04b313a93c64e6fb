
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Cluster mode: tenants' rates and failed-credential lockouts held for
 * the cluster, not per node, with no round trip on the request path.
 * Each worker counts what it admits (and each failure) locally; every
 * "sync" interval it adds its counts to the server, in a hash per tenant
 * (per address) with a field per node, and gets back what the other
 * nodes counted in all.  What they counted since the last round moves
 * the tenant's limiter on here (tables.c) as if admitted here, so the
 * cluster admits at most rate * T + nodes * (burst + 1) + (nodes - 1) *
 * rate * sync over T.  Only what had traffic in the round is sent, in
 * batches, one script per batch.  Without the server, the rates are
 * divided by the number of nodes last seen.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_claw_parse.h"
#include "ngx_http_claw_share.h"


#define NGX_HTTP_CLAW_SHARE_BATCH    500
#define NGX_HTTP_CLAW_SHARE_TTL      "60000"    /* ms */
#define NGX_HTTP_CLAW_SHARE_BEAT     1000       /* ms */
#define NGX_HTTP_CLAW_SHARE_GONE     "5000"     /* ms without a beat */


typedef struct {
    u_char                       id[NGX_HTTP_CLAW_ID_MAX];
    size_t                       len;
    uint64_t                     count;
    uint64_t                     interval;
} ngx_http_claw_share_rate_t;


typedef struct {
    u_char                       key[NGX_HTTP_CLAW_FAIL_KEY];
    size_t                       len;
    uint64_t                     count;
    ngx_uint_t                   limit;
    ngx_msec_t                   last;          /* failed here */
} ngx_http_claw_share_fail_t;


/* one script of a round: what it carried, for its reply */
typedef struct {
    ngx_http_claw_share_t       *share;
    ngx_uint_t                   fails;         /* 0: rates */
    ngx_uint_t                   first;
    ngx_uint_t                   n;
} ngx_http_claw_share_batch_t;


static void ngx_http_claw_share_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_claw_share_round(ngx_http_claw_share_t *sh);
static ngx_int_t ngx_http_claw_share_send(ngx_http_claw_share_t *sh,
    ngx_uint_t fails, ngx_uint_t first, ngx_uint_t n);
static void ngx_http_claw_share_reply(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_share_beat(ngx_event_t *ev);
static void ngx_http_claw_share_beaten(void *data,
    ngx_http_claw_resp_t *reply);


/*
 * KEYS: the counters.  ARGV: this node, their time to live, then each
 * counter's count.  Returns what the other nodes counted, per counter.
 */

static ngx_str_t  ngx_http_claw_share_script = ngx_string(
"local out = {}\n"
"for i, k in ipairs(KEYS) do\n"
"  local n = tonumber(ARGV[2 + i])\n"
"  if n > 0 then redis.call('HINCRBY', k, ARGV[1], n) end\n"
"  redis.call('PEXPIRE', k, ARGV[2])\n"
"  local all = redis.call('HGETALL', k)\n"
"  local t = 0\n"
"  for j = 1, #all, 2 do\n"
"    if all[j] ~= ARGV[1] then t = t + tonumber(all[j + 1]) end\n"
"  end\n"
"  out[i] = t\n"
"end\n"
"return out\n");


/* KEYS: the nodes.  ARGV: this node, how long one is remembered */

static ngx_str_t  ngx_http_claw_share_beat_script = ngx_string(
"local t = redis.call('TIME')\n"
"local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
"redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ARGV[2])\n"
"return redis.call('ZCARD', KEYS[1])\n");


ngx_int_t
ngx_http_claw_share_init_worker(ngx_http_claw_share_t *sh,
    ngx_cycle_t *cycle)
{
    sh->round = 1;

    sh->pool = ngx_create_pool(4096, cycle->log);
    if (sh->pool == NULL) {
        return NGX_ERROR;
    }

    sh->rates = ngx_array_create(sh->pool, 16,
                                 sizeof(ngx_http_claw_share_rate_t));
    sh->failures = ngx_array_create(sh->pool, 4,
                                    sizeof(ngx_http_claw_share_fail_t));

    if (sh->rates == NULL || sh->failures == NULL) {
        return NGX_ERROR;
    }

    sh->tick.handler = ngx_http_claw_share_tick;
    sh->tick.data = sh;
    sh->tick.log = cycle->log;
    sh->tick.cancelable = 1;

    ngx_add_timer(&sh->tick, sh->cluster->sync);

    if (ngx_worker == 0) {
        sh->nodes_key.len = sh->cluster->prefix.len + sizeof("nodes") - 1;
        sh->nodes_key.data = ngx_pnalloc(cycle->pool, sh->nodes_key.len);
        if (sh->nodes_key.data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(sh->nodes_key.data, "%Vnodes", &sh->cluster->prefix);

        sh->beat.handler = ngx_http_claw_share_beat;
        sh->beat.data = sh;
        sh->beat.log = cycle->log;
        sh->beat.cancelable = 1;

        ngx_add_timer(&sh->beat, 1);
    }

    return NGX_OK;
}


void
ngx_http_claw_share_exit_worker(ngx_http_claw_share_t *sh)
{
    if (sh->tick.timer_set) {
        ngx_del_timer(&sh->tick);
    }

    if (sh->beat.timer_set) {
        ngx_del_timer(&sh->beat);
    }

    sh->cluster = NULL;
}


/* on the request path: a count in process memory, nothing else */

void
ngx_http_claw_share_admitted(ngx_http_claw_share_t *sh,
    ngx_http_claw_tenant_t *t, ngx_http_claw_hold_t *hold, u_char *id,
    size_t len, uint64_t interval)
{
    ngx_http_claw_share_rate_t  *e;

    if (hold == NULL || sh->cluster == NULL) {
        return;
    }

    if (hold->share_round != sh->round) {
        e = ngx_array_push(sh->rates);
        if (e == NULL) {
            return;
        }

        ngx_memcpy(e->id, id, len);
        e->len = len;
        e->count = 0;

        hold->share_round = sh->round;
        hold->share_index = sh->rates->nelts - 1;
    }

    e = (ngx_http_claw_share_rate_t *) sh->rates->elts + hold->share_index;

    e->count++;
    e->interval = interval;
}


void
ngx_http_claw_share_failed(ngx_http_claw_share_t *sh, u_char *key,
    size_t len, ngx_uint_t limit)
{
    ngx_uint_t                   i;
    ngx_http_claw_share_fail_t  *f;

    if (sh->cluster == NULL) {
        return;
    }

    /* failures are few, and a lockout caps them */

    f = sh->failures->elts;

    for (i = 0; i < sh->failures->nelts; i++) {
        if (f[i].len == len && ngx_memcmp(f[i].key, key, len) == 0) {
            f[i].count++;
            f[i].limit = limit;
            f[i].last = ngx_current_msec;
            return;
        }
    }

    if (sh->failures->nelts >= 4096) {
        return;
    }

    f = ngx_array_push(sh->failures);
    if (f == NULL) {
        return;
    }

    ngx_memcpy(f->key, key, len);
    f->len = len;
    f->count = 1;
    f->limit = limit;
    f->last = ngx_current_msec;
}


static void
ngx_http_claw_share_tick(ngx_event_t *ev)
{
    ngx_http_claw_share_t  *sh = ev->data;

    if (sh->cluster == NULL || ngx_exiting) {
        return;
    }

    /*
     * A round still being sent: this one's counts wait for the next.
     * Without the server (the follower says), nothing is sent and the
     * counts are dropped: rates are divided meanwhile.
     */

    if (sh->cluster->sh->state == NGX_HTTP_CLAW_CLUSTER_DOWN) {
        sh->rates->nelts = 0;
        sh->failures->nelts = 0;

        if (++sh->round == 0) {
            sh->round = 1;
        }

    } else if (sh->pending == 0
        && (sh->rates->nelts || sh->failures->nelts))
    {
        if (ngx_http_claw_share_round(sh) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                          "claw cluster: limits not reconciled this round");
        }
    }

    ngx_add_timer(&sh->tick, sh->cluster->sync);
}


/*
 * The tenants counted in the round are sent and forgotten; an address
 * that failed here is sent every round for a minute after its last
 * failure (with no count when it had none), so that this node learns of
 * the failures made elsewhere after its own.
 */

static ngx_int_t
ngx_http_claw_share_round(ngx_http_claw_share_t *sh)
{
    ngx_uint_t                   i, n;
    ngx_pool_t                  *pool;
    ngx_http_claw_share_fail_t  *f, *sf;

    ngx_array_t                 *rates, *failures;

    pool = ngx_create_pool(4096, sh->tick.log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rates = ngx_array_create(pool, ngx_max(sh->rates->nelts, 16),
                             sizeof(ngx_http_claw_share_rate_t));
    failures = ngx_array_create(pool, ngx_max(sh->failures->nelts, 4),
                                sizeof(ngx_http_claw_share_fail_t));

    if (rates == NULL || failures == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    if (sh->spool) {
        ngx_destroy_pool(sh->spool);
    }

    sh->spool = sh->pool;
    sh->srates = sh->rates;
    sh->sfailures = sh->failures;

    sh->pool = pool;
    sh->rates = rates;
    sh->failures = failures;

    /* a new round: the holds' marks no longer match (0 is never one) */

    if (++sh->round == 0) {
        sh->round = 1;
    }

    sf = sh->sfailures->elts;
    n = 0;

    for (i = 0; i < sh->sfailures->nelts; i++) {
        if (ngx_current_msec - sf[i].last > 60000) {
            continue;
        }

        f = ngx_array_push(sh->failures);
        if (f == NULL) {
            return NGX_ERROR;
        }

        *f = sf[i];
        f->count = 0;

        sf[n++] = sf[i];
    }

    sh->sfailures->nelts = n;

    for (i = 0; i < sh->srates->nelts; i += NGX_HTTP_CLAW_SHARE_BATCH) {
        if (ngx_http_claw_share_send(sh, 0, i,
                                     ngx_min(NGX_HTTP_CLAW_SHARE_BATCH,
                                             sh->srates->nelts - i))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < sh->sfailures->nelts; i += NGX_HTTP_CLAW_SHARE_BATCH) {
        if (ngx_http_claw_share_send(sh, 1, i,
                                     ngx_min(NGX_HTTP_CLAW_SHARE_BATCH,
                                             sh->sfailures->nelts - i))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_share_send(ngx_http_claw_share_t *sh, ngx_uint_t fails,
    ngx_uint_t first, ngx_uint_t n)
{
    u_char                       *p;
    size_t                        klen;
    ngx_str_t                    *args, *key, *count;
    ngx_uint_t                    i;
    ngx_http_claw_cluster_t      *cl;
    ngx_http_claw_share_rate_t   *r;
    ngx_http_claw_share_fail_t   *f;
    ngx_http_claw_share_batch_t  *b;

    cl = sh->cluster;

    b = ngx_palloc(sh->spool, sizeof(ngx_http_claw_share_batch_t));
    args = ngx_palloc(sh->spool, (5 + 2 * n) * sizeof(ngx_str_t));
    p = ngx_pnalloc(sh->spool,
                    n * (cl->prefix.len + 2 + 2 * NGX_HTTP_CLAW_ID_MAX
                         + NGX_INT64_LEN));

    if (b == NULL || args == NULL || p == NULL) {
        return NGX_ERROR;
    }

    b->share = sh;
    b->fails = fails;
    b->first = first;
    b->n = n;

    ngx_str_set(&args[0], "EVAL");
    args[1] = ngx_http_claw_share_script;
    args[2].data = p;
    args[2].len = ngx_sprintf(p, "%ui", n) - p;
    p += args[2].len;

    key = &args[3];
    args[3 + n] = cl->node;
    ngx_str_set(&args[4 + n], NGX_HTTP_CLAW_SHARE_TTL);
    count = &args[5 + n];

    r = (ngx_http_claw_share_rate_t *) sh->srates->elts + first;
    f = (ngx_http_claw_share_fail_t *) sh->sfailures->elts + first;

    for (i = 0; i < n; i++) {
        key[i].data = p;
        p = ngx_cpymem(p, cl->prefix.data, cl->prefix.len);

        if (fails) {
            p = ngx_cpymem(p, "f:", 2);
            p = ngx_hex_dump(p, f[i].key, f[i].len);

        } else {
            p = ngx_cpymem(p, "r:", 2);
            p = ngx_cpymem(p, r[i].id, r[i].len);
        }

        key[i].len = p - key[i].data;

        count[i].data = p;
        p = ngx_sprintf(p, "%uL", fails ? f[i].count : r[i].count);
        count[i].len = p - count[i].data;
    }

    klen = 5 + 2 * n;

    sh->pending++;

    if (ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_share_reply, b,
                                    cl->redis.timeout, klen, args)
        != NGX_OK)
    {
        sh->pending--;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_claw_share_reply(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_share_batch_t  *b = data;

    uint64_t                     now;
    ngx_uint_t                   i;
    ngx_http_claw_share_t       *sh;
    ngx_http_claw_debit_t       *d;
    ngx_http_claw_share_rate_t  *r;
    ngx_http_claw_share_fail_t  *f;

    sh = b->share;
    sh->pending--;

    if (sh->cluster == NULL) {
        return;
    }

    if (reply == NULL || reply->type != NGX_HTTP_CLAW_RESP_ARRAY
        || reply->nelts != b->n)
    {
        /* the counts are lost to the others: they under-count a round */
        return;
    }

    for (i = 0; i < b->n; i++) {
        if (reply->elts[i].type != NGX_HTTP_CLAW_RESP_INTEGER
            || reply->elts[i].integer < 0)
        {
            return;
        }
    }

    if (b->fails) {
        f = (ngx_http_claw_share_fail_t *) sh->sfailures->elts + b->first;

        for (i = 0; i < b->n; i++) {
            ngx_http_claw_fail_debit(sh->fails, f[i].key, f[i].len,
                                     reply->elts[i].integer, f[i].limit,
                                     3 * sh->cluster->sync + 1000);
        }

        return;
    }

    d = ngx_palloc(sh->spool, b->n * sizeof(ngx_http_claw_debit_t));
    if (d == NULL) {
        return;
    }

    r = (ngx_http_claw_share_rate_t *) sh->srates->elts + b->first;

    for (i = 0; i < b->n; i++) {
        d[i].id = r[i].id;
        d[i].len = r[i].len;
        d[i].others = reply->elts[i].integer;
        d[i].interval = r[i].interval;
    }

    now = (uint64_t) ngx_current_msec * 1000000;

    ngx_http_claw_tables_debit(sh->tables, d, b->n, now,
                               3 * sh->cluster->sync + 1000);
}


/*
 * Worker 0, every second: this node is seen, and counts the nodes seen;
 * while the server cannot be reached, a tenant's rate is divided among
 * the nodes last counted.
 */

static void
ngx_http_claw_share_beat(ngx_event_t *ev)
{
    ngx_http_claw_share_t  *sh = ev->data;

    ngx_str_t                 args[6];
    ngx_http_claw_cluster_t  *cl;

    cl = sh->cluster;

    if (cl == NULL || ngx_exiting) {
        return;
    }

    ngx_http_claw_tables_share(sh->tables,
                               cl->sh->state == NGX_HTTP_CLAW_CLUSTER_DOWN
                               && cl->sh->nodes > 1 ? cl->sh->nodes : 1);

    ngx_str_set(&args[0], "EVAL");
    args[1] = ngx_http_claw_share_beat_script;
    ngx_str_set(&args[2], "1");
    args[3] = sh->nodes_key;
    args[4] = cl->node;
    ngx_str_set(&args[5], NGX_HTTP_CLAW_SHARE_GONE);

    (void) ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_share_beaten,
                                       sh, cl->redis.timeout, 6, args);

    ngx_add_timer(&sh->beat, NGX_HTTP_CLAW_SHARE_BEAT);
}


static void
ngx_http_claw_share_beaten(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_share_t  *sh = data;

    if (sh->cluster == NULL || reply == NULL
        || reply->type != NGX_HTTP_CLAW_RESP_INTEGER || reply->integer < 1)
    {
        return;
    }

    sh->cluster->sh->nodes = reply->integer;
}
