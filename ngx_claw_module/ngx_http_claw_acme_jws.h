
/*
 * Copyright (C) ngx_claw_module authors
 *
 * The cryptography of the ACME client: the account key as a JWK and its
 * thumbprint (RFC 7638), JWS with ES256 (RFC 7515, 7518), certificate
 * signing requests and the tls-alpn-01 challenge certificate (RFC 8737).
 * Nothing here depends on nginx, so it can be tested, and run on a
 * thread pool, with OpenSSL's libcrypto alone; its base64url is that of
 * ngx_http_claw_token.c, linked with it (and ngx_http_claw_parse.c).
 */


#ifndef _NGX_HTTP_CLAW_ACME_JWS_H_INCLUDED_
#define _NGX_HTTP_CLAW_ACME_JWS_H_INCLUDED_


#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>


/* the base64url of a SHA-256 digest */
#define NGX_HTTP_CLAW_ACME_THUMB_LEN    43

/* {"crv":"P-256","kty":"EC","x":"<43>","y":"<43>"}, 126 bytes */
#define NGX_HTTP_CLAW_ACME_JWK_LEN      128

/* SHA-256 of the key authorization, as the DER of an OCTET STRING */
#define NGX_HTTP_CLAW_ACME_ID_OID       "1.3.6.1.5.5.7.1.31"


EVP_PKEY *ngx_http_claw_acme_key_new(void);
int ngx_http_claw_acme_key_check(EVP_PKEY *key);
int ngx_http_claw_acme_jwk(EVP_PKEY *key, char *jwk, size_t *len);
int ngx_http_claw_acme_thumbprint(const char *jwk, size_t len,
    char *thumb);

char *ngx_http_claw_acme_jws(EVP_PKEY *key, const char *protected_header,
    const char *payload, size_t *len);
int ngx_http_claw_acme_es256(EVP_PKEY *key, const unsigned char *data,
    size_t len, unsigned char *sig);

unsigned char *ngx_http_claw_acme_csr(EVP_PKEY *key, const char *name,
    size_t *len);
int ngx_http_claw_acme_alpn_cert(const char *name, const char *keyauth,
    int type, unsigned char **cert, size_t *cert_len, unsigned char **pkey,
    size_t *pkey_len);

int ngx_http_claw_acme_cert_times(X509 *x, time_t *not_before,
    time_t *not_after);
int ngx_http_claw_acme_cert_names(X509 *x, const char *name);


#endif /* _NGX_HTTP_CLAW_ACME_JWS_H_INCLUDED_ */
