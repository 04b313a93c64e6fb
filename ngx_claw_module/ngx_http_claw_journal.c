
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Durability of admin changes, and nothing else: the journal knows text
 * records, files and locks, not tenants nor the zone.  A change is one
 * line appended to a journal beside the registry file and synced before
 * it is acknowledged: milliseconds whatever the number of tenants.  Start
 * and reload replay the journal over the file; the journal is then
 * folded back into the file (a new file written, synced and renamed over
 * the old one, the directory synced, the journal emptied), so the file
 * stays the one human-readable truth.  Workers fold too, once changes
 * have been quiet for a while or the journal has grown.
 *
 * An fcntl() lock on the journal serialises changes, folds and the
 * master's reading of the registry across processes.  Every step that
 * waits for that lock or for the disk runs on the "claw" thread pool:
 * a worker's event loop never waits for either.  The lock is waited for
 * a bounded time: a process that holds it for longer gets its change
 * refused (503), not a stalled queue.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_claw_parse.h"
#include "ngx_http_claw_journal.h"


#define NGX_HTTP_CLAW_FOLD_QUIET     2000            /* ms */
#define NGX_HTTP_CLAW_FOLD_SIZE      (1024 * 1024)   /* journal bytes */
#define NGX_HTTP_CLAW_REPAIR_EVERY   1000            /* ms */
#define NGX_HTTP_CLAW_LOCK_TIMEOUT   5000            /* ms */

#define NGX_HTTP_CLAW_JOP_LOCK       0
#define NGX_HTTP_CLAW_JOP_WRITE      1
#define NGX_HTTP_CLAW_JOP_FOLD       2
#define NGX_HTTP_CLAW_JOP_REPAIR     3


typedef struct {
    u_char                      *data;
    size_t                       len;
    ngx_uint_t                   removed;
} ngx_http_claw_line_t;


static void ngx_http_claw_journal_next(ngx_http_claw_journal_t *j);
static void ngx_http_claw_journal_post(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op);
static void ngx_http_claw_journal_run(void *data, ngx_log_t *log);
static void ngx_http_claw_journal_done(ngx_event_t *ev);
static void ngx_http_claw_journal_own_done(ngx_http_claw_jop_t *op);
static void ngx_http_claw_journal_fold_handler(ngx_event_t *ev);
static void ngx_http_claw_journal_repair_handler(ngx_event_t *ev);
static void ngx_http_claw_journal_busy_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_claw_journal_take(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op);
static void ngx_http_claw_journal_append(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op);
static ngx_int_t ngx_http_claw_journal_repair(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op);
static void ngx_http_claw_journal_fold_now(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op);
static ngx_int_t ngx_http_claw_journal_open(ngx_http_claw_journal_t *j,
    ngx_log_t *log);
static ngx_int_t ngx_http_claw_journal_untorn(ngx_http_claw_journal_t *j,
    off_t size, ngx_log_t *log);
static void ngx_http_claw_line_id(u_char *p, size_t len, u_char **id,
    size_t *n);
static ngx_uint_t *ngx_http_claw_line_slot(ngx_uint_t *slot,
    ngx_uint_t size, ngx_http_claw_line_t *lines, u_char *id, size_t len);
static ngx_int_t ngx_http_claw_slurp(ngx_str_t *path, ngx_fd_t fd,
    ngx_pool_t *pool, u_char **buf, size_t *size, ngx_log_t *log);
static ngx_int_t ngx_http_claw_sync(ngx_fd_t fd);
static ngx_int_t ngx_http_claw_sync_dir(ngx_str_t *path, ngx_log_t *log);


