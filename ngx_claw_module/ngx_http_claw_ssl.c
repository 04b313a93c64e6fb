
/*
 * Copyright (C) ngx_claw_module authors
 *
 * TLS for tenants: the certificate of a custom domain chosen by SNI
 * during the handshake (claw_certificates, from the worker's cache that
 * domains.c keeps), the binding of a request to the tenant its SNI and,
 * in a claw_tenant location, its host name (421 for another tenant's),
 * HSTS, and the container cookies that must not reach a browser.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_ssl.h"
#include "ngx_http_claw_domains.h"


#if (NGX_HTTP_SSL)
static ngx_uint_t ngx_http_claw_ssl_wildcard(ngx_http_claw_srv_conf_t *cscf,
    u_char *host, size_t len, u_char *name, size_t *nlen);
static int ngx_http_claw_ssl_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg);
#endif

static ngx_http_claw_tenant_t *ngx_http_claw_ssl_tenant(
    ngx_http_claw_main_conf_t *cmcf, u_char *host, size_t len);
static ngx_uint_t ngx_http_claw_cookie_domain(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx);
static ngx_uint_t ngx_http_claw_cookie_allowed(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx, ngx_str_t *value, ngx_int_t *domain);
static void ngx_http_claw_trim(u_char **start, u_char **end);


/*
 * Called when the server's configuration is merged, after the ssl
 * module has made the server's SSL context.
 */

char *
ngx_http_claw_ssl_merge(ngx_conf_t *cf, ngx_http_claw_srv_conf_t *cscf)
{
#if (NGX_HTTP_SSL)
    ngx_http_ssl_srv_conf_t    *sscf;
    ngx_http_claw_main_conf_t  *cmcf;

    if (cscf->certificates.len == 0) {
        return NGX_CONF_OK;
    }

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    if (sscf == NULL || sscf->ssl.ctx == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"claw_certificates\" needs the server's "
                           "\"ssl_certificate\" (the certificate of every "
                           "other name)");
        return NGX_CONF_ERROR;
    }

    if (sscf->certificate_values) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"claw_certificates\" cannot be used with "
                           "variables in \"ssl_certificate\"");
        return NGX_CONF_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_claw_module);

    if (cmcf->tables.shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"claw_certificates\" requires \"claw_zone\" and "
                           "\"claw_tenants\" in the http block");
        return NGX_CONF_ERROR;
    }

    cscf->tables = &cmcf->tables;
    cscf->suffixes = &cmcf->suffixes;

    cscf->cache = ngx_http_claw_domains_add_dir(cf, &cscf->certificates);
    if (cscf->cache == NULL) {
        return NGX_CONF_ERROR;
    }

    SSL_CTX_set_cert_cb(sscf->ssl.ctx, ngx_http_claw_ssl_cert_cb, cscf);

    return NGX_CONF_OK;

#else

    if (cscf->certificates.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"claw_certificates\" needs nginx with SSL");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

#endif
}


/*
 * A request of one tenant reached through a name of another is
 * misdirected (421): a browser then opens a connection of its own for
 * it, and HTTP/2 connection coalescing under a wildcard keeps working.
 * Names are resolved against every claw_domain of the configuration and
 * the custom domains, whatever the location's own claw_domain list is:
 * generated per-tenant servers have none.
 *
 * - In a claw_tenant location, a host that names another tenant (it came
 *   by a catch-all server_name or a default server), over TLS or not.
 *
 * - On TLS, an SNI that names another tenant than the request's, checked
 *   for every request, so for every HTTP/2 stream by its :authority.
 *
 * - On TLS in a claw_tenant location, an SNI that names no tenant but
 *   chose another server{} than the host did: with per-tenant servers
 *   and no claw_domain, a server is all that tells tenants' names apart.
 */

ngx_int_t
ngx_http_claw_ssl_sni_check(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx)
{
    size_t                       len;
    ngx_http_claw_tenant_t      *t;
    ngx_http_claw_main_conf_t   *cmcf;
#if (NGX_HTTP_SSL) && defined SSL_CTRL_SET_TLSEXT_HOSTNAME
    const char                  *sni;
    ngx_http_connection_t       *hc;
#endif
    u_char                       host[NGX_HTTP_CLAW_HOST_MAX];

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    if (clcf->tenant.len
        && ngx_http_claw_host_canon(r->headers_in.server.data,
                                    r->headers_in.server.len, host, &len)
           == NGX_HTTP_CLAW_HOST_NAME)
    {
        t = ngx_http_claw_ssl_tenant(cmcf, host, len);

        if (t && t != ctx->tenant) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "claw: host \"%*s\" of another tenant in a "
                          "location of tenant \"%V\"", len, host, &ctx->id);
            return NGX_HTTP_MISDIRECTED_REQUEST;
        }
    }

