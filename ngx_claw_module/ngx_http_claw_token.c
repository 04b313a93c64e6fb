
/*
 * Copyright (C) ngx_claw_module authors
 */


#include <string.h>

/* for the SHA256_Init() family, deprecated in OpenSSL 3.0: see below */
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "ngx_http_claw_token.h"


#define ngx_http_claw_tolower(c)                                             \
    (unsigned char) (((c) >= 'A' && (c) <= 'Z') ? ((c) | 0x20) : (c))


static const char  ngx_http_claw_b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const char  ngx_http_claw_mac_label[] = "claw-session-v1";

/* the characters of a token68 but its trailing "=": a bit per character */
static const uint32_t  ngx_http_claw_token68[] = {
    0x00000000, /* control characters */

                /* ?>=< ;:98 7654 3210  /.-, +*)( '&%$ #"!  */
    0x03ffe800, /* 0000 0011 1111 1111  1110 1000 0000 0000 */

                /* _^]\ [ZYX WVUT SRQP  ONML KJIH GFED CBA@ */
    0x87fffffe, /* 1000 0111 1111 1111  1111 1111 1111 1110 */

                /*  ~}| {zyx wvut srqp  onml kjih gfed cba` */
    0x47fffffe, /* 0100 0111 1111 1111  1111 1111 1111 1110 */

    0x00000000, 0x00000000, 0x00000000, 0x00000000
};


static void ngx_http_claw_session_mac(const unsigned char *key, size_t klen,
    const unsigned char *id, size_t idlen, uint64_t expiry,
    const unsigned char *digest, unsigned char *mac);
static int ngx_http_claw_unhex(unsigned char c);
static size_t ngx_http_claw_unescape(const unsigned char *p, size_t len,
    unsigned char *out);
static int ngx_http_claw_is_arg_name(const unsigned char *p, size_t len);


/*
 * "Bearer <token68>", the scheme in any case (RFC 9110, 11.1).  Another
 * scheme is no credential of ours; a Bearer scheme with anything but
 * one well-formed token is malformed.
 */

int
ngx_http_claw_bearer(const unsigned char *value, size_t len,
    ngx_http_claw_span_t *token)
{
    size_t                i, start, end;
    static const char     scheme[] = "bearer";

    if (len < sizeof(scheme) - 1) {
        return NGX_HTTP_CLAW_CRED_NONE;
    }

    for (i = 0; i < sizeof(scheme) - 1; i++) {
        if (ngx_http_claw_tolower(value[i]) != (unsigned char) scheme[i]) {
            return NGX_HTTP_CLAW_CRED_NONE;
        }
    }

    if (i < len && value[i] != ' ' && value[i] != '\t') {
        return NGX_HTTP_CLAW_CRED_NONE;
    }

    while (i < len && (value[i] == ' ' || value[i] == '\t')) {
        i++;
    }

    start = i;
    end = len;

    while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t')) {
        end--;
    }

    if (!ngx_http_claw_token_valid(value + start, end - start)) {
        return NGX_HTTP_CLAW_CRED_MALFORMED;
    }

    token->data = value + start;
    token->len = end - start;

    return NGX_HTTP_CLAW_CRED_OK;
}


/* token68 (RFC 9110, 11.2), bounded */

int
ngx_http_claw_token_valid(const unsigned char *p, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len == 0 || len > NGX_HTTP_CLAW_TOKEN_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = p[i];

        if (!(ngx_http_claw_token68[c >> 5] & (1U << (c & 0x1f)))) {
            break;
        }
    }

    if (i == 0) {
        return 0;
    }

    while (i < len && p[i] == '=') {
        i++;
    }

    return i == len;
}


/*
 * OpenSSL 3's EVP digests go through a provider: a fetch, a dispatch, and
 * in 3.0 an allocation of the provider's context on every
 * EVP_DigestInit_ex(), which costs more than the hash of a token.  The
 * SHA256_Init() family, deprecated in 3.0 but still there, hashes on the
 * stack with the same code (the CPU's SHA extensions where it has them);
 * SHA256_Final() wipes the block it kept.  An OpenSSL built without the
 * deprecated interfaces gets an EVP context made once per process (nginx
 * workers are single-threaded) and reused; should that fail, the one-shot
 * functions still give the right answer.
 */

