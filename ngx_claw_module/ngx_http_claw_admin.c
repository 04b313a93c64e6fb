
/*
 * Copyright (C) ngx_claw_module authors
 *
 * The admin API (claw_admin): tenants and their tokens, changed live,
 * with no reload.  A change takes the journal's lock, is checked and
 * prepared against the tables as they are under that lock, is written
 * to the journal and synced, and is committed to the tables, where every
 * worker sees it for its next request; the answer is made from what was
 * committed, and only then is the lock given back.  Waiting for the lock
 * and for the disk happens on the thread pool (journal.c): the worker
 * serves its other requests meanwhile.  JSON is read and written with
 * jansson.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_admin.h"
#include "ngx_http_claw_stream.h"
#include "ngx_http_claw_token.h"
#include "ngx_http_claw_cluster.h"


/* a minted token: a prefix that says what it is, 256 random bits */
#define NGX_HTTP_CLAW_MINT_PREFIX  "claw_"
#define NGX_HTTP_CLAW_MINT_BYTES   32

/* a page of GET /tenants, at most; and what a streamed list copies */
#define NGX_HTTP_CLAW_LIST_MAX     10000
#define NGX_HTTP_CLAW_LIST_CHUNK   128

#define NGX_HTTP_CLAW_PUT          0
#define NGX_HTTP_CLAW_DELETE       1
#define NGX_HTTP_CLAW_MINT         2
#define NGX_HTTP_CLAW_REVOKE       3
#define NGX_HTTP_CLAW_PATCH        4

/* a tenant's version: "<the first 16 bytes of its line's SHA-256, hex>" */
#define NGX_HTTP_CLAW_ETAG_LEN     34


typedef struct {
    ngx_str_t                    id;
    ngx_str_t                    hash;          /* tokens/{hash} */
    ngx_uint_t                   tokens;        /* /tokens[/...] */
    const char                  *invalid;       /* a 400 for the path */
    ngx_uint_t                   none;          /* no such resource */
    ngx_uint_t                   import;        /* /cluster/import */
} ngx_http_claw_route_t;


/* one change, from its request to its answer */
typedef struct {
    ngx_http_request_t          *request;
    ngx_http_claw_jop_t          op;
    ngx_uint_t                   what;
    ngx_str_t                    id;
    ngx_http_claw_entry_t        entry;         /* PUT */
    json_t                      *patch;         /* PATCH, until the end */
    ngx_str_t                    if_match;
    unsigned                     if_none_match:1; /* "*": create only */
    u_char                       etag[NGX_HTTP_CLAW_ETAG_LEN];
    size_t                       etag_len;      /* of the answer */
    u_char                       digest[NGX_HTTP_CLAW_DIGEST_LEN];
    ngx_str_t                    token;         /* minted, shown once */
    ngx_http_claw_change_t       ch;
    unsigned                     prepared:1;
    unsigned                     created:1;
    ngx_uint_t                   status;
    json_t                      *json;          /* the answer's body */
    ngx_http_claw_cluster_op_t   cop;           /* in cluster mode */
    ngx_http_claw_tconf_t       *tconf;         /* the new record */
    ngx_uint_t                   tries;
} ngx_http_claw_change_ctx_t;


/* GET /tenants, streamed a chunk of tenants at a time */
typedef struct {
    ngx_http_claw_tables_t      *tables;
    ngx_log_t                   *log;
    ngx_pool_t                  *pool;          /* the chunk's */
    ngx_http_claw_tconf_t      **list;
    ngx_uint_t                   n;
    ngx_uint_t                   i;
    ngx_uint_t                   left;          /* of the page */
    ngx_uint_t                   paged;
    ngx_uint_t                   more;
    ngx_uint_t                   state;         /* 0 head, 1 body, 2 end */
    ngx_uint_t                   sent;
    time_t                       idle;          /* ?idle=: seen by then */
    ngx_uint_t                   idle_set;
    ngx_str_t                    after;
    u_char                       last[NGX_HTTP_CLAW_ID_MAX];
} ngx_http_claw_list_ctx_t;


static ngx_int_t ngx_http_claw_admin_handler(ngx_http_request_t *r);
static void ngx_http_claw_admin_route(ngx_http_request_t *r,
    ngx_http_claw_route_t *route);
static void ngx_http_claw_admin_put_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_claw_admin_list(ngx_http_request_t *r);
static ngx_uint_t ngx_http_claw_admin_list_fill(void *data, ngx_buf_t *b);
static void ngx_http_claw_admin_list_cleanup(void *data);
static ngx_int_t ngx_http_claw_admin_get(ngx_http_request_t *r,
    ngx_str_t *id);
static ngx_int_t ngx_http_claw_admin_start(ngx_http_request_t *r,
    ngx_uint_t what, ngx_str_t *id, ngx_str_t *hash, u_char *body,
    size_t len);
static void ngx_http_claw_admin_locked(ngx_http_claw_jop_t *op);
static ngx_int_t ngx_http_claw_admin_prepare(ngx_http_claw_change_ctx_t *cc,
    u_char **rec, size_t *len);
static void ngx_http_claw_admin_written(ngx_http_claw_jop_t *op);
static void ngx_http_claw_admin_finish(ngx_http_claw_change_ctx_t *cc);
static ngx_int_t ngx_http_claw_admin_keep(ngx_http_request_t *r,
    ngx_http_claw_entry_t *e);
static void ngx_http_claw_admin_patch_free(void *data);
static ngx_int_t ngx_http_claw_admin_merge(ngx_http_claw_change_ctx_t *cc,
    ngx_http_claw_tconf_t *tc, ngx_http_claw_entry_t *e);
static ngx_int_t ngx_http_claw_admin_precondition(
    ngx_http_claw_change_ctx_t *cc, ngx_http_claw_tconf_t *tc);
static size_t ngx_http_claw_admin_version(ngx_pool_t *pool,
    ngx_http_claw_tconf_t *tc, u_char *etag);
static ngx_int_t ngx_http_claw_admin_etag(ngx_http_request_t *r,
    ngx_http_claw_tconf_t *tc);
static ngx_int_t ngx_http_claw_admin_etag_header(ngx_http_request_t *r,
    u_char *etag, size_t len);
static ngx_int_t ngx_http_claw_admin_mint_token(
    ngx_http_claw_change_ctx_t *cc);
static void ngx_http_claw_admin_fail(ngx_http_claw_change_ctx_t *cc,
    ngx_uint_t status, const char *fmt, ...);
static char *ngx_http_claw_admin_entry(ngx_http_request_t *r, json_t *root,
    ngx_str_t *id, ngx_http_claw_entry_t *e);
static json_t *ngx_http_claw_admin_tenant(ngx_http_claw_tconf_t *tc);
static ngx_int_t ngx_http_claw_admin_tokens(ngx_http_claw_change_ctx_t *cc,
    ngx_http_claw_entry_t *e);
static ngx_int_t ngx_http_claw_admin_fit(ngx_http_claw_change_ctx_t *cc,
    ngx_http_claw_tconf_t *tc, ngx_http_claw_change_t *ch);
static void ngx_http_claw_admin_answer(ngx_http_claw_change_ctx_t *cc,
    ngx_http_claw_tconf_t *tc, const char *where);
static ngx_int_t ngx_http_claw_admin_cluster_start(
    ngx_http_claw_change_ctx_t *cc);
static void ngx_http_claw_admin_cluster_got(ngx_http_claw_cluster_op_t *op);
static ngx_int_t ngx_http_claw_admin_cluster_record(
    ngx_http_claw_change_ctx_t *cc);
static void ngx_http_claw_admin_cluster_written(
    ngx_http_claw_cluster_op_t *op);
static void ngx_http_claw_admin_cluster_applied(
    ngx_http_claw_cluster_op_t *op);
static ngx_int_t ngx_http_claw_admin_import(ngx_http_request_t *r);
static void ngx_http_claw_admin_imported(ngx_http_claw_cluster_op_t *op);
static ngx_str_t *ngx_http_claw_admin_domains(ngx_pool_t *pool,
    ngx_http_claw_entry_t *e);
static ngx_int_t ngx_http_claw_admin_send(ngx_http_request_t *r,
    ngx_uint_t status, json_t *json);
static ngx_int_t ngx_http_claw_admin_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *fmt, ...);
static json_t *ngx_http_claw_admin_message(const char *fmt, va_list args);
static ngx_int_t ngx_http_claw_admin_allow(ngx_http_request_t *r,
    char *methods);


