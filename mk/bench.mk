# benchmarks (issue: make bench); see bench/ and docs/benchmarks.md
#
#   make bench            the table: claw against nginx-bare, nginx-stock,
#                         haproxy and caddy at K = 10, 10,000 and 100,000
#                         tenants (15-30 minutes on 2 cores; settings in
#                         bench/bench.pl, e.g. BENCH_ROUNDS=5 make bench),
#                         then the paired run of claw and nginx-bare at
#                         K = 10 (short slices in turn, ABBA: the ratio
#                         a drifting machine cannot give over rounds)
#   BENCH_DOC=1 make bench   also writes the table into docs/benchmarks.md
#   make bench-profile    perf profile of each contestant under the load
#   make bench-callgrind  instructions per request of claw and nginx-bare
#   make bench-wake       scale to zero: the latency a wake adds, and
#                         another tenant's latency beside wakes
#                         (bench/wake)
#   make bench-cluster    cluster mode: change propagation over three
#                         nodes and a redis-server, rate accuracy
#                         (bench/cluster; its request-path cost is in
#                         make bench's paired runs)
#
# Everything the benchmark writes is under build/bench/.  A run on a
# 2-core machine is noisy: read the ratios, never the absolute figures,
# and keep timed assertions out of make test.

PKG_BENCH   := wrk haproxy caddy util-linux perl redis-server

.PHONY: bench bench-deps bench-profile bench-callgrind bench-cluster bench-wake

bench-deps:
	@scripts/apt-install $(PKG_BENCH)

BENCH_RUN   := BENCH_MODULE=$(abspath $(MODULE)) NGINX=$(NGINX) perl bench/bench.pl

bench: bench-deps build
	$(BENCH_RUN)

bench-profile: bench-deps build
	@scripts/apt-install linux-perf
	BENCH_PROFILE=perf $(BENCH_RUN)

bench-callgrind: bench-deps build
	@scripts/apt-install valgrind
	BENCH_PROFILE=callgrind \
	BENCH_CONTESTANTS="$${BENCH_CONTESTANTS:-claw nginx-bare}" $(BENCH_RUN)

bench-cluster: bench-deps build
	BENCH_MODULE=$(abspath $(MODULE)) NGINX=$(NGINX) perl bench/cluster

bench-wake: bench-deps build
	BENCH_MODULE=$(abspath $(MODULE)) NGINX=$(NGINX) perl bench/wake
