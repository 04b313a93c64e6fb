package ClawTest;

# Small helpers for the ngx_claw_module test files:
#
#   use lib 't/perl';
#   use ClawTest;
#
#   start_containers(['alice', '127.0.0.1:19101'],
#                    ['bob',   '[::1]:19102'],
#                    ['carol', 'unix:/tmp/carol.sock', '127.0.0.1:19103']);
#
# starts one t/bin/claw-container per entry (name, then one or more listen
# addresses), returns once all of them listen, and stops them when the test
# process ends, also when the test dies.
#
#   ws_handshake_request(path => '/chat?once=1', host => 'alice.claw.test',
#                        headers => ['Origin: http://x', [Cookie => 'a=b']])
#   . ws_frame('hi')
#
# is a complete raw request for Test::Nginx's raw_request (fixed key, so the
# expected Sec-WebSocket-Accept is ws_accept_for_fixed_key()), and
# ws_decode_frames($raw_response) lists the text payloads the server sent.
#
#   my $ws = ClawTest::ws_open(path => '/ws', host => 'alice.claw.test',
#                              headers => ['Authorization: Bearer t']);
#   ClawTest::ws_echo($ws, 'hi');                # "alice: hi", or undef
#   ClawTest::watch_closed([$ws, $stream], 1.5); # sets ->{closed_at}
#
# hold tunnels and streams (stream_open) in the test process itself,
# while its --- init code acts, and tell when nginx ended them.
#
#   my $pid = ClawTest::spawn($log, {VAR => 1}, 'server', '--port', 9);
#   ClawTest::wait_port(9, 'server');
#   ClawTest::wait_until(5, sub { ... });
#
# run servers beside nginx (t/perl/ClawAcme.pm, t/perl/ClawCluster.pm),
# ended with the test process however it ends.
#
# Test files run from the repository root; the container script is found
# relative to this file, so the current directory does not matter here.

use strict;
use warnings;

use Exporter qw(import);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use POSIX ();
use Time::HiRes qw(time sleep);
use Digest::SHA ();
use MIME::Base64 qw(encode_base64);
use IO::Socket::IP;

our @EXPORT = qw(
    start_containers
    ws_frame ws_handshake_request ws_accept_for_fixed_key ws_decode_frames
    sha256_hex
    servroot write_file nginx_reload
    claw_session http_get http_background http_hold hammer
    kill_workers tunnel_background http_request nginx_restart_hard
    fresh_zone
);
our @EXPORT_OK = qw(ws_accept_for ws_decode_all stop_containers
                    ws_open ws_echo stream_open watch_closed chunked_parts
                    spawn spawn_stop wait_port wait_until http_exchange);

my $BIN = File::Spec->rel2abs(
    File::Spec->catfile(dirname(__FILE__), '..', 'bin', 'claw-container'));

# The RFC 6455 example key and its accept value (section 1.3).  A fixed key
# keeps raw requests and expected responses static.
my $FIXED_KEY    = 'dGhlIHNhbXBsZSBub25jZQ==';
my $WS_GUID      = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

my $OWNER = $$;      # only the process that started containers stops them
my @PIDS;            # pids of running container daemons
my @RESTARTED;       # nginx masters started by nginx_restart_hard()
my @SPAWNED;         # watchers of the processes started by spawn()
my $DIR;             # pid files, logs, captured stderr

# ---------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------

sub start_containers {
    my @entries = @_;
    $DIR //= tempdir('claw-test-XXXXXX', TMPDIR => 1, CLEANUP => 1);

    for my $entry (@entries) {
        my ($name, @listen) = @$entry;
        die "start_containers: entry needs a name and a listen address\n"
            unless defined $name && @listen;

        my $pid_file = "$DIR/$name.pid";
        my $err_file = "$DIR/$name.err";
        my @cmd = ($^X, $BIN, '--name', $name,
                   (map { ('--listen', $_) } @listen),
                   '--daemon', '--pid-file', $pid_file,
                   '--log', "$DIR/$name.log",
                   # If this test is SIGKILLed (no END), the container
                   # still goes away instead of keeping its ports.
                   '--watch-pid', $$);

        # Run it with stderr captured, so that "Address already in use"
        # ends up in our error message instead of interleaved TAP output.
        my $pid = fork;
        die "start_containers: fork: $!\n" unless defined $pid;
        if (!$pid) {
            open STDERR, '>', $err_file or POSIX::_exit(126);
            open STDOUT, '>', '/dev/null';
            exec @cmd or POSIX::_exit(127);
        }
        waitpid($pid, 0);
        if ($? != 0) {
            my $why = slurp($err_file);
            chomp $why;
            die "start_containers: container '$name' did not start on "
                . join(', ', @listen) . ' (port busy?): '
                . ($why || 'exit status ' . ($? >> 8)) . "\n";
        }

        # --daemon returns only after every socket is bound and listening,
        # so there is nothing to poll for.  We deliberately do not probe by
        # connecting: that would use up connection number 1, which tests
        # may assert on.
        my $daemon_pid = slurp($pid_file);
        chomp $daemon_pid;
        die "start_containers: container '$name' wrote no pid file\n"
            unless $daemon_pid =~ /^\d+$/;
        die "start_containers: container '$name' died right after starting\n"
            unless kill 0, $daemon_pid;
        push @PIDS, $daemon_pid;
    }
    return;
}