char *
ngx_http_claw_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    ngx_http_core_loc_conf_t  *core;

    if (clcf->admin) {
        return "is duplicate";
    }

    clcf->admin = 1;

    core = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    core->handler = ngx_http_claw_admin_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_claw_admin_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_claw_ctx_t        *ctx;
    ngx_http_claw_route_t       route;
    ngx_http_claw_loc_conf_t   *clcf;
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_claw_module);

    rc = ngx_http_claw_operator_check(r, clcf->operator);
    if (rc != NGX_OK) {
        return rc;
    }

    if (cmcf->tables.shm_zone == NULL) {
        return ngx_http_claw_admin_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "no claw_zone");
    }

    /* a request routed to a tenant never reaches the admin API */

    ctx = ngx_http_claw_get_ctx(r->main);

    if (ctx && ctx->tenant) {
        return NGX_HTTP_FORBIDDEN;
    }

    /*
     * A change's If-Match is checked against the tenant it changes, not
     * against the new version it answers with (nginx's not-modified
     * filter would); a GET's are nginx's to answer (304, 412).
     */

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        r->disable_not_modified = 1;
    }

    ngx_http_claw_admin_route(r, &route);

    if (route.invalid) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST, "%s",
                                         route.invalid);
    }

    if (route.none) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_FOUND,
                                         "no such resource");
    }

    if (route.import) {
        if (r->method == NGX_HTTP_POST) {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_claw_admin_import(r);
        }

        return ngx_http_claw_admin_allow(r, "POST");
    }

    if (route.id.len == 0) {
        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_claw_admin_list(r);
        }

        return ngx_http_claw_admin_allow(r, "GET, HEAD");
    }

    if (!route.tokens) {
        switch (r->method) {

        case NGX_HTTP_GET:
        case NGX_HTTP_HEAD:
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_claw_admin_get(r, &route.id);

        case NGX_HTTP_DELETE:
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_claw_admin_start(r, NGX_HTTP_CLAW_DELETE,
                                             &route.id, NULL, NULL, 0);

        case NGX_HTTP_PUT:
        case NGX_HTTP_PATCH:
            r->request_body_in_single_buf = 1;

            rc = ngx_http_read_client_request_body(r,
                                               ngx_http_claw_admin_put_body);
            if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
                return rc;
            }

            return NGX_DONE;
        }

        return ngx_http_claw_admin_allow(r, "GET, HEAD, PUT, PATCH, DELETE");
    }

    if (route.hash.len == 0) {
        if (r->method == NGX_HTTP_POST) {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_claw_admin_start(r, NGX_HTTP_CLAW_MINT,
                                             &route.id, NULL, NULL, 0);
        }

        return ngx_http_claw_admin_allow(r, "POST");
    }

    if (r->method == NGX_HTTP_DELETE) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_claw_admin_start(r, NGX_HTTP_CLAW_REVOKE, &route.id,
                                         &route.hash, NULL, 0);
    }

    return ngx_http_claw_admin_allow(r, "DELETE");
}


static ngx_int_t
ngx_http_claw_admin_allow(ngx_http_request_t *r, char *methods)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->value.data = (u_char *) methods;
    h->value.len = ngx_strlen(methods);

    return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_ALLOWED,
                                     "method not allowed");
}


/*
 * The API's path is the request's past the location prefix, so the API
 * can sit at "location /" of its own server or under "/claw/":
 *   /tenants  /tenants/{id}  /tenants/{id}/tokens  /tenants/{id}/tokens/{h}
 * A path of that shape with a bad id is a 400 that says why; any other
 * path is no resource.
 */

static void
ngx_http_claw_admin_route(ngx_http_request_t *r, ngx_http_claw_route_t *route)
{
    u_char                    *p, *end, *seg;
    ngx_uint_t                 n;
    ngx_str_t                  segs[5];
    ngx_http_core_loc_conf_t  *core;

    ngx_memzero(route, sizeof(ngx_http_claw_route_t));

    p = r->uri.data;
    end = r->uri.data + r->uri.len;

    core = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (!core->named
#if (NGX_PCRE)
        && core->regex == NULL
#endif
        && core->name.len > 1
        && r->uri.len >= core->name.len
        && ngx_strncmp(p, core->name.data, core->name.len) == 0)
    {
        p += core->name.len;

        if (core->name.data[core->name.len - 1] == '/') {
            p--;
        }
    }

    n = 0;

    while (p < end) {
        if (*p++ != '/') {
            goto none;
        }

        seg = p;

        while (p < end && *p != '/') {
            p++;
        }

        if (p == seg) {
            if (p == end) {
                break;          /* a trailing slash */
            }

            goto none;
        }

        if (n == 5) {
            goto none;
        }

        segs[n].data = seg;
        segs[n].len = p - seg;
        n++;
    }

    if (n == 2 && segs[0].len == 7
        && ngx_strncmp(segs[0].data, "cluster", 7) == 0
        && segs[1].len == 6 && ngx_strncmp(segs[1].data, "import", 6) == 0)
    {
        route->import = 1;
        return;
    }

    if (n == 0 || n > 4 || segs[0].len != 7
        || ngx_strncmp(segs[0].data, "tenants", 7) != 0)
    {
        goto none;
    }

    if (n >= 3
        && (segs[2].len != 6 || ngx_strncmp(segs[2].data, "tokens", 6) != 0))
    {
        goto none;
    }

    if (n >= 2) {
        if (!ngx_http_claw_valid_id(segs[1].data, segs[1].len)) {
            route->invalid = "invalid tenant id: a DNS label is expected "
                             "([a-z0-9-], 1 to 63 characters, no leading or "
                             "trailing \"-\", not starting \"xn--\")";
            return;
        }

        route->id = segs[1];
    }

    if (n >= 3) {
        route->tokens = 1;
    }

    if (n == 4) {
        route->hash = segs[3];
    }

    return;

none:

    route->none = 1;
}


static void
ngx_http_claw_admin_put_body(ngx_http_request_t *r)
{
    u_char                 *body, *p;
    size_t                  len;
    ssize_t                 n;
    ngx_int_t               rc;
    ngx_buf_t              *b;
    ngx_chain_t            *cl;
    ngx_http_claw_route_t   route;

    ngx_http_claw_admin_route(r, &route);

    len = 0;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        len += ngx_buf_size(cl->buf);
    }

    body = ngx_pnalloc(r->pool, len + 1);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = body;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        b = cl->buf;

        if (b->in_file) {
            /* a body client_body_buffer_size did not hold: rare, small */

            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    rc = ngx_http_claw_admin_start(r, r->method == NGX_HTTP_PATCH
                                      ? NGX_HTTP_CLAW_PATCH
                                      : NGX_HTTP_CLAW_PUT,
                                   &route.id, NULL, body, p - body);

    /* the body's read holds the request already: one hold is enough */

    ngx_http_finalize_request(r, rc);
}


/*
 * GET /tenants[?limit=N[&after=id]]: every tenant, or a page of at most
 * N tenants after the one named, with "next" naming the last when more
 * follow.  Streamed a chunk of tenants at a time.
 */

static ngx_int_t
ngx_http_claw_admin_list(ngx_http_request_t *r)
{
    ngx_int_t                   rc, limit;
    ngx_str_t                   value;
    ngx_pool_cleanup_t         *cln;
    ngx_http_claw_list_ctx_t   *lc;
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_claw_list_ctx_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lc = cln->data;
    ngx_memzero(lc, sizeof(ngx_http_claw_list_ctx_t));

    cln->handler = ngx_http_claw_admin_list_cleanup;

    lc->tables = &cmcf->tables;
    lc->log = r->connection->log;
    lc->after.data = lc->last;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &value) == NGX_OK) {
        limit = ngx_atoi(value.data, value.len);

        if (limit < 1 || limit > NGX_HTTP_CLAW_LIST_MAX) {
            return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                             "\"limit\" must be a number "
                                             "from 1 to %d",
                                             NGX_HTTP_CLAW_LIST_MAX);
        }

        lc->paged = 1;
        lc->left = limit;
    }

    /* tenants idle for at least that many seconds: the reaper's */

    if (ngx_http_arg(r, (u_char *) "idle", 4, &value) == NGX_OK) {
        limit = ngx_atoi(value.data, value.len);

        if (limit < 0) {
            return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                             "\"idle\" must be a number of "
                                             "seconds");
        }

        /* before the epoch: nothing has been idle that long */

        lc->idle = ngx_time() - limit;
        lc->idle_set = 1;
    }

    if (ngx_http_arg(r, (u_char *) "after", 5, &value) == NGX_OK) {
        if (!ngx_http_claw_valid_id(value.data, value.len)) {
            return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                             "\"after\" must be a tenant "
                                             "id");
        }

        lc->after.len = value.len;
        ngx_memcpy(lc->last, value.data, value.len);
    }

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    return ngx_http_claw_stream(r, ngx_http_claw_admin_list_fill, lc);
}


