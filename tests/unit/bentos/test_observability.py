"""bentos/observability: the Grafana dashboard against Grafana's typed model and the grid's rules,
the alerting rules through promtool, and every PromQL query (and the code's metric definitions)
against the one list of metric names, bentos/observability/metrics.yaml."""

import ast
import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from grafana_foundation_sdk.cog import runtime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

ROOT = Path(__file__).resolve().parents[3]
OBSERVABILITY = ROOT / "bentos" / "observability"
GRAFANA = OBSERVABILITY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "model-packaging.json"
ALERTS = OBSERVABILITY / "prometheus" / "alerts.yaml"
ALERT_TESTS = OBSERVABILITY / "prometheus" / "alerts_test.yaml"
CATALOG = yaml.safe_load((OBSERVABILITY / "metrics.yaml").read_text())
# Installed by `make test` (bentos/observability/install_promtool.sh) next to this Python.
PROMTOOL = Path(sys.executable).parent / "promtool"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana's built-in interval variables, replaced by a duration before parsing.
GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
# What the dashboard must show and the alerting rules must cover (issue 13).
REQUIRED_ALERTS = {
    "ModelPackagingHighErrorRatio",
    "ModelPackagingLatencyP99OverBudget",
    "ModelPackagingReplicaNotReady",
    "ModelPackagingNoReplicaReady",
    "ModelFeatureDrift",
    "ModelPackagingDatabaseDown",
    "ModelPackagingRedisDegraded",
    "ModelPackagingCircuitBreakerOpen",
}

register_default_plugins()


# --- the metric list ----------------------------------------------------------------------------


def _series_labels() -> dict[str, set[str]]:
    """Every queryable series name -> its labels (histograms as _bucket with le, _sum, _count)."""
    series: dict[str, set[str]] = {}
    for name, metric in CATALOG["metrics"].items():
        labels = set(metric["labels"])
        if metric["type"] == "histogram":
            series[f"{name}_bucket"] = labels | {"le"}
            series[f"{name}_sum"] = labels
            series[f"{name}_count"] = labels
        else:
            series[name] = labels
    return series


SERIES = _series_labels()
TARGET_LABELS = set(CATALOG["target_labels"])


def _nodes(expr: promql_parser.Expr) -> Iterator[Any]:
    found: list[Any] = []
    promql_parser.walk(expr, pre_visit=found.append)
    return iter(found)


def promql_problems(query: str) -> list[str]:
    """What is wrong with a PromQL query: syntax, or a metric or label not in metrics.yaml."""
    for variable, duration in GRAFANA_INTERVALS.items():
        query = query.replace(variable, duration)
    try:
        expr = promql_parser.parse(query)
    except ValueError as error:
        return [f"does not parse ({error}): {query}"]
    problems: list[str] = []
    names: list[str] = []
    for node in _nodes(expr):
        if not isinstance(node, promql_parser.VectorSelector):
            continue
        matchers = node.matchers.matchers
        name = node.name or next((m.value for m in matchers if m.name == "__name__"), "")
        names.append(name)
        if name not in SERIES:
            problems.append(f"metric {name!r} is not in metrics.yaml: {query}")
            continue
        for matcher in matchers:
            if matcher.name not in SERIES[name] | TARGET_LABELS | {"__name__"}:
                problems.append(f"{name} has no label {matcher.name!r}: {query}")
    known = TARGET_LABELS.union(*(SERIES.get(name, set()) for name in names))
    for node in _nodes(expr):
        grouping: list[str] = []
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouping = list(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            grouping = list(matching.labels if matching else []) + list(
                node.modifier.group_labels or []
            )
        problems += [
            f"no metric here has label {label!r}: {query}"
            for label in grouping
            if label not in known
        ]
    return problems


def test_the_metric_list_is_well_formed() -> None:
    statuses = {"existing", "planned", "bentoml", "prometheus"}
    for name, metric in CATALOG["metrics"].items():
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name
        assert metric["type"] in {"counter", "gauge", "histogram"}, name
        assert metric["status"] in statuses, name
        assert not (metric["type"] == "counter") ^ name.endswith("_total"), name
        assert not set(metric["labels"]) & TARGET_LABELS - {"endpoint"}, name


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("sum(rate(predictions_served_total[5m]))", None),
        ("sum by (model) (rate(predictions_served_totl[5m]))", "'predictions_served_totl'"),
        ('rate(api_errors_total{route="x"}[5m])', "no label 'route'"),
        ("sum by (feature) (rate(api_errors_total[5m]))", "label 'feature'"),
        ('sum(service_ready{model="x"}) / sum(predictions_served_total)', "no label 'model'"),
        ("histogram_quantile(0.9, rate(model_inference_latency_seconds[5m]))", "not in metrics"),
        ("sum(rate(predictions_served_total[5m]", "does not parse"),
    ],
)
def test_the_promql_check_finds_unknown_names(query: str, problem: str | None) -> None:
    problems = promql_problems(query)

    if problem is None:
        assert problems == []
    else:
        assert problems
        assert problem in problems[0]


