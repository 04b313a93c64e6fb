
/*
 * Copyright (C) ngx_claw_module authors
 *
 * claw_balancer: the peer of an upstream is the resolved tenant's
 * container.  With "keepalive" after it, the keepalive module wraps this
 * balancer and pools connections by the peer's sockaddr, compared byte
 * for byte over socklen.  Each tenant's address therefore carries an
 * 8-byte tag (the tenant's unique id) after the part the kernel reads,
 * so a pooled connection is only ever found again by the same tenant,
 * even when an address is reassigned from one tenant to another.
 *
 * The keepalive module looks for a connection by walking its whole cache:
 * fine for a handful of peers, not for thousands of tenants.  So the
 * balancer has a pool of its own (claw_keepalive), keyed by that same
 * tagged address in a hash table: finding a tenant's idle connection
 * costs the same with 10 or 100,000 tenants, and the pool can be as large
 * as the number of tenants that are busy at once.  Idle connections
 * time out by one timer per pool, set for the least recently used one:
 * a connection taken and given back touches no timer, where a timer each
 * would be moved in nginx's timer tree, as large as the pool, twice per
 * request.
 *
 * A full pool does not simply give up its least recently used connection
 * for a new one: under the skewed traffic of many tenants most requests
 * come from few of them, and a tenant asked for once in a while would
 * push out a connection that a busier one is about to reuse.  The new
 * connection takes the old one's place only when its tenant was asked for
 * more often lately (an admission policy, as caches under such traffic
 * use: TinyLFU).
 *
 * Since nginx 1.29.7 the keepalive module pools the connections of every
 * upstream{} block, "keepalive" written or not, and wraps its balancer
 * once the http{} block is read, whatever the order of the directives.
 * An upstream with claw_balancer and no "keepalive" says "keepalive 0"
 * through the keepalive module's own directive, nginx's documented way
 * out: its connections are pooled by claw_keepalive or not at all, as
 * with nginx before 1.29.7.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_balancer.h"


typedef struct ngx_http_claw_keepalive_s  ngx_http_claw_keepalive_t;


/* an idle connection to a tenant's container */
typedef struct {
    ngx_queue_t                  lru;           /* idle: the pool's list;
                                                   unused: the free list */
    ngx_queue_t                  bucket;
    ngx_http_claw_keepalive_t   *pool;
    ngx_connection_t            *connection;
    ngx_msec_t                   since;         /* idle since */
    uint32_t                     hash;
    socklen_t                    socklen;
    ngx_sockaddr_t               sockaddr;      /* with the tenant tag */
} ngx_http_claw_idle_t;


/* a worker's pool of idle connections, per upstream */
struct ngx_http_claw_keepalive_s {
    ngx_uint_t                   max;
    ngx_msec_t                   timeout;
    ngx_uint_t                   requests;
    ngx_queue_t                  idle;          /* most recently used first */
    ngx_queue_t                  free;
    ngx_event_t                  expire;        /* of the least recent */

    /* how often each tenant was asked for lately, see ngx_http_claw_seen */
    uint16_t                    *seen;
    uint32_t                     seen_mask;
    ngx_uint_t                   seen_shift;    /* 32 - log2(counters) */
    ngx_uint_t                   seen_count;
    unsigned                     full:1;        /* counted since full */

    ngx_queue_t                 *buckets;
    ngx_uint_t                   mask;
};


typedef struct {
    ngx_http_claw_ctx_t         *ctx;
    ngx_http_upstream_t         *upstream;
    ngx_http_claw_keepalive_t   *keepalive;
    ngx_uint_t                   attempts;
    ngx_sockaddr_t               retry;         /* see get_peer */
} ngx_http_claw_peer_data_t;


static void ngx_http_claw_health_report(ngx_http_claw_peer_data_t *pd,
    ngx_uint_t state);
