# resolver/: libresolver.a (async DNS client, MX routing) and mxroute.
resolver_DEPS := resolver common
PROGS += mxroute
mxroute_MAIN := resolver/mxroute.c
# --explain shows the outbound TLS policy (smtp-relay/tls_policy.c).
mxroute_DEPS := smtp-relay resolver common
resolver_TESTS += test_resolver test_dnsclient
