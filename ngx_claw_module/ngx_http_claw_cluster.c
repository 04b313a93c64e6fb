
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Cluster mode: the registry kept in a Redis-protocol server, shared by
 * every node.  The server holds each tenant's record (its registry line)
 * under "<prefix>t:<id>", the owner of each custom domain under
 * "<prefix>d:<name>", an ordered change log (the stream "<prefix>log",
 * one journal record per entry) and an epoch, set when a registry was
 * imported: a server without it holds no registry, one with another
 * holds another.
 *
 * An admin change is one script on the server: it checks the epoch and
 * the record it replaces, claims the domains, writes the record and
 * appends to the log, all or nothing.  On each node one worker (the
 * follower, worker 0) applies the log in order through the journal
 * (apply.c), so that a restart without the server serves what it had;
 * on a new epoch, or when the entries it needs were trimmed, it reads
 * every record instead and removes the tenants the server does not hold.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_claw_parse.h"
#include <openssl/rand.h>

#include "ngx_http_claw_cluster.h"


#define NGX_HTTP_CLAW_CLUSTER_BLOCK    1000     /* XREAD BLOCK, ms */
#define NGX_HTTP_CLAW_CLUSTER_BATCH    100      /* entries per XREAD */
#define NGX_HTTP_CLAW_CLUSTER_SCAN     500      /* keys per SCAN */
#define NGX_HTTP_CLAW_CLUSTER_WAIT     2000     /* ms an admin change waits
                                                   to be applied here */


/* a change to apply: a log entry (its id), or a record (ms 0) */
typedef struct {
    ngx_http_claw_apply_item_t   item;
    uint64_t                     ms;
    uint64_t                     seq;
} ngx_http_claw_entry_rec_t;


typedef struct {
    ngx_http_claw_cluster_t     *cl;
    ngx_event_t                  retry;
    ngx_pool_t                  *pool;          /* of the step under way */
    ngx_uint_t                   snapshot;      /* reading every record */
    ngx_uint_t                   alerted;
    ngx_uint_t                   told;          /* that it is down */

    u_char                       epoch[NGX_HTTP_CLAW_EPOCH_LEN];
    size_t                       epoch_len;

    /* a snapshot */
    uint64_t                     snap_ms;
    uint64_t                     snap_seq;
    ngx_str_t                    cursor;
    ngx_rbtree_t                 seen;
    ngx_rbtree_node_t            sentinel;
    ngx_uint_t                   deleting;      /* 1, then 2: deferred */
    ngx_array_t                 *deferred;      /* a domain still held */

    /* entries being applied, in order */
    ngx_array_t                 *entries;
    ngx_uint_t                   next;
    ngx_http_claw_apply_item_t  *items;         /* the batch's */
} ngx_http_claw_follower_t;