static ngx_uint_t
ngx_http_claw_admin_list_fill(void *data, ngx_buf_t *b)
{
    ngx_http_claw_list_ctx_t  *lc = data;

    size_t                  size;
    json_t                 *json;
    ngx_uint_t              want, fetched;
    ngx_http_claw_tconf_t  *tc;

    fetched = 0;

    if (lc->state == 0) {
        b->last = ngx_cpymem(b->last, "{\"tenants\":[",
                             sizeof("{\"tenants\":[") - 1);
        lc->state = 1;
        lc->more = 1;
    }

    while (lc->state == 1) {

        if (lc->paged && lc->left == 0) {
            if (lc->i < lc->n) {
                lc->more = 1;
            }

            lc->state = 2;
            break;
        }

        if (lc->i == lc->n) {

            if (!lc->more) {
                lc->state = 2;
                break;
            }

            /*
             * a chunk a call: with ?idle= most may be skipped, and the
             * worker goes back to its events between two chunks
             */

            if (fetched++) {
                return 0;
            }

            if (lc->pool) {
                ngx_destroy_pool(lc->pool);
            }

            lc->pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, lc->log);
            if (lc->pool == NULL) {
                lc->state = 2;
                break;
            }

            want = lc->paged ? ngx_min(lc->left, NGX_HTTP_CLAW_LIST_CHUNK)
                             : NGX_HTTP_CLAW_LIST_CHUNK;

            lc->list = ngx_http_claw_tables_page(lc->tables, lc->pool,
                                                 &lc->after, want, &lc->n,
                                                 &lc->more);
            lc->i = 0;

            if (lc->list == NULL) {
                lc->n = 0;
                lc->state = 2;
                break;
            }

            continue;
        }

        tc = lc->list[lc->i];

        if (lc->idle_set && tc->seen > lc->idle) {
            lc->after.len = tc->id_len;
            ngx_memcpy(lc->last, ngx_http_claw_tconf_id(tc), tc->id_len);
            lc->i++;
            continue;
        }

        json = ngx_http_claw_admin_tenant(tc);
        if (json == NULL) {
            lc->state = 2;
            break;
        }

        size = json_dumpb(json, NULL, 0, JSON_COMPACT);

        if ((size_t) (b->end - b->last) < size + 1) {
            json_decref(json);
            return 0;
        }

        if (lc->sent++) {
            *b->last++ = ',';
        }

        b->last += json_dumpb(json, (char *) b->last, size, JSON_COMPACT);
        json_decref(json);

        lc->after.len = tc->id_len;
        ngx_memcpy(lc->last, ngx_http_claw_tconf_id(tc), tc->id_len);

        lc->i++;

        if (lc->paged) {
            lc->left--;
        }
    }

    if ((size_t) (b->end - b->last)
        < sizeof("],\"next\":\"\"}\n") + NGX_HTTP_CLAW_ID_MAX)
    {
        return 0;
    }

    *b->last++ = ']';

    if (lc->paged && lc->more && lc->sent) {
        b->last = ngx_sprintf(b->last, ",\"next\":\"%V\"", &lc->after);
    }

    *b->last++ = '}';
    *b->last++ = '\n';

    return 1;
}


static void
ngx_http_claw_admin_list_cleanup(void *data)
{
    ngx_http_claw_list_ctx_t  *lc = data;

    if (lc->pool) {
        ngx_destroy_pool(lc->pool);
        lc->pool = NULL;
    }
}


static ngx_int_t
ngx_http_claw_admin_get(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_http_claw_tconf_t      *tc;
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    tc = ngx_http_claw_tables_get(&cmcf->tables, id->data, id->len, r->pool);
    if (tc == NULL) {
        return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_FOUND,
                                         "no tenant \"%V\"", id);
    }

    if (ngx_http_claw_admin_etag(r, tc) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_claw_admin_send(r, NGX_HTTP_OK,
                                    ngx_http_claw_admin_tenant(tc));
}


/*
 * A change starts: what can be checked without the tables is checked
 * here (the JSON, the digest in the path), then it waits for the
 * journal's lock on the thread pool.  The request is held (blocked, as
 * nginx holds a request whose file a thread reads) until the answer.
 */

static ngx_int_t
ngx_http_claw_admin_start(ngx_http_request_t *r, ngx_uint_t what,
    ngx_str_t *id, ngx_str_t *hash, u_char *body, size_t len)
{
    char                        *err;
    json_t                      *root;
    json_error_t                 jerr;
    ngx_pool_cleanup_t          *cln;
    ngx_http_claw_main_conf_t   *cmcf;
    ngx_http_claw_change_ctx_t  *cc;
    u_char                       text[sizeof("sha256:")
                                      + 2 * NGX_HTTP_CLAW_DIGEST_LEN];

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    cc = ngx_pcalloc(r->pool, sizeof(ngx_http_claw_change_ctx_t));
    if (cc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cc->request = r;
    cc->what = what;
    cc->id = *id;

    /* the tenant's version the change is for, as GET gave it */

    if (r->headers_in.if_match) {
        cc->if_match = r->headers_in.if_match->value;
    }

    if (r->headers_in.if_none_match) {
        if (what != NGX_HTTP_CLAW_PUT
            || r->headers_in.if_none_match->value.len != 1
            || r->headers_in.if_none_match->value.data[0] != '*')
        {
            return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                             "only \"If-None-Match: *\" "
                                             "(create, never replace) is "
                                             "understood, with PUT");
        }

        cc->if_none_match = 1;
    }

    switch (what) {

    case NGX_HTTP_CLAW_PATCH:
        cc->patch = json_loadb((char *) body, len, JSON_REJECT_DUPLICATES,
                               &jerr);

        if (cc->patch == NULL) {
            return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                             "invalid JSON at line %d, "
                                             "column %d: %s", jerr.line,
                                             jerr.column, jerr.text);
        }

        if (!json_is_object(cc->patch)) {
            json_decref(cc->patch);
            return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                             "the body must be a JSON "
                                             "object (a merge patch, "
                                             "RFC 7396)");
        }

        /* applied to the tenant as it is under the lock, or the server */

        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            json_decref(cc->patch);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_claw_admin_patch_free;
        cln->data = cc->patch;

        break;

    case NGX_HTTP_CLAW_PUT:
        root = json_loadb((char *) body, len, JSON_REJECT_DUPLICATES, &jerr);

        if (root == NULL) {
            return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                             "invalid JSON at line %d, "
                                             "column %d: %s", jerr.line,
                                             jerr.column, jerr.text);
        }

        err = ngx_http_claw_admin_entry(r, root, id, &cc->entry);

        if (err) {
            json_decref(root);
            return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST, "%s",
                                             err);
        }

        /* the entry's spans point into the JSON: copied where it stays */

        if (ngx_http_claw_admin_keep(r, &cc->entry) != NGX_OK) {
            json_decref(root);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        json_decref(root);
        break;

    case NGX_HTTP_CLAW_MINT:
        if (ngx_http_claw_admin_mint_token(cc) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        break;

    case NGX_HTTP_CLAW_REVOKE:

        /* "{hex}" or "sha256:{hex}" */

        if (hash->len == 2 * NGX_HTTP_CLAW_DIGEST_LEN) {
            ngx_sprintf(text, "sha256:%V", hash);

        } else if (hash->len == sizeof("sha256:") - 1
                                + 2 * NGX_HTTP_CLAW_DIGEST_LEN)
        {
            ngx_memcpy(text, hash->data, hash->len);

        } else {
            goto bad_digest;
        }

        if (ngx_http_claw_parse_digest(text, sizeof("sha256:") - 1
                                             + 2 * NGX_HTTP_CLAW_DIGEST_LEN,
                                       cc->digest)
            != 0)
        {
            goto bad_digest;
        }

        break;
    }

    if (cmcf->cluster) {
        return ngx_http_claw_admin_cluster_start(cc);
    }

    cc->op.handler = ngx_http_claw_admin_locked;
    cc->op.data = cc;

    r->main->count++;
    r->main->blocked++;
    r->aio = 1;

    ngx_http_claw_journal_begin(&cmcf->journal, &cc->op);

    return NGX_DONE;

bad_digest:

    return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                     "invalid token digest: 64 hex digits "
                                     "are expected, with or without "
                                     "\"sha256:\"");
}


