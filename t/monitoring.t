# The shipped monitoring: the Prometheus alert rules pass promtool's check
# and its unit tests (each alert fires on the series that should fire it,
# and only there); every query of the Grafana dashboard parses as PromQL;
# and every metric the rules and the dashboard name is one the module
# exports (named in ngx_http_claw_metrics.c or, for the certificates,
# ngx_http_claw_acme_serve.c), so that a renamed metric
# cannot leave them silently empty.
use strict;
use warnings;

use File::Temp qw(tempdir);
use JSON::PP ();
use Test::More;

my $root = File::Spec->rel2abs('.');
my $dir = "$root/examples/monitoring";
my $promtool = '/usr/bin/promtool';

plan skip_all => 'promtool is not installed (Debian: prometheus)'
    unless -x $promtool;

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!\n";
    local $/;
    return <$fh>;
}

sub run {
    my $out = `@_ 2>&1`;
    return ($? >> 8, $out);
}

my ($rc, $out) = run("cd $dir && $promtool check rules claw-alerts.yml");
is($rc, 0, 'promtool check rules claw-alerts.yml') or diag($out);

($rc, $out) = run("cd $dir && $promtool test rules claw-alerts.test.yml");
is($rc, 0, 'promtool test rules: every alert fires where it should, only there')
    or diag($out);

my $dash = JSON::PP->new->decode(slurp("$dir/claw-dashboard.json"));
my @exprs = map { $_->{expr} } map { @{ $_->{targets} // [] } }
            @{ $dash->{panels} };
cmp_ok(scalar @exprs, '>=', 10, 'the dashboard has its queries');

# the dashboard's queries as recording rules, Grafana's variables filled
my $tmp = tempdir(CLEANUP => 1);
open my $fh, '>', "$tmp/dashboard.yml" or die "$tmp/dashboard.yml: $!\n";
print $fh "groups:\n  - name: dashboard\n    rules:\n";
my $i = 0;
for my $e (@exprs) {
    (my $q = $e) =~ s/\$__rate_interval/5m/g;
    $q =~ s/\$(instance|tenant)/.*/g;
    $q =~ s/'/''/g;
    $i++;
    print $fh "      - record: claw:dashboard:$i\n        expr: '$q'\n";
}
close $fh;

($rc, $out) = run("$promtool check rules $tmp/dashboard.yml");
is($rc, 0, "every dashboard query parses ($i)") or diag($out);

# every metric named is one the module exports
my $source = join "", map { slurp("$root/ngx_claw_module/ngx_http_claw_$_.c") }
             qw(metrics acme_serve);
my %exported = map { $_ => 1 } $source =~ /\b(claw_[a-z_]+)/g;
my $alerts = slurp("$dir/claw-alerts.yml");
my %used = map { $_ => 1 } map { /\b(claw_[a-z_]+)\{?/g }
           @exprs, $alerts =~ /expr: (.*(?:\n {12}.*)*)/g;
my @unknown = grep { !$exported{$_} } sort keys %used;
is("@unknown", '', 'every metric used is exported by the module');
cmp_ok(scalar keys %used, '>=', 10, 'and they are many');

done_testing();
