# invcore — one Makefile. Outputs go under build/ only; sanitizer variants
# live in build/asan and build/tsan. `make -j` safe.
#
#   make          deps + library (static, shared, pkg-config) + invcored
#   make test     deps + every Criterion suite, the sanitizer builds, the
#                 bounded fuzz runs and the source checks
#   make run      deps + build + start invcored in the foreground
#   make bench    benchmarks (tables of ops/s and ratios)
#   make coverage line and branch coverage of core/ by the suites (gcovr)
#   make fuzz     every fuzz target for FUZZ_SECONDS each
#   make fuzz-corpus-http  the HTTP suites' requests as fuzz_http's seeds
#   make install  PREFIX=/usr/local (libinvcore.so.0, headers, pkg-config, the tools;
#                 ldconfig when root); make uninstall removes what it installed

SHELL       := /bin/bash
comma       := ,
# Builds use every core (CI: 2): the test stages still run one after
# another, and every suite runs alone (see `test`).
MAKEFLAGS   += -j$(shell nproc 2>/dev/null || echo 2)
PREFIX      ?= /usr/local
CC          ?= gcc
FUZZ_CC     ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 15
B           := build

# Debian packages the build, the tests and the benchmarks need.
DEB_PACKAGES := gcc make pkg-config libjemalloc-dev libxxhash-dev \
                libcriterion-dev libhiredis-dev redis-tools redis-server \
                clang libclang-rt-14-dev liburcu-dev clang-format python3 python3-redis \
                libyajl-dev libcurl4-openssl-dev libssl-dev libjansson-dev \
                libhttp-parser-dev wrk nginx-light gcovr gnuplot-nox liburing-dev \
                etcd-server etcd-client

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
BASE    := -std=c11 -D_GNU_SOURCE -pthread -mcx16 -g -fPIC \
           -Iinclude -Icore $(WARN)
CFLAGS_REL  := $(BASE) -O2
CFLAGS_ASAN := $(BASE) -O1 -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=all \
               -DINV_SANITIZE=1
CFLAGS_TSAN := $(BASE) -O1 -fsanitize=thread -DINV_SANITIZE=1 -DINV_TSAN=1
# Coverage (make coverage): unoptimised so lines and branches map to the
# source; asserts on, as in the tests.
CFLAGS_COV  := $(BASE) -O0 --coverage
LIBS        := -ljemalloc -lpthread
TEST_LIBS   := -lcriterion -lhiredis -lpthread -lm
# invcored's own: JSON (yajl), HTTP (libcurl) and HMAC (libcrypto) for the
# webhooks. libinvcore links none of them.
SERVER_LIBS := -lyajl -lcurl -lcrypto -lhttp_parser -lhiredis

