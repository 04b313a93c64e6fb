# Certificates in cluster mode: two nginx nodes share a real Redis
# (Debian's redis-server) and a real ACME CA (Debian's pebble).  One node
# orders a name's certificate (the lock in the server), the CA validates
# on the other node, which answers the challenge it took from the server
# (http-01, then tls-alpn-01), and both serve the one certificate; a
# node whose files are gone takes it from the server without ordering; a
# renewal reaches every node; a certificate or a challenge in the server
# that cannot be used is removed and named; with the server stopped no
# order is placed (the old certificate is served) until it is back.
#
# The blocks run in order and share the server, the CA and the nodes.
# n1 is made the orderer by a lock the test sets in the server first
# (n1's own name: a node takes a lock it holds again, as after a
# restart); pebble validates on n2's ports only.  The nginx of
# Test::Nginx is the tenants' container (port 19985).

use lib 't/perl';
use ClawTest;
use ClawCluster;
use ClawAcme qw(pebble_start pebble_root sh_run);
use File::Path qw(remove_tree);
use Test::Nginx::Socket 'no_plan';

BEGIN {
    if (!-x '/usr/bin/redis-server' || !-x '/usr/bin/pebble'
        || !-x '/usr/bin/pebble-challtestsrv')
    {
        require Test::More;
        Test::More::plan(skip_all => 'redis-server or pebble is not installed');
    }
}

master_on();
workers(1);
no_shuffle();
no_root_location();

# n1: http 19981, TLS 19983; n2: http 19982, TLS 19984
our %Port = (n1 => [19981, 19983], n2 => [19982, 19984]);

our $R = redis_start(port => 19932);
our $CA = pebble_start(name => 'c', port => 14006, http_port => 19982,
                       tls_port => 19984);
our $Root = pebble_root($CA);
our (%Node, $Default);

sub node_text {
    my ($name, $challenge) = @_;
    my ($http, $tls) = @{ $Port{$name} };
    return <<"_EOC_";
    claw_zone claw:1m;
    claw_tenants \$NODE_PREFIX/html/tenants.conf;
    claw_cluster $R->{url} node=$name sync=100ms timeout=1s;

    claw_acme $CA->{directory};
    claw_acme_state \$NODE_PREFIX/html/acme;
    claw_acme_trusted_certificate $CA->{ca};
    claw_acme_email ops\@claw.test;
    claw_acme_challenge $challenge;
    claw_acme_interval 500ms;
    claw_acme_backoff 1s 4s;

    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:$http;

        location /.well-known/acme-challenge/ {
            claw_acme_http;
        }
    }

    server {
        listen 127.0.0.1:$tls ssl;
        ssl_certificate $Default.crt;
        ssl_certificate_key $Default.key;
        claw_certificates \$NODE_PREFIX/html/acme/certs;

        location / {
            claw on;
            claw_auth off;
            proxy_pass http://claw;
        }
    }

    server {
        listen unix:\$NODE_PREFIX/admin.sock;

        location / {
            claw_admin;
        }

        location = /acme {
            claw_acme_status;
        }
    }
_EOC_
}

sub admin {
    my ($n, $method, $path, $body) = @_;
    my ($s, $b) = node_admin($n, 'admin.sock', $method, $path, $body);
    chomp $b;
    return ($s, $b);
}

