"""deploy/k8s/ and deploy/Dockerfile, checked offline: every manifest against the
Kubernetes schemas (kubernetes-validate ships them), every pod against Pod Security
"restricted" (written here from the Pod Security Standards, field by field), the objects
against each other (selectors, ports, the kustomization), and the Dockerfile with
hadolint."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from idp import config

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
# The oldest Kubernetes still supported upstream that kubernetes-validate knows, and the newest.
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
# Files kustomization.yaml leaves out on purpose (its header says why).
NOT_IN_KUSTOMIZATION = {
    "kustomization.yaml",
    "secret.example.yaml",
    "migrate-job.yaml",
    "networkpolicy-outbound.yaml",
}


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((path.name, doc))
    return found


DOCS = documents()
OBJECTS = [(f, d) for f, d in DOCS if d["kind"] != "Kustomization"]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in OBJECTS if d["kind"] == kind]


def one(kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in by_kind(kind) if d["metadata"]["name"] == name]
    return found


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(obj["spec"]["template"]["spec"])


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])
    return dict(obj["spec"]["template"]["metadata"]["labels"])


WORKLOADS = [d for _, d in OBJECTS if d["kind"] in ("Deployment", "Job", "CronJob")]
WORKLOAD_IDS = [f"{d['kind']}/{d['metadata']['name']}" for d in WORKLOADS]


# --- schemas -------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "obj",
    [d for _, d in OBJECTS if d["kind"] != "ServiceMonitor"],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_every_manifest_is_valid_against_the_kubernetes_schema(obj, version):
    kubernetes_validate.validate(obj, version, strict=True)


def test_the_schemas_refuse_what_kubernetes_refuses():
    deployment = copy.deepcopy(one("Deployment", "idp"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = (
        True  # misspelt: strict validation catches unknown fields
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


# The part of the Prometheus Operator's ServiceMonitor CRD (monitoring.coreos.com/v1) these
# manifests use; kubernetes-validate ships only the built-in kinds.
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "matchExpressions": {"type": "array"},
                    },
                },
                "namespaceSelector": {"type": "object"},
                "jobLabel": {"type": "string"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {
                                "type": "string",
                                "pattern": "^[0-9]+(ms|s|m|h)$",
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_the_service_monitor_scrapes_metrics_on_the_admin_port_of_the_servers():
    [monitor] = by_kind("ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR)
    wanted = monitor["spec"]["selector"]["matchLabels"]
    [service] = [s for s in by_kind("Service") if wanted.items() <= s["metadata"]["labels"].items()]
    assert service["metadata"]["name"] == "idp-metrics"
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    [port] = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    server = one("Deployment", "idp")
    assert service["spec"]["selector"].items() <= pod_labels(server).items()
    assert container_port(server, port["targetPort"]) == admin_port()


# --- Pod Security "restricted" ---------------------------------------------------------

SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key, [])


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What Pod Security "restricted" (which includes "baseline") refuses in a pod spec,
    one control at a time, as the Pod Security Standards page lists them."""
    found: list[str] = []
    pod_sc = spec.get("securityContext", {})
    # baseline: host namespaces
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            found.append(f"{key} is set")
    # baseline: HostProcess (Windows)
    if pod_sc.get("windowsOptions", {}).get("hostProcess"):
        found.append("pod windowsOptions.hostProcess")
    # baseline: HostPath volumes; restricted: only the listed volume types
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']} is {sorted(kinds)}")
    # baseline: sysctls
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl['name']}")
    # baseline: SELinux
    for where, sc in [("pod", pod_sc)] + [
        (c["name"], c.get("securityContext", {})) for c in containers(spec)
    ]:
        se = sc.get("seLinuxOptions", {})
        if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
            found.append(f"{where} seLinuxOptions")
        apparmor = sc.get("appArmorProfile", {}).get("type", "RuntimeDefault")
        if apparmor not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where} appArmorProfile {apparmor}")
    # restricted: running as non-root; non-root user; seccomp (pod or every container)
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = pod_sc.get("seccompProfile", {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        found.append(f"pod seccompProfile {pod_seccomp}")
    if pod_sc.get("runAsUser") == 0:
        found.append("pod runAsUser 0")
    for c in containers(spec):
        name = c["name"]
        sc = c.get("securityContext", {})
        # baseline: privileged, host ports, /proc mount, HostProcess
        if sc.get("privileged"):
            found.append(f"{name} privileged")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            found.append(f"{name} hostPort")
        if sc.get("procMount", "Default") != "Default":
            found.append(f"{name} procMount")
        if sc.get("windowsOptions", {}).get("hostProcess"):
            found.append(f"{name} windowsOptions.hostProcess")
        # restricted: privilege escalation
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name} allowPrivilegeEscalation is not false")
        # restricted: capabilities (drop ALL; add nothing but NET_BIND_SERVICE)
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            found.append(f"{name} does not drop ALL capabilities")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name} adds capabilities")
        # restricted: runAsNonRoot true on the pod or here, never false here
        if sc.get("runAsNonRoot") is False or not (pod_non_root or sc.get("runAsNonRoot")):
            found.append(f"{name} may run as root")
        if sc.get("runAsUser") == 0:
            found.append(f"{name} runAsUser 0")
        seccomp = sc.get("seccompProfile", {}).get("type")
        if seccomp is None and pod_seccomp is None:
            found.append(f"{name} has no seccompProfile")
        elif seccomp not in (None, "RuntimeDefault", "Localhost"):
            found.append(f"{name} seccompProfile {seccomp}")
    return found


