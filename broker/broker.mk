# broker/: libbroker.a (zone store, answers, clusters) and brokerd.
PROGS += brokerd
brokerd_MAIN := broker/brokerd.c
