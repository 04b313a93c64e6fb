
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_DOMAINS_H_INCLUDED_
#define _NGX_HTTP_CLAW_DOMAINS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"


typedef struct ngx_http_claw_domains_s  ngx_http_claw_domains_t;


#if (NGX_HTTP_SSL)

/* a custom domain's certificate as a handshake takes it (references) */
typedef struct {
    X509                        *cert;
    EVP_PKEY                    *key;
    STACK_OF(X509)              *chain;
} ngx_http_claw_keypair_t;

void *ngx_http_claw_domains_add_dir(ngx_conf_t *cf, ngx_str_t *path);
ngx_http_claw_keypair_t *ngx_http_claw_domains_cert(void *dir, u_char *name,
    size_t len);

#endif

char *ngx_http_claw_certificate_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_claw_domains_init_module(ngx_http_claw_main_conf_t *cmcf,
    ngx_cycle_t *cycle);
ngx_int_t ngx_http_claw_domains_init_worker(ngx_http_claw_main_conf_t *cmcf,
    ngx_cycle_t *cycle);
ngx_int_t ngx_http_claw_domains_owner(ngx_http_claw_main_conf_t *cmcf,
    u_char *name, size_t len, ngx_str_t *id);


#endif /* _NGX_HTTP_CLAW_DOMAINS_H_INCLUDED_ */
