# memory checkers, fuzzing, reload and fault passes; see fuzz/ and .ci/run
#
#   make fuzz          libFuzzer (clang-14) on every target, FUZZ_SECONDS each
#   make fuzz-replay   the seed corpora through every target (gcc ASan+UBSan)
#   make fuzz-merge    fold what "make fuzz" found into fuzz/corpus/
#   make fuzz-crashes  replay the saved findings in fuzz/crashes/ (each
#                      says "crashes" until its bug is fixed)
#   make valgrind      the t/ suites with nginx under valgrind (memcheck)
#   make asan          the module built with ASan+UBSan, the suites with it
#   make hup           the t/ suites in HUP (reload) mode
#
# docs/hardening.md says what each pass covers, how long it takes and why
# it is split the way it is.

# --- fuzzing ---------------------------------------------------------------

FUZZ_TARGETS  := host origin bearer cookie session args line gcra admin resp
FUZZ_SECONDS  ?= 60
FUZZ_JOBS     ?= 1
FUZZ_FLAGS    ?=
FUZZ_CC       ?= clang-14
FUZZ_DIR      := $(BUILD)/fuzz
FUZZ_OUT      := fuzz/out
FUZZ_HDRS     := fuzz/fuzz.h $(wildcard ngx_claw_module/ngx_http_claw_parse.h \
                                     ngx_claw_module/ngx_http_claw_token.h \
                                     ngx_claw_module/ngx_http_claw_resp.h)

# libFuzzer, as the issue asks: clang's -fsanitize=fuzzer with ASan/UBSan
FUZZ_CFLAGS   := -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror \
                 -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=all -D_GNU_SOURCE -Ingx_claw_module
# the replay build needs only gcc, which every build machine has
REPLAY_CFLAGS := -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror \
                 -fsanitize=address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
                 -Ingx_claw_module

PKG_FUZZ      := clang-14 libclang-rt-14-dev libssl-dev
PKG_VALGRIND  := valgrind
PKG_ASAN      := libasan8 libubsan1

FUZZ_BINS     := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
REPLAY_BINS   := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/replay_%)

# libFuzzer's options (FUZZ_JOBS > 1: that many processes, each logging
# to fuzz/out/fuzz-<n>.log; a timeout of 60 s, as the machines running it
# are shared)
FUZZ_RUN_OPTS  = -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
                 $(if $(filter-out 1,$(FUZZ_JOBS)),-jobs=$(FUZZ_JOBS) \
                                                   -workers=$(FUZZ_JOBS)) \
                 -timeout=60 -rss_limit_mb=2048 -max_len=4096 $(FUZZ_FLAGS)

.PHONY: deps-fuzz fuzz-build fuzz fuzz-replay fuzz-merge fuzz-crashes \
        $(FUZZ_TARGETS:%=fuzz-%)

deps-fuzz:
	@scripts/apt-install $(PKG_FUZZ)

fuzz-build: deps-fuzz deps-build $(FUZZ_BINS)

# fuzz_admin compiles ngx_http_claw_admin.c in, against the headers of the
# nginx tree the module is built in; what it links but never runs (the
# request, the zone, the journal) is left undefined by a first link and
# then defined as inert data (docs/hardening.md)
ADMIN_SRCS    := fuzz/fuzz_admin.c $(PURE) ngx_claw_module/ngx_http_claw_tables.c \
                 ngx_claw_module/ngx_http_claw_registry.c
ADMIN_INCS    := $(addprefix -I $(NGX_BUILD)/,src/core src/event src/event/modules \
                   src/os/unix objs src/http src/http/modules src/http/v2)
ADMIN_LIBS    := -ljansson -lcrypto

# $(call fuzz-link,compiler and flags): links $@ from ADMIN_SRCS
define fuzz-link
	@mkdir -p $(dir $@)
	$(1) -Wno-error -Wno-unused-parameter $(ADMIN_INCS) -o $@ $(ADMIN_SRCS) $(ADMIN_LIBS) \
	    2> $@.undefined || true
	grep -o "undefined reference to \`[a-z_0-9]*'" $@.undefined \
	    | sed "s/.*\`//; s/'//" | sort -u \
	    | sed 's/.*/char &[64] __attribute__((aligned(64)));/' > $@.stubs.c
	$(1) -Wno-error -Wno-unused-parameter $(ADMIN_INCS) -o $@ $(ADMIN_SRCS) $@.stubs.c $(ADMIN_LIBS)
