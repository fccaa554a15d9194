"""``mask_env:``'s masking (coordination/sweeps/runlogs/masking.py): whole values, values split
across reads, pieces at a cut, values too short to mask, and every name's source."""

from __future__ import annotations

import pytest

from coordination.sweeps.runlogs.masking import MASK, Masker, masked_names, secret_values

pytestmark = pytest.mark.timeout(30)

SECRET = "s3cr3t-t0ken-XYZ"


def test_values_come_from_the_todo_env_then_the_worker_and_short_ones_are_left() -> None:
    got = secret_values(["A", "B", "C", "D", "E"],
                        {"A": SECRET, "C": "abc", "E": ""},
                        {"A": "worker-value", "B": "from-the-worker", "D": "line-one\nline-two\nx"})
    # A: the todo's value wins; C: 3 characters (under MIN_CHARS); E: empty; D: whole + lines
    assert set(got) == {SECRET, "from-the-worker", "line-one\nline-two\nx", "line-one",
                        "line-two"}
    assert got[0] == "line-one\nline-two\nx"  # longest first


def test_text_masks_every_value_and_leaves_the_rest() -> None:
    m = Masker([SECRET, "abcd"])
    assert m.text(f"token={SECRET}; again {SECRET}; abc abcd") == (
        f"token={MASK}; again {MASK}; abc {MASK}")
    assert Masker().text(SECRET) == SECRET and not Masker()


def test_a_value_split_across_reads_is_masked_whole() -> None:
    m = Masker([SECRET])
    for cut in range(1, len(SECRET)):
        s = m.stream()
        out = s.feed("before " + SECRET[:cut]) + s.feed(SECRET[cut:] + " after") + s.end()
        assert out == f"before {MASK} after", cut


def test_one_character_at_a_time() -> None:
    m = Masker([SECRET])
    s = m.stream()
    text = f"x{SECRET}y{SECRET}"
    out = "".join(s.feed(c) for c in text) + s.end()
    assert out == f"x{MASK}y{MASK}"


def test_pieces_at_a_cut_are_masked_when_long_enough() -> None:
    m = Masker([SECRET])
    assert m.text(SECRET[5:] + " rest", head=True) == MASK + " rest"
    assert m.text("rest " + SECRET[:6], tail=True) == "rest " + MASK
    assert m.text(SECRET[-3:] + " rest", head=True) == SECRET[-3:] + " rest"  # 3 chars: kept
    s = m.stream()
    assert s.feed("killed mid-print: " + SECRET[:9]) + s.end() == "killed mid-print: " + MASK


def test_an_output_tail_cut_inside_a_value_masks_its_piece() -> None:
    m = Masker([SECRET])
    tail = (f"--- stdout (last 20 chars of 9000 bytes) ---\n{SECRET[4:]} end\n"
            f"--- stderr ---\nwarn {SECRET}")
    assert m.tail_text(tail) == (f"--- stdout (last 20 chars of 9000 bytes) ---\n{MASK} end\n"
                                 f"--- stderr ---\nwarn {MASK}")


def test_names_merge_the_catalog_the_repo_and_the_todo() -> None:
    from coordination.catalog.models import Catalog

    cat = Catalog.model_validate({
        "version": 1, "mask_env": ["TOP"], "repos": [{"name": "a", "mask_env": ["REPO"]}],
        "coordination": {"todos": [{"id": "TODO-001", "repo": "a", "task": "t",
                                    "mask_env": ["OWN", "TOP"]}]}})
    assert masked_names(cat, "a", cat.coordination.todos[0].mask_env) == ["OWN", "REPO", "TOP"]
    assert masked_names(cat, "gone") == ["TOP"]


def test_a_values_base64_and_cased_forms_are_masked_too() -> None:
    """#78: `echo "$TOKEN" | base64` and `${TOKEN,,}` printed it in clear."""
    import base64

    value = "ghp_MixedCaseToken0123456789"
    m = Masker([value])
    for printed in (value.lower(), value.upper(),
                    base64.b64encode((value + "\n").encode()).decode(),
                    base64.urlsafe_b64encode(("x" + value).encode()).decode()):
        out = m.text(f"before {printed} after")
        assert MASK in out and printed not in out, out
        core = printed[2:-4] if len(printed) > 10 else printed
        assert core not in out, out
    stream = m.stream()
    encoded = base64.b64encode(value.encode()).decode()
    text = stream.feed("log: " + encoded[:9]) + stream.feed(encoded[9:] + " done\n") + stream.end()
    assert encoded not in text and MASK in text, text
