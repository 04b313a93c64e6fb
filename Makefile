# ngx_claw_module
#
#   make            build build/nginx/objs/ngx_http_claw_module.so
#   make test       install what is missing, build, run the t/ suites
#   make demo       install what is missing, build, start the demo
#   make demo-stop  stop the demo
#   make test-openclaw  the real OpenClaw gateway behind the module
#                   (Node 24 and openclaw from the npm registry, into
#                   build/openclaw; headless Chromium from Debian)
#   make deb        build/deb/libnginx-mod-http-claw_<version>_<arch>.deb,
#                   checked with lintian
#   make test-deb   that package installed, run, removed and purged in a
#                   clean Debian 12 root (t/package/run; root, a mirror)
#   make test-nginx NGINX_NEW=/path/to/nginx-source
#                   build nginx from that source tree (a release tarball
#                   or a checkout of nginx's repository) with the module,
#                   into build/nginx-new, and run the t/ suites against it
#
# The module is built against Debian's nginx with Debian's own flags:
# the configure arguments in /usr/share/nginx/src/conf_flags (which carry
# --with-compat) and the compiler and linker options `nginx -V` reports,
# in a copy of that tree under build/, so that the .so loads into
# /usr/sbin/nginx.

SHELL       := /bin/bash

NGINX       ?= /usr/sbin/nginx
NGINX_SRC   ?= /usr/share/nginx/src
BUILD       ?= build
NGX_BUILD   := $(BUILD)/nginx
MODULE      := $(NGX_BUILD)/objs/ngx_http_claw_module.so

SRCS        := $(wildcard ngx_claw_module/*.c ngx_claw_module/*.h)

# the pure parsers and codecs, which unit tests and fuzz targets link alone
PURE        := ngx_claw_module/ngx_http_claw_parse.c \
               ngx_claw_module/ngx_http_claw_token.c \
               ngx_claw_module/ngx_http_claw_resp.c
UNIT        := $(BUILD)/unit/claw_unit
# disk faults on demand for t/journal.t, loaded into nginx with LD_PRELOAD
FAULT       := $(BUILD)/unit/claw_fault.so
CFLAGS_UNIT := -g -O1 -Wall -Wextra -Werror -Ingx_claw_module

# Debian packages, by what needs them
PKG_BUILD   := nginx-core nginx-dev gcc make libc6-dev libpcre2-dev libjansson-dev \
               libcurl4-openssl-dev \
               libssl-dev zlib1g-dev openssl
PKG_TEST    := perl libtest-base-perl libtest-longstring-perl \
               libtext-diff-perl liblist-moreutils-perl libhttp-message-perl \
               liburi-perl curl nghttp2-client openssl pebble redis-server \
               redis-tools libio-socket-ssl-perl prometheus python3 \
               knot knot-dnsutils bind9-dnsutils
PKG_DEMO    := curl
PKG_DEB     := dpkg-dev debhelper fakeroot lintian
PKG_TEST_DEB := debootstrap curl openssl iproute2 util-linux

# the real Test::Nginx when it is installed, the project's runner if not
PROVE_INC   := $(shell perl -MTest::Nginx::Socket -e1 2>/dev/null \
                       || echo "-I t/lib")
PROVE_ARGS  ?= -r t

export TEST_NGINX_BINARY       ?= $(NGINX)
export TEST_NGINX_LOAD_MODULES ?= $(CURDIR)/$(MODULE)
export TEST_NGINX_CLAW_ROOT    := $(CURDIR)


.PHONY: all build unit deps deps-build deps-test test demo demo-stop clean \
        test-openclaw deb test-deb test-nginx

all: build

build: deps-build $(MODULE)

$(NGX_BUILD)/objs/Makefile: config $(NGINX_SRC)/conf_flags
	rm -rf $(NGX_BUILD)
	mkdir -p $(BUILD)
	cp -r $(NGINX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) \
	&& . ./conf_flags \
	&& ./configure "$${NGX_CONF_FLAGS[@]}" \
	       --with-cc-opt="$$($(NGINX) -V 2>&1 \
	                        | sed -n "s/.*--with-cc-opt='\([^']*\)'.*/\1/p")" \
	       --with-ld-opt="$$($(NGINX) -V 2>&1 \
	                        | sed -n "s/.*--with-ld-opt='\([^']*\)'.*/\1/p")" \
	       --add-dynamic-module=$(CURDIR) > configure.log 2>&1 \
	|| { tail -30 configure.log; exit 1; }

$(MODULE): $(NGX_BUILD)/objs/Makefile $(SRCS)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules

unit: deps-build $(UNIT) $(FAULT)

