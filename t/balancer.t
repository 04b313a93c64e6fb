# claw_balancer: the peer is the resolved tenant's container; with
# "keepalive" or "claw_keepalive" after it, connections are pooled per
# container and a pooled connection never serves another tenant, even one
# that shares the container's address.  Without either, nothing is pooled,
# also with nginx 1.29.7+, which pools every upstream{} by default.  WebSocket upgrades stay pinned to
# the tenant.  A request that fails on a pooled connection is sent once
# more, on a fresh one, and never again: a container that resets every
# connection costs its client a prompt 502 and itself two copies of the
# request, whatever proxy_next_upstream says, with either pool.

use lib 't/perl';
use ClawTest;
use IO::Socket::IP;
use Time::HiRes ();
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
gina     127.0.0.1:19866  token=sha256:4568a05747d32798c530bd94b5abe7cb568967e600d6061cf24d5868a659c90d
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

# The upstream and the server of the retry blocks: $pool is "keepalive 8"
# or "claw_keepalive 8"; $next a proxy_next_upstream line or nothing.
sub retry_http_config {
    my ($pool) = @_;
    return <<"_EOC_";
    claw_zone claw:1m;
    claw_tenants \$TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    upstream claw {
        claw_balancer;
        $pool;
    }
_EOC_
}

sub retry_config {
    my ($next) = @_;
    return <<"_EOC_";
    claw_domain claw.test;

    location = /report.txt {
    }

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        $next
    }
_EOC_
}

# One request to nginx, given up after 5 s: (status or "none", seconds,
# body).
sub timed_request {
    my ($method, $path, $host) = @_;
    my $t0 = Time::HiRes::time();
    my $raw = ClawTest::http_raw("$method $path HTTP/1.1\r\nHost: $host\r\n"
                                 . "Content-Length: 4\r\n"
                                 . "Connection: close\r\n\r\nbody", 5);
    my $dt = Time::HiRes::time() - $t0;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.1 (\d{3})};
    return ($status // 'none', $dt, $body // '');
}

# The requests with $tag in the URI that the container on 19866 received,
# from its own log (asked directly, not through nginx): for each, which
# request on its connection it was (1: a new connection), in order.
sub copies {
    my ($tag) = @_;
    my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => 19866,
                                   Timeout => 5)
        or die "copies: connect to the container: $!\n";
    print $sock "GET /_c/log HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n";
    local $/;
    my $log = <$sock> // '';
    close $sock;
    return map { / req=(\d+) .*\Q$tag\E(?:&|$)/ ? $1 : () } split /\n/, $log;
}

