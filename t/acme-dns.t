# The platform's wildcard certificate by dns-01 (claw_acme_wildcard),
# against real peers: Debian's knotd, authoritative for claw.test and
# taking RFC 2136 updates signed with TSIG, and Debian's pebble asking it
# for every name.  "*.agents.claw.test" (a name below the zone's apex)
# is issued from nothing by the module's own signed updates, served to
# handshakes for "<id>.agents.claw.test" and "agents.claw.test" with no
# reload, renewed on request, with the TXT records gone after each
# order; a wrong TSIG key fails with the server's reason and the old
# certificate goes on being served, until a fixed key succeeds.  Then
# "*.hooked.claw.test" through an exec hook that writes into the same
# server with nsupdate, and its failures: a hook that exits non-zero, a
# record that never shows.  Configuration errors are named.

use lib 't/perl';
use ClawTest;
use ClawAcme;
use File::Path ();
use File::Temp qw(tempdir);
use Test::Nginx::Socket 'no_plan';

BEGIN {
    for my $bin ('/usr/bin/pebble', '/usr/sbin/knotd', '/usr/bin/kdig',
                 '/usr/bin/nsupdate')
    {
        next if -x $bin;
        require Test::More;
        Test::More::plan(skip_all => "$bin is not installed");
    }
}

master_on();
workers(2);
no_shuffle();
no_root_location();
log_level('info');

our $Knot = knot_start(port => 19945, zone => 'claw.test');
our $CA = pebble_start(name => 'dns', port => 14020, dns => $Knot->{server},
                       authz_reuse => 0, http_port => 19948,
                       tls_port => 19946);

our $Files = tempdir(CLEANUP => 1);
our $State = server_root() . '/html/acme';

# from nothing, also when the server root is kept (HUP mode)
File::Path::remove_tree($State);

$ENV{TEST_NGINX_ACME_DNS} = $CA->{directory};
$ENV{TEST_NGINX_ACME_DNS_CA} = $CA->{ca};
$ENV{TEST_NGINX_ACME_FILES} = $Files;
$ENV{TEST_NGINX_KNOT} = $Knot->{server};

# the module's copy of the key, which a test spoils and mends
sh_run("cp $Knot->{key} $Files/claw.key");

# a record at the challenge name that is no challenge value, longer than
# any (two strings, 260 bytes; small enough for pebble's answers over
# UDP, which it never asks again over TCP): the module looks past it
my $long = join ' ', ('"' . ('x' x 130) . '"') x 2;
sh_run("printf 'server 127.0.0.1 $Knot->{port}\\nupdate add "
    . "_acme-challenge.agents.claw.test 60 TXT %s\\nsend\\n' '$long' "
    . "| nsupdate -k $Knot->{key}");
die "the long TXT record is not there\n"
    unless ClawAcme::knot_txt($Knot, '_acme-challenge.agents.claw.test')
           =~ /x{130}/;

# a DNS server that takes connections and never answers
ClawTest::spawn("$Files/silent.log", {}, 'perl', '-MIO::Socket::IP', '-e',
    'my $l = IO::Socket::IP->new(LocalHost => "127.0.0.1", LocalPort => 19949,'
    . ' Listen => 16, ReuseAddr => 1) or die $!; my @c;'
    . ' while (my $c = $l->accept) { push @c, $c }');
ClawTest::wait_port(19949, 'the silent DNS server');

sh_run("openssl req -x509 -newkey rsa:2048 -nodes -keyout $Files/rsa.key "
    . "-out $Files/rsa.crt -days 2 -subj /CN=default 2>/dev/null");

# The hook: "present|cleanup name value" logged, then done with nsupdate
# as $Files/mode says: ok, fail (exit 3), nothing (exit 0, no record),
# hang (a present: its pid in hook.pid, then a sleep of 1000 s).
open my $fh, '>', "$Files/hook" or die "$Files/hook: $!\n";
print $fh <<"_EOS_";
#!/bin/sh
echo "\$*" >> $Files/hook.log
mode=\$(cat $Files/mode 2>/dev/null || echo ok)
[ "\$mode" = fail ] && { echo "hook: the provider said no" >&2; exit 3; }
[ "\$mode" = nothing ] && exit 0
[ "\$mode\$1" = hangpresent ] && { echo \$\$ > $Files/hook.pid; exec sleep 1000; }
case "\$1" in
present) op="update add \$2 60 TXT \\"\$3\\"" ;;
cleanup) op="update delete \$2 TXT \\"\$3\\"" ;;
*) exit 2 ;;
esac
printf 'server 127.0.0.1 $Knot->{port}\\n%s\\nsend\\n' "\$op" \\
    | nsupdate -k $Knot->{key}
