
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_ACME_DNS_H_INCLUDED_
#define _NGX_HTTP_CLAW_ACME_DNS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/evp.h>


#define NGX_HTTP_CLAW_ACME_DNS_SECRET_MAX  128
#define NGX_HTTP_CLAW_ACME_DNS_NAME_MAX    255


/*
 * How a dns-01 record is published: an RFC 2136 update signed with
 * TSIG (RFC 8945) sent to "update", or the operator's hook run as
 * "hook present|cleanup <name> <value>"; and the servers that must show
 * it before the CA is told to look.  Read on the thread pool only.
 */

typedef struct {
    ngx_addr_t                  *update;        /* claw_acme_dns_update */
    ngx_str_t                    zone;          /* zone=, else by SOA */
    u_char                       key_name[NGX_HTTP_CLAW_ACME_DNS_NAME_MAX];
    size_t                       key_name_len;  /* as a wire name */
    u_char                       alg_name[32];
    size_t                       alg_name_len;
    const EVP_MD                *md;
    u_char                       secret[NGX_HTTP_CLAW_ACME_DNS_SECRET_MAX];
    size_t                       secret_len;

    ngx_str_t                    hook;          /* claw_acme_dns_hook */
    ngx_array_t                 *verify;        /* of ngx_addr_t */
    time_t                       wait;          /* claw_acme_dns_wait */
} ngx_http_claw_acme_dns_t;


/* in the configuration: the TSIG key file (BIND's "key" statement) */
ngx_int_t ngx_http_claw_acme_dns_name_valid(ngx_str_t *name);
char *ngx_http_claw_acme_dns_key(ngx_conf_t *cf, ngx_http_claw_acme_dns_t *dns,
    ngx_str_t *file);

/*
 * On the thread pool: the TXT values of "_acme-challenge.<domain>" put
 * in the zone, seen on every server to verify (until deadline), taken
 * out again.  On an error, err holds why (NUL-terminated).  A hook's
 * output goes to the file of log.  A worker that stops ends present and
 * visible at once; cleanup goes on.
 */
ngx_int_t ngx_http_claw_acme_dns_present(ngx_http_claw_acme_dns_t *dns,
    const char *domain, char **values, ngx_uint_t n, ngx_log_t *log,
    char *err, size_t size);
ngx_int_t ngx_http_claw_acme_dns_visible(ngx_http_claw_acme_dns_t *dns,
    const char *domain, char **values, ngx_uint_t n, time_t deadline,
    char *err, size_t size);
ngx_int_t ngx_http_claw_acme_dns_cleanup(ngx_http_claw_acme_dns_t *dns,
    const char *domain, char **values, ngx_uint_t n, ngx_log_t *log,
    char *err, size_t size);


#endif /* _NGX_HTTP_CLAW_ACME_DNS_H_INCLUDED_ */
