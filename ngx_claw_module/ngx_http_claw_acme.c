
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Automatic TLS for tenants' custom domains: an ACME client (RFC 8555)
 * that issues and renews a certificate for every domain the registry
 * gives a tenant, and for no other name.
 *
 * One worker at a time does the work: the one holding a lock on a file
 * of the state directory, which the kernel hands to another worker when
 * the holder exits or dies.  It looks at the registry periodically,
 * starts issuances as tasks on nginx's thread pool (libcurl, blocking,
 * off the event loop) and keeps what it learns in a shared zone: the
 * names, their certificates' validity, back-off, the tenants' caps, and
 * the pending challenges, which every worker answers.  Certificates go
 * to <state>/certs, where claw_certificates serves them from.
 *
 * The event loop never waits for the disk: the lock file, the account
 * key, the certificates' files and the orders journal are opened, read
 * and written by tasks on the module's "claw" thread pool.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/file.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_acme.h"


/*
 * How often the files of a known certificate are read again: the owner
 * writes them itself, this is for changes made by hand.
 */
#define NGX_HTTP_CLAW_ACME_RECHECK    3600

/* files read per scan, so that a large registry never stalls a worker */
#define NGX_HTTP_CLAW_ACME_CHECKS     64

/* a challenge left behind by a job that never finished */
#define NGX_HTTP_CLAW_ACME_CHALL_TTL  600

/* the orders journal is rewritten when it grows past this */
#define NGX_HTTP_CLAW_ACME_LOG_MAX    (1024 * 1024)

/* a line of the orders journal: "time tenant domain\n" */
#define NGX_HTTP_CLAW_ACME_LINE_LEN                                           \
    (NGX_TIME_T_LEN + NGX_HTTP_CLAW_ID_MAX + NGX_HTTP_CLAW_HOST_MAX + 3)

#define ngx_http_claw_acme_stopping()                                         \
    (ngx_exiting || ngx_terminate || ngx_quit)


/*
 * A round of the owner, with its disk work on the claw thread pool (see
 * ngx_http_claw_acme_scan_handler()).  The thread has it to itself
 * while a task runs, the event loop in between.
 */

typedef struct {
    ngx_str_t                        name;          /* NUL-terminated */
    time_t                           not_before;    /* 0: no certificate */
    time_t                           not_after;
} ngx_http_claw_acme_file_t;


typedef struct {
    ngx_str_t                        name;
    ngx_str_t                        tenant;
} ngx_http_claw_acme_order_t;


struct ngx_http_claw_acme_io_s {
    ngx_http_claw_acme_main_conf_t  *amcf;
    ngx_pool_t                      *pool;
    ngx_thread_task_t               *task;
    ngx_fd_t                         lock_fd;
    time_t                           now;

    /* take: a new zone's orders, the account key */
    u_char                          *orders;        /* ngx_alloc() */
    size_t                           orders_len;
    EVP_PKEY                        *key;
    char                             jwk[NGX_HTTP_CLAW_ACME_JWK_LEN];
    char                             thumb[NGX_HTTP_CLAW_ACME_THUMB_LEN + 1];

    /* check: the names whose files are read */
    ngx_http_claw_acme_file_t       *files;
    ngx_uint_t                       nfiles;

    /* journal: the orders about to be placed */
    ngx_http_claw_acme_order_t      *placed;
    ngx_uint_t                       nplaced;
    u_char                          *lines;
    size_t                           lines_len;
    size_t                           orders_max;

    unsigned                         lock:1;        /* to be taken */
    unsigned                         locked:1;
    unsigned                         replay:1;      /* to be read */
    unsigned                         replayed:1;
    unsigned                         load_key:1;
    unsigned                         key_log:1;     /* a bad key is logged */
    unsigned                         key_bad:1;
};