static ngx_int_t ngx_http_claw_init_upstream(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
#if (nginx_version >= 1029007)
static ngx_int_t ngx_http_claw_keepalive_off(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
#endif
static ngx_int_t ngx_http_claw_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_claw_get_peer(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_claw_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state);

static ngx_http_claw_idle_t *ngx_http_claw_idle_find(
    ngx_http_claw_keepalive_t *ka, ngx_sockaddr_t *sa, socklen_t len,
    uint32_t hash);
static void ngx_http_claw_idle_remove(ngx_http_claw_idle_t *idle);
static void ngx_http_claw_idle_handler(ngx_event_t *ev);
static void ngx_http_claw_idle_dummy_handler(ngx_event_t *ev);
static void ngx_http_claw_idle_expire(ngx_event_t *ev);
static ngx_uint_t ngx_http_claw_seen(ngx_http_claw_keepalive_t *ka,
    uint32_t hash, ngx_uint_t add);
static void ngx_http_claw_idle_close(ngx_connection_t *c);
static void ngx_http_claw_idle_reusable(ngx_connection_t *c,
    ngx_uint_t reusable);

#if (NGX_HTTP_SSL)
static ngx_int_t ngx_http_claw_set_session(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_claw_save_session(ngx_peer_connection_t *pc,
    void *data);
#endif


static ngx_str_t  ngx_http_claw_server_name = ngx_string("claw tenant");


/*
 * claw_health: an attempt that failed (no connection, a reset, a timeout,
 * an invalid answer: nginx's own 502 and 504) counts against the
 * tenant's container, one that got an answer clears the count.
 */

static void
ngx_http_claw_health_report(ngx_http_claw_peer_data_t *pd, ngx_uint_t state)
{
    ngx_uint_t                 ok, changed;
    ngx_http_request_t        *r;
    ngx_http_claw_ctx_t       *ctx;
    ngx_http_claw_loc_conf_t  *clcf;

    ctx = pd->ctx;
    r = ctx->request;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_claw_module);

    if (clcf->health_fails == 0) {
        return;
    }

    ok = !(state & NGX_PEER_FAILED);

    changed = ngx_http_claw_tables_health_report(ctx->tenant, ok,
                                                 ngx_current_msec,
                                                 clcf->health_fails,
                                                 clcf->health_timeout);
    if (changed == 1) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "claw: the container of tenant \"%V\" failed %ui "
                      "times in a row: requests get 503 for %M ms, then one "
                      "tries it", &ctx->id, clcf->health_fails,
                      clcf->health_timeout);

    } else if (changed == 2) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "claw: the container of tenant \"%V\" answers again",
                      &ctx->id);

    } else if (!ok && ctx->probe) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "claw: the container of tenant \"%V\" is still down",
                      &ctx->id);
    }
}


