"""The Kubernetes manifests (k8s/, kustomize): both overlays render with the machine's kubectl
(kustomize built in), pass kubernetes-validate strict for a current Kubernetes, and keep the
promises the README makes about them, read from the rendered objects: probes, resources and a
hardened securityContext on every container, secrets only as files (never in a ConfigMap, an env
literal or args), the NetworkPolicy's distribution ports equal to the configured range, the
headless Service being what discovery looks up, and every environment variable a known one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from py_nodes.settings import VARIABLES

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
KUBECTL = shutil.which("kubectl")
KUBERNETES_VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
KUBERNETES_VERSION = "1.34.0"  # a current release the validator ships strict schemas for
WORKLOADS = ("Deployment", "StatefulSet", "Job", "DaemonSet", "CronJob")
# Variables the manifests may set besides py_nodes.settings.VARIABLES: the postgres image's own.
POSTGRES_IMAGE_VARIABLES = {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD_FILE", "PGDATA"}
SECRET_FILE_DIR = "/run/secrets/stellarops"

# Where CI runs (CI=true), kubectl is part of the set-up: its absence fails every test here instead
# of skipping them (a silent skip would hide a broken set-up). Elsewhere it is a visible skip.
IN_CI = os.environ.get("CI") == "true"
pytestmark = pytest.mark.skipif(
    KUBECTL is None and not IN_CI, reason="kubectl not installed (scripts/setup.sh --tests installs it from apt where it can)"
)


def render(path: Path) -> str:
    assert KUBECTL is not None, "kubectl is not installed, and CI=true: the set-up must provide it"
    done = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, str]:
    return str(request.param), render(K8S / "overlays" / str(request.param))


def objects(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def containers(docs: list[dict[str, Any]], init: bool = True) -> Iterator[tuple[dict[str, Any], dict[str, Any], bool]]:
    """(workload, container, long-running) for every container of every workload."""
    for doc in docs:
        if doc["kind"] not in WORKLOADS:
            continue
        spec = pod_spec(doc)
        long_running = doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
        for container in spec["containers"]:
            yield doc, container, long_running
        if init:
            for container in spec.get("initContainers", []):
                yield doc, container, False


def config(docs: list[dict[str, Any]]) -> dict[str, str]:
    (cm,) = [doc for doc in of_kind(docs, "ConfigMap") if doc["metadata"]["name"].startswith("stellar-config")]
    data: dict[str, str] = cm["data"]
    return data


def test_both_overlays_validate_strict(tmp_path: Path, overlay: tuple[str, str]) -> None:
    name, text = overlay
    rendered = tmp_path / f"{name}.yaml"
    rendered.write_text(text)
    done = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--kubernetes-version", KUBERNETES_VERSION, "--quiet", str(rendered)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The strict check can fail: a misspelt field in a rendered overlay is reported."""
    text = render(K8S / "overlays" / "dev").replace("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", 1)
    rendered = tmp_path / "broken.yaml"
    rendered.write_text(text)
    done = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--kubernetes-version", KUBERNETES_VERSION, "--quiet", str(rendered)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "readOnlyRootFileSystem" in done.stdout + done.stderr


def test_every_container_is_probed_bounded_and_hardened(overlay: tuple[str, str]) -> None:
    docs = objects(overlay[1])
    seen = 0
    for doc, container, long_running in containers(docs):
        where = f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"
        seen += 1
        if long_running:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, f"{where}: no {probe}"
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{where}: {bound} lack cpu/memory"
        security = container.get("securityContext", {})
        pod_security = pod_spec(doc).get("securityContext", {})
        assert security.get("runAsNonRoot") or pod_security.get("runAsNonRoot"), f"{where}: may run as root"
        assert pod_security.get("runAsUser", 1) != 0, f"{where}: runs as uid 0"
        assert security.get("readOnlyRootFilesystem") is True, f"{where}: writable root filesystem"
        assert security.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation allowed"
        assert security.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities not dropped"
    assert seen >= 7  # stellar, gateway, orbital (each with its migrate init container), the Job


def test_the_app_runs_as_the_image_user_with_writable_state_and_tmp(overlay: tuple[str, str]) -> None:
    docs = objects(overlay[1])
    for doc, container, _ in containers(docs):
        if not container["image"].startswith("ghcr.io/stellarops/stellarops"):
            continue
        assert pod_spec(doc)["securityContext"]["runAsUser"] == 10001
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert {"/var/lib/stellarops", "/tmp"} <= mounts, f"{doc['metadata']['name']}: {mounts}"
    # A volume's root is root's: the state folder is one `up` makes inside it (and chmods 0700).
    assert config(docs)["STELLAROPS_HOME"].startswith("/var/lib/stellarops/")


