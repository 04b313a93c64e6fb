
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_WAKE_H_INCLUDED_
#define _NGX_HTTP_CLAW_WAKE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"


ngx_int_t ngx_http_claw_wake(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx);
ngx_uint_t ngx_http_claw_wake_calling(ngx_http_claw_ctx_t *ctx);
ngx_int_t ngx_http_claw_wake_refuse(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx, time_t retry);
void ngx_http_claw_wake_cleanup(ngx_http_claw_ctx_t *ctx);

char *ngx_http_claw_wake_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_CLAW_WAKE_H_INCLUDED_ */
