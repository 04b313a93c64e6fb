
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Tenant authentication: a token of the resolved tenant as a Bearer
 * credential, a session cookie minted from one, or the claw_token query
 * argument (browser bootstrap and WebSocket upgrades).  The credentials
 * are taken off the request before anything else sees them; failures
 * are counted per client address in the shared zone.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_auth.h"
#include "ngx_http_claw_token.h"


#define NGX_HTTP_CLAW_ABSENT       0
#define NGX_HTTP_CLAW_VALID        1
#define NGX_HTTP_CLAW_INVALID      2
#define NGX_HTTP_CLAW_EXPIRED      3   /* a session of ours, past its time */
#define NGX_HTTP_CLAW_NOT_CHECKED  4


/* headers taken out of a request: where the elements kept go */

typedef struct {
    ngx_list_t                  *list;
    ngx_table_elt_t             *to;
    ngx_int_t                   *dropped;       /* their places, sorted */
    ngx_uint_t                   ndropped;
} ngx_http_claw_drop_t;


static ngx_int_t ngx_http_claw_extract_cookies(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx, ngx_array_t *drop);
static ngx_int_t ngx_http_claw_headers_drop(ngx_http_request_t *r,
    ngx_array_t *drop);
static ngx_int_t ngx_http_claw_header_index(ngx_list_t *l,
    ngx_table_elt_t *h);
static int ngx_libc_cdecl ngx_http_claw_index_cmp(const void *one,
    const void *two);
static ngx_uint_t ngx_http_claw_dropped_before(ngx_http_claw_drop_t *d,
    ngx_int_t n);
#if (nginx_version >= 1023000)
static ngx_table_elt_t *ngx_http_claw_remap_chain(ngx_http_claw_drop_t *d,
    ngx_table_elt_t *h);
#endif
static ngx_table_elt_t *ngx_http_claw_remap(ngx_http_claw_drop_t *d,
    ngx_table_elt_t *h);
static ngx_table_elt_t *ngx_http_claw_header_find(ngx_http_request_t *r,
    char *lowcase_name, size_t len, ngx_uint_t *count);
static ngx_uint_t ngx_http_claw_check_token(ngx_http_claw_ctx_t *ctx,
    ngx_str_t *token, u_char *digest);
static ngx_uint_t ngx_http_claw_check_cookie(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx, u_char *digest);
static ngx_uint_t ngx_http_claw_is_websocket(ngx_http_request_t *r);
static ngx_int_t ngx_http_claw_origin(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx);
static ngx_uint_t ngx_http_claw_session_request_ok(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx,
    ngx_uint_t websocket);
static ngx_int_t ngx_http_claw_bootstrap(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx, u_char *digest);
static ngx_int_t ngx_http_claw_unauthorized(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf);
static ngx_uint_t ngx_http_claw_navigation(ngx_http_request_t *r);
static ngx_uint_t ngx_http_claw_header_char(u_char ch);
static ngx_int_t ngx_http_claw_drop_header(ngx_http_request_t *r,
    ngx_table_elt_t *h);
static ngx_int_t ngx_http_claw_failed(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx,
    ngx_int_t status, char *why);
static size_t ngx_http_claw_fail_key(ngx_http_request_t *r, u_char *key);


static ngx_str_t  ngx_http_claw_auth_names[] = {
    ngx_null_string,
    ngx_string("bearer"),
    ngx_string("cookie"),
    ngx_string("query"),
    ngx_string("off")
};


/*
 * The claw_token argument is taken off the request as soon as its
 * header is read, before any rewrite, log line or location sees it: the
 * proxied URI and $args, $request_uri lose it, the request line that
 * $request and error log lines show has its value redacted.
 */

