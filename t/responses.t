# What a container may not do through its answers, with the example
# proxy settings (examples/claw-proxy.conf) included as operators include
# them: set cookies for the parent domain (they would reach every tenant)
# or for the session cookie's name, steer nginx with X-Accel-* headers;
# and what a client may not do: pose as the edge with forwarding headers.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();
no_root_location();

$ENV{TEST_NGINX_CLAW_ROOT} ||= File::Spec->rel2abs('.');

start_containers(['alice', '127.0.0.1:19951']);

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw_tenant {
        claw_balancer;
        keepalive 8;
    }

    map $http_upgrade $claw_connection_upgrade {
        default  upgrade;
        ''       '';
    }
_EOC_

    $block->set_value("user_files", <<'_EOF_');
>>> tenants.conf
alice  127.0.0.1:19951  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1
>>> secret.txt
the internal file
_EOF_

    $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;

    location / {
        claw on;
        include $TEST_NGINX_CLAW_ROOT/examples/claw-proxy.conf;
    }

    location /internal/ {
        internal;
        alias $TEST_NGINX_SERVER_ROOT/html/;
    }
_EOC_

    if (!defined $block->more_headers) {
        $block->set_value("more_headers",
            "Host: alice.claw.test\nAuthorization: Bearer alice-token-1\n");
    }

    ClawTest::fresh_zone($block);
});

run_tests();

__DATA__

=== TEST 1: a cookie for the parent domain is dropped
--- request
GET /_c/respond?h=Set-Cookie:shared=1;%20Domain=claw.test;%20Path=/&h=Set-Cookie:own=2;%20Path=/
--- raw_response_headers_unlike: shared=1
--- raw_response_headers_like: Set-Cookie: own=2; Path=/\r\n
--- error_log
claw: Set-Cookie of tenant "alice" dropped: "shared=1; Domain=claw.test; Path=/"



=== TEST 2: ... with a leading dot, in any case
--- request
GET /_c/respond?h=Set-Cookie:shared=1;%20domain=.CLAW.test
--- raw_response_headers_unlike: Set-Cookie



=== TEST 3: a cookie for an unrelated domain is dropped
--- request
GET /_c/respond?h=Set-Cookie:x=1;%20Domain=example.org
--- raw_response_headers_unlike: Set-Cookie



=== TEST 4: a cookie for the tenant's own host is kept
--- request
GET /_c/respond?h=Set-Cookie:mine=1;%20Domain=alice.claw.test;%20Secure
--- raw_response_headers_like: Set-Cookie: mine=1; Domain=alice.claw.test; Secure\r\n
--- no_error_log
dropped



=== TEST 5: a container cannot set the session cookie
--- request
GET /_c/respond?h=Set-Cookie:__Host-claw=forged;%20Path=/;%20Secure
--- raw_response_headers_unlike: __Host-claw
--- error_log
dropped: "__Host-claw=forged



=== TEST 6: X-Accel-Redirect from a container is ignored and hidden
--- request
GET /_c/respond?h=X-Accel-Redirect:/internal/secret.txt&body=container-body
--- response_body: container-body
--- raw_response_headers_unlike: X-Accel



=== TEST 7: forwarding headers are the edge's, never the client's
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
X-Forwarded-For: 10.6.6.6
X-Real-IP: 10.6.6.6
Forwarded: for=10.6.6.6
X-Forwarded-Host: evil.example
X-Forwarded-Proto: https
--- request
GET /
--- response_body_like: header: x-forwarded-for: 127\.0\.0\.1\n(?s:.*)header: x-forwarded-proto: http\n(?s:.*)header: x-forwarded-host: alice\.claw\.test\n(?s:.*)header: x-real-ip: 127\.0\.0\.1\n(?s:.*)header: x-claw-tenant: alice\n
--- response_body_unlike: 10\.6\.6\.6|evil|forwarded: for
