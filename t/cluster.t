# Cluster mode (claw_cluster): three nginx nodes and a real Redis
# (Debian's redis-server) share the registry, tenants' rates and
# failed-credential lockouts.  A change made on one node is served by the
# others within a second, a revocation too; a node stopped while changes
# are made catches up when it starts; with the server stopped the nodes
# serve what they have and refuse changes (503, nothing changed); a
# server back empty never wipes a node's registry (an alert, a metric);
# 10 r/s spread over three nodes admits 100 +- 10 in 10 s; ten bad
# guesses spread over three nodes lock the address out on all of them;
# a malformed record is skipped and names its key; a wrong password
# fails nginx -t, a server that does not answer does not hang a start.
#
# The blocks run in order and share the server and the nodes; the nginx
# of Test::Nginx is the tenants' container (port 19950) and serves the
# reports.

use lib 't/perl';
use ClawTest;
use ClawCluster;
use IO::Socket::IP;
use Time::HiRes ();
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

our $R = redis_start(port => 19930, password => 'sesame');

our %Token = (alice => 'alice-token-1', bob => 'bob-token-1',
              carol => 'carol-token-1');
our %Digest = map { $_ => ClawTest::sha256_hex($Token{$_}) } keys %Token;

our (@Nodes, $N4);

sub node_http_text {
    my ($i, $url, %o) = @_;
    my $port = 19940 + $i;
    my $zone = $o{zone} // '1m';
    my $more = $o{cluster} // '';
    return <<"_EOC_";
    claw_zone claw:$zone;
    claw_tenants \$NODE_PREFIX/html/tenants.conf;
    claw_cluster $url node=n$i sync=100ms timeout=1s $more;
    claw_auth_fail_limit 10/m;

    server {
        listen 127.0.0.1:$port;
        claw_domain claw.test;

        location / {
            claw on;
            proxy_pass http://127.0.0.1:19950;
        }
    }

    server {
        listen unix:\$NODE_PREFIX/admin.sock;

        location / {
            claw_admin;
        }

        location = /metrics {
            claw_metrics;
        }
    }
_EOC_
}

sub start_node {
    my ($i, $registry) = @_;
    return node_start(name => "n$i", port => 19940 + $i, workers => 2,
                      http => node_http_text($i, $R->{url}),
                      files => { 'html/tenants.conf'
                                 => $registry // "# no tenants yet\n" });
}

# the status of a tenant's request on node $n, from an address of
# 127.0.0.0/8 drawn at random: the polls of revoked tokens are failed
# checks, which would lock 127.0.0.1 out (TEST 9 locks one on purpose)
sub get {
    my ($n, $tenant, $token) = @_;
    return get_from(sprintf('127.0.%d.%d', 1 + int(rand 250),
                            1 + int(rand 250)),
                    $n, $tenant, $token // $Token{$tenant});
}

# the same from another client address (failures are counted by address)
sub get_from {
    my ($from, $n, $tenant, $token) = @_;
    my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                   PeerPort => $n->{port},
                                   LocalHost => $from, Timeout => 10)
        or return 0;
    my ($status) = ClawTest::http_exchange($sock, 10, 'GET', '/', '',
                                           "Host: $tenant.claw.test",
                                           "Authorization: Bearer $token");
    return $status;
}

sub admin {
    my ($n, $method, $path, $body, @headers) = @_;
    my ($s, $b, $h) = node_admin($n, 'admin.sock', $method, $path, $body,
                                 @headers);
    chomp $b;
    return ($s, $b, $h);
}

sub put_tenant {
    my ($n, $id, @tokens) = @_;
    my $tokens = join ',', map { "\"sha256:$Digest{$_}\"" } @tokens;
    return (admin($n, 'PUT', "/tenants/$id",
                  qq({"upstream":"127.0.0.1:19950","tokens":[$tokens]})))[0];
}

# seconds until every node answers $want for the tenant, or "never"
sub until_all {
    my ($want, $tenant, $token, @nodes) = @_;
    my $t0 = Time::HiRes::time();
    my $ok = wait_until(5, sub {
        !grep { get($_, $tenant, $token) != $want } @nodes
    });
    return $ok ? Time::HiRes::time() - $t0 : 'never';
}

sub within_1s { $_[0] ne 'never' && $_[0] < 1 ? 'within 1 s' : "$_[0] s" }

sub metric {
    my ($n, $name) = @_;
    my (undef, $body) = admin($n, 'GET', '/metrics');
    return $body =~ /^\Q$name\E (\S+)$/m ? $1 : 'none';
}

container_blocks(19950);

run_tests();

__DATA__

=== TEST 1: a registry imported into an empty server; a tenant created on node 1 is served by nodes 2 and 3 within 1 s
--- init
my $n1 = start_node(1, "alice 127.0.0.1:19950 token=sha256:$::Digest{alice}\n");
my $n2 = start_node(2);
my $n3 = start_node(3);
@::Nodes = ($n1, $n2, $n3);
my @lines;
push @lines, "change before an import: " . put_tenant($n2, 'bob', 'bob');
my ($s, $b) = admin($n1, 'POST', '/cluster/import');
push @lines, "import: $s $b";
($s, $b) = admin($n2, 'POST', '/cluster/import');
push @lines, "import again: $s $b";
push @lines, "alice on every node: "
    . (until_all(200, 'alice', undef, @::Nodes) ne 'never' ? 'yes' : 'no');
push @lines, "create bob on node 1: " . put_tenant($n1, 'bob', 'bob');
push @lines, "bob served by nodes 1-3: "
    . within_1s(until_all(200, 'bob', undef, @::Nodes));
push @lines, "state on node 3: up " . metric($n3, 'claw_cluster_state{state="up"}');
ClawTest::report(@lines);
--- response_body
change before an import: 503
import: 200 {"imported":1}
import again: 409 {"error":"the cluster server holds a registry already"}
alice on every node: yes
create bob on node 1: 201
bob served by nodes 1-3: within 1 s
state on node 3: up 1



=== TEST 2: a token revoked on node 3 stops working on every node within 1 s; the tenant's other token goes on
--- init
my ($n1, $n2, $n3) = @::Nodes;
my @lines;
my ($s, $b) = admin($n3, 'POST', '/tenants/bob/tokens');
my ($minted) = $b =~ /"token":"([^"]+)"/;
push @lines, "mint on node 3: $s";
push @lines, "minted token on every node: "
    . within_1s(until_all(200, 'bob', $minted, @::Nodes));
