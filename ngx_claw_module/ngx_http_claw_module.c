
/*
 * Copyright (C) ngx_claw_module authors
 *
 * The module proper: directives, configuration, variables and the
 * request phase that resolves the tenant of a request.  The registry,
 * the balancer and the other concerns live in files of their own.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_auth.h"
#include "ngx_http_claw_balancer.h"
#include "ngx_http_claw_limit.h"
#include "ngx_http_claw_live.h"
#include "ngx_http_claw_admin.h"
#include "ngx_http_claw_metrics.h"
#include "ngx_http_claw_wake.h"
#include "ngx_http_claw_token.h"
#include "ngx_http_claw_ssl.h"
#include "ngx_http_claw_domains.h"


static ngx_int_t ngx_http_claw_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_claw_check(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx);
static ngx_int_t ngx_http_claw_resolve(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx);
static void ngx_http_claw_cleanup(void *data);

static ngx_int_t ngx_http_claw_public(ngx_http_request_t *r);
static ngx_int_t ngx_http_claw_tenant_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_claw_reason_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_claw_token_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_claw_identity_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_claw_request_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_claw_add_variables(ngx_conf_t *cf);
static void *ngx_http_claw_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_claw_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_claw_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_claw_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_claw_cluster(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_admin_token(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_tenants(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_domain(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_tenant(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_unknown_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_claw_header_filter(ngx_http_request_t *r);
static void *ngx_http_claw_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_claw_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_claw_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
#if (NGX_THREADS)
static ngx_thread_pool_t *ngx_http_claw_thread_pool(ngx_conf_t *cf);
#endif
static ngx_int_t ngx_http_claw_init(ngx_conf_t *cf);
static ngx_uint_t ngx_http_claw_allowed(ngx_http_request_t *r,
    ngx_http_claw_tconf_t *tc);
static ngx_int_t ngx_http_claw_too_large(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx);
static ngx_int_t ngx_http_claw_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_claw_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_claw_init_process(ngx_cycle_t *cycle);
static void ngx_http_claw_exit_process(ngx_cycle_t *cycle);
static void ngx_http_claw_exit_master(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_claw_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_claw_session_authorization[] = {
    { ngx_string("check"), 0 },
    { ngx_string("pass"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_claw_commands[] = {

    { ngx_string("claw_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_tenants"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_tenants,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_domain"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_domain,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_claw_loc_conf_t, enable),
      NULL },

    { ngx_string("claw_tenant"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_tenant,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_unknown_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_unknown_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_claw_loc_conf_t, auth),
      NULL },

    { ngx_string("claw_token_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_token_header,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_session_authorization"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_claw_loc_conf_t, session_authorization),
      &ngx_http_claw_session_authorization },

    { ngx_string("claw_login_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_claw_loc_conf_t, login_url),
      NULL },

    { ngx_string("claw_cookie_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_cookie_secret,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_session_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_claw_loc_conf_t, session_ttl),
      NULL },

    { ngx_string("claw_auth_fail_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_auth_fail_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE12,
      ngx_http_claw_rate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_conn"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_claw_loc_conf_t, conn),
      NULL },

    { ngx_string("claw_rate_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_claw_loc_conf_t, rate_limit),
      NULL },

    { ngx_string("claw_rate_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_claw_loc_conf_t, rate_headers),
      NULL },

    { ngx_string("claw_limit_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_claw_loc_conf_t, limit_log_level),
      &ngx_http_claw_log_levels },

    { ngx_string("claw_health"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_claw_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_cluster"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_claw_cluster,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_claw_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_wake"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_claw_wake_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE12,
      ngx_http_claw_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_admin_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_claw_admin_token,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_certificates"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_claw_srv_conf_t, certificates),
      NULL },

    { ngx_string("claw_certificate_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_certificate_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_hsts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_claw_hsts,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_balancer"),
      NGX_HTTP_UPS_CONF|NGX_CONF_NOARGS,
      ngx_http_claw_balancer,
      0,
      0,
      NULL },

    { ngx_string("claw_keepalive"),
      NGX_HTTP_UPS_CONF|NGX_CONF_TAKE123,
      ngx_http_claw_keepalive,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_claw_module_ctx = {
    ngx_http_claw_add_variables,           /* preconfiguration */
    ngx_http_claw_init,                    /* postconfiguration */

    ngx_http_claw_create_main_conf,        /* create main configuration */
    ngx_http_claw_init_main_conf,          /* init main configuration */

    ngx_http_claw_create_srv_conf,         /* create server configuration */
    ngx_http_claw_merge_srv_conf,          /* merge server configuration */

    ngx_http_claw_create_loc_conf,         /* create location configuration */
    ngx_http_claw_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_claw_module = {
    NGX_MODULE_V1,
    &ngx_http_claw_module_ctx,             /* module context */
    ngx_http_claw_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_claw_init_module,             /* init module */
    ngx_http_claw_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_claw_exit_process,            /* exit process */
    ngx_http_claw_exit_master,             /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_request_body_filter_pt   ngx_http_next_request_body_filter;

#if (NGX_THREADS)
extern ngx_module_t  ngx_thread_pool_module;
static ngx_str_t     ngx_http_claw_pool_name = ngx_string("claw");
#endif


static ngx_http_variable_t  ngx_http_claw_vars[] = {

    { ngx_string("claw_tenant"), NULL,
      ngx_http_claw_tenant_variable,
      offsetof(ngx_http_claw_ctx_t, id),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("claw_upstream"), NULL,
      ngx_http_claw_tenant_variable,
      offsetof(ngx_http_claw_ctx_t, upstream),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("claw_auth"), NULL,
      ngx_http_claw_auth_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("claw_identity"), NULL,
      ngx_http_claw_identity_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("claw_request"), NULL,
      ngx_http_claw_request_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("claw_limit"), NULL,
      ngx_http_claw_reason_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("claw_auth_error"), NULL,
      ngx_http_claw_reason_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("claw_token_id"), NULL,
      ngx_http_claw_token_id_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * Resolution, and later authentication and limits, run in the preaccess
 * phase: unlike the access phase, it is not skipped by "satisfy any".
 */

static ngx_int_t
ngx_http_claw_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_claw_ctx_t        *ctx;
    ngx_http_claw_loc_conf_t   *clcf;
    ngx_http_claw_main_conf_t  *cmcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_claw_module);

    if (!clcf->enable) {
        return NGX_DECLINED;
    }

    /*
     * A subrequest (SSI, mirror, addition) acts for its main request: it
     * gets a tenant's location only with the main request's credential.
     */

    if (r != r->main) {
        ctx = ngx_http_claw_get_ctx(r->main);

        /* the wake hook's call, which a "claw on" around it must let by */

        if (ctx && ctx->tenant && r->parent == r->main
            && ngx_http_claw_wake_calling(ctx))
        {
            return NGX_DECLINED;
        }

        if (ctx == NULL || ctx->tenant == NULL || !ctx->admitted
            || (clcf->auth && (ctx->auth == NGX_HTTP_CLAW_AUTH_NONE
                               || ctx->auth == NGX_HTTP_CLAW_AUTH_OFF)))
        {
            return NGX_HTTP_FORBIDDEN;
        }

        return NGX_DECLINED;
    }

    ctx = ngx_http_claw_get_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_claw_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* refused once, refused again (an error_page back to a claw location) */

    if (ctx->refused) {
        return ctx->refused;
    }

    /* held for a container waking: back from a timer or the hook */

    if (ctx->waking) {
        ctx->waking = 0;
        rc = ngx_http_claw_wake(r, clcf, ctx);

    } else {
        rc = ngx_http_claw_check(r, clcf, ctx);
    }

    if (rc == NGX_AGAIN) {
        ctx->waking = 1;
        return NGX_AGAIN;
    }

    if (rc == NGX_DONE) {

        /* answered (the wake's page) and finalized: r may be gone */
        return NGX_DONE;
    }

    if (rc != NGX_DECLINED) {
        ctx->admitted = 0;
        ctx->refused = (rc == NGX_HTTP_INTERNAL_SERVER_ERROR) ? 0 : rc;
        return rc;
    }

    ctx->admitted = 1;

    if (ctx->auth != NGX_HTTP_CLAW_AUTH_NONE
        && ctx->auth != NGX_HTTP_CLAW_AUTH_OFF)
    {
        /* the tenant is not idle (a public location's checks do not count) */

        if (ctx->tenant->seen != (ngx_atomic_uint_t) ngx_time()) {
            ctx->tenant->seen = ngx_time();
        }

        /* a revocation must reach what a credential opened */

        if (!ctx->linked) {
            cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);
            ngx_http_claw_live_add(&cmcf->live, ctx);
        }
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_claw_check(ngx_http_request_t *r, ngx_http_claw_loc_conf_t *clcf,
    ngx_http_claw_ctx_t *ctx)
{
    u_char      *p;
    size_t       len;
    ngx_int_t    rc;
    ngx_msec_t   wait;
    ngx_uint_t   probe;

    /*
     * Credentials are taken off first, so that no answer, not even a 404
     * for an unknown host and the error_page behind it, carries them on.
     */

    if (!ctx->extracted
        && ngx_http_claw_auth_extract(r, clcf, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * A fragment is no part of a request target (RFC 9112, 3.2), yet nginx
     * takes one, and proxy_pass would forward the target whole: a
     * claw_token behind the '#' is not in $args, where credentials are
     * taken off.  No client sends one: refused (after the extraction,
     * which redacts the request line that this error's log line shows).
     */

    if (ngx_strlchr(r->unparsed_uri.data,
                    r->unparsed_uri.data + r->unparsed_uri.len, '#'))
    {
        len = ngx_http_claw_fragment_redact(r->request_line.data,
                                            r->request_line.len, NULL);

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        (void) ngx_http_claw_fragment_redact(r->request_line.data,
                                             r->request_line.len, p);
        r->request_line.data = p;
        r->request_line.len = len;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "claw: a fragment in the request target");
        return NGX_HTTP_BAD_REQUEST;
    }

    if (ctx->tenant == NULL) {
        rc = ngx_http_claw_resolve(r, clcf, ctx);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_claw_ssl_sni_check(r, clcf, ctx);
        if (rc != NGX_OK) {
            return rc;
        }

    } else if (clcf->tenant.len
               && (clcf->tenant.len != ctx->id.len
                   || ngx_memcmp(clcf->tenant.data, ctx->id.data,
                                 ctx->id.len)
                      != 0))
    {
        /* an internal redirect may not move a request to another tenant */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "claw: request of tenant \"%V\" redirected to a "
                      "location of tenant \"%V\"", &ctx->id, &clcf->tenant);
        return NGX_HTTP_FORBIDDEN;
    }

    /* a tenant that is not active reaches no container, whoever asks */

    if (!ngx_http_claw_state_open(ctx->tconf->state)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "claw: tenant \"%V\" is %s", &ctx->id,
                      ctx->tconf->state == NGX_HTTP_CLAW_STATE_SUSPENDED
                      ? "suspended" : "in maintenance");

        (void) ngx_atomic_fetch_add(
                   &ctx->tenant->refused_state[ctx->tconf->state
                                           == NGX_HTTP_CLAW_STATE_SUSPENDED
                                           ? 0 : 1], 1);

        if (ctx->tconf->state == NGX_HTTP_CLAW_STATE_SUSPENDED) {
            ctx->limit = NGX_HTTP_CLAW_LIMIT_SUSPENDED;
            return NGX_HTTP_FORBIDDEN;
        }

        ctx->limit = NGX_HTTP_CLAW_LIMIT_MAINTENANCE;

        if (ngx_http_claw_retry_after(r, 60) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    /* the tenant's own rules, before any credential is looked at */

    if (ctx->tconf->nallow && !ngx_http_claw_allowed(r, ctx->tconf)) {
        (void) ngx_atomic_fetch_add(&ctx->tenant->refused_address, 1);
        ctx->limit = NGX_HTTP_CLAW_LIMIT_ADDRESS;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "claw: address not allowed for tenant \"%V\"",
                      &ctx->id);
        return NGX_HTTP_FORBIDDEN;
    }

    if (ctx->tconf->max_body >= 0
        && r->headers_in.content_length_n > ctx->tconf->max_body)
    {
        return ngx_http_claw_too_large(r, ctx);
    }

    rc = ngx_http_claw_auth(r, clcf, ctx);

    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }

    /*
     * A container that failed max_fails times in a row: answered at
     * once, no connection tried, until one request let through finds it
     * back (an authenticated request: a stranger learns nothing of it)
     */

    if (clcf->health_fails && !ctx->probe) {
        wait = ngx_http_claw_tables_health(ctx->tenant, ngx_current_msec,
                                           clcf->health_timeout, &probe);
        if (wait) {
            (void) ngx_atomic_fetch_add(&ctx->tenant->refused_down, 1);
            ctx->limit = NGX_HTTP_CLAW_LIMIT_DOWN;

            if (ngx_http_claw_retry_after(r, (wait + 999) / 1000) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return NGX_HTTP_SERVICE_UNAVAILABLE;
        }

        ctx->probe = probe;
    }

    /* claw_auth off: no credential, so no tenant quota is spent either */

    if (rc == NGX_DECLINED) {

        /* nor is its container woken: a stranger could wake them all */

        if (ctx->tconf->state == NGX_HTTP_CLAW_STATE_ASLEEP) {
            return ngx_http_claw_wake_refuse(r, ctx, 60);
        }

        return ngx_http_claw_public(r);
    }

    if (!ctx->limited) {
        rc = ngx_http_claw_limit(r, clcf, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    /* a container that may be asleep: held until it accepts (claw_wake) */

    if (ctx->tconf->state == NGX_HTTP_CLAW_STATE_ASLEEP) {
        return ngx_http_claw_wake(r, clcf, ctx);
    }

    return NGX_DECLINED;
}


/*
 * claw_auth off: a public location (a health check, a shared page) is
 * never a tunnel, whatever else the location says: GET and HEAD with no
 * body and no upgrade, and the container gets the path as nginx
 * normalised it (and matched the location with), not the target as the
 * client wrote it ("/x/..%2F..%2Fhealthz" reaches it as "/healthz").
 */

static ngx_int_t
ngx_http_claw_public(ngx_http_request_t *r)
{
    u_char           *p, *q, *end;
    size_t            len;
    uintptr_t         escape;
    ngx_table_elt_t  *h;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "claw: method \"%V\" refused where \"claw_auth\" is "
                      "off", &r->method_name);

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        ngx_str_set(&h->value, "GET, HEAD");

        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked
#if (NGX_HTTP_V2)
        || (r->stream && !r->stream->in_closed)
#endif
       )
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "claw: a request body refused where \"claw_auth\" is "
                      "off");
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    if (r->headers_in.upgrade) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "claw: an upgrade refused where \"claw_auth\" is off");
        return NGX_HTTP_FORBIDDEN;
    }

    end = r->unparsed_uri.data + r->unparsed_uri.len;
    q = ngx_strlchr(r->unparsed_uri.data, end, '?');

    len = (q ? q : end) - r->unparsed_uri.data;

    if (len == r->uri.len
        && ngx_memcmp(r->unparsed_uri.data, r->uri.data, len) == 0)
    {
        return NGX_DECLINED;
    }

    escape = 2 * ngx_escape_uri(NULL, r->uri.data, r->uri.len,
                                NGX_ESCAPE_URI);

    p = ngx_pnalloc(r->pool, r->uri.len + escape + 1 + r->args.len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->unparsed_uri.data = p;

    if (escape) {
        p = (u_char *) ngx_escape_uri(p, r->uri.data, r->uri.len,
                                      NGX_ESCAPE_URI);

    } else {
        p = ngx_cpymem(p, r->uri.data, r->uri.len);
    }

    if (r->args.len) {
        *p++ = '?';
        p = ngx_cpymem(p, r->args.data, r->args.len);
    }

    r->unparsed_uri.len = p - r->unparsed_uri.data;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "claw: public target normalised to \"%V\"",
                   &r->unparsed_uri);

    return NGX_DECLINED;
}


