"""Approval signature check benchmark (issue #38 item 4): how long one vote's SSH
signature check takes, as every reader of a gate's votes makes it.

Run by hand or by `make bench`; never part of the test suite.

An allowed-signers file of --principals principals (default 100, one ed25519 key
each, the approver's line last: the file is read to its end), one vote signed by the
last one with ``ssh-keygen -Y sign -n coord-approval``; then --repeat checks (median,
after one warm-up) of :func:`coordination.trust.sshsig.verify` (``ssh-keygen -Y
find-principals`` then ``-Y verify``: two processes). Baseline, the same run: one
``ssh-keygen -Y verify`` process alone (what asking OpenSSH costs at all), and
``true`` as a process (what a process costs). Target: <= 50 ms a check.

    python bench/approval.py [--principals 100] [--repeat 30] [--json]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from coordination.trust import sshsig  # noqa: E402

T_CHECK_MS = 50.0  # one vote's signature check, ms, <=


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up (page cache, the binary)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = _report.arguments(__doc__, principals=100, repeat=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="coord-bench-approval-") as tmp:
        d = Path(tmp)
        lines = []
        for i in range(args.principals):
            key = d / f"k{i}"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"p{i}",
                            "-f", str(key)], check=True)
            pub = " ".join(Path(f"{key}.pub").read_text().split()[:2])
            lines.append(f"p{i}@example.com {pub}")
        allowed = d / "allowed_signers"
        allowed.write_text("\n".join(lines) + "\n")
        who = f"p{args.principals - 1}@example.com"
        message = sshsig.binding_message("PLAN-001-20260101-ab12", "TODO-002", "b" * 64,
                                         "approve", who)
        signature = sshsig.sign(message, str(d / f"k{args.principals - 1}"))
        sig = d / "vote.sig"
        sig.write_text(signature + "\n")

        def check() -> None:
            proof = sshsig.verify(signature, message, allowed, [who])
            assert not isinstance(proof, str), proof

        def verify_only() -> None:
            subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", who,
                            "-n", sshsig.NAMESPACE, "-s", str(sig)], input=message,
                           check=True, capture_output=True)

        coord_ms = median_ms(check, args.repeat)
        verify_ms = median_ms(verify_only, args.repeat)
        true_ms = median_ms(lambda: subprocess.run(["true"], check=True), args.repeat)
    figures = {"principals": args.principals, "repeat": args.repeat,
               "check_ms": round(coord_ms, 2), "ssh_keygen_verify_ms": round(verify_ms, 2),
               "process_ms": round(true_ms, 2),
               "ratio_to_one_verify": round(coord_ms / verify_ms, 2),
               "target_ms": T_CHECK_MS, "met": coord_ms <= T_CHECK_MS}
    if not args.json:
        print(f"one vote's signature check, {args.principals} principals: median "
              f"{coord_ms:.1f} ms ({'met' if coord_ms <= T_CHECK_MS else 'NOT met'}: "
              f"<= {T_CHECK_MS:.0f} ms)")
        print(f"  baseline: ssh-keygen -Y verify alone {verify_ms:.1f} ms "
              f"(x{coord_ms / verify_ms:.2f}), a `true` process {true_ms:.1f} ms")
    print(json.dumps(figures))
    _report.record("approval", [
        _report.figure(f"One vote's SSH signature check, {args.principals} principals "
                       f"(median of {args.repeat})", coord_ms, "ms", baseline=verify_ms,
                       baseline_name="one `ssh-keygen -Y verify`",
                       target=("<=", T_CHECK_MS, "ms")),
        _report.figure("A `true` process, for scale", true_ms, "ms"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
