
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_MODULE_H_INCLUDED_
#define _NGX_HTTP_CLAW_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_parse.h"
#include "ngx_http_claw_tables.h"
#include "ngx_http_claw_journal.h"
#include "ngx_http_claw_registry.h"
#include "ngx_http_claw_fail.h"
#include "ngx_http_claw_apply.h"
#include "ngx_http_claw_cluster.h"
#include "ngx_http_claw_share.h"
#include "ngx_http_claw_operator.h"


/* $claw_auth */
#define NGX_HTTP_CLAW_AUTH_NONE    0
#define NGX_HTTP_CLAW_AUTH_BEARER  1
#define NGX_HTTP_CLAW_AUTH_COOKIE  2
#define NGX_HTTP_CLAW_AUTH_QUERY   3
#define NGX_HTTP_CLAW_AUTH_OFF     4


/* a worker's requests that relay for a credential (see live.c) */
typedef struct {
    ngx_queue_t                  requests;
    ngx_event_t                  check;
    ngx_atomic_uint_t            revoked;       /* the zone's, as last seen */
    ngx_uint_t                   ticks;
    ngx_http_claw_tables_t      *tables;
} ngx_http_claw_live_t;


typedef struct {
    ngx_http_claw_tables_t       tables;        /* the zone */
    ngx_http_claw_registry_t     registry;      /* the file */
    ngx_http_claw_journal_t      journal;       /* admin changes */
    ngx_http_claw_fails_t        fails;         /* failed credentials */
    ngx_http_claw_cluster_t     *cluster;       /* claw_cluster */
    ngx_http_claw_applier_t      applier;       /* the cluster's changes */
    ngx_http_claw_share_t        share;         /* limits across nodes */
    ngx_http_claw_live_t         live;
    ngx_array_t                  suffixes;      /* every claw_domain */
    void                        *domains;       /* domains.c, per worker */
    ngx_str_t                    cookie_secret;  /* the key itself */

    /*
     * more of the metrics page, from a module above this one (the ACME
     * client's names): start copies what it shows (NULL: an error),
     * fill writes whole lines and returns 1 when it is done
     */
    void                      *(*metrics_start)(ngx_http_request_t *r,
                                                ngx_uint_t tenants);
    ngx_uint_t                 (*metrics_fill)(void *data, ngx_buf_t *b);
} ngx_http_claw_main_conf_t;


typedef struct {
    ngx_str_t                    certificates;   /* claw_certificates */
    ngx_http_claw_tables_t      *tables;
    ngx_array_t                 *suffixes;       /* every claw_domain */
    void                        *cache;          /* its directory */

    /* claw_keepalive, in an upstream{} block */
    ngx_uint_t                   keepalive;
    ngx_msec_t                   keepalive_timeout;
    ngx_uint_t                   keepalive_requests;
    void                        *pool;           /* per worker */
} ngx_http_claw_srv_conf_t;


/* claw_wake uri [timeout=] [waiting=] [page=on] */
typedef struct {
    ngx_str_t                    uri;
    ngx_msec_t                   timeout;
    ngx_uint_t                   waiting;       /* held at once, a tenant */
    ngx_flag_t                   page;
} ngx_http_claw_wake_conf_t;


typedef struct {
    ngx_flag_t                   enable;
    ngx_str_t                    tenant;
    ngx_array_t                 *domains;        /* of ngx_str_t */
    ngx_uint_t                   unknown_status;

    ngx_flag_t                   auth;
    ngx_str_t                    token_header;   /* lowercase; empty:
                                                    Authorization */
    ngx_uint_t                   session_authorization;  /* 1: pass */
    ngx_str_t                    login_url;
    time_t                       session_ttl;
    ngx_uint_t                   fail_limit;     /* per minute, 0: off */

    ngx_http_claw_rate_t         rate;           /* period 0: not set */
    ngx_uint_t                   burst;
    ngx_uint_t                   conn;
    ngx_flag_t                   rate_limit;     /* claw_rate_limit */
    ngx_flag_t                   rate_headers;
    ngx_uint_t                   limit_log_level;

    time_t                       hsts;           /* max-age, 0: off */
    ngx_flag_t                   hsts_subdomains;

    ngx_http_claw_operator_t    *operator;       /* claw_admin_token */
    ngx_uint_t                   health_fails;   /* claw_health, 0: off */
    ngx_msec_t                   health_timeout;
    ngx_http_claw_wake_conf_t   *wake;           /* NULL: claw_wake off */
    unsigned                     admin:1;
    unsigned                     metrics:1;
    unsigned                     metrics_tenants:1;  /* per-tenant series */
    unsigned                     metrics_upstream:1; /* and upstream ones */
} ngx_http_claw_loc_conf_t;


