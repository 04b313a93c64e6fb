# What a container may not do through its answers, with the example
# proxy settings (examples/claw-proxy.conf) included as operators include
# them: set cookies for the parent domain (they would reach every tenant),
# for its own custom domain when another tenant's domain lies under it
# (example.com of one tenant, app.example.com of another), or for the
# session cookie's name, steer nginx with X-Accel-* headers; and what a
# client may not do: pose as the edge with forwarding headers.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();
no_root_location();

$ENV{TEST_NGINX_CLAW_ROOT} ||= File::Spec->rel2abs('.');

start_containers(['alice', '127.0.0.1:19951']);

# carol owns corp.example and own.example with a name under each; dave
# owns app.corp.example, under carol's, and solo.example
our $Carol = sha256_hex('carol-token-1');
our $Dave = sha256_hex('dave-token-1');

our $Tenants = <<"_EOF_";
alice  127.0.0.1:19951  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1
carol  127.0.0.1:19951  token=sha256:$Carol domain=corp.example domain=www.corp.example domain=own.example domain=a.own.example
dave   127.0.0.1:19951  token=sha256:$Dave domain=app.corp.example domain=solo.example
_EOF_

# the Set-Cookie lines of a response, for --- init code
sub cookies_of {
    my ($head) = @_;
    return join '', map { "$_\n" } $head =~ /^Set-Cookie: ([^\r\n]*)/mig;
}

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

    $block->set_value("user_files", [
        ["tenants.conf" => $main::Tenants],
        ["secret.txt" => "the internal file\n"],
    ]);

    $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;

    location /claw/ {
        claw_admin;
    }

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



=== TEST 8: a cookie for a custom domain with another tenant's domain under it is dropped
--- request
GET /_c/respond?h=Set-Cookie:wide=1;%20Domain=corp.example;%20Path=/&h=Set-Cookie:own=2;%20Path=/
--- more_headers
Host: corp.example
Authorization: Bearer carol-token-1
--- raw_response_headers_unlike: wide=1
--- raw_response_headers_like: Set-Cookie: own=2; Path=/\r\n
--- error_log
claw: Set-Cookie of tenant "carol" dropped: "wide=1; Domain=corp.example; Path=/"



=== TEST 9: ... with a leading dot, in any case
--- request
GET /_c/respond?h=Set-Cookie:wide=1;%20domain=.Corp.Example
--- more_headers
Host: corp.example
Authorization: Bearer carol-token-1
--- raw_response_headers_unlike: Set-Cookie



=== TEST 10: a custom domain with only the tenant's own names under it keeps its cookie
--- request
GET /_c/respond?h=Set-Cookie:mine=1;%20Domain=own.example
--- more_headers
Host: own.example
Authorization: Bearer carol-token-1
--- raw_response_headers_like: Set-Cookie: mine=1; Domain=own.example\r\n
--- no_error_log
dropped
the custom domains are being indexed



=== TEST 11: ... and so do domains with nothing under them, of either tenant
--- init
my ($status, $body, $head) = ClawTest::http_request('GET',
    '/_c/respond?h=Set-Cookie:a=1;%20Domain=www.corp.example', undef,
    'Host: www.corp.example', 'Authorization: Bearer carol-token-1');
Test::More::is(main::cookies_of($head), "a=1; Domain=www.corp.example\n",
               "carol's www.corp.example");
($status, $body, $head) = ClawTest::http_request('GET',
    '/_c/respond?h=Set-Cookie:b=1;%20Domain=app.corp.example', undef,
    'Host: app.corp.example', 'Authorization: Bearer dave-token-1');
Test::More::is(main::cookies_of($head), "b=1; Domain=app.corp.example\n",
               "dave's app.corp.example, under carol's corp.example");
--- request
GET /_c/respond?h=Set-Cookie:c=1;%20Domain=solo.example
--- more_headers
Host: solo.example
Authorization: Bearer dave-token-1
--- raw_response_headers_like: Set-Cookie: c=1; Domain=solo.example\r\n
--- no_error_log
dropped



=== TEST 12: a domain registered under a tenant's domain takes the tenant's Domain cookies away at once
--- init
my ($status, $body, $head) = ClawTest::http_request('GET',
    '/_c/respond?h=Set-Cookie:d=1;%20Domain=solo.example', undef,
    'Host: solo.example', 'Authorization: Bearer dave-token-1');
Test::More::is(main::cookies_of($head), "d=1; Domain=solo.example\n",
               "kept while solo.example has nothing under it");
($status) = ClawTest::http_request('PUT', '/claw/tenants/carol',
    '{"upstream":"127.0.0.1:19951","tokens":["sha256:' . $main::Carol
    . '"],"domains":["corp.example","www.corp.example","own.example",'
    . '"a.own.example","shop.solo.example"]}');
Test::More::is($status, 200, "carol gets shop.solo.example");
--- request
GET /_c/respond?h=Set-Cookie:d=1;%20Domain=solo.example
--- more_headers
Host: solo.example
Authorization: Bearer dave-token-1
--- raw_response_headers_unlike: Set-Cookie
--- error_log
claw: Set-Cookie of tenant "dave" dropped: "d=1; Domain=solo.example"



=== TEST 13: a cookie without Domain is kept on any host
--- request
GET /_c/respond?h=Set-Cookie:host-only=1;%20Path=/
--- more_headers
Host: corp.example
Authorization: Bearer carol-token-1
--- raw_response_headers_like: Set-Cookie: host-only=1; Path=/\r\n
--- no_error_log
dropped
