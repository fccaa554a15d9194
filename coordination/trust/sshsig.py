"""Approvers who prove who they are: SSH signatures over a gate's binding.

With ``approvers: {allowed_signers: PATH}`` in the catalog (git's
``gpg.ssh.allowedSignersFile`` format: ``PRINCIPALS KEYTYPE KEY`` per line), a vote
counts only with a signature over its binding message (:func:`binding_message`),
made by ``coord approve`` with ``ssh-keygen -Y sign -n coord-approval`` and checked
by every reader with ``ssh-keygen -Y find-principals`` (which principals the
signing key belongs to) then ``ssh-keygen -Y verify -I PRINCIPAL`` (the signature
is that key's, over exactly this message, in this namespace). Never a home-made
format: the signature is OpenSSH's SSHSIG, the file git's.

The signing key is read out of the signature itself (:func:`key_fingerprint`), so
one key is one approver however many names the file gives it.

Many votes at once (``coord approve TODO-010`` over a template's thousands of
instances): one signature over the root of a Merkle tree of their binding messages
(:func:`sign_many`; RFC 9162's hashes, a leaf ``SHA-256(0x00 || message)``, a node
``SHA-256(0x01 || left || right)``), each vote keeping the signature and its own
audit path (:class:`Tree`). A reader checks one vote on its own: it hashes that
vote's binding message, folds the path up to a root and verifies the signature over
that root's message (:func:`tree_message`, a first line no single message has), so a
vote verifies only for a binding its approver signed, and a vote moved to another
instance (another binding) fails as a single signature would. Checks are
remembered for a minute in the process (:func:`verify`): a thousand votes under one
signature cost one ``ssh-keygen`` pair, not a thousand.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordination.errors import UsageError

#: The signature namespace of approvals (``-n``): a signature made for git commits
#: or for anything else never counts as an approval.
NAMESPACE = "coord-approval"
#: ssh-keygen's time limit per call (it reads a file and checks one signature).
TIMEOUT = 10.0


def binding_message(sweep_id: str, todo_id: str, binding: str, decision: str,
                    who: str) -> bytes:
    """What an approver signs: the sweep, the gate, the binding (what is approved:
    the spec's digest and the gate's predecessors' outcomes), the decision and the
    name it is given under. A signature for another gate, binding or name fails."""
    return (f"coord-approval v1\nsweep {sweep_id}\ngate {todo_id}\nbinding {binding}\n"
            f"decision {decision}\napprover {who}\n").encode()


def start_message(sweep_id: str, who: str) -> bytes:
    """What a sweep's starter signs (with ``approvers:``): the sweep and the name it is
    started under. Its first line differs from every approval's, so neither passes for
    the other; the key that signs it is the starter's, whatever the name says."""
    return f"coord-sweep-start v1\nsweep {sweep_id}\nstarter {who}\n".encode()


def tree_message(root: str, leaves: int) -> bytes:
    """What one signature over many votes signs: the root (hex) of the Merkle tree of
    their binding messages, and how many there are. Its first line is no binding's
    or start's, so neither passes for the other."""
    return f"coord-approval-tree v1\nroot {root}\nleaves {leaves}\n".encode()


def _leaf(message: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + message).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass(frozen=True)
class Tree:
    """Where one message sits under a signature over many (:func:`sign_many`): the
    tree's ``leaves`` and the audit path from the message up to the root, each step
    ``l<hex>`` (the sibling is on the left) or ``r<hex>`` (on the right)."""

    leaves: int
    path: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"leaves": self.leaves, "path": list(self.path)}

    @classmethod
    def of(cls, doc: object) -> Tree | None:
        """A vote's ``tree`` field, or None if it is not one (written by hand)."""
        if not isinstance(doc, Mapping):
            return None
        leaves, path = doc.get("leaves"), doc.get("path")
        if (not isinstance(leaves, int) or isinstance(leaves, bool) or leaves < 1
                or not isinstance(path, list) or len(path) > 64
                or not all(isinstance(p, str) and len(p) == 65 and p[0] in "lr"
                           for p in path)):
            return None
        return cls(leaves, tuple(path))

    def root(self, message: bytes) -> str | None:
        """The root the path folds ``message`` up to (hex); None for a malformed step."""
        h = _leaf(message)
        try:
            for step in self.path:
                sibling = bytes.fromhex(step[1:])
                h = _node(sibling, h) if step[0] == "l" else _node(h, sibling)
        except ValueError:
            return None
        return h.hex()

    def signed(self, message: bytes) -> bytes | None:
        """The message the signature over the tree signs, if ``message`` is in it at
        this path (:func:`tree_message`); None when the path is malformed."""
        root = self.root(message)
        return None if root is None else tree_message(root, self.leaves)


