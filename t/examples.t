# The configurations in examples/ are what operators start from: each must
# pass "nginx -t" with the module, once its paths point at real files (a
# registry, certificates, a cookie key), and the per-tenant servers that
# examples/gen-tenant-servers writes must too.
use strict;
use warnings;

use File::Temp qw(tempdir);
use Test::More;

my $root = File::Spec->rel2abs('.');
my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my ($module) = grep { -f } (split(' ', $ENV{TEST_NGINX_LOAD_MODULES} // ''),
    "$root/build/nginx/objs/ngx_http_claw_module.so");
my $dir = tempdir(CLEANUP => 1);

sub sh { system(@_) == 0 or die "@_: failed\n" }

mkdir "$dir/$_" for qw(claw claw/tls claw/domains logs run acme);

sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
   . "-subj '/CN=*.claw.example.com' -days 2 -keyout $dir/claw/tls/wildcard.key "
   . "-out $dir/claw/tls/wildcard.crt 2>/dev/null");
sh("cp $dir/claw/tls/wildcard.crt $dir/claw/tls/chain.crt");
sh("openssl rand 32 > $dir/claw/cookie.key && chmod 600 $dir/claw/cookie.key");
sh("cp $root/examples/tenants.conf $root/examples/claw-proxy.conf $dir/claw/");
# the registry where the package keeps it, /var/lib/claw
sh("cp $root/examples/tenants.conf $dir/");
# where the generated servers include it from: the configuration's directory
sh("cp $root/examples/claw-proxy.conf $root/examples/openclaw-tenant.conf $dir/");

# the examples' absolute paths, moved under the temporary directory
sub adapt {
    my ($file) = @_;
    open my $in, '<', $file or die "$file: $!\n";
    local $/;
    my $conf = <$in>;
    # what the package's modules-enabled link would load
    $conf =~ s{^include /etc/nginx/modules-enabled/\*\.conf;}{load_module $module;}m
        or die "$file: no modules-enabled include to adapt\n";
    $conf =~ s{/etc/nginx/claw/}{$dir/claw/}g;
    $conf =~ s{/var/lib/claw/}{$dir/}g;
    $conf =~ s{/run/claw/}{$dir/run/}g;
    $conf =~ s{/var/log/nginx/}{$dir/logs/}g;
    $conf =~ s{^user www-data;}{}m;
    $conf =~ s{include claw-proxy.conf;}{include $dir/claw/claw-proxy.conf;}g;
    $conf =~ s{resolver 127.0.0.53}{resolver 127.0.0.1};
    return "pid $dir/run/nginx.pid;\nerror_log $dir/logs/error.log;\n$conf";
}

sub check {
    my ($name, $conf) = @_;
    my $file = "$dir/$name";
    open my $out, '>', $file or die "$file: $!\n";
    print $out $conf;
    close $out;
    my $result = `$nginx -t -q -p $dir/ -c $file 2>&1`;
    is($? >> 8, 0, "nginx -t $name") or diag($result);
}

ok(-f $module, "the module is built: $module");

check("nginx.conf", adapt("$root/examples/nginx.conf"));
check("openclaw.conf", adapt("$root/examples/openclaw.conf"));

# a node of the two-node example, its server refusing connections (nginx
# -t warns and passes: the node would serve its own registry)
my $cluster = adapt("$root/examples/cluster.conf");
$cluster =~ s{rediss://:CHANGE-ME\@10\.0\.0\.10:6380/0}{rediss://:pw\@127.0.0.1:1/0}
    or die "examples/cluster.conf: no redis URL to adapt\n";
# stand-ins for the server's CA and the node's client certificate
sh("cp $dir/claw/tls/wildcard.crt $dir/claw/tls/redis-ca.crt");
sh("cp $dir/claw/tls/wildcard.crt $dir/claw/tls/edge-a.crt");
sh("cp $dir/claw/tls/wildcard.key $dir/claw/tls/edge-a.key");
check("cluster.conf", $cluster);

sh("$root/examples/gen-tenant-servers $root/examples/tenants.conf "
   . "claw.example.com > $dir/claw/servers.conf");
check("per-tenant-servers.conf", adapt("$root/examples/per-tenant-servers.conf"));

my $servers = do { local (@ARGV, $/) = "$dir/claw/servers.conf"; <> };
like($servers, qr/server_name alice\.claw\.example\.com;\n\n    location \/ \{\n        claw on;\n        claw_tenant alice;/,
     "a generated server names its tenant");
like($servers, qr/server_name bob\.claw\.example\.com agent\.bob\.example;/,
     "and answers for its custom domains");

done_testing();
