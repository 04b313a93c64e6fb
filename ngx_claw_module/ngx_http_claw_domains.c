
/*
 * Copyright (C) ngx_claw_module authors
 *
 * A worker's view of the registry's custom domains, kept up to date off
 * the event loop:
 *
 * - an index of every custom domain with its tenant and whether a domain
 *   of another tenant lies under it, for the container cookie filter;
 *   rebuilt on the "claw" thread pool from a copy of the registry
 *   whenever the tables' change counter moves;
 *
 * - the certificates of claw_certificates, in a bounded (LRU) cache that
 *   the TLS handshake only looks names up in.  nginx 1.22 cannot pause a
 *   handshake, so certificates are read before they are asked for: every
 *   registered domain's by the master when the cycle starts (as nginx
 *   reads ssl_certificate), so that new workers have them from their
 *   first handshake; then, in a worker, by tasks on the thread pool: a
 *   domain's when the registry gains it, again when the directory tells
 *   of a change of its files (inotify) and, in case it does not, every
 *   10 seconds (every second while a domain has none).
 *
 * In a worker everything here is touched on the event loop only; a task
 * owns its pool and what it made until its completion handler runs
 * there.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_domains.h"

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif

#if (NGX_LINUX && NGX_HTTP_SSL)
#include <sys/inotify.h>
#define NGX_HTTP_CLAW_INOTIFY  1
#endif


#define NGX_HTTP_CLAW_CERT_CHECK      10        /* seconds */
#define NGX_HTTP_CLAW_CERT_RECHECK    1
#define NGX_HTTP_CLAW_CERT_SETTLE     10        /* may be being written */
#define NGX_HTTP_CLAW_CERT_CACHE      1000
#define NGX_HTTP_CLAW_CERT_CACHE_MAX  1000000
#define NGX_HTTP_CLAW_CERT_BATCH      64        /* names per task */
#define NGX_HTTP_CLAW_DOMAINS_TICK    1000      /* ms */

#define NGX_HTTP_CLAW_DJOB_LIST       0
#define NGX_HTTP_CLAW_DJOB_CHECK      1
#define NGX_HTTP_CLAW_DJOB_WATCH      2


typedef struct ngx_http_claw_dname_s  ngx_http_claw_dname_t;

struct ngx_http_claw_dname_s {
    ngx_http_claw_dname_t       *next;
    ngx_str_t                   *owner;         /* the tenant's id */
    uint32_t                     hash;
    unsigned                     others:1;      /* another's lies under */
    u_char                       len;
    u_char                       name[1];
};


/* the owner of the wildcard names, which is no tenant */
static ngx_str_t  ngx_http_claw_domains_platform = ngx_null_string;


/* built by a task, then only read */
typedef struct {
    ngx_pool_t                  *pool;
    uint64_t                     changes;       /* the tables', when copied */
    ngx_uint_t                   mask;
    ngx_http_claw_dname_t      **buckets;
} ngx_http_claw_dindex_t;


typedef struct {
    ngx_str_t                    path;
    ngx_uint_t                   index;
    int                          wd;            /* inotify, -1: none */
    ngx_http_claw_domains_t     *domains;
} ngx_http_claw_cdir_t;


#if (NGX_HTTP_SSL)

/* what tells that a file changed */
typedef struct {
    time_t                       mtime;         /* -1: none, -2: not seen */
    off_t                        size;
    ngx_file_uniq_t              uniq;
} ngx_http_claw_fsig_t;


typedef struct ngx_http_claw_cert_s  ngx_http_claw_cert_t;

/*
 * A cached name: its certificate (cert NULL: the server's is served),
 * or none yet.  A failed load is kept too, so that a bad pair is logged
 * once per change of its files, not per look.
 */

struct ngx_http_claw_cert_s {
    ngx_http_claw_cert_t        *next;          /* hash chain */
    ngx_queue_t                  lru;
    ngx_queue_t                  pending;       /* to be looked at now */
    ngx_http_claw_keypair_t      pair;
    ngx_http_claw_fsig_t         crt;
    ngx_http_claw_fsig_t         key;
    time_t                       checked;
    ngx_uint_t                   seq;           /* its task's, 0: none */
    ngx_uint_t                   dir;
    uint32_t                     hash;
    unsigned                     queued:1;
    unsigned                     quiet:1;       /* a file event: mid-write? */
    unsigned                     again:1;       /* an event during a task */
    unsigned                     retry:1;       /* a quiet failure */
    u_char                       len;
    u_char                       name[1];
};


/* one name in a task */
typedef struct {
    ngx_str_t                    name;          /* null-terminated */
    ngx_uint_t                   dir;
    ngx_uint_t                   seq;
    uint32_t                     hash;
    ngx_http_claw_fsig_t         crt;           /* as known, then as found */
    ngx_http_claw_fsig_t         key;
    ngx_http_claw_keypair_t      pair;
    unsigned                     quiet:1;
    unsigned                     served:1;      /* a pair is served now */
    unsigned                     changed:1;
    unsigned                     failed:1;
} ngx_http_claw_citem_t;

#endif


typedef struct {
#if (NGX_THREADS)
    ngx_thread_task_t            task;
#endif
    ngx_event_t                  done;          /* without threads */
    ngx_queue_t                  queue;         /* in the worker's tasks */
    ngx_http_claw_domains_t     *domains;
    ngx_pool_t                  *pool;
    ngx_uint_t                   type;

    /* the registry's domains */
    uint64_t                     changes;
    ngx_http_claw_dindex_t      *index;
    ngx_http_claw_dindex_t      *prev;          /* read only */
    ngx_array_t                 *added;         /* ngx_http_claw_dname_t * */

#if (NGX_HTTP_SSL)
    /* certificates */
    ngx_http_claw_citem_t       *items;
    ngx_uint_t                   nitems;

    /* the directories' watches */
    int                          fd;
    int                         *wds;
#endif
} ngx_http_claw_djob_t;


struct ngx_http_claw_domains_s {
    ngx_array_t                  dirs;          /* ngx_http_claw_cdir_t * */
    ngx_uint_t                   max;           /* claw_certificate_cache */

    /* a worker's */
    ngx_cycle_t                 *cycle;
    ngx_http_claw_tables_t      *tables;
    ngx_array_t                 *suffixes;      /* every claw_domain */
#if (NGX_THREADS)
    ngx_thread_pool_t           *thread_pool;
#endif
    ngx_log_t                   *log;
    ngx_http_claw_dindex_t      *index;
    ngx_queue_t                  tasks;         /* posted, not completed */
    ngx_event_t                  tick;
    unsigned                     listing:1;
    unsigned                     loading:1;     /* the master, at start */

#if (NGX_HTTP_SSL)
    ngx_http_claw_cert_t       **buckets;
    ngx_uint_t                   mask;
    ngx_uint_t                   ncerts;
    ngx_uint_t                   seq;
    ngx_queue_t                  lru;
    ngx_queue_t                  pending;
    ngx_event_t                  flush;         /* posted */
    ngx_connection_t            *notify;        /* inotify */
#endif
};


