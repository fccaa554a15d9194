"""The readers of 0.6's ecosystems, form by form: Gradle (Groovy and Kotlin DSL), sbt,
Maven parents and BOMs, .NET, Ruby, PHP, Python's setup.py and environment files, Go
modules all nested, and workspace members that are examples. Each case is a manifest
form found in real repositories; its expected reading is written out by hand."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from coordination.fleet import manifests as dm

pytestmark = pytest.mark.timeout(30)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fleets"
Got = dict[tuple[str, str], tuple[str, int, "str | None"]]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def reqs(m: dm.Manifests) -> Got:
    """(package name, file) -> (type, line, version): the first of each."""
    out: Got = {}
    for r in m.requires:
        out.setdefault((r.package[1], r.file), (r.type, r.line, r.constraint))
    return out


def notes(m: dm.Manifests) -> list[str]:
    return [str(p) for p in m.problems]


# -- Gradle --------------------------------------------------------------------------------
def test_gradle_groovy_notations_configurations_and_coordinates(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "settings.gradle": """
            rootProject.name = 'acme-root'
            include ':core', ':app'
            include ':samples:demo'
            project(':app').projectDir = file('applications/app')
        """,
        "gradle.properties": "GROUP=com.acme\nokioVersion=3.9.0\n",
        "build.gradle": """
            buildscript {
              dependencies { classpath 'com.acme.tools:gradle-plugin:1.0' }
            }
            ext.deps = [
              guava: 'com.google.guava:guava:33.0-jre',
              acme: [ bus: "com.acme.events:bus:${okioVersion}" ],
            ]
        """,
        "core/build.gradle": """
            dependencies {
              api "com.squareup.okio:okio:$okioVersion"
              implementation group: 'com.acme', name: 'ledger', version: '2.1'
              implementation deps.guava, deps.acme.bus
              implementation(platform('com.acme:acme-bom:5')) { because 'pins' }
              compileOnly 'com.acme:annotations:1'
              testImplementation('com.acme:testkit:1.0') {
                exclude group: 'com.acme', module: 'ledger'
              }
              constraints { api 'com.acme:pinned:9' }
              implementation project(':app')
              if (System.getenv('CI')) {
                runtimeOnly 'com.acme:metrics:4'
              }
            }
        """,
        "core/gradle.properties": "POM_ARTIFACT_ID=acme-core\n",
        "applications/app/build.gradle": "group = 'com.acme.apps'\n"
                                         "dependencies { implementation project(':core') }\n",
        "samples/demo/build.gradle": "dependencies { implementation 'com.acme:ledger:2.1' }\n",
    }))
    assert m.provides == {("maven", "com.acme:acme-root"), ("maven", "com.acme:acme-core"),
                          ("maven", "com.acme.apps:app")}  # not the sample
    got = reqs(m)
    assert got[("com.acme.tools:gradle-plugin", "build.gradle")] == ("build", 2, "1.0")
    assert got[("com.squareup.okio:okio", "core/build.gradle")] == ("runtime", 2, "3.9.0")
    assert got[("com.acme:ledger", "core/build.gradle")] == ("runtime", 3, "2.1")
    assert got[("com.google.guava:guava", "core/build.gradle")] == ("runtime", 4, "33.0-jre")
    assert got[("com.acme.events:bus", "core/build.gradle")] == ("runtime", 4, "3.9.0")
    assert got[("com.acme:acme-bom", "core/build.gradle")] == ("build", 5, "5")  # a platform
    assert got[("com.acme:annotations", "core/build.gradle")] == ("build", 6, "1")
    assert got[("com.acme:testkit", "core/build.gradle")] == ("dev", 7, "1.0")
    assert got[("com.acme:metrics", "core/build.gradle")] == ("runtime", 13, "4")
    assert got[("com.acme:ledger", "samples/demo/build.gradle")][0] == "dev"
    # a constraint pins, the closure's exclude names nothing, project(...) is the repo's
    assert ("com.acme:pinned", "core/build.gradle") not in got
    assert not any(k[0] == "com.acme:ledger" and v[1] == 8 for k, v in got.items())
    assert m.problems == [] and "java" in m.tags


def test_gradle_kotlin_dsl_catalog_source_sets_and_convention_plugins(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "settings.gradle.kts": """
            pluginManagement { includeBuild("build-logic") }
            rootProject.name = "shop"
            include(":cart")
            project(":cart").name = "shop-cart"
            includeBuild("../payments")
        """,
        "gradle/libs.versions.toml": """
            [versions]
            okhttp = "5.0.0"
            [libraries]
            okhttp-client = { module = "com.squareup.okhttp3:okhttp", version.ref = "okhttp" }
            okhttp-mockwebserver = { group = "com.squareup.okhttp3", name = "mockwebserver3", version.ref = "okhttp" }
            kotlinx-coroutines = "org.jetbrains.kotlinx:kotlinx-coroutines-core:1.9.0"
            [bundles]
            http = ["okhttp-client", "kotlinx-coroutines"]
            [plugins]
            kotlin-jvm = { id = "org.jetbrains.kotlin.jvm", version = "2.0.0" }
        """,
        "build-logic/src/main/kotlin/shop.base.gradle.kts": 'group = "com.shop"\n',
        "build-logic/src/main/kotlin/shop.lib.gradle.kts":
            'plugins {\n  id("shop.base")\n}\n',
        "build.gradle.kts": "plugins {\n  alias(libs.plugins.kotlin.jvm) apply false\n}\n",
        "cart/build.gradle.kts": """
            plugins {
              id("shop.lib")
              kotlin("jvm")
            }
            kotlin {
              sourceSets {
                commonMain {
                  dependencies { api(libs.okhttp.client) }
                }
                val jvmTest by getting {
                  dependencies { implementation(libs.okhttp.mockwebserver) }
                }
              }
            }
            dependencies {
              implementation(libs.bundles.http)
              "friendsApi"(projects.core)
              add("testImplementation", kotlin("test", "2.0.0"))
            }
        """,
    }))
    # the group from the convention plugin cart applies (through shop.lib -> shop.base)
    assert ("maven", "com.shop:shop-cart") in m.provides
    got = reqs(m)
    assert got[("com.squareup.okhttp3:okhttp", "cart/build.gradle.kts")] == (
        "runtime", 8, "5.0.0")
    assert got[("com.squareup.okhttp3:mockwebserver3", "cart/build.gradle.kts")] == (
        "dev", 11, "5.0.0")  # jvmTest
    assert got[("org.jetbrains.kotlinx:kotlinx-coroutines-core", "cart/build.gradle.kts")] == (
        "runtime", 16, "1.9.0")
    assert got[("org.jetbrains.kotlin:kotlin-test", "cart/build.gradle.kts")] == (
        "dev", 18, "2.0.0")
    # the build included from outside the checkout: a dependency on that repo, noted
    (outside,) = [r for r in m.requires if r.package[0] == "path"]
    assert (outside.file, outside.line, outside.type) == ("settings.gradle.kts", 5, "build")
    assert outside.path == str(tmp_path.parent / "payments")
    assert "settings.gradle.kts:5: included build '../payments' leaves the checkout: " \
        "not read" in notes(m)
    assert "kotlin" in m.tags


def test_retrofit_and_okhttp_as_they_are(tmp_path: Path) -> None:
    """Two real builds (tests/unit/fixtures/fleets): what each project provides."""
    retrofit = dm.read(FIXTURES / "retrofit")
    assert {("maven", f"com.squareup.retrofit2:{a}") for a in (
        "retrofit", "converter-gson", "converter-jackson", "adapter-rxjava3", "retrofit-mock",
        "retrofit-bom")} <= retrofit.provides
    assert not [p for p in retrofit.provides if "samples" in p[1]]
    okhttp = dm.read(FIXTURES / "okhttp")
    # renamed in settings.gradle.kts; group from build-logic's okhttp.base-conventions
    assert {("maven", "com.squareup.okhttp3:okhttp"),
            ("maven", "com.squareup.okhttp3:logging-interceptor"),
            ("maven", "com.squareup.okhttp3:mockwebserver"),
            ("maven", "com.squareup.okhttp3:mockwebserver3")} <= okhttp.provides
    assert okhttp.unreadable() == set()


# -- sbt -----------------------------------------------------------------------------------
def test_sbt_settings_seqs_scopes_and_what_is_no_dependency(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "project/Dependencies.scala": """
            import sbt._
            object Dependencies {
              val circeVersion = "0.14.9"
              val circe = Seq(
                "io.circe" %% "circe-core" % circeVersion,
                "io.circe" %% "circe-parser" % circeVersion
              )
              val munit = "org.scalameta" %% "munit" % "1.0.0" % Test
            }
        """,
        "project/plugins.sbt": 'addSbtPlugin("com.github.sbt" % "sbt-ci-release" % "1.5.12")\n',
        "build.sbt": """
            ThisBuild / organization := "com.acme"
            val catsVersion = "2.10.0"
            lazy val core = (project in file("core"))
              .settings(
                moduleName := "acme-core",
                libraryDependencies ++= Dependencies.circe :+ Dependencies.munit,
                libraryDependencies += "org.typelevel" %%% "cats-core" % catsVersion,
                Test / libraryDependencies += "org.scalacheck" %% "scalacheck" % "1.17.0",
                libraryDependencies += "com.acme" % "legacy" % "1" % "test->test",
                libraryDependencies += "javax.servlet" % "servlet-api" % "2.5" % Provided,
                mimaPreviousArtifacts := Set("com.acme" %% "acme-core" % "0.9.0"),
                dependencyOverrides += "com.acme" %% "pinned" % "3.0"
              )
            lazy val docs = project.dependsOn(core)
              .settings(libraryDependencies += "com.acme" %% "site-kit" % "1.0")
            lazy val internal = project.enablePlugins(NoPublishPlugin)
            lazy val server = project.dependsOn(ProjectRef(file("../gateway"), "gateway"))
        """,
    }))
    assert m.provides == {("maven", "com.acme:acme-core"), ("maven", "com.acme:server")}
    got = reqs(m)
    assert got[("io.circe:circe-core", "project/Dependencies.scala")] == ("runtime", 5, "0.14.9")
    assert got[("org.scalameta:munit", "project/Dependencies.scala")] == ("dev", 8, "1.0.0")
    assert got[("org.typelevel:cats-core", "build.sbt")] == ("runtime", 7, "2.10.0")
    assert got[("org.scalacheck:scalacheck", "build.sbt")] == ("dev", 8, "1.17.0")
    assert got[("com.acme:legacy", "build.sbt")] == ("dev", 9, "1")
    assert got[("javax.servlet:servlet-api", "build.sbt")] == ("build", 10, "2.5")
    assert got[("com.acme:site-kit", "build.sbt")][0] == "dev"  # the docs project's
    assert got[("com.github.sbt:sbt-ci-release", "project/plugins.sbt")] == ("build", 1, "1.5.12")
    assert ("com.acme:pinned", "build.sbt") not in got  # an override pins
    assert ("com.acme:acme-core", "build.sbt") not in got  # MiMa's previous artifacts
    (outside,) = [r for r in m.requires if r.package[0] == "path"]
    assert (outside.file, outside.line, outside.path) == ("build.sbt", 17,
                                                          str(tmp_path.parent / "gateway"))
    assert "scala" in m.tags


def test_a_scala_suffix_is_matched_whatever_build_names_it(tmp_path: Path) -> None:
    """%% in sbt, cats-core_2.13 in a pom, cats-core_3 in a Gradle build: one package."""
    pom = dm.read(write(tmp_path / "pom", {"pom.xml": """
        <project><groupId>com.acme</groupId><artifactId>app</artifactId>
          <dependencies><dependency><groupId>org.typelevel</groupId>
            <artifactId>cats-core_2.13</artifactId><version>2.10.0</version>
          </dependency></dependencies></project>
    """}))
    gradle = dm.read(write(tmp_path / "gradle", {
        "build.gradle": "dependencies { implementation 'org.typelevel:cats-core_sjs1_3:2.10.0' }\n"}))
    sbt = dm.read(write(tmp_path / "sbt", {
        "build.sbt": 'organization := "org.typelevel"\nlazy val core = project.settings(\n'
                     '  moduleName := "cats-core")\n'}))
    assert ("maven", "org.typelevel:cats-core") in sbt.provides
    assert {r.package for r in pom.requires} == {("maven", "org.typelevel:cats-core")}
    assert {r.package for r in gradle.requires} == {("maven", "org.typelevel:cats-core")}


def test_an_sbt_build_without_an_organization_says_so(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"build.sbt": 'lazy val core = project\n'}))
    assert m.provides == set()
    assert notes(m) == ["build.sbt: no organization set (organization := ...): its projects "
                        "provide nothing coord can match"]


# -- Maven ---------------------------------------------------------------------------------
def test_maven_parent_bom_and_properties_from_another_repo(tmp_path: Path) -> None:
    parent = dm.read(write(tmp_path / "platform", {"pom.xml": """
        <project>
          <groupId>com.acme</groupId><artifactId>platform</artifactId><version>7</version>
          <packaging>pom</packaging>
          <properties>
            <acme.version>7.1.0</acme.version>
            <ledger.group>com.acme.ledger</ledger.group>
          </properties>
          <dependencyManagement><dependencies>
            <dependency><groupId>com.acme</groupId><artifactId>events</artifactId>
              <version>${acme.version}</version></dependency>
          </dependencies></dependencyManagement>
        </project>
    """}))
    bom = dm.read(write(tmp_path / "bom", {"pom.xml": """
        <project><groupId>com.acme</groupId><artifactId>acme-bom</artifactId><version>3</version>
          <dependencyManagement><dependencies>
            <dependency><groupId>com.acme</groupId><artifactId>audit</artifactId>
              <version>3.3</version></dependency>
          </dependencies></dependencyManagement>
        </project>
    """}))
    app = dm.read(write(tmp_path / "app", {"pom.xml": """
        <project>
          <parent><groupId>com.acme</groupId><artifactId>platform</artifactId>
            <version>7</version></parent>
          <artifactId>app</artifactId>
          <dependencyManagement><dependencies>
            <dependency><groupId>com.acme</groupId><artifactId>acme-bom</artifactId>
              <version>3</version><type>pom</type><scope>import</scope></dependency>
          </dependencies></dependencyManagement>
          <dependencies>
            <dependency><groupId>com.acme</groupId><artifactId>core</artifactId>
              <version>${acme.version}</version></dependency>
            <dependency><groupId>com.acme</groupId><artifactId>events</artifactId></dependency>
            <dependency><groupId>com.acme</groupId><artifactId>audit</artifactId></dependency>
            <dependency><groupId>${ledger.group}</groupId><artifactId>ledger</artifactId>
              <version>1</version></dependency>
          </dependencies>
        </project>
    """}))
    before = reqs(app)
    assert before[("com.acme:platform", "pom.xml")] == ("build", 2, "7")  # <parent>
    assert before[("com.acme:acme-bom", "pom.xml")] == ("build", 6, "3")  # a BOM imported
    assert before[("com.acme:core", "pom.xml")] == ("runtime", 10, None)  # not known alone
    assert "pom.xml:14: dependency ${ledger.group}:ledger names a property no pom of this " \
        "repo defines: not read" in notes(app)
    dm.link([parent, bom, app])  # once the fleet is read
    got = reqs(app)
    assert got[("com.acme:core", "pom.xml")] == ("runtime", 10, "7.1.0")  # the parent's property
    assert got[("com.acme:events", "pom.xml")] == ("runtime", 12, "7.1.0")  # the parent manages
    assert got[("com.acme:audit", "pom.xml")] == ("runtime", 13, "3.3")  # the BOM manages
    assert got[("com.acme.ledger:ledger", "pom.xml")] == ("runtime", 14, "1")
    assert notes(app) == []  # settled



def test_a_fleet_of_poms_is_gathered_once_for_every_pom_left_to_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each checkout whose pom needs another repo's parent settles against the fleet's
    poms, gathered once per link (each gathering them again was quadratic: a thousand
    checkouts, a hundred Maven ones)."""
    from coordination.fleet.manifests import java

    parent = dm.read(write(tmp_path / "platform", {"pom.xml": """
        <project><groupId>com.acme</groupId><artifactId>platform</artifactId>
          <version>7</version><packaging>pom</packaging>
          <properties><acme.version>7.1.0</acme.version></properties>
        </project>
    """}))
    apps = [dm.read(write(tmp_path / f"app{i}", {"pom.xml": f"""
        <project>
          <parent><groupId>com.acme</groupId><artifactId>platform</artifactId>
            <version>7</version></parent>
          <artifactId>app{i}</artifactId>
          <dependencies>
            <dependency><groupId>com.acme</groupId><artifactId>core</artifactId>
              <version>${{acme.version}}</version></dependency>
          </dependencies>
        </project>
    """})) for i in range(12)]
    gathered = []
    real = java._fleet_poms
    monkeypatch.setattr(java, "_fleet_poms", lambda fleet: gathered.append(1) or real(fleet))
    dm.link([parent, *apps])
    assert len(gathered) == 1
    assert all(reqs(a)[("com.acme:core", "pom.xml")][2] == "7.1.0" for a in apps)
