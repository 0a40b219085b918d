"""Health probe for containers and systemd: ``python deploy/probe.py [/healthz|/readyz]``.

Standard library only (it runs where Django may be broken). Asks the Daphne process on
127.0.0.1:$PORT (default 8000) with the first host of DJANGO_ALLOWED_HOSTS as ``Host`` (Django
refuses other hosts) and exits 0 on HTTP 200, 1 otherwise, printing the answer. The probe URLs are
exempt from the HTTPS redirect (config/settings.py SECURE_REDIRECT_EXEMPT), so plain HTTP inside
the host or the container network is enough.
"""
from __future__ import annotations

import http.client
import os
import sys


def probe(path: str = "/healthz", port: int | None = None, timeout: float = 5.0) -> tuple[int, str]:
    hosts = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h.strip()]
    host = hosts[0].lstrip(".") if hosts and hosts[0] != "*" else "localhost"
    connection = http.client.HTTPConnection("127.0.0.1", port or int(os.environ.get("PORT", "8000")), timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read(2000).decode("utf-8", "replace")
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/healthz"
    try:
        status, body = probe(path)
    except OSError as error:
        print(f"{path}: {error}", file=sys.stderr)
        return 1
    print(f"{path}: {status} {body}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