# "pooled" connections of the tenant's (erin unless told) are left in the
# pool, then its request "method" (GET) "path" goes to the container; the
# report: its status, whether it came within 5 s, and how many copies of
# it the container saw, on which request of their connections.
sub after_pooled {
    my (%arg) = @_;
    my $host = ($arg{tenant} // 'erin') . '.claw.test';
    my $auth = 'Authorization: Bearer ' . ($arg{tenant} // 'erin') . '-token-1';
    my $tag = "t=$$-" . int(rand(1e9));
    my $path = "$arg{path}&$tag";

    # the others are held busy by slow requests while the last one is
    # made, so that each is a connection of its own
    if ($arg{pooled}) {
        my @bg = map { ClawTest::http_status_background(
                           "/_c/respond?sleep=1000&$tag-bg", "Host: $host",
                           $auth) }
                 2 .. $arg{pooled};
        my $deadline = Time::HiRes::time() + 10;
        while (copies("$tag-bg") < @bg && Time::HiRes::time() < $deadline) {
            Time::HiRes::sleep(0.02);
        }
        ClawTest::http_get("/", "Host: $host", $auth);
        ClawTest::background_status($_) for @bg;
    }

    my ($status, $dt, $body) = timed_request($arg{method} // 'GET', $path,
                                             "$host\r\n$auth");
    my @copies = copies($tag);
    my @report = ("status: $status",
                  "within 5 s: " . ($dt < 5 ? "yes" : "no"),
                  "copies: " . @copies,
                  "requests on their connections: "
                  . (@copies > 5 ? "..." : "@copies"));
    push @report, "answered on a fresh connection: "
                  . ($body =~ /^request-on-connection: 1$/m ? "yes" : "no")
        if $status eq '200';
    return @report;
}

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
(nginx 1.29.7+ would pool them by default: claw_balancer turns that off)
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



=== TEST 2a: keepalive 0 with claw_balancer: nothing pooled, nginx starts
nginx 1.29.7+ only: before, "keepalive 0" is an invalid value.
--- skip_nginx: 6: < 1.29.7
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        keepalive 0;
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
Before nginx 1.29.7 "keepalive" wraps the balancer set when it is read.
--- skip_nginx: 2: >= 1.29.7
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



=== TEST 4a: keepalive before claw_balancer pools per tenant too
Since nginx 1.29.7 "keepalive" wraps the balancer once http{} is read, in
either order: alice's connection is reused, dave gets his own (n=1, or
n=2 on the repeated run), never alice's.
--- skip_nginx: 9: < 1.29.7
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        keepalive 8;
        claw_balancer;
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
[qr/^shared-container n=\d+$/, qr/^shared-container n=(?:[2-9]|\d\d+)$/,
 qr/^shared-container n=[12]$/]
--- no_error_log
[error]



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



=== TEST 12: a full claw_keepalive pool lets its least recently used connection go for a tenant asked for more often, and only then
With room for one connection: alice's is pooled; bob, asked for as often
as alice, does not take its place (his connection is closed); asked for
more often, he does, and alice starts over.  Before the admission check a
full pool always gave up its least recently used connection (bob's second
request reused his first connection).
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

    location = /report.txt {
    }

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
--- init
my @seen;
for my $who (qw(alice bob bob bob alice)) {
    my ($status, $body) = ClawTest::http_request('GET', "/$who");
    chomp $body;
    push @seen, "$who: $status $body";
}
ClawTest::report(@seen);
--- request
GET /report.txt
--- response_body
alice: 200 shared-container n=1
bob: 200 bob-container n=1
bob: 200 bob-container n=1
bob: 200 bob-container n=2
alice: 200 shared-container n=1
--- no_error_log
[error]



=== TEST 12a: a full claw_keepalive pool gives up a tenant's spare connection for anyone
alice's two connections fill the pool (one held by a slow answer while the
other is opened); bob, asked for no more often than alice, takes the place
of her least recently used one, since she keeps another; alice's other one
is still there.  Before, her count kept both, and bob's connection was
closed (his second request started over).
--- http_config eval
# 2 KB at 1 KB/s, or 256 bytes/s under valgrind: a second or seven
my $rate = $ENV{TEST_NGINX_USE_VALGRIND} ? 256 : 1024;
my $hold = 'x' x 2048;
<<"_EOC_"
    server {
        listen 127.0.0.1:19861;
        location = /alice/slow {
            limit_rate $rate;
            return 200 "$hold\n";
        }
        location / {
            return 200 "shared-container n=\$connection_requests\n";
        }
    }

    server {
        listen 127.0.0.1:19862;
        return 200 "bob-container n=\$connection_requests\n";
    }

    claw_zone claw:1m;
    claw_tenants \$TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 2;
    }