static ngx_http_claw_domains_t *ngx_http_claw_domains_get(ngx_conf_t *cf);
static ngx_http_claw_domains_t *ngx_http_claw_domains_create(
    ngx_pool_t *pool);
static ngx_int_t ngx_http_claw_domains_setup(ngx_http_claw_main_conf_t *cmcf,
    ngx_cycle_t *cycle);
static void ngx_http_claw_domains_tick(ngx_event_t *ev);
static void ngx_http_claw_domains_list(ngx_http_claw_domains_t *dm);
static ngx_http_claw_djob_t *ngx_http_claw_domains_job(
    ngx_http_claw_domains_t *dm, ngx_uint_t type);
static ngx_int_t ngx_http_claw_domains_post(ngx_http_claw_domains_t *dm,
    ngx_http_claw_djob_t *job);
static void ngx_http_claw_domains_run(void *data, ngx_log_t *log);
static void ngx_http_claw_domains_done(ngx_event_t *ev);
static void ngx_http_claw_domains_complete(ngx_http_claw_djob_t *job);
static void ngx_http_claw_domains_free_job(ngx_http_claw_djob_t *job);
static void ngx_http_claw_domains_build(ngx_http_claw_djob_t *job,
    ngx_log_t *log);
static ngx_http_claw_dname_t *ngx_http_claw_dindex_find(
    ngx_http_claw_dindex_t *ix, u_char *name, size_t len, uint32_t hash);
static void ngx_http_claw_domains_listed(ngx_http_claw_djob_t *job);
static void ngx_http_claw_domains_cleanup(void *data);

#if (NGX_HTTP_SSL)
static ngx_http_claw_cert_t *ngx_http_claw_cert_find(
    ngx_http_claw_domains_t *dm, ngx_uint_t dir, u_char *name, size_t len,
    uint32_t hash);
static ngx_http_claw_cert_t *ngx_http_claw_cert_add(
    ngx_http_claw_domains_t *dm, ngx_uint_t dir, u_char *name, size_t len,
    uint32_t hash);
static void ngx_http_claw_cert_remove(ngx_http_claw_domains_t *dm,
    ngx_http_claw_cert_t *cc);
static void ngx_http_claw_cert_mark(ngx_http_claw_domains_t *dm,
    ngx_http_claw_cert_t *cc);
static void ngx_http_claw_domains_reconcile(ngx_http_claw_domains_t *dm,
    ngx_array_t *added);
static void ngx_http_claw_domains_flush(ngx_event_t *ev);
static void ngx_http_claw_domains_check(ngx_http_claw_domains_t *dm,
    ngx_uint_t all);
static ngx_int_t ngx_http_claw_domains_item(ngx_http_claw_domains_t *dm,
    ngx_http_claw_djob_t **jobp, ngx_http_claw_cert_t *cc);
static void ngx_http_claw_domains_post_check(ngx_http_claw_domains_t *dm,
    ngx_http_claw_djob_t *job);
static void ngx_http_claw_cert_look(ngx_http_claw_domains_t *dm,
    ngx_http_claw_citem_t *it, ngx_log_t *log);
static void ngx_http_claw_cert_stat(u_char *path, ngx_http_claw_fsig_t *sig);
static void ngx_http_claw_cert_parse(ngx_http_claw_citem_t *it, u_char *crt,
    u_char *keyp, ngx_log_t *log, ngx_log_t *loud);
static void ngx_http_claw_domains_checked(ngx_http_claw_djob_t *job);
static void ngx_http_claw_keypair_free(ngx_http_claw_keypair_t *kp);
#if (NGX_HTTP_CLAW_INOTIFY)
static void ngx_http_claw_domains_watch(ngx_http_claw_domains_t *dm,
    ngx_cycle_t *cycle);
static void ngx_http_claw_domains_add_watches(ngx_http_claw_djob_t *job,
    ngx_log_t *log);
static void ngx_http_claw_domains_notified(ngx_event_t *rev);
#endif
#endif


/* configuration */

static ngx_http_claw_domains_t *
ngx_http_claw_domains_get(ngx_conf_t *cf)
{
    ngx_http_claw_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_claw_module);

    if (cmcf->domains == NULL) {
        cmcf->domains = ngx_http_claw_domains_create(cf->pool);
    }

    return cmcf->domains;
}


static ngx_http_claw_domains_t *
ngx_http_claw_domains_create(ngx_pool_t *pool)
{
    ngx_http_claw_domains_t  *dm;

    dm = ngx_pcalloc(pool, sizeof(ngx_http_claw_domains_t));
    if (dm == NULL) {
        return NULL;
    }

    if (ngx_array_init(&dm->dirs, pool, 1, sizeof(ngx_http_claw_cdir_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return dm;
}


#if (NGX_HTTP_SSL)

/* a claw_certificates directory, one per distinct path */

void *
ngx_http_claw_domains_add_dir(ngx_conf_t *cf, ngx_str_t *path)
{
    ngx_uint_t                i;
    ngx_http_claw_cdir_t     *dir, **dirs;
    ngx_http_claw_domains_t  *dm;

    dm = ngx_http_claw_domains_get(cf);
    if (dm == NULL) {
        return NULL;
    }

    dirs = dm->dirs.elts;

    for (i = 0; i < dm->dirs.nelts; i++) {
        if (dirs[i]->path.len == path->len
            && ngx_strncmp(dirs[i]->path.data, path->data, path->len) == 0)
        {
            return dirs[i];
        }
    }

    dir = ngx_pcalloc(cf->pool, sizeof(ngx_http_claw_cdir_t));
    if (dir == NULL) {
        return NULL;
    }

    dirs = ngx_array_push(&dm->dirs);
    if (dirs == NULL) {
        return NULL;
    }

    dir->path = *path;
    dir->index = dm->dirs.nelts - 1;
    dir->wd = -1;
    dir->domains = dm;

    *dirs = dir;

    return dir;
}

#endif


char *
ngx_http_claw_certificate_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_int_t                 n;
    ngx_str_t                *value;
    ngx_http_claw_domains_t  *dm;

    dm = ngx_http_claw_domains_get(cf);
    if (dm == NULL) {
        return NGX_CONF_ERROR;
    }

    if (dm->max) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n < 1 || n > NGX_HTTP_CLAW_CERT_CACHE_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid claw_certificate_cache \"%V\", expected "
                           "a number from 1 to %d", &value[1],
                           NGX_HTTP_CLAW_CERT_CACHE_MAX);
        return NGX_CONF_ERROR;
    }

    dm->max = n;

    return NGX_CONF_OK;
}


/*
 * The cycle starts, in the master (before the workers) or the single
 * process: the index and every registered domain's certificate are
 * made here, synchronously, as nginx reads ssl_certificate.
 */

