#!/usr/bin/env python3
"""Checks candor's deployment files against each other and against the deployment contract.

Run through scripts/check-deploy, which provides the pinned tools (deploy/ci-requirements.txt):

  1. renders helm/candor with its defaults and with every values file under helm/candor/ci/;
  2. lints each of those renders (helm lint --strict);
  3. validates every rendered object: built-in kinds with kubernetes-validate, the CRD kinds
     (KEDA ScaledObject, ServiceMonitor) with check-jsonschema against deploy/schemas/;
  4. renders deploy/k8s with `kubectl kustomize` and validates it the same way;
  5. runs yamllint (deploy/yamllint.yaml) over deploy/, the chart's values files and the renders;
  6. checks that values.schema.json rejects each file under helm/candor/ci/bad/ with an error that
     names the offending field (its `# expect:` line), and accepts the good ones;
  7. compares deploy/compose.yaml's services with the chart's: env var names, ports, probes;
  8. asserts what a user would notice on the rendered objects (no secrets, non-root, probes, the
     worker's shutdown budget, the nightly job's commands, the contract's ports and args, one
     archive for the coordinator and every worker: the same URL, and for file:// the same
     PersistentVolumeClaim mounted at its path; in compose the same named volume);
  9. with --smoke CANDOR_BIN (or $CANDOR_BIN): runs that binary as the all-on render configures it,
     real processes on 127.0.0.1 only: redis-server, the coordinator and a worker (and sim-server)
     with the rendered env and args (secretKeyRefs get generated test values, fieldRefs a made-up
     pod; only listen addresses, the Redis/coordinator addresses and paths on volumes are
     rewritten: each volume is a temp dir, a PersistentVolumeClaim's one shared by every pod that
     mounts it), each until its rendered readiness probe answers 200; then the nightly CronJob as
     Kubernetes runs it (the ConfigMap and emptyDir as temp dirs, $(VAR) expanded, CANDOR_RUN from
     the Job's name): a baseline, the chart rendered again with it as nightly.baseline, submit +
     compare (exit 0), a retried pod (`already submitted`, same id), and a planted regression
     (compare exits 1); then the night's results as parts on the archive's claim, and `candor
     export` of all of them through the coordinator; then deploy/grafana/candor.json's queries
     against what the running coordinator's and worker's /metrics export (metric names, label
     names and literal label values). Then deploy/compose.yaml's coordinator, workers (and
     sim-server) from their environment (paths on volumes rewritten the same way, named volumes
     shared) until their healthcheck command passes, and its submit and report one-shots.

Exits 1 if anything failed, after a summary. Rendered files are left in target/check-deploy/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

import yaml
from helm_python import chart as helm
from helm_python.errors import HelmError

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "candor"
KUSTOMIZE = ROOT / "deploy" / "k8s"
GRAFANA_DASHBOARD = ROOT / "deploy" / "grafana" / "candor.json"
COMPOSE = ROOT / "deploy" / "compose.yaml"
YAMLLINT_CONFIG = ROOT / "deploy" / "yamllint.yaml"
OUT = ROOT / "target" / "check-deploy"
TOOLS = Path(sys.executable).parent  # the venv's bin: kubernetes-validate, yamllint, check-jsonschema

KUBE_VERSION = "1.32.0"
RELEASE, NAMESPACE = "r", "ns"

# Kinds kubernetes-validate has no schema for, and the schemas (deploy/schemas/) that stand in.
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): ROOT / "deploy" / "schemas" / "scaledobject.schema.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ROOT / "deploy" / "schemas" / "servicemonitor.schema.json",
}

# The deployment contract (/tmp/contract/CONTRACT.md, "Processes" and "Environment").
ROLES = {
    "coordinator": {
        "args": ["coordinator"],
        "ports": {"grpc": 7070, "http": 9090},
        "readiness": ("/readyz", 9090),
        "liveness": ("/healthz", 9090),
        "env": {"CANDOR_LISTEN", "CANDOR_HTTP", "CANDOR_REDIS_URL", "CANDOR_TOKEN", "CANDOR_LEASE_TTL_MS", "CANDOR_LOG",
                "CANDOR_ARCHIVE", "CANDOR_RETENTION_DAYS", "CANDOR_ARCHIVE_GC_GRACE_SECS"},
        # Plus the object-store SDKs' settings (archive.env).
        "optional_env": {"CANDOR_REDIS_PASSWORD", "OTEL_EXPORTER_OTLP_ENDPOINT", "CANDOR_ARCHIVE_OPTIONS_FILE"},
    },
    "worker": {
        "args": ["worker"],
        "ports": {"http": 9090},
        "readiness": ("/readyz", 9090),
        "liveness": ("/healthz", 9090),
        "env": {"CANDOR_COORDINATOR", "CANDOR_REDIS_URL", "CANDOR_TOKEN", "CANDOR_HTTP", "CANDOR_CONCURRENCY",
                "CANDOR_GRACE_SECS", "CANDOR_CACHE_TTL_DAYS", "CANDOR_WORKER_ID", "CANDOR_LOG", "CANDOR_ARCHIVE"},
        # Plus the model API keys (apiKeys) and the object-store SDKs' settings (archive.env).
        "optional_env": {"CANDOR_REDIS_PASSWORD", "CANDOR_JUDGE_CONCURRENCY", "CANDOR_NO_CACHE",
                         "OTEL_EXPORTER_OTLP_ENDPOINT", "CANDOR_ARCHIVE_OPTIONS_FILE"},
    },
    "sim-server": {
        "args": ["sim-server", "--host", "0.0.0.0", "--port", "8089", "--latency-ms", "20"],
        "ports": {"http": 8089},
        "readiness": ("/healthz", 8089),
        "liveness": ("/healthz", 8089),
        "env": set(),
        "optional_env": set(),
    },
}
NIGHTLY_ENV = {"CANDOR_COORDINATOR", "CANDOR_TOKEN", "CANDOR_RUN"}
REDIS_ARGS = ["redis-server", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", "/data"]
SECRET_ENV = re.compile(r"(TOKEN|PASSWORD|PASS|SECRET|_KEY|REDISCLI_AUTH)$")
API_KEY_ENV = re.compile(r"^[A-Z][A-Z0-9_]*_API_KEY$")
# The object-store SDKs' variables (archive.env, or an envFrom Secret), and those of them that hold
# a credential (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_ACCOUNT_KEY, ...): as
# values.schema.json's archive.env tells them apart.
ARCHIVE_ENV = re.compile(r"^(AWS|GOOGLE|AZURE)_[A-Z0-9_]+$")
ARCHIVE_CREDENTIAL_ENV = re.compile(r"^(AWS|GOOGLE|AZURE)_.*(SECRET|PASSWORD|_KEY|_TOKEN$)")
# The archive URL schemes the binary opens besides file:// (and a plain path).
ARCHIVE_STORES = ("s3", "s3a", "gs", "az", "azure", "abfs", "abfss")
# The chart with every optional env var of the contract switched on, for the compose comparison.
OPTIONAL_ENV_VALUES = {
    "simServer": {"enabled": True},
    "otel": {"endpoint": "http://otel-collector:4317"},
    "worker": {"judgeConcurrency": 8},
    "redis": {"bundled": {"passwordSecret": {"name": "redis-password"}}},
    "apiKeys": [{"name": "ANTHROPIC_API_KEY", "secretName": "model-keys", "secretKey": "anthropic"},
                {"name": "OPENAI_API_KEY", "secretName": "model-keys", "secretKey": "openai"}],
    "archive": {"existingSecret": "candor-archive", "env": {"AWS_REGION": "eu-west-1"}},
}


class Checks:
    """Prints each check as it runs and remembers the failures for the summary."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passed = 0
        self.section = ""

    def step(self, title: str) -> None:
        self.section = title
        print(f"\n== {title}", flush=True)

    def ok(self, msg: str) -> None:
        self.passed += 1
        print(f"  ok    {msg}")

    def fail(self, msg: str, detail: str | list[str] = "") -> None:
        self.failures.append(f"{self.section}: {msg}")
        print(f"  FAIL  {msg}")
        lines = detail if isinstance(detail, list) else detail.rstrip().splitlines()
        for line in lines:
            print(f"        {line}")

    def check(self, cond: bool, msg: str, detail: str | list[str] = "") -> bool:
        if cond:
            self.ok(msg)
        else:
            self.fail(msg, detail)
        return cond

    @staticmethod
    def note(msg: str) -> None:
        print(f"  note  {msg}")


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def yaml_file(p: Path) -> dict:
    return yaml.safe_load(p.read_text()) or {}


# ---------------------------------------------------------------- objects and their pods


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def manifest_docs(manifests: dict[str, str]) -> list[dict]:
    """The objects of a chart render ({template path: text}); NOTES.txt is not a manifest."""
    return [d for src, text in sorted(manifests.items()) if not src.endswith("NOTES.txt") for d in load_docs(text)]


def obj_name(d: dict) -> str:
    return f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"


def pod_spec(d: dict) -> dict | None:
    kind = d.get("kind")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return d["spec"]["template"]["spec"]
    if kind == "CronJob":
        return d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def pod_labels(d: dict) -> dict:
    t = d["spec"]["jobTemplate"]["spec"]["template"] if d.get("kind") == "CronJob" else d["spec"]["template"]
    return t.get("metadata", {}).get("labels", {}) or {}


def containers(spec: dict, init: bool = True) -> list[dict]:
    return (spec.get("initContainers") or [] if init else []) + (spec.get("containers") or [])


def role_of(c: dict) -> str | None:
    """coordinator, worker or sim-server by the container's subcommand; redis by its image."""
    args = (c.get("command") or []) + (c.get("args") or [])
    args = [a for a in args if a != "candor" and not a.endswith("/candor")]
    if args and args[0] in ROLES:
        return args[0]
    if "redis" in str(c.get("image", "")).split("/")[-1].split(":")[0]:
        return "redis"
    return None


def workloads(docs: list[dict]) -> list[tuple[dict, dict, dict]]:
    """(object, pod spec, container) of every long-running container (not CronJobs)."""
    out = []
    for d in docs:
        spec = pod_spec(d)
        if spec is not None and d["kind"] != "CronJob":
            out.extend((d, spec, c) for c in containers(spec, init=False))
    return out


def by_role(docs: list[dict]) -> dict[str, list[tuple[dict, dict, dict]]]:
    roles: dict[str, list] = {}
    for d, spec, c in workloads(docs):
        r = role_of(c)
        if r:
            roles.setdefault(r, []).append((d, spec, c))
    return roles


def env_names(c: dict) -> set[str]:
    return {e["name"] for e in c.get("env") or []}


def env_value(c: dict, name: str):
    for e in c.get("env") or []:
        if e["name"] == name:
            return e.get("value")
    return None


def port_number(c: dict, port) -> int | None:
    if isinstance(port, int):
        return port
    for p in c.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    return int(port) if str(port).isdigit() else None


def http_probe(c: dict, which: str) -> tuple[str, int | None] | None:
    g = (c.get(which) or {}).get("httpGet")
    return (g.get("path", "/"), port_number(c, g.get("port"))) if g else None


# ---------------------------------------------------------------- steps


def render_chart(values: dict) -> dict[str, str]:
    with helm.Chart.load(str(CHART)) as ch:
        return ch.render(values=values, name=RELEASE, namespace=NAMESPACE)


def merged_values(values: dict) -> dict:
    with helm.Chart.load(str(CHART)) as ch:
        return ch.merge_values(values)


def write_rendered(name: str, manifests: dict[str, str]) -> Path:
    """The render as `helm template` prints it: one file, a `# Source:` comment per template."""
    path = OUT / "rendered" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for src, text in sorted(manifests.items()):
        if src.endswith("NOTES.txt") or not text.strip():
            continue
        for doc in re.split(r"^---\s*$", text.strip("\n"), flags=re.M):
            if doc.strip():
                parts.append(f"---\n# Source: {src}\n{doc.strip(chr(10))}\n")
    path.write_text("".join(parts))
    return path


