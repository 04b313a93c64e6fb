
/*
 * Copyright (C) ngx_claw_module authors
 *
 * The admin API (claw_admin): tenants and their tokens, changed live,
 * with no reload.  A change is checked against the registry, written to
 * the journal and synced, then put in the zone, where every worker sees
 * it for its next request; only then is it acknowledged.  JSON is read
 * and written with jansson.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_admin.h"
#include "ngx_http_claw_store.h"
#include "ngx_http_claw_token.h"


/* a minted token: a prefix that says what it is, 256 random bits */
#define NGX_HTTP_CLAW_MINT_PREFIX  "claw_"
#define NGX_HTTP_CLAW_MINT_BYTES   32


typedef struct {
    ngx_str_t                    id;
    ngx_str_t                    hash;          /* tokens/{hash} */
    ngx_uint_t                   tokens;        /* /tokens[/...] */
} ngx_http_claw_route_t;


static ngx_int_t ngx_http_claw_admin_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_claw_admin_route(ngx_http_request_t *r,
    ngx_http_claw_route_t *route);
static void ngx_http_claw_admin_put_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_claw_admin_list(ngx_http_request_t *r);
static ngx_int_t ngx_http_claw_admin_get(ngx_http_request_t *r,
    ngx_str_t *id, ngx_uint_t status);
static ngx_int_t ngx_http_claw_admin_put(ngx_http_request_t *r,
    ngx_str_t *id, u_char *body, size_t len);
static ngx_int_t ngx_http_claw_admin_delete(ngx_http_request_t *r,
    ngx_str_t *id);
static ngx_int_t ngx_http_claw_admin_mint(ngx_http_request_t *r,
    ngx_str_t *id);
static ngx_int_t ngx_http_claw_admin_revoke(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *hash);
static ngx_int_t ngx_http_claw_admin_change(ngx_http_request_t *r,
    ngx_http_claw_entry_t *e, ngx_uint_t locked, ngx_uint_t *created,
    u_char **err);
static char *ngx_http_claw_admin_entry(ngx_http_request_t *r, json_t *root,
    ngx_str_t *id, ngx_http_claw_entry_t *e);
static json_t *ngx_http_claw_admin_tenant(ngx_http_claw_tconf_t *tc);
static ngx_int_t ngx_http_claw_admin_send(ngx_http_request_t *r,
    ngx_uint_t status, json_t *json);
static ngx_int_t ngx_http_claw_admin_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *fmt, ...);


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
    ngx_table_elt_t            *h;
    ngx_http_claw_ctx_t        *ctx;
    ngx_http_claw_route_t       route;
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    if (cmcf->registry.shm_zone == NULL) {
        return ngx_http_claw_admin_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "no claw_zone");
    }

    /* a request routed to a tenant never reaches the admin API */

    ctx = ngx_http_claw_get_ctx(r->main);

    if (ctx && ctx->tenant) {
        return NGX_HTTP_FORBIDDEN;
    }

    if (ngx_http_claw_admin_route(r, &route) != NGX_OK) {
        return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_FOUND,
                                         "no such resource");
    }

    if (route.id.len == 0) {
        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            return ngx_http_claw_admin_list(r);
        }

        ngx_str_set(&route.hash, "GET, HEAD");
        goto not_allowed;
    }

    if (!route.tokens) {
        switch (r->method) {

        case NGX_HTTP_GET:
        case NGX_HTTP_HEAD:
            return ngx_http_claw_admin_get(r, &route.id, NGX_HTTP_OK);

        case NGX_HTTP_DELETE:
            return ngx_http_claw_admin_delete(r, &route.id);

        case NGX_HTTP_PUT:
            r->request_body_in_single_buf = 1;

            rc = ngx_http_read_client_request_body(r,
                                               ngx_http_claw_admin_put_body);
            if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
                return rc;
            }

            return NGX_DONE;
        }

        ngx_str_set(&route.hash, "GET, HEAD, PUT, DELETE");
        goto not_allowed;
    }

    if (route.hash.len == 0) {
        if (r->method == NGX_HTTP_POST) {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_claw_admin_mint(r, &route.id);
        }

        ngx_str_set(&route.hash, "POST");
        goto not_allowed;
    }

    if (r->method == NGX_HTTP_DELETE) {
        return ngx_http_claw_admin_revoke(r, &route.id, &route.hash);
    }

    ngx_str_set(&route.hash, "DELETE");

