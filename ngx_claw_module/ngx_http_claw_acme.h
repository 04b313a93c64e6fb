
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_ACME_H_INCLUDED_
#define _NGX_HTTP_CLAW_ACME_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_acme_jws.h"
#include "ngx_http_claw_acme_dns.h"
#include "ngx_http_claw_cluster.h"


/* issuances run on the thread pool, and certificates are served by TLS */

#if !(NGX_THREADS && NGX_HTTP_SSL)
#error "ngx_http_claw_acme_module needs nginx built --with-threads and SSL"
#endif


#define NGX_HTTP_CLAW_ACME_HTTP_01      1
#define NGX_HTTP_CLAW_ACME_TLS_ALPN_01  2
#define NGX_HTTP_CLAW_ACME_DNS_01       3      /* claw_acme_wildcard's */

/* the authorizations of an order: "*.<domain>" has two, with <domain> */
#define NGX_HTTP_CLAW_ACME_AUTHZ_MAX    2

/* a name of claw_acme_wildcard */
#define ngx_http_claw_acme_wildcard(name)  ((name)[0] == '*')

/* issuances running at once, each a task on the thread pool */
#define NGX_HTTP_CLAW_ACME_JOBS         4

#define NGX_HTTP_CLAW_ACME_ERROR_MAX    240
#define NGX_HTTP_CLAW_ACME_TOKEN_MAX    128

/* challenge tokens are base64url */
#define ngx_http_claw_acme_token_char(c)                                      \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z')                 \
     || ((c) >= '0' && (c) <= '9') || (c) == '-' || (c) == '_')


/*
 * A name the registry gives a tenant, and what is known of its
 * certificate.  Only the owner worker changes these (and the status
 * location, to ask for a renewal); every field is read and written
 * under the zone's lock.
 */

typedef struct {
    ngx_str_node_t               sn;            /* sn.str: the name */
    ngx_queue_t                  queue;

    time_t                       not_before;    /* 0: no certificate */
    time_t                       not_after;
    time_t                       renew_at;
    time_t                       next_attempt;  /* back-off and cap */
    time_t                       checked;       /* 0: files not read yet */
    time_t                       last_order;

    ngx_pid_t                    busy;          /* the owner, while issuing */
    ngx_uint_t                   failures;      /* in a row */
    ngx_uint_t                   orders;
    ngx_uint_t                   mark;

    unsigned                     force:1;
    unsigned                     capped:1;
    unsigned                     pull:1;        /* a newer one in the
                                                   cluster */

    u_char                       tenant_len;
    u_char                       tenant[NGX_HTTP_CLAW_ID_MAX];
    u_char                       error_len;
    u_char                       error[NGX_HTTP_CLAW_ACME_ERROR_MAX];
    u_char                       name[1];
} ngx_http_claw_acme_domain_t;


/* a tenant's issuance cap: GCRA, milliseconds */

typedef struct {
    ngx_str_node_t               sn;
    uint64_t                     tat;
    u_char                       id[1];
} ngx_http_claw_acme_tenant_t;


/*
 * A pending challenge, answered by every worker: the key authorization
 * of an http-01 token, or the certificates and keys of a tls-alpn-01
 * handshake (DER), one with an EC key and one with an RSA key, since in
 * TLSv1.2 the type is chosen before the challenge is known (see the
 * ALPN callback).  data holds name, token, key authorization, then the
 * EC certificate and key, then the RSA certificate and key.
 */

#define NGX_HTTP_CLAW_ACME_EC           0
#define NGX_HTTP_CLAW_ACME_RSA          1

typedef struct {
    ngx_queue_t                  queue;
    ngx_pid_t                    pid;           /* the owner that set it */
    time_t                       expires;
    ngx_uint_t                   type;
    uint16_t                     name_len;
    uint16_t                     token_len;
    uint16_t                     keyauth_len;
    uint16_t                     cert_len[2];
    uint16_t                     key_len[2];
    u_char                       data[1];
} ngx_http_claw_acme_chall_t;


typedef struct {
    ngx_rbtree_t                 domains;
    ngx_rbtree_node_t            domains_sentinel;
    ngx_queue_t                  domain_queue;
    ngx_rbtree_t                 tenants;
    ngx_rbtree_node_t            tenants_sentinel;
    ngx_queue_t                  challenges;

    ngx_pid_t                    owner;
    ngx_uint_t                   mark;
    ngx_uint_t                   orders;        /* since the zone was made */
    ngx_uint_t                   ndomains;
    time_t                       scanned;
    unsigned                     loaded:1;      /* orders replayed */
    unsigned                     full:1;        /* logged */
} ngx_http_claw_acme_shctx_t;


