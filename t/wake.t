# Scale to zero (claw_wake): a request for a tenant whose container is
# asleep is held while one call of the wake hook, across the workers,
# starts it, and goes on once it accepts; a hook that fails or never
# starts it gives 503 with Retry-After, and the next request tries again;
# idle tenants are listed for the platform's reaper.  The hook is
# t/bin/claw-wake-hook, which starts a tenant's container (the canary of
# t/bin/claw-container) a second after it is called.

use lib 't/perl';
use ClawTest qw(:DEFAULT spawn wait_port wait_until);
use Test::Nginx::Socket 'no_plan';
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);

master_on();
workers(2);
worker_connections(1024);
no_shuffle();
no_root_location();

our $Dir = tempdir('claw-wake-XXXXXX', TMPDIR => 1, CLEANUP => 1);
our $Calls = "$Dir/calls";

spawn("$Dir/hook.log", {}, $^X, 't/bin/claw-wake-hook',
      '--listen', '127.0.0.1:19990', '--log', $Calls, '--dir', $Dir,
      '--watch-pid', $$,
      '--tenant', 'w1=start:127.0.0.1:19991',
      '--tenant', 'w2=start:127.0.0.1:19992',
      '--tenant', 'w3=fail:127.0.0.1:19993',
      '--tenant', 'w4=never:127.0.0.1:19994',
      '--tenant', 'w5=start:127.0.0.1:19995',
      '--tenant', 'w6=start:127.0.0.1:19996',
      '--tenant', 'w7=start:127.0.0.1:19997',
      '--tenant', 'w9=never:127.0.0.1:19994',
      '--tenant', 'w10=start:127.0.0.1:19988',
      '--tenant', 'w11=never:127.0.0.1:19987',
      '--tenant', 'w12=never:127.0.0.1:19986',
      '--tenant', 'w13=never:127.0.0.1:19985',
      '--tenant', 'w14=start:127.0.0.1:19984',
      '--tenant', 'w15=start:127.0.0.1:19983',
      '--tenant', 'w16=late:127.0.0.1:19982',
      '--tenant', 'w17=hang:127.0.0.1:19981',
      '--tenant', 'w18=hang:127.0.0.1:19980');
wait_port(19990, 'claw-wake-hook');

start_containers(['other', '127.0.0.1:19998'], ['w8', '127.0.0.1:19999']);

our $Token = ClawTest::sha256_hex('wake-token');
our @Auth = ("Authorization: Bearer wake-token");

our $Tenants = join '', map { "$_->[0]  127.0.0.1:$_->[1]  "
                              . "token=sha256:$Token $_->[2]\n" }
    ['w1', 19991, 'state=asleep'], ['w2', 19992, 'state=asleep'],
    ['w3', 19993, 'state=asleep'], ['w4', 19994, 'state=asleep'],
    ['w5', 19995, 'state=asleep'], ['w6', 19996, 'state=asleep'],
    ['w7', 19997, 'state=asleep'], ['other', 19998, ''],
    ['w8', 19999, 'state=asleep'], ['w9', 19994, 'state=asleep conn=2'],
    map { ["w$_->[0]", $_->[1], 'state=asleep'] }
        [10, 19988], [11, 19987], [12, 19986], [13, 19985], [14, 19984],
        [15, 19983], [16, 19982], [17, 19981], [18, 19980];

# the hook's calls for a tenant
sub calls {
    my ($id) = @_;
    open my $fh, '<', $Calls or return 0;
    return scalar grep { / \Q$id\E$/ } <$fh>;
}

