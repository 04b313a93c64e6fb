
/*
 * The Authorization parser: ngx_http_claw_bearer() on any header value,
 * and ngx_http_claw_token_valid() (token68, bounded) on any token.
 */


#include "fuzz.h"


static int
token68_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9')
           || c == '-' || c == '.' || c == '_' || c == '~' || c == '+'
           || c == '/';
}


/* the reference: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */

static int
token68(const unsigned char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_CLAW_TOKEN_MAX) {
        return 0;
    }

    for (i = 0; i < len && token68_char(p[i]); i++) {
        /* void */
    }

    if (i == 0) {
        return 0;
    }

    while (i < len && p[i] == '=') {
        i++;
    }

    return i == len;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    rc;
    size_t                 i;
    unsigned char         *in, digest[NGX_HTTP_CLAW_DIGEST_LEN];
    ngx_http_claw_span_t   token;

    in = fuzz_dup(data, size);

    CHECK(ngx_http_claw_token_valid(in, size) == token68(in, size));

    token.data = NULL;
    token.len = 0;

    rc = ngx_http_claw_bearer(in, size, &token);

    CHECK(rc == NGX_HTTP_CLAW_CRED_NONE || rc == NGX_HTTP_CLAW_CRED_OK
          || rc == NGX_HTTP_CLAW_CRED_MALFORMED);

    if (rc != NGX_HTTP_CLAW_CRED_NONE) {
        /* the scheme, in any case, then a space, a tab or nothing */
        CHECK(size >= 6 && strncasecmp((char *) in, "bearer", 6) == 0);
        CHECK(size == 6 || in[6] == ' ' || in[6] == '\t');

    } else {
        CHECK(size < 6 || strncasecmp((char *) in, "bearer", 6) != 0
              || (size > 6 && in[6] != ' ' && in[6] != '\t'));
    }

    if (rc == NGX_HTTP_CLAW_CRED_OK) {
        CHECK(fuzz_within(token.data, token.len, in, size));
        CHECK(token.data >= in + 7);
        CHECK(ngx_http_claw_token_valid(token.data, token.len));
        CHECK(token.len >= 1 && token.len <= NGX_HTTP_CLAW_TOKEN_MAX);

        /* only blanks around it */
        for (i = 6; in + i < token.data; i++) {
            CHECK(in[i] == ' ' || in[i] == '\t');
        }

        for (i = token.data + token.len - in; i < size; i++) {
            CHECK(in[i] == ' ' || in[i] == '\t');
        }

        ngx_http_claw_token_digest(token.data, token.len, digest);
        CHECK(ngx_http_claw_digest_find(digest, digest, 1) == 0);
    }

    free(in);

    return 0;
}
