# mod_upload_session - build, test and run.
#   make            build the module (build/mod_upload_session.so) and tools
#   make test       install missing Debian packages, build, lint, run unit + integration tests
#                   (the store-dependent ones on SQLite and again on PostgreSQL)
#   make run        build and run httpd in the foreground on 127.0.0.1:$(PORT)
#   make start/stop the same in the background
SHELL    := /bin/bash

# Two passes. The outer make installs the missing Debian packages, then runs
# the goals again in a sub-make (US_PACKAGES_READY=1) which reads the flags of
# apr-1-config, apu-1-config and apxs: at parse time, before any recipe runs,
# those tools may not exist yet on a fresh machine. `clean` and `stop` need no
# package. Extra packages a goal needs (wrk, clang) are installed inside it.
ifeq ($(US_PACKAGES_READY),)
NO_PACKAGE_GOALS := clean stop
GOALS := $(or $(MAKECMDGOALS),all)
.PHONY: $(GOALS)
ifeq ($(filter-out $(NO_PACKAGE_GOALS),$(GOALS)),)
$(firstword $(GOALS)):
	@$(MAKE) --no-print-directory US_PACKAGES_READY=1 $(GOALS)
else
$(firstword $(GOALS)):
	@sh scripts/install-deps.sh
	@$(MAKE) --no-print-directory US_PACKAGES_READY=1 $(GOALS)
endif
$(filter-out $(firstword $(GOALS)),$(GOALS)): $(firstword $(GOALS))
	@:
else
PORT     ?= 8080
PYTHON   ?= /usr/bin/python3
APXS     ?= apxs
CC       ?= cc
BUILD    := build
ifeq ($(SANITIZE),1)
BUILD    := build-sanitize
endif
ifeq ($(SANITIZE),thread)
BUILD    := build-tsan
endif

# the version's one place is include/us_version.h
VERSION  := $(shell sed -n 's/^\#define US_VERSION "\(.*\)"/\1/p' include/us_version.h)
WARN     := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
# APR/apr-util are portable-runtime libraries, not httpd: the "pure" core may use them.
APR_INC  := $(shell apr-1-config --includes --cppflags 2>/dev/null) $(shell apu-1-config --includes 2>/dev/null)
APR_LIBS := $(shell apr-1-config --link-ld --libs 2>/dev/null) $(shell apu-1-config --link-ld --libs 2>/dev/null)
# libpq: the PostgreSQL store sets its connections' error verbosity and reads
# their status through it (src/store/pgsql/us_pg_conn.c)
PQ_INC   := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
LIBS     := -ljansson -lcrypto -lsqlite3 -lpq $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)

