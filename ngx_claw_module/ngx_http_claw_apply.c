
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Changes that come from elsewhere (the cluster's log and registry) as
 * journal records, "+ <tenant line>" or "- <id>", a batch at a time:
 * written to this node's journal first, in one synced append, so that a
 * restart without the cluster serves them, then put in force in order,
 * as the admin API does with its own changes.  A batch stops before a
 * record of a tenant already in it, and before one that cannot be
 * prepared while others are (a domain another record of the batch gives
 * up, room another frees): those come in the next batch, after the
 * records before them are committed.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_parse.h"
#include "ngx_http_claw_apply.h"


#define NGX_HTTP_CLAW_APPLY_MAX  512


typedef struct {
    ngx_http_claw_change_t       ch;
    u_char                      *id;
    size_t                       id_len;
    unsigned                     prepared:1;
    unsigned                     remove:1;
} ngx_http_claw_apply_one_t;


typedef struct {
    ngx_http_claw_applier_t     *applier;
    ngx_http_claw_jop_t          op;
    ngx_pool_t                  *pool;
    ngx_http_claw_apply_item_t  *items;
    ngx_http_claw_apply_one_t   *ones;
    ngx_uint_t                   n;             /* asked */
    ngx_uint_t                   taken;         /* in this batch */
    ngx_http_claw_apply_pt       handler;
    void                        *data;
    ngx_int_t                    rc;
} ngx_http_claw_apply_batch_t;


static void ngx_http_claw_apply_locked(ngx_http_claw_jop_t *op);
static ngx_uint_t ngx_http_claw_apply_seen(ngx_http_claw_apply_batch_t *b,
    ngx_uint_t i);
static ngx_int_t ngx_http_claw_apply_prepare(ngx_http_claw_apply_batch_t *b,
    ngx_uint_t i, ngx_uint_t quiet);
static void ngx_http_claw_apply_written(ngx_http_claw_jop_t *op);
static void ngx_http_claw_apply_done(ngx_http_claw_apply_batch_t *b);


void
ngx_http_claw_apply_init(ngx_http_claw_applier_t *ap,
    ngx_http_claw_tables_t *tables, ngx_http_claw_journal_t *journal,
    ngx_log_t *log)
{
    ap->tables = tables;
    ap->journal = journal;
    ap->log = log;
    ap->batch = NULL;
}


/* the items stay the caller's until the handler runs */

ngx_int_t
ngx_http_claw_apply(void *applier, ngx_http_claw_apply_item_t *items,
    ngx_uint_t n, ngx_http_claw_apply_pt handler, void *data)
{
    ngx_http_claw_applier_t  *ap = applier;

    ngx_pool_t                   *pool;
    ngx_http_claw_apply_batch_t  *b;

    if (ap->batch || n == 0) {
        return NGX_ERROR;
    }

    n = ngx_min(n, NGX_HTTP_CLAW_APPLY_MAX);

    pool = ngx_create_pool(16384, ap->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    b = ngx_pcalloc(pool, sizeof(ngx_http_claw_apply_batch_t));
    if (b == NULL) {
        goto failed;
    }

    b->ones = ngx_pcalloc(pool, n * sizeof(ngx_http_claw_apply_one_t));
    if (b->ones == NULL) {
        goto failed;
    }

    b->pool = pool;
    b->applier = ap;
    b->items = items;
    b->n = n;
    b->handler = handler;
    b->data = data;

    b->op.handler = ngx_http_claw_apply_locked;
    b->op.data = b;

    ap->batch = b;

    ngx_http_claw_journal_begin(ap->journal, &b->op);

    return NGX_OK;

failed:

    ngx_destroy_pool(pool);
    return NGX_ERROR;
}


static void
ngx_http_claw_apply_locked(ngx_http_claw_jop_t *op)
{
    ngx_http_claw_apply_batch_t  *b = op->data;

    u_char                   *buf, *p;
    size_t                    size;
    ngx_int_t                 rc;
    ngx_uint_t                i, write;
    ngx_http_claw_applier_t  *ap;

    ap = b->applier;

    /* a reload moved the registry to a new zone: the new workers apply */

    if (op->rc == NGX_OK && ngx_http_claw_tables_retired(ap->tables)) {
        b->rc = NGX_AGAIN;
        ngx_http_claw_apply_done(b);
        return;
    }

    if (op->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ap->log, op->err,
                      "claw cluster: \"%V\" waits: %s", &b->items[0].key,
                      op->rc == NGX_BUSY ? "another process holds the "
                                           "journal's lock"
                                         : op->failed);
        b->rc = NGX_AGAIN;
        ngx_http_claw_apply_done(b);
        return;
    }

    size = 0;

    for (i = 0; i < b->n; i++) {
        size += b->items[i].rec.len + 1;
    }

    buf = ngx_pnalloc(b->pool, size);
    if (buf == NULL) {
        b->rc = NGX_AGAIN;
        ngx_http_claw_apply_done(b);
        return;
    }

    p = buf;
    write = 0;

    for (i = 0; i < b->n; i++) {

        /* a tenant at most once a batch: its next record waits */

        if (ngx_http_claw_apply_seen(b, i)) {
            break;
        }

        rc = ngx_http_claw_apply_prepare(b, i, write);

        if (rc == NGX_BUSY) {
            break;                      /* the next batch takes it */
        }

        b->items[i].rc = (rc == NGX_DECLINED) ? NGX_DECLINED
                         : (rc == NGX_ABORT) ? NGX_BUSY : NGX_OK;

        if (rc == NGX_OK) {
            p = ngx_cpymem(p, b->items[i].rec.data, b->items[i].rec.len);
            *p++ = '\n';
            write = 1;
        }
    }

    if (i == 0) {
        b->rc = NGX_AGAIN;              /* out of memory */
        ngx_http_claw_apply_done(b);
        return;
    }

    b->taken = i;
    b->rc = NGX_OK;

    if (!write) {
        ngx_http_claw_apply_done(b);
        return;
    }

    op->handler = ngx_http_claw_apply_written;

    ngx_http_claw_journal_write(ap->journal, op, buf, p - buf);
}


/* the record's tenant, and whether an earlier record of the batch has it */

static ngx_uint_t
ngx_http_claw_apply_seen(ngx_http_claw_apply_batch_t *b, ngx_uint_t i)
{
    u_char      *p, *end, *id;
    ngx_uint_t   j;

    p = b->items[i].rec.data;
    end = p + b->items[i].rec.len;

    if (end - p < 3) {
        return 0;
    }

    id = p + 2;

    for (p = id; p < end && *p != ' ' && *p != '\t'; p++) {
        /* void */
    }

    b->ones[i].id = id;
    b->ones[i].id_len = p - id;

    for (j = 0; j < i; j++) {
        if (b->ones[j].id_len == b->ones[i].id_len
            && ngx_strncasecmp(b->ones[j].id, id, p - id) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * NGX_OK: to be written; NGX_DONE: nothing changes; NGX_DECLINED: never;
 * NGX_ABORT: a domain of another tenant, deferred by the caller;
 * NGX_BUSY: not in this batch ("quiet": others are prepared already, so
 * a refusal may be theirs to lift).
 */

static ngx_int_t
ngx_http_claw_apply_prepare(ngx_http_claw_apply_batch_t *b, ngx_uint_t i,
    ngx_uint_t quiet)
{
    u_char                      *p, *line;
    size_t                       len, head;
    ngx_int_t                    rc;
    ngx_str_t                    owner;
    ngx_http_claw_entry_t        e;
    ngx_http_claw_error_t        err;
    ngx_http_claw_tconf_t       *tc;
    ngx_http_claw_applier_t     *ap;
    ngx_http_claw_apply_one_t   *one;
    ngx_http_claw_apply_item_t  *item;

    ap = b->applier;
    item = &b->items[i];
    one = &b->ones[i];

    p = item->rec.data;
    len = item->rec.len;

    if (len < 3 || (p[0] != '+' && p[0] != '-') || p[1] != ' '
        || memchr(p, '\n', len) != NULL)
    {
        goto malformed;
    }

    if (p[0] == '-') {
        if (!ngx_http_claw_valid_id(p + 2, len - 2)) {
            goto malformed;
        }

        if (ngx_http_claw_tables_get(ap->tables, p + 2, len - 2, b->pool)
            == NULL)
        {
            return NGX_DONE;
        }

        one->remove = 1;
        return NGX_OK;
    }

    /* the parser lowercases in place: the record is written as parsed */

    line = p + 2;

    rc = ngx_http_claw_parse_line(line, len - 2, &e, &err);

    if (rc != 1) {
        if (rc == -1) {
            ngx_log_error(NGX_LOG_ERR, ap->log, 0,
                          "claw cluster: \"%V\" skipped: %s \"%*s\"",
                          &item->key, err.reason, err.what.len,
                          err.what.data);
            return NGX_DECLINED;
        }

        goto malformed;
    }

    tc = ngx_palloc(b->pool, ngx_http_claw_tconf_size(&e, &head));
    if (tc == NULL) {
        return NGX_BUSY;
    }

    ngx_http_claw_tconf_build(tc, &e);

    ngx_str_null(&owner);

    rc = ngx_http_claw_tables_prepare(ap->tables, tc, &one->ch, &owner,
                                      b->pool);

    if (rc != NGX_OK && quiet) {
        return NGX_BUSY;
    }

    if (rc == NGX_BUSY && item->defer) {
        return NGX_ABORT;
    }

    if (rc == NGX_BUSY) {
        ngx_log_error(NGX_LOG_ERR, ap->log, 0,
                      "claw cluster: \"%V\" skipped: a domain of tenant "
                      "\"%*s\" belongs to tenant \"%V\" here",
                      &item->key, e.id.len, e.id.data, &owner);
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ap->log, 0,
                      "claw cluster: \"%V\" skipped: claw zone \"%V\" is "
                      "full, tenant \"%*s\" not changed", &item->key,
                      &ap->tables->shm_zone->shm.name, e.id.len, e.id.data);
        return NGX_DECLINED;
    }

    if (one->ch.same) {
        ngx_http_claw_tables_abort(ap->tables, &one->ch);
        return NGX_DONE;
    }

    one->prepared = 1;

    return NGX_OK;

malformed:

    ngx_log_error(NGX_LOG_ERR, ap->log, 0,
                  "claw cluster: \"%V\" skipped: not a registry record",
                  &item->key);

    return NGX_DECLINED;
}


static void
ngx_http_claw_apply_written(ngx_http_claw_jop_t *op)
{
    ngx_http_claw_apply_batch_t  *b = op->data;

    ngx_uint_t                  i;
    ngx_http_claw_applier_t    *ap;
    ngx_http_claw_apply_one_t  *one;

    ap = b->applier;

    if (op->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ap->log, op->err,
                      "claw cluster: %s failed for \"%V\" and what follows; "
                      "trying again", op->failed, &b->items[0].key);
        b->rc = NGX_AGAIN;
        ngx_http_claw_apply_done(b);
        return;
    }

    for (i = 0; i < b->taken; i++) {
        one = &b->ones[i];

        if (b->items[i].rc != NGX_OK) {
            continue;
        }

        if (one->remove) {
            (void) ngx_http_claw_tables_remove(ap->tables, one->id,
                                               one->id_len);

        } else if (one->prepared) {
            (void) ngx_http_claw_tables_commit(ap->tables, &one->ch);
            one->prepared = 0;
        }
    }

    ngx_http_claw_apply_done(b);
}


static void
ngx_http_claw_apply_done(ngx_http_claw_apply_batch_t *b)
{
    ngx_int_t                 rc;
    ngx_uint_t                i, taken;
    ngx_http_claw_apply_pt    handler;
    void                     *data;
    ngx_http_claw_applier_t  *ap;

    ap = b->applier;

    for (i = 0; i < b->n; i++) {
        if (b->ones[i].prepared) {
            ngx_http_claw_tables_abort(ap->tables, &b->ones[i].ch);
        }
    }

    ngx_http_claw_journal_end(ap->journal);

    rc = b->rc;
    taken = (rc == NGX_OK) ? b->taken : 0;
    handler = b->handler;
    data = b->data;

    ap->batch = NULL;

    ngx_destroy_pool(b->pool);

    handler(data, taken, rc);
}
