
/*
 * The registry: ngx_http_claw_parse_line() on any line of the file or
 * the journal (operator input), and the field parsers it uses on their
 * own: ngx_http_claw_parse_upstream(), _parse_rate(), _parse_number(),
 * _parse_digest().
 *
 * Properties: a line is a tenant (1), blank or a comment (0), or an
 * error (-1) whose reason is set and whose text lies within the line;
 * every span of a tenant lies within the line and holds a valid value;
 * a tenant written back as a line in the documented format parses to
 * the same tenant (what the journal and the fold rely on); an upstream
 * formatted back from its address parses to the same address, and a
 * unix path leaves room for the balancer's tenant tag.
 */


#include <arpa/inet.h>

#include "fuzz.h"


#define LINE_MAX_OUT  (64 + 1 + NGX_HTTP_CLAW_UPSTREAM_MAX                   \
                       + NGX_HTTP_CLAW_MAX_TOKENS * 80 + 64                   \
                       + NGX_HTTP_CLAW_MAX_DOMAINS * (8 + 254) + 16)


static size_t
put(unsigned char *p, const void *s, size_t len)
{
    memcpy(p, s, len);
    return len;
}


/* the documented format, written independently of the module's writer */

static size_t
format_line(ngx_http_claw_entry_t *e, unsigned char *buf)
{
    size_t    n;
    unsigned  i, j;
    char      tmp[64];

    n = 0;
    n += put(buf + n, e->id.data, e->id.len);
    buf[n++] = ' ';
    n += put(buf + n, e->upstream.data, e->upstream.len);

    for (i = 0; i < e->ntokens; i++) {
        n += put(buf + n, " token=sha256:", 14);

        for (j = 0; j < NGX_HTTP_CLAW_DIGEST_LEN; j++) {
            n += (size_t) sprintf((char *) buf + n, "%02x", e->tokens[i][j]);
        }
    }

    if (e->rate.number) {
        n += put(buf + n, tmp,
                 (size_t) snprintf(tmp, sizeof(tmp), " rate=%ur/%c",
                                   e->rate.number,
                                   e->rate.period == 1 ? 's' : 'm'));
    }

    if (e->burst >= 0) {
        n += put(buf + n, tmp,
                 (size_t) snprintf(tmp, sizeof(tmp), " burst=%lld",
                                   (long long) e->burst));
    }

    if (e->conn >= 0) {
        n += put(buf + n, tmp,
                 (size_t) snprintf(tmp, sizeof(tmp), " conn=%lld",
                                   (long long) e->conn));
    }

    for (i = 0; i < e->ndomains; i++) {
        n += put(buf + n, " domain=", 8);
        n += put(buf + n, e->domains[i].data, e->domains[i].len);
    }

    return n;
}


static int
span_eq(ngx_http_claw_span_t *a, ngx_http_claw_span_t *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}


