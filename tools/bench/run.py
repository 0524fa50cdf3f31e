"""`make bench`: how fast site.yml builds, re-runs and deploys, and how fast the
result serves, beside a plain shell script on fresh hosts of the test image
(issue 13, "What `make bench` must do").

One invocation, fresh Debian 12 test hosts (same image and harness as the tests):
  script-1  tools/bench/baseline.sh, first host (fills the bench's apt cache)
  script-2  tools/bench/baseline.sh, warm apt cache          -> the yardstick
  site      site.yml cold, re-run (changed=0), re-run with mitogen (mitogen_free for the host-layer play, mitogen_linear after)
            (opt-in, changed=0), a code-only deploy and a lock-change deploy
            of playbooks/deploy.yml, then the serving figures inside the host:
            wrk (Debian's, loopback only) against nginx + TLS and against a
            bare gunicorn of the live release with the same workers.
Prints one table (figure, ratio, issue 13's target, met or not) and writes it
to .logs/bench/bench.json and .logs/bench/bench.png; each step's full output
goes to .logs/bench/<step>.log. Only ratios from one run mean anything on a
noisy machine; nothing here is asserted in a test. Exits 1 when a step fails
or a re-run reports changes, not when a target is missed.

  tools/bench/run.py                      the whole bench (make bench)
  tools/bench/run.py --serving-on NAME    serving figures only, on a running
                                          site host (e.g. flaskstack-demo)
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import jinja2
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOGS = REPO / ".logs" / "bench"
SUITE = "bookworm"
# The bench's own apt cache (tasks/testhost.yml: one per suite and slot). Its
# hosts run apt one after the other, so they share it; no molecule scenario uses
# a slot this high, so a scenario running meanwhile never holds its lock.
APT_SLOT = 7
HOSTS = {"script-1": "flaskstack-bench-script-1", "script-2": "flaskstack-bench-script-2",
         "site": "flaskstack-bench-site"}
# Issue 13: the most used public roles composed into the same stack re-ran in 18.2 s.
POPULAR_RERUN_S = 18.2
TARGETS = {"cold": 1.3, "rerun": 0.5, "deploy_s": 15.0, "tls": 0.8}
# Bounded load on loopback, as in issue 13: two threads, 16 connections.
WRK = ["wrk", "-t2", "-c16"]
WRK_WARMUP_S, WRK_SECONDS = 2, 10
BARE_UNIT = "flaskstack-bench-gunicorn"


def log_path(step: str) -> Path:
    return LOGS / f"{step}.log"


def other_load() -> list[str]:
    """What else shares the machine: a molecule run (`molecule test`, or one of
    its stages run alone) and test-host containers other than ours and the demo."""
    stages = "test|create|prepare|converge|idempotence|side-effect|verify|destroy"
    found = ["molecule"] if subprocess.run(["pgrep", "-f", f"molecule ({stages})( |$)"], capture_output=True,
                                           check=False).returncode == 0 else []
    names = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True,
                           check=False).stdout.split()
    return found + sorted(n for n in names if not n.startswith("flaskstack-bench-") and n != "flaskstack-demo")


class Bench:
    """Runs the steps, logs each one and keeps what they measured."""

    def __init__(self, work: Path):
        self.work = work
        self.steps: dict[str, dict] = {}
        self.load_seen: dict[str, list[str]] = {}
        self.env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
                        # Facts cached by this run only: a host of the same name from
                        # an earlier bench must not lend its facts to a cold run.
                        ANSIBLE_CACHE_PLUGIN_CONNECTION=str(work / "facts"),
                        # Per-task times in each step's log, the 30 slowest at its end.
                        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
                        PROFILE_TASKS_TASK_OUTPUT_LIMIT="30")

    def run(self, step: str, argv: list, *, stdin: bytes | None = None, env: dict | None = None,
            timed: bool = True) -> tuple[bool, str]:
        """Run argv from the repository; its output goes to .logs/bench/<step>.log."""
        self.note_load(step)
        argv = [str(a) for a in argv]
        start = time.monotonic()
        result = subprocess.run(argv, cwd=REPO, input=stdin, env=env or self.env, check=False,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        seconds = time.monotonic() - start
        self.note_load(step)
        output = result.stdout.decode(errors="replace")
        log_path(step).write_text(f"$ {shlex.join(argv)}\n\n{output}\n"
                                  f"exit {result.returncode} after {seconds:.1f} s\n")
        ok = result.returncode == 0
        if timed:
            self.steps[step] = {"seconds": round(seconds, 1), "ok": ok, "log": str(log_path(step))}
        if not ok:
            print(f"{step}: failed (exit {result.returncode}), see {log_path(step)}", file=sys.stderr)
        return ok, output

    def note_load(self, step: str) -> None:
        """Remember what else ran during a step (looked at when it starts and ends)."""
        seen = set(self.load_seen.get(step, [])) | set(other_load())
        if seen:
            self.load_seen[step] = sorted(seen)

    # -- hosts ---------------------------------------------------------------

    def host_up(self, name: str) -> dict:
        state = self.work / name
        ok, _ = self.run(f"host-up-{name}", [BIN / "ansible-playbook", "molecule/_harness/host-up.yml",
                                              "-e", f"host_name={name}", "-e", f"host_state_dir={state}",
                                              "-e", f"host_suite={SUITE}", "-e", f"host_apt_slot={APT_SLOT}"],
                         timed=False)
        if not ok:
            raise RuntimeError(f"could not start {name}, see {log_path(f'host-up-{name}')}")
        return yaml.safe_load((state / "inventory.yml").read_text())["all"]["hosts"][name]

    @staticmethod
    def host_down(name: str) -> None:
        subprocess.run([BIN / "ansible-playbook", "molecule/_harness/host-down.yml", "-e", f"host_name={name}"],
                       cwd=REPO, capture_output=True, check=False)

    # -- the plain script ----------------------------------------------------

    def plain_script(self, step: str, conn: dict) -> None:
        """baseline.sh over one SSH session as admin with sudo; the sample app
        travels in the same session (a tarball on stdin), as a script's scp would."""
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            tar.add(REPO / "tools" / "bench" / "baseline.sh", arcname="baseline.sh")
            tar.add(REPO / "sample_app", arcname="sample_app", filter=skip_caches)
        remote = ("sudo bash -c 'rm -rf /tmp/bench && mkdir /tmp/bench && tar -xzf - -C /tmp/bench"
                  " && bash /tmp/bench/baseline.sh /tmp/bench/sample_app'")
        cache = apt_cache()
        before = debs(cache)
        self.run(step, ["ssh", "-i", conn["ansible_ssh_private_key_file"], "-p", conn["ansible_port"],
                        *conn["ansible_ssh_common_args"].split(), "-o", "BatchMode=yes",
                        f"{conn['ansible_user']}@{conn['ansible_host']}", remote], stdin=archive.getvalue())
        self.steps[step]["apt_downloads"] = fetched_during(cache, before)

    # -- site.yml and deploys ---------------------------------------------------

    def playbook(self, step: str, inventory: Path, playbook: str, extra: list[str] = (),
                 env: dict | None = None) -> None:
        ok, output = self.run(step, [BIN / "ansible-playbook", playbook, "-i", inventory,
                                     "-e", f"__demo_credentials={self.work / 'credentials'}", *extra],
                              env=env)
        recap = recap_totals(output)
        self.steps[step].update(recap)
        self.steps[step]["ok"] = ok and recap.get("failed", 1) == 0 and recap.get("unreachable", 1) == 0


