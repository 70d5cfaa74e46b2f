# mxbroker - top-level Makefile.
#
#   make            build every library and program into build/ (programs in build/bin/)
#   make deps       install the Debian packages the build and the tests need (as root)
#   make test       deps, build, unit tests, unit tests under ASan/UBSan, integration tests,
#                   the fault lab (as root)
#   make lab        the fault lab alone (tests/lab/run.sh)
#   make check-asan unit tests built with -fsanitize=address,undefined
#   make demo       run the whole appliance on loopback
#   make install    install programs, man pages, examples, systemd units and sysusers
#                   under $(DESTDIR)$(PREFIX) (PREFIX=/usr/local by default)
#
# Each component folder carries a <component>.mk fragment that names its
# programs; every .c file in a component folder that is not a program's main
# goes into lib<component>.a.

PREFIX  ?= /usr/local
BUILD   ?= build
CC      ?= cc
VERSION := 0.1.0

PKGS := ldns libevent_core libevent_extra libevent_pthreads libevent_openssl json-c libssl libcrypto libcrypt

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes \
            -Wshadow -Wpointer-arith -Wformat=2
OPT      ?= -O2 -g
SANITIZE ?=
CFLAGS   ?=
CPPFLAGS += -D_GNU_SOURCE -DMXB_VERSION='"$(VERSION)"' -I.
# Hardened by default (docs/hardening.md): fortified libc calls (needs -O1 or
# more), stack canaries, position-independent executables, and relocations
# resolved at start and then made read-only.  Empty them to build without.
HARDEN_CFLAGS  ?= -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
HARDEN_LDFLAGS ?= -pie -Wl,-z,relro,-z,now
ALL_CFLAGS  = -std=gnu11 $(OPT) $(WARN) $(HARDEN_CFLAGS) $(SANITIZE) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(HARDEN_LDFLAGS) $(SANITIZE) $(LDFLAGS)
LDLIBS  += $(PKG_LIBS) -lpthread -lm

# $(BUILD)/flags holds the compile and link command lines; it is rewritten
# only when they change, and every object depends on it, so a tree built
# with other flags (older defaults, another OPT or SANITIZE) is rebuilt
# instead of being linked with objects it does not match.
FLAGS_LINE = $(CC) $(CPPFLAGS) $(ALL_CFLAGS) | $(ALL_LDFLAGS)
ifneq ($(FLAGS_LINE),$(file <$(BUILD)/flags))
$(shell mkdir -p $(BUILD))
$(file >$(BUILD)/flags,$(FLAGS_LINE))
endif
# Written above; after `make clean` in the same run it is simply new.
$(BUILD)/flags: ;

# Components in link order: a library comes before the ones it uses.
# Each <c>/<c>.mk sets:
#   <c>_DEPS          the libraries a program or test of <c> links, in order
#   PROGS += p        and p_MAIN := <c>/p.c for each program (linked with <c>_DEPS)
#   <c>_TESTS += test_x   for each tests/unit/test_x.c (linked with <c>_DEPS)
COMPONENTS := smtp-relay broker resolver metrics common
PROGS :=

include $(foreach c,$(COMPONENTS),$(c)/$(c).mk)

MAINS     := $(foreach p,$(PROGS),$($(p)_MAIN))
BINS      := $(addprefix $(BUILD)/bin/,$(PROGS))
UNIT_BINS := $(foreach c,$(COMPONENTS),$(addprefix $(BUILD)/tests/,$($(c)_TESTS)))

.PHONY: all deps test check check-unit check-asan check-asan-unit check-asan-integration \
        check-integration check-valgrind demo lab \
        install clean style style-check unit-bins $(PROGS)
all: $(BINS)

libfiles = $(foreach l,$(1),$(BUILD)/lib/lib$(l).a)

