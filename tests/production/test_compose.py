"""docker-compose.yml, the Dockerfile and .env.example, checked statically (docker cannot run in
CI): valid YAML, every command and health check runs something that exists in the project, every
variable is documented (and every documented one used), health checks, restart policies, and the
model volume shared by web and worker."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands, load_command_class

from .conftest import PYTHON, REPO, production_env

COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
DJANGO_SERVICES = ("web", "worker", "beat")
LONG_RUNNING = ("db", "redis", "web", "worker", "beat")
DOCKERFILE = (REPO / "Dockerfile").read_text()
ENV_EXAMPLE = (REPO / ".env.example").read_text()
# ${VAR}, ${VAR:-default}, ${VAR:?error}; "$$" is compose's escape for a literal "$"
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(?::?[-?+])[^}]*)?\}")
ENV_READERS = {"env", "env_bool", "env_int", "env_float", "env_list", "getenv", "get"}
SOURCE_DIRS = ("recsite", "catalog", "recommender", "chat")
# the fixtures' own variables are read by the test harness
HARNESS_FILES = ("tests/conftest.py", "tests/worker.py", "recsite/gunicorn.conf.py")
PLATFORM_VARIABLES = {"XDG_RUNTIME_DIR", "HOSTNAME"}  # set by the OS / container, not by us


def documented() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.splitlines():
        if m := re.match(r"^#?\s?([A-Z][A-Z0-9_]*)=", line):
            names.add(m.group(1))
    return names


def _env_reads(path: Path) -> set[str]:
    """Names passed as a literal to env()/env_int()/.../os.environ.get()/os.getenv(), or read
    with os.environ["..."]."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in ENV_READERS:
                continue
            if name == "get" and not (
                isinstance(func, ast.Attribute) and ast.unparse(func.value).endswith("environ")
            ):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and ast.unparse(node.value).endswith("os.environ")
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(node.slice.value)
    return names


def code_reads() -> dict[str, set[str]]:
    files = [
        p for d in SOURCE_DIRS for p in (REPO / d).rglob("*.py") if "migrations" not in p.parts
    ]
    files += [REPO / f for f in HARNESS_FILES]
    reads: dict[str, set[str]] = {}
    for path in files:
        for name in _env_reads(path):
            reads.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return reads


def compose_variables() -> set[str]:
    names = set(INTERPOLATION.findall(COMPOSE_TEXT))
    for service in SERVICES.values():
        env = service.get("environment") or {}
        names |= set(env if isinstance(env, dict) else [e.split("=", 1)[0] for e in env])
    return names