ngx_int_t
ngx_http_claw_journal_init(ngx_conf_t *cf, ngx_http_claw_journal_t *j,
    ngx_str_t *path)
{
    j->path = *path;

    j->name.len = path->len + sizeof(".journal") - 1;
    j->name.data = ngx_pnalloc(cf->pool, j->name.len + 1);
    if (j->name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(j->name.data, "%V.journal%Z", path);

    j->fd = NGX_INVALID_FILE;
    j->lock_timeout = NGX_HTTP_CLAW_LOCK_TIMEOUT;

    return NGX_OK;
}


/*
 * The lock, waited for at most "timeout" ms (polled: a blocking wait
 * could not be given up).  NGX_BUSY when another process kept it.
 */

ngx_int_t
ngx_http_claw_journal_lock_fd(ngx_fd_t fd, ngx_msec_t timeout, ngx_log_t *log,
    ngx_str_t *name)
{
    ngx_err_t     err;
    ngx_msec_t    waited, step;
    struct flock  fl;

    waited = 0;
    step = 1;

    for ( ;; ) {
        err = ngx_trylock_fd(fd);

        if (err == 0) {
            return NGX_OK;
        }

        if (err != NGX_EAGAIN && err != NGX_EACCES && err != NGX_EINTR) {
            ngx_log_error(NGX_LOG_ALERT, log, err,
                          ngx_trylock_fd_n " \"%V\" failed", name);
            return NGX_ERROR;
        }

        if (waited >= timeout) {
            break;
        }

        ngx_msleep(step);
        waited += step;
        step = ngx_min(step * 2, 20);
    }

    ngx_memzero(&fl, sizeof(struct flock));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;

    if (fcntl(fd, F_GETLK, &fl) != -1 && fl.l_type != F_UNLCK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "claw: the journal \"%V\" is locked by process %P "
                      "for more than %M ms", name, (ngx_pid_t) fl.l_pid,
                      timeout);

    } else {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "claw: the journal \"%V\" is locked by another "
                      "process for more than %M ms", name, timeout);
    }

    return NGX_BUSY;
}


/* a journal the master made belongs to the workers, who append to it */

void
ngx_http_claw_journal_owner(ngx_cycle_t *cycle, ngx_fd_t fd, ngx_str_t *name)
{
    ngx_uid_t         uid;
    ngx_gid_t         gid;
    struct group     *grp;
    struct passwd    *pwd;
    ngx_core_conf_t  *ccf;

    if (geteuid() != 0) {
        return;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    uid = ccf->user;
    gid = ccf->group;

    /* "user" not read yet, or not given: nginx's default */

    if (uid == (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        pwd = getpwnam(NGX_USER);
        grp = getgrnam(NGX_GROUP);

        if (pwd == NULL || grp == NULL) {
            return;
        }

        uid = pwd->pw_uid;
        gid = grp->gr_gid;
    }

    if (fchown(fd, uid, gid) == -1) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "fchown() \"%V\" failed", name);
    }
}


void
ngx_http_claw_journal_init_worker(ngx_http_claw_journal_t *j, ngx_log_t *log)
{
    j->fd = NGX_INVALID_FILE;
    j->log = log;
    j->current = NULL;
    j->locked = 0;
    j->broken = 0;
    j->fold = 0;

    ngx_queue_init(&j->waiting);

    j->fold_ev.handler = ngx_http_claw_journal_fold_handler;
    j->fold_ev.data = j;
    j->fold_ev.log = log;
    j->fold_ev.cancelable = 1;

    j->repair_ev.handler = ngx_http_claw_journal_repair_handler;
    j->repair_ev.data = j;
    j->repair_ev.log = log;
    j->repair_ev.cancelable = 1;

    /*
     * A worker that shuts down goes once no timer is left; a change on
     * the thread pool has none, and its request would be cut off.
     */

    j->busy_ev.handler = ngx_http_claw_journal_busy_handler;
    j->busy_ev.data = j;
    j->busy_ev.log = log;

    j->own.journal = j;
    j->own.log = log;
    j->own.handler = ngx_http_claw_journal_own_done;
}


void
ngx_http_claw_journal_exit_worker(ngx_http_claw_journal_t *j)
{
    /* closing the descriptor releases the lock */

    if (j->fd != NGX_INVALID_FILE) {
        ngx_close_file(j->fd);
        j->fd = NGX_INVALID_FILE;
    }
}