/*
 * The one canonical host of a request: nginx has already lowercased it
 * and dropped the port and a trailing dot for server selection, and the
 * same value is checked and looked up here, once.
 */

static ngx_int_t
ngx_http_claw_resolve(ngx_http_request_t *r, ngx_http_claw_loc_conf_t *clcf,
    ngx_http_claw_ctx_t *ctx)
{
    u_char                      *name;
    size_t                       len;
    uint32_t                     hash;
    ngx_str_t                   *sfx;
    ngx_uint_t                   i, domain, full;
    ngx_http_claw_span_t         label;
    ngx_http_claw_tconf_t       *tc;
    ngx_http_claw_tenant_t      *t;
    ngx_http_claw_main_conf_t   *cmcf;
    u_char                       host[NGX_HTTP_CLAW_HOST_MAX];
    union {
        ngx_http_claw_tconf_t    tconf;
        u_char                   max[NGX_HTTP_CLAW_TCONF_HEAD_MAX];
    } copy;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    domain = 0;

    if (clcf->tenant.len) {
        name = clcf->tenant.data;
        len = clcf->tenant.len;

    } else {
        switch (ngx_http_claw_host_canon(r->headers_in.server.data,
                                         r->headers_in.server.len,
                                         host, &len))
        {
        case NGX_HTTP_CLAW_HOST_NAME:
            break;

        case NGX_HTTP_CLAW_HOST_INVALID:
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "claw: malformed host \"%V\"",
                          &r->headers_in.server);
            return NGX_HTTP_BAD_REQUEST;

        default: /* an address, or no host at all */
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "claw: host \"%V\" is no tenant name",
                           &r->headers_in.server);
            return clcf->unknown_status;
        }

        name = host;
        domain = 1;

        if (clcf->domains) {
            sfx = clcf->domains->elts;

            for (i = 0; i < clcf->domains->nelts; i++) {
                if (ngx_http_claw_host_label(host, len, sfx[i].data,
                                             sfx[i].len, &label))
                {
                    name = (u_char *) label.data;
                    len = label.len;
                    domain = 0;
                    break;
                }
            }
        }
    }

    hash = ngx_murmur_hash2(name, len);

    t = ngx_http_claw_tables_acquire(&cmcf->tables, domain, hash, name,
                                     len, &copy.tconf, &ctx->revoked,
                                     &ctx->hold, &full);

    if (full) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "claw: zone \"%V\" full, request of %s \"%*s\" refused",
                      &cmcf->tables.shm_zone->shm.name,
                      domain ? "domain" : "tenant", len, name);
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (t == NULL) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "claw: no tenant for %s \"%*s\"",
                       domain ? "domain" : "id", len, name);
        return clcf->unknown_status;
    }

    /*
     * Copied under the lock into the largest size, kept in the size it
     * has: a tenant with one token takes a sixth of it, and the request
     * pool stays in one block.
     */

    tc = ngx_palloc(r->pool, copy.tconf.head);
    if (tc == NULL) {
        ngx_http_claw_tables_release(&cmcf->tables, t, ctx->hold, 0);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(tc, &copy.tconf, copy.tconf.head);

    ctx->tables = &cmcf->tables;
    ctx->tenant = t;
    ctx->tconf = tc;

    ctx->id.data = ngx_http_claw_tconf_id(tc);
    ctx->id.len = tc->id_len;
    ctx->upstream.data = ngx_http_claw_tconf_upstream(tc);
    ctx->upstream.len = tc->upstream_len;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "claw: tenant \"%V\" upstream \"%V\"",
                   &ctx->id, &ctx->upstream);

    return NGX_OK;
}