static void
check_upstream(const unsigned char *p, size_t len)
{
    int                    rc;
    char                   text[NGX_HTTP_CLAW_UPSTREAM_MAX + 64];
    char                   a[INET6_ADDRSTRLEN];
    size_t                 tlen;
    socklen_t              socklen, socklen2;
    unsigned char         *in;
    ngx_http_claw_addr_t   addr, addr2;

    in = fuzz_dup(p, len);

    rc = ngx_http_claw_parse_upstream(in, len, &addr, &socklen);

    CHECK(rc == 0 || rc == -1);

    if (rc != 0) {
        free(in);
        return;
    }

    CHECK(len <= NGX_HTTP_CLAW_UPSTREAM_MAX);

    switch (addr.sockaddr.sa_family) {

    case AF_UNIX:
        /* the path, its NUL and the 8-byte tag fit in sun_path */
        CHECK(socklen > offsetof(struct sockaddr_un, sun_path) + 1);
        CHECK(socklen + NGX_HTTP_CLAW_TAG_LEN <= sizeof(struct sockaddr_un));
        CHECK(addr.sockaddr_un.sun_path[0] == '/');
        CHECK(strlen(addr.sockaddr_un.sun_path)
              == socklen - offsetof(struct sockaddr_un, sun_path) - 1);
        CHECK(len == 5 + strlen(addr.sockaddr_un.sun_path));
        tlen = (size_t) snprintf(text, sizeof(text), "unix:%s",
                                 addr.sockaddr_un.sun_path);
        break;

    case AF_INET:
        CHECK(socklen == sizeof(struct sockaddr_in));
        CHECK(addr.sockaddr_in.sin_port != 0);
        inet_ntop(AF_INET, &addr.sockaddr_in.sin_addr, a, sizeof(a));
        tlen = (size_t) snprintf(text, sizeof(text), "%s:%u", a,
                                 ntohs(addr.sockaddr_in.sin_port));
        break;

    case AF_INET6:
        CHECK(socklen == sizeof(struct sockaddr_in6));
        CHECK(addr.sockaddr_in6.sin6_port != 0);
        inet_ntop(AF_INET6, &addr.sockaddr_in6.sin6_addr, a, sizeof(a));
        tlen = (size_t) snprintf(text, sizeof(text), "[%s]:%u", a,
                                 ntohs(addr.sockaddr_in6.sin6_port));
        break;

    default:
        CHECK(0 && "unknown address family");
        return;
    }

    /* the address written back is the same address */

    CHECK(ngx_http_claw_parse_upstream((unsigned char *) text, tlen, &addr2,
                                       &socklen2) == 0);
    CHECK(socklen2 == socklen && memcmp(&addr, &addr2, socklen) == 0);

    free(in);
}


