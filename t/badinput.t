# Requests no normal client sends, raw: where a client library would
# normalise (one Host, a well-formed request line, no fragment, one way
# to frame the body, bounded headers), an attacker does not.  Each one
# must get the right status and reach no container.
#
# The container is an nginx server that writes "container-reached <uri>"
# to logs/access.log, and the test server itself logs nothing, so that
# --- no_access_log says that no container saw the request.
#
# (t/routing.t has two different Host headers, an absolute-form request
# line that wins over Host, overlong and non-LDH hosts; t/auth.t a huge
# Bearer token.)

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();
no_root_location();

our $Tenants = <<'_EOF_';
alice  127.0.0.1:19970  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1
_EOF_

our $Auth = "Authorization: Bearer alice-token-1\r\n";

add_block_preprocessor(sub {
    my $block = shift;
    my ($n) = $block->name =~ /TEST (\d+)/;

    # a zone of its own per block: HUP mode keeps zones across blocks
    if (!defined $block->http_config) {
        $block->set_value("http_config", <<"_EOC_");
    claw_zone badinput_$n:1m;
    claw_tenants \$TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_cookie_secret \$TEST_NGINX_SERVER_ROOT/html/secret;

    log_format container 'container-reached \$request_uri';

    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19970;
        access_log logs/access.log container;
        return 200 "alice-container\\n";
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files",
                          [["tenants.conf" => $Tenants],
                           ["secret" => "s" x 32]]);
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;
    access_log off;

    location / {
        claw on;
        proxy_pass http://claw;
    }

    location = /report.txt {
    }
_EOC_
    }

    if (!defined $block->no_access_log && !defined $block->access_log) {
        $block->set_value("no_access_log", "container-reached\n");
    }
});

run_tests();

__DATA__

=== TEST 1: the control: a well-formed request reaches the container
--- raw_request eval
"GET /p?x=1 HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- response_body
alice-container
--- access_log
container-reached /p?x=1



=== TEST 2: the same Host twice
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 3: a second Host hidden in an obs-fold continuation line
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\n Host: mallory.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 4: the Host value folded onto the next line
--- raw_request eval
"GET / HTTP/1.1\r\nHost:\r\n alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 5: an absolute-form target naming no tenant wins over a Host that does
--- raw_request eval
"GET http://mallory.claw.test/ HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 404



=== TEST 6: an absolute-form target naming an address
--- raw_request eval
"GET http://127.0.0.1:19970/ HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 404



=== TEST 7: an absolute-form target with userinfo
--- raw_request eval
"GET http://alice.claw.test\@mallory.claw.test/ HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 8: Content-Length and Transfer-Encoding together
--- raw_request eval
"POST / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Content-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth\r\n"
--- error_code: 400



=== TEST 9: Transfer-Encoding twice
--- raw_request eval
"POST / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
--- error_code: 400



=== TEST 10: a Transfer-Encoding other than chunked
--- raw_request eval
"POST / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Transfer-Encoding: identity, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
--- error_code: 501



=== TEST 11: two Content-Length values
--- raw_request eval
"POST / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Content-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab"
--- error_code: 400



=== TEST 12: a signed Content-Length
--- raw_request eval
"POST / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Content-Length: +2\r\nConnection: close\r\n\r\nab"
--- error_code: 400



=== TEST 13: a Host with a NUL byte in it
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\0.mallory.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 14: a Host with a space in it
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 15: a Host with a control byte in it
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice\x01.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 16: a credential header with a NUL byte in it
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\nAuthorization: Bearer alice-token-1\0x\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 17: two Authorization headers
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 18: a claw_token in a fragment of the path is no credential: the target is refused
--- raw_request eval
"GET /p#x?claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 19: a claw_token in a fragment after the query is no credential: the target is refused
--- raw_request eval
"GET /p?x=1#claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 20: a claw_token in a fragment of the path never reaches the container
# fragment-token (fixed): nginx accepts a '#' in the request target and
# proxy_pass forwards the target as it came; claw_token is taken off $args
# only, which do not include what follows the '#' of the path.  With
# another valid credential, the container got "/p#x?claw_token=<token>".
--- raw_request eval
"GET /p#x?claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400
--- no_access_log
claw_token



=== TEST 21: a claw_token in a fragment after the query never reaches the container
# fragment-token (fixed), as TEST 20: "?x=1#claw_token=<token>" is the one
# argument "x" with the value "1#claw_token=<token>" to the module.
--- raw_request eval
"GET /p?x=1#claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400
--- no_access_log
claw_token



=== TEST 22: a header line longer than the buffers
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "X-Long: " . ("a" x 9000) . "\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 23: more header lines than the buffers hold
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . CORE::join("", map { "X-H$_: v\r\n" } 1 .. 5000) . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 24: a request line longer than the buffers
--- raw_request eval
"GET /" . ("a" x 10000) . "?claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 414



=== TEST 25: a claw_token of 5000 characters: refused by its length, never logged
# (at info, the level of the module's own lines; nginx's debug lines show
# the raw request line)
--- log_level: info
--- raw_request eval
"GET /p?claw_token=" . ("t" x 5000) . " HTTP/1.1\r\nHost: alice.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 401
--- no_error_log eval
["t" x 64, "[alert]"]



=== TEST 26: a Cookie of 3000 pairs and a session cookie: no credential, and no crash
# The pairs kept are joined with "; " where the header may have ";" alone:
# ngx_http_claw_cookie_strip() writes up to one byte more per ";" than the
# header has.  Until 82f1f81 ngx_http_claw_auth.c gave it a buffer of the
# header's length: this header wrote ~3000 bytes past it and the worker
# aborted in free() (found by fuzz/fuzz_cookie.c, inputs in
# fuzz/crashes/cookie/).  Under "make asan" and "make valgrind" a byte too
# far is reported too.
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\nCookie: " . ("a;" x 3000) . "__Host-claw=x\r\nConnection: close\r\n\r\n"
--- error_code: 401
--- no_error_log
exited on signal
[alert]



=== TEST 27: an HTTP/0.9 request with a claw_token: no Host, no tenant, no container
--- init
my $resp = ClawTest::http_raw("GET /?claw_token=alice-token-1\r\n", 5);
ClawTest::report("answered: " . ($resp =~ /<title>(\d+)/ ? $1 : "nothing"),
                 "container: " . ($resp =~ /alice-container/ ? "reached" : "not reached"));
--- request
GET /report.txt
--- response_body
answered: 404
container: not reached