def validate_objects(ck: Checks, label: str, docs: list[dict], workdir: Path) -> None:
    """Built-in kinds through kubernetes-validate --strict, CRD kinds through check-jsonschema."""
    if workdir.exists():
        shutil.rmtree(workdir)
    builtin, crds = [], {}
    for i, d in enumerate(docs):
        key = (d.get("apiVersion"), d.get("kind"))
        stem = f"{i:02d}-{d.get('kind')}-{d.get('metadata', {}).get('name')}".lower()
        workdir.mkdir(parents=True, exist_ok=True)
        if key in CRD_SCHEMAS:
            f = workdir / f"{stem}.json"
            f.write_text(json.dumps(d, indent=2))
            crds.setdefault(key, []).append(f)
        else:
            f = workdir / f"{stem}.yaml"
            f.write_text(yaml.safe_dump(d, sort_keys=False))
            builtin.append(f)
    if builtin:
        r = run([str(TOOLS / "kubernetes-validate"), "-k", KUBE_VERSION, "--strict", "--quiet", *map(str, builtin)])
        # Any output is a finding: an error, or a kind with no schema (which validated nothing).
        findings = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
        ck.check(r.returncode == 0 and not findings,
                 f"{label}: {len(builtin)} built-in objects valid for Kubernetes {KUBE_VERSION} (kubernetes-validate --strict)",
                 findings)
    for (api, kind), files in sorted(crds.items()):
        schema = CRD_SCHEMAS[(api, kind)]
        r = run([str(TOOLS / "check-jsonschema"), "--schemafile", str(schema), *map(str, files)])
        ck.check(r.returncode == 0,
                 f"{label}: {len(files)} {kind} ({api}) valid against {rel(schema)} (check-jsonschema; "
                 "kubernetes-validate has no schema for this CRD)",
                 r.stdout + r.stderr)


def lint_chart(ck: Checks, name: str, values: dict) -> None:
    r = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")
    problems = [f"[{m['severity']}] {m['path']}: {m['error'].strip()}" for m in r["messages"] if m["severity"] >= 2]
    problems += [e.strip() for e in r["errors"] if not any(e.strip() in p for p in problems)]
    infos = [f"{m['path']}: {m['error'].strip()}" for m in r["messages"] if m["severity"] < 2]
    ck.check(not problems, f"{name}: helm lint --strict: no warnings or errors", problems)
    for i in infos:
        ck.note(f"{name}: lint info (not a warning): {i}")


def schema_check(values_json: Path) -> subprocess.CompletedProcess[str]:
    return run([str(TOOLS / "check-jsonschema"), "--schemafile", str(CHART / "values.schema.json"), str(values_json)])


def bad_values(ck: Checks) -> None:
    files = sorted((CHART / "ci" / "bad").glob("*.yaml"))
    ck.check(len(files) >= 5, f"{len(files)} bad values files under {rel(CHART / 'ci' / 'bad')}")
    for f in files:
        text = f.read_text()
        m = re.search(r"^# expect: (.+)$", text, re.M)
        if not m:
            ck.fail(f"{f.name}: has no `# expect: <text the error must contain>` line")
            continue
        expect = m.group(1).strip()
        values = yaml.safe_load(text) or {}
        try:
            render_chart(values)
            ck.fail(f"{f.name}: rendered, but should have been rejected ({expect})")
        except HelmError as e:
            msg = str(e)
            ck.check(expect in msg, f"{f.name}: render rejects it, naming {expect!r}", msg)
        r = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")
        errors = [m["error"] for m in r["messages"] if m["severity"] >= 3]
        ck.check(any(expect in e for e in errors), f"{f.name}: lint rejects it, naming {expect!r}", errors or "lint passed")
        # An independent validator (check-jsonschema, Python) must agree with Helm's (Go).
        merged = OUT / "values" / "bad" / f"{f.stem}.json"
        merged.parent.mkdir(parents=True, exist_ok=True)
        merged.write_text(json.dumps(merged_values(values), indent=2))
        ck.check(schema_check(merged).returncode != 0, f"{f.name}: check-jsonschema rejects the merged values too")


def good_values(ck: Checks, combos: list[tuple[str, dict]]) -> None:
    r = run([str(TOOLS / "check-jsonschema"), "--check-metaschema", str(CHART / "values.schema.json"),
             *map(str, sorted((ROOT / "deploy" / "schemas").glob("*.json")))])
    ck.check(r.returncode == 0, "values.schema.json and deploy/schemas/*.json are valid JSON Schemas (check-jsonschema --check-metaschema)",
             r.stdout + r.stderr)
    r = schema_check(CHART / "values.yaml")
    ck.check(r.returncode == 0, "values.yaml satisfies values.schema.json (check-jsonschema)", r.stdout + r.stderr)
    for name, values in combos:
        merged = OUT / "values" / f"{name}.json"
        merged.parent.mkdir(parents=True, exist_ok=True)
        merged.write_text(json.dumps(merged_values(values), indent=2))
        r = schema_check(merged)
        ck.check(r.returncode == 0, f"{name}: merged values satisfy values.schema.json (check-jsonschema)", r.stdout + r.stderr)


def kustomize(ck: Checks) -> Path | None:
    if not shutil.which("kubectl"):
        ck.fail("kubectl is not installed: it renders deploy/k8s (`kubectl kustomize`); install kubectl and rerun")
        return None
    if not (KUSTOMIZE / "kustomization.yaml").is_file():
        ck.fail(f"{rel(KUSTOMIZE)}/kustomization.yaml does not exist: the kustomize base is part of the deployment")
        return None
    r = run(["kubectl", "kustomize", str(KUSTOMIZE)])
    if not ck.check(r.returncode == 0, f"kubectl kustomize {rel(KUSTOMIZE)}", r.stderr):
        return None
    out = OUT / "kustomize.yaml"
    out.write_text(r.stdout)
    docs = load_docs(r.stdout)
    ck.note(f"{len(docs)} objects: " + ", ".join(obj_name(d) for d in docs))
    validate_objects(ck, "kustomize", docs, OUT / "objects" / "kustomize")
    return out


