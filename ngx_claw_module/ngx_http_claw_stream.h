
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_STREAM_H_INCLUDED_
#define _NGX_HTTP_CLAW_STREAM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* fills b from b->last to b->end; returns 1 when the answer is whole */
typedef ngx_uint_t (*ngx_http_claw_fill_pt)(void *data, ngx_buf_t *b);


ngx_int_t ngx_http_claw_stream(ngx_http_request_t *r,
    ngx_http_claw_fill_pt fill, void *data);


#endif /* _NGX_HTTP_CLAW_STREAM_H_INCLUDED_ */
