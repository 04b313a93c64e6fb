package ClawCluster;

# Helpers for t/cluster.t: a real Redis server (Debian's redis-server) and
# several more nginx "nodes" with the module, beside the nginx that
# Test::Nginx starts, on loopback.
#
#   my $r = redis_start(port => 19930, password => 'pw');
#   $r->{url}                      redis://:pw@127.0.0.1:19930
#   redis_cli($r, 'SET', 'k', 'v');
#   redis_restart($r, keep => 1);  # data kept (SAVE, then dump.rdb read)
#   redis_restart($r, keep => 0);  # back empty
#
#   my $n2 = node_start(name => 'n2', port => 19942, workers => 2,
#                       files => { 'html/tenants.conf' => "..." },
#                       http => 'server { listen 127.0.0.1:19942; ... }');
#   my ($status, $body, $head) = node_http($n2, 'GET', '/', '',
#                                          'Host: alice.claw.test');
#   node_admin($n2, 'admin.sock', 'PUT', '/claw/tenants/x', '{...}');
#   node_reload($n2); node_stop($n2); node_start_again($n2);
#   node_configure($n2, http => '...'); node_test_config($n2);
#
# A node is an nginx of its own (daemon, master and workers) in a prefix
# directory of its own, <tempdir>/<name>/ with conf/, logs/ and html/: its
# nginx.conf loads $TEST_NGINX_LOAD_MODULES and has the caller's http text
# in its http block, where $NODE_PREFIX stands for that directory (also in
# the files given).  Redis keeps its dump.rdb and log in <tempdir>/redis-
# <port>/.  The temporary directory is removed when the test passes; when
# it fails (or with TEST_NGINX_NO_CLEAN) it is kept and named, with every
# node's logs.
#
# Every process started here is stopped when the test file ends, also
# when it dies, and even when it is killed (-9): Redis runs under
# ClawTest::spawn()'s watcher, and a guard process run the same way stops
# the nodes (daemons, found by their pid files) once the test is gone.

use strict;
use warnings;

use Exporter qw(import);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::IP;
use IO::Socket::UNIX;
use POSIX ();
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(time sleep);

use ClawTest qw(spawn spawn_stop wait_port wait_until http_exchange);

our @EXPORT = qw(
    redis_start redis_stop redis_restart redis_start_again redis_cli
    node_start node_start_again node_stop node_reload node_configure
    node_error_log node_test_config node_http node_admin
    wait_until container_blocks
);

my $OWNER = $$;
my $BASE = tempdir('claw-cluster-XXXXXX', TMPDIR => 1);
my @REDIS;      # every redis_start() handle
my @NODES;      # every node_start() handle
my $GUARD;
my $RUNS = 0;   # _run()'s output files      # the spawn() watcher of the guard of the nodes

my $REDIS_SERVER = '/usr/bin/redis-server';
my $REDIS_CLI = '/usr/bin/redis-cli';

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------

# A Redis on 127.0.0.1:port, with no persistence of its own (no RDB
# snapshots, no AOF), optionally with a password.
sub redis_start {
    my (%arg) = @_;
    my $port = $arg{port} or die "redis_start: no port\n";
    die "redis_start: a redis of this test runs on port $port\n"
        if grep { $_->{port} == $port && $_->{watcher} } @REDIS;
    my $r = {
        port => $port,
        password => $arg{password},
        tls => $arg{tls},
        dir => "$BASE/redis-$port",
        url => ($arg{tls} ? 'rediss://' : 'redis://')
               . (defined $arg{password} ? ":$arg{password}\@" : '')
               . "127.0.0.1:$port",
    };
    make_path($r->{dir});
    push @REDIS, $r;
    _redis_run($r);
    return $r;
}

