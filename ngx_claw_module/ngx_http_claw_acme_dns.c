
/*
 * Copyright (C) ngx_claw_module authors
 *
 * The dns-01 record of an ACME order (RFC 8555, 8.4): put in the zone
 * by an RFC 2136 update signed with TSIG (RFC 8945), or by the
 * operator's hook; looked for on the zone's authoritative servers until
 * it shows; taken out again.  These run on the thread pool, inside an
 * issuance's task, so they block, every wait bounded: DNS over TCP
 * (RFC 7766), one exchange at a time.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <poll.h>
#include <spawn.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "ngx_http_claw_acme_dns.h"


#define NGX_HTTP_CLAW_DNS_TIMEOUT     5000      /* ms, one exchange */
#define NGX_HTTP_CLAW_DNS_RETRY       2000      /* ms, between looks */
#define NGX_HTTP_CLAW_DNS_HOOK_TIME   60        /* s */
#define NGX_HTTP_CLAW_DNS_MSG_MAX     65535
#define NGX_HTTP_CLAW_DNS_FUDGE       300
#define NGX_HTTP_CLAW_DNS_TTL         60

#define NGX_HTTP_CLAW_DNS_T_SOA       6
#define NGX_HTTP_CLAW_DNS_T_TXT       16
#define NGX_HTTP_CLAW_DNS_T_TSIG      250
#define NGX_HTTP_CLAW_DNS_C_IN        1
#define NGX_HTTP_CLAW_DNS_C_NONE      254
#define NGX_HTTP_CLAW_DNS_C_ANY       255
#define NGX_HTTP_CLAW_DNS_OP_UPDATE   5

#define NGX_HTTP_CLAW_DNS_PREFIX      "_acme-challenge."


typedef struct {
    u_char                      *data;
    size_t                       len;
    ngx_uint_t                   rcode;
    ngx_uint_t                   tsig_error;    /* 0: none, or no TSIG */
} ngx_http_claw_dns_answer_t;


static ngx_int_t ngx_http_claw_dns_update(ngx_http_claw_acme_dns_t *dns,
    const char *record, char **values, ngx_uint_t n, ngx_uint_t add,
    char *err, size_t size);
static ngx_int_t ngx_http_claw_dns_zone(ngx_http_claw_acme_dns_t *dns,
    const char *record, u_char *zone, size_t *len, char *err, size_t size);
static ngx_int_t ngx_http_claw_dns_shows(ngx_addr_t *server,
    const char *record, char **values, ngx_uint_t n, char *err, size_t size);
static ngx_uint_t ngx_http_claw_dns_stopped(void);
static ngx_int_t ngx_http_claw_dns_hook(ngx_http_claw_acme_dns_t *dns,
    const char *action, const char *record, const char *value, ngx_log_t *log,
    ngx_uint_t abortable, char *err, size_t size);
static ngx_int_t ngx_http_claw_dns_exchange(ngx_addr_t *server, u_char *msg,
    size_t len, ngx_uint_t abortable, ngx_http_claw_dns_answer_t *ans,
    char *err, size_t size);
static u_char *ngx_http_claw_dns_query(u_char *p, const char *name,
    ngx_uint_t type);
static u_char *ngx_http_claw_dns_name(u_char *p, u_char *end,
    const char *name, size_t len, ngx_uint_t lower);
static ngx_int_t ngx_http_claw_dns_read_name(u_char *msg, size_t len,
    size_t *off, u_char *out, size_t *olen);
static ngx_int_t ngx_http_claw_dns_skip_question(u_char *msg, size_t len,
    size_t *off);
static ngx_int_t ngx_http_claw_dns_skip_name(u_char *msg, size_t len,
    size_t *off);
static ngx_int_t ngx_http_claw_dns_rr(u_char *msg, size_t len, size_t *off,
    ngx_uint_t *type, u_char **rd, size_t *rdlen);
static u_char *ngx_http_claw_dns_tsig(ngx_http_claw_acme_dns_t *dns,
    u_char *msg, u_char *p);
static const char *ngx_http_claw_dns_rcode(ngx_uint_t rcode);
static void ngx_http_claw_dns_error(char *err, size_t size, ngx_err_t e,
    const char *fmt, ...);

#define ngx_http_claw_dns_put16(p, n)                                         \
    (p)[0] = (u_char) ((n) >> 8); (p)[1] = (u_char) (n); (p) += 2

#define ngx_http_claw_dns_get16(p)  (((ngx_uint_t) (p)[0] << 8) | (p)[1])


extern char  **environ;


/* a name that goes into a message: labels of 1 to 63, 255 in all */

ngx_int_t
ngx_http_claw_acme_dns_name_valid(ngx_str_t *name)
{
    u_char  buf[NGX_HTTP_CLAW_ACME_DNS_NAME_MAX];

    if (name->len == 0 || (name->len == 1 && name->data[0] == '.')) {
        return NGX_ERROR;
    }

    return ngx_http_claw_dns_name(buf, buf + sizeof(buf), (char *) name->data,
                                  name->len, 0)
           ? NGX_OK : NGX_ERROR;
}


/*
 * The key as BIND writes it (tsig-keygen, ddns-confgen; nsupdate -k
 * reads the same):
 *
 *     key "name" { algorithm hmac-sha256; secret "base64"; };
 */

