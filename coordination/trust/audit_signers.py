"""Whether an SSH-signed entry of the audit log is by the name it claims
(`coord audit --verify`).

A steering entry (``sweep.pause``, ``sweep.cancel``...: :mod:`coordination.sweeps.
control_log`) made under the catalog's ``approvers:`` keeps the SSH signature its actor
made over ``by <who>``, and the key's fingerprint. ``who`` itself is whatever the
actor's ``COORD_USER`` said: the signature, checked against the allowed-signers file,
says whose key made it. An entry whose key the file gives to other principals (or
whose signature does not verify over the message it keeps, or whose message names
another actor) is reported: the log names who claimed, the key says who signed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypedDict

from coordination.trust import sshsig

#: What a signature failing over a kept message means, as the report says it.
OVER = "the message the entry keeps (altered, or signed for another entry)"


class SignerProblem(TypedDict):
    seq: int
    who: str
    op: str
    problem: str


def signer_problems(entries: Iterable[Mapping[str, Any]], allowed: Path | None
                    ) -> list[SignerProblem]:
    """Each signed entry whose signer is not the name it claims (see the module);
    ``allowed``: the catalog's allowed-signers file (None: the catalog has no
    ``approvers:``, and a signed entry cannot be checked: said so)."""
    out: list[SignerProblem] = []
    for e in entries:
        d = e.get("decision")
        if not isinstance(d, Mapping) or not isinstance(d.get("signature"), str):
            continue
        who, op, seq = str(e.get("who")), str(e.get("op")), int(e.get("seq") or 0)

        def said(problem: str, who: str = who, op: str = op, seq: int = seq) -> None:
            out.append({"seq": seq, "who": who, "op": op, "problem": problem})

        message = d.get("signed_message")
        if not isinstance(message, str):
            said("signed, but keeps no signed message to check the signature over")
            continue
        if f"\nby {who}\n" not in f"\n{message}":
            said(f"its signed message names another actor than {who!r}")
            continue
        if allowed is None:
            said("signed, but the catalog names no allowed-signers file (approvers:) to "
                 "check who signed it against")
            continue
        proof = sshsig.verify(d["signature"], message.encode(), allowed, None, over=OVER)
        if not isinstance(proof, sshsig.Proof):
            said(proof)
        elif who not in proof.principals:
            said(f"signed by the key {proof.fingerprint}, which {allowed} gives to "
                 f"{', '.join(proof.principals)}, not to {who}")
    return out