static char *ngx_http_claw_acme(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_acme_email(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_acme_cap(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_acme_backoff(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_acme_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_claw_acme_wildcard_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_claw_acme_dns_update(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_claw_acme_dns_verify(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_claw_acme_dns_addr(ngx_conf_t *cf, ngx_str_t *s,
    ngx_addr_t *addr);
static ngx_int_t ngx_http_claw_acme_dns_check(ngx_conf_t *cf,
    ngx_http_claw_acme_main_conf_t *amcf);
static void *ngx_http_claw_acme_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_claw_acme_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_http_claw_acme_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_claw_acme_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_claw_acme_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_claw_acme_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_claw_acme_add_path(ngx_conf_t *cf, ngx_str_t *name,
    ngx_path_t **slot);
static ngx_int_t ngx_http_claw_acme_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_claw_acme_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_claw_acme_init_process(ngx_cycle_t *cycle);
static void ngx_http_claw_acme_exit_process(ngx_cycle_t *cycle);

static void ngx_http_claw_acme_scan_handler(ngx_event_t *ev);
static ngx_http_claw_acme_io_t *ngx_http_claw_acme_io_new(
    ngx_http_claw_acme_main_conf_t *amcf);
static void ngx_http_claw_acme_io_free(void *data);
static void ngx_http_claw_acme_io_post(ngx_http_claw_acme_io_t *io,
    void (*handler)(void *data, ngx_log_t *log), ngx_event_handler_pt done);
static void ngx_http_claw_acme_io_end(ngx_http_claw_acme_io_t *io,
    ngx_uint_t again);
static void ngx_http_claw_acme_take_thread(void *data, ngx_log_t *log);
static void ngx_http_claw_acme_take_done(ngx_event_t *ev);
static void ngx_http_claw_acme_release(ngx_http_claw_acme_main_conf_t *amcf);
static void ngx_http_claw_acme_orphans_locked(
    ngx_http_claw_acme_main_conf_t *amcf, ngx_uint_t all);
static ngx_int_t ngx_http_claw_acme_account_key(ngx_http_claw_acme_io_t *io,
    ngx_log_t *log);
static void ngx_http_claw_acme_scan(ngx_http_claw_acme_io_t *io);
static void ngx_http_claw_acme_sync_locked(
    ngx_http_claw_acme_main_conf_t *amcf, ngx_http_claw_tconf_t **list,
    ngx_uint_t n);
static ngx_http_claw_acme_domain_t *ngx_http_claw_acme_add_locked(
    ngx_http_claw_acme_main_conf_t *amcf, u_char *d, size_t len);
static ngx_http_claw_acme_domain_t *ngx_http_claw_acme_due_locked(
    ngx_http_claw_acme_main_conf_t *amcf, time_t now);
static time_t ngx_http_claw_acme_cap_locked(
    ngx_http_claw_acme_main_conf_t *amcf, u_char *id, size_t len,
    uint64_t now, ngx_uint_t take);
static void ngx_http_claw_acme_check_thread(void *data, ngx_log_t *log);
static void ngx_http_claw_acme_check_done(ngx_event_t *ev);
static void ngx_http_claw_acme_place(ngx_http_claw_acme_io_t *io);
static void ngx_http_claw_acme_journal_thread(void *data, ngx_log_t *log);
static void ngx_http_claw_acme_journal_done(ngx_event_t *ev);
static void ngx_http_claw_acme_unplace(ngx_http_claw_acme_io_t *io,
    ngx_uint_t from);
static ngx_int_t ngx_http_claw_acme_orders_read(
    ngx_http_claw_acme_main_conf_t *amcf, ngx_log_t *log, time_t now,
    size_t max, u_char **orders, size_t *len);
static ngx_uint_t ngx_http_claw_acme_replay_locked(
    ngx_http_claw_acme_main_conf_t *amcf, u_char *p, size_t len);
static ngx_int_t ngx_http_claw_acme_start(
    ngx_http_claw_acme_main_conf_t *amcf, ngx_str_t *name,
    ngx_str_t *tenant);
static void ngx_http_claw_acme_done(ngx_event_t *ev);
static void ngx_http_claw_acme_validate(ngx_http_claw_acme_job_t *job);
static void ngx_http_claw_acme_claimed(ngx_http_claw_acme_job_t *job);
static void ngx_http_claw_acme_end(ngx_http_claw_acme_job_t *job);
static void ngx_http_claw_acme_pull(ngx_http_claw_acme_main_conf_t *amcf,
    u_char *name, size_t len, time_t not_after);
static void ngx_http_claw_acme_cap_refund_locked(
    ngx_http_claw_acme_main_conf_t *amcf, u_char *id, size_t len);
static ngx_int_t ngx_http_claw_acme_chall_set(
    ngx_http_claw_acme_main_conf_t *amcf, ngx_http_claw_acme_job_t *job);
static void ngx_http_claw_acme_chall_unset(
    ngx_http_claw_acme_main_conf_t *amcf, ngx_http_claw_acme_job_t *job);
static void ngx_http_claw_acme_result(ngx_http_claw_acme_main_conf_t *amcf,
    ngx_http_claw_acme_job_t *job);


static ngx_conf_enum_t  ngx_http_claw_acme_challenges[] = {
    { ngx_string("http-01"), NGX_HTTP_CLAW_ACME_HTTP_01 },
    { ngx_string("tls-alpn-01"), NGX_HTTP_CLAW_ACME_TLS_ALPN_01 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_claw_acme_commands[] = {

    { ngx_string("claw_acme"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_acme,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_acme_email"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_acme_email,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_acme_state"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_claw_acme_main_conf_t, state),
      NULL },

    { ngx_string("claw_acme_challenge"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_claw_acme_main_conf_t, challenge),
      &ngx_http_claw_acme_challenges },

    { ngx_string("claw_acme_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_claw_acme_main_conf_t, trusted),
      NULL },

    { ngx_string("claw_acme_cap"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_acme_cap,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_acme_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_claw_acme_backoff,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_acme_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_claw_acme_main_conf_t, interval),
      NULL },

    { ngx_string("claw_acme_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_claw_acme_main_conf_t, zone_size),
      NULL },

    { ngx_string("claw_acme_wildcard"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_claw_acme_wildcard_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_acme_dns_update"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_claw_acme_dns_update,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_acme_dns_hook"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_claw_acme_main_conf_t, dns.hook),
      NULL },

    { ngx_string("claw_acme_dns_verify"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_claw_acme_dns_verify,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_acme_dns_wait"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_claw_acme_main_conf_t, dns.wait),
      NULL },

    { ngx_string("claw_acme_http"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_claw_acme_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("claw_acme_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_claw_acme_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      1,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_claw_acme_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_claw_acme_postconfiguration,  /* postconfiguration */

    ngx_http_claw_acme_create_main_conf,   /* create main configuration */
    ngx_http_claw_acme_init_main_conf,     /* init main configuration */

    NULL,                                  /* create server configuration */
    ngx_http_claw_acme_merge_srv_conf,     /* merge server configuration */

    ngx_http_claw_acme_create_loc_conf,    /* create location configuration */
    ngx_http_claw_acme_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_claw_acme_module = {
    NGX_MODULE_V1,
    &ngx_http_claw_acme_module_ctx,        /* module context */
    ngx_http_claw_acme_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_claw_acme_init_module,        /* init module */
    ngx_http_claw_acme_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_claw_acme_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_claw_acme_zone_name = ngx_string("claw_acme");


static char *
ngx_http_claw_acme(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_acme_main_conf_t  *amcf = conf;

    ngx_str_t  *value;

    if (amcf->directory.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* RFC 8555, 6.1: ACME is spoken over HTTPS only */

    if (value[1].len <= sizeof("https://") - 1
        || ngx_strncasecmp(value[1].data, (u_char *) "https://",
                           sizeof("https://") - 1)
           != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid claw_acme directory \"%V\", expected an "
                           "https:// URL", &value[1]);
        return NGX_CONF_ERROR;
    }

    amcf->directory = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_claw_acme_email(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_acme_main_conf_t  *amcf = conf;

    u_char     *p, *at;
    ngx_str_t  *value;

    if (amcf->email.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    at = NULL;

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\\'
            || *p == ',' || *p == '<' || *p == '>')
        {
            break;
        }

        if (*p == '@') {
            at = p;
        }
    }

    if (p != value[1].data + value[1].len
        || at == NULL || at == value[1].data
        || at == value[1].data + value[1].len - 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid claw_acme_email \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    amcf->email = value[1];

    return NGX_CONF_OK;
}


/* "number/d", "number/h" or "off" */

static char *
ngx_http_claw_acme_cap(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_acme_main_conf_t  *amcf = conf;

    u_char     *p;
    ngx_int_t   n;
    ngx_str_t  *value;

    if (amcf->cap != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        amcf->cap = 0;
        return NGX_CONF_OK;
    }

    p = (u_char *) ngx_strchr(value[1].data, '/');

    n = (p == NULL) ? NGX_ERROR : ngx_atoi(value[1].data, p - value[1].data);

    if (n <= 0 || value[1].data + value[1].len != p + 2
        || (p[1] != 'd' && p[1] != 'h'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid claw_acme_cap \"%V\", expected "
                           "\"number/d\", \"number/h\" or \"off\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    amcf->cap = (ngx_uint_t) n;
    amcf->cap_period = (p[1] == 'd') ? 24 * 60 * 60 : 60 * 60;

    return NGX_CONF_OK;
}


static char *
ngx_http_claw_acme_backoff(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_acme_main_conf_t  *amcf = conf;

    ngx_str_t  *value;

    if (amcf->backoff_min != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    amcf->backoff_min = ngx_parse_time(&value[1], 1);

    if (amcf->backoff_min == (time_t) NGX_ERROR || amcf->backoff_min == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid claw_acme_backoff \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 2) {
        amcf->backoff_max = ngx_max(amcf->backoff_min, 6 * 60 * 60);
        return NGX_CONF_OK;
    }

    amcf->backoff_max = ngx_parse_time(&value[2], 1);

    if (amcf->backoff_max == (time_t) NGX_ERROR
        || amcf->backoff_max < amcf->backoff_min)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid claw_acme_backoff maximum \"%V\", "
                           "expected at least \"%V\"", &value[2], &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* claw_acme_http (post 0) and claw_acme_status (post 1) */

static char *
ngx_http_claw_acme_location(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_acme_loc_conf_t  *alcf = conf;

    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_claw_acme_main_conf_t  *amcf;

    if (alcf->http || alcf->status) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_claw_acme_module);

    amcf->locations = 1;

    if (cmd->offset) {
        alcf->status = 1;
        clcf->handler = ngx_http_claw_acme_status_handler;

    } else {
        alcf->http = 1;
        amcf->http = 1;
        clcf->handler = ngx_http_claw_acme_http_handler;
    }

    return NGX_CONF_OK;
}


/* "*.<domain>" and <domain>, by dns-01 */

static char *
ngx_http_claw_acme_wildcard_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_claw_acme_main_conf_t  *amcf = conf;

    size_t      len;
    ngx_str_t  *value, *w;
    u_char      host[NGX_HTTP_CLAW_HOST_MAX];

    value = cf->args->elts;

    if (ngx_http_claw_host_canon(value[1].data, value[1].len, host, &len)
        != NGX_HTTP_CLAW_HOST_NAME
        || len + 2 > NGX_HTTP_CLAW_ACME_DNS_NAME_MAX - 16
        || ngx_strlchr(host, host + len, '.') == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is no domain name for a wildcard "
                           "certificate", &value[1]);
        return NGX_CONF_ERROR;
    }

    w = ngx_array_push(&amcf->wildcards);
    if (w == NULL) {
        return NGX_CONF_ERROR;
    }

    w->len = len + 2;
    w->data = ngx_pnalloc(cf->pool, w->len + 1);
    if (w->data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(w->data, "*.%*s%Z", len, host);

    return NGX_CONF_OK;
}


/* claw_acme_dns_update address[:port] key=file [zone=name] */

static char *
ngx_http_claw_acme_dns_update(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_acme_main_conf_t  *amcf = conf;

    char        *rv;
    ngx_str_t   *value, file;
    ngx_uint_t   i;

    if (amcf->dns.update) {
        return "is duplicate";
    }

    value = cf->args->elts;

    amcf->dns.update = ngx_pcalloc(cf->pool, sizeof(ngx_addr_t));
    if (amcf->dns.update == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_claw_acme_dns_addr(cf, &value[1], amcf->dns.update)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_str_null(&file);

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "key=", 4) == 0 && value[i].len > 4) {
            file.data = value[i].data + 4;
            file.len = value[i].len - 4;
            continue;
        }

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0 && value[i].len > 5) {
            amcf->dns.zone.data = value[i].data + 5;
            amcf->dns.zone.len = value[i].len - 5;

            if (ngx_http_claw_acme_dns_name_valid(&amcf->dns.zone) != NGX_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" is no zone name", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (file.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"claw_acme_dns_update\" needs "
                           "\"key=\" (a TSIG key file)");
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_claw_acme_dns_key(cf, &amcf->dns, &file);

    return rv;
}


static char *
ngx_http_claw_acme_dns_verify(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_claw_acme_main_conf_t  *amcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;
    ngx_addr_t  *addr;

    if (amcf->dns.verify) {
        return "is duplicate";
    }

    /* as many as a mask in a word holds */

    if (cf->args->nelts - 1 > 16) {
        return "takes at most 16 servers";
    }

    amcf->dns.verify = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                        sizeof(ngx_addr_t));
    if (amcf->dns.verify == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        addr = ngx_array_push(amcf->dns.verify);

        if (addr == NULL
            || ngx_http_claw_acme_dns_addr(cf, &value[i], addr) != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* an IP address, port 53 unless given: no name to resolve */

static ngx_int_t
ngx_http_claw_acme_dns_addr(ngx_conf_t *cf, ngx_str_t *s, ngx_addr_t *addr)
{
    ngx_url_t  u;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *s;
    u.default_port = 53;
    u.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs != 1
        || u.family == AF_UNIX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is no DNS server address (an IP "
                           "address and an optional port)%s%s", s,
                           u.err ? ": " : "", u.err ? u.err : "");
        return NGX_ERROR;
    }

    *addr = u.addrs[0];

    return NGX_OK;
}


static void *
ngx_http_claw_acme_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_claw_acme_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     amcf->directory = { 0, NULL };
     *     amcf->email = { 0, NULL };
     *     amcf->state = { 0, NULL };
     *     amcf->trusted = { 0, NULL };
     *     amcf->shm_zone = NULL;
     *     amcf->account_key = NULL;
     *     amcf->kid = NULL;
     *     amcf->running = 0;
     */

    amcf->challenge = NGX_CONF_UNSET_UINT;
    amcf->cap = NGX_CONF_UNSET_UINT;
    amcf->backoff_min = NGX_CONF_UNSET;
    amcf->interval = NGX_CONF_UNSET_MSEC;
    amcf->zone_size = NGX_CONF_UNSET_SIZE;
    amcf->lock_fd = NGX_INVALID_FILE;
    amcf->dns.wait = NGX_CONF_UNSET;

    if (ngx_array_init(&amcf->wildcards, cf->pool, 1, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    return amcf;
}


static char *
ngx_http_claw_acme_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_claw_acme_main_conf_t  *amcf = conf;

    ngx_http_claw_main_conf_t  *cmcf;

    ngx_conf_init_uint_value(amcf->challenge, NGX_HTTP_CLAW_ACME_HTTP_01);
    ngx_conf_init_msec_value(amcf->interval, 5000);
    ngx_conf_init_size_value(amcf->zone_size, 4 * 1024 * 1024);
    ngx_conf_init_value(amcf->dns.wait, 60);

    if (amcf->cap == NGX_CONF_UNSET_UINT) {
        amcf->cap = 20;
        amcf->cap_period = 24 * 60 * 60;
    }

    if (amcf->backoff_min == NGX_CONF_UNSET) {
        amcf->backoff_min = 5 * 60;
        amcf->backoff_max = 6 * 60 * 60;
    }

    if (ngx_http_claw_acme_dns_check(cf, amcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (amcf->directory.len == 0) {
        if (amcf->state.len || amcf->email.len || amcf->trusted.len
            || amcf->wildcards.nelts)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"claw_acme_state\", \"claw_acme_email\", "
                          "\"claw_acme_trusted_certificate\" and "
                          "\"claw_acme_wildcard\" require \"claw_acme\"");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (amcf->state.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"claw_acme\" requires \"claw_acme_state\"");
        return NGX_CONF_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_claw_module);

    if (cmcf->tables.shm_zone == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"claw_acme\" requires \"claw_zone\" and "
                      "\"claw_tenants\" in the http block");
        return NGX_CONF_ERROR;
    }

    amcf->tables = &cmcf->tables;
    amcf->cluster = cmcf->cluster;

    if (amcf->zone_size < 8 * ngx_pagesize) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"claw_acme_zone\" of %uz bytes is too small",
                      amcf->zone_size);
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &amcf->state, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    while (amcf->state.len > 1
           && amcf->state.data[amcf->state.len - 1] == '/')
    {
        amcf->state.len--;
    }

    amcf->state.data[amcf->state.len] = '\0';

    amcf->certs.len = amcf->state.len + sizeof("/certs") - 1;
    amcf->certs.data = ngx_pnalloc(cf->pool, amcf->certs.len + 1);
    if (amcf->certs.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(amcf->certs.data, "%V/certs%Z", &amcf->state);

    /* both made at start with 0700 and given to the worker user */

    if (ngx_http_claw_acme_add_path(cf, &amcf->state, &amcf->state_path)
        != NGX_OK
        || ngx_http_claw_acme_add_path(cf, &amcf->certs, &amcf->certs_path)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (amcf->trusted.len
        && ngx_conf_full_name(cf->cycle, &amcf->trusted, 1) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /*
     * The protocol's jobs (seconds to minutes each, at most
     * NGX_HTTP_CLAW_ACME_JOBS at once) run on "default", 32 threads
     * unless thread_pool says otherwise; the owner's disk work (short)
     * on the module's own "claw", where it never queues behind them.
     */

    amcf->thread_pool = ngx_thread_pool_add(cf, NULL);
    if (amcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    amcf->disk_pool = cmcf->journal.thread_pool;
    if (amcf->disk_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    amcf->shm_zone = ngx_shared_memory_add(cf, &ngx_http_claw_acme_zone_name,
                                           amcf->zone_size,
                                           &ngx_http_claw_acme_module);
    if (amcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    amcf->shm_zone->init = ngx_http_claw_acme_init_zone;
    amcf->shm_zone->data = amcf;

    return NGX_CONF_OK;
}


/* how the wildcard's records are published, and where they must show */

static ngx_int_t
ngx_http_claw_acme_dns_check(ngx_conf_t *cf,
    ngx_http_claw_acme_main_conf_t *amcf)
{
    ngx_addr_t  *addr;
    ngx_uint_t   dns;

    dns = (amcf->dns.update != NULL) + (amcf->dns.hook.len != 0);

    if (amcf->wildcards.nelts == 0) {
        if (dns || amcf->dns.verify) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"claw_acme_dns_update\", "
                          "\"claw_acme_dns_hook\" and "
                          "\"claw_acme_dns_verify\" require "
                          "\"claw_acme_wildcard\"");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (dns != 1) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"claw_acme_wildcard\" requires either "
                      "\"claw_acme_dns_update\" or \"claw_acme_dns_hook\"%s",
                      dns ? ", not both" : "");
        return NGX_ERROR;
    }

    if (amcf->dns.hook.len) {
        if (amcf->dns.verify == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"claw_acme_dns_hook\" requires "
                          "\"claw_acme_dns_verify\": the zone's "
                          "authoritative servers");
            return NGX_ERROR;
        }

        if (ngx_conf_full_name(cf->cycle, &amcf->dns.hook, 0) != NGX_OK) {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    /* an update's own server shows its changes first */

    if (amcf->dns.verify == NULL) {
        amcf->dns.verify = ngx_array_create(cf->pool, 1, sizeof(ngx_addr_t));
        if (amcf->dns.verify == NULL) {
            return NGX_ERROR;
        }

        addr = ngx_array_push(amcf->dns.verify);
        if (addr == NULL) {
            return NGX_ERROR;
        }

        *addr = *amcf->dns.update;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_acme_add_path(ngx_conf_t *cf, ngx_str_t *name,
    ngx_path_t **slot)
{
    ngx_path_t  *path;

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_ERROR;
    }

    path->name = *name;
    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    /* ngx_add_path() compares NUL-terminated names */

    path->name.data = ngx_pnalloc(cf->pool, name->len + 1);
    if (path->name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(path->name.data, name->data, name->len);
    path->name.data[name->len] = '\0';

    *slot = path;

    return ngx_add_path(cf, slot);
}


static char *
ngx_http_claw_acme_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_claw_acme_module);

    if (amcf->directory.len == 0) {
        return NGX_CONF_OK;
    }

    return ngx_http_claw_acme_alpn_merge(cf, amcf);
}


static void *
ngx_http_claw_acme_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_claw_acme_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_claw_acme_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->http = 0;
     *     conf->status = 0;
     */

    return conf;
}


static char *
ngx_http_claw_acme_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_claw_acme_loc_conf_t  *conf = child;

    ngx_http_claw_loc_conf_t  *clcf;

    if (!conf->http && !conf->status) {
        return NGX_CONF_OK;
    }

    /* a validation request carries no tenant's credential */

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_claw_module);

    if (clcf->enable) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" cannot be in a location with \"claw on\"",
                           conf->http ? "claw_acme_http"
                                      : "claw_acme_status");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_claw_acme_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_claw_main_conf_t       *cmcf;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_claw_acme_module);

    if (amcf->directory.len == 0) {
        if (amcf->locations) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"claw_acme_http\" and \"claw_acme_status\" "
                          "require \"claw_acme\" in the http block");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    /* the names' certificates on the metrics page */

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_claw_module);
    cmcf->metrics_start = ngx_http_claw_acme_metrics_start;
    cmcf->metrics_fill = ngx_http_claw_acme_metrics_fill;

    if (!amcf->served) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "no TLS server has \"claw_certificates %V\": the "
                      "certificates of \"claw_acme\" are not served",
                      &amcf->certs);
    }

    if (amcf->challenge == NGX_HTTP_CLAW_ACME_HTTP_01 && !amcf->http) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "no location has \"claw_acme_http\": nothing answers "
                      "the http-01 challenges");
    }

    if (amcf->challenge == NGX_HTTP_CLAW_ACME_TLS_ALPN_01 && !amcf->tls) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "\"claw_acme_challenge tls-alpn-01\" without a TLS "
                      "server: nothing answers the challenges");
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_acme_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_claw_acme_main_conf_t  *oamcf = data;

    size_t                           len;
    ngx_slab_pool_t                 *shpool;
    ngx_http_claw_acme_shctx_t      *sh;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    amcf->shpool = shpool;

    /* a reload keeps what is known: back-off, caps, challenges */

    if (oamcf) {
        amcf->sh = oamcf->sh;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        amcf->sh = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_claw_acme_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, sizeof(ngx_http_claw_acme_shctx_t));

    ngx_rbtree_init(&sh->domains, &sh->domains_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&sh->tenants, &sh->tenants_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&sh->domain_queue);
    ngx_queue_init(&sh->challenges);

    shpool->data = sh;
    amcf->sh = sh;

    len = sizeof(" in claw_acme zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in claw_acme zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is logged once, by the scan */

    shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * In the master, after ngx_create_paths() made the state directories:
 * they hold the account key and every tenant's keys, so nobody else may
 * look in, whatever they were before.
 */

static ngx_int_t
ngx_http_claw_acme_init_module(ngx_cycle_t *cycle)
{
    ngx_str_t                       *dir[2];
    ngx_uint_t                       i;
    ngx_file_info_t                  fi;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_claw_acme_module);

    if (amcf == NULL || amcf->directory.len == 0) {
        return NGX_OK;
    }

    dir[0] = &amcf->state_path->name;
    dir[1] = &amcf->certs_path->name;

    for (i = 0; i < 2; i++) {
        if (ngx_file_info(dir[i]->data, &fi) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                          ngx_file_info_n " \"%V\" failed", dir[i]);
            continue;
        }

        if ((ngx_file_access(&fi) & 0077) == 0) {
            continue;
        }

        if (chmod((char *) dir[i]->data, 0700) == -1) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                          "chmod(\"%V\", 0700) failed", dir[i]);
            continue;
        }

        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "claw_acme: mode of \"%V\" changed to 0700", dir[i]);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_acme_init_process(ngx_cycle_t *cycle)
{
    ngx_http_claw_acme_main_conf_t  *amcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_claw_acme_module);

    if (amcf == NULL || amcf->directory.len == 0) {
        return NGX_OK;
    }

    if (ngx_http_claw_acme_client_init(cycle->log) != NGX_OK) {
        return NGX_ERROR;
    }

    if (amcf->state.len + sizeof("/account.key") > NGX_MAX_PATH) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "claw_acme: state directory \"%V\" too long",
                      &amcf->state);
        return NGX_ERROR;
    }

    amcf->orders_max = NGX_HTTP_CLAW_ACME_LOG_MAX;

    /* the lock file is opened by the first round, on the thread pool */

    amcf->scan_ev.handler = ngx_http_claw_acme_scan_handler;
    amcf->scan_ev.data = amcf;
    amcf->scan_ev.log = cycle->log;
    amcf->scan_ev.cancelable = 1;

    ngx_add_timer(&amcf->scan_ev, 1);

    return NGX_OK;
}


static void
ngx_http_claw_acme_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_claw_acme_module);

    if (amcf == NULL || amcf->directory.len == 0) {
        return;
    }

    /*
     * The thread pools are gone by now, and with them every task: what a
     * task left unfinished is the next owner's to find.
     */

    ngx_http_claw_acme_release(amcf);

    /* a round whose task ended after the event loop did */

    if (amcf->io) {
        if (amcf->io->lock_fd != amcf->lock_fd
            && amcf->io->lock_fd != NGX_INVALID_FILE)
        {
            (void) ngx_close_file(amcf->io->lock_fd);
        }

        ngx_destroy_pool(amcf->io->pool);
        amcf->io = NULL;
    }

    if (amcf->lock_fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(amcf->lock_fd);
        amcf->lock_fd = NGX_INVALID_FILE;
    }

    if (amcf->account_key) {
        EVP_PKEY_free(amcf->account_key);
        amcf->account_key = NULL;
    }

    if (amcf->kid) {
        ngx_free(amcf->kid);
        amcf->kid = NULL;
    }
}


/*
 * A round of the owner (or of a worker that tries to become it): its
 * disk work runs on the claw thread pool, one task at a time,
 *
 *     take     the lock file opened and locked (flock, non-blocking),
 *              the orders journal of a new zone read, the account key
 *              read or made;
 *     check    the files of up to NGX_HTTP_CLAW_ACME_CHECKS names read;
 *     journal  the orders about to be placed appended to the journal;
 *
 * and the event loop, between the tasks, works on the zone only.  The
 * next round is timed from the end of this one.
 */

static void
ngx_http_claw_acme_scan_handler(ngx_event_t *ev)
{
    ngx_http_claw_acme_main_conf_t  *amcf = ev->data;

    ngx_http_claw_acme_io_t  *io;

    if (ngx_http_claw_acme_stopping()) {

        /* a running job or task hands the work over when it ends */

        if (amcf->running == 0 && amcf->io == NULL) {
            ngx_http_claw_acme_release(amcf);
        }

        return;
    }

    if (amcf->io) {
        return;
    }

    io = ngx_http_claw_acme_io_new(amcf);
    if (io == NULL) {
        ngx_add_timer(ev, amcf->interval);
        return;
    }

    if (amcf->owner && amcf->account_key) {
        ngx_http_claw_acme_scan(io);
        return;
    }

    io->lock = !amcf->owner;
    io->load_key = (amcf->account_key == NULL);
    io->key_log = (ngx_time() - amcf->key_logged >= 60);
    io->now = ngx_time();

    ngx_shmtx_lock(&amcf->shpool->mutex);
    io->replay = !amcf->sh->loaded;
    ngx_shmtx_unlock(&amcf->shpool->mutex);

    ngx_http_claw_acme_io_post(io, ngx_http_claw_acme_take_thread,
                               ngx_http_claw_acme_take_done);
}


static ngx_http_claw_acme_io_t *
ngx_http_claw_acme_io_new(ngx_http_claw_acme_main_conf_t *amcf)
{
    ngx_pool_t               *pool;
    ngx_pool_cleanup_t       *cln;
    ngx_http_claw_acme_io_t  *io;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    io = ngx_pcalloc(pool, sizeof(ngx_http_claw_acme_io_t));
    if (io == NULL) {
        goto failed;
    }

    io->task = ngx_thread_task_alloc(pool, 0);
    if (io->task == NULL) {
        goto failed;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        goto failed;
    }

    cln->handler = ngx_http_claw_acme_io_free;
    cln->data = io;

    io->amcf = amcf;
    io->pool = pool;
    io->lock_fd = amcf->lock_fd;

    io->task->ctx = io;
    io->task->event.data = io;
    io->task->event.log = ngx_cycle->log;

    amcf->io = io;

    return io;

failed:

    ngx_destroy_pool(pool);

    return NULL;
}


static void
ngx_http_claw_acme_io_free(void *data)
{
    ngx_http_claw_acme_io_t  *io = data;

    if (io->key) {
        EVP_PKEY_free(io->key);
    }

    if (io->orders) {
        ngx_free(io->orders);
    }
}


/* the next step of a round on the claw thread pool, or the round ends */

static void
ngx_http_claw_acme_io_post(ngx_http_claw_acme_io_t *io,
    void (*handler)(void *data, ngx_log_t *log), ngx_event_handler_pt done)
{
    io->task->handler = handler;
    io->task->event.handler = done;

    if (ngx_thread_task_post(io->amcf->disk_pool, io->task) == NGX_OK) {
        return;
    }

    ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                  "claw_acme: the thread pool refused a task");

    ngx_http_claw_acme_unplace(io, 0);
    ngx_http_claw_acme_io_end(io, 1);
}


static void
ngx_http_claw_acme_io_end(ngx_http_claw_acme_io_t *io, ngx_uint_t again)
{
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = io->amcf;
    amcf->io = NULL;

    ngx_destroy_pool(io->pool);

    if (ngx_http_claw_acme_stopping()) {
        if (amcf->running == 0) {
            ngx_http_claw_acme_release(amcf);
        }

        return;
    }

    if (again) {
        ngx_add_timer(&amcf->scan_ev, amcf->interval);
    }
}


/* on the claw thread pool: the lock, a new zone's caps, the account key */

static void
ngx_http_claw_acme_take_thread(void *data, ngx_log_t *log)
{
    ngx_http_claw_acme_io_t  *io = data;

    u_char                           path[NGX_MAX_PATH];
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = io->amcf;

    if (io->lock_fd == NGX_INVALID_FILE) {
        ngx_sprintf(path, "%V/owner.lock%Z", &amcf->state);

        io->lock_fd = ngx_open_file(path, NGX_FILE_RDWR,
                                    NGX_FILE_CREATE_OR_OPEN, 0600);

        if (io->lock_fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                          ngx_open_file_n " \"%s\" failed, no ACME in this "
                          "worker", path);
            return;
        }
    }

    if (io->lock) {
        if (flock(io->lock_fd, LOCK_EX|LOCK_NB) == -1) {
            if (ngx_errno != NGX_EAGAIN) {
                ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                              "claw_acme: flock(\"%V/owner.lock\") failed",
                              &amcf->state);
            }

            return;
        }

        io->locked = 1;
    }

    if (io->replay) {
        (void) ngx_http_claw_acme_orders_read(amcf, log, io->now,
                                              NGX_HTTP_CLAW_ACME_LOG_MAX,
                                              &io->orders, &io->orders_len);
        io->replayed = 1;
    }

    if (io->load_key) {
        (void) ngx_http_claw_acme_account_key(io, log);
    }

    ERR_clear_error();
}


static void
ngx_http_claw_acme_take_done(ngx_event_t *ev)
{
    ngx_http_claw_acme_io_t  *io = ev->data;

    ngx_uint_t                       count;
    ngx_http_claw_acme_shctx_t      *sh;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = io->amcf;
    sh = amcf->sh;

    amcf->lock_fd = io->lock_fd;

    if (amcf->lock_fd == NGX_INVALID_FILE) {
        ngx_http_claw_acme_io_end(io, 0);
        return;
    }

    if (ngx_http_claw_acme_stopping()) {
        if (io->locked) {
            (void) flock(amcf->lock_fd, LOCK_UN);
        }

        ngx_http_claw_acme_io_end(io, 0);
        return;
    }

    if (io->locked) {
        amcf->owner = 1;

        ngx_shmtx_lock(&amcf->shpool->mutex);

        sh->owner = ngx_pid;

        /* whatever a previous owner had begun died with it */

        ngx_http_claw_acme_orphans_locked(amcf, 1);

        ngx_shmtx_unlock(&amcf->shpool->mutex);

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "claw_acme: worker %P does the ACME work", ngx_pid);

        if (amcf->cluster
            && ngx_http_claw_acme_cluster_start(amcf, ngx_http_claw_acme_pull)
               != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "claw_acme: the cluster's certificates are not "
                          "followed: out of memory");
        }
    }

    if (io->replayed) {
        count = 0;

        ngx_shmtx_lock(&amcf->shpool->mutex);

        if (!sh->loaded) {
            sh->loaded = 1;
            count = ngx_http_claw_acme_replay_locked(amcf, io->orders,
                                                     io->orders_len);
        }

        ngx_shmtx_unlock(&amcf->shpool->mutex);

        if (io->orders) {
            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "claw_acme: %ui orders of the last %s counted",
                          count, amcf->cap_period == 3600 ? "hour" : "day");
        }
    }

    if (io->key) {
        amcf->account_key = io->key;
        io->key = NULL;

        ngx_memcpy(amcf->jwk, io->jwk, sizeof(amcf->jwk));
        ngx_memcpy(amcf->thumbprint, io->thumb, sizeof(amcf->thumbprint));

    } else if (io->key_bad && io->key_log) {
        amcf->key_logged = ngx_time();
    }

    if (!amcf->owner || amcf->account_key == NULL) {
        ngx_http_claw_acme_io_end(io, 1);
        return;
    }

    ngx_http_claw_acme_scan(io);
}


static void
ngx_http_claw_acme_release(ngx_http_claw_acme_main_conf_t *amcf)
{
    if (!amcf->owner) {
        return;
    }

    ngx_shmtx_lock(&amcf->shpool->mutex);

    if (amcf->sh->owner == ngx_pid) {
        amcf->sh->owner = 0;
    }

    ngx_http_claw_acme_orphans_locked(amcf, 0);

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    if (amcf->cluster) {
        ngx_http_claw_acme_cluster_stop(amcf);
    }

    /* the fd is open: no disk work, and LOCK_UN never waits */

    (void) flock(amcf->lock_fd, LOCK_UN);

    amcf->owner = 0;

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "claw_acme: worker %P no longer does the ACME work",
                  ngx_pid);
}


