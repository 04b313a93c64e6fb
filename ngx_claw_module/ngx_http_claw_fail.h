
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_FAIL_H_INCLUDED_
#define _NGX_HTTP_CLAW_FAIL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* a client address: '4' + 4 bytes, '6' + a /64, 'u' for unix sockets */
#define NGX_HTTP_CLAW_FAIL_KEY  9


typedef struct {
    ngx_shm_zone_t              *shm_zone;
    ngx_slab_pool_t             *shpool;
    void                        *sh;
} ngx_http_claw_fails_t;


ngx_int_t ngx_http_claw_fail_add_zone(ngx_conf_t *cf,
    ngx_http_claw_fails_t *fails, ngx_str_t *name, size_t size);
time_t ngx_http_claw_fail_wait(ngx_http_claw_fails_t *fails, u_char *key,
    size_t len, ngx_uint_t limit);
void ngx_http_claw_fail_add(ngx_http_claw_fails_t *fails, u_char *key,
    size_t len, ngx_uint_t limit, ngx_log_t *log);
void ngx_http_claw_fail_debit(ngx_http_claw_fails_t *fails, u_char *key,
    size_t len, uint64_t others, ngx_uint_t limit, ngx_msec_t stale);


#endif /* _NGX_HTTP_CLAW_FAIL_H_INCLUDED_ */
