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
     worker's shutdown budget, the nightly job's commands, the contract's ports and args).

Exits 1 if anything failed, after a summary. Rendered files are left in target/check-deploy/.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml
from helm_python import chart as helm
from helm_python.errors import HelmError

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "candor"
KUSTOMIZE = ROOT / "deploy" / "k8s"
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
        "env": {"CANDOR_LISTEN", "CANDOR_HTTP", "CANDOR_REDIS_URL", "CANDOR_TOKEN", "CANDOR_LEASE_TTL_MS", "CANDOR_LOG"},
        "optional_env": {"CANDOR_REDIS_PASSWORD", "OTEL_EXPORTER_OTLP_ENDPOINT"},
    },
    "worker": {
        "args": ["worker"],
        "ports": {"http": 9090},
        "readiness": ("/readyz", 9090),
        "liveness": ("/healthz", 9090),
        "env": {"CANDOR_COORDINATOR", "CANDOR_REDIS_URL", "CANDOR_TOKEN", "CANDOR_HTTP", "CANDOR_CONCURRENCY",
                "CANDOR_GRACE_SECS", "CANDOR_WORKER_ID", "CANDOR_LOG"},
        # Plus the model API keys (apiKeys).
        "optional_env": {"CANDOR_REDIS_PASSWORD", "CANDOR_JUDGE_CONCURRENCY", "OTEL_EXPORTER_OTLP_ENDPOINT"},
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
SECRET_ENV = re.compile(r"(TOKEN|PASSWORD|PASS|SECRET|API_KEY|REDISCLI_AUTH)$")
API_KEY_ENV = re.compile(r"^[A-Z][A-Z0-9_]*_API_KEY$")
# The chart with every optional env var of the contract switched on, for the compose comparison.
OPTIONAL_ENV_VALUES = {
    "simServer": {"enabled": True},
    "otel": {"endpoint": "http://otel-collector:4317"},
    "worker": {"judgeConcurrency": 8},
    "redis": {"bundled": {"passwordSecret": {"name": "redis-password"}}},
    "apiKeys": [{"name": "ANTHROPIC_API_KEY", "secretName": "model-keys", "secretKey": "anthropic"},
                {"name": "OPENAI_API_KEY", "secretName": "model-keys", "secretKey": "openai"}],
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
                if SECRET_ENV.search(e["name"]) and ("value" in e or "secretKeyRef" not in (e.get("valueFrom") or {})):
                    literal.append(f"{obj_name(d)} {c['name']}: {e['name']} is not from a secretKeyRef")
                if e["name"].endswith("REDIS_URL") and "@" in str(e.get("value", "")):
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
            extra = names - want["env"] - want["optional_env"] - api_keys
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
    if not submit or submit.get("args") != ["submit", "/etc/candor/nightly/sweep.yaml", "--run", "$(CANDOR_RUN)",
                                            "--wait", "--id-file", id_file]:
        problems.append(f"initContainer submit args: {submit and submit.get('args')}")
    if values is not None:
        n = values["nightly"]
        want = ["compare", n["baseline"], f"@{id_file}", "--coordinator", "$(CANDOR_COORDINATOR)",
                "--threshold", str(n["threshold"]), "--fail-on-regression"]
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


# ---------------------------------------------------------------- main


def main() -> int:
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

    ck.step(f"4. kustomize base ({rel(KUSTOMIZE)})")
    kustomized = kustomize(ck)
    if kustomized:
        rendered_files.append(kustomized)

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

    print(f"\n== summary: {ck.passed} checks passed, {len(ck.failures)} failed")
    for f in ck.failures:
        print(f"  FAIL  {f}")
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
