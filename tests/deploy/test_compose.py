"""docker-compose.yml and deploy/docker/Dockerfile agree with the Compose spec and with the code.

No Docker and no database: the compose file is checked against the official Compose JSON Schema
(the copy check-jsonschema ships, so no network), and its commands, ports, dependencies and
environment against each service's pyproject.toml, CLI and Settings class. Renaming a console
script, a worker, a package or a port, or adding a service, a worker, a secret or a loopback
default without updating the compose file, fails here. The `sandbox` profile and
deploy/docker/sandbox.env are checked against what tools/stack.py (`make up`) runs.
"""

from __future__ import annotations

import http.server
import importlib
import importlib.resources
import importlib.util
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from servicekit.settings import _PREFIX_ONLY, KitSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
SANDBOX_DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile.sandbox"
SANDBOX_ENV_FILE = ROOT / "deploy" / "docker" / "sandbox.env"
SANDBOX_PYPROJECT = ROOT / "libs" / "sandbox" / "pyproject.toml"
STACK_SCRIPT = ROOT / "tools" / "stack.py"
HEALTHCHECK_SCRIPT = ROOT / "deploy" / "docker" / "healthcheck.py"

# DESIGN.md, "Dev ports".
DESIGN_PORTS = {
    "gateway": 8000,
    "scheduling": 8001,
    "integrations": 8002,
    "reconciler": 8003,
    "ops": 8004,
}
INFRA = {"postgres", "rabbitmq", "jaeger", "prometheus"}
PROMETHEUS_CONFIG = ROOT / "deploy" / "docker" / "prometheus.yml"
SANDBOX_PROFILE = "sandbox"
# OTLP/HTTP: servicekit.telemetry posts to <endpoint>/v1/traces.
OTLP_HTTP_PORT = 4318
# Browser-facing: `localhost` is the right value for a local compose run.
BROWSER_FACING_FIELDS = {"public_base_url"}
LOOPBACK = re.compile(r"(127\.0\.0\.1|localhost)")


# --- loading ---------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(doc, dict), "docker-compose.yml is not a mapping"
    return doc


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


