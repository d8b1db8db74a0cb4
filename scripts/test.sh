#!/usr/bin/env bash
# Installs what is missing, builds popek twice (plain, and with
# AddressSanitizer + UndefinedBehaviorSanitizer), and runs every test:
# unit tests in both builds, system tests (direct KVM and the nested
# harness) against the sanitized build, and the direct ones against the
# plain build too. Ends with one line: "total: N passed, M failed".
#
#   scripts/test.sh            everything
#   scripts/test.sh -k expr    passes pytest options through
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
install_missing $POPEK_BUILD_PACKAGES $POPEK_TEST_PACKAGES || exit 1

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
passed=0 failed=0

build_popek build || exit 1
build_popek build-asan -Db_sanitize=address,undefined -Db_lundef=false || exit 1

# meson's summary: "Ok: N ... Fail: M"
run_unit() {
	local out ok fail
	out=$(meson test -C "$1" --suite unit --print-errorlogs 2>&1)
	echo "$out" | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Expected Fail|Timeout):'
	ok=$(echo "$out" | awk '/^Ok:/ {print $2}')
	fail=$(echo "$out" | awk '/^(Fail|Timeout|Unexpected Pass):/ {s += $2} END {print s + 0}')
	[ -n "$ok" ] || { echo "$out"; fail=$((fail + 1)); ok=0; }
	passed=$((passed + ok)); failed=$((failed + fail))
}

# pytest's summary: "N passed, M failed, ..."
run_pytest() {
	local log rc p f e
	log=$(mktemp)
	/usr/bin/python3 -m pytest -q -rfE -p no:cacheprovider "$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	p=$(tail -n 1 "$log" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
	f=$(tail -n 1 "$log" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || true)
	e=$(tail -n 1 "$log" | grep -oE '[0-9]+ errors?' | grep -oE '[0-9]+' || true)
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0}))
	# A run that failed without counting a failure (collection error,
	# no tests collected) still counts as one.
	if [ "$rc" -ne 0 ] && [ -z "$f$e" ]; then failed=$((failed + 1)); fi
	rm -f "$log"
}

echo "== unit tests (plain build)"
run_unit build
echo "== unit tests (ASan + UBSan build)"
run_unit build-asan
echo "== system tests, direct path (plain build)"
POPEK=build/popek run_pytest tests/system -m "not nested" "$@"
echo "== system tests and nested harness (ASan + UBSan build)"
POPEK=build-asan/popek run_pytest tests/system tests/nested "$@"

echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
