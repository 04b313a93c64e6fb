
/*
 * Copyright (C) ngx_claw_module authors
 *
 * ACME in a cluster (claw_cluster): the nodes share one certificate per
 * name through the server, and answer each other's challenges.  Keys,
 * under the cluster's prefix:
 *
 *   acme:lock:<name>   the node that orders the name: held for the
 *                      order's time, then for its back-off if it failed
 *   acme:cert:<name>   hash: crt and key (PEM), not_after, node
 *   acme:log           stream of "domain, not_after": a certificate stored
 *   acme:ch            hash: token -> a challenge to answer (see below)
 *   acme:ack:<token>   set: the nodes that answer it
 *
 * The owner worker of each node reads acme:ch and the new entries of
 * acme:log every second: challenges go into its zone, where its workers
 * answer them, and a newer certificate is pulled by the owner's next
 * round.  Nothing here is on a request's path, and nothing waits: every
 * exchange is a command on the worker's connection to the server.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_acme.h"


/* the order's own time; the lock is kept for the back-off after it */
#define NGX_HTTP_CLAW_ACME_LOCK_TTL   600000

/* how long an order waits for the other nodes to take its challenge */
#define NGX_HTTP_CLAW_ACME_ACK_WAIT   5000

#define NGX_HTTP_CLAW_ACME_POLL       1000
#define NGX_HTTP_CLAW_ACME_LOG_BATCH  "100"

/* the challenge's header: version, expires, type, then the lengths */
#define NGX_HTTP_CLAW_ACME_BLOB_HEAD  (3 + 10 * NGX_INT_T_LEN)


struct ngx_http_claw_acme_poll_s {
    ngx_http_claw_acme_main_conf_t  *amcf;
    ngx_http_claw_acme_pull_pt       pull;
    ngx_event_t                      ev;
    ngx_uint_t                       pending;       /* replies due */
    u_char                           last[64];      /* of acme:log */
    size_t                           last_len;      /* 0: not known yet */
    ngx_uint_t                       more;          /* a full batch read */
    unsigned                         running:1;
};


/* what is left to do after the job is gone: one command's context */

typedef struct {
    ngx_log_t                       *log;
    size_t                           len;
    u_char                           name[1];
} ngx_http_claw_acme_note_t;


static ngx_int_t ngx_http_claw_acme_cluster_key(ngx_pool_t *pool,
    ngx_http_claw_acme_main_conf_t *amcf, const char *kind, char *name,
    ngx_str_t *key);
static void ngx_http_claw_acme_claimed(void *data,
    ngx_http_claw_resp_t *reply);
static ngx_int_t ngx_http_claw_acme_copy(ngx_pool_t *pool,
    ngx_http_claw_resp_t *r, ngx_str_t *to);
