
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
#include "ngx_http_claw_stream.h"


static ngx_int_t ngx_http_claw_metrics_handler(ngx_http_request_t *r);
static int ngx_libc_cdecl ngx_http_claw_counters_cmp(const void *one,
    const void *two);


static char  *ngx_http_claw_classes[] = { "1xx", "2xx", "3xx", "4xx", "5xx" };

/* the histogram's upper bounds, ms (then +Inf) */
static ngx_msec_t  ngx_http_claw_ttfb_le[NGX_HTTP_CLAW_TTFB_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};


char *
ngx_http_claw_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    ngx_http_core_loc_conf_t  *core;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (clcf->metrics) {
        return "is duplicate";
    }

    clcf->metrics = 1;
    clcf->metrics_tenants = 1;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        /* a fleet too large for a series per tenant: the sums alone */

        if (ngx_strcmp(value[i].data, "tenants=off") == 0) {
            clcf->metrics_tenants = 0;
            continue;
        }

        /* the containers' failures and answer times by tenant, too */

        if (ngx_strcmp(value[i].data, "upstream=tenants") == 0) {
            clcf->metrics_upstream = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" of \"claw_metrics\""
                           ": \"tenants=off\" and \"upstream=tenants\" "
                           "are known", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (!clcf->metrics_tenants && clcf->metrics_upstream) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"upstream=tenants\" of \"claw_metrics\" "
                           "needs the tenant series that \"tenants=off\" "
                           "turns off");
        return NGX_CONF_ERROR;
    }

    core = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    core->handler = ngx_http_claw_metrics_handler;

    return NGX_CONF_OK;
}


/* the log phase: every request of a tenant, whatever its answer */

ngx_int_t
ngx_http_claw_metrics_log(ngx_http_request_t *r)
{
    ngx_uint_t                  status, i;
    ngx_msec_t                  ms;
    ngx_http_claw_ctx_t        *ctx;
    ngx_http_claw_shctx_t      *sh;
    ngx_http_claw_tenant_t     *t;
    ngx_http_upstream_state_t  *state;

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

    if (r->upstream_states && r->upstream_states->nelts) {
        state = r->upstream_states->elts;
        ms = state[r->upstream_states->nelts - 1].header_time;

        if (ms != (ngx_msec_t) -1) {
            sh = ctx->tables->sh;

            for (i = 0; i < NGX_HTTP_CLAW_TTFB_BUCKETS; i++) {
                if (ms <= ngx_http_claw_ttfb_le[i]) {
                    break;
                }
            }

            (void) ngx_atomic_fetch_add(&sh->ttfb[i], 1);
            (void) ngx_atomic_fetch_add(&sh->ttfb_ms, ms);
            (void) ngx_atomic_fetch_add(&t->ttfb[i], 1);
            (void) ngx_atomic_fetch_add(&t->ttfb_ms, ms);
        }
    }

    return NGX_OK;
}


/*
 * With 100,000 tenants the page is some 40 MB: it is streamed a buffer
 * at a time (stream.c).  The counters are copied once, at the start, so
 * the page is one moment's.
 */

/* the longest line: name, tenant label, class label, a 20-digit number */
#define NGX_HTTP_CLAW_METRICS_LINE                                           \
    (sizeof("claw_refused_total{tenant=\"\",reason=\"maintenance\"} \n")     \
     + NGX_HTTP_CLAW_ID_MAX + NGX_INT64_LEN)


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_claw_counters_t  **counters;      /* sorted by tenant id */
    ngx_uint_t                  n;
    ngx_uint_t                  ntenants;
    ngx_http_claw_shctx_t      *sh;
    ngx_uint_t                  family;        /* then the totals */
    ngx_uint_t                  tenant;
    size_t                      zone_used;
    size_t                      zone_size;
    ngx_http_claw_cluster_sh_t *cluster;
    ngx_uint_t                  families;      /* with upstream=tenants */
    void                       *more;          /* metrics_fill's */
    ngx_http_claw_fill_pt       more_fill;
} ngx_http_claw_metrics_ctx_t;


typedef struct {
    ngx_str_t                   help;
    ngx_str_t                   name;
} ngx_http_claw_family_t;


