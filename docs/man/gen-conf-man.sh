#!/bin/sh
# gen-conf-man.sh - regenerate mxbroker.conf.5 from docs/configuration.md (needs pandoc).
#
# pandoc's man writer sizes every table for 70 columns of text and keeps the
# backslash of the \| a Markdown table needs inside code; the python step
# after it scales the tables to an 80-column terminal (64n of text plus the
# gaps), drops those backslashes and turns off justification, so that
# `man -l docs/man/mxbroker.conf.5` renders without a troff warning.
set -eu
cd "$(dirname "$0")/../.."
out=docs/man/mxbroker.conf.5
{
	printf -- '---\ntitle: MXBROKER.CONF\nsection: 5\nheader: mxbroker manual\n'
	printf -- 'footer: mxbroker 0.1.0\ndate: 2026\n---\n\n# NAME\n\nmxbroker.conf - configuration file of the mxbroker daemons\n\n'
	printf -- '# SYNOPSIS\n\n/etc/mxbroker/mxbroker.conf\n\n# DESCRIPTION\n\n'
	sed -e '1,2d' -e 's/^## /# /' -e 's/^### /## /' docs/configuration.md
	printf '\n# SEE ALSO\n\nbrokerd(8), brokerd-ctl(8), metricd(8), smtp-relayd(8), smtp-relayctl(8), mxroute(1), metricview(1)\n'
} | pandoc -s -f markdown -t man -o "$out"
python3 - "$out" <<'PY'
import re
import sys

path = sys.argv[1]
text = open(path).read()


def scale(m):
    widths = [float(w) for w in re.findall(r"lw\(([\d.]+)n\)", m.group(0))]
    room = 64 - 3 * (len(widths) - 1)
    k = min(1.0, room / sum(widths))
    return " ".join(f"lw({w * k:.1f}n)" for w in widths) + "."


text = re.sub(r"^(?:lw\([\d.]+n\) ?)+\.$", scale, text, flags=re.M)
text = text.replace("\\[rs]|", "|")
text = re.sub(r"^(\.TH .*\n)", r"\1.ad l\n", text, count=1, flags=re.M)
open(path, "w").write(text)
PY