char *
ngx_http_claw_balancer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_upstream_server_t    *us;
    ngx_http_upstream_srv_conf_t  *uscf;

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    /*
     * "keepalive" wraps whatever balancer is set when it is read; read
     * before us, it would wrap round-robin and be lost silently (before
     * nginx 1.29.7: since, it wraps the balancer at the end of http{},
     * and sets no init_upstream here, so its order does not matter).
     */

    if (uscf->peer.init_upstream) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"claw_balancer\" must be the first balancing "
                           "directive in upstream \"%V\", before "
                           "\"keepalive\"", &uscf->host);
        return NGX_CONF_ERROR;
    }

    if (uscf->servers == NULL || uscf->servers->nelts) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "upstream \"%V\" with \"claw_balancer\" takes its "
                           "peers from the tenant registry and cannot have "
                           "\"server\" lines", &uscf->host);
        return NGX_CONF_ERROR;
    }

    /* the upstream block wants a server; this one stands for the tenant */

    us = ngx_array_push(uscf->servers);
    if (us == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(us, sizeof(ngx_http_upstream_server_t));
    us->name = ngx_http_claw_server_name;

    uscf->flags = NGX_HTTP_UPSTREAM_CREATE;
    uscf->peer.init_upstream = ngx_http_claw_init_upstream;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_claw_init_upstream(ngx_conf_t *cf, ngx_http_upstream_srv_conf_t *us)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i, n, m;
    ngx_http_claw_idle_t       *idle;
    ngx_http_claw_srv_conf_t   *cscf;
    ngx_http_claw_keepalive_t  *ka;

    if (us->servers->nelts != 1) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "upstream \"%V\" with \"claw_balancer\" cannot have "
                      "\"server\" lines in %s:%ui",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    us->peer.init = ngx_http_claw_init_peer;

    cscf = ngx_http_conf_upstream_srv_conf(us, ngx_http_claw_module);

    /*
     * rc is NGX_DECLINED when "keepalive" is in the block and wraps us
     * (before nginx 1.29.7 it has wrapped init_upstream by now)
     */

#if (nginx_version >= 1029007)

    rc = ngx_http_claw_keepalive_off(cf, us);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

#else

    rc = (us->peer.init_upstream == ngx_http_claw_init_upstream)
         ? NGX_OK : NGX_DECLINED;

#endif

    if (cscf->keepalive == 0) {
        return NGX_OK;
    }

    /* "keepalive" and "claw_keepalive": two pools, one wasted */

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"claw_keepalive\" and \"keepalive\" cannot both "
                      "pool the connections of upstream \"%V\" in %s:%ui",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    /* made here, copied into each worker with the configuration */

    ka = ngx_pcalloc(cf->pool, sizeof(ngx_http_claw_keepalive_t));
    if (ka == NULL) {
        return NGX_ERROR;
    }

    ka->max = cscf->keepalive;
    ka->timeout = cscf->keepalive_timeout;
    ka->requests = cscf->keepalive_requests;

    for (n = 64; n < ka->max; n *= 2) {
        /* void */
    }

    ka->mask = n - 1;

    ka->buckets = ngx_palloc(cf->pool, n * sizeof(ngx_queue_t));
    idle = ngx_pcalloc(cf->pool, ka->max * sizeof(ngx_http_claw_idle_t));

    /* 4 counters per pooled connection or more: few tenants collide */

    ka->seen_shift = 32 - 10;

    for (m = 1024; m < ka->max * 4; m *= 2) {
        ka->seen_shift--;
    }

    ka->seen = ngx_pcalloc(cf->pool, m * sizeof(uint16_t));
    ka->seen_mask = m - 1;

    if (ka->buckets == NULL || idle == NULL || ka->seen == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        ngx_queue_init(&ka->buckets[i]);
    }

    ngx_queue_init(&ka->idle);
    ngx_queue_init(&ka->free);

    ka->expire.handler = ngx_http_claw_idle_expire;
    ka->expire.data = ka;
    ka->expire.cancelable = 1;

    for (i = 0; i < ka->max; i++) {
        idle[i].pool = ka;
        ngx_queue_insert_head(&ka->free, &idle[i].lru);
    }

    cscf->pool = ka;

    return NGX_OK;
}


#if (nginx_version >= 1029007)

/*
 * "keepalive 0" for this upstream, through the keepalive module's own
 * directive, unless "keepalive" was written (it says "is duplicate"):
 * called from the upstream module's init_main_conf, before the keepalive
 * module's, which wraps the balancer of every upstream not set to 0.
 * NGX_OK: no stock pool; NGX_DECLINED: the operator's "keepalive".
 */

static ngx_int_t
ngx_http_claw_keepalive_off(ngx_conf_t *cf, ngx_http_upstream_srv_conf_t *us)
{
    char           *rv;
    ngx_str_t      *value;
    ngx_uint_t      i;
    ngx_array_t    *args, *saved;
    ngx_module_t   *m;
    ngx_command_t  *cmd;

    for (i = 0; cf->cycle->modules[i]; i++) {
        m = cf->cycle->modules[i];

        if (m->type == NGX_HTTP_MODULE
            && ngx_strcmp(m->name, "ngx_http_upstream_keepalive_module") == 0)
        {
            break;
        }
    }

    /* an nginx built without the keepalive module pools nothing */

    if (cf->cycle->modules[i] == NULL) {
        return NGX_OK;
    }

    for (cmd = m->commands; cmd && cmd->name.len; cmd++) {
        if (cmd->name.len == sizeof("keepalive") - 1
            && ngx_strncmp(cmd->name.data, "keepalive", cmd->name.len) == 0)
        {
            break;
        }
    }

    if (cmd == NULL || cmd->name.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "no \"keepalive\" directive to turn off the default "
                      "keepalive of upstream \"%V\" in %s:%ui",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    args = ngx_array_create(cf->temp_pool, 2, sizeof(ngx_str_t));
    if (args == NULL) {
        return NGX_ERROR;
    }

    value = ngx_array_push_n(args, 2);
    if (value == NULL) {
        return NGX_ERROR;
    }

    value[0] = cmd->name;
    ngx_str_set(&value[1], "0");

    saved = cf->args;
    cf->args = args;

    rv = cmd->set(cf, cmd, us->srv_conf[m->ctx_index]);

    cf->args = saved;

    if (rv == NGX_CONF_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                       "claw balancer: default keepalive of upstream \"%V\" "
                       "off", &us->host);
        return NGX_OK;
    }

    if (rv != NGX_CONF_ERROR && ngx_strcmp(rv, "is duplicate") == 0) {
        return NGX_DECLINED;
    }

    if (rv != NGX_CONF_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "the default keepalive of upstream \"%V\" in %s:%ui "
                      "cannot be turned off: \"keepalive 0\" %s",
                      &us->host, us->file_name, us->line, rv);
    }

    return NGX_ERROR;
}

