#!/usr/bin/env bash
# Our qtests as a QEMU developer runs them: through QEMU's own meson test
# harness in the fork's build (what `make check-qtest-x86_64` does), with
# only the environment QEMU's harness gives (none of our QT_* variables).
# Each must pass or skip within its registered timeout: a test that needs
# our environment (the vanilla twin, the handler program) says so and
# skips instead of aborting or timing out.
set -uo pipefail
b=${QT_BUILD_DIR:?}
build=$b/qemu-fork
log=$b/qemu-harness.log
env -i PATH="$PATH" HOME="${HOME:-/root}" LANG=C.UTF-8 \
    meson test -C "$build" --no-rebuild --suite tiers --print-errorlogs \
    > "$log" 2>&1
rc=$?
grep -E '^ *[0-9]+/[0-9]+ ' "$log"
python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
want = {"qtest-x86_64/tiers/" + t for t in
        ("legacy-ports-test", "exit-route-test", "exit-handler-test",
         "tier-diff-test", "tier-migration-test", "platform-events-test")}
seen, bad = set(), []
for line in open(sys.argv[1]):
    r = json.loads(line)
    seen.add(r["name"].split(" / ")[-1])    # "qemu:SUITES / NAME"
    if r["result"] not in ("OK", "SKIP"):
        bad.append("%s: %s" % (r["name"], r["result"]))
missing = want - seen
if missing:
    bad.append("not run: " + ", ".join(sorted(missing)))
if bad:
    sys.exit("FAIL: " + "; ".join(bad))
print("ok: %d tests of the tiers suite pass or skip under QEMU's harness"
      % len(seen))
PY
ok=$?
[ $rc = 0 ] && [ $ok = 0 ] || { echo "see $log"; exit 1; }
