# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Shared by the envelope netfront's tests (netfront.sh, netfront_routes.sh);
# sourced, never run. netfront_start loads VMPI, the SR-IOV hook, the
# switch and the netfront, and makes three guests: VMPI devices d1, d2, d3
# (guest sides in this kernel), interfaces ef1, ef2, ef3 over them with
# MACs 02:00:00:00:00:0N, in network namespaces ns1, ns2, ns3 at
# 10.9.0.N/24; ef1 and ef3 post buffers (posted=32: frames are delivered
# into them), ef2 posts none (the default: frames reach it by ENVELOPE
# and copy).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

S=/sys/kernel/envelope_switch
F=/sys/kernel/envelope_netfront
H=/sys/kernel/sriov_hook
DOMS="d1 d2 d3"
here=$(dirname "${BASH_SOURCE[0]}")
nsim=$((700 + RANDOM % 100))

netfront_cleanup() {
	local d
	nsh_stop
	# One ip for these (-force: on past what is not there).
	ip -force -batch - >/dev/null 2>&1 <<-EOF
		netns del ns1
		netns del ns2
		netns del ns3
		netns del out
		link del up0
	EOF
	[ -e /sys/bus/netdevsim/devices/netdevsim$nsim ] && echo $nsim >/sys/bus/netdevsim/del_device
	# (One rmmod: it goes on past a module that is not loaded.)
	rmmod envelope_netfront envelope_switch sriov_hook 2>/dev/null
	[ -d /sys/module/netdevsim ] && modprobe -r netdevsim 2>/dev/null
	for d in $DOMS d4; do [ -e "/sys/bus/vdpa/devices/$d" ] && vdpa dev del "$d" 2>/dev/null; done
	vmpi_unload
}

