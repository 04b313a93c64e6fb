# Authentication: every request routed with claw on carries a credential
# of the resolved tenant - a Bearer token, a session cookie minted from
# one, or claw_token (browser login, WebSocket upgrades).  Every failure
# looks the same; credentials that disagree are refused; no credential
# ever reaches the container or a log line.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();
no_root_location();

start_containers(['alice', '127.0.0.1:19881'], ['bob', '127.0.0.1:19882']);

our $Secret = 'k' x 24 . 'secret-for-tests';      # 40 bytes

sub session { ClawTest::claw_session($Secret, @_) }

our $Tenants = <<'_EOF_';
alice  127.0.0.1:19881  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 token=sha256:b240c0befacf0ea1df26b7990ea1a7439fcae9613485a90a5489b33804609e18 domain=alice.example.org
bob    127.0.0.1:19882  token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122
_EOF_

our $Unauthorized = <<'_EOF_';
<html>
<head><title>401 Authorization Required</title></head>
<body>
<center><h1>401 Authorization Required</h1></center>
<hr><center>nginx</center>
</body>
</html>
_EOF_

$Unauthorized =~ s/\n/\r\n/g;

# a tenant location that echoes, besides the container's answer, headers
# as nginx sees them after the credentials are taken off
our $EchoConfig = <<'_EOC_';
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        add_header X-UA "$http_user_agent" always;
        add_header X-Cookie "$http_cookie" always;
        add_header X-Via "$http_via" always;
    }
_EOC_

our $Config = <<'_EOC_';
    server_tokens off;
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        add_header X-Claw-Auth "$claw_auth" always;
    }

    location /ws {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        add_header X-Claw-Auth "$claw_auth" always;
    }

    location /healthz {
        claw on;
        claw_auth off;
        proxy_pass http://claw;
        add_header X-Claw-Auth "$claw_auth" always;
    }

    location /public {
        claw on;
        claw_auth off;
        error_page 404 = @private;
        return 404;
    }

    location @private {
        claw on;
        proxy_pass http://claw;
        add_header X-Claw-Auth "$claw_auth" always;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_cookie_secret $TEST_NGINX_SERVER_ROOT/html/secret;
    claw_session_ttl 1h;

    upstream claw {
        claw_balancer;
        keepalive 8;
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", [
            ["tenants.conf" => $Tenants],
            ["secret" => $Secret],
        ]);
    }

    if (!defined $block->config) {
        $block->set_value("config", $Config);
    }

    ClawTest::fresh_zone($block);
});

run_tests();

__DATA__

=== TEST 1: a Bearer token of the tenant
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- response_body_like: ^container: alice\n
--- response_body_unlike: (?i)authorization|alice-token
--- response_headers
X-Claw-Auth: bearer
--- no_error_log
[error]



=== TEST 2: the tenant's other token (rotation)
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-2
--- response_body_like: ^container: alice\n
--- response_headers
X-Claw-Auth: bearer
--- no_error_log
[error]



=== TEST 3: the scheme in any case, by a custom domain
--- request
GET /
--- more_headers
Host: alice.example.org
Authorization: bEaReR   alice-token-1
--- response_body_like: ^container: alice\n
--- no_error_log
[error]



=== TEST 4: no credential: 401 Bearer realm="claw", no container
--- request
GET /
--- more_headers
Host: alice.claw.test
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="claw"
X-Claw-Auth:
--- response_body eval
$::Unauthorized
--- no_error_log
claw balancer
[error]



=== TEST 5: an unknown token: the same 401
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-3
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="claw"
--- response_body eval
$::Unauthorized
--- error_log
claw: invalid credential for tenant "alice"
--- no_error_log
claw balancer
[error]



=== TEST 6: another tenant's token looks exactly like a random one
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Bearer bob-token-1
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="claw"
--- response_body eval
$::Unauthorized
--- no_error_log
claw balancer
[error]



=== TEST 7: ... and works on its own tenant
--- request
GET /
--- more_headers
Host: bob.claw.test
Authorization: Bearer bob-token-1
--- response_body_like: ^container: bob\n
--- no_error_log
[error]



=== TEST 8: Bearer without a token is malformed: the same 401
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Bearer
--- error_code: 401
--- response_body eval
$::Unauthorized
--- no_error_log
claw balancer



=== TEST 9: two words where a token goes
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1 alice-token-2
--- error_code: 401
--- response_body eval
$::Unauthorized
--- no_error_log
claw balancer



=== TEST 10: a non-ASCII token
--- raw_request eval
"GET / HTTP/1.1\r\nHost: alice.claw.test\r\nAuthorization: Bearer alice-t\xc3\xb6ken-1\r\nConnection: close\r\n\r\n"
--- error_code: 401
--- response_body eval
$::Unauthorized
--- no_error_log
claw balancer



=== TEST 11: a huge token costs nothing
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nAuthorization: Bearer " . ("A" x 6000)
--- error_code: 401
--- response_body eval
$::Unauthorized
--- no_error_log
claw balancer



=== TEST 12: another scheme is no credential of ours
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Basic YWxpY2U6YWxpY2UtdG9rZW4tMQ==
--- error_code: 401
--- response_body eval
$::Unauthorized
--- no_error_log
claw balancer



=== TEST 13: a login link: 303 to the same URL without claw_token, with a session cookie
--- request
GET /app/page?x=1&claw_token=alice-token-1&y=2
--- more_headers
Host: alice.claw.test
--- error_code: 303
--- response_headers_like
Location: ^http://alice\.claw\.test(?::\d+)?/app/page\?x=1&y=2$
Set-Cookie: ^__Host-claw=[A-Za-z0-9_-]{66}; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax$
Cache-Control: ^no-store$
Referrer-Policy: ^no-referrer$
--- no_error_log
claw balancer
[error]



