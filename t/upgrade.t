# An upgrade keeps every tenant: a registry file and a journal of admin
# changes written by an earlier release (t/fixtures/upgrade-886db27, made
# by the module as it was before tenant states, killed before its journal
# was folded) load in this one, which serves exactly the tenants, tokens
# and domains they say, folds the journal into the file, and takes
# changes of the fields added since on the tenants it loaded.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();
no_root_location();

our $Fixtures = "$ENV{TEST_NGINX_CLAW_ROOT}/t/fixtures/upgrade-886db27";
our $Registry = ClawTest::slurp("$Fixtures/tenants.conf");
our $Journal = ClawTest::slurp("$Fixtures/tenants.conf.journal");

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/data/tenants.conf;

    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19941;
        return 200 "alice-container\n";
    }

    server {
        listen 127.0.0.1:19943;
        return 200 "carol-container\n";
    }

    server {
        listen $TEST_NGINX_SERVER_PORT;
        server_name *.claw.test agent.bob.test dave.example;
        claw_domain claw.test;

        location / {
            claw on;
            proxy_pass http://claw;
        }

        location /claw/ {
            claw_admin;
        }
    }
_EOC_
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location = /registry {
        alias $TEST_NGINX_SERVER_ROOT/html/data/tenants.conf;
        default_type text/plain;
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", [
            ["data/tenants.conf" => $::Registry],
            ["data/tenants.conf.journal" => $::Journal],
        ]);
    }

    if (!defined $block->no_error_log) {
        $block->set_value("no_error_log", "[error]\n[alert]\n");
    }

    ClawTest::fresh_zone($block);
});

run_tests();

__DATA__

=== TEST 1: a tenant of the old registry file, with the token written there
--- more_headers
Host: alice.claw.test
Authorization: Bearer claw_upgrade_alice_token_0001
--- request
GET /
--- response_body
alice-container



=== TEST 2: the token the old admin API minted for her (its journal)
--- more_headers
Host: alice.claw.test
Authorization: Bearer claw_KM7Zw9GkfCBamVOxkQdXoxbUQ1-GeyA-V-OXBEDBc9M
--- request
GET /
--- response_body
alice-container



=== TEST 3: a tenant the old admin API created, with her token
--- more_headers
Host: carol.claw.test
Authorization: Bearer claw_upgrade_carol_token_0001
--- request
GET /
--- response_body
carol-container



=== TEST 4: a tenant the old admin API deleted is gone
--- more_headers
Host: bob.claw.test
Authorization: Bearer claw_upgrade_bob_token_0001
--- request
GET /
--- error_code: 404



=== TEST 5: and so is his custom domain
--- more_headers
Host: agent.bob.test
Authorization: Bearer claw_upgrade_bob_token_0001
--- request
GET /
--- error_code: 404



=== TEST 6: a tenant created and deleted in the journal, domain and all
--- more_headers
Host: dave.example
--- request
GET /
--- error_code: 404



=== TEST 7: one tenant's token is worth nothing on another
--- more_headers
Host: alice.claw.test
Authorization: Bearer claw_upgrade_carol_token_0001
--- request
GET /
--- error_code: 401



=== TEST 8: the journal is folded into the file at start, as this release writes it
--- request
GET /registry
--- response_body_like chomp
\A# the registry of 886db27, before tenant states: written by hand, then
# changed through the admin API \(journal\)
alice 127\.0\.0\.1:19941 token=sha256:21d7a78eb1d03688ef3014d978eaca373f87d3d0dcacde4df97dfd96de7683d0 token=sha256:146394cf9e7cb8a012a29c2acc2ed859052a76148d5b491a5bffdb34784bcb7c rate=10r/s burst=20 conn=8
carol 127\.0\.0\.1:19943 token=sha256:1e1446db30bab5298bc3f13937582816bc97609fd53b8017b1adf096aaba9078 conn=4
\z



=== TEST 9: a field added since (state) changes a tenant loaded from the old files, at once
--- more_headers
Host: carol.claw.test
Authorization: Bearer claw_upgrade_carol_token_0001
Content-Type: application/json
--- request eval
["PATCH /claw/tenants/carol\n{\"state\":\"suspended\"}",
 "GET /"]
--- error_code eval
[200, 403]
--- response_body_like eval
['"state":"suspended"', '']