# many requests at once, each on its own connection: "status container
# seconds" of each
sub parallel {
    my ($n, $path, @headers) = @_;
    my $t0 = time;
    my @kids;
    for (1 .. $n) {
        pipe(my $r, my $w) or die "pipe: $!\n";
        my $pid = fork // die "fork: $!\n";
        if ($pid == 0) {
            close $r;
            my ($status, $body) = ClawTest::http_request('GET', $path,
                                                         undef, @headers);
            my ($who) = $body =~ /^container: (\S+)/m;
            printf $w "%s %s %.2f\n", $status, $who // '-', time - $t0;
            close $w;
            POSIX::_exit(0);
        }
        close $w;
        push @kids, [$pid, $r];
    }
    my @out;
    for my $k (@kids) {
        my $fh = $k->[1];
        my $line = <$fh> // "0 - 0\n";
        chomp $line;
        push @out, $line;
        waitpid $k->[0], 0;
    }
    return @out;
}

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

    map $http_upgrade $claw_connection_upgrade {
        default upgrade;
        ''      '';
    }

    server {
        listen $TEST_NGINX_SERVER_PORT;
        server_name *.claw.test;
        claw_domain claw.test;

        claw_wake /_claw_wake timeout=3s waiting=60;

        location / {
            claw on;
            proxy_pass http://claw;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $claw_connection_upgrade;
            proxy_set_header Host $host;
        }

        location /page/ {
            claw on;
            claw_wake /_claw_wake timeout=3s page=on;
            proxy_pass http://claw;
        }

        location /few/ {
            claw on;
            claw_wake /_claw_wake timeout=2s waiting=2;
            proxy_pass http://claw;
        }

        location /nowake/ {
            claw on;
            claw_wake off;
            proxy_pass http://claw;
        }

        # a 502 goes on to a location without claw_wake
        location /c502/ {
            claw on;
            proxy_pass http://127.0.0.1:19979;
            error_page 502 = /nowake/502;
        }

        # the hook in a location with "claw on", as a server-wide one makes
        location /hookclaw/ {
            claw on;
            claw_wake /_claw_wake_on timeout=3s;
            proxy_pass http://claw;
        }

        location = /_claw_wake_on {
            internal;
            claw on;
            proxy_pass http://127.0.0.1:19990/wake/$claw_tenant;
            proxy_method POST;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }

        location /public/ {
            claw on;
            claw_auth off;
            proxy_pass http://claw;
        }

        # a hook that never answers, behind a 1 s read timeout
        location /hang/ {
            claw on;
            claw_wake /_hang_wake timeout=3s waiting=1;
            proxy_pass http://claw;
        }

        location = /_hang_wake {
            internal;
            proxy_pass http://127.0.0.1:19990/wake/$claw_tenant;
            proxy_read_timeout 1s;
        }

        location /deadhook/ {
            claw on;
            claw_wake /_dead_wake timeout=3s;
            proxy_pass http://claw;
        }

        location = /_dead_wake {
            internal;
            proxy_pass http://127.0.0.1:19989/wake/$claw_tenant;
        }

        location = /_claw_wake {
            internal;
            proxy_pass http://127.0.0.1:19990/wake/$claw_tenant;
            proxy_method POST;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }
    }
_EOC_
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location /claw/ {
        claw_admin;
    }

    location = /metrics {
        claw_metrics;
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", ">>> tenants.conf\n$::Tenants");
    }
});

run_tests();

__DATA__