def yamllint(ck: Checks, rendered: list[Path]) -> None:
    files = sorted(p for p in (ROOT / "deploy").rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    files += [CHART / "Chart.yaml", CHART / "values.yaml"]
    files += sorted((CHART / "ci").rglob("*.yaml"))
    files += rendered
    r = run([str(TOOLS / "yamllint"), "-c", str(YAMLLINT_CONFIG), "--strict", "-f", "parsable", *map(str, files)])
    shown = ", ".join(rel(f) for f in files if not f.is_relative_to(OUT))
    ck.note(f"linting {shown}, and {sum(f.is_relative_to(OUT) for f in files)} rendered files under {rel(OUT)}")
    ck.check(r.returncode == 0 and not r.stdout.strip(), f"yamllint --strict ({rel(YAMLLINT_CONFIG)}) over {len(files)} files",
             r.stdout + r.stderr)


# ---------------------------------------------------------------- compose


def compose_ports(svc: dict) -> set[int]:
    ports = set()
    for p in (svc.get("ports") or []) + (svc.get("expose") or []):
        if isinstance(p, dict):
            target = p.get("target")
        else:
            target = str(p).split("/")[0].split(":")[-1]
        if str(target).isdigit():
            ports.add(int(target))
    return ports


def compose_env(svc: dict) -> dict[str, object]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict((e.split("=", 1) + [None])[:2] for e in env)
    return dict(env)


def compose_probe(svc: dict) -> tuple[tuple[str, int | None] | None, str]:
    """(path, port) the service's health check GETs, and where that came from."""
    hc = svc.get("healthcheck")
    if hc is None:
        # The image's HEALTHCHECK: `candor probe`, i.e. /healthz on CANDOR_HTTP's port.
        http = compose_env(svc).get("CANDOR_HTTP") or "0.0.0.0:9090"
        return ("/healthz", int(str(http).rsplit(":", 1)[-1])), "the image's HEALTHCHECK (candor probe)"
    if hc.get("disable"):
        return None, "disabled"
    test = hc.get("test")
    if isinstance(test, str):
        words = shlex.split(test)
    elif test and test[0] == "CMD-SHELL":
        words = shlex.split(" ".join(test[1:]))
    else:
        words = list(test[1:] if test and test[0] == "CMD" else test or [])
    urls = [w for w in words if w.startswith(("http://", "https://"))]
    if not urls and "probe" in words:
        http = compose_env(svc).get("CANDOR_HTTP") or "0.0.0.0:9090"
        return ("/healthz", int(str(http).rsplit(":", 1)[-1])), " ".join(words)
    if not urls:
        return None, " ".join(words)
    u = urlparse(urls[0])
    return (u.path or "/", u.port), " ".join(words)


def compose_mounts(svc: dict) -> list[tuple[str, tuple[str, str, bool]]]:
    """(target, (kind, source, read_only)) of a service's volumes and tmpfs: kind is `volume` (a
    named volume), `bind` or `tmpfs`."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            src, dst, ro = parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")
        else:
            src, dst, ro = v.get("source", ""), v.get("target"), bool(v.get("read_only"))
        out.append((dst, ("bind" if src.startswith((".", "/", "~")) else "volume", src, ro)))
    tmpfs = svc.get("tmpfs") or []
    for t in [tmpfs] if isinstance(tmpfs, str) else tmpfs:
        out.append((t.split(":")[0], ("tmpfs", "", False)))
    return out


def compose_archive(ck: Checks, services: dict, declared: dict) -> None:
    """The coordinator and every worker of compose.yaml use one archive: the same CANDOR_ARCHIVE, for
    file:// the same named volume mounted writable at its path (not only the tmpfs around it)."""
    problems, urls, vols = [], {}, set()
    for name, svc in sorted(services.items()):
        command = svc.get("command") or []
        command = shlex.split(command) if isinstance(command, str) else command
        if not command or command[0] not in ("coordinator", "worker"):
            continue
        url = compose_env(svc).get("CANDOR_ARCHIVE")
        if url is None:
            problems.append(f"{name}: no CANDOR_ARCHIVE (its default, a relative directory, is each container's own)")
            continue
        urls[name] = str(url)
        if "@" in str(url):
            problems.append(f"{name}: CANDOR_ARCHIVE carries credentials")
        path = archive_dir(str(url))
        if path is None:
            continue
        found = mount_of(path, compose_mounts(svc))
        kind, src, ro = found[1] if found else ("the image's file system", "", False)
        if kind != "volume":
            problems.append(f"{name}: the archive {path} is on {kind}{' ' + src if src else ''}, not a named volume")
        elif ro:
            problems.append(f"{name}: the archive's volume {src} is mounted read-only")
        elif src not in declared:
            problems.append(f"{name}: volume {src} is not declared under the top-level volumes")
        else:
            vols.add(src)
    if len(set(urls.values())) > 1:
        problems.append("not one archive: " + "; ".join(f"{n}: {u}" for n, u in sorted(urls.items())))
    if len(vols) > 1:
        problems.append(f"the archive is on several volumes: {sorted(vols)}")
    ck.check(bool(urls) and not problems,
             f"compose: {', '.join(sorted(urls))} use one archive, {next(iter(urls.values()), '(none)')}"
             + (f" on the named volume {next(iter(vols))}" if vols else ""), problems)


def compare_compose(ck: Checks, chart_docs: list[dict], optional_docs: list[dict]) -> None:
    if not COMPOSE.is_file():
        ck.fail(f"{rel(COMPOSE)} does not exist")
        return
    services = (yaml_file(COMPOSE).get("services") or {})
    chart_roles, optional_roles = by_role(chart_docs), by_role(optional_docs)
    seen = set()
    for name, svc in sorted(services.items()):
        command = svc.get("command") or []
        command = shlex.split(command) if isinstance(command, str) else command
        role = command[0] if command and command[0] in ROLES else None
        if not role:
            continue
        seen.add(role)
        if role not in chart_roles:
            ck.fail(f"compose {name} ({role}): the chart renders no {role} container")
            continue
        _, _, c = chart_roles[role][0]
        _, _, c_all = optional_roles[role][0]
        label = f"compose {name} ({role})"

        have, always, possible = set(compose_env(svc)), env_names(c), env_names(c_all)
        # Compose may leave out what the chart sets only when asked (optional vars, API keys), but
        # must set everything the chart always sets, and nothing the chart could never set.
        unknown = sorted(have - possible - {n for n in have if API_KEY_ENV.match(n)})
        missing = sorted(always - have)
        ck.check(not unknown and not missing, f"{label}: env var names match the chart's",
                 ([f"only in compose: {', '.join(unknown)}"] if unknown else [])
                 + ([f"missing from compose (the chart always sets them): {', '.join(missing)}"] if missing else [])
                 + [f"compose: {', '.join(sorted(have))}", f"chart:   {', '.join(sorted(always))} "
                    f"(+ optional {', '.join(sorted(possible - always))})"])

        cports = compose_ports(svc)
        kports = {p["containerPort"] for p in c.get("ports") or []}
        ck.check(cports == kports, f"{label}: container ports match the chart's",
                 [f"compose: {sorted(cports)}", f"chart:   {sorted(kports)}"])

        probe, source = compose_probe(svc)
        kprobes = {p for p in (http_probe(c, "readinessProbe"), http_probe(c, "livenessProbe")) if p}
        ck.check(probe in kprobes, f"{label}: health check {probe} is one of the chart's probes",
                 [f"compose: {probe} from {source}",
                  "chart:   " + ", ".join(f"{w} GET {p[0]} on {p[1]}" for w in ("readinessProbe", "livenessProbe")
                                          if (p := http_probe(c, w)))])
    ck.check(seen == set(ROLES), f"compose runs {', '.join(sorted(seen))}", f"missing: {sorted(set(ROLES) - seen)}")
    compose_archive(ck, services, yaml_file(COMPOSE).get("volumes") or {})


# ---------------------------------------------------------------- properties


def properties(ck: Checks, label: str, docs: list[dict], values: dict | None) -> None:
    """What a user of `label` would notice. `values` are the merged chart values (None: kustomize)."""
    problems: list[str] = []

    secrets = [obj_name(d) for d in docs if d.get("kind") == "Secret"]
    ck.check(not secrets, f"{label}: no Secret objects", secrets)

    literal = []
    for d in docs:
        spec = pod_spec(d)
        for c in containers(spec) if spec else []:
            for e in c.get("env") or []:
                secret = SECRET_ENV.search(e["name"]) or ARCHIVE_CREDENTIAL_ENV.search(e["name"])
                if secret and ("value" in e or "secretKeyRef" not in (e.get("valueFrom") or {})):
                    literal.append(f"{obj_name(d)} {c['name']}: {e['name']} is not from a secretKeyRef")
                if e["name"] in ("CANDOR_REDIS_URL", "CANDOR_ARCHIVE") and "@" in str(e.get("value", "")):
                    literal.append(f"{obj_name(d)} {c['name']}: {e['name']} carries credentials")
            args = c.get("args") or []
            for i, a in enumerate(args[:-1]):
                if a == "--requirepass" and args[i + 1] != "$(REDIS_PASSWORD)":
                    literal.append(f"{obj_name(d)} {c['name']}: --requirepass is not $(REDIS_PASSWORD)")
    ck.check(not literal, f"{label}: every token, password and API key comes from a Secret key; no credentials in URLs or args",
             literal)

    root = []
    for d in docs:
        spec = pod_spec(d)
        if spec is None:
            continue
        psc = spec.get("securityContext") or {}
        for c in containers(spec):
            sc = c.get("securityContext") or {}
            non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            if not non_root or uid == 0:
                root.append(f"{obj_name(d)} {c['name']}: runAsNonRoot={non_root} runAsUser={uid}")
            if sc.get("readOnlyRootFilesystem") is not True:
                root.append(f"{obj_name(d)} {c['name']}: root filesystem is writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                root.append(f"{obj_name(d)} {c['name']}: allowPrivilegeEscalation is not false")
    ck.check(not root, f"{label}: every container runs as non-root, read-only root filesystem, no privilege escalation", root)

    unprobed = [f"{obj_name(d)} {c['name']}: " + ", ".join(p for p in ("readinessProbe", "livenessProbe") if p not in c)
                for d, _, c in workloads(docs) if not ("readinessProbe" in c and "livenessProbe" in c)]
    ck.check(not unprobed, f"{label}: every Deployment/StatefulSet container has readiness and liveness probes", unprobed)

    roles = by_role(docs)
    for role, want in ROLES.items():
        for d, spec, c in roles.get(role, []):
            got_args = (c.get("args") or []) if not c.get("command") else c["command"][1:] + (c.get("args") or [])
            if got_args != want["args"]:
                problems.append(f"{obj_name(d)}: args {got_args}, contract {want['args']}")
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
            if ports != want["ports"]:
                problems.append(f"{obj_name(d)}: ports {ports}, contract {want['ports']}")
            for which, key in (("readinessProbe", "readiness"), ("livenessProbe", "liveness")):
                if http_probe(c, which) != want[key]:
                    problems.append(f"{obj_name(d)}: {which} {http_probe(c, which)}, contract GET {want[key]}")
            names = env_names(c)
            dups = sorted({n for n in names if [e["name"] for e in c.get("env") or []].count(n) > 1})
            if dups:
                problems.append(f"{obj_name(d)}: env sets {dups} more than once")
            api_keys = {k["name"] for k in (values or {}).get("apiKeys", [])} if role == "worker" else set()
            if values is None and role == "worker":
                api_keys = {n for n in names if API_KEY_ENV.match(n)}
            archive_env = set()
            if role in ("coordinator", "worker"):
                archive_env = set(values["archive"]["env"]) if values is not None else {n for n in names if ARCHIVE_ENV.match(n)}
                if not archive_env <= names:
                    problems.append(f"{obj_name(d)}: env lacks archive.env's {sorted(archive_env - names)}")
            extra = names - want["env"] - want["optional_env"] - api_keys - archive_env
            if not want["env"] <= names or extra:
                problems.append(f"{obj_name(d)}: env missing {sorted(want['env'] - names)}, not in the contract {sorted(extra)}")
    for d, spec, c in roles.get("redis", []):
        args = (c.get("command") or []) + (c.get("args") or [])
        # Either the command itself or a shell script running it (to add --requirepass when set).
        script = " ".join(re.sub(r"\\\n", " ", " ".join(args)).split())
        if args[: len(REDIS_ARGS)] != REDIS_ARGS and " ".join(REDIS_ARGS) not in script:
            problems.append(f"{obj_name(d)}: redis args {args}, contract {REDIS_ARGS} (+ --requirepass)")
        if not (c.get("readinessProbe") or {}).get("exec", {}).get("command", [])[:2] == ["redis-cli", "ping"]:
            problems.append(f"{obj_name(d)}: readiness is not `redis-cli ping`")
        if (c.get("livenessProbe") or {}).get("tcpSocket", {}).get("port") not in (6379, "redis"):
            problems.append(f"{obj_name(d)}: liveness is not tcp 6379")
    present = sorted(roles)
    ck.check(not problems, f"{label}: {', '.join(present)} match the contract's args, ports, probes and env names", problems)

    # The worker's shutdown budget: preStop pause + CANDOR_GRACE_SECS + 15 s to hand jobs back.
    grace = []
    for d, spec, c in roles.get("worker", []):
        pre = ((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds")
        secs = env_value(c, "CANDOR_GRACE_SECS")
        tgps = spec.get("terminationGracePeriodSeconds")
        if pre is None or secs is None or tgps != pre + int(secs) + 15:
            grace.append(f"{obj_name(d)}: terminationGracePeriodSeconds={tgps}, preStop sleep={pre}, CANDOR_GRACE_SECS={secs}")
        if values is not None and (pre, int(secs or -1)) != (values["worker"]["preStopSeconds"], values["worker"]["graceSecs"]):
            grace.append(f"{obj_name(d)}: preStop/CANDOR_GRACE_SECS do not come from worker.preStopSeconds/graceSecs")
    if "worker" in roles:
        ck.check(not grace, f"{label}: worker terminationGracePeriodSeconds == preStop sleep + CANDOR_GRACE_SECS + 15", grace)

    services(ck, label, docs)
    archive(ck, label, docs, values)
    autoscaling(ck, label, docs, values)
    for d in docs:
        if d.get("kind") == "CronJob":
            nightly(ck, label, d, docs, values)


def services(ck: Checks, label: str, docs: list[dict]) -> None:
    """Every Service selects pods of the render, on ports those pods name."""
    pods = [(pod_labels(d), containers(pod_spec(d), init=False)) for d in docs
            if pod_spec(d) is not None and d["kind"] != "CronJob"]
    problems = []
    for s in (d for d in docs if d.get("kind") == "Service"):
        sel = s["spec"].get("selector") or {}
        matched = [cs for labels, cs in pods if sel and all(labels.get(k) == v for k, v in sel.items())]
        if not matched:
            problems.append(f"{obj_name(s)}: selects no pod ({sel})")
            continue
        names = {p.get("name") for cs in matched for c in cs for p in c.get("ports") or []}
        numbers = {p["containerPort"] for cs in matched for c in cs for p in c.get("ports") or []}
        for p in s["spec"]["ports"]:
            t = p.get("targetPort", p["port"])
            if t not in names and t not in numbers:
                problems.append(f"{obj_name(s)}: targetPort {t} is no port of its pods")
    ck.check(not problems, f"{label}: every Service selects pods and targets ports they have", problems)

    redis_urls = {env_value(c, "CANDOR_REDIS_URL") for _, _, c in workloads(docs)} - {None}
    svc_names = {d["metadata"]["name"] for d in docs if d.get("kind") == "Service"}
    bundled = any(role_of(c) == "redis" for _, _, c in workloads(docs))
    if bundled:
        hosts = {urlparse(u).hostname for u in redis_urls}
        ck.check(hosts <= svc_names and len(hosts) == 1, f"{label}: CANDOR_REDIS_URL names the bundled Redis Service",
                 f"urls {sorted(redis_urls)}, services {sorted(svc_names)}")
    coordinators = {env_value(c, "CANDOR_COORDINATOR") for d in docs if pod_spec(d) for c in containers(pod_spec(d))} - {None}
    hosts = {(urlparse(u).hostname, urlparse(u).port) for u in coordinators}
    grpc_services = {(d["metadata"]["name"], p["port"]) for d in docs if d.get("kind") == "Service" for p in d["spec"]["ports"]}
    ck.check(hosts <= grpc_services, f"{label}: CANDOR_COORDINATOR points at the coordinator Service's gRPC port",
             f"{sorted(coordinators)} not among {sorted(grpc_services)}")


def archive_dir(url: str) -> str | None:
    """The directory of a file:// archive (or a plain path); None for an object store."""
    if url.startswith("file://"):
        return url[len("file://"):]
    return None if "://" in url else url


def mount_of(path: str, mounts: list[tuple[str, object]]):
    """The (mount path, what) that holds `path`: the longest mount path that is it or a parent."""
    best = None
    for where, what in mounts:
        w = where.rstrip("/") or "/"
        if (path == w or path.startswith(w.rstrip("/") + "/")) and (best is None or len(w) > len(best[0])):
            best = (w, what)
    return best


def archive(ck: Checks, label: str, docs: list[dict], values: dict | None) -> None:
    """The coordinator and every worker reach one archive: the same CANDOR_ARCHIVE, with no
    credentials in it; a file:// one on the same PersistentVolumeClaim, mounted writable at its
    path (an emptyDir or the image's file system would give each pod an archive of its own); an
    options file on a read-only Secret volume. The claim is the one rendered (or the existing one
    the values name), and an object-store archive renders none."""
    roles = by_role(docs)
    pods = [(d, spec, c) for role in ("coordinator", "worker") for d, spec, c in roles.get(role, [])]
    if not pods:
        return
    problems: list[str] = []
    urls: dict[str, str] = {}
    claims: set[str] = set()
    for d, spec, c in pods:
        who = f"{obj_name(d)} {c['name']}"
        url = env_value(c, "CANDOR_ARCHIVE")
        if url is None:
            problems.append(f"{who}: no CANDOR_ARCHIVE (its default, a relative directory, is each pod's own)")
            continue
        urls[who] = url
        scheme = url.split("://", 1)[0] if "://" in url else "file"
        if "@" in url:
            problems.append(f"{who}: CANDOR_ARCHIVE {url!r} carries credentials")
        if scheme not in ("file", *ARCHIVE_STORES):
            problems.append(f"{who}: CANDOR_ARCHIVE {url!r}: the binary opens no {scheme}:// archive")
        vols = {v["name"]: v for v in spec.get("volumes") or []}
        mounts = [(m["mountPath"], m) for m in c.get("volumeMounts") or []]
        path = archive_dir(url)
        if path is not None:
            if not path.startswith("/"):
                problems.append(f"{who}: CANDOR_ARCHIVE {url!r} is relative: a directory of each pod's own")
            else:
                found = mount_of(path, mounts)
                m = found[1] if found else None
                v = vols.get(m["name"], {}) if m else {}
                claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
                if not claim:
                    where = (f"volume {m['name']} ({', '.join(k for k in v if k != 'name')})" if m
                             else "the container's own file system")
                    problems.append(f"{who}: the archive {path} is on {where}, not a PersistentVolumeClaim")
                elif m.get("readOnly"):
                    problems.append(f"{who}: the archive's claim {claim} is mounted read-only")
                else:
                    claims.add(claim)
        opts = env_value(c, "CANDOR_ARCHIVE_OPTIONS_FILE")
        if opts is not None:
            found = mount_of(opts, mounts)
            m = found[1] if found else None
            v = vols.get(m["name"], {}) if m else {}
            if "secret" not in v or not m.get("readOnly"):
                problems.append(f"{who}: CANDOR_ARCHIVE_OPTIONS_FILE {opts} is not on a read-only Secret volume")
            elif values is not None and (v["secret"]["secretName"], opts.rsplit("/", 1)[-1]) != (
                    values["archive"]["existingSecret"], values["archive"]["existingSecretKey"]):
                problems.append(f"{who}: CANDOR_ARCHIVE_OPTIONS_FILE {opts} on Secret {v['secret']['secretName']}, "
                                "not archive.existingSecret's key archive.existingSecretKey")
        elif values is not None and values["archive"]["existingSecret"]:
            problems.append(f"{who}: archive.existingSecret is set, CANDOR_ARCHIVE_OPTIONS_FILE is not")
        if values is not None and url != values["archive"]["url"]:
            problems.append(f"{who}: CANDOR_ARCHIVE {url!r}, archive.url {values['archive']['url']!r}")
        if values is not None and role_of(c) == "coordinator":
            for name, want in (("CANDOR_RETENTION_DAYS", values["coordinator"]["retentionDays"]),
                               ("CANDOR_ARCHIVE_GC_GRACE_SECS", values["archive"]["gcGraceSecs"])):
                if env_value(c, name) != str(want):
                    problems.append(f"{who}: {name}={env_value(c, name)!r}, values {want!r}")
    if len(set(urls.values())) > 1:
        problems.append("not one archive: " + "; ".join(f"{w}: {u}" for w, u in sorted(urls.items())))
    if len(claims) > 1:
        problems.append(f"the archive is on several claims: {sorted(claims)}")
    url = next(iter(urls.values()), "")
    claim = next(iter(claims), None)
    ck.check(not problems, f"{label}: the coordinator and every worker use one archive, {url}"
             + (f" on PersistentVolumeClaim {claim}" if claim else ""), problems)

    pvcs = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "PersistentVolumeClaim"}
    if url and archive_dir(url) is None:
        ck.check(not pvcs, f"{label}: an object-store archive: no PersistentVolumeClaim is rendered", sorted(pvcs))
        return
    if claim is None:
        return
    existing = values["archive"]["persistence"]["existingClaim"] if values is not None else ""
    if existing:
        ck.check(claim == existing and claim not in pvcs,
                 f"{label}: the archive is archive.persistence.existingClaim ({existing}), which the chart does not create",
                 f"claim {claim}; rendered claims {sorted(pvcs)}")
        return
    pvc = pvcs.get(claim)
    if not ck.check(pvc is not None, f"{label}: the archive's claim {claim} is rendered", f"rendered claims {sorted(pvcs)}"):
        return
    modes = pvc["spec"].get("accessModes") or []
    if values is not None:
        p = values["archive"]["persistence"]
        want = {"accessModes": p["accessModes"], "storage": str(p["size"]), "class": p["storageClass"] or None,
                "keep": "keep"}
        got = {"accessModes": modes, "storage": str(pvc["spec"]["resources"]["requests"]["storage"]),
               "class": pvc["spec"].get("storageClassName"),
               "keep": (pvc["metadata"].get("annotations") or {}).get("helm.sh/resource-policy")}
        ck.check(got == want, f"{label}: PersistentVolumeClaim/{claim} is archive.persistence's ({', '.join(modes)}), "
                 "kept by `helm uninstall`", f"rendered {got}, want {want}")
    else:
        ck.check("ReadWriteMany" in modes, f"{label}: PersistentVolumeClaim/{claim} is ReadWriteMany (its pods may run "
                 "on several nodes)", f"accessModes {modes}")
    if "ReadWriteMany" not in modes:
        ck.note(f"{label}: the archive's claim is {', '.join(modes)}: every coordinator and worker pod must run on one node")


def autoscaling(ck: Checks, label: str, docs: list[dict], values: dict | None) -> None:
    hpas = [d for d in docs if d.get("kind") == "HorizontalPodAutoscaler"]
    scaled = [d for d in docs if d.get("kind") == "ScaledObject"]
    ck.check(not (hpas and scaled), f"{label}: not both an HPA and a KEDA ScaledObject (KEDA makes its own HPA)",
             [obj_name(d) for d in hpas + scaled])
    workers = {d["metadata"]["name"]: d for d, _, c in workloads(docs) if role_of(c) == "worker"}
    coordinators = [d for d in docs if d.get("kind") == "Service" and
                    any(p["port"] == 9090 for p in d["spec"]["ports"]) and "coordinator" in d["metadata"]["name"]]
    for h in hpas:
        ref = h["spec"]["scaleTargetRef"]
        ck.check(ref.get("kind") == "Deployment" and ref.get("name") in workers and
                 h["spec"]["metrics"][0]["resource"]["name"] == "cpu",
                 f"{label}: {obj_name(h)} scales the worker Deployment on CPU", str(ref))
    for s in scaled:
        trig = s["spec"]["triggers"][0]
        want = None
        if coordinators:
            want = f"http://{coordinators[0]['metadata']['name']}.{NAMESPACE}.svc:9090/queue"
        md = trig["metadata"]
        ok = (s["spec"]["scaleTargetRef"]["name"] in workers and trig["type"] == "metrics-api"
              and md.get("url") == want and md.get("valueLocation") == "queue_depth"
              and (values is None or md.get("targetValue") == str(values["keda"]["jobsPerWorker"])))
        ck.check(ok, f"{label}: {obj_name(s)} scales the workers on the coordinator's /queue queue_depth", json.dumps(s["spec"]))
    for name, d in workers.items():
        if hpas or scaled:
            ck.check("replicas" not in d["spec"], f"{label}: autoscaled Deployment/{name} sets no replicas of its own")


def nightly(ck: Checks, label: str, cj: dict, docs: list[dict], values: dict | None) -> None:
    spec = pod_spec(cj)
    job = cj["spec"]["jobTemplate"]["spec"]
    inits = {c["name"]: c for c in spec.get("initContainers") or []}
    mains = {c["name"]: c for c in spec.get("containers") or []}
    problems = []
    submit, compare = inits.get("submit"), mains.get("compare")
    id_file = "/run/candor/sweep-id"
    # Without values, the share the chart's default gives.
    max_failed = str(values["nightly"]["maxFailed"]) if values is not None else "0"
    if not submit or submit.get("args") != ["submit", "/etc/candor/nightly/sweep.yaml", "--run", "$(CANDOR_RUN)",
                                            "--wait", "--max-failed", max_failed, "--id-file", id_file]:
        problems.append(f"initContainer submit args: {submit and submit.get('args')}")
    if values is not None:
        n = values["nightly"]
        want = ["compare", n["baseline"], f"@{id_file}", "--coordinator", "$(CANDOR_COORDINATOR)",
                "--threshold", str(n["threshold"]), "--max-failed", max_failed, "--fail-on-regression"]
        if not compare or compare.get("args") != want:
            problems.append(f"container compare args: {compare and compare.get('args')}, want {want}")
        for key in ("schedule", "timeZone"):
            if cj["spec"].get(key) != n[key]:
                problems.append(f"{key}: {cj['spec'].get(key)}, values {n[key]}")
        for key in ("backoffLimit", "activeDeadlineSeconds"):
            if job.get(key) != n[key]:
                problems.append(f"{key}: {job.get(key)}, values {n[key]}")
    for c in (submit, compare):
        if not c:
            continue
        if not NIGHTLY_ENV <= env_names(c):
            problems.append(f"{c['name']}: env {sorted(env_names(c))} lacks {sorted(NIGHTLY_ENV - env_names(c))}")
        run_env = next((e for e in c.get("env") or [] if e["name"] == "CANDOR_RUN"), {})
        if run_env.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.labels['batch.kubernetes.io/job-name']":
            problems.append(f"{c['name']}: CANDOR_RUN is not the Job's name label")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
        if "/run/candor" not in mounts or not mounts.get("/etc/candor/nightly", {}).get("readOnly"):
            problems.append(f"{c['name']}: mounts {sorted(mounts)} (needs /run/candor and /etc/candor/nightly read-only)")
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    run_vol = next((m["name"] for m in (submit or {}).get("volumeMounts", []) if m["mountPath"] == "/run/candor"), None)
    if "emptyDir" not in volumes.get(run_vol, {}):
        problems.append("/run/candor is not an emptyDir")
    cm_vol = next((m["name"] for m in (submit or {}).get("volumeMounts", []) if m["mountPath"] == "/etc/candor/nightly"), None)
    cm_name = volumes.get(cm_vol, {}).get("configMap", {}).get("name")
    cm = next((d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == cm_name), None)
    if not cm or "sweep.yaml" not in (cm.get("data") or {}):
        problems.append(f"the ConfigMap {cm_name} holding sweep.yaml is not rendered")
    elif values is not None and cm["data"] != {"sweep.yaml": values["nightly"]["spec"], **values["nightly"]["files"]}:
        problems.append(f"ConfigMap {cm_name} holds {sorted(cm['data'])}: not exactly nightly.spec as sweep.yaml and nightly.files")
    if spec.get("restartPolicy") != "Never" or cj["spec"].get("concurrencyPolicy") != "Forbid":
        problems.append(f"restartPolicy {spec.get('restartPolicy')}, concurrencyPolicy {cj['spec'].get('concurrencyPolicy')}")
    ck.check(not problems, f"{label}: {obj_name(cj)} runs submit --wait then compare, as the contract says", problems)


# ---------------------------------------------------------------- smoke: the real binary


SMOKE_VALUES = CHART / "ci" / "all-on.yaml"
JOB_TIMEOUT_S = 180  # one `submit --wait` or `compare`: a guard against a hang, not a speed test
NIGHTLY_ID_FILE = "/run/candor/sweep-id"
# What the smoke stage rewrites: listen addresses to free loopback ports, and these addresses of
# other services to the test processes. Every other env var, and every name, is used as rendered.
LISTEN_ENV = ("CANDOR_LISTEN", "CANDOR_HTTP")
# The planted regression: the sim model complies far more in the training condition.
REGRESSION = (re.compile(r"(comply:\s*\{\s*training:\s*)0?\.3\d*"), r"\g<1>0.95")


class SmokeError(Exception):
    """A smoke step that cannot go on; its message is the FAIL line."""

    def __init__(self, msg: str, detail: list[str] | None = None) -> None:
        super().__init__(msg)
        self.detail = detail or []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def k8s_expand(text: str, env: dict[str, str]) -> str:
    """$(VAR) as Kubernetes expands it in command, args and env values: a defined variable's value,
    an undefined reference left as it is, and `$$` for a literal `$`."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    out.append(env[name] if name in env else text[i:end + 1])
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


def compose_interpolate(value, shell: dict[str, str]):
    """Compose's interpolation of ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR and $$ from `shell`."""
    if isinstance(value, dict):
        return {k: compose_interpolate(v, shell) for k, v in value.items()}
    if isinstance(value, list):
        return [compose_interpolate(v, shell) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("braced") or m.group("bare")
        op, default = m.group("op"), m.group("default") or ""
        have = shell.get(name)
        if op == ":-":
            return have if have else default
        if op == "-":
            return have if have is not None else default
        if op in (":?", "?") and (have is None or (op == ":?" and not have)):
            raise SmokeError(f"compose: ${{{name}}} is required: {default}")
        return have or ""

    return re.sub(r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<default>[^}]*))?\}"
                  r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)", sub, value)


