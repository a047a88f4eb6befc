# make bench: issue 8's one-command benchmark (bench/run_all.py). Installs what is
# missing (scripts/setup.sh: Kamailio, SIPp, the venv), then runs every bench on
# loopback in a private network namespace and writes bench/RESULTS.md (~8 min, 2 cores).
# Not root: a user namespace maps us to root inside it (unshare -rn).

.PHONY: bench

bench:
	bash scripts/setup.sh
	if [ "$$(id -u)" = 0 ]; then ns="unshare -n"; else ns="unshare -rn"; fi; \
	$$ns sh -c 'ip link set lo up && exec .venv/bin/python bench/run_all.py'
