# Automatic TLS (ngx_http_claw_acme_module) against a real ACME CA:
# Debian's pebble on loopback, validating http-01 on the test server and
# tls-alpn-01 on the TLS server, pebble-challtestsrv as its DNS server.
# A domain added through the admin API is issued and served with no
# reload; a restart orders nothing; renewals at two thirds of the
# lifetime and on request; back-off with growing delays; the per-tenant
# cap, across a restart; no order for a name no tenant owns; a removed
# name is no longer renewed; another worker takes over from a killed
# owner; tls-alpn-01 in TLSv1.2 and TLSv1.3, with RSA and EC server
# certificates.  Pebble A refuses 40% of good nonces (badNonce is
# retried) and validates every order; pebble B issues certificates of 9
# seconds.

use lib 't/perl';
use ClawTest;
use ClawAcme;
use Digest::SHA ();
use File::Spec;
use File::Temp qw(tempdir);
use JSON::PP ();
use MIME::Base64 ();
use Time::HiRes ();
use Test::Nginx::Socket 'no_plan';

BEGIN {
    if (!-x '/usr/bin/pebble' || !-x '/usr/bin/pebble-challtestsrv') {
        require Test::More;
        Test::More::plan(skip_all => 'pebble is not installed');
    }
}

master_on();
workers(2);
no_shuffle();
no_root_location();
log_level('info');

our $A = pebble_start(name => 'a', port => 14000, nonce_reject => 40,
                     authz_reuse => 0);
our $B = pebble_start(name => 'b', port => 14002, validity => 9);

our $Files = tempdir(CLEANUP => 1);
our $State = server_root() . '/html/acme';

our $Fault = "$ENV{TEST_NGINX_CLAW_ROOT}/build/unit/claw_fault.so";
die "$Fault is not built (make unit)\n" unless -f $Fault;

our $Rules = "$Files/rules";

$ENV{LD_PRELOAD} = join ' ', grep { $_ } $Fault, $ENV{LD_PRELOAD};
$ENV{CLAW_FAULT} = $Rules;

$ENV{TEST_NGINX_ACME_A} = $A->{directory};
$ENV{TEST_NGINX_ACME_A_CA} = $A->{ca};
$ENV{TEST_NGINX_ACME_B} = $B->{directory};
$ENV{TEST_NGINX_ACME_B_CA} = $B->{ca};
$ENV{TEST_NGINX_ACME_FILES} = $Files;

# the TLS servers' own certificates, for every name without one: RSA, or
# EC with TLSv1.3 (nginx 1.22 offers TLSv1.2 only by default)
sh_run("openssl req -x509 -newkey rsa:2048 -nodes -keyout $Files/rsa.key "
    . "-out $Files/rsa.crt -days 2 -subj /CN=default 2>/dev/null");
sh_run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
    . "-nodes -keyout $Files/ec.key -out $Files/ec.crt -days 2 "
    . "-subj /CN=default 2>/dev/null");

# the tenants' container, and the TLS server of their custom domains
for my $conf (['servers.conf', 'rsa', 'ssl_protocols TLSv1.2;'],
              ['servers-tls13.conf', 'ec', 'ssl_protocols TLSv1.2 TLSv1.3;'])
{
    my ($file, $key, $extra) = @$conf;
    open my $fh, '>', "$Files/$file" or die "$Files/$file: $!\n";
    print $fh <<"_EOC_";
    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19962;
        return 200 "container \$host\\n";
    }

    server {
        listen 127.0.0.1:19961 ssl http2;
        server_name _;

        ssl_certificate $Files/$key.crt;
        ssl_certificate_key $Files/$key.key;
        $extra
        claw_certificates $State/certs;

        location / {
            claw on;
            claw_auth off;
            proxy_pass http://claw;
            proxy_set_header Host \$host;
        }
    }
_EOC_
    close $fh;
}

sub admin_put {
    my ($id, $domains) = @_;
    my $list = join ',', map { "\"$_\"" } @$domains;
    my ($status) = ClawTest::http_request('PUT', "/claw/tenants/$id",
        "{\"upstream\":\"127.0.0.1:19962\",\"domains\":[$list]}");
    return $status;
}

sub valid { my $d = acme_domain($_[0]); $d && $d->{state} eq 'valid' && $d }

# the metrics page, its chunks joined
sub metrics {
    my ($status, $body) = ClawTest::http_request('GET', '/metrics');
    die "GET /metrics: $status\n" unless $status == 200;
    my (undef, $chunks) = ClawTest::chunked_parts("HTTP/1.1 200 OK\r\n\r\n"
                                                  . $body);
    return join '', @$chunks;
}

sub mode { sprintf '%04o', (stat $_[0])[2] & 07777 }