#if (NGX_HTTP_SSL) && defined SSL_CTRL_SET_TLSEXT_HOSTNAME

    if (r->connection->ssl == NULL) {
        return NGX_OK;
    }

    sni = SSL_get_servername(r->connection->ssl->connection,
                             TLSEXT_NAMETYPE_host_name);
    if (sni == NULL) {
        return NGX_OK;
    }

    if (ngx_http_claw_host_canon((u_char *) sni, ngx_strlen(sni), host, &len)
        != NGX_HTTP_CLAW_HOST_NAME)
    {
        return NGX_OK;
    }

    /* the common case: the same name */

    if (len == r->headers_in.server.len
        && ngx_strncmp(host, r->headers_in.server.data, len) == 0)
    {
        return NGX_OK;
    }

    t = ngx_http_claw_ssl_tenant(cmcf, host, len);

    if (t == ctx->tenant) {
        return NGX_OK;
    }

    if (t == NULL) {
        hc = r->http_connection;

        if (clcf->tenant.len == 0
            || hc->ssl_servername == NULL
            || hc->conf_ctx->srv_conf == r->srv_conf)
        {
            return NGX_OK;
        }
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "claw: request of tenant \"%V\" on a TLS connection to "
                  "\"%*s\"", &ctx->id, len, host);

    return NGX_HTTP_MISDIRECTED_REQUEST;

#else

    return NGX_OK;

#endif
}


/* the tenant a name resolves to, by any claw_domain or custom domain */

static ngx_http_claw_tenant_t *
ngx_http_claw_ssl_tenant(ngx_http_claw_main_conf_t *cmcf, u_char *host,
    size_t len)
{
    ngx_str_t             *sfx;
    ngx_uint_t             i;
    ngx_http_claw_span_t   label;

    sfx = cmcf->suffixes.elts;

    for (i = 0; i < cmcf->suffixes.nelts; i++) {
        if (ngx_http_claw_host_label(host, len, sfx[i].data, sfx[i].len,
                                     &label))
        {
            return ngx_http_claw_tables_peek(&cmcf->tables, 0,
                                             (u_char *) label.data,
                                             label.len);
        }
    }

    return ngx_http_claw_tables_peek(&cmcf->tables, 1, host, len);
}


#if (NGX_HTTP_SSL)

/*
 * A name the platform's wildcard certificate is for: one label under a
 * claw_domain, or the claw_domain itself.  The certificate's name,
 * "*.<claw_domain>", is written to name.
 */

static ngx_uint_t
ngx_http_claw_ssl_wildcard(ngx_http_claw_srv_conf_t *cscf, u_char *host,
    size_t len, u_char *name, size_t *nlen)
{
    u_char      *dot;
    ngx_str_t   *sfx;
    ngx_uint_t   i, k;

    sfx = cscf->suffixes->elts;
    dot = ngx_strlchr(host, host + len, '.');

    /* the claw_domain itself first: it may also be a label of another */

    for (k = 0; k < 2; k++) {
        for (i = 0; i < cscf->suffixes->nelts; i++) {

            if (k == 0 ? (len == sfx[i].len
                          && ngx_memcmp(host, sfx[i].data, len) == 0)
                       : (dot && dot != host
                          && (size_t) (host + len - dot - 1) == sfx[i].len
                          && ngx_memcmp(dot + 1, sfx[i].data, sfx[i].len)
                             == 0))
            {
                name[0] = '*';
                name[1] = '.';
                ngx_memcpy(name + 2, sfx[i].data, sfx[i].len);
                *nlen = sfx[i].len + 2;

                return 1;
            }
        }
    }

    return 0;
}


/*
 * The handshake: a registered custom domain whose certificate the
 * worker has read gets it; every other name keeps the server's
 * certificate.  Nothing here touches the file system: names that no
 * tenant owns are not even looked up, the others only in the worker's
 * cache (domains.c), which tasks on the thread pool fill.
 */