/*
 * A change starts: its handler is called once this process holds the
 * lock (op->rc NGX_OK), or could not have it.  The caller then writes,
 * and ends the change with ngx_http_claw_journal_end() in every case.
 */

void
ngx_http_claw_journal_begin(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op)
{
    op->journal = j;
    op->type = NGX_HTTP_CLAW_JOP_LOCK;

    /* the thread logs to the worker's log, never to a request's */
    op->log = j->log;

    ngx_queue_insert_tail(&j->waiting, &op->queue);

    if (j->current == NULL) {
        ngx_http_claw_journal_next(j);
    }
}


/* appends a record and syncs it, under the lock the change holds */

void
ngx_http_claw_journal_write(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op, u_char *rec, size_t len)
{
    op->type = NGX_HTTP_CLAW_JOP_WRITE;
    op->rec = rec;
    op->len = len;

    ngx_http_claw_journal_post(j, op);
}


/*
 * The change is over: the lock goes (unlocking never waits), unless a
 * write could not be undone.  Then this process keeps the lock, so that
 * no other appends after the record that was refused and syncs it along
 * with its own, and tries to repair the journal every second; changes
 * are refused until it is.
 */

void
ngx_http_claw_journal_end(ngx_http_claw_journal_t *j)
{
    j->current = NULL;

    if (j->broken) {
        if (!j->repair_ev.timer_set) {
            ngx_add_timer(&j->repair_ev, NGX_HTTP_CLAW_REPAIR_EVERY);
        }

    } else if (j->locked) {
        (void) ngx_unlock_fd(j->fd);
        j->locked = 0;
    }

    ngx_http_claw_journal_next(j);
}


static void
ngx_http_claw_journal_next(ngx_http_claw_journal_t *j)
{
    ngx_queue_t  *q;

    if (j->current) {
        return;
    }

    if (ngx_queue_empty(&j->waiting)) {
        if (j->busy_ev.timer_set) {
            ngx_del_timer(&j->busy_ev);
        }

    } else if (!j->busy_ev.timer_set) {
        ngx_add_timer(&j->busy_ev, 1000);
    }

    if (!ngx_queue_empty(&j->waiting)) {
        q = ngx_queue_head(&j->waiting);
        ngx_queue_remove(q);

        j->current = ngx_queue_data(q, ngx_http_claw_jop_t, queue);
        ngx_http_claw_journal_post(j, j->current);
        return;
    }

    if (j->fold && !ngx_exiting) {
        j->fold = 0;
        j->current = &j->own;
        j->own.type = NGX_HTTP_CLAW_JOP_FOLD;
        ngx_http_claw_journal_post(j, &j->own);
    }
}


static void
ngx_http_claw_journal_post(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op)
{
    op->rc = NGX_OK;
    op->err = 0;
    op->failed = NULL;

#if (NGX_THREADS)

    if (j->thread_pool) {
        op->task.ctx = op;
        op->task.handler = ngx_http_claw_journal_run;
        op->task.event.data = op;
        op->task.event.handler = ngx_http_claw_journal_done;
        op->task.event.log = op->log;

        if (ngx_thread_task_post(j->thread_pool, &op->task) == NGX_OK) {
            return;
        }

        op->rc = NGX_ERROR;
        op->failed = "posting to the thread pool";
        op->done.data = op;
        op->done.handler = ngx_http_claw_journal_done;
        op->done.log = op->log;
        ngx_post_event(&op->done, &ngx_posted_events);
        return;
    }

#endif

    /* nginx without threads: on the event loop, as nothing else can */

    ngx_http_claw_journal_run(op, op->log);

    op->done.data = op;
    op->done.handler = ngx_http_claw_journal_done;
    op->done.log = op->log;
    ngx_post_event(&op->done, &ngx_posted_events);
}


/* on the thread pool */

