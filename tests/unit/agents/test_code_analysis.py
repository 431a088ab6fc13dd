"""analyze_python, count_lines and generate_api_docs on real trees written into the agent's workspace."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from agents.code.complexity import cyclomatic_complexity

pytestmark = pytest.mark.anyio

INIT = '''\
"""Shop: a tiny package used to test the code agent."""

from shop.cart import Cart

__all__ = ["Cart", "VERSION"]
VERSION = "1.0"
'''

CART = '''\
"""A shopping cart."""

from __future__ import annotations

import json

from . import pricing
from .pricing import discount


class Cart:
    """Items and their quantities."""

    def __init__(self) -> None:
        self.items: dict[str, int] = {}

    def add(self, sku: str, qty: int = 1) -> None:
        self.items[sku] = self.items.get(sku, 0) + qty  # TODO: reject negative quantities

    def total(self, prices: dict[str, float], *, coupon: str | None = None) -> float:
        """Sum of price x quantity, less any coupon."""
        subtotal = sum(prices[s] * q for s, q in self.items.items() if q > 0)
        return discount(subtotal, coupon) if coupon else pricing.round_money(subtotal)


def _dump(cart: Cart) -> str:
    # FIXME: keys are not sorted
    return json.dumps(cart.items)
'''

# classify: 1 + if + elif + elif + and + for + if(comp) ... counted below by hand = 12 (> 10)
PRICING = '''\
"""Prices and discounts."""


def round_money(value: float) -> float:
    """Round to cents."""
    return round(value, 2)


def discount(amount: float, coupon: str | None) -> float:
    """Apply a coupon."""
    if coupon == "HALF":
        return amount / 2
    return amount


def classify(order: dict, flags: list[str]) -> str:
    if not order:
        return "empty"
    elif order.get("vip") and order.get("total", 0) > 100:
        kind = "vip"
    elif order.get("rush") or order.get("express"):
        kind = "fast"
    else:
        kind = "normal"
    for flag in flags:
        while flag.endswith("!"):
            flag = flag[:-1]
        try:
            kind += "-" + flag
        except TypeError:
            pass
    extras = [f for f in flags if f if f != "x"]
    return kind + str(len(extras))  # XXX: odd format kept for compatibility
'''

BROKEN = """\
def ok():
    return 1


