"""Writes a class's ``forward``: one statement per computed item, with the variable-name allocator.

Variable names: a value takes over the name of an input that dies at its statement (the oldest such name, so the main
trunk keeps ``x``); otherwise it is called ``x`` when that name is free, else by the shortest tail of its path that no
live value uses (``conv1``, then ``layer1_0_conv1``). Values that die without being taken over are released with
``del``, as torch.fx frees dead values, so peak memory is what the data flow needs. An item whose forward is its input
unchanged (``identity``) shares its input's variable. Items with no path to an output are not computed.

Items present only in some instances of a block (a projection shortcut) form a chain guarded by ``if``: they rebind
their input's variable, so after the ``if`` it holds the chain's output or, without the chain, its input.
"""

from __future__ import annotations

from collections.abc import Callable

from archc.passes.schedule import needed
from archc.text_escape import python_comment

from .body import Body, Item
from .parts import PartRun, part_names, part_runs
from .text import INDENT, RECORD, RESERVED, fit, literal, module_ref, with_comment

_CHAIN = "x"


class Forward:
    def __init__(self, body: Body, trace: bool, comment: Callable[[Item], str],
                 section: Callable[[Item, set[str]], list[str]] | None = None) -> None:
        self.body = body
        self.trace = trace
        self.comment = comment
        self.section = section
        self.items = {item.name: item for item in body.items}
        self.input_keys = {key for key, _ in body.inputs}
        self.var: dict[str, str] = {}
        """Value (an alias root) -> the variable holding it."""
        self.root: dict[str, str] = {}
        """Item -> the item whose value it is (itself unless it is an alias or a guarded chain's)."""
        self.aliases: set[str] = set()
        self.chain_end: dict[str, bool] = {}
        """Value rebound by a guarded chain -> whether the chain's output may be overwritten."""
        self.live: set[str] = set()
        self.age: dict[str, int] = {}
        """Variable name -> when its current value stream began (the oldest dying input's name is taken over)."""
        self.clock = 0
        self.issued: set[str] = set()
        self.args = self._arg_names()

    def _arg_names(self) -> list[str]:
        args: list[str] = []
        for key, name in self.body.inputs:
            base = name if name.isidentifier() else f"input_{name}"
            base = base + "_" if base in RESERVED else base
            arg = self._unique(base)
            self.issued.add(arg)
            self.var[key] = arg
            args.append(arg)
            if not self.body.inputs_are_arguments:
                self.live.add(arg)
                self.age[arg] = 0
        return args

    def _unique(self, base: str) -> str:
        candidate, k = base, 1
        while candidate in self.issued or candidate in self.live or candidate in RESERVED:
            k += 1
            candidate = f"{base}_{k}"
        return candidate

    def _fresh_name(self, item: Item) -> str:
        """``x`` when free, else the shortest tail of the item's path that is no live variable's name."""
        for name in (_CHAIN, *_path_names(item)):
            if name not in self.live and name not in self.args and name not in RESERVED:
                return name
        name = self._unique(f"{item.label}_{item.name.replace('.', '_')}")
        self.issued.add(name)
        return name

    def _is_argument(self, key: str) -> bool:
        return key in self.input_keys and self.body.inputs_are_arguments

    def statements(self) -> tuple[list[str], int]:
        """The body of ``forward`` (indented by one level) and the number of items not computed."""
        computed = self._computed()
        order = [item for item in self.body.items if item.name in computed]
        self._find_aliases(order)
        last_use = self._last_uses(order)
        runs = part_runs(order, self.root, self.aliases)
        in_runs = {i for run in runs.values() for i in range(run.start + 1, run.start + len(run.items))}
        out: list[str] = []
        if self.trace:
            out.extend(f"{RECORD}({literal(key)}, {self.var[key]})" for key, _ in self.body.inputs)
        seen: set[str] = set()
        guard = ""
        previous = ""
        for i, item in enumerate(order):
            if i in in_runs:
                continue  # written with the first part of its run
            lines = self._parts_statement(runs[i], last_use) if i in runs else self._statement(item, i, last_use)
            if not lines:
                continue
            comment = self.comment(item)
            if comment == previous:
                comment = ""  # one comment per spec line, not one per statement it makes
            else:
                previous = comment
            head = self.section(item, seen) if self.section else []
            if item.guard != guard:
                guard = item.guard
                if guard:
                    head.append(f"if self.{self.body.guards[guard]} is not None:")
            pad = INDENT if item.guard else ""
            out.extend(head)
            out.extend(with_comment(pad + lines[0], comment, 2 * len(INDENT)))
            for line in lines[1:]:
                out.extend(fit(pad + line, 2 * len(INDENT)))
        if out[:1] == [""]:  # no blank line right under the docstring
            del out[0]
        out.extend(self._return())
        return out, len(self.body.items) - len(order)

    def _computed(self) -> set[str]:
        """The items some output needs: the graph schedule's liveness policy (archc/passes/schedule.py) applied to
        this class's own items, so model.py computes the layers the ONNX graph has."""
        if self.trace:
            return set(self.items)
        outputs = [src for src in self.body.outputs.values() if src in self.items]
        return needed(outputs, lambda name: [s for s in self.items[name].sources if s in self.items])

    def _find_aliases(self, order: list[Item]) -> None:
        """Items whose forward is their input unchanged share its variable; so do the items of a guarded chain."""
        self.root = {key: key for key in self.input_keys}
        for item in order:
            if item.guard or (item.code.module is None and item.code.call == "{0}" and not item.code.steps):
                self.aliases.add(item.name)
                self.root[item.name] = self.root[item.sources[0]]
                if item.guard:  # the value is the chain's last output, or its input without the chain
                    self.chain_end[self.root[item.name]] = item.overwritable
            else:
                self.root[item.name] = item.name

    def _last_uses(self, order: list[Item]) -> dict[str, float]:
        """Value (alias root) -> index of the last statement reading it; outputs live to the end."""
        last: dict[str, float] = {}
        for i, item in enumerate(order):
            if item.name in self.aliases and not item.guard:
                if self.trace:  # its record reads the shared value here
                    last[self.root[item.name]] = i
                continue
            last.setdefault(item.name, i)  # unused (trace mode only): dead right after its own statement
            for src in item.sources:
                last[self.root[src]] = i
        for src in self.body.outputs.values():
            last[self.root[src]] = float("inf")
        return last

    def signature(self) -> str:
        params = ["self", *(f"{a}: torch.Tensor" for a in self.args)]
        if self.trace:
            params += ["*", RECORD]
        return ", ".join(params)

    def _statement(self, item: Item, i: int, last_use: dict[str, float]) -> list[str]:
        sources = [self.root[s] for s in item.sources]
        dying = [s for s in dict.fromkeys(sources) if last_use[s] == i and not self._is_argument(s)]
        if item.guard:  # rebinds its input's variable, which lives on as the chain's value
            var = self.var[sources[0]]
            steps, temps = self._steps(item, [var])
            call = item.code.call.format(var, m=module_ref(item.name), **temps)
            return [*steps, f"{var} = {call}", *self._release(list(temps.values()))]
        if item.name in self.aliases:
            lines = [f"{RECORD}({literal(item.record)}, {self.var[sources[0]]})"] if self.trace else []
            freed = [self.var[s] for s in dying]
        else:
            code = item.code
            form = code.inplace if code.inplace is not None and self._may_overwrite(sources, dying) else code.call
            steps, temps = self._steps(item, [self.var[s] for s in sources])
            call = form.format(*(self.var[s] for s in sources), m=module_ref(item.name), **temps)
            if dying:
                target = min((self.var[s] for s in dying), key=lambda v: self.age[v])
            else:
                target = self._fresh_name(item)
                self.clock += 1
                self.age[target] = self.clock
                self.live.add(target)
            self.var[item.name] = target
            lines = [*steps, f"{target} = {call}"]
            freed_temps = list(temps.values())
            if self.trace:
                lines.append(f"{RECORD}({literal(item.record)}, {target})")
            freed = [*freed_temps, *(self.var[s] for s in dying if self.var[s] != target)]
            if last_use[item.name] == i:  # computed for the trace only
                freed.append(target)
        for name in freed:
            self.live.discard(name)
        if freed:
            lines.append(f"del {', '.join(freed)}")
        return lines

    def _parts_statement(self, run: PartRun, last_use: dict[str, float]) -> list[str]:
        """One statement for a run of slices cutting a value into parts: ``qkv_0, qkv_1, qkv_2 = x.chunk(3, dim=-1)``;
        each part has a name of its own (the parts are views: the value's storage lives while one does)."""
        source = self.root[run.items[0].sources[0]]
        var = self.var[source]
        end = run.start + len(run.items) - 1
        targets: list[str] = []
        for item in run.items:
            free = [n for n in part_names(item) if n not in self.live and n not in self.args and n not in RESERVED]
            target = free[0] if free else self._fresh_name(item)
            self.clock += 1
            self.age[target] = self.clock
            self.live.add(target)
            self.var[item.name] = target
            targets.append(target)
        lines = [f"{', '.join(targets)} = {run.call.format(var)}"]
        if self.trace:
            lines += [f"{RECORD}({literal(item.record)}, {t})" for item, t in zip(run.items, targets, strict=True)]
        freed = [t for k, (item, t) in enumerate(zip(run.items, targets, strict=True))
                 if last_use[item.name] == run.start + k]  # computed for the trace only
        if last_use[source] <= end and not self._is_argument(source):
            freed.append(var)
        for name in freed:
            self.live.discard(name)
        return [*lines, f"del {', '.join(freed)}"] if freed else lines

    def _steps(self, item: Item, inputs: list[str]) -> tuple[list[str], dict[str, str]]:
        """A composite's statements before its call, and its temporaries' variables by hint: fresh names no live
        value or argument has (``q``, ``q_2``...), live until the layer's statement is done."""
        temps: dict[str, str] = {}
        lines = []
        for hint, expression in item.code.steps:
            name, k = hint, 1
            while name in self.live or name in self.args or name in RESERVED:
                k += 1
                name = f"{hint}_{k}"
            self.live.add(name)  # the layer's own result must not take the name
            temps[hint] = name
            lines.append(f"{name} = {expression.format(*inputs, m=module_ref(item.name), **temps)}")
        return lines, temps

    def _release(self, names: list[str]) -> list[str]:
        for name in names:
            self.live.discard(name)
        return [f"del {', '.join(names)}"] if names else []

    def _may_overwrite(self, sources: list[str], dying: list[str]) -> bool:
        """Whether an item may use its in-place form: its first input is read by nothing after it (not an output, not
        an input, not its own other inputs) and comes from an op whose output autograd does not keep (traces keep
        every value)."""
        if self.trace or sources[0] not in dying or sources[0] in sources[1:] or sources[0] in self.input_keys:
            return False
        return self.items[sources[0]].overwritable and self.chain_end.get(sources[0], True)

    def _return(self) -> list[str]:
        values = [self.var[self.root[src]] for src in self.body.outputs.values()]
        if len(values) == 1:
            return [f"return {values[0]}"]
        return [f"# outputs in the spec's order: {', '.join(python_comment(o) for o in self.body.outputs)}",
                f"return {', '.join(values)}"]


def _path_names(item: Item) -> list[str]:
    """Candidate variable names from the path, shortest first: ``conv1``, ``0_conv1`` (skipped: not an identifier),
    ``layer1_0_conv1``; anonymous steps (numeric names) say their op: ``relu``, ``relu_2``, ..."""
    parts = item.name.split(".")
    tails = ["_".join(parts[-k:]) for k in range(1, len(parts) + 1)]
    if parts[-1].isdigit():
        tails = [item.label, *(f"{item.label}_{t}" for t in tails)]
    return [t for t in tails if t.isidentifier()]
