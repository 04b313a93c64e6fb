
/*
 * Unit tests of the pure parsers and codecs, linked without nginx:
 * host canonicalisation, registry lines, upstreams, rates, the Bearer
 * parser, session cookies, claw_token handling.  TAP output, run by
 * t/unit.t.
 */


#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "ngx_http_claw_parse.h"
#include "ngx_http_claw_token.h"
#include "ngx_http_claw_resp.h"


static int  tests, failed;


#define S(s)  (const unsigned char *) (s), sizeof(s) - 1

#define ok(cond, ...)                                                         \
    do {                                                                      \
        tests++;                                                              \
        if (cond) {                                                           \
            printf("ok %d - ", tests);                                        \
        } else {                                                              \
            failed++;                                                         \
            printf("not ok %d - ", tests);                                    \
        }                                                                     \
        printf(__VA_ARGS__);                                                  \
        printf("\n");                                                         \
    } while (0)


static int
canon(const char *in, const char *want, int kind)
{
    int            rc;
    size_t         len;
    unsigned char  out[NGX_HTTP_CLAW_HOST_MAX + 1];

    rc = ngx_http_claw_host_canon((const unsigned char *) in, strlen(in),
                                  out, &len);
    if (rc != kind) {
        return 0;
    }

    if (want == NULL) {
        return 1;
    }

    return len == strlen(want) && memcmp(out, want, len) == 0;
}


static int
label(const char *host, const char *suffix, const char *want)
{
    ngx_http_claw_span_t  l;

    if (!ngx_http_claw_host_label((const unsigned char *) host, strlen(host),
                                  (const unsigned char *) suffix,
                                  strlen(suffix), &l))
    {
        return want == NULL;
    }

    return want && l.len == strlen(want) && memcmp(l.data, want, l.len) == 0;
}


static int
line(const char *text, int want, const char *reason)
{
    int                    rc;
    unsigned char          buf[NGX_HTTP_CLAW_LINE_MAX];
    ngx_http_claw_entry_t  e;
    ngx_http_claw_error_t  err;

    memcpy(buf, text, strlen(text));
    rc = ngx_http_claw_parse_line(buf, strlen(text), &e, &err);

    if (rc != want) {
        return 0;
    }

    return reason == NULL || (err.reason && strcmp(err.reason, reason) == 0);
}


static void
test_hosts(void)
{
    ok(canon("Alice.Claw.Test.:8443", "alice.claw.test",
             NGX_HTTP_CLAW_HOST_NAME), "case, trailing dot and port");
    ok(canon("alice.claw.test", "alice.claw.test", NGX_HTTP_CLAW_HOST_NAME),
       "a canonical host is kept");
    ok(canon("127.0.0.1", NULL, NGX_HTTP_CLAW_HOST_IP), "IPv4 is an address");
    ok(canon("[::1]:80", NULL, NGX_HTTP_CLAW_HOST_IP), "IPv6 is an address");
    ok(canon("2130706433", NULL, NGX_HTTP_CLAW_HOST_IP),
       "a numeric name is an address");
    ok(canon("", NULL, NGX_HTTP_CLAW_HOST_EMPTY), "empty");
    ok(canon("a..b", NULL, NGX_HTTP_CLAW_HOST_INVALID), "empty label");
    ok(canon(".", NULL, NGX_HTTP_CLAW_HOST_INVALID), "a lone dot");
    ok(canon("a_b.test", NULL, NGX_HTTP_CLAW_HOST_INVALID), "underscore");
    ok(canon("-a.test", NULL, NGX_HTTP_CLAW_HOST_INVALID), "leading hyphen");
    ok(canon("a-.test", NULL, NGX_HTTP_CLAW_HOST_INVALID), "trailing hyphen");
    ok(canon("al\xc3\xaf" "ce.test", NULL, NGX_HTTP_CLAW_HOST_INVALID),
       "raw UTF-8");
    ok(canon("a.test:x", NULL, NGX_HTTP_CLAW_HOST_INVALID), "bad port");
    ok(canon("a.test:", NULL, NGX_HTTP_CLAW_HOST_INVALID), "empty port");
    ok(canon("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
             ".test", NULL, NGX_HTTP_CLAW_HOST_INVALID), "64-byte label");

    ok(label("alice.claw.test", "claw.test", "alice"), "one label");
    ok(label("a.alice.claw.test", "claw.test", NULL), "two labels");
    ok(label("claw.test", "claw.test", NULL), "bare suffix");
    ok(label("aliceclaw.test", "claw.test", NULL), "no dot before suffix");
    ok(label("alice.claw.test.evil.com", "claw.test", NULL), "suffix inside");
    ok(label("xn--lice-9na.claw.test", "claw.test", NULL), "punycode label");
    ok(label(".claw.test", "claw.test", NULL), "empty label");
}