def test_secrets_are_files_never_config_literals_or_args(overlay: tuple[str, str]) -> None:
    docs = objects(overlay[1])
    secret_names = {v.name for v in VARIABLES if v.secret} | {"POSTGRES_PASSWORD", "STELLAROPS_COOKIE"}
    for cm in of_kind(docs, "ConfigMap"):
        for key, value in cm.get("data", {}).items():
            assert key not in secret_names - {"DATABASE_URL"}, f"ConfigMap {cm['metadata']['name']} holds {key}"
            assert "://" not in value or urlsplit(value).password is None, f"{key}: a password in a URL"
    assert not of_kind(docs, "Secret"), "Secrets are made out of band (README), never rendered from the repo"
    for doc, container, _ in containers(docs):
        where = f"{doc['metadata']['name']}/{container['name']}"
        for env in container.get("env", []):
            if env["name"] in secret_names and env["name"] != "DATABASE_URL":
                assert "value" not in env, f"{where}: {env['name']} as an env literal"
            if "PASSWORD" in env["name"] or "COOKIE" in env["name"]:
                assert env["name"].endswith("_FILE"), f"{where}: {env['name']} is not a file"
        words = " ".join(container.get("command", []) + container.get("args", []))
        assert "cookie" not in words.lower() and "password" not in words.lower(), f"{where}: {words}"
    data = config(docs)
    for variable in ("STELLAROPS_COOKIE_FILE", "DATABASE_PASSWORD_FILE"):
        assert data[variable].startswith(SECRET_FILE_DIR + "/")
    for doc, container, _ in containers(docs):
        if container["image"].startswith("ghcr.io/stellarops/stellarops"):
            mount = [m for m in container["volumeMounts"] if m["mountPath"] == SECRET_FILE_DIR]
            assert mount and mount[0].get("readOnly") is True, f"{doc['metadata']['name']}: secrets not mounted read-only"


def test_database_url_holds_no_password(overlay: tuple[str, str]) -> None:
    data = config(objects(overlay[1]))
    url = data.get("DATABASE_URL")
    if overlay[0] == "dev":
        assert url is not None
        assert urlsplit(url).password is None, "the password belongs in DATABASE_PASSWORD_FILE"
    else:  # prod: from the Secret stellar-database, never in the ConfigMap
        assert url is None
        for doc, container, _ in containers(objects(overlay[1])):
            if container["image"].startswith("ghcr.io/stellarops/stellarops"):
                (env,) = [e for e in container["env"] if e["name"] == "DATABASE_URL"]
                assert env["valueFrom"]["secretKeyRef"]["name"] == "stellar-database", doc["metadata"]["name"]


def test_network_policy_opens_exactly_the_distribution_range(overlay: tuple[str, str]) -> None:
    docs = objects(overlay[1])
    data = config(docs)
    low, high = int(data["STELLAROPS_DIST_PORT_MIN"]), int(data["STELLAROPS_DIST_PORT_MAX"])
    (policy,) = [doc for doc in of_kind(docs, "NetworkPolicy") if doc["metadata"]["name"] == "stellar-distribution"]
    (rule,) = policy["spec"]["ingress"]
    beam = {"stellarops.io/beam": "true"}
    assert policy["spec"]["podSelector"]["matchLabels"] == beam
    assert rule["from"] == [{"podSelector": {"matchLabels": beam}}], "distribution only between BEAM pods"
    ports = {(port["port"], port.get("endPort", port["port"])) for port in rule["ports"]}
    assert ports == {(4369, 4369), (low, high)}
    # Every HTTP path in: from the ingress controller only.
    (http,) = [doc for doc in of_kind(docs, "NetworkPolicy") if doc["metadata"]["name"] == "stellar-http"]
    assert [p["port"] for p in http["spec"]["ingress"][0]["ports"]] == [8080]
    assert "namespaceSelector" in http["spec"]["ingress"][0]["from"][0]
    default_deny = [doc for doc in of_kind(docs, "NetworkPolicy") if doc["spec"]["podSelector"] == {}]
    assert default_deny and "ingress" not in default_deny[0]["spec"]


