#!/usr/bin/env bash
# verify.sh: check systemd/hearth.service with systemd-analyze.
#
# Usage: systemd/verify.sh PATH/TO/hearth
#
# 1. Copies the unit to a temporary directory, pointing ExecStart= at the
#    given (built) binary, since /usr/bin/hearth need not exist here.
# 2. `systemd-analyze verify` on the copy: fails if any line of its output
#    mentions the unit (lines about other units on the host are shown but
#    ignored).
# 3. `systemd-analyze security --offline=true --threshold=N`: fails if the
#    unit's exposure score is above N/10. The unit scored 1.1 (N=11) with
#    systemd 252; the default threshold of 15 catches any real loosening of
#    the sandbox. Override with SECURITY_THRESHOLD=N.
#
# Exit status: 0 ok, 1 a check failed, 2 usage error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
unit="$here/hearth.service"
threshold="${SECURITY_THRESHOLD:-15}"

if [[ $# -ne 1 ]]; then
    echo "usage: $0 PATH/TO/hearth" >&2
    exit 2
fi
if [[ ! -f "$1" || ! -x "$1" ]]; then
    echo "error: $1 is not an executable file" >&2
    exit 2
fi
binary=$(realpath "$1")
if ! command -v systemd-analyze >/dev/null; then
    echo "error: systemd-analyze not found" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copy="$tmp/hearth.service"
sed -e "s|^ExecStart=/usr/bin/hearth |ExecStart=$binary |" "$unit" >"$copy"
if ! grep -q "^ExecStart=$binary " "$copy"; then
    echo "error: could not rewrite ExecStart= in $unit" >&2
    exit 1
fi

status=0

echo "== systemd-analyze verify"
set +e
output=$(systemd-analyze verify "$copy" 2>&1)
rc=$?
set -e
[[ -n "$output" ]] && printf '%s\n' "$output"
if grep -Fq -e "$copy" -e "hearth.service" <<<"$output"; then
    echo "FAIL: systemd-analyze verify reported problems with the unit" >&2
    status=1
elif [[ $rc -ne 0 ]]; then
    echo "note: systemd-analyze verify exited $rc, but not about hearth.service"
else
    echo "ok: no problems reported for hearth.service"
fi

echo "== systemd-analyze security (threshold $threshold)"
set +e
output=$(systemd-analyze security --offline=true --threshold="$threshold" "$copy" 2>&1)
rc=$?
set -e
# Show what still counts against the unit, and the overall score.
grep -E '✗|Overall exposure' <<<"$output" || printf '%s\n' "$output"
if [[ $rc -ne 0 ]]; then
    echo "FAIL: exposure is above the threshold of $threshold (score x10), or the check failed" >&2
    status=1
else
    echo "ok: exposure within threshold"
fi

exit $status
