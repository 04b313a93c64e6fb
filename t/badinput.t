# Requests no normal client sends, raw: where a client library would
# normalise (one Host, a well-formed request line, no fragment, one way
# to frame the body, bounded headers), an attacker does not.  Each one
# must get the right status, reach no container and leave no credential
# in the logs.
#
# The container is an nginx server that writes "container-reached <uri>"
# to logs/access.log; the test server writes "front " and then the
# shipped log_format of examples/nginx.conf ($claw_tenant, $claw_auth,
# "$request", ...) to the same file, so that --- no_access_log says both
# that no container saw the request and that the access log a production
# server writes does not show the credential.
#
# Core behaviour the suite pins: most of these requests never reach the
# module.  nginx's own parser refuses them while it reads the request
# line or the headers (TEST 2-4, 7-17, 22-24, "nginx core" in their
# titles, "--- core_refuses" in their text), before any phase handler of
# the module runs: their status is nginx's, and they would get it with
# the module unloaded.  What the module still answers for there, and
# what these blocks assert (see the preprocessor):
#
#   - no container is reached (the container's log stays empty);
#   - the access line is written with no tenant and no credential kind
#     ($claw_tenant and $claw_auth "-": the refused request is not
#     attributed to alice), and the Bearer value is not in it;
#   - the Bearer value is not in the error log at "notice".  Where nginx
#     reads headers at all (not TEST 7 and 24, refused in the request
#     line), the Authorization header comes before the line it refuses,
#     or is that line, so nginx has read it: at "debug" (the suite's
#     default) nginx logs every header it reads ("http header: ..."), and
#     at "info" the line it refuses (TEST 16, 17: "client sent duplicate
#     header line: \"Authorization: Bearer ...\"") and the request line.
#     That is core behaviour (docs/hardening.md, "Limitations"), so these
#     blocks assert at "notice": examples/nginx.conf sets no error_log
#     (nginx's default level, "error") and docs/hardening.md asks for
#     "notice" or above in production; "notice" covers both.
#
# A claw_token in the request line of such a request is not redacted
# (the module's POST_READ handler never runs): TEST 28 checks that, as a
# TODO, until the module redacts it.
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

    # examples/nginx.conf's "claw" format, after "front "
    log_format front 'front \$remote_addr \$claw_tenant \$claw_auth [\$time_local] '
                     '"\$claw_request" \$status \$body_bytes_sent \$request_time '
                     '"\$upstream_addr" \$upstream_response_time';

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
    access_log logs/access.log front;

    location / {
        claw on;
        proxy_pass http://claw;
    }

    location = /report.txt {
    }
