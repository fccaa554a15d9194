"""`coord run`'s table and a todo's output reach the terminal escaped (#49 item 6): a
command printing ANSI escapes, a control character, Rich markup and ``:x:`` shows them as
text, each row on one line. Real workers and redis-server."""

from __future__ import annotations

import pytest

from tests.integration.helpers import PLAN, Cluster, T

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

CMD = r"printf 'first\n\033[31mred\033[0m [bold]b[/bold] :x: \001end\n'"


def test_run_table_and_output_are_escaped(cluster: Cluster) -> None:
    c = cluster
    c.write_catalog({"a": 1}, [T("TODO-001", "a", "true")], plans=(PLAN,))
    c.start_workers(["a"])
    res = c.cli("run", CMD, "--repos", "a", "--wait", timeout=150)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "\x1b" not in out and "\r" not in out and "\u274c" not in out, repr(out)
    # (the table leads with the level the repo ran in: "0  a  ...")
    [row] = [ln for ln in res.stdout.splitlines() if ln.split()[1:2] == ["a"]]
    assert "\\x1b[31mred\\x1b[0m [bold]b[/bold] :x: \\x01end" in row, repr(row)
