# The fault cases of the threat model:
#
#   - the registry file unreadable (a directory, a dangling symlink, a
#     symlink loop, a FIFO), corrupted, cut short or too long, at start
#     (fails closed, with file:line or the path) and on reload (refused,
#     the old table serves on, a good reload works after it); the journal
#     cut short by a crash (the record was never acknowledged: ignored)
#     or corrupted;
#   - the zone full: at start (fails closed), and filled at run time with
#     failure records from many client addresses (they make room among
#     themselves, no tenant is evicted, nothing crashes);
#   - a container that hangs, resets or dies mid-response: that tenant
#     gets 502/504 or a cut answer, the next request of the same tenant
#     works, and another tenant's requests go on meanwhile, concurrently;
#   - workers killed with -9 under load: the master respawns them, the
#     zone lock is not left taken, no concurrency count stays stuck.
#
# (t/registry.t has the malformed lines, the empty file, a file cut in a
# line, a missing file and a reload with a bad upstream; t/balancer.t a
# refused container connection; t/admin.t a full zone for the API; t/limits.t
# one worker killed with a request in flight.)
#
# Checks made in --- init are written to html/report.txt, which the
# block's request fetches, so that a failure shows as a diff.

use lib 't/perl';
use ClawTest;
use File::Temp qw(tempdir);
use POSIX qw(mkfifo);
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
worker_connections(1024);
no_shuffle();
no_root_location();

# alice: a well-behaved container; hang: a container made to misbehave;
# dave: at most 4 requests in flight
our $Tenants = <<'_EOF_';
alice  127.0.0.1:19960  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1
hang   127.0.0.1:19961  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1
dave   127.0.0.1:19960  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1 conn=4
_EOF_

our @Auth = ("Authorization: Bearer alice-token-1");
our @Alice = ("Host: alice.claw.test", @Auth);
our @Hang = ("Host: hang.claw.test", @Auth);
our @Dave = ("Host: dave.claw.test", @Auth);

start_containers(['alice', '127.0.0.1:19960'], ['hang', '127.0.0.1:19961']);

# Registry paths that are not files, made before nginx is started
# (--- init runs only once it is up).
our $Fix = tempdir('claw-faults-XXXXXX', TMPDIR => 1, CLEANUP => 1);
symlink "$Fix/nothing-here", "$Fix/dangling.conf" or die "symlink: $!\n";
symlink "$Fix/loop.conf", "$Fix/loop.conf" or die "symlink: $!\n";
mkfifo("$Fix/fifo.conf", 0600) or die "mkfifo: $!\n";
mkdir "$Fix/dir.conf" or die "mkdir: $!\n";
$ENV{TEST_NGINX_FAULTS_DIR} = $Fix;

add_block_preprocessor(sub {
    my $block = shift;
    my ($n) = $block->name =~ /TEST (\d+)/;
    my $tenants = $block->tenants_path // '$TEST_NGINX_SERVER_ROOT/html/tenants.conf';
    my $zone = $block->zone_size // '1m';

    # a zone of its own per block: HUP mode keeps zones across blocks
    if (!defined $block->http_config) {
        $block->set_value("http_config", <<"_EOC_");
    claw_zone faults_$n:$zone;
    claw_tenants $tenants;

    upstream claw {
        claw_balancer;
        keepalive 16;
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", ">>> tenants.conf\n$Tenants");
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_connect_timeout 2s;
        proxy_read_timeout 2s;
    }

    location = /metrics {
        claw_metrics;
    }

    location = /report.txt {
    }
_EOC_
    }

    if (!defined $block->request && !defined $block->raw_request) {
        $block->set_value("request", "GET /report.txt\n");
    }

    if (defined $block->must_die && !defined $block->no_error_log) {
        $block->set_value("no_error_log", "[alert]\n");
    }
});

sub metric {
    my ($name) = @_;
    my (undef, $body) = ClawTest::http_request('GET', '/metrics');
    return $body =~ /^\Q$name\E (\d+)$/m ? $1 : 'none';
}