ngx_int_t
ngx_http_claw_auth_post_read(ngx_http_request_t *r)
{
    int                         rc;
    u_char                     *p, *q, *end;
    size_t                      len, vlen;
    unsigned                    count;
    ngx_str_t                   args;
    ngx_http_claw_ctx_t        *ctx;
    ngx_http_claw_main_conf_t  *cmcf;
    u_char                      value[NGX_HTTP_CLAW_TOKEN_MAX];

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    if (cmcf->tables.shm_zone == NULL || r != r->main || r->args.len == 0)
    {
        return NGX_DECLINED;
    }

    end = r->args.data + r->args.len;

    /* the name may come percent-escaped */

    if (ngx_strlcasestrn(r->args.data, end, (u_char *) "claw", 4 - 1) == NULL
        && ngx_strlchr(r->args.data, end, '%') == NULL)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_claw_arg_find(r->args.data, r->args.len, value, &vlen,
                                &count);
    if (count == 0) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_claw_get_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_claw_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ctx->has_query = 1;

    if (rc == -1) {
        ctx->query_conflict = 1;

    } else if (vlen <= NGX_HTTP_CLAW_TOKEN_MAX) {
        ctx->query.data = ngx_pnalloc(r->pool, vlen);
        if (ctx->query.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ctx->query.data, value, vlen);
        ctx->query.len = vlen;

    } else {
        /* too long for a token: checked by length alone */
        ctx->query.len = vlen;
    }

    len = ngx_http_claw_arg_redact(r->request_line.data,
                                   r->request_line.len, NULL);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_claw_arg_redact(r->request_line.data, r->request_line.len, p);

    r->request_line.data = p;
    r->request_line.len = len;

    args.data = ngx_pnalloc(r->pool, r->args.len);
    if (args.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args.len = ngx_http_claw_arg_strip(r->args.data, r->args.len, args.data);

    q = ngx_strlchr(r->unparsed_uri.data,
                    r->unparsed_uri.data + r->unparsed_uri.len, '?');
    if (q == NULL) {
        q = r->unparsed_uri.data + r->unparsed_uri.len;
    }

    len = q - r->unparsed_uri.data;

    p = ngx_pnalloc(r->pool, len + 1 + args.len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->unparsed_uri.len = ngx_cpymem(p, r->unparsed_uri.data, len) - p;
    r->unparsed_uri.data = p;

    if (args.len) {
        p[r->unparsed_uri.len++] = '?';
        ngx_memcpy(p + r->unparsed_uri.len, args.data, args.len);
        r->unparsed_uri.len += args.len;
    }

    r->args = args;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "claw: %ui claw_token argument(s) taken off, uri \"%V\"",
                   (ngx_uint_t) count, &r->unparsed_uri);

    return NGX_DECLINED;
}


/*
 * Returns NGX_OK for a request authenticated as the resolved tenant,
 * NGX_DECLINED where claw_auth is off, or the status to answer with.
 */

ngx_int_t
ngx_http_claw_auth(ngx_http_request_t *r, ngx_http_claw_loc_conf_t *clcf,
    ngx_http_claw_ctx_t *ctx)
{
    time_t                      retry;
    ngx_str_t                  *token;
    ngx_uint_t                  t, c, websocket, bootstrap;
    ngx_http_claw_main_conf_t  *cmcf;
    u_char                      key[NGX_HTTP_CLAW_FAIL_KEY];
    u_char                      digest[NGX_HTTP_CLAW_DIGEST_LEN];
    u_char                      cdigest[NGX_HTTP_CLAW_DIGEST_LEN];

    if (ctx->auth != NGX_HTTP_CLAW_AUTH_NONE
        && ctx->auth != NGX_HTTP_CLAW_AUTH_OFF)
    {
        /* authenticated before an internal redirect */
        return NGX_OK;
    }

    if (!clcf->auth) {
        ctx->auth = NGX_HTTP_CLAW_AUTH_OFF;
        return NGX_DECLINED;
    }

    ctx->auth = NGX_HTTP_CLAW_AUTH_NONE;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    c = NGX_HTTP_CLAW_NOT_CHECKED;

    if (ctx->bearer_header) {

        /*
         * claw_session_authorization pass: with a valid session, the
         * Bearer is the container's: not checked, not counted, left on
         * the request; without one, it is the edge's after all, and
         * taken off now
         */

        c = ngx_http_claw_check_cookie(r, clcf, ctx, cdigest);

        if (c == NGX_HTTP_CLAW_VALID) {
            ctx->has_bearer = 0;
            ctx->bearer_malformed = 0;
            ngx_str_null(&ctx->bearer);

            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "claw: Authorization left to the container");

        } else if (ngx_http_claw_drop_header(r, ctx->bearer_header)
                   != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->bearer_header = NULL;
    }

    /*
     * An address over the limit gets 429 for any token before it is
     * checked, a good one included, on every tenant: the answer must not
     * tell a guesser which guess was right.  A session cookie is still
     * honoured: its HMAC cannot be guessed, so it tells a guesser
     * nothing, and a page that makes its visitors fail (an <img> with a
     * bogus claw_token) cannot lock them out of their sessions.
     */

    if (clcf->fail_limit && (ctx->has_bearer || ctx->has_query)) {
        retry = ngx_http_claw_fail_wait(&cmcf->fails, key,
                                        ngx_http_claw_fail_key(r, key),
                                        clcf->fail_limit);
        if (retry) {
            (void) ngx_atomic_fetch_add(&ctx->tenant->lockouts, 1);
            ctx->limit = NGX_HTTP_CLAW_LIMIT_LOCKOUT;

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "claw: address locked out after too many failed "
                          "credentials, tenant \"%V\"", &ctx->id);

            if (ngx_http_claw_retry_after(r, retry) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return NGX_HTTP_TOO_MANY_REQUESTS;
        }
    }

    websocket = ngx_http_claw_is_websocket(r);

    /* a Bearer token and a different claw_token disagree */

    if (ctx->query_conflict || ctx->cookie_conflict
        || (ctx->has_bearer && ctx->has_query
            && (ctx->bearer_malformed
                || ctx->bearer.len != ctx->query.len
                || ctx->query.data == NULL
                || ngx_memcmp(ctx->bearer.data, ctx->query.data,
                              ctx->bearer.len)
                   != 0)))
    {
        return ngx_http_claw_failed(r, clcf, ctx, NGX_HTTP_BAD_REQUEST,
                                    "conflicting credentials");
    }

    /*
     * claw_token counts on a WebSocket upgrade, and on a plain GET when
     * sessions are on (it becomes a cookie); anywhere else it was only
     * taken off the request.
     */

    token = NULL;
    bootstrap = 0;

    if (ctx->has_bearer) {
        token = &ctx->bearer;

    } else if (ctx->has_query) {
        if (websocket) {
            token = &ctx->query;

        } else if (r->method == NGX_HTTP_GET && cmcf->cookie_secret.len) {
            token = &ctx->query;
            bootstrap = 1;
        }
    }

    t = NGX_HTTP_CLAW_ABSENT;

    if (token) {
        t = (token == &ctx->bearer && ctx->bearer_malformed)
            ? NGX_HTTP_CLAW_INVALID
            : ngx_http_claw_check_token(ctx, token, digest);
    }

    if (c == NGX_HTTP_CLAW_NOT_CHECKED) {
        c = ngx_http_claw_check_cookie(r, clcf, ctx, cdigest);
    }

    /* a genuine session past its time is no guess: not counted */

    if (c == NGX_HTTP_CLAW_EXPIRED && t != NGX_HTTP_CLAW_ABSENT) {
        c = NGX_HTTP_CLAW_INVALID;

    } else if (c == NGX_HTTP_CLAW_EXPIRED) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "claw: session expired");
        ctx->auth_error = NGX_HTTP_CLAW_AUTH_ERR_EXPIRED;
        return ngx_http_claw_unauthorized(r, clcf);
    }

    if (t == NGX_HTTP_CLAW_ABSENT && c == NGX_HTTP_CLAW_ABSENT) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "claw: no credential");
        ctx->auth_error = NGX_HTTP_CLAW_AUTH_ERR_MISSING;
        return ngx_http_claw_unauthorized(r, clcf);
    }

    if (t != NGX_HTTP_CLAW_VALID && c != NGX_HTTP_CLAW_VALID) {
        ctx->auth_error = NGX_HTTP_CLAW_AUTH_ERR_INVALID;
        return ngx_http_claw_failed(r, clcf, ctx, NGX_HTTP_UNAUTHORIZED,
                                    "invalid credential");
    }

    if (t == NGX_HTTP_CLAW_INVALID) {
        /* a valid session, and a token that is not valid with it */
        return ngx_http_claw_failed(r, clcf, ctx, NGX_HTTP_BAD_REQUEST,
                                    "conflicting credentials");
    }

    if (c == NGX_HTTP_CLAW_INVALID && !bootstrap) {
        /* a dead session is replaced only by a new login */
        return ngx_http_claw_failed(r, clcf, ctx, NGX_HTTP_BAD_REQUEST,
                                    "conflicting credentials");
    }

    if (t == NGX_HTTP_CLAW_VALID) {
        ctx->auth = (token == &ctx->bearer) ? NGX_HTTP_CLAW_AUTH_BEARER
                                            : NGX_HTTP_CLAW_AUTH_QUERY;
        ngx_memcpy(ctx->digest, digest, NGX_HTTP_CLAW_DIGEST_LEN);

    } else {
        ctx->auth = NGX_HTTP_CLAW_AUTH_COOKIE;
        ngx_memcpy(ctx->digest, cdigest, NGX_HTTP_CLAW_DIGEST_LEN);

        if (!ngx_http_claw_session_request_ok(r, clcf, ctx, websocket)) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "claw: %s with the session of tenant \"%V\" "
                          "from a foreign origin",
                          websocket ? "WebSocket" : "request", &ctx->id);
            ctx->auth = NGX_HTTP_CLAW_AUTH_NONE;
            ctx->auth_error = NGX_HTTP_CLAW_AUTH_ERR_ORIGIN;
            return NGX_HTTP_FORBIDDEN;
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "claw: tenant \"%V\" authenticated by %V", &ctx->id,
                   &ngx_http_claw_auth_names[ctx->auth]);

    if (bootstrap && t == NGX_HTTP_CLAW_VALID) {
        return ngx_http_claw_bootstrap(r, clcf, ctx, digest);
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_claw_check_token(ngx_http_claw_ctx_t *ctx, ngx_str_t *token,
    u_char *digest)
{
    ngx_http_claw_tconf_t  *tc;

    /* malformed and oversized tokens cost no hashing */

    if (token->data == NULL
        || !ngx_http_claw_token_valid(token->data, token->len))
    {
        return NGX_HTTP_CLAW_INVALID;
    }

    ngx_http_claw_token_digest(token->data, token->len, digest);

    tc = ctx->tconf;

    if (ngx_http_claw_digest_find(digest, ngx_http_claw_tconf_tokens(tc),
                                  tc->ntokens)
        < 0)
    {
        return NGX_HTTP_CLAW_INVALID;
    }

    return NGX_HTTP_CLAW_VALID;
}


static ngx_uint_t
ngx_http_claw_check_cookie(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx, u_char *digest)
{
    int                         i;
    ngx_http_claw_tconf_t      *tc;
    ngx_http_claw_session_t     s;
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    /* without a secret there are no sessions: the cookie was only taken */

    if (!ctx->has_cookie || cmcf->cookie_secret.len == 0) {
        return NGX_HTTP_CLAW_ABSENT;
    }

    if (ngx_http_claw_session_decode(ctx->cookie.data, ctx->cookie.len, &s)
        != 0)
    {
        return NGX_HTTP_CLAW_INVALID;
    }

    tc = ctx->tconf;

    /* a lowered claw_session_ttl holds for sessions minted before */

    i = (s.expiry > (uint64_t) (ngx_time() + clcf->session_ttl))
        ? -1
        : ngx_http_claw_session_verify(cmcf->cookie_secret.data,
                                       cmcf->cookie_secret.len,
                                       ctx->id.data, ctx->id.len, &s,
                                       (uint64_t) ngx_time(),
                                       ngx_http_claw_tconf_tokens(tc),
                                       tc->ntokens);
    if (i < 0) {

        /*
         * Past its time, or beyond a lowered claw_session_ttl: a session
         * the module did mint is no guess, and is not counted as one
         */

        if (s.expiry > (uint64_t) ngx_time()
            && s.expiry <= (uint64_t) (ngx_time() + clcf->session_ttl))
        {
            return NGX_HTTP_CLAW_INVALID;
        }

        i = ngx_http_claw_session_verify(cmcf->cookie_secret.data,
                                         cmcf->cookie_secret.len,
                                         ctx->id.data, ctx->id.len, &s,
                                         s.expiry - 1,
                                         ngx_http_claw_tconf_tokens(tc),
                                         tc->ntokens);

        return (i < 0) ? NGX_HTTP_CLAW_INVALID : NGX_HTTP_CLAW_EXPIRED;
    }

    /* the session lives as long as the token it was minted from */

    ngx_memcpy(digest,
               ngx_http_claw_tconf_tokens(tc) + i * NGX_HTTP_CLAW_DIGEST_LEN,
               NGX_HTTP_CLAW_DIGEST_LEN);

    return NGX_HTTP_CLAW_VALID;
}


/*
 * Takes the platform's credentials off the request, so that the
 * container never sees them, whether or not this location checks them:
 * a Bearer Authorization header, the session cookie, and any X-Claw-*
 * header a client made up (those are the edge's to set).
 */

ngx_int_t
ngx_http_claw_auth_extract(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx)
{
    ngx_uint_t             i, n;
    ngx_array_t            drop;
    ngx_list_part_t       *part;
    ngx_table_elt_t       *h, *header, **hp;
    ngx_http_claw_span_t   span;

    ctx->extracted = 1;

    if (ngx_array_init(&drop, r->pool, 4, sizeof(ngx_table_elt_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_claw_extract_cookies(r, ctx, &drop) != NGX_OK) {
        return NGX_ERROR;
    }

    if (clcf->token_header.len) {

        /*
         * The edge's token comes in a header of its own ("X-Claw-Token:
         * <token>", or "Bearer <token>"): Authorization is the
         * container's, untouched.  Several of them disagree.
         */

        h = ngx_http_claw_header_find(r, (char *) clcf->token_header.data,
                                      clcf->token_header.len, &n);
        if (h) {
            ctx->has_bearer = 1;

            switch (ngx_http_claw_bearer(h->value.data, h->value.len,
                                         &span))
            {
            case NGX_HTTP_CLAW_CRED_OK:
                break;

            case NGX_HTTP_CLAW_CRED_NONE:
                span.data = h->value.data;
                span.len = h->value.len;

                if (ngx_http_claw_token_valid(span.data, span.len)) {
                    break;
                }

                /* fall through */

            default:
                ctx->bearer_malformed = 1;
                break;
            }

            if (n > 1) {
                ctx->bearer_malformed = 1;
            }

            ctx->bearer.data = (u_char *) span.data;
            ctx->bearer.len = span.len;
        }

    } else if (r->headers_in.authorization) {
        h = r->headers_in.authorization;

        switch (ngx_http_claw_bearer(h->value.data, h->value.len, &span)) {

        case NGX_HTTP_CLAW_CRED_OK:
            ctx->has_bearer = 1;
            ctx->bearer.data = (u_char *) span.data;
            ctx->bearer.len = span.len;
            break;

        case NGX_HTTP_CLAW_CRED_MALFORMED:
            ctx->has_bearer = 1;
            ctx->bearer_malformed = 1;
            break;

        default: /* another scheme: not ours to take */
            break;
        }

        /*
         * claw_session_authorization pass: beside a session, a Bearer may
         * be the container's own (a gateway's device token); it stays on
         * the request until the session is checked (ngx_http_claw_auth)
         */

        if (ctx->has_bearer && clcf->session_authorization
            && ctx->has_cookie)
        {
            ctx->bearer_header = h;

        } else if (ctx->has_bearer) {
            hp = ngx_array_push(&drop);
            if (hp == NULL) {
                return NGX_ERROR;
            }

            *hp = h;
        }
    }

    part = &r->headers_in.headers.part;
    header = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            header = part->elts;
            i = 0;
        }

        if ((header[i].key.len > sizeof("x-claw-") - 1
             && header[i].lowcase_key[0] == 'x'
             && ngx_strncmp(header[i].lowcase_key, "x-claw-",
                            sizeof("x-claw-") - 1)
                == 0)
            || (clcf->token_header.len
                && header[i].key.len == clcf->token_header.len
                && ngx_strncmp(header[i].lowcase_key,
                               clcf->token_header.data,
                               clcf->token_header.len)
                   == 0))
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "claw: client header \"%V\" removed",
                           &header[i].key);

            hp = ngx_array_push(&drop);
            if (hp == NULL) {
                return NGX_ERROR;
            }

            *hp = &header[i];
        }
    }

    if (drop.nelts) {
        return ngx_http_claw_headers_drop(r, &drop);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_extract_cookies(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    ngx_array_t *drop)
{
    int                    rc;
    u_char                *p;
    size_t                 len;
    unsigned               count;
    ngx_table_elt_t       *h, **hp;
    ngx_http_claw_span_t   span;
#if (nginx_version < 1023000)
    ngx_uint_t             i;
    ngx_table_elt_t      **cookies;

    cookies = r->headers_in.cookies.elts;

    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        h = cookies[i];
#else
    for (h = r->headers_in.cookie; h; h = h->next) {
#endif

        rc = ngx_http_claw_cookie_find(h->value.data, h->value.len, &span,
                                       &count);

        if (rc == 0) {
            continue;
        }

        if (rc == -1) {
            ctx->cookie_conflict = 1;

        } else if (!ctx->has_cookie) {
            ctx->has_cookie = 1;
            ctx->cookie.data = (u_char *) span.data;
            ctx->cookie.len = span.len;

        } else if (span.len != ctx->cookie.len
                   || ngx_memcmp(span.data, ctx->cookie.data, span.len) != 0)
        {
            ctx->cookie_conflict = 1;
        }

        /*
         * The old value stays in memory: ctx->cookie points into it.  The
         * pairs kept are joined with "; ", so each ";" may grow by one.
         */

        p = ngx_pnalloc(r->pool, 2 * h->value.len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        len = ngx_http_claw_cookie_strip(h->value.data, h->value.len, p);

        if (len) {
            h->value.data = p;
            h->value.len = len;
            continue;
        }

        hp = ngx_array_push(drop);
        if (hp == NULL) {
            return NGX_ERROR;
        }

        *hp = h;
    }

    return NGX_OK;
}


/*
 * Drops headers from the request.  The elements kept move down over the
 * dropped ones, and every pointer nginx keeps into the list (the fields
 * of ngx_http_headers_in[], the Cookie and X-Forwarded-For arrays before
 * 1.23, the chains of repeats since) moves with its element.  A list of
 * one part, the usual case, is compacted in place, with no allocation.
 * nginx's loops over a list cannot step over an empty part, so a list of
 * several parts is compacted into one new part instead, as large as a
 * part (a smaller one would overflow on the next push).  So is a list
 * another request may share: a subrequest made before an internal
 * redirect brought the request here has a copy of headers_in, with the
 * same elements and its own count of them.
 */

static ngx_int_t
ngx_http_claw_headers_drop(ngx_http_request_t *r, ngx_array_t *drop)
{
    char                  *field;
    ngx_int_t              n, m, places[8];
    ngx_uint_t             i, j, k, nalloc, shared;
    ngx_list_t            *l;
    ngx_list_part_t       *part;
    ngx_table_elt_t       *header, **ph, **dropped;
    ngx_http_header_t     *hh;
    ngx_http_claw_drop_t   d;
#if (nginx_version < 1023000)
    ngx_array_t           *a;
    ngx_table_elt_t      **ah, **to;

    /* the handler of the headers kept in arrays: Cookie, X-Forwarded-For */
    static ngx_http_header_handler_pt  multi;
#else
    ngx_table_elt_t       *next;
#endif

    l = &r->headers_in.headers;
    dropped = drop->elts;

    d.list = l;
    d.ndropped = 0;

    d.dropped = places;

    if (drop->nelts > sizeof(places) / sizeof(places[0])) {
        d.dropped = ngx_palloc(r->pool, drop->nelts * sizeof(ngx_int_t));
        if (d.dropped == NULL) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < drop->nelts; i++) {
        n = ngx_http_claw_header_index(l, dropped[i]);

        if (n != -1) {
            d.dropped[d.ndropped++] = n;
        }
    }

    if (d.ndropped > 1) {
        ngx_qsort(d.dropped, d.ndropped, sizeof(ngx_int_t),
                  ngx_http_claw_index_cmp);

        /* each once */

        for (i = 1, j = 1; i < d.ndropped; i++) {
            if (d.dropped[i] != d.dropped[j - 1]) {
                d.dropped[j++] = d.dropped[i];
            }
        }

        d.ndropped = j;
    }

    nalloc = l->nalloc;
    shared = (r->main->count > 1);

    if (l->part.next == NULL && !shared) {
        d.to = l->part.elts;

    } else {
        n = 0;

        for (part = &l->part; part; part = part->next) {
            n += part->nelts;
        }

        nalloc = ngx_max(nalloc, (ngx_uint_t) n);

        d.to = ngx_palloc(r->pool, nalloc * sizeof(ngx_table_elt_t));
        if (d.to == NULL) {
            return NGX_ERROR;
        }
    }

    /* the pointers first: the chains are read through dropped elements */

#if (nginx_version < 1023000)
    if (multi == NULL) {
        for (hh = ngx_http_headers_in; hh->name.len; hh++) {
            if (hh->name.len == sizeof("Cookie") - 1
                && ngx_strcmp(hh->name.data, "Cookie") == 0)
            {
                multi = hh->handler;
                break;
            }
        }
    }
#endif

    for (hh = ngx_http_headers_in; hh->name.len; hh++) {
        field = (char *) &r->headers_in + hh->offset;

#if (nginx_version < 1023000)
        if (hh->handler == multi) {
            a = (ngx_array_t *) field;
            ah = a->elts;
            to = ah;

            /* a shared array of pointers is left to its other owner */

            if (shared && a->nelts) {
                to = ngx_palloc(r->pool, a->nelts * sizeof(ngx_table_elt_t *));
                if (to == NULL) {
                    return NGX_ERROR;
                }

                a->elts = to;
                a->nalloc = a->nelts;
                a->pool = r->pool;
            }

            for (i = 0, j = 0; i < a->nelts; i++) {
                to[j] = ngx_http_claw_remap(&d, ah[i]);

                if (to[j]) {
                    j++;
                }
            }

            a->nelts = j;
            continue;
        }
#endif

        ph = (ngx_table_elt_t **) field;

        if (*ph) {
#if (nginx_version >= 1023000)
            *ph = ngx_http_claw_remap_chain(&d, *ph);
#else
            *ph = ngx_http_claw_remap(&d, *ph);
#endif
        }
    }

    /*
     * Then the elements, in list order: an element is written at or
     * before the place it is read from, and a chain of repeats only
     * leads to later elements, not yet moved.
     */

    j = 0;
    k = 0;
    m = 0;
    part = &l->part;
    header = part->elts;

    for (i = 0; /* void */ ; i++, m++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            header = part->elts;
            i = 0;
        }

        if (j < d.ndropped && d.dropped[j] == m) {
            j++;
            continue;
        }

#if (nginx_version >= 1023000)
        next = ngx_http_claw_remap_chain(&d, header[i].next);
#endif

        if (&d.to[k] != &header[i]) {
            d.to[k] = header[i];
        }

#if (nginx_version >= 1023000)
        d.to[k].next = next;
#endif

        k++;
    }

    if (d.to != l->part.elts) {
        l->part.elts = d.to;
        l->part.next = NULL;
        l->last = &l->part;
        l->nalloc = nalloc;
    }

    l->part.nelts = k;

    return NGX_OK;
}


/* the place of an element of the list, counted over its parts; -1: none */

static ngx_int_t
ngx_http_claw_header_index(ngx_list_t *l, ngx_table_elt_t *h)
{
    ngx_int_t         n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *elts;

    n = 0;

    for (part = &l->part; part; part = part->next) {
        elts = part->elts;

        if (h >= elts && h < elts + part->nelts) {
            return n + (h - elts);
        }

        n += part->nelts;
    }

    return -1;
}


static int ngx_libc_cdecl
ngx_http_claw_index_cmp(const void *one, const void *two)
{
    ngx_int_t  a = *(ngx_int_t *) one;
    ngx_int_t  b = *(ngx_int_t *) two;

    return (a > b) - (a < b);
}


/* how many dropped places come before n, by bisection */

static ngx_uint_t
ngx_http_claw_dropped_before(ngx_http_claw_drop_t *d, ngx_int_t n)
{
    ngx_uint_t  lo, hi, mid;

    lo = 0;
    hi = d->ndropped;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (d->dropped[mid] < n) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return lo;
}




/*
 * Where the element h goes when the dropped ones are taken out: NULL
 * when it is dropped itself; a pointer out of the list stays as it is.
 */

static ngx_table_elt_t *
ngx_http_claw_remap(ngx_http_claw_drop_t *d, ngx_table_elt_t *h)
{
    ngx_int_t   n;
    ngx_uint_t  before;

    n = ngx_http_claw_header_index(d->list, h);

    if (n == -1) {
        return h;
    }

    before = ngx_http_claw_dropped_before(d, n);

    if (before < d->ndropped && d->dropped[before] == n) {
        return NULL;
    }

    return d->to + (n - before);
}


#if (nginx_version >= 1023000)

/* a header's repeats are chained: where the first one kept goes */

static ngx_table_elt_t *
ngx_http_claw_remap_chain(ngx_http_claw_drop_t *d, ngx_table_elt_t *h)
{
    ngx_table_elt_t  *to;

    for ( /* void */ ; h; h = h->next) {
        to = ngx_http_claw_remap(d, h);

        if (to) {
            return to;
        }
    }

    return NULL;
}

#endif


static ngx_table_elt_t *
ngx_http_claw_header_find(ngx_http_request_t *r, char *lowcase_name,
    size_t len, ngx_uint_t *count)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *header, *h;

    h = NULL;
    *count = 0;

    part = &r->headers_in.headers.part;
    header = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            header = part->elts;
            i = 0;
        }

        if (header[i].key.len == len
            && ngx_strncmp(header[i].lowcase_key, lowcase_name, len) == 0)
        {
            h = &header[i];
            (*count)++;
        }
    }

    return h;
}


