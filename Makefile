# Flint: one non-recursive Makefile. Output goes to build/ (bin/, lib/, gen/, obj/, tests/).
#   make            build everything (installs missing Debian packages first, see scripts/install-deps.sh)
#   make test       build and run all test tiers; ends with "N passed, N failed"
#   make SANITIZE=1 build with ASan+UBSan (objects are rebuilt when the flags change)
#   make bench      build and run the benchmarks (bench/run.sh; BENCH_ARGS="-k shuffle" picks some)
#   make demo       start a local cluster and show its status (scripts/demo.sh)
#   make demo-kafka the same with a local Kafka cluster and Kafka WordCount (scripts/demo.sh --kafka)
#   make docs       regenerate docs/config.md from the config key table
#   make clean      remove build/

BUILD    := build
CC       ?= cc
PKGS     := libevent libevent_pthreads libprotobuf-c yaml-0.1 jansson libxxhash rocksdb rdkafka
OPT      ?= -O2
CFLAGS_BASE := -std=gnu11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Wno-unused-parameter -fPIC -pthread \
               -Icommon/include -Icommon -I$(BUILD)/gen -Ijobmanager -Itaskmanager -Iclient
ifeq ($(SANITIZE),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN       := -fsanitize=address,undefined
endif
PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   = $(CFLAGS_BASE) $(PKG_CFLAGS)
LDLIBS   = $(PKG_LIBS) -lm -ldl -pthread
RPATH    := -Wl,-rpath,'$$ORIGIN/../lib'

PROTOS     := $(wildcard proto/*.proto)
PROTO_C    := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PROTO_H    := $(PROTO_C:.c=.h)

LIB_SRCS   := $(wildcard common/*/*.c)
JM_SRCS    := $(filter-out jobmanager/jm_main.c,$(wildcard jobmanager/*.c jobmanager/*/*.c))
TM_SRCS    := $(filter-out taskmanager/tm_main.c,$(wildcard taskmanager/*.c taskmanager/*/*.c))
CLI_SRCS   := $(filter-out client/cli_main.c,$(wildcard client/*.c))
UNIT_SRCS  := $(wildcard tests/unit/check_*.c)
WEB_FILES  := $(sort $(wildcard jobmanager/web/*))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB_OBJS   := $(call obj,$(LIB_SRCS)) $(patsubst %.c,%.o,$(PROTO_C))
JM_OBJS    := $(call obj,$(JM_SRCS)) $(BUILD)/gen/web_assets.o
TM_OBJS    := $(call obj,$(TM_SRCS))
CLI_OBJS   := $(call obj,$(CLI_SRCS))

LIBFLINT   := $(BUILD)/lib/libflint.so
LIBJM      := $(BUILD)/lib/libjm.a
LIBTM      := $(BUILD)/lib/libtm.a
LIBCLI     := $(BUILD)/lib/libcli.a
BINS       := $(BUILD)/bin/flint-jobmanager $(BUILD)/bin/flint-taskmanager $(BUILD)/bin/flint
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
EXAMPLES   := $(patsubst examples/%.c,$(BUILD)/examples/%.so,$(wildcard examples/*.c)) \
              $(patsubst tests/jobs/%.c,$(BUILD)/tests/jobs/%.so,$(wildcard tests/jobs/*.c))
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))

.PHONY: all build deps test demo demo-kafka docs clean
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory build

build: $(BINS) $(UNIT_BINS) $(TEST_TOOLS) $(EXAMPLES)

deps:
	@scripts/install-deps.sh --if-missing

test: deps
	@$(MAKE) --no-print-directory build
	@tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory build
	@scripts/demo.sh

demo-kafka: deps
	@$(MAKE) --no-print-directory build
	@scripts/demo.sh --kafka

docs: $(BUILD)/tests/config_doc
	$(BUILD)/tests/config_doc > docs/config.md

clean:
	rm -rf $(BUILD)

# Rebuild everything when the compiler flags change (SANITIZE=1 and back).
$(BUILD)/.flags: FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(CFLAGS_BASE) $(LDSAN)' | cmp -s - $@ || echo '$(CC) $(CFLAGS_BASE) $(LDSAN)' > $@
FORCE:

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(@D)
	protoc-c --c_out=$(BUILD)/gen -Iproto $<

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c $(BUILD)/.flags | $(PROTO_H)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# The web status page is compiled into the jobmanager: the REST server never opens files.
$(BUILD)/tools/embed: tools/embed.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -o $@ $<

$(BUILD)/gen/web_assets.c: $(BUILD)/tools/embed $(WEB_FILES)
	@mkdir -p $(@D)
	$(BUILD)/tools/embed $(WEB_FILES) > $@

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c $(BUILD)/.flags
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(BUILD)/.flags | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIBFLINT): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) -shared $(LDSAN) -o $@ $^ $(LDLIBS)

$(LIBJM): $(JM_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(LIBTM): $(TM_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(LIBCLI): $(CLI_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/flint-jobmanager: $(BUILD)/obj/jobmanager/jm_main.o $(LIBJM) $(LIBFLINT)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $< $(LIBJM) -L$(BUILD)/lib -lflint $(RPATH) $(LDLIBS)

$(BUILD)/bin/flint-taskmanager: $(BUILD)/obj/taskmanager/tm_main.o $(LIBTM) $(LIBFLINT)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $< $(LIBTM) -L$(BUILD)/lib -lflint $(RPATH) $(LDLIBS)

$(BUILD)/bin/flint: $(BUILD)/obj/client/cli_main.o $(LIBCLI) $(LIBFLINT)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $< $(LIBCLI) -L$(BUILD)/lib -lflint $(RPATH) $(LDLIBS)

# Unit suites link the daemons' archives too, so that their internals can be tested.
$(BUILD)/tests/check_%: $(BUILD)/obj/tests/unit/check_%.o $(LIBJM) $(LIBTM) $(LIBCLI) $(LIBFLINT)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $< $(LIBJM) $(LIBTM) $(LIBCLI) -L$(BUILD)/lib -lflint \
	    -Wl,-rpath,'$$ORIGIN/../lib' $$(pkg-config --libs check) $(LDLIBS)

$(BUILD)/tests/%: tests/tools/%.c $(LIBFLINT) $(BUILD)/.flags | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< -L$(BUILD)/lib -lflint -Wl,-rpath,'$$ORIGIN/../lib' $(LDLIBS)

# Job artifacts: shared objects built against the public headers only. They are not linked
# against libflint: its symbols come from the process that loads them (flint, the taskmanager).
JOB_CFLAGS = -std=gnu11 $(OPT) -g -Wall -Wextra -fPIC -shared -Icommon/include \
             $(if $(filter 1,$(SANITIZE)),-fsanitize=address$(comma)undefined)
$(BUILD)/examples/%.so: examples/%.c $(wildcard common/include/flint/*.h examples/*.h) $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(JOB_CFLAGS) -o $@ $<

# Jobs that exist for the tests (bad artifacts, a slow sink, a failing function).
$(BUILD)/tests/jobs/%.so: tests/jobs/%.c $(wildcard common/include/flint/*.h) $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(JOB_CFLAGS) -o $@ $<

comma := ,

# ---- benchmarks: `make bench` (bench/run.sh; never part of `make test`) -------------------------
# Bench programs (same-run baselines) are built with the daemons' flags into build/bench/; bench
# jobs, like examples, against the public headers only into build/bench/jobs/.
BENCH_PROGS := $(BUILD)/bench/tcp_loopback \
               $(if $(and $(wildcard common/nexmark/nexmark.c),$(wildcard bench/nexmark_gen_loop.c)),$(BUILD)/bench/nexmark_gen_loop)
BENCH_JOBS  := $(patsubst bench/jobs/%.c,$(BUILD)/bench/jobs/%.so,$(wildcard bench/jobs/*.c))

.PHONY: bench bench-build
bench: deps
	@$(MAKE) --no-print-directory build bench-build
	@bench/run.sh $(BENCH_ARGS)

bench-build: $(BENCH_PROGS) $(BENCH_JOBS) $(BUILD)/tests/freeport

$(BUILD)/bench/tcp_loopback: bench/tcp_loopback.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(LDSAN) -o $@ $<

$(BUILD)/bench/nexmark_gen_loop: bench/nexmark_gen_loop.c $(LIBFLINT) $(BUILD)/.flags | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< -L$(BUILD)/lib -lflint -Wl,-rpath,'$$ORIGIN/../lib' $(LDLIBS)

$(BUILD)/bench/jobs/%.so: bench/jobs/%.c $(wildcard common/include/flint/*.h) $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(JOB_CFLAGS) -o $@ $<
# ---- end of benchmarks ---------------------------------------------------------------------------

# ---- Kafka (issue 7): the local Kafka-protocol cluster for tests and demos -------------------------
# build/bin/flint-kafka-local wraps librdkafka's mock cluster (tools/kafka_local.c, docs/connectors.md).
KAFKA_LOCAL := $(BUILD)/bin/flint-kafka-local
build: $(KAFKA_LOCAL)
$(KAFKA_LOCAL): tools/kafka_local.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(LDSAN) -o $@ $< $$(pkg-config --cflags --libs rdkafka) -pthread
# ---- end of Kafka ---------------------------------------------------------------------------------

-include $(shell find $(BUILD)/obj $(BUILD)/gen -name '*.d' 2>/dev/null)