=== TEST 14: a login link never redirects to another host
--- config
    claw_domain claw.test;
    absolute_redirect off;

    location / {
        claw on;
        proxy_pass http://claw;
    }
--- request eval
["GET //evil.example/x?claw_token=alice-token-1",
 "GET /\\evil.example/x?claw_token=alice-token-1"]
--- more_headers
Host: alice.claw.test
--- error_code eval
[303, 303]
--- response_headers eval
["Location: /evil.example/x", "Location: /evil.example/x"]



=== TEST 15: the session cookie authenticates, and is taken off
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nCookie: theme=dark; __Host-claw="
. main::session("alice", "alice-token-1", time + 600) . "; lang=en"
--- response_body_like: ^container: alice\n(?s:.*)header: cookie: theme=dark; lang=en\n
--- response_body_unlike: __Host-claw
--- response_headers
X-Claw-Auth: cookie
--- no_error_log
[error]



=== TEST 16: a cookie alone is removed with its header
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nCookie: __Host-claw="
. main::session("alice", "alice-token-2", time + 600)
--- response_body_like: ^container: alice\n
--- response_body_unlike: (?i)cookie
--- no_error_log
[error]



=== TEST 17: a session of one tenant is worthless on another
--- request
GET /
--- more_headers eval
"Host: bob.claw.test\nCookie: __Host-claw="
. main::session("alice", "alice-token-1", time + 600)
--- error_code: 401
--- response_body eval
$::Unauthorized
--- no_error_log
claw balancer



=== TEST 18: ... even carrying the other tenant's id (the token differs)
--- request
GET /
--- more_headers eval
"Host: bob.claw.test\nCookie: __Host-claw="
. main::session("bob", "alice-token-1", time + 600)
--- error_code: 401
--- no_error_log
claw balancer



=== TEST 19: an expired session
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nCookie: __Host-claw="
. main::session("alice", "alice-token-1", time - 1)
--- error_code: 401
--- response_body eval
$::Unauthorized
--- no_error_log
claw balancer



=== TEST 20: a session longer than claw_session_ttl allows
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nCookie: __Host-claw="
. main::session("alice", "alice-token-1", time + 7200)
--- error_code: 401
--- no_error_log
claw balancer



=== TEST 21: a session minted with another secret
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nCookie: __Host-claw="
. ClawTest::claw_session("z" x 40, "alice", "alice-token-1", time + 600)
--- error_code: 401
--- no_error_log
claw balancer



=== TEST 22: a tampered session
--- request
GET /
--- more_headers eval
my $c = main::session("alice", "alice-token-1", time + 600);
substr($c, 30, 1) = substr($c, 30, 1) eq "A" ? "B" : "A";
"Host: alice.claw.test\nCookie: __Host-claw=$c"
--- error_code: 401
--- no_error_log
claw balancer



=== TEST 23: a session of a token removed by a reload dies with it
--- init
ClawTest::write_file('html/tenants.conf',
    "alice 127.0.0.1:19881 token=sha256:b240c0befacf0ea1df26b7990ea1a7439fcae9613485a90a5489b33804609e18\n");
ClawTest::nginx_reload() or die "reload refused\n";
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nCookie: __Host-claw="
. main::session("alice", "alice-token-1", time + 600)
--- error_code: 401
--- no_error_log
claw balancer



=== TEST 24: a token removed by a reload stops working; the other goes on
--- init
ClawTest::write_file('html/tenants.conf',
    "alice 127.0.0.1:19881 token=sha256:b240c0befacf0ea1df26b7990ea1a7439fcae9613485a90a5489b33804609e18\n");
ClawTest::nginx_reload() or die "reload refused\n";
--- request eval
["GET /?claw_token=alice-token-1", "GET /?claw_token=alice-token-2"]
--- more_headers
Host: alice.claw.test
--- error_code eval
[401, 303]



=== TEST 25: a WebSocket upgrade authenticated by claw_token
--- raw_request eval
ClawTest::ws_handshake_request(path => '/ws?once=1&claw_token=alice-token-1',
                               host => 'alice.claw.test')
. ClawTest::ws_frame('hi')
--- error_code: 101
--- response_headers
X-Claw-Auth: query
--- response_body_like: hello from alice.*alice: hi
--- no_error_log
[error]



=== TEST 26: a WebSocket upgrade with a wrong claw_token
--- raw_request eval
ClawTest::ws_handshake_request(path => '/ws?claw_token=bob-token-1',
                               host => 'alice.claw.test',
                               headers => ['Connection: close'])
--- error_code: 401
--- no_error_log
claw balancer



=== TEST 27: a WebSocket upgrade with a session from the tenant's own origin
--- raw_request eval
ClawTest::ws_handshake_request(path => '/ws?once=1', host => 'alice.claw.test',
    headers => ['Origin: http://alice.claw.test:1984',
                'Cookie: __Host-claw='
                . main::session("alice", "alice-token-1", time + 600)])
. ClawTest::ws_frame('hi')
--- error_code: 101
--- response_headers
X-Claw-Auth: cookie
--- no_error_log
[error]



=== TEST 28: ... and from its custom domain
--- raw_request eval
ClawTest::ws_handshake_request(path => '/ws?once=1', host => 'alice.claw.test',
    headers => ['Origin: http://Alice.Example.org',
                'Cookie: __Host-claw='
                . main::session("alice", "alice-token-1", time + 600)])
