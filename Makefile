# Makefile - builds the `starhil` tool, its sanitized test suite, fuzzers and benchmarks.
#
#   make            build ./starhil (release, -Wall -Wextra -Werror)
#   make test       build every tests/test_*.c under ASan+UBSan and run the suite
#   make test T=genome   run only tests/test_genome.c
#   make fuzz       run the libFuzzer harnesses for a short time
#   make bench      run the benchmarks (speed is measured here, never in tests);
#                   LLAMA_CPP=DIR (llama.cpp build folder) adds llama-bench side by side
#   make deps       install the Debian packages this needs (apt-get)
#   make install PREFIX=/usr/local
#
# Library modules: one folder each. Every .c in them goes into libstarhil.a;
# the per-genome runtime under evaluator/runtime/ is NOT linked into the tool:
# it is compiled per genome by `starhil build` (see evaluator/).

CC      ?= cc
PREFIX  ?= /usr/local
PKGS    := sqlite3 libcurl hwloc libssh2 jansson
MODULES := util genome runs evaluator evaluator/capability cluster devices measure search reports cli

# lazily expanded: on a fresh machine `make test` installs the packages (deps)
# before anything is compiled, so pkg-config must be asked only then
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
# snprintf truncation is always deliberate here (bounded messages)
WARN    += $(if $(findstring clang,$(shell $(CC) --version 2>/dev/null)),,-Wno-format-truncation)
STD     := -std=c11 -D_GNU_SOURCE
CFLAGS  ?= -O2 -g
ALL_CFLAGS = $(STD) $(WARN) $(CFLAGS) -I. $(PKG_CFLAGS) \
             -DSH_SOURCE_ROOT='"$(CURDIR)"' -DSH_PREFIX='"$(PREFIX)"'
LDLIBS   = $(PKG_LIBS) -lm -lpthread

SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

LIB_SRC  := $(filter-out cli/main.c,$(foreach m,$(MODULES),$(wildcard $(m)/*.c)))
RT_FILES := $(wildcard evaluator/runtime/*.c evaluator/runtime/*.h)
REL_OBJ  := $(patsubst %.c,build/rel/%.o,$(LIB_SRC))
SAN_OBJ  := $(patsubst %.c,build/san/%.o,$(LIB_SRC))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,build/test/%,$(TEST_SRC))
TEST_HELPERS := $(wildcard tests/helpers/*.c)
NPROC := $(shell nproc 2>/dev/null || echo 2)

.PHONY: all test fuzz bench deps install clean run check-deps
all: starhil

starhil: build/rel/cli/main.o build/rel/libstarhil.a
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

build/rel/libstarhil.a: $(REL_OBJ)
	@rm -f $@
	@ar rcs $@ $^

build/san/libstarhil.a: $(SAN_OBJ)
	@rm -f $@
	@ar rcs $@ $^

# Header dependencies come from the compiler (-MMD -MP): each object's .d file
# lists exactly the headers it includes, so editing any of them (runtime
# headers included) rebuilds what uses it and nothing else.
DEP_FLAGS = -MMD -MP

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) $(DEP_FLAGS) -c -o $@ $<

build/san/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC san  $<"
	@$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) $(DEP_FLAGS) -c -o $@ $<

-include $(REL_OBJ:.o=.d) $(SAN_OBJ:.o=.d) build/rel/cli/main.d build/san/cli/main.d

build/test/%: tests/%.c build/san/libstarhil.a $(TEST_HELPERS) $(wildcard tests/helpers/*.h)
	@mkdir -p build/test
	@echo "  LD test $@"
	@$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -o $@ $< $(TEST_HELPERS) build/san/libstarhil.a $(LDLIBS) -lcmocka

# The suite also drives the real tool, so it is built first (sanitized too).
build/san/starhil: build/san/cli/main.o build/san/libstarhil.a
	@echo "  LD san  $@"
	@$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) starhil build/san/starhil $(if $(T),build/test/test_$(T),$(TEST_BIN))
	@STARHIL_BIN=$(CURDIR)/build/san/starhil STARHIL_ROOT=$(CURDIR) sh tests/run_tests.sh $(if $(T),build/test/test_$(T),$(TEST_BIN))

fuzz: deps starhil
	sh tests/fuzz/run_fuzz.sh $(or $(FUZZ_SECONDS),30)

bench: deps
	@$(MAKE) --no-print-directory -j$(NPROC) starhil
	sh bench/run_bench.sh

deps:
	sh scripts/deps.sh

check-deps:
	@pkg-config --exists $(PKGS) && test -f /usr/include/cmocka.h || { \
	  echo "missing build dependencies: run 'make deps' (installs Debian packages)"; exit 1; }

run: deps
	@$(MAKE) --no-print-directory -j$(NPROC) starhil
	./starhil search

install: starhil
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/starhil/runtime $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 starhil $(DESTDIR)$(PREFIX)/bin/starhil
	install -m 644 $(RT_FILES) $(DESTDIR)$(PREFIX)/share/starhil/runtime/
	install -m 644 docs/starhil.1 $(DESTDIR)$(PREFIX)/share/man/man1/starhil.1

clean:
	rm -rf build starhil