static void ngx_http_claw_acme_offered(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_acme_wait_handler(ngx_event_t *ev);
static void ngx_http_claw_acme_counted(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_acme_shared(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_acme_poll_handler(ngx_event_t *ev);
static void ngx_http_claw_acme_poll_done(ngx_http_claw_acme_poll_t *poll);
static void ngx_http_claw_acme_challenges(void *data,
    ngx_http_claw_resp_t *reply);
static ngx_int_t ngx_http_claw_acme_take_challenge(
    ngx_http_claw_acme_main_conf_t *amcf, ngx_http_claw_resp_t *field,
    ngx_http_claw_resp_t *blob, ngx_uint_t *installed);
static void ngx_http_claw_acme_news(void *data, ngx_http_claw_resp_t *reply);
static void ngx_http_claw_acme_ignore(void *data,
    ngx_http_claw_resp_t *reply);


/*
 * KEYS: the lock, the certificate.  ARGV: this node, the lock's time,
 * the not_after of this node's certificate, "1" to pull only.
 */

static ngx_str_t  ngx_http_claw_acme_claim_script = ngx_string(
"local ok, raw = pcall(redis.call, 'HGET', KEYS[2], 'not_after')\n"
"if not ok then redis.call('DEL', KEYS[2]); raw = nil end\n"
"local na = tonumber(raw or '')\n"
"if na and na > tonumber(ARGV[3]) then\n"
"  local c = redis.call('HMGET', KEYS[2], 'crt', 'key', 'node')\n"
"  if c[1] and c[1] ~= '' and c[2] and c[2] ~= '' then\n"
"    return {'cert', c[1], c[2], c[3] or '', raw}\n"
"  end\n"
"  redis.call('DEL', KEYS[2])\n"
"end\n"
"if ARGV[4] == '1' then return {'none'} end\n"
"local owner = redis.call('GET', KEYS[1])\n"
"if owner and owner ~= ARGV[1] then\n"
"  return {'busy', owner, redis.call('PTTL', KEYS[1])}\n"
"end\n"
"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
"return {'ok'}\n");


/*
 * KEYS: the certificate, the log, the lock, the challenges, the acks.
 * ARGV: this node, the token ("" for none), "1" when issued, the
 * certificate, the key, its not_after, the name, the back-off (ms), the
 * not_after of a stored certificate found unusable ("" for none).
 */

static ngx_str_t  ngx_http_claw_acme_finish_script = ngx_string(
"if ARGV[2] ~= '' then\n"
"  redis.call('HDEL', KEYS[4], ARGV[2])\n"
"  redis.call('DEL', KEYS[5])\n"
"end\n"
"local mine = redis.call('GET', KEYS[3]) == ARGV[1]\n"
"local ok, cur = pcall(redis.call, 'HGET', KEYS[1], 'not_after')\n"
"if ARGV[3] == '1' and (not ok or not tonumber(cur or '')\n"
"                      or tonumber(cur) < tonumber(ARGV[6])) then\n"
"  if not ok then redis.call('DEL', KEYS[1]) end\n"
"  redis.call('HSET', KEYS[1], 'crt', ARGV[4], 'key', ARGV[5],\n"
"             'not_after', ARGV[6], 'node', ARGV[1])\n"
"  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '10000', '*',\n"
"             'domain', ARGV[7], 'not_after', ARGV[6])\n"
"  if mine then redis.call('DEL', KEYS[3]) end\n"
"elseif ARGV[3] == '1' then\n"
"  if mine then redis.call('DEL', KEYS[3]) end\n"
"elseif mine then\n"
"  redis.call('PEXPIRE', KEYS[3], ARGV[8])\n"
"end\n"
"if ARGV[9] ~= '' and ok and cur == ARGV[9] then\n"
"  redis.call('DEL', KEYS[1])\n"
"end\n"
"return 1\n");


static ngx_int_t
ngx_http_claw_acme_cluster_key(ngx_pool_t *pool,
    ngx_http_claw_acme_main_conf_t *amcf, const char *kind, char *name,
    ngx_str_t *key)
{
    size_t                    len;
    ngx_http_claw_cluster_t  *cl;

    cl = amcf->cluster;
    len = name ? ngx_strlen(name) : 0;

    key->len = cl->prefix.len + sizeof("acme:") - 1 + ngx_strlen(kind) + len;
    key->data = ngx_pnalloc(pool, key->len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(key->data, "%Vacme:%s%*s", &cl->prefix, kind, len,
                name ? name : "");

    return NGX_OK;
}


/* --- an order's steps -------------------------------------------------- */


void
ngx_http_claw_acme_cluster_claim(ngx_http_claw_acme_job_t *job,
    ngx_http_claw_acme_step_pt step)
{
    ngx_str_t                        args[9];
    ngx_http_claw_cluster_t         *cl;
    ngx_http_claw_acme_main_conf_t  *amcf;
    u_char                           ttl[NGX_INT_T_LEN];
    u_char                           na[NGX_TIME_T_LEN];

    amcf = job->amcf;
    cl = amcf->cluster;

    job->step = step;

    ngx_str_set(&args[0], "EVAL");
    args[1] = ngx_http_claw_acme_claim_script;
    ngx_str_set(&args[2], "2");
    args[5] = cl->node;
    args[6].data = ttl;
    args[6].len = ngx_sprintf(ttl, "%ui",
                              (ngx_uint_t) NGX_HTTP_CLAW_ACME_LOCK_TTL)
                  - ttl;
    args[7].data = na;
    args[7].len = ngx_sprintf(na, "%T", job->held_not_after) - na;

    if (job->pull) {
        ngx_str_set(&args[8], "1");

    } else {
        ngx_str_set(&args[8], "0");
    }

    if (ngx_http_claw_acme_cluster_key(job->pool, amcf, "lock:", job->domain,
                                       &args[3])
           != NGX_OK
        || ngx_http_claw_acme_cluster_key(job->pool, amcf, "cert:",
                                          job->domain, &args[4])
           != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_acme_claimed,
                                    job, cl->redis.timeout, 9, args)
        == NGX_OK)
    {
        return;
    }

failed:

    job->claim = NGX_HTTP_CLAW_ACME_CLAIM_ERROR;
    job->error_len = ngx_snprintf(job->error, NGX_HTTP_CLAW_ACME_ERROR_MAX,
                                  "the cluster server \"%V\" cannot be "
                                  "reached: %s", &cl->redis.url,
                                  cl->cmd.error)
                     - job->error;
    step(job);
}


static void
ngx_http_claw_acme_claimed(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_acme_job_t  *job = data;

    ngx_http_claw_resp_t     *e;
    ngx_http_claw_cluster_t  *cl;

    cl = job->amcf->cluster;

    job->claim = NGX_HTTP_CLAW_ACME_CLAIM_ERROR;

    if (reply == NULL) {
        job->error_len = ngx_snprintf(job->error,
                                      NGX_HTTP_CLAW_ACME_ERROR_MAX,
                                      "the cluster server \"%V\" did not "
                                      "answer: %s", &cl->redis.url,
                                      cl->cmd.error)
                         - job->error;
        goto done;
    }

    if (reply->type == NGX_HTTP_CLAW_RESP_ERROR) {
        job->error_len = ngx_snprintf(job->error,
                                      NGX_HTTP_CLAW_ACME_ERROR_MAX,
                                      "the cluster server refused the "
                                      "claim: %*s", reply->len, reply->str)
                         - job->error;
        goto done;
    }

    e = reply->elts;

    if (reply->type != NGX_HTTP_CLAW_RESP_ARRAY || reply->nelts == 0) {
        goto malformed;
    }

    if (ngx_http_claw_resp_is(&e[0], "ok")) {
        job->claim = NGX_HTTP_CLAW_ACME_CLAIM_OK;
        job->claimed = 1;

    } else if (ngx_http_claw_resp_is(&e[0], "none")) {
        job->claim = NGX_HTTP_CLAW_ACME_CLAIM_NONE;

    } else if (ngx_http_claw_resp_is(&e[0], "busy") && reply->nelts == 3
               && e[2].type == NGX_HTTP_CLAW_RESP_INTEGER)
    {
        if (ngx_http_claw_acme_copy(job->pool, &e[1], &job->from) != NGX_OK) {
            goto malformed;
        }

        job->claim = NGX_HTTP_CLAW_ACME_CLAIM_BUSY;

        /* a lock with no expiry (set by hand) is looked at again later */

        job->retry_after = (e[2].integer > 0) ? e[2].integer / 1000 + 1 : 0;

        if (job->retry_after > job->amcf->backoff_max) {
            job->retry_after = job->amcf->backoff_max;
        }

    } else if (ngx_http_claw_resp_is(&e[0], "cert") && reply->nelts == 5
               && e[4].type == NGX_HTTP_CLAW_RESP_STRING)
    {

        if (ngx_http_claw_acme_copy(job->pool, &e[1], &job->pem_cert)
               != NGX_OK
            || ngx_http_claw_acme_copy(job->pool, &e[2], &job->pem_key)
               != NGX_OK
            || ngx_http_claw_acme_copy(job->pool, &e[3], &job->from)
               != NGX_OK
            || ngx_http_claw_acme_copy(job->pool, &e[4], &job->pulled)
               != NGX_OK
            || job->pem_cert.len == 0 || job->pem_key.len == 0)
        {
            job->error_len = ngx_snprintf(job->error,
                                          NGX_HTTP_CLAW_ACME_ERROR_MAX,
                                          "\"%Vacme:cert:%s\" in the "
                                          "cluster has no certificate or "
                                          "key", &cl->prefix, job->domain)
                             - job->error;
            goto done;
        }

        job->claim = NGX_HTTP_CLAW_ACME_CLAIM_CERT;

    } else {
        goto malformed;
    }

    goto done;

malformed:

    job->error_len = ngx_snprintf(job->error, NGX_HTTP_CLAW_ACME_ERROR_MAX,
                                  "the cluster server answered the claim "
                                  "with something else")
                     - job->error;

done:

    job->step(job);
}


static ngx_int_t
ngx_http_claw_acme_copy(ngx_pool_t *pool, ngx_http_claw_resp_t *r,
    ngx_str_t *to)
{
    if (r->type != NGX_HTTP_CLAW_RESP_STRING) {
        return NGX_ERROR;
    }

    to->len = r->len;
    to->data = ngx_pnalloc(pool, r->len + 1);
    if (to->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(to->data, r->str, r->len);
    to->data[r->len] = '\0';

    return NGX_OK;
}


/*
 * The challenge, for the other nodes to answer: a header, then this
 * node's name and the challenge as the zone holds it (name, token, key
 * authorization, the tls-alpn-01 certificates and keys); the order
 * waits until every node seen lately took it, or for at most
 * NGX_HTTP_CLAW_ACME_ACK_WAIT.
 */

void
ngx_http_claw_acme_cluster_offer(ngx_http_claw_acme_job_t *job,
    ngx_http_claw_acme_step_pt step)
{
    u_char                          *p;
    size_t                           size, name_len, token_len, keyauth_len;
    ngx_str_t                        args[4], del[2];
    ngx_uint_t                       i;
    ngx_http_claw_cluster_t         *cl;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = job->amcf;
    cl = amcf->cluster;

    job->step = step;

    name_len = ngx_strlen(job->domain);
    token_len = ngx_strlen(job->token);
    keyauth_len = ngx_strlen(job->keyauth);

    size = NGX_HTTP_CLAW_ACME_BLOB_HEAD + cl->node.len + name_len + token_len
           + keyauth_len;

    for (i = 0; i < 2; i++) {
        size += job->cert_der_len[i] + job->key_der_len[i];
    }

    p = ngx_pnalloc(job->pool, size);

    if (p == NULL
        || ngx_http_claw_acme_cluster_key(job->pool, amcf, "ch", NULL,
                                          &args[1])
           != NGX_OK)
    {
        goto failed;
    }

    args[3].data = p;

    p = ngx_sprintf(p, "1 %T %ui %uz %uz %uz %uz %uz %uz %uz %uz\n",
                    ngx_time() + 600, job->type, cl->node.len, name_len,
                    token_len, keyauth_len,
                    job->cert_der_len[0], job->key_der_len[0],
                    job->cert_der_len[1], job->key_der_len[1]);

    p = ngx_cpymem(p, cl->node.data, cl->node.len);
    p = ngx_cpymem(p, job->domain, name_len);
    p = ngx_cpymem(p, job->token, token_len);
    p = ngx_cpymem(p, job->keyauth, keyauth_len);

    for (i = 0; i < 2; i++) {
        if (job->cert_der_len[i]) {
            p = ngx_cpymem(p, job->cert_der[i], job->cert_der_len[i]);
        }

        if (job->key_der_len[i]) {
            p = ngx_cpymem(p, job->key_der[i], job->key_der_len[i]);
        }
    }

    args[3].len = p - args[3].data;

    ngx_str_set(&args[0], "DEL");

    if (ngx_http_claw_acme_cluster_key(job->pool, amcf, "ack:", job->token,
                                       &args[2])
        != NGX_OK)
    {
        goto failed;
    }

    /* acks of an earlier offer of the same token count for nothing */

    del[0] = args[0];
    del[1] = args[2];

    if (ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_acme_ignore,
                                    NULL, cl->redis.timeout, 2, del)
        != NGX_OK)
    {
        goto failed;
    }

    ngx_str_set(&args[0], "HSET");
    args[2].data = (u_char *) job->token;
    args[2].len = token_len;

    if (ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_acme_offered,
                                    job, cl->redis.timeout, 4, args)
        != NGX_OK)
    {
        goto failed;
    }

    job->offered = 1;

    return;

failed:

    job->rc = NGX_ERROR;
    job->error_len = ngx_snprintf(job->error, NGX_HTTP_CLAW_ACME_ERROR_MAX,
                                  "the challenge could not be given to the "
                                  "cluster server \"%V\": %s",
                                  &cl->redis.url, cl->cmd.error)
                     - job->error;
    step(job);
}


static void
ngx_http_claw_acme_offered(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_acme_job_t  *job = data;

    ngx_http_claw_cluster_t  *cl;

    cl = job->amcf->cluster;

    if (reply == NULL || reply->type == NGX_HTTP_CLAW_RESP_ERROR) {
        job->rc = NGX_ERROR;
        job->error_len = ngx_snprintf(job->error,
                                      NGX_HTTP_CLAW_ACME_ERROR_MAX,
                                      "the cluster server \"%V\" did not "
                                      "take the challenge: %s",
                                      &cl->redis.url,
                                      reply ? (u_char *) "an error"
                                            : cl->cmd.error)
                         - job->error;
        job->step(job);
        return;
    }

    /* not cancelable: a graceful exit waits (5 s at most) to withdraw it */

    job->wait.handler = ngx_http_claw_acme_wait_handler;
    job->wait.data = job;
    job->wait.log = job->log;
    job->wait_until = ngx_current_msec + NGX_HTTP_CLAW_ACME_ACK_WAIT;

    ngx_http_claw_acme_wait_handler(&job->wait);
}


static void
ngx_http_claw_acme_wait_handler(ngx_event_t *ev)
{
    ngx_http_claw_acme_job_t  *job = ev->data;

    ngx_str_t                 args[2];
    ngx_http_claw_cluster_t  *cl;

    cl = job->amcf->cluster;

    /* no other node seen lately: nobody else to wait for */

    if (cl->sh->nodes <= 1) {
        job->step(job);
        return;
    }

    ngx_str_set(&args[0], "SCARD");

    if (ngx_http_claw_acme_cluster_key(job->pool, job->amcf, "ack:",
                                       job->token, &args[1])
           != NGX_OK
        || ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_acme_counted,
                                       job, cl->redis.timeout, 2, args)
           != NGX_OK)
    {
        ngx_http_claw_acme_counted(job, NULL);
    }
}


static void
ngx_http_claw_acme_counted(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_acme_job_t  *job = data;

    ngx_uint_t                others;
    ngx_http_claw_cluster_t  *cl;

    cl = job->amcf->cluster;
    others = cl->sh->nodes - 1;

    /* the worker exits: the order is given up, and withdrawn */

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        job->rc = NGX_ABORT;
        job->step(job);
        return;
    }

    if (reply && reply->type == NGX_HTTP_CLAW_RESP_INTEGER
        && reply->integer >= (long long) others)
    {
        job->step(job);
        return;
    }

    if ((ngx_msec_int_t) (job->wait_until - ngx_current_msec) <= 0) {
        /* the CA may reach a node that has not got it: it then fails */

        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "claw_acme: the challenge of \"%s\" was taken by %i "
                      "of the %ui other nodes in %M ms; validated anyway",
                      job->domain,
                      (reply && reply->type == NGX_HTTP_CLAW_RESP_INTEGER)
                      ? (ngx_int_t) reply->integer : (ngx_int_t) -1,
                      others, (ngx_msec_t) NGX_HTTP_CLAW_ACME_ACK_WAIT);

        job->step(job);
        return;
    }

    ngx_add_timer(&job->wait, 100);
}