def image_env() -> dict[str, str]:
    """The ENV of deploy/Dockerfile's last stage: what every container starts with."""
    env: dict[str, str] = {}
    dockerfile = ROOT / "deploy" / "Dockerfile"
    if not dockerfile.is_file():
        return env
    stages = re.split(r"^FROM\s", dockerfile.read_text(), flags=re.M)
    for m in re.finditer(r"^ENV\s+(.+)$", stages[-1], re.M):
        for word in shlex.split(m.group(1)):
            if "=" in word:
                k, v = word.split("=", 1)
                env[k] = v
    return env


def dockerfile_members(ck: Checks) -> None:
    """The image builds the whole workspace: deploy/Dockerfile copies every member crate of Cargo.toml."""
    import tomllib
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY\s+(\S+?)/?\s+\S+\s*$", text, re.M))
    missing = [m for m in members if m != "." and m not in copied]
    ck.check(not missing, f"deploy/Dockerfile copies every workspace member ({len(members) - 1} crates besides the root)",
             f"not copied: {', '.join(missing)}")


def with_address(url: str, addr: str) -> str:
    """`url` with its host:port replaced by `addr` (scheme, credentials, path unchanged)."""
    u = urlparse(url)
    cred = u.netloc.rpartition("@")[0]
    return u._replace(netloc=(cred + "@" if cred else "") + addr).geturl()


