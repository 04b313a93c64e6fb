
/*
 * Copyright (C) ngx_claw_module authors
 *
 * The ACME protocol (RFC 8555), run on nginx's thread pool: blocking
 * HTTPS with libcurl, never on an event loop.  A job's thread has the
 * job and its pool to itself while a phase runs; the zone, the registry
 * and the configuration are left to the event loop, except for reading
 * the configuration, which does not change under a running worker.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ngx_http_claw_token.h"
#include "ngx_http_claw_acme.h"


/* a phase, polling included, ends by then */
#define NGX_HTTP_CLAW_ACME_PHASE_TIME   120

/* badNonce answers in a row before giving up (RFC 8555, 6.5) */
#define NGX_HTTP_CLAW_ACME_NONCE_TRIES  16

#define NGX_HTTP_CLAW_ACME_NONCE_MAX    256
#define NGX_HTTP_CLAW_ACME_URL_MAX      2048
#define NGX_HTTP_CLAW_ACME_BODY_MAX     (1024 * 1024)

#define NGX_HTTP_CLAW_ACME_GET          0
#define NGX_HTTP_CLAW_ACME_HEAD         1
#define NGX_HTTP_CLAW_ACME_POST         2
#define NGX_HTTP_CLAW_ACME_POST_PEM     3

#define NGX_HTTP_CLAW_ACME_ERR          "urn:ietf:params:acme:error:"


typedef struct {
    CURL                        *curl;
    struct curl_slist           *jose;
    struct curl_slist           *pem;

    u_char                      *body;
    size_t                       len;
    size_t                       size;

    long                         status;
    time_t                       retry_after;
    char                         nonce[NGX_HTTP_CLAW_ACME_NONCE_MAX];
    char                         location[NGX_HTTP_CLAW_ACME_URL_MAX];
    char                         type[64];
    char                         error[CURL_ERROR_SIZE];
} ngx_http_claw_acme_http_t;


static ngx_int_t ngx_http_claw_acme_order(ngx_http_claw_acme_job_t *job);
static ngx_int_t ngx_http_claw_acme_finish(ngx_http_claw_acme_job_t *job);
static ngx_int_t ngx_http_claw_acme_directory(ngx_http_claw_acme_job_t *job);
static ngx_int_t ngx_http_claw_acme_account(ngx_http_claw_acme_job_t *job);
static ngx_int_t ngx_http_claw_acme_new_order(ngx_http_claw_acme_job_t *job,
    json_t **order);
static ngx_int_t ngx_http_claw_acme_authorization(
    ngx_http_claw_acme_job_t *job, char *url);
static ngx_int_t ngx_http_claw_acme_validate(ngx_http_claw_acme_job_t *job);
static ngx_int_t ngx_http_claw_acme_validate_dns(
    ngx_http_claw_acme_job_t *job);
static json_t *ngx_http_claw_acme_poll(ngx_http_claw_acme_job_t *job,
    const char *url, const char *what, const char *until);
static ngx_int_t ngx_http_claw_acme_finalize(ngx_http_claw_acme_job_t *job,
    EVP_PKEY *key);
static ngx_int_t ngx_http_claw_acme_store(ngx_http_claw_acme_job_t *job,
    EVP_PKEY *key);
static ngx_int_t ngx_http_claw_acme_keep(ngx_http_claw_acme_job_t *job,
    EVP_PKEY *key, u_char *pem, size_t len);

static ngx_int_t ngx_http_claw_acme_post(ngx_http_claw_acme_job_t *job,
    const char *url, const char *payload, ngx_uint_t how, ngx_uint_t jwk);
static ngx_int_t ngx_http_claw_acme_nonce(ngx_http_claw_acme_job_t *job);
static ngx_int_t ngx_http_claw_acme_request(ngx_http_claw_acme_job_t *job,
    const char *url, const char *body, size_t len, ngx_uint_t how);
static json_t *ngx_http_claw_acme_answer(ngx_http_claw_acme_job_t *job,
    const char *what, long ok1, long ok2);
static ngx_int_t ngx_http_claw_acme_wait(ngx_http_claw_acme_job_t *job,
    time_t seconds);
static ngx_uint_t ngx_http_claw_acme_stopped(void);
static char *ngx_http_claw_acme_dup(ngx_http_claw_acme_job_t *job,
    const char *s);
static const char *ngx_http_claw_acme_str(json_t *obj, const char *key);
static ngx_int_t ngx_http_claw_acme_fail(ngx_http_claw_acme_job_t *job,
    const char *fmt, ...);

static size_t ngx_http_claw_acme_body(char *ptr, size_t size, size_t n,
    void *data);
static size_t ngx_http_claw_acme_header(char *ptr, size_t size, size_t n,
    void *data);
static int ngx_http_claw_acme_progress(void *data, curl_off_t dltotal,
    curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);


ngx_int_t
ngx_http_claw_acme_client_init(ngx_log_t *log)
{
    CURLcode  rc;

    /* before any task runs: curl_global_init() is not thread-safe */

    rc = curl_global_init(CURL_GLOBAL_DEFAULT);

    if (rc != CURLE_OK) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "claw_acme: curl_global_init() failed: %s",
                      curl_easy_strerror(rc));
        return NGX_ERROR;
    }

    /* jansson seeds its hash function on first use: here, not racing */

    json_object_seed(0);

    return NGX_OK;
}


/* the first phase: the order, and the challenge to answer, if any */

void
ngx_http_claw_acme_order_thread(void *data, ngx_log_t *log)
{
    ngx_http_claw_acme_job_t  *job = data;

    job->deadline = time(NULL) + NGX_HTTP_CLAW_ACME_PHASE_TIME;
    job->rc = ngx_http_claw_acme_order(job);

    ERR_clear_error();
}


/* the second: validation, finalisation, the certificate in its files */

void
ngx_http_claw_acme_finish_thread(void *data, ngx_log_t *log)
{
    ngx_http_claw_acme_job_t  *job = data;

    job->deadline = time(NULL) + NGX_HTTP_CLAW_ACME_PHASE_TIME;
    job->rc = ngx_http_claw_acme_finish(job);

    ERR_clear_error();
}


