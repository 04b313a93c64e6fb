
/*
 * Copyright (C) ngx_claw_module authors
 *
 * A change that comes from elsewhere (the cluster's log) as a journal
 * record, "+ <tenant line>" or "- <id>": written to this node's journal
 * first, so that a restart without the cluster serves it, then put in
 * force, as the admin API does with its own changes.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_parse.h"
#include "ngx_http_claw_apply.h"


struct ngx_http_claw_apply_rec_s {
    ngx_queue_t                  queue;
    ngx_http_claw_applier_t     *applier;
    ngx_http_claw_jop_t          op;
    ngx_http_claw_change_t       ch;
    ngx_pool_t                  *pool;
    ngx_http_claw_apply_pt       handler;
    void                        *data;
    ngx_str_t                    key;
    u_char                      *rec;
    size_t                       len;
    ngx_int_t                    rc;
    unsigned                     prepared:1;
    unsigned                     remove:1;
};


static void ngx_http_claw_apply_next(ngx_http_claw_applier_t *ap);
static void ngx_http_claw_apply_locked(ngx_http_claw_jop_t *op);
static ngx_int_t ngx_http_claw_apply_prepare(ngx_http_claw_apply_rec_t *ar);
static void ngx_http_claw_apply_written(ngx_http_claw_jop_t *op);
static void ngx_http_claw_apply_done(ngx_http_claw_apply_rec_t *ar);


void
ngx_http_claw_apply_init(ngx_http_claw_applier_t *ap,
    ngx_http_claw_tables_t *tables, ngx_http_claw_journal_t *journal,
    ngx_log_t *log)
{
    ap->tables = tables;
    ap->journal = journal;
    ap->log = log;
    ap->busy = 0;

    ngx_queue_init(&ap->queue);
}


ngx_int_t
ngx_http_claw_apply(void *applier, u_char *rec, size_t len, ngx_str_t *key,
    ngx_http_claw_apply_pt handler, void *data)
{
    ngx_http_claw_applier_t  *ap = applier;

    ngx_pool_t                 *pool;
    ngx_http_claw_apply_rec_t  *ar;

    pool = ngx_create_pool(1024 + len, ap->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    ar = ngx_pcalloc(pool, sizeof(ngx_http_claw_apply_rec_t));
    if (ar == NULL) {
        goto failed;
    }

    ar->pool = pool;
    ar->applier = ap;
    ar->handler = handler;
    ar->data = data;

    ar->rec = ngx_pnalloc(pool, len + 1 + key->len);
    if (ar->rec == NULL) {
        goto failed;
    }

    ngx_memcpy(ar->rec, rec, len);
    ar->rec[len] = '\n';
    ar->len = len + 1;

    ar->key.data = ar->rec + len + 1;
    ar->key.len = key->len;
    ngx_memcpy(ar->key.data, key->data, key->len);

    ar->op.handler = ngx_http_claw_apply_locked;
    ar->op.data = ar;

    ngx_queue_insert_tail(&ap->queue, &ar->queue);

    ngx_http_claw_apply_next(ap);

    return NGX_OK;

failed:

    ngx_destroy_pool(pool);
    return NGX_ERROR;
}


static void
ngx_http_claw_apply_next(ngx_http_claw_applier_t *ap)
{
    ngx_queue_t                *q;
    ngx_http_claw_apply_rec_t  *ar;

    if (ap->busy || ngx_queue_empty(&ap->queue)) {
        return;
    }

    q = ngx_queue_head(&ap->queue);
    ar = ngx_queue_data(q, ngx_http_claw_apply_rec_t, queue);

    ap->busy = 1;

    ngx_http_claw_journal_begin(ap->journal, &ar->op);
}


static void
ngx_http_claw_apply_locked(ngx_http_claw_jop_t *op)
{
    ngx_http_claw_apply_rec_t  *ar = op->data;

    ngx_http_claw_applier_t  *ap;

    ap = ar->applier;

    if (op->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ap->log, op->err,
                      "claw cluster: \"%V\" waits: %s", &ar->key,
                      op->rc == NGX_BUSY ? "another process holds the "
                                           "journal's lock"
                                         : op->failed);
        ar->rc = NGX_AGAIN;
        ngx_http_claw_apply_done(ar);
        return;
    }

    ar->rc = ngx_http_claw_apply_prepare(ar);

    if (ar->rc != NGX_OK) {
        if (ar->rc == NGX_DONE) {
            ar->rc = NGX_OK;            /* nothing to change */
        }

        ngx_http_claw_apply_done(ar);
        return;
    }

    op->handler = ngx_http_claw_apply_written;

    ngx_http_claw_journal_write(ap->journal, op, ar->rec, ar->len);
}


