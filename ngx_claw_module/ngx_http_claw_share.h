
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_SHARE_H_INCLUDED_
#define _NGX_HTTP_CLAW_SHARE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_claw_tables.h"
#include "ngx_http_claw_fail.h"
#include "ngx_http_claw_cluster.h"


/* a worker's counts of one round, reported when it ends */
typedef struct {
    ngx_http_claw_cluster_t     *cluster;
    ngx_http_claw_tables_t      *tables;
    ngx_http_claw_fails_t       *fails;
    ngx_event_t                  tick;
    ngx_event_t                  beat;          /* worker 0: nodes seen */
    ngx_str_t                    nodes_key;
    uint32_t                     round;
    ngx_pool_t                  *pool;          /* the round's */
    ngx_array_t                 *rates;         /* counted this round */
    ngx_array_t                 *failures;
    ngx_pool_t                  *spool;         /* the round being sent */
    ngx_array_t                 *srates;
    ngx_array_t                 *sfailures;
    ngx_uint_t                   pending;
} ngx_http_claw_share_t;


ngx_int_t ngx_http_claw_share_init_worker(ngx_http_claw_share_t *sh,
    ngx_cycle_t *cycle);
void ngx_http_claw_share_exit_worker(ngx_http_claw_share_t *sh);
void ngx_http_claw_share_admitted(ngx_http_claw_share_t *sh,
    ngx_http_claw_tenant_t *t, ngx_http_claw_hold_t *hold, u_char *id,
    size_t len, uint64_t interval);
void ngx_http_claw_share_failed(ngx_http_claw_share_t *sh, u_char *key,
    size_t len, ngx_uint_t limit);


#endif /* _NGX_HTTP_CLAW_SHARE_H_INCLUDED_ */