def broken(:
    pass
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
async def code_agent(agent_client):
    client, runtime = await agent_client("code")
    write(
        runtime.layers.workspace,
        {"shop/__init__.py": INIT, "shop/cart.py": CART, "shop/pricing.py": PRICING, "broken/mod.py": BROKEN},
    )
    return client, runtime


def complexity_of(source: str) -> int:
    fn = ast.parse(textwrap.dedent(source)).body[0]
    assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
    return cyclomatic_complexity(fn)


def test_complexity_counts_each_kind_of_branch():
    assert complexity_of("def f():\n    return 1\n") == 1
    assert complexity_of("def f(a, b, c):\n    return a and b or c\n") == 3
    assert complexity_of("def f(x):\n    with open(x) as f:\n        assert f\n") == 3
    assert (
        complexity_of("def f(x):\n    match x:\n        case 1: pass\n        case 2: pass\n        case _: pass\n")
        == 4
    )
    assert complexity_of("def f(xs):\n    return {a: b for a in xs for b in a if b if a}\n") == 5
    # a nested function is its own unit: its branch is not added to the outer function
    assert complexity_of("def f(x):\n    def g(y):\n        if y: pass\n    return x if x else 0\n") == 2


async def test_analyze_package_reports_structure_complexity_todos_and_graph(code_agent):
    client, _ = code_agent
    result = await client.call_tool("analyze_python", {"path": "shop"})
    assert not result.is_error, result.content
    out = result.structured_content
    modules = {m["module"]: m for m in out["modules"]}
    assert set(modules) == {"shop", "shop.cart", "shop.pricing"}

    cart = modules["shop.cart"]
    assert cart["docstring_summary"] == "A shopping cart."
    total = next(f for f in cart["functions"] if f["qualname"] == "Cart.total")
    assert total["args"] == ["self", "prices", "coupon"] and total["has_docstring"] and total["is_method"]
    assert total["complexity"] == 4  # 1 + comprehension for + its if + conditional expression
    assert [(t["tag"], t["line"]) for t in cart["todos"]] == [("TODO", 18), ("FIXME", 27)]
    assert cart["todos"][0]["text"] == "reject negative quantities"
    assert cart["public_api"] == ["Cart"] and not cart["declares_all"]
    assert {i["module"] for i in cart["imports"]} == {"__future__", "json", "shop", "shop.pricing"}
    assert [g["name"] for g in cart["missing_docstrings"]] == ["Cart.add"]

    init = modules["shop"]
    assert init["public_api"] == ["Cart", "VERSION"] and init["declares_all"]

    classify = next(f for f in modules["shop.pricing"]["functions"] if f["name"] == "classify")
    # 1 + if + elif + and + elif + or + for + while + except + comprehension(for + 2 ifs) = 12
    assert classify["complexity"] == 12 and classify["over_max_complexity"]
    assert out["max_complexity"] == 10  # from context/team/standards.json
    assert [c["qualname"] for c in out["complex_functions"]] == ["classify"]
    assert out["todos"] == 3

    assert out["import_graph"] == {"shop": ["shop.cart"], "shop.cart": ["shop.pricing"], "shop.pricing": []}
    assert out["syntax_errors"] == []


async def test_syntax_error_is_reported_with_file_and_line(code_agent):
    client, _ = code_agent
    result = await client.call_tool("analyze_python", {"path": "broken"})
    assert not result.is_error
    out = result.structured_content
    assert out["syntax_errors"] == [{"file": "broken/mod.py", "line": 5, "col": 12, "message": "invalid syntax"}]
    assert "broken/mod.py:5:12" in out["summary"]


@pytest.mark.parametrize(
    ("setup", "path", "message"),
    [
        (None, "nowhere/pkg", "does not exist"),
        (None, "../../etc", "outside"),
        (None, "/etc/passwd", "outside"),
        ("huge.py", "huge.py", "bytes; files over"),
        ("blob.py", "blob.py", "binary"),
        ("notes.txt", "notes.txt", "not a Python file"),
    ],
)
async def test_bad_input_gives_a_clear_error(code_agent, setup, path, message):
    client, runtime = code_agent
    ws = runtime.layers.workspace
    if setup == "huge.py":
        (ws / setup).write_text("x = 1\n" * 400_000)
    elif setup == "blob.py":
        (ws / setup).write_bytes(b"\x7fELF\x00\x01\x02" * 100)
    elif setup:
        (ws / setup).write_text("hello\n")
    result = await client.call_tool("analyze_python", {"path": path})
    assert result.is_error
    assert message in result.content[0].text


async def test_unreadable_file_inside_a_package_is_skipped_not_fatal(code_agent):
    client, runtime = code_agent
    (runtime.layers.workspace / "shop" / "data.py").write_bytes(b"\x00\x01binary")
    result = await client.call_tool("analyze_python", {"path": "shop"})
    assert not result.is_error
    assert result.structured_content["skipped"] == [
        {"file": "shop/data.py", "reason": "shop/data.py is a binary file, not source text"}
    ]


async def test_count_lines_by_language_skipping_vendor_dirs_and_binaries(code_agent):
    client, runtime = code_agent
    ws = runtime.layers.workspace / "poly"
    write(
        ws,
        {
            "main.go": "package main\n\n// entry point\nfunc main() {\n\t/* block\n\t   comment */\n}\n",
            "web/app.ts": "/**\n * Docs\n */\nexport const a = 1; // trailing\n\n",
            "tool.py": "#!/usr/bin/env python\n# comment\n\nprint('hi')\n",
            "lib.rs": "fn main() {}\n",
            "deploy.yaml": "# config\nkey: value\n",
            "README.md": "# Title\n\n<!-- hidden\nnote -->\nText\n",
            "node_modules/dep/index.js": "module.exports = 1;\n",
            ".venv/pyvenv.cfg": "home = /usr\n",
            ".venv/lib/site.py": "x = 1\n",
            "env/pyvenv.cfg": "home = /usr\n",
            "env/x.py": "y = 2\n",
            ".git/config": "[core]\n",
            "LICENSE": "MIT\n",
        },
    )
    (ws / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    result = await client.call_tool("count_lines", {"path": "poly"})
    assert not result.is_error, result.content
    out = result.structured_content
    by_lang = {e["language"]: (e["files"], e["code"], e["comment"], e["blank"]) for e in out["languages"]}
    assert by_lang == {
        "Go": (1, 3, 3, 1),
        "TypeScript": (1, 1, 3, 1),
        "Python": (1, 1, 2, 1),
        "Rust": (1, 1, 0, 0),
        "YAML": (1, 1, 1, 0),
        "Markdown": (1, 2, 2, 1),
    }
    assert out["total_files"] == 6 and out["other_files"] == 1 and out["binary_files_skipped"] == 1


async def test_generate_api_docs_writes_markdown(code_agent):
    client, runtime = code_agent
    result = await client.call_tool("generate_api_docs", {"path": "shop", "output_path": "docs/api.md"})
    assert not result.is_error, result.content
    out = result.structured_content
    md = out["markdown"]
    assert out["modules_documented"] == ["shop", "shop.cart", "shop.pricing"]
    assert "## `shop.cart`" in md and "A shopping cart." in md
    assert "def total(self, prices: dict[str, float], *, coupon: str | None=None) -> float" in md
    assert "### class `Cart`" in md and "_dump" not in md
    assert "def classify(order: dict, flags: list[str]) -> str" in md
    assert out["written_to"] == "docs/api.md"
    assert (runtime.layers.workspace / "docs" / "api.md").read_text() == md


async def test_generate_api_docs_refuses_output_outside_workspace(code_agent):
    client, _ = code_agent
    result = await client.call_tool("generate_api_docs", {"path": "shop", "output_path": "../escape.md"})
    assert result.is_error and "outside" in result.content[0].text


@pytest.mark.anyio
async def test_analyze_python_pages_the_modules_and_says_what_it_left_out(agent_client):
    client, runtime = await agent_client("code")
    package = runtime.layers.workspace / "big"
    package.mkdir()
    (package / "__init__.py").write_text('"""A package."""\n')
    for i in range(7):
        body = f'"""Module {i}."""\n\nfrom big import m{(i + 1) % 7}\n\n\ndef f{i}():\n    pass\n'
        (package / f"m{i}.py").write_text(body)
    first = (await client.call_tool("analyze_python", {"path": "big", "limit": 3})).structured_content
    assert first["files_analyzed"] == 8 and len(first["modules"]) == 3
    assert first["page"] == {
        "offset": 0,
        "limit": 3,
        "modules_total": 8,
        "modules_left_out": 5,
        "next_offset": 3,
        "complex_functions_total": 0,
    }
    assert set(first["import_graph"]) <= {m["module"] for m in first["modules"]}
    assert first["summary"].startswith("8 module(s)")
    last = (await client.call_tool("analyze_python", {"path": "big", "limit": 3, "offset": 6})).structured_content
    assert len(last["modules"]) == 2 and last["page"]["next_offset"] is None
    seen = {m["file"] for m in first["modules"]} | {m["file"] for m in last["modules"]}
    assert len(seen) == 5
    bad = await client.call_tool("analyze_python", {"path": "big", "limit": 0})
    assert bad.is_error and "greater than or equal to 1" in bad.content[0].text
