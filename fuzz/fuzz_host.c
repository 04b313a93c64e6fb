
/*
 * Host canonicalisation: ngx_http_claw_host_canon() on any Host,
 * :authority or SNI value, ngx_http_claw_host_label() against a
 * claw_domain suffix, and the name checks of the registry
 * (ngx_http_claw_valid_id/domain/suffix).
 *
 * Input: "<host>/<suffix>" ('/' is in neither a host nor a suffix).
 */


#include "fuzz.h"


static int
ldh(const unsigned char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')
              || p[i] == '-' || p[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


static void
check_canon(const unsigned char *in, size_t len)
{
    int             rc, rc2;
    size_t          outlen, outlen2;
    unsigned char  *out, *again;

    /* the module's buffer is NGX_HTTP_CLAW_HOST_MAX bytes */
    out = fuzz_out(NGX_HTTP_CLAW_HOST_MAX);

    rc = ngx_http_claw_host_canon(in, len, out, &outlen);

    CHECK(rc >= NGX_HTTP_CLAW_HOST_NAME && rc <= NGX_HTTP_CLAW_HOST_INVALID);
    CHECK((rc == NGX_HTTP_CLAW_HOST_EMPTY) == (len == 0));

    if (rc == NGX_HTTP_CLAW_HOST_NAME) {
        CHECK(outlen >= 1 && outlen <= NGX_HTTP_CLAW_HOST_MAX);
        CHECK(ldh(out, outlen));
        CHECK(out[0] != '.' && out[outlen - 1] != '.');
        CHECK(out[0] != '-' && out[outlen - 1] != '-');
        CHECK(memmem(out, outlen, "..", 2) == NULL);

        /* canonical means a fixed point */

        again = fuzz_out(NGX_HTTP_CLAW_HOST_MAX);
        rc2 = ngx_http_claw_host_canon(out, outlen, again, &outlen2);
        CHECK(rc2 == NGX_HTTP_CLAW_HOST_NAME);
        CHECK(outlen2 == outlen && memcmp(again, out, outlen) == 0);
        free(again);

        /* case does not matter */

        if (len > outlen && in[0] != '[') {
            unsigned char  *mixed;

            mixed = fuzz_dup(out, outlen);
            mixed[0] = (unsigned char) (mixed[0] >= 'a' && mixed[0] <= 'z'
                                        ? mixed[0] - 32 : mixed[0]);
            again = fuzz_out(NGX_HTTP_CLAW_HOST_MAX);
            rc2 = ngx_http_claw_host_canon(mixed, outlen, again, &outlen2);
            CHECK(rc2 == NGX_HTTP_CLAW_HOST_NAME && outlen2 == outlen
                  && memcmp(again, out, outlen) == 0);
            free(again);
            free(mixed);
        }
    }

    if (len && in[0] == '[') {
        CHECK(rc == NGX_HTTP_CLAW_HOST_IP);
    }

    free(out);
}


static void
check_label(const unsigned char *host, size_t hlen, const unsigned char *sfx,
    size_t slen)
{
    int                    rc, expect;
    size_t                 canon_len, n, llen;
    unsigned char         *canon, *suffix;
    ngx_http_claw_span_t   label;

    canon = fuzz_out(NGX_HTTP_CLAW_HOST_MAX);

    if (ngx_http_claw_host_canon(host, hlen, canon, &canon_len)
        != NGX_HTTP_CLAW_HOST_NAME)
    {
        free(canon);
        return;
    }

    suffix = fuzz_dup(sfx, slen);
    n = slen;

    if (ngx_http_claw_valid_suffix(suffix, &n) != 0) {
        free(suffix);
        free(canon);
        return;
    }

    CHECK(n >= 1 && n <= slen && ldh(suffix, n));

    rc = ngx_http_claw_host_label(canon, canon_len, suffix, n, &label);

    /* the reference: exactly "<valid id>.<suffix>" */

    expect = 0;

    if (canon_len >= n + 2) {
        llen = canon_len - n - 1;
        expect = canon[llen] == '.'
                 && memcmp(canon + llen + 1, suffix, n) == 0
                 && memchr(canon, '.', llen) == NULL
                 && ngx_http_claw_valid_id(canon, llen);
    }

    CHECK(rc == expect);

    if (rc) {
        CHECK(label.data == canon);
        CHECK(label.len >= 1 && label.len <= NGX_HTTP_CLAW_ID_MAX);
        CHECK(label.len + 1 + n == canon_len);
        CHECK(ngx_http_claw_valid_id(label.data, label.len));
    }

    free(suffix);
    free(canon);
}


static void
check_names(const unsigned char *in, size_t len)
{
    size_t          n, n2, i;
    unsigned char  *p;

    /* a tenant id: the DNS label rules, lowercase only */

    if (ngx_http_claw_valid_id(in, len)) {
        CHECK(len >= 1 && len <= NGX_HTTP_CLAW_ID_MAX);
        CHECK(ldh(in, len) && memchr(in, '.', len) == NULL);
        CHECK(in[0] != '-' && in[len - 1] != '-');
        CHECK(!(len >= 4 && memcmp(in, "xn--", 4) == 0));
    }

    /* a custom domain: lowercased in place, idempotent, two labels */

    p = fuzz_dup(in, len);
    n = len;

    if (ngx_http_claw_valid_domain(p, &n) == 0) {
        CHECK(n >= 3 && n <= NGX_HTTP_CLAW_HOST_MAX && n <= len);
        CHECK(ldh(p, n) && memchr(p, '.', n) != NULL);

        n2 = n;
        CHECK(ngx_http_claw_valid_domain(p, &n2) == 0 && n2 == n);

        /* a valid domain is a canonical host name */
        {
            size_t          clen;
            unsigned char  *c = fuzz_out(NGX_HTTP_CLAW_HOST_MAX);

            CHECK(ngx_http_claw_host_canon(p, n, c, &clen)
                  == NGX_HTTP_CLAW_HOST_NAME);
            CHECK(clen == n && memcmp(c, p, n) == 0);
            free(c);
        }

        for (i = 0; i < n; i++) {
            CHECK(!(in[i] >= 'A' && in[i] <= 'Z') || p[i] == (in[i] | 0x20));
        }
    }

    free(p);

    p = fuzz_dup(in, len);
    n = len;

    if (ngx_http_claw_valid_suffix(p, &n) == 0) {
        CHECK(n >= 1 && n <= NGX_HTTP_CLAW_HOST_MAX - 2 && ldh(p, n));
        n2 = n;
        CHECK(ngx_http_claw_valid_suffix(p, &n2) == 0 && n2 == n);
    }

    free(p);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          hlen;
    unsigned char  *host, *sfx;

    hlen = fuzz_split(data, size, '/');

    host = fuzz_dup(data, hlen);
    sfx = fuzz_dup(data + hlen + (hlen < size), size - hlen - (hlen < size));

    check_canon(host, hlen);
    check_names(host, hlen);
    check_label(host, hlen, sfx, size - hlen - (hlen < size));

    free(sfx);
    free(host);

    /* the whole input as one host too: '/' must be refused */
    {
        unsigned char  *all = fuzz_dup(data, size);

        check_canon(all, size);
        free(all);
    }

    return 0;
}
