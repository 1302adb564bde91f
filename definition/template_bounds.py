"""Save-time checks of templates that can be seen to be unbounded (a 422 before any run).

Every render is bounded when it runs (``definition/template_sandbox.py``); what a definition
shows plainly is refused when it is saved instead of failing each run: ``range()`` of
constants over ``template_max_operations`` numbers, loops over constants nested to more
iterations than that, constant repetition (``'x' * 10**8``, paddings) past
``template_max_output_chars``, constant powers past the integer limit, and macros that
call themselves (directly or through each other), whose depth cannot be known in advance.
Anything that depends on the data (``range(input.n)``) is left to the run.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from jinja2 import nodes

from definition.template_budget import MAX_INT_BITS, MAX_MACRO_DEPTH
from definition.templates import syntax_tree
from schema.run import RunLimits

_PADDINGS = frozenset({"center", "ljust", "rjust", "zfill"})


class _Unknown(Exception):
    """The value depends on the data."""


class _Sized:
    """A string or list known only by its length (never built at save time)."""

    def __init__(self, length: int) -> None:
        self.length = length


def unbounded_problems(source: str, limits: RunLimits) -> list[str]:
    """Why a template that parses can be seen to exceed its limits (empty when it cannot)."""
    checker = _Checker(limits)
    tree = syntax_tree(source)
    checker.walk(tree, 1)
    checker.recursion(tree)
    return list(dict.fromkeys(checker.problems))


class _Checker:
    def __init__(self, limits: RunLimits) -> None:
        self.max_ops = limits.template_max_operations
        self.max_chars = limits.template_max_output_chars
        self.problems: list[str] = []

    def walk(self, node: nodes.Node, iterations: int) -> None:
        """Check every expression; ``iterations`` is how often constant loops repeat it."""
        if isinstance(node, nodes.For):
            self.walk(node.iter, iterations)
            count = self._count(node.iter)
            if count is not None and iterations * count > self.max_ops:
                self.problems.append(
                    f"loops over constant ranges nested here run {iterations * count:,} "
                    f"iterations, over the {self.max_ops:,} operations a template may do "
                    "(limits.template_max_operations)")
                return
            inner = iterations * (count if count is not None else 1)
            for child in [node.target, *node.body, *node.else_]:
                self.walk(child, inner)
            if node.test is not None:
                self.walk(node.test, inner)
            return
        if isinstance(node, nodes.Expr):
            with suppress(_Unknown):  # its constant parts are checked one by one below
                self._value(node)
        for child in node.iter_child_nodes():
            self.walk(child, iterations)

    def recursion(self, tree: nodes.Template) -> None:
        """Macros that reach themselves through their calls."""
        calls = {macro.name: {call.node.name for call in macro.find_all(nodes.Call)
                              if isinstance(call.node, nodes.Name)}
                 for macro in tree.find_all(nodes.Macro)}
        for name in calls:
            seen: set[str] = set()
            todo = list(calls[name])
            while todo:
                callee = todo.pop()
                if callee == name:
                    self.problems.append(
                        f"macro '{name}' can call itself: how deep it recurses cannot be checked "
                        f"before it runs (macros nest at most {MAX_MACRO_DEPTH} deep, within "
                        "limits.template_max_operations); loop over the data instead")
                    break
                if callee in calls and callee not in seen:
                    seen.add(callee)
                    todo.extend(calls[callee])

    def _count(self, node: nodes.Node) -> int | None:
        """How many items a constant iterable has (None when it depends on the data)."""
        try:
            value = self._value(node)
        except _Unknown:
            return None
        if isinstance(value, _Sized):
            return value.length
        return len(value) if isinstance(value, str | list | tuple | range) else None

    def _value(self, node: nodes.Node) -> Any:
        """A constant expression's value, checking what it would build; raises _Unknown."""
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, nodes.List | nodes.Tuple):
            return [self._value(item) for item in node.items]
        if isinstance(node, nodes.Neg | nodes.Pos):
            value = self._value(node.node)
            if isinstance(value, int):
                return -value if isinstance(node, nodes.Neg) else value
            raise _Unknown
        if isinstance(node, nodes.Mul | nodes.Pow | nodes.Add):
            return self._binop(node, self._value(node.left), self._value(node.right))
        if isinstance(node, nodes.Call):
            return self._call(node)
        if isinstance(node, nodes.Filter) and node.name == "center" and node.args:
            self._width(self._value(node.args[0]), "the center filter")
        raise _Unknown

    def _binop(self, node: nodes.Expr, left: Any, right: Any) -> Any:
        if isinstance(node, nodes.Mul):
            seq, times = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, str | list | tuple | _Sized) and isinstance(times, int):
                length = (seq.length if isinstance(seq, _Sized) else len(seq)) * times
                self._width(length, "'*'")
                return _Sized(length)
        if isinstance(left, int) and isinstance(right, int):
            if isinstance(node, nodes.Pow):
                if right > 0 and abs(left) > 1 and right * left.bit_length() > MAX_INT_BITS:
                    self.problems.append(
                        f"'**' makes an integer over {MAX_INT_BITS:,} bits, more than a "
                        "template may compute")
                    raise _Unknown
                if right < 0:
                    raise _Unknown
                return left ** right
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise _Unknown
            return left * right if isinstance(node, nodes.Mul) else left + right
        raise _Unknown

    def _call(self, node: nodes.Call) -> Any:
        args = [self._value(arg) for arg in node.args] if not node.kwargs else None
        if args is None:
            raise _Unknown
        if isinstance(node.node, nodes.Name) and node.node.name == "range" \
                and all(isinstance(a, int) for a in args) and 1 <= len(args) <= 3:
            try:
                numbers = range(*args)
                size = len(numbers)
            except (ValueError, OverflowError):
                size = self.max_ops + 1
                numbers = range(0)
            if size > self.max_ops:
                self.problems.append(
                    f"range() of {size:,} numbers is over the {self.max_ops:,} operations a "
                    "template may do (limits.template_max_operations)")
                raise _Unknown
            return numbers
        if isinstance(node.node, nodes.Getattr) and node.node.attr in _PADDINGS and args:
            self._width(args[0], f"{node.node.attr}()")
        raise _Unknown

    def _width(self, size: Any, what: str) -> None:
        if isinstance(size, int) and size > self.max_chars:
            self.problems.append(
                f"{what} builds {size:,} characters or items, over the {self.max_chars:,} a "
                "template may build (limits.template_max_output_chars)")
            raise _Unknown