# the registry of the running nginx, replaced by something else, and a
# reload: what the reload did and what the tenants answer after it
sub bad_reload {
    my ($break) = @_;
    my $path = ClawTest::servroot() . '/html/tenants.conf';
    unlink $path or die "unlink $path: $!\n";
    $break->($path);
    my $ok = ClawTest::reload();
    my @after = ("reload accepted: $ok",
                 "alice: " . ClawTest::http_get("/", @::Alice),
                 "hang: " . ClawTest::http_get("/", @::Hang));

    # a good file again: the master is not stuck on the bad one
    if (-d $path && !-l $path) { rmdir $path or die "rmdir $path: $!\n" }
    else { unlink $path }
    (my $without_hang = $::Tenants) =~ s/^hang .*\n//m;
    ClawTest::write_file($path, $without_hang);
    push @after, "good reload after it: " . ClawTest::reload(),
                 "hang after it: " . ClawTest::http_get("/", @::Hang);
    ClawTest::report(@after);
}

run_tests();

__DATA__

=== TEST 1: start: the registry is a directory
--- tenants_path: $TEST_NGINX_FAULTS_DIR/dir.conf
--- must_die
--- error_log eval
qr/claw_tenants: ".*dir\.conf" is not a regular file/



=== TEST 2: start: the registry is a dangling symlink
--- tenants_path: $TEST_NGINX_FAULTS_DIR/dangling.conf
--- must_die
--- error_log eval
qr/claw_tenants: open\(\) ".*dangling\.conf" failed \(2: No such file or directory\)/



=== TEST 3: start: the registry is a symlink loop
--- tenants_path: $TEST_NGINX_FAULTS_DIR/loop.conf
--- must_die
--- error_log eval
qr/claw_tenants: open\(\) ".*loop\.conf" failed \(40: Too many levels of symbolic links\)/



=== TEST 4: start: the registry is a FIFO: refused, not waited on
# fifo-registry (fixed): the registry was opened blocking before it was
# found not to be a regular file, so a FIFO made "nginx -t", start and
# reload (in the master) wait forever for a writer.
--- tenants_path: $TEST_NGINX_FAULTS_DIR/fifo.conf
--- must_die
--- error_log eval
qr/claw_tenants: ".*fifo\.conf" is not a regular file/



=== TEST 5: start: binary garbage instead of the registry
--- user_files eval
[["tenants.conf" => "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\n"]]
--- must_die
--- error_log
tenants.conf:1: invalid tenant id



=== TEST 6: start: a line longer than a registry line may be
--- user_files eval
[["tenants.conf" => "alice 127.0.0.1:19960 " . ("domain=a.example.org " x 4000) . "\n"]]
--- must_die
--- error_log
tenants.conf:1: line too long



=== TEST 7: start: a registry too big for the zone fails closed, naming the zone
--- zone_size: 32k
--- user_files eval
[["tenants.conf" => CORE::join("", map { sprintf "t%03d 127.0.0.1:19960 domain=t%03d.example.org\n", $_, $_ } 1 .. 400)]]
--- must_die
--- error_log eval
qr/claw zone "faults_7" is too small for 400 tenants/



=== TEST 8: start: a journal record cut short by a crash was never acknowledged: ignored
--- user_files eval
[["tenants.conf" => $::Tenants],
 ["tenants.conf.journal" => "+ bob 127.0.0.1:19960 token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1\n- hang\n+ carol 127.0.0.1:199"]]
--- init
ClawTest::report("bob, from the journal: " . ClawTest::http_get("/", "Host: bob.claw.test", @::Auth),
                 "hang, removed by the journal: " . ClawTest::http_get("/", @::Hang),
                 "carol, cut short: " . ClawTest::http_get("/", "Host: carol.claw.test"),
                 "alice: " . ClawTest::http_get("/", @::Alice));
