"""The depth-fold rule, one for ``archc summary --depth N`` and ``archc draw --depth N``.

Depth N shows the scopes at nesting level N (1 = the top level) as one row or one drawn node standing for every layer
inside them; layers in shallower scopes are shown one by one. Depth 0 is the model as one row (the summary's own case;
a diagram draws it as depth 1).
"""

from __future__ import annotations

from collections.abc import Sequence

from archc.ir.graph import Scope


def folded_at(chain: Sequence[str], depth: int | None) -> str | None:
    """The scope at nesting level ``depth`` in ``chain`` (a layer's scopes, outermost first), which stands for the
    layer; None when the layer is shown itself (no depth, or the layer is shallower)."""
    if depth is None or len(chain) < depth:
        return None
    return chain[depth - 1]


def scope_caption(scope: Scope) -> str:
    """What a folded scope is: its label (the block's name) when that says more than its path's last part, else its
    kind (``stage``, ``group``...)."""
    return scope.label if scope.label and scope.label != scope.path.rsplit(".", 1)[-1] else scope.kind