# "serial issuer" of the certificate a node serves for the name
sub served {
    my ($n, $name) = @_;
    my $port = $Port{$n->{name}}[1];
    my $out = `echo | openssl s_client -connect 127.0.0.1:$port -servername $name 2>/dev/null | openssl x509 -noout -serial -issuer 2>/dev/null`;
    my ($serial) = $out =~ /serial=(\w+)/;
    my ($issuer) = $out =~ /issuer=.*?CN\s*=\s*([^,\n]+)/;
    return ($serial // '', $issuer // '');
}

sub pebble_serial {
    my ($n, $name) = @_;
    my ($serial, $issuer) = served($n, $name);
    return $issuer =~ /Pebble/ ? $serial : '';
}

# seconds until both nodes serve one certificate of the CA for the name
# (other than $old), or "never"
sub until_served {
    my ($name, $old) = @_;
    my $t0 = time;
    my $ok = wait_until(30, sub {
        my @s = map { pebble_serial($_, $name) } @Node{qw(n1 n2)};
        $s[0] ne '' && $s[0] eq $s[1] && $s[0] ne ($old // '');
    });
    return $ok ? 'yes' : 'never';
}

# lines of a node's error log that match
sub logged {
    my ($n, $re) = @_;
    return scalar grep { /$re/ } split /\n/, node_error_log($n);
}

sub status_of {
    my ($n, $name) = @_;
    my (undef, $b) = admin($n, 'GET', '/acme');
    my ($row) = $b =~ /(\{[^{}]*"domain":"\Q$name\E"[^{}]*\})/;
    return $row // '';
}

container_blocks(19985);

run_tests();

__DATA__

=== TEST 1: http-01: n1 orders, the CA validates on n2, which answers from the server; both serve the one certificate
--- init
$::Default = ClawCluster::base() . '/default';
sh_run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
       . "-keyout $::Default.key -out $::Default.crt -days 2 -subj /CN=default "
       . "2>/dev/null");
for my $name (qw(n1 n2)) {
    $::Node{$name} = node_start(name => $name, port => $::Port{$name}[0],
                                workers => 2,
                                http => node_text($name, 'http-01'),
                                files => { 'html/tenants.conf'
                                           => "gina 127.0.0.1:19985\n" });
}
my ($n1, $n2) = @::Node{qw(n1 n2)};
my @lines;
push @lines, "import: " . (admin($n1, 'POST', '/cluster/import'))[0];
redis_cli($::R, 'SET', 'claw:acme:lock:shop.test', 'n1', 'PX', '60000');
# a node answers 503 until it has read the imported registry
my $s;
wait_until(5, sub {
    ($s) = admin($n2, 'PUT', '/tenants/gina',
                 '{"upstream":"127.0.0.1:19985","domains":["shop.test"]}');
    $s != 503;
});
push @lines, "shop.test for gina on n2: $s";
push @lines, "served by both: " . until_served('shop.test');
push @lines, "orders: n1 " . logged($n1, qr/order for "shop.test" of tenant/)
    . ", n2 " . logged($n2, qr/order for "shop.test" of tenant/);
push @lines, "n2 answered n1's challenge: "
    . logged($n2, qr/answering the challenge of "shop.test" for node "n1"/);
push @lines, "n2 took it from the server: "
    . logged($n2, qr/certificate of "shop.test" taken from the cluster \(issued to node "n1"\)/);
push @lines, "lock left: " . redis_cli($::R, 'EXISTS', 'claw:acme:lock:shop.test');
push @lines, "challenges left: " . redis_cli($::R, 'HLEN', 'claw:acme:ch');
push @lines, "in the server: " . join ' ', map { $_ // '-' }
    redis_cli($::R, 'HGET', 'claw:acme:cert:shop.test', 'node');
push @lines, "n2's status: "
    . (status_of($n2, 'shop.test') =~ /"state":"valid"/ ? 'valid' : status_of($n2, 'shop.test'));
ClawTest::report(@lines);
--- response_body
import: 200
shop.test for gina on n2: 200
served by both: yes
orders: n1 1, n2 0
n2 answered n1's challenge: 1
n2 took it from the server: 1
lock left: 0
challenges left: 0
in the server: n1
n2's status: valid
--- timeout: 60



=== TEST 2: tls-alpn-01: the same, the challenge answered in n2's handshakes; a node seen but silent is waited for 5 s, no more
--- init
my ($n1, $n2) = @::Node{qw(n1 n2)};
my @lines;
for my $n ($n1, $n2) {
    push @lines, "reload $n->{name}: "
        . node_reload($n, http => node_text($n->{name}, 'tls-alpn-01'));
}
redis_cli($::R, 'SET', 'claw:acme:lock:alpn.test', 'n1', 'PX', '60000');
# a third node, seen but never answering: n1 waits 5 s for it, then goes on
redis_cli($::R, 'ZADD', 'claw:nodes', int(time * 1000) + 3600000, 'ghost');
sleep 2;    # the nodes are counted every second
push @lines, "alpn.test for gina on n1: " . (admin($n1, 'PUT', '/tenants/gina',
    '{"upstream":"127.0.0.1:19985","domains":["shop.test","alpn.test"]}'))[0];
push @lines, "served by both: " . until_served('alpn.test');
push @lines, "orders: n1 " . logged($n1, qr/order for "alpn.test" of tenant/)
    . ", n2 " . logged($n2, qr/order for "alpn.test" of tenant/);
push @lines, "n2 answered n1's challenge: "
    . logged($n2, qr/answering the challenge of "alpn.test" for node "n1"/);
push @lines, "n1 waited for the ghost: "
    . logged($n1, qr/challenge of "alpn.test" was taken by 1 of the 2 other nodes in 5000 ms; validated anyway/);
redis_cli($::R, 'ZREM', 'claw:nodes', 'ghost');
push @lines, "shop.test not ordered again: "
    . logged($n1, qr/order for "shop.test" of tenant/);
ClawTest::report(@lines);
--- response_body
reload n1: 1
reload n2: 1
alpn.test for gina on n1: 200
served by both: yes
orders: n1 1, n2 0
n2 answered n1's challenge: 1
n1 waited for the ghost: 1
shop.test not ordered again: 1
--- timeout: 60



=== TEST 3: a node whose files are gone takes the certificate from the server, and orders nothing
--- init
my ($n1, $n2) = @::Node{qw(n1 n2)};
my @lines;
my $before = pebble_serial($n1, 'shop.test');
node_stop($n2);
remove_tree("$n2->{prefix}/html/acme");
node_start_again($n2);
push @lines, "n2 serves n1's again: "
    . (wait_until(20, sub { pebble_serial($n2, 'shop.test') eq $before })
       ? 'yes' : 'no');
push @lines, "orders by n2: " . logged($n2, qr/order for "shop.test" of tenant/);
push @lines, "key file mode: " . sprintf('%04o',
    (stat "$n2->{prefix}/html/acme/certs/shop.test.key")[2] & 07777);
ClawTest::report(@lines);
--- response_body
n2 serves n1's again: yes
orders by n2: 0
key file mode: 0600
--- timeout: 60



=== TEST 4: what the server holds that cannot be used (a certificate, a challenge) is named, removed, and changes nothing served
--- init
my ($n1, $n2) = @::Node{qw(n1 n2)};
my @lines;
my $before = pebble_serial($n1, 'shop.test');
redis_cli($::R, 'HSET', 'claw:acme:cert:shop.test', 'crt', 'garbage',
          'key', 'garbage', 'not_after', '4102444800', 'node', 'mallory');
redis_cli($::R, 'XADD', 'claw:acme:log', '*', 'domain', 'shop.test',
          'not_after', '4102444800');
redis_cli($::R, 'HSET', 'claw:acme:ch', 'bogus', "1 9999999999 1 1 1 1\nx");
push @lines, "bad certificate removed: "
    . (wait_until(10, sub {
          redis_cli($::R, 'EXISTS', 'claw:acme:cert:shop.test') == 0
       }) ? 'yes' : 'no');
push @lines, "bad challenge removed: "
    . (wait_until(10, sub { redis_cli($::R, 'HEXISTS', 'claw:acme:ch', 'bogus') == 0 })
       ? 'yes' : 'no');
push @lines, "named in a log: "
    . (logged($n1, qr/certificate of "shop.test" in the cluster .*claw:acme:cert:shop.test.* removed/)
       + logged($n2, qr/certificate of "shop.test" in the cluster .*claw:acme:cert:shop.test.* removed/) ? 'yes' : 'no');
# a key of another type where a certificate belongs, announced after an
# entry that is no announcement: passed over, then removed by the claim
redis_cli($::R, 'XADD', 'claw:acme:log', '*', 'colour', 'red');
redis_cli($::R, 'SET', 'claw:acme:cert:alpn.test', 'not a hash');
redis_cli($::R, 'XADD', 'claw:acme:log', '*', 'domain', 'alpn.test',
          'not_after', '4102444800');
push @lines, "a key of another type removed: "
    . (wait_until(10, sub {
          redis_cli($::R, 'EXISTS', 'claw:acme:cert:alpn.test') == 0
       }) ? 'yes' : 'no');
push @lines, "challenge named: "
    . (logged($n1, qr/field "bogus" of "claw:acme:ch" .* not a challenge; removed/)
       + logged($n2, qr/field "bogus" of "claw:acme:ch" .* not a challenge; removed/) ? 'yes' : 'no');
push @lines, "still served: " . join ' ', map {
    pebble_serial($_, 'shop.test') eq $before ? 'same' : 'changed' } $n1, $n2;
push @lines, "orders: n1 " . logged($n1, qr/order for "shop.test" of tenant/)
    . ", n2 " . logged($n2, qr/order for "shop.test" of tenant/);
ClawTest::report(@lines);
--- response_body
bad certificate removed: yes
bad challenge removed: yes
named in a log: yes
a key of another type removed: yes
challenge named: yes
still served: same same
orders: n1 1, n2 0
--- timeout: 60



=== TEST 5: the server stopped: a renewal places no order and the old certificate is served; back, it is renewed on both
--- init
my ($n1, $n2) = @::Node{qw(n1 n2)};
my @lines;
my $before = pebble_serial($n1, 'shop.test');
redis_cli($::R, 'SAVE');
redis_stop($::R);
my ($s) = admin($n1, 'POST', '/acme?renew=shop.test');
push @lines, "renew on n1: $s";
push @lines, "refused for the server: "
    . (wait_until(10, sub { status_of($n1, 'shop.test') =~ /cluster server/ })
       ? 'yes' : status_of($n1, 'shop.test'));
push @lines, "orders while down: " . logged($n1, qr/order for "shop.test" of tenant/);
push @lines, "still served: " . join ' ', map {
    pebble_serial($_, 'shop.test') eq $before ? 'same' : 'changed' } $n1, $n2;
redis_start_again($::R);
push @lines, "renewed on both: " . until_served('shop.test', $before);
push @lines, "orders: n1 " . logged($n1, qr/order for "shop.test" of tenant/)
    . ", n2 " . logged($n2, qr/order for "shop.test" of tenant/);
ClawTest::report(@lines);
--- response_body
renew on n1: 202
refused for the server: yes
orders while down: 1
still served: same same
renewed on both: yes
orders: n1 2, n2 0
--- timeout: 90
