# What a request takes in the zone is given back.  A request pins its
# tenant's slot in the one critical section it takes on the zone, and its
# worker keeps a record per tenant it has served (so that the next request
# allocates nothing); the pin is given back with atomic operations.  So:
# tenants created, served and deleted leave nothing behind; a tenant
# deleted under requests in flight goes with its records once the last of
# them ends; and a zone too full for a worker's record makes room by
# dropping the records of the tenants the worker has nothing in flight
# for, instead of refusing the request.
#
# What the zone holds is read from claw_zone_bytes_used (whole pages):
# each block compares it before and after, with a page or two of slack
# for the slab allocator's partly used pages.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
worker_connections(1024);
no_shuffle();
no_root_location();

start_containers(['pins', '127.0.0.1:19975']);

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/data/tenants.conf;

    upstream claw {
        claw_balancer;
        keepalive 8;
    }
_EOC_
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

    location /claw/ {
        claw_admin;
    }

    location = /metrics {
        claw_metrics;
    }

    location = /report.txt {
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", [
            ["data/tenants.conf" => "# none\n"],
        ]);
    }

    if (!defined $block->request) {
        $block->set_value("request", "GET /report.txt\n");
    }

    ClawTest::fresh_zone($block);
});

# (status, body) of an admin API call
sub admin { (ClawTest::http_request($_[0], "/claw/tenants$_[1]", $_[2]))[0] }

our $Digest = ClawTest::sha256_hex('pins-token');
our @Auth = ('Authorization: Bearer pins-token');

sub put {
    admin('PUT', "/$_[0]", '{"upstream":"127.0.0.1:19975",'
                           . '"tokens":["sha256:' . $Digest . '"]}');
}

sub used {
    my (undef, $body) = ClawTest::http_request('GET', '/metrics');
    return $body =~ /^claw_zone_bytes_used (\d+)$/m ? $1 : -1;
}

sub get { ClawTest::http_get('/', "Host: $_[0].claw.test", @Auth) }

# "within N pages" when $after is at most $slack pages above $before
sub within {
    my ($before, $after, $slack) = @_;
    return $after >= 0 && $before >= 0 && $after <= $before + $slack * 4096
           ? "within $slack pages"
           : "$before bytes before, $after after";
}

# a zone that fills with a few hundred tenants
our $SmallZone = <<'_EOC_';
    claw_zone claw:256k;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/data/tenants.conf;

    upstream claw {
        claw_balancer;
        keepalive 8;
    }
_EOC_

run_tests();

__DATA__

=== TEST 1: 400 tenants created, served on both workers and deleted leave the zone as it was
--- init
my %status;
my $cycle = sub {
    my ($id) = @_;
    $status{"put " . main::put($id)}++;
    $status{"get " . main::get($id)}++ for 1 .. 4;
    $status{"delete " . main::admin('DELETE', "/$id")}++;
};
$cycle->("warm$_") for 1 .. 20;
my $before = main::used();
%status = ();
$cycle->("t$_") for 1 .. 400;
my $after = main::used();
ClawTest::report((map { "$_: $status{$_}" } sort keys %status),
                 "zone: " . main::within($before, $after, 2));
--- response_body
delete 204: 400
get 200: 1600
put 201: 400
zone: within 2 pages
--- no_error_log
[error]
[alert]



=== TEST 2: 150 tenants deleted under requests in flight on both workers: freed with their records once the requests end, and created again as new
Each tenant has a request in flight at its container when it is deleted:
the requests are cut (their tenant is gone), and the last one to end
frees its tenant's slot and the workers' records of it.
--- init
my $before = main::used();
my @ids = map { "gone$_" } 1 .. 150;
my %status;
$status{"put " . main::put($_)}++ for @ids;
# held long enough for 150 deletes, one synced journal record each, on
# a slow disk too
my @bg = map { ClawTest::http_status_background('/_c/respond?sleep=10000',
                                                "Host: $_.claw.test", @main::Auth) } @ids;