$(UNIT): t/unit/claw_unit.c $(PURE) $(wildcard ngx_claw_module/*.h)
	mkdir -p $(dir $@)
	$(CC) $(CFLAGS_UNIT) -o $@ t/unit/claw_unit.c $(PURE) -lcrypto

$(FAULT): t/fault/claw_fault.c
	mkdir -p $(dir $@)
	$(CC) -shared -fPIC -O1 -Wall -Wextra -Werror -o $@ t/fault/claw_fault.c -ldl

# Installs only what is missing, so a prepared machine needs no network.
deps: deps-build deps-test

deps-build:
	@scripts/apt-install $(PKG_BUILD)

deps-test:
	@scripts/apt-install $(PKG_TEST)

test: deps-test deps-openapi build unit
	prove $(PROVE_INC) $(PROVE_ARGS)

# the OpenAPI check's validators, from the npm registry (t/openapi.t)
deps-openapi: $(BUILD)/npm/node_modules/.claw-openapi

$(BUILD)/npm/node_modules/.claw-openapi: t/openapi/package.json
	@command -v npm >/dev/null 2>&1 || scripts/apt-install npm
	@mkdir -p $(BUILD)/npm
	cp t/openapi/package.json $(BUILD)/npm/
	cd $(BUILD)/npm && npm install --no-audit --no-fund --loglevel=error
	@touch $@

# the real gateway: npm (when no npm is installed yet) and Chromium's
# headless shell from Debian, Node 24 and openclaw from the npm registry
PKG_OPENCLAW := chromium-headless-shell iproute2

test-openclaw: deps-test build
	@command -v npm >/dev/null 2>&1 || scripts/apt-install npm
	@scripts/apt-install $(PKG_OPENCLAW)
	t/openclaw/install
	t/openclaw/e2e

# The Debian package.  The version is NGX_HTTP_CLAW_VERSION, in one place;
# debian/changelog is written from it (dated by the last commit) into a
# copy of the sources under build/deb, which dpkg-buildpackage builds
# there; CHANGELOG.md must have a section for it.
VERSION     := $(shell sed -n 's/^\#define NGX_HTTP_CLAW_VERSION *"\(.*\)"/\1/p' \
                       ngx_claw_module/ngx_http_claw_module.h)
DEB_PKG     := libnginx-mod-http-claw
DEB_ARCH    := $(shell dpkg --print-architecture 2>/dev/null)
DEB_DIR     := $(BUILD)/deb
DEB_SRC     := $(DEB_DIR)/$(DEB_PKG)-$(VERSION)
DEB         := $(DEB_DIR)/$(DEB_PKG)_$(VERSION)_$(DEB_ARCH).deb
DEB_DATE    := $(shell git log -1 --format=%aD 2>/dev/null || date -R)
DEB_FILES   := config Makefile mk ngx_claw_module examples docs debian \
               README.md CHANGELOG.md LICENSE

deb: deps-build
	@scripts/apt-install $(PKG_DEB)
	@test -n "$(VERSION)" \
	    || { echo "no NGX_HTTP_CLAW_VERSION in ngx_http_claw_module.h" >&2; \
	         exit 1; }
	@grep -q '^## \[$(VERSION)\]' CHANGELOG.md \
	    || { echo "CHANGELOG.md has no section ## [$(VERSION)]" >&2; exit 1; }
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	tar -c $(DEB_FILES) | tar -x -C $(DEB_SRC)
	printf '%s\n' \
	    '$(DEB_PKG) ($(VERSION)) bookworm; urgency=medium' '' \
	    '  * Release $(VERSION) of ngx_claw_module: see' \
	    '    CHANGELOG.md in /usr/share/doc/$(DEB_PKG)' '' \
	    ' -- $(shell sed -n 's/^Maintainer: //p' debian/control)  $(DEB_DATE)' \
	    > $(DEB_SRC)/debian/changelog
	cd $(DEB_SRC) && dpkg-buildpackage -b -uc -us > ../build.log 2>&1 \
	    || { tail -40 ../build.log; exit 1; }
	test -f $(DEB)
	lintian --fail-on error --info $(DEB_DIR)/*.changes
	@echo "built $(DEB)"

test-deb: deb
	@scripts/apt-install $(PKG_TEST_DEB)
	t/package/run $(DEB)
# Another nginx than Debian's, from its source (fetched by hand: nothing
# here downloads it): Debian's set of modules, which t/ needs, and its
# error log on stderr before the configuration's (t/ reads nginx -t's
# messages there), with -Werror.  Configured again when the tree or its
# version changes.
NGINX_NEW   ?=
NGX_NEW     := $(BUILD)/nginx-new
NGX_NEW_CONF := --error-log-path=stderr \
               --with-compat --with-debug --with-threads --with-pcre-jit \
               --with-http_ssl_module --with-http_v2_module \
               --with-http_realip_module --with-http_stub_status_module \
               --with-http_auth_request_module --with-http_dav_module \
               --with-http_slice_module --with-http_sub_module \
               --with-stream --with-stream_ssl_module

test-nginx: deps-test deps-openapi unit
	@test -n "$(NGINX_NEW)" -a -f "$(NGINX_NEW)/src/core/nginx.h" \
	|| { echo "usage: make test-nginx NGINX_NEW=/path/to/nginx-source"; \
	     exit 1; }
	@src="$$(cd $(NGINX_NEW) && pwd) $$(sed -n \
	       's/^#define NGINX_VERSION *"\(.*\)"/\1/p' \
	       $(NGINX_NEW)/src/core/nginx.h)"; \
	if [ "$$(cat $(NGX_NEW)/.source 2>/dev/null)" != "$$src" ]; then \
	    echo "configuring nginx $$src in $(NGX_NEW)"; \
	    rm -rf $(NGX_NEW) && mkdir -p $(NGX_NEW) \
	    && tar -C $(NGINX_NEW) --exclude=./.git -cf - . \
	       | tar -C $(NGX_NEW) -xf - \
	    && cd $(NGX_NEW) \
	    && { test -x configure && c=./configure || c=auto/configure; } \
	    && $$c $(NGX_NEW_CONF) --with-cc-opt="-O2 -Werror" \
	           --add-dynamic-module=$(CURDIR) > configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }; \
	    echo "$$src" > .source; \
	fi
	$(MAKE) -C $(NGX_NEW) -f objs/Makefile
	TEST_NGINX_BINARY=$(CURDIR)/$(NGX_NEW)/objs/nginx \
	TEST_NGINX_LOAD_MODULES=$(CURDIR)/$(NGX_NEW)/objs/ngx_http_claw_module.so \
	    prove $(PROVE_INC) $(PROVE_ARGS)

demo: deps build
	@examples/demo/demo start

demo-stop:
	@examples/demo/demo stop

clean:
	rm -rf $(BUILD) t/servroot

include mk/bench.mk
include mk/hardening.mk