static int
ngx_http_claw_ssl_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg)
{
    ngx_http_claw_srv_conf_t  *cscf = arg;

    size_t                    len;
    const char               *sni;
    unsigned int              alen;
    ngx_connection_t         *c;
    const unsigned char      *alpn;
    ngx_http_claw_keypair_t  *kp;
    u_char                    host[NGX_HTTP_CLAW_HOST_MAX];
    u_char                    wild[NGX_HTTP_CLAW_HOST_MAX + 2];

    c = ngx_ssl_get_connection(ssl_conn);

    /*
     * An ACME tls-alpn-01 validation (RFC 8737) has its challenge
     * certificate set by then, when ALPN was selected: it stays.
     */

    SSL_get0_alpn_selected(ssl_conn, &alpn, &alen);

    if (alen == sizeof("acme-tls/1") - 1
        && ngx_strncmp(alpn, "acme-tls/1", alen) == 0)
    {
        return 1;
    }

    sni = SSL_get_servername(ssl_conn, TLSEXT_NAMETYPE_host_name);
    if (sni == NULL) {
        return 1;
    }

    if (ngx_http_claw_host_canon((u_char *) sni, ngx_strlen(sni), host, &len)
        != NGX_HTTP_CLAW_HOST_NAME)
    {
        return 1;
    }

    if (ngx_http_claw_tables_peek(cscf->tables, 1, host, len) != NULL) {
        kp = ngx_http_claw_domains_cert(cscf->cache, host, len);

    } else if (ngx_http_claw_ssl_wildcard(cscf, host, len, wild, &len)) {
        kp = ngx_http_claw_domains_cert(cscf->cache, wild, len);

    } else {
        return 1;
    }

    if (kp == NULL) {
        return 1;
    }

    if (SSL_use_cert_and_key(ssl_conn, kp->cert, kp->key, kp->chain, 1)
        != 1)
    {
        ngx_ssl_error(NGX_LOG_ERR, c->log, 0,
                      "claw: SSL_use_cert_and_key(\"%*s\") failed", len,
                      host);
        return 1;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, c->log, 0,
                   "claw: certificate of \"%s\"", sni);

    return 1;
}

#endif


/*
 * Responses to a tenant's request: HSTS on TLS, and no cookie from the
 * container that could reach other tenants (a Domain above the
 * request's host, or the host when another tenant's domain lies under
 * it) or pose as the session (__Host-claw).
 */

ngx_int_t
ngx_http_claw_ssl_headers(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    ngx_http_claw_loc_conf_t *clcf)
{
    ngx_int_t         domain;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

#if (NGX_HTTP_SSL)

    if (clcf->hsts > 0 && r->connection->ssl) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->value.data = ngx_pnalloc(r->pool,
                                    sizeof("max-age=; includeSubDomains")
                                    + NGX_TIME_T_LEN);
        if (h->value.data == NULL) {
            h->hash = 0;
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Strict-Transport-Security");
        h->value.len = ngx_sprintf(h->value.data, "max-age=%T%s",
                                   clcf->hsts,
                                   clcf->hsts_subdomains
                                   ? "; includeSubDomains" : "")
                       - h->value.data;
    }

#endif

    if (r->upstream == NULL) {
        return NGX_OK;
    }

    /* whether the host may be a cookie's Domain: asked once, if at all */

    domain = NGX_CONF_UNSET;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0 || h[i].key.len != sizeof("Set-Cookie") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Set-Cookie",
                               sizeof("Set-Cookie") - 1)
               != 0
            || ngx_http_claw_cookie_allowed(r, ctx, &h[i].value, &domain))
        {
            continue;
        }

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "claw: Set-Cookie of tenant \"%V\" dropped: \"%V\"",
                      &ctx->id, &h[i].value);
        h[i].hash = 0;
    }

    return NGX_OK;
}


/*
 * A container's cookie may not be the session cookie's name nor be
 * scoped above the request's host, nor to the host when that covers
 * another tenant.  Names and attributes are read as browsers read them
 * (RFC 6265, 5.2): white space trimmed, attribute names in any case, a
 * leading dot of Domain ignored.
 */