sub stop_containers {
    return unless $$ == $OWNER && @PIDS;
    kill 'TERM', @PIDS;
    # The daemons are not our children (they detached), so poll.
    my $deadline = time + 3;
    while (time < $deadline) {
        @PIDS = grep { kill 0, $_ } @PIDS;
        last unless @PIDS;
        sleep 0.02;
    }
    kill 'KILL', @PIDS if @PIDS;
    @PIDS = ();
}

END {
    local ($?, $!);    # do not change the test's exit status
    stop_containers();
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return scalar <$fh>;
}

# ---------------------------------------------------------------------------
# WebSocket helpers
# ---------------------------------------------------------------------------

# One client frame: FIN set unless $fin is given and false (fragmentation
# tests), opcode 1 (text) unless given, always masked as clients must.  The
# mask is fixed so that raw requests are reproducible.
sub ws_frame {
    my ($payload, $opcode, $fin) = @_;
    $opcode //= 1;
    $fin    //= 1;
    # Character strings go out as UTF-8, as a text frame requires.
    utf8::encode($payload) if utf8::is_utf8($payload);
    my $len = length $payload;
    my $hdr = chr(($fin ? 0x80 : 0) | $opcode);
    if    ($len < 126)   { $hdr .= chr(0x80 | $len) }
    elsif ($len < 65536) { $hdr .= chr(0x80 | 126) . pack('n', $len) }
    else                 { $hdr .= chr(0x80 | 127) . pack('Q>', $len) }
    my $mask = "\x37\xfa\x21\x3d";
    return $hdr . $mask . ($payload ^ substr($mask x (int($len / 4) + 1), 0, $len));
}

# Raw upgrade request with the fixed key.  headers: strings "Name: value"
# or [name, value] pairs, appended after the standard ones.
sub ws_handshake_request {
    my (%arg) = @_;
    my $path = $arg{path} // '/';
    my $host = $arg{host} // 'localhost';
    my @extra = map { ref $_ ? "$_->[0]: $_->[1]" : $_ } @{ $arg{headers} // [] };
    return "GET $path HTTP/1.1\r\n"
        . "Host: $host\r\n"
        . "Upgrade: websocket\r\n"
        . "Connection: Upgrade\r\n"
        . "Sec-WebSocket-Key: $FIXED_KEY\r\n"
        . "Sec-WebSocket-Version: 13\r\n"
        . join('', map { "$_\r\n" } @extra)
        . "\r\n";
}

sub ws_accept_for {
    my ($key) = @_;
    return encode_base64(Digest::SHA::sha1($key . $WS_GUID), '');
}

sub ws_accept_for_fixed_key { ws_accept_for($FIXED_KEY) }    # s3pPLMBiTxaQ9kYGzzhZRbK+xOo=

# All complete frames in $bytes as hashes {opcode, payload}, fragments
# joined.  A leading HTTP response head (the 101) is skipped; an incomplete
# last frame is ignored.
sub ws_decode_all {
    my ($bytes) = @_;
    $bytes =~ s/\AHTTP\/.*?\r?\n\r?\n//s;
    my (@out, $frag);
    while (length $bytes >= 2) {
        my ($b0, $b1) = unpack 'CC', $bytes;
        my $len = $b1 & 0x7f;
        my $off = 2;
        if ($len == 126) {
            last if length $bytes < 4;
            $len = unpack 'n', substr($bytes, 2, 2);
            $off = 4;
        } elsif ($len == 127) {
            last if length $bytes < 10;
            $len = unpack 'Q>', substr($bytes, 2, 8);
            $off = 10;
        }
        my $masked = $b1 & 0x80;
        $off += 4 if $masked;
        last if length $bytes < $off + $len;
        my $payload = substr($bytes, $off, $len);
        if ($masked) {
            my $mask = substr($bytes, $off - 4, 4);
            $payload ^= substr($mask x (int($len / 4) + 1), 0, $len);
        }
        substr($bytes, 0, $off + $len, '');

        my ($fin, $opcode) = ($b0 & 0x80, $b0 & 0x0f);
        if ($opcode == 0 && $frag) {
            $frag->{payload} .= $payload;
        } elsif ($opcode >= 8) {
            push @out, { opcode => $opcode, payload => $payload };
            next;    # control frames may sit between fragments
        } else {
            $frag = { opcode => $opcode, payload => $payload };
        }
        if ($fin && $frag) {
            push @out, $frag;
            undef $frag;
        }
    }
    return @out;
}

# Text payloads only, in order: what a test usually compares.
sub ws_decode_frames {
    my ($bytes) = @_;
    return map { $_->{payload} } grep { $_->{opcode} == 1 } ws_decode_all($bytes);
}

# ---------------------------------------------------------------------------

sub sha256_hex { Digest::SHA::sha256_hex(@_) }

# One HTTP/1.1 request to the nginx under test (for --- init code, which
# cannot use the block's own request); returns the status code.
# A connection to the nginx under test.  A refused connection is tried
# again for a while: under valgrind nginx listens seconds after its pid
# file is written, and the init code of a block runs before that.
sub connect_nginx {
    my ($who, $timeout) = @_;
    my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
    my $deadline = time + ($ENV{TEST_NGINX_USE_VALGRIND} ? 30 : 2);
    while (1) {
        my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                       PeerPort => $port, Timeout => $timeout);
        return $sock if $sock;
        die "$who: connect to port $port: $!\n"
            unless $!{ECONNREFUSED} && time < $deadline;
        select(undef, undef, undef, 0.1);
    }
}