static void
ngx_http_claw_journal_run(void *data, ngx_log_t *log)
{
    ngx_http_claw_jop_t  *op = data;

    ngx_http_claw_journal_t  *j;

    j = op->journal;

    switch (op->type) {

    case NGX_HTTP_CLAW_JOP_LOCK:
        (void) ngx_http_claw_journal_take(j, op);
        break;

    case NGX_HTTP_CLAW_JOP_WRITE:
        ngx_http_claw_journal_append(j, op);
        break;

    case NGX_HTTP_CLAW_JOP_FOLD:
        if (ngx_http_claw_journal_take(j, op) == NGX_OK && j->size > 0) {
            ngx_http_claw_journal_fold_now(j, op);
        }
        break;

    default: /* NGX_HTTP_CLAW_JOP_REPAIR */
        (void) ngx_http_claw_journal_repair(j, op);
        break;
    }
}


/* on the event loop */

static void
ngx_http_claw_journal_done(ngx_event_t *ev)
{
    ngx_http_claw_jop_t  *op = ev->data;

    if (op->type == NGX_HTTP_CLAW_JOP_WRITE && op->rc == NGX_OK) {
        ngx_add_timer(&op->journal->fold_ev,
                      op->journal->size >= NGX_HTTP_CLAW_FOLD_SIZE
                      ? 1 : NGX_HTTP_CLAW_FOLD_QUIET);
    }

    op->handler(op);
}


static void
ngx_http_claw_journal_busy_handler(ngx_event_t *ev)
{
    ngx_http_claw_journal_t  *j = ev->data;

    if (j->current || !ngx_queue_empty(&j->waiting)) {
        ngx_add_timer(ev, 1000);
    }
}


static void
ngx_http_claw_journal_own_done(ngx_http_claw_jop_t *op)
{
    ngx_http_claw_journal_end(op->journal);
}


static void
ngx_http_claw_journal_fold_handler(ngx_event_t *ev)
{
    ngx_http_claw_journal_t  *j = ev->data;

    if (ngx_exiting || j->broken) {
        return;
    }

    j->fold = 1;
    ngx_http_claw_journal_next(j);
}


static void
ngx_http_claw_journal_repair_handler(ngx_event_t *ev)
{
    ngx_http_claw_journal_t  *j = ev->data;

    if (!j->broken) {
        return;
    }

    if (j->current) {
        ngx_add_timer(ev, NGX_HTTP_CLAW_REPAIR_EVERY);
        return;
    }

    j->current = &j->own;
    j->own.type = NGX_HTTP_CLAW_JOP_REPAIR;
    ngx_http_claw_journal_post(j, &j->own);
}


/*
 * On the thread pool: the lock (the journal opened, or opened again if
 * it was removed by hand), the journal repaired if a write could not be
 * undone, and a record cut short by a crash (never acknowledged) cut off.
 */

