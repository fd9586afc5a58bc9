"""deploy/k8s agrees with the Kubernetes API and with the code, without a cluster or kustomize.

The kustomizations are rendered here (resources, namespace, images, replicas, strategic-merge
patches of maps: the renderer refuses anything else, so it cannot silently drift from what
`kubectl apply -k` would do), every object is validated with kubernetes-validate's strict
schemas at pinned Kubernetes versions, and the manifests are checked against the code the way
test_compose.py checks docker-compose.yml: one Deployment per process `make up` runs (sandbox
aside), a migration Job per service, console scripts and workers that exist, `--once` where the
runbook schedules it, ports from each Settings class, environment variables its Settings really
reads, Secrets for its secrets, health probes on routes the apps really serve, and the processes'
own start-up checks passing in production with what the manifests give them.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import os
import re
import sys
import typing
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr, ValidationError
from servicekit.settings import ConfigurationError, KitSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
KUSTOMIZATIONS = [BASE, *OVERLAYS]
README = K8S / "README.md"
RUNBOOK = ROOT.parent / "shared" / "runbook.md"

# The oldest and the newest Kubernetes minor the manifests promise (kubernetes-validate 1.37
# ships schemas up to 1.37). CronJob `timeZone` needs 1.27+.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
# What the renderer below implements; a kustomization using anything else fails here.
RENDERED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
CLUSTER_SCOPED = {"Namespace"}
POD_OWNERS = {"Deployment", "Job", "CronJob"}
# runbook.md "Scheduled Tasks" (`npm run scheduler:sync:once` is `scheduler-sync --once`,
# DESIGN.md "Configuration"); test_the_runbook_schedule_is_the_one_checked reads the runbook.
RUNBOOK_SCHEDULE = {
    "scheduler-sync": "*/5 * * * *",
    "scheduler-webhook-process": "* * * * *",
    "scheduler-reconcile": "*/10 * * * *",
}
# Settings fields that carry credentials even though typed `str`.
CREDENTIAL_FIELDS = {"database_url", "postgres_url", "amqp_url"}
ROLES = {"api", "worker", "migrate", "cron"}


def _load_compose_checks() -> ModuleType:
    """test_compose.py's helpers (Settings classes, pyprojects, CLIs, env names, ports)."""
    path = Path(__file__).with_name("test_compose.py")
    spec = importlib.util.spec_from_file_location("deploy_compose_checks", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compose_checks = _load_compose_checks()
DESIGN_PORTS: dict[str, int] = compose_checks.DESIGN_PORTS
LOOPBACK: re.Pattern[str] = compose_checks.LOOPBACK
settings_class = compose_checks.settings_class
service_pyproject = compose_checks.service_pyproject
cli_module = compose_checks.cli_module
env_names = compose_checks.env_names
stack_module = compose_checks.stack_module


# --- rendering -------------------------------------------------------------------------------


def load_documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
        assert {"apiVersion", "kind", "metadata"} <= set(doc), f"{path}: not an object"
    return docs


def kustomization(directory: Path) -> dict[str, Any]:
    doc = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert doc.get("apiVersion") == "kustomize.config.k8s.io/v1beta1", directory
    assert doc.get("kind") == "Kustomization", directory
    unknown = set(doc) - RENDERED_FIELDS
    assert not unknown, f"{directory}: the test's renderer does not implement {sorted(unknown)}"
    return doc


def merge_patch(target: dict[str, Any], patch: dict[str, Any], where: str) -> None:
    """Strategic merge of maps (a null deletes). Lists merge by per-field keys in kustomize;
    the renderer does not implement that, so patches may not contain any."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            child = target.setdefault(key, {})
            assert isinstance(child, dict), f"{where}/{key}: patching a non-map with a map"
            merge_patch(child, value, f"{where}/{key}")
        else:
            assert not isinstance(value, list), f"{where}/{key}: list patches are not rendered"
            target[key] = value


def split_image(image: str) -> tuple[str, str | None, str | None]:
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest or None
    return name, None, digest or None


def pod_template(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return pod_template(obj)["spec"]


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    return pod_template(obj)["metadata"]["labels"]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def set_image(objects: list[dict[str, Any]], rule: dict[str, str]) -> int:
    assert set(rule) <= {"name", "newName", "newTag", "digest"}, rule
    hits = 0
    for obj in objects:
        if obj["kind"] not in POD_OWNERS:
            continue
        for container in containers(obj):
            name, tag, digest = split_image(container["image"])
            if name != rule["name"]:
                continue
            hits += 1
            name = rule.get("newName", name)
            tag = rule.get("newTag", tag)
            digest = rule.get("digest", digest)
            container["image"] = (
                name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
            )
    return hits


def render_uncached(directory: Path) -> list[dict[str, Any]]:
    k = kustomization(directory)
    objects: list[dict[str, Any]] = []
    for entry in k.get("resources", []):
        path = (directory / entry).resolve()
        assert path.is_relative_to(K8S), f"{directory}: {entry} is outside deploy/k8s"
        objects += render_uncached(path) if path.is_dir() else load_documents(path)
    ids = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(ids) == len(set(ids)), f"{directory}: an object twice in {sorted(ids)}"
    for patch in k.get("patches", []):
        assert set(patch) == {"path"}, f"{directory}: only `path` patches are rendered"
        docs = load_documents(directory / patch["path"])
        assert len(docs) == 1, f"{patch['path']}: one object per patch file"
        (doc,) = docs
        targets = [
            o
            for o in objects
            if (o["apiVersion"], o["kind"], o["metadata"]["name"])
            == (doc["apiVersion"], doc["kind"], doc["metadata"]["name"])
        ]
        assert len(targets) == 1, f"{patch['path']} patches {len(targets)} objects"
        merge_patch(targets[0], doc, patch["path"])
    if "namespace" in k:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = k["namespace"]
    for rule in k.get("images", []):
        assert set_image(objects, rule), f"{directory}: images {rule['name']} matches nothing"
    for rule in k.get("replicas", []):
        assert set(rule) == {"name", "count"}, rule
        targets = [
            o
            for o in objects
            if o["kind"] == "Deployment" and o["metadata"]["name"] == rule["name"]
        ]
        assert len(targets) == 1, f"{directory}: replicas {rule['name']}"
        targets[0]["spec"]["replicas"] = rule["count"]
    return objects


@cache
def _render(directory: Path) -> list[dict[str, Any]]:
    return render_uncached(directory)


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl apply -k <directory>` would send (a copy: mutate freely)."""
    return copy.deepcopy(_render(directory))


def referenced_files(directory: Path) -> set[Path]:
    k = kustomization(directory)
    found = {directory / "kustomization.yaml"}
    for entry in k.get("resources", []):
        path = (directory / entry).resolve()
        found |= referenced_files(path) if path.is_dir() else {path}
    found |= {(directory / p["path"]).resolve() for p in k.get("patches", [])}
    return found


# --- reading the rendered objects --------------------------------------------------------------


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = of_kind(objects, kind)
    assert name in found, f"no {kind} {name}"
    return found[name]


def workloads(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployments, Jobs and CronJobs by name (names are unique across the three here)."""
    found: dict[str, dict[str, Any]] = {}
    for obj in objects:
        if obj["kind"] in POD_OWNERS:
            assert obj["metadata"]["name"] not in found, obj["metadata"]["name"]
            found[obj["metadata"]["name"]] = obj
    return found


def role(obj: dict[str, Any]) -> str:
    value = obj["metadata"]["labels"]["app.kubernetes.io/component"]
    assert value in ROLES, f"{obj['metadata']['name']}: component {value}"
    return str(value)


def the_container(obj: dict[str, Any]) -> dict[str, Any]:
    spec = pod_spec(obj)
    assert not spec.get("initContainers"), obj["metadata"]["name"]
    assert len(spec["containers"]) == 1, f"{obj['metadata']['name']}: one process per pod"
    return spec["containers"][0]


def image_service(container: dict[str, Any]) -> str:
    """services/<svc> the container's image is built for (`.../interview-scheduler/<svc>`)."""
    name, _, _ = split_image(container["image"])
    repo, _, svc = name.rpartition("/")
    assert repo.endswith("interview-scheduler"), container["image"]
    assert svc in DESIGN_PORTS, f"{container['image']}: not a service image"
    return svc


def container_env(
    container: dict[str, Any], objects: list[dict[str, Any]]
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """(plain values from ConfigMaps and `value`, secretKeyRefs by variable name)."""
    plain: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"{container['name']}: envFrom {source}"
        ref = source["configMapRef"]
        assert not ref.get("optional"), f"{container['name']}: ConfigMap {ref['name']} optional"
        plain.update(find(objects, "ConfigMap", ref["name"])["data"])
    secrets: dict[str, dict[str, Any]] = {}
    for entry in container.get("env", []):
        if "value" in entry:
            plain[entry["name"]] = entry["value"]
            continue
        source = entry["valueFrom"]
        assert set(source) == {"secretKeyRef"}, f"{container['name']}: {entry['name']}"
        secrets[entry["name"]] = source["secretKeyRef"]
        plain.pop(entry["name"], None)
    return plain, secrets


def reads(svc: str, key: str) -> list[tuple[str, bool]]:
    """(field, through the service's prefix) for each Settings field that reads `key`."""
    cls = settings_class(svc)
    prefix = cls.service_name.upper().replace("-", "_") + "_"
    found = []
    for field, info in cls.model_fields.items():
        if key in env_names(cls, field):
            prefixed = info.validation_alias is None and key == f"{prefix}{field}".upper()
            found.append((field, prefixed))
    return found


def secret_field(svc: str, key: str) -> bool:
    """Whether `key` is read by a secret field of the service (SecretStr, or a URL that carries
    credentials)."""
    cls = settings_class(svc)
    for field, _ in reads(svc, key):
        annotation = cls.model_fields[field].annotation
        if annotation is SecretStr or SecretStr in typing.get_args(annotation):
            return True
        if field in CREDENTIAL_FIELDS:
            return True
    return False


def secret_placeholder(svc: str, key: str) -> str:
    if key.endswith("DATABASE_URL"):
        return f"postgresql://{svc}:placeholder@postgres:5432/scheduler_{svc}"
    if key == "AMQP_URL":
        return "amqp://scheduler:placeholder@rabbitmq:5672/"
    return f"k8s-test-placeholder-{key.lower()}".ljust(48, "x")


def settings_from(monkeypatch: pytest.MonkeyPatch, svc: str, env: dict[str, str]) -> KitSettings:
    """The service's Settings as a process with exactly this environment would read them."""
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return settings_class(svc)()


def pod_environment(
    obj: dict[str, Any], objects: list[dict[str, Any]]
) -> tuple[str, dict[str, str]]:
    """(service, the environment its container gets, with placeholder secret values; optional
    secrets left out, as in a cluster that has none)."""
    container = the_container(obj)
    svc = image_service(container)
    plain, secrets = container_env(container, objects)
    env = dict(plain)
    for name, ref in secrets.items():
        if not ref.get("optional"):
            env[name] = secret_placeholder(svc, name)
    return svc, env


def api_workloads(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: o for n, o in workloads(objects).items() if role(o) == "api"}


# --- the manifests are Kubernetes objects ------------------------------------------------------


def test_every_manifest_file_is_rendered() -> None:
    rendered: set[Path] = set()
    for directory in KUSTOMIZATIONS:
        rendered |= referenced_files(directory)
    files = {p.resolve() for p in K8S.rglob("*.yaml")} | {p.resolve() for p in K8S.rglob("*.yml")}
    assert files - rendered == set(), "YAML files no kustomization uses"
    assert OVERLAYS, "no overlay"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_objects_follow_the_kubernetes_schema(directory: Path, version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    errors = []
    for obj in render(directory):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(map(str, exc.path))
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(exc.message)
    assert errors == []


def test_the_schema_check_rejects_broken_objects() -> None:
    # The check above would pass vacuously if validation accepted anything.
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    objects = render(BASE)
    deployment = next(iter(of_kind(objects, "Deployment").values()))
    broken = copy.deepcopy(deployment)
    the_container(broken)["comand"] = ["gateway", "api"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
    cron = copy.deepcopy(next(iter(of_kind(objects, "CronJob").values())))
    del cron["spec"]["schedule"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cron, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_renderer_applies_overlays() -> None:
    # What the overlays change must be visible in what the other tests check.
    for directory in OVERLAYS:
        k = kustomization(directory)
        objects = render(directory)
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED and "namespace" in k:
                assert obj["metadata"]["namespace"] == k["namespace"], obj["metadata"]["name"]
        for rule in k.get("images", []):
            wanted = rule.get("newName", rule["name"])
            assert any(
                split_image(c["image"])[0] == wanted
                for o in workloads(objects).values()
                for c in containers(o)
            ), wanted
        with pytest.raises(AssertionError, match="list patches"):
            merge_patch({"spec": {}}, {"spec": {"containers": []}}, "probe")


# --- one workload per process ----------------------------------------------------------------


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_every_process_of_make_up_has_a_deployment(directory: Path) -> None:
    objects = render(directory)
    deployments = of_kind(objects, "Deployment")
    procs = {p.name: p for p in stack_module().processes() if p.service != "sandbox"}
    assert set(deployments) == set(procs), "Deployments and tools/stack.py processes differ"
    for name, proc in procs.items():
        container = the_container(deployments[name])
        assert container["command"] == [Path(proc.argv[0]).name, *proc.argv[1:]], name
        assert image_service(container) == proc.service, f"{name}: image"
        assert role(deployments[name]) == ("api" if proc.port else "worker"), name
        labels = deployments[name]["metadata"]["labels"]
        assert labels["interview-scheduler/service"] == proc.service, name


def test_every_worker_of_every_service_has_a_deployment() -> None:
    running = set()
    for obj in of_kind(render(BASE), "Deployment").values():
        if role(obj) == "worker":
            container = the_container(obj)
            svc, command = image_service(container), container["command"]
            running.add((svc, command[2] if command[:2] == [svc, "worker"] else command[0]))
    for svc in DESIGN_PORTS:
        for worker in cli_module(svc).COMMANDS.workers:
            assert (svc, worker) in running, f"worker {worker!r} of {svc} has no Deployment"


def test_commands_are_console_scripts_of_the_image_package() -> None:
    for name, obj in workloads(render(BASE)).items():
        container = the_container(obj)
        svc, command = image_service(container), container["command"]
        assert "args" not in container, f"{name}: one exec list in `command`"
        scripts = service_pyproject(svc)["project"].get("scripts", {})
        assert command[0] in scripts, f"{name}: {command[0]!r} is no console script of {svc}"
        module, _, attr = scripts[command[0]].partition(":")
        assert callable(getattr(importlib.import_module(module), attr, None)), scripts[command[0]]
        workers = cli_module(svc).COMMANDS.workers
        once = command[-1] == "--once"
        assert once == (role(obj) == "cron"), f"{name}: --once only in CronJobs"
        words = command[:-1] if once else command
        if words[0] == svc:
            expected = {"api": [svc, "api"], "migrate": [svc, "migrate"]}.get(role(obj))
            if expected:
                assert words == expected, f"{name}: {command}"
            else:
                assert words[1] == "worker" and len(words) == 3, f"{name}: {command}"
                assert words[2] in workers, f"{name}: {svc} has no worker {words[2]}"
        else:
            assert len(words) == 1 and words[0] in workers, f"{name}: {command}"


def test_every_service_has_a_migration_job() -> None:
    for directory in KUSTOMIZATIONS:
        jobs = of_kind(render(directory), "Job")
        assert set(jobs) == {f"{svc}-migrate" for svc in DESIGN_PORTS}, sorted(jobs)
        for svc in DESIGN_PORTS:
            job = jobs[f"{svc}-migrate"]
            container = the_container(job)
            assert container["command"] == [svc, "migrate"], container["command"]
            assert image_service(container) == svc
            assert role(job) == "migrate"
            assert pod_spec(job)["restartPolicy"] in {"Never", "OnFailure"}
            assert job["spec"]["backoffLimit"] >= 1, f"{svc}-migrate: retry a transient failure"


# --- the runbook's schedule --------------------------------------------------------------------


def test_the_runbook_schedule_is_the_one_checked() -> None:
    if not RUNBOOK.exists():
        pytest.skip(f"{RUNBOOK} is not beside the repository")
    text = RUNBOOK.read_text()
    section = text.split("## Scheduled Tasks", 1)[1].split("\n## ", 1)[0]
    found = {}
    for cron, task in re.findall(r"^(\S+ \S+ \S+ \S+ \S+)\s+npm run (\S+):once$", section, re.M):
        found["-".join(task.split(":"))] = cron
    assert found == RUNBOOK_SCHEDULE


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_cronjobs_run_the_runbook_tasks_once_on_its_schedule(directory: Path) -> None:
    objects = render(directory)
    crons = of_kind(objects, "CronJob")
    by_script = {}
    for name, cron in crons.items():
        container = the_container(cron)
        command = container["command"]
        assert len(command) == 2 and command[1] == "--once", f"{name}: {command}"
        by_script[command[0]] = cron
        svc = image_service(container)
        assert command[0] in service_pyproject(svc)["project"]["scripts"], name
        assert cron["spec"]["concurrencyPolicy"] == "Forbid", f"{name}: runs must not overlap"
        assert pod_spec(cron)["restartPolicy"] == "Never", name
        job = cron["spec"]["jobTemplate"]["spec"]
        # A run ends before the next is due (the every-minute webhook run within the minute).
        period = (
            60 * int(m.group(1)) if (m := re.match(r"\*/(\d+) ", cron["spec"]["schedule"])) else 60
        )
        assert 0 < job["activeDeadlineSeconds"] < period, name
        # Each run announces its schedule, by which ops tells a CronJob that stopped running.
        env, _ = container_env(container, objects)
        assert env.get("ONCE_SCHEDULE_SECONDS") == str(period), name
    assert {s: c["spec"]["schedule"] for s, c in by_script.items()} == RUNBOOK_SCHEDULE


def test_once_commands_accept_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The console script's own entry point, asked for its usage (argparse exits before the
    # script reads any setting).
    for script in RUNBOOK_SCHEDULE:
        owners = [s for s in DESIGN_PORTS if script in service_pyproject(s)["project"]["scripts"]]
        assert len(owners) == 1, f"{script}: console script of {owners}"
        module, _, attr = service_pyproject(owners[0])["project"]["scripts"][script].partition(":")
        monkeypatch.setattr(sys, "argv", [script, "--help"])
        with pytest.raises(SystemExit) as exit_:
            getattr(importlib.import_module(module), attr)()
        assert exit_.value.code == 0, script
        assert "--once" in capsys.readouterr().out, f"{script} takes no --once"


# --- ports, Services, probes -------------------------------------------------------------------


def test_apis_listen_on_the_settings_port_behind_a_service_of_the_service_name() -> None:
    objects = render(BASE)
    made_up = stack_module().DEFAULT_PORTS
    services = of_kind(objects, "Service")
    apis = api_workloads(objects)
    assert {image_service(the_container(o)) for o in apis.values()} == set(DESIGN_PORTS)
    for name, obj in apis.items():
        container = the_container(obj)
        svc = image_service(container)
        port = settings_class(svc).default_port
        assert port == DESIGN_PORTS[svc] == made_up[svc], f"{svc}: ports disagree"
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        service = services[svc]
        selector = service["spec"]["selector"].items()
        selected = [n for n, o in workloads(objects).items() if selector <= pod_labels(o).items()]
        assert selected == [name], f"Service {svc} selects {selected}"
        assert service["spec"]["ports"] == [
            {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}
        ], svc
    for obj in workloads(objects).values():
        if role(obj) not in ("api", "worker"):  # workers: their metrics port, checked below
            assert "ports" not in the_container(obj), obj["metadata"]["name"]


def test_every_api_and_worker_is_scraped_where_it_serves_metrics() -> None:
    # APIs serve /metrics on their own port; a long-lived worker on METRICS_PORT (servicekit's
    # WorkerRuntime), which must be set, or it serves none. `--once` runs never listen.
    objects = render(BASE)
    for name, obj in workloads(objects).items():
        container = the_container(obj)
        annotations = pod_template(obj)["metadata"].get("annotations", {})
        env, _ = container_env(container, objects)  # what the process sees, ConfigMaps too
        if role(obj) in ("api", "worker"):
            [port] = container["ports"]
            if role(obj) == "worker":
                assert port["name"] == "metrics", name
                assert env["METRICS_PORT"] == str(port["containerPort"]), name
            assert annotations == {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(port["containerPort"]),
                "prometheus.io/path": "/metrics",
            }, name
        else:
            assert "METRICS_PORT" not in env and not annotations, name


async def test_api_probes_ask_the_health_routes_the_apps_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    routes = compose_checks.load_healthcheck_script().ROUTES
    expected = {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for name, obj in api_workloads(render(BASE)).items():
        container = the_container(obj)
        svc = image_service(container)
        for probe, path in expected.items():
            action = container[probe]["httpGet"]
            assert action == {"path": path, "port": "http"}, f"{name}: {probe} {action}"
            assert path in routes, path
        # The service's real app, built as `<svc> api` builds it; no lifespan, so no database:
        # /readyz answers 503, which still shows the route is there.
        for key in list(os.environ):
            monkeypatch.delenv(key)
        monkeypatch.setenv("SCHEDULER_ENV", "test")
        app = importlib.import_module(f"{svc}_service.app").create_app()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{svc}") as client:
            assert (await client.get("/healthz")).status_code == 200, f"{svc}: /healthz"
            assert (await client.get("/readyz")).status_code in {200, 503}, f"{svc}: /readyz"
            # Else the check above would pass vacuously.
            assert (await client.get("/no-such-route")).status_code == 404, svc
        # What the prometheus.io annotations name (ops' reads its database, so not asked here).
        assert any(getattr(r, "path", None) == "/metrics" for r in app.routes), svc


def test_workers_jobs_and_cronjobs_have_no_probe_they_cannot_pass() -> None:
    # They serve no HTTP: deploy/docker/healthcheck.py asks the service's API port, which
    # nothing listens on in their pods, so an HTTP or healthcheck.py probe would kill them.
    for name, obj in workloads(render(BASE)).items():
        if role(obj) == "api":
            continue
        container = the_container(obj)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert probe not in container, f"{name}: {probe}"


# --- environment -------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_every_variable_is_a_settings_field_of_its_service(directory: Path) -> None:
    objects = render(directory)
    shared = {
        name
        for name, cm in of_kind(objects, "ConfigMap").items()
        if all(
            any(
                s.get("configMapRef", {}).get("name") == name
                for s in the_container(o).get("envFrom", [])
            )
            for o in workloads(objects).values()
        )
    }
    assert shared == {"scheduler-config"}, shared
    for key in find(objects, "ConfigMap", "scheduler-config")["data"]:
        readings = {svc: reads(svc, key) for svc in DESIGN_PORTS if reads(svc, key)}
        assert readings, f"scheduler-config: {key} is read by no service"
        # A shared name means the same to every service: never one service's prefixed name.
        for svc, fields in readings.items():
            assert not any(prefixed for _, prefixed in fields), f"{key}: {svc} reads it as its own"
    for name, obj in workloads(objects).items():
        container = the_container(obj)
        svc = image_service(container)
        own = [
            n
            for s in container.get("envFrom", [])
            if (n := s["configMapRef"]["name"]) not in shared
        ]
        keys = [e["name"] for e in container.get("env", [])]
        keys += [k for cm in own for k in find(objects, "ConfigMap", cm)["data"]]
        for key in keys:
            assert reads(svc, key), f"{name}: {key} is no field of {svc}'s Settings"
    for cm_name, cm in of_kind(objects, "ConfigMap").items():
        for key, value in cm["data"].items():
            assert isinstance(value, str) and value != "", f"{cm_name}: {key} (unset it instead)"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_secrets_come_from_secrets_never_from_the_manifests(directory: Path) -> None:
    objects = render(directory)
    assert "Secret" not in {o["kind"] for o in objects}, "no Secret is shipped"
    for cm_name, cm in of_kind(objects, "ConfigMap").items():
        for key in cm["data"]:
            assert not any(secret_field(svc, key) for svc in DESIGN_PORTS), f"{cm_name}: {key}"
    for name, obj in workloads(objects).items():
        container = the_container(obj)
        svc = image_service(container)
        cls = settings_class(svc)
        _, secrets = container_env(container, objects)
        for entry in container.get("env", []):
            assert "value" not in entry or not secret_field(svc, entry["name"]), (
                f"{name}: {entry['name']} is a secret; take it from a Secret"
            )
        for key, ref in secrets.items():
            assert ref["key"] == key, f"{name}: Secret key {ref['key']} for {key}"
            fields = [f for f, _ in reads(svc, key)]
            assert fields, f"{name}: {key} is no field of {svc}'s Settings"
        # Every secret the service checks at start comes from a Secret (migrations skip the check).
        if role(obj) != "migrate":
            required = set(cls.model_construct().secret_fields())
            given = {k for k, r in secrets.items() if not r.get("optional")}
            assert required <= given, f"{name}: {sorted(required - given)} missing"


@pytest.mark.parametrize("directory", OVERLAYS, ids=lambda p: p.name)
def test_processes_pass_their_production_start_checks(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render(directory)
    services = of_kind(objects, "Service")
    for name, obj in workloads(objects).items():
        svc, env = pod_environment(obj, objects)
        assert env.get("SCHEDULER_ENV") == "production", f"{name}: SCHEDULER_ENV"
        settings = settings_from(monkeypatch, svc, env)
        db_key = f"{svc.upper()}_DATABASE_URL"
        assert settings.database_url == secret_placeholder(svc, db_key), f"{name}: database"
        if role(obj) == "migrate":
            continue
        try:
            settings.check_for_start()
        except ConfigurationError as exc:
            pytest.fail(f"{name} would refuse to start: {exc}")
        # 127.0.0.1 in a pod is the pod itself: nothing may be left at a loopback default.
        for field, value in settings.model_dump().items():
            if not isinstance(value, str) or not LOOPBACK.search(value):
                continue
            if field == "postgres_url" and settings.database_url:
                continue  # unused: the service's own database URL is set
            if field == "amqp_url" and role(obj) == "api":
                continue  # APIs never talk to the broker; only workers get AMQP_URL
            pytest.fail(f"{name}: {field} is left at {value}")
        for attr in ("scheduling_url", "integrations_url", "reconciler_url", "ops_url"):
            url = getattr(settings, attr, None)
            if url:
                upstream = attr.removesuffix("_url")
                assert url == f"http://{upstream}:{DESIGN_PORTS[upstream]}", f"{name}: {attr}"
                assert services[upstream]["spec"]["ports"][0]["port"] == DESIGN_PORTS[upstream]


def test_the_base_alone_refuses_to_start_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    # The base carries no install's values: an overlay must give GOOGLE_CLIENT_ID.
    objects = render(BASE)
    svc, env = pod_environment(find(objects, "Deployment", "gateway-api"), objects)
    with pytest.raises(ConfigurationError, match="GOOGLE_CLIENT_ID"):
        settings_from(monkeypatch, svc, env).check_for_start()


def test_service_links_would_break_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kubernetes injects <SERVICE NAME>_PORT=tcp://<ip>:<port> for every Service in the
    # namespace; ours are named after the services, which read <SERVICE>_PORT as their port.
    for svc, port in DESIGN_PORTS.items():
        env = {"SCHEDULER_ENV": "test", f"{svc.upper()}_PORT": f"tcp://10.0.0.1:{port}"}
        with pytest.raises(ValidationError):
            settings_from(monkeypatch, svc, env)
    for name, obj in workloads(render(BASE)).items():
        assert pod_spec(obj)["enableServiceLinks"] is False, name


# --- scaling, placement, privileges ------------------------------------------------------------


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_autoscalers_target_only_the_stateless_apis(directory: Path) -> None:
    objects = render(directory)
    apis = api_workloads(objects)
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    targets = []
    for name, hpa in hpas.items():
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment"), name
        assert ref["name"] in apis, f"{name} scales {ref['name']}, which is not an API"
        targets.append(ref["name"])
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], name
        deployment = apis[ref["name"]]
        assert "replicas" not in deployment["spec"], f"{ref['name']}: the HPA owns replicas"
        for metric in hpa["spec"]["metrics"]:
            resource = metric["resource"]["name"]
            assert resource in the_container(deployment)["resources"]["requests"], name
    assert sorted(targets) == sorted(apis), "every API has exactly one autoscaler"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_selectors_select_their_own_pods(directory: Path) -> None:
    objects = render(directory)
    pods = {n: pod_labels(o) for n, o in workloads(objects).items()}
    for name, obj in workloads(objects).items():
        assert pods[name]["app.kubernetes.io/name"] == name, name
        assert obj["metadata"]["labels"].items() <= pods[name].items(), name
        if obj["kind"] == "Deployment":
            assert obj["spec"]["selector"]["matchLabels"].items() <= pods[name].items(), name
    for name, pdb in of_kind(objects, "PodDisruptionBudget").items():
        match = pdb["spec"]["selector"]["matchLabels"]
        assert [n for n, labels in pods.items() if match.items() <= labels.items()] == [name]
    policy = find(objects, "NetworkPolicy", "internal-apis")
    (expr,) = policy["spec"]["podSelector"]["matchExpressions"]
    assert (expr["key"], expr["operator"]) == ("app.kubernetes.io/name", "In")
    internal = {f"{u}-api" for u in compose_checks.gateway_upstreams()}
    assert set(expr["values"]) == internal, "every API but the gateway is internal"
    assert "gateway-api" not in expr["values"]


def dockerfile_uid() -> int:
    stage = compose_checks.runtime_stage()
    user = [args for ins, args in stage if ins == "USER"][-1]
    return int(user.split(":")[0])


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_pods_run_unprivileged_with_resources(directory: Path) -> None:
    uid = dockerfile_uid()
    objects = render(directory)
    for name, obj in workloads(objects).items():
        spec = pod_spec(obj)
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == uid, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        find(objects, "ServiceAccount", spec["serviceAccountName"])
        volumes = {v["name"] for v in spec.get("volumes", [])}
        for container in containers(obj):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert "privileged" not in security and "runAsUser" not in security, name
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name
    for namespace in of_kind(objects, "Namespace").values():
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_postgres_and_rabbitmq_are_external_services(directory: Path) -> None:
    services = of_kind(render(directory), "Service")
    for name, port in (("postgres", 5432), ("rabbitmq", 5672)):
        spec = services[name]["spec"]
        assert spec["type"] == "ExternalName", name
        assert re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", spec["externalName"]), name
        assert not re.fullmatch(r"[0-9.]+", spec["externalName"]), f"{name}: a DNS name"
        assert port in {p["port"] for p in spec["ports"]}, name


def test_overlays_pin_every_service_image() -> None:
    for directory in OVERLAYS:
        for name, obj in workloads(render(directory)).items():
            for container in containers(obj):
                _, tag, digest = split_image(container["image"])
                assert digest or (tag and tag != "latest"), f"{directory.name}/{name}: {tag}"
                image_service(container)


def test_readme_documents_every_secret_and_the_schedule() -> None:
    text = README.read_text()
    for directory in KUSTOMIZATIONS:
        objects = render(directory)
        for obj in workloads(objects).values():
            _, secrets = container_env(the_container(obj), objects)
            for ref in secrets.values():
                assert ref["name"] in text and ref["key"] in text, f"README: {ref}"
    for script, cron in RUNBOOK_SCHEDULE.items():
        assert f"`{cron}`" in text and f"{script} --once" in text, script
