"""The Train page's stopping rules beyond EarlyStopping: widgets drawn from each rule's declared
parameters (core/stopping/rules/), read back into ``RunConfig.stopping_rules`` in order.

A rule the widgets can show exactly (a registered rule, each of its parameters given once as a number
of its type) is edited with them: ``rules.chosen`` lists the rules in the config's order and
``rules.<rule>.<parameter>`` holds each value, unbounded, so a value outside the rule's range is shown
as it is and ``validate()`` names it. Anything else a loaded config holds (an unknown rule, a
parameter missing or unknown, a rule given twice) is kept verbatim at its place in the list, shown as
text beside the problem ``validate()`` reports, until the user removes it: never dropped silently.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from core.config import RuleConfig
from core.stopping.rules.registry import RULES
from core.validate import rule_choices

CHOSEN = "rules.chosen"
RAW = "rules.raw"  # [(index in the config's list, RuleConfig)] the widgets cannot show exactly


def _param_key(rule: str, param: str) -> str:
    return f"rules.{rule}.{param}"


def _monitors_key(rule: str) -> str:
    return f"rules.{rule}.monitors"


def _editable(rule: RuleConfig, earlier: set[str]) -> bool:
    """The widgets show this rule exactly: every parameter once, of its type, nothing else."""
    spec = RULES.get(rule.name)
    if spec is None or rule.name not in rule_choices() or rule.name in earlier:
        return False
    if set(rule.params) != {p.name for p in spec.parameters}:
        return False
    if rule.monitors and not spec.several_monitors:
        return False
    return all(not p.integer or isinstance(rule.params[p.name], int) for p in spec.parameters)


def apply_rules(rules: list[RuleConfig]) -> None:
    """Puts a config's rules into the widgets (before they are drawn)."""
    state = st.session_state
    chosen: list[str] = []
    raw: list[tuple[int, RuleConfig]] = []
    for i, rule in enumerate(rules):
        if _editable(rule, set(chosen)):
            chosen.append(rule.name)
            for name, value in rule.params.items():
                state[_param_key(rule.name, name)] = value
            if RULES[rule.name].several_monitors:
                state[_monitors_key(rule.name)] = list(rule.monitors)
        else:
            raw.append((i, rule))
    state[CHOSEN] = chosen
    state[RAW] = raw


def read_rules() -> list[RuleConfig]:
    """The rules the widgets describe, with the kept ones at their places."""
    state = st.session_state
    out = []
    for name in state.get(CHOSEN, []):
        params = {p.name: state.get(_param_key(name, p.name), p.default) for p in RULES[name].parameters}
        monitors = list(state.get(_monitors_key(name), [])) if RULES[name].several_monitors else []
        out.append(RuleConfig(name, params, monitors))
    for index, rule in state.get(RAW, []):
        out.insert(min(index, len(out)), rule)
    return out


def _drop_raw() -> None:
    st.session_state[RAW] = []


def rules_section(monitor: str, mode: str | None, logged: list[str]) -> None:
    """Choose rules and set their parameters; says which monitor they watch (``logged``: the metrics
    a rule on several metrics can pick from)."""
    state = st.session_state
    for name in state.get(CHOSEN, []):  # a rule just added starts from its defaults
        for p in RULES[name].parameters:
            state.setdefault(_param_key(name, p.name), p.default)
    st.multiselect(
        "Rules beyond EarlyStopping",
        rule_choices(),
        key=CHOSEN,
        format_func=lambda n: RULES[n].label,
        placeholder="None: EarlyStopping and max epochs decide",
        help="Any rule chosen here can end the run; the first to fire names itself in the stop reason.",
    )
    direction = {"min": "lower is better", "max": "higher is better"}.get(mode or "", "mode not known yet")
    st.caption(
        f"They watch EarlyStopping's monitor, {monitor} ({direction}), also when EarlyStopping is off. "
        "A rule only decides when to stop: the model kept is ModelCheckpoint's."
    )
    for name in state.get(CHOSEN, []):
        spec = RULES[name]
        st.markdown(f"**{spec.label}**")  # the registry's own text, never the user's
        st.caption(spec.description)
        if spec.several_monitors:
            chosen = state.get(_monitors_key(name), [])
            st.multiselect(
                "Metrics", list(dict.fromkeys([*logged, *chosen])), key=_monitors_key(name),
                placeholder="two or more of the logged metrics",
                help="Each watched in its own direction (loss down, accuracy up).",
            )  # fmt: skip
        columns = st.columns(len(spec.parameters)) if spec.parameters else []
        for column, p in zip(columns, spec.parameters, strict=True):
            value = state.get(_param_key(name, p.name))
            integer = isinstance(value, int) and not isinstance(value, bool)
            column.number_input(
                p.label,
                key=_param_key(name, p.name),
                step=1 if integer else None,
                format="%d" if integer else "%.6g",
                help=f"{p.help} From {p.low:g} to {p.high:g}.",
            )
    raw = state.get(RAW, [])
    if raw:
        st.warning(
            "The loaded config has stopping rules this page cannot edit (see the problems below). "
            "They are kept as they are until you remove them."
        )
        # The config's own text: shown as plain text, never Markdown.
        st.text("\n".join(f"stopping_rules[{i}]: {json.dumps(_plain(r), ensure_ascii=True)}" for i, r in raw))
        st.button("Remove these rules", key="rules.drop_raw", on_click=_drop_raw)


def _plain(rule: RuleConfig) -> dict[str, Any]:
    return {"name": rule.name, "params": dict(rule.params)}