mac() { printf '02:00:00:00:00:%02x' "$1"; }
# nsx N CMD...: CMD run in namespace nsN, by the shell that stays there
# (nsh_start), else by `ip netns exec`. That shell forks and execs CMD
# (stdin /dev/null; its stdout comes back through a FIFO, its stderr
# through a file, both to nsx's own): a fifth of a second in the test VM
# where `ip netns exec` takes half a second or more. One command at a
# time: nsx is not for commands in the background (there `ip netns exec`,
# whose $! is the command's).
NSH_DIR=${TMPDIR:-/tmp}/netfront_nsh.$$
NSH_W=() NSH_R=() NSH_P=()
nsh_start() {
	local i w r
	mkdir -p "$NSH_DIR" || return 1
	for i; do mkfifo "$NSH_DIR/in$i" "$NSH_DIR/out$i" || return 1; done
	for i; do
		# (Without the other shells' FIFOs: each ends at its own EOF.)
		(
			for w in "${NSH_W[@]}" "${NSH_R[@]}"; do eval "exec $w>&-"; done
			exec ip netns exec "ns$i" bash <"$NSH_DIR/in$i" >"$NSH_DIR/out$i" 2>/dev/null
		) &
		NSH_P[i]=$!
		exec {w}>"$NSH_DIR/in$i" {r}<"$NSH_DIR/out$i"
		NSH_W[i]=$w NSH_R[i]=$r
	done
}
nsh_stop() {
	local i w r
	for i in "${!NSH_P[@]}"; do
		w=${NSH_W[i]} r=${NSH_R[i]}
		# (exit: a process started since may hold the FIFO open too.)
		kill -0 "${NSH_P[i]}" 2>/dev/null && echo exit >&"$w"
		exec {w}>&- {r}<&-
		wait "${NSH_P[i]}"
	done
	NSH_W=() NSH_R=() NSH_P=()
	[ -d "$NSH_DIR" ] && rm -rf "$NSH_DIR"
}
# Sends CMD ($2...) to nsN's shell, if it runs; its output ends with an
# empty line (the end of its last line, if it had none) and "@@nsh@@ STATUS".
nsh_send() {
	local n=$1
	shift
	[ -n "${NSH_P[n]:-}" ] && kill -0 "${NSH_P[n]}" 2>/dev/null || return 1
	printf '%q ' "$@" >&"${NSH_W[n]}"
	printf '</dev/null 2>%q; printf "\\n@@nsh@@ %%s\\n" $?\n' "$NSH_DIR/err$n" >&"${NSH_W[n]}"
}
nsx() {
	local n=$1 l p have=0
	shift
	nsh_send "$n" "$@" || { ip netns exec "ns$n" "$@"; return; }
	while IFS= read -r l <&"${NSH_R[n]}"; do
		if [[ $l == "@@nsh@@ "* ]]; then
			[ $have = 1 ] && [ -n "$p" ] && printf '%s\n' "$p"
			while IFS= read -r p; do printf '%s\n' "$p" >&2; done <"$NSH_DIR/err$n"
			return "${l#@@nsh@@ }"
		fi
		[ $have = 1 ] && printf '%s\n' "$p"
		p=$l have=1
	done
	return 1
}
# Counters, read with the shell's own `read` (every process costs a fifth
# of a second in the test VM, `ip netns exec ... ethtool` half a second
# or more): stats_read I... reads the ethtool -S counters of each ef$I
# once into ES ("I:NAME", and I:rgrant: the frames ef$I received by
# grant, copied after an ENVELOPE or delivered into a posted buffer), and
# the switch's stats file into SS (NAME).
declare -A ES=() SS=()
stats_read() {
	local i k v
	ES=() SS=()
	for i; do
		if nsh_send "$i" ethtool -S "ef$i"; then
			# (An empty line, then the status.)
			while read -r k v <&"${NSH_R[i]}" && [ "$k" != @@nsh@@ ]; do
				[ -n "$v" ] && ES[$i:${k%:}]=$v
			done
		else
			while read -r k v; do
				[ -n "$v" ] && ES[$i:${k%:}]=$v
			done < <(nsx "$i" ethtool -S "ef$i" 2>/dev/null)
		fi
		[ -n "${ES[$i:rx_copy_ok]}" ] && [ -n "${ES[$i:rx_delivered]}" ] &&
			ES[$i:rgrant]=$((ES[$i:rx_copy_ok] + ES[$i:rx_delivered]))
	done
	[ -r $S/stats ] || return 0
	# (A line without a name, if one ever comes, is not a counter: an
	# empty subscript would abort the calling check.)
	while read -r k v; do [ -z "$k" ] || SS[$k]=$v; done <$S/stats
}
# ethtool -S counter $2 of ef$1 (I:rgrant: see stats_read). Inside
# `snapshot`, from its one reading of each interface's counters.
estat() {
	[ -n "${ES_SNAP:-}" ] || stats_read "$1"
	[ -n "${ES[$1:$2]}" ] && echo "${ES[$1:$2]}"
}
# Runs "$@" (in this shell) with ES and SS read once first, of ef$I for
# each I in $ES_IFS (default 1 2 3): a consistent view, and the checks
# read ES and SS without a process. estat and sstat read them too.
# (Its locals are named apart: "$@" sees its caller's.)
snapshot() {
	local ES_SNAP=1
	# shellcheck disable=SC2086
	stats_read ${ES_IFS:-1 2 3}
	"$@"
}
# counters I:NAME...: the ethtool -S counters NAME of ef$I (NAME rgrant:
# see stats_read) in array C, from one reading of each interface:
#   counters 1:tx_frames 2:rgrant && read -r a b <<<"${C[*]}"
counters() {
	local a i ifs=" "
	for a; do [[ $ifs == *" ${a%%:*} "* ]] || ifs+="${a%%:*} "; done
	# shellcheck disable=SC2086
	stats_read $ifs
	C=()
	for a; do C+=("${ES[$a]}"); done
}
# A counter of the switch's stats file (inside `snapshot`: its reading).
sstat() {
	local k v
	[ -n "${ES_SNAP:-}" ] && { [ -n "${SS[$1]}" ] && echo "${SS[$1]}"; return; }
	while read -r k v; do [ "$k" = "$1" ] && { echo "$v"; return 0; }; done <$S/stats
	return 1
}
# ethtool -S counter $1 summed over ef1, ef2, ef3 (nothing if one is
# missing).
esum() {
	[ -n "${ES_SNAP:-}" ] || stats_read 1 2 3
	[ -n "${ES[1:$1]}" ] && [ -n "${ES[2:$1]}" ] && [ -n "${ES[3:$1]}" ] &&
		echo $((ES[1:$1] + ES[2:$1] + ES[3:$1]))
}
# Frames ef$1 received by grant: copied after an ENVELOPE, or delivered
# into a posted buffer.
rgrant() { estat "$1" rgrant; }
# sum3 VAR NAME: VAR set to ethtool -S counter NAME summed over ef1, ef2,
# ef3 of the last reading (`snapshot`), without a process; empty if one
# is missing.
sum3() {
	printf -v "$1" ''
	[ -n "${ES[1:$2]}" ] && [ -n "${ES[2:$2]}" ] && [ -n "${ES[3:$2]}" ] &&
		printf -v "$1" %d $((ES[1:$2] + ES[2:$2] + ES[3:$2]))
}
# Line $1 is in the switch's table (read by the shell: it is polled).
table_has() {
	local l
	while IFS= read -r l; do [ "$l" = "$1" ] && return 0; done <$S/table
	return 1
}
# Every netfront holds the switch's table generation (from the netfront's
# fronts file: polled, and ethtool in a namespace costs half a second).
took_table() {
	local g="" k l n=0
	while read -r k l; do [ "$k" = generation ] && g=$l; done <$S/stats
	[ -n "$g" ] || return 1
	while read -r l; do
		[[ " $l " = *" generation=$g "* ]] || return 1
		n=$((n + 1))
	done <$F/fronts
	[ $n -gt 0 ]
}
# The switch's mode (envelope or copy), taken by every netfront.
set_mode() { echo "$1" >$S/mode && WAIT_SECS=5 wait_for took_table; }

