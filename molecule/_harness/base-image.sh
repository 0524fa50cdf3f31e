#!/usr/bin/env bash
# Build (or reuse) a test-host image on which the `base` role has already
# converged: the stock image of image.sh, then base with its defaults (pending
# security updates, hardening packages, sshd, firewall, auditd...), stopped and
# committed. Scenarios whose subject is not the baseline (site, fleet, the
# end-to-end cloud test) start from it instead of paying base's package work
# on every host of every run; they still converge base with their own
# settings, which then only rewrites configuration. The base scenario and the
# minimal-host test keep the stock image: base from nothing is their subject.
#
# The tag carries a digest of everything that decides what base leaves on the
# host: the stock image's recipe (image.sh), this script, its playbook and every file of the role
# and of the collection's plugins it runs. Any change to them builds a new image.
# Builds of one suite are serialized (flock): two scenarios starting at once
# build it once.
#
# usage: base-image.sh SUITE         prints the image reference on stdout
#        base-image.sh --tag SUITE   prints the reference it would have, builds nothing
set -euo pipefail

tag_only=false
if [ "${1:-}" = --tag ]; then tag_only=true; shift; fi
suite=${1:?usage: base-image.sh [--tag] SUITE (bookworm|trixie)}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
digest=$(
  {
    echo "$suite"
    cd "$repo"
    find molecule/_harness/image.sh molecule/_harness/base-image.sh molecule/_harness/base-image.yml \
      roles/base plugins -type f \
      ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-12
)
image="flaskstack-testhost:${suite}-base-${digest}"
if $tag_only; then echo "$image"; exit 0; fi
stock=$("$here/image.sh" "$suite")

state_root=/var/cache/flaskstack-testhosts
mkdir -p "$state_root"
exec 9>"$state_root/base-image-$suite.lock"
flock 9
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

name="flaskstack-base-image-$suite"
work=$(mktemp -d /var/tmp/flaskstack-base-image.XXXXXX)
log="$repo/.logs/base-image-$suite.log"
mkdir -p "$repo/.logs"
down() {
  (cd "$repo" && ANSIBLE_CONFIG="$repo/ansible.cfg" ansible-playbook molecule/_harness/host-down.yml \
     -e "host_name=$name" >>"$log" 2>&1) || true
  rm -rf "$work"
}
trap down EXIT

echo "building $image: base converged on $stock (log: .logs/base-image-$suite.log)" >&2
: >"$log"
# apt cache slot 30: above the scenarios' (0-19) and the bare hosts' (20-21)
(
  cd "$repo"
  export ANSIBLE_CONFIG="$repo/ansible.cfg" ANSIBLE_CACHE_PLUGIN_CONNECTION="$work/facts"
  ansible-playbook molecule/_harness/host-up.yml -e "host_name=$name" -e "host_state_dir=$work" \
    -e "host_suite=$suite" -e host_apt_slot=30
  ansible-playbook -i "$work/inventory.yml" molecule/_harness/base-image.yml
) >>"$log" 2>&1 || { tail -n 40 "$log" >&2; exit 1; }

docker stop "$name" >/dev/null
docker commit --message "flaskstack base converged on $stock" "$name" "$image" >/dev/null
echo "$image"
