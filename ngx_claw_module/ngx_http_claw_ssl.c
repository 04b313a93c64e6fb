
/*
 * Copyright (C) ngx_claw_module authors
 *
 * TLS for tenants: the certificate of a custom domain chosen by SNI
 * during the handshake (claw_certificates), the binding of a TLS
 * connection to the tenant its SNI names (421 for a request of another
 * tenant), HSTS, and the container cookies that must not reach a browser.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_ssl.h"


#if (NGX_HTTP_SSL)

/*
 * How often a cached certificate's files are looked at again; sooner
 * while there is none, so one just issued (say by claw_acme, whose
 * tls-alpn-01 validation makes workers look before it exists) is served
 * within a second.
 */
#define NGX_HTTP_CLAW_CERT_CHECK     10
#define NGX_HTTP_CLAW_CERT_RECHECK   1

typedef struct ngx_http_claw_cert_s  ngx_http_claw_cert_t;

/*
 * A custom domain's certificate, parsed once per worker: handshakes only
 * take references.  A failed load is remembered too (cert NULL), so a
 * bad pair is logged once per change of its files, not per handshake.
 */

struct ngx_http_claw_cert_s {
    ngx_http_claw_cert_t        *next;
    X509                        *cert;
    EVP_PKEY                    *key;
    STACK_OF(X509)              *chain;
    time_t                       checked;
    time_t                       crt_mtime;
    time_t                       key_mtime;
    size_t                       len;
    u_char                       name[1];
};


#define NGX_HTTP_CLAW_CERT_BUCKETS  256

typedef struct {
    ngx_http_claw_cert_t        *buckets[NGX_HTTP_CLAW_CERT_BUCKETS];
} ngx_http_claw_cert_cache_t;


static int ngx_http_claw_ssl_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg);
static ngx_http_claw_cert_t *ngx_http_claw_cert_get(
    ngx_http_claw_srv_conf_t *cscf, u_char *name, size_t len, ngx_log_t *log);
static void ngx_http_claw_cert_load(ngx_http_claw_srv_conf_t *cscf,
    ngx_http_claw_cert_t *cc, time_t crt_mtime, time_t key_mtime,
    ngx_log_t *log);
static void ngx_http_claw_cert_free(ngx_http_claw_cert_t *cc);
static void ngx_http_claw_ssl_cache_cleanup(void *data);
static ngx_http_claw_tenant_t *ngx_http_claw_ssl_tenant(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, u_char *host, size_t len);

#endif

static ngx_uint_t ngx_http_claw_cookie_allowed(ngx_http_request_t *r,
    ngx_str_t *value);
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
 * On a TLS connection whose SNI names a tenant, a request of another
 * tenant is misdirected: browsers then open a connection of its own for
 * it, and HTTP/2 connection coalescing under a wildcard keeps working.
 */

ngx_int_t
ngx_http_claw_ssl_sni_check(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx)
{
#if (NGX_HTTP_SSL) && defined SSL_CTRL_SET_TLSEXT_HOSTNAME
    size_t                   len;
    const char              *sni;
    ngx_http_claw_tenant_t  *t;
    u_char                   host[NGX_HTTP_CLAW_HOST_MAX];

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
        && ngx_strncmp(host, r->headers_in.server.data, len) == 0
        && clcf->tenant.len == 0)
    {
        return NGX_OK;
    }

    t = ngx_http_claw_ssl_tenant(r, clcf, host, len);

    if (t == NULL || t == ctx->tenant) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "claw: request of tenant \"%V\" on a TLS connection to "
                  "\"%*s\"", &ctx->id, len, host);

    return NGX_HTTP_MISDIRECTED_REQUEST;

#else

    return NGX_OK;

#endif
}


#if (NGX_HTTP_SSL)

/* the tenant a name resolves to, by claw_domain or custom domain */

static ngx_http_claw_tenant_t *
ngx_http_claw_ssl_tenant(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, u_char *host, size_t len)
{
    ngx_str_t             *sfx;
    ngx_uint_t             i;
    ngx_http_claw_span_t   label;
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);

    if (clcf->domains) {
        sfx = clcf->domains->elts;

        for (i = 0; i < clcf->domains->nelts; i++) {
            if (ngx_http_claw_host_label(host, len, sfx[i].data, sfx[i].len,
                                         &label))
            {
                return ngx_http_claw_tables_peek(&cmcf->tables, 0,
                                                   (u_char *) label.data,
                                                   label.len);
            }
        }
    }

    return ngx_http_claw_tables_peek(&cmcf->tables, 1, host, len);
}


