# TLS for tenants: a custom domain's own certificate chosen by SNI from a
# directory, the wildcard for every other name, a bad pair never served,
# no file ever read for a name no tenant owns; the handshake never touches
# the file system (the master reads the certificates at start, then the
# worker's thread pool, in a bounded cache), a new or renewed certificate
# is served within a second; a request of another tenant than the SNI's
# gets 421, over HTTP/1.1 and per HTTP/2 stream, with a wildcard server
# and with per-tenant servers (claw_tenant), where a host of another
# tenant gets 421 too; HSTS on TLS only.  The test CA and certificates
# are made by openssl when the file runs.

use lib 't/perl';
use ClawTest;
use File::Temp qw(tempdir);
use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();
no_root_location();

our $Certs = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_CERTS} = $Certs;
mkdir "$Certs/domains" or die "mkdir: $!\n";

sub sh_run { system(@_) == 0 or die "@_: failed\n" }

sub key { sh_run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
              . "-out $_[0] 2>/dev/null") }

sub cert {
    my ($name, $key, $out) = @_;
    my $ext = "$Certs/ext.cnf";
    open my $fh, '>', $ext or die "$ext: $!\n";
    print $fh "subjectAltName=DNS:$name\n";
    close $fh;
    sh_run("openssl req -new -key $key -subj '/CN=$name' -out $Certs/req.csr");
    sh_run("openssl x509 -req -in $Certs/req.csr -CA $Certs/ca.crt "
        . "-CAkey $Certs/ca.key -CAcreateserial -days 2 -extfile $ext "
        . "-out $out 2>/dev/null");
}

key("$Certs/ca.key");
sh_run("openssl req -x509 -new -key $Certs/ca.key -subj '/CN=claw test CA' "
    . "-days 3 -addext basicConstraints=critical,CA:TRUE "
    . "-addext keyUsage=critical,keyCertSign -out $Certs/ca.crt");

# the platform wildcard
key("$Certs/wild.key");
cert("*.claw.test", "$Certs/wild.key", "$Certs/wild.crt");

# bob's custom domain, with its chain in the same file
key("$Certs/domains/agent.bob.dev.key");
cert("agent.bob.dev", "$Certs/domains/agent.bob.dev.key",
     "$Certs/domains/agent.bob.dev.crt");

# a certificate and a key that do not match
key("$Certs/domains/bad.example.org.key");
key("$Certs/other.key");
cert("bad.example.org", "$Certs/other.key", "$Certs/domains/bad.example.org.crt");

# a certificate for another name than its file's
key("$Certs/domains/wrong.example.org.key");
cert("else.example.org", "$Certs/domains/wrong.example.org.key",
     "$Certs/domains/wrong.example.org.crt");

# a good pair for a name no tenant owns
key("$Certs/domains/nobody.example.org.key");
cert("nobody.example.org", "$Certs/domains/nobody.example.org.key",
     "$Certs/domains/nobody.example.org.crt");

# carol's custom domain
key("$Certs/domains/shop.carol.dev.key");
cert("shop.carol.dev", "$Certs/domains/shop.carol.dev.key",
     "$Certs/domains/shop.carol.dev.crt");

# the serial number of the certificate served for an SNI, and of a file
sub serial {
    my ($sni) = @_;
    my $out = `echo | openssl s_client -connect 127.0.0.1:19941 -servername $sni 2>/dev/null | openssl x509 -noout -serial 2>/dev/null`;
    chomp $out;
    return $out;
}

sub file_serial {
    my $out = `openssl x509 -noout -serial -in $_[0]`;
    chomp $out;
    return $out;
}

# curl to the per-tenant servers, every name resolved to loopback
sub curl_pt {
    my (@args) = @_;
    return `curl -s --cacert $Certs/ca.crt --resolve alice.claw.test:19943:127.0.0.1 --resolve bob.claw.test:19943:127.0.0.1 --resolve agent.bob.dev:19943:127.0.0.1 @args`;
}

# the subject of the certificate served for an SNI
sub served {
    my ($sni) = @_;
    my $out = `echo | openssl s_client -connect 127.0.0.1:19941 -servername $sni 2>/dev/null | openssl x509 -noout -subject 2>/dev/null`;
    chomp $out;
    $out =~ s/^subject=\s*//;
    return $out;
}

