#!/usr/bin/env bash
# Install the Debian packages given as arguments if any is missing. As root this uses apt-get;
# otherwise it says exactly what to run.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]}" >&2
  echo "run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# On a freshly booted machine unattended-upgrades often holds the package manager's locks; wait for them
# (up to APT_LOCK_TIMEOUT_S) instead of failing at once. DPkg::Lock::Timeout makes apt wait for the dpkg
# lock itself; `apt-get update`'s lock on the package lists is not covered by it on every apt, so an update
# refused for a lock is tried again until the same deadline.
timeout_s=${APT_LOCK_TIMEOUT_S:-600}
lock_wait=(-o "DPkg::Lock::Timeout=$timeout_s")
deadline=$((SECONDS + timeout_s))
until errors=$(apt-get "${lock_wait[@]}" update -qq 2>&1 >/dev/null); do
  if [[ "$errors" != *"lock"* ]] || ((SECONDS >= deadline)); then
    echo "$errors" >&2
    exit 1
  fi
  echo "waiting for another installer to release the package lists lock" >&2
  sleep 5
done
apt-get "${lock_wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