static void
test_registry_lines(void)
{
    unsigned char          buf[256];
    ngx_http_claw_entry_t  e;
    ngx_http_claw_error_t  err;
    const char            *l;

    l = "alice 127.0.0.1:19101 token=sha256:"
        "374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1"
        " rate=10r/s burst=20 conn=32 domain=Agent.Alice.DEV. # note";
    memcpy(buf, l, strlen(l));

    ok(ngx_http_claw_parse_line(buf, strlen(l), &e, &err) == 1,
       "a full line parses");
    ok(e.id.len == 5 && memcmp(e.id.data, "alice", 5) == 0, "id");
    ok(e.addr.sockaddr.sa_family == AF_INET
       && ntohs(e.addr.sockaddr_in.sin_port) == 19101, "IPv4 upstream");
    ok(e.ntokens == 1 && e.tokens[0][0] == 0x37 && e.tokens[0][31] == 0xf1,
       "token digest");
    ok(e.rate.number == 10 && e.rate.period == 1, "rate");
    ok(e.burst == 20 && e.conn == 32, "burst and conn");
    ok(e.ndomains == 1 && e.domains[0].len == 15
       && memcmp(e.domains[0].data, "agent.alice.dev", 15) == 0,
       "domain lowercased, trailing dot dropped");

    ok(line("", 0, NULL), "empty line");
    ok(line("   # comment", 0, NULL), "comment line");
    ok(line("bob [::1]:19102", 1, NULL), "IPv6 upstream");
    ok(line("carol unix:/run/carol.sock\r", 1, NULL), "unix upstream, CR");
    ok(line("Alice 127.0.0.1:1", -1, "invalid tenant id"), "upper case id");
    ok(line("xn--a 127.0.0.1:1", -1, "invalid tenant id"), "xn-- id");
    ok(line("alice", -1, "missing upstream after"), "no upstream");
    ok(line("alice localhost:80", -1, "invalid upstream"), "host name");
    ok(line("alice 127.1:80", -1, "invalid upstream"), "short IPv4");
    ok(line("alice 127.0.0.1:65536", -1, "invalid upstream"), "port range");
    ok(line("alice [::1]", -1, "invalid upstream"), "IPv6 without port");
    ok(line("alice [fe80::1%eth0]:80", -1, "invalid upstream"), "zone id");
    ok(line("alice unix:", -1, "invalid upstream"), "empty unix path");
    ok(line("alice 127.0.0.1:1 rate=5r/h", -1, "invalid rate"), "r/h");
    ok(line("alice 127.0.0.1:1 rate=600r/m rate=1r/s", -1, "duplicate rate"),
       "rate twice");
    ok(line("alice 127.0.0.1:1 burst=1000001", -1, "invalid burst"),
       "burst too large");
    ok(line("alice 127.0.0.1:1 conn=x", -1, "invalid conn"), "conn");
    ok(line("alice 127.0.0.1:1 domain=a.b domain=A.B", -1,
            "duplicate domain"), "domain twice in any case");
    ok(line("alice 127.0.0.1:1 domain=1.2.3.4", -1, "invalid domain"),
       "address as domain");
    ok(line("alice 127.0.0.1:1 token=sha256:zz", -1, "invalid token"),
       "short digest");
    ok(line("alice 127.0.0.1:1 foo=bar", -1, "unknown option"), "option");
    ok(line("alice 127.0.0.1:1 =x", -1, "unknown option"), "empty key");
    ok(line("alice 127.0.0.1:1 bare", -1, "invalid option"), "bare word");
}


