"""The change lifecycle's table (coordination.status.CHANGE_TRANSITIONS) and its one
door (ChangeStore.write_state): every move the landing, the revert and the train make
is in the table, a move outside it is refused before Redis is written, and nothing
else writes a change's state."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import coordination
from coordination.runtime.changes import FAILED_VERIFICATION, refused_move, refused_step
from coordination.runtime.checkpoints import TransitionRefused
from coordination.runtime.context import Runtime
from coordination.trust.evidence import KINDS, EvidenceKind
from coordination.status import (
    CHANGE_ENDED,
    CHANGE_STORED,
    CHANGE_TRANSITIONS,
    STEP_TRANSITIONS,
    StepState,
)
from coordination.status import ChangeHeadline, ChangeState as CS

pytestmark = pytest.mark.timeout(30)

PKG = Path(coordination.__file__).parent
PLAN = "PLAN-001"

#: Every move of a change's stored state that the landing (landing.py, waves.py), the
#: revert (revert.py) and the merge train (train.py) make, as the suite drives them.
MOVES = [
    (None, CS.landing), (CS.landing, CS.landed), (CS.landing, CS.landing),  # undo under way
    (CS.landing, CS.reverted), (CS.landing, CS.revert_failed),
    (CS.landing, CS.partially_landed),  # a per-wave landing stopped
    (CS.landed, CS.reverted), (CS.landed, CS.revert_failed),
    (CS.landed, CS.landed),  # a revert refused puts back what it found
    (CS.partially_landed, CS.reverted), (CS.partially_landed, CS.partially_landed),
    (CS.revert_failed, CS.reverted), (CS.revert_failed, CS.revert_failed),
    (CS.revert_failed, CS.landed),  # its revert refused: landed again
    (CS.landed, CS.landing), (CS.reverted, CS.landing),  # a new landing
    (CS.reverted, CS.landed),  # test_change_revert puts a reverted change back landed
    (None, FAILED_VERIFICATION), (CS.landing, FAILED_VERIFICATION),
    (FAILED_VERIFICATION, FAILED_VERIFICATION), (FAILED_VERIFICATION, CS.landing),
]


def test_the_table_names_every_state_and_only_states() -> None:
    assert set(CHANGE_TRANSITIONS) == {None, *CS}
    for targets in CHANGE_TRANSITIONS.values():
        assert targets <= set(CS)
    assert CHANGE_STORED == set(CS)
    assert CHANGE_ENDED <= CHANGE_STORED and FAILED_VERIFICATION in CHANGE_STORED


def test_headlines_are_their_own_type_and_never_stored() -> None:
    """The headlines computed from the record (never stored) are no stored state: the
    table cannot move to them; every stored state is a headline too (shown as stored)."""
    computed = {ChangeHeadline.drafted, ChangeHeadline.verified, ChangeHeadline.conflict,
                ChangeHeadline.interrupted, ChangeHeadline.revert_interrupted,
                ChangeHeadline.rejected}
    assert {str(h) for h in ChangeHeadline} == {*map(str, CS), *map(str, computed)}
    for h in computed:
        assert str(h) not in {str(s) for s in CHANGE_STORED}
        assert refused_move(CS.landed, str(h))


@pytest.mark.parametrize("old,new", MOVES)
def test_every_move_the_code_makes_is_allowed(old: str | None, new: str) -> None:
    assert refused_move(old, new) is None


@pytest.mark.parametrize("old,new", [(CS.reverted, CS.partially_landed), (None, CS.landed),
                                     (CS.landed, ChangeHeadline.interrupted),
                                     (None, "nonsense")])
def test_a_move_outside_the_table_is_refused(old: str | None, new: str) -> None:
    assert refused_move(old, new)


def test_write_state_refuses_before_writing(rt: Runtime) -> None:
    with pytest.raises(TransitionRefused, match="from no state to landed"):
        rt.changes.end_landing(PLAN, CS.landed, None)
    assert rt.changes.read(PLAN).state is None
    rt.changes.begin_landing(PLAN, "{}", {})
    rt.changes.end_landing(PLAN, CS.reverted, "undone")
    assert rt.changes.read(PLAN).state == CS.reverted
    with pytest.raises(TransitionRefused, match="from reverted to partially_landed"):
        rt.changes.end_landing(PLAN, CS.partially_landed, "x")
    with pytest.raises(TransitionRefused, match="'interrupted'"):
        rt.changes.end_landing(PLAN, ChangeHeadline.interrupted, "x")
    st = rt.changes.read(PLAN)
    assert (st.state, st.reason) == (CS.reverted, "undone")  # nothing written
    rt.changes.drop(PLAN, "TODO-101 failed", {"api": "a1"})
    assert rt.changes.read(PLAN).state == FAILED_VERIFICATION


def test_a_state_written_meanwhile_is_checked_again(rt: Runtime) -> None:
    """As a sweep's status is a compare-and-set, the state a move is checked from is the
    state it replaces: one another process writes between the check and the write has
    the move checked again (here refused, and what it wrote stays)."""
    rt.changes.begin_landing(PLAN, "{}", {})
    rt.changes.end_landing(PLAN, CS.reverted, "undone")
    queued: list[int] = []

    def meanwhile(p: object) -> None:
        if not queued:  # the train drops it, from another connection
            rt.redis.hset(rt.keys.change(PLAN), "state", str(FAILED_VERIFICATION))
        queued.append(1)

    with pytest.raises(TransitionRefused, match="from failed_verification to landed"):
        rt.changes.write_state(PLAN, CS.landed, meanwhile)  # reverted -> landed: allowed
    assert queued == [1] and rt.changes.read(PLAN).state == FAILED_VERIFICATION


def _state_writes(path: Path) -> list[tuple[str, int]]:
    """(function, line) of each call in ``path`` that writes a field named ``state``
    (``hset(key, "state", ...)`` or ``hset(key, mapping={"state": ...})``)."""
    tree = ast.parse(path.read_text())
    out: list[tuple[str, int]] = []

    def walk(node: ast.AST, fn: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef,
                                                    ast.AsyncFunctionDef)) else fn
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) \
                    and child.func.attr in ("hset", "hsetnx", "hmset"):
                args = [*child.args, *(k.value for k in child.keywords)]
                for a in args:
                    if (isinstance(a, ast.Constant) and a.value == "state") or (
                            isinstance(a, ast.Dict) and any(
                                isinstance(k, ast.Constant) and k.value == "state"
                                for k in a.keys)):
                        out.append((name, child.lineno))
            walk(child, name)

    walk(tree, "")
    return out


def test_every_change_state_write_goes_through_write_state() -> None:
    writes = {str(p.relative_to(PKG)): _state_writes(p) for p in PKG.rglob("*.py")}
    writes = {p: w for p, w in writes.items() if w}
    # a breaker's own state is another record (Keys.breaker)
    assert writes.pop("runtime/breakers.py", None) is not None
    assert {p: [f for f, _ in w] for p, w in writes.items()} == {
        "runtime/changes.py": ["write_state"]}
    # and no script on a change's hash writes its state field
    scripts = list((PKG / "runtime" / "lua").glob("change*.lua"))
    assert scripts
    for lua in scripts:
        assert not re.search(r"HSET[^\n]*['\"]state['\"]", lua.read_text(), re.I), lua


def test_evidence_kinds_are_an_enum() -> None:
    assert KINDS == set(EvidenceKind) and "verify" in KINDS
    assert EvidenceKind.decision == "decision"


# -- a repo's step: its own table, behind ChangeStore.step ------------------------------
S = StepState
#: Every move of a repo's step the landing (landing.py, pull_landing.py: push, command,
#: land: pr, carried on), its undo, and coord change revert (revert.py, pull_revert.py:
#: push, command, revert pull requests, landing again over a refused revert) make.
STEP_MOVES = [
    (None, S.landing), (S.landing, S.landed),  # a landing
    (S.landing, S.landing), (S.landed, S.landing), (S.landed, S.landed),  # carried on
    (None, S.not_landed), (S.not_landed, S.not_landed),  # land: pr, a PR refused
    (S.not_landed, S.landing), (S.not_landed, S.landed),  # ... carried on
    # its undo, from each step it reverts
    *[(old, new) for old in (S.landing, S.landed, S.reverting, S.revert_failed)
      for new in (S.reverting, S.reverted, S.revert_failed, S.not_landed)],
    # coord change revert: the revert refused puts it back landed; landing it again
    (S.reverting, S.landed), (S.reverted, S.landing), (S.landing, S.reverted),
]


@pytest.mark.parametrize("old,new", STEP_MOVES)
def test_every_step_move_the_code_makes_is_allowed(old: str | None, new: str) -> None:
    assert refused_step(old, new) is None


@pytest.mark.parametrize("old,new", [
    (None, S.landed), (None, S.reverted), (None, S.reverting),  # never began
    (S.reverted, S.reverting), (S.reverted, S.landed), (S.reverted, S.revert_failed),
    (S.not_landed, S.reverting), (S.not_landed, S.reverted),  # nothing of it to revert
    (S.revert_failed, S.landed), (S.landed, None), (S.landed, "relanding")])
def test_a_step_move_outside_the_table_is_refused(old: str | None, new: str | None) -> None:
    assert refused_step(old, new)


def test_the_step_table_names_every_step_state() -> None:
    assert set(STEP_TRANSITIONS) == {None, *S}
    for targets in STEP_TRANSITIONS.values():
        assert targets <= set(S)
    # a step state this version does not know moves as no step does
    assert refused_step("from_a_newer_coord", S.landing) is None
    assert refused_step("from_a_newer_coord", S.reverted)


def test_the_step_door_refuses_before_writing(rt: Runtime) -> None:
    from coordination.runtime.change_records import StepRecord

    lease = rt.changes.take_lease("api", 1)
    assert lease is not None
    with pytest.raises(TransitionRefused, match="from no step to reverted"):
        rt.changes.step(PLAN, lease, "api", StepRecord.new(state=S.reverted, landed="a1"))
    assert rt.changes.read(PLAN).step("api").empty
    assert rt.changes.step(PLAN, lease, "api", StepRecord.new(state=S.landing))
    assert rt.changes.step(PLAN, lease, "api", StepRecord.new(state=S.landed, landed="a1"))
    assert rt.changes.step(PLAN, lease, "api", StepRecord.new(state=S.reverting, landed="a1"))
    assert rt.changes.step(PLAN, lease, "api", StepRecord.new(state=S.reverted, landed="a1"))
    with pytest.raises(TransitionRefused, match="from reverted to revert_failed"):
        rt.changes.step(PLAN, lease, "api", StepRecord.new(state=S.revert_failed))
    assert rt.changes.read(PLAN).step("api").state == S.reverted  # nothing written


def test_every_step_write_goes_through_the_door() -> None:
    """Only ChangeStore.step names a step field (``step:<R>``) to write: a landing,
    an undo and a revert all call it."""
    writers = []
    for p in PKG.rglob("*.py"):
        for n, line in enumerate(p.read_text().splitlines(), 1):
            if re.search(r"""f?["']step:""", line):
                writers.append(f"{p.relative_to(PKG)}")
    assert sorted(set(writers)) == ["runtime/changes.py"]
    text = (PKG / "runtime" / "changes.py").read_text()
    assert len(re.findall(r'lua\("change_step"\)', text)) == 1
    assert len(re.findall(r'lua\("change_step"\)', "".join(
        p.read_text() for p in PKG.rglob("*.py")))) == 1