static ngx_int_t
ngx_http_claw_journal_take(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op)
{
    ngx_int_t        rc;
    ngx_file_info_t  fi;

    if (j->fd == NGX_INVALID_FILE
        && ngx_http_claw_journal_open(j, op->log) != NGX_OK)
    {
        op->rc = NGX_ERROR;
        op->err = ngx_errno;
        op->failed = "opening the journal";
        return NGX_ERROR;
    }

    if (!j->locked) {
        rc = ngx_http_claw_journal_lock_fd(j->fd, j->lock_timeout, op->log,
                                           &j->name);
        if (rc != NGX_OK) {
            op->rc = rc;
            op->failed = "locking the journal";
            return rc;
        }

        j->locked = 1;

        /* a journal removed by hand: a new one where it belongs */

        if (ngx_fd_info(j->fd, &fi) != NGX_FILE_ERROR && fi.st_nlink == 0) {
            ngx_close_file(j->fd);
            j->fd = NGX_INVALID_FILE;
            j->locked = 0;

            return ngx_http_claw_journal_take(j, op);
        }
    }

    if (j->broken) {
        rc = ngx_http_claw_journal_repair(j, op);

        if (rc == NGX_DECLINED) {
            return ngx_http_claw_journal_take(j, op);
        }

        return rc;
    }

    if (ngx_fd_info(j->fd, &fi) == NGX_FILE_ERROR) {
        op->rc = NGX_ERROR;
        op->err = ngx_errno;
        op->failed = "reading the journal's size";
        return NGX_ERROR;
    }

    if (ngx_http_claw_journal_untorn(j, ngx_file_size(&fi), op->log)
        != NGX_OK)
    {
        op->rc = NGX_ERROR;
        op->err = ngx_errno;
        op->failed = "cutting off a record cut short";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * On the thread pool: one record, then fdatasync.  A write that fails
 * is cut off again, so that the journal never keeps a record of a change
 * that was refused; when that fails too, the record may be on disk or
 * not, and the journal is broken until it is repaired.
 */

static void
ngx_http_claw_journal_append(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op)
{
    ssize_t  n;

    n = ngx_write_fd(j->fd, op->rec, op->len);

    if (n == (ssize_t) op->len && ngx_http_claw_sync(j->fd) == NGX_OK) {
        j->size += op->len;
        return;
    }

    if (n == -1) {
        op->err = ngx_errno;
        op->failed = "writing the journal";

    } else if (n != (ssize_t) op->len) {
        /* a short write sets no errno: the disk is full, or nearly */
        op->err = 0;
        op->failed = "writing the journal (short write: the disk is full?)";

    } else {
        op->err = ngx_errno;
        op->failed = "syncing the journal";
    }

    ngx_log_error(NGX_LOG_ERR, op->log, op->err,
                  "claw: %s \"%V\" failed, change refused", op->failed,
                  &j->name);

    op->rc = NGX_ERROR;

    if (ftruncate(j->fd, j->size) == -1
        || ngx_http_claw_sync(j->fd) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, op->log, ngx_errno,
                      "claw: undoing a failed write to \"%V\" failed: the "
                      "change may have been written; changes are refused "
                      "until the journal is repaired", &j->name);

        j->broken = 1;
        op->rc = NGX_ABORT;
    }
}


/* cut back to the last record known whole, and synced */

static ngx_int_t
ngx_http_claw_journal_repair(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op)
{
    ngx_file_info_t  fi, pfi;

    /*
     * The journal removed or replaced by hand meanwhile: the record that
     * was refused is in a file no one reads any more.  NGX_DECLINED: the
     * journal is to be opened again.
     */

    if (ngx_fd_info(j->fd, &fi) != NGX_FILE_ERROR
        && (fi.st_nlink == 0
            || ngx_file_info(j->name.data, &pfi) == NGX_FILE_ERROR
            || pfi.st_ino != fi.st_ino
            || pfi.st_dev != fi.st_dev))
    {
        ngx_log_error(NGX_LOG_NOTICE, op->log, 0,
                      "claw: the journal \"%V\" was replaced, changes are "
                      "taken again", &j->name);

        ngx_close_file(j->fd);
        j->fd = NGX_INVALID_FILE;
        j->locked = 0;
        j->broken = 0;

        return NGX_DECLINED;
    }

    if (ftruncate(j->fd, j->size) == -1
        || ngx_http_claw_sync(j->fd) != NGX_OK)
    {
        op->rc = NGX_ERROR;
        op->err = ngx_errno;
        op->failed = "repairing the journal after a failed write";
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_NOTICE, op->log, 0,
                  "claw: the journal \"%V\" is repaired, changes are "
                  "taken again", &j->name);

    j->broken = 0;

    return NGX_OK;
}


/* on the thread pool, holding the lock */

static void
ngx_http_claw_journal_fold_now(ngx_http_claw_journal_t *j,
    ngx_http_claw_jop_t *op)
{
    ngx_pool_t  *pool;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, op->log);
    if (pool == NULL) {
        return;
    }

    (void) ngx_http_claw_journal_fold(j, j->fd, NULL, 0, NULL, 0, pool,
                                      op->log);

    ngx_destroy_pool(pool);
}