not_allowed:

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
    h->value = route.hash;

    return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_ALLOWED,
                                     "method not allowed");
}


/*
 * The API's path is the request's past the location prefix, so the API
 * can sit at "location /" of its own server or under "/claw/":
 *   /tenants  /tenants/{id}  /tenants/{id}/tokens  /tenants/{id}/tokens/{h}
 */

static ngx_int_t
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
            return NGX_DECLINED;
        }

        seg = p;

        while (p < end && *p != '/') {
            p++;
        }

        if (p == seg) {
            if (p == end) {
                break;          /* a trailing slash */
            }

            return NGX_DECLINED;
        }

        if (n == 5) {
            return NGX_DECLINED;
        }

        segs[n].data = seg;
        segs[n].len = p - seg;
        n++;
    }

    if (n == 0 || segs[0].len != 7
        || ngx_strncmp(segs[0].data, "tenants", 7) != 0)
    {
        return NGX_DECLINED;
    }

    if (n >= 2) {
        if (!ngx_http_claw_valid_id(segs[1].data, segs[1].len)) {
            return NGX_DECLINED;
        }

        route->id = segs[1];
    }

    if (n >= 3) {
        if (segs[2].len != 6 || ngx_strncmp(segs[2].data, "tokens", 6) != 0)
        {
            return NGX_DECLINED;
        }

        route->tokens = 1;
    }

    if (n == 4) {
        route->hash = segs[3];
    }

    return n <= 4 ? NGX_OK : NGX_DECLINED;
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

    (void) ngx_http_claw_admin_route(r, &route);

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

    rc = ngx_http_claw_admin_put(r, &route.id, body, p - body);

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_claw_admin_list(ngx_http_request_t *r)
{
    json_t                     *root, *list;
    ngx_uint_t                  i, n;
    ngx_http_claw_tconf_t     **tcs;
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    tcs = ngx_http_claw_registry_list(&cmcf->registry, r->pool, &n);
    if (tcs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    list = json_array();
    root = json_pack("{s:o}", "tenants", list);
    if (list == NULL || root == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (json_array_append_new(list, ngx_http_claw_admin_tenant(tcs[i]))
            != 0)
        {
            json_decref(root);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_claw_admin_send(r, NGX_HTTP_OK, root);
}


static ngx_int_t
ngx_http_claw_admin_get(ngx_http_request_t *r, ngx_str_t *id,
    ngx_uint_t status)
{
    ngx_http_claw_tconf_t      *tc;
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    tc = ngx_http_claw_registry_get(&cmcf->registry, id->data, id->len,
                                    r->pool);
    if (tc == NULL) {
        return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_FOUND,
                                         "no tenant \"%V\"", id);
    }

    return ngx_http_claw_admin_send(r, status,
                                    ngx_http_claw_admin_tenant(tc));
}


static ngx_int_t
ngx_http_claw_admin_put(ngx_http_request_t *r, ngx_str_t *id, u_char *body,
    size_t len)
{
    char                   *err;
    u_char                 *msg;
    json_t                 *root;
    ngx_int_t               rc;
    ngx_uint_t              created;
    json_error_t            jerr;
    ngx_http_claw_entry_t   e;

    root = json_loadb((char *) body, len, JSON_REJECT_DUPLICATES, &jerr);

    if (root == NULL) {
        return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid JSON at line %d, column "
                                         "%d: %s", jerr.line, jerr.column,
                                         jerr.text);
    }

    err = ngx_http_claw_admin_entry(r, root, id, &e);

    if (err) {
        json_decref(root);
        return ngx_http_claw_admin_error(r, NGX_HTTP_BAD_REQUEST, "%s", err);
    }

    rc = ngx_http_claw_admin_change(r, &e, 0, &created, &msg);

    json_decref(root);

    if (rc != NGX_OK) {
        return msg ? ngx_http_claw_admin_error(r, rc, "%s", msg) : rc;
    }

    return ngx_http_claw_admin_get(r, id, created ? NGX_HTTP_CREATED
                                                  : NGX_HTTP_OK);
}


static ngx_int_t
ngx_http_claw_admin_delete(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char                     *rec;
    ngx_int_t                   rc;
    ngx_http_claw_registry_t   *reg;
    ngx_http_claw_main_conf_t  *cmcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);
    reg = &cmcf->registry;

    rec = ngx_pnalloc(r->pool, id->len + 3);
    if (rec == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(rec, "- %V\n", id);

    if (ngx_http_claw_store_lock(reg, r->connection->log) != NGX_OK) {
        return ngx_http_claw_admin_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "the journal cannot be opened");
    }

    if (ngx_http_claw_registry_get(reg, id->data, id->len, r->pool) == NULL)
    {
        ngx_http_claw_store_unlock(reg);
        return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_FOUND,
                                         "no tenant \"%V\"", id);
    }

    if (ngx_http_claw_store_append(reg, rec, id->len + 3,
                                   r->connection->log)
        != NGX_OK)
    {
        ngx_http_claw_store_unlock(reg);
        return ngx_http_claw_admin_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "writing the journal failed: %s",
                                         strerror(ngx_errno));
    }

    (void) ngx_http_claw_registry_remove(reg, id->data, id->len);

    ngx_http_claw_store_unlock(reg);

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "claw: tenant \"%V\" deleted", id);

    r->header_only = 1;
    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;

    return ngx_http_send_header(r);
}