static ngx_http_claw_family_t  ngx_http_claw_families[] = {

    { ngx_string("# HELP claw_requests_total Requests of a tenant, by "
                 "status class.\n# TYPE claw_requests_total counter\n"),
      ngx_string("claw_requests_total{tenant=\"") },

    { ngx_string("# HELP claw_auth_failures_total Failed credential checks "
                 "on a tenant's hosts.\n"
                 "# TYPE claw_auth_failures_total counter\n"),
      ngx_string("claw_auth_failures_total{tenant=\"") },

    { ngx_string("# HELP claw_rate_limited_total Requests refused by a "
                 "tenant's rate or concurrency limit (not lockouts).\n"
                 "# TYPE claw_rate_limited_total counter\n"),
      ngx_string("claw_rate_limited_total{tenant=\"") },

    { ngx_string("# HELP claw_active_requests Requests of a tenant in "
                 "flight, WebSocket tunnels included.\n"
                 "# TYPE claw_active_requests gauge\n"),
      ngx_string("claw_active_requests{tenant=\"") },

    { ngx_string("# HELP claw_bytes_sent_total Bytes sent to the clients "
                 "of a tenant.\n# TYPE claw_bytes_sent_total counter\n"),
      ngx_string("claw_bytes_sent_total{tenant=\"") },
    { ngx_string("# HELP claw_auth_lockouts_total Requests refused with 429 "
                 "because their address failed too many credential "
                 "checks.\n# TYPE claw_auth_lockouts_total counter\n"),
      ngx_string("claw_auth_lockouts_total{tenant=\"") },
    { ngx_string("# HELP claw_revoked_total Requests in flight (tunnels, "
                 "streams) ended because their credential was revoked.\n"
                 "# TYPE claw_revoked_total counter\n"),
      ngx_string("claw_revoked_total{tenant=\"") },
    { ngx_string("# HELP claw_upstream_up Whether a tenant's container is "
                 "taken as up (claw_health; 1 without it).\n"
                 "# TYPE claw_upstream_up gauge\n"),
      ngx_string("claw_upstream_up{tenant=\"") },
    { ngx_string("# HELP claw_refused_total Requests of a tenant refused, "
                 "by reason ($claw_limit, and auth for failed "
                 "credentials).\n# TYPE claw_refused_total counter\n"),
      ngx_string("claw_refused_total{tenant=\"") },
    { ngx_string("# HELP claw_last_request_timestamp_seconds When a tenant "
                 "last had an authenticated request or a byte on an open "
                 "tunnel (Unix time).\n"
                 "# TYPE claw_last_request_timestamp_seconds gauge\n"),
      ngx_string("claw_last_request_timestamp_seconds{tenant=\"") },
    { ngx_string("# HELP claw_wakes_total Wakes of a tenant's container "
                 "started by the claw_wake hook.\n"
                 "# TYPE claw_wakes_total counter\n"),
      ngx_string("claw_wakes_total{tenant=\"") },
    { ngx_string("# HELP claw_wake_failures_total Wakes that failed: the "
                 "hook refused, or the container did not accept in time.\n"
                 "# TYPE claw_wake_failures_total counter\n"),
      ngx_string("claw_wake_failures_total{tenant=\"") },

    /* with upstream=tenants: the edge's own, by tenant */

    { ngx_string("# HELP claw_upstream_failures_total Attempts to reach a "
                 "tenant's container that failed (no connection, a reset, "
                 "a timeout, an invalid answer).\n"
                 "# TYPE claw_upstream_failures_total counter\n"),
      ngx_string("claw_upstream_failures_total{tenant=\"") },
    { ngx_string("# HELP claw_upstream_header_seconds Time from a request "
                 "sent to a container to its answer's header.\n"
                 "# TYPE claw_upstream_header_seconds histogram\n"),
      ngx_string("claw_upstream_header_seconds") }
};

/* the families without upstream=tenants, and the first of those */
#define NGX_HTTP_CLAW_FAMILIES_EDGE  12

/* the reasons of claw_refused_total, one line each */
#define NGX_HTTP_CLAW_REASONS  10

static char  *ngx_http_claw_reasons[] = {
    "rate", "conn", "lockout", "auth", "suspended", "maintenance",
    "address", "body", "down", "wake"
};

#define NGX_HTTP_CLAW_FAMILIES                                               \
    (sizeof(ngx_http_claw_families) / sizeof(ngx_http_claw_family_t))

