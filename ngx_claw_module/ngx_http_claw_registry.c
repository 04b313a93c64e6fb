
/*
 * Copyright (C) ngx_claw_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_claw_registry.h"


/* a name seen while reading the file, for the duplicate checks */
typedef struct {
    ngx_str_t                    name;
    ngx_uint_t                   line;
} ngx_http_claw_seen_t;


/* what the reconciliation of one tenant needs, allocated up front */
typedef struct {
    ngx_http_claw_tconf_t       *src;           /* parsed, process memory */
    uint32_t                     hash;
    unsigned                     same:1;
    ngx_http_claw_tconf_t       *conf;          /* new copy in the zone */
    ngx_http_claw_tenant_t      *slot;          /* for a new tenant */
    ngx_http_claw_name_t        *names;         /* via tnext */
} ngx_http_claw_change_t;


static ngx_int_t ngx_http_claw_registry_parse(ngx_conf_t *cf,
    ngx_http_claw_registry_t *reg, u_char *buf, size_t size,
    ngx_array_t *ids, ngx_array_t *domains);
static ngx_int_t ngx_http_claw_registry_check(ngx_conf_t *cf,
    ngx_http_claw_registry_t *reg, ngx_array_t *seen, char *what);
static int ngx_libc_cdecl ngx_http_claw_seen_cmp(const void *one,
    const void *two);
static ngx_int_t ngx_http_claw_registry_apply(ngx_http_claw_registry_t *reg,
    ngx_log_t *log);
static ngx_int_t ngx_http_claw_prepare(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch);
static void ngx_http_claw_unprepare(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch);
static void ngx_http_claw_commit_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch, uint32_t mark);
static void ngx_http_claw_unlink_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_tenant_t *t);
static void ngx_http_claw_unlink_names_locked(ngx_http_claw_shctx_t *sh,
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
 * Reads and checks the registry file at configuration time, so that a
 * bad file fails "nginx -t", start and reload before anything touches
 * the zone.  The parsed tenants wait in the temporary pool until the
 * zone is initialised.
 */

ngx_int_t
ngx_http_claw_registry_read(ngx_conf_t *cf, ngx_http_claw_registry_t *reg)
{
    u_char           *buf;
    size_t            size;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_int_t         rc;
    ngx_array_t       ids, domains;
    ngx_file_info_t   fi;

    fd = ngx_open_file(reg->path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, ngx_errno,
                      "claw_tenants: " ngx_open_file_n " \"%V\" failed",
                      &reg->path);
        return NGX_ERROR;
    }

    rc = NGX_ERROR;
    buf = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, ngx_errno,
                      "claw_tenants: " ngx_fd_info_n " \"%V\" failed",
                      &reg->path);
        goto done;
    }

    if (!ngx_is_file(&fi)) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "claw_tenants: \"%V\" is not a regular file",
                      &reg->path);
        goto done;
    }

    size = (size_t) ngx_file_size(&fi);

    /*
     * An empty file is what a crashed non-atomic writer leaves behind;
     * a registry with no tenants still says so in a comment line.
     */

    if (size == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "%V:1: empty registry file (a registry with no "
                      "tenants holds at least a comment line)", &reg->path);
        goto done;
    }

    buf = ngx_alloc(size, cf->log);
    if (buf == NULL) {
        goto done;
    }

    n = ngx_read_fd(fd, buf, size);

    if (n == -1) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, ngx_errno,
                      "claw_tenants: " ngx_read_fd_n " \"%V\" failed",
                      &reg->path);
        goto done;
    }

    if ((size_t) n != size) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "claw_tenants: \"%V\" changed while being read",
                      &reg->path);
        goto done;
    }

    if (ngx_array_init(&ids, cf->temp_pool, 64, sizeof(ngx_http_claw_seen_t))
        != NGX_OK
        || ngx_array_init(&domains, cf->temp_pool, 64,
                          sizeof(ngx_http_claw_seen_t))
           != NGX_OK)
    {
        goto done;
    }

    reg->loaded = ngx_array_create(cf->temp_pool, 64,
                                   sizeof(ngx_http_claw_tconf_t *));
    if (reg->loaded == NULL) {
        goto done;
    }

    if (ngx_http_claw_registry_parse(cf, reg, buf, size, &ids, &domains)
        != NGX_OK)
    {
        goto done;
    }

    if (ngx_http_claw_registry_check(cf, reg, &ids, "tenant") != NGX_OK
        || ngx_http_claw_registry_check(cf, reg, &domains, "domain")
           != NGX_OK)
    {
        goto done;
    }

    rc = NGX_OK;

done:

    if (buf) {
        ngx_free(buf);
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", &reg->path);
    }

    return rc;
}