def skip_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = Path(info.name).parts
    return None if {"__pycache__", ".pytest_cache"} & set(parts) or info.name.endswith(".pyc") else info


def apt_cache() -> Path:
    harness = yaml.safe_load((REPO / "molecule" / "_harness" / "vars" / "main.yml").read_text())
    return Path(harness["__harness_apt_cache"]) / f"{SUITE}-{APT_SLOT}"


def debs(cache: Path) -> set[str]:
    return {path.name for path in cache.glob("*.deb")} if cache.is_dir() else set()


def fetched_during(cache: Path, before: set[str]) -> int:
    """Packages that arrived in the cache since `before`. Only new names count:
    site.yml's first-run unattended-upgrade deletes the .debs it installed
    (Unattended-Upgrade::Keep-Debs-After-Install is false by default)."""
    return len(debs(cache) - before)


def recap_totals(output: str) -> dict:
    """Sums of the PLAY RECAP counters (changed, failed, unreachable) over its hosts."""
    recap = output[output.rfind("PLAY RECAP"):] if "PLAY RECAP" in output else ""
    return {key: sum(int(n) for n in re.findall(rf"\b{key}=(\d+)", recap))
            for key in ("changed", "failed", "unreachable")} if recap else {}


def site_inventory(work: Path, host: str, conn: dict) -> Path:
    """The demo's settings (inventories/local group_vars) for one all-in-one bench host."""
    inventory = work / "inventory"
    shutil.copytree(REPO / "inventories" / "local" / "group_vars", inventory / "group_vars")
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "hosts": {host: conn},
        "children": {group: {"hosts": {host: None}} for group in ("web", "db", "cache")},
    }}))
    return inventory