/*
 * The handshake: a registered custom domain with a certificate in the
 * directory gets it; every other name keeps the server's certificate.
 * Names that no tenant owns never touch the file system.
 */

static int
ngx_http_claw_ssl_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg)
{
    ngx_http_claw_srv_conf_t  *cscf = arg;

    size_t                 len;
    const char            *sni;
    unsigned int           alen;
    ngx_connection_t      *c;
    const unsigned char   *alpn;
    ngx_http_claw_cert_t  *cc;
    u_char                 host[NGX_HTTP_CLAW_HOST_MAX];

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

    if (ngx_http_claw_tables_peek(cscf->tables, 1, host, len) == NULL) {
        return 1;
    }

    cc = ngx_http_claw_cert_get(cscf, host, len, c->log);

    if (cc == NULL || cc->cert == NULL) {
        return 1;
    }

    if (SSL_use_cert_and_key(ssl_conn, cc->cert, cc->key, cc->chain, 1)
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


static ngx_http_claw_cert_t *
ngx_http_claw_cert_get(ngx_http_claw_srv_conf_t *cscf, u_char *name,
    size_t len, ngx_log_t *log)
{
    u_char                      *p;
    time_t                       now, crt_mtime, key_mtime;
    ngx_uint_t                   b;
    ngx_file_info_t              fi;
    ngx_http_claw_cert_t        *cc;
    ngx_pool_cleanup_t          *cln;
    ngx_http_claw_cert_cache_t  *cache;
    u_char                       path[NGX_MAX_PATH];

    cache = cscf->cache;

    if (cache == NULL) {

        /* the worker's own, freed with its cycle (at exit) */

        cln = ngx_pool_cleanup_add(ngx_cycle->pool, 0);
        if (cln == NULL) {
            return NULL;
        }

        cache = ngx_calloc(sizeof(ngx_http_claw_cert_cache_t), log);
        if (cache == NULL) {
            return NULL;
        }

        cscf->cache = cache;
        cln->handler = ngx_http_claw_ssl_cache_cleanup;
        cln->data = cscf;
    }

    b = ngx_hash_key(name, len) % NGX_HTTP_CLAW_CERT_BUCKETS;

    for (cc = cache->buckets[b]; cc; cc = cc->next) {
        if (cc->len == len && ngx_memcmp(cc->name, name, len) == 0) {
            break;
        }
    }

    now = ngx_time();

    if (cc && now - cc->checked < (cc->cert ? NGX_HTTP_CLAW_CERT_CHECK
                                            : NGX_HTTP_CLAW_CERT_RECHECK))
    {
        return cc;
    }

    /* new, or time to see whether its files changed */

    if (cscf->certificates.len + len + sizeof("/.crt") > NGX_MAX_PATH) {
        return NULL;
    }

    p = ngx_sprintf(path, "%V/%*s.crt%Z", &cscf->certificates, len, name);

    crt_mtime = (ngx_file_info(path, &fi) == NGX_FILE_ERROR)
                ? -1 : ngx_file_mtime(&fi);

    ngx_sprintf(p - sizeof("crt"), "key%Z");

    key_mtime = (ngx_file_info(path, &fi) == NGX_FILE_ERROR)
                ? -1 : ngx_file_mtime(&fi);

    if (cc == NULL) {
        cc = ngx_calloc(offsetof(ngx_http_claw_cert_t, name) + len, log);
        if (cc == NULL) {
            return NULL;
        }

        cc->len = len;
        ngx_memcpy(cc->name, name, len);
        cc->crt_mtime = -2;
        cc->next = cache->buckets[b];
        cache->buckets[b] = cc;
    }

    cc->checked = now;

    if (crt_mtime != cc->crt_mtime || key_mtime != cc->key_mtime) {
        ngx_http_claw_cert_load(cscf, cc, crt_mtime, key_mtime, log);
    }

    return cc;
}


static void
ngx_http_claw_cert_load(ngx_http_claw_srv_conf_t *cscf,
    ngx_http_claw_cert_t *cc, time_t crt_mtime, time_t key_mtime,
    ngx_log_t *log)
{
    X509            *x;
    BIO             *bio;
    EVP_PKEY        *key;
    STACK_OF(X509)  *chain;
    u_char           crt[NGX_MAX_PATH], keyp[NGX_MAX_PATH];

    ngx_http_claw_cert_free(cc);

    cc->crt_mtime = crt_mtime;
    cc->key_mtime = key_mtime;

    if (crt_mtime == -1 && key_mtime == -1) {
        /* no certificate of its own: the server's covers it, or not */
        return;
    }

    ngx_sprintf(crt, "%V/%*s.crt%Z", &cscf->certificates, cc->len, cc->name);
    ngx_sprintf(keyp, "%V/%*s.key%Z", &cscf->certificates, cc->len,
                cc->name);

    key = NULL;
    x = NULL;
    chain = NULL;

    bio = BIO_new_file((char *) crt, "r");
    if (bio == NULL) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "claw: BIO_new_file(\"%s\") failed", crt);
        return;
    }

    x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);

    if (x == NULL) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "claw: no certificate in \"%s\", not served", crt);
        BIO_free(bio);
        return;
    }

    /* the rest of the file is the chain */

    chain = sk_X509_new_null();
    if (chain == NULL) {
        goto failed;
    }

    for ( ;; ) {
        X509  *ca;

        ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (ca == NULL) {
            ERR_clear_error();
            break;
        }

        if (sk_X509_push(chain, ca) == 0) {
            X509_free(ca);
            goto failed;
        }
    }

    BIO_free(bio);
    bio = BIO_new_file((char *) keyp, "r");

    if (bio == NULL) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "claw: BIO_new_file(\"%s\") failed, certificate of "
                      "\"%*s\" not served", keyp, cc->len, cc->name);
        goto failed;
    }

    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);

    if (key == NULL) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "claw: no key in \"%s\", certificate of \"%*s\" not "
                      "served", keyp, cc->len, cc->name);
        goto failed;
    }

    if (X509_check_private_key(x, key) != 1) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "claw: certificate and key of \"%*s\" do not match, "
                      "not served", cc->len, cc->name);
        goto failed;
    }

    if (X509_check_host(x, (char *) cc->name, cc->len, 0, NULL) != 1) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "claw: certificate \"%s\" is not for \"%*s\", not "
                      "served", crt, cc->len, cc->name);
        goto failed;
    }

    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "claw: certificate \"%s\" has expired", crt);
    }

    BIO_free(bio);

    cc->cert = x;
    cc->key = key;
    cc->chain = chain;

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "claw: certificate of \"%*s\" loaded", cc->len, cc->name);

    return;

