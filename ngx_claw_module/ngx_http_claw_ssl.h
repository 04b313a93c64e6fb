
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_SSL_H_INCLUDED_
#define _NGX_HTTP_CLAW_SSL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"


char *ngx_http_claw_ssl_merge(ngx_conf_t *cf, ngx_http_claw_srv_conf_t *cscf);
ngx_int_t ngx_http_claw_ssl_sni_check(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx);
ngx_int_t ngx_http_claw_ssl_headers(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx, ngx_http_claw_loc_conf_t *clcf);
char *ngx_http_claw_hsts(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


#endif /* _NGX_HTTP_CLAW_SSL_H_INCLUDED_ */
