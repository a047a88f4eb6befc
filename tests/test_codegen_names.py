"""kcc.codegen.names: deterministic, collision-free Python names for cfg names."""

from __future__ import annotations

import builtins
import keyword
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kcc.ast import RouteKind
from kcc.codegen.names import (
    BUILTIN_NAMES,
    KEYWORDS,
    NameTable,
    identifier,
    mangle,
    route_function_name,
    unmangle,
)

from .conftest import REPO

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=[]), max_size=30)
NAMED_KINDS = [
    RouteKind.ROUTE,
    RouteKind.FAILURE,
    RouteKind.BRANCH,
    RouteKind.ONREPLY,
    RouteKind.EVENT,
]


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        (RouteKind.REQUEST, None, "request_route"),
        (RouteKind.ROUTE, None, "request_route"),
        (RouteKind.ROUTE, "0", "request_route"),
        (RouteKind.ROUTE, "RELAY", "route_RELAY"),
        (RouteKind.ROUTE, "WITH_UNDERSCORE", "route_WITH_UNDERSCORE"),
        (RouteKind.ROUTE, "1", "route_1"),
        (RouteKind.ROUTE, "1a", "route_1a"),
        (RouteKind.ROUTE, "a b", "route_a_x20b"),
        (RouteKind.ROUTE, "my-route", "route_my_x2droute"),
        (RouteKind.ROUTE, "class", "route_class"),
        (RouteKind.ROUTE, "é", "route__xc3_xa9"),
        (RouteKind.ROUTE, "a_x2d", "route_a_x5fx2d"),
        (RouteKind.ROUTE, "A__B", "route_A__B"),
        (RouteKind.FAILURE, "RETRY", "failure_route_RETRY"),
        (RouteKind.FAILURE, None, "failure_route"),
        (RouteKind.FAILURE, "0", "failure_route"),
        (RouteKind.BRANCH, "BR", "branch_route_BR"),
        (RouteKind.ONREPLY, "NAT", "onreply_route_NAT"),
        (RouteKind.ONREPLY, None, "reply_route"),
        (RouteKind.ONREPLY, "0", "reply_route"),
        (RouteKind.REPLY, None, "reply_route"),
        (RouteKind.ONSEND, None, "onsend_route"),
        (RouteKind.EVENT, "xhttp:request", "event_route_xhttp__request"),
        (RouteKind.EVENT, "tm:local-request", "event_route_tm__local_x2drequest"),
        (
            RouteKind.EVENT,
            "core:worker-one-init",
            "event_route_core__worker_x2done_x2dinit",
        ),
        (
            RouteKind.EVENT,
            "tm:branch-failure:RETRY",
            "event_route_tm__branch_x2dfailure__RETRY",
        ),
        (RouteKind.EVENT, "a_:b", "event_route_a_x5f__b"),
        (RouteKind.EVENT, "a:_b", "event_route_a___b"),
        (RouteKind.EVENT, "a__b", "event_route_a_x5f_b"),
    ],
)
def test_route_function_names(kind: RouteKind, name: str | None, expected: str) -> None:
    assert route_function_name(kind, name) == expected


def test_mangle_examples_and_inverse() -> None:
    assert mangle("") == ""
    assert mangle("\udcff") == "_xed_xb3_xbf"  # lone surrogates: UTF-8 with surrogatepass
    assert mangle("ÿ") == "_xc3_xbf"
    assert unmangle("_xed_xb3_xbf") == "\udcff"
    assert unmangle("a_xAB") == "a_xAB"  # upper-case hex is not an escape
    assert mangle("a_xAB") == "a_xAB"
    with pytest.raises(ValueError, match="not a mangled name"):
        unmangle("a-b")
    with pytest.raises(ValueError, match="not a mangled name"):
        unmangle("_xff")  # not UTF-8


@given(ANY_TEXT, st.booleans())
def test_mangle_is_inverted_by_unmangle(text: str, event: bool) -> None:
    fragment = mangle(text, event=event)
    assert all(c == "_" or (c.isascii() and c.isalnum()) for c in fragment)
    assert unmangle(fragment, event=event) == text


@given(st.sampled_from(NAMED_KINDS), ANY_TEXT)
def test_any_route_name_is_a_valid_non_keyword_identifier(kind: RouteKind, name: str) -> None:
    result = route_function_name(kind, name)
    assert result.isidentifier()
    assert result.isascii()
    assert not keyword.iskeyword(result)
    assert not keyword.issoftkeyword(result)
    assert result not in BUILTIN_NAMES


