"""Test and benchmark equipment shared by ``tests/`` and ``bench/`` (not part of the app).

``testsupport.engine_sim``: a protocol-faithful vLLM simulator (``make engine-sim`` runs it on :8001).
"""
