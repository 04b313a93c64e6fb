
/*
 * Copyright (C) ngx_claw_module authors
 *
 * A large answer (the metrics page, the list of tenants) made a buffer
 * at a time, each sent before the next is made, with the worker back in
 * its event loop between two buffers (ngx_posted_next_events): with
 * 100,000 tenants the answer is tens of megabytes, and made whole it
 * would keep the worker from its other clients for a good part of a
 * second.  Making one buffer costs them at most that buffer's worth of
 * formatting.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_stream.h"


#define NGX_HTTP_CLAW_STREAM_BUF  (64 * 1024)


typedef struct {
    ngx_http_request_t          *request;
    ngx_http_claw_fill_pt        fill;
    void                        *data;
    ngx_buf_t                   *buf;
    ngx_event_t                  next;
} ngx_http_claw_stream_t;


static void ngx_http_claw_stream_send(ngx_http_request_t *r);
static void ngx_http_claw_stream_next(ngx_event_t *ev);
static void ngx_http_claw_stream_cleanup(void *data);


/* the header is sent; the body follows, and the request is finalized */

ngx_int_t
ngx_http_claw_stream(ngx_http_request_t *r, ngx_http_claw_fill_pt fill,
    void *data)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_claw_stream_t  *st;

    /* the module's context slot is the tenant's: a cleanup holds ours */

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_claw_stream_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    st = cln->data;
    ngx_memzero(st, sizeof(ngx_http_claw_stream_t));

    st->buf = ngx_create_temp_buf(r->pool, NGX_HTTP_CLAW_STREAM_BUF);
    if (st->buf == NULL) {
        return NGX_ERROR;
    }

    st->request = r;
    st->fill = fill;
    st->data = data;
    st->next.handler = ngx_http_claw_stream_next;
    st->next.data = st;
    st->next.log = r->connection->log;

    /* a request finalized early (an error, a timeout) takes its event */

    cln->handler = ngx_http_claw_stream_cleanup;

    r->main->count++;
    r->write_event_handler = ngx_http_claw_stream_send;

    ngx_http_claw_stream_send(r);

    return NGX_DONE;
}


/* sends what is pending, then the next buffer, or waits for the socket */

static void
ngx_http_claw_stream_send(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_uint_t                 last;
    ngx_chain_t                out;
    ngx_event_t               *wev;
    ngx_connection_t          *c;
    ngx_pool_cleanup_t        *cln;
    ngx_http_claw_stream_t    *st;
    ngx_http_core_loc_conf_t  *clcf;

    c = r->connection;
    wev = c->write;

    st = NULL;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_claw_stream_cleanup) {
            st = cln->data;
            break;
        }
    }

    if (st == NULL) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "client timed out");
        c->timedout = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (wev->delayed || r->aio) {
        return;
    }

    if (r->buffered || c->buffered) {
        rc = ngx_http_output_filter(r, NULL);

    } else {
        st->buf->pos = st->buf->start;
        st->buf->last = st->buf->start;

        last = st->fill(st->data, st->buf);

        st->buf->last_buf = last && r == r->main;
        st->buf->last_in_chain = last;
        st->buf->flush = 1;

        out.buf = st->buf;
        out.next = NULL;

        rc = ngx_http_output_filter(r, &out);

        if (rc == NGX_OK && last) {
            ngx_http_finalize_request(r, NGX_OK);
            return;
        }
    }

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (r->buffered || c->buffered) {

        /* the socket is full: on with the write event */

        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    if (st->buf->last_in_chain) {
        ngx_http_finalize_request(r, NGX_OK);
        return;
    }

    /* all sent: the next buffer after the worker's other events */

    ngx_post_event(&st->next, &ngx_posted_next_events);
}


static void
ngx_http_claw_stream_next(ngx_event_t *ev)
{
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_claw_stream_t  *st;

    st = ev->data;
    r = st->request;
    c = r->connection;

    ngx_http_claw_stream_send(r);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_claw_stream_cleanup(void *data)
{
    ngx_http_claw_stream_t  *st = data;

    if (st->next.posted) {
        ngx_delete_posted_event(&st->next);
    }
}
