
/*
 * Origin parsing: ngx_http_claw_origin_host() on any Origin header of a
 * WebSocket upgrade ("scheme://host[:port]"); a cookie-authenticated
 * upgrade is let through only for a host this returns.
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    rc;
    size_t                 hlen, clen, i;
    unsigned char         *in, *host, *canon;
    ngx_http_claw_span_t   scheme;

    in = fuzz_dup(data, size);
    host = fuzz_out(NGX_HTTP_CLAW_HOST_MAX);

    rc = ngx_http_claw_origin_host(in, size, &scheme, host, &hlen);

    CHECK(rc == 0 || rc == -1);

    if (rc == 0) {
        /* the scheme is the text before "://" */
        CHECK(scheme.data == in && scheme.len >= 1);
        CHECK(scheme.len + 3 < size);
        CHECK(memcmp(in + scheme.len, "://", 3) == 0);
        CHECK(memchr(in, ':', scheme.len) == NULL);

        /* no path, query or fragment after the authority */
        CHECK(memchr(in + scheme.len + 3, '/', size - scheme.len - 3)
              == NULL);

        /* the host is canonical: a name, not an address */
        CHECK(hlen >= 1 && hlen <= NGX_HTTP_CLAW_HOST_MAX);

        canon = fuzz_out(NGX_HTTP_CLAW_HOST_MAX);
        CHECK(ngx_http_claw_host_canon(host, hlen, canon, &clen)
              == NGX_HTTP_CLAW_HOST_NAME);
        CHECK(clen == hlen && memcmp(canon, host, hlen) == 0);
        free(canon);

        /* and it is what the authority says, lowercased */
        for (i = 0; i < hlen; i++) {
            unsigned char  c = in[scheme.len + 3 + i];

            CHECK(host[i] == ((c >= 'A' && c <= 'Z') ? (c | 0x20) : c));
        }

        /* userinfo never makes it a name */
        CHECK(memchr(in + scheme.len + 3, '@', size - scheme.len - 3)
              == NULL);
    }

    free(host);
    free(in);

    return 0;
}
