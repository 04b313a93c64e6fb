# Metrics: per-tenant counters in Prometheus text format, checked against
# the requests each test makes; they survive reloads and go with their
# tenant.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
no_shuffle();
no_root_location();

start_containers(['slow', '127.0.0.1:19913']);

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw {
        claw_balancer;
        keepalive 8;
    }

    server {
        listen 127.0.0.1:19911;

        location / {
            return 200 "ok\n";
        }

        location /nf {
            return 404;
        }
    }

    server {
        listen $TEST_NGINX_SERVER_PORT;
        server_name *.claw.test;
        claw_domain claw.test;

        location / {
            claw on;
            proxy_pass http://claw;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", <<'_EOF_');
>>> tenants.conf
m1  127.0.0.1:19911  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 rate=1r/m burst=3
m2  127.0.0.1:19913  token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122
_EOF_
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location = /metrics {
        claw_metrics;
    }

    location /claw/ {
        claw_admin;
    }
_EOC_
    }

    ClawTest::fresh_zone($block);
});

sub traffic {
    my @m1 = ("Host: m1.claw.test", "Authorization: Bearer alice-token-1");
    my @s = map { ClawTest::http_get($_, @m1) } "/", "/", "/", "/nf", "/";
    push @s, ClawTest::http_get("/", "Host: m1.claw.test",
                                "Authorization: Bearer wrong-$_") for 1 .. 2;
    die "traffic: @s\n" unless "@s" eq "200 200 200 404 429 401 401";

    # http_get returns on the status line: a request is counted in its
    # log phase, which may come a moment later
    for (1 .. 100) {
        my (undef, $page) = ClawTest::http_request(GET => '/metrics');
        my $n = 0;
        $n += $1 while $page =~ /^claw_requests_total\{tenant="m1",code="\dxx"\} (\d+)$/mg;
        last if $n >= 7;
        Time::HiRes::sleep(0.05);
    }
}

run_tests();

__DATA__

=== TEST 1: counters by status class, failures and refusals, in the exposition format
--- init
main::traffic();
--- request
GET /metrics
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body_like eval
my $any = '(?:.*\n)*';
my $re = join "",
    '\A# HELP claw_requests_total [^\n]+\n# TYPE claw_requests_total counter\n',
    'claw_requests_total\{tenant="m1",code="1xx"\} 0\n',
    'claw_requests_total\{tenant="m1",code="2xx"\} 3\n',
    'claw_requests_total\{tenant="m1",code="3xx"\} 0\n',
    'claw_requests_total\{tenant="m1",code="4xx"\} 4\n',
    'claw_requests_total\{tenant="m1",code="5xx"\} 0\n',
    'claw_requests_total\{tenant="m2",code="1xx"\} 0\n', $any,
    '# TYPE claw_auth_failures_total counter\n',
    'claw_auth_failures_total\{tenant="m1"\} 2\n',
    'claw_auth_failures_total\{tenant="m2"\} 0\n', $any,
    '# TYPE claw_rate_limited_total counter\n',
    'claw_rate_limited_total\{tenant="m1"\} 1\n', $any,
    '# TYPE claw_active_requests gauge\n',
    'claw_active_requests\{tenant="m1"\} 0\n', $any,
    '# TYPE claw_bytes_sent_total counter\n',
    'claw_bytes_sent_total\{tenant="m1"\} [1-9]\d+\n',
    'claw_bytes_sent_total\{tenant="m2"\} 0\n',
    '# HELP claw_auth_lockouts_total [^\n]+\n',
    '# TYPE claw_auth_lockouts_total counter\n',
    'claw_auth_lockouts_total\{tenant="m1"\} 0\n',
    'claw_auth_lockouts_total\{tenant="m2"\} 0\n',
    '# HELP claw_revoked_total [^\n]+\n# TYPE claw_revoked_total counter\n',
    'claw_revoked_total\{tenant="m1"\} 0\n',
    'claw_revoked_total\{tenant="m2"\} 0\n',
    '# HELP claw_upstream_up [^\n]+\n# TYPE claw_upstream_up gauge\n',
    'claw_upstream_up\{tenant="m1"\} 1\n',
    'claw_upstream_up\{tenant="m2"\} 1\n',
    '# HELP claw_refused_total [^\n]+\n# TYPE claw_refused_total counter\n',
    'claw_refused_total\{tenant="m1",reason="rate"\} 1\n',
    'claw_refused_total\{tenant="m1",reason="conn"\} 0\n',
    'claw_refused_total\{tenant="m1",reason="lockout"\} 0\n',
    'claw_refused_total\{tenant="m1",reason="auth"\} 2\n',
    'claw_refused_total\{tenant="m1",reason="suspended"\} 0\n',
    'claw_refused_total\{tenant="m1",reason="maintenance"\} 0\n',
    'claw_refused_total\{tenant="m1",reason="address"\} 0\n',
    'claw_refused_total\{tenant="m1",reason="body"\} 0\n',
    'claw_refused_total\{tenant="m1",reason="down"\} 0\n', $any,
    '# HELP claw_tenants [^\n]+\n# TYPE claw_tenants gauge\n',
    'claw_tenants 2\n', $any,
    'claw_zone_bytes_used [1-9]\d+\n', $any,
    'claw_zone_bytes_total 1048576\n',
    '# HELP claw_upstream_failures_total [^\n]+\n',
    '# TYPE claw_upstream_failures_total counter\n',
    'claw_upstream_failures_total 0\n',
    '# HELP claw_upstream_header_seconds [^\n]+\n',
    '# TYPE claw_upstream_header_seconds histogram\n',
    'claw_upstream_header_seconds_bucket\{le="0.005"\} \d\n', $any,
    'claw_upstream_header_seconds_bucket\{le="\+Inf"\} 4\n',
    'claw_upstream_header_seconds_sum \d+\.\d{3}\n',
    'claw_upstream_header_seconds_count 4\n',
    '# HELP claw_build_info [^\n]+\n# TYPE claw_build_info gauge\n',
    'claw_build_info\{version="\d+\.\d+\.\d+",nginx="1\.\d+\.\d+"\} 1\n\z';
