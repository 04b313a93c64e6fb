
/*
 * Copyright (C) ngx_claw_module authors
 *
 * The registry file, the source of the tenants an operator edits: read
 * and checked with the journal of admin changes replayed over it at
 * configuration time (a bad file fails "nginx -t", start and reload with
 * file:line), prepared in the zone while the cycle is made (a zone too
 * small fails it), and put in force only when the cycle commits, once
 * nothing can fail any more: a reload that fails late (a "listen" that
 * cannot bind) leaves the registry in force as it was.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_registry.h"


/* how long the master waits for a change or fold of a worker */
#define NGX_HTTP_CLAW_CONF_LOCK_WAIT  10000



/* a name seen while reading the file, for the duplicate checks */
typedef struct {
    ngx_str_t                    name;
    ngx_str_t                   *path;
    ngx_uint_t                   line;
} ngx_http_claw_seen_t;


/* a tenant read from the file or the journal, and where */
typedef struct {
    ngx_http_claw_tconf_t       *tc;            /* NULL: deleted */
    ngx_http_claw_tconf_t       *key;           /* the first, for the index */
    ngx_str_t                   *path;
    ngx_uint_t                   line;
} ngx_http_claw_loaded_t;


/* open addressing over the loaded tenants by id */
typedef struct {
    ngx_uint_t                  *slots;
    ngx_uint_t                   size;
    ngx_array_t                 *loaded;
} ngx_http_claw_index_t;


static ngx_uint_t ngx_http_claw_count_lines(u_char *p, size_t size);
static ngx_int_t ngx_http_claw_read_file(ngx_conf_t *cf, ngx_str_t *path,
    ngx_fd_t fd, u_char **buf, size_t *size);
static void ngx_http_claw_registry_cleanup(void *data);
static ngx_int_t ngx_http_claw_registry_parse(ngx_conf_t *cf,
    ngx_http_claw_registry_t *reg, ngx_str_t *path, u_char *buf, size_t size,
    ngx_uint_t journal, ngx_http_claw_index_t *index);
static ngx_uint_t *ngx_http_claw_index_find(ngx_http_claw_index_t *index,
    u_char *id, size_t len);
static ngx_int_t ngx_http_claw_seen_domains(ngx_conf_t *cf,
    ngx_array_t *domains, ngx_http_claw_loaded_t *ld);
static ngx_int_t ngx_http_claw_registry_check(ngx_conf_t *cf,
    ngx_array_t *seen, char *what);
static int ngx_libc_cdecl ngx_http_claw_seen_cmp(const void *one,
    const void *two);


/*
 * Reads and checks the registry file, and replays the journal of admin
 * changes beside it, at configuration time: a bad file fails "nginx -t",
 * start and reload before anything touches the zone.  The journal stays
 * locked until the cycle commits and the new registry is in force (the
 * temporary pool's cleanup unlocks it, after the commit), so no admin
 * change falls between the two.
 */