--- response_body
bob, from the journal: 200
hang, removed by the journal: 404
carol, cut short: 404
alice: 200
--- error_log
tenants.conf.journal:3: a record cut short, never acknowledged: ignored
--- no_error_log
[emerg]
[alert]



=== TEST 9: start: a corrupted journal record fails closed with file:line
--- user_files eval
[["tenants.conf" => $::Tenants],
 ["tenants.conf.journal" => "+ bob 127.0.0.1:19960\n\xde\xad\xbe\xef garbage\n+ carol 127.0.0.1:19960\n"]]
--- must_die
--- error_log
tenants.conf.journal:2: invalid journal record



=== TEST 10: reload: the registry emptied
--- init
main::bad_reload(sub { ClawTest::write_file($_[0], "") });
--- response_body
reload accepted: 0
alice: 200
hang: 200
good reload after it: 1
hang after it: 404
--- error_log
tenants.conf:1: empty registry file
--- no_error_log
[alert]
[crit]



=== TEST 11: reload: the registry cut short in a line
--- init
main::bad_reload(sub { ClawTest::write_file($_[0], substr($::Tenants, 0, 150)) });
--- response_body
reload accepted: 0
alice: 200
hang: 200
good reload after it: 1
hang after it: 404
--- error_log
tenants.conf:2: no newline at end of file (truncated?)
--- no_error_log
[alert]
[crit]



=== TEST 12: reload: the registry overwritten with binary garbage
--- init
main::bad_reload(sub { ClawTest::write_file($_[0], join('', map { chr(($_ * 151 + 7) % 256) } 1 .. 4096) . "\n") });
--- response_body
reload accepted: 0
alice: 200
hang: 200
good reload after it: 1
hang after it: 404
--- error_log eval
qr/\[emerg\] .*tenants\.conf:1: /
--- no_error_log
[alert]
[crit]



=== TEST 13: reload: the registry replaced by a directory
--- init
main::bad_reload(sub { mkdir $_[0] or die "mkdir: $!\n" });
--- response_body
reload accepted: 0
alice: 200
hang: 200
good reload after it: 1
hang after it: 404
--- error_log eval
qr/claw_tenants: ".*tenants\.conf" is not a regular file/
--- no_error_log
[alert]
[crit]



=== TEST 14: reload: the registry deleted
--- init
main::bad_reload(sub { });
--- response_body
reload accepted: 0
alice: 200
hang: 200
good reload after it: 1
hang after it: 404
--- error_log eval
qr/claw_tenants: open\(\) ".*tenants\.conf" failed \(2: No such file or directory\)/
--- no_error_log
[alert]
[crit]



=== TEST 15: reload: the registry a dangling symlink
--- init
main::bad_reload(sub { symlink "$_[0].gone", $_[0] or die "symlink: $!\n" });
--- response_body
reload accepted: 0
alice: 200
hang: 200
good reload after it: 1
hang after it: 404
--- error_log eval
qr/claw_tenants: open\(\) ".*tenants\.conf" failed \(2: No such file or directory\)/
--- no_error_log
[alert]
[crit]



=== TEST 16: reload: the registry a FIFO: refused, the master goes on
# fifo-registry (fixed), see TEST 4: the master blocked in open(2) for good.
--- init
main::bad_reload(sub { POSIX::mkfifo($_[0], 0600) or die "mkfifo: $!\n" });
--- response_body
reload accepted: 0
alice: 200
hang: 200
good reload after it: 1
hang after it: 404
--- error_log eval
qr/claw_tenants: ".*tenants\.conf" is not a regular file/



=== TEST 17: reload: a corrupted journal record: refused, the old table serves on
--- init
ClawTest::write_file(ClawTest::servroot() . '/html/tenants.conf.journal',
                     "+ bob 127.0.0.1:19960\n+ \x01\x02\x03\n");
my $ok = ClawTest::reload();
ClawTest::report("reload accepted: $ok",
                 "alice: " . ClawTest::http_get("/", @::Alice),
                 "bob: " . ClawTest::http_get("/", "Host: bob.claw.test"));
