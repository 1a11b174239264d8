# Ignis build. `make` builds build/ignis; `make test` runs every test;
# `make test-asan` runs them again against an ASan+UBSan build; `make fuzz`
# builds the libFuzzer targets (clang). See README.md.

CC ?= cc
BUILD ?= build
PKGS := libmicrohttpd jansson sqlite3 libcrypto libzip libcurl
OPT ?= -O2 -g
SAN ?=
CFLAGS_ALL := $(OPT) $(SAN) -std=gnu11 -Wall -Wextra -Werror -Wno-format-truncation -D_GNU_SOURCE -Isrc \
	$(shell pkg-config --cflags $(PKGS)) -MMD -MP $(CFLAGS)
LDLIBS_ALL := $(SAN) $(shell pkg-config --libs $(PKGS)) -lpthread $(LDFLAGS)

SRCS := $(shell find src -name '*.c' ! -path src/main.c | sort)
OBJS := $(SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all check test unit integration test-asan fuzz format clean bench

all: $(BUILD)/ignis

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

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BUILD)/ignis
	IGNIS_BIN=$(abspath $(BUILD)/ignis) /usr/bin/python3 -m pytest -q tests/integration

test: unit integration

# Everything CI runs: the suite on the normal build, then again under ASan+UBSan.
check: test test-asan

test-asan:
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
fuzz: $(FUZZ_BINS)
build/fuzz/%: tests/fuzz/%.c $(SRCS)
	@mkdir -p build/fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -Isrc \
		$(shell pkg-config --cflags $(PKGS)) $< $(SRCS) -o $@ $(shell pkg-config --libs $(PKGS)) -lpthread

bench: $(BUILD)/ignis
	/usr/bin/python3 bench/run.py

format:
	clang-format -i $$(find src tests/unit tests/fuzz -name '*.[ch]')

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(BUILD)/src/main.d

# keep unit test objects between runs
.SECONDARY:
