"""Jinja2's sandbox with a work budget and size checks: every render ends, small. Pure.

Jinja's own sandbox refuses attribute escapes but not unbounded work (``range(10**8)``,
``'x' * 10**8``, loops of 10^5 nested in loops of 10^5). Here every render spends from the
budget of ``definition/template_budget.py``: loops are counted by rewriting the parsed
template (each ``for`` iterable goes through the ``pp_loop`` filter, recursive loop and macro
bodies start with a ``pp_tick``, ``~`` concatenations end in ``pp_sized``), every filter is
wrapped, and calls and the operators that build (``*``, ``**``, ``+``, ``%``) are intercepted.
``lipsum`` and the ``random`` filter are removed: they are random, and a workflow must render
the same text on every replay.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jinja2 import nodes, pass_context
    from jinja2.runtime import Context, LoopContext, Macro
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import _PassArg
    from jinja2.visitor import NodeTransformer

from definition.template_budget import (
    BUDGET,
    CHARS_PER_OPERATION,
    MAX_MACRO_DEPTH,
    SIZED_FILTERS,
    TemplateLimitExceeded,
    check_binop,
    check_call,
    check_filter,
    weight,
)


def _guarded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 0 if _PassArg.from_obj(func) is None else 1
    label = f"the {name} filter"
    sized = name in SIZED_FILTERS

    @wraps(func)  # keeps the pass_context / pass_environment marker
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = BUDGET.get()
        if budget is None:  # never folded into a constant while compiling, unchecked
            raise nodes.Impossible()
        budget.spend(1)
        if sized:
            check_filter(budget, name, args[skip:], kwargs)
        worked_on = weight(args[skip]) if len(args) > skip else 0
        return budget.built(func(*args, **kwargs), label, worked_on)

    return guarded


def _range(*args: int) -> range:
    numbers = range(*args)
    budget = BUDGET.get()
    if budget is not None:
        try:
            size = len(numbers)
        except OverflowError:
            size = sys.maxsize
        if size > budget.left:
            raise TemplateLimitExceeded(
                f"range() of {size:,} numbers would take the template past the "
                f"{budget.max_operations:,} operations it may do "
                "(limits.template_max_operations)")
    return numbers


@pass_context  # never folded into a constant while compiling: every render pays
def _loop(context: Context, iterable: Any, per_item: int = 1) -> Any:
    del context
    budget = BUDGET.get()
    if budget is None:
        return iterable
    try:
        size = len(iterable)
    except TypeError:
        return budget.counted(iterable, per_item)
    budget.spend(size * per_item)
    return iterable


@pass_context
def _tick(context: Context, value: str, cost: int) -> str:
    del context
    budget = BUDGET.get()
    if budget is not None:
        budget.spend(cost)
    return value


@pass_context
def _sized(context: Context, value: Any) -> Any:
    del context
    budget = BUDGET.get()
    return value if budget is None else budget.built(value, "'~'")


def _literal_chars(body: list[nodes.Node]) -> int:
    """Literal text a body emits itself (nested loops and macros pay for their own)."""
    total = 0
    for node in body:
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif not isinstance(node, nodes.For | nodes.Macro | nodes.CallBlock):
            total += _literal_chars(list(node.iter_child_nodes()))
    return total


def _tick_node(body: list[nodes.Node], lineno: int) -> nodes.Output:
    cost = 1 + _literal_chars(body) // CHARS_PER_OPERATION
    return nodes.Output([nodes.Filter(nodes.Const(""), "pp_tick", [nodes.Const(cost)], [],
                                      None, None, lineno=lineno)], lineno=lineno)


class _Counting(NodeTransformer):
    """Routes loops, macro bodies and ``~`` through the budget's filters."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        if node.recursive:  # the loop's own recursive calls never pass its iterable again
            node.body.insert(0, _tick_node(node.body, node.lineno))
        else:
            cost = 1 + _literal_chars(node.body) // CHARS_PER_OPERATION
            node.iter = nodes.Filter(node.iter, "pp_loop", [nodes.Const(cost)], [], None,
                                     None, lineno=node.lineno)
        return node

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        self.generic_visit(node)
        node.body.insert(0, _tick_node(node.body, node.lineno))
        return node

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        self.generic_visit(node)
        node.body.insert(0, _tick_node(node.body, node.lineno))
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, "pp_sized", [], [], None, None, lineno=node.lineno)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every render's work and sizes bounded."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)
        self.filters.pop("random", None)
        self.globals["range"] = _range

    def guard_filters(self) -> None:
        """Wrap every registered filter (call after adding our own)."""
        self.filters = {name: _guarded_filter(name, func) for name, func in self.filters.items()}
        self.filters.update(pp_loop=_loop, pp_tick=_tick, pp_sized=_sized)

    def written(self, source: str) -> nodes.Template:
        """The syntax tree as written, before the budget's rewriting."""
        return super()._parse(source, None, None)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        counted = _Counting().visit(super()._parse(source, name, filename))
        counted.set_environment(self)
        return counted  # type: ignore[no-any-return]

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse an operator whose result would be too large, then apply it."""
        budget = BUDGET.get()
        if budget is None:
            return self.binop_table[operator](left, right)
        check_binop(budget, operator, left, right)
        return budget.built(self.binop_table[operator](left, right), f"'{operator}'")

    def call(__self, __context: Context, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        """Pay for the call, refuse paddings and widths over the limit, nest macros only
        so deep, and check what the call built."""
        budget = BUDGET.get()
        if budget is None:
            return super().call(__context, __obj, *args, **kwargs)
        budget.spend(1)
        if not isinstance(__obj, Macro | LoopContext):
            worked_on = check_call(budget, __obj, args, kwargs)
            return budget.built(super().call(__context, __obj, *args, **kwargs), "a call",
                                worked_on)
        if budget.depth >= MAX_MACRO_DEPTH:
            raise TemplateLimitExceeded(
                f"macros or recursive loops nested more than {MAX_MACRO_DEPTH} deep")
        budget.depth += 1
        try:  # their text was paid for as it was written (ticks, finalize)
            return budget.built(super().call(__context, __obj, *args, **kwargs),
                                "a macro", paid=True)
        finally:
            budget.depth -= 1
