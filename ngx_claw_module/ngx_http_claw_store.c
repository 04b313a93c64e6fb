
/*
 * Copyright (C) ngx_claw_module authors
 *
 * Durability of admin changes.  A change is one line appended to a
 * journal beside the registry file and synced before the answer goes
 * out: milliseconds whatever the number of tenants.  Start and reload
 * replay the journal over the file; the journal is then folded back into
 * the file (a new file written, synced and renamed over the old one, the
 * directory synced, the journal emptied), so the file stays the one
 * human-readable truth.  Workers fold too, once changes have been quiet
 * for a while or the journal has grown.  An fcntl() lock on the journal
 * serialises changes, folds and the master's reading of the registry.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_claw_module.h"
#include "ngx_http_claw_store.h"


#define NGX_HTTP_CLAW_FOLD_QUIET   2000            /* ms */
#define NGX_HTTP_CLAW_FOLD_SIZE    (1024 * 1024)   /* journal bytes */


static ngx_int_t ngx_http_claw_store_open(ngx_http_claw_registry_t *reg,
    ngx_log_t *log);
static void ngx_http_claw_store_fold_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_claw_store_sync(ngx_fd_t fd);
static ngx_int_t ngx_http_claw_store_sync_dir(ngx_str_t *path,
    ngx_log_t *log);
static ngx_http_claw_tconf_t *ngx_http_claw_store_find(
    ngx_http_claw_tconf_t **list, ngx_uint_t n, u_char *id, size_t len,
    ngx_uint_t *at);


ngx_int_t
ngx_http_claw_store_lock(ngx_http_claw_registry_t *reg, ngx_log_t *log)
{
    ngx_file_info_t  fi;

    if (reg->jfd == NGX_INVALID_FILE
        && ngx_http_claw_store_open(reg, log) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_lock_fd(reg->jfd) == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_lock_fd_n " \"%V\" failed", &reg->journal);
        return NGX_ERROR;
    }

    /* a journal removed by hand: start a new one where it belongs */

    if (ngx_fd_info(reg->jfd, &fi) != NGX_FILE_ERROR && fi.st_nlink == 0) {
        ngx_close_file(reg->jfd);
        reg->jfd = NGX_INVALID_FILE;

        if (ngx_http_claw_store_open(reg, log) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_lock_fd(reg->jfd) == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                          ngx_lock_fd_n " \"%V\" failed", &reg->journal);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


void
ngx_http_claw_store_unlock(ngx_http_claw_registry_t *reg)
{
    (void) ngx_unlock_fd(reg->jfd);
}


/*
 * Appends one record and syncs it.  A write cut short is cut off again,
 * so the journal never keeps half a record of a change that failed.
 */

ngx_int_t
ngx_http_claw_store_append(ngx_http_claw_registry_t *reg, u_char *rec,
    size_t len, ngx_log_t *log)
{
    ssize_t          n;
    ngx_err_t        err;
    ngx_file_info_t  fi;

    if (ngx_fd_info(reg->jfd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_fd_info_n " \"%V\" failed", &reg->journal);
        return NGX_ERROR;
    }

    n = ngx_write_fd(reg->jfd, rec, len);

    if (n == (ssize_t) len && ngx_http_claw_store_sync(reg->jfd) == NGX_OK) {
        reg->jsize = ngx_file_size(&fi) + len;

        if (reg->jsize >= NGX_HTTP_CLAW_FOLD_SIZE) {
            /* folded right after this change is answered */
            ngx_add_timer(&reg->fold_ev, 1);

        } else {
            ngx_add_timer(&reg->fold_ev, NGX_HTTP_CLAW_FOLD_QUIET);
        }

        return NGX_OK;
    }

    err = ngx_errno;

    ngx_log_error(NGX_LOG_ERR, log, err,
                  "claw: writing the journal \"%V\" failed, change "
                  "refused", &reg->journal);

    if (ftruncate(reg->jfd, ngx_file_size(&fi)) == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "ftruncate() \"%V\" failed", &reg->journal);
    }

    ngx_set_errno(err);

    return NGX_ERROR;
}