/* the PUT's strings, out of the JSON that is freed before the change */

static ngx_int_t
ngx_http_claw_admin_keep(ngx_http_request_t *r, ngx_http_claw_entry_t *e)
{
    u_char      *p;
    ngx_uint_t   i;

    p = ngx_pnalloc(r->pool, e->upstream.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, e->upstream.data, e->upstream.len);
    e->upstream.data = p;

    for (i = 0; i < e->ndomains; i++) {
        p = ngx_pnalloc(r->pool, e->domains[i].len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, e->domains[i].data, e->domains[i].len);
        e->domains[i].data = p;
    }

    return NGX_OK;
}


static void
ngx_http_claw_admin_patch_free(void *data)
{
    json_decref(data);
}


/*
 * PATCH: the merge patch (RFC 7396) applied to the tenant as GET shows
 * it (a member set replaces the field, null removes it: its default,
 * no tokens, no domains), then checked as a PUT's body is.
 */

static ngx_int_t
ngx_http_claw_admin_merge(ngx_http_claw_change_ctx_t *cc,
    ngx_http_claw_tconf_t *tc, ngx_http_claw_entry_t *e)
{
    char        *err;
    json_t      *obj, *v;
    const char  *key;

    obj = ngx_http_claw_admin_tenant(tc);
    if (obj == NULL) {
        goto nomem;
    }

    json_object_foreach(cc->patch, key, v) {
        if (json_is_null(v)) {
            (void) json_object_del(obj, key);

        } else if (json_object_set(obj, key, v) != 0) {
            json_decref(obj);
            goto nomem;
        }
    }

    err = ngx_http_claw_admin_entry(cc->request, obj, &cc->id, e);

    if (err) {
        ngx_http_claw_admin_fail(cc, NGX_HTTP_BAD_REQUEST, "%s", err);
        json_decref(obj);
        return NGX_ERROR;
    }

    if (ngx_http_claw_admin_keep(cc->request, e) != NGX_OK) {
        json_decref(obj);
        goto nomem;
    }

    json_decref(obj);

    return NGX_OK;

nomem:

    ngx_http_claw_admin_fail(cc, NGX_HTTP_INTERNAL_SERVER_ERROR,
                             "out of memory");
    return NGX_ERROR;
}


/*
 * If-Match (one version or several, or "*") and If-None-Match: * against
 * the tenant as it is (NULL: none), under the journal's lock or as the
 * cluster server holds it: two control planes never overwrite each
 * other's changes unseen.
 */

static ngx_int_t
ngx_http_claw_admin_precondition(ngx_http_claw_change_ctx_t *cc,
    ngx_http_claw_tconf_t *tc)
{
    u_char  *p, *last, *start, *end;
    size_t   n;
    u_char   etag[NGX_HTTP_CLAW_ETAG_LEN];

    if (cc->if_none_match && tc) {
        ngx_http_claw_admin_fail(cc, NGX_HTTP_PRECONDITION_FAILED,
                                 "tenant \"%V\" exists (If-None-Match: *); "
                                 "nothing changed", &cc->id);
        return NGX_ERROR;
    }

    if (cc->if_match.len == 0) {
        return NGX_OK;
    }

    if (tc == NULL) {
        ngx_http_claw_admin_fail(cc, NGX_HTTP_PRECONDITION_FAILED,
                                 "no tenant \"%V\" (If-Match); nothing "
                                 "changed", &cc->id);
        return NGX_ERROR;
    }

    if (cc->if_match.len == 1 && cc->if_match.data[0] == '*') {
        return NGX_OK;
    }

    n = ngx_http_claw_admin_version(cc->request->pool, tc, etag);
    if (n == 0) {
        ngx_http_claw_admin_fail(cc, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "out of memory");
        return NGX_ERROR;
    }

    p = cc->if_match.data;
    last = p + cc->if_match.len;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        end = p;

        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }

        /* a strong comparison: a weak tag (W/"...") never matches */

        if ((size_t) (end - start) == n && ngx_memcmp(start, etag, n) == 0) {
            return NGX_OK;
        }
    }

    ngx_http_claw_admin_fail(cc, NGX_HTTP_PRECONDITION_FAILED,
                             "tenant \"%V\" changed since (If-Match): it "
                             "is %*s now; nothing changed", &cc->id, n, etag);
    return NGX_ERROR;
}


/* the tenant's version: its registry line's digest, the same on every node */

static size_t
ngx_http_claw_admin_version(ngx_pool_t *pool, ngx_http_claw_tconf_t *tc,
    u_char *etag)
{
    u_char  *line, *p;
    size_t   len;
    u_char   digest[NGX_HTTP_CLAW_DIGEST_LEN];

    len = ngx_http_claw_tconf_line(tc, NULL);

    line = ngx_pnalloc(pool, len);
    if (line == NULL) {
        return 0;
    }

    (void) ngx_http_claw_tconf_line(tc, line);

    ngx_http_claw_token_digest(line, len, digest);

    p = etag;
    *p++ = '"';
    p = ngx_hex_dump(p, digest, (NGX_HTTP_CLAW_ETAG_LEN - 2) / 2);
    *p++ = '"';

    return p - etag;
}


static ngx_int_t
ngx_http_claw_admin_etag(ngx_http_request_t *r, ngx_http_claw_tconf_t *tc)
{
    size_t  n;
    u_char  etag[NGX_HTTP_CLAW_ETAG_LEN];

    n = ngx_http_claw_admin_version(r->pool, tc, etag);
    if (n == 0) {
        return NGX_ERROR;
    }

    return ngx_http_claw_admin_etag_header(r, etag, n);
}


static ngx_int_t
ngx_http_claw_admin_etag_header(ngx_http_request_t *r, u_char *etag,
    size_t len)
{
    r->headers_out.etag = ngx_http_claw_add_header(r, "ETag", etag, len);

    return r->headers_out.etag ? NGX_OK : NGX_ERROR;
}


/* a new token, shown once; only its digest is kept */

static ngx_int_t
ngx_http_claw_admin_mint_token(ngx_http_claw_change_ctx_t *cc)
{
    u_char     *p;
    ngx_str_t   raw, token;
    u_char      rnd[NGX_HTTP_CLAW_MINT_BYTES];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ngx_log_error(NGX_LOG_ALERT, cc->request->connection->log, 0,
                      "claw: RAND_bytes() failed");
        return NGX_ERROR;
    }

    p = ngx_pnalloc(cc->request->pool,
                    sizeof(NGX_HTTP_CLAW_MINT_PREFIX)
                    + ngx_base64_encoded_length(sizeof(rnd)));
    if (p == NULL) {
        return NGX_ERROR;
    }

    raw.data = rnd;
    raw.len = sizeof(rnd);

    token.data = ngx_cpymem(p, NGX_HTTP_CLAW_MINT_PREFIX,
                            sizeof(NGX_HTTP_CLAW_MINT_PREFIX) - 1);
    ngx_encode_base64url(&token, &raw);

    cc->token.data = p;
    cc->token.len = token.len + sizeof(NGX_HTTP_CLAW_MINT_PREFIX) - 1;

    ngx_explicit_memzero(rnd, sizeof(rnd));

    ngx_http_claw_token_digest(cc->token.data, cc->token.len, cc->digest);

    return NGX_OK;
}


/* the lock is had (or not): the change is checked against the tables */

static void
ngx_http_claw_admin_locked(ngx_http_claw_jop_t *op)
{
    u_char                      *rec;
    size_t                       len;
    ngx_http_request_t          *r;
    ngx_http_claw_main_conf_t   *cmcf;
    ngx_http_claw_change_ctx_t  *cc;

    cc = op->data;
    r = cc->request;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    if (op->rc == NGX_BUSY) {
        ngx_http_claw_admin_fail(cc, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "the journal is locked by another process "
                                 "(a reload, a fold, another change); try "
                                 "again");
        (void) ngx_http_claw_retry_after(r, 1);
        ngx_http_claw_admin_finish(cc);
        return;
    }

    if (op->rc != NGX_OK) {
        ngx_http_claw_admin_fail(cc, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "%s failed%s%s; nothing changed",
                                 op->failed, op->err ? ": " : "",
                                 op->err ? strerror(op->err) : "");
        ngx_http_claw_admin_finish(cc);
        return;
    }

    if (ngx_http_claw_tables_retired(&cmcf->tables)) {
        ngx_http_claw_admin_fail(cc, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "a reload moved the registry to a new "
                                 "zone; try again");
        (void) ngx_http_claw_retry_after(r, 1);
        ngx_http_claw_admin_finish(cc);
        return;
    }

    if (ngx_http_claw_admin_prepare(cc, &rec, &len) != NGX_OK) {
        ngx_http_claw_admin_finish(cc);
        return;
    }

    op->handler = ngx_http_claw_admin_written;

    ngx_http_claw_journal_write(&cmcf->journal, op, rec, len);
}


