
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_REDIS_H_INCLUDED_
#define _NGX_HTTP_CLAW_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include "ngx_http_claw_resp.h"


/* redis[s]://[[user]:password@]host[:port][/db] */
typedef struct {
    ngx_str_t                    url;           /* for messages */
    ngx_addr_t                   addr;
    ngx_str_t                    host;          /* as in the URL */
    ngx_ssl_t                   *ssl;           /* rediss:// */
    ngx_str_t                    ssl_name;      /* checked, and the SNI */
    ngx_str_t                    user;
    ngx_str_t                    password;
    ngx_uint_t                   db;
    ngx_msec_t                   connect_timeout;
    ngx_msec_t                   timeout;
    unsigned                     tls:1;         /* rediss:// */
} ngx_http_claw_redis_conf_t;


/* reply is NULL when the connection failed or closed before it came */
typedef void (*ngx_http_claw_redis_pt)(void *data,
    ngx_http_claw_resp_t *reply);

typedef struct ngx_http_claw_redis_cmd_s  ngx_http_claw_redis_cmd_t;


/*
 * One connection to the server on nginx's events, opened on the first
 * command; commands are pipelined and their replies come in order.  A
 * command waits at most its timeout for its reply, after which the
 * connection is closed and every command on it fails.
 */

typedef struct {
    ngx_http_claw_redis_conf_t  *conf;
    ngx_peer_connection_t        peer;
    ngx_log_t                   *log;
    ngx_buf_t                    in;
    ngx_buf_t                    out;
    ngx_queue_t                  pending;
    ngx_queue_t                  free;
    ngx_uint_t                   closes;        /* moves on every close */
    u_char                       error[160];    /* why it last closed */
    unsigned                     ready:1;       /* connected */
    unsigned                     gone:1;        /* freed: no new commands */
} ngx_http_claw_redis_t;


ngx_int_t ngx_http_claw_redis_parse_url(ngx_conf_t *cf, ngx_str_t *url,
    ngx_http_claw_redis_conf_t *conf, char **err);
ngx_int_t ngx_http_claw_redis_ssl(ngx_conf_t *cf,
    ngx_http_claw_redis_conf_t *conf, ngx_str_t *trusted, ngx_str_t *cert,
    ngx_str_t *key);
void ngx_http_claw_redis_init(ngx_http_claw_redis_t *rd,
    ngx_http_claw_redis_conf_t *conf, ngx_log_t *log);
ngx_int_t ngx_http_claw_redis_command(ngx_http_claw_redis_t *rd,
    ngx_http_claw_redis_pt handler, void *data, ngx_msec_t timeout,
    ngx_uint_t nargs, ngx_str_t *args);
void ngx_http_claw_redis_close(ngx_http_claw_redis_t *rd, const char *why);
void ngx_http_claw_redis_free(ngx_http_claw_redis_t *rd);
ngx_int_t ngx_http_claw_redis_probe(ngx_http_claw_redis_conf_t *conf,
    u_char *err, size_t size);


#endif /* _NGX_HTTP_CLAW_REDIS_H_INCLUDED_ */