($s) = admin($n3, 'DELETE', "/tenants/bob/tokens/$::Digest{bob}");
push @lines, "revoke on node 3: $s";
push @lines, "revoked token refused everywhere: "
    . within_1s(until_all(401, 'bob', undef, @::Nodes));
push @lines, "the other token: " . join ' ', map { get($_, 'bob', $minted) } @::Nodes;
push @lines, "revoke it again: " . (admin($n1, 'DELETE', "/tenants/bob/tokens/$::Digest{bob}"))[0];
ClawTest::report(@lines);
--- response_body
mint on node 3: 201
minted token on every node: within 1 s
revoke on node 3: 204
revoked token refused everywhere: within 1 s
the other token: 200 200 200
revoke it again: 404



=== TEST 3: PATCH and If-Match across nodes: every node gives a tenant the same version; a change for a version another node changed meanwhile is refused (412), checked against the server
--- init
my ($n1, $n2, $n3) = @::Nodes;
my @lines;
my $etag = sub { $_[0] =~ /^ETag: ("[0-9a-f]{32}")\r?$/mi ? $1 : 'none' };
push @lines, "create pat on node 1: " . put_tenant($n1, 'pat', 'bob');
wait_until(5, sub { (admin($n3, 'GET', '/tenants/pat'))[0] == 200 });
my @v = map { $etag->((admin($_, 'GET', '/tenants/pat'))[2]) } @::Nodes;
push @lines, "one version on every node: "
    . ($v[0] ne 'none' && $v[0] eq $v[1] && $v[1] eq $v[2] ? 'yes' : "@v");
my ($s, $b, $h) = admin($n2, 'PATCH', '/tenants/pat', '{"rate":"5r/s"}',
                        "If-Match: $v[0]");
push @lines, "PATCH on node 2: $s, tokens kept: "
    . ($b =~ /\Q$::Digest{bob}\E/ ? 'yes' : 'no');
my $v2 = $etag->($h);
($s, $b) = admin($n3, 'PATCH', '/tenants/pat', '{"rate":"7r/s"}',
                 "If-Match: $v[0]");
