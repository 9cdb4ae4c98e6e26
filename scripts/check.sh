#!/usr/bin/env bash
# Run every test of build/tiers and end with the plain summary line CI
# reads: "N passed, N failed" (skipped tests are counted separately).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

# meson prints "n/N name OK time" as each test ends (and, on a terminal,
# what is running); the full output stays in build/check.log.
start=$SECONDS
# shellcheck disable=SC2086  # QT_TEST_ARGS: meson test options, one word each
meson test -C "$BUILD/tiers" --print-errorlogs --no-rebuild ${QT_TEST_ARGS:-} 2>&1 |
    tee "$BUILD/check.log"
say "test run took $(fmt_secs $((SECONDS - start))) (log: ${BUILD#"$TOP"/}/check.log)"
python3 - "$BUILD/tiers/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
names = []
with open(sys.argv[1]) as f:
    for line in f:
        r = json.loads(line)
        res = r.get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif res == "SKIP":
            skipped += 1
        else:
            failed += 1
            names.append("%s (%s)" % (r.get("name"), res))
if names:
    print("failed: " + ", ".join(names))
if passed + failed == 0:
    failed = 1
    print("no test ran")
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
PY
