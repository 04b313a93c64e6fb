# The journal of admin changes, as an operator's disk and neighbours treat
# it: a worker's event loop never waits for the journal's lock (another
# process holding it delays only the admin change, and a change that
# waits too long is refused with 503) nor for the disk (a slow fdatasync,
# a slow fold); a write that fails is undone and says why; one that
# cannot be undone leaves the outcome unknown, and changes are refused
# until the journal is repaired, so a refused change never comes back;
# every answer is made from what was committed, under the lock.
#
# Disk faults come from t/fault/claw_fault.c, loaded into nginx with
# LD_PRELOAD: the rules file it reads at every call says which call fails
# (or sleeps) for which file, and how many times.

use lib 't/perl';
use ClawTest;
use Fcntl qw(F_SETLKW F_WRLCK SEEK_SET O_RDWR O_CREAT);
use File::Temp qw(tempdir);
use POSIX ();
use Time::HiRes qw(time sleep);
use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();
no_root_location();

our $Fault = "$ENV{TEST_NGINX_CLAW_ROOT}/build/unit/claw_fault.so";
die "$Fault is not built (make unit)\n" unless -f $Fault;

our $Dir = tempdir('claw-journal-XXXXXX', TMPDIR => 1, CLEANUP => 1);
our $Rules = "$Dir/rules";

$ENV{LD_PRELOAD} = join ' ', grep { $_ } $Fault, $ENV{LD_PRELOAD};
$ENV{CLAW_FAULT} = $Rules;

our $Tenants = <<'_EOF_';
# the registry of the journal tests
alice  127.0.0.1:19931  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1
bob    127.0.0.1:19931  token=sha256:da35348540eea93333fbee67961c2b02777aff29018cbbd343e7b9ac2e259122
_EOF_

sub rules {
    open my $f, '>', $Rules or die "rules: $!\n";
    print $f @_;
    close $f;
}

sub journal { ClawTest::servroot() . '/html/data/tenants.conf.journal' }

sub admin { ClawTest::http_request($_[0], "/claw/tenants$_[1]", $_[2]) }

# an admin request from a child process: admin_wait() gives
# (status, seconds, body)
sub admin_background {
    my ($method, $path, $body) = @_;
    pipe(my $r, my $w) or die "pipe: $!\n";
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        close $r;
        my $t0 = time;
        my ($s, $b) = eval { admin($method, $path, $body) };
        printf $w "%s %.3f\n%s", $s // 0, time - $t0, $b // '';
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    return [$pid, $r];
}

sub admin_wait {
    my ($bg) = @_;
    my ($pid, $r) = @$bg;
    local $/;
    my $out = <$r> // '';
    waitpid $pid, 0;
    my ($s, $t, $b) = $out =~ /^(\d+) ([\d.]+)\n(.*)\z/s;
    return ($s // 0, $t // 0, $b // '');
}

# the slowest of n tenant requests a tenth of a second apart
sub tenant_slowest {
    my ($n) = @_;
    my $max = 0;
    for (1 .. $n) {
        my $t0 = time;
        my $s = ClawTest::http_get('/', 'Host: alice.claw.test',
                                   'Authorization: Bearer alice-token-1');
        die "tenant request: $s\n" unless $s == 200;
        my $dt = time - $t0;
        $max = $dt if $dt > $max;
        sleep 0.1;
    }
    return $max;
}

# another process (an operator's script, "nginx -t", a stuck fold) holds
# the journal's lock for $secs seconds; returns once it has it
sub hold_lock {
    my ($secs) = @_;
    pipe(my $r, my $w) or die "pipe: $!\n";
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        close $r;
        sysopen my $fh, journal(), O_RDWR | O_CREAT or POSIX::_exit(1);
        my $lock = pack('s s x4 q q i x4', F_WRLCK, SEEK_SET, 0, 0, 0);
        fcntl($fh, F_SETLKW, $lock) or POSIX::_exit(2);
        print $w "locked\n";
        close $w;
        sleep $secs;
        POSIX::_exit(0);
    }
    close $w;
    my $line = <$r> // '';
    die "hold_lock: the lock was not taken\n" unless $line eq "locked\n";
    return $pid;
}

