"""The ``Containerfile`` checked without a container engine (part of ``make deploy-check``).

No engine runs on these machines, so the image is checked two ways:

1. **Rules** (:func:`rule_problems`, fast): the runtime stage runs as the uid processing Jobs run as
   (``RUN_AS``), not root; its command is the function server; what the build stage copies is in the build
   context (``.dockerignore``) and exists.
2. **The build, emulated** (:func:`emulate`): the build stage's ``COPY`` and ``RUN`` lines are run as they are
   written, in a temporary directory standing for the image's filesystem (paths under ``/opt``, ``/src`` and
   ``/app`` are the image's own and are rooted there), with this machine's Python for the base image's; the
   runtime stage's ``COPY`` lines likewise (its ``RUN`` lines change the base system and are left out). Then
   every Knative Service's ``FUNCTION_SOURCE`` is loaded in that environment from the runtime stage's working
   directory, as ``python -m shared.server`` would, and the commands a processing Job runs are looked for: a
   function that needs a file or package the image lacks fails here.

``python -m tests.image_check`` prints the problems (and the environment's size) and exits 1 on any.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from shared.bus.kustomize import build, containers
from shared.processing.kubernetes import COMMAND, RUN_AS

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTAINERFILE = REPO_ROOT / "Containerfile"
IGNORE_FILE = REPO_ROOT / ".dockerignore"
SERVER_COMMAND = ["python", "-m", "shared.server"]
IMAGE_ROOTS = ("opt", "src", "app")  # the image's own directories, rooted in the emulation's directory
JOB_COMMANDS = (COMMAND[0], "refsys-ipf-simulator")  # the execution wrapper and the processors' stand-in


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def parse(text: str) -> list[Stage]:
    """The stages of a Containerfile: comments dropped, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    stages: list[Stage] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        instruction, _, args = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append(Stage(args.split(" AS ")[-1].strip() if " AS " in args else str(len(stages))))
        elif stages:
            stages[-1].instructions.append((instruction, " ".join(args.split())))
    return stages


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether ``.dockerignore`` keeps a path out of the build context (its last matching pattern decides)."""
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/")) for p in prefixes):
            verdict = not negated
    return verdict


def _ignore_patterns() -> list[str]:
    lines = IGNORE_FILE.read_text().splitlines() if IGNORE_FILE.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _copies(stage: Stage) -> list[tuple[list[str], str]]:
    """(sources, destination) of every ``COPY`` from the build context (not ``--from``)."""
    found = []
    for args in stage.all("COPY"):
        words = shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        found.append((words[:-1], words[-1]))
    return found


def rule_problems(text: str) -> list[str]:
    stages = parse(text)
    if not stages:
        return ["no FROM: not a Containerfile"]
    runtime, found = stages[-1], []
    users = runtime.all("USER")
    uid = users[-1].split(":")[0] if users else "root"
    if uid != str(RUN_AS):
        found.append(f"the runtime stage runs as {uid!r}: it must be uid {RUN_AS}, the uid processing Jobs run as")
    commands = runtime.all("CMD")
    if not commands or _exec_form(commands[-1]) != SERVER_COMMAND:
        found.append(f"the runtime stage's CMD must be {SERVER_COMMAND} (the function server)")
    patterns = _ignore_patterns()
    for stage in stages:
        for sources, _ in _copies(stage):
            for source in sources:
                if not (REPO_ROOT / source).exists():
                    found.append(f"COPY {source}: no such file in the repository")
                elif ignored(source, patterns):
                    found.append(f"COPY {source}: left out of the build context by .dockerignore")
    return found


def _exec_form(args: str) -> list[str]:
    try:
        value = json.loads(args)
    except ValueError:
        return shlex.split(args)
    return value if isinstance(value, list) else []


def _rooted(command: str, root: Path) -> str:
    """A RUN line with the image's own paths moved under ``root``."""
    return re.sub(rf"(?<![\w./-])/(?=(?:{'|'.join(IMAGE_ROOTS)})\b)", f"{root}/", command)


