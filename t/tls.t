# TLS for tenants: a custom domain's own certificate chosen by SNI from a
# directory (parsed once per worker), the wildcard for every other name, a
# bad pair never served, no file ever read for a name no tenant owns; a
# request of another tenant than the SNI's gets 421, over HTTP/1.1 and
# per HTTP/2 stream; HSTS on TLS only.  The test CA and certificates are
# made by openssl when the file runs.

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

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
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
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", <<'_EOF_');
>>> tenants.conf
alice  127.0.0.1:19942
bob    127.0.0.1:19942  domain=agent.bob.dev domain=bad.example.org domain=wrong.example.org domain=later.example.org
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
--- init
Test::More::is(main::served("bad.example.org"), "CN = *.claw.test",
               "the wildcard instead");
--- request
GET /tls/?sni=bad.example.org&host=bad.example.org
--- error_code: 502
--- error_log
claw: certificate and key of "bad.example.org" do not match, not served



=== TEST 4: a certificate for another name is never served
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



=== TEST 6: a certificate added for a domain is served on first use, no reload
--- init
Test::More::is(main::served("later.example.org"), "CN = *.claw.test",
               "no file yet: the wildcard");
main::key("$::Certs/domains/later.example.org.key.tmp");
main::cert("later.example.org", "$::Certs/domains/later.example.org.key.tmp",
           "$::Certs/domains/later.example.org.crt");
rename "$::Certs/domains/later.example.org.key.tmp",
       "$::Certs/domains/later.example.org.key";
select(undef, undef, undef, 11);
Test::More::is(main::served("later.example.org"), "CN = later.example.org",
               "the new certificate, within its check interval");
--- request
GET /tls/?sni=later.example.org&host=later.example.org
--- response_body
host=later.example.org
--- timeout: 20



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