/*
 * the most lines a tenant has in one family: a histogram's, whose bucket
 * lines are a little longer than NGX_HTTP_CLAW_METRICS_LINE (one more)
 */
#define NGX_HTTP_CLAW_METRICS_LINES  (NGX_HTTP_CLAW_TTFB_BUCKETS + 4)


static ngx_uint_t ngx_http_claw_metrics_fill(void *data, ngx_buf_t *b);
static u_char *ngx_http_claw_metrics_head(u_char *p, ngx_str_t *name,
    ngx_http_claw_counters_t *c, ngx_uint_t labels);
static u_char *ngx_http_claw_metrics_edge(u_char *p,
    ngx_http_claw_shctx_t *sh, ngx_uint_t by_tenant);
static void ngx_http_claw_counters_add(ngx_http_claw_counters_t *sum,
    ngx_http_claw_counters_t *c);
static u_char *ngx_http_claw_metrics_line(u_char *p, ngx_str_t *name,
    ngx_http_claw_counters_t *c, const char *code, uint64_t value);
static u_char *ngx_http_claw_metrics_reason(u_char *p, ngx_str_t *name,
    ngx_http_claw_counters_t *c, const char *reason, uint64_t value);
static u_char *ngx_http_claw_metrics_cluster(u_char *p,
    ngx_http_claw_cluster_sh_t *sh);
static u_char *ngx_http_claw_metrics_histogram(u_char *p, u_char *id,
    size_t len, uint64_t *ttfb, uint64_t ms);


