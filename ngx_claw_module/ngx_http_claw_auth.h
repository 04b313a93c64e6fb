
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_AUTH_H_INCLUDED_
#define _NGX_HTTP_CLAW_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"


ngx_int_t ngx_http_claw_auth_post_read(ngx_http_request_t *r);
ngx_int_t ngx_http_claw_auth_extract(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx);
ngx_int_t ngx_http_claw_auth(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx);

ngx_int_t ngx_http_claw_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

char *ngx_http_claw_cookie_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_claw_auth_fail_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_claw_token_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_CLAW_AUTH_H_INCLUDED_ */