. ClawTest::ws_frame('hi')
--- error_code: 101
--- no_error_log
[error]



=== TEST 29: a session WebSocket from a foreign origin: 403
--- raw_request eval
ClawTest::ws_handshake_request(path => '/ws', host => 'alice.claw.test',
    headers => ['Origin: http://evil.example.com', 'Connection: close',
                'Cookie: __Host-claw='
                . main::session("alice", "alice-token-1", time + 600)])
--- error_code: 403
--- error_log
claw: WebSocket with the session of tenant "alice" from a foreign origin
--- no_error_log
claw balancer



=== TEST 30: ... from another tenant's origin: 403
--- raw_request eval
ClawTest::ws_handshake_request(path => '/ws', host => 'alice.claw.test',
    headers => ['Origin: http://bob.claw.test', 'Connection: close',
                'Cookie: __Host-claw='
                . main::session("alice", "alice-token-1", time + 600)])
--- error_code: 403
--- no_error_log
claw balancer



=== TEST 31: ... with no Origin at all: 403
--- raw_request eval
ClawTest::ws_handshake_request(path => '/ws', host => 'alice.claw.test',
    headers => ['Connection: close', 'Cookie: __Host-claw='
                . main::session("alice", "alice-token-1", time + 600)])
--- error_code: 403
--- no_error_log
claw balancer



=== TEST 32: ... from the https origin of a plain http connection: 403
--- raw_request eval
ClawTest::ws_handshake_request(path => '/ws', host => 'alice.claw.test',
    headers => ['Origin: https://alice.claw.test', 'Connection: close',
                'Cookie: __Host-claw='
                . main::session("alice", "alice-token-1", time + 600)])
--- error_code: 403
--- no_error_log
claw balancer



=== TEST 33: a Bearer WebSocket needs no Origin (not a browser)
--- raw_request eval
ClawTest::ws_handshake_request(path => '/ws?once=1', host => 'alice.claw.test',
    headers => ['Authorization: Bearer alice-token-2'])
. ClawTest::ws_frame('hi')
--- error_code: 101
--- response_headers
X-Claw-Auth: bearer
--- no_error_log
[error]



=== TEST 34: a Bearer token and a different claw_token disagree: 400
--- request
GET /?claw_token=alice-token-2
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- error_code: 400
--- error_log
claw: conflicting credentials for tenant "alice"
--- no_error_log
claw balancer



=== TEST 35: a session and a token not valid with it disagree: 400
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nAuthorization: Bearer bob-token-1\nCookie: __Host-claw="
. main::session("alice", "alice-token-1", time + 600)
--- error_code: 400
--- no_error_log
claw balancer



=== TEST 36: a session and another valid token of the tenant agree
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nAuthorization: Bearer alice-token-2\nCookie: __Host-claw="
. main::session("alice", "alice-token-1", time + 600)
--- response_body_like: ^container: alice\n
--- response_headers
X-Claw-Auth: bearer
--- no_error_log
[error]



=== TEST 37: a valid token next to a dead session disagree: 400
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nAuthorization: Bearer alice-token-1\nCookie: __Host-claw="
. main::session("alice", "alice-token-1", time - 10)
--- error_code: 400
--- no_error_log
claw balancer



=== TEST 38: a new login replaces a dead session
--- request
GET /?claw_token=alice-token-1
--- more_headers eval
"Host: alice.claw.test\nCookie: __Host-claw="
. main::session("alice", "alice-token-1", time - 10)
--- error_code: 303
--- response_headers_like
Set-Cookie: __Host-claw=[A-Za-z0-9_-]{66}; .*
--- no_error_log
[error]



=== TEST 39: two different claw_token arguments: 400
--- request
GET /?claw_token=alice-token-1&claw_token=alice-token-2
--- more_headers
Host: alice.claw.test
--- error_code: 400
--- no_error_log
claw balancer



=== TEST 40: two different session cookies: 400
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nCookie: __Host-claw="
. main::session("alice", "alice-token-1", time + 600)
. "\nCookie: __Host-claw="
. main::session("alice", "alice-token-2", time + 600)
--- error_code: 400
--- no_error_log
claw balancer



=== TEST 41: the container never sees a credential, nor made-up edge headers
--- request
GET /api?q=1&claw_token=alice-token-1&cl%61w_token=alice-token-1
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
X-Claw-Tenant: bob
X-CLAW-Admin: yes
X-Claw: kept
--- response_body_like: ^container: alice\n(?s:.*)uri: /api\?q=1\n(?s:.*)header: x-claw: kept\n
--- response_body_unlike: (?i)authorization|alice-token|claw_token|cl%61w|x-claw-
--- no_error_log
[error]



=== TEST 42: claw_token on a POST is taken off and counts for nothing
--- request
POST /submit?claw_token=alice-token-1
hello
--- more_headers
Host: alice.claw.test
--- error_code: 401
--- no_error_log
claw balancer



=== TEST 43: claw_token values never reach the logs
--- log_level: info
--- request
GET /page?a=1&claw_token=alice-token-1
--- more_headers
Host: alice.claw.test
--- error_code: 303
--- error_log
request: "GET /page?a=1&claw_token=[redacted] HTTP/1.1"
--- no_error_log
alice-token-1



=== TEST 44: $request in the access log is redacted too
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_cookie_secret $TEST_NGINX_SERVER_ROOT/html/secret;

    log_format claw '$request|$request_uri|$args|$claw_tenant';

    upstream claw {
        claw_balancer;
    }
--- config
    claw_domain claw.test;
    access_log logs/access.log claw;

    location / {
        claw on;
        proxy_pass http://claw;
    }