@given(st.lists(st.tuples(st.sampled_from(NAMED_KINDS), ANY_TEXT), unique=True, max_size=20))
def test_route_names_are_injective_over_a_set(blocks: list[tuple[RouteKind, str]]) -> None:
    def slot(kind: RouteKind, name: str) -> tuple[RouteKind, str | None]:
        """Blocks Kamailio stores in one slot (`route[0]` is `request_route`)."""
        if name == "0" and kind is not RouteKind.EVENT:
            return (RouteKind.REQUEST if kind is RouteKind.ROUTE else kind, None)
        return (kind, name)

    names = {route_function_name(kind, name): slot(kind, name) for kind, name in blocks}
    assert len(names) == len({slot(kind, name) for kind, name in blocks})


def test_route_names_are_stable_across_runs() -> None:
    """Same names in a fresh interpreter with a different hash seed."""
    code = (
        "from kcc.ast import RouteKind as K\n"
        "from kcc.codegen.names import NameTable\n"
        "t = NameTable()\n"
        "print([t.route(K.ROUTE, n) for n in ('a b', 'x-y', 'é', '1')],"
        " t.route(K.EVENT, 'core:worker-one-init'),"
        " [t.constant(n) for n in ('len', 'class', 'class_', 'FLT')], t.temp())\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
            env={"PYTHONHASHSEED": seed},
            timeout=60,
        ).stdout
        for seed in ("1", "2", "12345")
    }
    assert outputs == {
        "['route_a_x20b', 'route_x_x2dy', 'route__xc3_xa9', 'route_1']"
        " event_route_core__worker_x2done_x2dinit"
        " ['len_', 'class_', 'class__2', 'FLT'] _t1\n"
    }


def test_constants_keep_their_spelling_unless_they_clash() -> None:
    table = NameTable()
    assert table.constant("FLT_ACC") == "FLT_ACC"
    assert table.constant("GW_SET") == "GW_SET"
    assert table.constant("FLT_ACC") == "FLT_ACC"  # memoised
    assert table.constant("None") == "None_"
    assert table.constant("print") == "print_"
    assert table.constant("tm") == "tm_"  # runtime module the proxy imports
    assert table.constant("ctx") == "ctx_"
    assert table.constant("ROUTER") == "ROUTER_"
    assert table.constant("print_") == "print__2"
    assert table.constant("9lives") == "_x39lives"
    assert table.constant("a-b") == "a_x2db"
    assert identifier("") == "__"  # "_" (nothing to mangle), a soft keyword: "_" appended
    assert table.constant("") == "__"
    assert table.constant("_") == "___2"  # "_" + "_" is "__", taken by "" above


def test_route_functions_win_over_later_constants() -> None:
    table = NameTable()
    assert table.route(RouteKind.ROUTE, "RELAY") == "route_RELAY"
    assert table.route(RouteKind.ROUTE, "0") == "request_route"
    assert table.route(RouteKind.REQUEST, None) == "request_route"  # the same slot
    assert table.constant("route_RELAY") == "route_RELAY_2"
    assert table.constant("request_route") == "request_route_2"


def test_scopes() -> None:
    module = NameTable()
    module.constant("X")
    first = module.child()
    assert first.claim("X") == "X_2"  # a local never shadows a module name
    assert first.temp() == "_t1"
    assert first.temp() == "_t2"
    second = module.child()
    assert second.temp() == "_t1"  # siblings may reuse names
    assert module.claim("_t1") == "_t1_2"  # ...but the module may not shadow them
    assert module.claim("X_2") == "X_2_2"
    assert first.is_taken("X") and not module.is_taken("nothing")
    with pytest.raises(ValueError, match="not a Python identifier"):
        module.claim("a b")


def test_temps_skip_taken_names() -> None:
    table = NameTable()
    assert table.constant("_t1") == "_t1"
    local = table.child()
    assert local.temp() == "_t2"


def test_frozen_name_lists_cover_this_interpreter() -> None:
    assert set(keyword.kwlist) | set(keyword.softkwlist) <= KEYWORDS
    assert set(dir(builtins)) <= BUILTIN_NAMES
