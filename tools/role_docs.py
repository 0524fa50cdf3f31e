"""Role READMEs generated from meta/argument_specs.yml, the single source of
each role's documentation. `make docs` writes them; tests/test_docs.py fails
when a README is out of date. Entry points other than main get a section each."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _fmt_default(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


# What C(...) and friends may hold: text with balanced parentheses one level
# deep, as in C(module:factory()).
_INNER = r"(?:[^()]|\([^()]*\))*"


def _text(value) -> str:
    """Spec text with Ansible's markup (C(), I(), M()) turned into Markdown."""
    text = " ".join(str(v) for v in value) if isinstance(value, list) else str(value or "")
    text = re.sub(rf"\b[CM]\(({_INNER})\)", r"`\1`", text)
    return re.sub(rf"\bI\(({_INNER})\)", r"*\1*", text)


def _options_table(options: dict, prefix: str = "") -> list[str]:
    rows = []
    for name, spec in options.items():
        kind = spec.get("type", "str")
        if spec.get("elements"):
            kind = f"{kind} of {spec['elements']}"
        extra = ""
        if spec.get("choices"):
            extra += " Choices: " + ", ".join(f"`{c}`" for c in spec["choices"]) + "."
        if spec.get("required"):
            extra += " **Required.**"
        description = (_text(spec.get("description")) + extra).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{prefix}{name}` | {kind} | {_fmt_default(spec.get('default'))} | {description} |")
        if spec.get("options"):
            rows.extend(_options_table(spec["options"], prefix=f"{prefix}{name}[].")
                        if spec.get("type") == "list" else _options_table(spec["options"], f"{prefix}{name}."))
    return rows


def render(role: str) -> str:
    role_dir = REPO / "roles" / role
    specs = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    spec = specs["main"]
    meta = yaml.safe_load((role_dir / "meta" / "main.yml").read_text())["galaxy_info"]
    platforms = ", ".join(f"{p['name']} {'/'.join(p['versions'])}" for p in meta.get("platforms", []))
    lines = [
        f"# flaskstack.deploy.{role}",
        "",
        "<!-- Generated from meta/argument_specs.yml by `make docs`; edit the spec, not this file. -->",
        "",
        f"{spec['short_description']}.",
        "",
    ]
    lines += [_text(d) + "\n" for d in spec.get("description", [])]
    lines += [
        f"Platforms: {platforms}.",
        "",
        "## Usage",
        "",
        "```yaml",
        f"- name: Apply flaskstack.deploy.{role}",
        "  hosts: all",
        "  become: true",
        "  roles:",
        f"    - role: flaskstack.deploy.{role}",
        "```",
        "",
        "## Variables",
        "",
        "| Variable | Type | Default | Description |",
        "| --- | --- | --- | --- |",
    ]
    lines += _options_table(spec.get("options", {}))
    for entry_point, other in specs.items():
        if entry_point == "main":
            continue
        lines += [
            "",
            f"## Entry point `{entry_point}`",
            "",
            f"{_text(other['short_description'])}.",
            "",
        ]
        lines += [_text(d) + "\n" for d in other.get("description", [])]
        lines += [
            "```yaml",
            f"- name: {_text(other['short_description'])}",
            "  ansible.builtin.include_role:",
            f"    name: flaskstack.deploy.{role}",
            f"    tasks_from: {entry_point}",
            "```",
            "",
            "Inputs: " + ", ".join(f"`{name}`" for name in other.get("options", {})) + ".",
        ]
    return "\n".join(lines) + "\n"


def roles() -> list[str]:
    return sorted(p.parent.parent.name for p in (REPO / "roles").glob("*/meta/argument_specs.yml"))


def main() -> int:
    for role in roles():
        (REPO / "roles" / role / "README.md").write_text(render(role))
        print(f"wrote roles/{role}/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