ngx_int_t
ngx_http_claw_registry_read(ngx_conf_t *cf, ngx_http_claw_registry_t *reg)
{
    u_char                    *buf;
    size_t                     size, jsize;
    ngx_fd_t                   fd;
    ngx_err_t                  err;
    ngx_uint_t                 i, n;
    ngx_array_t                domains, all;
    ngx_pool_cleanup_t        *cln;
    ngx_http_claw_index_t      index;
    ngx_http_claw_loaded_t    *ld;
    ngx_uint_t                 readonly;
    ngx_http_claw_tconf_t    **tcp;

    readonly = 0;

    /*
     * The journal is locked first, made if missing (a worker could
     * otherwise make it, and acknowledge a change, between our reading
     * the file and reading the journal).
     */

    fd = ngx_open_file(reg->journal->name.data,
                       NGX_FILE_RDWR|NGX_FILE_NONBLOCK,
                       NGX_FILE_CREATE_OR_OPEN, 0600);

    if (fd == NGX_INVALID_FILE) {
        err = ngx_errno;

        if (!ngx_test_config) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, err,
                          "claw_tenants: " ngx_open_file_n " \"%V\" failed",
                          &reg->journal->name);
            return NGX_ERROR;
        }

        /* "nginx -t" by a user who cannot write there: read what is */

        readonly = 1;

        fd = ngx_open_file(reg->journal->name.data,
                           NGX_FILE_RDONLY|NGX_FILE_NONBLOCK, NGX_FILE_OPEN, 0);
    }

    jsize = 0;

    if (fd != NGX_INVALID_FILE) {
        cln = ngx_pool_cleanup_add(cf->temp_pool, 0);
        if (cln == NULL) {
            ngx_close_file(fd);
            return NGX_ERROR;
        }

        cln->handler = ngx_http_claw_registry_cleanup;
        cln->data = reg;
        reg->conf_jfd = fd;

        /* a read-only journal ("nginx -t" by another user) is only read */

        if (!readonly
            && ngx_http_claw_journal_lock_fd(fd, NGX_HTTP_CLAW_CONF_LOCK_WAIT,
                                             cf->log, &reg->journal->name)
               != NGX_OK)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "claw_tenants: the journal \"%V\" could not be "
                          "locked", &reg->journal->name);
            return NGX_ERROR;
        }

        if (!readonly) {
            ngx_http_claw_journal_owner(cf->cycle, fd, &reg->journal->name);
        }
    }

    if (ngx_http_claw_read_file(cf, &reg->journal->path, NGX_INVALID_FILE,
                                &buf, &size)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * An empty file is what a crashed non-atomic writer leaves behind;
     * a registry with no tenants still says so in a comment line.
     */

    if (size == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "%V:1: empty registry file (a registry with no "
                      "tenants holds at least a comment line)",
                      &reg->journal->path);
        return NGX_ERROR;
    }

    reg->fbuf = buf;
    reg->fsize = size;

    if (fd != NGX_INVALID_FILE) {
        if (ngx_http_claw_read_file(cf, &reg->journal->name, fd, &reg->jbuf,
                                    &jsize)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        reg->jread = jsize;
    }

    /* every line could be a tenant: an index twice that size */

    n = ngx_http_claw_count_lines(buf, size)
        + ngx_http_claw_count_lines(reg->jbuf, jsize);

    for (index.size = 64; index.size < 2 * (n + 1); index.size *= 2) {
        /* void */
    }

    index.slots = ngx_pcalloc(cf->temp_pool,
                              index.size * sizeof(ngx_uint_t));
    if (index.slots == NULL) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&all, cf->temp_pool, n + 1,
                       sizeof(ngx_http_claw_loaded_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    index.loaded = &all;

    if (ngx_http_claw_registry_parse(cf, reg, &reg->journal->path, buf, size,
                                     0, &index)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (jsize
        && ngx_http_claw_registry_parse(cf, reg, &reg->journal->name, reg->jbuf,
                                        jsize, 1, &index)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_array_init(&domains, cf->temp_pool, 64,
                       sizeof(ngx_http_claw_seen_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    reg->loaded = ngx_array_create(cf->temp_pool, all.nelts + 1,
                                   sizeof(ngx_http_claw_tconf_t *));
    if (reg->loaded == NULL) {
        return NGX_ERROR;
    }

    ld = all.elts;

    for (i = 0; i < all.nelts; i++) {
        if (ld[i].tc == NULL) {
            continue;       /* deleted by the journal */
        }

        if (ngx_http_claw_seen_domains(cf, &domains, &ld[i]) != NGX_OK) {
            return NGX_ERROR;
        }

        tcp = ngx_array_push(reg->loaded);
        if (tcp == NULL) {
            return NGX_ERROR;
        }

        *tcp = ld[i].tc;
    }

    return ngx_http_claw_registry_check(cf, &domains, "domain");
}


static ngx_uint_t
ngx_http_claw_count_lines(u_char *p, size_t size)
{
    u_char      *end;
    ngx_uint_t   n;

    end = p + size;

    for (n = 0; p < end && (p = memchr(p, '\n', end - p)) != NULL; p++) {
        n++;
    }

    return n;
}


/* reads a whole file (fd, or the path without one) into the temp pool */

static ngx_int_t
ngx_http_claw_read_file(ngx_conf_t *cf, ngx_str_t *path, ngx_fd_t fd,
    u_char **buf, size_t *size)
{
    ssize_t          n;
    ngx_fd_t         own;
    ngx_int_t        rc;
    ngx_file_info_t  fi;

    own = NGX_INVALID_FILE;

    if (fd == NGX_INVALID_FILE) {

        /* not blocking: a FIFO must be refused below, not waited on */

        fd = ngx_open_file(path->data, NGX_FILE_RDONLY|NGX_FILE_NONBLOCK,
                           NGX_FILE_OPEN, 0);

        if (fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, ngx_errno,
                          "claw_tenants: " ngx_open_file_n " \"%V\" failed",
                          path);
            return NGX_ERROR;
        }

        own = fd;
    }

    rc = NGX_ERROR;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, ngx_errno,
                      "claw_tenants: " ngx_fd_info_n " \"%V\" failed", path);
        goto done;
    }

    if (!ngx_is_file(&fi)) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "claw_tenants: \"%V\" is not a regular file", path);
        goto done;
    }

    *size = (size_t) ngx_file_size(&fi);

    *buf = ngx_pnalloc(cf->temp_pool, *size + 1);
    if (*buf == NULL) {
        goto done;
    }

    n = *size ? ngx_read_fd(fd, *buf, *size) : 0;

    if (n == -1) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, ngx_errno,
                      "claw_tenants: " ngx_read_fd_n " \"%V\" failed", path);
        goto done;
    }

    if ((size_t) n != *size) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "claw_tenants: \"%V\" changed while being read", path);
        goto done;
    }

    rc = NGX_OK;

