# broker/: libbroker.a (zone store, answers, transfers, network) and brokerd.
broker_DEPS := broker metrics common
PROGS += brokerd
brokerd_MAIN := broker/brokerd.c
PROGS += brokerd-ctl
brokerd-ctl_MAIN := broker/brokerd-ctl.c
broker_TESTS += test_zone test_dnsq
broker_TESTS += test_ranker test_updater test_cluster
broker_TESTS += test_rrl test_xfr test_dnssec
broker_TESTS += test_journal test_tsig
