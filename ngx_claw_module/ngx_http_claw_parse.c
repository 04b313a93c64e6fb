
/*
 * Copyright (C) ngx_claw_module authors
 */


#include <string.h>
#include <arpa/inet.h>

#include "ngx_http_claw_parse.h"


#define ngx_http_claw_lower(c)                                               \
    (unsigned char) (((c) >= 'A' && (c) <= 'Z') ? ((c) | 0x20) : (c))


static int ngx_http_claw_ldh_labels(const unsigned char *p, size_t len,
    unsigned *nlabels, int *numeric_tld);
static int ngx_http_claw_parse_port(const unsigned char *p, size_t len,
    in_port_t *port);
static int ngx_http_claw_is_space(unsigned char c);
static int ngx_http_claw_span_eq(ngx_http_claw_span_t *a,
    ngx_http_claw_span_t *b);
static int ngx_http_claw_line_error(ngx_http_claw_error_t *err,
    const char *reason, const unsigned char *p, size_t len);


/*
 * Canonical form of a host as it arrives in Host, :authority, SNI or
 * Origin: lowercase, without the port and one trailing dot.  Only names
 * made of LDH labels are tenant candidates; IP literals and malformed
 * names are reported as such so the caller answers without a lookup.
 */

int
ngx_http_claw_host_canon(const unsigned char *in, size_t len,
    unsigned char *out, size_t *outlen)
{
    int       numeric;
    size_t    i, hlen;
    unsigned  nlabels;

    *outlen = 0;

    if (len == 0) {
        return NGX_HTTP_CLAW_HOST_EMPTY;
    }

    if (in[0] == '[') {
        return NGX_HTTP_CLAW_HOST_IP;
    }

    hlen = len;

    for (i = 0; i < len; i++) {
        if (in[i] == ':') {
            hlen = i;

            if (ngx_http_claw_parse_port(in + i + 1, len - i - 1, NULL)
                != 0)
            {
                return NGX_HTTP_CLAW_HOST_INVALID;
            }

            break;
        }
    }

    if (hlen > 0 && in[hlen - 1] == '.') {
        hlen--;
    }

    if (hlen == 0 || hlen > NGX_HTTP_CLAW_HOST_MAX) {
        return NGX_HTTP_CLAW_HOST_INVALID;
    }

    for (i = 0; i < hlen; i++) {
        out[i] = ngx_http_claw_lower(in[i]);
    }

    if (ngx_http_claw_ldh_labels(out, hlen, &nlabels, &numeric) != 0) {
        return NGX_HTTP_CLAW_HOST_INVALID;
    }

    *outlen = hlen;

    /* no top-level domain is all digits: "10.0.0.1" or "2130706433" */

    return numeric ? NGX_HTTP_CLAW_HOST_IP : NGX_HTTP_CLAW_HOST_NAME;
}


/*
 * "<label>.<suffix>" with exactly one label, which must be a valid
 * tenant id; the host and the suffix are canonical already.
 */

int
ngx_http_claw_host_label(const unsigned char *host, size_t len,
    const unsigned char *suffix, size_t slen, ngx_http_claw_span_t *label)
{
    size_t  llen;

    if (len < slen + 2) {
        return 0;
    }

    llen = len - slen - 1;

    if (host[llen] != '.' || memcmp(host + llen + 1, suffix, slen) != 0) {
        return 0;
    }

    if (memchr(host, '.', llen) != NULL) {
        return 0;
    }

    if (!ngx_http_claw_valid_id(host, llen)) {
        return 0;
    }

    label->data = host;
    label->len = llen;

    return 1;
}


int
ngx_http_claw_valid_id(const unsigned char *p, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len == 0 || len > NGX_HTTP_CLAW_ID_MAX) {
        return 0;
    }

    if (p[0] == '-' || p[len - 1] == '-') {
        return 0;
    }

    if (len >= 4 && memcmp(p, "xn--", 4) == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = p[i];

        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            continue;
        }

        return 0;
    }

    return 1;
}


/*
 * A custom domain: two or more LDH labels, not an address.  Lowercased
 * in place; one trailing dot is dropped.
 */

int
ngx_http_claw_valid_domain(unsigned char *p, size_t *len)
{
    int       numeric;
    size_t    i, n;
    unsigned  nlabels;

    n = *len;

    if (n > 0 && p[n - 1] == '.') {
        n--;
    }

    if (n == 0 || n > NGX_HTTP_CLAW_HOST_MAX) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        p[i] = ngx_http_claw_lower(p[i]);
    }

    if (ngx_http_claw_ldh_labels(p, n, &nlabels, &numeric) != 0
        || nlabels < 2 || numeric)
    {
        return -1;
    }

    *len = n;

    return 0;
}