static void
check_fields(const unsigned char *p, size_t len)
{
    size_t                 i;
    int64_t                v;
    unsigned char         *in, digest[NGX_HTTP_CLAW_DIGEST_LEN];
    ngx_http_claw_rate_t   rate;

    in = fuzz_dup(p, len);

    if (ngx_http_claw_parse_number(in, len, NGX_HTTP_CLAW_BURST_MAX, &v)
        == 0)
    {
        CHECK(len >= 1 && v >= 0 && v <= NGX_HTTP_CLAW_BURST_MAX);

        for (i = 0; i < len; i++) {
            CHECK(in[i] >= '0' && in[i] <= '9');
        }
    }

    if (ngx_http_claw_parse_number(in, len, INT64_MAX, &v) == 0) {
        CHECK(len >= 1 && len <= 18 && v >= 0);
    }

    if (ngx_http_claw_parse_rate(in, len, &rate) == 0) {
        CHECK(rate.number >= 1 && rate.number <= NGX_HTTP_CLAW_RATE_MAX);
        CHECK(rate.period == 1 || rate.period == 60);
        CHECK(len >= 4 && in[len - 3] == 'r' && in[len - 2] == '/');
        CHECK(ngx_http_claw_rate_interval(&rate) >= 1000);
    }

    if (ngx_http_claw_parse_digest(in, len, digest) == 0) {
        char  hexd[3];

        CHECK(len == 71 && memcmp(in, "sha256:", 7) == 0);

        for (i = 0; i < NGX_HTTP_CLAW_DIGEST_LEN; i++) {
            snprintf(hexd, sizeof(hexd), "%02x", digest[i]);
            CHECK(strncasecmp(hexd, (char *) in + 7 + 2 * i, 2) == 0);
        }
    }

    free(in);

    check_upstream(p, len);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     rc, rc2;
    size_t                  n, i;
    unsigned char          *line, *again;
    ngx_http_claw_entry_t   e, e2;
    ngx_http_claw_error_t   err, err2;

    if (size > NGX_HTTP_CLAW_LINE_MAX) {
        return 0;
    }

    check_fields(data, size);

    line = fuzz_dup(data, size);

    rc = ngx_http_claw_parse_line(line, size, &e, &err);

    CHECK(rc == -1 || rc == 0 || rc == 1);

    if (rc == -1) {
        CHECK(err.reason != NULL && err.reason[0] != '\0');
        CHECK(err.what.len == 0 || fuzz_within(err.what.data, err.what.len,
                                               line, size));
        free(line);
        return 0;
    }

    if (rc == 0) {
        for (i = 0; i < size && (line[i] == ' ' || line[i] == '\t'
                                 || line[i] == '\r'); i++)
        {
            /* void */
        }

        CHECK(i == size || line[i] == '#');
        free(line);
        return 0;
    }

    /* a tenant */

    CHECK(fuzz_within(e.id.data, e.id.len, line, size));
    CHECK(ngx_http_claw_valid_id(e.id.data, e.id.len));
    CHECK(fuzz_within(e.upstream.data, e.upstream.len, line, size));
    CHECK(e.ntokens <= NGX_HTTP_CLAW_MAX_TOKENS);
    CHECK(e.ndomains <= NGX_HTTP_CLAW_MAX_DOMAINS);
    CHECK(e.burst >= -1 && e.burst <= NGX_HTTP_CLAW_BURST_MAX);
    CHECK(e.conn >= -1 && e.conn <= NGX_HTTP_CLAW_CONN_MAX);
    CHECK(e.rate.number == 0 || (e.rate.number <= NGX_HTTP_CLAW_RATE_MAX
                                 && (e.rate.period == 1
                                     || e.rate.period == 60)));

    {
        ngx_http_claw_addr_t  a;
        socklen_t             sl;

        CHECK(ngx_http_claw_parse_upstream(e.upstream.data, e.upstream.len,
                                           &a, &sl) == 0);
        CHECK(sl == e.socklen && memcmp(&a, &e.addr, sl) == 0);
    }

    for (i = 0; i < e.ntokens; i++) {
        size_t  j;

        for (j = 0; j < i; j++) {
            CHECK(memcmp(e.tokens[i], e.tokens[j], NGX_HTTP_CLAW_DIGEST_LEN)
                  != 0);
        }
    }

    for (i = 0; i < e.ndomains; i++) {
        size_t          dl = e.domains[i].len, j;
        unsigned char  *d;

        CHECK(fuzz_within(e.domains[i].data, dl, line, size));

        d = fuzz_dup(e.domains[i].data, dl);
        CHECK(ngx_http_claw_valid_domain(d, &dl) == 0);
        CHECK(dl == e.domains[i].len
              && memcmp(d, e.domains[i].data, dl) == 0);
        free(d);

        for (j = 0; j < i; j++) {
            CHECK(!span_eq(&e.domains[i], &e.domains[j]));
        }
    }

    /* written back in the documented format: the same tenant */

    again = fuzz_out(LINE_MAX_OUT);
    n = format_line(&e, again);
    CHECK(n <= LINE_MAX_OUT);

    rc2 = ngx_http_claw_parse_line(again, n, &e2, &err2);

    if (rc2 != 1) {
        fprintf(stderr, "reformatted line refused: %s \"%.*s\"\n",
                err2.reason, (int) err2.what.len, err2.what.data);
    }

    CHECK(rc2 == 1);
    CHECK(span_eq(&e.id, &e2.id) && span_eq(&e.upstream, &e2.upstream));
    CHECK(e.socklen == e2.socklen
          && memcmp(&e.addr, &e2.addr, e.socklen) == 0);
    CHECK(e.ntokens == e2.ntokens
          && memcmp(e.tokens, e2.tokens,
                    e.ntokens * NGX_HTTP_CLAW_DIGEST_LEN) == 0);
    CHECK(e.rate.number == e2.rate.number && e.rate.period == e2.rate.period);
    CHECK(e.burst == e2.burst && e.conn == e2.conn);
    CHECK(e.ndomains == e2.ndomains);

    for (i = 0; i < e.ndomains; i++) {
        CHECK(span_eq(&e.domains[i], &e2.domains[i]));
    }

    free(again);
    free(line);

    return 0;
}