define component_rules
$(1)_SRCS := $$(filter-out $$(MAINS),$$(wildcard $(1)/*.c))
$(1)_OBJS := $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_SRCS))
$(BUILD)/lib/lib$(1).a: $$($(1)_OBJS)
	@mkdir -p $$(@D)
	rm -f $$@
	$$(AR) rcs $$@ $$^
$(foreach t,$($(1)_TESTS),
$(BUILD)/tests/$(t): $(BUILD)/obj/tests/unit/$(t).o $(BUILD)/obj/tests/unit/tap.o $$(call libfiles,$$($(1)_DEPS))
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(LDLIBS)
)
endef
$(foreach c,$(COMPONENTS),$(eval $(call component_rules,$(c))))

$(BUILD)/obj/%.o: %.c $(BUILD)/flags
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# A program links the libraries of the component whose folder holds its main
# (or <p>_DEPS when set).
define prog_rule
$(BUILD)/bin/$(1): $(BUILD)/obj/$$(patsubst %.c,%.o,$$($(1)_MAIN)) $$(call libfiles,$$(or $$($(1)_DEPS),$$($$(firstword $$(subst /, ,$$($(1)_MAIN)))_DEPS)))
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(LDLIBS)
$(1): $(BUILD)/bin/$(1)
endef
$(foreach p,$(PROGS),$(eval $(call prog_rule,$(p))))

.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

unit-bins: $(UNIT_BINS)

# libFuzzer targets: tests/fuzz/fuzz_<name>.c with a seed corpus in
# tests/fuzz/corpus/<name>/, built with clang into build/fuzz.
#   make fuzz FUZZ_SECONDS=N   build and run each target for N seconds
#   make fuzz-replay           build and run each committed corpus once
FUZZ_SECONDS ?= 30
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_NAMES))

# FUZZ_<name>_LIBS: the libraries a target links (default: all).
FUZZ_config_LIBS := common
FUZZ_metric_LIBS := metrics common
FUZZ_lbcd_LIBS   := metrics common
FUZZ_smtp_command_LIBS := smtp-relay resolver common
FUZZ_smtp_session_LIBS := smtp-relay resolver common
FUZZ_queue_LIBS        := smtp-relay resolver common
FUZZ_dnsmsg_LIBS       := resolver common
FUZZ_socketmap_LIBS    := resolver common
FUZZ_resolver_db_LIBS  := resolver common
FUZZ_smtp_reply_LIBS   := smtp-relay resolver common
FUZZ_dns_LIBS          := broker metrics common
FUZZ_zone_LIBS         := broker metrics common
FUZZ_dns_response_LIBS := broker metrics common
FUZZ_mta_sts_LIBS      := smtp-relay resolver common

.SECONDEXPANSION:
$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o \
    $$(call libfiles,$$(or $$(FUZZ_$$*_LIBS),$$(COMPONENTS)))
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang OPT='-O1 -g' \
	    SANITIZE='-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined' \
	    fuzz-bins

fuzz: fuzz-build
	@tests/tools/run-fuzz.sh build/fuzz/fuzz $(FUZZ_SECONDS)

# Every committed corpus run once through its target (no fuzzing), as part
# of `make test`: a seed or a past crash that fails again fails the suite.
fuzz-replay: fuzz-build
	@tests/tools/run-fuzz.sh --replay build/fuzz/fuzz

.PHONY: fuzz fuzz-build fuzz-bins fuzz-replay

deps:
	@tests/tools/install-deps.sh

# The whole suite: one summary line "N passed, N failed" at the end.
test: deps
	@tests/tools/run-tests.sh

check: test

check-unit: $(UNIT_BINS)
	@tests/tools/run-unit.sh $(BUILD)/tests

# The unit tests and the integration tests again, with every program and
# test built with -fsanitize=address,undefined (leaks reported at exit).
ASAN_MAKE = $(MAKE) --no-print-directory BUILD=build/asan OPT='-O1 -g -fno-omit-frame-pointer' \
	    SANITIZE='-fsanitize=address,undefined -fno-sanitize-recover=all'
ASAN_ENV  = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1

check-asan: check-asan-unit check-asan-integration

check-asan-unit:
	@$(ASAN_MAKE) unit-bins
	@$(ASAN_ENV) tests/tools/run-unit.sh build/asan/tests

check-asan-integration:
	@$(ASAN_MAKE) all
	@$(ASAN_ENV) MXB_BIN=$(CURDIR)/build/asan/bin tests/tools/run-integration.sh

# The daemons' integration tests under valgrind: no errors, no definite leaks.
check-valgrind: all
	@tests/tools/check-valgrind.sh

check-integration: all
	@tests/tools/run-integration.sh

# The fault lab (tests/lab, docs/testing.md): network namespaces, as root.
lab: all
	@tests/lab/run.sh

demo: deps all
	@tests/tools/demo.sh

# Every C file in the house style (.clang-format); `make style` fixes them.
style-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h') && echo "style: all files formatted"

style:
	@clang-format -i $$(git ls-files '*.c' '*.h')

SBINDIR     ?= $(PREFIX)/sbin
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/mxbroker
EXAMPLESDIR ?= $(DOCDIR)/examples
SYSTEMDDIR  ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d

# Daemons (names ending in d) go to sbin, tools to bin; man pages by section;
# the units with @SBINDIR@ replaced by where the daemons went (so they start
# the installed programs, not build/); the documents (docs/*.md) and the
# examples, folders and all, with the man pages pointing at where they went.  Everything under $(DESTDIR), for packaging.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR)
	for p in $(PROGS); do \
	    case $$p in *d) dir=$(DESTDIR)$(SBINDIR) ;; *) dir=$(DESTDIR)$(BINDIR) ;; esac; \
	    install -m 755 $(BUILD)/bin/$$p $$dir/ || exit 1; done
	for m in docs/man/*.[1-8]; do [ -f "$$m" ] || continue; s=$${m##*.}; \
	    install -d $(DESTDIR)$(MANDIR)/man$$s && \
	    sed -e 's|docs/examples/|$(EXAMPLESDIR)/|g' -e 's|docs/\([a-z-]*\.md\)|$(DOCDIR)/\1|g' \
	        "$$m" > $(DESTDIR)$(MANDIR)/man$$s/$${m##*/} && \
	    chmod 644 $(DESTDIR)$(MANDIR)/man$$s/$${m##*/} || exit 1; done
	install -d $(DESTDIR)$(DOCDIR)
	install -m 644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -d $(DESTDIR)$(SYSTEMDDIR) $(DESTDIR)$(SYSUSERSDIR)
	for u in docs/systemd/*.service; do \
	    sed 's|@SBINDIR@|$(SBINDIR)|g' "$$u" > $(DESTDIR)$(SYSTEMDDIR)/$${u##*/} && \
	    chmod 644 $(DESTDIR)$(SYSTEMDDIR)/$${u##*/} || exit 1; done
	install -m 644 docs/systemd/mxbroker.sysusers $(DESTDIR)$(SYSUSERSDIR)/mxbroker.conf
	find docs/examples -type d | while read -r d; do \
	    install -d "$(DESTDIR)$(EXAMPLESDIR)$${d#docs/examples}" || exit 1; done
	find docs/examples -type f | while read -r f; do \
	    install -m 644 "$$f" "$(DESTDIR)$(EXAMPLESDIR)$${f#docs/examples}" || exit 1; done

clean:
	rm -rf $(BUILD)