/*
 * How two canonical names relate: the same, the first under the second
 * (a subdomain of it), the first a parent of the second, or apart.
 */

int
ngx_http_claw_domain_relation(const unsigned char *name, size_t len,
    const unsigned char *other, size_t olen)
{
    if (len == olen) {
        return memcmp(name, other, len) == 0 ? NGX_HTTP_CLAW_DOMAIN_SAME
                                             : NGX_HTTP_CLAW_DOMAIN_APART;
    }

    if (len > olen) {
        return (name[len - olen - 1] == '.'
                && memcmp(name + len - olen, other, olen) == 0)
               ? NGX_HTTP_CLAW_DOMAIN_UNDER : NGX_HTTP_CLAW_DOMAIN_APART;
    }

    return (other[olen - len - 1] == '.'
            && memcmp(other + olen - len, name, len) == 0)
           ? NGX_HTTP_CLAW_DOMAIN_PARENT : NGX_HTTP_CLAW_DOMAIN_APART;
}


/* a claw_domain suffix: like a domain, but one label will do */

int
ngx_http_claw_valid_suffix(unsigned char *p, size_t *len)
{
    int       numeric;
    size_t    i, n;
    unsigned  nlabels;

    n = *len;

    if (n > 0 && p[n - 1] == '.') {
        n--;
    }

    /* room for at least "x." in front */

    if (n == 0 || n > NGX_HTTP_CLAW_HOST_MAX - 2) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        p[i] = ngx_http_claw_lower(p[i]);
    }

    if (ngx_http_claw_ldh_labels(p, n, &nlabels, &numeric) != 0 || numeric) {
        return -1;
    }

    *len = n;

    return 0;
}


/* "IPv4:port", "[IPv6]:port" or "unix:/path"; no names */

int
ngx_http_claw_parse_upstream(const unsigned char *p, size_t len,
    ngx_http_claw_addr_t *addr, socklen_t *socklen)
{
    size_t                i, n, plen;
    in_port_t             port;
    const unsigned char  *colon, *close;
    char                  buf[INET6_ADDRSTRLEN + 1];

    memset(addr, 0, sizeof(ngx_http_claw_addr_t));

    if (len > 5 && memcmp(p, "unix:", 5) == 0) {
        p += 5;
        plen = len - 5;

        if (plen < 2 || plen > NGX_HTTP_CLAW_UNIX_PATH_MAX || p[0] != '/') {
            return -1;
        }

        for (i = 0; i < plen; i++) {
            if (p[i] <= 0x20 || p[i] == 0x7f) {
                return -1;
            }
        }

        addr->sockaddr_un.sun_family = AF_UNIX;
        memcpy(addr->sockaddr_un.sun_path, p, plen);

        *socklen = (socklen_t) (offsetof(struct sockaddr_un, sun_path)
                                + plen + 1);
        return 0;
    }

    if (len > 0 && p[0] == '[') {
        close = memchr(p, ']', len);

        if (close == NULL || close + 1 == p + len || close[1] != ':') {
            return -1;
        }

        n = close - p - 1;

        if (n == 0 || n > INET6_ADDRSTRLEN) {
            return -1;
        }

        memcpy(buf, p + 1, n);
        buf[n] = '\0';

        if (inet_pton(AF_INET6, buf, &addr->sockaddr_in6.sin6_addr) != 1) {
            return -1;
        }

        if (ngx_http_claw_parse_port(close + 2, p + len - close - 2, &port)
            != 0)
        {
            return -1;
        }

        addr->sockaddr_in6.sin6_family = AF_INET6;
        addr->sockaddr_in6.sin6_port = htons(port);
        *socklen = sizeof(struct sockaddr_in6);

        return 0;
    }

    colon = NULL;

    for (i = 0; i < len; i++) {
        if (p[i] == ':') {
            if (colon) {
                return -1;
            }

            colon = p + i;
        }
    }

    if (colon == NULL) {
        return -1;
    }

    n = colon - p;

    if (n == 0 || n > INET_ADDRSTRLEN) {
        return -1;
    }

    memcpy(buf, p, n);
    buf[n] = '\0';

    /* inet_pton() takes only the dotted quad, not "127.1" or hex */

    if (inet_pton(AF_INET, buf, &addr->sockaddr_in.sin_addr) != 1) {
        return -1;
    }

    if (ngx_http_claw_parse_port(colon + 1, p + len - colon - 1, &port) != 0) {
        return -1;
    }

    addr->sockaddr_in.sin_family = AF_INET;
    addr->sockaddr_in.sin_port = htons(port);
    *socklen = sizeof(struct sockaddr_in);

    return 0;
}


