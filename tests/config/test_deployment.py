"""The deployment files (Dockerfile, docker-compose.yml, deploy/systemd, deploy/nginx) are checked
against the code they start: every command parses with the real argument parser of the program it
names (Daphne's, Django's management commands), every environment variable is one the settings
read, every file and URL they name exists, the ports agree between nginx, Daphne and compose, and
the image's build context (what .dockerignore leaves) really runs ``collectstatic`` and
``check --deploy``. There is no Docker engine here: the files are parsed, not run.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.urls import resolve

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SRV = "/srv/anyhour"  # where docs/deployment.md installs the checkout


# --- helpers ----------------------------------------------------------------------------------------
def settings_env_names() -> set[str]:
    """Every environment variable config/settings.py reads (the one place that reads them)."""
    source = (ROOT / "config" / "settings.py").read_text()
    return set(re.findall(r'env(?:_bool|_int|_float|_list)?\(\s*"([A-Z][A-Z0-9_]+)"', source))


def documented_env_names() -> set[str]:
    """Names in the first column of docs/configuration.md's tables (a row may name several)."""
    names: set[str] = set()
    for row in re.findall(r"^\| ([^|]*`[A-Z][A-Z0-9_]+`[^|]*)\|", (ROOT / "docs" / "configuration.md").read_text(), re.M):
        names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", row))
    return names


def daphne_args(argv: list[str]) -> Any:
    """Parse a Daphne command line with Daphne's own parser (exits on an unknown flag)."""
    from daphne.cli import CommandLineInterface

    assert Path(argv[0]).name == "daphne", argv
    return CommandLineInterface().parser.parse_args(argv[1:])


def check_daphne(argv: list[str]) -> Any:
    args = daphne_args(argv)
    module, _, attribute = args.application.partition(":")
    assert f"{module}:{attribute}" == settings.ASGI_APPLICATION.replace(".application", ":application")
    assert args.proxy_headers, "client addresses come from the proxy's X-Forwarded-For"
    return args


