# lib.sh - shell helpers shared by the SMTP benchmarks (sourced, not run).
# The caller sets BENCH_NAME (for messages) and `top` (the source tree).

die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

# Wait (bounded) until HOST PORT accepts TCP connections.
wait_port() {
	i=0
	until python3 -c "import socket; socket.create_connection(('$1', $2), 1)" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || die "nothing listens on $1 port $2"
		sleep 0.1
	done
}

# Seconds between two `date +%s.%N` readings.
elapsed() { echo "$1 $2" | awk '{ printf "%.3f\n", $2 - $1 }'; }

# postfix_start DIR PORT: a private Postfix instance in DIR/pf with smtpd on
# 127.0.0.1:PORT (master.cf shared with the integration tests), running in
# the background, its log in DIR/pf/maillog.  Lines for main.cf beyond the
# common ones come on standard input.  Needs root.
postfix_start() {
	mkdir -p "$1/pf/etc" "$1/pf/spool" "$1/pf/data"
	chown postfix "$1/pf/data"
	extra=$(cat)
	{
		# A setting given on standard input replaces the common one.
		awk -v extra="$extra" 'BEGIN {
			n = split(extra, l, "\n")
			for (i = 1; i <= n; i++) { split(l[i], kv, " *= *"); given[kv[1]] = 1 }
		}
		{ split($0, kv, " *= *"); if (!(kv[1] in given)) print }' <<MAINCF
compatibility_level = 3.6
queue_directory = $1/pf/spool
data_directory = $1/pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = pf.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_tls_security_level = none
smtputf8_enable = no
alias_maps =
alias_database =
maillog_file = /dev/stdout
smtpd_client_connection_count_limit = 0
default_process_limit = 200
biff = no
MAINCF
		printf '%s\n' "$extra"
	} >"$1/pf/etc/main.cf"
	sed -n '/^POSTFIX_MASTER_CF/,/^"""/p' "$top/tests/integration/relay_util.py" |
	    sed '1d;$d' | sed "s/{listen}/127.0.0.1:$2/" >"$1/pf/etc/master.cf"
	/usr/sbin/postfix -c "$1/pf/etc" check || die "postfix check failed"
	/usr/sbin/postfix -c "$1/pf/etc" start-fg >"$1/pf/maillog" 2>&1 &
	wait_port 127.0.0.1 "$2"
}

postfix_stop() { /usr/sbin/postfix -c "$1/pf/etc" stop >/dev/null 2>&1 || true; }

# ext4 without a journal does not hand out an inode freed less than 60 s
# ago (360 s while its inode-table block is dirty): each file created in
# that inode group first steps over all of them (recently_deleted() in
# fs/ext4/ialloc.c).  Right after an earlier run removed its 20,000 queue
# files (its cleanup, or the MTAs delivering), every new file in those
# groups costs either MTA a few hundred microseconds more, and a run would
# measure the last run's removals instead of the MTA.  So each MTA gets a
# folder of its own with a random name in BENCH_BASE, which is marked
# chattr +T: the allocator places such a folder as it places a top-level
# one, in an inode group picked by a hash of its name (Orlov), so a fixed
# name would land in the group the last run just emptied, and a random
# one lands away from it and from the other MTA's.  Files made in the
# folder, and folders made in it (spool/, pf/), stay near it.
BENCH_BASE=/tmp/mxb-bench

# bench_folder NAME: make $BENCH_BASE/NAME.XXXXXX and print its path.
bench_folder() {
	mkdir -p "$BENCH_BASE" || die "cannot make $BENCH_BASE"
	chattr +T "$BENCH_BASE" 2>/dev/null || true
	d=$(mktemp -d "$BENCH_BASE/$1.XXXXXX") || die "cannot make a folder in $BENCH_BASE"
	chmod 755 "$BENCH_BASE" "$d"
	echo "$d"
}

# bench_folders: set dir (smtp-relayd's) and pfdir (Postfix's), folders of
# their own, or both BENCH_DIR when it is given.
bench_folders() {
	if [ -n "${BENCH_DIR:-}" ]; then
		dir=$BENCH_DIR pfdir=$BENCH_DIR
	else
		dir=$(bench_folder smtp-relayd) && pfdir=$(bench_folder postfix) || exit 1
	fi
}

# bench_folders_remove: remove what bench_folders made (a given BENCH_DIR
# is kept).
bench_folders_remove() { [ -n "${BENCH_DIR:-}" ] || rm -rf "$dir" "$pfdir"; }