done:

    if (own != NGX_INVALID_FILE) {
        ngx_close_file(own);
    }

    return rc;
}


/* an fcntl() lock, waited for; a signal only interrupts the wait */


/*
 * The temporary pool goes once the cycle committed or failed: a cycle
 * that failed after its registry was prepared gives the zone back what
 * was allocated for it (a zone of its own is gone already), and the
 * journal's lock goes with its descriptor.
 */

static void
ngx_http_claw_registry_cleanup(void *data)
{
    ngx_http_claw_registry_t  *reg = data;

    if (reg->prepared && !reg->committed && reg->reused) {
        ngx_http_claw_tables_abort_all(reg->tables, reg->changes,
                                       reg->nchanges);
    }

    reg->prepared = 0;

    if (reg->conf_jfd != NGX_INVALID_FILE) {
        ngx_close_file(reg->conf_jfd);
        reg->conf_jfd = NGX_INVALID_FILE;
    }
}


/*
 * The registry file: tenant lines, a tenant at most once.  The journal:
 * "+ <tenant line>" replaces or adds a tenant, "- <id>" removes one; a
 * last record without its newline was cut short by a crash before it
 * was acknowledged, and is ignored.
 */

static ngx_int_t
ngx_http_claw_registry_parse(ngx_conf_t *cf, ngx_http_claw_registry_t *reg,
    ngx_str_t *path, u_char *buf, size_t size, ngx_uint_t journal,
    ngx_http_claw_index_t *index)
{
    u_char                  *p, *end, *eol, *s;
    size_t                   len, head;
    ngx_int_t                rc;
    ngx_str_t               *sfx;
    ngx_uint_t               line, i, *slot;
    const char              *why;
    ngx_http_claw_entry_t    e;
    ngx_http_claw_error_t    err;
    ngx_http_claw_loaded_t  *ld;
    ngx_http_claw_tconf_t   *tc;

    p = buf;
    end = buf + size;

    for (line = 1; p < end; line++, p = eol + 1) {

        /* memchr() is word at a time: 100,000 lines are read in a blink */

        eol = memchr(p, '\n', end - p);

        if (eol == NULL) {
            if (journal) {
                ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                              "%V:%ui: a record cut short, never "
                              "acknowledged: ignored", path, line);
                return NGX_OK;
            }

            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%V:%ui: no newline at end of file "
                          "(truncated?)", path, line);
            return NGX_ERROR;
        }

        if ((size_t) (eol - p) > NGX_HTTP_CLAW_LINE_MAX) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%V:%ui: line too long", path, line);
            return NGX_ERROR;
        }

        if (memchr(p, '\0', eol - p) != NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%V:%ui: NUL byte in line", path, line);
            return NGX_ERROR;
        }

        if (journal) {
            if (eol - p < 3 || (p[0] != '+' && p[0] != '-') || p[1] != ' ') {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "%V:%ui: invalid journal record", path, line);
                return NGX_ERROR;
            }

            if (p[0] == '-') {
                if (!ngx_http_claw_valid_id(p + 2, eol - p - 2)) {
                    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                                  "%V:%ui: invalid tenant id \"%*s\"", path,
                                  line, (size_t) (eol - p - 2), p + 2);
                    return NGX_ERROR;
                }

                slot = ngx_http_claw_index_find(index, p + 2, eol - p - 2);

                if (*slot) {
                    ld = index->loaded->elts;
                    ld[*slot - 1].tc = NULL;
                }

                continue;
            }
        }

        rc = ngx_http_claw_parse_line(journal ? p + 2 : p,
                                      eol - p - (journal ? 2 : 0), &e, &err);

        if (rc == 0) {
            if (journal) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "%V:%ui: invalid journal record", path, line);
                return NGX_ERROR;
            }

            continue;
        }

        if (rc == -1) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%V:%ui: %s \"%*s\"", path, line,
                          err.reason, err.what.len, err.what.data);
            return NGX_ERROR;
        }

        for (i = 0; i < e.ndomains; i++) {
            len = e.domains[i].len;
            s = (u_char *) e.domains[i].data;

            why = ngx_http_claw_registry_domain(reg->suffixes, s, len, &sfx);

            if (why) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "%V:%ui: domain \"%*s\" %s \"%V\"", path, line,
                              len, s, why, sfx);
                return NGX_ERROR;
            }
        }

        tc = ngx_palloc(cf->temp_pool, ngx_http_claw_tconf_size(&e, &head));
        if (tc == NULL) {
            return NGX_ERROR;
        }

        ngx_http_claw_tconf_build(tc, &e);

        slot = ngx_http_claw_index_find(index, (u_char *) e.id.data,
                                        e.id.len);

        if (*slot) {
            ld = index->loaded->elts;
            ld = &ld[*slot - 1];

            if (!journal) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "%V:%ui: duplicate tenant \"%*s\", first on "
                              "line %ui", path, line, e.id.len, e.id.data,
                              ld->line);
                return NGX_ERROR;
            }

        } else {
            ld = ngx_array_push(index->loaded);
            if (ld == NULL) {
                return NGX_ERROR;
            }

            *slot = index->loaded->nelts;
            ld->key = tc;
        }

        ld->tc = tc;
        ld->path = path;
        ld->line = line;
    }

    return NGX_OK;
}