push @lines, "PATCH on node 3 for the old version: $s";
($s) = admin($n3, 'DELETE', '/tenants/pat', '', "If-Match: $v[0]");
push @lines, "DELETE on node 3 for the old version: $s";
push @lines, "node 1 has the rate of node 2's: "
    . (wait_until(5, sub { (admin($n1, 'GET', '/tenants/pat'))[1] =~ m{"rate":"5r/s"} })
       ? 'yes' : 'no');
($s) = admin($n3, 'DELETE', '/tenants/pat', '', "If-Match: $v2");
push @lines, "DELETE on node 3 for the new version: $s";
ClawTest::report(@lines);
--- response_body
create pat on node 1: 201
one version on every node: yes
PATCH on node 2: 200, tokens kept: yes
PATCH on node 3 for the old version: 412
DELETE on node 3 for the old version: 412
node 1 has the rate of node 2's: yes
DELETE on node 3 for the new version: 204



=== TEST 4: a node stopped while changes are made catches up when it starts again
--- init
my ($n1, $n2, $n3) = @::Nodes;
my @lines;
node_stop($n2);
push @lines, "create carol on node 3: " . put_tenant($n3, 'carol', 'carol');
push @lines, "delete alice on node 1: " . (admin($n1, 'DELETE', '/tenants/alice'))[0];
node_start_again($n2);
push @lines, "node 2 serves carol: "
    . (until_all(200, 'carol', undef, $n2) ne 'never' ? 'yes' : 'no');
push @lines, "node 2 no longer serves alice: "
    . (until_all(404, 'alice', undef, $n2) ne 'never' ? 'yes' : 'no');
my (undef, $list) = admin($n2, 'GET', '/tenants');
push @lines, "node 2's tenants: " . join ' ', sort $list =~ /"id":"([^"]+)"/g;
ClawTest::report(@lines);
--- response_body
create carol on node 3: 201
delete alice on node 1: 204
node 2 serves carol: yes
node 2 no longer serves alice: yes
node 2's tenants: bob carol



=== TEST 5: the server stopped: the nodes serve what they have, changes are refused with 503 and change nothing; back, all goes on
--- init
my ($n1, $n2, $n3) = @::Nodes;
my @lines;
redis_cli($::R, 'SAVE');
redis_stop($::R);
my ($s, $b) = (0, '');
wait_until(3, sub {
    ($s, $b) = admin($n1, 'PUT', '/tenants/dave',
                     '{"upstream":"127.0.0.1:19950"}');
    $s == 503 && $b =~ /cannot be reached/;
});
push @lines, "create dave on node 1: $s $b";
push @lines, "delete carol on node 2: " . (admin($n2, 'DELETE', '/tenants/carol'))[0];
push @lines, "carol served by every node: " . join ' ', map { get($_, 'carol') } @::Nodes;
push @lines, "dave on node 1: " . (admin($n1, 'GET', '/tenants/dave'))[0];
push @lines, "state on node 3: down " . metric($n3, 'claw_cluster_state{state="down"}');
redis_start_again($::R);
push @lines, "back: create dave on node 2: " . (wait_until(5, sub {
    put_tenant($n2, 'dave') == 201 })  ? 201 : 'no');
push @lines, "dave served by nodes 1-3: "
    . (until_all(401, 'dave', 'no-token', @::Nodes) ne 'never' ? 'yes' : 'no');
ClawTest::report(@lines);
--- response_body
create dave on node 1: 503 {"error":"the cluster server cannot be reached; nothing changed"}
delete carol on node 2: 503
carol served by every node: 200 200 200
dave on node 1: 404
state on node 3: down 1
back: create dave on node 2: 201
dave served by nodes 1-3: yes



=== TEST 6: the server back empty (its data lost): the nodes keep serving, alert, say so in the metrics and refuse changes until an import
--- init
my ($n1, $n2, $n3) = @::Nodes;
my @lines;
redis_restart($::R, keep => 0);
my $lost = wait_until(5, sub {
    !grep { metric($_, 'claw_cluster_state{state="lost"}') ne '1' } @::Nodes
});
push @lines, "lost on every node: " . ($lost ? 'yes' : 'no');
push @lines, "alert on node 2: "
    . (node_error_log($n2) =~ /\[alert\].*holds no registry any more/ ? 'yes' : 'no');
