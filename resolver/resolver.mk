# resolver/: libresolver.a (async DNS client, MX routing) and mxroute.
resolver_DEPS := resolver common
PROGS += mxroute
mxroute_MAIN := resolver/mxroute.c
resolver_TESTS += test_resolver test_dnsclient