# curl over TLS to the claw server, resolving every name to loopback
sub curl {
    my (@args) = @_;
    my $out = `curl -s --cacert $Certs/ca.crt --resolve alice.claw.test:19941:127.0.0.1 --resolve bob.claw.test:19941:127.0.0.1 --resolve agent.bob.dev:19941:127.0.0.1 @args`;
    return $out;
}

our $HttpConfig = <<'_EOC_';
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw {
        claw_balancer;
        keepalive 8;
    }

    server {
        listen 127.0.0.1:19942;
        return 200 "host=$http_host\n";
    }

    server {
        listen 127.0.0.1:19941 ssl http2;
        server_name _;

        ssl_certificate $TEST_NGINX_CERTS/wild.crt;
        ssl_certificate_key $TEST_NGINX_CERTS/wild.key;
        claw_certificates $TEST_NGINX_CERTS/domains;

        claw_domain claw.test;
        claw_hsts 365d includeSubDomains;

        location / {
            claw on;
            claw_auth off;
            proxy_pass http://claw;
            proxy_set_header Host $host;
            add_header X-Tenant $claw_tenant always;
        }
    }
_EOC_

# as examples/per-tenant-servers.conf: one server per tenant, none with a
# claw_domain of its own, a default server that refuses the handshake
our $PerTenant = <<'_EOC_';
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19942;
        return 200 "host=$http_host\n";
    }

    ssl_certificate $TEST_NGINX_CERTS/wild.crt;
    ssl_certificate_key $TEST_NGINX_CERTS/wild.key;

    server {
        listen 127.0.0.1:19943 ssl http2 default_server;
        ssl_reject_handshake on;
    }

    server {
        listen 127.0.0.1:19943 ssl http2;
        server_name alice.claw.test;

        location / {
            claw on;
            claw_tenant alice;
            claw_auth off;
            proxy_pass http://claw;
            proxy_set_header Host $host;
            add_header X-Tenant $claw_tenant always;
        }
    }

    server {
        listen 127.0.0.1:19943 ssl http2;
        server_name bob.claw.test agent.bob.dev;
        claw_certificates $TEST_NGINX_CERTS/domains;

        location / {
            claw on;
            claw_tenant bob;
            claw_auth off;
            proxy_pass http://claw;
            proxy_set_header Host $host;
            add_header X-Tenant $claw_tenant always;
        }
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", $main::HttpConfig);
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", <<'_EOF_');
>>> tenants.conf
alice  127.0.0.1:19942
bob    127.0.0.1:19942  domain=agent.bob.dev domain=later.example.org domain=none.example.org
_EOF_
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;

    location / {
        claw on;
        claw_auth off;
        proxy_pass http://claw;
        proxy_set_header Host $host;
    }

    # a TLS client with the SNI and Host of the request's arguments,
    # verifying the certificate against the test CA for the SNI
    location /tls/ {
        proxy_pass https://127.0.0.1:19941/;
        proxy_ssl_server_name on;
        proxy_ssl_name $arg_sni;
        proxy_set_header Host $arg_host;
        proxy_ssl_verify on;
        proxy_ssl_verify_depth 2;
        proxy_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.crt;
        proxy_ssl_session_reuse off;
    }

    # the same, to the per-tenant servers
    location /pt/ {
        proxy_pass https://127.0.0.1:19943/;
        proxy_ssl_server_name on;
        proxy_ssl_name $arg_sni;
        proxy_set_header Host $arg_host;
        proxy_ssl_verify on;
        proxy_ssl_verify_depth 2;
        proxy_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.crt;
        proxy_ssl_session_reuse off;
    }
_EOC_
    }

    ClawTest::fresh_zone($block);
});

run_tests();

__DATA__

=== TEST 1: the wildcard for a tenant's subdomain
--- request
GET /tls/?sni=alice.claw.test&host=alice.claw.test
--- response_body
host=alice.claw.test
--- response_headers
X-Tenant: alice
--- no_error_log
[error]



=== TEST 2: a custom domain gets its own certificate
--- init
Test::More::is(main::served("agent.bob.dev"), "CN = agent.bob.dev",
               "the certificate served for agent.bob.dev");
Test::More::is(main::served("bob.claw.test"), "CN = *.claw.test",
               "the wildcard for bob's subdomain");
--- request
GET /tls/?sni=agent.bob.dev&host=agent.bob.dev
--- response_body
host=agent.bob.dev
--- response_headers
X-Tenant: bob
--- error_log
claw: certificate of "agent.bob.dev" loaded
--- no_error_log
[error]



