"""A change's records, typed (coordination.runtime.change_records): each record as the
store wrote it before they were typed parses, and writes back byte for byte; the store
still writes exactly those bytes; and a sealed record's seal still holds on what was
parsed."""

from __future__ import annotations

import fakeredis
import pytest

from coordination.keys import Keys
from coordination.runtime.change_records import (
    LanderRecord,
    PrepareRecord,
    StepRecord,
    SweepPointer,
    TrainDrop,
    VerifyRecord,
)
from coordination.runtime.changes import ChangeStore, pointer_about, verify_about
from coordination.trust import evidence
from coordination.trust.signing import Policy

pytestmark = pytest.mark.timeout(30)

KEY = "k" * 32
AT = 1764100000.25

#: Fields of two changes as the store wrote them before its records were typed (key
#: ``KEY``, the clock at ``AT``): a signed change the train dropped, an unsigned one.
SIGNED = {
    "dropped": '{"shas": {"api": "a1"}, "at": 1764100000.25}',
    "sweep": '{"at": 1764100000.25, "kid": "5e318f8cf9cbe249", "run": 2, "sig": "v1:4916814a4e62'
             'a7efef574f01e081bb4cef56dc909c24518286a5e3a20350372b", "sweep": "s-1", "verify": '
             '{"TODO-101": ["s-1", 2]}}',
    "verify:TODO-101": '{"repo": "api", "shas": {"web": "w1", "api": "a1"}, "ok": true, '
                       '"exit_code": 0, "reason": null, "last": null, "sweep": "s-1", "run": 2, '
                       '"at": 1764100000.25, "sig": "v1:96bcfb97967557bdb2bfa2e86ee3aebe176566e0d'
                       '26d794a3612310fc7cbf51a", "kid": "5e318f8cf9cbe249"}',
    "verify:TODO-102": '{"repo": "web", "shas": {"api": "a1"}, "ok": false, "exit_code": 3, '
                       '"reason": "exit 3", "last": "boom", "sweep": "s-1", "run": 2, "at": '
                       '1764100000.25, "sig": "v1:d3b8aca26d7d52fb01e99e299bcd747fea5b718ba77cd'
                       'e9cc813beda45a28274", "kid": "5e318f8cf9cbe249"}',
}
UNSIGNED = {
    "sweep": '{"at": 1764100000.25, "run": null, "sweep": null, "verify": {"TODO-201": '
             '["t-1", 0]}}',
    "verify:TODO-201": '{"repo": "api", "shas": {"api": "a1"}, "ok": true, "exit_code": 0, '
                       '"reason": null, "last": null, "sweep": null, "run": null, "at": '
                       '1764100000.25}',
}
#: ... and a repo's prepare command's last run.
PREPARE = ('{"command": "make", "ok": false, "exit_code": 3, "output": "no C compiler found\\n", '
           '"worktree": "/wt/core", "at": 1764100000.25}')
#: ... every shape of a repo's step the landing and ``change revert`` wrote before steps
#: were typed (name -> the field's text), ...
STEPS = {
    "landing": '{"state": "landing"}',
    "landed": '{"state": "landed", "landed": "c1"}',
    "not_landed": '{"state": "not_landed", "why": "api: push refused"}',
    "undo_reverting": '{"state": "reverting", "landed": "c1", "revert": "r1"}',
    "undo_reverted": '{"state": "reverted", "landed": "c1", "revert": "r1"}',
    "undo_failed": '{"state": "revert_failed", "landed": "c1", "revert": "r1", '
                   '"why": "origin/main moved on to 0123456789ab"}',
    "untrusted": '{"state": "revert_failed", "landed": "c1", "why": "api: core.hooksPath is set"}',
    "reverting": '{"state": "reverting", "landed": "c1", "pre": "b1", "over": "h1", '
                 '"revert": "r2", "by": "change revert", "ident": "Forge <forge@example.com>"}',
    "reverted": '{"state": "reverted", "landed": "c1", "pre": "b1", "over": "h1", "revert": '
                '"r2", "by": "change revert", "why": "already taken out of origin/main at h1"}',
    "refused": '{"state": "landed", "landed": "c1", "pre": "b1", "why": "revert refused: no"}',
    "relanding": '{"state": "landing", "landed": "c1", "pre": "b1", "over": "h1", "revert": '
                 '"r2", "by": "change revert", "reland": "c2", "reland_over": "r2"}',
    "relanded": '{"state": "landed", "landed": "c2", "pre": "r2", "relanded": true}',
}
#: ... and the process landing a change.
LANDER = '{"host": "build-1", "pid": 4242, "started": "123456", "op": "land", "at": 1764100000.25}'