sub _redis_run {
    my ($r) = @_;
    $r->{watcher} = spawn("$r->{dir}/redis.out", {}, $REDIS_SERVER,
        '--port', $r->{port}, '--bind', '127.0.0.1', '--daemonize', 'no',
        '--save', '', '--appendonly', 'no',
        '--dir', $r->{dir}, '--dbfilename', 'dump.rdb',
        '--logfile', "$r->{dir}/redis.log",
        (defined $r->{password} ? ('--requirepass', $r->{password}) : ()),
        _tls_args($r));
    # up when the redis that answers PING is this one, the watcher's
    # child (not another one on the port)
    my $exited;
    wait_until(10, sub {
        return $exited = 1 if waitpid($r->{watcher}, POSIX::WNOHANG()) != 0;
        # (a port that takes connections and never answers is no redis)
        return 0 unless _cli($r, 1, 'PING') eq 'PONG';
        my ($pid) = _cli($r, 1, 'INFO', 'server') =~ /^process_id:(\d+)/m
            or return 0;
        my ($ppid) = _slurp("/proc/$pid/stat") =~ /^\d+ \(.*\) \S (\d+)/s;
        return 0 unless $ppid && $ppid == $r->{watcher};
        return $r->{pid} = $pid;
    });
    if (!$r->{pid}) {
        spawn_stop(delete $r->{watcher});
        die "redis on port $r->{port} did not "
            . ($exited ? 'start' : 'answer in 10 s') . ":\n"
            . _tail("$r->{dir}/redis.out") . _tail("$r->{dir}/redis.log");
    }
    return $r;
}

# Stops it (SIGTERM, which with no save points saves nothing) and returns
# once the port is closed.
sub redis_stop {
    my ($r) = @_;
    return unless $r->{watcher};
    spawn_stop(delete $r->{watcher});
    delete $r->{pid};
    wait_until(10, sub { !_connects($r->{port}) })
        or die "redis on port $r->{port} still listens after its stop\n";
}

# The same Redis again, on the same port and directory: keep => 1 SAVEs
# first, so that it comes back with its data (read from dump.rdb);
# keep => 0 (the default) deletes dump.rdb, so that it comes back empty.
sub redis_restart {
    my ($r, %arg) = @_;
    if ($arg{keep}) {
        my $ok = redis_cli($r, 'SAVE');
        die "redis_restart: SAVE: $ok\n" unless $ok eq 'OK';
    }
    redis_stop($r);
    unlink "$r->{dir}/dump.rdb" unless $arg{keep};
    return _redis_run($r);
}

# The same Redis again after redis_stop(), with what it SAVEd before.
sub redis_start_again {
    my ($r) = @_;
    die "redis_start_again: redis on port $r->{port} runs\n"
        if $r->{watcher};
    return _redis_run($r);
}

# redis-cli with these arguments; what it prints (stdout and stderr), the
# last newline removed, or in list context its lines.  Replies come as
# redis-cli prints them to a pipe: "OK", "v", "1", "" for a nil, "ERR ..."
# for an error, "(/usr/bin/redis-cli killed after 10 s)" for no answer.
sub redis_cli {
    my ($r, @args) = @_;
    return _cli($r, 10, @args);
}

# TLS only (tls => { cert, key, ca, client_cert, client_key }): the
# server's certificate and key, the CA its clients must be signed by (and
# redis-cli trusts), the client certificate redis-cli uses; $r->{tls} may
# be changed before redis_start_again()
sub _tls_args {
    my ($r) = @_;
    my $t = $r->{tls} or return ();
    return ('--port', 0, '--tls-port', $r->{port},
            '--tls-cert-file', $t->{cert}, '--tls-key-file', $t->{key},
            '--tls-ca-cert-file', $t->{ca}, '--tls-auth-clients', 'yes');
}

sub _cli {
    my ($r, $timeout, @args) = @_;
    my $t = $r->{tls};
    my ($rc, $out) = _run($timeout, $REDIS_CLI, '-h', '127.0.0.1',
        '-p', $r->{port},
        ($t ? ('--tls', '--cacert', $t->{cli_ca} // $t->{ca},
               '--cert', $t->{client_cert}, '--key', $t->{client_key},
               '--sni', 'redis.test')
            : ()),
        (defined $r->{password}
             ? ('-a', $r->{password}, '--no-auth-warning') : ()),
        @args);
    return split /\n/, $out if wantarray;
    chomp $out;
    return $out;
}

# ---------------------------------------------------------------------------
# nginx nodes
# ---------------------------------------------------------------------------

