
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Per-tenant limits, shared by all workers: a request rate (GCRA, as
 * limit_req with nodelay) and the number of requests in flight,
 * WebSocket tunnels included.  Both live in the tenant's slot and are
 * decided in O(1) with atomic operations (ngx_http_claw_tables_admit()),
 * after authentication, so that unauthenticated traffic never spends a
 * tenant's quota.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_limit.h"




/*
 * Admits a request of an authenticated tenant, or answers 429 with
 * Retry-After computed from the limiter.
 */

ngx_int_t
ngx_http_claw_limit(ngx_http_request_t *r, ngx_http_claw_loc_conf_t *clcf,
    ngx_http_claw_ctx_t *ctx)
{
    int64_t                    burst, conn;
    uint64_t                   now, interval, next, wait, pending;
    ngx_uint_t                 over_conn;
    ngx_http_claw_rate_t       rate;
    ngx_http_claw_tconf_t     *tc;
    ngx_http_claw_main_conf_t *cmcf;

    tc = ctx->tconf;

    rate = tc->rate.number ? tc->rate : clcf->rate;
    burst = tc->burst >= 0 ? tc->burst : (int64_t) clcf->burst;
    conn = tc->conn >= 0 ? tc->conn : (int64_t) clcf->conn;

    /* claw_rate_limit off: this location neither checks nor spends it */

    interval = (rate.number && clcf->rate_limit)
               ? ngx_http_claw_rate_interval(&rate) : 0;
    now = (uint64_t) ngx_current_msec * 1000000;

    ctx->active = ngx_http_claw_tables_admit(ctx->tables, ctx->tenant,
                                             ctx->hold, now, interval, burst,
                                             conn, &wait, &next);

    over_conn = (!ctx->active && wait == 0);

    if (ctx->active && interval) {
        cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

        if (cmcf->cluster) {
            ngx_http_claw_share_admitted(&cmcf->share, ctx->tenant,
                                         ctx->hold, ctx->id.data,
                                         ctx->id.len, interval);
        }
    }

    /* a refusal is remembered by the caller: it is answered again */
    ctx->limited = ctx->active;

    if (interval) {
        ctx->rate_quota = burst + 1;
        ctx->rate_window = (time_t) ((ctx->rate_quota * interval + 999999999)
                                     / 1000000000);

        if (wait) {
            ctx->rate_remaining = 0;
            ctx->rate_reset = (time_t) ((wait + 999999999) / 1000000000);

        } else {
            pending = (next - now + interval - 1) / interval;
            ctx->rate_remaining = ctx->rate_quota > pending
                                  ? ctx->rate_quota - pending : 0;
            ctx->rate_reset = (time_t) ((next - now + 999999999)
                                        / 1000000000);
        }
    }

    if (ctx->active) {
        ctx->limit = NGX_HTTP_CLAW_LIMIT_PASS;
        return NGX_OK;
    }

    (void) ngx_atomic_fetch_add(&ctx->tenant->rate_limited, 1);

    ctx->limit = over_conn ? NGX_HTTP_CLAW_LIMIT_CONN
                           : NGX_HTTP_CLAW_LIMIT_RATE;

    if (over_conn) {
        (void) ngx_atomic_fetch_add(&ctx->tenant->conn_limited, 1);

        ngx_log_error(clcf->limit_log_level, r->connection->log, 0,
                      "claw: tenant \"%V\" at its limit of %L requests "
                      "in flight", &ctx->id, conn);

        /* a slot frees when any request ends: try again shortly */
        wait = 1000000000;

    } else {
        ngx_log_error(clcf->limit_log_level, r->connection->log, 0,
                      "claw: tenant \"%V\" over its rate of %uD r/%s "
                      "(burst %L)", &ctx->id, rate.number,
                      rate.period == 1 ? "s" : "m", burst);
    }

    if (ngx_http_claw_retry_after(r, (time_t) ((wait + 999999999)
                                               / 1000000000))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_TOO_MANY_REQUESTS;
}


/*
 * RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers)
 * on 2xx and 429 answers: the tenant's bucket holds "q" requests and
 * refills in "w" seconds; "r" are left now, full again in "t" seconds.
 */

ngx_int_t
ngx_http_claw_limit_headers(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    ngx_http_claw_loc_conf_t *clcf)
{
    u_char  *p;
    u_char   buf[sizeof("\"tenant\";q=;w=") + 2 * NGX_INT64_LEN];

    if (!clcf->rate_headers || ctx->rate_quota == 0
        || !(r->headers_out.status / 100 == 2
             || r->headers_out.status == NGX_HTTP_TOO_MANY_REQUESTS))
    {
        return NGX_OK;
    }

    p = ngx_sprintf(buf, "\"tenant\";q=%uL;w=%T", ctx->rate_quota,
                    ngx_max(ctx->rate_window, 1));

    if (ngx_http_claw_add_header(r, "RateLimit-Policy", buf, p - buf)
        == NULL)
    {
        return NGX_ERROR;
    }

    p = ngx_sprintf(buf, "\"tenant\";r=%uL;t=%T", ctx->rate_remaining,
                    ngx_max(ctx->rate_reset, 1));

    return ngx_http_claw_add_header(r, "RateLimit", buf, p - buf)
           ? NGX_OK : NGX_ERROR;
}


/* claw_rate 10r/s [burst=N] | off */

char *
ngx_http_claw_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    int64_t     n;
    ngx_str_t  *value;

    if (clcf->rate.period) {
        return "is duplicate";
    }

    value = cf->args->elts;

    clcf->burst = 0;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts != 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        clcf->rate.number = 0;
        clcf->rate.period = 1;
        return NGX_CONF_OK;
    }

    if (ngx_http_claw_parse_rate(value[1].data, value[1].len, &clcf->rate)
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid rate \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "burst=", 6) != 0
            || ngx_http_claw_parse_number(value[2].data + 6,
                                          value[2].len - 6,
                                          NGX_HTTP_CLAW_BURST_MAX, &n)
               != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        clcf->burst = (ngx_uint_t) n;
    }

    return NGX_CONF_OK;
}
