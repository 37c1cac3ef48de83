"""Reactions plugins, installed for real and found by a real server process.

The two packages under tests/plugin_fixture are turned into wheels (laid out here from their
pyproject.toml — a wheel is a zip of the modules and a dist-info — so no build backend has to
be reachable offline), installed with ``pip install --target`` into temporary directories, and
put on a ``python -m graph serve`` process's ``PYTHONPATH``: the server finds them through the
``support_graph.reactions`` entry-point group, as a deployment's would be found.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import tomllib
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.procs import ROOT, SETTINGS_ENV, Serve, free_port

FIXTURE = ROOT / "tests" / "plugin_fixture"
TIMEOUT = 120


# --- installing the plugins ---------------------------------------------------------------------


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel(project: Path, out: Path) -> Path:
    """The wheel of ``project`` as its build backend would make it: modules plus a dist-info
    whose METADATA and entry_points.txt come from its pyproject.toml."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    dist = re.sub(r"[-_.]+", "_", meta["name"])
    info = f"{dist}-{meta['version']}.dist-info"
    files = {p.relative_to(project).as_posix(): p.read_bytes() for p in sorted(project.rglob("*.py"))}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/entry_points.txt"] = "".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items()) + "\n"
        for group, points in meta.get("entry-points", {}).items()
    ).encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    wheel = out / f"{dist}-{meta['version']}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def install(project: Path, workdir: Path) -> Path:
    """``pip install`` the plugin ``project`` into a directory of its own; that directory."""
    wheels, target = workdir / "wheels", workdir / "site"
    wheels.mkdir(parents=True)
    installed = _pip("install", "--no-deps", "--no-index", "--target", str(target), str(_wheel(project, wheels)))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return target


@dataclass
class Plugins:
    reactions: Path  # site directory holding support-graph-fixture-reactions
    broken: Path  # site directory holding support-graph-fixture-broken


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Plugins:
    return Plugins(
        install(FIXTURE / "reactions", tmp_path_factory.mktemp("reactions")),
        install(FIXTURE / "broken", tmp_path_factory.mktemp("broken")),
    )


def plugin_env(*sites: Path) -> dict[str, str]:
    paths = [str(site) for site in sites]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(paths)}


def test_the_plugins_are_installed_distributions(plugins: Plugins):
    for site, dist, point in (
        (plugins.reactions, "support_graph_fixture_reactions", "fixture-reactions = fixture_reactions:register"),
        (plugins.broken, "support_graph_fixture_broken", "fixture-broken = fixture_broken:register"),
    ):
        (info,) = site.glob(f"{dist}-*.dist-info")
        assert "[support_graph.reactions]" in (info / "entry_points.txt").read_text()
        assert point in (info / "entry_points.txt").read_text()
        assert (info / "INSTALLER").read_text().strip() == "pip"


# --- a server with the reactions plugin ---------------------------------------------------------


@dataclass
class Tenant:
    """A fresh tenant on a ``serve`` process that loaded the reactions plugin."""

    process: Serve
    http: httpx.Client

    def post(self, query: str, variables: dict | None = None) -> dict:
        return self.http.post("/graphql", json={"query": query, "variables": variables or {}}).json()

    def data(self, query: str, variables: dict | None = None) -> dict:
        body = self.post(query, variables)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def counts(self) -> dict[str, int]:
        """Everything the tenant holds: compare before and after to prove nothing was written."""
        return {
            name: value["totalCount"]
            for name, value in self.data(
                "{ tickets(includeDeleted: true) { totalCount } activities(includeDeleted: true) { totalCount }"
                " issues(includeDeleted: true) { totalCount } events { totalCount } }"
            ).items()
        }


