
/*
 * Copyright (C) ngx_claw_module authors
 *
 * RESP2, the protocol of Redis and Valkey: commands encoded as arrays of
 * bulk strings, replies scanned and parsed.  Pure functions, no nginx:
 * unit tests and fuzz targets link this file alone.
 */


#ifndef _NGX_HTTP_CLAW_RESP_H_INCLUDED_
#define _NGX_HTTP_CLAW_RESP_H_INCLUDED_


#include <stddef.h>


#define NGX_HTTP_CLAW_RESP_NIL      0           /* $-1 or *-1 */
#define NGX_HTTP_CLAW_RESP_STATUS   '+'
#define NGX_HTTP_CLAW_RESP_ERROR    '-'
#define NGX_HTTP_CLAW_RESP_INTEGER  ':'
#define NGX_HTTP_CLAW_RESP_STRING   '$'
#define NGX_HTTP_CLAW_RESP_ARRAY    '*'

#define NGX_HTTP_CLAW_RESP_DEPTH    8
#define NGX_HTTP_CLAW_RESP_BULK_MAX (64 * 1024 * 1024)
#define NGX_HTTP_CLAW_RESP_ELTS_MAX (1024 * 1024)


typedef struct ngx_http_claw_resp_s  ngx_http_claw_resp_t;

/* strings point into the buffer the reply was parsed from */
struct ngx_http_claw_resp_s {
    int                       type;
    long long                 integer;
    const unsigned char      *str;
    size_t                    len;
    size_t                    nelts;
    ngx_http_claw_resp_t     *elts;
};


/*
 * The size of the first reply in p[0 .. len), and the number of nodes it
 * parses into; 0 when the reply is not complete yet, -1 when it is
 * malformed (the connection is then of no further use).
 */
long ngx_http_claw_resp_scan(const unsigned char *p, size_t len,
    size_t *nodes);

/* a reply scanned whole into nodes[0 .. n) as counted; nodes[0] is it */
void ngx_http_claw_resp_parse(const unsigned char *p, size_t len,
    ngx_http_claw_resp_t *nodes);

size_t ngx_http_claw_resp_command_len(size_t argc, const size_t *lens);
unsigned char *ngx_http_claw_resp_command(unsigned char *buf, size_t argc,
    const unsigned char *const *argv, const size_t *lens);

/* a string or integer reply equal to the text */
int ngx_http_claw_resp_is(const ngx_http_claw_resp_t *r, const char *text);


#endif /* _NGX_HTTP_CLAW_RESP_H_INCLUDED_ */
