# claw_balancer: the peer is the resolved tenant's container; with
# "keepalive" or "claw_keepalive" after it, connections are pooled per
# container and a pooled connection never serves another tenant, even one
# that shares the container's address.  WebSocket upgrades stay pinned to
# the tenant.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

repeat_each(2);
no_shuffle();
no_root_location();

start_containers(['alice-ws', '127.0.0.1:19866']);

# alice and dave share one container address
our $Tenants = <<'_EOF_';
alice    127.0.0.1:19861
dave     127.0.0.1:19861
erin     127.0.0.1:19866  token=sha256:28b00d1eb9c325af53158f954e515ec60dbda2cd88ef483e180bb33139e95eb1
frank    127.0.0.1:19869
bob      127.0.0.1:19862
_EOF_

our $Backends = <<'_EOC_';
    server {
        listen 127.0.0.1:19861;
        return 200 "shared-container n=$connection_requests\n";
    }

    server {
        listen 127.0.0.1:19862;
        return 200 "bob-container n=$connection_requests\n";
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

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
        proxy_set_header Connection "";
    }
_EOC_
    }

    ClawTest::fresh_zone($block);
});

run_tests();

__DATA__

=== TEST 1: keepalive after claw_balancer pools the container connection
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        keepalive 8;
    }
_EOC_
--- request eval
["GET /", "GET /"]
--- more_headers
Host: alice.claw.test
--- response_body_like eval
[qr/^shared-container n=\d+$/, qr/^shared-container n=(?:[2-9]|\d\d+)$/]
--- no_error_log
[error]



=== TEST 2: without keepalive every request opens a new connection
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
    }
_EOC_
--- request eval
["GET /", "GET /"]
--- more_headers
Host: alice.claw.test
--- response_body eval
["shared-container n=1\n", "shared-container n=1\n"]
--- no_error_log
[error]



=== TEST 3: a connection pooled for one tenant never serves another
The container behind alice and dave is the same address: dave must get
a connection of its own (n=1, or n=2 on the repeated run, when dave's own
connection from the first run is reused), never alice's (n>=3).
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        keepalive 8;
    }
_EOC_
--- config
    claw_domain claw.test;

    location /alice {
        claw on;
        claw_tenant alice;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }

    location /dave {
        claw on;
        claw_tenant dave;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
--- request eval
["GET /alice", "GET /alice", "GET /dave"]
--- response_body_like eval
[qr/n=\d+$/, qr/n=\d+$/, qr/^shared-container n=[12]$/]
--- no_error_log
[error]



=== TEST 4: keepalive before claw_balancer is refused, not silently lost
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        keepalive 8;
        claw_balancer;
    }
--- request
GET /
--- must_die
--- error_log
"claw_balancer" must be the first balancing directive in upstream "claw", before "keepalive"



=== TEST 5: server lines next to claw_balancer are refused
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        server 127.0.0.1:19861;
    }
--- request
GET /
--- must_die
--- error_log
upstream "claw" with "claw_balancer" cannot have "server" lines



=== TEST 6: server lines before claw_balancer are refused
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        server 127.0.0.1:19861;
        claw_balancer;
    }
--- request
GET /
--- must_die
--- error_log
upstream "claw" with "claw_balancer" takes its peers from the tenant registry



=== TEST 7: a WebSocket upgrade reaches the tenant's container and a frame comes back
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        keepalive 8;
    }
--- config
    claw_domain claw.test;

    location / {
        claw on;
        claw_auth on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
    }
--- raw_request eval
ClawTest::ws_handshake_request(path => '/chat?once=1', host => 'erin.claw.test',
                               headers => ['Authorization: Bearer erin-token-1'])
. ClawTest::ws_frame('hi there')
--- error_code: 101
--- raw_response_headers_like eval
qr/Sec-WebSocket-Accept: \Q${\ ClawTest::ws_accept_for_fixed_key()}\E\r\n/
--- response_body_like eval
qr/hello from alice-ws.*alice-ws: hi there/s
--- no_error_log
[error]



=== TEST 8: a refused container connection: 502 for that tenant
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        keepalive 8;
    }
_EOC_
--- request
GET /
--- more_headers
Host: frank.claw.test
--- error_code: 502
--- response_body_unlike: 19869|frank
--- error_log
connect() failed (111: Connection refused) while connecting to upstream



=== TEST 9: ... and nobody else notices
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        keepalive 8;
    }
_EOC_
--- request eval
["GET /", "GET /"]
--- more_headers
Host: alice.claw.test
--- response_body_like eval
[qr/^shared-container/, qr/^shared-container/]
--- no_error_log
[error]



=== TEST 10: claw_keepalive pools the container connection
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 8;
    }
_EOC_
--- request eval
["GET /", "GET /", "GET /"]
--- more_headers
Host: alice.claw.test
--- response_body_like eval
[qr/^shared-container n=\d+$/, qr/^shared-container n=(?:[2-9]|\d\d+)$/,
 qr/^shared-container n=(?:[3-9]|\d\d+)$/]
--- no_error_log
[error]



=== TEST 11: claw_keepalive never gives one tenant's connection to another
alice and dave share the container address; dave gets n=1 (or n=2 on the
repeated run, with its own connection from the first), never alice's.
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 8;
    }
