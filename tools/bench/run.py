"""`make bench`: converge time of site.yml against a plain shell script.

Three fresh Debian 12 test hosts (same image and harness as the tests):
  1. the shell baseline on host A (also warms the shared apt cache),
  2. the shell baseline on host B, warm cache        -> yardstick,
  3. site.yml on host C, warm cache                  -> bare-host converge,
  4. site.yml on host C again                        -> re-run (changed must be 0).
Reports seconds and ratios from this one run; the machine is noisy, so only
ratios measured together mean anything. Nothing here is asserted in a test.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOSTS = ["flaskstack-bench-a", "flaskstack-bench-b", "flaskstack-bench-c"]


def sh(argv, **kwargs):
    return subprocess.run([str(a) for a in argv], cwd=REPO, check=True, text=True,
                          capture_output=True, **kwargs)


def host_up(name: str, state: Path) -> dict:
    sh([BIN / "ansible-playbook", "molecule/_harness/host-up.yml",
        "-e", f"host_name={name}", "-e", f"host_state_dir={state}"])
    return yaml.safe_load((state / "inventory.yml").read_text())["all"]["hosts"][name]


def timed(argv, **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    result = sh(argv, **kwargs)
    return time.monotonic() - start, result


def baseline(conn: dict) -> float:
    script = (REPO / "tools" / "bench" / "baseline.sh").read_text()
    seconds, _ = timed(["ssh", "-i", conn["ansible_ssh_private_key_file"], "-p", conn["ansible_port"],
                        *conn["ansible_ssh_common_args"].split(), "admin@127.0.0.1",
                        "sudo", "bash", "-s"], input=script)
    return seconds


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="flaskstack-bench-"))
    conns = {}
    try:
        for name in HOSTS:
            conns[name] = host_up(name, work / name)
        cold = baseline(conns[HOSTS[0]])
        warm = baseline(conns[HOSTS[1]])

        site_host = HOSTS[2]
        inventory = work / "site-inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {
            "hosts": {site_host: conns[site_host]},
            "children": {group: {"hosts": {site_host: None}} for group in ("web", "db", "cache")},
        }}))
        play = [BIN / "ansible-playbook", "site.yml", "-i", inventory,
                "-e", "@inventories/local/group_vars/all/main.yml"]
        converge, _ = timed(play)
        rerun, second = timed(play)
        changed = sum(int(n) for n in re.findall(r"changed=(\d+)", second.stdout))

        print(f"shell script, cold apt cache : {cold:6.1f} s")
        print(f"shell script, warm apt cache : {warm:6.1f} s  (yardstick)")
        print(f"site.yml on a bare host      : {converge:6.1f} s  ratio {converge / warm:.2f} (target <= 1.5)")
        print(f"site.yml re-run              : {rerun:6.1f} s  changed={changed} (target <= 15 s, changed=0)")
        return 0 if changed == 0 else 1
    finally:
        for name in HOSTS:
            subprocess.run([BIN / "ansible-playbook", "molecule/_harness/host-down.yml",
                            "-e", f"host_name={name}"], cwd=REPO, capture_output=True, check=False)


if __name__ == "__main__":
    sys.exit(main())
