
/*
 * Copyright (C) ngx_claw_module authors
 *
 * What a credential opened stays open only while the credential is
 * good.  Each worker keeps a list of its requests in flight that were
 * authenticated (WebSocket tunnels and streamed answers included) and,
 * while it has any, looks every 200 ms at a number in the zone that moves
 * whenever a token is taken away or a tenant goes (one atomic read).
 * When it moved, each request of a tenant whose own number moved is
 * checked against the tenant as it is now; a request whose token (or the
 * token its session was minted from) is gone, or whose tenant is gone,
 * has its connection to the container shut down: nginx then ends the
 * tunnel or the stream through its own paths, and the client's
 * connection with it.  A request that has not reached its container yet
 * is refused when it gets there.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_live.h"


#define NGX_HTTP_CLAW_LIVE_EVERY    200         /* ms */

/* on a retired zone, what has been in flight this long is a tunnel */
#define NGX_HTTP_CLAW_LIVE_RETIRED  5000        /* ms */


static void ngx_http_claw_live_check(ngx_event_t *ev);
static void ngx_http_claw_live_traffic(ngx_http_claw_live_t *live);
static void ngx_http_claw_live_cut(ngx_http_claw_ctx_t *ctx,
    const char *why);


void
ngx_http_claw_live_init_worker(ngx_http_claw_live_t *live, ngx_log_t *log)
{
    ngx_queue_init(&live->requests);

    live->check.handler = ngx_http_claw_live_check;
    live->check.data = live;
    live->check.log = log;
    live->check.cancelable = 1;

    live->revoked = live->tables->sh->revoked;
}


void
ngx_http_claw_live_add(ngx_http_claw_live_t *live, ngx_http_claw_ctx_t *ctx)
{
    ngx_queue_insert_tail(&live->requests, &ctx->live);
    ctx->linked = 1;

    if (!live->check.timer_set) {
        ngx_add_timer(&live->check, NGX_HTTP_CLAW_LIVE_EVERY);
    }
}


void
ngx_http_claw_live_remove(ngx_http_claw_ctx_t *ctx)
{
    ngx_queue_remove(&ctx->live);
    ctx->linked = 0;
}


static void
ngx_http_claw_live_check(ngx_event_t *ev)
{
    ngx_http_claw_live_t *live = ev->data;

    ngx_msec_t               now;
    ngx_uint_t               retired;
    ngx_time_t              *tp;
    ngx_queue_t             *q, *next;
    ngx_atomic_uint_t        revoked, seen;
    ngx_http_request_t      *r;
    ngx_http_claw_ctx_t     *ctx;
    ngx_http_claw_tenant_t  *t;

    if (ngx_queue_empty(&live->requests)) {
        return;
    }

    if (++live->ticks % (1000 / NGX_HTTP_CLAW_LIVE_EVERY) == 0) {
        ngx_http_claw_live_traffic(live);
    }

    revoked = live->tables->sh->revoked;
    retired = ngx_http_claw_tables_retired(live->tables);

    if (revoked != live->revoked || retired) {
        live->revoked = revoked;

        tp = ngx_timeofday();
        now = (ngx_msec_t) (tp->sec * 1000 + tp->msec);

        for (q = ngx_queue_head(&live->requests);
             q != ngx_queue_sentinel(&live->requests);
             q = next)
        {
            next = ngx_queue_next(q);
            ctx = ngx_queue_data(q, ngx_http_claw_ctx_t, live);

            /*
             * A reload moved the registry to another zone: a revocation
             * made there cannot be seen here.  Requests that come and go
             * finish; tunnels and streams (in flight for some seconds)
             * end, and their clients come back to the new workers.
             */

            if (retired) {
                r = ctx->request;

                if (now - (ngx_msec_t) (r->start_sec * 1000 + r->start_msec)
                    >= NGX_HTTP_CLAW_LIVE_RETIRED)
                {
                    ngx_http_claw_live_cut(ctx, "a reload replaced the zone");
                }

                continue;
            }

            t = ctx->tenant;
            seen = t->revoked;

            if (seen == ctx->revoked) {
                continue;
            }

            if (!ngx_http_claw_tables_holds(live->tables, t, ctx->digest)) {
                ngx_http_claw_live_cut(ctx, t->dead ? "the tenant is gone"
                                                    : "its token is revoked, "
                                                      "or its tenant is no "
                                                      "longer active");
                continue;
            }

            ctx->revoked = seen;
        }
    }

    if (!ngx_queue_empty(&live->requests)) {
        ngx_add_timer(ev, NGX_HTTP_CLAW_LIVE_EVERY);
    }
}


/*
 * Once a second: a tunnel or a streamed answer that moved bytes either
 * way keeps its tenant from looking idle (?idle=,
 * claw_last_request_timestamp_seconds)
 */

static void
ngx_http_claw_live_traffic(ngx_http_claw_live_t *live)
{
    off_t                   bytes;
    ngx_queue_t            *q;
    ngx_http_request_t     *r;
    ngx_http_upstream_t    *u;
    ngx_http_claw_ctx_t    *ctx;

    for (q = ngx_queue_head(&live->requests);
         q != ngx_queue_sentinel(&live->requests);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_http_claw_ctx_t, live);
        r = ctx->request;
        u = r->upstream;

        if (u == NULL) {
            continue;
        }

        bytes = r->connection->sent
                + (u->peer.connection ? u->peer.connection->sent : 0);

        if (bytes != ctx->traffic) {
            ctx->traffic = bytes;

            if (ctx->tenant->seen != (ngx_atomic_uint_t) ngx_time()) {
                ctx->tenant->seen = ngx_time();
            }
        }
    }
}


static void
ngx_http_claw_live_cut(ngx_http_claw_ctx_t *ctx, const char *why)
{
    ngx_connection_t     *c;
    ngx_http_request_t   *r;
    ngx_http_upstream_t  *u;

    r = ctx->request;

    ngx_http_claw_live_remove(ctx);
    ctx->cut = 1;

    (void) ngx_atomic_fetch_add(&ctx->tenant->revoked_requests, 1);

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "claw: request of tenant \"%V\" ended: %s", &ctx->id,
                  why);

    u = r->upstream;

    if (u == NULL || u->peer.connection == NULL) {
        return;
    }

    c = u->peer.connection;
    u->keepalive = 0;

    /*
     * Shut down, not closed: the connection stays nginx's to close, and
     * it learns of the end the way it learns of a container that went
     * away, from a read event, which is posted in case the kernel's is
     * late.
     */

    if (shutdown(c->fd, SHUT_RDWR) == -1 && ngx_socket_errno != NGX_ENOTCONN) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_socket_errno,
                      "shutdown() failed");
    }

    c->read->ready = 1;

    if (!c->read->posted) {
        ngx_post_event(c->read, &ngx_posted_events);
    }
}
