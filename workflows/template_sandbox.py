"""Jinja2's sandbox with a work budget and size checks: every render ends, small. Pure.

Jinja's own sandbox refuses attribute escapes but not unbounded work (``range(10**8)``,
``'x' * 10**8``, loops nested 10^5 deep in each other). Here every render spends from a
``Budget`` of ``template_max_operations``, counted, never timed, so a replay agrees:

- a loop iteration costs 1, plus 1 per 100 characters of literal text in its body;
- a call (functions, methods, macros) or a filter costs 1, plus 1 per item or per 100
  characters of the value it works on; a value built costs 1 per item or per 100 characters;
- no string, list or rendered output may grow past ``template_max_output_chars``, checked
  before ``*``, ``+``, ``%``, widths and paddings build it; integers stay under
  ``MAX_INT_BITS``; macros nest at most ``MAX_MACRO_DEPTH`` deep (before Python's own
  recursion limit, which depends on the caller's stack, could decide differently on replay).

The loops are counted by rewriting the parsed template: each ``for`` iterable goes through
the ``pp_loop`` filter, recursive loop and macro bodies start with a ``pp_tick``, and ``~``
concatenations end in ``pp_sized``. ``lipsum`` and the ``random`` filter are removed: they
are random, and a workflow must render the same text on every replay.
"""

from __future__ import annotations

import re
import string
import sys
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from functools import wraps
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jinja2 import nodes, pass_context
    from jinja2.runtime import Context, LoopContext, Macro
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import _PassArg
    from jinja2.visitor import NodeTransformer

    from schema.run import RunLimits

MAX_INT_BITS = 16_384
"""Largest integer a template may compute (~4,900 digits; Python prints at most 4,300)."""
MAX_MACRO_DEPTH = 64
"""Deepest nesting of macro calls and recursive loop calls in one render."""
CHARS_PER_OPERATION = 100

_BUDGET: ContextVar[Budget | None] = ContextVar("promptpilot_template_budget", default=None)
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})
_SIZED_FILTERS = frozenset({"center", "batch", "slice", "indent", "replace", "format"})


class TemplateLimitExceeded(Exception):
    """A render went over one of its limits (``templates.TemplateError`` wraps it)."""


class Budget:
    """What one render may still do; lives for one render in one thread."""

    __slots__ = ("depth", "left", "max_chars", "max_operations")

    def __init__(self, limits: RunLimits) -> None:
        self.max_operations = self.left = limits.template_max_operations
        self.max_chars = limits.template_max_output_chars
        self.depth = 0

    def spend(self, operations: int) -> None:
        """Count work; over the budget the render stops."""
        self.left -= operations
        if self.left < 0:
            raise TemplateLimitExceeded(
                f"the template did more than {self.max_operations:,} operations (loop "
                "iterations, calls and the values they work on; "
                "limits.template_max_operations)")

    def refuse_size(self, size: int, what: str) -> None:
        """Stop before building a value longer than the output limit."""
        if size > self.max_chars:
            raise TemplateLimitExceeded(
                f"{what} would be {size:,} characters or items long, over the "
                f"{self.max_chars:,} a template may build (limits.template_max_output_chars)")

    def built(self, value: Any, what: str, worked_on: int = 0, *, paid: bool = False) -> Any:
        """Check a value just built and pay for it: its own weight or ``worked_on``, the
        weight of what it was made from, whichever is more (nothing more when ``paid``)."""
        cost = 0  # a range is lazy: its loop pays for it
        if type(value) is str:  # the common case first: this runs for every call and filter
            if len(value) > self.max_chars:
                self.refuse_size(len(value), what)
            cost = len(value) // CHARS_PER_OPERATION
        elif isinstance(value, list | tuple | dict):
            self.refuse_size(len(value), what)
            cost = len(value)
        elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise TemplateLimitExceeded(f"{what} made an integer over {MAX_INT_BITS:,} bits")
        elif isinstance(value, str):
            self.refuse_size(len(value), what)
            cost = len(value) // CHARS_PER_OPERATION
        if not paid and (cost or worked_on):
            self.spend(max(worked_on, cost))
        return value

    def counted(self, iterable: Iterable[Any], per_item: int) -> Iterator[Any]:
        """An iterable without a length, paid for item by item."""
        for item in iterable:
            self.spend(per_item)
            yield item


def current_budget() -> Budget | None:
    """The budget of the render running in this thread, if any."""
    return _BUDGET.get()


def start_budget(limits: RunLimits) -> Any:
    """Open a budget for one render; pass the token to ``end_budget``."""
    return _BUDGET.set(Budget(limits))


def end_budget(token: Any) -> None:
    """Close the render's budget."""
    _BUDGET.reset(token)


def weight(value: Any) -> int:
    """What working on a value costs: 1 per item, or per 100 characters."""
    if isinstance(value, str):
        return len(value) // CHARS_PER_OPERATION
    if isinstance(value, list | tuple | dict | set | frozenset | range):
        return len(value)
    return 0


