/*
 * Faults of the disk, on demand, for the journal tests (t/journal.t):
 * loaded into nginx with LD_PRELOAD, it makes fdatasync(), fsync(),
 * ftruncate(), write() and rename() fail, write short, or sleep, for
 * files whose path contains a given text.  What to do is read, at every
 * call, from the file named by CLAW_FAULT when nginx started (workers
 * lose their environment, so the name is kept from the start), one rule
 * a line:
 *
 *     fdatasync EIO tenants.conf.journal
 *     ftruncate EIO tenants.conf.journal
 *     write short tenants.conf.journal
 *     fdatasync sleep=2000 tenants.conf
 *     fdatasync EIO tenants.conf.journal 1
 *
 * A number after the file: the rule holds for that many calls only (in
 * each process), until the rules file changes.  A missing or empty file:
 * no faults.  Built by "make unit" with the
 * unit tests; never part of the module.
 */

#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>


#define FAULT_NONE   0
#define FAULT_ERRNO  1
#define FAULT_SHORT  2
#define FAULT_SLEEP  3


static char           fault_file[4096];

/* calls counted against rules with a number, while the rules are these */
static unsigned long  fault_rules_hash;
static unsigned long  fault_used[16];


__attribute__((constructor))
static void
fault_init(void)
{
    const char  *f;

    f = getenv("CLAW_FAULT");

    if (f && strlen(f) < sizeof(fault_file)) {
        strcpy(fault_file, f);
    }
}


static int
fault_path(int fd, const char *path, char *buf, size_t size)
{
    ssize_t  n;
    char     link[64];

    if (path) {
        snprintf(buf, size, "%s", path);
        return 0;
    }

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);

    n = readlink(link, buf, size - 1);
    if (n < 0) {
        return -1;
    }

    buf[n] = '\0';

    return 0;
}


/* the rule for this call on this file: FAULT_*, with *arg its value */

static unsigned long
fault_hash(const char *p)
{
    unsigned long  h;

    for (h = 5381; *p; p++) {
        h = h * 33 + (unsigned char) *p;
    }

    return h;
}


static int
fault_rule(const char *call, int fd, const char *path, long *arg)
{
    int            fd2, saved, i, fields;
    char          *line, *next, name[32], what[64], match[512];
    long           times;
    ssize_t        n;
    unsigned long  h;
    char           rules[4096], file[4096];

    if (fault_file[0] == '\0') {
        return FAULT_NONE;
    }

    saved = errno;

    fd2 = open(fault_file, O_RDONLY);
    if (fd2 < 0) {
        errno = saved;
        return FAULT_NONE;
    }

    n = read(fd2, rules, sizeof(rules) - 1);
    close(fd2);

    if (n <= 0 || fault_path(fd, path, file, sizeof(file)) != 0) {
        errno = saved;
        return FAULT_NONE;
    }

    rules[n] = '\0';
    errno = saved;

    h = fault_hash(rules);

    if (h != __atomic_load_n(&fault_rules_hash, __ATOMIC_SEQ_CST)) {
        for (i = 0; i < 16; i++) {
            __atomic_store_n(&fault_used[i], 0, __ATOMIC_SEQ_CST);
        }

        __atomic_store_n(&fault_rules_hash, h, __ATOMIC_SEQ_CST);
    }

    for (i = 0, line = rules; line; line = next, i++) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }

        times = 0;
        fields = sscanf(line, "%31s %63s %511s %ld", name, what, match,
                        &times);

        if (fields < 3 || strcmp(name, call) != 0
            || strstr(file, match) == NULL)
        {
            continue;
        }

        if (fields == 4 && i < 16
            && __atomic_fetch_add(&fault_used[i], 1, __ATOMIC_SEQ_CST)
               >= (unsigned long) times)
        {
            continue;
        }

        if (strcmp(what, "short") == 0) {
            return FAULT_SHORT;
        }

        if (strncmp(what, "sleep=", 6) == 0) {
            *arg = atol(what + 6);
            return FAULT_SLEEP;
        }

        *arg = strcmp(what, "ENOSPC") == 0 ? ENOSPC
               : strcmp(what, "EROFS") == 0 ? EROFS : EIO;

        return FAULT_ERRNO;
    }

    return FAULT_NONE;
}


static void
fault_sleep(long ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000;

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        /* void */
    }
}


#define FAULT_CALL(name, fd, path)                                            \
    long  arg = 0;                                                            \
    switch (fault_rule(name, fd, path, &arg)) {                               \
    case FAULT_ERRNO:                                                         \
        errno = (int) arg;                                                    \
        return -1;                                                            \
    case FAULT_SLEEP:                                                         \
        fault_sleep(arg);                                                     \
        break;                                                                \
    default:                                                                  \
        break;                                                                \
    }


int
fdatasync(int fd)
{
    static int  (*real)(int);

    if (real == NULL) {
        real = (int (*)(int)) dlsym(RTLD_NEXT, "fdatasync");
    }

    FAULT_CALL("fdatasync", fd, NULL)

    return real(fd);
}


int
fsync(int fd)
{
    static int  (*real)(int);

    if (real == NULL) {
        real = (int (*)(int)) dlsym(RTLD_NEXT, "fsync");
    }

    FAULT_CALL("fsync", fd, NULL)

    return real(fd);
}


int
ftruncate(int fd, off_t len)
{
    static int  (*real)(int, off_t);

    if (real == NULL) {
        real = (int (*)(int, off_t)) dlsym(RTLD_NEXT, "ftruncate");
    }

    FAULT_CALL("ftruncate", fd, NULL)

    return real(fd, len);
}


int
ftruncate64(int fd, off_t len)
{
    return ftruncate(fd, len);
}


int
rename(const char *from, const char *to)
{
    static int  (*real)(const char *, const char *);

    if (real == NULL) {
        real = (int (*)(const char *, const char *)) dlsym(RTLD_NEXT,
                                                           "rename");
    }

    FAULT_CALL("rename", -1, to)

    return real(from, to);
}


ssize_t
write(int fd, const void *buf, size_t n)
{
    long        arg;
    static ssize_t  (*real)(int, const void *, size_t);

    if (real == NULL) {
        real = (ssize_t (*)(int, const void *, size_t)) dlsym(RTLD_NEXT,
                                                              "write");
    }

    /* the logs and sockets are written all the time: files only */

    if (fd <= 2 || fault_file[0] == '\0') {
        return real(fd, buf, n);
    }

    arg = 0;

    switch (fault_rule("write", fd, NULL, &arg)) {

    case FAULT_ERRNO:
        errno = (int) arg;
        return -1;

    case FAULT_SHORT:
        return real(fd, buf, n / 2);

    case FAULT_SLEEP:
        fault_sleep(arg);
        break;
    }

    return real(fd, buf, n);
}
