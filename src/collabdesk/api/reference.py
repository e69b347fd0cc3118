"""The API reference as Markdown, rendered from the OpenAPI document the server serves, so
the reference a reader finds in the repository (docs/api-reference.md) is the code's own
description of itself. `collabdesk openapi --markdown` prints it; a test keeps the file
in step with the code."""

from __future__ import annotations

import json
from typing import Any

Spec = dict[str, Any]
METHODS = ("get", "post", "put", "patch", "delete")


def render_markdown(spec: Spec) -> str:
    lines = [f"# {spec['info']['title']} API reference ({spec['info']['version']})", "",
             "Generated from the server's OpenAPI document (`GET /openapi.json`) by",
             "`collabdesk openapi --markdown`; do not edit by hand. How to use the API",
             "(conventions, order of checks, limits) is in [api-guide.md](api-guide.md).", ""]
    for tag, operations in _by_tag(spec).items():
        lines += [f"## {tag}", ""]
        for path, method, op in operations:
            lines += _operation(spec, path, method, op)
    lines += ["## Schemas", ""]
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def _by_tag(spec: Spec) -> dict[str, list[tuple[str, str, Spec]]]:
    tags: dict[str, list[tuple[str, str, Spec]]] = {}
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                tags.setdefault((op.get("tags") or ["other"])[0], []).append((path, method, op))
    return tags


def _operation(spec: Spec, path: str, method: str, op: Spec) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    if op.get("summary"):
        lines += [f"**{op['summary']}.**" if not op["summary"].endswith(".")
                  else f"**{op['summary']}**", ""]
    if op.get("description"):
        lines += [op["description"].strip(), ""]
    auth = "bearer token" if op.get("security") else "none"
    lines += [f"Authentication: {auth}.", ""]
    params = [_resolve(spec, p) for p in op.get("parameters", [])]
    if params:
        lines += ["| parameter | in | required | type | description |", "|---|---|---|---|---|"]
        for p in params:
            lines.append(f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'}"
                         f" | {_type(p.get('schema', {}))} | {_cell(p.get('description', ''))} |")
        lines.append("")
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            lines += [f"Request body ({media}): {_type(content.get('schema', {}))}.", ""]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, response in sorted(op.get("responses", {}).items()):
        response = _resolve(spec, response)
        kinds = []
        for media, content in response.get("content", {}).items():
            codes = _codes(content.get("schema", {}))
            kinds.append(f"{media} {_type(content.get('schema', {}))}"
                         + (f" — `code`: {', '.join(f'`{c}`' for c in codes)}" if codes else ""))
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | "
                     f"{'<br>'.join(kinds) or '—'} |")
    return [*lines, ""]


def _resolve(spec: Spec, item: Spec) -> Spec:
    """Follow a local `$ref` (`#/components/...`) to what it names."""
    while "$ref" in item and item["$ref"].startswith("#/components/") and \
            not item["$ref"].startswith("#/components/schemas/"):
        node: Any = spec
        for part in item["$ref"][2:].split("/"):
            node = node[part]
        item = node
    return item


def _codes(schema: Spec) -> list[str]:
    """The `code` enum a problem response declares, if any."""
    for part in [*schema.get("allOf", []), schema]:
        enum = part.get("properties", {}).get("code", {}).get("enum")
        if enum:
            return [str(c) for c in enum]
    return []


def _type(schema: Spec) -> str:
    if "$ref" in schema:
        return f"`{schema['$ref'].rsplit('/', 1)[1]}`"
    if "allOf" in schema:
        return " & ".join(_type(s) for s in schema["allOf"] if "$ref" in s) or "object"
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    fmt = schema.get("format")
    return f"{kind} ({fmt})" if fmt else str(kind)


def _schema(name: str, schema: Spec) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [schema["description"].strip(), ""]
    if "enum" in schema:
        return [*lines, "One of " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".", ""]
    props = schema.get("properties", {})
    if not props:
        return [*lines, f"Type: {_type(schema)}.", ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    for field, prop in props.items():
        limits = [f"{k} {prop[k]}" for k in ("minLength", "maxLength", "minimum", "maximum",
                                            "maxItems") if k in prop]
        if "pattern" in prop:
            limits.append(f"pattern `{prop['pattern']}`")
        text = _cell(prop.get("description", "") + (f" ({'; '.join(limits)})" if limits
                                                      else ""))
        lines.append(f"| `{field}` | {_type(prop)} | {'yes' if field in required else 'no'} | "
                     f"{text.strip()} |")
    return [*lines, ""]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_json(spec: Spec) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"