#endif


static ngx_int_t
ngx_http_claw_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    uint64_t                    tag;
    ngx_http_claw_ctx_t        *ctx;
    ngx_http_upstream_t        *u;
    ngx_http_claw_tconf_t      *tc;
    ngx_http_claw_loc_conf_t   *clcf;
    ngx_http_claw_srv_conf_t   *cscf;
    ngx_http_claw_peer_data_t  *pd;

    pd = ngx_palloc(r->pool, sizeof(ngx_http_claw_peer_data_t));
    if (pd == NULL) {
        return NGX_ERROR;
    }

    /*
     * Only a request admitted by "claw on" in the location that proxies
     * reaches a container: not one sent on by error_page to a location
     * without it.
     */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_claw_module);
    ctx = ngx_http_claw_get_ctx(r->main);

    if (!clcf->enable || (ctx && !ctx->admitted)) {
        ctx = NULL;
    }

    if (ctx && ctx->tenant && ctx->peer_len == 0) {
        tc = ctx->tconf;
        tag = ctx->tenant->uid;

        ngx_memcpy(&ctx->peer, ngx_http_claw_tconf_addr(tc), tc->socklen);
        ngx_memcpy((u_char *) &ctx->peer + tc->socklen, &tag,
                   NGX_HTTP_CLAW_TAG_LEN);

        ctx->peer_len = tc->socklen + NGX_HTTP_CLAW_TAG_LEN;
    }

    pd->ctx = ctx;
    pd->upstream = r->upstream;
    pd->attempts = 0;
    cscf = ngx_http_conf_upstream_srv_conf(us, ngx_http_claw_module);
    pd->keepalive = cscf->pool;

    u = r->upstream;

    u->peer.data = pd;
    u->peer.get = ngx_http_claw_get_peer;
    u->peer.free = ngx_http_claw_free_peer;
    u->peer.tries = 1;

#if (NGX_HTTP_SSL)
    u->peer.set_session = ngx_http_claw_set_session;
    u->peer.save_session = ngx_http_claw_save_session;