# A node named name (its directory) listening on 127.0.0.1:port, with
# the http text (the server blocks) and files (path in the prefix =>
# content) given; also workers (default 1), log_level (default info) and
# main (text for the main context).  Returns once it takes connections
# on port and runs its workers; dies with its error log otherwise.
sub node_start {
    my (%arg) = @_;
    for (qw(name port http)) {
        die "node_start: no $_\n" unless defined $arg{$_};
    }
    die "node_start: a node $arg{name} already exists\n"
        if grep { $_->{name} eq $arg{name} } @NODES;
    my $n = {
        name => $arg{name},
        port => $arg{port},
        prefix => "$BASE/$arg{name}",
        workers => $arg{workers} // 1,
        binary => $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx',
    };
    make_path(map { "$n->{prefix}/$_" } qw(conf logs html));
    push @NODES, $n;
    _guard();
    node_configure($n, %arg);
    # a node that did not start is forgotten: its name may be used again
    eval { _node_run($n); 1 } or do {
        @NODES = grep { $_ != $n } @NODES;
        die $@;
    };
    return $n;
}

# The node again after node_stop(), in the same directory: its files and
# logs are kept.  http, files, workers and so on as in node_start()
# change its configuration first.
sub node_start_again {
    my ($n, %arg) = @_;
    die "node_start_again: $n->{name} runs\n" if _master($n);
    node_configure($n, %arg) if %arg;
    _node_run($n);
    return $n;
}

# Stops the node: QUIT (graceful shutdown) and up to "grace" seconds
# (default 10) for the master and its workers to go, then TERM, then
# KILL.  Returns the signal that ended it ('' when it did not run).
sub node_stop {
    my ($n, %arg) = @_;
    my $master = _master($n);
    return '' unless $master;
    my @procs = ($master, ClawTest::_workers_of($master));
    my $gone = sub { !grep { ClawTest::_alive($_) } @procs };
    my $how = 'QUIT';
    kill 'QUIT', $master;
    if (!wait_until($arg{grace} // 10, $gone)) {
        $how = 'TERM';
        kill 'TERM', $master;
        if (!wait_until(3, $gone)) {
            # nginx's daemon leads its process group, workers and all
            $how = 'KILL';
            kill 'KILL', -$master, @procs;
            wait_until(5, $gone);
        }
    }
    if ($how eq 'KILL') {
        # what a master killed this way leaves behind
        unlink "$n->{prefix}/logs/nginx.pid",
               glob("$n->{prefix}/*.sock"), glob("$n->{prefix}/logs/*.sock");
    }
    return $how;
}

# A reload (HUP to the master): 1 once the new workers run (and the old
# ones are gone, or 5 s passed), 0 when the master refused the new
# configuration.  http, files, workers and so on as in node_start()
# change the configuration first.
sub node_reload {
    my ($n, %arg) = @_;
    node_configure($n, %arg) if %arg;
    my $master = _master($n) or die "node_reload: $n->{name} does not run\n";
    my $log = "$n->{prefix}/logs/error.log";
    my %old = map { $_ => 1 } ClawTest::_workers_of($master);
    my $offset = -s $log // 0;
    kill 'HUP', $master or die "node_reload: kill HUP $master: $!\n";
    my $result;
    wait_until(15, sub {
        my $new = _slurp($log, $offset);
        # only what follows the master's own "reconfiguring"
        return 0 unless $new =~ /: reconfiguring\n(.*)\z/s;
        if ($1 =~ /\[emerg\]/) {
            $result = 0;
            return 1;
        }
        my @new = grep { !$old{$_} } ClawTest::_workers_of($master);
        return 0 unless @new >= $n->{workers};
        $result = 1;
        return 1;
    });
    die "node_reload: no reload of $n->{name} within 15 s:\n" . _tail($log)
        unless defined $result;
    wait_until(5, sub { !grep { ClawTest::_alive($_) } keys %old })
        if $result;
    return $result;
}

# The node's error log, all of it.
sub node_error_log {
    my ($n) = @_;
    return _slurp("$n->{prefix}/logs/error.log");
}

# nginx -t of the node's configuration: (exit code, what it printed).
sub node_test_config {
    my ($n) = @_;
    return _run(30, $n->{binary}, '-t', '-p', "$n->{prefix}/",
                '-c', 'conf/nginx.conf');
}

# A request to the node on 127.0.0.1:port: (status, body, head), a
# chunked body decoded; status 0 for no answer within 10 s, or none at
# all (head then says why: "connect: ...", "timeout").  Host: localhost
# unless a Host header is given.
sub node_http {
    my ($n, $method, $path, $body, @headers) = @_;
    my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                   PeerPort => $n->{port}, Timeout => 10)
        or return (0, '', "connect: $!");
    return _dechunk(http_exchange($sock, 10, $method, $path, $body,
                                  @headers));
}