_EOC_
--- config
    claw_domain claw.test;

    location = /report.txt {
    }

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
--- init
my @seen;
my $get = sub {
    my ($path) = @_;
    my ($status, $body) = ClawTest::http_request('GET', $path);
    chomp $body;
    push @seen, "$path: $status $body";
};
# the slow answer read to its end, so that its connection is kept
pipe(my $r, my $w) or die "pipe: $!\n";
my $pid = fork // die "fork: $!\n";
if ($pid == 0) {
    close $r;
    my ($status) = eval { ClawTest::http_request('GET', '/alice/slow') };
    print $w ($status // 0), "\n";
    close $w;
    POSIX::_exit(0);
}
close $w;
Time::HiRes::sleep(ClawTest::patience(0.3));
$get->('/alice');
my $status = <$r> // "0\n";
waitpid $pid, 0;
chomp $status;
push @seen, "/alice/slow: $status";
$get->('/bob');
$get->('/bob');
$get->('/alice');
ClawTest::report(@seen);
--- request
GET /report.txt
--- response_body
/alice: 200 shared-container n=1
/alice/slow: 200
/bob: 200 bob-container n=1
/bob: 200 bob-container n=2
/alice: 200 shared-container n=2
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



=== TEST 14a: claw_keepalive timeout= counts from each connection's last use, for every connection of the pool
alice's connection and bob's are left idle 0.6 s apart; 1.2 s after
alice's, 0.6 s after bob's, with timeout=1s, alice's is gone and bob's is
used again; bob's, used again, is still there 0.6 s later.
--- http_config eval
<<'_EOC_' . $::Backends
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 8 timeout=1s;
    }
_EOC_
--- config
    claw_domain claw.test;

    location = /report.txt {
    }

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
--- init
my @seen;
my $get = sub {
    my ($who) = @_;
    my ($status, $body) = ClawTest::http_request('GET', '/', undef,
                                                 "Host: $who.claw.test");
    chomp $body;
    push @seen, "$who: $status $body";
};
$get->('alice');
Time::HiRes::sleep(0.6);
$get->('bob');
Time::HiRes::sleep(0.6);
$get->('bob');
$get->('alice');
Time::HiRes::sleep(0.6);
$get->('bob');
ClawTest::report(@seen);
--- request
GET /report.txt
--- response_body
alice: 200 shared-container n=1
bob: 200 bob-container n=1
bob: 200 bob-container n=2
alice: 200 shared-container n=1
bob: 200 bob-container n=3
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