endef

$(FUZZ_DIR)/fuzz_admin: $(ADMIN_SRCS) $(SRCS) $(FUZZ_HDRS) \
                        $(NGX_BUILD)/objs/ngx_auto_config.h
	$(call fuzz-link,$(FUZZ_CC) $(FUZZ_CFLAGS))

$(FUZZ_DIR)/replay_admin: $(ADMIN_SRCS) fuzz/replay.c $(SRCS) $(FUZZ_HDRS) \
                          $(NGX_BUILD)/objs/ngx_auto_config.h
	$(call fuzz-link,$(CC) $(REPLAY_CFLAGS) fuzz/replay.c)

# the nginx tree the module builds in, configured (by the Makefile's rule)
# only if it is not yet
$(NGX_BUILD)/objs/ngx_auto_config.h:
	$(MAKE) $(NGX_BUILD)/objs/Makefile

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c $(PURE) $(FUZZ_HDRS) mk/hardening.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(PURE) -lcrypto

$(FUZZ_DIR)/replay_%: fuzz/fuzz_%.c fuzz/replay.c $(PURE) $(FUZZ_HDRS) \
                      mk/hardening.mk
	@mkdir -p $(dir $@)
	$(CC) $(REPLAY_CFLAGS) -o $@ $< fuzz/replay.c $(PURE) -lcrypto

# One target: make fuzz-line FUZZ_SECONDS=600.  New inputs go to
# fuzz/out/<target>/ (not in git), findings to fuzz/crashes/<target>/.
$(FUZZ_TARGETS:%=fuzz-%): fuzz-%: deps-fuzz deps-build $(FUZZ_DIR)/fuzz_%
	@mkdir -p $(FUZZ_OUT)/$* fuzz/corpus/$* fuzz/crashes/$*
	cd $(FUZZ_OUT) && ASAN_OPTIONS=detect_leaks=1 \
	    $(CURDIR)/$(FUZZ_DIR)/fuzz_$* $(FUZZ_RUN_OPTS) \
	    -artifact_prefix=$(CURDIR)/fuzz/crashes/$*/ \
	    $(CURDIR)/$(FUZZ_OUT)/$* $(CURDIR)/fuzz/corpus/$*

fuzz: $(FUZZ_TARGETS:%=fuzz-%)

# minimise: what fuzz/out/ found that adds coverage, into fuzz/corpus/
fuzz-merge: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_OUT)/$$t fuzz/corpus/$$t; \
	    $(FUZZ_DIR)/fuzz_$$t -merge=1 fuzz/corpus/$$t $(FUZZ_OUT)/$$t \
	        2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new files' || exit 1; \
	done

# the corpora as regression tests: every input once, any report fails
fuzz-replay: deps-build $(REPLAY_BINS)
	@for t in $(FUZZ_TARGETS); do \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	        $(FUZZ_DIR)/replay_$$t fuzz/corpus/$$t || exit 1; \
	done

