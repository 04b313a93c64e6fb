
/*
 * Copyright (C) ngx_claw_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include <poll.h>

#include "ngx_http_claw_redis.h"


#define NGX_HTTP_CLAW_REDIS_BUF    16384
#define NGX_HTTP_CLAW_REDIS_ARGS   8
#define NGX_HTTP_CLAW_REDIS_REPLY_MAX  (128 * 1024 * 1024)


struct ngx_http_claw_redis_cmd_s {
    ngx_queue_t                  queue;
    ngx_http_claw_redis_pt       handler;
    void                        *data;
    ngx_msec_t                   deadline;
};


static ngx_int_t ngx_http_claw_redis_connect(ngx_http_claw_redis_t *rd);
static ngx_int_t ngx_http_claw_redis_queue(ngx_http_claw_redis_t *rd,
    ngx_http_claw_redis_pt handler, void *data, ngx_msec_t timeout,
    ngx_uint_t nargs, ngx_str_t *args);
static ngx_int_t ngx_http_claw_redis_room(ngx_buf_t *b, size_t size);
static void ngx_http_claw_redis_hello(void *data,
    ngx_http_claw_resp_t *reply);
static void ngx_http_claw_redis_write_handler(ngx_event_t *wev);
static void ngx_http_claw_redis_read_handler(ngx_event_t *rev);
static void ngx_http_claw_redis_timer(ngx_http_claw_redis_t *rd);
static void ngx_http_claw_redis_fail(ngx_http_claw_redis_t *rd,
    const char *fmt, ...);
static void ngx_http_claw_redis_tls(ngx_http_claw_redis_t *rd);
static void ngx_http_claw_redis_tls_done(ngx_connection_t *c);
static u_char *ngx_http_claw_redis_tls_error(SSL *ssl, u_char *buf,
    size_t size);
static ngx_int_t ngx_http_claw_redis_tls_check(
    ngx_http_claw_redis_conf_t *conf, SSL *ssl);
static ngx_int_t ngx_http_claw_redis_probe_wait(ngx_socket_t s, short events,
    ngx_msec_t deadline);
static ngx_int_t ngx_http_claw_redis_probe_tls(
    ngx_http_claw_redis_conf_t *conf, ngx_socket_t s, ngx_msec_t deadline,
    SSL **sslp, u_char *err, size_t size);
static ssize_t ngx_http_claw_redis_probe_io(ngx_socket_t s, SSL *ssl,
    u_char *buf, size_t size, ngx_uint_t write, ngx_msec_t deadline,
    u_char *err, size_t errsize);


ngx_int_t
ngx_http_claw_redis_parse_url(ngx_conf_t *cf, ngx_str_t *url,
    ngx_http_claw_redis_conf_t *conf, char **err)
{
    u_char     *p, *last, *at, *colon, *slash;
    ngx_int_t   n;
    ngx_url_t   u;

    conf->url = *url;

    p = url->data;
    last = p + url->len;

    if (url->len > 9 && ngx_strncasecmp(p, (u_char *) "rediss://", 9) == 0) {
        conf->tls = 1;
        p++;

    } else if (url->len < 8
               || ngx_strncasecmp(p, (u_char *) "redis://", 8) != 0)
    {
        *err = "a URL of the form redis[s]://[[user]:password@]host[:port]"
               "[/db] is expected";
        return NGX_ERROR;
    }

    p += 8;

    slash = ngx_strlchr(p, last, '/');

    at = NULL;

    for (colon = slash ? slash : last; colon > p; colon--) {
        if (colon[-1] == '@') {
            at = colon - 1;
            break;
        }
    }

    if (at) {
        colon = ngx_strlchr(p, at, ':');

        if (colon) {
            conf->user.data = p;
            conf->user.len = colon - p;
            conf->password.data = colon + 1;
            conf->password.len = at - colon - 1;

        } else {
            conf->password.data = p;
            conf->password.len = at - p;
        }

        if (conf->password.len == 0) {
            *err = "the password is empty";
            return NGX_ERROR;
        }

        /* messages never show the password */

        conf->url.len = url->len - conf->password.len + 3;
        conf->url.data = ngx_pnalloc(cf->pool, conf->url.len);
        if (conf->url.data == NULL) {
            *err = "out of memory";
            return NGX_ERROR;
        }

        ngx_sprintf(conf->url.data, "%*s***%*s",
                    (size_t) (conf->password.data - url->data), url->data,
                    (size_t) (last - at), at);

        p = at + 1;
    }

    if (slash) {
        n = ngx_atoi(slash + 1, last - slash - 1);

        if (n == NGX_ERROR) {
            *err = "the database is not a number";
            return NGX_ERROR;
        }

        conf->db = n;
        last = slash;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = p;
    u.url.len = last - p;
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        *err = u.err ? u.err : "invalid host";
        return NGX_ERROR;
    }

    if (u.naddrs == 0) {
        *err = "the host has no address";
        return NGX_ERROR;
    }

    conf->addr = u.addrs[0];
    conf->host = u.host;

    return NGX_OK;
}


