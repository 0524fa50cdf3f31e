"""The test hosts themselves: they must look and behave like fresh cloud VMs,
or every scenario built on them proves less than it claims."""

import shutil
import subprocess

import pytest

from conftest import REPO, docker_exec

SUITES = ["bookworm", "trixie"]


def _image(suite: str, script: str = "image.sh", root=REPO, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(root / "molecule" / "_harness" / script), *options, suite],
                          capture_output=True, text=True, check=False, timeout=900)


@pytest.mark.parametrize("suite", SUITES)
def test_images_are_cached(suite):
    """`make test` built the images before pytest started; asking again reuses them."""
    result = _image(suite)
    assert result.returncode == 0, result.stderr
    assert "building" not in result.stderr
    assert result.stdout.strip().startswith(f"flaskstack-testhost:{suite}-")


@pytest.mark.parametrize("suite", SUITES)
def test_base_images_are_cached(suite):
    """The images with base converged (base-image.sh) were built by `make images` too."""
    result = _image(suite, "base-image.sh")
    assert result.returncode == 0, result.stderr
    assert "building" not in result.stderr
    assert result.stdout.strip() == _image(suite, "base-image.sh", REPO, "--tag").stdout.strip()
    assert result.stdout.strip().startswith(f"flaskstack-testhost:{suite}-base-")


def test_the_base_image_is_rebuilt_when_what_base_runs_changes(tmp_path):
    """Its tag is a digest of the stock recipe, the build, the role and the plugins: a change to any of
    them names another image (which scenarios then build), a change elsewhere does not."""
    for part in ("molecule/_harness", "roles/base", "plugins", "roles/nginx/defaults"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))

    def tag():
        result = _image("bookworm", "base-image.sh", tmp_path, "--tag")
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    first = tag()
    assert first == _image("bookworm", "base-image.sh", REPO, "--tag").stdout.strip()
    (tmp_path / "roles/nginx/defaults/main.yml").write_text("# another role's input\n", encoding="utf-8")
    assert tag() == first
    seen = {first}
    for changed in ("roles/base/defaults/main.yml", "plugins/modules/host_state.py",
                    "molecule/_harness/image.sh", "molecule/_harness/base-image.yml"):
        with open(tmp_path / changed, "a", encoding="utf-8") as handle:
            handle.write("\n# changed\n")
        assert tag() not in seen, f"a change to {changed} kept the image"
        seen.add(tag())


@pytest.mark.parametrize("suite", SUITES)
def test_the_base_image_is_base_converged_yet_no_particular_host(suite):
    """What base installs is there; what makes one host itself is not (each host makes its own at boot)."""
    image = _image(suite, "base-image.sh").stdout.strip()
    probe = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/sh", image, "-c",
         "for p in ufw fail2ban unattended-upgrades sysstat debsums; do dpkg -s $p >/dev/null 2>&1 || echo missing:$p; done;"
         "ls /etc/ssh/ssh_host_* 2>/dev/null; test -s /etc/machine-id && echo machine-id;"
         "test -e /home/admin/.ssh/authorized_keys && echo authorized-keys; true"],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == [], probe.stdout


@pytest.mark.parametrize("suite", SUITES)
def test_image_is_a_stock_cloud_image(suite):
    image = _image(suite).stdout.strip()
    probe = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/sh", image, "-c",
         "for p in systemd python3 sudo openssh-server ca-certificates; do "
         "  dpkg -s $p >/dev/null 2>&1 || echo missing:$p; done;"
         "for p in ufw fail2ban unattended-upgrades python3-venv nginx postgresql redis-server cron curl; do "
         "  dpkg -s $p >/dev/null 2>&1 && echo extra:$p; done;"
         "id -nG admin; getent shadow admin | cut -d: -f2; cat /etc/sudoers.d/90-cloud-init-users"],
        capture_output=True, text=True, check=False, timeout=120,
    )
    lines = probe.stdout.splitlines()
    assert not [line for line in lines if line.startswith(("missing:", "extra:"))], lines
    assert "sudo" in lines[0].split()
    assert lines[1] == "!"  # no password: key-only login
    assert "admin ALL=(ALL) NOPASSWD:ALL" in lines[2]


def test_host_boots_systemd_cleanly(testhost):
    state = docker_exec(testhost["name"], "systemctl is-system-running; systemctl --failed --plain --no-legend")
    assert state.stdout.split("\n")[0] in ("running", "degraded")
    assert state.stdout.strip().splitlines()[1:] == [], state.stdout


def test_units_with_private_users_start(testhost):
    """Debian's redis-server.service uses PrivateUsers=yes; the harness must allow it."""
    result = docker_exec(testhost["name"], "systemd-run --wait --quiet -p PrivateUsers=yes -p DynamicUser=yes true")
    assert result.returncode == 0, result.stderr


def test_host_is_reached_over_ssh_as_unprivileged_admin(testhost):
    from conftest import load_yaml

    conn = load_yaml(testhost["inventory"])["all"]["hosts"][testhost["name"]]
    assert conn["ansible_user"] == "admin" and conn["ansible_host"] == "127.0.0.1"
    result = subprocess.run(
        ["ssh", "-i", conn["ansible_ssh_private_key_file"], "-p", str(conn["ansible_port"]),
         *conn["ansible_ssh_common_args"].split(), "-o", "BatchMode=yes", "admin@127.0.0.1",
         "id -un; sudo -n id -un"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.stdout.split() == ["admin", "root"], result.stderr