char *
ngx_http_claw_acme_dns_key(ngx_conf_t *cf, ngx_http_claw_acme_dns_t *dns,
    ngx_str_t *file)
{
    u_char       *p, *end, *tok, *last;
    size_t        len;
    ssize_t       n;
    ngx_fd_t      fd;
    ngx_str_t     name, alg, secret, word, src, dst;
    ngx_uint_t    state, line;
    u_char        buf[4096];
    u_char        dec[NGX_HTTP_CLAW_ACME_DNS_SECRET_MAX + 3];
    const char   *why;

    if (ngx_conf_full_name(cf->cycle, file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(file->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", file);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, buf, sizeof(buf));
    ngx_close_file(fd);

    if (n < 0 || (size_t) n == sizeof(buf)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, n < 0 ? ngx_errno : 0,
                           "the TSIG key file \"%V\" could not be read%s",
                           file, n < 0 ? "" : ": larger than 4k");
        return NGX_CONF_ERROR;
    }

    ngx_str_null(&name);
    ngx_str_null(&alg);
    ngx_str_null(&secret);
    ngx_str_null(&word);

    p = buf;
    end = buf + n;
    line = 1;
    state = 0;
    why = NULL;

    /* 0 "key", 1 its name, 2 "{", 3 a field, 4 its value, 5 ";" */

    while (state < 6) {

        /* blanks and comments */

        while (p < end) {
            if (*p == '\n') {
                line++;
                p++;

            } else if (*p == ' ' || *p == '\t' || *p == '\r') {
                p++;

            } else if (*p == '#'
                       || (*p == '/' && p + 1 < end && p[1] == '/'))
            {
                while (p < end && *p != '\n') { p++; }

            } else {
                break;
            }
        }

        if (p == end) {
            why = "unexpected end of file";
            break;
        }

        /* a token: a quoted string, a punctuation mark, or a word */

        if (*p == '"') {
            tok = ++p;
            while (p < end && *p != '"' && *p != '\n') { p++; }

            if (p == end || *p != '"') {
                why = "unterminated string";
                break;
            }

            last = p++;

        } else if (*p == '{' || *p == '}' || *p == ';') {
            tok = p++;
            last = p;

        } else {
            tok = p;
            while (p < end && ngx_strchr(" \t\r\n{};\"", *p) == NULL) {
                p++;
            }

            last = p;
        }

        len = last - tok;

        switch (state) {

        case 0:
            if (len != 3 || ngx_strncmp(tok, "key", 3) != 0) {
                why = "\"key\" expected";
                break;
            }

            state = 1;
            continue;

        case 1:
            name.data = tok;
            name.len = len;
            state = 2;
            continue;

        case 2:
            if (len != 1 || *tok != '{') {
                why = "\"{\" expected";
                break;
            }

            state = 3;
            continue;

        case 3:
            if (len == 1 && *tok == '}') {
                state = 6;
                continue;
            }

            word.data = tok;
            word.len = len;
            state = 4;
            continue;

        case 4:
            if (word.len == 9 && ngx_strncmp(word.data, "algorithm", 9) == 0)
            {
                alg.data = tok;
                alg.len = len;

            } else if (word.len == 6
                       && ngx_strncmp(word.data, "secret", 6) == 0)
            {
                secret.data = tok;
                secret.len = len;

            } else {
                why = "unknown field";
                break;
            }

            state = 5;
            continue;

        case 5:
            if (len != 1 || *tok != ';') {
                why = "\";\" expected";
                break;
            }

            state = 3;
            continue;
        }

        break;
    }

    if (why) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the TSIG key file \"%V\", line %ui: %s",
                           file, line, why);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0 || alg.len == 0 || secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the TSIG key file \"%V\" lacks the key's %s",
                           file, name.len == 0 ? "name"
                                 : alg.len == 0 ? "algorithm" : "secret");
        return NGX_CONF_ERROR;
    }

    /* "hmac-sha256." is the same name */

    if (alg.len && alg.data[alg.len - 1] == '.') {
        alg.len--;
    }

    if (alg.len == 11 && ngx_strncasecmp(alg.data, (u_char *) "hmac-sha256",
                                         11) == 0)
    {
        dns->md = EVP_sha256();

    } else if (alg.len == 11
               && ngx_strncasecmp(alg.data, (u_char *) "hmac-sha384", 11)
                  == 0)
    {
        dns->md = EVP_sha384();

    } else if (alg.len == 11
               && ngx_strncasecmp(alg.data, (u_char *) "hmac-sha512", 11)
                  == 0)
    {
        dns->md = EVP_sha512();

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the TSIG key file \"%V\": algorithm \"%V\" is "
                           "not supported (hmac-sha256, hmac-sha384 or "
                           "hmac-sha512)", file, &alg);
        return NGX_CONF_ERROR;
    }

    last = ngx_http_claw_dns_name(dns->alg_name,
                                  dns->alg_name + sizeof(dns->alg_name),
                                  (char *) alg.data, alg.len, 1);
    dns->alg_name_len = last - dns->alg_name;

    last = ngx_http_claw_dns_name(dns->key_name,
                                  dns->key_name + sizeof(dns->key_name),
                                  (char *) name.data, name.len, 1);
    if (last == NULL || last - dns->key_name == 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the TSIG key file \"%V\": \"%V\" is no valid "
                           "key name", file, &name);
        return NGX_CONF_ERROR;
    }

    dns->key_name_len = last - dns->key_name;

    /* ngx_base64_decoded_length() counts the padding too: room for it */

    src = secret;
    dst.data = dec;

    if (ngx_base64_decoded_length(src.len) > sizeof(dec)
        || ngx_decode_base64(&dst, &src) != NGX_OK
        || dst.len == 0
        || dst.len > sizeof(dns->secret))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the TSIG key file \"%V\": the secret is no "
                           "base64 of at most %uz bytes", file,
                           sizeof(dns->secret));
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(dns->secret, dst.data, dst.len);
    dns->secret_len = dst.len;

    ngx_explicit_memzero(dec, sizeof(dec));

    ngx_explicit_memzero(buf, sizeof(buf));

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_claw_acme_dns_present(ngx_http_claw_acme_dns_t *dns,
    const char *domain, char **values, ngx_uint_t n, ngx_log_t *log,
    char *err, size_t size)
{
    char        record[NGX_HTTP_CLAW_ACME_DNS_NAME_MAX + 32];
    ngx_uint_t  i;

    ngx_sprintf((u_char *) record, NGX_HTTP_CLAW_DNS_PREFIX "%s.%Z", domain);

    if (dns->hook.len == 0) {
        return ngx_http_claw_dns_update(dns, record, values, n, 1, err, size);
    }

    /* the hook adds a value at a time, as the name may hold others */

    for (i = 0; i < n; i++) {
        if (ngx_http_claw_dns_hook(dns, "present", record, values[i], log,
                                   1, err, size)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_claw_acme_dns_cleanup(ngx_http_claw_acme_dns_t *dns,
    const char *domain, char **values, ngx_uint_t n, ngx_log_t *log,
    char *err, size_t size)
{
    char        record[NGX_HTTP_CLAW_ACME_DNS_NAME_MAX + 32];
    ngx_int_t   rc;
    ngx_uint_t  i;

    ngx_sprintf((u_char *) record, NGX_HTTP_CLAW_DNS_PREFIX "%s.%Z", domain);

    if (dns->hook.len == 0) {
        return ngx_http_claw_dns_update(dns, record, values, n, 0, err, size);
    }

    rc = NGX_OK;

    for (i = 0; i < n; i++) {
        if (ngx_http_claw_dns_hook(dns, "cleanup", record, values[i], log,
                                   0, err, size)
            != NGX_OK)
        {
            rc = NGX_ERROR;
        }
    }

    return rc;
}


/* every server to verify shows every value, or the deadline passes */

ngx_int_t
ngx_http_claw_acme_dns_visible(ngx_http_claw_acme_dns_t *dns,
    const char *domain, char **values, ngx_uint_t n, time_t deadline,
    char *err, size_t size)
{
    char         record[NGX_HTTP_CLAW_ACME_DNS_NAME_MAX + 32];
    ngx_uint_t   i, seen;
    ngx_addr_t  *servers;

    ngx_sprintf((u_char *) record, NGX_HTTP_CLAW_DNS_PREFIX "%s.%Z", domain);

    servers = dns->verify->elts;

    /* each server is asked until it shows the record, then no more */

    seen = 0;

    for ( ;; ) {
        for (i = 0; i < dns->verify->nelts; i++) {
            if (ngx_http_claw_dns_stopped()) {
                ngx_http_claw_dns_error(err, size, 0, "nginx stops");
                return NGX_ERROR;
            }

            if ((seen & (1u << i)) == 0
                && ngx_http_claw_dns_shows(&servers[i], record, values, n,
                                           err, size)
                   == NGX_OK)
            {
                seen |= 1u << i;
            }
        }

        if (seen == (1u << dns->verify->nelts) - 1) {
            return NGX_OK;
        }

        if (time(NULL) >= deadline || ngx_http_claw_dns_stopped()) {
            break;
        }

        (void) poll(NULL, 0, NGX_HTTP_CLAW_DNS_RETRY);
    }

    /* err says why the last server asked does not show it */

    return NGX_ERROR;
}


/* an RFC 2136 update: the values added (add) or deleted, one message */

static ngx_int_t
ngx_http_claw_dns_update(ngx_http_claw_acme_dns_t *dns, const char *record,
    char **values, ngx_uint_t n, ngx_uint_t add, char *err, size_t size)
{
    u_char                      *p, *end;
    size_t                       len, zlen;
    ngx_int_t                    rc;
    ngx_uint_t                   i;
    u_char                       zone[NGX_HTTP_CLAW_ACME_DNS_NAME_MAX + 1];
    u_char                       msg[4096];
    ngx_http_claw_dns_answer_t   ans;

    if (dns->zone.len) {
        ngx_memcpy(zone, dns->zone.data, dns->zone.len);
        zlen = dns->zone.len;

    } else if (ngx_http_claw_dns_zone(dns, record, zone, &zlen, err, size)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    end = msg + sizeof(msg) - 512;      /* room for the TSIG record */

    if (RAND_bytes(msg, 2) != 1) {
        ngx_http_claw_dns_error(err, size, 0, "no random message id");
        return NGX_ERROR;
    }

    p = msg + 2;
    ngx_http_claw_dns_put16(p, NGX_HTTP_CLAW_DNS_OP_UPDATE << 11);
    ngx_http_claw_dns_put16(p, 1);                  /* the zone */
    ngx_http_claw_dns_put16(p, 0);                  /* prerequisites */
    ngx_http_claw_dns_put16(p, n);                  /* updates */
    ngx_http_claw_dns_put16(p, 0);                  /* additional */

    p = ngx_http_claw_dns_name(p, end, (char *) zone, zlen, 0);
    if (p == NULL) {
        goto long_name;
    }

    ngx_http_claw_dns_put16(p, NGX_HTTP_CLAW_DNS_T_SOA);
    ngx_http_claw_dns_put16(p, NGX_HTTP_CLAW_DNS_C_IN);

    for (i = 0; i < n; i++) {
        len = ngx_strlen(values[i]);

        p = ngx_http_claw_dns_name(p, end, record, ngx_strlen(record), 0);
        if (p == NULL || len > 255 || p + 11 + len > end) {
            goto long_name;
        }

        /* RFC 2136, 2.5.1 adds an RR; 2.5.4 deletes it (class NONE) */

        ngx_http_claw_dns_put16(p, NGX_HTTP_CLAW_DNS_T_TXT);
        ngx_http_claw_dns_put16(p, add ? NGX_HTTP_CLAW_DNS_C_IN
                                       : NGX_HTTP_CLAW_DNS_C_NONE);
        ngx_http_claw_dns_put16(p, 0);
        ngx_http_claw_dns_put16(p, add ? NGX_HTTP_CLAW_DNS_TTL : 0);

        ngx_http_claw_dns_put16(p, len + 1);
        *p++ = (u_char) len;
        p = ngx_cpymem(p, values[i], len);
    }

    p = ngx_http_claw_dns_tsig(dns, msg, p);
    if (p == NULL) {
        ngx_http_claw_dns_error(err, size, 0, "the TSIG signature failed");
        return NGX_ERROR;
    }

    /* a cleaning goes on even while nginx stops: it is short */

    rc = ngx_http_claw_dns_exchange(dns->update, msg, p - msg, add, &ans,
                                    err, size);
    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    rc = NGX_OK;

    if (ans.rcode != 0 || ans.tsig_error) {
        ngx_http_claw_dns_error(err, size, 0,
                                "%s update of \"%s\" in zone \"%*s\" refused "
                                "by %V: %s%s%s",
                                add ? "the" : "the cleaning", record,
                                zlen, zone, &dns->update->name,
                                ngx_http_claw_dns_rcode(ans.rcode),
                                ans.tsig_error ? ", TSIG " : "",
                                ans.tsig_error
                                ? ngx_http_claw_dns_rcode(ans.tsig_error)
                                : "");
        rc = NGX_ERROR;
    }

    free(ans.data);

    return rc;

long_name:

    ngx_http_claw_dns_error(err, size, 0, "the update of \"%s\" is too long",
                            record);
    return NGX_ERROR;
}


/*
 * The zone a name is in, as the update server sees it: the owner of
 * the SOA record in its answer to "SOA <name>?", in the answer section
 * (the name is the zone's apex) or the authority section.
 */

static ngx_int_t
ngx_http_claw_dns_zone(ngx_http_claw_acme_dns_t *dns, const char *record,
    u_char *zone, size_t *len, char *err, size_t size)
{
    u_char                      *msg, *p;
    size_t                       off, olen;
    ngx_uint_t                   i, count, type;
    ngx_http_claw_dns_answer_t   ans;
    u_char                       q[NGX_HTTP_CLAW_ACME_DNS_NAME_MAX + 32];

    p = ngx_http_claw_dns_query(q, record, NGX_HTTP_CLAW_DNS_T_SOA);
    if (p == NULL) {
        ngx_http_claw_dns_error(err, size, 0, "\"%s\" is too long", record);
        return NGX_ERROR;
    }

    if (ngx_http_claw_dns_exchange(dns->update, q, p - q, 0, &ans, err,
                                   size)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    msg = ans.data;

    if (ans.rcode != 0 && ans.rcode != 3) {
        ngx_http_claw_dns_error(err, size, 0, "%V does not tell the zone of "
                                "\"%s\": %s", &dns->update->name, record,
                                ngx_http_claw_dns_rcode(ans.rcode));
        goto failed;
    }

    if (ngx_http_claw_dns_skip_question(msg, ans.len, &off) != NGX_OK) {
        goto malformed;
    }

    count = ngx_http_claw_dns_get16(msg + 6) + ngx_http_claw_dns_get16(msg + 8);

    for (i = 0; i < count; i++) {
        olen = NGX_HTTP_CLAW_ACME_DNS_NAME_MAX;

        if (ngx_http_claw_dns_read_name(msg, ans.len, &off, zone, &olen)
            != NGX_OK
            || off + 10 > ans.len)
        {
            goto malformed;
        }

        type = ngx_http_claw_dns_get16(msg + off);
        off += 10 + ngx_http_claw_dns_get16(msg + off + 8);

        if (type == NGX_HTTP_CLAW_DNS_T_SOA) {
            *len = olen;
            free(msg);
            return NGX_OK;
        }
    }

    ngx_http_claw_dns_error(err, size, 0, "%V is not authoritative for "
                            "\"%s\" (no SOA in its answer): set the zone "
                            "with \"zone=\"", &dns->update->name, record);
    goto failed;

malformed:

    ngx_http_claw_dns_error(err, size, 0, "a malformed answer from %V",
                            &dns->update->name);

failed:

    free(msg);

    return NGX_ERROR;
}


/* NGX_OK: the server answers the TXT records with every value */

static ngx_int_t
ngx_http_claw_dns_shows(ngx_addr_t *server, const char *record,
    char **values, ngx_uint_t n, char *err, size_t size)
{
    u_char                      *msg, *p, *rd, *rend;
    size_t                       off, len, rdlen;
    ngx_uint_t                   i, j, count, type, found;
    ngx_http_claw_dns_answer_t   ans;
    u_char                       q[NGX_HTTP_CLAW_ACME_DNS_NAME_MAX + 32];
    u_char                       txt[256];

    p = ngx_http_claw_dns_query(q, record, NGX_HTTP_CLAW_DNS_T_TXT);
    if (p == NULL) {
        ngx_http_claw_dns_error(err, size, 0, "\"%s\" is too long", record);
        return NGX_ERROR;
    }

    if (ngx_http_claw_dns_exchange(server, q, p - q, 1, &ans, err, size)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    msg = ans.data;
    found = 0;

    /* NXDOMAIN: no record of any type at the name (yet) */

    if (ans.rcode != 0 && ans.rcode != 3) {
        ngx_http_claw_dns_error(err, size, 0, "%V answers \"%s\" with %s",
                                &server->name, record,
                                ngx_http_claw_dns_rcode(ans.rcode));
        goto done;
    }

    if (ngx_http_claw_dns_skip_question(msg, ans.len, &off) != NGX_OK) {
        goto malformed;
    }

    count = ngx_http_claw_dns_get16(msg + 6);

    for (i = 0; i < count; i++) {
        if (ngx_http_claw_dns_rr(msg, ans.len, &off, &type, &rd, &rdlen)
            != NGX_OK)
        {
            goto malformed;
        }

        if (type != NGX_HTTP_CLAW_DNS_T_TXT) {
            continue;
        }

        rend = rd + rdlen;

        /* the record's strings, joined (RFC 8555 values fit one) */

        len = 0;

        while (rd < rend) {
            if (rd + 1 + *rd > rend) {
                goto malformed;
            }

            /* longer than any challenge value: another record */

            if (len + *rd > sizeof(txt)) {
                len = sizeof(txt) + 1;
                break;
            }

            ngx_memcpy(txt + len, rd + 1, *rd);
            len += *rd;
            rd += 1 + *rd;
        }

        for (j = 0; j < n; j++) {
            if (ngx_strlen(values[j]) == len
                && ngx_memcmp(values[j], txt, len) == 0)
            {
                found |= 1u << j;
            }
        }
    }

    if (found != (1u << n) - 1) {
        ngx_http_claw_dns_error(err, size, 0, "%V does not show the TXT "
                                "record of \"%s\" yet", &server->name,
                                record);
        goto done;
    }

    free(msg);

    return NGX_OK;

malformed:

    ngx_http_claw_dns_error(err, size, 0, "a malformed answer from %V",
                            &server->name);

done:

    free(msg);

    return NGX_ERROR;
}


/*
 * "hook present|cleanup <name> <value>", its output to the error log.
 * nginx's SIGCHLD handler reaps every child of a worker, so the exit
 * status comes back through a pipe from a shell in between; the hook
 * gets no end of that pipe.
 */

static ngx_int_t
ngx_http_claw_dns_hook(ngx_http_claw_acme_dns_t *dns, const char *action,
    const char *record, const char *value, ngx_log_t *log,
    ngx_uint_t abortable, char *err, size_t size)
{
    int                          fds[2], status, rc, out;
    char                        *argv[8];
    pid_t                        pid;
    time_t                       deadline;
    ssize_t                      n;
    size_t                       got;
    sigset_t                     set;
    struct pollfd                pfd;
    posix_spawnattr_t            attr;
    posix_spawn_file_actions_t   fa;
    char                         buf[16];

    if (pipe2(fds, O_CLOEXEC) == -1) {
        ngx_http_claw_dns_error(err, size, errno, "pipe() failed");
        return NGX_ERROR;
    }

    argv[0] = "/bin/sh";
    argv[1] = "-c";
    argv[2] = "\"$0\" \"$@\" 3>&-; echo $? >&3";
    argv[3] = (char *) dns->hook.data;
    argv[4] = (char *) action;
    argv[5] = (char *) record;
    argv[6] = (char *) value;
    argv[7] = NULL;

    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);

    /* the thread blocks every signal; nginx ignores SIGPIPE */

    sigemptyset(&set);
    (void) posix_spawnattr_setsigmask(&attr, &set);
    sigaddset(&set, SIGPIPE);
    (void) posix_spawnattr_setsigdefault(&attr, &set);
    (void) posix_spawnattr_setpgroup(&attr, 0);
    (void) posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK
                                           | POSIX_SPAWN_SETSIGDEF
                                           | POSIX_SPAWN_SETPGROUP);

    /* the hook's output to the error log's file (not always stderr) */

    out = (log->file && log->file->fd != NGX_INVALID_FILE) ? log->file->fd
                                                           : 2;

    (void) posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    (void) posix_spawn_file_actions_adddup2(&fa, out, 1);
    (void) posix_spawn_file_actions_adddup2(&fa, out, 2);
    (void) posix_spawn_file_actions_adddup2(&fa, fds[1], 3);
    (void) posix_spawn_file_actions_addclosefrom_np(&fa, 4);

    rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);

    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fds[1]);

    if (rc != 0) {
        close(fds[0]);
        ngx_http_claw_dns_error(err, size, rc, "\"%V %s\" could not be run",
                                &dns->hook, action);
        return NGX_ERROR;
    }

    /* "<status>\n" from the shell, or end of file if it was killed */

    deadline = time(NULL) + NGX_HTTP_CLAW_DNS_HOOK_TIME;
    got = 0;
    status = -1;

    for ( ;; ) {
        pfd.fd = fds[0];
        pfd.events = POLLIN;

        /* nothing of it outlives the wait, nor a worker that stops */

        if (time(NULL) >= deadline
            || (abortable && ngx_http_claw_dns_stopped()))
        {
            (void) kill(-pid, SIGKILL);
            close(fds[0]);

            if (time(NULL) >= deadline) {
                ngx_http_claw_dns_error(err, size, 0, "\"%V %s %s\" did not "
                                        "end in %d seconds, killed",
                                        &dns->hook, action, record,
                                        NGX_HTTP_CLAW_DNS_HOOK_TIME);
            } else {
                ngx_http_claw_dns_error(err, size, 0, "\"%V %s %s\" killed: "
                                        "nginx stops", &dns->hook, action,
                                        record);
            }

            return NGX_ERROR;
        }

        rc = poll(&pfd, 1, 1000);

        if (rc <= 0) {
            continue;
        }

        n = read(fds[0], buf + got, sizeof(buf) - 1 - got);

        if (n <= 0) {
            break;
        }

        got += n;
        buf[got] = '\0';

        if (ngx_strchr(buf, '\n') || got == sizeof(buf) - 1) {
            status = atoi(buf);
            break;
        }
    }

    close(fds[0]);

    if (status != 0) {
        if (status == -1) {
            ngx_http_claw_dns_error(err, size, 0, "\"%V %s %s\" was killed",
                                    &dns->hook, action, record);

        } else {
            ngx_http_claw_dns_error(err, size, 0, "\"%V %s %s\" exited with "
                                    "code %d", &dns->hook, action, record,
                                    status);
        }

        return NGX_ERROR;
    }

    return NGX_OK;
}


/* one exchange over TCP, each step bounded */

static ngx_int_t
ngx_http_claw_dns_exchange(ngx_addr_t *server, u_char *msg, size_t len,
    ngx_uint_t abortable, ngx_http_claw_dns_answer_t *ans, char *err,
    size_t size)
{
    int             fd, rc, e;
    u_char         *p, *data, *end;
    size_t          need, off, rdlen;
    ssize_t         n;
    ngx_msec_t      deadline, now;
    ngx_uint_t      i, count, type, step;
    socklen_t       elen;
    struct pollfd   pfd;
    u_char          hdr[2];

    ans->data = NULL;

    fd = socket(server->sockaddr->sa_family,
                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        ngx_http_claw_dns_error(err, size, errno, "socket() failed");
        return NGX_ERROR;
    }

    data = NULL;
    now = (ngx_msec_t) time(NULL) * 1000;
    deadline = now + NGX_HTTP_CLAW_DNS_TIMEOUT;

    rc = connect(fd, server->sockaddr, server->socklen);

    if (rc == -1 && errno != EINPROGRESS) {
        goto sys_failed;
    }

    /* step 0: connect, 1: write, 2: read the length, 3: read the answer */

    hdr[0] = (u_char) (len >> 8);
    hdr[1] = (u_char) len;
    off = 0;
    need = 0;
    step = (rc == 0) ? 1 : 0;

    while (step < 4) {
        pfd.fd = fd;
        pfd.events = (step < 2) ? POLLOUT : POLLIN;

        now = (ngx_msec_t) time(NULL) * 1000;

        if (now > deadline) {
            ngx_http_claw_dns_error(err, size, 0, "%V did not answer in time",
                                    &server->name);
            goto failed;
        }

        if (abortable && ngx_http_claw_dns_stopped()) {
            ngx_http_claw_dns_error(err, size, 0, "nginx stops");
            goto failed;
        }

        rc = poll(&pfd, 1, 1000);

        if (rc == -1 && errno != EINTR) {
            goto sys_failed;
        }

        if (rc <= 0) {
            continue;
        }

        switch (step) {

        case 0:
            elen = sizeof(e);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) == -1) {
                goto sys_failed;
            }

            if (e) {
                errno = e;
                goto sys_failed;
            }

            step = 1;
            continue;

        case 1:
            if (off < 2) {
                n = send(fd, hdr + off, 2 - off, MSG_NOSIGNAL);
            } else {
                n = send(fd, msg + off - 2, len + 2 - off, MSG_NOSIGNAL);
            }

            if (n == -1) {
                if (errno == EAGAIN || errno == EINTR) {
                    continue;
                }

                goto sys_failed;
            }

            off += n;

            if (off == len + 2) {
                off = 0;
                step = 2;
            }

            continue;

        case 2:
            n = recv(fd, hdr + off, 2 - off, 0);
            break;

        default: /* 3 */
            n = recv(fd, data + off, need - off, 0);
            break;
        }

        if (n == -1) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }

            goto sys_failed;
        }

        if (n == 0) {
            ngx_http_claw_dns_error(err, size, 0, "%V closed the connection",
                                    &server->name);
            goto failed;
        }

        off += n;

        if (step == 2 && off == 2) {
            need = ngx_http_claw_dns_get16(hdr);

            if (need < 12) {
                goto malformed;
            }

            data = malloc(need);
            if (data == NULL) {
                ngx_http_claw_dns_error(err, size, 0, "out of memory");
                goto failed;
            }

            off = 0;
            step = 3;

        } else if (step == 3 && off == need) {
            step = 4;
        }
    }

    close(fd);

    /* the answer to this message */

    if (ngx_memcmp(data, msg, 2) != 0 || (data[2] & 0x80) == 0) {
        fd = -1;
        goto malformed;
    }

    ans->data = data;
    ans->len = need;
    ans->rcode = data[3] & 0x0f;
    ans->tsig_error = 0;

    /* the TSIG error, when the server says one (RFC 8945, 5.3.2) */

    if (ngx_http_claw_dns_skip_question(data, need, &off) != NGX_OK) {
        return NGX_OK;
    }

    count = ngx_http_claw_dns_get16(data + 6) + ngx_http_claw_dns_get16(data + 8)
            + ngx_http_claw_dns_get16(data + 10);

    for (i = 0; i < count; i++) {
        if (ngx_http_claw_dns_rr(data, need, &off, &type, &p, &rdlen)
            != NGX_OK)
        {
            break;
        }

        if (type != NGX_HTTP_CLAW_DNS_T_TSIG) {
            continue;
        }

        /* algorithm, time (6), fudge (2), MAC, original id (2), error */

        end = p + rdlen;
        off = p - data;

        if (ngx_http_claw_dns_skip_name(data, need, &off) != NGX_OK) {
            break;
        }

        p = data + off + 8;

        if (p + 2 > end) {
            break;
        }

        p += 2 + ngx_http_claw_dns_get16(p);

        if (p + 4 <= end) {
            ans->tsig_error = ngx_http_claw_dns_get16(p + 2);
        }

        break;
    }

    return NGX_OK;

