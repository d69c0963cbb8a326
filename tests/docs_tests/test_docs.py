"""Every Python block in docs/ runs against the real local server, and shows true output.

`harness.py` says how a page is read (blocks, shown outputs, ``docs-test`` directives). Each
page runs in a fresh temporary working directory with its own module namespace. Services a
page names in a directive are started for it on loopback:

- ``{server}``: the llama.cpp test server's root (the session fixture's, without ``/v1``);
- ``{torchserve}``: the in-house torch-serve-style API of ``tests/servers/torchserve.py``;
- ``{kserve}``: a KServe v1 predictor (below); both answer with the real model's text;
- ``{embeddings}``: the llama.cpp embeddings server's root (``embeddings_base_url``), and
  ``{ollama_embed}`` / ``{tei}``: the Ollama and TEI emulators in front of it;
- ``{images}``: the OpenAI images emulator of ``tests/servers/images.py`` (its root; it
  draws real PNGs), which takes any key (docs show a key without making one up each time);
- ``{replica}``: the llama.cpp test server again, at a second address (a loopback TCP
  forwarder, ``tests/servers/tcp_proxy.py``): docs/replicas.md's second replica;
- ``{langsmith}``: the LangSmith collector of ``tests/servers/langsmith_collector.py``, with
  tracing turned on (``LANGSMITH_TRACING``, a fake ``LANGSMITH_API_KEY``) for the page.

Checks reach a service's server object as ``_services[name]``.

Run: ``make docs-test`` (or ``pytest tests/docs_tests --allow-hosts=127.0.0.1``).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.tracers.langchain import wait_for_all_tracers
from langsmith import run_trees
from langsmith import utils as ls_utils

from tests.docs_tests.harness import DOCS, PYTHON, Page, Runner, expand_snippets, matches, parse
from tests.servers import langsmith_collector, torchserve
from tests.servers.base import Backend, Handler, LoopbackServer
from tests.servers.embeddings import LlamaEmbedder, serve_ollama, serve_tei
from tests.servers.images import serve_images
from tests.servers.tcp_proxy import ForwardingProxy

MODEL = "smollm2"
PAGES = sorted(DOCS.rglob("*.md"))
PARSED = {path: parse(path) for path in PAGES}
RUNNABLE = [path for path, page in PARSED.items() if page.python_blocks]

# The public API: every name these modules export must be in the API reference, documented.
PUBLIC_MODULES = (
    "langchain_customllm",
    "langchain_customllm.formats",
    "langchain_customllm.formats.prompt",
    "langchain_customllm.profiles",
    "langchain_customllm.pricing",
    "langchain_customllm.usage",
    "langchain_customllm.config",
    "langchain_customllm.serve",
)


class KServeHandler(Handler):
    """KServe's v1 predict protocol, answered by the real model (for docs/custom-api.md)."""

    def do_POST(self) -> None:
        match = re.fullmatch(r"/v1/models/([^/:]+):predict", self.path)
        if match is None:
            self.send_json(404, {"error": f"no model at {self.path}"})
            return
        instance = self.read_json()["instances"][0]
        request: dict[str, Any] = {"prompt": instance["prompt"], "model": self.backend.model}
        for key in ("max_tokens", "stop", "temperature"):
            if instance.get(key) is not None:
                request[key] = instance[key]
        result = self.backend.complete(request)
        choice, usage = result["choices"][0], result["usage"]
        prediction = {
            "generated": choice["text"],
            "finish_reason": choice["finish_reason"],
            "tokens": {"prompt": usage["prompt_tokens"], "completion": usage["completion_tokens"]},
        }
        self.send_json(200, {"predictions": [prediction]})


def _reset_langsmith() -> None:
    # The SDK caches its environment reads and one global client: start from scratch.
    if run_trees._CLIENT is not None:
        run_trees._CLIENT.flush()
        run_trees._CLIENT = None
    ls_utils.get_env_var.cache_clear()
    ls_utils.get_tracer_project.cache_clear()


