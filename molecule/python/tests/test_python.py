"""Behaviour of a host converged with flaskstack.deploy.python.

The app user can run the venv's packages; the system Python is left alone
(PEP 668); the user is unprivileged and cannot log in.
"""

testinfra_hosts = ["all"]

USER = "shopapp"
VENV = "/srv/shop/venv"


def _as_app(host, command):
    with host.sudo():
        return host.run("runuser -u %s -- sh -c %s", USER, command)


def test_venv_runs_packages_as_app_user(host):
    program = (
        "import itsdangerous, click, getpass; "
        "s = itsdangerous.URLSafeSerializer('k'); "
        "print(getpass.getuser(), click.__version__ if hasattr(click, '__version__') else 'click', "
        "s.loads(s.dumps({'ok': 1}))['ok'])"
    )
    result = _as_app(host, f"{VENV}/bin/python -c \"{program}\"")
    assert result.rc == 0, result.stderr
    assert result.stdout.split()[0] == USER
    assert result.stdout.split()[-1] == "1"


def test_venv_has_exactly_the_pinned_versions(host):
    result = _as_app(host, f"{VENV}/bin/python -m pip freeze --all")
    assert result.rc == 0, result.stderr
    frozen = set(result.stdout.split())
    assert "click==8.1.8" in frozen
    assert "itsdangerous==2.2.0" in frozen


def test_venv_uses_the_system_interpreter(host):
    venv_version = host.check_output(f"{VENV}/bin/python -c 'import sys; print(sys.version_info[:2])'")
    system_version = host.check_output("python3 -c 'import sys; print(sys.version_info[:2])'")
    assert venv_version == system_version


def test_system_python_untouched(host):
    """PEP 668: nothing was pip-installed into the system Python, marker intact."""
    assert host.run("python3 -c 'import itsdangerous'").rc != 0
    marker = host.check_output(
        "python3 -c 'import sysconfig; print(sysconfig.get_path(\"stdlib\"))'"
    ) + "/EXTERNALLY-MANAGED"
    assert host.file(marker).exists


def test_app_user_is_unprivileged(host):
    user = host.user(USER)
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000  # a system account
    assert "sudo" not in user.groups
    assert user.home == "/srv/shop"
    home = host.file("/srv/shop")
    assert home.user == USER and home.mode == 0o750
    venv = host.file(VENV)
    assert venv.user == USER
    with host.sudo():
        assert host.run("sudo -l -U %s", USER).stdout.count("may run") == 0


def test_venv_files_not_writable_by_others(host):
    with host.sudo():
        writable = host.check_output("find %s -perm -o+w ! -type l -print -quit", VENV)
    assert writable == ""


def test_no_build_toolchain_by_default(host):
    assert not host.package("build-essential").is_installed
    assert not host.exists("gcc")