def _copy_into(sources: list[str], destination: str, workdir: Path, root: Path) -> None:
    """``COPY`` as an engine does it: a directory's contents into the destination, files into it or as it."""
    target = root / destination.lstrip("/") if destination.startswith("/") else workdir / destination
    into_directory = len(sources) > 1 or destination.endswith("/") or destination in (".", "./")
    patterns = _ignore_patterns()

    def left_out(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if ignored(str((Path(directory) / n).relative_to(REPO_ROOT)), patterns)]

    for source in sources:
        origin = REPO_ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, target, dirs_exist_ok=True, ignore=left_out)
        else:
            path = target / origin.name if into_directory else target
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, path)


def _run_stage(stage: Stage, root: Path, commands: bool = True) -> Path:
    """Run a stage's WORKDIR, COPY and (if ``commands``) RUN lines under ``root``; its last working directory."""
    workdir = root
    for instruction, args in stage.instructions:
        if instruction == "WORKDIR":
            workdir = root / args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY" and "--from" not in args:
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            _copy_into(words[:-1], words[-1], workdir, root)
        elif instruction == "RUN" and commands:
            run = subprocess.run(
                ["sh", "-c", _rooted(args, root)], cwd=workdir, capture_output=True, text=True, timeout=900
            )
            if run.returncode != 0:
                raise RuntimeError(f"RUN {args[:120]} failed: {(run.stderr or run.stdout).strip()[-800:]}")
    return workdir


def _services() -> dict[str, tuple[str, str]]:
    """Knative Service -> (FUNCTION_TARGET, FUNCTION_SOURCE), from the prod overlay."""
    services = {}
    for resource in build(REPO_ROOT / "knative" / "overlays" / "prod"):
        if resource.body.get("kind") != "Service" or "serving.knative.dev" not in resource.body["apiVersion"]:
            continue
        for container in containers(resource.body):
            env = {v["name"]: v.get("value") for v in container.get("env") or []}
            services[resource.body["metadata"]["name"]] = (env["FUNCTION_TARGET"], env["FUNCTION_SOURCE"])
    return services


# A function loads, and every module of the environment it imports has its bytecode in the image: compiling them at
# each start (the image's user cannot write it) tripled a cold start (see the Containerfile).
LOAD = """
import os, sys
from shared.server import create_app
create_app(sys.argv[1], sys.argv[2])
found = [m for m in list(sys.modules.values()) if (getattr(m, "__file__", None) or "").startswith(sys.prefix)]
missing = [m.__name__ for m in found if getattr(m, "__cached__", None) and not os.path.exists(m.__cached__)]
sys.exit(f"no bytecode in the image for {len(missing)} modules: {missing[:5]}" if missing else 0)
"""


def emulate(text: str) -> tuple[list[str], int]:
    """Problems found by emulating the build, and the size in bytes of what the runtime stage copies."""
    stages = parse(text)
    build_stage, runtime = stages[0], stages[-1]
    with tempfile.TemporaryDirectory(prefix="refsys-image-") as workdir:
        root = Path(workdir)
        try:
            _run_stage(build_stage, root)
        except RuntimeError as exc:
            return [str(exc)], 0
        venv = root / "opt" / "refsys"
        size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
        # The runtime stage copies the environment from the build stage (same paths) and its own files; its RUN
        # lines change the base system (a user) and are not run here.
        app = _run_stage(runtime, root, commands=False)
        python, found = venv / "bin" / "python", []
        for service, (target, source) in sorted(_services().items()):
            # From the runtime working directory, isolated from this checkout: only the image's files are seen.
            run = subprocess.run(
                [str(python), "-c", LOAD, target, source],
                cwd=app,
                capture_output=True,
                text=True,
                timeout=120,
                env={"PATH": f"{venv / 'bin'}", "HOME": str(app), "PYTHONDONTWRITEBYTECODE": "1"},  # as the image
            )
            if run.returncode != 0:
                found.append(f"Service {service}: {source} does not load in the image: {run.stderr.strip()[-400:]}")
        for command in JOB_COMMANDS:
            if not (venv / "bin" / command).exists():
                found.append(f"processing Jobs run {command!r}: not installed in the image")
        return found, size


def main() -> int:
    text = CONTAINERFILE.read_text()
    found = rule_problems(text)
    if not found:
        emulated, size = emulate(text)
        found += emulated
        print(f"Containerfile: the runtime environment is {size / 2**20:.0f} MiB")
    print(f"Containerfile: {'ok' if not found else f'{len(found)} problem(s)'}")
    for problem in found:
        print(f"  - {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