# Sources by layer (README, Layout). src/httpd/ is the httpd glue; the core
# library is every other src/ file: unit tests and fuzz targets link it
# without httpd. Headers used across layers are in include/, the others
# beside their sources (found there by #include "..."); tests reach those
# through PRIV_INC.
ALL_SRCS  := $(sort $(shell find src -name '*.c'))
GLUE_SRCS := $(filter src/httpd/%,$(ALL_SRCS))
CORE_SRCS := $(filter-out src/httpd/%,$(ALL_SRCS))
CORE_OBJS := $(CORE_SRCS:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
UNIT_EXCLUDE ?=
UNIT_RUN = $(filter-out $(UNIT_EXCLUDE:%=$(BUILD)/unit/%),$(UNIT_BINS))
PRIV_HDRS := $(sort $(shell find src -name '*.h'))
HEADERS   := $(wildcard include/*.h) $(PRIV_HDRS)
PRIV_INC  := $(addprefix -I,$(patsubst %/,%,$(sort $(dir $(filter-out src/httpd/%,$(PRIV_HDRS))))))
SANITIZE_FLAGS :=
SANITIZE_LDFLAGS :=
ifeq ($(SANITIZE),1)
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer
SANITIZE_LDFLAGS := -Wl,-fsanitize=address -Wl,-fsanitize=undefined
endif
ifeq ($(SANITIZE),thread)
SANITIZE_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
SANITIZE_LDFLAGS := -Wl,-fsanitize=thread
endif
CFLAGS_CORE := $(WARN) -O2 -g -fPIC -Iinclude $(APR_INC) $(PQ_INC) $(SANITIZE_FLAGS)

.PHONY: deb install all deps module tools unit unit-valgrind helgrind tsan integration integration-pgsql integration-s3 test sanitize-test run start stop clean lint fuzz load bench bench-tools

# libFuzzer targets (clang), each run for FUZZ_SECONDS on a scratch corpus
# seeded from tests/fuzz/corpus/<target>, two at a time.
FUZZ_TARGETS := multipart python_json validate policy form key odata pgerror urlform
FUZZ_SECONDS ?= 60
# every target: no single allocation over 64 MiB, no process over 1 GiB;
# form, key and odata also bound what one input allocates (tests/fuzz/alloc_bound.h)
FUZZ_LIMITS := -malloc_limit_mb=64 -rss_limit_mb=1024
FUZZ_ARGS_form := -max_len=65536
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all \
               -Iinclude $(PRIV_INC) $(APR_INC) $(PQ_INC)
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer $(FUZZ_SAN)
# the core's objects, instrumented alike, are compiled once for every target
FUZZ_OBJ_CFLAGS := -g -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_OBJS := $(CORE_SRCS:src/%.c=$(BUILD)/fuzz/obj/%.o)

all: module tools

deps:
	@sh scripts/install-deps.sh

module: $(BUILD)/mod_upload_session.so

# docs/openapi.json and docs/upload-sessions.html compiled into the module
# (src/httpd/us_docs.c) as NUL-terminated byte arrays, @VERSION@ filled in
DOCS_DATA := $(BUILD)/gen/us_docs_data.h
$(DOCS_DATA): docs/openapi.json docs/upload-sessions.html include/us_version.h
	@mkdir -p $(dir $@)
	@set -e; for pair in US_OPENAPI_JSON:docs/openapi.json US_DOCS_HTML:docs/upload-sessions.html; do \
	    echo "static const unsigned char $${pair%%:*}[] = {"; \
	    sed 's/@VERSION@/$(VERSION)/g' $${pair#*:} | od -An -v -tx1 | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	    echo "0x00 };"; \
	done > $@.new && mv -f $@.new $@

$(BUILD)/mod_upload_session.so: mod_upload_session.c $(ALL_SRCS) $(HEADERS) $(DOCS_DATA)
	@mkdir -p $(BUILD)/apxs
	@rm -rf $(BUILD)/apxs/* && cp -r mod_upload_session.c src include $(BUILD)/apxs/
	@echo "apxs -c mod_upload_session.c src/**/*.c"
	@cd $(BUILD)/apxs && $(APXS) -c -o mod_upload_session.la \
	    $(foreach f,$(WARN) -O2 -g -Iinclude -I$(abspath $(BUILD)/gen) $(PQ_INC) $(SANITIZE_FLAGS),-Wc,$(f)) \
	    $(SANITIZE_LDFLAGS) \
	    mod_upload_session.c $(ALL_SRCS) $(LIBS) >build.log 2>&1 || \
	    { grep -v '^/usr/share/apr-1.0/build/libtool' build.log; exit 1; }
	@# copy then rename: a running httpd keeps its mapping of the old file
	@cp $(BUILD)/apxs/.libs/mod_upload_session.so $@.new && mv -f $@.new $@

tools: $(BUILD)/us-keygen $(BUILD)/us-s3sign

$(BUILD)/us-keygen: tools/us_keygen.c $(BUILD)/libus_core.a
	@echo "cc $<"
	@$(CC) $(CFLAGS_CORE) -o $@ $< $(BUILD)/libus_core.a $(APR_LIBS) $(LIBS)

$(BUILD)/us-s3sign: tools/us_s3sign.c $(BUILD)/libus_core.a $(HEADERS)
	@echo "cc $<"
	@$(CC) $(CFLAGS_CORE) -o $@ $< $(BUILD)/libus_core.a $(APR_LIBS) $(LIBS)

$(BUILD)/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	@echo "cc $<"
	@$(CC) $(CFLAGS_CORE) -c -o $@ $<

$(BUILD)/libus_core.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

# The unit tests link the core with the s3 backend built again with
# CopyObject's limit and the copy part size lowered, so that a test copies a
# ~20 MiB object in parts (UploadPartCopy; radosgw takes parts of 5 MiB and
# more), the largest answer read lowered to 256 KiB, so that a few dozen
# long keys fill a listing page, an upload stale after 2 s instead of a
# day, and batches of 100 keys per DeleteObjects instead of 1,000, so that a
# session's clear of a thousand keys takes several. The module, the tools
# and the benchmarks keep 5 GiB, 8 MiB, a day and 1,000.
UNIT_S3_SRCS := $(filter src/storage/s3/%,$(CORE_SRCS))
UNIT_S3_OBJS := $(UNIT_S3_SRCS:src/%.c=$(BUILD)/obj-unit/%.o)
UNIT_S3_DEFS := -DUS_S3_COPY_LIMIT='(16LL << 20)' -DUS_S3_COPY_PART='(6LL << 20)' \
                -DUS_S3_MAX_RESPONSE='(256 << 10)' -DUS_S3_STALE_UPLOAD_AGE=2 \
                -DUS_S3_DELETE_BATCH=100
$(BUILD)/obj-unit/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	@echo "cc $< (unit build)"
	@$(CC) $(CFLAGS_CORE) $(UNIT_S3_DEFS) -c -o $@ $<

$(BUILD)/libus_core_unit.a: $(filter-out $(UNIT_S3_SRCS:src/%.c=$(BUILD)/obj/%.o),$(CORE_OBJS)) $(UNIT_S3_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libus_core_unit.a $(wildcard tests/unit/*.h) $(HEADERS)
	@mkdir -p $(dir $@)
	@echo "cc $<"
	@$(CC) $(CFLAGS_CORE) $(PRIV_INC) -Wno-unused-parameter -o $@ $< $(BUILD)/libus_core_unit.a $(APR_LIBS) $(LIBS) -lcmocka

# test_pgsql_store starts a private PostgreSQL (scripts/pg-test-cluster.sh);
# here it must, rather than skip. Two suites at a time, the slowest first
# (each has its own directory, database and ports, as unit-valgrind shows);
# a failing suite's output is printed, and the others still run.
# UNIT_EXCLUDE: suites (names such as test_pgsql_store) built but not run.
unit: export US_PG_REQUIRED = 1
unit: $(UNIT_BINS)
	@printf '%s\n' $(filter $(UNIT_RUN),$(UNIT_SLOW)) $(filter-out $(UNIT_SLOW),$(UNIT_RUN)) | \
	    xargs -P 2 -I '{}' sh -c 'if {} > {}.log 2>&1; then echo "== {}: passed"; \
	        else cat {}.log; echo "== {}: FAILED"; exit 1; fi'
	@echo "unit: every suite passed"

# the unit tests under valgrind: any error or leak fails. Two at a time
# (valgrind runs a process's threads on one core), the slowest first; each
# one's report is printed when it fails. Each suite that needs PostgreSQL or
# a radosgw starts its own on free ports.
UNIT_SLOW := $(addprefix $(BUILD)/unit/,test_us_storage_s3 test_pgsql_store test_us_store \
                 test_us_ingest test_us_writer)
unit-valgrind: $(UNIT_BINS)
	@printf '%s\n' $(filter $(UNIT_BINS),$(UNIT_SLOW)) $(filter-out $(UNIT_SLOW),$(UNIT_BINS)) | \
	    xargs -P 2 -I '{}' sh -c 'if valgrind -q --error-exitcode=1 --leak-check=full \
	        --errors-for-leak-kinds=definite {} > /dev/null 2> {}.valgrind; \
	        then echo "== valgrind {}: clean"; \
	        else cat {}.valgrind; echo "== valgrind {}: FAILED"; exit 1; fi'
	@echo "valgrind: unit tests clean"

# helgrind over the unit suites that run threads (not part of make test or CI:
# about four minutes); any report of a race fails it
HELGRIND_SUITES := test_us_writer test_us_group test_us_dirsync test_us_metrics test_us_blob \
                   test_us_ingest test_us_ingest_wake test_us_webhook
helgrind: $(HELGRIND_SUITES:%=$(BUILD)/unit/%)
	@set -e; for t in $^; do \
	    if valgrind --tool=helgrind -q --error-exitcode=1 --suppressions=tests/unit/helgrind.supp $$t > $$t.helgrind 2>&1; \
	    then echo "== helgrind $$t: clean"; \
	    else cat $$t.helgrind; echo "== helgrind $$t: FAILED"; exit 1; fi; \
	done

# With SANITIZE=1 httpd itself is not instrumented: the ASan/UBSan runtimes
# are preloaded into it (see US_IT_PRELOAD in tests/us_testkit/server.py).
ifeq ($(SANITIZE),1)
integration: export US_IT_PRELOAD = $(shell $(CC) -print-file-name=libasan.so) $(shell $(CC) -print-file-name=libubsan.so)
integration: export US_IT_MODULE = $(abspath $(BUILD))/mod_upload_session.so
endif
ifeq ($(SANITIZE),thread)
export US_IT_PRELOAD = $(shell $(CC) -print-file-name=libtsan.so)
export US_IT_MODULE = $(abspath $(BUILD))/mod_upload_session.so
endif
# test_cors_browser.py drives a real headless Chromium over the DevTools protocol
integration: all
	@EXTRA_PKGS="chromium python3-websocket" sh scripts/install-deps.sh
	$(PYTHON) -m pytest -q tests/integration --ignore=tests/integration/test_storage_s3.py --ignore=tests/integration/test_s3_direct.py --ignore=tests/integration/test_s3_listing.py --ignore=tests/integration/test_s3_crash.py $(PYTEST_ARGS)

# one private radosgw for the unit and integration tests that need S3
# the upload, ingest and files tests with the files in a private radosgw
# (US_IT_STORAGE=s3; the one of scripts/with-radosgw.sh when it runs), and
# the tests of the s3 storage itself
# and, from the cluster suite (three nodes on PostgreSQL, one bucket prefix,
# no shared directory), the cases where the storage matters: concurrent
# closes, kill -9 of a node mid-ingestion (exactly once, no orphan object),
# a stopped node that changes nothing once continued, a claim lost between
# batches (nothing of the session left in the bucket)
S3_TESTS := tests/integration/test_upload.py tests/integration/test_ingest.py \
            tests/integration/test_files.py tests/integration/test_storage_s3.py \
            tests/integration/test_workspaces.py \
            tests/integration/test_s3_direct.py tests/integration/test_s3_listing.py \
            tests/integration/test_s3_crash.py \
            tests/integration/test_cluster.py::test_one_of_concurrent_closes_on_different_nodes_wins \
            tests/integration/test_cluster.py::test_a_node_stopped_past_its_lease_is_taken_over_and_changes_nothing \
            tests/integration/test_cluster.py::test_a_claim_taken_over_between_batches_is_counted_and_changes_nothing \
            tests/integration/test_cluster.py::test_a_killed_node_is_taken_over_within_the_lease
integration-s3: all
	US_IT_STORAGE=s3 $(PYTHON) -m pytest -q $(S3_TESTS) $(PYTEST_ARGS)

# the store-dependent integration tests again, every server on a database of
# its own on a private PostgreSQL (tests/us_testkit/pg.py)
PGSQL_IT_FILES ?= test_lifecycle test_upload test_files test_ingest test_abort test_files_delete \
                  test_files_meta test_metrics test_cursors test_webhooks test_workspaces test_pg_outage \
                  test_pg_partition
integration-pgsql: all
	US_IT_STORE=pgsql $(PYTHON) -m pytest -q $(PGSQL_IT_FILES:%=tests/integration/%.py) $(PYTEST_ARGS)

test:
	$(MAKE) all
	$(MAKE) lint
	bash scripts/with-radosgw.sh $(MAKE) unit integration integration-s3 integration-pgsql

# check-layers.py: httpd headers only in src/httpd/, no two source files
# depending on each other, layers in order - read from the module's object
# files (its docstring says how). check-apr-formats.py: no C-library-only
# length modifier (%lld, %zu) in a format APR or httpd formats. cppcheck:
# varFuncNullUB is about NULL-terminated varargs (apr_pstrcat), which is
# APR's documented contract. clang-tidy reads .clang-tidy; the two -Wno
# flags silence clang diagnostics raised inside APR and httpd macros.
# clang-tidy's compiler flags; two clang-tidy processes at a time, one file
# each: in one process the analyzer carries state from a file to the next
# (its va_list checker then flags a correct va_start/vsnprintf depending on
# which file came before), and batches cost no less time
TIDY_FLAGS = $(WARN) -Wno-null-pointer-subtraction -Wno-missing-field-initializers \
             -Iinclude -I$(BUILD)/gen $(APR_INC) $(PQ_INC) -I$(shell $(APXS) -q INCLUDEDIR)
lint: module
	$(PYTHON) scripts/check-layers.py
	$(PYTHON) scripts/check-apr-formats.py src mod_upload_session.c tools
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr --suppress=missingIncludeSystem --suppress=varFuncNullUB \
	    -Iinclude mod_upload_session.c src tools
	printf '%s\n' $(ALL_SRCS) mod_upload_session.c $(wildcard tools/*.c) | \
	    xargs -P 2 -n 1 sh -c 'clang-tidy --quiet "$$@" -- $(TIDY_FLAGS)' clang-tidy

$(BUILD)/fuzz/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	@clang $(FUZZ_OBJ_CFLAGS) -c -o $@ $<

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS) $(HEADERS) $(wildcard tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	@echo "clang -fsanitize=fuzzer $<"
	@clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OBJS) $(APR_LIBS) $(LIBS)

fuzz:
	@EXTRA_PKGS="clang libclang-rt-14-dev" sh scripts/install-deps.sh
	@$(MAKE) --no-print-directory -j2 $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
	@printf '%s\n' $(FUZZ_TARGETS) | xargs -P2 -I{} sh -c 't={}; \
	    mkdir -p $(BUILD)/fuzz/corpus-$$t; \
	    args="$(FUZZ_LIMITS)"; [ "$$t" = form ] && args="$$args $(FUZZ_ARGS_form)"; \
	    [ -f tests/fuzz/$$t.dict ] && args="$$args -dict=tests/fuzz/$$t.dict"; \
	    if $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$args \
	        $(BUILD)/fuzz/corpus-$$t tests/fuzz/corpus/$$t > $(BUILD)/fuzz/$$t.log 2>&1; \
	    then echo "== fuzz_$$t for $(FUZZ_SECONDS) s: clean"; \
	        grep -E "^(Done|stat::number_of_executed_units)" $(BUILD)/fuzz/$$t.log; \
	    else grep -E "ERROR|SUMMARY|crash-|^    #" $(BUILD)/fuzz/$$t.log | head -60; \
	        echo "== fuzz_$$t: FAILED (log: $(BUILD)/fuzz/$$t.log)"; exit 1; fi'

# unit and integration tests with the module and core built with ASan+UBSan.
# use_sigaltstack=0: GCC 12's libasan misreports its own sigaltstack call at
# thread exit (frames all inside libsanitizer) on glibc 2.36.
ifeq ($(SANITIZE),1)
export ASAN_OPTIONS := use_sigaltstack=0:detect_leaks=1
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
endif
# The sanitizers watch our C code: the tests of packaging, scripts and
# documents (no request path of the module that the others miss) and the
# browser's run `make test` already made are left out, to keep CI short;
# so is the signing tool's against radosgw (build/us-s3sign, not the
# sanitizers' build: no code of ours runs under them there).
SANITIZE_SKIP := test_install test_run_script test_startup_user test_docs test_openapi \
                 test_version test_cors_browser test_radosgw_sigv4
# ... and one test of ingestion order whose 2.1 million metadata keys take
# minutes under the sanitizers (the JSON parser has a fuzzer of its own)
# ... and, to keep CI within its 45 minutes, the tests that measure resident
# memory or a server's pace under slow clients (the sanitizers' runtime
# distorts both; their request paths are the smaller tests' own) and the
# longest of those whose time goes in waiting (repeated kills, a lock held
# past the busy timeout, reloads under load, a 10 s connect timeout, a
# webhook retried until given up, store errors counted, a receiver's
# trickled answer, every directive's range by 44 configtests, connections
# left idle past a keep-alive timeout, the parent's monitor awaited for a
# sweep: their files' other tests take the same paths)
SANITIZE_DESELECT := test_ingest.py::test_an_expired_session_does_not_run_alongside_a_running_one \
                     test_memory_bounds.py::test_large_legitimate_requests_do_not_stay_resident \
                     test_upload.py::test_2gib_upload_streams_to_disk_with_bounded_memory \
                     test_slow_clients.py::test_slow_header_flood_does_not_starve_api_clients \
                     test_slow_clients.py::test_a_slow_tail_after_the_file_part_keeps_the_file \
                     test_memory_bounds.py::test_bulk_meta_update_holds_one_file_at_a_time \
                     test_crash.py::test_ingestion_survives_repeated_sigkill \
                     test_faults.py::test_store_locked_beyond_busy_timeout \
                     test_key_reload.py::test_requests_during_reloads_never_fail \
                     test_metrics.py::test_store_errors_are_counted \
                     test_webhooks.py::test_given_up_after_retry_for \
                     test_restart_store_down.py::test_a_graceful_restart_survives_a_database_that_does_not_answer \
                     test_memory_bounds.py::test_listing_files_with_big_meta_costs_no_memory \
                     test_docs.py::test_the_documented_range_is_the_one_configtest_takes \
                     test_webhooks.py::test_acknowledged_with_a_slow_body_is_delivered \
                     test_lifecycle.py::test_the_sdk_closes_its_session_after_an_idle_keep_alive_connection \
                     test_config.py::test_a_virtual_host_keeps_a_keep_alive_timeout_it_sets_itself \
                     test_config.py::test_a_raised_keep_alive_timeout_holds_behind_a_first_virtual_host_without_the_module \
                     test_faults.py::test_a_child_forked_after_the_sweep_holds_its_own_shm_lock
# The unit suites under the sanitizers: all but those of the PostgreSQL and
# s3 backends, whose time goes in starting their servers and waiting on them,
# and which unit-valgrind runs under memcheck (as the integration pass
# here, the sanitizers watch SQLite and posix)
SANITIZE_UNIT_EXCLUDE := test_pgsql_store test_us_storage_s3
# the integration tests' arguments under a sanitizer, $(1): the tests deselected
sanitize_pytest_args = $(PYTEST_ARGS) $(SANITIZE_SKIP:%=--ignore=tests/integration/%.py) \
	$(1:%=--deselect=tests/integration/%)
sanitize-test:
	$(MAKE) SANITIZE=1 all
	$(MAKE) SANITIZE=1 unit UNIT_EXCLUDE="$(SANITIZE_UNIT_EXCLUDE)"
	$(MAKE) SANITIZE=1 integration PYTEST_ARGS="$(call sanitize_pytest_args,$(SANITIZE_DESELECT))"

# ThreadSanitizer: the core, the module and the unit tests built with
# -fsanitize=thread (build-tsan/), the unit suites run, then the integration
# tests, on SQLite, on s3 and on PostgreSQL (the three integration targets
# of `make test`), with libtsan preloaded into httpd (it is not instrumented itself:
# the races it sees are those of our code, with APR's and httpd's locks
# and threads intercepted); any report fails its test. Not in CI (about 25
# minutes). ignore_noninstrumented_modules: a system call of httpd or APR
# (a socket closed by one thread after another's epoll_ctl) is theirs to
# order, through their own uninstrumented queues; report_signal_unsafe:
# TSan takes the forked child's first calls (initgroups, GnuTLS's set-up)
# for a signal handler's.
ifeq ($(SANITIZE),thread)
export TSAN_OPTIONS := ignore_noninstrumented_modules=1:report_signal_unsafe=0:halt_on_error=0:second_deadlock_stack=1
endif
# ... and one whose kills must land before a fast ingestion ends, which
# the instrumented workers do not always let them
TSAN_DESELECT := $(SANITIZE_DESELECT) test_s3_crash.py::test_repeated_kills_during_direct_ingestion
tsan:
	$(MAKE) SANITIZE=thread all
	$(MAKE) SANITIZE=thread unit
	bash scripts/with-radosgw.sh $(MAKE) SANITIZE=thread integration integration-s3 integration-pgsql \
	    PYTEST_ARGS="$(call sanitize_pytest_args,$(TSAN_DESELECT))"

# benchmarks against httpd's own baselines, side by side (never part of `make test`);
# BENCH_QUICK=1 for a short run. Results: BENCHMARKS.md
bench: all bench-tools
	@EXTRA_PKGS="wrk" sh scripts/install-deps.sh
	bash bench/run.sh

# the C programs of bench/ (profiling drivers and disk micro-benchmarks)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
bench-tools: $(BENCH_BINS) $(BUILD)/bench/nosync.so

# b1's bound: httpd with fsync and fdatasync returning at once (LD_PRELOAD)
$(BUILD)/bench/nosync.so: bench/preload/nosync.c
	@mkdir -p $(dir $@)
	@echo "cc $<"
	@$(CC) -std=c11 -Wall -Wextra -Werror -O2 -shared -fPIC -o $@ $<

$(BUILD)/bench/%: bench/%.c $(BUILD)/libus_core.a $(HEADERS)
	@mkdir -p $(dir $@)
	@echo "cc $<"
	@$(CC) $(CFLAGS_CORE) $(PRIV_INC) -o $@ $< $(BUILD)/libus_core.a $(APR_LIBS) $(LIBS) -lsqlite3 -lpthread

# ~60 s of mixed traffic from 64 clients against a real httpd (not in `make test`)
load: all
	$(PYTHON) tests/load/mixed_load.py --seconds $(or $(LOAD_SECONDS),60) --clients 64 $(LOAD_ARGS)

# make install [DESTDIR=...] [PREFIX=/usr/local]: the module where apxs puts
# modules (Debian: /usr/lib/apache2/modules), the a2enmod files in
# /etc/apache2/mods-available, the tools in $(PREFIX)/bin, the man page and
# the reference documents under $(PREFIX)/share
PREFIX     ?= /usr/local
MODULEDIR  := $(shell $(APXS) -q LIBEXECDIR 2>/dev/null)
APACHE_ETC := $(shell $(APXS) -q SYSCONFDIR 2>/dev/null)
DOCDIR     ?= $(PREFIX)/share/doc/mod_upload_session
install: all
	install -d $(DESTDIR)$(MODULEDIR) $(DESTDIR)$(APACHE_ETC)/mods-available \
	    $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(DOCDIR)
	install -m 644 $(BUILD)/mod_upload_session.so $(DESTDIR)$(MODULEDIR)/
	install -m 644 conf/upload_session.load conf/upload_session.conf \
	    $(DESTDIR)$(APACHE_ETC)/mods-available/
	install -m 755 $(BUILD)/us-keygen $(BUILD)/us-s3sign $(DESTDIR)$(PREFIX)/bin/
	sed 's/@VERSION@/$(VERSION)/g' man/us-keygen.1 > $(DESTDIR)$(PREFIX)/share/man/man1/us-keygen.1
	chmod 644 $(DESTDIR)$(PREFIX)/share/man/man1/us-keygen.1
	install -m 644 docs/directives.md conf/example-vhost.conf $(DESTDIR)$(DOCDIR)/
	sed 's/@VERSION@/$(VERSION)/g' docs/openapi.json > $(DESTDIR)$(DOCDIR)/openapi.json
	chmod 644 $(DESTDIR)$(DOCDIR)/openapi.json

# make deb: the Debian package libapache2-mod-upload-session (debian/) into
# $(BUILD)/, built by dpkg-buildpackage in a copy of the tree under
# $(BUILD)/deb-src (it writes beside the source and cleans it), so the
# working tree is left as it was
DEB_SRC := $(BUILD)/deb-src/mod-upload-session-$(VERSION)
deb:
	@EXTRA_PKGS="debhelper dpkg-dev" sh scripts/install-deps.sh
	rm -rf $(BUILD)/deb-src && mkdir -p $(DEB_SRC)
	tar -cf - --exclude=./build --exclude=./build-sanitize --exclude=./run --exclude=./.git . | \
	    tar -C $(DEB_SRC) -xf -
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b -j$$(nproc) > ../build.log 2>&1 || \
	    { tail -40 ../build.log; exit 1; }
	mv -f $(BUILD)/deb-src/*.deb $(BUILD)/
	rm -rf $(BUILD)/deb-src
	@ls $(BUILD)/*.deb

# STORE=pgsql: a PostgreSQL under ./run/pg instead of SQLite
# STORAGE=s3: files in a radosgw under ./run/rgw instead of ./run/state/data
# (S3_DIRECT=On, or 1: presigned POSTs into its bucket)
run: all
	@STORE=$(STORE) STORAGE=$(STORAGE) S3_DIRECT=$(S3_DIRECT) bash scripts/run-httpd.sh foreground $(PORT)

start: all
	@STORE=$(STORE) STORAGE=$(STORAGE) S3_DIRECT=$(S3_DIRECT) bash scripts/run-httpd.sh start $(PORT)

stop:
	@bash scripts/run-httpd.sh stop $(PORT)

clean:
	rm -rf build build-sanitize *.lo *.slo *.la .libs
	find src \( -name '*.lo' -o -name '*.o' -o -name '*.slo' -o -name .libs \) -prune -exec rm -rf {} +

endif # US_PACKAGES_READY