/* opened by the worker itself, so it is the worker's user who writes */

static ngx_int_t
ngx_http_claw_journal_open(ngx_http_claw_journal_t *j, ngx_log_t *log)
{
    j->fd = ngx_open_file(j->name.data, NGX_FILE_RDWR|O_APPEND,
                          NGX_FILE_CREATE_OR_OPEN, 0600);

    if (j->fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw: " ngx_open_file_n " \"%V\" failed, the admin "
                      "API cannot change tenants", &j->name);
        return NGX_ERROR;
    }

    /* the master makes the journal; if it was made here, make it durable */

    return ngx_http_claw_sync_dir(&j->name, log);
}


/* cuts the journal back to its last whole record */

static ngx_int_t
ngx_http_claw_journal_untorn(ngx_http_claw_journal_t *j, off_t size,
    ngx_log_t *log)
{
    off_t    at;
    ssize_t  n, i;
    u_char   buf[4096];

    at = size;

    while (at > 0) {
        n = ngx_min((off_t) sizeof(buf), at);

        if (pread(j->fd, buf, n, at - n) != n) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "pread() \"%V\" failed", &j->name);
            return NGX_ERROR;
        }

        for (i = n; i > 0 && buf[i - 1] != '\n'; i--) {
            /* void */
        }

        if (i > 0) {
            at -= n - i;
            break;
        }

        at -= n;
    }

    if (at != size) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "claw: a record cut short in \"%V\", never "
                      "acknowledged, removed", &j->name);

        if (ftruncate(j->fd, at) == -1
            || ngx_http_claw_sync(j->fd) != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "ftruncate() \"%V\" failed", &j->name);
            return NGX_ERROR;
        }
    }

    j->size = at;

    return NGX_OK;
}


/*
 * Folds the journal into the registry file: the file's text, each record
 * applied to it in order ("+ line" replaces the line of that tenant or
 * adds one at the end, "- id" removes it), is written to a new file,
 * synced and renamed over the old one, the directory synced; then the
 * journal is emptied.  Every other line (comments, blank lines, tenants
 * the journal does not name, edits made by hand) stays as it is.  The
 * caller holds the journal lock; the texts are read here when not given.
 */

