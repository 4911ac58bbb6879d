"""A documented subset of kustomize: enough to build the bases and overlays of ``knative/`` the way
``kustomize build`` (``kubectl kustomize``) does, for the local platform and ``make deploy-check``.

Supported fields of a kustomization: ``resources`` (local YAML files, and directories holding a
kustomization), ``namespace`` (set on every namespaced object; the outermost kustomization's wins),
``images`` (``name`` -> ``newName``/``newTag``/``digest`` on container images), and ``patches`` (a ``path`` or
an inline ``patch``, optionally with a ``target``: ``kind``, ``name``, ``group``, ``version``, ``namespace``).
A patch that is a YAML list is a JSON 6902 patch (``add``, ``replace``, ``remove``); a mapping is a merge
patch, applied as kustomize applies a strategic merge to custom resources (RFC 7386: mappings merge, lists
are replaced, ``null`` deletes). Anything else (generators, transformers, components, remote resources,
``patchesStrategicMerge``...) is refused with an error naming it: never silently ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED = {"apiVersion", "kind", "metadata", "resources", "namespace", "images", "patches"}
# Objects that live in no namespace: ``namespace`` leaves them alone.
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


class KustomizeError(ValueError):
    """A kustomization this subset cannot build (or that is wrong): says which file and why."""


@dataclass
class Resource:
    """One object of the build and where it was written (for error messages)."""

    body: dict[str, Any]
    file: Path
    index: int  # 1-based position in its file

    @property
    def where(self) -> str:
        meta = self.body.get("metadata") or {}
        name = meta.get("name", "?") if isinstance(meta, dict) else "?"
        return f"{self.file} (document {self.index}, {self.body.get('kind')} {name!r})"


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def build(path: Path) -> list[Resource]:
    """The objects of a kustomize directory (or kustomization file), patched, named and namespaced."""
    path = Path(path)
    kfile = kustomization_file(path) if path.is_dir() else path
    if kfile is None:
        raise KustomizeError(f"{path}: no kustomization.yaml in this directory")
    return _build(kfile, ())


def read_yaml(file: Path) -> list[Any]:
    try:
        with file.open(encoding="utf-8") as fh:
            return list(yaml.safe_load_all(fh))
    except OSError as exc:
        raise KustomizeError(f"{file}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise KustomizeError(f"{file}: invalid YAML: {exc}") from exc


def read_kustomization(kfile: Path) -> dict[str, Any]:
    docs = read_yaml(kfile)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise KustomizeError(f"{kfile}: a kustomization must be a single YAML mapping")
    return docs[0]


def _build(kfile: Path, stack: tuple[Path, ...]) -> list[Resource]:
    if kfile.resolve() in stack:
        raise KustomizeError(f"{kfile}: kustomization cycle via {' -> '.join(map(str, stack))}")
    stack = (*stack, kfile.resolve())
    kust = read_kustomization(kfile)
    unsupported = sorted(set(kust) - SUPPORTED)
    if unsupported:
        raise KustomizeError(
            f"{kfile}: {', '.join(unsupported)} not supported by refsys's kustomize subset "
            f"(supported: namespace, resources, images, patches; see shared/bus/kustomize.py)"
        )
    resources = [r for entry in kust.get("resources") or [] for r in _resources(kfile, entry, stack)]
    for number, patch in enumerate(kust.get("patches") or [], start=1):
        _apply_patch(kfile, number, patch, resources)
    for image in kust.get("images") or []:
        _set_image(kfile, image, resources)
    if namespace := kust.get("namespace"):
        for resource in resources:
            if resource.body.get("kind") not in CLUSTER_SCOPED:
                resource.body.setdefault("metadata", {})["namespace"] = str(namespace)
    return resources


def _resources(kfile: Path, entry: Any, stack: tuple[Path, ...]) -> Iterator[Resource]:
    if not isinstance(entry, str) or "://" in entry or entry.startswith("github.com/"):
        raise KustomizeError(f"{kfile}: resource {entry!r}: only local files and directories are supported")
    target = kfile.parent / entry
    if target.is_dir():
        sub = kustomization_file(target)
        if sub is None:
            raise KustomizeError(f"{kfile}: resource {entry!r} is a directory without kustomization.yaml")
        yield from _build(sub, stack)
    elif target.is_file():
        for index, body in enumerate(read_yaml(target), start=1):
            if body is None:  # an empty document between `---` separators
                continue
            if not isinstance(body, dict) or "kind" not in body:
                raise KustomizeError(f"{target} (document {index}): not a Kubernetes object (no `kind`)")
            yield Resource(body, target, index)
    else:
        raise KustomizeError(f"{kfile}: resource {entry!r} does not exist")


def _apply_patch(kfile: Path, number: int, spec: Any, resources: list[Resource]) -> None:
    where = f"{kfile}: patch {number}"
    if not isinstance(spec, dict) or ("path" in spec) == ("patch" in spec):
        raise KustomizeError(f"{where}: give exactly one of `path` or `patch` (and an optional `target`)")
    unknown = sorted(set(spec) - {"path", "patch", "target", "options"})
    if unknown or spec.get("options"):
        raise KustomizeError(f"{where}: {', '.join(unknown) or 'options'} not supported")
    text = (kfile.parent / spec["path"]).read_text(encoding="utf-8") if "path" in spec else spec["patch"]
    try:
        patch = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KustomizeError(f"{where}: invalid YAML: {exc}") from exc
    target = spec.get("target")
    if target is None:
        if not isinstance(patch, dict) or "kind" not in patch:
            raise KustomizeError(f"{where}: a patch without `target` must be an object with kind and metadata.name")
        target = {"kind": patch["kind"], "name": (patch.get("metadata") or {}).get("name")}
    chosen = [r for r in resources if _selected(r.body, target, where)]
    if not chosen:
        raise KustomizeError(f"{where}: no resource matches its target {target}")
    for resource in chosen:
        if isinstance(patch, list):
            resource.body = _json6902(resource.body, patch, where)
        elif isinstance(patch, dict):
            resource.body = _merge(resource.body, patch)
        else:
            raise KustomizeError(f"{where}: a patch is a mapping (merge) or a list of operations (JSON 6902)")


def _selected(body: dict[str, Any], target: Any, where: str) -> bool:
    if not isinstance(target, dict):
        raise KustomizeError(f"{where}: `target` must be a mapping")
    unknown = sorted(set(target) - {"kind", "name", "group", "version", "namespace"})
    if unknown:
        raise KustomizeError(
            f"{where}: target {', '.join(unknown)} not supported (kind, name, group, version, namespace)"
        )
    group, _, version = str(body.get("apiVersion", "")).rpartition("/")
    meta = body.get("metadata") or {}
    actual = {"kind": body.get("kind"), "name": meta.get("name"), "group": group, "version": version,
              "namespace": meta.get("namespace")}  # fmt: skip
    return all(actual[key] == value for key, value in target.items())


def _merge(body: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(body) if isinstance(body, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


def _json6902(body: dict[str, Any], operations: list[Any], where: str) -> dict[str, Any]:
    result = copy.deepcopy(body)
    for operation in operations:
        if not isinstance(operation, dict) or operation.get("op") not in ("add", "replace", "remove"):
            raise KustomizeError(f"{where}: JSON 6902 operations supported: add, replace, remove; got {operation!r}")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(operation.get("path", "")).split("/")[1:]]
        if not parts:
            raise KustomizeError(f"{where}: operation {operation!r} has no path")
        parent: Any = result
        try:
            for part in parts[:-1]:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
            last = parts[-1]
            if operation["op"] == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if operation["op"] == "add":
                    parent.insert(index, copy.deepcopy(operation["value"]))
                else:
                    parent[index] = copy.deepcopy(operation["value"])
            else:
                if operation["op"] == "replace" and last not in parent:
                    raise KeyError(last)
                parent[last] = copy.deepcopy(operation["value"])
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise KustomizeError(f"{where}: cannot {operation['op']} {operation.get('path')}: {exc!r}") from exc
    return result


def _set_image(kfile: Path, image: Any, resources: list[Resource]) -> None:
    if not isinstance(image, dict) or "name" not in image:
        raise KustomizeError(f"{kfile}: an images entry needs a `name`")
    for resource in resources:
        for container in containers(resource.body):
            name, tag = _split_image(str(container.get("image", "")))
            if name != image["name"]:
                continue
            new = str(image.get("newName", name))
            if digest := image.get("digest"):
                container["image"] = f"{new}@{digest}"
            else:
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new}:{new_tag}" if new_tag else new


def containers(body: Any) -> Iterator[dict[str, Any]]:
    """Every container of an object (under any ``containers``/``initContainers`` list)."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from containers(value)
    elif isinstance(body, list):
        for item in body:
            yield from containers(item)


def _split_image(image: str) -> tuple[str, str | None]:
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    return name, tag or None