def merkle(messages: Sequence[bytes]) -> tuple[str, list[Tree]]:
    """The root (hex) of the tree of ``messages`` and each one's :class:`Tree`. A level
    of odd length carries its last node up unpaired (no duplicate: RFC 9162's shape)."""
    level = [_leaf(m) for m in messages]
    paths: list[list[str]] = [[] for _ in messages]
    where = list(range(len(messages)))  # message -> its node's index in the level
    while len(level) > 1:
        up = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            up.append(level[-1])
        for m, i in enumerate(where):
            if i % 2 == 0 and i + 1 < len(level):
                paths[m].append("r" + level[i + 1].hex())
            elif i % 2 == 1:
                paths[m].append("l" + level[i - 1].hex())
            where[m] = i // 2
        level = up
    return level[0].hex(), [Tree(len(messages), tuple(p)) for p in paths]


def sign_many(messages: Sequence[bytes], key: str | None, *, who: str = "",
              what: str = "approving") -> tuple[str, list[Tree]]:
    """One SSHSIG over the Merkle root of ``messages`` (:func:`tree_message`), and
    each message's :class:`Tree`: one ``ssh-keygen`` however many they are."""
    if not messages:
        raise ValueError("nothing to sign")
    root, trees = merkle(messages)
    return sign(tree_message(root, len(messages)), key, who=who, what=what), trees


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise UsageError("ssh-keygen is not installed: approvals with approvers: "
                         "(allowed_signers) need it to sign and check signatures",
                         hint="install OpenSSH's client (apt-get install openssh-client)")
    return found


def _agent_key(prefer: Iterable[str]) -> str | None:
    """A public key of the ssh-agent (the first ``prefer`` names, else the first)."""
    if not os.environ.get("SSH_AUTH_SOCK") or shutil.which("ssh-add") is None:
        return None
    res = subprocess.run(["ssh-add", "-L"], capture_output=True, text=True, timeout=TIMEOUT)
    keys = [line.strip() for line in res.stdout.splitlines()
            if res.returncode == 0 and line.strip().startswith(("ssh-", "ecdsa-", "sk-"))]
    wanted = set(prefer)
    for line in keys:
        if line.split()[-1] in wanted:
            return line
    return keys[0] if keys else None


def sign(message: bytes, key: str | None, *, who: str = "", what: str = "approving",
         ) -> str:
    """The armored SSHSIG of ``message`` by ``key`` (a private key file, or a public
    key file whose private half the ssh-agent holds); without ``key``, by the
    agent's key. Errors say which key and how to fix (``what`` is signed: approving,
    starting a sweep)."""
    exe = _ssh_keygen()
    with tempfile.TemporaryDirectory(prefix="coord-approve-") as tmp:
        if key:
            path = Path(key).expanduser()
            if not path.is_file():
                raise UsageError(f"COORD_APPROVE_KEY={key}: no such key file",
                                 hint="name your SSH private key (or its .pub with the key "
                                 "in ssh-agent), e.g. COORD_APPROVE_KEY=~/.ssh/id_ed25519")
            keyfile = str(path)
        else:
            pub = _agent_key([who])
            if pub is None:
                raise UsageError(
                    f"{what} needs an SSH signature (the catalog's approvers: names an "
                    "allowed-signers file) and there is no key to sign with",
                    hint="set COORD_APPROVE_KEY to your SSH private key, or add it to "
                    "ssh-agent (ssh-add)")
            keyfile = os.path.join(tmp, "agent.pub")
            Path(keyfile).write_text(pub + "\n")
        res = subprocess.run([exe, "-Y", "sign", "-n", NAMESPACE, "-f", keyfile],
                             input=message, capture_output=True, timeout=TIMEOUT)
    if res.returncode != 0 or b"BEGIN SSH SIGNATURE" not in res.stdout:
        why = res.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(f"ssh-keygen could not sign ({what}) with {key or 'the agent key'}"
                         f": {why[-1] if why else 'exit ' + str(res.returncode)}",
                         hint="COORD_APPROVE_KEY must name a private key without a passphrase "
                         "prompt, or a .pub whose private key ssh-agent holds")
    return res.stdout.decode().strip()


def _blob(signature: str) -> bytes:
    body = "".join(line.strip() for line in signature.strip().splitlines()
                   if line.strip() and "SSH SIGNATURE" not in line)
    return base64.b64decode(body, validate=True)


def _string(data: bytes, at: int) -> tuple[bytes, int]:
    n = int.from_bytes(data[at:at + 4], "big")
    if at + 4 + n > len(data):
        raise ValueError("truncated")
    return data[at + 4:at + 4 + n], at + 4 + n