# -- .NET ----------------------------------------------------------------------------------
def test_polly_central_versions_test_projects_and_what_it_provides() -> None:
    m = dm.read(FIXTURES / "polly")
    assert m.provides == {("nuget", n) for n in ("polly", "polly.core", "polly.extensions",
                                                 "polly.ratelimiting", "polly.testing")}
    got = reqs(m)
    assert got[("microsoft.bcl.asyncinterfaces", "src/Polly.Core/Polly.Core.csproj")] == (
        "runtime", 32, "6.0.0")  # Directory.Packages.props
    assert got[("fscheck.xunit", "test/Polly.Core.Tests/Polly.Core.Tests.csproj")] == (
        "dev", 18, "3.3.4")
    assert got[("microsoft.extensions.dependencyinjection",
                "bench/Polly.Benchmarks/Polly.Benchmarks.csproj")] == ("dev", 16, "10.0.5")
    assert {"dotnet", "csharp"} <= m.tags and "fsharp" not in m.tags  # no F# project built


def test_dotnet_without_a_solution_analyzers_and_references_out(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "Directory.Build.props": """
            <Project>
              <PropertyGroup><Company>Acme</Company></PropertyGroup>
              <ItemGroup><PackageReference Include="Acme.Analyzers" Version="1.0"
                PrivateAssets="all" /></ItemGroup>
            </Project>
        """,
        "src/Acme.Orders/Acme.Orders.fsproj": """
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><PackageId>$(Company).Orders.Core</PackageId></PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Acme.Ledger">
                  <Version>2.0.1</Version>
                </PackageReference>
                <ProjectReference Include="..\\..\\..\\shared\\Acme.Shared.csproj" />
              </ItemGroup>
            </Project>
        """,
        "src/Acme.Orders.Checks/Acme.Orders.Checks.csproj": """
            <Project Sdk="MSTest.Sdk/3.6.0">
              <ItemGroup><PackageReference Include="Acme.Fakes" Version="1" /></ItemGroup>
            </Project>
        """,
    }))
    assert m.provides == {("nuget", "acme.orders.core")}  # not the MSTest project
    got = reqs(m)
    assert got[("acme.analyzers", "Directory.Build.props")] == ("build", 3, "1.0")
    assert got[("acme.ledger", "src/Acme.Orders/Acme.Orders.fsproj")] == ("runtime", 4, "2.0.1")
    assert got[("acme.fakes", "src/Acme.Orders.Checks/Acme.Orders.Checks.csproj")][0] == "dev"
    (outside,) = [r for r in m.requires if r.package[0] == "path"]
    assert outside.path == str(tmp_path.parent / "shared") and outside.line == 7
    assert "fsharp" in m.tags and "csharp" not in m.tags