static ngx_int_t
ngx_http_claw_registry_parse(ngx_conf_t *cf, ngx_http_claw_registry_t *reg,
    u_char *buf, size_t size, ngx_array_t *ids, ngx_array_t *domains)
{
    u_char                  *p, *end, *eol, *s;
    size_t                   len, head;
    ngx_str_t               *sfx;
    ngx_uint_t               line, i, j;
    ngx_http_claw_seen_t    *seen;
    ngx_http_claw_entry_t    e;
    ngx_http_claw_error_t    err;
    ngx_http_claw_tconf_t   *tc, **tcp;

    p = buf;
    end = buf + size;

    for (line = 1; p < end; line++, p = eol + 1) {

        eol = ngx_strlchr(p, end, '\n');

        if (eol == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%V:%ui: no newline at end of file "
                          "(truncated?)", &reg->path, line);
            return NGX_ERROR;
        }

        if ((size_t) (eol - p) > NGX_HTTP_CLAW_LINE_MAX) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%V:%ui: line too long", &reg->path, line);
            return NGX_ERROR;
        }

        if (ngx_strlchr(p, eol, '\0') != NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%V:%ui: NUL byte in line", &reg->path, line);
            return NGX_ERROR;
        }

        switch (ngx_http_claw_parse_line(p, eol - p, &e, &err)) {

        case 0:
            continue;

        case -1:
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%V:%ui: %s \"%*s\"", &reg->path, line,
                          err.reason, err.what.len, err.what.data);
            return NGX_ERROR;
        }

        sfx = reg->suffixes.elts;

        for (i = 0; i < e.ndomains; i++) {
            for (j = 0; j < reg->suffixes.nelts; j++) {
                len = e.domains[i].len;
                s = (u_char *) e.domains[i].data;

                if (len < sfx[j].len
                    || ngx_memcmp(s + len - sfx[j].len, sfx[j].data,
                                  sfx[j].len)
                       != 0
                    || (len > sfx[j].len && s[len - sfx[j].len - 1] != '.'))
                {
                    continue;
                }

                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "%V:%ui: domain \"%*s\" is under claw_domain "
                              "\"%V\"", &reg->path, line, len, s, &sfx[j]);
                return NGX_ERROR;
            }

            seen = ngx_array_push(domains);
            if (seen == NULL) {
                return NGX_ERROR;
            }

            /* the spans point into buf, which is freed after reading */

            seen->name.len = e.domains[i].len;
            seen->name.data = ngx_pnalloc(cf->temp_pool, seen->name.len);
            if (seen->name.data == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(seen->name.data, e.domains[i].data, seen->name.len);
            seen->line = line;
        }

        seen = ngx_array_push(ids);
        if (seen == NULL) {
            return NGX_ERROR;
        }

        seen->name.len = e.id.len;
        seen->name.data = ngx_pnalloc(cf->temp_pool, e.id.len);
        if (seen->name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(seen->name.data, e.id.data, e.id.len);
        seen->line = line;

        tc = ngx_palloc(cf->temp_pool, ngx_http_claw_tconf_size(&e, &head));
        if (tc == NULL) {
            return NGX_ERROR;
        }

        ngx_http_claw_tconf_build(tc, &e);

        tcp = ngx_array_push(reg->loaded);
        if (tcp == NULL) {
            return NGX_ERROR;
        }

        *tcp = tc;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_claw_registry_check(ngx_conf_t *cf, ngx_http_claw_registry_t *reg,
    ngx_array_t *seen, char *what)
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

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "%V:%ui: duplicate %s \"%V\", first on line %ui",
                      &reg->path, ngx_max(a->line, b->line), what, &a->name,
                      ngx_min(a->line, b->line));
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
        return ngx_http_claw_registry_apply(reg, shm_zone->shm.log);
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

    return ngx_http_claw_registry_apply(reg, shm_zone->shm.log);
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
    u_char                  *d;
    size_t                   len;
    ngx_uint_t               i;
    ngx_http_claw_name_t    *name;
    ngx_http_claw_tenant_t  *t;
    ngx_http_claw_tconf_t   *src;

    src = ch->src;

    ngx_shmtx_lock(&reg->shpool->mutex);

    t = ngx_http_claw_find_id_locked(reg->sh, ch->hash,
                                     ngx_http_claw_tconf_id(src),
                                     src->id_len);

    ch->same = (t && t->conf->size == src->size
                && ngx_memcmp(t->conf, src, src->size) == 0);

    ngx_shmtx_unlock(&reg->shpool->mutex);

    if (ch->same) {
        return NGX_OK;
    }

    if (t == NULL) {
        ch->slot = ngx_slab_calloc(reg->shpool,
                                   sizeof(ngx_http_claw_tenant_t));
        if (ch->slot == NULL) {
            return NGX_ERROR;
        }
    }

    ch->conf = ngx_slab_alloc(reg->shpool, src->size);
    if (ch->conf == NULL) {
        goto failed;
    }

    ngx_memcpy(ch->conf, src, src->size);

    d = ngx_http_claw_tconf_domains(src);

    for (i = 0; i < src->ndomains; i++) {
        len = *d++;

        name = ngx_slab_alloc(reg->shpool,
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

    ngx_http_claw_unprepare(reg, ch);

    return NGX_ERROR;
}


static void
ngx_http_claw_unprepare(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch)
{
    ngx_http_claw_name_t  *name, *next;

    for (name = ch->names; name; name = next) {
        next = name->tnext;
        ngx_slab_free(reg->shpool, name);
    }

    if (ch->conf) {
        ngx_slab_free(reg->shpool, ch->conf);
    }

    if (ch->slot) {
        ngx_slab_free(reg->shpool, ch->slot);
    }

    ngx_memzero(ch, sizeof(ngx_http_claw_change_t));
}


static void
ngx_http_claw_commit_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_change_t *ch, uint32_t mark)
{
    ngx_uint_t               b;
    ngx_http_claw_name_t    *name;
    ngx_http_claw_shctx_t   *sh;
    ngx_http_claw_tenant_t  *t;

    sh = reg->sh;

    t = ngx_http_claw_find_id_locked(sh, ch->hash,
                                     ngx_http_claw_tconf_id(ch->src),
                                     ch->src->id_len);

    if (ch->same && t) {
        t->mark = mark;
        return;
    }

    if (t == NULL) {
        t = ch->slot;

        if (t == NULL) {
            /* the tenant went away since prepare: a concurrent change */
            t = ngx_slab_calloc_locked(reg->shpool,
                                       sizeof(ngx_http_claw_tenant_t));
            if (t == NULL) {
                return;
            }
        }

        ch->slot = NULL;

        t->uid = ++sh->uid;
        t->hash = ch->hash;

        b = t->hash & (sh->nbuckets - 1);
        t->next = sh->ids[b];
        sh->ids[b] = t;
        sh->ntenants++;

    } else {
        ngx_http_claw_unlink_names_locked(sh, t);

        if (t->conf) {
            ngx_slab_free_locked(reg->shpool, t->conf);
        }
    }

    if (ch->conf == NULL) {
        /* "same" judged against a configuration replaced since */
        ch->conf = ngx_slab_alloc_locked(reg->shpool, ch->src->size);
        if (ch->conf == NULL) {
            return;
        }

        ngx_memcpy(ch->conf, ch->src, ch->src->size);
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
}


/* the caller has removed t from its id chain */

static void
ngx_http_claw_unlink_locked(ngx_http_claw_registry_t *reg,
    ngx_http_claw_tenant_t *t)
{
    ngx_http_claw_unlink_names_locked(reg->sh, t);

    ngx_slab_free_locked(reg->shpool, t->conf);
    t->conf = NULL;

    reg->sh->ntenants--;

    if (t->refs) {
        t->dead = 1;
        return;
    }

    ngx_slab_free_locked(reg->shpool, t);
}


static void
ngx_http_claw_unlink_names_locked(ngx_http_claw_shctx_t *sh,
    ngx_http_claw_tenant_t *t)
{
    ngx_http_claw_name_t  *name, *next, **np;

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
    }
}