/*
 * The job is over: its certificate stored in the server for the other
 * nodes, or, when it failed, the name's lock kept for the back-off, so
 * that no other node orders it meanwhile; the challenge withdrawn.  The
 * answer is only logged.
 */

void
ngx_http_claw_acme_cluster_finish(ngx_http_claw_acme_job_t *job)
{
    ngx_str_t                        args[17];
    ngx_uint_t                       issued, bad;
    ngx_http_claw_cluster_t         *cl;
    ngx_http_claw_acme_note_t       *note;
    ngx_http_claw_acme_main_conf_t  *amcf;
    u_char                           na[NGX_TIME_T_LEN];
    u_char                           delay[NGX_TIME_T_LEN + 3];

    /* one that cannot be used is removed, and ordered anew */

    bad = (job->phase == 3 && job->rc == NGX_ERROR && job->bad);

    if (!job->claimed && !job->offered && !bad) {
        return;
    }

    amcf = job->amcf;
    cl = amcf->cluster;

    issued = (job->claimed && job->rc == NGX_OK && job->pem_cert.len);

    ngx_str_set(&args[0], "EVAL");
    args[1] = ngx_http_claw_acme_finish_script;
    ngx_str_set(&args[2], "5");

    if (ngx_http_claw_acme_cluster_key(job->pool, amcf, "cert:", job->domain,
                                       &args[3])
           != NGX_OK
        || ngx_http_claw_acme_cluster_key(job->pool, amcf, "log", NULL,
                                          &args[4])
           != NGX_OK
        || ngx_http_claw_acme_cluster_key(job->pool, amcf, "lock:",
                                          job->domain, &args[5])
           != NGX_OK
        || ngx_http_claw_acme_cluster_key(job->pool, amcf, "ch", NULL,
                                          &args[6])
           != NGX_OK
        || ngx_http_claw_acme_cluster_key(job->pool, amcf, "ack:",
                                          job->offered ? job->token : NULL,
                                          &args[7])
           != NGX_OK)
    {
        goto failed;
    }

    args[8] = cl->node;

    if (job->offered) {
        args[9].data = (u_char *) job->token;
        args[9].len = ngx_strlen(job->token);

    } else {
        ngx_str_set(&args[9], "");
    }

    if (issued) {
        ngx_str_set(&args[10], "1");
        args[11] = job->pem_cert;
        args[12] = job->pem_key;

    } else {
        ngx_str_set(&args[10], "0");
        ngx_str_set(&args[11], "");
        ngx_str_set(&args[12], "");
    }

    args[13].data = na;
    args[13].len = ngx_sprintf(na, "%T", job->not_after) - na;
    args[14].data = (u_char *) job->domain;
    args[14].len = ngx_strlen(job->domain);
    args[15].data = delay;
    args[15].len = ngx_sprintf(delay, "%T000",
                               job->delay > 0 ? job->delay : 1)
                   - delay;
    if (bad) {
        args[16] = job->pulled;

    } else {
        ngx_str_set(&args[16], "");
    }

    note = ngx_alloc(sizeof(ngx_http_claw_acme_note_t) + args[14].len,
                     job->log);
    if (note == NULL) {
        goto failed;
    }

    note->log = ngx_cycle->log;
    note->len = args[14].len;
    ngx_memcpy(note->name, args[14].data, note->len);

    if (ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_acme_shared,
                                    note, cl->redis.timeout, 17, args)
        == NGX_OK)
    {
        return;
    }

    ngx_free(note);