push @lines, "carol still served: " . join ' ', map { get($_, 'carol') } @::Nodes;
my ($s, $b) = admin($n1, 'DELETE', '/tenants/carol');
push @lines, "delete carol: $s $b";
($s, $b) = admin($n3, 'POST', '/cluster/import');
push @lines, "import from node 3: $s $b";
push @lines, "up on every node: " . (wait_until(5, sub {
    !grep { metric($_, 'claw_cluster_state{state="up"}') ne '1' } @::Nodes
}) ? 'yes' : 'no');
push @lines, "delete carol: " . (admin($n1, 'DELETE', '/tenants/carol'))[0];
push @lines, "carol gone everywhere: "
    . within_1s(until_all(404, 'carol', undef, @::Nodes));
ClawTest::report(@lines);
--- response_body
lost on every node: yes
alert on node 2: yes
carol still served: 200 200 200
delete carol: 503 {"error":"the cluster server no longer holds the registry (its data was lost?): import one with POST /cluster/import"}
import from node 3: 200 {"imported":3}
up on every node: yes
delete carol: 204
carol gone everywhere: within 1 s



=== TEST 7: 10 r/s spread over three nodes for 10 s admits 100 +- 10
--- init
my ($n1, $n2, $n3) = @::Nodes;
admin($n1, 'PUT', '/tenants/erin',
      qq({"upstream":"127.0.0.1:19950","rate":"10r/s","burst":0,)
      . qq("tokens":["sha256:$::Digest{alice}"]}));