@contextlib.contextmanager
def langsmith(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """A LangSmith collector on loopback, with tracing on until the page ends."""
    with langsmith_collector.serve() as server:
        for name in ("LANGCHAIN_TRACING_V2", "LANGCHAIN_ENDPOINT", "LANGCHAIN_API_KEY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("LANGSMITH_TRACING", "true")
        monkeypatch.setenv("LANGSMITH_ENDPOINT", server.url)
        monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-docs-test-not-a-real-key")
        monkeypatch.setenv("LANGSMITH_PROJECT", "customllm-docs-test")
        monkeypatch.setenv("LANGSMITH_DISABLE_RUN_COMPRESSION", "true")
        _reset_langsmith()
        try:
            yield server
        finally:
            wait_for_all_tracers()
            _reset_langsmith()


@contextlib.contextmanager
def services(
    page: Page,
    base_url: str,
    monkeypatch: pytest.MonkeyPatch,
    embeddings_url: Callable[[], str] = lambda: "",
) -> Iterator[tuple[dict[str, str], dict[str, LoopbackServer]]]:
    """Start the loopback services the page's directives name: their URLs and servers."""
    wanted = set()
    for step in page.steps:
        wanted.update(re.findall(r"\{(\w+)\}", getattr(step, "arg", "") or ""))
    servers: dict[str, LoopbackServer] = {}
    with contextlib.ExitStack() as stack:
        backend = Backend(base_url, MODEL)
        if "torchserve" in wanted:
            servers["torchserve"] = stack.enter_context(torchserve.serve(backend))
        if "kserve" in wanted:
            servers["kserve"] = stack.enter_context(LoopbackServer(KServeHandler, backend))
        if "langsmith" in wanted:
            servers["langsmith"] = stack.enter_context(langsmith(monkeypatch))
        if "images" in wanted:  # docs/images.md
            servers["images"] = stack.enter_context(serve_images(key=None))
        found = {"server": base_url.removesuffix("/v1")}
        if "replica" in wanted:  # docs/replicas.md: one server, two addresses
            port = httpx.URL(base_url).port
            assert port is not None
            found["replica"] = stack.enter_context(ForwardingProxy(port)).root
        if wanted & {"embeddings", "ollama_embed", "tei"}:  # docs/embeddings.md
            found["embeddings"] = embeddings_url().removesuffix("/v1")
            embedder = stack.enter_context(contextlib.closing(LlamaEmbedder(embeddings_url())))
            servers["ollama_embed"] = stack.enter_context(serve_ollama(embedder))
            servers["tei"] = stack.enter_context(serve_tei(embedder))
        found.update({name: server.url for name, server in servers.items()})
        unknown = wanted - found.keys()
        assert not unknown, f"{page.path}: no such docs service: {sorted(unknown)}"
        yield found, servers


@pytest.mark.integration
@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_runs(
    path: Path,
    base_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    page = PARSED[path]
    monkeypatch.chdir(tmp_path)
    for name in ("CUSTOMLLM_API_KEY", "LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        monkeypatch.delenv(name, raising=False)

    def embeddings_url() -> str:
        # The embeddings server is started only for the pages that name it.
        return str(request.getfixturevalue("embeddings_base_url"))

    with services(page, base_url, monkeypatch, embeddings_url) as (found, servers):
        runner = Runner(page, tmp_path, found, objects={"_services": servers})
        try:
            runner.run(monkeypatch.setenv)
        finally:
            for where, seconds in runner.timings:
                print(f"{seconds:6.2f} s  {where}")
    assert runner.ran + len(runner.skipped) == len(page.python_blocks)
    assert runner.ran > 0, f"{path}: every Python block is skipped"


def test_docs_have_python_blocks() -> None:
    """No blocks found must fail, not pass vacuously."""
    blocks = [b for page in PARSED.values() for b in page.python_blocks]
    assert len(RUNNABLE) >= 9, f"only {len(RUNNABLE)} pages with Python blocks"
    assert len([b for b in blocks if b.skip is None]) >= 40, "too few runnable Python blocks"
    # Every fence that looks like Python was parsed as a block (none hidden by odd indentation).
    fence = re.compile(r"^\s*(`{3,}|~{3,})\s*\{?\.?(" + "|".join(PYTHON) + r")\b", re.M)
    for path, page in PARSED.items():
        seen = len(fence.findall(expand_snippets(path.read_text())))
        assert seen == len(page.python_blocks), f"{path}: {seen} fences, parsed {page}"


def test_skipped_blocks_say_why() -> None:
    for path, page in PARSED.items():
        for block in page.python_blocks:
            if block.skip is not None:
                assert len(block.skip.split()) >= 3, f"{path}:{block.line}: skip needs a reason"


def test_harness_compares_outputs(tmp_path: Path) -> None:
    """The harness itself: a wrong output, a failing check and a bad skip are caught."""
    assert matches("a ... c", "a b\nb c\n")
    assert not matches("a ... c", "a b d")
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\nprint(x + 1)\n```\n\n```text\n3\n```\n")
    with pytest.raises(AssertionError, match="differs from what the block printed"):
        Runner(parse(page), tmp_path, {"server": "http://127.0.0.1:1"}).run(lambda k, v: None)
    page.write_text("```python\nx = 1\n```\n<!-- docs-test: check\nassert x == 2\n-->\n")
    with pytest.raises(AssertionError):
        Runner(parse(page), tmp_path, {"server": "http://127.0.0.1:1"}).run(lambda k, v: None)
    page.write_text("<!-- docs-test: skip no Python here -->\n```text\nx\n```\n")
    with pytest.raises(ValueError, match="must precede a Python block"):
        parse(page)


def test_outputs_follow_python_blocks() -> None:
    """A shown output is compared only after a Python block; make sure some are."""
    shown = [b for page in PARSED.values() for b in page.blocks if b.lang == "text"]
    assert sum(b.after_python for b in shown) >= 10


# ------------------------------------------------------------------ the API reference


def _resolve(dotted: str) -> Any:
    """The object a ``::: dotted.path`` directive documents."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attribute in parts[i:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


def _documented_ids() -> set[int]:
    targets = []
    for page in (DOCS / "reference").rglob("*.md"):
        targets += re.findall(r"^:::\s*([\w.]+)", page.read_text(), flags=re.M)
    assert targets, "docs/reference has no ::: directives"
    return {id(_resolve(target)) for target in targets}


def _public_objects() -> Iterator[tuple[str, Any]]:
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if name.startswith("__"):
                continue
            yield f"{module_name}.{name}", getattr(module, name)


def test_reference_lists_every_public_name() -> None:
    documented = _documented_ids()
    missing = [dotted for dotted, obj in _public_objects() if id(obj) not in documented]
    assert not missing, f"not in docs/reference: {missing}"


def _undocumented_fields(cls: type) -> list[str]:
    """Annotated class attributes with neither an attribute docstring nor an Attributes entry."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return []
    tree = ast.parse(inspect.cleandoc("\n" + source) if source[0].isspace() else source)
    node = tree.body[0]
    assert isinstance(node, ast.ClassDef)
    doc = inspect.getdoc(cls) or ""
    missing = []
    for i, stmt in enumerate(node.body):
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            continue
        name = stmt.target.id
        if name.startswith("_") or "ClassVar" in ast.unparse(stmt.annotation):
            continue
        following = node.body[i + 1] if i + 1 < len(node.body) else None
        has_docstring = (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        )
        if not has_docstring and not re.search(rf"^\s+{name}\b.*:", doc, flags=re.M):
            missing.append(name)
    return missing


def test_every_public_object_is_documented() -> None:
    problems = []
    for dotted, obj in _public_objects():
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # constants (PROFILES, ...) are described by their module and page
        if not inspect.getdoc(obj):
            problems.append(f"{dotted}: no docstring")
        if not inspect.isclass(obj):
            continue
        problems += [f"{dotted}.{f}: field without a docstring" for f in _undocumented_fields(obj)]
        for name, member in vars(obj).items():
            if name.startswith("_") or not (callable(member) or isinstance(member, property)):
                continue
            if not inspect.getdoc(member):
                problems.append(f"{dotted}.{name}: no docstring")
    assert not problems, "\n".join(problems)