Time::HiRes::sleep(1);
$status{"delete " . main::admin('DELETE', "/$_")}++ for @ids;
my %ended;
for my $b (@bg) {
    my ($s, $t) = ClawTest::background_status($b);
    $ended{$s}++;
}
my $after = main::used();
$status{"again put " . main::put($_)}++ for @ids[0 .. 9];
$status{"again get " . main::get($_)}++ for @ids[0 .. 9];
$status{"again delete " . main::admin('DELETE', "/$_")}++ for @ids[0 .. 9];
my $again = main::used();
ClawTest::report((map { "$_: $status{$_}" } sort keys %status),
                 (map { "in flight ended $_: $ended{$_}" } sort keys %ended),
                 "zone after: " . main::within($before, $after, 2),
                 "zone after again: " . main::within($before, $again, 2));
--- response_body
again delete 204: 10
again get 200: 10
again put 201: 10
delete 204: 150
put 201: 150
in flight ended 502: 150
zone after: within 2 pages
zone after again: within 2 pages
--- no_error_log
[alert]
--- timeout: 60



=== TEST 3: a zone too full for a worker's record of one more tenant makes room from the records of idle tenants: every request served
The zone is filled with tenants through the admin API until it refuses
one (507); then every tenant is asked for, on both workers, each asking
for a record per worker: the records of tenants served earlier give way.
--- http_config eval: $::SmallZone
--- init
my ($n, $s) = (0, 0);
while (++$n <= 5000) {
    $s = main::put("fill$n");
    last if $s != 201;
}
my %status;
for my $round (1 .. 2) {
    $status{"get " . main::get("fill$_")}++ for 1 .. $n - 1;
}
ClawTest::report("filled: " . ($n > 100 && $s == 507 ? "yes" : "no, $n, $s"),
                 map { "$_: " . ($status{$_} == 2 * ($n - 1) ? "all"
                                                           : $status{$_}) }
                 sort keys %status);
--- response_body
filled: yes
get 200: all
--- no_error_log
zone "claw_t3" full
[alert]
--- timeout: 120



=== TEST 4: the workers' records of idle tenants make room for new tenants too: a full zone takes as many tenants as were deleted
The zone is filled with tenants until it refuses one (507); 20 of them
are deleted, and the others served on both workers, whose records take
the room the 20 left; 20 new tenants are then all created, the records
giving way.  Before, records made room only for other records: the new
tenants got 507 while the zone was full of records of idle tenants.
--- http_config eval: $::SmallZone
--- init
my ($n, $s) = (0, 0);
while (++$n <= 5000) {
    $s = main::put("fill$n");
    last if $s != 201;
}
my %status;
$status{"delete " . main::admin('DELETE', "/fill$_")}++ for 1 .. 20;
for my $round (1 .. 3) {
    $status{"get " . main::get("fill$_")}++ for 21 .. $n - 1;
}
$status{"new put " . main::put("new$_")}++ for 1 .. 20;
$status{"new get " . main::get("new$_")}++ for 1 .. 20;
ClawTest::report("filled: " . ($n > 100 && $s == 507 ? "yes" : "no, $n, $s"),
                 map { "$_: " . ($_ eq "get 200" && $status{$_} == 3 * ($n - 21)
                                 ? "all" : $status{$_}) }
                 sort keys %status);
--- response_body
filled: yes
delete 204: 20
get 200: all
new get 200: 20
new put 201: 20
--- no_error_log
[alert]
--- timeout: 120



=== TEST 5: a zone filled with tenants to its 507 still has room for a record of every request in flight: 100 at once on 100 tenants, all served
Tenants may not take the last thirty-second of the zone, which is kept
for the workers' records.  Before, the admin API could take every page,
and requests of tenants without a record were refused with 503 ("zone
full") once the few records left in the last page were in use.
--- http_config eval: $::SmallZone
--- init
my ($n, $s) = (0, 0);
while (++$n <= 5000) {
    $s = main::put("fill$n");
    last if $s != 201;
}
my @bg = map { ClawTest::http_status_background('/_c/respond?sleep=2000',
                                                "Host: fill$_.claw.test",
                                                @main::Auth) } 1 .. 100;
my %ended;
for my $b (@bg) {
    my ($st) = ClawTest::background_status($b);
    $ended{$st}++;
}
ClawTest::report("filled: " . ($n > 100 && $s == 507 ? "yes" : "no, $n, $s"),
                 map { "in flight ended $_: $ended{$_}" } sort keys %ended);
--- response_body
filled: yes
in flight ended 200: 100
--- no_error_log
[alert]
full, request of tenant
--- timeout: 120