until_all(200, 'erin', $::Token{alice}, @::Nodes);
Time::HiRes::sleep(1.1);
my @kids;
for my $n (@::Nodes) {
    for (1 .. 2) {
        pipe(my $r, my $w) or die "pipe: $!\n";
        my $pid = fork // die "fork: $!\n";
        if ($pid == 0) {
            close $r;
            my ($ok, $no) = (0, 0);
            my $end = Time::HiRes::time() + 10;
            while (Time::HiRes::time() < $end) {
                my $s = get($n, 'erin', $::Token{alice});
                $s == 200 ? $ok++ : $no++;
                Time::HiRes::sleep(0.01);
            }
            print $w "$ok $no\n";
            close $w;
            POSIX::_exit(0);
        }
        close $w;
        push @kids, [$pid, $r];
    }
}
my ($ok, $no) = (0, 0);
for my $k (@kids) {
    my $fh = $k->[1];
    my ($a, $b) = split ' ', (<$fh> // '0 0');
    $ok += $a;
    $no += $b;
    waitpid $k->[0], 0;
}
Test::More::cmp_ok($ok, '>=', 90, "admitted $ok of " . ($ok + $no) . " (>= 90)");
Test::More::cmp_ok($ok, '<=', 110, "admitted $ok (<= 110)");
Test::More::cmp_ok($no, '>', 300, "refused $no: the offered load was over the rate");
ClawTest::report("done");
--- response_body
done



=== TEST 8: a malformed record in the server is skipped with an error naming its key; the changes after it are applied
--- init
my ($n1, $n2, $n3) = @::Nodes;
my @lines;
redis_cli($::R, 'SET', 'claw:t:zed', 'zed not-an-address');
redis_cli($::R, 'XADD', 'claw:log', '*', 'r', '+ zed not-an-address');
redis_cli($::R, 'XADD', 'claw:log', '*', 'x', 'no record');
push @lines, "create frank on node 1: " . put_tenant($n1, 'frank', 'carol');
push @lines, "frank served by nodes 1-3: "
    . within_1s(until_all(200, 'frank', $::Token{carol}, @::Nodes));
my $log = node_error_log($n2);
push @lines, "the bad record named: "
    . ($log =~ /\[error\].*claw cluster: "claw:log \d+-\d+" skipped: invalid upstream/ ? 'yes' : 'no');
push @lines, "the entry without one named: "
    . ($log =~ /\[error\].*claw cluster: "claw:log \d+-\d+" skipped: no record in it/ ? 'yes' : 'no');
push @lines, "skipped on node 2: " . metric($n2, 'claw_cluster_skipped_total');
ClawTest::report(@lines);
--- response_body
create frank on node 1: 201
frank served by nodes 1-3: within 1 s
the bad record named: yes
the entry without one named: yes
skipped on node 2: 2



=== TEST 9: a wrong password fails nginx -t with the server's answer; a server that does not answer is a warning, and the node starts and serves its registry
--- init
my @lines;
my $bad = $::R->{url};
$bad =~ s/:sesame@/:wrong@/;
my $n4 = node_start(name => 'n4', port => 19944, workers => 1,
                    http => main::node_http_text(4, 'redis://127.0.0.1:19939'),
                    files => { 'html/tenants.conf'
                               => "alice 127.0.0.1:19950 token=sha256:$::Digest{alice}\n" });
$::N4 = $n4;
push @lines, "unreachable, started: alice " . get($n4, 'alice');
my ($rc, $out) = node_test_config($n4);
push @lines, "unreachable, nginx -t: $rc "
    . ($out =~ /\[warn\] .*claw_cluster server "redis:\/\/127.0.0.1:19939" does not answer \(connect\(\) failed: Connection refused\)/ ? 'warns' : $out);
push @lines, "changes refused: " . (node_admin($n4, 'admin.sock', 'DELETE', '/tenants/alice'))[0];
node_stop($n4);
node_configure($n4, http => main::node_http_text(4, $bad));
($rc, $out) = node_test_config($n4);
push @lines, "wrong password, nginx -t: " . ($rc ? 'fails' : 'passes') . ", "
    . ($out =~ /\[emerg\] .*claw_cluster server "redis:\/\/:\*\*\*\@127.0.0.1:19930": the server refused AUTH: WRONGPASS/ ? 'says why' : $out);
push @lines, "the password never in a message: "
    . (node_error_log($n4) =~ /wrong|sesame/ ? 'it is' : 'right');
ClawTest::report(@lines);
--- response_body
unreachable, started: alice 200
unreachable, nginx -t: 0 warns
changes refused: 503
wrong password, nginx -t: fails, says why
the password never in a message: right



=== TEST 10: ten bad guesses spread over three nodes lock the address out on every node
--- init
my ($n1, $n2, $n3) = @::Nodes;
my @lines;
push @lines, "create gina on node 1: " . put_tenant($n1, 'gina', 'carol');
until_all(200, 'gina', $::Token{carol}, @::Nodes);
my @got;
for my $i (0 .. 9) {
    push @got, get_from('127.0.0.9', $::Nodes[$i % 3], 'bob', "guess-$i");
    Time::HiRes::sleep(0.05);
}
push @lines, "guesses: @got";
Time::HiRes::sleep(0.5);
push @lines, "a right token after them: " . join ' ', map {
    get_from('127.0.0.9', $_, 'gina', $::Token{carol}) } @::Nodes;
push @lines, "from another address: " . join ' ', map {
    get($_, 'gina', $::Token{carol}) } @::Nodes;
ClawTest::report(@lines);
--- response_body
create gina on node 1: 201
guesses: 401 401 401 401 401 401 401 401 401 401
a right token after them: 429 429 429
from another address: 200 200 200



=== TEST 11: a node stopped while custom domains move between tenants reads every record when it starts again, and ends as the others
--- init
my ($n1, $n2, $n3) = @::Nodes;
my @lines;
my $dom = sub {
    my ($id, @d) = @_;
    my $d = join ',', map { qq("$_.example.org") } @d;
    return (admin($n1, 'PUT', "/tenants/$id",
                  qq({"upstream":"127.0.0.1:19950","domains":[$d]})))[0];
};
push @lines, "before: " . join ' ', $dom->('hank', 'h'), $dom->('ivy', 'i'),
                                      $dom->('kim'), $dom->('lou', 'l');
until_all(401, 'lou', 'no-token', @::Nodes);
node_stop($n2);
push @lines, "while node 2 is down: " . join ' ',
    (admin($n1, 'DELETE', '/tenants/hank'))[0], $dom->('jack', 'h'),
    $dom->('ivy'), $dom->('kim', 'i'), $dom->('lou', 'l2'), $dom->('ivy', 'l');
node_start_again($n2);
# the registry alike; when each node last saw a request is its own
my $registry = sub { (admin($_[0], 'GET', '/tenants'))[1] =~ s/,"last_request":\d+//gr };
my $same = wait_until(5, sub {
    $registry->($n2) eq $registry->($n1)
        && metric($n2, 'claw_cluster_state{state="up"}') eq '1'
});
push @lines, "node 2 holds what node 1 holds: " . ($same ? 'yes' : 'no');
my (undef, $t) = admin($n2, 'GET', '/tenants');
push @lines, "node 2: " . join ' ', map {
    my ($id) = /"id":"([^"]+)"/;
    my ($d) = /"domains":\[([^\]]*)\]/;
    $d =~ s/"|\.example\.org//g;
    "$id=" . ($d eq '' ? '-' : $d)
} sort grep { /"id":"(hank|ivy|jack|kim|lou)"/ } split /\},\{/, $t;
push @lines, "no skipped record on node 2: "
    . (node_error_log($n2) =~ /belongs to tenant/ ? 'one was' : 'right');
ClawTest::report(@lines);
--- response_body
before: 201 201 201 201
while node 2 is down: 204 201 200 200 200 200
node 2 holds what node 1 holds: yes
node 2: ivy=l jack=h kim=i lou=l2
no skipped record on node 2: right



=== TEST 12: the server restored from an older save: no node follows it back in time (a revoked token stays revoked), an alert, changes refused until a registry is imported again
--- init
my ($n1, $n2, $n3) = @::Nodes;
my @lines;
my ($s, $b) = admin($n1, 'POST', '/tenants/ivy/tokens');
my ($tok) = $b =~ /"token":"([^"]+)"/;
my ($hash) = $b =~ /"hash":"sha256:([0-9a-f]+)"/;
until_all(200, 'ivy', $tok, @::Nodes);
push @lines, "saved: " . redis_cli($::R, 'SAVE');
($s) = admin($n2, 'DELETE', "/tenants/ivy/tokens/$hash");
push @lines, "revoked after the save: $s";
until_all(401, 'ivy', $tok, @::Nodes);
redis_stop($::R);
redis_start_again($::R);
my $lost = wait_until(5, sub {
    !grep { metric($_, 'claw_cluster_state{state="lost"}') ne '1' } @::Nodes
});
push @lines, "lost on every node: " . ($lost ? 'yes' : 'no');
push @lines, "alert on node 3: " . (node_error_log($n3)
    =~ /\[alert\].*before the last change this node applied, \d+-\d+ \(restored from an older save\?\)/
    ? 'yes' : 'no');
