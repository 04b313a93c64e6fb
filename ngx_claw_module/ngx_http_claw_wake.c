
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Scale to zero (claw_wake): an admitted request for a tenant whose
 * container may be asleep (state=asleep) is held until the container
 * accepts a connection.
 *
 * A container seen accepting within the last seconds (by the balancer or
 * a probe) is taken as up: the request goes on at once.  Otherwise the
 * request tries a connection itself (a probe, closed at once); refused,
 * it starts a wake or joins the one under way.  The zone holds the wake
 * (the time it started), so that one request among all the workers calls
 * the hook, a subrequest to the claw_wake location (as auth_request's),
 * whose 2xx says the wake started.  The others wait on timers and probe
 * the container, one probe every 5 to 100 ms across the workers, until
 * it accepts (then all go on), the hook fails or the timeout passes (then
 * 503 with Retry-After).  Held requests count against the tenant's
 * concurrency limit (they were admitted), and at most "waiting=" of them
 * are held at once.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_wake.h"


/* a container seen accepting this recently is taken as up, ms */
#define NGX_HTTP_CLAW_WAKE_FRESH     10000

/*
 * Between two probes of one container, across the workers: half the
 * time since the wake began, from 5 ms (a container that starts at once
 * is found at once) to 100 ms (one that takes seconds costs little)
 */
#define NGX_HTTP_CLAW_WAKE_SOON      5
#define NGX_HTTP_CLAW_WAKE_EVERY     100

/* a probe's connect() gets this long, ms */
#define NGX_HTTP_CLAW_WAKE_CONNECT   1000


#define NGX_HTTP_CLAW_WAKE_PROBE     0      /* the first look */
#define NGX_HTTP_CLAW_WAKE_HOOK      1      /* calling the hook */
#define NGX_HTTP_CLAW_WAKE_WAIT      2      /* for the container */


typedef struct {
    ngx_http_request_t          *request;
    ngx_http_claw_tenant_t      *tenant;
    ngx_peer_connection_t        pc;
    ngx_log_t                    log;           /* a refused probe is
                                                   no error */
    ngx_msec_t                   id;            /* the wake's start */
    ngx_uint_t                   state;
    ngx_int_t                    status;        /* the hook's */
    unsigned                     probing:1;
    unsigned                     probed:1;      /* a result came */
    unsigned                     up:1;          /* the result */
    unsigned                     held:1;        /* counted in waiting */
    unsigned                     done:1;        /* the hook answered */
} ngx_http_claw_wake_t;


static ngx_int_t ngx_http_claw_wake_step(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx);
static ngx_int_t ngx_http_claw_wake_join(ngx_http_request_t *r,
    ngx_http_claw_wake_conf_t *wc, ngx_http_claw_ctx_t *ctx,
    ngx_http_claw_wake_t *w);
static ngx_int_t ngx_http_claw_wake_wait(ngx_http_request_t *r,
    ngx_http_claw_wake_conf_t *wc, ngx_http_claw_ctx_t *ctx,
    ngx_http_claw_wake_t *w);
static ngx_int_t ngx_http_claw_wake_call(ngx_http_request_t *r,
    ngx_http_claw_wake_conf_t *wc, ngx_http_claw_wake_t *w);
static ngx_int_t ngx_http_claw_wake_called(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_claw_wake_probe(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx, ngx_http_claw_wake_t *w);
static void ngx_http_claw_wake_probe_handler(ngx_event_t *ev);
static void ngx_http_claw_wake_probed(ngx_http_claw_wake_t *w,
    ngx_uint_t up);
static void ngx_http_claw_wake_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_claw_wake_hold(ngx_http_request_t *r,
    ngx_msec_t delay);
static ngx_int_t ngx_http_claw_wake_refuse(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx, ngx_http_claw_wake_t *w, time_t retry);
static ngx_int_t ngx_http_claw_wake_page(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx, ngx_http_claw_wake_t *w);
static ngx_uint_t ngx_http_claw_wake_browser(ngx_http_request_t *r);
static void ngx_http_claw_wake_release(ngx_http_claw_wake_t *w);


static u_char  ngx_http_claw_wake_html[] =
"<!DOCTYPE html>" CRLF
"<html><head><meta charset=\"utf-8\">"
"<meta http-equiv=\"refresh\" content=\"2\">"
"<title>Starting</title></head>" CRLF
"<body><p>Starting&hellip; this page reloads by itself.</p></body></html>"
CRLF;


char *
ngx_http_claw_wake_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_loc_conf_t  *clcf = conf;

    ngx_int_t                   n;
    ngx_str_t                  *value, s;
    ngx_uint_t                  i;
    ngx_http_claw_wake_conf_t  *wc;

    if (clcf->wake != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts != 2) {
            return "takes no parameters with \"off\"";
        }

        clcf->wake = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"claw_wake\" wants a location's URI, such as "
                           "\"/_claw_wake\", not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    wc = ngx_pcalloc(cf->pool, sizeof(ngx_http_claw_wake_conf_t));
    if (wc == NULL) {
        return NGX_CONF_ERROR;
    }

    wc->uri = value[1];
    wc->timeout = 30000;
    wc->waiting = 100;
    wc->page = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            wc->timeout = ngx_parse_time(&s, 0);

            if (wc->timeout == (ngx_msec_t) NGX_ERROR || wc->timeout == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "waiting=", 8) == 0) {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);

            if (n < 1) {
                goto invalid;
            }

            wc->waiting = n;
            continue;
        }

        if (ngx_strcmp(value[i].data, "page=on") == 0) {
            wc->page = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "page=off") == 0) {
            continue;
        }

        goto invalid;
    }

    clcf->wake = wc;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" of \"claw_wake\" (known: "
                       "timeout=time, waiting=number, page=on|off)",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * The access phase, for an admitted request of a tenant that may be
 * asleep: NGX_DECLINED to go on, NGX_AGAIN while held, NGX_DONE when
 * answered (the page), or a status.
 */