--- request
GET /page?a=1&claw_token=bob-token-1
--- more_headers
Host: bob.claw.test
--- error_code: 303
--- access_log
GET /page?a=1&claw_token=[redacted] HTTP/1.1|/page?a=1|a=1|bob



=== TEST 45: claw_auth off still routes, and still takes credentials off
--- request
GET /healthz
--- more_headers eval
"Host: alice.claw.test\nAuthorization: Bearer alice-token-1\nCookie: a=b; __Host-claw="
. main::session("alice", "alice-token-1", time + 600)
--- response_body_like: ^container: alice\n(?s:.*)header: cookie: a=b\n
--- response_body_unlike: (?i)authorization|__Host-claw
--- response_headers
X-Claw-Auth: off
--- no_error_log
[error]



=== TEST 46: an internal redirect from a public location to a private one needs a credential
--- request
GET /public
--- more_headers
Host: alice.claw.test
--- error_code: 401
--- no_error_log
claw balancer



=== TEST 47: ... which the first pass already took off the request
--- request
GET /public
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- response_body_like: ^container: alice\n
--- response_body_unlike: (?i)authorization
--- response_headers
X-Claw-Auth: bearer
--- no_error_log
[error]



=== TEST 48: failed attempts from one address: 429 for any token once over the limit, a valid one included; no credential is still 401
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_cookie_secret $TEST_NGINX_SERVER_ROOT/html/secret;
    claw_auth_fail_limit 3/m;

    upstream claw {
        claw_balancer;
    }
--- config
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }
--- request eval
["GET /?claw_token=guess-1", "GET /?claw_token=guess-2",
 "GET /?claw_token=guess-3", "GET /?claw_token=alice-token-1",
 "GET /"]
--- more_headers
Host: alice.claw.test
--- error_code eval
[401, 401, 401, 429, 401]
--- raw_response_headers_like eval
["", "", "", "Retry-After: (?:[1-9]|1[0-9]|20)\r\n",
 "WWW-Authenticate: Bearer"]



=== TEST 49: over the limit, a valid Bearer token gets 429 and is logged once
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth_fail_limit 2/m;

    upstream claw {
        claw_balancer;
    }
--- config
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }
--- init
for my $guess (qw(guess-1 guess-2)) {
    my $status = ClawTest::http_get("/", "Host: bob.claw.test",
                                    "Authorization: Bearer $guess");
    die "a guess got $status\n" unless $status == 401;
}
--- request
GET /
--- more_headers
Host: bob.claw.test
Authorization: Bearer bob-token-1
--- error_code: 429
--- raw_response_headers_like: Retry-After: (?:[1-9]|[1-2][0-9]|30)\r\n
--- error_log
claw: address locked out after too many failed credentials, tenant "bob"
--- no_error_log
claw balancer



=== TEST 50: missing credentials are not failed checks
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth_fail_limit 2/m;

    upstream claw {
        claw_balancer;
    }
--- config
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }
--- request eval
["GET /", "GET /", "GET /", "GET /"]
--- more_headers
Host: bob.claw.test
--- error_code eval
[401, 401, 401, 401]



=== TEST 51: without claw_cookie_secret there are no sessions and no login links
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw {
        claw_balancer;
    }
--- config
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }
--- request eval
["GET /?claw_token=alice-token-1", "GET /"]
--- more_headers eval
"Host: alice.claw.test\nCookie: __Host-claw="
. main::session("alice", "alice-token-1", time + 600)
--- error_code eval
[401, 401]



=== TEST 52: a cookie secret shorter than 32 bytes
--- user_files eval
[["tenants.conf" => $::Tenants], ["secret" => "short"]]
--- request
GET /
--- must_die
--- error_log
must hold 32 to 4096 bytes, not 5



=== TEST 53: a malformed claw_auth_fail_limit
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth_fail_limit 30/s;
--- config
--- request
GET /
--- must_die
--- error_log
invalid claw_auth_fail_limit "30/s", expected "N/m" or "off"



=== TEST 54: a session cookie stripped from a header full of separators (no overflow)
--- request eval
["GET /", "GET /"]
--- more_headers eval
"Host: bob.claw.test\nCookie: __Host-claw=;" . ("a;" x 3000)
--- error_code eval
[401, 401]
--- no_error_log
[alert]
exited on signal



=== TEST 55: a session POST from another tenant's page (same site): 403
--- request
POST /api
x=1
--- more_headers eval
"Host: alice.claw.test\nOrigin: http://bob.claw.test\nSec-Fetch-Site: same-site\n"
. "Cookie: __Host-claw=" . main::session("alice", "alice-token-1", time + 600)
--- error_code: 403
--- error_log
claw: request with the session of tenant "alice" from a foreign origin
--- no_error_log
claw balancer



=== TEST 56: ... from the tenant's own page it goes through
--- request
POST /api
x=1
--- more_headers eval
"Host: alice.claw.test\nOrigin: http://alice.claw.test:1984\n"
. "Cookie: __Host-claw=" . main::session("alice", "alice-token-1", time + 600)
--- response_body_like: ^container: alice\n
--- no_error_log
[error]



=== TEST 57: ... without Origin, Sec-Fetch-Site must not name another site
--- request eval
["POST /a\nx", "POST /b\nx"]
--- more_headers eval
"Host: alice.claw.test\nSec-Fetch-Site: same-site\n"
. "Cookie: __Host-claw=" . main::session("alice", "alice-token-1", time + 600)
--- error_code eval
[403, 403]



=== TEST 58: ... a GET from elsewhere is a navigation, and fine
--- request
GET /page
--- more_headers eval
"Host: alice.claw.test\nOrigin: http://bob.claw.test\nSec-Fetch-Site: same-site\n"
. "Cookie: __Host-claw=" . main::session("alice", "alice-token-1", time + 600)
--- response_body_like: ^container: alice\n



=== TEST 59: a Bearer POST needs no Origin (not a browser session)
--- request
POST /api
x=1
--- more_headers
Host: alice.claw.test
Origin: http://bob.claw.test
Authorization: Bearer alice-token-1
--- response_body_like: ^container: alice\n



=== TEST 60: credentials are taken off before a host is judged: an error_page sees none
--- config
    server_tokens off;
    claw_domain claw.test;

    location / {
        claw on;
        error_page 404 = /nf;
        proxy_pass http://claw;
    }

    location = /nf {
        proxy_pass http://127.0.0.1:19881;
    }
--- request
GET /?claw_token=alice-token-1
--- more_headers eval
"Host: nobody.claw.test\nAuthorization: Bearer alice-token-1\nCookie: a=1; __Host-claw="
. main::session("alice", "alice-token-1", time + 600)
--- response_body_like: ^container: alice\n(?s:.*)uri: /nf\n
--- response_body_unlike: (?i)authorization|__Host-claw|alice-token



=== TEST 61: the claw_token name in any case is taken off too
--- request
GET /p?CLAW_TOKEN=alice-token-1&x=1
--- more_headers
Host: alice.claw.test
--- error_code: 303
--- response_headers_like
Location: http://alice\.claw\.test(?::\d+)?/p\?x=1



=== TEST 62: a refused request stays refused through error_page
--- config
    claw_domain claw.test;

    location / {
        claw on;
        error_page 401 = @again;
        proxy_pass http://claw;
    }

    location @again {
        claw on;
        claw_auth off;
        proxy_pass http://claw;
    }
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Bearer wrong-token
--- error_code: 401
--- no_error_log
claw balancer



=== TEST 63: a subrequest of a public page does not reach a private location
--- config
    claw_domain claw.test;
    ssi on;

    location = /pub.html {
        claw on;
        claw_auth off;
        root html;
    }

    location /private/ {
        claw on;
        proxy_pass http://claw;
    }
--- user_files eval
[["tenants.conf" => $::Tenants], ["secret" => $::Secret],
 ["pub.html" => "public <!--# include virtual=\"/private/x\" --> end\n"]]
--- request
GET /pub.html
--- more_headers
Host: alice.claw.test
--- response_body_unlike: container
--- response_body_like: ^public .* end$
--- no_error_log
claw balancer



=== TEST 64: credentials taken off a list of headers in several parts: the others stay, in order
--- config eval: $::EchoConfig
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\n"
. CORE::join("", map { sprintf "X-H%02d: %d\n", $_, $_ } 1 .. 3)
. "Authorization: Bearer alice-token-1\n"
. "User-Agent: ua-1\n"
. CORE::join("", map { sprintf "X-H%02d: %d\n", $_, $_ } 4 .. 17)
. "X-Claw-Tenant: bob\n"
. CORE::join("", map { sprintf "X-H%02d: %d\n", $_, $_ } 18 .. 22)
. "Via: 1.1 proxy\n"
--- response_headers
X-UA: ua-1
X-Via: 1.1 proxy
--- response_body_like eval
"^container: alice\\n(?s:.*)"
. "header: host: claw\\n"
. CORE::join("", map { sprintf "header: x-h%02d: %d\\n", $_, $_ } 1 .. 3)
. "header: user-agent: ua-1\\n"
. CORE::join("", map { sprintf "header: x-h%02d: %d\\n", $_, $_ } 4 .. 22)
. "header: via: 1.1 proxy\\n"
--- response_body_unlike: (?i)authorization|alice-token|x-claw-
--- no_error_log
[error]



=== TEST 65: ... a part left with nothing but the credential
--- config eval: $::EchoConfig
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nUser-Agent: ua-2\n"
. CORE::join("", map { sprintf "X-H%02d: %d\n", $_, $_ } 1 .. 18)
. "Authorization: Bearer alice-token-1\n"
--- response_headers
X-UA: ua-2
--- response_body_like eval
"^container: alice\\n(?s:.*)"
. "header: host: claw\\nheader: user-agent: ua-2\\n"
. CORE::join("", map { sprintf "header: x-h%02d: %d\\n", $_, $_ } 1 .. 18)
. "body-length: 0\\n"
--- response_body_unlike: (?i)authorization|alice-token
--- no_error_log
[error]



=== TEST 66: ... and off a list of one part, in place: the headers after it keep their values
--- config eval: $::EchoConfig
--- request
GET /
--- more_headers
Host: alice.claw.test
Cookie: a=1
Authorization: Bearer alice-token-1
User-Agent: ua-3
Cookie: b=2
X-Claw-Edge: 1
Via: 1.1 proxy
--- response_headers
X-UA: ua-3
X-Cookie: a=1; b=2
X-Via: 1.1 proxy
--- response_body_like: ^container: alice\n(?s:.*)header: host: claw\nheader: cookie: a=1\nheader: user-agent: ua-3\nheader: cookie: b=2\nheader: via: 1.1 proxy\n
--- response_body_unlike: (?i)authorization|alice-token|x-claw-
--- no_error_log
[error]



=== TEST 67: a subrequest made before an internal redirect keeps its own list of headers, whole
A mirror of a public location, then error_page into a claw location: the
mirror's request was made with the headers as they came, and shares
their elements; taking the credential off the main request must not
shift them under it (it forwarded "a, b, b" when they were).
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    log_format sink '$http_x_forwarded_for|$http_user_agent';

    upstream claw {
        claw_balancer;
        keepalive 8;
    }