# numbered_udp CMD...: numbered UDP datagrams of 1200 bytes from ns1 to
# 10.9.0.2 (at most 100 a second, 6000 at most) while CMD runs, for tests
# of changes under traffic. Sets UDP_GOT (the different datagrams ns2
# received whole) and UDP_SENT; fails if CMD, the sender or the receiver
# did. 6000 sent: the sender ran out before CMD was done.
numbered_udp() {
	local out stop pid l rc=0
	UDP_GOT="" UDP_SENT=""
	out=${TMPDIR:-/tmp}/netfront_numbered.$$ stop=${TMPDIR:-/tmp}/netfront_numbered_stop.$$
	rm -f "$out" "$stop"
	python3 -S "$here/netfront_traffic.py" numbered "$stop" >"$out" &
	pid=$!
	numbered_ready() { read_line l "$out" && [ "$l" = ready ]; }
	if ! WAIT_SECS=30 wait_for numbered_ready; then
		kill $pid
		wait $pid
		rm -f "$out"
		return 1
	fi
	sleep 0.5
	"$@" || rc=1
	: >"$stop"
	wait $pid || rc=1
	{ read -r l && read -r UDP_GOT UDP_SENT; } <"$out"
	rm -f "$out" "$stop"
	ktap_print_msg "ns2 got $UDP_GOT of $UDP_SENT numbered datagrams"
	[ $rc = 0 ] && [ -n "$UDP_GOT" ] && [ -n "$UDP_SENT" ]
}
# Every numbered datagram sent arrived, and the sender did not run out.
numbered_all() { [ "$UDP_GOT" = "$UDP_SENT" ] && [ "$UDP_SENT" -lt 6000 ]; }

netfront_setup() {
	local i m p
	for i in 1 2 3; do
		printf -v m '02:00:00:00:00:%02x' $i
		# ef2 posts no buffer (the default): frames reach it by ENVELOPE
		# and copy; ef1 and ef3 post 32 (as many as fit: 21).
		p=posted=32
		[ $i = 2 ] && p=""
		echo "d$i domain=$i" >$S/domains &&
			echo "$(vdpa_virtio_of "d$i") name=ef$i $p" >$F/attach || return 1
		# One ip for what is done in this namespace, one for what in
		# ns$i (each ip costs a quarter of a second in the test VM):
		# -batch stops at the first error, and fails.
		ip -batch - <<-EOF || return 1
			link set ef$i address $m
			netns add ns$i
			link set ef$i netns ns$i
		EOF
		echo "$m domain=$i" >$S/table || return 1
		ip -n "ns$i" -batch - <<-EOF || return 1
			addr add 10.9.0.$i/24 dev ef$i
			link set ef$i up
			link set lo up
		EOF
	done
}
# ef$1, attached again to d$1's virtio device with options $2, gets its
# MAC and goes back into ns$1 with its address, up.
netfront_reattach() {
	local m
	printf -v m '02:00:00:00:00:%02x' "$1"
	echo "$(vdpa_virtio_of "d$1") name=ef$1${2:+ $2}" >$F/attach && ip -batch - <<-EOF && ip -n "ns$1" -batch - <<-EOF2
		link set ef$1 address $m
		link set ef$1 netns ns$1
	EOF
		addr add 10.9.0.$1/24 dev ef$1
		link set ef$1 up
	EOF2
}

# The test's header with plan $1, then the modules and the three guests
# (the first result); exits on failure.
netfront_start() {
	local d
	rvio_on_exit netfront_cleanup
	ktap_print_header
	ktap_set_plan "$1"
	vmpi_load "$(rvio_ko sriov_hook)" "$(rvio_ko envelope_switch)" "$(rvio_ko envelope_netfront)" ||
		ktap_exit_fail_msg "cannot load VMPI"
	for d in $DOMS; do vdpa dev add mgmtdev vmpi name "$d" || ktap_exit_fail_msg "vdpa dev add $d failed"; done
	for d in $DOMS; do
		WAIT_SECS=20 wait_for vmpi_link_up "$d" || ktap_exit_fail_msg "VMPI device $d did not come up"
	done
	insmod "$(rvio_ko sriov_hook)" && insmod "$(rvio_ko envelope_switch)" &&
		insmod "$(rvio_ko envelope_netfront)" || ktap_exit_fail_msg "cannot load the envelope modules"
	ktap_check "three netfronts over d1, d2, d3 in namespaces ns1, ns2, ns3" netfront_setup &&
		nsh_start 1 2 3
}
