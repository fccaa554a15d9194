"""The alert rules of ``deploy/`` against a live ``coord metrics`` exposition under a
namespace that is not ``coord`` (issue #39 item 18: CoordQueueWithoutWorker spelled
``coord.repo.`` into its expression and never fired under another COORD_NAMESPACE).

promtool is not installed here, so each rule is read from the YAML and either
evaluated by :class:`PromQL` (the subset the instant rules use: selectors with
matchers, comparisons with a number, ``and on (...)``, ``label_replace``) against the
scrape, or, for a rule over a range (``rate``, ``increase``), checked for what it
names: every metric in the exposition, every label it matches, groups or joins on
carried by those metrics. No rule may spell a namespace.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.helpers import ROOT, Cluster, T, wait_until
from tests.integration.sentinel_bed import free_port

pytestmark = pytest.mark.timeout(120)

RULES = ROOT / "deploy" / "prometheus" / "coord-rules.yml"
NAMESPACE = "team2"

Labels = tuple[tuple[str, str], ...]
Series = dict[Labels, float]  # labels (with __name__) -> value


class Unsupported(Exception):
    """An expression outside the evaluated subset (checked by name instead)."""


_TOKEN = re.compile(r'\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>"(?:[^"\\]|\\.)*")|'
                    r'(?P<op>==|!=|>=|<=|=~|!~|[(){},=<>\[\]/+*-])|(?P<id>[A-Za-z_:][\w:]*))')


def tokens(text: str) -> list[str]:
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot read {text[pos:]!r}")
        out.append(m.group().strip())
        pos = m.end()
    return out


def unquote(s: str) -> str:
    return bytes(s[1:-1], "utf-8").decode("unicode_escape")


@dataclass
class PromQL:
    """A recursive-descent evaluator of the instant-vector subset the rules use."""

    samples: list[tuple[str, dict[str, str], float]]

    def eval(self, expr: str) -> Series:
        self.t, self.i = tokens(expr), 0
        out = self._and()
        if self.i != len(self.t):
            raise Unsupported(f"unexpected {self.t[self.i]!r}")
        return out

    # -- grammar ----------------------------------------------------------------------
    def _peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def _take(self, want: str | None = None) -> str:
        tok = self._peek()
        if tok is None or (want is not None and tok != want):
            raise Unsupported(f"expected {want!r}, got {tok!r}")
        self.i += 1
        return tok

    def _labels_list(self) -> list[str]:
        self._take("(")
        names: list[str] = []
        while self._peek() != ")":
            names.append(self._take())
            if self._peek() == ",":
                self._take(",")
        self._take(")")
        return names

    def _and(self) -> Series:
        left = self._cmp()
        while self._peek() == "and":
            self._take("and")
            on: list[str] | None = None
            if self._peek() == "on":
                self._take("on")
                on = self._labels_list()
            right = self._cmp()
            keys = {self._key(k, on) for k in right}
            left = {k: v for k, v in left.items() if self._key(k, on) in keys}
        return left

    @staticmethod
    def _key(labels: Labels, on: list[str] | None) -> Labels:
        if on is None:
            return tuple((k, v) for k, v in labels if k != "__name__")
        d = dict(labels)
        return tuple((k, d.get(k, "")) for k in sorted(on))

    def _cmp(self) -> Series:
        left = self._unary()
        op = self._peek()
        if op in (">", "<", "==", "!=", ">=", "<="):
            self._take()
            num = self._take()
            if not re.fullmatch(r"\d+(\.\d+)?", num):
                raise Unsupported(f"comparison with {num!r}")
            n = float(num)
            test = {">": n.__lt__, "<": n.__gt__, "==": n.__eq__, "!=": n.__ne__,
                    ">=": n.__le__, "<=": n.__ge__}[op]
            # A filtering comparison keeps the series (and drops __name__, as Prometheus).
            return {tuple(p for p in k if p[0] != "__name__"): v
                    for k, v in left.items() if test(v)}
        return left

    def _unary(self) -> Series:
        tok = self._peek()
        if tok == "(":
            self._take("(")
            inner = self._and()
            self._take(")")
            return inner
        if tok == "label_replace":
            self._take()
            self._take("(")
            inner = self._and()
            dst, repl, src, regex = [self._arg() for _ in range(4)]
            self._take(")")
            out: Series = {}
            for k, v in inner.items():
                d = dict(k)
                m = re.fullmatch(regex, d.get(src, ""))
                if m:
                    d[dst] = re.sub(r"\$(\d+)", lambda g: m.group(int(g.group(1))) or "", repl)
                out[tuple(sorted(d.items()))] = v
            return out
        if tok is None or not re.fullmatch(r"[A-Za-z_:][\w:]*", tok) or self.i + 1 < len(
                self.t) and self.t[self.i + 1] == "(":
            raise Unsupported(f"{tok!r}")
        return self._selector()

    def _arg(self) -> str:
        self._take(",")
        s = self._take()
        if not s.startswith('"'):
            raise Unsupported(f"argument {s!r}")
        return unquote(s)

    def _selector(self) -> Series:
        name = self._take()
        matchers: list[tuple[str, str, str]] = []
        if self._peek() == "{":
            self._take("{")
            while self._peek() != "}":
                label, op, value = self._take(), self._take(), unquote(self._take())
                matchers.append((label, op, value))
                if self._peek() == ",":
                    self._take(",")
            self._take("}")
        if self._peek() == "[":
            raise Unsupported("range vector")
        out: Series = {}
        for sname, labels, number in self.samples:
            if sname != name or not all(_match(labels.get(l, ""), op, v)
                                        for l, op, v in matchers):
                continue
            out[tuple(sorted({**labels, "__name__": sname}.items()))] = number
        return out


def _match(have: str, op: str, want: str) -> bool:
    if op == "=":
        return have == want
    if op == "!=":
        return have != want
    if op == "=~":
        return re.fullmatch(want, have) is not None
    if op == "!~":
        return re.fullmatch(want, have) is None
    raise Unsupported(op)


def names_and_labels(expr: str) -> tuple[set[str], set[str]]:
    """The metric names an expression reads and the labels it matches, groups or joins
    on (``by``, ``on``, ``without``, ``ignoring``, ``{label op ...}``)."""
    metrics = set(re.findall(r"\b((?:celery|coord)_[a-z0-9_]+)\b", expr))
    labels: set[str] = set()
    for group in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr):
        labels.update(x.strip() for x in group.split(",") if x.strip())
    for block in re.findall(r"\{([^}]*)\}", expr):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", block))
    return metrics, labels


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as res:
            return str(res.read().decode()) if res.status == 200 else None
    except OSError:
        return None


def test_every_rule_works_under_another_namespace(cluster: Cluster) -> None:
    c = cluster
    c.env["COORD_NAMESPACE"] = NAMESPACE
    c.write_catalog({"a": 1, "b": 1}, [T("TODO-001", "a", "true"), T("TODO-002", "b", "true")])
    # A run of b's (its worker runs it: the histograms get samples), then a todo of a
    # and no worker for a: its message waits in team2.repo.a.
    c.start_workers(["b"])
    res = c.cli("todo", "run", "TODO-002", "--wait", "--json", "--no-sync")
    assert res.returncode == 0, res.stderr
    res = c.cli("todo", "run", "TODO-001", "--json", "--no-sync")
    assert res.returncode == 0, res.stderr
    port = free_port()
    c.popen("metrics", "--port", str(port))
    text = wait_until(lambda: (t := scrape(port)) and f'"{NAMESPACE}.repo.a"' in t and t, 60,
                      "a scrape showing the queued message")
    samples = [(s.name, dict(s.labels), float(s.value))
               for fam in text_string_to_metric_families(text) for s in fam.samples]
    by_name: dict[str, set[str]] = {}
    for name, have, _v in samples:
        by_name.setdefault(name, set()).update(have)
    assert any(n == "celery_queue_length" and l == {"queue_name": f"{NAMESPACE}.repo.a"} and v > 0
               for n, l, v in samples), text
    doc = yaml.safe_load(RULES.read_text())
    rules = {r["alert"]: str(r["expr"]) for g in doc["groups"] for r in g["rules"]}
    evaluated: dict[str, Series] = {}
    for alert, expr in rules.items():
        # No namespace is spelled: a queue is matched by its label, whatever its prefix.
        assert not re.search(r'"coord\.|coord\.repo', expr), (alert, expr)
        metrics, used = names_and_labels(expr)
        # coord_redis_replicas is exposed under Sentinel only (tests/integration/
        # test_sentinel.py scrapes it there).
        for m in metrics - {"coord_redis_replicas"}:
            assert m in by_name, (alert, m, sorted(by_name))
        carried: set[str] = set().union(*(by_name.get(m, set()) for m in metrics))
        assert used <= carried, (alert, used - carried)
        try:
            evaluated[alert] = PromQL(samples).eval(expr)
        except Unsupported:
            continue
    # The instant rules were evaluated, and those that must fire here do.
    assert {"CoordQueueWithoutWorker", "CoordUnattendedRepos", "CoordRedisUnreachable",
            "CoordRepoBreakerOpen", "CoordQueueBacklog"} <= set(evaluated), sorted(evaluated)
    fired = evaluated["CoordQueueWithoutWorker"]
    assert [dict(k).get("queue_name") for k in fired] == [f"{NAMESPACE}.repo.a"], fired
    assert evaluated["CoordUnattendedRepos"], text
    assert not evaluated["CoordRedisUnreachable"] and not evaluated["CoordRepoBreakerOpen"]
    # A live worker on the repo silences it (the same scrape, the worker gauge at 1).
    served = [(n, l, 1.0 if n == "coord_workers_live" and l.get("repo") == "a" else v)
              for n, l, v in samples]
    assert PromQL(served).eval(rules["CoordQueueWithoutWorker"]) == {}


def test_the_evaluator_sees_a_namespace_spelled_into_a_rule() -> None:
    """What 0.4's rule did under team2: nothing, though a queue had no worker."""
    samples = [("celery_queue_length", {"queue_name": "team2.repo.a"}, 3.0),
               ("coord_workers_live", {"repo": "a", "queue_name": "team2.repo.a"}, 0.0)]
    old = ('celery_queue_length{queue_name=~".+\\\\.repo\\\\..+"} > 0 and on (queue_name) '
           '(label_replace(coord_workers_live, "queue_name", "coord.repo.$1", "repo", "(.+)") == 0)')
    assert PromQL(samples).eval(old) == {}
    samples = [(n, {**l, "queue_name": l["queue_name"].replace("team2", "coord")}, v)
               for n, l, v in samples]
    assert PromQL(samples).eval(old) != {}  # under `coord` it fired
    with pytest.raises(Unsupported):
        PromQL(samples).eval("increase(coord_lost_runs_total[30m]) > 3")