def http_get(url: str, timeout: float = 2.0, limit: int = 4096) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read(limit).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(4096).decode(errors="replace")
    except (OSError, ValueError) as e:
        return None, str(e)


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen, log: Path) -> None:
        self.name, self.popen, self.log = name, popen, log

    def tail(self, n: int = 25) -> list[str]:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [f"[{self.name}] {line}" for line in lines[-n:]]


class Smoke:
    """Starts and stops real processes on loopback, each with its own log under target/check-deploy/smoke/."""

    def __init__(self, ck: Checks, binary: Path, tmp: Path, logs: Path, first_log: int) -> None:
        self.ck, self.bin, self.tmp, self.logs = ck, binary, tmp, logs
        self.procs: list[Proc] = []
        self.secrets: dict[tuple[str, str], str] = {}
        # PersistentVolumeClaim → its stand-in, one for every pod that mounts it; a Secret volume's
        # stand-in dir → the Secret's name.
        self.claims: dict[str, Path] = {}
        self.secret_dirs: dict[Path, str] = {}
        self.image_env = image_env()
        self.counter = first_log

    # -- processes

    def base_env(self) -> dict[str, str]:
        return {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}

    def argv(self, words: list[str]) -> list[str]:
        """`candor ...` (the image's ENTRYPOINT, or a command naming the binary) → this binary."""
        if words and (words[0] == "candor" or words[0].endswith("/candor")):
            words = words[1:]
        return [str(self.bin), *words]

    def logfile(self, name: str) -> Path:
        self.counter += 1
        return self.logs / f"{self.counter:02d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.log"

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> Proc:
        log = self.logfile(name)
        with open(log, "wb") as f:
            f.write(f"$ {shlex.join(argv)}\n".encode())
            f.flush()
            p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        proc = Proc(name, p, log)
        self.procs.append(proc)
        return proc

    def run(self, name: str, argv: list[str], env: dict[str, str], cwd: Path,
            timeout: float = JOB_TIMEOUT_S) -> tuple[int | None, str, str]:
        """A one-shot command: (exit code or None on timeout, stdout, stderr); killed on timeout."""
        log = self.logfile(name)
        try:
            r = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=timeout, check=False)
            code, out, err = r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:  # subprocess.run has killed it (by its PID)
            code = None
            out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        log.write_text(f"$ {shlex.join(argv)}\n-- exit {code}\n-- stdout\n{out}-- stderr\n{err}")
        return code, out, err

    def stop_all(self) -> None:
        """SIGTERM to each process we started (by PID), SIGKILL to any still there after 5 s."""
        live = [p for p in self.procs if p.popen.poll() is None]
        for p in live:
            p.popen.terminate()
        deadline = time.monotonic() + 5
        for p in live:
            try:
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                Checks.note(f"{p.name} (pid {p.popen.pid}) still running 5 s after SIGTERM: killed")
                p.popen.kill()
                p.popen.wait()
        self.procs = []

    def tails(self, *procs: Proc | None) -> list[str]:
        return [line for p in procs if p for line in p.tail()]

    def wait_for(self, what: str, proc: Proc, probe, timeout: float = 60.0) -> float:
        """Polls probe() (-> (ok, detail)) until ok, `proc` exits, or the deadline; seconds taken."""
        t0 = time.monotonic()
        deadline, detail = t0 + timeout, ""
        while time.monotonic() < deadline:
            ok, detail = probe()
            if ok:
                return time.monotonic() - t0
            if proc.popen.poll() is not None:
                raise SmokeError(f"{what}: {proc.name} exited with {proc.popen.returncode} before it was ready",
                                 proc.tail())
            time.sleep(0.05)
        raise SmokeError(f"{what}: not ready after {timeout:.0f} s (last: {detail})", proc.tail())

    def wait_http(self, what: str, proc: Proc, url: str, timeout: float = 60.0) -> float:
        def probe():
            code, body = http_get(url)
            return code == 200, f"{code} {body.strip()[:200]}"
        return self.wait_for(what, proc, probe, timeout)

    # -- Redis

    def redis(self, name: str, password: str | None) -> tuple[Proc, int]:
        port = free_port()
        d = self.tmp / name
        d.mkdir()
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(d)]
        if password:
            argv += ["--requirepass", password]
        return self.start(name, argv, self.base_env(), d), port

    def redis_ping(self, what: str, proc: Proc, port: int, probe_cmd: list[str], env: dict[str, str]) -> float:
        """The rendered exec probe (`redis-cli ping`) with the test port added, in the container's env."""
        argv = [probe_cmd[0], "-h", "127.0.0.1", "-p", str(port), *probe_cmd[1:]]

        def probe():
            r = subprocess.run(argv, env={**self.base_env(), **env}, capture_output=True, text=True, timeout=5, check=False)
            return r.returncode == 0 and r.stdout.strip() == "PONG", (r.stdout + r.stderr).strip()
        return self.wait_for(what, proc, probe, 10)

    # -- Kubernetes containers

    def secret(self, name: str, key: str) -> str:
        return self.secrets.setdefault((name, key), secrets.token_hex(16))

    def k8s_env(self, c: dict, pod: dict, docs: list[dict]) -> dict[str, str]:
        """The container's env as the kubelet builds it: values ($(VAR) expanded from earlier entries),
        secretKeyRef → a generated test value, fieldRef → the made-up pod, configMapKeyRef → the render."""
        env: dict[str, str] = {}
        for src in c.get("envFrom") or []:
            if "secretRef" in src:
                # Its keys are whatever the Secret holds: none of them is known here.
                Checks.note(f"container {c['name']}: envFrom Secret {src['secretRef']['name']}: no stand-in variables")
            else:
                raise SmokeError(f"container {c['name']}: envFrom {sorted(src)} is not handled by the smoke stage")
        for e in c.get("env") or []:
            name, vf = e["name"], e.get("valueFrom")
            if vf is None:
                env[name] = k8s_expand(str(e.get("value", "")), env)
            elif "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                env[name] = self.secret(ref["name"], ref["key"])
            elif "fieldRef" in vf:
                env[name] = pod_field(pod, vf["fieldRef"]["fieldPath"])
            elif "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                cm = next((d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == ref["name"]), None)
                if cm is None or ref["key"] not in (cm.get("data") or {}):
                    raise SmokeError(f"container {c['name']}: {name} from ConfigMap {ref['name']} key {ref['key']}, not rendered")
                env[name] = cm["data"][ref["key"]]
            else:
                raise SmokeError(f"container {c['name']}: {name} valueFrom {sorted(vf)} is not handled by the smoke stage")
        return env

    def rewrite(self, env: dict[str, str], targets: dict[str, str]) -> tuple[dict[str, str], dict[int, int], list[str]]:
        """Only addresses: LISTEN_ENV to free loopback ports (old port → new port in the map), and each
        env var named in `targets` (a URL) to the test address given there."""
        out, ports, notes = dict(env), {}, []
        for k in LISTEN_ENV:
            if k in out:
                port = out[k].rpartition(":")[2]
                if not port.isdigit():
                    raise SmokeError(f"{k}={out[k]!r} is not HOST:PORT")
                new = free_port()
                ports[int(port)] = new
                out[k] = f"127.0.0.1:{new}"
                notes.append(f"{k} {env[k]} -> {out[k]}")
        for k, addr in targets.items():
            if k in out:
                out[k] = with_address(out[k], addr)
                notes.append(f"{k} {env[k]} -> {out[k]}")
        # Traces go to a loopback port where nothing listens: the smoke run
        # reaches no address outside 127.0.0.0/8, not even a DNS name.
        k = "OTEL_EXPORTER_OTLP_ENDPOINT"
        if k in out:
            out[k] = f"http://127.0.0.1:{free_port()}"
            notes.append(f"{k} {env[k]} -> {out[k]}")
        return out, ports, notes

    def rewrite_arg_addresses(self, args: list[str], ports: dict[int, int]) -> list[str]:
        """--host/--port (the sim-server's listen address) to loopback and a free port."""
        out = list(args)
        for i, a in enumerate(out[:-1]):
            if a == "--host":
                out[i + 1] = "127.0.0.1"
            elif a == "--port" and out[i + 1].isdigit():
                new = free_port()
                ports[int(out[i + 1])] = new
                out[i + 1] = str(new)
        return out

    def k8s_probe_url(self, c: dict, which: str, ports: dict[int, int]) -> str:
        g = (c.get(which) or {}).get("httpGet")
        if not g:
            raise SmokeError(f"container {c['name']}: {which} is not an httpGet probe")
        port = port_number(c, g.get("port"))
        if port not in ports:
            raise SmokeError(f"container {c['name']}: {which} GETs port {g.get('port')} ({port}), which none of its "
                             f"listen addresses uses ({sorted(ports)})")
        return f"{g.get('scheme', 'HTTP').lower()}://127.0.0.1:{ports[port]}{g.get('path', '/')}"

    def pod_dirs(self, pod_name: str, spec: dict, c: dict, cm_dirs: dict[str, Path],
                 shared: dict[str, Path]) -> dict[str, Path]:
        """mountPath → a temp dir standing in for the volume: a ConfigMap's data, an emptyDir
        (`shared` holds the pod's emptyDirs, so its containers see the same one), a
        PersistentVolumeClaim (one dir per claim, for every pod that mounts it), or a Secret (its
        files are written by secret_files, for the paths the env names)."""
        vols = {v["name"]: v for v in spec.get("volumes") or []}
        mounts = {}
        for m in c.get("volumeMounts") or []:
            v = vols.get(m["name"])
            if v is None:
                raise SmokeError(f"container {c['name']}: mounts volume {m['name']}, which the pod does not have")
            if "configMap" in v:
                if v["configMap"]["name"] not in cm_dirs:
                    raise SmokeError(f"container {c['name']}: ConfigMap {v['configMap']['name']} is not rendered")
                mounts[m["mountPath"]] = cm_dirs[v["configMap"]["name"]]
            elif "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
                if claim not in self.claims:
                    self.claims[claim] = self.tmp / f"pvc-{claim}"
                    self.claims[claim].mkdir()
                mounts[m["mountPath"]] = self.claims[claim]
            elif "secret" in v:
                d = self.tmp / f"{pod_name}-{m['name']}"
                d.mkdir(exist_ok=True)
                self.secret_dirs[d] = v["secret"]["secretName"]
                mounts[m["mountPath"]] = d
            elif "emptyDir" in v:
                if m["name"] not in shared:
                    shared[m["name"]] = self.tmp / f"{pod_name}-{m['name']}"
                    shared[m["name"]].mkdir()
                mounts[m["mountPath"]] = shared[m["name"]]
            else:
                raise SmokeError(f"container {c['name']}: volume {m['name']} ({sorted(v)}) is not handled by the smoke stage")
        return mounts

    def secret_files(self, env: dict[str, str]) -> list[str]:
        """A stand-in for each file the env names on a Secret volume: an options file of comments
        only (KEY=VALUE settings none; what an object store would need has no stand-in here)."""
        made = []
        for k, v in env.items():
            p = Path(v)
            d = next((d for d in self.secret_dirs if p.is_absolute() and p.parent == d), None)
            if d is not None and not p.exists():
                p.write_text(f"# check-deploy: stands in for Secret {self.secret_dirs[d]} key {p.name}\n")
                made.append(f"{k}: a stand-in {p.name} of Secret {self.secret_dirs[d]}")
        return made


