"""Write the Grafana dashboard from Grafana's typed model (grafana-foundation-sdk).

    python bentos/observability/grafana/dashboard.py           # rewrite the JSON
    python bentos/observability/grafana/dashboard.py --check   # exit 1 when it is stale

The JSON (dashboards/model-packaging.json) is what Grafana provisions; edit this file, not the
JSON. Every query reads the `datasource` variable, so one file works with any Prometheus. Metric
and label names come from bentos/observability/metrics.yaml (the tests hold them to it).
"""

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import (
    common as common_builders,
)
from grafana_foundation_sdk.builders import (
    dashboard as dashboard_builders,
)
from grafana_foundation_sdk.builders import (
    prometheus,
    stat,
    statetimeline,
    timeseries,
)
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    GridPos,
    Panel,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "dashboards" / "model-packaging.json"
UID = "model-packaging"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# Every series of this service: the job picked at the top, and the models picked there.
JOB = 'job=~"$job"'
MODEL = f'{JOB}, model=~"$model"'
RATE = "$__rate_interval"
# The alerting rules' budgets (bentos/observability/prometheus/alerts.yaml), drawn as thresholds.
ERROR_RATIO_BUDGET = 0.05
P99_BUDGET_S = 1.0
PSI_WARN, PSI_ALERT = 0.1, 0.25


@dataclass(frozen=True)
class Query:
    """One PromQL query and the legend of its series."""

    expr: str
    legend: str = ""
    instant: bool = False


def _target(query: Query, ref_id: str) -> prometheus.Dataquery:
    target = (
        prometheus.Dataquery()
        .expr(query.expr)
        .ref_id(ref_id)
        .datasource(DATASOURCE)
        .legend_format(query.legend or "__auto")
    )
    return target.instant() if query.instant else target.range()


def _thresholds(*steps: tuple[float | None, str]) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


class Layout:
    """Panel ids and grid positions, row by row (24 columns)."""

    def __init__(self) -> None:
        self.next_id = 1
        self.y = 0
        self.x = 0
        self.row_height = 0

    def take_id(self) -> int:
        """The next panel id."""
        panel_id = self.next_id
        self.next_id += 1
        return panel_id

    def row(self) -> GridPos:
        """A full-width row header below everything placed so far."""
        self.y += self.row_height
        self.x, self.row_height = 0, 0
        position = GridPos(h=1, w=24, x=0, y=self.y)
        self.y += 1
        return position

    def place(self, width: int, height: int) -> GridPos:
        """The next free slot of this size, wrapping to a new line when the line is full."""
        if self.x + width > 24:
            self.y += self.row_height
            self.x, self.row_height = 0, 0
        position = GridPos(h=height, w=width, x=self.x, y=self.y)
        self.x += width
        self.row_height = max(self.row_height, height)
        return position


PanelBuilder = timeseries.Panel | stat.Panel | statetimeline.Panel


def _panel(
    layout: Layout,
    panel: PanelBuilder,
    title: str,
    description: str,
    queries: Sequence[Query],
    unit: str,
    width: int = 12,
    height: int = 8,
) -> PanelBuilder:
    panel = (
        panel.id(layout.take_id())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .grid_pos(layout.place(width, height))
    )
    for index, query in enumerate(queries):
        panel = panel.with_target(_target(query, chr(ord("A") + index)))
    return panel


def _timeseries(
    layout: Layout,
    title: str,
    description: str,
    queries: Sequence[Query],
    unit: str,
    width: int = 12,
    thresholds: dashboard_builders.ThresholdsConfig | None = None,
) -> PanelBuilder:
    panel = (
        timeseries.Panel()
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["mean", "max", "lastNotNull"])
        )
    )
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        )
    return _panel(layout, panel, title, description, queries, unit, width)


def _stat(
    layout: Layout,
    title: str,
    description: str,
    query: Query,
    unit: str,
    thresholds: dashboard_builders.ThresholdsConfig,
) -> PanelBuilder:
    panel = (
        stat.Panel()
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(thresholds)
    )
    return _panel(layout, panel, title, description, [query], unit, width=6, height=4)


