# The registry file: every malformed line fails "nginx -t", start and
# reload with file:line and the reason; a failed reload keeps the old
# registry serving; a good reload is in force for the next request.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();
no_root_location();

our $Good = <<'_EOF_';
# a comment line, then blank lines

	alice   127.0.0.1:19871   token=sha256:374F4C85576C23A1F3D9A99769F481944AF78A415A995A6AD5FFD1E4B4AC76F1 rate=10r/s burst=20 conn=32 # trailing comment
bob     [::1]:19872       domain=agent.bob.dev rate=600r/m
_EOF_

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;

    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19871;
        return 200 "alice-container\n";
    }

    server {
        listen 127.0.0.1:19873;
        return 200 "alice-moved\n";
    }
_EOC_
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
        add_header X-Tenant $claw_tenant always;
    }
_EOC_
    }

    if (!defined $block->request) {
        $block->set_value("request", "GET /\n");
    }

    if (defined $block->must_die && !defined $block->no_error_log) {
        $block->set_value("no_error_log", "[alert]\n");
    }

    ClawTest::fresh_zone($block);
});

run_tests();

__DATA__

=== TEST 1: comments, blank lines, tabs and upper-case hex are fine
--- user_files eval
">>> tenants.conf\n$::Good"
--- more_headers
Host: alice.claw.test
--- response_body
alice-container
--- error_log
": 2 tenants loaded from
--- no_error_log
[error]
[emerg]



=== TEST 2: a registry with no tenants at all is a comment line
--- user_files
>>> tenants.conf
# no tenants yet
--- more_headers
Host: alice.claw.test
--- error_code: 404
--- no_error_log
[error]
[emerg]



=== TEST 3: an empty file fails closed
--- user_files eval
">>> tenants.conf\n"
--- must_die
--- error_log
tenants.conf:1: empty registry file



=== TEST 4: a file cut in the middle of a line fails closed
--- user_files eval
[["tenants.conf" => "alice 127.0.0.1:19871\nbob 127.0.0.1:198"]]
--- must_die
--- error_log
tenants.conf:2: no newline at end of file (truncated?)



=== TEST 5: a missing file
--- user_files
>>> other.conf
# not the registry
--- must_die
--- error_log eval
qr/claw_tenants: open\(\) ".*tenants\.conf" failed \(2: No such file or directory\)/



=== TEST 6: an upper-case tenant id
--- user_files
>>> tenants.conf
Alice 127.0.0.1:19871
--- must_die
--- error_log
tenants.conf:1: invalid tenant id "Alice"



=== TEST 7: an id with a leading hyphen
--- user_files
>>> tenants.conf
# first line
-alice 127.0.0.1:19871
--- must_die
--- error_log
tenants.conf:2: invalid tenant id "-alice"



=== TEST 8: an id that is a punycode label
--- user_files
>>> tenants.conf
xn--lice-9na 127.0.0.1:19871
--- must_die
--- error_log
tenants.conf:1: invalid tenant id "xn--lice-9na"



=== TEST 9: an id longer than a DNS label
--- user_files eval
">>> tenants.conf\n" . ("a" x 64) . " 127.0.0.1:19871\n"
--- must_die
--- error_log eval
"tenants.conf:1: invalid tenant id \"" . ("a" x 64) . "\""



=== TEST 10: an upstream given as a host name
--- user_files
>>> tenants.conf
alice localhost:19871
--- must_die
--- error_log
tenants.conf:1: invalid upstream "localhost:19871"



=== TEST 11: an upstream without a port
--- user_files
>>> tenants.conf
alice 127.0.0.1
--- must_die
--- error_log
tenants.conf:1: invalid upstream "127.0.0.1"



=== TEST 12: an upstream with port 0
--- user_files
>>> tenants.conf
alice 127.0.0.1:0
--- must_die
--- error_log
tenants.conf:1: invalid upstream "127.0.0.1:0"



=== TEST 13: an IPv6 upstream without brackets
--- user_files
>>> tenants.conf
alice ::1:19871
--- must_die
--- error_log
tenants.conf:1: invalid upstream "::1:19871"



=== TEST 14: a relative unix socket path
--- user_files
>>> tenants.conf
alice unix:run/alice.sock
--- must_die
--- error_log
tenants.conf:1: invalid upstream "unix:run/alice.sock"



=== TEST 15: a unix path too long to carry the tenant tag
--- user_files eval
">>> tenants.conf\nalice unix:/" . ("p" x 100) . "\n"
--- must_die
--- error_log
tenants.conf:1: invalid upstream "unix:/ppp



=== TEST 16: a line without an upstream
--- user_files
>>> tenants.conf
alice
--- must_die
--- error_log
tenants.conf:1: missing upstream after "alice"



=== TEST 17: a token that is not a sha256 digest
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 token=alice-token-1
--- must_die
--- error_log
tenants.conf:1: invalid token "token=alice-token-1"



=== TEST 18: a digest one hex digit short
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f
--- must_die
--- error_log
tenants.conf:1: invalid token



=== TEST 19: the same digest twice
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1
--- must_die
--- error_log
tenants.conf:1: duplicate token



=== TEST 20: more tokens than a tenant may have
--- user_files eval
">>> tenants.conf\nalice 127.0.0.1:19871"
. CORE::join("", map { sprintf " token=sha256:%064x", $_ } 1 .. 17) . "\n"
--- must_die
--- error_log
tenants.conf:1: too many tokens



