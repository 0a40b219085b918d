# Anyhour web and worker image (docs/deployment.md). One image, two commands:
#   web:    daphne (the CMD below), one process per container; run several behind nginx
#   worker: python manage.py db_worker --no-reload
# Build: docker build -t anyhour .   Runs as the unprivileged user "anyhour"; static files are
# collected at build time (whitenoise serves them with immutable cache headers).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements/base.txt /tmp/requirements/base.txt
# Exactly the locked versions, each checked against its hash.
RUN /opt/venv/bin/pip install --require-hashes -r /tmp/requirements/base.txt

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_DEBUG=0 \
    PORT=8000
RUN groupadd --system --gid 10001 anyhour \
 && useradd --system --uid 10001 --gid anyhour --home-dir /app --shell /usr/sbin/nologin anyhour
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The application (what .dockerignore leaves: no tests, benchmarks, docs, local state or
# secrets), owned by root and read-only for the service user; only var/ is writable.
# Compiled translations (locale/*/LC_MESSAGES/*.mo) are committed: no gettext needed here.
COPY . .
# collectstatic reads settings, which refuse to start without a key when DEBUG is off: a
# throwaway value that only lives in this one RUN (nothing is signed at build time).
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput -v 0
RUN mkdir -p /app/var && chown -R anyhour:anyhour /app/var
USER anyhour
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["python", "deploy/probe.py", "/healthz"]
# --proxy-headers: the client address comes from nginx's X-Forwarded-For (only nginx can reach
# this port: it is not published in docker-compose.yml).
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "config.asgi:application"]
