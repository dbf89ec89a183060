"""Lowering semantics: naming, scopes, optional steps and outputs, block arguments."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

from archc.compiler import compile_text
from archc.errors import SpecError
from archc.limits import DEFAULT_LIMITS
from archc.lower.budget import Counter
from archc.lower.constructs import CONSTRUCT_COUNTS, CONSTRUCT_RULES
from archc.lower.context import Lowering
from archc.lower.lowerer import Lowerer
from archc.lower.steps import BadStep, Step, parse_step
from archc.spec.model import CONSTRUCTS, SpecHeader
from archc.spec.report import Reporter

AUX = """
name: aux_demo
inputs: {x: [3, 16, 16]}
params: {aux: false}
outputs: {logits: fc, side: head.fc}
blocks:
  head:
    body: [global_avgpool, flatten, {linear: {id: fc, out: 5}}]
body:
  - conv: {id: c1, out: 8, k: 3, p: 1}
  - head: {id: head, if: $aux}
  - conv: {id: c2, from: c1, out: 8, k: 3, p: 1}
  - global_avgpool
  - flatten
  - linear: {id: fc, out: 10}
"""


def test_outputs_of_switched_off_steps_are_dropped() -> None:
    off = compile_text(AUX)
    assert off.graph.outputs == {"logits": "fc"}
    on = compile_text(AUX, overrides={"aux": "true"})
    assert on.graph.outputs == {"logits": "fc", "side": "head.fc"}
    assert on.graph.node("head.fc").out_type.shape == (5,)
    assert on.costs.total.params - off.costs.total.params == 8 * 5 + 5


def test_taking_input_from_a_switched_off_step_is_an_error() -> None:
    text = AUX.replace("- conv: {id: c2, from: c1,", "- conv: {id: c2, from: head,")
    with pytest.raises(SpecError) as err:
        compile_text(text, "aux.yaml")
    (d,) = err.value.diagnostics
    assert d.code == "E201" and "switched off by its `if:`" in d.message
    assert (d.pos.line, d.pos.col) == (12, 26)  # the `head` value of `from:`


def test_typed_default_block_argument_accepts_lists() -> None:
    text = """
name: typed_args
inputs: {x: [4, 17, 17]}
blocks:
  unit:
    args: {k: {type: any, default: 1}, p: {type: any, default: 0}}
    body: [{conv: {id: conv, out: 8, k: $k, p: $p}}]
body:
  - unit: {id: a}
  - unit: {id: b, k: [1, 7], p: [0, 3]}
"""
    g = compile_text(text).graph
    assert g.node("a.conv").params.k == 1
    assert g.node("b.conv").out_type.shape == (8, 17, 17)
    assert g.node("b.conv").params.k == [1, 7]


def test_bare_expressions_may_name_several_params() -> None:
    text = """
name: bare
inputs: {x: [4, 8, 8]}
params: {a: 3, b: 4}
body: [{conv: {out: $a * $b, k: 1}}]
"""
    assert compile_text(text).graph.node("0").out_type.shape == (12, 8, 8)


def test_unnamed_steps_are_numbered_among_included_steps() -> None:
    text = """
name: numbering
inputs: {x: [4, 8, 8]}
params: {expand: false}
body:
  - conv: {out: 8, k: 1, if: $expand}
  - conv: {out: 8, k: 3, p: 1}
  - relu
"""
    g = compile_text(text).graph
    assert [n.name for n in g.nodes()] == ["x", "0", "1"]
    assert g.node("0").params.k == 3


def test_reserved_id_is_refused_at_check_time() -> None:
    text = "name: r\ninputs: {x: [3, 8, 8]}\nbody:\n  - conv: {id: forward, out: 4, k: 1}\n"
    with pytest.raises(SpecError) as err:
        compile_text(text, "r.yaml")
    assert [d.format() for d in err.value.diagnostics] == [
        "r.yaml:4:16: E206: forward: 'forward' is an attribute of PyTorch modules and cannot name a layer; "
        "choose another id"]


def test_unknown_reference_hint_lists_only_names_defined_above() -> None:
    """The step itself and the steps below it cannot be inputs, so the hint does not offer them."""
    text = """
