
/*
 * Copyright (C) ngx_claw_module authors
 *
 * What every worker does for ACME: answer the CA's validation requests,
 * http-01 on a location (claw_acme_http) and tls-alpn-01 in the TLS
 * handshake, from the challenges in the zone; and show the state of
 * every name (claw_acme_status).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_acme.h"


#define NGX_HTTP_CLAW_ACME_ALPN      "acme-tls/1"

/* what nginx offers itself (ngx_http_ssl_module.c) */
#define NGX_HTTP_CLAW_ALPN_PROTOS    "\x08http/1.1\x08http/1.0\x08http/0.9"
#define NGX_HTTP_CLAW_ALPN_H2        "\x02h2"

/* a challenge certificate and its key are a few hundred bytes */
#define NGX_HTTP_CLAW_ACME_DER_MAX   4096


typedef struct {
    u_char                       name[NGX_HTTP_CLAW_HOST_MAX];
    u_char                       tenant[NGX_HTTP_CLAW_ID_MAX];
    u_char                       error[NGX_HTTP_CLAW_ACME_ERROR_MAX];
    size_t                       name_len;
    size_t                       tenant_len;
    size_t                       error_len;
    time_t                       not_before;
    time_t                       not_after;
    time_t                       renew_at;
    time_t                       next_attempt;
    time_t                       checked;
    time_t                       last_order;
    ngx_uint_t                   failures;
    ngx_uint_t                   orders;
    unsigned                     busy:1;
    unsigned                     force:1;
    unsigned                     capped:1;
} ngx_http_claw_acme_row_t;


/* the names' part of the metrics page */
typedef struct {
    ngx_http_claw_acme_row_t    *rows;
    ngx_uint_t                   n;
    ngx_uint_t                   next;          /* the row to write */
    ngx_uint_t                   family;
    ngx_uint_t                   tenants;       /* a series per name */
    time_t                       now;
} ngx_http_claw_acme_metrics_t;


/* as the status shows them, and claw_certificates{state} counts them */
static const char  *ngx_http_claw_acme_states[] = {
    "valid", "due", "issuing", "none", "unknown"
};


static int ngx_http_claw_acme_alpn_select(ngx_ssl_conn_t *ssl_conn,
    const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg);
static ngx_int_t ngx_http_claw_acme_alpn_answer(
    ngx_http_claw_acme_main_conf_t *amcf, ngx_ssl_conn_t *ssl_conn,
    ngx_connection_t *c);
static ngx_int_t ngx_http_claw_acme_renew(ngx_http_request_t *r,
    ngx_http_claw_acme_main_conf_t *amcf);
static ngx_int_t ngx_http_claw_acme_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, u_char *data, size_t len);
static ngx_http_claw_acme_row_t *ngx_http_claw_acme_rows(ngx_pool_t *pool,
    ngx_http_claw_acme_main_conf_t *amcf, ngx_uint_t *n, ngx_pid_t *owner,
    ngx_uint_t *nchall);
static ngx_uint_t ngx_http_claw_acme_row_state(ngx_http_claw_acme_row_t *row,
    time_t now);


/*
 * http-01 (RFC 8555, 8.3): GET /.well-known/acme-challenge/<token> on
 * port 80 of the name answers the key authorization, on any worker.
 */

