"""Schemathesis against the gateway, as each kind of caller.

The gateway documents only its own `/api` routes (the routed ones are `include_in_schema=False`),
so the document fuzzed here is assembled from every service's `/openapi.json`, keeping exactly
the operations the routing table forwards, with the gateway as the server: every call goes
through the gateway, its access checks, CSRF and rate limit included.

Each operation gets its cases from the callers allowed to use it (the caller is drawn with the
case), and a few cases from each caller it must refuse. The operations are split between a few
worker processes (Hypothesis and CPython 3.11's parser are not safe to share between threads).
"""

from __future__ import annotations

import copy
import multiprocessing
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import requests
import schemathesis
from gateway_service.routing.table import ROUTES
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

CHECKS = [not_a_server_error, response_schema_conformance]
REFUSED_CASES = 5  # per refused caller: the refusal happens before anything is parsed
_REF = "#/components/schemas/"
# Operations that move a session to another org; the caller goes back to its own after them.
MOVES = frozenset(
    {"POST /api/orgs", "POST /api/orgs/{org_id}/activate", "POST /api/invitations/{token}/accept"}
)


def combined_openapi(docs: dict[str, dict[str, Any]], gateway_url: str) -> dict[str, Any]:
    """One document: the gateway's own `/api` operations and each routed operation as its
    service documents it. Schema names are prefixed with the service (two services may both
    have a `SettingsOut`). Fails if a routed operation is not documented by its service."""
    routed = {(m.lower(), r.path): r.service for r in ROUTES for m in r.methods}
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for service, doc in docs.items():
        prefix = f"{service}__"

        def rename(node: Any, prefix: str = prefix) -> Any:
            if isinstance(node, dict):
                return {
                    k: (
                        _REF + prefix + v.removeprefix(_REF)
                        if k == "$ref" and isinstance(v, str)
                        else rename(v)
                    )
                    for k, v in node.items()
                }
            if isinstance(node, list):
                return [rename(v) for v in node]
            return node

        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas[prefix + name] = rename(schema)
        for path, operations in doc["paths"].items():
            for method, operation in operations.items():
                ours = service == "gateway" and path.startswith("/api/")
                if ours or routed.get((method, path)) == service:
                    paths.setdefault(path, {})[method] = rename(operation)
    missing = sorted(f"{m.upper()} {p}" for (m, p) in routed if m not in paths.get(p, {}))
    assert not missing, f"routed but documented by no service: {missing}"
    return {
        "openapi": "3.1.0",
        "info": {"title": "Interview Scheduler through its gateway", "version": "0"},
        "servers": [{"url": gateway_url}],
        "paths": paths,
        "components": {"schemas": schemas},
    }


def plausible(
    doc: dict[str, Any], properties: dict[str, list[Any]], query: dict[str, list[Any]]
) -> dict[str, Any]:
    """The document with some request fields narrowed to values that exist, such as real
    time zones and dates near today (random ones stop nearly every case at validation,
    before the code behind it runs). Body properties are narrowed by name in copies of the
    schemas the requests use; the responses keep the schemas as documented."""
    doc = copy.deepcopy(doc)
    schemas = doc["components"]["schemas"]

    def narrow(node: Any) -> Any:
        if isinstance(node, dict):
            out = {
                k: (
                    _REF + "req__" + v.removeprefix(_REF)
                    if k == "$ref" and isinstance(v, str)
                    else narrow(v)
                )
                for k, v in node.items()
            }
            for name in list(out.get("properties", {})):
                if name in properties:
                    out["properties"][name] = {"enum": properties[name]}
            if out.get("in") == "query" and out.get("name") in query:
                out["schema"] = {"enum": query[out["name"]]}
            return out
        if isinstance(node, list):
            return [narrow(v) for v in node]
        return node

    for name, schema in list(schemas.items()):
        schemas["req__" + name] = narrow(schema)
    for operations in doc["paths"].values():
        for operation in operations.values():
            for part in ("requestBody", "parameters"):
                if part in operation:
                    operation[part] = narrow(operation[part])
    return doc


@dataclass(frozen=True)
class CallerSpec:
    """Who sends cases: a session (cookies and CSRF header), an API key, or nobody."""

    name: str
    kind: str  # "session" | "key" | "nobody"
    superadmin: bool = False
    org_admin: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    home_org: str | None = None  # where a moved session is sent back to
    per_address: int = 1_000_000  # calls from one client address (public: under the burst)


def allowed(spec: CallerSpec, method: str, path: str) -> bool:
    """Whether the gateway lets this caller through to the operation's handler."""
    access = {(m, r.path): r.access for r in ROUTES for m in r.methods}.get((method, path))
    if access in ("public", "webhook"):
        return spec.kind == "nobody"
    if spec.kind == "nobody":
        return False
    if access is None:  # the gateway's own API: a signed-in person only
        return spec.kind == "session"
    if access == "superadmin":
        return spec.superadmin
    if access == "org_admin":
        return spec.org_admin
    return True


@dataclass(frozen=True)
class Job:
    label: str  # "METHOD /path"
    callers: tuple[str, ...]
    cases: int


@dataclass
class Tally:
    operation: str
    caller: str
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


class FromAddress(HTTPAdapter):
    """requests from a chosen local address (the gateway rate-limits public routes per IP)."""

    def __init__(self, ip: str) -> None:
        self.ip = ip
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.ip, 0)
        super().init_poolmanager(*args, **kwargs)