failed:

    ngx_log_error(NGX_LOG_ERR, job->log, 0,
                  "claw_acme: the outcome for \"%s\" could not be given to "
                  "the cluster server \"%V\": %s", job->domain,
                  &cl->redis.url, cl->cmd.error);
}


static void
ngx_http_claw_acme_shared(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_acme_note_t  *note = data;

    if (reply == NULL || reply->type == NGX_HTTP_CLAW_RESP_ERROR) {
        ngx_log_error(NGX_LOG_ERR, note->log, 0,
                      "claw_acme: the outcome for \"%*s\" was not stored "
                      "in the cluster server: %*s; the other nodes order "
                      "the name themselves when its lock expires",
                      note->len, note->name,
                      reply ? reply->len : sizeof("no answer") - 1,
                      reply ? reply->str : (u_char *) "no answer");
    }

    ngx_free(note);
}


/* --- the owner's poll -------------------------------------------------- */


ngx_int_t
ngx_http_claw_acme_cluster_start(ngx_http_claw_acme_main_conf_t *amcf,
    ngx_http_claw_acme_pull_pt pull)
{
    ngx_http_claw_acme_poll_t  *poll;

    poll = amcf->poll;

    if (poll == NULL) {
        poll = ngx_pcalloc(ngx_cycle->pool, sizeof(ngx_http_claw_acme_poll_t));
        if (poll == NULL) {
            return NGX_ERROR;
        }

        poll->amcf = amcf;
        poll->ev.handler = ngx_http_claw_acme_poll_handler;
        poll->ev.data = poll;
        poll->ev.log = ngx_cycle->log;
        poll->ev.cancelable = 1;

        amcf->poll = poll;
    }

    poll->pull = pull;

    if (!poll->running) {
        poll->running = 1;

        if (!poll->ev.timer_set && poll->pending == 0) {
            ngx_add_timer(&poll->ev, 1);
        }
    }

    return NGX_OK;
}


