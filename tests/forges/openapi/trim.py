"""Make the trimmed OpenAPI descriptions the fake forges validate against.

Only the operations coord calls are kept, with every component they reference
(transitively), and without prose (descriptions, examples, docs links): the whole of
GitHub's description is 13 MB; the operations coord uses need a few hundred kB.

    python tests/forges/openapi/trim.py github [api.github.com.json]

without a file it runs ``npm pack @octokit/openapi@VERSION`` in a temporary directory
(the npm registry) and reads ``generated/api.github.com.json`` from the package; the
version is :data:`GITHUB_PACKAGE`'s, written into the output's ``x-coord-source``.

    python tests/forges/openapi/trim.py github-graphql [schema.json]

makes ``github.graphql``: the GraphQL mutations coord sends (a pull request's draft
state, which REST cannot change, and ``enqueuePullRequest`` for a merge queue), their
input and payload types, the query coord reads a pull request's merge queue entry and
merge with (``repository { pullRequest(number:) }``) and the fields of the types it
reads (:data:`GRAPHQL_TYPE_FIELDS`), with the enums and scalars those name, printed
from ``@octokit/graphql-schema``'s introspection
(:data:`GRAPHQL_PACKAGE`; without a file, by ``npm pack``). The whole schema does not
pass graphql-core's own schema validation (fields deprecated where their interface's
are not), so a trimmed, valid one is what the fake checks and runs queries against.

Gitea's and GitLab's descriptions are not regenerated here: see the ``x-coord-source``
of ``gitea.json`` and ``gitlab.json`` for where each came from and what covers what.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GITHUB_PACKAGE = "@octokit/openapi@23.0.2"
GRAPHQL_PACKAGE = "@octokit/graphql-schema@15.26.1"
GRAPHQL_MUTATIONS = ("convertPullRequestToDraft", "markPullRequestReadyForReview",
                     "enqueuePullRequest")
#: The fields kept of each object type the mutations return or coord reads (a pull
#: request, its merge queue entry and merge in one read: ``repository(owner:, name:)
#: { pullRequest(number:) { ... } }``), each with its arguments.
GRAPHQL_TYPE_FIELDS = {"Query": ("repository",),
                       "Repository": ("id", "pullRequest"),
                       "PullRequest": ("id", "isDraft", "number", "merged", "state",
                                       "headRefOid", "mergeCommit", "mergeQueueEntry"),
                       "Commit": ("id", "oid"),
                       "MergeQueueEntry": ("id", "position", "state")}
#: The kept types that implement Node (each has its ``id``).
GRAPHQL_NODES = ("Repository", "PullRequest", "Commit")

#: (path, method) of every GitHub REST operation coord's client calls.
GITHUB_OPERATIONS: list[tuple[str, str]] = [
    ("/user", "get"),
    # the repository's own merge settings (allow_merge_commit, ...), read before a landing
    ("/repos/{owner}/{repo}", "get"),
    ("/repos/{owner}/{repo}/pulls", "get"),
    ("/repos/{owner}/{repo}/pulls", "post"),
    ("/repos/{owner}/{repo}/pulls/{pull_number}", "get"),
    ("/repos/{owner}/{repo}/pulls/{pull_number}", "patch"),
    ("/repos/{owner}/{repo}/pulls/{pull_number}/merge", "put"),
    ("/repos/{owner}/{repo}/pulls/{pull_number}/reviews", "get"),
    ("/repos/{owner}/{repo}/issues", "get"),
    # coord issue link: a forge issue opened, read, edited (title, state), commented on
    ("/repos/{owner}/{repo}/issues", "post"),
    ("/repos/{owner}/{repo}/issues/{issue_number}", "get"),
    ("/repos/{owner}/{repo}/issues/{issue_number}", "patch"),
    ("/repos/{owner}/{repo}/issues/{issue_number}/labels", "post"),
    ("/repos/{owner}/{repo}/issues/{issue_number}/labels", "put"),
    ("/repos/{owner}/{repo}/issues/{issue_number}/comments", "post"),
    ("/repos/{owner}/{repo}/statuses/{sha}", "post"),
    ("/repos/{owner}/{repo}/commits/{ref}/status", "get"),
    ("/repos/{owner}/{repo}/commits/{ref}/check-runs", "get"),
    ("/repos/{owner}/{repo}/branches/{branch}", "get"),
    ("/repos/{owner}/{repo}/branches/{branch}/protection", "get"),
    ("/repos/{owner}/{repo}/rules/branches/{branch}", "get"),
    # a GitHub App (forge: auth: app): the repo's installation, its installation token
    ("/repos/{owner}/{repo}/installation", "get"),
    ("/app/installations/{installation_id}/access_tokens", "post"),
]

PROSE = {"summary", "examples", "example", "externalDocs", "x-github",
         "x-githubEnterpriseOverlays", "tags"}


def _strip(node: Any, *, in_properties: bool = False) -> Any:
    """``node`` without prose (a property may itself be named ``description``)."""
    if isinstance(node, dict):
        # A description is emptied, not dropped: a response object requires one.
        return {k: "" if (k == "description" and isinstance(v, str) and not in_properties)
                else _strip(v, in_properties=(k == "properties"))
                for k, v in node.items() if in_properties or k not in PROSE}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _refs(node: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref)
        for v in node.values():
            out |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= _refs(v)
    return out


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def trim(doc: dict[str, Any], operations: list[tuple[str, str]],
         source: dict[str, str]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, method in operations:
        item = doc["paths"][path]
        paths.setdefault(path, {})[method] = _strip(item[method])
        if "parameters" in item:
            paths[path]["parameters"] = _strip(item["parameters"])
    out: dict[str, Any] = {"openapi": doc["openapi"], "info": {
        "title": doc["info"]["title"], "version": doc["info"]["version"]},
        # The fake serves GitHub Enterprise's way (the REST root at /api/v3), which is
        # what a bare http://127.0.0.1:PORT in forge: api: becomes.
        "x-coord-source": source, "servers": [{"url": "/api/v3"}], "paths": paths,
        "components": {}}
    todo, seen = _refs(paths), set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, section, name = ref.lstrip("#/").split("/", 2)
        node = _strip(_resolve(doc, ref))
        out["components"].setdefault(section, {})[name] = node
        todo |= _refs(node) - seen
    out["components"] = {k: dict(sorted(v.items()))
                         for k, v in sorted(out["components"].items())}
    return out


def from_package(package: str, member_name: str, path: Path | None) -> dict[str, Any]:
    """The JSON file ``member_name`` of npm ``package`` (``path``: a copy of it here)."""
    if path is None:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", package, "--silent"], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
            tgz = next(Path(tmp).glob("*.tgz"))
            with tarfile.open(tgz) as tar:
                member = tar.extractfile(member_name)
                assert member is not None
                return dict(json.load(member))
    return dict(json.loads(path.read_text()))


def _args(field: Any) -> str:
    """A kept field's arguments as the schema declares them (their defaults left out)."""
    if not field.args:
        return ""
    return "(" + ", ".join(f"{n}: {a.type}" for n, a in field.args.items()) + ")"


