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
#           import it
#   call    (planned) run each built proxy on loopback and pass a SIPp call through it
#
# To add a stage: write a `stage_<name>` function that returns non-zero on failure and
# add `<name>` to STAGES. Anything that opens a socket must do it inside
# `in_netns` (private network namespace, loopback only).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STAGES=(check build)
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

stage_build() {
	local failures=0 cfg
	mkdir -p build
	for cfg in examples/*.cfg; do
		build_one "$cfg" || failures=$((failures + 1))
	done
	echo "  mypy --strict build/*.py:"
	# runtime/ on the path: the editable install is an import hook mypy cannot follow
	if ! MYPYPATH=runtime .venv/bin/mypy --strict --no-error-summary build/*.py | sed 's/^/      | /'; then
		failures=$((failures + 1))
	fi
	echo "  $failures failing build(s)"
	((failures == 0))
}

# stage_call() { ... }    planned: in_netns: start SIPp UAS(es) on 127.0.0.1:5081/5082,
#                         the built proxy on 127.0.0.1:5060, one bounded SIPp UAC call
#                         (-m 1, outer timeout); compare with Kamailio running the same cfg

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
