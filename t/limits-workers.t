# A tenant's limits hold across all workers: under load from several
# clients at once, the requests admitted over T seconds stay within
# rate * T + burst + 1, and the requests in flight within conn.  The
# bounds are asserted, not exact counts: timing on a shared machine varies.
#
# Each check also shows that both workers took part: every answer carries
# the pid of the worker that gave it (access log "$pid", header
# X-Worker-Pid), and two distinct pids, the two workers', must appear.
# With one worker doing all the work a limit kept per worker would look
# exact: the check would prove nothing.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
no_shuffle();
no_root_location();

# CLAW_LIMIT_SECONDS=10 makes the first test the 10-second measurement
our $Seconds = $ENV{CLAW_LIMIT_SECONDS} || 3;

# how long a slow request of TEST 3 is held in the container: every
# request of a wave must be in flight before the first one ends (valgrind
# makes nginx 20-50 times slower)
our $Hold = $ENV{TEST_NGINX_USE_VALGRIND} ? 30 : 4;

our @Alice = ("Host: alice.claw.test", "Authorization: Bearer alice-token-1");
our @Bob = ("Host: bob.claw.test", "Authorization: Bearer bob-token-1");
our @Carol = ("Host: carol.claw.test", "Authorization: Bearer carol-token-1");

# carol's container holds a request as long as it is told to
start_containers(['carol', '127.0.0.1:19896']);

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_limit_log_level info;

    log_format workers '$pid $host $status';

    upstream claw {
        claw_balancer;
        keepalive 16;
    }

    server {
        listen 127.0.0.1:19895;
        access_log off;
        return 200 "ok\n";
    }
_EOC_

    $block->set_value("user_files", <<'_EOF_');
>>> tenants.conf
alice  127.0.0.1:19895  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 rate=20r/s burst=5
bob    127.0.0.1:19895  token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122 rate=600r/m burst=0
carol  127.0.0.1:19896  token=sha256:43fec2207592005ce020d7e6f8d096f215c59b19224e3716fe52dd19e6d2ea7a conn=3
_EOF_

    $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;
    access_log logs/access.log workers;

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        add_header X-Worker-Pid $pid always;
    }

    location = /report.txt {
    }
_EOC_

    ClawTest::fresh_zone($block);
});

# The workers that answered for $host, by the access log: pid => count.
sub answered_by {
    my ($host) = @_;
    my %pid;
    open my $fh, '<', ClawTest::servroot() . '/logs/access.log' or return {};
    while (<$fh>) {
        $pid{$1}++ if /^(\d+) \Q$host\E /;
    }
    return \%pid;
}

# Both workers answered: the pids in the log are the two workers'.
sub both_workers_answered {
    my ($host) = @_;
    my $pids = answered_by($host);
    my @workers = sort { $a <=> $b } ClawTest::worker_pids();
    my @seen = sort { $a <=> $b } keys %$pids;
    my $what = "answered by " . join(', ', map { "$_: $pids->{$_}" } @seen)
               . " (workers: @workers)";
    Test::More::ok(@workers == 2 && "@seen" eq "@workers",
                   "both workers answered for $host: $what");
}

