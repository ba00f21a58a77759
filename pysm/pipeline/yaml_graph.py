"""Pipeline graphs from YAML (``Pipeline(name, config_file)``)::

    deepstream:
      nodes:
      - {type: nvstreammux, name: mux, properties: {batch-size: 1}}
      - {type: sample_video_probe.sample_video_probe, name: counter}
      edges:
        src: mux            # "elem.pad" selects a pad on either side
        mux: [sink, counter]  # an edge to a probe object attaches it
"""

from __future__ import annotations

from typing import Any

from pysm.yaml_file import load_yaml

from pysm.errors import ConfigError


def _split(spec: str) -> tuple[str, str]:
    name, _, pad = str(spec).partition(".")
    return name, pad


def load_graph(pipeline: Any, path: str) -> None:
    from pysm.pipeline.factory import CommonFactory
    from pysm.pipeline.registry import lookup

    doc = load_yaml(path, "pipeline config")
    root = doc.get("deepstream") if isinstance(doc, dict) else None
    if not isinstance(root, dict) or not isinstance(root.get("nodes"), list):
        raise ConfigError(f"pipeline config '{path}': expected 'deepstream: {{nodes: [...], edges: {{...}}}}'")
    objects: dict[str, Any] = {}
    for i, node in enumerate(root["nodes"]):
        if not isinstance(node, dict) or "type" not in node or "name" not in node:
            raise ConfigError(f"pipeline config '{path}': node #{i} needs 'type' and 'name'")
        ntype, name = str(node["type"]), str(node["name"])
        props = node.get("properties") or {}
        if node.get("enable", True) is False:
            pipeline.add("identity", name)
            continue
        try:
            lookup(ntype, name)
            is_element = True
        except ConfigError:
            is_element = False
        if is_element:
            pipeline.add(ntype, name, props)
            continue
        obj = CommonFactory.create(ntype, name)
        if obj is None:
            raise ConfigError(f"pipeline config '{path}': node '{name}' has unknown type '{ntype}'")
        if props:
            obj.set(props)
        objects[name] = obj
        pipeline._objects[name] = obj
    for src, dsts in (root.get("edges") or {}).items():
        for dst in (dsts if isinstance(dsts, list) else [dsts]):
            sname, spad = _split(src)
            dname, dpad = _split(dst)
            if dname in objects:
                obj = objects[dname]
                attach = getattr(obj, "attach_to", None)
                if attach is not None:
                    attach(pipeline, pipeline.element(sname), spad)
                else:
                    pipeline.element(sname).add_probe(obj, spad)
            else:
                pipeline.link((sname, dname), (spad, dpad))