ngx_int_t
ngx_http_claw_journal_fold(ngx_http_claw_journal_t *j, ngx_fd_t jfd,
    u_char *old, size_t osize, u_char *jbuf, size_t jsize, ngx_pool_t *pool,
    ngx_log_t *log)
{
    u_char                  *out, *p, *q, *end, *eol, *id;
    size_t                   size, len, idlen;
    ssize_t                  n;
    ngx_fd_t                 fd;
    ngx_str_t                tmp;
    ngx_uint_t               i, nlines, records, size2, *slot;
    ngx_file_info_t          fi;
    ngx_http_claw_line_t    *lines, *ln;

    if (old == NULL
        && ngx_http_claw_slurp(&j->path, NGX_INVALID_FILE, pool, &old,
                                     &osize, log)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (jbuf == NULL
        && ngx_http_claw_slurp(&j->name, jfd, pool, &jbuf, &jsize,
                                     log)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the file's lines, then one more per record at most */

    nlines = 1;
    records = 0;

    for (p = old; p < old + osize; p++) {
        nlines += (*p == '\n');
    }

    for (p = jbuf; p < jbuf + jsize; p++) {
        records += (*p == '\n');
    }

    lines = ngx_palloc(pool, (nlines + records) * sizeof(ngx_http_claw_line_t));
    if (lines == NULL) {
        return NGX_ERROR;
    }

    for (size2 = 64; size2 < 2 * (nlines + records); size2 *= 2) {
        /* void */
    }

    slot = ngx_pcalloc(pool, size2 * sizeof(ngx_uint_t));
    if (slot == NULL) {
        return NGX_ERROR;
    }

    nlines = 0;
    end = old + osize;

    for (p = old; p < end; p = eol + 1) {
        eol = memchr(p, '\n', end - p);
        if (eol == NULL) {
            eol = end;
        }

        ln = &lines[nlines++];
        ln->data = p;
        ln->len = eol - p;
        ln->removed = 0;

        ngx_http_claw_line_id(p, eol - p, &id, &idlen);

        if (idlen) {
            *ngx_http_claw_line_slot(slot, size2, lines, id, idlen) = nlines;
        }
    }

    /* the records; a last one without its newline was never acknowledged */

    end = jbuf + jsize;

    for (p = jbuf; p < end; p = eol + 1) {
        eol = memchr(p, '\n', end - p);
        if (eol == NULL) {
            break;
        }

        if (eol - p < 3 || (p[0] != '+' && p[0] != '-') || p[1] != ' ') {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "claw: invalid record in \"%V\", not folded",
                          &j->name);
            return NGX_ERROR;
        }

        q = p + 2;
        len = eol - q;

        ngx_http_claw_line_id(q, len, &id, &idlen);

        if (idlen == 0) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "claw: invalid record in \"%V\", not folded",
                          &j->name);
            return NGX_ERROR;
        }

        i = *ngx_http_claw_line_slot(slot, size2, lines, id, idlen);

        if (p[0] == '-') {
            if (i) {
                lines[i - 1].removed = 1;
            }

            continue;
        }

        if (i) {
            ln = &lines[i - 1];

        } else {
            ln = &lines[nlines++];
            *ngx_http_claw_line_slot(slot, size2, lines, id, idlen) = nlines;
        }

        ln->data = q;
        ln->len = len;
        ln->removed = 0;
    }

    size = sizeof("# no tenants\n");

    for (i = 0; i < nlines; i++) {
        size += lines[i].len + 1;
    }

    out = ngx_palloc(pool, size);
    if (out == NULL) {
        return NGX_ERROR;
    }

    p = out;

    for (i = 0; i < nlines; i++) {
        ln = &lines[i];

        if (ln->removed) {
            continue;
        }

        p = ngx_cpymem(p, ln->data, ln->len);
        *p++ = '\n';
    }

    if (p == out) {
        p = ngx_cpymem(p, "# no tenants\n", sizeof("# no tenants\n") - 1);
    }

    tmp.len = j->path.len + sizeof(".tmp") - 1;
    tmp.data = ngx_pnalloc(pool, tmp.len + 1);
    if (tmp.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(tmp.data, "%V.tmp%Z", &j->path);

    fd = ngx_open_file(tmp.data, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                       NGX_FILE_DEFAULT_ACCESS);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", &tmp);
        return NGX_ERROR;
    }

    /* the new file keeps the mode (and, for root, the owner) of the old */

    if (ngx_file_info(j->path.data, &fi) != NGX_FILE_ERROR
        && fchmod(fd, fi.st_mode & 07777) != -1
        && fchown(fd, fi.st_uid, fi.st_gid) == -1)
    {
        /* not root: the file is the worker's, with the old mode */
    }

    n = ngx_write_fd(fd, out, p - out);

    if (n != p - out || ngx_http_claw_sync(fd) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw: writing \"%V\" failed", &tmp);
        ngx_close_file(fd);
        (void) ngx_delete_file(tmp.data);
        return NGX_ERROR;
    }

    ngx_close_file(fd);

    if (ngx_rename_file(tmp.data, j->path.data) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_rename_file_n " \"%V\" to \"%V\" failed", &tmp,
                      &j->path);
        (void) ngx_delete_file(tmp.data);
        return NGX_ERROR;
    }

    if (ngx_http_claw_sync_dir(&j->path, log) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * Only now is the journal redundant; a crash before this point
     * replays it over the new file, which changes nothing.
     */

    if (ftruncate(jfd, 0) == -1 || ngx_http_claw_sync(jfd) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw: emptying the journal \"%V\" failed",
                      &j->name);
        return NGX_ERROR;
    }

    j->size = 0;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "claw: %ui journal records folded into \"%V\"", records,
                  &j->path);

    return NGX_OK;
}


