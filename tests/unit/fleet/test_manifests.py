"""Manifest readers per ecosystem on real-shaped files: what each repo provides and
requires, with the right type and the file and line it came from."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from coordination.fleet import manifests as dm
from coordination.fleet.manifests import Requirement

pytestmark = pytest.mark.timeout(30)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def reqs(m: dm.Manifests) -> dict[str, tuple[str, str, int, str | None]]:
    return {r.package[1]: (r.type, r.file, r.line, r.constraint) for r in m.requires}


def test_pyproject_pep621_extras_markers_groups_and_build(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"pyproject.toml": '''
        [build-system]
        requires = ["setuptools>=68", "Acme_Build_Tools"]

        [project]
        name = "Acme.API"
        dependencies = [
            "acme-core[postgres,redis] >=2.1, <3; python_version >= '3.11'",
            "requests",
        ]

        [project.optional-dependencies]
        postgres = ["acme_pg>=1"]
        test = ["acme-testkit==0.4.*", "requests"]
        dev = ["acme-lint"]

        [dependency-groups]
        docs = ["acme-docs-theme"]
        typing = [{include-group = "docs"}, "acme-stubs"]
    '''}))
    assert m.provides == {("python", "acme-api")}
    got = reqs(m)
    assert got["acme-build-tools"] == ("build", "pyproject.toml", 2, None)
    assert got["acme-core"] == ("runtime", "pyproject.toml", 7, ">=2.1, <3")  # as written
    # named twice: each where it is written in its own section
    assert [(r.type, r.line) for r in m.requires if r.package[1] == "requests"] == [
        ("runtime", 8), ("dev", 13)]
    assert got["acme-pg"] == ("optional", "pyproject.toml", 12, ">=1")  # an extra
    assert got["acme-testkit"] == ("dev", "pyproject.toml", 13, "==0.4.*")  # test extra
    assert got["acme-lint"][:3] == ("dev", "pyproject.toml", 14)
    assert got["acme-docs-theme"][:3] == ("dev", "pyproject.toml", 17)
    assert got["acme-stubs"][:3] == ("dev", "pyproject.toml", 18)
    assert "python" in m.tags and m.problems == []


def test_poetry_tables_and_groups(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"pyproject.toml": '''
        [tool.poetry]
        name = "billing"

        [tool.poetry.dependencies]
        python = "^3.11"
        acme-core = {version = "^2.0", extras = ["pg"]}

        [tool.poetry.group.test.dependencies]
        acme_testkit = "*"

        [tool.poetry.dev-dependencies]
        acme-lint = "^1"
    '''}))
    assert m.provides == {("python", "billing")}
    got = reqs(m)
    assert "python" not in got
    assert got["acme-core"] == ("runtime", "pyproject.toml", 6, "^2.0")
    assert got["acme-testkit"] == ("dev", "pyproject.toml", 9, "*")  # a group
    assert got["acme-lint"] == ("dev", "pyproject.toml", 12, "^1")


def test_requirements_files_options_continuations_and_types(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "requirements.txt": '''
            # pinned by pip-compile
            --index-url https://pypi.example/simple
            -r requirements-base.txt
            -e ./vendored
            acme-core[pg]==2.3.1 \\
                --hash=sha256:abc
            Acme.Events>=1 ; sys_platform == "linux"  # the bus
            git+https://example.com/x.git#egg=x
        ''',
        "requirements-test.txt": "acme-testkit\n",
        "requirements/dev.txt": "acme-lint\n",
    }))
    got = reqs(m)
    assert got["acme-core"] == ("runtime", "requirements.txt", 5, "==2.3.1")
    assert got["acme-events"] == ("runtime", "requirements.txt", 7, ">=1")
    assert got["acme-testkit"] == ("dev", "requirements-test.txt", 1, None)
    assert got["acme-lint"] == ("dev", "requirements/dev.txt", 1, None)
    # -e ./vendored is a path (the repo's own: no dependency); the URL names its egg.
    assert got[str(tmp_path / "vendored")] == ("runtime", "requirements.txt", 4, None)
    assert got["x"] == ("runtime", "requirements.txt", 8, None)
    assert set(got) == {"acme-core", "acme-events", "acme-testkit", "acme-lint",
                        str(tmp_path / "vendored"), "x"}


def test_setup_cfg(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"setup.cfg": '''
        [metadata]
        name = acme_worker

        [options]
        install_requires =
            acme-core>=2
            acme-events; python_version>"3.8"
        setup_requires = acme-build
        tests_require =
            acme-testkit

        [options.extras_require]
        docs = acme-docs-theme
        s3 = acme-s3>=1
    '''}))
    assert m.provides == {("python", "acme-worker")}
    got = reqs(m)
    assert got["acme-core"] == ("runtime", "setup.cfg", 6, ">=2")
    assert got["acme-events"][:3] == ("runtime", "setup.cfg", 7)
    assert got["acme-build"][:3] == ("build", "setup.cfg", 8)
    assert got["acme-testkit"][:3] == ("dev", "setup.cfg", 10)
    assert got["acme-docs-theme"][:3] == ("dev", "setup.cfg", 13)
    assert got["acme-s3"] == ("optional", "setup.cfg", 14, ">=1")  # an extra


def test_package_json_sections_and_workspaces(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "package.json": '''
            {
              "name": "@acme/web",
              "private": true,
              "workspaces": ["packages/*"],
              "dependencies": {
                "@acme/ui-kit": "^3.1.0",
                "react": "18.x"
              },
              "peerDependencies": {"@acme/auth": ">=2 <4"},
              "devDependencies": {
                "@acme/eslint-config": "workspace:*"
              }
            }
        ''',
        "packages/charts/package.json": '''
            {"name": "@acme/charts",
             "dependencies": {"@acme/ui-kit": "^3"}}
        ''',
    }))
    assert m.provides == {("npm", "@acme/web"), ("npm", "@acme/charts")}
    got = {(r.package[1], r.file): (r.type, r.line, r.constraint) for r in m.requires}
    assert got[("@acme/ui-kit", "package.json")] == ("runtime", 6, "^3.1.0")
    assert got[("@acme/auth", "package.json")] == ("peer", 9, ">=2 <4")
    assert got[("@acme/eslint-config", "package.json")] == ("dev", 11, "workspace:*")
    assert got[("@acme/ui-kit", "packages/charts/package.json")] == ("runtime", 2, "^3")
    assert {"node"} <= m.tags


def test_go_mod_blocks_comments_and_replace(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"go.mod": '''
        module github.com/acme/gateway

        go 1.22

        require github.com/acme/authz v1.4.0

        require (
        \tgithub.com/acme/events v0.9.1 // indirect
        \tgithub.com/acme/old-metrics v1.0.0
        \tgolang.org/x/net v0.20.0
        )

        replace github.com/acme/old-metrics => github.com/acme/metrics v2.0.0

        replace (
        \tgithub.com/acme/events => ../events
        )
    '''}))
    assert m.provides == {("go", "github.com/acme/gateway")}
    by = {r.package[1]: r for r in m.requires}
    assert by["github.com/acme/authz"] == Requirement(
        ("go", "github.com/acme/authz"), "runtime", "go.mod", 5, "v1.4.0")
    # replaced by another module: the dependency is on that one, at its version
    assert by["github.com/acme/metrics"].line == 9
    assert by["github.com/acme/metrics"].constraint == "v2.0.0"
    assert "github.com/acme/old-metrics" not in by
    # replaced by a local checkout: found by its path
    assert by["github.com/acme/events"].path == str((tmp_path / "../events").resolve())
    assert by["github.com/acme/events"].line == 8
    assert "go" in m.tags


def test_cargo_sections_renames_targets_and_workspace(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "Cargo.toml": '''
            [workspace]
            members = ["crates/*"]

            [workspace.dependencies]
            acme-proto = { path = "../proto", version = "0.3" }

            [package]
            name = "acme_engine"

            [dependencies]
            acme-store = "1.2"
            store2 = { package = "acme-store-v2", version = "2" }

            [build-dependencies]
            acme_codegen = { git = "https://example.com/codegen" }

            [dev-dependencies.acme-fixtures]
            version = "0.1"

            [target.'cfg(unix)'.dependencies]
            acme-unix = "1"
        ''',
        "crates/cli/Cargo.toml": '''
            [package]
            name = "acme-engine-cli"
        ''',
    }))
    assert m.provides == {("cargo", "acme-engine"), ("cargo", "acme-engine-cli")}
    got = reqs(m)
    assert got["acme-proto"][:3] == ("runtime", "Cargo.toml", 5)
    assert got["acme-store"] == ("runtime", "Cargo.toml", 11, "1.2")
    assert got["acme-store-v2"] == ("runtime", "Cargo.toml", 12, "2")
    assert got["acme-codegen"][:3] == ("build", "Cargo.toml", 15)
    assert got["acme-fixtures"] == ("dev", "Cargo.toml", 17, "0.1")
    assert got["acme-unix"][:2] == ("runtime", "Cargo.toml")
    assert "rust" in m.tags


def test_pom_scopes_parent_group_modules_and_management(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "pom.xml": '''
            <?xml version="1.0" encoding="UTF-8"?>
            <project xmlns="http://maven.apache.org/POM/4.0.0">
              <parent><groupId>com.acme</groupId><artifactId>parent</artifactId></parent>
              <artifactId>orders</artifactId>
              <modules><module>orders-api</module></modules>
              <dependencyManagement><dependencies><dependency>
                <groupId>com.acme</groupId><artifactId>bom</artifactId><scope>import</scope>
              </dependency></dependencies></dependencyManagement>
              <dependencies>
                <dependency>
                  <groupId>com.acme</groupId>
                  <artifactId>ledger</artifactId>
                  <version>[1.0,2.0)</version>
                </dependency>
                <dependency>
                  <groupId>com.acme</groupId>
                  <artifactId>testkit</artifactId>
                  <scope>test</scope>
                </dependency>
                <dependency>
                  <groupId>com.acme</groupId>
                  <artifactId>annotations</artifactId>
                  <scope>provided</scope>
                </dependency>
              </dependencies>
            </project>
        ''',
        "orders-api/pom.xml": '''
            <project><groupId>com.acme</groupId><artifactId>orders-api</artifactId></project>
        ''',
    }))
    assert m.provides == {("maven", "com.acme:orders"), ("maven", "com.acme:orders-api")}
    got = reqs(m)
    assert got["com.acme:ledger"] == ("runtime", "pom.xml", 12, "[1.0,2.0)")
    assert got["com.acme:testkit"][:3] == ("dev", "pom.xml", 17)
    assert got["com.acme:annotations"][:3] == ("build", "pom.xml", 22)
    # what the pom inherits is built first: its parent, and each BOM it imports (the
    # other dependencyManagement entries only pin versions)
    assert got["com.acme:parent"] == ("build", "pom.xml", 3, None)
    assert got["com.acme:bom"] == ("build", "pom.xml", 7, None)
    assert "java" in m.tags


def test_a_broken_manifest_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"pyproject.toml": "[project\nname = 1\n",
                                 "package.json": "{not json",
                                 "requirements.txt": "acme-core >= = 2\nok-pkg\n"}))
    # Where and why, as the parser says it: the whole file, or one entry of it.
    assert sorted((p.file, p.line, p.whole) for p in m.problems) == [
        ("package.json", 1, True), ("pyproject.toml", 1, True),
        ("requirements.txt", 1, False)]
    toml = next(p for p in m.problems if p.file == "pyproject.toml")
    assert "(at line" not in toml.message and str(toml).startswith("pyproject.toml:1: ")
    assert m.unreadable() == {"pyproject.toml", "package.json"}
    assert [r.package[1] for r in m.requires] == ["ok-pkg"]


def test_an_unterminated_manifest_names_its_last_line(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "pyproject.toml": '[project]\nname = "acme-api"\ndependencies = ["acme-core"]\n'
                          'oops = [\n',
        "pom.xml": "<project>\n  <artifactId>x</artifactId>\n  <oops>\n</project>\n"}))
    got = {p.file: (p.line, p.message) for p in m.problems}
    assert got["pyproject.toml"] == (4, "Invalid value")
    assert got["pom.xml"][0] == 4 and "mismatched tag" in got["pom.xml"][1]
    assert m.requires == []


@pytest.mark.parametrize(("group", "kind"), [
    ("test", "dev"), ("tests", "dev"), ("testing", "dev"), ("dev", "dev"),
    ("lint", "dev"), ("docs", "dev"), ("build", "build"), ("postgres", "optional")])
def test_group_names_map_to_types(group: str, kind: str) -> None:
    assert dm.group_type(group) == kind


def test_tags_from_what_is_at_the_top() -> None:
    assert dm.tags_of(["pyproject.toml", "Dockerfile", "main.tf", "README.md"]) == {
        "python", "docker", "terraform"}
    assert dm.tags_of(["requirements-dev.txt"]) == {"python"}
    assert dm.tags_of(["README.md"]) == set()


def paths(m: dm.Manifests) -> dict[tuple[str, str], tuple[str, str, int, str | None]]:
    """(ecosystem, package) -> (type, file, line, path) of the requirements with a path."""
    return {r.package: (r.type, r.file, r.line, r.path) for r in m.requires if r.path}


def test_python_path_references(tmp_path: Path) -> None:
    root = tmp_path / "fleet" / "api"
    m = dm.read(write(root, {
        "requirements-dev.txt": '''
            -e ../core
            --editable=../shared/libs/auth[test]
            -e file:../events#egg=acme-events
            ../tools/cli-kit
            file:///srv/wheels/acme_proto
            -e git+https://git.example.com/acme/lint.git@v2#egg=acme-lint
            acme-metrics @ file:///srv/src/metrics
            requests>=2
        ''',
        "pyproject.toml": '''
            [project]
            name = "acme-api"
            dependencies = ["acme-db>=1", "acme-cache"]

            [tool.uv.sources]
            acme-db = { path = "../db", editable = true }
            acme-cache = { git = "https://git.example.com/acme/cache" }

            [tool.poetry.group.test.dependencies]
            acme-testkit = { path = "../testkit", develop = true }
        ''',
    }))
    fleet = tmp_path / "fleet"
    got = paths(m)
    assert got[("path", str(fleet / "core"))] == ("dev", "requirements-dev.txt", 1,
                                                  str(fleet / "core"))
    assert got[("path", str(fleet / "shared/libs/auth"))][2:] == (2, str(fleet / "shared/libs/auth"))
    assert got[("python", "acme-events")] == ("dev", "requirements-dev.txt", 3,
                                              str(fleet / "events"))
    assert got[("path", str(fleet / "tools/cli-kit"))][2] == 4
    assert got[("path", "/srv/wheels/acme_proto")][2] == 5
    assert got[("python", "acme-metrics")] == ("dev", "requirements-dev.txt", 7,
                                               "/srv/src/metrics")
    assert got[("python", "acme-db")] == ("runtime", "pyproject.toml", 3, str(fleet / "db"))
    assert got[("python", "acme-testkit")] == ("dev", "pyproject.toml", 10,
                                               str(fleet / "testkit"))
    named = {r.package[1]: r for r in m.requires if not r.path}
    assert "acme-lint" in named and "acme-cache" in named and "requests" in named
    assert not m.problems


def test_npm_file_and_link_versions_and_pnpm_workspaces(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    write(fleet, {"shared/icons/package.json": '{"name": "@acme/icons"}',
                  "shared/fonts/package.json": '{"name": "@acme/fonts"}'})
    root = fleet / "web"
    m = dm.read(write(root, {
        "package.json": '''
            {"name": "@acme/web",
             "dependencies": {"@acme/ui": "file:../ui-kit", "react": "^18"},
             "devDependencies": {"@acme/lint": "link:../lint-config"}}
        ''',
        "pnpm-workspace.yaml": '''
            # the app, its packages, and the icons the design team keeps beside it
            packages:
              - "apps/*"
              - "packages/**"
              - "!packages/**/fixtures/**"
              - "../shared/fonts"
              - "../shared/*"
        ''',
        "apps/site/package.json": '{"name": "@acme/site", "dependencies": {"@acme/ui": "^3"}}',
        "packages/charts/package.json": '{"name": "@acme/charts"}',
        "packages/charts/fixtures/demo/package.json": '{"name": "demo-fixture"}',
        # installed, not the repo's own: never matched by packages/**
        "packages/charts/node_modules/left-pad/package.json": '{"name": "left-pad"}',
    }))
    assert m.provides == {("npm", "@acme/web"), ("npm", "@acme/site"), ("npm", "@acme/charts")}
    assert {"node"} <= m.tags
    got = paths(m)
    assert got[("npm", "@acme/ui")] == ("runtime", "package.json", 2, str(fleet / "ui-kit"))
    assert got[("npm", "@acme/lint")] == ("dev", "package.json", 3, str(fleet / "lint-config"))
    # a member outside the checkout named by its path: the repo the workspace builds
    # with (nothing of it read); a glob leaving the checkout is not expanded
    assert got[("path", str(fleet / "shared/fonts"))] == ("build", "pnpm-workspace.yaml", 6,
                                                          str(fleet / "shared/fonts"))
    assert ("path", str(fleet / "shared/icons")) not in got
    assert [(p.file, p.line, p.whole) for p in m.problems] == [
        ("pnpm-workspace.yaml", 6, False), ("pnpm-workspace.yaml", 7, False)]
    assert "'../shared/*' leaves the checkout: not read" in m.problems[1].message


def test_go_work_members_inside_and_outside(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    write(fleet, {"events/go.mod": "module github.com/acme/events\n\ngo 1.22\n"})
    root = fleet / "platform"
    m = dm.read(write(root, {
        "go.work": '''
            go 1.22

            use (
            \t.
            \t./cmd/gateway
            \t../events // the bus, checked out beside it
            \t../gone
            )
        ''',
        "go.mod": "module github.com/acme/platform\n\ngo 1.22\n",
        "cmd/gateway/go.mod": (
            "module github.com/acme/platform/gateway\n\ngo 1.22\n\n"
            "require github.com/acme/auth v1.2.0\n"),
    }))
    assert m.provides == {("go", "github.com/acme/platform"),
                          ("go", "github.com/acme/platform/gateway")}
    assert [(r.package, r.file, r.line) for r in m.requires if not r.path] == [
        (("go", "github.com/acme/auth"), "cmd/gateway/go.mod", 5)]
    got = paths(m)
    # outside the checkout: a dependency by path, its go.mod never read (noted)
    assert got[("path", str(fleet / "events"))] == ("build", "go.work", 6, str(fleet / "events"))
    assert got[("path", str(fleet / "gone"))][2] == 7
    assert [(p.file, p.line, p.whole) for p in m.problems] == [
        ("go.work", 6, False), ("go.work", 7, False)]
    assert "leaves the checkout" in m.problems[0].message
    assert {"go"} <= m.tags


def test_pom_property_references(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "pom.xml": '''
            <project xmlns="http://maven.apache.org/POM/4.0.0">
              <groupId>com.acme</groupId>
              <artifactId>platform</artifactId>
              <version>2.1.0</version>
              <properties>
                <acme.events.group>${project.groupId}.events</acme.events.group>
                <events.version>3.0.0</events.version>
              </properties>
              <modules><module>api</module></modules>
              <dependencies>
                <dependency>
                  <groupId>${project.groupId}</groupId>
                  <artifactId>core</artifactId>
                  <version>${project.version}</version>
                </dependency>
                <dependency>
                  <groupId>${acme.events.group}</groupId>
                  <artifactId>bus</artifactId>
                  <version>${events.version}</version>
                </dependency>
                <dependency>
                  <groupId>${undefined.group}</groupId>
                  <artifactId>mystery</artifactId>
                </dependency>
              </dependencies>
            </project>
        ''',
        "api/pom.xml": '''
            <project>
              <parent><groupId>com.acme</groupId><artifactId>platform</artifactId>
                <version>2.1.0</version></parent>
              <artifactId>api</artifactId>
              <dependencies>
                <dependency>
                  <groupId>${project.parent.groupId}</groupId>
                  <artifactId>platform-${project.artifactId}-spec</artifactId>
                  <scope>test</scope>
                </dependency>
                <dependency>
                  <groupId>${acme.events.group}</groupId>
                  <artifactId>client</artifactId>
                  <version>${events.version}</version>
                </dependency>
              </dependencies>
              <properties><events.version>4.0.0</events.version></properties>
            </project>
        ''',
    }))
    assert m.provides == {("maven", "com.acme:platform"), ("maven", "com.acme:api")}
    got = {(r.package[1], r.file): (r.type, r.line, r.constraint) for r in m.requires}
    assert got[("com.acme:core", "pom.xml")] == ("runtime", 13, "2.1.0")
    assert got[("com.acme.events:bus", "pom.xml")] == ("runtime", 18, "3.0.0")
    assert got[("com.acme:platform-api-spec", "api/pom.xml")][:2] == ("dev", 8)
    # the parent's property for the group, its own (overriding the parent's) for the version
    assert got[("com.acme.events:client", "api/pom.xml")][2] == "4.0.0"
    assert not any("${" in p for p, _ in got)  # an unknown one is left out, not guessed


def test_a_path_dependency_names_the_repo_it_is_in(tmp_path: Path) -> None:
    from coordination.fleet.discovery import Checkout
    from coordination.fleet.drift import infer

    fleet = tmp_path / "fleet"
    mono = write(fleet / "mono", {"package.json": '{"name": "@acme/mono", "private": true}'})
    api = write(fleet / "api", {"requirements.txt": "-e ../mono/packages/py-client\n",
                                "package.json": '{"name": "api", "dependencies": '
                                                '{"renamed-ui": "file:../mono/packages/ui"}}'})
    found = infer({"mono": Checkout(mono, manifests=dm.read(mono)),
                   "api": Checkout(api, manifests=dm.read(api))})
    assert [(d["consumer"], d["provider"], d["type"], d["source"]) for d in found] == [
        ("api", "mono", "runtime", {"file": "package.json", "line": 1})]


def test_a_group_key_is_found_itself_not_inside_a_longer_name(tmp_path: Path) -> None:
    """`test` is a part of `pytest-doc`: the line of the test group's requirement is the
    test key's own (5), not the docs group's (4), where `test` was found first."""
    m = dm.read(write(tmp_path, {"pyproject.toml": '''
        [project]
        name = "acme-api"
        [project.optional-dependencies]
        docs = ["pytest-doc", "acme-core"]
        test = ["acme-core"]
        [tool.poetry.dependencies]
        acme-core-extras = "1"
        core = "2"
    ''', "setup.cfg": '''
        [metadata]
        name = acme-api
        [options.extras_require]
        docs = pytest-doc
            acme-kit
        test: acme-kit
    ''', "package.json": '''
        {"name": "web",
         "description": "\\"devDependencies\\": not a key",
         "devDependencies": {"@acme/ui": "1"}}
    '''}))
    lines = {(r.package[1], r.type, r.file): r.line for r in m.requires}
    # docs and test groups are both dev: each found at its own key
    assert [r.line for r in m.requires if r.package[1] == "acme-core"
            and r.file == "pyproject.toml" and r.type == "dev"] == [4, 5]
    assert lines[("core", "runtime", "pyproject.toml")] == 8  # not acme-core-extras' line
    assert [r.line for r in m.requires if r.package[1] == "acme-kit"
            and r.file == "setup.cfg"] == [5, 6]
    assert lines[("@acme/ui", "dev", "package.json")] == 3


def test_npm_alias_names_the_real_package(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"package.json": '''
        {"name": "@acme/web",
         "dependencies": {
           "button": "npm:@acme/button@^1.2",
           "lodash-es": "npm:lodash",
           "old-ui": "npm:@acme/ui@"
         }}
    '''}))
    got = {r.package: (r.line, r.constraint) for r in m.requires}
    assert got == {("npm", "@acme/button"): (3, "^1.2"), ("npm", "lodash"): (4, None),
                   ("npm", "@acme/ui"): (5, None)}


def test_cargo_path_dependencies_and_patches(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    root = fleet / "engine"
    m = dm.read(write(root, {
        "Cargo.toml": '''
            [workspace]
            members = ["crates/*"]

            [package]
            name = "acme-engine"

            [dependencies]
            acme-proto = { path = "../proto", version = "0.3" }
            acme-store = "1.2"
            acme-local = { path = "crates/local" }

            [dev-dependencies.acme-fixtures]
            path = "../fixtures"

            [patch.crates-io]
            acme-store = { path = "../store" }
            acme-log = { path = "../log" }
            serde = { git = "https://github.com/serde-rs/serde" }

            [patch."https://github.com/acme/metrics"]
            acme-metrics = { path = "../metrics" }

            [replace]
            "acme-old:0.1.0" = { path = "../old" }
        ''',
        "crates/local/Cargo.toml": '''
            [package]
            name = "acme-local"

            [dependencies]
            acme-util = { path = "../../../util" }
        ''',
    }))
    got = {r.package[1]: (r.type, r.file, r.line, r.path) for r in m.requires}
    # a path dependency is the checkout there, relative to the manifest's directory
    assert got["acme-proto"] == ("runtime", "Cargo.toml", 8, str(fleet / "proto"))
    assert got["acme-local"][3] == str(root / "crates/local")  # inside: the repo itself
    assert got["acme-fixtures"] == ("dev", "Cargo.toml", 12, str(fleet / "fixtures"))
    assert got["acme-util"] == ("runtime", "crates/local/Cargo.toml", 5, str(fleet / "util"))
    # a patch by a path points the crate it patches at that checkout...
    assert got["acme-store"] == ("runtime", "Cargo.toml", 9, str(fleet / "store"))
    # ...and a crate no table names is still built from it
    assert got["acme-log"] == ("build", "Cargo.toml", 17, str(fleet / "log"))
    assert got["acme-metrics"] == ("build", "Cargo.toml", 21, str(fleet / "metrics"))
    assert got["acme-old"] == ("build", "Cargo.toml", 24, str(fleet / "old"))
    assert "serde" not in got  # patched by git: no checkout of the fleet
    assert not m.problems


def test_cargo_workspace_dependencies_take_the_inheriting_members_types(
        tmp_path: Path) -> None:
    """``[workspace.dependencies]`` only declares: a member's ``{ workspace = true }``
    (inline, dotted or a table) is that crate with the member's section's type (a test
    helper of the workspace is no runtime dependency of it), its line, and the
    workspace's version, path (relative to the workspace's Cargo.toml) and rename; one
    no member inherits stays a runtime requirement of its own."""
    fleet = tmp_path / "fleet"
    root = fleet / "tokio-ws"
    m = dm.read(write(root, {
        "Cargo.toml": '''
            [workspace]
            members = ["tokio", "tokio-test"]

            [workspace.dependencies]
            tracing = "0.1"
            tracing-core = { path = "../tracing/tracing-core", version = "0.1.32" }
            mio-v1 = { package = "mio", version = "1" }
            bytes = "1"
        ''',
        "tokio/Cargo.toml": '''
            [package]
            name = "tokio"

            [dependencies]
            mio-v1 = { workspace = true, optional = true }

            [dev-dependencies]
            tracing = { workspace = true }
            tracing-core.workspace = true
        ''',
        "tokio-test/Cargo.toml": '''
            [package]
            name = "tokio-test"

            [build-dependencies.tracing]
            workspace = true
        ''',
    }))
    got = [(r.package[1], r.type, r.file, r.line, r.constraint, r.path) for r in m.requires]
    assert sorted(got) == sorted([
        ("mio", "optional", "tokio/Cargo.toml", 5, "1", None),
        ("tracing", "dev", "tokio/Cargo.toml", 8, "0.1", None),
        ("tracing-core", "dev", "tokio/Cargo.toml", 9, "0.1.32",
         str(fleet / "tracing" / "tracing-core")),
        ("tracing", "build", "tokio-test/Cargo.toml", 4, "0.1", None),
        ("bytes", "runtime", "Cargo.toml", 8, "1", None),  # inherited by none
    ]), got
    assert not m.problems


def test_an_npm_peer_marked_optional_is_optional(tmp_path: Path) -> None:
    """``peerDependenciesMeta: {x: {optional: true}}``: npm installs x only when
    something else does, so it does not order (as optionalDependencies); a peer
    without it, or with ``optional: false``, stays a peer."""
    m = dm.read(write(tmp_path, {"package.json": '''
        {
          "name": "md-render",
          "peerDependencies": {
            "md-parse": "^3",
            "md-highlight": "^1",
            "md-math": "^2"
          },
          "peerDependenciesMeta": {
            "md-highlight": {"optional": true},
            "md-math": {"optional": false}
          }
        }
    '''}))
    assert reqs(m) == {"md-parse": ("peer", "package.json", 4, "^3"),
                       "md-highlight": ("optional", "package.json", 5, "^1"),
                       "md-math": ("peer", "package.json", 6, "^2")}


def test_where_a_manifest_lies_is_asked_once_as_each_check_asked_it(tmp_path: Path) -> None:
    """read_text's one walk over a manifest's parts (_placed) says what `inside` and
    `_in_git_dir` each say: a plain file, one in .git, symlinks out of the checkout,
    into .git and inside it, a path with a `..` part, a file that is not there."""
    from coordination.fleet.manifests import base

    root = tmp_path / "repo"
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n")
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "sub" / "deep" / "package.json").write_text("{}")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "package.json").write_text("{}")
    (root / "out").symlink_to(tmp_path / "elsewhere")
    (root / "gitdir").symlink_to(root / ".git")
    (root / "alias").symlink_to(root / "sub")
    paths = [root / "sub" / "deep" / "package.json", root / ".git" / "config",
             root / "out" / "package.json", root / "gitdir" / "config",
             root / "alias" / "deep" / "package.json",
             root / "out" / ".." / "sub" / "deep" / "package.json",
             root / "sub" / "missing" / "go.mod", root, tmp_path / "elsewhere" / "package.json"]
    got = [base._placed(p, root) for p in paths]
    assert got == [(base.inside(p, root), base._in_git_dir(p, root)) for p in paths]
    assert got[:5] == [(True, False), (True, True), (False, False), (True, True),
                       (True, False)]