/*
 * rediss://: TLSv1.2 or 1.3, the server's certificate verified against
 * the trusted CAs (the system's without them) and the name (ssl_name, or
 * the URL's host), and a client certificate when given, as servers
 * started with tls-auth-clients ask.
 */

ngx_int_t
ngx_http_claw_redis_ssl(ngx_conf_t *cf, ngx_http_claw_redis_conf_t *conf,
    ngx_str_t *trusted, ngx_str_t *cert, ngx_str_t *key)
{
    ngx_pool_cleanup_t  *cln;

    conf->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (conf->ssl == NULL) {
        return NGX_ERROR;
    }

    conf->ssl->log = cf->log;

    if (ngx_ssl_create(conf->ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(conf->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = conf->ssl;

    if (conf->ssl_name.len == 0) {
        conf->ssl_name = conf->host;

        /* "[::1]": the address is what the certificate names */

        if (conf->ssl_name.len > 2 && conf->ssl_name.data[0] == '[') {
            conf->ssl_name.data++;
            conf->ssl_name.len -= 2;
        }
    }

    if (cert->len
        && ngx_ssl_certificate(cf, conf->ssl, cert, key, NULL) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (trusted->len) {
        if (ngx_ssl_trusted_certificate(cf, conf->ssl, trusted, 4) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (SSL_CTX_set_default_verify_paths(conf->ssl->ctx) != 1) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_default_verify_paths() failed");
        return NGX_ERROR;
    }

    /* the handshake fails with a certificate that does not verify */

    SSL_CTX_set_verify(conf->ssl->ctx, SSL_VERIFY_PEER, NULL);

    return NGX_OK;
}


/* the name to verify and send, on a new SSL connection */

static ngx_int_t
ngx_http_claw_redis_tls_check(ngx_http_claw_redis_conf_t *conf, SSL *ssl)
{
    u_char           name[NGX_MAXHOSTNAMELEN + 1];
    struct in6_addr  a6;

    if (conf->ssl_name.len > NGX_MAXHOSTNAMELEN) {
        return NGX_ERROR;
    }

    ngx_memcpy(name, conf->ssl_name.data, conf->ssl_name.len);
    name[conf->ssl_name.len] = '\0';

    /* an address is checked against the certificate's IP names */

    if (ngx_inet_addr(name, conf->ssl_name.len) != INADDR_NONE
        || ngx_inet6_addr(name, conf->ssl_name.len, a6.s6_addr) == NGX_OK)
    {
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
                                             (char *) name) == 1
               ? NGX_OK : NGX_ERROR;
    }

    if (SSL_set_tlsext_host_name(ssl, (char *) name) != 1
        || SSL_set1_host(ssl, (char *) name) != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* why a handshake or a read failed, in words */

static u_char *
ngx_http_claw_redis_tls_error(SSL *ssl, u_char *buf, size_t size)
{
    long           v;
    unsigned long  e;
    const char    *reason;

    v = SSL_get_verify_result(ssl);

    if (v != X509_V_OK) {
        ERR_clear_error();
        return ngx_snprintf(buf, size, "the server's certificate: %s",
                            X509_verify_cert_error_string(v));
    }

    e = ERR_peek_last_error();
    ERR_clear_error();

    if (e == 0) {
        return ngx_snprintf(buf, size, "the server closed the connection");
    }

    reason = ERR_reason_error_string(e);

    return ngx_snprintf(buf, size, "TLS: %s", reason ? reason : "an error");
}


void
ngx_http_claw_redis_init(ngx_http_claw_redis_t *rd,
    ngx_http_claw_redis_conf_t *conf, ngx_log_t *log)
{
    ngx_memzero(rd, sizeof(ngx_http_claw_redis_t));

    rd->conf = conf;
    rd->log = log;

    ngx_queue_init(&rd->pending);
    ngx_queue_init(&rd->free);
}


ngx_int_t
ngx_http_claw_redis_command(ngx_http_claw_redis_t *rd,
    ngx_http_claw_redis_pt handler, void *data, ngx_msec_t timeout,
    ngx_uint_t nargs, ngx_str_t *args)
{
    /* the failed commands' handlers, when the worker exits, send none */

    if (rd->gone) {
        return NGX_ERROR;
    }

    if (rd->peer.connection == NULL
        && ngx_http_claw_redis_connect(rd) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_claw_redis_queue(rd, handler, data, timeout, nargs, args)
        != NGX_OK)
    {
        ngx_http_claw_redis_fail(rd, "out of memory");
        return NGX_ERROR;
    }

    if (rd->ready) {
        ngx_post_event(rd->peer.connection->write, &ngx_posted_events);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_redis_connect(ngx_http_claw_redis_t *rd)
{
    ngx_int_t                    rc;
    ngx_str_t                    args[3];
    ngx_uint_t                   n;
    ngx_connection_t            *c;
    ngx_http_claw_redis_conf_t  *conf;
    u_char                       db[NGX_INT_T_LEN];

    conf = rd->conf;

    ngx_memzero(&rd->peer, sizeof(ngx_peer_connection_t));

    rd->peer.sockaddr = conf->addr.sockaddr;
    rd->peer.socklen = conf->addr.socklen;
    rd->peer.name = &conf->url;
    rd->peer.get = ngx_event_get_peer;
    rd->peer.log = rd->log;
    rd->peer.log_error = NGX_ERROR_INFO;

    rc = ngx_event_connect_peer(&rd->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        if (rd->peer.connection) {
            ngx_close_connection(rd->peer.connection);
            rd->peer.connection = NULL;
        }

        rd->closes++;
        ngx_snprintf(rd->error, sizeof(rd->error) - 1, "connect() failed%Z");
        return NGX_ERROR;
    }

    c = rd->peer.connection;
    c->data = rd;

    /* the cluster's own messages say what failed, once */
    c->log_error = NGX_ERROR_INFO;
    c->read->handler = ngx_http_claw_redis_read_handler;
    c->write->handler = ngx_http_claw_redis_write_handler;

    rd->in.pos = rd->in.start;
    rd->in.last = rd->in.start;
    rd->out.pos = rd->out.start;
    rd->out.last = rd->out.start;
    rd->ready = 0;

    /* the greeting goes first, ahead of whatever is queued */

    if (conf->password.len) {
        n = 0;
        ngx_str_set(&args[n], "AUTH");
        n++;

        if (conf->user.len) {
            args[n++] = conf->user;
        }

        args[n++] = conf->password;

        if (ngx_http_claw_redis_queue(rd, ngx_http_claw_redis_hello, rd,
                                      conf->connect_timeout, n, args)
            != NGX_OK)
        {
            goto failed;
        }
    }

    if (conf->db) {
        ngx_str_set(&args[0], "SELECT");
        args[1].data = db;
        args[1].len = ngx_sprintf(db, "%ui", conf->db) - db;

        if (ngx_http_claw_redis_queue(rd, ngx_http_claw_redis_hello, rd,
                                      conf->connect_timeout, 2, args)
            != NGX_OK)
        {
            goto failed;
        }
    }

    if (rc == NGX_AGAIN || conf->ssl) {
        ngx_add_timer(c->write, conf->connect_timeout);

        /* connected at once: the write handler starts TLS */

        if (rc != NGX_AGAIN) {
            ngx_post_event(c->write, &ngx_posted_events);
        }

        return NGX_OK;
    }

    rd->ready = 1;
    ngx_post_event(c->write, &ngx_posted_events);

    return NGX_OK;

failed:

    ngx_http_claw_redis_fail(rd, "out of memory");
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_claw_redis_queue(ngx_http_claw_redis_t *rd,
    ngx_http_claw_redis_pt handler, void *data, ngx_msec_t timeout,
    ngx_uint_t nargs, ngx_str_t *args)
{
    size_t                      size;
    ngx_uint_t                  i;
    ngx_queue_t                *q;
    ngx_http_claw_redis_cmd_t  *cmd;
    const u_char               *argv[NGX_HTTP_CLAW_REDIS_ARGS];
    size_t                      lens[NGX_HTTP_CLAW_REDIS_ARGS];
    const u_char              **av;
    size_t                     *lv;

    av = argv;
    lv = lens;

    if (nargs > NGX_HTTP_CLAW_REDIS_ARGS) {
        av = ngx_alloc(nargs * (sizeof(u_char *) + sizeof(size_t)), rd->log);
        if (av == NULL) {
            return NGX_ERROR;
        }

        lv = (size_t *) (av + nargs);
    }

    for (i = 0; i < nargs; i++) {
        av[i] = args[i].data;
        lv[i] = args[i].len;
    }

    size = ngx_http_claw_resp_command_len(nargs, lv);

    if (ngx_http_claw_redis_room(&rd->out, size) != NGX_OK) {
        goto failed;
    }

    if (ngx_queue_empty(&rd->free)) {
        cmd = ngx_alloc(sizeof(ngx_http_claw_redis_cmd_t), rd->log);
        if (cmd == NULL) {
            goto failed;
        }

    } else {
        q = ngx_queue_head(&rd->free);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_http_claw_redis_cmd_t, queue);
    }

    rd->out.last = ngx_http_claw_resp_command(rd->out.last, nargs, av, lv);

    cmd->handler = handler;
    cmd->data = data;
    cmd->deadline = ngx_current_msec + timeout;

    ngx_queue_insert_tail(&rd->pending, &cmd->queue);

    if (av != argv) {
        ngx_free(av);
    }

    return NGX_OK;

failed:

    if (av != argv) {
        ngx_free(av);
    }

    return NGX_ERROR;
}


/* room for size more bytes after b->last, what is unsent moved ahead */

static ngx_int_t
ngx_http_claw_redis_room(ngx_buf_t *b, size_t size)
{
    u_char  *p;
    size_t   used, want;

    if ((size_t) (b->end - b->last) >= size) {
        return NGX_OK;
    }

    used = b->last - b->pos;
    want = ngx_max(NGX_HTTP_CLAW_REDIS_BUF, 2 * (used + size));

    if (b->start && (size_t) (b->end - b->start) >= used + size) {
        ngx_memmove(b->start, b->pos, used);

    } else {
        p = ngx_alloc(want, ngx_cycle->log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (used) {
            ngx_memcpy(p, b->pos, used);
        }

        if (b->start) {
            ngx_free(b->start);
        }

        b->start = p;
        b->end = p + want;
    }

    b->pos = b->start;
    b->last = b->start + used;

    return NGX_OK;
}


static void
ngx_http_claw_redis_hello(void *data, ngx_http_claw_resp_t *reply)
{
    ngx_http_claw_redis_t  *rd = data;

    if (reply == NULL || reply->type != NGX_HTTP_CLAW_RESP_ERROR) {
        return;
    }

    ngx_http_claw_redis_fail(rd, "the server refused the greeting: %*s",
                             reply->len, reply->str);
}


static void
ngx_http_claw_redis_write_handler(ngx_event_t *wev)
{
    int                     err;
    ssize_t                 n;
    socklen_t               len;
    ngx_connection_t       *c;
    ngx_http_claw_redis_t  *rd;

    c = wev->data;
    rd = c->data;

    if (wev->timedout) {
        ngx_http_claw_redis_fail(rd, "connecting timed out");
        return;
    }

    if (!rd->ready) {
        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_http_claw_redis_fail(rd, "connect() failed: %s",
                                     strerror(err));
            return;
        }

        if (wev->timer_set) {
            ngx_del_timer(wev);
        }

        if (rd->conf->ssl) {
            ngx_http_claw_redis_tls(rd);
            return;
        }

        rd->ready = 1;
    }

    while (rd->out.pos < rd->out.last) {
        n = c->send(c, rd->out.pos, rd->out.last - rd->out.pos);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR) {
            ngx_http_claw_redis_fail(rd, "send() failed");
            return;
        }

        rd->out.pos += n;
    }

    if (rd->out.pos == rd->out.last) {
        rd->out.pos = rd->out.start;
        rd->out.last = rd->out.start;
    }

    if (ngx_handle_write_event(wev, 0) != NGX_OK) {
        ngx_http_claw_redis_fail(rd, "write event failed");
        return;
    }

    ngx_http_claw_redis_timer(rd);
}


static void
ngx_http_claw_redis_read_handler(ngx_event_t *rev)
{
    long                        size;
    size_t                      nodes;
    ssize_t                     n;
    ngx_uint_t                  closes;
    ngx_queue_t                *q;
    ngx_connection_t           *c;
    ngx_http_claw_resp_t       *reply;
    ngx_http_claw_redis_t      *rd;
    ngx_http_claw_redis_cmd_t  *cmd;

    c = rev->data;
    rd = c->data;

    if (rev->timedout) {
        ngx_http_claw_redis_fail(rd, "the server did not answer in time");
        return;
    }

    for ( ;; ) {
        if (rd->in.last - rd->in.pos > NGX_HTTP_CLAW_REDIS_REPLY_MAX) {
            ngx_http_claw_redis_fail(rd, "a reply over %uz bytes",
                                     (size_t) NGX_HTTP_CLAW_REDIS_REPLY_MAX);
            return;
        }

        if (ngx_http_claw_redis_room(&rd->in, 4096) != NGX_OK) {
            ngx_http_claw_redis_fail(rd, "out of memory");
            return;
        }

        n = c->recv(c, rd->in.last, rd->in.end - rd->in.last);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_http_claw_redis_fail(rd, n == 0 ? "the server closed the "
                                                  "connection"
                                                : "recv() failed");
            return;
        }

        rd->in.last += n;

        for ( ;; ) {
            size = ngx_http_claw_resp_scan(rd->in.pos,
                                           rd->in.last - rd->in.pos, &nodes);

            if (size == 0) {
                break;
            }

            if (size < 0 || ngx_queue_empty(&rd->pending)) {
                ngx_http_claw_redis_fail(rd, size < 0 ? "malformed reply"
                                                      : "unexpected reply");
                return;
            }

            reply = ngx_alloc(nodes * sizeof(ngx_http_claw_resp_t), rd->log);
            if (reply == NULL) {
                ngx_http_claw_redis_fail(rd, "out of memory");
                return;
            }

            ngx_http_claw_resp_parse(rd->in.pos, size, reply);

            q = ngx_queue_head(&rd->pending);
            ngx_queue_remove(q);
            cmd = ngx_queue_data(q, ngx_http_claw_redis_cmd_t, queue);
            ngx_queue_insert_tail(&rd->free, q);

            /* the handler may close the connection, or send more */

            closes = rd->closes;

            cmd->handler(cmd->data, reply);

            ngx_free(reply);

            if (rd->closes != closes) {
                return;
            }

            rd->in.pos += size;
        }

        if (rd->in.pos == rd->in.last) {
            rd->in.pos = rd->in.start;
            rd->in.last = rd->in.start;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_claw_redis_fail(rd, "read event failed");
        return;
    }

    ngx_http_claw_redis_timer(rd);
}


/* the oldest command's deadline, on the read event */

static void
ngx_http_claw_redis_timer(ngx_http_claw_redis_t *rd)
{
    ngx_msec_int_t              left;
    ngx_event_t                *rev;
    ngx_http_claw_redis_cmd_t  *cmd;

    rev = rd->peer.connection->read;

    if (ngx_queue_empty(&rd->pending)) {
        if (rev->timer_set) {
            ngx_del_timer(rev);
        }

        return;
    }

    cmd = ngx_queue_data(ngx_queue_head(&rd->pending),
                         ngx_http_claw_redis_cmd_t, queue);

    left = (ngx_msec_int_t) (cmd->deadline - ngx_current_msec);

    ngx_add_timer(rev, left > 0 ? (ngx_msec_t) left : 1);
}


static void
ngx_http_claw_redis_fail(ngx_http_claw_redis_t *rd, const char *fmt, ...)
{
    u_char  *p;
    va_list  args;

    va_start(args, fmt);
    p = ngx_vslprintf(rd->error, rd->error + sizeof(rd->error) - 1, fmt,
                      args);
    va_end(args);

    *p = '\0';

    ngx_http_claw_redis_close(rd, NULL);
}


/* every command waiting on the connection fails */

void
ngx_http_claw_redis_close(ngx_http_claw_redis_t *rd, const char *why)
{
    ngx_pool_t                 *pool;
    ngx_connection_t           *c;
    ngx_queue_t                 pending, *q;
    ngx_http_claw_redis_cmd_t  *cmd;

    if (why) {
        (void) ngx_cpystrn(rd->error, (u_char *) why, sizeof(rd->error));
    }

    c = rd->peer.connection;

    if (c) {
        if (c->ssl) {
            c->ssl->no_wait_shutdown = 1;
            c->ssl->no_send_shutdown = 1;
            (void) ngx_ssl_shutdown(c);
        }

        pool = c->pool;

        ngx_close_connection(c);
        rd->peer.connection = NULL;

        if (pool) {
            ngx_destroy_pool(pool);
        }
    }

    rd->ready = 0;
    rd->closes++;

    rd->in.pos = rd->in.start;
    rd->in.last = rd->in.start;
    rd->out.pos = rd->out.start;
    rd->out.last = rd->out.start;

    if (ngx_queue_empty(&rd->pending)) {
        return;
    }

    /* handlers may queue new commands: they go on a new connection */

    pending = rd->pending;
    pending.next->prev = &pending;
    pending.prev->next = &pending;
    ngx_queue_init(&rd->pending);

    while (!ngx_queue_empty(&pending)) {
        q = ngx_queue_head(&pending);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_http_claw_redis_cmd_t, queue);
        ngx_queue_insert_tail(&rd->free, q);

        cmd->handler(cmd->data, NULL);
    }
}


void
ngx_http_claw_redis_free(ngx_http_claw_redis_t *rd)
{
    ngx_queue_t  *q;

    rd->gone = 1;

    ngx_http_claw_redis_close(rd, "exiting");

    while (!ngx_queue_empty(&rd->free)) {
        q = ngx_queue_head(&rd->free);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_http_claw_redis_cmd_t, queue));
    }

    if (rd->in.start) {
        ngx_free(rd->in.start);
        rd->in.start = NULL;
    }

    if (rd->out.start) {
        ngx_free(rd->out.start);
        rd->out.start = NULL;
    }
}


/*
 * At configuration time only (the master, or nginx -t; never a worker):
 * the server is asked for PING, with the greeting (and the TLS handshake
 * of rediss://), within the connect timeout as a whole.  NGX_OK;
 * NGX_DECLINED, no answer; NGX_ERROR, the server refused the greeting or
 * the handshake (a configuration error).
 */

ngx_int_t
ngx_http_claw_redis_probe(ngx_http_claw_redis_conf_t *conf, u_char *err,
    size_t size)
{
    int                    e;
    long                   n;
    SSL                   *ssl;
    size_t                 nodes, len, got, i, want;
    ssize_t                r;
    ngx_int_t              rc;
    socklen_t              elen;
    ngx_socket_t           s;
    ngx_msec_t             deadline;
    ngx_uint_t             restore;
    struct sigaction       sa, old;
    ngx_http_claw_resp_t  *reply;
    const u_char          *argv[3];
    size_t                 lens[3];
    u_char                 out[1024], in[4096], *p, db[NGX_INT_T_LEN];

    if (conf->user.len + conf->password.len > 512) {
        ngx_snprintf(err, size, "credentials too long%Z");
        return NGX_ERROR;
    }

    p = out;
    want = 1;

    if (conf->password.len) {
        n = 0;
        argv[n] = (u_char *) "AUTH";
        lens[n++] = 4;

        if (conf->user.len) {
            argv[n] = conf->user.data;
            lens[n++] = conf->user.len;
        }

        argv[n] = conf->password.data;
        lens[n++] = conf->password.len;

        p = ngx_http_claw_resp_command(p, n, argv, lens);
        want++;
    }

    if (conf->db) {
        argv[0] = (u_char *) "SELECT";
        lens[0] = 6;
        argv[1] = db;
        lens[1] = ngx_sprintf(db, "%ui", conf->db) - db;
        p = ngx_http_claw_resp_command(p, 2, argv, lens);
        want++;
    }

    argv[0] = (u_char *) "PING";
    lens[0] = 4;
    p = ngx_http_claw_resp_command(p, 1, argv, lens);

    len = p - out;
    ssl = NULL;
    restore = 0;

    s = ngx_socket(conf->addr.sockaddr->sa_family, SOCK_STREAM, 0);
    if (s == (ngx_socket_t) -1) {
        ngx_snprintf(err, size, "socket() failed: %s%Z", strerror(errno));
        return NGX_DECLINED;
    }

    if (ngx_nonblocking(s) == -1) {
        ngx_snprintf(err, size, "%s%Z", strerror(errno));
        goto declined;
    }

    ngx_time_update();
    deadline = ngx_current_msec + conf->connect_timeout;

    if (connect(s, conf->addr.sockaddr, conf->addr.socklen) == -1) {
        if (errno != EINPROGRESS) {
            ngx_snprintf(err, size, "connect() failed: %s%Z",
                         strerror(errno));
            goto declined;
        }

        if (ngx_http_claw_redis_probe_wait(s, POLLOUT, deadline) != NGX_OK) {
            ngx_snprintf(err, size, "connecting timed out%Z");
            goto declined;
        }

        e = 0;
        elen = sizeof(int);

        if (getsockopt(s, SOL_SOCKET, SO_ERROR, (void *) &e, &elen) == -1
            || e)
        {
            ngx_snprintf(err, size, "connect() failed: %s%Z",
                         strerror(e ? e : errno));
            goto declined;
        }
    }

    if (conf->ssl) {

        /*
         * OpenSSL writes with write(): a server gone after the handshake
         * would be a SIGPIPE, which nginx ignores only once its
         * configuration is read (never during nginx -t)
         */

        ngx_memzero(&sa, sizeof(struct sigaction));
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);

        if (sigaction(SIGPIPE, &sa, &old) == 0) {
            restore = 1;
        }

        rc = ngx_http_claw_redis_probe_tls(conf, s, deadline, &ssl, err,
                                           size);
        if (rc != NGX_OK) {
            goto done;
        }
    }

    got = 0;

    while (got < len) {
        r = ngx_http_claw_redis_probe_io(s, ssl, out + got, len - got, 1,
                                         deadline, err, size);
        if (r <= 0) {
            rc = (r == NGX_ERROR && ssl) ? NGX_ERROR : NGX_DECLINED;
            goto done;
        }

        got += r;
    }

    got = 0;
    i = 0;

    while (i < want) {
        r = ngx_http_claw_redis_probe_io(s, ssl, in + got, sizeof(in) - got,
                                         0, deadline, err, size);
        if (r <= 0) {

            /* a TLS alert after the handshake: a client certificate */

            rc = (r == NGX_ERROR && ssl) ? NGX_ERROR : NGX_DECLINED;
            goto done;
        }

        got += r;

        for ( ;; ) {
            n = ngx_http_claw_resp_scan(in, got, &nodes);

            if (n == 0) {
                if (got == sizeof(in)) {
                    ngx_snprintf(err, size, "unexpected reply%Z");
                    goto declined;
                }

                break;
            }

            if (n < 0) {
                ngx_snprintf(err, size, "malformed reply: not a "
                             "Redis-protocol server?%Z");
                goto declined;
            }

            reply = ngx_alloc(nodes * sizeof(ngx_http_claw_resp_t),
                              ngx_cycle->log);
            if (reply == NULL) {
                ngx_snprintf(err, size, "out of memory%Z");
                goto declined;
            }

            ngx_http_claw_resp_parse(in, n, reply);

            if (reply->type == NGX_HTTP_CLAW_RESP_ERROR) {
                ngx_snprintf(err, size, "the server refused %s: %*s%Z",
                             (conf->password.len && i == 0) ? "AUTH"
                             : (i + 1 < want ? "SELECT" : "PING"),
                             reply->len, reply->str);
                ngx_free(reply);
                rc = NGX_ERROR;
                goto done;
            }

            if (i + 1 == want && !ngx_http_claw_resp_is(reply, "PONG")) {
                ngx_snprintf(err, size, "PING was not answered PONG: not a "
                             "Redis-protocol server?%Z");
                ngx_free(reply);
                goto declined;
            }

            ngx_free(reply);

            ngx_memmove(in, in + n, got - n);
            got -= n;

            if (++i == want) {
                break;
            }
        }
    }

    rc = NGX_OK;
    goto done;

declined:

    rc = NGX_DECLINED;

done:

    if (ssl) {
        SSL_set_quiet_shutdown(ssl, 1);
        (void) SSL_shutdown(ssl);
        SSL_free(ssl);
        ERR_clear_error();
    }

    ngx_close_socket(s);

    if (restore) {
        (void) sigaction(SIGPIPE, &old, NULL);
    }

    return rc;
}


static ngx_int_t
ngx_http_claw_redis_probe_wait(ngx_socket_t s, short events,
    ngx_msec_t deadline)
{
    struct pollfd   pfd;
    ngx_msec_int_t  left;

    ngx_time_update();
    left = (ngx_msec_int_t) (deadline - ngx_current_msec);

    pfd.fd = s;
    pfd.events = events;
    pfd.revents = 0;

    if (left <= 0 || poll(&pfd, 1, (int) left) != 1) {
        return NGX_AGAIN;
    }

    return NGX_OK;
}


/* the handshake: a refusal is an error, no answer is not */

static ngx_int_t
ngx_http_claw_redis_probe_tls(ngx_http_claw_redis_conf_t *conf,
    ngx_socket_t s, ngx_msec_t deadline, SSL **sslp, u_char *err,
    size_t size)
{
    int   rc, e;
    SSL  *ssl;

    ssl = SSL_new(conf->ssl->ctx);
    *sslp = ssl;

    if (ssl == NULL || SSL_set_fd(ssl, s) != 1
        || ngx_http_claw_redis_tls_check(conf, ssl) != NGX_OK)
    {
        ERR_clear_error();
        ngx_snprintf(err, size, "TLS: the connection could not be set "
                     "up%Z");
        return NGX_DECLINED;
    }

    for ( ;; ) {
        ERR_clear_error();

        rc = SSL_connect(ssl);

        if (rc == 1) {
            break;
        }

        e = SSL_get_error(ssl, rc);

        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            *ngx_http_claw_redis_tls_error(ssl, err, size - 1) = '\0';

            /* a server that hung up is not one that refused */

            return (e == SSL_ERROR_SSL) ? NGX_ERROR : NGX_DECLINED;
        }

        if (ngx_http_claw_redis_probe_wait(s, e == SSL_ERROR_WANT_READ
                                              ? POLLIN : POLLOUT,
                                           deadline)
            != NGX_OK)
        {
            ngx_snprintf(err, size, "the TLS handshake timed out%Z");
            return NGX_DECLINED;
        }
    }

    /*
     * In TLSv1.3 a server that refuses the client's certificate says so
     * after the handshake: its alert is read before anything is sent, as
     * a reset of the connection could discard it.  A server that takes
     * the client sends its session tickets meanwhile.
     */

    if (SSL_version(ssl) != TLS1_3_VERSION) {
        return NGX_OK;
    }

    ngx_time_update();

    if ((ngx_msec_int_t) (deadline - ngx_current_msec) > 200) {
        deadline = ngx_current_msec + 200;
    }

    while (ngx_http_claw_redis_probe_wait(s, POLLIN, deadline) == NGX_OK) {
        ERR_clear_error();

        rc = SSL_peek(ssl, &e, 1);

        if (rc > 0) {
            break;
        }

        e = SSL_get_error(ssl, rc);

        if (e == SSL_ERROR_SSL) {
            *ngx_http_claw_redis_tls_error(ssl, err, size - 1) = '\0';
            return NGX_ERROR;
        }

        if (e != SSL_ERROR_WANT_READ) {
            ERR_clear_error();
            ngx_snprintf(err, size, "the server closed the connection%Z");
            return NGX_DECLINED;
        }
    }

    ERR_clear_error();

    return NGX_OK;
}


/*
 * One send or receive: what was moved; 0, the server closed the
 * connection; NGX_AGAIN, the deadline passed; NGX_ERROR, err says why.
 */

static ssize_t
ngx_http_claw_redis_probe_io(ngx_socket_t s, SSL *ssl, u_char *buf,
    size_t size, ngx_uint_t write, ngx_msec_t deadline, u_char *err,
    size_t errsize)
{
    int      e;
    short    events;
    ssize_t  n;

    for ( ;; ) {
        if (ssl) {
            ERR_clear_error();

            n = write ? SSL_write(ssl, buf, (int) size)
                      : SSL_read(ssl, buf, (int) size);

            if (n > 0) {
                return n;
            }

            e = SSL_get_error(ssl, (int) n);

            if (e == SSL_ERROR_WANT_READ) {
                events = POLLIN;

            } else if (e == SSL_ERROR_WANT_WRITE) {
                events = POLLOUT;

            } else if (e == SSL_ERROR_SSL) {
                *ngx_http_claw_redis_tls_error(ssl, err, errsize - 1) = '\0';
                return NGX_ERROR;

            } else {
                ERR_clear_error();
                ngx_snprintf(err, errsize, "the server closed the "
                             "connection%Z");
                return 0;
            }

        } else {
            n = write ? send(s, buf, size, MSG_NOSIGNAL)
                      : recv(s, buf, size, 0);

            if (n > 0) {
                return n;
            }

            if (n == 0) {
                ngx_snprintf(err, errsize, "the server closed the "
                             "connection%Z");
                return 0;
            }

            if (errno != EAGAIN && errno != EINTR) {
                ngx_snprintf(err, errsize, "%s() failed: %s%Z",
                             write ? "send" : "recv", strerror(errno));
                return NGX_ERROR;
            }

            events = write ? POLLOUT : POLLIN;
        }

        if (ngx_http_claw_redis_probe_wait(s, events, deadline) != NGX_OK) {
            ngx_snprintf(err, errsize, "the server did not answer in "
                         "time%Z");
            return NGX_AGAIN;
        }
    }
}


/* TLS once connected: the handshake, then the greeting goes out */

static void
ngx_http_claw_redis_tls(ngx_http_claw_redis_t *rd)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = rd->peer.connection;

    /* the TLS state lives in the connection's pool, gone with it */

    c->pool = ngx_create_pool(1024, rd->log);

    if (c->pool == NULL
        || ngx_ssl_create_connection(rd->conf->ssl, c, NGX_SSL_CLIENT)
           != NGX_OK
        || ngx_http_claw_redis_tls_check(rd->conf, c->ssl->connection)
           != NGX_OK)
    {
        ERR_clear_error();
        ngx_http_claw_redis_fail(rd, "TLS: the connection could not be set "
                                 "up");
        return;
    }

    /* the unsent commands move when more are queued (_room()) */

    SSL_set_mode(c->ssl->connection, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                                     |SSL_MODE_ENABLE_PARTIAL_WRITE);


    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, rd->conf->connect_timeout);
        c->ssl->handler = ngx_http_claw_redis_tls_done;
        return;
    }

    ngx_http_claw_redis_tls_done(c);
}


static void
ngx_http_claw_redis_tls_done(ngx_connection_t *c)
{
    u_char                 *p;
    ngx_http_claw_redis_t  *rd;
    u_char                  why[120];

    rd = c->data;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (!c->ssl->handshaked) {
        if (c->read->timedout || c->write->timedout) {
            ngx_http_claw_redis_fail(rd, "the TLS handshake timed out");
            return;
        }

        /* nginx logged the reason (at info) and emptied the queue */

        if (SSL_get_verify_result(c->ssl->connection) != X509_V_OK) {
            p = ngx_http_claw_redis_tls_error(c->ssl->connection, why,
                                              sizeof(why));

        } else {
            p = ngx_sprintf(why, "the TLS handshake failed (the reason is "
                            "in the error log, at info)");
        }

        ngx_http_claw_redis_fail(rd, "%*s", (size_t) (p - why), why);
        return;
    }

    c->read->handler = ngx_http_claw_redis_read_handler;
    c->write->handler = ngx_http_claw_redis_write_handler;

    rd->ready = 1;

    ngx_post_event(c->write, &ngx_posted_events);
    ngx_post_event(c->read, &ngx_posted_events);
}
