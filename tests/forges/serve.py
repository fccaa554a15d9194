"""A test forge to try ``land: pr`` on, from a shell (the tutorial "Landing a change through
pull requests" runs it): one of the fake forges of this folder (GitHub, GitLab or Gitea:
real HTTP on loopback, real bare repositories with a protected default branch, every
request checked against the forge's description), served in the background until
stopped, with what a reviewer does on a forge at hand.

    python tests/forges/serve.py start github --dir forge --port 8801 --token T \\
        --project acme/libcore --project acme/api --approvals 1
    python tests/forges/serve.py review --dir forge acme/api my-branch alice   # approves it
    python tests/forges/serve.py check --dir forge acme/api my-branch   # its CI passed
    python tests/forges/serve.py stop --dir forge

Each project's repository is ``<dir>/remotes/<owner>__<name>.git`` (clone it; a push to
its default branch is refused, as protection refuses it). Not a forge for anything but
trying coord: it keeps everything in memory and in ``<dir>``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: coord's repository on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

CONTROL = "/_serve/"


def _served(kind: str) -> Any:
    """The fake of ``kind``, taking a reviewer's and a maintainer's actions at
    ``/_serve/...`` (JSON bodies) beside the forge's API."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from tests.forges import FAKES

    class Served(FAKES[kind]):  # type: ignore[misc,valid-type]
        async def _endpoint(self, request: Request) -> Response:
            if not request.url.path.startswith(CONTROL):
                return await super()._endpoint(request)  # type: ignore[no-any-return]
            what = request.url.path[len(CONTROL):]
            body = json.loads(await request.body() or b"{}")
            try:
                if what == "review":
                    self.review(body["project"], self._number(body["project"], body["pr"]),
                                body["user"], body.get("state", "approved"))
                    # its webhook delivered (and answered) before the reviewer is told
                    await run_in_threadpool(self.settle, 30.0)
                elif what == "protect":
                    self.protect(body["project"], approvals=int(body.get("approvals", 0)),
                                 checks=list(body.get("checks") or []))
                elif what == "webhook":
                    self.add_webhook(body["url"], body["secret"])
                elif what == "check":
                    project = body["project"]
                    pr = self.projects[project].prs[self._number(project, body["pr"])]
                    check = body.get("check") or ("pipeline" if self.kind == "gitlab" else "ci")
                    self.set_check(project, self.projects[project].head_of(pr), check,
                                   body.get("state", "success"))
                    await run_in_threadpool(self.settle, 30.0)  # its webhook delivered
                else:
                    return JSONResponse({"error": f"no {what!r}"}, status_code=404)
            except (KeyError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse({"ok": True})

        def _number(self, project: str, pr: str) -> int:
            """A pull request by its number, or the open one of a branch."""
            if str(pr).isdigit():
                return int(pr)
            found = [x.number for x in self.projects[project].prs.values()
                     if x.head == pr and x.state == "open"]
            if not found:
                raise ValueError(f"{project} has no open pull request from {pr!r}")
            return found[-1]

    return Served


def _run(args: argparse.Namespace) -> None:
    """The server itself (the child of ``start``): serves until SIGTERM."""
    root = Path(args.dir).resolve()
    fake = _served(args.kind)(root, token=args.token)
    _start_on(fake, args.port)
    for project in args.project:
        fake.add_project(project)
        fake.protect(project, approvals=args.approvals, checks=args.checks)
    (root / "serve.json").write_text(json.dumps({"pid": os.getpid(), "port": fake.port,
                                                "api": fake.api, "kind": args.kind}))
    stop = False

    def term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    while not stop:
        time.sleep(0.2)
    fake.stop()


def _start_on(fake: Any, port: int) -> None:
    """Start ``fake`` on ``port`` (the fakes pick a free port: this one is asked for)."""
    import socket
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Route

    from tests.forges.server import METHODS

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    fake.port = sock.getsockname()[1]
    app = Starlette(routes=[Route("/{path:path}", fake._endpoint, methods=METHODS)])
    fake.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    threading.Thread(target=fake.server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    threading.Thread(target=fake._deliver, daemon=True).start()
    deadline = time.monotonic() + 20
    while not fake.server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the test forge did not start")
        time.sleep(0.02)


def _state(dir_: str) -> dict[str, Any]:
    path = Path(dir_) / "serve.json"
    if not path.exists():
        raise SystemExit(f"no test forge runs in {dir_} (start it first)")
    return dict(json.loads(path.read_text()))


def _post(dir_: str, what: str, body: dict[str, Any]) -> None:
    st = _state(dir_)
    req = urllib.request.Request(f"http://127.0.0.1:{st['port']}{CONTROL}{what}",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()


def _await(url: str, timeout: float = 60.0) -> None:
    """Until something listens at ``url``'s host and port (a receiver just started)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            if s.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0:
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"nothing listens at {url}")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="serve.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start a test forge in the background")
    s.add_argument("kind", choices=["github", "gitlab", "gitea"])
    s.add_argument("--dir", required=True, help="where its repositories and state live")
    s.add_argument("--port", type=int, default=8801)
    s.add_argument("--token", required=True, help="the API token it accepts")
    s.add_argument("--project", action="append", default=[], help="owner/name (repeat)")
    s.add_argument("--approvals", type=int, default=0, help="approvals each merge needs")
    s.add_argument("--checks", action="append", default=[], help="a required check (repeat)")
    s.add_argument("--foreground", action="store_true", help=argparse.SUPPRESS)
    r = sub.add_parser("review", help="a reviewer's review of a pull request")
    r.add_argument("--dir", required=True)
    r.add_argument("project")
    r.add_argument("pr", help="its number, or its branch")
    r.add_argument("user")
    r.add_argument("--state", default="approved",
                   choices=["approved", "changes_requested", "commented"])
    w = sub.add_parser("webhook", help="send the forge's events to URL, signed with SECRET")
    w.add_argument("--dir", required=True)
    w.add_argument("url")
    w.add_argument("--secret-env", required=True, help="the variable holding the secret")
    c = sub.add_parser("check", help="a CI's check on a pull request's head (GitLab: its "
                       "pipeline), as your CI would report it")
    c.add_argument("--dir", required=True)
    c.add_argument("project")
    c.add_argument("pr", help="its number, or its branch")
    c.add_argument("--check", default=None,
                   help="the check's name (default: GitLab's pipeline, else 'ci')")
    c.add_argument("--state", default="success", choices=["success", "failure", "pending"])
    t = sub.add_parser("stop", help="stop the test forge")
    t.add_argument("--dir", required=True)
    args = p.parse_args(argv)
    if args.cmd == "start" and args.foreground:
        _run(args)
    elif args.cmd == "start":
        Path(args.dir).mkdir(parents=True, exist_ok=True)
        (Path(args.dir) / "serve.json").unlink(missing_ok=True)
        log = open(Path(args.dir) / "serve.log", "w")  # noqa: SIM115 (the child's)
        child = subprocess.Popen([sys.executable, __file__, *(argv or sys.argv[1:]),
                                  "--foreground"], stdout=log, stderr=log,
                                 stdin=subprocess.DEVNULL, start_new_session=False)
        deadline = time.monotonic() + 60
        while not (Path(args.dir) / "serve.json").exists():
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the test forge did not start: see "
                                 f"{Path(args.dir) / 'serve.log'}")
            time.sleep(0.05)
        print(f"test {args.kind} forge: {_state(args.dir)['api']}")
    elif args.cmd == "review":
        _post(args.dir, "review", {"project": args.project, "pr": args.pr,
                                   "user": args.user, "state": args.state})
    elif args.cmd == "check":
        _post(args.dir, "check", {"project": args.project, "pr": args.pr,
                                  "check": args.check, "state": args.state})
    elif args.cmd == "webhook":
        _await(args.url)
        _post(args.dir, "webhook", {"url": args.url, "secret": os.environ[args.secret_env]})
    elif args.cmd == "stop":
        pid = int(_state(args.dir)["pid"])
        os.kill(pid, signal.SIGTERM)
        (Path(args.dir) / "serve.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