class Caller:
    def __init__(self, spec: CallerSpec, addresses: Iterator[str], base_url: str) -> None:
        self.spec = spec
        self.addresses = addresses
        self.base_url = base_url
        self._session: requests.Session | None = None
        self._used = 0

    def session(self) -> requests.Session:
        if self._session is None or self._used >= self.spec.per_address:
            if self._session is not None:
                self._session.close()
            self._session = requests.Session()
            self._session.mount("http://", FromAddress(next(self.addresses)))
            self._session.cookies.update(self.spec.cookies)
            self._used = 0
        self._used += 1
        return self._session

    def after(self, label: str, status: int) -> None:
        if self.spec.home_org and label in MOVES and status < 300:
            back = self.session().post(
                f"{self.base_url}/api/orgs/{self.spec.home_org}/activate",
                headers=self.spec.headers,
                timeout=30,
            )
            assert back.status_code == 204, back.text


def cases_of(operation: Any, likely: Any, known: dict[str, list[str]]) -> Any:
    """A third each: valid inputs, invalid inputs, and valid inputs of the plausible document
    aimed at objects that exist (known path parameter values)."""
    definition = operation.definition.raw
    params = [p["name"] for p in definition.get("parameters", []) if p["in"] == "path"]
    choices = [
        dict(zip(params, combo, strict=True))
        for combo in product(*(known.get(p, []) for p in params))
    ]
    aimed = [likely.as_strategy(GenerationMode.POSITIVE, path_parameters=c) for c in choices[:24]]
    strategies = [operation.as_strategy(GenerationMode.POSITIVE), st.one_of(aimed)]
    if definition.get("parameters") or definition.get("requestBody"):
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(strategies)


def fuzz(strategy: Any, label: str, callers: list[Caller], cases: int) -> dict[str, Tally]:
    """Up to `cases` generated calls of one operation, each by a drawn caller; every failing
    check is recorded, not raised, so one run reports them all."""
    tallies = {c.spec.name: Tally(label, c.spec.name) for c in callers}

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        # No shrinking: failures are collected, not raised, so there is nothing to shrink.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, caller=st.sampled_from(callers))
    def run(case: Any, caller: Caller) -> None:
        tally = tallies[caller.spec.name]
        tally.cases += 1
        try:
            response = case.call(
                base_url=caller.base_url,
                session=caller.session(),
                headers=dict(caller.spec.headers),
                timeout=30,
            )
        except requests.RequestException as exc:
            tally.failures.append(f"{type(exc).__name__}: {exc}\n{case.as_curl_command()}")
            return
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup
            tally.failures.append(f"{exc}".strip()[:2000])
        caller.after(label, response.status_code)

    run()
    return tallies


def plan(doc: dict[str, Any], specs: list[CallerSpec], cases: int) -> list[Job]:
    """Every operation: `cases` from the callers let through, a few from each one refused."""
    jobs = []
    public = {(m, r.path) for r in ROUTES for m in r.methods if r.access in ("public", "webhook")}
    for path, operations in doc["paths"].items():
        for method in operations:
            label = f"{method.upper()} {path}"
            let_in = tuple(s.name for s in specs if allowed(s, method.upper(), path))
            assert let_in, f"nobody may call {label}"
            jobs.append(Job(label, let_in, cases))
            if (method.upper(), path) not in public:  # a public route refuses nobody
                jobs += [
                    Job(label, (s.name,), REFUSED_CASES)
                    for s in specs
                    if s.name not in let_in and s.kind != "nobody"
                ]
    return jobs


def _addresses(shard: int) -> Iterator[str]:
    # 127.0.0.0/8 is all loopback on Linux: each shard its own client addresses.
    for b in range(256):
        for c in range(1, 255):
            yield f"127.{100 + shard}.{b}.{c}"


@dataclass(frozen=True)
class Documents:
    generic: dict[str, Any]
    likely: dict[str, Any]  # see `plausible`
    known: dict[str, list[str]]  # path parameter → values that exist


def run_shard(
    docs: Documents, base_url: str, specs: list[CallerSpec], jobs: list[Job], shard: int
) -> list[Tally]:
    def operations(doc: dict[str, Any]) -> dict[str, Any]:
        schema = schemathesis.openapi.from_dict(doc)
        return {r.ok().label: r.ok() for r in schema.get_all_operations()}

    generic, likely = operations(docs.generic), operations(docs.likely)
    addresses = _addresses(shard)
    # One requests session per caller and shard: a session moved to another org by one case
    # is back home before this shard's next case, and no other shard shares it.
    callers = {s.name: Caller(s, addresses, base_url) for s in specs}
    tallies = []
    for job in jobs:
        strategy = cases_of(generic[job.label], likely[job.label], docs.known)
        done = fuzz(strategy, job.label, [callers[n] for n in job.callers], job.cases)
        tallies += done.values()
    return tallies


def run_all(
    docs: Documents,
    base_url: str,
    shard_specs: list[list[CallerSpec]],
    jobs: list[Job],
) -> list[Tally]:
    """`shard_specs[i]` are the callers of worker i (sessions of their own)."""
    shards = len(shard_specs)
    # The expensive operations spread evenly: longest first, round robin.
    ordered = sorted(jobs, key=lambda j: -j.cases)
    work = [ordered[i::shards] for i in range(shards)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=shards, mp_context=context) as pool:
        futures = [
            pool.submit(run_shard, docs, base_url, shard_specs[i], work[i], i)
            for i in range(shards)
        ]
        return [t for f in futures for t in f.result()]
