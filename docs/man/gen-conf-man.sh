#!/bin/sh
# gen-conf-man.sh - regenerate mxbroker.conf.5 from docs/configuration.md (needs pandoc).
set -eu
cd "$(dirname "$0")/../.."
{
	printf -- '---\ntitle: MXBROKER.CONF\nsection: 5\nheader: mxbroker manual\n'
	printf -- 'footer: mxbroker\n---\n\n# NAME\n\nmxbroker.conf - configuration file of the mxbroker daemons\n\n'
	printf -- '# SYNOPSIS\n\n/etc/mxbroker/mxbroker.conf\n\n# DESCRIPTION\n\n'
	sed -e '1,2d' -e 's/^## /# /' -e 's/^### /## /' docs/configuration.md
	printf '\n# SEE ALSO\n\nbrokerd(8), metricd(8), smtp-relayd(8), smtp-relayctl(8), mxroute(1), metricview(1)\n'
} | pandoc -s -f markdown -t man -o docs/man/mxbroker.conf.5