static ngx_int_t ngx_http_claw_cluster_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_claw_follow_start(ngx_http_claw_follower_t *fl);
static void ngx_http_claw_follow_retry(ngx_event_t *ev);
static void ngx_http_claw_follow_epoch(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_follow_first(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_follow_last(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_follow_snapshot(ngx_http_claw_follower_t *fl);
static void ngx_http_claw_follow_snap_last(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_follow_scan(ngx_http_claw_follower_t *fl);
static void ngx_http_claw_follow_scanned(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_follow_records(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_follow_scan_next(ngx_http_claw_follower_t *fl);
static void ngx_http_claw_follow_deletes(ngx_http_claw_follower_t *fl);
static void ngx_http_claw_follow_read(ngx_http_claw_follower_t *fl);
static void ngx_http_claw_follow_entries(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_follow_apply(ngx_http_claw_follower_t *fl);
static void ngx_http_claw_follow_applied(void *data, ngx_uint_t n,
    ngx_int_t rc);
static void ngx_http_claw_follow_down(ngx_http_claw_follower_t *fl,
    const char *why);
static void ngx_http_claw_follow_state(ngx_http_claw_follower_t *fl,
    ngx_uint_t state);
static ngx_http_claw_entry_rec_t *ngx_http_claw_follow_push(
    ngx_http_claw_follower_t *fl, ngx_str_t *key, const char *op,
    const u_char *data, size_t len);

static void ngx_http_claw_cluster_set_last(ngx_http_claw_cluster_sh_t *sh,
    uint64_t ms, uint64_t seq, u_char *epoch, size_t epoch_len);
static void ngx_http_claw_cluster_get_last(ngx_http_claw_cluster_sh_t *sh,
    uint64_t *ms, uint64_t *seq, u_char *epoch, size_t *epoch_len);
static ngx_int_t ngx_http_claw_cluster_id(const u_char *p, size_t len,
    uint64_t *ms, uint64_t *seq);
static ngx_int_t ngx_http_claw_cluster_key(ngx_pool_t *pool,
    ngx_http_claw_cluster_t *cl, const char *kind, ngx_str_t *name,
    ngx_str_t *key);
static void ngx_http_claw_cluster_got(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_cluster_written(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_cluster_waiting(ngx_event_t *ev);
static ngx_int_t ngx_http_claw_cluster_import_send(
    ngx_http_claw_cluster_op_t *op, ngx_uint_t n, ngx_str_t *args);
static void ngx_http_claw_cluster_import_step(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_cluster_ignore(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_cluster_fail(ngx_http_claw_cluster_op_t *op,
    ngx_http_claw_resp_t *reply, const char *what);


static ngx_uint_t  ngx_http_claw_cluster_tag;


/*
 * KEYS: the epoch, the log.  ARGV: the prefix.  1: a registry is there;
 * 2: records, domains or a log without one; 0: nothing
 */

static ngx_str_t  ngx_http_claw_cluster_empty_script = ngx_string(
"if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end\n"
"if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end\n"
"if #redis.call('KEYS', ARGV[1] .. 't:*') > 0 then return 2 end\n"
"if #redis.call('KEYS', ARGV[1] .. 'd:*') > 0 then return 2 end\n"
"return 0\n");


/*
 * KEYS: the record, the log, the epoch.  ARGV: the epoch expected, the
 * record expected ("" for none), the new record ("" deletes), the log
 * entry, the log's length, the domain keys' prefix, the id, the number
 * of old domains, the old domains, the new domains.
 */

static ngx_str_t  ngx_http_claw_cluster_script = ngx_string(
"if redis.call('GET', KEYS[3]) ~= ARGV[1] then\n"
"  return redis.error_reply('CLAWEPOCH the server holds another registry')\n"
"end\n"
"local cur = redis.call('GET', KEYS[1]) or ''\n"
"if cur ~= ARGV[2] then return {0} end\n"
"local nold = tonumber(ARGV[8])\n"
"local new = {}\n"
"for i = 9 + nold, #ARGV do new[ARGV[i]] = true end\n"
"for d in pairs(new) do\n"
"  local owner = redis.call('GET', ARGV[6] .. d)\n"
"  if owner and owner ~= ARGV[7] then return {-1, d, owner} end\n"
"end\n"
"for i = 9, 8 + nold do\n"
"  if not new[ARGV[i]] then redis.call('DEL', ARGV[6] .. ARGV[i]) end\n"
"end\n"
"for d in pairs(new) do redis.call('SET', ARGV[6] .. d, ARGV[7]) end\n"
"if ARGV[3] == '' then redis.call('DEL', KEYS[1])\n"
"else redis.call('SET', KEYS[1], ARGV[3]) end\n"
"local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',\n"
"                     'r', ARGV[4])\n"
"return {1, id, cur == '' and 1 or 0}\n");


/*
 * claw_cluster redis://[[user]:password@]host[:port][/db]
 *              [node=<hostname>] [prefix=claw:] [sync=100ms]
 *              [timeout=2s] [log=100000];
 */

char *
ngx_http_claw_cluster_directive(ngx_conf_t *cf, ngx_http_claw_cluster_t **clp)
{
    char                     *err;
    ngx_int_t                 n;
    ngx_str_t                *value, s, name, trusted, cert, key;
    ngx_uint_t                i;
    ngx_msec_t                ms;
    ngx_http_claw_cluster_t  *cl;
    u_char                    errbuf[256];

    ngx_str_null(&trusted);
    ngx_str_null(&cert);
    ngx_str_null(&key);

    if (*clp) {
        return "is duplicate";
    }

    cl = ngx_pcalloc(cf->pool, sizeof(ngx_http_claw_cluster_t));
    if (cl == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    if (ngx_http_claw_redis_parse_url(cf, &value[1], &cl->redis, &err)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid claw_cluster server: %s", err);
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&cl->prefix, "claw:");
    cl->redis.timeout = 2000;
    cl->redis.connect_timeout = 2000;
    cl->retry = 1000;
    cl->sync = 100;
    cl->log_max = 100000;
    cl->node = cf->cycle->hostname;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            cl->prefix.data = value[i].data + 7;
            cl->prefix.len = value[i].len - 7;

            /* the prefix is a SCAN pattern too: no glob characters */

            if (cl->prefix.len > 64
                || ngx_strlchr(cl->prefix.data,
                               cl->prefix.data + cl->prefix.len, '*')
                || ngx_strlchr(cl->prefix.data,
                               cl->prefix.data + cl->prefix.len, '?')
                || ngx_strlchr(cl->prefix.data,
                               cl->prefix.data + cl->prefix.len, '[')
                || ngx_strlchr(cl->prefix.data,
                               cl->prefix.data + cl->prefix.len, ']')
                || ngx_strlchr(cl->prefix.data,
                               cl->prefix.data + cl->prefix.len, '\\'))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": at most 64 characters, "
                                   "none of \"*?[]\\\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "node=", 5) == 0) {
            cl->node.data = value[i].data + 5;
            cl->node.len = value[i].len - 5;

            if (cl->node.len == 0 || cl->node.len > 64) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "sync=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            ms = ngx_parse_time(&s, 0);

            if (ms == (ngx_msec_t) NGX_ERROR || ms < 10 || ms > 10000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": from 10ms to 10s",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            cl->sync = ms;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            ms = ngx_parse_time(&s, 0);

            if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
                goto invalid;
            }

            cl->redis.timeout = ms;
            cl->redis.connect_timeout = ms;
            continue;
        }

        /* rediss://, named as nginx's proxy_ssl_* directives */

        if (ngx_strncmp(value[i].data, "ssl_trusted_certificate=", 24) == 0) {
            trusted.data = value[i].data + 24;
            trusted.len = value[i].len - 24;
            goto tls;
        }

        if (ngx_strncmp(value[i].data, "ssl_certificate=", 16) == 0) {
            cert.data = value[i].data + 16;
            cert.len = value[i].len - 16;
            goto tls;
        }

        if (ngx_strncmp(value[i].data, "ssl_certificate_key=", 20) == 0) {
            key.data = value[i].data + 20;
            key.len = value[i].len - 20;
            goto tls;
        }

        if (ngx_strncmp(value[i].data, "ssl_name=", 9) == 0) {
            cl->redis.ssl_name.data = value[i].data + 9;
            cl->redis.ssl_name.len = value[i].len - 9;
            goto tls;
        }

        if (ngx_strncmp(value[i].data, "log=", 4) == 0) {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);

            if (n == NGX_ERROR || n < 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": the log keeps 1000 "
                                   "entries at least", &value[i]);
                return NGX_CONF_ERROR;
            }

            cl->log_max = n;
            continue;
        }

        goto invalid;

    tls:

        if (!cl->redis.tls) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" requires a \"rediss://\" server",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        if (value[i].data[value[i].len - 1] == '=') {
            goto invalid;
        }
    }

    if ((cert.len == 0) != (key.len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "claw_cluster: \"ssl_certificate=\" and "
                           "\"ssl_certificate_key=\" go together");
        return NGX_CONF_ERROR;
    }

    if (cl->redis.tls
        && ngx_http_claw_redis_ssl(cf, &cl->redis, &trusted, &cert, &key)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* a wrong password is a configuration error; no answer is not */

    switch (ngx_http_claw_redis_probe(&cl->redis, errbuf, sizeof(errbuf))) {

    case NGX_ERROR:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "claw_cluster server \"%V\": %s", &cl->redis.url,
                           errbuf);
        return NGX_CONF_ERROR;

    case NGX_DECLINED:
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "claw_cluster server \"%V\" does not answer "
                           "(%s): the node serves its own registry until "
                           "it does", &cl->redis.url, errbuf);
        break;
    }

    ngx_str_set(&name, "claw_cluster");

    cl->shm_zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                         &ngx_http_claw_cluster_tag);
    if (cl->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    cl->shm_zone->init = ngx_http_claw_cluster_init_zone;
    cl->shm_zone->data = cl;

    *clp = cl;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/* the link's state survives a reload: the zone's tenants are kept too */

static ngx_int_t
ngx_http_claw_cluster_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_claw_cluster_t  *ocl = data;

    ngx_slab_pool_t          *shpool;
    ngx_http_claw_cluster_t  *cl;

    cl = shm_zone->data;

    if (ocl) {
        cl->sh = ocl->sh;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cl->sh = shpool->data;
        return NGX_OK;
    }

    cl->sh = ngx_slab_calloc(shpool, sizeof(ngx_http_claw_cluster_sh_t));
    if (cl->sh == NULL) {
        return NGX_ERROR;
    }

    cl->sh->shpool = shpool;

    shpool->data = cl->sh;

    return NGX_OK;
}


ngx_int_t
ngx_http_claw_cluster_init_worker(ngx_http_claw_cluster_t *cl,
    ngx_cycle_t *cycle)
{
    ngx_http_claw_follower_t  *fl;

    cl->log = cycle->log;

    ngx_http_claw_redis_init(&cl->cmd, &cl->redis, cycle->log);
    ngx_http_claw_redis_init(&cl->follow, &cl->redis, cycle->log);

    if (ngx_worker != 0) {
        return NGX_OK;
    }

    fl = ngx_pcalloc(cycle->pool, sizeof(ngx_http_claw_follower_t));
    if (fl == NULL) {
        return NGX_ERROR;
    }

    fl->cl = cl;
    fl->retry.handler = ngx_http_claw_follow_retry;
    fl->retry.data = fl;
    fl->retry.log = cycle->log;
    fl->retry.cancelable = 1;

    cl->follower = fl;

    ngx_http_claw_follow_start(fl);

    return NGX_OK;
}


void
ngx_http_claw_cluster_exit_worker(ngx_http_claw_cluster_t *cl)
{
    ngx_http_claw_follower_t  *fl;

    fl = cl->follower;

    if (fl) {
        if (fl->retry.timer_set) {
            ngx_del_timer(&fl->retry);
        }

        cl->follower = NULL;
    }

    ngx_http_claw_redis_free(&cl->follow);
    ngx_http_claw_redis_free(&cl->cmd);

    if (fl && fl->pool) {
        ngx_destroy_pool(fl->pool);
    }
}


/* --- the follower ------------------------------------------------------ */


static void
ngx_http_claw_follow_start(ngx_http_claw_follower_t *fl)
{
    ngx_str_t                 args[2];
    ngx_http_claw_cluster_t  *cl;

    cl = fl->cl;

    if (ngx_exiting || ngx_terminate || cl->follower == NULL
        || ngx_http_claw_tables_retired(cl->tables))
    {
        return;
    }

    /* a batch still on the journal's thread uses the step's memory */

    if (((ngx_http_claw_applier_t *) cl->applier)->batch) {
        ngx_add_timer(&fl->retry, cl->retry);
        return;
    }

    if (fl->pool) {
        ngx_destroy_pool(fl->pool);
        fl->pool = NULL;
    }

    fl->pool = ngx_create_pool(4096, cl->log);
    if (fl->pool == NULL) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    ngx_str_set(&args[0], "GET");

    if (ngx_http_claw_cluster_key(fl->pool, cl, "epoch", NULL, &args[1])
        != NGX_OK
        || ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_follow_epoch,
                                       fl, cl->redis.timeout, 2, args)
           != NGX_OK)
    {
        ngx_http_claw_follow_down(fl, NULL);
    }
}


static void
ngx_http_claw_follow_retry(ngx_event_t *ev)
{
    ngx_http_claw_follow_start(ev->data);
}


static void
ngx_http_claw_follow_epoch(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_follower_t  *fl = data;

    uint64_t                     ms, seq;
    ngx_str_t                    args[6];
    ngx_http_claw_cluster_t     *cl;
    ngx_http_claw_cluster_sh_t  *sh;
    u_char                       epoch[NGX_HTTP_CLAW_EPOCH_LEN];
    size_t                       epoch_len;

    cl = fl->cl;
    sh = cl->sh;

    if (reply == NULL || reply->type == NGX_HTTP_CLAW_RESP_ERROR) {
        ngx_http_claw_follow_down(fl, reply ? "GET of the epoch failed"
                                            : NULL);
        return;
    }

    sh->contact = ngx_time();

    ngx_http_claw_cluster_get_last(sh, &ms, &seq, epoch, &epoch_len);

    if (reply->type != NGX_HTTP_CLAW_RESP_STRING
        || reply->len == 0 || reply->len > NGX_HTTP_CLAW_EPOCH_LEN)
    {
        /* no registry on the server: this node keeps serving its own */

        if (epoch_len && !fl->alerted) {
            ngx_log_error(NGX_LOG_ALERT, cl->log, 0,
                          "claw cluster: the server \"%V\" holds no "
                          "registry any more (its data was lost?): this "
                          "node keeps serving the registry it has and "
                          "refuses changes until one is imported",
                          &cl->redis.url);
            fl->alerted = 1;
        }

        ngx_http_claw_follow_state(fl, epoch_len ? NGX_HTTP_CLAW_CLUSTER_LOST
                                                 : NGX_HTTP_CLAW_CLUSTER_EMPTY);

        ngx_add_timer(&fl->retry, cl->retry);
        return;
    }

    fl->alerted = 0;
    ngx_memcpy(fl->epoch, reply->str, reply->len);
    fl->epoch_len = reply->len;

    if (epoch_len != fl->epoch_len
        || ngx_memcmp(epoch, fl->epoch, epoch_len) != 0)
    {
        ngx_http_claw_follow_snapshot(fl);
        return;
    }

    /* the same registry: from the last entry applied, if the log has it */

    ngx_str_set(&args[0], "XRANGE");
    ngx_str_set(&args[2], "-");
    ngx_str_set(&args[3], "+");
    ngx_str_set(&args[4], "COUNT");
    ngx_str_set(&args[5], "1");

    if (ngx_http_claw_cluster_key(fl->pool, cl, "log", NULL, &args[1])
        != NGX_OK
        || ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_follow_first,
                                       fl, cl->redis.timeout, 6, args)
           != NGX_OK)
    {
        ngx_http_claw_follow_down(fl, NULL);
    }
}


static void
ngx_http_claw_follow_first(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_follower_t  *fl = data;

    uint64_t                     ms, seq, fms, fseq;
    size_t                       epoch_len;
    ngx_str_t                    args[6];
    ngx_http_claw_resp_t        *id;
    u_char                       epoch[NGX_HTTP_CLAW_EPOCH_LEN];

    if (reply == NULL || reply->type != NGX_HTTP_CLAW_RESP_ARRAY) {
        ngx_http_claw_follow_down(fl, reply ? "XRANGE failed" : NULL);
        return;
    }

    ngx_http_claw_cluster_get_last(fl->cl->sh, &ms, &seq, epoch, &epoch_len);

    if (reply->nelts) {
        id = &reply->elts[0];

        if (id->type != NGX_HTTP_CLAW_RESP_ARRAY || id->nelts != 2
            || ngx_http_claw_cluster_id(id->elts[0].str, id->elts[0].len,
                                        &fms, &fseq)
               != NGX_OK)
        {
            ngx_http_claw_follow_down(fl, "malformed XRANGE reply");
            return;
        }

        /* entries after the last applied may have been trimmed */

        if (fms > ms || (fms == ms && fseq > seq + 1)) {
            ngx_log_error(NGX_LOG_WARN, fl->cl->log, 0,
                          "claw cluster: the log no longer holds the "
                          "entries after %uL-%uL: reading every record",
                          ms, seq);
            ngx_http_claw_follow_snapshot(fl);
            return;
        }
    }

    /* and whether it ends before it: restored from an older save? */

    ngx_str_set(&args[0], "XREVRANGE");
    ngx_str_set(&args[2], "+");
    ngx_str_set(&args[3], "-");
    ngx_str_set(&args[4], "COUNT");
    ngx_str_set(&args[5], "1");

    if (ngx_http_claw_cluster_key(fl->pool, fl->cl, "log", NULL, &args[1])
        != NGX_OK
        || ngx_http_claw_redis_command(&fl->cl->cmd,
                                       ngx_http_claw_follow_last, fl,
                                       fl->cl->redis.timeout, 6, args)
           != NGX_OK)
    {
        ngx_http_claw_follow_down(fl, NULL);
    }
}


static void
ngx_http_claw_follow_last(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_follower_t  *fl = data;

    uint64_t                     ms, seq, lms, lseq;
    size_t                       epoch_len;
    ngx_http_claw_resp_t        *id;
    ngx_http_claw_cluster_t     *cl;
    u_char                       epoch[NGX_HTTP_CLAW_EPOCH_LEN];

    cl = fl->cl;

    if (reply == NULL || reply->type != NGX_HTTP_CLAW_RESP_ARRAY) {
        ngx_http_claw_follow_down(fl, reply ? "XREVRANGE failed" : NULL);
        return;
    }

    ngx_http_claw_cluster_get_last(cl->sh, &ms, &seq, epoch, &epoch_len);

    lms = 0;
    lseq = 0;

    if (reply->nelts) {
        id = &reply->elts[0];

        if (id->type != NGX_HTTP_CLAW_RESP_ARRAY || id->nelts != 2
            || ngx_http_claw_cluster_id(id->elts[0].str, id->elts[0].len,
                                        &lms, &lseq)
               != NGX_OK)
        {
            ngx_http_claw_follow_down(fl, "malformed XREVRANGE reply");
            return;
        }
    }

    if (lms < ms || (lms == ms && lseq < seq)) {

        /*
         * This node applied changes the server no longer holds: it
         * stays as it is, whatever the server is told from now on,
         * until a registry is imported again (a new epoch).
         */

        if (!cl->sh->behind) {
            ngx_log_error(NGX_LOG_ALERT, cl->log, 0,
                          "claw cluster: the log of the server \"%V\" "
                          "ends at %uL-%uL, before the last change this "
                          "node applied, %uL-%uL (restored from an older "
                          "save?): this node keeps serving the registry it "
                          "has and refuses changes until one is imported",
                          &cl->redis.url, lms, lseq, ms, seq);
            cl->sh->behind = 1;
        }
    }

    if (cl->sh->behind) {
        ngx_http_claw_follow_state(fl, NGX_HTTP_CLAW_CLUSTER_LOST);
        ngx_add_timer(&fl->retry, cl->retry);
        return;
    }

    ngx_http_claw_follow_state(fl, NGX_HTTP_CLAW_CLUSTER_UP);
    ngx_http_claw_follow_read(fl);
}


/* every record, then removal of the tenants the server does not hold */

static void
ngx_http_claw_follow_snapshot(ngx_http_claw_follower_t *fl)
{
    ngx_str_t                 args[5];
    ngx_http_claw_cluster_t  *cl;

    cl = fl->cl;

    ngx_http_claw_follow_state(fl, NGX_HTTP_CLAW_CLUSTER_SYNC);

    ngx_rbtree_init(&fl->seen, &fl->sentinel, ngx_str_rbtree_insert_value);
    ngx_str_set(&fl->cursor, "0");
    fl->deleting = 0;

    fl->deferred = ngx_array_create(fl->pool, 4,
                                    sizeof(ngx_http_claw_entry_rec_t));
    if (fl->deferred == NULL) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    ngx_str_set(&args[0], "XREVRANGE");
    ngx_str_set(&args[2], "+");
    ngx_str_set(&args[3], "-");
    ngx_str_set(&args[4], "COUNT");

    if (ngx_http_claw_cluster_key(fl->pool, cl, "log", NULL, &args[1])
        != NGX_OK)
    {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    {
        ngx_str_t  all[6];

        ngx_memcpy(all, args, sizeof(args));
        ngx_str_set(&all[5], "1");

        if (ngx_http_claw_redis_command(&cl->cmd,
                                        ngx_http_claw_follow_snap_last, fl,
                                        cl->redis.timeout, 6, all)
            != NGX_OK)
        {
            ngx_http_claw_follow_down(fl, NULL);
        }
    }
}


static void
ngx_http_claw_follow_snap_last(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_follower_t  *fl = data;

    ngx_http_claw_resp_t  *id;

    if (reply == NULL || reply->type != NGX_HTTP_CLAW_RESP_ARRAY) {
        ngx_http_claw_follow_down(fl, reply ? "XREVRANGE failed" : NULL);
        return;
    }

    fl->snap_ms = 0;
    fl->snap_seq = 0;

    if (reply->nelts) {
        id = &reply->elts[0];

        if (id->type != NGX_HTTP_CLAW_RESP_ARRAY || id->nelts != 2
            || ngx_http_claw_cluster_id(id->elts[0].str, id->elts[0].len,
                                        &fl->snap_ms, &fl->snap_seq)
               != NGX_OK)
        {
            ngx_http_claw_follow_down(fl, "malformed XREVRANGE reply");
            return;
        }
    }

    ngx_http_claw_follow_scan(fl);
}


static void
ngx_http_claw_follow_scan(ngx_http_claw_follower_t *fl)
{
    u_char                   *p;
    ngx_str_t                 args[6], match;
    ngx_http_claw_cluster_t  *cl;

    cl = fl->cl;

    p = ngx_pnalloc(fl->pool, cl->prefix.len + 3);
    if (p == NULL) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    match.data = p;
    match.len = ngx_sprintf(p, "%Vt:*", &cl->prefix) - p;

    ngx_str_set(&args[0], "SCAN");
    args[1] = fl->cursor;
    ngx_str_set(&args[2], "MATCH");
    args[3] = match;
    ngx_str_set(&args[4], "COUNT");
    ngx_str_set(&args[5], "500");

    if (ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_follow_scanned,
                                    fl, cl->redis.timeout, 6, args)
        != NGX_OK)
    {
        ngx_http_claw_follow_down(fl, NULL);
    }
}


static void
ngx_http_claw_follow_scanned(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_follower_t  *fl = data;

    ngx_str_t                *args;
    ngx_uint_t                i;
    ngx_http_claw_resp_t     *keys;
    ngx_http_claw_cluster_t  *cl;

    cl = fl->cl;

    if (reply == NULL || reply->type != NGX_HTTP_CLAW_RESP_ARRAY
        || reply->nelts != 2
        || reply->elts[0].type != NGX_HTTP_CLAW_RESP_STRING
        || reply->elts[1].type != NGX_HTTP_CLAW_RESP_ARRAY)
    {
        ngx_http_claw_follow_down(fl, reply ? "SCAN failed" : NULL);
        return;
    }

    fl->cursor.len = reply->elts[0].len;
    fl->cursor.data = ngx_pnalloc(fl->pool, reply->elts[0].len);
    if (fl->cursor.data == NULL) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    ngx_memcpy(fl->cursor.data, reply->elts[0].str, reply->elts[0].len);

    keys = &reply->elts[1];

    if (keys->nelts == 0) {
        ngx_http_claw_follow_scan_next(fl);
        return;
    }

    args = ngx_palloc(fl->pool, (keys->nelts + 1) * sizeof(ngx_str_t));
    if (args == NULL) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    ngx_str_set(&args[0], "MGET");

    fl->entries = ngx_array_create(fl->pool, keys->nelts,
                                   sizeof(ngx_http_claw_entry_rec_t));
    if (fl->entries == NULL) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    for (i = 0; i < keys->nelts; i++) {
        if (keys->elts[i].type != NGX_HTTP_CLAW_RESP_STRING) {
            ngx_http_claw_follow_down(fl, "malformed SCAN reply");
            return;
        }

        args[i + 1].len = keys->elts[i].len;
        args[i + 1].data = ngx_pnalloc(fl->pool, keys->elts[i].len);
        if (args[i + 1].data == NULL) {
            ngx_http_claw_follow_down(fl, "out of memory");
            return;
        }

        ngx_memcpy(args[i + 1].data, keys->elts[i].str, keys->elts[i].len);
    }

    /* the keys are remembered for the values' messages */

    fl->next = 0;
    fl->entries->nelts = 0;

    for (i = 0; i < keys->nelts; i++) {
        if (ngx_http_claw_follow_push(fl, &args[i + 1], NULL, NULL, 0)
            == NULL)
        {
            ngx_http_claw_follow_down(fl, "out of memory");
            return;
        }
    }

    if (ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_follow_records,
                                    fl, cl->redis.timeout, keys->nelts + 1,
                                    args)
        != NGX_OK)
    {
        ngx_http_claw_follow_down(fl, NULL);
    }
}


/* the values of a SCAN's keys (NULL: there were none) */

static void
ngx_http_claw_follow_records(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_follower_t  *fl = data;

    u_char                     *p;
    ngx_uint_t                  i, n;
    ngx_str_node_t             *sn;
    ngx_http_claw_resp_t       *v;
    ngx_http_claw_cluster_t    *cl;
    ngx_http_claw_entry_rec_t  *e;

    cl = fl->cl;

    if (reply == NULL || reply->type != NGX_HTTP_CLAW_RESP_ARRAY
        || reply->nelts != fl->entries->nelts)
    {
        ngx_http_claw_follow_down(fl, reply ? "MGET failed" : NULL);
        return;
    }

    e = fl->entries->elts;
    n = 0;

    for (i = 0; i < reply->nelts; i++) {
        v = &reply->elts[i];

        if (v->type == NGX_HTTP_CLAW_RESP_NIL) {
            continue;                   /* deleted meanwhile: in the log */
        }

        /* "<prefix>t:<id>", as SCAN was asked for; checked all the same */

        if (e[i].item.key.len <= cl->prefix.len + 2
            || ngx_memcmp(e[i].item.key.data, cl->prefix.data,
                          cl->prefix.len) != 0
            || ngx_memcmp(e[i].item.key.data + cl->prefix.len, "t:", 2) != 0
            || !ngx_http_claw_valid_id(e[i].item.key.data + cl->prefix.len
                                       + 2,
                                       e[i].item.key.len - cl->prefix.len
                                       - 2))
        {
            ngx_log_error(NGX_LOG_ERR, cl->log, 0,
                          "claw cluster: \"%V\" skipped: not a tenant's "
                          "key", &e[i].item.key);
            (void) ngx_atomic_fetch_add(&cl->sh->skipped, 1);
            continue;
        }

        /* the record of a tenant is "+ <line>", seen by its id */

        sn = ngx_pcalloc(fl->pool, sizeof(ngx_str_node_t));
        if (sn == NULL) {
            ngx_http_claw_follow_down(fl, "out of memory");
            return;
        }

        sn->str.len = e[i].item.key.len - cl->prefix.len - 2;
        sn->str.data = e[i].item.key.data + cl->prefix.len + 2;
        sn->node.key = ngx_crc32_short(sn->str.data, sn->str.len);
        ngx_rbtree_insert(&fl->seen, &sn->node);

        if (v->type != NGX_HTTP_CLAW_RESP_STRING
            || v->len < sn->str.len + 1
            || ngx_memcmp(v->str, sn->str.data, sn->str.len) != 0
            || (v->str[sn->str.len] != ' ' && v->str[sn->str.len] != '\t'))
        {
            ngx_log_error(NGX_LOG_ERR, cl->log, 0,
                          "claw cluster: \"%V\" skipped: not the registry "
                          "line of tenant \"%V\"", &e[i].item.key,
                          &sn->str);
            (void) ngx_atomic_fetch_add(&cl->sh->skipped, 1);
            continue;
        }

        p = ngx_pnalloc(fl->pool, v->len + 2);
        if (p == NULL) {
            ngx_http_claw_follow_down(fl, "out of memory");
            return;
        }

        p[0] = '+';
        p[1] = ' ';
        ngx_memcpy(p + 2, v->str, v->len);

        e[n].item.key = e[i].item.key;
        e[n].item.rec.data = p;
        e[n].item.rec.len = v->len + 2;
        e[n].item.defer = 1;
        e[n].ms = 0;
        e[n].seq = 0;
        n++;
    }

    fl->entries->nelts = n;
    fl->next = 0;

    ngx_http_claw_follow_apply(fl);
}


static void
ngx_http_claw_follow_scan_next(ngx_http_claw_follower_t *fl)
{
    if (fl->cursor.len == 1 && fl->cursor.data[0] == '0') {
        ngx_http_claw_follow_deletes(fl);
        return;
    }

    ngx_http_claw_follow_scan(fl);
}


static void
ngx_http_claw_follow_deletes(ngx_http_claw_follower_t *fl)
{
    u_char                   *id;
    ngx_str_t                 name, key;
    ngx_uint_t                i, n;
    ngx_http_claw_tconf_t   **list;
    ngx_http_claw_cluster_t  *cl;

    cl = fl->cl;

    list = ngx_http_claw_tables_list(cl->tables, fl->pool, &n);
    if (list == NULL && n) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    fl->entries = ngx_array_create(fl->pool, n ? n : 1,
                                   sizeof(ngx_http_claw_entry_rec_t));
    if (fl->entries == NULL) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    for (i = 0; i < n; i++) {
        id = ngx_http_claw_tconf_id(list[i]);
        name.data = id;
        name.len = list[i]->id_len;

        if (ngx_str_rbtree_lookup(&fl->seen, &name,
                                  ngx_crc32_short(name.data, name.len))
            != NULL)
        {
            continue;
        }

        if (ngx_http_claw_cluster_key(fl->pool, cl, "t:", &name, &key)
            != NGX_OK
            || ngx_http_claw_follow_push(fl, &key, "- ", id, name.len)
               == NULL)
        {
            ngx_http_claw_follow_down(fl, "out of memory");
            return;
        }
    }

    fl->deleting = 1;
    fl->next = 0;

    ngx_http_claw_follow_apply(fl);
}


/* the log after the last entry applied, waiting for more at its end */

static void
ngx_http_claw_follow_read(ngx_http_claw_follower_t *fl)
{
    u_char                      *p;
    uint64_t                     ms, seq;
    size_t                       epoch_len;
    ngx_str_t                    args[9];
    ngx_http_claw_cluster_t     *cl;
    u_char                       epoch[NGX_HTTP_CLAW_EPOCH_LEN];

    cl = fl->cl;

    if (ngx_exiting || ngx_terminate || cl->follower == NULL) {
        return;
    }

    ngx_http_claw_cluster_get_last(cl->sh, &ms, &seq, epoch, &epoch_len);

    p = ngx_pnalloc(fl->pool, 2 * NGX_INT64_LEN + 2);
    if (p == NULL) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    ngx_str_set(&args[0], "XREAD");
    ngx_str_set(&args[1], "COUNT");
    ngx_str_set(&args[2], "100");
    ngx_str_set(&args[3], "BLOCK");
    ngx_str_set(&args[4], "1000");
    ngx_str_set(&args[5], "STREAMS");
    args[7].data = p;
    args[7].len = ngx_sprintf(p, "%uL-%uL", ms, seq) - p;

    if (ngx_http_claw_cluster_key(fl->pool, cl, "log", NULL, &args[6])
        != NGX_OK
        || ngx_http_claw_redis_command(&cl->follow,
                                       ngx_http_claw_follow_entries, fl,
                                       NGX_HTTP_CLAW_CLUSTER_BLOCK
                                       + cl->redis.timeout, 8, args)
           != NGX_OK)
    {
        ngx_http_claw_follow_down(fl, NULL);
    }
}


static void
ngx_http_claw_follow_entries(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_follower_t  *fl = data;

    u_char                     *p;
    uint64_t                    ms, seq;
    ngx_str_t                   key;
    ngx_uint_t                  i, j;
    ngx_http_claw_resp_t       *list, *entry, *fields;
    ngx_http_claw_cluster_t    *cl;
    ngx_http_claw_entry_rec_t  *e;

    cl = fl->cl;

    if (reply == NULL || reply->type == NGX_HTTP_CLAW_RESP_ERROR) {
        ngx_http_claw_follow_down(fl, reply ? "XREAD failed" : NULL);
        return;
    }

    cl->sh->contact = ngx_time();

    if (reply->type == NGX_HTTP_CLAW_RESP_NIL) {

        /* nothing new for a second: the epoch is checked again */

        ngx_http_claw_follow_start(fl);
        return;
    }

    if (reply->type != NGX_HTTP_CLAW_RESP_ARRAY || reply->nelts != 1
        || reply->elts[0].nelts != 2
        || reply->elts[0].elts[1].type != NGX_HTTP_CLAW_RESP_ARRAY)
    {
        ngx_http_claw_follow_down(fl, "malformed XREAD reply");
        return;
    }

    if (fl->pool) {
        ngx_destroy_pool(fl->pool);
    }

    fl->pool = ngx_create_pool(4096, cl->log);
    if (fl->pool == NULL) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    list = &reply->elts[0].elts[1];

    fl->entries = ngx_array_create(fl->pool, list->nelts + 1,
                                   sizeof(ngx_http_claw_entry_rec_t));
    if (fl->entries == NULL) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    for (i = 0; i < list->nelts; i++) {
        entry = &list->elts[i];

        if (entry->type != NGX_HTTP_CLAW_RESP_ARRAY || entry->nelts != 2
            || ngx_http_claw_cluster_id(entry->elts[0].str,
                                        entry->elts[0].len, &ms, &seq)
               != NGX_OK)
        {
            ngx_http_claw_follow_down(fl, "malformed XREAD entry");
            return;
        }

        p = ngx_pnalloc(fl->pool, cl->prefix.len + 4 + entry->elts[0].len);
        if (p == NULL) {
            ngx_http_claw_follow_down(fl, "out of memory");
            return;
        }

        key.data = p;
        key.len = ngx_sprintf(p, "%Vlog %*s", &cl->prefix,
                              entry->elts[0].len, entry->elts[0].str) - p;

        fields = &entry->elts[1];

        for (j = 0; j + 1 < fields->nelts; j += 2) {
            if (ngx_http_claw_resp_is(&fields->elts[j], "r")
                && fields->elts[j + 1].type == NGX_HTTP_CLAW_RESP_STRING)
            {
                break;
            }
        }

        if (fields->type != NGX_HTTP_CLAW_RESP_ARRAY
            || j + 1 >= fields->nelts)
        {
            /* applied as nothing, so that the entries after it follow */
            e = ngx_http_claw_follow_push(fl, &key, NULL, (u_char *) "", 0);

        } else {
            e = ngx_http_claw_follow_push(fl, &key, NULL,
                                          fields->elts[j + 1].str,
                                          fields->elts[j + 1].len);
        }

        if (e == NULL) {
            ngx_http_claw_follow_down(fl, "out of memory");
            return;
        }

        e->ms = ms;
        e->seq = seq;
    }

    fl->next = 0;
    fl->deleting = 0;
    fl->snapshot = 0;

    ngx_http_claw_follow_apply(fl);
}


static void
ngx_http_claw_follow_apply(ngx_http_claw_follower_t *fl)
{
    ngx_uint_t                   i, n;
    ngx_http_claw_cluster_t     *cl;
    ngx_http_claw_entry_rec_t   *e;
    ngx_http_claw_cluster_sh_t  *sh;

    cl = fl->cl;
    sh = cl->sh;

    if (cl->follower == NULL) {
        return;
    }

    if (fl->next == fl->entries->nelts) {

        if (sh->state == NGX_HTTP_CLAW_CLUSTER_SYNC) {
            if (!fl->deleting) {
                ngx_http_claw_follow_scan_next(fl);
                return;
            }

            /*
             * records whose domain was another tenant's: that tenant is
             * gone now, or gave it up later in the read
             */

            if (fl->deferred->nelts) {

                /*
                 * again while a pass makes progress (one record may wait
                 * for another); the last pass says what it could not do
                 */

                n = (fl->deleting == 1
                     || fl->deferred->nelts < fl->entries->nelts);

                fl->deleting = 2;
                fl->entries = fl->deferred;
                fl->next = 0;

                fl->deferred = ngx_array_create(fl->pool,
                                                fl->entries->nelts,
                                      sizeof(ngx_http_claw_entry_rec_t));
                if (fl->deferred == NULL) {
                    ngx_http_claw_follow_down(fl, "out of memory");
                    return;
                }

                e = fl->entries->elts;

                for (i = 0; i < fl->entries->nelts; i++) {
                    e[i].item.defer = n;
                }

                ngx_http_claw_follow_apply(fl);
                return;
            }

            /* the whole registry is here: the log is followed from now */

            ngx_http_claw_cluster_set_last(sh, fl->snap_ms, fl->snap_seq,
                                           fl->epoch, fl->epoch_len);
            sh->behind = 0;

            ngx_log_error(NGX_LOG_NOTICE, cl->log, 0,
                          "claw cluster: the registry of \"%V\" read "
                          "whole; following its log from %uL-%uL",
                          &cl->redis.url, fl->snap_ms, fl->snap_seq);

            ngx_http_claw_follow_state(fl, NGX_HTTP_CLAW_CLUSTER_UP);
        }

        ngx_http_claw_follow_read(fl);
        return;
    }

    /* the rest, in one batch as far as the applier takes it */

    e = (ngx_http_claw_entry_rec_t *) fl->entries->elts + fl->next;
    n = fl->entries->nelts - fl->next;

    fl->items = ngx_palloc(fl->pool, n * sizeof(ngx_http_claw_apply_item_t));
    if (fl->items == NULL) {
        ngx_http_claw_follow_down(fl, "out of memory");
        return;
    }

    for (i = 0; i < n; i++) {
        fl->items[i] = e[i].item;

        if (e[i].item.rec.len == 0) {

            /* no record in it: the batch ends before it, or is it */

            if (i == 0) {
                ngx_log_error(NGX_LOG_ERR, cl->log, 0,
                              "claw cluster: \"%V\" skipped: no record in "
                              "it", &e[i].item.key);
                fl->items[0].rc = NGX_DECLINED;
                ngx_http_claw_follow_applied(fl, 1, NGX_OK);
                return;
            }

            n = i;
            break;
        }
    }

    if (cl->apply(cl->applier, fl->items, n, ngx_http_claw_follow_applied, fl)
        != NGX_OK)
    {
        ngx_http_claw_follow_down(fl, "out of memory");
    }
}


static void
ngx_http_claw_follow_applied(void *data, ngx_uint_t n, ngx_int_t rc)
{
    ngx_http_claw_follower_t  *fl = data;

    ngx_uint_t                   i;
    ngx_msec_int_t               lag;
    ngx_http_claw_cluster_t     *cl;
    ngx_http_claw_entry_rec_t   *e, *d;
    ngx_http_claw_cluster_sh_t  *sh;

    cl = fl->cl;
    sh = cl->sh;

    if (cl->follower == NULL) {
        return;
    }

    if (rc == NGX_AGAIN) {

        /*
         * the journal could not take them: later, from the last entry
         * applied (or the whole registry anew)
         */

        ngx_add_timer(&fl->retry, cl->retry);
        return;
    }

    e = (ngx_http_claw_entry_rec_t *) fl->entries->elts + fl->next;

    for (i = 0; i < n; i++) {
        if (fl->items[i].rc == NGX_BUSY) {
            d = ngx_array_push(fl->deferred);
            if (d == NULL) {
                ngx_http_claw_follow_down(fl, "out of memory");
                return;
            }

            *d = e[i];
            continue;
        }

        (void) ngx_atomic_fetch_add(fl->items[i].rc == NGX_OK
                                    ? &sh->applied : &sh->skipped, 1);
    }

    if (n && e[n - 1].ms) {
        lag = (ngx_msec_int_t) (ngx_time() * 1000 + ngx_cached_time->msec
                                - e[n - 1].ms);
        sh->lag = lag > 0 ? lag : 0;

        ngx_http_claw_cluster_set_last(sh, e[n - 1].ms, e[n - 1].seq,
                                       fl->epoch, fl->epoch_len);
    }

    fl->next += n;

    ngx_http_claw_follow_apply(fl);
}


static void
ngx_http_claw_follow_down(ngx_http_claw_follower_t *fl, const char *why)
{
    ngx_http_claw_cluster_t     *cl;
    ngx_http_claw_cluster_sh_t  *sh;

    cl = fl->cl;
    sh = cl->sh;

    if (cl->follower == NULL) {
        return;                         /* exiting */
    }

    if (why == NULL) {
        why = (char *) (cl->follow.error[0] && !cl->cmd.error[0]
                        ? cl->follow.error : cl->cmd.error);
    }

    /* once an outage, and again when its reason changes */

    if (sh->state != NGX_HTTP_CLAW_CLUSTER_DOWN || !fl->told
        || ngx_strncmp(sh->error, why, sizeof(sh->error) - 1) != 0)
    {
        fl->told = 1;

        ngx_log_error(NGX_LOG_ERR, cl->log, 0,
                      "claw cluster: the server \"%V\" failed: %s; this "
                      "node serves the registry it has, and tries again "
                      "every %M ms", &cl->redis.url, why, cl->retry);
    }

    (void) ngx_cpystrn(sh->error, (u_char *) why, sizeof(sh->error));

    ngx_http_claw_follow_state(fl, NGX_HTTP_CLAW_CLUSTER_DOWN);

    ngx_http_claw_redis_close(&cl->follow, NULL);
    ngx_http_claw_redis_close(&cl->cmd, NULL);

    if (!fl->retry.timer_set && cl->follower) {
        ngx_add_timer(&fl->retry, cl->retry);
    }
}


static void
ngx_http_claw_follow_state(ngx_http_claw_follower_t *fl, ngx_uint_t state)
{
    ngx_http_claw_cluster_sh_t  *sh;

    sh = fl->cl->sh;

    if (sh->state == state) {
        return;
    }

    if (state == NGX_HTTP_CLAW_CLUSTER_UP && sh->state != NGX_HTTP_CLAW_CLUSTER_SYNC) {
        ngx_log_error(NGX_LOG_NOTICE, fl->cl->log, 0,
                      "claw cluster: following \"%V\"", &fl->cl->redis.url);
    }

    sh->state = state;
}


static ngx_http_claw_entry_rec_t *
ngx_http_claw_follow_push(ngx_http_claw_follower_t *fl, ngx_str_t *key,
    const char *op, const u_char *data, size_t len)
{
    u_char                     *p;
    size_t                      size;
    ngx_http_claw_entry_rec_t  *e;

    e = ngx_array_push(fl->entries);
    if (e == NULL) {
        return NULL;
    }

    ngx_memzero(e, sizeof(ngx_http_claw_entry_rec_t));

    e->item.key = *key;

    if (data == NULL) {
        return e;
    }

    size = (op ? ngx_strlen(op) : 0) + len;

    p = ngx_pnalloc(fl->pool, size ? size : 1);
    if (p == NULL) {
        return NULL;
    }

    e->item.rec.data = p;

    if (op) {
        p = ngx_cpymem(p, op, ngx_strlen(op));
    }

    ngx_memcpy(p, data, len);

    e->item.rec.len = size;

    return e;
}


/* --- the last entry applied, read by every worker ----------------------- */


/*
 * Under the cluster zone's lock, which the master takes back from a
 * worker that dies holding it: a reader never waits for a dead writer,
 * and two followers of a reload never mix their entries.
 */

static void
ngx_http_claw_cluster_set_last(ngx_http_claw_cluster_sh_t *sh, uint64_t ms,
    uint64_t seq, u_char *epoch, size_t epoch_len)
{
    ngx_shmtx_lock(&sh->shpool->mutex);

    sh->last_ms = ms;
    sh->last_seq = seq;
    ngx_memcpy(sh->epoch, epoch, epoch_len);
    sh->epoch_len = epoch_len;

    ngx_shmtx_unlock(&sh->shpool->mutex);
}


static void
ngx_http_claw_cluster_get_last(ngx_http_claw_cluster_sh_t *sh, uint64_t *ms,
    uint64_t *seq, u_char *epoch, size_t *epoch_len)
{
    ngx_shmtx_lock(&sh->shpool->mutex);

    *ms = sh->last_ms;
    *seq = sh->last_seq;
    *epoch_len = sh->epoch_len;
    ngx_memcpy(epoch, sh->epoch, NGX_HTTP_CLAW_EPOCH_LEN);

    ngx_shmtx_unlock(&sh->shpool->mutex);
}


/* a stream entry's id, "<ms>-<seq>" */

static ngx_int_t
ngx_http_claw_cluster_id(const u_char *p, size_t len, uint64_t *ms,
    uint64_t *seq)
{
    const u_char  *dash;
    int64_t        a, b;

    if (p == NULL) {
        return NGX_ERROR;
    }

    dash = ngx_strlchr((u_char *) p, (u_char *) p + len, '-');

    if (dash == NULL
        || ngx_http_claw_parse_number(p, dash - p, INT64_MAX, &a)
           != 0
        || ngx_http_claw_parse_number(dash + 1, p + len - dash - 1,
                                      INT64_MAX, &b)
           != 0)
    {
        return NGX_ERROR;
    }

    *ms = a;
    *seq = b;

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_cluster_key(ngx_pool_t *pool, ngx_http_claw_cluster_t *cl,
    const char *kind, ngx_str_t *name, ngx_str_t *key)
{
    u_char  *p;
    size_t   len;

    len = cl->prefix.len + ngx_strlen(kind) + (name ? name->len : 0);

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    key->data = p;
    key->len = len;

    p = ngx_cpymem(p, cl->prefix.data, cl->prefix.len);
    p = ngx_cpymem(p, kind, ngx_strlen(kind));

    if (name) {
        ngx_memcpy(p, name->data, name->len);
    }

    return NGX_OK;
}


/* --- admin changes ------------------------------------------------------ */


/* NULL when changes can be made, else why not */

const char *
ngx_http_claw_cluster_writable(ngx_http_claw_cluster_t *cl)
{
    if (cl->sh->behind) {
        return "the cluster server's log ends before changes this node "
               "applied (restored from an older save?): delete the "
               "registry's keys on the server (epoch, log, t:*, d:* under "
               "the prefix), then import the newest node's registry with "
               "POST /cluster/import";
    }

    switch (cl->sh->state) {

    case NGX_HTTP_CLAW_CLUSTER_UP:
        return NULL;

    case NGX_HTTP_CLAW_CLUSTER_SYNC:
        return "this node is reading the cluster's registry; try again";

    case NGX_HTTP_CLAW_CLUSTER_EMPTY:
        return "the cluster server holds no registry yet: import one with "
               "POST /cluster/import";

    case NGX_HTTP_CLAW_CLUSTER_LOST:
        return "the cluster server no longer holds the registry (its data "
               "was lost?): import one with POST /cluster/import";

    default:
        return "the cluster server cannot be reached; nothing changed";
    }
}


ngx_int_t
ngx_http_claw_cluster_get(ngx_http_claw_cluster_op_t *op)
{
    ngx_str_t  args[2];

    ngx_str_set(&args[0], "GET");

    if (ngx_http_claw_cluster_key(op->pool, op->cluster, "t:", &op->id,
                                  &args[1])
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_claw_redis_command(&op->cluster->cmd,
                                    ngx_http_claw_cluster_got, op,
                                    op->cluster->redis.timeout, 2, args)
        != NGX_OK)
    {
        ngx_http_claw_cluster_fail(op, NULL, "GET");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_claw_cluster_got(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_cluster_op_t  *op = data;

    if (reply == NULL || (reply->type != NGX_HTTP_CLAW_RESP_STRING
                          && reply->type != NGX_HTTP_CLAW_RESP_NIL))
    {
        ngx_http_claw_cluster_fail(op, reply, "GET");
        op->handler(op);
        return;
    }

    op->rc = NGX_OK;
    op->found = (reply->type == NGX_HTTP_CLAW_RESP_STRING);
    op->expect.len = 0;

    if (op->found) {
        op->expect.data = ngx_pnalloc(op->pool, reply->len + 1);
        if (op->expect.data == NULL) {
            ngx_http_claw_cluster_fail(op, NULL, "GET");
            op->handler(op);
            return;
        }

        ngx_memcpy(op->expect.data, reply->str, reply->len);
        op->expect.len = reply->len;
    }

    op->handler(op);
}


ngx_int_t
ngx_http_claw_cluster_write(ngx_http_claw_cluster_op_t *op)
{
    u_char                   *p;
    uint64_t                  ms, seq;
    ngx_str_t                *args;
    ngx_uint_t                n, i;
    ngx_http_claw_cluster_t  *cl;
    u_char                    epoch[NGX_HTTP_CLAW_EPOCH_LEN];
    size_t                    epoch_len;

    cl = op->cluster;

    n = 3 + 1 + 3 + 8 + op->nold + op->nnew;

    args = ngx_palloc(op->pool, n * sizeof(ngx_str_t));
    p = ngx_pnalloc(op->pool, NGX_INT_T_LEN * 2 + NGX_HTTP_CLAW_EPOCH_LEN
                              + 2 + op->record.len);
    if (args == NULL || p == NULL) {
        goto nomem;
    }

    ngx_http_claw_cluster_get_last(cl->sh, &ms, &seq, epoch, &epoch_len);

    ngx_str_set(&args[0], "EVAL");
    args[1] = ngx_http_claw_cluster_script;
    ngx_str_set(&args[2], "3");

    if (ngx_http_claw_cluster_key(op->pool, cl, "t:", &op->id, &args[3])
        != NGX_OK
        || ngx_http_claw_cluster_key(op->pool, cl, "log", NULL, &args[4])
           != NGX_OK
        || ngx_http_claw_cluster_key(op->pool, cl, "epoch", NULL, &args[5])
           != NGX_OK
        || ngx_http_claw_cluster_key(op->pool, cl, "d:", NULL, &args[11])
           != NGX_OK)
    {
        goto nomem;
    }

    args[6].data = p;
    args[6].len = epoch_len;
    p = ngx_cpymem(p, epoch, epoch_len);

    args[7] = op->expect;
    args[8] = op->record;

    /* the log's record is the journal's: "+ <line>" or "- <id>" */

    args[9].data = p;

    if (op->record.len) {
        p = ngx_cpymem(p, "+ ", 2);
        p = ngx_cpymem(p, op->record.data, op->record.len);

    } else {
        p = ngx_cpymem(p, "- ", 2);
        p = ngx_cpymem(p, op->id.data, op->id.len);
    }

    args[9].len = p - args[9].data;

    args[10].data = p;
    p = ngx_sprintf(p, "%ui", cl->log_max);
    args[10].len = p - args[10].data;

    args[12] = op->id;

    args[13].data = p;
    p = ngx_sprintf(p, "%ui", op->nold);
    args[13].len = p - args[13].data;

    n = 14;

    for (i = 0; i < op->nold; i++) {
        args[n++] = op->old_domains[i];
    }

    for (i = 0; i < op->nnew; i++) {
        args[n++] = op->new_domains[i];
    }

    if (ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_cluster_written,
                                    op, cl->redis.timeout, n, args)
        != NGX_OK)
    {
        ngx_http_claw_cluster_fail(op, NULL, "EVAL");
        return NGX_ERROR;
    }

    return NGX_OK;

nomem:

    ngx_http_claw_cluster_fail(op, NULL, "out of memory before EVAL");
    return NGX_ERROR;
}


static void
ngx_http_claw_cluster_written(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_cluster_op_t  *op = data;

    ngx_http_claw_resp_t  *code;

    if (reply == NULL || reply->type != NGX_HTTP_CLAW_RESP_ARRAY
        || reply->nelts == 0
        || reply->elts[0].type != NGX_HTTP_CLAW_RESP_INTEGER)
    {
        ngx_http_claw_cluster_fail(op, reply, "the change's script");
        op->handler(op);
        return;
    }

    code = &reply->elts[0];

    if (code->integer == 0) {
        op->rc = NGX_BUSY;

    } else if (code->integer == -1 && reply->nelts == 3) {
        op->rc = NGX_DECLINED;
        op->domain.len = reply->elts[1].len;
        op->domain.data = ngx_pnalloc(op->pool, reply->elts[1].len + 1);
        op->owner.len = reply->elts[2].len;
        op->owner.data = ngx_pnalloc(op->pool, reply->elts[2].len + 1);

        if (op->domain.data == NULL || op->owner.data == NULL) {
            ngx_http_claw_cluster_fail(op, NULL, "the change's script");
            op->handler(op);
            return;
        }

        ngx_memcpy(op->domain.data, reply->elts[1].str, op->domain.len);
        ngx_memcpy(op->owner.data, reply->elts[2].str, op->owner.len);

    } else if (code->integer == 1 && reply->nelts == 3
               && ngx_http_claw_cluster_id(reply->elts[1].str,
                                           reply->elts[1].len, &op->ms,
                                           &op->seq)
                  == NGX_OK)
    {
        op->rc = NGX_OK;
        op->created = (reply->elts[2].integer == 1);

    } else {
        ngx_http_claw_cluster_fail(op, NULL, "the change's script");
    }

    op->handler(op);
}


/*
 * A change the server took is answered once this node applied it (or
 * after a bounded wait), so that the next request here sees it.
 */

void
ngx_http_claw_cluster_wait(ngx_http_claw_cluster_op_t *op)
{
    op->deadline = ngx_current_msec + NGX_HTTP_CLAW_CLUSTER_WAIT;

    op->wait.handler = ngx_http_claw_cluster_waiting;
    op->wait.data = op;
    op->wait.log = op->log;

    ngx_http_claw_cluster_waiting(&op->wait);
}


static void
ngx_http_claw_cluster_waiting(ngx_event_t *ev)
{
    ngx_http_claw_cluster_op_t  *op = ev->data;

    uint64_t                     ms, seq;
    size_t                       epoch_len;
    u_char                       epoch[NGX_HTTP_CLAW_EPOCH_LEN];

    ngx_http_claw_cluster_get_last(op->cluster->sh, &ms, &seq, epoch,
                                   &epoch_len);

    if (ms > op->ms || (ms == op->ms && seq >= op->seq)
        || (ngx_msec_int_t) (ngx_current_msec - op->deadline) >= 0)
    {
        op->handler(op);
        return;
    }

    ngx_add_timer(&op->wait, 5);
}


/*
 * An import: this node's registry into a server that holds none.  The
 * records go first, the epoch last, so that no node reads a registry
 * that is not whole.
 */

ngx_int_t
ngx_http_claw_cluster_import(ngx_http_claw_cluster_op_t *op)
{
    u_char                   *p;
    size_t                    len;
    ngx_str_t                *args, name;
    ngx_uint_t                i, j, k, n, nargs, ntenants;
    ngx_http_claw_tconf_t   **list;
    ngx_http_claw_cluster_t  *cl;

    cl = op->cluster;

    switch (op->step) {

    case 0:
        /* a lock, then a server with no registry */

        args = ngx_palloc(op->pool, 6 * sizeof(ngx_str_t));
        if (args == NULL) {
            goto nomem;
        }

        ngx_str_set(&args[0], "SET");
        ngx_str_set(&args[2], "import");
        ngx_str_set(&args[3], "NX");
        ngx_str_set(&args[4], "PX");
        ngx_str_set(&args[5], "60000");

        if (ngx_http_claw_cluster_key(op->pool, cl, "import", NULL, &args[1])
            != NGX_OK)
        {
            goto nomem;
        }

        if (ngx_http_claw_cluster_import_send(op, 6, args) != NGX_OK) {
            goto failed;
        }

        return NGX_OK;

    case 1:
        /* no registry, and nothing of one either: no records, no log */

        args = ngx_palloc(op->pool, 6 * sizeof(ngx_str_t));
        if (args == NULL) {
            goto nomem;
        }

        ngx_str_set(&args[0], "EVAL");
        args[1] = ngx_http_claw_cluster_empty_script;
        ngx_str_set(&args[2], "2");

        if (ngx_http_claw_cluster_key(op->pool, cl, "epoch", NULL, &args[3])
            != NGX_OK
            || ngx_http_claw_cluster_key(op->pool, cl, "log", NULL, &args[4])
               != NGX_OK
            || ngx_http_claw_cluster_key(op->pool, cl, "", NULL, &args[5])
               != NGX_OK)
        {
            goto nomem;
        }

        if (ngx_http_claw_cluster_import_send(op, 6, args) != NGX_OK) {
            goto failed;
        }

        return NGX_OK;

    case 2:
        /* every tenant and domain, in MSETs of 200 tenants, pipelined */

        list = ngx_http_claw_tables_list(cl->tables, op->pool, &ntenants);
        if (list == NULL && ntenants) {
            goto nomem;
        }

        op->created = ntenants;
        op->pending = 0;

        for (i = 0; i < ntenants; i += 200) {
            n = ngx_min(200, ntenants - i);

            nargs = 1;

            for (j = i; j < i + n; j++) {
                nargs += 2 + 2 * list[j]->ndomains;
            }

            args = ngx_palloc(op->pool, nargs * sizeof(ngx_str_t));
            if (args == NULL) {
                goto nomem;
            }

            ngx_str_set(&args[0], "MSET");
            k = 1;

            for (j = i; j < i + n; j++) {
                name.data = ngx_http_claw_tconf_id(list[j]);
                name.len = list[j]->id_len;

                len = ngx_http_claw_tconf_line(list[j], NULL);

                p = ngx_pnalloc(op->pool, len);
                if (p == NULL) {
                    goto nomem;
                }

                (void) ngx_http_claw_tconf_line(list[j], p);

                if (ngx_http_claw_cluster_key(op->pool, cl, "t:", &name,
                                              &args[k])
                    != NGX_OK)
                {
                    goto nomem;
                }

                args[k + 1].data = p;
                args[k + 1].len = len;
                k += 2;

                p = ngx_http_claw_tconf_domains(list[j]);

                for (len = 0; len < list[j]->ndomains; len++) {
                    ngx_str_t  d;

                    d.len = *p++;
                    d.data = p;
                    p += d.len;

                    if (ngx_http_claw_cluster_key(op->pool, cl, "d:", &d,
                                                  &args[k])
                        != NGX_OK)
                    {
                        goto nomem;
                    }

                    args[k + 1] = name;
                    k += 2;
                }
            }

            op->pending++;

            if (ngx_http_claw_redis_command(&cl->cmd,
                                            ngx_http_claw_cluster_import_step,
                                            op, cl->redis.timeout, k, args)
                != NGX_OK)
            {
                goto failed;
            }
        }

        if (op->pending) {
            return NGX_OK;
        }

        op->step++;

        /* fall through */

    case 3:
        args = ngx_palloc(op->pool, 4 * sizeof(ngx_str_t));
        p = ngx_pnalloc(op->pool, 2 * NGX_HTTP_CLAW_EPOCH_LEN);
        if (args == NULL || p == NULL) {
            goto nomem;
        }

        if (RAND_bytes(p + NGX_HTTP_CLAW_EPOCH_LEN, NGX_HTTP_CLAW_EPOCH_LEN / 2)
            != 1)
        {
            goto nomem;
        }

        ngx_hex_dump(p, p + NGX_HTTP_CLAW_EPOCH_LEN,
                     NGX_HTTP_CLAW_EPOCH_LEN / 2);

        ngx_str_set(&args[0], "SET");
        args[2].data = p;
        args[2].len = NGX_HTTP_CLAW_EPOCH_LEN;
        ngx_str_set(&args[3], "NX");

        if (ngx_http_claw_cluster_key(op->pool, cl, "epoch", NULL, &args[1])
            != NGX_OK)
        {
            goto nomem;
        }

        if (ngx_http_claw_cluster_import_send(op, 4, args) != NGX_OK) {
            goto failed;
        }

        return NGX_OK;
    }

    op->rc = NGX_OK;
    op->handler(op);

    return NGX_OK;

nomem:

    ngx_http_claw_cluster_fail(op, NULL, "out of memory in the import");
    return NGX_ERROR;

failed:

    ngx_http_claw_cluster_fail(op, NULL, "the import");
    return NGX_ERROR;
}


/* one step of an import at a time, but the records' batches */

static ngx_int_t
ngx_http_claw_cluster_import_send(ngx_http_claw_cluster_op_t *op,
    ngx_uint_t n, ngx_str_t *args)
{
    op->pending = 1;

    return ngx_http_claw_redis_command(&op->cluster->cmd,
                                       ngx_http_claw_cluster_import_step, op,
                                       op->cluster->redis.timeout, n, args);
}


static void
ngx_http_claw_cluster_import_step(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_cluster_op_t  *op = data;

    ngx_str_t                 args[2];
    ngx_http_claw_cluster_t  *cl;

    cl = op->cluster;

    if (op->rc == NGX_ERROR) {
        if (--op->pending == 0) {
            op->handler(op);
        }

        return;
    }

    if (op->step == 4) {

        /* imported: the lock expires anyway if it could not be deleted */

        op->step++;
        op->rc = NGX_OK;
        op->handler(op);
        return;
    }

    if (reply == NULL || reply->type == NGX_HTTP_CLAW_RESP_ERROR) {
        ngx_http_claw_cluster_fail(op, reply, "the import");
        goto failed;
    }

    switch (op->step) {

    case 0:
        if (reply->type == NGX_HTTP_CLAW_RESP_NIL) {
            op->rc = NGX_BUSY;
            ngx_sprintf(op->error, "another import is under way%Z");
            goto failed;
        }

        break;

    case 1:
        if (reply->type != NGX_HTTP_CLAW_RESP_INTEGER || reply->integer) {
            op->rc = NGX_BUSY;

            if (reply->type == NGX_HTTP_CLAW_RESP_INTEGER
                && reply->integer == 2)
            {
                ngx_snprintf(op->error, sizeof(op->error) - 1,
                             "the cluster server holds records or a log "
                             "under \"%V\" but no registry: delete them "
                             "(redis-cli --scan --pattern '%Vt:*', '%Vd:*', "
                             "'%Vlog') or use another prefix%Z",
                             &cl->prefix, &cl->prefix, &cl->prefix,
                             &cl->prefix);

            } else {
                ngx_sprintf(op->error, "the cluster server holds a "
                            "registry already%Z");
            }

            goto failed;
        }

        break;

    case 3:
        if (reply->type == NGX_HTTP_CLAW_RESP_NIL) {
            op->rc = NGX_BUSY;
            ngx_sprintf(op->error, "another node imported a registry "
                        "meanwhile%Z");
            goto failed;
        }

        /* the lock goes before the answer: a later import is told why */

        ngx_str_set(&args[0], "DEL");

        if (ngx_http_claw_cluster_key(op->pool, cl, "import", NULL,
                                      &args[1])
            != NGX_OK
            || ngx_http_claw_redis_command(&cl->cmd,
                                           ngx_http_claw_cluster_import_step,
                                           op, cl->redis.timeout, 2, args)
               != NGX_OK)
        {
            op->rc = NGX_OK;
            op->handler(op);
            return;
        }

        op->step++;
        op->unlocked = 1;
        return;

    }

    if (--op->pending) {
        return;
    }

    op->step++;

    if (ngx_http_claw_cluster_import(op) != NGX_OK) {
        op->handler(op);
    }

    return;

failed:

    if (op->rc != NGX_BUSY) {
        op->rc = NGX_ERROR;
    }

    /* the lock is ours from step 1 on: it goes, the records stay */

    if (op->step > 0 && !op->unlocked && reply) {
        op->unlocked = 1;

        ngx_str_set(&args[0], "DEL");

        if (ngx_http_claw_cluster_key(op->pool, cl, "import", NULL,
                                      &args[1])
            == NGX_OK)
        {
            (void) ngx_http_claw_redis_command(&cl->cmd,
                                               ngx_http_claw_cluster_ignore,
                                               NULL, cl->redis.timeout, 2,
                                               args);
        }
    }

    if (--op->pending == 0) {
        op->handler(op);
        return;
    }

    op->rc = NGX_ERROR;
}


static void
ngx_http_claw_cluster_ignore(void *data, ngx_http_claw_resp_t *reply)
{
}


static void
ngx_http_claw_cluster_fail(ngx_http_claw_cluster_op_t *op,
    ngx_http_claw_resp_t *reply, const char *what)
{
    op->rc = NGX_ERROR;

    if (reply && reply->type == NGX_HTTP_CLAW_RESP_ERROR) {
        ngx_snprintf(op->error, sizeof(op->error) - 1,
                     "the cluster server refused %s: %*s%Z", what,
                     reply->len, reply->str);
        return;
    }

    if (reply) {
        ngx_snprintf(op->error, sizeof(op->error) - 1,
                     "unexpected reply of the cluster server to %s%Z", what);
        return;
    }

    ngx_snprintf(op->error, sizeof(op->error) - 1,
                 "the cluster server failed (%s): %s; nothing changed%Z",
                 what, op->cluster->cmd.error);
}