sub http_get {
    my ($path, @headers) = @_;
    my $sock = connect_nginx('http_get', 5);
    print $sock "GET $path HTTP/1.1\r\n", map({ "$_\r\n" } @headers),
                "Connection: close\r\n\r\n";
    my $line = <$sock> // '';
    close $sock;
    return $line =~ m{^HTTP/1\.\d (\d{3})} ? $1 : 0;
}

# A whole request with a method and a body; returns (status, body, head).
sub http_request {
    my ($method, $path, $body, @headers) = @_;
    return http_exchange(connect_nginx('http_request', 10), undef,
                         $method, $path, $body, @headers);
}

# The same request on a connected socket (TCP or unix), which it closes:
# HTTP/1.1 with Connection: close (and Host: localhost unless a Host
# header is given), the answer read until the server closes.  With a
# timeout in seconds, an answer not complete by then gives
# (0, '', 'timeout').  The body is as sent (chunks not decoded).
sub http_exchange {
    my ($sock, $timeout, $method, $path, $body, @headers) = @_;
    local $SIG{PIPE} = 'IGNORE';
    $body //= '';
    push @headers, "Host: localhost" unless grep { /^host:/i } @headers;
    $sock->autoflush(1);
    print $sock "$method $path HTTP/1.1\r\n", map({ "$_\r\n" } @headers),
                "Content-Length: " . length($body) . "\r\n",
                "Connection: close\r\n\r\n", $body;
    my $resp = '';
    if (defined $timeout) {
        my $deadline = time + $timeout;
        while (1) {
            my $left = $deadline - time;
            my $rin = '';
            vec($rin, fileno $sock, 1) = 1;
            if ($left <= 0 || select(my $rout = $rin, undef, undef, $left) < 1) {
                close $sock;
                return (0, '', 'timeout');
            }
            last unless sysread $sock, $resp, 65536, length $resp;
        }
    } else {
        local $/;
        $resp = <$sock> // '';
    }
    close $sock;
    my ($head, $content) = split /\r\n\r\n/, $resp, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
    return ($status // 0, $content // '', $head // '');
}

# kill -9 of the whole nginx under test, then the same nginx started
# again: what was acknowledged before must still be there.
#
# Under valgrind (TEST_NGINX_USE_VALGRIND) nginx runs in the foreground
# ("daemon off" in nginx.conf) under valgrind, as the runner starts it:
# it is started again the same way, with the command line of the master
# killed (valgrind's, /proc/<pid>/cmdline), as a child of this process
# whose stderr (valgrind's reports) is ours, and this waits until it runs
# workers and takes connections.  The runner stops it by its pid file, as
# the nginx it started.
sub nginx_restart_hard {
    my $root = servroot();
    my $master = slurp("$root/logs/nginx.pid");
    chomp $master;
    die "nginx_restart_hard: no master pid\n" unless $master =~ /^\d+$/;
    my @argv = split /\0/, slurp("/proc/$master/cmdline");
    my $valgrind = $ENV{TEST_NGINX_USE_VALGRIND} && @argv
                   && $argv[0] =~ m{valgrind[^/]*\z};
    my @workers = kill_workers(0);
    # the daemon leads its own process group, workers and all: killing the
    # group leaves no worker behind, whatever it was doing
    my ($pgrp) = slurp("/proc/$master/stat") =~ /^\d+ \(.*\) \S \d+ (\d+)/s;
    kill 'KILL', ($pgrp && $pgrp == $master) ? -$master : ($master, @workers);
    for (1 .. ($valgrind ? 600 : 100)) {
        last unless grep { _alive($_) } $master, @workers;
        sleep 0.05;
    }
    # a master killed this way leaves its unix sockets behind
    unlink glob("$root/logs/*.sock");

    if ($valgrind) {
        # Debian's /usr/bin/valgrind is a script that sets the environment
        # and runs valgrind.bin, which is what the process shows
        (my $wrapper = $argv[0]) =~ s{valgrind\.bin\z}{valgrind};
        $argv[0] = $wrapper if -x $wrapper;
        my $pid = fork // die "nginx_restart_hard: fork: $!\n";
        if ($pid == 0) {
            open STDOUT, '>', '/dev/null';
            exec @argv or POSIX::_exit(127);
        }
        push @RESTARTED, $pid;
        # up when its pid file names it, its workers run and it takes
        # connections
        my $deadline = time + 120;
        while (1) {
            die "nginx_restart_hard: nginx under valgrind did not start again\n"
                if time > $deadline || waitpid($pid, POSIX::WNOHANG()) == $pid;
            my $new = slurp("$root/logs/nginx.pid");
            last if $new =~ /^(\d+)/ && $1 == $pid && _workers_of($pid);
            sleep 0.2;
        }
        close connect_nginx('nginx_restart_hard', 5);
        sleep 1;
        return;
    }

    my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
    system("$nginx -p $root/ -c $root/conf/nginx.conf -e $root/logs/error.log") == 0
        or die "nginx_restart_hard: nginx did not start again\n";
    sleep 0.5;
    my $new = slurp("$root/logs/nginx.pid");
    push @RESTARTED, $1 if $new =~ /^(\d+)/;
}

# Whether a process runs (a zombie, killed and not yet reaped, does not).
sub _alive {
    my ($pid) = @_;
    return 0 unless kill 0, $pid;
    return slurp("/proc/$pid/stat") !~ /^\d+ \(.*\) Z/s;
}

# An nginx this file started itself is stopped when the file ends, in case
# the runner only knew the one it started (under valgrind it may take a
# minute to write its leak report).

END {
    local ($?, $!);
    if ($$ == $OWNER && @RESTARTED) {
        kill 'QUIT', @RESTARTED;
        my $deadline = time + ($ENV{TEST_NGINX_USE_VALGRIND} ? 120 : 5);
        while (time < $deadline) {
            1 while waitpid(-1, POSIX::WNOHANG()) > 0;
            last unless grep { _alive($_) } @RESTARTED;
            sleep 0.05;
        }
        kill 'KILL', grep { _alive($_) } @RESTARTED;
    }
}

# ---------------------------------------------------------------------------
# Servers run beside the nginx under test (a CA, a Redis).  Not exported
# by default: use ClawTest qw(spawn wait_port wait_until).
# ---------------------------------------------------------------------------

# Runs a command in the background under a watcher that ends it when
# this test process goes, even by kill -9, so that nothing outlives the
# test; stdout and stderr go to $log, %$env is added to the environment.
# Returns the watcher's pid, for spawn_stop().
sub spawn {
    my ($log, $env, @cmd) = @_;
    my $parent = $$;
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        my $kid = fork // POSIX::_exit(125);
        if ($kid == 0) {
            $ENV{$_} = $env->{$_} for keys %$env;
            open STDOUT, '>', $log or POSIX::_exit(126);
            open STDERR, '>&', \*STDOUT;
            exec @cmd or POSIX::_exit(127);
        }
        my $stop = 0;
        $SIG{TERM} = sub { $stop = 1 };
        while (waitpid($kid, POSIX::WNOHANG()) == 0) {
            if ($stop || getppid() != $parent) {
                kill 'TERM', $kid;
                for (1 .. 50) {
                    last if waitpid($kid, POSIX::WNOHANG()) != 0;
                    sleep 0.05;
                }
                kill 'KILL', $kid;
                waitpid $kid, 0;
                last;
            }
            sleep 0.1;
        }
        POSIX::_exit(0);
    }
    push @SPAWNED, $pid;
    return $pid;
}

