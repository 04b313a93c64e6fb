
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_STORE_H_INCLUDED_
#define _NGX_HTTP_CLAW_STORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_registry.h"


ngx_int_t ngx_http_claw_store_lock(ngx_http_claw_registry_t *reg,
    ngx_log_t *log);
void ngx_http_claw_store_unlock(ngx_http_claw_registry_t *reg);
ngx_int_t ngx_http_claw_store_append(ngx_http_claw_registry_t *reg,
    u_char *rec, size_t len, ngx_log_t *log);
ngx_int_t ngx_http_claw_store_fold(ngx_http_claw_registry_t *reg,
    ngx_fd_t jfd, u_char *old, size_t osize, u_char *jbuf, size_t jsize,
    ngx_pool_t *pool, ngx_log_t *log);
void ngx_http_claw_store_init_worker(ngx_http_claw_registry_t *reg,
    ngx_log_t *log);
void ngx_http_claw_store_exit_worker(ngx_http_claw_registry_t *reg);


#endif /* _NGX_HTTP_CLAW_STORE_H_INCLUDED_ */