/*
 * Challenges and busy marks of another process (all), or of this one
 * (!all), are dropped; with all, every name's files are read again,
 * as a job may have stored a certificate before its worker went.
 */

static void
ngx_http_claw_acme_orphans_locked(ngx_http_claw_acme_main_conf_t *amcf,
    ngx_uint_t all)
{
    ngx_queue_t                  *q, *next;
    ngx_http_claw_acme_chall_t   *c;
    ngx_http_claw_acme_shctx_t   *sh;
    ngx_http_claw_acme_domain_t  *rec;

    sh = amcf->sh;

    for (q = ngx_queue_head(&sh->challenges);
         q != ngx_queue_sentinel(&sh->challenges);
         q = next)
    {
        next = ngx_queue_next(q);
        c = ngx_queue_data(q, ngx_http_claw_acme_chall_t, queue);

        if ((c->pid == ngx_pid) != (all == 0)) {
            continue;
        }

        ngx_queue_remove(q);
        ngx_slab_free_locked(amcf->shpool, c);
    }

    for (q = ngx_queue_head(&sh->domain_queue);
         q != ngx_queue_sentinel(&sh->domain_queue);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_claw_acme_domain_t, queue);

        if (rec->busy && (rec->busy == ngx_pid) != (all == 0)) {
            continue;
        }

        rec->busy = 0;

        if (all) {
            rec->checked = 0;
        }
    }
}