# Ends one command of spawn() (TERM, KILL after 2.5 s) and returns once
# it is gone.
sub spawn_stop {
    my ($pid) = @_;
    return unless grep { $_ == $pid } @SPAWNED;
    @SPAWNED = grep { $_ != $pid } @SPAWNED;
    kill 'TERM', $pid;
    waitpid $pid, 0;
}

END {
    local ($?, $!);
    if ($$ == $OWNER && @SPAWNED) {
        kill 'TERM', @SPAWNED;
        for (1 .. 100) {
            last unless grep { waitpid($_, POSIX::WNOHANG()) == 0 } @SPAWNED;
            sleep 0.05;
        }
        kill 'KILL', grep { kill 0, $_ } @SPAWNED;
        waitpid $_, 0 for @SPAWNED;
        @SPAWNED = ();
    }
}

# Waits (5 s at most) until 127.0.0.1:$port takes connections; dies
# naming $what if it does not.
sub wait_port {
    my ($port, $what) = @_;
    for (1 .. 100) {
        my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                    PeerPort => $port, Timeout => 1);
        if ($s) { close $s; return }
        sleep 0.05;
    }
    die "$what did not listen on 127.0.0.1:$port\n";
}

# Calls the code every $interval seconds (default 0.05) until it returns
# true, at most $secs seconds, and once more at the end; returns what it
# returned last.
sub wait_until {
    my ($secs, $code, $interval) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        my $r = $code->();
        return $r if $r;
        sleep $interval // 0.05;
    }
    return $code->();
}

# The same request from a child process, in the background (a slow request
# that must be in flight while the block's own request is made).  The
# child is reaped when the test ends.
my @BACKGROUND;

sub http_background {
    my @args = @_;
    my $pid = fork // die "http_background: fork: $!\n";
    if ($pid == 0) {
        eval { http_get(@args) };
        POSIX::_exit(0);
    }
    push @BACKGROUND, $pid;
    return $pid;
}

END {
    local ($?, $!);
    kill 'TERM', @BACKGROUND if @BACKGROUND && $$ == $OWNER;
    waitpid $_, 0 for @BACKGROUND;
}

# Sends a request and returns the open socket without reading the answer:
# closing it is a client that gives up mid-request.
sub http_hold {
    my ($path, @headers) = @_;
    my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
    my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port,
                                   Timeout => 5)
        or die "http_hold: connect to port $port: $!\n";
    print $sock "GET $path HTTP/1.1\r\n", map({ "$_\r\n" } @headers), "\r\n";
    return $sock;
}

# Opens a WebSocket tunnel through nginx from a child process, which keeps
# it open for a while and then closes it; returns once the tunnel is up.
sub tunnel_background {
    my ($seconds, $path, @headers) = @_;
    pipe(my $r, my $w) or die "tunnel_background: pipe: $!\n";
    my $pid = fork // die "tunnel_background: fork: $!\n";
    if ($pid == 0) {
        close $r;
        my $sock = http_hold($path, @headers, "Upgrade: websocket",
                             "Connection: Upgrade",
                             "Sec-WebSocket-Key: $FIXED_KEY",
                             "Sec-WebSocket-Version: 13");
        my $status = <$sock> // '';
        print $w $status;
        close $w;
        sleep $seconds;
        close $sock;
        POSIX::_exit(0);
    }
    close $w;
    my $status = <$r> // '';
    push @BACKGROUND, $pid;
    die "tunnel_background: no tunnel: $status\n"
        unless $status =~ m{^HTTP/1\.1 101};
    return $pid;
}

