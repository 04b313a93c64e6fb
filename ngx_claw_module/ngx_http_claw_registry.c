
/*
 * Copyright (C) ngx_claw_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_registry.h"
#include "ngx_http_claw_store.h"


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
static void ngx_http_claw_journal_owner(ngx_cycle_t *cycle, ngx_fd_t fd,
    ngx_str_t *name);
static void ngx_http_claw_unlock_journal(void *data);
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
static ngx_int_t ngx_http_claw_registry_load(ngx_http_claw_registry_t *reg,
    ngx_log_t *log);
static ngx_int_t ngx_http_claw_registry_apply(ngx_http_claw_registry_t *reg,
    ngx_log_t *log);
static ngx_int_t ngx_http_claw_prepare(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch);
static void ngx_http_claw_unprepare(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch);
static ngx_int_t ngx_http_claw_alloc_change_locked(
    ngx_http_claw_registry_t *reg, ngx_http_claw_change_t *ch,
    ngx_uint_t slot);
static void ngx_http_claw_unprepare_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch);
static ngx_uint_t ngx_http_claw_commit_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch, uint32_t mark);
static void *ngx_http_claw_snapshot(ngx_http_claw_registry_t *reg,
    ngx_pool_t *pool, ngx_uint_t what, ngx_uint_t *n);
static int ngx_libc_cdecl ngx_http_claw_tconf_cmp(const void *one,
    const void *two);
static void ngx_http_claw_unlink_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_tenant_t *t);
static void ngx_http_claw_unlink_names_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_tenant_t *t);
static ngx_http_claw_tenant_t *ngx_http_claw_find_id_locked(
    ngx_http_claw_shctx_t *sh, uint32_t hash, u_char *id, size_t len);
static ngx_http_claw_tenant_t *ngx_http_claw_find_domain_locked(
    ngx_http_claw_shctx_t *sh, uint32_t hash, u_char *name, size_t len);
static void ngx_http_claw_unhold_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_ledger_t *ledger, ngx_http_claw_tenant_t *t,
    uint32_t pins, uint32_t active);
static ngx_http_claw_fail_t *ngx_http_claw_fail_find_locked(
    ngx_http_claw_shctx_t *sh, uint32_t hash, u_char *key, size_t len);
static void ngx_http_claw_fail_expire_locked(ngx_http_claw_registry_t *reg,
    uint64_t now, ngx_uint_t n);


/*
 * Reads and checks the registry file, and replays the journal of admin
 * changes beside it, at configuration time: a bad file fails "nginx -t",
 * start and reload before anything touches the zone.  The journal stays
 * locked until the new registry is in the zone (the temporary pool's
 * cleanup unlocks it), so no admin change falls between the two.
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
    ngx_http_claw_tconf_t    **tcp;

    /*
     * The journal is locked first, made if missing (a worker could
     * otherwise make it, and acknowledge a change, between our reading
     * the file and reading the journal).
     */

    fd = ngx_open_file(reg->journal.data, NGX_FILE_RDWR|NGX_FILE_NONBLOCK,
                       NGX_FILE_CREATE_OR_OPEN, 0600);

    if (fd == NGX_INVALID_FILE) {
        err = ngx_errno;

        if (!ngx_test_config) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, err,
                          "claw_tenants: " ngx_open_file_n " \"%V\" failed",
                          &reg->journal);
            return NGX_ERROR;
        }

        /* "nginx -t" by a user who cannot write there: read what is */

        fd = ngx_open_file(reg->journal.data,
                           NGX_FILE_RDONLY|NGX_FILE_NONBLOCK, NGX_FILE_OPEN, 0);
    }

    jsize = 0;

    if (fd != NGX_INVALID_FILE) {
        cln = ngx_pool_cleanup_add(cf->temp_pool, 0);
        if (cln == NULL) {
            ngx_close_file(fd);
            return NGX_ERROR;
        }

        cln->handler = ngx_http_claw_unlock_journal;
        cln->data = reg;
        reg->conf_jfd = fd;

        if (ngx_http_claw_lock_journal(fd, cf->log, &reg->journal)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_http_claw_journal_owner(cf->cycle, fd, &reg->journal);
    }

    if (ngx_http_claw_read_file(cf, &reg->path, NGX_INVALID_FILE, &buf,
                                &size)
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
                      "tenants holds at least a comment line)", &reg->path);
        return NGX_ERROR;
    }

    reg->fbuf = buf;
    reg->fsize = size;

    if (fd != NGX_INVALID_FILE) {
        if (ngx_http_claw_read_file(cf, &reg->journal, fd, &reg->jbuf, &jsize)
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

    if (ngx_http_claw_registry_parse(cf, reg, &reg->path, buf, size, 0,
                                     &index)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (jsize
        && ngx_http_claw_registry_parse(cf, reg, &reg->journal, reg->jbuf,
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

ngx_int_t
ngx_http_claw_lock_journal(ngx_fd_t fd, ngx_log_t *log, ngx_str_t *name)
{
    ngx_err_t  err;

    do {
        err = ngx_lock_fd(fd);
    } while (err == NGX_EINTR);

    if (err) {
        ngx_log_error(NGX_LOG_ALERT, log, err,
                      ngx_lock_fd_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a journal the master made belongs to the workers, who append to it */

static void
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


static void
ngx_http_claw_unlock_journal(void *data)
{
    ngx_http_claw_registry_t  *reg = data;

    /* closing the descriptor releases the lock */

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
    ngx_uint_t               line, i, j, *slot;
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

        sfx = reg->suffixes.elts;

        for (i = 0; i < e.ndomains; i++) {
            for (j = 0; j < reg->suffixes.nelts; j++) {
                len = e.domains[i].len;
                s = (u_char *) e.domains[i].data;

                if (ngx_http_claw_under_suffix(s, len, &sfx[j])) {
                    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                                  "%V:%ui: domain \"%*s\" is under "
                                  "claw_domain \"%V\"", path, line, len, s,
                                  &sfx[j]);
                    return NGX_ERROR;
                }
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


/* a name equal to the suffix or under it */

ngx_uint_t
ngx_http_claw_under_suffix(u_char *name, size_t len, ngx_str_t *sfx)
{
    if (len < sfx->len
        || ngx_memcmp(name + len - sfx->len, sfx->data, sfx->len) != 0)
    {
        return 0;
    }

    return len == sfx->len || name[len - sfx->len - 1] == '.';
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


ngx_int_t
ngx_http_claw_registry_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_claw_registry_t  *oreg = data;

    size_t                     len;
    ngx_uint_t                 n;
    ngx_slab_pool_t           *shpool;
    ngx_http_claw_shctx_t     *sh;
    ngx_http_claw_registry_t  *reg;

    reg = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    reg->shpool = shpool;

    if (oreg) {
        reg->sh = oreg->sh;
        return ngx_http_claw_registry_load(reg, shm_zone->shm.log);
    }

    if (shm_zone->shm.exists) {
        reg->sh = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_claw_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    /*
     * A tenant takes a few hundred bytes at least, so one bucket per
     * 512 bytes of zone keeps chains short at any fill.
     */

    for (n = 64; n * 2 <= shm_zone->shm.size / 512; n *= 2) {
        /* void */
    }

    sh->nbuckets = n;
    sh->ledgers = NULL;
    sh->ntenants = 0;
    sh->uid = 0;
    sh->mark = 0;

    sh->ids = ngx_slab_calloc(shpool, n * sizeof(ngx_http_claw_tenant_t *));
    sh->names = ngx_slab_calloc(shpool, n * sizeof(ngx_http_claw_name_t *));
    sh->fails = ngx_slab_calloc(shpool, n * sizeof(ngx_http_claw_fail_t *));

    if (sh->ids == NULL || sh->names == NULL || sh->fails == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&sh->fail_queue);

    shpool->data = sh;
    reg->sh = sh;

    len = sizeof(" in claw zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in claw zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is reported by the caller, with what did not fit */
    shpool->log_nomem = 0;

    return ngx_http_claw_registry_load(reg, shm_zone->shm.log);
}


/*
 * The zone takes what was read; a journal that had records is folded
 * into the file right away (not by "nginx -t"), still under its lock.
 */

static ngx_int_t
ngx_http_claw_registry_load(ngx_http_claw_registry_t *reg, ngx_log_t *log)
{
    ngx_int_t    rc;
    ngx_pool_t  *pool;

    if (ngx_http_claw_registry_apply(reg, log) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_test_config || reg->jread == 0
        || reg->conf_jfd == NGX_INVALID_FILE)
    {
        return NGX_OK;
    }

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    /* a fold that fails leaves the journal: nothing is lost */

    rc = ngx_http_claw_store_fold(reg, reg->conf_jfd, reg->fbuf, reg->fsize,
                                  reg->jbuf, reg->jread, pool, log);
    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "claw: the journal \"%V\" stays until the next fold",
                      &reg->journal);
    }

    ngx_destroy_pool(pool);

    return NGX_OK;
}


/*
 * Makes the zone hold exactly the tenants read from the file.  Every
 * allocation is made first, so a zone too small for the new registry
 * fails the reload with the old registry untouched; then the whole
 * switch happens under one lock, so no request sees a mix of the two.
 * A tenant whose configuration did not change keeps its block, and every
 * surviving tenant keeps its slot: limit state and counters carry over.
 */

static ngx_int_t
ngx_http_claw_registry_apply(ngx_http_claw_registry_t *reg, ngx_log_t *log)
{
    uint32_t                  mark;
    ngx_uint_t                i, n, removed;
    ngx_http_claw_shctx_t    *sh;
    ngx_http_claw_tconf_t   **src;
    ngx_http_claw_tenant_t   *t, **tp;
    ngx_http_claw_change_t   *changes, *ch;

    sh = reg->sh;
    src = reg->loaded->elts;
    n = reg->loaded->nelts;

    changes = ngx_alloc(sizeof(ngx_http_claw_change_t) * (n ? n : 1), log);
    if (changes == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(changes, sizeof(ngx_http_claw_change_t) * n);

    for (i = 0; i < n; i++) {
        ch = &changes[i];
        ch->src = src[i];
        ch->hash = ngx_murmur_hash2(ngx_http_claw_tconf_id(src[i]),
                                    src[i]->id_len);

        if (ngx_http_claw_prepare(reg, ch) != NGX_OK) {
            ngx_log_error(NGX_LOG_EMERG, log, 0,
                          "claw zone \"%V\" is too small for %ui tenants "
                          "(stopped at \"%*s\")", &reg->shm_zone->shm.name,
                          n, (size_t) src[i]->id_len,
                          ngx_http_claw_tconf_id(src[i]));

            while (i--) {
                ngx_http_claw_unprepare(reg, &changes[i]);
            }

            ngx_free(changes);
            return NGX_ERROR;
        }
    }

    ngx_shmtx_lock(&reg->shpool->mutex);

    mark = ++sh->mark;

    for (i = 0; i < n; i++) {
        ngx_http_claw_commit_locked(reg, &changes[i], mark);
    }

    removed = 0;

    for (i = 0; i < sh->nbuckets; i++) {
        tp = &sh->ids[i];

        while (*tp) {
            t = *tp;

            if (t->mark == mark) {
                tp = &t->next;
                continue;
            }

            *tp = t->next;
            ngx_http_claw_unlink_locked(reg, t);
            removed++;
        }
    }

    ngx_shmtx_unlock(&reg->shpool->mutex);

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "claw zone \"%V\": %ui tenants loaded from \"%V\", "
                  "%ui removed", &reg->shm_zone->shm.name, sh->ntenants,
                  &reg->path, removed);

    ngx_free(changes);

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_prepare(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch)
{
    ngx_int_t                rc;
    ngx_http_claw_tenant_t  *t;
    ngx_http_claw_tconf_t   *src;

    src = ch->src;

    ngx_shmtx_lock(&reg->shpool->mutex);

    t = ngx_http_claw_find_id_locked(reg->sh, ch->hash,
                                     ngx_http_claw_tconf_id(src),
                                     src->id_len);

    ch->same = (t && t->conf->size == src->size
                && ngx_memcmp(t->conf, src, src->size) == 0);

    rc = ch->same ? NGX_OK : ngx_http_claw_alloc_change_locked(reg, ch,
                                                               t == NULL);

    ngx_shmtx_unlock(&reg->shpool->mutex);

    return rc;
}


/*
 * What a change puts in the zone: the configuration block, the custom
 * domains' name records and, for a new tenant, its slot.  A full zone
 * makes room among failure records only; nothing is half allocated.
 */

static ngx_int_t
ngx_http_claw_alloc_change_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch, ngx_uint_t slot)
{
    u_char                 *d;
    size_t                  len;
    ngx_uint_t              i;
    ngx_http_claw_name_t   *name;
    ngx_http_claw_tconf_t  *src;

    src = ch->src;

    if (slot) {
        ch->slot = ngx_http_claw_alloc_locked(reg,
                                              sizeof(ngx_http_claw_tenant_t));
        if (ch->slot == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(ch->slot, sizeof(ngx_http_claw_tenant_t));
    }

    ch->conf = ngx_http_claw_alloc_locked(reg, src->size);
    if (ch->conf == NULL) {
        goto failed;
    }

    ngx_memcpy(ch->conf, src, src->size);

    d = ngx_http_claw_tconf_domains(src);

    for (i = 0; i < src->ndomains; i++) {
        len = *d++;

        name = ngx_http_claw_alloc_locked(reg,
                                  offsetof(ngx_http_claw_name_t, name) + len);
        if (name == NULL) {
            goto failed;
        }

        name->len = (u_char) len;
        ngx_memcpy(name->name, d, len);
        name->hash = ngx_murmur_hash2(d, len);
        name->tenant = NULL;
        name->next = NULL;
        name->tnext = ch->names;
        ch->names = name;

        d += len;
    }

    return NGX_OK;

failed:

    ngx_http_claw_unprepare_locked(reg, ch);

    return NGX_ERROR;
}


static void
ngx_http_claw_unprepare(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch)
{
    ngx_shmtx_lock(&reg->shpool->mutex);
    ngx_http_claw_unprepare_locked(reg, ch);
    ngx_shmtx_unlock(&reg->shpool->mutex);
}


static void
ngx_http_claw_unprepare_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch)
{
    ngx_http_claw_name_t  *name, *next;

    for (name = ch->names; name; name = next) {
        next = name->tnext;
        ngx_slab_free_locked(reg->shpool, name);
    }

    if (ch->conf) {
        ngx_slab_free_locked(reg->shpool, ch->conf);
    }

    if (ch->slot) {
        ngx_slab_free_locked(reg->shpool, ch->slot);
    }

    ch->names = NULL;
    ch->conf = NULL;
    ch->slot = NULL;
}


static ngx_uint_t
ngx_http_claw_commit_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch, uint32_t mark)
{
    ngx_uint_t               b, created;
    ngx_http_claw_name_t    *name;
    ngx_http_claw_shctx_t   *sh;
    ngx_http_claw_tenant_t  *t;

    sh = reg->sh;

    t = ngx_http_claw_find_id_locked(sh, ch->hash,
                                     ngx_http_claw_tconf_id(ch->src),
                                     ch->src->id_len);

    if (ch->same) {
        if (t && t->conf->size == ch->src->size
            && ngx_memcmp(t->conf, ch->src, ch->src->size) == 0)
        {
            t->mark = mark;
            return 0;
        }

        /*
         * Changed since it was judged the same: changes are serialised by
         * the journal lock, so this is not expected; allocate here, and
         * change nothing if that fails.
         */

        if (ngx_http_claw_alloc_change_locked(reg, ch, t == NULL) != NGX_OK) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "claw zone \"%V\" full: tenant \"%*s\" not "
                          "changed", &reg->shm_zone->shm.name,
                          (size_t) ch->src->id_len,
                          ngx_http_claw_tconf_id(ch->src));
            return 0;
        }
    }

    created = (t == NULL);
    sh->changes++;

    if (t == NULL) {
        t = ch->slot;
        ch->slot = NULL;

        t->uid = ++sh->uid;
        t->hash = ch->hash;

        b = t->hash & (sh->nbuckets - 1);
        t->next = sh->ids[b];
        sh->ids[b] = t;
        sh->ntenants++;

    } else {
        ngx_http_claw_unlink_names_locked(reg, t);

        if (t->conf) {
            ngx_slab_free_locked(reg->shpool, t->conf);
        }
    }

    t->conf = ch->conf;
    t->mark = mark;
    ch->conf = NULL;

    t->names = ch->names;
    ch->names = NULL;

    for (name = t->names; name; name = name->tnext) {
        name->tenant = t;
        b = name->hash & (sh->nbuckets - 1);
        name->next = sh->names[b];
        sh->names[b] = name;
    }

    if (ch->slot) {
        ngx_slab_free_locked(reg->shpool, ch->slot);
        ch->slot = NULL;
    }

    return created;
}


/* the caller has removed t from its id chain */

static void
ngx_http_claw_unlink_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_tenant_t *t)
{
    ngx_http_claw_unlink_names_locked(reg, t);

    ngx_slab_free_locked(reg->shpool, t->conf);
    t->conf = NULL;

    reg->sh->ntenants--;
    reg->sh->changes++;

    if (t->refs) {
        t->dead = 1;
        return;
    }

    ngx_slab_free_locked(reg->shpool, t);
}


/* takes a tenant's custom domains out of the name table, and frees them */

static void
ngx_http_claw_unlink_names_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_tenant_t *t)
{
    ngx_http_claw_name_t   *name, *next, **np;
    ngx_http_claw_shctx_t  *sh;

    sh = reg->sh;

    for (name = t->names; name; name = next) {
        next = name->tnext;

        for (np = &sh->names[name->hash & (sh->nbuckets - 1)];
             *np;
             np = &(*np)->next)
        {
            if (*np == name) {
                *np = name->next;
                break;
            }
        }

        ngx_slab_free_locked(reg->shpool, name);
    }

    t->names = NULL;
}


/*
 * Finds a tenant and pins its slot for the request; the request gets a
 * copy of the tenant's configuration, so the lock is held for the lookup
 * and a copy of a few hundred bytes, no longer.  NULL with *full set: the
 * tenant is there, but the zone has no room for this worker's pin.
 */

ngx_http_claw_tenant_t *
ngx_http_claw_registry_acquire(ngx_http_claw_registry_t *reg,
    ngx_uint_t domain, uint32_t hash, u_char *name, size_t len,
    ngx_http_claw_tconf_t *copy, ngx_uint_t *full)
{
    ngx_http_claw_hold_t    *hold;
    ngx_http_claw_tenant_t  *t;

    *full = 0;

    ngx_shmtx_lock(&reg->shpool->mutex);

    if (domain) {
        t = ngx_http_claw_find_domain_locked(reg->sh, hash, name, len);

    } else {
        t = ngx_http_claw_find_id_locked(reg->sh, hash, name, len);
    }

    if (t) {
        hold = ngx_http_claw_hold_locked(reg, t);

        if (hold == NULL && reg->ledger) {
            /* not even evicting failure records made room */
            *full = 1;
            t = NULL;
            goto done;
        }

        if (hold) {
            hold->pins++;
        }

        t->refs++;
        ngx_memcpy(copy, t->conf, t->conf->head);
    }

done:

    ngx_shmtx_unlock(&reg->shpool->mutex);

    return t;
}


void
ngx_http_claw_registry_release(ngx_http_claw_registry_t *reg,
    ngx_http_claw_tenant_t *t, ngx_uint_t active)
{
    ngx_shmtx_lock(&reg->shpool->mutex);

    ngx_http_claw_unhold_locked(reg, reg->ledger, t, 1, active ? 1 : 0);

    ngx_shmtx_unlock(&reg->shpool->mutex);
}


/* this worker's ledger entry for t, created on first use */

ngx_http_claw_hold_t *
ngx_http_claw_hold_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_tenant_t *t)
{
    ngx_http_claw_hold_t   *h, **hp;
    ngx_http_claw_ledger_t *ledger;

    ledger = reg->ledger;

    if (ledger == NULL) {
        return NULL;
    }

    hp = &ledger->holds[((uintptr_t) t >> 7) % NGX_HTTP_CLAW_HOLD_BUCKETS];

    for (h = *hp; h; h = h->next) {
        if (h->tenant == t) {
            return h;
        }
    }

    h = ngx_http_claw_alloc_locked(reg, sizeof(ngx_http_claw_hold_t));
    if (h == NULL) {
        return NULL;
    }

    h->tenant = t;
    h->pins = 0;
    h->active = 0;
    h->next = *hp;
    *hp = h;

    return h;
}


static void
ngx_http_claw_unhold_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_ledger_t *ledger, ngx_http_claw_tenant_t *t, uint32_t pins,
    uint32_t active)
{
    ngx_http_claw_hold_t  *h, **hp;

    if (ledger) {
        hp = &ledger->holds[((uintptr_t) t >> 7)
                            % NGX_HTTP_CLAW_HOLD_BUCKETS];

        for (h = *hp; h; hp = &h->next, h = h->next) {
            if (h->tenant != t) {
                continue;
            }

            h->pins -= pins;
            h->active -= active;

            if (h->pins == 0) {
                *hp = h->next;
                ngx_slab_free_locked(reg->shpool, h);
            }

            break;
        }
    }

    t->active -= active;
    t->refs -= pins;

    if (t->refs == 0 && t->dead) {
        ngx_slab_free_locked(reg->shpool, t);
    }
}


/*
 * A worker starts: it gives back what dead workers still held (a worker
 * killed with requests in flight never ran their cleanups), then takes
 * its own ledger.  The master unlocks a mutex a dead worker held.
 */

ngx_int_t
ngx_http_claw_registry_init_worker(ngx_http_claw_registry_t *reg,
    ngx_log_t *log)
{
    ngx_int_t                n;
    ngx_uint_t               pins, active;
    ngx_http_claw_hold_t    *h, *next;
    ngx_http_claw_shctx_t   *sh;
    ngx_http_claw_ledger_t  *ledger;

    sh = reg->sh;

    ngx_shmtx_lock(&reg->shpool->mutex);

    for (ledger = sh->ledgers; ledger; ledger = ledger->next) {

        if (ledger->pid == 0 || ledger->pid == ngx_pid
            || kill(ledger->pid, 0) == 0 || ngx_errno != NGX_ESRCH)
        {
            continue;
        }

        pins = 0;
        active = 0;

        for (n = 0; n < NGX_HTTP_CLAW_HOLD_BUCKETS; n++) {
            for (h = ledger->holds[n]; h; h = next) {
                next = h->next;
                pins += h->pins;
                active += h->active;

                h->tenant->active -= h->active;
                h->tenant->refs -= h->pins;

                if (h->tenant->refs == 0 && h->tenant->dead) {
                    ngx_slab_free_locked(reg->shpool, h->tenant);
                }

                ngx_slab_free_locked(reg->shpool, h);
            }

            ledger->holds[n] = NULL;
        }

        if (pins) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "claw: worker %P exited holding %ui requests "
                          "(%ui admitted), given back", ledger->pid, pins,
                          active);
        }

        ledger->pid = 0;
    }

    for (ledger = sh->ledgers; ledger; ledger = ledger->next) {
        if (ledger->slot == ngx_process_slot) {
            break;
        }
    }

    if (ledger == NULL) {
        ledger = ngx_http_claw_alloc_locked(reg,
                                            sizeof(ngx_http_claw_ledger_t));
        if (ledger == NULL) {
            ngx_shmtx_unlock(&reg->shpool->mutex);

            /* the worker serves; only a crash of it could not be undone */

            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "claw zone \"%V\" has no room for the ledger of "
                          "this worker", &reg->shm_zone->shm.name);
            return NGX_OK;
        }

        ngx_memzero(ledger, sizeof(ngx_http_claw_ledger_t));
        ledger->slot = ngx_process_slot;
        ledger->next = sh->ledgers;
        sh->ledgers = ledger;
    }

    ledger->pid = ngx_pid;
    reg->ledger = ledger;

    ngx_shmtx_unlock(&reg->shpool->mutex);

    return NGX_OK;
}