name: t
inputs: {x: [4]}
body:
  - linear: {id: a, out: 4}
  - relu: {id: b, from: zzz}
  - linear: {id: c, out: 2}
"""
    with pytest.raises(SpecError) as info:
        compile_text(text, "t.yaml")
    (d,) = info.value.diagnostics
    assert d.format() == "t.yaml:6:25: E201: b: unknown reference 'zzz'; visible here: x, a"


UNNAMED_STAGE = """
name: unnamed_stage
inputs: {x: [3, 16, 16]}
blocks:
  unit:
    body: [{conv: {id: conv, out: 8, k: 3, p: 1}}, relu]
body:
  - conv: {out: 8, k: 3, p: 1}
  - relu
  - stage: {block: unit, repeat: 3}
  - stage: {repeat: 2, body: [{conv: {out: 8, k: 1}}]}
  - conv: {out: 8, k: 1}
"""


def test_unnamed_stage_is_named_by_its_list_index() -> None:
    """Like every other unnamed step: its copies are `<index>.0`, `<index>.1`, ..., never `0`, `1` beside the steps
    that already hold those indices."""
    g = compile_text(UNNAMED_STAGE).graph
    assert [n.name for n in g.nodes()] == [
        "x", "0", "1", "2.0.conv", "2.0.1", "2.1.conv", "2.1.1", "2.2.conv", "2.2.1", "3.0.0", "3.1.0", "4"]
    assert g.scopes["2"].kind == "stage"


def test_stage_copies_named_by_start_that_collide_are_one_error() -> None:
    """`start`/`prefix` still name an unnamed stage's copies in the enclosing scope (MobileNet's `features.2`...);
    a copy that takes an earlier step's name is reported once, with the cause."""
    text = UNNAMED_STAGE.replace("repeat: 3}", "repeat: 3, start: 1}")
    with pytest.raises(SpecError) as info:
        compile_text(text, "s.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "s.yaml:10:5: E203: 2: this stage has no `id`, so its copies are named in the enclosing scope, and copy '1' "
        "takes the name of an earlier step; give the stage an `id`, or a `prefix`/`start` that names its copies "
        "apart"]


