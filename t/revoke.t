# Revocation ends what the credential opened: revoking a token (admin
# API), deleting its tenant, replacing the tenant without it (PUT), or a
# reload whose registry no longer has it, ends every WebSocket tunnel and
# every streamed answer that the token opened - with a Bearer token, with
# claw_token on the upgrade, or with a session cookie minted from it - on
# every worker, within 1 s of the admin API's answer (asserted: 1.5 s,
# measured from the 2xx).  What the tenant's other tokens opened, and
# other tenants' tunnels, stay up and keep relaying.  A request that is
# still being received when its token goes never reaches the container.
#
# Tunnels and streams are held by the --- init code itself (ClawTest's
# ws_open / stream_open / watch_closed), which writes what it found to
# html/report.txt; the block's request fetches it, so that a failure shows
# as a diff.  X-Pid (the worker's $pid) tells which worker holds a tunnel.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
worker_connections(1024);
no_shuffle();
no_root_location();

start_containers(['alice', '127.0.0.1:19955'], ['bob', '127.0.0.1:19956'],
                 ['carol', '127.0.0.1:19957']);

# alice has two tokens: A (alice-token-1) and B (alice-token-2)
our $HashA = ClawTest::sha256_hex('alice-token-1');
our $HashB = ClawTest::sha256_hex('alice-token-2');

our $Tenants = <<"_EOF_";
alice  127.0.0.1:19955  token=sha256:$HashA token=sha256:$HashB
bob    127.0.0.1:19956  token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122
carol  127.0.0.1:19957  token=sha256:43fec2207592005ce020d7e6f8d096f215c59b19224e3716fe52dd19e6d2ea7a
_EOF_

our @A = ("Authorization: Bearer alice-token-1");
our @B = ("Authorization: Bearer alice-token-2");
our @Bob = ("Authorization: Bearer bob-token-1");
our @Carol = ("Authorization: Bearer carol-token-1");

# the promise is 1 s; valgrind makes nginx many times slower
our $Limit = ClawTest::patience(1.5);

our $Stream = '/_c/respond?action=stream&every=100&count=40'
            . '&h=Content-Type:text/event-stream';

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/data/tenants.conf;
    claw_cookie_secret $TEST_NGINX_SERVER_ROOT/html/secret;
    claw_session_ttl 1h;

    upstream claw {
        claw_balancer;
        keepalive 8;
    }

    map $http_upgrade $claw_connection_upgrade {
        default upgrade;
        ''      '';
    }

    server {
        listen $TEST_NGINX_SERVER_PORT;
        server_name *.claw.test;
        claw_domain claw.test;

        # the example's proxy settings (examples/claw-proxy.conf)
        location / {
            claw on;
            proxy_pass http://claw;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $claw_connection_upgrade;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            add_header X-Pid $pid always;
        }

        # answers through nginx's buffers
        location /buffered/ {
            claw on;
            proxy_pass http://claw/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            add_header X-Pid $pid always;
        }

        # a body read whole before the container is connected
        location = /upload {
            claw on;
            proxy_pass http://claw;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering on;
        }
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", [
            ["data/tenants.conf" => $Tenants],
            ["secret" => "r" x 40],
        ]);
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location /claw/ {
        claw_admin;
        add_header X-Pid $pid always;
    }

    location = /metrics {
        claw_metrics;
    }

    location = /report.txt {
    }
_EOC_
    }

    if (!defined $block->request) {
        $block->set_value("request", "GET /report.txt\n");
    }

    ClawTest::fresh_zone($block);
});

# (status, body, head) of an admin API call
sub admin { ClawTest::http_request($_[0], "/claw/tenants$_[1]", $_[2]) }

# a tunnel of a tenant: ws("alice", @A)
sub ws {
    my ($id, @headers) = @_;
    return ClawTest::ws_open(path => '/ws', host => "$id.claw.test",
                             headers => \@headers);
}

# a streamed answer of a tenant
sub stream {
    my ($id, $path, @headers) = @_;
    return ClawTest::stream_open($path, "Host: $id.claw.test", @headers);
}

