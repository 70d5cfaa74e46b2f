#!/bin/sh
# install-deps.sh - install the Debian packages mxbroker needs to build and test.
#
# Installs only what is missing, runs `apt-get update` at most once, never asks
# a question.  Postfix is preseeded to "No configuration" so that installing it
# for smtp-source/smtp-sink does not start a system mail server.
set -eu

PACKAGES="
 build-essential pkg-config
 libldns-dev libevent-dev libjson-c-dev libssl-dev
 clang libclang-rt-14-dev clang-format valgrind
 bind9-dnsutils ldnsutils knot-dnsutils dnsperf
 nsd knot gdnsd lbcd
 swaks libnet-ssleay-perl libio-socket-ssl-perl postfix openssl unbound nginx-light
 python3 python3-pytest python3-pytest-xdist python3-dnspython
 iproute2 procps prometheus man-db groff-base
 systemd
"

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "deps: all build and test packages are installed"
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run 'make deps' as root (or: sudo apt-get install$missing)" >&2
	exit 1
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# Packaged daemons (nsd, knot, gdnsd, lbcd) must not start system services on
# install: tests run their own instances on loopback ports.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy"
	chmod 755 "$policy"
	created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