def _metric_definitions() -> dict[str, tuple[str, list[str], str]]:
    """Exposed name -> (type, labels, file) of every prometheus_client metric in services/."""
    kinds = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}
    found: dict[str, tuple[str, list[str], str]] = {}
    for path in sorted((ROOT / "services").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            kind = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if kind not in kinds:
                continue
            arguments = dict(zip(("name", "documentation", "labelnames"), node.args, strict=False))
            arguments.update({k.arg: k.value for k in node.keywords if k.arg})
            if not isinstance(arguments.get("name"), ast.Constant):
                continue
            parts = [arguments.get("namespace"), arguments.get("subsystem"), arguments["name"]]
            name = "_".join(ast.literal_eval(p) for p in parts if p is not None and p)
            if kinds[kind] == "counter" and not name.endswith("_total"):
                name += "_total"
            labels = ast.literal_eval(arguments["labelnames"]) if "labelnames" in arguments else []
            found[name] = (kinds[kind], list(labels), str(path.relative_to(ROOT)))
    return found


def test_every_metric_the_code_defines_is_listed_with_its_type_and_labels() -> None:
    listed = CATALOG["metrics"]

    for name, (kind, labels, path) in _metric_definitions().items():
        assert name in listed, f"{path} defines {name}, which metrics.yaml does not list"
        assert listed[name]["status"] in {"existing", "planned"}, name
        assert kind == listed[name]["type"], f"{path}: {name} is a {kind}"
        assert set(labels) == set(listed[name]["labels"]), f"{path}: {name} labels {labels}"


def test_every_existing_metric_is_defined_in_the_code() -> None:
    existing = {name for name, m in CATALOG["metrics"].items() if m["status"] == "existing"}

    assert existing <= set(_metric_definitions())


# --- the dashboard -----------------------------------------------------------------------------


def _panels(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Top-level panels and those inside collapsed rows."""
    panels = []
    for panel in document.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def _grid_problems(panels: list[dict[str, Any]]) -> list[str]:
    problems = []
    cells: dict[tuple[int, int], object] = {}
    for panel in panels:
        grid = panel.get("gridPos")
        if not isinstance(grid, dict) or not all(
            isinstance(grid.get(k), int) and not isinstance(grid.get(k), bool) for k in "hwxy"
        ):
            problems.append(f"panel {panel.get('id')}: gridPos needs integer h, w, x, y")
            continue
        if grid["x"] < 0 or grid["y"] < 0 or grid["w"] < 1 or grid["h"] < 1:
            problems.append(f"panel {panel['id']}: gridPos out of range {grid}")
        if grid["x"] + grid["w"] > 24:
            problems.append(f"panel {panel['id']}: gridPos wider than the 24-column grid")
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                if (x, y) in cells:
                    problems.append(f"panel {panel['id']} overlaps panel {cells[(x, y)]}")
                    break
                cells[(x, y)] = panel["id"]
            else:
                continue
            break
    return problems


def _variable_problems(document: dict[str, Any]) -> list[str]:
    problems = []
    variables = {v.get("name"): v for v in document.get("templating", {}).get("list", [])}
    source = variables.get("datasource", {})
    if (source.get("type"), source.get("query")) != ("datasource", "prometheus"):
        problems.append("no `datasource` variable of type datasource for Prometheus")
    for variable in variables.values():
        if variable.get("type") != "query":
            continue
        if variable.get("datasource") != DATASOURCE:
            problems.append(f"variable {variable['name']}: datasource is not ${{datasource}}")
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable.get("query", ""))
        if match is None:
            problems.append(f"variable {variable['name']}: not a label_values() query")
            continue
        problems += promql_problems(match[1])
        labels = SERIES.get(promql_parser.parse(match[1]).name or "", set()) | TARGET_LABELS
        if match[2] not in labels:
            problems.append(f"variable {variable['name']}: no label {match[2]!r}")
    return problems


def dashboard_problems(document: dict[str, Any]) -> list[str]:
    """What is wrong with a dashboard: Grafana's model, ids, grid, data sources, queries."""
    problems = []
    try:
        decoded = Dashboard.from_json(copy.deepcopy(document))
        round_trip = json.loads(json.dumps(decoded, cls=JSONEncoder))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return [f"Grafana's dashboard model cannot read it: {error!r}"]
    if round_trip != document:
        problems.append("fields Grafana's dashboard model does not know, or a missing default")
    if document.get("schemaVersion") != Dashboard().schema_version:
        problems.append(f"schemaVersion is not {Dashboard().schema_version}")
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,40}", str(document.get("uid", ""))):
        problems.append("uid must be 8-40 characters of [A-Za-z0-9_-]")
    panels = _panels(document)
    ids = [panel.get("id") for panel in panels]
    if any(not isinstance(i, int) for i in ids) or len(ids) != len(set(ids)):
        problems.append(f"panel ids must be unique integers: {ids}")
    problems += _grid_problems(panels)
    problems += _variable_problems(document)
    panel_types = set(runtime.Runtime().panelcfg_variants) | {"row"}
    for panel in panels:
        if panel.get("type") not in panel_types:
            problems.append(f"panel {panel.get('id')}: unknown type {panel.get('type')!r}")
        if panel.get("type") == "row":
            continue
        if panel.get("datasource") != DATASOURCE:
            problems.append(f"panel {panel.get('id')}: datasource is not ${{datasource}}")
        targets = panel.get("targets", [])
        if not targets or len({t.get("refId") for t in targets}) != len(targets):
            problems.append(f"panel {panel.get('id')}: needs targets with distinct refIds")
        for target in targets:
            if target.get("datasource") != DATASOURCE:
                problems.append(f"panel {panel.get('id')}: a target's datasource is not ours")
            problems += promql_problems(target.get("expr", ""))
    return problems


def _dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def test_the_committed_dashboard_is_what_the_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(GRAFANA / "dashboard.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr


def test_the_dashboard_passes_every_check() -> None:
    assert dashboard_problems(_dashboard()) == []


def test_the_dashboard_shows_every_metric_of_the_service() -> None:
    shown = {
        node.name
        for panel in _panels(_dashboard())
        for target in panel.get("targets", [])
        for node in _nodes(promql_parser.parse(target["expr"].replace("$__rate_interval", "5m")))
        if isinstance(node, promql_parser.VectorSelector)
    }
    listed = set(CATALOG["metrics"])

    assert {re.sub(r"_(bucket|sum|count)$", "", name) for name in shown} >= listed


def _break(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = _dashboard()
    change(document)
    return document


def _first_stat(document: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in document["panels"] if p["type"] == "stat")


BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "a panel without its datasource": (
        lambda d: _first_stat(d).pop("datasource"),
        "datasource is not",
    ),
    "a target without its datasource": (
        lambda d: _first_stat(d)["targets"][0].pop("datasource"),
        "target's datasource",
    ),
    "duplicate panel ids": (
        lambda d: d["panels"][2].update(id=d["panels"][1]["id"]),
        "unique integers",
    ),
    "a panel past the grid's edge": (
        lambda d: _first_stat(d)["gridPos"].update(x=20),
        "24-column",
    ),
    "overlapping panels": (
        lambda d: d["panels"][2]["gridPos"].update(x=d["panels"][1]["gridPos"]["x"]),
        "overlaps",
    ),
    "a gridPos given as text": (
        lambda d: _first_stat(d)["gridPos"].update(w="6"),
        "integer h, w, x, y",
    ),
    "a misspelt field": (
        lambda d: _first_stat(d).update(gridpos={"h": 1}),
        "does not know",
    ),
    "an unknown panel type": (
        lambda d: _first_stat(d).update(type="timeseriez"),
        "unknown type",
    ),
    "no datasource variable": (
        lambda d: d["templating"]["list"].pop(0),
        "no `datasource` variable",
    ),
    "a metric not in the list": (
        lambda d: _first_stat(d)["targets"][0].update(expr="sum(service_readyy)"),
        "'service_readyy'",
    ),
    "a label the metric lacks": (
        lambda d: _first_stat(d)["targets"][0].update(expr='sum(service_ready{model="x"})'),
        "no label 'model'",
    ),
    "two targets with one refId": (
        lambda d: _first_stat(d)["targets"].append(_first_stat(d)["targets"][0]),
        "distinct refIds",
    ),
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_the_dashboard_check_finds(broken: str) -> None:
    change, problem = BROKEN[broken]

    problems = dashboard_problems(_break(change))

    assert any(problem in p for p in problems), problems


def test_grafana_provisions_the_dashboard_folder() -> None:
    provisioning = GRAFANA / "provisioning" / "dashboards" / "model-packaging.yaml"
    config = yaml.safe_load(provisioning.read_text())
    (provider,) = config["providers"]

    assert config["apiVersion"] == 1
    assert provider["type"] == "file"
    assert provider["options"]["path"].endswith("/model-packaging")
    assert provider["allowUiUpdates"] is False  # the JSON is generated


# --- the alerting rules ------------------------------------------------------------------------


def _promtool(*args: str, cwd: Path = ALERTS.parent) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing: `make test` installs it (make promtool)"
    return subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = _promtool("check", "rules", ALERTS.name)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = _promtool("test", "rules", ALERT_TESTS.name)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_unit_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    text = ALERTS.read_text()
    assert text.count("(model_feature_psi) >= 0.25") == 1
    moved = text.replace("(model_feature_psi) >= 0.25", "(model_feature_psi) >= 0.5")
    (tmp_path / ALERTS.name).write_text(moved)
    (tmp_path / ALERT_TESTS.name).write_text(ALERT_TESTS.read_text())

    result = _promtool("test", "rules", ALERT_TESTS.name, cwd=tmp_path)

    assert result.returncode != 0
    assert "ModelFeatureDrift" in result.stdout + result.stderr


def test_the_required_alerts_exist_with_a_severity_and_a_summary() -> None:
    rules = {rule["alert"]: rule for rule in _rules()}

    assert set(rules) >= REQUIRED_ALERTS
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert rule["annotations"]["summary"], name


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = [
        case
        for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]

    for rule in _rules():
        own = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in own), f"{rule['alert']} never fires in a test"
        assert any(not case["exp_alerts"] for case in own), f"{rule['alert']} never stays quiet"


def test_the_alerts_use_only_listed_metrics() -> None:
    for rule in _rules():
        assert promql_problems(rule["expr"]) == [], rule["alert"]
