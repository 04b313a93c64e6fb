
/*
 * Copyright (C) ngx_claw_module authors
 */


#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ngx_http_claw_token.h"
#include "ngx_http_claw_acme_jws.h"


/* P-256: coordinates and signature halves of 32 bytes */
#define NGX_HTTP_CLAW_ACME_P256  32

/* a CN longer than this does not fit the X.520 upper bound */
#define NGX_HTTP_CLAW_ACME_CN_MAX  64


static int ngx_http_claw_acme_san(X509_EXTENSION **ext, const char *name);
static int ngx_http_claw_acme_cn(X509_NAME *subject, const char *name);


/* an EC P-256 key: ES256 for the account, and the certificates' keys */

EVP_PKEY *
ngx_http_claw_acme_key_new(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}


/* whether a key read from a file is one this client can sign with */

int
ngx_http_claw_acme_key_check(EVP_PKEY *key)
{
    char  group[32];

    if (!EVP_PKEY_is_a(key, "EC")) {
        return 0;
    }

    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                       group, sizeof(group), NULL)
        != 1)
    {
        return 0;
    }

    return strcmp(group, SN_X9_62_prime256v1) == 0;
}


/*
 * The public key as a JWK (RFC 7517, 7518): the members in lexicographic
 * order and no white space, which is also the thumbprint's input
 * (RFC 7638), so the one string serves both.
 */

int
ngx_http_claw_acme_jwk(EVP_PKEY *key, char *jwk, size_t *len)
{
    int             rc;
    char           *p;
    BIGNUM         *x, *y;
    unsigned char   bin[NGX_HTTP_CLAW_ACME_P256];

    static const char  head[] = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"";
    static const char  mid[] = "\",\"y\":\"";

    x = NULL;
    y = NULL;
    rc = 0;

    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1
        || EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1)
    {
        goto done;
    }

    p = jwk;

    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;

    if (BN_bn2binpad(x, bin, sizeof(bin)) != sizeof(bin)) {
        goto done;
    }

    p += ngx_http_claw_b64url_encode(bin, sizeof(bin), (unsigned char *) p);

    memcpy(p, mid, sizeof(mid) - 1);
    p += sizeof(mid) - 1;

    if (BN_bn2binpad(y, bin, sizeof(bin)) != sizeof(bin)) {
        goto done;
    }

    p += ngx_http_claw_b64url_encode(bin, sizeof(bin), (unsigned char *) p);

    *p++ = '"';
    *p++ = '}';
    *p = '\0';

    *len = p - jwk;
    rc = 1;

done:

    BN_free(x);
    BN_free(y);

    return rc;
}


/*
 * base64url(SHA-256(jwk)), 43 characters and a NUL; of a key
 * authorization, the value of a dns-01 TXT record (RFC 8555, 8.4)
 */

int
ngx_http_claw_acme_thumbprint(const char *jwk, size_t len, char *thumb)
{
    size_t         n;
    unsigned char  md[SHA256_DIGEST_LENGTH];

    if (SHA256((const unsigned char *) jwk, len, md) == NULL) {
        return 0;
    }

    n = ngx_http_claw_b64url_encode(md, sizeof(md), (unsigned char *) thumb);
    thumb[n] = '\0';

    return 1;
}


/*
 * A JWS in the flattened JSON serialization (RFC 7515, 7.2.2), as ACME
 * wants it: {"protected":..,"payload":..,"signature":..}.  An empty
 * payload is a POST-as-GET.  Returns a malloc()ed string.
 */

char *
ngx_http_claw_acme_jws(EVP_PKEY *key, const char *protected_header,
    const char *payload, size_t *len)
{
    char           *out, *p, *input;
    size_t          hlen, plen, n;
    unsigned char   sig[2 * NGX_HTTP_CLAW_ACME_P256];

    static const char  head[] = "{\"protected\":\"";
    static const char  mid[] = "\",\"payload\":\"";
    static const char  tail[] = "\",\"signature\":\"";

    hlen = NGX_HTTP_CLAW_B64URL_LEN(strlen(protected_header));
    plen = NGX_HTTP_CLAW_B64URL_LEN(strlen(payload));

    /* the signing input, "<protected>.<payload>" */

    input = malloc(hlen + 1 + plen);
    if (input == NULL) {
        return NULL;
    }

    p = input;
    p += ngx_http_claw_b64url_encode((const unsigned char *) protected_header,
                                     strlen(protected_header),
                                     (unsigned char *) p);
    *p++ = '.';
    p += ngx_http_claw_b64url_encode((const unsigned char *) payload,
                                     strlen(payload), (unsigned char *) p);

    if (ngx_http_claw_acme_es256(key, (unsigned char *) input, p - input, sig)
        != 1)
    {
        free(input);
        return NULL;
    }

    n = sizeof(head) - 1 + hlen + sizeof(mid) - 1 + plen + sizeof(tail) - 1
        + NGX_HTTP_CLAW_B64URL_LEN(sizeof(sig)) + sizeof("\"}");

    out = malloc(n);
    if (out == NULL) {
        free(input);
        return NULL;
    }

    p = out;

    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    memcpy(p, input, hlen);
    p += hlen;
    memcpy(p, mid, sizeof(mid) - 1);
    p += sizeof(mid) - 1;
    memcpy(p, input + hlen + 1, plen);
    p += plen;
    memcpy(p, tail, sizeof(tail) - 1);
    p += sizeof(tail) - 1;
    p += ngx_http_claw_b64url_encode(sig, sizeof(sig), (unsigned char *) p);

    *p++ = '"';
    *p++ = '}';
    *p = '\0';

    *len = p - out;

    free(input);

    return out;
}