ngx_int_t
ngx_http_claw_domains_init_module(ngx_http_claw_main_conf_t *cmcf,
    ngx_cycle_t *cycle)
{
    ngx_http_claw_domains_t  *dm;

    if (ngx_test_config) {
        return NGX_OK;
    }

    if (ngx_http_claw_domains_setup(cmcf, cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    dm = cmcf->domains;

    dm->loading = 1;
    ngx_http_claw_domains_list(dm);
    dm->loading = 0;

    return NGX_OK;
}


/* a worker starts: from here on, tasks on the thread pool */

ngx_int_t
ngx_http_claw_domains_init_worker(ngx_http_claw_main_conf_t *cmcf,
    ngx_cycle_t *cycle)
{
    ngx_http_claw_domains_t  *dm;

    if (ngx_http_claw_domains_setup(cmcf, cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    dm = cmcf->domains;

#if (NGX_THREADS)
    dm->thread_pool = cmcf->journal.thread_pool;
#endif

    dm->tick.handler = ngx_http_claw_domains_tick;
    dm->tick.data = dm;
    dm->tick.log = cycle->log;
    dm->tick.cancelable = 1;

#if (NGX_HTTP_SSL)

    if (dm->buckets) {
        dm->flush.handler = ngx_http_claw_domains_flush;
        dm->flush.data = dm;
        dm->flush.log = cycle->log;

#if (NGX_HTTP_CLAW_INOTIFY)
        ngx_http_claw_domains_watch(dm, cycle);
#endif
    }

#endif

    /* what changed since the master's copy */

    if (dm->index == NULL
        || dm->index->changes != ngx_http_claw_tables_changes(dm->tables))
    {
        ngx_http_claw_domains_list(dm);
    }

    ngx_add_timer(&dm->tick, NGX_HTTP_CLAW_DOMAINS_TICK);

    return NGX_OK;
}


/* once per cycle: the state, its cleanup and the certificate cache */

static ngx_int_t
ngx_http_claw_domains_setup(ngx_http_claw_main_conf_t *cmcf,
    ngx_cycle_t *cycle)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_claw_domains_t  *dm;
#if (NGX_HTTP_SSL)
    ngx_uint_t                n;
#endif

    dm = cmcf->domains;

    if (dm == NULL) {
        dm = ngx_http_claw_domains_create(cycle->pool);
        if (dm == NULL) {
            return NGX_ERROR;
        }

        cmcf->domains = dm;
    }

    if (dm->tables) {
        return NGX_OK;
    }

    /*
     * Freed with the cycle: by the master when the cycle is replaced,
     * by a worker when it exits (after its thread pools were joined).
     */

    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_claw_domains_cleanup;
    cln->data = dm;

    dm->cycle = cycle;
    dm->tables = &cmcf->tables;
    dm->suffixes = &cmcf->suffixes;
    dm->log = cycle->log;
    ngx_queue_init(&dm->tasks);

#if (NGX_HTTP_SSL)

    if (dm->dirs.nelts) {
        if (dm->max == 0) {
            dm->max = NGX_HTTP_CLAW_CERT_CACHE;
        }

        for (n = 16; n < dm->max; n <<= 1) { /* void */ }

        dm->buckets = ngx_pcalloc(cycle->pool,
                                  n * sizeof(ngx_http_claw_cert_t *));
        if (dm->buckets == NULL) {
            return NGX_ERROR;
        }

        dm->mask = n - 1;
        ngx_queue_init(&dm->lru);
        ngx_queue_init(&dm->pending);
    }

#endif

    return NGX_OK;
}


static void
ngx_http_claw_domains_tick(ngx_event_t *ev)
{
    ngx_http_claw_domains_t  *dm = ev->data;

    if (ngx_exiting) {
        return;
    }

    if (dm->cycle != ngx_cycle) {

        /* a reload without a master: the cycle's memory may go */

#if (NGX_HTTP_CLAW_INOTIFY)
        if (dm->notify) {
            ngx_close_connection(dm->notify);
            dm->notify = NULL;
        }
#endif

        return;
    }

    if (!dm->listing
        && (dm->index == NULL
            || dm->index->changes != ngx_http_claw_tables_changes(dm->tables)))
    {
        ngx_http_claw_domains_list(dm);
    }

#if (NGX_HTTP_SSL)

    if (dm->buckets) {
        ngx_http_claw_domains_check(dm, 1);
    }

#endif

    ngx_add_timer(ev, NGX_HTTP_CLAW_DOMAINS_TICK);
}


/*
 * Whether a custom domain is the tenant's, with no domain of another
 * tenant under it: NGX_OK, NGX_DECLINED, or NGX_AGAIN while the index
 * is not built yet or the registry changed since (it is rebuilt then).
 */

ngx_int_t
ngx_http_claw_domains_owner(ngx_http_claw_main_conf_t *cmcf, u_char *name,
    size_t len, ngx_str_t *id)
{
    ngx_http_claw_dname_t    *d;
    ngx_http_claw_domains_t  *dm;

    dm = cmcf->domains;

    if (dm == NULL || dm->tables == NULL) {
        return NGX_AGAIN;
    }

    if (dm->index == NULL
        || dm->index->changes != ngx_http_claw_tables_changes(dm->tables))
    {
        if (!dm->listing) {
            ngx_http_claw_domains_list(dm);
        }

        return NGX_AGAIN;
    }

    d = ngx_http_claw_dindex_find(dm->index, name, len,
                                  ngx_murmur_hash2(name, len));

    if (d == NULL
        || d->others
        || d->owner->len != id->len
        || ngx_memcmp(d->owner->data, id->data, id->len) != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static void
ngx_http_claw_domains_list(ngx_http_claw_domains_t *dm)
{
    ngx_http_claw_djob_t  *job;

    job = ngx_http_claw_domains_job(dm, NGX_HTTP_CLAW_DJOB_LIST);
    if (job == NULL) {
        return;
    }

    /* read before the copy: a change made meanwhile is seen next time */

    job->changes = ngx_http_claw_tables_changes(dm->tables);
    job->prev = dm->index;

    dm->listing = 1;

    if (ngx_http_claw_domains_post(dm, job) != NGX_OK) {
        dm->listing = 0;
        ngx_http_claw_domains_free_job(job);
    }
}


static ngx_http_claw_djob_t *
ngx_http_claw_domains_job(ngx_http_claw_domains_t *dm, ngx_uint_t type)
{
    ngx_pool_t            *pool;
    ngx_http_claw_djob_t  *job;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, dm->log);
    if (pool == NULL) {
        return NULL;
    }

    job = ngx_pcalloc(pool, sizeof(ngx_http_claw_djob_t));
    if (job == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    job->pool = pool;
    job->domains = dm;
    job->type = type;

    return job;
}


static ngx_int_t
ngx_http_claw_domains_post(ngx_http_claw_domains_t *dm,
    ngx_http_claw_djob_t *job)
{
    if (dm->loading) {
        ngx_http_claw_domains_run(job, dm->log);
        ngx_http_claw_domains_complete(job);
        ngx_http_claw_domains_free_job(job);
        return NGX_OK;
    }

#if (NGX_THREADS)

    if (dm->thread_pool) {
        job->task.ctx = job;
        job->task.handler = ngx_http_claw_domains_run;
        job->task.event.data = job;
        job->task.event.handler = ngx_http_claw_domains_done;
        job->task.event.log = dm->log;

        if (ngx_thread_task_post(dm->thread_pool, &job->task) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_queue_insert_tail(&dm->tasks, &job->queue);
        return NGX_OK;
    }

#endif

    /*
     * nginx without threads: on the event loop, as nothing else can, but
     * from a timer or a posted event, never inside a handshake
     */

    ngx_http_claw_domains_run(job, dm->log);

    job->done.data = job;
    job->done.handler = ngx_http_claw_domains_done;
    job->done.log = dm->log;

    ngx_queue_insert_tail(&dm->tasks, &job->queue);
    ngx_post_event(&job->done, &ngx_posted_events);

    return NGX_OK;
}


/* on the thread pool */

static void
ngx_http_claw_domains_run(void *data, ngx_log_t *log)
{
    ngx_http_claw_djob_t  *job = data;

#if (NGX_HTTP_SSL)
    ngx_uint_t  i;
#endif

    switch (job->type) {

    case NGX_HTTP_CLAW_DJOB_LIST:
        ngx_http_claw_domains_build(job, log);
        break;

#if (NGX_HTTP_SSL)

    case NGX_HTTP_CLAW_DJOB_CHECK:
        for (i = 0; i < job->nitems; i++) {
            ngx_http_claw_cert_look(job->domains, &job->items[i], log);
        }
        break;

#if (NGX_HTTP_CLAW_INOTIFY)
    case NGX_HTTP_CLAW_DJOB_WATCH:
        ngx_http_claw_domains_add_watches(job, log);
        break;
#endif

#endif

    default:
        break;
    }
}


/* on the event loop */

static void
ngx_http_claw_domains_done(ngx_event_t *ev)
{
    ngx_http_claw_djob_t  *job = ev->data;

    ngx_queue_remove(&job->queue);

    ngx_http_claw_domains_complete(job);
    ngx_http_claw_domains_free_job(job);
}


static void
ngx_http_claw_domains_complete(ngx_http_claw_djob_t *job)
{
#if (NGX_HTTP_CLAW_INOTIFY)
    ngx_uint_t              i;
    ngx_http_claw_cdir_t  **dirs;
#endif

    switch (job->type) {

    case NGX_HTTP_CLAW_DJOB_LIST:
        ngx_http_claw_domains_listed(job);
        break;

#if (NGX_HTTP_SSL)

    case NGX_HTTP_CLAW_DJOB_CHECK:
        ngx_http_claw_domains_checked(job);
        break;

#if (NGX_HTTP_CLAW_INOTIFY)
    case NGX_HTTP_CLAW_DJOB_WATCH:
        dirs = job->domains->dirs.elts;

        for (i = 0; i < job->domains->dirs.nelts; i++) {
            dirs[i]->wd = job->wds[i];
        }
        break;
#endif

#endif

    default:
        break;
    }
}


static void
ngx_http_claw_domains_free_job(ngx_http_claw_djob_t *job)
{
#if (NGX_HTTP_SSL)
    ngx_uint_t  i;

    for (i = 0; i < job->nitems; i++) {
        ngx_http_claw_keypair_free(&job->items[i].pair);
    }
#endif

    if (job->index) {
        ngx_destroy_pool(job->index->pool);
    }

    ngx_destroy_pool(job->pool);
}


/*
 * On the thread pool: the index of the registry's custom domains.  Each
 * tenant's id is copied once, so that owners compare as pointers while
 * the index is built; names new since the previous index are listed for
 * the certificate cache.
 */

static void
ngx_http_claw_domains_build(ngx_http_claw_djob_t *job, ngx_log_t *log)
{
    u_char                   *p, *end, *name;
    size_t                    len;
    uint32_t                  hash;
    ngx_str_t                *owner;
    ngx_uint_t                n, i, j, count, size;
    ngx_pool_t               *pool, *ipool;
    ngx_http_claw_dname_t    *d, *a, **dp;
    ngx_str_t                *sfx;
    ngx_http_claw_tconf_t    *tc, **list;
    ngx_http_claw_dindex_t   *ix;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, log);
    if (pool == NULL) {
        return;
    }

    ipool = NULL;

    list = ngx_http_claw_tables_list(job->domains->tables, pool, &n);
    if (list == NULL) {
        goto failed;
    }

    count = 0;

    for (i = 0; i < n; i++) {
        count += list[i]->ndomains;
    }

    count += job->domains->suffixes->nelts;

    job->added = ngx_array_create(job->pool, count + 1,
                                  sizeof(ngx_http_claw_dname_t *));
    if (job->added == NULL) {
        goto failed;
    }

    ipool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, log);
    if (ipool == NULL) {
        goto failed;
    }

    ix = ngx_pcalloc(ipool, sizeof(ngx_http_claw_dindex_t));
    if (ix == NULL) {
        goto failed;
    }

    for (size = 16; size < count; size <<= 1) { /* void */ }

    ix->buckets = ngx_pcalloc(ipool, size * sizeof(ngx_http_claw_dname_t *));
    if (ix->buckets == NULL) {
        goto failed;
    }

    ix->pool = ipool;
    ix->mask = size - 1;
    ix->changes = job->changes;

    for (i = 0; i < n; i++) {
        tc = list[i];

        if (tc->ndomains == 0) {
            continue;
        }

        owner = ngx_palloc(ipool, sizeof(ngx_str_t) + tc->id_len);
        if (owner == NULL) {
            goto failed;
        }

        owner->len = tc->id_len;
        owner->data = (u_char *) (owner + 1);
        ngx_memcpy(owner->data, ngx_http_claw_tconf_id(tc), tc->id_len);

        p = ngx_http_claw_tconf_domains(tc);

        for (j = 0; j < tc->ndomains; j++) {
            len = *p++;
            name = p;
            p += len;

            hash = ngx_murmur_hash2(name, len);

            if (ngx_http_claw_dindex_find(ix, name, len, hash)) {
                continue;       /* the tables give a name one tenant */
            }

            d = ngx_palloc(ipool, offsetof(ngx_http_claw_dname_t, name) + len);
            if (d == NULL) {
                goto failed;
            }

            d->owner = owner;
            d->hash = hash;
            d->others = 0;
            d->len = (u_char) len;
            ngx_memcpy(d->name, name, len);

            d->next = ix->buckets[hash & ix->mask];
            ix->buckets[hash & ix->mask] = d;

            if (job->prev == NULL
                || ngx_http_claw_dindex_find(job->prev, name, len, hash)
                   == NULL)
            {
                dp = ngx_array_push(job->added);
                if (dp == NULL) {
                    goto failed;
                }

                *dp = d;
            }
        }
    }

    /*
     * "*.<claw_domain>": the platform's wildcard certificate, if its
     * files are there (claw_acme_wildcard's, or the operator's)
     */

    sfx = job->domains->suffixes->elts;

    for (i = 0; i < job->domains->suffixes->nelts; i++) {
        len = sfx[i].len + 2;

        d = ngx_palloc(ipool, offsetof(ngx_http_claw_dname_t, name) + len);
        if (d == NULL) {
            goto failed;
        }

        d->name[0] = '*';
        d->name[1] = '.';
        ngx_memcpy(d->name + 2, sfx[i].data, sfx[i].len);

        d->hash = ngx_murmur_hash2(d->name, len);

        if (len > 255 || ngx_http_claw_dindex_find(ix, d->name, len, d->hash))
        {
            continue;
        }

        d->owner = &ngx_http_claw_domains_platform;
        d->others = 0;
        d->len = (u_char) len;

        d->next = ix->buckets[d->hash & ix->mask];
        ix->buckets[d->hash & ix->mask] = d;

        if (job->prev == NULL
            || ngx_http_claw_dindex_find(job->prev, d->name, len, d->hash)
               == NULL)
        {
            dp = ngx_array_push(job->added);
            if (dp == NULL) {
                goto failed;
            }

            *dp = d;
        }
    }

    /* a domain marks each registered domain above it of another tenant */

    for (i = 0; i <= ix->mask; i++) {
        for (d = ix->buckets[i]; d; d = d->next) {

            end = d->name + d->len;

            for (p = d->name; p < end; p++) {
                if (*p != '.') {
                    continue;
                }

                a = ngx_http_claw_dindex_find(ix, p + 1, end - p - 1,
                                              ngx_murmur_hash2(p + 1,
                                                               end - p - 1));
                if (a && a->owner != d->owner) {
                    a->others = 1;
                }
            }
        }
    }

    job->index = ix;

    ngx_destroy_pool(pool);

    return;

failed:

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "claw: no memory to index the custom domains");

    if (ipool) {
        ngx_destroy_pool(ipool);
    }

    ngx_destroy_pool(pool);
}


static ngx_http_claw_dname_t *
ngx_http_claw_dindex_find(ngx_http_claw_dindex_t *ix, u_char *name,
    size_t len, uint32_t hash)
{
    ngx_http_claw_dname_t  *d;

    for (d = ix->buckets[hash & ix->mask]; d; d = d->next) {
        if (d->hash == hash
            && d->len == len
            && ngx_memcmp(d->name, name, len) == 0)
        {
            return d;
        }
    }

    return NULL;
}


/* the new index replaces the old one, which goes with the task */

static void
ngx_http_claw_domains_listed(ngx_http_claw_djob_t *job)
{
    ngx_http_claw_dindex_t   *ix;
    ngx_http_claw_domains_t  *dm;

    dm = job->domains;
    dm->listing = 0;

    if (job->index == NULL) {
        return;                 /* tried again at the next tick */
    }

    ix = dm->index;
    dm->index = job->index;
    job->index = ix;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, dm->log, 0,
                   "claw: custom domains indexed, %ui new",
                   job->added->nelts);

#if (NGX_HTTP_SSL)

    if (dm->buckets) {
        ngx_http_claw_domains_reconcile(dm, job->added);
    }

#endif
}


/*
 * With the cycle: in a worker at its exit, after its thread pools were
 * joined (tasks that ran but were not completed go too), in the master
 * when a reload replaced the cycle.
 */

static void
ngx_http_claw_domains_cleanup(void *data)
{
    ngx_http_claw_domains_t  *dm = data;

    ngx_queue_t  *q;

    while (!ngx_queue_empty(&dm->tasks)) {
        q = ngx_queue_head(&dm->tasks);
        ngx_queue_remove(q);

        ngx_http_claw_domains_free_job(ngx_queue_data(q, ngx_http_claw_djob_t,
                                                      queue));
    }

    if (dm->index) {
        ngx_destroy_pool(dm->index->pool);
        dm->index = NULL;
    }

#if (NGX_HTTP_SSL)

    if (dm->buckets) {
        while (!ngx_queue_empty(&dm->lru)) {
            q = ngx_queue_last(&dm->lru);
            ngx_http_claw_cert_remove(dm,
                              ngx_queue_data(q, ngx_http_claw_cert_t, lru));
        }
    }

#endif
}


#if (NGX_HTTP_SSL)

/*
 * The handshake: the certificate of a registered domain (the caller
 * asked the tables), or NULL for the server's own.  A name not cached
 * (new since the last copy of the registry, or evicted) gets the
 * server's certificate this time; a task reads its files now.
 */

ngx_http_claw_keypair_t *
ngx_http_claw_domains_cert(void *data, u_char *name, size_t len)
{
    ngx_http_claw_cdir_t  *dir = data;

    uint32_t                  hash;
    ngx_http_claw_cert_t     *cc;
    ngx_http_claw_domains_t  *dm;

    dm = dir->domains;

    if (dm->buckets == NULL) {
        return NULL;
    }

    hash = ngx_murmur_hash2(name, len);

    cc = ngx_http_claw_cert_find(dm, dir->index, name, len, hash);

    if (cc) {
        ngx_queue_remove(&cc->lru);
        ngx_queue_insert_head(&dm->lru, &cc->lru);

        return cc->pair.cert ? &cc->pair : NULL;
    }

    cc = ngx_http_claw_cert_add(dm, dir->index, name, len, hash);

    if (cc) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, dm->log, 0,
                       "claw: certificate of \"%*s\" not cached yet",
                       len, name);

        ngx_http_claw_cert_mark(dm, cc);
        ngx_post_event(&dm->flush, &ngx_posted_events);
    }

    return NULL;
}