sub serial { my ($s) = served_cert($_[0]) =~ /serial=(\w+)/; $s // '' }

# the lines of the error log that match
sub logged {
    my ($re) = @_;
    open my $log, '<', server_root() . '/logs/error.log' or return 0;
    return scalar grep { $_ =~ $re } <$log>;
}

# the failures of a name in the error log: [log time, delay]
sub failures {
    my ($name) = @_;
    my @f;
    open my $log, '<', server_root() . '/logs/error.log' or return;
    while (<$log>) {
        next unless /^\S+\ (\d+):(\d+):(\d+)\ .*claw_acme:\ order\ for
                     \ "\Q$name\E"\ failed:\ .*\ next\ attempt\ in\ (\d+)s/x;
        push @f, [$1 * 3600 + $2 * 60 + $3, $4];
    }
    return @f;
}

sub gina { grep { $_->{tenant} eq 'gina' } @{ acme_status()->{domains} } }

# the disk faults nginx gets (t/fault/claw_fault.c): a rule a line
sub rules {
    open my $f, '>', $Rules or die "$Rules: $!\n";
    print $f @_;
    close $f;
}

# Tenant requests for a name (plain HTTP, to the block's "location /"),
# one every tenth of a second, until the code returns true or $secs
# pass: (the slowest in seconds, how many, how many failed, what the
# code returned)
sub tenant_slowest {
    my ($name, $secs, $code) = @_;
    my ($max, $n, $failed, $r) = (0, 0, 0);
    $secs *= 3 if $ENV{TEST_NGINX_USE_VALGRIND};
    my $deadline = Time::HiRes::time() + $secs;
    while (Time::HiRes::time() < $deadline) {
        my $t0 = Time::HiRes::time();
        my ($status, $body) = ClawTest::http_request('GET', '/', '',
                                                     "Host: $name");
        my $dt = Time::HiRes::time() - $t0;
        $max = $dt if $dt > $max;
        $n++;
        $failed++ unless $status == 200 && $body eq "container $name\n";
        last if $r = $code->();
        Time::HiRes::sleep(0.1);
    }
    return ($max, $n, $failed, $r);
}

# The JWS, JWK, CSR and challenge certificate code alone: it is pure
# OpenSSL, linked here without nginx (with the tree's one base64url, in
# the credential codecs) and checked against openssl(1).

sub unit_run {
    my $dir = "$Files/unit";
    mkdir $dir or die "mkdir $dir: $!\n";
    open my $c, '>', "$dir/unit.c" or die "$dir/unit.c: $!\n";
    print $c <<'_EOC_';
#include <stdio.h>
#include <string.h>
#include <openssl/pem.h>
#include "ngx_http_claw_token.h"
#include "ngx_http_claw_acme_jws.h"

static void
save(const char *name, unsigned char *der, size_t len)
{
    FILE  *f;

    f = fopen(name, "w");
    fwrite(der, 1, len, f);
    fclose(f);
}

int
main(void)
{
    int             i;
    char           *jws, jwk[NGX_HTTP_CLAW_ACME_JWK_LEN];
    char            thumb[NGX_HTTP_CLAW_ACME_THUMB_LEN + 1];
    FILE           *f;
    size_t          len, klen, n;
    EVP_PKEY       *key;
    unsigned char  *der, *kder, out[16];
    static const char  *in[] = { "", "f", "fo", "foo", "\xfb\xff" };

    for (i = 0; i < 5; i++) {
        n = ngx_http_claw_b64url_encode((unsigned char *) in[i],
                                        strlen(in[i]), out);
        printf("b64 %.*s\n", (int) n, out);
    }

    key = ngx_http_claw_acme_key_new();
    if (key == NULL || !ngx_http_claw_acme_key_check(key)) {
        return 1;
    }

    f = fopen("key.pem", "w");
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);

    if (!ngx_http_claw_acme_jwk(key, jwk, &len)
        || !ngx_http_claw_acme_thumbprint(jwk, len, thumb))
    {
        return 1;
    }

    printf("jwk %s\nthumb %s\n", jwk, thumb);

    jws = ngx_http_claw_acme_jws(key, "{\"alg\":\"ES256\",\"nonce\":\"n\"}",
                                 "{\"a\":1}", &len);
    printf("jws %s\n", jws);
    jws = ngx_http_claw_acme_jws(key, "{\"alg\":\"ES256\"}", "", &len);
    printf("get %s\n", jws);

    der = ngx_http_claw_acme_csr(key, "unit.example.org", &len);
    save("csr.der", der, len);

    if (!ngx_http_claw_acme_alpn_cert("unit.example.org", "tok.en",
                                      EVP_PKEY_EC, &der, &len, &kder, &klen))
    {
        return 1;
    }

    save("ec.der", der, len);
    save("ec-key.der", kder, klen);

    if (!ngx_http_claw_acme_alpn_cert("unit.example.org", "tok.en",
                                      EVP_PKEY_RSA, &der, &len, &kder, &klen))
    {
        return 1;
    }

    save("rsa.der", der, len);
    save("rsa-key.der", kder, klen);

    return 0;
}
_EOC_
    close $c;
    my $src = File::Spec->rel2abs('ngx_claw_module');
    sh_run("cc -Wall -Werror -I$src -o $dir/unit $dir/unit.c "
         . "$src/ngx_http_claw_acme_jws.c $src/ngx_http_claw_token.c "
         . "$src/ngx_http_claw_parse.c -lcrypto");
    return scalar `cd $dir && ./unit`;
}

