#!/usr/bin/env bash
# The KVM parts of the tests on a machine without KVM: with KVM hidden
# (QT_NO_KVM=1, which scripts/kvm-usable honours), each must report
# itself skipped (exit 77, the reason on a "SKIP:" line) instead of
# failing or passing without testing anything.  On a machine that has
# KVM this keeps the path a KVM-less machine takes honest.
set -uo pipefail
top=${QT_TOP:?}
fail=0

why=$(QT_NO_KVM=1 "$top/scripts/kvm-usable")
rc=$?
if [ $rc = 1 ] && [ "$why" = "KVM hidden by QT_NO_KVM=1" ]; then
    echo "ok: kvm-usable says: $why"
else
    echo "FAIL: kvm-usable with QT_NO_KVM=1: exit $rc, '$why'"; fail=1
fi

# The KVM parts, as the top-level meson.build lists them.
parts=0
while read -r script arg; do
    parts=$((parts + 1))
    out=$(QT_NO_KVM=1 timeout 120 "$top/$script" ${arg:+"$arg"} 2>&1)
    rc=$?
    if [ $rc = 77 ] && grep -q "^SKIP: KVM hidden by QT_NO_KVM=1$" <<< "$out"; then
        echo "ok: $script $arg: skipped"
    else
        echo "FAIL: $script $arg with KVM hidden: exit $rc (want 77 and a SKIP line):"
        tail -n 5 <<< "$out"; fail=1
    fi
done < <(sed -n "s/^ *'[a-z0-9-]*': \['\([^']*\)', \['kvm'\].*/\1 kvm/p;s/^ *'[a-z0-9-]*-kvm': \['\([^']*\)', \[\].*/\1/p" "$top/meson.build")
[ $parts -ge 4 ] || { echo "FAIL: found $parts KVM parts in meson.build"; fail=1; }
exit $fail