/*
 * The account key, made on first use: EC P-256, for ES256.  Read by
 * the take task of the owner, once; the jobs' threads only sign with
 * it.  On the claw thread pool.
 */

static ngx_int_t
ngx_http_claw_acme_account_key(ngx_http_claw_acme_io_t *io, ngx_log_t *log)
{
    BIO                             *bio;
    size_t                           len;
    BUF_MEM                         *mem;
    EVP_PKEY                        *key;
    ngx_int_t                        rc;
    u_char                           path[NGX_MAX_PATH];
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = io->amcf;

    ngx_sprintf(path, "%V/account.key%Z", &amcf->state);

    key = NULL;

    bio = BIO_new_file((char *) path, "r");

    if (bio) {
        key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);

        if (key == NULL || !ngx_http_claw_acme_key_check(key)) {
            io->key_bad = 1;

            if (io->key_log) {
                ngx_ssl_error(NGX_LOG_ALERT, log, 0,
                              "claw_acme: \"%s\" is no EC P-256 private "
                              "key, no certificates are issued", path);
            }

            if (key) {
                EVP_PKEY_free(key);
            }

            return NGX_ERROR;
        }

        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "claw_acme: account key \"%s\" loaded", path);

    } else {
        ERR_clear_error();

        key = ngx_http_claw_acme_key_new();
        if (key == NULL) {
            ngx_ssl_error(NGX_LOG_ALERT, log, 0,
                          "claw_acme: EC key generation failed");
            return NGX_ERROR;
        }

        rc = NGX_ERROR;
        bio = BIO_new(BIO_s_mem());

        if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
                                            NULL))
        {
            BIO_get_mem_ptr(bio, &mem);
            len = mem->length;

            rc = ngx_http_claw_acme_write_file(log, &amcf->state, "account",
                                               ".key", (u_char *) mem->data,
                                               len, 0600);
        }

        if (bio) {
            BIO_free(bio);
        }

        if (rc != NGX_OK) {
            EVP_PKEY_free(key);
            return NGX_ERROR;
        }

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "claw_acme: new account key \"%s\"", path);
    }

    len = 0;

    if (!ngx_http_claw_acme_jwk(key, io->jwk, &len)
        || !ngx_http_claw_acme_thumbprint(io->jwk, len, io->thumb))
    {
        ngx_ssl_error(NGX_LOG_ALERT, log, 0,
                      "claw_acme: the JWK of \"%s\" failed", path);
        EVP_PKEY_free(key);
        return NGX_ERROR;
    }

    io->key = key;

    return NGX_OK;
}