def test_discovery_looks_up_the_headless_service(overlay: tuple[str, str]) -> None:
    docs = objects(overlay[1])
    data = config(docs)
    (headless,) = [doc for doc in of_kind(docs, "Service") if doc["spec"].get("clusterIP") == "None"
                   and doc["metadata"]["name"].startswith("stellar")]  # fmt: skip
    name, namespace = headless["metadata"]["name"], headless["metadata"]["namespace"]
    assert data["STELLAROPS_CLUSTER_DNS"] == f"{name}.{namespace}.svc.cluster.local"
    assert headless["spec"]["publishNotReadyAddresses"] is True  # peers are found before they are ready
    # Discovery yields <alive>@<ip>: nodes are named after their own pod IP.
    assert data["STELLAROPS_NODE_NAME"] == "stellar@auto" and data["STELLAROPS_DIST_INTERFACE"] == "auto"
    (stellar,) = [doc for doc in of_kind(docs, "StatefulSet") if doc["metadata"]["name"] == "stellar"]
    assert stellar["spec"]["serviceName"] == name
    beam = [doc for doc in docs if doc["kind"] in ("Deployment", "StatefulSet")
            and pod_spec(doc)["containers"][0]["image"].startswith("ghcr.io/stellarops/stellarops")]  # fmt: skip
    assert len(beam) == 3
    for doc in beam:  # every BEAM node is one of the headless Service's records
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in headless["spec"]["selector"].items()), doc["metadata"]["name"]


def test_every_env_var_is_a_known_setting(overlay: tuple[str, str]) -> None:
    docs = objects(overlay[1])
    known = {v.name for v in VARIABLES} | POSTGRES_IMAGE_VARIABLES
    used = set(config(docs))
    for _, container, _ in containers(docs):
        used |= {env["name"] for env in container.get("env", [])}
    assert used - known == set()


def test_roles_split_gateway_and_orbital_nodes_with_hpas(overlay: tuple[str, str]) -> None:
    docs = objects(overlay[1])
    roles = {}
    for doc in of_kind(docs, "Deployment"):
        env = {e["name"]: e.get("value") for e in pod_spec(doc)["containers"][0].get("env", [])}
        roles[doc["metadata"]["name"]] = env.get("STELLAROPS_ROLES")
    assert roles == {"stellar-gateway": "gateway=1", "stellar-orbital": "orbital=1"}
    hpas = {doc["spec"]["scaleTargetRef"]["name"]: doc for doc in of_kind(docs, "HorizontalPodAutoscaler")}
    assert set(hpas) == set(roles)
    for hpa in hpas.values():
        assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}


def test_ingress_passes_server_sent_events(overlay: tuple[str, str]) -> None:
    (ingress,) = of_kind(objects(overlay[1]), "Ingress")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600


def test_overlays_differ_as_documented() -> None:
    dev, prod = objects(render(K8S / "overlays" / "dev")), objects(render(K8S / "overlays" / "prod"))
    stellar = {name: next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "stellar")
               for name, docs in (("dev", dev), ("prod", prod))}  # fmt: skip
    assert stellar["dev"]["spec"]["replicas"] == 1 and stellar["prod"]["spec"]["replicas"] == 3
    assert any(d["kind"] == "StatefulSet" and d["metadata"]["name"] == "postgres" for d in dev)
    assert not any(d["metadata"]["name"] == "postgres" for d in prod)
    anti = pod_spec(stellar["prod"])["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    for _, container, _ in containers(prod):  # pinned: a digest, never a moving tag
        assert "@sha256:" in container["image"], container["image"]
    assert of_kind(prod, "PodDisruptionBudget")


def test_prod_runs_the_distribution_over_tls_from_a_secret() -> None:
    """Every prod container that joins the cluster (it runs `up`) reads its TLS files from the
    Secret stellar-dist-tls, mounted read-only where STELLAROPS_DIST_TLS_DIR points; dev runs plain."""
    for name in OVERLAYS:
        docs = objects(render(K8S / "overlays" / name))
        checked: set[str] = set()
        for doc, container, long_running in containers(docs, init=False):
            if not long_running or not container["image"].startswith(("stellarops", "ghcr.io/stellarops/stellarops")):
                continue  # the migrate Job does not join the cluster; postgres is not ours
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            checked.add(doc["metadata"]["name"])
            if name == "dev":
                assert "STELLAROPS_DIST_TLS_DIR" not in env
                continue
            folder = env["STELLAROPS_DIST_TLS_DIR"]
            (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == folder]
            assert mount.get("readOnly") is True, doc["metadata"]["name"]
            (volume,) = [v for v in pod_spec(doc)["volumes"] if v["name"] == mount["name"]]
            assert volume["secret"]["secretName"] == "stellar-dist-tls"
            assert volume["secret"]["defaultMode"] & 0o007 == 0, "not readable by others"
        assert checked == {"stellar", "stellar-gateway", "stellar-orbital"}, (name, checked)
