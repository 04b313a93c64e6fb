# The tenant provisioning example (examples/provision-tenant): a hardened
# container per tenant, then the tenant registered and its first token
# minted through the admin API on its unix socket; the reverse on
# deletion.  Docker is a stand-in that records its arguments.

use lib 't/perl';
use ClawTest qw(:DEFAULT spawn wait_port wait_until);
use Test::Nginx::Socket 'no_plan';
use File::Temp qw(tempdir);

master_on();
workers(1);
no_shuffle();
no_root_location();

our $Bin = tempdir(CLEANUP => 1);
our $Data = tempdir(CLEANUP => 1);
symlink(File::Spec->rel2abs("t/bin/fake-docker"), "$Bin/docker")
    or die "symlink: $!\n";

# runs the script; returns (exit status, output, the recorded docker calls)
sub provision {
    my ($fail, @args) = @_;
    my $root = ClawTest::servroot();
    my $log = "$::Data/docker.log";
    unlink $log;
    local $ENV{PATH} = "$::Bin:$ENV{PATH}";
    local $ENV{FAKE_DOCKER_LOG} = $log;
    local $ENV{FAKE_DOCKER_FAIL} = $fail // '';
    local $ENV{CLAW_ADMIN} = "unix:$root/logs/admin.sock";
    local $ENV{CLAW_DATA} = $::Data;
    my $out = `examples/provision-tenant @args 2>&1`;
    my $status = $? >> 8;
    my @calls = map { [split /\n/] } split /^--\n/m, ClawTest::slurp($log);
    return ($status, $out, \@calls);
}

sub has_args {
    my ($call, @want) = @_;
    my $line = "\n" . join("\n", @$call) . "\n";
    return !grep { index($line, "\n" . join("\n", @$_) . "\n") < 0 } @want;
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'_EOC_');
    claw_zone claw:1m;
    claw_tenants $TEST_NGINX_SERVER_ROOT/html/tenants.conf;

    upstream claw {
        claw_balancer;
    }

    server {
        listen 127.0.0.1:19921;
        return 200 "alice's container\n";
    }

    server {
        listen unix:$TEST_NGINX_SERVER_ROOT/logs/admin.sock;

        location / {
            claw_admin;
        }
    }
_EOC_

    $block->set_value("user_files", ">>> tenants.conf\n# no tenants yet\n")
        unless defined $block->user_files;

    $block->set_value("config", <<'_EOC_');
    claw_domain claw.test;

    location / {
        claw on;
        proxy_pass http://claw;
    }
_EOC_

    ClawTest::fresh_zone($block);
});

run_tests();

__DATA__

=== TEST 1: create: a hardened container, the tenant registered, a token
--- init
my ($status, $out, $calls) = main::provision(undef, "create", "alice", 19921);
Test::More::is($status, 0, "create succeeded") or Test::More::diag($out);
my ($token) = $out =~ /^token \(shown once, store it\): (claw_\S+)$/m;
Test::More::ok($token, "a token is printed once");
Test::More::is(scalar @$calls, 3, "docker called three times");
Test::More::ok(main::has_args($calls->[0], ["network", "create"], ["claw-alice"]),
               "a network of the tenant's own");
Test::More::ok(main::has_args($calls->[1], ["network", "inspect"], ["claw-alice"]),
               "its gateway address asked");
my $run = $calls->[2];
Test::More::is($run->[0], "run", "then the container");
Test::More::ok(main::has_args($run,
    ["--user", "1000:1000"], ["--read-only"], ["--cap-drop", "ALL"],
    ["--security-opt", "no-new-privileges"], ["--memory", "2g"],
    ["--cpus", "1"], ["--pids-limit", "256"], ["--network", "claw-alice"],
    ["--publish", "127.0.0.1:19921:18789"],
    ["--volume", "$::Data/alice:/home/node/.openclaw:rw"]),
    "non-root, read-only, no capabilities, limits, own network, loopback port, one data volume")
    or Test::More::diag(join " ", @$run);
Test::More::ok(!grep({ /^--privileged/ || /^--publish=?0\.0\.0\.0/ || /^-P$/ } @$run),
               "never privileged, never published beyond loopback");
my ($s, $body) = ClawTest::http_request(GET => "/", undef,
    "Host: alice.claw.test", "Authorization: Bearer $token");
Test::More::is("$s $body", "200 alice's container\n", "the token reaches the container");
--- request
GET /
--- more_headers
Host: alice.claw.test
--- error_code: 401



=== TEST 2: delete: unregistered first, then the container and its network
--- init
my ($status) = main::provision(undef, "create", "alice", 19921);
die "create failed\n" if $status;
my ($out, $calls);
($status, $out, $calls) = main::provision(undef, "delete", "alice");
Test::More::is($status, 0, "delete succeeded") or Test::More::diag($out);
Test::More::ok(main::has_args($calls->[0], ["rm", "--force", "claw-alice"]),
               "the container removed");