# -- Ruby ----------------------------------------------------------------------------------
def test_a_gemfile_without_a_gemspec_is_typed_by_its_groups(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"Gemfile": """
        source "https://rubygems.org"
        gem "rails", "~> 7.1"
        gem "acme-billing", path: "../billing"
        group :development, :test do
          gem "rspec-rails"
          platforms :mri do
            gem "debug"
          end
        end
        gem "acme-audit", "1.2", group: :test
        group :production do
          gem "pg", ">= 1.1", "< 2"  # the database
        end
        gem "acme-ui", require: false
    """}))
    got = reqs(m)
    assert got[("rails", "Gemfile")] == ("runtime", 2, "~> 7.1")
    assert got[("rspec-rails", "Gemfile")] == ("dev", 5, None)
    assert got[("debug", "Gemfile")] == ("dev", 7, None)
    assert got[("acme-audit", "Gemfile")] == ("dev", 10, "1.2")
    assert got[("pg", "Gemfile")] == ("runtime", 12, ">= 1.1, < 2")
    assert got[("acme-ui", "Gemfile")] == ("runtime", 14, None)
    (outside,) = [r for r in m.requires if r.package[0] == "path"]
    assert (outside.line, outside.path) == (3, str(tmp_path.parent / "billing"))
    assert m.provides == set() and "ruby" in m.tags


