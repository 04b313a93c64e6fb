
/*
 * Replays inputs through one fuzz target without libFuzzer: every file
 * named, and every file of every directory named, once.  Linked with a
 * target and gcc's -fsanitize=address,undefined by "make fuzz-replay",
 * so that the seed corpora are regression tests on any machine with gcc.
 */


#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static unsigned long  replayed;
static const char    *current;


/* a sanitizer report or a failed CHECK() names the input it came from */

void __sanitizer_set_death_callback(void (*callback)(void));


static void
name_input(void)
{
    if (current) {
        fprintf(stderr, "replay: the input was %s\n", current);
        current = NULL;
    }
}


static void
on_signal(int signo)
{
    name_input();
    signal(signo, SIG_DFL);
    raise(signo);
}


static int
replay_file(const char *path)
{
    FILE     *f;
    long      size;
    uint8_t  *data;

    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fprintf(stderr, "%s: cannot size\n", path);
        fclose(f);
        return -1;
    }

    /* exactly the size of the input, as libFuzzer does */

    data = malloc(size ? (size_t) size : 1);
    if (data == NULL
        || (size && fread(data, 1, (size_t) size, f) != (size_t) size))
    {
        fprintf(stderr, "%s: cannot read\n", path);
        fclose(f);
        free(data);
        return -1;
    }

    fclose(f);

    current = path;
    LLVMFuzzerTestOneInput(data, (size_t) size);
    current = NULL;

    free(data);
    replayed++;

    return 0;
}


static int
replay(const char *path)
{
    int             rc;
    DIR            *dir;
    char           *sub;
    size_t          len;
    struct stat     st;
    struct dirent  *de;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }

    if (!S_ISDIR(st.st_mode)) {
        return replay_file(path);
    }

    dir = opendir(path);
    if (dir == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }

    rc = 0;

    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }

        len = strlen(path) + 1 + strlen(de->d_name) + 1;
        sub = malloc(len);
        if (sub == NULL) {
            abort();
        }

        snprintf(sub, len, "%s/%s", path, de->d_name);

        if (replay(sub) != 0) {
            rc = -1;
        }

        free(sub);
    }

    closedir(dir);

    return rc;
}


int
main(int argc, char **argv)
{
    int  i, rc;

    __sanitizer_set_death_callback(name_input);
    signal(SIGABRT, on_signal);
    signal(SIGSEGV, on_signal);

    rc = 0;

    for (i = 1; i < argc; i++) {
        if (replay(argv[i]) != 0) {
            rc = 1;
        }
    }

    fprintf(stderr, "%s: %lu inputs replayed\n", argv[0], replayed);

    return rc;
}
