"""Criteria with checks from the command line (`plan create|update --criterion T --check
CMD`, `todo create|update --acceptance T --check CMD`): pairing the two options."""

from __future__ import annotations

from coordination.errors import UsageError


def paired_criteria(texts: tuple[str, ...], checks: tuple[str, ...], flag: str
                    ) -> list[str | dict[str, str]]:
    """Criteria given as ``--<flag> TEXT`` and ``--check CMD`` options: the i-th check
    checks the i-th criterion (``--check ''``: that one has none). Checks, if any,
    come one per criterion, else exit 2 naming both counts."""
    if not checks:
        return list(texts)
    if len(checks) != len(texts):
        raise UsageError(f"--check is given {len(checks)} time(s) and --{flag} "
                         f"{len(texts)} time(s)",
                         hint=f"give one --check per --{flag}, in the same order "
                              "(--check '' for a criterion nobody checks)")
    return [{"text": t, "check": c} if c.strip() else t for t, c in zip(texts, checks)]
