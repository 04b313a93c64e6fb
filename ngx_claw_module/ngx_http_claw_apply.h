
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_APPLY_H_INCLUDED_
#define _NGX_HTTP_CLAW_APPLY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_tables.h"
#include "ngx_http_claw_journal.h"


/*
 * rc: NGX_OK, applied (or already so); NGX_DECLINED, refused for good
 * (malformed, a domain of another tenant, the zone full), with an error
 * logged; NGX_AGAIN, the journal could not take it now: nothing changed,
 * try again later.
 */
typedef void (*ngx_http_claw_apply_pt)(void *data, ngx_int_t rc);

typedef struct ngx_http_claw_apply_rec_s  ngx_http_claw_apply_rec_t;


/* journal records from elsewhere, one at a time, in order */
typedef struct {
    ngx_http_claw_tables_t      *tables;
    ngx_http_claw_journal_t     *journal;
    ngx_log_t                   *log;
    ngx_queue_t                  queue;
    ngx_uint_t                   busy;
} ngx_http_claw_applier_t;


void ngx_http_claw_apply_init(ngx_http_claw_applier_t *ap,
    ngx_http_claw_tables_t *tables, ngx_http_claw_journal_t *journal,
    ngx_log_t *log);
ngx_int_t ngx_http_claw_apply(void *applier, u_char *rec, size_t len,
    ngx_str_t *key, ngx_http_claw_apply_pt handler, void *data);


#endif /* _NGX_HTTP_CLAW_APPLY_H_INCLUDED_ */
