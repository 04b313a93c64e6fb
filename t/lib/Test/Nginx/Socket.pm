package Test::Nginx::Socket;

# A small, clean-room, Test::Nginx::Socket-compatible test runner.
#
# It implements the subset of the Test::Nginx::Socket (CPAN, 0.33) data
# format that this project's t/*.t suites use, on top of Debian's Test::Base.
# It is only put on @INC (prove -I t/lib) when the real Test::Nginx is not
# installed; the same .t files must behave identically under both.  The
# supported subset and the known deviations are listed in t/lib/README.md
# and in the POD at the end of this file.
#
# Written from the real module's documentation and from its observed
# behaviour (generated nginx.conf, bytes on the wire, TAP output); no code
# was taken from it.

use strict;
use warnings;

# Load Test::Base without calling its import(): the .t file's
# "use Test::Nginx::Socket ..." must be the first import so that Test::Base
# picks this class (or a subclass of it) as its default class.
use Test::Base ();
our @ISA = ('Test::Base');

use Test::More ();
use Test::Builder ();
use Test::LongString ();
use Text::Diff ();
use HTTP::Headers ();
use IO::Socket::INET ();
use IO::Select ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Time::HiRes qw(time sleep);
use File::Find qw(find);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use File::Basename qw(dirname);
use Cwd ();
use POSIX qw(WNOHANG);
use List::Util qw(shuffle min);

our $VERSION = '0.01';

our @EXPORT = qw(
    run_tests run_test
    no_shuffle repeat_each no_long_string no_diff
    log_level master_on master_off master_process_enabled
    workers worker_connections no_root_location env_to_nginx
    server_port server_port_for_client server_addr server_name
    server_root html_dir timeout use_hup check_accum_error_log
    add_block_preprocessor add_cleanup_handler add_test_cleanup_handler
    add_response_body_check bail_out is_str config_preamble
    no_nginx_manager
);

# ---------------------------------------------------------------------------
# Settings (environment first, then the exported setter functions)
# ---------------------------------------------------------------------------

my $Tb = Test::Builder->new;

our $RepeatEach           = 1;
our $NoShuffle            = $ENV{TEST_NGINX_NO_SHUFFLE} ? 1 : 0;
our $NoLongString         = 0;
our $NoDiff               = 0;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $Workers              = 1;
our $WorkerConnections    = 64;
our $NoRootLocation       = 0;
our @EnvToNginx;
our $ServerName           = 'localhost';
our $ServerAddr           = '127.0.0.1';
our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient
    = $ENV{TEST_NGINX_CLIENT_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $Timeout          = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $UseHup           = $ENV{TEST_NGINX_USE_HUP} ? 1 : 0;
our $UseValgrind      = $ENV{TEST_NGINX_USE_VALGRIND} || '';
our $CheckAccumErrLog = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG} ? 1 : 0;
our $NoNginxManager   = $ENV{TEST_NGINX_NO_NGINX_MANAGER} ? 1 : 0;
our $TestNginxSleep   = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $Verbose          = $ENV{TEST_NGINX_VERBOSE} || 0;
our $NoClean          = $ENV{TEST_NGINX_NO_CLEAN} || 0;
our $ConfigPreamble   = '';

our $ServRoot = $ENV{TEST_NGINX_SERVROOT}
    ? File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT})
    : File::Spec->catdir(Cwd::cwd(), 't', 'servroot');
$ServRoot =~ s{/+$}{};
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $LogDir     = "$ServRoot/logs";
our $ConfFile   = "$ConfDir/nginx.conf";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $PidFile    = "$LogDir/nginx.pid";

# Like the real runner: visible to the .t file and to config sections.
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

my @BlockPreprocessors;
my @CleanupHandlers;
my @TestCleanupHandlers;
my @ResponseBodyChecks;

# Runtime state.
my $NginxPid;            # pid of the nginx master/single process we run
my $NginxIsChild = 0;    # true when that pid is our direct child (daemon off)
my $PrevConfBlock;       # block whose config sections the last conf used
my $ShutdownCheck;       # [block, name] whose shutdown_error_log is checked
                         # when nginx is stopped next
my ($NginxBinary, $NginxVersion);
my $CleanedUp = 0;

# ---------------------------------------------------------------------------
# Exported settings functions
# ---------------------------------------------------------------------------

sub no_shuffle ()        { $NoShuffle = 1 }
sub no_long_string ()    { $NoLongString = 1 }
sub no_diff ()           { $NoDiff = 1 }
sub use_hup ()           { $UseHup = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub no_root_location ()  { $NoRootLocation = 1 }
sub no_nginx_manager ()  { $NoNginxManager = 1 }
sub master_on ()         { $MasterProcessEnabled = 'on' }
sub master_off ()        { $MasterProcessEnabled = 'off' }
sub server_root ()       { $ServRoot }
sub html_dir ()          { $HtmlDir }
sub server_port_for_client { $ServerPortForClient = shift if @_; $ServerPortForClient }
sub server_port          { $ServerPort = shift if @_; $ServerPort }
sub server_addr          { $ServerAddr = shift if @_; $ServerAddr }
sub server_name          { $ServerName = shift if @_; $ServerName }
sub timeout              { $Timeout = shift if @_; $Timeout }
sub repeat_each          { $RepeatEach = shift if @_; $RepeatEach }
sub workers              { $Workers = shift if @_; $Workers }
sub worker_connections   { $WorkerConnections = shift if @_; $WorkerConnections }
sub log_level            { $LogLevel = shift if @_; $LogLevel }
sub config_preamble      { $ConfigPreamble = shift if @_; $ConfigPreamble }
sub env_to_nginx         { push @EnvToNginx, @_ }
sub add_block_preprocessor   { push @BlockPreprocessors, shift }
sub add_cleanup_handler      { push @CleanupHandlers, shift }
sub add_test_cleanup_handler { push @TestCleanupHandlers, shift }
sub add_response_body_check  { push @ResponseBodyChecks, shift }

sub master_process_enabled {
    if (@_) { $MasterProcessEnabled = $_[0] ? 'on' : 'off' }
    return $MasterProcessEnabled;
}

sub bail_out {
    my $msg = shift;
    undef $ShutdownCheck;
    cleanup();
    Test::More::BAIL_OUT($msg);
}

# String comparison honouring no_long_string()/no_diff() and qr// values.
sub is_str {
    my ($got, $expected, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $name);
    }
    if (!$NoLongString) {
        return Test::LongString::is_string($got, $expected, $name);
    }
    if ($NoDiff || !defined $got || !defined $expected) {
        return Test::More::is($got, $expected, $name);
    }
    my $ok = $Tb->ok($got eq $expected, $name);
    unless ($ok) {
        $Tb->diag(Text::Diff::diff(\$expected, \$got,
                  { STYLE => 'Unified' }));
    }
    return $ok;
}

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

sub verbose { print STDERR "@_\n" if $Verbose }

sub warn_msg { print STDERR "WARNING: @_\n" }

sub slurp {
    my ($file, $offset) = @_;
    open my $fh, '<', $file or return '';
    binmode $fh;
    seek $fh, $offset, 0 if $offset;
    local $/;
    my $data = <$fh>;
    return defined $data ? $data : '';
}

sub file_size { my $s = -s $_[0]; defined $s ? $s : 0 }

