"""The Markdown ``run.py`` writes: the issue's targets with verdicts, one table a scenario."""

from __future__ import annotations

from typing import Any

import clients as bc
from harness import OPENAI, OURS, OURS_TEXT, RAW
from scenarios import CHAT_IMPORT, RSS_FLOOR


def _fmt(x: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "n/a" if x is None else f"{x:{spec}}{suffix}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**pass**" if ok else "**FAIL**")


def _floor_note(rows: dict[str, Any]) -> str:
    """'; raw httpx + langchain-core's own cost: N x', where the floor row was measured."""
    floor = rows.get(bc.CORE_FLOOR)
    if floor is None or RAW not in rows:
        return ""
    raw = rows[RAW]["per_unit_us"]
    return f"; raw httpx + langchain-core alone: {(raw + floor['per_unit_us']) / raw:.2f}x"


def _meets(value: float | None, goal: str) -> bool | None:
    """Whether ``value`` meets a goal written ``≤ 1.3x`` or ``≥ 2x`` (None: no goal)."""
    op, _, bound = goal.partition(" ")
    if value is None or op not in ("≤", "≥"):
        return None
    limit = float(bound.rstrip("x"))
    return value <= limit if op == "≤" else value >= limit


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, evaluated for ChatCustomLLM (and CustomLLM where it applies)."""
    sc = res["scenarios"]
    rows: list[dict[str, Any]] = []

    def add(what: str, target: str, value: float | None, note: str = "") -> None:
        ok = _meets(value, target)
        rows.append({"what": what, "target": target, "value": value, "ok": ok, "note": note})

    if "import" in sc:
        m = sc["import"]["modules"]["langchain_customllm"]
        add(
            "import, x langchain_core.language_models (net)",
            "≤ 1.2x",
            m["x_core"],
            f"{m['net_ms']:.0f} ms net; both packages import their public names lazily "
            "(on first access)",
        )
        c = sc["import"]["modules"][CHAT_IMPORT]
        add(
            "`from langchain_customllm import ChatCustomLLM`, x `…chat_models` (net; info)",
            "(no target)",
            c["x_core_chat"],
            f"{c['net_ms']:.0f} ms net; BaseChatModel's module, which any chat model must "
            "load, is the denominator",
        )
    for client in (OURS, OURS_TEXT):
        if "invoke" in sc:
            v = sc["invoke"][client]["x_raw"]
            add(
                f"{client} invoke, x raw httpx per call",
                "≤ 1.3x",
                v,
                f"{sc['invoke'][client]['per_unit_us']:.0f} µs/call",
            )
        for name in ("stream", "astream"):
            if name in sc:
                v = sc[name][client]["x_raw"]
                add(
                    f"{client} {name}, x raw httpx per chunk",
                    "≤ 2.5x",
                    v,
                    f"{sc[name][client]['rate_per_s']:,.0f} chunks/s"
                    + (_floor_note(sc[name]) if client == OURS else ""),
                )
        if "astream_events" in sc:
            v = res["paired"]["astream_events"][client]
            add(
                f"{client} astream_events(v2), x ChatOpenAI's chunk rate",
                "≥ 3x",
                v,
                f"{sc['astream_events'][client]['rate_per_s']:,.0f} chunks/s"
                + (
                    f"; langchain-core alone, no I/O: {floor:.2f}x"
                    if client == OURS
                    and (floor := res["paired"]["astream_events"].get(bc.CORE_FLOOR))
                    else ""
                ),
            )
        if "abatch" in sc:
            v = res["paired"]["abatch"][client]
            add(
                f"{client} abatch (64 in flight), x ChatOpenAI's req/s",
                "≥ 2x",
                v,
                f"{sc['abatch'][client]['rate_per_s']:,.0f} req/s (default transport)",
            )
        if "rss" in sc:
            v = sc["rss"][client]["vmhwm_mib"] / sc["rss"][OPENAI]["vmhwm_mib"]
            add(
                f"{client} peak RSS, x ChatOpenAI's",
                "≤ 0.6x",
                v,
                f"{sc['rss'][client]['vmhwm_mib']:.0f} MiB"
                + (
                    f"; langchain-core's import alone: {sc['rss_floor_mib']:.0f} MiB = "
                    f"{sc['rss_floor_mib'] / sc['rss'][OPENAI]['vmhwm_mib']:.2f}x"
                    if "rss_floor_mib" in sc
                    else ""
                ),
            )
    if "abatch" in sc and "ChatCustomLLM + httpx-aiohttp" in sc["abatch"]:
        v = res["paired"]["abatch"]["ChatCustomLLM + httpx-aiohttp"]
        add(
            "ChatCustomLLM **+ httpx-aiohttp** abatch, x ChatOpenAI's req/s",
            "≥ 2x",
            v,
            "if the default transport were httpx-aiohttp",
        )
    return rows


def render(res: dict[str, Any]) -> str:
    """The generated Markdown: machine, targets, every scenario's table."""
    m = res["machine"]
    v = m["versions"]
    sc = res["scenarios"]
    out = [
        f"Run: {m['date']} · {m['cores']} cores · {m['cpu']} · Python {m['python']} · "
        f"commit {m['commit']}",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val is not None),
        "",
        f"Load average (1 min) at start / end: {m['loadavg_start'][0]:.2f} / "
        f"{res['loadavg_end'][0]:.2f} (other processes share this machine; the ratios are "
        f"per round, so load cancels out of them better than out of absolute numbers). "
        f"Whole run: {res['elapsed_s']:.0f} s. Settings: {res['settings']}.",
        "",
        "### Targets (issue 7)",
        "",
        "| target | goal | measured | verdict | detail |",
        "|---|---|---:|---|---|",
    ]
    for t in targets(res):
        out.append(
            f"| {t['what']} | {t['target']} | {_fmt(t['value'])}x | {_verdict(t['ok'])} | "
            f"{t['note']} |"
        )
    if "import" in sc:
        out += [
            "",
            f"### Import (fresh interpreters, {sc['import']['rounds']} rounds, bytecode cached)",
            "",
            "| module | total ms | net of bare ms | x httpx | x lc_core.language_models | "
            "x lc_core...chat_models |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in sc["import"]["modules"].items():
            out.append(
                f"| {name} | {row['total_ms']:.0f} | {row['net_ms']:.0f} | "
                f"{_fmt(row['x_raw'])} | {_fmt(row['x_core'])} | {_fmt(row['x_core_chat'])} |"
            )
    titles = {
        "invoke": ("Sequential sync invoke", "µs/call", "per_unit_us", ",.0f"),
        "abatch": (
            f"abatch, {res['settings']['calls']:,} calls, max_concurrency="
            f"{res['settings']['concurrency']}",
            "req/s",
            "rate_per_s",
            ",.0f",
        ),
        "stream": (
            f"stream (sync), one response of {res['settings']['chunks']:,} chunks",
            "chunks/s",
            "rate_per_s",
            ",.0f",
        ),
        "astream": (
            f"astream, one response of {res['settings']['chunks']:,} chunks",
            "chunks/s",
            "rate_per_s",
            ",.0f",
        ),
        "astream_events": (
            f'astream_events(version="v2"), {res["settings"]["chunks"]:,} chunks '
            "(raw httpx row: its plain aiter_lines stream)",
            "chunks/s",
            "rate_per_s",
            ",.0f",
        ),
    }
    for key, (title, unit, field, spec) in titles.items():
        if key not in sc:
            continue
        rows = sc[key]
        out += [
            "",
            f"### {title}",
            "",
            f"| client | {unit} (median) | x raw httpx cost, same round (median) | "
            "client CPU µs/unit | stub server CPU, % of a core | chunks yielded |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in rows.items():
            yielded = row.get("yielded")
            out.append(
                f"| {name} | {row[field]:{spec}} | {_fmt(row['x_raw'])} | "
                f"{row['cpu_per_unit_us']:,.1f} | {row['server_cpu_share'] * 100:.1f} | "
                f"{yielded if yielded is not None and key != 'invoke' else ''} |"
            )
    if "rss" in sc:
        out += [
            "",
            "### Peak RSS (VmHWM) of a fresh process running the abatch scenario",
            "",
            f"{res['settings']['rss_calls']} calls, 64 in flight; dev-only packages blocked "
            f"({', '.join(bc.BENCH_ONLY_MODULES)}: langsmith and openai import aiohttp, "
            "httpx its CLI's click/rich/pygments, when installed).",
            "",
            "| client | VmHWM MiB | x raw httpx | of which after import + construction, MiB | "
            "req/s in that process |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, row in sc["rss"].items():
            out.append(
                f"| {name} | {row['vmhwm_mib']:.1f} | {row['x_raw']:.2f} | "
                f"{row['import_mib']:.1f} | {row['req_per_s']:,.0f} |"
            )
        if "rss_floor_mib" in sc:
            floor = sc["rss_floor_mib"]
            out.append(
                f"| {RSS_FLOOR} | {floor:.1f} | {floor / sc['rss'][RAW]['vmhwm_mib']:.2f} | "
                f"{floor:.1f} | |"
            )
            out += [
                "",
                f"The floor is {floor / sc['rss'][OPENAI]['vmhwm_mib']:.2f}x ChatOpenAI's peak: "
                "a chat model on langchain-core cannot go below it, so the 0.6x target is "
                "below what langchain-core itself takes here.",
            ]
    llama = sc.get("llama")
    if llama:
        out += ["", "### End to end against the real llama.cpp server (SmolLM2-135M, CPU)", ""]
        if "skipped" in llama:
            out.append(f"Skipped: {llama['skipped']}")
        else:
            out += [
                f"max_tokens={llama['max_tokens']}, temperature 0, {llama['rounds']} rounds "
                "interleaved, sync streaming.",
                "",
                "| client | time to first token ms | total ms | content chunks |",
                "|---|---:|---:|---:|",
            ]
            for name, row in llama["clients"].items():
                out.append(
                    f"| {name} | {row['ttft_ms']:.1f} | {row['total_ms']:.1f} | "
                    f"{row['chunks']:.0f} |"
                )
            out += [
                "",
                f"Ours / raw httpx, same round: time to first token "
                f"{llama['ttft_ms_x_raw']:.3f}x, total {llama['total_ms_x_raw']:.3f}x.",
            ]
    out += [
        "",
        "Stub server: the highest share of one core it used during any scenario was "
        f"{res['server_cpu_max'] * 100:.0f}% (column above: per client, over all rounds); "
        "the client process ran at "
        f"{res['client_cpu_min'] * 100:.0f}-{res['client_cpu_max'] * 100:.0f}% of a core, "
        "so the client is the bottleneck, not the server.",
    ]
    return "\n".join(out)
