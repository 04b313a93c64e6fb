
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Scale to zero (claw_wake): an admitted request for a tenant whose
 * container may be asleep (state=asleep) is held until the container
 * accepts a connection.
 *
 * A container a probe saw accept within the last second is taken as up:
 * the request goes on at once.  A wake under way is joined.  Otherwise
 * the request tries a connection itself (a probe, closed at once);
 * refused, it starts a wake.  The zone holds the wake (its deadline, which
 * names it), so that one request among all the workers calls the hook, a
 * subrequest to the claw_wake location (as auth_request's), whose 2xx
 * says the wake started.  The others wait on timers and, once it did,
 * probe the container, one probe every 5 to 100 ms across the workers,
 * until it accepts (then all go on), the hook fails or the timeout passes
 * (then 503 with Retry-After).  Held requests count against the tenant's
 * concurrency limit (they were admitted), and at most "waiting=" of them
 * are held at once, in the zone and in the worker's ledger.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_live.h"
#include "ngx_http_claw_wake.h"


/* a container a probe saw accept this recently is taken as up, ms */
#define NGX_HTTP_CLAW_WAKE_FRESH     1000

/*
 * Between two probes of one container, across the workers: half the
 * time since the request joined the wake, from 5 ms (a container that
 * starts at once is found at once) to 100 ms (one that takes seconds
 * costs little)
 */
#define NGX_HTTP_CLAW_WAKE_SOON      5
#define NGX_HTTP_CLAW_WAKE_EVERY     100

/* a probe's connect() gets this long, ms */
#define NGX_HTTP_CLAW_WAKE_CONNECT   1000


#define NGX_HTTP_CLAW_WAKE_PROBE     0      /* the first look */
#define NGX_HTTP_CLAW_WAKE_HOOK      1      /* calling the hook */
#define NGX_HTTP_CLAW_WAKE_WAIT      2      /* for the container */
#define NGX_HTTP_CLAW_WAKE_DONE      3      /* on its way */

/* a probe's answer */
#define NGX_HTTP_CLAW_PROBE_REFUSED  0
#define NGX_HTTP_CLAW_PROBE_UP       1
#define NGX_HTTP_CLAW_PROBE_ERROR    2      /* this side: no connection */


typedef struct {
    ngx_http_request_t          *request;
    ngx_http_claw_tenant_t      *tenant;
    ngx_http_claw_hold_t        *hold;          /* this worker's record */
    ngx_http_claw_wake_conf_t   *conf;          /* where it was held */
    ngx_peer_connection_t        pc;
    ngx_log_t                    log;           /* a refused probe is
                                                   no error */
    ngx_msec_t                   deadline;      /* the wake's: its name */
    ngx_msec_t                   since;         /* joined it */
    ngx_uint_t                   state;
    ngx_uint_t                   probe;         /* NGX_HTTP_CLAW_PROBE_* */
    ngx_int_t                    status;        /* the hook's */
    unsigned                     probing:1;
    unsigned                     held:1;        /* counted in waiting */
    unsigned                     done:1;        /* the hook answered */
} ngx_http_claw_wake_t;


static ngx_int_t ngx_http_claw_wake_step(ngx_http_request_t *r,
    ngx_http_claw_loc_conf_t *clcf, ngx_http_claw_ctx_t *ctx);
static ngx_int_t ngx_http_claw_wake_join(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx, ngx_http_claw_wake_t *w);
static ngx_int_t ngx_http_claw_wake_wait(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx, ngx_http_claw_wake_t *w);
static ngx_int_t ngx_http_claw_wake_call(ngx_http_request_t *r,
    ngx_http_claw_wake_t *w);
static ngx_int_t ngx_http_claw_wake_called(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_claw_wake_probe(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx, ngx_http_claw_wake_t *w);
static void ngx_http_claw_wake_probe_handler(ngx_event_t *ev);
static void ngx_http_claw_wake_probed(ngx_http_claw_wake_t *w,
    ngx_uint_t probe);
static void ngx_http_claw_wake_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_claw_wake_hold(ngx_http_request_t *r,
    ngx_msec_t delay);
static ngx_int_t ngx_http_claw_wake_page(ngx_http_request_t *r,
    ngx_http_claw_ctx_t *ctx, ngx_http_claw_wake_t *w);
static ngx_uint_t ngx_http_claw_wake_browser(ngx_http_request_t *r);
static void ngx_http_claw_wake_release(ngx_http_claw_wake_t *w);
static void ngx_http_claw_wake_unprobe(ngx_http_claw_wake_t *w);


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
    ngx_int_t              rc;
    ngx_http_claw_wake_t  *w;

    rc = ngx_http_claw_wake_step(r, clcf, ctx);

    if (rc == NGX_DONE) {

        /* answered (the page) and finalized: r and ctx may be gone */
        return NGX_DONE;
    }

    w = ctx->wake;

    if (w && rc != NGX_AGAIN) {

        /* on its way, or answered: no longer held, no probe of its own */

        ngx_http_claw_wake_release(w);
        ngx_http_claw_wake_unprobe(w);

        if (rc == NGX_DECLINED) {
            w->state = NGX_HTTP_CLAW_WAKE_DONE;
        }
    }

    return rc;
}


/* the hook subrequest of a request held for a wake: let it through */

ngx_uint_t
ngx_http_claw_wake_calling(ngx_http_claw_ctx_t *ctx)
{
    ngx_http_claw_wake_t  *w = ctx->wake;

    return w && w->state == NGX_HTTP_CLAW_WAKE_HOOK && !w->done;
}


static ngx_int_t
ngx_http_claw_wake_step(ngx_http_request_t *r, ngx_http_claw_loc_conf_t *clcf,
    ngx_http_claw_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_msec_t                  up, deadline;
    ngx_http_claw_wake_t       *w;
    ngx_http_claw_tenant_t     *t;
    ngx_http_claw_main_conf_t  *cmcf;

    t = ctx->tenant;
    w = ctx->wake;

    if (w == NULL) {

        /* a probe saw it accept a moment ago: no cost at all */

        up = t->wake_up;

        if (up && (ngx_msec_int_t) (ngx_current_msec - up)
                  < NGX_HTTP_CLAW_WAKE_FRESH)
        {
            return NGX_DECLINED;
        }

        w = ngx_pcalloc(r->pool, sizeof(ngx_http_claw_wake_t));
        if (w == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        w->request = r;
        w->tenant = t;
        w->hold = ctx->hold;
        w->conf = clcf->wake;
        ctx->wake = w;

        if (w->conf == NULL) {

            /* asleep, and this location does not wake it */

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "claw: tenant \"%V\" is asleep and \"claw_wake\" "
                          "is off here", &ctx->id);
            return ngx_http_claw_wake_refuse(r, ctx, 60);
        }

        /*
         * A revocation, a suspension must reach a request held: it is
         * linked now, not once it goes on
         */

        if (!ctx->linked) {
            cmcf = ngx_http_get_module_main_conf(r, ngx_http_claw_module);
            ngx_http_claw_live_add(&cmcf->live, ctx);
        }

        w->state = NGX_HTTP_CLAW_WAKE_PROBE;

        /*
         * A wake under way: the container is known down, and a listener
         * in front of it (docker-proxy) may accept before it does
         */

        deadline = t->wake_deadline;

        if (deadline && (ngx_msec_int_t) (deadline - ngx_current_msec) > 0) {
            return ngx_http_claw_wake_join(r, ctx, w);
        }

        rc = ngx_http_claw_wake_probe(r, ctx, w);

        if (rc != NGX_DECLINED) {
            return rc;
        }

    } else if (w->state == NGX_HTTP_CLAW_WAKE_DONE) {

        /* back through an internal redirect: it went on once already */
        return NGX_DECLINED;
    }

    if (ctx->cut) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "claw: request of tenant \"%V\" held for a wake, "
                      "and its credential is no longer good", &ctx->id);
        return NGX_HTTP_FORBIDDEN;
    }

    switch (w->state) {

    case NGX_HTTP_CLAW_WAKE_PROBE:

        if (w->probing) {
            return ngx_http_claw_wake_hold(r, 0);
        }

        if (w->probe == NGX_HTTP_CLAW_PROBE_UP) {
            return NGX_DECLINED;
        }

        if (w->probe == NGX_HTTP_CLAW_PROBE_ERROR) {

            /* no connection could be tried: nothing is known of it */
            return ngx_http_claw_wake_refuse(r, ctx, 1);
        }

        return ngx_http_claw_wake_join(r, ctx, w);

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

            t->wake_failed = w->deadline;
            (void) ngx_atomic_cmp_set(&t->wake_deadline, w->deadline, 0);
            (void) ngx_atomic_fetch_add(&t->wake_failures, 1);

            return ngx_http_claw_wake_refuse(r, ctx, 5);
        }

        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "claw: waking tenant \"%V\"", &ctx->id);

        (void) ngx_atomic_fetch_add(&t->wakes, 1);

        /* the held requests look at the container from now on */

        t->wake_hooked = w->deadline;

        w->state = NGX_HTTP_CLAW_WAKE_WAIT;

        if (w->conf->page && ngx_http_claw_wake_browser(r)) {
            return ngx_http_claw_wake_page(r, ctx, w);
        }

        return ngx_http_claw_wake_wait(r, ctx, w);

    default: /* NGX_HTTP_CLAW_WAKE_WAIT */
        return ngx_http_claw_wake_wait(r, ctx, w);
    }
}


