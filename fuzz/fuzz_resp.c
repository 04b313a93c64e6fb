
/*
 * RESP replies from a Redis-protocol server, ngx_http_claw_resp_scan()
 * and _parse(), as the cluster link calls them: on whatever a server (or
 * whoever answers on its address) sends, fed as it arrives.
 *
 * Properties: a scan is complete (> 0), incomplete (0) or malformed
 * (-1); a complete reply lies within the input, and scanning any prefix
 * of it says incomplete, never malformed or complete; parsing it fills
 * exactly the counted nodes, every string lies within the reply and
 * every array's elements are among the nodes.
 */


#include "fuzz.h"


static size_t
check_node(const ngx_http_claw_resp_t *r, const uint8_t *data, size_t len,
    const ngx_http_claw_resp_t *nodes, size_t n)
{
    size_t  i, count;

    CHECK(r->str == NULL
          || (r->str >= data && r->str + r->len <= data + len));

    if (r->type != '*') {
        CHECK(r->nelts == 0);
        return 1;
    }

    CHECK(r->nelts == 0
          || (r->elts > nodes && r->elts + r->nelts <= nodes + n));

    count = 1;

    for (i = 0; i < r->nelts; i++) {
        count += check_node(&r->elts[i], data, len, nodes, n);
    }

    return count;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long                   n;
    size_t                 nodes, again, cut;
    ngx_http_claw_resp_t  *r;

    n = ngx_http_claw_resp_scan(data, size, &nodes);

    CHECK(n >= -1 && n <= (long) size);

    if (n <= 0) {
        return 0;
    }

    for (cut = 0; cut < (size_t) n; cut += 1 + cut / 4) {
        CHECK(ngx_http_claw_resp_scan(data, cut, &again) == 0);
    }

    r = calloc(nodes, sizeof(ngx_http_claw_resp_t));
    CHECK(r != NULL);

    ngx_http_claw_resp_parse(data, n, r);

    CHECK(check_node(r, data, n, r, nodes) == nodes);

    free(r);

    return 0;
}
