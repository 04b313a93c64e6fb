
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Per-tenant counters, counted in the log phase into the tenant's slot
 * (which the request pins), and their Prometheus text exposition at a
 * claw_metrics location.  A tenant's counters live as long as its slot:
 * they survive reloads and configuration changes, and go with the
 * tenant.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_metrics.h"


static ngx_int_t ngx_http_claw_metrics_handler(ngx_http_request_t *r);
static int ngx_libc_cdecl ngx_http_claw_counters_cmp(const void *one,
    const void *two);


static char  *ngx_http_claw_classes[] = { "1xx", "2xx", "3xx", "4xx", "5xx" };


char *
ngx_http_claw_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    ngx_http_core_loc_conf_t  *core;

    if (clcf->metrics) {
        return "is duplicate";
    }

    clcf->metrics = 1;

    core = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    core->handler = ngx_http_claw_metrics_handler;

    return NGX_CONF_OK;
}


/* the log phase: every request of a tenant, whatever its answer */

ngx_int_t
ngx_http_claw_metrics_log(ngx_http_request_t *r)
{
    ngx_uint_t               status;
    ngx_http_claw_ctx_t     *ctx;
    ngx_http_claw_tenant_t  *t;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_claw_get_ctx(r);

    if (ctx == NULL || ctx->tenant == NULL || ctx->counted) {
        return NGX_OK;
    }

    ctx->counted = 1;
    t = ctx->tenant;

    status = r->err_status ? r->err_status : r->headers_out.status;

    if (status >= 100 && status < 600) {
        (void) ngx_atomic_fetch_add(&t->requests[status / 100 - 1], 1);
    }

    (void) ngx_atomic_fetch_add(&t->bytes_sent, r->connection->sent);

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_metrics_handler(ngx_http_request_t *r)
{
    u_char                     *p;
    size_t                      size;
    ngx_int_t                   rc;
    ngx_buf_t                  *b;
    ngx_uint_t                  i, j, n, pages;
    ngx_chain_t                 out;
    ngx_slab_pool_t            *shpool;
    ngx_http_claw_ctx_t        *ctx;
    ngx_http_claw_counters_t   *c;
    ngx_http_claw_main_conf_t  *cmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    /* as the admin API: never for a request routed to a tenant */

    ctx = ngx_http_claw_get_ctx(r->main);

    if (ctx && ctx->tenant) {
        return NGX_HTTP_FORBIDDEN;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    if (cmcf->registry.shm_zone == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    c = ngx_http_claw_registry_counters(&cmcf->registry, r->pool, &n);
    if (c == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_qsort(c, n, sizeof(ngx_http_claw_counters_t),
              ngx_http_claw_counters_cmp);

    /* per tenant: nine lines of a label and a number at most */

    size = 2048 + n * 9 * (sizeof("claw_requests_total{tenant=\"\","
                                  "code=\"2xx\"} \n") + NGX_HTTP_CLAW_ID_MAX
                           + NGX_ATOMIC_T_LEN);

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;

    p = ngx_cpymem(p,
        "# HELP claw_requests_total Requests of a tenant, by status class.\n"
        "# TYPE claw_requests_total counter\n",
        sizeof("# HELP claw_requests_total Requests of a tenant, by status "
               "class.\n# TYPE claw_requests_total counter\n") - 1);

    for (i = 0; i < n; i++) {
        for (j = 0; j < NGX_HTTP_CLAW_CLASSES; j++) {
            p = ngx_sprintf(p, "claw_requests_total{tenant=\"%*s\","
                            "code=\"%s\"} %uL\n", (size_t) c[i].id_len,
                            c[i].id, ngx_http_claw_classes[j],
                            c[i].requests[j]);
        }
    }

    p = ngx_sprintf(p,
        "# HELP claw_auth_failures_total Failed credential checks on a "
        "tenant's hosts.\n"
        "# TYPE claw_auth_failures_total counter\n");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "claw_auth_failures_total{tenant=\"%*s\"} %uL\n",
                        (size_t) c[i].id_len, c[i].id, c[i].auth_failures);
    }

    p = ngx_sprintf(p,
        "# HELP claw_rate_limited_total Requests refused by a tenant's "
        "rate or concurrency limit.\n"
        "# TYPE claw_rate_limited_total counter\n");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "claw_rate_limited_total{tenant=\"%*s\"} %uL\n",
                        (size_t) c[i].id_len, c[i].id, c[i].rate_limited);
    }

    p = ngx_sprintf(p,
        "# HELP claw_active_requests Requests of a tenant in flight, "
        "WebSocket tunnels included.\n"
        "# TYPE claw_active_requests gauge\n");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "claw_active_requests{tenant=\"%*s\"} %uL\n",
                        (size_t) c[i].id_len, c[i].id, c[i].active);
    }

    p = ngx_sprintf(p,
        "# HELP claw_bytes_sent_total Bytes sent to the clients of a "
        "tenant.\n"
        "# TYPE claw_bytes_sent_total counter\n");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "claw_bytes_sent_total{tenant=\"%*s\"} %uL\n",
                        (size_t) c[i].id_len, c[i].id, c[i].bytes_sent);
    }

    shpool = cmcf->registry.shpool;
    pages = (shpool->end - shpool->start) / ngx_pagesize;

    p = ngx_sprintf(p,
        "# HELP claw_tenants Tenants in the registry.\n"
        "# TYPE claw_tenants gauge\n"
        "claw_tenants %ui\n"
        "# HELP claw_zone_bytes_used Bytes of the claw zone in use.\n"
        "# TYPE claw_zone_bytes_used gauge\n"
        "claw_zone_bytes_used %uz\n"
        "# HELP claw_zone_bytes_total Bytes of the claw zone.\n"
        "# TYPE claw_zone_bytes_total gauge\n"
        "claw_zone_bytes_total %uz\n",
        n, (size_t) ((pages - shpool->pfree) * ngx_pagesize)
           + (size_t) (shpool->start - (u_char *) shpool),
        cmcf->registry.shm_zone->shm.size);

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static int ngx_libc_cdecl
ngx_http_claw_counters_cmp(const void *one, const void *two)
{
    ngx_http_claw_counters_t  *a, *b;

    a = (ngx_http_claw_counters_t *) one;
    b = (ngx_http_claw_counters_t *) two;

    return (int) ngx_memn2cmp(a->id, b->id, a->id_len, b->id_len);
}
