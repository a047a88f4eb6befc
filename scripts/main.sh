#!/usr/bin/env bash
# The main job, for a fresh Debian 12 machine: install, then run kcc on real configs.
#
#   bash scripts/main.sh
#
# Stages (each prints its results; the job exits non-zero if any stage failed):
#   setup   scripts/setup.sh: apt packages, .venv, editable installs
#   check   `kcc check` every examples/*.cfg and the stock /etc/kamailio/kamailio.cfg
#           (plain and with a few -D sets), next to `kamailio -c` on the same input
#   build   `kcc build` each example into a proxy module under build/, check it is the
#           committed golden (`kcc build --check`), type-check it with mypy --strict and
#           import it; the same for the unmodified stock config (no golden module)
#   call    build examples/stateless_rr_var.cfg and, in a private network namespace
#           (loopback only, the example's own ports), start the proxy and two SIPp UAS
#           on 127.0.0.1:5081/5082, pass one bounded SIPp call through it; then the
#           same with Kamailio on the same cfg; both calls must reach the same backend
#
# To add a stage: write a `stage_<name>` function that returns non-zero on failure and
# add `<name>` to STAGES. Anything that opens a socket must do it inside
# `in_netns` (private network namespace, loopback only).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STAGES=(check build call)
STOCK_CFG=/etc/kamailio/kamailio.cfg
# define sets the stock config is checked with ("" = no define)
STOCK_DEFINE_SETS=(
	""
	"WITH_NAT WITH_ANTIFLOOD"
)

KCC=.venv/bin/kcc

banner() { printf '\n==> %s\n' "$*"; }

# Run a command in a private network namespace with only loopback up.
in_netns() {
	local unshare_cmd=(unshare -n)
	[[ $EUID -eq 0 ]] || unshare_cmd=(unshare -rn)
	"${unshare_cmd[@]}" sh -c 'ip link set lo up && exec "$@"' sh "$@"
}

# check_one CFG [DEFINE...]: kcc check, then kamailio -c as the reference; prints one
# result line (plus kcc's diagnostics, indented) and returns non-zero if either failed
# (every config checked here is valid for Kamailio, so kcc must accept it too).
check_one() {
	local cfg=$1
	shift
	local kcc_args=() kam_args=() label=$cfg def
	for def in "$@"; do
		kcc_args+=(-D "$def")
		kam_args+=(-A "$def")
		label+=" -D $def"
	done

	local out rc=0
	out=$("$KCC" check "$cfg" "${kcc_args[@]}" 2>&1) || rc=$?

	# the reference; `-l` keeps it off every interface but loopback (the stock config
	# has no listen= and would enumerate and reverse-resolve them all)
	local kam="kamailio -c: ok" kam_rc=0
	if ! kamailio -c -l udp:127.0.0.1:5060 -Y "$KAM_RUNDIR" "${kam_args[@]}" -f "$cfg" \
		>/dev/null 2>&1; then
		kam="kamailio -c: FAILS"
		kam_rc=1
	fi

	local verdict="ok  " kcc="kcc: ok"
	case $rc in
	0) ;;
	1) kcc="kcc: errors (exit 1)" ;;
	2) kcc="kcc: usage error (exit 2)" ;;
	70) kcc="kcc: INTERNAL ERROR (exit 70)" ;;
	*) kcc="kcc: exit $rc" ;;
	esac
	((rc == 0 && kam_rc == 0)) || verdict="FAIL"
	printf '  %s %-58s %s; %s\n' "$verdict" "$label" "$kcc" "$kam"
	if [[ -n $out ]]; then
		sed 's/^/      | /' <<<"$out"
	fi
	((rc == 0 && kam_rc == 0))
}

