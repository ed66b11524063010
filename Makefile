# Tazamun - offline-first sync engine.  Plain make; `make help` lists targets.
#
#   make            build the library and the programs into build/
#   make test       install missing Debian packages (as root), build, run every test
#   make test-long  the deep campaigns: 1,000 simulation seeds, 1,000+ kills, every sweep
#   make test SAN=1 the same under AddressSanitizer + UndefinedBehaviorSanitizer (build-san/)
#   make demo       an agency's offline day at HQ and three branches, checked (tools/demo.sh)
#   make bench      benchmarks (bench/README.md)
#   make fuzz       libFuzzer on every parser, FUZZ_TIME seconds each (tests/fuzz/run-libfuzzer.sh)

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS    := sqlite3 libgit2 libzstd libsodium libdeflate zlib libcrypto libmicrohttpd libcurl

ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT     ?= -O1 -g
else
BUILD   ?= build
SANFLAGS :=
OPT     ?= -O2 -g
endif

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Wvla -Wundef \
           -Wmissing-prototypes -Wpointer-arith -Wcast-qual -Werror
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  ?= $(OPT)
ALL_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -I. $(WARN) $(SANFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP
LDLIBS  := $(PKG_LIBS) -lpthread -lm

LIB_SRC := $(wildcard store/*.c conflict/*.c syncd/*.c)
# library objects under obj/: $(BUILD)/syncd is the program, not a directory
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB     := $(BUILD)/libtazamun.a
TOOL_COMMON := $(filter-out tools/syncctl.c tools/syncd.c,$(wildcard tools/*.c))
TOOL_COMMON_OBJ := $(TOOL_COMMON:%.c=$(BUILD)/%.o)
PROGS   := $(BUILD)/syncctl $(BUILD)/syncd

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/%)
# helpers of the CLI tests (tests/tools/NAME.c -> BUILD/tests/NAME), not tests themselves
TEST_TOOL_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))
# the multi-branch simulation (tests/sim/*.c -> BUILD/tests/tz-sim)
SIM_BIN   := $(BUILD)/tests/tz-sim
SIM_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/sim/*.c))
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test test-long demo bench bench-quick bench-deps fuzz install uninstall clean deps help check-pkgs
all: check-pkgs $(PROGS)

check-pkgs:
	@pkg-config --exists $(PKGS) || { echo "missing libraries; run: sh tools/deps.sh" >&2; exit 1; }

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/syncctl: $(BUILD)/tools/syncctl.o $(TOOL_COMMON_OBJ) $(LIB)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/syncd: $(BUILD)/tools/syncd.o $(LIB)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(TEST_TOOL_BIN): $(BUILD)/tests/%: $(BUILD)/tests/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

# Each fuzz target is linked with a plain driver that replays its corpus
# (tests/fuzz/driver.c); `make fuzz` links the same target with libFuzzer.
$(BUILD)/tests/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/driver.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(SIM_BIN): $(SIM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@sh tools/deps.sh

test: deps
	@$(MAKE) --no-print-directory all tests-build
	@sh tests/run.sh $(BUILD)

# the deep campaigns (docs/testing.md), same runner, TZ_LONG=1: 1,000
# simulation seeds, 1,000+ kills, every sweep in full, 50 branches syncing
# at once in t12-http-load
test-long: deps
	@$(MAKE) --no-print-directory all tests-build
	@TZ_LONG=1 TEST_TIMEOUT=$${TEST_TIMEOUT:-14400} sh tests/run.sh $(BUILD)

.PHONY: tests-build
# the benchmark programs too: t14-bench checks their structure, and they
# must build with -Werror (and under SAN=1) like everything else
tests-build: $(UNIT_BIN) $(FUZZ_BIN) $(TEST_TOOL_BIN) $(SIM_BIN) $(BENCH_BIN)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh $(BUILD)

# npm (sqlite-sync's extension is fetched at bench time): the bench's own
# dependency, never make test's; bench/deps.sh does not fail without it
bench-deps: deps
	@sh bench/deps.sh

bench: bench-deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@sh bench/run.sh $(BUILD)

# under a minute: 10,000 rows, one repetition where a program allows it
bench-quick: bench-deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@sh bench/run.sh $(BUILD) --quick

FUZZ_TIME ?= 60
fuzz: deps
	@sh tests/fuzz/run-libfuzzer.sh $(FUZZ_TIME)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/syncctl $(BUILD)/syncd $(DESTDIR)$(PREFIX)/bin/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/syncctl $(DESTDIR)$(PREFIX)/bin/syncd

clean:
	rm -rf build build-san build-fuzz

help:
	@sed -n '1,10p' Makefile

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