--- config
    claw_domain claw.test;

    location /pub {
        mirror /mirror;
        error_page 404 = @tenant;
        root html/nowhere;
        log_not_found off;
    }

    location = /mirror {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/sink;
    }

    location = /sink {
        access_log logs/sink.log sink;
        return 204;
    }

    location = /seen {
        default_type text/plain;
        alias logs/sink.log;
    }

    location @tenant {
        claw on;
        claw_auth off;
        proxy_pass http://claw;
    }
--- init
my $sock = ClawTest::connect_nginx('init', 5);
print $sock "GET /pub HTTP/1.1\r\nHost: alice.claw.test\r\n",
            "Connection: close\r\nX-Forwarded-For: 192.0.2.1\r\n",
            "Authorization: Bearer alice-token-1\r\nUser-Agent: ua-7\r\n",
            "X-Forwarded-For: 192.0.2.2\r\n\r\n";
my $line = <$sock> // '';
close $sock;
die "main request: $line\n" unless $line =~ m{^HTTP/1\.1 200 };
select(undef, undef, undef, 0.3);
--- request
GET /seen
--- response_body
192.0.2.1, 192.0.2.2|ua-7
--- no_error_log
[error]



=== TEST 68: a hundred and fifty edge headers over many parts: all taken off, the rest kept in order
--- config eval: $::EchoConfig
--- request
GET /
--- more_headers eval
"Host: alice.claw.test\nAuthorization: Bearer alice-token-1\n"
. CORE::join("", map { "X-Claw-$_: 1\nX-K$_: $_\nCookie: c$_=$_\n" } 1 .. 150)
--- response_headers eval
"X-Cookie: " . CORE::join("; ", map { "c$_=$_" } 1 .. 150)
--- response_body_like eval
"^container: alice\\n(?s:.*)header: host: claw\\n"
. CORE::join("", map { "header: x-k$_: $_\\nheader: cookie: c$_=$_\\n" } 1 .. 150)
. "body-length: 0\\n"
--- response_body_unlike: (?i)authorization|alice-token|x-claw-
--- no_error_log
[error]



=== TEST 69: a page elsewhere makes its visitors fail (31 bogus claw_token images): their sessions still work, on every tenant; their tokens are locked out, on every tenant
The lockout keeps a guesser from learning whether a token is right; a
session cookie cannot be guessed, so honouring it while the address is
locked tells a guesser nothing, and a third party cannot lock a
signed-in user out.
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_cookie_secret $TEST_NGINX_SERVER_ROOT/html/secret;

    upstream claw {
        claw_balancer;
    }
--- config
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }

    location = /metrics {
        claw_metrics;
    }

    location = /report.txt {
    }
--- init
my $expiry = time + 3000;
my $alice = main::session('alice', 'alice-token-1', $expiry);
my $bob = main::session('bob', 'bob-token-1', $expiry);
my @img = map { ClawTest::http_get("/logo.png?claw_token=bogus-$_", "Host: alice.claw.test") } 1 .. 31;
my %s;
$s{alice_session} = ClawTest::http_get("/", "Host: alice.claw.test", "Cookie: __Host-claw=$alice");
$s{bob_session} = ClawTest::http_get("/", "Host: bob.claw.test", "Cookie: __Host-claw=$bob");
$s{alice_bearer} = ClawTest::http_get("/", "Host: alice.claw.test", "Authorization: Bearer alice-token-1");
$s{bob_bearer} = ClawTest::http_get("/", "Host: bob.claw.test", "Authorization: Bearer bob-token-1");
$s{bob_link} = ClawTest::http_get("/?claw_token=bob-token-1", "Host: bob.claw.test");
$s{bad_session} = ClawTest::http_get("/", "Host: bob.claw.test", "Cookie: __Host-claw=" . main::session('bob', 'not-a-token', $expiry));
$s{none} = ClawTest::http_get("/", "Host: bob.claw.test");
my (undef, $m) = ClawTest::http_request(GET => '/metrics');
my ($lockouts) = $m =~ /^claw_auth_lockouts_total\{tenant="bob"\} (\d+)$/m;
my ($rated) = $m =~ /^claw_rate_limited_total\{tenant="bob"\} (\d+)$/m;
ClawTest::report("the images: " . join(' ', (sort { $a <=> $b } keys %{{ map { $_ => 1 } @img }})),
                 map({ "$_: $s{$_}" } sort keys %s),
                 "bob's lockouts counted: $lockouts",
                 "bob's rate refusals: $rated",
                 "logged as a lockout: " . (ClawTest::error_log_has(qr/address locked out after too many failed credentials, tenant "bob"/) ? "yes" : "no"));
--- request
GET /report.txt
--- response_body
the images: 401 429
alice_bearer: 429
alice_session: 200
bad_session: 401
bob_bearer: 429
bob_link: 429
bob_session: 200
none: 401
bob's lockouts counted: 2
bob's rate refusals: 0
logged as a lockout: yes
--- no_error_log
[alert]
[crit]



=== TEST 70: a rate 429 and a lockout 429 are told apart in the log and the metrics
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_auth_fail_limit 2/m;
    claw_rate 1r/m;

    upstream claw {
        claw_balancer;
    }
--- config
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }

    location = /metrics {
        claw_metrics;
    }

    location = /report.txt {
    }