qr/$re/
--- no_error_log
[alert]



=== TEST 2: a request in flight, WebSocket or not, is an active request
--- init
ClawTest::http_background("/_c/respond?sleep=1500", "Host: m2.claw.test",
                          "Authorization: Bearer bob-token-1");
select(undef, undef, undef, 0.5);
--- request
GET /metrics
--- response_body_like: claw_active_requests\{tenant="m2"\} 1\n



=== TEST 3: counters survive a reload
--- init
main::traffic();
ClawTest::nginx_reload() or die "reload refused\n";
--- request
GET /metrics
--- response_body_like: claw_requests_total\{tenant="m1",code="2xx"\} 3\n



=== TEST 4: a deleted tenant's counters go with it
--- init
main::traffic();
my ($s) = ClawTest::http_request(DELETE => "/claw/tenants/m1");
die "delete: $s\n" unless $s == 204;
--- request
GET /metrics
--- response_body_unlike: tenant="m1"
--- response_body_like: claw_tenants 1\n



=== TEST 5: metrics are read-only
--- request
POST /metrics
--- error_code: 405



=== TEST 6: a page of thousands of tenants comes whole, made a buffer at a time
6,000 tenants make some 3 MB, about fifty buffers: every line is there,
in order, and the page ends with the totals.
--- http_config
    claw_zone claw:16m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
--- user_files eval
">>> tenants.conf\n" . CORE::join("", map { sprintf "tenant%04d 127.0.0.1:19911\n", $_ } 1 .. 6000)
--- request
GET /metrics
--- response_body_like eval
my $ids = CORE::join "", map { sprintf 'claw_requests_total\{tenant="tenant%04d",code="1xx"\} 0\n(?:[^\n]+\n){4}', $_ } 1 .. 6000;
qr/\A# HELP claw_requests_total [^\n]+\n# TYPE[^\n]+\n$ids# HELP claw_auth_failures_total.*\nclaw_bytes_sent_total\{tenant="tenant6000"\} 0\n.*\nclaw_revoked_total\{tenant="tenant6000"\} 0\n.*\nclaw_refused_total\{tenant="tenant6000",reason="wake"\} 0\n.*\nclaw_wake_failures_total\{tenant="tenant6000"\} 0\n# HELP claw_tenants[^\n]+\n# TYPE[^\n]+\nclaw_tenants 6000\n.*claw_zone_bytes_total 16777216\n.*claw_build_info\{[^\n]*\} 1\n\z/s
--- no_error_log
[error]



=== TEST 7: HEAD: the headers alone
--- request
HEAD /metrics
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body



=== TEST 8: claw_metrics tenants=off: the sums with no tenant label, for fleets too large for a series each; a container that refuses is a failed attempt
--- config
    location = /metrics {
        claw_metrics tenants=off;
    }