_EOC_
--- config
    claw_domain claw.test;

    location /alice {
        claw on;
        claw_tenant alice;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }

    location /dave {
        claw on;
        claw_tenant dave;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
--- request eval
["GET /alice", "GET /alice", "GET /alice", "GET /dave"]
--- response_body_like eval
[qr/n=\d+$/, qr/n=\d+$/, qr/n=\d+$/, qr/^shared-container n=[12]$/]
--- no_error_log
[error]



=== TEST 12: a full claw_keepalive pool lets its least recently used connection go
With room for one connection, bob's takes alice's place: alice starts over.
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 1;
    }
_EOC_
--- config
    claw_domain claw.test;

    location /alice {
        claw on;
        claw_tenant alice;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }

    location /bob {
        claw on;
        claw_tenant bob;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
--- request eval
["GET /alice", "GET /bob", "GET /bob", "GET /alice"]
--- response_body_like eval
[qr/^shared-container n=\d+$/, qr/^bob-container n=1$/,
 qr/^bob-container n=2$/, qr/^shared-container n=1$/]
--- no_error_log
[error]



=== TEST 13: claw_keepalive requests= closes a connection after that many requests
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 8 requests=2;
    }
_EOC_
--- request eval
["GET /", "GET /", "GET /", "GET /"]
--- more_headers
Host: alice.claw.test
--- response_body_like eval
[qr/n=[12]$/, qr/n=[12]$/, qr/n=[12]$/, qr/n=[12]$/]
--- no_error_log
[error]



=== TEST 14: claw_keepalive timeout= closes an idle connection
limit_req holds the second request back half a second, longer than the
100ms the idle connection may wait: it starts over.
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    limit_req_zone $server_name zone=pause:1m rate=2r/s;
    upstream claw {
        claw_balancer;
        claw_keepalive 8 timeout=100ms;
    }
_EOC_
--- config
    claw_domain claw.test;

    location / {
        limit_req zone=pause burst=10;
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
--- request eval
["GET /", "GET /"]
--- more_headers
Host: alice.claw.test
--- response_body eval
["shared-container n=1\n", "shared-container n=1\n"]
--- no_error_log
[error]



=== TEST 15: claw_keepalive without claw_balancer is refused
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_keepalive 8;
        claw_balancer;
    }
--- request
GET /
--- must_die
--- error_log
"claw_keepalive" needs "claw_balancer" before it in upstream "claw"



=== TEST 16: claw_keepalive and keepalive together are refused
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 8;
        keepalive 8;
    }
--- request
GET /
--- must_die
--- error_log
"claw_keepalive" and "keepalive" cannot both pool the connections of upstream "claw"



=== TEST 17: ... in either order
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        keepalive 8;
        claw_keepalive 8;
    }
--- request
GET /
--- must_die
--- error_log
"claw_keepalive" and "keepalive" cannot both pool the connections of upstream "claw"



=== TEST 18: claw_keepalive with a bad parameter is refused
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 8 idle=5s;
    }
--- request
GET /
--- must_die
--- error_log
invalid parameter "idle=5s"



=== TEST 19: claw_keepalive 0 is refused
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 0;
    }
--- request
GET /
--- must_die
--- error_log
invalid number of connections "0"



=== TEST 20: a claw_keepalive pool bigger than worker_connections gives way to clients
Every one of 80 tenants leaves an idle container connection behind, with
64 worker_connections: nginx takes idle connections back, the pool's
among them, when it runs short, and every client is answered; stub_status
counts no waiting client once it is over.
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 1000;
    }
--- config
    claw_domain claw.test;

    location = /report.txt {
    }

    location = /status {
        stub_status;
    }

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
--- user_files eval
">>> tenants.conf\n" . CORE::join("", map { sprintf "t%02d 127.0.0.1:19866\n", $_ } 1 .. 80)
--- init
my %status;
for my $n (1 .. 80) {
    $status{ ClawTest::http_get('/', sprintf('Host: t%02d.claw.test', $n)) }++;
}
my (undef, $page) = ClawTest::http_request('GET', '/status');
my ($waiting) = $page =~ /Waiting: (\d+)/;
ClawTest::report((map { "$_: $status{$_}" } sort keys %status),
                 "waiting: " . ($waiting // '?'));
--- request
GET /report.txt
--- response_body
200: 80
waiting: 0
--- no_error_log
[alert]
[error]



=== TEST 21: idle container connections are no waiting clients to stub_status
nginx counts the connections it may take back as "Waiting" clients; the
pool's are taken back too, and are not counted.
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 100;
    }
--- config
    claw_domain claw.test;

    location = /status {
        stub_status;
    }

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
--- user_files eval
">>> tenants.conf\n" . CORE::join("", map { sprintf "t%02d 127.0.0.1:19866\n", $_ } 1 .. 5)
--- init
for my $n (1 .. 5) {
    ClawTest::http_get('/', sprintf('Host: t%02d.claw.test', $n));
}
--- request
GET /status
--- response_body_like: Reading: 0 Writing: 1 Waiting: 0 $
--- no_error_log
[error]



=== TEST 22: ... nor once their time is up and they are closed
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 100 timeout=200ms;
    }
--- config
    claw_domain claw.test;

    location = /status {
        stub_status;
    }

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
--- user_files eval
">>> tenants.conf\n" . CORE::join("", map { sprintf "t%02d 127.0.0.1:19866\n", $_ } 1 .. 5)
--- init
for my $n (1 .. 5) {
    ClawTest::http_get('/', sprintf('Host: t%02d.claw.test', $n));
}
select(undef, undef, undef, 1);
--- request
GET /status
--- response_body_like: Reading: 0 Writing: 1 Waiting: 0 $
--- no_error_log
[error]