=== TEST 21: a rate per hour
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 rate=10r/h
--- must_die
--- error_log
tenants.conf:1: invalid rate "rate=10r/h"



=== TEST 22: a zero rate
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 rate=0r/s
--- must_die
--- error_log
tenants.conf:1: invalid rate "rate=0r/s"



=== TEST 23: a negative burst
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 burst=-1
--- must_die
--- error_log
tenants.conf:1: invalid burst "burst=-1"



=== TEST 24: conn given twice
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 conn=1 conn=2
--- must_die
--- error_log
tenants.conf:1: duplicate conn "conn=2"



=== TEST 25: an unknown option
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 weight=5
--- must_die
--- error_log
tenants.conf:1: unknown option "weight=5"



=== TEST 26: a bare word where options go
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 bob
--- must_die
--- error_log
tenants.conf:1: invalid option "bob"



=== TEST 27: a custom domain that is one label
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 domain=localhost
--- must_die
--- error_log
tenants.conf:1: invalid domain "domain=localhost"



=== TEST 28: a custom domain that is an address
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 domain=10.0.0.1
--- must_die
--- error_log
tenants.conf:1: invalid domain "domain=10.0.0.1"



=== TEST 29: the same tenant twice
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871
bob   127.0.0.1:19872
alice 127.0.0.1:19873
--- must_die
--- error_log
tenants.conf:3: duplicate tenant "alice", first on line 1



=== TEST 30: a domain claimed by two tenants, in any case
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 domain=agent.example.org
bob   127.0.0.1:19872 domain=Agent.Example.ORG.
--- must_die
--- error_log
tenants.conf:2: duplicate domain "agent.example.org", first on line 1



=== TEST 31: a custom domain under claw_domain would shadow a tenant
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871 domain=bob.claw.test
--- must_die
--- error_log
tenants.conf:1: domain "bob.claw.test" is under the claw_domain "claw.test"



=== TEST 31a: a custom domain that is the claw_domain, or a parent of it, would capture the platform's names
--- config
    claw_domain apps.corp.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }
--- user_files
>>> tenants.conf
alice 127.0.0.1:19871
bob   127.0.0.1:19871 domain=corp.test
--- must_die
--- error_log
tenants.conf:2: domain "corp.test" is a parent of the claw_domain "apps.corp.test"



=== TEST 31b: ... the claw_domain itself
--- config
    claw_domain apps.corp.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }
--- user_files
>>> tenants.conf
bob   127.0.0.1:19871 domain=Apps.Corp.Test.
--- must_die
--- error_log
tenants.conf:1: domain "apps.corp.test" is the claw_domain "apps.corp.test"



=== TEST 31c: a custom domain of a single label
--- user_files
>>> tenants.conf
bob   127.0.0.1:19871 domain=localhost
--- must_die
--- error_log
tenants.conf:1: invalid domain "domain=localhost"



=== TEST 32: a NUL byte
--- user_files eval
[["tenants.conf" => "alice 127.0.0.1:19871\0 token=x\n"]]
--- must_die
--- error_log
tenants.conf:1: NUL byte in line



=== TEST 33: claw_tenants without claw_zone
--- http_config
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
--- config
--- user_files eval
">>> tenants.conf\n$::Good"
--- must_die
--- error_log
"claw_tenants" requires "claw_zone"



=== TEST 34: claw_zone without claw_tenants
--- http_config
    claw_zone claw:1m;
--- config
--- must_die
--- error_log eval
qr/"claw_zone" "claw_t\d+" requires "claw_tenants"/



=== TEST 35: claw on without a zone
--- http_config
--- config
    location / {
        claw on;
    }
--- must_die
--- error_log
"claw on" requires "claw_zone" and "claw_tenants" in the http block



=== TEST 36: a zone given twice
--- http_config
    claw_zone claw:1m;
    claw_zone other:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth off;
--- config
--- user_files eval
">>> tenants.conf\n$::Good"
--- must_die
--- error_log
"claw_zone" directive is duplicate



=== TEST 37: a malformed claw_domain
--- config
    claw_domain claw..test;
--- user_files eval
">>> tenants.conf\n$::Good"
--- must_die
--- error_log
invalid claw_domain "claw..test"



=== TEST 38: a failed reload keeps the old registry serving
--- user_files eval
">>> tenants.conf\n$::Good"
--- init
ClawTest::write_file('html/tenants.conf', "alice 127.0.0.1:19873\nbob localhost:80\n");
ClawTest::nginx_reload() and die "the reload should have been refused\n";
--- more_headers
Host: alice.claw.test
--- response_body
alice-container
--- error_log
tenants.conf:2: invalid upstream "localhost:80"
--- no_error_log
[alert]



=== TEST 39: a good reload is in force for the next request
--- user_files eval
">>> tenants.conf\n$::Good"
--- init
ClawTest::write_file('html/tenants.conf', "alice 127.0.0.1:19873\n");
ClawTest::nginx_reload() or die "the reload should have been accepted\n";
--- more_headers
Host: alice.claw.test
--- response_body
alice-moved
--- error_log
2 tenants loaded from
1 tenants loaded from
1 removed
--- no_error_log
[error]
[emerg]



=== TEST 40: a tenant removed by a reload answers 404
--- user_files eval
">>> tenants.conf\n$::Good"
--- init
ClawTest::write_file('html/tenants.conf', "alice 127.0.0.1:19871\n");
ClawTest::nginx_reload() or die "the reload should have been accepted\n";
--- more_headers
Host: bob.claw.test
--- error_code: 404
--- no_error_log
[error]
[emerg]
