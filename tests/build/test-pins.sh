#!/usr/bin/env bash
# Bad state stops with a clear message that names what failed, and changes
# nothing: wrong hash, missing file, a version the archive does not have.
set -uo pipefail
top=${QT_TOP:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export QT_BUILD_DIR=$tmp/build QT_DOWNLOAD_DIR=$tmp/dl
fail=0

expect_error() {        # expect_error "description" "message regex" cmd...
    local what=$1 re=$2 out rc
    shift 2
    out=$("$@" 2>&1); rc=$?
    if [ $rc -ne 0 ] && grep -Eq "$re" <<< "$out"; then
        echo "ok: $what"
    else
        echo "FAIL: $what (exit $rc), output:"; echo "$out" | tail -n 5
        fail=1
    fi
}

echo hello > "$tmp/file.bin"
expect_error "wrong sha256 is refused and named" \
    "sha256 mismatch for file\.bin: expected 0{64}, got 5891b5b5" \
    bash -c ". '$top/scripts/lib.sh'; check_sha256 '$tmp/file.bin' $(printf '0%.0s' $(seq 64))"
expect_error "missing download is named" "missing download: .*/nothere\.deb" \
    bash -c ". '$top/scripts/lib.sh'; check_sha256 '$tmp/nothere.deb' 00"
expect_error "a version the archive lacks is named" \
    "apt-get download busybox-static=9:9\.9-bogus failed" \
    bash -c ". '$top/scripts/lib.sh'; fetch_deb busybox-static 9:9.9-bogus 00 '$tmp/dl'"

# A pinned hash that does not match what the archive serves stops
# fetch-upstream.sh before anything is unpacked.
sed 's/^a426c892e5369058c3423816c8625bc8010bb5a58ece57261f62b64ee4d765ad /1111111111111111111111111111111111111111111111111111111111111111 /' \
    "$top/scripts/pins.env" > "$tmp/pins.env"
grep -q '^1111' "$tmp/pins.env" || { echo "FAIL: test could not corrupt the pin"; fail=1; }
expect_error "fetch-upstream.sh stops on a hash mismatch" \
    "sha256 mismatch for qemu_10\.0\.13\+ds-0\+deb13u1\.dsc" \
    env QT_PINS="$tmp/pins.env" "$top/scripts/fetch-upstream.sh"
[ ! -e "$tmp/build/src-vanilla" ] || { echo "FAIL: unpacked despite the mismatch"; fail=1; }

expect_error "run-guest.sh names a bad ACCEL" "ACCEL=hvf is not supported" \
    env ACCEL=hvf "$top/scripts/run-guest.sh"
expect_error "build-qemu.sh names a bad build" "unknown build 'foo'" \
    "$top/scripts/build-qemu.sh" foo
exit $fail
