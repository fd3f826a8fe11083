"""`graph`: the profile DAG and the images on it, as text, dot, mermaid or JSON."""

from __future__ import annotations

import json
from typing import Any

from ..graph import ProfileGraph
from ..load import SiteDocs


def graph_json(docs: SiteDocs, graph: ProfileGraph) -> dict[str, Any]:
    profiles = {
        name: {
            "file": lp.path,
            "description": lp.model.description,
            "inherits": list(lp.model.inherits),
            "chain": list(graph.chains[name]),
        }
        for name, lp in sorted(docs.profiles.items())
    }
    images = {
        name: {
            "profile": image.profile,
            "distro": image.distro,
            "chain": list(graph.chains[image.profile]),
            "frozen": image.frozen,
        }
        for name, image in sorted(docs.site.model.images.items())
    }
    return {"profiles": profiles, "images": images}


def graph_text(docs: SiteDocs, graph: ProfileGraph) -> str:
    data = graph_json(docs, graph)
    lines = ["profiles (parents after '<-'):"]
    for name, info in data["profiles"].items():
        parents = f" <- {', '.join(info['inherits'])}" if info["inherits"] else ""
        desc = f"  # {info['description']}" if info["description"] else ""
        lines.append(f"  {name}{parents}{desc}")
    lines.append("images (chain):")
    for name, info in data["images"].items():
        frozen = " [frozen]" if info["frozen"] else ""
        lines.append(f"  {name}: {' -> '.join(info['chain'])} ({info['distro']}){frozen}")
    return "\n".join(lines) + "\n"


def _quote(name: str) -> str:
    return json.dumps(name)


def graph_dot(docs: SiteDocs, graph: ProfileGraph) -> str:
    data = graph_json(docs, graph)
    lines = ["digraph imagespec {", "  rankdir=BT;", "  node [shape=ellipse];"]
    for name, info in data["profiles"].items():
        lines.append(f"  {_quote(name)};")
        for parent in info["inherits"]:
            lines.append(f"  {_quote(name)} -> {_quote(parent)};")
    for name, info in data["images"].items():
        lines.append(f"  {_quote('image:' + name)} [shape=box, label={_quote(name)}];")
        lines.append(f"  {_quote('image:' + name)} -> {_quote(info['profile'])} [style=dashed];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_mermaid(docs: SiteDocs, graph: ProfileGraph) -> str:
    data = graph_json(docs, graph)
    ids = {name: f"p{i}" for i, name in enumerate(data["profiles"])}
    lines = ["graph BT"]
    for name, node in ids.items():
        lines.append(f'  {node}(["{name}"])')
    for name, info in data["profiles"].items():
        for parent in info["inherits"]:
            lines.append(f"  {ids[name]} --> {ids[parent]}")
    for i, (name, info) in enumerate(data["images"].items()):
        lines.append(f'  i{i}["{name}"] -.-> {ids[info["profile"]]}')
    return "\n".join(lines) + "\n"
