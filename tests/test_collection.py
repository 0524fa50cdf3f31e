"""The collection as users get it: its dependencies are declared, it builds,
and once installed from the tarball its roles run by FQCN."""

import re

import pytest
import yaml

from conftest import REPO, ROLES, load_yaml, run, tail, tool

FQCN = re.compile(r"^([a-z0-9_]+)\.([a-z0-9_]+)\.([a-z0-9_]+)$")
IN_TEMPLATE = [
    re.compile(r"(?:lookup|query|q)\(\s*['\"]([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+['\"]"),
    re.compile(r"\|\s*([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+"),
    re.compile(r"\bis\s+(?:not\s+)?([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+"),
    re.compile(r"(?:select|reject|selectattr|rejectattr|map)\([^)]*?['\"]([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+['\"]"),
]
ROLE_KEYWORDS = {"roles", "include_role", "import_role", "ansible.builtin.include_role", "ansible.builtin.import_role"}


def _content_files():
    files = [REPO / "site.yml"]
    files += sorted((REPO / "playbooks").rglob("*.yml"))
    files += sorted((REPO / "roles").rglob("*.yml"))
    files += sorted(p for p in (REPO / "inventories").rglob("*.yml") if not p.is_symlink())
    return [f for f in files if "molecule" not in f.parts]


def _collections_used():
    used = {}

    def note(collection, where):
        used.setdefault(collection, set()).add(where)

    def walk(node, where):
        if isinstance(node, dict):
            is_task = "name" in node  # every task is named (ansible-lint enforces it)
            if FQCN.match(str(node.get("plugin", ""))):  # an inventory plugin configuration
                match = FQCN.match(node["plugin"])
                note(f"{match.group(1)}.{match.group(2)}", where)
            for key, value in node.items():
                match = FQCN.match(str(key)) if is_task else None
                if match:
                    note(f"{match.group(1)}.{match.group(2)}", where)
                walk(value, where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)
        elif isinstance(node, str):
            for pattern in IN_TEMPLATE:
                for found in pattern.findall(node):
                    note(found, where)
            match = FQCN.match(node.strip())
            if match and f"{match.group(1)}.{match.group(2)}" == "flaskstack.deploy":
                note("flaskstack.deploy", where)

    for path in _content_files():
        with open(path, encoding="utf-8") as handle:
            for document in yaml.safe_load_all(handle):
                walk(document, str(path.relative_to(REPO)))
    return used


def _required_collections():
    return {c["name"]: c.get("version") for c in load_yaml(REPO / "requirements.yml")["collections"]}


def test_every_collection_used_is_required():
    allowed = {"ansible.builtin", "flaskstack.deploy"} | set(_required_collections())
    used = _collections_used()
    assert "ansible.builtin" in used  # the scan sees the content
    missing = {c: sorted(w) for c, w in used.items() if c not in allowed}
    assert not missing, f"collections used but not in requirements.yml: {missing}"


def test_every_required_collection_is_used():
    unused = set(_required_collections()) - set(_collections_used())
    assert not unused, f"requirements.yml lists collections nothing uses: {unused}"


def test_galaxy_dependencies_match_requirements():
    galaxy = load_yaml(REPO / "galaxy.yml")
    assert galaxy["namespace"] == "flaskstack" and galaxy["name"] == "deploy"
    assert galaxy["dependencies"] == _required_collections()


def test_roles_referenced_by_fqcn_exist():
    pattern = re.compile(r"flaskstack\.deploy\.([a-z0-9_]+)")
    for path in _content_files():
        for name in pattern.findall(path.read_text(encoding="utf-8")):
            if any((REPO / "plugins" / kind / f"{name}.yml").exists() for kind in ("test", "filter")):
                continue
            if any((REPO / "plugins" / kind / f"{name}.py").exists() for kind in ("lookup", "modules")):
                continue
            assert name in ROLES, f"{path.relative_to(REPO)} refers to unknown role {name}"


@pytest.fixture(scope="module")
def installed_collection(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    build = run([tool("ansible-galaxy"), "collection", "build", "--output-path", out, "--force"])
    assert build.returncode == 0, tail(build.stdout + build.stderr)
    tarballs = list(out.glob("flaskstack-deploy-*.tar.gz"))
    assert len(tarballs) == 1
    target = tmp_path_factory.mktemp("collections")
    install = run([tool("ansible-galaxy"), "collection", "install", "--no-deps", "-p", target, tarballs[0]],
                  cwd=out)
    assert install.returncode == 0, tail(install.stdout + install.stderr)
    return target / "ansible_collections" / "flaskstack" / "deploy"


def test_tarball_holds_content_not_test_scaffolding(installed_collection):
    for role in ROLES:
        assert (installed_collection / "roles" / role / "meta" / "argument_specs.yml").exists()
    assert (installed_collection / "plugins" / "test" / "validators.py").exists()
    assert (installed_collection / "site.yml").exists()
    for unwanted in ("molecule", "tests", ".venv", "collections", "requirements"):
        assert not (installed_collection / unwanted).exists(), unwanted


def test_installed_collection_runs_a_role_by_fqcn(installed_collection, testhost, tmp_path):
    """From a directory that knows nothing of this checkout, the installed
    tarball's role runs on a bare host as flaskstack.deploy.python."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- name: Use the installed collection\n"
        "  hosts: all\n"
        "  become: true\n"
        "  tasks:\n"
        "    - name: Apply the python role by FQCN\n"
        "      ansible.builtin.include_role:\n"
        "        name: flaskstack.deploy.python\n"
        "      vars:\n"
        "        python_app_user: fqcnapp\n"
        "        python_venv_packages: [itsdangerous==2.2.0]\n"
    )
    collections_root = installed_collection.parent.parent.parent
    # an ansible.cfg of its own, so this checkout's settings play no part
    (tmp_path / "ansible.cfg").write_text("[defaults]\nhost_key_checking = true\n")
    result = run(
        [tool("ansible-playbook"), "-i", testhost["inventory"], playbook],
        cwd=tmp_path,
        env={"ANSIBLE_COLLECTIONS_PATH": str(collections_root), "ANSIBLE_ROLES_PATH": str(tmp_path)},
        log_name="pytest-collection-install",
    )
    assert result.returncode == 0, tail(result.stdout + result.stderr)
    assert "flaskstack.deploy.python" in result.stdout
    check = run(
        ["docker", "exec", testhost["name"], "runuser", "-u", "fqcnapp", "--",
         "/srv/fqcnapp/venv/bin/python", "-c", "import itsdangerous; print('ok')"],
    )
    assert check.stdout.strip() == "ok", check.stderr