ngx_int_t
ngx_http_claw_wake(ngx_http_request_t *r, ngx_http_claw_loc_conf_t *clcf,
    ngx_http_claw_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_claw_wake_step(r, clcf, ctx);

    /* on its way to the container: no longer one of those waiting */

    if (rc == NGX_DECLINED && ctx->wake) {
        ngx_http_claw_wake_release(ctx->wake);
    }

    return rc;
}


static ngx_int_t
ngx_http_claw_wake_step(ngx_http_request_t *r, ngx_http_claw_loc_conf_t *clcf,
    ngx_http_claw_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_msec_t                  up;
    ngx_http_claw_wake_t       *w;
    ngx_http_claw_tenant_t     *t;
    ngx_http_claw_wake_conf_t  *wc;

    t = ctx->tenant;
    wc = clcf->wake;
    w = ctx->wake;

    if (w == NULL) {

        /* seen up lately: no cost at all */

        up = t->wake_up;

        if (up && ngx_current_msec - up < NGX_HTTP_CLAW_WAKE_FRESH) {
            return NGX_DECLINED;
        }

        w = ngx_pcalloc(r->pool, sizeof(ngx_http_claw_wake_t));
        if (w == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        w->request = r;
        w->tenant = t;
        ctx->wake = w;

        if (wc == NULL) {

            /* asleep, and this location does not wake it */

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "claw: tenant \"%V\" is asleep and \"claw_wake\" "
                          "is off here", &ctx->id);
            return ngx_http_claw_wake_refuse(r, ctx, w, 60);
        }

        w->state = NGX_HTTP_CLAW_WAKE_PROBE;

        rc = ngx_http_claw_wake_probe(r, ctx, w);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    switch (w->state) {

    case NGX_HTTP_CLAW_WAKE_PROBE:

        if (w->probing) {
            return ngx_http_claw_wake_hold(r, 0);
        }

        if (w->up) {
            return NGX_DECLINED;
        }

        return ngx_http_claw_wake_join(r, wc, ctx, w);

    case NGX_HTTP_CLAW_WAKE_HOOK:

        if (!w->done) {
            return ngx_http_claw_wake_hold(r, 0);
        }

        if (w->status < NGX_HTTP_OK
            || w->status >= NGX_HTTP_SPECIAL_RESPONSE)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "claw: the wake hook of tenant \"%V\" answered %i",
                          &ctx->id, w->status);

            /* the requests waiting on it give up; the next one tries */

            t->wake_failed = w->id;
            (void) ngx_atomic_cmp_set(&t->wake_started, w->id, 0);
            (void) ngx_atomic_fetch_add(&t->wake_failures, 1);

            return ngx_http_claw_wake_refuse(r, ctx, w, 5);
        }

        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "claw: waking tenant \"%V\"", &ctx->id);

        (void) ngx_atomic_fetch_add(&t->wakes, 1);

        w->state = NGX_HTTP_CLAW_WAKE_WAIT;

        if (wc->page && ngx_http_claw_wake_browser(r)) {
            return ngx_http_claw_wake_page(r, ctx, w);
        }

        return ngx_http_claw_wake_wait(r, wc, ctx, w);

    default: /* NGX_HTTP_CLAW_WAKE_WAIT */
        return ngx_http_claw_wake_wait(r, wc, ctx, w);
    }
}


