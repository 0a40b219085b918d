"""Settings: `check --deploy` is clean, DEBUG is off unless asked for, a missing secret key is refused
in production and generated once (kept private in var/) in development."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SQLITE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_check_deploy_is_clean_under_production_settings():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k" * 20 + "-production-like-secret-key-value-1234567890",
        DJANGO_ALLOWED_HOSTS="chat.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="chat.example.com")
    assert result.returncode != 0 and "DJANGO_SECRET_KEY must be set" in result.stderr


SHOW = "from django.conf import settings; print(settings.DEBUG); print(settings.SECRET_KEY)"


def test_debug_is_off_unless_asked_for():
    result = manage("shell", "--no-imports", "-c", SHOW, DJANGO_SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["False", "k" * 50]


def test_a_start_that_forgets_debug_and_key_refuses_with_advice():
    result = manage("check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr and "DJANGO_DEBUG=1" in result.stderr


def test_debug_without_a_key_generates_one_private_key_and_reuses_it(tmp_path: Path):
    key_file = tmp_path / "var" / "secret_key"
    first = manage("shell", "--no-imports", "-c", SHOW, DJANGO_DEBUG="1", DJANGO_SECRET_KEY_FILE=str(key_file))
    assert first.returncode == 0, first.stderr
    debug, key = first.stdout.splitlines()
    assert debug == "True" and len(key) >= 50 and "insecure" not in key
    assert key_file.read_text().strip() == key
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == ["secret_key"]  # no temporary file left
    # The next start (sessions survive restarts) reads the same key.
    again = manage("shell", "--no-imports", "-c", SHOW, DJANGO_DEBUG="1", DJANGO_SECRET_KEY_FILE=str(key_file))
    assert again.stdout.splitlines() == ["True", key]
    # Another checkout gets its own key.
    other = manage("shell", "--no-imports", "-c", SHOW, DJANGO_DEBUG="1", DJANGO_SECRET_KEY_FILE=str(tmp_path / "k2"))
    assert other.stdout.splitlines()[1] != key


def test_no_secret_key_is_written_in_the_settings():
    source = (ROOT / "config" / "settings.py").read_text()
    assert "django-insecure" not in source and 'SECRET_KEY = "' not in source


def test_processes_starting_together_agree_on_one_generated_key(tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    from config.settings import development_secret_key

    path = tmp_path / "secret_key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: development_secret_key(path), range(32)))
    assert keys == {path.read_text().strip()}
