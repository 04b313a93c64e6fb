
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Pure parsers: host names, tenant ids, upstream addresses, rates and
 * registry lines.  Nothing here depends on nginx, so unit tests and fuzz
 * targets link this file alone.
 */


#ifndef _NGX_HTTP_CLAW_PARSE_H_INCLUDED_
#define _NGX_HTTP_CLAW_PARSE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>


#define NGX_HTTP_CLAW_ID_MAX          63
#define NGX_HTTP_CLAW_HOST_MAX        253
#define NGX_HTTP_CLAW_LABEL_MAX       63
#define NGX_HTTP_CLAW_MAX_TOKENS      16
#define NGX_HTTP_CLAW_MAX_DOMAINS     16
#define NGX_HTTP_CLAW_MAX_ALLOW       16
#define NGX_HTTP_CLAW_BODY_MAX        ((int64_t) 1 << 40)
#define NGX_HTTP_CLAW_DIGEST_LEN      32
#define NGX_HTTP_CLAW_RATE_MAX        1000000
#define NGX_HTTP_CLAW_BURST_MAX       1000000
#define NGX_HTTP_CLAW_CONN_MAX        1000000
#define NGX_HTTP_CLAW_LINE_MAX        65536

/*
 * A connection to a container carries an 8-byte tenant tag after the
 * address (see the balancer); a unix path must leave room for it.
 */
#define NGX_HTTP_CLAW_TAG_LEN         8
#define NGX_HTTP_CLAW_UNIX_PATH_MAX                                           \
    (sizeof(struct sockaddr_un) - offsetof(struct sockaddr_un, sun_path)      \
     - 1 - NGX_HTTP_CLAW_TAG_LEN)

/* "unix:" + the longest path, or "[v6]:port" */
#define NGX_HTTP_CLAW_UPSTREAM_MAX    (5 + NGX_HTTP_CLAW_UNIX_PATH_MAX)


/* results of ngx_http_claw_domain_relation() */
#define NGX_HTTP_CLAW_DOMAIN_APART    0
#define NGX_HTTP_CLAW_DOMAIN_SAME     1
#define NGX_HTTP_CLAW_DOMAIN_UNDER    2
#define NGX_HTTP_CLAW_DOMAIN_PARENT   3

/* results of ngx_http_claw_host_canon() */
#define NGX_HTTP_CLAW_HOST_NAME       0
#define NGX_HTTP_CLAW_HOST_IP         1
#define NGX_HTTP_CLAW_HOST_EMPTY      2
#define NGX_HTTP_CLAW_HOST_INVALID    3


typedef struct {
    const unsigned char      *data;
    size_t                    len;
} ngx_http_claw_span_t;


typedef union {
    struct sockaddr           sockaddr;
    struct sockaddr_in        sockaddr_in;
    struct sockaddr_in6       sockaddr_in6;
    struct sockaddr_un        sockaddr_un;
} ngx_http_claw_addr_t;


typedef struct {
    uint32_t                  number;     /* requests ... */
    uint32_t                  period;     /* ... per this many seconds */
} ngx_http_claw_rate_t;


/* an allow= network: 4 or 6, the prefix length, the address (masked) */
typedef struct {
    unsigned char             family;
    unsigned char             bits;
    unsigned char             pad[2];
    unsigned char             addr[16];
} ngx_http_claw_cidr_t;


/* a tenant's state= */
#define NGX_HTTP_CLAW_STATE_ACTIVE       0
#define NGX_HTTP_CLAW_STATE_SUSPENDED    1     /* 403, reaches nothing */
#define NGX_HTTP_CLAW_STATE_MAINTENANCE  2     /* 503 with Retry-After */
#define NGX_HTTP_CLAW_STATE_ASLEEP       3     /* woken by claw_wake */

/* whose tunnels and credentials stay good */
#define ngx_http_claw_state_open(s)                                           \
    ((s) == NGX_HTTP_CLAW_STATE_ACTIVE || (s) == NGX_HTTP_CLAW_STATE_ASLEEP)

