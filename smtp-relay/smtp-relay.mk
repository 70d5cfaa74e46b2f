# smtp-relay/: libsmtp-relay.a (server, queue, delivery) and smtp-relayd, smtp-relayctl.
smtp-relay_DEPS := smtp-relay resolver common
PROGS += smtp-relayd smtp-relayctl
smtp-relayd_MAIN := smtp-relay/smtp-relayd.c
smtp-relayctl_MAIN := smtp-relay/smtp-relayctl.c
smtp-relay_TESTS += test_address test_smtp_proto test_queue
smtp-relay_TESTS += test_deliver test_dsn test_smtp_client test_maildir
smtp-relay_TESTS += test_regress_smtp test_auth
smtp-relay_TESTS += test_tls_policy
smtp-relay_TESTS += test_mta_sts