ngx_http_claw_ctx_t *
ngx_http_claw_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t   *cln;
    ngx_http_claw_ctx_t  *ctx;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_claw_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_claw_ctx_t));

    ctx->request = r;

    cln->handler = ngx_http_claw_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_claw_module);

    return ctx;
}


ngx_http_claw_ctx_t *
ngx_http_claw_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t   *cln;
    ngx_http_claw_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_claw_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        /* an internal redirect cleared the context; the cleanup keeps it */

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_claw_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_claw_module);
                break;
            }
        }
    }

    return ctx;
}


static void
ngx_http_claw_cleanup(void *data)
{
    ngx_http_claw_ctx_t  *ctx = data;

    if (ctx->linked) {
        ngx_http_claw_live_remove(ctx);
    }

    if (ctx->wake) {
        ngx_http_claw_wake_cleanup(ctx);
    }

    if (ctx->tenant) {
        ngx_http_claw_tables_release(ctx->tables, ctx->tenant, ctx->hold,
                                     ctx->active);
        ctx->tenant = NULL;
    }
}


/* what the module adds to, or takes from, a tenant's answers */

static ngx_int_t
ngx_http_claw_header_filter(ngx_http_request_t *r)
{
    ngx_http_claw_ctx_t       *ctx;
    ngx_http_claw_loc_conf_t  *clcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_claw_get_ctx(r);

    if (ctx == NULL || ctx->tenant == NULL) {
        return ngx_http_next_header_filter(r);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_claw_module);

    if (ngx_http_claw_limit_headers(r, ctx, clcf) != NGX_OK
        || ngx_http_claw_ssl_headers(r, ctx, clcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


/* "Retry-After" in whole seconds, at least one */

ngx_int_t
ngx_http_claw_retry_after(ngx_http_request_t *r, time_t seconds)
{
    u_char  value[NGX_TIME_T_LEN];

    return ngx_http_claw_add_header(r, "Retry-After", value,
                                    ngx_sprintf(value, "%T",
                                                ngx_max(seconds, 1))
                                    - value)
           ? NGX_OK : NGX_ERROR;
}


/* an answer's header, its value copied */

ngx_table_elt_t *
ngx_http_claw_add_header(ngx_http_request_t *r, char *name, u_char *value,
    size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->value.data = ngx_pnalloc(r->pool, len);
    if (h->value.data == NULL) {
        h->hash = 0;
        return NULL;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.len = len;
    ngx_memcpy(h->value.data, value, len);

    return h;
}


static ngx_int_t
ngx_http_claw_tenant_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t            *s;
    ngx_http_claw_ctx_t  *ctx;

    ctx = ngx_http_claw_get_ctx(r->main);

    if (ctx == NULL || ctx->tenant == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


/* $claw_limit (data 0) and $claw_auth_error (1): why, in a word */

static ngx_str_t  ngx_http_claw_limit_names[] = {
    ngx_null_string,
    ngx_string("pass"),
    ngx_string("rate"),
    ngx_string("conn"),
    ngx_string("lockout"),
    ngx_string("suspended"),
    ngx_string("maintenance"),
    ngx_string("address"),
    ngx_string("body"),
    ngx_string("down"),
    ngx_string("wake")
};

static ngx_str_t  ngx_http_claw_auth_error_names[] = {
    ngx_null_string,
    ngx_string("missing"),
    ngx_string("invalid"),
    ngx_string("expired"),
    ngx_string("conflict"),
    ngx_string("origin")
};


static ngx_int_t
ngx_http_claw_reason_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t            *name;
    ngx_http_claw_ctx_t  *ctx;

    ctx = ngx_http_claw_get_ctx(r->main);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    name = data ? &ngx_http_claw_auth_error_names[ctx->auth_error]
                : &ngx_http_claw_limit_names[ctx->limit];

    if (name->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = name->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = name->data;

    return NGX_OK;
}


/*
 * Which of a tenant's tokens a request came with, without the token: the
 * first 12 hex digits of its digest, as the registry lists it.  For a
 * session, the token it was minted from.
 */

static ngx_int_t
ngx_http_claw_token_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char               *p;
    ngx_http_claw_ctx_t  *ctx;

    ctx = ngx_http_claw_get_ctx(r->main);

    if (ctx == NULL || ctx->auth == NGX_HTTP_CLAW_AUTH_NONE
        || ctx->auth == NGX_HTTP_CLAW_AUTH_OFF)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 12);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_hex_dump(p, ctx->digest, 6) - p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/*
 * The tenant a request authenticated as, and nothing otherwise: what a
 * container may take as its signed-in user.  Empty in a location with
 * claw_auth off and for any request that did not authenticate; no
 * client header can set it.
 */

static ngx_int_t
ngx_http_claw_identity_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_claw_ctx_t  *ctx;

    ctx = ngx_http_claw_get_ctx(r->main);

    if (ctx == NULL || ctx->tenant == NULL || !ctx->admitted
        || ctx->auth == NGX_HTTP_CLAW_AUTH_NONE
        || ctx->auth == NGX_HTTP_CLAW_AUTH_OFF)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ctx->id.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = ctx->id.data;

    return NGX_OK;
}


/*
 * The request line with every claw_token value redacted, however far
 * the request got: $request is the line as the client sent it when nginx
 * refuses a request while reading its headers, before this module ran.
 */

static ngx_int_t
ngx_http_claw_request_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char  *p, *f;
    size_t   len;

    if (r->request_line.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* a fragment is shown as "#[redacted]", then every claw_token value */

    len = ngx_http_claw_fragment_redact(r->request_line.data,
                                        r->request_line.len, NULL);

    f = ngx_pnalloc(r->pool, len);
    if (f == NULL) {
        return NGX_ERROR;
    }

    len = ngx_http_claw_fragment_redact(r->request_line.data,
                                        r->request_line.len, f);

    p = ngx_pnalloc(r->pool, ngx_http_claw_arg_redact(f, len, NULL));
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_http_claw_arg_redact(f, len, p);
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_claw_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_claw_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_claw_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cmcf->tables.shm_zone = NULL;
     *     cmcf->journal.path = { 0, NULL };
     *     cmcf->registry.loaded = NULL;
     */

    if (ngx_array_init(&cmcf->suffixes, cf->pool, 4, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    cmcf->registry.tables = &cmcf->tables;
    cmcf->registry.journal = &cmcf->journal;
    cmcf->registry.suffixes = &cmcf->suffixes;
    cmcf->registry.conf_jfd = NGX_INVALID_FILE;
    cmcf->journal.fd = NGX_INVALID_FILE;
    cmcf->live.tables = &cmcf->tables;

    return cmcf;
}


static char *
ngx_http_claw_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_claw_main_conf_t  *cmcf = conf;

    if (cmcf->tables.shm_zone == NULL) {
        if (cmcf->journal.path.len || cmcf->cluster) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"%s\" requires \"claw_zone\"",
                          cmcf->cluster ? "claw_cluster" : "claw_tenants");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (cmcf->cluster) {
        cmcf->cluster->tables = &cmcf->tables;
        cmcf->cluster->apply = ngx_http_claw_apply;
        cmcf->cluster->applier = &cmcf->applier;
    }

    if (cmcf->journal.path.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"claw_zone\" \"%V\" requires \"claw_tenants\"",
                      &cmcf->tables.shm_zone->shm.name);
        return NGX_CONF_ERROR;
    }

#if (NGX_THREADS)

    cmcf->journal.thread_pool = ngx_http_claw_thread_pool(cf);
    if (cmcf->journal.thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

#endif

    /* every claw_domain has been read by now: domains are checked too */

    if (ngx_http_claw_registry_read(cf, &cmcf->registry) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


#if (NGX_THREADS)

/*
 * Disk work and waits for the journal's lock run on a thread pool of
 * the module's own, "claw", so that they never queue behind other work
 * (the default pool serves files).  Declared as "thread_pool claw
 * threads=4;" would declare it, unless the configuration did so before.
 */

static ngx_thread_pool_t *
ngx_http_claw_thread_pool(ngx_conf_t *cf)
{
    char               *rv;
    ngx_str_t          *value;
    ngx_array_t        *args, *saved;
    ngx_command_t      *cmd;
    ngx_thread_pool_t  *tp;

    tp = ngx_thread_pool_get(cf->cycle, &ngx_http_claw_pool_name);

    if (tp) {
        return tp;
    }

    args = ngx_array_create(cf->temp_pool, 3, sizeof(ngx_str_t));
    if (args == NULL) {
        return NULL;
    }

    value = ngx_array_push_n(args, 3);
    if (value == NULL) {
        return NULL;
    }

    ngx_str_set(&value[0], "thread_pool");
    value[1] = ngx_http_claw_pool_name;
    ngx_str_set(&value[2], "threads=4");

    for (cmd = ngx_thread_pool_module.commands; cmd->name.len; cmd++) {
        if (cmd->name.len == value[0].len
            && ngx_strcmp(cmd->name.data, value[0].data) == 0)
        {
            break;
        }
    }

    if (cmd->name.len == 0) {
        return NULL;
    }

    saved = cf->args;
    cf->args = args;

    rv = cmd->set(cf, cmd, NULL);

    cf->args = saved;

    if (rv != NGX_CONF_OK) {
        return NULL;
    }

    return ngx_thread_pool_get(cf->cycle, &ngx_http_claw_pool_name);
}

#endif


static void *
ngx_http_claw_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_claw_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_claw_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->certificates = { 0, NULL };
     *     conf->tables = NULL;
     *     conf->cache = NULL;
     */

    return conf;
}


static char *
ngx_http_claw_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_claw_srv_conf_t *prev = parent;
    ngx_http_claw_srv_conf_t *conf = child;

    ngx_conf_merge_str_value(conf->certificates, prev->certificates, "");

    if (conf->certificates.len
        && ngx_conf_full_name(cf->cycle, &conf->certificates, 1) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return ngx_http_claw_ssl_merge(cf, conf);
}


static void *
ngx_http_claw_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_claw_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_claw_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->tenant = { 0, NULL };
     */

    conf->enable = NGX_CONF_UNSET;
    conf->domains = NGX_CONF_UNSET_PTR;
    conf->operator = NGX_CONF_UNSET_PTR;
    conf->unknown_status = NGX_CONF_UNSET_UINT;
    conf->auth = NGX_CONF_UNSET;
    conf->session_authorization = NGX_CONF_UNSET_UINT;
    conf->session_ttl = NGX_CONF_UNSET;
    conf->fail_limit = NGX_CONF_UNSET_UINT;
    conf->burst = NGX_CONF_UNSET_UINT;
    conf->conn = NGX_CONF_UNSET_UINT;
    conf->rate_limit = NGX_CONF_UNSET;
    conf->rate_headers = NGX_CONF_UNSET;
    conf->limit_log_level = NGX_CONF_UNSET_UINT;
    conf->health_fails = NGX_CONF_UNSET_UINT;
    conf->wake = NGX_CONF_UNSET_PTR;
    conf->health_timeout = NGX_CONF_UNSET_MSEC;
    conf->hsts = NGX_CONF_UNSET;
    conf->hsts_subdomains = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_claw_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_claw_loc_conf_t *prev = parent;
    ngx_http_claw_loc_conf_t *conf = child;

    ngx_http_claw_main_conf_t  *cmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->tenant, prev->tenant, "");
    ngx_conf_merge_ptr_value(conf->domains, prev->domains, NULL);
    ngx_conf_merge_ptr_value(conf->operator, prev->operator, NULL);
    ngx_conf_merge_uint_value(conf->unknown_status, prev->unknown_status,
                              NGX_HTTP_NOT_FOUND);
    ngx_conf_merge_value(conf->auth, prev->auth, 1);

    if (conf->token_header.data == NULL) {
        conf->token_header = prev->token_header;
    }

    ngx_conf_merge_uint_value(conf->session_authorization,
                              prev->session_authorization, 0);
    ngx_conf_merge_str_value(conf->login_url, prev->login_url, "");
    ngx_conf_merge_sec_value(conf->session_ttl, prev->session_ttl,
                             12 * 60 * 60);
    ngx_conf_merge_uint_value(conf->fail_limit, prev->fail_limit, 30);

    if (conf->rate.period == 0) {
        conf->rate = prev->rate;
        conf->burst = prev->burst;
    }

    ngx_conf_merge_uint_value(conf->burst, prev->burst, 0);
    ngx_conf_merge_uint_value(conf->conn, prev->conn, 0);
    ngx_conf_merge_value(conf->rate_limit, prev->rate_limit, 1);
    ngx_conf_merge_value(conf->rate_headers, prev->rate_headers, 0);
    ngx_conf_merge_uint_value(conf->health_fails, prev->health_fails, 0);
    ngx_conf_merge_ptr_value(conf->wake, prev->wake, NULL);
    ngx_conf_merge_msec_value(conf->health_timeout, prev->health_timeout,
                              10000);
    ngx_conf_merge_uint_value(conf->limit_log_level, prev->limit_log_level,
                              NGX_LOG_ERR);

    if (conf->hsts == NGX_CONF_UNSET) {
        conf->hsts = prev->hsts;
        conf->hsts_subdomains = prev->hsts_subdomains;
    }

    ngx_conf_merge_sec_value(conf->hsts, prev->hsts, 0);
    ngx_conf_merge_value(conf->hsts_subdomains, prev->hsts_subdomains, 0);

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_claw_module);

    if ((conf->admin || conf->metrics) && cmcf->tables.shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" requires \"claw_zone\" and "
                           "\"claw_tenants\" in the http block",
                           conf->admin ? "claw_admin" : "claw_metrics");
        return NGX_CONF_ERROR;
    }

    /* the admin API is never behind a tenant's host and credentials */

    if (conf->admin && conf->enable) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"claw_admin\" cannot be in a location with "
                           "\"claw on\"");
        return NGX_CONF_ERROR;
    }

    if (conf->enable) {
        if (cmcf->tables.shm_zone == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"claw on\" requires \"claw_zone\" and "
                               "\"claw_tenants\" in the http block");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* claw_health max_fails=N [fail_timeout=T] | off */

static char *
ngx_http_claw_health(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_msec_t   ms;
    ngx_uint_t   i;

    if (clcf->health_fails != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        clcf->health_fails = 0;
        return NGX_CONF_OK;
    }

    clcf->health_fails = 3;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "max_fails=", 10) == 0) {
            n = ngx_atoi(value[i].data + 10, value[i].len - 10);

            if (n == NGX_ERROR || n < 1 || n > 1000) {
                goto invalid;
            }

            clcf->health_fails = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "fail_timeout=", 13) == 0) {
            s.data = value[i].data + 13;
            s.len = value[i].len - 13;

            ms = ngx_parse_time(&s, 0);

            if (ms == (ngx_msec_t) NGX_ERROR || ms < 1000) {
                goto invalid;
            }

            clcf->health_timeout = ms;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"%V\" in \"claw_health\": expected "
                       "max_fails=1..1000, fail_timeout=1s or more, or off",
                       &value[i]);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_claw_admin_token(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    return ngx_http_claw_operator_directive(cf, &clcf->operator);
}