static ngx_http_claw_cert_t *
ngx_http_claw_cert_find(ngx_http_claw_domains_t *dm, ngx_uint_t dir,
    u_char *name, size_t len, uint32_t hash)
{
    ngx_http_claw_cert_t  *cc;

    for (cc = dm->buckets[(hash + dir) & dm->mask]; cc; cc = cc->next) {
        if (cc->hash == hash
            && cc->dir == dir
            && cc->len == len
            && ngx_memcmp(cc->name, name, len) == 0)
        {
            return cc;
        }
    }

    return NULL;
}


/* a new entry, with no certificate yet; the least recently used goes */

static ngx_http_claw_cert_t *
ngx_http_claw_cert_add(ngx_http_claw_domains_t *dm, ngx_uint_t dir,
    u_char *name, size_t len, uint32_t hash)
{
    ngx_http_claw_cert_t  *cc, **slot;

    if (dm->ncerts >= dm->max) {
        cc = ngx_queue_data(ngx_queue_last(&dm->lru), ngx_http_claw_cert_t,
                            lru);

        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, dm->log, 0,
                       "claw: certificate of \"%*s\" evicted",
                       (size_t) cc->len, cc->name);

        ngx_http_claw_cert_remove(dm, cc);
    }

    cc = ngx_calloc(offsetof(ngx_http_claw_cert_t, name) + len, dm->log);
    if (cc == NULL) {
        return NULL;
    }

    cc->hash = hash;
    cc->dir = dir;
    cc->len = (u_char) len;
    ngx_memcpy(cc->name, name, len);
    cc->crt.mtime = -2;
    cc->key.mtime = -2;

    slot = &dm->buckets[(hash + dir) & dm->mask];
    cc->next = *slot;
    *slot = cc;

    ngx_queue_insert_head(&dm->lru, &cc->lru);
    dm->ncerts++;

    return cc;
}


