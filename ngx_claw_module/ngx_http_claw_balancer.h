
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_BALANCER_H_INCLUDED_
#define _NGX_HTTP_CLAW_BALANCER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


char *ngx_http_claw_balancer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_claw_keepalive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


#endif /* _NGX_HTTP_CLAW_BALANCER_H_INCLUDED_ */