failed:

    if (bio) {
        BIO_free(bio);
    }

    if (key) {
        EVP_PKEY_free(key);
    }

    if (chain) {
        sk_X509_pop_free(chain, X509_free);
    }

    X509_free(x);
}


static void
ngx_http_claw_cert_free(ngx_http_claw_cert_t *cc)
{
    if (cc->cert) {
        X509_free(cc->cert);
        EVP_PKEY_free(cc->key);
        sk_X509_pop_free(cc->chain, X509_free);
    }

    cc->cert = NULL;
    cc->key = NULL;
    cc->chain = NULL;
}


static void
ngx_http_claw_ssl_cache_cleanup(void *data)
{
    ngx_http_claw_srv_conf_t  *cscf = data;

    ngx_uint_t                   b;
    ngx_http_claw_cert_t        *cc, *next;
    ngx_http_claw_cert_cache_t  *cache;

    cache = cscf->cache;

    if (cache == NULL) {
        return;
    }

    for (b = 0; b < NGX_HTTP_CLAW_CERT_BUCKETS; b++) {
        for (cc = cache->buckets[b]; cc; cc = next) {
            next = cc->next;
            ngx_http_claw_cert_free(cc);
            ngx_free(cc);
        }
    }

    ngx_free(cache);
    cscf->cache = NULL;
}

#endif


/*
 * Responses to a tenant's request: HSTS on TLS, and no cookie from the
 * container that could reach other tenants (a Domain above the
 * request's host) or pose as the session (__Host-claw).
 */

ngx_int_t
ngx_http_claw_ssl_headers(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    ngx_http_claw_loc_conf_t *clcf)
{
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
            || ngx_http_claw_cookie_allowed(r, &h[i].value))
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
 * scoped above the request's host.  Names and attributes are read as
 * browsers read them (RFC 6265, 5.2): white space trimmed, attribute
 * names in any case, a leading dot of Domain ignored.
 */

static ngx_uint_t
ngx_http_claw_cookie_allowed(ngx_http_request_t *r, ngx_str_t *value)
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
    }

    return 1;
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