sys_failed:

    ngx_http_claw_dns_error(err, size, errno, "%V", &server->name);
    goto failed;

malformed:

    ngx_http_claw_dns_error(err, size, 0, "a malformed answer from %V",
                            &server->name);

failed:

    if (fd != -1) {
        close(fd);
    }

    free(data);

    return NGX_ERROR;
}


/* a question with no recursion asked: the server's own data */

static u_char *
ngx_http_claw_dns_query(u_char *p, const char *name, ngx_uint_t type)
{
    u_char  *start;

    start = p;

    if (RAND_bytes(p, 2) != 1) {
        return NULL;
    }

    p += 2;
    ngx_http_claw_dns_put16(p, 0);
    ngx_http_claw_dns_put16(p, 1);
    ngx_http_claw_dns_put16(p, 0);
    ngx_http_claw_dns_put16(p, 0);
    ngx_http_claw_dns_put16(p, 0);

    p = ngx_http_claw_dns_name(p, start + 12 + NGX_HTTP_CLAW_ACME_DNS_NAME_MAX,
                               name, ngx_strlen(name), 0);
    if (p == NULL) {
        return NULL;
    }

    ngx_http_claw_dns_put16(p, type);
    ngx_http_claw_dns_put16(p, NGX_HTTP_CLAW_DNS_C_IN);

    return p;
}


