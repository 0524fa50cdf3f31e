#!/usr/bin/env bash
# The yardstick for `make bench`: what a hand-written shell script does to get
# the packages and venv that site.yml (base + python, inventories/local
# settings) installs. Same packages, one apt transaction, no checks.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends \
  ca-certificates tzdata unattended-upgrades apt-listchanges systemd-timesyncd \
  ufw fail2ban python3-systemd python3 python3-venv python3-packaging acl >/dev/null
useradd --system --create-home --home-dir /srv/flaskapp --shell /usr/sbin/nologin flaskapp
runuser -u flaskapp -- python3 -m venv /srv/flaskapp/venv
runuser -u flaskapp -- /srv/flaskapp/venv/bin/pip install -q gunicorn==23.0.0
ufw limit 22/tcp >/dev/null
ufw --force enable >/dev/null
