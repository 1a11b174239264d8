# Ignis build. `make` builds build/ignis; `make test` runs every test;
# `make test-asan` runs them again against an ASan+UBSan build; `make fuzz`
# builds the libFuzzer targets (clang). See README.md.

CC ?= cc
BUILD ?= build
PKGS := libmicrohttpd jansson sqlite3 libcrypto libzip libcurl libseccomp libxml-2.0 zlib libcbor
OPT ?= -O2 -g
SAN ?=
CFLAGS_ALL := $(OPT) $(SAN) -std=gnu11 -Wall -Wextra -Werror -Wno-format-truncation -D_GNU_SOURCE -Isrc \
	$(shell pkg-config --cflags $(PKGS)) -MMD -MP $(CFLAGS)
LDLIBS_ALL := $(SAN) $(shell pkg-config --libs $(PKGS)) -lpthread -lm $(LDFLAGS)

SRCS := $(shell find src -name '*.c' ! -path src/main.c | sort)
OBJS := $(SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all runtimes check test unit integration test-asan fuzz fuzz-smoke format clean bench

all: $(BUILD)/ignis runtimes

# The Python runtime's compiled module: the runtime dir is read-only inside the
# sandbox, so without it every cold start compiles ~900 lines.
PY_RUNTIME_PYC := runtimes/python/__pycache__/ignis_runtime.cpython-$(shell /usr/bin/python3 -c 'import sys; print("%d%d" % sys.version_info[:2])').pyc
# The Python zygote's extension (runtimes/python/zygote.py): the sandbox sources built into
# a module for /usr/bin/python3, so never with sanitizers, written once for every build dir.
PY_ZYGOTE_SO := runtimes/python/_ignis_zygote.so
PY_ZYGOTE_SRCS := runtimes/python/zygote_ext.c $(wildcard src/exec/sandbox/*.c)
# PID 1 of every sandboxed instance (runtimes/init/init.c): freestanding, never sanitized.
INIT_BIN := runtimes/init/ignis-init
runtimes: $(PY_RUNTIME_PYC) $(PY_ZYGOTE_SO) $(INIT_BIN)
$(INIT_BIN): runtimes/init/init.c
	$(CC) -O2 -static -nostdlib -ffreestanding -fno-stack-protector -fno-builtin \
		-fno-asynchronous-unwind-tables -Wall -Wextra -Werror -o $@.$$$$.tmp $< && mv $@.$$$$.tmp $@
$(PY_RUNTIME_PYC): runtimes/python/ignis_runtime.py
	/usr/bin/python3 -m py_compile $<
$(PY_ZYGOTE_SO): $(PY_ZYGOTE_SRCS) $(wildcard src/exec/sandbox/*.h)
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -fPIC -shared \
		$(shell pkg-config --cflags python3) -o $@.$$$$.tmp $(PY_ZYGOTE_SRCS) -lseccomp && \
		mv $@.$$$$.tmp $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libignis.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ignis: $(BUILD)/src/main.o $(BUILD)/libignis.a
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libignis.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL) -lcmocka

unit: $(UNIT_BINS) runtimes
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BUILD)/ignis runtimes
	IGNIS_BIN=$(abspath $(BUILD)/ignis) /usr/bin/python3 -m pytest -q tests/integration

test: unit integration

# Everything CI runs: the suite on the normal build, then again under ASan+UBSan.
check: test test-asan fuzz-smoke

test-asan:
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE -Isrc \
	$(shell pkg-config --cflags $(PKGS))
FUZZ_OBJS := $(SRCS:%.c=build/fuzz/obj/%.o)
fuzz: $(FUZZ_BINS)
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
build/fuzz/libignis.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^
build/fuzz/%: tests/fuzz/%.c build/fuzz/libignis.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $^ -o $@ \
		$(shell pkg-config --libs $(PKGS)) -lpthread -lm

# Each target a few seconds on its seed corpus (tests/fuzz/corpus/<name>): keeps
# them building and catches regressions; long runs are for people (README).
FUZZ_SECONDS ?= 5
fuzz-smoke: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$${f#build/fuzz/fuzz_}; \
		mkdir -p build/fuzz/work/$$n; echo "== fuzz $$n ($(FUZZ_SECONDS) s)"; \
		if ! $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build/fuzz/work/$$n \
			tests/fuzz/corpus/$$n > build/fuzz/$$n.log 2>&1; then \
			tail -40 build/fuzz/$$n.log; exit 1; fi; tail -1 build/fuzz/$$n.log; done

bench: $(BUILD)/ignis runtimes
	/usr/bin/python3 bench/run.py

format:
	clang-format -i $$(find src tests/unit tests/fuzz runtimes -name '*.[ch]')

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(BUILD)/src/main.d $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%.d)

# keep unit test objects between runs
.SECONDARY:
