# Cluster mode over TLS (rediss://): a node talks to a real Redis
# (Debian's redis-server, built with TLS) that asks for client
# certificates.  The node verifies the server's certificate against the
# trusted CA and the name, and shows its own; changes go through; a
# server that restarts is reached again.  Every refusal is a clear
# nginx -t message (an untrusted or misnamed certificate, no client
# certificate, a plain-text server); a server that turns up with
# another certificate while the node runs is refused (changes 503,
# nothing changed, the reason logged) until the right one is back.
#
# The blocks run in order and share the server and the node; the nginx
# of Test::Nginx is the tenants' container (port 19987).

use lib 't/perl';
use ClawTest;
use ClawCluster;
use ClawAcme qw(sh_run);
use Test::Nginx::Socket 'no_plan';

BEGIN {
    if (!-x '/usr/bin/redis-server') {
        require Test::More;
        Test::More::plan(skip_all => 'redis-server is not installed');
    }
}

master_on();
workers(1);
no_shuffle();
no_root_location();

our $Dir = ClawCluster::base() . '/pki';
mkdir $Dir;

# two CAs; the server's certificate (redis.test and 127.0.0.1) and the
# client's from the first, an impostor's from the second
sub pki {
    my $ssl = 'openssl';
    for my $ca (qw(ca other)) {
        sh_run("$ssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
               . "-nodes -keyout $Dir/$ca.key -out $Dir/$ca.crt -days 2 "
               . "-subj /CN=$ca 2>/dev/null");
    }
    for my $c (['server', 'ca', 'subjectAltName=DNS:redis.test,IP:127.0.0.1'],
               ['client', 'ca', 'extendedKeyUsage=clientAuth'],
               ['impostor', 'other', 'subjectAltName=DNS:redis.test,IP:127.0.0.1'])
    {
        my ($name, $ca, $ext) = @$c;
        sh_run("$ssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
               . "-keyout $Dir/$name.key -out $Dir/$name.csr -subj /CN=$name "
               . "2>/dev/null");
        open my $fh, '>', "$Dir/$name.ext" or die "$!\n";
        print $fh "$ext\n";
        close $fh;
        sh_run("$ssl x509 -req -in $Dir/$name.csr -CA $Dir/$ca.crt "
               . "-CAkey $Dir/$ca.key -CAcreateserial -days 2 "
               . "-extfile $Dir/$name.ext -out $Dir/$name.crt 2>/dev/null");
    }
}

pki();

our %Tls = (cert => "$Dir/server.crt", key => "$Dir/server.key",
            ca => "$Dir/ca.crt", client_cert => "$Dir/client.crt",
            client_key => "$Dir/client.key");
our $R = redis_start(port => 19933, tls => {%Tls}, password => 'sesame');
our $Plain = redis_start(port => 19934);
our $Node;

our $Digest = ClawTest::sha256_hex('alice-token-1');

sub node_text {
    my ($cluster) = @_;
    return <<"_EOC_";
    claw_zone claw:1m;
    claw_tenants \$NODE_PREFIX/html/tenants.conf;
    claw_cluster $cluster node=t1 timeout=1s;

    server {
        listen 127.0.0.1:19986;
        claw_domain claw.test;

        location / {
            claw on;
            proxy_pass http://127.0.0.1:19987;
        }
    }

    server {
        listen unix:\$NODE_PREFIX/admin.sock;

        location / {
            claw_admin;
        }
    }
_EOC_
}

our $Good = "$R->{url} ssl_trusted_certificate=$Dir/ca.crt "
          . "ssl_certificate=$Dir/client.crt "
          . "ssl_certificate_key=$Dir/client.key";