/* NGX_OK: to be written; NGX_DONE: nothing changes; NGX_DECLINED */

static ngx_int_t
ngx_http_claw_apply_prepare(ngx_http_claw_apply_rec_t *ar)
{
    u_char                   *p, *line;
    size_t                    len, head;
    ngx_int_t                 rc;
    ngx_str_t                 owner;
    ngx_http_claw_entry_t     e;
    ngx_http_claw_error_t     err;
    ngx_http_claw_tconf_t    *tc;
    ngx_http_claw_applier_t  *ap;

    ap = ar->applier;
    p = ar->rec;
    len = ar->len - 1;

    if (len < 3 || (p[0] != '+' && p[0] != '-') || p[1] != ' '
        || memchr(p, '\n', len) != NULL)
    {
        goto malformed;
    }

    if (p[0] == '-') {
        if (!ngx_http_claw_valid_id(p + 2, len - 2)) {
            goto malformed;
        }

        if (ngx_http_claw_tables_get(ap->tables, p + 2, len - 2, ar->pool)
            == NULL)
        {
            return NGX_DONE;
        }

        ar->remove = 1;
        return NGX_OK;
    }

    /* the parser lowercases in place: the record is written as parsed */

    line = p + 2;

    rc = ngx_http_claw_parse_line(line, len - 2, &e, &err);

    if (rc != 1) {
        if (rc == -1) {
            ngx_log_error(NGX_LOG_ERR, ap->log, 0,
                          "claw cluster: \"%V\" skipped: %s \"%*s\"",
                          &ar->key, err.reason, err.what.len,
                          err.what.data);
            return NGX_DECLINED;
        }

        goto malformed;
    }

    tc = ngx_palloc(ar->pool, ngx_http_claw_tconf_size(&e, &head));
    if (tc == NULL) {
        return NGX_AGAIN;
    }

    ngx_http_claw_tconf_build(tc, &e);

    ngx_str_null(&owner);

    rc = ngx_http_claw_tables_prepare(ap->tables, tc, &ar->ch, &owner,
                                      ar->pool);

    if (rc == NGX_BUSY) {
        ngx_log_error(NGX_LOG_ERR, ap->log, 0,
                      "claw cluster: \"%V\" skipped: a domain of tenant "
                      "\"%*s\" belongs to tenant \"%V\" here",
                      &ar->key, e.id.len, e.id.data, &owner);
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ap->log, 0,
                      "claw cluster: \"%V\" skipped: claw zone \"%V\" is "
                      "full, tenant \"%*s\" not changed", &ar->key,
                      &ap->tables->shm_zone->shm.name, e.id.len, e.id.data);
        return NGX_DECLINED;
    }

    if (ar->ch.same) {
        ngx_http_claw_tables_abort(ap->tables, &ar->ch);
        return NGX_DONE;
    }

    ar->prepared = 1;

    return NGX_OK;

malformed:

    ngx_log_error(NGX_LOG_ERR, ap->log, 0,
                  "claw cluster: \"%V\" skipped: not a registry record",
                  &ar->key);

    return NGX_DECLINED;
}


static void
ngx_http_claw_apply_written(ngx_http_claw_jop_t *op)
{
    ngx_http_claw_apply_rec_t  *ar = op->data;

    ngx_http_claw_applier_t  *ap;

    ap = ar->applier;

    if (op->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ap->log, op->err,
                      "claw cluster: %s failed for \"%V\"; trying again",
                      op->failed, &ar->key);
        ar->rc = NGX_AGAIN;
        ngx_http_claw_apply_done(ar);
        return;
    }

    if (ar->remove) {
        (void) ngx_http_claw_tables_remove(ap->tables, ar->rec + 2,
                                           ar->len - 3);

    } else {
        (void) ngx_http_claw_tables_commit(ap->tables, &ar->ch);
        ar->prepared = 0;
    }

    ngx_http_claw_apply_done(ar);
}


static void
ngx_http_claw_apply_done(ngx_http_claw_apply_rec_t *ar)
{
    ngx_int_t                 rc;
    ngx_http_claw_apply_pt    handler;
    void                     *data;
    ngx_http_claw_applier_t  *ap;

    ap = ar->applier;

    if (ar->prepared) {
        ngx_http_claw_tables_abort(ap->tables, &ar->ch);
    }

    ngx_http_claw_journal_end(ap->journal);

    ngx_queue_remove(&ar->queue);

    rc = ar->rc;
    handler = ar->handler;
    data = ar->data;

    ngx_destroy_pool(ar->pool);

    ap->busy = 0;

    handler(data, rc);

    ngx_http_claw_apply_next(ap);
}