def test_a_verify_record_round_trips_and_says_what_it_holds() -> None:
    for text in (SIGNED["verify:TODO-101"], SIGNED["verify:TODO-102"],
                 UNSIGNED["verify:TODO-201"]):
        assert VerifyRecord.from_json(text).to_json() == text
    ok = VerifyRecord.from_json(SIGNED["verify:TODO-101"])
    assert (ok.repo, ok.shas, ok.ok, ok.exit_code, ok.ran_in, ok.at) == (
        "api", {"web": "w1", "api": "a1"}, True, 0, ("s-1", 2), AT)
    failed = VerifyRecord.from_json(SIGNED["verify:TODO-102"])
    assert (failed.ok, failed.exit_code, failed.reason, failed.last) == (
        False, 3, "exit 3", "boom")
    # what its seal covers is what was stored
    assert evidence.refusal("verify", verify_about("PLAN-001", "TODO-101", ok.shas or {},
                                                   *ok.ran_in),
                            ok.document, Policy((KEY,)), "verify record") is None


def test_a_sweep_pointer_round_trips_and_a_bare_or_unreadable_one_reads_as_before() -> None:
    for text in (SIGNED["sweep"], UNSIGNED["sweep"]):
        p = SweepPointer.from_json(text)
        assert p is not None and p.to_json() == text
    p = SweepPointer.from_json(SIGNED["sweep"])
    assert p is not None
    assert (p.sweep, p.run, p.verify, p.started_in("TODO-101"), p.started_in("TODO-9")) == (
        "s-1", 2, {"TODO-101": ["s-1", 2]}, ("s-1", 2), None)
    assert evidence.refusal("sweep", pointer_about("PLAN-001"), p.document, Policy((KEY,)),
                            "pointer") is None
    assert SweepPointer.from_json(None) is None and SweepPointer.from_json("") is None
    bare = SweepPointer.from_json("s-0")  # written before the pointer was sealed
    assert bare is not None and (bare.sweep, bare.document) == ("s-0", {"sweep": "s-0"})
    bad = SweepPointer.from_json("{not json")
    assert bad is not None and bad.sweep is None and bad.document["unreadable"] == "{not json"


def test_a_train_drop_round_trips() -> None:
    drop = TrainDrop.from_json(SIGNED["dropped"])
    assert drop is not None and drop.to_json() == SIGNED["dropped"]
    assert (drop.shas, drop.at) == ({"api": "a1"}, AT)
    assert TrainDrop.from_json(None) is None
    old = TrainDrop.from_json('{"shas": {"api": "a1"}}')  # before 0.4 kept when
    assert old is not None and old.at is None


def test_a_prepare_record_round_trips() -> None:
    rec = PrepareRecord.from_json(PREPARE)
    assert rec.to_json() == PREPARE
    assert (rec.command, rec.ok, rec.exit_code, rec.output, rec.worktree) == (
        "make", False, 3, "no C compiler found\n", "/wt/core")


def test_the_store_writes_the_bytes_it_wrote_before_and_reads_them_typed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: AT)
    r = fakeredis.FakeRedis(decode_responses=True)
    keys = Keys("coord")
    signed = ChangeStore(r, keys, 30, (KEY,))
    signed.record_verify("PLAN-001", "TODO-101", "api", {"web": "w1", "api": "a1"},
                         sweep="s-1", run=2)
    signed.record_verify("PLAN-001", "TODO-102", "web", {"api": "a1"}, ok=False, exit_code=3,
                         reason="exit 3", last="boom", sweep="s-1", run=2)
    signed.note_sweep("PLAN-001", "s-1", 2, ["TODO-101"], last=True)
    signed.drop("PLAN-001", "TODO-102 failed", {"api": "a1"})
    unsigned = ChangeStore(r, keys, 30, ())
    unsigned.record_verify("PLAN-002", "TODO-201", "api", {"api": "a1"})
    unsigned.note_sweep("PLAN-002", "t-1", 0, ["TODO-201"], last=False)
    signed.set_prepare("PLAN-003", "core", command="make", ok=False, exit_code=3,
                       output="no C compiler found\n", worktree="/wt/core")
    assert r.hget(keys.change("PLAN-003"), "prepare:core") == PREPARE
    assert signed.read("PLAN-003").prepares == {"core": PrepareRecord.from_json(PREPARE)}
    stored = r.hgetall(keys.change("PLAN-001"))
    assert {f: stored[f] for f in SIGNED} == SIGNED
    assert r.hgetall(keys.change("PLAN-002")) == UNSIGNED
    st = signed.read("PLAN-001")
    assert st.verifies == {t.removeprefix("verify:"): VerifyRecord.from_json(v)
                           for t, v in SIGNED.items() if t.startswith("verify:")}
    assert st.pointer == SweepPointer.from_json(SIGNED["sweep"]) and st.sweep == "s-1"
    assert st.dropped == TrainDrop.from_json(SIGNED["dropped"])


def test_a_step_round_trips_and_says_what_it_holds() -> None:
    for text in STEPS.values():
        assert StepRecord.from_json(text).to_json() == text
    step = StepRecord.from_json(STEPS["reverting"])
    assert (step.state, step.landed, step.pre, step.over, step.revert, step.by, step.ident,
            step.why, step.reland, step.relanded) == (
        "reverting", "c1", "b1", "h1", "r2", "change revert", "Forge <forge@example.com>",
        None, None, None)
    again = StepRecord.from_json(STEPS["relanding"])
    assert (again.state, again.reland, again.reland_over) == ("landing", "c2", "r2")
    assert StepRecord.from_json(STEPS["relanded"]).relanded is True
    assert not step.empty


