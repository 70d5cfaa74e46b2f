# resolver/: libresolver.a (async DNS client, MX routing) and mxroute.
PROGS += mxroute
mxroute_MAIN := resolver/mxroute.c
