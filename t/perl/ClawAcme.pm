package ClawAcme;

# Helpers for t/acme.t: a real ACME CA on loopback, Debian's pebble, with
# pebble-challtestsrv as the DNS server that answers 127.0.0.1 for every
# name, so that the CA validates against the nginx under test.
#
#   my $ca = pebble_start(name => 'a', port => 14000, nonce_reject => 40);
#   $ca->{directory}     https://127.0.0.1:14000/dir
#   $ca->{ca}            the CA file that trusts pebble's HTTPS certificate
#   pebble_root($ca)     pebble's root, from its management interface
#
# Every process started here is stopped when the test file ends, also
# when it dies.

use strict;
use warnings;

use Exporter qw(import);
use File::Temp qw(tempdir);
use JSON::PP ();

# spawn() runs every process under a watcher that ends it with the test
use ClawTest qw(spawn wait_port);

our @EXPORT = qw(
    pebble_start pebble_root acme_status acme_domain wait_until
    served_cert tls_get orders_of sh_run knot_start
);

my $DIR = tempdir('claw-acme-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $DNS;

sub sh_run { system(@_) == 0 or die "@_: failed\n" }

# The DNS server of every pebble: 127.0.0.1 for every name, no AAAA.
sub dns_start {
    return $DNS if $DNS;
    spawn("$DIR/challtestsrv.log", {}, 'pebble-challtestsrv',
          '-dns01', '127.0.0.1:19970', '-management', '127.0.0.1:19971',
          '-http01', '', '-https01', '', '-tlsalpn01', '',
          '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '');
    wait_port(19971, 'pebble-challtestsrv');
    return $DNS = '127.0.0.1:19970';
}

# A pebble on port (ACME) and port + 1 (management), validating http-01
# on the test server's port (or http_port) and tls-alpn-01 on 19961 (or
# tls_port), asking pebble-challtestsrv (or the DNS server dns) for
# every name.
sub pebble_start {
    my (%arg) = @_;
    my $name = $arg{name};
    my $port = $arg{port};
    my $http = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;

    my $dns = $arg{dns} // dns_start();

    # pebble's own HTTPS certificate, which the module is told to trust
    sh_run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
        . "-nodes -keyout $DIR/$name.key -out $DIR/$name.crt -days 2 "
        . "-subj /CN=pebble-$name "
        . "-addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null");

    my %conf = (
        listenAddress => "127.0.0.1:$port",
        managementListenAddress => "127.0.0.1:" . ($port + 1),
        certificate => "$DIR/$name.crt",
        privateKey => "$DIR/$name.key",
        httpPort => ($arg{http_port} // $http) + 0,
        tlsPort => ($arg{tls_port} // 19961) + 0,
        ocspResponderURL => '',
        externalAccountBindingRequired => JSON::PP::false,
    );
    $conf{certificateValidityPeriod} = $arg{validity} if $arg{validity};

    open my $fh, '>', "$DIR/$name.json" or die "$DIR/$name.json: $!\n";
    print $fh JSON::PP->new->encode({ pebble => \%conf });
    close $fh;

    my %env = (PEBBLE_VA_NOSLEEP => 1,
               PEBBLE_WFE_NONCEREJECT => $arg{nonce_reject} // 0,
               PEBBLE_AUTHZREUSE => $arg{authz_reuse} // 50);
    spawn("$DIR/$name.log", \%env, 'pebble', '-config', "$DIR/$name.json",
          '-dnsserver', $dns, '-strict=false');
    wait_port($port, "pebble $name");
    wait_port($port + 1, "pebble $name management");

    return {
        directory => "https://127.0.0.1:$port/dir",
        management => "https://127.0.0.1:" . ($port + 1),
        ca => "$DIR/$name.crt",
        log => "$DIR/$name.log",
        name => $name,
    };
}

# Knot (Debian's knotd) on 127.0.0.1:port, authoritative for zone with
# only its SOA, NS and the NS's address, taking RFC 2136 updates signed
# with the TSIG key made here (BIND's format, in $knot->{key}); every
# update is logged to $knot->{log}.
sub knot_start {
    my (%arg) = @_;
    my ($port, $zone) = @arg{qw(port zone)};
    my $dir = "$DIR/knot";
    mkdir $dir or die "mkdir $dir: $!\n";
    # as tsig-keygen writes it, which nsupdate -k and the module read
    my $secret = `openssl rand -base64 32`;
    chomp $secret;
    open my $kf, '>', "$dir/claw.key" or die "$dir/claw.key: $!\n";
    print $kf "key \"claw-key\" {\n\talgorithm hmac-sha256;\n"
        . "\tsecret \"$secret\";\n};\n";
    close $kf;

    open my $fh, '>', "$dir/knot.conf" or die "$dir/knot.conf: $!\n";
    print $fh <<"_EOC_";
server:
    listen: 127.0.0.1\@$port
    rundir: $dir
log:
  - target: stderr
    any: info
database:
    storage: $dir/db
control:
    listen: $dir/knot.sock
key:
  - id: claw-key
    algorithm: hmac-sha256
    secret: $secret
acl:
  - id: update
    key: claw-key
    action: update
template:
  - id: default
    storage: $dir
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: $zone
    acl: update
_EOC_
    close $fh;

    open $fh, '>', "$dir/$zone.zone" or die "$dir/$zone.zone: $!\n";
    print $fh "\$ORIGIN $zone.\n\$TTL 60\n"
        . "\@ SOA ns1 hostmaster 1 3600 600 86400 60\n"
        . "\@ NS ns1\nns1 A 127.0.0.1\n";
    close $fh;

    spawn("$dir/knot.log", {}, 'knotd', '-c', "$dir/knot.conf");
    wait_port($port, 'knotd');

    return {
        server => "127.0.0.1:$port",
        port => $port,
        key => "$dir/claw.key",
        log => "$dir/knot.log",
        dir => $dir,
    };
}

# the TXT values the server answers for name, sorted ('' for none); dies
# when the server gives no authoritative answer
sub knot_txt {
    my ($knot, $name) = @_;
    my $out = `kdig \@127.0.0.1 -p $knot->{port} +norecurse TXT $name`;
    die "kdig TXT $name: no authoritative answer:\n$out"
        unless $out =~ /status: (?:NOERROR|NXDOMAIN)/ && $out =~ /Flags: qr aa/;
    my @v = $out =~ /^\Q$name\E\.?\s+\d+\s+IN\s+TXT\s+"([^"]*)"/mg;
    return join ' ', sort @v;
}

# pebble's root certificate (made anew at every start), in a file
sub pebble_root {
    my ($ca) = @_;
    my $file = "$DIR/$ca->{name}-root.pem";
    sh_run("curl -s -f --cacert $ca->{ca} -o $file $ca->{management}/roots/0");
    return $file;
}

# claw_acme_status as a Perl structure
sub acme_status {
    my ($status, $body) = ClawTest::http_request('GET', '/acme');
    die "GET /acme: $status\n" unless $status == 200;
    return JSON::PP->new->decode($body);
}

sub acme_domain {
    my ($name) = @_;
    my ($d) = grep { $_->{domain} eq $name } @{ acme_status()->{domains} };
    return $d;
}

# polls every 0.2 s until the code returns true, at most $secs seconds
sub wait_until {
    my ($secs, $code) = @_;
    # an ACME exchange under valgrind is several times slower
    $secs *= 3 if $ENV{TEST_NGINX_USE_VALGRIND};
    return ClawTest::wait_until($secs, $code, 0.2);
}

# the certificate served for an SNI on the TLS server, as openssl prints
# it: "subject=... issuer=... serial=..."
sub served_cert {
    my ($sni) = @_;
    my $out = `echo | openssl s_client -connect 127.0.0.1:19961 -servername $sni 2>/dev/null | openssl x509 -noout -subject -issuer -serial 2>/dev/null`;
    $out =~ s/\n/ /g;
    return $out;
}

# curl to the TLS server by name, verifying against a CA file; returns
# (exit status, body)
sub tls_get {
    my ($name, $cafile, @args) = @_;
    my $out = `curl -s -S --max-time 5 --cacert $cafile --resolve $name:19961:127.0.0.1 @args https://$name:19961/ 2>&1`;
    return ($? >> 8, $out);
}

# the orders journal of the state directory: one line per order
sub orders_of {
    my ($state, $name) = @_;
    open my $fh, '<', "$state/orders" or return 0;
    my $n = 0;
    while (<$fh>) { $n++ if !defined $name || /\s\Q$name\E$/ }
    return $n;
}

1;
