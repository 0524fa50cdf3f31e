"""Every role's typed front door (meta/argument_specs.yml) matches its defaults."""

import re

import pytest

from conftest import REPO, ROLES, load_yaml


def _spec_options(role):
    """Options of every entry point (main, and e.g. postgresql's backup/restore), merged."""
    specs = load_yaml(REPO / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]
    options = {}
    for entry_point, spec in specs.items():
        for name, option in (spec.get("options") or {}).items():
            if name in options:
                for key in ("type", "default", "choices", "elements", "required"):
                    assert options[name].get(key) == option.get(key), (
                        f"{role}: {key} of {name} differs between entry points ({entry_point})")
            options[name] = option
    return options


def _defaults(role):
    return load_yaml(REPO / "roles" / role / "defaults" / "main.yml") or {}


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_specs_have_the_same_keys(role):
    """Every default is specified, and every option that is not required has a default."""
    options = _spec_options(role)
    optional = {name for name, spec in options.items() if not spec.get("required")}
    assert set(_defaults(role)) == optional


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_equal_role_defaults(role):
    defaults = _defaults(role)
    for name, spec in _spec_options(role).items():
        assert "default" in spec or spec.get("required"), f"{role}: {name} has no default in its spec"
        if "default" in spec:
            assert spec["default"] == defaults[name], f"{role}: {name} differs between spec and defaults"


@pytest.mark.parametrize("role", ROLES)
def test_every_option_is_described_and_prefixed(role):
    for name, spec in _spec_options(role).items():
        assert name.startswith(f"{role}_"), f"{name} must be prefixed with the role name"
        assert spec.get("description"), f"{role}: {name} has no description"
        assert spec.get("type"), f"{role}: {name} has no type"


@pytest.mark.parametrize("role", ROLES)
def test_internal_variables_are_marked(role):
    """Names set in vars/ are internals: double underscore and role name."""
    path = REPO / "roles" / role / "vars" / "main.yml"
    if not path.exists():
        pytest.skip("role has no vars/main.yml")
    for name in load_yaml(path) or {}:
        assert re.match(rf"^__{role}_", name), f"{role}: internal variable {name} must start with __{role}_"
