
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_MODULE_H_INCLUDED_
#define _NGX_HTTP_CLAW_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_parse.h"
#include "ngx_http_claw_registry.h"


typedef struct {
    ngx_http_claw_registry_t     registry;
} ngx_http_claw_main_conf_t;


typedef struct {
    ngx_flag_t                   enable;
    ngx_str_t                    tenant;
    ngx_array_t                 *domains;        /* of ngx_str_t */
    ngx_uint_t                   unknown_status;
} ngx_http_claw_loc_conf_t;


/*
 * Per request, kept in a pool cleanup so that it survives internal
 * redirects (which clear module contexts) and releases the tenant's
 * slot however the request ends.
 */

typedef struct {
    ngx_http_claw_registry_t    *registry;
    ngx_http_claw_tenant_t      *tenant;         /* pinned, or NULL */
    ngx_http_claw_tconf_t       *tconf;          /* the request's copy */

    ngx_str_t                    id;
    ngx_str_t                    upstream;

    /* the container's address with the tenant tag, for the balancer */
    ngx_sockaddr_t               peer;
    socklen_t                    peer_len;

    unsigned                     admitted:1;
} ngx_http_claw_ctx_t;


ngx_http_claw_ctx_t *ngx_http_claw_get_ctx(ngx_http_request_t *r);


extern ngx_module_t  ngx_http_claw_module;


#endif /* _NGX_HTTP_CLAW_MODULE_H_INCLUDED_ */
