# Reloads under load: no request fails while the configuration is
# reloaded again and again, limit state and counters are kept across
# reloads, and a reload that changes the size of the zone survives (a
# zone too small for the registry is refused and the old one serves on).
#
# Checks made while load runs are done in --- init and written to
# html/report.txt, which the block's request fetches: the comparison of
# its body is the test, with a readable diff when it fails.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
no_shuffle();
no_root_location();

# alice: no limits; bob: one request a minute; carol: one request in
# flight at a time (a slow container)
our $Tenants = <<'_EOF_';
alice  127.0.0.1:19950  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1
bob    127.0.0.1:19950  token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122 rate=1r/m burst=0
carol  127.0.0.1:19951  token=sha256:43fec2207592005ce020d7e6f8d096f215c59b19224e3716fe52dd19e6d2ea7a conn=1
_EOF_

our @Alice = ("Host: alice.claw.test", "Authorization: Bearer alice-token-1");
our @Bob   = ("Host: bob.claw.test", "Authorization: Bearer bob-token-1");
our @Carol = ("Host: carol.claw.test", "Authorization: Bearer carol-token-1");

start_containers(['slow', '127.0.0.1:19951']);

add_block_preprocessor(sub {
    my $block = shift;
    my ($n) = $block->name =~ /TEST (\d+)/;

    # a zone of its own per block: HUP mode keeps zones across blocks
    if (!defined $block->http_config) {
        $block->set_value("http_config", <<"_EOC_");
    claw_zone reload_$n:1m;
    claw_tenants \$TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw {
        claw_balancer;
        keepalive 16;
    }

    server {
        listen 127.0.0.1:19950;
        keepalive_requests 100000;
        return 200 "ok\\n";
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", ">>> tenants.conf\n$Tenants");
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;
    keepalive_requests 100000;

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }

    location = /metrics {
        claw_metrics;
    }

    location = /report.txt {
    }
_EOC_
    }

    $block->set_value("request", "GET /report.txt\n")
        unless defined $block->request;
});

# the value of one sample of the metrics, or "none"
sub metric {
    my ($name) = @_;
    my (undef, $body) = ClawTest::http_request('GET', '/metrics');
    return $body =~ /^\Q$name\E (\d+)$/m ? $1 : 'none';
}