typedef struct ngx_http_claw_acme_io_s  ngx_http_claw_acme_io_t;
typedef struct ngx_http_claw_acme_poll_s  ngx_http_claw_acme_poll_t;


typedef struct {
    ngx_str_t                    directory;     /* claw_acme */
    ngx_str_t                    email;
    ngx_str_t                    state;
    ngx_str_t                    certs;         /* <state>/certs */
    ngx_str_t                    trusted;
    ngx_uint_t                   challenge;
    ngx_uint_t                   cap;           /* per cap_period, 0: off */
    time_t                       cap_period;
    time_t                       backoff_min;
    time_t                       backoff_max;
    ngx_msec_t                   interval;
    size_t                       zone_size;
    ngx_array_t                  wildcards;     /* "*.<domain>", ngx_str_t */
    ngx_http_claw_acme_dns_t     dns;

    ngx_shm_zone_t              *shm_zone;
    ngx_http_claw_acme_shctx_t  *sh;
    ngx_slab_pool_t             *shpool;
    ngx_http_claw_tables_t      *tables;
    ngx_http_claw_cluster_t     *cluster;       /* claw_cluster, or NULL */
    ngx_thread_pool_t           *thread_pool;   /* the protocol's jobs */
    ngx_thread_pool_t           *disk_pool;     /* "claw": the owner's files */
    ngx_path_t                  *state_path;
    ngx_path_t                  *certs_path;

    /* a worker's */
    ngx_event_t                  scan_ev;
    ngx_fd_t                     lock_fd;
    EVP_PKEY                    *account_key;
    char                        *kid;           /* the account's URL */
    time_t                       key_logged;
    ngx_uint_t                   running;
    ngx_http_claw_acme_io_t     *io;            /* a round's disk task */
    ngx_http_claw_acme_poll_t   *poll;          /* the cluster's news */
    size_t                       orders_max;    /* journal rewritten past */
    uint64_t                     changes;       /* of the registry, synced */
    char                         jwk[NGX_HTTP_CLAW_ACME_JWK_LEN];
    char                         thumbprint[NGX_HTTP_CLAW_ACME_THUMB_LEN + 1];

    unsigned                     owner:1;
    unsigned                     synced:1;
    unsigned                     served:1;      /* claw_certificates */
    unsigned                     tls:1;         /* a TLS server */
    unsigned                     locations:1;   /* claw_acme_http, _status */
    unsigned                     http:1;        /* claw_acme_http */
} ngx_http_claw_acme_main_conf_t;


typedef struct {
    unsigned                     http:1;
    unsigned                     status:1;
} ngx_http_claw_acme_loc_conf_t;


/*
 * One issuance: a task on the thread pool in two phases.  The first
 * places the order and learns the challenge; the event loop then puts
 * the challenge in the zone, for every worker to answer, and the second
 * has it validated, finalises and stores the certificate.  The thread
 * owns the job while a phase runs, the event loop in between.
 *
 * In a cluster, the event loop first claims the name on the server
 * (phase 0): a newer certificate there is installed instead (phase 3),
 * a name another node orders is left to it; the challenge is offered
 * to the other nodes before phase 2, and the outcome shared at the end.
 */

#define NGX_HTTP_CLAW_ACME_CLAIM_OK    0        /* this node orders */
#define NGX_HTTP_CLAW_ACME_CLAIM_CERT  1        /* the server has a newer */
#define NGX_HTTP_CLAW_ACME_CLAIM_BUSY  2        /* another node orders */
#define NGX_HTTP_CLAW_ACME_CLAIM_NONE  3        /* nothing newer to pull */
#define NGX_HTTP_CLAW_ACME_CLAIM_ERROR 4        /* no answer: error says */

typedef struct ngx_http_claw_acme_job_s  ngx_http_claw_acme_job_t;

typedef void (*ngx_http_claw_acme_step_pt)(ngx_http_claw_acme_job_t *job);

struct ngx_http_claw_acme_job_s {
    ngx_http_claw_acme_main_conf_t  *amcf;
    ngx_pool_t                      *pool;
    ngx_log_t                       *log;
    ngx_thread_task_t               *task;
    ngx_uint_t                       phase;

    char                            *domain;
    ngx_str_t                        tenant;
    ngx_uint_t                       type;
    EVP_PKEY                        *account_key;
    char                            *kid;

