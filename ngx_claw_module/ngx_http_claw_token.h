
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Credential codecs: the Authorization header, the session cookie and
 * the claw_token query argument.  Nothing here depends on nginx, so unit
 * tests and fuzz targets link this file (and OpenSSL's libcrypto) alone.
 */


#ifndef _NGX_HTTP_CLAW_TOKEN_H_INCLUDED_
#define _NGX_HTTP_CLAW_TOKEN_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "ngx_http_claw_parse.h"


/* the longest token worth hashing: minted tokens are 48 characters */
#define NGX_HTTP_CLAW_TOKEN_MAX       512

#define NGX_HTTP_CLAW_COOKIE_NAME     "__Host-claw"
#define NGX_HTTP_CLAW_ARG_NAME        "claw_token"

/* version, expiry, token reference, HMAC-SHA256 */
#define NGX_HTTP_CLAW_COOKIE_RAW      (1 + 8 + 8 + 32)
#define NGX_HTTP_CLAW_COOKIE_LEN      66      /* base64url, no padding */
#define NGX_HTTP_CLAW_COOKIE_VERSION  1

#define NGX_HTTP_CLAW_SECRET_MIN      32

/* base64url of n bytes, without padding */
#define NGX_HTTP_CLAW_B64URL_LEN(n)   (((n) * 4 + 2) / 3)


/* results of ngx_http_claw_bearer() */
#define NGX_HTTP_CLAW_CRED_NONE       0      /* not a Bearer credential */
#define NGX_HTTP_CLAW_CRED_OK         1
#define NGX_HTTP_CLAW_CRED_MALFORMED  2


typedef struct {
    uint64_t                  expiry;         /* unix time, seconds */
    unsigned char             ref[8];         /* first bytes of the digest */
    unsigned char             mac[32];
} ngx_http_claw_session_t;


size_t ngx_http_claw_b64url_encode(const unsigned char *in, size_t len,
    unsigned char *out);
int ngx_http_claw_b64url_decode(const unsigned char *in, size_t len,
    unsigned char *out, size_t *olen);

int ngx_http_claw_bearer(const unsigned char *value, size_t len,
    ngx_http_claw_span_t *token);
int ngx_http_claw_token_valid(const unsigned char *p, size_t len);
void ngx_http_claw_token_exit(void);
void ngx_http_claw_token_digest(const unsigned char *token, size_t len,
    unsigned char *digest);
void ngx_http_claw_hmac_sha256(const unsigned char *key, size_t klen,
    const unsigned char *msg, size_t len, unsigned char *mac);
int ngx_http_claw_digest_find(const unsigned char *digest,
    const unsigned char *digests, unsigned n);

size_t ngx_http_claw_session_encode(const unsigned char *key, size_t klen,
    const unsigned char *id, size_t idlen, uint64_t expiry,
    const unsigned char *digest, unsigned char *out);
int ngx_http_claw_session_decode(const unsigned char *value, size_t len,
    ngx_http_claw_session_t *s);
int ngx_http_claw_session_verify(const unsigned char *key, size_t klen,
    const unsigned char *id, size_t idlen, ngx_http_claw_session_t *s,
    uint64_t now, const unsigned char *digests, unsigned n);

int ngx_http_claw_cookie_find(const unsigned char *header, size_t len,
    ngx_http_claw_span_t *value, unsigned *count);
size_t ngx_http_claw_cookie_strip(const unsigned char *header, size_t len,
    unsigned char *out);

int ngx_http_claw_arg_find(const unsigned char *args, size_t len,
    unsigned char *value, size_t *vlen, unsigned *count);
size_t ngx_http_claw_arg_strip(const unsigned char *args, size_t len,
    unsigned char *out);
size_t ngx_http_claw_arg_redact(const unsigned char *line, size_t len,
    unsigned char *out);
size_t ngx_http_claw_fragment_redact(const unsigned char *line, size_t len,
    unsigned char *out);

int ngx_http_claw_origin_host(const unsigned char *origin, size_t len,
    ngx_http_claw_span_t *scheme, unsigned char *host, size_t *hlen);


#endif /* _NGX_HTTP_CLAW_TOKEN_H_INCLUDED_ */
