"""``customllm probe``: measure what an OpenAI-compatible server can do.

The probe sends ~25 small real requests (``max_tokens`` of a few tokens, temperature 0, a
fixed seed) straight through httpx, so it sees the server's raw behaviour rather than what
this package makes of it, and prints a capability table, the best-matching `ServerProfile`
and the ``ChatCustomLLM(...)`` line to use::

    customllm probe --base-url http://127.0.0.1:8080/v1 [--model M] [--api-key-env VAR]
                    [--json] [--timeout S]
    python -m langchain_customllm probe ...
    customllm profiles [--markdown]

Layout (the decision logic is pure; only `Prober.send` does I/O):

- `records`: `Exchange` (one recorded request and answer), `Row`, `Stream` / `parse_sse`.
- `payloads`: what is sent: prompts, seed, schema, tool, the generated PNG.
- `facts`, `tool_facts`, `image_facts`, `error_facts` and `embed_facts`: the ``judge_*``
  functions, exchanges to rows and facts (``embed_facts``: the ``/embeddings`` endpoint, its
  vector width and the largest batch it accepts).
- `scoring`: `score_profiles` compares facts with `PROFILES`; `ProbeReport`; `recommend`.
- `render`: ``render_*`` format the `ProbeReport` and the profiles.
- `errors`: why a probe could not run (`ProbeUsageError`, ...) and `key_refusal`.
- `checks`: `Prober` drives the requests through an ``httpx.Client`` (tests give it an
  ``httpx.MockTransport``); `run_probe`.
- `cli`: `main`, the command line.

Exit codes: 0 the probe ran, 1 the server answered but chat completions failed (nothing
else could be measured), 2 usage error (a refused API key included), 3 server unreachable.
With ``--json`` a run that could not probe prints ``{"error": {"kind", "message",
"exit_code"}}`` on stdout (the message goes to stderr too).

The API key is read from the environment variable named by ``--api-key-env``, sent as
``Authorization: Bearer <key>`` and never printed: it is scrubbed from everything the server
sends back before that is kept.
"""

from langchain_customllm.probe.checks import Prober, run_probe
from langchain_customllm.probe.cli import (
    EXIT_CHAT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    main,
)
from langchain_customllm.probe.error_facts import judge_errors as judge_errors
from langchain_customllm.probe.errors import (
    ApiKeyRefusedError,
    ProbeUsageError,
    ServerUnreachableError,
)
from langchain_customllm.probe.facts import ROW_ORDER as ROW_ORDER
from langchain_customllm.probe.facts import judge_chat as judge_chat
from langchain_customllm.probe.facts import judge_completions as judge_completions
from langchain_customllm.probe.facts import judge_json_mode as judge_json_mode
from langchain_customllm.probe.facts import judge_json_schema as judge_json_schema
from langchain_customllm.probe.facts import judge_logprobs as judge_logprobs
from langchain_customllm.probe.facts import judge_max_tokens as judge_max_tokens
from langchain_customllm.probe.facts import judge_n as judge_n
from langchain_customllm.probe.facts import judge_seed as judge_seed
from langchain_customllm.probe.facts import judge_stop as judge_stop
from langchain_customllm.probe.facts import judge_stream as judge_stream
from langchain_customllm.probe.facts import pick_stop as pick_stop
from langchain_customllm.probe.image_facts import judge_image as judge_image
from langchain_customllm.probe.payloads import CHAT_MAX_TOKENS as CHAT_MAX_TOKENS
from langchain_customllm.probe.payloads import CHAT_PROMPT as CHAT_PROMPT
from langchain_customllm.probe.payloads import CITY_SCHEMA as CITY_SCHEMA
from langchain_customllm.probe.payloads import COMPLETION_PROMPT as COMPLETION_PROMPT
from langchain_customllm.probe.payloads import IMAGE_PROMPT as IMAGE_PROMPT
from langchain_customllm.probe.payloads import JSON_PROMPT as JSON_PROMPT
from langchain_customllm.probe.payloads import MALFORMED_BODY as MALFORMED_BODY
from langchain_customllm.probe.payloads import NAMED_CHOICE as NAMED_CHOICE
from langchain_customllm.probe.payloads import SEED as SEED
from langchain_customllm.probe.payloads import SEED_PROMPT as SEED_PROMPT
from langchain_customllm.probe.payloads import TOOL_PROMPT as TOOL_PROMPT
from langchain_customllm.probe.payloads import UNKNOWN_MODEL as UNKNOWN_MODEL
from langchain_customllm.probe.payloads import WEATHER_TOOL as WEATHER_TOOL
from langchain_customllm.probe.payloads import WRONG_KEY as WRONG_KEY
from langchain_customllm.probe.payloads import image_data_url as image_data_url
from langchain_customllm.probe.payloads import tiny_png as tiny_png
from langchain_customllm.probe.records import Exchange, Row
from langchain_customllm.probe.records import Facts as Facts
from langchain_customllm.probe.records import Judged as Judged
from langchain_customllm.probe.records import Stream as Stream
from langchain_customllm.probe.records import parse_sse as parse_sse
from langchain_customllm.probe.render import render_json, render_profiles, render_text
from langchain_customllm.probe.scoring import PROFILE_FIELDS as PROFILE_FIELDS
from langchain_customllm.probe.scoring import ProbeReport, ProfileMatch, score_profiles
from langchain_customllm.probe.scoring import guess_family as guess_family
from langchain_customllm.probe.scoring import recommend as recommend
from langchain_customllm.probe.tool_facts import judge_stream_tools as judge_stream_tools
from langchain_customllm.probe.tool_facts import judge_tools as judge_tools

__all__ = [
    "EXIT_CHAT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "ApiKeyRefusedError",
    "Exchange",
    "ProbeReport",
    "ProbeUsageError",
    "Prober",
    "ProfileMatch",
    "Row",
    "ServerUnreachableError",
    "main",
    "render_json",
    "render_profiles",
    "render_text",
    "run_probe",
    "score_profiles",
]
