
/*
 * Common helpers of the fuzz targets, fuzz/fuzz_<target>.c.
 *
 * Each target defines LLVMFuzzerTestOneInput() and is built two ways:
 * with clang's libFuzzer (-fsanitize=fuzzer,address,undefined) for
 * "make fuzz", and with fuzz/replay.c and gcc's ASan/UBSan for
 * "make fuzz-replay", which runs every file of the seed corpus once.
 *
 * CHECK() states a property of the code under test: when it does not
 * hold, the input is a finding, reported like a crash.
 */


#ifndef _CLAW_FUZZ_H_INCLUDED_
#define _CLAW_FUZZ_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ngx_http_claw_parse.h"
#include "ngx_http_claw_token.h"
#include "ngx_http_claw_resp.h"


#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: property failed: %s\n",                   \
                    __FILE__, __LINE__, #cond);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/*
 * A copy of the input in a heap block of exactly its size, so that
 * AddressSanitizer sees a read one byte past the end (fuzzer inputs
 * are already such blocks; the copies let a target split its input).
 * Never NULL; a zero-length copy is still a valid pointer.
 */

static inline unsigned char *
fuzz_dup(const uint8_t *data, size_t size)
{
    unsigned char  *p;

    p = malloc(size ? size : 1);
    if (p == NULL) {
        abort();
    }

    if (size) {
        memcpy(p, data, size);

    } else {
        p[0] = '\0';
    }

    return p;
}


/* an output buffer of exactly n bytes: a write past it is reported */

static inline unsigned char *
fuzz_out(size_t n)
{
    unsigned char  *p;

    p = malloc(n ? n : 1);
    if (p == NULL) {
        abort();
    }

    return p;
}


/* pointer p with length len lies within [base, base + size) */

static inline int
fuzz_within(const unsigned char *p, size_t len, const unsigned char *base,
    size_t size)
{
    return p >= base && p <= base + size && len <= (size_t) (base + size - p);
}


/* splits the input at the first occurrence of a separator byte */

static inline size_t
fuzz_split(const uint8_t *data, size_t size, uint8_t sep)
{
    const uint8_t  *p;

    p = memchr(data, sep, size);

    return p ? (size_t) (p - data) : size;
}


#endif /* _CLAW_FUZZ_H_INCLUDED_ */