push @lines, "the revoked token: " . join ' ', map { get($_, 'ivy', $tok) } @::Nodes;
($s, $b) = admin($n1, 'PUT', '/tenants/mia', '{"upstream":"127.0.0.1:19950"}');
push @lines, "a change: $s " . ($b =~ /older save/ ? 'says why' : $b);
push @lines, "still refused after another server write: " . do {
    redis_cli($::R, 'XADD', 'claw:log', '*', 'r', '- nobody');
    Time::HiRes::sleep(1.5);
    (admin($n1, 'PUT', '/tenants/mia', '{"upstream":"127.0.0.1:19950"}'))[0];
};
redis_cli($::R, 'EVAL', "for _, k in ipairs(redis.call('KEYS', 'claw:*')) do redis.call('DEL', k) end", '0');
($s) = admin($n2, 'POST', '/cluster/import');
push @lines, "import from node 2: $s";
push @lines, "up on every node: " . (wait_until(5, sub {
    !grep { metric($_, 'claw_cluster_state{state="up"}') ne '1' } @::Nodes
}) ? 'yes' : 'no');
push @lines, "the revoked token: " . join ' ', map { get($_, 'ivy', $tok) } @::Nodes;
ClawTest::report(@lines);
--- response_body
saved: OK
revoked after the save: 204
lost on every node: yes
alert on node 3: yes
the revoked token: 401 401 401
a change: 503 says why
still refused after another server write: 503
import from node 2: 200
up on every node: yes
the revoked token: 401 401 401



=== TEST 13: reloads of node 2 into zones of other sizes while nodes 1 and 3 make changes: node 2 serves every one of them
--- init
my ($n1, $n2, $n3) = @::Nodes;
my @lines;
# two writers, as fast as they go, on nodes 1 and 3
my @pids;
for my $w (0, 1) {
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        my $end = Time::HiRes::time() + 4;
        my $i = 0;
        while (Time::HiRes::time() < $end) {
            put_tenant($w ? $n3 : $n1, "z$w-" . ++$i, 'carol');
        }
        POSIX::_exit($i > 255 ? 255 : $i);
    }
    push @pids, $pid;
}
my $i = 0;
for my $zone ('2m', '3m', '1m', '2m', '1m') {
    Time::HiRes::sleep(0.3);
    $i += node_reload($n2, http => main::node_http_text(2, $::R->{url},
                                                        zone => $zone));
}
waitpid $_, 0 for @pids;
push @lines, "reloads: $i";
my (undef, $t1) = admin($n1, 'GET', '/tenants');
my @z = grep { /^z/ } $t1 =~ /"id":"([^"]+)"/g;
push @lines, "changes made: " . (@z > 50 ? 'many' : scalar @z);
my @missing;
wait_until(5, sub {
    my (undef, $t2) = admin($n2, 'GET', '/tenants');
    my %has = map { $_ => 1 } $t2 =~ /"id":"([^"]+)"/g;
    @missing = grep { !$has{$_} } @z;
    !@missing;
});
push @lines, "node 2 serves every one: " . (@missing ? "no: @missing" : 'yes');
ClawTest::report(@lines);
--- response_body
reloads: 5
changes made: many
node 2 serves every one: yes