=== TEST 3: a certificate whose key does not match is never served
--- user_files
>>> tenants.conf
alice  127.0.0.1:19942
bob    127.0.0.1:19942  domain=agent.bob.dev domain=bad.example.org domain=wrong.example.org
--- init
Test::More::is(main::served("bad.example.org"), "CN = *.claw.test",
               "the wildcard instead");
--- request
GET /tls/?sni=bad.example.org&host=bad.example.org
--- error_code: 502
--- error_log
claw: certificate and key of "bad.example.org" do not match, not served



=== TEST 4: a certificate for another name is never served
--- user_files
>>> tenants.conf
alice  127.0.0.1:19942
bob    127.0.0.1:19942  domain=agent.bob.dev domain=bad.example.org domain=wrong.example.org
--- init
Test::More::is(main::served("wrong.example.org"), "CN = *.claw.test",
               "the wildcard instead");
--- request
GET /tls/?sni=wrong.example.org&host=wrong.example.org
--- error_code: 502
--- error_log
is not for "wrong.example.org", not served



=== TEST 5: a name no tenant owns gets the wildcard, its files are never read
--- init
Test::More::is(main::served("nobody.example.org"), "CN = *.claw.test",
               "the wildcard, not the file's certificate");
--- request
GET /tls/?sni=nobody.example.org&host=alice.claw.test
--- error_code: 502
--- no_error_log
nobody.example.org" loaded



=== TEST 6: a certificate added for a domain is served within a second, no reload
--- init
Test::More::is(main::served("later.example.org"), "CN = *.claw.test",
               "no file yet: the wildcard");
main::key("$::Certs/domains/later.example.org.key.tmp");
main::cert("later.example.org", "$::Certs/domains/later.example.org.key.tmp",
           "$::Certs/domains/later.example.org.crt");
rename "$::Certs/domains/later.example.org.key.tmp",
       "$::Certs/domains/later.example.org.key";
select(undef, undef, undef, 1.5);
Test::More::is(main::served("later.example.org"), "CN = later.example.org",
               "the new certificate");
--- request
GET /tls/?sni=later.example.org&host=later.example.org
--- response_body
host=later.example.org



=== TEST 7: a request of another tenant on a TLS connection: 421
--- request
GET /tls/?sni=alice.claw.test&host=bob.claw.test
--- error_code: 421
--- error_log
claw: request of tenant "bob" on a TLS connection to "alice.claw.test"



=== TEST 8: ... also for a custom domain against a subdomain
--- request
GET /tls/?sni=agent.bob.dev&host=alice.claw.test
--- error_code: 421



=== TEST 9: the same tenant by another of its names is fine
--- request
GET /tls/?sni=agent.bob.dev&host=bob.claw.test
--- response_body
host=bob.claw.test



=== TEST 10: HTTP/2: every stream is routed and checked by its :authority
--- init
my $out = main::curl("--http2 -o /dev/null -o /dev/null -w '%{http_version} %{http_code} %{num_connects}\\n'",
                     "https://alice.claw.test:19941/a", "https://alice.claw.test:19941/b");
Test::More::is($out, "2 200 1\n2 200 0\n", "two streams of alice on one HTTP/2 connection");
$out = main::curl("--http2 -o /dev/null -w '%{http_version} %{http_code}\\n'",
                  "-H 'Host: bob.claw.test'", "https://alice.claw.test:19941/c");
Test::More::is($out, "2 421\n", "a stream for bob on alice's connection: 421");
$out = main::curl("--http2", "https://agent.bob.dev:19941/d");
Test::More::is($out, "host=agent.bob.dev\n", "bob's custom domain over HTTP/2");
--- request
GET /tls/?sni=alice.claw.test&host=alice.claw.test
--- response_body
host=alice.claw.test



=== TEST 11: HSTS on TLS answers
--- request
GET /tls/?sni=alice.claw.test&host=alice.claw.test
--- response_headers
Strict-Transport-Security: max-age=31536000; includeSubDomains



=== TEST 12: no HSTS over plain HTTP
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_hsts 365d;

    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19942;
        return 200 "host=$http_host\n";
    }
--- request
GET /
--- more_headers
Host: alice.claw.test
--- response_body
host=alice.claw.test
--- response_headers
Strict-Transport-Security:



=== TEST 13: claw_certificates without a server certificate
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19941;
        claw_certificates $TEST_NGINX_CERTS/domains;
    }
--- request
GET /
--- must_die
--- error_log
"claw_certificates" needs the server's "ssl_certificate"