/* "10r/s" or "600r/m", as limit_req writes them */

int
ngx_http_claw_parse_rate(const unsigned char *p, size_t len,
    ngx_http_claw_rate_t *rate)
{
    int64_t   n;
    uint32_t  period;

    if (len < 4 || p[len - 3] != 'r' || p[len - 2] != '/') {
        return -1;
    }

    switch (p[len - 1]) {
    case 's':
        period = 1;
        break;
    case 'm':
        period = 60;
        break;
    default:
        return -1;
    }

    if (ngx_http_claw_parse_number(p, len - 3, NGX_HTTP_CLAW_RATE_MAX, &n)
        != 0 || n == 0)
    {
        return -1;
    }

    rate->number = (uint32_t) n;
    rate->period = period;

    return 0;
}


/*
 * The generic cell rate algorithm, as limit_req with nodelay: up to
 * burst + 1 requests at once, then one per interval.  Over any window T,
 * at most T / interval + burst + 1 are admitted.  Returns 0 with the new
 * theoretical arrival time in *next, or how long until one more request
 * would be admitted (same unit as the arguments).
 */

uint64_t
ngx_http_claw_gcra(uint64_t tat, uint64_t now, uint64_t interval,
    uint64_t burst, uint64_t *next)
{
    uint64_t  t, tolerance;

    t = tat > now ? tat : now;
    tolerance = burst * interval;

    if (t - now > tolerance) {
        return t - now - tolerance;
    }

    *next = t + interval;

    return 0;
}


/* nanoseconds between two requests at this rate */

uint64_t
ngx_http_claw_rate_interval(ngx_http_claw_rate_t *rate)
{
    return (uint64_t) rate->period * 1000000000 / rate->number;
}


const char *const  ngx_http_claw_states[] = {
    "active", "suspended", "maintenance", "asleep", NULL
};


/* a state's name: its NGX_HTTP_CLAW_STATE_*, or -1 */

int
ngx_http_claw_parse_state(const unsigned char *p, size_t len)
{
    int  i;

    for (i = 0; ngx_http_claw_states[i]; i++) {
        if (strlen(ngx_http_claw_states[i]) == len
            && memcmp(ngx_http_claw_states[i], p, len) == 0)
        {
            return i;
        }
    }

    return -1;
}


/* "192.0.2.0/24", "2001:db8::/32", an address alone (/32, /128) */

int
ngx_http_claw_parse_cidr(const unsigned char *p, size_t len,
    ngx_http_claw_cidr_t *cidr)
{
    size_t          alen, i;
    unsigned        bits, max;
    const void     *slash;
    char            buf[64];

    memset(cidr, 0, sizeof(ngx_http_claw_cidr_t));

    slash = memchr(p, '/', len);
    alen = slash ? (size_t) ((const unsigned char *) slash - p) : len;

    if (alen == 0 || alen >= sizeof(buf)) {
        return -1;
    }

    memcpy(buf, p, alen);
    buf[alen] = '\0';

    if (inet_pton(AF_INET, buf, cidr->addr) == 1) {
        cidr->family = 4;
        max = 32;

    } else if (inet_pton(AF_INET6, buf, cidr->addr) == 1) {
        cidr->family = 6;
        max = 128;

    } else {
        return -1;
    }

    bits = max;

    if (slash) {
        if (len - alen < 2 || len - alen > 4) {
            return -1;
        }

        bits = 0;

        for (i = alen + 1; i < len; i++) {
            if (p[i] < '0' || p[i] > '9') {
                return -1;
            }

            bits = bits * 10 + (p[i] - '0');
        }

        if (bits > max) {
            return -1;
        }
    }

    cidr->bits = (unsigned char) bits;

    /* what the prefix leaves out is not part of the network */

    for (i = 0; i < 16; i++) {
        if (bits >= 8) {
            bits -= 8;

        } else {
            cidr->addr[i] &= (unsigned char) (0xff00 >> bits);
            bits = 0;
        }
    }

    return 0;
}


