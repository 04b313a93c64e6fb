# Passive health of tenants' containers (claw_health): after max_fails
# failed attempts in a row (connection refused, a timeout: nginx's 502 and
# 504) the container is taken as down for fail_timeout, and meanwhile its
# tenant's requests get 503 with Retry-After at once, with no connection
# tried; then one request at a time is let through to try it (the others
# still 503), and an answer brings it back.  claw_upstream_up says so in
# the metrics; a request with no good credential learns nothing of it;
# other tenants are untouched.

use lib 't/perl';
use ClawTest;
use IO::Socket::IP;
use Time::HiRes ();
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
no_shuffle();
no_root_location();

our $D = ClawTest::sha256_hex('alice-token-1');

# alice's container is on 19841 (down at first), bob's answers
our $Tenants = <<"_EOF_";
alice  127.0.0.1:19841  token=sha256:$D
bob    127.0.0.1:19842  token=sha256:$D
_EOF_

our @A = ('Host: alice.claw.test', 'Authorization: Bearer alice-token-1');

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19842;
        return 200 "bob\n";
    }

    log_format up '$claw_tenant $upstream_addr $status $claw_limit';
_EOC_

    $block->set_value("user_files", ">>> tenants.conf\n$Tenants");

    $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;
    claw_health max_fails=2 fail_timeout=2s;

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_connect_timeout 1s;
        proxy_read_timeout 1s;
        access_log logs/up.log up;
    }

    location = /metrics {
        claw_metrics;
    }

    location = /report.txt {
    }
_EOC_

    $block->set_value("request", "GET /report.txt");

    ClawTest::fresh_zone($block);
});

sub metric {
    my ($name) = @_;
    my (undef, $body) = ClawTest::http_request('GET', '/metrics');
    return $body =~ /^\Q$name\E (\d+)$/m ? $1 : 'none';
}

# how many of alice's requests tried her container
sub tried {
    my $log = ClawTest::servroot() . '/logs/up.log';
    return 0 unless -f $log;
    return scalar grep { /^alice 127\.0\.0\.1:19841 / } split /\n/, ClawTest::slurp($log);
}

sub status_and_retry {
    my ($s, undef, $h) = ClawTest::http_request('GET', '/', '', @_);
    my ($ra) = $h =~ /^Retry-After: (\d+)\r?$/mi;
    # a slow run (valgrind) may take a second off what is left
    $ra = 2 if $ra && $ra == 1 && $ENV{TEST_NGINX_USE_VALGRIND};
    return $ra ? "$s (Retry-After $ra)" : $s;
}

run_tests();

__DATA__

=== TEST 1: down after 2 failures: 503 at once with no connection tried; a stranger gets 401; bob untouched; after fail_timeout one request tries it and brings it back
--- init
my @lines;
push @lines, "1st: " . main::status_and_retry(@::A);
push @lines, "2nd: " . main::status_and_retry(@::A);
my $tried = main::tried();
push @lines, "3rd: " . main::status_and_retry(@::A);
push @lines, "4th: " . main::status_and_retry(@::A);
push @lines, "tried meanwhile: " . (main::tried() - $tried);
push @lines, "no credential: " . main::status_and_retry('Host: alice.claw.test');
push @lines, "bob: " . main::status_and_retry('Host: bob.claw.test', 'Authorization: Bearer alice-token-1');
push @lines, "up: " . main::metric('claw_upstream_up{tenant="alice"}')
    . ", refused as down: " . main::metric('claw_refused_total{tenant="alice",reason="down"}');
# the container comes back
ClawTest::start_containers(['alice', '127.0.0.1:19841']);
Time::HiRes::sleep(2.2);
push @lines, "after fail_timeout: " . main::status_and_retry(@::A);
push @lines, "then: " . main::status_and_retry(@::A);
push @lines, "up: " . main::metric('claw_upstream_up{tenant="alice"}');
ClawTest::stop_containers();
ClawTest::report(@lines);
--- response_body
1st: 502
2nd: 502
3rd: 503 (Retry-After 2)
4th: 503 (Retry-After 2)
tried meanwhile: 0
no credential: 401
bob: 200
up: 0, refused as down: 2
after fail_timeout: 200
then: 200
up: 1
--- error_log
claw: the container of tenant "alice" failed 2 times in a row: requests get 503 for 2000 ms, then one tries it
claw: the container of tenant "alice" answers again



=== TEST 2: one request at a time tries a container that is down: while it hangs the others get 503; it fails, and the container is down again
--- init
# a container that takes connections and never answers
my $pid = fork // die "fork: $!\n";
if ($pid == 0) {
    my $l = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 19841,
                                Listen => 64, ReuseAddr => 1) or POSIX::_exit(1);
    my @keep;
    while (my $c = $l->accept) { push @keep, $c }
    POSIX::_exit(0);
}
ClawTest::wait_port(19841, 'the hanging container');
my @lines;
push @lines, "1st: " . main::status_and_retry(@::A);
push @lines, "2nd: " . main::status_and_retry(@::A);
Time::HiRes::sleep(2.2);
my $t0 = Time::HiRes::time();
ClawTest::http_background('/', @::A);
Time::HiRes::sleep(0.3);
push @lines, "while one tries it: " . main::status_and_retry(@::A);
push @lines, "and another: " . main::status_and_retry(@::A);
Time::HiRes::sleep(1.2);
push @lines, "after it failed: " . main::status_and_retry(@::A);
kill 'KILL', $pid;
waitpid $pid, 0;
ClawTest::report(@lines);
--- response_body
1st: 504
2nd: 504
while one tries it: 503 (Retry-After 1)
and another: 503 (Retry-After 1)
after it failed: 503 (Retry-After 2)
--- error_log
claw: the container of tenant "alice" is still down