=== TEST 14: per-tenant servers: a request of one tenant on a TLS connection to another's name: 421
--- http_config eval: $::PerTenant
--- request
GET /pt/?sni=bob.claw.test&host=alice.claw.test
--- error_code: 421
--- error_log
claw: request of tenant "alice" on a TLS connection to "bob.claw.test"



=== TEST 15: ... per HTTP/2 stream, also for a custom domain; each tenant's own names are fine
--- http_config eval: $::PerTenant
--- init
my $out = main::curl_pt("--http2 -o /dev/null -o /dev/null -w '%{http_version} %{http_code} %{num_connects}\\n'",
                        "https://alice.claw.test:19943/a", "https://alice.claw.test:19943/b");
Test::More::is($out, "2 200 1\n2 200 0\n", "two streams of alice on one HTTP/2 connection");
$out = main::curl_pt("--http2 -o /dev/null -w '%{http_version} %{http_code}\\n'",
                     "-H 'Host: alice.claw.test'", "https://bob.claw.test:19943/c");
Test::More::is($out, "2 421\n", "a stream for alice on bob's connection: 421");
$out = main::curl_pt("--http2 -o /dev/null -w '%{http_version} %{http_code}\\n'",
                     "-H 'Host: alice.claw.test'", "https://agent.bob.dev:19943/d");
Test::More::is($out, "2 421\n", "... on a connection to bob's custom domain: 421");
$out = main::curl_pt("--http2", "-H 'Host: bob.claw.test'", "https://agent.bob.dev:19943/e");
Test::More::is($out, "host=bob.claw.test\n", "bob's subdomain on a connection to his custom domain");
--- request
GET /pt/?sni=alice.claw.test&host=alice.claw.test
--- response_body
host=alice.claw.test
--- response_headers
X-Tenant: alice
--- no_error_log
[error]



=== TEST 16: ... with no claw_domain anywhere, as in examples/per-tenant-servers.conf: the servers tell the names apart
--- http_config eval: $::PerTenant
--- config
    location /pt/ {
        proxy_pass https://127.0.0.1:19943/;
        proxy_ssl_server_name on;
        proxy_ssl_name $arg_sni;
        proxy_set_header Host $arg_host;
        proxy_ssl_verify on;
        proxy_ssl_verify_depth 2;
        proxy_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.crt;
        proxy_ssl_session_reuse off;
    }
--- init
my $out = main::curl_pt("--http2 -o /dev/null -w '%{http_version} %{http_code}\\n'",
                        "-H 'Host: alice.claw.test'", "https://bob.claw.test:19943/c");
Test::More::is($out, "2 421\n", "a stream for alice on bob's connection: 421");
$out = main::curl_pt("--http2", "https://alice.claw.test:19943/d");
Test::More::is($out, "host=alice.claw.test\n", "alice on her own connection");
--- request
GET /pt/?sni=bob.claw.test&host=alice.claw.test
--- error_code: 421



=== TEST 17: a claw_tenant location refuses a host that names another tenant, over plain HTTP too
--- config
    claw_domain claw.test;

    location / {
        claw on;
        claw_tenant alice;
        claw_auth off;
        proxy_pass http://claw;
        proxy_set_header Host $host;
    }
--- init
Test::More::is(ClawTest::http_get('/', 'Host: alice.claw.test'), 200,
               "alice's own host");
Test::More::is(ClawTest::http_get('/', 'Host: anything.example.org'), 200,
               "a name of no tenant: the server's tenant, as before");
Test::More::is(ClawTest::http_get('/', 'Host: agent.bob.dev'), 421,
               "bob's custom domain");
--- request
GET /
--- more_headers
Host: bob.claw.test
--- error_code: 421
--- error_log
claw: host "bob.claw.test" of another tenant in a location of tenant "alice"