add_block_preprocessor(sub {
    my $block = shift;

    rules('');

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/data/tenants.conf;

    upstream claw {
        claw_balancer;
        keepalive 8;
    }

    server {
        listen 127.0.0.1:19931;
        return 200 "container host=$http_host\n";
    }

    server {
        listen $TEST_NGINX_SERVER_PORT;
        server_name *.claw.test;
        claw_domain claw.test;

        location / {
            claw on;
            proxy_pass http://claw;
        }
    }
_EOC_
    }

    if (!defined $block->user_files) {
        $block->set_value("user_files", [
            ["data/tenants.conf" => $Tenants],
        ]);
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location /claw/ {
        claw_admin;
    }

    location = /report.txt {
    }
_EOC_
    }

    if (!defined $block->request) {
        $block->set_value("request", "GET /report.txt");
    }

    ClawTest::fresh_zone($block);
});

run_tests();

__DATA__

=== TEST 1: another process holds the journal's lock: the admin change waits for it, the tenants' requests do not
--- init
my $holder = main::hold_lock(3);
my $put = main::admin_background(PUT => '/carol', '{"upstream":"127.0.0.1:19931"}');
sleep 0.3;
my $slowest = main::tenant_slowest(15);
my ($s, $t) = main::admin_wait($put);
waitpid $holder, 0;
ClawTest::report("tenant requests meanwhile under 1 s: " . ($slowest < 1 ? "yes" : "no ($slowest)"),
                 "change: $s",
                 "the change waited for the lock: " . ($t > 2 ? "yes" : "no ($t)"));
--- response_body
tenant requests meanwhile under 1 s: yes
change: 201
the change waited for the lock: yes
--- no_error_log
[alert]
[crit]



=== TEST 2: a lock held for longer than a change waits (5 s): 503 with Retry-After, nothing changed, the holder named in the log
--- init
my $holder = main::hold_lock(7);
my ($s, $b, $h) = ClawTest::http_request(PUT => '/claw/tenants/carol', '{"upstream":"127.0.0.1:19931"}');
my ($g) = main::admin(GET => '/carol');
waitpid $holder, 0;
my ($s2) = main::admin(PUT => '/carol', '{"upstream":"127.0.0.1:19931"}');
ClawTest::report("change: $s",
                 "retry after: " . ($h =~ /^Retry-After: 1\r?$/m ? "yes" : "no"),
                 "says why: " . ($b =~ /locked by another process/ ? "yes" : "no"),
                 "tenant after: $g",
                 "once the lock is free: $s2");
--- response_body
change: 503
retry after: yes
says why: yes
tenant after: 404
once the lock is free: 201
--- error_log eval
qr/the journal "[^"]+" is locked by process \d+ for more than 5000 ms/
--- no_error_log
[alert]
[crit]



=== TEST 3: a slow disk (fdatasync of the journal takes 2 s) delays the change, not the tenants' requests
--- init
main::rules("fdatasync sleep=2000 tenants.conf.journal\n");
my $put = main::admin_background(PUT => '/carol', '{"upstream":"127.0.0.1:19931"}');
sleep 0.3;
my $slowest = main::tenant_slowest(12);
my ($s, $t) = main::admin_wait($put);
main::rules('');
ClawTest::report("tenant requests meanwhile under 1 s: " . ($slowest < 1 ? "yes" : "no ($slowest)"),
                 "change: $s",
                 "acknowledged after the sync: " . ($t >= 1.9 ? "yes" : "no ($t)"));
--- response_body
tenant requests meanwhile under 1 s: yes
change: 201
acknowledged after the sync: yes
--- no_error_log
[alert]
[crit]