# the findings kept as evidence: each must still crash until it is fixed
fuzz-crashes: deps-build $(REPLAY_BINS)
	@for t in $(FUZZ_TARGETS); do \
	    for f in fuzz/crashes/$$t/*; do \
	        [ -f "$$f" ] || continue; \
	        if $(FUZZ_DIR)/replay_$$t "$$f" >/dev/null 2>&1; then \
	            echo "fixed:   $$f"; \
	        else \
	            echo "crashes: $$f"; \
	        fi; \
	    done; \
	done


# --- the suites under memory checkers and in HUP mode -----------------------
#
# Each pass runs the t/ files one by one (a file that bails out or hangs
# ends alone, under PASS_TIMEOUT), in a server root of its own, and then
# stops whatever is left of that file's nginx.  Blocks that cannot work in
# a pass (they go on with an nginx the pass has stopped, or restart nginx
# in a way the pass replaces) are skipped there by running a copy of their file with "--- SKIP" added;
# the lists below say which, docs/hardening.md says why.
#
#   make valgrind       memcheck; fails on any report that involves the
#                       module (or any invalid access at all); the files'
#                       own results are shown, not judged (valgrind makes
#                       nginx 20-50x slower: rate and timing checks fail)
#   make asan           the module with ASan+UBSan, nginx with libasan
#                       preloaded; fails on any report or failed test
#   make hup            TEST_NGINX_USE_HUP=1; fails on any failed test
#
#   SUITE_FILES=...     the files to run (default: all of t/*.t)
#   PASS_NETNS=1        run each pass in a network namespace of its own
#                       (root): the suites' fixed ports do not meet
#                       another run's

HARD_DIR      := $(BUILD)/hardening
SUITE_FILES   ?= $(sort $(wildcard t/*.t))
PASS_NETNS    ?=
PASS_TIMEOUT  ?= 900

# Blocks a pass skips: "file.t:n,n" (numbers of "=== TEST n:") or
# "file.t~words+of+the+title" ('+' for a space), and every block of any file
# whose text calls one of the *_CALLS functions (a regex), see
# docs/hardening.md for why each is there
VALGRIND_SKIP       ?= acme.t:8,9,10,15,18 acme-dns.t:9,10,12,13 health.t:2
VALGRIND_SKIP_CALLS ?=
HUP_SKIP            ?= admin.t~every+worker+answers+for+the+new+tenant \
                       acme.t~retried+with+growing+delays
HUP_SKIP_CALLS      ?= ClawTest::nginx_restart_hard
ASAN_SKIP           ?=
ASAN_SKIP_CALLS     ?=

ASAN_BUILD    := $(BUILD)/asan
ASAN_NGX      := $(ASAN_BUILD)/nginx
ASAN_MODULE   := $(ASAN_NGX)/objs/ngx_http_claw_module.so
ASAN_NGINX    := $(ASAN_BUILD)/nginx-asan
ASAN_CFLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                 -fno-omit-frame-pointer

.PHONY: deps-valgrind deps-asan deps-netns valgrind asan asan-build hup

deps-valgrind:
	@scripts/apt-install $(PKG_VALGRIND)

deps-asan:
	@scripts/apt-install $(PKG_ASAN)

deps-netns:
	@$(if $(PASS_NETNS),scripts/apt-install iproute2 util-linux,:)

# The pass driver: run-pass NAME SKIP CALLS FILES...; the pass's environment
# (TEST_NGINX_USE_VALGRIND, ...) comes from the caller.
define HARDENING_RUN_PASS
set -u
name=$$1 skip=$$2 calls=$$3; shift 3
dir=$$PWD/$(HARD_DIR)/$$name
rm -rf "$$dir"; mkdir -p "$$dir/t"
export TEST_NGINX_SERVROOT=$$dir/servroot
: > "$$dir/summary"
for f in "$$@"; do
    b=$$(basename "$$f" .t)
    run=$$dir/t/$$b.t
    tests=$$(SKIP="$$skip" CALLS="$$calls" perl -e "$$HARDENING_SKIP_BLOCKS" \
                 "$$f" "$$run")
    [ -n "$$tests" ] || run=$$f
    start=$$(date +%s)
    timeout -k 10 $(PASS_TIMEOUT) prove $(PROVE_INC) "$$run" \
        > "$$dir/$$b.tap" 2> "$$dir/$$b.err" &
    pid=$$!
    # A file that bails out leaves its nginx running, and nginx under
    # valgrind holds prove's pipe open: once the test process is gone,
    # what is left of this file's nginx (found by its server root) goes.
    gone=0
    while kill -0 "$$pid" 2>/dev/null; do
        sleep 1
        prove=$$(pgrep -P "$$pid" | head -1)
        if [ -z "$$prove" ] || pgrep -P "$$prove" >/dev/null; then
            gone=0
            continue
        fi
        gone=$$((gone + 1))
        [ "$$gone" -ge 5 ] || continue
        for p in $$(pgrep -f -- "$$TEST_NGINX_SERVROOT/"); do
            kill -KILL "$$p" 2>/dev/null
        done
    done
    wait "$$pid"
    rc=$$?
    for p in $$(pgrep -f -- "$$TEST_NGINX_SERVROOT/"); do
        kill -KILL "$$p" 2>/dev/null
    done
    printf '%-22s %s %4ss%s\n' "$$b.t" \
        "$$([ $$rc = 0 ] && echo pass || echo "FAIL($$rc)")" \
        "$$(( $$(date +%s) - start ))" "$${tests:+ (skipped: $$tests)}" \
        | tee -a "$$dir/summary"
    # what failed, in the log of the run (CI keeps nothing else)
    if [ $$rc != 0 ]; then
        grep -E 'Failed tests?:|Parse errors|Bad plan' "$$dir/$$b.tap" \
            | sed 's/^/    /'
        grep -E '^#|FAILED|Bailout|[Dd]ied|ERROR' "$$dir/$$b.err" \
            | head -n 60 | sed 's/^/    /'
    fi
done
endef
export HARDENING_RUN_PASS

# Writes a copy of a .t file with "--- SKIP" in the blocks to skip (by
# number, by title, or by a call in their text); prints their numbers.
define HARDENING_SKIP_BLOCKS
my ($$in, $$out) = @ARGV;
(my $$base = $$in) =~ s{.*/}{};
my (%num, @title);
for (split ' ', $$ENV{SKIP} // '') {
    next unless s/^\Q$$base\E(?=[:~])//;
    if (s/^://) { $$num{$$_} = 1 for split /,/ }
    else { s/^~//; s/\+/ /g; push @title, $$_ }
}
my $$calls = $$ENV{CALLS};
open my $$fh, '<', $$in or die "$$in: $$!\n";
my $$text = do { local $$/; <$$fh> };
my ($$head, @blocks) = split /^(?==== TEST \d+:)/m, $$text;
my @skipped;
for my $$b (@blocks) {
    my ($$n, $$title) = $$b =~ /^=== TEST (\d+):\s*(.*)/;
    next unless $$num{$$n} || grep({ index($$title, $$_) >= 0 } @title)
                || ($$calls && $$b =~ /$$calls/);
    $$b =~ s/\n/\n--- SKIP\n/;
    push @skipped, $$n;
}
exit 0 unless @skipped;
open my $$o, '>', $$out or die "$$out: $$!\n";
print $$o $$head, @blocks;
close $$o or die "$$out: $$!\n";
print "@skipped\n";
endef
export HARDENING_SKIP_BLOCKS


define pass-netns
$(if $(PASS_NETNS),unshare -n bash -c 'ip link set lo up && exec "$$@"' pass,)
endef

valgrind: deps-test deps-valgrind deps-netns build unit
	@TEST_NGINX_USE_VALGRIND=1 $(pass-netns) \
	    bash -c "$$HARDENING_RUN_PASS" run-pass valgrind "$(VALGRIND_SKIP)" \
	    '$(VALGRIND_SKIP_CALLS)' $(SUITE_FILES)
	@scripts/valgrind-scan $(HARD_DIR)/valgrind/*.err

hup: deps-test deps-netns build unit
	@TEST_NGINX_USE_HUP=1 $(pass-netns) \
	    bash -c "$$HARDENING_RUN_PASS" run-pass hup "$(HUP_SKIP)" \
	    '$(HUP_SKIP_CALLS)' $(SUITE_FILES)
	@! grep -q FAIL $(HARD_DIR)/hup/summary \
	 || { echo "hup: failed:"; grep FAIL $(HARD_DIR)/hup/summary; exit 1; }

# The module with ASan+UBSan in a tree of its own, configured as the
# plain build is, plus the sanitizers.
$(ASAN_NGX)/objs/Makefile: config $(NGINX_SRC)/conf_flags
	rm -rf $(ASAN_NGX)
	mkdir -p $(ASAN_BUILD)
	cp -r $(NGINX_SRC) $(ASAN_NGX)
	cd $(ASAN_NGX) \
	&& . ./conf_flags \
	&& ./configure "$${NGX_CONF_FLAGS[@]}" \
	       --with-cc-opt="$$($(NGINX) -V 2>&1 \
	                        | sed -n "s/.*--with-cc-opt='\([^']*\)'.*/\1/p") \
	                      $(ASAN_CFLAGS)" \
	       --with-ld-opt="$$($(NGINX) -V 2>&1 \
	                        | sed -n "s/.*--with-ld-opt='\([^']*\)'.*/\1/p") \
	                      -fsanitize=address,undefined" \
	       --add-dynamic-module=$(CURDIR) > configure.log 2>&1 \
	|| { tail -30 configure.log; exit 1; }

