#!/usr/bin/env bash
# THE test command: what CI runs (.ci/run, with CI=true, on a clean clone) and what a
# developer runs before pushing.
#
#   bash scripts/test.sh                # everything
#   bash scripts/test.sh -k lexer       # extra arguments go to pytest
#
# Steps, in order: install (scripts/setup.sh), ruff check, ruff format --check,
# mypy --strict, pytest. Every check runs even if an earlier one failed, so one run
# shows every problem; the exit status is non-zero if any step failed. pytest's exit
# code 5 ("no tests collected", e.g. a -k that matches nothing) is a failure too.
#
# pytest runs in a private network namespace (`unshare -n`) whose only interface is
# loopback: a test cannot reach any other address even by mistake. As root this is
# `unshare -n`; as another user, `unshare -rn` (a user namespace maps you to root
# inside it).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

banner() { printf '\n==> %s\n' "$*"; }

bash scripts/setup.sh

PY_DIRS=(kcc runtime tests bench)
failed=()

run_step() {
	local name=$1
	shift
	banner "$name"
	if "$@"; then
		return 0
	else
		local rc=$?
		echo "--- $name: failed (exit $rc)"
		failed+=("$name")
		return 0
	fi
}

run_step "ruff check" .venv/bin/ruff check "${PY_DIRS[@]}"
run_step "ruff format --check" .venv/bin/ruff format --check "${PY_DIRS[@]}"
run_step "mypy --strict" .venv/bin/mypy --strict kcc runtime

banner "pytest (private network namespace, loopback only)"
unshare_cmd=(unshare -n)
[[ $EUID -eq 0 ]] || unshare_cmd=(unshare -rn)
set +e
"${unshare_cmd[@]}" sh -c 'ip link set lo up && exec .venv/bin/pytest -q "$@"' sh "$@"
rc=$?
set -e
case $rc in
0) ;;
5)
	echo "--- pytest: no tests collected (exit 5), counted as a failure"
	failed+=("pytest")
	;;
*)
	echo "--- pytest: failed (exit $rc)"
	failed+=("pytest")
	;;
esac

echo
if ((${#failed[@]})); then
	echo "FAILED: ${failed[*]}"
	exit 1
fi
echo "OK: ruff check, ruff format --check, mypy --strict, pytest"
