"""Stream a prompt chain from the local server and print what it used.

Run with ``make demo`` (it starts llama.cpp's server with SmolLM2 on 127.0.0.1:8765 first), or
point ``CUSTOMLLM_BASE_URL`` / ``CUSTOMLLM_MODEL`` at any OpenAI-compatible server.
"""

from __future__ import annotations

import os
import sys
import time

from langchain_core.messages import AIMessageChunk
from langchain_core.prompts import ChatPromptTemplate

from langchain_customllm import ChatCustomLLM, CustomLLM, CustomLLMError, Pricing, track_usage

# Illustrative prices (USD per million tokens), not real ones: SmolLM2 on your own machine
# costs electricity, not tokens. Put your model's price here, or a table file (docs/cost.md).
PRICING = Pricing(input=0.02, output=0.04)


def main() -> int:
    # Every call below is counted, whatever the model; printed as a table at the end.
    with track_usage() as usage:
        status = demo()
    print("\nUsage and cost of this demo (illustrative prices):")
    print(usage)
    return status


def demo() -> int:
    model = os.environ.get("CUSTOMLLM_MODEL", "smollm2")
    llm = ChatCustomLLM(model=model, temperature=0, max_tokens=64, pricing=PRICING)
    print(f"Server: {llm.base_url}  model: {model}\n")

    chain = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")]) | llm
    question = "What is the capital of France?"
    print(f"Q: {question}\nA: ", end="", flush=True)
    started = time.perf_counter()
    full: AIMessageChunk | None = None
    try:
        for chunk in chain.stream({"q": question}):
            print(chunk.content, end="", flush=True)
            full = chunk if full is None else full + chunk
    except CustomLLMError as err:
        print(f"\n\nThe server could not answer: {err}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print("\n")
    assert full is not None
    meta = full.response_metadata
    print(f"finish_reason={meta.get('finish_reason')}  model_name={meta.get('model_name')}")
    # Usage on every answer: the server's, or counted with its tokenizer if it sent none.
    source = meta.get("usage_source", "none")
    print(f"streamed in {elapsed:.2f} s; usage in stream ({source}): {full.usage_metadata}")

    # The same question answered whole: llama.cpp reports usage on non-streamed answers.
    answer = llm.invoke(question)
    print(f"invoke usage: {answer.usage_metadata}")

    # Stop sequences are enforced identically however the text is chunked.
    cut = llm.invoke([("system", "Be brief."), ("human", question)], stop=["Paris"])
    reason = cut.response_metadata["finish_reason"]
    print(f"\nstop=['Paris'] -> {cut.content!r} (finish_reason={reason})")

    text = CustomLLM(model=model, temperature=0, max_tokens=12, pricing=PRICING)
    prompt = "The three primary colors are"
    print(f"\nText completion: {prompt!r} ->", end="", flush=True)
    for piece in text.stream(prompt):
        print(piece, end="", flush=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
