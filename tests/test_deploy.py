"""deploy/: the production files, checked by schema as no Docker engine or Kubernetes runs
here. Every compose file validates against the compose-spec, every manifest passes
kubernetes-validate --strict, every image is pinned, and the files agree with each other
and with muster (the cluster the schema is rendered for, the files they mount, the
endpoints they probe)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from sinks.cluster import KEEPER_PATH, REPLICA

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
COMPOSE_FILES = sorted(DEPLOY.rglob("compose*.y*ml"))
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (path,) = [p for p in COMPOSE_FILES if p.parent.name == "compose"]
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def manifests() -> list[dict[str, Any]]:
    return [
        doc
        for path in MANIFESTS
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]


def test_every_compose_file_validates_against_the_compose_spec(tmp_path) -> None:
    assert COMPOSE_FILES
    for path in COMPOSE_FILES:
        result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", path)
        assert result.returncode == 0, result.stdout + result.stderr
    # the check can fail: a misspelt key does not validate
    bad = tmp_path / "compose.yaml"
    bad.write_text(COMPOSE_FILES[0].read_text().replace("healthcheck:", "healthchek:", 1))
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", bad)
    assert result.returncode != 0 and "healthchek" in result.stdout


def test_every_manifest_passes_kubernetes_validate_strict(tmp_path) -> None:
    assert len(MANIFESTS) >= 5
    result = run(BIN / "kubernetes-validate", "--strict", *MANIFESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARN" not in result.stdout + result.stderr, result.stdout + result.stderr
    bad = tmp_path / "worker.yaml"
    text = (DEPLOY / "k8s" / "40-worker.yaml").read_text()
    bad.write_text(text.replace("readinessProbe:", "readinesProbe:", 1))
    result = run(BIN / "kubernetes-validate", "--strict", bad)
    assert result.returncode != 0 and "readinesProbe" in result.stdout + result.stderr


def pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and bool(re.fullmatch(r"v?\d+(\.\d+)+[\w.-]*", tag))


def test_compose_runs_kafka_kraft_a_clickhouse_cluster_keeper_grafana_and_workers(
    compose,
) -> None:
    services = compose["services"]
    kafka = [s for n, s in services.items() if n.startswith("kafka")]
    assert len(kafka) == 3
    for broker in kafka:
        env = broker["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft: no ZooKeeper
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 3
    assert len({s["environment"]["KAFKA_NODE_ID"] for s in kafka}) == 3
    assert len([n for n in services if n.startswith("clickhouse")]) == 2
    assert len([n for n in services if n.startswith("keeper")]) == 3
    assert "grafana" in services and "proxy" in services
    assert services["worker"]["command"] == ["worker"]
    assert services["gateway"]["command"] == ["gateway"]
    for name, service in services.items():
        assert "image" in service, name
        image = service["image"].replace("${MUSTER_VERSION:-0.1.0}", "0.1.0")
        assert pinned(image), (name, image)
        assert "healthcheck" in service or service.get("restart") == "no", name
    for name in ("worker", "gateway"):
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"]), name
    env = services["worker"]["environment"]
    assert env["MUSTER_WORKER_HOST"] == "0.0.0.0" and env["MUSTER_EMBEDDED"] == "false"
    assert int(env["MUSTER_REPLICATION_FACTOR"]) == len(kafka)
    # named volumes for everything kept
    for name in ("kafka-1", "clickhouse-1", "keeper-1", "grafana"):
        assert name in compose["volumes"]


def test_compose_mounts_files_that_exist_and_agree_with_the_rendered_schema(compose) -> None:
    here = DEPLOY / "compose"
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (here / source).exists(), (name, source)
    cluster = ET.parse(here / "clickhouse" / "cluster.xml").getroot()
    (name,) = [c.tag for c in cluster.find("remote_servers") or []]
    assert compose["services"]["migrate"]["command"] == ["migrate", "--cluster", name]
    macros = {m.tag for m in cluster.find("macros") or []}
    for macro in re.findall(r"\{(\w+)\}", KEEPER_PATH + REPLICA):
        assert macro in macros or macro == "uuid", macro
    replicas = cluster.findall(".//replica/host")
    assert sorted(r.text or "" for r in replicas) == ["clickhouse-1", "clickhouse-2"]
    users = ET.parse(here / "clickhouse" / "users.xml").getroot()
    reader = users.find("profiles/muster_reader/readonly")
    assert reader is not None and reader.text in ("1", "2")
    ET.parse(here / "clickhouse" / "keeper.xml")
    example = (here / ".env.example").read_text()
    needed = set(re.findall(r"\$\{(\w+):\?", (here / "compose.yaml").read_text()))
    assert needed and all(re.search(rf"^{v}=", example, re.M) for v in needed), needed


def test_manifests_probe_the_workers_and_gateways_and_pin_their_image() -> None:
    docs = manifests()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for wanted in [
        ("Deployment", "muster-worker"),
        ("Deployment", "muster-gateway"),
        ("Service", "muster-gateway"),
        ("ConfigMap", "muster"),
        ("Secret", "muster-clickhouse"),
    ]:
        assert wanted in kinds, wanted
    jobs = [d for d in docs if d["kind"] == "Job"]
    assert jobs[0]["spec"]["template"]["spec"]["containers"][0]["args"][:2] == [
        "migrate",
        "--cluster",
    ]
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert pinned(container["image"]), container["image"]
            assert container["resources"]["requests"], doc["metadata"]["name"]
            if doc["kind"] == "Deployment":
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["MUSTER_WORKER_HOST"] == "0.0.0.0"


def test_the_image_copies_every_package_muster_installs() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    top = {p.split(".")[0] for p in re.findall(r'^\s+"([\w.]+)",$', pyproject, re.M)}
    assert top == {"schemas", "streams", "sinks", "dashboards"}
    for package in top:
        assert f"COPY {package} {package}" in dockerfile, package
    assert re.search(r"^FROM python:3\.11\.\d+-", dockerfile, re.M)


def test_the_package_the_image_installs_holds_every_file_muster_reads(tmp_path) -> None:
    """The image installs muster as a wheel (`pip install .`), not from a checkout: every
    schema file, migration, JSON schema and wall asset read through importlib.resources
    must be in it."""
    source = tmp_path / "source"  # a copy: setuptools builds in the tree it is given
    for name in ("schemas", "streams", "sinks", "dashboards"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("muster-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = [
        path.relative_to(ROOT).as_posix()
        for pattern in ("sinks/schema/*/*.sql", "sinks/migrations/*.sql", "schemas/json/*.json",
                        "streams/web/wall/*")
        for path in ROOT.glob(pattern)
    ]  # fmt: skip
    assert len(wanted) > 100
    assert sorted(set(wanted) - names) == []