static ngx_int_t
ngx_http_claw_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_uint_t                    i, pages;
    ngx_slab_pool_t              *shpool;
    ngx_http_claw_counters_t     *counters, *sum;
    ngx_http_claw_ctx_t          *ctx;
    ngx_http_claw_loc_conf_t     *clcf;
    ngx_http_claw_main_conf_t    *cmcf;
    ngx_http_claw_metrics_ctx_t  *mc;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_claw_module);

    rc = ngx_http_claw_operator_check(r, clcf->operator);
    if (rc != NGX_OK) {
        return rc;
    }

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

    if (cmcf->tables.shm_zone == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    mc = ngx_pcalloc(r->pool, sizeof(ngx_http_claw_metrics_ctx_t));
    if (mc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    counters = ngx_http_claw_tables_counters(&cmcf->tables, r->pool,
                                               &mc->n);
    if (counters == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* sorted by reference: the records are some 150 bytes each */

    mc->counters = ngx_palloc(r->pool,
                              (mc->n + 1) * sizeof(ngx_http_claw_counters_t *));
    if (mc->counters == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mc->ntenants = mc->n;
    mc->sh = cmcf->tables.sh;

    if (!clcf->metrics_tenants) {

        /* claw_metrics tenants=off: the sums, with no tenant label */

        sum = ngx_pcalloc(r->pool, sizeof(ngx_http_claw_counters_t));
        if (sum == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (i = 0; i < mc->n; i++) {
            ngx_http_claw_counters_add(sum, &counters[i]);
        }

        mc->counters[0] = sum;
        mc->n = 1;

    } else {
        for (i = 0; i < mc->n; i++) {
            mc->counters[i] = &counters[i];
        }

        ngx_qsort(mc->counters, mc->n, sizeof(ngx_http_claw_counters_t *),
                  ngx_http_claw_counters_cmp);
    }

    shpool = cmcf->tables.shpool;
    pages = (shpool->end - shpool->start) / ngx_pagesize;

    mc->zone_used = (size_t) ((pages - shpool->pfree) * ngx_pagesize)
                    + (size_t) (shpool->start - (u_char *) shpool);
    mc->zone_size = cmcf->tables.shm_zone->shm.size;
    mc->cluster = cmcf->cluster ? cmcf->cluster->sh : NULL;
    mc->families = clcf->metrics_upstream ? NGX_HTTP_CLAW_FAMILIES
                                          : NGX_HTTP_CLAW_FAMILIES_EDGE;

    if (cmcf->metrics_start) {
        mc->more = cmcf->metrics_start(r, clcf->metrics_tenants);
        if (mc->more == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        mc->more_fill = cmcf->metrics_fill;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    return ngx_http_claw_stream(r, ngx_http_claw_metrics_fill, mc);
}


/* fills the buffer with whole lines; returns 1 when the page is done */

static ngx_uint_t
ngx_http_claw_metrics_fill(void *data, ngx_buf_t *b)
{
    ngx_http_claw_metrics_ctx_t  *mc = data;

    u_char                    *p, *end;
    uint64_t                   reason[NGX_HTTP_CLAW_REASONS];
    ngx_uint_t                 j;
    ngx_str_t                 *name;
    ngx_http_claw_counters_t  *c;

    p = b->last;
    end = b->end;

    if (mc->family > mc->families) {
        goto more;
    }

    while (mc->family < mc->families) {

        name = &ngx_http_claw_families[mc->family].name;

        if (mc->tenant == 0) {

            /* the help with a tenant's lines: never twice, resumed */

            if ((size_t) (end - p)
                < ngx_http_claw_families[mc->family].help.len
                  + NGX_HTTP_CLAW_METRICS_LINES * NGX_HTTP_CLAW_METRICS_LINE)
            {
                goto full;
            }

            p = ngx_cpymem(p, ngx_http_claw_families[mc->family].help.data,
                           ngx_http_claw_families[mc->family].help.len);
        }

        while (mc->tenant < mc->n) {

            if ((size_t) (end - p)
                < NGX_HTTP_CLAW_METRICS_LINES * NGX_HTTP_CLAW_METRICS_LINE)
            {
                goto full;
            }

            c = mc->counters[mc->tenant++];

            switch (mc->family) {

            case 0:
                for (j = 0; j < NGX_HTTP_CLAW_CLASSES; j++) {
                    p = ngx_http_claw_metrics_line(p, name, c,
                                                   ngx_http_claw_classes[j],
                                                   c->requests[j]);
                }
                break;

            case 1:
                p = ngx_http_claw_metrics_line(p, name, c, NULL,
                                               c->auth_failures);
                break;

            case 2:
                p = ngx_http_claw_metrics_line(p, name, c, NULL,
                                               c->rate_limited);
                break;

            case 3:
                p = ngx_http_claw_metrics_line(p, name, c, NULL, c->active);
                break;

            case 4:
                p = ngx_http_claw_metrics_line(p, name, c, NULL,
                                               c->bytes_sent);
                break;

            case 5:
                p = ngx_http_claw_metrics_line(p, name, c, NULL,
                                               c->lockouts);
                break;

            case 6:
                p = ngx_http_claw_metrics_line(p, name, c, NULL, c->revoked);
                break;

            case 7:
                p = ngx_http_claw_metrics_line(p, name, c, NULL, c->up);
                break;

            case 9:
                p = ngx_http_claw_metrics_line(p, name, c, NULL, c->seen);
                break;

            case 10:
                p = ngx_http_claw_metrics_line(p, name, c, NULL, c->wakes);
                break;

            case 11:
                p = ngx_http_claw_metrics_line(p, name, c, NULL,
                                               c->wake_failures);
                break;

            case 12:
                p = ngx_http_claw_metrics_line(p, name, c, NULL,
                                               c->upstream_failed);
                break;

            case 13:
                p = ngx_http_claw_metrics_histogram(p, c->id, c->id_len,
                                                    c->ttfb, c->ttfb_ms);
                break;

            default: /* 8 */
                reason[0] = c->rate_limited - c->conn_limited;
                reason[1] = c->conn_limited;
                reason[2] = c->lockouts;
                reason[3] = c->auth_failures;
                reason[4] = c->refused_state[0];
                reason[5] = c->refused_state[1];
                reason[6] = c->refused_address;
                reason[7] = c->refused_body;
                reason[8] = c->refused_down;
                reason[9] = c->refused_wake;

                for (j = 0; j < NGX_HTTP_CLAW_REASONS; j++) {
                    p = ngx_http_claw_metrics_reason(p, name, c,
                                                     ngx_http_claw_reasons[j],
                                                     reason[j]);
                }

                break;
            }
        }

        mc->family++;
        mc->tenant = 0;
    }

    if ((size_t) (end - p) < 8192) {
        goto full;
    }

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
        mc->ntenants, mc->zone_used, mc->zone_size);

    p = ngx_http_claw_metrics_edge(p, mc->sh,
                                   mc->families == NGX_HTTP_CLAW_FAMILIES);

    if (mc->cluster) {
        p = ngx_http_claw_metrics_cluster(p, mc->cluster);
    }

    mc->family++;

more:

    b->last = p;

    return mc->more_fill ? mc->more_fill(mc->more, b) : 1;

full:

    b->last = p;

    return 0;
}


/* the cluster link, under 2048 bytes */

static u_char *
ngx_http_claw_metrics_cluster(u_char *p, ngx_http_claw_cluster_sh_t *sh)
{
    ngx_uint_t   i, state;
    uint64_t     ms, lag;

    static char  *states[] = { "down", "sync", "up", "empty", "lost" };

    state = sh->state;
    ms = sh->last_ms;
    lag = sh->lag;

    p = ngx_sprintf(p,
        "# HELP claw_cluster_state The link to the cluster server: down, "
        "sync (reading the whole registry), up (following its log), empty "
        "(it holds no registry), lost (it lost the one it had).\n"
        "# TYPE claw_cluster_state gauge\n");

    for (i = 0; i < 5; i++) {
        p = ngx_sprintf(p, "claw_cluster_state{state=\"%s\"} %d\n",
                        states[i], state == i);
    }

    p = ngx_sprintf(p,
        "# HELP claw_cluster_applied_total Changes applied from the "
        "cluster's log and registry.\n"
        "# TYPE claw_cluster_applied_total counter\n"
        "claw_cluster_applied_total %uA\n"
        "# HELP claw_cluster_skipped_total Changes from the cluster that "
        "could not be applied (see the error log).\n"
        "# TYPE claw_cluster_skipped_total counter\n"
        "claw_cluster_skipped_total %uA\n"
        "# HELP claw_cluster_last_applied_timestamp_seconds When the last "
        "change applied was made (the server's clock).\n"
        "# TYPE claw_cluster_last_applied_timestamp_seconds gauge\n"
        "claw_cluster_last_applied_timestamp_seconds %uL.%03uL\n"
        "# HELP claw_cluster_lag_seconds From the server's taking of the "
        "last change applied to its applying here.\n"
        "# TYPE claw_cluster_lag_seconds gauge\n"
        "claw_cluster_lag_seconds %uL.%03uL\n"
        "# HELP claw_cluster_last_contact_timestamp_seconds When the "
        "server last answered.\n"
        "# TYPE claw_cluster_last_contact_timestamp_seconds gauge\n"
        "claw_cluster_last_contact_timestamp_seconds %uA\n",
        sh->applied, sh->skipped, ms / 1000, ms % 1000, lag / 1000,
        lag % 1000, sh->contact);

    return p;
}


/* one line, without ngx_sprintf: a page has hundreds of thousands */

static u_char *
ngx_http_claw_metrics_reason(u_char *p, ngx_str_t *name,
    ngx_http_claw_counters_t *c, const char *reason, uint64_t value)
{
    p = ngx_http_claw_metrics_head(p, name, c, 1);

    return ngx_sprintf(p, "reason=\"%s\"} %uL\n", reason, value);
}


/*
 * "<metric>{tenant=\"<id>\"" and, when more labels follow, a comma; the
 * sums of tenants=off have no tenant label ("<metric>{" or "<metric>")
 */

static u_char *
ngx_http_claw_metrics_head(u_char *p, ngx_str_t *name,
    ngx_http_claw_counters_t *c, ngx_uint_t labels)
{
    if (c->id_len) {
        p = ngx_cpymem(p, name->data, name->len);
        p = ngx_cpymem(p, c->id, c->id_len);
        *p++ = '"';

        if (labels) {
            *p++ = ',';
        }

        return p;
    }

    p = ngx_cpymem(p, name->data, name->len - (sizeof("{tenant=\"") - 1));

    if (labels) {
        *p++ = '{';
    }

    return p;
}


/*
 * the edge's own: failed attempts and the containers' answer times
 * (unless they are by tenant), the build
 */

static u_char *
ngx_http_claw_metrics_edge(u_char *p, ngx_http_claw_shctx_t *sh,
    ngx_uint_t by_tenant)
{
    uint64_t    ttfb[NGX_HTTP_CLAW_TTFB_BUCKETS + 1];
    ngx_uint_t  i;

    if (!by_tenant) {
        p = ngx_sprintf(p, "%Vclaw_upstream_failures_total %uA\n%V",
                        &ngx_http_claw_families[12].help,
                        sh->upstream_failed,
                        &ngx_http_claw_families[13].help);

        for (i = 0; i <= NGX_HTTP_CLAW_TTFB_BUCKETS; i++) {
            ttfb[i] = sh->ttfb[i];
        }

        p = ngx_http_claw_metrics_histogram(p, NULL, 0, ttfb, sh->ttfb_ms);
    }

    return ngx_sprintf(p,
        "# HELP claw_build_info The module's version, and nginx's.\n"
        "# TYPE claw_build_info gauge\n"
        "claw_build_info{version=\"" NGX_HTTP_CLAW_VERSION "\","
        "nginx=\"" NGINX_VERSION "\"} 1\n");
}


/* a histogram of answer times, a tenant's (id) or the edge's */

static u_char *
ngx_http_claw_metrics_histogram(u_char *p, u_char *id, size_t len,
    uint64_t *ttfb, uint64_t ms)
{
    uint64_t    cumulative;
    ngx_uint_t  i;

    static const char  *le[] = {
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
        "5", "10", "+Inf"
    };

    cumulative = 0;

    for (i = 0; i <= NGX_HTTP_CLAW_TTFB_BUCKETS; i++) {
        cumulative += ttfb[i];

        if (len) {
            p = ngx_sprintf(p, "claw_upstream_header_seconds_bucket"
                            "{tenant=\"%*s\",le=\"%s\"} %uL\n",
                            len, id, le[i], cumulative);

        } else {
            p = ngx_sprintf(p, "claw_upstream_header_seconds_bucket"
                            "{le=\"%s\"} %uL\n", le[i], cumulative);
        }
    }

    if (len) {
        return ngx_sprintf(p,
                           "claw_upstream_header_seconds_sum{tenant=\"%*s\"}"
                           " %uL.%03uL\n"
                           "claw_upstream_header_seconds_count"
                           "{tenant=\"%*s\"} %uL\n",
                           len, id, ms / 1000, ms % 1000,
                           len, id, cumulative);
    }

    return ngx_sprintf(p,
                       "claw_upstream_header_seconds_sum %uL.%03uL\n"
                       "claw_upstream_header_seconds_count %uL\n",
                       ms / 1000, ms % 1000, cumulative);
}


static void
ngx_http_claw_counters_add(ngx_http_claw_counters_t *sum,
    ngx_http_claw_counters_t *c)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_CLAW_CLASSES; i++) {
        sum->requests[i] += c->requests[i];
    }

    sum->auth_failures += c->auth_failures;
    sum->rate_limited += c->rate_limited;
    sum->conn_limited += c->conn_limited;
    sum->lockouts += c->lockouts;
    sum->refused_state[0] += c->refused_state[0];
    sum->refused_state[1] += c->refused_state[1];
    sum->refused_address += c->refused_address;
    sum->refused_body += c->refused_body;
    sum->refused_down += c->refused_down;
    sum->refused_wake += c->refused_wake;
    sum->seen = ngx_max(sum->seen, c->seen);
    sum->wakes += c->wakes;
    sum->wake_failures += c->wake_failures;
    sum->up += c->up;
    sum->revoked += c->revoked;
    sum->bytes_sent += c->bytes_sent;
    sum->active += c->active;
}


static u_char *
ngx_http_claw_metrics_line(u_char *p, ngx_str_t *name,
    ngx_http_claw_counters_t *c, const char *code, uint64_t value)
{
    u_char  *d, digits[NGX_INT64_LEN];

    p = ngx_http_claw_metrics_head(p, name, c, code != NULL);

    if (code) {
        p = ngx_cpymem(p, "code=\"", sizeof("code=\"") - 1);
        *p++ = code[0];
        *p++ = code[1];
        *p++ = code[2];
        *p++ = '"';
    }

    if (c->id_len || code) {
        *p++ = '}';
    }

    *p++ = ' ';

    d = digits + sizeof(digits);

    do {
        *--d = (u_char) ('0' + value % 10);
        value /= 10;
    } while (value);

    p = ngx_cpymem(p, d, digits + sizeof(digits) - d);
    *p++ = '\n';

    return p;
}


static int ngx_libc_cdecl
ngx_http_claw_counters_cmp(const void *one, const void *two)
{
    ngx_http_claw_counters_t  *a, *b;

    a = *(ngx_http_claw_counters_t **) one;
    b = *(ngx_http_claw_counters_t **) two;

    return (int) ngx_memn2cmp(a->id, b->id, a->id_len, b->id_len);
}