/* a dotted name (the final dot optional) as labels; lower: canonical */

static u_char *
ngx_http_claw_dns_name(u_char *p, u_char *end, const char *name, size_t len,
    ngx_uint_t lower)
{
    u_char      *label, *start;
    size_t       i;

    if (len && name[len - 1] == '.') {
        len--;
    }

    start = p;
    label = p++;

    for (i = 0; i < len; i++) {
        if (p >= end) {
            return NULL;
        }

        if (name[i] == '.') {
            if (p - label - 1 == 0 || p - label - 1 > 63) {
                return NULL;
            }

            *label = (u_char) (p - label - 1);
            label = p++;
            continue;
        }

        *p++ = lower ? ngx_tolower(name[i]) : (u_char) name[i];
    }

    if (len) {
        if (p - label - 1 == 0 || p - label - 1 > 63 || p >= end) {
            return NULL;
        }

        *label = (u_char) (p - label - 1);
        *p++ = '\0';

    } else {
        *label = '\0';
    }

    if (p - start > NGX_HTTP_CLAW_ACME_DNS_NAME_MAX) {
        return NULL;
    }

    return p;
}


/* a name at *off, compression followed, as dotted lower case */

static ngx_int_t
ngx_http_claw_dns_read_name(u_char *msg, size_t len, size_t *off, u_char *out,
    size_t *olen)
{
    size_t      pos, n, max;
    ngx_uint_t  jumps, i;

    pos = *off;
    n = 0;
    max = *olen;
    jumps = 0;

    for ( ;; ) {
        if (pos >= len) {
            return NGX_ERROR;
        }

        if ((msg[pos] & 0xc0) == 0xc0) {
            if (pos + 1 >= len || ++jumps > 32) {
                return NGX_ERROR;
            }

            if (jumps == 1) {
                *off = pos + 2;
            }

            pos = ((msg[pos] & 0x3f) << 8) | msg[pos + 1];
            continue;
        }

        if (msg[pos] & 0xc0) {
            return NGX_ERROR;
        }

        if (msg[pos] == 0) {
            if (jumps == 0) {
                *off = pos + 1;
            }

            break;
        }

        if (pos + 1 + msg[pos] > len || n + msg[pos] + 1 > max) {
            return NGX_ERROR;
        }

        if (n) {
            out[n++] = '.';
        }

        for (i = 0; i < msg[pos]; i++) {
            out[n++] = ngx_tolower(msg[pos + 1 + i]);
        }

        pos += 1 + msg[pos];
    }

    *olen = n;

    return NGX_OK;
}


