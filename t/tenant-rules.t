# A tenant's own rules, from the registry or the admin API: allow= (the
# client's address in one of the tenant's networks, else 403 before any
# credential is checked, nothing reaching the container) and max_body=
# (413 for a larger body, whether its length is announced or it comes
# chunked, nothing reaching the container); both kept in the registry line
# and the API as written, and malformed values refused naming the field.

use lib 't/perl';
use ClawTest;
use IO::Socket::IP;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();
no_root_location();

start_containers(['c', '127.0.0.1:19851']);

our $D = ClawTest::sha256_hex('alice-token-1');

our $Tenants = <<"_EOF_";
alice  127.0.0.1:19851  token=sha256:$D allow=127.0.10.0/24 allow=::1 max_body=1k
bob    127.0.0.1:19851  token=sha256:$D
_EOF_

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'_EOC_') unless defined $block->http_config;
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw {
        claw_balancer;
    }

    log_format up '$upstream_addr';
_EOC_

    $block->set_value("user_files", ">>> tenants.conf\n$Tenants")
        unless defined $block->user_files;

    $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;

    location / {
        claw on;
        access_log logs/up.log up;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_request_buffering off;
    }

    location /claw/ {
        claw_admin;
    }

    location = /report.txt {
    }
_EOC_

    $block->set_value("request", "GET /report.txt") unless defined $block->request;

    ClawTest::fresh_zone($block);
});

# a request of alice from a given loopback address: its status
sub from {
    my ($addr, $method, $body, @h) = @_;
    my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                   PeerPort => $ENV{TEST_NGINX_SERVER_PORT} || 1984,
                                   LocalHost => $addr, Timeout => 5)
        or return "connect: $!";
    my ($s) = ClawTest::http_exchange($sock, 10, $method, '/_c/echo', $body,
                                      'Host: alice.claw.test', @h);
    return $s;
}

# the requests that reached the container
sub container_saw {
    my $log = ClawTest::servroot() . '/logs/up.log';
    return 0 unless -f $log;
    return scalar grep { /127\.0\.0\.1:19851/ } split /\n/, ClawTest::slurp($log);
}

run_tests();

__DATA__

=== TEST 1: allow=: from a network of the tenant's, served; from elsewhere 403 before any credential, with or without one; other tenants untouched
--- init
my @A = ('Authorization: Bearer alice-token-1');
my @lines;
my $before = main::container_saw();
push @lines, "from 127.0.10.7 with the token: " . main::from('127.0.10.7', 'GET', '', @A);
push @lines, "from 127.0.10.7 without: " . main::from('127.0.10.7', 'GET', '');
push @lines, "from 127.0.20.7 with the token: " . main::from('127.0.20.7', 'GET', '', @A);
push @lines, "from 127.0.20.7 with a wrong one: " . main::from('127.0.20.7', 'GET', '', 'Authorization: Bearer nope');
push @lines, "the container saw: " . (main::container_saw() - $before);
push @lines, "bob from 127.0.20.7: "
    . ClawTest::http_get('/', 'Host: bob.claw.test', @A);
ClawTest::report(@lines);
--- response_body
from 127.0.10.7 with the token: 200
from 127.0.10.7 without: 401
from 127.0.20.7 with the token: 403
from 127.0.20.7 with a wrong one: 403
the container saw: 1
bob from 127.0.20.7: 200
--- error_log
claw: address not allowed for tenant "alice"



=== TEST 2: max_body=: a body over it is 413, announced or chunked, and never reaches the container
--- init
my @A = ('Authorization: Bearer alice-token-1');
my @lines;
my $before = main::container_saw();
push @lines, "1024 bytes: " . main::from('127.0.10.7', 'POST', 'x' x 1024, @A);
push @lines, "1025 bytes: " . main::from('127.0.10.7', 'POST', 'x' x 1025, @A);
my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                               PeerPort => $ENV{TEST_NGINX_SERVER_PORT} || 1984,
                               LocalHost => '127.0.10.7', Timeout => 5) or die;
print $sock "POST /_c/echo HTTP/1.1\r\nHost: alice.claw.test\r\n"
    . "Authorization: Bearer alice-token-1\r\nTransfer-Encoding: chunked\r\n"
    . "Connection: close\r\n\r\n"
    . ("200\r\n" . ('y' x 512) . "\r\n") x 3 . "0\r\n\r\n";
my $resp = '';
while (sysread $sock, my $buf, 4096) { $resp .= $buf }
my ($status) = $resp =~ m{^HTTP/1\.1 (\d+)};
push @lines, "1536 bytes chunked: $status";
push @lines, "the container saw: " . (main::container_saw() - $before);
ClawTest::report(@lines);
--- response_body
1024 bytes: 200
1025 bytes: 413
1536 bytes chunked: 413
the container saw: 1
--- error_log
claw: a request body over the 1024 bytes of tenant "alice"



=== TEST 3: through the API: kept as written, checked field by field
--- init
my @lines;
my ($s, $b) = ClawTest::http_request(GET => '/claw/tenants/alice');
push @lines, "alice: " . join ' ', $b =~ /"(allow":\[[^\]]*\]|max_body":"?[^,}"]*)/g;
($s, $b) = ClawTest::http_request(PATCH => '/claw/tenants/bob',
                                  '{"allow":["10.1.2.3/8","2001:db8::1/32"],"max_body":"10m"}');
push @lines, "bob: $s " . join ' ', $b =~ /"(allow":\[[^\]]*\]|max_body":"?[^,}"]*)/g;
for my $bad ('{"allow":["10.0.0.0/33"]}', '{"allow":"10.0.0.0/8"}',
             '{"max_body":"ten"}', '{"max_body":-1}')
{
    ($s, $b) = ClawTest::http_request(PATCH => '/claw/tenants/bob', $bad);
    chomp $b;
    push @lines, "$bad: $s $b";
}
my $file;
ClawTest::wait_until(ClawTest::patience(5), sub {
    $file = ClawTest::slurp(ClawTest::servroot() . '/html/tenants.conf');
    $file =~ /^bob .*max_body=10m$/m;
});
push @lines, "in the file: " . ($file =~ /^(bob .*)$/m)[0];
ClawTest::report(@lines);
--- response_body_like
^alice: allow":\["127.0.10.0/24","::1/128"\] max_body":"1k
bob: 200 allow":\["10.0.0.0/8","2001:db8::/32"\] max_body":"10m
\{"allow":\["10.0.0.0/33"\]\}: 400 \{"error":"\\"allow\\" must hold addresses or networks.*
\{"allow":"10.0.0.0/8"\}: 400 \{"error":"\\"allow\\" must be an array"\}
\{"max_body":"ten"\}: 400 \{"error":"\\"max_body\\" must be a size.*
\{"max_body":-1\}: 400 \{"error":"\\"max_body\\" must be a size.*
in the file: bob 127.0.0.1:19851 token=sha256:[0-9a-f]{64} allow=10.0.0.0/8 allow=2001:db8::/32 max_body=10m



=== TEST 4: a malformed allow= or max_body= in the registry names the file and line
--- user_files
>>> tenants.conf
alice  127.0.0.1:19851  allow=10.0.0.0/40
--- must_die
--- error_log eval
qr/tenants\.conf:1: invalid allow \(an address or a network: 192\.0\.2\.0\/24, 2001:db8::\/32\) "allow=10\.0\.0\.0\/40"/