/* the container refused: a wake is started, or the one under way joined */

static ngx_int_t
ngx_http_claw_wake_join(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    ngx_http_claw_wake_t *w)
{
    ngx_msec_t                  now, deadline;
    ngx_http_claw_tenant_t     *t;
    ngx_http_claw_wake_conf_t  *wc;

    t = ctx->tenant;
    wc = w->conf;

    if (ngx_atomic_fetch_add(&t->waiting, 1) >= wc->waiting) {
        (void) ngx_atomic_fetch_add(&t->waiting, (ngx_atomic_int_t) -1);

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "claw: tenant \"%V\" is waking with %ui requests "
                      "held already", &ctx->id, wc->waiting);
        return ngx_http_claw_wake_refuse(r, ctx, 1);
    }

    /* in this worker's ledger too: given back if the worker dies */

    w->held = 1;

    if (w->hold) {
        w->hold->waiting++;
    }

    w->since = ngx_current_msec;

    for ( ;; ) {
        now = ngx_current_msec;
        deadline = t->wake_deadline;

        /* signed: another worker's clock may be a little behind */

        if (deadline && (ngx_msec_int_t) (deadline - now) > 0) {
            w->deadline = deadline;
            w->state = NGX_HTTP_CLAW_WAKE_WAIT;
            break;
        }

        /* none, or one whose caller died: this request calls the hook */

        w->deadline = now + wc->timeout;

        if (w->deadline == 0) {
            w->deadline = 1;
        }

        if (ngx_atomic_cmp_set(&t->wake_deadline, deadline, w->deadline)) {
            w->state = NGX_HTTP_CLAW_WAKE_HOOK;

            return ngx_http_claw_wake_call(r, w);
        }
    }

    if (wc->page && ngx_http_claw_wake_browser(r)) {
        return ngx_http_claw_wake_page(r, ctx, w);
    }

    return ngx_http_claw_wake_wait(r, ctx, w);
}


