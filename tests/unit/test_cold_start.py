"""Functions start fast: importing one loads only what its handler needs (the figures are in `make bench`)."""

import json
import subprocess
import sys

import pytest

from shared.bus.manifests import load_topology
from tests.conftest import REPO_ROOT

# Heavy modules no function may import when it starts: they belong to other processes or are lazy.
FORBIDDEN = ("kubernetes", "psycopg", "shared.bus.broker", "shared.platform", "moto", "rich")
SERVICES = sorted(load_topology(REPO_ROOT / "knative" / "overlays" / "dev").services.values(), key=lambda s: s.name)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_a_function_imports_nothing_heavy_at_start(service) -> None:
    module = service.env["FUNCTION_SOURCE"].removesuffix(".py").replace("/", ".")
    probe = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True, text=True).stdout
    )
    heavy = [name for name in loaded if name.split(".")[0] in FORBIDDEN or name in FORBIDDEN]
    assert heavy == [], f"{service.name} imports {heavy} at start"