--- init
my @s = map { ClawTest::http_get("/", "Host: alice.claw.test", "Authorization: Bearer alice-token-1") } 1 .. 2;
my @g = map { ClawTest::http_get("/", "Host: alice.claw.test", "Authorization: Bearer guess-$_") } 1 .. 3;
my (undef, $m) = ClawTest::http_request(GET => '/metrics');
my ($lockouts) = $m =~ /^claw_auth_lockouts_total\{tenant="alice"\} (\d+)$/m;
my ($rated) = $m =~ /^claw_rate_limited_total\{tenant="alice"\} (\d+)$/m;
ClawTest::report("valid: @s", "guesses: @g", "lockouts: $lockouts", "rate refusals: $rated",
                 "rate logged: " . (ClawTest::error_log_has(qr/tenant "alice" over its rate/) ? "yes" : "no"),
                 "lockout logged: " . (ClawTest::error_log_has(qr/address locked out/) ? "yes" : "no"));
--- request
GET /report.txt
--- response_body
valid: 200 429
guesses: 401 401 429
lockouts: 1
rate refusals: 1
rate logged: yes
lockout logged: yes



=== TEST 71: $claw_request: the request line with claw_token redacted, even when nginx refuses the request while reading its headers, before this module runs
$request is nginx's own: for such a request it still holds the token,
which is why the shipped log_format uses $claw_request.  The same refusal
is quoted by nginx core in the error log at "info", which the examples'
"notice" level leaves out.
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_cookie_secret $TEST_NGINX_SERVER_ROOT/html/secret;

    upstream claw {
        claw_balancer;
    }

    log_format redacted '$claw_request|$status';
    log_format core '$request|$status';
--- config
    claw_domain claw.test;
    large_client_header_buffers 2 1k;
    access_log $TEST_NGINX_SERVER_ROOT/logs/redacted.log redacted;
    access_log $TEST_NGINX_SERVER_ROOT/logs/core.log core;

    location / {
        claw on;
        proxy_pass http://claw;
    }

    location = /report.txt {
        access_log off;
    }
--- init
my $root = ClawTest::servroot();
ClawTest::http_raw("GET /chat?x=1&claw_token=secret-early HTTP/1.1\r\nHost: alice.claw.test\r\nCookie: " . ('c' x 2000) . "\r\nConnection: close\r\n\r\n", 5);
ClawTest::http_get("/app?claw_token=secret-late&y=2", "Host: alice.claw.test");
Time::HiRes::sleep(0.2);
my $redacted = ClawTest::slurp("$root/logs/redacted.log");
my $core = ClawTest::slurp("$root/logs/core.log");
ClawTest::report("redacted log:", $redacted,
                 "core log leaks the early one: " . ($core =~ /secret-early/ ? "yes" : "no"),
                 "core log leaks the late one: " . ($core =~ /secret-late/ ? "yes" : "no"));
--- request
GET /report.txt
--- response_body
redacted log:
GET /chat?x=1&claw_token=[redacted] HTTP/1.1|400
GET /app?claw_token=[redacted]&y=2 HTTP/1.1|401

core log leaks the early one: yes
core log leaks the late one: no
--- log_level: notice
--- no_error_log
secret-early
secret-late



=== TEST 72: claw_token_header: the edge's token in a header of its own; Authorization is the container's, untouched, never checked nor counted
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_cookie_secret $TEST_NGINX_SERVER_ROOT/html/secret;
    claw_token_header X-Claw-Token;
    claw_auth_fail_limit 2/m;

    upstream claw {
        claw_balancer;
    }
--- config
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }

    location = /metrics {
        claw_metrics;
    }

    location = /report.txt {
    }
--- init
my ($s1, $b1) = ClawTest::http_request(GET => '/', '', 'Host: alice.claw.test', 'X-Claw-Token: alice-token-1', 'Authorization: Bearer gateway-device-token');
my ($s2, $b2) = ClawTest::http_request(GET => '/', '', 'Host: alice.claw.test', 'X-Claw-Token: Bearer alice-token-1');
my @s3 = map { (ClawTest::http_request(GET => '/', '', 'Host: alice.claw.test', 'Authorization: Bearer alice-token-1'))[0] } 1 .. 4;
my ($s4) = ClawTest::http_request(GET => '/', '', 'Host: alice.claw.test', 'X-Claw-Token: wrong-token');
my (undef, $m) = ClawTest::http_request(GET => '/metrics');
my ($fails) = $m =~ /^claw_auth_failures_total\{tenant="alice"\} (\d+)$/m;
ClawTest::report("token in X-Claw-Token: $s1",
                 "the container got Authorization: " . ($b1 =~ /^header: authorization: Bearer gateway-device-token$/m ? "yes" : "no"),
                 "and not the edge's token: " . ($b1 =~ /alice-token|x-claw-token/i ? "no" : "yes"),
                 "with the Bearer scheme: $s2",
                 "the edge's token in Authorization is not the edge's credential: @s3",
                 "a wrong X-Claw-Token: $s4",
                 "failures counted: $fails");
--- request
GET /report.txt
--- response_body
token in X-Claw-Token: 200
the container got Authorization: yes
and not the edge's token: yes
with the Bearer scheme: 200
the edge's token in Authorization is not the edge's credential: 401 401 401 401
a wrong X-Claw-Token: 401
failures counted: 1
--- no_error_log
[alert]
[crit]



=== TEST 73: claw_session_authorization pass: beside a valid session a Bearer is the container's (untouched, not checked, not counted); without one, it is the edge's
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_cookie_secret $TEST_NGINX_SERVER_ROOT/html/secret;
    claw_session_authorization pass;
    claw_auth_fail_limit 3/m;

    upstream claw {
        claw_balancer;
    }
