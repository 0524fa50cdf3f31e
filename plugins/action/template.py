# Copyright: flaskstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible.builtin.template that makes no call to the host for a file already in place.

A role reads the files it writes once (flaskstack.deploy.host_state) and passes
the result as ``known``. When the template, rendered here on the controller,
has exactly the checksum of the file on the host and the mode and owner asked
for, the task reports ``ok`` without contacting the host; otherwise (a
difference, a file the read did not cover, an option the comparison does not
understand, a link that would be replaced) it is ansible.builtin.template,
unchanged. A file changed by hand is therefore still put back.
"""

from __future__ import annotations

from ansible.plugins.action.template import ActionModule as TemplateAction

from ansible_collections.flaskstack.deploy.plugins.plugin_utils.known_files import KnownFilesAction


class ActionModule(KnownFilesAction, TemplateAction):
    """flaskstack.deploy.template: ansible.builtin.template plus ``known``."""

    def _known_data(self, args: dict, task_vars: dict):
        """The template rendered on the controller the way the template lookup does; None on any
        error (the builtin action then renders it itself and reports the error its own way)."""
        src = args.get("src")
        if not isinstance(src, str):
            return None
        try:
            lookup = self._shared_loader_obj.lookup_loader.get(
                "ansible.builtin.template", loader=self._loader, templar=self._templar)
            rendered = lookup.run([src], variables=task_vars)[0]
        except Exception:  # noqa: BLE001 - any failure means: let the builtin action decide
            return None
        return rendered if isinstance(rendered, str) else None
