
/*
 * Copyright (C) ngx_claw_module authors
 */


#ifndef _NGX_HTTP_CLAW_JOURNAL_H_INCLUDED_
#define _NGX_HTTP_CLAW_JOURNAL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


typedef struct ngx_http_claw_journal_s  ngx_http_claw_journal_t;
typedef struct ngx_http_claw_jop_s      ngx_http_claw_jop_t;

typedef void (*ngx_http_claw_jop_pt)(ngx_http_claw_jop_t *op);


/*
 * One step of a change, run on the thread pool; its handler runs on the
 * event loop when it is done.  rc: NGX_OK; NGX_BUSY, the lock was held
 * elsewhere for longer than the journal waits; NGX_ERROR, it failed and
 * nothing changed; NGX_ABORT, a write failed and could not be undone, so
 * the record may or may not be on disk (the outcome is unknown).
 */

struct ngx_http_claw_jop_s {
    ngx_queue_t                  queue;
    ngx_http_claw_journal_t     *journal;
    ngx_uint_t                   type;
    u_char                      *rec;
    size_t                       len;
    ngx_int_t                    rc;
    ngx_err_t                    err;
    const char                  *failed;        /* the step, for messages */
    ngx_http_claw_jop_pt         handler;
    void                        *data;
    ngx_log_t                   *log;
#if (NGX_THREADS)
    ngx_thread_task_t            task;
#endif
    ngx_event_t                  done;          /* without threads */
};


/*
 * A worker's journal: at most one step of one change at a time, the
 * others queued, so that the process's fcntl() lock (which every thread
 * of the process shares) is held for one change only.
 */

struct ngx_http_claw_journal_s {
    ngx_str_t                    path;          /* the registry file */
    ngx_str_t                    name;          /* path + ".journal" */
    ngx_fd_t                     fd;
    off_t                        size;          /* whole records */
    ngx_msec_t                   lock_timeout;
#if (NGX_THREADS)
    ngx_thread_pool_t           *thread_pool;
#endif
    ngx_log_t                   *log;

    ngx_queue_t                  waiting;
    ngx_http_claw_jop_t         *current;
    ngx_http_claw_jop_t          own;           /* folds and repairs */
    ngx_event_t                  fold_ev;
    ngx_event_t                  repair_ev;
    ngx_event_t                  busy_ev;       /* holds off a worker's exit */

    unsigned                     locked:1;
    unsigned                     broken:1;      /* a rollback failed */
    unsigned                     fold:1;        /* a fold is due */
};


ngx_int_t ngx_http_claw_journal_init(ngx_conf_t *cf,
    ngx_http_claw_journal_t *j, ngx_str_t *path);
ngx_int_t ngx_http_claw_journal_lock_fd(ngx_fd_t fd, ngx_msec_t timeout,
    ngx_log_t *log, ngx_str_t *name);
void ngx_http_claw_journal_owner(ngx_cycle_t *cycle, ngx_fd_t fd,
    ngx_str_t *name);
ngx_int_t ngx_http_claw_journal_fold(ngx_http_claw_journal_t *j, ngx_fd_t jfd,
    u_char *old, size_t osize, u_char *jbuf, size_t jsize, ngx_pool_t *pool,
    ngx_log_t *log);

void ngx_http_claw_journal_init_worker(ngx_http_claw_journal_t *j,
    ngx_log_t *log);
void ngx_http_claw_journal_exit_worker(ngx_http_claw_journal_t *j);

void ngx_http_claw_journal_begin(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op);
void ngx_http_claw_journal_write(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op, u_char *rec, size_t len);
void ngx_http_claw_journal_end(ngx_http_claw_journal_t *j);


#endif /* _NGX_HTTP_CLAW_JOURNAL_H_INCLUDED_ */
