"""The work budget and size checks of one template render. Pure.

A render spends from a ``Budget`` of ``template_max_operations``, counted, never timed, so a
replay agrees: a loop iteration costs 1 (plus 1 per 100 characters of literal text in its
body); a call or a filter costs 1, plus 1 per item or per 100 characters of the value it works
on or builds, whichever is more. No string, list or rendered output may grow past
``template_max_output_chars``: the checks here refuse ``*``, ``+``, ``%``, format widths,
paddings and ``replace`` before they build it. Integers stay under ``MAX_INT_BITS``; macros
nest at most ``MAX_MACRO_DEPTH`` deep (before Python's own recursion limit, which depends on
the caller's stack, could decide differently on replay). The budget of the render running in
a thread is a context variable: one worker renders in several threads.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():

    from schema.run import RunLimits

MAX_INT_BITS = 16_384
"""Largest integer a template may compute (~4,900 digits; Python prints at most 4,300)."""
MAX_MACRO_DEPTH = 64
"""Deepest nesting of macro calls and recursive loop calls in one render."""
CHARS_PER_OPERATION = 100

BUDGET: ContextVar[Budget | None] = ContextVar("promptpilot_template_budget", default=None)
"""The budget of the render running in this thread (None outside a render)."""
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")
PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})
SIZED_FILTERS = frozenset({"center", "batch", "slice", "indent", "replace", "format"})


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
    return BUDGET.get()


def start_budget(limits: RunLimits) -> Any:
    """Open a budget for one render; pass the token to ``end_budget``."""
    return BUDGET.set(Budget(limits))


def end_budget(token: Any) -> None:
    """Close the render's budget."""
    BUDGET.reset(token)


def weight(value: Any) -> int:
    """What working on a value costs: 1 per item, or per 100 characters."""
    if isinstance(value, str):
        return len(value) // CHARS_PER_OPERATION
    if isinstance(value, list | tuple | dict | set | frozenset | range):
        return len(value)
    return 0


def int_args(budget: Budget, args: Iterable[Any], what: str) -> None:
    """Refuse any integer argument that is over the size limit (a width, a count)."""
    for value in args:
        if isinstance(value, int) and not isinstance(value, bool):
            budget.refuse_size(value, what)


def check_format(budget: Budget, fmt: str, args: Any) -> None:
    """``str.format`` widths and precisions (nested ones come from the arguments)."""
    for _, _, spec, _ in string.Formatter().parse(fmt):
        if not spec:
            continue
        for number in _DIGITS.findall(spec):
            budget.refuse_size(int(number), "a format width")
        if "{" in spec:
            int_args(budget, args, "a format width")


def check_printf(budget: Budget, fmt: str, args: Any) -> None:
    """``%`` formatting widths and precisions; ``*`` takes them from the arguments."""
    for width, precision in _PRINTF.findall(fmt):
        for number in (width, precision):
            if number == "*":
                values = args if isinstance(args, tuple | list) else (args,)
                int_args(budget, values, "a format width")
            elif number:
                budget.refuse_size(int(number), "a format width")


def check_replace(budget: Budget, text: Any, old: Any, new: Any, count: Any = None) -> None:
    """Refuse a ``replace`` whose result would be over the size limit."""
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    budget.refuse_size(len(text) + found * (len(new) - len(old)), "replace()")


def check_binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    """Refuse ``*``, ``**``, ``+`` or ``%`` whose result would be over the limits."""
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
        check_printf(budget, left, right)


def check_call(budget: Budget, obj: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> int:
    """Refuse a call that would build too much; returns the weight of what it works on."""
    wrapped = getattr(obj, "__wrapped__", None)  # the sandbox's str.format / format_map
    owner = getattr(wrapped if wrapped is not None else obj, "__self__", None)
    if not isinstance(owner, str):
        return 0
    name = getattr(obj, "__name__", "")
    if name in PADDING_METHODS:
        int_args(budget, [*args, *kwargs.values()], f"{name}()")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            budget.refuse_size(len(owner) + owner.count("\t") * size, "expandtabs()")
    elif name == "replace" and len(args) >= 2:
        check_replace(budget, owner, *args[:3])
    elif name in ("format", "format_map"):
        check_format(budget, owner, [*args, *kwargs.values()])
    return max(weight(owner), weight(args[0]) if name == "join" and args else 0)


def check_filter(budget: Budget, name: str, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> None:
    """Refuse a filter whose size argument would build too much."""
    value = args[0] if args else None
    if name in ("center", "batch", "slice"):
        int_args(budget, [*args[1:], *kwargs.values()], f"the {name} filter")
    elif name == "indent" and isinstance(value, str):
        width = args[1] if len(args) > 1 else kwargs.get("width", 4)
        if isinstance(width, int):
            budget.refuse_size(len(value) + (value.count("\n") + 1) * width, "the indent filter")
    elif name == "replace" and len(args) >= 3:
        check_replace(budget, *args[:4])
    elif name == "format" and isinstance(value, str):
        check_printf(budget, value, tuple(args[1:]) or tuple(kwargs.values()))
