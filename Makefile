# imapfs - see README.  `make` builds ./imapfs; `make check` runs every test.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=
CC ?= cc
PYTHON ?= /usr/bin/python3
VERSION = 0.1

PKGS = fuse3 libetpan openssl zlib
# pkg-config runs the first time a recipe needs the flags, not when this file
# is read: on a fresh machine `make check` installs pkg-config and the -dev
# packages (deps) before anything is compiled.  The eval keeps it to one call.
PKG_CFLAGS = $(eval PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null))$(PKG_CFLAGS)
# Debian's libetpan.pc adds a gcc-only -specs flag: drop it so clang links too
PKG_LIBS = $(eval PKG_LIBS := $(filter-out -specs=%,$(shell pkg-config --libs $(PKGS) 2>/dev/null)))$(PKG_LIBS)

CFLAGS ?= -O2 -g
IMAPFS_CFLAGS = -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
	-DFUSE_USE_VERSION=314 -DIMAPFS_VERSION='"$(VERSION)"' -Isrc $(PKG_CFLAGS)
LDLIBS = $(PKG_LIBS) -lpthread

BUILD ?= build
# src/ has one folder per subsystem (src/README); main.c sits on top
SRCS = $(wildcard src/*.c src/*/*.c)
HDRS = $(wildcard src/*.h src/*/*.h)
OBJS = $(patsubst src/%.c,$(BUILD)/%.o,$(SRCS))
LIB_OBJS = $(filter-out $(BUILD)/main.o,$(OBJS))
# tests/unit/FOLDER/test_*.c test src/FOLDER
UNIT_SRCS = $(wildcard tests/unit/*/test_*.c)
UNIT_BINS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

FUZZ_SRCS = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS = $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRCS))
FUZZ_TIME ?= 60

SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all deps build-deps check check-unit check-integration asan check-asan tsan check-tsan fuzz install uninstall clean \
	demo demo-stop deps-servers check-servers unit-bins

all: imapfs

imapfs: $(BUILD)/imapfs
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/imapfs: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c $(HDRS) | $(BUILD) build-deps
	@mkdir -p $(dir $@)
	$(CC) $(IMAPFS_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(IMAPFS_CFLAGS) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) -lcmocka

$(BUILD):
	mkdir -p $@

# `make` alone installs nothing: it says exactly which packages are missing.
build-deps:
	@scripts/install-deps --check-build

unit-bins: $(UNIT_BINS)

# The targets that install what they need run deps first and everything
# else in a second make, so that nothing is built before the packages are in
# (and nothing races them under -j).
deps:
	@scripts/install-deps

check: deps
	@$(MAKE) --no-print-directory all unit-bins
	@$(MAKE) --no-print-directory check-unit check-integration

check-unit: $(UNIT_BINS)
	@scripts/check-includes
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

check-integration: imapfs
	IMAPFS_BIN=$(CURDIR)/imapfs $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

# The integration suite against the other IMAP servers: a private Cyrus IMAP
# (scripts/cyrus-env; Debian's cyrus-imapd is fetched and unpacked into
# build/servers/cyrus by install-deps --servers, never installed).  Left out
# to keep the run short: the 60 s soak, and the 1 GB memory test, whose mail
# has to go in through IMAP on Cyrus (2 minutes) and which measures imapfs,
# not the server.  Left out as Dovecot's own: the two tests that make a
# folder stall by planting a dovecot-uidlist.lock (Cyrus locks otherwise).
CHECK_SERVERS_ARGS ?= --ignore=tests/integration/test_soak.py \
	--deselect tests/integration/test_cache.py::test_memory_and_disk_bounded_over_1gb \
	--deselect tests/integration/test_resilience.py::test_stalled_folder_rests \
	--deselect tests/integration/test_exactly_once.py::test_stuck_folder_holds_up_no_other

deps-servers:
	@scripts/install-deps --servers

check-servers: deps-servers
	@$(MAKE) --no-print-directory all
	IMAPFS_TEST_SERVER=cyrus IMAPFS_BIN=$(CURDIR)/imapfs $(PYTHON) -m pytest -q tests/integration \
		$(CHECK_SERVERS_ARGS) $(PYTEST_ARGS)

# The whole suite again with AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	$(MAKE) BUILD=build-asan CFLAGS="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" \
		build-asan/imapfs $(patsubst $(BUILD)/%,build-asan/%,$(UNIT_BINS))

check-asan: deps
	@$(MAKE) --no-print-directory asan
	@set -e; for t in $(patsubst $(BUILD)/%,build-asan/%,$(UNIT_BINS)); do echo "== $$t"; $$t; done
	IMAPFS_SANITIZED=1 IMAPFS_BIN=$(CURDIR)/build-asan/imapfs $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

# The whole suite again with ThreadSanitizer (data races and lock order).
# TSAN_OPTIONS: a report fails the run (the tests look for it on stderr too);
# tests/tsan.supp names the races inside libraries we do not build.
TSAN_FLAGS = -O1 -g -fsanitize=thread -fno-omit-frame-pointer
TSAN_ENV = TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp"

tsan:
	$(MAKE) BUILD=build-tsan CFLAGS="$(TSAN_FLAGS)" LDFLAGS="-fsanitize=thread" \
		build-tsan/imapfs $(patsubst $(BUILD)/%,build-tsan/%,$(UNIT_BINS))

check-tsan: deps
	@$(MAKE) --no-print-directory tsan
	@set -e; for t in $(patsubst $(BUILD)/%,build-tsan/%,$(UNIT_BINS)); do echo "== $$t"; $(TSAN_ENV) $$t; done
	$(TSAN_ENV) IMAPFS_SANITIZED=1 IMAPFS_BIN=$(CURDIR)/build-tsan/imapfs $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

# libFuzzer targets for the parsers of untrusted input, each run FUZZ_TIME s.
build-fuzz/%: tests/fuzz/%.c $(filter-out src/main.c,$(SRCS)) $(HDRS) | build-deps
	@mkdir -p build-fuzz
	clang $(IMAPFS_CFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined -o $@ \
		$< $(filter-out src/main.c,$(SRCS)) $(LDLIBS)

fuzz: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do \
		c=tests/fuzz/corpus/$$(basename $$f); mkdir -p build-fuzz/corpus-$$(basename $$f); \
		echo "== $$f ($(FUZZ_TIME) s)"; \
		if ! $$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 build-fuzz/corpus-$$(basename $$f) \
			$$( [ -d $$c ] && echo $$c ) > build-fuzz/$$(basename $$f).log 2>&1; then \
			tail -40 build-fuzz/$$(basename $$f).log; exit 1; fi; \
		tail -3 build-fuzz/$$(basename $$f).log; \
	done

install: imapfs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 imapfs $(DESTDIR)$(BINDIR)/imapfs
	install -m 0644 imapfs.1 $(DESTDIR)$(MANDIR)/man1/imapfs.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/imapfs $(DESTDIR)$(MANDIR)/man1/imapfs.1

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo

demo-stop:
	@scripts/demo stop

clean:
	rm -rf build build-asan build-tsan build-clang build-fuzz imapfs tests/integration/__pycache__ .pytest_cache

# Benchmark against peer tools on a private Dovecot (minutes; not part of
# `make check`).  bench-smoke: small sizes, one run (CI).  See bench/README.
# bench-smoke runs the loopback table and a short WAN run (--wan).  The
# floor (bench/floorfs.c) is a minimal FUSE filesystem P1, P2 and P6 are
# also measured against.
.PHONY: bench bench-smoke
BENCH_ENV = IMAPFS_BIN=$(CURDIR)/imapfs FLOORFS_BIN=$(CURDIR)/$(BUILD)/bench/floorfs

$(BUILD)/bench/floorfs: bench/floorfs.c | build-deps
	@mkdir -p $(dir $@)
	$(CC) $(IMAPFS_CFLAGS) $(CFLAGS) -o $@ $< $(LDLIBS)

bench: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/floorfs
	$(BENCH_ENV) $(PYTHON) bench/run.py $(BENCH_ARGS)

bench-smoke: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/floorfs
	$(BENCH_ENV) $(PYTHON) bench/run.py --smoke --wan $(BENCH_ARGS)