/* a task looking at it meanwhile finds no entry of its number */

static void
ngx_http_claw_cert_remove(ngx_http_claw_domains_t *dm,
    ngx_http_claw_cert_t *cc)
{
    ngx_http_claw_cert_t  **pp;

    for (pp = &dm->buckets[(cc->hash + cc->dir) & dm->mask];
         *pp != cc;
         pp = &(*pp)->next)
    {
        /* void */
    }

    *pp = cc->next;

    ngx_queue_remove(&cc->lru);

    if (cc->queued) {
        ngx_queue_remove(&cc->pending);
    }

    ngx_http_claw_keypair_free(&cc->pair);
    ngx_free(cc);

    dm->ncerts--;
}


/* to be looked at now, or again as soon as its task completes */

static void
ngx_http_claw_cert_mark(ngx_http_claw_domains_t *dm, ngx_http_claw_cert_t *cc)
{
    if (cc->seq) {
        cc->again = 1;
        return;
    }

    if (!cc->queued) {
        ngx_queue_insert_tail(&dm->pending, &cc->pending);
        cc->queued = 1;
    }
}


/*
 * A new copy of the registry: entries of names no tenant has any more
 * go, names new to it are read while the cache has room.
 */

static void
ngx_http_claw_domains_reconcile(ngx_http_claw_domains_t *dm,
    ngx_array_t *added)
{
    ngx_uint_t              i, k;
    ngx_queue_t            *q, *next;
    ngx_http_claw_cert_t   *cc;
    ngx_http_claw_dname_t  *d, **names;

    for (q = ngx_queue_head(&dm->lru);
         q != ngx_queue_sentinel(&dm->lru);
         q = next)
    {
        next = ngx_queue_next(q);
        cc = ngx_queue_data(q, ngx_http_claw_cert_t, lru);

        if (ngx_http_claw_dindex_find(dm->index, cc->name, cc->len, cc->hash)
            == NULL)
        {
            ngx_http_claw_cert_remove(dm, cc);
        }
    }

    names = added->elts;

    for (i = 0; i < added->nelts; i++) {
        d = names[i];

        for (k = 0; k < dm->dirs.nelts; k++) {

            if (dm->ncerts >= dm->max) {
                goto done;
            }

            if (ngx_http_claw_cert_find(dm, k, d->name, d->len, d->hash)) {
                continue;
            }

            cc = ngx_http_claw_cert_add(dm, k, d->name, d->len, d->hash);
            if (cc == NULL) {
                goto done;
            }

            ngx_http_claw_cert_mark(dm, cc);
        }
    }

done:

    if (ngx_queue_empty(&dm->pending)) {
        return;
    }

    if (dm->loading) {
        ngx_http_claw_domains_check(dm, 0);

    } else {
        ngx_post_event(&dm->flush, &ngx_posted_events);
    }
}