#endif

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_get_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_claw_peer_data_t  *pd = data;

    u_char                *tag;
    ngx_connection_t      *c;
    ngx_http_claw_ctx_t   *ctx;
    ngx_http_claw_idle_t  *idle;

    /*
     * As round-robin does: "cached" left from an earlier attempt on a
     * pooled connection would make ngx_http_upstream_next() add a try
     * after every failure of this one, and send the request for ever
     */

    pc->cached = 0;
    pc->connection = NULL;

    pd->attempts++;

    ctx = pd->ctx;

    if (ctx == NULL || ctx->peer_len == 0) {
        ngx_log_error(NGX_LOG_ERR, pc->log, 0,
                      "claw: no tenant admitted by \"claw on\" for this "
                      "request, not connecting to any container");
        pc->name = &ngx_http_claw_server_name;
        return NGX_BUSY;
    }

    /* its credential was revoked before it reached the container */

    if (ctx->cut) {
        ngx_log_error(NGX_LOG_INFO, pc->log, 0,
                      "claw: the credential of this request of tenant "
                      "\"%V\" was revoked, not connecting", &ctx->id);
        pc->name = &ctx->upstream;
        return NGX_BUSY;
    }

    pc->sockaddr = &ctx->peer.sockaddr;
    pc->socklen = ctx->peer_len;
    pc->name = &ctx->upstream;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                   "claw balancer: tenant \"%V\" peer \"%V\" uid %uL",
                   &ctx->id, &ctx->upstream, ctx->tenant->uid);

    if (pd->keepalive == NULL) {

        /*
         * "keepalive", when it wraps us, looks for an idle connection by
         * this address after we return: a retry gets its tag with the top
         * bit set, which no idle connection has but one a retry of the
         * same tenant pooled, so that it goes on a new connection too (a
         * container that restarted left every pooled one dead)
         */

        if (pd->attempts > 1) {
            ngx_memcpy(&pd->retry, &ctx->peer, ctx->peer_len);
            tag = (u_char *) &pd->retry + ctx->peer_len - 1;
            *tag ^= 0x80;
            pc->sockaddr = &pd->retry.sockaddr;
        }

        return NGX_OK;
    }

    /* a retry too: free pools its new connection under this hash */

    ctx->peer_hash = ngx_murmur_hash2((u_char *) &ctx->peer, ctx->peer_len);

    /*
     * The only try after the first is the one nginx adds when a pooled
     * connection failed: it goes on a new connection, as another idle one
     * is no likelier to be alive
     */

    if (pd->attempts > 1) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                       "claw balancer: attempt %ui on a new connection",
                       pd->attempts);
        return NGX_OK;
    }

    /* only a full pool has a choice to make */

    if (pd->keepalive->full) {
        (void) ngx_http_claw_seen(pd->keepalive, ctx->peer_hash, 1);
    }

    idle = ngx_http_claw_idle_find(pd->keepalive, &ctx->peer, ctx->peer_len,
                                   ctx->peer_hash);
    if (idle == NULL) {
        return NGX_OK;
    }

    c = idle->connection;

    ngx_http_claw_idle_remove(idle);

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    ngx_http_claw_idle_reusable(c, 0);

    c->idle = 0;
    c->sent = 0;
    c->data = NULL;
    c->log = pc->log;
    c->read->log = pc->log;
    c->write->log = pc->log;
    c->pool->log = pc->log;

    pc->connection = c;
    pc->cached = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                   "claw balancer: idle connection %p of the tenant", c);

    return NGX_DONE;
}


static void
ngx_http_claw_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_claw_peer_data_t  *pd = data;

    ngx_queue_t                *q;
    ngx_connection_t           *c;
    ngx_http_claw_idle_t       *idle;
    ngx_http_claw_keepalive_t  *ka;

    pc->tries = 0;

    if (pd->ctx && pd->ctx->tenant) {
        if (state & NGX_PEER_FAILED) {
            (void) ngx_atomic_fetch_add(
                       &pd->ctx->tables->sh->upstream_failed, 1);
            (void) ngx_atomic_fetch_add(&pd->ctx->tenant->upstream_failed, 1);

            /* asleep again, may be: the next request looks (claw_wake) */
            pd->ctx->tenant->wake_up = 0;
        }

        ngx_http_claw_health_report(pd, state);
    }

    /*
     * "keepalive" may have handed a later attempt another pooled
     * connection after our get; its failure must not add a try again
     */

    if (pd->attempts > 1) {
        pc->cached = 0;
    }

    ka = pd->keepalive;
    c = pc->connection;

    if (ka == NULL
        || c == NULL
        || (state & NGX_PEER_FAILED)
        || c->read->eof || c->read->error || c->read->timedout
        || c->write->error || c->write->timedout
        || c->requests >= ka->requests
        || !pd->upstream->keepalive
        || !pd->upstream->request_body_sent
        || ngx_terminate || ngx_exiting
        || ngx_handle_read_event(c->read, 0) != NGX_OK)
    {
        return;
    }

    /*
     * A full pool gives up its least recently used connection for one of
     * a tenant asked for more often, and at once if its tenant has another
     * (a busy tenant's spare, idle that long, is worth nothing, but its
     * tenant's count would keep it, and every other, in the pool for
     * ever); if not, this connection is closed
     */

    if (ngx_queue_empty(&ka->free)) {
        ka->full = 1;

        q = ngx_queue_last(&ka->idle);
        idle = ngx_queue_data(q, ngx_http_claw_idle_t, lru);

        if (ngx_http_claw_idle_find(ka, &idle->sockaddr, idle->socklen,
                                    idle->hash)
               == idle
            && ngx_http_claw_seen(ka, pd->ctx->peer_hash, 0)
               <= ngx_http_claw_seen(ka, idle->hash, 0))
        {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                           "claw balancer: pool full of busier tenants, "
                           "connection not kept");
            return;
        }

        ngx_http_claw_idle_close(idle->connection);
        ngx_http_claw_idle_remove(idle);
    }

    q = ngx_queue_head(&ka->free);
    ngx_queue_remove(q);

    idle = ngx_queue_data(q, ngx_http_claw_idle_t, lru);

    idle->connection = c;
    idle->hash = pd->ctx->peer_hash;
    idle->socklen = pc->socklen;
    ngx_memcpy(&idle->sockaddr, pc->sockaddr, pc->socklen);

    idle->since = ngx_current_msec;

    ngx_queue_insert_head(&ka->idle, &idle->lru);
    ngx_queue_insert_head(&ka->buckets[idle->hash & ka->mask], &idle->bucket);

    if (!ka->expire.timer_set) {
        ka->expire.log = ngx_cycle->log;
        ngx_add_timer(&ka->expire, ka->timeout);
    }

    pc->connection = NULL;

    c->read->delayed = 0;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    c->read->handler = ngx_http_claw_idle_handler;
    c->write->handler = ngx_http_claw_idle_dummy_handler;

    c->data = idle;
    c->idle = 1;

    /*
     * nginx may take it back, as it takes idle client connections, when
     * it runs short of worker_connections: a pool sized for many tenants
     * must not starve the clients
     */

    ngx_http_claw_idle_reusable(c, 1);

    c->log = ngx_cycle->log;
    c->read->log = ngx_cycle->log;
    c->write->log = ngx_cycle->log;
    c->pool->log = ngx_cycle->log;

    if (c->read->ready) {
        ngx_http_claw_idle_handler(c->read);
    }
}