sub write_file {
    my ($file, $content) = @_;
    make_path(dirname($file));
    open my $fh, '>', $file or bail_out("cannot write $file: $!");
    binmode $fh;
    print $fh $content;
    close $fh;
}

# Parse "3s", "500ms", "1.5" (seconds).
sub parse_time {
    my ($v, $what) = @_;
    return undef unless defined $v;
    $v =~ s/^\s+|\s+$//g;
    return $1 if $v =~ /^(\d+(?:\.\d*)?|\.\d+)s?$/;
    return $1 / 1000 if $v =~ /^(\d+(?:\.\d*)?)ms$/;
    bail_out("bad $what value: $v");
}

# Expand $TEST_NGINX_XXX variables from the environment, bailing out on
# unknown ones (as the real runner does for config-like sections).
sub expand_env {
    my ($text, $name) = @_;
    return $text unless defined $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        defined $ENV{$1} ? $ENV{$1}
            : bail_out("$name - No environment $1 defined.\n")
    }ge;
    return $text;
}

# Fork and exec an argv list; stdout/stderr optionally redirected to files.
sub spawn {
    my ($argv, %o) = @_;
    my $pid = fork;
    bail_out("fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        if (defined $o{stdout}) { open STDOUT, '>', $o{stdout} or POSIX::_exit(127) }
        if (defined $o{stderr}) { open STDERR, '>', $o{stderr} or POSIX::_exit(127) }
        { no warnings 'exec'; exec { $argv->[0] } @$argv; }
        print STDERR "cannot exec $argv->[0]: $!\n";
        POSIX::_exit(127);
    }
    return $pid;
}

sub run_and_capture {
    my (@argv) = @_;
    my $out = "$ServRoot/.cmd.out.$$";
    my $err = "$ServRoot/.cmd.err.$$";
    make_path($ServRoot);
    my $pid = spawn(\@argv, stdout => $out, stderr => $err);
    waitpid($pid, 0);
    my $status = $?;
    my ($o, $e) = (slurp($out), slurp($err));
    unlink $out, $err;
    return ($status, $o, $e);
}

sub version_cmp {
    my @a = split /\./, $_[0];
    my @b = split /\./, $_[1];
    while (@a || @b) {
        my $x = shift(@a) || 0;
        my $y = shift(@b) || 0;
        return $x <=> $y if $x != $y;
    }
    return 0;
}

sub version_test {
    my ($op, $ver) = @_;
    my $c = version_cmp($NginxVersion, $ver);
    return $op eq '>'  ? $c > 0
         : $op eq '>=' ? $c >= 0
         : $op eq '<'  ? $c < 0
         : $op eq '<=' ? $c <= 0
         : $op eq '==' ? $c == 0
         : $op eq '!=' ? $c != 0
         : bail_out("bad version operator $op");
}

sub find_nginx {
    return if defined $NginxBinary;
    if ($ENV{TEST_NGINX_BINARY}) {
        $NginxBinary = $ENV{TEST_NGINX_BINARY};
    } elsif (grep { -x "$_/nginx" } File::Spec->path) {
        $NginxBinary = 'nginx';
    } else {
        $NginxBinary = '/usr/sbin/nginx';
    }
    my ($st, $out, $err) = run_and_capture($NginxBinary, '-v');
    if ("$out$err" =~ m{nginx version: \S+?/(\d+(?:\.\d+)*)}) {
        $NginxVersion = $1;
    } else {
        bail_out("cannot run nginx binary '$NginxBinary': $out$err");
    }
    verbose("nginx $NginxBinary version $NginxVersion");
}

# A value that may be given per request as an array ref.
sub pick {
    my ($v, $i, $multi, $name) = @_;
    return undef unless defined $v;
    return $v->[$i] if ref $v eq 'ARRAY';
    bail_out("$name - You asked for many requests, the expected results"
             . " should be arrays as well.") if $multi;
    return $v;
}

# ---------------------------------------------------------------------------
# nginx.conf generation and the server root
# ---------------------------------------------------------------------------

sub valgrind_enabled { $UseValgrind && $UseValgrind ne '0' }