Test::More::ok(main::has_args($calls->[1], ["network", "rm", "claw-alice"]),
               "and its network");
--- request
GET /
--- more_headers
Host: alice.claw.test
--- error_code: 404



=== TEST 3: a container that does not start is never registered
--- init
my ($status, $out, $calls) = main::provision("run", "create", "alice", 19921);
Test::More::isnt($status, 0, "create failed");
Test::More::like($out, qr/the container of "alice" did not start/, "and says why");
Test::More::ok(main::has_args($calls->[-1], ["network", "rm", "claw-alice"]),
               "its network removed again");
--- request
GET /
--- more_headers
Host: alice.claw.test
--- error_code: 404



=== TEST 4: bad arguments
--- init
my ($status, $out) = main::provision(undef, "create", "Alice", 19921);
Test::More::is($status, 1, "an invalid id is refused");
($status, $out) = main::provision(undef, "create", "alice", "http");
Test::More::is($status, 1, "an invalid port is refused");
($status, $out) = main::provision(undef, "create", "alice");
Test::More::is($status, 2, "a missing port is a usage error");
--- request
GET /
--- more_headers
Host: alice.claw.test
--- error_code: 404



=== TEST 5: create writes the gateway's configuration into its volume first: trusted-proxy mode for this tenant only, behind the bridge gateway, its origins, no token of its own
--- init
my ($status, $out, $calls) = main::provision(undef, "create", "alice", 19921, "agent.alice.dev");
Test::More::is($status, 0, "create succeeded") or Test::More::diag($out);
Test::More::ok(main::has_args($calls->[1], ["network", "inspect"]), "the bridge gateway asked of docker")
    or Test::More::diag(join " ", @{$calls->[1]});
Test::More::is($calls->[2][0], "run", "before the container starts");
my $conf = ClawTest::slurp("$::Data/alice/openclaw.json");
Test::More::like($conf, qr/mode: "trusted-proxy"/, "trusted-proxy mode");
Test::More::like($conf, qr/userHeader: "x-claw-tenant"/, "the identity header");
Test::More::like($conf, qr/allowUsers: \["alice"\]/, "this tenant only");
Test::More::like($conf, qr/trustedProxies: \["172\.18\.0\.1"\]/, "the bridge gateway, the only proxy trusted");
Test::More::like($conf, qr/allowLoopback: false/, "never a loopback proxy");
Test::More::like($conf, qr/publicOrigin: "https:\/\/alice\.claw\.example\.com"/, "its public origin");
Test::More::like($conf, qr/allowedOrigins: \["https:\/\/alice\.claw\.example\.com", "https:\/\/agent\.alice\.dev"\]/,
                 "its subdomain and custom domains as origins");
Test::More::unlike($conf, qr/\@[A-Z_]+\@|^\s*token:/m, "no placeholder left, no gateway token");
Test::More::is(sprintf("%o", (stat "$::Data/alice/openclaw.json")[2] & 0777), "600", "readable by the container only");
my ($g, $b) = ClawTest::http_request(GET => "/tenants/alice", undef, "Host: localhost");
--- request
GET /
--- more_headers
Host: agent.alice.dev
--- error_code: 401



=== TEST 6: domains: the registry and the gateway's origins change together; rate and tokens stay
--- init
my ($status) = main::provision(undef, "create", "alice", 19921);
die "create failed\n" if $status;
my $sock = ClawTest::servroot() . "/logs/admin.sock";
system("curl -sf --unix-socket $sock -X PUT http://localhost/tenants/alice -d "
       . "'{\"upstream\":\"127.0.0.1:19921\",\"rate\":\"7r/s\",\"tokens\":"
       . "[\"sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1\"]}' >/dev/null") == 0
    or die "put failed\n";
my ($out, $calls);
($status, $out) = main::provision(undef, "domains", "alice", "a.example.org", "b.example.org");
my $after = `curl -sf --unix-socket $sock http://localhost/tenants/alice`;
Test::More::like($after, qr/"rate":"7r\/s".*"domains":\["a\.example\.org","b\.example\.org"\]/,
                 "the rate kept, the domains changed");
Test::More::like($after, qr/374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1/,
                 "the token kept");
Test::More::is($status, 0, "domains succeeded") or Test::More::diag($out);
my $conf = ClawTest::slurp("$::Data/alice/openclaw.json");
Test::More::like($conf, qr/allowedOrigins: \["https:\/\/alice\.claw\.example\.com", "https:\/\/a\.example\.org", "https:\/\/b\.example\.org"\]/,
                 "the new origins");
($status, $out) = main::provision(undef, "domains", "alice", "NOT A DOMAIN");
Test::More::is($status, 1, "an invalid domain is refused");
--- request
GET /
--- more_headers
Host: b.example.org
--- error_code: 401