/*
 * Writes the registry file from the zone, keeping the operator's
 * comments, blank lines and order of tenants; tenants added since go at
 * the end.  Then empties the journal.  The caller holds the journal lock;
 * "old" is the file as it is, or NULL to read it here.
 */

ngx_int_t
ngx_http_claw_store_fold(ngx_http_claw_registry_t *reg, ngx_fd_t jfd,
    u_char *old, size_t osize, ngx_pool_t *pool, ngx_log_t *log)
{
    u_char                  *out, *p, *line, *eol, *end, *q;
    size_t                   size, len;
    ssize_t                  n;
    ngx_fd_t                 fd;
    ngx_str_t                tmp;
    ngx_uint_t               i, count, at;
    ngx_file_info_t          fi;
    ngx_http_claw_tconf_t  **list;
    u_char                  *written;

    list = ngx_http_claw_registry_list(reg, pool, &count);
    if (list == NULL) {
        return NGX_ERROR;
    }

    if (old == NULL) {
        fd = ngx_open_file(reg->path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
        if (fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          ngx_open_file_n " \"%V\" failed", &reg->path);
            return NGX_ERROR;
        }

        if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
            ngx_close_file(fd);
            return NGX_ERROR;
        }

        osize = (size_t) ngx_file_size(&fi);

        old = ngx_palloc(pool, osize + 1);
        if (old == NULL) {
            ngx_close_file(fd);
            return NGX_ERROR;
        }

        n = ngx_read_fd(fd, old, osize);
        ngx_close_file(fd);

        if (n != (ssize_t) osize) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          ngx_read_fd_n " \"%V\" failed", &reg->path);
            return NGX_ERROR;
        }
    }

    written = ngx_pcalloc(pool, count + 1);
    if (written == NULL) {
        return NGX_ERROR;
    }

    size = osize + 1;

    for (i = 0; i < count; i++) {
        size += ngx_http_claw_tconf_line(list[i], NULL) + 1;
    }

    out = ngx_palloc(pool, size);
    if (out == NULL) {
        return NGX_ERROR;
    }

    p = out;
    end = old + osize;

    for (line = old; line < end; line = eol + 1) {
        eol = ngx_strlchr(line, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        for (q = line; q < eol && (*q == ' ' || *q == '\t'); q++) {
            /* void */
        }

        for (len = 0; q + len < eol && q[len] != ' ' && q[len] != '\t'
                      && q[len] != '#' && q[len] != '\r'; len++)
        {
            /* void */
        }

        if (len == 0 || !ngx_http_claw_valid_id(q, len)) {
            /* a comment, a blank line, or a line the next reload judges */
            p = ngx_cpymem(p, line, eol - line);
            *p++ = '\n';
            continue;
        }

        if (ngx_http_claw_store_find(list, count, q, len, &at) == NULL
            || written[at])
        {
            continue;       /* removed */
        }

        p += ngx_http_claw_tconf_line(list[at], p);
        *p++ = '\n';
        written[at] = 1;
    }

    for (i = 0; i < count; i++) {
        if (!written[i]) {
            p += ngx_http_claw_tconf_line(list[i], p);
            *p++ = '\n';
        }
    }

    if (p == out) {
        p = ngx_cpymem(p, "# no tenants\n", sizeof("# no tenants\n") - 1);
    }

    tmp.len = reg->path.len + sizeof(".tmp") - 1;
    tmp.data = ngx_pnalloc(pool, tmp.len + 1);
    if (tmp.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(tmp.data, "%V.tmp%Z", &reg->path);

    fd = ngx_open_file(tmp.data, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                       NGX_FILE_DEFAULT_ACCESS);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", &tmp);
        return NGX_ERROR;
    }

    /* the new file keeps the mode (and, for root, the owner) of the old */

    if (ngx_file_info(reg->path.data, &fi) != NGX_FILE_ERROR
        && fchmod(fd, fi.st_mode & 07777) != -1
        && fchown(fd, fi.st_uid, fi.st_gid) == -1)
    {
        /* not root: the file is the worker's, with the old mode */
    }

    n = ngx_write_fd(fd, out, p - out);

    if (n != p - out || ngx_http_claw_store_sync(fd) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw: writing \"%V\" failed", &tmp);
        ngx_close_file(fd);
        (void) ngx_delete_file(tmp.data);
        return NGX_ERROR;
    }

    ngx_close_file(fd);

    if (ngx_rename_file(tmp.data, reg->path.data) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_rename_file_n " \"%V\" to \"%V\" failed", &tmp,
                      &reg->path);
        (void) ngx_delete_file(tmp.data);
        return NGX_ERROR;
    }

    if (ngx_http_claw_store_sync_dir(&reg->path, log) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * Only now is the journal redundant; a crash before this point
     * replays it over the new file, which changes nothing.
     */

    if (ftruncate(jfd, 0) == -1 || ngx_http_claw_store_sync(jfd) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw: emptying the journal \"%V\" failed",
                      &reg->journal);
        return NGX_ERROR;
    }

    reg->jsize = 0;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "claw: journal folded into \"%V\" (%ui tenants)",
                  &reg->path, count);

    return NGX_OK;
}