static ngx_http_claw_idle_t *
ngx_http_claw_idle_find(ngx_http_claw_keepalive_t *ka, ngx_sockaddr_t *sa,
    socklen_t len, uint32_t hash)
{
    ngx_queue_t           *q, *head;
    ngx_http_claw_idle_t  *idle;

    head = &ka->buckets[hash & ka->mask];

    for (q = ngx_queue_head(head);
         q != ngx_queue_sentinel(head);
         q = ngx_queue_next(q))
    {
        idle = ngx_queue_data(q, ngx_http_claw_idle_t, bucket);

        if (idle->hash == hash && idle->socklen == len
            && ngx_memcmp(&idle->sockaddr, sa, len) == 0)
        {
            return idle;
        }
    }

    return NULL;
}


static void
ngx_http_claw_idle_remove(ngx_http_claw_idle_t *idle)
{
    ngx_queue_remove(&idle->lru);
    ngx_queue_remove(&idle->bucket);
    ngx_queue_insert_head(&idle->pool->free, &idle->lru);

    idle->connection = NULL;
}


/*
 * An idle connection that becomes readable was closed by the container
 * (or sends what nobody asked for), or nginx takes it back: it goes.
 */

static void
ngx_http_claw_idle_handler(ngx_event_t *ev)
{
    int                    n;
    char                   buf[1];
    ngx_connection_t      *c;
    ngx_http_claw_idle_t  *idle;

    c = ev->data;

    if (!c->close) {
        n = recv(c->fd, buf, 1, MSG_PEEK);

        if (n == -1 && ngx_socket_errno == NGX_EAGAIN) {
            ev->ready = 0;

            if (ngx_handle_read_event(c->read, 0) == NGX_OK) {
                return;
            }
        }
    }

    idle = c->data;

    ngx_http_claw_idle_close(c);
    ngx_http_claw_idle_remove(idle);
}


static void
ngx_http_claw_idle_dummy_handler(ngx_event_t *ev)
{
}


/*
 * How often a tenant was asked for lately: the least of two counters of
 * its hash (a count-min sketch, so a collision only ever overstates),
 * which count to 65535 and are all halved every 10 requests per pooled
 * connection, so that what was busy once fades.  add: counts one more.
 */