sub gen_conf {
    my ($cb, $block, $hup_token, $for_must_die) = @_;
    my $valgrind = valgrind_enabled() && !$for_must_die;
    my $daemon = $valgrind ? 'off' : 'on';
    my $master = $UseHup ? 'on' : $MasterProcessEnabled;
    my $level  = $cb->log_level || $LogLevel;
    $level =~ s/^\s+|\s+$//g;
    my $sname  = $cb->server_name;
    $sname = $ServerName unless defined $sname;
    $sname =~ s/^\s+|\s+$//g;
    my $name = "$0 " . $block->name;

    my $main_config = expand_env($cb->main_config // '', $name);
    my $post_main   = expand_env($cb->post_main_config // '', $name);
    my $http_config = expand_env($cb->http_config // '', $name);
    my $config      = expand_env($cb->config // '', $name);

    my $env = '';
    for my $e (@EnvToNginx) {
        $env .= $e =~ /\s/ ? "env '$e';\n" : "env $e;\n";
    }
    my $modules = '';
    for my $m (split ' ', $ENV{TEST_NGINX_LOAD_MODULES} || '') {
        $modules .= "load_module $m;\n";
    }

    # "--- http2": nginx >= 1.25.1 uses "http2 on;", older ones the listen
    # parameter (the real 0.33 always emits "http2 on;").
    my $listen = "listen          $ServerPort;";
    if (defined $block->http2) {
        $listen = version_cmp($NginxVersion, '1.25.1') >= 0
            ? "listen          $ServerPort;http2 on;"
            : "listen          $ServerPort http2;";
    }

    my $root_location = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    # In HUP mode a second server answers GET /ver (Host: Test-Nginx) with a
    # random token, so that the runner can tell when a reload took effect.
    my $ver_server = '';
    if (defined $hup_token) {
        $ver_server = <<"_EOC_";
    server {
        listen          $ServerPort;
        server_name     'Test-Nginx';

        location = /ver {
            return 200 '$hup_token';
        }
    }
_EOC_
    }

    my $user = '';
    if ($> == 0) {
        $user = "user " . ($ENV{TEST_NGINX_WORKER_USER} || 'root') . ";\n";
    }

    return <<"_EOC_";
worker_processes  $Workers;
daemon $daemon;
master_process $master;
error_log $ErrLogFile $level;
pid       $PidFile;
env MOCKEAGAIN_VERBOSE;
env MOCKEAGAIN;
env MOCKEAGAIN_WRITE_TIMEOUT_PATTERN;
env LD_PRELOAD;
env LD_LIBRARY_PATH;
env DYLD_INSERT_LIBRARIES;
env DYLD_FORCE_FLAT_NAMESPACE;
$env#env LUA_PATH;
#env LUA_CPATH;

$modules$main_config

http {
    access_log $AccLogFile; client_body_temp_path $ServRoot/client_body_temp; proxy_temp_path $ServRoot/proxy_temp; fastcgi_temp_path $ServRoot/fastcgi_temp; scgi_temp_path $ServRoot/scgi_temp; uwsgi_temp_path $ServRoot/uwsgi_temp;
    #access_log off;

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config

    server {
        $listen
        #placeholder
        server_name     '$sname';
        
        client_max_body_size 30M;
        #client_body_buffer_size 4k;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
$ver_server}

$post_main

#timer_resolution 100ms;

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
}
env ASAN_OPTIONS;
env MOCKNOEAGAIN_VERBOSE;
env MOCKNOEAGAIN;
$user
_EOC_
}

# Wipe the server root and lay it out again (conf/, html/, logs/; nginx
# creates the *_temp directories itself).  Before a HUP reload, as the
# real runner does, the running nginx's pid file, unix sockets,
# certificates and keys stay, and directories stay (emptied).
sub setup_server_root {
    my $reloading = shift;

    if ($reloading && -d $ServRoot) {
        remove_tree($ConfDir, glob("$ServRoot/*_cache"), glob("$ServRoot/*_temp"));
        find({ bydepth => 1, no_chdir => 1, wanted => sub {
            return if -d $_ || /(?:\bnginx\.pid|\.sock|\.crt|\.key)$/;
            unlink $_ or warn "Failed to remove $_: $!\n";
        } }, $ServRoot);

    } elsif (-d $ServRoot) {
        remove_tree($ServRoot, { keep_root => 1 });
    }

    make_path($ConfDir, $HtmlDir, $LogDir);
    write_file("$HtmlDir/index.html",
        '<html><head><title>It works!</title></head>'
        . '<body>It works!</body></html>');
}

# "touch -t" style [[CC]YY]MMDDhhmm[.ss], or plain epoch seconds.
sub parse_mtime {
    my $t = shift;
    if ($t =~ /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(?:\.(\d\d))?$/) {
        return POSIX::mktime($6 // 0, $5, $4, $3, $2 - 1, $1 - 1900);
    }
    return $t if $t =~ /^\d+(?:\.\d+)?$/;
    return undef;
}

sub write_user_files {
    my ($block, $name) = @_;
    my $spec = $block->user_files;
    return unless defined $spec;
    my @files;
    if (ref $spec eq 'ARRAY') {
        @files = map { [@$_] } @$spec;
    } else {
        my $cur;
        for my $line (split /^/, $spec) {
            if ($line =~ /^>>>\s+(\S+)(?:\s+(\S+))?\s*$/) {
                $cur = [$1, '', $2];
                push @files, $cur;
            } elsif ($cur) {
                $cur->[1] .= $line;
            } else {
                bail_out("$name - user_files: content before the first '>>> name' line");
            }
        }
    }
    for my $f (@files) {
        my ($fname, $content, $mtime) = @$f;
        $content = expand_env($content // '', $name);
        my $path = "$HtmlDir/$fname";
        write_file($path, $content);
        if (defined $mtime) {
            my $t = parse_mtime($mtime);
            utime($t, $t, $path) if defined $t;
        }
    }
}

# ---------------------------------------------------------------------------
# Starting, reloading and stopping nginx
# ---------------------------------------------------------------------------

sub nginx_argv { ($NginxBinary, '-e', $ErrLogFile, '-p', "$ServRoot/", '-c', $ConfFile) }

sub valgrind_argv {
    my @argv;
    if ($UseValgrind =~ /^\d+$/) {
        @argv = ('valgrind', '--num-callers=100', '-q', '--tool=memcheck',
                 '--leak-check=full', '--keep-debuginfo=yes',
                 '--show-possibly-lost=no', '--gen-suppressions=all');
        push @argv, '--suppressions=valgrind.suppress' if -f 'valgrind.suppress';
    } else {
        @argv = ('valgrind', '-q', split(' ', $UseValgrind));
    }
    if (my $e = $ENV{TEST_NGINX_VALGRIND_EXIT_ON_FIRST_ERR}) {
        push @argv, $e =~ /^\d+$/
            ? ('--exit-on-first-error=yes', '--error-exitcode=1')
            : split(' ', $e);
    }
    return @argv;
}

sub read_pid_file {
    my $c = slurp($PidFile);
    return $c =~ /^(\d+)\s*$/ ? $1 : undef;
}

sub proc_alive {
    my $pid = shift;
    return 0 unless $pid;
    if ($NginxIsChild && defined $NginxPid && $pid == $NginxPid) {
        my $r = waitpid($pid, WNOHANG);
        return 0 if $r == $pid || $r == -1;
        return 1;
    }
    return 0 unless kill 0, $pid;
    # A zombie still answers kill(0): look at its state.
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $stat = <$fh> // '';
        return 0 if $stat =~ /\)\s+Z/;
    }
    return 1;
}

sub stop_timeout { valgrind_enabled() ? 120 : 10 }

# A test may restart nginx itself (kill -9 and start again): as the real
# runner does, the pid file names the master, not what we recorded.
sub refresh_pid {
    return if $NginxIsChild;
    my $p = read_pid_file();
    $NginxPid = $p if $p && proc_alive($p);
}

sub stop_nginx {
    my (%o) = @_;
    refresh_pid();
    my $check = $ShutdownCheck;
    undef $ShutdownCheck;
    my $pid = $NginxPid;
    if (!defined $pid) {
        # An nginx left over by an earlier run (e.g. TEST_NGINX_NO_CLEAN):
        # only stop it if it really is the nginx of this server root.
        my $p = read_pid_file();
        if ($p && open my $fh, '<', "/proc/$p/cmdline") {
            local $/;
            my $cmd = <$fh> // '';
            $pid = $p if $cmd =~ /nginx/ && index($cmd, $ServRoot) >= 0;
        }
    }
    return unless defined $pid;
    my $log_off = file_size($ErrLogFile);
    if (proc_alive($pid)) {
        verbose("sending QUIT signal to $pid");
        kill 'QUIT', $pid;
        my $deadline = time + stop_timeout();
        sleep 0.01 while proc_alive($pid) && time < $deadline;
        if (proc_alive($pid)) {
            verbose("sending KILL signal to $pid");
            kill 'KILL', $pid;
            $deadline = time + 5;
            sleep 0.01 while proc_alive($pid) && time < $deadline;
        }
    }
    waitpid($pid, 0) if $NginxIsChild && defined $NginxPid && $pid == $NginxPid;
    undef $NginxPid;
    $NginxIsChild = 0;
    flush_shutdown_checks($check, $log_off) unless $o{no_checks};
}

sub flush_shutdown_checks {
    my ($check, $off) = @_;
    return unless $check;
    if ($UseHup) {
        skip_shutdown_logs(@$check);
    } else {
        check_shutdown_logs(@$check, $off);
    }
}

# Start nginx from scratch.  Returns undef on success, else the failed
# command line and its wait status.
sub start_nginx {
    my (%o) = @_;
    my @cmd = nginx_argv();
    my $valgrind = valgrind_enabled() && !$o{must_die};
    @cmd = (valgrind_argv(), @cmd) if $valgrind;
    my $cmdline = join(' ', @cmd) . ' > /dev/null';
    verbose("command: $cmdline");

    my $tries = 0;
  TRY: {
        $tries++;
        if ($valgrind) {
            # daemon off: nginx (under valgrind) stays our child; its
            # stderr, i.e. valgrind's reports, goes to our stderr.
            my $pid = spawn(\@cmd, stdout => '/dev/null');
            my $deadline = time + 120;
            while (time < $deadline) {
                my $r = waitpid($pid, WNOHANG);
                return ($cmdline, $?) if $r == $pid;
                if (defined read_pid_file()) {
                    ($NginxPid, $NginxIsChild) = ($pid, 1);
                    return undef;
                }
                sleep 0.05;
            }
            kill 'KILL', $pid;
            waitpid($pid, 0);
            return ($cmdline, 'timeout');
        }

        my $pid = spawn(\@cmd, stdout => '/dev/null');
        waitpid($pid, 0);
        my $status = $?;
        if ($status) {
            return ($cmdline, $status) if $o{must_die};
            # Retry a little when the port is still held by someone else.
            if ($tries < 10 && slurp($ErrLogFile) =~ /Address already in use/) {
                sleep 0.3;
                redo TRY;
            }
            return ($cmdline, $status);
        }
        # daemon on: wait for the daemonized process to write its pid.
        my $deadline = time + 10;
        my $p;
        sleep 0.01 until defined($p = read_pid_file()) || time > $deadline;
        return ($cmdline, 'no pid file') unless defined $p;
        ($NginxPid, $NginxIsChild) = ($p, 0);
        return undef;
    }
}

# Direct children of a process (nginx workers of a master).
sub child_pids {
    my $ppid = shift;
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $stat = <$fh> // '';
        push @kids, $pid if $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $ppid;
    }
    return @kids;
}

sub random_token {
    my @c = ('a' .. 'z', 'A' .. 'Z', '0' .. '9');
    return join '', map { $c[rand @c] } 1 .. 10;
}

# Ask the HUP-mode "Test-Nginx" server for its token.
sub fetch_ver_token {
    my ($h2) = @_;
    if ($h2) {
        my ($st, $out) = run_and_capture('curl', '-sS', '--http2-prior-knowledge',
            '-H', 'Host: Test-Nginx', '--max-time', '2',
            "http://$ServerAddr:$ServerPort/ver");
        return $st ? undef : $out;
    }
    my $r = http_exchange(
        [{ data => "GET /ver HTTP/1.1\r\nHost: Test-Nginx\r\nConnection: close\r\n\r\n" }],
        valgrind_enabled() ? 5 : 1, undef, $ServerPort, 0);
    return undef if $r->{error};
    my ($res) = parse_response($r->{data}, 0, 'GET', '');
    return $res->{code} eq '200' ? $res->{body} : undef;
}

# HUP mode: reopen logs and reload, then wait until GET /ver returns the new
# token (or the reload clearly failed).
sub reload_nginx {
    my ($name, $block, $token) = @_;
    # The old log files were removed with the server root: make nginx reopen
    # them first, so that the workers still running (which may serve the
    # first requests) also log into the new files.
    verbose("sending USR1 signal to $NginxPid.");
    kill 'USR1', $NginxPid;
    my $until = time + (valgrind_enabled() ? 30 : 5);
    sleep 0.01 until -e $ErrLogFile || time > $until;
    sleep(valgrind_enabled() ? 0.3 : 0.05);
    flush_shutdown_checks($ShutdownCheck);
    undef $ShutdownCheck;
    my @old_workers = child_pids($NginxPid);
    verbose("sending HUP signal to $NginxPid.");
    kill 'HUP', $NginxPid;

    my $deadline = time + (valgrind_enabled() ? 120 : 30);
    my ($tries, $emerg_seen) = (0, undef);
    while (1) {
        $tries++;
        my $got = fetch_ver_token(defined $block->http2);
        if (defined $got && $got eq $token) {
            # The new workers answer; an old worker may still accept a
            # connection until it has handled its QUIT signal, and would
            # serve it with the old configuration: wait for them to exit.
            my $until = time + (valgrind_enabled() ? 30 : 5);
            sleep 0.01 while grep({ proc_alive($_) } @old_workers) && time < $until;
            return 1;
        }
        if (slurp($ErrLogFile) =~ /\[emerg\]/) {
            # The new configuration was rejected; give the master a moment in
            # case the message came from something else, then stop polling.
            $emerg_seen //= time;
            last if defined $block->reload_fails || time - $emerg_seen > 1;
        }
        last if time > $deadline;
        sleep min(0.01 * $tries, 0.2);
    }
    return 1 if defined $block->reload_fails;
    $Tb->ok(0, "$name - failed to reload configuration after $tries failed test requests");
    return 0;
}

sub cleanup {
    my ($from_end) = @_;
    return if $CleanedUp++;
    $_->() for @CleanupHandlers;
    return if $NoNginxManager;
    # Under valgrind nginx runs in the foreground as our child: always stop
    # it so that valgrind prints its final (leak) report.
    stop_nginx(no_checks => $from_end) if !$NoClean || $NginxIsChild;
}

# Also stop nginx when the test script dies half-way.
END { cleanup(1) if defined $NginxBinary }

# ---------------------------------------------------------------------------
# Building requests
# ---------------------------------------------------------------------------

# Parse "METHOD [URI [PROTOCOL]]\nbody" into its parts; returns a hash with
# the request head (without the final CRLF) and the body.
sub parse_request_spec {
    my ($spec, $name, $more_headers, $connection, $more_packets) = @_;
    $spec //= '';
    $spec =~ s/\A(?:\s*#[^\n]*\n)*//;    # leading comment lines
    $spec =~ s/\A\s+//;
    bail_out("$name - Request line should be non-empty") if $spec eq '';
    my ($line, $body) = split /\n/, $spec, 2;
    my $orig_line = defined $body ? "$line\n" : $line;
    $line =~ s/\s+$//;
    my @parts = split ' ', $line;
    if (@parts > 3) {
        bail_out("$name - Request line is not valid. Should be 'meth [url [version]]'"
                 . " but got \"$orig_line\".");
    }
    my ($meth, $uri, $proto) = @parts;
    $uri   //= '/';
    $proto //= 'HTTP/1.1';

    my @mh = parse_more_headers($more_headers);
    my $has_cl = grep { $_->[0] =~ /Content-Length/ } @mh;
    $body //= '';
    unless ($has_cl) {
        # The body's surrounding whitespace is not sent (an explicit
        # Content-Length in more_headers sends it verbatim); when more
        # packets follow, the end is trimmed on the last one instead.
        $body =~ s/\A\s+//;
        $body =~ s/\s+\z// unless $more_packets;
    }
    return {
        method => $meth, uri => $uri, proto => $proto, body => $body,
        more_headers => \@mh, has_cl => $has_cl, connection => $connection,
    };
}

# more_headers lines "Name: value" (blank lines ignored).
sub parse_more_headers {
    my $mh = shift;
    return () unless defined $mh;
    my @h;
    for my $line (split /\n/, $mh) {
        next if $line =~ /^\s*$/;
        if ($line =~ /^([^:]+):\s*(.*)\z/s) {
            push @h, [$1, $2];
        } else {
            push @h, [$line, undef];
        }
    }
    return @h;
}

# The request head as sent on the wire (request line + headers + CRLF),
# for a body of $body_len bytes.
sub request_head {
    my ($r, $body_len) = @_;
    my @mh = @{ $r->{more_headers} };
    my $head = "$r->{method} $r->{uri} $r->{proto}\r\n";
    $head .= "Host: localhost\r\n" unless grep { $_->[0] =~ /^\s*Host\s*$/i } @mh;
    $head .= "Connection: $r->{connection}\r\n"
        unless grep { $_->[0] =~ /^\s*Connection\s*$/i } @mh;
    for my $h (@mh) {
        $head .= defined $h->[1] ? "$h->[0]: $h->[1]\r\n" : "$h->[0]\r\n";
    }
    $head .= "Content-Length: $body_len\r\n" if !$r->{has_cl} && $body_len;
    return "$head\r\n";
}

# One "request" element: a string, or an array ref of packets (strings or
# { value => ..., delay_before => ... }).  Returns the list of chunks to
# write, each { data, delay }.
sub build_request_chunks {
    my ($elem, $name, $block, $connection) = @_;
    my @packets = ref $elem eq 'ARRAY' ? @$elem : ($elem);
    my @vals = map { ref $_ eq 'HASH' ? $_->{value} : $_ } @packets;
    my @delays = map { ref $_ eq 'HASH' ? $_->{delay_before} : undef } @packets;
    my $r = parse_request_spec($vals[0], $name, scalar($block->more_headers), $connection,
                               @vals > 1);
    my @bodies = ($r->{body}, @vals[1 .. $#vals]);
    if (!$r->{has_cl} && @bodies > 1) {
        # the whitespace of the last packet's end is not sent either
        $bodies[-1] =~ s/\s+\z//;
    }
    my $len = 0;
    $len += length($_ // '') for @bodies;
    my @chunks = ({ data => request_head($r, $len) . $bodies[0], delay => 0 });
    for my $i (1 .. $#bodies) {
        push @chunks, { data => $bodies[$i] // '',
                        delay => $delays[$i] // $TestNginxSleep };
    }
    return ($r, @chunks);
}

# ---------------------------------------------------------------------------
# Talking HTTP/1.x over a socket
# ---------------------------------------------------------------------------

# Send chunks on one connection, then read until the server closes it.
# Returns { data, timed_out, error }.
sub http_exchange {
    my ($chunks, $timeout, $shutdown, $port, $retry_connect) = @_;
    $port //= $ServerPortForClient;
    local $SIG{PIPE} = 'IGNORE';
    my $sock;
    my $deadline = time + ($retry_connect ? $timeout : 0);
    while (1) {
        $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr, PeerPort => $port,
                                      Proto => 'tcp', Timeout => $timeout);
        last if $sock || time >= $deadline;
        sleep 0.05;
    }
    return { data => '', error => "Can't connect to $ServerAddr:$port: $!" }
        unless $sock;
    $sock->blocking(0);
    binmode $sock;
    my $sel = IO::Select->new($sock);
    my %r = (data => '', timed_out => 0);

  WRITE:
    for my $c (@$chunks) {
        sleep $c->{delay} if $c->{delay};
        my $buf = $c->{data};
        while (length $buf) {
            unless ($sel->can_write($timeout)) { $r{timed_out} = 1; last WRITE }
            my $n = syswrite($sock, $buf);
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                last WRITE;    # peer closed early: read what it said
            }
            substr($buf, 0, $n, '');
        }
    }
    shutdown($sock, $shutdown) if defined $shutdown && !$r{timed_out};

    unless ($r{timed_out}) {
        while (1) {
            unless ($sel->can_read($timeout)) { $r{timed_out} = 1; last }
            my $n = sysread($sock, my $buf, 65536);
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                last;          # e.g. connection reset
            }
            last if $n == 0;
            $r{data} .= $buf;
        }
    }
    close $sock;
    return \%r;
}

# Parse one HTTP response starting at $pos of $data.  Returns the response
# (code, raw_headers, headers, body) and the position after it.
sub parse_response {
    my ($data, $pos, $method, $name) = @_;
    my %res = (code => '', raw_headers => '', headers => HTTP::Headers->new,
               body => '');
    return (\%res, $pos) if $pos >= length $data;

    my $end = index($data, "\r\n\r\n", $pos);
    my ($hlen, $sep) = ($end, 4);
    my $lf = index($data, "\n\n", $pos);
    if ($lf >= 0 && ($end < 0 || $lf < $end)) { ($hlen, $sep) = ($lf, 2) }
    if ($hlen < 0) {
        # incomplete header: keep what we have as headers
        $res{raw_headers} = substr($data, $pos);
        $res{code} = $1 if $res{raw_headers} =~ m{\AHTTP/[\d.]+\s+(\d+)};
        return (\%res, length $data);
    }
    my $head = substr($data, $pos, $hlen - $pos + $sep / 2);
    my $body_start = $hlen + $sep;
    $res{raw_headers} = $head;
    my ($status_line, @lines) = split /\r?\n/, $head;
    $res{code} = $1 if $status_line =~ m{\AHTTP/[\d.]+\s+(\d+)};
    for my $l (@lines) {
        $res{headers}->push_header($1, $2) if $l =~ /^([^:\s][^:]*?)\s*:\s*(.*?)\s*$/;
    }
    my $code = $res{code};

    if ($code eq '100') {
        # interim response: the real one follows
        return parse_response($data, $body_start, $method, $name);
    }
    if ($code eq '101') {
        # switching protocols: everything after the head is the body
        $res{body} = substr($data, $body_start);
        return (\%res, length $data);
    }
    if (($method // '') eq 'HEAD' || $code =~ /^(?:1\d\d|204|304)$/) {
        return (\%res, $body_start);
    }
    my $te = $res{headers}->header('Transfer-Encoding') // '';
    if ($te =~ /chunked/i) {
        my ($body, $p) = ('', $body_start);
        while (1) {
            my $nl = index($data, "\n", $p);
            last if $nl < 0;
            my $size_line = substr($data, $p, $nl - $p);
            last unless $size_line =~ /^([0-9a-fA-F]+)/;
            my $size = hex $1;
            $p = $nl + 1;
            if ($size == 0) {
                # skip trailers up to the empty line
                while (1) {
                    my $n2 = index($data, "\n", $p);
                    if ($n2 < 0) { $p = length $data; last }
                    my $tl = substr($data, $p, $n2 - $p);
                    $p = $n2 + 1;
                    last if $tl =~ /^\r?$/;
                }
                last;
            }
            $body .= substr($data, $p, $size);
            $p += $size;
            if ($p > length $data) {
                warn_msg("$name - chunked response body truncated");
                $p = length $data;
                last;
            }
            $p += 2 if substr($data, $p, 2) eq "\r\n";
            $p += 1 if substr($data, $p, 1) eq "\n";
        }
        $res{body} = $body;
        return (\%res, $p);
    }
    my $cl = $res{headers}->header('Content-Length');
    if (defined $cl && $cl =~ /^\s*(\d+)/) {
        my $len = $1;
        my $avail = length($data) - $body_start;
        if ($avail < $len) {
            warn_msg("$name - response body truncated: $len expected, but got $avail");
            $len = $avail;
        }
        $res{body} = substr($data, $body_start, $len);
        return (\%res, $body_start + $len);
    }
    $res{body} = substr($data, $body_start);    # read until close
    return (\%res, length $data);
}

# ---------------------------------------------------------------------------
# HTTP/2 through curl ("--- http2")
# ---------------------------------------------------------------------------

sub curl_request {
    my ($block, $name, $elem, $timeout) = @_;
    my $spec = ref $elem eq 'ARRAY'
        ? join('', map { ref $_ eq 'HASH' ? $_->{value} : $_ } @$elem) : $elem;
    my $r = parse_request_spec($spec, $name, scalar($block->more_headers), 'close');
    my @cmd = ('curl', '-i', '-H', 'User-Agent:', '-H', 'Accept:', '-H', 'Host:',
               '-sS', '--http2-prior-knowledge');
    if ($r->{method} eq 'HEAD') {
        push @cmd, '-I';
    } elsif ($r->{method} ne 'GET') {
        push @cmd, '-X', $r->{method};
    }
    push @cmd, '-0' if $r->{proto} eq 'HTTP/1.0';
    my @mh = @{ $r->{more_headers} };
    push @cmd, '-H', 'Host: localhost' unless grep { $_->[0] =~ /^\s*Host\s*$/i } @mh;
    for my $h (@mh) {
        push @cmd, '-H', defined $h->[1] ? "$h->[0]: $h->[1]" : $h->[0];
    }
    if (length $r->{body}) {
        my $file = "$HtmlDir/curl.data.bin";
        write_file($file, $r->{body});
        push @cmd, '-H', 'Content-Length: ' . length($r->{body}) unless $r->{has_cl};
        push @cmd, '--data-binary', "\@$file";
    }
    push @cmd, '--connect-timeout', $timeout, '--max-time', $timeout;
    my $opts = $block->curl_options;
    push @cmd, split(' ', $opts) if defined $opts;
    my $proto = $block->curl_protocol // 'http';
    $proto =~ s/^\s+|\s+$//g;
    push @cmd, "$proto://$ServerAddr:$ServerPortForClient$r->{uri}";

    my ($status, $out, $err) = run_and_capture(@cmd);
    my $exit = $status >> 8;
    if ($err ne '') {
        chomp(my $e = $err);
        my $msg = qq{command "@cmd" generates stderr output: $e};
        my $expected = $block->curl_error;
        my $matched = defined $expected
            && (ref $expected eq 'Regexp' ? $err =~ $expected
                                           : index($err, $expected) >= 0);
        if ($exit == 28) {
            warn_msg("$name - $msg");          # timeouts only warn
        } elsif (!$matched) {
            $Tb->ok(0, "$name - $msg");
        }
    }
    return ($out, $r->{method});
}

# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------

sub body_summary {
    my $b = shift // '';
    $b =~ s/\s+/ /g;
    $b =~ s/^ | $//g;
    return $b;
}

sub check_response {
    my ($block, $name, $res, $rep, $i, $multi) = @_;
    my $code = $res->{code} // '';

    # status code
    # error_code_like wins over error_code
    if (defined(my $ecl = $block->error_code_like)) {
        my $pat = pick($ecl, $i, $multi, $name);
        $pat = qr/$pat/ms unless ref $pat eq 'Regexp';
        Test::More::like($code, $pat, "$name - status code ok");
    } elsif (defined(my $ec = $block->error_code)) {
        my $exp = pick($ec, $i, $multi, $name) // 200;
        $Tb->is_eq($code, $exp, "$name - status code ok");
    } else {
        $Tb->is_eq($code, 200, "$name - status code ok");
    }

    my $raw = $res->{raw_headers} // '';
    if (defined(my $v = $block->raw_response_headers_like)) {
        my $pat = pick($v, $i, $multi, $name);
        $pat = qr/$pat/s unless ref $pat eq 'Regexp';
        Test::More::like($raw, $pat, "$name - raw resp headers like");
    }
    if (defined(my $v = $block->raw_response_headers_unlike)) {
        my $pat = pick($v, $i, $multi, $name);
        $pat = qr/$pat/s unless ref $pat eq 'Regexp';
        Test::More::unlike($raw, $pat, "$name - raw resp headers unlike");
    }

    # response_headers wins over response_headers_like
    if (defined(my $v = $block->response_headers)) {
        my $spec = pick($v, $i, $multi, $name);
        # One check per header name; a later line for the same name wins.
        my (@keys, %want);
        for my $line (split /\n/, $spec // '') {
            next if $line =~ /^\s*$/;
            my ($key, $val);
            if ($line =~ /^\s*!\s*(.+?)\s*$/) {
                ($key, $val) = ($1, undef);
            } elsif ($line =~ /^\s*([^:]+?)\s*:\s*(.*?)\s*$/) {
                ($key, $val) = ($1, $2);
            } else {
                bail_out("$name - bad response_headers line: $line");
            }
            push @keys, $key unless exists $want{$key};
            $want{$key} = $val;
        }
        for my $key (@keys) {
            if (!defined $want{$key}) {
                Test::More::unlike($raw, qr/^\s*\Q$key\E\s*:/ms,
                                   "$name - header $key not present in the raw headers");
            } else {
                $Tb->is_eq($res->{headers}->header($key) // '', $want{$key},
                           "$name - header $key ok");
            }
        }
    } elsif (defined(my $vl = $block->response_headers_like)) {
        my $spec = pick($vl, $i, $multi, $name);
        for my $line (split /\n/, $spec // '') {
            next if $line =~ /^\s*$/;
            if ($line =~ /^\s*([^:]+?)\s*:\s*(.*?)\s*$/) {
                my ($key, $pat) = ($1, $2);
                Test::More::like($res->{headers}->header($key) // '', qr/^$pat$/,
                                 "$name - header $key like ok");
            } else {
                bail_out("$name - bad response_headers_like line: $line");
            }
        }
    }

    # body: response_body, else response_body_like; response_body_unlike
    # is checked as well (the real Test::Nginx checks each one given)
    my $body = $res->{body} // '';
    if (defined(my $v = $block->response_body)) {
        my $exp = pick($v, $i, $multi, $name);
        if (defined $exp) {
            if (ref $exp eq 'Regexp') {
                Test::More::like($body, $exp,
                    "$name - response_body - like (repeated req $rep, req $i)");
            } else {
                is_str($body, $exp,
                    "$name - response_body - response is expected (repeated req $rep, req $i)");
            }
        }
    } elsif (defined(my $vl = $block->response_body_like)) {
        my $pat = pick($vl, $i, $multi, $name);
        $pat = qr/$pat/s unless ref $pat eq 'Regexp';
        Test::More::like($body, $pat, "$name - response_body_like - response is expected ("
                         . body_summary($body) . ")");
    }

    if (defined(my $vu = $block->response_body_unlike)) {
        my $pat = pick($vu, $i, $multi, $name);
        $pat = qr/$pat/s unless ref $pat eq 'Regexp';
        Test::More::unlike($body, $pat, "$name - response_body_unlike - response is expected ("
                           . body_summary($body) . ")");
    }

    $_->($block, $body, $i, $rep, 0) for @ResponseBodyChecks;
}

# Patterns of an error_log-like section: lines of a string, or the elements
# of an array ref, or a single qr//.
sub patterns_of {
    my $v = shift;
    return () unless defined $v;
    return @$v if ref $v eq 'ARRAY';
    return ($v) if ref $v;
    return grep { $_ ne '' } split /\n/, $v;
}

sub line_matches {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ $pat : index($line, $pat) >= 0;
}

# error_log / no_error_log style checks against the given log lines.
sub check_log_patterns {
    my ($name, $lines, $want, $dont, $file, $suffix) = @_;
    for my $pat (patterns_of($want)) {
        my $found = grep { line_matches($_, $pat) } @$lines;
        $Tb->ok($found, $found
            ? "$name - pattern \"$pat\" matches a line in $file$suffix"
            : "$name - pattern \"$pat\" should match a line in $file$suffix");
    }
    for my $pat (patterns_of($dont)) {
        # one failure per offending line, as the real runner reports them
        my @bad = grep { line_matches($_, $pat) } @$lines;
        for my $line (@bad) {
            (my $l = $line) =~ s/(["\\])/\\$1/g;
            $Tb->ok(0, "$name - pattern \"$pat\" should not match any line in"
                       . " $file but matches line \"$l\"$suffix");
        }
        $Tb->ok(1, "$name - pattern \"$pat\" does not match a line in $file$suffix")
            unless @bad;
    }
}

# Log checks after one response; $off is where its part of error.log starts.
sub check_logs {
    my ($block, $name, $rep, $off) = @_;
    my $grep = defined $block->grep_error_log && defined $block->grep_error_log_out;
    my $acc = defined $block->access_log || defined $block->no_access_log;
    return unless $grep || $acc || defined $block->error_log
                  || defined $block->no_error_log;

    # nginx may finish logging a request only after the client has seen the
    # connection close (lingering close): give it a moment, as the real
    # runner does (3 x TEST_NGINX_SLEEP before each log file is read).
    sleep 3 * $TestNginxSleep;
    my @err = split /\n/, slurp($ErrLogFile, $CheckAccumErrLog ? 0 : $off);

    if ($grep) {
        my $g = $block->grep_error_log;
        my $gout = $block->grep_error_log_out;
        my $out = '';
        for my $line (@err) {
            if (ref $g) {
                $out .= "$&\n" while $line =~ /$g/g;
            } else {
                my $p = 0;
                while (length $g && (my $at = index($line, $g, $p)) >= 0) {
                    $out .= "$g\n";
                    $p = $at + length $g;
                }
            }
        }
        my $exp = ref $gout eq 'ARRAY' ? $gout->[$rep] : $gout;
        is_str($out, $exp, "$name - grep_error_log_out (req $rep)");
    }

    check_log_patterns($name, \@err, scalar($block->error_log), scalar($block->no_error_log),
                       'error.log', " (req $rep)");

    if ($acc) {
        # (the real runner always looks at the whole access log)
        sleep 3 * $TestNginxSleep;
        my @acc = split /\n/, slurp($AccLogFile);
        check_log_patterns($name, \@acc, scalar($block->access_log), scalar($block->no_access_log),
                           'access.log', " (req $rep)");
    }
}


# ---------------------------------------------------------------------------
# Running blocks
# ---------------------------------------------------------------------------

# skip_nginx / skip_nginx2 / skip_eval: returns (count, reason) when the
# block must be skipped.
sub skip_reason {
    my ($block, $name) = @_;
    if (defined(my $s = $block->skip_nginx)) {
        $s =~ /^\s*(\d+)\s*:\s*([<>]=?|[!=]=)\s*(\d+(?:\.\d+)*)\s*$/
            or bail_out("$name - invalid skip_nginx spec: $s");
        return ($1, "nginx version $2 $3") if version_test($2, $3);
    }
    if (defined(my $s = $block->skip_nginx2)) {
        $s =~ /^\s*(\d+)\s*:\s*([<>]=?|[!=]=)\s*(\d+(?:\.\d+)*)\s+(and|or)\s+
               ([<>]=?|[!=]=)\s*(\d+(?:\.\d+)*)\s*$/x
            or bail_out("$name - invalid skip_nginx2 spec: $s");
        my ($n, $o1, $v1, $op, $o2, $v2) = ($1, $2, $3, $4, $5, $6);
        my $c = $op eq 'and' ? version_test($o1, $v1) && version_test($o2, $v2)
                             : version_test($o1, $v1) || version_test($o2, $v2);
        return ($n, 'various reasons') if $c;
    }
    if (defined(my $s = $block->skip_eval)) {
        $s =~ /^\s*(\d+)\s*:\s*(.*)$/s
            or bail_out("$name - invalid skip_eval spec: $s");
        my ($n, $code) = ($1, $2);
        my $r = eval "package main; no strict; $code";
        bail_out("$name - skip_eval: $@") if $@;
        return ($n, 'skip_eval') if $r;
    }
    return;
}

sub run_init {
    my ($block, $name) = @_;
    my $code = $block->init;
    return unless defined $code;
    if (ref $code eq 'CODE') { $code->(); return }
    eval "package main; no strict; $code; 1" or bail_out("$name - init failed: $@");
}

# must_die: nginx has to refuse to start.
sub run_must_die {
    my ($block, $conf_block, $name) = @_;
    for my $rep (0 .. $RepeatEach - 1) {
        stop_nginx();
        setup_server_root();
        write_file($ConfFile, gen_conf($conf_block, $block, undef, 1));
        write_user_files($block, $name);
        my ($cmd, $status) = start_nginx(must_die => 1);
        my $exit = defined $cmd ? $status >> 8 : 0;
        my $want = $block->must_die;
        $want =~ s/^\s+|\s+$//g if defined $want;
        if (defined $want && $want ne '') {
            $Tb->is_eq($exit, $want, "$name - die with the expected exit code");
        } else {
            $Tb->isnt_eq($exit, 0, "$name - die as expected");
        }
        check_logs($block, $name, $rep, 0);
        if (!defined $cmd) {
            warn_msg("$name - nginx must die but it does not; killing it (req $rep)");
            stop_nginx();
        }
    }
}

# Send the block's request(s) for one repetition and run the checks.
sub run_requests {
    my ($block, $name, $rep) = @_;
    my $timeout = parse_time(scalar($block->timeout), 'timeout') // $Timeout;
    my $shutdown = $block->shutdown;
    if (defined $shutdown) {
        $shutdown =~ s/^\s+|\s+$//g;
        $shutdown = 1 if $shutdown eq '';
    }
    my $wait = parse_time(scalar($block->wait), 'wait');

    # Each job is one connection yielding one or more responses.
    my @jobs;
    if (defined(my $p = $block->pipelined_requests)) {
        my @reqs = ref $p eq 'ARRAY' ? @$p : ($p);
        my (@chunks, @methods);
        for my $k (0 .. $#reqs) {
            my $conn = $k == $#reqs ? 'close' : 'keep-alive';
            my ($r, @c) = build_request_chunks(expand_env($reqs[$k], $name),
                                               $name, $block, $conn);
            push @methods, $r->{method};
            my $data = join '', map { $_->{data} } @c;
            push @chunks, $data;
        }
        push @jobs, { chunks => [{ data => join('', @chunks), delay => 0 }],
                      methods => \@methods };
    } elsif (defined(my $raw = $block->raw_request)) {
        my $delay = parse_time(scalar($block->raw_request_middle_delay), 'raw_request_middle_delay')
                    // $TestNginxSleep;
        my @parts = ref $raw eq 'ARRAY' ? @$raw : ($raw);
        my @chunks;
        for my $k (0 .. $#parts) {
            my $pt = $parts[$k];
            my ($d, $dl) = ref $pt eq 'HASH' ? ($pt->{value}, $pt->{delay_before})
                                             : ($pt, undef);
            push @chunks, { data => $d // '', delay => $k ? ($dl // $delay) : 0 };
        }
        my ($m) = join('', map { $_->{data} } @chunks) =~ /\A\s*(\S+)/;
        push @jobs, { chunks => \@chunks, methods => [$m // 'GET'] };
    } else {
        my $req = $block->request;
        bail_out("$name - Request line should be non-empty") unless defined $req;
        my @reqs = ref $req eq 'ARRAY' ? @$req : ($req);
        for my $elem (@reqs) {
            if (defined $block->http2) {
                push @jobs, { curl => $elem };
            } else {
                my ($r, @chunks) = build_request_chunks($elem, $name, $block, 'close');
                push @jobs, { chunks => \@chunks, methods => [$r->{method}] };
            }
        }
    }

    my $nresp = 0;
    $nresp += $_->{methods} ? scalar @{ $_->{methods} } : 1 for @jobs;
    my $multi = $nresp > 1;
    if ($multi) {
        for my $sec (qw(error_code error_code_like)) {
            my $v = $block->$sec;
            pick($v, 0, 1, $name) if defined $v;
        }
    }

    my $idx = 0;
    for my $job (@jobs) {
        my $off = ($rep == 0 && $idx == 0) ? 0 : file_size($ErrLogFile);
        my ($data, @methods);
        if (exists $job->{curl}) {
            my $m;
            ($data, $m) = curl_request($block, $name, $job->{curl}, $timeout);
            @methods = ($m);
        } else {
            my $r = http_exchange($job->{chunks}, $timeout, $shutdown, undef, 1);
            if ($r->{error}) {
                $Tb->ok(0, "$name - $r->{error} (aborted)");
            } elsif ($r->{timed_out} && !defined $block->abort) {
                $Tb->ok(0, "ERROR: client socket timed out - $name\n");
            }
            $data = $r->{data};
            @methods = @{ $job->{methods} };
            verbose("response: [$data]");
        }
        my $pos = 0;
        for my $m (@methods) {
            my $res;
            ($res, $pos) = parse_response($data, $pos, $m, $name);
            check_response($block, $name, $res, $rep, $idx, $multi)
                unless defined $block->ignore_response;
            sleep $wait if $wait;
            check_logs($block, $name, $rep, $off);
            $off = file_size($ErrLogFile);
            $idx++;
        }
    }
}

# shutdown_error_log / no_shutdown_error_log: checked against what nginx
# logs while it is being stopped (called from stop_nginx()).
sub check_shutdown_logs {
    my ($block, $name, $off) = @_;
    my $want = $block->shutdown_error_log;
    my $dont = $block->no_shutdown_error_log;
    return unless defined $want || defined $dont;
    my @lines = split /\n/, slurp($ErrLogFile, $off);
    check_log_patterns($name, \@lines, $want, $dont, 'error.log', '');
}

# In HUP mode nginx is not stopped between blocks: skip those checks.
sub skip_shutdown_logs {
    my ($block, $name) = @_;
    $Tb->skip("$name - shutdown_error_log - tests skipped due to dry_run")
        for patterns_of(scalar $block->shutdown_error_log);
    $Tb->skip("$name - no_shutdown_error_log - tests skipped due to 1")
        for patterns_of(scalar $block->no_shutdown_error_log);
}

sub run_block {
    my ($block) = @_;
    $_->($block) for @BlockPreprocessors;
    my $name = "$0 " . $block->name;
    verbose("Run the test block $name ...");

    if (my ($n, $why) = skip_reason($block, $name)) {
        $Tb->skip("$name - $why") for 1 .. $n * $RepeatEach;
        return;
    }

    # A block without "--- config" reuses the previous block's whole
    # configuration (http_config, main_config, server_name, log_level, ...).
    my $conf_block = defined $block->config ? $block : $PrevConfBlock;
    if (!$conf_block && !$NoNginxManager) {
        bail_out("$name - No '--- config' section specified and could not get"
                 . " previous one. Use TEST_NGINX_NO_NGINX_MANAGER ?");
    }
    $PrevConfBlock = $conf_block;

    my $late_user_files = 0;
    refresh_pid() if defined $NginxPid;
    if ($NoNginxManager) {
        run_init($block, $name);
    } elsif (defined $block->must_die) {
        run_must_die($block, $conf_block, $name);
        $_->($block) for @TestCleanupHandlers;
        return;
    } elsif (!defined $block->config
             && ((defined $NginxPid && proc_alive($NginxPid))
                 || (valgrind_enabled() && !$UseHup)))
    {
        # Like the real runner: a block without "--- config" neither
        # restarts nor reloads nginx and keeps the server root (logs, user
        # files) as it is; its own user_files only show up from the second
        # repetition on.  (Under valgrind without HUP nginx was stopped
        # after the previous block, and is not started again.)
        $late_user_files = 1;
        run_init($block, $name);
    } else {
        my $token = $UseHup ? random_token() : undef;
        my $conf = gen_conf($conf_block, $block, $token);
        if ($UseHup && defined $NginxPid && proc_alive($NginxPid)) {
            setup_server_root(1);
            write_file($ConfFile, $conf);
            write_user_files($block, $name);
            reload_nginx($name, $block, $token);
        } else {
            stop_nginx();
            setup_server_root();
            write_file($ConfFile, $conf);
            write_user_files($block, $name);
            my ($cmd, $status) = start_nginx();
            if (defined $cmd) {
                # Under valgrind the real runner does not notice that nginx
                # died at startup: the requests then fail to connect.
                bail_out("$name - Cannot start nginx using command \"$cmd\""
                         . " (status code $status).") unless valgrind_enabled();
                warn_msg("$name - nginx failed to start: \"$cmd\" (status $status)");
            }
        }
        run_init($block, $name);
    }

    for my $rep (0 .. $RepeatEach - 1) {
        write_user_files($block, $name) if $late_user_files && $rep > 0;
        run_requests($block, $name, $rep);
    }
    # shutdown_error_log: checked when nginx is stopped (or, in HUP mode,
    # skipped when it is reloaded) next, if this is still the last block
    $ShutdownCheck = [$block, $name] unless $NoNginxManager;
    # Under valgrind (without HUP) nginx is stopped after every block, so
    # that each block's valgrind report is complete; like the real runner,
    # no shutdown_error_log checks are made then.
    stop_nginx(no_checks => 1) if valgrind_enabled() && !$UseHup && !$NoNginxManager;
    $_->($block) for @TestCleanupHandlers;
}

sub run_test {
    my $block = shift;
    find_nginx();
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;
    run_block($block);
}

sub run_tests {
    find_nginx();
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;
    my @blocks = Test::Base::blocks();
    @blocks = shuffle(@blocks) unless $NoShuffle;
    run_block($_) for @blocks;
    cleanup();
}

1;

__END__

=head1 NAME

Test::Nginx::Socket - minimal Test::Nginx::Socket-compatible runner (project-local)

=head1 SYNOPSIS

    use Test::Nginx::Socket 'no_plan';
    repeat_each(2);
    no_shuffle();
    run_tests();

    __DATA__

    === TEST 1: hello
    --- config
        location = /t { return 200 "hello\n"; }
    --- request
    GET /t
    --- response_body
    hello

=head1 DESCRIPTION

A clean-room implementation of the subset of the Test::Nginx::Socket data
format used by this project's test suites, for machines where the CPAN
module cannot be installed.  See F<t/lib/README.md> for the exact list of
supported sections, functions and environment variables, for where valgrind
output goes, and for the behaviour of the real runner that is deliberately
not reproduced.

=cut