ngx_int_t
ngx_http_claw_acme_http_handler(ngx_http_request_t *r)
{
    u_char                          *token, *p, *keyauth;
    size_t                           len, klen;
    ngx_int_t                        rc;
    ngx_str_t                        type;
    ngx_queue_t                     *q;
    ngx_http_claw_acme_chall_t      *c;
    ngx_http_claw_acme_main_conf_t  *amcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_claw_acme_module);

    if (amcf->sh == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    /* the token is the last segment of the path, base64url */

    for (p = r->uri.data + r->uri.len; p > r->uri.data && p[-1] != '/'; p--)
    {
        if (!ngx_http_claw_acme_token_char(p[-1])) {
            return NGX_HTTP_NOT_FOUND;
        }
    }

    token = p;
    len = r->uri.data + r->uri.len - p;

    if (len == 0 || len > NGX_HTTP_CLAW_ACME_TOKEN_MAX) {
        return NGX_HTTP_NOT_FOUND;
    }

    keyauth = ngx_pnalloc(r->pool, 2 * NGX_HTTP_CLAW_ACME_TOKEN_MAX);
    if (keyauth == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    klen = 0;

    ngx_shmtx_lock(&amcf->shpool->mutex);

    for (q = ngx_queue_head(&amcf->sh->challenges);
         q != ngx_queue_sentinel(&amcf->sh->challenges);
         q = ngx_queue_next(q))
    {
        c = ngx_queue_data(q, ngx_http_claw_acme_chall_t, queue);

        if (c->type == NGX_HTTP_CLAW_ACME_HTTP_01
            && c->token_len == len
            && c->name_len == r->headers_in.server.len
            && ngx_memcmp(c->data + c->name_len, token, len) == 0
            && ngx_memcmp(c->data, r->headers_in.server.data, c->name_len)
               == 0)
        {
            klen = c->keyauth_len;
            ngx_memcpy(keyauth, c->data + c->name_len + c->token_len, klen);
            break;
        }
    }

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    if (klen == 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "claw_acme: no http-01 challenge \"%*s\" of \"%V\"",
                      len, token, &r->headers_in.server);
        return NGX_HTTP_NOT_FOUND;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "claw_acme: http-01 challenge of \"%V\" answered",
                  &r->headers_in.server);

    ngx_str_set(&type, "application/octet-stream");

    return ngx_http_claw_acme_send(r, NGX_HTTP_OK, &type, keyauth, klen);
}


/*
 * GET: every name the registry gives a tenant, with its certificate's
 * validity, when it renews, failures and back-off, as JSON.  POST with
 * ?renew=<name>: renew that name at once (its tenant's cap still
 * applies).
 */

