"""Strict validators for the upstream Argo schemas (see tests/data/README.md)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import jsonschema

DATA = Path(__file__).parent / "data"
ARGO_VERSIONS = ("v4.1.2", "v3.7.18")


@cache
def argo_validator(version: str, kind: str = "Workflow") -> jsonschema.protocols.Validator:
    schema = json.loads((DATA / "schemas" / f"argo-workflows-{version}.schema.json").read_text())
    defs = copy.deepcopy(schema["definitions"])
    defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {"type": ["string", "integer"]}
    for definition in defs.values():
        if isinstance(definition, dict) and "properties" in definition:
            definition["additionalProperties"] = False
    strict = {"definitions": defs, "$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}"}
    cls = jsonschema.validators.validator_for(schema)
    return cls(strict)


def argo_errors(doc: dict, version: str) -> list[str]:
    validator = argo_validator(version, doc.get("kind", "Workflow"))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


@cache
def tekton_validator(kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((DATA / "schemas" / "tekton-v1.15.0-strict.schema.json").read_text())
    return jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": f"#/$defs/tekton.v1.{kind}"})


def tekton_errors(doc: dict) -> list[str]:
    validator = tekton_validator(doc["kind"])
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