# One wave of TEST 3: $n requests held $hold s in carol's container, all
# sent at once from as many processes, and one more from here while they
# are held.  Returns the answers [status, worker pid, seconds] and the
# status of the one more.
sub wave {
    my ($n, $hold) = @_;
    my @kids;
    for (1 .. $n) {
        pipe(my $r, my $w) or die "wave: pipe: $!\n";
        my $pid = fork // die "wave: fork: $!\n";
        if ($pid == 0) {
            close $r;
            my $t0 = Time::HiRes::time();
            my ($status, $body, $head) = eval {
                ClawTest::http_request('GET', '/_c/respond?sleep=' . $hold * 1000,
                                       undef, @::Carol)
            };
            my ($wpid) = ($head // '') =~ /^X-Worker-Pid: (\d+)/mi;
            printf $w "%s %s %.3f\n", $status // 0, $wpid // 0,
                   Time::HiRes::time() - $t0;
            close $w;
            POSIX::_exit(0);
        }
        close $w;
        push @kids, [$pid, $r];
    }
    select(undef, undef, undef, $hold / 2);
    my $more = ClawTest::http_get('/', @::Carol);
    my @answers;
    for my $kid (@kids) {
        my $fh = $kid->[1];
        push @answers, [split ' ', (<$fh> // '0 0 0')];
        waitpid $kid->[0], 0;
    }
    return (\@answers, $more);
}

run_tests();

__DATA__

=== TEST 1: 20r/s burst=5 from 6 clients, 2 workers
--- init
my ($count, $t) = ClawTest::hammer(clients => 6, seconds => $::Seconds,
                                   headers => \@::Alice);
my $ok = $count->{200} // 0;
my $bound = int(20 * $t) + 5 + 1;
Test::More::cmp_ok($ok, '<=', $bound,
    "admitted $ok of " . ($ok + ($count->{429} // 0)) . " in ${t}s, "
    . "bound rate*T + burst + 1 = $bound");
Test::More::cmp_ok($ok, '>=', int(20 * $t * 0.8),
    "and the tenant got most of its rate");
Test::More::is(join(",", grep { $_ != 200 && $_ != 429 } keys %$count), "",
    "nothing but 200 and 429");
main::both_workers_answered("alice.claw.test");
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Bearer not-a-token
--- error_code: 401



=== TEST 2: 600r/m burst=0 from 4 clients over 2 seconds, 2 workers
--- init
my ($count, $t) = ClawTest::hammer(clients => 4, seconds => 2,
                                   headers => \@::Bob);
my $ok = $count->{200} // 0;
my $bound = int(10 * $t) + 0 + 1;
Test::More::cmp_ok($ok, '<=', $bound,
    "admitted $ok in ${t}s, bound rate*T + burst + 1 = $bound");
Test::More::cmp_ok($ok, '>=', int(10 * $t * 0.8),
    "and the tenant got most of its rate");
main::both_workers_answered("bob.claw.test");
--- request
GET /
--- more_headers
Host: bob.claw.test
Authorization: Bearer not-a-token
--- error_code: 401



=== TEST 3: conn=3 and 12 slow requests in flight at once on both workers: exactly 3 admitted, the others 429
# A wave of 12 requests that the container holds for $Hold s, sent at
# once: exactly 3 are admitted and held together, the 9 others are
# refused at once (while the 3 are held), as is a 13th made halfway.  A
# count kept per worker would admit up to 3 on each.  A second wave after
# the first: again exactly 3, so nothing stayed counted on either worker.
--- init
# A wave that one worker happened to take whole proves nothing about a
# count shared between workers: it is sent again, at most 5 times.
my (@lines, @seen);
for my $w (1, 2) {
    my ($answers, $more, $workers, $seen);
    for my $try (1 .. 5) {
        ($answers, $more) = main::wave(12, $::Hold);
        my %pids = map { $_->[1] => 1 } @$answers;
        $seen = join ' ', sort { $a <=> $b } keys %pids;
        # (asked only now: right after nginx starts its workers may not run)
        $workers = join ' ', sort { $a <=> $b } ClawTest::worker_pids();
        last if $workers =~ /^\d+ \d+$/ && $seen eq $workers;
    }
    push @seen, ($workers =~ /^\d+ \d+$/ && $seen eq $workers)
                ? 'both' : "$seen (workers: $workers)";
    my @ok = grep { $_->[0] == 200 } @$answers;
    my @no = grep { $_->[0] == 429 } @$answers;
    my $last_no = 0;
    $last_no < $_->[2] and $last_no = $_->[2] for @no;
    my $first_ok = $::Hold * 10;
    $first_ok > $_->[2] and $first_ok = $_->[2] for @ok;
    push @lines,
        "wave $w: admitted: " . @ok,
        "wave $w: refused with 429: " . @no,
        "wave $w: other answers: "
            . (join(' ', map { $_->[0] } grep { $_->[0] != 200 && $_->[0] != 429 }
                                           @$answers) || 'none'),
        "wave $w: the admitted held together: "
            . ((@ok && $first_ok >= $::Hold * 0.9) ? 'yes' : "no ($first_ok s)"),
        "wave $w: refused while they were held: "
            . (($last_no < $first_ok) ? 'yes' : "no ($last_no s)"),
        "wave $w: one more halfway: $more";
}
push @lines, map { "wave $_: workers that answered: $seen[$_ - 1]" } 1, 2;
ClawTest::report(@lines);
--- timeout: 10
--- request
GET /report.txt
--- response_body
wave 1: admitted: 3
wave 1: refused with 429: 9
wave 1: other answers: none
wave 1: the admitted held together: yes
wave 1: refused while they were held: yes
wave 1: one more halfway: 429
wave 2: admitted: 3
wave 2: refused with 429: 9
wave 2: other answers: none
wave 2: the admitted held together: yes
wave 2: refused while they were held: yes
wave 2: one more halfway: 429
wave 1: workers that answered: both
wave 2: workers that answered: both
--- no_error_log
[alert]
[crit]