static ngx_uint_t
ngx_http_claw_is_websocket(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = r->headers_in.upgrade;

    return h != NULL
           && ngx_strlcasestrn(h->value.data, h->value.data + h->value.len,
                               (u_char *) "websocket", 9 - 1)
              != NULL;
}


/*
 * The tenant's own origins: the scheme of this connection and a host
 * that resolves to the same tenant, by claw_domain or a custom domain.
 * Returns NGX_OK, NGX_DECLINED for another origin, NGX_ABORT for none.
 */

static ngx_int_t
ngx_http_claw_origin(ngx_http_request_t *r, ngx_http_claw_loc_conf_t *clcf,
    ngx_http_claw_ctx_t *ctx)
{
    size_t                 hlen;
    ngx_str_t             *sfx, want;
    ngx_uint_t             i, count;
    ngx_table_elt_t       *h;
    ngx_http_claw_span_t   scheme, label;
    u_char                 host[NGX_HTTP_CLAW_HOST_MAX];

    h = ngx_http_claw_header_find(r, "origin", sizeof("origin") - 1,
                                  &count);
    if (h == NULL) {
        return NGX_ABORT;
    }

    if (count != 1
        || ngx_http_claw_origin_host(h->value.data, h->value.len, &scheme,
                                     host, &hlen)
           != 0)
    {
        return NGX_DECLINED;
    }

    ngx_str_set(&want, "http");

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&want, "https");
    }