ngx_int_t
ngx_http_claw_acme_status_handler(ngx_http_request_t *r)
{
    u_char                          *buf, *p;
    size_t                           size;
    time_t                           now;
    ngx_int_t                        rc;
    ngx_str_t                        type;
    ngx_pid_t                        owner;
    ngx_uint_t                       n, i, nchall;
    const char                      *state;
    ngx_http_claw_acme_row_t        *rows, *row;
    ngx_http_claw_loc_conf_t        *clcf;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_claw_acme_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_claw_module);

    rc = ngx_http_claw_operator_check(r, clcf->operator);
    if (rc != NGX_OK) {
        return rc;
    }

    if (amcf->sh == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    if (r->method == NGX_HTTP_POST) {
        return ngx_http_claw_acme_renew(r, amcf);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    rows = ngx_http_claw_acme_rows(r->pool, amcf, &n, &owner, &nchall);
    if (rows == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    size = sizeof("{\"owner\":,\"challenges\":,\"domains\":[]}\n")
           + 2 * NGX_INT_T_LEN;

    for (i = 0; i < n; i++) {
        size += sizeof("{\"domain\":\"\",\"tenant\":\"\","
                       "\"state\":\"issuing\",\"not_before\":,"
                       "\"not_after\":,\"renew_at\":,\"next_attempt\":,"
                       "\"last_order\":,\"failures\":,\"orders\":,"
                       "\"capped\":false,\"error\":\"\"},")
                + 7 * NGX_TIME_T_LEN
                + rows[i].name_len + rows[i].tenant_len
                + rows[i].error_len
                + ngx_escape_json(NULL, rows[i].error, rows[i].error_len);
    }

    buf = ngx_pnalloc(r->pool, size);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    now = ngx_time();

    p = ngx_sprintf(buf, "{\"owner\":%P,\"challenges\":%ui,\"domains\":[",
                    owner, nchall);

    for (i = 0; i < n; i++) {
        row = &rows[i];

        state = ngx_http_claw_acme_states[
                    ngx_http_claw_acme_row_state(row, now)];

        p = ngx_sprintf(p, "%s{\"domain\":\"%*s\",\"tenant\":\"%*s\","
                        "\"state\":\"%s\",\"not_before\":%T,"
                        "\"not_after\":%T,\"renew_at\":%T,"
                        "\"next_attempt\":%T,\"last_order\":%T,"
                        "\"failures\":%ui,\"orders\":%ui,\"capped\":%s,"
                        "\"error\":\"",
                        i ? "," : "", row->name_len, row->name,
                        row->tenant_len, row->tenant, state,
                        row->not_before, row->not_after, row->renew_at,
                        row->next_attempt, row->last_order, row->failures,
                        row->orders, row->capped ? "true" : "false");

        p = (u_char *) ngx_escape_json(p, row->error, row->error_len);

        *p++ = '"';
        *p++ = '}';
    }

    p = ngx_cpymem(p, "]}\n", 3);

    ngx_str_set(&type, "application/json");

    return ngx_http_claw_acme_send(r, NGX_HTTP_OK, &type, buf, p - buf);
}


static ngx_int_t
ngx_http_claw_acme_renew(ngx_http_request_t *r,
    ngx_http_claw_acme_main_conf_t *amcf)
{
    u_char                       *p;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_str_t                     arg, type;
    ngx_uint_t                    wild;
    ngx_http_claw_acme_domain_t  *rec;
    u_char                        name[NGX_HTTP_CLAW_HOST_MAX + 2];

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    /* a name, or "*.<name>" (claw_acme_wildcard's) */

    rc = ngx_http_arg(r, (u_char *) "renew", sizeof("renew") - 1, &arg);

    wild = (rc == NGX_OK && arg.len > 2 && arg.data[0] == '*'
            && arg.data[1] == '.') ? 2 : 0;

    if (rc != NGX_OK
        || ngx_http_claw_host_canon(arg.data + wild, arg.len - wild,
                                    name + wild, &len)
           != NGX_HTTP_CLAW_HOST_NAME
        || len + wild > NGX_HTTP_CLAW_HOST_MAX)
    {
        ngx_str_set(&type, "application/json");
        return ngx_http_claw_acme_send(r, NGX_HTTP_BAD_REQUEST, &type,
                   (u_char *) "{\"error\":\"expected ?renew=<name>\"}\n",
                   sizeof("{\"error\":\"expected ?renew=<name>\"}\n") - 1);
    }

    if (wild) {
        name[0] = '*';
        name[1] = '.';
        len += 2;
    }

    ngx_shmtx_lock(&amcf->shpool->mutex);

    rec = ngx_http_claw_acme_domain_locked(amcf->sh, name, len);

    if (rec) {
        rec->force = 1;
        rec->next_attempt = 0;
        rec->failures = 0;
    }

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    ngx_str_set(&type, "application/json");

    p = ngx_pnalloc(r->pool,
                    len + sizeof("{\"error\":\"no tenant has \\\"\\\"\"}\n"));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rec == NULL) {
        return ngx_http_claw_acme_send(r, NGX_HTTP_NOT_FOUND, &type, p,
                                       ngx_sprintf(p, "{\"error\":\"no tenant "
                                                   "has \\\"%*s\\\"\"}\n",
                                                   len, name)
                                       - p);
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "claw_acme: renewal of \"%*s\" asked for", len, name);

    return ngx_http_claw_acme_send(r, NGX_HTTP_ACCEPTED, &type, p,
                                   ngx_sprintf(p, "{\"renew\":\"%*s\"}\n",
                                               len, name)
                                   - p);
}


static ngx_int_t
ngx_http_claw_acme_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *data, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only || len == 0) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * Called when a server's configuration is merged, after the ssl module
 * made its SSL context: the TLS servers get an ALPN callback that also
 * knows acme-tls/1.
 */

