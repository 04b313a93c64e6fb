
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_LIVE_H_INCLUDED_
#define _NGX_HTTP_CLAW_LIVE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"


void ngx_http_claw_live_init_worker(ngx_http_claw_live_t *live,
    ngx_log_t *log);
void ngx_http_claw_live_add(ngx_http_claw_live_t *live,
    ngx_http_claw_ctx_t *ctx);
void ngx_http_claw_live_remove(ngx_http_claw_ctx_t *ctx);


#endif /* _NGX_HTTP_CLAW_LIVE_H_INCLUDED_ */
