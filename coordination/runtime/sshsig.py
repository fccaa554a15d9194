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
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

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


def verify(signature: str, message: bytes, allowed: Path,
           wanted: Iterable[str] | None, *,
           over: str = ("this gate's binding: signed for another gate, binding or name, "
                        "or altered")) -> Proof | str:
    """The proof of ``signature`` over ``message``: made by a key the ``allowed``
    file gives a principal of ``wanted`` (None: any); else why not (``over``: what the
    message is, and how a signature comes to fail on it)."""
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