/* a tick of a held request: up, failed, timed out, or a probe and on */

static ngx_int_t
ngx_http_claw_wake_wait(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    ngx_http_claw_wake_t *w)
{
    ngx_int_t                   rc;
    ngx_msec_t                  now, last, every;
    ngx_msec_int_t              left;
    ngx_http_claw_tenant_t     *t;
    ngx_http_claw_wake_conf_t  *wc;

    t = ctx->tenant;
    wc = w->conf;
    now = ngx_current_msec;

    if (w->probe == NGX_HTTP_CLAW_PROBE_UP) {
        return NGX_DECLINED;
    }

    /* another request's probe saw it accept, since this one joined */

    if (t->wake_up && (ngx_msec_int_t) (t->wake_up - w->since) >= 0) {
        return NGX_DECLINED;
    }

    if (t->wake_failed == w->deadline) {
        return ngx_http_claw_wake_refuse(r, ctx, 5);
    }

    if ((ngx_msec_int_t) (now - w->deadline) >= 0) {

        /* one of the requests counts it, and frees the tenant's wake */

        if (ngx_atomic_cmp_set(&t->wake_deadline, w->deadline, 0)) {
            (void) ngx_atomic_fetch_add(&t->wake_failures, 1);

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "claw: the container of tenant \"%V\" did not "
                          "accept a connection before the end of its wake",
                          &ctx->id);
        }

        return ngx_http_claw_wake_refuse(r, ctx, 5);
    }

    /* this location's own timeout: this request gives up, not the wake */

    left = (ngx_msec_int_t) (w->since + wc->timeout - now);

    if (left <= 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "claw: tenant \"%V\" still waking after %M ms",
                      &ctx->id, wc->timeout);
        return ngx_http_claw_wake_refuse(r, ctx, 5);
    }

    left = ngx_min(left, (ngx_msec_int_t) (w->deadline - now));

    every = (ngx_msec_int_t) (now - w->since) > 0 ? (now - w->since) / 2 : 0;
    every = ngx_max(every, NGX_HTTP_CLAW_WAKE_SOON);
    every = ngx_min(every, NGX_HTTP_CLAW_WAKE_EVERY);

    /* probes once the hook said the wake started (it may wait until the
     * container is ready before it answers) */

    if (!w->probing && t->wake_hooked == w->deadline) {
        last = t->wake_probe;

        if ((ngx_msec_int_t) (now - last) >= (ngx_msec_int_t) every
            && ngx_atomic_cmp_set(&t->wake_probe, last, now))
        {
            rc = ngx_http_claw_wake_probe(r, ctx, w);

            if (rc != NGX_DECLINED && rc != NGX_AGAIN) {
                return rc;
            }

            if (w->probe == NGX_HTTP_CLAW_PROBE_UP) {
                return NGX_DECLINED;
            }
        }
    }

    return ngx_http_claw_wake_hold(r, ngx_min((ngx_msec_t) left, every));
}


