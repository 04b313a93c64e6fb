# Routing: a request reaches the container of the tenant its one canonical
# host names, and no other.  Hosts that name no tenant (other labels,
# suffix tricks, addresses, malformed names) reach no container at all.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

repeat_each(2);
no_shuffle();
no_root_location();

# alice: IPv4, bob: IPv6 with a custom domain, carol: unix socket,
# dave: the same container address as alice (pool isolation)
our $Tenants = <<'_EOF_';
# id     upstream                    options
alice    127.0.0.1:19851             token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1
bob      [::1]:19852                 domain=Agent.Bob.DEV.
carol    unix:$TEST_NGINX_SERVER_ROOT/carol.sock
dave     127.0.0.1:19851
_EOF_

$Tenants =~ s/\$TEST_NGINX_SERVER_ROOT/$ENV{TEST_NGINX_SERVER_ROOT}/g;

our $HttpConfig = <<'_EOC_';
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;

    upstream claw {
        claw_balancer;
        keepalive 8;
    }

    server {
        listen 127.0.0.1:19851;
        return 200 "alice-container c=$connection n=$connection_requests host=$http_host\n";
    }

    server {
        listen [::1]:19852;
        return 200 "bob-container host=$http_host\n";
    }

    server {
        listen unix:$TEST_NGINX_SERVER_ROOT/carol.sock;
        return 200 "carol-container host=$http_host\n";
    }
_EOC_

our $Proxy = <<'_EOC_';
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        add_header X-Tenant "$claw_tenant" always;
        add_header X-Upstream "$claw_upstream" always;
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", $HttpConfig);
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", ">>> tenants.conf\n$Tenants");
    }

    if (!defined $block->config) {
        $block->set_value("config", <<_EOC_);
    server_tokens off;
    claw_domain claw.test;

    location / {
        claw on;
$Proxy
    }

    location /off {
        claw off;
        return 200 "tenant=[\$claw_tenant]\\n";
    }
_EOC_
    }

    ClawTest::fresh_zone($block);
});

run_tests();

__DATA__

=== TEST 1: a tenant's subdomain reaches its container
--- request
GET /
--- more_headers
Host: alice.claw.test
--- response_body_like: ^alice-container .* host=alice\.claw\.test$
--- response_headers
X-Tenant: alice
X-Upstream: 127.0.0.1:19851
--- no_error_log
[error]



=== TEST 2: upper case, a trailing dot and a port resolve alike
--- request
GET /
--- more_headers
Host: ALICE.Claw.Test.:1984
--- response_body_like: ^alice-container
--- response_headers
X-Tenant: alice
--- no_error_log
[error]



=== TEST 3: an IPv6 container
--- request
GET /
--- more_headers
Host: bob.claw.test
--- response_body
bob-container host=bob.claw.test
--- response_headers
X-Tenant: bob
X-Upstream: [::1]:19852
--- no_error_log
[error]



=== TEST 4: a custom domain reaches its tenant only, in any case
--- request
GET /
--- more_headers
Host: agent.BOB.dev.
--- response_body
bob-container host=agent.bob.dev
--- response_headers
X-Tenant: bob
--- no_error_log
[error]



=== TEST 5: a unix socket container
--- request
GET /
--- more_headers
Host: carol.claw.test
--- response_body
carol-container host=carol.claw.test
--- response_headers
X-Tenant: carol
--- no_error_log
[error]



=== TEST 6: unknown tenant: generic 404, no container touched
--- request
GET /
--- more_headers
Host: mallory.claw.test
--- error_code: 404
--- response_body_unlike: mallory|alice|1985|nginx/
--- response_headers
X-Tenant:
--- no_error_log
claw balancer
http upstream
[error]



=== TEST 7: two labels before the suffix match nothing
--- request
GET /
--- more_headers
Host: a.alice.claw.test
--- error_code: 404
--- no_error_log
claw balancer
[error]



=== TEST 8: the bare suffix matches nothing
--- request
GET /
--- more_headers
Host: claw.test
--- error_code: 404
--- no_error_log
claw balancer
[error]



=== TEST 9: the suffix inside another name matches nothing
--- request
GET /
--- more_headers
Host: alice.claw.test.evil.com
--- error_code: 404
--- no_error_log
claw balancer
[error]



=== TEST 10: a name that merely ends like the suffix matches nothing
--- request
GET /
--- more_headers
Host: aliceclaw.test
--- error_code: 404
--- no_error_log
claw balancer
[error]



=== TEST 11: a bare IPv4 address matches nothing
--- request
GET /
--- more_headers
Host: 127.0.0.1
--- error_code: 404
--- no_error_log
claw balancer
[error]