=== TEST 17a: ... keepalive 0 too, which claw_balancer sets by itself
nginx 1.29.7+ only: before, "keepalive 0" is an invalid value.
--- skip_nginx: 2: < 1.29.7
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
    upstream claw {
        claw_balancer;
        claw_keepalive 8;
        keepalive 0;
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



=== TEST 23: claw_keepalive: a container that resets every request once connections are pooled: 502 at once, two copies
The request fails on a pooled connection, is sent once more on a new one
(not the other pooled one), which is reset too, and the client gets its
502.  gina has no pooled connection: her request is not sent again.
--- http_config eval: main::retry_http_config('claw_keepalive 8')
--- config eval: main::retry_config('')
--- init
ClawTest::report(main::after_pooled(pooled => 2,
                                    path => '/_c/respond?action=reset'),
                 map { "gina $_" }
                 main::after_pooled(tenant => 'gina',
                                    path => '/_c/respond?action=reset'));
--- timeout: 10
--- request
GET /report.txt
--- response_body
status: 502
within 5 s: yes
copies: 2
requests on their connections: 2 1
gina status: 502
gina within 5 s: yes
gina copies: 1
gina requests on their connections: 1
--- no_error_log
[alert]
[crit]



=== TEST 24: keepalive after claw_balancer: the same, with two pooled connections: the retry on a new connection too
The keepalive module looks for an idle connection after claw_balancer's
get: a retry's address carries another tag, which no pooled connection
has, so it is not given the second pooled connection either.
--- http_config eval: main::retry_http_config('keepalive 8')
--- config eval: main::retry_config('')
--- init
ClawTest::report(main::after_pooled(pooled => 2,
                                    path => '/_c/respond?action=reset'),
                 map { "gina $_" }
                 main::after_pooled(tenant => 'gina',
                                    path => '/_c/respond?action=reset'));
--- timeout: 10
--- request
GET /report.txt
--- response_body
status: 502
within 5 s: yes
copies: 2
requests on their connections: 2 1
gina status: 502
gina within 5 s: yes
gina copies: 1
gina requests on their connections: 1
--- no_error_log
[alert]
[crit]



=== TEST 25: claw_keepalive, proxy_next_upstream off: one copy, 502
--- http_config eval: main::retry_http_config('claw_keepalive 8')
--- config eval: main::retry_config('proxy_next_upstream off;')
--- init
ClawTest::report(main::after_pooled(pooled => 1,
                                    path => '/_c/respond?action=reset'));
--- timeout: 10
--- request
GET /report.txt
--- response_body
status: 502
within 5 s: yes
copies: 1
requests on their connections: 2
--- no_error_log
[alert]
[crit]



=== TEST 26: keepalive after claw_balancer, proxy_next_upstream off: one copy, 502
--- http_config eval: main::retry_http_config('keepalive 8')
--- config eval: main::retry_config('proxy_next_upstream off;')
--- init
ClawTest::report(main::after_pooled(pooled => 2,
                                    path => '/_c/respond?action=reset'));
--- timeout: 10
--- request
GET /report.txt
--- response_body
status: 502
within 5 s: yes
copies: 1
requests on their connections: 2
--- no_error_log
[alert]
[crit]



=== TEST 27: claw_keepalive, a POST with non_idempotent and http_502 in proxy_next_upstream: two copies, 502
--- http_config eval: main::retry_http_config('claw_keepalive 8')
--- config eval
main::retry_config('proxy_next_upstream error timeout http_502 non_idempotent;')
--- init
ClawTest::report(main::after_pooled(pooled => 2, method => 'POST',
                                    path => '/_c/respond?action=reset'));
--- timeout: 10
--- request
GET /report.txt
--- response_body
status: 502
within 5 s: yes
copies: 2
requests on their connections: 2 1
--- no_error_log
[alert]
[crit]



=== TEST 28: keepalive after claw_balancer, the same POST: two copies, 502
--- http_config eval: main::retry_http_config('keepalive 8')
--- config eval
main::retry_config('proxy_next_upstream error timeout http_502 non_idempotent;')
--- init
ClawTest::report(main::after_pooled(pooled => 2, method => 'POST',
                                    path => '/_c/respond?action=reset'));
--- timeout: 10
--- request
GET /report.txt
--- response_body
status: 502
within 5 s: yes
copies: 2
requests on their connections: 2 1
--- no_error_log
[alert]
[crit]



=== TEST 29: claw_keepalive: a pooled connection the container dropped is retried once, on a fresh connection, and answered
The container resets (then, for "closed", closes) a kept-alive
connection at its next request, and answers a new one.
--- http_config eval: main::retry_http_config('claw_keepalive 8')
--- config eval: main::retry_config('')
--- init
ClawTest::report(main::after_pooled(pooled => 1,
                     path => '/_c/respond?action=reset&when=reused'),
                 map { "closed $_" }
                 main::after_pooled(tenant => 'gina', pooled => 1,
                     path => '/_c/respond?action=close&when=reused'));
--- timeout: 10
--- request
GET /report.txt
--- response_body
status: 200
within 5 s: yes
copies: 2
requests on their connections: 2 1
answered on a fresh connection: yes
closed status: 200
closed within 5 s: yes
closed copies: 2
closed requests on their connections: 2 1
closed answered on a fresh connection: yes
--- no_error_log
[alert]
[crit]



=== TEST 30: keepalive after claw_balancer: the same
--- http_config eval: main::retry_http_config('keepalive 8')
--- config eval: main::retry_config('')
--- init
ClawTest::report(main::after_pooled(pooled => 1,
                     path => '/_c/respond?action=reset&when=reused'),
                 map { "closed $_" }
                 main::after_pooled(tenant => 'gina', pooled => 1,
                     path => '/_c/respond?action=close&when=reused'));
--- timeout: 10
--- request
GET /report.txt
--- response_body
status: 200
within 5 s: yes
copies: 2
requests on their connections: 2 1
answered on a fresh connection: yes
closed status: 200
closed within 5 s: yes
closed copies: 2
closed requests on their connections: 2 1
closed answered on a fresh connection: yes
--- no_error_log
[alert]
[crit]