#if !defined(OPENSSL_NO_DEPRECATED_3_0)

static int
ngx_http_claw_sha256(const unsigned char *a, size_t alen,
    const unsigned char *b, size_t blen, unsigned char *out)
{
    SHA256_CTX  sha;

    return SHA256_Init(&sha)
           && SHA256_Update(&sha, a, alen)
           && (blen == 0 || SHA256_Update(&sha, b, blen))
           && SHA256_Final(out, &sha);
}


void
ngx_http_claw_token_exit(void)
{
}

#else

static EVP_MD      *ngx_http_claw_sha256_md;
static EVP_MD_CTX  *ngx_http_claw_sha256_ctx;


static int
ngx_http_claw_sha256(const unsigned char *a, size_t alen,
    const unsigned char *b, size_t blen, unsigned char *out)
{
    unsigned int  n;

    if (ngx_http_claw_sha256_ctx == NULL) {

        if (ngx_http_claw_sha256_md == NULL) {
            ngx_http_claw_sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
            if (ngx_http_claw_sha256_md == NULL) {
                return 0;
            }
        }

        ngx_http_claw_sha256_ctx = EVP_MD_CTX_new();
        if (ngx_http_claw_sha256_ctx == NULL) {
            return 0;
        }
    }

    return EVP_DigestInit_ex(ngx_http_claw_sha256_ctx,
                             ngx_http_claw_sha256_md, NULL)
           && EVP_DigestUpdate(ngx_http_claw_sha256_ctx, a, alen)
           && (blen == 0
               || EVP_DigestUpdate(ngx_http_claw_sha256_ctx, b, blen))
           && EVP_DigestFinal_ex(ngx_http_claw_sha256_ctx, out, &n);
}


/* at process exit: the module is unloaded, with the pointers to these */

void
ngx_http_claw_token_exit(void)
{
    if (ngx_http_claw_sha256_ctx) {
        EVP_MD_CTX_free(ngx_http_claw_sha256_ctx);
        ngx_http_claw_sha256_ctx = NULL;
    }

    if (ngx_http_claw_sha256_md) {
        EVP_MD_free(ngx_http_claw_sha256_md);
        ngx_http_claw_sha256_md = NULL;
    }
}

#endif


void
ngx_http_claw_token_digest(const unsigned char *token, size_t len,
    unsigned char *digest)
{
    if (!ngx_http_claw_sha256(token, len, NULL, 0, digest)) {
        SHA256(token, len, digest);
    }
}


/* HMAC-SHA256 (RFC 2104) over the reused context */

void
ngx_http_claw_hmac_sha256(const unsigned char *key, size_t klen,
    const unsigned char *msg, size_t len, unsigned char *mac)
{
    size_t         i;
    unsigned int   mlen;
    unsigned char  k[64], pad[64], inner[32];

    memset(k, 0, sizeof(k));

    if (klen > sizeof(k)) {
        if (!ngx_http_claw_sha256(key, klen, NULL, 0, k)) {
            goto fallback;
        }

    } else {
        memcpy(k, key, klen);
    }

    for (i = 0; i < sizeof(pad); i++) {
        pad[i] = k[i] ^ 0x36;
    }

    if (!ngx_http_claw_sha256(pad, sizeof(pad), msg, len, inner)) {
        goto fallback;
    }

    for (i = 0; i < sizeof(pad); i++) {
        pad[i] = k[i] ^ 0x5c;
    }

    if (ngx_http_claw_sha256(pad, sizeof(pad), inner, sizeof(inner), mac)) {
        OPENSSL_cleanse(k, sizeof(k));
        OPENSSL_cleanse(pad, sizeof(pad));
        return;
    }

fallback:

    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));

    mlen = 32;
    HMAC(EVP_sha256(), key, (int) klen, msg, len, mac, &mlen);
}


/*
 * Compares against every digest, each in constant time, with no early
 * exit: the time taken tells nothing about which digest, if any, came
 * close.  Returns the index of the match or -1.
 */

int
ngx_http_claw_digest_find(const unsigned char *digest,
    const unsigned char *digests, unsigned n)
{
    int       found;
    unsigned  i, eq;

    found = -1;

    for (i = 0; i < n; i++) {
        eq = (CRYPTO_memcmp(digest, digests + i * NGX_HTTP_CLAW_DIGEST_LEN,
                            NGX_HTTP_CLAW_DIGEST_LEN)
              == 0);
        found = eq ? (int) i : found;
    }

    return found;
}