/*
 * Under the lock: the change as the tables are now (a token is added to
 * or taken from the tenant as it is, not as it was when the request
 * came), checked and allocated, and its journal record.
 */

static ngx_int_t
ngx_http_claw_admin_prepare(ngx_http_claw_change_ctx_t *cc, u_char **rec,
    size_t *len)
{
    size_t                      size, head, n;
    ngx_http_request_t         *r;
    ngx_http_claw_entry_t      *e, cur;
    ngx_http_claw_tconf_t      *tc;
    ngx_http_claw_tables_t     *tb;
    ngx_http_claw_main_conf_t  *cmcf;

    r = cc->request;
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);
    tb = &cmcf->tables;

    tc = NULL;

    if (cc->what != NGX_HTTP_CLAW_PUT || cc->if_match.len
        || cc->if_none_match)
    {
        tc = ngx_http_claw_tables_get(tb, cc->id.data, cc->id.len, r->pool);

        if (ngx_http_claw_admin_precondition(cc, tc) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (cc->what == NGX_HTTP_CLAW_PUT) {
        e = &cc->entry;

    } else if (cc->what == NGX_HTTP_CLAW_PATCH) {
        if (tc == NULL) {
            ngx_http_claw_admin_fail(cc, NGX_HTTP_NOT_FOUND,
                                     "no tenant \"%V\"", &cc->id);
            return NGX_ERROR;
        }

        e = &cur;

        if (ngx_http_claw_admin_merge(cc, tc, e) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        if (tc == NULL) {
            ngx_http_claw_admin_fail(cc, NGX_HTTP_NOT_FOUND,
                                     "no tenant \"%V\"", &cc->id);
            return NGX_ERROR;
        }

        if (cc->what == NGX_HTTP_CLAW_DELETE) {
            *rec = ngx_pnalloc(r->pool, cc->id.len + 3);
            if (*rec == NULL) {
                goto nomem;
            }

            *len = ngx_sprintf(*rec, "- %V\n", &cc->id) - *rec;

            return NGX_OK;
        }

        e = &cur;
        ngx_http_claw_tconf_entry(tc, e);

        if (ngx_http_claw_admin_tokens(cc, e) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    size = ngx_http_claw_tconf_size(e, &head);

    tc = ngx_palloc(r->pool, size);
    if (tc == NULL) {
        goto nomem;
    }

    ngx_http_claw_tconf_build(tc, e);

    if (ngx_http_claw_admin_fit(cc, tc, &cc->ch) != NGX_OK) {
        return NGX_ERROR;
    }

    cc->prepared = 1;

    n = ngx_http_claw_tconf_line(tc, NULL);

    *rec = ngx_pnalloc(r->pool, n + 3);
    if (*rec == NULL) {
        goto nomem;
    }

    (*rec)[0] = '+';
    (*rec)[1] = ' ';
    ngx_http_claw_tconf_line(tc, *rec + 2);
    (*rec)[n + 2] = '\n';

    *len = n + 3;

    return NGX_OK;

nomem:

    ngx_http_claw_admin_fail(cc, NGX_HTTP_INTERNAL_SERVER_ERROR,
                             "out of memory");
    return NGX_ERROR;
}


/*
 * The record is synced (or not): the change is committed, and its answer
 * made from what the tables hold now, both still under the lock, so that
 * no other change comes between the two.
 */

static void
ngx_http_claw_admin_written(ngx_http_claw_jop_t *op)
{
    ngx_http_request_t          *r;
    ngx_http_claw_tconf_t       *tc;
    ngx_http_claw_tables_t      *tb;
    ngx_http_claw_main_conf_t   *cmcf;
    ngx_http_claw_change_ctx_t  *cc;

    cc = op->data;
    r = cc->request;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);
    tb = &cmcf->tables;

    if (op->rc != NGX_OK) {
        if (cc->prepared) {
            ngx_http_claw_tables_abort(tb, &cc->ch);
            cc->prepared = 0;
        }

        if (op->rc == NGX_ABORT) {
            ngx_http_claw_admin_fail(cc, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     "%s failed%s%s, and undoing it failed "
                                     "too: the change may or may not have "
                                     "been written (the outcome is "
                                     "unknown); changes are refused until "
                                     "the journal is repaired", op->failed,
                                     op->err ? ": " : "",
                                     op->err ? strerror(op->err) : "");

        } else {
            ngx_http_claw_admin_fail(cc, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     "%s failed%s%s; nothing changed",
                                     op->failed, op->err ? ": " : "",
                                     op->err ? strerror(op->err) : "");
        }

        ngx_http_claw_admin_finish(cc);
        return;
    }

    switch (cc->what) {

    case NGX_HTTP_CLAW_DELETE:
        (void) ngx_http_claw_tables_remove(tb, cc->id.data, cc->id.len);
        tc = NULL;
        break;

    case NGX_HTTP_CLAW_PUT:
    case NGX_HTTP_CLAW_PATCH:
        cc->created = ngx_http_claw_tables_commit(tb, &cc->ch);
        cc->prepared = 0;
        tc = ngx_http_claw_tables_get(tb, cc->id.data, cc->id.len, r->pool);
        break;

    default: /* NGX_HTTP_CLAW_MINT, NGX_HTTP_CLAW_REVOKE */
        (void) ngx_http_claw_tables_commit(tb, &cc->ch);
        cc->prepared = 0;
        tc = NULL;
        break;
    }

    ngx_http_claw_admin_answer(cc, tc, "");

    ngx_http_claw_admin_finish(cc);
}


/* the lock goes, the request is let go, and answered */

static void
ngx_http_claw_admin_finish(ngx_http_claw_change_ctx_t *cc)
{
    ngx_int_t                   rc;
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_claw_main_conf_t  *cmcf;

    r = cc->request;
    c = r->connection;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    if (cc->prepared) {
        ngx_http_claw_tables_abort(&cmcf->tables, &cc->ch);
        cc->prepared = 0;
    }

    if (cmcf->cluster == NULL) {
        ngx_http_claw_journal_end(&cmcf->journal);
    }

    r->main->blocked--;
    r->aio = 0;

    if (c->error) {
        if (cc->json) {
            json_decref(cc->json);
        }

        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (cc->status == NGX_HTTP_NO_CONTENT) {
        r->header_only = 1;
        r->headers_out.status = NGX_HTTP_NO_CONTENT;
        r->headers_out.content_length_n = 0;

        rc = ngx_http_send_header(r);

    } else if (cc->json == NULL) {
        rc = cc->status;

    } else {
        if (cc->etag_len && cc->status < NGX_HTTP_SPECIAL_RESPONSE
            && ngx_http_claw_admin_etag_header(r, cc->etag, cc->etag_len)
               != NGX_OK)
        {
            json_decref(cc->json);
            cc->json = NULL;
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            goto done;
        }

        rc = ngx_http_claw_admin_send(r, cc->status, cc->json);
    }

done:


    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_claw_admin_fail(ngx_http_claw_change_ctx_t *cc, ngx_uint_t status,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    cc->json = ngx_http_claw_admin_message(fmt, args);
    va_end(args);

    cc->status = status;
}


/*
 * A PUT body, checked field by field with the registry's own parsers,
 * so that the API accepts exactly what the file does.  Returns an error
 * message naming the field, or NULL.
 */

static char *
ngx_http_claw_admin_entry(ngx_http_request_t *r, json_t *root, ngx_str_t *id,
    ngx_http_claw_entry_t *e)
{
    u_char                     *s;
    size_t                      len;
    int64_t                     n;
    json_t                     *v, *item;
    u_char                     *msg;
    ngx_str_t                  *sfx;
    ngx_uint_t                  i, j;
    const char                 *key, *why;
    ngx_http_claw_main_conf_t  *cmcf;

    if (!json_is_object(root)) {
        return "the body must be a JSON object";
    }

    ngx_memzero(e, sizeof(ngx_http_claw_entry_t));
    e->burst = -1;
    e->conn = -1;
    e->max_body = -1;
    e->id.data = id->data;
    e->id.len = id->len;

    json_object_foreach(root, key, v) {

        if (ngx_strcmp(key, "id") == 0) {
            if (!json_is_string(v)
                || json_string_length(v) != id->len
                || ngx_strncmp(json_string_value(v), id->data, id->len) != 0)
            {
                return "\"id\" differs from the id in the URL";
            }

        } else if (ngx_strcmp(key, "upstream") == 0) {
            if (!json_is_string(v)
                || ngx_http_claw_parse_upstream(
                       (u_char *) json_string_value(v), json_string_length(v),
                       &e->addr, &e->socklen)
                   != 0)
            {
                return "\"upstream\" must be \"IPv4:port\", \"[IPv6]:port\" "
                       "or \"unix:/path\"";
            }

            e->upstream.data = (u_char *) json_string_value(v);
            e->upstream.len = json_string_length(v);

        } else if (ngx_strcmp(key, "tokens") == 0) {
            if (!json_is_array(v)) {
                return "\"tokens\" must be an array";
            }

            if (json_array_size(v) > NGX_HTTP_CLAW_MAX_TOKENS) {
                return "\"tokens\" has more than 16 digests";
            }

            json_array_foreach(v, i, item) {
                if (!json_is_string(item)
                    || ngx_http_claw_parse_digest(
                           (u_char *) json_string_value(item),
                           json_string_length(item), e->tokens[i])
                       != 0)
                {
                    return "\"tokens\" must hold \"sha256:<64 hex digits>\"";
                }

                for (j = 0; j < i; j++) {
                    if (ngx_memcmp(e->tokens[j], e->tokens[i],
                                   NGX_HTTP_CLAW_DIGEST_LEN)
                        == 0)
                    {
                        return "\"tokens\" has a digest twice";
                    }
                }

                e->ntokens++;
            }

        } else if (ngx_strcmp(key, "rate") == 0) {
            if (json_is_null(v)) {
                continue;
            }

            if (!json_is_string(v)
                || ngx_http_claw_parse_rate((u_char *) json_string_value(v),
                                            json_string_length(v), &e->rate)
                   != 0)
            {
                return "\"rate\" must be like \"10r/s\" or \"600r/m\"";
            }

        } else if (ngx_strcmp(key, "burst") == 0
                   || ngx_strcmp(key, "conn") == 0)
        {
            if (json_is_null(v)) {
                continue;
            }

            n = json_is_integer(v) ? json_integer_value(v) : -1;

            if (n < 0 || n > NGX_HTTP_CLAW_BURST_MAX) {
                return key[0] == 'b'
                       ? "\"burst\" must be an integer from 0 to 1000000"
                       : "\"conn\" must be an integer from 0 to 1000000";
            }

            if (key[0] == 'b') {
                e->burst = n;

            } else {
                e->conn = n;
            }

        } else if (ngx_strcmp(key, "allow") == 0) {
            if (!json_is_array(v)) {
                return "\"allow\" must be an array";
            }

            if (json_array_size(v) > NGX_HTTP_CLAW_MAX_ALLOW) {
                return "\"allow\" has more than 16 networks";
            }

            json_array_foreach(v, i, item) {
                if (!json_is_string(item)
                    || ngx_http_claw_parse_cidr(
                           (u_char *) json_string_value(item),
                           json_string_length(item), &e->allow[i])
                       != 0)
                {
                    return "\"allow\" must hold addresses or networks "
                           "(\"192.0.2.0/24\", \"2001:db8::/32\")";
                }

                e->nallow++;
            }

        } else if (ngx_strcmp(key, "max_body") == 0) {
            if (json_is_null(v)) {
                continue;
            }

            if (json_is_integer(v)) {
                e->max_body = json_integer_value(v);

                if (e->max_body < 0 || e->max_body > NGX_HTTP_CLAW_BODY_MAX) {
                    return "\"max_body\" must be a size (bytes, or \"10m\")";
                }

            } else if (!json_is_string(v)
                       || ngx_http_claw_parse_size(
                              (u_char *) json_string_value(v),
                              json_string_length(v), &e->max_body)
                          != 0)
            {
                return "\"max_body\" must be a size (bytes, or \"10m\")";
            }

        } else if (ngx_strcmp(key, "state") == 0) {
            if (json_is_null(v)) {
                continue;
            }

            n = json_is_string(v)
                ? ngx_http_claw_parse_state((u_char *) json_string_value(v),
                                            json_string_length(v))
                : -1;

            if (n < 0) {
                return "\"state\" must be \"active\", \"suspended\", "
                       "\"maintenance\" or \"asleep\"";
            }

            e->state = (unsigned) n;
            e->has_state = 1;

        } else if (ngx_strcmp(key, "domains") == 0) {
            if (!json_is_array(v)) {
                return "\"domains\" must be an array";
            }

            if (json_array_size(v) > NGX_HTTP_CLAW_MAX_DOMAINS) {
                return "\"domains\" has more than 16 names";
            }

            cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

            json_array_foreach(v, i, item) {
                if (!json_is_string(item)) {
                    return "\"domains\" must hold domain names";
                }

                len = json_string_length(item);

                s = ngx_pnalloc(r->pool, len + 1);
                if (s == NULL) {
                    return "out of memory";
                }

                ngx_memcpy(s, json_string_value(item), len);

                if (ngx_http_claw_valid_domain(s, &len) != 0) {
                    return "\"domains\" must hold domain names";
                }

                why = ngx_http_claw_registry_domain(&cmcf->suffixes, s, len,
                                                    &sfx);
                if (why) {
                    msg = ngx_pnalloc(r->pool, sizeof("\"domains\": \"\"  \"\"")
                                               + len + 64 + sfx->len);
                    if (msg == NULL) {
                        return "out of memory";
                    }

                    ngx_sprintf(msg, "\"domains\": \"%*s\" %s \"%V\"%Z", len,
                                s, why, sfx);
                    return (char *) msg;
                }

                for (j = 0; j < e->ndomains; j++) {
                    if (e->domains[j].len == len
                        && ngx_memcmp(e->domains[j].data, s, len) == 0)
                    {
                        return "\"domains\" has a name twice";
                    }
                }

                e->domains[e->ndomains].data = s;
                e->domains[e->ndomains].len = len;
                e->ndomains++;
            }

        } else if (ngx_strcmp(key, "last_request") == 0) {

            /* read-only, as GET shows it: a GET, an edit, a PUT works */
            continue;

        } else {
            return "unknown field; fields are \"upstream\", \"tokens\", "
                   "\"rate\", \"burst\", \"conn\", \"domains\", "
                   "\"state\", \"allow\" and \"max_body\"";
        }
    }

    if (e->upstream.len == 0) {
        return "\"upstream\" is required";
    }

    return NULL;
}


static json_t *
ngx_http_claw_admin_tenant(ngx_http_claw_tconf_t *tc)
{
    u_char                *t, *d, *p;
    json_t                *obj, *tokens, *domains, *allow;
    ngx_uint_t             i;
    ngx_http_claw_cidr_t  *a;
    char                   text[64];
    u_char                 buf[sizeof("sha256:") + 2 * NGX_HTTP_CLAW_DIGEST_LEN];

    tokens = json_array();
    domains = json_array();

    t = ngx_http_claw_tconf_tokens(tc);

    for (i = 0; i < tc->ntokens; i++) {
        p = ngx_cpymem(buf, "sha256:", sizeof("sha256:") - 1);
        p = ngx_hex_dump(p, t + i * NGX_HTTP_CLAW_DIGEST_LEN,
                         NGX_HTTP_CLAW_DIGEST_LEN);
        json_array_append_new(tokens, json_stringn((char *) buf, p - buf));
    }

    d = ngx_http_claw_tconf_domains(tc);

    for (i = 0; i < tc->ndomains; i++) {
        json_array_append_new(domains, json_stringn((char *) d + 1, *d));
        d += 1 + *d;
    }

    allow = json_array();

    a = ngx_http_claw_tconf_allow(tc);

    for (i = 0; i < tc->nallow; i++) {
        json_array_append_new(allow,
                              json_stringn(text,
                                           ngx_http_claw_cidr_text(&a[i],
                                                                   text)));
    }

    obj = json_pack("{s:s%,s:s%,s:o,s:o,s:o,s:o,s:o,s:s,s:o,s:o}",
                    "id", (char *) ngx_http_claw_tconf_id(tc),
                    (size_t) tc->id_len,
                    "upstream", (char *) ngx_http_claw_tconf_upstream(tc),
                    (size_t) tc->upstream_len,
                    "tokens", tokens,
                    "rate", tc->rate.number
                            ? json_sprintf("%ur/%c", tc->rate.number,
                                           tc->rate.period == 1 ? 's' : 'm')
                            : json_null(),
                    "burst", tc->burst >= 0 ? json_integer(tc->burst)
                                            : json_null(),
                    "conn", tc->conn >= 0 ? json_integer(tc->conn)
                                          : json_null(),
                    "domains", domains,
                    "state", ngx_http_claw_states[tc->state],
                    "allow", allow,
                    "max_body", tc->max_body >= 0
                                ? json_stringn(text,
                                               ngx_http_claw_size_text(
                                                   tc->max_body, text))
                                : json_null());

    /* read-only: known for the tenants the tables copied out */

    if (obj && tc->seen) {
        json_object_set_new(obj, "last_request", json_integer(tc->seen));
    }

    return obj;
}


static ngx_int_t
ngx_http_claw_admin_send(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json)
{
    size_t        len;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = json_dumpb(json, NULL, 0, JSON_COMPACT);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        json_decref(json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last += json_dumpb(json, (char *) b->pos, len, JSON_COMPACT);
    *b->last++ = '\n';

    json_decref(json);

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;

    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_claw_admin_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *fmt, ...)
{
    json_t   *json;
    va_list   args;

    va_start(args, fmt);
    json = ngx_http_claw_admin_message(fmt, args);
    va_end(args);

    return ngx_http_claw_admin_send(r, status, json);
}


/* {"error":"..."} */

static json_t *
ngx_http_claw_admin_message(const char *fmt, va_list args)
{
    u_char  *p;
    u_char   msg[512];

    p = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);

    return json_pack("{s:s%}", "error", (char *) msg, (size_t) (p - msg));
}


/*
 * Cluster mode: the change is made on the server, against the record
 * the server holds (read first, and written only if it is still the
 * same), and answered once this node applied it from the log.
 */

static ngx_int_t
ngx_http_claw_admin_cluster_start(ngx_http_claw_change_ctx_t *cc)
{
    const char                 *why;
    ngx_http_request_t         *r;
    ngx_http_claw_main_conf_t  *cmcf;

    r = cc->request;
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    why = ngx_http_claw_cluster_writable(cmcf->cluster);

    if (why) {
        (void) ngx_http_claw_retry_after(r, 1);
        return ngx_http_claw_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "%s", why);
    }

    cc->cop.cluster = cmcf->cluster;
    cc->cop.pool = r->pool;
    cc->cop.log = r->connection->log;
    cc->cop.data = cc;
    cc->cop.id = cc->id;
    cc->cop.handler = ngx_http_claw_admin_cluster_got;

    r->main->count++;
    r->main->blocked++;
    r->aio = 1;

    if (ngx_http_claw_cluster_get(&cc->cop) != NGX_OK) {
        ngx_http_claw_admin_cluster_got(&cc->cop);
    }

    return NGX_DONE;
}


static void
ngx_http_claw_admin_cluster_got(ngx_http_claw_cluster_op_t *op)
{
    ngx_http_claw_change_ctx_t  *cc = op->data;

    if (op->rc != NGX_OK) {
        (void) ngx_http_claw_retry_after(cc->request, 1);
        ngx_http_claw_admin_fail(cc, NGX_HTTP_SERVICE_UNAVAILABLE, "%s",
                                 op->error);
        ngx_http_claw_admin_finish(cc);
        return;
    }

    if (ngx_http_claw_admin_cluster_record(cc) != NGX_OK) {
        ngx_http_claw_admin_finish(cc);
        return;
    }

    op->handler = ngx_http_claw_admin_cluster_written;

    if (ngx_http_claw_cluster_write(op) != NGX_OK) {
        ngx_http_claw_admin_cluster_written(op);
    }
}


/* the new record, from the one the server holds */

static ngx_int_t
ngx_http_claw_admin_cluster_record(ngx_http_claw_change_ctx_t *cc)
{
    u_char                      *p;
    size_t                       size, head;
    ngx_http_request_t          *r;
    ngx_http_claw_error_t        err;
    ngx_http_claw_change_t       ch;
    ngx_uint_t                   parsed;
    ngx_http_claw_entry_t        old, cur, *e;
    ngx_http_claw_tconf_t       *tc;
    ngx_http_claw_main_conf_t   *cmcf;
    ngx_http_claw_cluster_op_t  *op;

    r = cc->request;
    op = &cc->cop;
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    op->nold = 0;
    op->old_domains = NULL;
    parsed = 0;

    if (op->found) {

        /* the parser works in place: on a copy */

        p = ngx_pnalloc(r->pool, op->expect.len);
        if (p == NULL) {
            goto nomem;
        }

        ngx_memcpy(p, op->expect.data, op->expect.len);

        if (ngx_http_claw_parse_line(p, op->expect.len, &old, &err) != 1) {
            parsed = 0;

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "claw cluster: the record of tenant \"%V\" on "
                          "the server is malformed", &cc->id);

            if (cc->if_match.len || cc->if_none_match
                || (cc->what != NGX_HTTP_CLAW_PUT
                    && cc->what != NGX_HTTP_CLAW_DELETE))
            {
                ngx_http_claw_admin_fail(cc, NGX_HTTP_CONFLICT,
                                         "the record of tenant \"%V\" on "
                                         "the cluster server is malformed; "
                                         "replace it with PUT", &cc->id);
                return NGX_ERROR;
            }

        } else {
            parsed = 1;
            op->old_domains = ngx_http_claw_admin_domains(r->pool, &old);
            if (op->old_domains == NULL && old.ndomains) {
                goto nomem;
            }

            op->nold = old.ndomains;
        }

    }

    /* the server's record is the tenant's version */

    tc = NULL;

    if (op->found && parsed) {
        size = ngx_http_claw_tconf_size(&old, &head);

        tc = ngx_palloc(r->pool, size);
        if (tc == NULL) {
            goto nomem;
        }

        ngx_http_claw_tconf_build(tc, &old);
    }

    if (ngx_http_claw_admin_precondition(cc, tc) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!op->found && cc->what != NGX_HTTP_CLAW_PUT) {
        ngx_http_claw_admin_fail(cc, NGX_HTTP_NOT_FOUND, "no tenant \"%V\"",
                                 &cc->id);
        return NGX_ERROR;
    }

    switch (cc->what) {

    case NGX_HTTP_CLAW_DELETE:
        ngx_str_null(&op->record);
        op->nnew = 0;
        return NGX_OK;

    case NGX_HTTP_CLAW_PUT:
        e = &cc->entry;
        break;

    case NGX_HTTP_CLAW_PATCH:
        e = &cur;

        if (ngx_http_claw_admin_merge(cc, tc, e) != NGX_OK) {
            return NGX_ERROR;
        }

        break;

    default:
        e = &old;

        if (ngx_http_claw_admin_tokens(cc, e) != NGX_OK) {
            return NGX_ERROR;
        }

        break;
    }

    size = ngx_http_claw_tconf_size(e, &head);

    cc->tconf = ngx_palloc(r->pool, size);
    if (cc->tconf == NULL) {
        goto nomem;
    }

    ngx_http_claw_tconf_build(cc->tconf, e);

    /*
     * What this node could not apply is refused before the server takes
     * it, as on a single node: a full zone, a domain another tenant holds
     */

    if (ngx_http_claw_admin_fit(cc, cc->tconf, &ch) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_claw_tables_abort(&cmcf->tables, &ch);

    op->record.len = ngx_http_claw_tconf_line(cc->tconf, NULL);
    op->record.data = ngx_pnalloc(r->pool, op->record.len);
    if (op->record.data == NULL) {
        goto nomem;
    }

    (void) ngx_http_claw_tconf_line(cc->tconf, op->record.data);

    op->new_domains = ngx_http_claw_admin_domains(r->pool, e);
    if (op->new_domains == NULL && e->ndomains) {
        goto nomem;
    }

    op->nnew = e->ndomains;

    return NGX_OK;

nomem:

    ngx_http_claw_admin_fail(cc, NGX_HTTP_INTERNAL_SERVER_ERROR,
                             "out of memory");
    return NGX_ERROR;
}


static ngx_str_t *
ngx_http_claw_admin_domains(ngx_pool_t *pool, ngx_http_claw_entry_t *e)
{
    u_char      *p;
    ngx_str_t   *d;
    ngx_uint_t   i;

    if (e->ndomains == 0) {
        return NULL;
    }

    d = ngx_palloc(pool, e->ndomains * sizeof(ngx_str_t));
    if (d == NULL) {
        return NULL;
    }

    for (i = 0; i < e->ndomains; i++) {
        p = ngx_pnalloc(pool, e->domains[i].len);
        if (p == NULL) {
            return NULL;
        }

        ngx_memcpy(p, e->domains[i].data, e->domains[i].len);

        d[i].data = p;
        d[i].len = e->domains[i].len;
    }

    return d;
}


static void
ngx_http_claw_admin_cluster_written(ngx_http_claw_cluster_op_t *op)
{
    ngx_http_claw_change_ctx_t  *cc = op->data;

    switch (op->rc) {

    case NGX_OK:
        op->handler = ngx_http_claw_admin_cluster_applied;
        ngx_http_claw_cluster_wait(op);
        return;

    case NGX_BUSY:

        /* changed on the server since it was read: read it again */

        if (++cc->tries < 5) {
            op->handler = ngx_http_claw_admin_cluster_got;

            if (ngx_http_claw_cluster_get(op) != NGX_OK) {
                ngx_http_claw_admin_cluster_got(op);
            }

            return;
        }

        ngx_http_claw_admin_fail(cc, NGX_HTTP_CONFLICT,
                                 "tenant \"%V\" kept changing on the "
                                 "cluster server; nothing changed",
                                 &cc->id);
        break;

    case NGX_DECLINED:
        ngx_http_claw_admin_fail(cc, NGX_HTTP_CONFLICT,
                                 "domain \"%V\" belongs to tenant \"%V\"",
                                 &op->domain, &op->owner);
        break;

    default:
        (void) ngx_http_claw_retry_after(cc->request, 1);
        ngx_http_claw_admin_fail(cc, NGX_HTTP_SERVICE_UNAVAILABLE, "%s",
                                 op->error);
        break;
    }

    ngx_http_claw_admin_finish(cc);
}


static void
ngx_http_claw_admin_cluster_applied(ngx_http_claw_cluster_op_t *op)
{
    ngx_http_claw_change_ctx_t  *cc = op->data;

    cc->created = op->created;

    ngx_http_claw_admin_answer(cc, cc->tconf, " in the cluster");
    ngx_http_claw_admin_finish(cc);
}


/* POST /cluster/import: this node's registry into an empty server */

static ngx_int_t
ngx_http_claw_admin_import(ngx_http_request_t *r)
{
    ngx_http_claw_main_conf_t   *cmcf;
    ngx_http_claw_change_ctx_t  *cc;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    if (cmcf->cluster == NULL) {
        return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_FOUND,
                                         "no claw_cluster");
    }

    cc = ngx_pcalloc(r->pool, sizeof(ngx_http_claw_change_ctx_t));
    if (cc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cc->request = r;

    cc->cop.cluster = cmcf->cluster;
    cc->cop.pool = r->pool;
    cc->cop.log = r->connection->log;
    cc->cop.data = cc;
    cc->cop.handler = ngx_http_claw_admin_imported;

    r->main->count++;
    r->main->blocked++;
    r->aio = 1;

    if (ngx_http_claw_cluster_import(&cc->cop) != NGX_OK) {
        ngx_http_claw_admin_imported(&cc->cop);
    }

    return NGX_DONE;
}


static void
ngx_http_claw_admin_imported(ngx_http_claw_cluster_op_t *op)
{
    ngx_http_claw_change_ctx_t  *cc = op->data;

    if (op->rc == NGX_OK) {
        ngx_log_error(NGX_LOG_NOTICE, cc->request->connection->log, 0,
                      "claw cluster: %ui tenants imported", op->created);

        cc->status = NGX_HTTP_OK;
        cc->json = json_pack("{s:i}", "imported", (json_int_t) op->created);

        if (cc->json == NULL) {
            cc->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else if (op->rc == NGX_BUSY) {
        ngx_http_claw_admin_fail(cc, NGX_HTTP_CONFLICT, "%s", op->error);

    } else {
        (void) ngx_http_claw_retry_after(cc->request, 1);
        ngx_http_claw_admin_fail(cc, NGX_HTTP_SERVICE_UNAVAILABLE, "%s",
                                 op->error);
    }

    ngx_http_claw_admin_finish(cc);
}


/* a token added to the tenant (POST), or taken away (DELETE) */

static ngx_int_t
ngx_http_claw_admin_tokens(ngx_http_claw_change_ctx_t *cc,
    ngx_http_claw_entry_t *e)
{
    int  i;

    if (cc->what == NGX_HTTP_CLAW_MINT) {
        if (e->ntokens == NGX_HTTP_CLAW_MAX_TOKENS) {
            ngx_http_claw_admin_fail(cc, NGX_HTTP_CONFLICT,
                                     "tenant \"%V\" has %d tokens already; "
                                     "delete one first", &cc->id,
                                     NGX_HTTP_CLAW_MAX_TOKENS);
            return NGX_ERROR;
        }

        ngx_memcpy(e->tokens[e->ntokens++], cc->digest,
                   NGX_HTTP_CLAW_DIGEST_LEN);
        return NGX_OK;
    }

    i = ngx_http_claw_digest_find(cc->digest, (u_char *) e->tokens,
                                  e->ntokens);

    if (i < 0) {
        ngx_http_claw_admin_fail(cc, NGX_HTTP_NOT_FOUND, "no such token");
        return NGX_ERROR;
    }

    /* the token's sessions die with it: their MACs need it */

    ngx_memmove(e->tokens[i], e->tokens[i + 1],
                (e->ntokens - i - 1) * NGX_HTTP_CLAW_DIGEST_LEN);
    e->ntokens--;

    return NGX_OK;
}


/* the change prepared in the zone: a domain of another tenant, no room */

static ngx_int_t
ngx_http_claw_admin_fit(ngx_http_claw_change_ctx_t *cc,
    ngx_http_claw_tconf_t *tc, ngx_http_claw_change_t *ch)
{
    ngx_int_t                   rc;
    ngx_str_t                   owner;
    ngx_http_request_t         *r;
    ngx_http_claw_main_conf_t  *cmcf;

    r = cc->request;
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    ngx_str_null(&owner);

    rc = ngx_http_claw_tables_prepare(&cmcf->tables, tc, ch, &owner,
                                      r->pool);

    if (rc == NGX_BUSY) {
        ngx_http_claw_admin_fail(cc, NGX_HTTP_CONFLICT,
                                 "a domain belongs to tenant \"%V\"", &owner);
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "claw zone \"%V\" is full, tenant \"%V\" not changed",
                      &cmcf->tables.shm_zone->shm.name, &cc->id);

        ngx_http_claw_admin_fail(cc, 507, "the claw zone is full");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a change made: its status, its body and its log line */

static void
ngx_http_claw_admin_answer(ngx_http_claw_change_ctx_t *cc,
    ngx_http_claw_tconf_t *tc, const char *where)
{
    u_char              *p;
    ngx_http_request_t  *r;
    u_char               hex[sizeof("sha256:") + 2 * NGX_HTTP_CLAW_DIGEST_LEN];

    r = cc->request;

    switch (cc->what) {

    case NGX_HTTP_CLAW_DELETE:
        cc->status = NGX_HTTP_NO_CONTENT;

        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "claw: tenant \"%V\" deleted%s", &cc->id, where);
        return;

    case NGX_HTTP_CLAW_PUT:
    case NGX_HTTP_CLAW_PATCH:
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "claw: tenant \"%V\" %s%s", &cc->id,
                      cc->created ? "added" : "changed", where);

        cc->status = cc->created ? NGX_HTTP_CREATED : NGX_HTTP_OK;
        cc->json = tc ? ngx_http_claw_admin_tenant(tc) : NULL;

        if (tc) {
            cc->etag_len = ngx_http_claw_admin_version(r->pool, tc, cc->etag);
        }

        break;

    default: /* NGX_HTTP_CLAW_MINT, NGX_HTTP_CLAW_REVOKE */
        p = ngx_cpymem(hex, "sha256:", sizeof("sha256:") - 1);
        p = ngx_hex_dump(p, cc->digest, NGX_HTTP_CLAW_DIGEST_LEN);

        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "claw: token %*s of tenant \"%V\" %s%s",
                      (size_t) (p - hex), hex, &cc->id,
                      cc->what == NGX_HTTP_CLAW_MINT ? "minted" : "deleted",
                      where);

        if (cc->what == NGX_HTTP_CLAW_REVOKE) {
            cc->status = NGX_HTTP_NO_CONTENT;
            return;
        }

        cc->status = NGX_HTTP_CREATED;
        cc->json = json_pack("{s:s%,s:s%}", "token", (char *) cc->token.data,
                             cc->token.len, "hash", (char *) hex,
                             (size_t) (p - hex));

        ngx_explicit_memzero(cc->token.data, cc->token.len);
        break;
    }

    if (cc->json == NULL) {
        cc->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}
