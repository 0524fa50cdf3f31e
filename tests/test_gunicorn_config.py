"""The gunicorn role's `config` entry point, rendered on the controller: the file a release runs with."""

import json

import pytest

from conftest import json_play_results, run, tool

PLAY = """
- hosts: localhost
  gather_facts: true
  tasks:
    - name: Render
      ansible.builtin.include_role:
        name: flaskstack.deploy.gunicorn
        tasks_from: config
    - name: Show
      ansible.builtin.debug:
        msg: "{{ gunicorn_release_files[0].content }}"
"""


def rendered_settings(tmp_path, **inputs) -> dict:
    """gunicorn.conf.py rendered with INPUTS, executed as gunicorn executes it: its settings."""
    (tmp_path / "play.yml").write_text(PLAY)
    result = run([tool("ansible-playbook"), str(tmp_path / "play.yml"), "-e", json.dumps(inputs)],
                 env={"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    tasks = json_play_results(result.stdout)["plays"][0]["tasks"]
    source = tasks[-1]["hosts"]["localhost"]["msg"]
    settings: dict = {}
    exec(compile(source, "gunicorn.conf.py", "exec"), settings)  # noqa: S102 - our own rendered file
    return settings


@pytest.mark.parametrize(("wanted", "accesslog"), [(None, "-"), (True, "-"), (False, None)])
def test_the_access_log_goes_to_the_journal_unless_turned_off(tmp_path, wanted, accesslog):
    inputs = {} if wanted is None else {"gunicorn_access_log": wanted}
    settings = rendered_settings(tmp_path, **inputs)
    assert settings["accesslog"] == accesslog
    assert settings["errorlog"] == "-"  # errors always reach the journal