/*
 * A session cookie: base64url of version, expiry and a reference to the
 * token it was minted from (the first 8 bytes of its digest), with an
 * HMAC-SHA256 over all of that, the tenant id and the whole digest.  It
 * is worthless on another tenant (the id differs) and dies with its token
 * (the digest is no longer found).
 */

size_t
ngx_http_claw_session_encode(const unsigned char *key, size_t klen,
    const unsigned char *id, size_t idlen, uint64_t expiry,
    const unsigned char *digest, unsigned char *out)
{
    int            i;
    unsigned char  raw[NGX_HTTP_CLAW_COOKIE_RAW];

    raw[0] = NGX_HTTP_CLAW_COOKIE_VERSION;

    for (i = 0; i < 8; i++) {
        raw[1 + i] = (unsigned char) (expiry >> (56 - 8 * i));
    }

    memcpy(raw + 9, digest, 8);

    ngx_http_claw_session_mac(key, klen, id, idlen, expiry, digest,
                              raw + 17);

    return ngx_http_claw_b64url_encode(raw, sizeof(raw), out);
}


int
ngx_http_claw_session_decode(const unsigned char *value, size_t len,
    ngx_http_claw_session_t *s)
{
    int            i;
    size_t         n;
    unsigned char  raw[NGX_HTTP_CLAW_COOKIE_RAW + 2];

    if (len != NGX_HTTP_CLAW_COOKIE_LEN) {
        return -1;
    }

    if (ngx_http_claw_b64url_decode(value, len, raw, &n) != 0
        || n != NGX_HTTP_CLAW_COOKIE_RAW
        || raw[0] != NGX_HTTP_CLAW_COOKIE_VERSION)
    {
        return -1;
    }

    s->expiry = 0;

    for (i = 0; i < 8; i++) {
        s->expiry = (s->expiry << 8) | raw[1 + i];
    }

    memcpy(s->ref, raw + 9, 8);
    memcpy(s->mac, raw + 17, 32);

    return 0;
}


/*
 * Returns the index of the digest the session was minted from, or -1
 * when it has expired, outlives "now + ttl" (the ttl was lowered) or its
 * MAC does not match any of the tenant's digests.
 */

int
ngx_http_claw_session_verify(const unsigned char *key, size_t klen,
    const unsigned char *id, size_t idlen, ngx_http_claw_session_t *s,
    uint64_t now, const unsigned char *digests, unsigned n)
{
    int                   found;
    unsigned              i;
    const unsigned char  *d;
    unsigned char         mac[32];

    if (s->expiry <= now) {
        return -1;
    }

    found = -1;

    for (i = 0; i < n; i++) {
        d = digests + i * NGX_HTTP_CLAW_DIGEST_LEN;

        if (memcmp(d, s->ref, sizeof(s->ref)) != 0) {
            continue;
        }

        ngx_http_claw_session_mac(key, klen, id, idlen, s->expiry, d, mac);

        if (CRYPTO_memcmp(mac, s->mac, sizeof(mac)) == 0) {
            found = (int) i;
        }
    }

    return found;
}


/*
 * Finds the __Host-claw pairs of a Cookie header: returns 1 with the
 * first value, 0 when there is none, -1 when several disagree.
 */

int
ngx_http_claw_cookie_find(const unsigned char *header, size_t len,
    ngx_http_claw_span_t *value, unsigned *count)
{
    size_t                i, start, eq, end;
    const unsigned char  *v;
    size_t                vlen;
    static const size_t   nlen = sizeof(NGX_HTTP_CLAW_COOKIE_NAME) - 1;

    *count = 0;

    for (i = 0; i < len; i = end + 1) {

        while (i < len && (header[i] == ' ' || header[i] == '\t')) {
            i++;
        }

        start = i;

        for (end = i; end < len && header[end] != ';'; end++) {
            /* void */
        }

        for (eq = start; eq < end && header[eq] != '='; eq++) {
            /* void */
        }

        if (eq == end || eq - start != nlen
            || memcmp(header + start, NGX_HTTP_CLAW_COOKIE_NAME, nlen) != 0)
        {
            continue;
        }

        v = header + eq + 1;
        vlen = end - eq - 1;

        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) {
            vlen--;
        }

        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
            v++;
            vlen -= 2;
        }

        if (*count == 0) {
            value->data = v;
            value->len = vlen;

        } else if (vlen != value->len || memcmp(v, value->data, vlen) != 0) {
            (*count)++;
            return -1;
        }

        (*count)++;
    }

    return *count ? 1 : 0;
}