/* the hook: a subrequest to the claw_wake location, as auth_request's */

static ngx_int_t
ngx_http_claw_wake_call(ngx_http_request_t *r, ngx_http_claw_wake_t *w)
{
    ngx_http_request_t          *sr;
    ngx_http_post_subrequest_t  *ps;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ps->handler = ngx_http_claw_wake_called;
    ps->data = w;

    if (ngx_http_subrequest(r, &w->conf->uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* its answer's body is of no use */

    sr->header_only = 1;

    /* a client that leaves meanwhile is seen leave */

    return ngx_http_claw_wake_hold(r, 0);
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
 * with w->probe set when the answer came at once (a refusal on loopback,
 * a unix socket), NGX_AGAIN while it is under way.
 */

static ngx_int_t
ngx_http_claw_wake_probe(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    ngx_http_claw_wake_t *w)
{
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_peer_connection_t  *pc;

    /* a container down is no error: not even a unix socket's ENOENT */

    w->log = *r->connection->log;
    w->log.log_level = NGX_LOG_ALERT;
    w->log.next = NULL;
    w->log.handler = NULL;
    w->log.data = NULL;

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

    ngx_http_claw_wake_probed(w, rc == NGX_OK ? NGX_HTTP_CLAW_PROBE_UP
                                 : rc == NGX_DECLINED ? NGX_HTTP_CLAW_PROBE_REFUSED
                                 : NGX_HTTP_CLAW_PROBE_ERROR);

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

    ngx_http_claw_wake_probed(w, up ? NGX_HTTP_CLAW_PROBE_UP
                                    : NGX_HTTP_CLAW_PROBE_REFUSED);

    /* the held request looks at it now, not at its next tick */

    c = w->request->connection;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    c->write->delayed = 0;
    ngx_post_event(c->write, &ngx_posted_events);
}


static void
ngx_http_claw_wake_probed(ngx_http_claw_wake_t *w, ngx_uint_t probe)
{
    ngx_msec_t  now, deadline;

    w->probe = probe;

    if (probe == NGX_HTTP_CLAW_PROBE_UP) {
        now = ngx_current_msec;
        w->tenant->wake_up = now ? now : 1;

        /* the wake is over: the next sleep gets a wake of its own */

        deadline = w->tenant->wake_deadline;

        if (deadline && (w->deadline == 0 || deadline == w->deadline)) {
            (void) ngx_atomic_cmp_set(&w->tenant->wake_deadline, deadline, 0);
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


/* 503 for a tenant asleep that this request does not wake (the wrapper
 * gives back what a held request held) */

ngx_int_t
ngx_http_claw_wake_refuse(ngx_http_request_t *r, ngx_http_claw_ctx_t *ctx,
    time_t retry)
{
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
    ngx_http_claw_wake_unprobe(w);

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

        if (w->hold) {
            w->hold->waiting--;
        }
    }
}


/* its own probe, if one is under way, closed: nothing of it comes later */

static void
ngx_http_claw_wake_unprobe(ngx_http_claw_wake_t *w)
{
    if (w->pc.connection) {
        ngx_close_connection(w->pc.connection);
        w->pc.connection = NULL;
    }

    w->probing = 0;
}


/* the request ends, however: its probe closed, its place given back */

void
ngx_http_claw_wake_cleanup(ngx_http_claw_ctx_t *ctx)
{
    ngx_http_claw_wake_t  *w = ctx->wake;

    ngx_http_claw_wake_unprobe(w);
    ngx_http_claw_wake_release(w);
}