/* a worker that exits having released everything leaves no ledger */

void
ngx_http_claw_registry_exit_worker(ngx_http_claw_registry_t *reg)
{
    ngx_uint_t               n;
    ngx_http_claw_ledger_t  *ledger;

    ledger = reg->ledger;

    if (ledger == NULL) {
        return;
    }

    ngx_shmtx_lock(&reg->shpool->mutex);

    for (n = 0; n < NGX_HTTP_CLAW_HOLD_BUCKETS; n++) {
        if (ledger->holds[n]) {
            break;
        }
    }

    if (n == NGX_HTTP_CLAW_HOLD_BUCKETS) {
        ledger->pid = 0;
    }

    ngx_shmtx_unlock(&reg->shpool->mutex);

    reg->ledger = NULL;
}


/* an allocation that may make room by evicting failure records */

void *
ngx_http_claw_alloc_locked(ngx_http_claw_registry_t *reg, size_t size)
{
    void        *p;
    ngx_uint_t   tries;

    for (tries = 0; /* void */ ; tries++) {
        p = ngx_slab_alloc_locked(reg->shpool, size);

        if (p || tries == 8 || ngx_queue_empty(&reg->sh->fail_queue)) {
            return p;
        }

        ngx_http_claw_fail_expire_locked(reg, (uint64_t) -1, 16);
    }
}