/*
 * The header without its __Host-claw pairs, joined with "; "; returns the
 * new length, at most len plus the number of ";" in it (2 * len will do).
 */

size_t
ngx_http_claw_cookie_strip(const unsigned char *header, size_t len,
    unsigned char *out)
{
    size_t               i, start, end, n;
    static const size_t  nlen = sizeof(NGX_HTTP_CLAW_COOKIE_NAME) - 1;

    n = 0;

    for (i = 0; i < len; i = end + 1) {

        while (i < len && (header[i] == ' ' || header[i] == '\t')) {
            i++;
        }

        start = i;

        for (end = i; end < len && header[end] != ';'; end++) {
            /* void */
        }

        if (end == start) {
            continue;
        }

        if (end - start > nlen
            && header[start + nlen] == '='
            && memcmp(header + start, NGX_HTTP_CLAW_COOKIE_NAME, nlen) == 0)
        {
            continue;
        }

        if (n) {
            out[n++] = ';';
            out[n++] = ' ';
        }

        memcpy(out + n, header + start, end - start);
        n += end - start;
    }

    return n;
}


/*
 * The claw_token arguments of a query string, names and values
 * percent-decoded.  Returns the number found with the first value in
 * "value" (NGX_HTTP_CLAW_TOKEN_MAX bytes; a longer value is reported with
 * vlen NGX_HTTP_CLAW_TOKEN_MAX + 1 and not copied), or -1 when several
 * disagree.
 */

int
ngx_http_claw_arg_find(const unsigned char *args, size_t len,
    unsigned char *value, size_t *vlen, unsigned *count)
{
    size_t          i, start, eq, end, n;
    unsigned char   buf[NGX_HTTP_CLAW_TOKEN_MAX * 3];

    *count = 0;
    *vlen = 0;

    for (i = 0; i <= len; i = end + 1) {
        start = i;

        for (end = i; end < len && args[end] != '&'; end++) {
            /* void */
        }

        for (eq = start; eq < end && args[eq] != '='; eq++) {
            /* void */
        }

        if (!ngx_http_claw_is_arg_name(args + start, eq - start)) {
            continue;
        }

        if (eq == end) {
            n = 0;

        } else if (end - eq - 1 > sizeof(buf)) {
            n = NGX_HTTP_CLAW_TOKEN_MAX + 1;

        } else {
            n = ngx_http_claw_unescape(args + eq + 1, end - eq - 1, buf);
        }

        if (n > NGX_HTTP_CLAW_TOKEN_MAX) {
            n = NGX_HTTP_CLAW_TOKEN_MAX + 1;
        }

        if (*count == 0) {
            *vlen = n;

            if (n <= NGX_HTTP_CLAW_TOKEN_MAX) {
                memcpy(value, buf, n);
            }

        } else if (n != *vlen
                   || (n <= NGX_HTTP_CLAW_TOKEN_MAX
                       && memcmp(value, buf, n) != 0))
        {
            (*count)++;
            return -1;
        }

        (*count)++;
    }

    return (int) *count;
}


/* the query string without its claw_token arguments */

size_t
ngx_http_claw_arg_strip(const unsigned char *args, size_t len,
    unsigned char *out)
{
    size_t  i, start, eq, end, n;

    n = 0;

    for (i = 0; i <= len; i = end + 1) {
        start = i;

        for (end = i; end < len && args[end] != '&'; end++) {
            /* void */
        }

        for (eq = start; eq < end && args[eq] != '='; eq++) {
            /* void */
        }

        if (end == start
            || ngx_http_claw_is_arg_name(args + start, eq - start))
        {
            continue;
        }

        if (n) {
            out[n++] = '&';
        }

        memcpy(out + n, args + start, end - start);
        n += end - start;
    }

    return n;
}


/*
 * A request line with every claw_token value replaced by "[redacted]",
 * for the logs.  With out NULL, returns the size the result needs.
 */

