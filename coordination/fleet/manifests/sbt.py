"""sbt builds: ``build.sbt``, ``project/*.sbt`` and ``project/*.scala``, read statically
(sbt's build definition is Scala: coord never compiles or runs it).

A dependency is written ``"group" % "artifact" % "version"`` (``%%``/``%%%``: the artifact
gets a Scala suffix, ``cats-core_2.13``, matched without it), with a configuration after
it (``% Test``, ``% "test->test"``: dev; ``% Provided``: build; ``% Optional``:
optional). Only those under ``libraryDependencies`` count (``+=``, ``++=``, ``:=``, at the
top, in ``.settings(...)``, in a ``Seq`` of settings), or in a ``val``/``def`` such a
setting names (``libraryDependencies ++= jacksons``, transitively); ``addSbtPlugin`` and
``compilerPlugin`` are build requirements. A ``% Test`` scope (``Test /
libraryDependencies``) makes them dev. The same form under other keys is no
dependency (``mimaPreviousArtifacts``, ``dependencyOverrides``,
``libraryDependencySchemes``). A version held in a ``val`` (``CatsVersion``,
``Dependencies.Scala213``) is resolved; a name or artifact computed by code
(``s"specs2-$n"``) is a note.

Projects (``lazy val core = project.in(file("core"))``, ``crossProject(...)``,
``Project("id", file("x"))``) provide ``organization:moduleName`` (``moduleName`` or
``name`` set in the project's own settings, else the val's name); the organization from
``organization :=`` (``ThisBuild /``, ``inThisBuild``, an AutoPlugin's settings in
``project/*.scala``), or the one a plugin sets by default (sbt-typelevel's
``org.typelevel``). A project not published (``publish / skip := true``,
``NoPublishPlugin``, ``publishArtifact := false``) or in an example or test directory
provides nothing. ``dependsOn`` a ``ProjectRef``/``RootProject`` outside the checkout is
another repo (a dependency by path)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from coordination.fleet.manifests import gradle_script as gs
from coordination.fleet.manifests.base import (INCIDENTAL, PATH_ECOSYSTEM, Manifests,
                                               Requirement, incidental, inside, leaves,
                                               local_path, note, outside, read_text,
                                               unknown_versions, unreadable)
from coordination.fleet.manifests.java import jvm_package
from coordination.fleet.manifests.scan import (Token, balanced, interpolate, last_call_opens,
                                               tokens)

_SETTING_OPS = frozenset({":=", "+=", "++=", "~=", "-="})
_MODULE_OPS = frozenset({"%", "%%", "%%%"})
_PLUGIN_CALLS = frozenset({"addSbtPlugin", "compilerPlugin", "addCompilerPlugin"})
_OPENS = frozenset({"(", "[", "{"})
_CLOSE_SIGNS = frozenset({")", "]", "}"})
_PROJECT_STARTS = frozenset({"project", "crossProject", "Project", "projectMatrix"})
#: Plugins that set the organization of the builds using them (their documented default).
PLUGIN_ORGANIZATIONS = {"org.typelevel:sbt-typelevel": "org.typelevel"}
_NO_PUBLISH = ("NoPublishPlugin", "noPublish", "NoPublish")


@dataclass
class _Module:
    file: str
    line: int
    pos: int  # order within the file
    group: str
    artifact: str
    version: str | None
    type: str
    #: What sets a version coord cannot know (a val it found no string for).
    unknown: str | None = None


@dataclass
class _Project:
    name: str
    directory: str | None = None
    module: str | None = None
    published: bool = True
    statement: int = -1

    @property
    def incidental(self) -> bool:
        """An example, docs or test project (by its directory or its id: ``docs``)."""
        return self.name.lower() in INCIDENTAL or bool(
            self.directory and incidental(os.path.join(self.directory, "x")))


@dataclass
class _Sbt:
    out: Manifests
    root: Path
    values: dict[str, str] = field(default_factory=dict)  # string vals
    modules: list[_Module] = field(default_factory=list)  # under libraryDependencies
    in_defs: dict[str, list[_Module]] = field(default_factory=dict)
    refs: dict[str, set[str]] = field(default_factory=dict)  # a def -> names it names
    used: set[str] = field(default_factory=set)  # names libraryDependencies name
    projects: list[_Project] = field(default_factory=list)
    organization: str | None = None
    plugins: list[_Module] = field(default_factory=list)
    #: build.sbt's own ``name :=`` and publishing, for a build defining no project.
    root_name: str | None = None
    root_published: bool = True


def read_build(out: Manifests, root: Path, names: set[str]) -> None:
    """The sbt build at the top of the checkout ``root``."""
    sbt = _Sbt(out, root)
    out.tags.add("scala")
    files = ["build.sbt"] if "build.sbt" in names else []
    extra: list[str] = []
    if not os.path.islink(root / "project"):  # (a symlink may lead out: not listed)
        try:
            extra = sorted(e.name for e in os.scandir(root / "project") if e.name.endswith(
                (".sbt", ".scala")) and e.is_file(follow_symlinks=False))
        except OSError:
            pass
    # project/ first: its vals (Dependencies.scala) are what build.sbt names
    for rel in [f"project/{n}" for n in extra] + files:
        text: str | None = None
        try:
            text = read_text(root / rel, root)
            if text is None:
                continue
            out.files.add(rel)
            if rel.endswith(".scala") and "%" not in text and "organization" not in text:
                continue  # no dependency, no organization: nothing to read (a code generator)
            _read_file(sbt, rel, balanced(list(tokens(text, dollar=False, apostrophes=True))))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            out.problems.append(unreadable(rel, exc, text))
    _finish(sbt)


def _read_file(sbt: _Sbt, rel: str, toks: list[Token]) -> None:
    objects: list[str | None] = []
    #: Per block depth, what a block's statements are part of: the definition
    #: (``val deps = if (c) {``) or the setting (``libraryDependencies ++= {``) whose
    #: value the block is; (None, None) for neither.
    contexts: list[_Context] = []
    last: dict[int, _Context] = {}  # the block last opened at a depth (for ``} else {``)
    for n, st in enumerate(_joined(gs.statements(toks))):
        depth = len(st.blocks)
        del objects[depth:]
        del contexts[depth:]
        t = list(st.tokens)
        if not t:
            continue
        inherited = contexts[-1] if contexts and len(contexts) == depth else _NO_CONTEXT
        if st.opens:
            objects.extend([None] * (depth - len(objects)))
            name = t[1].text if t[0].is_name("object") and len(t) > 1 else (
                t[2].text if t[0].is_name("case") and len(t) > 2 else None)
            objects.append(name)
        prefix = ".".join(o for o in objects[:depth] if o)
        _statement(sbt, rel, n, t, prefix, inherited)
        if st.opens:
            contexts.extend([_NO_CONTEXT] * (depth - len(contexts)))
            ctx = _block_context(t, prefix, inherited, last.get(depth))
            contexts.append(ctx)
            last[depth] = ctx


#: What a block's statements are part of: (the definition, the setting).
_Context = tuple["str | None", "tuple[str, str] | None"]
_NO_CONTEXT: _Context = (None, None)


def _block_context(t: list[Token], prefix: str, inherited: _Context,
                   before: _Context | None) -> _Context:
    """What the block ``t`` opens is part of: ``} else {`` the block before it at its
    depth; ``val x = ... {`` that definition; ``key op= ... {`` that setting; an
    ``object`` nothing; anything else (``if (c) {``, ``.map {``) what it is in."""
    if t[0].is_name("else"):
        return before or inherited
    if t[0].is_name("object", "class", "trait", "case"):
        return _NO_CONTEXT
    name, start = _definition(t)
    if name:
        return (f"{prefix}.{name}" if prefix else name), None
    for i, tok in enumerate(t[1:], 1):
        if tok.kind == "op" and tok.text in _SETTING_OPS and t[i - 1].kind == "name":
            scope = t[i - 3].text if i >= 3 and t[i - 2].is_op("/") else ""
            return None, (t[i - 1].text, scope)
    return inherited


def _dangling(t: tuple[Token, ...]) -> bool:
    """Does the statement end in an ``if (...)`` with no branch yet, or an ``else``
    (Scala reads the branch on the next line as part of it)?"""
    if not t:
        return False
    if t[-1].is_name("else"):
        return True
    if not t[-1].is_op(")"):
        return False
    i = last_call_opens(t)
    return i > 0 and t[i - 1].is_name("if")


def _joined(sts: Iterable[gs.Statement]) -> Iterator[gs.Statement]:
    """The statements as Scala reads them where a newline does not end one: an
    ``if (...)`` and its branch on the next line, an ``else`` (and its branch) on the
    line after, a ``++`` chain going on on the next line."""
    held: gs.Statement | None = None
    for st in sts:
        if held is not None:
            if not st.opens and st.tokens and st.blocks == held.blocks and (
                    _dangling(held.tokens) or st.tokens[0].is_name("else")
                    or st.tokens[0].is_op("++", "++:", ":::")):
                held = gs.Statement(held.tokens + st.tokens, held.blocks)
                continue
            yield held
            held = None
        if st.opens:
            yield st
        else:
            held = st
    if held is not None:
        yield held


def _definition(t: list[Token]) -> tuple[str | None, int]:
    """The name a statement defines (``lazy val x =``, ``def x(...) =``), and where its
    right-hand side starts."""
    i = 0
    while i < len(t) and t[i].is_name("lazy", "private", "override", "final", "implicit"):
        i += 1
    if i + 1 < len(t) and t[i].is_name("val", "def", "var") and t[i + 1].kind == "name":
        name = t[i + 1].text
        j = i + 2
        depth = 0
        while j < len(t):
            if t[j].is_op("(", "["):
                depth += 1
            elif t[j].is_op(")", "]"):
                depth -= 1
            elif depth == 0 and t[j].is_op("="):
                return name, j + 1
            j += 1
        return name, len(t)
    return None, 0


def _statement(sbt: _Sbt, rel: str, n: int, t: list[Token], prefix: str,
               inherited: _Context = _NO_CONTEXT) -> None:
    name, start = _definition(t)
    qualified = f"{prefix}.{name}" if prefix and name else name
    if name and start < len(t):
        value = gs.string_of(t[start:], sbt.values) if len(t) - start <= 3 else None
        if value is not None:
            sbt.values[name] = value
            if qualified:
                sbt.values[qualified] = value
    project = _project(t, start, name) if name and rel == "build.sbt" else None
    if project is not None:
        project.statement = n
        sbt.projects.append(project)
    if rel == "build.sbt" and name is None and not prefix and inherited == _NO_CONTEXT:
        _top_setting(sbt, t)
    _walk(sbt, rel, t, start, qualified or inherited[0], project, inherited[1])


def _top_setting(sbt: _Sbt, t: list[Token]) -> None:
    """``name := "x"`` (``moduleName``) at the top of build.sbt: the root project's
    name, for a build defining no project (jackson-module-scala)."""
    if len(t) == 3 and t[0].is_name("name", "moduleName") and t[1].is_op(":=") \
            and t[2].kind == "str" and not t[2].interpolated:
        if t[0].text == "moduleName" or sbt.root_name is None:
            sbt.root_name = t[2].text
    elif len(t) == 5 and t[0].is_name("publish") and t[1].is_op("/") \
            and t[2].is_name("skip") and t[3].is_op(":=") and t[4].is_name("true"):
        sbt.root_published = False
    elif len(t) == 3 and t[0].is_name("publishArtifact") and t[1].is_op(":=") \
            and t[2].is_name("false"):
        sbt.root_published = False


def _project(t: list[Token], start: int, name: str) -> _Project | None:
    rhs = t[start:]
    head = next((x for x in rhs if x.kind == "name"), None)
    if head is None or head.text not in _PROJECT_STARTS:
        return None
    project = _Project(name)
    for i, x in enumerate(rhs[:-3]):
        if x.is_name("file") and rhs[i + 1].is_op("(") and rhs[i + 2].kind == "str":
            project.directory = os.path.normpath(rhs[i + 2].text)
            break
    if project.directory is None and head.text == "project":
        project.directory = name
    for x in rhs:
        if x.kind == "name" and x.text.startswith(_NO_PUBLISH):
            project.published = False
    return project


@dataclass
class _Frame:
    owner: tuple[str, str] | None = None  # (setting key, scope) or ("plugin", "")
    key_at: int = -1


def _walk(sbt: _Sbt, rel: str, t: list[Token], start: int, defined: str | None,
          project: _Project | None, owner: tuple[str, str] | None = None) -> None:
    """Each token of a statement with its owner: the setting it is the value of (the
    innermost), else the definition it is in (``owner``: the setting whose block the
    statement is in, ``libraryDependencies ++= { ... }``)."""
    frames = [_Frame(owner)]
    # The innermost owner, found again only where a bracket or a setting changed the
    # frames (a build's statements run to thousands of tokens: not once a token).
    owner = owner or None
    i, n = start, len(t)
    while i < n:
        tok = t[i]
        kind, text = tok.kind, tok.text
        if kind == "op":
            if text in _SETTING_OPS and i > 0 and t[i - 1].kind == "name":
                scope = t[i - 3].text if i >= 3 and t[i - 2].is_op("/") else ""
                frames[-1].owner = (t[i - 1].text, scope)
                _setting_value(sbt, project, t, i, frames[-1].owner)
            elif text in _OPENS:
                call = t[i - 1].text if i > 0 and t[i - 1].kind == "name" else ""
                frames.append(_Frame(("plugin", "") if call in _PLUGIN_CALLS else None))
            elif text in _CLOSE_SIGNS:
                if len(frames) > 1:
                    frames.pop()
            elif text == "," or text == ";":
                frames[-1].owner = None
            else:
                if text in ("%%", "%%%") and owner is not None \
                        and owner[0] == "libraryDependencies":
                    # a group or artifact from a setting, not written
                    # (scalaOrganization.value %% ...): a dependency coord cannot know
                    note(sbt.out, rel, tok.line, "a dependency whose group or artifact is "
                         "computed by the build: not read")
                i += 1
                continue
            owner = next((f.owner for f in reversed(frames) if f.owner), None)
            i += 1
            continue
        if kind == "name":
            _name_use(sbt, text, owner, defined)
            if text in ("RootProject", "ProjectRef"):
                _project_ref(sbt, rel, t, i)
        elif kind == "str" and i + 2 < n and t[i + 1].kind == "op" \
                and t[i + 1].text in _MODULE_OPS and t[i + 2].kind == "str":
            i = _module(sbt, rel, t, i, owner, defined, project)
            continue
        i += 1


def _name_use(sbt: _Sbt, name: str, owner: tuple[str, str] | None, defined: str | None) -> None:
    if owner is not None and owner[0] == "libraryDependencies":
        sbt.used.add(name)
    elif owner is None and defined:
        sbt.refs.setdefault(defined, set()).add(name)


def _setting_value(sbt: _Sbt, project: _Project | None, t: list[Token], at: int,
                   owner: tuple[str, str]) -> None:
    key = owner[0]
    value = t[at + 1] if at + 1 < len(t) else None
    if value is None:
        return
    if key == "organization" and value.kind == "str" and sbt.organization is None:
        sbt.organization = value.text if not value.interpolated else None
    elif project is not None and key in ("name", "moduleName") and value.kind == "str" \
            and not value.interpolated:
        if key == "moduleName" or project.module is None:
            project.module = value.text
    elif project is not None and ((key == "skip" and owner[1] == "publish"
                                   and value.is_name("true"))
                                  or (key == "publishArtifact" and value.is_name("false"))):
        project.published = False


def _config_type(tok: Token) -> str | None:
    if tok.kind == "name":
        text = tok.text.lower()
    elif tok.kind == "str":
        # "compile->compile;test->test": what each of this project's configurations
        # takes; the strongest of them
        sides = [p.split("->")[0].strip().lower() for p in tok.text.split(";")]
        text = next((s for s in sides if s in ("compile", "runtime")), sides[0] if sides else "")
    else:
        return None
    if text in ("test", "it", "integrationtest") or text.startswith("test"):
        return "dev"
    if text in ("provided", "compileonly"):
        return "build"
    if text == "optional":
        return "optional"
    if text in ("compile", "runtime"):
        return "runtime"
    return None


def _module(sbt: _Sbt, rel: str, t: list[Token], i: int, owner: tuple[str, str] | None,
            defined: str | None, project: _Project | None) -> int:
    """Read the module ``"g" %% "a" % "v" % Test`` starting at ``t[i]``; the index
    after it."""
    g, a = t[i], t[i + 2]
    j = i + 3
    version: str | None = None
    unknown: str | None = None
    type_ = "runtime"
    if j + 1 < len(t) and t[j].is_op("%"):
        v = t[j + 1]
        version = (interpolate(v.text, sbt.values) if v.interpolated else v.text) \
            if v.kind == "str" else _value(sbt, t, j + 1)
        if version is None and (v.kind == "name" or v.interpolated):
            k, unknown = j + 2, v.text
            while k + 1 < len(t) and t[k].is_op(".") and t[k + 1].kind == "name":
                unknown, k = f"{unknown}.{t[k + 1].text}", k + 2
        j += 2
        while j < len(t) and t[j].is_op("."):  # a val's field (Dependencies.Scala213)
            j += 2
    while j < len(t) and t[j].is_op(")"):
        j += 1
    if j + 1 < len(t) and t[j].is_op("%"):
        type_ = _config_type(t[j + 1]) or type_
        j += 2
    if owner is not None and owner[1] in ("Test", "IntegrationTest"):
        type_ = "dev"
    if owner is not None and owner[0] == "plugin":
        type_ = "build" if type_ != "dev" else type_
    if g.interpolated or a.interpolated:
        note(sbt.out, rel, g.line, "a dependency whose group or artifact is computed by "
             "the build: not read")
        return j
    module = _Module(rel, g.line, i, g.text, a.text, version, type_, unknown)
    if project is not None and project.incidental:
        module.type = "dev"
    if owner is not None and owner[0] in ("libraryDependencies", "plugin"):
        (sbt.plugins if owner[0] == "plugin" else sbt.modules).append(module)
    elif owner is None and defined:
        sbt.in_defs.setdefault(defined, []).append(module)
    return j


def _value(sbt: _Sbt, t: list[Token], at: int) -> str | None:
    parts = [t[at].text]
    k = at + 1
    while k + 1 < len(t) and t[k].is_op(".") and t[k + 1].kind == "name":
        parts.append(t[k + 1].text)
        k += 2
    return sbt.values.get(".".join(parts)) or sbt.values.get(parts[-1]) \
        if len(parts) > 1 else sbt.values.get(parts[0])


def _project_ref(sbt: _Sbt, rel: str, t: list[Token], i: int) -> None:
    """``RootProject(file("../x"))``, ``ProjectRef(uri("../x"), "x")``: a build this one
    depends on; outside the checkout, another repo."""
    for k in range(i + 1, min(i + 6, len(t))):
        if t[k].kind == "str" and not t[k].interpolated:
            path = local_path(sbt.root, t[k].text if t[k].text.startswith(
                (".", "/", "~", "file:")) else "./" + t[k].text)
            if path is None:
                return
            if leaves(os.path.relpath(path, sbt.root)) or not inside(path, sbt.root):
                outside(sbt.out, rel, t[k].line, f"project {t[k].text!r}")
                sbt.out.requires.append(Requirement((PATH_ECOSYSTEM, path), "runtime", rel,
                                                    t[k].line, None, path))
            return


def _finish(sbt: _Sbt) -> None:
    out = sbt.out
    wanted = set(sbt.used)
    queue = list(wanted)
    while queue:  # what the defs libraryDependencies names name in turn
        name = queue.pop()
        for key in (name, *[k for k in sbt.refs if k.endswith("." + name)]):
            for ref in sbt.refs.get(key, ()):
                if ref not in wanted:
                    wanted.add(ref)
                    queue.append(ref)
    modules = list(sbt.modules)
    for defined, mods in sbt.in_defs.items():
        if defined in wanted or defined.rsplit(".", 1)[-1] in wanted:
            modules.extend(mods)
    order = {rel: n for n, rel in enumerate(["build.sbt"] + sorted(
        {m.file for m in modules + sbt.plugins if m.file != "build.sbt"}))}
    unknown: dict[str, list[tuple[int, str]]] = {}
    for m in sorted(modules + sbt.plugins, key=lambda m: (order[m.file], m.line, m.pos)):
        out.requires.append(Requirement(jvm_package(m.group, m.artifact), m.type, m.file,
                                        m.line, m.version))
        if m.unknown is not None:
            unknown.setdefault(m.file, []).append((m.line, m.unknown))
    for rel, found in unknown.items():
        unknown_versions(out, rel, found)
    organization = sbt.organization or next(
        (PLUGIN_ORGANIZATIONS[f"{p.group}:{p.artifact}"] for p in sbt.plugins
         if f"{p.group}:{p.artifact}" in PLUGIN_ORGANIZATIONS), None)
    if "build.sbt" in out.unreadable():
        return  # what its projects are is unknown (held), not "none" nor "the root"
    if not sbt.projects and "build.sbt" in out.files:  # one project: the build's root
        sbt.projects.append(_Project(sbt.root_name or os.path.basename(sbt.root), ".",
                                     sbt.root_name, sbt.root_published))
    published = [p for p in sbt.projects if p.published and not p.incidental]
    if organization is None:
        if published:
            note(out, "build.sbt", None, "no organization set (organization := ...): its "
                 "projects provide nothing coord can match")
        return
    for p in published:
        out.provides.add(jvm_package(organization, p.module or p.name))