static void
test_bearer(void)
{
    ngx_http_claw_span_t  t;

    ok(ngx_http_claw_bearer(S("Bearer abc"), &t) == NGX_HTTP_CLAW_CRED_OK
       && t.len == 3 && memcmp(t.data, "abc", 3) == 0, "Bearer abc");
    ok(ngx_http_claw_bearer(S("bEARER \t abc=  "), &t)
       == NGX_HTTP_CLAW_CRED_OK && t.len == 4, "any case, spaces, padding");
    ok(ngx_http_claw_bearer(S("Basic YWxh"), &t) == NGX_HTTP_CLAW_CRED_NONE,
       "another scheme");
    ok(ngx_http_claw_bearer(S("Bearerabc"), &t) == NGX_HTTP_CLAW_CRED_NONE,
       "no space after the scheme");
    ok(ngx_http_claw_bearer(S("Bearer"), &t) == NGX_HTTP_CLAW_CRED_MALFORMED,
       "no token");
    ok(ngx_http_claw_bearer(S("Bearer a b"), &t)
       == NGX_HTTP_CLAW_CRED_MALFORMED, "two words");
    ok(ngx_http_claw_bearer(S("Bearer =abc"), &t)
       == NGX_HTTP_CLAW_CRED_MALFORMED, "padding first");
    ok(ngx_http_claw_bearer(S("Bearer ab=c"), &t)
       == NGX_HTTP_CLAW_CRED_MALFORMED, "padding inside");
    ok(ngx_http_claw_bearer(S("Bearer a\xc3\xb6"), &t)
       == NGX_HTTP_CLAW_CRED_MALFORMED, "non-ASCII");

    /* every byte, against RFC 9110's token68 spelled out */

    {
        int            bad;
        unsigned       c;
        unsigned char  tok[2];
        const char    *set = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                             "vwxyz0123456789-._~+/";

        bad = 0;

        for (c = 0; c < 256; c++) {
            tok[0] = 'a';
            tok[1] = (unsigned char) c;

            if (ngx_http_claw_token_valid(tok, 2)
                != (c == '=' || (c != 0 && strchr(set, (int) c) != NULL)))
            {
                bad++;
            }

            tok[0] = (unsigned char) c;

            if (ngx_http_claw_token_valid(tok, 1)
                != (c != 0 && strchr(set, (int) c) != NULL))
            {
                bad++;
            }
        }

        ok(bad == 0, "token68: each of the 256 bytes, alone and after a");
    }
}


