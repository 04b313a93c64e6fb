
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


typedef struct {
    u_char                      *data;
    size_t                       len;
    ngx_uint_t                   removed;
} ngx_http_claw_line_t;


static ngx_int_t ngx_http_claw_store_open(ngx_http_claw_registry_t *reg,
    ngx_log_t *log);
static void ngx_http_claw_store_line_id(u_char *p, size_t len, u_char **id,
    size_t *n);
static ngx_uint_t *ngx_http_claw_store_slot(ngx_uint_t *slot,
    ngx_uint_t size, ngx_http_claw_line_t *lines, u_char *id, size_t len);
static ngx_int_t ngx_http_claw_store_slurp(ngx_str_t *path, ngx_fd_t fd,
    ngx_pool_t *pool, u_char **buf, size_t *size, ngx_log_t *log);
static ngx_int_t ngx_http_claw_store_untorn(ngx_http_claw_registry_t *reg,
    ngx_file_info_t *fi, ngx_log_t *log);
static void ngx_http_claw_store_fold_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_claw_store_sync(ngx_fd_t fd);
static ngx_int_t ngx_http_claw_store_sync_dir(ngx_str_t *path,
    ngx_log_t *log);


ngx_int_t
ngx_http_claw_store_lock(ngx_http_claw_registry_t *reg, ngx_log_t *log)
{
    ngx_file_info_t  fi;

    if (reg->jfd == NGX_INVALID_FILE
        && ngx_http_claw_store_open(reg, log) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_claw_lock_journal(reg->jfd, log, &reg->journal) != NGX_OK) {
        return NGX_ERROR;
    }

    /* a journal removed by hand: start a new one where it belongs */

    if (ngx_fd_info(reg->jfd, &fi) != NGX_FILE_ERROR && fi.st_nlink == 0) {
        ngx_close_file(reg->jfd);
        reg->jfd = NGX_INVALID_FILE;

        if (ngx_http_claw_store_open(reg, log) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_claw_lock_journal(reg->jfd, log, &reg->journal)
            != NGX_OK)
        {
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

    /*
     * A record cut short by a crash (never acknowledged) would run into
     * this one: cut it off first.
     */

    if (ngx_http_claw_store_untorn(reg, &fi, log) != NGX_OK) {
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
 * Folds the journal into the registry file: the file's text, each record
 * applied to it in order ("+ line" replaces the line of that tenant or
 * adds one at the end, "- id" removes it), is written to a new file,
 * synced and renamed over the old one, the directory synced; then the
 * journal is emptied.  Every other line (comments, blank lines, tenants
 * the journal does not name, edits made by hand) stays as it is.  The
 * caller holds the journal lock; the texts are read here when not given.
 */

ngx_int_t
ngx_http_claw_store_fold(ngx_http_claw_registry_t *reg, ngx_fd_t jfd,
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
        && ngx_http_claw_store_slurp(&reg->path, NGX_INVALID_FILE, pool, &old,
                                     &osize, log)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (jbuf == NULL
        && ngx_http_claw_store_slurp(&reg->journal, jfd, pool, &jbuf, &jsize,
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

        ngx_http_claw_store_line_id(p, eol - p, &id, &idlen);

        if (idlen) {
            *ngx_http_claw_store_slot(slot, size2, lines, id, idlen) = nlines;
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
                          &reg->journal);
            return NGX_ERROR;
        }

        q = p + 2;
        len = eol - q;

        ngx_http_claw_store_line_id(q, len, &id, &idlen);

        if (idlen == 0) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "claw: invalid record in \"%V\", not folded",
                          &reg->journal);
            return NGX_ERROR;
        }

        i = *ngx_http_claw_store_slot(slot, size2, lines, id, idlen);

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
            *ngx_http_claw_store_slot(slot, size2, lines, id, idlen) = nlines;
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
                  "claw: %ui journal records folded into \"%V\"", records,
                  &reg->path);

    return NGX_OK;
}


/* the tenant id a line or record starts with, or nothing */

static void
ngx_http_claw_store_line_id(u_char *p, size_t len, u_char **id, size_t *n)
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
ngx_http_claw_store_slot(ngx_uint_t *slot, ngx_uint_t size,
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

        ngx_http_claw_store_line_id(lines[slot[i] - 1].data,
                                    lines[slot[i] - 1].len, &lid, &llen);

        if (llen == len && ngx_memcmp(lid, id, len) == 0) {
            return &slot[i];
        }
    }
}


static ngx_int_t
ngx_http_claw_store_slurp(ngx_str_t *path, ngx_fd_t fd, ngx_pool_t *pool,
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


/* cuts the journal back to its last whole record */

static ngx_int_t
ngx_http_claw_store_untorn(ngx_http_claw_registry_t *reg, ngx_file_info_t *fi,
    ngx_log_t *log)
{
    off_t    size, at;
    ssize_t  n, i;
    u_char   buf[4096];

    size = ngx_file_size(fi);
    at = size;

    while (at > 0) {
        n = ngx_min((off_t) sizeof(buf), at);

        if (pread(reg->jfd, buf, n, at - n) != n) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "pread() \"%V\" failed", &reg->journal);
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

    if (at == size) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "claw: a record cut short in \"%V\", never acknowledged, "
                  "removed", &reg->journal);

    if (ftruncate(reg->jfd, at) == -1
        || ngx_http_claw_store_sync(reg->jfd) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "ftruncate() \"%V\" failed", &reg->journal);
        return NGX_ERROR;
    }

    fi->st_size = at;

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
    reg->jfd = ngx_open_file(reg->journal.data, NGX_FILE_RDWR|O_APPEND,
                             NGX_FILE_CREATE_OR_OPEN, 0600);

    if (reg->jfd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "claw: " ngx_open_file_n " \"%V\" failed, the admin "
                      "API cannot change tenants", &reg->journal);
        return NGX_ERROR;
    }

    /* the master makes the journal; if it was made here, make it durable */

    return ngx_http_claw_store_sync_dir(&reg->journal, log);
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
        (void) ngx_http_claw_store_fold(reg, reg->jfd, NULL, 0, NULL, 0,
                                        pool, ev->log);
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
