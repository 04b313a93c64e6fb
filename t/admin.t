# The admin API: tenants and tokens change live, on every worker, with no
# reload; every input is checked as the registry file is; a change is in
# the journal (synced) before it is acknowledged and survives kill -9; a
# bad request, a full zone or a failed write changes nothing; tenant hosts
# never reach the API.

use lib 't/perl';
use ClawTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
no_shuffle();
no_root_location();

our $Tenants = <<'_EOF_';
# the registry of the admin tests
alice  127.0.0.1:19901  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 rate=10r/s burst=20 conn=32 domain=agent.alice.dev
bob    [::1]:19902      token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122
_EOF_

our $Alice = '{"id":"alice","upstream":"127.0.0.1:19901","tokens":'
    . '["sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1"],'
    . '"rate":"10r/s","burst":20,"conn":32,"domains":["agent.alice.dev"],"state":"active","allow":[],"max_body":null}';

our $Bob = '{"id":"bob","upstream":"[::1]:19902","tokens":'
    . '["sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122"],'
    . '"rate":null,"burst":null,"conn":null,"domains":[],"state":"active","allow":[],"max_body":null}';

# the list is in the table's order, not sorted: either will do
our ($A, $B) = (last_request_re($Alice), last_request_re($Bob));
our $List = qr/^\{"tenants":\[(?:$A,$B|$B,$A)\]\}\n\z/;

sub admin { ClawTest::http_request($_[0], "/claw/tenants$_[1]", $_[2]) }

# a tenant as the API shows it carries the time of its last request:
# an exact body is matched with any such time
sub last_request_re {
    my $re = quotemeta $_[0];
    $re =~ s/(\\"max_body\\"\\:(?:null|\\"[^\\"]*\\"))/$1(?:,"last_request":\\d+)?/g;
    return $re;
}

sub any_last_request { my $re = last_request_re($_[0]); qr/\A$re\z/ }

add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->response_body && !ref $block->response_body
        && $block->response_body =~ /"max_body":/)
    {
        $block->set_value('response_body_like',
                          any_last_request($block->response_body));
        $block->set_value('response_body', undef);
    }

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/data/tenants.conf;
    claw_cookie_secret $TEST_NGINX_SERVER_ROOT/html/secret;

    upstream claw {
        claw_balancer;
        keepalive 8;
    }

    server {
        listen 127.0.0.1:19901;
        return 200 "container host=$http_host uri=$request_uri\n";
    }

    server {
        listen [::1]:19902;
        return 200 "container host=$http_host uri=$request_uri\n";
    }

    server {
        listen $TEST_NGINX_SERVER_PORT;
        server_name *.claw.test agent.alice.dev new.example.org;
        claw_domain claw.test;

        location / {
            claw on;
            proxy_pass http://claw;
        }
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", [
            ["data/tenants.conf" => $Tenants],
            ["secret" => "s" x 40],
        ]);
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location /claw/ {
        claw_admin;
        client_max_body_size 4k;
    }

    location = /metrics {
        claw_metrics;
    }
_EOC_
    }

    ClawTest::fresh_zone($block);
});

run_tests();

__DATA__

=== TEST 1: list the tenants
--- request
GET /claw/tenants
--- response_headers
Content-Type: application/json
--- response_body_like eval
$::List
--- no_error_log
[error]



=== TEST 2: one tenant
--- request
GET /claw/tenants/alice
--- response_body eval
"$::Alice\n"
--- no_error_log
[error]



=== TEST 3: a tenant that does not exist
--- request
GET /claw/tenants/carol
--- error_code: 404
--- response_body
{"error":"no tenant \"carol\""}