def _int_args(budget: Budget, args: Iterable[Any], what: str) -> None:
    for value in args:
        if isinstance(value, int) and not isinstance(value, bool):
            budget.refuse_size(value, what)


def _check_format(budget: Budget, fmt: str, args: Any) -> None:
    """``str.format`` widths and precisions (nested ones come from the arguments)."""
    for _, _, spec, _ in string.Formatter().parse(fmt):
        if not spec:
            continue
        for number in _DIGITS.findall(spec):
            budget.refuse_size(int(number), "a format width")
        if "{" in spec:
            _int_args(budget, args, "a format width")


def _check_printf(budget: Budget, fmt: str, args: Any) -> None:
    """``%`` formatting widths and precisions; ``*`` takes them from the arguments."""
    for width, precision in _PRINTF.findall(fmt):
        for number in (width, precision):
            if number == "*":
                values = args if isinstance(args, tuple | list) else (args,)
                _int_args(budget, values, "a format width")
            elif number:
                budget.refuse_size(int(number), "a format width")


def _check_replace(budget: Budget, text: Any, old: Any, new: Any, count: Any = None) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    budget.refuse_size(len(text) + found * (len(new) - len(old)), "replace()")


def _check_binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        seq, times = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            budget.refuse_size(len(seq) * times, "'*'")
        elif isinstance(left, int) and isinstance(right, int) \
                and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimitExceeded(f"'*' would make an integer over {MAX_INT_BITS:,} bits")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1 \
                and right * left.bit_length() > MAX_INT_BITS:
            raise TemplateLimitExceeded(f"'**' would make an integer over {MAX_INT_BITS:,} bits")
    elif operator == "+":
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            budget.refuse_size(len(left) + len(right), "'+'")
    elif operator == "%" and isinstance(left, str):
        _check_printf(budget, left, right)


def _check_call(budget: Budget, obj: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> int:
    """Refuse a call that would build too much; returns the weight of what it works on."""
    wrapped = getattr(obj, "__wrapped__", None)  # the sandbox's str.format / format_map
    owner = getattr(wrapped if wrapped is not None else obj, "__self__", None)
    if not isinstance(owner, str):
        return 0
    name = getattr(obj, "__name__", "")
    if name in _PADDING_METHODS:
        _int_args(budget, [*args, *kwargs.values()], f"{name}()")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            budget.refuse_size(len(owner) + owner.count("\t") * size, "expandtabs()")
    elif name == "replace" and len(args) >= 2:
        _check_replace(budget, owner, *args[:3])
    elif name in ("format", "format_map"):
        _check_format(budget, owner, [*args, *kwargs.values()])
    return max(weight(owner), weight(args[0]) if name == "join" and args else 0)


def _check_filter(budget: Budget, name: str, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> None:
    """Refuse a filter whose size argument would build too much."""
    value = args[0] if args else None
    if name in ("center", "batch", "slice"):
        _int_args(budget, [*args[1:], *kwargs.values()], f"the {name} filter")
    elif name == "indent" and isinstance(value, str):
        width = args[1] if len(args) > 1 else kwargs.get("width", 4)
        if isinstance(width, int):
            budget.refuse_size(len(value) + (value.count("\n") + 1) * width, "the indent filter")
    elif name == "replace" and len(args) >= 3:
        _check_replace(budget, *args[:4])
    elif name == "format" and isinstance(value, str):
        _check_printf(budget, value, tuple(args[1:]) or tuple(kwargs.values()))


def _guarded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 0 if _PassArg.from_obj(func) is None else 1
    label = f"the {name} filter"
    sized = name in _SIZED_FILTERS

    @wraps(func)  # keeps the pass_context / pass_environment marker
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        if budget is None:  # never folded into a constant while compiling, unchecked
            raise nodes.Impossible()
        budget.spend(1)
        if sized:
            _check_filter(budget, name, args[skip:], kwargs)
        worked_on = weight(args[skip]) if len(args) > skip else 0
        return budget.built(func(*args, **kwargs), label, worked_on)

    return guarded


def _range(*args: int) -> range:
    numbers = range(*args)
    budget = _BUDGET.get()
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
    budget = _BUDGET.get()
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
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(cost)
    return value


@pass_context
def _sized(context: Context, value: Any) -> Any:
    del context
    budget = _BUDGET.get()
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
        budget = _BUDGET.get()
        if budget is None:
            return self.binop_table[operator](left, right)
        _check_binop(budget, operator, left, right)
        return budget.built(self.binop_table[operator](left, right), f"'{operator}'")

    def call(__self, __context: Context, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        """Pay for the call, refuse paddings and widths over the limit, nest macros only
        so deep, and check what the call built."""
        budget = _BUDGET.get()
        if budget is None:
            return super().call(__context, __obj, *args, **kwargs)
        budget.spend(1)
        if not isinstance(__obj, Macro | LoopContext):
            worked_on = _check_call(budget, __obj, args, kwargs)
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
