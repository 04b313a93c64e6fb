# docs/openapi.yaml, the admin API's description, against the module:
# t/openapi/check.mjs (Node, with validators from the npm registry that
# make deps-openapi installs) checks that the document is valid OpenAPI
# 3.1, sends every request of its x-claw-sequence (every example of the
# document among them) to this nginx, and validates every answer against
# the schema of its status.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

our $Modules = "$ENV{TEST_NGINX_CLAW_ROOT}/build/npm/node_modules";

BEGIN {
    my $m = ($ENV{TEST_NGINX_CLAW_ROOT} // '.') . '/build/npm/node_modules';
    if (!-d "$m/ajv" || !-x '/usr/bin/node') {
        require Test::More;
        Test::More::plan(skip_all => 'no validators: make deps-openapi');
    }
}

master_on();
workers(1);
no_shuffle();
no_root_location();

run_tests();

__DATA__

=== TEST 1: every example request sent, every answer valid
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
--- user_files
>>> tenants.conf
# none yet
--- config
    location /claw/ {
        claw_admin;
    }

    location = /report.txt {
    }
--- init
my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
my $root = $ENV{TEST_NGINX_CLAW_ROOT};
my $out = `node $root/t/openapi/check.mjs http://127.0.0.1:$port/claw $root/docs/openapi.yaml $::Modules 2>&1`;
my $rc = $? >> 8;
ClawTest::report("exit: $rc", grep { !/^ok - / } split /\n/, $out);
--- request
GET /report.txt
--- response_body
exit: 0