def _quantiles(metric: str, by: str, selector: str, legend: str) -> list[Query]:
    """p50, p90 and p99 of a histogram, per `by` labels."""
    return [
        Query(
            f"histogram_quantile({q}, sum by (le, {by}) "
            f"(rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"p{round(q * 100)} {legend}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


def _traffic(layout: Layout) -> list[Builder[Panel]]:
    requests = f"sum(rate(http_requests_total{{{JOB}}}[{RATE}]))"
    return [
        _stat(
            layout,
            "Ready replicas",
            "Pods whose /ready says ready, of all pods reporting (service_ready).",
            Query(f"sum(service_ready{{{JOB}}}) / count(service_ready{{{JOB}}})"),
            "percentunit",
            _thresholds((None, "red"), (0.5, "orange"), (1, "green")),
        ),
        _stat(
            layout,
            "Requests",
            "HTTP requests per second, all routes.",
            Query(requests),
            "reqps",
            _thresholds((None, "blue")),
        ),
        _stat(
            layout,
            "5xx ratio",
            "Share of requests answered with a 5xx status.",
            Query(f'sum(rate(http_requests_total{{{JOB}, status=~"5.."}}[{RATE}])) / {requests}'),
            "percentunit",
            _thresholds((None, "green"), (ERROR_RATIO_BUDGET, "red")),
        ),
        _stat(
            layout,
            "p99 latency",
            "99th percentile of request duration, all routes.",
            Query(
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(http_request_duration_seconds_bucket{{{JOB}}}[{RATE}])))"
            ),
            "s",
            _thresholds((None, "green"), (P99_BUDGET_S, "red")),
        ),
        _timeseries(
            layout,
            "Requests by route and status",
            "Route templates; `unmatched` counts unknown paths.",
            [
                Query(
                    f"sum by (route, status) (rate(http_requests_total{{{JOB}}}[{RATE}]))",
                    "{{route}} {{status}}",
                )
            ],
            "reqps",
        ),
        _timeseries(
            layout,
            "Errors by code and status",
            "Error envelopes sent, by error code.",
            [
                Query(
                    f"sum by (code, status) (rate(api_errors_total{{{JOB}}}[{RATE}]))",
                    "{{code}} ({{status}})",
                )
            ],
            "reqps",
        ),
        _timeseries(
            layout,
            "Latency by route",
            "Request duration percentiles per route template.",
            _quantiles("http_request_duration_seconds", "route", JOB, "{{route}}"),
            "s",
            thresholds=_thresholds((None, "green"), (P99_BUDGET_S, "red")),
        ),
        _timeseries(
            layout,
            "BentoML requests by endpoint and code",
            "BentoML's own count of the requests its services answered (gateway and runners).",
            [
                Query(
                    "sum by (service_name, endpoint, http_response_code) "
                    f"(rate(bentoml_service_request_total{{{JOB}}}[{RATE}]))",
                    "{{service_name}} {{endpoint}} {{http_response_code}}",
                )
            ],
            "reqps",
        ),
        _timeseries(
            layout,
            "BentoML latency by service",
            "BentoML's own request duration per service (p99), gateway and runners.",
            [
                Query(
                    "histogram_quantile(0.99, sum by (le, service_name) "
                    f"(rate(bentoml_service_request_duration_seconds_bucket{{{JOB}}}[{RATE}])))",
                    "{{service_name}}",
                )
            ],
            "s",
        ),
        _timeseries(
            layout,
            "Requests in progress",
            "BentoML's in-flight requests per service.",
            [
                Query(
                    f"sum by (service_name) (bentoml_service_request_in_progress{{{JOB}}})",
                    "{{service_name}}",
                )
            ],
            "short",
        ),
    ]


def _models(layout: Layout) -> list[Builder[Panel]]:
    by_model = "model, version"
    return [
        _timeseries(
            layout,
            "Predictions by model and version",
            "Rows predicted per second.",
            [
                Query(
                    f"sum by ({by_model}) (rate(predictions_served_total{{{MODEL}}}[{RATE}]))",
                    "{{model}}:{{version}}",
                )
            ],
            "rowsps",
        ),
        _timeseries(
            layout,
            "Inference latency by model and version",
            "Runner call latency seen by the gateway.",
            _quantiles("model_inference_latency_seconds", by_model, MODEL, "{{model}}:{{version}}"),
            "s",
        ),
        _timeseries(
            layout,
            "Rows per runner call by model and version",
            "Batch sizes the runners saw (model_batch_rows): mean and p99.",
            [
                Query(
                    f"sum by ({by_model}) (rate(model_batch_rows_sum{{{MODEL}}}[{RATE}])) / "
                    f"sum by ({by_model}) (rate(model_batch_rows_count{{{MODEL}}}[{RATE}]))",
                    "mean {{model}}:{{version}}",
                ),
                Query(
                    f"histogram_quantile(0.99, sum by (le, {by_model}) "
                    f"(rate(model_batch_rows_bucket{{{MODEL}}}[{RATE}])))",
                    "p99 {{model}}:{{version}}",
                ),
            ],
            "short",
        ),
        _timeseries(
            layout,
            "Rows per coalesced gateway call by framework",
            "Mean rows the gateway sent per runner call after coalescing concurrent requests.",
            [
                Query(
                    f"sum by (framework) (rate(gateway_coalesced_batch_rows_sum{{{JOB}}}[{RATE}]))"
                    " / sum by (framework) "
                    f"(rate(gateway_coalesced_batch_rows_count{{{JOB}}}[{RATE}]))",
                    "{{framework}}",
                )
            ],
            "short",
        ),
        _timeseries(
            layout,
            "Result cache",
            "Inference cache lookups by outcome.",
            [
                Query(
                    f"sum by (outcome) (rate(inference_cache_total{{{JOB}}}[{RATE}]))",
                    "{{outcome}}",
                )
            ],
            "ops",
        ),
        _timeseries(
            layout,
            "BentoML adaptive batch size",
            "Batch sizes BentoML's adaptive batching formed per service and method (p99).",
            [
                Query(
                    "histogram_quantile(0.99, sum by (le, service_name, method_name) "
                    f"(rate(bentoml_service_adaptive_batch_size_bucket{{{JOB}}}[{RATE}])))",
                    "{{service_name}}.{{method_name}}",
                )
            ],
            "short",
        ),
    ]


