
/*
 * The admin API's check of a PUT body: ngx_http_claw_admin_entry(), the
 * static function of ngx_http_claw_admin.c that the API runs on every
 * body after jansson has parsed it, compiled in here from the module's
 * own source against the headers of the nginx tree the module is built
 * in.  Debian ships nginx's headers, not its sources: the few nginx
 * functions on this path (a pool, ngx_sprintf, ngx_hex_dump) are small
 * stand-ins below, each allocation a heap block of its own so that ASan
 * sees its end.  The rest of the admin code (the request, the zone, the
 * journal) and of the registry is linked unresolved and never runs.
 *
 * Input: "<id>\n<JSON body>", the id as in PUT /tenants/<id>.
 *
 * Properties: a body the API accepts is a tenant that the registry file
 * accepts too, and the same one: written as the journal writes it
 * (ngx_http_claw_tconf_build/_line, the module's own writer) and read
 * back with ngx_http_claw_parse_line(), what start and reload replay, it
 * gives the same id, upstream, address, tokens, limits and domains, none
 * of them a claw_domain, under one or a parent of one.  A body that is
 * refused is refused with a message.  What goes wrong is an acknowledged change that the next
 * start cannot replay (a fail-closed registry: nginx would not start).
 */


#include "ngx_http_claw_admin.c"

#include "fuzz.h"


/* defined by ngx_http_claw_module.c, which is not linked */
ngx_module_t  ngx_http_claw_module;


/* --- stand-ins for nginx's own functions on this path -------------------- */

/* a pool: a list of heap blocks, freed with it */

typedef struct fuzz_block_s  fuzz_block_t;

struct fuzz_block_s {
    fuzz_block_t  *next;
    u_char         data[];
};


ngx_pool_t *
ngx_create_pool(size_t size, ngx_log_t *log)
{
    ngx_pool_t  *p;

    (void) size;

    p = calloc(1, sizeof(ngx_pool_t));
    if (p == NULL) {
        abort();
    }

    p->log = log;

    return p;
}


void
ngx_destroy_pool(ngx_pool_t *pool)
{
    fuzz_block_t  *b, *next;

    for (b = (fuzz_block_t *) pool->d.last; b; b = next) {
        next = b->next;
        free(b);
    }

    free(pool);
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    fuzz_block_t  *b;

    b = malloc(sizeof(fuzz_block_t) + size);
    if (b == NULL) {
        abort();
    }

    b->next = (fuzz_block_t *) pool->d.last;
    pool->d.last = (u_char *) b;

    return b->data;
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    return memset(ngx_palloc(pool, size), 0, size);
}


u_char *
ngx_hex_dump(u_char *dst, u_char *src, size_t len)
{
    static const u_char  hex[] = "0123456789abcdef";

    while (len--) {
        *dst++ = hex[*src >> 4];
        *dst++ = hex[*src++ & 0xf];
    }

    return dst;
}


/*
 * the formats the registry's writer uses (%D, %uD, %c), and those of the
 * admin API's messages (%*s, %s, %V, %Z)
 */

u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    int         n;
    char        tmp[64];
    size_t      len;
    u_char     *p;
    va_list     args;
    ngx_str_t  *v;

    va_start(args, fmt);

    while (*fmt) {
        if (*fmt != '%') {
            *buf++ = (u_char) *fmt++;
            continue;
        }

        fmt++;

        /* into tmp: sprintf's NUL must not land past what nginx writes */

        if (fmt[0] == 'D') {
            n = snprintf(tmp, sizeof(tmp), "%d", (int) va_arg(args, int32_t));
            fmt += 1;

        } else if (fmt[0] == 'u' && fmt[1] == 'D') {
            n = snprintf(tmp, sizeof(tmp), "%u",
                         (unsigned) va_arg(args, uint32_t));
            fmt += 2;

        } else if (fmt[0] == 'c') {
            tmp[0] = (char) va_arg(args, int);
            n = 1;
            fmt += 1;

        } else if (fmt[0] == '*' && fmt[1] == 's') {
            len = va_arg(args, size_t);
            p = va_arg(args, u_char *);
            buf = (u_char *) memcpy(buf, p, len) + len;
            fmt += 2;
            continue;

        } else if (fmt[0] == 's') {
            p = va_arg(args, u_char *);
            len = strlen((char *) p);
            buf = (u_char *) memcpy(buf, p, len) + len;
            fmt += 1;
            continue;

        } else if (fmt[0] == 'V') {
            v = va_arg(args, ngx_str_t *);
            buf = (u_char *) memcpy(buf, v->data, v->len) + v->len;
            fmt += 1;
            continue;

        } else if (fmt[0] == 'Z') {
            *buf++ = '\0';
            fmt += 1;
            continue;

        } else {
            fprintf(stderr, "ngx_sprintf stand-in: format \"%s\"\n", fmt);
            abort();
        }

        buf = (u_char *) memcpy(buf, tmp, (size_t) n) + n;
    }

    va_end(args);

    return buf;
}


/* --- the module's main configuration, as far as the check reads it ------ */

