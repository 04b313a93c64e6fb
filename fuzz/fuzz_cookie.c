
/*
 * The cookie codec as the module runs it on every Cookie header:
 * ngx_http_claw_cookie_find(), then ngx_http_claw_cookie_strip() into a
 * buffer of the size it promises, then ngx_http_claw_session_decode()
 * and _verify() on the value found.
 */


#include "fuzz.h"


static const char  b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


static void
check_session(const unsigned char *value, size_t len)
{
    int                      i, same, idx;
    size_t                   n;
    unsigned char           *v, key[32], digests[2][32], enc[NGX_HTTP_CLAW_COOKIE_LEN];
    ngx_http_claw_session_t  s, s2;

    v = fuzz_dup(value, len);

    if (ngx_http_claw_session_decode(v, len, &s) != 0) {
        free(v);
        return;
    }

    CHECK(len == NGX_HTTP_CLAW_COOKIE_LEN);

    for (n = 0; n < len; n++) {
        CHECK(strchr(b64url, v[n]) != NULL && v[n] != '\0');
    }

    /*
     * Canonical: of the 64 characters the last position can take, only
     * the one there decodes to this session (no unused bits set).
     */

    same = 0;

    for (i = 0; i < 64; i++) {
        unsigned char  keep = v[len - 1];

        v[len - 1] = (unsigned char) b64url[i];

        if (ngx_http_claw_session_decode(v, len, &s2) == 0
            && s2.expiry == s.expiry
            && memcmp(s2.ref, s.ref, sizeof(s.ref)) == 0
            && memcmp(s2.mac, s.mac, sizeof(s.mac)) == 0)
        {
            same++;
        }

        v[len - 1] = keep;
    }

    CHECK(same == 1);

    /* a forged cookie verifies only if it is what the key would mint */

    memset(key, 'k', sizeof(key));
    memset(digests[0], 0, sizeof(digests[0]));
    memcpy(digests[0], s.ref, sizeof(s.ref));
    memset(digests[1], 0xff, sizeof(digests[1]));

    idx = ngx_http_claw_session_verify(key, sizeof(key),
                                       (const unsigned char *) "alice", 5,
                                       &s, 0, digests[0], 2);
    CHECK(idx == -1 || idx == 0);

    if (idx == 0) {
        n = ngx_http_claw_session_encode(key, sizeof(key),
                                         (const unsigned char *) "alice", 5,
                                         s.expiry, digests[0], enc);
        CHECK(n == len && memcmp(enc, v, len) == 0);
    }

    /* the expiry is checked before anything else */
    CHECK(ngx_http_claw_session_verify(key, sizeof(key),
                                       (const unsigned char *) "alice", 5,
                                       &s, s.expiry, digests[0], 2) == -1);

    free(v);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    rc, rc2;
    size_t                 n, i, bound;
    unsigned               count, count2;
    unsigned char         *in, *out;
    ngx_http_claw_span_t   value, value2;

    in = fuzz_dup(data, size);

    rc = ngx_http_claw_cookie_find(in, size, &value, &count);

    CHECK(rc == -1 || rc == 0 || rc == 1);
    CHECK((rc == 0) == (count == 0));
    CHECK(rc != -1 || count >= 2);

    if (rc == 0) {
        free(in);
        return 0;
    }

    if (rc == 1) {
        CHECK(fuzz_within(value.data, value.len, in, size));
        check_session(value.data, value.len);
    }

    /*
     * The pairs kept are joined with "; ": the result is at most the
     * header's length plus one byte per ";" in it, which is what the
     * caller must allocate.  (ngx_http_claw_auth.c allocated the header's
     * length alone: the heap overflow this target found, see
     * docs/hardening.md and fuzz/crashes/cookie/.)  A buffer of exactly
     * that bound: ASan reports a byte more.
     */

    bound = size;

    for (i = 0; i < size; i++) {
        bound += in[i] == ';';
    }

    out = fuzz_out(bound);
    n = ngx_http_claw_cookie_strip(in, size, out);

    CHECK(n <= bound);

    /* nothing left of ours */

    rc2 = ngx_http_claw_cookie_find(out, n, &value2, &count2);
    CHECK(rc2 == 0 && count2 == 0);

    /* and what is left is well formed: no empty pairs, "; " between */
    if (n) {
        CHECK(out[0] != ';' && out[n - 1] != ';');
    }

    free(out);
    free(in);

    return 0;
}
