# Per-tenant limits: a request rate with a burst (GCRA, limit_req with
# nodelay) and a number of requests in flight, WebSocket tunnels included.
# Each tenant has its own, from one zone; over a limit is 429 with a
# Retry-After computed from the limiter; authentication comes first, so
# failed requests never spend a tenant's quota; nothing stays counted
# after a request ends, however it ends.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();
no_root_location();

start_containers(['slow', '127.0.0.1:19893']);

# alice: 2r/s burst=2; bob: 1r/m burst=0; carol: the server default
# (3r/s burst=1; a tenant's rate= alone keeps the server's burst); dave: one
# request in flight at a time (a container that can be slow)
our $Tenants = <<'_EOF_';
alice  127.0.0.1:19891  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 rate=2r/s burst=2
bob    127.0.0.1:19891  token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122 rate=1r/m burst=0
carol  127.0.0.1:19891  token=sha256:43fec2207592005ce020d7e6f8d096f215c59b19224e3716fe52dd19e6d2ea7a
dave   127.0.0.1:19893  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 conn=1
_EOF_

our @Alice = ("Host: alice.claw.test", "Authorization: Bearer alice-token-1");
our @Dave = ("Host: dave.claw.test", "Authorization: Bearer alice-token-1");

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_rate 3r/s burst=1;

    upstream claw {
        claw_balancer;
        keepalive 8;
    }

    server {
        listen 127.0.0.1:19891;
        return 200 "ok\n";
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", ">>> tenants.conf\n$Tenants");
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection $http_connection;
        proxy_set_header Upgrade $http_upgrade;
    }
_EOC_
    }

    ClawTest::fresh_zone($block);
});

run_tests();

__DATA__

=== TEST 1: a burst of burst + 1 requests, then 429 with Retry-After
--- request eval
["GET /", "GET /", "GET /", "GET /"]
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- error_code eval
[200, 200, 200, 429]
--- raw_response_headers_like eval
["", "", "", "Retry-After: 1\r\n"]



=== TEST 2: the rejection is logged once, at the configured level
--- config
    claw_domain claw.test;
    claw_limit_log_level warn;

    location / {
        claw on;
        proxy_pass http://claw;
    }
--- init
for (1 .. 3) {
    my $s = ClawTest::http_get("/", @::Alice);
    die "burst request got $s\n" unless $s == 200;
}
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- error_code: 429
--- error_log eval
qr/\[warn\] .*claw: tenant "alice" over its rate of 2 r\/s \(burst 2\)/
--- grep_error_log: over its rate
--- grep_error_log_out
over its rate



=== TEST 3: half a second refills one request at 2r/s
--- init
for (1 .. 3) {
    my $s = ClawTest::http_get("/", @::Alice);
    die "burst request got $s\n" unless $s == 200;
}
my $s = ClawTest::http_get("/", @::Alice);
die "the bucket should be empty, got $s\n" unless $s == 429;
select(undef, undef, undef, 0.6);
--- request eval
["GET /", "GET /"]
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- error_code eval
[200, 429]



=== TEST 4: 1.2 seconds refill two requests, not the whole burst
--- init
for (1 .. 3) {
    my $s = ClawTest::http_get("/", @::Alice);
    die "burst request got $s\n" unless $s == 200;
}
select(undef, undef, undef, 1.2);
--- request eval
["GET /", "GET /", "GET /"]
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- error_code eval
[200, 200, 429]



=== TEST 5: Retry-After comes from the limiter, not a constant
--- init
my $s = ClawTest::http_get("/", "Host: bob.claw.test",
                           "Authorization: Bearer bob-token-1");
die "the first request got $s\n" unless $s == 200;
--- request
GET /
--- more_headers
Host: bob.claw.test
Authorization: Bearer bob-token-1
--- error_code: 429
--- raw_response_headers_like: Retry-After: (?:5[6-9]|60)\r\n



=== TEST 6: a tenant without rate= takes the server's claw_rate
--- request eval
["GET /", "GET /", "GET /"]
--- more_headers
Host: carol.claw.test
Authorization: Bearer carol-token-1
--- error_code eval
[200, 200, 429]



=== TEST 7: tenants are independent: one over its limit, the other not
--- init
for (1 .. 4) {
    ClawTest::http_get("/", @::Alice);
}
--- request eval
["GET /", "GET /"]
--- more_headers
Host: carol.claw.test
Authorization: Bearer carol-token-1
--- error_code eval
[200, 200]



=== TEST 8: failed credentials never spend the tenant's quota
--- init
for my $i (1 .. 6) {
    my $s = ClawTest::http_get("/", "Host: alice.claw.test",
                               "Authorization: Bearer wrong-$i");
    die "a wrong token got $s\n" unless $s == 401;
}
--- request eval
["GET /", "GET /", "GET /", "GET /"]
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- error_code eval
[200, 200, 200, 429]



=== TEST 9: RateLimit-Policy and RateLimit headers, when asked for
(what is left depends on the milliseconds between the requests)
--- config
    claw_domain claw.test;
    claw_rate_headers on;

    location / {
        claw on;
        proxy_pass http://claw;
    }