/*
 * ES256 (RFC 7518, 3.4): ECDSA with SHA-256, the signature as the two
 * 32-byte big-endian integers r and s, not OpenSSL's DER.
 */

int
ngx_http_claw_acme_es256(EVP_PKEY *key, const unsigned char *data,
    size_t len, unsigned char *sig)
{
    int                   rc;
    size_t                dlen;
    ECDSA_SIG            *es;
    EVP_MD_CTX           *md;
    const BIGNUM         *r, *s;
    const unsigned char  *p;
    unsigned char         der[128];

    rc = 0;
    es = NULL;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return 0;
    }

    dlen = sizeof(der);

    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1
        || EVP_DigestSign(md, der, &dlen, data, len) != 1)
    {
        goto done;
    }

    p = der;

    es = d2i_ECDSA_SIG(NULL, &p, (long) dlen);
    if (es == NULL) {
        goto done;
    }

    ECDSA_SIG_get0(es, &r, &s);

    if (BN_bn2binpad(r, sig, NGX_HTTP_CLAW_ACME_P256)
        != NGX_HTTP_CLAW_ACME_P256
        || BN_bn2binpad(s, sig + NGX_HTTP_CLAW_ACME_P256,
                        NGX_HTTP_CLAW_ACME_P256)
           != NGX_HTTP_CLAW_ACME_P256)
    {
        goto done;
    }

    rc = 1;

done:

    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);

    return rc;
}


/*
 * The CSR of a finalisation: the one name as a subjectAltName (and as
 * the CN where it fits), signed with the certificate's key.  Returns
 * its DER, OPENSSL_malloc()ed.
 */

unsigned char *
ngx_http_claw_acme_csr(EVP_PKEY *key, const char *name, size_t *len)
{
    int                         n;
    X509_REQ                   *req;
    unsigned char              *der;
    X509_EXTENSION             *ext;
    STACK_OF(X509_EXTENSION)   *exts;

    der = NULL;
    ext = NULL;
    exts = NULL;

    req = X509_REQ_new();
    if (req == NULL) {
        return NULL;
    }

    if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1
        || ngx_http_claw_acme_cn(X509_REQ_get_subject_name(req), name) != 1
        || X509_REQ_set_pubkey(req, key) != 1
        || ngx_http_claw_acme_san(&ext, name) != 1)
    {
        goto done;
    }

    exts = sk_X509_EXTENSION_new_null();
    if (exts == NULL || sk_X509_EXTENSION_push(exts, ext) == 0) {
        goto done;
    }

    ext = NULL;

    if (X509_REQ_add_extensions(req, exts) != 1
        || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
    {
        goto done;
    }

    n = i2d_X509_REQ(req, &der);

    if (n <= 0) {
        der = NULL;
        goto done;
    }

    *len = (size_t) n;

done:

    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);

    return der;
}


/*
 * The tls-alpn-01 certificate (RFC 8737, 3): self-signed, with the name
 * as its only subjectAltName and the critical acmeIdentifier extension,
 * whose value is the DER of an OCTET STRING holding the SHA-256 of the
 * key authorization.  Its key (EVP_PKEY_EC: P-256, EVP_PKEY_RSA: 2048
 * bits) is made here and thrown away with it.  Both come back as DER,
 * OPENSSL_malloc()ed.
 */