=== TEST 1: 50 requests during a wake: one hook call, all 50 answered by the container
--- init
my $t0 = time;
my @out = main::parallel(50, '/', 'Host: w1.claw.test', @::Auth);
my $took = time - $t0;
my %seen;
$seen{s/ [\d.]+$//r}++ for @out;
Test::More::is(join(',', map { "$_=$seen{$_}" } sort keys %seen),
               '200 w1=50', "all 50 answered by w1's container");
Test::More::is(main::calls('w1'), 1, "one call of the hook");
Test::More::ok($took >= 0.9 && $took < ClawTest::patience(3),
               sprintf("held until the container came up (%.2f s)", $took));
my ($status, $body) = ClawTest::http_request('GET', '/', undef,
                                             'Host: w1.claw.test', @::Auth);
Test::More::is($status, 200, "then served at once");
Test::More::is(main::calls('w1'), 1, "with no more calls");
--- request
GET /metrics
--- response_body_like: claw_wakes_total\{tenant="w1"\} 1\n
--- error_log
claw: waking tenant "w1"
--- no_error_log
[error]
--- timeout: 20



=== TEST 2: a WebSocket opened during a wake works
--- init
my $c = ClawTest::ws_open(host => 'w2.claw.test', headers => [@::Auth]);
Test::More::is($c->{status}, 101, "the upgrade waited for the container");
Test::More::is($c->{hello}, 'hello from w2', "the container's greeting");
Test::More::is(ClawTest::ws_echo($c, 'ping'), 'w2: ping', "and an echo");
Test::More::is(main::calls('w2'), 1, "one call of the hook");
--- request
GET /metrics
--- response_body_like: claw_wakes_total\{tenant="w2"\} 1\n
--- no_error_log
[error]
--- timeout: 20



=== TEST 3: a hook that fails: 503 with Retry-After at once, and the next request calls it again; no other tenant is reached
--- init
my $t0 = time;
my ($status, undef, $head) = ClawTest::http_request('GET', '/', undef,
                                               'Host: w3.claw.test', @::Auth);
Test::More::is($status, 503, "refused with 503");
Test::More::ok(time - $t0 < ClawTest::patience(2), "at once, not after the timeout");
Test::More::is(main::calls('w3'), 1, "one call");
($status) = ClawTest::http_request('GET', '/', undef, 'Host: w3.claw.test',
                                   @::Auth);
Test::More::is($status, 503, "503 again");
Test::More::is(main::calls('w3'), 2, "the next request called again");
my (undef, $log) = ClawTest::http_request('GET', '/_c/log', undef,
                                          'Host: other.claw.test', @::Auth);
Test::More::unlike($log, qr/w3\.claw\.test/, "nothing reached another tenant");
--- request
GET /metrics
--- response_body_like: claw_refused_total\{tenant="w3",reason="wake"\} 2\n(?s:.*)claw_wake_failures_total\{tenant="w3"\} 2\n
--- error_log
claw: the wake hook of tenant "w3" answered 500
--- timeout: 20



=== TEST 4: a hook that never starts the container: 503 with Retry-After after the timeout, and the next request calls it again
--- init
my $t0 = time;
my @out = main::parallel(3, '/', 'Host: w4.claw.test', @::Auth);
my $took = time - $t0;
Test::More::is(join(' ', map { s/ [\d.]+$//r } @out), '503 - 503 - 503 -',
               "503 for all three");
Test::More::ok($took >= 2.9 && $took < ClawTest::patience(6),
               sprintf("after the 3 s timeout (%.2f s)", $took));
Test::More::is(main::calls('w4'), 1, "one call");
--- request
GET /
--- more_headers
Host: w4.claw.test
Authorization: Bearer wake-token
--- error_code: 503
--- response_headers
Retry-After: 5
--- error_log
did not accept a connection before the end of its wake
--- timeout: 20



=== TEST 5: ... the calls: one per wake
--- init
Test::More::is(main::calls('w4'), 2, "the request after the timeout called again");
--- request
GET /claw/tenants/w4
--- response_body_like: "state":"asleep",.*"last_request":\d+
--- timeout: 20



=== TEST 6: a stranger wakes nothing: 401 on a tenant's location, 503 on a public one
--- init
my ($status) = ClawTest::http_request('GET', '/', undef, 'Host: w5.claw.test');
Test::More::is($status, 401, "no credential: 401");
($status) = ClawTest::http_request('GET', '/public/', undef, 'Host: w5.claw.test');
Test::More::is($status, 503, "a public location: 503");
Test::More::is(main::calls('w5'), 0, "and no call of the hook");
--- request
GET /nowake/
--- more_headers
Host: w5.claw.test
Authorization: Bearer wake-token
--- error_code: 503
--- error_log
claw: tenant "w5" is asleep and "claw_wake" is off here



=== TEST 7: a browser gets a page that reloads itself; the wake goes on, and the reload is served
--- request
GET /page/
--- more_headers
Host: w5.claw.test
Authorization: Bearer wake-token
Accept: text/html,application/xhtml+xml
--- error_code: 503
--- response_headers
Retry-After: 2
Cache-Control: no-store
Content-Type: text/html
--- response_body_like: <meta http-equiv="refresh" content="2">



=== TEST 8: ... the reload
--- init
wait_port(19995, "w5's container");
Test::More::ok(wait_until(ClawTest::patience(5),
                   sub { (ClawTest::http_request('GET', '/', undef,
                              'Host: w5.claw.test', @::Auth))[0] == 200 }),
               "the container is up");
Test::More::is(main::calls('w5'), 1, "one call");
--- request
GET /page/
--- more_headers
Host: w5.claw.test
Authorization: Bearer wake-token
Accept: text/html
--- response_body_like: container: w5



=== TEST 9: at most waiting= requests held: the others get 503 at once
--- init
my @out = main::parallel(5, '/few/', 'Host: w4.claw.test', @::Auth);
my @t = sort { $a <=> $b } map { /^503 - (\S+)$/ ? $1 : 99 } @out;
Test::More::ok($t[3] >= 1.9 && $t[4] < 99, "two held until the 2 s timeout (@out)");
Test::More::ok($t[2] + 1 <= $t[3], "three refused at once");
--- request
GET /metrics
--- response_body_like: claw_refused_total\{tenant="w4",reason="wake"\} \d+\n
--- error_log
claw: tenant "w4" is waking with 2 requests held already
--- timeout: 20



=== TEST 10: a tenant asleep in the registry whose container is up: no call
--- request
GET /
--- more_headers
Host: w8.claw.test
Authorization: Bearer wake-token
--- response_body_like: container: w8
--- no_error_log
waking tenant



=== TEST 11: ?idle=N lists the tenants with no request for N seconds; a tunnel with traffic keeps its tenant off the list
--- init
# w6 and w7: woken, then w6 keeps a tunnel busy and w7 is left alone;
# w8 sends a streamed answer all along
my $stream = ClawTest::http_hold('/_c/respond?action=stream&every=200&count=40',
                                 'Host: w8.claw.test', @::Auth);
my $c = ClawTest::ws_open(host => 'w6.claw.test', headers => [@::Auth]);
Test::More::is($c->{status}, 101, "w6's tunnel");
my ($s7) = ClawTest::http_request('GET', '/', undef, 'Host: w7.claw.test', @::Auth);
Test::More::is($s7, 200, "w7 woken");
for (1 .. 8) {
    sleep 0.5;
    ClawTest::ws_echo($c, "tick $_");
}
my ($s, $body) = ClawTest::http_request('GET', '/claw/tenants?idle=3');
Test::More::is($s, 200, "the query");
my @ids = $body =~ /"id":"([^"]+)"/g;
Test::More::ok(!grep({ $_ eq 'w6' } @ids), "w6, with a busy tunnel, is not idle");
Test::More::ok(!grep({ $_ eq 'w8' } @ids), "w8, streaming an answer, is not idle");
Test::More::ok(grep({ $_ eq 'w7' } @ids), "w7, 4 s without a request, is");
my ($last) = $body =~ /"id":"w7".*?"last_request":(\d+)/;
Test::More::ok($last && time - $last >= 3, "its last request is shown");
($s, $body) = ClawTest::http_request('GET', '/claw/tenants?idle=100000');
@ids = $body =~ /"id":"([^"]+)"/g;
Test::More::is("@ids", '', "no tenant idle since before nginx started");
($s, $body) = ClawTest::http_request('GET', '/claw/tenants?idle=99999999999');
@ids = $body =~ /"id":"([^"]+)"/g;
Test::More::is("$s @ids", '200 ', "nor since before 1970");
close $stream;
--- request
GET /claw/tenants?idle=x
--- error_code: 400
--- response_body_like: must be a number of seconds
--- timeout: 20