$(ASAN_MODULE): $(ASAN_NGX)/objs/Makefile $(SRCS)
	$(MAKE) -C $(ASAN_NGX) -f objs/Makefile modules

# Debian's nginx is not instrumented: the ASan runtime is preloaded so
# that it comes first, as an instrumented .so needs.  ASan writes its
# reports to files (log_path); UBSan, in gcc's combined runtime, ignores
# log_path and writes to stderr, which nginx points at its error log (that
# the runner wipes between blocks): a small preloaded shim keeps nginx
# from moving its stderr, so that every report lands in the .err file of
# the suite that caused it.
ASAN_SHIM     := $(ASAN_BUILD)/keep-stderr.so

$(ASAN_SHIM): mk/hardening.mk
	@mkdir -p $(dir $@)
	printf '%s\n' '#define _GNU_SOURCE' '#include <dlfcn.h>' \
	    '#include <unistd.h>' \
	    '/* nginx dup2()s its error log onto stderr: not under make asan */' \
	    'int dup2(int oldfd, int newfd) {' \
	    '    static int (*real)(int, int);' \
	    '    if (newfd == STDERR_FILENO) return newfd;' \
	    '    if (real == NULL) real = (int (*)(int, int)) dlsym(RTLD_NEXT, "dup2");' \
	    '    return real(oldfd, newfd);' \
	    '}' > $(ASAN_BUILD)/keep-stderr.c
	$(CC) -shared -fPIC -O2 -o $@ $(ASAN_BUILD)/keep-stderr.c -ldl