void
ngx_http_claw_store_init_worker(ngx_http_claw_registry_t *reg,
    ngx_log_t *log)
{
    reg->jfd = NGX_INVALID_FILE;

    reg->fold_ev.handler = ngx_http_claw_store_fold_handler;
    reg->fold_ev.data = reg;
    reg->fold_ev.log = log;
    reg->fold_ev.cancelable = 1;
}


void
ngx_http_claw_store_exit_worker(ngx_http_claw_registry_t *reg)
{
    if (reg->jfd != NGX_INVALID_FILE) {
        ngx_close_file(reg->jfd);
        reg->jfd = NGX_INVALID_FILE;
    }
}


/* opened by the worker itself, so it is the worker's user who writes */

static ngx_int_t
ngx_http_claw_store_open(ngx_http_claw_registry_t *reg, ngx_log_t *log)
{
    reg->jfd = ngx_open_file(reg->journal.data, NGX_FILE_APPEND,
                             NGX_FILE_CREATE_OR_OPEN, 0600);

    if (reg->jfd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw: " ngx_open_file_n " \"%V\" failed, the admin "
                      "API cannot change tenants", &reg->journal);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_claw_store_fold_handler(ngx_event_t *ev)
{
    ngx_pool_t                *pool;
    ngx_file_info_t            fi;
    ngx_http_claw_registry_t  *reg;

    reg = ev->data;

    if (ngx_exiting || reg->jfd == NGX_INVALID_FILE) {
        return;
    }

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, ev->log);
    if (pool == NULL) {
        return;
    }

    if (ngx_http_claw_store_lock(reg, ev->log) != NGX_OK) {
        ngx_destroy_pool(pool);
        return;
    }

    /* another worker may have folded already */

    if (ngx_fd_info(reg->jfd, &fi) != NGX_FILE_ERROR
        && ngx_file_size(&fi) > 0)
    {
        (void) ngx_http_claw_store_fold(reg, reg->jfd, NULL, 0, pool,
                                        ev->log);
    }

    ngx_http_claw_store_unlock(reg);

    ngx_destroy_pool(pool);
}


static ngx_int_t
ngx_http_claw_store_sync(ngx_fd_t fd)
{
#if (NGX_LINUX)
    return fdatasync(fd) == -1 ? NGX_ERROR : NGX_OK;
#else
    return fsync(fd) == -1 ? NGX_ERROR : NGX_OK;
#endif
}


/* a rename is durable once the directory is synced */

static ngx_int_t
ngx_http_claw_store_sync_dir(ngx_str_t *path, ngx_log_t *log)
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


/* binary search of the sorted list */

static ngx_http_claw_tconf_t *
ngx_http_claw_store_find(ngx_http_claw_tconf_t **list, ngx_uint_t n,
    u_char *id, size_t len, ngx_uint_t *at)
{
    ngx_int_t   rc;
    ngx_uint_t  lo, hi, mid;

    lo = 0;
    hi = n;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        rc = ngx_memn2cmp(ngx_http_claw_tconf_id(list[mid]), id,
                          list[mid]->id_len, len);

        if (rc == 0) {
            *at = mid;
            return list[mid];
        }

        if (rc < 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return NULL;
}
