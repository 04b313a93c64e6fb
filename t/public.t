# A location with "claw_auth off" (a health check, a shared page) is
# routed to the tenant's container with no credential, and so must never
# be a tunnel, whatever else the location says: only GET and HEAD, no
# request body, no upgrade (WebSocket), the container sees the path as
# nginx normalised it (and matched the location with), not the target as
# the client wrote it, and no identity ($claw_identity is empty).  The
# proxy settings are the shipped examples/claw-proxy.conf, as an operator
# would include them.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
no_shuffle();
no_root_location();

start_containers(['alice', '127.0.0.1:19941']);

our $Tenants = <<'_EOF_';
alice  127.0.0.1:19941  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 conn=1
_EOF_

# what the container saw of the last requests, from its own log
sub seen {
    my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => 19941,
                                   Timeout => 5)
        or die "seen: $!\n";
    print $sock "GET /_c/log HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n";
    local $/;
    my $log = <$sock> // '';
    close $sock;
    return $log;
}

add_block_preprocessor(sub {
    my $block = shift;
    my ($n) = $block->name =~ /TEST (\d+)/;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<"_EOC_");
    claw_zone public_$n:1m;
    claw_tenants \$TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw_tenant {
        claw_balancer;
        claw_keepalive 8;
    }

    map \$http_upgrade \$claw_connection_upgrade {
        default  upgrade;
        ''       '';
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
        include $TEST_NGINX_CLAW_ROOT/examples/claw-proxy.conf;
    }

    location = /healthz {
        claw on;
        claw_auth off;
        include $TEST_NGINX_CLAW_ROOT/examples/claw-proxy.conf;
    }

    location /share/ {
        claw on;
        claw_auth off;
        include $TEST_NGINX_CLAW_ROOT/examples/claw-proxy.conf;
    }

    location = /report.txt {
    }
_EOC_
    }

    $block->set_value("more_headers", "Host: alice.claw.test")
        unless defined $block->more_headers || defined $block->raw_request;
});

run_tests();

__DATA__

=== TEST 1: a public GET reaches the container with no credential and no identity
--- request
GET /healthz
--- error_code: 200
--- response_body_like
uri: /healthz
--- response_body_unlike: x-claw-tenant
--- no_error_log
[error]



=== TEST 2: an authenticated request carries the identity the container may trust
--- request
GET /api
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- error_code: 200
--- response_body_like
header: x-claw-tenant: alice
--- no_error_log
[error]



=== TEST 3: a client's own X-Claw-Tenant never reaches the container of a public location
--- request
GET /healthz
--- more_headers
Host: alice.claw.test
X-Claw-Tenant: alice
X-Claw-Identity: alice
--- error_code: 200
--- response_body_unlike: x-claw-
--- no_error_log
[error]



=== TEST 4: HEAD is public too
--- request
HEAD /healthz
--- error_code: 200
--- no_error_log
[error]



=== TEST 5: any other method: 405 with Allow, and the container sees nothing
--- request eval
["POST /healthz\naaaa", "PUT /share/x\naaaa", "DELETE /healthz", "OPTIONS /healthz", "PATCH /share/x\naaaa"]
--- error_code eval
[405, 405, 405, 405, 405]
--- response_headers eval
["Allow: GET, HEAD", "Allow: GET, HEAD", "Allow: GET, HEAD",
 "Allow: GET, HEAD", "Allow: GET, HEAD"]
--- error_log
refused where "claw_auth" is off
--- no_error_log
[error]



=== TEST 6: ... and a body and an upgrade: not one of those requests reached the container
--- init
ClawTest::http_request($_, '/healthz', 'aaaa', 'Host: alice.claw.test') for qw(POST PUT PATCH);
ClawTest::http_raw("GET /healthz HTTP/1.1\r\nHost: alice.claw.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", 5);
ClawTest::http_raw(ClawTest::ws_handshake_request(path => '/healthz', host => 'alice.claw.test'), 5);
my @lines = grep { /conn=/ } split /\n/, main::seen();
my @bad = grep { !/ (?:GET|HEAD) \// || /upgrade|with=/ } @lines;
ClawTest::report("requests the container saw other than a plain GET: "
                 . scalar(@bad), @bad);
--- request
GET /report.txt
--- more_headers
Host: localhost
--- response_body
requests the container saw other than a plain GET: 0



=== TEST 7: a GET with a body (Content-Length or chunked): 413, the container sees nothing
--- raw_request eval
["GET /healthz?with=length HTTP/1.1\r\nHost: alice.claw.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
 "GET /healthz?with=chunks HTTP/1.1\r\nHost: alice.claw.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"]
--- error_code eval
[413, 413]
--- no_error_log
[error]



=== TEST 8: a WebSocket upgrade of a public location: 403, no tunnel, with a claw_token too
--- raw_request eval
[ClawTest::ws_handshake_request(path => '/healthz', host => 'alice.claw.test')
 . ClawTest::ws_frame('hi'),
 ClawTest::ws_handshake_request(path => '/share/chat?claw_token=alice-token-1', host => 'alice.claw.test')
 . ClawTest::ws_frame('hi')]
--- error_code eval
[403, 403]
--- error_log
an upgrade refused where "claw_auth" is off
--- no_error_log
[error]



=== TEST 9: raw targets that nginx normalises to a public path reach the container as that path, never as written
--- request eval
["GET /api/agent/..%2F..%2Fhealthz?x=1",
 "GET /secret/%2e%2e/healthz",
 "GET /admin;/../healthz",
 "GET /share/a/../b/%2e%2e/c%20d?y=2",
 "GET //share///e"]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_body_like eval
["uri: /healthz\\?x=1\n", "uri: /healthz\n", "uri: /healthz\n",
 "uri: /share/c%20d\\?y=2\n", "uri: /share/e\n"]
--- no_error_log
[error]



=== TEST 10: the container never saw any of the raw targets, and the client's $request_uri is the normalised one too
--- init
ClawTest::http_get($_, 'Host: alice.claw.test')
    for '/api/agent/..%2F..%2Fhealthz?x=1', '/secret/%2e%2e/healthz',
        '/admin;/../healthz';
my @lines = grep { /conn=/ } split /\n/, main::seen();
ClawTest::report("raw targets the container saw: "
                 . scalar(grep { /%2F|%2e|;\/|\/\.\.|\/\/\// } @lines),
                 "public requests it saw: " . scalar(grep { /healthz/ } @lines));
--- request
GET /report.txt
--- more_headers
Host: localhost
--- response_body_like
^raw targets the container saw: 0
public requests it saw: [1-9]



=== TEST 11: public requests are no tunnel even at a tenant's concurrency limit (conn=1): a stream of them is answered one by one
--- request eval
["GET /healthz", "GET /healthz", "GET /healthz"]
--- error_code eval
[200, 200, 200]
--- no_error_log
[error]
