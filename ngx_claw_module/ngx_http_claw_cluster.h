
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_CLUSTER_H_INCLUDED_
#define _NGX_HTTP_CLAW_CLUSTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_claw_tables.h"
#include "ngx_http_claw_apply.h"
#include "ngx_http_claw_redis.h"


/* the link's state, as the metrics show it */
#define NGX_HTTP_CLAW_CLUSTER_DOWN    0         /* no answer from the server */
#define NGX_HTTP_CLAW_CLUSTER_SYNC    1         /* reading the whole registry */
#define NGX_HTTP_CLAW_CLUSTER_UP      2         /* following the change log */
#define NGX_HTTP_CLAW_CLUSTER_EMPTY   3         /* the server holds none */
#define NGX_HTTP_CLAW_CLUSTER_LOST    4         /* ... and had this node's */

#define NGX_HTTP_CLAW_EPOCH_LEN       32


/* shared by the node's workers; the follower (worker 0) writes it */
typedef struct {
    ngx_atomic_t                 state;
    ngx_atomic_t                 applied;
    ngx_atomic_t                 skipped;
    ngx_atomic_t                 lag;           /* ms, the last entry's */
    ngx_atomic_t                 contact;       /* s, the last answer */
    ngx_atomic_t                 last_ms;       /* the last entry applied */
    ngx_atomic_t                 last_seq;
    ngx_slab_pool_t             *shpool;       /* its lock: the last */
    ngx_atomic_t                 behind;        /* the server's log ends
                                                   before the last entry */
    ngx_atomic_t                 nodes;         /* seen lately, this one
                                                   included */
    u_char                       epoch[NGX_HTTP_CLAW_EPOCH_LEN];
    size_t                       epoch_len;
    u_char                       error[128];
} ngx_http_claw_cluster_sh_t;


typedef ngx_int_t (*ngx_http_claw_cluster_apply_pt)(void *applier,
    ngx_http_claw_apply_item_t *items, ngx_uint_t n,
    ngx_http_claw_apply_pt handler, void *data);

typedef struct ngx_http_claw_cluster_op_s  ngx_http_claw_cluster_op_t;
typedef void (*ngx_http_claw_cluster_pt)(ngx_http_claw_cluster_op_t *op);


typedef struct {
    ngx_http_claw_redis_conf_t   redis;
    ngx_str_t                    prefix;
    ngx_str_t                    node;          /* this node's name */
    ngx_uint_t                   log_max;
    ngx_msec_t                   retry;
    ngx_msec_t                   sync;          /* limits reconciled */

    ngx_shm_zone_t              *shm_zone;
    ngx_http_claw_cluster_sh_t  *sh;
    ngx_http_claw_tables_t      *tables;

    /* where the follower's changes go (apply.c) */
    ngx_http_claw_cluster_apply_pt  apply;
    void                        *applier;

    /* per worker */
    ngx_log_t                   *log;
    ngx_http_claw_redis_t        cmd;
    ngx_http_claw_redis_t        follow;
    void                        *follower;
} ngx_http_claw_cluster_t;


/* one admin change, or an import, through the server */
struct ngx_http_claw_cluster_op_s {
    ngx_http_claw_cluster_t     *cluster;
    ngx_pool_t                  *pool;
    ngx_log_t                   *log;
    ngx_http_claw_cluster_pt     handler;
    void                        *data;

    ngx_str_t                    id;
    ngx_str_t                    expect;        /* held now; empty: none */
    ngx_str_t                    record;        /* the new one; empty:
                                                   delete */
    ngx_str_t                   *old_domains;
    ngx_uint_t                   nold;
    ngx_str_t                   *new_domains;
    ngx_uint_t                   nnew;

    /*
     * rc: NGX_OK; NGX_BUSY, the server's record changed meanwhile;
     * NGX_DECLINED, a domain belongs to "owner"; NGX_ERROR, the server
     * refused or could not be reached, "error" says why (nothing changed)
     */
    ngx_int_t                    rc;
    ngx_uint_t                   created;
    ngx_uint_t                   found;         /* GET: a record exists */
    ngx_str_t                    owner;
    ngx_str_t                    domain;
    u_char                       error[256];
    uint64_t                     ms;            /* the log entry written */
    uint64_t                     seq;

    ngx_event_t                  wait;
    ngx_msec_t                   deadline;
    ngx_uint_t                   pending;       /* import: replies due */
    ngx_uint_t                   step;
    ngx_uint_t                   unlocked;
};


char *ngx_http_claw_cluster_directive(ngx_conf_t *cf,
    ngx_http_claw_cluster_t **clp);
ngx_int_t ngx_http_claw_cluster_init_worker(ngx_http_claw_cluster_t *cl,
    ngx_cycle_t *cycle);
void ngx_http_claw_cluster_exit_worker(ngx_http_claw_cluster_t *cl);

const char *ngx_http_claw_cluster_writable(ngx_http_claw_cluster_t *cl);
ngx_int_t ngx_http_claw_cluster_get(ngx_http_claw_cluster_op_t *op);
ngx_int_t ngx_http_claw_cluster_write(ngx_http_claw_cluster_op_t *op);
void ngx_http_claw_cluster_wait(ngx_http_claw_cluster_op_t *op);
ngx_int_t ngx_http_claw_cluster_import(ngx_http_claw_cluster_op_t *op);


#endif /* _NGX_HTTP_CLAW_CLUSTER_H_INCLUDED_ */