def rewrite_env_paths(env: dict[str, str], mounts: dict[str, Path]) -> tuple[dict[str, str], list[str]]:
    """Env values that are paths on a volume (also as a file:// URL: CANDOR_ARCHIVE) → the same path
    on its stand-in directory."""
    out, notes = dict(env), []
    for k, v in env.items():
        prefix = "file://" if v.startswith("file:///") else ""
        if prefix or v.startswith("/"):
            new = prefix + rewrite_paths([v[len(prefix):]], mounts)[0]
            if new != v:
                out[k] = new
                notes.append(f"{k} {v} -> {new}")
    return out, notes


def rewrite_paths(args: list[str], mounts: dict[str, Path]) -> list[str]:
    """Each mount path in the args (also as `@/path` or `--x=/path`) → its stand-in directory."""
    if not mounts:
        return list(args)
    paths = {m.rstrip("/"): str(d) for m, d in mounts.items()}
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(m) for m in sorted(paths, key=len, reverse=True))
                         + r")(?=/|$)")
    return [pattern.sub(lambda m: paths[m.group(1)], a) for a in args]


def pod_field(pod: dict, path: str) -> str:
    """A fieldRef of the made-up pod (the downward API)."""
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        value = pod["metadata"][m.group(1)].get(m.group(2))
        if value is None:
            raise SmokeError(f"fieldRef {path}: the pod has no such {m.group(1)[:-1]}")
        return value
    fields = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": pod["metadata"]["namespace"],
              "metadata.uid": pod["metadata"]["uid"], "spec.nodeName": "smoke-node",
              "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
              "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}
    if path not in fields:
        raise SmokeError(f"fieldRef {path} is not handled by the smoke stage")
    return fields[path]


def made_up_pod(d: dict, name: str, extra_labels: dict[str, str] | None = None) -> dict:
    spec = pod_spec(d)
    return {"metadata": {"name": name, "namespace": NAMESPACE, "uid": str(uuid.uuid4()),
                         "labels": {**pod_labels(d), **(extra_labels or {})}, "annotations": {}},
            "spec": {"serviceAccountName": spec.get("serviceAccountName", "default")}}


def job_pod(cj: dict, job_name: str) -> dict:
    uid = str(uuid.uuid4())
    pod = made_up_pod(cj, f"{job_name}-{secrets.token_hex(3)[:5]}", {
        "batch.kubernetes.io/job-name": job_name, "job-name": job_name,
        "batch.kubernetes.io/controller-uid": uid, "controller-uid": uid})
    return pod


def container_args(c: dict) -> list[str]:
    return (c.get("command") or ["candor"]) + (c.get("args") or [])


def smoke_k8s(ck: Checks, sm: Smoke) -> None:
    """The chart's all-on render, run as a cluster would run it, on loopback."""
    base_values = yaml_file(SMOKE_VALUES)
    label = rel(SMOKE_VALUES)

    def render(values: dict) -> list[dict]:
        try:
            return manifest_docs(render_chart(values))
        except HelmError as e:
            raise SmokeError(f"{label}: does not render", str(e).splitlines()) from None

    docs = render(base_values)
    roles = by_role(docs)
    for role in ("coordinator", "worker", "redis"):
        if role not in roles:
            raise SmokeError(f"{label}: the render has no {role} container")
    ck.ok(f"{label}: rendered (nightly enabled, bundled Redis); secretKeyRefs get generated test values")

    # 1. Redis, with --requirepass only if the rendered Redis sets one (expanded from its own env).
    rd, _, rc = roles["redis"][0]
    redis_env = sm.k8s_env(rc, made_up_pod(rd, f"{rd['metadata']['name']}-0"), docs)
    rargs = [k8s_expand(a, redis_env) for a in container_args(rc)]
    password = rargs[rargs.index("--requirepass") + 1] if "--requirepass" in rargs else None
    redis, rport = sm.redis("k8s-redis", password)
    probe_cmd = ((rc.get("readinessProbe") or {}).get("exec") or {}).get("command") or ["redis-cli", "ping"]
    took = sm.redis_ping("k8s redis", redis, rport, probe_cmd, redis_env)
    ck.ok(f"redis-server on 127.0.0.1:{rport} ({'--requirepass from the rendered secret' if password else 'no password'}); "
          f"its rendered readiness `{' '.join(probe_cmd)}` (+ -p) answers PONG after {took:.1f} s")

    # 2. The coordinator.
    procs: dict[str, tuple[Proc, dict[str, str], dict[int, int]]] = {}

    def start(role: str, targets: dict[str, str], probes=("readinessProbe", "livenessProbe")) -> None:
        d, spec, c = roles[role][0]
        pod_name = f"{d['metadata']['name']}-{secrets.token_hex(5)}-{secrets.token_hex(3)[:5]}"
        cenv = sm.k8s_env(c, made_up_pod(d, pod_name), docs)
        env, ports, notes = sm.rewrite({**sm.image_env, **cenv}, targets)
        mounts = sm.pod_dirs(pod_name, spec, c, {}, {})
        env, path_notes = rewrite_env_paths(env, mounts)
        notes += path_notes + sm.secret_files(env)
        # The kubelet expands $(VAR) from the container's env only (not the image's).
        args = sm.rewrite_arg_addresses([k8s_expand(a, {k: env[k] for k in cenv}) for a in container_args(c)], ports)
        args = rewrite_paths(args, mounts)
        work = mounts.get("/var/lib/candor") or sm.tmp / pod_name
        work.mkdir(exist_ok=True)
        p = sm.start(f"k8s-{role}", sm.argv(args), {**sm.base_env(), **env}, work)
        procs[role] = (p, env, ports)
        ck.note(f"{obj_name(d)} {c['name']}: `candor {' '.join(args[1:])}`, env {', '.join(sorted(cenv)) or '(none)'}"
                f"{' + the image ENV ' + ', '.join(sorted(sm.image_env)) if sm.image_env else ''}; "
                f"rewritten: {'; '.join(notes) or 'nothing'}")
        if role in ("coordinator", "worker"):
            smoke_dump_config(ck, sm, f"{obj_name(d)} {c['name']}", args, {**sm.base_env(), **env}, work, cenv)
        for which in probes:
            url = sm.k8s_probe_url(c, which, ports)
            took = sm.wait_http(f"{obj_name(d)} {which}", p, url)
            ck.ok(f"{obj_name(d)}: its rendered {which} GET {urlparse(url).path} answers 200 on {urlparse(url).netloc} "
                  f"after {took:.1f} s")

    start("coordinator", {"CANDOR_REDIS_URL": f"127.0.0.1:{rport}"})
    grpc_port = port_number(roles["coordinator"][0][2], "grpc")
    coord_grpc = procs["coordinator"][2].get(grpc_port)
    if coord_grpc is None:
        raise SmokeError(f"the coordinator's grpc port {grpc_port} is not among its listen addresses (CANDOR_LISTEN)")
    coord = f"127.0.0.1:{coord_grpc}"
    q_url = f"http://127.0.0.1:{procs['coordinator'][2][port_number(roles['coordinator'][0][2], 'http')]}/queue"
    code, body = http_get(q_url)
    ck.check(code == 200 and "queue_depth" in body, f"coordinator: GET /queue (what KEDA reads) answers {code} {body.strip()[:80]}")

    # 3. A worker, and the sim-server when the render has one.
    start("worker", {"CANDOR_REDIS_URL": f"127.0.0.1:{rport}", "CANDOR_COORDINATOR": coord})
    if "sim-server" in roles:
        start("sim-server", {})

    # 4. The nightly CronJob.
    night = smoke_nightly(ck, sm, base_values, render, coord)

    # 5. The night's results: parts the worker wrote where the coordinator reads them.
    smoke_archive(ck, sm, procs, coord, night)

    # 6. The dashboard asks only for series the running binaries export.
    http_port = port_number(roles["coordinator"][0][2], "http")
    smoke_dashboard(ck, {
        "coordinator": f"http://127.0.0.1:{procs['coordinator'][2][http_port]}/metrics",
        "worker": f"http://127.0.0.1:{procs['worker'][2][port_number(roles['worker'][0][2], 'http')]}/metrics",
    })


# Shown by --dump-config only as set or unset.
DUMPED_AS_SET = {"CANDOR_TOKEN", "CANDOR_REDIS_PASSWORD"}


def smoke_dump_config(ck: Checks, sm: Smoke, who: str, args: list[str], env: dict[str, str], cwd: Path,
                      rendered: dict[str, str]) -> None:
    """The binary reads every CANDOR_* variable the render sets, with the value it was given: a
    misspelt name in a template would otherwise be ignored without a word."""
    code, out, err = sm.run(f"{who.split()[0].split('/')[-1]}-dump-config", sm.argv([*args, "--dump-config"]), env, cwd)
    if code != 0:
        raise SmokeError(f"{who}: `candor {' '.join(args[1:])} --dump-config` exited {code}", err.splitlines()[-5:])
    shown = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    wrong = []
    for k in sorted(n for n in rendered if n.startswith("CANDOR_")):
        want = "(set)" if k in DUMPED_AS_SET else env[k]
        if shown.get(k) != want:
            wrong.append(f"{k}: given {want!r}, the binary took {shown.get(k, 'no such setting')!r}")
    secrets_shown = [v for k, v in env.items() if k in DUMPED_AS_SET and v and v in out]
    ck.check(not wrong and not secrets_shown,
             f"{who}: --dump-config shows every CANDOR_* variable of the render taken as given, no secret value",
             wrong + ["a secret value is printed"] * bool(secrets_shown))