#endif

    if (scheme.len != want.len
        || ngx_strncasecmp((u_char *) scheme.data, want.data, want.len) != 0)
    {
        return NGX_DECLINED;
    }

    if (clcf->domains) {
        sfx = clcf->domains->elts;

        for (i = 0; i < clcf->domains->nelts; i++) {
            if (ngx_http_claw_host_label(host, hlen, sfx[i].data, sfx[i].len,
                                         &label))
            {
                return (label.len == ctx->id.len
                        && ngx_memcmp(label.data, ctx->id.data, label.len)
                           == 0)
                       ? NGX_OK : NGX_DECLINED;
            }
        }
    }

    return ngx_http_claw_tables_owns(ctx->tables, ctx->tenant, host, hlen)
           ? NGX_OK : NGX_DECLINED;
}


/*
 * A session is a browser's: a page of another tenant is same-site (the
 * tenants share the parent domain), so SameSite=Lax does not stop it
 * from sending the session along with a POST.  A request that changes
 * something must come from the tenant's own origin; without Origin (an
 * old browser), Sec-Fetch-Site must not name another site either.
 */

static ngx_uint_t
ngx_http_claw_session_request_ok(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx,
    ngx_uint_t websocket)
{
    ngx_int_t         rc;
    ngx_uint_t        count;
    ngx_table_elt_t  *h;

    if (!websocket
        && (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_OPTIONS)))
    {
        return 1;
    }

    rc = ngx_http_claw_origin(r, clcf, ctx);

    if (rc != NGX_ABORT) {
        return rc == NGX_OK;
    }

    /* no Origin: browsers always send one with a WebSocket */

    if (websocket) {
        return 0;
    }

    h = ngx_http_claw_header_find(r, "sec-fetch-site",
                                  sizeof("sec-fetch-site") - 1, &count);

    return h == NULL
           || (h->value.len == sizeof("same-origin") - 1
               && ngx_strncasecmp(h->value.data, (u_char *) "same-origin",
                                  h->value.len)
                  == 0)
           || (h->value.len == sizeof("none") - 1
               && ngx_strncasecmp(h->value.data, (u_char *) "none",
                                  h->value.len)
                  == 0);
}