# nginx -t of the node with this claw_cluster: its first emerg or warn line
sub test_with {
    my ($cluster) = @_;
    node_configure($Node, http => node_text($cluster));
    my ($rc, $out) = node_test_config($Node);
    my ($line) = $out =~ /\[(?:emerg|warn)\] \d+#\d+: (.*?)(?: in \S+:\d+)?$/m;
    return "rc $rc: " . ($line // 'nothing said');
}

sub admin {
    my ($method, $path, $body) = @_;
    my ($s, $b) = node_admin($Node, 'admin.sock', $method, $path, $body);
    chomp $b;
    return ($s, $b);
}

sub put {
    my ($id) = @_;
    return admin('PUT', "/tenants/$id",
                 qq({"upstream":"127.0.0.1:19987","tokens":["sha256:$Digest"]}));
}

container_blocks(19987);

run_tests();

__DATA__

=== TEST 1: rediss:// with the server verified and a client certificate: changes go through, and again after the server restarts
--- init
$::Node = node_start(name => 't1', port => 19986,
                     http => node_text("$::Good ssl_name=redis.test"),
                     files => { 'html/tenants.conf' => "# none\n" });
my @lines;
push @lines, "import: " . (admin('POST', '/cluster/import'))[0];
my $s;
wait_until(5, sub { ($s) = put('alice'); $s != 503 });
push @lines, "create alice: $s";
push @lines, "in the server: "
    . (redis_cli($::R, 'GET', 'claw:t:alice') =~ /^alice / ? 'yes' : 'no');
my ($status) = node_http($::Node, 'GET', '/', '', 'Host: alice.claw.test',
                         'Authorization: Bearer alice-token-1');
push @lines, "alice served: $status";
redis_restart($::R, keep => 1);
wait_until(5, sub { ($s) = put('bob'); $s != 503 });
push @lines, "after a restart, create bob: $s";
ClawTest::report(@lines);
--- response_body
import: 200
create alice: 201
in the server: yes
alice served: 200
after a restart, create bob: 201



=== TEST 2: nginx -t names every refusal
--- init
my @lines;
push @lines, "right: " . test_with("$::Good ssl_name=redis.test");
push @lines, "by address: " . test_with($::Good);
push @lines, "untrusted: "
    . test_with("$::R->{url} ssl_trusted_certificate=$::Dir/other.crt "
                . "ssl_certificate=$::Dir/client.crt "
                . "ssl_certificate_key=$::Dir/client.key");
push @lines, "misnamed: " . test_with("$::Good ssl_name=cache.test");
push @lines, "no client certificate: "
    . test_with("$::R->{url} ssl_trusted_certificate=$::Dir/ca.crt");
push @lines, "wrong password: "
    . test_with("rediss://:wrong\@127.0.0.1:19933 "
                . "ssl_trusted_certificate=$::Dir/ca.crt "
                . "ssl_certificate=$::Dir/client.crt "
                . "ssl_certificate_key=$::Dir/client.key");
push @lines, "a plain server: "
    . test_with("rediss://127.0.0.1:19934 ssl_trusted_certificate=$::Dir/ca.crt");
# a TLS server that hangs up 0.3 s after each handshake, the PING unread
# (a tunnel whose backend is down): the connection is reset under the
# node's check, and nginx -t must not die of SIGPIPE
my $pid = fork // die "fork: $!\n";
if ($pid == 0) {
    require IO::Socket::SSL;
    my $l = IO::Socket::SSL->new(LocalAddr => '127.0.0.1', LocalPort => 19935,
                                 Listen => 16, ReuseAddr => 1,
                                 SSL_cert_file => "$::Dir/server.crt",
                                 SSL_key_file => "$::Dir/server.key")
        or POSIX::_exit(1);
    while (1) {
        my $c = $l->accept or next;
        select(undef, undef, undef, 0.3);
        $c->close(SSL_no_shutdown => 1);
    }
}
ClawTest::wait_port(19935, 'the hanging-up server');
push @lines, "a server that hangs up after the handshake: "
    . test_with("rediss://127.0.0.1:19935 ssl_trusted_certificate=$::Dir/ca.crt");
kill 'KILL', $pid;
waitpid $pid, 0;
push @lines, "TLS options on redis://: "
    . test_with("redis://127.0.0.1:19934 ssl_name=redis.test");
push @lines, "a certificate without its key: "
    . test_with("$::R->{url} ssl_certificate=$::Dir/client.crt");
ClawTest::report(@lines);
--- response_body_like
^right: rc 0: nothing said
by address: rc 0: nothing said
untrusted: rc 1: claw_cluster server "rediss://:\*\*\*@127.0.0.1:19933": the server's certificate: (unable to get local issuer certificate|self-signed certificate in certificate chain)
misnamed: rc 1: claw_cluster server "rediss://:\*\*\*@127.0.0.1:19933": the server's certificate: hostname mismatch
no client certificate: rc 1: claw_cluster server "rediss://:\*\*\*@127.0.0.1:19933": TLS: tlsv13 alert certificate required
wrong password: rc 1: claw_cluster server "rediss://:\*\*\*@127.0.0.1:19933": the server refused AUTH: WRONGPASS .*
a plain server: rc 0: claw_cluster server "rediss://127.0.0.1:19934" does not answer \(the TLS handshake timed out\): the node serves its own registry until it does
a server that hangs up after the handshake: rc 0: claw_cluster server "rediss://127.0.0.1:19935" does not answer \(the server closed the connection\): the node serves its own registry until it does
TLS options on redis://: rc 1: "ssl_name=redis.test" requires a "rediss://" server
a certificate without its key: rc 1: claw_cluster: "ssl_certificate=" and "ssl_certificate_key=" go together



=== TEST 3: an impostor on the server's address while the node runs: refused (503, nothing changed, the reason logged); the right server back, all goes on
--- init
my @lines;
node_configure($::Node, http => node_text("$::Good ssl_name=redis.test"));
redis_cli($::R, 'SAVE');
redis_stop($::R);
$::R->{tls}{cert} = "$::Dir/impostor.crt";
$::R->{tls}{key} = "$::Dir/impostor.key";
$::R->{tls}{cli_ca} = "$::Dir/other.crt";
redis_start_again($::R);
push @lines, "logged: "
    . (wait_until(5, sub { node_error_log($::Node) =~ /the server's certificate: (unable to get local issuer certificate|self-signed certificate in certificate chain); this node serves/ })
       ? 'yes' : 'no');
my ($s, $b) = put('carol');
push @lines, "create carol: $s";
push @lines, "carol in the impostor: "
    . (redis_cli($::R, 'EXISTS', 'claw:t:carol'));
redis_cli($::R, 'SAVE');
redis_stop($::R);
$::R->{tls} = {%::Tls};
redis_start_again($::R);
wait_until(5, sub { ($s) = put('carol'); $s != 503 });
push @lines, "the right one back, create carol: $s";
ClawTest::report(@lines);
--- response_body
logged: yes
create carol: 503
carol in the impostor: 0
the right one back, create carol: 201