_EOS_
close $fh;
chmod 0755, "$Files/hook" or die "chmod: $!\n";

open $fh, '>', "$Files/servers.conf" or die "$Files/servers.conf: $!\n";
print $fh <<"_EOC_";
    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19947;
        return 200 "container \$host\\n";
    }

    server {
        listen 127.0.0.1:19946 ssl;
        server_name _;

        ssl_certificate $Files/rsa.crt;
        ssl_certificate_key $Files/rsa.key;
        claw_certificates $State/certs;
        claw_domain claw.test;
        claw_domain agents.claw.test;
        claw_domain hooked.claw.test;

        location / {
            claw on;
            claw_auth off;
            proxy_pass http://claw;
            proxy_set_header Host \$host;
        }
    }
_EOC_
close $fh;

sub mode { my $f; open $f, '>', "$Files/mode" and print $f $_[0]; }

sub hook_log { ClawTest::slurp("$Files/hook.log") }

sub valid { my $d = acme_domain($_[0]); $d && $d->{state} eq 'valid' && $d }

sub serial { my ($s) = served($_[0]) =~ /serial=(\w+)/; $s // '' }

sub served {
    my ($sni) = @_;
    return `echo | openssl s_client -connect 127.0.0.1:19946 -servername $sni 2>/dev/null | openssl x509 -noout -subject -issuer -serial -ext subjectAltName 2>/dev/null`;
}

sub https_get {
    my ($name, $root) = @_;
    my $out = `curl -s -S --max-time 5 --cacert $root --resolve $name:19946:127.0.0.1 https://$name:19946/ 2>&1`;
    return ($? >> 8) . " $out";
}

sub renew {
    my ($name) = @_;
    my ($status) = ClawTest::http_request('POST', "/acme?renew=$name");
    return $status;
}

# the challenge values (43 characters) at the name
sub txt {
    join ' ', grep { length == 43 }
        split / /, ClawAcme::knot_txt($Knot, "_acme-challenge.$_[0]");
}

sub logged {
    my ($re) = @_;
    open my $log, '<', server_root() . '/logs/error.log' or return 0;
    return scalar grep { $_ =~ $re } <$log>;
}

sub spoil_key {
    my ($good) = @_;
    my $key = ClawTest::slurp($Knot->{key});
    $key =~ s/secret "[^"]+"/secret "c3BvaWx0c3BvaWx0c3BvaWx0c3BvaWx0c3BvaWx0c3A="/
        unless $good;
    open my $f, '>', "$Files/claw.key" or die "$Files/claw.key: $!\n";
    print $f $key;
    close $f;
}