# Sends a signal to the worker processes of the nginx under test (master_on)
# and returns their pids.
sub kill_workers {
    my ($sig) = @_;
    my $master = slurp(servroot() . '/logs/nginx.pid');
    chomp $master;
    die "kill_workers: no master pid\n" unless $master =~ /^\d+$/;

    my @workers = _workers_of($master);
    kill $sig, @workers if @workers;
    # under valgrind a worker takes a while to die and its replacement a
    # while to start: wait until the master runs a full set again
    _valgrind_settle($master, @workers) if $sig && $sig !~ /^(?:HUP|USR[12]|0)$/;
    return @workers;
}

# Under valgrind (only): waits, up to a minute, until the master runs as
# many workers as nginx.conf asks for, none of them one of @gone.
sub _valgrind_settle {
    my ($master, @gone) = @_;
    return unless $ENV{TEST_NGINX_USE_VALGRIND};
    my $conf = slurp(servroot() . '/conf/nginx.conf');
    my ($n) = $conf =~ /^\s*worker_processes\s+(\d+)/m;
    return unless $n && $conf =~ /^\s*master_process\s+on\b/m;
    my %gone = map { $_ => 1 } @gone;
    my $deadline = time + 60;
    while (time < $deadline) {
        last if grep({ !$gone{$_} && _alive($_) } _workers_of($master)) >= $n;
        sleep 0.1;
    }
}

# The worker processes of an nginx master: its children, by their parent,
# not by the "worker process" title, which nginx under valgrind does not
# show (every process of it shows valgrind's command line), and which a
# worker just forked does not show yet.  A cache manager or loader is no
# worker (told by its title; no suite configures one under valgrind).
sub _workers_of {
    my ($master) = @_;
    return grep { slurp("/proc/$_/cmdline") !~ /^nginx: cache / }
                _children($master);
}

# The children of a process: /proc/<pid>/task/<tid>/children where the
# kernel has it, else every process in /proc whose parent it is.
sub _children {
    my ($ppid) = @_;
    my @tasks = glob("/proc/$ppid/task/*/children");
    if (@tasks && -r $tasks[0]) {
        my %kids;
        $kids{$_} = 1 for map { split ' ', slurp($_) } @tasks;
        return sort { $a <=> $b } keys %kids;
    }
    opendir my $dir, '/proc' or die "_children: /proc: $!\n";
    my @kids;
    for my $pid (grep { /^\d+$/ } readdir $dir) {
        my ($parent) = slurp("/proc/$pid/stat") =~ /^\d+ \(.*\) \S (\d+)/s
            or next;
        push @kids, $pid if $parent == $ppid;
    }
    return sort { $a <=> $b } @kids;
}