static ngx_uint_t
ngx_http_claw_seen(ngx_http_claw_keepalive_t *ka, uint32_t hash,
    ngx_uint_t add)
{
    uint16_t    *a, *b;
    ngx_uint_t   i, n;

    /* the low bits, and the high bits of another mix of all of them */

    a = &ka->seen[hash & ka->seen_mask];
    b = &ka->seen[(uint32_t) (hash * 0x9e3779b1) >> ka->seen_shift];

    n = ngx_min(*a, *b);

    if (!add) {
        return n;
    }

    /* only the smaller grows: the estimate stays as tight as it can */

    if (n < 0xffff) {
        if (*a == n) {
            (*a)++;
        }

        if (*b == n) {
            (*b)++;
        }

        n++;
    }

    if (++ka->seen_count >= 10 * ka->max) {
        ka->seen_count = 0;

        for (i = 0; i <= ka->seen_mask; i++) {
            ka->seen[i] >>= 1;
        }
    }

    return n;
}


/* the connections idle for "timeout" go; the timer waits for the next */

static void
ngx_http_claw_idle_expire(ngx_event_t *ev)
{
    ngx_msec_t                  idle_for;
    ngx_queue_t                *q;
    ngx_http_claw_idle_t       *idle;
    ngx_http_claw_keepalive_t  *ka;

    ka = ev->data;

    while (!ngx_queue_empty(&ka->idle)) {
        q = ngx_queue_last(&ka->idle);
        idle = ngx_queue_data(q, ngx_http_claw_idle_t, lru);

        idle_for = ngx_current_msec - idle->since;

        if (idle_for < ka->timeout) {
            ngx_add_timer(ev, ka->timeout - idle_for);
            return;
        }

        ngx_http_claw_idle_close(idle->connection);
        ngx_http_claw_idle_remove(idle);
    }
}


/*
 * stub_status counts the connections nginx may take back as clients
 * "Waiting" for a request: an idle container connection is none.
 */

static void
ngx_http_claw_idle_reusable(ngx_connection_t *c, ngx_uint_t reusable)
{
#if (NGX_STAT_STUB)
    if (c->reusable) {
        (void) ngx_atomic_fetch_add(ngx_stat_waiting, 1);
    }
#endif

    ngx_reusable_connection(c, reusable);

#if (NGX_STAT_STUB)
    if (reusable) {
        (void) ngx_atomic_fetch_add(ngx_stat_waiting, -1);
    }
#endif
}


static void
ngx_http_claw_idle_close(ngx_connection_t *c)
{
    ngx_http_claw_idle_reusable(c, 0);

#if (NGX_HTTP_SSL)

    if (c->ssl) {
        c->ssl->no_wait_shutdown = 1;
        c->ssl->no_send_shutdown = 1;

        if (ngx_ssl_shutdown(c) == NGX_AGAIN) {
            c->ssl->handler = ngx_http_claw_idle_close;
            return;
        }
    }

#endif

    ngx_destroy_pool(c->pool);
    ngx_close_connection(c);
}


/* claw_keepalive connections [timeout=time] [requests=number] */

char *
ngx_http_claw_keepalive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_srv_conf_t  *cscf = conf;

    ngx_int_t                      n;
    ngx_str_t                     *value, s;
    ngx_uint_t                     i;
    ngx_http_upstream_srv_conf_t  *uscf;

    if (cscf->keepalive) {
        return "is duplicate";
    }

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    if (uscf->peer.init_upstream == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"claw_keepalive\" needs \"claw_balancer\" "
                           "before it in upstream \"%V\"", &uscf->host);
        return NGX_CONF_ERROR;
    }

    if (uscf->peer.init_upstream != ngx_http_claw_init_upstream) {
        goto combined;
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n == NGX_ERROR || n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of connections \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    cscf->keepalive = n;
    cscf->keepalive_timeout = 60000;
    cscf->keepalive_requests = 1000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            cscf->keepalive_timeout = ngx_parse_time(&s, 0);

            if (cscf->keepalive_timeout == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "requests=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);

            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            cscf->keepalive_requests = n;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;

combined:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"claw_keepalive\" and \"keepalive\" cannot both "
                       "pool the connections of upstream \"%V\"",
                       &uscf->host);

    return NGX_CONF_ERROR;
}


#if (NGX_HTTP_SSL)

/* TLS sessions to containers are not cached: they would cross tenants */

static ngx_int_t
ngx_http_claw_set_session(ngx_peer_connection_t *pc, void *data)
{
    return NGX_OK;
}


static void
ngx_http_claw_save_session(ngx_peer_connection_t *pc, void *data)
{
}

#endif