def test_sinatra_gemspecs_and_its_gems_of_the_repo() -> None:
    m = dm.read(FIXTURES / "sinatra")
    # sinatra.gemspec names itself in Gem::Specification.new; the Gemfile's path: gems
    # are the repo's own gemspecs
    assert m.provides == {("gem", "sinatra"), ("gem", "rack-protection"),
                          ("gem", "sinatra-contrib")}
    got = reqs(m)
    assert got[("rack", "sinatra.gemspec")] == ("runtime", 51, ">= 3.0.0, < 4")
    assert got[("rack-protection", "sinatra.gemspec")] == ("runtime", 52, None)  # a variable
    assert got[("rack", "rack-protection/rack-protection.gemspec")][:2] == ("runtime", 44)
    assert got[("rack", "Gemfile")][0] == "dev"  # the gem's development bundle


# -- PHP -----------------------------------------------------------------------------------
def test_composer_platform_packages_replace_and_dev(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"composer.json": """
        {
          "name": "Acme/Framework",
          "replace": {"acme/http": "self.version", "acme/console": "self.version"},
          "require": {"php": ">=8.1", "ext-json": "*", "lib-pcre": "*",
                      "composer-runtime-api": "^2", "psr/log": "^3.0"},
          "require-dev": {"phpunit/phpunit": "^10"}
        }
    """}))
    assert m.provides == {("composer", "acme/framework"), ("composer", "acme/http"),
                          ("composer", "acme/console")}
    assert {(r.package[1], r.type) for r in m.requires} == {("psr/log", "runtime"),
                                                            ("phpunit/phpunit", "dev")}
    assert "php" in m.tags