    /* from the directory and the order */
    char                            *new_nonce;
    char                            *new_account;
    char                            *new_order;
    char                            *order_url;
    char                            *finalize_url;
    char                            *authz_url[NGX_HTTP_CLAW_ACME_AUTHZ_MAX];
    char                            *chall_url[NGX_HTTP_CLAW_ACME_AUTHZ_MAX];
    char                            *txt[NGX_HTTP_CLAW_ACME_AUTHZ_MAX];
    ngx_uint_t                       nauthz;        /* pending: to answer */
    char                            *cert_url;

    /* the challenge, when one must be answered */
    char                            *token;
    char                            *keyauth;
    u_char                          *cert_der[2];
    size_t                           cert_der_len[2];
    u_char                          *key_der[2];
    size_t                           key_der_len[2];

    void                            *http;
    time_t                           deadline;

    /* what came of it */
    ngx_int_t                        rc;
    time_t                           retry_after;
    time_t                           not_before;
    time_t                           not_after;
    ngx_uint_t                       bad_nonces;
    ngx_uint_t                       requests;
    u_char                           error[NGX_HTTP_CLAW_ACME_ERROR_MAX];
    size_t                           error_len;

    unsigned                         chall_set:1;   /* in the zone */
    unsigned                         account_gone:1;
    unsigned                         new_kid:1;

    /* in a cluster */
    ngx_http_claw_acme_step_pt       step;          /* the server answered */
    ngx_uint_t                       claim;
    time_t                           held_not_after; /* this node's */
    ngx_str_t                        pulled;        /* its not_after */
    ngx_str_t                        pem_cert;      /* to share, or pulled */
    ngx_str_t                        pem_key;
    ngx_str_t                        from;          /* the node that has it */
    time_t                           delay;         /* back-off, failed */
    ngx_event_t                      wait;          /* for the acks */
    ngx_msec_t                       wait_until;

    unsigned                         pull:1;
    unsigned                         claimed:1;     /* the name's lock */
    unsigned                         offered:1;     /* the challenge */
    unsigned                         bad:1;         /* what was pulled */
};


/* what a node learns from the cluster's certificate log */
typedef void (*ngx_http_claw_acme_pull_pt)(
    ngx_http_claw_acme_main_conf_t *amcf, u_char *name, size_t len,
    time_t not_after);


/* ngx_http_claw_acme_client.c, on the thread pool */
ngx_int_t ngx_http_claw_acme_client_init(ngx_log_t *log);
void ngx_http_claw_acme_order_thread(void *data, ngx_log_t *log);
void ngx_http_claw_acme_finish_thread(void *data, ngx_log_t *log);
void ngx_http_claw_acme_install_thread(void *data, ngx_log_t *log);
void ngx_http_claw_acme_job_free(void *data);
ngx_int_t ngx_http_claw_acme_write_file(ngx_log_t *log, ngx_str_t *dir,
    const char *name, const char *suffix, u_char *data, size_t len,
    ngx_uint_t mode);

/* ngx_http_claw_acme_cluster.c, the owner's event loop */
void ngx_http_claw_acme_cluster_claim(ngx_http_claw_acme_job_t *job,
    ngx_http_claw_acme_step_pt step);
void ngx_http_claw_acme_cluster_offer(ngx_http_claw_acme_job_t *job,
    ngx_http_claw_acme_step_pt step);
void ngx_http_claw_acme_cluster_finish(ngx_http_claw_acme_job_t *job);
ngx_int_t ngx_http_claw_acme_cluster_start(
    ngx_http_claw_acme_main_conf_t *amcf, ngx_http_claw_acme_pull_pt pull);
void ngx_http_claw_acme_cluster_stop(ngx_http_claw_acme_main_conf_t *amcf);

/* ngx_http_claw_acme_serve.c, on every worker */
ngx_int_t ngx_http_claw_acme_http_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_claw_acme_status_handler(ngx_http_request_t *r);
void *ngx_http_claw_acme_metrics_start(ngx_http_request_t *r,
    ngx_uint_t tenants);
ngx_uint_t ngx_http_claw_acme_metrics_fill(void *data, ngx_buf_t *b);
char *ngx_http_claw_acme_alpn_merge(ngx_conf_t *cf,
    ngx_http_claw_acme_main_conf_t *amcf);

/* ngx_http_claw_acme.c */
ngx_http_claw_acme_domain_t *ngx_http_claw_acme_domain_locked(
    ngx_http_claw_acme_shctx_t *sh, u_char *name, size_t len);
u_char *ngx_http_claw_acme_iso_time(u_char *buf, time_t t);


extern ngx_module_t  ngx_http_claw_acme_module;


#endif /* _NGX_HTTP_CLAW_ACME_H_INCLUDED_ */
