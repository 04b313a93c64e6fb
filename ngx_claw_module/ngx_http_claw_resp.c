
/*
 * Copyright (C) ngx_claw_module authors
 */


#include <stdio.h>
#include <string.h>

#include "ngx_http_claw_resp.h"


static long ngx_http_claw_resp_line(const unsigned char *p, size_t len);
static int ngx_http_claw_resp_number(const unsigned char *p, size_t len,
    long long *n);
static long ngx_http_claw_resp_scan_one(const unsigned char *p, size_t len,
    size_t *nodes, int depth);
static const unsigned char *ngx_http_claw_resp_fill(const unsigned char *p,
    const unsigned char *end, ngx_http_claw_resp_t *r,
    ngx_http_claw_resp_t **next);


/* the length of a line up to its CRLF; -2 when it is not whole, -1 bad */

static long
ngx_http_claw_resp_line(const unsigned char *p, size_t len)
{
    const unsigned char  *cr;

    cr = memchr(p, '\r', len);

    if (cr == NULL) {
        return len > 65536 ? -1 : -2;
    }

    if ((size_t) (cr - p) + 1 >= len) {
        return -2;
    }

    if (cr[1] != '\n') {
        return -1;
    }

    return cr - p;
}


static int
ngx_http_claw_resp_number(const unsigned char *p, size_t len, long long *n)
{
    int        neg;
    size_t     i;
    long long  v;

    neg = (len > 0 && p[0] == '-');
    i = neg;

    if (i == len || len - i > 18) {
        return -1;
    }

    for (v = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        v = v * 10 + (p[i] - '0');
    }

    *n = neg ? -v : v;

    return 0;
}


long
ngx_http_claw_resp_scan(const unsigned char *p, size_t len, size_t *nodes)
{
    *nodes = 0;

    return ngx_http_claw_resp_scan_one(p, len, nodes, 0);
}


static long
ngx_http_claw_resp_scan_one(const unsigned char *p, size_t len,
    size_t *nodes, int depth)
{
    long       n, size, part;
    long long  v, i;

    if (len == 0) {
        return 0;
    }

    n = ngx_http_claw_resp_line(p + 1, len - 1);

    if (n < 0) {
        return n == -2 ? 0 : -1;
    }

    size = 1 + n + 2;

    if (++*nodes > NGX_HTTP_CLAW_RESP_ELTS_MAX) {
        return -1;
    }

    switch (p[0]) {

    case '+':
    case '-':
        return size;

    case ':':
        return ngx_http_claw_resp_number(p + 1, n, &v) ? -1 : size;

    case '$':
        if (ngx_http_claw_resp_number(p + 1, n, &v) != 0
            || v < -1 || v > NGX_HTTP_CLAW_RESP_BULK_MAX)
        {
            return -1;
        }

        if (v == -1) {
            return size;
        }

        if ((size_t) (size + v + 2) > len) {
            return 0;
        }

        if (p[size + v] != '\r' || p[size + v + 1] != '\n') {
            return -1;
        }

        return size + v + 2;

    case '*':
        if (ngx_http_claw_resp_number(p + 1, n, &v) != 0
            || v < -1 || v > NGX_HTTP_CLAW_RESP_ELTS_MAX
            || depth == NGX_HTTP_CLAW_RESP_DEPTH)
        {
            return -1;
        }

        for (i = 0; i < v; i++) {
            part = ngx_http_claw_resp_scan_one(p + size, len - size, nodes,
                                               depth + 1);
            if (part <= 0) {
                return part;
            }

            size += part;
        }

        return size;

    default:
        return -1;
    }
}


void
ngx_http_claw_resp_parse(const unsigned char *p, size_t len,
    ngx_http_claw_resp_t *nodes)
{
    ngx_http_claw_resp_t  *next;

    next = nodes + 1;

    (void) ngx_http_claw_resp_fill(p, p + len, nodes, &next);
}


/*
 * An array's elements take the next free nodes together, so that they
 * can be indexed; their own elements come after them.
 */

static const unsigned char *
ngx_http_claw_resp_fill(const unsigned char *p, const unsigned char *end,
    ngx_http_claw_resp_t *r, ngx_http_claw_resp_t **next)
{
    size_t                n, i;
    long long             v;
    const unsigned char  *cr;

    cr = memchr(p + 1, '\r', end - p - 1);
    n = cr - p - 1;

    memset(r, 0, sizeof(ngx_http_claw_resp_t));
    r->type = p[0];

    switch (p[0]) {

    case '+':
    case '-':
        r->str = p + 1;
        r->len = n;
        return cr + 2;

    case ':':
        (void) ngx_http_claw_resp_number(p + 1, n, &r->integer);
        r->str = p + 1;
        r->len = n;
        return cr + 2;

    case '$':
        (void) ngx_http_claw_resp_number(p + 1, n, &v);

        if (v < 0) {
            r->type = NGX_HTTP_CLAW_RESP_NIL;
            return cr + 2;
        }

        r->str = cr + 2;
        r->len = v;
        return cr + 2 + v + 2;

    default: /* '*' */
        (void) ngx_http_claw_resp_number(p + 1, n, &v);

        if (v < 0) {
            r->type = NGX_HTTP_CLAW_RESP_NIL;
            return cr + 2;
        }

        r->nelts = v;
        r->elts = *next;
        *next += v;

        p = cr + 2;

        for (i = 0; i < r->nelts; i++) {
            p = ngx_http_claw_resp_fill(p, end, &r->elts[i], next);
        }

        return p;
    }
}


size_t
ngx_http_claw_resp_command_len(size_t argc, const size_t *lens)
{
    size_t  i, size;

    size = sizeof("*4294967295\r\n") - 1;

    for (i = 0; i < argc; i++) {
        size += sizeof("$4294967295\r\n\r\n") - 1 + lens[i];
    }

    return size;
}


unsigned char *
ngx_http_claw_resp_command(unsigned char *buf, size_t argc,
    const unsigned char *const *argv, const size_t *lens)
{
    size_t  i;

    buf += sprintf((char *) buf, "*%zu\r\n", argc);

    for (i = 0; i < argc; i++) {
        buf += sprintf((char *) buf, "$%zu\r\n", lens[i]);

        if (lens[i]) {                  /* an empty one may have no data */
            memcpy(buf, argv[i], lens[i]);
        }

        buf += lens[i];
        *buf++ = '\r';
        *buf++ = '\n';
    }

    return buf;
}


int
ngx_http_claw_resp_is(const ngx_http_claw_resp_t *r, const char *text)
{
    size_t  len;

    if (r->type != NGX_HTTP_CLAW_RESP_STATUS
        && r->type != NGX_HTTP_CLAW_RESP_STRING
        && r->type != NGX_HTTP_CLAW_RESP_INTEGER)
    {
        return 0;
    }

    len = strlen(text);

    return r->len == len && memcmp(r->str, text, len) == 0;
}