/* a new token, shown once; only its digest is kept */

static ngx_int_t
ngx_http_claw_admin_mint(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char                     *p, *err;
    json_t                     *json;
    ngx_int_t                   rc;
    ngx_str_t                   token, raw, hash;
    ngx_uint_t                  created;
    ngx_http_claw_entry_t       e;
    ngx_http_claw_tconf_t      *tc;
    ngx_http_claw_main_conf_t  *cmcf;
    u_char                      rnd[NGX_HTTP_CLAW_MINT_BYTES];
    u_char                      buf[sizeof(NGX_HTTP_CLAW_MINT_PREFIX)
                                    + 2 * NGX_HTTP_CLAW_MINT_BYTES];
    u_char                      hex[sizeof("sha256:")
                                    + 2 * NGX_HTTP_CLAW_DIGEST_LEN];

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "claw: RAND_bytes() failed");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(buf, NGX_HTTP_CLAW_MINT_PREFIX,
                   sizeof(NGX_HTTP_CLAW_MINT_PREFIX) - 1);

    raw.data = rnd;
    raw.len = sizeof(rnd);
    token.data = p;
    ngx_encode_base64url(&token, &raw);

    token.data = buf;
    token.len += sizeof(NGX_HTTP_CLAW_MINT_PREFIX) - 1;

    ngx_explicit_memzero(rnd, sizeof(rnd));

    /* the tenant as it is now, with one more digest */

    if (ngx_http_claw_store_lock(&cmcf->registry, r->connection->log)
        != NGX_OK)
    {
        return ngx_http_claw_admin_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "the journal cannot be opened");
    }

    tc = ngx_http_claw_registry_get(&cmcf->registry, id->data, id->len,
                                    r->pool);
    if (tc == NULL) {
        ngx_http_claw_store_unlock(&cmcf->registry);
        return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_FOUND,
                                         "no tenant \"%V\"", id);
    }

    if (tc->ntokens == NGX_HTTP_CLAW_MAX_TOKENS) {
        ngx_http_claw_store_unlock(&cmcf->registry);
        return ngx_http_claw_admin_error(r, NGX_HTTP_CONFLICT,
                                         "tenant \"%V\" has %d tokens "
                                         "already; delete one first", id,
                                         NGX_HTTP_CLAW_MAX_TOKENS);
    }

    ngx_http_claw_tconf_entry(tc, &e);

    ngx_http_claw_token_digest(token.data, token.len, e.tokens[e.ntokens++]);

    rc = ngx_http_claw_admin_change(r, &e, 1, &created, &err);

    ngx_http_claw_store_unlock(&cmcf->registry);

    if (rc != NGX_OK) {
        return err ? ngx_http_claw_admin_error(r, rc, "%s", err) : rc;
    }

    p = ngx_cpymem(hex, "sha256:", sizeof("sha256:") - 1);
    p = ngx_hex_dump(p, e.tokens[e.ntokens - 1], NGX_HTTP_CLAW_DIGEST_LEN);

    hash.data = hex;
    hash.len = p - hex;

    json = json_pack("{s:s%,s:s%}", "token", (char *) token.data, token.len,
                     "hash", (char *) hash.data, hash.len);

    ngx_explicit_memzero(buf, sizeof(buf));

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "claw: token %V minted for tenant \"%V\"", &hash, id);

    return ngx_http_claw_admin_send(r, NGX_HTTP_CREATED, json);
}