/*
 * Finds a tenant and pins its slot for the request; the request gets a
 * copy of the tenant's configuration, so the lock is held for the lookup
 * and a copy of a few hundred bytes, no longer.
 */

ngx_http_claw_tenant_t *
ngx_http_claw_registry_acquire(ngx_http_claw_registry_t *reg,
    ngx_uint_t domain, uint32_t hash, u_char *name, size_t len,
    ngx_http_claw_tconf_t *copy)
{
    ngx_http_claw_hold_t    *hold;
    ngx_http_claw_tenant_t  *t;

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
    ngx_int_t                i, n;
    ngx_uint_t               pins, active;
    ngx_http_claw_hold_t    *h, *next;
    ngx_http_claw_shctx_t   *sh;
    ngx_http_claw_ledger_t  *ledger;

    sh = reg->sh;

    ngx_shmtx_lock(&reg->shpool->mutex);

    for (i = 0; i < NGX_MAX_PROCESSES; i++) {
        ledger = sh->ledgers[i];

        if (ledger == NULL || ledger->pid == 0 || ledger->pid == ngx_pid
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

    ledger = sh->ledgers[ngx_process_slot];

    if (ledger == NULL) {
        ledger = ngx_http_claw_alloc_locked(reg,
                                            sizeof(ngx_http_claw_ledger_t));
        if (ledger == NULL) {
            ngx_shmtx_unlock(&reg->shpool->mutex);
            ngx_log_error(NGX_LOG_EMERG, log, 0,
                          "claw zone \"%V\" has no room for a worker",
                          &reg->shm_zone->shm.name);
            return NGX_ERROR;
        }

        ngx_memzero(ledger, sizeof(ngx_http_claw_ledger_t));
        sh->ledgers[ngx_process_slot] = ledger;
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