=== TEST 12: a hook that cannot be reached (the hook location's 502): 503 at once, and logged
--- init
my $t0 = time;
my ($s) = ClawTest::http_request('GET', '/deadhook/', undef, 'Host: w4.claw.test', @::Auth);
Test::More::is($s, 503, "refused");
Test::More::ok(time - $t0 < ClawTest::patience(2), "at once");
--- request
GET /deadhook/
--- more_headers
Host: w4.claw.test
Authorization: Bearer wake-token
--- error_code: 503
--- response_headers
Retry-After: 5
--- error_log
claw: the wake hook of tenant "w4" answered 502



=== TEST 13: held requests count against the tenant's concurrency limit
--- init
my @out = main::parallel(4, '/', 'Host: w9.claw.test', @::Auth);
my @codes = sort map { /^(\d+)/ } @out;
Test::More::is("@codes", '429 429 503 503', "two held (then 503), two over conn=2 (429)");
Test::More::is(main::calls('w9'), 1, "one call");
--- request
GET /metrics
--- response_body_like: claw_refused_total\{tenant="w9",reason="conn"\} 2\n
--- timeout: 20



=== TEST 14: held requests go on, fail, and come back through an error_page to a location without claw_wake: answered, no worker dies
--- init
my @out = main::parallel(4, '/c502/', 'Host: w10.claw.test', @::Auth);
my @codes = sort map { /^(\d+ \S+)/ } @out;
Test::More::is("@codes", '200 w10 200 w10 200 w10 200 w10',
               "each 502 answered by the location after it");
--- request
GET /metrics
--- response_body_like: claw_wakes_total\{tenant="w10"\} 1\n
--- no_error_log
exited on signal
[alert]
--- timeout: 20



=== TEST 15: a token revoked while its request is held: 403, without waiting for the wake
--- init
my $digest = ClawTest::sha256_hex('wake-token');
my $pid = fork // die "fork: $!\n";
if ($pid == 0) {
    sleep 0.5;
    ClawTest::http_request('DELETE', "/claw/tenants/w11/tokens/$digest");
    POSIX::_exit(0);
}
my $t0 = time;
my ($s) = ClawTest::http_request('GET', '/', undef, 'Host: w11.claw.test', @::Auth);
my $took = time - $t0;
waitpid $pid, 0;
Test::More::is($s, 403, "refused once its credential went");
Test::More::ok($took < ClawTest::patience(2.5), sprintf("before the 3 s wake ended (%.2f s)", $took));
--- request
GET /
--- more_headers
Host: w11.claw.test
Authorization: Bearer wake-token
--- error_code: 401
--- error_log
held for a wake, and its credential is no longer good
--- timeout: 20



=== TEST 16: requests held by a worker killed (kill -9) are given back: the tenant can be held again
--- init
my @pids = map { ClawTest::http_background('/few/', 'Host: w12.claw.test', @::Auth) } 1 .. 2;
sleep 0.5;
ClawTest::kill_workers('KILL');
sleep 2.5;      # the dead workers' wake has ended
my $t0 = time;
my ($s) = ClawTest::http_request('GET', '/few/', undef, 'Host: w12.claw.test', @::Auth);
my $took = time - $t0;
Test::More::is($s, 503, "503 in the end (its container never comes)");
Test::More::ok($took >= 1.5, sprintf("held until the timeout, not refused as if two were held (%.2f s)", $took));
--- request
GET /metrics
--- response_body_like: claw_wake_failures_total\{tenant="w12"\} \d
--- no_error_log
claw: tenant "w12" is waking with 2 requests held already
--- timeout: 30



=== TEST 17: a request of a location with a shorter timeout joins the wake under way: one hook call
--- init
my $bg = ClawTest::http_background('/', 'Host: w13.claw.test', @::Auth);
sleep 1.3;
my ($s) = ClawTest::http_request('GET', '/few/', undef, 'Host: w13.claw.test', @::Auth);
Test::More::is($s, 503, "the shorter one gives up");
waitpid $bg, 0;
Test::More::is(main::calls('w13'), 1, "one call of the hook");
--- request
GET /metrics
--- response_body_like: claw_wake_failures_total\{tenant="w13"\} 1\n
--- timeout: 30



=== TEST 18: a hook location with "claw on" (a server-wide claw on): its call is let through
--- init
my ($s, $body) = ClawTest::http_request('GET', '/hookclaw/', undef, 'Host: w14.claw.test', @::Auth);
Test::More::is($s, 200, "woken");
Test::More::is(main::calls('w14'), 1, "one call");
--- request
GET /metrics
--- response_body_like: claw_wakes_total\{tenant="w14"\} 1\n
--- no_error_log
answered 403
--- timeout: 20



=== TEST 19: a container stopped after its wake: the next request (a second on) wakes it again, no 502
--- init
my ($s) = ClawTest::http_request('GET', '/', undef, 'Host: w15.claw.test', @::Auth);
Test::More::is($s, 200, "woken");
sleep 1.2;
my $pid = ClawTest::slurp("$::Dir/w15.pid");
chomp $pid;
kill 'TERM', $pid;
wait_until(3, sub { !kill 0, $pid });
($s) = ClawTest::http_request('GET', '/', undef, 'Host: w15.claw.test', @::Auth);
Test::More::is($s, 200, "woken again, not a 502");
Test::More::is(main::calls('w15'), 2, "two calls");
--- request
GET /metrics
--- response_body_like: claw_wakes_total\{tenant="w15"\} 2\n
--- timeout: 20



=== TEST 20: a hook that answers once the container is ready: held requests go on after its answer, not when something first accepts
--- init
my $t0 = time;
my @out = main::parallel(3, '/', 'Host: w16.claw.test', @::Auth);
my $took = time - $t0;
my @who = sort map { /^(\d+ \S+)/ } @out;
Test::More::is("@who", '200 w16 200 w16 200 w16', "all answered by the container");
Test::More::ok($took >= 0.9, sprintf("after the hook's answer, a second on (%.2f s)", $took));
Test::More::is(main::calls('w16'), 1, "one call");
--- request
GET /metrics
--- response_body_like: claw_wakes_total\{tenant="w16"\} 1\n
--- timeout: 20



=== TEST 21: a hook that never answers: its location's read timeout ends the call, and the request gets 503 then
--- init
my $t0 = time;
my ($s) = ClawTest::http_request('GET', '/hang/', undef, 'Host: w17.claw.test', @::Auth);
my $took = time - $t0;
Test::More::is($s, 503, "refused");
Test::More::ok($took >= 0.9 && $took < ClawTest::patience(2.5),
               sprintf("after the hook's 1 s read timeout (%.2f s)", $took));
--- request
GET /metrics
--- response_body_like: claw_wake_failures_total\{tenant="w17"\} 1\n
--- error_log
claw: the wake hook of tenant "w17" answered 504
--- timeout: 20



=== TEST 22: a client that leaves while its request calls the hook: its place among the held (waiting=1) is given back
--- init
my $sock = ClawTest::http_hold('/hang/', 'Host: w18.claw.test', @::Auth);
sleep 0.3;
close $sock;
sleep 0.3;
my $t0 = time;
my ($s) = ClawTest::http_request('GET', '/hang/', undef, 'Host: w18.claw.test', @::Auth);
my $took = time - $t0;
Test::More::is($s, 503, "503 in the end (the hook never answers)");
Test::More::ok($took >= 0.5, sprintf("held, not refused as if one were held (%.2f s)", $took));
--- request
GET /metrics
--- response_body_like: claw_active_requests\{tenant="w18"\} 0\n
--- no_error_log
claw: tenant "w18" is waking with 1 requests held already
--- timeout: 20