=== TEST 4: add a tenant: 201, and it is routed at once, on every worker
--- init
my @h = ("Host: carol.claw.test", "Authorization: Bearer carol-token-1");
my ($s) = ClawTest::http_get("/x", @h);
die "carol exists already: $s\n" unless $s == 404;
--- request eval
['PUT /claw/tenants/carol
{"upstream":"127.0.0.1:19901","tokens":["sha256:43fec2207592005ce020d7e6f8d096f215c59b19224e3716fe52dd19e6d2ea7a"],"domains":["New.Example.ORG."]}']
--- error_code: 201
--- response_body
{"id":"carol","upstream":"127.0.0.1:19901","tokens":["sha256:43fec2207592005ce020d7e6f8d096f215c59b19224e3716fe52dd19e6d2ea7a"],"rate":null,"burst":null,"conn":null,"domains":["new.example.org"],"state":"active","allow":[],"max_body":null}
--- no_error_log
[error]



=== TEST 5: ... every worker answers for the new tenant, no reload
--- init
my ($s) = main::admin(PUT => "/carol", '{"upstream":"127.0.0.1:19901","tokens":["sha256:43fec2207592005ce020d7e6f8d096f215c59b19224e3716fe52dd19e6d2ea7a"]}');
die "put: $s\n" unless $s == 201;
my %seen;
for (1 .. 20) {
    my ($s, $body) = ClawTest::http_request(GET => "/w", undef,
        "Host: carol.claw.test", "Authorization: Bearer carol-token-1");
    $seen{$s}++;
}
Test::More::is_deeply(\%seen, {200 => 20}, "20 requests of the new tenant, all 200");
--- request
GET /claw/tenants/carol
--- response_body_like: "id":"carol"
--- error_log
claw: tenant "carol" added
--- no_error_log
reconfiguring



=== TEST 6: replace a tenant: 200, the new configuration in force
--- init
my ($s) = main::admin(PUT => "/bob", '{"upstream":"127.0.0.1:19901","tokens":["sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122"],"conn":2}');
die "put: $s\n" unless $s == 200;
--- request
GET /moved
--- more_headers
Host: bob.claw.test
Authorization: Bearer bob-token-1
--- response_body
container host=claw uri=/moved
--- no_error_log
[error]



=== TEST 7: delete a tenant: 204, then 404 for its host and for the API
--- init
my ($s) = main::admin(DELETE => "/bob");
die "delete: $s\n" unless $s == 204;
($s) = main::admin(DELETE => "/bob");
die "second delete: $s\n" unless $s == 404;
--- request
GET /
--- more_headers
Host: bob.claw.test
Authorization: Bearer bob-token-1
--- error_code: 404
--- error_log
claw: tenant "bob" deleted



=== TEST 8: mint a token: shown once, its digest kept, working at once
--- init
my ($s, $body) = main::admin(POST => "/alice/tokens");
die "post: $s $body\n" unless $s == 201;
my ($token, $hash) = $body =~ /^\{"token":"(claw_[A-Za-z0-9_-]{43})","hash":"sha256:([0-9a-f]{64})"\}$/
    or die "minted: $body\n";
Test::More::is($hash, ClawTest::sha256_hex($token), "the hash is the token's SHA-256");
($s) = ClawTest::http_request(GET => "/", undef, "Host: alice.claw.test",
                              "Authorization: Bearer $token");
Test::More::is($s, 200, "the new token works");
$::Minted = $hash;
my $reg = ClawTest::slurp(ClawTest::servroot() . "/html/data/tenants.conf")
          . ClawTest::slurp(ClawTest::servroot() . "/html/data/tenants.conf.journal");
Test::More::unlike($reg, qr/\Q$token\E/, "the token itself is stored nowhere");
--- request
GET /claw/tenants/alice
--- response_body_like eval
qr/"tokens":\["sha256:374f4c85[0-9a-f]{56}","sha256:[0-9a-f]{64}"\]/



=== TEST 9: delete a token: it stops working, its sessions die with it
--- init
my $cookie = ClawTest::claw_session("s" x 40, "alice", "alice-token-1", time + 600);
my ($s) = ClawTest::http_request(GET => "/", undef, "Host: alice.claw.test",
                                 "Cookie: __Host-claw=$cookie");
die "the session does not work: $s\n" unless $s == 200;
($s) = main::admin(DELETE => "/alice/tokens/374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1");
die "delete token: $s\n" unless $s == 204;
($s) = ClawTest::http_request(GET => "/", undef, "Host: alice.claw.test",
                              "Cookie: __Host-claw=$cookie");
Test::More::is($s, 401, "the session died with its token");
($s) = main::admin(DELETE => "/alice/tokens/sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1");
Test::More::is($s, 404, "a token deleted twice: 404");
--- request
GET /
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- error_code: 401



=== TEST 10: invalid JSON: 400, nothing changed
--- request
PUT /claw/tenants/carol
{"upstream": 
--- error_code: 400
--- response_body_like: ^\{"error":"invalid JSON at line 1, column \d+: .*"\}$



=== TEST 11: an unknown field
--- request
PUT /claw/tenants/carol
{"upstream":"127.0.0.1:19901","weight":5}
--- error_code: 400
--- response_body_like: unknown field



=== TEST 12: a host name as upstream
--- request
PUT /claw/tenants/carol
{"upstream":"localhost:19901"}
--- error_code: 400
--- response_body_like: \\"upstream\\" must be



=== TEST 13: an upstream smuggling registry options
--- request
PUT /claw/tenants/carol
{"upstream":"127.0.0.1:19901 token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1"}
--- error_code: 400
--- response_body_like: \\"upstream\\" must be



=== TEST 14: a token that is not a digest
--- request
PUT /claw/tenants/carol
{"upstream":"127.0.0.1:19901","tokens":["carol-token-1"]}
--- error_code: 400
--- response_body_like: \\"tokens\\" must hold



=== TEST 15: a rate per hour
--- request
PUT /claw/tenants/carol
{"upstream":"127.0.0.1:19901","rate":"10r/h"}
--- error_code: 400
--- response_body_like: \\"rate\\" must be



=== TEST 16: a negative burst
--- request
PUT /claw/tenants/carol
{"upstream":"127.0.0.1:19901","burst":-1}
--- error_code: 400
--- response_body_like: \\"burst\\" must be an integer



=== TEST 17: a domain under claw_domain
--- request
PUT /claw/tenants/carol
{"upstream":"127.0.0.1:19901","domains":["bob.claw.test"]}
--- error_code: 400
--- response_body_like: under the claw_domain



=== TEST 17a: a parent of claw_domain, or a single label, as a custom domain: 400 with the reason, nothing changed
--- init
my @r;
for my $d ('claw.test', 'CLAW.test.', 'localhost') {
    my ($s, $b) = main::admin(PUT => '/carol', "{\"upstream\":\"127.0.0.1:19901\",\"domains\":[\"$d\"]}");
    push @r, "$d: $s " . ($b =~ /"error":"((?:[^"\\]|\\.)*)"/ ? $1 : $b);
}
my ($g) = main::admin(GET => '/carol');
ClawTest::report(@r, "carol: $g");
--- config
    location /claw/ {
        claw_admin;
    }

    location = /report.txt {
    }