=== TEST 4: a slow fold (the new registry file takes 2 s to sync) delays no tenant request; the file has the change after it
--- init
main::rules("fdatasync sleep=2000 tenants.conf.tmp\n");
my ($s) = main::admin(PUT => '/carol', '{"upstream":"127.0.0.1:19931"}');
# the fold starts once changes have been quiet for 2 s, and syncs for 2 s
my $slowest = main::tenant_slowest(45);
main::rules('');
my $file = ClawTest::slurp(ClawTest::servroot() . '/html/data/tenants.conf');
ClawTest::report("change: $s",
                 "tenant requests during the fold under 1 s: " . ($slowest < 1 ? "yes" : "no ($slowest)"),
                 "folded into the file: " . ($file =~ /^carol 127\.0\.0\.1:19931$/m ? "yes" : "no"),
                 "journal emptied: " . (-s main::journal() ? "no" : "yes"));
--- response_body
change: 201
tenant requests during the fold under 1 s: yes
folded into the file: yes
journal emptied: yes
--- error_log
journal records folded into
--- no_error_log
[alert]
[crit]



=== TEST 5: fdatasync fails: the record is cut off again, 500 says what failed and that nothing changed; the next change works
--- init
my $before = -s main::journal() // 0;
main::rules("fdatasync EIO tenants.conf.journal 1\n");
my ($s, $b) = main::admin(DELETE => '/alice');
main::rules('');
my ($g) = main::admin(GET => '/alice');
my $after = -s main::journal() // 0;
my ($s2) = main::admin(DELETE => '/bob');
ClawTest::report("change: $s",
                 "says: " . ($b =~ /syncing the journal failed: Input\/output error; nothing changed/ ? "yes" : "no: $b"),
                 "alice: $g",
                 "journal as before: " . ($after == $before ? "yes" : "no"),
                 "next change: $s2");
--- response_body
change: 500
says: yes
alice: 200
journal as before: yes
next change: 204
--- error_log
claw: syncing the journal
--- no_error_log
[alert]
[crit]