/*
 * The owner's work on the zone: the names of the registry, and those
 * whose files are to be read, by a task.
 */

static void
ngx_http_claw_acme_scan(ngx_http_claw_acme_io_t *io)
{
    time_t                           now;
    uint64_t                         changes;
    ngx_uint_t                       n;
    ngx_queue_t                     *q, *next;
    ngx_http_claw_tconf_t          **list;
    ngx_http_claw_acme_file_t       *file;
    ngx_http_claw_acme_chall_t      *c;
    ngx_http_claw_acme_shctx_t      *sh;
    ngx_http_claw_acme_domain_t     *rec;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = io->amcf;
    sh = amcf->sh;

    /*
     * The registry is copied only when it changed since the last copy
     * (read before copying: a change made meanwhile is seen next time),
     * not every interval: with 100,000 tenants a copy is tens of
     * milliseconds of this worker's time.
     */

    changes = ngx_http_claw_tables_changes(amcf->tables);

    list = NULL;
    n = 0;

    if (!amcf->synced || changes != amcf->changes) {
        list = ngx_http_claw_tables_list(amcf->tables, io->pool, &n);
        if (list == NULL) {
            ngx_http_claw_acme_io_end(io, 1);
            return;
        }
    }

    io->files = ngx_palloc(io->pool, NGX_HTTP_CLAW_ACME_CHECKS
                                     * sizeof(ngx_http_claw_acme_file_t));
    if (io->files == NULL) {
        ngx_http_claw_acme_io_end(io, 1);
        return;
    }

    now = ngx_time();

    ngx_shmtx_lock(&amcf->shpool->mutex);

    sh->scanned = now;

    if (list) {
        ngx_http_claw_acme_sync_locked(amcf, list, n);

        /* names that did not fit in a full zone are tried again */

        amcf->synced = !sh->full;
        amcf->changes = changes;
    }

    for (q = ngx_queue_head(&sh->challenges);
         q != ngx_queue_sentinel(&sh->challenges);
         q = next)
    {
        next = ngx_queue_next(q);
        c = ngx_queue_data(q, ngx_http_claw_acme_chall_t, queue);

        if (c->expires < now) {
            ngx_queue_remove(q);
            ngx_slab_free_locked(amcf->shpool, c);
        }
    }

    /* names whose files were not read yet, or not for a while */

    for (q = ngx_queue_head(&sh->domain_queue);
         q != ngx_queue_sentinel(&sh->domain_queue)
         && io->nfiles < NGX_HTTP_CLAW_ACME_CHECKS;
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_claw_acme_domain_t, queue);

        if (rec->busy
            || (rec->checked
                && now - rec->checked < NGX_HTTP_CLAW_ACME_RECHECK))
        {
            continue;
        }

        file = &io->files[io->nfiles];

        file->name.len = rec->sn.str.len;
        file->name.data = ngx_pnalloc(io->pool, rec->sn.str.len + 1);

        if (file->name.data == NULL) {
            break;
        }

        ngx_memcpy(file->name.data, rec->sn.str.data, rec->sn.str.len);
        file->name.data[rec->sn.str.len] = '\0';
        file->not_before = 0;
        file->not_after = 0;

        io->nfiles++;
    }

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    if (io->nfiles == 0) {
        ngx_http_claw_acme_place(io);
        return;
    }

    ngx_http_claw_acme_io_post(io, ngx_http_claw_acme_check_thread,
                               ngx_http_claw_acme_check_done);
}


/*
 * The zone's names follow the registry: new names are added, names no
 * tenant has any more are dropped (their files stay, and are no longer
 * served nor renewed), a name moved to another tenant follows it.
 */

static void
ngx_http_claw_acme_sync_locked(ngx_http_claw_acme_main_conf_t *amcf,
    ngx_http_claw_tconf_t **list, ngx_uint_t n)
{
    u_char                       *d, *id;
    size_t                        len;
    ngx_str_t                    *w;
    ngx_uint_t                    i, j, mark;
    ngx_queue_t                  *q, *next;
    ngx_http_claw_acme_shctx_t   *sh;
    ngx_http_claw_acme_domain_t  *rec;

    sh = amcf->sh;
    mark = ++sh->mark;

    for (i = 0; i < n; i++) {
        id = ngx_http_claw_tconf_id(list[i]);
        d = ngx_http_claw_tconf_domains(list[i]);

        for (j = 0; j < list[i]->ndomains; j++, d += len) {
            len = *d++;

            rec = ngx_http_claw_acme_add_locked(amcf, d, len);
            if (rec == NULL) {
                continue;
            }

            rec->mark = mark;
            rec->tenant_len = list[i]->id_len;
            ngx_memcpy(rec->tenant, id, list[i]->id_len);
        }
    }

    /* the platform's own names: no tenant's, no tenant's cap */

    w = amcf->wildcards.elts;

    for (i = 0; i < amcf->wildcards.nelts; i++) {
        rec = ngx_http_claw_acme_add_locked(amcf, w[i].data, w[i].len);
        if (rec == NULL) {
            continue;
        }

        rec->mark = mark;
        rec->tenant_len = 0;
    }

    for (q = ngx_queue_head(&sh->domain_queue);
         q != ngx_queue_sentinel(&sh->domain_queue);
         q = next)
    {
        next = ngx_queue_next(q);
        rec = ngx_queue_data(q, ngx_http_claw_acme_domain_t, queue);

        if (rec->mark == mark || rec->busy) {
            continue;
        }

        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "claw_acme: \"%V\" is no longer a tenant's domain, "
                      "not renewed", &rec->sn.str);

        ngx_rbtree_delete(&sh->domains, &rec->sn.node);
        ngx_queue_remove(q);
        ngx_slab_free_locked(amcf->shpool, rec);
        sh->ndomains--;
        sh->full = 0;
    }
}


/* a name's record, made if it is new; NULL: the zone is full */

static ngx_http_claw_acme_domain_t *
ngx_http_claw_acme_add_locked(ngx_http_claw_acme_main_conf_t *amcf,
    u_char *d, size_t len)
{
    ngx_http_claw_acme_shctx_t   *sh;
    ngx_http_claw_acme_domain_t  *rec;

    sh = amcf->sh;

    rec = ngx_http_claw_acme_domain_locked(sh, d, len);
    if (rec) {
        return rec;
    }

    rec = ngx_slab_alloc_locked(amcf->shpool,
                                offsetof(ngx_http_claw_acme_domain_t, name)
                                + len);
    if (rec == NULL) {
        if (!sh->full) {
            sh->full = 1;
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "claw_acme: zone \"%V\" is full, \"%*s\" and "
                          "others get no certificate: raise "
                          "\"claw_acme_zone\"",
                          &amcf->shm_zone->shm.name, len, d);
        }

        return NULL;
    }

    ngx_memzero(rec, offsetof(ngx_http_claw_acme_domain_t, name));
    ngx_memcpy(rec->name, d, len);

    rec->sn.str.data = rec->name;
    rec->sn.str.len = len;
    rec->sn.node.key = ngx_crc32_short(d, len);

    ngx_rbtree_insert(&sh->domains, &rec->sn.node);
    ngx_queue_insert_head(&sh->domain_queue, &rec->queue);
    sh->ndomains++;

    return rec;
}


/*
 * The next name to issue for: known files, due (no certificate, or two
 * thirds of its lifetime gone, or a renewal asked for), not backing
 * off, and its tenant under the cap.  A name over the cap waits until
 * the cap allows it.
 */

static ngx_http_claw_acme_domain_t *
ngx_http_claw_acme_due_locked(ngx_http_claw_acme_main_conf_t *amcf,
    time_t now)
{
    time_t                        wait;
    ngx_queue_t                  *q;
    ngx_http_claw_acme_shctx_t   *sh;
    ngx_http_claw_acme_domain_t  *rec;

    sh = amcf->sh;

    for (q = ngx_queue_head(&sh->domain_queue);
         q != ngx_queue_sentinel(&sh->domain_queue);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_claw_acme_domain_t, queue);

        if (rec->busy || rec->checked == 0) {
            continue;
        }

        /* installing what another node ordered costs the CA nothing */

        if (rec->pull) {
            return rec;
        }

        if (now < rec->next_attempt || (!rec->force && now < rec->renew_at)) {
            continue;
        }

        wait = ngx_http_claw_acme_cap_locked(amcf, rec->tenant,
                                             rec->tenant_len,
                                             (uint64_t) now * 1000, 1);

        if (wait == 0) {
            return rec;
        }

        rec->next_attempt = now + wait;

        if (!rec->capped) {
            rec->capped = 1;
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "claw_acme: tenant \"%*s\" is over its cap of "
                          "%ui certificates a %s, \"%V\" waits %Ts",
                          (size_t) rec->tenant_len, rec->tenant, amcf->cap,
                          amcf->cap_period == 3600 ? "hour" : "day",
                          &rec->sn.str, wait);
        }
    }

    return NULL;
}


/*
 * A tenant's cap as GCRA: cap orders at once, then one every
 * period / cap.  Returns 0 when an order may be placed now (and counts
 * it with take; take 2 counts a journaled order whatever the cap), else
 * the seconds to wait.
 */

static time_t
ngx_http_claw_acme_cap_locked(ngx_http_claw_acme_main_conf_t *amcf,
    u_char *id, size_t len, uint64_t now, ngx_uint_t take)
{
    uint32_t                      hash;
    uint64_t                      interval, burst, wait, next;
    ngx_str_t                     key;
    ngx_http_claw_acme_tenant_t  *t;

    if (amcf->cap == 0 || len == 0) {
        return 0;
    }

    interval = (uint64_t) amcf->cap_period * 1000 / amcf->cap;

    key.data = id;
    key.len = len;
    hash = ngx_crc32_short(id, len);

    t = (ngx_http_claw_acme_tenant_t *)
            ngx_str_rbtree_lookup(&amcf->sh->tenants, &key, hash);

    /* a replayed order was placed: a burst no order can exceed */

    burst = (take == 2) ? (uint64_t) -1 / interval : amcf->cap - 1;

    wait = ngx_http_claw_gcra(t ? t->tat : 0, now, interval, burst, &next);

    if (wait) {
        return (time_t) (wait / 1000 + 1);
    }

    if (!take) {
        return 0;
    }

    if (t == NULL) {
        t = ngx_slab_alloc_locked(amcf->shpool,
                                  offsetof(ngx_http_claw_acme_tenant_t, id)
                                  + len);
        if (t == NULL) {
            /* no room to count it: the back-off still holds it back */
            return 0;
        }

        ngx_memcpy(t->id, id, len);
        t->sn.str.data = t->id;
        t->sn.str.len = len;
        t->sn.node.key = hash;

        ngx_rbtree_insert(&amcf->sh->tenants, &t->sn.node);
    }

    t->tat = next;

    return 0;
}


/* an order counted against a tenant's cap was not placed after all */

