
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_APPLY_H_INCLUDED_
#define _NGX_HTTP_CLAW_APPLY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_tables.h"
#include "ngx_http_claw_journal.h"


/* a journal record from elsewhere: "+ <tenant line>" or "- <id>" */
typedef struct {
    ngx_str_t                    rec;
    ngx_str_t                    key;           /* for messages */

    /* a domain of another tenant is NGX_BUSY, not logged */
    ngx_uint_t                   defer;

    /*
     * NGX_OK, applied (or already so); NGX_DECLINED, refused for good
     * (malformed, a domain of another tenant, the zone full), an error
     * logged; NGX_BUSY, deferred
     */
    ngx_int_t                    rc;
} ngx_http_claw_apply_item_t;


/*
 * The first n items were handled, their rc set; or rc is NGX_AGAIN: the
 * journal could not take them now, nothing changed, try again later.
 */
typedef void (*ngx_http_claw_apply_pt)(void *data, ngx_uint_t n,
    ngx_int_t rc);


typedef struct {
    ngx_http_claw_tables_t      *tables;
    ngx_http_claw_journal_t     *journal;
    ngx_log_t                   *log;
    void                        *batch;         /* the one under way */
} ngx_http_claw_applier_t;


void ngx_http_claw_apply_init(ngx_http_claw_applier_t *ap,
    ngx_http_claw_tables_t *tables, ngx_http_claw_journal_t *journal,
    ngx_log_t *log);
ngx_int_t ngx_http_claw_apply(void *applier,
    ngx_http_claw_apply_item_t *items, ngx_uint_t n,
    ngx_http_claw_apply_pt handler, void *data);


#endif /* _NGX_HTTP_CLAW_APPLY_H_INCLUDED_ */