# A sample line: name, labels, value and maybe a timestamp.
SAMPLE_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+(?:\s+\S+)?")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
# A PromQL selector: a candor_* name, and its matchers when it has any.
SELECTOR = re.compile(r"\b(candor_[a-z0-9_]+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
LABEL_VALUES = re.compile(r"label_values\(\s*(candor_[a-z0-9_]+)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)")


def exposition(text: str) -> tuple[set[str], dict[str, list[dict[str, str]]]]:
    """The sample names a /metrics text declares (Prometheus text or OpenMetrics, whose counter
    families are declared without the `_total` of their samples), and the label sets of the samples
    it holds, by sample name."""
    declared: set[str] = set()
    samples: dict[str, list[dict[str, str]]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            # A family's own name is a series only for gauges (and untyped, info, ...).
            name, kind = parts[2], parts[3]
            if kind == "counter":
                declared.add(name if name.endswith("_total") else name + "_total")
            elif kind == "histogram":
                declared.update(name + sfx for sfx in ("_bucket", "_sum", "_count"))
            elif kind == "summary":
                declared.update(name + sfx for sfx in ("", "_sum", "_count"))
            else:
                declared.add(name)
        elif line and not line.startswith("#") and (m := SAMPLE_LINE.fullmatch(line.strip())):
            samples.setdefault(m[1], []).append(dict(LABEL_PAIR.findall(m[2] or "")))
    return declared | set(samples), samples


def dashboard_selectors(exprs: list[str]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Each candor_* selector of the queries: its name and its (label, op, value) matchers, with
    `label_values(NAME, LABEL)` read as a selector that needs LABEL."""
    found = []
    for e in exprs:
        for m in SELECTOR.finditer(e):
            found.append((m[1], MATCHER.findall(m[2] or "")))
        for m in LABEL_VALUES.finditer(e):
            found.append((m[1], [(m[2], "=~", ".+")]))
    return found


def smoke_dashboard(ck: Checks, metrics_urls: dict[str, str]) -> None:
    """Every candor_* name in deploy/grafana/candor.json's queries is a sample name that the
    coordinator's or the worker's /metrics exports, and every label matcher of the queries names a
    label those samples carry (with that value, where the matcher is `label="literal"`)."""
    exported: set[str] = set()
    samples: dict[str, list[dict[str, str]]] = {}
    for who, url in metrics_urls.items():
        code, text = http_get(url, limit=4 << 20)
        if code != 200:
            raise SmokeError(f"{who}: GET {url} answered {code}", text.splitlines()[:5])
        names, held = exposition(text)
        exported |= names
        for n, sets in held.items():
            samples.setdefault(n, []).extend(sets)
    dashboard = json.loads(GRAFANA_DASHBOARD.read_text())
    exprs: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("expr", "query") and isinstance(v, str):
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(dashboard)
    selectors = dashboard_selectors(exprs)
    used = sorted({name for name, _ in selectors})
    missing = [m for m in used if m not in exported]
    ck.check(bool(used) and not missing,
             f"{rel(GRAFANA_DASHBOARD)}: the {len(used)} metric names its {len(exprs)} queries use are all exported "
             f"by the running coordinator and worker", [f"not exported: {m}" for m in missing])
    wrong: set[str] = set()
    matchers = 0
    for name, ms in selectors:
        for label, op, value in ms:
            matchers += 1
            sets = samples.get(name, [])
            if op == "=" and "$" not in value:
                if not any(ls.get(label) == value for ls in sets):
                    wrong.add(f'{name}{{{label}="{value}"}}: no such series exported')
            elif not any(label in ls for ls in sets):
                wrong.add(f"{name}: no exported series has the label {label}")
    ck.check(matchers > 0 and not wrong,
             f"{rel(GRAFANA_DASHBOARD)}: the {matchers} label matchers of its queries name labels (and label values) "
             f"that the running coordinator's and worker's series carry", sorted(wrong))


def smoke_nightly(ck: Checks, sm: Smoke, base_values: dict, render, coord: str) -> None:
    docs = render(base_values)
    cj = next((d for d in docs if d.get("kind") == "CronJob"), None)
    if cj is None:
        raise SmokeError(f"{rel(SMOKE_VALUES)}: renders no CronJob")
    cj_name = cj["metadata"]["name"]
    # Kubernetes names a CronJob's Jobs <cronjob>-<scheduled time in minutes since the epoch>.
    baseline_job, night_job, regress_job = (f"{cj_name}-{29_000_000 + i}" for i in (0, 1, 2))

    def job(docs: list[dict], job_name: str, which: str, label: str, pod: dict | None = None,
            shared: dict[str, Path] | None = None):
        """Runs one container of the Job's pod (`which`: init or main) with its env and args as
        Kubernetes builds them. Returns (exit code, stdout, stderr, pod, shared emptyDirs)."""
        cj = next(d for d in docs if d.get("kind") == "CronJob")
        spec = pod_spec(cj)
        c = (spec.get("initContainers") if which == "init" else spec.get("containers"))[0]
        pod = pod or job_pod(cj, job_name)
        shared = {} if shared is None else shared
        cm_dirs = {}
        for v in spec.get("volumes") or []:
            if "configMap" in v:
                name = v["configMap"]["name"]
                cm = next((d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == name), None)
                if cm is None:
                    raise SmokeError(f"{obj_name(cj)}: mounts ConfigMap {name}, which is not rendered")
                cm_dirs[name] = sm.tmp / f"{pod['metadata']['name']}-cm-{name}"
                cm_dirs[name].mkdir(exist_ok=True)
                for k, text in (cm.get("data") or {}).items():
                    (cm_dirs[name] / k).write_text(text)
        mounts = sm.pod_dirs(pod["metadata"]["name"], spec, c, cm_dirs, shared)
        cenv = sm.k8s_env(c, pod, docs)
        env, _, _ = sm.rewrite({**sm.image_env, **cenv}, {"CANDOR_COORDINATOR": coord})
        args = [k8s_expand(a, {k: env[k] for k in cenv}) for a in container_args(c)]
        args = rewrite_paths(args, mounts)
        work = mounts.get("/var/lib/candor") or sm.tmp
        code, out, err = sm.run(f"{label}-{c['name']}", sm.argv(args), {**sm.base_env(), **env}, work)
        run_dir = mounts.get("/run/candor")
        return code, out, err, pod, shared, c, args, run_dir

    def detail(code, out, err, args) -> list[str]:
        return ([f"$ candor {shlex.join(args[1:])}", f"exit {code}"] + [f"stdout: {l}" for l in out.splitlines()[-15:]]
                + [f"stderr: {l}" for l in err.splitlines()[-15:]])

    def submit(docs: list[dict], job_name: str, label: str, pod=None, shared=None):
        t0 = time.monotonic()
        code, out, err, pod, shared, c, args, run_dir = job(docs, job_name, "init", label, pod, shared)
        id_path = (run_dir / Path(NIGHTLY_ID_FILE).name) if run_dir else None
        sweep = id_path.read_text().strip() if id_path and id_path.is_file() else ""
        ok = code == 0 and re.fullmatch(r"[0-9a-f]{16}", sweep) is not None
        ck.check(ok, f"{label}: initContainer `{c['name']}` (CANDOR_RUN={job_name}) exits 0 and writes sweep id "
                     f"{sweep or '(none)'} to the id file ({time.monotonic() - t0:.1f} s)",
                 detail(code, out, err, args) + sm.tails(*sm.procs))
        if not ok:
            raise SmokeError(f"{label}: cannot go on without a sweep id")
        return sweep, pod, shared, err

    # The baseline: the init container once, under another run label.
    baseline, _, _, _ = submit(docs, baseline_job, "nightly baseline")
    values = json.loads(json.dumps(base_values))
    values["nightly"]["baseline"] = baseline
    docs = render(values)
    compare_args = pod_spec(next(d for d in docs if d.get("kind") == "CronJob"))["containers"][0].get("args") or []
    ck.check(baseline in compare_args, f"nightly: rendered again with nightly.baseline={baseline}: the compare "
                                       "container's args name it", str(compare_args))

    # A night with the unchanged spec.
    night, pod, shared, _ = submit(docs, night_job, "nightly")
    ck.check(night != baseline, f"nightly: a new run label is a new sweep ({night} != baseline {baseline})")
    t0 = time.monotonic()
    code, out, err, _, _, c, args, _ = job(docs, night_job, "main", "nightly", pod, shared)
    ck.check(code == 0, f"nightly: container `{c['name']}` exits 0 for the unchanged spec ({time.monotonic() - t0:.1f} s)",
             detail(code, out, err, args))

    # The Job's pod retried: a new pod (fresh emptyDir), the same Job name.
    again, _, _, err = submit(docs, night_job, "nightly retry")
    ck.check("already submitted" in err and again == night,
             f"nightly retry: the same CANDOR_RUN says `already submitted` and names the same sweep ({again})",
             err.splitlines()[-10:])

    # A planted regression.
    spec = base_values["nightly"]["spec"]
    changed = REGRESSION[0].sub(REGRESSION[1], spec, count=1)
    if changed == spec:
        raise SmokeError(f"nightly: {rel(SMOKE_VALUES)}'s nightly.spec has no `comply: {{training: 0.3...` to plant the "
                         "regression in")
    values["nightly"]["spec"] = changed
    docs = render(values)
    regressed, pod, shared, _ = submit(docs, regress_job, "regression")
    code, out, err, _, _, c, args, _ = job(docs, regress_job, "main", "regression", pod, shared)
    ck.check(code == 1 and "training" in out,
             f"regression (comply training 0.3 -> 0.95): container `{c['name']}` exits 1, flagging the training "
             f"condition (exit {code})", detail(code, out, err, args))
    return night


def smoke_archive(ck: Checks, sm: Smoke, procs: dict, coord: str, sweep: str) -> None:
    """The worker wrote the sweep's results as parts on the archive's claim (its stand-in dir), the
    coordinator was given the same archive, and `candor export` gets every one of them through the
    coordinator."""
    archives = {role: procs[role][1].get("CANDOR_ARCHIVE") for role in ("coordinator", "worker")}
    ck.check(len(set(archives.values())) == 1 and None not in archives.values(),
             f"coordinator and worker opened one archive: {archives['coordinator']}", str(archives))
    root = archive_dir(archives["worker"] or "")
    if root is not None:
        claim = next((n for n, d in sm.claims.items() if Path(root) == d or d in Path(root).parents), None)
        parts = sorted(Path(root).rglob("*.parquet"))
        mine = [p for p in parts if sweep in p.parts]
        ck.check(claim is not None and bool(mine),
                 f"the archive is on the stand-in of claim {claim}: {len(mine)} Parquet parts of sweep {sweep} "
                 f"({len(parts)} in all)", [str(p) for p in parts[:10]] or ["no parts"])
    # Redis's counters say how many results there are; the export reads them from the archive.
    env = {**sm.base_env(), "CANDOR_COORDINATOR": f"http://{coord}", "CANDOR_TOKEN": procs["coordinator"][1]["CANDOR_TOKEN"]}
    code, stdout, err = sm.run("k8s-status", sm.argv(["status", sweep, "--json"]), env, sm.tmp)
    try:
        status = json.loads(stdout) if code == 0 else {}
    except ValueError:
        status = {}
    out = sm.tmp / "k8s-results.jsonl"
    t0 = time.monotonic()
    code, _, err = sm.run("k8s-export", sm.argv(["export", sweep, "--format", "jsonl", "--out", str(out)]), env, sm.tmp)
    rows = sum(1 for line in out.open() if line.strip()) if out.is_file() else 0
    ck.check(code == 0 and rows > 0 and rows == status.get("jobs_done") == status.get("jobs_total"),
             f"`candor export {sweep} --format jsonl` through the coordinator exits 0 with {rows} results from the "
             f"archive, as many as the sweep's jobs ({status.get('jobs_total')}) ({time.monotonic() - t0:.1f} s)",
             [f"exit {code}", f"status: {json.dumps(status)[:300]}"] + [f"stderr: {l}" for l in err.splitlines()[-10:]]
             + sm.tails(*[p for p, _, _ in procs.values()]))


def smoke_compose(ck: Checks, sm: Smoke) -> None:
    """deploy/compose.yaml's candor services started from their environment, on loopback."""
    # Interpolated as `docker compose` does from a shell that sets none of the file's variables.
    shell: dict[str, str] = {}
    services = compose_interpolate(yaml_file(COMPOSE).get("services") or {}, shell)
    ck.ok(f"{rel(COMPOSE)}: interpolated from a shell setting none of its variables (so every ${{VAR:-default}} "
          "takes its default)")

    def env_of(svc: dict) -> dict[str, str]:
        # A key without a value passes the shell's value through, and is unset when the shell has none.
        return {k: str(v) for k, v in compose_env(svc).items() if v is not None}

    def command(svc: dict) -> list[str]:
        cmd = svc.get("command") or []
        cmd = shlex.split(cmd) if isinstance(cmd, str) else [str(w) for w in cmd]
        entry = svc.get("entrypoint") or ["candor"]
        entry = shlex.split(entry) if isinstance(entry, str) else entry
        return [*entry, *cmd]

    # depends_on order.
    order, seen = [], set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        deps = services[name].get("depends_on") or {}
        for dep in (deps if isinstance(deps, list) else sorted(deps)):
            visit(dep)
        order.append(name)
    for name in sorted(services):
        visit(name)

    addrs: dict[str, dict[int, int]] = {}  # service → {container port: loopback port}
    redis_svc = next((n for n, s in services.items() if "redis" in str(s.get("image", "")).split(":")[0]), None)
    if redis_svc is None:
        raise SmokeError(f"{rel(COMPOSE)}: has no redis service")
    rcmd = command(services[redis_svc])[1:] if services[redis_svc].get("entrypoint") else [
        str(w) for w in services[redis_svc].get("command") or []]
    password = rcmd[rcmd.index("--requirepass") + 1] if "--requirepass" in rcmd else None
    redis, rport = sm.redis("compose-redis", password)
    addrs[redis_svc] = {6379: rport}
    hc = ((services[redis_svc].get("healthcheck") or {}).get("test") or ["CMD", "redis-cli", "ping"])
    took = sm.redis_ping(f"compose {redis_svc}", redis, rport, [w for w in hc if w not in ("CMD", "CMD-SHELL")],
                         env_of(services[redis_svc]))
    ck.ok(f"compose {redis_svc}: redis-server on 127.0.0.1:{rport}; its healthcheck `redis-cli ping` (+ -p) answers "
          f"PONG after {took:.1f} s")

    def target(url: str) -> str:
        u = urlparse(url)
        if u.hostname not in addrs or (u.port or 0) not in addrs[u.hostname]:
            raise SmokeError(f"compose: {url} names no started service's port ({sorted(addrs)})")
        return f"127.0.0.1:{addrs[u.hostname][u.port]}"

    volumes_tmp: dict[str, Path] = {}

    def mounts_of(name: str, svc: dict) -> dict[str, Path]:
        """Named volumes → a temp dir each (shared between services); bind mounts → the host path
        (read-only ones only; a writable bind mount of the repository gets a temp dir instead)."""
        out = {}
        for v in svc.get("volumes") or []:
            parts = v.split(":") if isinstance(v, str) else [v.get("source"), v.get("target"), "ro" if v.get("read_only") else "rw"]
            src, dst, mode = parts[0], parts[1], (parts[2] if len(parts) > 2 else "rw")
            if src.startswith((".", "/")):
                out[dst] = (COMPOSE.parent / src).resolve() if mode == "ro" else sm.tmp / f"compose-{name}-out"
                out[dst].mkdir(exist_ok=True)
            else:
                if src not in volumes_tmp:
                    volumes_tmp[src] = sm.tmp / f"compose-volume-{src}"
                    volumes_tmp[src].mkdir()
                out[dst] = volumes_tmp[src]
        for t in svc.get("tmpfs") or []:
            out[t] = sm.tmp / f"compose-{name}-tmpfs-{t.strip('/').replace('/', '-')}"
            out[t].mkdir(exist_ok=True)
        return out

    # The long-running services in depends_on order, then the one-shots as deploy/compose.yaml's
    # header runs them: submit, then report.
    steps = [n for n in order if len(command(services[n])) > 1 and command(services[n])[1] in ROLES]
    steps += sorted((n for n in order if len(command(services[n])) > 1 and command(services[n])[1] in ("submit", "report")),
                    key=lambda n: ("submit", "report").index(command(services[n])[1]))
    one_shot: dict[str, str] = {}
    for name in steps:
        svc = services[name]
        words = command(svc)
        if name == redis_svc:
            continue
        env = {**sm.image_env, **env_of(svc)}
        targets = {k: target(env[k]) for k in ("CANDOR_REDIS_URL", "CANDOR_COORDINATOR") if k in env}
        env, ports, notes = sm.rewrite(env, targets)
        mounts = mounts_of(name, svc)
        env, path_notes = rewrite_env_paths(env, mounts)
        notes += path_notes
        args = rewrite_paths(sm.rewrite_arg_addresses(words, ports), mounts)
        work = mounts.get(svc.get("working_dir") or "/var/lib/candor") or sm.tmp
        full_env = {**sm.base_env(), **env}
        if words[1] in ("submit", "report"):
            if any(n not in addrs for n in (svc.get("depends_on") or {})):
                ck.note(f"compose {name}: skipped, a service it depends on did not start")
                continue
            t0 = time.monotonic()
            code, out, err = sm.run(f"compose-{name}", sm.argv(args), full_env, work)
            files = sorted(p.name for p in mounts.get("/out", Path("/nonexistent")).glob("*")) if words[1] == "report" else []
            extra = f"; wrote {', '.join(files)}" if files else ""
            ok = code == 0 and (words[1] != "report" or {"report.json", "report.md", "report.html"} <= set(files))
            ck.check(ok, f"compose {name}: `candor {shlex.join(args[1:])}` exits 0 ({time.monotonic() - t0:.1f} s){extra}",
                     [f"exit {code}"] + [f"stdout: {l}" for l in out.splitlines()[-10:]]
                     + [f"stderr: {l}" for l in err.splitlines()[-15:]] + (sm.tails(*sm.procs) if not ok else []))
            one_shot[name] = "ok" if ok else "failed"
            continue
        p = sm.start(f"compose-{name}", sm.argv(args), full_env, work)
        addrs[name] = ports
        ck.note(f"compose {name}: `candor {' '.join(args[1:])}`; rewritten: {'; '.join(notes) or 'nothing'}")
        test = (svc.get("healthcheck") or {}).get("test")
        if not test or (svc.get("healthcheck") or {}).get("disable"):
            test = ["CMD", "candor", "probe"]  # the image's HEALTHCHECK
        words_hc = shlex.split(" ".join(test[1:])) if test[0] == "CMD-SHELL" else list(test[1:] if test[0] == "CMD" else test)
        hc_args = []
        for w in words_hc:
            u = urlparse(w) if w.startswith(("http://", "https://")) else None
            if u and u.port in ports:
                w = with_address(w, f"{u.hostname}:{ports[u.port]}")
            elif u:
                raise SmokeError(f"compose {name}: healthcheck {w} is on port {u.port}, not one the service listens on "
                                 f"({sorted(ports)})")
            hc_args.append(w)
        hc_argv = sm.argv(hc_args)

        def probe():
            r = subprocess.run(hc_argv, env=full_env, capture_output=True, text=True, timeout=10, check=False)
            return r.returncode == 0, f"exit {r.returncode}: {(r.stdout + r.stderr).strip()[-200:]}"
        took = sm.wait_for(f"compose {name} healthcheck", p, probe)
        ck.ok(f"compose {name}: its healthcheck `candor {' '.join(hc_args[1:])}` exits 0 after {took:.1f} s")
    if not one_shot:
        ck.note("compose: no submit/report services to run")


def smoke(ck: Checks, binary: Path) -> None:
    t0 = time.monotonic()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        ck.fail(f"{binary}: no such executable (build it with `cargo build`)")
        return
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        ck.fail("redis-server/redis-cli are not on PATH (Debian: apt-get install redis-server)")
        return
    r = run([str(binary), "--version"])
    ck.note(f"binary {rel(binary.resolve())}: {r.stdout.strip()}, built "
            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(binary.stat().st_mtime))}")
    logs = OUT / "smoke"
    if logs.exists():
        shutil.rmtree(logs)
    logs.mkdir(parents=True)
    # A SIGTERM to this script unwinds through the `finally` below, which stops what it started.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for i, (part, fn) in enumerate((("chart", smoke_k8s), ("compose", smoke_compose))):
        with tempfile.TemporaryDirectory(prefix=f"candor-smoke-{part}-") as tmp:
            sm = Smoke(ck, binary.resolve(), Path(tmp), logs, 50 * i)
            try:
                fn(ck, sm)
            except SmokeError as e:
                ck.fail(str(e), e.detail + ([""] + sm.tails(*sm.procs) if not e.detail else []))
            except Exception as e:  # a bug in this script must not leave processes behind
                ck.fail(f"{part}: {type(e).__name__}: {e}", sm.tails(*sm.procs))
            finally:
                sm.stop_all()
    signal.signal(signal.SIGTERM, previous)
    elapsed = time.monotonic() - t0
    # Reported, not asserted: a loaded machine is slower, and that is no failure.
    ck.note(f"smoke stage took {elapsed:.1f} s; logs in {rel(OUT / 'smoke')}")


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", metavar="CANDOR_BIN", type=Path, default=os.environ.get("CANDOR_BIN") or None,
                    help="also run this candor binary with the configuration the chart and the compose file give it "
                         "(default: $CANDOR_BIN; without either, no smoke stage)")
    opts = ap.parse_args()
    ck = Checks()
    OUT.mkdir(parents=True, exist_ok=True)
    combos = [("default", {})] + [(f.stem, yaml_file(f)) for f in sorted((CHART / "ci").glob("*.yaml"))]
    print(f"candor deployment check: chart {rel(CHART)}, kustomize {rel(KUSTOMIZE)}, compose {rel(COMPOSE)}")
    print(f"Kubernetes {KUBE_VERSION}; release {RELEASE!r} in namespace {NAMESPACE!r}; renders in {rel(OUT)}")
    print("chart value combinations: default (values.yaml), "
          + ", ".join(f"{n} ({rel(CHART / 'ci' / (n + '.yaml'))})" for n, _ in combos[1:]))

    ck.step("1. render the chart (helm-python-sdk, Helm 4)")
    renders: dict[str, list[dict]] = {}
    rendered_files = []
    for name, values in combos:
        try:
            manifests = render_chart(values)
        except HelmError as e:
            ck.fail(f"{name}: does not render", str(e))
            continue
        docs = manifest_docs(manifests)
        renders[name] = docs
        rendered_files.append(write_rendered(name, manifests))
        kinds: dict[str, int] = {}
        for d in docs:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
        ck.ok(f"{name}: {len(docs)} objects ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})")

    ck.step("2. helm lint --strict, each combination")
    for name, values in combos:
        lint_chart(ck, name, values)

    ck.step(f"3. validate the rendered objects (kubernetes-validate -k {KUBE_VERSION} --strict; CRDs: check-jsonschema)")
    for name, docs in renders.items():
        validate_objects(ck, name, docs, OUT / "objects" / name)

    ck.step(f"4. kustomize base ({rel(KUSTOMIZE)}) and the image's deploy/Dockerfile")
    kustomized = kustomize(ck)
    if kustomized:
        rendered_files.append(kustomized)

    dockerfile_members(ck)

    ck.step("5. yamllint")
    yamllint(ck, rendered_files)

    ck.step("6. values.schema.json: bad values are rejected naming the field, good ones accepted")
    bad_values(ck)
    good_values(ck, combos)

    ck.step(f"7. {rel(COMPOSE)} against the chart (default + sim-server; optional env from every option on)")
    try:
        compare_compose(ck, manifest_docs(render_chart({"simServer": {"enabled": True}})),
                        manifest_docs(render_chart(OPTIONAL_ENV_VALUES)))
    except HelmError as e:
        ck.fail("the chart does not render for the comparison", str(e))

    ck.step("8. what a user would notice, on every render")
    for name, values in combos:
        if name in renders:
            properties(ck, name, renders[name], merged_values(values))
    if kustomized:
        properties(ck, "kustomize", load_docs(kustomized.read_text()), None)

    if opts.smoke:
        ck.step(f"9. smoke: {opts.smoke} run with the configuration {rel(SMOKE_VALUES)} renders, and {rel(COMPOSE)}'s "
                "(real processes on loopback)")
        smoke(ck, opts.smoke if opts.smoke.is_absolute() else Path.cwd() / opts.smoke)
    else:
        ck.note("no smoke stage: give a built binary with --smoke target/debug/candor (or CANDOR_BIN)")

    print(f"\n== summary: {ck.passed} checks passed, {len(ck.failures)} failed")
    for f in ck.failures:
        print(f"  FAIL  {f}")
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