size_t
ngx_http_claw_arg_redact(const unsigned char *line, size_t len,
    unsigned char *out)
{
    size_t                 i, q, qend, start, eq, end, n;
    static const char      mark[] = "[redacted]";

    for (q = 0; q < len && line[q] != '?'; q++) {
        /* void */
    }

    for (qend = q; qend < len && line[qend] != ' '; qend++) {
        /* void */
    }

    n = 0;

    if (out) {
        memcpy(out, line, q < len ? q + 1 : len);
    }

    if (q == len) {
        return len;
    }

    n = q + 1;

    for (i = q + 1; i <= qend; i = end + 1) {
        start = i;

        for (end = i; end < qend && line[end] != '&'; end++) {
            /* void */
        }

        for (eq = start; eq < end && line[eq] != '='; eq++) {
            /* void */
        }

        if (ngx_http_claw_is_arg_name(line + start, eq - start)
            && eq < end)
        {
            if (out) {
                memcpy(out + n, line + start, eq - start + 1);
                memcpy(out + n + eq - start + 1, mark, sizeof(mark) - 1);
            }

            n += eq - start + 1 + sizeof(mark) - 1;

        } else {
            if (out) {
                memcpy(out + n, line + start, end - start);
            }

            n += end - start;
        }

        if (end < qend) {
            if (out) {
                out[n] = '&';
            }

            n++;
        }
    }

    if (out) {
        memcpy(out + n, line + qend, len - qend);
    }

    return n + len - qend;
}


/*
 * A request line with the fragment of its target ("#" up to the space
 * before the protocol) shown as "#[redacted]": no client sends one, and
 * what follows a "#" is no argument, so a claw_token there escapes
 * ngx_http_claw_arg_redact().  With out NULL, the length it needs.
 */

size_t
ngx_http_claw_fragment_redact(const unsigned char *line, size_t len,
    unsigned char *out)
{
    size_t               h, end, n;
    static const char    mark[] = "#[redacted]";

    for (h = 0; h < len && line[h] != '#'; h++) {
        /* void */
    }

    if (h == len) {
        if (out) {
            memcpy(out, line, len);
        }

        return len;
    }

    for (end = h; end < len && line[end] != ' '; end++) {
        /* void */
    }

    n = h + sizeof(mark) - 1 + len - end;

    if (out) {
        memcpy(out, line, h);
        memcpy(out + h, mark, sizeof(mark) - 1);
        memcpy(out + h + sizeof(mark) - 1, line + end, len - end);
    }

    return n;
}


/*
 * "scheme://host[:port]": the scheme as it is, the host canonical.
 * Returns 0 for a name, -1 for anything else ("null", addresses, paths).
 */

int
ngx_http_claw_origin_host(const unsigned char *origin, size_t len,
    ngx_http_claw_span_t *scheme, unsigned char *host, size_t *hlen)
{
    size_t  i;

    for (i = 0; i < len && origin[i] != ':'; i++) {
        /* void */
    }

    if (i == 0 || len - i < 4 || origin[i + 1] != '/' || origin[i + 2] != '/')
    {
        return -1;
    }

    scheme->data = origin;
    scheme->len = i;

    origin += i + 3;
    len -= i + 3;

    if (memchr(origin, '/', len) != NULL) {
        return -1;
    }

    if (ngx_http_claw_host_canon(origin, len, host, hlen)
        != NGX_HTTP_CLAW_HOST_NAME)
    {
        return -1;
    }

    return 0;
}


/*
 * base64url (RFC 4648, 5) without padding, the one implementation of the
 * tree: session cookies here, and the JWS, JWK thumbprints and CSRs of
 * the ACME client (ngx_http_claw_acme_jws.c).
 */