--- request
GET /report.txt
--- response_body
claw.test: 400 \"domains\": \"claw.test\" is the claw_domain \"claw.test\"
CLAW.test.: 400 \"domains\": \"claw.test\" is the claw_domain \"claw.test\"
localhost: 400 \"domains\" must hold domain names
carol: 404



=== TEST 18: an id in the body that is not the URL's
--- request
PUT /claw/tenants/carol
{"id":"alice","upstream":"127.0.0.1:19901"}
--- error_code: 400
--- response_body_like: \\"id\\" differs



=== TEST 19: a malformed id in the URL: 400 with the reason
--- request
PUT /claw/tenants/Carol
{"upstream":"127.0.0.1:19901"}
--- error_code: 400
--- response_body_like: invalid tenant id: a DNS label



=== TEST 20: a domain of another tenant: 409, nothing changed
--- request
PUT /claw/tenants/carol
{"upstream":"127.0.0.1:19901","domains":["AGENT.alice.dev"]}
--- error_code: 409
--- response_body
{"error":"a domain belongs to tenant \"alice\""}
--- no_error_log
[alert]



=== TEST 21: ... and the tenant was not created
--- init
my ($s) = main::admin(PUT => "/carol", '{"upstream":"127.0.0.1:19901","domains":["agent.alice.dev"]}');
die "put: $s\n" unless $s == 409;
--- request
GET /claw/tenants/carol
--- error_code: 404



