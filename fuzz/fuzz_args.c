
/*
 * The claw_token argument functions, as the module runs them on every
 * request with a query string:
 *
 *   ngx_http_claw_arg_find()    the token, names and values %-decoded;
 *   ngx_http_claw_arg_strip()   into a buffer of the args' length: what
 *                               the container gets never contains a
 *                               claw_token that arg_find would decode;
 *   ngx_http_claw_arg_redact()  sized with out NULL, then written into
 *                               exactly that: it never writes more than
 *                               it returned, and no claw_token value of
 *                               the query survives in the log line.
 *
 * Input: a request line ("GET /p?a=1&claw_token=x HTTP/1.1") for the
 * redaction; its query (from the first '?' to the first ' ') for find
 * and strip, and the whole input as args too.
 */


#include "fuzz.h"


static int
hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


/* the reference decoder: %XX with two hex digits, anything else as is */

static size_t
unescape(const unsigned char *p, size_t len, unsigned char *out)
{
    size_t  i, n;

    for (i = 0, n = 0; i < len; i++) {
        if (p[i] == '%' && len - i >= 3 && hex(p[i + 1]) >= 0
            && hex(p[i + 2]) >= 0)
        {
            out[n++] = (unsigned char) (hex(p[i + 1]) << 4 | hex(p[i + 2]));
            i += 2;
            continue;
        }

        out[n++] = p[i];
    }

    return n;
}


/* "claw_token" in any case, as nginx's $arg_ variables match names */

static int
is_name(const unsigned char *p, size_t len)
{
    size_t          n;
    unsigned char  *buf;
    int             rc;

    buf = fuzz_out(len);
    n = unescape(p, len, buf);
    rc = n == 10 && strncasecmp((char *) buf, "claw_token", 10) == 0;
    free(buf);

    return rc;
}


/* the reference: how many claw_token arguments, with and without '=' */

static unsigned
count_args(const unsigned char *p, size_t len, unsigned *with_value)
{
    size_t    i, start, eq, end;
    unsigned  n;

    n = 0;
    *with_value = 0;

    for (i = 0; i <= len; i = end + 1) {
        start = i;

        for (end = i; end < len && p[end] != '&'; end++) { /* void */ }
        for (eq = start; eq < end && p[eq] != '='; eq++) { /* void */ }

        if (is_name(p + start, eq - start)) {
            n++;

            if (eq < end) {
                (*with_value)++;
            }
        }
    }

    return n;
}


static void
check_args(const unsigned char *args, size_t len)
{
    int             rc, rc2;
    size_t          vlen, vlen2, n, ulen;
    unsigned        count, count2, want, with_value;
    unsigned char  *in, *out, *value, *ref;

    in = fuzz_dup(args, len);
    value = fuzz_out(NGX_HTTP_CLAW_TOKEN_MAX);

    rc = ngx_http_claw_arg_find(in, len, value, &vlen, &count);

    want = count_args(in, len, &with_value);

    CHECK(rc == -1 || rc == (int) count);
    CHECK(rc == -1 ? count >= 2 && count <= want : count == want);
    CHECK(vlen <= NGX_HTTP_CLAW_TOKEN_MAX + 1);

    if (rc > 0 && vlen <= NGX_HTTP_CLAW_TOKEN_MAX) {
        /* the first one, decoded */
        const unsigned char  *p, *end, *eq;

        p = in;
        for ( ;; ) {
            end = memchr(p, '&', len - (p - in));
            end = end ? end : in + len;
            eq = memchr(p, '=', end - p);

            if (is_name(p, (eq ? eq : end) - p)) {
                break;
            }

            p = end + 1;
        }

        ref = fuzz_out(len);
        ulen = eq ? unescape(eq + 1, end - eq - 1, ref) : 0;
        CHECK(ulen == vlen && memcmp(ref, value, vlen) == 0);
        free(ref);
    }

    /* stripping: the container gets the args without any claw_token */

    out = fuzz_out(len);
    n = ngx_http_claw_arg_strip(in, len, out);

    CHECK(n <= len);

    rc2 = ngx_http_claw_arg_find(out, n, value, &vlen2, &count2);
    CHECK(rc2 == 0 && count2 == 0);

    if (want == 0) {
        /* nothing to take off: only empty arguments go */
        CHECK(n <= len);
    }

    if (n) {
        CHECK(out[0] != '&' && out[n - 1] != '&');
        CHECK(memmem(out, n, "&&", 2) == NULL);
    }

    free(out);
    free(value);
    free(in);
}


static void
check_redact(const unsigned char *line, size_t len)
{
    size_t          n, m, q, qend, i, start, eq, end;
    unsigned        with_value, before;
    unsigned char  *in, *out;

    in = fuzz_dup(line, len);

    n = ngx_http_claw_arg_redact(in, len, NULL);

    out = fuzz_out(n);
    m = ngx_http_claw_arg_redact(in, len, out);

    CHECK(m == n);

    /* the same text up to the query */

    for (q = 0; q < len && in[q] != '?'; q++) { /* void */ }

    CHECK(n >= (q < len ? q + 1 : len));
    CHECK(memcmp(out, in, q < len ? q + 1 : len) == 0);

    if (q == len) {
        CHECK(n == len);
        goto done;
    }

    for (qend = q; qend < len && in[qend] != ' '; qend++) { /* void */ }

    /* the same text after the query */

    CHECK(n - (q + 1) >= len - qend);
    CHECK(memcmp(out + n - (len - qend), in + qend, len - qend) == 0);

    /* every claw_token value of the query is "[redacted]" */

    before = count_args(in + q + 1, qend - q - 1, &with_value);

    {
        const unsigned char  *r = out + q + 1;
        size_t                rlen = n - (len - qend) - (q + 1);
        unsigned              after, after_value;

        after = count_args(r, rlen, &after_value);
        CHECK(after == before && after_value == with_value);

        for (i = 0; i <= rlen; i = end + 1) {
            start = i;

            for (end = i; end < rlen && r[end] != '&'; end++) { /* void */ }
            for (eq = start; eq < end && r[eq] != '='; eq++) { /* void */ }

            if (eq < end && is_name(r + start, eq - start)) {
                CHECK(end - eq - 1 == 10
                      && memcmp(r + eq + 1, "[redacted]", 10) == 0);
            }
        }
    }

done:

    free(out);
    free(in);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t  q, qend;

    check_redact(data, size);
    check_args(data, size);

    q = fuzz_split(data, size, '?');

    if (q < size) {
        for (qend = q + 1; qend < size && data[qend] != ' '; qend++) {
            /* void */
        }

        check_args(data + q + 1, qend - q - 1);
    }

    return 0;
}
