"""The module registry: runtime export tables + reference data, one view for the checker."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kcc_runtime import modules as runtime_modules
from kcc_runtime.exports import (
    HOSTPORT,
    INT,
    INT_CONST,
    PV,
    PV_WRITE,
    REGEX,
    STR,
    STR_CONST,
    ArgKind,
    Cmd,
    FlagKind,
    ModuleExports,
    Route,
)

from kcc import ast
from kcc.pipeline import run_pipeline
from kcc.registry import FunctionInfo, Registry, args_from_fixup, registry, routes_from_names
from kcc.sema.context import iter_nodes, module_name
from tests.conftest import REPO, STOCK_CFG

RUNTIME_MODULES = REPO / "runtime" / "kcc_runtime" / "modules"
EXAMPLES = sorted((REPO / "examples").glob("*.cfg"))
STOCK_DEFINES = [
    "WITH_ACCDB",
    "WITH_ALIASDB",
    "WITH_ANTIFLOOD",
    "WITH_AUTH",
    "WITH_BLOCK",
    "WITH_DEBUG",
    "WITH_FEATURE",
    "WITH_IPAUTH",
    "WITH_JSONRPC",
    "WITH_MSGREBUILD",
    "WITH_MULTIDOMAIN",
    "WITH_MYSQL",
    "WITH_NAT",
    "WITH_NATSIPPING",
    "WITH_PRESENCE",
    "WITH_PSTN",
    "WITH_RTPENGINE",
    "WITH_SPEEDDIAL",
    "WITH_TLS",
    "WITH_USRLOCDB",
    "WITH_VOICEMAIL",
]


@pytest.fixture(scope="module")
def reg() -> Registry:
    return registry()


def _calls(path: Path, defines: dict[str, str | None]) -> tuple[list[str], list[ast.Call]]:
    ctx = run_pipeline(path, defines=defines, stop_after="parse")
    assert ctx.config is not None, [d.message for d in ctx.sink.diagnostics]
    loaded = [
        module_name(item.path.value)
        for item in ctx.config.items
        if isinstance(item, ast.LoadModule)
    ]
    calls = [node for node in iter_nodes(ctx.config) if isinstance(node, ast.Call)]
    return loaded, calls


def _resolve_all(reg: Registry, path: Path, defines: dict[str, str | None]) -> list[str]:
    loaded, calls = _calls(path, defines)
    assert calls, f"no calls found in {path}"
    problems = []
    for call in calls:
        res = reg.resolve(call.name, len(call.args), loaded)
        if res.found is None:
            problems.append(f"{call.name}/{len(call.args)}")
    return problems


# -- real configs -------------------------------------------------------------------------


@pytest.mark.skipif(not STOCK_CFG.exists(), reason="the kamailio package is not installed")
def test_every_call_of_the_stock_config_resolves(reg: Registry) -> None:
    defines: dict[str, str | None] = dict.fromkeys(STOCK_DEFINES)
    assert _resolve_all(reg, STOCK_CFG, defines) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_call_of_the_examples_resolves(reg: Registry, path: Path) -> None:
    assert _resolve_all(reg, path, {}) == []


@pytest.mark.skipif(not STOCK_CFG.exists(), reason="the kamailio package is not installed")
def test_stock_config_modules_all_have_runtime_files(reg: Registry) -> None:
    defines: dict[str, str | None] = dict.fromkeys(STOCK_DEFINES)
    loaded, _ = _calls(STOCK_CFG, defines)
    assert "tm" in loaded
    assert [m for m in loaded if not reg.in_runtime(m)] == []


# -- resolution ---------------------------------------------------------------------------


def test_resolve_found_wrong_arity_not_loaded_unknown(reg: Registry) -> None:
    found = reg.resolve("t_relay", 0, ["sl", "tm"]).found
    assert found is not None
    assert (found.module, found.cmd.arity, found.in_runtime) == ("tm", 0, True)

    wrong = reg.resolve("sl_send_reply", 1, ["sl"])
    assert wrong.found is None and wrong.not_loaded == ()
    assert [(i.module, i.cmd.arity) for i in wrong.wrong_arity] == [("sl", 2)]

    missing = reg.resolve("t_relay", 0, ["sl"])
    assert missing.found is None and missing.wrong_arity == ()
    assert {i.module for i in missing.not_loaded} == {"tm"}
    assert sorted(i.cmd.arity for i in missing.not_loaded) == [0, 2]

    unknown = reg.resolve("t_relya", 0, ["tm"])
    assert unknown == type(unknown)(None, (), ())


def test_core_is_always_loaded_and_shadows_modules(reg: Registry) -> None:
    # corex exports add_tcp_alias too, but the core keyword wins (Kamailio's grammar)
    found = reg.resolve("add_tcp_alias", 1, ["corex"]).found
    assert found is not None and found.module == "core"
    setflag = reg.resolve("setflag", 1, []).found
    assert setflag is not None
    assert setflag.cmd.args[0].kind is ArgKind.FLAG
    assert setflag.cmd.args[0].flag is FlagKind.MESSAGE
    route = reg.resolve("route", 1, []).found
    assert route is not None and route.cmd.args[0].route is Route.REQUEST


def test_first_loaded_module_wins(reg: Registry) -> None:
    a = ModuleExports("a", cmds=(Cmd("f", (STR,), Route.ANY),))
    b = ModuleExports("b", cmds=(Cmd("f", (INT,), Route.ANY),))
    custom = Registry({"a": a, "b": b}, {})
    for order, winner in ((["a", "b"], "a"), (["b", "a"], "b")):
        found = custom.resolve("f", 1, order).found
        assert found is not None and found.module == winner


def test_reference_modules_resolve_but_are_not_in_runtime(reg: Registry) -> None:
    assert reg.is_module("dialog") and not reg.in_runtime("dialog")
    found = reg.resolve("dlg_manage", 0, ["dialog"]).found
    assert found is not None
    assert found == FunctionInfo("dialog", found.cmd, False)
    assert reg.is_module("tm") and reg.in_runtime("tm")
    assert not reg.is_module("core") and reg.in_runtime("core")
    assert not reg.is_module("nosuchmodule")
    assert "core" not in reg.module_names()
    assert {"tm", "dialog", "sqlops", "db_sqlite"} <= set(reg.module_names())


def test_nothing_is_listed_twice() -> None:
    """A module with a runtime file has no row in the reference data."""
    runtime = set(runtime_modules.MODULES)
    data = REPO / "kcc" / "data"
    for name in ("functions", "modparams", "pvs"):
        lines = (data / f"reference_{name}.tsv").read_text(encoding="utf-8").splitlines()
        rows = [line.split("\t") for line in lines if line and not line.startswith("#")]
        assert rows[0][0] == "module"
        assert {row[0] for row in rows[1:]} & runtime == set(), name


def test_function_names_for_did_you_mean(reg: Registry) -> None:
    names = reg.function_names()
    assert names == sorted(names)
    assert {"t_relay", "sl_send_reply", "forward", "seturi", "dlg_manage"} <= set(names)


# -- facts from Kamailio's export tables --------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name", "arity", "routes"),
    [
        ("tm", "t_relay", 0, Route.REQUEST | Route.FAILURE),
        ("tm", "t_on_failure", 1, Route.REQUEST | Route.FAILURE | Route.TM_ONREPLY | Route.BRANCH),
        ("tm", "t_on_branch", 1, Route.REQUEST | Route.FAILURE),
        ("tm", "t_check_trans", 0, Route.REQUEST | Route.ONREPLY | Route.BRANCH),
        ("tm", "t_branch_timeout", 0, Route.FAILURE | Route.EVENT),
        ("sl", "sl_send_reply", 2, Route.REQUEST),
        ("sl", "send_reply", 2, Route.REQUEST | Route.FAILURE | Route.ONREPLY),
        ("rr", "loose_route", 0, Route.REQUEST),
        ("rr", "record_route", 0, Route.REQUEST | Route.BRANCH | Route.FAILURE),
        ("registrar", "save", 1, Route.REQUEST | Route.FAILURE | Route.ONREPLY),
        ("maxfwd", "mf_process_maxfwd_header", 1, Route.REQUEST),
        ("textops", "append_hf", 1, Route.ANY),
        ("xlog", "xlog", 1, Route.ANY),
        ("corex", "append_branch", 0, Route.REQUEST | Route.FAILURE),
        ("core", "forward", 0, Route.ANY & ~Route.ONSEND),
        ("core", "setflag", 1, Route.ANY),
    ],
)
def test_route_kinds_match_the_export_tables(
    reg: Registry, module: str, name: str, arity: int, routes: Route
) -> None:
    found = reg.resolve(name, arity, [module]).found
    assert found is not None and found.module == module
    assert found.cmd.routes == routes


@pytest.mark.parametrize(
    ("module", "name", "arity", "kinds"),
    [
        ("sl", "sl_send_reply", 2, [ArgKind.REPLY_CODE, ArgKind.STR]),
        ("tm", "t_reply", 2, [ArgKind.REPLY_CODE, ArgKind.STR]),
        ("tm", "t_relay", 2, [ArgKind.HOSTPORT, ArgKind.INT_CONST]),
        ("tm", "t_check_status", 1, [ArgKind.REGEX]),
        ("tm", "t_set_fr", 2, [ArgKind.INT, ArgKind.INT]),
        ("cfgutils", "lock", 1, [ArgKind.LOCK]),
        ("kex", "setbflag", 2, [ArgKind.FLAG, ArgKind.INT]),
        ("pv", "pv_unset", 1, [ArgKind.PV_WRITE]),
        ("pv", "pv_isset", 1, [ArgKind.PV]),
        ("textops", "search", 1, [ArgKind.REGEX]),
        ("textops", "replace", 2, [ArgKind.REGEX, ArgKind.STR_CONST]),
        ("siputils", "tel2sip", 3, [ArgKind.STR, ArgKind.STR, ArgKind.PV_WRITE]),
        ("dispatcher", "ds_select_dst", 2, [ArgKind.INT, ArgKind.INT]),
        ("siputils", "append_rpid_hf", 2, [ArgKind.STR_CONST, ArgKind.STR_CONST]),
    ],
)
def test_argument_kinds(
    reg: Registry, module: str, name: str, arity: int, kinds: list[ArgKind]
) -> None:
    found = reg.resolve(name, arity, [module]).found
    assert found is not None
    assert [arg.kind for arg in found.cmd.args] == kinds


def test_route_name_and_flag_arguments(reg: Registry) -> None:
    expected = {
        "t_on_failure": Route.FAILURE,
        "t_on_branch": Route.BRANCH,
        "t_on_reply": Route.TM_ONREPLY,
        "t_on_branch_failure": Route.BRANCH_FAILURE,
    }
    for name, kind in expected.items():
        found = reg.resolve(name, 1, ["tm"]).found
        assert found is not None
        assert found.cmd.args[0].kind is ArgKind.ROUTE and found.cmd.args[0].route is kind
        assert found.cmd.const_args
    for name, flag in (("setbflag", FlagKind.BRANCH), ("setsflag", FlagKind.SCRIPT)):
        found = reg.resolve(name, 1, ["kex"]).found
        assert found is not None and found.cmd.args[0].flag is flag


def test_kamailio_56_does_not_have_these_6x_exports(reg: Registry) -> None:
    # checked with `kamailio -c` 5.6: "unknown command"
    assert reg.resolve("lock", 2, ["cfgutils"]).found is None
    assert reg.resolve("t_reply_error", 0, ["tm"]).found is None
    tm = reg.module("tm")
    assert tm is not None and reg.param("tm", "reply_408_code") is None
    assert reg.pv_class("defv") is None


def test_kamailio_56_modules_without_script_exports_are_known(
    reg: Registry, tmp_path: Path
) -> None:
    # outbound/edge.cfg loads stun.so: `kamailio -c` 5.6 says "config file ok" for
    # `loadmodule "stun.so"` (also kemix.so, pua_rpc.so); none is in the 6.x tables.
    # cdp_avp (ims/pcscf with WITH_RX) exports only a NO_SCRIPT binding (not packaged)
    for name in ("stun", "kemix", "pua_rpc", "cdp_avp"):
        assert reg.is_module(name)
        exports = reg.module(name)
        assert exports is not None and exports.cmds == () and exports.params == ()
    cfg = tmp_path / "stun.cfg"
    cfg.write_text('loadmodule "stun.so"\nrequest_route { exit; }\n', encoding="utf-8")
    ctx = run_pipeline(cfg)
    assert [d.code for d in ctx.sink.diagnostics] == []
    assert not reg.is_module("mi_fifo")  # gone since 5.0: a real E0302


def test_const_args_follow_kamailio(reg: Registry) -> None:
    xlog = reg.resolve("xlog", 1, ["xlog"]).found
    assert xlog is not None and xlog.cmd.const_args and xlog.cmd.fixup == "xdbg_fixup"
    relay = reg.resolve("t_relay", 0, ["tm"]).found
    assert relay is not None and not relay.cmd.const_args and relay.cmd.fixup == ""


# -- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name", "type_", "default"),
    [
        ("tm", "fr_timer", int, 30000),
        ("tm", "fr_inv_timer", int, 120000),
        ("tm", "auto_inv_100_reason", str, "trying -- your call is important to us"),
        ("sl", "default_reason", str, "Internal Server Error"),
        ("usrloc", "db_mode", int, 0),
        ("usrloc", "timer_interval", int, 60),
        ("registrar", "default_expires", int, 3600),
        ("registrar", "max_expires", int, 0),
        ("rr", "enable_full_lr", int, 0),
        ("maxfwd", "max_limit", int, 70),
        ("dispatcher", "list_file", str, "/etc/kamailio/dispatcher.list"),
        ("acc", "log_flag", int, None),
        ("acc", "db_table_acc", str, "acc"),
        ("nathelper", "natping_interval", int, 0),
        ("auth_db", "db_url", str, "mysql://kamailioro:kamailioro@localhost/kamailio"),
        ("usrloc", "db_url", str, "mysql://kamailio:kamailiorw@localhost/kamailio"),
    ],
)
def test_param_defaults_match_the_readmes(
    reg: Registry, module: str, name: str, type_: type, default: int | str | None
) -> None:
    param = reg.param(module, name)
    assert param is not None
    assert (param.type, param.default) == (type_, default)


def test_flag_params_and_repeatable_params(reg: Registry) -> None:
    flags = {
        ("acc", "log_flag"): FlagKind.MESSAGE,
        ("acc", "log_missed_flag"): FlagKind.MESSAGE,
        ("acc", "failed_transaction_flag"): FlagKind.MESSAGE,
        ("acc", "db_flag"): FlagKind.MESSAGE,
        ("acc", "db_missed_flag"): FlagKind.MESSAGE,
        ("usrloc", "nat_bflag"): FlagKind.BRANCH,
        ("nathelper", "sipping_bflag"): FlagKind.BRANCH,
        ("registrar", "sock_flag"): FlagKind.MESSAGE,
    }
    for (module, name), kind in flags.items():
        param = reg.param(module, name)
        assert param is not None and param.flag is kind, (module, name)
    fr_timer = reg.param("tm", "fr_timer")
    assert fr_timer is not None and fr_timer.flag is None
    preload = reg.param("usrloc", "preload")
    assert preload is not None and preload.repeatable
    shv = reg.param("pv", "shvset")
    assert shv is not None and shv.repeatable
    assert reg.param("tm", "no_such_param") is None
    assert reg.param("nosuchmodule", "x") is None
    # a reference module's parameter
    dialog = reg.param("dialog", "hash_size")
    assert dialog is not None and dialog.type is int


def test_params_exported_with_two_types(reg: Registry) -> None:
    types = {p.type for p in reg.param_overloads("jsonrpcs", "fifo_user")}
    assert types == {int, str}


# -- pseudo-variables and transformations -------------------------------------------------


def test_pv_classes(reg: Registry) -> None:
    for name in ("?", "rc", "retcode", "env", "envn", "def", "defn", "null"):
        found = reg.pv_class(name)
        assert found is not None and found[0] == "core", name
    ru = reg.pv_class("ru")
    assert ru is not None and ru[0] == "pv" and ru[1].writable and not ru[1].inner
    si = reg.pv_class("si")
    assert si is not None and not si[1].writable
    var = reg.pv_class("var")
    assert var is not None and var[1].inner and var[1].writable
    hdr = reg.pv_class("hdr")
    assert hdr is not None and hdr[1].inner and hdr[1].index and not hdr[1].writable
    code = reg.pv_class("T_reply_code")
    assert code is not None and code[0] == "tmx" and code[1].transaction
    sht = reg.pv_class("sht")
    assert sht is not None and sht[0] == "htable"
    dlg = reg.pv_class("dlg_var")
    assert dlg is not None and dlg[0] == "dialog"
    assert reg.pv_class("nosuchclass") is None
    assert {"ru", "T_reply_code", "rc", "dlg_var"} <= set(reg.pv_classes())


def test_transformations(reg: Registry) -> None:
    assert reg.transformation("s.len") == "pv"
    assert reg.transformation("uri.user") == "pv"
    assert reg.transformation("sock.host") == "corex"
    assert reg.transformation("re.subst") == "textops"
    assert reg.transformation("json.parse") == "json"
    assert reg.transformation("s.nosuch") is None
    assert reg.transformation("s.crc32") is None  # 6.x only


# -- the fixup mapping --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixup", "nargs", "expected"),
    [
        ("fixup_spve_null", 1, (STR,)),
        ("fixup_spve_spve", 2, (STR, STR)),
        ("fixup_spve_all", 3, (STR, STR, STR)),
        ("fixup_igp_null", 1, (INT,)),
        ("fixup_igp_spve", 2, (INT, STR)),
        ("fixup_spve_igp", 2, (STR, INT)),
        ("fixup_str_null", 1, (STR_CONST,)),
        ("fixup_int_1", 1, (INT_CONST,)),
        ("fixup_regexp_null", 1, (REGEX,)),
        ("fixup_regexp_none", 2, (REGEX, STR_CONST)),
        ("fixup_pvar_null", 1, (PV,)),
        ("fixup_spve2_pvar", 3, (STR, STR, PV_WRITE)),
        ("fixup_var_int_12", 2, (INT, INT)),
        ("fixup_var_int_1", 1, (INT,)),
        ("fixup_isi", 3, (INT, STR, INT)),
        ("fixup_hostport2proxy", 2, (HOSTPORT, INT_CONST)),
        ("0", 2, (STR_CONST, STR_CONST)),
        ("fixup_set_id", 1, (ArgKind.ANY,)),
        ("fixup_spve_null", 0, ()),
    ],
)
def test_args_from_fixup(fixup: str, nargs: int, expected: tuple[object, ...]) -> None:
    got = args_from_fixup(fixup, nargs)
    if expected and isinstance(expected[0], ArgKind):
        assert [a.kind for a in got] == list(expected)
    else:
        assert got == expected


def test_routes_from_names() -> None:
    assert routes_from_names("REQUEST|FAILURE") == Route.REQUEST | Route.FAILURE
    assert routes_from_names("ONREPLY") == Route.TM_ONREPLY | Route.CORE_ONREPLY
    assert routes_from_names("0") == Route(0)


# -- the runtime files --------------------------------------------------------------------


def _module_files() -> Iterator[str]:
    for info in pkgutil.iter_modules([str(RUNTIME_MODULES)]):
        yield info.name


def test_every_module_file_is_registered_under_its_own_name() -> None:
    names = sorted(_module_files())
    assert names == sorted(runtime_modules.MODULES)
    for name in names:
        module = importlib.import_module(f"kcc_runtime.modules.{name}")
        exports = module.EXPORTS
        assert isinstance(exports, ModuleExports)
        assert exports.name == name
        assert runtime_modules.get(name) is exports
        assert module.__doc__ and module.__doc__.strip(), name
    assert runtime_modules.get("dialog") is None


def test_the_chapter_and_stock_modules_have_runtime_files() -> None:
    expected = [
        "acc",
        "alias_db",
        "auth",
        "auth_db",
        "cfg_rpc",
        "cfgutils",
        "corex",
        "counters",
        "ctl",
        "db_mysql",
        "debugger",
        "dispatcher",
        "domain",
        "htable",
        "jsonrpcs",
        "kex",
        "maxfwd",
        "nathelper",
        "permissions",
        "pike",
        "presence",
        "presence_xml",
        "pv",
        "registrar",
        "rr",
        "rtpengine",
        "rtpproxy",
        "sanity",
        "siputils",
        "sl",
        "speeddial",
        "textops",
        "textopsx",
        "tls",
        "tm",
        "tmx",
        "usrloc",
        "xhttp",
        "xlog",
        "db_sqlite",
        "core",
    ]
    assert set(expected) == set(runtime_modules.MODULES)


def test_every_cmd_with_an_impl_accepts_ctx_and_its_arguments() -> None:
    checked = 0
    for exports in runtime_modules.MODULES.values():
        for cmd in exports.cmds:
            checked += 1
            assert isinstance(cmd.routes, Route) and cmd.routes, (exports.name, cmd.name)
            for arg in cmd.args:
                assert (arg.kind is ArgKind.ROUTE) == (arg.route is not None), cmd.name
                assert (arg.kind is ArgKind.FLAG) == (arg.flag is not None), cmd.name
            if cmd.impl is None:
                continue
            signature = inspect.signature(cmd.impl)
            signature.bind(object(), *([object()] * cmd.arity))
    assert checked > 600


def test_no_duplicate_overloads_or_params() -> None:
    for exports in runtime_modules.MODULES.values():
        keys = [(cmd.name, cmd.arity) for cmd in exports.cmds]
        assert len(keys) == len(set(keys)), exports.name
        params = [(p.name, p.type) for p in exports.params]
        assert len(params) == len(set(params)), exports.name
        pvs = [pv.name for pv in exports.pvs]
        assert len(pvs) == len(set(pvs)), exports.name


def test_module_files_import_without_the_compiler() -> None:
    code = (
        "import sys\n"
        "import kcc_runtime.modules as m\n"
        "assert {'core', 'tm', 'sl'} <= set(m.MODULES)\n"
        "bad = [name for name in sys.modules if name == 'kcc' or name.startswith('kcc.')]\n"
        "assert not bad, bad\n"
    )
    env_path = str(REPO / "runtime")
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {env_path!r})\n" + code],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