--- config
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
        add_header X-Claw-Auth $claw_auth always;
    }

    location = /metrics {
        claw_metrics;
    }

    location = /report.txt {
    }
--- init
my $cookie = '__Host-claw=' . main::session('alice', 'alice-token-1', time + 3000);
my @pass = map { (ClawTest::http_request(GET => '/', '', 'Host: alice.claw.test', "Cookie: $cookie", "Authorization: Bearer device-token-$_"))[0] } 1 .. 5;
my ($s, $b, $h) = ClawTest::http_request(GET => '/', '', 'Host: alice.claw.test', "Cookie: $cookie", 'Authorization: Bearer device-token-x');
my ($n, $nb) = ClawTest::http_request(GET => '/', '', 'Host: alice.claw.test', 'Authorization: Bearer alice-token-1');
my ($w) = ClawTest::http_request(GET => '/', '', 'Host: alice.claw.test', 'Authorization: Bearer not-a-token');
my ($bad) = ClawTest::http_request(GET => '/', '', 'Host: alice.claw.test', 'Cookie: __Host-claw=' . main::session('alice', 'nope', time + 3000), 'Authorization: Bearer alice-token-1');
my (undef, $m) = ClawTest::http_request(GET => '/metrics');
my ($fails) = $m =~ /^claw_auth_failures_total\{tenant="alice"\} (\d+)$/m;
ClawTest::report("session and a Bearer of the container's, 6 times: @pass $s",
                 "authenticated by: " . ($h =~ /^X-Claw-Auth: (\S+)/m ? $1 : "none"),
                 "the container got the Bearer: " . ($b =~ /^header: authorization: Bearer device-token-x$/m ? "yes" : "no"),
                 "and no session cookie: " . ($b =~ /__Host-claw/ ? "no" : "yes"),
                 "no session, the edge's token: $n, taken off: " . ($nb =~ /authorization/i ? "no" : "yes"),
                 "no session, a wrong token: $w",
                 "a forged session and a token: $bad",
                 "failures counted: $fails");
--- request
GET /report.txt
--- response_body
session and a Bearer of the container's, 6 times: 200 200 200 200 200 200
authenticated by: cookie
the container got the Bearer: yes
and no session cookie: yes
no session, the edge's token: 200, taken off: yes
no session, a wrong token: 401
a forged session and a token: 400
failures counted: 2
--- no_error_log
[alert]
[crit]



=== TEST 74: claw_login_url: a browser navigating without a valid session goes to the sign-in page with the way back; APIs and WebSockets keep their 401; an expired session is no failure
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_cookie_secret $TEST_NGINX_SERVER_ROOT/html/secret;
    claw_login_url https://platform.example/signin?from=claw;
    claw_auth_fail_limit 3/m;

    upstream claw {
        claw_balancer;
    }
--- config
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }

    location = /metrics {
        claw_metrics;
    }

    location = /report.txt {
    }
--- init
my $expired = '__Host-claw=' . main::session('alice', 'alice-token-1', time - 10);
my ($s1, undef, $h1) = ClawTest::http_request(GET => '/chat/1?x=y&k=2', '', 'Host: alice.claw.test', 'Sec-Fetch-Mode: navigate');
my ($s2, undef, $h2) = ClawTest::http_request(GET => '/app', '', 'Host: alice.claw.test', 'Accept: text/html,application/xhtml+xml');
my ($s3) = ClawTest::http_request(GET => '/api', '', 'Host: alice.claw.test', 'Sec-Fetch-Mode: cors', 'Accept: text/html');
my ($s4) = ClawTest::http_request(GET => '/api', '', 'Host: alice.claw.test', 'Accept: application/json');
my ($s5) = ClawTest::http_request(POST => '/form', 'a=b', 'Host: alice.claw.test', 'Sec-Fetch-Mode: navigate');
my ($s6) = ClawTest::http_request(GET => '/ws', '', 'Host: alice.claw.test', 'Sec-Fetch-Mode: navigate', 'Upgrade: websocket', 'Connection: Upgrade');
my @s7 = map { (ClawTest::http_request(GET => "/page$_", '', 'Host: alice.claw.test', 'Sec-Fetch-Mode: navigate', "Cookie: $expired"))[0] } 1 .. 5;
my ($s8) = ClawTest::http_request(GET => '/', '', 'Host: alice.claw.test', 'Authorization: Bearer alice-token-1');
my (undef, $m) = ClawTest::http_request(GET => '/metrics');
my ($fails) = $m =~ /^claw_auth_failures_total\{tenant="alice"\} (\d+)$/m;
ClawTest::report("navigation: $s1 " . ($h1 =~ /^Location: (\S+)/m ? $1 : ''),
                 "no-store: " . ($h1 =~ /^Cache-Control: no-store/m ? "yes" : "no"),
                 "old browser: $s2 " . ($h2 =~ /^Location: (\S+)/m ? $1 : ''),
                 "fetch: $s3", "API: $s4", "POST: $s5", "WebSocket: $s6",
                 "expired session navigating, 5 times: @s7",
                 "the token after them: $s8", "failures counted: $fails");
--- request
GET /report.txt
--- response_body
navigation: 303 https://platform.example/signin?from=claw&return=http%3A%2F%2Falice.claw.test%2Fchat%2F1%3Fx%3Dy%26k%3D2
no-store: yes
old browser: 303 https://platform.example/signin?from=claw&return=http%3A%2F%2Falice.claw.test%2Fapp
fetch: 401
API: 401
POST: 401
WebSocket: 401
expired session navigating, 5 times: 303 303 303 303 303
the token after them: 200
failures counted: 0
--- no_error_log
[alert]
[crit]