/* the slot of an id in the index: 0 when free, else 1 + its place */

static ngx_uint_t *
ngx_http_claw_index_find(ngx_http_claw_index_t *index, u_char *id,
    size_t len)
{
    ngx_uint_t               i;
    ngx_http_claw_loaded_t  *ld;
    ngx_http_claw_tconf_t   *tc;

    ld = index->loaded->elts;

    for (i = ngx_murmur_hash2(id, len) & (index->size - 1);
         /* void */ ;
         i = (i + 1) & (index->size - 1))
    {
        if (index->slots[i] == 0) {
            return &index->slots[i];
        }

        tc = ld[index->slots[i] - 1].key;

        if (tc->id_len == len
            && ngx_memcmp(ngx_http_claw_tconf_id(tc), id, len) == 0)
        {
            return &index->slots[i];
        }
    }
}


static ngx_int_t
ngx_http_claw_seen_domains(ngx_conf_t *cf, ngx_array_t *domains,
    ngx_http_claw_loaded_t *ld)
{
    u_char                *d;
    ngx_uint_t             i;
    ngx_http_claw_seen_t  *seen;

    d = ngx_http_claw_tconf_domains(ld->tc);

    for (i = 0; i < ld->tc->ndomains; i++) {
        seen = ngx_array_push(domains);
        if (seen == NULL) {
            return NGX_ERROR;
        }

        seen->name.len = *d++;
        seen->name.data = d;
        seen->path = ld->path;
        seen->line = ld->line;

        d += seen->name.len;
    }

    return NGX_OK;
}


/*
 * Why a custom domain cannot be: a claw_domain, under one (it would
 * shadow a tenant's subdomain, or be shadowed), or a parent of one (it
 * would capture the platform's names and its cookies would reach every
 * tenant).  NULL when it can; *sfx is the claw_domain it clashes with.
 */