char *
ngx_http_claw_acme_alpn_merge(ngx_conf_t *cf,
    ngx_http_claw_acme_main_conf_t *amcf)
{
    ngx_http_ssl_srv_conf_t   *sscf;
    ngx_http_claw_srv_conf_t  *cscf;

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    if (sscf == NULL || sscf->ssl.ctx == NULL) {
        return NGX_CONF_OK;
    }

    SSL_CTX_set_alpn_select_cb(sscf->ssl.ctx, ngx_http_claw_acme_alpn_select,
                               amcf);
    amcf->tls = 1;

    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_claw_module);

    if (cscf->certificates.len == amcf->certs.len
        && ngx_strncmp(cscf->certificates.data, amcf->certs.data,
                       amcf->certs.len)
           == 0)
    {
        amcf->served = 1;
    }

    return NGX_CONF_OK;
}


/*
 * nginx's own choice (ngx_http_ssl_alpn_select(), which refuses what it
 * does not know), and acme-tls/1 (RFC 8737) when the CA validates a
 * name with a challenge pending.  In TLSv1.3 this runs before the
 * certificate callback, which then leaves the challenge certificate
 * alone; in TLSv1.2 after it.
 */

static int
ngx_http_claw_acme_alpn_select(ngx_ssl_conn_t *ssl_conn,
    const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
    ngx_http_claw_acme_main_conf_t  *amcf = arg;

    unsigned int            i, srvlen;
    unsigned char          *srv;
    ngx_connection_t       *c;
#if (NGX_HTTP_V2)
    ngx_http_connection_t  *hc;
#endif

    c = ngx_ssl_get_connection(ssl_conn);

    for (i = 0; i + 1 < inlen; i += in[i] + 1) {

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "SSL ALPN supported by client: %*s",
                       (size_t) in[i], &in[i + 1]);

        if (in[i] == sizeof(NGX_HTTP_CLAW_ACME_ALPN) - 1
            && i + 1 + in[i] <= inlen
            && ngx_strncmp(&in[i + 1], NGX_HTTP_CLAW_ACME_ALPN,
                           sizeof(NGX_HTTP_CLAW_ACME_ALPN) - 1)
               == 0
            && ngx_http_claw_acme_alpn_answer(amcf, ssl_conn, c) == NGX_OK)
        {
            *out = (unsigned char *) NGX_HTTP_CLAW_ACME_ALPN;
            *outlen = sizeof(NGX_HTTP_CLAW_ACME_ALPN) - 1;
            return SSL_TLSEXT_ERR_OK;
        }
    }

#if (NGX_HTTP_V2)
    hc = c->data;

    if (hc->addr_conf->http2) {
        srv = (unsigned char *) NGX_HTTP_CLAW_ALPN_H2
                                NGX_HTTP_CLAW_ALPN_PROTOS;
        srvlen = sizeof(NGX_HTTP_CLAW_ALPN_H2 NGX_HTTP_CLAW_ALPN_PROTOS) - 1;

    } else
#endif
    {
        srv = (unsigned char *) NGX_HTTP_CLAW_ALPN_PROTOS;
        srvlen = sizeof(NGX_HTTP_CLAW_ALPN_PROTOS) - 1;
    }

    if (SSL_select_next_proto((unsigned char **) out, outlen, srv, srvlen,
                              in, inlen)
        != OPENSSL_NPN_NEGOTIATED)
    {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "SSL ALPN selected: %*s", (size_t) *outlen, *out);

    return SSL_TLSEXT_ERR_OK;
}


/*
 * The challenge certificate of the SNI's pending tls-alpn-01 challenge
 * becomes the connection's only certificate.  In TLSv1.2 (which
 * validators use) the callback runs after the certificate callback and
 * after the cipher, and with it the certificate's key type, was chosen:
 * the challenge certificate of that type takes the chosen one's place.
 */

