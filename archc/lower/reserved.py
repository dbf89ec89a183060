"""Ids that cannot name a PyTorch module: attributes of ``nn.Module``, ``nn.ModuleDict`` and ``nn.Sequential``.

One rule for `archc check` (which applies it without importing torch) and the PyTorch emitter, so that a spec that
checks also exports: every attribute, public or private, that these classes or a fresh instance have (PyTorch's
``add_module`` refuses those), and every dunder name (``__init__``, ``__dict__``, ``__call__``; Python's own). A test
keeps the list equal to the attributes of the installed torch.
"""

from __future__ import annotations

import re

_DUNDER = re.compile(r"__\w+__")

_MODULE_ATTRIBUTES = frozenset({
    "add_module", "append", "_apply", "apply", "_backward_hooks", "_backward_pre_hooks", "bfloat16", "_buffers",
    "buffers", "_call_impl", "call_super_init", "children", "clear", "compile", "_compiled_call_impl", "cpu", "cuda",
    "double", "dump_patches", "eval", "extend", "extra_repr", "float", "forward", "_forward_hooks",
    "_forward_hooks_always_called", "_forward_hooks_with_kwargs", "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs", "_get_backward_hooks", "_get_backward_pre_hooks", "get_buffer",
    "get_extra_state", "_get_item_by_idx", "_get_name", "get_parameter", "get_submodule", "half", "insert", "ipu",
    "_is_full_backward_hook", "items", "keys", "_load_from_state_dict", "load_state_dict",
    "_load_state_dict_post_hooks", "_load_state_dict_pre_hooks", "_maybe_warn_non_full_backward_hook", "_modules",
    "modules", "mtia", "named_buffers", "named_children", "_named_members", "named_modules", "named_parameters",
    "_non_persistent_buffers_set", "_parameters", "parameters", "pop", "register_backward_hook", "register_buffer",
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "_register_load_state_dict_pre_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter", "_register_state_dict_hook",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "_replicate_for_data_parallel",
    "requires_grad_", "_save_to_state_dict", "set_extra_state", "set_submodule", "share_memory", "_slow_forward",
    "state_dict", "_state_dict_hooks", "_state_dict_pre_hooks", "T_destination", "to", "to_empty", "train",
    "training", "type", "update", "values", "_version", "_wrapped_call_impl", "xpu", "zero_grad",
})
"""The non-dunder attributes of ``nn.Module()``, ``nn.ModuleDict()`` and ``nn.Sequential()`` (class and instance)."""


class ReservedNames(frozenset[str]):
    """The listed attribute names, and (by pattern, so none can be missing) every dunder name."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (frozenset.__contains__(self, name) or _DUNDER.fullmatch(name) is not None)


RESERVED_MODULE_NAMES = ReservedNames(_MODULE_ATTRIBUTES)


def is_reserved_module_name(name: str) -> bool:
    """True when ``name`` cannot name a layer of the generated PyTorch module."""
    return name in RESERVED_MODULE_NAMES
