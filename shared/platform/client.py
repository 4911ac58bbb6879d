"""How commands find a running platform: ``DIR/endpoints.json``, written by ``refsys up --data-dir DIR``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.platform.embedded import CREDENTIALS_FILE, ENDPOINTS_FILE, LOCK_FILE, running_pid
from shared.settings import Settings
from shared.storage.objects import ObjectStore


class PlatformNotRunning(RuntimeError):
    pass


@dataclass(frozen=True)
class RunningPlatform:
    data_dir: Path
    endpoints: dict[str, Any]
    settings: Settings

    @classmethod
    def find(cls, data_dir: Path) -> RunningPlatform:
        path = data_dir / ENDPOINTS_FILE
        if not path.exists():
            raise PlatformNotRunning(f"no platform is running with data directory {data_dir} (start it: refsys up)")
        # A killed platform cannot remove its endpoints.json; its pid in the lock file tells.
        if (data_dir / LOCK_FILE).exists() and running_pid(data_dir) is None:
            raise PlatformNotRunning(
                f"no platform is running with data directory {data_dir}: the one that wrote {path} was killed"
                " (start it: refsys up)"
            )
        endpoints = json.loads(path.read_text())
        keys = json.loads((data_dir / CREDENTIALS_FILE).read_text())
        settings = Settings(
            s3_endpoint_url=endpoints["s3"], s3_access_key=keys["accessKey"], s3_secret_key=keys["secretKey"]
        )
        return cls(data_dir, endpoints, settings)

    def object_store(self) -> ObjectStore:
        return ObjectStore(self.settings)