/*
 * A browser logs in with a link carrying claw_token: the token becomes a
 * session cookie and the browser is sent to the same URL without it.
 */

static ngx_int_t
ngx_http_claw_bootstrap(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx, u_char *digest)
{
    u_char                     *p;
    size_t                      len, n;
    ngx_table_elt_t            *h;
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = sizeof(NGX_HTTP_CLAW_COOKIE_NAME "=") - 1
          + NGX_HTTP_CLAW_COOKIE_LEN
          + sizeof("; Path=/; Max-Age=; Secure; HttpOnly; SameSite=Lax") - 1
          + NGX_TIME_T_LEN;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Set-Cookie");
    h->value.data = p;

    p = ngx_cpymem(p, NGX_HTTP_CLAW_COOKIE_NAME "=",
                   sizeof(NGX_HTTP_CLAW_COOKIE_NAME "=") - 1);

    p += ngx_http_claw_session_encode(cmcf->cookie_secret.data,
                                      cmcf->cookie_secret.len,
                                      ctx->id.data, ctx->id.len,
                                      (uint64_t) (ngx_time()
                                                  + clcf->session_ttl),
                                      digest, p);

    p = ngx_sprintf(p, "; Path=/; Max-Age=%T; Secure; HttpOnly; SameSite=Lax",
                    clcf->session_ttl);

    h->value.len = p - h->value.data;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Referrer-Policy");
    ngx_str_set(&h->value, "no-referrer");

    /* the same URL without claw_token: the argument is already gone */

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value = r->unparsed_uri;

    /*
     * "//host/..." (or "/\host", which browsers read alike) would be a
     * protocol-relative redirect elsewhere with "absolute_redirect off"
     */

    for (n = 0; n < h->value.len
                && (h->value.data[n] == '/' || h->value.data[n] == '\\');
         n++)
    {
        /* void */
    }

    if (n > 1) {
        h->value.data += n - 1;
        h->value.len -= n - 1;
        h->value.data[0] = '/';
    }

    r->headers_out.location = h;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "claw: session for tenant \"%V\" started", &ctx->id);

    return NGX_HTTP_SEE_OTHER;
}