/*
 * One tenant put by the admin API, in three steps, all under the admin
 * lock: prepare (checks and allocations: nothing visible changes), then
 * the caller journals the change, then commit (cannot fail) or abort.
 * Returns NGX_OK, NGX_BUSY with the id of the tenant owning one of the
 * domains, or NGX_DECLINED when the zone has no room.
 */

ngx_int_t
ngx_http_claw_registry_prepare(ngx_http_claw_registry_t *reg,
    ngx_http_claw_tconf_t *src, ngx_http_claw_change_t *ch, ngx_str_t *owner,
    ngx_pool_t *pool)
{
    u_char                  *d, *id;
    size_t                   len;
    ngx_uint_t               i;
    ngx_http_claw_tenant_t  *t;

    ngx_memzero(ch, sizeof(ngx_http_claw_change_t));

    ch->src = src;
    ch->hash = ngx_murmur_hash2(ngx_http_claw_tconf_id(src), src->id_len);

    d = ngx_http_claw_tconf_domains(src);

    ngx_shmtx_lock(&reg->shpool->mutex);

    for (i = 0; i < src->ndomains; i++) {
        len = *d++;

        t = ngx_http_claw_find_domain_locked(reg->sh,
                                             ngx_murmur_hash2(d, len), d,
                                             len);

        if (t && (t->conf->id_len != src->id_len
                  || ngx_memcmp(ngx_http_claw_tconf_id(t->conf),
                                ngx_http_claw_tconf_id(src), src->id_len)
                     != 0))
        {
            id = ngx_pnalloc(pool, t->conf->id_len);
            if (id != NULL) {
                ngx_memcpy(id, ngx_http_claw_tconf_id(t->conf),
                           t->conf->id_len);
                owner->data = id;
                owner->len = t->conf->id_len;
            }

            ngx_shmtx_unlock(&reg->shpool->mutex);
            return NGX_BUSY;
        }

        d += len;
    }

    ngx_shmtx_unlock(&reg->shpool->mutex);

    if (ngx_http_claw_prepare(reg, ch) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* returns 1 when the tenant is new */

ngx_uint_t
ngx_http_claw_registry_commit(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch)
{
    ngx_uint_t  created;

    ngx_shmtx_lock(&reg->shpool->mutex);
    created = ngx_http_claw_commit_locked(reg, ch, reg->sh->mark);
    ngx_shmtx_unlock(&reg->shpool->mutex);

    ngx_http_claw_unprepare(reg, ch);

    return created;
}


void
ngx_http_claw_registry_abort(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch)
{
    ngx_http_claw_unprepare(reg, ch);
}


ngx_int_t
ngx_http_claw_registry_remove(ngx_http_claw_registry_t *reg, u_char *id,
    size_t len)
{
    uint32_t                 hash;
    ngx_http_claw_tenant_t  *t, **tp;

    hash = ngx_murmur_hash2(id, len);

    ngx_shmtx_lock(&reg->shpool->mutex);

    for (tp = &reg->sh->ids[hash & (reg->sh->nbuckets - 1)];
         *tp;
         tp = &(*tp)->next)
    {
        t = *tp;

        if (t->hash == hash && t->conf->id_len == len
            && ngx_memcmp(ngx_http_claw_tconf_id(t->conf), id, len) == 0)
        {
            *tp = t->next;
            ngx_http_claw_unlink_locked(reg, t);
            ngx_shmtx_unlock(&reg->shpool->mutex);
            return NGX_OK;
        }
    }

    ngx_shmtx_unlock(&reg->shpool->mutex);

    return NGX_DECLINED;
}


/* a copy of one tenant's whole configuration, or NULL */

ngx_http_claw_tconf_t *
ngx_http_claw_registry_get(ngx_http_claw_registry_t *reg, u_char *id,
    size_t len, ngx_pool_t *pool)
{
    ngx_http_claw_tconf_t   *tc;
    ngx_http_claw_tenant_t  *t;

    tc = ngx_palloc(pool, NGX_HTTP_CLAW_TCONF_MAX);
    if (tc == NULL) {
        return NULL;
    }

    ngx_shmtx_lock(&reg->shpool->mutex);

    t = ngx_http_claw_find_id_locked(reg->sh, ngx_murmur_hash2(id, len), id,
                                     len);
    if (t) {
        ngx_memcpy(tc, t->conf, t->conf->size);
    }

    ngx_shmtx_unlock(&reg->shpool->mutex);

    return t ? tc : NULL;
}


/* every tenant's configuration, sorted by id */

ngx_http_claw_tconf_t **
ngx_http_claw_registry_list(ngx_http_claw_registry_t *reg, ngx_pool_t *pool,
    ngx_uint_t *n)
{
    ngx_http_claw_tconf_t  **list;

    list = ngx_http_claw_snapshot(reg, pool, 0, n);

    if (list) {
        ngx_qsort(list, *n, sizeof(ngx_http_claw_tconf_t *),
                  ngx_http_claw_tconf_cmp);
    }

    return list;
}


/* a number that moves whenever a tenant is added, changed or removed */

uint64_t
ngx_http_claw_registry_changes(ngx_http_claw_registry_t *reg)
{
    uint64_t  changes;

    ngx_shmtx_lock(&reg->shpool->mutex);
    changes = reg->sh->changes;
    ngx_shmtx_unlock(&reg->shpool->mutex);

    return changes;
}


/* every tenant's counters, in no particular order */

ngx_http_claw_counters_t *
ngx_http_claw_registry_counters(ngx_http_claw_registry_t *reg,
    ngx_pool_t *pool, ngx_uint_t *n)
{
    return ngx_http_claw_snapshot(reg, pool, 1, n);
}


/*
 * Copies the zone bucket by bucket, each under the lock only while its
 * few entries are copied, into memory sized beforehand (and grown and
 * retried in the rare case a bucket grew meanwhile): the lock is never
 * held for the whole table nor across an allocation.
 */

static void *
ngx_http_claw_snapshot(ngx_http_claw_registry_t *reg, ngx_pool_t *pool,
    ngx_uint_t what, ngx_uint_t *n)
{
    u_char                    *buf, *p, *nbuf;
    size_t                     size, need, used, esize;
    ngx_uint_t                 b, count, cap, i;
    ngx_http_claw_shctx_t     *sh;
    ngx_http_claw_tenant_t    *t;
    ngx_http_claw_tconf_t    **list;
    ngx_http_claw_counters_t  *c;
    void                      *elts, *nelts;

    sh = reg->sh;
    esize = what ? sizeof(ngx_http_claw_counters_t)
                 : sizeof(ngx_http_claw_tconf_t *);

    ngx_shmtx_lock(&reg->shpool->mutex);
    cap = sh->ntenants + 16;
    ngx_shmtx_unlock(&reg->shpool->mutex);

    size = what ? 0 : cap * 256;
    used = 0;
    count = 0;
    buf = NULL;

    if (size) {
        buf = ngx_palloc(pool, size);
        if (buf == NULL) {
            return NULL;
        }
    }

    elts = ngx_palloc(pool, cap * esize);
    if (elts == NULL) {
        return NULL;
    }

    for (b = 0; b < sh->nbuckets; /* void */) {

        ngx_shmtx_lock(&reg->shpool->mutex);

        need = 0;
        i = 0;

        for (t = sh->ids[b]; t; t = t->next) {
            need += ngx_align(t->conf->size, 8);
            i++;
        }

        if (count + i <= cap && (what || used + need <= size)) {

            for (t = sh->ids[b]; t; t = t->next, count++) {

                if (what) {
                    c = (ngx_http_claw_counters_t *) elts + count;

                    c->id_len = t->conf->id_len;
                    ngx_memcpy(c->id, ngx_http_claw_tconf_id(t->conf),
                               c->id_len);

                    for (i = 0; i < NGX_HTTP_CLAW_CLASSES; i++) {
                        c->requests[i] = t->requests[i];
                    }

                    c->auth_failures = t->auth_failures;
                    c->rate_limited = t->rate_limited;
                    c->bytes_sent = t->bytes_sent;
                    c->active = t->active;
                    continue;
                }

                /* offsets for now: the buffer may still move */

                p = buf + used;
                ngx_memcpy(p, t->conf, t->conf->size);
                ((uintptr_t *) elts)[count] = used;
                used += ngx_align(t->conf->size, 8);
            }

            ngx_shmtx_unlock(&reg->shpool->mutex);
            b++;
            continue;
        }

        ngx_shmtx_unlock(&reg->shpool->mutex);

        /* the table grew since the sizes were taken: grow and retry */

        if (count + i > cap) {
            cap = 2 * (cap + i);

            nelts = ngx_palloc(pool, cap * esize);
            if (nelts == NULL) {
                return NULL;
            }

            ngx_memcpy(nelts, elts, count * esize);
            ngx_pfree(pool, elts);
            elts = nelts;
        }

        if (!what && used + need > size) {
            size = 2 * (used + need);

            nbuf = ngx_palloc(pool, size);
            if (nbuf == NULL) {
                return NULL;
            }

            ngx_memcpy(nbuf, buf, used);
            ngx_pfree(pool, buf);
            buf = nbuf;
        }
    }

    if (!what) {
        list = elts;

        for (i = 0; i < count; i++) {
            list[i] = (ngx_http_claw_tconf_t *) (buf + ((uintptr_t *) elts)[i]);
        }
    }

    *n = count;

    return elts;
}


static int ngx_libc_cdecl
ngx_http_claw_tconf_cmp(const void *one, const void *two)
{
    ngx_http_claw_tconf_t  *a, *b;

    a = *(ngx_http_claw_tconf_t **) one;
    b = *(ngx_http_claw_tconf_t **) two;

    return (int) ngx_memn2cmp(ngx_http_claw_tconf_id(a),
                              ngx_http_claw_tconf_id(b), a->id_len,
                              b->id_len);
}


/*
 * The slot a name resolves to, to be compared with another slot only:
 * it is not pinned, so it must not be used after the lock is released.
 */

ngx_http_claw_tenant_t *
ngx_http_claw_registry_peek(ngx_http_claw_registry_t *reg, ngx_uint_t domain,
    u_char *name, size_t len)
{
    uint32_t                 hash;
    ngx_http_claw_tenant_t  *t;

    hash = ngx_murmur_hash2(name, len);

    ngx_shmtx_lock(&reg->shpool->mutex);

    t = domain ? ngx_http_claw_find_domain_locked(reg->sh, hash, name, len)
               : ngx_http_claw_find_id_locked(reg->sh, hash, name, len);

    ngx_shmtx_unlock(&reg->shpool->mutex);

    return t;
}


/* whether a custom domain belongs to the (pinned) tenant t */

ngx_int_t
ngx_http_claw_registry_owns(ngx_http_claw_registry_t *reg,
    ngx_http_claw_tenant_t *t, u_char *domain, size_t len)
{
    uint32_t                 hash;
    ngx_http_claw_tenant_t  *owner;

    hash = ngx_murmur_hash2(domain, len);

    ngx_shmtx_lock(&reg->shpool->mutex);

    owner = ngx_http_claw_find_domain_locked(reg->sh, hash, domain, len);

    ngx_shmtx_unlock(&reg->shpool->mutex);

    return owner == t;
}


static ngx_http_claw_tenant_t *
ngx_http_claw_find_id_locked(ngx_http_claw_shctx_t *sh, uint32_t hash,
    u_char *id, size_t len)
{
    ngx_http_claw_tenant_t  *t;

    for (t = sh->ids[hash & (sh->nbuckets - 1)]; t; t = t->next) {
        if (t->hash == hash
            && t->conf->id_len == len
            && ngx_memcmp(ngx_http_claw_tconf_id(t->conf), id, len) == 0)
        {
            return t;
        }
    }

    return NULL;
}


static ngx_http_claw_tenant_t *
ngx_http_claw_find_domain_locked(ngx_http_claw_shctx_t *sh, uint32_t hash,
    u_char *name, size_t len)
{
    ngx_http_claw_name_t  *n;

    for (n = sh->names[hash & (sh->nbuckets - 1)]; n; n = n->next) {
        if (n->hash == hash
            && n->len == len
            && ngx_memcmp(n->name, name, len) == 0)
        {
            return n->tenant;
        }
    }

    return NULL;
}


/*
 * A leaky bucket of failures per address: each failure adds 60/limit
 * seconds, and the address is over the limit while more than limit - 1
 * failures are pending.  Returns the seconds until it is not, or 0.
 */

time_t
ngx_http_claw_registry_fail_wait(ngx_http_claw_registry_t *reg, u_char *key,
    size_t len, ngx_uint_t limit)
{
    uint32_t               hash;
    uint64_t               now, interval, tolerance, wait;
    ngx_http_claw_fail_t  *f;

    hash = ngx_murmur_hash2(key, len);
    now = (uint64_t) ngx_current_msec * 1000;
    interval = 60000000 / limit;
    tolerance = interval * (limit - 1);

    wait = 0;

    ngx_shmtx_lock(&reg->shpool->mutex);

    f = ngx_http_claw_fail_find_locked(reg->sh, hash, key, len);

    if (f && f->tat > now + tolerance) {
        wait = f->tat - now - tolerance;
    }

    ngx_shmtx_unlock(&reg->shpool->mutex);

    return (time_t) ((wait + 999999) / 1000000);
}


void
ngx_http_claw_registry_fail_add(ngx_http_claw_registry_t *reg, u_char *key,
    size_t len, ngx_uint_t limit, ngx_log_t *log)
{
    uint32_t                hash;
    uint64_t                now;
    ngx_http_claw_fail_t   *f, **fp;
    ngx_http_claw_shctx_t  *sh;

    hash = ngx_murmur_hash2(key, len);
    now = (uint64_t) ngx_current_msec * 1000;

    sh = reg->sh;

    ngx_shmtx_lock(&reg->shpool->mutex);

    ngx_http_claw_fail_expire_locked(reg, now, 2);

    f = ngx_http_claw_fail_find_locked(sh, hash, key, len);

    if (f == NULL) {
        /* a full zone makes room among failures, never among tenants */

        f = ngx_http_claw_alloc_locked(reg, sizeof(ngx_http_claw_fail_t));

        if (f == NULL) {
            ngx_shmtx_unlock(&reg->shpool->mutex);
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "claw: no room in the zone to count a failed "
                          "credential");
            return;
        }

        f->hash = hash;
        f->len = (u_char) len;
        ngx_memcpy(f->key, key, len);
        f->tat = now;

        fp = &sh->fails[hash & (sh->nbuckets - 1)];
        f->next = *fp;
        *fp = f;

    } else {
        ngx_queue_remove(&f->queue);
    }

    ngx_queue_insert_head(&sh->fail_queue, &f->queue);

    f->tat = ngx_max(f->tat, now) + 60000000 / limit;

    ngx_shmtx_unlock(&reg->shpool->mutex);
}


static ngx_http_claw_fail_t *
ngx_http_claw_fail_find_locked(ngx_http_claw_shctx_t *sh, uint32_t hash,
    u_char *key, size_t len)
{
    ngx_http_claw_fail_t  *f;

    for (f = sh->fails[hash & (sh->nbuckets - 1)]; f; f = f->next) {
        if (f->hash == hash && f->len == len
            && ngx_memcmp(f->key, key, len) == 0)
        {
            return f;
        }
    }

    return NULL;
}


/* drops up to n least recently failing addresses whose bucket drained */

static void
ngx_http_claw_fail_expire_locked(ngx_http_claw_registry_t *reg, uint64_t now,
    ngx_uint_t n)
{
    ngx_queue_t            *q;
    ngx_http_claw_fail_t   *f, **fp;
    ngx_http_claw_shctx_t  *sh;

    sh = reg->sh;

    while (n-- && !ngx_queue_empty(&sh->fail_queue)) {
        q = ngx_queue_last(&sh->fail_queue);
        f = ngx_queue_data(q, ngx_http_claw_fail_t, queue);

        if (f->tat > now) {
            return;
        }

        ngx_queue_remove(q);

        for (fp = &sh->fails[f->hash & (sh->nbuckets - 1)];
             *fp;
             fp = &(*fp)->next)
        {
            if (*fp == f) {
                *fp = f->next;
                break;
            }
        }

        ngx_slab_free_locked(reg->shpool, f);
    }
}


size_t
ngx_http_claw_tconf_size(ngx_http_claw_entry_t *e, size_t *head)
{
    size_t      size;
    ngx_uint_t  i;

    size = sizeof(ngx_http_claw_tconf_t) + ngx_align(e->socklen, 8)
           + e->ntokens * NGX_HTTP_CLAW_DIGEST_LEN
           + e->id.len + e->upstream.len;

    *head = size;

    for (i = 0; i < e->ndomains; i++) {
        size += 1 + e->domains[i].len;
    }

    return size;
}


/* every byte is set, padding included, so equal tenants compare equal */

void
ngx_http_claw_tconf_build(ngx_http_claw_tconf_t *tc, ngx_http_claw_entry_t *e)
{
    u_char      *p;
    size_t       size, head;
    ngx_uint_t   i;

    size = ngx_http_claw_tconf_size(e, &head);

    ngx_memzero(tc, size);

    tc->size = (uint32_t) size;
    tc->head = (uint32_t) head;
    tc->rate = e->rate;
    tc->burst = (int32_t) e->burst;
    tc->conn = (int32_t) e->conn;
    tc->socklen = (uint16_t) e->socklen;
    tc->id_len = (u_char) e->id.len;
    tc->upstream_len = (u_char) e->upstream.len;
    tc->ntokens = (u_char) e->ntokens;
    tc->ndomains = (u_char) e->ndomains;

    ngx_memcpy(ngx_http_claw_tconf_addr(tc), &e->addr, e->socklen);

    ngx_memcpy(ngx_http_claw_tconf_tokens(tc), e->tokens,
               e->ntokens * NGX_HTTP_CLAW_DIGEST_LEN);

    ngx_memcpy(ngx_http_claw_tconf_id(tc), e->id.data, e->id.len);
    ngx_memcpy(ngx_http_claw_tconf_upstream(tc), e->upstream.data,
               e->upstream.len);

    p = ngx_http_claw_tconf_domains(tc);

    for (i = 0; i < e->ndomains; i++) {
        *p++ = (u_char) e->domains[i].len;
        p = ngx_cpymem(p, e->domains[i].data, e->domains[i].len);
    }
}


/*
 * A tenant as a registry line, as the file, the journal and the admin API
 * write it; with buf NULL, the length it needs.
 */

size_t
ngx_http_claw_tconf_line(ngx_http_claw_tconf_t *tc, u_char *buf)
{
    u_char      *d, *p, *t;
    size_t       len;
    ngx_uint_t   i;
    u_char       tmp[NGX_INT64_LEN + sizeof(" burst=")];

    len = tc->id_len + 1 + tc->upstream_len
          + tc->ntokens * (sizeof(" token=sha256:") - 1
                           + 2 * NGX_HTTP_CLAW_DIGEST_LEN);

    if (tc->rate.number) {
        len += ngx_sprintf(tmp, " rate=%uDr/s", tc->rate.number) - tmp;
    }

    if (tc->burst >= 0) {
        len += ngx_sprintf(tmp, " burst=%D", tc->burst) - tmp;
    }

    if (tc->conn >= 0) {
        len += ngx_sprintf(tmp, " conn=%D", tc->conn) - tmp;
    }

    d = ngx_http_claw_tconf_domains(tc);

    for (i = 0; i < tc->ndomains; i++) {
        len += sizeof(" domain=") - 1 + *d;
        d += 1 + *d;
    }

    if (buf == NULL) {
        return len;
    }

    p = ngx_cpymem(buf, ngx_http_claw_tconf_id(tc), tc->id_len);
    *p++ = ' ';
    p = ngx_cpymem(p, ngx_http_claw_tconf_upstream(tc), tc->upstream_len);

    t = ngx_http_claw_tconf_tokens(tc);

    for (i = 0; i < tc->ntokens; i++) {
        p = ngx_cpymem(p, " token=sha256:", sizeof(" token=sha256:") - 1);
        p = ngx_hex_dump(p, t + i * NGX_HTTP_CLAW_DIGEST_LEN,
                         NGX_HTTP_CLAW_DIGEST_LEN);
    }

    if (tc->rate.number) {
        p = ngx_sprintf(p, " rate=%uDr/%c", tc->rate.number,
                        tc->rate.period == 1 ? 's' : 'm');
    }

    if (tc->burst >= 0) {
        p = ngx_sprintf(p, " burst=%D", tc->burst);
    }

    if (tc->conn >= 0) {
        p = ngx_sprintf(p, " conn=%D", tc->conn);
    }

    d = ngx_http_claw_tconf_domains(tc);

    for (i = 0; i < tc->ndomains; i++) {
        p = ngx_cpymem(p, " domain=", sizeof(" domain=") - 1);
        p = ngx_cpymem(p, d + 1, *d);
        d += 1 + *d;
    }

    return p - buf;
}


/* the parsed form of a tenant block; spans point into the block */

void
ngx_http_claw_tconf_entry(ngx_http_claw_tconf_t *tc, ngx_http_claw_entry_t *e)
{
    u_char      *d;
    ngx_uint_t   i;

    ngx_memzero(e, sizeof(ngx_http_claw_entry_t));

    e->id.data = ngx_http_claw_tconf_id(tc);
    e->id.len = tc->id_len;
    e->upstream.data = ngx_http_claw_tconf_upstream(tc);
    e->upstream.len = tc->upstream_len;

    ngx_memcpy(&e->addr, ngx_http_claw_tconf_addr(tc), tc->socklen);
    e->socklen = tc->socklen;

    e->rate = tc->rate;
    e->burst = tc->burst;
    e->conn = tc->conn;

    e->ntokens = tc->ntokens;
    ngx_memcpy(e->tokens, ngx_http_claw_tconf_tokens(tc),
               tc->ntokens * NGX_HTTP_CLAW_DIGEST_LEN);

    d = ngx_http_claw_tconf_domains(tc);

    for (i = 0; i < tc->ndomains; i++) {
        e->domains[i].len = *d;
        e->domains[i].data = d + 1;
        d += 1 + *d;
    }

    e->ndomains = tc->ndomains;
}