def _deployments(layout: Layout) -> list[Builder[Panel]]:
    role = "sum by (model) (rate(deployment_requests_total{{{selector}}}[{rate}]))"
    return [
        _timeseries(
            layout,
            "Requests by deployment role",
            "Production, canary, shadow and pinned traffic per model version.",
            [
                Query(
                    "sum by (model, version, role) "
                    f"(rate(deployment_requests_total{{{MODEL}}}[{RATE}]))",
                    "{{model}}:{{version}} {{role}}",
                )
            ],
            "reqps",
        ),
        _timeseries(
            layout,
            "Canary share",
            "Canary requests as a share of production and canary requests, per model.",
            [
                Query(
                    role.format(selector=f'{MODEL}, role="canary"', rate=RATE)
                    + " / "
                    + role.format(selector=f'{MODEL}, role=~"production|canary"', rate=RATE),
                    "{{model}}",
                )
            ],
            "percentunit",
        ),
        _timeseries(
            layout,
            "Shadow jobs by outcome",
            "Copies of production requests run on shadow versions after the response: stored, "
            "dropped (the per-worker queue was full) or failed. Drops mean the shadow comparison "
            "sees fewer rows, never that a caller waited.",
            [
                Query(
                    f"sum by (model, outcome) (rate(shadow_jobs_total{{{MODEL}}}[{RATE}]))",
                    "{{model}} {{outcome}}",
                )
            ],
            "ops",
        ),
        _timeseries(
            layout,
            "Deployment refresh failures",
            "Polls of the deployment state that failed; a worker keeps its last snapshot.",
            [Query(f"sum(rate(deployment_refresh_failures_total{{{JOB}}}[{RATE}]))", "failures")],
            "ops",
        ),
    ]


def _batch(layout: Layout) -> list[Builder[Panel]]:
    chunk = "batch_job_chunk_seconds"
    return [
        _timeseries(
            layout,
            "Batch job rows by outcome",
            "Rows scored by batch jobs per model: scored, or failed their row checks (reported "
            "per row in the job's result).",
            [
                Query(
                    f"sum by (model, outcome) (rate(batch_job_rows_total{{{MODEL}}}[{RATE}]))",
                    "{{model}} {{outcome}}",
                )
            ],
            "rowsps",
        ),
        _timeseries(
            layout,
            "Batch job chunk time",
            "Read, check, score, write and commit one chunk (JOBS_CHUNK_ROWS rows).",
            _quantiles(chunk, "model", MODEL, "{{model}}"),
            "s",
        ),
        _timeseries(
            layout,
            "Batch jobs ended",
            "Jobs by how they ended; `released` is a job handed back to the queue by a "
            "stopping worker (another resumes it after its last committed chunk).",
            [Query(f"sum by (status) (rate(batch_jobs_total{{{JOB}}}[{RATE}]))", "{{status}}")],
            "ops",
        ),
    ]