/*
 * A browser's navigation to a page, by Fetch metadata, or by what an
 * older browser accepts
 */

static ngx_uint_t
ngx_http_claw_navigation(ngx_http_request_t *r)
{
    ngx_uint_t        count;
    ngx_table_elt_t  *h;

    h = ngx_http_claw_header_find(r, "sec-fetch-mode",
                                  sizeof("sec-fetch-mode") - 1, &count);
    if (h) {
        return h->value.len == sizeof("navigate") - 1
               && ngx_strncasecmp(h->value.data, (u_char *) "navigate",
                                  h->value.len)
                  == 0;
    }

    h = ngx_http_claw_header_find(r, "accept", sizeof("accept") - 1, &count);

    return h != NULL
           && ngx_strlcasestrn(h->value.data, h->value.data + h->value.len,
                               (u_char *) "text/html", 9 - 1)
              != NULL;
}


/* one header off the request, as ngx_http_claw_auth_extract() takes them */

static ngx_int_t
ngx_http_claw_drop_header(ngx_http_request_t *r, ngx_table_elt_t *h)
{
    ngx_array_t        drop;
    ngx_table_elt_t  **hp;

    if (ngx_array_init(&drop, r->pool, 1, sizeof(ngx_table_elt_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    hp = ngx_array_push(&drop);
    if (hp == NULL) {
        return NGX_ERROR;
    }

    *hp = h;

    return ngx_http_claw_headers_drop(r, &drop);
}


/*
 * One answer for every failure: nothing tells one from another.  A
 * browser that navigates to a page (a session expired, a bookmark) is
 * sent to claw_login_url instead, with the URL to come back to; API
 * calls and WebSockets keep their 401.
 */

static ngx_int_t
ngx_http_claw_unauthorized(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf)
{
    u_char           *p;
    size_t            len;
    uintptr_t         escape;
    ngx_str_t         scheme, back;
    ngx_table_elt_t  *h;

    if (clcf->login_url.len && r->method == NGX_HTTP_GET
        && r->headers_in.upgrade == NULL
        && ngx_http_claw_navigation(r))
    {
        ngx_str_set(&scheme, "http://");
#if (NGX_HTTP_SSL)
        if (r->connection->ssl) {
            ngx_str_set(&scheme, "https://");
        }
#endif

        back.len = scheme.len + r->headers_in.server.len
                   + r->unparsed_uri.len;
        back.data = ngx_pnalloc(r->pool, back.len);
        if (back.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_cpymem(back.data, scheme.data, scheme.len);
        p = ngx_cpymem(p, r->headers_in.server.data,
                       r->headers_in.server.len);
        ngx_memcpy(p, r->unparsed_uri.data, r->unparsed_uri.len);

        escape = 2 * ngx_escape_uri(NULL, back.data, back.len,
                                    NGX_ESCAPE_URI_COMPONENT);

        len = clcf->login_url.len + sizeof("?return=") - 1 + back.len
              + escape;

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->value.data = ngx_pnalloc(r->pool, len);
        if (h->value.data == NULL) {
            h->hash = 0;
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Location");

        p = ngx_cpymem(h->value.data, clcf->login_url.data,
                       clcf->login_url.len);
        p = ngx_cpymem(p, ngx_strlchr(clcf->login_url.data,
                                      clcf->login_url.data
                                      + clcf->login_url.len, '?')
                          ? "&return=" : "?return=",
                       sizeof("?return=") - 1);
        p = (u_char *) ngx_escape_uri(p, back.data, back.len,
                                      NGX_ESCAPE_URI_COMPONENT);

        h->value.len = p - h->value.data;
        r->headers_out.location = h;

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Cache-Control");
        ngx_str_set(&h->value, "no-store");

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "claw: to the sign-in page: \"%V\"", &h->value);

        return NGX_HTTP_SEE_OTHER;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    ngx_str_set(&h->value, "Bearer realm=\"claw\"");

    r->headers_out.www_authenticate = h;

    return NGX_HTTP_UNAUTHORIZED;
}


static ngx_int_t
ngx_http_claw_failed(ngx_http_request_t *r, ngx_http_claw_loc_conf_t *clcf,
    ngx_http_claw_ctx_t *ctx, ngx_int_t status, char *why)
{
    size_t                      len;
    ngx_http_claw_main_conf_t  *cmcf;
    u_char                      key[NGX_HTTP_CLAW_FAIL_KEY];

    if (status == NGX_HTTP_BAD_REQUEST) {
        ctx->auth_error = NGX_HTTP_CLAW_AUTH_ERR_CONFLICT;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "claw: %s for tenant \"%V\"", why, &ctx->id);

    (void) ngx_atomic_fetch_add(&ctx->tenant->auth_failures, 1);

    if (clcf->fail_limit) {
        cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

        len = ngx_http_claw_fail_key(r, key);

        ngx_http_claw_fail_add(&cmcf->fails, key, len, clcf->fail_limit,
                               r->connection->log);

        if (cmcf->cluster) {
            ngx_http_claw_share_failed(&cmcf->share, key, len,
                                       clcf->fail_limit);
        }
    }

    if (status == NGX_HTTP_UNAUTHORIZED) {
        return ngx_http_claw_unauthorized(r, clcf);
    }

    return status;
}


/* the client's address, an IPv6 one by its /64 */

static size_t
ngx_http_claw_fail_key(ngx_http_request_t *r, u_char *key)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    switch (r->connection->sockaddr->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) r->connection->sockaddr;
        key[0] = '4';
        ngx_memcpy(key + 1, &sin->sin_addr, 4);
        return 5;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) r->connection->sockaddr;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            key[0] = '4';
            ngx_memcpy(key + 1, &sin6->sin6_addr.s6_addr[12], 4);
            return 5;
        }

        key[0] = '6';
        ngx_memcpy(key + 1, &sin6->sin6_addr, 8);
        return 9;
#endif

    default: /* unix sockets: one local client */
        key[0] = 'u';
        return 1;
    }
}


ngx_int_t
ngx_http_claw_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_claw_ctx_t  *ctx;

    ctx = ngx_http_claw_get_ctx(r->main);

    if (ctx == NULL || ctx->auth == NGX_HTTP_CLAW_AUTH_NONE) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_http_claw_auth_names[ctx->auth].len;
    v->data = ngx_http_claw_auth_names[ctx->auth].data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


char *
ngx_http_claw_cookie_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_main_conf_t  *cmcf = conf;

    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t        *value, path;
    ngx_file_info_t   fi;

    if (cmcf->cookie_secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &path);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", &path);
        goto failed;
    }

    if (ngx_file_size(&fi) < NGX_HTTP_CLAW_SECRET_MIN
        || ngx_file_size(&fi) > 4096)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "claw_cookie_secret \"%V\" must hold %d to 4096 "
                           "bytes, not %O", &path, NGX_HTTP_CLAW_SECRET_MIN,
                           ngx_file_size(&fi));
        goto failed;
    }

    if (fi.st_mode & (S_IRWXG|S_IRWXO)) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "claw_cookie_secret \"%V\" is accessible to "
                           "other users; chmod 600 it", &path);
    }

    cmcf->cookie_secret.len = (size_t) ngx_file_size(&fi);
    cmcf->cookie_secret.data = ngx_pnalloc(cf->pool, cmcf->cookie_secret.len);
    if (cmcf->cookie_secret.data == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, cmcf->cookie_secret.data, cmcf->cookie_secret.len);

    if (n != (ssize_t) cmcf->cookie_secret.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%V\" failed", &path);
        goto failed;
    }

    ngx_close_file(fd);

    return NGX_CONF_OK;

