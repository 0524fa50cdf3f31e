"""Unit tests for the collection's plugins: Jinja tests and filters, the lookup, the module."""

import base64
import json
import os
import struct
import sys

import pytest

from conftest import REPO, json_play_results, run, tool

sys.path.insert(0, str(REPO / "plugins" / "test"))
from host import is_container  # noqa: E402
from validators import is_ssh_public_key, is_timezone  # noqa: E402


def _blob(key_type: str, payload: bytes = b"\x00" * 32) -> str:
    raw = struct.pack(">I", len(key_type)) + key_type.encode() + struct.pack(">I", len(payload)) + payload
    return base64.b64encode(raw).decode()


def test_known_time_zones():
    assert is_timezone("Etc/UTC")
    assert is_timezone("Europe/Berlin")
    assert is_timezone("America/Argentina/Buenos_Aires")


def test_unknown_time_zones():
    assert not is_timezone("Mars/Olympus_Mons")
    assert not is_timezone("Europe/Berlin ")
    assert not is_timezone("../../etc/passwd")
    assert not is_timezone("")
    assert not is_timezone(42)


def test_well_formed_keys():
    assert is_ssh_public_key(f"ssh-ed25519 {_blob('ssh-ed25519')} ops@example.com")
    assert is_ssh_public_key(f"ssh-ed25519 {_blob('ssh-ed25519')}")
    assert is_ssh_public_key(f"ecdsa-sha2-nistp256 {_blob('ecdsa-sha2-nistp256')} a comment with spaces")