=== TEST 22: a body over client_max_body_size: 413
--- request eval
"PUT /claw/tenants/carol\n" . '{"upstream":"127.0.0.1:19901","x":"' . ("x" x 5000) . '"}'
--- error_code: 413



=== TEST 23: a wrong method: 405 with Allow
--- request
POST /claw/tenants/alice
--- error_code: 405
--- response_headers
Allow: GET, HEAD, PUT, PATCH, DELETE



=== TEST 24: POST on the list: 405
--- request
POST /claw/tenants
{}
--- error_code: 405
--- response_headers
Allow: GET, HEAD



=== TEST 25: paths the API does not have
--- request eval
["GET /claw/", "GET /claw/tenant", "GET /claw/tenants/alice/keys",
 "GET /claw/tenants/alice/tokens/x/y", "GET /claw/tenantsx"]
--- error_code eval
[404, 404, 404, 404, 404]



=== TEST 26: a tenant host never reaches the API, by any spelling
--- request eval
["GET /claw/tenants", "GET //claw/tenants", "GET /claw/%74enants",
 "GET /claw/../claw/tenants", "GET /CLAW/tenants"]
--- more_headers
Host: alice.claw.test
Authorization: Bearer alice-token-1
--- response_body_like eval
[qr/^container host=claw uri=\/claw\/tenants$/,
 qr/^container /, qr/^container /, qr/^container /, qr/^container /]



=== TEST 27: the journal holds a change before it is acknowledged
--- init
my ($s) = main::admin(PUT => "/dave", '{"upstream":"127.0.0.1:19901"}');
die "put: $s\n" unless $s == 201;
my $journal = ClawTest::slurp(ClawTest::servroot() . "/html/data/tenants.conf.journal");
Test::More::is($journal, "+ dave 127.0.0.1:19901\n", "the journal has the change");
--- request
GET /claw/tenants/dave
--- response_body_like: "id":"dave"



=== TEST 28: the journal is folded into the file, comments kept
--- init
my ($s) = main::admin(PUT => "/dave", '{"upstream":"127.0.0.1:19901","domains":["dave.example.org"]}');
die "put: $s\n" unless $s == 201;
($s) = main::admin(DELETE => "/bob");
die "delete: $s\n" unless $s == 204;
select(undef, undef, undef, 3);
--- request
GET /claw/tenants
--- response_body_like: "id":"dave"
--- user_files eval
[["data/tenants.conf" => $::Tenants], ["secret" => "s" x 40]]
--- error_log
journal records folded into
--- no_error_log
[error]



=== TEST 29: ... the folded file is exactly the registry
--- init
my ($s) = main::admin(PUT => "/dave", '{"upstream":"127.0.0.1:19901"}');
($s) = main::admin(DELETE => "/bob");
select(undef, undef, undef, 3);
my $file = ClawTest::slurp(ClawTest::servroot() . "/html/data/tenants.conf");
Test::More::is($file, "# the registry of the admin tests\n"
    . "alice  127.0.0.1:19901  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 rate=10r/s burst=20 conn=32 domain=agent.alice.dev\n"
    . "dave 127.0.0.1:19901\n", "file rewritten: comment and alice's line as they were, bob gone, dave added");
Test::More::is(-s ClawTest::servroot() . "/html/data/tenants.conf.journal", 0,
               "journal emptied");
--- request
GET /claw/tenants/bob
--- error_code: 404



