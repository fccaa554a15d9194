"""The text rules `coord schema` gives editors are the loader's own (issue #42).

Each ``pattern`` of the catalog's JSON Schema is built from the constants a validator of
the loader uses (coordination/catalog/rules/patterns.py); here each is held to that validator
over generated text: the pattern matches exactly what the validator takes. A pattern is
read by Python (jsonschema: ``re.search``) and by ECMAScript (the YAML language server:
``new RegExp(p, "u")``); with node on PATH, both engines are asked the same questions.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

from coordination.catalog import models
from coordination.catalog.selection import selectors
from coordination.catalog.rules.selector_syntax import SELECTOR_PATTERN
from coordination.catalog.governance import DURATION_SCHEMA, parse_duration
from coordination.catalog.rules.patterns import at_most
from coordination.catalog.rules.schema import (
    BOOLEAN_TEXT_PATTERN,
    INTEGER_TEXT_PATTERN,
    NUMBER_TEXT_PATTERN,
)
from coordination.cli.schema import catalog_schema
from coordination.errors import UsageError

pytestmark = pytest.mark.timeout(120)
SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None  # as jsonschema reads "pattern"


def takes(check: Callable[[str], object], text: str) -> bool:
    try:
        check(text)
    except (ValueError, UsageError):
        return False
    return True


def texts(*tokens: str) -> st.SearchStrategy[str]:
    """Text made of ``tokens`` (and a few characters besides), where rules go wrong."""
    return st.lists(st.sampled_from([*tokens, " ", "\n", "\t", "-", ".", "/", ":", "a", "0",
                                     "1", "9", "\u00a0"]), max_size=9).map("".join)


# -- selectors (for_each) ------------------------------------------------------------------

@SETTINGS
@given(texts("...", "^", "!", ",", "&", "tag:", "role:", "changed:", "api", "x:y", "*", "..",
             "!...", "^...", "&!"))
@example("tag:")
@example("!...")
@example("...  ...")
@example("a....")
@example("changed: -x")
@example("a&!b")
@example("a &")
@example("api...&tag:x")
@example("a&changed:-x")
def test_the_selector_pattern_is_what_parse_takes(text: str) -> None:
    assert matches(SELECTOR_PATTERN, text) == takes(selectors.parse, text), text


# -- a pace's rate -------------------------------------------------------------------------

@SETTINGS
@given(texts("/", "10", "0", "30", "31", "720", "721", "0.5", "1.5", "h", "hour", "HOURS",
             "d", "days", "m", "min", "s", "sec", "week", "43200", "43201", "2592000"))
@example("0/hour")
@example("1/30d")
@example("1/30.0d")
@example("1/30.5d")
@example("5/0.0s")
def test_the_rate_pattern_is_what_parse_rate_takes(text: str) -> None:
    assert matches(models.RATE_PATTERN, text) == takes(models.parse_rate, text), text


# -- durations (soak, expires) -------------------------------------------------------------

@SETTINGS
@given(texts("30", "31", "29.9", "720", "721", "43200", "43201", "2592000", "2592001", "d",
             "h", "m", "s", "x", "0", ".5"))
@example("30d")
@example("30.0001d")
@example("720h ")
def test_the_duration_pattern_is_what_parse_duration_takes(text: str) -> None:
    pattern = DURATION_SCHEMA["anyOf"][1]["pattern"]  # type: ignore[index,call-overload]
    assert matches(pattern, text) == takes(parse_duration, text), text


@pytest.mark.parametrize("limit", [1, 9, 10, 30, 100, 101, 720, 43200, 2592000])
def test_at_most_matches_the_numbers_up_to_its_limit(limit: int) -> None:
    pattern = f"^{at_most(limit)}$"
    for whole in [*range(0, 40), limit - 1, limit, limit + 1, 10 * limit]:
        for frac in ("", ".0", ".00", ".5", ".001"):
            for zeros in ("", "0"):
                text = f"{zeros}{whole}{frac}"
                assert matches(pattern, text) == (float(text) <= limit), text
    for text in ("", ".5", "1.", "-1", "1e2", " 1"):
        assert not matches(pattern, text), text


# -- git names -----------------------------------------------------------------------------

@SETTINGS
@given(texts("main", "..", "//", ".lock", "release/", "-x", "_", "A", "é", "~", "@{"))
@example("main\n")
@example("a" * 201)
def test_the_branch_pattern_is_what_git_branch_takes(text: str) -> None:
    assert matches(models.BRANCH_PATTERN, text) == takes(models.git_branch, text), text


@SETTINGS
@given(texts("origin", "ext::", "fd::", "-", "--upload-pack=x", "git@h:a.git", "https://h/x",
             "\x00", "\x7f", "\x1f", "a+b::"))
@example("origin\n")
def test_the_remote_pattern_is_what_git_remote_takes(text: str) -> None:
    loader = bool(text) and takes(models.git_remote, text)  # (min_length=1 besides)
    assert matches(models.REMOTE_PATTERN, text) == loader, text


# -- webhooks ------------------------------------------------------------------------------

@SETTINGS
@given(texts("http://", "https://", "HTTP://", "ftp://", "h", "@", ":80", "[::1]", "?", "#",
             "user@", "x.example").filter(lambda t: not set(t) & set("\t\r\n")))
@example("http://\n")
@example(" http://x")
@example("http://user@:80/")
@example("http://@x")
@example("http://:[::1]")
def test_the_url_pattern_is_what_the_webhook_check_takes(text: str) -> None:
    # (urlsplit drops a tab or line break anywhere in a URL, "ht\ttp://x": not modelled,
    # so not generated; one after the scheme, as the only host, is an example)
    def check(url: str) -> None:
        models.NotifyTarget(url=url)

    try:
        loader = takes(check, text)
    except ValidationError:
        loader = False
    assert matches(models.NOTIFY_URL_PATTERN, text) == loader, text


# -- cache inputs --------------------------------------------------------------------------

@SETTINGS
@given(texts("..", "/", "a", "*", "**", ".env", "../", "/.."))
def test_the_input_glob_pattern_is_what_the_cache_check_takes(text: str) -> None:
    def check(glob: str) -> None:
        models.Cache(inputs=[glob])

    try:
        loader = takes(check, text)
    except ValidationError:
        loader = False
    assert matches(models.INPUT_GLOB_PATTERN, text) and text != "" or not loader
    if text:
        assert matches(models.INPUT_GLOB_PATTERN, text) == loader, text


# -- what pydantic's lax mode turns into a number, a boolean, a date ---------------------------

class _Lax(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    i: int = 0
    f: float = 0.0
    b: bool = False
    d: dt.date | None = None


def _lax(field: str, text: str) -> bool:
    try:
        _Lax(**{field: text})
    except ValidationError:
        return False
    return True


NUMBERISH = texts("1", "0", "_", ".", "e", "E", "+", "-", "12", "1_0", "inf", "nan", "0x",
                  "\u0661", "\r", "\x0b")
#: The forms people write a number in as text: the schema must take each.
INTEGERS = ["2", " 2 ", "+2", "-0", "02", "2.0", "2.00", "1\n"]
NUMBERS = [*INTEGERS, "600", "1.5", ".5", "1.", "6e2", "1E-3", " 1.5e3 ", "-2.5"]


@SETTINGS
@given(NUMBERISH)
@example("1.")
@example("1_0")
def test_integer_text_is_read_as_an_int_by_pydantic(text: str) -> None:
    if matches(INTEGER_TEXT_PATTERN, text):
        assert _lax("i", text), text  # never more than the loader takes


@SETTINGS
@given(NUMBERISH)
@example("1e400")
@example(" 1_0")
def test_number_text_is_read_as_a_float_by_pydantic(text: str) -> None:
    if re.fullmatch(r"\s*[+-]?[\d_.]*[eE][+-]?\d{3,}\s*", text):
        return  # 1e400: overflows to inf, refused by the loader; a bound is the loader's
    if matches(NUMBER_TEXT_PATTERN, text):
        assert _lax("f", text), text


def test_the_usual_forms_of_a_number_as_text_are_taken() -> None:
    assert [t for t in INTEGERS if not (matches(INTEGER_TEXT_PATTERN, t) and _lax("i", t))] == []
    assert [t for t in NUMBERS if not (matches(NUMBER_TEXT_PATTERN, t) and _lax("f", t))] == []
    assert not matches(INTEGER_TEXT_PATTERN, "2.5") and not matches(NUMBER_TEXT_PATTERN, "inf")


@SETTINGS
@given(st.sampled_from(["true", "false", "yes", "no", "on", "off", "t", "f", "y", "n", "1",
                        "0", "2", "maybe", "tru", "oui"]).flatmap(
    lambda w: st.tuples(st.just(w), st.lists(st.booleans(), min_size=len(w),
                                             max_size=len(w)))).map(
    lambda wc: "".join(c.upper() if up else c for c, up in zip(wc[0], wc[1]))))
@example(" true")
def test_boolean_text_is_what_pydantic_reads_as_a_bool(text: str) -> None:
    assert matches(BOOLEAN_TEXT_PATTERN, text) == _lax("b", text), text


@SETTINGS
@given(st.from_regex(r"\A\d{4}-\d{1,2}-\d{1,3}\Z") | texts("2026", "-", "01", "13", "31",
                                                             "32", "00"))
@example("2026-02-30")
@example("0")
def test_the_date_pattern_is_pydantics_form_of_a_day(text: str) -> None:
    loader = _lax("d", text)
    if loader and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        assert matches(models.ISO_DATE_PATTERN, text), text
    if matches(models.ISO_DATE_PATTERN, text) and not loader:
        with pytest.raises(ValueError):  # only a day that does not exist
            dt.date(*map(int, text.split("-")))


# -- every pattern, as Python and ECMAScript read it --------------------------------------------

def _patterns(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(_patterns(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(v) for v in node))
    return set()


SAMPLES = ["", " ", "\n", "main", "main\n", "a..b", "release/1.0", "x.lock", "-x", "ext::x",
           "origin", "git@h:a.git", "10/hour", "10/HOUR", "0/hour", "1/31d", "1/30d", "5/10s",
           "10m", "30d", "31d", "720h", "2026-01-05", "2026-13-01", "tag:", "tag:py", "!...",
           "...core,!web", "a....", "https://x.example/h", "ftp://x", "http://:80",
           "HTTP://u@x:1", "../x", ".env", "/abs", "a/../b", "COORD_HOOK_SECRET", "a b",
           "600", " 1.5e3 ", "1_0", "2.0", "yes", "On", "nope", "TODO-001", "api",
           "\u00a0x", "x\u00a0", "é"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_every_pattern_reads_alike_in_python_and_ecmascript() -> None:
    patterns = sorted(_patterns(catalog_schema()))
    assert len(patterns) >= 15, patterns
    js = ("const [ps, ss] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
          "console.log(JSON.stringify(ps.map(p => ss.map(s => new RegExp(p, 'u').test(s)))));")
    out = subprocess.run(["node", "-e", js], input=json.dumps([patterns, SAMPLES]),
                         capture_output=True, text=True, timeout=60, check=True)
    ecma = json.loads(out.stdout)
    for p, answers in zip(patterns, ecma):
        python = [matches(p, s) for s in SAMPLES]
        differ = [s for s, a, b in zip(SAMPLES, answers, python) if a != b]
        assert not differ, f"{p!r} reads {differ!r} otherwise in ECMAScript"
