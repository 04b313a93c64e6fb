# Every refusal says why, without a credential: $claw_limit (pass, rate,
# conn, lockout, suspended, maintenance), $claw_auth_error (missing,
# invalid, conflict) and $claw_token_id (which token, as the registry
# lists its digest) in the shipped JSON log format
# (examples/claw-log.conf, included as operators would), and
# claw_refused_total{tenant,reason} in the metrics.

use lib 't/perl';
use ClawTest;
use JSON::PP ();
use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();
no_root_location();

start_containers(['slow', '127.0.0.1:19873']);

our $A = ClawTest::sha256_hex('alice-token-1');
our $B = ClawTest::sha256_hex('alice-token-2');

# alice: 1 r/m, no burst; dave: one request in flight; erin suspended,
# fay in maintenance
our $Tenants = <<"_EOF_";
alice  127.0.0.1:19871  token=sha256:$A token=sha256:$B rate=1r/m burst=0
dave   127.0.0.1:19873  token=sha256:$A conn=1
erin   127.0.0.1:19871  token=sha256:$A state=suspended
fay    127.0.0.1:19871  token=sha256:$A state=maintenance
_EOF_

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth_fail_limit 3/m;

    include $TEST_NGINX_CLAW_ROOT/examples/claw-log.conf;

    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19871;
        return 200 "ok\n";
    }
_EOC_

    $block->set_value("user_files", ">>> tenants.conf\n$Tenants");

    $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;
    access_log logs/claw.log claw_json;

    location / {
        claw on;
        proxy_pass http://claw;
    }

    location = /metrics {
        access_log off;
        claw_metrics;
    }

    location = /report.txt {
        access_log off;
    }
_EOC_

    $block->set_value("request", "GET /report.txt");

    ClawTest::fresh_zone($block);
});

# the access log's entries, one JSON object each
sub entries {
    my $file = ClawTest::servroot() . '/logs/claw.log';
    open my $fh, '<', $file or return ();
    return map { JSON::PP->new->decode($_) } <$fh>;
}

run_tests();

__DATA__

=== TEST 1: what each refusal was, in the JSON log, with no credential in it
--- init
my @req = (
    ['alice', 'Authorization: Bearer alice-token-1'],
    ['alice', 'Authorization: Bearer alice-token-2'],
    ['alice'],
    ['alice', 'Authorization: Bearer wrong-1'],
    ['alice', 'Authorization: Bearer alice-token-1', '/?claw_token=alice-token-2'],
    ['alice', 'Authorization: Bearer wrong-2'],
    ['alice', 'Authorization: Bearer wrong-3'],
    ['alice', 'Authorization: Bearer alice-token-1'],
    ['erin', 'Authorization: Bearer alice-token-1'],
    ['fay'],
);
my @status;
# dave first (the lockout below is the address's, on every tenant): one
# request in flight, the second refused
ClawTest::http_background('/_c/respond?sleep='
                          . int(ClawTest::patience(1.5) * 1000),
                          'Host: dave.claw.test',
                          'Authorization: Bearer alice-token-1');
select(undef, undef, undef, ClawTest::patience(0.5));
push @status, ClawTest::http_get('/', 'Host: dave.claw.test',
                                 'Authorization: Bearer alice-token-1');
for my $r (@req) {
    my ($tenant, $h, $path) = @$r;
    push @status, ClawTest::http_get($path // '/', "Host: $tenant.claw.test",
                                     grep { defined } $h);
}
my @lines = ("statuses: @status");
# a line is written once its answer is sent: the last may come late
ClawTest::wait_until(5, sub { main::entries() >= 11 });
for my $e (grep { $_->{tenant} ne '' } main::entries()) {
    push @lines, CORE::join ' ', $e->{status}, $e->{tenant},
        map { "$_=" . ($e->{$_} eq '' ? '-' : $e->{$_}) }
        qw(auth token_id auth_error limit);
}
my $log = ClawTest::slurp(ClawTest::servroot() . '/logs/claw.log');
push @lines, "a token in the log: "
    . ($log =~ /alice-token|wrong-/ ? 'yes' : 'no');
push @lines, "the redacted request: "
    . ($log =~ m{"request":"GET /\?claw_token=\[redacted\] HTTP/1.1"} ? 'yes' : 'no');
ClawTest::report(@lines);
--- response_body eval
my ($a, $b) = (substr($::A, 0, 12), substr($::B, 0, 12));
"statuses: 429 200 429 401 401 400 401 429 429 403 503
429 dave auth=bearer token_id=$a auth_error=- limit=conn
200 alice auth=bearer token_id=$a auth_error=- limit=pass
429 alice auth=bearer token_id=$b auth_error=- limit=rate
401 alice auth=- token_id=- auth_error=missing limit=-
401 alice auth=- token_id=- auth_error=invalid limit=-
400 alice auth=- token_id=- auth_error=conflict limit=-
401 alice auth=- token_id=- auth_error=invalid limit=-
429 alice auth=- token_id=- auth_error=- limit=lockout
429 alice auth=- token_id=- auth_error=- limit=lockout
403 erin auth=- token_id=- auth_error=- limit=suspended
503 fay auth=- token_id=- auth_error=- limit=maintenance
a token in the log: no
the redacted request: yes
"



=== TEST 2: claw_refused_total counts each tenant's refusals by reason
--- init
my @req = (
    ['alice', 'Authorization: Bearer alice-token-1'],
    ['alice', 'Authorization: Bearer alice-token-1'],
    ['alice', 'Authorization: Bearer alice-token-1'],
    ['alice', 'Authorization: Bearer nope'],
    ['erin', 'Authorization: Bearer alice-token-1'],
    ['fay'],
    ['fay'],
);
ClawTest::http_get('/', "Host: $_->[0].claw.test", grep { defined } $_->[1])
    for @req;
my (undef, $m) = ClawTest::http_request(GET => '/metrics');
ClawTest::report(grep { /^claw_refused_total/ && !/ 0$/ } split /\n/, $m);
--- response_body
claw_refused_total{tenant="alice",reason="rate"} 2
claw_refused_total{tenant="alice",reason="auth"} 1
claw_refused_total{tenant="erin",reason="suspended"} 1
claw_refused_total{tenant="fay",reason="maintenance"} 2