static void
ngx_http_claw_acme_cap_refund_locked(ngx_http_claw_acme_main_conf_t *amcf,
    u_char *id, size_t len)
{
    uint64_t                      interval;
    ngx_str_t                     key;
    ngx_http_claw_acme_tenant_t  *t;

    if (amcf->cap == 0) {
        return;
    }

    interval = (uint64_t) amcf->cap_period * 1000 / amcf->cap;

    key.data = id;
    key.len = len;

    t = (ngx_http_claw_acme_tenant_t *)
            ngx_str_rbtree_lookup(&amcf->sh->tenants, &key,
                                  ngx_crc32_short(id, len));

    if (t && t->tat >= interval) {
        t->tat -= interval;
    }
}


/*
 * What the files of a name hold: a certificate for the name with its
 * key, valid from not_before to not_after, is renewed at two thirds of
 * its lifetime.  Anything else (no files, another name, a key that does
 * not match, garbage) means the name has no certificate.  On the claw
 * thread pool.
 */

static void
ngx_http_claw_acme_check_thread(void *data, ngx_log_t *log)
{
    ngx_http_claw_acme_io_t  *io = data;

    BIO                             *bio;
    X509                            *x;
    time_t                           nb, na;
    EVP_PKEY                        *key;
    ngx_str_t                       *name;
    ngx_uint_t                       i;
    u_char                           path[NGX_MAX_PATH];
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = io->amcf;

    for (i = 0; i < io->nfiles; i++) {
        name = &io->files[i].name;

        if (amcf->certs.len + name->len + sizeof("/.crt") > NGX_MAX_PATH) {
            continue;
        }

        nb = 0;
        na = 0;
        x = NULL;
        key = NULL;

        ngx_sprintf(path, "%V/%V.key%Z", &amcf->certs, name);

        bio = BIO_new_file((char *) path, "r");
        if (bio) {
            key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
            BIO_free(bio);
        }

        ngx_sprintf(path, "%V/%V.crt%Z", &amcf->certs, name);

        bio = BIO_new_file((char *) path, "r");
        if (bio) {
            x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
            BIO_free(bio);
        }

        if (x && key
            && X509_check_private_key(x, key) == 1
            && ngx_http_claw_acme_cert_names(x, (char *) name->data)
            && ngx_http_claw_acme_cert_times(x, &nb, &na)
            && na > nb)
        {
            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                           "claw_acme: \"%V\" has a certificate from %T "
                           "to %T", name, nb, na);

            io->files[i].not_before = nb;
            io->files[i].not_after = na;
        }

        ERR_clear_error();

        if (x) {
            X509_free(x);
        }

        if (key) {
            EVP_PKEY_free(key);
        }
    }
}


static void
ngx_http_claw_acme_check_done(ngx_event_t *ev)
{
    ngx_http_claw_acme_io_t  *io = ev->data;

    time_t                           now, nb, na;
    ngx_uint_t                       i;
    ngx_http_claw_acme_domain_t     *rec;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = io->amcf;

    if (ngx_http_claw_acme_stopping()) {
        ngx_http_claw_acme_io_end(io, 0);
        return;
    }

    now = ngx_time();

    ngx_shmtx_lock(&amcf->shpool->mutex);

    for (i = 0; i < io->nfiles; i++) {
        rec = ngx_http_claw_acme_domain_locked(amcf->sh,
                                               io->files[i].name.data,
                                               io->files[i].name.len);

        /* a name is busy only once this round places its order */

        if (rec == NULL || rec->busy) {
            continue;
        }

        nb = io->files[i].not_before;
        na = io->files[i].not_after;

        rec->checked = now;
        rec->not_before = nb;
        rec->not_after = na;
        rec->renew_at = na ? nb + (na - nb) / 3 * 2 : 0;
    }

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    ngx_http_claw_acme_place(io);
}


/*
 * The names due, as many as may be issued for at once, are marked busy
 * and counted against their tenants' caps here; their orders are
 * journaled by a task, and placed when it is done.
 */

static void
ngx_http_claw_acme_place(ngx_http_claw_acme_io_t *io)
{
    u_char                          *p;
    time_t                           now;
    ngx_uint_t                       n;
    ngx_http_claw_acme_order_t      *o;
    ngx_http_claw_acme_shctx_t      *sh;
    ngx_http_claw_acme_domain_t     *rec;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = io->amcf;
    sh = amcf->sh;

    if (amcf->running >= NGX_HTTP_CLAW_ACME_JOBS) {
        ngx_http_claw_acme_io_end(io, 1);
        return;
    }

    n = NGX_HTTP_CLAW_ACME_JOBS - amcf->running;

    io->placed = ngx_palloc(io->pool, n * sizeof(ngx_http_claw_acme_order_t));
    io->lines = ngx_pnalloc(io->pool, n * NGX_HTTP_CLAW_ACME_LINE_LEN);

    if (io->placed == NULL || io->lines == NULL) {
        ngx_http_claw_acme_io_end(io, 1);
        return;
    }

    now = ngx_time();
    p = io->lines;

    while (io->nplaced < n) {

        ngx_shmtx_lock(&amcf->shpool->mutex);

        rec = ngx_http_claw_acme_due_locked(amcf, now);

        if (rec == NULL) {
            ngx_shmtx_unlock(&amcf->shpool->mutex);
            break;
        }

        o = &io->placed[io->nplaced];

        o->name.len = rec->sn.str.len;
        o->name.data = ngx_pnalloc(io->pool, o->name.len);
        o->tenant.len = rec->tenant_len;
        o->tenant.data = ngx_pnalloc(io->pool, o->tenant.len);

        if (o->name.data == NULL || o->tenant.data == NULL) {
            ngx_shmtx_unlock(&amcf->shpool->mutex);
            break;
        }

        ngx_memcpy(o->name.data, rec->sn.str.data, o->name.len);
        ngx_memcpy(o->tenant.data, rec->tenant, o->tenant.len);

        rec->busy = ngx_pid;
        rec->capped = 0;
        rec->orders++;
        rec->last_order = now;
        sh->orders++;

        /* the busy go to the end: every name gets its turn */

        ngx_queue_remove(&rec->queue);
        ngx_queue_insert_tail(&sh->domain_queue, &rec->queue);

        ngx_shmtx_unlock(&amcf->shpool->mutex);

        /* "time tenant domain"; the platform's names count for no cap */

        if (o->tenant.len) {
            p = ngx_sprintf(p, "%T %V %V\n", now, &o->tenant, &o->name);
        }

        io->nplaced++;
    }

    if (io->nplaced == 0) {
        ngx_http_claw_acme_io_end(io, 1);
        return;
    }

    io->lines_len = p - io->lines;
    io->now = now;
    io->orders_max = amcf->orders_max;

    ngx_http_claw_acme_io_post(io, ngx_http_claw_acme_journal_thread,
                               ngx_http_claw_acme_journal_done);
}


/*
 * Orders are journaled ("time tenant domain"), so that the caps hold
 * across restarts: a new zone replays the last period's orders.  A
 * journal grown past orders_max is rewritten with those alone.  On the
 * claw thread pool.
 */

static void
ngx_http_claw_acme_journal_thread(void *data, ngx_log_t *log)
{
    ngx_http_claw_acme_io_t  *io = data;

    u_char                          *buf;
    size_t                           kept;
    ssize_t                          n;
    ngx_fd_t                         fd;
    ngx_uint_t                       rewrite;
    ngx_file_info_t                  fi;
    u_char                           path[NGX_MAX_PATH];
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = io->amcf;

    ngx_sprintf(path, "%V/orders%Z", &amcf->state);

    fd = ngx_open_file(path, NGX_FILE_APPEND, NGX_FILE_CREATE_OR_OPEN, 0600);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", path);
        return;
    }

    n = ngx_write_fd(fd, io->lines, io->lines_len);

    if (n != (ssize_t) io->lines_len) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_write_fd_n " \"%s\" failed", path);
    }

    rewrite = (ngx_fd_info(fd, &fi) != NGX_FILE_ERROR
               && ngx_file_size(&fi) > (off_t) io->orders_max);

    (void) ngx_close_file(fd);

    if (!rewrite) {
        return;
    }

    if (ngx_http_claw_acme_orders_read(amcf, log, io->now, io->orders_max,
                                       &buf, &kept)
        == NGX_OK)
    {
        ngx_free(buf);

        /* a period's orders alone past the limit: not at every order */

        io->orders_max = ngx_max(NGX_HTTP_CLAW_ACME_LOG_MAX, 2 * kept);
    }
}


static void
ngx_http_claw_acme_journal_done(ngx_event_t *ev)
{
    ngx_http_claw_acme_io_t  *io = ev->data;

    ngx_uint_t                       i;
    ngx_http_claw_acme_order_t      *o;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = io->amcf;
    amcf->orders_max = io->orders_max;

    /* the busy marks go with the lock, when the worker lets it go */

    if (ngx_http_claw_acme_stopping()) {
        ngx_http_claw_acme_io_end(io, 0);
        return;
    }

    for (i = 0; i < io->nplaced; i++) {
        o = &io->placed[i];

        if (ngx_http_claw_acme_start(amcf, &o->name, &o->tenant) != NGX_OK) {
            ngx_http_claw_acme_unplace(io, i);
            break;
        }
    }

    ngx_http_claw_acme_io_end(io, 1);
}


/* orders from the nth on were not placed: tried again after back-off */

static void
ngx_http_claw_acme_unplace(ngx_http_claw_acme_io_t *io, ngx_uint_t from)
{
    time_t                           now;
    ngx_uint_t                       i;
    ngx_http_claw_acme_order_t      *o;
    ngx_http_claw_acme_domain_t     *rec;
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = io->amcf;
    now = ngx_time();

    ngx_shmtx_lock(&amcf->shpool->mutex);

    for (i = from; i < io->nplaced; i++) {
        o = &io->placed[i];

        rec = ngx_http_claw_acme_domain_locked(amcf->sh, o->name.data,
                                               o->name.len);

        if (rec && rec->busy == ngx_pid) {
            rec->busy = 0;
            rec->next_attempt = now + amcf->backoff_min;
        }
    }

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    io->nplaced = from;
}


/*
 * The orders of the last period in the journal (of its newest 4 MiB:
 * far more than a period's orders), whole valid lines in a buffer of
 * ngx_alloc(); the journal is rewritten with them when it is longer
 * than max.  NGX_DECLINED: no journal yet.  On the claw thread pool.
 */

