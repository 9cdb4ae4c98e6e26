#!/usr/bin/env bash
# make check-diff-long: the differential test with QT_DIFF_OPS operations
# per device (default 10^7), each device's case in its own process, two
# at a time (the machine's two cores; about 1.5 h here instead of 3 h in
# one process).  Logs in build/diff-long/; ends with "N passed, N failed".
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export QT_DIFF_OPS=${QT_DIFF_OPS:-10000000} QT_BUILD_DIR=$BUILD
logs=$BUILD/diff-long
rm -rf "$logs"; mkdir -p "$logs"
cases=${QT_DIFF_CASES:-pit pic i8042 pm-timer/pc pm-timer/q35}
say "differential test, $QT_DIFF_OPS operations per device, logs in ${logs#"$TOP"/}"
printf '%s\n' $cases | xargs -P 2 -I{} sh -c \
    'log="$1/$(echo "$2" | tr / -).log"
     "$3/tests/run-qtest.sh" fork tier-diff-test -p "/x86_64/tier-diff/$2" > "$log" 2>&1
     echo "$2: exit $? ($(grep -E "^(ok|not ok)" "$log" | head -1))"' _ "$logs" {} "$TOP"
pass=$(cat "$logs"/*.log | grep -c '^ok ')
fail=$(cat "$logs"/*.log | grep -c '^not ok')
n=$(echo $cases | wc -w)
[ $((pass + fail)) = "$n" ] || fail=$((n - pass))
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
