
/*
 * Copyright (C) ngx_claw_module authors
 *
 * claw_balancer: the peer of an upstream is the resolved tenant's
 * container.  With "keepalive" after it, the keepalive module wraps this
 * balancer and pools connections by the peer's sockaddr, compared byte
 * for byte over socklen.  Each tenant's address therefore carries an
 * 8-byte tag (the tenant's unique id) after the part the kernel reads,
 * so a pooled connection is only ever found again by the same tenant,
 * even when an address is reassigned from one tenant to another.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_balancer.h"


typedef struct {
    ngx_http_claw_ctx_t         *ctx;
} ngx_http_claw_peer_data_t;


static ngx_int_t ngx_http_claw_init_upstream(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_claw_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_claw_get_peer(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_claw_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state);

#if (NGX_HTTP_SSL)
static ngx_int_t ngx_http_claw_set_session(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_claw_save_session(ngx_peer_connection_t *pc,
    void *data);
#endif


static ngx_str_t  ngx_http_claw_server_name = ngx_string("claw tenant");


char *
ngx_http_claw_balancer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_upstream_server_t    *us;
    ngx_http_upstream_srv_conf_t  *uscf;

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    /*
     * "keepalive" wraps whatever balancer is set when it is read; read
     * before us, it would wrap round-robin and be lost silently.
     */

    if (uscf->peer.init_upstream) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"claw_balancer\" must be the first balancing "
                           "directive in upstream \"%V\", before "
                           "\"keepalive\"", &uscf->host);
        return NGX_CONF_ERROR;
    }

    if (uscf->servers == NULL || uscf->servers->nelts) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "upstream \"%V\" with \"claw_balancer\" takes its "
                           "peers from the tenant registry and cannot have "
                           "\"server\" lines", &uscf->host);
        return NGX_CONF_ERROR;
    }

    /* the upstream block wants a server; this one stands for the tenant */

    us = ngx_array_push(uscf->servers);
    if (us == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(us, sizeof(ngx_http_upstream_server_t));
    us->name = ngx_http_claw_server_name;

    uscf->flags = NGX_HTTP_UPSTREAM_CREATE;
    uscf->peer.init_upstream = ngx_http_claw_init_upstream;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_claw_init_upstream(ngx_conf_t *cf, ngx_http_upstream_srv_conf_t *us)
{
    if (us->servers->nelts != 1) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "upstream \"%V\" with \"claw_balancer\" cannot have "
                      "\"server\" lines in %s:%ui",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    us->peer.init = ngx_http_claw_init_peer;

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    uint64_t                    tag;
    ngx_http_claw_ctx_t        *ctx;
    ngx_http_upstream_t        *u;
    ngx_http_claw_tconf_t      *tc;
    ngx_http_claw_loc_conf_t   *clcf;
    ngx_http_claw_peer_data_t  *pd;

    pd = ngx_palloc(r->pool, sizeof(ngx_http_claw_peer_data_t));
    if (pd == NULL) {
        return NGX_ERROR;
    }

    /*
     * Only a request admitted by "claw on" in the location that proxies
     * reaches a container: not one sent on by error_page to a location
     * without it.
     */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_claw_module);
    ctx = ngx_http_claw_get_ctx(r->main);

    if (!clcf->enable || (ctx && !ctx->admitted)) {
        ctx = NULL;
    }

    if (ctx && ctx->tenant && ctx->peer_len == 0) {
        tc = ctx->tconf;
        tag = ctx->tenant->uid;

        ngx_memcpy(&ctx->peer, ngx_http_claw_tconf_addr(tc), tc->socklen);
        ngx_memcpy((u_char *) &ctx->peer + tc->socklen, &tag,
                   NGX_HTTP_CLAW_TAG_LEN);

        ctx->peer_len = tc->socklen + NGX_HTTP_CLAW_TAG_LEN;
    }

    pd->ctx = ctx;

    u = r->upstream;

    u->peer.data = pd;
    u->peer.get = ngx_http_claw_get_peer;
    u->peer.free = ngx_http_claw_free_peer;
    u->peer.tries = 1;

#if (NGX_HTTP_SSL)
    u->peer.set_session = ngx_http_claw_set_session;
    u->peer.save_session = ngx_http_claw_save_session;
#endif

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_get_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_claw_peer_data_t  *pd = data;

    ngx_http_claw_ctx_t  *ctx;

    ctx = pd->ctx;

    if (ctx == NULL || ctx->peer_len == 0) {
        ngx_log_error(NGX_LOG_ERR, pc->log, 0,
                      "claw: no tenant admitted by \"claw on\" for this "
                      "request, not connecting to any container");
        pc->name = &ngx_http_claw_server_name;
        return NGX_BUSY;
    }

    pc->sockaddr = &ctx->peer.sockaddr;
    pc->socklen = ctx->peer_len;
    pc->name = &ctx->upstream;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                   "claw balancer: tenant \"%V\" peer \"%V\" uid %uL",
                   &ctx->id, &ctx->upstream, ctx->tenant->uid);

    return NGX_OK;
}


static void
ngx_http_claw_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    pc->tries = 0;
}


#if (NGX_HTTP_SSL)

/* TLS sessions to containers are not cached: they would cross tenants */

static ngx_int_t
ngx_http_claw_set_session(ngx_peer_connection_t *pc, void *data)
{
    return NGX_OK;
}


static void
ngx_http_claw_save_session(ngx_peer_connection_t *pc, void *data)
{
}

#endif