=== TEST 18: the handshake never touches the file system: only the thread pool reads certificates
--- init
if (!-x '/usr/bin/strace') {
    Test::More::pass("strace is not installed");
} else {
    # an answer first: nginx just started may not have forked its worker
    ClawTest::http_get('/', 'Host: alice.claw.test');
    my ($worker) = ClawTest::kill_workers(0);
    my $log = "$::Certs/strace.out";
    unlink $log;
    my $st = fork // die "fork: $!\n";
    if ($st == 0) {
        open STDERR, '>', "$log.err";
        { exec 'strace', '-f', '-e', 'trace=%file,read', '-o', $log,
               '-p', $worker; }
        POSIX::_exit(127);
    }
    select(undef, undef, undef, 1);
    Test::More::ok(-e $log, "strace attached to worker $worker")
        or Test::More::diag(ClawTest::slurp("$log.err"));
    Test::More::is(main::served("agent.bob.dev"), "CN = agent.bob.dev",
                   "a custom domain's certificate");
    Test::More::is(main::served("agent.bob.dev"), "CN = agent.bob.dev",
                   "again");
    Test::More::is(main::served("none.example.org"), "CN = *.claw.test",
                   "a registered name without a certificate: the wildcard");
    Test::More::is(main::served("nobody.example.org"), "CN = *.claw.test",
                   "a name of no tenant: the wildcard");
    # a name without a certificate is looked at every second
    select(undef, undef, undef, 1.5);
    kill 'INT', $st;
    waitpid $st, 0;
    my @lines = grep { index($_, "$::Certs/domains") >= 0 }
                     split /^/m, (-e $log ? ClawTest::slurp($log) : '');
    my @main = grep { /^$worker\s/ } @lines;
    my @pool = grep { !/^$worker\s/ } @lines;
    Test::More::is(scalar @main, 0, "no file of the directory touched by the "
                                   . "worker's event loop")
        or Test::More::diag(@main[0 .. ($#main < 4 ? $#main : 4)]);
    Test::More::ok((grep { /none\.example\.org\.crt/ } @pool),
                   "the thread pool looks at a name without a certificate");
    Test::More::ok(!(grep { /nobody\.example\.org/ } @lines),
                   "nothing looks at a name of no tenant");
}
--- request
GET /tls/?sni=agent.bob.dev&host=agent.bob.dev
--- response_body
host=agent.bob.dev
--- no_error_log
[error]
--- timeout: 10



=== TEST 19: claw_certificate_cache: with room for one, another name is read when asked for, the least recently used goes
--- http_config eval: "    claw_certificate_cache 1;\n" . $::HttpConfig
--- user_files
>>> tenants.conf
alice  127.0.0.1:19942
bob    127.0.0.1:19942  domain=agent.bob.dev
carol  127.0.0.1:19942  domain=shop.carol.dev
--- init
Test::More::is(main::served("agent.bob.dev"), "CN = agent.bob.dev",
               "the first name, read at start");
Test::More::is(main::served("shop.carol.dev"), "CN = *.claw.test",
               "no room for the second: the wildcard this time");
select(undef, undef, undef, 0.5);
Test::More::is(main::served("shop.carol.dev"), "CN = shop.carol.dev",
               "read meanwhile");
Test::More::is(main::served("agent.bob.dev"), "CN = *.claw.test",
               "the first went");
select(undef, undef, undef, 0.5);
Test::More::is(main::served("agent.bob.dev"), "CN = agent.bob.dev",
               "and is read again");
--- request
GET /tls/?sni=agent.bob.dev&host=agent.bob.dev
--- response_body
host=agent.bob.dev
--- no_error_log
[error]



=== TEST 20: claw_certificate_cache 0
--- http_config eval: "    claw_certificate_cache 0;\n" . $::HttpConfig
--- request
GET /
--- must_die
--- error_log
invalid claw_certificate_cache "0", expected a number from 1 to 1000000



=== TEST 21: a renewal is served at once; a key written before its certificate is neither served nor logged
--- init
my $old = main::serial("agent.bob.dev");
Test::More::is($old, main::file_serial("$::Certs/domains/agent.bob.dev.crt"),
               "the file's certificate");
main::key("$::Certs/new.key");
main::cert("agent.bob.dev", "$::Certs/new.key", "$::Certs/new.crt");
# claw_acme renames the key, then the certificate
rename "$::Certs/new.key", "$::Certs/domains/agent.bob.dev.key"
    or die "rename: $!\n";
select(undef, undef, undef, 0.3);
Test::More::is(main::serial("agent.bob.dev"), $old,
               "the new key alone: the old pair still served");
rename "$::Certs/new.crt", "$::Certs/domains/agent.bob.dev.crt"
    or die "rename: $!\n";
select(undef, undef, undef, 0.3);
my $new = main::serial("agent.bob.dev");
Test::More::isnt($new, $old, "the new pair, well before the 10-second look");
Test::More::is($new, main::file_serial("$::Certs/domains/agent.bob.dev.crt"),
               "the file's");
--- request
GET /tls/?sni=agent.bob.dev&host=agent.bob.dev
--- response_body
host=agent.bob.dev
--- no_error_log
[error]