def command(service: str) -> list[str]:
    cmd = SERVICES[service]["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def expand(args: list[str]) -> list[str]:
    """Compose's own ${VAR:-default} interpolation, with the defaults."""
    return [INTERPOLATION.sub(lambda m: m.group(0).split(":-", 1)[-1].rstrip("}"), a) for a in args]


# --- structure -------------------------------------------------------------------------------------


def test_compose_is_valid_yaml_with_the_whole_stack():
    assert set(SERVICES) == {"db", "redis", "migrate", "web", "worker", "beat"}
    assert SERVICES["db"]["image"].startswith("pgvector/pgvector:pg16")
    assert SERVICES["redis"]["image"].startswith("redis:")
    assert set(COMPOSE["volumes"]) >= {"pgdata", "redisdata", "models", "beat"}


def test_django_services_share_one_definition():
    anchor = COMPOSE["x-django"]
    assert "x-django: &django" in COMPOSE_TEXT
    for name in (*DJANGO_SERVICES, "migrate"):
        block = re.search(rf"^  {name}:.*?\n(?=  \w|\Z)", COMPOSE_TEXT, re.M | re.S).group(0)
        assert "<<: *django" in block, f"{name} does not use the shared definition"
        service = SERVICES[name]
        assert service["image"] == anchor["image"] and service["build"] == anchor["build"]
        assert service["env_file"] == ".env"
        assert service["environment"]["DJANGO_SETTINGS_MODULE"] == "recsite.settings.production"
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")
        assert "@db:5432/" in service["environment"]["DATABASE_URL"]
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:6379/")


def test_every_long_running_service_has_a_health_check_and_a_restart_policy():
    for name in LONG_RUNNING:
        service = SERVICES[name]
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
        test = service["healthcheck"]["test"]
        assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1, name
        assert service["healthcheck"].get("interval"), name
    # the one-shot migration runs once, before everything that uses the database
    assert SERVICES["migrate"]["restart"] == "no"
    assert command("migrate")[:3] == ["python", "manage.py", "migrate"]
    for name in DJANGO_SERVICES:
        assert SERVICES[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert SERVICES[name]["depends_on"]["db"] == {"condition": "service_healthy"}
        assert SERVICES[name]["depends_on"]["redis"] == {"condition": "service_healthy"}


def test_data_lives_in_volumes():
    assert "pgdata:/var/lib/postgresql/data" in SERVICES["db"]["volumes"]
    assert "redisdata:/data" in SERVICES["redis"]["volumes"]
    assert "--appendonly yes" in SERVICES["redis"]["command"]
    beat_schedule = command("beat")[command("beat").index("--schedule") + 1]
    assert any(
        v.startswith("beat:") and beat_schedule.startswith(v.split(":")[1] + "/")
        for v in SERVICES["beat"]["volumes"]
    )


def test_the_model_folder_is_one_volume_mounted_by_web_and_worker():
    mounts = {}
    for name in ("web", "worker"):
        service = SERVICES[name]
        model_dir = service["environment"]["RECOMMENDER_MODEL_DIR"]
        volume = [v for v in service["volumes"] if v.split(":")[1] == model_dir]
        assert volume, f"{name} does not mount RECOMMENDER_MODEL_DIR ({model_dir})"
        mounts[name] = volume[0].split(":")[0]
    assert mounts["web"] == mounts["worker"] and mounts["web"] in COMPOSE["volumes"]
    # and the image creates that folder for the non-root user (a new volume copies its owner)
    assert "var/models" in DOCKERFILE and model_dir == "/app/var/models"


def test_web_counts_metrics_across_its_processes():
    env = SERVICES["web"]["environment"]
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")


# --- commands exist --------------------------------------------------------------------------------


def test_web_command_loads_the_wsgi_app_with_the_gunicorn_config(tmp_path):
    args = command("web")
    assert args[0] == "gunicorn" and "-c" in args
    config = args[args.index("-c") + 1]
    assert (REPO / config).is_file()
    assert args[-1] == "recsite.wsgi:application"
    # gunicorn loads the config and imports the application with production settings, then exits
    result = subprocess.run(
        [PYTHON, "-m", "gunicorn", "--check-config", *args[1:]],
        cwd=REPO,
        env=production_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # the image runs the same command by default
    assert f"CMD {[a for a in args]}".replace("'", '"') in DOCKERFILE


def _celery_help(*args: str) -> str:
    result = subprocess.run(
        [PYTHON, "-m", "celery", "-A", "recsite", *args, "--help"],
        cwd=REPO,
        env=production_env(REDIS_URL="redis://127.0.0.1:1/0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("service", ["worker", "beat"])
def test_celery_commands_use_the_project_app_and_real_options(service):
    args = expand(command(service))
    assert args[:4] == ["celery", "-A", "recsite", service]
    help_text = _celery_help(service)
    for option in [a for a in args[4:] if a.startswith("-")]:
        assert re.search(rf"(^|[\s,]){re.escape(option)}\b", help_text), (service, option)


def test_the_celery_app_has_every_task_beat_schedules():
    code = (
        "from recsite.celery import app; app.loader.import_default_modules(); "
        "missing = [e['task'] for e in app.conf.beat_schedule.values() if e['task'] not in app.tasks]; "
        "print(sorted(app.conf.beat_schedule), missing)"
    )
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=REPO, env=production_env(), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("['retrain-recommender'] []"), result.stdout


def test_manage_py_commands_in_the_compose_file_exist():
    """Every `python manage.py X ...` (commands and the comments' instructions) parses."""
    used = re.findall(r"python manage\.py ([a-z_]+)([^\n\"#]*)", COMPOSE_TEXT)
    assert {name for name, _ in used} >= {"migrate", "import_movielens", "bootstrap_site"}
    commands = get_commands()
    for name, rest in used:
        assert name in commands, name
        parser = load_command_class(commands[name], name).create_parser("manage.py", name)
        parser.parse_args(shlex.split(rest.strip()))  # exits (fails the test) on a bad option


def test_health_checks_run_real_things():
    from recsite.health import PROBES

    web = SERVICES["web"]["healthcheck"]["test"]
    assert web[:3] == ["CMD", "python", "-c"]
    compile(web[3], "web-healthcheck", "exec")
    path = re.search(r"http://127\.0\.0\.1:8000(/\w+)", web[3]).group(1)
    assert path == "/healthz" and path in PROBES
    assert (
        "HEALTHCHECK" in DOCKERFILE
        and "127.0.0.1:8000/healthz" in DOCKERFILE.split("HEALTHCHECK")[1]
    )

    worker = shlex.split(SERVICES["worker"]["healthcheck"]["test"][1])
    assert worker[:5] == ["celery", "-A", "recsite", "inspect", "ping"]
    assert worker[worker.index("--destination") + 1] == "celery@$$HOSTNAME"  # the worker's node
    help_text = _celery_help("inspect", "ping")
    assert "--destination" in help_text and "--timeout" in help_text

    beat = SERVICES["beat"]["healthcheck"]["test"]
    assert beat[:3] == ["CMD", "python", "-c"]
    compile(beat[3], "beat-healthcheck", "exec")
    pidfile = command("beat")[command("beat").index("--pidfile") + 1]
    assert f"open('{pidfile}')" in beat[3] and "REDIS_URL" in beat[3]

    redis_check = SERVICES["redis"]["healthcheck"]["test"]
    assert redis_check == ["CMD", "redis-cli", "ping"]
    assert "pg_isready" in SERVICES["db"]["healthcheck"]["test"][1]


# --- variables --------------------------------------------------------------------------------------


def test_every_variable_is_documented_in_env_example():
    docs = documented()
    missing_compose = compose_variables() - docs - PLATFORM_VARIABLES
    assert not missing_compose, (
        f"used in docker-compose.yml, not in .env.example: {missing_compose}"
    )
    reads = code_reads()
    missing_code = {n: sorted(f) for n, f in reads.items() if n not in docs | PLATFORM_VARIABLES}
    assert not missing_code, f"read by the code, not in .env.example: {missing_code}"


def test_every_documented_variable_is_used():
    used = set(code_reads()) | compose_variables() | {"DJANGO_SETTINGS_MODULE"}
    stale = documented() - used
    assert not stale, f"documented in .env.example but read nowhere: {stale}"


def test_the_scan_finds_what_it_should():
    """The checks above are only as good as the scan: it sees the settings' and the engine's reads."""
    reads = code_reads()
    for name in ("DJANGO_SECRET_KEY", "REDIS_URL", "METRICS_TOKEN", "CACHE_URL", "RECSITE_ENGINE_THREADS", "WEB_CONCURRENCY"):  # fmt: skip
        assert name in reads, name
    assert {
        "POSTGRES_PASSWORD",
        "CELERY_CONCURRENCY",
        "PROMETHEUS_MULTIPROC_DIR",
    } <= compose_variables()
    assert "HOSTNAME" not in compose_variables()  # $$HOSTNAME is escaped: the container's own


# --- the image ---------------------------------------------------------------------------------------


def test_dockerfile_installs_cpu_torch_first_runs_collectstatic_and_drops_root():
    lines = [line.strip() for line in DOCKERFILE.splitlines()]
    torch = next(i for i, line in enumerate(lines) if "pip install torch==" in line)
    assert "--index-url https://download.pytorch.org/whl/cpu" in lines[torch]
    pinned = re.search(r'"torch==([\d.]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert f"torch=={pinned} " in lines[torch] + " "
    project = next(i for i, line in enumerate(lines) if re.search(r"pip install (-e )?\.$", line))
    assert torch < project
    assert any("manage.py collectstatic --noinput" in line for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert [line for line in lines if line.startswith("FROM ")] == ["FROM python:3.11-slim"]
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", "var", ".env", ".git"} <= set(ignored)
