
/*
 * The rate limiter's arithmetic, ngx_http_claw_gcra(), as the module
 * calls it: a time in nanoseconds from nginx's millisecond clock, the
 * interval of a valid rate (ngx_http_claw_rate_interval() of 1 to
 * 1000000 r/s or r/m), a burst of 0 to 1000000.  The input is the rate,
 * the burst, a start time and a series of request arrivals (gaps).
 *
 * Properties, checked against the whole history of each run:
 *   - an idle bucket admits: a request after a quiet period of
 *     (burst + 1) intervals is never refused;
 *   - burst + 1 requests at the same instant on an idle bucket are all
 *     admitted, the next one is not;
 *   - over any window [t_i, t_j] of admitted requests at most
 *     (t_j - t_i) / interval + burst + 1 are admitted;
 *   - a refusal says how long to wait: never 0, at most (burst + 1)
 *     intervals, and a request exactly that much later is admitted
 *     (the Retry-After the module sends is honest), one nanosecond
 *     earlier is not;
 *   - the new arrival time moves forward by exactly one interval from
 *     max(tat, now).
 */


#include "fuzz.h"


#define MAX_EVENTS  512


typedef struct {
    const uint8_t  *p;
    size_t          left;
} reader_t;


static uint64_t
take(reader_t *r, int bytes)
{
    uint64_t  v;

    v = 0;

    while (bytes--) {
        v <<= 8;

        if (r->left) {
            v |= *r->p++;
            r->left--;
        }
    }

    return v;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                i, j, n, count;
    uint64_t              now, tat, next, wait, interval, burst, gap, w2;
    uint64_t              admitted[MAX_EVENTS];
    reader_t              r;
    ngx_http_claw_rate_t  rate;

    r.p = data;
    r.left = size;

    rate.number = (uint32_t) (1 + take(&r, 3) % NGX_HTTP_CLAW_RATE_MAX);
    rate.period = (take(&r, 1) & 1) ? 60 : 1;
    burst = take(&r, 3) % (NGX_HTTP_CLAW_BURST_MAX + 1);

    interval = ngx_http_claw_rate_interval(&rate);
    CHECK(interval >= 1000 && interval <= 60ULL * 1000000000);

    /* ngx_current_msec * 1000000: up to ~ 2^64 / 2 ns is far enough */
    now = (take(&r, 5) % (1ULL << 38)) * 1000000;
    tat = 0;

    /* burst + 1 at once on an idle bucket, then a refusal */
    if (burst < 64) {
        uint64_t  t = tat;

        for (i = 0; i <= burst; i++) {
            CHECK(ngx_http_claw_gcra(t, now, interval, burst, &next) == 0);
            t = next;
        }

        CHECK(ngx_http_claw_gcra(t, now, interval, burst, &next) != 0);
    }

    n = 0;
    count = 0;

    while (r.left && count < MAX_EVENTS) {
        /* gaps: mostly short, sometimes up to minutes, in ms steps */
        gap = take(&r, 1);

        if (gap & 0x80) {
            gap = ((gap & 0x7f) << 16 | take(&r, 2)) * 1000000;

        } else {
            gap = gap * 1000000 / 4;
        }

        now += gap;
        count++;

        next = 0;
        wait = ngx_http_claw_gcra(tat, now, interval, burst, &next);

        if (tat <= now || tat - now <= burst * interval) {
            /* within the tolerance: admitted */
            CHECK(wait == 0);
        }

        if (wait == 0) {
            CHECK(next == (tat > now ? tat : now) + interval);
            CHECK(next > now);

            tat = next;
            admitted[n++] = now;

            /* any window ending here */
            for (i = 0; i < n; i++) {
                CHECK(n - i <= (now - admitted[i]) / interval + burst + 1);
            }

            if (n == MAX_EVENTS) {
                break;
            }

            continue;
        }

        /* refused: an honest wait */

        CHECK(wait <= (burst + 1) * interval);
        CHECK(now + wait > now);

        CHECK(ngx_http_claw_gcra(tat, now + wait, interval, burst, &w2)
              == 0);
        CHECK(ngx_http_claw_gcra(tat, now + wait - 1, interval, burst, &w2)
              == 1);
    }

    /* after a quiet period the bucket is full again */

    now += (burst + 1) * interval;
    j = 0;

    for (i = 0; i <= burst && i < 64; i++) {
        if (ngx_http_claw_gcra(tat, now, interval, burst, &next) == 0) {
            tat = next;
            j++;
        }
    }

    CHECK(j == (burst < 64 ? burst + 1 : 64));

    return 0;
}