static ngx_uint_t
ngx_http_claw_cookie_allowed(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    ngx_str_t *value, ngx_int_t *domain)
{
    u_char      *p, *end, *semi, *eq, *name, *nend, *v, *vend;
    ngx_uint_t   first;

    end = value->data + value->len;

    /* "name=value" first, then "attribute[=value]", separated by ';' */

    for (p = value->data, first = 1; p <= end; p = semi + 1, first = 0) {

        semi = ngx_strlchr(p, end, ';');
        if (semi == NULL) {
            semi = end;
        }

        eq = ngx_strlchr(p, semi, '=');

        name = p;
        nend = eq ? eq : semi;

        ngx_http_claw_trim(&name, &nend);

        if (first) {
            if ((size_t) (nend - name) == sizeof("__Host-claw") - 1
                && ngx_strncasecmp(name, (u_char *) "__Host-claw",
                                   sizeof("__Host-claw") - 1)
                   == 0)
            {
                return 0;
            }

            continue;
        }

        if ((size_t) (nend - name) != sizeof("domain") - 1
            || ngx_strncasecmp(name, (u_char *) "domain",
                               sizeof("domain") - 1)
               != 0)
        {
            continue;
        }

        v = eq ? eq + 1 : semi;
        vend = semi;

        ngx_http_claw_trim(&v, &vend);

        if (v < vend && *v == '.') {
            v++;
        }

        if (v == vend) {
            continue;       /* browsers ignore an empty Domain */
        }

        if ((size_t) (vend - v) != r->headers_in.server.len
            || ngx_strncasecmp(v, r->headers_in.server.data, vend - v) != 0)
        {
            return 0;
        }

        if (*domain == NGX_CONF_UNSET) {
            *domain = ngx_http_claw_cookie_domain(r, ctx);
        }

        if (!*domain) {
            return 0;
        }
    }

    return 1;
}


/*
 * A cookie whose Domain is the request's host reaches every name under
 * it too.  Nothing lies under "<id>.<claw_domain>" (the registry refuses
 * custom domains there): it is fine for the tenant of that id.  Any
 * other host must be a custom domain of the tenant under which no
 * domain of another tenant lies (example.com of one tenant, and
 * app.example.com of another), as the worker's index of the registry
 * says; while the index is behind the registry (at worker start, and
 * for a moment after a change) such cookies are dropped.
 */

static ngx_uint_t
ngx_http_claw_cookie_domain(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx)
{
    size_t                       len;
    ngx_int_t                    rc;
    ngx_str_t                   *sfx;
    ngx_uint_t                   i;
    ngx_http_claw_span_t         label;
    ngx_http_claw_main_conf_t   *cmcf;
    u_char                       host[NGX_HTTP_CLAW_HOST_MAX];

    if (ngx_http_claw_host_canon(r->headers_in.server.data,
                                 r->headers_in.server.len, host, &len)
        != NGX_HTTP_CLAW_HOST_NAME)
    {
        return 0;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    sfx = cmcf->suffixes.elts;

    for (i = 0; i < cmcf->suffixes.nelts; i++) {
        if (ngx_http_claw_host_label(host, len, sfx[i].data, sfx[i].len,
                                     &label))
        {
            return label.len == ctx->id.len
                   && ngx_memcmp(label.data, ctx->id.data, label.len) == 0;
        }
    }

    rc = ngx_http_claw_domains_owner(cmcf, host, len, &ctx->id);

    if (rc == NGX_AGAIN) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "claw: the custom domains are being indexed, no "
                      "cookie for \"%*s\" meanwhile", len, host);
    }

    return rc == NGX_OK;
}


static void
ngx_http_claw_trim(u_char **start, u_char **end)
{
    while (*start < *end && (**start == ' ' || **start == '\t')) {
        (*start)++;
    }

    while (*end > *start && ((*end)[-1] == ' ' || (*end)[-1] == '\t')) {
        (*end)--;
    }
}


char *
ngx_http_claw_hsts(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    ngx_str_t  *value;

    if (clcf->hsts != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts != 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        clcf->hsts = 0;
        return NGX_CONF_OK;
    }

    clcf->hsts = ngx_parse_time(&value[1], 1);

    if (clcf->hsts == (time_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid max-age \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strcmp(value[2].data, "includeSubDomains") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        clcf->hsts_subdomains = 1;
    }

    return NGX_CONF_OK;
}
