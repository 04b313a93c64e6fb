
/*
 * Session cookies end to end: a cookie minted by
 * ngx_http_claw_session_encode() from any key, tenant id, expiry and
 * token digest decodes to what was put in and verifies for exactly that
 * tenant, token, key and time; a cookie with any one character changed,
 * another id, another key, a removed token or a later time does not.
 */


#include "fuzz.h"


typedef struct {
    const uint8_t  *p;
    size_t          left;
} reader_t;


static uint8_t
byte(reader_t *r)
{
    if (r->left == 0) {
        return 0;
    }

    r->left--;
    return *r->p++;
}


static uint64_t
u64(reader_t *r)
{
    int       i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < 8; i++) {
        v = v << 8 | byte(r);
    }

    return v;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                      idx, i;
    size_t                   klen, idlen, n, j, nd, pick;
    uint64_t                 expiry, now;
    reader_t                 r;
    unsigned char           *key, *id, *cookie, *digests;
    ngx_http_claw_session_t  s;
    static const char        alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";

    r.p = data;
    r.left = size;

    /* a key of 32 to 4096 bytes, as claw_cookie_secret allows */
    klen = 32 + (((size_t) byte(&r) << 8 | byte(&r)) % (4096 - 32 + 1));
    key = fuzz_out(klen);

    for (j = 0; j < klen; j++) {
        key[j] = byte(&r);
    }

    /* a valid tenant id of 1 to 63 characters */
    idlen = 1 + byte(&r) % NGX_HTTP_CLAW_ID_MAX;
    id = fuzz_out(idlen);

    for (j = 0; j < idlen; j++) {
        id[j] = (unsigned char) alnum[byte(&r) % (sizeof(alnum) - 1)];
    }

    expiry = u64(&r);
    now = u64(&r);

    /* 1 to 16 distinct token digests */
    nd = 1 + byte(&r) % NGX_HTTP_CLAW_MAX_TOKENS;
    digests = fuzz_out(nd * NGX_HTTP_CLAW_DIGEST_LEN);

    for (j = 0; j < nd; j++) {
        unsigned char  seed[9];

        seed[0] = (unsigned char) j;
        for (i = 1; i < 9; i++) {
            seed[i] = byte(&r);
        }

        ngx_http_claw_token_digest(seed, sizeof(seed),
                                   digests + j * NGX_HTTP_CLAW_DIGEST_LEN);
    }

    pick = byte(&r) % nd;

    cookie = fuzz_out(NGX_HTTP_CLAW_COOKIE_LEN);

    n = ngx_http_claw_session_encode(key, klen, id, idlen, expiry,
                                     digests + pick * NGX_HTTP_CLAW_DIGEST_LEN,
                                     cookie);

    CHECK(n == NGX_HTTP_CLAW_COOKIE_LEN);
    CHECK(ngx_http_claw_session_decode(cookie, n, &s) == 0);
    CHECK(s.expiry == expiry);
    CHECK(memcmp(s.ref, digests + pick * NGX_HTTP_CLAW_DIGEST_LEN, 8) == 0);

    idx = ngx_http_claw_session_verify(key, klen, id, idlen, &s, now,
                                       digests, (unsigned) nd);

    if (now < expiry) {
        /* digests are distinct, so this one */
        CHECK(idx == (int) pick);

    } else {
        CHECK(idx == -1);
    }

    if (now < expiry) {
        /* the token removed */
        CHECK(ngx_http_claw_session_verify(key, klen, id, idlen, &s, now,
                                           digests, (unsigned) pick) == -1);

        /* another tenant: one character more, or a different one */
        if (idlen < NGX_HTTP_CLAW_ID_MAX) {
            unsigned char  *longer = fuzz_out(idlen + 1);

            memcpy(longer, id, idlen);
            longer[idlen] = 'x';
            CHECK(ngx_http_claw_session_verify(key, klen, longer, idlen + 1,
                                               &s, now, digests,
                                               (unsigned) nd) == -1);
            free(longer);
        }

        {
            unsigned char  was = id[0];

            id[0] = was == 'a' ? 'b' : 'a';
            CHECK(ngx_http_claw_session_verify(key, klen, id, idlen, &s, now,
                                               digests, (unsigned) nd)
                  == -1);
            id[0] = was;
        }

        /* another key */
        {
            unsigned char  *other = fuzz_dup(key, klen);

            other[byte(&r) % klen] ^= (unsigned char) (1 + byte(&r) % 255);
            CHECK(ngx_http_claw_session_verify(other, klen, id, idlen, &s,
                                               now, digests, (unsigned) nd)
                  == -1);
            free(other);
        }
    }

    /* any character changed: no longer decodes, or no longer verifies */
    {
        size_t              pos;
        unsigned char       was;
        static const char   b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

        pos = byte(&r) % n;
        was = cookie[pos];
        cookie[pos] = (unsigned char) b64[byte(&r) % 64];

        if (cookie[pos] != was
            && ngx_http_claw_session_decode(cookie, n, &s) == 0)
        {
            CHECK(ngx_http_claw_session_verify(key, klen, id, idlen, &s, 0,
                                               digests, (unsigned) nd)
                  == -1);
        }

        cookie[pos] = was;
    }

    free(cookie);
    free(digests);
    free(id);
    free(key);

    return 0;
}