static ngx_int_t
ngx_http_claw_acme_alpn_answer(ngx_http_claw_acme_main_conf_t *amcf,
    ngx_ssl_conn_t *ssl_conn, ngx_connection_t *c)
{
    X509                        *x, *current;
    size_t                       len, cert_len, key_len;
    time_t                       now;
    EVP_PKEY                    *key;
    ngx_uint_t                   i, t;
    const char                  *sni;
    ngx_queue_t                 *q;
    const u_char                *p;
    ngx_http_claw_acme_chall_t  *ch;
    u_char                       name[NGX_HTTP_CLAW_HOST_MAX];
    u_char                       der[2 * NGX_HTTP_CLAW_ACME_DER_MAX];

    sni = SSL_get_servername(ssl_conn, TLSEXT_NAMETYPE_host_name);

    if (sni == NULL
        || ngx_http_claw_host_canon((u_char *) sni, ngx_strlen(sni), name,
                                    &len)
           != NGX_HTTP_CLAW_HOST_NAME
        || amcf->sh == NULL)
    {
        return NGX_DECLINED;
    }

    /* the key type in use: the chosen one, or the last one set */

    current = SSL_get_certificate(ssl_conn);

    if (current == NULL) {
        t = NGX_HTTP_CLAW_ACME_EC;

    } else {
        switch (EVP_PKEY_base_id(X509_get0_pubkey(current))) {

        case EVP_PKEY_EC:
            t = NGX_HTTP_CLAW_ACME_EC;
            break;

        case EVP_PKEY_RSA:
            t = NGX_HTTP_CLAW_ACME_RSA;
            break;

        default:
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                          "claw_acme: tls-alpn-01 validation of \"%*s\" "
                          "needs an EC or RSA server certificate", len, name);
            return NGX_DECLINED;
        }
    }

    cert_len = 0;
    key_len = 0;
    now = ngx_time();

    ngx_shmtx_lock(&amcf->shpool->mutex);

    /* the newest pending one: a challenge left behind is older */

    for (q = ngx_queue_last(&amcf->sh->challenges);
         q != ngx_queue_sentinel(&amcf->sh->challenges);
         q = ngx_queue_prev(q))
    {
        ch = ngx_queue_data(q, ngx_http_claw_acme_chall_t, queue);

        if (ch->type != NGX_HTTP_CLAW_ACME_TLS_ALPN_01
            || ch->name_len != len
            || ch->expires < now
            || ngx_memcmp(ch->data, name, len) != 0)
        {
            continue;
        }

        p = ch->data + ch->name_len + ch->token_len + ch->keyauth_len;

        for (i = 0; i < t; i++) {
            p += ch->cert_len[i] + ch->key_len[i];
        }

        if (ch->cert_len[t] <= NGX_HTTP_CLAW_ACME_DER_MAX
            && ch->key_len[t] <= NGX_HTTP_CLAW_ACME_DER_MAX)
        {
            cert_len = ch->cert_len[t];
            key_len = ch->key_len[t];
            ngx_memcpy(der, p, cert_len + key_len);
        }

        break;
    }

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    if (cert_len == 0 || key_len == 0) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "claw_acme: acme-tls/1 for \"%*s\", no challenge "
                      "pending", len, name);
        return NGX_DECLINED;
    }

    p = der;
    x = d2i_X509(NULL, &p, (long) cert_len);

    p = der + cert_len;
    key = d2i_AutoPrivateKey(NULL, &p, (long) key_len);

    if (x == NULL || key == NULL) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0,
                      "claw_acme: challenge certificate of \"%*s\" "
                      "unreadable", len, name);
        goto failed;
    }

    /*
     * Nothing else may be offered: the server's own certificates, or the
     * name's, would compete for the signature in TLSv1.3.
     */

    SSL_certs_clear(ssl_conn);

    if (SSL_use_cert_and_key(ssl_conn, x, key, NULL, 1) != 1) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0,
                      "claw_acme: SSL_use_cert_and_key(\"%*s\") failed",
                      len, name);
        goto failed;
    }

    X509_free(x);
    EVP_PKEY_free(key);

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "claw_acme: tls-alpn-01 challenge of \"%*s\" answered "
                  "(%s, %s)", len, name, SSL_get_version(ssl_conn),
                  t == NGX_HTTP_CLAW_ACME_EC ? "EC" : "RSA");

    return NGX_OK;

failed:

    if (x) {
        X509_free(x);
    }

    if (key) {
        EVP_PKEY_free(key);
    }

    return NGX_DECLINED;
}


/* a copy of every name's record, sized first: no allocation under the lock */

