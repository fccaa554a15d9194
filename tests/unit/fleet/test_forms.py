"""The build-script forms of DESIGN section J, each with the edges it gives: sbt
dependencies in ``val``s that are an ``if``/``else`` (both branches, inline or in
blocks), ``++`` chains, a setting whose value is a block, ``project/*.scala`` objects
(``Dependencies.x``, ``import Dependencies._``); Gradle's
``create("libs").from(files(...))`` catalogs; and the bracket check that makes a
script not read whole a located problem, never a silent loss."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from coordination.fleet import manifests as dm
from coordination.fleet.manifests.base import Unreadable
from coordination.fleet.manifests.scan import balanced, tokens

pytestmark = pytest.mark.timeout(30)

Got = set[tuple[str, str, str, int, "str | None"]]


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def reqs(m: dm.Manifests) -> Got:
    return {(r.package[1], r.type, r.file, r.line, r.constraint) for r in m.requires}


# -- sbt -----------------------------------------------------------------------------------
def test_sbt_if_else_vals_both_branches_inline_and_in_blocks(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"build.sbt": """
        organization := "com.acme"
        val v = "2.20.0"
        val jacksons = if (v.contains("SNAPSHOT"))
          Seq("com.fasterxml.jackson.core" % "jackson-core" % v changing())
        else
          Seq("com.fasterxml.jackson.core" % "jackson-databind" % v)
        val cats = if (scalaVersion.value.startsWith("3")) {
          Seq("org.typelevel" %% "cats-core" % "2.12.0")
        } else {
          Seq("org.typelevel" %% "cats-kernel" % "2.12.0")
        }
        lazy val core = project.settings(
          libraryDependencies ++= jacksons ++ cats ++ Seq(
            "org.scalatest" %% "scalatest" % "3.2.19" % Test
          )
        )
    """}))
    assert reqs(m) == {
        ("com.fasterxml.jackson.core:jackson-core", "runtime", "build.sbt", 4, "2.20.0"),
        ("com.fasterxml.jackson.core:jackson-databind", "runtime", "build.sbt", 6, "2.20.0"),
        ("org.typelevel:cats-core", "runtime", "build.sbt", 8, "2.12.0"),
        ("org.typelevel:cats-kernel", "runtime", "build.sbt", 10, "2.12.0"),
        ("org.scalatest:scalatest", "dev", "build.sbt", 14, "3.2.19"),
    }
    assert m.provides == {("maven", "com.acme:core")}


def test_sbt_a_setting_whose_value_is_a_block_and_a_chain_on_the_next_line(
        tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"build.sbt": """
        organization := "com.acme"
        name := "widget"
        val base = Seq("org.typelevel" %% "cats-core" % "2.12.0")
        libraryDependencies ++= {
          if (scalaVersion.value.startsWith("2.12"))
            Seq("org.scala-lang.modules" %% "scala-collection-compat" % "2.12.0")
          else Seq.empty
        }
        Test / libraryDependencies ++= base
          ++ Seq("org.scalameta" %% "munit" % "1.0.0")
        mimaPreviousArtifacts := {
          Set("com.acme" %% "widget" % "1.0.0")
        }
    """}))
    assert reqs(m) == {
        ("org.scala-lang.modules:scala-collection-compat", "runtime", "build.sbt", 6,
         "2.12.0"),
        ("org.typelevel:cats-core", "runtime", "build.sbt", 3, "2.12.0"),
        ("org.scalameta:munit", "dev", "build.sbt", 10, "1.0.0"),
    }
    # No project defined: the build is its root project, named by `name :=`.
    assert m.provides == {("maven", "com.acme:widget")}


def test_sbt_project_scala_objects_named_from_build_sbt(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "project/Dependencies.scala": """
            import sbt._

            object Dependencies {
              object Versions {
                val circe = "0.14.10"
              }
              val circeCore = "io.circe" %% "circe-core" % Versions.circe
              val munit = "org.scalameta" %% "munit" % "1.0.0" % Test
              val unused = "com.example" % "not-used" % "1.0"
              lazy val http4s = Seq(
                "org.http4s" %% "http4s-core" % "0.23.30",
                "org.http4s" %% "http4s-dsl" % "0.23.30"
              )
            }
        """,
        "build.sbt": """
            import Dependencies._
            ThisBuild / organization := "com.acme"
            lazy val api = project.settings(
              libraryDependencies ++= Seq(Dependencies.circeCore, munit) ++ http4s
            )
        """}))
    assert reqs(m) == {
        ("io.circe:circe-core", "runtime", "project/Dependencies.scala", 7, "0.14.10"),
        ("org.scalameta:munit", "dev", "project/Dependencies.scala", 8, "1.0.0"),
        ("org.http4s:http4s-core", "runtime", "project/Dependencies.scala", 11, "0.23.30"),
        ("org.http4s:http4s-dsl", "runtime", "project/Dependencies.scala", 12, "0.23.30"),
    }
    assert m.provides == {("maven", "com.acme:api")}


# -- Gradle --------------------------------------------------------------------------------
def test_gradle_catalogs_created_and_from_files_chained(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "settings.gradle.kts": """
            rootProject.name = "acme"
            dependencyResolutionManagement {
              versionCatalogs {
                create("libs").from(files("gradle/libs.versions.toml"))
                create("ktorLibs").from("io.ktor:ktor-version-catalog:3.0.0")
              }
              versionCatalogs.create("tools").from(files("gradle/tools.versions.toml"))
            }
            include(":app")
        """,
        "gradle/libs.versions.toml": """
            [versions]
            okhttp = "4.12.0"
            [libraries]
            okhttp = { module = "com.squareup.okhttp3:okhttp", version.ref = "okhttp" }
        """,
        "gradle/tools.versions.toml": """
            [libraries]
            junit = "junit:junit:4.13.2"
        """,
        "app/build.gradle.kts": """
            group = "com.acme"
            dependencies {
              implementation(libs.okhttp)
              testImplementation(tools.junit)
            }
        """}))
    assert reqs(m) == {
        ("com.squareup.okhttp3:okhttp", "runtime", "app/build.gradle.kts", 3, "4.12.0"),
        ("junit:junit", "dev", "app/build.gradle.kts", 4, "4.13.2"),
    }
    said = [str(p) for p in m.problems]
    assert not [s for s in said if "version catalog entry" in s], said
    assert ["settings.gradle.kts:5: version catalog 'ktorLibs' from something other than a "
            ".toml file: not read"] == [s for s in said if "ktorLibs" in s]


# -- a script not read whole -----------------------------------------------------------------
@pytest.mark.parametrize(("text", "line", "said"), [
    ('val deps = Seq((\n  "a" % "b" % "1"\n)\n', 1, "'(' opened here is never closed"),
    ("dependencies {\n  implementation(listOf(\"a:b:1\")\n}\n", 2,
     "'(' opened here is closed by a '}' at line 3"),
    ("x)\n", 1, "')' closes nothing opened"),
    ("android {\n  defaultConfig {\n", 2, "never closed (an unbalanced bracket, or a "
     "truncated file)"),
])
def test_an_unbalanced_bracket_is_a_located_problem(text: str, line: int, said: str) -> None:
    with pytest.raises(Unreadable) as exc:
        balanced(list(tokens(text)))
    assert exc.value.line == line and said in exc.value.message


def test_brackets_in_strings_and_comments_are_no_brackets() -> None:
    text = ('val s = "(" + \'[\' // )\n/* { */ val t = s"${x.map { y => "}" }}"\n'
            'val u = """ ( """\n')
    assert balanced(list(tokens(text)))


@pytest.mark.parametrize(("text", "want"), [
    ("a=//x\nb", [("name", "a", 1), ("op", "=", 1), ("nl", "\n", 1), ("name", "b", 2)]),
    ("a *//x\nb", [("name", "a", 1), ("op", "*", 1), ("nl", "\n", 1), ("name", "b", 2)]),
    ("a+/*c*/-b", [("name", "a", 1), ("op", "+", 1), ("op", "-", 1), ("name", "b", 1)]),
    ("x /= 2 // two\n", [("name", "x", 1), ("op", "/=", 1), ("num", "2", 1), ("nl", "\n", 1)]),
    ("a /* x /* y */ z */ b", [("name", "a", 1), ("name", "b", 1)]),
    ("'sym \u00e9 \\ q", [("op", "'", 1), ("name", "sym", 1), ("op", "\u00e9", 1),
                         ("op", "\\", 1), ("name", "q", 1)]),
    ('s"${m("v")}/" + 1.2', [("str", '${m("v")}/', 1), ("op", "+", 1), ("num", "1.2", 1)]),
    ("a\\\nb `c d`", [("name", "a", 1), ("name", "b", 2), ("name", "c d", 2)]),
])
def test_the_tokenizer_cuts_comments_operators_and_signs_as_the_languages_do(
        text: str, want: list[tuple[str, str, int]]) -> None:
    """What the tokenizer searches for in one pattern and what it walks by hand (a
    comment opened right after an operator, nested block comments, a template holding a
    quote, a sign no token starts with) give the same tokens, each on its line."""
    assert [(t.kind, t.text, t.line) for t in tokens(text, apostrophes=True)] == want


def test_block_comments_nest_only_where_the_language_nests_them() -> None:
    flat = [(t.kind, t.text) for t in tokens("a /* x /* y */ z */ b", nested_comments=False)]
    assert flat == [("name", "a"), ("name", "z"), ("op", "*/"), ("name", "b")]
    with pytest.raises(Unreadable) as exc:
        list(tokens("a\n/* x"))
    assert exc.value.line == 2 and "never closed" in exc.value.message


@pytest.mark.parametrize("script", ["build.sbt", "build.gradle.kts", "build.gradle"])
def test_a_stray_bracket_makes_the_script_unreadable_whole_at_its_line(
        tmp_path: Path, script: str) -> None:
    body = {"build.sbt": 'organization := "com.acme"\nlazy val core = project.settings(\n'
                         '  libraryDependencies += ("org.typelevel" %% "cats-core" % "2.1"\n)\n',
            "build.gradle.kts": 'group = "com.acme"\nval extra = listOf(\ndependencies {\n'
                                '  implementation("org.typelevel:cats-core:2.1")\n}\n',
            "build.gradle": "group = 'com.acme'\ndependencies {\n"
                            "  implementation('org.typelevel:cats-core:2.1'\n}\n"}[script]
    m = dm.read(write(tmp_path, {script: body}))
    [p] = [p for p in m.problems if p.file == script]
    assert p.whole and p.line in (2, 3) and "cannot read the script whole" in p.message, p
    assert m.unreadable() == {script}


# -- versions coord cannot know --------------------------------------------------------------
@pytest.mark.parametrize(("files", "rel", "said"), [
    ({"build.sbt": 'organization := "com.acme"\nlazy val core = project.settings(\n'
                   '  libraryDependencies ++= Seq(\n'
                   '    "org.typelevel" %% "cats-core" % Versions.cats,\n'
                   '    "org.typelevel" %% "cats-free" % Versions.cats))\n'},
     "build.sbt", "build.sbt:4: 2 versions set from a value coord cannot know (the first: "
     "Versions.cats): stored as none"),
    ({"build.gradle.kts": 'group = "com.acme"\ndependencies {\n'
                          '  implementation("com.squareup.okhttp3:okhttp:$okhttpVersion")\n}\n'},
     "build.gradle.kts", "build.gradle.kts:3: 1 version set from a value coord cannot know "
     "(the first: $okhttpVersion): stored as none"),
    ({"App.csproj": '<Project Sdk="Microsoft.NET.Sdk">\n  <ItemGroup>\n'
                    '    <PackageReference Include="Serilog" Version="$(SerilogVersion)" />\n'
                    '  </ItemGroup>\n</Project>\n'},
     "App.csproj", "App.csproj:3: 1 version set from a value coord cannot know (the first: "
     "$(SerilogVersion)): stored as none"),
])
def test_a_version_coord_cannot_know_is_a_note_and_the_dependency_is_kept(
        tmp_path: Path, files: dict[str, str], rel: str, said: str) -> None:
    m = dm.read(write(tmp_path, files))
    assert m.requires and all(r.constraint is None for r in m.requires)
    assert said in [str(p) for p in m.problems], [str(p) for p in m.problems]
    assert not m.unreadable()