extern const char *const  ngx_http_claw_states[];


/* one parsed registry line; spans point into the (lowercased) line */
typedef struct {
    ngx_http_claw_span_t      id;
    ngx_http_claw_span_t      upstream;
    ngx_http_claw_addr_t      addr;
    socklen_t                 socklen;

    ngx_http_claw_rate_t      rate;       /* number 0: not set */
    int64_t                   burst;      /* -1: not set */
    int64_t                   conn;       /* -1: not set */
    unsigned                  state;      /* NGX_HTTP_CLAW_STATE_* */
    unsigned                  has_state;
    int64_t                   max_body;   /* -1: not set */

    unsigned                  nallow;
    ngx_http_claw_cidr_t      allow[NGX_HTTP_CLAW_MAX_ALLOW];

    unsigned                  ntokens;
    unsigned char             tokens[NGX_HTTP_CLAW_MAX_TOKENS]
                                    [NGX_HTTP_CLAW_DIGEST_LEN];

    unsigned                  ndomains;
    ngx_http_claw_span_t      domains[NGX_HTTP_CLAW_MAX_DOMAINS];
} ngx_http_claw_entry_t;


/* what went wrong, and the text it is about (may be empty) */
typedef struct {
    const char               *reason;
    ngx_http_claw_span_t      what;
} ngx_http_claw_error_t;


int ngx_http_claw_host_canon(const unsigned char *in, size_t len,
    unsigned char *out, size_t *outlen);
int ngx_http_claw_host_label(const unsigned char *host, size_t len,
    const unsigned char *suffix, size_t slen, ngx_http_claw_span_t *label);

int ngx_http_claw_valid_id(const unsigned char *p, size_t len);
int ngx_http_claw_valid_domain(unsigned char *p, size_t *len);
int ngx_http_claw_valid_suffix(unsigned char *p, size_t *len);
int ngx_http_claw_domain_relation(const unsigned char *name, size_t len,
    const unsigned char *other, size_t olen);

int ngx_http_claw_parse_upstream(const unsigned char *p, size_t len,
    ngx_http_claw_addr_t *addr, socklen_t *socklen);
int ngx_http_claw_parse_rate(const unsigned char *p, size_t len,
    ngx_http_claw_rate_t *rate);
int ngx_http_claw_parse_number(const unsigned char *p, size_t len,
    int64_t max, int64_t *value);
int ngx_http_claw_parse_digest(const unsigned char *p, size_t len,
    unsigned char *digest);
int ngx_http_claw_parse_state(const unsigned char *p, size_t len);
int ngx_http_claw_parse_cidr(const unsigned char *p, size_t len,
    ngx_http_claw_cidr_t *cidr);
int ngx_http_claw_cidr_match(const ngx_http_claw_cidr_t *cidr,
    const struct sockaddr *sa);
size_t ngx_http_claw_cidr_text(const ngx_http_claw_cidr_t *cidr,
    char *buf);
int ngx_http_claw_parse_size(const unsigned char *p, size_t len,
    int64_t *size);
size_t ngx_http_claw_size_text(int64_t size, char *buf);

uint64_t ngx_http_claw_gcra(uint64_t tat, uint64_t now, uint64_t interval,
    uint64_t burst, uint64_t *next);
uint64_t ngx_http_claw_rate_interval(ngx_http_claw_rate_t *rate);

/*
 * Returns 1 for a tenant line, 0 for a blank or comment line, -1 with
 * err set for a malformed line.  The line is lowercased in place where
 * case does not matter (domains, hex digests).
 */
int ngx_http_claw_parse_line(unsigned char *line, size_t len,
    ngx_http_claw_entry_t *e, ngx_http_claw_error_t *err);


#endif /* _NGX_HTTP_CLAW_PARSE_H_INCLUDED_ */