static void
test_sessions(void)
{
    int                      i;
    size_t                   n;
    unsigned char            key[32], digests[2][32], other[32];
    unsigned char            out[NGX_HTTP_CLAW_COOKIE_LEN + 1];
    ngx_http_claw_session_t  s;

    memset(key, 'k', sizeof(key));
    ngx_http_claw_token_digest(S("alice-token-1"), digests[0]);
    ngx_http_claw_token_digest(S("alice-token-2"), digests[1]);
    ngx_http_claw_token_digest(S("bob-token-1"), other);

    n = ngx_http_claw_session_encode(key, 32, S("alice"), 2000000000,
                                     digests[1], out);

    ok(n == NGX_HTTP_CLAW_COOKIE_LEN, "a cookie is %d characters",
       NGX_HTTP_CLAW_COOKIE_LEN);
    ok(ngx_http_claw_session_decode(out, n, &s) == 0
       && s.expiry == 2000000000, "it decodes");
    ok(ngx_http_claw_session_verify(key, 32, S("alice"), &s, 1999999999,
                                    digests[0], 2) == 1,
       "valid for its tenant and token");
    ok(ngx_http_claw_session_verify(key, 32, S("alice"), &s, 2000000000,
                                    digests[0], 2) == -1, "expired");
    ok(ngx_http_claw_session_verify(key, 32, S("bob"), &s, 1,
                                    digests[0], 2) == -1, "another tenant");
    ok(ngx_http_claw_session_verify(key, 32, S("alice"), &s, 1,
                                    digests[0], 1) == -1, "token removed");
    ok(ngx_http_claw_session_verify(key, 32, S("alice"), &s, 1,
                                    other, 1) == -1, "another token");

    key[0] = 'x';
    ok(ngx_http_claw_session_verify(key, 32, S("alice"), &s, 1,
                                    digests[0], 2) == -1, "another secret");
    key[0] = 'k';

    for (i = 0; i < (int) n; i++) {
        out[i] ^= 1;
        if (ngx_http_claw_session_decode(out, n, &s) == 0
            && ngx_http_claw_session_verify(key, 32, S("alice"), &s, 1,
                                            digests[0], 2) >= 0)
        {
            break;
        }
        out[i] ^= 1;
    }

    ok(i == (int) n, "no single flipped bit is accepted");

    ok(ngx_http_claw_session_decode(out, n - 1, &s) == -1, "short");
    ok(ngx_http_claw_session_decode(S("!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                      "AAAAAAAAAAAAAAAAAAAAAAAAAAA"), &s)
       == -1, "not base64url");

    ok(ngx_http_claw_digest_find(digests[1], digests[0], 2) == 1,
       "digest found");
    ok(ngx_http_claw_digest_find(other, digests[0], 2) == -1,
       "digest not found");
}


static void
test_cookies_and_args(void)
{
    size_t                n;
    unsigned              count;
    unsigned char         out[256], value[NGX_HTTP_CLAW_TOKEN_MAX];
    ngx_http_claw_span_t  v;

    ok(ngx_http_claw_cookie_find(S("a=1; __Host-claw=xyz; b=2"), &v, &count)
       == 1 && v.len == 3 && count == 1, "cookie found");
    ok(ngx_http_claw_cookie_find(S("__Host-claw=\"xyz\""), &v, &count) == 1
       && v.len == 3, "quoted cookie");
    ok(ngx_http_claw_cookie_find(S("__host-claw=xyz"), &v, &count) == 0,
       "cookie names are case-sensitive");
    ok(ngx_http_claw_cookie_find(S("__Host-claw=a; __Host-claw=b"), &v,
                                 &count) == -1, "two values disagree");
    ok(ngx_http_claw_cookie_find(S("__Host-claw=a; __Host-claw=a"), &v,
                                 &count) == 1 && count == 2, "repeats agree");

    n = ngx_http_claw_cookie_strip(S("a=1; __Host-claw=xyz;b=2"), out);
    ok(n == 8 && memcmp(out, "a=1; b=2", 8) == 0, "cookie stripped");
    n = ngx_http_claw_cookie_strip(S("__Host-claw=xyz"), out);
    ok(n == 0, "only cookie stripped");

    ok(ngx_http_claw_arg_find(S("x=1&claw_token=abc&y=2"), value, &n, &count)
       == 1 && n == 3 && memcmp(value, "abc", 3) == 0, "argument found");
    ok(ngx_http_claw_arg_find(S("cl%61w_token=a%62c"), value, &n, &count)
       == 1 && n == 3 && memcmp(value, "abc", 3) == 0, "escaped name, value");
    ok(ngx_http_claw_arg_find(S("claw_token=a&claw_token=b"), value, &n,
                              &count) == -1, "two values disagree");
    ok(ngx_http_claw_arg_find(S("xclaw_token=a&claw_tokens=b"), value, &n,
                              &count) == 0, "similar names");

    n = ngx_http_claw_arg_strip(S("x=1&claw_token=abc&y=2&claw_token"), out);
    ok(n == 7 && memcmp(out, "x=1&y=2", 7) == 0, "argument stripped");

    n = ngx_http_claw_fragment_redact(S("GET /p?x=1#claw_token=s3cret HTTP/1.1"),
                                      out);
    ok(n == sizeof("GET /p?x=1#[redacted] HTTP/1.1") - 1
       && memcmp(out, "GET /p?x=1#[redacted] HTTP/1.1", n) == 0,
       "a fragment is redacted whole");
    n = ngx_http_claw_fragment_redact(S("GET /p?x=1 HTTP/1.1"), out);
    ok(n == sizeof("GET /p?x=1 HTTP/1.1") - 1
       && memcmp(out, "GET /p?x=1 HTTP/1.1", n) == 0,
       "a line without a fragment stays as it is");
    ok(ngx_http_claw_fragment_redact(S("GET /p#claw_token=s3cret"), NULL)
       == sizeof("GET /p#[redacted]") - 1, "a fragment up to the end");

    n = ngx_http_claw_arg_redact(S("GET /p?a=1&claw_token=s3cret HTTP/1.1"),
                                 out);
    out[n] = '\0';
    ok(strcmp((char *) out, "GET /p?a=1&claw_token=[redacted] HTTP/1.1") == 0,
       "request line redacted: %s", out);
    ok(n == ngx_http_claw_arg_redact(S("GET /p?a=1&claw_token=s3cret "
                                       "HTTP/1.1"), NULL),
       "redaction size");
}


static void
test_gcra(void)
{
    int                   i, admitted;
    uint64_t              tat, now, next, interval, wait;
    ngx_http_claw_rate_t  rate;

    rate.number = 2;
    rate.period = 1;
    interval = ngx_http_claw_rate_interval(&rate);
    ok(interval == 500000000, "2r/s is one request per 500 ms");

    rate.number = 600;
    rate.period = 60;
    ok(ngx_http_claw_rate_interval(&rate) == 100000000, "600r/m is 100 ms");

    /* burst 2: three at once, then 429 for 500 ms minus what passed */

    tat = 0;
    now = 1000000000;
    admitted = 0;

    for (i = 0; i < 4; i++) {
        wait = ngx_http_claw_gcra(tat, now, interval, 2, &next);
        if (wait == 0) {
            tat = next;
            admitted++;
        }
    }

    ok(admitted == 3, "burst + 1 admitted at once");
    ok(wait == 500000000, "then a wait of one interval");

    wait = ngx_http_claw_gcra(tat, now + 499999999, interval, 2, &next);
    ok(wait == 1, "one nanosecond early is still early");
    ok(ngx_http_claw_gcra(tat, now + 500000000, interval, 2, &next) == 0,
       "admitted on time");

    /* any window: at most T / interval + burst + 1 */

    tat = 0;
    admitted = 0;

    for (now = 0; now < 10000000000ULL; now += 7000000) {
        if (ngx_http_claw_gcra(tat, now, interval, 2, &next) == 0) {
            tat = next;
            admitted++;
        }
    }

    ok(admitted <= 20 + 2 + 1 && admitted >= 20,
       "%d admitted in 10 s at 2r/s burst 2", admitted);
}


static int
hex_is(const unsigned char *b, const char *hex)
{
    size_t  i;
    char    h[65];

    for (i = 0; i < 32; i++) {
        sprintf(h + 2 * i, "%02x", b[i]);
    }

    return strcmp(h, hex) == 0;
}


static void
test_digests(void)
{
    int            i, same;
    unsigned char  d[32], key[131];

    ngx_http_claw_token_digest((const unsigned char *) "abc", 3, d);
    ok(hex_is(d, "ba7816bf8f01cfea414140de5dae2223"
                 "b00361a396177a9cb410ff61f20015ad"), "SHA-256 of abc");

    same = 1;

    for (i = 0; i < 3; i++) {
        ngx_http_claw_token_digest((const unsigned char *) "", 0, d);
        same &= hex_is(d, "e3b0c44298fc1c149afbf4c8996fb924"
                          "27ae41e4649b934ca495991b7852b855");
    }

    ok(same, "SHA-256 of nothing, again and again");

    /* RFC 4231, test cases 1 and 6 */

    memset(key, 0x0b, 20);
    ngx_http_claw_hmac_sha256(key, 20, (const unsigned char *) "Hi There",
                              8, d);
    ok(hex_is(d, "b0344c61d8db38535ca8afceaf0bf12b"
                 "881dc200c9833da726e9376c2e32cff7"), "HMAC-SHA256, RFC 4231 1");

    memset(key, 0xaa, 131);
    ngx_http_claw_hmac_sha256(key, 131, (const unsigned char *)
                              "Test Using Larger Than Block-Size Key - "
                              "Hash Key First", 54, d);
    ok(hex_is(d, "60e431591ee0b67f0d8a26aacbf5b77f"
                 "8e0bc6213728c5140546040f0ee37f54"),
       "HMAC-SHA256 with a key longer than a block, RFC 4231 6");
}

/* a reply of the test's, fed a byte at a time: incomplete until whole */

static long
resp_whole(const char *in, size_t len, size_t *nodes)
{
    size_t  i;
    long    n;

    for (i = 0; i < len; i++) {
        if (ngx_http_claw_resp_scan((const unsigned char *) in, i, nodes)
            != 0)
        {
            return -2;
        }
    }

    n = ngx_http_claw_resp_scan((const unsigned char *) in, len, nodes);

    return n;
}


static void
test_resp(void)
{
    long                   n;
    size_t                 nodes, len;
    unsigned char          buf[128];
    ngx_http_claw_resp_t   r[16];
    const unsigned char   *argv[3];
    size_t                 lens[3];

    static const char  xread[] =
        "*1\r\n*2\r\n$5\r\nc:log\r\n*2\r\n"
        "*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nr\r\n$7\r\n- alice\r\n"
        "*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nr\r\n$0\r\n\r\n"
        "+OK\r\n";

    n = resp_whole(xread, sizeof(xread) - 1 - 5, &nodes);
    ok(n == (long) sizeof(xread) - 1 - 5 && nodes == 14,
       "RESP: an XREAD reply is incomplete until its last byte (%ld, %zu)",
       n, nodes);

    ngx_http_claw_resp_parse((const unsigned char *) xread, n, r);
    ok(r[0].type == '*' && r[0].nelts == 1
       && r[0].elts[0].elts[1].nelts == 2
       && ngx_http_claw_resp_is(&r[0].elts[0].elts[0], "c:log")
       && ngx_http_claw_resp_is(&r[0].elts[0].elts[1].elts[0].elts[0], "1-0")
       && ngx_http_claw_resp_is(
              &r[0].elts[0].elts[1].elts[0].elts[1].elts[1], "- alice")
       && r[0].elts[0].elts[1].elts[1].elts[1].elts[1].len == 0,
       "RESP: nested arrays parse into indexable elements");

    n = ngx_http_claw_resp_scan((const unsigned char *) xread + n, 5, &nodes);
    ok(n == 5 && nodes == 1, "RESP: a second reply after the first");

    ok(resp_whole("$-1\r\n", 5, &nodes) == 5
       && resp_whole("*-1\r\n", 5, &nodes) == 5
       && resp_whole("+\r\n", 3, &nodes) == 3
       && resp_whole(":-42\r\n", 6, &nodes) == 6
       && resp_whole("-ERR no\r\n", 9, &nodes) == 9,
       "RESP: nil, empty status, integer and error replies");

    ngx_http_claw_resp_parse((const unsigned char *) ":-42\r\n", 6, r);
    ok(r[0].type == ':' && r[0].integer == -42, "RESP: integer value");

    ngx_http_claw_resp_parse((const unsigned char *) "$-1\r\n", 5, r);
    ok(r[0].type == NGX_HTTP_CLAW_RESP_NIL, "RESP: nil bulk string");

    ok(ngx_http_claw_resp_scan(S("?x\r\n"), &nodes) == -1
       && ngx_http_claw_resp_scan(S("$3\r\nabcd\r\n"), &nodes) == -1
       && ngx_http_claw_resp_scan(S("$-2\r\n"), &nodes) == -1
       && ngx_http_claw_resp_scan(S(":1x\r\n"), &nodes) == -1
       && ngx_http_claw_resp_scan(S(":\r\n"), &nodes) == -1
       && ngx_http_claw_resp_scan(S("+a\rb\r\n"), &nodes) == -1
       && ngx_http_claw_resp_scan(S("$99999999999999999999\r\n"), &nodes)
          == -1
       && ngx_http_claw_resp_scan(S("*9\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n"
                                    "*1\r\n*1\r\n*1\r\n*1\r\n"), &nodes) == -1,
       "RESP: malformed replies, and nesting deeper than %d",
       NGX_HTTP_CLAW_RESP_DEPTH);

    argv[0] = (const unsigned char *) "SET";
    argv[1] = (const unsigned char *) "k";
    argv[2] = (const unsigned char *) "a\r\nb";
    lens[0] = 3;
    lens[1] = 1;
    lens[2] = 4;

    len = ngx_http_claw_resp_command(buf, 3, argv, lens) - buf;
    ok(len <= ngx_http_claw_resp_command_len(3, lens)
       && len == sizeof("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n") - 1
       && memcmp(buf, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n", len)
          == 0,
       "RESP: a command is an array of bulk strings, binary-safe");

    argv[1] = NULL;
    lens[1] = 0;

    len = ngx_http_claw_resp_command(buf, 2, argv, lens) - buf;
    ok(len == sizeof("*2\r\n$3\r\nSET\r\n$0\r\n\r\n") - 1
       && memcmp(buf, "*2\r\n$3\r\nSET\r\n$0\r\n\r\n", len) == 0,
       "RESP: an empty argument with no data");
}


/* allow= networks and max_body= sizes */

static void
test_rules(void)
{
    ngx_http_claw_cidr_t  c;
    struct sockaddr_in    in;
    struct sockaddr_in6   in6;
    int64_t               size;
    char                  text[64];
    size_t                n;

    ok(ngx_http_claw_parse_cidr(S("10.1.2.3/8"), &c) == 0 && c.family == 4
       && c.bits == 8 && c.addr[0] == 10 && c.addr[1] == 0,
       "cidr: host bits cleared");
    n = ngx_http_claw_cidr_text(&c, text);
    ok(n == 10 && memcmp(text, "10.0.0.0/8", n) == 0, "cidr: written back");
    ok(ngx_http_claw_parse_cidr(S("2001:db8::1"), &c) == 0 && c.bits == 128,
       "cidr: an address alone is /128");
    ok(ngx_http_claw_parse_cidr(S("10.0.0.0/33"), &c) != 0
       && ngx_http_claw_parse_cidr(S("10.0.0.0/"), &c) != 0
       && ngx_http_claw_parse_cidr(S("10.0.0/8"), &c) != 0
       && ngx_http_claw_parse_cidr(S("/8"), &c) != 0
       && ngx_http_claw_parse_cidr(S("::/129"), &c) != 0
       && ngx_http_claw_parse_cidr(S("10.0.0.0/8x"), &c) != 0,
       "cidr: malformed ones refused");

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.77", &in.sin_addr);
    (void) ngx_http_claw_parse_cidr(S("192.0.2.64/26"), &c);
    ok(ngx_http_claw_cidr_match(&c, (struct sockaddr *) &in),
       "cidr: 192.0.2.77 in 192.0.2.64/26");
    (void) ngx_http_claw_parse_cidr(S("192.0.2.0/26"), &c);
    ok(!ngx_http_claw_cidr_match(&c, (struct sockaddr *) &in),
       "cidr: not in 192.0.2.0/26");
    (void) ngx_http_claw_parse_cidr(S("0.0.0.0/0"), &c);
    ok(ngx_http_claw_cidr_match(&c, (struct sockaddr *) &in),
       "cidr: everything in /0");

    memset(&in6, 0, sizeof(in6));
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:192.0.2.77", &in6.sin6_addr);
    (void) ngx_http_claw_parse_cidr(S("192.0.2.64/26"), &c);
    ok(ngx_http_claw_cidr_match(&c, (struct sockaddr *) &in6),
       "cidr: a mapped IPv4 client matches its network");
    (void) ngx_http_claw_parse_cidr(S("::ffff:0:0/96"), &c);
    ok(!ngx_http_claw_cidr_match(&c, (struct sockaddr *) &in),
       "cidr: an IPv6 network never matches an IPv4 socket");

    ok(ngx_http_claw_parse_size(S("10m"), &size) == 0
       && size == 10 * 1024 * 1024, "size: 10m");
    ok(ngx_http_claw_parse_size(S("0"), &size) == 0 && size == 0,
       "size: 0");
    ok(ngx_http_claw_parse_size(S("1025"), &size) == 0
       && ngx_http_claw_size_text(size, text) == 4
       && memcmp(text, "1025", 4) == 0, "size: written as it is");
    ok(ngx_http_claw_parse_size(S("2048k"), &size) == 0
       && ngx_http_claw_size_text(size, text) == 2
       && memcmp(text, "2m", 2) == 0, "size: written in its largest unit");
    ok(ngx_http_claw_parse_size(S("m"), &size) != 0
       && ngx_http_claw_parse_size(S("-1"), &size) != 0
       && ngx_http_claw_parse_size(S("5t"), &size) != 0
       && ngx_http_claw_parse_size(S("99999999999999g"), &size) != 0,
       "size: malformed or too large refused");
}


int
main(void)
{
    test_digests();
    test_hosts();
    test_registry_lines();
    test_bearer();
    test_sessions();
    test_cookies_and_args();
    test_gcra();
    test_resp();
    test_rules();

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}