static ngx_int_t
ngx_http_claw_admin_revoke(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *hash)
{
    int                         i;
    u_char                     *err;
    ngx_int_t                   rc;
    ngx_uint_t                  created;
    ngx_http_claw_entry_t       e;
    ngx_http_claw_tconf_t      *tc;
    ngx_http_claw_main_conf_t  *cmcf;
    u_char                      digest[NGX_HTTP_CLAW_DIGEST_LEN];
    u_char                      text[sizeof("sha256:")
                                     + 2 * NGX_HTTP_CLAW_DIGEST_LEN];

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* "{hex}" or "sha256:{hex}" */

    if (hash->len == 2 * NGX_HTTP_CLAW_DIGEST_LEN) {
        ngx_sprintf(text, "sha256:%V", hash);

    } else if (hash->len == sizeof("sha256:") - 1
                            + 2 * NGX_HTTP_CLAW_DIGEST_LEN)
    {
        ngx_memcpy(text, hash->data, hash->len);

    } else {
        return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_FOUND,
                                         "no such token");
    }

    if (ngx_http_claw_parse_digest(text, sizeof("sha256:") - 1
                                         + 2 * NGX_HTTP_CLAW_DIGEST_LEN,
                                   digest)
        != 0)
    {
        return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_FOUND,
                                         "no such token");
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    if (ngx_http_claw_store_lock(&cmcf->registry, r->connection->log)
        != NGX_OK)
    {
        return ngx_http_claw_admin_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "the journal cannot be opened");
    }

    tc = ngx_http_claw_registry_get(&cmcf->registry, id->data, id->len,
                                    r->pool);

    i = tc ? ngx_http_claw_digest_find(digest,
                                       ngx_http_claw_tconf_tokens(tc),
                                       tc->ntokens)
           : -1;

    if (i < 0) {
        ngx_http_claw_store_unlock(&cmcf->registry);
        return ngx_http_claw_admin_error(r, NGX_HTTP_NOT_FOUND,
                                         tc ? "no such token"
                                            : "no such tenant");
    }

    ngx_http_claw_tconf_entry(tc, &e);

    ngx_memmove(e.tokens[i], e.tokens[i + 1],
                (e.ntokens - i - 1) * NGX_HTTP_CLAW_DIGEST_LEN);
    e.ntokens--;

    /* the token's sessions die with it: their MACs need its digest */

    rc = ngx_http_claw_admin_change(r, &e, 1, &created, &err);

    ngx_http_claw_store_unlock(&cmcf->registry);

    if (rc != NGX_OK) {
        return err ? ngx_http_claw_admin_error(r, rc, "%s", err) : rc;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "claw: token sha256:%*s of tenant \"%V\" deleted",
                  (size_t) 2 * NGX_HTTP_CLAW_DIGEST_LEN,
                  text + sizeof("sha256:") - 1, id);

    r->header_only = 1;
    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;

    return ngx_http_send_header(r);
}


/*
 * Puts one tenant: checks (a domain of another tenant: 409), allocates
 * (a full zone: 507, nothing evicted), journals (a failed write: 500,
 * nothing changed), commits.  Takes the journal lock unless the caller
 * holds it (token changes read the tenant under it).
 */