# What a load run saw, as report lines: every request answered 200, none
# cut short, none timed out, no connection refused.
sub load_lines {
    my ($r, $min) = @_;
    my $not200 = $r->{requests} - ($r->{s200} // 0);
    Test::More::diag("load: " . join(', ', map { "$_=$r->{$_}" } sort keys %$r))
        if $ENV{TEST_NGINX_VERBOSE} || $not200 || $r->{refused};
    return ("answers other than 200: $not200",
            "answers cut short: $r->{broken}",
            "answers timed out: $r->{timeout}",
            "connections refused: $r->{refused}",
            "enough load: " . ($r->{requests} >= $min ? "yes"
                               : "no, $r->{requests} requests"));
}

# the nginx.conf of the running test nginx, edited, and a reload
sub reload_with {
    my ($from, $to) = @_;
    my $file = ClawTest::servroot() . '/conf/nginx.conf';
    open my $fh, '<', $file or die "$file: $!\n";
    my $conf = do { local $/; <$fh> };
    close $fh;
    $conf =~ s/\Q$from\E/$to/g or die "reload_with: no \"$from\" in $file\n";
    ClawTest::write_file($file, $conf);
    return ClawTest::reload(timeout => 30);
}

run_tests();

__DATA__

=== TEST 1: 20 reloads during keep-alive load: no request fails, limit state and counters are kept
--- init
my $first = ClawTest::http_get("/", @::Bob);
my $load = ClawTest::load_start(clients => 4, pause => 0.005,
                                headers => \@::Alice);
select(undef, undef, undef, 0.5);
my $accepted = 0;
for (1 .. 20) {
    $accepted++ if ClawTest::reload(timeout => 30);
    select(undef, undef, undef, 0.1);
}
select(undef, undef, undef, 0.5);
my $r = ClawTest::load_stop($load);
my $bob = ClawTest::http_get("/", @::Bob);
my $counted = main::metric('claw_requests_total{tenant="alice",code="2xx"}');
ClawTest::report("bob before the reloads: $first",
                 "reloads accepted: $accepted",
                 main::load_lines($r, 200),
                 "bob after the reloads: $bob",
                 "alice's answers all counted: "
                 . ($counted eq ($r->{s200} // 0) ? "yes"
                    : "no, $counted counted, " . ($r->{s200} // 0) . " answered"));
--- timeout: 10
--- response_body
bob before the reloads: 200
reloads accepted: 20
answers other than 200: 0
answers cut short: 0
answers timed out: 0
connections refused: 0
enough load: yes
bob after the reloads: 429
alice's answers all counted: yes
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 2: a request in flight across a reload still counts, and is given back after it
--- init
my $slow = ClawTest::http_status_background("/_c/respond?sleep=2000", @::Carol);
select(undef, undef, undef, 0.5);
my $during = ClawTest::http_get("/", @::Carol);
my $ok = ClawTest::reload(timeout => 30, settle => 0);
my $after_reload = ClawTest::http_get("/", @::Carol);
my ($slow_status) = ClawTest::background_status($slow);
select(undef, undef, undef, 0.3);
my $after = ClawTest::http_get("/", @::Carol);
ClawTest::report("second request before the reload: $during",
                 "reload accepted: $ok",
                 "second request after the reload: $after_reload",
                 "the slow request: $slow_status",
                 "once it is over: $after");
--- timeout: 10
--- response_body
second request before the reload: 429
reload accepted: 1
second request after the reload: 429
the slow request: 200
once it is over: 200
--- no_error_log
[alert]
[crit]



=== TEST 3: the zone grown and shrunk again on reload, under load: nothing fails
--- init
my $load = ClawTest::load_start(clients => 3, pause => 0.005,
                                headers => \@::Alice);
select(undef, undef, undef, 0.5);
my $grown = main::reload_with('claw_zone reload_3:1m', 'claw_zone reload_3:4m');
select(undef, undef, undef, 0.5);
my $size_grown = main::metric('claw_zone_bytes_total');
my $bob_grown = ClawTest::http_get("/", @::Bob);
my $shrunk = main::reload_with('claw_zone reload_3:4m', 'claw_zone reload_3:1m');
select(undef, undef, undef, 0.5);
my $size_shrunk = main::metric('claw_zone_bytes_total');
my $r = ClawTest::load_stop($load);
my $tenants = main::metric('claw_tenants');
ClawTest::report("grown: $grown, zone $size_grown bytes, bob $bob_grown",
                 "shrunk: $shrunk, zone $size_shrunk bytes",
                 "tenants: $tenants",
                 main::load_lines($r, 50));
--- timeout: 10
--- response_body
grown: 1, zone 4194304 bytes, bob 200
shrunk: 1, zone 1048576 bytes
tenants: 3
answers other than 200: 0
answers cut short: 0
answers timed out: 0
connections refused: 0
enough load: yes
--- no_error_log
[alert]
[crit]



=== TEST 4: a zone too small for the registry is refused on reload; the old one serves on, whole
--- user_files eval
">>> tenants.conf\n$::Tenants"
. CORE::join("", map { sprintf "t%03d 127.0.0.1:19950 token=sha256:%064x domain=t%03d.example.org\n", $_, $_, $_ } 1 .. 300)
--- init
my $size = main::metric('claw_zone_bytes_total');
my $ok = main::reload_with('claw_zone reload_4:1m', 'claw_zone reload_4:32k');
my @status = map { ClawTest::http_get("/", sprintf("Host: t%03d.example.org", $_)) } 1, 150, 300;
ClawTest::report("reload accepted: $ok",
                 "zone: " . main::metric('claw_zone_bytes_total') . " (was $size)",
                 "tenants: " . main::metric('claw_tenants'),
                 "alice: " . ClawTest::http_get("/", @::Alice),
                 "t001 t150 t300: @status");
--- timeout: 20
--- response_body
reload accepted: 0
zone: 1048576 (was 1048576)
tenants: 303
alice: 200
t001 t150 t300: 401 401 401
--- error_log eval
qr/\[emerg\] .*claw zone "reload_4".*(?:too small|full)/
--- no_error_log
[alert]
[crit]



=== TEST 5: a reload that fails after the registry was read (a listen that cannot bind) leaves the registry in force as it was
--- init
use IO::Socket::IP;
my $taken = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 19958,
                                Listen => 1, ReuseAddr => 1)
    or die "port 19958: $!\n";
my $file = ClawTest::servroot() . '/html/tenants.conf';
open my $fh, '>>', $file or die "$file: $!\n";
print $fh "dave   127.0.0.1:19950  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1\n";
close $fh;
my @dave = ("Host: dave.claw.test", "Authorization: Bearer alice-token-1");
my $ok = main::reload_with("claw_domain claw.test;",
                           "claw_domain claw.test;\n    listen 127.0.0.1:19958;");
# nginx tries to bind for a few seconds before it gives the reload up
for (1 .. 100) {
    last if ClawTest::error_log_has(qr/still could not bind\(\)/);
    Time::HiRes::sleep(0.1);
}
my $during = ClawTest::http_get("/", @dave);
my $alice = ClawTest::http_get("/", @::Alice);
close $taken;
my $ok2 = ClawTest::reload(timeout => 30);
my $after = ClawTest::http_get("/", @dave);
ClawTest::report("reload accepted: $ok",
                 "logged: " . (ClawTest::error_log_has(qr/still could not bind\(\)/) ? "yes" : "no"),
                 "dave after the failed reload: $during",
                 "alice: $alice",
                 "the same reload once the port is free: $ok2",
                 "dave then: $after");
--- timeout: 40
--- response_body
reload accepted: 0
logged: yes
dave after the failed reload: 404
alice: 200
the same reload once the port is free: 1
dave then: 200
--- no_error_log
[alert]
[crit]



=== TEST 6: the zone resized by reloads while admin changes pour in: every acknowledged change is in force after the reloads, and after kill -9
One client creates tenants, each once; another mints a token of bob and
revokes the one before, again and again (a change built from a zone that
missed an acknowledged one would undo it for good).  Changes that wait for
the journal while the master reads the registry, or that an old worker
takes after the master made the new zone, are where changes were lost.
--- config
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }

    location /claw/ {
        claw_admin;
    }

    location = /report.txt {
    }
--- init
my $stop = ClawTest::servroot() . '/html/stop';
my $acked = ClawTest::servroot() . '/html/acked';
unlink $stop;
my @kids;
for my $client ('create', 'mint') {
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        open my $log, '>', "$acked.$client" or POSIX::_exit(1);
        $log->autoflush(1);
        my ($i, $prev) = (0, undef);
        while (!-e $stop) {
            $i++;
            if ($client eq 'create') {
                my ($s) = eval { ClawTest::http_request(PUT => "/claw/tenants/c$i",
                                     '{"upstream":"127.0.0.1:19950"}') };
                $s //= 0;
                print $log $s == 201 ? "+ c$i\n" : $s == 503 ? "" : "error $s\n";
                next;
            }
            my ($s, $b) = eval { ClawTest::http_request(POST => "/claw/tenants/bob/tokens") };
            $s //= 0;
            if ($s == 201 && $b =~ /"hash":"sha256:([0-9a-f]{64})"/) {
                my $h = $1;
                print $log "+ $h\n";
                if (defined $prev) {
                    my $d;
                    do {
                        ($d) = eval { ClawTest::http_request(DELETE => "/claw/tenants/bob/tokens/$prev") };
                        $d //= 0;
                    } while ($d == 503 && !-e $stop);
                    print $log $d == 204 ? "- $prev\n" : $d == 503 ? "" : "error $d\n";
                }
                $prev = $h;
            } elsif ($s != 503) {
                print $log "error $s\n";
            }
        }
        close $log;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
my @sizes = ('1m', '2m', '1m', '4m');
my $reloads = 0;
for my $k (1 .. 3) {
    Time::HiRes::sleep(0.7);
    $reloads += main::reload_with("claw_zone reload_6:$sizes[$k - 1]",
                                  "claw_zone reload_6:$sizes[$k]");
}
Time::HiRes::sleep(0.5);
open my $sf, '>', $stop or die; close $sf;
waitpid $_, 0 for @kids;
my (%tenants, %tokens, $errors, $n);
for my $client ('create', 'mint') {
    open my $fh, '<', "$acked.$client" or die;
    while (<$fh>) {
        if (/^error /) { $errors++; next }
        my ($op, $x) = split;
        $n++;
        if ($client eq 'create') { $tenants{$x} = 1; next }
        if ($op eq '+') { $tokens{$x} = 1 } else { delete $tokens{$x} }
    }
}
$tokens{'da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122'} = 1;
sub state {
    my $missing = 0;
    for my $id (keys %tenants) {
        my ($st) = ClawTest::http_request(GET => "/claw/tenants/$id");
        $missing++ unless $st == 200;
    }
    my ($st, $b) = ClawTest::http_request(GET => "/claw/tenants/bob");
    my %have = map { $_ => 1 } $b =~ /sha256:([0-9a-f]{64})/g;
    my $wrong = grep { !$have{$_} } keys %tokens;
    $wrong += grep { !$tokens{$_} } keys %have;
    return "tenants missing $missing, bob's tokens wrong $wrong";
}
my $live = state();
ClawTest::nginx_restart_hard();
my $restarted = state();
ClawTest::report("reloads: $reloads",
                 "changes acknowledged: " . ($n > 100 ? "over 100" : $n // 0),
                 "errors: " . ($errors // 0),
                 "live: $live",
                 "after kill -9: $restarted");
--- timeout: 120
--- response_body
reloads: 3
changes acknowledged: over 100
errors: 0
live: tenants missing 0, bob's tokens wrong 0
after kill -9: tenants missing 0, bob's tokens wrong 0
--- no_error_log
[alert]
[crit]