LIB_SRCS     := $(wildcard core/*.c)
SERVER_MAIN  := core/server/main.c
SERVER_SRCS  := $(filter-out $(SERVER_MAIN),$(wildcard core/server/*.c))
TEST_SRCS    := $(wildcard tests/test_*.c)
BENCH_SRCS   := $(wildcard bench/*.c)
FUZZ_SRCS    := $(wildcard fuzz/fuzz_*.c)
HEADERS      := $(wildcard include/*.h core/*.h core/server/*.h)
# invcore-bench (core/tools/bench/): the load tool, a client of the server
# only (no libinvcore). Its modules but main are also linked into their own
# suites, tests/test_bench_*.c, in every variant.
BENCHTOOL_MAIN := core/tools/bench/invcore_bench.c
BENCHTOOL_SRCS := $(filter-out $(BENCHTOOL_MAIN),$(wildcard core/tools/bench/*.c))
BENCHTOOL_HDRS := $(wildcard core/tools/bench/*.h)
BENCHTOOL_LIBS := -lhiredis -lyajl -lhttp_parser -lpthread -lm
# The bench tool's suites link its modules: $(call benchtool_objs,stem,variant-dir)
benchtool_objs = $(if $(filter test_bench_%,$(1)),$(call objs,$(2),$(BENCHTOOL_SRCS)))
TEST_HDRS    := $(wildcard tests/*.h)

# objects per variant: $(call objs,variant-dir,sources)
objs = $(patsubst %.c,$(1)/obj/%.o,$(2))

LIB_OBJS      := $(call objs,$(B),$(LIB_SRCS))
SERVER_OBJS   := $(call objs,$(B),$(SERVER_SRCS))
TESTS         := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRCS))
ASAN_TESTS    := $(patsubst tests/%.c,$(B)/asan/tests/%,$(TEST_SRCS))
# ThreadSanitizer runs the unit and stress suites in-process; the
# integration suites (a separate server process) run as release binaries
# against a ThreadSanitizer build of invcored.
# Suites that start invcored (the HTTP dialects' suites included).
INTEGRATION_SRCS := tests/test_server% tests/test_http.c tests/test_http_shop% \
                    tests/test_http_connector.c tests/test_http_wix.c tests/test_bench_cli.c \
                    tests/test_repl_server.c
TSAN_SRCS     := $(filter-out $(INTEGRATION_SRCS),$(TEST_SRCS))
SERVER_SUITES := $(patsubst tests/%.c,$(B)/tests/%,$(filter $(INTEGRATION_SRCS),$(TEST_SRCS)))
TSAN_TESTS    := $(patsubst tests/%.c,$(B)/tsan/tests/%,$(TSAN_SRCS))
BENCHES       := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRCS))
FUZZERS       := $(patsubst fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRCS))

DEPS_STAMP := $(B)/.deps-ok
# Every suite's output is kept here; `make test` ends with the totals.
TEST_LOG   := $(B)/test-results.log

# Objects of the sanitizer and fuzz builds are chained through pattern
# rules: keep them, or every run would rebuild them.
.SECONDARY:

.PHONY: all deps test test-log-reset unit-test asan-test tsan-test fuzz-test check-atomics \
        check-cycles check-readme check-install bench fuzz fuzz-corpus-http run install uninstall clean crash-test \
        coverage \
        soak-test failover-test \
        client-test format format-check

ALL_TARGETS := $(B)/libinvcore.a $(B)/libinvcore.so $(B)/invcore.pc
ifneq ($(wildcard $(SERVER_MAIN)),)
ALL_TARGETS += $(B)/invcored $(B)/invcore-feed $(B)/invcore-repair
endif
ifneq ($(wildcard $(BENCHTOOL_MAIN)),)
ALL_TARGETS += $(B)/invcore-bench
endif

all: $(ALL_TARGETS)

# ---- dependencies (Debian) -------------------------------------------------

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make deps: need root to apt-get install$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || exit 1; \
	fi
	@mkdir -p $(B) && touch $(DEPS_STAMP)

$(DEPS_STAMP):
	@$(MAKE) --no-print-directory deps

# ---- release build ---------------------------------------------------------

$(B)/obj/%.o: %.c $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REL) -c $< -o $@

$(B)/libinvcore.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# The shared library is versioned: programs link against the soname
# (libinvcore.so.0, the ABI), the file carries the full version, and
# libinvcore.so (for -linvcore at build time) points at the soname.
LIB_VERSION := 0.1.0
LIB_SONAME  := libinvcore.so.$(firstword $(subst ., ,$(LIB_VERSION)))
$(B)/libinvcore.so.$(LIB_VERSION): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,$(LIB_SONAME) -o $@ $^ $(LIBS)

$(B)/libinvcore.so: $(B)/libinvcore.so.$(LIB_VERSION)
	ln -sf libinvcore.so.$(LIB_VERSION) $(B)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $@

# pkg-config file for a prefix: $(call write_pc,prefix,file)
write_pc = printf '%s\n' 'prefix=$(1)' 'libdir=$${prefix}/lib' \
	  'includedir=$${prefix}/include' '' 'Name: invcore' \
	  'Description: in-memory inventory core' 'Version: $(LIB_VERSION)' \
	  'Libs: -L$${libdir} -linvcore' 'Libs.private: $(LIBS)' \
	  'Cflags: -I$${includedir}' > $(2)

$(B)/invcore.pc: Makefile | $(DEPS_STAMP)
	@$(call write_pc,$(PREFIX),$@)

$(B)/invcored: $(B)/obj/$(SERVER_MAIN:.c=.o) $(SERVER_OBJS) $(B)/libinvcore.a
	$(CC) $(CFLAGS_REL) -o $@ $^ $(SERVER_LIBS) $(LIBS)

# The command-line feed reader: a data dir (libinvcore) or a server (hiredis).
$(B)/invcore-feed: $(B)/obj/core/tools/invcore_feed.o $(B)/obj/core/server/feed_json.o \
                   $(B)/obj/core/server/resp.o $(B)/libinvcore.a
	$(CC) $(CFLAGS_REL) -o $@ $^ -lyajl -lhiredis $(LIBS)

# The offline journal repair (docs/JOURNAL.md "Repair"): libinvcore only.
# Its suite runs the built tool.
$(B)/invcore-repair: $(B)/obj/core/tools/invcore_repair.o $(B)/libinvcore.a
	$(CC) $(CFLAGS_REL) -o $@ $^ $(LIBS)

$(B)/tests/test_repair $(B)/asan/tests/test_repair $(B)/tsan/tests/test_repair: $(B)/invcore-repair

# The load tool (README "Load-test a flash sale").
$(B)/invcore-bench: $(call objs,$(B),$(BENCHTOOL_MAIN) $(BENCHTOOL_SRCS))
	$(CC) $(CFLAGS_REL) -o $@ $^ $(BENCHTOOL_LIBS)

BENCHTOOL_TESTS := $(patsubst tests/%.c,%,$(wildcard tests/test_bench_*.c))
# Its headers are its own objects' and suites' prerequisites only (not
# every object's, as HEADERS are).
$(foreach v,$(B) $(B)/asan $(B)/tsan $(B)/cov,$(eval \
  $(patsubst %,$(v)/tests/%,$(BENCHTOOL_TESTS)): $(call objs,$(v),$(BENCHTOOL_SRCS)) \
    $(BENCHTOOL_HDRS)))
$(foreach v,$(B) $(B)/asan $(B)/tsan $(B)/cov,$(eval \
  $(call objs,$(v),$(BENCHTOOL_MAIN) $(BENCHTOOL_SRCS)): $(BENCHTOOL_HDRS)))
# The suites that run the built tool.
$(patsubst %,$(B)/tests/%,$(BENCHTOOL_TESTS)): $(B)/invcore-bench

$(B)/tests/%: tests/%.c $(B)/libinvcore.a $(SERVER_OBJS) $(HEADERS) $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REL) -Itests -o $@ $< $(call benchtool_objs,$*,$(B)) $(SERVER_OBJS) $(B)/libinvcore.a \
	  $(TEST_LIBS) $(SERVER_LIBS) $(LIBS)

$(B)/bench/%: bench/%.c $(B)/libinvcore.a $(HEADERS) bench/bench_util.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REL) -O3 -o $@ $< $(B)/libinvcore.a $(LIBS) -lurcu-cds -lurcu -lm

# The fsync bench compares the flusher's ways to make an append durable,
# io_uring among them (issue #15, item 5).
$(B)/bench/bench_fsync: bench/bench_fsync.c bench/bench_util.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REL) -O3 -o $@ $< -luring -lpthread

# The always yardstick is a server of its own: no engine, no library.
$(B)/bench/always_ceiling: bench/always_ceiling.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REL) -O3 -o $@ $< -lpthread

# The webhook bench starts invcored and runs a receiver; its "json" mode
# compares yajl with jansson.
$(B)/bench/bench_webhook: bench/bench_webhook.c $(SERVER_OBJS) $(B)/libinvcore.a $(HEADERS) \
                          bench/bench_util.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REL) -O3 -o $@ $< $(SERVER_OBJS) $(B)/libinvcore.a -lhiredis -ljansson \
	  $(SERVER_LIBS) $(LIBS) -lm

# The HTTP face's request-body parser, yajl (used) against jansson.
$(B)/bench/bench_http_json: bench/bench_http_json.c $(SERVER_OBJS) $(B)/libinvcore.a $(HEADERS) \
                            bench/bench_util.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REL) -O3 -o $@ $< $(SERVER_OBJS) $(B)/libinvcore.a -ljansson \
	  $(SERVER_LIBS) $(LIBS) -lm

# ---- sanitizer builds (libc malloc: the sanitizer must own malloc) ---------

$(B)/asan/obj/%.o: %.c $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ASAN) -c $< -o $@

$(B)/tsan/obj/%.o: %.c $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TSAN) -c $< -o $@

# The integration suites start a server: under a sanitizer, a sanitized one.
$(B)/asan/invcored: $(call objs,$(B)/asan,$(SERVER_MAIN) $(SERVER_SRCS) $(LIB_SRCS))
	$(CC) $(CFLAGS_ASAN) -o $@ $^ $(SERVER_LIBS) -lpthread

$(B)/asan/tests/%: tests/%.c $(call objs,$(B)/asan,$(LIB_SRCS) $(SERVER_SRCS)) $(HEADERS) $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ASAN) -Itests -o $@ $< $(call benchtool_objs,$*,$(B)/asan) \
	  $(call objs,$(B)/asan,$(LIB_SRCS) $(SERVER_SRCS)) $(TEST_LIBS) $(SERVER_LIBS)

# Criterion cannot start under ThreadSanitizer (its arena collides with the
# shadow memory, Criterion#274): the TSan suites use the small compatible
# runner in tests/tsan_criterion instead of libcriterion.
TSAN_TEST_LIBS := -lhiredis -lpthread -lm
TSAN_SHIM_HDRS := $(wildcard tests/tsan_criterion/criterion/*.h)

$(B)/tsan/invcored: $(call objs,$(B)/tsan,$(SERVER_MAIN) $(SERVER_SRCS) $(LIB_SRCS))
	$(CC) $(CFLAGS_TSAN) -o $@ $^ $(SERVER_LIBS) -lpthread

$(B)/tsan/tests/%: tests/%.c $(call objs,$(B)/tsan,$(LIB_SRCS) $(SERVER_SRCS)) $(HEADERS) $(TEST_HDRS) $(TSAN_SHIM_HDRS)
	@mkdir -p $(dir $@)
	$(CC) -Itests/tsan_criterion $(CFLAGS_TSAN) -Itests -o $@ $< $(call benchtool_objs,$*,$(B)/tsan) \
	  $(call objs,$(B)/tsan,$(LIB_SRCS) $(SERVER_SRCS)) $(TSAN_TEST_LIBS) $(SERVER_LIBS)

# ---- coverage (gcov + gcovr) ------------------------------------------------

COV_TESTS := $(patsubst tests/%.c,$(B)/cov/tests/%,$(TEST_SRCS))

$(B)/cov/obj/%.o: %.c $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COV) -c $< -o $@

$(B)/cov/invcored: $(call objs,$(B)/cov,$(SERVER_MAIN) $(SERVER_SRCS) $(LIB_SRCS))
	$(CC) $(CFLAGS_COV) -o $@ $^ $(SERVER_LIBS) $(LIBS)

$(B)/cov/tests/%: tests/%.c $(call objs,$(B)/cov,$(LIB_SRCS) $(SERVER_SRCS)) $(HEADERS) $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COV) -Itests -o $@ $< $(call benchtool_objs,$*,$(B)/cov) \
	  $(call objs,$(B)/cov,$(LIB_SRCS) $(SERVER_SRCS)) $(TEST_LIBS) $(SERVER_LIBS) $(LIBS)

# One-line asserts are left out: their failing branch is unreachable by
# design (an assert that fires is a defect), so it would only dilute the
# branch figure.
COV_EXCLUDE := --exclude-lines-by-pattern '^\s*assert\(.*\);\s*$$'

# Line and branch coverage of core/ by make test's suites (the release
# suites, run once against instrumented objects and an instrumented
# invcored). Reports: build/cov/coverage.txt (per file) and summary.
coverage: $(COV_TESTS) $(B)/cov/invcored
	@find $(B)/cov -name '*.gcda' -delete
	@set -o pipefail; for t in $(COV_TESTS); do echo "== $$t"; \
	  INVCORED=$(B)/cov/invcored $$t --jobs 2 2>&1 | tail -1 || exit 1; done
	@gcovr --root . --object-directory $(B)/cov/obj --filter 'core/' \
	  --exclude-unreachable-branches $(COV_EXCLUDE) \
	  --txt $(B)/cov/coverage.txt --print-summary | tail -3
	@gcovr --root . --object-directory $(B)/cov/obj --filter 'core/' --branches \
	  --exclude-unreachable-branches $(COV_EXCLUDE) --txt $(B)/cov/branches.txt >/dev/null
	@echo "coverage: per file in $(B)/cov/coverage.txt (lines) and $(B)/cov/branches.txt"

# ---- fuzzing (clang libFuzzer) ---------------------------------------------

FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -pthread -mcx16 -g -O1 -Iinclude -Icore \
              -fsanitize=fuzzer,address,undefined -DINV_SANITIZE=1 -DINV_FUZZ=1
# The engine and server sources, instrumented once for every fuzzer (with
# coverage, not libFuzzer's main: that comes with each fuzzer's link), so
# the fuzzers share one set of objects instead of each compiling them all.
FUZZ_OBJ_FLAGS := $(subst -fsanitize=fuzzer$(comma),-fsanitize=fuzzer-no-link$(comma),$(FUZZ_FLAGS))
FUZZ_OBJS := $(call objs,$(B)/fuzz,$(LIB_SRCS) $(SERVER_SRCS))

$(B)/fuzz/obj/%.o: %.c $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_OBJ_FLAGS) -c $< -o $@

$(B)/fuzz/%: fuzz/%.c $(FUZZ_OBJS) $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_OBJS) $(SERVER_LIBS)

fuzz: $(FUZZERS)
	@for f in $(FUZZERS); do n=$$(basename $$f); \
	  mkdir -p $(B)/fuzz/corpus-$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(B)/fuzz/$$n- \
	    $(B)/fuzz/corpus-$$n fuzz/corpus/$$n || exit 1; done

fuzz-test: $(FUZZERS)
	@for f in $(FUZZERS); do n=$$(basename $$f); \
	  mkdir -p $(B)/fuzz/corpus-$$n; \
	  echo "fuzz-test: $$n for $(FUZZ_TEST_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_TEST_SECONDS) -artifact_prefix=$(B)/fuzz/$$n- \
	    $(B)/fuzz/corpus-$$n \
	    fuzz/corpus/$$n 2>$(B)/fuzz/$$n.log \
	    || { tail -40 $(B)/fuzz/$$n.log; exit 1; }; done

# The HTTP suites' requests as fuzz_http's seeds: each suite runs with
# INVCORE_HTTP_CORPUS set, and tests/test_http_client.h writes every distinct
# request (its name: a hash of its bytes) in fuzz_http's input format. The
# generated seeds (*.http) are replaced on each run, the hand-written ones
# (no suffix) kept; run it after changing an HTTP suite and commit
# fuzz/corpus/fuzz_http (fuzz-test reads it).
HTTP_SUITES := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_http*.c))

fuzz-corpus-http: $(HTTP_SUITES) $(B)/invcored
	@rm -f fuzz/corpus/fuzz_http/*.http fuzz/corpus/fuzz_http/*.tmp
	@set -eo pipefail; for t in $(HTTP_SUITES); do echo "== $$t (seeding fuzz/corpus/fuzz_http)"; \
	  INVCORE_HTTP_CORPUS=$(CURDIR)/fuzz/corpus/fuzz_http $$t --jobs 2 2>&1 | tail -1; done
	@echo "fuzz-corpus-http: $$(ls fuzz/corpus/fuzz_http | wc -l) seeds," \
	  "$$(cat fuzz/corpus/fuzz_http/* | wc -c) bytes in fuzz/corpus/fuzz_http"

# ---- tests -----------------------------------------------------------------

# Every atomic_* call must name its memory order (the _explicit forms).
check-atomics:
	@bad=$$(grep -nE '\batomic_(load|store|exchange|fetch_[a-z]+|compare_exchange_(weak|strong)|flag_test_and_set|flag_clear)[[:space:]]*\(' \
	  core/*.c core/*.h core/server/*.c core/server/*.h include/*.h 2>/dev/null); \
	if [ -n "$$bad" ]; then echo "atomics without a memory order:"; \
	  echo "$$bad"; exit 1; fi; echo "check-atomics: ok"

# No cycle in the #include graph of core/'s modules: each module includes
# only modules below it (the order is in core/engine.h).
check-cycles: | $(DEPS_STAMP)
	@$(PYTHON_SYS) tests/check_include_cycles.py core

# Every C file follows .clang-format (clang-format from Debian): `make
# format` rewrites them, `make format-check` (in `make test`) fails on any
# difference.
FORMAT_SRCS := $(wildcard core/*.c core/*.h core/server/*.c core/server/*.h core/tools/*.c \
                 core/tools/bench/*.c core/tools/bench/*.h include/*.h \
                 tests/*.c tests/*.h tests/tsan_criterion/criterion/*.h bench/*.c bench/*.h \
                 fuzz/*.c)

format: | $(DEPS_STAMP)
	clang-format -i $(FORMAT_SRCS)

format-check: | $(DEPS_STAMP)
	@clang-format --dry-run --Werror $(FORMAT_SRCS) 2>&1 | head -40; \
	  if clang-format --dry-run --Werror $(FORMAT_SRCS) >/dev/null 2>&1; then \
	    echo "format-check: ok"; else echo "format-check: run 'make format'"; exit 1; fi

# The README's embedding example must compile and run.
check-readme: $(B)/libinvcore.a
	@mkdir -p $(B)/readme
	@awk '/^```c embed/{f=1;next} /^```/{f=0} f' README.md > $(B)/readme/example.c
	@test -s $(B)/readme/example.c || { echo "README example missing"; exit 1; }
	$(CC) $(CFLAGS_REL) -o $(B)/readme/example $(B)/readme/example.c \
	  $(B)/libinvcore.a $(LIBS)
	@$(B)/readme/example > /dev/null && echo "check-readme: ok"

# make install into a staging dir: the README example links against the
# installed shared library through its pkg-config file and runs with the
# soname; make uninstall then leaves no file behind.
check-install: all check-readme
	@stage=$$(mktemp -d /tmp/invcore-install-XXXXXX); \
	$(MAKE) --no-print-directory install DESTDIR=$$stage PREFIX=/usr/local >/dev/null && \
	lib=$$stage/usr/local/lib && \
	$(CC) $(CFLAGS_REL) -o $$stage/example $(B)/readme/example.c \
	  $$(PKG_CONFIG_SYSROOT_DIR=$$stage PKG_CONFIG_LIBDIR=$$lib/pkgconfig \
	     pkg-config --cflags --libs invcore) -Wl,-rpath,$$lib && \
	readelf -d $$stage/example | grep -q 'NEEDED.*\[libinvcore.so.0\]' && \
	$$stage/example >/dev/null && \
	$(MAKE) --no-print-directory uninstall DESTDIR=$$stage PREFIX=/usr/local >/dev/null && \
	left=$$(find $$stage/usr -type f -o -type l) && rm -rf $$stage && \
	if [ -n "$$left" ]; then echo "check-install: uninstall left $$left"; exit 1; fi && \
	echo "check-install: ok (libinvcore.so.0 linked and run, uninstall left nothing)" || \
	{ echo "check-install: failed (staging dir $$stage)"; exit 1; }

unit-test: $(TESTS) all
	@set -eo pipefail; for t in $(TESTS); do echo "== $$t"; \
	  $$t --jobs 2 2>&1 | tee -a $(TEST_LOG); done

# A sanitizer report in a suite's output fails the stage even when every
# test passed: LeakSanitizer reports when a test process exits, after
# Criterion has counted its tests (a leak in a test once passed this way).
SANITIZER_REPORT := ERROR: (Address|Leak)Sanitizer|runtime error:

asan-test: $(ASAN_TESTS) $(B)/asan/invcored
	@set -eo pipefail; for t in $(ASAN_TESTS); do echo "== $$t"; \
	  INVCORED=$(B)/asan/invcored INVCORE_STRESS_SCALE=4 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $$t --jobs 2 2>&1 | \
	  tee -a $(TEST_LOG) | tee $(B)/asan-suite.log; \
	  if grep -Eq '$(SANITIZER_REPORT)' $(B)/asan-suite.log; then \
	    echo "asan-test: $$t printed a sanitizer report (above)"; exit 1; fi; done

# The server suites against the TSan invcored run a quarter of their rounds
# (INVCORE_STRESS_SCALE=4, as under ASan): they look for races, and the
# release run in unit-test does every round the acceptance asks for (the
# replication suite's 10 kill rounds took about 5 minutes under TSan).
tsan-test: $(TSAN_TESTS) $(SERVER_SUITES) $(B)/tsan/invcored
	@set -eo pipefail; for t in $(TSAN_TESTS); do echo "== $$t"; \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  INVCORE_STRESS_SCALE=8 $$t --jobs 1 --fork 2>&1 | tee -a $(TEST_LOG); done
	@set -eo pipefail; for t in $(SERVER_SUITES); do echo "== $$t (TSan invcored)"; \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" INVCORE_STRESS_SCALE=4 \
	  INVCORED=$(B)/tsan/invcored $$t --jobs 1 2>&1 | tee -a $(TEST_LOG); done

# redis-py with default options against the release invcored (and
# Sentinel's client), and the always yardstick's framing and exit
# (bench/always_ceiling). Debian's interpreter: a python3 earlier on PATH
# may lack python3-redis.
PYTHON_SYS      := /usr/bin/python3

client-test: all $(B)/bench/always_ceiling
	@set -eo pipefail; for t in tests/test_client_redispy.py tests/test_client_sentinel.py \
	  tests/test_bench_ceiling.py; do \
	  echo "== $$t"; INVCORED=$(B)/invcored ALWAYS_CEILING=$(B)/bench/always_ceiling \
	  $(PYTHON_SYS) $$t 2>&1 | tee -a $(TEST_LOG); done

test-log-reset:
	@mkdir -p $(B) && : > $(TEST_LOG)

# The stages run one after another (each may build in parallel): suites
# never compete with each other for the two cores.
test:
	@$(MAKE) --no-print-directory test-log-reset check-atomics check-cycles format-check all \
	  check-readme check-install
	@$(MAKE) --no-print-directory unit-test
	@$(MAKE) --no-print-directory client-test
	@$(MAKE) --no-print-directory asan-test
	@$(MAKE) --no-print-directory tsan-test
	@$(MAKE) --no-print-directory fuzz-test
	@sed 's/\x1b\[[0-9;]*m//g' $(TEST_LOG) | awk '/Synthesis: Tested:/ { \
	  for (i = 1; i <= NF; i++) { if ($$i == "Passing:") p += $$(i+1); \
	  if ($$i == "Failing:") f += $$(i+1); if ($$i == "Crashing:") c += $$(i+1) } } \
	  /^[0-9]+ passed, [0-9]+ failed$$/ { p += $$1; f += $$3 } \
	  END { printf "make test: release, ASan+UBSan and TSan suites\n%d passed, %d failed\n", p, f + c }'

# SIGKILLs (1000 trials a scenario), simulated power loss (1000 trials,
# each checked on five disk images) and a long linearizability run (8
# clients, 200k requests, 20 SIGKILLs) against the release invcored.
crash-test: all $(TESTS)
	INVCORE_CRASH_TRIALS=1000 $(B)/tests/test_crash --jobs 1
	INVCORE_POWERLOSS_TRIALS=1000 $(B)/tests/test_powerloss --jobs 1
	INVCORE_LINCHECK_OPS=200000 INVCORE_LINCHECK_KILLS=20 INVCORED=$(B)/invcored \
	  $(B)/tests/test_server_linearizability --jobs 1

# Replication (issue #16): FAILOVER_ROUNDS (default 200) rounds of a
# two-node cluster on a real 3-member etcd whose leader is killed, frozen
# or cut off from etcd at random under a never-oversell load; prints the
# summary (docs/REPLICATION.md has the figures).
FAILOVER_ROUNDS ?= 200
failover-test: all $(B)/tests/failover_test
	FAILOVER_ROUNDS=$(FAILOVER_ROUNDS) INVCORED=$(B)/invcored $(B)/tests/failover_test --jobs 1

# The flaky-test hunt (issue 17): every server suite SOAK_ROUNDS times in a
# row against the TSan invcored, one suite at a time (--jobs 1, as
# tsan-test runs them), stopping at the first failure with its log. A
# summary line per round and one at the end. SOAK_SUITES picks a subset.
SOAK_ROUNDS ?= 20
SOAK_SUITES ?= $(SERVER_SUITES)

soak-test: $(SOAK_SUITES) $(B)/tsan/invcored
	@set -o pipefail; runs=0; tests=0; start=$$(date +%s); log=$(B)/soak-test-last.log; \
	for r in $$(seq 1 $(SOAK_ROUNDS)); do \
	  for t in $(SOAK_SUITES); do \
	    if ! TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	      INVCORED=$(B)/tsan/invcored $$t --jobs 1 > $$log 2>&1; then \
	      cat $$log; \
	      echo "soak-test: FAILED in round $$r of $(SOAK_ROUNDS): $$t" \
	        "(after $$runs passing suite runs, $$tests tests; its log: $$log)"; exit 1; fi; \
	    n=$$(sed 's/\x1b\[[0-9;]*m//g' $$log | sed -n 's/.*Synthesis: Tested: \([0-9]*\).*/\1/p'); \
	    runs=$$((runs + 1)); tests=$$((tests + $${n:-0})); \
	  done; \
	  echo "soak-test: round $$r/$(SOAK_ROUNDS) passed ($$(( $$(date +%s) - start )) s so far)"; \
	done; \
	echo "soak-test: $(SOAK_ROUNDS) rounds x $(words $(SOAK_SUITES)) server suites under TSan:" \
	  "$$runs suite runs, $$tests tests, 0 failures in $$(( $$(date +%s) - start )) s"

# Servers among the benches are run by the scripts that drive them.
BENCH_SERVERS := $(B)/bench/always_ceiling

bench: all $(BENCHES)
	@set -e; for b in $(filter-out $(BENCH_SERVERS),$(BENCHES)); do echo "== $$b"; $$b; done
	@bench/bench_client.sh
	@if [ -x bench/vs-redis ]; then bench/vs-redis; fi
	@bench/vs-redis-sale
	@bench/bench_http.sh
	@bench/bench_repl.sh

run: all
	$(B)/invcored

INSTALL_BINS := $(B)/invcored $(B)/invcore-feed $(B)/invcore-repair $(B)/invcore-bench

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/invcore.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(B)/libinvcore.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/libinvcore.so.$(LIB_VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libinvcore.so.$(LIB_VERSION) $(DESTDIR)$(PREFIX)/lib/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(DESTDIR)$(PREFIX)/lib/libinvcore.so
	@$(call write_pc,$(PREFIX),$(DESTDIR)$(PREFIX)/lib/pkgconfig/invcore.pc)
	install -m 755 $(INSTALL_BINS) $(DESTDIR)$(PREFIX)/bin/
	@# The loader's cache learns the new soname (a staged install, DESTDIR,
	@# leaves that to the package's own postinst).
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; \
	  else echo "install: run ldconfig as root to refresh the loader's cache"; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/invcore.h $(DESTDIR)$(PREFIX)/lib/libinvcore.a \
	  $(DESTDIR)$(PREFIX)/lib/libinvcore.so $(DESTDIR)$(PREFIX)/lib/$(LIB_SONAME) \
	  $(DESTDIR)$(PREFIX)/lib/libinvcore.so.$(LIB_VERSION) \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/invcore.pc \
	  $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(notdir $(INSTALL_BINS)))
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

clean:
	rm -rf $(B)