# a command's output, stderr included
sub sh { my ($cmd) = @_; return scalar `$cmd 2>&1` }

sub b64url_decode {
    my ($s) = @_;
    $s =~ tr/-_/+\//;
    return MIME::Base64::decode_base64($s . '=' x (-length($s) % 4));
}

# r || s as the DER of an ECDSA-Sig-Value, for openssl dgst -verify
sub ecdsa_der {
    my ($raw) = @_;
    my @int = map {
        my $v = $_;
        $v =~ s/^\x00+//;
        $v = "\x00$v" if $v eq '' || ord($v) & 0x80;
        "\x02" . chr(length $v) . $v
    } substr($raw, 0, 32), substr($raw, 32, 32);
    my $body = join '', @int;
    return "\x30" . chr(length $body) . $body;
}

{
    my $unit = "$Files/unit";
    my $run = unit_run();
    my %out;
    push @{ $out{$1} }, $2 while $run =~ /^(\w+) ?(.*)$/mg;

    Test::More::is(join(' ', map { "[$_]" } @{ $out{b64} }),
                   '[] [Zg] [Zm8] [Zm9v] [-_8]', "unit: base64url, no padding");

    my $jwk = $out{jwk}[0];
    my ($x, $y) = $jwk =~ /^\{"crv":"P-256","kty":"EC",
                             "x":"([\w-]{43})","y":"([\w-]{43})"\}$/x;
    my $pub = `openssl pkey -in $unit/key.pem -noout -text`;
    $pub =~ s/.*pub:\s*(.*?)\nASN1.*/$1/s;
    $pub =~ s/[\s:]//g;
    Test::More::is(unpack('H*', "\x04" . b64url_decode($x // '')
                                . b64url_decode($y // '')),
                   $pub, "unit: the JWK is the public key, members sorted");
    Test::More::is($out{thumb}[0],
                   MIME::Base64::encode_base64url(Digest::SHA::sha256($jwk)),
                   "unit: RFC 7638 thumbprint");

    my $jws = JSON::PP->new->decode($out{jws}[0]);
    Test::More::is(b64url_decode($jws->{protected})
                   . b64url_decode($jws->{payload}),
                   '{"alg":"ES256","nonce":"n"}{"a":1}', "unit: JWS members");
    my $sig = b64url_decode($jws->{signature});
    Test::More::is(length $sig, 64, "unit: ES256 signature is r || s");
    ClawTest::write_file("$unit/input", "$jws->{protected}.$jws->{payload}");
    ClawTest::write_file("$unit/sig.der", ecdsa_der($sig));
    sh_run("openssl pkey -in $unit/key.pem -pubout -out $unit/pub.pem");
    Test::More::like(main::sh("openssl dgst -sha256 -verify $unit/pub.pem "
                              . "-signature $unit/sig.der $unit/input"),
                     qr/Verified OK/, "unit: openssl verifies the signature");
    Test::More::is(JSON::PP->new->decode($out{get}[0])->{payload}, '',
                   "unit: POST-as-GET has an empty payload");

    my $csr = sh("openssl req -inform DER -in $unit/csr.der -verify "
                 . "-noout -text");
    Test::More::like($csr, qr/verify\ OK.*Subject:\ CN\ ?=\ ?unit\.example\.org
                              .*DNS:unit\.example\.org/sx,
                     "unit: CSR signed, for the name");

    my $digest = uc Digest::SHA::sha256_hex('tok.en');
    for my $type ('ec', 'rsa') {
        my $asn1 = `openssl asn1parse -inform DER -in $unit/$type.der`;
        Test::More::like($asn1, qr/:1\.3\.6\.1\.5\.5\.7\.1\.31\n.*BOOLEAN\ +:255\n
                                  .*OCTET\ STRING\ +\[HEX\ DUMP\]:0420$digest\n/x,
                         "unit: $type challenge certificate: acmeIdentifier");
        my $text = `openssl x509 -inform DER -in $unit/$type.der -noout -text`;
        Test::More::like($text, $type eq 'ec' ? qr/ASN1 OID: prime256v1/
                                              : qr/Public-Key: \(2048 bit\)/,
                         "unit: $type challenge key");
        Test::More::like($text, qr/Issuer:\ CN\ ?=\ ?unit\.example\.org
                                  .*Subject:\ CN\ ?=\ ?unit\.example\.org
                                  .*DNS:unit\.example\.org/sx,
                         "unit: $type challenge certificate: self-signed");
        Test::More::is(main::sh("openssl x509 -inform DER "
                                . "-in $unit/$type.der -noout -pubkey"),
                       main::sh("openssl pkey -inform DER "
                                . "-in $unit/$type-key.der -pubout"),
                       "unit: $type challenge key matches");
    }
}

add_block_preprocessor(sub {
    my $block = shift;

    # "... " goes on with the nginx (and state) of the block before
    return if $block->name =~ /^TEST \d+: \.\.\. /;

    # the owner's event loop is the only one: a stall shows in every request
    workers($block->name =~ /one worker/ ? 1 : 2);

    rules($block->name =~ /slow disk/
          ? "write sleep=2000 $State/\nrename sleep=2000 $State/\n" : '');

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_A;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_A_CA;
    claw_acme_email ops@claw.test;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 4s;

    include $TEST_NGINX_ACME_FILES/servers.conf;
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", <<'_EOF_');
>>> tenants.conf
alice  127.0.0.1:19962
_EOF_
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location /.well-known/acme-challenge/ {
        claw_acme_http;
    }

    location = /acme {
        claw_acme_status;
    }

    location /claw/ {
        claw_admin;
    }

    location = /metrics {
        claw_metrics;
    }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: claw_acme needs a state directory
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_acme $TEST_NGINX_ACME_A;
--- must_die
--- error_log
"claw_acme" requires "claw_acme_state"



=== TEST 2: the directory is an https URL
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_acme http://127.0.0.1:14000/dir;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
--- must_die
--- error_log
invalid claw_acme directory "http://127.0.0.1:14000/dir", expected an https:// URL



=== TEST 3: claw_acme needs the registry
--- http_config
    claw_acme $TEST_NGINX_ACME_A;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
--- config
    location /x {
        return 204;
    }
--- must_die
--- error_log
"claw_acme" requires "claw_zone" and "claw_tenants" in the http block



=== TEST 4: claw_acme_http without claw_acme
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
--- config
    location /.well-known/acme-challenge/ {
        claw_acme_http;
    }
--- must_die
--- error_log
"claw_acme_http" and "claw_acme_status" require "claw_acme" in the http block



=== TEST 5: validation requests carry no tenant credential
--- config
    location /.well-known/acme-challenge/ {
        claw on;
        claw_acme_http;
    }
--- must_die
--- error_log
"claw_acme_http" cannot be in a location with "claw on"



=== TEST 6: a malformed cap
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_acme $TEST_NGINX_ACME_A;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_cap 0/d;
--- must_die
--- error_log
invalid claw_acme_cap "0/d", expected "number/d", "number/h" or "off"



=== TEST 7: a domain added through the admin API is issued (http-01) and served, no reload
--- init
Test::More::is_deeply(ClawAcme::acme_status()->{domains}, [], "no names yet");
Test::More::is(main::admin_put('dave', ['app.dave.test']), 201,
               "dave and app.dave.test added through the admin API");
Test::More::ok(ClawAcme::wait_until(20, sub { main::valid('app.dave.test') }),
               "app.dave.test has a certificate");
my $root = ClawAcme::pebble_root($::A);
my ($rc, $body) = ClawAcme::tls_get('app.dave.test', $root);
Test::More::is("$rc $body", "0 container app.dave.test\n",
               "served, and it chains to pebble's root");
Test::More::like(ClawAcme::served_cert('app.dave.test'),
                 qr/subject=CN ?= ?app\.dave\.test .*issuer=CN ?= ?Pebble Intermediate/,
                 "the certificate pebble issued");
Test::More::is(main::mode($::State), '0700', "state directory 0700");
Test::More::is(main::mode("$::State/certs"), '0700', "certs directory 0700");
Test::More::is(main::mode("$::State/account.key"), '0600', "account key 0600");
Test::More::is(main::mode("$::State/certs/app.dave.test.key"), '0600',
               "certificate key 0600");
Test::More::is(ClawAcme::orders_of($::State), 1, "one order");
my $m = main::metrics();
my $end = ClawAcme::acme_domain('app.dave.test')->{not_after};
Test::More::like($m, qr/^claw_certificate_expiry_timestamp_seconds\{tenant="dave",domain="app\.dave\.test"\} $end\n/m,
                 "metrics: the certificate's expiry, as the status says");
Test::More::like($m, qr/^claw_certificate_failures\{tenant="dave",domain="app\.dave\.test"\} 0\n/m,
                 "metrics: no failure");
Test::More::like($m, qr/^claw_certificates\{state="valid"\} 1\n.*^claw_certificates\{state="none"\} 0\n/ms,
                 "metrics: one name valid");
--- request
GET /acme
--- response_body_like: "domain":"app\.dave\.test","tenant":"dave","state":"valid",.*"failures":0,"orders":1,
--- error_log
claw_acme: order for "app.dave.test" of tenant "dave"
claw_acme: http-01 challenge of "app.dave.test" answered
claw_acme: certificate of "app.dave.test" issued
--- no_error_log
[error]
--- timeout: 40



=== TEST 8: ... a restart serves the same certificate and orders nothing
--- init
my $serial = main::serial('app.dave.test');
ClawTest::nginx_restart_hard();
Test::More::ok(ClawAcme::wait_until(5, sub { main::valid('app.dave.test') }),
               "the certificate is known again");
select(undef, undef, undef, 2);
Test::More::is(ClawAcme::orders_of($::State), 1, "still one order");
Test::More::is(ClawAcme::acme_domain('app.dave.test')->{orders}, 0,
               "none since the restart");
Test::More::is(main::serial('app.dave.test'), $serial,
               "the same certificate is served");
--- request
GET /acme
--- response_body_like: "domain":"app\.dave\.test","tenant":"dave","state":"valid"
--- no_error_log
[error]
--- timeout: 30



=== TEST 9: ... a name no tenant owns is never ordered, by SNI or by Host
--- init
Test::More::like(ClawAcme::served_cert('nobody.acme.test'),
                 qr/subject=CN ?= ?default/, "the server's own certificate");
my $out = main::sh("echo | openssl s_client -connect 127.0.0.1:19961 "
                   . "-servername nobody.acme.test -alpn acme-tls/1");
Test::More::unlike($out, qr/ALPN protocol: acme-tls\/1/,
                   "no acme-tls/1 for it");
Test::More::is(ClawTest::http_get('/.well-known/acme-challenge/abc',
                                  'Host: nobody.acme.test'), 404,
               "no http-01 answer for it");
my ($rc, $body) = ClawAcme::tls_get('nobody.acme.test', "$::Files/rsa.crt",
                                    '-k');
Test::More::is($rc, 0, "an https request for it");
select(undef, undef, undef, 2);
Test::More::ok(!ClawAcme::acme_domain('nobody.acme.test'),
               "not a name of the zone");
Test::More::is(ClawAcme::orders_of($::State, 'nobody.acme.test'), 0,
               "no order");
Test::More::ok(!-e "$::State/certs/nobody.acme.test.crt", "no file");
--- request
GET /.well-known/acme-challenge/abc
--- more_headers
Host: app.dave.test
--- error_code: 404
--- error_log
claw_acme: no http-01 challenge "abc" of "app.dave.test"
--- no_error_log
nobody.acme.test" of tenant



=== TEST 10: ... a renewal asked for is served without a reload
--- init
my $serial = main::serial('app.dave.test');
my ($status, $body) = ClawTest::http_request('POST',
                                             '/acme?renew=app.dave.test');
Test::More::is("$status $body", "202 {\"renew\":\"app.dave.test\"}\n",
               "renewal asked for");
Test::More::ok(ClawAcme::wait_until(20, sub { ClawAcme::orders_of($::State) == 2
                                    && main::valid('app.dave.test') }),
               "renewed");
Test::More::ok(ClawAcme::wait_until(15,
                   sub { main::serial('app.dave.test') ne $serial }),
               "the new certificate is served");
my ($rc, $out) = ClawAcme::tls_get('app.dave.test',
                                   ClawAcme::pebble_root($::A));
Test::More::is("$rc $out", "0 container app.dave.test\n", "and verifies");
Test::More::ok(main::logged(qr/claw_acme: badNonce from ".*", sent again/)
               && main::logged(qr/, [1-9]\d* nonces refused\)/),
               "the nonces pebble refused were retried");
--- request
POST /acme?renew=nobody.acme.test
--- error_code: 404
--- response_body
{"error":"no tenant has \"nobody.acme.test\""}
--- error_log
claw_acme: renewal of "app.dave.test" asked for
--- no_error_log
[error]
--- timeout: 50



=== TEST 11: renewal at two thirds of the lifetime; a removed name is not renewed
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_B;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_B_CA;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 4s;

    include $TEST_NGINX_ACME_FILES/servers.conf;
--- user_files
>>> tenants.conf
erin  127.0.0.1:19962  domain=short.erin.test
--- init
my $d = ClawAcme::wait_until(15, sub { main::valid('short.erin.test') });
Test::More::ok($d, "short.erin.test has a certificate");
my ($nb, $na) = ($d->{not_before}, $d->{not_after});
Test::More::is($d->{renew_at}, $nb + int(($na - $nb) / 3) * 2,
               "renewal due at two thirds of its lifetime");
# the first renewal attempt seen (a failed one is retried after a
# back-off, which may end past the expiry on a loaded machine)
my $first;
my $r = ClawAcme::wait_until(15, sub {
    my $x = ClawAcme::acme_domain('short.erin.test');
    $first //= $x->{last_order}
        if $x && $x->{last_order} > $d->{last_order};
    $x && $x->{not_before} > $nb && $x->{state} eq 'valid' && $x });
Test::More::ok($r, "renewed");
Test::More::ok($first && $first >= $d->{renew_at} && $first < $na,
               "after two thirds, before it expired")
    or Test::More::diag("first renewal attempt at " . ($first // 'none')
                        . ", due at $d->{renew_at}, expiry at $na, "
                        . "last order at " . ($r ? $r->{last_order} : '-'));
Test::More::is(main::admin_put('erin', []), 200,
               "short.erin.test removed through the admin API");
Test::More::ok(ClawAcme::wait_until(5,
                   sub { !ClawAcme::acme_domain('short.erin.test') }),
               "no longer a name of the zone");
my $n = ClawAcme::orders_of($::State);
my $due = (stat "$::State/certs/short.erin.test.crt")[9] + 8;
select(undef, undef, undef, 0.2) while time < $due;
Test::More::is(ClawAcme::orders_of($::State), $n, "not renewed once due");
--- request
GET /acme
--- response_body_unlike: short\.erin\.test
--- error_log
claw_acme: "short.erin.test" is no longer a tenant's domain, not renewed
--- no_error_log
[error]
--- timeout: 60



=== TEST 12: a name that cannot be validated is retried with growing delays
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_A;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_A_CA;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 4s;

    include $TEST_NGINX_ACME_FILES/servers.conf;

    server {
        listen $TEST_NGINX_SERVER_PORT;
        server_name bad.acme.test;
        return 404;
    }
--- user_files
>>> tenants.conf
frank  127.0.0.1:19962  domain=bad.acme.test
--- init
Test::More::ok(ClawAcme::wait_until(20,
                   sub { main::failures('bad.acme.test') >= 4 }),
               "four failed orders");
my @f = main::failures('bad.acme.test');
Test::More::is(join(' ', map { $_->[1] } @f[0 .. 3]), '1 2 4 4',
               "next attempts in 1, 2, 4, 4 (the maximum) seconds");
Test::More::ok($f[1][0] - $f[0][0] >= 1 && $f[2][0] - $f[1][0] >= 2
               && $f[3][0] - $f[2][0] >= 4, "and not before");
my $d = ClawAcme::acme_domain('bad.acme.test');
Test::More::like($d->{error}, qr/404/, "the CA's reason");
Test::More::ok(!-e "$::State/certs/bad.acme.test.crt", "no certificate");
my $m = main::metrics();
my ($n) = $m =~ /^claw_certificate_failures\{tenant="frank",domain="bad\.acme\.test"\} (\d+)$/m;
Test::More::ok(($n // 0) >= 4, "metrics: its failures in a row (" . ($n // 'none') . ")");
Test::More::unlike($m, qr/^claw_certificate_expiry_timestamp_seconds\{/m,
                   "metrics: no expiry for a name without a certificate");
--- request
GET /acme
--- response_body_like: "domain":"bad\.acme\.test","tenant":"frank","state":"(none|issuing)",.*"error":"authorization is \\"invalid\\": 
--- error_log
claw_acme: order for "bad.acme.test" failed: authorization is "invalid"
--- timeout: 40



=== TEST 13: a tenant's cap, also across a restart
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_A;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_A_CA;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 4s;
    claw_acme_cap 2/d;

    include $TEST_NGINX_ACME_FILES/servers.conf;
--- user_files
>>> tenants.conf
gina  127.0.0.1:19962  domain=c1.gina.test domain=c2.gina.test domain=c3.gina.test
hank  127.0.0.1:19962  domain=h1.hank.test
--- init
Test::More::ok(ClawAcme::wait_until(20, sub {
        main::valid('h1.hank.test')
        && 2 == grep { $_->{state} eq 'valid' } main::gina() }),
    "two of gina's names and hank's have certificates");
Test::More::is(join(' ', map { $_->{capped} ? 'capped' : $_->{state} }
                         sort { $a->{state} cmp $b->{state} } main::gina()),
               'capped valid valid', "gina's third waits");
Test::More::is(ClawAcme::orders_of($::State), 3, "three orders");
ClawTest::nginx_restart_hard();
select(undef, undef, undef, 2);
Test::More::is(ClawAcme::orders_of($::State), 3, "still three after a restart");
Test::More::is(scalar(grep { $_->{capped} } main::gina()), 1, "still capped");
--- request
GET /acme
--- response_body_like: "tenant":"gina","state":"none",.*"capped":true
--- error_log
claw_acme: tenant "gina" is over its cap of 2 certificates a day
claw_acme: 3 orders of the last day counted
--- no_error_log
[error]
--- timeout: 40



=== TEST 14: tls-alpn-01, and ALPN as usual for everything else
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_A;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_A_CA;
    claw_acme_challenge tls-alpn-01;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 4s;

    include $TEST_NGINX_ACME_FILES/servers.conf;
--- init
Test::More::is(main::admin_put('ivan', ['alpn.ivan.test']), 201,
               "alpn.ivan.test added");
Test::More::ok(ClawAcme::wait_until(20, sub { main::valid('alpn.ivan.test') }),
               "alpn.ivan.test has a certificate");
my $root = ClawAcme::pebble_root($::A);

# the validation's handshakes (TLSv1.2) had each worker's TLS code look
# for the name's files before there were any: it looks again after 10
# seconds
my $stored = (stat "$::State/certs/alpn.ivan.test.crt")[9];
select(undef, undef, undef, 0.2) while time < $stored + 11;
my ($rc, $out) = ClawAcme::tls_get('alpn.ivan.test', $root, '--http2',
                         '-w', '" %{http_version}"');
Test::More::is("$rc $out", "0 container alpn.ivan.test\n 2",
               "served over HTTP/2");
($rc, $out) = ClawAcme::tls_get('alpn.ivan.test', $root, '--http1.1',
                      '-w', '" %{http_version}"');
Test::More::is("$rc $out", "0 container alpn.ivan.test\n 1.1",
               "and over HTTP/1.1");
$out = main::sh("echo | openssl s_client -connect 127.0.0.1:19961 "
                . "-servername alpn.ivan.test -alpn acme-tls/1");
Test::More::unlike($out, qr/ALPN protocol: acme-tls\/1/,
                   "no acme-tls/1 without a pending challenge");
--- request
GET /acme
--- response_body_like: "domain":"alpn\.ivan\.test","tenant":"ivan","state":"valid"
--- error_log
claw_acme: tls-alpn-01 challenge of "alpn.ivan.test" answered (TLSv1.2, RSA)
claw_acme: certificate of "alpn.ivan.test" issued
--- no_error_log
http-01 challenge
[error]
--- timeout: 40



=== TEST 15: ... another worker takes over from an owner killed mid-work
--- init
my $owner = ClawAcme::acme_status()->{owner};
Test::More::ok($owner > 0, "a worker does the ACME work");
Test::More::is(main::admin_put('ivan', ['alpn.ivan.test', 'two.ivan.test']),
               200, "two.ivan.test added");
kill 'KILL', $owner;
my $new = ClawAcme::wait_until(5, sub {
    my $o = ClawAcme::acme_status()->{owner};
    $o && $o != $owner && $o });
Test::More::ok($new, "another worker took over");
Test::More::ok(ClawAcme::wait_until(20, sub { main::valid('two.ivan.test') }),
               "two.ivan.test has a certificate");
--- request
GET /acme
--- response_body_like: "domain":"two\.ivan\.test","tenant":"ivan","state":"valid"
--- error_log
claw_acme: certificate of "two.ivan.test" issued
--- timeout: 40



=== TEST 16: tls-alpn-01 in TLSv1.3, for a new certificate and a renewal
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_A;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_A_CA;
    claw_acme_challenge tls-alpn-01;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 4s;

    include $TEST_NGINX_ACME_FILES/servers-tls13.conf;
--- user_files
>>> tenants.conf
judy  127.0.0.1:19962  domain=tls13.judy.test
--- init
Test::More::ok(ClawAcme::wait_until(20, sub { main::valid('tls13.judy.test') }),
               "tls13.judy.test has a certificate");
my ($status) = ClawTest::http_request('POST', '/acme?renew=tls13.judy.test');
Test::More::is($status, 202, "renewal asked for");
Test::More::ok(ClawAcme::wait_until(20, sub { ClawAcme::orders_of($::State) == 2
                                    && main::valid('tls13.judy.test') }),
               "renewed, validated again");
my $root = ClawAcme::pebble_root($::A);
Test::More::ok(ClawAcme::wait_until(15, sub {
        (ClawAcme::tls_get('tls13.judy.test', $root, '--tlsv1.3'))[0] == 0 }),
               "served in TLSv1.3");
--- request
GET /acme
--- response_body_like: "domain":"tls13\.judy\.test","tenant":"judy","state":"valid"
--- grep_error_log eval: qr/tls-alpn-01 challenge of "tls13.judy.test" answered \(TLSv1.3, EC\)/
--- grep_error_log_out eval: qr/(tls-alpn-01 challenge of "tls13.judy.test" answered \(TLSv1.3, EC\)\n){2,}/
--- no_error_log
[error]
--- timeout: 60



=== TEST 17: one worker, a slow disk: tenant requests never wait for the owner's files, and the certificate is issued
--- user_files
>>> tenants.conf
kate  127.0.0.1:19962  domain=slow.kate.test
--- config
    location /.well-known/acme-challenge/ {
        claw_acme_http;
    }

    location = /acme {
        claw_acme_status;
    }

    location / {
        claw on;
        claw_auth off;
        proxy_pass http://claw;
        proxy_set_header Host $host;
    }
--- init
# every write() and rename() under the state directory sleeps 2 s: the
# account key, the orders journal, the certificate and its key
my $t0 = Time::HiRes::time();
my ($slowest, $n, $failed, $d) = main::tenant_slowest('slow.kate.test', 60,
    sub { main::valid('slow.kate.test') });
my $took = Time::HiRes::time() - $t0;
Test::More::ok($d, "slow.kate.test has a certificate");
Test::More::cmp_ok($took, '>=', 8, "the disk was slow: issued in 8 s or more");
# a write waits 2 s: under valgrind (its threads take turns) a request
# may take over 1 s without waiting for one
Test::More::cmp_ok($slowest, '<', $ENV{TEST_NGINX_USE_VALGRIND} ? 1.9 : 1,
                   sprintf("no tenant request waited for the disk "
                           . "(slowest of %d: %.3f s)", $n, $slowest));
Test::More::is($failed, 0, "every tenant request answered");
Test::More::is(main::mode("$::State/account.key"), '0600', "account key stored");
# under make hup a worker of the block before may journal the order too,
# between the reload that adds the name and its own exit, and leave it
# unplaced (journaled first, placed after: counted against the cap, the
# safe side)
my $orders = ClawAcme::orders_of($::State, 'slow.kate.test');
Test::More::ok($orders == 1 || ($ENV{TEST_NGINX_USE_HUP} && $orders == 2),
               "the order journaled ($orders)");
--- request
GET /acme
--- response_body_like: "domain":"slow\.kate\.test","tenant":"kate","state":"valid"
--- error_log eval
# Under make hup the workers of the block before are still running when
# this block empties the state directory: one of them may make the new
# account key before the reload (the key's file is checked above).
[($ENV{TEST_NGINX_USE_HUP} ? () : 'claw_acme: new account key'),
 'claw_acme: order for "slow.kate.test" of tenant "kate"',
 'claw_acme: certificate of "slow.kate.test" issued']
--- no_error_log
[error]
--- timeout: 120



=== TEST 18: ... an orders journal past 1 MiB, at a restart and while nginx runs: rewritten off the event loop
--- init
# 40,000 orders of two days ago, then those of the last day: the
# journal is rewritten with only these, with a write() and a rename()
# of 2 s each
my $old = time - 2 * 86400;
my $journal = join '', map { "$old t$_ old$_.example.test\n" } 1 .. 40000;
$journal .= ClawTest::slurp("$::State/orders") . time . " lena l.lena.test\n";
ClawTest::write_file("$::State/orders", $journal);
Test::More::cmp_ok(length $journal, '>', 1024 * 1024, "a journal past 1 MiB");
my $t0 = Time::HiRes::time();
ClawTest::nginx_restart_hard();
my ($slowest, $n, $failed, $size) = main::tenant_slowest('slow.kate.test', 30,
    sub { my $s = -s "$::State/orders";
          $s < 1024 && main::valid('slow.kate.test') && $s });
my $took = Time::HiRes::time() - $t0;
Test::More::ok($size, "rewritten, and the certificate known again");
Test::More::cmp_ok($took, '>=', 4, "the disk was slow: rewritten in 4 s or more");
Test::More::is(ClawAcme::orders_of($::State), 2, "with the last day's orders");
Test::More::cmp_ok($slowest, '<', 1,
                   sprintf("no tenant request waited for it "
                           . "(slowest of %d: %.3f s)", $n, $slowest));
Test::More::is($failed, 0, "every tenant request answered");
Test::More::is(ClawAcme::acme_domain('slow.kate.test')->{orders}, 0,
               "nothing ordered");

# it grows past 1 MiB again while nginx runs: the next order appends to
# it, and rewrites it
ClawTest::write_file("$::State/orders", ClawTest::slurp("$::State/orders")
    . join '', map { "$old u$_ old$_.example.test\n" } 1 .. 40000);
my ($status) = ClawTest::http_request('POST', '/acme?renew=slow.kate.test');
Test::More::is($status, 202, "a renewal asked for");
($slowest, $n, $failed, $size) = main::tenant_slowest('slow.kate.test', 60,
    sub { my $d = ClawAcme::acme_domain('slow.kate.test');
          my $s = -s "$::State/orders";
          $d->{orders} == 1 && $d->{state} eq 'valid' && $s < 1024 && $s });
Test::More::ok($size, "renewed, and the journal rewritten at its order");
Test::More::is(ClawAcme::orders_of($::State), 3,
               "with the last day's orders, the new one too");
Test::More::cmp_ok($slowest, '<', 1,
                   sprintf("no tenant request waited for it "
                           . "(slowest of %d: %.3f s)", $n, $slowest));
Test::More::is($failed, 0, "every tenant request answered");
--- request
GET /acme
--- response_body_like: "domain":"slow\.kate\.test","tenant":"kate","state":"valid"
--- error_log
claw_acme: 2 orders of the last day counted
--- no_error_log
[error]
--- timeout: 120