static void
ngx_http_claw_domains_flush(ngx_event_t *ev)
{
    ngx_http_claw_domains_check(ev->data, 0);
}


/*
 * Tasks for the names marked, and with "all" for the names due: every
 * 10 seconds, every second for a name with no certificate (yet) or
 * whose files were caught in the middle of a change.
 */

static void
ngx_http_claw_domains_check(ngx_http_claw_domains_t *dm, ngx_uint_t all)
{
    time_t                 now, every;
    ngx_queue_t           *q, *next;
    ngx_http_claw_cert_t  *cc;
    ngx_http_claw_djob_t  *job;

    job = NULL;

    for (q = ngx_queue_head(&dm->pending);
         q != ngx_queue_sentinel(&dm->pending);
         q = next)
    {
        next = ngx_queue_next(q);
        cc = ngx_queue_data(q, ngx_http_claw_cert_t, pending);

        if (ngx_http_claw_domains_item(dm, &job, cc) != NGX_OK) {
            goto done;
        }
    }

    if (!all) {
        goto done;
    }

    now = ngx_time();

    for (q = ngx_queue_head(&dm->lru);
         q != ngx_queue_sentinel(&dm->lru);
         q = ngx_queue_next(q))
    {
        cc = ngx_queue_data(q, ngx_http_claw_cert_t, lru);

        if (cc->seq) {
            continue;
        }

        every = (cc->pair.cert && !cc->retry) ? NGX_HTTP_CLAW_CERT_CHECK
                                              : NGX_HTTP_CLAW_CERT_RECHECK;

        if (now - cc->checked < every) {
            continue;
        }

        if (ngx_http_claw_domains_item(dm, &job, cc) != NGX_OK) {
            break;
        }
    }

done:

    if (job) {
        ngx_http_claw_domains_post_check(dm, job);
    }
}


static ngx_int_t
ngx_http_claw_domains_item(ngx_http_claw_domains_t *dm,
    ngx_http_claw_djob_t **jobp, ngx_http_claw_cert_t *cc)
{
    ngx_http_claw_djob_t   *job;
    ngx_http_claw_citem_t  *it;

    job = *jobp;

    if (job && job->nitems == NGX_HTTP_CLAW_CERT_BATCH) {
        ngx_http_claw_domains_post_check(dm, job);
        job = NULL;
        *jobp = NULL;
    }

    if (job == NULL) {
        job = ngx_http_claw_domains_job(dm, NGX_HTTP_CLAW_DJOB_CHECK);
        if (job == NULL) {
            return NGX_ERROR;
        }

        job->items = ngx_pcalloc(job->pool, NGX_HTTP_CLAW_CERT_BATCH
                                            * sizeof(ngx_http_claw_citem_t));
        if (job->items == NULL) {
            ngx_http_claw_domains_free_job(job);
            return NGX_ERROR;
        }

        *jobp = job;
    }

    it = &job->items[job->nitems];

    it->name.data = ngx_pnalloc(job->pool, cc->len + 1);
    if (it->name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(it->name.data, cc->name, cc->len);
    it->name.data[cc->len] = '\0';
    it->name.len = cc->len;

    it->dir = cc->dir;
    it->hash = cc->hash;
    it->seq = ++dm->seq;
    it->crt = cc->crt;
    it->key = cc->key;
    it->quiet = cc->quiet;
    it->served = (cc->pair.cert != NULL);

    job->nitems++;

    cc->seq = it->seq;
    cc->quiet = 0;

    if (cc->queued) {
        ngx_queue_remove(&cc->pending);
        cc->queued = 0;
    }

    return NGX_OK;
}


static void
ngx_http_claw_domains_post_check(ngx_http_claw_domains_t *dm,
    ngx_http_claw_djob_t *job)
{
    ngx_uint_t              i;
    ngx_http_claw_cert_t   *cc;
    ngx_http_claw_citem_t  *it;

    if (ngx_http_claw_domains_post(dm, job) == NGX_OK) {
        return;
    }

    /* the names are due, the next tick tries again */

    for (i = 0; i < job->nitems; i++) {
        it = &job->items[i];

        cc = ngx_http_claw_cert_find(dm, it->dir, it->name.data,
                                     it->name.len, it->hash);
        if (cc && cc->seq == it->seq) {
            cc->seq = 0;
        }
    }

    ngx_http_claw_domains_free_job(job);
}


/*
 * On the thread pool: whether a name's files changed and, if they did,
 * the pair they hold.  A look that a file event asked for is quiet: the
 * pair may be in the middle of being replaced (claw_acme writes the key,
 * then the certificate), and a failure is looked at again, loudly, a
 * second later.
 */

static void
ngx_http_claw_cert_look(ngx_http_claw_domains_t *dm,
    ngx_http_claw_citem_t *it, ngx_log_t *log)
{
    ngx_log_t              *loud, quiet;
    ngx_http_claw_fsig_t    crt, key;
    ngx_http_claw_cdir_t  **dirs, *dir;
    u_char                  crtp[NGX_MAX_PATH], keyp[NGX_MAX_PATH];

    dirs = dm->dirs.elts;
    dir = dirs[it->dir];

    if (dir->path.len + it->name.len + sizeof("/.crt") > NGX_MAX_PATH) {
        return;
    }

    ngx_sprintf(crtp, "%V/%V.crt%Z", &dir->path, &it->name);
    ngx_sprintf(keyp, "%V/%V.key%Z", &dir->path, &it->name);

    ngx_http_claw_cert_stat(crtp, &crt);
    ngx_http_claw_cert_stat(keyp, &key);

    if (crt.mtime == it->crt.mtime && crt.size == it->crt.size
        && crt.uniq == it->crt.uniq
        && key.mtime == it->key.mtime && key.size == it->key.size
        && key.uniq == it->key.uniq)
    {
        return;
    }

    it->changed = 1;
    it->crt = crt;
    it->key = key;

    if (crt.mtime == -1 && key.mtime == -1) {
        /* no certificate of its own: the server's covers it, or not */
        return;
    }

    loud = log;

    /*
     * A pair changed in the last seconds may still be being written (a
     * slow disk, a key renamed in place before its certificate): while
     * one of its files is missing, or an older pair is served meanwhile,
     * a failure is not reported yet, and looked at again
     */

    if (ngx_max(crt.mtime, key.mtime) > ngx_time() - NGX_HTTP_CLAW_CERT_SETTLE
        && (crt.mtime == -1 || key.mtime == -1 || it->served))
    {
        it->quiet = 1;
    }

    if (it->quiet) {
        quiet = *log;
        quiet.log_level = 0;
        log = &quiet;
    }

    if (crt.mtime == -1 || key.mtime == -1) {
        it->failed = 1;
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "claw: no \"%s\", certificate of \"%V\" not served",
                      crt.mtime == -1 ? crtp : keyp, &it->name);
        return;
    }

    ngx_http_claw_cert_parse(it, crtp, keyp, log, loud);
}