# -- Python --------------------------------------------------------------------------------
def test_setup_py_read_without_running_it(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"setup.py": """
        import os
        from setuptools import setup
        os.system("echo never run")
        deps = ["acme-core>=2", "requests"]
        setup(
            name="Acme.Orders",
            install_requires=deps,
            extras_require={"test": ["pytest"], "pg": ["psycopg>=3"]},
            setup_requires=["setuptools_scm"],
            tests_require=read_requirements("test.txt"),
        )
    """}))
    assert m.provides == {("python", "acme-orders")}
    got = reqs(m)
    assert got[("acme-core", "setup.py")] == ("runtime", 4, ">=2")
    assert got[("pytest", "setup.py")][:2] == ("dev", 8)
    assert got[("psycopg", "setup.py")] == ("optional", 8, ">=3")
    assert got[("setuptools-scm", "setup.py")][:2] == ("build", 9)
    assert notes(m) == ["setup.py:10: tests_require is computed by the script: not read"]


def test_requirements_beside_the_packages_metadata_are_its_environment(tmp_path: Path) -> None:
    files = {"requirements.txt": "-e .[dev]\nacme-server==1.0\n",
             "requirements/docs.txt": "acme-theme\n"}
    app = dm.read(write(tmp_path / "app", files))  # an application: its requirements
    assert {(r.package[1], r.type) for r in app.requires if r.package[0] == "python"} == {
        ("acme-server", "runtime"), ("acme-theme", "dev")}
    lib = dm.read(write(tmp_path / "lib", {**files, "setup.cfg": "[metadata]\nname = lib\n"}))
    assert {(r.package[1], r.type) for r in lib.requires if r.package[0] == "python"} == {
        ("acme-server", "dev"), ("acme-theme", "dev")}