--- user_files
>>> tenants.conf
m1  127.0.0.1:19911  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 rate=1r/m burst=3
m2  127.0.0.1:19913  token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122
m3  127.0.0.1:19914  token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122
--- init
main::traffic();
my @m3 = ("Host: m3.claw.test", "Authorization: Bearer bob-token-1");
my $s = ClawTest::http_get("/", @m3);
die "m3: $s\n" unless $s == 502;
--- request
GET /metrics
--- response_body_like eval
my $re = join "",
    '\A# HELP claw_requests_total [^\n]+\n# TYPE claw_requests_total counter\n',
    'claw_requests_total\{code="1xx"\} 0\n',
    'claw_requests_total\{code="2xx"\} 3\n',
    'claw_requests_total\{code="3xx"\} 0\n',
    'claw_requests_total\{code="4xx"\} 4\n',
    'claw_requests_total\{code="5xx"\} 1\n',
    '# HELP claw_auth_failures_total [^\n]+\n# TYPE[^\n]+\n',
    'claw_auth_failures_total 2\n',
    '(?:.*\n)*',
    'claw_upstream_up 3\n',
    '# HELP claw_refused_total [^\n]+\n# TYPE[^\n]+\n',
    'claw_refused_total\{reason="rate"\} 1\n',
    '(?:.*\n)*',
    'claw_tenants 3\n',
    '(?:.*\n)*',
    'claw_upstream_failures_total 1\n';
qr/$re/
--- response_body_unlike: tenant=




=== TEST 9: claw_metrics upstream=tenants: failed attempts and answer times by tenant, which sum to the edge's
--- config
    location = /metrics {
        claw_metrics upstream=tenants;
    }
--- user_files
>>> tenants.conf
m1  127.0.0.1:19911  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 rate=1r/m burst=3
m3  127.0.0.1:19914  token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122
--- init
main::traffic();
my @m3 = ("Host: m3.claw.test", "Authorization: Bearer bob-token-1");
my $s = ClawTest::http_get("/", @m3);
die "m3: $s\n" unless $s == 502;
--- request
GET /metrics
--- response_body_like eval
my $re = join "",
    '# HELP claw_upstream_failures_total [^\n]+\n',
    '# TYPE claw_upstream_failures_total counter\n',
    'claw_upstream_failures_total\{tenant="m1"\} 0\n',
    'claw_upstream_failures_total\{tenant="m3"\} 1\n',
    '# HELP claw_upstream_header_seconds [^\n]+\n',
    '# TYPE claw_upstream_header_seconds histogram\n',
    'claw_upstream_header_seconds_bucket\{tenant="m1",le="0.005"\} \d\n',
    '(?:claw_upstream_header_seconds_bucket\{tenant="m1",[^\n]+\n){10}',
    'claw_upstream_header_seconds_bucket\{tenant="m1",le="\+Inf"\} 4\n',
    'claw_upstream_header_seconds_sum\{tenant="m1"\} \d+\.\d{3}\n',
    'claw_upstream_header_seconds_count\{tenant="m1"\} 4\n',
    '(?:claw_upstream_header_seconds_bucket\{tenant="m3",[^\n]+\} 0\n){12}',
    'claw_upstream_header_seconds_sum\{tenant="m3"\} 0\.000\n',
    'claw_upstream_header_seconds_count\{tenant="m3"\} 0\n',
    '# HELP claw_tenants ';
qr/$re/
--- response_body_unlike: claw_upstream_failures_total \d|claw_upstream_header_seconds_count \d



=== TEST 10: claw_metrics: upstream=tenants needs the tenant series
--- config
    location = /metrics {
        claw_metrics upstream=tenants tenants=off;
    }
--- must_die
--- error_log
"upstream=tenants" of "claw_metrics" needs the tenant series that "tenants=off" turns off



=== TEST 11: ... an unknown parameter is named
--- config
    location = /metrics {
        claw_metrics tenants=no;
    }
--- must_die
--- error_log
invalid parameter "tenants=no" of "claw_metrics": "tenants=off" and "upstream=tenants" are known



=== TEST 12: a page of tenants with long ids, resumed at every buffer boundary: each family's help once
--- user_files eval
">>> tenants.conf\n" . CORE::join("", map { sprintf "%s%04d 127.0.0.1:19911\n", 'x' x 59, $_ } 1 .. 400)
--- config
    location = /metrics {
        claw_metrics upstream=tenants;
    }
--- request
GET /metrics
--- response_body_unlike: (?s)(# HELP (claw_\w+) ).*# HELP \2 
--- no_error_log
[error]
