
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_REGISTRY_H_INCLUDED_
#define _NGX_HTTP_CLAW_REGISTRY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_parse.h"
#include "ngx_http_claw_tables.h"
#include "ngx_http_claw_journal.h"


/*
 * The registry file and its journal, read at configuration time into
 * process memory, prepared in the zone while the cycle is made, and put
 * in force only when the cycle commits.
 */

typedef struct {
    ngx_http_claw_tables_t      *tables;
    ngx_http_claw_journal_t     *journal;
    ngx_array_t                 *suffixes;      /* every claw_domain */

    /* configuration time only, until the cycle commits or fails */
    ngx_array_t                 *loaded;        /* ngx_http_claw_tconf_t * */
    ngx_http_claw_change_t      *changes;       /* prepared in the zone */
    ngx_uint_t                   nchanges;
    u_char                      *fbuf;          /* the file as read */
    size_t                       fsize;
    u_char                      *jbuf;          /* the journal as read */
    size_t                       jread;
    ngx_fd_t                     conf_jfd;      /* locked until committed */
    unsigned                     prepared:1;
    unsigned                     reused:1;      /* the old cycle's zone */
    unsigned                     committed:1;
} ngx_http_claw_registry_t;


ngx_int_t ngx_http_claw_registry_read(ngx_conf_t *cf,
    ngx_http_claw_registry_t *reg);
ngx_int_t ngx_http_claw_registry_prepare(ngx_http_claw_registry_t *reg,
    ngx_uint_t reused, ngx_log_t *log);
void ngx_http_claw_registry_commit(ngx_http_claw_registry_t *reg,
    ngx_log_t *log);
const char *ngx_http_claw_registry_domain(ngx_array_t *suffixes, u_char *name,
    size_t len, ngx_str_t **sfx);


#endif /* _NGX_HTTP_CLAW_REGISTRY_H_INCLUDED_ */
