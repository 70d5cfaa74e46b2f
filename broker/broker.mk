# broker/: libbroker.a (zone store, answers, clusters, poller) and brokerd.
broker_DEPS := broker metrics common
PROGS += brokerd
brokerd_MAIN := broker/brokerd.c
