#!/bin/sh
# deps.sh - install the Debian 12 packages starhil needs to build, test and run.
# Idempotent: installs only what is missing. Needs root (or sudo) and apt-get.
set -e
PKGS="build-essential pkg-config clang libclang-rt-14-dev libsqlite3-dev sqlite3
libcurl4-openssl-dev libhwloc-dev hwloc libssh2-1-dev libjansson-dev libcmocka-dev
gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user openssh-server openssh-client adb
python3 python3-numpy chromium openssl fortunes
slurmctld slurmd slurm-client munge"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "deps: all Debian packages present"
    exit 0
fi
echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
# The daemons among these (sshd, munged, slurmctld, slurmd) are started by the
# tests themselves with their own configs; keep apt from starting the system
# copies (Debian's images usually have this policy already).
tmp_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    tmp_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$tmp_policy" >/dev/null
    $SUDO chmod 755 "$tmp_policy"
fi
rc=0
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing || rc=$?
[ -n "$tmp_policy" ] && $SUDO rm -f "$tmp_policy"
exit $rc
