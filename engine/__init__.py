"""The engine package: everything Anyhour knows about talking to vLLM, with no Django in it.

- ``engine.client``: the OpenAI/vLLM HTTP client (streaming chat completions over a small SSE
  reader, embeddings, health, failover across replicas).
- ``engine.tokens``: the tokenizer-free token estimate and fitting history into a budget.
- ``engine.language``: which language a text is written in, without a model.

It imports no Django app and no Django module (checked by import-linter, `make lint`): the web
tier configures it (``core.engine``) and tests and benchmarks use it directly.
"""