--- request eval
["GET /", "GET /", "GET /", "GET /"]
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- error_code eval
[200, 200, 200, 429]
--- raw_response_headers_like eval
[qr/RateLimit-Policy: "tenant";q=3;w=2\r\nRateLimit: "tenant";r=2;t=1\r\n/,
 qr/RateLimit: "tenant";r=[12];t=1\r\n/,
 qr/RateLimit: "tenant";r=[01];t=[12]\r\n/,
 qr/RateLimit-Policy: "tenant";q=3;w=2\r\nRateLimit: "tenant";r=0;t=1\r\n/]



=== TEST 10: no RateLimit headers unless claw_rate_headers is on
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- raw_response_headers_unlike: RateLimit
--- error_code: 200



=== TEST 11: one request in flight at a time: the second gets 429
--- init
ClawTest::http_background("/_c/respond?sleep=1500", @::Dave);
select(undef, undef, undef, 0.4);
--- request
GET /
--- more_headers
Host: dave.claw.test
Authorization: Bearer alice-token-1
--- error_code: 429
--- raw_response_headers_like: Retry-After: 1\r\n
--- error_log
claw: tenant "dave" at its limit of 1 requests in flight



=== TEST 12: ... and 200 once it is over
--- init
ClawTest::http_get("/_c/respond?sleep=300", @::Dave) == 200
    or die "the slow request failed\n";
--- request
GET /
--- more_headers
Host: dave.claw.test
Authorization: Bearer alice-token-1
--- response_body_like: ^container: slow\n



=== TEST 13: an open WebSocket tunnel counts as a request in flight
--- init
ClawTest::tunnel_background(1, "/ws", @::Dave);
--- request
GET /
--- more_headers
Host: dave.claw.test
Authorization: Bearer alice-token-1
--- error_code: 429
--- error_log
claw: tenant "dave" at its limit of 1 requests in flight



=== TEST 14: clients that give up mid-request leave nothing counted
--- init
select(undef, undef, undef, 1);
for (1 .. 3) {
    my $s = ClawTest::http_hold("/_c/respond?sleep=5000", @::Dave);
    select(undef, undef, undef, 0.2);
    close $s;
}
select(undef, undef, undef, 0.5);
--- request eval
["GET /", "GET /"]
--- more_headers
Host: dave.claw.test
Authorization: Bearer alice-token-1
--- error_code eval
[200, 200]



=== TEST 15: limit state survives a reload with the same zone
--- init
for (1 .. 3) {
    my $s = ClawTest::http_get("/", "Host: bob.claw.test",
                               "Authorization: Bearer bob-token-1");
}
ClawTest::nginx_reload() or die "reload refused\n";
--- request
GET /
--- more_headers
Host: bob.claw.test
Authorization: Bearer bob-token-1
--- error_code: 429



=== TEST 16: a changed limit is followed after a reload, state kept
--- init
ClawTest::http_get("/", "Host: bob.claw.test",
                   "Authorization: Bearer bob-token-1") == 200
    or die "first request refused\n";
(my $t = $::Tenants) =~ s/rate=1r\/m burst=0/rate=1r\/m burst=3/;
ClawTest::write_file('html/tenants.conf', $t);
ClawTest::nginx_reload() or die "reload refused\n";
--- request eval
["GET /", "GET /", "GET /", "GET /"]
--- more_headers
Host: bob.claw.test
Authorization: Bearer bob-token-1
--- error_code eval
[200, 200, 200, 429]



=== TEST 17: a worker killed with a request in flight: nothing stays counted
--- init
ClawTest::http_background("/_c/respond?sleep=3000", @::Dave);
select(undef, undef, undef, 0.4);
my $s = ClawTest::http_get("/", @::Dave);
die "the limit should hold, got $s\n" unless $s == 429;
ClawTest::kill_workers('KILL');
select(undef, undef, undef, 1);
--- request
GET /
--- more_headers
Host: dave.claw.test
Authorization: Bearer alice-token-1
--- response_body_like: ^container: slow\n
--- error_log
requests (1 admitted), given back



=== TEST 18: a refusal is not undone by an error_page to another claw location
--- config
    claw_domain claw.test;

    location / {
        claw on;
        error_page 429 = @retry;
        proxy_pass http://claw;
    }

    location @retry {
        claw on;
        proxy_pass http://claw;
    }
--- request eval
["GET /", "GET /", "GET /", "GET /", "GET /"]
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- error_code eval
[200, 200, 200, 429, 429]



=== TEST 19: a bad claw_rate
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_rate 3r/h;
--- config
--- request
GET /
--- must_die
--- error_log
invalid rate "3r/h"



=== TEST 20: a bad burst
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_rate 3r/s burst=x;
--- config
--- request
GET /
--- must_die
--- error_log
invalid parameter "burst=x"



=== TEST 21: claw_rate_limit off: a location of immutable assets neither checks nor spends the tenant's rate
bob may make one request a minute: his assets are not counted.
--- config
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }

    location /assets/ {
        claw on;
        claw_rate_limit off;
        proxy_pass http://claw;
    }
--- request eval
["GET /", "GET /assets/a.js", "GET /assets/b.js", "GET /assets/c.css", "GET /assets/d.woff2", "GET /", "GET /assets/e.js"]
--- more_headers
Host: bob.claw.test
Authorization: Bearer bob-token-1
--- error_code eval
[200, 200, 200, 200, 200, 429, 200]