/* the container refused: a wake is started, or the one under way joined */

static ngx_int_t
ngx_http_claw_wake_join(ngx_http_request_t *r, ngx_http_claw_wake_conf_t *wc,
    ngx_http_claw_ctx_t *ctx, ngx_http_claw_wake_t *w)
{
    ngx_msec_t               now, started;
    ngx_http_claw_tenant_t  *t;

    t = ctx->tenant;

    if (ngx_atomic_fetch_add(&t->waiting, 1) >= wc->waiting) {
        (void) ngx_atomic_fetch_add(&t->waiting, (ngx_atomic_int_t) -1);

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "claw: tenant \"%V\" is waking with %ui requests "
                      "held already", &ctx->id, wc->waiting);
        return ngx_http_claw_wake_refuse(r, ctx, w, 1);
    }

    w->held = 1;

    for ( ;; ) {
        now = ngx_current_msec;

        /* never 0, which means no wake */
        now = now ? now : 1;

        started = t->wake_started;

        if (started && now - started < wc->timeout) {
            w->id = started;
            w->state = NGX_HTTP_CLAW_WAKE_WAIT;
            break;
        }

        /* none, or one whose caller died: this request calls the hook */

        if (ngx_atomic_cmp_set(&t->wake_started, started, now)) {
            w->id = now;
            w->state = NGX_HTTP_CLAW_WAKE_HOOK;

            return ngx_http_claw_wake_call(r, wc, w);
        }
    }

    if (wc->page && ngx_http_claw_wake_browser(r)) {
        return ngx_http_claw_wake_page(r, ctx, w);
    }

    return ngx_http_claw_wake_wait(r, wc, ctx, w);
}


/* a tick of a held request: up, failed, timed out, or a probe and on */

static ngx_int_t
ngx_http_claw_wake_wait(ngx_http_request_t *r, ngx_http_claw_wake_conf_t *wc,
    ngx_http_claw_ctx_t *ctx, ngx_http_claw_wake_t *w)
{
    ngx_int_t                rc;
    ngx_msec_t               now, last, left, every;
    ngx_http_claw_tenant_t  *t;

    t = ctx->tenant;
    now = ngx_current_msec;

    every = (now - w->id) / 2;
    every = ngx_max(every, NGX_HTTP_CLAW_WAKE_SOON);
    every = ngx_min(every, NGX_HTTP_CLAW_WAKE_EVERY);

    if (w->probed && w->up) {
        return NGX_DECLINED;
    }

    /* another request's probe saw it accept, after this wake began */

    if ((ngx_msec_int_t) (t->wake_up - w->id) > 0) {
        return NGX_DECLINED;
    }

    if (t->wake_failed == w->id) {
        return ngx_http_claw_wake_refuse(r, ctx, w, 5);
    }

    if (now - w->id >= wc->timeout) {

        /* one of the requests counts it, and frees the tenant's wake */

        if (ngx_atomic_cmp_set(&t->wake_started, w->id, 0)) {
            (void) ngx_atomic_fetch_add(&t->wake_failures, 1);

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "claw: the container of tenant \"%V\" did not "
                          "accept a connection within %M ms of its wake",
                          &ctx->id, wc->timeout);
        }

        return ngx_http_claw_wake_refuse(r, ctx, w, 5);
    }

    if (!w->probing) {
        last = t->wake_probe;

        if (now - last >= every
            && ngx_atomic_cmp_set(&t->wake_probe, last, now))
        {
            w->probed = 0;

            rc = ngx_http_claw_wake_probe(r, ctx, w);

            if (rc != NGX_DECLINED && rc != NGX_AGAIN) {
                return rc;
            }

            if (w->probed && w->up) {
                return NGX_DECLINED;
            }
        }
    }

    left = wc->timeout - (now - w->id);

    return ngx_http_claw_wake_hold(r, ngx_min(left, every));
}