int
ngx_http_claw_cidr_match(const ngx_http_claw_cidr_t *cidr,
    const struct sockaddr *sa)
{
    unsigned              i, bits;
    const unsigned char  *a;
    unsigned char         mapped[16];

    if (sa->sa_family == AF_INET) {
        if (cidr->family != 4) {
            return 0;
        }

        a = (const unsigned char *)
                &((const struct sockaddr_in *) sa)->sin_addr;

    } else if (sa->sa_family == AF_INET6) {
        a = ((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;

        if (cidr->family == 4) {

            /* an IPv4 client on an IPv6 socket: ::ffff:a.b.c.d */

            if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) != 0) {
                return 0;
            }

            memcpy(mapped, a + 12, 4);
            a = mapped;
        }

    } else {
        return 0;
    }

    bits = cidr->bits;

    for (i = 0; bits; i++) {
        if (bits >= 8) {
            if (a[i] != cidr->addr[i]) {
                return 0;
            }

            bits -= 8;

        } else {
            if ((a[i] & (unsigned char) (0xff00 >> bits)) != cidr->addr[i]) {
                return 0;
            }

            bits = 0;
        }
    }

    return 1;
}


/* as the registry writes it; buf holds 64 bytes */

size_t
ngx_http_claw_cidr_text(const ngx_http_claw_cidr_t *cidr, char *buf)
{
    size_t  n;

    if (inet_ntop(cidr->family == 4 ? AF_INET : AF_INET6, cidr->addr, buf,
                  48)
        == NULL)
    {
        buf[0] = '\0';
    }

    n = strlen(buf);
    buf[n++] = '/';

    if (cidr->bits >= 100) {
        buf[n++] = (char) ('0' + cidr->bits / 100);
    }

    if (cidr->bits >= 10) {
        buf[n++] = (char) ('0' + cidr->bits / 10 % 10);
    }

    buf[n++] = (char) ('0' + cidr->bits % 10);

    return n;
}


/* "1048576", "1024k", "10m", "1g", as client_max_body_size */

int
ngx_http_claw_parse_size(const unsigned char *p, size_t len, int64_t *size)
{
    int64_t  unit, value;

    if (len == 0) {
        return -1;
    }

    unit = 1;

    switch (p[len - 1]) {
    case 'k': case 'K':
        unit = 1024;
        len--;
        break;
    case 'm': case 'M':
        unit = 1024 * 1024;
        len--;
        break;
    case 'g': case 'G':
        unit = 1024 * 1024 * 1024;
        len--;
        break;
    }

    if (ngx_http_claw_parse_number(p, len, NGX_HTTP_CLAW_BODY_MAX / unit,
                                   &value)
        != 0)
    {
        return -1;
    }

    *size = value * unit;

    return 0;
}


/* the largest unit that writes it exactly; buf holds 24 bytes */

