"""Docker's JSON shapes for images: `GET /images/json` (summary), `GET /images/{name}/json` (inspect)
and `GET /images/{name}/history`. Pure functions of an image record; no I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from berth.image.timeutil import ZERO_TIME, to_unix

if TYPE_CHECKING:
    from berth.image.service import ImageRecord


def _container_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The image's `config` in Docker's container-config shape (missing keys as Docker shows them)."""
    out: dict[str, Any] = {
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
        "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
        "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
    }
    out.update(cfg)
    return out


def summary(rec: ImageRecord, containers: int) -> dict[str, Any]:
    labels = rec.config.config.get("Labels")
    return {
        "Id": rec.id,
        "ParentId": rec.row.parent or "",
        "RepoTags": rec.repo_tags(),
        "RepoDigests": rec.repo_digests(),
        "Created": to_unix(rec.config.created),
        "Size": rec.row.size,
        "SharedSize": -1,
        "VirtualSize": rec.row.size,
        "Labels": labels if isinstance(labels, dict) else {},
        "Containers": containers,
    }


def inspect(rec: ImageRecord, graph_driver: dict[str, Any]) -> dict[str, Any]:
    doc = rec.config.doc
    plat = rec.config.platform()
    out: dict[str, Any] = {
        "Id": rec.id,
        "RepoTags": rec.repo_tags(),
        "RepoDigests": rec.repo_digests(),
        "Parent": rec.row.parent or "",
        "Comment": doc.get("comment", "") or "",
        "Created": rec.config.created or ZERO_TIME,
        "Container": doc.get("container", "") or "",
        "ContainerConfig": _container_config(doc.get("container_config") or {}),
        "DockerVersion": doc.get("docker_version", "") or "",
        "Author": doc.get("author", "") or "",
        "Config": _container_config(rec.config.config),
        "Architecture": plat.architecture,
        "Os": plat.os,
        "Size": rec.row.size,
        "VirtualSize": rec.row.size,
        "GraphDriver": graph_driver,
        "RootFS": {"Type": "layers", "Layers": rec.config.diff_ids},
        "Metadata": {"LastTagTime": rec.row.last_tag_time or ZERO_TIME},
    }
    if plat.variant:
        out["Variant"] = plat.variant
    if plat.os_version:
        out["OsVersion"] = plat.os_version
    return out


def history(rec: ImageRecord, layer_sizes: list[int]) -> list[dict[str, Any]]:
    """Newest first; the top entry carries the image id and its tags, older ones "<missing>"."""
    entries = rec.config.history
    sizes = iter(layer_sizes)
    out = []
    if not entries:  # images without history: one line per layer, as Docker synthesises it
        entries = [{} for _ in layer_sizes]
    for h in entries:
        size = 0 if h.get("empty_layer") else next(sizes, 0)
        out.append({
            "Id": "<missing>",
            "Created": to_unix(str(h.get("created", ""))),
            "CreatedBy": h.get("created_by", "") or "",
            "Tags": None,
            "Size": size,
            "Comment": h.get("comment", "") or "",
        })
    out.reverse()
    if out:
        out[0]["Id"] = rec.id
        out[0]["Tags"] = rec.repo_tags() or None
    return out