/* past the question section */

static ngx_int_t
ngx_http_claw_dns_skip_question(u_char *msg, size_t len, size_t *off)
{
    ngx_uint_t  i, n;

    n = ngx_http_claw_dns_get16(msg + 4);
    *off = 12;

    for (i = 0; i < n; i++) {
        if (ngx_http_claw_dns_skip_name(msg, len, off) != NGX_OK
            || *off + 4 > len)
        {
            return NGX_ERROR;
        }

        *off += 4;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_dns_skip_name(u_char *msg, size_t len, size_t *off)
{
    size_t  pos;

    for (pos = *off; pos < len; pos += 1 + msg[pos]) {

        if ((msg[pos] & 0xc0) == 0xc0) {
            *off = pos + 2;
            return (pos + 2 <= len) ? NGX_OK : NGX_ERROR;
        }

        if (msg[pos] == 0) {
            *off = pos + 1;
            return NGX_OK;
        }
    }

    return NGX_ERROR;
}


/* the record at *off: its type and data; *off past it */

static ngx_int_t
ngx_http_claw_dns_rr(u_char *msg, size_t len, size_t *off, ngx_uint_t *type,
    u_char **rd, size_t *rdlen)
{
    if (ngx_http_claw_dns_skip_name(msg, len, off) != NGX_OK
        || *off + 10 > len)
    {
        return NGX_ERROR;
    }

    *type = ngx_http_claw_dns_get16(msg + *off);
    *rdlen = ngx_http_claw_dns_get16(msg + *off + 8);
    *rd = msg + *off + 10;
    *off += 10 + *rdlen;

    return (*off <= len) ? NGX_OK : NGX_ERROR;
}


/*
 * The TSIG record (RFC 8945, 4.3): the MAC over the message as it is,
 * then the key's name, class ANY, TTL 0, the algorithm, the time
 * signed, the fudge, no error and no other data.
 */

static u_char *
ngx_http_claw_dns_tsig(ngx_http_claw_acme_dns_t *dns, u_char *msg, u_char *p)
{
    u_char        *v, *rdlen;
    time_t         now;
    unsigned int   maclen;
    u_char         vars[NGX_HTTP_CLAW_ACME_DNS_NAME_MAX + 64];
    u_char         mac[EVP_MAX_MD_SIZE];
    HMAC_CTX      *ctx;

    now = time(NULL);

    v = ngx_cpymem(vars, dns->key_name, dns->key_name_len);
    ngx_http_claw_dns_put16(v, NGX_HTTP_CLAW_DNS_C_ANY);
    ngx_http_claw_dns_put16(v, 0);
    ngx_http_claw_dns_put16(v, 0);
    v = ngx_cpymem(v, dns->alg_name, dns->alg_name_len);
    ngx_http_claw_dns_put16(v, (uint64_t) now >> 32);
    ngx_http_claw_dns_put16(v, ((uint64_t) now >> 16) & 0xffff);
    ngx_http_claw_dns_put16(v, (uint64_t) now & 0xffff);
    ngx_http_claw_dns_put16(v, NGX_HTTP_CLAW_DNS_FUDGE);
    ngx_http_claw_dns_put16(v, 0);                  /* error */
    ngx_http_claw_dns_put16(v, 0);                  /* other len */

    ctx = HMAC_CTX_new();
    if (ctx == NULL) {
        return NULL;
    }

    if (HMAC_Init_ex(ctx, dns->secret, (int) dns->secret_len, dns->md, NULL)
        != 1
        || HMAC_Update(ctx, msg, p - msg) != 1
        || HMAC_Update(ctx, vars, v - vars) != 1
        || HMAC_Final(ctx, mac, &maclen) != 1)
    {
        HMAC_CTX_free(ctx);
        return NULL;
    }

    HMAC_CTX_free(ctx);

    p = ngx_cpymem(p, dns->key_name, dns->key_name_len);
    ngx_http_claw_dns_put16(p, NGX_HTTP_CLAW_DNS_T_TSIG);
    ngx_http_claw_dns_put16(p, NGX_HTTP_CLAW_DNS_C_ANY);
    ngx_http_claw_dns_put16(p, 0);
    ngx_http_claw_dns_put16(p, 0);

    rdlen = p;
    p += 2;

    p = ngx_cpymem(p, dns->alg_name, dns->alg_name_len);
    ngx_http_claw_dns_put16(p, (uint64_t) now >> 32);
    ngx_http_claw_dns_put16(p, ((uint64_t) now >> 16) & 0xffff);
    ngx_http_claw_dns_put16(p, (uint64_t) now & 0xffff);
    ngx_http_claw_dns_put16(p, NGX_HTTP_CLAW_DNS_FUDGE);
    ngx_http_claw_dns_put16(p, maclen);
    p = ngx_cpymem(p, mac, maclen);
    p = ngx_cpymem(p, msg, 2);                      /* original id */
    ngx_http_claw_dns_put16(p, 0);
    ngx_http_claw_dns_put16(p, 0);

    rdlen[0] = (u_char) ((p - rdlen - 2) >> 8);
    rdlen[1] = (u_char) (p - rdlen - 2);

    msg[11] = 1;                                    /* ARCOUNT */

    return p;
}


static const char *
ngx_http_claw_dns_rcode(ngx_uint_t rcode)
{
    static const char  *names[] = {
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
        "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"
    };

    if (rcode < sizeof(names) / sizeof(names[0])) {
        return names[rcode];
    }

    switch (rcode) {
    case 16:
        return "BADSIG";
    case 17:
        return "BADKEY";
    case 18:
        return "BADTIME";
    }

    return "an unknown code";
}


/*
 * A worker that stops (nginx -s stop, quit, or a reload) ends a dns-01
 * wait at once: its cleaning follows, and the thread pool it blocks is
 * joined.  Flags of the event loop, read from the task's thread.
 */

static ngx_uint_t
ngx_http_claw_dns_stopped(void)
{
    return *(volatile sig_atomic_t *) &ngx_terminate != 0
           || *(volatile sig_atomic_t *) &ngx_quit != 0
           || *(volatile ngx_uint_t *) &ngx_exiting != 0;
}


/* like ngx_log_error(): the message, and the system's word on e */

static void
ngx_http_claw_dns_error(char *err, size_t size, ngx_err_t e,
    const char *fmt, ...)
{
    u_char   *p, *last;
    va_list   args;

    last = (u_char *) err + size - 1;

    va_start(args, fmt);
    p = ngx_vslprintf((u_char *) err, last, fmt, args);
    va_end(args);

    if (e && last - p > 3) {
        p = ngx_cpymem(p, ": ", 2);
        p = ngx_strerror(e, p, last - p);
    }

    *p = '\0';
}