void
ngx_http_claw_acme_job_free(void *data)
{
    ngx_http_claw_acme_job_t  *job = data;

    ngx_http_claw_acme_http_t  *h;

    h = job->http;

    if (h) {
        if (h->curl) {
            curl_easy_cleanup(h->curl);
        }

        curl_slist_free_all(h->jose);
        curl_slist_free_all(h->pem);
        free(h->body);
        free(h);
    }

    if (job->account_key) {
        EVP_PKEY_free(job->account_key);
    }

    OPENSSL_free(job->cert_der[0]);
    OPENSSL_free(job->key_der[0]);
    OPENSSL_free(job->cert_der[1]);
    OPENSSL_free(job->key_der[1]);
}


static ngx_int_t
ngx_http_claw_acme_order(ngx_http_claw_acme_job_t *job)
{
    char         *url[NGX_HTTP_CLAW_ACME_AUTHZ_MAX];
    json_t       *order, *authz, *authzs;
    size_t        n;
    ngx_int_t     rc;
    ngx_uint_t    i;
    const char   *status;

    if (ngx_http_claw_acme_directory(job) != NGX_OK) {
        return NGX_ERROR;
    }

    order = NULL;
    rc = NGX_ERROR;

    for (i = 0; i < 2; i++) {

        if (job->kid == NULL && ngx_http_claw_acme_account(job) != NGX_OK) {
            return NGX_ERROR;
        }

        rc = ngx_http_claw_acme_new_order(job, &order);

        /* an account the CA forgot (a new CA behind the URL) is made anew */

        if (rc == NGX_DECLINED && i == 0) {
            job->kid = NULL;
            job->error_len = 0;
            continue;
        }

        break;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    status = ngx_http_claw_acme_str(order, "status");
    authzs = json_object_get(order, "authorizations");
    n = json_array_size(authzs);

    job->order_url = ngx_http_claw_acme_dup(job,
                                  ((ngx_http_claw_acme_http_t *) job->http)
                                  ->location);
    job->finalize_url = ngx_http_claw_acme_dup(job,
                                  ngx_http_claw_acme_str(order, "finalize"));

    if (status == NULL || job->order_url == NULL
        || job->finalize_url == NULL || n > NGX_HTTP_CLAW_ACME_AUTHZ_MAX)
    {
        json_decref(order);
        return ngx_http_claw_acme_fail(job, "new order: malformed order");
    }

    if (ngx_strcmp(status, "pending") != 0) {

        /* "ready" or later: the CA knows the name is ours already */

        rc = (ngx_strcmp(status, "invalid") == 0)
             ? ngx_http_claw_acme_fail(job, "new order: order is invalid")
             : NGX_OK;

        json_decref(order);
        return rc;
    }

    for (i = 0; i < n; i++) {
        authz = json_array_get(authzs, i);
        url[i] = ngx_http_claw_acme_dup(job, json_is_string(authz)
                                             ? json_string_value(authz)
                                             : NULL);
        if (url[i] == NULL) {
            json_decref(order);
            return ngx_http_claw_acme_fail(job, "new order: malformed "
                                           "authorization");
        }
    }

    json_decref(order);

    if (n == 0) {
        return ngx_http_claw_acme_fail(job, "new order: no authorization");
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_claw_acme_authorization(job, url[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_acme_directory(ngx_http_claw_acme_job_t *job)
{
    char    *url;
    json_t  *dir;

    url = (char *) job->amcf->directory.data;

    /* the directory string is NUL-terminated by the configuration parser */

    if (ngx_http_claw_acme_request(job, url, NULL, 0, NGX_HTTP_CLAW_ACME_GET)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    dir = ngx_http_claw_acme_answer(job, "directory", 200, 200);
    if (dir == NULL) {
        return NGX_ERROR;
    }

    job->new_nonce = ngx_http_claw_acme_dup(job,
                                   ngx_http_claw_acme_str(dir, "newNonce"));
    job->new_account = ngx_http_claw_acme_dup(job,
                                   ngx_http_claw_acme_str(dir, "newAccount"));
    job->new_order = ngx_http_claw_acme_dup(job,
                                   ngx_http_claw_acme_str(dir, "newOrder"));

    json_decref(dir);

    if (job->new_nonce == NULL || job->new_account == NULL
        || job->new_order == NULL)
    {
        return ngx_http_claw_acme_fail(job, "directory of \"%s\" lacks "
                                       "newNonce, newAccount or newOrder",
                                       url);
    }

    return NGX_OK;
}


/*
 * newAccount with the key's JWK: a new account, or (200) the one the
 * key has already.  Registering means agreeing to the CA's terms, which
 * configuring claw_acme does.
 */

static ngx_int_t
ngx_http_claw_acme_account(ngx_http_claw_acme_job_t *job)
{
    char                       *payload;
    json_t                     *req, *acct;
    ngx_http_claw_acme_http_t  *h;

    req = json_pack("{s:b}", "termsOfServiceAgreed", 1);
    if (req == NULL) {
        return ngx_http_claw_acme_fail(job, "new account: out of memory");
    }

    if (job->amcf->email.len) {
        (void) json_object_set_new(req, "contact",
                                   json_pack("[s+#]", "mailto:",
                                             job->amcf->email.data,
                                             (int) job->amcf->email.len));
    }

    payload = json_dumps(req, JSON_COMPACT);
    json_decref(req);

    if (payload == NULL) {
        return ngx_http_claw_acme_fail(job, "new account: out of memory");
    }

    if (ngx_http_claw_acme_post(job, job->new_account, payload,
                                NGX_HTTP_CLAW_ACME_POST, 1)
        != NGX_OK)
    {
        free(payload);
        return NGX_ERROR;
    }

    free(payload);

    acct = ngx_http_claw_acme_answer(job, "new account", 200, 201);
    if (acct == NULL) {
        return NGX_ERROR;
    }

    h = job->http;

    if (h->location[0] == '\0'
        || ngx_strcmp(ngx_http_claw_acme_str(acct, "status")
                      ? ngx_http_claw_acme_str(acct, "status") : "",
                      "valid")
           != 0)
    {
        json_decref(acct);
        return ngx_http_claw_acme_fail(job, "new account: no valid account");
    }

    json_decref(acct);

    job->kid = ngx_http_claw_acme_dup(job, h->location);
    if (job->kid == NULL) {
        return ngx_http_claw_acme_fail(job, "new account: out of memory");
    }

    job->new_kid = 1;

    ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                  "claw_acme: account \"%s\"", job->kid);

    return NGX_OK;
}


/* NGX_DECLINED: the CA does not know the account */

static ngx_int_t
ngx_http_claw_acme_new_order(ngx_http_claw_acme_job_t *job, json_t **order)
{
    char    *payload;
    json_t  *req;

    /* "*.<domain>" and <domain>: one certificate serves both */

    if (ngx_http_claw_acme_wildcard(job->domain)) {
        req = json_pack("{s:[{s:s,s:s},{s:s,s:s}]}", "identifiers",
                        "type", "dns", "value", job->domain,
                        "type", "dns", "value", job->domain + 2);

    } else {
        req = json_pack("{s:[{s:s,s:s}]}", "identifiers", "type", "dns",
                        "value", job->domain);
    }
    if (req == NULL) {
        return ngx_http_claw_acme_fail(job, "new order: out of memory");
    }

    payload = json_dumps(req, JSON_COMPACT);
    json_decref(req);

    if (payload == NULL) {
        return ngx_http_claw_acme_fail(job, "new order: out of memory");
    }

    if (ngx_http_claw_acme_post(job, job->new_order, payload,
                                NGX_HTTP_CLAW_ACME_POST, 0)
        != NGX_OK)
    {
        free(payload);
        return NGX_ERROR;
    }

    free(payload);

    *order = ngx_http_claw_acme_answer(job, "new order", 201, 201);

    if (*order == NULL) {
        return job->account_gone ? NGX_DECLINED : NGX_ERROR;
    }

    if (((ngx_http_claw_acme_http_t *) job->http)->location[0] == '\0') {
        json_decref(*order);
        return ngx_http_claw_acme_fail(job, "new order: no order URL");
    }

    return NGX_OK;
}


/*
 * An authorization of the order: valid already (a recent validation the
 * CA reuses), or pending with a challenge of the name's type, whose key
 * authorization (RFC 8555, 8.1) is then prepared: for the workers
 * (http-01, tls-alpn-01), or as the digest a TXT record carries
 * (dns-01, 8.4).
 */

static ngx_int_t
ngx_http_claw_acme_authorization(ngx_http_claw_acme_job_t *job, char *url)
{
    size_t         i, n, len;
    json_t        *authz, *challs, *ch;
    ngx_uint_t     k;
    const char    *status, *type, *want, *token, *churl;

    if (ngx_http_claw_acme_post(job, url, "", NGX_HTTP_CLAW_ACME_POST, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    authz = ngx_http_claw_acme_answer(job, "authorization", 200, 200);
    if (authz == NULL) {
        return NGX_ERROR;
    }

    status = ngx_http_claw_acme_str(authz, "status");

    if (status && ngx_strcmp(status, "valid") == 0) {
        json_decref(authz);
        return NGX_OK;
    }

    if (status == NULL || ngx_strcmp(status, "pending") != 0) {
        json_decref(authz);
        return ngx_http_claw_acme_fail(job, "authorization is \"%s\"",
                                       status ? status : "(none)");
    }

    want = (job->type == NGX_HTTP_CLAW_ACME_HTTP_01) ? "http-01"
           : (job->type == NGX_HTTP_CLAW_ACME_DNS_01) ? "dns-01"
           : "tls-alpn-01";

    challs = json_object_get(authz, "challenges");
    n = json_array_size(challs);
    token = NULL;
    churl = NULL;

    for (i = 0; i < n; i++) {
        ch = json_array_get(challs, i);
        type = ngx_http_claw_acme_str(ch, "type");

        if (type && ngx_strcmp(type, want) == 0) {
            token = ngx_http_claw_acme_str(ch, "token");
            churl = ngx_http_claw_acme_str(ch, "url");
            break;
        }
    }

    if (token == NULL || churl == NULL) {
        json_decref(authz);
        return ngx_http_claw_acme_fail(job, "the CA offers no %s challenge "
                                       "for the name", want);
    }

    /* the token goes into a URI path and the zone: base64url only */

    len = ngx_strlen(token);

    for (i = 0; i < len; i++) {
        if (!ngx_http_claw_acme_token_char(token[i])) {
            break;
        }
    }

    if (len == 0 || len > NGX_HTTP_CLAW_ACME_TOKEN_MAX || i != len) {
        json_decref(authz);
        return ngx_http_claw_acme_fail(job, "malformed challenge token");
    }

    k = job->nauthz;

    job->authz_url[k] = url;
    job->token = ngx_http_claw_acme_dup(job, token);
    job->chall_url[k] = ngx_http_claw_acme_dup(job, churl);
    job->keyauth = ngx_pnalloc(job->pool,
                               len + 1 + NGX_HTTP_CLAW_ACME_THUMB_LEN + 1);

    json_decref(authz);

    if (job->token == NULL || job->chall_url[k] == NULL
        || job->keyauth == NULL)
    {
        return ngx_http_claw_acme_fail(job, "challenge: out of memory");
    }

    ngx_sprintf((u_char *) job->keyauth, "%s.%s%Z", job->token,
                job->amcf->thumbprint);

    job->nauthz++;

    if (job->type == NGX_HTTP_CLAW_ACME_DNS_01) {
        job->txt[k] = ngx_pnalloc(job->pool, NGX_HTTP_CLAW_ACME_THUMB_LEN + 1);

        if (job->txt[k] == NULL
            || ngx_http_claw_acme_thumbprint(job->keyauth,
                                             ngx_strlen(job->keyauth),
                                             job->txt[k])
               != 1)
        {
            return ngx_http_claw_acme_fail(job, "the dns-01 value could "
                                           "not be made");
        }

        job->txt[k][NGX_HTTP_CLAW_ACME_THUMB_LEN] = '\0';

        ngx_log_error(NGX_LOG_INFO, job->log, 0,
                      "claw_acme: dns-01 challenge for \"%s\"",
                      job->domain);

        return NGX_OK;
    }

    if (job->type == NGX_HTTP_CLAW_ACME_TLS_ALPN_01
        && (ngx_http_claw_acme_alpn_cert(job->domain, job->keyauth,
                               EVP_PKEY_EC,
                               &job->cert_der[NGX_HTTP_CLAW_ACME_EC],
                               &job->cert_der_len[NGX_HTTP_CLAW_ACME_EC],
                               &job->key_der[NGX_HTTP_CLAW_ACME_EC],
                               &job->key_der_len[NGX_HTTP_CLAW_ACME_EC])
            != 1
            || ngx_http_claw_acme_alpn_cert(job->domain, job->keyauth,
                               EVP_PKEY_RSA,
                               &job->cert_der[NGX_HTTP_CLAW_ACME_RSA],
                               &job->cert_der_len[NGX_HTTP_CLAW_ACME_RSA],
                               &job->key_der[NGX_HTTP_CLAW_ACME_RSA],
                               &job->key_der_len[NGX_HTTP_CLAW_ACME_RSA])
               != 1))
    {
        return ngx_http_claw_acme_fail(job, "the tls-alpn-01 certificates "
                                       "could not be made");
    }

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "claw_acme: %s challenge for \"%s\"", want, job->domain);

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_acme_finish(ngx_http_claw_acme_job_t *job)
{
    json_t      *order;
    EVP_PKEY    *key;
    ngx_int_t    rc;
    const char  *status, *cert;

    if (job->nauthz
        && (job->type == NGX_HTTP_CLAW_ACME_DNS_01
            ? ngx_http_claw_acme_validate_dns(job)
            : ngx_http_claw_acme_validate(job))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    order = ngx_http_claw_acme_poll(job, job->order_url, "order", "pending");
    if (order == NULL) {
        return NGX_ERROR;
    }

    status = ngx_http_claw_acme_str(order, "status");

    if (ngx_strcmp(status, "ready") != 0) {
        json_decref(order);
        return ngx_http_claw_acme_fail(job, "order is \"%s\", not \"ready\"",
                                       status);
    }

    json_decref(order);

    /* a key of its own for every certificate, renewals included */

    key = ngx_http_claw_acme_key_new();
    if (key == NULL) {
        return ngx_http_claw_acme_fail(job, "EC key generation failed");
    }

    rc = ngx_http_claw_acme_finalize(job, key);

    if (rc == NGX_OK) {
        order = ngx_http_claw_acme_poll(job, job->order_url, "order",
                                        "processing");
        if (order == NULL) {
            rc = NGX_ERROR;

        } else {
            status = ngx_http_claw_acme_str(order, "status");
            cert = ngx_http_claw_acme_str(order, "certificate");

            if (ngx_strcmp(status, "valid") != 0 || cert == NULL) {
                rc = ngx_http_claw_acme_fail(job, "order is \"%s\" after "
                                             "finalization", status);

            } else {
                job->cert_url = ngx_http_claw_acme_dup(job, cert);
            }

            json_decref(order);
        }
    }

    if (rc == NGX_OK && job->cert_url == NULL) {
        rc = ngx_http_claw_acme_fail(job, "out of memory");
    }

    if (rc == NGX_OK) {
        rc = ngx_http_claw_acme_store(job, key);
    }

    EVP_PKEY_free(key);

    return rc;
}


/*
 * The TXT records published and seen on the servers to verify, then
 * validated as any challenge; taken out again however that ended.
 */

static ngx_int_t
ngx_http_claw_acme_validate_dns(ngx_http_claw_acme_job_t *job)
{
    char                      *domain;
    time_t                     start;
    ngx_int_t                  rc;
    ngx_http_claw_acme_dns_t  *dns;
    char                       err[NGX_HTTP_CLAW_ACME_ERROR_MAX];

    dns = &job->amcf->dns;
    domain = job->domain + 2;

    rc = ngx_http_claw_acme_dns_present(dns, domain, job->txt, job->nauthz,
                                        job->log, err, sizeof(err));

    if (rc == NGX_OK) {
        start = time(NULL);
        rc = ngx_http_claw_acme_dns_visible(dns, domain, job->txt,
                                            job->nauthz, start + dns->wait,
                                            err, sizeof(err));
        if (rc != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, job->log, 0,
                          "claw_acme: the dns-01 record of \"%s\" did not "
                          "show in %T s: %s", job->domain,
                          time(NULL) - start, err);
        }
    }

    if (rc == NGX_OK) {
        job->deadline = time(NULL) + NGX_HTTP_CLAW_ACME_PHASE_TIME;
        rc = ngx_http_claw_acme_validate(job);

    } else {
        (void) ngx_http_claw_acme_fail(job, "dns-01: %s", err);
    }

    /* also after a failed update: part of it may have been applied */

    if (ngx_http_claw_acme_dns_cleanup(dns, domain, job->txt, job->nauthz,
                                       job->log, err, sizeof(err))
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "claw_acme: the dns-01 record of \"%s\" was not "
                      "removed: %s", job->domain, err);
    }

    return rc;
}


/* the challenges are answered by now: the CA is told to look */

static ngx_int_t
ngx_http_claw_acme_validate(ngx_http_claw_acme_job_t *job)
{
    size_t       i, n;
    json_t      *authz, *ch, *err, *answer;
    ngx_uint_t   k;
    const char  *status, *detail, *type, *url;

    for (k = 0; k < job->nauthz; k++) {
        if (ngx_http_claw_acme_post(job, job->chall_url[k], "{}",
                                    NGX_HTTP_CLAW_ACME_POST, 0)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        answer = ngx_http_claw_acme_answer(job, "challenge", 200, 200);
        if (answer == NULL) {
            return NGX_ERROR;
        }

        json_decref(answer);
    }

    for (k = 0; k < job->nauthz; k++) {
        authz = ngx_http_claw_acme_poll(job, job->authz_url[k],
                                        "authorization", "pending");
        if (authz == NULL) {
            return NGX_ERROR;
        }

        status = ngx_http_claw_acme_str(authz, "status");

        if (ngx_strcmp(status, "valid") == 0) {
            json_decref(authz);
            continue;
        }

        /* why: the error of the challenge that was tried */

        detail = NULL;
        type = NULL;

        ch = json_object_get(authz, "challenges");
        n = json_array_size(ch);

        for (i = 0; i < n; i++) {
            url = ngx_http_claw_acme_str(json_array_get(ch, i), "url");

            if (url && ngx_strcmp(url, job->chall_url[k]) == 0) {
                err = json_object_get(json_array_get(ch, i), "error");
                detail = ngx_http_claw_acme_str(err, "detail");
                type = ngx_http_claw_acme_str(err, "type");
                break;
            }
        }

        if (type && ngx_strncmp(type, NGX_HTTP_CLAW_ACME_ERR,
                                sizeof(NGX_HTTP_CLAW_ACME_ERR) - 1)
                    == 0)
        {
            type += sizeof(NGX_HTTP_CLAW_ACME_ERR) - 1;
        }

        (void) ngx_http_claw_acme_fail(job, "authorization is \"%s\": %s: "
                                       "%s", status,
                                       type ? type : "(no type)",
                                       detail ? detail : "(no detail)");

        json_decref(authz);

        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * POST-as-GET of an order or authorization until its status is no
 * longer "until", waiting as Retry-After says (1 to 10 seconds).
 */

static json_t *
ngx_http_claw_acme_poll(ngx_http_claw_acme_job_t *job, const char *url,
    const char *what, const char *until)
{
    time_t                      wait;
    json_t                     *obj;
    const char                 *status;
    ngx_http_claw_acme_http_t  *h;

    for ( ;; ) {
        if (ngx_http_claw_acme_post(job, url, "", NGX_HTTP_CLAW_ACME_POST, 0)
            != NGX_OK)
        {
            return NULL;
        }

        obj = ngx_http_claw_acme_answer(job, what, 200, 200);
        if (obj == NULL) {
            return NULL;
        }

        status = ngx_http_claw_acme_str(obj, "status");

        if (status == NULL) {
            json_decref(obj);
            (void) ngx_http_claw_acme_fail(job, "%s has no status", what);
            return NULL;
        }

        /* an order being finalised is "processing" as well */

        if (ngx_strcmp(status, until) != 0
            && (ngx_strcmp(until, "pending") != 0
                || ngx_strcmp(status, "processing") != 0))
        {
            return obj;
        }

        json_decref(obj);

        h = job->http;
        wait = h->retry_after;

        if (wait < 1) {
            wait = 1;
        }

        if (wait > 10) {
            wait = 10;
        }

        if (ngx_http_claw_acme_wait(job, wait) != NGX_OK) {
            return NULL;
        }
    }
}


static ngx_int_t
ngx_http_claw_acme_finalize(ngx_http_claw_acme_job_t *job, EVP_PKEY *key)
{
    char           *payload;
    json_t         *order;
    size_t          len;
    u_char         *b64;
    unsigned char  *der;

    der = ngx_http_claw_acme_csr(key, job->domain, &len);
    if (der == NULL) {
        return ngx_http_claw_acme_fail(job, "the CSR could not be made");
    }

    b64 = ngx_pnalloc(job->pool, NGX_HTTP_CLAW_B64URL_LEN(len) + 1);
    if (b64 == NULL) {
        OPENSSL_free(der);
        return ngx_http_claw_acme_fail(job, "out of memory");
    }

    b64[ngx_http_claw_b64url_encode(der, len, b64)] = '\0';
    OPENSSL_free(der);

    order = json_pack("{s:s}", "csr", (char *) b64);
    payload = order ? json_dumps(order, JSON_COMPACT) : NULL;
    json_decref(order);

    if (payload == NULL) {
        return ngx_http_claw_acme_fail(job, "out of memory");
    }

    if (ngx_http_claw_acme_post(job, job->finalize_url, payload,
                                NGX_HTTP_CLAW_ACME_POST, 0)
        != NGX_OK)
    {
        free(payload);
        return NGX_ERROR;
    }

    free(payload);

    order = ngx_http_claw_acme_answer(job, "finalize", 200, 200);
    if (order == NULL) {
        return NGX_ERROR;
    }

    json_decref(order);

    return NGX_OK;
}


/*
 * The certificate chain as the CA sends it, checked (the key's, for the
 * name), then key and chain written next to each other: the TLS code
 * picks them up on its next look at the files, with no reload.
 */

static ngx_int_t
ngx_http_claw_acme_store(ngx_http_claw_acme_job_t *job, EVP_PKEY *key)
{
    ngx_http_claw_acme_http_t  *h;

    if (ngx_http_claw_acme_post(job, job->cert_url, "",
                                NGX_HTTP_CLAW_ACME_POST_PEM, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    h = job->http;

    if (h->status != 200) {
        json_decref(ngx_http_claw_acme_answer(job, "certificate", 200, 200));
        return NGX_ERROR;
    }

    return ngx_http_claw_acme_keep(job, key, h->body, h->len);
}


/*
 * A certificate another node of the cluster ordered, from the server:
 * checked and written as one of this node's own.  On the claw thread
 * pool.
 */

void
ngx_http_claw_acme_install_thread(void *data, ngx_log_t *log)
{
    ngx_http_claw_acme_job_t  *job = data;

    BIO       *bio;
    EVP_PKEY  *key;

    job->rc = NGX_ERROR;

    bio = BIO_new_mem_buf(job->pem_key.data, (int) job->pem_key.len);
    if (bio == NULL) {
        (void) ngx_http_claw_acme_fail(job, "out of memory");
        return;
    }

    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (key == NULL) {
        ERR_clear_error();
        job->bad = 1;
        (void) ngx_http_claw_acme_fail(job, "the cluster's key of the name "
                                       "is not a PEM private key");
        return;
    }

    job->rc = ngx_http_claw_acme_keep(job, key, job->pem_cert.data,
                                      job->pem_cert.len);

    EVP_PKEY_free(key);
}


/*
 * A certificate chain (PEM) checked against the key and the name, then
 * key and chain written next to each other: the TLS code picks them up
 * on its next look at the files, with no reload.  In a cluster both are
 * kept in the job, for the other nodes.
 */

static ngx_int_t
ngx_http_claw_acme_keep(ngx_http_claw_acme_job_t *job, EVP_PKEY *key,
    u_char *pem, size_t len)
{
    BIO      *bio;
    X509     *x;
    BUF_MEM  *mem;
    u_char   *crt;

    if (len == 0) {
        return ngx_http_claw_acme_fail(job, "certificate: empty");
    }

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        return ngx_http_claw_acme_fail(job, "out of memory");
    }

    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (x == NULL) {
        ERR_clear_error();
        job->bad = 1;
        return ngx_http_claw_acme_fail(job, "certificate: no PEM "
                                       "certificate in the answer");
    }

    if (X509_check_private_key(x, key) != 1
        || !ngx_http_claw_acme_cert_names(x, job->domain)
        || !ngx_http_claw_acme_cert_times(x, &job->not_before,
                                          &job->not_after)
        || job->not_after <= job->not_before)
    {
        X509_free(x);
        ERR_clear_error();
        job->bad = 1;
        return ngx_http_claw_acme_fail(job, "certificate: not one for the "
                                       "name and key of the order");
    }

    X509_free(x);

    /* the chain ends with a newline, in a copy the job owns */

    crt = ngx_pnalloc(job->pool, len + 1);
    if (crt == NULL) {
        return ngx_http_claw_acme_fail(job, "out of memory");
    }

    ngx_memcpy(crt, pem, len);

    if (crt[len - 1] != '\n') {
        crt[len++] = '\n';
    }

    bio = BIO_new(BIO_s_mem());

    if (bio == NULL
        || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
    {
        if (bio) {
            BIO_free(bio);
        }

        return ngx_http_claw_acme_fail(job, "the key could not be encoded");
    }

    BIO_get_mem_ptr(bio, &mem);

    if (ngx_http_claw_acme_write_file(job->log, &job->amcf->certs,
                                      job->domain, ".key",
                                      (u_char *) mem->data, mem->length,
                                      0600)
        != NGX_OK)
    {
        BIO_free(bio);
        return ngx_http_claw_acme_fail(job, "the key could not be written");
    }

    if (job->amcf->cluster && job->phase != 3) {
        job->pem_key.data = ngx_pnalloc(job->pool, mem->length);

        if (job->pem_key.data == NULL) {
            BIO_free(bio);
            return ngx_http_claw_acme_fail(job, "out of memory");
        }

        ngx_memcpy(job->pem_key.data, mem->data, mem->length);
        job->pem_key.len = mem->length;
        job->pem_cert.data = crt;
        job->pem_cert.len = len;
    }

    BIO_free(bio);

    if (ngx_http_claw_acme_write_file(job->log, &job->amcf->certs,
                                      job->domain, ".crt", crt, len, 0644)
        != NGX_OK)
    {
        return ngx_http_claw_acme_fail(job, "the certificate could not be "
                                       "written");
    }

    return NGX_OK;
}


/*
 * A JWS POST (RFC 8555, 6.2), with a fresh nonce each time; a badNonce
 * answer carries the next nonce, and the same request is sent again
 * with it (6.5).
 */

static ngx_int_t
ngx_http_claw_acme_post(ngx_http_claw_acme_job_t *job, const char *url,
    const char *payload, ngx_uint_t how, ngx_uint_t jwk)
{
    char                       *header, *jws;
    json_t                     *prot, *key, *problem;
    size_t                      len;
    ngx_int_t                   rc;
    ngx_uint_t                  tries;
    const char                 *type;
    ngx_http_claw_acme_http_t  *h;

    for (tries = 0; /* void */; tries++) {

        h = job->http;

        if ((h == NULL || h->nonce[0] == '\0')
            && ngx_http_claw_acme_nonce(job) != NGX_OK)
        {
            return NGX_ERROR;
        }

        h = job->http;

        if (jwk) {
            key = json_loads(job->amcf->jwk, 0, NULL);
            prot = json_pack("{s:s,s:s,s:s,s:o}", "alg", "ES256",
                             "nonce", h->nonce, "url", url, "jwk", key);

        } else {
            prot = json_pack("{s:s,s:s,s:s,s:s}", "alg", "ES256",
                             "nonce", h->nonce, "url", url, "kid", job->kid);
        }

        header = prot ? json_dumps(prot, JSON_COMPACT) : NULL;
        json_decref(prot);

        if (header == NULL) {
            return ngx_http_claw_acme_fail(job, "out of memory");
        }

        jws = ngx_http_claw_acme_jws(job->account_key, header, payload, &len);
        free(header);

        if (jws == NULL) {
            return ngx_http_claw_acme_fail(job, "JWS signing failed");
        }

        /* a nonce is good for one request */

        h->nonce[0] = '\0';

        rc = ngx_http_claw_acme_request(job, url, jws, len, how);
        free(jws);

        if (rc != NGX_OK) {
            return rc;
        }

        if (h->status != 400
            || ngx_strncmp(h->type, "application/problem+json",
                           sizeof("application/problem+json") - 1)
               != 0)
        {
            return NGX_OK;
        }

        /* the answer is the caller's unless it is a badNonce */

        problem = json_loadb((char *) h->body, h->len, 0, NULL);
        type = ngx_http_claw_acme_str(problem, "type");

        if (type == NULL
            || ngx_strcmp(type, NGX_HTTP_CLAW_ACME_ERR "badNonce") != 0
            || tries + 1 >= NGX_HTTP_CLAW_ACME_NONCE_TRIES)
        {
            json_decref(problem);
            return NGX_OK;
        }

        json_decref(problem);

        job->bad_nonces++;

        ngx_log_error(NGX_LOG_INFO, job->log, 0,
                      "claw_acme: badNonce from \"%s\", sent again with "
                      "the next nonce", url);
    }
}


static ngx_int_t
ngx_http_claw_acme_nonce(ngx_http_claw_acme_job_t *job)
{
    ngx_http_claw_acme_http_t  *h;

    if (ngx_http_claw_acme_request(job, job->new_nonce, NULL, 0,
                                   NGX_HTTP_CLAW_ACME_HEAD)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    h = job->http;

    if ((h->status != 200 && h->status != 204) || h->nonce[0] == '\0') {
        return ngx_http_claw_acme_fail(job, "new nonce: status %l and %s "
                                       "nonce", h->status,
                                       h->nonce[0] ? "a" : "no");
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_acme_request(ngx_http_claw_acme_job_t *job, const char *url,
    const char *body, size_t len, ngx_uint_t how)
{
    CURLcode                    rc;
    ngx_http_claw_acme_http_t  *h;

    if (ngx_http_claw_acme_stopped()) {
        return ngx_http_claw_acme_fail(job, "nginx is stopping");
    }

    if (time(NULL) > job->deadline) {
        return ngx_http_claw_acme_fail(job, "timed out");
    }

    h = job->http;

    if (h == NULL) {
        h = calloc(1, sizeof(ngx_http_claw_acme_http_t));
        if (h == NULL) {
            return ngx_http_claw_acme_fail(job, "out of memory");
        }

        job->http = h;

        h->curl = curl_easy_init();
        h->jose = curl_slist_append(NULL,
                                    "Content-Type: application/jose+json");

        /* no 100-continue round trip for a larger body */

        h->jose = h->jose ? curl_slist_append(h->jose, "Expect:") : NULL;

        h->pem = curl_slist_append(NULL,
                                   "Content-Type: application/jose+json");
        h->pem = h->pem ? curl_slist_append(h->pem, "Expect:") : NULL;
        h->pem = h->pem ? curl_slist_append(h->pem,
                              "Accept: application/pem-certificate-chain")
                        : NULL;

        if (h->curl == NULL || h->jose == NULL || h->pem == NULL) {
            return ngx_http_claw_acme_fail(job, "out of memory");
        }

        (void) curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(h->curl, CURLOPT_USERAGENT,
                                "ngx_claw_module-acme libcurl");
        (void) curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "https");
        (void) curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
        (void) curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, 10L);
        (void) curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, 30L);
        (void) curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->error);
        (void) curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION,
                                ngx_http_claw_acme_body);
        (void) curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
        (void) curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION,
                                ngx_http_claw_acme_header);
        (void) curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, h);
        (void) curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
        (void) curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION,
                                ngx_http_claw_acme_progress);

        if (job->amcf->trusted.len) {
            (void) curl_easy_setopt(h->curl, CURLOPT_CAINFO,
                                    (char *) job->amcf->trusted.data);
        }
    }

    h->len = 0;
    h->status = 0;
    h->retry_after = 0;
    h->location[0] = '\0';
    h->type[0] = '\0';
    h->error[0] = '\0';

    (void) curl_easy_setopt(h->curl, CURLOPT_URL, url);

    switch (how) {

    case NGX_HTTP_CLAW_ACME_HEAD:
        (void) curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
        (void) curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
        (void) curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
        break;

    case NGX_HTTP_CLAW_ACME_GET:
        (void) curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
        (void) curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
        break;

    default: /* POST */
        (void) curl_easy_setopt(h->curl, CURLOPT_NOBODY, 0L);
        (void) curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE, (long) len);
        (void) curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
        (void) curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER,
                                how == NGX_HTTP_CLAW_ACME_POST_PEM
                                ? h->pem : h->jose);
        break;
    }

    rc = curl_easy_perform(h->curl);

    job->requests++;

    if (rc != CURLE_OK) {
        return ngx_http_claw_acme_fail(job, "%s: %s", url,
                                       h->error[0] ? h->error
                                                   : curl_easy_strerror(rc));
    }

    (void) curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &h->status);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, job->log, 0,
                   "claw_acme: %s %s: %l",
                   how == NGX_HTTP_CLAW_ACME_GET ? "GET"
                   : how == NGX_HTTP_CLAW_ACME_HEAD ? "HEAD" : "POST",
                   url, h->status);

    return NGX_OK;
}


/*
 * The JSON of an answer with the expected status, or NULL and the
 * problem (RFC 7807) as the job's error.
 */

static json_t *
ngx_http_claw_acme_answer(ngx_http_claw_acme_job_t *job, const char *what,
    long ok1, long ok2)
{
    json_t                     *obj;
    const char                 *type, *detail;
    ngx_http_claw_acme_http_t  *h;

    h = job->http;

    obj = json_loadb((char *) h->body, h->len, 0, NULL);

    if (h->status == ok1 || h->status == ok2) {
        if (!json_is_object(obj)) {
            json_decref(obj);
            (void) ngx_http_claw_acme_fail(job, "%s: no JSON object in the "
                                           "answer", what);
            return NULL;
        }

        return obj;
    }

    type = ngx_http_claw_acme_str(obj, "type");
    detail = ngx_http_claw_acme_str(obj, "detail");

    if (type && ngx_strncmp(type, NGX_HTTP_CLAW_ACME_ERR,
                            sizeof(NGX_HTTP_CLAW_ACME_ERR) - 1)
                == 0)
    {
        type += sizeof(NGX_HTTP_CLAW_ACME_ERR) - 1;

        if (ngx_strcmp(type, "accountDoesNotExist") == 0) {
            job->account_gone = 1;
        }
    }

    /* rateLimited and others say when to come back */

    job->retry_after = h->retry_after;

    (void) ngx_http_claw_acme_fail(job, "%s: %l %s: %s", what, h->status,
                                   type ? type : "(no type)",
                                   detail ? detail : "(no detail)");

    json_decref(obj);

    return NULL;
}


static ngx_int_t
ngx_http_claw_acme_wait(ngx_http_claw_acme_job_t *job, time_t seconds)
{
    time_t  until;

    until = time(NULL) + seconds;

    if (until > job->deadline) {
        return ngx_http_claw_acme_fail(job, "timed out");
    }

    while (time(NULL) < until) {
        if (ngx_http_claw_acme_stopped()) {
            return ngx_http_claw_acme_fail(job, "nginx is stopping");
        }

        ngx_msleep(100);
    }

    return NGX_OK;
}


/*
 * A fast shutdown ends a job at once; a graceful one (a reload) lets it
 * finish, bounded by the phase's deadline, before the worker exits.
 */

static ngx_uint_t
ngx_http_claw_acme_stopped(void)
{
    return *(volatile sig_atomic_t *) &ngx_terminate != 0;
}


static char *
ngx_http_claw_acme_dup(ngx_http_claw_acme_job_t *job, const char *s)
{
    char    *p;
    size_t   len;

    if (s == NULL) {
        return NULL;
    }

    len = ngx_strlen(s);

    if (len >= NGX_HTTP_CLAW_ACME_URL_MAX) {
        return NULL;
    }

    p = ngx_pnalloc(job->pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len + 1);

    return p;
}


static const char *
ngx_http_claw_acme_str(json_t *obj, const char *key)
{
    json_t  *v;

    v = json_object_get(obj, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}


static ngx_int_t
ngx_http_claw_acme_fail(ngx_http_claw_acme_job_t *job, const char *fmt, ...)
{
    int      n;
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf((char *) job->error, sizeof(job->error), fmt, args);
    va_end(args);

    job->error_len = (n < 0) ? 0 : ngx_min((size_t) n, sizeof(job->error) - 1);

    return NGX_ERROR;
}


static size_t
ngx_http_claw_acme_body(char *ptr, size_t size, size_t n, void *data)
{
    ngx_http_claw_acme_http_t  *h = data;

    u_char  *p;
    size_t   len, want;

    len = size * n;

    /* one spare byte, for a newline added to a certificate chain */

    if (h->len + len + 1 > h->size) {
        if (h->len + len + 1 > NGX_HTTP_CLAW_ACME_BODY_MAX) {
            return 0;
        }

        want = ngx_max(2 * h->size, h->len + len + 1);
        want = ngx_min(want, NGX_HTTP_CLAW_ACME_BODY_MAX);

        p = realloc(h->body, want);
        if (p == NULL) {
            return 0;
        }

        h->body = p;
        h->size = want;
    }

    ngx_memcpy(h->body + h->len, ptr, len);
    h->len += len;

    return len;
}


static size_t
ngx_http_claw_acme_header(char *ptr, size_t size, size_t n, void *data)
{
    ngx_http_claw_acme_http_t  *h = data;

    char    *v, *end;
    size_t   len, name, i;
    time_t   t;

    len = size * n;
    end = ptr + len;

    while (end > ptr && (end[-1] == '\r' || end[-1] == '\n'
                         || end[-1] == ' ' || end[-1] == '\t'))
    {
        end--;
    }

    /* the status line of an interim or final answer starts anew */

    if (len >= 5 && ngx_strncmp(ptr, "HTTP/", 5) == 0) {
        h->nonce[0] = '\0';
        h->location[0] = '\0';
        h->type[0] = '\0';
        h->retry_after = 0;
        return len;
    }

    v = memchr(ptr, ':', end - ptr);
    if (v == NULL) {
        return len;
    }

    name = v - ptr;

    for (v++; v < end && (*v == ' ' || *v == '\t'); v++) {
        /* void */
    }

    i = end - v;

    if (name == sizeof("Replay-Nonce") - 1
        && ngx_strncasecmp((u_char *) ptr, (u_char *) "Replay-Nonce",
                           name)
           == 0
        && i < sizeof(h->nonce))
    {
        ngx_memcpy(h->nonce, v, i);
        h->nonce[i] = '\0';

    } else if (name == sizeof("Location") - 1
               && ngx_strncasecmp((u_char *) ptr, (u_char *) "Location",
                                  name)
                  == 0
               && i < sizeof(h->location))
    {
        ngx_memcpy(h->location, v, i);
        h->location[i] = '\0';

    } else if (name == sizeof("Content-Type") - 1
               && ngx_strncasecmp((u_char *) ptr, (u_char *) "Content-Type",
                                  name)
                  == 0)
    {
        i = ngx_min(i, sizeof(h->type) - 1);
        ngx_strlow((u_char *) h->type, (u_char *) v, i);
        h->type[i] = '\0';

    } else if (name == sizeof("Retry-After") - 1
               && ngx_strncasecmp((u_char *) ptr, (u_char *) "Retry-After",
                                  name)
                  == 0)
    {
        /* delta-seconds or an HTTP-date (RFC 9110, 10.2.3) */

        t = ngx_atotm((u_char *) v, i);

        if (t == NGX_ERROR) {
            t = ngx_parse_http_time((u_char *) v, i);
            t = (t == NGX_ERROR) ? 0 : t - time(NULL);
        }

        h->retry_after = ngx_max(t, 0);
    }

    return len;
}


static int
ngx_http_claw_acme_progress(void *data, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
    return ngx_http_claw_acme_stopped() ? 1 : 0;
}


/*
 * dir/name+suffix, atomically: a temporary file written and synced,
 * renamed over the name, then the directory synced, so that a crash
 * leaves the old file or the new one, never a part.
 */

ngx_int_t
ngx_http_claw_acme_write_file(ngx_log_t *log, ngx_str_t *dir,
    const char *name, const char *suffix, u_char *data, size_t len,
    ngx_uint_t mode)
{
    int        fd;
    size_t     done;
    ssize_t    n;
    u_char     path[NGX_MAX_PATH], tmp[NGX_MAX_PATH];

    if (dir->len + ngx_strlen(name) + ngx_strlen(suffix) + sizeof("/..tmp")
        > NGX_MAX_PATH)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "claw_acme: path of \"%s%s\" too long", name, suffix);
        return NGX_ERROR;
    }

    ngx_sprintf(path, "%V/%s%s%Z", dir, name, suffix);
    ngx_sprintf(tmp, "%V/.%s%s.tmp%Z", dir, name, suffix);

    fd = open((char *) tmp, O_WRONLY|O_CREAT|O_TRUNC|O_NOFOLLOW|O_CLOEXEC,
              (mode_t) mode);

    if (fd == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw_acme: open(\"%s\") failed", tmp);
        return NGX_ERROR;
    }

    /* a file left by an earlier failure may have another mode */

    if (fchmod(fd, (mode_t) mode) == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw_acme: fchmod(\"%s\") failed", tmp);
        goto failed;
    }

    for (done = 0; done < len; done += n) {
        n = write(fd, data + done, len - done);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                n = 0;
                continue;
            }

            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "claw_acme: write(\"%s\") failed", tmp);
            goto failed;
        }
    }

    if (fsync(fd) == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw_acme: fsync(\"%s\") failed", tmp);
        goto failed;
    }

    if (close(fd) == -1) {
        fd = -1;
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw_acme: close(\"%s\") failed", tmp);
        goto failed;
    }

    fd = -1;

    if (rename((char *) tmp, (char *) path) == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw_acme: rename(\"%s\", \"%s\") failed", tmp, path);
        goto failed;
    }

    fd = open((char *) dir->data, O_RDONLY|O_DIRECTORY|O_CLOEXEC);

    if (fd == -1 || fsync(fd) == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw_acme: fsync(\"%V\") failed", dir);

        if (fd != -1) {
            (void) close(fd);
        }

        return NGX_ERROR;
    }

    (void) close(fd);

    return NGX_OK;

failed:

    if (fd != -1) {
        (void) close(fd);
    }

    (void) unlink((char *) tmp);

    return NGX_ERROR;
}