$(ASAN_NGINX): mk/hardening.mk
	@mkdir -p $(dir $@)
	printf '%s\n' '#!/bin/sh' \
	    '# nginx with the ASan runtime first, for the ASan build of the module' \
	    'LD_PRELOAD="$(shell gcc -print-file-name=libasan.so) $(CURDIR)/$(ASAN_SHIM)$${LD_PRELOAD:+ $$LD_PRELOAD}" \' \
	    '    exec $(NGINX) "$$@"' > $@
	chmod +x $@

asan-build: deps-build deps-asan $(ASAN_MODULE) $(ASAN_NGINX) $(ASAN_SHIM)

asan: deps-test deps-netns asan-build unit
	@rm -rf $(HARD_DIR)/asan-reports && mkdir -p $(HARD_DIR)/asan-reports
	@TEST_NGINX_BINARY=$(CURDIR)/$(ASAN_NGINX) \
	 TEST_NGINX_LOAD_MODULES=$(CURDIR)/$(ASAN_MODULE) \
	 ASAN_OPTIONS=log_path=$(CURDIR)/$(HARD_DIR)/asan-reports/asan:detect_leaks=0:abort_on_error=0:halt_on_error=1 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(pass-netns) \
	    bash -c "$$HARDENING_RUN_PASS" run-pass asan "$(ASAN_SKIP)" \
	    '$(ASAN_SKIP_CALLS)' $(SUITE_FILES)
	@cat $(HARD_DIR)/asan-reports/* 2>/dev/null; \
	 grep -l -E 'runtime error:|ERROR: AddressSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer' \
	     $(HARD_DIR)/asan/*.err 2>/dev/null | while read f; do \
	     echo "== $$f"; \
	     grep -A12 -E 'runtime error:|ERROR: AddressSanitizer' "$$f"; \
	 done; \
	 n=$$(( $$(ls $(HARD_DIR)/asan-reports | wc -l) \
	        + $$(cat $(HARD_DIR)/asan/*.err | grep -c -E 'runtime error:|ERROR: AddressSanitizer') )); \
	 if [ "$$n" != 0 ]; then echo "asan: $$n report(s)"; exit 1; fi
	@! grep -q FAIL $(HARD_DIR)/asan/summary \
	 || { echo "asan: failed:"; grep FAIL $(HARD_DIR)/asan/summary; exit 1; }
	@echo "asan: no reports"