stage_check() {
	local failures=0 cfg set
	local -a defines
	shopt -s nullglob
	local examples=(examples/*.cfg)
	shopt -u nullglob
	if ((${#examples[@]} == 0)); then
		echo "  no examples/*.cfg found"
		return 1
	fi

	echo "  examples:"
	for cfg in "${examples[@]}"; do
		check_one "$cfg" || failures=$((failures + 1))
	done

	echo "  stock config:"
	if [[ ! -f $STOCK_CFG ]]; then
		echo "  $STOCK_CFG is missing (is the kamailio package installed?)"
		return 1
	fi
	for set in "${STOCK_DEFINE_SETS[@]}"; do
		read -r -a defines <<<"$set"
		check_one "$STOCK_CFG" "${defines[@]}" || failures=$((failures + 1))
	done

	echo "  $failures failing check(s)"
	((failures == 0))
}

# build_one CFG: kcc build into build/NAME.py, --check against golden/NAME.py, import it
build_one() {
	local cfg=$1 name
	name=$(basename "$cfg" .cfg)
	local out=build/$name.py rc=0 msg
	if ! msg=$("$KCC" build "$cfg" -o "$out" 2>&1); then
		printf '  FAIL %-40s kcc build failed\n' "$cfg"
		sed 's/^/      | /' <<<"$msg"
		return 1
	fi
	if ! msg=$("$KCC" build "$cfg" -o "golden/$name.py" --check 2>&1); then
		printf '  FAIL %-40s golden/%s.py is stale\n' "$cfg" "$name"
		sed 's/^/      | /' <<<"$msg" | head -40
		rc=1
	fi
	if ! msg=$(.venv/bin/python -c "import importlib.util as u, sys
spec = u.spec_from_file_location('$name', '$out'); m = u.module_from_spec(spec)
spec.loader.exec_module(m); print(len(m.__kcc_routes__))" 2>&1); then
		printf '  FAIL %-40s the generated module does not import\n' "$cfg"
		sed 's/^/      | /' <<<"$msg" | tail -20
		return 1
	fi
	printf '  ok   %-40s %s (%s lines, %s route blocks)\n' "$cfg" "$out" "$(wc -l <"$out")" "$msg"
	return $rc
}

# build_stock: the stock config, unmodified, into build/stock_kamailio.py (no golden
# module: it is GPL text; tests/test_stock_build.py pins its sha256), and import it
build_stock() {
	local out=build/stock_kamailio.py msg
	if ! msg=$("$KCC" build "$STOCK_CFG" -o "$out" 2>&1); then
		printf '  FAIL %-40s kcc build failed\n' "$STOCK_CFG"
		sed 's/^/      | /' <<<"$msg"
		return 1
	fi
	if ! msg=$(.venv/bin/python -c "import importlib.util as u
spec = u.spec_from_file_location('stock_kamailio', '$out'); m = u.module_from_spec(spec)
spec.loader.exec_module(m); print(len(m.__kcc_routes__))" 2>&1); then
		printf '  FAIL %-40s the generated module does not import\n' "$STOCK_CFG"
		sed 's/^/      | /' <<<"$msg" | tail -20
		return 1
	fi
	printf '  ok   %-40s %s (%s lines, %s route blocks)\n' "$STOCK_CFG" "$out" "$(wc -l <"$out")" "$msg"
}

stage_build() {
	local failures=0 cfg
	mkdir -p build
	for cfg in examples/*.cfg; do
		build_one "$cfg" || failures=$((failures + 1))
	done
	build_stock || failures=$((failures + 1))
	echo "  mypy --strict build/*.py:"
	# runtime/ on the path: the editable install is an import hook mypy cannot follow
	if ! MYPYPATH=runtime .venv/bin/mypy --strict --no-error-summary build/*.py | sed 's/^/      | /'; then
		failures=$((failures + 1))
	fi
	echo "  $failures failing build(s)"
	((failures == 0))
}

# -- call: one SIP call through a built proxy and through Kamailio ------------------
# The call stage re-enters this script inside the network namespace
# (`main.sh --call-in-netns`): the functions below run there, where the example's fixed
# ports (proxy 5060, backends 5081/5082) are free and nothing can leave loopback.
CALL_CFG=examples/stateless_rr_var.cfg
CALL_SCENARIOS=tests/integration/scenarios
SIPP_BUFF=4194304

# udp_bound PORT: some socket of this namespace is bound to UDP PORT
udp_bound() {
	grep -q ":$(printf '%04X' "$1") " /proc/net/udp /proc/net/udp6 2>/dev/null
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds or time runs out
wait_for() {
	local tries=$(($1 * 10))
	shift
	while ((tries-- > 0)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# proxy_settled: the proxy is bound to 127.0.0.1:5060, or it is gone (CALL_PROXY_PID)
proxy_settled() {
	udp_bound 5060 || ! kill -0 "$CALL_PROXY_PID" 2>/dev/null
}

# stop_pid PID [SIGNAL]: stop one process we started with `setsid` (SIGTERM by
# default), then SIGKILL what is left of its process group after 10 s: Kamailio 5.6
# with cfgutils locks sometimes deadlocks in its SIGTERM shutdown, workers included.
# The group is a session of our own, so only processes we started are in it.
stop_pid() {
	local pid=$1 sig=${2:-TERM} n=100
	if kill -0 "$pid" 2>/dev/null; then
		kill -"$sig" "$pid" 2>/dev/null || true
		while ((n-- > 0)) && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	fi
	kill -KILL -- "-$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# one_call LABEL LOGDIR PROXY-COMMAND...: start the backends and the proxy, wait until
# the proxy serves, run one SIPp call (-m 1 under `timeout`), stop everything by PID.
# Prints one result line; sets CALL_BACKEND to the UAS port the call reached.
one_call() {
	local label=$1 dir=$2
	shift 2
	local uas1 uas2 proxy rc=0
	CALL_BACKEND=
	# setsid: each in a process group of its own, for stop_pid (a background job of a
	# script is no group leader, so setsid execs in place and $! is the process)
	setsid sipp -sf "$CALL_SCENARIOS/uas.xml" -i 127.0.0.1 -p 5081 -buff_size $SIPP_BUFF \
		-nostdin >/dev/null 2>"$dir/uas1.err" &
	uas1=$!
	setsid sipp -sf "$CALL_SCENARIOS/uas.xml" -i 127.0.0.1 -p 5082 -buff_size $SIPP_BUFF \
		-nostdin >/dev/null 2>"$dir/uas2.err" &
	uas2=$!
	setsid "$@" >"$dir/proxy.log" 2>&1 &
	proxy=$!
	CALL_PIDS+=("$proxy" "$uas1" "$uas2")
	CALL_PROXY_PID=$proxy
	if ! wait_for 20 udp_bound 5081 || ! wait_for 20 udp_bound 5082; then
		printf '  FAIL %-10s the SIPp backends did not start\n' "$label"
		rc=1
	elif ! wait_for 20 proxy_settled || ! kill -0 "$proxy" 2>/dev/null; then
		printf '  FAIL %-10s the proxy did not start serving on 127.0.0.1:5060\n' "$label"
		rc=1
	else
		sleep 0.5 # a bound socket is not yet a forked worker (Kamailio forks after binding)
		timeout 30 sipp -sf "$CALL_SCENARIOS/uac.xml" -i 127.0.0.1 -p 5070 \
			-buff_size $SIPP_BUFF -nostdin -m 1 -r 1 -timeout 20s \
			-trace_logs -log_file "$dir/uac.calls" 127.0.0.1:5060 \
			>/dev/null 2>"$dir/uac.err" || rc=$?
		CALL_BACKEND=$(awk '$1 == 1 {print $2}' "$dir/uac.calls" 2>/dev/null || true)
		if ((rc == 0)) && [[ -n $CALL_BACKEND ]]; then
			printf '  ok   %-10s 1 call: UAC -> 127.0.0.1:5060 -> UAS 127.0.0.1:%s, ACK+BYE direct (SIPp exit 0)\n' \
				"$label" "$CALL_BACKEND"
		else
			printf '  FAIL %-10s the call failed (SIPp exit %s)\n' "$label" "$rc"
			rc=1
		fi
	fi
	stop_pid "$proxy"
	stop_pid "$uas1" USR1
	stop_pid "$uas2" USR1
	CALL_PIDS=()
	if ((rc != 0)); then
		tail -n 20 "$dir/proxy.log" "$dir/uac.err" 2>/dev/null | sed 's/^/      | /'
	fi
	return $rc
}

# runs inside the namespace: the kcc proxy, then Kamailio, on the same cfg
CALL_PIDS=()
# interrupted (^C, a closed pipe): stop what is still running
call_cleanup() {
	local pid
	for pid in "${CALL_PIDS[@]}"; do
		stop_pid "$pid"
	done
}

call_in_netns() {
	local module=$1 dir failures=0 kcc_backend kam_backend
	trap call_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 141' PIPE
	dir=$(mktemp -d)
	mkdir -p "$dir/kcc" "$dir/kamailio"
	one_call kcc "$dir/kcc" .venv/bin/python "$module" --allow-dst 127.0.0.0/8,::1 ||
		failures=$((failures + 1))
	kcc_backend=$CALL_BACKEND
	one_call kamailio "$dir/kamailio" kamailio -DD -E -f "$CALL_CFG" -Y "$dir/kamailio" \
		-w "$dir/kamailio" -m 64 || failures=$((failures + 1))
	kam_backend=$CALL_BACKEND
	if ((failures == 0)) && [[ $kcc_backend != "$kam_backend" ]]; then
		echo "  FAIL the first call reached 127.0.0.1:$kcc_backend with kcc, 127.0.0.1:$kam_backend with Kamailio"
		failures=$((failures + 1))
	fi
	rm -rf "$dir"
	((failures == 0))
}

stage_call() {
	local out=build/stateless_rr_var.py msg
	mkdir -p build
	if ! msg=$("$KCC" build "$CALL_CFG" -o "$out" 2>&1); then
		echo "  FAIL kcc build $CALL_CFG"
		sed 's/^/      | /' <<<"$msg"
		return 1
	fi
	echo "  built $CALL_CFG -> $out; private network namespace, loopback only:"
	in_netns bash scripts/main.sh --call-in-netns "$out"
}

if [[ ${1:-} == --call-in-netns ]]; then
	call_in_netns "$2"
	exit
fi

bash scripts/setup.sh

KAM_RUNDIR=$(mktemp -d)
trap 'rm -rf "$KAM_RUNDIR"' EXIT

failed=()
for stage in "${STAGES[@]}"; do
	banner "$stage"
	if ! "stage_$stage"; then
		failed+=("$stage")
	fi
done

echo
if ((${#failed[@]})); then
	echo "FAILED: ${failed[*]}"
	exit 1
fi
echo "OK: ${STAGES[*]}"
