# examples/clawctl, the admin API's command line, against the module: a
# tenant's whole life (create, change one field, mint a token that then
# works on the tenant's host, suspend, resume, revoke, delete), as a table
# and as JSON, on TCP with the operator's token and on the unix socket;
# and the exit codes scripts rely on: 2 no such tenant, 3 a conflict or a
# stale version, 4 refused (bad input, no operator token), 5 no server,
# 1 a usage error.

use lib 't/perl';
use ClawTest;
use JSON::PP ();
use Test::Nginx::Socket 'no_plan';

BEGIN {
    if (!-x '/usr/bin/python3') {
        require Test::More;
        Test::More::plan(skip_all => 'python3 is not installed');
    }
}

master_on();
workers(1);
no_shuffle();
no_root_location();

our $Ctl = "$ENV{TEST_NGINX_CLAW_ROOT}/examples/clawctl";
our $OpDigest = ClawTest::sha256_hex('operator-token-1');

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<"_EOC_");
    claw_zone claw:1m;
    claw_tenants \$TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19861;
        return 200 "container\\n";
    }

    server {
        listen unix:\$TEST_NGINX_SERVER_ROOT/admin.sock;

        location / {
            claw_admin;
        }
    }
_EOC_

    $block->set_value("user_files", <<'_EOF_');
>>> tenants.conf
# no tenants yet
>>> operator.token
operator-token-1
_EOF_

    $block->set_value("config", <<"_EOC_");
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }

    location /admin/ {
        claw_admin;
        claw_admin_token sha256:$OpDigest;
    }

    location = /report.txt {
    }
_EOC_

    $block->set_value("request", "GET /report.txt");

    ClawTest::fresh_zone($block);
});

# clawctl on TCP with the operator's token: (exit code, output)
sub ctl {
    my @args = @_;
    my $root = ClawTest::servroot();
    my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
    return ctl_raw("--url", "http://127.0.0.1:$port/admin",
                   "--token-file", "$root/html/operator.token", @args);
}

sub ctl_raw {
    my @args = map { "'$_'" } @_;
    my $out = `$Ctl @args 2>&1`;
    return ($? >> 8, $out);
}

sub status_of {
    my ($id, @h) = @_;
    return ClawTest::http_get('/', "Host: $id.claw.test", @h);
}

run_tests();

__DATA__

=== TEST 1: a tenant's whole life through clawctl
--- init
my @lines;
my $digest = ClawTest::sha256_hex('alice-token-1');
my ($rc, $out) = main::ctl(qw(create alice --upstream 127.0.0.1:19861
                              --rate 10r/s --domain agent.alice.test),
                           "--digest", "sha256:$digest");
push @lines, "create: $rc", $out;
($rc, $out) = main::ctl(qw(set alice rate=20r/s conn=4));
push @lines, "set: $rc", $out;
($rc, $out) = main::ctl(qw(mint alice));
my ($token) = $out =~ /^token: (\S+)$/m;
push @lines, "mint: $rc, a token: " . ($token ? 'yes' : $out);
push @lines, "with it: " . main::status_of('alice', "Authorization: Bearer $token");
($rc) = main::ctl(qw(suspend alice));
push @lines, "suspend: $rc, a request: " . main::status_of('alice', "Authorization: Bearer $token");
($rc) = main::ctl(qw(resume alice));
push @lines, "resume: $rc, a request: " . main::status_of('alice', "Authorization: Bearer $token");
($rc) = main::ctl(qw(revoke alice), "sha256:$digest");
push @lines, "revoke: $rc, the old token: "
    . main::status_of('alice', "Authorization: Bearer alice-token-1");
($rc, $out) = main::ctl(qw(--json list));
my $list = eval { JSON::PP->new->decode($out) };
push @lines, "list --json: $rc, "
    . ($list ? join(',', map { "$_->{id}:" . scalar @{ $_->{tokens} } } @{ $list->{tenants} }) : $out);
($rc, $out) = main::ctl_raw('--socket', ClawTest::servroot() . '/admin.sock',
                            qw(get alice));
$out =~ s/"[0-9a-f]{32}"/V/;
push @lines, "get on the socket: $rc", $out;
($rc) = main::ctl(qw(delete alice));
push @lines, "delete: $rc, a request: " . main::status_of('alice');
ClawTest::report(@lines);
--- response_body
create: 0
id     state   upstream         rate   burst  conn  tokens  domains
alice  active  127.0.0.1:19861  10r/s  -      -     1       agent.alice.test

set: 0
id     state   upstream         rate   burst  conn  tokens  domains
alice  active  127.0.0.1:19861  20r/s  -      4     1       agent.alice.test

mint: 0, a token: yes
with it: 200
suspend: 0, a request: 403
resume: 0, a request: 200
revoke: 0, the old token: 401
list --json: 0, alice:1
get on the socket: 0
id     state   upstream         rate   burst  conn  tokens  domains
alice  active  127.0.0.1:19861  20r/s  -      4     1       agent.alice.test
version: V

delete: 0, a request: 404



=== TEST 2: exit codes scripts can rely on
--- init
my @lines;
my ($rc, $out) = main::ctl(qw(create bob --upstream 127.0.0.1:19861));
push @lines, "create bob: $rc";
($rc, $out) = main::ctl(qw(get nobody));
push @lines, "get nobody: $rc $out";
($rc, $out) = main::ctl(qw(create bob --upstream 127.0.0.1:19861));
push @lines, "create bob again: $rc $out";
($rc, $out) = main::ctl(qw(--if-match "0123" set bob rate=5r/s));
push @lines, "set for a stale version: $rc";
($rc, $out) = main::ctl(qw(get bob));
my ($v) = $out =~ /^version: (\S+)$/m;
($rc, $out) = main::ctl('--if-match', $v, qw(set bob rate=5r/s));
push @lines, "set for the current version: $rc";
($rc, $out) = main::ctl(qw(set bob rate=fast));
push @lines, "a bad rate: $rc $out";
my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
($rc, $out) = main::ctl_raw('--url', "http://127.0.0.1:$port/admin", qw(list));
push @lines, "no operator token: $rc $out";
($rc, $out) = main::ctl_raw(qw(--url http://127.0.0.1:1/admin list));
push @lines, "no server: $rc";
($rc, $out) = main::ctl(qw(set bob));
push @lines, "usage: $rc";
ClawTest::report(@lines);
--- response_body
create bob: 0
get nobody: 2 clawctl: 404: no tenant "nobody"

create bob again: 3 clawctl: tenant bob exists

set for a stale version: 3
set for the current version: 0
a bad rate: 4 clawctl: 400: "rate" must be like "10r/s" or "600r/m"

no operator token: 4 clawctl: 401: Unauthorized

no server: 5
usage: 1