# Keep-alive load from several client processes for a while; returns the
# count of answers by status and the seconds it took, e.g.
# ({200 => 66, 429 => 1830}, 3.01).
sub hammer {
    my (%arg) = @_;
    my $clients = $arg{clients} // 4;
    my $seconds = $arg{seconds} // 3;
    my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
    my $req = "GET " . ($arg{path} // '/') . " HTTP/1.1\r\n"
              . join('', map { "$_\r\n" } @{ $arg{headers} // [] }) . "\r\n";

    my @kids;
    my $start = time;
    for (1 .. $clients) {
        pipe(my $r, my $w) or die "hammer: pipe: $!\n";
        my $pid = fork // die "hammer: fork: $!\n";
        if ($pid == 0) {
            close $r;
            my %count;
            my $deadline = $start + $seconds;
            my $sock;
            while (time < $deadline) {
                $sock //= IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                              PeerPort => $port);
                last unless $sock;
                print $sock $req;
                my $status = <$sock>;
                if (!defined $status) { undef $sock; next }
                my ($code) = $status =~ m{^HTTP/1\.1 (\d{3})};
                my $len = 0;
                while (my $h = <$sock>) {
                    last if $h eq "\r\n";
                    $len = $1 if $h =~ /^Content-Length:\s*(\d+)/i;
                }
                read($sock, my $body, $len) if $len;
                $count{$code // 0}++;
            }
            print $w join(' ', %count), "\n";
            close $w;
            POSIX::_exit(0);
        }
        close $w;
        push @kids, [$pid, $r];
    }

    my %total;
    for my $kid (@kids) {
        my $fh = $kid->[1];
        my %count = split ' ', (<$fh> // '');
        $total{$_} += $count{$_} for keys %count;
        waitpid $kid->[0], 0;
    }
    return (\%total, time - $start);
}

# A zone of the block's own: in Test::Nginx's HUP mode nginx is reloaded
# between blocks, and a zone of the same name and size is kept, with its
# limit state, failure records and counters (as it should be); blocks that
# count on a fresh zone name it after themselves.
sub fresh_zone {
    my ($block) = @_;
    my ($n) = ($block->name // '') =~ /TEST (\d+)/;
    my $conf = $block->http_config;
    return unless defined $conf && defined $n;
    $conf =~ s/\bclaw_zone claw:/claw_zone claw_t$n:/g;
    $block->set_value("http_config", $conf);
}

# A session cookie value as the module mints it, written from the format
# (base64url of version 1, expiry, the first 8 bytes of the token's digest
# and HMAC-SHA256(secret, "claw-session-v1\0" id "\0" expiry digest)), so
# the tests check the codec against a second implementation.
sub claw_session {
    my ($secret, $id, $token, $expiry) = @_;
    my $digest = Digest::SHA::sha256($token);
    my $mac = Digest::SHA::hmac_sha256(
        "claw-session-v1\0$id\0" . pack('Q>', $expiry) . $digest, $secret);
    return MIME::Base64::encode_base64url(
        chr(1) . pack('Q>', $expiry) . substr($digest, 0, 8) . $mac);
}

# ---------------------------------------------------------------------------
# The nginx under test, for --- init code (which runs once nginx is up)
# ---------------------------------------------------------------------------

sub servroot { $ENV{TEST_NGINX_SERVER_ROOT} // File::Spec->rel2abs('t/servroot') }

# Writes a file atomically (as the admin API does), relative to the
# server root unless absolute.
sub write_file {
    my ($file, $content) = @_;
    $file = servroot() . "/$file" unless $file =~ m{^/};
    open my $fh, '>', "$file.tmp" or die "write_file: $file.tmp: $!\n";
    print $fh $content;
    close $fh or die "write_file: $file.tmp: $!\n";
    rename "$file.tmp", $file or die "write_file: rename $file: $!\n";
}

# Sends SIGHUP to the master and waits until it has either started new
# workers or logged why the new configuration was refused.  Needs
# master_on(); returns 1 for a reload that took effect, 0 for a refused one.
# reload() below, giving the old workers at most 0.3 s to go.
sub nginx_reload {
    my (%arg) = @_;
    return reload(timeout => $arg{timeout} // 10, settle => $arg{settle} // 0.3);
}

# ---------------------------------------------------------------------------
# Fault and reload suites (t/faults.t, t/reload.t, t/badinput.t).  Not
# exported: call them as ClawTest::name(...).
# ---------------------------------------------------------------------------

# Keep-alive load from several client processes until load_stop(): each
# client sends its request, reads the whole answer, waits "pause" seconds
# and goes on, on one connection while the server keeps it.  A connection
# the server closes with no byte of an answer (an idle keep-alive
# connection closed by a worker that shuts down) is "retried" on a new one,
# as HTTP clients do; an answer cut short is "broken"; a connect that
# fails is "refused"; no answer within "timeout" seconds is "timeout".
sub load_start {
    my (%arg) = @_;
    my $clients = $arg{clients} // 4;
    my $pause   = $arg{pause} // 0.01;
    my $timeout = $arg{timeout} // 5;
    my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
    my @paths = ref $arg{path} ? @{ $arg{path} } : ($arg{path} // '/');
    my $headers = join('', map { "$_\r\n" } @{ $arg{headers} // [] });

    my @kids;
    for my $n (1 .. $clients) {
        pipe(my $r, my $w) or die "load_start: pipe: $!\n";
        my $pid = fork // die "load_start: fork: $!\n";
        if ($pid == 0) {
            close $r;
            my $stop = 0;
            $SIG{TERM} = sub { $stop = 1 };
            my %c = (requests => 0, retried => 0, broken => 0, refused => 0,
                     timeout => 0);
            my ($sock, $i);
            while (!$stop) {
                if (!$sock) {
                    $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                                PeerPort => $port,
                                                Timeout => $timeout);
                    if (!$sock) { $c{refused}++; sleep 0.05; next }
                }
                my $path = $paths[$i++ % @paths];
                my ($status, $got) = _load_one($sock, "GET $path HTTP/1.1\r\n"
                                               . $headers . "\r\n", $timeout);
                if (!defined $status) {
                    close $sock;
                    undef $sock;
                    # nothing at all: the keep-alive race, tried again
                    if ($got eq '') { $c{retried}++; next }
                    $c{$got eq 'timeout' ? 'timeout' : 'broken'}++;
                    $c{requests}++;
                    next;
                }
                $c{requests}++;
                $c{"s$status"}++;
                sleep $pause if $pause > 0;
            }
            print $w join(' ', %c), "\n";
            close $w;
            POSIX::_exit(0);
        }
        close $w;
        push @kids, [$pid, $r];
    }
    return { kids => \@kids, start => time };
}

# One request on an open connection: (status) for a whole answer, or
# (undef, '') when the connection closed before any byte, (undef,
# 'timeout') or (undef, 'broken').
sub _load_one {
    my ($sock, $req, $timeout) = @_;
    local $SIG{ALRM} = sub { die "timeout\n" };
    my ($status, $buf) = (undef, '');
    my $ok = eval {
        alarm $timeout;
        print $sock $req or die "broken\n";
        my $line = <$sock>;
        if (!defined $line) { alarm 0; return 1 }
        $buf = $line;
        ($status) = $line =~ m{^HTTP/1\.[01] (\d{3}) };
        die "broken\n" unless defined $status;
        my ($len, $chunked, $close) = (undef, 0, 0);
        while (1) {
            my $h = <$sock>;
            die "broken\n" unless defined $h;
            last if $h eq "\r\n";
            $len = $1 if $h =~ /^Content-Length:\s*(\d+)/i;
            $chunked = 1 if $h =~ /^Transfer-Encoding:\s*chunked/i;
            $close = 1 if $h =~ /^Connection:\s*close/i;
        }
        if ($chunked) {
            while (1) {
                my $size = <$sock>;
                die "broken\n" unless defined $size && $size =~ /^([0-9a-f]+)/i;
                my $n = hex $1;
                my $got = 0;
                while ($got < $n + 2) {
                    my $r = read($sock, my $b, $n + 2 - $got);
                    die "broken\n" unless $r;
                    $got += $r;
                }
                if ($n == 0) { last }
            }
        } elsif (defined $len) {
            my $got = 0;
            while ($got < $len) {
                my $r = read($sock, my $b, $len - $got);
                die "broken\n" unless $r;
                $got += $r;
            }
        } else {
            $close = 1;
            1 while read($sock, my $b, 65536);
        }
        alarm 0;
        # the server closes after this answer: not an error
        $_[0] = undef if $close;
        1;
    };
    alarm 0;
    if (!$ok) {
        my $why = $@ =~ /timeout/ ? 'timeout' : 'broken';
        return (undef, $why);
    }
    return defined $status ? ($status) : (undef, '');
}

# Stops the clients of load_start() and returns their counts added up,
# e.g. {requests => 812, s200 => 812, retried => 3, broken => 0,
# refused => 0, timeout => 0, seconds => 6.1}.
sub load_stop {
    my ($load) = @_;
    kill 'TERM', map { $_->[0] } @{ $load->{kids} };
    my %total = (requests => 0, retried => 0, broken => 0, refused => 0,
                 timeout => 0);
    for my $kid (@{ $load->{kids} }) {
        my $fh = $kid->[1];
        my %c = split ' ', (<$fh> // '');
        $total{$_} += $c{$_} for keys %c;
        waitpid $kid->[0], 0;
    }
    $total{seconds} = sprintf '%.1f', time - $load->{start};
    return \%total;
}

# A request from a child process whose status (0: no answer) is read back
# later with background_status(): requests that must be in flight while
# the test goes on (a hanging container) and whose answers matter.
sub http_status_background {
    my ($path, @headers) = @_;
    pipe(my $r, my $w) or die "http_status_background: pipe: $!\n";
    my $pid = fork // die "http_status_background: fork: $!\n";
    if ($pid == 0) {
        close $r;
        my $t0 = time;
        my $status = eval { http_get($path, @headers) } // 0;
        printf $w "%s %.3f\n", $status, time - $t0;
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    return [$pid, $r];
}

# (status, seconds) of a request of http_status_background()
sub background_status {
    my ($bg) = @_;
    my $fh = $bg->[1];
    my $line = <$fh> // '0 0';
    waitpid $bg->[0], 0;
    return split ' ', $line;
}

# Raw bytes to the nginx under test; returns everything it answers until
# it closes the connection or "timeout" seconds pass.
sub http_raw {
    my ($bytes, $timeout) = @_;
    $timeout //= 5;
    my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
    my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port,
                                   Timeout => 5)
        or die "http_raw: connect to port $port: $!\n";
    require IO::Select;
    print $sock $bytes;
    my $resp = '';
    my $deadline = time + $timeout;
    my $sel = IO::Select->new($sock);
    while (time < $deadline) {
        last unless $sel->can_read($deadline - time);
        my $n = sysread $sock, my $buf, 65536;
        last unless $n;
        $resp .= $buf;
    }
    close $sock;
    return $resp;
}

# The master of the nginx under test: the pid file, or where there is
# none (the project's runner removes logs/nginx.pid between blocks in HUP
# mode, the real one keeps it) the process titled "nginx: master process"
# with this server root.
sub master_pid {
    my $pid = slurp(servroot() . '/logs/nginx.pid');
    chomp $pid;
    return $pid if $pid =~ /^\d+$/ && kill 0, $pid;

    my $root = servroot();
    opendir my $dir, '/proc' or die "master_pid: /proc: $!\n";
    for my $p (grep { /^\d+$/ } readdir $dir) {
        my $cmd = slurp("/proc/$p/cmdline");
        return $p if $cmd =~ /^nginx: master process .*-p \Q$root\E\/? /;
    }
    die "master_pid: no nginx master for $root\n";
}

# The worker processes of that master (master_on), found as kill_workers()
# finds them (under valgrind once the master runs a full set: a test
# that kills workers again and again finds their replacements).
sub worker_pids {
    my $master = master_pid();
    _valgrind_settle($master);
    return _workers_of($master);
}

# nginx_reload() with master_pid(): 1 for a reload in force, 0 for one
# refused; waits until the new workers run and the old ones are gone (or
# "settle" seconds passed), so that what follows meets the new workers.
sub reload {
    my (%arg) = @_;
    my $timeout = $arg{timeout} // 30;
    my $log = servroot() . '/logs/error.log';
    my $pid = master_pid();

    my @old = worker_pids();
    # An nginx that has only just started (its pid file is written before
    # it starts its workers) takes a HUP before it has started them, logs
    # "reconfiguring" at once and "start worker process" for its first
    # workers after that: wait until it runs workers, it then takes the
    # HUP only once they are all started.
    my $up = time + $timeout;
    while (!@old && time < $up) {
        sleep 0.05;
        @old = worker_pids();
    }
    my $offset = -s $log // 0;
    kill 'HUP', $pid or die "reload: kill HUP $pid: $!\n";

    my $deadline = time + $timeout;
    while (time < $deadline) {
        sleep 0.05;
        open my $fh, '<', $log or next;
        seek $fh, $offset, 0;
        local $/;
        my $new = <$fh> // '';
        # only what follows the master's own "reconfiguring" (the signal
        # is logged as "..., reconfiguring" first)
        next unless $new =~ /: reconfiguring\n(.*)\z/s;
        my $after = $1;
        return 0 if $after =~ /\[emerg\]/;
        # the new workers
        next unless $after =~ /start worker process/;
        my $settle = time + ($arg{settle} // 5);
        while (time < $settle && grep { kill 0, $_ } @old) {
            sleep 0.05;
        }
        return 1;
    }
    die "reload: no reload within ${timeout}s\n";
}

# What --- init found, for the block's own request to fetch and compare:
# a location serving html/report.txt (see t/faults.t) turns checks made
# in init into a response body that the suite compares line by line.
sub report {
    my (@lines) = @_;
    write_file('html/report.txt', join('', map { "$_\n" } @lines));
}

# Whether the error log since $offset has a line matching $re; with no
# offset, the whole log.
sub error_log_has {
    my ($re, $offset) = @_;
    my $log = servroot() . '/logs/error.log';
    open my $fh, '<', $log or return 0;
    seek $fh, $offset // 0, 0;
    while (my $line = <$fh>) {
        return 1 if $line =~ $re;
    }
    return 0;
}



# ---------------------------------------------------------------------------
# Connections held by the test process itself (t/revoke.t): tunnels and
# streams that stay open while --- init code acts (an admin API call, a
# reload) and are then watched for how, and when, they end.  Not
# exported: call them as ClawTest::name(...).
# ---------------------------------------------------------------------------

# seconds a wait for nginx may take: valgrind makes nginx many times slower
sub patience { $_[0] * ($ENV{TEST_NGINX_USE_VALGRIND} ? 10 : 1) }

# Reads what the socket has within $timeout seconds into $c->{buf};
# false once the peer closed (or reset) the connection, when
# $c->{closed_at} says when that was seen.
sub _fill {
    my ($c, $timeout) = @_;
    return 0 if $c->{closed_at};
    my $rin = '';
    vec($rin, fileno $c->{sock}, 1) = 1;
    my $n = select(my $rout = $rin, undef, undef, $timeout);
    return 1 unless $n > 0;
    my $got = sysread $c->{sock}, $c->{buf}, 65536, length $c->{buf};
    if (!$got) {
        $c->{closed_at} = time;
        return 0;
    }
    return 1;
}

# A WebSocket tunnel opened through the nginx under test, held by this
# process: ws_handshake_request()'s arguments.  Returns, once the answer's
# head and (for a 101) the container's greeting are in, a hash with
# status (0: no answer), head, pid (the answer's X-Pid header, which the
# suite adds with $pid: the worker holding the tunnel), hello (the
# greeting) and the socket; ws_echo() and watch_closed() take it.
sub ws_open {
    my (%arg) = @_;
    my $c = { sock => connect_nginx('ws_open', 5), buf => '', status => 0,
              seen => 0 };
    $c->{sock}->autoflush(1);
    syswrite $c->{sock}, ws_handshake_request(%arg);
    my $deadline = time + patience(5);
    while (time < $deadline) {
        if (!defined $c->{head} && $c->{buf} =~ s/\A(.*?\r\n)\r\n//s) {
            $c->{head} = $1;
            ($c->{status}) = $c->{head} =~ m{^HTTP/1\.1 (\d{3})};
            ($c->{pid}) = $c->{head} =~ /^X-Pid: (\d+)/mi;
            last unless $c->{status} == 101;
        }
        if (defined $c->{head}) {
            my @text = ws_decode_frames($c->{buf});
            if (@text) {
                $c->{hello} = $text[0];
                $c->{seen} = 1;
                last;
            }
        }
        _fill($c, $deadline - time) or last;
    }
    return $c;
}

# Sends a text message on a tunnel of ws_open(); returns the container's
# answer to it, or undef when the tunnel closed or no answer came within
# $timeout seconds (default 3).
sub ws_echo {
    my ($c, $msg, $timeout) = @_;
    return undef if $c->{closed_at};
    local $SIG{PIPE} = 'IGNORE';
    syswrite($c->{sock}, ws_frame($msg)) or return undef;
    my $deadline = time + patience($timeout // 3);
    while (time < $deadline) {
        my @text = ws_decode_frames($c->{buf});
        if (@text > $c->{seen}) {
            $c->{seen} = @text;
            return $text[-1];
        }
        _fill($c, $deadline - time) or return undef;
    }
    return undef;
}

# A GET through the nginx under test whose answer is read later, by
# watch_closed(): a stream that must be in flight while the test acts.
# Returns a hash with the socket and the time it was sent.
sub stream_open {
    my ($path, @headers) = @_;
    my $c = { sock => connect_nginx('stream_open', 5), buf => '',
              opened_at => time };
    syswrite $c->{sock}, "GET $path HTTP/1.1\r\n"
        . join('', map { "$_\r\n" } @headers) . "Connection: close\r\n\r\n";
    return $c;
}

# Reads every connection of the list (of ws_open() or stream_open())
# until each has been closed by nginx or $seconds have passed; sets
# closed_at on those that closed.  Returns how many are still open.
sub watch_closed {
    my ($conns, $seconds) = @_;
    my $deadline = time + $seconds;
    while (1) {
        my @open = grep { !$_->{closed_at} } @$conns;
        return 0 unless @open;
        my $left = $deadline - time;
        return scalar @open if $left <= 0;
        my $rin = '';
        vec($rin, fileno $_->{sock}, 1) = 1 for @open;
        my $n = select(my $rout = $rin, undef, undef,
                       $left < 0.05 ? $left : 0.05);
        next unless $n > 0;
        for my $c (@open) {
            _fill($c, 0) if vec($rout, fileno $c->{sock}, 1);
        }
    }
}

# An answer as read off the wire, with a chunked body: (status, the data
# of the chunks in order, whether the last, zero-length chunk came).
sub chunked_parts {
    my ($raw) = @_;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
    my (@chunks, $last);
    $body //= '';
    while ($body =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r\n//) {
        my $size = hex $1;
        if ($size == 0) { $last = 1; last }
        last if length $body < $size + 2;
        push @chunks, substr($body, 0, $size);
        substr($body, 0, $size + 2, '');
    }
    return ($status // 0, \@chunks, $last ? 1 : 0);
}

1;