=== TEST 30: every acknowledged change survives kill -9 of the whole nginx
--- init
my ($s) = main::admin(PUT => "/erin", '{"upstream":"127.0.0.1:19901","tokens":["sha256:43fec2207592005ce020d7e6f8d096f215c59b19224e3716fe52dd19e6d2ea7a"]}');
die "put: $s\n" unless $s == 201;
($s) = main::admin(DELETE => "/bob");
die "delete: $s\n" unless $s == 204;
ClawTest::nginx_restart_hard();
($s) = main::admin(GET => "/bob");
Test::More::is($s, 404, "the deletion survived");
--- request
GET /hello
--- more_headers
Host: erin.claw.test
Authorization: Bearer carol-token-1
--- response_body
container host=claw uri=/hello



=== TEST 31: a failed journal write (disk full): 500, nothing changed
--- init
my $j = ClawTest::servroot() . "/html/data/tenants.conf.journal";
unlink $j;
symlink "/dev/full", $j or die "symlink: $!\n";
my ($s, $body) = main::admin(PUT => "/frank", '{"upstream":"127.0.0.1:19901"}');
Test::More::is($s, 500, "the change is refused");
Test::More::like($body, qr/writing the journal failed: No space left on device/, "and says why");
# the worker whose write could not be undone (/dev/full cannot be cut
# back) keeps the journal locked, refusing changes with 500; the other
# worker waits for the lock, then refuses with 503
($s) = main::admin(DELETE => "/alice");
Test::More::like($s, qr/^50[03]$/, "a deletion too");
unlink $j;
--- request
GET /claw/tenants
--- response_body_like eval
$::List
--- error_log
claw: writing the journal
--- no_error_log
header already sent



=== TEST 32: a full zone: 507, nothing evicted
--- http_config
    claw_zone claw:64k;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/data/tenants.conf;
--- init
my ($s, $i);
for ($i = 1; $i <= 500; $i++) {
    ($s) = main::admin(PUT => "/t$i", '{"upstream":"127.0.0.1:19901","tokens":["sha256:43fec2207592005ce020d7e6f8d096f215c59b19224e3716fe52dd19e6d2ea7a"]}');
    last if $s != 201;
}
Test::More::is($s, 507, "the zone filled up after " . ($i - 1) . " tenants");
my ($list) = (main::admin(GET => ""))[1];
my $n = () = $list =~ /"id":/g;
Test::More::is($n, $i - 1 + 2, "every tenant added before is still there");
--- request
GET /claw/tenants/t1
--- response_body_like: "id":"t1"
--- error_log
is full, tenant
--- no_error_log
[alert]



=== TEST 33: claw_admin where claw is on is refused
--- config
    location /claw/ {
        claw on;
        claw_admin;
    }
--- request
GET /
--- must_die
--- error_log
"claw_admin" cannot be in a location with "claw on"