size_t
ngx_http_claw_size_text(int64_t size, char *buf)
{
    char      unit;
    int64_t   v;
    size_t    n, i;
    char      digits[24];

    unit = '\0';
    v = size;

    if (v && v % (1024 * 1024 * 1024) == 0) {
        v /= 1024 * 1024 * 1024;
        unit = 'g';

    } else if (v && v % (1024 * 1024) == 0) {
        v /= 1024 * 1024;
        unit = 'm';

    } else if (v && v % 1024 == 0) {
        v /= 1024;
        unit = 'k';
    }

    n = 0;

    do {
        digits[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    for (i = 0; i < n; i++) {
        buf[i] = digits[n - 1 - i];
    }

    if (unit) {
        buf[n++] = unit;
    }

    return n;
}


int
ngx_http_claw_parse_number(const unsigned char *p, size_t len, int64_t max,
    int64_t *value)
{
    size_t   i;
    int64_t  n;

    if (len == 0 || len > 18) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        n = n * 10 + (p[i] - '0');
    }

    if (n > max) {
        return -1;
    }

    *value = n;

    return 0;
}


/* hex digit values, -1 for anything else: 100,000 digests load quickly */

static const signed char  ngx_http_claw_hex_value[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
     0,  1,  2,  3,  4,  5,  6,  7,  8,  9, -1, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
};


/* "sha256:" and 64 hex digits, either case */

int
ngx_http_claw_parse_digest(const unsigned char *p, size_t len,
    unsigned char *digest)
{
    int     hi, lo, bad;
    size_t  i;

    if (len != 7 + 2 * NGX_HTTP_CLAW_DIGEST_LEN
        || memcmp(p, "sha256:", 7) != 0)
    {
        return -1;
    }

    p += 7;
    bad = 0;

    for (i = 0; i < NGX_HTTP_CLAW_DIGEST_LEN; i++) {
        hi = ngx_http_claw_hex_value[p[2 * i]];
        lo = ngx_http_claw_hex_value[p[2 * i + 1]];

        /* a non-hex digit is -1: shifted as unsigned, it is only "bad" */

        bad |= hi | lo;
        digest[i] = (unsigned char) ((unsigned) hi << 4 | (unsigned) lo);
    }

    return bad < 0 ? -1 : 0;
}


int
ngx_http_claw_parse_line(unsigned char *line, size_t len,
    ngx_http_claw_entry_t *e, ngx_http_claw_error_t *err)
{
    size_t                n, klen;
    unsigned              i, field;
    unsigned char        *p, *end, *start, *eq;
    ngx_http_claw_span_t  f, v;

    memset(e, 0, sizeof(ngx_http_claw_entry_t));
    e->max_body = -1;
    e->burst = -1;
    e->conn = -1;

    err->reason = NULL;
    err->what.data = NULL;
    err->what.len = 0;

    p = line;
    end = line + len;

    for (field = 0; /* void */ ; field++) {

        while (p < end && ngx_http_claw_is_space(*p)) {
            p++;
        }

        if (p == end || *p == '#') {
            break;
        }

        start = p;

        while (p < end && !ngx_http_claw_is_space(*p)) {
            p++;
        }

        f.data = start;
        f.len = p - start;

        if (field == 0) {
            if (!ngx_http_claw_valid_id(f.data, f.len)) {
                return ngx_http_claw_line_error(err, "invalid tenant id",
                                                f.data, f.len);
            }

            e->id = f;
            continue;
        }

        if (field == 1) {
            if (ngx_http_claw_parse_upstream(f.data, f.len, &e->addr,
                                             &e->socklen)
                != 0)
            {
                return ngx_http_claw_line_error(err, "invalid upstream",
                                                f.data, f.len);
            }

            e->upstream = f;
            continue;
        }

        eq = memchr(start, '=', f.len);

        if (eq == NULL) {
            return ngx_http_claw_line_error(err, "invalid option",
                                            f.data, f.len);
        }

        klen = eq - start;
        v.data = eq + 1;
        v.len = f.len - klen - 1;

        if (klen == 5 && memcmp(start, "token", 5) == 0) {

            if (e->ntokens == NGX_HTTP_CLAW_MAX_TOKENS) {
                return ngx_http_claw_line_error(err, "too many tokens",
                                                f.data, f.len);
            }

            if (ngx_http_claw_parse_digest(v.data, v.len,
                                           e->tokens[e->ntokens])
                != 0)
            {
                return ngx_http_claw_line_error(err, "invalid token",
                                                f.data, f.len);
            }

            for (i = 0; i < e->ntokens; i++) {
                if (memcmp(e->tokens[i], e->tokens[e->ntokens],
                           NGX_HTTP_CLAW_DIGEST_LEN)
                    == 0)
                {
                    return ngx_http_claw_line_error(err, "duplicate token",
                                                    f.data, f.len);
                }
            }

            e->ntokens++;

        } else if (klen == 4 && memcmp(start, "rate", 4) == 0) {

            if (e->rate.number) {
                return ngx_http_claw_line_error(err, "duplicate rate",
                                                f.data, f.len);
            }

            if (ngx_http_claw_parse_rate(v.data, v.len, &e->rate) != 0) {
                return ngx_http_claw_line_error(err, "invalid rate",
                                                f.data, f.len);
            }

        } else if (klen == 5 && memcmp(start, "burst", 5) == 0) {

            if (e->burst != -1) {
                return ngx_http_claw_line_error(err, "duplicate burst",
                                                f.data, f.len);
            }

            if (ngx_http_claw_parse_number(v.data, v.len,
                                           NGX_HTTP_CLAW_BURST_MAX, &e->burst)
                != 0)
            {
                return ngx_http_claw_line_error(err, "invalid burst",
                                                f.data, f.len);
            }

        } else if (klen == 4 && memcmp(start, "conn", 4) == 0) {

            if (e->conn != -1) {
                return ngx_http_claw_line_error(err, "duplicate conn",
                                                f.data, f.len);
            }

            if (ngx_http_claw_parse_number(v.data, v.len,
                                           NGX_HTTP_CLAW_CONN_MAX, &e->conn)
                != 0)
            {
                return ngx_http_claw_line_error(err, "invalid conn",
                                                f.data, f.len);
            }

        } else if (klen == 5 && memcmp(start, "allow", 5) == 0) {

            if (e->nallow == NGX_HTTP_CLAW_MAX_ALLOW) {
                return ngx_http_claw_line_error(err, "too many allow",
                                                f.data, f.len);
            }

            if (ngx_http_claw_parse_cidr(v.data, v.len,
                                         &e->allow[e->nallow])
                != 0)
            {
                return ngx_http_claw_line_error(err, "invalid allow "
                                                "(an address or a network: "
                                                "192.0.2.0/24, 2001:db8::/32)",
                                                f.data, f.len);
            }

            e->nallow++;

        } else if (klen == 8 && memcmp(start, "max_body", 8) == 0) {

            if (e->max_body != -1) {
                return ngx_http_claw_line_error(err, "duplicate max_body",
                                                f.data, f.len);
            }

            if (ngx_http_claw_parse_size(v.data, v.len, &e->max_body) != 0) {
                return ngx_http_claw_line_error(err, "invalid max_body "
                                                "(bytes, or with k, m, g)",
                                                f.data, f.len);
            }

        } else if (klen == 5 && memcmp(start, "state", 5) == 0) {
            int  st;

            if (e->has_state) {
                return ngx_http_claw_line_error(err, "duplicate state",
                                                f.data, f.len);
            }

            st = ngx_http_claw_parse_state(v.data, v.len);

            if (st < 0) {
                return ngx_http_claw_line_error(err, "invalid state "
                                                "(active, suspended, "
                                                "maintenance or asleep)",
                                                f.data, f.len);
            }

            e->state = (unsigned) st;
            e->has_state = 1;

        } else if (klen == 6 && memcmp(start, "domain", 6) == 0) {

            if (e->ndomains == NGX_HTTP_CLAW_MAX_DOMAINS) {
                return ngx_http_claw_line_error(err, "too many domains",
                                                f.data, f.len);
            }

            n = v.len;

            if (ngx_http_claw_valid_domain(eq + 1, &n) != 0) {
                return ngx_http_claw_line_error(err, "invalid domain",
                                                f.data, f.len);
            }

            v.len = n;

            for (i = 0; i < e->ndomains; i++) {
                if (ngx_http_claw_span_eq(&e->domains[i], &v)) {
                    return ngx_http_claw_line_error(err, "duplicate domain",
                                                    f.data, f.len);
                }
            }

            e->domains[e->ndomains++] = v;

        } else {
            return ngx_http_claw_line_error(err, "unknown option",
                                            f.data, f.len);
        }
    }

    if (field == 0) {
        return 0;
    }

    if (field == 1) {
        return ngx_http_claw_line_error(err, "missing upstream after",
                                        e->id.data, e->id.len);
    }

    return 1;
}


static int
ngx_http_claw_ldh_labels(const unsigned char *p, size_t len,
    unsigned *nlabels, int *numeric_tld)
{
    int            digits_only;
    size_t         i, llen;
    unsigned char  c;

    *nlabels = 0;
    *numeric_tld = 0;

    llen = 0;
    digits_only = 1;

    for (i = 0; i <= len; i++) {

        if (i == len || p[i] == '.') {
            if (llen == 0 || llen > NGX_HTTP_CLAW_LABEL_MAX
                || p[i - llen] == '-' || p[i - 1] == '-')
            {
                return -1;
            }

            (*nlabels)++;
            *numeric_tld = digits_only;

            llen = 0;
            digits_only = 1;
            continue;
        }

        c = p[i];

        if (c >= '0' && c <= '9') {
            llen++;
            continue;
        }

        if ((c >= 'a' && c <= 'z') || c == '-') {
            digits_only = 0;
            llen++;
            continue;
        }

        return -1;
    }

    return 0;
}


static int
ngx_http_claw_parse_port(const unsigned char *p, size_t len, in_port_t *port)
{
    size_t    i;
    unsigned  n;

    if (len == 0 || len > 5) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        n = n * 10 + (p[i] - '0');
    }

    if (n == 0 || n > 65535) {
        return -1;
    }

    if (port) {
        *port = (in_port_t) n;
    }

    return 0;
}


static int
ngx_http_claw_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}


static int
ngx_http_claw_span_eq(ngx_http_claw_span_t *a, ngx_http_claw_span_t *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}


static int
ngx_http_claw_line_error(ngx_http_claw_error_t *err, const char *reason,
    const unsigned char *p, size_t len)
{
    err->reason = reason;
    err->what.data = p;
    err->what.len = len;

    return -1;
}