static char *
ngx_http_claw_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_main_conf_t  *cmcf = conf;

    u_char     *p;
    ssize_t     size;
    ngx_str_t  *value, name, s;

    if (cmcf->tables.shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected \"name:size\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", &value[1]);
        return NGX_CONF_ERROR;
    }

    cmcf->tables.shm_zone = ngx_shared_memory_add(cf, &name, size,
                                                  &ngx_http_claw_module);
    if (cmcf->tables.shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cmcf->tables.shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    cmcf->tables.shm_zone->init = ngx_http_claw_init_zone;
    cmcf->tables.shm_zone->data = cmcf;

    /* failed credentials have a small zone of their own */

    if (ngx_http_claw_fail_add_zone(cf, &cmcf->fails, &name, size) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_claw_cluster(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_main_conf_t  *cmcf = conf;

    return ngx_http_claw_cluster_directive(cf, &cmcf->cluster);
}


static char *
ngx_http_claw_tenants(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_main_conf_t  *cmcf = conf;

    ngx_str_t  *value, path;

    if (cmcf->journal.path.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* admin changes are journaled beside the file, then folded into it */

    if (ngx_http_claw_journal_init(cf, &cmcf->journal, &path) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_claw_domain(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    size_t                      len;
    ngx_str_t                  *value, *s;
    ngx_http_claw_main_conf_t  *cmcf;

    value = cf->args->elts;

    len = value[1].len;

    if (ngx_http_claw_valid_suffix(value[1].data, &len) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid claw_domain \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    value[1].len = len;

    if (clcf->domains == NGX_CONF_UNSET_PTR) {
        clcf->domains = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (clcf->domains == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    s = ngx_array_push(clcf->domains);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    *s = value[1];

    /* the registry refuses custom domains under any of these */

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_claw_module);

    s = ngx_array_push(&cmcf->suffixes);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    *s = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_claw_tenant(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    ngx_str_t  *value;

    if (clcf->tenant.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (!ngx_http_claw_valid_id(value[1].data, value[1].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid tenant id \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf->tenant = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_claw_unknown_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (clcf->unknown_status != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n != NGX_HTTP_CLOSE && (n < 400 || n > 599)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid claw_unknown_status \"%V\", expected "
                           "a 4xx or 5xx status or 444", &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf->unknown_status = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_claw_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_claw_auth_post_read;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_claw_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_claw_metrics_log;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_claw_header_filter;

    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_claw_body_filter;

    return NGX_OK;
}


/* allow=: the client's address in one of the tenant's networks */

static ngx_uint_t
ngx_http_claw_allowed(ngx_http_request_t *r, ngx_http_claw_tconf_t *tc)
{
    ngx_uint_t             i;
    ngx_http_claw_cidr_t  *a;

    a = ngx_http_claw_tconf_allow(tc);

    for (i = 0; i < tc->nallow; i++) {
        if (ngx_http_claw_cidr_match(&a[i], r->connection->sockaddr)) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_claw_too_large(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx)
{
    (void) ngx_atomic_fetch_add(&ctx->tenant->refused_body, 1);
    ctx->limit = NGX_HTTP_CLAW_LIMIT_BODY;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "claw: a request body over the %O bytes of tenant \"%V\"",
                  (off_t) ctx->tconf->max_body, &ctx->id);

    r->lingering_close = 1;

    return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
}


/*
 * max_body= for a body whose length is not known before (chunked):
 * counted as it is read, and refused once past it, as
 * client_max_body_size is.
 */

static ngx_int_t
ngx_http_claw_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t          *cl;
    ngx_http_claw_ctx_t  *ctx;

    ctx = ngx_http_claw_get_ctx(r->main);

    if (ctx && ctx->tconf && ctx->tconf->max_body >= 0) {
        for (cl = in; cl; cl = cl->next) {
            ctx->body_received += ngx_buf_size(cl->buf);
        }

        if (ctx->body_received > ctx->tconf->max_body) {
            return ngx_http_claw_too_large(r, ctx);
        }
    }

    return ngx_http_next_request_body_filter(r, in);
}


/*
 * The zone is made or kept: the registry read from the file is prepared
 * in it (a zone too small fails the cycle), not put in force yet.
 */

static ngx_int_t
ngx_http_claw_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_claw_main_conf_t  *ocmcf = data;

    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = shm_zone->data;

    if (ngx_http_claw_tables_init_zone(&cmcf->tables, shm_zone,
                                       ocmcf ? &ocmcf->tables : NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_claw_registry_prepare(&cmcf->registry, ocmcf != NULL,
                                          shm_zone->shm.log);
}


/*
 * The cycle commits: every socket is bound, nothing can fail any more
 * and the new workers are about to start.  Only now does the registry
 * of this cycle go in force; the zones of the old cycle that this one
 * does not keep (resized, renamed) are retired, so that the old workers,
 * until they exit, take no change that the new zone would never see.
 */

static ngx_int_t
ngx_http_claw_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_shm_zone_t             *oshm;
    ngx_list_part_t            *part;
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_claw_module);

    if (cmcf == NULL || cmcf->tables.shm_zone == NULL) {
        return NGX_OK;
    }

    ngx_http_claw_registry_commit(&cmcf->registry, cycle->log);

    if (ngx_http_claw_domains_init_module(cmcf, cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (cycle->old_cycle == NULL || ngx_is_init_cycle(cycle->old_cycle)) {
        return NGX_OK;
    }

    part = &cycle->old_cycle->shared_memory.part;
    oshm = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            oshm = part->elts;
            i = 0;
        }

        if (oshm[i].tag != &ngx_http_claw_module
            || oshm[i].shm.addr == NULL
            || oshm[i].shm.addr == cmcf->tables.shm_zone->shm.addr)
        {
            continue;
        }

        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "claw zone \"%V\" replaced by \"%V\": the old "
                      "workers take no more changes",
                      &oshm[i].shm.name, &cmcf->tables.shm_zone->shm.name);

        ngx_http_claw_tables_retire(&oshm[i]);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_init_process(ngx_cycle_t *cycle)
{
    ngx_http_claw_main_conf_t  *cmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_claw_module);

    if (cmcf == NULL || cmcf->tables.shm_zone == NULL) {
        return NGX_OK;
    }

    ngx_http_claw_journal_init_worker(&cmcf->journal, cycle->log);
    ngx_http_claw_live_init_worker(&cmcf->live, cycle->log);

    if (ngx_http_claw_tables_init_worker(&cmcf->tables, cycle->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cmcf->cluster) {
        ngx_http_claw_apply_init(&cmcf->applier, &cmcf->tables,
                                 &cmcf->journal, cycle->log);

        if (ngx_http_claw_cluster_init_worker(cmcf->cluster, cycle)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        cmcf->share.cluster = cmcf->cluster;
        cmcf->share.tables = &cmcf->tables;
        cmcf->share.fails = &cmcf->fails;

        if (ngx_http_claw_share_init_worker(&cmcf->share, cycle) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_claw_domains_init_worker(cmcf, cycle);
}


static void
ngx_http_claw_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_claw_main_conf_t  *cmcf;

    ngx_http_claw_token_exit();

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_claw_module);

    if (cmcf == NULL || cmcf->tables.shm_zone == NULL) {
        return;
    }

    if (cmcf->cluster) {
        ngx_http_claw_share_exit_worker(&cmcf->share);
        ngx_http_claw_cluster_exit_worker(cmcf->cluster);
    }

    ngx_http_claw_journal_exit_worker(&cmcf->journal);
    ngx_http_claw_tables_exit_worker(&cmcf->tables);
}


static void
ngx_http_claw_exit_master(ngx_cycle_t *cycle)
{
    ngx_http_claw_token_exit();
}