def key_fingerprint(signature: str) -> str | None:
    """``SHA256:<base64>`` of the public key inside an SSHSIG (as ``ssh-keygen -l``
    prints it), None if it is not one."""
    try:
        data = _blob(signature)
        if not data.startswith(b"SSHSIG"):
            return None
        key, _ = _string(data, 6 + 4)  # magic, version
    except (ValueError, IndexError):
        return None
    digest = base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


@dataclass(frozen=True)
class Proof:
    """A signature that verified: its key, and every principal the file gives that key."""

    fingerprint: str
    principals: tuple[str, ...]
    principal: str  # the one it was verified for


#: How long a check is remembered in the process (seconds): ``ssh-keygen`` judges a
#: key's validity (``valid-before``) by the clock, so an answer is not kept for long.
REMEMBER = 60.0
#: (signature, message, allowed file's content, wanted, over) -> (until, answer)
_CHECKED: dict[tuple[str, bytes, bytes, tuple[str, ...] | None, str],
               tuple[float, Proof | str]] = {}


def verify(signature: str, message: bytes, allowed: Path,
           wanted: Iterable[str] | None, *,
           over: str = ("this gate's binding: signed for another gate, binding or name, "
                        "or altered")) -> Proof | str:
    """The proof of ``signature`` over ``message``: made by a key the ``allowed``
    file gives a principal of ``wanted`` (None: any); else why not (``over``: what the
    message is, and how a signature comes to fail on it). The same check again within
    :data:`REMEMBER` seconds, with the allowed-signers file unchanged (its content is
    part of the question), is answered from memory."""
    try:
        content = allowed.read_bytes()
    except OSError:
        content = b""  # (ssh-keygen says what is wrong with it)
    asked = (signature, message, hashlib.sha256(content).digest(),
             None if wanted is None else tuple(sorted(set(wanted))), over)
    now = time.monotonic()
    got = _CHECKED.get(asked)
    if got is not None and got[0] > now:
        return got[1]
    answer = _verify(signature, message, allowed, wanted, over)
    if len(_CHECKED) >= 4096:
        _CHECKED.clear()
    _CHECKED[asked] = (now + REMEMBER, answer)
    return answer


def verify_vote(signature: str, tree: object, message: bytes, allowed: Path,
                wanted: Iterable[str] | None) -> Proof | str:
    """:func:`verify` of a vote's signature over its binding ``message``: directly, or
    (``tree``: the vote's ``tree`` field, :func:`sign_many`) over the root its audit
    path folds ``message`` up to; a vote moved to another binding folds to another
    root, and fails."""
    if tree is None:
        return verify(signature, message, allowed, wanted)
    where = Tree.of(tree)
    signed = where.signed(message) if where is not None else None
    if signed is None:
        return "its tree (the path from its binding to what was signed) is malformed"
    return verify(signature, signed, allowed, wanted,
                  over="this gate's binding, in the votes its signature covers: signed "
                       "for other gates, bindings or names, or altered")


def _verify(signature: str, message: bytes, allowed: Path, wanted: Iterable[str] | None,
            over: str) -> Proof | str:
    fingerprint = key_fingerprint(signature)
    if fingerprint is None:
        return "its signature is not an SSH signature"
    exe = _ssh_keygen()
    with tempfile.NamedTemporaryFile("w", prefix="coord-vote-", suffix=".sig") as sig:
        sig.write(signature.strip() + "\n")
        sig.flush()
        found = subprocess.run([exe, "-Y", "find-principals", "-s", sig.name, "-f",
                                str(allowed), "-n", NAMESPACE],
                               capture_output=True, text=True, timeout=TIMEOUT)
        principals = tuple(sorted({p.strip() for line in found.stdout.splitlines()
                                   for p in line.split(",") if p.strip()}))
        if found.returncode != 0 or not principals:
            return f"its key {fingerprint} is not in {allowed}"
        pick = sorted(set(principals) & set(wanted)) if wanted is not None else list(principals)
        if not pick:
            return (f"its key {fingerprint} belongs to {', '.join(principals)}, none of "
                    "the gate's approvers")
        res = subprocess.run([exe, "-Y", "verify", "-f", str(allowed), "-I", pick[0], "-n",
                              NAMESPACE, "-s", sig.name], input=message.decode(),
                             capture_output=True, text=True, timeout=TIMEOUT)
    if res.returncode != 0:
        return f"its signature by {fingerprint} ({pick[0]}) does not verify over {over}"
    return Proof(fingerprint, principals, pick[0])


def principals(allowed: Path) -> set[str]:
    """Every principal the ``allowed`` file names (the first field of each line;
    ``*`` patterns are kept as written, and match nobody in particular)."""
    out: set[str] = set()
    for line in allowed.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.update(p for p in line.split()[0].split(",") if p)
    return out