def _drift(layout: Layout) -> list[Builder[Panel]]:
    psi = "max by (model, version, feature) (model_feature_psi{{{selector}}})"
    return [
        _timeseries(
            layout,
            "Feature drift (PSI)",
            f"Population stability index per feature; above {PSI_ALERT} the drift alert fires.",
            [Query(psi.format(selector=MODEL), "{{model}}:{{version}} {{feature}}")],
            "short",
            thresholds=_thresholds((None, "green"), (PSI_WARN, "orange"), (PSI_ALERT, "red")),
        ),
        _timeseries(
            layout,
            "Most drifted features",
            "The ten features with the highest PSI now.",
            [Query("topk(10, " + psi.format(selector=MODEL) + ")", "{{model}} {{feature}}")],
            "short",
            thresholds=_thresholds((None, "green"), (PSI_WARN, "orange"), (PSI_ALERT, "red")),
        ),
        _timeseries(
            layout,
            "Out-of-range feature values",
            "Values outside the training range, per model and feature.",
            [
                Query(
                    "sum by (model, feature) "
                    f"(rate(feature_out_of_range_total{{{MODEL}}}[{RATE}]))",
                    "{{model}} {{feature}}",
                )
            ],
            "ops",
        ),
        _timeseries(
            layout,
            "Batch scoring rows",
            "Rows scored by batch jobs, by outcome.",
            [
                Query(
                    f"sum by (model, outcome) (rate(batch_job_rows_total{{{MODEL}}}[{RATE}]))",
                    "{{model}} {{outcome}}",
                )
            ],
            "rowsps",
        ),
    ]


def _dependencies(layout: Layout) -> list[Builder[Panel]]:
    return [
        _panel(
            layout,
            statetimeline.Panel()
            .thresholds(_thresholds((None, "red"), (1, "green")))
            .fill_opacity(80)
            .line_width(0)
            .show_value(common.VisibilityMode.NEVER),
            "Dependencies up",
            "1 while every replica reaches the dependency (database, redis, runner:<framework>).",
            [Query(f"min by (dependency) (dependency_up{{{JOB}}})", "{{dependency}}")],
            "bool",
            width=12,
        ),
        _timeseries(
            layout,
            "Circuit breakers open",
            "Replicas whose breaker for the dependency is open.",
            [
                Query(
                    f"sum by (dependency) (circuit_breaker_open{{{JOB}}})",
                    "{{dependency}}",
                )
            ],
            "short",
        ),
        _timeseries(
            layout,
            "Redis failures by use",
            "Failed Redis calls; limits and cache fall back to the process (REDIS_ON_FAILURE).",
            [
                Query(
                    f"sum by (use) (rate(redis_failures_total{{{JOB}}}[{RATE}]))",
                    "{{use}}",
                )
            ],
            "ops",
        ),
        _timeseries(
            layout,
            "Rate-limited requests by route class",
            "429 answers per second.",
            [
                Query(
                    f"sum by (route_class) (rate(rate_limited_total{{{JOB}}}[{RATE}]))",
                    "{{route_class}}",
                )
            ],
            "reqps",
        ),
        _timeseries(
            layout,
            "Ready and scraped replicas",
            "Replicas ready (service_ready) against replicas Prometheus scrapes (up).",
            [
                Query(f"sum(service_ready{{{JOB}}})", "ready"),
                Query(f"sum(up{{{JOB}}})", "scraped"),
            ],
            "short",
            width=24,
        ),
    ]


def build() -> dashboard_builders.Dashboard:
    """The dashboard: traffic, models, deployments, batch jobs, drift, dependencies (one row
    each)."""
    layout = Layout()
    board = (
        dashboard_builders.Dashboard("Model packaging")
        .uid(UID)
        .description("The BentoML gateway and its runners: traffic, models, drift, dependencies.")
        .tags(["model-packaging", "bentoml"])
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("1m")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
        .with_variable(
            dashboard_builders.DatasourceVariable("datasource")
            .label("Data source")
            .type("prometheus")
        )
        .with_variable(
            dashboard_builders.QueryVariable("job")
            .label("Job")
            .datasource(DATASOURCE)
            .query("label_values(bentoml_service_request_total, job)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
        .with_variable(
            dashboard_builders.QueryVariable("model")
            .label("Model")
            .datasource(DATASOURCE)
            .query('label_values(predictions_served_total{job=~"$job"}, model)')
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )
    sections = [
        ("Traffic", _traffic),
        ("Models", _models),
        ("Deployments: canary and shadow", _deployments),
        ("Batch jobs", _batch),
        ("Drift", _drift),
        ("Dependencies, limits and readiness", _dependencies),
    ]
    for title, panels in sections:
        board = board.with_row(
            dashboard_builders.Row(title).id(layout.take_id()).grid_pos(layout.row())
        )
        for panel in panels(layout):
            board = board.with_panel(panel)
    return board


def render() -> str:
    """The dashboard as provisionable JSON."""
    return json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the JSON is stale")
    args = parser.parse_args(argv)
    text = render()
    if OUTPUT.exists() and OUTPUT.read_text() == text:
        return 0
    if args.check:
        print(f"stale: {OUTPUT.name}; run `python {Path(__file__).name}`", file=sys.stderr)
        return 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
