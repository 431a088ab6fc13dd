"""Cyclomatic complexity of one function body, counted on the stdlib AST.

The count starts at 1 and adds one per decision: ``if``/``elif`` and conditional expressions, ``for``/
``while`` loops (sync or async), each ``except`` clause, each ``with`` statement, each extra operand
of ``and``/``or``, each ``for`` and ``if`` inside a comprehension, each ``case`` of a ``match`` and each
``assert``. Functions and classes nested inside are separate units and are not counted here;
lambdas are, because they cannot be reported on their own.
"""

from __future__ import annotations

import ast

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

_ONE_EACH = (
    ast.If,
    ast.IfExp,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.ExceptHandler,
    ast.With,
    ast.AsyncWith,
    ast.match_case,
    ast.Assert,
)


def _decisions(node: ast.AST) -> int:
    if isinstance(node, _ONE_EACH):
        return 1
    if isinstance(node, ast.BoolOp):
        return len(node.values) - 1
    if isinstance(node, ast.comprehension):
        return 1 + len(node.ifs)
    return 0


def cyclomatic_complexity(function: FunctionNode) -> int:
    """1 + the decision points in ``function``'s own body (nested defs and classes excluded)."""
    total = 1
    pending: list[ast.AST] = [*function.body]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        total += _decisions(node)
        pending.extend(ast.iter_child_nodes(node))
    return total