def test_pipfile(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"Pipfile": """
        [packages]
        acme-core = ">=2"
        requests = "*"
        [dev-packages]
        pytest = "*"
    """}))
    assert reqs(m) == {("acme-core", "Pipfile"): ("runtime", 2, ">=2"),
                       ("requests", "Pipfile"): ("runtime", 3, None),
                       ("pytest", "Pipfile"): ("dev", 5, None)}


# -- Go, npm examples ----------------------------------------------------------------------
def test_a_go_repo_whose_modules_are_all_nested(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "README.md": "# stdlib\n",
        "strutil/go.mod": "module example.com/stdlib/strutil\n\ngo 1.22\n",
        "parseutil/go.mod": ("module example.com/stdlib/parseutil\n\ngo 1.22\n\n"
                             "require example.com/wrapping v2.0.0\n"),
        "examples/cli/go.mod": ("module example.com/stdlib/examples/cli\n\n"
                                "require example.com/kms v1.0.0\n"),
    }))
    assert m.provides == {("go", "example.com/stdlib/strutil"),
                          ("go", "example.com/stdlib/parseutil"),
                          ("go", "example.com/stdlib/examples/cli")}
    assert reqs(m) == {("example.com/wrapping", "parseutil/go.mod"): ("runtime", 5, "v2.0.0"),
                       ("example.com/kms", "examples/cli/go.mod"): ("dev", 3, "v1.0.0")}
    assert "go" in m.tags