def github_graphql(path: Path | None) -> str:
    import graphql

    data = from_package(GRAPHQL_PACKAGE, "package/schema.json", path)
    full = graphql.build_client_schema(data.get("data", data))
    mutation = full.mutation_type
    assert mutation is not None
    lines = [f'"""Trimmed from {GRAPHQL_PACKAGE} (schema.json) by tests/forges/openapi/trim.py:',
             'the mutations coord sends, their types, and the fields coord reads."""',
             "schema { query: Query mutation: Mutation }", "",
             "interface Node {\n  id: ID!\n}", "", "type Mutation {"]
    types: list[Any] = []
    for name in GRAPHQL_MUTATIONS:
        field = mutation.fields[name]
        arg = field.args["input"]
        lines.append(f"  {name}(input: {arg.type}): {field.type}")
        types += [graphql.get_named_type(arg.type), graphql.get_named_type(field.type)]
    lines += ["}", ""]
    for t in types:
        lines += [graphql.print_type(t), ""]
    named: list[Any] = []  # the enums and custom scalars the kept fields and inputs name
    for t in types:
        named += [graphql.get_named_type(f.type) for f in t.fields.values()]
    for type_name, fields in GRAPHQL_TYPE_FIELDS.items():
        obj = full.get_type(type_name)
        assert isinstance(obj, graphql.GraphQLObjectType)
        node = " implements Node" if type_name in GRAPHQL_NODES else ""
        lines.append(f"type {type_name}{node} {{")
        lines += [f"  {f}{_args(obj.fields[f])}: {obj.fields[f].type}" for f in fields]
        lines += ["}", ""]
        named += [graphql.get_named_type(obj.fields[f].type) for f in fields]
        named += [graphql.get_named_type(a.type) for f in fields
                  for a in obj.fields[f].args.values()]
    seen: set[str] = set()
    for t in named:
        if (isinstance(t, (graphql.GraphQLEnumType, graphql.GraphQLScalarType))
                and not graphql.is_specified_scalar_type(t) and t.name not in seen):
            seen.add(t.name)
            lines += [graphql.print_type(t), ""]
    text = "\n".join(lines)
    graphql.build_schema(text)  # the trimmed schema is a valid one
    return text


def main(argv: list[str]) -> None:
    kind = argv[0] if argv else "github"
    given = Path(argv[1]) if len(argv) > 1 else None
    if kind == "github-graphql":
        (HERE / "github.graphql").write_text(github_graphql(given))
        return
    if kind != "github":
        sys.exit(f"{kind}: only github's descriptions are regenerated by this script")
    doc = from_package(GITHUB_PACKAGE, "package/generated/api.github.com.json", given)
    source = {"package": GITHUB_PACKAGE, "file": "generated/api.github.com.json",
              "regenerate": "python tests/forges/openapi/trim.py github"}
    out = trim(doc, GITHUB_OPERATIONS, source)
    (HERE / "github.json").write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
