"""The config boundary, property-tested: arbitrary JSON in every field, through every way in.

A config JSON reaches the app three ways: ``python -m core validate``, ``python -m core train`` and
the Train page's import. For any JSON put into any field (wrong types, extremes, NaN, infinity,
huge integers, nesting, unknown keys), each must: never raise, never change a value silently (what
is accepted is exactly what was sent), and name the field in every rejection.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest
import streamlit as st
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from streamlit.testing.v1 import AppTest

from core import __main__ as cli
from core.config import (
    MAX_JSON_BYTES,
    MAX_NAME_CHARS,
    RunConfig,
    check,
    limits,
    parse_json,
    printable,
    run_name_problem,
)
from core.stopping.rules.registry import RULES
from core.validate import rule_choices

ROOT = Path(__file__).resolve().parents[2]


def _leaf_paths(obj, prefix: str = "") -> list[str]:
    out = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out += _leaf_paths(value, f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


LEAVES = _leaf_paths(RunConfig())
SECTIONS = [f.name for f in fields(RunConfig) if is_dataclass(getattr(RunConfig(), f.name))]

# Valid JSON (\\ud800) but no character; Hypothesis' text() never generates them.
LONE_SURROGATE_TEXTS = ["\ud800", "a\udfff", "\ud83d", "\x1b[2J\u202e"]
scalars = hs.one_of(
    hs.none(),
    hs.booleans(),
    hs.integers(),
    hs.integers(min_value=-(10**400), max_value=10**400),
    hs.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, 1_000_000, 1_000_001, 65_536, 65_537]),
    hs.floats(allow_nan=True, allow_infinity=True),
    hs.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e308, 0.9, 0.95, 1.0, 10.0, 10.000001]),
    hs.text(max_size=20),
    hs.sampled_from(LONE_SURROGATE_TEXTS),
    hs.sampled_from(["", "val_loss", "auto", "min", "adam", ".keras", "digits", "mlp", "5", "true", "null"]),
)
json_values = hs.recursive(
    scalars,
    lambda inner: hs.one_of(
        hs.lists(inner, max_size=3), hs.dictionaries(hs.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@hs.composite
def mutated_configs(draw) -> tuple[dict, list[str]]:
    """The default config with 1-3 fields replaced by arbitrary JSON or unknown keys added."""
    data = RunConfig().to_dict()
    touched = []
    for _ in range(draw(hs.integers(1, 3))):
        kind = draw(hs.sampled_from(["leaf", "leaf", "leaf", "section", "unknown"]))
        if kind == "leaf":
            path = draw(hs.sampled_from(LEAVES))
            node = data
            *parents, leaf = path.split(".")
            for p in parents:
                node = node.get(p) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                continue  # an earlier mutation replaced a section: nothing to put this leaf in
            node[leaf] = draw(json_values)
        elif kind == "section":
            path = draw(hs.sampled_from(SECTIONS))
            data[path] = draw(json_values)
        else:
            section = draw(hs.sampled_from(["", *SECTIONS]))
            key = draw(hs.one_of(hs.text(min_size=1, max_size=8), hs.sampled_from(LONE_SURROGATE_TEXTS)))
            node = data if not section else data.get(section)
            if not isinstance(node, dict) or key in node:
                continue
            node[key] = draw(json_values)
            path = f"{section}.{key}" if section else key
        touched.append(path)
    return data, touched


def _valid_values(path: str):
    """Values the declaration accepts for ``path``: what a careful user (or an editor) would send."""
    default = RunConfig().to_dict()
    for part in path.split("."):
        default = default[part]
    if isinstance(default, bool):
        return hs.booleans()
    leaf = path.rsplit(".", 1)[-1]
    if leaf == "mode":
        return hs.sampled_from(["auto", "min", "max"])
    if leaf == "monitor":
        return hs.sampled_from(["loss", "val_loss", "accuracy", "val_accuracy"])
    if path == "fit.optimizer":
        return hs.sampled_from(["adam", "sgd", "rmsprop", "adamw", "nadam", "adagrad"])
    if path == "fit.steps_per_execution":
        return hs.one_of(hs.just("auto"), hs.integers(1, 1024))
    if path == "fit.backend":
        return hs.sampled_from(["auto", "tensorflow", "jax"])
    if path == "checkpoint.format":
        return hs.sampled_from([".keras", ".h5"])
    if path == "stopping_rules":
        return _valid_rules()
    if path in ("name",):
        return hs.text(min_size=1, max_size=MAX_NAME_CHARS).filter(lambda t: run_name_problem(t) is None)
    if isinstance(default, str) or default is None and path.startswith(("data.", "model.")):
        return hs.just(default)
    b = limits(path)
    if b.integer:
        return hs.integers(int(b.low), int(b.high))
    return hs.floats(b.low, b.high, exclude_min=b.exclusive_low, allow_nan=False)


def _valid_rule(name: str):
    """A rule as the Train page sets it: every parameter, each in its range."""
    params = {
        p.name: hs.integers(p.low, p.high) if p.integer else hs.floats(p.low, p.high, allow_nan=False)
        for p in RULES[name].parameters
    }
    return hs.fixed_dictionaries({"name": hs.just(name), "params": hs.fixed_dictionaries(params)})


def _valid_rules():
    names = hs.lists(hs.sampled_from(rule_choices()), unique=True, max_size=3)
    return names.flatmap(lambda chosen: hs.tuples(*map(_valid_rule, chosen)).map(list))


@hs.composite
def valid_configs(draw) -> dict:
    data = RunConfig().to_dict()
    for path in draw(hs.lists(hs.sampled_from(LEAVES), min_size=1, max_size=6, unique=True)):
        *parents, leaf = path.split(".")
        node = data
        for p in parents:
            node = node[p]
        node[leaf] = draw(_valid_values(path))
    return data


def _as_json(data) -> str:
    return json.dumps(data, allow_nan=True)


def _same(accepted, sent) -> bool:
    """Accepted exactly as sent: equal values of the same JSON kind (an int is a valid float)."""
    if isinstance(sent, dict):
        return isinstance(accepted, dict) and all(_same(accepted.get(k), v) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(accepted, list) and len(accepted) == len(sent) and all(map(_same, accepted, sent))
    if isinstance(sent, bool) or isinstance(accepted, bool):
        return type(sent) is type(accepted) and sent == accepted
    if isinstance(sent, (int, float)) and isinstance(accepted, (int, float)):
        same_kind = type(sent) is type(accepted) or isinstance(accepted, float)
        return math.isfinite(sent) and float(sent) == float(accepted) and same_kind
    return type(sent) is type(accepted) and sent == accepted


def _names_a_touched_field(field: str, message: str, touched: list[str]) -> bool:
    # A problem's field is the mutated setting, a part of it (inside a nested value), or its section.
    # An unknown key is named as ``printable`` writes it (a control character as \\uXXXX).
    touched = [printable(t) for t in touched]
    related = any(
        field == t or field.startswith((t + ".", t + "[")) or t.startswith(field + ".") for t in touched
    )
    return related and (message.startswith(field) or field in message)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_any_json_in_any_field_is_accepted_exactly_or_refused_by_name(case):
    data, touched = case
    config, problems = parse_json(_as_json(data))
    if config is None:
        assert problems
        for p in problems:
            assert _names_a_touched_field(p.field, p.message, touched), (p, touched)
    else:
        assert not problems
        assert _same(config.to_dict(), data), (config.to_dict(), data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_the_validate_command_never_raises_and_names_the_field(tmp_path_factory, case):
    data, touched = case
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_text(_as_json(data))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["validate", str(path)])
    config, problems = parse_json(path.read_bytes())
    if config is None:
        assert code == 2
        for p in problems:
            assert p.message in err.getvalue()
    else:
        assert code in (0, 2)  # 2: a valid declaration can still fail validate() (e.g. a monitor not logged)
        assert "Traceback" not in err.getvalue()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_the_validate_command_in_a_real_process_never_raises_and_names_the_field(tmp_path_factory, case):
    """As above, through ``python -m core validate`` itself: the real stderr, its encoding and exit code."""
    data, _ = case
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_text(_as_json(data))
    proc = subprocess.run(
        [sys.executable, "-m", "core", "validate", str(path), "--runs-dir", str(path.parent / "runs")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr
    config, problems = parse_json(path.read_bytes())
    if config is None:
        assert proc.returncode == 2
        for p in problems:
            assert p.message in proc.stderr
    else:
        assert proc.returncode in (0, 2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_the_train_command_refuses_before_creating_a_run(tmp_path_factory, case):
    data, touched = case
    config, _ = parse_json(_as_json(data))
    if config is not None:
        return  # a valid one would train: covered by the tests that train
    folder = tmp_path_factory.mktemp("train")
    path = folder / "config.json"
    path.write_text(_as_json(data))
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = cli.main(["train", str(path), "--runs-dir", str(folder / "runs")])
    assert code == 2
    # The CLI quotes what it was sent with control and format characters escaped (printable()).
    assert any(printable(t.split(".")[0]) in err.getvalue() for t in touched), err.getvalue()
    runs = folder / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if len(p.name) == 32]


NASTY = {
    "deep nesting": "[" * 50_000 + "]" * 50_000,
    "deep object": '{"fit": ' * 5000 + "1" + "}" * 5000,
    "huge int": '{"fit": {"max_epochs": ' + "9" * 20_000 + "}}",
    "1e400": '{"fit": {"learning_rate": 1e400}}',
    "NaN": '{"early_stopping": {"min_delta": NaN}}',
    "not JSON": "{nope",
    "empty": "",
    "binary": "\x00\x01\x02PK",
    "a list": "[1, 2]",
    "over the size limit": '{"name": "' + "x" * (MAX_JSON_BYTES + 10) + '"}',
    "duplicate keys": '{"fit": {"seed": 1, "seed": 2}}',
    "name not text": '{"name": {"a": 1}}',
    "name with a newline": '{"name": "a\\nb"}',
}


@pytest.mark.parametrize("case", sorted(NASTY))
def test_nasty_files_in_a_real_process_exit_2_without_a_traceback(tmp_path, case):
    path = tmp_path / "config.json"
    path.write_bytes(NASTY[case].encode("utf-8", "surrogatepass"))
    for command in ("validate", "train"):
        extra = ["--runs-dir", str(tmp_path / "runs")] if command == "train" else []
        proc = subprocess.run(
            [sys.executable, "-m", "core", command, str(path), *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith("error: "), proc.stderr


def test_schema_command_prints_the_declaration():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["schema"]) == 0
    schema = json.loads(out.getvalue())
    fit = schema["$defs"]["FitConfig"]["properties"]
    assert fit["max_epochs"]["maximum"] == limits("fit.max_epochs").high == 1_000_000
    assert schema["additionalProperties"] is False


def test_the_settings_the_issue_saw_change_silently_now_load_exactly_or_are_refused():
    """The cases that used to load as Max epochs 1, Batch size 1, Units 1 and say 'Loaded'."""
    for section, name, value in [("fit", "max_epochs", 2_000_000), ("fit", "batch_size", 100_000),
                                 ("model", "units", 5_000), ("model", "depth", 1_000_000)]:  # fmt: skip
        data = RunConfig().to_dict()
        data[section][name] = value
        config, problems = check(data)
        assert config is None
        assert [p.field for p in problems] == [f"{section}.{name}"]
        assert problems[0].message.endswith(f"; got {value}.")
    data = RunConfig().to_dict()
    data["fit"]["max_epochs"] = 1_000_000
    data["fit"]["batch_size"] = 65_536
    config, _ = check(data)
    assert (config.fit.max_epochs, config.fit.batch_size) == (1_000_000, 65_536)


# -- the Train page ---------------------------------------------------------------------------------


@pytest.fixture
def train_page(tmp_path, monkeypatch):
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ESLAB_TRAIN_IN", "thread")
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page("pages/1_Train.py")
    at.run()
    assert not at.exception
    yield at
    st.cache_resource.clear()


def _paste(at: AppTest, text: str) -> AppTest:
    at.text_area(key="config_paste").set_value(text)
    at.button(key="load_paste").click()
    at.run()
    return at


def _form_config(at: AppTest) -> RunConfig:
    return at.session_state["last_config"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(mutated_configs())
def test_the_train_page_import_loads_exactly_or_refuses_by_name(train_page, case):
    at = train_page
    data, touched = case
    before = _form_config(at)
    _paste(at, _as_json(data))
    assert not at.exception, at.exception
    config, problems = parse_json(_as_json(data))
    if config is None:
        assert any(e.value.startswith("The config was not loaded") for e in at.error), [
            e.value for e in at.error
        ]
        shown = "\n".join(t.value for t in at.text)
        for p in problems:
            assert p.message in shown
        assert _form_config(at) == before
    else:
        assert any(s.value == "Loaded the config." for s in at.success)
        at.run()  # one more page run: every widget drawn with the loaded values
        assert not at.exception, at.exception
        assert _form_config(at) == config, touched


@settings(max_examples=300, deadline=None)
@given(valid_configs())
def test_every_value_the_declaration_allows_is_accepted_as_sent(data):
    config, problems = parse_json(_as_json(data))
    assert problems == []
    assert _same(config.to_dict(), data)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(valid_configs())
def test_the_train_page_shows_every_valid_config_exactly(train_page, data):
    at = _paste(train_page, _as_json(data))
    assert not at.exception, at.exception
    assert any(s.value == "Loaded the config." for s in at.success), [e.value for e in at.error]
    at.run()
    assert not at.exception, at.exception
    assert _form_config(at) == RunConfig.from_dict(data)


def test_the_train_page_shows_extreme_valid_values_as_they_are(train_page):
    at = train_page
    data = RunConfig().to_dict()
    data["fit"].update(max_epochs=1_000_000, batch_size=65_536, learning_rate=1e-7, validation_split=0.8)
    data["model"].update(units=4096, depth=1, dropout=0.9)
    data["early_stopping"].update(patience=999_999, min_delta=-0.0123, baseline=-1e12, start_from_epoch=0)
    data["name"] = "![x](http://127.0.0.1:9/p.png) <b>bold</b>"
    _paste(at, json.dumps(data))
    at.run()
    assert not at.exception
    config = RunConfig.from_dict(data)
    assert _form_config(at) == config
    assert at.number_input(key="fit.max_epochs").value == 1_000_000
    assert at.slider(key="early_stopping.patience").value == 999_999
    assert at.select_slider(key="early_stopping.min_delta").value == -0.0123
    assert at.text_input(key="name").value == data["name"]


# -- text that is not what it looks like ------------------------------------------------------------

HOSTILE_NAMES = [
    "abc\u202egnp.exe",  # a right-to-left override: shows as "abcexe.png"
    "\u200b",  # zero width: an invisible name
    "a\u2066b",  # a bidi isolate
    "a\u2028b",  # a Unicode line separator
    "a\x85b",  # C1 control (NEL)
    "   ",  # blank
    "x" * (MAX_NAME_CHARS + 1),
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n[:12]))
def test_a_name_the_store_would_replace_is_refused_by_the_declaration(name):
    """These used to validate, train, and then show as "(unnamed run)" once the run was read back."""
    data = RunConfig().to_dict()
    data["name"] = name
    config, problems = check(data)
    assert config is None
    assert [p.field for p in problems] == ["name"]
    assert problems[0].message.startswith("name: ")
    assert problems[0].message.isprintable()  # the refused value is quoted with \\uXXXX escapes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=hs.one_of(
        hs.text(max_size=MAX_NAME_CHARS + 5),
        hs.sampled_from([*HOSTILE_NAMES, "é" * MAX_NAME_CHARS, " padded ", "![x](http://h/p.png) <b>b</b>"]),
    )
)
def test_a_name_that_validates_is_stored_and_read_back_exactly(tmp_path_factory, name):
    """One rule for names: the declaration accepts exactly what the store keeps, so nothing that
    validates is renamed when the run is read back (from the index, or rebuilt from its folder)."""
    from core.store.runs import RunStore, name_problem, new_run_id

    data = RunConfig().to_dict()
    data["name"] = name
    config, problems = check(data)
    assert (config is None) == (name_problem(name) is not None), (name, problems)
    if config is None:
        return
    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    rid = new_run_id()
    store.create(rid, config, 0.0)
    assert store.load(rid).config.name == name
    assert store.list()["name"].tolist() == [name]
    store.close()
    for index in root.glob("runs.sqlite*"):
        index.unlink()
    assert RunStore(root).load(rid).config.name == name


LONE_SURROGATES = {
    "in a value": '{"name": "\\ud800"}',
    "in a key": '{"fit": {"\\udfff": 1}}',
    "in a top-level key": '{"\\ud83d": 1}',
}


@pytest.mark.parametrize("case", sorted(LONE_SURROGATES))
def test_a_json_escape_that_is_no_character_is_refused_by_field(case):
    """``\\ud800`` is valid JSON but no character: quoted raw, it could not even be sent to the browser."""
    config, problems = parse_json(LONE_SURROGATES[case])
    assert config is None and problems
    for p in problems:
        p.message.encode("utf-8")  # no lone surrogate left in what is shown or printed
        assert p.field in p.message


@pytest.mark.parametrize("case", sorted(LONE_SURROGATES))
def test_the_train_page_refuses_a_lone_surrogate_without_an_exception(train_page, case):
    """It used to end the page with an app-wide error (UnicodeEncodeError in st.text)."""
    at = _paste(train_page, LONE_SURROGATES[case])
    assert not at.exception, at.exception
    assert any(e.value.startswith("The config was not loaded") for e in at.error)


def test_the_cli_never_prints_terminal_control_characters(tmp_path):
    """A key or value may hold ESC sequences (clear the screen, move the cursor over the errors, set
    the title) or a direction override: the command quotes them as escapes, never raw."""
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "\x1b[2J\x1b[1A\x1b[2Kvalid": 1,
                "fit": {"x\x1b]0;pwned\x07": 2, "max_epochs": "\x1b[31m"},
                "name": "a\u202eb",
            }
        )
    )
    for command in ("validate", "train"):
        extra = ["--runs-dir", str(tmp_path / "runs")] if command == "train" else []
        proc = subprocess.run(
            [sys.executable, "-m", "core", command, str(path), *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in proc.stderr + proc.stdout, (command, proc.stderr)
        assert "\\u001b[2J" in proc.stderr and "fit.x\\u001b]0;pwned\\u0007" in proc.stderr
        assert "name: must be one line of printable characters" in proc.stderr


@pytest.mark.parametrize(
    ("name", "words"),
    [("", "name: must be text of 1 to 200"), ("   ", "name: a run needs a name"),
     ("x" * 201, "name: must be text of 1 to 200")],
)  # fmt: skip
def test_the_train_page_says_why_a_run_name_blocks_start(train_page, name, words):
    """An empty or too long name disabled Start with no message anywhere; a blank one trained, and the
    run then showed as "(unnamed run)"."""
    at = train_page
    at.text_input(key="name").set_value(name).run()
    assert not at.exception
    assert at.button(key="start").disabled
    assert any(words in e.value.replace("\\", "") for e in at.error), [e.value for e in at.error]


def test_a_data_file_that_never_ends_is_refused_at_the_limit(tmp_path):
    """``--data-file /dev/zero`` (a device, or a pipe, reports size 0): read whole, it grew the process
    to 23 GB in a minute. It is read up to the 200 MB limit and refused; a pipe of a small CSV still works.
    """
    import resource

    def two_gb():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    config = tmp_path / "config.json"
    data = RunConfig().to_dict()
    data["data"].update(name="csv", target_column="y")
    config.write_text(json.dumps(data))
    command = [sys.executable, "-m", "core", "validate", str(config), "--runs-dir", str(tmp_path / "runs")]
    proc = subprocess.run(
        [*command, "--data-file", "/dev/zero"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, preexec_fn=two_gb,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: --data-file: /dev/zero is over the 200 MB limit."), proc.stderr
    # A pipe: as `--data-file <(cat iris.csv)` gives it.
    rows = "a,b,y\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(60))
    proc = subprocess.run(
        ["bash", "-c", f"{' '.join(command)} --data-file <(printf '{rows}')"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