size_t
ngx_http_claw_b64url_encode(const unsigned char *in, size_t len,
    unsigned char *out)
{
    size_t        i, n;
    unsigned int  v;

    n = 0;

    for (i = 0; i + 2 < len; i += 3) {
        v = (unsigned int) in[i] << 16 | (unsigned int) in[i + 1] << 8
            | in[i + 2];
        out[n++] = ngx_http_claw_b64url[(v >> 18) & 63];
        out[n++] = ngx_http_claw_b64url[(v >> 12) & 63];
        out[n++] = ngx_http_claw_b64url[(v >> 6) & 63];
        out[n++] = ngx_http_claw_b64url[v & 63];
    }

    if (len - i == 1) {
        v = (unsigned int) in[i] << 16;
        out[n++] = ngx_http_claw_b64url[(v >> 18) & 63];
        out[n++] = ngx_http_claw_b64url[(v >> 12) & 63];

    } else if (len - i == 2) {
        v = (unsigned int) in[i] << 16 | (unsigned int) in[i + 1] << 8;
        out[n++] = ngx_http_claw_b64url[(v >> 18) & 63];
        out[n++] = ngx_http_claw_b64url[(v >> 12) & 63];
        out[n++] = ngx_http_claw_b64url[(v >> 6) & 63];
    }

    return n;
}


int
ngx_http_claw_b64url_decode(const unsigned char *in, size_t len,
    unsigned char *out, size_t *olen)
{
    int            d;
    size_t         i, n;
    unsigned int   v, bits;
    unsigned char  c;

    n = 0;
    v = 0;
    bits = 0;

    if (len % 4 == 1) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        c = in[i];

        if (c >= 'A' && c <= 'Z') {
            d = c - 'A';

        } else if (c >= 'a' && c <= 'z') {
            d = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            d = c - '0' + 52;

        } else if (c == '-') {
            d = 62;

        } else if (c == '_') {
            d = 63;

        } else {
            return -1;
        }

        v = (v << 6) | (unsigned int) d;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char) (v >> bits);
            v &= (1u << bits) - 1;
        }
    }

    /* canonical encodings only: the unused low bits are zero */

    if (v != 0) {
        return -1;
    }

    *olen = n;

    return 0;
}


static void
ngx_http_claw_session_mac(const unsigned char *key, size_t klen,
    const unsigned char *id, size_t idlen, uint64_t expiry,
    const unsigned char *digest, unsigned char *mac)
{
    int            i;
    size_t         n;
    unsigned char  msg[sizeof(ngx_http_claw_mac_label) + NGX_HTTP_CLAW_ID_MAX
                       + 1 + 8 + NGX_HTTP_CLAW_DIGEST_LEN];

    memcpy(msg, ngx_http_claw_mac_label, sizeof(ngx_http_claw_mac_label));
    n = sizeof(ngx_http_claw_mac_label);              /* with its NUL */

    memcpy(msg + n, id, idlen);
    n += idlen;
    msg[n++] = '\0';

    for (i = 0; i < 8; i++) {
        msg[n++] = (unsigned char) (expiry >> (56 - 8 * i));
    }

    memcpy(msg + n, digest, NGX_HTTP_CLAW_DIGEST_LEN);
    n += NGX_HTTP_CLAW_DIGEST_LEN;

    ngx_http_claw_hmac_sha256(key, klen, msg, n, mac);
}


static int
ngx_http_claw_unhex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c = ngx_http_claw_tolower(c);

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


static size_t
ngx_http_claw_unescape(const unsigned char *p, size_t len, unsigned char *out)
{
    int     hi, lo;
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] == '%' && i + 2 < len) {
            hi = ngx_http_claw_unhex(p[i + 1]);
            lo = ngx_http_claw_unhex(p[i + 2]);

            if (hi >= 0 && lo >= 0) {
                out[n++] = (unsigned char) (hi << 4 | lo);
                i += 2;
                continue;
            }
        }

        out[n++] = p[i];
    }

    return n;
}


/* "claw_token", also when spelled with percent-escapes */

static int
ngx_http_claw_is_arg_name(const unsigned char *p, size_t len)
{
    size_t          i, n;
    unsigned char   buf[sizeof(NGX_HTTP_CLAW_ARG_NAME) * 3];

    if (len < sizeof(NGX_HTTP_CLAW_ARG_NAME) - 1 || len > sizeof(buf)) {
        return 0;
    }

    n = ngx_http_claw_unescape(p, len, buf);

    if (n != sizeof(NGX_HTTP_CLAW_ARG_NAME) - 1) {
        return 0;
    }

    /* in any case, as nginx's $arg_ variables match names */

    for (i = 0; i < n; i++) {
        if (ngx_http_claw_tolower(buf[i])
            != (unsigned char) NGX_HTTP_CLAW_ARG_NAME[i])
        {
            return 0;
        }
    }

    return 1;
}