# what a tunnel answers to a message: the container's echo, or why not
sub echo {
    my ($c, $msg) = @_;
    return "not open (status $c->{status})" unless $c->{status} == 101;
    return ClawTest::ws_echo($c, $msg) // 'no answer';
}

# whether connections that must end ended within $Limit of $t0: "yes",
# or what was wrong with the first one that did not
sub closed_in_time {
    my ($t0, @conns) = @_;
    for my $c (@conns) {
        return 'no, still open' unless $c->{closed_at};
        my $dt = $c->{closed_at} - $t0;
        return sprintf('no, after %.2f s', $dt) if $dt > $Limit;
    }
    return @conns ? 'yes' : 'none to close';
}

# an admin API change, then $Limit seconds of watching the connections
# in @$all (those that must end and those that must not), from its
# answer on; returns (status, the time of the answer, the worker that
# served it)
sub revoke_and_watch {
    my ($method, $path, $body, $all) = @_;
    my ($s, undef, $head) = main::admin($method, $path, $body);
    my $t0 = Time::HiRes::time();
    my ($pid) = $head =~ /^X-Pid: (\d+)/mi;
    ClawTest::watch_closed($all, $t0 + $Limit - Time::HiRes::time());
    return ($s, $t0, $pid // 'none');
}

# a metric's value, or "none"
sub metric {
    my ($name) = @_;
    my (undef, $body) = ClawTest::http_request('GET', '/metrics');
    return $body =~ /^\Q$name\E (\d+)$/m ? $1 : 'none';
}

# the status of a new request of a tenant with these credentials
sub status_of { ClawTest::http_get('/', "Host: $_[0].claw.test", @_[1 .. $#_]) }

run_tests();

__DATA__

=== TEST 1: a revoked Bearer token's tunnel is closed; the tenant's other token's tunnel and another tenant's stay and relay
--- init
my $a = main::ws('alice', @::A);
my $b = main::ws('alice', @::B);
my $bob = main::ws('bob', @::Bob);
my @before = map { main::echo($_, 'before') } $a, $b, $bob;
my ($s, $t0) = main::revoke_and_watch(DELETE => "/alice/tokens/$::HashA",
                                      undef, [$a, $b, $bob]);
ClawTest::report("before: @before",
                 "revoke A: $s",
                 "A's tunnel closed in time: " . main::closed_in_time($t0, $a),
                 "B's tunnel after: " . main::echo($b, 'after'),
                 "bob's tunnel after: " . main::echo($bob, 'after'),
                 "a new request with A: " . main::status_of('alice', @::A),
                 "with B: " . main::status_of('alice', @::B));
close $_->{sock} for $a, $b, $bob;
--- response_body
before: alice: before alice: before bob: before
revoke A: 204
A's tunnel closed in time: yes
B's tunnel after: alice: after
bob's tunnel after: bob: after
a new request with A: 401
with B: 200
--- error_log
claw: request of tenant "alice" ended: its token is revoked
--- no_error_log
[alert]
[crit]



=== TEST 2: 2 workers: A's tunnels close on both, whichever worker served the revocation; B's survive on both
--- init
# tunnels until each token has some on each worker (the kernel picks the
# worker that accepts a connection)
my (%a, %b);
for (1 .. 60) {
    my $c = main::ws('alice', @::A);
    push @{ $a{$c->{pid} // 'none'} }, $c;
    $c = main::ws('alice', @::B);
    push @{ $b{$c->{pid} // 'none'} }, $c;
    last if keys %a >= 2 && keys %b >= 2;
}
my @a = map { @$_ } values %a;
my @b = map { @$_ } values %b;
Test::More::diag("A's tunnels by worker: " . join(', ', map { "$_: " . @{ $a{$_} } } sort keys %a)
                 . "; B's: " . join(', ', map { "$_: " . @{ $b{$_} } } sort keys %b))
    if $ENV{TEST_NGINX_VERBOSE};
my ($s, $t0, $pid) = main::revoke_and_watch(DELETE => "/alice/tokens/$::HashA",
                                            undef, [@a, @b]);
my @other = grep { $_ ne $pid } keys %a;
my @echo = grep { main::echo($_, 'after') eq 'alice: after' } @b;
ClawTest::report("A's tunnels on both workers: " . (keys %a == 2 ? 'yes' : 'no, on ' . join(' ', keys %a)),
                 "B's tunnels on both workers: " . (keys %b == 2 ? 'yes' : 'no, on ' . join(' ', keys %b)),
                 "revoke A: $s",
                 "the revocation served by one of them: " . ($a{$pid} ? 'yes' : "no, $pid"),
                 "A's tunnels on the other worker closed in time: "
                 . main::closed_in_time($t0, map { @{ $a{$_} } } @other),
                 "A's tunnels on the worker that served it closed in time: "
                 . main::closed_in_time($t0, @{ $a{$pid} // [] }),
                 "B's tunnels that still echo: " . (@echo == @b ? 'all' : scalar(@echo) . ' of ' . scalar(@b)));
close $_->{sock} for @a, @b;
--- response_body
A's tunnels on both workers: yes
B's tunnels on both workers: yes
revoke A: 204
the revocation served by one of them: yes
A's tunnels on the other worker closed in time: yes
A's tunnels on the worker that served it closed in time: yes
B's tunnels that still echo: all
--- error_log
claw: request of tenant "alice" ended: its token is revoked
--- no_error_log
[alert]
[crit]



=== TEST 3: a session cookie minted from A (login link) opens a tunnel; revoking A closes it, B's session tunnel stays
--- init
# the login link: 303 with the session cookie
my %cookie;
for my $t ([A => 'alice-token-1'], [B => 'alice-token-2']) {
    my ($s, undef, $head) = ClawTest::http_request(GET => "/?claw_token=$t->[1]",
                                                   undef, "Host: alice.claw.test");
    die "login link with $t->[0]: $s\n" unless $s == 303;
    ($cookie{$t->[0]}) = $head =~ /^Set-Cookie: __Host-claw=([^;\r\n]+)/mi
        or die "login link with $t->[0]: no session cookie\n";
}
my @origin = ("Origin: http://alice.claw.test");
my $a = main::ws('alice', @origin, "Cookie: __Host-claw=$cookie{A}");
my $b = main::ws('alice', @origin, "Cookie: __Host-claw=$cookie{B}");
my @before = map { main::echo($_, 'before') } $a, $b;
my ($s, $t0) = main::revoke_and_watch(DELETE => "/alice/tokens/$::HashA",
                                      undef, [$a, $b]);
ClawTest::report("before: @before",
                 "revoke A: $s",
                 "A's session tunnel closed in time: " . main::closed_in_time($t0, $a),
                 "B's session tunnel after: " . main::echo($b, 'after'),
                 "A's session on a new request: "
                 . main::status_of('alice', "Cookie: __Host-claw=$cookie{A}"));
close $_->{sock} for $a, $b;
--- response_body
before: alice: before alice: before
revoke A: 204
A's session tunnel closed in time: yes
B's session tunnel after: alice: after
A's session on a new request: 401
--- error_log
claw: request of tenant "alice" ended: its token is revoked
--- no_error_log
[alert]
[crit]



=== TEST 4: a tunnel opened with ?claw_token=A is closed when A is revoked; one with ?claw_token=B stays
--- init
my $a = ClawTest::ws_open(path => '/ws?claw_token=alice-token-1', host => 'alice.claw.test');
my $b = ClawTest::ws_open(path => '/ws?claw_token=alice-token-2', host => 'alice.claw.test');
my @before = map { main::echo($_, 'before') } $a, $b;
my ($s, $t0) = main::revoke_and_watch(DELETE => "/alice/tokens/$::HashA",
                                      undef, [$a, $b]);
ClawTest::report("before: @before",
                 "revoke A: $s",
                 "A's tunnel closed in time: " . main::closed_in_time($t0, $a),
                 "B's tunnel after: " . main::echo($b, 'after'));
close $_->{sock} for $a, $b;
--- response_body
before: alice: before alice: before
revoke A: 204
A's tunnel closed in time: yes
B's tunnel after: alice: after
--- log_level: info
--- error_log eval
qr/claw: request of tenant "alice" ended: its token is revoked.* request: "GET \/ws\?claw_token=\[redacted\] HTTP\/1\.1"/
--- no_error_log
[alert]
[crit]
alice-token-1



=== TEST 5: a stream (SSE, unbuffered) opened with A is cut without its last chunk; the same stream opened with B runs to its end
--- init
# 40 events 100 ms apart: about 4 s if nothing ends them
my $a = main::stream('alice', $::Stream, @::A);
my $b = main::stream('alice', $::Stream, @::B);
ClawTest::watch_closed([$a, $b], 0.5);
my ($s, $t0) = main::revoke_and_watch(DELETE => "/alice/tokens/$::HashA",
                                      undef, [$a]);
ClawTest::watch_closed([$a, $b], ClawTest::patience(8));
my ($sa, $ca, $lasta) = ClawTest::chunked_parts($a->{buf});
my ($sb, $cb, $lastb) = ClawTest::chunked_parts($b->{buf});
ClawTest::report("revoke A: $s",
                 "A's stream: $sa, events before the cut: " . (@$ca > 0 ? 'yes' : 'no'),
                 "A's stream closed in time: " . main::closed_in_time($t0, $a),
                 "A's stream cut short: " . (@$ca < 40 ? 'yes' : 'no'),
                 "A's stream with its last chunk: " . ($lasta ? 'yes' : 'no'),
                 "B's stream: $sb, events: " . scalar(@$cb),
                 "B's stream with its last chunk: " . ($lastb ? 'yes' : 'no'),
                 "B's last event: " . (($cb->[-1] // 'none') =~ s/\n+\z//r));
--- response_body
revoke A: 204
A's stream: 200, events before the cut: yes
A's stream closed in time: yes
A's stream cut short: yes
A's stream with its last chunk: no
B's stream: 200, events: 40
B's stream with its last chunk: yes
B's last event: data: 40
--- error_log
claw: request of tenant "alice" ended: its token is revoked
--- no_error_log
[alert]
[crit]



=== TEST 6: the same through nginx's buffers (proxy_buffering on): A's stream is cut, B's runs to its end
--- init
my $path = "/buffered$::Stream";
my $a = main::stream('alice', $path, @::A);
my $b = main::stream('alice', $path, @::B);
ClawTest::watch_closed([$a, $b], 0.5);
my ($s, $t0) = main::revoke_and_watch(DELETE => "/alice/tokens/$::HashA",
                                      undef, [$a]);
ClawTest::watch_closed([$a, $b], ClawTest::patience(8));
my ($sa, $ca, $lasta) = ClawTest::chunked_parts($a->{buf});
my ($sb, $cb, $lastb) = ClawTest::chunked_parts($b->{buf});
ClawTest::report("revoke A: $s",
                 "A's stream: $sa",
                 "A's stream closed in time: " . main::closed_in_time($t0, $a),
                 "A's stream with its last chunk: " . ($lasta ? 'yes' : 'no'),
                 "B's stream: $sb, all 40 events: "
                 . (join('', @$cb) eq join('', map { "data: $_\n\n" } 1 .. 40) ? 'yes' : 'no'),
                 "B's stream with its last chunk: " . ($lastb ? 'yes' : 'no'));
--- response_body
revoke A: 204
A's stream: 200
A's stream closed in time: yes
A's stream with its last chunk: no
B's stream: 200, all 40 events: yes
B's stream with its last chunk: yes
--- error_log
claw: request of tenant "alice" ended: its token is revoked
--- no_error_log
[alert]
[crit]



=== TEST 7: DELETE of the tenant: every tunnel and stream of it closes, whatever token opened it; another tenant's stays
--- init
my @alice = (main::ws('alice', @::A), main::ws('alice', @::B),
             main::ws('alice', @::A), main::ws('alice', @::B),
             main::stream('alice', $::Stream, @::B));
my $bob = main::ws('bob', @::Bob);
ClawTest::watch_closed(\@alice, 0.3);
my ($s, $t0) = main::revoke_and_watch(DELETE => "/alice", undef, [@alice, $bob]);
ClawTest::report("tunnels open: " . scalar(grep { $_->{status} && $_->{status} == 101 } @alice),
                 "delete alice: $s",
                 "alice's tunnels and stream closed in time: " . main::closed_in_time($t0, @alice),
                 "bob's tunnel after: " . main::echo($bob, 'after'),
                 "a new request with B: " . main::status_of('alice', @::B));
close $_->{sock} for @alice, $bob;
--- response_body
tunnels open: 4
delete alice: 204
alice's tunnels and stream closed in time: yes
bob's tunnel after: bob: after
a new request with B: 404
--- error_log
claw: request of tenant "alice" ended: the tenant is gone
--- no_error_log
[alert]
[crit]



=== TEST 8: PUT of the tenant without token A: A's tunnels close, B's stay
--- init
my @a = (main::ws('alice', @::A), main::ws('alice', @::A),
         ClawTest::ws_open(path => '/ws?claw_token=alice-token-1', host => 'alice.claw.test'));
my @b = (main::ws('alice', @::B), main::ws('alice', @::B));
my $bob = main::ws('bob', @::Bob);
my ($s, $t0) = main::revoke_and_watch(PUT => "/alice",
    qq({"upstream":"127.0.0.1:19955","tokens":["sha256:$::HashB"]}),
    [@a, @b, $bob]);
my @echo = grep { main::echo($_, 'after') eq 'alice: after' } @b;
ClawTest::report("put alice without A: $s",
                 "A's tunnels closed in time: " . main::closed_in_time($t0, @a),
                 "B's tunnels that still echo: " . scalar(@echo) . " of " . scalar(@b),
                 "bob's tunnel after: " . main::echo($bob, 'after'),
                 "a new request with A: " . main::status_of('alice', @::A),
                 "with B: " . main::status_of('alice', @::B));
close $_->{sock} for @a, @b, $bob;
--- response_body
put alice without A: 200
A's tunnels closed in time: yes
B's tunnels that still echo: 2 of 2
bob's tunnel after: bob: after
a new request with A: 401
with B: 200
--- error_log
claw: request of tenant "alice" ended: its token is revoked
--- no_error_log
[alert]
[crit]



=== TEST 9: a reload whose registry dropped token A and tenant carol: their tunnels close, B's and bob's stay
--- init
my @a = (main::ws('alice', @::A), main::ws('alice', @::A));
my @b = (main::ws('alice', @::B), main::ws('alice', @::B));
my $carol = main::ws('carol', @::Carol);
my $bob = main::ws('bob', @::Bob);
my @before = map { main::echo($_, 'before') } @a, @b, $carol, $bob;
(my $registry = $::Tenants) =~ s/ token=sha256:$::HashA//;
$registry =~ s/^carol .*\n//m;
ClawTest::write_file(ClawTest::servroot() . '/html/data/tenants.conf', $registry);
# (no 2xx to measure from: from the moment the new workers run; the
# tunnels are on the old ones, which stay for them)
my $ok = ClawTest::nginx_reload();
my $t0 = Time::HiRes::time();
ClawTest::watch_closed([@a, @b, $carol, $bob], $Limit);
my @echo = grep { main::echo($_, 'after') eq 'alice: after' } @b;
ClawTest::report("before: @before",
                 "reload: $ok",
                 "A's tunnels closed in time: " . main::closed_in_time($t0, @a),
                 "carol's tunnel closed in time: " . main::closed_in_time($t0, $carol),
                 "B's tunnels that still echo: " . scalar(@echo) . " of " . scalar(@b),
                 "bob's tunnel after: " . main::echo($bob, 'after'),
                 "a new request with A: " . main::status_of('alice', @::A),
                 "with B: " . main::status_of('alice', @::B));
close $_->{sock} for @a, @b, $carol, $bob;
--- response_body
before: alice: before alice: before alice: before alice: before carol: before bob: before
reload: 1
A's tunnels closed in time: yes
carol's tunnel closed in time: yes
B's tunnels that still echo: 2 of 2
bob's tunnel after: bob: after
a new request with A: 401
with B: 200
--- error_log
claw: request of tenant "alice" ended: its token is revoked
claw: request of tenant "carol" ended: the tenant is gone
--- no_error_log
[alert]
[crit]



=== TEST 10: the cuts are counted per tenant in the metrics page, and logged at notice
--- init
my ($s, undef, $head) = ClawTest::http_request(GET => "/?claw_token=alice-token-1",
                                               undef, "Host: alice.claw.test");
my ($cookie) = $head =~ /^Set-Cookie: __Host-claw=([^;\r\n]+)/mi;
my @a = (main::ws('alice', @::A),
         main::ws('alice', "Origin: http://alice.claw.test", "Cookie: __Host-claw=" . ($cookie // '')),
         main::stream('alice', $::Stream, @::A));
my @others = (main::ws('alice', @::B), main::ws('bob', @::Bob),
              main::stream('alice', $::Stream, @::B));
ClawTest::watch_closed([@a, @others], 0.3);
my @before = map { main::metric(qq(claw_revoked_total{tenant="$_"})) } qw(alice bob);
my $t0;
($s, $t0) = main::revoke_and_watch(DELETE => "/alice/tokens/$::HashA", undef, \@a);
my @after = map { main::metric(qq(claw_revoked_total{tenant="$_"})) } qw(alice bob);
ClawTest::report("before: alice $before[0], bob $before[1]",
                 "revoke A: $s",
                 "A's tunnels and stream closed in time: " . main::closed_in_time($t0, @a),
                 "after: alice $after[0], bob $after[1]");
close $_->{sock} for @a, @others;
--- response_body
before: alice 0, bob 0
revoke A: 204
A's tunnels and stream closed in time: yes
after: alice 3, bob 0
--- log_level: info
--- grep_error_log eval
qr/claw: request of tenant "\w+" ended: (?:its token is revoked|the tenant is gone)/
--- grep_error_log_out
claw: request of tenant "alice" ended: its token is revoked
claw: request of tenant "alice" ended: its token is revoked
claw: request of tenant "alice" ended: its token is revoked
--- error_log eval
qr/\[notice\] .*claw: request of tenant "alice" ended: its token is revoked/
--- no_error_log
[alert]
[crit]
alice-token-1



=== TEST 11: a request whose token is revoked while its body is still coming never reaches the container
--- init
my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
my $tag = "t11-$$-" . int(Time::HiRes::time() * 1000);
# an upload of 1000 bytes, 10 of them sent now, the rest after the revocation
my %up;
for my $who (qw(A B)) {
    my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port,
                                   Timeout => 5) or die "connect: $!\n";
    $sock->autoflush(1);
    print $sock "PUT /upload?$tag-$who HTTP/1.1\r\nHost: alice.claw.test\r\n"
        . "Authorization: Bearer alice-token-" . ($who eq 'A' ? 1 : 2) . "\r\n"
        . "Content-Length: 1000\r\nConnection: close\r\n\r\n" . ("x" x 10);
    $up{$who} = $sock;
}
# (the notice checked below says A's upload was in flight, admitted,
# when its token went)
select(undef, undef, undef, ClawTest::patience(0.3));
my ($s) = main::admin(DELETE => "/alice/tokens/$::HashA");
select(undef, undef, undef, ClawTest::patience(0.6));
local $SIG{PIPE} = 'IGNORE';
for my $part (1 .. 10) {
    for my $sock (values %up) { syswrite $sock, "y" x 99 }
    select(undef, undef, undef, 0.05);
}
my %answer;
for my $who (qw(A B)) {
    my $c = { sock => $up{$who}, buf => '' };
    ClawTest::watch_closed([$c], ClawTest::patience(5));
    $answer{$who} = $c->{buf} =~ m{^HTTP/1\.1 (\d{3})} ? $1
                  : $c->{closed_at} ? 'closed, no answer' : 'no answer, still open';
    close $up{$who};
}
my (undef, $log) = ClawTest::http_request(GET => '/_c/log', undef,
                                          "Host: alice.claw.test", @::B);
ClawTest::report("revoke A: $s",
                 "A's upload refused (502, or closed with no answer): "
                 . ($answer{A} =~ /^(?:502|closed, no answer)$/ ? 'yes' : "no, $answer{A}"),
                 "the container saw A's upload: " . ($log =~ /PUT \/upload\?\Q$tag\E-A/ ? 'yes' : 'no'),
                 "B's upload: $answer{B}",
                 "the container saw B's upload: " . ($log =~ /PUT \/upload\?\Q$tag\E-B/ ? 'yes' : 'no'));
--- response_body
revoke A: 204
A's upload refused (502, or closed with no answer): yes
the container saw A's upload: no
B's upload: 200
the container saw B's upload: yes
--- error_log
claw: request of tenant "alice" ended: its token is revoked
--- no_error_log
[alert]
[crit]



=== TEST 12: a reload that resizes the zone: the old workers end the tunnels they hold within seconds (a revocation in the new zone could not reach them); the new workers serve them again
--- init
my $file = ClawTest::servroot() . '/conf/nginx.conf';
my $a = main::ws('alice', @::A);
my $before = main::echo($a, 'before');
my $conf = ClawTest::slurp($file);
$conf =~ s/claw_zone (\S+):1m;/claw_zone $1:2m;/ or die "no zone in $file\n";
ClawTest::write_file($file, $conf);
my $ok = ClawTest::reload(timeout => 30, settle => 0);
my $t0 = Time::HiRes::time();
ClawTest::watch_closed([$a], ClawTest::patience(8));
my $dt = $a->{closed_at} ? $a->{closed_at} - $t0 : undef;
my $again = main::ws('alice', @::A);
ClawTest::report("before: $before",
                 "reload: $ok",
                 "the old worker's tunnel ended: " . (defined $dt ? ($dt <= ClawTest::patience(7) ? 'yes' : sprintf('after %.1f s', $dt)) : 'no'),
                 "a new tunnel: " . main::echo($again, 'again'));
close $_->{sock} for $a, $again;
--- timeout: 40
--- response_body
before: alice: before
reload: 1
the old worker's tunnel ended: yes
a new tunnel: alice: again
--- no_error_log
[alert]
[crit]



=== TEST 13: a tenant suspended through the API: its tunnels end within 1 s, new requests get 403 before any credential is checked; in maintenance 503 with Retry-After; active again, it serves; other tenants untouched
--- init
my $a = main::ws('alice', @::A);
my $bob = main::ws('bob', @::Bob);
my ($s, $t0) = main::revoke_and_watch(PATCH => '/alice', '{"state":"suspended"}',
                                      [$a, $bob]);
my @lines = ("suspend: $s",
             "alice's tunnel closed in time: " . main::closed_in_time($t0, $a),
             "bob's tunnel after: " . main::echo($bob, 'after'),
             "alice with a token: " . main::status_of('alice', @::A),
             "alice with none: " . main::status_of('alice'),
             "alice with a wrong one: " . main::status_of('alice', 'Authorization: Bearer nope'));
($s) = main::admin(PATCH => '/alice', '{"state":"maintenance"}');
my ($m, undef, $h) = ClawTest::http_request(GET => '/', '', 'Host: alice.claw.test', @::A);
my ($ra) = $h =~ /^Retry-After: (\d+)\r?$/mi;
push @lines, "maintenance: $s, a request: $m, Retry-After: " . ($ra // 'none');
($s) = main::admin(PATCH => '/alice', '{"state":null}');
push @lines, "active again: $s, a request: " . main::status_of('alice', @::A);
my (undef, $body) = main::admin(GET => '/alice');
push @lines, "state: " . ($body =~ /"state":"(\w+)"/ ? $1 : 'none');
ClawTest::report(@lines);
close $_->{sock} for $a, $bob;
--- response_body
suspend: 200
alice's tunnel closed in time: yes
bob's tunnel after: bob: after
alice with a token: 403
alice with none: 403
alice with a wrong one: 403
maintenance: 200, a request: 503, Retry-After: 60
active again: 200, a request: 200
state: active
--- error_log
claw: request of tenant "alice" ended: its token is revoked, or its tenant is no longer active
claw: tenant "alice" is suspended
--- no_error_log
[alert]
[crit]