static ngx_int_t
ngx_http_claw_admin_change(ngx_http_request_t *r, ngx_http_claw_entry_t *e,
    ngx_uint_t locked, ngx_uint_t *created, u_char **err)
{
    u_char                     *rec, *msg;
    size_t                      size, head, len;
    ngx_int_t                   rc;
    ngx_str_t                   owner;
    ngx_http_claw_change_t      ch;
    ngx_http_claw_tconf_t      *tc;
    ngx_http_claw_registry_t   *reg;
    ngx_http_claw_main_conf_t  *cmcf;

    *err = NULL;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);
    reg = &cmcf->registry;

    /* room for the longest message below */

    msg = ngx_pnalloc(r->pool, sizeof("writing the journal failed: ")
                               + NGX_MAX_ERROR_STR);
    if (msg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    size = ngx_http_claw_tconf_size(e, &head);

    tc = ngx_palloc(r->pool, size);
    if (tc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_claw_tconf_build(tc, e);

    len = ngx_http_claw_tconf_line(tc, NULL);

    rec = ngx_pnalloc(r->pool, len + 3);
    if (rec == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rec[0] = '+';
    rec[1] = ' ';
    ngx_http_claw_tconf_line(tc, rec + 2);
    rec[len + 2] = '\n';

    if (!locked && ngx_http_claw_store_lock(reg, r->connection->log) != NGX_OK)
    {
        *err = (u_char *) "the journal cannot be opened";
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&owner);

    rc = ngx_http_claw_registry_prepare(reg, tc, &ch, &owner, r->pool);

    if (rc == NGX_BUSY) {
        if (!locked) {
            ngx_http_claw_store_unlock(reg);
        }

        *ngx_snprintf(msg, NGX_MAX_ERROR_STR,
                      "a domain belongs to tenant \"%V\"", &owner) = '\0';
        *err = msg;
        return NGX_HTTP_CONFLICT;
    }

    if (rc != NGX_OK) {
        if (!locked) {
            ngx_http_claw_store_unlock(reg);
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "claw zone \"%V\" is full, tenant \"%*s\" not changed",
                      &reg->shm_zone->shm.name, (size_t) tc->id_len,
                      ngx_http_claw_tconf_id(tc));

        *err = (u_char *) "the claw zone is full";
        return 507;
    }

    if (ngx_http_claw_store_append(reg, rec, len + 3, r->connection->log)
        != NGX_OK)
    {
        *ngx_snprintf(msg, NGX_MAX_ERROR_STR, "writing the journal failed: %s",
                      strerror(ngx_errno)) = '\0';

        ngx_http_claw_registry_abort(reg, &ch);

        if (!locked) {
            ngx_http_claw_store_unlock(reg);
        }

        *err = msg;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *created = ngx_http_claw_registry_commit(reg, &ch);

    if (!locked) {
        ngx_http_claw_store_unlock(reg);
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "claw: tenant \"%*s\" %s", (size_t) tc->id_len,
                  ngx_http_claw_tconf_id(tc), *created ? "added" : "changed");

    return NGX_OK;
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
    ngx_str_t                  *sfx;
    ngx_uint_t                  i, j;
    const char                 *key;
    ngx_http_claw_main_conf_t  *cmcf;

    if (!json_is_object(root)) {
        return "the body must be a JSON object";
    }

    ngx_memzero(e, sizeof(ngx_http_claw_entry_t));
    e->burst = -1;
    e->conn = -1;
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

                sfx = cmcf->registry.suffixes.elts;

                for (j = 0; j < cmcf->registry.suffixes.nelts; j++) {
                    if (ngx_http_claw_under_suffix(s, len, &sfx[j])) {
                        return "\"domains\" has a name under claw_domain";
                    }
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

        } else {
            return "unknown field; fields are \"upstream\", \"tokens\", "
                   "\"rate\", \"burst\", \"conn\" and \"domains\"";
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
    u_char      *t, *d, *p;
    json_t      *obj, *tokens, *domains;
    ngx_uint_t   i;
    u_char       buf[sizeof("sha256:") + 2 * NGX_HTTP_CLAW_DIGEST_LEN];

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

    obj = json_pack("{s:s%,s:s%,s:o,s:o,s:o,s:o,s:o}",
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
                    "domains", domains);

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
    u_char   *p;
    va_list   args;
    u_char    msg[512];

    va_start(args, fmt);
    p = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    return ngx_http_claw_admin_send(r, status,
                                    json_pack("{s:s%}", "error", (char *) msg,
                                              (size_t) (p - msg)));
}