void
ngx_http_claw_acme_cluster_stop(ngx_http_claw_acme_main_conf_t *amcf)
{
    ngx_http_claw_acme_poll_t  *poll;

    poll = amcf->poll;

    if (poll == NULL) {
        return;
    }

    poll->running = 0;

    if (poll->ev.timer_set) {
        ngx_del_timer(&poll->ev);
    }
}


static void
ngx_http_claw_acme_poll_handler(ngx_event_t *ev)
{
    ngx_http_claw_acme_poll_t  *poll = ev->data;

    ngx_str_t                        args[6];
    ngx_pool_t                      *pool;
    ngx_http_claw_cluster_t         *cl;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = poll->amcf;
    cl = amcf->cluster;

    if (!poll->running || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    /* the keys live only as long as the commands are queued */

    pool = ngx_create_pool(512, ev->log);
    if (pool == NULL) {
        ngx_add_timer(ev, NGX_HTTP_CLAW_ACME_POLL);
        return;
    }

    ngx_str_set(&args[0], "HGETALL");

    if (ngx_http_claw_acme_cluster_key(pool, amcf, "ch", NULL, &args[1])
           != NGX_OK
        || ngx_http_claw_acme_cluster_key(pool, amcf, "log", NULL, &args[2])
           != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_acme_challenges,
                                    poll, cl->redis.timeout, 2, args)
        != NGX_OK)
    {
        goto failed;
    }

    poll->pending++;

    /* the log from where this node left it; at first, only its end */

    args[1] = args[2];

    if (poll->last_len == 0) {
        ngx_str_set(&args[0], "XREVRANGE");
        ngx_str_set(&args[2], "+");
        ngx_str_set(&args[3], "-");
        ngx_str_set(&args[5], "1");

    } else {
        ngx_str_set(&args[0], "XRANGE");
        args[2].data = ngx_pnalloc(pool, poll->last_len + 1);
        if (args[2].data == NULL) {
            goto done;
        }

        args[2].len = ngx_sprintf(args[2].data, "(%*s", poll->last_len,
                                  poll->last)
                      - args[2].data;
        ngx_str_set(&args[3], "+");
        ngx_str_set(&args[5], NGX_HTTP_CLAW_ACME_LOG_BATCH);
    }

    ngx_str_set(&args[4], "COUNT");

    if (ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_acme_news, poll,
                                    cl->redis.timeout, 6, args)
        == NGX_OK)
    {
        poll->pending++;
    }