def test_malformed_keys():
    ed = _blob("ssh-ed25519")
    assert not is_ssh_public_key("ssh-ed25519")  # no blob
    assert not is_ssh_public_key("ssh-ed25519 not*base64")
    assert not is_ssh_public_key(f"ssh-rsa {ed}")  # blob of another type
    assert not is_ssh_public_key(f"ssh-dss {_blob('ssh-dss')}")  # obsolete type
    assert not is_ssh_public_key(f"ssh-ed25519 {ed}\nssh-ed25519 {ed}")  # two keys
    assert not is_ssh_public_key("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert not is_ssh_public_key(None)


def test_container_detection():
    assert is_container({"virtualization_role": "guest", "virtualization_type": "docker"})
    assert is_container({"virtualization_role": "guest", "virtualization_type": "lxc"})
    assert not is_container({"virtualization_role": "guest", "virtualization_type": "kvm"})
    assert not is_container({"virtualization_role": "host", "virtualization_type": "docker"})
    assert not is_container({})
    assert not is_container(None)


sys.path.insert(0, str(REPO / "plugins" / "filter"))
sys.path.insert(0, str(REPO / "plugins" / "test"))
from health import describe_answer  # noqa: E402
from inputs import with_defaults  # noqa: E402
from readiness import is_ready_answer  # noqa: E402
from requirements import has_hashes, unpinned_requirements  # noqa: E402

PIP_FREEZE = "alembic==1.20.1\nFlask==3.1.3\nFlask-SQLAlchemy==3.1.1\ntyping_extensions==4.16.0\n"


def test_with_defaults_fills_in_what_an_item_leaves_out_and_keeps_what_it_sets():
    defaults = {"state": "present", "sudo": True, "ssh_keys": []}
    items = [{"name": "alice"}, {"name": "bob", "sudo": False, "state": "absent"}]
    assert with_defaults(items, defaults) == [
        {"name": "alice", "state": "present", "sudo": True, "ssh_keys": []},
        {"name": "bob", "state": "absent", "sudo": False, "ssh_keys": []},
    ]
    assert items[0] == {"name": "alice"}  # the input is not changed
    assert with_defaults([], defaults) == [] and with_defaults(None, defaults) == []


def test_with_defaults_names_an_item_that_is_not_a_dict():
    from ansible.errors import AnsibleFilterError  # noqa: PLC0415

    with pytest.raises(AnsibleFilterError, match="item 1 is a str"):
        with_defaults([{"port": 80}, "443"], {"proto": "tcp"})


def test_pip_freeze_output_is_pinned():
    assert unpinned_requirements(PIP_FREEZE) == []
    assert not has_hashes(PIP_FREEZE)


def test_hashed_lock_with_markers_extras_and_comments_is_pinned():
    lock = (
        "# pip-compile output\n"
        "async-timeout==5.0.1 ; python_full_version < '3.11.3' \\\n"
        "    --hash=sha256:aa \\\n"
        "    --hash=sha256:bb\n"
        "    # via redis\n"
        "psycopg[binary]==3.3.9 \\\n    --hash=sha256:cc\n"
        "legacy===1.0\n"
        "wheel-from-url @ https://files.example.invalid/w-1.0-py3-none-any.whl\n"
        "--index-url https://pypi.example.invalid/simple\n"
    )
    assert unpinned_requirements(lock) == []
    assert has_hashes(lock)


def test_ranges_bare_names_includes_and_editables_are_reported_with_line_numbers():
    text = "flask>=3\n# comment\nredis\nclick~=8.0  # compatible\n-r base.txt\n-e .\nok==1\nx<2,>=1\n"
    assert unpinned_requirements(text) == [
        "line 1: flask>=3", "line 3: redis", "line 4: click~=8.0", "line 5: -r base.txt", "line 6: -e .", "line 8: x<2,>=1",
    ]


def test_a_continued_line_is_reported_at_its_first_line():
    assert unpinned_requirements("a==1\nb>=2 \\\n  --hash=sha256:dd\n") == ["line 2: b>=2"]


GATE = {"status_codes": [200], "release_key": "release", "release": "20261126T000000Z-abc-def"}


def test_ready_answer_needs_an_accepted_status_and_the_release():
    assert is_ready_answer({"status": 200, "json": {"release": GATE["release"]}}, GATE)
    assert not is_ready_answer({"status": 200, "json": {"release": "20261125T000000Z-old-def"}}, GATE)
    assert not is_ready_answer({"status": 503, "json": {"release": GATE["release"]}}, GATE)
    assert not is_ready_answer({"status": -1, "msg": "connection refused"}, GATE)
    assert not is_ready_answer({"status": 200, "content": "<html>"}, GATE)


def test_ready_answer_without_release_key_takes_any_accepted_status():
    gate = {"status_codes": [200, 302], "release_key": "", "release": "r"}
    assert is_ready_answer({"status": 302, "location": "http://localhost/login"}, gate)
    assert is_ready_answer({"status": "200"}, gate)
    assert not is_ready_answer({"status": 301}, gate)


def test_describe_answer():
    assert describe_answer({"status": 503, "json": {"status": "unready"}}) == '503 {"status": "unready"}'
    assert describe_answer({"status": 302, "location": "http://localhost/login", "content": ""}) == (
        "302 -> http://localhost/login")
    assert describe_answer({"status": -1, "msg": "Status code was -1 and not [200]:\n refused"}).startswith(
        "no answer: Status code was -1")
    assert describe_answer(None) == "none"


sys.path.insert(0, str(REPO / "plugins" / "lookup"))
from source_digest import digest, source_files  # noqa: E402

SKIP = {"skip_dirs": [".git", "__pycache__"], "skip_suffixes": [".pyc"]}


def _tree(root, extra=None):
    files = {"app/__init__.py": "x = 1\n", "requirements.txt": "flask==3.1.3\n", **(extra or {})}
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_same_tree_anywhere_gives_the_same_digest(tmp_path):
    assert digest(str(_tree(tmp_path / "a")), **SKIP) == digest(str(_tree(tmp_path / "elsewhere" / "b")), **SKIP)


def test_caches_and_version_control_are_left_out(tmp_path):
    plain = digest(str(_tree(tmp_path / "a")), **SKIP)
    noisy = _tree(tmp_path / "b", {".git/HEAD": "ref\n", "app/__pycache__/m.cpython-311.pyc": "b", "app/old.pyc": "b"})
    assert digest(str(noisy), **SKIP) == plain
    assert source_files(str(noisy), **SKIP) == ["app/__init__.py", "requirements.txt"]
    assert digest(str(noisy)) != plain  # without skips, everything counts


def test_content_name_and_executable_bit_change_the_digest(tmp_path):
    base = digest(str(_tree(tmp_path / "a")), **SKIP)
    assert digest(str(_tree(tmp_path / "b", {"app/__init__.py": "x = 2\n"})), **SKIP) != base
    assert digest(str(_tree(tmp_path / "c", {"app/extra.py": ""})), **SKIP) != base
    executable = _tree(tmp_path / "d")
    (executable / "requirements.txt").chmod(0o755)
    assert digest(str(executable), **SKIP) != base


def test_an_archive_is_hashed_as_bytes(tmp_path):
    archive = tmp_path / "app.tar.gz"
    archive.write_bytes(b"\x1f\x8b not really")
    assert digest(str(archive)) == "%s" % __import__("hashlib").sha256(b"\x1f\x8b not really").hexdigest()


def test_firewall_rules_for_digitalocean_one_per_port_with_tag_or_address_sources():
    from plugins.filter.cloud import digitalocean_firewall_rules  # noqa: PLC0415
    rules = [{"proto": "tcp", "ports": [22], "cidr_ip": "198.51.100.7/32"},
             {"proto": "tcp", "ports": [80, 443], "cidr_ip": "0.0.0.0/0"},
             {"proto": "tcp", "ports": [5432], "group_name": "shop-web"}]
    assert digitalocean_firewall_rules(rules) == [
        {"protocol": "tcp", "ports": "22", "sources": {"addresses": ["198.51.100.7/32"]}},
        {"protocol": "tcp", "ports": "80", "sources": {"addresses": ["0.0.0.0/0", "::/0"]}},
        {"protocol": "tcp", "ports": "443", "sources": {"addresses": ["0.0.0.0/0", "::/0"]}},
        {"protocol": "tcp", "ports": "5432", "sources": {"tags": ["shop-web"]}},
    ]


SYSTEMCTL_SHOW = (
    "Id=dbus.service\nActiveState=active\nUnitFileState=static\n\n"
    "Id=fail2ban.service\nActiveState=active\nUnitFileState=enabled\n\n"
    "Id=sysstat.service\nActiveState=activating\nUnitFileState=enabled\n\n"
    "Id=ssh.service\nActiveState=active\nUnitFileState=disabled\n\n"
    "Id=nosuch.service\nActiveState=inactive\nUnitFileState=\n"
)


def test_unit_states_name_only_what_holds_for_each_unit():
    from plugins.modules.host_state import unit_states  # noqa: PLC0415
    assert unit_states(SYSTEMCTL_SHOW) == {
        "dbus.service": ["active"],
        "fail2ban.service": ["active", "enabled"],
        "sysstat.service": ["enabled"],
        "ssh.service": ["active"],
        "nosuch.service": [],
    }


def test_unit_states_of_no_read_is_empty_so_every_guarded_task_acts():
    from plugins.modules.host_state import unit_states  # noqa: PLC0415
    assert unit_states("") == {}
    assert unit_states(None) == {}


def test_only_packages_dpkg_calls_installed_count_as_installed():
    from plugins.modules.host_state import installed_packages  # noqa: PLC0415
    listed = "nginx\tii \nfail2ban\trc \nredis-server\tiU \n"
    assert installed_packages(listed) == {"nginx"}
    assert installed_packages("") == set()


def _known(path: str, data: bytes, **state) -> dict:
    return {path: {"exists": True, "isreg": True, "islnk": False, "mode": "0644", "owner": "root",
                   "group": "root", "checksum": __import__("hashlib").sha1(data).hexdigest(), **state}}


def test_a_file_already_in_place_needs_no_call():
    from plugins.plugin_utils.known_files import in_place  # noqa: PLC0415
    args = {"src": "jail.local.j2", "dest": "/etc/x", "owner": "root", "group": "root", "mode": "0644",
            "validate": "true %s", "known": {}}
    assert in_place(args, _known("/etc/x", b"a\n"), "a\n")
    assert in_place({**args, "mode": 0o644}, _known("/etc/x", b"a\n"), b"a\n")  # YAML's int form
    assert in_place({"dest": "/etc/x", "content": "a\n"}, _known("/etc/x", b"a\n", mode="0600", owner="x"), "a\n")


def test_any_difference_or_doubt_leaves_it_to_the_builtin_action():
    from plugins.plugin_utils.known_files import in_place  # noqa: PLC0415
    args = {"src": "t.j2", "dest": "/etc/x", "owner": "root", "group": "root", "mode": "0644"}
    known = _known("/etc/x", b"a\n")
    assert not in_place(args, known, "b\n")  # content changed by hand
    assert not in_place(args, _known("/etc/x", b"a\n", mode="0600"), "a\n")  # mode changed
    assert not in_place(args, _known("/etc/x", b"a\n", owner="nobody"), "a\n")
    assert not in_place(args, _known("/etc/x", b"a\n", group="adm"), "a\n")
    assert not in_place(args, {"/etc/x": {"exists": False}}, "a\n")  # not there yet
    assert not in_place(args, _known("/etc/y", b"a\n"), "a\n")  # the read did not cover it
    assert not in_place(args, _known("/etc/x", b"a\n", islnk=True), "a\n")  # the link would be replaced
    assert in_place({**args, "follow": True}, _known("/etc/x", b"a\n", islnk=True), "a\n")
    assert not in_place(args, _known("/etc/x", b"a\n", isreg=False), "a\n")
    assert not in_place({**args, "mode": "u=rw,g=r,o=r"}, known, "a\n")  # symbolic: not compared
    assert not in_place({**args, "attributes": "+i"}, known, "a\n")  # an option it does not understand
    assert not in_place(args, known, None)  # could not render
    assert not in_place(args, None, "a\n")  # no read (a --tags run that skipped it)


def test_host_state_reads_content_mode_owner_and_links(tmp_path):
    from plugins.modules.host_state import file_state  # noqa: PLC0415
    target = tmp_path / "f"
    target.write_bytes(b"a\n")
    target.chmod(0o640)
    (tmp_path / "link").symlink_to(target)
    state = file_state(str(target))
    assert state["exists"] and state["isreg"] and not state["islnk"]
    assert state["mode"] == "0640"
    assert state["checksum"] == __import__("hashlib").sha1(b"a\n").hexdigest()
    assert file_state(str(tmp_path / "link"))["islnk"]
    assert file_state(str(tmp_path / "link"))["checksum"] == state["checksum"]
    assert file_state(str(tmp_path / "missing")) == {"exists": False}
    assert not file_state(str(tmp_path))["isreg"]


KNOWN_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Read
      flaskstack.deploy.host_state:
        files: ["{{ out }}/rendered", "{{ out }}/copied"]
        packages: [dpkg, flaskstack-no-such-package]
      register: files_read
    - name: Template
      flaskstack.deploy.template:
        src: t.j2
        dest: "{{ out }}/rendered"
        mode: "0640"
        known: "{{ files_read.files }}"
    - name: Copy
      flaskstack.deploy.copy:
        content: "{{ word }}\\n"
        dest: "{{ out }}/copied"
        mode: "0644"
        known: "{{ files_read.files }}"
"""


def _known_play(tmp_path) -> list:
    """Run KNOWN_PLAY on the controller; the template and copy tasks' results."""
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "t.j2").write_text("{{ ansible_managed | comment }}\nword={{ word }}\n")
    (tmp_path / "play.yml").write_text(KNOWN_PLAY)
    result = run([tool("ansible-playbook"), str(tmp_path / "play.yml"), "-e", json.dumps({"out": str(tmp_path), "word": "one"})],
                 env={"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    tasks = json_play_results(result.stdout)["plays"][0]["tasks"]
    return [t["hosts"]["localhost"] for t in tasks]


def test_template_and_copy_make_no_call_for_a_file_in_place_and_put_back_a_changed_one(tmp_path):
    read, *first = _known_play(tmp_path)
    assert read["missing_packages"] == ["flaskstack-no-such-package"], read
    assert read["files"][f"{tmp_path}/rendered"] == {"exists": False}
    assert all(r["changed"] for r in first), first
    again = _known_play(tmp_path)[1:]
    assert [r.get("msg") for r in again] == ["already in place (per the role's read of its files)"] * 2, again
    assert not any(r["changed"] for r in again)
    (tmp_path / "rendered").write_text("changed by hand\n")
    (tmp_path / "copied").chmod(0o600)
    repaired = _known_play(tmp_path)[1:]
    assert all(r["changed"] for r in repaired), repaired
    assert (tmp_path / "rendered").read_text().endswith("word=one\n")
    assert (tmp_path / "copied").stat().st_mode & 0o777 == 0o644


def _systemd_exposure(tmp_path, levels: dict, limit: float):
    """Run the systemd_exposure module on the controller with a stand-in systemd-analyze that
    prints LEVELS the way the real one does."""
    fake = tmp_path / "bin" / "systemd-analyze"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n" + "".join(
        f"echo '→ Overall exposure level for {unit}: {level} OK 🙂'\n" for unit, level in levels.items()))
    fake.chmod(0o755)
    result = run([tool("ansible"), "localhost", "-m", "flaskstack.deploy.systemd_exposure",
                  "-a", json.dumps({"units": list(levels), "max_exposure": limit})],
                 env={"PATH": f"{fake.parent}:{os.environ['PATH']}", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                      "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    return json_play_results(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_systemd_exposure_reports_each_unit_and_fails_above_the_limit(tmp_path):
    within = _systemd_exposure(tmp_path / "a", {"nginx.service": 2.6, "postgresql@15-main.service": 1.3}, 5.0)
    assert not within.get("failed") and not within["changed"]
    assert within["exposure"] == {"nginx.service": 2.6, "postgresql@15-main.service": 1.3}
    above = _systemd_exposure(tmp_path / "b", {"nginx.service": 9.6, "redis-server.service": 1.1}, 5.0)
    assert above["failed"]
    assert "nginx.service 9.6" in above["msg"] and "redis-server.service" not in above["msg"]


def test_vpcs_overlapping_names_every_vpc_a_range_would_overlap():
    from plugins.filter.cloud import vpcs_overlapping  # noqa: PLC0415

    account = [{"name": "flaskstack", "ip_range": "10.30.0.0/20", "region": "fra1"},
               {"name": "default-ams3", "ip_range": "10.110.0.0/20", "region": "ams3"},
               {"name": "lab", "ip_range": "10.30.16.0/24", "region": "nyc3"}]
    assert vpcs_overlapping(account, "10.30.8.0/21") == ["flaskstack (10.30.0.0/20, fra1)"]
    assert vpcs_overlapping(account, "10.30.0.0/16") == ["flaskstack (10.30.0.0/20, fra1)", "lab (10.30.16.0/24, nyc3)"]
    assert vpcs_overlapping(account, "10.30.16.0/20") == ["lab (10.30.16.0/24, nyc3)"]
    assert vpcs_overlapping(account, "10.31.0.0/20") == []
    assert vpcs_overlapping([], "10.30.0.0/20") == []