--- response_body
reload accepted: 0
alice: 200
bob: 404
--- error_log
tenants.conf.journal:2: invalid tenant id
--- no_error_log
[alert]
[crit]



=== TEST 18: the zone filled with failure records from 3000 addresses: they make room among themselves, no tenant is evicted
--- zone_size: 64k
--- user_files eval
[["tenants.conf" => $::Tenants . CORE::join("", map { sprintf "t%03d 127.0.0.1:19960 token=sha256:%064x\n", $_, $_ } 1 .. 60)]]
--- init
my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
my ($sent, %status) = (0);
for my $i (0 .. 2999) {
    my $from = sprintf "127.1.%d.%d", int($i / 250), $i % 250 + 1;
    my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port,
                                   LocalHost => $from, Timeout => 5) or next;
    print $sock "GET / HTTP/1.1\r\nHost: alice.claw.test\r\n",
                "Authorization: Bearer wrong-$i\r\nConnection: close\r\n\r\n";
    my $line = <$sock> // '';
    $status{$1}++ if $line =~ m{^HTTP/1\.1 (\d+)};
    $sent++;
}
my @tenants = map { ClawTest::http_get("/", sprintf("Host: t%03d.claw.test", $_)) } 1, 30, 60;
ClawTest::report("failed checks sent: $sent",
                 "answered: " . join(' ', map { "$_ x$status{$_}" } sort keys %status),
                 "tenants: " . main::metric('claw_tenants'),
                 "alice with her token: " . ClawTest::http_get("/", @::Alice),
                 "t001 t030 t060 without one: @tenants");
--- timeout: 10
--- response_body
failed checks sent: 3000
answered: 401 x3000
tenants: 63
alice with her token: 200
t001 t030 t060 without one: 401 401 401
--- no_error_log
[alert]
[crit]
no room in the zone



=== TEST 19: a container that hangs: 504 for its tenant; another tenant's requests go on meanwhile
--- init
my @hung = map { ClawTest::http_status_background("/_c/respond?action=hang", @::Hang) } 1 .. 4;
select(undef, undef, undef, 0.3);
my ($ok, $slowest) = (0, 0);
for (1 .. 20) {
    my $t0 = Time::HiRes::time();
    $ok++ if ClawTest::http_get("/", @::Alice) == 200;
    my $dt = Time::HiRes::time() - $t0;
    $slowest = $dt if $dt > $slowest;
}
my @statuses = map { (ClawTest::background_status($_))[0] } @hung;
ClawTest::report("alice while hang hangs: $ok of 20",
                 "alice's slowest under 1 s: " . ($slowest < 1 ? "yes" : "no, $slowest s"),
                 "hang: @statuses",
                 "hang again, not hanging: " . ClawTest::http_get("/", @::Hang));
--- timeout: 10
--- response_body
alice while hang hangs: 20 of 20
alice's slowest under 1 s: yes
hang: 504 504 504 504
hang again, not hanging: 200
--- error_log
upstream timed out
--- no_error_log
[alert]
[crit]



=== TEST 20: a container that resets the connection before answering: 502; the next request works
--- init
my $reset = ClawTest::http_get("/_c/respond?action=reset", @::Hang);
my $closed = ClawTest::http_get("/_c/respond?action=close", @::Hang);
ClawTest::report("reset: $reset",
                 "closed: $closed",
                 "the next one: " . ClawTest::http_get("/", @::Hang),
                 "alice: " . ClawTest::http_get("/", @::Alice));
--- response_body
reset: 502
closed: 502
the next one: 200
alice: 200
--- no_error_log
[alert]
[crit]



=== TEST 21: a container that dies mid-response: the answer is cut, not completed or mixed with another; the next request works
--- init
my $raw = ClawTest::http_raw("GET /_c/respond?action=partial HTTP/1.1\r\n"
                             . "Host: hang.claw.test\r\n"
                             . "Authorization: Bearer alice-token-1\r\n"
                             . "Connection: keep-alive\r\n\r\n", 5);