const char *
ngx_http_claw_registry_domain(ngx_array_t *suffixes, u_char *name,
    size_t len, ngx_str_t **sfx)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = suffixes->elts;

    for (i = 0; i < suffixes->nelts; i++) {
        *sfx = &s[i];

        switch (ngx_http_claw_domain_relation(name, len, s[i].data,
                                              s[i].len))
        {
        case NGX_HTTP_CLAW_DOMAIN_SAME:
            return "is the claw_domain";

        case NGX_HTTP_CLAW_DOMAIN_UNDER:
            return "is under the claw_domain";

        case NGX_HTTP_CLAW_DOMAIN_PARENT:
            return "is a parent of the claw_domain";
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_claw_registry_check(ngx_conf_t *cf, ngx_array_t *seen, char *what)
{
    ngx_uint_t             i;
    ngx_http_claw_seen_t  *s, *a, *b;

    s = seen->elts;

    ngx_qsort(s, seen->nelts, sizeof(ngx_http_claw_seen_t),
              ngx_http_claw_seen_cmp);

    for (i = 1; i < seen->nelts; i++) {
        a = &s[i - 1];
        b = &s[i];

        if (a->name.len != b->name.len
            || ngx_memcmp(a->name.data, b->name.data, a->name.len) != 0)
        {
            continue;
        }

        if (a->path == b->path) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%V:%ui: duplicate %s \"%V\", first on line %ui",
                          b->path, ngx_max(a->line, b->line), what,
                          &a->name, ngx_min(a->line, b->line));

        } else {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%V:%ui: duplicate %s \"%V\", also at %V:%ui",
                          b->path, b->line, what, &a->name, a->path,
                          a->line);
        }

        return NGX_ERROR;
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_claw_seen_cmp(const void *one, const void *two)
{
    ngx_int_t              rc;
    ngx_http_claw_seen_t  *a, *b;

    a = (ngx_http_claw_seen_t *) one;
    b = (ngx_http_claw_seen_t *) two;

    rc = ngx_memn2cmp(a->name.data, b->name.data, a->name.len, b->name.len);

    if (rc == 0 && a->path != b->path) {
        /* the file before the journal */
        rc = (a->path > b->path) - (a->path < b->path);
    }

    if (rc == 0) {
        rc = (a->line > b->line) - (a->line < b->line);
    }

    return (int) rc;
}




/*
 * While the cycle is made (the zone's init): everything the registry
 * needs is allocated in the zone, nothing changes in what is served.
 */

ngx_int_t
ngx_http_claw_registry_prepare(ngx_http_claw_registry_t *reg,
    ngx_uint_t reused, ngx_log_t *log)
{
    ngx_uint_t               i, n;
    ngx_http_claw_tconf_t  **src;

    src = reg->loaded->elts;
    n = reg->loaded->nelts;

    reg->changes = ngx_pcalloc(reg->loaded->pool,
                               (n + 1) * sizeof(ngx_http_claw_change_t));
    if (reg->changes == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        reg->changes[i].src = src[i];
    }

    if (ngx_http_claw_tables_prepare_all(reg->tables, reg->changes, n, log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    reg->nchanges = n;
    reg->reused = reused;
    reg->prepared = 1;

    return NGX_OK;
}


/*
 * The cycle commits (nothing can fail any more, the new workers are
 * about to start): the registry goes in force at once, and a journal
 * that had records is folded into the file, still under its lock.
 */

void
ngx_http_claw_registry_commit(ngx_http_claw_registry_t *reg, ngx_log_t *log)
{
    ngx_uint_t   removed;
    ngx_pool_t  *pool;

    if (!reg->prepared) {
        return;
    }

    removed = ngx_http_claw_tables_commit_all(reg->tables, reg->changes,
                                              reg->nchanges);
    reg->committed = 1;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "claw zone \"%V\": %ui tenants loaded from \"%V\", "
                  "%ui removed", &reg->tables->shm_zone->shm.name,
                  reg->nchanges, &reg->journal->path, removed);

    if (ngx_test_config || reg->jread == 0
        || reg->conf_jfd == NGX_INVALID_FILE)
    {
        return;
    }

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, log);
    if (pool == NULL) {
        return;
    }

    /* a fold that fails leaves the journal: nothing is lost */

    if (ngx_http_claw_journal_fold(reg->journal, reg->conf_jfd, reg->fbuf,
                                   reg->fsize, reg->jbuf, reg->jread, pool,
                                   log)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "claw: the journal \"%V\" stays until the next fold",
                      &reg->journal->name);
    }

    ngx_destroy_pool(pool);
}