static ngx_log_t                   fuzz_log;
static ngx_http_claw_main_conf_t   fuzz_cmcf;
static void                       *fuzz_main_conf[1];
static ngx_str_t                   fuzz_suffixes[] = {
    ngx_string("claw.test"),
    ngx_string("example.com"),
};


static void
fuzz_init(void)
{
    static int  done;

    if (done) {
        return;
    }

    done = 1;

    fuzz_log.log_level = NGX_LOG_EMERG;

    fuzz_cmcf.suffixes.elts = fuzz_suffixes;
    fuzz_cmcf.suffixes.nelts = 2;
    fuzz_cmcf.suffixes.size = sizeof(ngx_str_t);
    fuzz_cmcf.suffixes.nalloc = 2;

    ngx_http_claw_module.ctx_index = 0;
    fuzz_main_conf[0] = &fuzz_cmcf;
}


static int
span_eq(ngx_http_claw_span_t *a, ngx_http_claw_span_t *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     rc;
    char                   *err;
    size_t                  idlen, tsize, head, len, n, j;
    json_t                 *root;
    u_char                 *line, *idcopy;
    ngx_str_t               id;
    ngx_uint_t              i;
    ngx_pool_t             *pool;
    json_error_t            jerr;
    ngx_http_request_t      r;
    ngx_http_claw_entry_t   e, e2;
    ngx_http_claw_error_t   perr;
    ngx_http_claw_tconf_t  *tc;

    fuzz_init();

    idlen = fuzz_split(data, size, '\n');

    /* the API routes only valid ids to the body check */
    if (idlen == size || !ngx_http_claw_valid_id(data, idlen)) {
        return 0;
    }

    pool = ngx_create_pool(4096, &fuzz_log);
    if (pool == NULL) {
        abort();
    }

    idcopy = fuzz_dup(data, idlen);
    id.data = idcopy;
    id.len = idlen;

    ngx_memzero(&r, sizeof(ngx_http_request_t));
    r.pool = pool;
    r.main_conf = fuzz_main_conf;

    /* as ngx_http_claw_admin_put() reads the body */
    root = json_loadb((const char *) data + idlen + 1, size - idlen - 1,
                      JSON_REJECT_DUPLICATES, &jerr);

    if (root == NULL) {
        goto done;
    }

    err = ngx_http_claw_admin_entry(&r, root, &id, &e);

    if (err) {
        CHECK(err[0] != '\0');
        json_decref(root);
        goto done;
    }

    CHECK(span_eq(&e.id, &(ngx_http_claw_span_t) { id.data, id.len }));
    CHECK(e.upstream.len > 0);
    CHECK(e.ntokens <= NGX_HTTP_CLAW_MAX_TOKENS);
    CHECK(e.ndomains <= NGX_HTTP_CLAW_MAX_DOMAINS);

    /* not a claw_domain, not under one, not a parent of one */

    for (i = 0; i < e.ndomains; i++) {
        for (j = 0; j < 2; j++) {
            CHECK(ngx_http_claw_domain_relation(e.domains[i].data,
                                                e.domains[i].len,
                                                fuzz_suffixes[j].data,
                                                fuzz_suffixes[j].len)
                  == NGX_HTTP_CLAW_DOMAIN_APART);
        }
    }

    /* written as the journal writes it, read back as start replays it */

    tsize = ngx_http_claw_tconf_size(&e, &head);
    tc = (ngx_http_claw_tconf_t *) fuzz_out(tsize);
    ngx_http_claw_tconf_build(tc, &e);

    len = ngx_http_claw_tconf_line(tc, NULL);
    line = fuzz_out(len);
    n = ngx_http_claw_tconf_line(tc, line);
    CHECK(n == len);

    rc = ngx_http_claw_parse_line(line, len, &e2, &perr);

    if (rc != 1) {
        fprintf(stderr, "journal line refused: %s \"%.*s\" in \"%.*s\"\n",
                perr.reason ? perr.reason : "(blank)", (int) perr.what.len,
                perr.what.data, (int) len, line);
    }

    CHECK(rc == 1);
    CHECK(span_eq(&e.id, &e2.id));
    CHECK(span_eq(&e.upstream, &e2.upstream));
    CHECK(e.socklen == e2.socklen
          && memcmp(&e.addr, &e2.addr, e.socklen) == 0);
    CHECK(e.ntokens == e2.ntokens
          && memcmp(e.tokens, e2.tokens,
                    e.ntokens * NGX_HTTP_CLAW_DIGEST_LEN) == 0);
    CHECK(e.rate.number == e2.rate.number
          && (e.rate.number == 0 || e.rate.period == e2.rate.period));
    CHECK(e.burst == e2.burst && e.conn == e2.conn);
    CHECK(e.ndomains == e2.ndomains);

    for (i = 0; i < e.ndomains; i++) {
        CHECK(span_eq(&e.domains[i], &e2.domains[i]));
    }

    free(line);
    free(tc);
    json_decref(root);

done:

    free(idcopy);
    ngx_destroy_pool(pool);

    return 0;
}