static ngx_http_claw_acme_row_t *
ngx_http_claw_acme_rows(ngx_pool_t *pool, ngx_http_claw_acme_main_conf_t *amcf,
    ngx_uint_t *n, ngx_pid_t *owner, ngx_uint_t *nchall)
{
    ngx_uint_t                    cap;
    ngx_queue_t                  *q;
    ngx_http_claw_acme_row_t     *rows, *row;
    ngx_http_claw_acme_domain_t  *rec;

    ngx_shmtx_lock(&amcf->shpool->mutex);
    cap = amcf->sh->ndomains + 16;
    ngx_shmtx_unlock(&amcf->shpool->mutex);

    rows = ngx_palloc(pool, cap * sizeof(ngx_http_claw_acme_row_t));
    if (rows == NULL) {
        return NULL;
    }

    *n = 0;
    *nchall = 0;

    ngx_shmtx_lock(&amcf->shpool->mutex);

    *owner = amcf->sh->owner;

    for (q = ngx_queue_head(&amcf->sh->challenges);
         q != ngx_queue_sentinel(&amcf->sh->challenges);
         q = ngx_queue_next(q))
    {
        (*nchall)++;
    }

    for (q = ngx_queue_head(&amcf->sh->domain_queue);
         q != ngx_queue_sentinel(&amcf->sh->domain_queue) && *n < cap;
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_claw_acme_domain_t, queue);
        row = &rows[(*n)++];

        row->name_len = rec->sn.str.len;
        ngx_memcpy(row->name, rec->sn.str.data, row->name_len);
        row->tenant_len = rec->tenant_len;
        ngx_memcpy(row->tenant, rec->tenant, row->tenant_len);
        row->error_len = rec->error_len;
        ngx_memcpy(row->error, rec->error, row->error_len);
        row->not_before = rec->not_before;
        row->not_after = rec->not_after;
        row->renew_at = rec->renew_at;
        row->next_attempt = rec->next_attempt;
        row->checked = rec->checked;
        row->last_order = rec->last_order;
        row->failures = rec->failures;
        row->orders = rec->orders;
        row->busy = rec->busy ? 1 : 0;
        row->force = rec->force;
        row->capped = rec->capped;
    }

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    return rows;
}


/* an index into ngx_http_claw_acme_states */

static ngx_uint_t
ngx_http_claw_acme_row_state(ngx_http_claw_acme_row_t *row, time_t now)
{
    if (row->busy) {
        return 2;                                   /* issuing */
    }

    if (row->checked == 0) {
        return 4;                                   /* unknown */
    }

    if (row->not_after <= now) {
        return 3;                                   /* none */
    }

    if (row->force || now >= row->renew_at) {
        return 1;                                   /* due */
    }

    return 0;                                       /* valid */
}


/*
 * The names on the metrics page (claw_metrics, through the claw
 * module's metrics_start): how many are in each state, and per name its
 * certificate's expiry and its failed orders in a row; with tenants=off,
 * the earliest expiry and the most failures instead.
 */

void *
ngx_http_claw_acme_metrics_start(ngx_http_request_t *r, ngx_uint_t tenants)
{
    ngx_pid_t                        owner;
    ngx_uint_t                       nchall;
    ngx_http_claw_acme_metrics_t    *am;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_claw_acme_module);

    am = ngx_pcalloc(r->pool, sizeof(ngx_http_claw_acme_metrics_t));
    if (am == NULL) {
        return NULL;
    }

    am->tenants = tenants;
    am->now = ngx_time();

    if (amcf->sh) {
        am->rows = ngx_http_claw_acme_rows(r->pool, amcf, &am->n, &owner,
                                           &nchall);
        if (am->rows == NULL) {
            return NULL;
        }
    }

    return am;
}


#define NGX_HTTP_CLAW_ACME_HELP_STATES                                       \
    "# HELP claw_certificates Names the ACME client manages, by the state "  \
    "of their certificate.\n# TYPE claw_certificates gauge\n"

#define NGX_HTTP_CLAW_ACME_HELP_FAILURES                                     \
    "# HELP claw_certificate_failures Orders of a name that failed in a "    \
    "row%s.\n# TYPE claw_certificate_failures gauge\n"