@cache
def pyproject(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def service_pyproject(svc: str) -> dict[str, Any]:
    return pyproject(ROOT / "services" / svc / "pyproject.toml")


def settings_class(svc: str) -> type[KitSettings]:
    cls = importlib.import_module(f"{svc}_service.settings").Settings
    assert issubclass(cls, KitSettings)
    return cls


def gateway_upstreams() -> list[str]:
    from gateway_service.settings import Settings

    return list(Settings.model_construct().service_urls())


def cli_module(svc: str) -> ModuleType:
    return importlib.import_module(f"{svc}_service.cli")


def image_service(name: str) -> str:
    """The services/<svc> a compose service's image is built for (build arg SERVICE)."""
    return str(services()[name]["build"]["args"]["SERVICE"])


def built_from(spec: dict[str, Any], dockerfile: Path) -> bool:
    build = spec.get("build")
    return bool(build) and (ROOT / build["dockerfile"]).resolve() == dockerfile.resolve()


def app_services() -> dict[str, str]:
    """compose service name -> services/<svc> of its image, for every service image built here."""
    return {
        name: image_service(name)
        for name, spec in services().items()
        if built_from(spec, DOCKERFILE)
    }


def sandbox_services() -> dict[str, dict[str, Any]]:
    """The dev sandbox's servers (deploy/docker/Dockerfile.sandbox)."""
    return {name: spec for name, spec in services().items() if built_from(spec, SANDBOX_DOCKERFILE)}


@cache
def stack_module() -> ModuleType:
    """tools/stack.py, what `make up` runs."""
    spec = importlib.util.spec_from_file_location("deploy_tools_stack", STACK_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def role(name: str) -> str:
    svc = image_service(name)
    command = services()[name]["command"]
    if command[:2] == [svc, "api"]:
        return "api"
    if command[:2] == [svc, "migrate"]:
        return "migrate"
    return "worker"


def env_names(cls: type[KitSettings], field: str) -> set[str]:
    """The environment variables a Settings field is read from (see servicekit.settings)."""
    alias = cls.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return {choice.upper() for choice in alias.choices if isinstance(choice, str)}
    if isinstance(alias, str):
        return {alias.upper()}
    prefix = cls.service_name.upper().replace("-", "_") + "_"
    names = {f"{prefix}{field}".upper()}
    if field not in _PREFIX_ONLY:
        names.add(field.upper())
    return names


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    out = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        out.append((instruction.upper(), args.strip()))
    return out


def runtime_stage(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    instructions = dockerfile_instructions(path)
    last_from = max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM")
    return instructions[last_from:]


# --- the Compose specification ---------------------------------------------------------------


@cache
def compose_spec_validator() -> Any:
    reason = (
        "check-jsonschema is not installed: it is a dev dependency (it ships the Compose JSON "
        "Schema and brings jsonschema); run `make install`"
    )
    pytest.importorskip("check_jsonschema", reason=reason)
    jsonschema = pytest.importorskip("jsonschema", reason=reason)
    spec = (
        importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    )
    schema = json.loads(spec.read_text(encoding="utf-8"))
    assert schema.get("title") == "Compose Specification"
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_errors(doc: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in compose_spec_validator().iter_errors(doc)
    ]


def test_compose_file_follows_the_compose_spec() -> None:
    assert schema_errors(compose()) == []


def test_the_compose_schema_rejects_a_broken_file() -> None:
    # The check above would pass vacuously if the schema accepted anything.
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["gateway"]["comand"] = ["gateway", "api"]
    broken["services"]["ops"]["healthcheck"] = {"interval": 10}
    broken["services"]["scheduling"]["depends_on"]["postgres"]["condition"] = "service_ready"
    errors = schema_errors(broken)
    assert any("comand" in e for e in errors), errors
    assert any(e.startswith("services/ops/healthcheck/interval") for e in errors), errors
    assert any("service_ready" in e for e in errors), errors


# --- what is in the file ---------------------------------------------------------------------


def test_every_service_folder_has_an_image_an_api_and_a_migration() -> None:
    folders = {p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml")}
    assert folders == set(DESIGN_PORTS), "a service folder without a DESIGN.md port, or vice versa"
    assert set(services()) - set(app_services()) - set(sandbox_services()) == INFRA
    for svc in DESIGN_PORTS:
        apis = [n for n, s in app_services().items() if s == svc and role(n) == "api"]
        migrations = [n for n, s in app_services().items() if s == svc and role(n) == "migrate"]
        # The API's compose name is its host name for the gateway (http://scheduling:8001).
        assert apis == [svc], f"{svc}: expected one API named {svc!r}, found {apis}"
        assert migrations == [f"{svc}-migrate"], f"{svc}: migrate service {migrations}"


def test_images_are_built_from_the_dockerfile_for_a_real_package() -> None:
    builds: dict[str, dict[str, Any]] = {}
    for name, svc in app_services().items():
        spec = services()[name]
        build = spec["build"]
        assert build["context"] == ".", f"{name}: the build context must be the repository root"
        assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE.resolve(), name
        assert set(build["args"]) == {"SERVICE", "PORT"}, name
        assert svc in DESIGN_PORTS, f"{name}: SERVICE={svc!r} is not a service folder"
        assert service_pyproject(svc)["project"]["name"] == f"{svc}-service", (
            f"{name}: the Dockerfile installs --package {svc}-service, which services/{svc} "
            "does not define"
        )
        assert str(build["args"]["PORT"]) == str(DESIGN_PORTS[svc]), f"{name}: PORT build arg"
        # Every container of one service runs one image, built one way.
        first = builds.setdefault(svc, {"image": spec.get("image"), "build": build})
        assert first == {"image": spec.get("image"), "build": build}, f"{name}: image differs"
        assert spec.get("image"), f"{name}: name the image so its containers share it"


def test_commands_are_console_scripts_of_the_image_package() -> None:
    for name, svc in app_services().items():
        command = services()[name].get("command")
        assert isinstance(command, list) and command, f"{name}: command must be an exec list"
        scripts = service_pyproject(svc)["project"].get("scripts", {})
        assert command[0] in scripts, (
            f"{name}: {command[0]!r} is not a console script of {svc}-service "
            f"([project.scripts] has {sorted(scripts)})"
        )
        module, _, attr = scripts[command[0]].partition(":")
        assert callable(getattr(importlib.import_module(module), attr, None)), scripts[command[0]]
        workers = cli_module(svc).COMMANDS.workers
        assert "--once" not in command, f"{name}: compose runs workers long-lived"
        if command[0] == svc:
            assert command[1] in {"api", "migrate", "worker"}, f"{name}: {command}"
            if command[1] == "worker":
                assert len(command) == 3 and command[2] in workers, (
                    f"{name}: {svc} has no worker {command[2:]}; it has {sorted(workers)}"
                )
        else:
            # The runbook's commands (`scheduler-sync`, ...) are each a worker of that name.
            assert command[0] in workers, f"{name}: {command[0]!r} is not a {svc} worker"


def test_every_worker_runs_in_a_container() -> None:
    running = set()
    for name, svc in app_services().items():
        if role(name) == "worker":
            command = services()[name]["command"]
            running.add((svc, command[2] if command[:2] == [svc, "worker"] else command[0]))
    for svc in DESIGN_PORTS:
        for worker in cli_module(svc).COMMANDS.workers:
            assert (svc, worker) in running, f"worker {worker!r} of {svc} has no compose service"


def test_apis_publish_the_design_ports_and_have_healthchecks() -> None:
    script = load_healthcheck_script()
    for name, svc in app_services().items():
        if role(name) != "api":
            continue
        port = DESIGN_PORTS[svc]
        assert settings_class(svc).default_port == port, f"{svc}: Settings.default_port"
        assert services()[name].get("ports") == [f"{port}:{port}"], f"{name}: ports"
        health = services()[name].get("healthcheck") or {}
        assert not health.get("disable"), f"{name}: healthcheck disabled"
        test = health.get("test")
        assert test[:3] == ["CMD", "python", "/app/healthcheck.py"], f"{name}: {test}"
        assert test[3] in script.ROUTES, f"{name}: {test}"


def test_containers_without_http_switch_off_the_image_healthcheck() -> None:
    for name in app_services():
        if role(name) != "api":
            assert services()[name].get("healthcheck") == {"disable": True}, name
            assert "ports" not in services()[name], name


def test_start_order_waits_for_healthy_infrastructure_and_migrations() -> None:
    healthy = {"condition": "service_healthy"}
    pg = services()["postgres"]["healthcheck"]["test"]
    rq = services()["rabbitmq"]["healthcheck"]["test"]
    assert "pg_isready" in pg, pg
    assert rq[-3:] == ["rabbitmq-diagnostics", "-q", "ping"], rq
    for name, svc in app_services().items():
        depends = services()[name].get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        assert depends.get("postgres") == healthy, f"{name}: postgres healthy"
        if role(name) == "migrate":
            assert services()[name].get("restart") == "no", f"{name}: one-shot"
            continue
        assert depends.get("rabbitmq") == healthy, f"{name}: rabbitmq healthy"
        assert depends.get(f"{svc}-migrate") == {"condition": "service_completed_successfully"}, (
            f"{name}: must wait for {svc}-migrate"
        )
    for upstream in gateway_upstreams():
        assert services()["gateway"]["depends_on"].get(upstream) == healthy, upstream


# --- environment -----------------------------------------------------------------------------


def test_common_environment() -> None:
    env = compose()["x-common-env"]
    assert env["SCHEDULER_ENV"] == "${SCHEDULER_ENV:-development}"
    assert (
        env["POSTGRES_URL"].startswith("postgresql://") and "@postgres:5432" in env["POSTGRES_URL"]
    )
    assert env["AMQP_URL"].startswith("amqp://") and "@rabbitmq:5672/" in env["AMQP_URL"]
    assert env["HOST"] == "0.0.0.0"
    for name in app_services():
        environment = services()[name]["environment"]
        assert environment.items() >= env.items(), f"{name}: x-common-env not merged"


def test_one_environment_per_service() -> None:
    # `<svc> migrate` runs the same start-up checks as the API, so it needs the same secrets.
    seen: dict[str, dict[str, Any]] = {}
    for name, svc in app_services().items():
        env = services()[name]["environment"]
        assert seen.setdefault(svc, env) == env, f"{name}: environment differs from other {svc}"


def test_secrets_are_passed_through_never_written() -> None:
    for name, svc in app_services().items():
        env = services()[name]["environment"]
        secrets = settings_class(svc).model_construct().secret_fields()
        for secret in secrets:
            assert secret in env, f"{name}: pass {secret} through for production use"
            assert env[secret] is None, f"{name}: {secret} must come from the shell, not the file"


def test_loopback_defaults_are_overridden() -> None:
    # 127.0.0.1 inside a container is the container itself: every setting that defaults to the
    # local machine must be set for compose.
    for name, svc in app_services().items():
        cls = settings_class(svc)
        env = {k.upper(): v for k, v in services()[name]["environment"].items()}
        for field, info in cls.model_fields.items():
            if not (isinstance(info.default, str) and LOOPBACK.search(info.default)):
                continue
            names = env_names(cls, field) & set(env)
            assert names, f"{name}: set one of {sorted(env_names(cls, field))}"
            for var in names:
                value = env[var]
                assert isinstance(value, str), f"{name}: {var}"
                if field not in BROWSER_FACING_FIELDS:
                    assert not LOOPBACK.search(value), f"{name}: {var}={value}"


def test_gateway_reaches_each_api_by_its_compose_name() -> None:
    cls = settings_class("gateway")
    env = {k.upper(): v for k, v in services()["gateway"]["environment"].items()}
    for upstream in gateway_upstreams():
        names = env_names(cls, f"{upstream}_url") & set(env)
        assert len(names) == 1, f"gateway: set exactly one of {env_names(cls, f'{upstream}_url')}"
        assert env[names.pop()] == f"http://{upstream}:{DESIGN_PORTS[upstream]}", upstream


# --- the Dockerfile --------------------------------------------------------------------------


def test_dockerfile_base_image_and_uv_match_the_workspace() -> None:
    instructions = dockerfile_instructions()
    base = next(args for ins, args in instructions if ins == "ARG" and args.startswith("PYTHON_"))
    assert base == "PYTHON_IMAGE=python:3.11-slim", base
    assert pyproject(ROOT / "pyproject.toml")["project"]["requires-python"] == ">=3.11,<3.12"
    assert all(
        args.startswith("${PYTHON_IMAGE} AS ") for ins, args in instructions if ins == "FROM"
    )
    makefile = (ROOT / "Makefile").read_text()
    make_uv = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", makefile, re.M)
    docker_uv = next(a for i, a in instructions if i == "ARG" and a.startswith("UV_VERSION="))
    assert make_uv and docker_uv == f"UV_VERSION={make_uv.group(1)}", "uv versions differ"
    assert any("pip install" in a and '"uv==${UV_VERSION}"' in a for i, a in instructions)


def test_dockerfile_installs_only_the_locked_service_package() -> None:
    syncs = [shlex.split(a) for i, a in dockerfile_instructions() if i == "RUN" and "uv sync" in a]
    assert len(syncs) == 2, "a dependency layer, then the workspace packages"
    for argv in syncs:
        sync = argv[argv.index("sync") - 1 :]
        assert {"--frozen", "--no-dev", "--no-editable"} <= set(sync), sync
        assert sync[sync.index("--package") + 1] == "${SERVICE}-service", sync
    assert "--no-install-workspace" in syncs[0]
    assert "--no-install-workspace" not in syncs[1]


def test_dockerfile_runtime_stage() -> None:
    stage = runtime_stage()
    env: dict[str, str] = {}
    for ins, args in stage:
        if ins == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(args))
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["SCHEDULER_ENV"] == "production"
    assert env["SCHEDULER_SERVICE"] == "${SERVICE}"
    assert env["PATH"].startswith("/app/.venv/bin:")
    users = [args for ins, args in stage if ins == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}, "runs as root"
    assert ("EXPOSE", "${PORT}") in stage
    copies = [shlex.split(a) for i, a in stage if i == "COPY" and not a.startswith("--from")]
    for argv in copies:
        for source in argv[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    health = next(args for ins, args in stage if ins == "HEALTHCHECK")
    assert '["python", "/app/healthcheck.py", "/healthz"]' in health, health
    cmd = json.loads(next(args for ins, args in stage if ins == "CMD"))
    assert cmd == ["/bin/sh", "-c", 'exec "${SCHEDULER_SERVICE}" api'], cmd


def test_dockerignore_keeps_what_the_build_needs() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", "**/.venv", "**/__pycache__", "tests", "**/tests"} <= patterns
    for needed in ("uv.lock", "pyproject.toml", "deploy", "libs", "services", "src", "*.toml"):
        assert needed not in patterns, f".dockerignore drops {needed}"


# --- the health probe ------------------------------------------------------------------------


def load_healthcheck_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", HEALTHCHECK_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response({"/healthz": 200, "/readyz": 503}.get(self.path, 404))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_probe(env: dict[str, str], *args: str) -> int:
    base = {
        k: v for k, v in os.environ.items() if not k.upper().startswith(("OPS_", "PORT", "HOST"))
    }
    base.pop("SCHEDULER_SERVICE", None)
    proc = subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode


def test_health_probe_asks_the_port_the_service_settings_resolve(health_server: int) -> None:
    # OPS_PORT is how the ops service itself would be moved; the probe must follow it.
    env = {"SCHEDULER_SERVICE": "ops", "OPS_PORT": str(health_server), "HOST": "0.0.0.0"}
    assert run_probe(env, "/healthz") == 0
    assert run_probe(env) == 0
    assert run_probe(env, "/readyz") == 1  # 503
    assert run_probe(env, "/metrics") == 1  # not a health route
    assert run_probe({**env, "OPS_PORT": str(free_port())}, "/healthz") == 1  # nothing listens
    assert run_probe({k: v for k, v in env.items() if k != "SCHEDULER_SERVICE"}) == 1


# --- the dev sandbox (profile `sandbox`) ------------------------------------------------------


def sandbox_procs() -> dict[str, Any]:
    """tools/stack.py's sandbox processes by name (sandbox-oidc, sandbox-graph, ...)."""
    return {p.name: p for p in stack_module().processes() if p.service == "sandbox"}


def sandbox_host(url: str) -> str:
    """A make-up URL on a sandbox port, as the compose network names that server."""
    ports = stack_module().DEFAULT_PORTS
    for name in ("oidc", "graph", "icims"):
        url = url.replace(f"127.0.0.1:{ports[name]}", f"sandbox-{name}:{ports[name]}")
    return url


def test_the_sandbox_profile_runs_every_sandbox_server_of_make_up() -> None:
    procs = sandbox_procs()
    assert procs, "tools/stack.py starts no sandbox server?"
    assert set(sandbox_services()) == set(procs), "compose and `make up` sandboxes differ"
    scripts = pyproject(SANDBOX_PYPROJECT)["project"]["scripts"]
    for name, proc in procs.items():
        spec = services()[name]
        assert spec.get("profiles") == [SANDBOX_PROFILE], f"{name}: only in the sandbox profile"
        assert spec["image"] == "interview-scheduler/sandbox:local", f"{name}: one sandbox image"
        assert spec["build"]["context"] == ".", name
        command = spec["command"]
        script = Path(proc.argv[0]).name
        assert command[0] == script and script in scripts, f"{name}: {command}"
        # make up's arguments, plus every interface (127.0.0.1 is the container itself).
        assert command[1:] == ["--host", "0.0.0.0", *proc.argv[1:]], f"{name}: {command}"
        assert spec.get("ports") == [f"{proc.port}:{proc.port}"], f"{name}: ports"
        test = spec["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: {test}"
        assert f"'http://127.0.0.1:{proc.port}{proc.health_path}'" in test[3], (
            f"{name}: the healthcheck must ask {proc.health_path}, as make up does"
        )


def test_sandbox_servers_start_before_the_services_that_call_them() -> None:
    optional = {"condition": "service_healthy", "required": False}
    gateway = services()["gateway"]["depends_on"]
    assert gateway.get("sandbox-oidc") == optional, "gateway: sign-in provider first"
    for name, svc in app_services().items():
        depends = services()[name].get("depends_on") or {}
        callers_of_fakes = svc == "integrations" and role(name) != "migrate"
        for fake in ("sandbox-graph", "sandbox-icims"):
            if callers_of_fakes:
                assert depends.get(fake) == optional, f"{name}: {fake} first"
            else:
                assert fake not in depends, f"{name} does not call {fake}"
        # `required: false`: without the profile the stack starts all the same.
        for dep in set(depends) & set(sandbox_services()):
            assert depends[dep].get("required") is False, f"{name}: {dep} must be optional"


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and key == key.strip() and key.isupper(), f"{path.name}: {line!r}"
        assert key not in values, f"{path.name}: {key} twice"
        values[key] = value
    return values


def readers(key: str) -> dict[str, str]:
    """services/<svc> -> the Settings field that reads the environment variable `key`."""
    found = {}
    for svc in DESIGN_PORTS:
        cls = settings_class(svc)
        for field in cls.model_fields:
            if key in env_names(cls, field):
                found[svc] = field
    return found


def test_sandbox_env_file_wires_the_services_as_make_up_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env_file = parse_env_file(SANDBOX_ENV_FILE)
    assert env_file.pop("SCHEDULER_ENV") == "development", "the sandbox is development only"
    monkeypatch.setattr(os, "environ", {})  # make up's own values, not this shell's
    made_up = stack_module().environment()
    for key, value in env_file.items():
        assert key in made_up, f"sandbox.env sets {key}, which make up does not"
        assert value == sandbox_host(made_up[key]), f"{key}: make up uses {made_up[key]!r}"
        assert readers(key), f"{key} is read by no service's Settings"
        for svc in readers(key):
            for name in (n for n, s in app_services().items() if s == svc):
                env = services()[name]["environment"]
                assert key in env and env[key] is None, f"{name}: pass {key} through"
    # Everything make up configures must reach the containers, from the file or from compose
    # itself (ports are the Settings defaults, which compose publishes).
    for key in made_up:
        for svc, field in readers(key).items():
            if field == "port":
                continue
            for name in (n for n, s in app_services().items() if s == svc):
                env = services()[name]["environment"]
                set_here = {n for n in env_names(settings_class(svc), field) if env.get(n)}
                assert key in env_file or set_here, f"{name}: {key} ({field}) is not wired"


def test_sandbox_dockerfile_builds_the_sandbox_package_like_the_service_images() -> None:
    main = dockerfile_instructions()
    sandbox = dockerfile_instructions(SANDBOX_DOCKERFILE)
    for prefix in ("PYTHON_IMAGE=", "UV_VERSION="):
        ours = [a for i, a in sandbox if i == "ARG" and a.startswith(prefix)]
        theirs = [a for i, a in main if i == "ARG" and a.startswith(prefix)]
        assert ours and ours == theirs, f"{prefix}: the two Dockerfiles differ"
    package = pyproject(SANDBOX_PYPROJECT)["project"]["name"]
    syncs = [shlex.split(a) for i, a in sandbox if i == "RUN" and "uv sync" in a]
    assert len(syncs) == 2, "a dependency layer, then the package"
    for argv in syncs:
        sync = argv[argv.index("sync") - 1 :]
        assert {"--frozen", "--no-dev", "--no-editable"} <= set(sync), sync
        assert sync[sync.index("--package") + 1] == package, sync
    stage = runtime_stage(SANDBOX_DOCKERFILE)
    users = [args for ins, args in stage if ins == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}, "runs as root"
    exposed = {int(p) for ins, args in stage if ins == "EXPOSE" for p in args.split()}
    assert exposed == {p.port for p in sandbox_procs().values()}, exposed
    cmd = json.loads(next(args for ins, args in stage if ins == "CMD"))
    assert cmd[0] in pyproject(SANDBOX_PYPROJECT)["project"]["scripts"], cmd


# --- traces -----------------------------------------------------------------------------------


def test_services_export_traces_to_the_bundled_collector() -> None:
    jaeger = services()["jaeger"]
    image, _, tag = jaeger["image"].partition(":")
    assert image == "jaegertracing/all-in-one" and tag and tag != "latest", jaeger["image"]
    assert "16686:16686" in jaeger["ports"], "the trace viewer's UI"
    assert f"{OTLP_HTTP_PORT}:{OTLP_HTTP_PORT}" in jaeger["ports"], "OTLP/HTTP for make up"
    assert jaeger["healthcheck"]["test"][0] == "CMD", jaeger["healthcheck"]
    endpoint = compose()["x-common-env"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == f"${{OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:{OTLP_HTTP_PORT}}}"
    for name, svc in app_services().items():
        cls = settings_class(svc)
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in env_names(cls, "otel_exporter_otlp_endpoint")
        if role(name) != "migrate":
            depends = services()[name]["depends_on"]
            assert depends.get("jaeger") == {"condition": "service_healthy"}, name


def test_prometheus_scrapes_every_api_and_worker_where_it_serves_metrics() -> None:
    # APIs answer /metrics on their own port; a long-lived worker on METRICS_PORT, which must be
    # set (0, the default, serves none).
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    scraped = {
        name: {t for c in job["static_configs"] for t in c["targets"]} for name, job in jobs.items()
    }
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in jobs.values())
    port = compose()["x-common-env"]["METRICS_PORT"]
    assert int(port) > 0
    expected: dict[str, set[str]] = {"apis": set(), "workers": set()}
    for name, svc in app_services().items():
        if role(name) == "api":
            expected["apis"].add(f"{name}:{DESIGN_PORTS[svc]}")
        elif role(name) == "worker":
            assert services()[name]["environment"]["METRICS_PORT"] == port, name
            expected["workers"].add(f"{name}:{port}")
    assert scraped == expected
    prometheus = services()["prometheus"]
    assert (
        f"./{PROMETHEUS_CONFIG.relative_to(ROOT)}:/etc/prometheus/prometheus.yml:ro"
        in (prometheus["volumes"])
    )
    assert prometheus["image"].split(":")[1] not in ("", "latest"), prometheus["image"]
