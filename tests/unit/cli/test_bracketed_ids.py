"""A template's instance ids (``TODO-010[api]``) survive every human output (issue #41).

Rich reads ``[api]`` as markup and drops it: 0.4.0 printed "gate TODO-001: ..." and the
hint `coord approve TODO-001 --sweep ID`, which then failed ("has no todo 'TODO-001'");
`sweep list` gave the reason "TODO-002 failed". Each command here runs as a user runs
it (embedded, its own process, off a terminal); every line that names an instance must
name it whole, and a hint people copy must work as printed in a shell."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from coordination.cli.render import arg, esc
from tests.unit.support.cli import ROOT, coord
from tests.unit.support.sweeps import PLAN, write_catalog
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(180)

GATE, RUN = "TODO-001[api]", "TODO-002[api]"
#: An instance id with its brackets cut off by markup: what must never be printed.
CUT = re.compile(r"TODO-00[12](?!\[api\])\b")


def whole(text: str) -> None:
    """Every mention of TODO-001/TODO-002 carries its ``[api]``."""
    bad = [line for line in text.splitlines() if CUT.search(line)]
    assert not bad, "\n".join(bad)


def test_esc_and_arg_keep_brackets() -> None:
    from rich.text import Text

    assert Text.from_markup(esc(GATE)).plain == GATE
    assert Text.from_markup(arg(GATE)).plain == "'TODO-001[api]'"
    assert Text.from_markup(arg("PLAN-001-20261125-ab12")).plain == "PLAN-001-20261125-ab12"


def test_a_gated_template_sweep_names_its_instances_whole(tmp_path: Path) -> None:
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "for_each": "api", "gate": {"approvals": 1}, "task": "sign off"},
        {"id": "TODO-002", "for_each": "api", "run": "echo kaput >&2; exit 3",
         "blocked_by": ["TODO-001"], "task": "build"},
    ], repos=("api",))
    env = {"COORD_USER": "ana"}
    base = {k: v for k, v in __import__("os").environ.items() if not k.startswith("COORD_")}
    sweep = subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(eco), "plan", "sweep",
         PLAN, "--wait"], cwd=ROOT, env={**base, **env}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err: list[str] = []

    def drain() -> None:
        assert sweep.stderr is not None
        for line in sweep.stderr:
            err.append(line)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert sweep.stdout is not None
        sid = sweep.stdout.readline().strip()
        assert sid.startswith(PLAN), (sid, err)
        # The gate's notice, and the hint in it, name the instance (quoted for a shell).
        waiting = wait_for(lambda: next((x for x in err if "gate waiting:" in x), None),
                           timeout=60, what="the gate's notice")
        assert f"gate waiting: {GATE} needs 1 approval(s)" in waiting, waiting
        hint = f"coord approve 'TODO-001[api]' --sweep {sid}"
        assert hint in waiting, waiting
        banner = "".join(err)
        assert f"todos of {PLAN}" in banner  # (the embedded banner: a plan's sweep)

        status = coord(eco, "sweep", "status", sid)
        assert status.returncode == 0, status.stderr
        assert f"gate {GATE}: awaiting_approval" in status.stdout, status.stdout
        assert f"({hint})" in status.stdout, status.stdout
        whole(status.stdout)

        # The hint, as a shell reads it, approves the gate.
        argv = shlex.split(hint)
        assert argv[:3] == ["coord", "approve", GATE]
        approved = coord(eco, *argv[1:], env=env)
        assert approved.returncode == 0, approved.stderr
        assert f"{GATE} approved by ana: sweep {sid} goes on" in approved.stderr, \
            approved.stderr
        whole(approved.stderr)

        sweep.wait(timeout=90)
        reader.join(timeout=10)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 1, "".join(err)
    text = "".join(err)
    assert f"approved: {GATE} by ana" in text, text
    assert f"{RUN} failed (exit 3), last 5 lines of output:" in text, text
    whole(text)

    listed = coord(eco, "sweep", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(x for x in listed.stdout.splitlines() if x.startswith(sid))
    assert f"{RUN} failed" in row, listed.stdout
    whole(listed.stdout)
    status = coord(eco, "sweep", "status", sid)
    assert f"{GATE}  " in status.stdout and f"{RUN}  " in status.stdout, status.stdout
    whole(status.stdout)
    # The other views of the sweep and of the plan name the instances whole (a template's
    # own id, without brackets, is named where the template is: `todo show TODO-002`).
    for args, want in ((("events", "--sweep", sid), (GATE, RUN)),
                       (("todo", "show", RUN), (RUN,)),
                       (("todo", "show", "TODO-002"), (RUN,)),
                       (("plan", "sweep", PLAN, "--dry-run"), (GATE, RUN)),
                       (("plan", "show", PLAN), (GATE, RUN)),
                       (("history", "search", "TODO-002"), (RUN,)),
                       (("history", "trends"), (RUN,))):
        r = coord(eco, *args)
        assert r.returncode == 0, (args, r.stderr)
        for w in want:
            assert w in r.stdout, (args, r.stdout)
    events = coord(eco, "events", "--sweep", sid).stdout
    whole(events)