_EOC_
    }

    # core behaviour the suite pins (see the top): what the module still
    # answers for when nginx refuses the request before the module runs
    if (defined $block->core_refuses) {
        my $status = $block->error_code;
        $status =~ s/\s+//g;
        $block->set_value("log_level", "notice")
            unless defined $block->log_level;
        $block->set_value("access_log",
            [qr/^front 127\.0\.0\.1 - - \[[^\]]+\] "[^"]*" $status /]);
        $block->set_value("no_access_log",
            ["container-reached", "alice-token-1"]);
        $block->set_value("no_error_log",
            ["alice-token-1", "[alert]", "[crit]"]);
    }

    if (!defined $block->no_access_log && !defined $block->access_log) {
        $block->set_value("no_access_log", ["container-reached",
                                            "alice-token-1"]);
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



=== TEST 2: the same Host twice (nginx core refuses it)
--- core_refuses
--- raw_request eval
"GET / HTTP/1.1\r\n$::Auth" . "Host: alice.claw.test\r\nHost: alice.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 3: a second Host hidden in an obs-fold continuation line (nginx core refuses it)
--- core_refuses
--- raw_request eval
"GET / HTTP/1.1\r\n$::Auth" . "Host: alice.claw.test\r\n Host: mallory.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 4: the Host value folded onto the next line (nginx core refuses it)
--- core_refuses
--- raw_request eval
"GET / HTTP/1.1\r\n$::Auth" . "Host:\r\n alice.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 5: an absolute-form target naming no tenant wins over a Host that does
--- raw_request eval
"GET http://mallory.claw.test/ HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 404



=== TEST 6: an absolute-form target naming an address
--- raw_request eval
"GET http://127.0.0.1:19970/ HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 404



=== TEST 7: an absolute-form target with userinfo (nginx core refuses it)
# ('@' is no character of a host in nginx's request line parser)
--- core_refuses
--- raw_request eval
"GET http://alice.claw.test\@mallory.claw.test/ HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 8: Content-Length and Transfer-Encoding together (nginx core refuses it)
--- core_refuses
--- raw_request eval
"POST / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Content-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth\r\n"
--- error_code: 400



=== TEST 9: Transfer-Encoding twice (nginx core refuses it)
--- core_refuses
--- raw_request eval
"POST / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
--- error_code: 400



=== TEST 10: a Transfer-Encoding other than chunked (nginx core refuses it)
--- core_refuses
--- raw_request eval
"POST / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Transfer-Encoding: identity, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
--- error_code: 501



=== TEST 11: two Content-Length values (nginx core refuses it)
--- core_refuses
--- raw_request eval
"POST / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Content-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab"
--- error_code: 400



=== TEST 12: a signed Content-Length (nginx core refuses it)
--- core_refuses
--- raw_request eval
"POST / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Content-Length: +2\r\nConnection: close\r\n\r\nab"
--- error_code: 400



=== TEST 13: a Host with a NUL byte in it (nginx core refuses it)
--- core_refuses
--- raw_request eval
"GET / HTTP/1.1\r\n$::Auth" . "Host: alice.claw.test\0.mallory.test\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 14: a Host with a space in it (nginx core refuses it)
--- core_refuses
--- raw_request eval
"GET / HTTP/1.1\r\n$::Auth" . "Host: alice claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 15: a Host with a control byte in it (nginx core refuses it)
--- core_refuses
--- raw_request eval
"GET / HTTP/1.1\r\n$::Auth" . "Host: alice\x01.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 16: a credential header with a NUL byte in it (nginx core refuses it)
--- core_refuses
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\nAuthorization: Bearer alice-token-1\0x\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 17: two Authorization headers (nginx core refuses it)
--- core_refuses
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 18: a claw_token in a fragment of the path is no credential: the target is refused
# The request line is logged with its fragment redacted, at info in the
# module's line and in $request too (TEST 28: $claw_request)
--- log_level: info
--- raw_request eval
"GET /p#x?claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- no_access_log
container-reached
alice-token-1
--- error_log
claw: a fragment in the request target
#[redacted] HTTP/1.1
--- no_error_log
alice-token-1



=== TEST 19: a claw_token in a fragment after the query is no credential: the target is refused
# The request line is logged with its fragment redacted, at info in the
# module's line and in $request too (TEST 28: $claw_request)
--- log_level: info
--- raw_request eval
"GET /p?x=1#claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- no_access_log
container-reached
alice-token-1
--- error_log
claw: a fragment in the request target
#[redacted] HTTP/1.1
--- no_error_log
alice-token-1



=== TEST 20: a claw_token in a fragment of the path never reaches the container
# (the request line is logged with its fragment redacted: TEST 18, 28)
# fragment-token (fixed): nginx accepts a '#' in the request target and
# proxy_pass forwards the target as it came; claw_token is taken off $args
# only, which do not include what follows the '#' of the path.  With
# another valid credential, the container got "/p#x?claw_token=<token>".
--- raw_request eval
"GET /p#x?claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400
--- no_access_log
container-reached



=== TEST 21: a claw_token in a fragment after the query never reaches the container
# (the request line is logged with its fragment redacted: TEST 18, 28)
# fragment-token (fixed), as TEST 20: "?x=1#claw_token=<token>" is the one
# argument "x" with the value "1#claw_token=<token>" to the module.
--- raw_request eval
"GET /p?x=1#claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "Connection: close\r\n\r\n"
--- error_code: 400
--- no_access_log
container-reached



=== TEST 22: a header line longer than the buffers (nginx core refuses it)
--- core_refuses
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . "X-Long: " . ("a" x 9000) . "\r\nConnection: close\r\n\r\n"
--- error_code: 400



=== TEST 23: more header lines than the buffers hold (nginx core refuses it)
--- core_refuses
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\n$::Auth" . CORE::join("", map { "X-H$_: v\r\n" } 1 .. 5000) . "Connection: close\r\n\r\n"
--- error_code: 400



=== TEST 24: a request line longer than the buffers (nginx core refuses it)
# (the request line is refused before it is whole: nginx logs its
# first bytes, not the claw_token at its end)
--- core_refuses
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



=== TEST 28: a claw_token in a target refused before the module ran (by nginx core while reading the headers, or for a fragment) is redacted in the access log ($claw_request)
# The module takes claw_token off the request and redacts the request line
# in its POST_READ handler.  A request nginx core refuses while it reads
# the headers never gets there (the group of TEST 2), and a claw_token
# behind a '#' is no argument (TEST 18-21): $request then shows the token.
# $claw_request, which the shipped log_format uses, redacts the line
# itself, whenever it is logged.
--- init
my %req = (
    "the same Host twice" =>
        "GET /?claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\n"
        . "Host: alice.claw.test\r\nConnection: close\r\n\r\n",
    "Content-Length and Transfer-Encoding" =>
        "POST /?claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\n"
        . "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"
        . "Connection: close\r\n\r\n0\r\n\r\n",
    "a fragment" =>
        "GET /p#x?claw_token=alice-token-1 HTTP/1.1\r\nHost: alice.claw.test\r\n"
        . "Connection: close\r\n\r\n",
);
my $log = ClawTest::servroot() . "/logs/access.log";
close ClawTest::connect_nginx("TEST 28", 5);    # (valgrind: nginx is up)
for my $what (sort keys %req) {
    my $from = -s $log // 0;
    ClawTest::http_raw($req{$what}, 5);
    my $line = '';
    for (1 .. 50) {
        open my $fh, '<', $log or next;
        seek $fh, $from, 0;
        local $/;
        $line = <$fh> // '';
        last if $line =~ /^front /m;
        select(undef, undef, undef, 0.1);
    }
    Test::More::like($line, qr/^front .* 40\d /m,
                     "TEST 28: $what: refused, and logged");
    Test::More::unlike($line, qr/alice-token-1/,
                       "TEST 28: $what: no claw_token in the access line");
    Test::More::like($line, $what eq "a fragment"
                             ? qr{"GET /p#\[redacted\] HTTP/1\.1"}
                             : qr/claw_token=\[redacted\]/,
                     "TEST 28: $what: the request line redacted");
}
ClawTest::report("checked");
--- request
GET /report.txt
--- response_body
checked
--- no_access_log
container-reached