done:

    ngx_destroy_pool(pool);
    return;

failed:

    ngx_destroy_pool(pool);
    ngx_add_timer(ev, NGX_HTTP_CLAW_ACME_POLL);
}


static void
ngx_http_claw_acme_poll_done(ngx_http_claw_acme_poll_t *poll)
{
    if (--poll->pending) {
        return;
    }

    if (poll->running && !poll->ev.timer_set
        && !(ngx_exiting || ngx_terminate || ngx_quit))
    {
        ngx_add_timer(&poll->ev, poll->more ? 1 : NGX_HTTP_CLAW_ACME_POLL);
    }
}


/*
 * The challenges in the server: those of other nodes go into the zone
 * (once; each is acknowledged to its node), those withdrawn leave it.
 */

static void
ngx_http_claw_acme_challenges(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_acme_poll_t  *poll = data;

    size_t                           name_len, token_len;
    ngx_uint_t                       i, found, installed;
    ngx_queue_t                     *q, *next;
    ngx_http_claw_resp_t            *e;
    ngx_http_claw_acme_chall_t      *c;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = poll->amcf;

    if (reply == NULL || reply->type != NGX_HTTP_CLAW_RESP_ARRAY
        || reply->nelts % 2 || !poll->running)
    {
        goto done;
    }

    e = reply->elts;
    installed = 0;

    for (i = 0; i < reply->nelts; i += 2) {
        (void) ngx_http_claw_acme_take_challenge(amcf, &e[i], &e[i + 1],
                                                 &installed);
    }

    /* the other nodes' challenges that are gone from the server */

    ngx_shmtx_lock(&amcf->shpool->mutex);

    for (q = ngx_queue_head(&amcf->sh->challenges);
         q != ngx_queue_sentinel(&amcf->sh->challenges);
         q = next)
    {
        next = ngx_queue_next(q);
        c = ngx_queue_data(q, ngx_http_claw_acme_chall_t, queue);

        if (c->pid != 0) {
            continue;
        }

        if (c->expires < ngx_time()) {
            ngx_queue_remove(q);
            ngx_slab_free_locked(amcf->shpool, c);
            continue;
        }

        name_len = c->name_len;
        token_len = c->token_len;
        found = 0;

        for (i = 0; i < reply->nelts; i += 2) {
            if (e[i].type == NGX_HTTP_CLAW_RESP_STRING
                && e[i].len == token_len
                && ngx_memcmp(e[i].str, c->data + name_len, token_len) == 0)
            {
                found = 1;
                break;
            }
        }

        if (!found) {
            ngx_queue_remove(q);
            ngx_slab_free_locked(amcf->shpool, c);
        }
    }

    ngx_shmtx_unlock(&amcf->shpool->mutex);

done:

    ngx_http_claw_acme_poll_done(poll);
}


/*
 * One challenge from the server, checked as anything the server says
 * (it may be another program's data, or damaged): a malformed one is
 * logged and removed, one of this node or one expired left alone.
 */