static void
ngx_http_claw_cert_stat(u_char *path, ngx_http_claw_fsig_t *sig)
{
    ngx_file_info_t  fi;

    if (ngx_file_info(path, &fi) == NGX_FILE_ERROR) {
        sig->mtime = -1;
        sig->size = 0;
        sig->uniq = 0;
        return;
    }

    sig->mtime = ngx_file_mtime(&fi);
    sig->size = ngx_file_size(&fi);
    sig->uniq = ngx_file_uniq(&fi);
}


/* on the thread pool: a bad pair or a wrong name is logged, never kept */

static void
ngx_http_claw_cert_parse(ngx_http_claw_citem_t *it, u_char *crt,
    u_char *keyp, ngx_log_t *log, ngx_log_t *loud)
{
    X509            *x;
    BIO             *bio;
    EVP_PKEY        *key;
    STACK_OF(X509)  *chain;

    it->failed = 1;

    key = NULL;
    chain = NULL;

    bio = BIO_new_file((char *) crt, "r");
    if (bio == NULL) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "claw: BIO_new_file(\"%s\") failed", crt);
        return;
    }

    x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);

    if (x == NULL) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "claw: no certificate in \"%s\", not served", crt);
        BIO_free(bio);
        return;
    }

    /* the rest of the file is the chain */

    chain = sk_X509_new_null();
    if (chain == NULL) {
        goto failed;
    }

    for ( ;; ) {
        X509  *ca;

        ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (ca == NULL) {
            ERR_clear_error();
            break;
        }

        if (sk_X509_push(chain, ca) == 0) {
            X509_free(ca);
            goto failed;
        }
    }

    BIO_free(bio);
    bio = BIO_new_file((char *) keyp, "r");

    if (bio == NULL) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "claw: BIO_new_file(\"%s\") failed, certificate of "
                      "\"%V\" not served", keyp, &it->name);
        goto failed;
    }

    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);

    if (key == NULL) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "claw: no key in \"%s\", certificate of \"%V\" not "
                      "served", keyp, &it->name);
        goto failed;
    }

    if (X509_check_private_key(x, key) != 1) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "claw: certificate and key of \"%V\" do not match, "
                      "not served", &it->name);
        goto failed;
    }

    if (X509_check_host(x, (char *) it->name.data, it->name.len, 0, NULL)
        != 1)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "claw: certificate \"%s\" is not for \"%V\", not "
                      "served", crt, &it->name);
        goto failed;
    }

    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        ngx_log_error(NGX_LOG_WARN, loud, 0,
                      "claw: certificate \"%s\" has expired", crt);
    }

    BIO_free(bio);

    it->pair.cert = x;
    it->pair.key = key;
    it->pair.chain = chain;
    it->failed = 0;

    ngx_log_error(NGX_LOG_INFO, loud, 0,
                  "claw: certificate of \"%V\" loaded", &it->name);

    return;

failed:

    if (bio) {
        BIO_free(bio);
    }

    if (key) {
        EVP_PKEY_free(key);
    }

    if (chain) {
        sk_X509_pop_free(chain, X509_free);
    }

    X509_free(x);
}


/* on the event loop: what the task found goes in, if the entry is there */

static void
ngx_http_claw_domains_checked(ngx_http_claw_djob_t *job)
{
    ngx_uint_t                i, marked;
    ngx_http_claw_cert_t     *cc;
    ngx_http_claw_citem_t    *it;
    ngx_http_claw_domains_t  *dm;

    dm = job->domains;
    marked = 0;

    for (i = 0; i < job->nitems; i++) {
        it = &job->items[i];

        cc = ngx_http_claw_cert_find(dm, it->dir, it->name.data,
                                     it->name.len, it->hash);

        if (cc == NULL || cc->seq != it->seq) {
            continue;           /* evicted meanwhile: freed with the task */
        }

        cc->seq = 0;
        cc->checked = ngx_time();

        /*
         * A quiet failure keeps what is served and the files' old
         * signature, so that they are read again, loudly, a second later.
         */

        cc->retry = (it->changed && it->failed && it->quiet);

        if (it->changed && !cc->retry) {
            ngx_http_claw_keypair_free(&cc->pair);

            cc->pair = it->pair;
            ngx_memzero(&it->pair, sizeof(ngx_http_claw_keypair_t));

            cc->crt = it->crt;
            cc->key = it->key;
        }

        if (cc->again) {
            cc->again = 0;
            cc->quiet = 1;
            ngx_http_claw_cert_mark(dm, cc);
            marked = 1;
        }
    }

    if (marked && !dm->loading) {
        ngx_post_event(&dm->flush, &ngx_posted_events);
    }
}