# The same on a unix socket of the node (absolute, or relative to its
# prefix; "unix:" is allowed), with Host: admin unless given.
sub node_admin {
    my ($n, $socket, $method, $path, $body, @headers) = @_;
    $socket =~ s/^unix://;
    $socket = "$n->{prefix}/$socket" unless $socket =~ m{^/};
    my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $socket)
        or return (0, '', "connect: $!");
    push @headers, 'Host: admin' unless grep { /^host:/i } @headers;
    return _dechunk(http_exchange($sock, 10, $method, $path, $body,
                                  @headers));
}

# Writes the node's conf/nginx.conf and files again, as node_start() does
# (http, files, workers, log_level, main; what is not given stays), and
# nothing more: for node_test_config(), or a start or reload after it.
sub node_configure {
    my ($n, %arg) = @_;
    for (qw(http main log_level workers)) {
        $n->{$_} = $arg{$_} if defined $arg{$_};
    }
    my $p = $n->{prefix};
    my $modules = join '', map { "load_module $_;\n" }
                           split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '';
    # as the runner does: root's workers run as root, so that they may
    # write where the test writes
    my $user = $> == 0
        ? 'user ' . ($ENV{TEST_NGINX_WORKER_USER} || 'root') . ";\n" : '';
    my $conf = <<"_EOC_";
${modules}${user}daemon on;
master_process on;
worker_processes $n->{workers};
error_log logs/error.log @{[ $n->{log_level} // 'info' ]};
pid logs/nginx.pid;
@{[ $n->{main} // '' ]}
events {
    worker_connections 1024;
}

http {
    access_log logs/access.log;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    scgi_temp_path scgi_temp;
    uwsgi_temp_path uwsgi_temp;

$n->{http}
}
_EOC_
    my %files = (%{ $arg{files} // {} }, 'conf/nginx.conf' => $conf);
    for my $file (sort keys %files) {
        (my $text = $files{$file}) =~ s/\$NODE_PREFIX\b/$p/g;
        my $path = $file =~ m{^/} ? $file : "$p/$file";
        (my $dir = $path) =~ s{/[^/]*\z}{};
        make_path($dir);
        ClawTest::write_file($path, $text);
    }
}

# (the first name of node_configure, which t/cluster.t used)
*_node_write = \&node_configure;

sub _node_run {
    my ($n) = @_;
    my $p = $n->{prefix};
    my $log = "$p/logs/error.log";
    my ($rc, $out) = _run(30, $n->{binary}, '-p', "$p/",
                          '-c', 'conf/nginx.conf');
    die "node $n->{name} did not start (exit code $rc):\n$out" . _tail($log)
        if $rc;
    # the daemon exits its parent once its sockets listen, before it
    # writes its pid file and starts its workers
    my $master;
    my $up = wait_until(10, sub {
        $master //= _master($n) or return 0;
        return ClawTest::_workers_of($master) >= $n->{workers};
    });
    my $error = $up ? '' : "node $n->{name} did not run "
                           . ($master ? 'its workers' : 'a master') . "\n";
    $error ||= eval { wait_port($n->{port}, "node $n->{name}"); '' } // $@;
    if ($error) {
        # what did start stops, the log kept
        node_stop($n, grace => 1);
        die $error . _tail($log);
    }
    $n->{pid} = $master;
}

# the running master of a node, by its pid file
sub _master {
    my ($n) = @_;
    my ($pid) = _slurp("$n->{prefix}/logs/nginx.pid") =~ /^(\d+)/;
    return $pid && ClawTest::_alive($pid) ? $pid : undef;
}

# the temporary directory of the nodes and servers, for a test's own files
sub base { $BASE }

# The blocks of a cluster suite: the nginx of Test::Nginx is the tenants'
# container (on 127.0.0.1:port, "container\n" to every request) and
# serves the report that a block's init writes (ClawTest::report).
sub container_blocks {
    my ($port) = @_;
    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;

        $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location = /report.txt {
    }
_EOC_

        $block->set_value("http_config", <<"_EOC_");
    server {
        listen 127.0.0.1:$port;
        access_log off;
        return 200 "container\\n";
    }
_EOC_

        $block->set_value("request", "GET /report.txt")
            unless defined $block->request;
    });
}

# Stops the nodes when this test process goes, whichever way: a process
# under spawn()'s watcher, which ends it with TERM then, and which ends
# every master with a pid file under the nodes' directory (TERM, then
# KILL to its process group) when it gets TERM.  The END block below
# stops the nodes first, when it runs.
sub _guard {
    return if $GUARD;
    my $code = <<'_EOC_';
my $base = shift;
$SIG{TERM} = sub {
    my @masters;
    for my $file (glob "$base/*/logs/nginx.pid") {
        open my $fh, '<', $file or next;
        my ($pid) = (<$fh> // '') =~ /^(\d+)/ or next;
        open my $cmd, '<', "/proc/$pid/cmdline" or next;
        push @masters, $pid if (<$cmd> // '') =~ /^nginx: master process/;
    }
    kill 'TERM', @masters;
    for (1 .. 15) {
        last unless grep { kill 0, $_ } @masters;
        select undef, undef, undef, 0.1;
    }
    kill 'KILL', map { -$_ } grep { kill 0, $_ } @masters;
    exit 0;
};
sleep 1 while 1;
_EOC_
    $GUARD = spawn("$BASE/guard.log", {}, $^X, '-e', $code, $BASE);
}

END {
    my $failed = $?;
    local ($?, $!);
    if ($$ == $OWNER) {
        for my $n (@NODES) {
            eval { node_stop($n, grace => 5) };
        }
        for my $r (@REDIS) {
            eval { redis_stop($r) };
        }
        spawn_stop($GUARD) if $GUARD;
        my $passing = !$failed && !(defined &Test::Builder::new
                                    && !Test::Builder->new->is_passing);
        if ($passing && !$ENV{TEST_NGINX_NO_CLEAN}) {
            remove_tree($BASE);
        } else {
            print STDERR "# ClawCluster: nodes and redis files kept in $BASE\n";
        }
    }
}

# ---------------------------------------------------------------------------

# (exit code, stdout and stderr) of a command, killed (exit code 124)
# when it has not ended after $timeout seconds
sub _run {
    my ($timeout, @cmd) = @_;
    # its output into a file, not a pipe: a daemon may keep the pipe open
    # (stderr, under ASan) long after the command itself is done
    my $file = "$BASE/run-$$-" . ++$RUNS . ".out";
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        open STDOUT, '>', $file or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    my $deadline = time + $timeout;
    my $done;
    while (!($done = waitpid($pid, POSIX::WNOHANG()) == $pid)) {
        last if time > $deadline;
        sleep 0.02;
    }
    my $rc = $? >> 8;
    my $out = _slurp($file) // '';
    unlink $file;
    if (!$done) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        return (124, "$out($cmd[0] killed after $timeout s)\n");
    }
    return ($rc, $out);
}

sub _slurp {
    my ($file, $offset) = @_;
    open my $fh, '<', $file or return '';
    seek $fh, $offset, 0 if $offset;
    local $/;
    return scalar(<$fh>) // '';
}

# the last lines of a file, for a message
sub _tail {
    my ($file) = @_;
    my @lines = split /\n/, _slurp($file);
    splice @lines, 0, -20 if @lines > 20;
    return join '', map { "    $_\n" } "--- $file:", @lines;
}

sub _connects {
    my ($port) = @_;
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port,
                                Timeout => 1) or return 0;
    close $s;
    return 1;
}

sub _dechunk {
    my ($status, $body, $head) = @_;
    if ($head =~ /^Transfer-Encoding:\s*chunked/mi) {
        my (undef, $chunks) = ClawTest::chunked_parts("$head\r\n\r\n$body");
        $body = join '', @$chunks;
    }
    return ($status, $body, $head);
}

1;
