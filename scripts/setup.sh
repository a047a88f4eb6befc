#!/usr/bin/env bash
# Install what kcc's jobs need on a fresh Debian 12 machine; cheap to re-run.
#
#   bash scripts/setup.sh
#
# Called by scripts/test.sh and scripts/main.sh before they do anything else.
#   1. apt packages, only those missing (one `apt-get update` first, non-interactive):
#      kamailio and sip-tester (SIPp) are the reference the tests compare against,
#      iproute2 and util-linux give `ip` and `unshare` (tests run in a private network
#      namespace), python3 and python3-venv build the virtualenv.
#      kamailio-{mysql,presence,tls}-modules ship db_mysql, presence + presence_xml
#      and tls, which the stock config loads under WITH_MYSQL, WITH_PRESENCE and
#      WITH_TLS: without them `kamailio -c` rejects those combinations
#      (tests/test_differential.py).
#   2. .venv (python3 -m venv), if missing.
#   3. pip install -e ./runtime -e '.[test]' into it. Skipped when the two
#      pyproject.toml files have not changed since the last successful install
#      (editable installs pick up code changes by themselves); KCC_REINSTALL=1 forces it.
#
# Needs root (or sudo) only when an apt package is missing.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(kamailio sip-tester iproute2 util-linux python3 python3-venv
	kamailio-mysql-modules kamailio-presence-modules kamailio-tls-modules kamailio-sqlite-modules rtpengine-daemon)
VENV=.venv
STAMP="$VENV/.kcc-install-stamp"

banner() { printf '\n==> %s\n' "$*"; }

banner "setup: apt packages, $VENV, editable installs"

# -- 1. apt packages ----------------------------------------------------------------

is_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
	for pkg in "${APT_PACKAGES[@]}"; do
		is_installed "$pkg" || missing+=("$pkg")
	done
else
	# not a Debian system: just check for the commands, the developer installs them
	for cmd in kamailio sipp ip unshare python3; do
		command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
	done
	if ((${#missing[@]})); then
		echo "setup: missing commands: ${missing[*]} (not a Debian system: install them yourself)" >&2
		exit 1
	fi
fi

if ((${#missing[@]})); then
	banner "apt-get install ${missing[*]}"
	sudo=()
	if [[ $EUID -ne 0 ]]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo=(sudo)
		else
			echo "setup: missing packages ${missing[*]} and not root (no sudo)" >&2
			exit 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -q
	"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
	echo "apt packages: all present (${APT_PACKAGES[*]})"
fi

# -- 2. virtualenv ------------------------------------------------------------------

if [[ ! -x $VENV/bin/python ]]; then
	banner "python3 -m venv $VENV"
	python3 - <<'EOF'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"setup: kcc needs Python 3.11 or later, `python3` is {sys.version.split()[0]}")
EOF
	python3 -m venv "$VENV"
else
	echo "$VENV: present ($("$VENV/bin/python" -V))"
fi

# -- 3. Python packages -------------------------------------------------------------

want=$(cat pyproject.toml runtime/pyproject.toml | sha256sum | cut -d' ' -f1)
have=$(cat "$STAMP" 2>/dev/null || true)
if [[ ${KCC_REINSTALL:-} == 1 || $want != "$have" ]]; then
	banner "pip install -e ./runtime -e '.[test]'"
	rm -f "$STAMP"
	"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
		-e ./runtime -e '.[test]'
	echo "$want" >"$STAMP"
else
	echo "pip install: up to date (pyproject.toml files unchanged; KCC_REINSTALL=1 forces it)"
fi

if [[ ${CI:-} == true ]]; then
	banner "versions"
	"$VENV/bin/python" -V
	"$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null |
		grep -iE '^(kcc|kcc-runtime|lark|libcst|black|typer|rich|pytest|hypothesis|mypy|ruff|sipvicious) ' || true
	kamailio -v | head -n 1
	sipp -v 2>/dev/null | grep -m 1 -i 'sipp' || true
fi