my ($head, $body) = split /\r\n\r\n/, $raw, 2;
my ($len) = $head =~ /Content-Length: (\d+)/i;
ClawTest::report("status: " . ($head =~ m{^HTTP/1\.1 (\d+)} ? $1 : 'none'),
                 "promised: " . ($len // 'none'),
                 "cut short: " . (length($body // '') < ($len // 0) ? "yes" : "no"),
                 "the next one: " . ClawTest::http_get("/", @::Hang),
                 "alice: " . ClawTest::http_get("/", @::Alice));
--- response_body
status: 200
promised: 1000
cut short: yes
the next one: 200
alice: 200
--- error_log eval
qr/\[error\] .*(?:upstream prematurely closed connection|\(104: Connection reset by peer\)) while reading upstream/
--- no_error_log
[alert]
[crit]



=== TEST 22: workers killed with -9 under load: respawned, the zone lock not left taken, no count stuck
--- init
my $load = ClawTest::load_start(clients => 4, pause => 0,
                                path => '/_c/respond?sleep=50',
                                headers => \@::Dave);
my @killed;
for (1 .. 3) {
    select(undef, undef, undef, 0.7);
    my @w = ClawTest::worker_pids();
    kill 'KILL', @w;
    push @killed, @w;
}
select(undef, undef, undef, 0.7);
my $r = ClawTest::load_stop($load);
select(undef, undef, undef, 0.5);
my $active = main::metric('claw_active_requests{tenant="dave"}');
my @slow = map { ClawTest::http_status_background("/_c/respond?sleep=1500", @::Dave) } 1 .. 4;
select(undef, undef, undef, 0.5);
my $fifth = ClawTest::http_get("/", @::Dave);
my @statuses = map { (ClawTest::background_status($_))[0] } @slow;
# (until a dead worker's replacement has started, what it held still
# counts: a few 429s under the kills are expected, none after)
Test::More::diag("load: " . join(', ', map { "$_=$r->{$_}" } sort keys %$r))
    if $ENV{TEST_NGINX_VERBOSE};
ClawTest::report("workers killed: " . scalar(@killed),
                 "requests served under the kills: " . ($r->{s200} > 20 ? "yes" : "no"),
                 "dave in flight after the load: $active",
                 "4 at once after: @statuses",
                 "a fifth meanwhile: $fifth",
                 "alice: " . ClawTest::http_get("/", @::Alice));
--- timeout: 15
--- response_body
workers killed: 6
requests served under the kills: yes
dave in flight after the load: 0
4 at once after: 200 200 200 200
a fifth meanwhile: 429
alice: 200
--- error_log
exited on signal 9
--- no_error_log
[crit]



=== TEST 23: start: a token digest with a non-hex digit is refused cleanly
# digest-shift-ub (fixed): ngx_http_claw_parse_digest() shifted a non-hex
# digit's -1 left, undefined behaviour; under "make asan" the master
# aborted in UBSan before it said why.
--- user_files eval
[["tenants.conf" => "alice 127.0.0.1:19960 token=sha256:g" . ("0" x 63) . "\n"]]
--- must_die
--- error_log
tenants.conf:1: invalid token



=== TEST 24: the zone full for the admin API: 507 and nothing else
# admin-double-answer (fixed in 9986f53): a refused change (zone full 507,
# a domain of another tenant 409, the journal not writable 500) was
# answered, then answered again as if it had been made: "[alert] header
# already sent" for every refused PUT.
--- zone_size: 64k
--- config
    claw_domain claw.test;

    location /claw/ {
        claw_admin;
    }
--- init
for my $i (1 .. 500) {
    my ($s) = ClawTest::http_request(PUT => "/claw/tenants/f$i",
                                     '{"upstream":"127.0.0.1:19960"}');
    last if $s == 507;
}
--- request
PUT /claw/tenants/one-more
{"upstream":"127.0.0.1:19960"}
--- error_code: 507
--- response_body
{"error":"the claw zone is full"}
--- no_error_log
[alert]
