# A tenant's limits hold across all workers: under load from several
# clients at once, the requests admitted over T seconds stay within
# rate * T + burst + 1, and the requests in flight within conn.  The
# bounds are asserted, not exact counts: timing on a shared machine varies.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
no_shuffle();
no_root_location();

# CLAW_LIMIT_SECONDS=10 makes the first test the 10-second measurement
our $Seconds = $ENV{CLAW_LIMIT_SECONDS} || 3;

our @Alice = ("Host: alice.claw.test", "Authorization: Bearer alice-token-1");
our @Bob = ("Host: bob.claw.test", "Authorization: Bearer bob-token-1");

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_limit_log_level info;

    upstream claw {
        claw_balancer;
        keepalive 16;
    }

    server {
        listen 127.0.0.1:19895;
        return 200 "ok\n";
    }
_EOC_

    $block->set_value("user_files", <<'_EOF_');
>>> tenants.conf
alice  127.0.0.1:19895  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 rate=20r/s burst=5
bob    127.0.0.1:19895  token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122 rate=600r/m burst=0
_EOF_

    $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
_EOC_

    ClawTest::fresh_zone($block);
});

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
--- request
GET /
--- more_headers
Host: bob.claw.test
Authorization: Bearer not-a-token
--- error_code: 401