=== TEST 14: a prefix with glob characters fails nginx -t; an import into a server that holds records but no registry is refused and says what to delete
--- init
my @lines;
my $n4 = $::N4;
node_configure($n4, http => main::node_http_text(4, $::R->{url},
                                                 cluster => 'prefix=c[1]:'));
my ($rc, $out) = node_test_config($n4);
push @lines, "prefix=c[1]: " . ($rc ? 'fails' : 'passes') . ', '
    . ($out =~ /\[emerg\] .*invalid "prefix=c\[1\]:": at most 64 characters, none of/ ? 'says why' : $out);
redis_cli($::R, 'SET', 'stray:t:ghost', 'ghost 127.0.0.1:19950');
node_configure($n4, http => main::node_http_text(4, $::R->{url},
                                                 cluster => 'prefix=stray:'));
node_start_again($n4);
my ($s, $b) = (0, '');
wait_until(5, sub {
    ($s, $b) = node_admin($n4, 'admin.sock', 'POST', '/cluster/import');
    $s != 503;
});
push @lines, "import: $s " . ($b =~ /holds records or a log under \\"stray:\\" but no registry/ ? 'says why' : $b);
push @lines, "ghost on node 4: " . (node_admin($n4, 'admin.sock', 'GET', '/tenants/ghost'))[0];
node_stop($n4);
ClawTest::report(@lines);
--- response_body
prefix=c[1]: fails, says why
import: 409 says why
ghost on node 4: 404



=== TEST 15: a server that answers garbage (another service on its port): a warning at start, the node serves its registry, refuses changes and says why, and keeps trying without spinning
--- init
my @lines;
my $n4 = $::N4;
my $pid = fork // die "fork: $!\n";
if ($pid == 0) {
    my $l = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 19938,
                                Listen => 16, ReuseAddr => 1)
        or POSIX::_exit(1);
    while (my $c = $l->accept) {
        sysread $c, my $buf, 4096;
        syswrite $c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        Time::HiRes::sleep(0.2);
        close $c;
    }
    POSIX::_exit(0);
}
ClawTest::wait_port(19938, 'the fake server');
node_configure($n4, http => main::node_http_text(4, 'redis://127.0.0.1:19938'));
my ($rc, $out) = node_test_config($n4);
push @lines, "nginx -t: $rc "
    . ($out =~ /\[warn\] .*does not answer \(malformed reply: not a Redis-protocol server\?\)/ ? 'warns' : $out);
node_start_again($n4);
push @lines, "alice: " . get($n4, 'alice');
my ($s, $b) = node_admin($n4, 'admin.sock', 'DELETE', '/tenants/alice');
chomp $b;
push @lines, "a change: $s $b";
Time::HiRes::sleep(2.5);
my $log = node_error_log($n4);
push @lines, "says why: "
    . ($log =~ /claw cluster: the server "redis:\/\/127.0.0.1:19938" failed: malformed reply/ ? 'yes' : 'no');
my $cpu = 0;
for my $w (ClawTest::_workers_of(ClawCluster::_master($n4))) {
    my @f = split ' ', ClawTest::slurp("/proc/$w/stat") =~ s/^.*\) //sr;
    $cpu += $f[11] + $f[12];
}
push @lines, "workers' CPU over the test: "
    . ($cpu < 100 ? 'under 1 s' : "$cpu ticks");
push @lines, "alice still: " . get($n4, 'alice');
node_stop($n4);
kill 'TERM', $pid;
waitpid $pid, 0;
ClawTest::report(@lines);
--- response_body
nginx -t: 0 warns
alice: 200
a change: 503 {"error":"the cluster server cannot be reached; nothing changed"}
says why: yes
workers' CPU over the test: under 1 s
alice still: 200