int
ngx_http_claw_acme_alpn_cert(const char *name, const char *keyauth,
    int type, unsigned char **cert, size_t *cert_len, unsigned char **pkey,
    size_t *pkey_len)
{
    int                  rc, n;
    X509                *x;
    BIGNUM              *bn;
    EVP_PKEY            *key;
    ASN1_OBJECT         *oid;
    X509_EXTENSION      *ext;
    ASN1_OCTET_STRING   *os;
    unsigned char        serial[16];
    unsigned char        value[2 + SHA256_DIGEST_LENGTH];

    rc = 0;
    x = NULL;
    bn = NULL;
    oid = NULL;
    ext = NULL;
    os = NULL;

    *cert = NULL;
    *pkey = NULL;

    key = (type == EVP_PKEY_RSA)
          ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048)
          : ngx_http_claw_acme_key_new();

    if (key == NULL) {
        return 0;
    }

    x = X509_new();
    if (x == NULL) {
        goto done;
    }

    if (RAND_bytes(serial, sizeof(serial)) != 1) {
        goto done;
    }

    serial[0] &= 0x7f;

    bn = BN_bin2bn(serial, sizeof(serial), NULL);

    if (bn == NULL
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL
        || X509_set_version(x, X509_VERSION_3) != 1
        || X509_gmtime_adj(X509_getm_notBefore(x), -24 * 60 * 60) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(x), 7 * 24 * 60 * 60) == NULL
        || ngx_http_claw_acme_cn(X509_get_subject_name(x), name) != 1
        || X509_set_issuer_name(x, X509_get_subject_name(x)) != 1
        || X509_set_pubkey(x, key) != 1
        || ngx_http_claw_acme_san(&ext, name) != 1
        || X509_add_ext(x, ext, -1) != 1)
    {
        goto done;
    }

    X509_EXTENSION_free(ext);
    ext = NULL;

    /* id-pe-acmeIdentifier: not in OpenSSL's table, and not added to it */

    oid = OBJ_txt2obj(NGX_HTTP_CLAW_ACME_ID_OID, 1);
    if (oid == NULL) {
        goto done;
    }

    value[0] = V_ASN1_OCTET_STRING;
    value[1] = SHA256_DIGEST_LENGTH;

    if (SHA256((const unsigned char *) keyauth, strlen(keyauth), value + 2)
        == NULL)
    {
        goto done;
    }

    os = ASN1_OCTET_STRING_new();

    if (os == NULL
        || ASN1_OCTET_STRING_set(os, value, sizeof(value)) != 1)
    {
        goto done;
    }

    ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, os);

    if (ext == NULL
        || X509_add_ext(x, ext, -1) != 1
        || X509_sign(x, key, EVP_sha256()) <= 0)
    {
        goto done;
    }

    n = i2d_X509(x, cert);
    if (n <= 0) {
        *cert = NULL;
        goto done;
    }

    *cert_len = (size_t) n;

    n = i2d_PrivateKey(key, pkey);
    if (n <= 0) {
        *pkey = NULL;
        OPENSSL_free(*cert);
        *cert = NULL;
        goto done;
    }

    *pkey_len = (size_t) n;

    rc = 1;

done:

    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(oid);
    X509_EXTENSION_free(ext);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(key);

    return rc;
}


/* the validity of a certificate as Unix times */

int
ngx_http_claw_acme_cert_times(X509 *x, time_t *not_before, time_t *not_after)
{
    struct tm  tm;

    memset(&tm, 0, sizeof(struct tm));

    if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) != 1) {
        return 0;
    }

    *not_before = timegm(&tm);

    memset(&tm, 0, sizeof(struct tm));

    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
        return 0;
    }

    *not_after = timegm(&tm);

    return *not_before != (time_t) -1 && *not_after != (time_t) -1;
}


/*
 * Whether a certificate is one for name: "*.<domain>" must be among
 * its names as such (no wildcard matching), and <domain> too.
 */

int
ngx_http_claw_acme_cert_names(X509 *x, const char *name)
{
    if (name[0] == '*' && name[1] == '.') {
        return X509_check_host(x, name, strlen(name),
                               X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1
               && X509_check_host(x, name + 2, strlen(name + 2),
                                  X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
    }

    return X509_check_host(x, name, strlen(name), 0, NULL) == 1;
}


/* "*.<domain>" stands for itself and <domain> */

static int
ngx_http_claw_acme_san(X509_EXTENSION **ext, const char *name)
{
    int                 i, n;
    const char         *s;
    GENERAL_NAME       *gn;
    GENERAL_NAMES      *gens;
    ASN1_IA5STRING     *ia5;

    gens = sk_GENERAL_NAME_new_null();
    if (gens == NULL) {
        return 0;
    }

    n = (name[0] == '*' && name[1] == '.') ? 2 : 1;

    for (i = 0; i < n; i++) {
        s = name + 2 * i;

        gn = GENERAL_NAME_new();
        ia5 = ASN1_IA5STRING_new();

        if (gn == NULL || ia5 == NULL
            || ASN1_STRING_set(ia5, s, (int) strlen(s)) != 1)
        {
            GENERAL_NAME_free(gn);
            ASN1_IA5STRING_free(ia5);
            GENERAL_NAMES_free(gens);
            return 0;
        }

        GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);

        if (sk_GENERAL_NAME_push(gens, gn) == 0) {
            GENERAL_NAME_free(gn);
            GENERAL_NAMES_free(gens);
            return 0;
        }
    }

    *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);

    GENERAL_NAMES_free(gens);

    return *ext != NULL;
}


static int
ngx_http_claw_acme_cn(X509_NAME *subject, const char *name)
{
    if (strlen(name) > NGX_HTTP_CLAW_ACME_CN_MAX) {
        /* the subjectAltName alone names it */
        return 1;
    }

    return X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                      (const unsigned char *) name, -1, -1,
                                      0);
}
