
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_OPERATOR_H_INCLUDED_
#define _NGX_HTTP_CLAW_OPERATOR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* claw_admin_token: the operator's tokens, as digests */
typedef struct {
    ngx_uint_t                   n;             /* 0: off */
    u_char                      *digests;       /* n * 32 bytes */
} ngx_http_claw_operator_t;


char *ngx_http_claw_operator_directive(ngx_conf_t *cf,
    ngx_http_claw_operator_t **opp);
ngx_int_t ngx_http_claw_operator_check(ngx_http_request_t *r,
    ngx_http_claw_operator_t *op);


#endif /* _NGX_HTTP_CLAW_OPERATOR_H_INCLUDED_ */