=== TEST 7: scale to zero: the reaper puts the idle active tenants to sleep (asleep first, then stopped); wake undoes it; a failure is told
--- user_files
>>> tenants.conf
alice  127.0.0.1:19921  token=sha256:374f4c85576c23a1f3d9a99769f481944af78a415a995a6ad5ffd1e4b4ac76f1
bob    127.0.0.1:19921
carol  127.0.0.1:19921  state=suspended
--- init
my $ctl = "examples/clawctl --socket " . ClawTest::servroot() . "/logs/admin.sock";
sleep 3;
my ($s) = ClawTest::http_request(GET => "/", undef, "Host: alice.claw.test",
                                 "Authorization: Bearer alice-token-1");
die "alice: $s\n" unless $s == 200;
my ($status, $out, $calls) = main::provision(undef, "reap", 2, 0);
Test::More::is($status, 0, "reap succeeded") or Test::More::diag($out);
Test::More::is($out, "tenant bob: asleep\n",
               "bob put to sleep; alice (a request just now) and carol (suspended) not");
Test::More::is(scalar @$calls, 1, "one docker call");
Test::More::ok(main::has_args($calls->[0], ["stop", "claw-bob"]), "its container stopped");
Test::More::like(`$ctl get bob`, qr/^bob\s+asleep\s/m, "bob is asleep in the registry");
($status, $out, $calls) = main::provision(undef, "wake", "bob");
Test::More::is($status, 0, "wake succeeded") or Test::More::diag($out);
Test::More::ok(main::has_args($calls->[0], ["start", "claw-bob"]), "its container started");
Test::More::like(`$ctl get bob`, qr/^bob\s+active\s/m, "and bob is active again");
($status, $out) = main::provision("stop", "sleep", "bob");
Test::More::is($status, 1, "a container that does not stop: exit 1");
Test::More::like($out, qr/stopping the container of "bob" failed/, "and says so");
($status, $out, $calls) = main::provision(undef, "sleep", "carol");
Test::More::is("$status " . scalar @$calls, "1 0", "a suspended tenant is not put to sleep");
Test::More::like($out, qr/"carol" is suspended, not active/, "and it says why");
($status, $out, $calls) = main::provision(undef, "wake", "carol");
Test::More::is("$status " . scalar @$calls, "1 0", "nor woken: it stays suspended");
Test::More::like(`$ctl get carol`, qr/^carol\s+suspended\s/m, "suspended still");
$out = `CLAW_ADMIN=unix:/nonexistent examples/provision-tenant reap 2 0 2>&1`;
Test::More::is($? >> 8, 1, "a reaper that cannot list: exit 1");
Test::More::like($out, qr/listing the idle tenants failed/, "and says so");
--- request
GET /
--- more_headers
Host: bob.claw.test
--- error_code: 401
--- timeout: 20



=== TEST 8: the example wake hook (examples/wake-hook) runs "provision-tenant wake": the container started, the tenant active; anything but a tenant id is refused
--- user_files
>>> tenants.conf
bob    127.0.0.1:19921  state=asleep
--- init
my $root = ClawTest::servroot();
my $log = "$::Data/hook-docker.log";
unlink $log;
spawn("$::Data/hook.log", { PATH => "$::Bin:$ENV{PATH}", FAKE_DOCKER_LOG => $log,
                            CLAW_ADMIN => "unix:$root/logs/admin.sock",
                            CLAW_DATA => $::Data },
      'examples/wake-hook', '--listen', '127.0.0.1:19922');
wait_port(19922, 'wake-hook');
my $hook = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => 19922)
    or die "wake-hook: $!\n";
my ($s) = ClawTest::http_exchange($hook, 10, 'POST', '/wake/bob');
Test::More::is($s, 200, "a wake: 200 once done");
Test::More::like(ClawTest::slurp($log), qr/^start\nclaw-bob\n/m, "docker start claw-bob");
my $ctl = "examples/clawctl --socket $root/logs/admin.sock";
Test::More::like(`$ctl get bob`, qr/^bob\s+active\s/m, "bob active, once its gateway answered");
spawn("$::Data/hook2.log", { PATH => "$::Bin:$ENV{PATH}", FAKE_DOCKER_LOG => $log,
                             FAKE_DOCKER_FAIL => 'start',
                             CLAW_ADMIN => "unix:$root/logs/admin.sock",
                             CLAW_DATA => $::Data },
      'examples/wake-hook', '--listen', '127.0.0.1:19923');
wait_port(19923, 'wake-hook');
`$ctl sleep bob`;
$hook = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => 19923);
($s) = ClawTest::http_exchange($hook, 10, 'POST', '/wake/bob');
Test::More::is($s, 502, "a container that does not start: 502");
Test::More::like(`$ctl get bob`, qr/^bob\s+asleep\s/m, "and bob stays asleep");
$hook = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => 19922);
($s) = ClawTest::http_exchange($hook, 5, 'POST', '/wake/..%2Fetc');
Test::More::is($s, 404, "not a tenant id: 404");
--- request
GET /
--- more_headers
Host: bob.claw.test
--- error_code: 401
--- timeout: 20