/* the longest line: the expiry of a name, with both labels */
#define NGX_HTTP_CLAW_ACME_METRICS_LINE                                      \
    (sizeof("claw_certificate_expiry_timestamp_seconds{tenant=\"\","         \
            "domain=\"\"} \n")                                               \
     + NGX_HTTP_CLAW_ID_MAX + NGX_HTTP_CLAW_HOST_MAX + NGX_TIME_T_LEN)

ngx_uint_t
ngx_http_claw_acme_metrics_fill(void *data, ngx_buf_t *b)
{
    ngx_http_claw_acme_metrics_t  *am = data;

    u_char                    *p, *end;
    time_t                     earliest;
    ngx_uint_t                 i, count[5], most;
    ngx_http_claw_acme_row_t  *row;

    p = b->last;
    end = b->end;

    if (am->family == 0) {
        if ((size_t) (end - p) < 2048) {
            goto full;
        }

        ngx_memzero(count, sizeof(count));

        for (i = 0; i < am->n; i++) {
            count[ngx_http_claw_acme_row_state(&am->rows[i], am->now)]++;
        }

        p = ngx_cpymem(p, NGX_HTTP_CLAW_ACME_HELP_STATES,
                       sizeof(NGX_HTTP_CLAW_ACME_HELP_STATES) - 1);

        for (i = 0; i < 5; i++) {
            p = ngx_sprintf(p, "claw_certificates{state=\"%s\"} %ui\n",
                            ngx_http_claw_acme_states[i], count[i]);
        }

        p = ngx_sprintf(p,
            "# HELP claw_certificate_expiry_timestamp_seconds When a name's "
            "certificate expires, Unix time (%s).\n"
            "# TYPE claw_certificate_expiry_timestamp_seconds gauge\n",
            am->tenants ? "in the past once expired; names never issued "
                          "one are left out"
                        : "the earliest of all names");

        if (!am->tenants) {

            /* tenants=off: a series each, the most urgent name's */

            earliest = 0;
            most = 0;

            for (i = 0; i < am->n; i++) {
                row = &am->rows[i];

                if (row->not_after
                    && (earliest == 0 || row->not_after < earliest))
                {
                    earliest = row->not_after;
                }

                most = ngx_max(most, row->failures);
            }

            if (earliest) {
                p = ngx_sprintf(p, "claw_certificate_expiry_timestamp_seconds"
                                " %T\n", earliest);
            }

            p = ngx_sprintf(p, NGX_HTTP_CLAW_ACME_HELP_FAILURES
                            "claw_certificate_failures %ui\n",
                            " (the most of all names)", most);

            b->last = p;

            return 1;
        }

        am->family = 1;
    }

    /* 1: the expiries, 2: the failures' help, 3: the failures */

    while (am->family < 4) {

        if (am->family == 2) {
            if ((size_t) (end - p) < 256) {
                goto full;
            }

            p = ngx_sprintf(p, NGX_HTTP_CLAW_ACME_HELP_FAILURES, "");
            am->family = 3;
        }

        for ( /* void */ ; am->next < am->n; am->next++) {

            if ((size_t) (end - p) < NGX_HTTP_CLAW_ACME_METRICS_LINE) {
                goto full;
            }

            row = &am->rows[am->next];

            if (am->family == 1) {

                /* an expired one too: the alerts go on firing */

                if (row->not_after) {
                    p = ngx_sprintf(p, "claw_certificate_expiry_timestamp_"
                                    "seconds{tenant=\"%*s\",domain=\"%*s\"} "
                                    "%T\n", row->tenant_len, row->tenant,
                                    row->name_len, row->name, row->not_after);
                }

                continue;
            }

            p = ngx_sprintf(p, "claw_certificate_failures{tenant=\"%*s\","
                            "domain=\"%*s\"} %ui\n", row->tenant_len,
                            row->tenant, row->name_len, row->name,
                            row->failures);
        }

        am->family++;
        am->next = 0;
    }

    b->last = p;

    return 1;

full:

    b->last = p;

    return 0;
}