/* the tenant id a line or record starts with, or nothing */

static void
ngx_http_claw_line_id(u_char *p, size_t len, u_char **id, size_t *n)
{
    u_char  *end;

    end = p + len;

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    *id = p;

    while (p < end && *p != ' ' && *p != '\t' && *p != '\r' && *p != '#') {
        p++;
    }

    *n = ngx_http_claw_valid_id(*id, p - *id) ? (size_t) (p - *id) : 0;
}


/* where an id is (1 + its line) in the open-addressed table, or 0 */

static ngx_uint_t *
ngx_http_claw_line_slot(ngx_uint_t *slot, ngx_uint_t size,
    ngx_http_claw_line_t *lines, u_char *id, size_t len)
{
    u_char      *lid;
    size_t       llen;
    ngx_uint_t   i;

    for (i = ngx_murmur_hash2(id, len) & (size - 1);
         /* void */ ;
         i = (i + 1) & (size - 1))
    {
        if (slot[i] == 0) {
            return &slot[i];
        }

        ngx_http_claw_line_id(lines[slot[i] - 1].data,
                                    lines[slot[i] - 1].len, &lid, &llen);

        if (llen == len && ngx_memcmp(lid, id, len) == 0) {
            return &slot[i];
        }
    }
}


static ngx_int_t
ngx_http_claw_slurp(ngx_str_t *path, ngx_fd_t fd, ngx_pool_t *pool,
    u_char **buf, size_t *size, ngx_log_t *log)
{
    ssize_t          n;
    ngx_fd_t         own;
    ngx_file_info_t  fi;

    own = NGX_INVALID_FILE;

    if (fd == NGX_INVALID_FILE) {
        own = fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN,
                                 0);
        if (fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          ngx_open_file_n " \"%V\" failed", path);
            return NGX_ERROR;
        }
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_fd_info_n " \"%V\" failed", path);
        goto failed;
    }

    *size = (size_t) ngx_file_size(&fi);

    *buf = ngx_palloc(pool, *size + 1);
    if (*buf == NULL) {
        goto failed;
    }

    n = *size ? pread(fd, *buf, *size, 0) : 0;

    if (n != (ssize_t) *size) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "pread() \"%V\" failed", path);
        goto failed;
    }

    if (own != NGX_INVALID_FILE) {
        ngx_close_file(own);
    }

    return NGX_OK;

failed:

    if (own != NGX_INVALID_FILE) {
        ngx_close_file(own);
    }

    return NGX_ERROR;
}



static ngx_int_t
ngx_http_claw_sync(ngx_fd_t fd)
{
#if (NGX_LINUX)
    return fdatasync(fd) == -1 ? NGX_ERROR : NGX_OK;
#else
    return fsync(fd) == -1 ? NGX_ERROR : NGX_OK;
#endif
}


/* a rename is durable once the directory is synced */

static ngx_int_t
ngx_http_claw_sync_dir(ngx_str_t *path, ngx_log_t *log)
{
    u_char    *p;
    ngx_fd_t   fd;
    ngx_int_t  rc;
    u_char     dir[NGX_MAX_PATH];

    p = ngx_strlchr(path->data, path->data + path->len, '/');

    if (p == NULL || path->len >= NGX_MAX_PATH) {
        return NGX_OK;
    }

    for (p = path->data + path->len; *--p != '/'; /* void */) {
        /* void */
    }

    if (p == path->data) {
        p++;
    }

    ngx_cpystrn(dir, path->data, p - path->data + 1);

    fd = ngx_open_file(dir, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", dir);
        return NGX_ERROR;
    }

    rc = fsync(fd) == -1 ? NGX_ERROR : NGX_OK;

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "fsync() \"%s\" failed", dir);
    }

    ngx_close_file(fd);

    return rc;
}