def test_step_named_like_an_earlier_stage_copy_is_refused() -> None:
    text = UNNAMED_STAGE.replace("  - relu\n  - stage: {block: unit, repeat: 3}", "  - stage: {block: unit, "
                                 "repeat: 2, start: 1}\n  - relu")
    with pytest.raises(SpecError) as info:
        compile_text(text, "s.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "s.yaml:10:5: E203: 2: '2' already names a scope of several layers above (a block call, a named construct or "
        "a stage copy); give this step another id"]


def test_errors_inside_unnamed_constructs_name_the_path_once() -> None:
    """An unnamed construct's anonymous path already holds its scope (`g.1`); it was prefixed again (`g.g.1`)."""
    text = """
name: d
inputs: {x: [8, 16, 16]}
body:
  - group:
      id: g
      body:
        - relu
        - residual: {body: [relu], merge: sum}
        - stage: {repeat: 2, body: [relu], prefix: "a.b"}
        - relu: {from: [zzz]}
"""
    with pytest.raises(SpecError) as info:
        compile_text(text, "d.yaml")
    assert [(d.path, d.code) for d in info.value.diagnostics] == [("g.1", "E103"), ("g.2", "E103"), ("g.3", "E201")]


def test_reading_the_shape_of_an_input_an_error_left_untyped_is_not_a_second_error() -> None:
    """The cause (a kernel that does not fit) is reported once; the steps after it, in the same block call, in a
    construct of a later one, or at top level, do not add `unknown name 'in_channels'` (with a doubled path)."""
    text = """
name: d
inputs: {x: [8, 16, 16]}
blocks:
  unit:
    args: {width: 8}
    body:
      - residual:
          if: ${in_channels > 0}
          body:
            - conv: {out: $in_channels, k: 1}
      - conv: {out: "${in_channels // 2}", k: 1, if: "${in_shape[0] > 1}"}
body:
  - group:
      id: features
      body:
        - conv: {out: 8, k: 99}
        - unit: {width: $in_channels}
        - conv: {out: $in_channels, k: 1}
        - conv: {out: $widht, k: 1}
"""
    with pytest.raises(SpecError) as info:
        compile_text(text, "d.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "d.yaml:17:11: E304: features.0: kernel 99 does not fit: expected at most the padded input size 16 (16 + "
        "padding 0+0), found 99 (input: [8, 16, 16] from input 'x')",
        "d.yaml:20:23: E403: features.3: 'out': unknown name 'widht' (known names: none)"]


GROUPED = """
name: t
inputs: {x: [8, 16, 16]}
body:
  - conv: {id: stem, out: 8, k: 1}
  - group:
      id: g
      body:
        - relu
        - conv: {out: 8, k: 1}
        - add: {from: [REF, stem]}
"""


def _unknown_reference_message(ref: str) -> str:
    with pytest.raises(SpecError) as info:
        compile_text(GROUPED.replace("REF", ref), "t.yaml")
    (d,) = info.value.diagnostics
    return d.format()


def test_unknown_reference_hint_leaves_out_the_enclosing_group_and_names_unnamed_steps() -> None:
    """A step cannot take its input from the group it is in, so `g` is not offered; the unnamed steps above it are
    offered by the index path that names them here."""
    assert _unknown_reference_message("zzz") == (
        "t.yaml:11:24: E201: g.2: unknown reference 'zzz'; visible here: x, stem; steps without an `id` are "
        "referenced by their index: 0, 1")


def test_an_unnamed_step_is_taken_by_its_index_path() -> None:
    """`from: 1` in a group is the group's unnamed step 1 (written as a number or quoted); from outside, `g.1`."""
    for ref in ("1", "'1'"):
        graph = compile_text(GROUPED.replace("REF", ref), "t.yaml").graph
        assert [n.name for n in graph.inputs_of("g.2")] == ["g.1", "stem"]
    outside = GROUPED.replace("REF", "1") + "  - add: {from: [g.1, g.0]}\n"
    graph = compile_text(outside, "t.yaml").graph
    assert [n.name for n in graph.inputs_of("2")] == ["g.1", "g.0"]


def test_index_paths_reach_into_unnamed_groups_stages_and_block_calls() -> None:
    text = """
name: t
inputs: {x: [8, 16, 16]}
blocks:
  b:
    body:
      - conv: {id: c-1, out: 8, k: 1}
      - relu
body:
  - group:
      id: features
      body:
        - group: {body: [relu, relu]}
        - stage: {block: b, repeat: 2}
        - add: {from: [1.1.c-1, 1.0.1]}
        - add: {from: ['0.1', '0.0']}
  - add: {from: [features.2, features.3]}
"""
    graph = compile_text(text, "t.yaml").graph
    assert [n.name for n in graph.inputs_of("features.2")] == ["features.1.1.c-1", "features.1.0.1"]
    assert [n.name for n in graph.inputs_of("features.3")] == ["features.0.1", "features.0.0"]
    assert [n.name for n in graph.inputs_of("1")] == ["features.2", "features.3"]


def test_an_index_path_written_as_a_decimal_number_is_refused_with_the_fix() -> None:
    with pytest.raises(SpecError) as info:
        compile_text(GROUPED.replace("REF", "1.0"), "t.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "t.yaml:11:24: E103: g.2: 'from': the index path 1.0 reads as a number; quote it ('1.0' as written, in "
        "quotes)"]


def test_residual_that_changes_the_shape_says_projection_is_the_fix() -> None:
    text = """
name: r
inputs: {x: [8, 16, 16]}
body:
  - residual: {id: res, body: [{conv: {out: 16, k: 3, s: 2, p: 1}}]}
  - residual: {body: [global_avgpool]}
"""
    with pytest.raises(SpecError) as info:
        compile_text(text, "r.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "r.yaml:5:5: E301: res: the residual's body turns [8, 16, 16] into [16, 8, 8], and the identity shortcut "
        "cannot be added to that; write `shortcut: projection` (a 1x1 convolution and batch norm where the shapes "
        "differ)"]
    fixed = compile_text(text.replace("p: 1}}]}", "p: 1}}], shortcut: projection}"))
    assert fixed.graph.node("res").out_type.shape == (16, 8, 8)  # and the broadcast residual after it is accepted


DEFAULTS = """
name: defaults
inputs: {x: [8, 16, 16]}
params: {base: 4}
blocks:
  unit:
    args: {out: int, mid: $out // 2, k: {type: int, default: "${base - 1}"}, p: $k // 2, s: "${in_channels // 8}"}
    body:
      - conv: {id: a, out: $mid, k: $k, p: $p, s: $s}
      - conv: {id: b, out: $out, k: 1}
body:
  - unit: {id: u1, out: 16}
  - unit: {id: u2, out: 32, mid: 4, k: 5}
"""


def test_block_argument_defaults_are_expressions_evaluated_in_order() -> None:
    """A default reads params, the input's shape and the arguments declared above it, given or defaulted."""
    g = compile_text(DEFAULTS).graph
    a1, a2 = g.node("u1.a").params, g.node("u2.a").params
    assert (a1.out, a1.k, a1.p, a1.s) == (8, 3, 1, 1)
    assert (a2.out, a2.k, a2.p, a2.s) == (4, 5, 2, 2)  # p from the given k; s from u2's 16 input channels
    assert g.node("u2.b").out_type.shape == (32, 8, 8)


def test_a_bad_default_is_reported_once_at_the_default() -> None:
    text = DEFAULTS.replace("mid: $out // 2", "mid: $ou // 2").replace('"${base - 1}"', '"${out / 2}"')
    text = text.replace("  - unit: {id: u2, out: 32, mid: 4, k: 5}", "  - stage: {id: s, block: unit, repeat: 3, "
                                                                       "args: {out: 8}}")
    with pytest.raises(SpecError) as info:
        compile_text(text, "d.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "d.yaml:7:27: E403: u1: default of argument 'mid': unknown name 'ou'; did you mean 'out'? (known names: base, "
        "in_channels, in_shape, out) (for the call on line 12)",
        "d.yaml:7:61: E106: u1: default of argument 'k' of block 'unit' expects int; found float 8.0 (for the call on "
        "line 12)"]


def test_expansion_count_evaluates_expression_defaults() -> None:
    """The count before lowering reads a repeat from a default expression, so the bomb is refused unbuilt."""
    text = """
name: bomb
inputs: {x: [8]}
blocks:
  unit:
    args: {n: 1000, copies: $n * n}
    body: [{stage: {repeat: $copies, body: [relu]}}]
body: [unit]
"""
    with pytest.raises(SpecError) as info:
        compile_text(text, "b.yaml", limits=DEFAULT_LIMITS.with_overrides({"max_layers": 999_999}))
    assert [d.format() for d in info.value.diagnostics] == [
        "b.yaml:8:8: E501: the model would have more than 999,999 layers after expanding blocks and repeats up to "
        "this step (limit max_layers)"]


# --- the shape of archc/lower/ ---------------------------------------------------------------------------------------

LOWER_DIR = Path(__file__).resolve().parent.parent / "archc" / "lower"


def _lower_modules() -> list[tuple[str, ast.Module]]:
    return [(str(p.relative_to(LOWER_DIR)), ast.parse(p.read_text(encoding="utf-8")))
            for p in sorted(LOWER_DIR.rglob("*.py"))]


def test_every_construct_is_registered_with_its_model_lowering_and_count() -> None:
    """One table: a construct of the spec model without its lowering or its budget count cannot be added."""
    assert set(CONSTRUCT_RULES) == set(CONSTRUCTS)
    for name, rule in CONSTRUCT_RULES.items():
        assert rule.model is CONSTRUCTS[name], name
        assert callable(rule.lower) and callable(rule.count), name
        assert rule.lower.__module__ == rule.count.__module__ == f"archc.lower.constructs.{name}", name
    assert {name: rule.count for name, rule in CONSTRUCT_RULES.items()} == CONSTRUCT_COUNTS


def test_lowering_has_no_deferred_imports_or_back_edges() -> None:
    """Modules of archc/lower/ import each other at the top only, never under `if TYPE_CHECKING:` or in a function,
    and never reach into another object's private attributes (the budget is written through its own methods)."""
    found: list[str] = []
    for name, tree in _lower_modules():
        top_level = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top_level:
                found.append(f"{name}:{node.lineno}: import below the top level")
            if isinstance(node, ast.Name) and node.id == "TYPE_CHECKING":
                found.append(f"{name}:{node.lineno}: TYPE_CHECKING")
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self")):
                found.append(f"{name}:{node.lineno}: private attribute {node.attr}")
    assert found == []


def test_lowering_modules_import_each_other_without_a_cycle() -> None:
    """The import graph of archc/lower/ is acyclic: constructs and block calls depend on the Lowering interface in
    context.py, and the lowerer on them."""
    graph = nx.DiGraph()
    for name, tree in _lower_modules():
        module = "archc.lower." + name.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        graph.add_node(module)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("archc.lower"):
                graph.add_edge(module, node.module)
    assert list(nx.simple_cycles(graph)) == []
    assert nx.has_path(graph, "archc.lower.lowerer", "archc.lower.constructs.stage")


@pytest.mark.parametrize(("raw", "parsed"), [
    ("relu", Step("relu", {}, {}, keyed=False)),
    ({"relu": None}, Step("relu", {}, {}, keyed=True)),
    ({"conv": {"id": "c", "out": 4, "if": True}}, Step("conv", {"id": "c", "out": 4, "if": True},
                                                       {"id": "c", "if": True}, keyed=True)),
    ({"conv": 3}, BadStep({"conv": 3}, "conv")),
    ({"conv": {}, "relu": {}}, BadStep({"conv": {}, "relu": {}})),
    (7, BadStep(7)),
])
def test_one_step_parser(raw: object, parsed: Step | BadStep) -> None:
    assert parse_step(raw) == parsed


def test_a_step_that_is_not_one_is_reported_by_lowering_and_counted_as_nothing() -> None:
    """The same parse feeds both: lowering locates the bad step, the budget counts only the list item."""
    text = "name: t\ninputs: {x: [4]}\nbody:\n  - relu\n  - {relu: 3}\n"
    with pytest.raises(SpecError) as info:
        compile_text(text, "s.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "s.yaml:5:12: E103: 'relu' takes a mapping of parameters; found int 3"]
    header = SpecHeader.model_validate({"name": "t", "inputs": {"x": [4]}, "body": ["relu", {"relu": 3}]})
    assert Counter(header, {}, DEFAULT_LIMITS, CONSTRUCT_COUNTS).steps(header.body, {}, ()) == (1, 2)


def test_the_lowerer_provides_the_interface_constructs_use() -> None:
    """Constructs and block calls see the lowerer through the Lowering protocol: every member it names exists."""
    compiled = compile_text("name: t\ninputs: {x: [4]}\nbody: [relu]\n")
    lowerer = Lowerer(compiled.header, compiled.params, Reporter(compiled.doc), DEFAULT_LIMITS, "t.yaml")
    members = {name for name in vars(Lowering) if not name.startswith("_")} | set(Lowering.__annotations__)
    assert {"steps", "add_node", "budget", "graph", "report"} <= members
    assert sorted(name for name in members if not hasattr(lowerer, name)) == []