static ngx_int_t
ngx_http_claw_acme_orders_read(ngx_http_claw_acme_main_conf_t *amcf,
    ngx_log_t *log, time_t now, size_t max, u_char **orders, size_t *len)
{
    off_t             size, offset;
    u_char           *buf, *p, *last, *eol, *sp, *id;
    time_t            t, since;
    size_t            kept;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_file_info_t   fi;
    u_char            path[NGX_MAX_PATH];

    *orders = NULL;
    *len = 0;

    ngx_sprintf(path, "%V/orders%Z", &amcf->state);

    fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno == NGX_ENOENT) {
            return NGX_DECLINED;
        }

        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", path);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_fd_info_n " \"%s\" failed", path);
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    size = ngx_file_size(&fi);

    offset = ngx_max(size - 4 * NGX_HTTP_CLAW_ACME_LOG_MAX, 0);
    size -= offset;

    if (size == 0) {
        (void) ngx_close_file(fd);
        return NGX_DECLINED;
    }

    buf = ngx_alloc(size, log);
    if (buf == NULL) {
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = pread(fd, buf, size, offset);

    (void) ngx_close_file(fd);

    if (n != size) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "pread() \"%s\" failed", path);
        ngx_free(buf);
        return NGX_ERROR;
    }

    since = now - amcf->cap_period;
    kept = 0;
    last = buf + size;
    p = buf;

    if (offset) {
        p = ngx_strlchr(buf, last, '\n');
        p = p ? p + 1 : last;
    }

    for ( /* void */ ; p < last; p = eol + 1) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            break;
        }

        sp = ngx_strlchr(p, eol, ' ');
        if (sp == NULL) {
            continue;
        }

        t = ngx_atotm(p, sp - p);
        id = sp + 1;
        sp = ngx_strlchr(id, eol, ' ');

        if (t == NGX_ERROR || t < since || t > now || sp == NULL
            || sp - id > NGX_HTTP_CLAW_ID_MAX || sp == id)
        {
            continue;
        }

        /* what is kept, moved to the front */

        ngx_memmove(buf + kept, p, eol + 1 - p);
        kept += eol + 1 - p;
    }

    if (size + offset > (off_t) max) {
        (void) ngx_http_claw_acme_write_file(log, &amcf->state, "orders", "",
                                             buf, kept, 0600);
    }

    *orders = buf;
    *len = kept;

    return NGX_OK;
}


/* the caps of a new zone, from what orders_read() kept */

static ngx_uint_t
ngx_http_claw_acme_replay_locked(ngx_http_claw_acme_main_conf_t *amcf,
    u_char *p, size_t len)
{
    u_char      *last, *eol, *sp, *id;
    time_t       t;
    ngx_uint_t   count;

    count = 0;
    last = p + len;

    for ( /* void */ ; p < last; p = eol + 1) {
        eol = ngx_strlchr(p, last, '\n');
        sp = eol ? ngx_strlchr(p, eol, ' ') : NULL;

        if (sp == NULL) {
            break;
        }

        t = ngx_atotm(p, sp - p);
        id = sp + 1;
        sp = ngx_strlchr(id, eol, ' ');

        if (t == NGX_ERROR || sp == NULL) {
            continue;
        }

        (void) ngx_http_claw_acme_cap_locked(amcf, id, sp - id,
                                             (uint64_t) t * 1000, 2);
        count++;
    }

    return count;
}


static ngx_int_t
ngx_http_claw_acme_start(ngx_http_claw_acme_main_conf_t *amcf,
    ngx_str_t *name, ngx_str_t *tenant)
{
    ngx_pool_t                   *pool;
    ngx_thread_task_t            *task;
    ngx_pool_cleanup_t           *cln;
    ngx_http_claw_acme_job_t     *job;
    ngx_http_claw_acme_domain_t  *rec;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    job = ngx_pcalloc(pool, sizeof(ngx_http_claw_acme_job_t));
    if (job == NULL) {
        goto failed;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        goto failed;
    }

    cln->handler = ngx_http_claw_acme_job_free;
    cln->data = job;

    job->amcf = amcf;
    job->pool = pool;
    job->log = ngx_cycle->log;
    job->phase = 1;
    job->type = ngx_http_claw_acme_wildcard(name->data)
                ? NGX_HTTP_CLAW_ACME_DNS_01 : amcf->challenge;

    job->domain = ngx_pnalloc(pool, name->len + 1);
    job->tenant.data = ngx_pnalloc(pool, tenant->len);

    if (job->domain == NULL || job->tenant.data == NULL) {
        goto failed;
    }

    ngx_memcpy(job->domain, name->data, name->len);
    job->domain[name->len] = '\0';

    job->tenant.len = tenant->len;
    ngx_memcpy(job->tenant.data, tenant->data, tenant->len);

    if (amcf->kid) {
        job->kid = ngx_pnalloc(pool, ngx_strlen(amcf->kid) + 1);
        if (job->kid == NULL) {
            goto failed;
        }

        ngx_cpystrn((u_char *) job->kid, (u_char *) amcf->kid,
                    ngx_strlen(amcf->kid) + 1);
    }

    if (EVP_PKEY_up_ref(amcf->account_key) != 1) {
        goto failed;
    }

    job->account_key = amcf->account_key;

    task = ngx_thread_task_alloc(pool, 0);
    if (task == NULL) {
        goto failed;
    }

    task->ctx = job;
    task->handler = ngx_http_claw_acme_order_thread;
    task->event.handler = ngx_http_claw_acme_done;
    task->event.data = job;
    task->event.log = ngx_cycle->log;

    job->task = task;

    if (amcf->cluster) {
        ngx_shmtx_lock(&amcf->shpool->mutex);

        rec = ngx_http_claw_acme_domain_locked(amcf->sh, name->data,
                                               name->len);
        if (rec) {
            job->held_not_after = rec->not_after;
            job->pull = rec->pull;
        }

        ngx_shmtx_unlock(&amcf->shpool->mutex);

        /* the job is the server's answer's from here on */

        amcf->running++;
        job->phase = 0;

        ngx_http_claw_acme_cluster_claim(job, ngx_http_claw_acme_claimed);

        return NGX_OK;
    }

    if (ngx_thread_task_post(amcf->thread_pool, task) != NGX_OK) {
        goto failed;
    }

    amcf->running++;

    if (job->tenant.len) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "claw_acme: order for \"%s\" of tenant \"%V\"",
                      job->domain, &job->tenant);

    } else {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "claw_acme: order for \"%s\" by dns-01", job->domain);
    }

    return NGX_OK;

failed:

    ngx_destroy_pool(pool);

    return NGX_ERROR;
}


/* a phase ended: on to the next one, or the job is over */

static void
ngx_http_claw_acme_done(ngx_event_t *ev)
{
    ngx_http_claw_acme_job_t  *job = ev->data;

    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = job->amcf;

    if (job->account_gone && amcf->kid) {
        ngx_free(amcf->kid);
        amcf->kid = NULL;
    }

    if (job->new_kid && job->kid && amcf->kid == NULL) {
        amcf->kid = ngx_alloc(ngx_strlen(job->kid) + 1, ngx_cycle->log);

        if (amcf->kid) {
            ngx_cpystrn((u_char *) amcf->kid, (u_char *) job->kid,
                        ngx_strlen(job->kid) + 1);
        }
    }

    if (job->phase == 1 && job->rc == NGX_OK) {

        /* a name taken from its tenant meanwhile is not validated */

        if (job->tenant.len
            && ngx_http_claw_tables_peek(amcf->tables, 1,
                                         (u_char *) job->domain,
                                         ngx_strlen(job->domain))
               == NULL)
        {
            job->rc = NGX_ERROR;
            job->error_len = ngx_sprintf(job->error,
                                         "no tenant has the name any more")
                             - job->error;

        } else if (job->nauthz
                   && job->type != NGX_HTTP_CLAW_ACME_DNS_01
                   && ngx_http_claw_acme_chall_set(amcf, job) != NGX_OK)
        {
            job->rc = NGX_ERROR;
            job->error_len = ngx_sprintf(job->error,
                                         "no room for the challenge in "
                                         "zone \"%V\"",
                                         &amcf->shm_zone->shm.name)
                             - job->error;

        } else if (job->nauthz
                   && job->type != NGX_HTTP_CLAW_ACME_DNS_01
                   && amcf->cluster)
        {

            /* the other nodes answer it too: the CA may reach any */

            ngx_http_claw_acme_cluster_offer(job, ngx_http_claw_acme_validate);
            return;

        } else {
            ngx_http_claw_acme_validate(job);
            return;
        }
    }

    ngx_http_claw_acme_end(job);
}


/* phase 2: the challenge is answered, the CA is told to validate it */

static void
ngx_http_claw_acme_validate(ngx_http_claw_acme_job_t *job)
{
    if (job->rc == NGX_OK) {
        job->phase = 2;
        job->task->handler = ngx_http_claw_acme_finish_thread;

        if (ngx_thread_task_post(job->amcf->thread_pool, job->task)
            == NGX_OK)
        {
            return;
        }

        job->rc = NGX_ERROR;
        job->error_len = ngx_sprintf(job->error,
                                     "the thread pool refused the task")
                         - job->error;
    }

    ngx_http_claw_acme_end(job);
}


/* the cluster's server answered the claim of the name */

static void
ngx_http_claw_acme_claimed(ngx_http_claw_acme_job_t *job)
{
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = job->amcf;

    if (ngx_http_claw_acme_stopping()) {
        job->rc = NGX_ABORT;
        ngx_http_claw_acme_end(job);
        return;
    }

    switch (job->claim) {

    case NGX_HTTP_CLAW_ACME_CLAIM_OK:
        job->phase = 1;

        if (ngx_thread_task_post(amcf->thread_pool, job->task) == NGX_OK) {
            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "claw_acme: order for \"%s\" of tenant \"%V\"",
                          job->domain, &job->tenant);
            return;
        }

        break;

    case NGX_HTTP_CLAW_ACME_CLAIM_CERT:
        job->phase = 3;
        job->task->handler = ngx_http_claw_acme_install_thread;

        if (ngx_thread_task_post(amcf->disk_pool, job->task) == NGX_OK) {
            return;
        }

        break;

    case NGX_HTTP_CLAW_ACME_CLAIM_BUSY:
        job->rc = NGX_DECLINED;
        ngx_http_claw_acme_end(job);
        return;

    case NGX_HTTP_CLAW_ACME_CLAIM_NONE:
        job->rc = NGX_DONE;
        ngx_http_claw_acme_end(job);
        return;

    default: /* NGX_HTTP_CLAW_ACME_CLAIM_ERROR: error says why */
        job->rc = NGX_AGAIN;
        ngx_http_claw_acme_end(job);
        return;
    }

    job->rc = NGX_ERROR;
    job->error_len = ngx_sprintf(job->error, "the thread pool refused the "
                                 "task")
                     - job->error;

    ngx_http_claw_acme_end(job);
}


