#!/usr/bin/env bash
# Make sure the test harness has a Docker engine and debootstrap.
# On a fresh Debian machine (as root) it installs Debian's docker.io and
# debootstrap and starts dockerd itself; elsewhere it says what is missing.
set -euo pipefail

need_pkgs=()
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)

if ((${#need_pkgs[@]})); then
  if [[ $(id -u) -ne 0 || ! -r /etc/debian_version ]]; then
    echo "engine: please install: ${need_pkgs[*]} (needs root on Debian)" >&2
    exit 1
  fi
  echo "engine: installing ${need_pkgs[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" ca-certificates iptables >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "engine: no Docker engine answers and we are not root to start one" >&2
  exit 1
fi

# Prefer the init system when there is one; otherwise run dockerd ourselves.
if [[ -d /run/systemd/system ]] && systemctl start docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  exit 0
fi

log=/var/log/flaskstack-dockerd.log
echo "engine: starting dockerd (log: $log)" >&2
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "engine: dockerd did not come up; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
