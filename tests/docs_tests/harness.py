"""Run the Python code blocks of a Markdown page, in order, in one namespace.

A page is a sequence of steps read from its Markdown source:

- a fenced ``python`` (or ``py``) block runs, its stdout captured; blocks of one page share
  one module namespace, so later blocks build on earlier ones. Top-level ``await`` works;
- a fenced ``text`` block right after a Python block (only blank lines between) is that
  block's output as the page shows it: it must equal what the block printed, with ``...``
  matching any text (doctest's ELLIPSIS) and trailing whitespace ignored;
- ``--8<-- "path"`` lines (the snippets include that MkDocs renders) are replaced with the file
  they name, relative to the repository root, exactly as the site shows them.

Directives are HTML comments, invisible on the site:

- ``<!-- docs-test: skip REASON -->`` right before a Python block: not run. The reason is
  required (the test checks it says something), and pages should say it in words too;
- ``<!-- docs-test: file NAME -->`` right before any block: its text is written to ``NAME`` in
  the page's working directory (a fresh temporary one), so ``models.yaml`` in the docs is the
  file the next block loads;
- ``<!-- docs-test: env NAME=VALUE -->``: sets an environment variable for the rest of the page;
- ``<!-- docs-test: replace OLD NEW -->``: replaces ``OLD`` with ``NEW`` in the page's code,
  for addresses a reader would have (``http://10.0.0.5:8080``) that tests serve on loopback;
- ``<!-- docs-test: check`` ... ``-->``: hidden Python run after the block before it, with
  ``_output`` bound to that block's stdout: loose assertions on nondeterministic answers.

In ``VALUE`` and ``NEW``, ``{name}`` is a service the test provides (see ``test_docs.py``).
``http://127.0.0.1:8765`` (the ``make server`` address the docs use) always becomes the
test server's address.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import re
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DOCS_SERVER = "http://127.0.0.1:8765"
PYTHON = ("python", "py")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<name>[a-z-]+)\s*(?P<rest>.*?)\s*(-->)?\s*$")
_SNIPPET = re.compile(r"""^[ \t]*--8<--[ \t]+["']?(?P<path>[^"'\s]+)["']?[ \t]*$""")


@dataclass
class Block:
    """One fenced block."""

    lang: str
    code: str
    line: int
    skip: str | None = None
    file: str | None = None
    after_python: bool = False

    @property
    def is_python(self) -> bool:
        return self.lang in PYTHON


@dataclass
class Directive:
    """A directive that is a step of its own (env, replace, check)."""

    name: str
    arg: str
    line: int


@dataclass
class Page:
    """A parsed page: its steps in order."""

    path: Path
    steps: list[Block | Directive] = field(default_factory=list)

    @property
    def blocks(self) -> list[Block]:
        return [s for s in self.steps if isinstance(s, Block)]

    @property
    def python_blocks(self) -> list[Block]:
        return [b for b in self.blocks if b.is_python]


def expand_snippets(text: str) -> str:
    """Replace ``--8<-- "path"`` lines with the named file (relative to the repo root)."""
    out = []
    for line in text.splitlines(keepends=True):
        match = _SNIPPET.match(line)
        if match:
            included = (ROOT / match["path"]).read_text()
            out.append(included if included.endswith("\n") else included + "\n")
        else:
            out.append(line)
    return "".join(out)


def parse(path: Path) -> Page:
    """Read a Markdown page into steps (see the module docstring)."""
    lines = expand_snippets(path.read_text()).splitlines()
    page = Page(path)
    pending_skip: str | None = None
    pending_file: str | None = None
    last_was_python = False  # the previous step is a Python block, only blank lines since
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        directive = _DIRECTIVE.match(line)
        if fence:
            indent, marker = fence["indent"], fence["fence"]
            lang = (fence["info"].split() or [""])[0].strip("{}.").lower()
            start = i + 1
            j = start
            while j < len(lines):
                close = lines[j].strip()
                if close.startswith(marker[0] * len(marker)) and not close.strip(marker[0]):
                    break
                j += 1
            else:
                raise ValueError(f"{path}:{i + 1}: unclosed code fence")
            body = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[start:j]]
            if pending_skip is not None and lang not in PYTHON:
                raise ValueError(f"{path}:{i + 1}: a skip directive must precede a Python block")
            page.steps.append(
                Block(
                    lang=lang,
                    code="\n".join(body) + "\n",
                    line=i + 1,
                    skip=pending_skip,
                    file=pending_file,
                    after_python=last_was_python,
                )
            )
            last_was_python = lang in PYTHON
            pending_skip = pending_file = None
            i = j + 1
            continue
        if directive:
            name, rest = directive["name"], directive["rest"]
            if name == "check":
                body = []
                if not line.rstrip().endswith("-->"):
                    i += 1
                    while i < len(lines) and lines[i].strip() != "-->":
                        body.append(lines[i])
                        i += 1
                page.steps.append(Directive("check", "\n".join(body) + "\n", i + 1))
            elif name == "skip":
                pending_skip = rest
            elif name == "file":
                pending_file = rest
            elif name in ("env", "replace"):
                page.steps.append(Directive(name, rest, i + 1))
            else:
                raise ValueError(f"{path}:{i + 1}: unknown docs-test directive {name!r}")
            last_was_python = False
            i += 1
            continue
        if line.strip():
            last_was_python = False
        i += 1
    return page


def matches(expected: str, actual: str) -> bool:
    """Whether printed output matches a shown one, ``...`` matching any text."""

    def norm(text: str) -> str:
        return "\n".join(ln.rstrip() for ln in text.strip("\n").splitlines())

    parts = [re.escape(p) for p in norm(expected).split("...")]
    return re.fullmatch(".*?".join(parts), norm(actual), flags=re.DOTALL) is not None


@dataclass
class Runner:
    """Runs one page's steps; ``services`` fill ``{name}`` placeholders.

    ``objects`` are put in the page's namespace before the first block (for ``check``s).
    """

    page: Page
    workdir: Path
    services: dict[str, str]
    objects: dict[str, object] = field(default_factory=dict)
    ran: int = 0
    outputs_checked: int = 0
    checks: int = 0
    skipped: list[str] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)
    replacements: list[tuple[str, str]] = field(default_factory=list)

    def fill(self, value: str) -> str:
        return value.format(**self.services)

    def run(self, setenv: Callable[[str, str], None]) -> None:
        name = "docs_" + re.sub(r"\W", "_", self.where(0).rsplit(":", 1)[0])
        module = types.ModuleType(name)
        module.__file__ = str(self.workdir / "page.py")
        sys.modules[name] = module  # dataclasses and pydantic look their module up
        module.__dict__.update(self.objects)
        self.replacements = [(DOCS_SERVER, self.services["server"])]
        output = ""
        try:
            for step in self.page.steps:
                where = self.where(step.line)
                if isinstance(step, Directive):
                    if step.name == "env":
                        key, _, value = step.arg.partition("=")
                        setenv(key.strip(), self.fill(value.strip()))
                    elif step.name == "replace":
                        old, new = step.arg.split(maxsplit=1)
                        self.replacements.append((old, self.fill(new)))
                    elif step.name == "check":
                        module.__dict__["_output"] = output
                        self._exec(self._replace(step.arg), module, where)
                        self.checks += 1
                    continue
                code = self._replace(step.code)
                if step.file:
                    (self.workdir / step.file).write_text(code)
                if step.lang == "text" and step.after_python:
                    if not matches(code, output):
                        raise AssertionError(
                            f"{where}: the output shown differs from what the block printed."
                            f"\n--- shown:\n{code}--- printed:\n{output}"
                        )
                    self.outputs_checked += 1
                if not step.is_python:
                    continue
                if step.skip is not None:
                    self.skipped.append(f"{where}: {step.skip}")
                    continue
                started = time.perf_counter()
                output = self._exec(code, module, where)
                self.timings.append((where, time.perf_counter() - started))
                self.ran += 1
        finally:
            sys.modules.pop(name, None)

    def where(self, line: int) -> str:
        path = self.page.path
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        return f"{shown}:{line}"

    def _replace(self, code: str) -> str:
        for old, new in self.replacements:
            code = code.replace(old, new)
        return code

    @staticmethod
    def _exec(code: str, module: types.ModuleType, where: str) -> str:
        compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            result = eval(compiled, module.__dict__)  # our own docs' code
            if compiled.co_flags & inspect.CO_COROUTINE:
                asyncio.run(result)
        return buffer.getvalue()