add_block_preprocessor(sub {
    my $block = shift;

    return if $block->name =~ /^TEST \d+: \.\.\. /;

    # before nginx starts (or is reloaded, in HUP mode): its owner may
    # call the hook at once
    mode($block->name =~ /hook hangs/ ? 'hang' : 'ok');

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_DNS_CA;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 2s;

    claw_acme_wildcard agents.claw.test;
    claw_acme_dns_update $TEST_NGINX_KNOT key=$TEST_NGINX_ACME_FILES/claw.key;

    include $TEST_NGINX_ACME_FILES/servers.conf;
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", <<'_EOF_');
>>> tenants.conf
alice  127.0.0.1:19947
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

    location = /metrics {
        claw_metrics;
    }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: a wildcard needs a way to publish its records
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_wildcard agents.claw.test;
--- must_die
--- error_log
"claw_acme_wildcard" requires either "claw_acme_dns_update" or "claw_acme_dns_hook"



=== TEST 2: not both ways
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_wildcard agents.claw.test;
    claw_acme_dns_update $TEST_NGINX_KNOT key=$TEST_NGINX_ACME_FILES/claw.key;
    claw_acme_dns_hook $TEST_NGINX_ACME_FILES/hook;
    claw_acme_dns_verify $TEST_NGINX_KNOT;
--- must_die
--- error_log
"claw_acme_wildcard" requires either "claw_acme_dns_update" or "claw_acme_dns_hook", not both



=== TEST 3: a hook needs the servers to look at
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_wildcard agents.claw.test;
    claw_acme_dns_hook $TEST_NGINX_ACME_FILES/hook;
--- must_die
--- error_log
"claw_acme_dns_hook" requires "claw_acme_dns_verify": the zone's authoritative servers



=== TEST 4: a malformed TSIG key file is named with its line
--- user_files
>>> tenants.conf
alice  127.0.0.1:19947
>>> bad.key
key "claw-key" {
    algorithm hmac-sha256;
    secret "abc"
};
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_wildcard agents.claw.test;
    claw_acme_dns_update $TEST_NGINX_KNOT key=$TEST_NGINX_SERVER_ROOT/html/bad.key;
--- must_die
--- error_log eval
qr/the TSIG key file ".*bad\.key", line 4: ";" expected/



=== TEST 5: an update needs a key, a known algorithm, an address
--- user_files
>>> tenants.conf
alice  127.0.0.1:19947
>>> md5.key
key "claw-key" { algorithm hmac-md5; secret "c2VjcmV0"; };
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_wildcard agents.claw.test;
    claw_acme_dns_update $TEST_NGINX_KNOT key=$TEST_NGINX_SERVER_ROOT/html/md5.key;
--- must_die
--- error_log
algorithm "hmac-md5" is not supported (hmac-sha256, hmac-sha384 or hmac-sha512)



=== TEST 6: a DNS server is an address, not a name to resolve
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_wildcard agents.claw.test;
    claw_acme_dns_update ns1.claw.test key=$TEST_NGINX_ACME_FILES/claw.key;
--- must_die
--- error_log
"ns1.claw.test" is no DNS server address (an IP address and an optional port)



=== TEST 7: the DNS directives need a wildcard
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_dns_update $TEST_NGINX_KNOT key=$TEST_NGINX_ACME_FILES/claw.key;
--- must_die
--- error_log
"claw_acme_dns_update", "claw_acme_dns_hook" and "claw_acme_dns_verify" require "claw_acme_wildcard"



=== TEST 8: a zone name is checked
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;
    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_wildcard agents.claw.test;
    claw_acme_dns_update $TEST_NGINX_KNOT key=$TEST_NGINX_ACME_FILES/claw.key zone=claw..test;
--- must_die
--- error_log
"zone=claw..test" is no zone name



=== TEST 8a: the wildcard is issued by RFC 2136 updates and served, no reload
--- init
my $before = main::served('alice.agents.claw.test');
Test::More::like($before, qr/subject=CN ?= ?default/,
                 "before: the server's own certificate");
Test::More::ok(ClawAcme::wait_until(30, sub { main::valid('*.agents.claw.test') }),
               "*.agents.claw.test has a certificate");
Test::More::ok(ClawAcme::wait_until(5, sub { main::served('alice.agents.claw.test') =~ /Pebble/ }),
               "served for alice.agents.claw.test");
my $root = ClawAcme::pebble_root($::CA);
Test::More::is(main::https_get('alice.agents.claw.test', $root),
               "0 container alice.agents.claw.test\n",
               "alice.agents.claw.test: the chain verifies, the container answers");
Test::More::like(main::https_get('agents.claw.test', $root),
                 qr/^0 .*404 Not Found/s,
                 "agents.claw.test itself: the same certificate verifies "
                 . "(and no tenant answers there)");
Test::More::like(main::served('bob.agents.claw.test'),
                 qr/DNS:\*\.agents\.claw\.test, DNS:agents\.claw\.test/,
                 "both names in the certificate");
Test::More::like(main::served('other.claw.test'), qr/subject=CN ?= ?default/,
                 "a name under no claw_domain keeps the server's certificate");
Test::More::is(main::txt('agents.claw.test'), '', "the TXT records are gone");
Test::More::like(ClawTest::slurp($::Knot->{log}),
                 qr/\[claw\.test\.\] DDNS, .*\n(?:.*\n)*.*\[claw\.test\.\] DDNS/,
                 "knotd logged the signed updates");
Test::More::ok(-f "$::State/certs/*.agents.claw.test.crt",
               "stored under the wildcard's name");
Test::More::is(ClawAcme::orders_of($::State), 0,
               "the platform's order counts against no tenant's cap");
my ($status, $m) = ClawTest::http_request('GET', '/metrics');
my $end = ClawAcme::acme_domain('*.agents.claw.test')->{not_after};
Test::More::like($m, qr/claw_certificate_expiry_timestamp_seconds\{tenant="",domain="\*\.agents\.claw\.test"\} $end\n/,
                 "metrics: the wildcard's expiry");
--- request
GET /acme
--- response_body_like: "domain":"\*\.agents\.claw\.test","tenant":"","state":"valid",.*"failures":0,"orders":1,
--- error_log
claw_acme: order for "*.agents.claw.test" by dns-01
claw_acme: dns-01 challenge for "*.agents.claw.test"
claw_acme: certificate of "*.agents.claw.test" issued
--- no_error_log
[error]
[warn]
--- timeout: 60



=== TEST 9: ... renewed on request: a new certificate served, the records gone again
--- init
my $serial = main::serial('alice.agents.claw.test');
Test::More::is(main::renew('*.agents.claw.test'), 202, "renewal asked for");
Test::More::ok(ClawAcme::wait_until(30, sub {
                   main::serial('alice.agents.claw.test') ne $serial }),
               "a new certificate is served");
Test::More::is(main::txt('agents.claw.test'), '', "the TXT records are gone");
--- request
GET /acme
--- response_body_like: "domain":"\*\.agents\.claw\.test","tenant":"","state":"valid",.*"failures":0,
--- no_error_log
[error]
--- timeout: 60



=== TEST 10: ... a wrong TSIG key: refused with the server's reason, the old certificate kept, then mended
--- init
my $serial = main::serial('alice.agents.claw.test');
main::spoil_key(0);
ClawTest::nginx_reload();
select(undef, undef, undef, 1);
Test::More::is(main::renew('*.agents.claw.test'), 202, "renewal asked for");
Test::More::ok(ClawAcme::wait_until(20, sub {
                   my $d = ClawAcme::acme_domain('*.agents.claw.test');
                   $d && $d->{failures} >= 1 }),
               "the order failed");
my $d = ClawAcme::acme_domain('*.agents.claw.test');
Test::More::like($d->{error}, qr/refused by 127\.0\.0\.1:19945: NOTAUTH, TSIG BADSIG/,
                 "the reason: the server's answer");
Test::More::is(main::serial('alice.agents.claw.test'), $serial,
               "the old certificate goes on being served");
Test::More::is(main::txt('agents.claw.test'), '', "nothing was published");
main::spoil_key(1);
ClawTest::nginx_reload();
Test::More::ok(ClawAcme::wait_until(30, sub {
                   main::serial('alice.agents.claw.test') ne $serial }),
               "with the key mended, the next attempt succeeds");
--- request
GET /acme
--- response_body_like: "domain":"\*\.agents\.claw\.test","tenant":"","state":"valid",.*"failures":0,
--- error_log eval
qr/claw_acme: order for "\*\.agents\.claw\.test" failed: dns-01: the update of "_acme-challenge\.agents\.claw\.test\." in zone "claw\.test" refused by 127\.0\.0\.1:19945: NOTAUTH, TSIG BADSIG, next attempt in \d+s/
--- timeout: 90



=== TEST 11: the wildcard through an exec hook
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_DNS_CA;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 2s;

    claw_acme_wildcard hooked.claw.test;
    claw_acme_dns_hook $TEST_NGINX_ACME_FILES/hook;
    claw_acme_dns_verify $TEST_NGINX_KNOT;
    claw_acme_dns_wait 3s;

    include $TEST_NGINX_ACME_FILES/servers.conf;
--- init
main::mode('ok');
# hook.log is new: this is the first block that runs the hook
Test::More::ok(ClawAcme::wait_until(30, sub { main::valid('*.hooked.claw.test') }),
               "*.hooked.claw.test has a certificate");
Test::More::ok(ClawAcme::wait_until(5, sub { main::served('bob.hooked.claw.test') =~ /Pebble/ }),
               "served for bob.hooked.claw.test");
my @calls = split /\n/, main::hook_log();
Test::More::is(scalar(grep { /^present _acme-challenge\.hooked\.claw\.test\. [\w-]{43}$/ } @calls), 2,
               "the hook presented both values");
Test::More::is(scalar(grep { /^cleanup _acme-challenge\.hooked\.claw\.test\. [\w-]{43}$/ } @calls), 2,
               "and cleaned both up");
Test::More::is(main::txt('hooked.claw.test'), '', "the TXT records are gone");
--- request
GET /acme
--- response_body_like: "domain":"\*\.hooked\.claw\.test","tenant":"","state":"valid"
--- no_error_log
[error]
--- timeout: 60



=== TEST 12: ... a hook that exits non-zero: logged, cleaned up, the old certificate kept
--- init
my $serial = main::serial('bob.hooked.claw.test');
main::mode('fail');
unlink "$::Files/hook.log";
Test::More::is(main::renew('*.hooked.claw.test'), 202, "renewal asked for");
Test::More::ok(ClawAcme::wait_until(20, sub {
                   my $d = ClawAcme::acme_domain('*.hooked.claw.test');
                   $d && $d->{failures} >= 1 }),
               "the order failed");
Test::More::like(ClawAcme::acme_domain('*.hooked.claw.test')->{error},
                 qr/^dns-01: ".*hook present _acme-challenge\.hooked\.claw\.test\." exited with code 3$/,
                 "the reason: the hook's exit code");
Test::More::like(main::hook_log(), qr/^cleanup /m, "the hook was asked to clean up");
Test::More::is(main::serial('bob.hooked.claw.test'), $serial,
               "the old certificate goes on being served");
--- request
GET /acme
--- response_body_like: "domain":"\*\.hooked\.claw\.test","tenant":"","state":"due"
--- error_log
hook: the provider said no
--- timeout: 40



=== TEST 13: ... a record that never shows: given up after claw_acme_dns_wait, cleaned up, the old certificate kept
--- init
my $serial = main::serial('bob.hooked.claw.test');
main::mode('nothing');
unlink "$::Files/hook.log";
Test::More::ok(ClawAcme::wait_until(30, sub {
                   my $d = ClawAcme::acme_domain('*.hooked.claw.test');
                   $d && $d->{error} =~ /does not show/ }),
               "the order failed");
Test::More::like(ClawAcme::acme_domain('*.hooked.claw.test')->{error},
                 qr/^dns-01: 127\.0\.0\.1:19945 does not show the TXT record of "_acme-challenge\.hooked\.claw\.test\." yet$/,
                 "the reason: the record never showed");
Test::More::like(main::hook_log(), qr/^cleanup /m, "the hook was asked to clean up");
Test::More::is(main::serial('bob.hooked.claw.test'), $serial,
               "the old certificate goes on being served");
main::mode('ok');
--- request
GET /acme
--- response_body_like: "domain":"\*\.hooked\.claw\.test","tenant":"","state":"due"
--- error_log eval
qr/claw_acme: the dns-01 record of "\*\.hooked\.claw\.test" did not show in \d+ s/
--- timeout: 60



=== TEST 14: a DNS server that is not there: the reason, the next attempt later
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_DNS_CA;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 2s;

    claw_acme_wildcard dead.claw.test;
    claw_acme_dns_update 127.0.0.1:19944 key=$TEST_NGINX_ACME_FILES/claw.key;

    include $TEST_NGINX_ACME_FILES/servers.conf;
--- init
Test::More::ok(ClawAcme::wait_until(20, sub {
                   my $d = ClawAcme::acme_domain('*.dead.claw.test');
                   $d && $d->{failures} >= 2 }),
               "the order failed, and failed again after its back-off");
--- request
GET /acme
--- response_body_like: "domain":"\*\.dead\.claw\.test","tenant":"","state":"none",.*"error":"dns-01: 127\.0\.0\.1:19944: Connection refused"
--- error_log eval
qr/claw_acme: order for "\*\.dead\.claw\.test" failed: dns-01: 127\.0\.0\.1:19944: Connection refused/
--- timeout: 40



=== TEST 15: a DNS server that accepts and never answers: given up in seconds
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_DNS_CA;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 2s;

    claw_acme_wildcard silent.claw.test;
    claw_acme_dns_update 127.0.0.1:19949 key=$TEST_NGINX_ACME_FILES/claw.key zone=claw.test;

    include $TEST_NGINX_ACME_FILES/servers.conf;
--- init
my $t0 = time;
Test::More::ok(ClawAcme::wait_until(30, sub {
                   my $d = ClawAcme::acme_domain('*.silent.claw.test');
                   $d && $d->{failures} >= 1 }),
               "the order failed");
Test::More::cmp_ok(time - $t0, '<', 20, "within the exchange's bound");
my ($status, $body) = ClawTest::http_request('GET', '/', '',
                                             'Host: alice.silent.claw.test');
Test::More::is($status, 200, "tenants answered meanwhile");
--- request
GET /acme
--- response_body_like: "domain":"\*\.silent\.claw\.test","tenant":"","state":"none",.*"error":"dns-01: 127\.0\.0\.1:19949 did not answer in time"
--- timeout: 60



=== TEST 16: a reload while a hook hangs: the hook killed, the old worker gone, the next owner issues
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_DNS_CA;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 2s;

    claw_acme_wildcard hung.claw.test;
    claw_acme_dns_hook $TEST_NGINX_ACME_FILES/hook;
    claw_acme_dns_verify $TEST_NGINX_KNOT;

    include $TEST_NGINX_ACME_FILES/servers.conf;
--- init
Test::More::ok(ClawAcme::wait_until(20, sub { -s "$::Files/hook.pid" }),
               "the hook runs, and hangs");
my $pid = ClawTest::slurp("$::Files/hook.pid") + 0;
main::mode('ok');
ClawTest::nginx_reload();
Test::More::ok(ClawAcme::wait_until(10, sub { !kill 0, $pid }),
               "the reload killed the hanging hook");
Test::More::ok(ClawAcme::wait_until(30, sub { main::valid('*.hung.claw.test') }),
               "the new generation's owner issued the wildcard");
Test::More::is(main::logged(qr/worker process \d+ exited on signal/), 0,
               "no worker was killed");
--- request
GET /acme
--- response_body_like: "domain":"\*\.hung\.claw\.test","tenant":"","state":"valid"
--- timeout: 60



=== TEST 17: a reload while a verify server is silent: the wait ends, the records cleaned up
--- http_config
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    claw_acme $TEST_NGINX_ACME_DNS;
    claw_acme_state $TEST_NGINX_SERVER_ROOT/html/acme;
    claw_acme_trusted_certificate $TEST_NGINX_ACME_DNS_CA;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 2s;

    claw_acme_wildcard slow.claw.test;
    claw_acme_dns_update $TEST_NGINX_KNOT key=$TEST_NGINX_ACME_FILES/claw.key;
    claw_acme_dns_verify $TEST_NGINX_KNOT 127.0.0.1:19949;
    claw_acme_dns_wait 60s;

    include $TEST_NGINX_ACME_FILES/servers.conf;
--- init
Test::More::ok(ClawAcme::wait_until(20, sub { main::txt('slow.claw.test') ne '' }),
               "the records are published, and the silent server holds the wait");
my @old = split / /, main::txt('slow.claw.test');
my $t0 = time;
ClawTest::nginx_reload();
Test::More::ok(ClawAcme::wait_until(15, sub { main::logged(qr/did not show in \d+ s: nginx stops/) }),
               "the wait ended with the reload");
Test::More::cmp_ok(time - $t0, '<', 12, "in seconds, not the 60 s of the wait");
# the next owner may have published values of its own meanwhile
Test::More::ok(ClawAcme::wait_until(10, sub {
                   my %now = map { $_ => 1 } split / /, main::txt('slow.claw.test');
                   !grep { $now{$_} } @old }),
               "the old worker's records were cleaned up");
Test::More::is(main::logged(qr/worker process \d+ exited on signal/), 0,
               "no worker was killed");
--- request
GET /acme
--- response_body_like: "domain":"\*\.slow\.claw\.test","tenant":""
--- timeout: 60