=== TEST 12: a bare IPv6 address matches nothing
--- request
GET /
--- more_headers
Host: [::1]:1984
--- error_code: 404
--- no_error_log
claw balancer
[error]



=== TEST 13: localhost matches nothing
--- request
GET /
--- more_headers
Host: localhost
--- error_code: 404
--- no_error_log
claw balancer
[error]



=== TEST 14: no Host at all (HTTP/1.0) matches nothing
--- raw_request eval
"GET / HTTP/1.0\r\n\r\n"
--- error_code: 404
--- no_error_log
claw balancer
[error]



=== TEST 15: a non-LDH label is a malformed host
--- request
GET /
--- more_headers
Host: al_ice.claw.test
--- error_code: 400
--- error_log
claw: malformed host "al_ice.claw.test"
--- no_error_log
claw balancer
[error]



=== TEST 16: raw UTF-8 in the host is a malformed host
--- raw_request eval
"GET / HTTP/1.1\r\nHost: al\xc3\xafce.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- no_error_log
claw balancer
[error]



=== TEST 17: an overlong label is a malformed host
--- request
GET /
--- more_headers eval
"Host: " . ("a" x 64) . ".claw.test"
--- error_code: 400
--- no_error_log
claw balancer
[error]



=== TEST 18: an overlong host is a malformed host
--- request
GET /
--- more_headers eval
"Host: " . ("abcdefgh." x 40) . "claw.test"
--- error_code: 400
--- no_error_log
claw balancer
[error]



=== TEST 19: the host of an absolute-form request line is the one used
--- raw_request eval
"GET http://bob.claw.test/ HTTP/1.1\r\nHost: alice.claw.test\r\nConnection: close\r\n\r\n"
--- response_body
bob-container host=bob.claw.test
--- response_headers
X-Tenant: bob
--- no_error_log
[error]



=== TEST 20: two Host headers are refused before routing
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\nHost: bob.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- no_error_log
claw balancer
[error]



=== TEST 21: claw off: nothing is resolved
--- request
GET /off
--- more_headers
Host: alice.claw.test
--- response_body
tenant=[]
--- no_error_log
[error]



=== TEST 22: claw_tenant fixes the tenant of a per-tenant server block
--- config
    location / {
        claw on;
        claw_tenant bob;
        proxy_pass http://claw;
        proxy_set_header Host $host;
    }
--- request
GET /
--- more_headers
Host: anything.example.org
--- response_body
bob-container host=anything.example.org
--- no_error_log
[error]



=== TEST 23: claw_tenant naming a tenant missing from the registry: 404
--- config
    location / {
        claw on;
        claw_tenant zoe;
        proxy_pass http://claw;
    }
--- request
GET /
--- error_code: 404
--- no_error_log
claw balancer
[error]



=== TEST 24: claw_balancer without a resolved tenant: 502, no container
--- config
    location / {
        proxy_pass http://claw;
    }
--- request
GET /
--- more_headers
Host: alice.claw.test
--- error_code: 502
--- response_body_unlike: alice-container
--- error_log
claw: no tenant admitted by "claw on" for this request, not connecting to any container
--- no_error_log
claw balancer:



=== TEST 25: claw_unknown_status 444 closes the connection
# 444 is no status on the wire: nginx closes the connection without a byte
# of an answer.  An empty "--- error_code" and "--- response_body" assert
# exactly that (both runners read the status of no response as "", and
# its body as ""): a 404 page, any status line, or a cut answer fails.
# The access line says the 444 was the module's and was not a crash.
--- config
    claw_domain claw.test;
    claw_unknown_status 444;
    location / {
        claw on;
        proxy_pass http://claw;
    }
--- request
GET /
--- more_headers
Host: mallory.claw.test
--- error_code:
--- response_body
--- access_log eval
qr{"GET / HTTP/1\.1" 444 0 }
--- no_error_log
claw balancer
[error]
[alert]



=== TEST 26: several claw_domain suffixes
--- config
    claw_domain claw.test;
    claw_domain agents.example.net;
    location / {
        claw on;
        proxy_pass http://claw;
        proxy_set_header Host $host;
    }
--- request
GET /
--- more_headers
Host: carol.agents.example.net
--- response_body
carol-container host=carol.agents.example.net
--- no_error_log
[error]



=== TEST 27: routing is computed once: a rewrite does not move the tenant
--- config
    claw_domain claw.test;
    location / {
        claw on;
        rewrite ^ /again last;
    }
    location /again {
        claw on;
        proxy_pass http://claw;
        proxy_set_header Host $host;
        add_header X-Tenant $claw_tenant;
    }
--- request
GET /
--- more_headers
Host: carol.claw.test
--- response_body
carol-container host=carol.claw.test
--- response_headers
X-Tenant: carol
--- no_error_log
[error]