def app_copy(work: Path, name: str) -> Path:
    target = work / name
    shutil.copytree(REPO / "sample_app", target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return target


def code_change(work: Path) -> Path:
    """The sample app with one .py file changed."""
    source = app_copy(work, "app-code")
    with (source / "flaskstack_sample" / "wsgi.py").open("a") as wsgi:
        wsgi.write(f"# bench release {time.time_ns()}\n")
    return source


def lock_change(work: Path) -> Path:
    """The sample app with a new lock file: one more pinned, hashed package taken
    from the app's test lock (as the site scenario's new-lock test makes one)."""
    source = app_copy(work, "app-lock")
    test_lock = (REPO / "sample_app" / "requirements-test.txt").read_text()
    extra = test_lock[test_lock.index("iniconfig=="):].split("\n    # via")[0]
    with (source / "requirements.txt").open("a") as lock:
        lock.write(f"# lock {time.time_ns()}\n" + extra + "\n")
    return source


def mitogen_env(env: dict) -> dict | None:
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        return None
    strategies = Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"
    return dict(env, ANSIBLE_STRATEGY_PLUGINS=str(strategies), ANSIBLE_STRATEGY="mitogen_linear")


# -- serving -------------------------------------------------------------------

def on_host(container: str, script: str, *args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", "exec", container, "bash", "-c", script, "bench", *args],
                            capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"on {container}: {script.splitlines()[0]}...: {result.stdout}{result.stderr}")
    return result.stdout


# wrk against URL; with NAME, NAME resolves to 127.0.0.1 inside a private mount
# namespace only (wrk sends SNI from the URL's host; the host's /etc/hosts stays).
WRK_SCRIPT = r"""
url=$1 name=$2 seconds=$3; shift 3
if [ -z "$name" ]; then exec wrk "$@" -d"${seconds}s" "$url"; fi
hosts=$(mktemp)
trap 'rm -f "$hosts"' EXIT
{ cat /etc/hosts; echo "127.0.0.1 $name"; } >"$hosts"
unshare --mount sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$hosts" wrk "$@" -d"${seconds}s" "$url"
"""


def wrk(container: str, url: str, name: str = "") -> dict:
    on_host(container, WRK_SCRIPT, url, name, str(WRK_WARMUP_S), *WRK[1:])
    out = on_host(container, WRK_SCRIPT, url, name, str(WRK_SECONDS), *WRK[1:])
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    figure = {"url": url, "rps": float(rps.group(1)) if rps else None,
              "requests": int(total.group(1)) if total else 0,
              "non_2xx_3xx": int(bad.group(1)) if bad else 0,
              "socket_errors": errors.group(1).strip() if errors else "",
              "output": out}
    figure["ok"] = figure["rps"] is not None and figure["requests"] > 0 and figure["non_2xx_3xx"] == 0
    return figure


def free_port(container: str) -> int:
    return int(on_host(container, "python3 -c 'import socket; s = socket.socket(); "
                                  "s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'"))


def live_app(container: str) -> dict:
    """What the live gunicorn unit runs: read from systemd and the release's own config."""
    defaults = yaml.safe_load((REPO / "roles" / "gunicorn" / "defaults" / "main.yml").read_text())
    unit = f"gunicorn-{defaults['gunicorn_app_name']}.service"  # __gunicorn_service (roles/gunicorn/vars)
    show = on_host(container, f"systemctl show {unit} -p User -p Group -p WorkingDirectory "
                              "-p EnvironmentFiles -p ExecStart")
    props = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
    workdir = props["WorkingDirectory"]
    config = on_host(container, f"cat {shlex.quote(workdir)}/gunicorn.conf.py")
    return {
        "unit": unit,
        "user": props["User"], "group": props["Group"], "workdir": workdir,
        "environment_file": props["EnvironmentFiles"].split()[0],
        "gunicorn": re.search(r"path=(\S+)", props["ExecStart"]).group(1),
        "workers": int(re.search(r"^workers = (\d+)$", config, re.MULTILINE).group(1)),
        "wsgi_app": re.search(r'^wsgi_app = "(.+)"$', config, re.MULTILINE).group(1),
    }


def serving(container: str, log: Path) -> dict:
    """Requests/s inside the host: nginx + TLS vs a bare gunicorn of the live
    release with the same workers, and a static file from nginx vs Flask."""
    settings = REPO / "inventories" / "local" / "group_vars"
    web = yaml.safe_load((settings / "web" / "main.yml").read_text())
    site = yaml.safe_load((settings / "all" / "main.yml").read_text())
    name = web["nginx_server_names"][0]
    static_root = web["nginx_static_root"]
    while "{{" in static_root:  # as the inventory composes it from the site's settings
        static_root = jinja2.Template(static_root).render(site)
    on_host(container, "command -v wrk >/dev/null || { export DEBIAN_FRONTEND=noninteractive; "
                       "apt-get install -y -q --no-install-recommends wrk || "
                       "{ apt-get update -q && apt-get install -y -q --no-install-recommends wrk; }; }")
    app = live_app(container)
    static = min(on_host(container, f"ls {shlex.quote(static_root)}").split())
    port = free_port(container)
    figures: dict = {"server_name": name, "workers": app["workers"], "bare_port": port,
                     "wrk": f"{' '.join(WRK)} -d{WRK_SECONDS}s (after {WRK_WARMUP_S} s warm-up)"}
    on_host(container, f"systemctl stop {BARE_UNIT}; systemctl reset-failed {BARE_UNIT}", check=False)
    # Started in an empty runtime directory of its own, or gunicorn would read
    # the release's gunicorn.conf.py from its working directory (then it is not
    # bare, and its control socket would replace the live one's); --chdir then
    # imports the app from the release. Its control socket (gunicorn >= 25)
    # goes to $XDG_RUNTIME_DIR, i.e. that directory, which systemd removes.
    runtime = f"/run/{BARE_UNIT}"
    on_host(container, shlex.join([
        "systemd-run", f"--unit={BARE_UNIT}", "--collect", "--quiet", f"--uid={app['user']}",
        f"--gid={app['group']}", f"--property=EnvironmentFile={app['environment_file']}",
        f"--property=RuntimeDirectory={BARE_UNIT}", f"--setenv=XDG_RUNTIME_DIR={runtime}",
        f"--working-directory={runtime}", app["gunicorn"], "--workers", str(app["workers"]),
        "--chdir", app["workdir"], "--bind", f"127.0.0.1:{port}", app["wsgi_app"]]))
    try:
        on_host(container, "python3 -c 'import sys, time, urllib.request\n"
                           "for _ in range(60):\n"
                           "    try: urllib.request.urlopen(sys.argv[1], timeout=2); sys.exit(0)\n"
                           "    except OSError: time.sleep(0.5)\n"
                           "sys.exit(1)' " + f"http://127.0.0.1:{port}/health")
        figures["health_nginx_tls"] = wrk(container, f"https://{name}/health", name)
        figures["health_bare_gunicorn"] = wrk(container, f"http://127.0.0.1:{port}/health")
        figures["static_nginx"] = wrk(container, f"https://{name}/static/{static}", name)
        figures["static_flask"] = wrk(container, f"http://127.0.0.1:{port}/static/{static}")
    finally:
        on_host(container, f"systemctl stop {BARE_UNIT}", check=False)
    with log.open("w") as out:
        out.write(f"live app: {json.dumps(app)}\n")
        for key, figure in figures.items():
            if isinstance(figure, dict):
                out.write(f"\n== {key}: {figure['url']}\n{figure.pop('output')}")
    figures["ok"] = all(f["ok"] for f in figures.values() if isinstance(f, dict))
    return figures


# -- the report ----------------------------------------------------------------

def ratio(a: float | None, b: float | None) -> float | None:
    """a/b to three places: targets are compared on this, so 0.796 is not 0.8."""
    return round(a / b, 3) if a is not None and b else None


def scaled(value: float | None, factor: float) -> float | None:
    return round(value * factor, 1) if value is not None else None


def rows(steps: dict, serve: dict) -> list[dict]:
    def sec(step: str) -> float | None:
        return steps.get(step, {}).get("seconds") if steps.get(step, {}).get("ok") else None

    def rps(key: str) -> float | None:
        figure = serve.get(key)
        return figure["rps"] if figure and figure["ok"] else None

    warm, cold, rerun, mitogen = sec("script-warm"), sec("site-cold"), sec("site-rerun"), sec("site-rerun-mitogen")
    code, lock = sec("deploy-code"), sec("deploy-lock")
    tls, bare, st_nginx, st_flask = (rps("health_nginx_tls"), rps("health_bare_gunicorn"),
                                     rps("static_nginx"), rps("static_flask"))
    changed = steps.get("site-rerun", {}).get("changed")
    mitogen_changed = steps.get("site-rerun-mitogen", {}).get("changed")
    workers = serve.get("workers", "?")

    def met(value, ok):
        return None if value is None else bool(ok)

    def fetched(step: str, text: str) -> str:
        """The figure's name, saying how many packages the step downloaded."""
        count = steps.get(step, {}).get("apt_downloads")
        return f"{text} ({count} .deb fetched)" if count else text

    cold_ratio, rerun_ratio, tls_ratio = ratio(cold, warm), ratio(rerun, POPULAR_RERUN_S), ratio(tls, bare)
    return [
        {"figure": fetched("script-first", "plain script, 1st host, fills the apt cache"),
         "value": sec("script-first"), "unit": "s", "ratio": None, "of": "", "target": "", "met": None},
        {"figure": fetched("script-warm", "plain script, warm apt cache: yardstick"), "value": warm, "unit": "s",
         "ratio": None, "of": "", "target": "", "met": None},
        {"figure": fetched("site-cold", "site.yml cold converge"), "value": cold, "unit": "s", "ratio": cold_ratio,
         "of": "plain script warm", "target": f"<= {TARGETS['cold']}x", "target_value": scaled(warm, TARGETS["cold"]),
         "met": met(cold_ratio, cold_ratio is not None and cold_ratio <= TARGETS["cold"])},
        {"figure": f"site.yml re-run (changed={changed})", "value": rerun, "unit": "s", "ratio": rerun_ratio,
         "of": f"popular roles re-run {POPULAR_RERUN_S} s",
         "target": f"<= {TARGETS['rerun']}x ({TARGETS['rerun'] * POPULAR_RERUN_S:.1f} s), changed=0",
         "target_value": scaled(POPULAR_RERUN_S, TARGETS["rerun"]),
         "met": met(rerun_ratio, rerun_ratio is not None and rerun_ratio <= TARGETS["rerun"] and changed == 0)},
        {"figure": f"site.yml re-run, mitogen (changed={mitogen_changed})", "value": mitogen, "unit": "s",
         "ratio": ratio(mitogen, rerun), "of": "default re-run", "target": "opt-in, reported (changed must be 0)",
         "met": None},
        {"figure": "code-only deploy", "value": code, "unit": "s", "ratio": ratio(code, rerun),
         "of": "default re-run", "target": f"<= {TARGETS['deploy_s']:.0f} s", "target_value": TARGETS["deploy_s"],
         "met": met(code, code is not None and code <= TARGETS["deploy_s"])},
        {"figure": "lock-change deploy", "value": lock, "unit": "s", "ratio": ratio(lock, code),
         "of": "code-only deploy", "target": "", "met": None},
        {"figure": "/health via nginx + TLS", "value": tls, "unit": "req/s", "ratio": tls_ratio,
         "of": f"bare gunicorn, {workers} workers", "target": f">= {TARGETS['tls']}x",
         "target_value": scaled(bare, TARGETS["tls"]),
         "met": met(tls_ratio, tls_ratio is not None and tls_ratio >= TARGETS["tls"])},
        {"figure": f"/health on bare gunicorn ({workers} workers)", "value": bare, "unit": "req/s",
         "ratio": None, "of": "", "target": "", "met": None},
        {"figure": "static file from nginx + TLS", "value": st_nginx, "unit": "req/s",
         "ratio": ratio(st_nginx, st_flask), "of": "Flask's static route", "target": "plain ratio", "met": None},
        {"figure": "static file from Flask (bare gunicorn)", "value": st_flask, "unit": "req/s",
         "ratio": None, "of": "", "target": "", "met": None},
    ]


def table(report_rows: list[dict]) -> str:
    def cell(row: dict) -> list[str]:
        value = "failed/not run" if row["value"] is None else (
            f"{row['value']:.1f} {row['unit']}" if row["unit"] == "s" else f"{row['value']:,.0f} {row['unit']}")
        share = f"{row['ratio']:.3g}x {row['of']}" if row["ratio"] is not None else ""
        verdict = {True: "met", False: "NOT MET", None: ""}[row["met"]]
        return [row["figure"], value, share, row["target"], verdict]

    lines = [["figure", "value", "ratio", "target", ""]] + [cell(r) for r in report_rows]
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows_by_unit = {unit: [r for r in report["rows"] if r["unit"] == unit and r["value"] is not None]
                    for unit in ("s", "req/s")}
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 6), gridspec_kw={"width_ratios": [5, 4]})
    for axis, unit in ((left, "s"), (right, "req/s")):
        data = rows_by_unit[unit][::-1]
        colours = ["#2a7" if r["met"] else "#d44" if r["met"] is False else "#888" for r in data]
        bars = axis.barh([r["figure"] for r in data], [r["value"] for r in data], color=colours)
        for y, r in enumerate(data):  # the target, where it is a figure of the same unit
            if r.get("target_value") is not None:
                axis.plot([r["target_value"]], [y], marker="|", markersize=22, markeredgewidth=2, color="black")
        for bar, r in zip(bars, data):
            label = f"{r['value']:,.1f}" if unit == "s" else f"{r['value']:,.0f}"
            if r["ratio"] is not None:
                label += f"  ({r['ratio']:.3g}x {r['of']})"
            axis.annotate(label, (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                          xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        axis.set_xlabel("seconds (| target; green: met, red: missed, grey: no target)" if unit == "s"
                        else "requests/s inside the host, log scale (| target)")
        axis.tick_params(axis="y", labelsize=8)
        axis.margins(x=0.6 if unit == "s" else 0)
    right.set_xscale("log")
    served = [r["value"] for r in rows_by_unit["req/s"]] or [10]
    right.set_xlim(min(served) / 3, max(served) * 400)
    load = "; other test runs were active (figures under load)" if report["under_load"] else ""
    fig.suptitle(f"make bench, {report['started']}{load}: only ratios from one run compare", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main ------------------------------------------------------------------------

def bench(work: Path) -> tuple[dict, dict]:
    run = Bench(work)
    serve: dict = {}
    try:
        for step, host in (("script-first", HOSTS["script-1"]), ("script-warm", HOSTS["script-2"])):
            conn = run.host_up(host)
            run.plain_script(step, conn)
            run.host_down(host)

        site = HOSTS["site"]
        conn = run.host_up(site)
        inventory = site_inventory(work, site, conn)
        cache = apt_cache()
        before = debs(cache)
        run.playbook("site-cold", inventory, "site.yml")
        run.steps["site-cold"]["apt_downloads"] = fetched_during(cache, before)
        if run.steps["site-cold"]["ok"]:
            run.playbook("site-rerun", inventory, "site.yml")
            strategy_env = mitogen_env(run.env)
            if strategy_env:
                # site.yml's host-layer play names its strategy (free): mitogen's free one there
                run.playbook("site-rerun-mitogen", inventory, "site.yml",
                             ["-e", "flaskstack_site_strategy=mitogen_free"], env=strategy_env)
            else:
                run.steps["site-rerun-mitogen"] = {"ok": False, "seconds": None,
                                                   "note": "ansible_mitogen is not installed in this venv"}
            run.playbook("deploy-code", inventory, "playbooks/deploy.yml",
                         ["-e", f"flask_app_source={code_change(work)}"])
            run.playbook("deploy-lock", inventory, "playbooks/deploy.yml",
                         ["-e", f"flask_app_source={lock_change(work)}"])
            try:
                run.note_load("serving")
                serve = serving(site, log_path("serving"))
                run.note_load("serving")
            except (RuntimeError, KeyError, AttributeError, IndexError) as error:
                serve = {"ok": False, "error": str(error)}
                print(f"serving: failed: {error}", file=sys.stderr)
    except RuntimeError as error:  # a host that did not start
        run.steps["host-up"] = {"ok": False, "seconds": None, "note": str(error)}
        print(error, file=sys.stderr)
    finally:
        for host in HOSTS.values():
            run.host_down(host)
    return {"steps": run.steps, "load_seen_at": run.load_seen}, serve


def versions() -> dict:
    found = {}
    for package in ("ansible-core", "mitogen"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serving-on", metavar="CONTAINER",
                        help="only the serving figures, on this running site host (e.g. flaskstack-demo)")
    args = parser.parse_args()
    LOGS.mkdir(parents=True, exist_ok=True)
    if args.serving_on:
        serve = serving(args.serving_on, LOGS / f"serving-{args.serving_on}.log")
        print(json.dumps(serve, indent=2))
        return 0 if serve["ok"] else 1

    for old in [*LOGS.glob("*.log"), LOGS / "bench.json", LOGS / "bench.png"]:
        old.unlink(missing_ok=True)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    load_at_start = other_load()
    loadavg_at_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="flaskstack-bench-"))
    try:
        timings, serve = bench(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steps = timings["steps"]
    report = {
        "started": started,
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "under_load": bool(load_at_start or timings["load_seen_at"]),
        "other_load_at_start": load_at_start,
        "other_load_during": timings["load_seen_at"],
        "image": f"Debian {SUITE} test host (molecule/_harness), apt cache slot {APT_SLOT}",
        "cores": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in loadavg_at_start],
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "versions": versions(),
        "steps": steps,
        "serving": serve,
        "targets": {**TARGETS, "popular_roles_rerun_s": POPULAR_RERUN_S},
    }
    report["rows"] = rows(steps, serve)
    failures = [step for step, result in steps.items() if not result.get("ok")]
    if serve and not serve.get("ok"):
        failures.append("serving")
    for step in ("site-rerun", "site-rerun-mitogen"):
        if steps.get(step, {}).get("changed"):
            failures.append(f"{step} changed={steps[step]['changed']}")
    report["failures"] = failures
    (LOGS / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    chart(report, LOGS / "bench.png")

    print(table(report["rows"]))
    if report["under_load"]:
        during = sorted({what for seen in report["other_load_during"].values() for what in seen})
        print(f"\nOther test runs shared the machine ({', '.join(sorted(set(during) | set(load_at_start)))}"
              f"; per step in bench.json): the figures were taken under load.")
    print(f"\n{LOGS / 'bench.json'}, {LOGS / 'bench.png'}; step logs in {LOGS}/")
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