=== TEST 34: concurrent changes from many clients are all kept, in order
--- init
my @pids;
for my $i (1 .. 8) {
    my $pid = fork // die;
    if ($pid == 0) {
        for my $j (1 .. 5) {
            my ($s) = main::admin(PUT => "/c$i-$j", '{"upstream":"127.0.0.1:19901"}');
            POSIX::_exit(1) unless $s == 201;
        }
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
my $fails = 0;
for (@pids) { waitpid $_, 0; $fails++ if $? }
Test::More::is($fails, 0, "40 concurrent PUTs acknowledged");
ClawTest::nginx_restart_hard();
my ($list) = (main::admin(GET => ""))[1];
my $n = () = $list =~ /"id":"c\d-\d"/g;
Test::More::is($n, 40, "all 40 there after kill -9 and restart");
--- request
GET /claw/tenants/c8-5
--- response_body_like: "id":"c8-5"



=== TEST 35: changing a tenant's domains again and again leaks nothing in the zone
--- init
sub used { (ClawTest::http_request(GET => "/metrics"))[1] =~ /^claw_zone_bytes_used (\d+)$/m; $1 }
my ($s) = main::admin(PUT => "/dave", '{"upstream":"127.0.0.1:19901","domains":["d0.example.org"]}');
my $before = used();
for my $i (1 .. 300) {
    ($s) = main::admin(PUT => "/dave", '{"upstream":"127.0.0.1:19901","domains":["d' . $i . '.example.org","x' . $i . '.example.org"]}');
    last if $s != 200;
    main::admin(POST => "/alice/tokens") if $i % 50 == 0;
}
Test::More::is($s, 200, "300 changes of dave's domains");
my $after = used();
Test::More::cmp_ok($after - $before, '<=', 16384,
                   "the zone grew by at most a few pages ($before -> $after)");
--- request
GET /claw/tenants/dave
--- response_body_like: "domains":\["x300\.example\.org","d300\.example\.org"\]|"domains":\["d300\.example\.org","x300\.example\.org"\]



=== TEST 36: a fold keeps what was edited by hand and not reloaded yet
--- init
my $file = ClawTest::servroot() . "/html/data/tenants.conf";
my $text = ClawTest::slurp($file);
$text =~ s/^bob .*$/# bob moved by hand\nbob    127.0.0.1:19901/m;
$text .= "erin   127.0.0.1:19901   # added by hand\n";
ClawTest::write_file($file, $text);
my ($s) = main::admin(PUT => "/dave", '{"upstream":"127.0.0.1:19901"}');
die "put: $s\n" unless $s == 201;
select(undef, undef, undef, 3);
my $folded = ClawTest::slurp($file);
Test::More::like($folded, qr/^# bob moved by hand\nbob    127\.0\.0\.1:19901\n/m,
                 "the hand edit of bob is kept, as written");
Test::More::like($folded, qr/^erin   127\.0\.0\.1:19901   # added by hand\n/m,
                 "so is the tenant added by hand");
Test::More::like($folded, qr/^dave 127\.0\.0\.1:19901\n\z/m,
                 "and dave, added through the API, at the end");
--- request
GET /claw/tenants/erin
--- error_code: 404



=== TEST 37: PATCH changes only the fields it names (a merge patch): null gives a field its default, the tokens stay
--- init
my $etag = sub { $_[0] =~ /^ETag: ("[0-9a-f]{32}")\r?$/mi ? $1 : 'none' };
my $req = sub {
    my @r = ClawTest::http_request(@_);
    chomp $r[1] if defined $r[1];
    return @r;
};
my @lines;
my ($s, $b, $h) = $req->(PATCH => '/claw/tenants/alice', '{"rate":"20r/s"}');
push @lines, "rate: $s $b";
push @lines, "an ETag: " . ($etag->($h) ne 'none' ? 'yes' : 'no');
($s, $b) = $req->(PATCH => '/claw/tenants/alice', '{"conn":null,"domains":[]}');
push @lines, "conn, domains: $s $b";
($s, $b) = $req->(PATCH => '/claw/tenants/alice', '{"upstream":null}');
push @lines, "no upstream: $s $b";
($s, $b) = $req->(PATCH => '/claw/tenants/alice', '{"colour":"red"}');
push @lines, "unknown field: $s";
($s, $b) = $req->(PATCH => '/claw/tenants/alice', '["rate"]');
push @lines, "not an object: $s $b";
($s, $b) = $req->(PATCH => '/claw/tenants/nobody', '{"rate":"1r/s"}');
push @lines, "no such tenant: $s $b";
ClawTest::nginx_restart_hard();
($s, $b) = $req->(GET => '/claw/tenants/alice');
push @lines, "after kill -9: $s $b";
ClawTest::report(@lines);
--- request
GET /report.txt
--- config
    location /claw/ {
        claw_admin;
    }
    location = /report.txt {
    }
--- response_body
rate: 200 {"id":"alice","upstream":"127.0.0.1:19901","tokens":["sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1"],"rate":"20r/s","burst":20,"conn":32,"domains":["agent.alice.dev"],"state":"active","allow":[],"max_body":null}
an ETag: yes
conn, domains: 200 {"id":"alice","upstream":"127.0.0.1:19901","tokens":["sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1"],"rate":"20r/s","burst":20,"conn":null,"domains":[],"state":"active","allow":[],"max_body":null}
no upstream: 400 {"error":"\"upstream\" is required"}
unknown field: 400
not an object: 400 {"error":"the body must be a JSON object (a merge patch, RFC 7396)"}
no such tenant: 404 {"error":"no tenant \"nobody\""}
after kill -9: 200 {"id":"alice","upstream":"127.0.0.1:19901","tokens":["sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1"],"rate":"20r/s","burst":20,"conn":null,"domains":[],"state":"active","allow":[],"max_body":null}



=== TEST 38: ETag and If-Match: a change for a version that is no longer the tenant's is refused (412) and changes nothing; If-None-Match: * only creates
--- init
my $etag = sub { $_[0] =~ /^ETag: ("[0-9a-f]{32}")\r?$/mi ? $1 : 'none' };
my $req = sub {
    my @r = ClawTest::http_request(@_);
    chomp $r[1] if defined $r[1];
    return @r;
};
my @lines;
my (undef, undef, $h) = $req->(GET => '/claw/tenants/bob');
my $v1 = $etag->($h);
(undef, undef, $h) = $req->(HEAD => '/claw/tenants/bob');
push @lines, "HEAD, same version: " . ($etag->($h) eq $v1 ? 'yes' : 'no');
my ($s, $b);
($s, undef, $h) = $req->(PATCH => '/claw/tenants/bob', '{"rate":"5r/s"}', "If-Match: $v1");
my $v2 = $etag->($h);
push @lines, "first control plane: $s, a new version: " . ($v2 ne $v1 && $v2 ne 'none' ? 'yes' : 'no');
($s, $b) = $req->(PATCH => '/claw/tenants/bob', '{"rate":"7r/s"}', "If-Match: $v1");
$b =~ s/\\"[0-9a-f]{32}\\"/V/;
push @lines, "second, with the old version: $s $b";
($s, $b) = $req->(GET => '/claw/tenants/bob');
push @lines, "rate kept: " . ($b =~ /"rate":"5r\/s"/ ? 'yes' : $b);
($s) = $req->(PUT => '/claw/tenants/bob', '{"upstream":"[::1]:19902","rate":"5r/s"}', "If-Match: \"0123\", $v2");
push @lines, "PUT, one of a list: $s";
(undef, undef, $h) = $req->(GET => '/claw/tenants/bob');
my $v3 = $etag->($h);
($s) = $req->(PUT => '/claw/tenants/bob', '{"upstream":"[::1]:19902","rate":"5r/s"}', "If-Match: $v3");
(undef, undef, $h) = $req->(GET => '/claw/tenants/bob');
push @lines, "the same content, the same version: $s " . ($etag->($h) eq $v3 ? 'yes' : 'no');
($s) = $req->(PATCH => '/claw/tenants/bob', '{"rate":"6r/s"}', "If-Match: W/$v3");
push @lines, "a weak tag: $s";
($s) = $req->(DELETE => '/claw/tenants/bob', '', "If-Match: $v1");
push @lines, "DELETE, old version: $s";
($s) = $req->(POST => '/claw/tenants/bob/tokens', '', 'If-Match: *');
push @lines, "mint, any version: $s";
($s) = $req->(PUT => '/claw/tenants/bob', '{"upstream":"[::1]:19902"}', 'If-None-Match: *');
push @lines, "create only, bob exists: $s";
($s) = $req->(PUT => '/claw/tenants/zed', '{"upstream":"[::1]:19902"}', 'If-None-Match: *');
push @lines, "create only, zed is new: $s";
($s) = $req->(PUT => '/claw/tenants/yan', '{"upstream":"[::1]:19902"}', "If-Match: $v1");
push @lines, "If-Match, no such tenant: $s";
($s) = $req->(PUT => '/claw/tenants/yan', '{"upstream":"[::1]:19902"}', "If-None-Match: $v1");
push @lines, "If-None-Match with a version: $s";
($s) = $req->(GET => '/claw/tenants/yan');
push @lines, "yan: $s";
ClawTest::report(@lines);
--- request
GET /report.txt
--- config
    location /claw/ {
        claw_admin;
    }
    location = /report.txt {
    }
--- response_body
HEAD, same version: yes
first control plane: 200, a new version: yes
second, with the old version: 412 {"error":"tenant \"bob\" changed since (If-Match): it is V now; nothing changed"}
rate kept: yes
PUT, one of a list: 200
the same content, the same version: 200 yes
a weak tag: 412
DELETE, old version: 412
mint, any version: 201
create only, bob exists: 412
create only, zed is new: 201
If-Match, no such tenant: 412
If-None-Match with a version: 400
yan: 404



=== TEST 39: claw_admin_token: the admin API and the metrics ask for the operator's token (401 with WWW-Authenticate: Bearer, nothing else said); off where it is turned off
--- config
    claw_admin_token sha256:8444a60820a42635bfe112dbaf969c5b719b26b9c0f6d290cd484d6a85398068;

    location /claw/ {
        claw_admin;
    }

    location = /metrics {
        claw_metrics;
    }

    location /open/ {
        claw_admin_token off;
        claw_admin;
    }

    location = /report.txt {
    }
--- init
my @lines;
for my $c (['none', []],
           ['wrong', ['Authorization: Bearer operator-token-2']],
           ['a tenant\'s', ['Authorization: Bearer alice-token-1']],
           ['right', ['Authorization: Bearer operator-token-1']])
{
    my ($name, $hdrs) = @$c;
    my ($s, $b, $h) = ClawTest::http_request(GET => '/claw/tenants/alice', '', @$hdrs);
    my ($m) = ClawTest::http_request(GET => '/metrics', '', @$hdrs);
    my ($p) = ClawTest::http_request(PUT => '/claw/tenants/eve', '{"upstream":"127.0.0.1:19901"}', @$hdrs);
    push @lines, "$name: admin $s, metrics $m, change $p"
        . ($s == 401 ? ($h =~ /^WWW-Authenticate: Bearer\r?$/mi ? ', asks for Bearer' : ', says nothing') : '');
}
my ($s) = ClawTest::http_request(GET => '/open/tenants/alice');
push @lines, "where it is off: $s";
ClawTest::report(@lines);
--- request
GET /report.txt
--- response_body
none: admin 401, metrics 401, change 401, asks for Bearer
wrong: admin 401, metrics 401, change 401, asks for Bearer
a tenant's: admin 401, metrics 401, change 401, asks for Bearer
right: admin 200, metrics 200, change 201
where it is off: 200
--- error_log
the operator's credential was refused



=== TEST 40: claw_admin_token takes digests, never the token itself
--- config
    location /claw/ {
        claw_admin;
        claw_admin_token operator-token-1;
    }
--- must_die
--- error_log
invalid digest "operator-token-1" in "claw_admin_token": "sha256:<64 hex digits>" is expected (the token itself never goes in the configuration)



=== TEST 41: a tenant's state: checked (400 for another word), kept in the registry line, back to active with null
--- init
my @lines;
my ($s, $b) = ClawTest::http_request(PATCH => '/claw/tenants/bob', '{"state":"sleeping"}');
chomp $b;
push @lines, "sleeping: $s $b";
($s) = ClawTest::http_request(PATCH => '/claw/tenants/bob', '{"state":"maintenance"}');
push @lines, "maintenance: $s";
my $file;
ClawTest::wait_until(ClawTest::patience(5), sub {
    $file = ClawTest::slurp(ClawTest::servroot() . "/html/data/tenants.conf");
    $file =~ /^bob .* state=maintenance$/m;
});
push @lines, "in the file: " . ($file =~ /^bob .* state=maintenance$/m ? 'yes' : $file);
ClawTest::nginx_restart_hard();
($s, $b) = ClawTest::http_request(GET => '/claw/tenants/bob');
push @lines, "after a restart: " . ($b =~ /"state":"(\w+)"/ ? $1 : $b);
ClawTest::report(@lines);
--- config
    location /claw/ {
        claw_admin;
    }
    location = /report.txt {
    }
--- request
GET /report.txt
--- response_body
sleeping: 400 {"error":"\"state\" must be \"active\", \"suspended\", \"maintenance\" or \"asleep\""}
maintenance: 200
in the file: yes
after a restart: maintenance