=== TEST 6: the undo fails too: the outcome is unknown, changes are refused until the journal is repaired, and the refused change never comes back
--- init
main::rules("fdatasync EIO tenants.conf.journal\nftruncate EIO tenants.conf.journal\n");
my ($s, $b) = main::admin(DELETE => '/alice');
my ($s2, $b2) = main::admin(PUT => '/carol', '{"upstream":"127.0.0.1:19931"}');
main::rules('');
# the journal is repaired within a second or two
my $s3;
for (1 .. 40) {
    sleep 0.1;
    ($s3) = main::admin(DELETE => '/bob');
    last if $s3 == 204;
}
my $journal = ClawTest::slurp(main::journal());
ClawTest::nginx_restart_hard();
my ($a) = main::admin(GET => '/alice');
my ($c) = main::admin(GET => '/carol');
my ($bob) = main::admin(GET => '/bob');
ClawTest::report("change: $s",
                 "outcome unknown: " . ($b =~ /the outcome is unknown/ ? "yes" : "no: $b"),
                 "next change refused: $s2",
                 "says why: " . ($b2 =~ /repairing the journal after a failed write failed/ ? "yes" : "no: $b2"),
                 "after the repair: $s3",
                 "journal: " . join(' ', map { s/ .*//r } split /\n/, $journal),
                 "after kill -9: alice $a, carol $c, bob $bob");
--- response_body
change: 500
outcome unknown: yes
next change refused: 500
says why: yes
after the repair: 204
journal: -
after kill -9: alice 200, carol 404, bob 404
--- error_log
changes are refused until the journal is repaired
is repaired, changes are taken again
--- no_error_log
[crit]



=== TEST 7: a short write (a full disk) says so, not "Success"; the torn record is cut off and the next change is whole
--- init
main::rules("write short tenants.conf.journal\n");
my ($s, $b) = main::admin(PUT => '/carol', '{"upstream":"127.0.0.1:19931"}');
main::rules('');
my ($s2) = main::admin(PUT => '/dave', '{"upstream":"127.0.0.1:19931"}');
my $journal = ClawTest::slurp(main::journal());
ClawTest::report("change: $s",
                 "says: " . ($b =~ /short write/ && $b !~ /Success/ ? "yes" : "no: $b"),
                 "next: $s2",
                 "journal: " . ($journal =~ s/\n/|/gr));
--- response_body
change: 500
says: yes
next: 201
journal: + dave 127.0.0.1:19931|
--- no_error_log
[alert]
[crit]



=== TEST 8: concurrent changes of one tenant: every answer is the change it acknowledges, never another's, never a 404 for a PUT
--- init
my @kids;
for my $k (1 .. 4) {
    pipe(my $r, my $w) or die;
    my $pid = fork // die;
    if ($pid == 0) {
        close $r;
        my ($bad, $n) = (0, 0);
        eval {
            for my $i (1 .. 60) {
                my $conn = $k * 1000 + $i;
                my ($s, $b) = main::admin(PUT => '/race', "{\"upstream\":\"127.0.0.1:19931\",\"conn\":$conn}");
                $n++;
                $bad++ unless ($s == 200 || $s == 201) && $b =~ /"conn":\Q$conn\E[,}]/;
                main::admin(DELETE => '/race') if $i % 7 == 0;
            }
        };
        print STDERR "race client: $@" if $@;
        print $w "$bad $n\n";
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    push @kids, [$pid, $r];
}
my ($bad, $n) = (0, 0);
for (@kids) {
    my ($pid, $r) = @$_;
    my ($b, $c) = split ' ', <$r>;
    waitpid $pid, 0;
    $bad += $b; $n += $c;
}
ClawTest::report("changes: $n", "answers not their own: $bad");
--- response_body
changes: 240
answers not their own: 0
--- no_error_log
[alert]
[crit]



=== TEST 9: GET /tenants by pages: every tenant once, "next" until the last page; bad page arguments are 400 with the reason
--- init
for my $i (1 .. 40) {
    my ($s) = main::admin(PUT => sprintf('/t%02d', $i), '{"upstream":"127.0.0.1:19931"}');
    die "put: $s\n" unless $s == 201;
}
my (%seen, $pages, $after, $dup);
while (1) {
    my ($s, $b) = ClawTest::http_request(GET => "/claw/tenants?limit=7" . ($after ? "&after=$after" : ""));
    die "page: $s\n" unless $s == 200;
    $pages++;
    my @ids = $b =~ /"id":"([^"]+)"/g;
    die "a page of " . @ids . "\n" if @ids > 7;
    $dup += grep { $seen{$_}++ } @ids;
    # a tenant added between two pages does not disturb the listing
    main::admin(PUT => "/late$pages", '{"upstream":"127.0.0.1:19931"}') if $pages == 2;
    last unless $b =~ /"next":"([^"]+)"/;
    $after = $1;
    die "next is not the last id\n" unless $after eq $ids[-1];
}
my @old = grep { $seen{$_} } 'alice', 'bob', map { sprintf 't%02d', $_ } 1 .. 40;
my ($l0, $e0) = ClawTest::http_request(GET => "/claw/tenants?limit=0");
my ($l1) = ClawTest::http_request(GET => "/claw/tenants?limit=10001");
my ($a1, $e1) = ClawTest::http_request(GET => "/claw/tenants?limit=5&after=NOT-AN-ID");
my ($s, $all) = ClawTest::http_request(GET => "/claw/tenants");
my $n = () = $all =~ /"id":/g;
ClawTest::report("tenants there throughout, listed: " . scalar(@old),
                 "listed twice: " . ($dup // 0),
                 "pages: " . ($pages >= 6 ? "6 or more" : $pages),
                 "limit=0: $l0 " . ($e0 =~ /\\"limit\\" must be a number from 1 to 10000/ ? "says why" : $e0),
                 "limit=10001: $l1",
                 "bad after: $a1 " . ($e1 =~ /\\"after\\" must be a tenant id/ ? "says why" : $e1),
                 "all at once: $n");
--- response_body
tenants there throughout, listed: 42
listed twice: 0
pages: 6 or more
limit=0: 400 says why
limit=10001: 400
bad after: 400 says why
all at once: 43
--- no_error_log
[alert]
[crit]