/* the hook: a subrequest to the claw_wake location, as auth_request's */

static ngx_int_t
ngx_http_claw_wake_call(ngx_http_request_t *r, ngx_http_claw_wake_conf_t *wc,
    ngx_http_claw_wake_t *w)
{
    ngx_http_request_t          *sr;
    ngx_http_post_subrequest_t  *ps;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ps->handler = ngx_http_claw_wake_called;
    ps->data = w;

    if (ngx_http_subrequest(r, &wc->uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* its answer's body is of no use */

    sr->header_only = 1;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_claw_wake_called(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_claw_wake_t  *w = data;

    w->done = 1;
    w->status = r->headers_out.status;

    if (w->status == 0 && rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        w->status = rc;
    }

    return rc;
}


/*
 * A connection to the container, closed as soon as it is made: NGX_DECLINED
 * with w->probed set when the answer came at once (a refusal on loopback,
 * a unix socket), NGX_AGAIN while it is under way.
 */

static ngx_int_t
ngx_http_claw_wake_probe(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    ngx_http_claw_wake_t *w)
{
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_peer_connection_t  *pc;

    w->log = *r->connection->log;
    w->log.log_level = NGX_LOG_CRIT;
    w->log.next = NULL;

    pc = &w->pc;
    ngx_memzero(pc, sizeof(ngx_peer_connection_t));

    pc->sockaddr = &ngx_http_claw_tconf_addr(ctx->tconf)->sockaddr;
    pc->socklen = ctx->tconf->socklen;
    pc->name = &ctx->upstream;
    pc->get = ngx_event_get_peer;
    pc->log = &w->log;
    pc->log_error = NGX_ERROR_IGNORE_ECONNRESET;

    rc = ngx_event_connect_peer(pc);

    if (rc == NGX_AGAIN) {
        c = pc->connection;
        c->data = w;
        c->read->handler = ngx_http_claw_wake_probe_handler;
        c->write->handler = ngx_http_claw_wake_probe_handler;

        ngx_add_timer(c->write, NGX_HTTP_CLAW_WAKE_CONNECT);

        w->probing = 1;

        return ngx_http_claw_wake_hold(r, 0);
    }

    if (pc->connection) {
        ngx_close_connection(pc->connection);
        pc->connection = NULL;
    }

    ngx_http_claw_wake_probed(w, rc == NGX_OK);

    return NGX_DECLINED;
}


static void
ngx_http_claw_wake_probe_handler(ngx_event_t *ev)
{
    int                    err;
    socklen_t              len;
    ngx_uint_t             up;
    ngx_connection_t      *c;
    ngx_http_claw_wake_t  *w;

    c = ev->data;
    w = c->data;

    up = 0;

    if (!ev->timedout) {
        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            != -1
            && err == 0)
        {
            up = 1;
        }
    }

    ngx_close_connection(c);
    w->pc.connection = NULL;
    w->probing = 0;

    ngx_http_claw_wake_probed(w, up);

    /* the held request looks at it now, not at its next tick */

    c = w->request->connection;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    c->write->delayed = 0;
    ngx_post_event(c->write, &ngx_posted_events);
}


static void
ngx_http_claw_wake_probed(ngx_http_claw_wake_t *w, ngx_uint_t up)
{
    ngx_msec_t  now;

    w->probed = 1;
    w->up = up;

    if (up) {
        now = ngx_current_msec;
        w->tenant->wake_up = now ? now : 1;

        /* the wake is over: the next sleep gets a wake of its own */

        if (w->id) {
            (void) ngx_atomic_cmp_set(&w->tenant->wake_started, w->id, 0);
        }
    }
}


/* a held request comes back to the access phase on its timer or a probe */

static ngx_int_t
ngx_http_claw_wake_hold(ngx_http_request_t *r, ngx_msec_t delay)
{
    ngx_event_t  *wev;

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_claw_wake_handler;

    if (delay) {
        wev = r->connection->write;
        wev->delayed = 1;
        ngx_add_timer(wev, delay);
    }

    return NGX_AGAIN;
}


static void
ngx_http_claw_wake_handler(ngx_http_request_t *r)
{
    ngx_event_t  *wev;

    wev = r->connection->write;

    if (wev->delayed) {

        /* the client's socket turned writable: not our timer yet */

        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    if (ngx_handle_read_event(r->connection->read, 0) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
}


static ngx_int_t
ngx_http_claw_wake_refuse(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    ngx_http_claw_wake_t *w, time_t retry)
{
    ngx_http_claw_wake_release(w);

    (void) ngx_atomic_fetch_add(&ctx->tenant->refused_wake, 1);
    ctx->limit = NGX_HTTP_CLAW_LIMIT_WAKE;

    if (ngx_http_claw_retry_after(r, retry) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_SERVICE_UNAVAILABLE;
}


/* page=on: a browser gets a page that reloads itself, not a wait */

static ngx_int_t
ngx_http_claw_wake_page(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    ngx_http_claw_wake_t *w)
{
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    ngx_http_claw_wake_release(w);

    ctx->limit = NGX_HTTP_CLAW_LIMIT_WAKE;

    r->headers_out.status = NGX_HTTP_SERVICE_UNAVAILABLE;
    r->headers_out.content_length_n = sizeof(ngx_http_claw_wake_html) - 1;
    ngx_str_set(&r->headers_out.content_type, "text/html");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    h = ngx_http_claw_add_header(r, "Cache-Control", (u_char *) "no-store",
                                 sizeof("no-store") - 1);

    if (h == NULL || ngx_http_claw_retry_after(r, 2) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = ngx_http_claw_wake_html;
    b->last = b->pos + sizeof(ngx_http_claw_wake_html) - 1;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));

    return NGX_DONE;
}


/* a page load: GET, HTML accepted, no upgrade */

static ngx_uint_t
ngx_http_claw_wake_browser(ngx_http_request_t *r)
{
#if (NGX_HTTP_HEADERS)
    ngx_table_elt_t  *h;

    if (r->method != NGX_HTTP_GET || r->headers_in.upgrade) {
        return 0;
    }

    h = r->headers_in.accept;

    return h && ngx_strlcasestrn(h->value.data,
                                 h->value.data + h->value.len,
                                 (u_char *) "text/html",
                                 sizeof("text/html") - 2)
                != NULL;
#else
    return 0;
#endif
}


static void
ngx_http_claw_wake_release(ngx_http_claw_wake_t *w)
{
    if (w->held) {
        (void) ngx_atomic_fetch_add(&w->tenant->waiting, (ngx_atomic_int_t) -1);
        w->held = 0;
    }
}


/* the request ends, however: its probe closed, its place given back */

void
ngx_http_claw_wake_cleanup(ngx_http_claw_ctx_t *ctx)
{
    ngx_http_claw_wake_t  *w = ctx->wake;

    if (w->pc.connection) {
        ngx_close_connection(w->pc.connection);
        w->pc.connection = NULL;
    }

    ngx_http_claw_wake_release(w);
}