failed:

    ngx_close_file(fd);

    return NGX_CONF_ERROR;
}


/* "30/m", or "off" */

char *
ngx_http_claw_auth_fail_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (clcf->fail_limit != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        clcf->fail_limit = 0;
        return NGX_CONF_OK;
    }

    if (value[1].len < 3
        || ngx_strcmp(value[1].data + value[1].len - 2, "/m") != 0)
    {
        goto invalid;
    }

    n = ngx_atoi(value[1].data, value[1].len - 2);

    if (n == NGX_ERROR || n == 0 || n > 60000) {
        goto invalid;
    }

    clcf->fail_limit = (ngx_uint_t) n;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid claw_auth_fail_limit \"%V\", expected "
                       "\"N/m\" or \"off\"", &value[1]);

    return NGX_CONF_ERROR;
}


/* claw_token_header Authorization | name */

char *
ngx_http_claw_token_header(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (clcf->token_header.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == sizeof("authorization") - 1
        && ngx_strncasecmp(value[1].data, (u_char *) "authorization",
                           value[1].len)
           == 0)
    {
        /* the default, set: an empty name with data */
        ngx_str_set(&clcf->token_header, "");
        clcf->token_header.len = 0;
        return NGX_CONF_OK;
    }

    for (i = 0; i < value[1].len; i++) {
        if (!ngx_http_claw_header_char(value[1].data[i])) {
            break;
        }
    }

    if (value[1].len == 0 || i < value[1].len
        || (value[1].len == sizeof("cookie") - 1
            && ngx_strncasecmp(value[1].data, (u_char *) "cookie",
                               value[1].len)
               == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid header name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf->token_header.len = value[1].len;
    clcf->token_header.data = ngx_pnalloc(cf->pool, value[1].len);
    if (clcf->token_header.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_strlow(clcf->token_header.data, value[1].data, value[1].len);

    return NGX_CONF_OK;
}


/* a character of a header name (RFC 9110 token) */

static ngx_uint_t
ngx_http_claw_header_char(u_char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
           || (ch >= '0' && ch <= '9')
           || ngx_strlchr((u_char *) "!#$%&'*+-.^_`|~",
                          (u_char *) "!#$%&'*+-.^_`|~" + 15, ch)
              != NULL;
}