/*
 * Per request, kept in a pool cleanup so that it survives internal
 * redirects (which clear module contexts) and releases the tenant's
 * slot however the request ends.
 */

typedef struct {
    ngx_http_request_t          *request;
    ngx_http_claw_tables_t      *tables;
    ngx_http_claw_tenant_t      *tenant;         /* pinned, or NULL */
    ngx_http_claw_hold_t        *hold;           /* this worker's record */
    ngx_http_claw_tconf_t       *tconf;          /* the request's copy */

    ngx_str_t                    id;
    ngx_str_t                    upstream;

    /* the container's address with the tenant tag, for the balancer */
    ngx_sockaddr_t               peer;
    socklen_t                    peer_len;
    uint32_t                     peer_hash;

    /* credentials as the client sent them, taken off the request */
    ngx_str_t                    bearer;
    ngx_table_elt_t             *bearer_header;  /* left until checked */
    ngx_str_t                    cookie;
    ngx_str_t                    query;
    unsigned                     bearer_malformed:1;
    unsigned                     cookie_conflict:1;
    unsigned                     query_conflict:1;
    unsigned                     has_bearer:1;
    unsigned                     has_cookie:1;
    unsigned                     has_query:1;
    unsigned                     extracted:1;

    /* the token the request authenticated with (or its session's) */
    u_char                       digest[NGX_HTTP_CLAW_DIGEST_LEN];
    ngx_atomic_uint_t            revoked;        /* the tenant's, as seen */
    ngx_queue_t                  live;           /* in the worker's list */
    unsigned                     linked:1;
    unsigned                     cut:1;          /* revoked in flight */

    unsigned                     auth:3;         /* $claw_auth */
    unsigned                     limit:4;        /* $claw_limit */
    unsigned                     auth_error:3;   /* $claw_auth_error */
    unsigned                     admitted:1;
    ngx_uint_t                   refused;        /* the status, once */
    unsigned                     limited:1;      /* limits were applied */
    unsigned                     probe:1;        /* tries a container down */
    unsigned                     active:1;       /* counted in flight */
    unsigned                     counted:1;      /* in the metrics */
    unsigned                     waking:1;       /* held by claw_wake */

    off_t                        body_received;  /* against max_body */
    void                        *wake;           /* wake.c's, once held */
    off_t                        traffic;        /* bytes both ways, as last seen */

    /* for the RateLimit headers */
    uint64_t                     rate_quota;
    uint64_t                     rate_remaining;
    time_t                       rate_window;
    time_t                       rate_reset;
} ngx_http_claw_ctx_t;


/* one place for the module's version (claw_build_info) */
#define NGX_HTTP_CLAW_VERSION            "0.19.0"


/* $claw_limit: what the limits said (empty: they were not reached) */
#define NGX_HTTP_CLAW_LIMIT_PASS         1
#define NGX_HTTP_CLAW_LIMIT_RATE         2
#define NGX_HTTP_CLAW_LIMIT_CONN         3
#define NGX_HTTP_CLAW_LIMIT_LOCKOUT      4
#define NGX_HTTP_CLAW_LIMIT_SUSPENDED    5
#define NGX_HTTP_CLAW_LIMIT_MAINTENANCE  6
#define NGX_HTTP_CLAW_LIMIT_ADDRESS      7
#define NGX_HTTP_CLAW_LIMIT_BODY         8
#define NGX_HTTP_CLAW_LIMIT_DOWN         9
#define NGX_HTTP_CLAW_LIMIT_WAKE         10     /* asleep, not woken */

/* $claw_auth_error: why no credential was good (empty: none failed) */
#define NGX_HTTP_CLAW_AUTH_ERR_MISSING   1
#define NGX_HTTP_CLAW_AUTH_ERR_INVALID   2
#define NGX_HTTP_CLAW_AUTH_ERR_EXPIRED   3
#define NGX_HTTP_CLAW_AUTH_ERR_CONFLICT  4
#define NGX_HTTP_CLAW_AUTH_ERR_ORIGIN    5


ngx_http_claw_ctx_t *ngx_http_claw_get_ctx(ngx_http_request_t *r);
ngx_http_claw_ctx_t *ngx_http_claw_create_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_claw_retry_after(ngx_http_request_t *r, time_t seconds);
ngx_table_elt_t *ngx_http_claw_add_header(ngx_http_request_t *r, char *name,
    u_char *value, size_t len);


extern ngx_module_t  ngx_http_claw_module;


#endif /* _NGX_HTTP_CLAW_MODULE_H_INCLUDED_ */