@pytest.mark.parametrize("name,fields", [
    ("landing", {"state": "landing"}),
    ("landed", {"state": "landed", "landed": "c1"}),
    ("not_landed", {"state": "not_landed", "why": "api: push refused"}),
    ("undo_reverting", {"state": "reverting", "landed": "c1", "revert": "r1"}),
    ("undo_failed", {"state": "revert_failed", "landed": "c1", "revert": "r1",
                     "why": "origin/main moved on to 0123456789ab"}),
    ("reverting", {"by": "change revert", "ident": "Forge <forge@example.com>", "pre": "b1",
                   "over": "h1", "revert": "r2", "landed": "c1", "state": "reverting"}),
    ("reverted", {"why": "already taken out of origin/main at h1", "state": "reverted",
                  "landed": "c1", "pre": "b1", "over": "h1", "revert": "r2",
                  "by": "change revert"}),
    ("refused", {"state": "landed", "landed": "c1", "pre": "b1", "why": "revert refused: no"}),
    ("relanded", {"relanded": True, "state": "landed", "landed": "c2", "pre": "r2"}),
])
def test_a_new_step_is_written_as_before(name: str, fields: dict[str, str | bool]) -> None:
    """The fields of a step written anew come in the one order they always were written
    in, whatever order they are given in."""
    assert StepRecord.new(**fields).to_json() == STEPS[name]


def test_a_step_changed_keeps_its_fields_in_place() -> None:
    reverted = StepRecord.from_json(STEPS["reverted"]).without("why")
    relanding = reverted.but(state="landing", reland="c2", reland_over="r2")
    assert relanding.to_json() == STEPS["relanding"]
    assert relanding.without("reland", "reland_over").but(state="reverted").to_json() == (
        '{"state": "reverted", "landed": "c1", "pre": "b1", "over": "h1", "revert": "r2", '
        '"by": "change revert"}')
    failed = StepRecord.from_json(STEPS["landed"]).but(state="revert_failed", why="untrusted")
    assert failed.to_json() == '{"state": "revert_failed", "landed": "c1", "why": "untrusted"}'


@pytest.mark.parametrize("text", [None, "", "{not json", "[1, 2]", '"landed"', "{}"])
def test_a_step_that_is_no_json_object_says_nothing(text: str | None) -> None:
    step = StepRecord.from_json(text)
    assert step.empty and step.state is None and step.landed is None


def test_a_lander_round_trips_and_an_unreadable_one_is_none() -> None:
    lander = LanderRecord.from_json(LANDER)
    assert lander is not None and lander.to_json() == LANDER
    assert (lander.host, lander.pid, lander.started, lander.op, lander.at) == (
        "build-1", 4242, "123456", "land", AT)
    for text in (None, "", "{}", "{not json", "[1]", '"build-1"'):
        assert LanderRecord.from_json(text) is None


def test_the_store_writes_steps_and_its_lander_as_before_and_reads_them_typed() -> None:
    r = fakeredis.FakeRedis(decode_responses=True)
    keys = Keys("coord")
    store = ChangeStore(r, keys, 30)
    lease = store.take_lease("api", 1)
    assert lease is not None
    for name, text in STEPS.items():
        # (each as a landing's step moves: begun, then what it became)
        assert store.step("PLAN-001", lease, name, StepRecord.new(state="landing"))
        assert store.step("PLAN-001", lease, name, StepRecord.from_json(text))
    store.set_lander("PLAN-001", LanderRecord.from_json(LANDER))
    stored = r.hgetall(keys.change("PLAN-001"))
    assert {f.removeprefix("step:"): v for f, v in stored.items() if f.startswith("step:")} \
        == STEPS
    assert stored["lander"] == LANDER
    r.hset(keys.change("PLAN-001"), "step:garbled", "{not json")
    st = store.read("PLAN-001")
    assert st.steps == {**{n: StepRecord.from_json(t) for n, t in STEPS.items()},
                        "garbled": StepRecord.of({})}
    assert st.step("reverted").by == "change revert" and st.step("nowhere").empty
    assert st.lander == LanderRecord.from_json(LANDER)
    store.set_lander("PLAN-001", None)
    assert store.read("PLAN-001").lander is None


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '"api"', "7", "null",
                                 '{"base": 5, "candidate": ["x"], "remote": "origin"}'])
def test_a_repo_record_that_is_not_the_stores_reads_as_empty_fields(raw: str) -> None:
    """A repo's record edited by hand in Redis into JSON that is not an object, or into
    fields that are not text: the change still reads (nothing crashes), and what is not
    text reads as empty, as a record that is not JSON at all does."""
    r = fakeredis.FakeRedis(decode_responses=True)
    keys = Keys("t")
    r.hset(keys.change("PLAN-1"), "repo:api", raw)
    rec = ChangeStore(r, keys, 30.0).read("PLAN-1").repos["api"]
    assert (rec.base, rec.base_sha, rec.candidate, rec.worktree) == ("", "", "", "")
    assert rec.remote == ("origin" if raw.startswith("{") else "")