def create_key(database_url: str, tenant: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "graph", "create-key", "--tenant", tenant, "--database-url", database_url],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.fixture(scope="module")
def tenant(database_url: str, plugins: Plugins) -> Iterator[Tenant]:
    key = create_key(database_url, f"plugins-{uuid.uuid4().hex[:8]}")
    process = Serve(database_url, "memory://", name="plugins", env=plugin_env(plugins.reactions))
    process.start()
    http = httpx.Client(base_url=process.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    try:
        yield Tenant(process, http)
    finally:
        http.close()
        process.cleanup()


CREATE = """mutation($subject: String!) {
  createTicket(input: {subject: $subject, tags: ["printer"]}) {
    id tags
    activities { id type subject }
    events { nodes { id type sequence } }
  }
}"""

LOG = """query($n: Int) {
  events(last: $n) { nodes { id type entityType target sequence cause { id type target } entity { id } } }
}"""


def test_the_plugins_hooks_run_in_the_verbs_transaction(tenant: Tenant):
    ticket = tenant.data(CREATE, {"subject": "Printer on fire"})["createTicket"]
    # the before-hook changed what was written; the after-hook created a NOTE with the ticket
    assert ticket["tags"] == ["printer", "via-plugin"]
    by_type = {a["type"]: a for a in ticket["activities"]}
    assert set(by_type) == {"TASK", "NOTE"}  # the shipped hook's, and the plugin's
    assert by_type["NOTE"]["subject"] == "Plugin note: Printer on fire"
    (created,) = ticket["events"]["nodes"]
    log = tenant.data(LOG, {"n": 3})["events"]["nodes"]
    # one unit: the ticket's event, then the two activities its hooks caused, numbered together
    assert [e["type"] for e in log] == ["Ticket.Created", "Activity.Created", "Activity.Created"]
    assert log[0]["id"] == created["id"] and log[0]["cause"] is None
    assert [e["sequence"] for e in log] == [created["sequence"] + n for n in range(3)]
    for event in log[1:]:
        assert event["cause"] == {"id": created["id"], "type": "Ticket.Created", "target": ticket["id"]}
    assert log[2]["target"] == by_type["NOTE"]["id"] == log[2]["entity"]["id"]
    assert log[1]["target"] == by_type["TASK"]["id"]


@pytest.mark.parametrize("marker", ["[plugin:bug]", "[plugin:outage]"])
def test_a_failing_plugin_hook_aborts_the_verb_and_writes_nothing(tenant: Tenant, marker: str):
    tenant.data(CREATE, {"subject": "Before the outage"})
    before = tenant.counts()
    last = tenant.data(LOG, {"n": 1})["events"]["nodes"][0]["sequence"]

    body = tenant.post(CREATE, {"subject": f"Printer on fire {marker}"})

    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["message"] == "Ticket.Created was not applied: one of its hooks failed. Nothing was written."
    assert error["path"] == ["createTicket"] and body["data"] is None
    assert "fixture plugin failed" not in str(body)  # the cause is logged, not shown to the caller
    assert tenant.counts() == before
    # not even a sequence number was taken: the next verb's events follow on without a gap
    ticket = tenant.data(CREATE, {"subject": "After the outage"})["createTicket"]
    assert ticket["events"]["nodes"][0]["sequence"] == last + 1
    assert "note_new_ticket" in tenant.process.log()  # the server's log names the failing hook


# --- a plugin that cannot register ------------------------------------------------------------


@pytest.fixture(scope="module")
def broken_start(plugins: Plugins, tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """``serve`` with both plugins installed, the broken one among them: it must exit."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    env |= plugin_env(plugins.reactions, plugins.broken)
    database = tmp_path_factory.mktemp("broken") / "plugins.db"
    return subprocess.run(
        [sys.executable, "-m", "graph", "serve", "--port", str(free_port()), "--log-level", "warning",
         "--database-url", f"sqlite+aiosqlite:///{database}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip


BROKEN = (
    "The reactions plugin 'fixture-broken' (fixture_broken:register) failed to load: "
    "no escalation queue configured for the fixture plugin"
)


def test_a_plugin_that_cannot_register_stops_the_start(broken_start: subprocess.CompletedProcess[str]):
    output = broken_start.stdout + broken_start.stderr
    assert broken_start.returncode != 0, output
    assert BROKEN in output


def test_a_plugin_that_cannot_register_is_named_in_one_line(broken_start: subprocess.CompletedProcess[str]):
    output = (broken_start.stdout + broken_start.stderr).strip()
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1 and BROKEN in output, output