def check_manage(argv: list[str]) -> str:
    """``python manage.py <command> ...``: the command exists and accepts these options."""
    from django.core.management import get_commands, load_command_class

    assert Path(argv[0]).name.startswith("python") and argv[1] == "manage.py", argv
    name, options = argv[2], argv[3:]
    commands = get_commands()
    assert name in commands, f"manage.py has no command {name!r}"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    parser.parse_args(options)  # SystemExit (fails the test) on an unknown option
    return name


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def dockerignored(relative: str) -> bool:
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pattern) or (pattern.startswith("**/") and fnmatch.fnmatch(prefix.split("/")[-1], bare)):
                return True
    return False


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (DEPLOY / "systemd" / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def nginx_blocks(text: str, head: str) -> list[str]:
    """The bodies of every ``head { ... }`` block (braces balanced)."""
    bodies = []
    for match in re.finditer(re.escape(head) + r"\s*\{", text):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        bodies.append(text[match.end(): i - 1])
    return bodies


def directives(body: str) -> list[list[str]]:
    return [shlex.split(d.strip()) for d in re.sub(r"#.*", "", body).split(";") if d.strip() and "{" not in d]


def env_file_keys(path: Path) -> dict[str, str]:
    keys = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys[key.strip()] = value
    return keys


# --- Dockerfile ---------------------------------------------------------------------------------------
def test_dockerfile_installs_the_lock_with_hashes_and_runs_as_an_unprivileged_user() -> None:
    instructions = dockerfile_instructions()
    froms = [args for kw, args in instructions if kw == "FROM"]
    assert froms and all(re.match(r"python:3\.1[1-4]", image) for image in froms)
    runs = [args for kw, args in instructions if kw == "RUN"]
    assert any("--require-hashes -r /tmp/requirements/base.txt" in run for run in runs)
    copies = [args.split() for kw, args in instructions if kw == "COPY"]
    for parts in copies:
        if any(p.startswith("--from") for p in parts):
            continue
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY names {source}, which is not in the repository"
    # The last USER is not root, and nothing runs after it as root.
    final_stage = instructions[max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM"):]
    users = [(i, args) for i, (kw, args) in enumerate(final_stage) if kw == "USER"]
    assert users and users[-1][1] not in ("root", "0")
    assert all(kw != "RUN" for kw, _ in final_stage[users[-1][0]:])
    assert any("useradd" in run and users[-1][1] in run.split() for run in runs)


def test_dockerfile_collects_static_files_at_build_and_starts_daphne() -> None:
    instructions = dockerfile_instructions()
    collect = [args for kw, args in instructions if kw == "RUN" and "collectstatic" in args]
    assert len(collect) == 1
    command = shlex.split(collect[0])
    assert check_manage(command[command.index("python"):]) == "collectstatic"
    cmd = exec_form(next(args for kw, args in instructions if kw == "CMD"))
    args = check_daphne(cmd)
    exposed = [int(args_) for kw, args_ in instructions if kw == "EXPOSE"]
    assert exposed == [args.port]
    health = next(args for kw, args in instructions if kw == "HEALTHCHECK")
    probe = exec_form(health.split("CMD", 1)[1].strip())
    assert probe[1] == "deploy/probe.py" and (ROOT / probe[1]).is_file()
    assert resolve(probe[2]).url_name == "healthz"


def test_build_context_runs_collectstatic_and_check_deploy(tmp_path: Path) -> None:
    """Copy what `docker build` would see (.dockerignore applied) and run the build's command and
    Django's deployment checks there: nothing the application needs was left out of the image."""
    context = tmp_path / "app"
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_file() and not dockerignored(relative):
            target = context / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    assert not (context / "tests").exists() and not (context / ".venv").exists() and not (context / "var").exists()
    for app in settings.INSTALLED_APPS:
        top = app.split(".")[0]
        if (ROOT / top).is_dir():
            assert (context / top).is_dir(), f"app {top} is missing from the image"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SQLITE_", "DATABASE_", "REDIS_"))}
    env |= {"DJANGO_DEBUG": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    build = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=context, timeout=300,
        env={**env, "DJANGO_SECRET_KEY": "collectstatic-only-not-a-secret"}, capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr
    assert (context / "var" / "staticfiles" / "staticfiles.json").is_file()
    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=context, timeout=120,
        env={**env, "DJANGO_SECRET_KEY": "k" * 30 + "-a-production-like-secret-key-0123456789",
             "DJANGO_ALLOWED_HOSTS": "chat.example.com", "DJANGO_BEHIND_TLS_PROXY": "1"},
        capture_output=True, text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


# --- docker-compose.yml -------------------------------------------------------------------------------
ANYHOUR_SERVICES = ("migrate", "web-1", "web-2", "worker")


def test_compose_has_the_services_of_a_site() -> None:
    services = compose()["services"]
    assert set(services) == {*ANYHOUR_SERVICES, "nginx", "postgres", "redis", "vllm"}
    for name in ANYHOUR_SERVICES:
        assert services[name]["build"] == "." and services[name]["image"] == "anyhour:latest"
    # Only nginx is published: Daphne trusts X-Forwarded-For (--proxy-headers) from whoever reaches it.
    assert [name for name, s in services.items() if "ports" in s] == ["nginx"]


def test_compose_commands_parse_with_the_programs_they_start() -> None:
    services = compose()["services"]
    assert check_manage(services["migrate"]["command"]) == "migrate"
    assert check_manage(services["worker"]["command"]) == "db_worker"
    ports = {check_daphne(services[name]["command"]).port for name in ("web-1", "web-2")}
    assert ports == {8000}
    for name in ("web-1", "web-2", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    probe = services["web-1"]["healthcheck"]["test"]
    assert probe[1:3] == ["python", "deploy/probe.py"] and resolve(probe[3]).url_name == "healthz"


def test_compose_environment_names_settings_that_exist() -> None:
    services = compose()["services"]
    known = settings_env_names()
    for name in ANYHOUR_SERVICES:
        environment = services[name]["environment"]
        unknown = set(environment) - known
        assert not unknown, f"{name} sets variables the settings never read: {unknown}"
        assert environment["DJANGO_DEBUG"] == "0"
        assert environment["DATABASE_URL"].split("@")[1].startswith("postgres:5432/")
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert environment["DJANGO_BEHIND_TLS_PROXY"] == "1"
    # Each ${VAR} the file uses is either defaulted or in the example .env it tells you to copy.
    example = env_file_keys(DEPLOY / "compose.env.example")
    text = (ROOT / "docker-compose.yml").read_text()
    for match in re.finditer(r"\$\{([A-Z_]+)(:?[-?])?", text):
        variable, operator = match.group(1), match.group(2)
        assert operator or variable in example, f"${{{variable}}} has no default and is not in compose.env.example"
        if operator == ":?":
            assert variable in example


def test_compose_vllm_has_a_gpu_the_model_cache_and_matches_the_engine_settings() -> None:
    data = compose()
    vllm = data["services"]["vllm"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    volume, _, mount = vllm["volumes"][0].partition(":")
    assert mount == "/root/.cache/huggingface" and volume in data["volumes"]
    command = vllm["command"]
    flags = dict(zip(command[::2], command[1::2], strict=True))
    for flag in ("--model", "--served-model-name", "--api-key", "--max-model-len", "--max-num-seqs", "--port"):
        assert flag in flags
    web_env = data["services"]["web-1"]["environment"]
    # Anyhour asks for the model by the name vLLM serves it under, with the key vLLM demands.
    assert flags["--served-model-name"] == web_env["ENGINE_MODEL"]
    assert flags["--api-key"] == web_env["ENGINE_API_KEY"]
    assert web_env["ENGINE_URLS"] == f"http://vllm:{flags['--port']}/v1"
    assert vllm["ipc"] == "host"


def test_compose_nginx_balances_over_both_web_containers() -> None:
    services = compose()["services"]
    source, _, target = services["nginx"]["volumes"][0].partition(":")
    assert (ROOT / source).resolve() == DEPLOY / "nginx" / "compose.conf"
    assert target.startswith("/etc/nginx/conf.d/")
    text = (DEPLOY / "nginx" / "compose.conf").read_text()
    upstream = directives(nginx_blocks(text, "upstream anyhour_daphne")[0])
    servers = {d[1] for d in upstream if d[0] == "server"}
    assert servers == {f"{name}:{check_daphne(services[name]['command']).port}" for name in ("web-1", "web-2")}
    assert ["least_conn"] in upstream


# --- nginx ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("conf", ["anyhour.conf", "compose.conf"])
def test_nginx_passes_websockets_unbuffered(conf: str) -> None:
    text = (DEPLOY / "nginx" / conf).read_text()
    # Every websocket route of the application is under /ws/.
    from chat.routing import websocket_urlpatterns as chat_routes
    from widgets.routing import websocket_urlpatterns as widget_routes

    for route in [*chat_routes, *widget_routes]:
        assert str(route.pattern).startswith("ws/")
    (ws,) = nginx_blocks(text, "location /ws/")
    rules = directives(ws)
    assert ["proxy_buffering", "off"] in rules
    assert ["proxy_http_version", "1.1"] in rules
    assert ["proxy_set_header", "Upgrade", "$http_upgrade"] in rules
    assert ["proxy_set_header", "Connection", "$connection_upgrade"] in rules
    assert any(r[0] == "proxy_read_timeout" and int(r[1].rstrip("s")) > 20 for r in rules)  # > Daphne's ping
    for block in (ws, nginx_blocks(text, "location /")[-1]):
        headers = {r[1]: r[2] for r in directives(block) if r[0] == "proxy_set_header"}
        # settings.SECURE_PROXY_SSL_HEADER (DJANGO_BEHIND_TLS_PROXY) reads this header.
        assert "X-Forwarded-Proto" in headers and headers["Host"] == "$host"
        # Daphne --proxy-headers believes the *first* address: it must be the one nginx saw, not
        # a list the client started ($proxy_add_x_forwarded_for would let it forge per-IP limits).
        assert headers["X-Forwarded-For"] == "$remote_addr"
        assert ["proxy_pass", "http://anyhour_daphne"] in directives(block)
    # /metrics is scraped on each process, never through the public site.
    (metrics,) = nginx_blocks(text, "location = /metrics")
    assert directives(metrics) == [["return", "404"]] and resolve("/metrics").url_name == "metrics"
    size = next(d[1] for d in directives(text.split("server {")[-1]) if d[0] == "client_max_body_size")
    assert int(size.rstrip("m")) * 1024 * 1024 >= settings.KNOWLEDGE_MAX_UPLOAD_BYTES


def test_nginx_site_serves_collected_static_files_and_every_web_instance() -> None:
    text = (DEPLOY / "nginx" / "anyhour.conf").read_text()
    (static,) = nginx_blocks(text, "location /static/")
    alias = next(d[1] for d in directives(static) if d[0] == "alias")
    assert "/" + settings.STATIC_URL.strip("/") + "/" == "/static/"
    assert alias == f"{SRV}/{Path(settings.STATIC_ROOT).relative_to(settings.BASE_DIR).as_posix()}/"
    upstream = directives(nginx_blocks(text, "upstream anyhour_daphne")[0])
    ports = {int(d[1].split(":")[1]) for d in upstream if d[0] == "server"}
    wanted = unit("anyhour.target")["Unit"]["Wants"][0].split()
    instances = {int(m.group(1)) for w in wanted if (m := re.fullmatch(r"anyhour-web@(\d+)\.service", w))}
    assert ports == instances and len(ports) >= 2


# --- systemd ---------------------------------------------------------------------------------------------
def _local_argv(exec_start: str) -> list[str]:
    """ExecStart with the installation path replaced by this checkout (its .venv)."""
    return shlex.split(exec_start.replace(SRV, str(ROOT)).replace("%i", "8001"))


def test_systemd_units_start_real_commands_as_the_service_user() -> None:
    web = unit("anyhour-web@.service")["Service"]
    worker = unit("anyhour-worker.service")["Service"]
    for service in (web, worker):
        assert service["User"] == ["anyhour"] and service["WorkingDirectory"] == [SRV]
        assert service["EnvironmentFile"] == ["/etc/anyhour/anyhour.env"]
        assert f"{SRV}/var" in service["ReadWritePaths"]
        argv = _local_argv(service["ExecStart"][0])
        assert Path(argv[0]).is_file(), f"{argv[0]} does not exist in a checkout set up as documented"
    args = check_daphne(_local_argv(web["ExecStart"][0]))
    assert args.host == "127.0.0.1" and args.port == 8001
    argv = _local_argv(worker["ExecStart"][0])
    assert check_manage([Path(argv[0]).name, *argv[1:]]) == "db_worker"
    for name in ("anyhour-web@.service", "anyhour-worker.service"):
        assert unit(name)["Install"]["WantedBy"] == ["anyhour.target"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    for name in ("anyhour-web@.service", "anyhour-worker.service", "anyhour.target"):
        text = (DEPLOY / "systemd" / name).read_text().replace(SRV, str(ROOT))
        # The anyhour user and /etc/anyhour do not exist on this machine.
        text = text.replace("User=anyhour", "User=root").replace("Group=anyhour", "Group=root")
        text = text.replace("/etc/anyhour/anyhour.env", str(DEPLOY / "anyhour.env.example"))
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "anyhour-web@8001.service", "anyhour-worker.service"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unknown key" not in done.stderr


@pytest.mark.parametrize("example", ["anyhour.env.example", "compose.env.example"])
def test_example_environment_files_name_settings_that_exist(example: str) -> None:
    keys = set(env_file_keys(DEPLOY / example))
    compose_only = {"POSTGRES_PASSWORD", "HF_TOKEN", "VLLM_MAX_MODEL_LEN", "VLLM_MAX_NUM_SEQS", "VLLM_GPU_MEMORY_UTILIZATION"}
    unknown = keys - settings_env_names() - compose_only
    assert not unknown, f"{example} names variables the settings never read: {unknown}"
    assert not (keys & settings_env_names()) - documented_env_names()


def test_every_setting_read_from_the_environment_is_documented() -> None:
    missing = settings_env_names() - documented_env_names() - {"SQLITE_TEST_PATH"}
    assert not missing, f"docs/configuration.md does not document {sorted(missing)}"


def test_deployment_guide_names_the_files() -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for name in (
        "Dockerfile", "docker-compose.yml", "deploy/compose.env.example", "deploy/anyhour.env.example",
        "deploy/nginx/anyhour.conf", "anyhour-web@.service", "anyhour-worker.service", "anyhour.target",
        "--max-model-len", "--max-num-seqs", "AWQ", "BF16",
    ):
        assert name in guide, name


# --- the probe, against a real Daphne --------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_probe_reaches_a_real_daphne_even_with_the_https_redirect_on(daphne_factory: Any, monkeypatch: Any) -> None:
    monkeypatch.syspath_prepend(str(DEPLOY))
    import probe

    server = daphne_factory(DJANGO_SECURE_SSL_REDIRECT="1")  # allows 127.0.0.1 and localhost
    monkeypatch.setenv("PORT", str(server.port))
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")  # the probe uses the first
    assert probe.main(["probe.py", "/healthz"]) == 0
    status, body = probe.probe("/readyz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    # Pages still go to HTTPS: only the probes are exempt from the redirect.
    assert probe.probe("/")[0] == 301
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "chat.example.com")  # a host this server refuses
    assert probe.probe("/healthz")[0] == 400
    assert probe.main(["probe.py", "/healthz"]) == 1