static ngx_int_t
ngx_http_claw_acme_take_challenge(ngx_http_claw_acme_main_conf_t *amcf,
    ngx_http_claw_resp_t *field, ngx_http_claw_resp_t *blob,
    ngx_uint_t *installed)
{
    u_char                      *p, *last, *data;
    size_t                       size, len[8];
    time_t                       expires;
    ngx_int_t                    n;
    ngx_str_t                    args[3];
    ngx_uint_t                   i, type;
    ngx_queue_t                 *q;
    ngx_pool_t                  *pool;
    ngx_http_claw_cluster_t     *cl;
    ngx_http_claw_acme_chall_t  *c;

    cl = amcf->cluster;
    expires = 0;
    type = 0;

    if (field->type != NGX_HTTP_CLAW_RESP_STRING
        || blob->type != NGX_HTTP_CLAW_RESP_STRING)
    {
        goto malformed;
    }

    p = (u_char *) blob->str;
    last = p + blob->len;

    /*
     * "1 expires type node name token keyauth cert0 key0 cert1 key1\n",
     * the last eight the lengths of what follows
     */

    data = ngx_strlchr(p, last, '\n');

    if (data == NULL || last - p < 2 || p[0] != '1' || p[1] != ' ') {
        goto malformed;
    }

    p += 2;

    for (i = 0; i < 10; i++) {
        last = ngx_strlchr(p, data, ' ');
        if (last == NULL) {
            last = data;
        }

        n = ngx_atoi(p, last - p);

        /* no length beyond the blob: their sum cannot overflow */

        if (n == NGX_ERROR || (i > 1 && (size_t) n > blob->len)) {
            goto malformed;
        }

        if (i == 0) {
            expires = (time_t) n;

        } else if (i == 1) {
            type = (ngx_uint_t) n;

        } else {
            len[i - 2] = (size_t) n;
        }

        p = (last == data) ? data : last + 1;

        if (p == data && i < 9) {
            goto malformed;
        }
    }

    data++;

    size = 0;

    for (i = 0; i < 8; i++) {
        size += len[i];
    }

    if (size != (size_t) ((u_char *) blob->str + blob->len - data)
        || (type != NGX_HTTP_CLAW_ACME_HTTP_01
            && type != NGX_HTTP_CLAW_ACME_TLS_ALPN_01)
        || len[0] == 0 || len[1] == 0 || len[1] > NGX_HTTP_CLAW_HOST_MAX
        || len[2] == 0 || len[2] > NGX_HTTP_CLAW_ACME_TOKEN_MAX
        || len[3] == 0 || len[3] > 2 * NGX_HTTP_CLAW_ACME_TOKEN_MAX
        || len[2] != field->len
        || ngx_memcmp(data + len[0] + len[1], field->str, len[2]) != 0)
    {
        goto malformed;
    }

    for (i = 0; i < len[2]; i++) {
        if (!ngx_http_claw_acme_token_char(field->str[i])) {
            goto malformed;
        }
    }

    for (i = 4; i < 8; i++) {
        if (len[i] > 0xffff) {
            goto malformed;
        }
    }

    if (type == NGX_HTTP_CLAW_ACME_TLS_ALPN_01
        && (len[4] == 0 || len[5] == 0 || len[6] == 0 || len[7] == 0))
    {
        goto malformed;
    }

    if (expires < ngx_time()) {

        /* left behind by a node that stopped before it withdrew it */

        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "claw_acme: an expired challenge of node \"%*s\" "
                      "removed from the cluster server", len[0], data);
        goto remove;
    }

    /* its own */

    if (len[0] == cl->node.len && ngx_memcmp(data, cl->node.data, len[0]) == 0)
    {
        return NGX_OK;
    }

    data += len[0];

    ngx_shmtx_lock(&amcf->shpool->mutex);

    for (q = ngx_queue_head(&amcf->sh->challenges);
         q != ngx_queue_sentinel(&amcf->sh->challenges);
         q = ngx_queue_next(q))
    {
        c = ngx_queue_data(q, ngx_http_claw_acme_chall_t, queue);

        if (c->name_len == len[1] && c->token_len == len[2]
            && ngx_memcmp(c->data, data, len[1] + len[2]) == 0)
        {
            ngx_shmtx_unlock(&amcf->shpool->mutex);
            return NGX_OK;
        }
    }

    c = ngx_slab_alloc_locked(amcf->shpool,
                              offsetof(ngx_http_claw_acme_chall_t, data)
                              + size - len[0]);
    if (c == NULL) {
        ngx_shmtx_unlock(&amcf->shpool->mutex);

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "claw_acme: no room in zone \"%V\" for the challenge "
                      "of \"%*s\" from the cluster",
                      &amcf->shm_zone->shm.name, len[1], data);
        return NGX_ERROR;
    }

    /* pid 0: another node's, removed when the server no longer has it */

    c->pid = 0;
    c->expires = expires;
    c->type = type;
    c->name_len = (uint16_t) len[1];
    c->token_len = (uint16_t) len[2];
    c->keyauth_len = (uint16_t) len[3];
    c->cert_len[0] = (uint16_t) len[4];
    c->key_len[0] = (uint16_t) len[5];
    c->cert_len[1] = (uint16_t) len[6];
    c->key_len[1] = (uint16_t) len[7];

    ngx_memcpy(c->data, data, size - len[0]);

    ngx_queue_insert_tail(&amcf->sh->challenges, &c->queue);

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    (*installed)++;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "claw_acme: answering the challenge of \"%*s\" for node "
                  "\"%*s\"", len[1], data, len[0], data - len[0]);

    /* acknowledged: the ordering node waits for every node's */

    pool = ngx_create_pool(256, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&args[0], "SADD");
    args[2] = cl->node;

    args[1].len = cl->prefix.len + sizeof("acme:ack:") - 1 + len[2];
    args[1].data = ngx_pnalloc(pool, args[1].len);

    if (args[1].data != NULL) {
        ngx_sprintf(args[1].data, "%Vacme:ack:%*s", &cl->prefix, len[2],
                    field->str);

        if (ngx_http_claw_redis_command(&cl->cmd, ngx_http_claw_acme_ignore,
                                        NULL, cl->redis.timeout, 3, args)
            == NGX_OK)
        {
            ngx_str_set(&args[0], "PEXPIRE");
            ngx_str_set(&args[2], "600000");

            (void) ngx_http_claw_redis_command(&cl->cmd,
                                               ngx_http_claw_acme_ignore,
                                               NULL, cl->redis.timeout, 3,
                                               args);
        }
    }

    ngx_destroy_pool(pool);

    return NGX_OK;