@pytest.mark.parametrize("obj", WORKLOADS, ids=WORKLOAD_IDS)
def test_every_pod_passes_pod_security_restricted(obj):
    assert restricted_violations(pod_spec(obj)) == []


# Each control, broken one at a time in the server's pod spec, is caught.
BREAKAGES = {
    "seccomp missing": lambda s: (
        s["securityContext"].pop("seccompProfile"),
        s["containers"][0]["securityContext"].pop("seccompProfile"),
    ),
    "seccomp unconfined": lambda s: s["containers"][0]["securityContext"].update(
        seccompProfile={"type": "Unconfined"}
    ),
    "escalation": lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
    "root allowed": lambda s: (
        s["securityContext"].pop("runAsNonRoot"),
        s["containers"][0]["securityContext"].pop("runAsNonRoot"),
    ),
    "root user": lambda s: s["securityContext"].update(runAsUser=0),
    "caps kept": lambda s: s["containers"][0]["securityContext"]["capabilities"].update(drop=[]),
    "caps added": lambda s: s["containers"][0]["securityContext"]["capabilities"].update(
        add=["NET_ADMIN"]
    ),
    "privileged": lambda s: s["containers"][0]["securityContext"].update(privileged=True),
    "host network": lambda s: s.update(hostNetwork=True),
    "host path": lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    "host port": lambda s: s["containers"][0]["ports"][0].update(hostPort=8000),
    "proc mount": lambda s: s["containers"][0]["securityContext"].update(procMount="Unmasked"),
    "sysctl": lambda s: s["securityContext"].update(
        sysctls=[{"name": "kernel.msgmax", "value": "1"}]
    ),
    "selinux": lambda s: s["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
    "apparmor": lambda s: s["securityContext"].update(appArmorProfile={"type": "Unconfined"}),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_the_restricted_check_catches_each_control(breakage):
    spec = copy.deepcopy(pod_spec(one("Deployment", "idp")))
    BREAKAGES[breakage](spec)
    assert restricted_violations(spec) != []


@pytest.mark.parametrize("obj", WORKLOADS, ids=WORKLOAD_IDS)
def test_every_pod_has_a_read_only_root_a_writable_tmp_no_token_and_a_memory_limit(obj):
    spec = pod_spec(obj)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert spec["automountServiceAccountToken"] is False
    for c in spec["containers"]:
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        [tmp] = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert "emptyDir" in volumes[tmp["name"]]
        assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["memory"]
        assert (
            c["image"]
            == one("Deployment", "idp")["spec"]["template"]["spec"]["containers"][0]["image"]
        )


# --- the objects together ----------------------------------------------------------------


def container_port(obj: dict[str, Any], name: str) -> int:
    for c in pod_spec(obj)["containers"]:
        for p in c.get("ports", []):
            if p["name"] == name:
                return int(p["containerPort"])
    raise AssertionError(f"no port {name} in {obj['metadata']['name']}")


def configmap() -> dict[str, str]:
    return dict(one("ConfigMap", "idp-config")["data"])


def admin_port() -> int:
    return int(configmap()["IDP_ADMIN__PORT"])


def test_the_kustomization_lists_every_file_but_the_ones_it_leaves_out_on_purpose():
    [kustomization] = [d for f, d in DOCS if d["kind"] == "Kustomization"]
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {p.name for p in K8S.glob("*.yaml")} - NOT_IN_KUSTOMIZATION


def test_the_configmap_names_only_real_settings_and_keeps_migrations_out_of_the_servers():
    env = {**configmap(), "IDP_KEK": "A" * 43, "IDP_SERVER__SECRET_KEY": "x" * 32}
    cfg = config.load(path="/dev/null", env=env)  # raises on an IDP_ name that is no setting
    assert cfg.server.migrate_on_start is False
    assert cfg.admin.port == admin_port() != cfg.server.port


def test_only_the_job_migrates_and_the_image_does_not_migrate_on_start():
    commands = {
        f"{d['kind']}/{d['metadata']['name']}": c["command"]
        for d in WORKLOADS
        for c in pod_spec(d)["containers"]
    }
    assert commands.pop("Job/idp-migrate") == ["idp", "db", "upgrade"]
    assert all("upgrade" not in command for command in commands.values())
    assert commands["Deployment/idp"] == ["idp", "serve"]
    assert commands["CronJob/idp-janitor"] == ["idp", "janitor"]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "IDP_SERVER__MIGRATE_ON_START=false" in dockerfile
    assert 'CMD ["idp", "serve"]' in dockerfile


def test_the_dashboard_runs_the_admin_app_alone_on_the_admin_port():
    dashboard = one("Deployment", "idp-dashboard")
    [c] = pod_spec(dashboard)["containers"]
    assert c["command"][0] == "granian" and c["command"][-1] == "idp.admin.wsgi:app"
    assert f"--port={admin_port()}" in c["command"]
    assert container_port(dashboard, "admin") == admin_port()
    service = one("Service", "idp-admin")
    assert service["spec"]["selector"].items() <= pod_labels(dashboard).items()


def test_services_select_pods_and_name_their_ports():
    workloads = [d for d in WORKLOADS if d["kind"] == "Deployment"]
    for service in by_kind("Service"):
        [target] = [
            w for w in workloads if service["spec"]["selector"].items() <= pod_labels(w).items()
        ]
        for port in service["spec"]["ports"]:
            container_port(target, port["targetPort"])


def test_the_ingress_exposes_the_public_port_only_with_tls():
    [ingress] = by_kind("Ingress")
    assert ingress["spec"]["tls"]
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [{"name": "idp", "port": {"name": "http"}}]
    [port] = one("Service", "idp")["spec"]["ports"]
    assert container_port(one("Deployment", "idp"), port["targetPort"]) == int(
        configmap()["IDP_SERVER__PORT"]
    )


def test_the_autoscaler_and_the_disruption_budget_cover_the_servers():
    server = one("Deployment", "idp")
    assert "replicas" not in server["spec"]  # the HPA owns it
    [hpa] = by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "idp",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert pod_spec(server)["containers"][0]["resources"]["requests"]["cpu"]
    [pdb] = by_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(server).items()
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]


def test_the_servers_have_startup_readiness_and_liveness_probes():
    [c] = pod_spec(one("Deployment", "idp"))["containers"]
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"


def policies_for(labels: dict[str, str], kind: str) -> list[dict[str, Any]]:
    def selects(policy: dict[str, Any]) -> bool:
        selector = policy["spec"]["podSelector"]
        if not selector.get("matchLabels", {}).items() <= labels.items():
            return False
        return all(
            labels.get(e["key"]) in e["values"]
            for e in selector.get("matchExpressions", [])
            if e["operator"] == "In"
        )

    return [
        p
        for f, p in OBJECTS
        if p["kind"] == "NetworkPolicy"
        and f in {"networkpolicy.yaml"}
        and kind in p["spec"]["policyTypes"]
        and selects(p)
    ]


@pytest.mark.parametrize("obj", WORKLOADS, ids=WORKLOAD_IDS)
def test_every_pod_reaches_only_dns_postgresql_and_redis(obj):
    policies = policies_for(pod_labels(obj), "Egress")
    assert policies, "no egress policy: everything would be allowed"
    ports = {
        (p.get("protocol", "TCP"), p["port"])
        for policy in policies
        for rule in policy["spec"]["egress"]
        for p in rule["ports"]
    }
    assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 6379)}
    for policy in policies:
        assert all(rule.get("to") for rule in policy["spec"]["egress"])