def test_a_private_example_member_makes_no_runtime_edge(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "package.json": '{"name": "h3", "private": true, "workspaces": ["packages/*", '
                        '"examples/*", "playground"]}\n',
        "packages/h3/package.json": '{"name": "h3", "dependencies": {"ufo": "^1"}}\n',
        "examples/basic/package.json": '{"name": "basic", "private": true, '
                                       '"dependencies": {"listhen": "^1", "h3": "*"}}\n',
        "playground/package.json": '{"name": "playground", "private": true, '
                                   '"dependencies": {"nitropack": "^2"}}\n',
    }))
    assert m.provides == {("npm", "h3")}  # not "basic" nor "playground"
    got = reqs(m)
    assert got[("ufo", "packages/h3/package.json")][0] == "runtime"
    assert got[("listhen", "examples/basic/package.json")][0] == "dev"
    assert got[("nitropack", "playground/package.json")][0] == "dev"


def test_an_sbt_module_built_from_settings_is_a_note(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {"build.sbt": """
        organization := "com.acme"
        libraryDependencies += organization.value %% "acme-macros" % version.value
        libraryDependencies += "org.typelevel" %% s"cats-$module" % "2.10.0"
    """}))
    assert m.requires == []
    assert notes(m) == [
        "build.sbt:2: a dependency whose group or artifact is computed by the build: not read",
        "build.sbt:3: a dependency whose group or artifact is computed by the build: not read"]


def test_gradle_builds_including_each_other_and_a_project_dir_out(tmp_path: Path) -> None:
    m = dm.read(write(tmp_path, {
        "settings.gradle": "include ':a', ':b'\nproject(':b').projectDir = file('../b')\n"
                           "includeBuild 'tools'\n",
        "gradle.properties": "GROUP=com.acme\n",
        "tools/settings.gradle": "includeBuild '..'\n",
        "tools/build.gradle": "dependencies { implementation 'com.acme:tool-lib:1' }\n",
    }))
    assert ("maven", "com.acme:a") in m.provides and ("maven", "com.acme:b") not in m.provides
    assert {r.package for r in m.requires} == {("maven", "com.acme:tool-lib")}
    assert "settings.gradle: project :b's directory '../b' leaves the checkout: not read" \
        in notes(m)
