
/*
 * Copyright (C) ngx_claw_module authors
 *
 * The operator's credential (claw_admin_token): a Bearer token whose
 * SHA-256 digest the configuration lists, as the registry lists
 * tenants' tokens.  Asked at the admin API, the metrics and the ACME
 * status where it is set; a refusal is a bare 401.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_operator.h"
#include "ngx_http_claw_parse.h"
#include "ngx_http_claw_token.h"


/* claw_admin_token sha256:<hex> ... | off */

char *
ngx_http_claw_operator_directive(ngx_conf_t *cf,
    ngx_http_claw_operator_t **opp)
{
    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_claw_operator_t  *op;

    if (*opp != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        *opp = NULL;
        return NGX_CONF_OK;
    }

    if (cf->args->nelts - 1 > NGX_HTTP_CLAW_MAX_TOKENS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"claw_admin_token\" takes at most %d digests",
                           NGX_HTTP_CLAW_MAX_TOKENS);
        return NGX_CONF_ERROR;
    }

    op = ngx_pcalloc(cf->pool, sizeof(ngx_http_claw_operator_t));
    if (op == NULL) {
        return NGX_CONF_ERROR;
    }

    op->digests = ngx_pnalloc(cf->pool, (cf->args->nelts - 1)
                                        * NGX_HTTP_CLAW_DIGEST_LEN);
    if (op->digests == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_http_claw_parse_digest(value[i].data, value[i].len,
                                       op->digests
                                       + op->n * NGX_HTTP_CLAW_DIGEST_LEN)
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid digest \"%V\" in \"claw_admin_token\": "
                               "\"sha256:<64 hex digits>\" is expected (the "
                               "token itself never goes in the "
                               "configuration)", &value[i]);
            return NGX_CONF_ERROR;
        }

        op->n++;
    }

    *opp = op;

    return NGX_CONF_OK;
}


/* NGX_OK, or 401 with WWW-Authenticate, and nothing else said */

ngx_int_t
ngx_http_claw_operator_check(ngx_http_request_t *r,
    ngx_http_claw_operator_t *op)
{
    ngx_table_elt_t       *h;
    ngx_http_claw_span_t   token;
    u_char                 digest[NGX_HTTP_CLAW_DIGEST_LEN];

    if (op == NULL || op->n == 0) {
        return NGX_OK;
    }

    h = r->headers_in.authorization;

    if (h
        && ngx_http_claw_bearer(h->value.data, h->value.len, &token)
           == NGX_HTTP_CLAW_CRED_OK)
    {
        ngx_http_claw_token_digest(token.data, token.len, digest);

        if (ngx_http_claw_digest_find(digest, op->digests, op->n) >= 0) {
            return NGX_OK;
        }
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "claw: the operator's credential was %s",
                  h ? "refused" : "not given");

    r->headers_out.www_authenticate = ngx_list_push(&r->headers_out.headers);
    if (r->headers_out.www_authenticate == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.www_authenticate->hash = 1;
    ngx_str_set(&r->headers_out.www_authenticate->key, "WWW-Authenticate");
    ngx_str_set(&r->headers_out.www_authenticate->value, "Bearer");

    return NGX_HTTP_UNAUTHORIZED;
}