def ingress_rules(labels: dict[str, str]) -> list[dict[str, Any]]:
    policies = policies_for(labels, "Ingress")
    assert policies, "no ingress policy: anyone could connect"
    return [rule for p in policies for rule in p["spec"].get("ingress", [])]


def test_the_public_port_is_open_to_the_ingress_controller_and_the_admin_port_is_internal():
    rules = ingress_rules(pod_labels(one("Deployment", "idp")))
    public = int(configmap()["IDP_SERVER__PORT"])
    by_port: dict[int, list[dict[str, Any]]] = {}
    for rule in rules:
        for p in rule["ports"]:
            by_port.setdefault(p["port"], []).extend(rule["from"])
    assert set(by_port) == {public, admin_port()}
    [controller] = by_port[public]
    assert controller["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    for peer in by_port[admin_port()]:
        # This namespace (a podSelector alone), or Prometheus's pods in `monitoring`.
        if "namespaceSelector" in peer:
            assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
        else:
            assert peer == {"podSelector": {}}


def test_the_dashboard_port_is_open_to_this_namespace_only_and_the_jobs_to_no_one():
    rules = ingress_rules(pod_labels(one("Deployment", "idp-dashboard")))
    assert rules == [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 8081}]}]
    for name in ("Job/idp-migrate", "CronJob/idp-janitor"):
        [obj] = [w for w, i in zip(WORKLOADS, WORKLOAD_IDS, strict=True) if i == name]
        assert ingress_rules(pod_labels(obj)) == []


# --- the Dockerfile -------------------------------------------------------------------------


@pytest.mark.slow
def test_the_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run(
        [str(hadolint), "--no-color", str(ROOT / "deploy" / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_hadolint_fails_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run([str(hadolint), "--no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and "DL3007" in proc.stdout