malformed:

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "claw_acme: field \"%*s\" of \"%Vacme:ch\" in the cluster "
                  "server is not a challenge; removed",
                  field->type == NGX_HTTP_CLAW_RESP_STRING
                  ? ngx_min(field->len, 64) : 0,
                  field->str, &cl->prefix);

    if (field->type != NGX_HTTP_CLAW_RESP_STRING) {
        return NGX_ERROR;
    }

remove:

    pool = ngx_create_pool(256, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&args[0], "HDEL");
    args[2].data = (u_char *) field->str;
    args[2].len = field->len;

    if (ngx_http_claw_acme_cluster_key(pool, amcf, "ch", NULL, &args[1])
        == NGX_OK)
    {
        (void) ngx_http_claw_redis_command(&cl->cmd,
                                           ngx_http_claw_acme_ignore, NULL,
                                           cl->redis.timeout, 3, args);
    }

    ngx_destroy_pool(pool);

    return NGX_ERROR;
}


/* the certificates stored since the last look: newer ones are pulled */

static void
ngx_http_claw_acme_news(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_acme_poll_t  *poll = data;

    time_t                  na;
    ngx_int_t               n;
    ngx_uint_t              i, j;
    ngx_http_claw_resp_t   *entry, *f, *name, *when;

    poll->more = 0;

    if (reply == NULL || reply->type != NGX_HTTP_CLAW_RESP_ARRAY
        || !poll->running)
    {
        goto done;
    }

    if (poll->last_len == 0) {

        /* the log's end, or its start if it is empty */

        if (reply->nelts == 0) {
            poll->last_len = ngx_cpymem(poll->last, "0-0", 3) - poll->last;

        } else if (reply->elts[0].type == NGX_HTTP_CLAW_RESP_ARRAY
                   && reply->elts[0].nelts == 2
                   && reply->elts[0].elts[0].type == NGX_HTTP_CLAW_RESP_STRING
                   && reply->elts[0].elts[0].len < sizeof(poll->last))
        {
            poll->last_len = reply->elts[0].elts[0].len;
            ngx_memcpy(poll->last, reply->elts[0].elts[0].str,
                       poll->last_len);
        }

        goto done;
    }

    for (i = 0; i < reply->nelts; i++) {
        entry = &reply->elts[i];

        if (entry->type != NGX_HTTP_CLAW_RESP_ARRAY || entry->nelts != 2
            || entry->elts[0].type != NGX_HTTP_CLAW_RESP_STRING
            || entry->elts[0].len >= sizeof(poll->last)
            || entry->elts[0].len == 0)
        {
            /* with no id to go on from: the log is read from its end */

            poll->last_len = 0;
            break;
        }

        poll->last_len = entry->elts[0].len;
        ngx_memcpy(poll->last, entry->elts[0].str, poll->last_len);

        if (entry->elts[1].type != NGX_HTTP_CLAW_RESP_ARRAY) {
            continue;
        }

        f = entry->elts[1].elts;
        name = NULL;
        when = NULL;

        for (j = 0; j + 1 < entry->elts[1].nelts; j += 2) {
            if (ngx_http_claw_resp_is(&f[j], "domain")) {
                name = &f[j + 1];

            } else if (ngx_http_claw_resp_is(&f[j], "not_after")) {
                when = &f[j + 1];
            }
        }

        if (name == NULL || when == NULL
            || name->type != NGX_HTTP_CLAW_RESP_STRING
            || when->type != NGX_HTTP_CLAW_RESP_STRING
            || name->len == 0 || name->len > NGX_HTTP_CLAW_HOST_MAX)
        {
            continue;
        }

        n = ngx_atotm((u_char *) when->str, when->len);
        if (n == NGX_ERROR) {
            continue;
        }

        na = (time_t) n;

        poll->pull(poll->amcf, (u_char *) name->str, name->len, na);
    }

    poll->more = (reply->nelts == 100);

done:

    ngx_http_claw_acme_poll_done(poll);
}


static void
ngx_http_claw_acme_ignore(void *data, ngx_http_claw_resp_t *reply)
{
}