static void
ngx_http_claw_acme_end(ngx_http_claw_acme_job_t *job)
{
    ngx_http_claw_acme_main_conf_t  *amcf;

    amcf = job->amcf;

    if (job->wait.timer_set) {
        ngx_del_timer(&job->wait);
    }

    if (job->chall_set) {
        ngx_http_claw_acme_chall_unset(amcf, job);
    }

    ngx_http_claw_acme_result(amcf, job);

    if (amcf->cluster && !ngx_terminate) {
        ngx_http_claw_acme_cluster_finish(job);
    }

    amcf->running--;

    ngx_destroy_pool(job->pool);

    if (ngx_http_claw_acme_stopping() && amcf->running == 0
        && amcf->io == NULL)
    {
        ngx_http_claw_acme_release(amcf);
    }
}


/* the cluster's log: a certificate newer than this node's is pulled */

static void
ngx_http_claw_acme_pull(ngx_http_claw_acme_main_conf_t *amcf, u_char *name,
    size_t len, time_t not_after)
{
    ngx_http_claw_acme_domain_t  *rec;

    ngx_shmtx_lock(&amcf->shpool->mutex);

    rec = ngx_http_claw_acme_domain_locked(amcf->sh, name, len);

    if (rec && !rec->busy && not_after > rec->not_after) {
        rec->pull = 1;
    }

    ngx_shmtx_unlock(&amcf->shpool->mutex);
}


static void
ngx_http_claw_acme_result(ngx_http_claw_acme_main_conf_t *amcf,
    ngx_http_claw_acme_job_t *job)
{
    time_t                        now, delay;
    size_t                        len;
    ngx_uint_t                    i;
    ngx_http_claw_acme_domain_t  *rec;
    u_char                        until[sizeof("1970-09-28T12:00:00Z")];

    now = ngx_time();
    len = ngx_strlen(job->domain);
    delay = 0;

    ngx_shmtx_lock(&amcf->shpool->mutex);

    rec = ngx_http_claw_acme_domain_locked(amcf->sh, (u_char *) job->domain,
                                           len);

    if (rec) {
        rec->pull = 0;
    }

    /* a claim that placed no order spent nothing of the tenant's cap */

    if (amcf->cluster && !job->pull && !job->claimed) {
        ngx_http_claw_acme_cap_refund_locked(amcf, job->tenant.data,
                                             job->tenant.len);
    }

    if (job->rc == NGX_AGAIN) {

        /* the cluster server did not answer: no failure of the name's */

        if (rec) {
            rec->busy = 0;
            rec->next_attempt = now + amcf->backoff_min;
            rec->error_len = (u_char) ngx_min(job->error_len,
                                              NGX_HTTP_CLAW_ACME_ERROR_MAX);
            ngx_memcpy(rec->error, job->error, rec->error_len);
        }

        ngx_shmtx_unlock(&amcf->shpool->mutex);

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "claw_acme: no order for \"%s\": %*s; next attempt in "
                      "%Ts", job->domain, job->error_len, job->error,
                      amcf->backoff_min);
        return;
    }

    if (job->rc == NGX_DECLINED || job->rc == NGX_DONE
        || job->rc == NGX_ABORT)
    {
        /*
         * Another node orders it: looked at again when its lock expires
         * (its certificate, if it gets one, is pulled before); nothing to
         * pull; or the worker is exiting.
         */

        if (rec) {
            rec->busy = 0;

            if (job->rc == NGX_DECLINED) {
                delay = job->retry_after ? job->retry_after
                                         : amcf->backoff_min;
                rec->next_attempt = now + delay;
                rec->error_len = (u_char) (ngx_snprintf(rec->error,
                                              NGX_HTTP_CLAW_ACME_ERROR_MAX,
                                              "node \"%V\" orders it",
                                              &job->from)
                                           - rec->error);
            }
        }

        ngx_shmtx_unlock(&amcf->shpool->mutex);

        if (job->rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "claw_acme: node \"%V\" orders \"%s\"; looked at "
                          "again in %Ts", &job->from, job->domain, delay);
        }

        return;
    }

    if (job->rc == NGX_OK) {
        if (rec) {
            rec->busy = 0;
            rec->checked = now;
            rec->not_before = job->not_before;
            rec->not_after = job->not_after;
            rec->renew_at = job->not_before
                            + (job->not_after - job->not_before) / 3 * 2;
            rec->next_attempt = 0;
            rec->failures = 0;
            rec->force = 0;
            rec->error_len = 0;
        }

    } else if (rec) {
        rec->busy = 0;
        rec->failures++;

        /* exponential: min, 2 min, 4 min, ... max */

        delay = amcf->backoff_min;

        for (i = 1; i < rec->failures && delay < amcf->backoff_max; i++) {
            delay *= 2;
        }

        delay = ngx_min(delay, amcf->backoff_max);

        if (job->retry_after > delay) {
            delay = job->retry_after;
        }

        rec->next_attempt = now + delay;
        job->delay = delay;
        rec->error_len = (u_char) ngx_min(job->error_len,
                                          NGX_HTTP_CLAW_ACME_ERROR_MAX);
        ngx_memcpy(rec->error, job->error, rec->error_len);

        /* its files are read again first: a job may end half-way */

        rec->checked = now - NGX_HTTP_CLAW_ACME_RECHECK;
    }

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    if (job->rc == NGX_OK && job->phase == 3) {
        ngx_http_claw_acme_iso_time(until, job->not_after);

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "claw_acme: certificate of \"%s\" taken from the "
                      "cluster (issued to node \"%V\"), valid until %s",
                      job->domain, &job->from, until);
        return;
    }

    if (job->rc == NGX_OK) {
        ngx_http_claw_acme_iso_time(until, job->not_after);

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "claw_acme: certificate of \"%s\" issued, valid "
                      "until %s (%ui requests, %ui nonces refused)",
                      job->domain, until, job->requests, job->bad_nonces);
        return;
    }

    if (job->phase == 3) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "claw_acme: the certificate of \"%s\" in the cluster "
                      "(\"%Vacme:cert:%s\", from node \"%V\") cannot be "
                      "used: %*s%s", job->domain, &amcf->cluster->prefix,
                      job->domain, &job->from, job->error_len, job->error,
                      job->bad ? "; removed" : "");
        return;
    }

    if (rec == NULL) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "claw_acme: order for \"%s\" failed: %*s",
                      job->domain, job->error_len, job->error);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "claw_acme: order for \"%s\" failed: %*s, next attempt "
                  "in %Ts", job->domain, job->error_len, job->error, delay);
}


static ngx_int_t
ngx_http_claw_acme_chall_set(ngx_http_claw_acme_main_conf_t *amcf,
    ngx_http_claw_acme_job_t *job)
{
    u_char                      *p;
    size_t                       size, name_len, token_len, keyauth_len;
    ngx_uint_t                   i;
    ngx_http_claw_acme_chall_t  *c;

    name_len = ngx_strlen(job->domain);
    token_len = ngx_strlen(job->token);
    keyauth_len = ngx_strlen(job->keyauth);

    if (token_len > NGX_HTTP_CLAW_ACME_TOKEN_MAX
        || keyauth_len > 2 * NGX_HTTP_CLAW_ACME_TOKEN_MAX)
    {
        return NGX_ERROR;
    }

    size = offsetof(ngx_http_claw_acme_chall_t, data) + name_len + token_len
           + keyauth_len;

    for (i = 0; i < 2; i++) {
        if (job->cert_der_len[i] > 0xffff || job->key_der_len[i] > 0xffff) {
            return NGX_ERROR;
        }

        size += job->cert_der_len[i] + job->key_der_len[i];
    }

    ngx_shmtx_lock(&amcf->shpool->mutex);

    c = ngx_slab_alloc_locked(amcf->shpool, size);

    if (c == NULL) {
        ngx_shmtx_unlock(&amcf->shpool->mutex);
        return NGX_ERROR;
    }

    c->pid = ngx_pid;
    c->expires = ngx_time() + NGX_HTTP_CLAW_ACME_CHALL_TTL;
    c->type = job->type;
    c->name_len = (uint16_t) name_len;
    c->token_len = (uint16_t) token_len;
    c->keyauth_len = (uint16_t) keyauth_len;

    p = ngx_cpymem(c->data, job->domain, name_len);
    p = ngx_cpymem(p, job->token, token_len);
    p = ngx_cpymem(p, job->keyauth, keyauth_len);

    for (i = 0; i < 2; i++) {
        c->cert_len[i] = (uint16_t) job->cert_der_len[i];
        c->key_len[i] = (uint16_t) job->key_der_len[i];

        /* http-01 has no certificates: memcpy() from NULL is undefined */

        if (job->cert_der_len[i]) {
            p = ngx_cpymem(p, job->cert_der[i], job->cert_der_len[i]);
        }

        if (job->key_der_len[i]) {
            p = ngx_cpymem(p, job->key_der[i], job->key_der_len[i]);
        }
    }

    ngx_queue_insert_tail(&amcf->sh->challenges, &c->queue);

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    job->chall_set = 1;

    return NGX_OK;
}


static void
ngx_http_claw_acme_chall_unset(ngx_http_claw_acme_main_conf_t *amcf,
    ngx_http_claw_acme_job_t *job)
{
    size_t                       name_len, token_len;
    ngx_queue_t                 *q;
    ngx_http_claw_acme_chall_t  *c;

    name_len = ngx_strlen(job->domain);
    token_len = ngx_strlen(job->token);

    ngx_shmtx_lock(&amcf->shpool->mutex);

    for (q = ngx_queue_head(&amcf->sh->challenges);
         q != ngx_queue_sentinel(&amcf->sh->challenges);
         q = ngx_queue_next(q))
    {
        c = ngx_queue_data(q, ngx_http_claw_acme_chall_t, queue);

        if (c->pid == ngx_pid
            && c->name_len == name_len
            && c->token_len == token_len
            && ngx_memcmp(c->data, job->domain, name_len) == 0
            && ngx_memcmp(c->data + name_len, job->token, token_len) == 0)
        {
            ngx_queue_remove(q);
            ngx_slab_free_locked(amcf->shpool, c);
            break;
        }
    }

    ngx_shmtx_unlock(&amcf->shpool->mutex);

    job->chall_set = 0;
}


ngx_http_claw_acme_domain_t *
ngx_http_claw_acme_domain_locked(ngx_http_claw_acme_shctx_t *sh,
    u_char *name, size_t len)
{
    ngx_str_t  key;

    key.data = name;
    key.len = len;

    return (ngx_http_claw_acme_domain_t *)
               ngx_str_rbtree_lookup(&sh->domains, &key,
                                     ngx_crc32_short(name, len));
}


/* "2006-01-02T15:04:05Z" */

u_char *
ngx_http_claw_acme_iso_time(u_char *buf, time_t t)
{
    ngx_tm_t  tm;

    ngx_gmtime(t, &tm);

    return ngx_sprintf(buf, "%4d-%02d-%02dT%02d:%02d:%02dZ%Z",
                       tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                       tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
}