static void
ngx_http_claw_keypair_free(ngx_http_claw_keypair_t *kp)
{
    if (kp->cert) {
        X509_free(kp->cert);
        EVP_PKEY_free(kp->key);
        sk_X509_pop_free(kp->chain, X509_free);
    }

    kp->cert = NULL;
    kp->key = NULL;
    kp->chain = NULL;
}


#if (NGX_HTTP_CLAW_INOTIFY)

/*
 * The directories tell of new and replaced files, so that a certificate
 * just issued or renewed is served within milliseconds.  The inotify
 * descriptor is read on the event loop (a queue of the kernel's, no
 * disk); the watches name paths and are added by a task.  It is an idle
 * connection, closed when the worker shuts down.
 */

#define NGX_HTTP_CLAW_WATCH                                                   \
    (IN_CLOSE_WRITE|IN_MOVED_TO|IN_MOVED_FROM|IN_DELETE|IN_ATTRIB)

static void
ngx_http_claw_domains_watch(ngx_http_claw_domains_t *dm, ngx_cycle_t *cycle)
{
    int                    fd;
    ngx_connection_t      *c;
    ngx_http_claw_djob_t  *job;

    fd = inotify_init1(IN_NONBLOCK|IN_CLOEXEC);

    if (fd == -1) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, ngx_errno,
                      "claw: inotify_init1() failed, certificate files are "
                      "looked at every %d seconds", NGX_HTTP_CLAW_CERT_CHECK);
        return;
    }

    c = ngx_get_connection(fd, cycle->log);

    if (c == NULL) {
        (void) close(fd);
        return;
    }

    c->data = dm;
    c->idle = 1;
    c->read->handler = ngx_http_claw_domains_notified;
    c->read->log = cycle->log;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_close_connection(c);
        return;
    }

    dm->notify = c;

    job = ngx_http_claw_domains_job(dm, NGX_HTTP_CLAW_DJOB_WATCH);
    if (job == NULL) {
        return;
    }

    job->fd = fd;
    job->wds = ngx_palloc(job->pool, dm->dirs.nelts * sizeof(int));

    if (job->wds == NULL || ngx_http_claw_domains_post(dm, job) != NGX_OK) {
        ngx_http_claw_domains_free_job(job);
    }
}


/* on the thread pool */

static void
ngx_http_claw_domains_add_watches(ngx_http_claw_djob_t *job, ngx_log_t *log)
{
    ngx_uint_t              i;
    ngx_http_claw_cdir_t  **dirs;
    u_char                  path[NGX_MAX_PATH];

    dirs = job->domains->dirs.elts;

    for (i = 0; i < job->domains->dirs.nelts; i++) {
        job->wds[i] = -1;

        if (dirs[i]->path.len >= NGX_MAX_PATH) {
            continue;
        }

        ngx_cpystrn(path, dirs[i]->path.data, dirs[i]->path.len + 1);

        job->wds[i] = inotify_add_watch(job->fd, (char *) path,
                                        NGX_HTTP_CLAW_WATCH);

        if (job->wds[i] == -1) {
            ngx_log_error(NGX_LOG_NOTICE, log, ngx_errno,
                          "claw: inotify_add_watch(\"%s\") failed, its "
                          "files are looked at every %d seconds", path,
                          NGX_HTTP_CLAW_CERT_CHECK);
        }
    }
}


static void
ngx_http_claw_domains_notified(ngx_event_t *rev)
{
    u_char                   *p, *end, *name;
    size_t                    len;
    ssize_t                   n;
    uint32_t                  hash;
    ngx_err_t                 err;
    ngx_uint_t                i, marked;
    ngx_queue_t              *q;
    ngx_connection_t         *c;
    struct inotify_event     *ie;
    ngx_http_claw_cert_t     *cc;
    ngx_http_claw_cdir_t    **dirs;
    ngx_http_claw_domains_t  *dm;
    union {
        struct inotify_event  ev;
        u_char                buf[4096];
    } u;

    c = rev->data;
    dm = c->data;

    if (c->close) {
        dm->notify = NULL;
        ngx_close_connection(c);
        return;
    }

    dirs = dm->dirs.elts;
    marked = 0;

    for ( ;; ) {
        n = read(c->fd, u.buf, sizeof(u.buf));

        if (n == -1) {
            err = ngx_errno;

            if (err == NGX_EINTR) {
                continue;
            }

            if (err == NGX_EAGAIN) {
                break;
            }

            ngx_log_error(NGX_LOG_ALERT, c->log, err,
                          "claw: read() of inotify events failed, "
                          "certificate files are looked at every %d "
                          "seconds", NGX_HTTP_CLAW_CERT_CHECK);
            dm->notify = NULL;
            ngx_close_connection(c);
            return;
        }

        if (n == 0) {
            break;
        }

        for (p = u.buf, end = u.buf + n;
             p + sizeof(struct inotify_event) <= end;
             p += sizeof(struct inotify_event) + ie->len)
        {
            ie = (struct inotify_event *) p;

            if (ie->mask & IN_Q_OVERFLOW) {

                /* events were lost: every name is looked at */

                for (q = ngx_queue_head(&dm->lru);
                     q != ngx_queue_sentinel(&dm->lru);
                     q = ngx_queue_next(q))
                {
                    cc = ngx_queue_data(q, ngx_http_claw_cert_t, lru);
                    cc->quiet = 1;
                    ngx_http_claw_cert_mark(dm, cc);
                }

                marked = 1;
                continue;
            }

            if (ie->len == 0) {
                continue;
            }

            for (i = 0; i < dm->dirs.nelts; i++) {
                if (dirs[i]->wd == ie->wd) {
                    break;
                }
            }

            if (i == dm->dirs.nelts) {
                continue;
            }

            name = (u_char *) ie->name;
            len = ngx_strnlen(name, ie->len);

            if (len <= 4
                || (ngx_strncmp(name + len - 4, ".crt", 4) != 0
                    && ngx_strncmp(name + len - 4, ".key", 4) != 0))
            {
                continue;
            }

            len -= 4;
            hash = ngx_murmur_hash2(name, len);

            cc = ngx_http_claw_cert_find(dm, i, name, len, hash);

            if (cc == NULL) {

                /*
                 * A name registered since the last copy of the registry
                 * (claw_acme issues one within seconds): read now if a
                 * tenant has it and there is room (a directory filled at
                 * once evicts nothing), left alone if no tenant has it.
                 */

                if (dm->ncerts >= dm->max
                    || len > NGX_HTTP_CLAW_HOST_MAX
                    || ngx_http_claw_tables_peek(dm->tables, 1, name, len)
                       == NULL)
                {
                    continue;
                }

                cc = ngx_http_claw_cert_add(dm, i, name, len, hash);
                if (cc == NULL) {
                    continue;
                }
            }

            ngx_log_debug2(NGX_LOG_DEBUG_EVENT, c->log, 0,
                           "claw: files of \"%*s\" changed", len, name);

            cc->quiet = 1;
            ngx_http_claw_cert_mark(dm, cc);
            marked = 1;
        }
    }

    if (marked) {
        ngx_post_event(&dm->flush, &ngx_posted_events);
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        dm->notify = NULL;
        ngx_close_connection(c);
    }
}

#endif

#endif
