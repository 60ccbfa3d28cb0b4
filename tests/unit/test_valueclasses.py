"""Which classes a value between steps may name: a step loads one only when the compiled workflow
vouches for it, and never imports a module because a value names it; the client reads an unknown
class as its data only inside an entry point's lenient block (how values are written and read:
tests/unit/test_values.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import llmstep
from llmstep import serde, valueclasses


def test_a_step_never_imports_a_module_a_value_names(tmp_path):
    """A value naming a class the payload does not list fails, and its module is not imported."""
    marker = tmp_path / "imported"
    (tmp_path / "sneaky.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Thing:\n    pass\n")
    tree = {"__llmstep__": "dataclass", "class": "sneaky:Thing", "fields": {}}
    text = json.dumps({"llmstep": serde.FORMAT_VERSION, "kind": "value", "value": tree})
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from llmstep import serde, valueclasses\n"
        f"serde.loads_value({text!r}, classes=valueclasses.Classes())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "SerializationError" in result.stderr and "sneaky:Thing" in result.stderr
    assert "does not declare" in result.stderr
    assert not marker.exists()
    # and the client side (the user's process) does not import it either
    code = code.replace("classes=valueclasses.Classes()", "classes=valueclasses.CLIENT")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "SerializationError" in result.stderr and not marker.exists()


def test_the_client_reads_an_unknown_class_as_data_only_while_an_entry_point_says_so():
    """The CLI and a step read leniently for the length of their call (valueclasses.reading_leniently);
    the process's client reader itself never changes, so a script reading results stays strict."""
    tree = {"__llmstep__": "dataclass", "class": "nowhere_imported:Thing", "fields": {"a": 1}}
    text = json.dumps({"llmstep": serde.FORMAT_VERSION, "kind": "value", "value": tree})
    with pytest.raises(llmstep.SerializationError, match="nowhere_imported:Thing"):
        serde.loads_value(text)
    with valueclasses.reading_leniently():
        assert serde.loads_value(text) == {"a": 1}
        with valueclasses.reading_leniently():  # nested: the outer block still reads leniently after
            pass
        assert serde.loads_value(text) == {"a": 1}
    with pytest.raises(llmstep.SerializationError, match="nowhere_imported:Thing"):
        serde.loads_value(text)  # the block ended, and with it the leniency
    assert (
        valueclasses.Classes(lenient=True).resolve("nowhere_imported:Thing", "x") is None
    )  # a reader's own choice stands
