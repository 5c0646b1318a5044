"""The monitoring report: one self-contained HTML page (plots inline as PNG), and optionally Evidently's.

matplotlib comes with MLflow, not with shelfcast: without it the page has
the tables and no plots. Evidently's report is asked for by the
`monitor.evidently` setting (`shelfcast monitor --evidently`) and needs the
optional `reports` extra; without it the monitoring notes say so.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from shelfcast.io.plots import _pyplot
from shelfcast.monitoring.drift import FeatureDrift

if TYPE_CHECKING:
    from shelfcast.monitoring.summary import MonitorReport, TaskMonitor

log = logging.getLogger(__name__)
PLOTTED = 20  # features with a plot besides the alarms (every alarm has one): the largest effects
NOT_MEASURED = "not measured yet"
FONT = 10  # points, for ticks, labels and legends: readable at the page's size
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.alarm{background:#fde2e1}
.ok{color:#176117}.bad{color:#b00020;font-weight:bold}img{display:block;max-width:100%}.note{color:#555}
"""


def _png(fig: Any) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    if plt is not None:
        plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _histogram(reference: pl.Series, current: pl.Series, kind: str) -> str:
    plt = _pyplot()
    if plt is None:
        return ""
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    if kind == "categorical":
        ref = reference.cast(pl.String).fill_null("(null)").value_counts(normalize=True, name="share")
        cur = current.cast(pl.String).fill_null("(null)").value_counts(normalize=True, name="share")
        both = ref.join(cur, on=reference.name, how="full", coalesce=True, suffix="_cur").fill_null(0.0)
        both = both.sort("share", descending=True).head(10)
        x = np.arange(both.height)
        ax.bar(x - 0.2, both["share"].to_numpy(), 0.4, label="reference")
        ax.bar(x + 0.2, both["share_cur"].to_numpy(), 0.4, label="current")
        ax.set_xticks(x, [str(v)[:12] for v in both[reference.name].to_list()], fontsize=FONT, rotation=45)
    else:
        a = reference.cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
        b = current.cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
        values = np.concatenate([a, b])
        if values.size == 0:
            plt.close(fig)
            return ""
        lo, hi = np.quantile(values, [0.01, 0.99])
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, 25)
        ax.hist(np.clip(a, lo, hi), bins=edges, density=True, alpha=0.5, label="reference")
        ax.hist(np.clip(b, lo, hi), bins=edges, density=True, alpha=0.5, label="current")
    ax.tick_params(labelsize=FONT)
    ax.set_ylabel("share" if kind == "categorical" else "density", fontsize=FONT)
    ax.legend(fontsize=FONT)
    return _png(fig)


def _accuracy_plot(monitor: TaskMonitor, tolerance: float | None = None) -> str:
    plt = _pyplot()
    if plt is None or not monitor.accuracy_over_time:
        return ""
    frame = pl.DataFrame(monitor.accuracy_over_time).with_columns(pl.col("date").str.to_date())
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for (version,), part in frame.sort("date").group_by("model_version", maintain_order=True):
        ax.plot(part["date"].to_list(), part["value"].to_numpy(), marker="o", ms=3, label=f"v{version}")
    if monitor.backtest_value is not None:
        ax.axhline(monitor.backtest_value, color="grey", linestyle="--", label="backtest")
    ax.set_ylabel("WAPE per day" if monitor.task == "demand" else "F1 per origin", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.legend(fontsize=FONT)
    return _png(fig)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def _feature_rows(monitor: TaskMonitor, windows: tuple[pl.DataFrame, pl.DataFrame] | None) -> str:
    rows = []
    ranked = sorted(monitor.features, key=lambda f: (not f.alarm, -f.effect))
    plotted = {f.feature for f in ranked if f.alarm} | {f.feature for f in ranked[:PLOTTED]}
    for f in ranked:
        plot = ""
        if windows is not None and f.feature in plotted:
            plot = _histogram(windows[0][f.feature], windows[1][f.feature], f.kind)
        rows.append(_row(f, plot))
    return "".join(rows)


def _row(f: FeatureDrift, plot: str) -> str:
    cls = ' class="alarm"' if f.alarm else ""
    return (
        f"<tr{cls}><td>{html.escape(f.feature)}</td><td>{f.kind}</td><td>{_fmt(f.psi)}</td><td>{_fmt(f.ks)}</td>"
        f"<td>{_fmt(f.js)}</td><td>{_fmt(f.p_value, 3)}</td><td>{f.n_effective:.0f}</td>"
        f"<td>{_fmt(f.null_reference, 2)} / {_fmt(f.null_current, 2)}</td>"
        f"<td>{'ALARM' if f.alarm else ''}</td><td>{plot}</td></tr>"
    )


_HEAD = (
    "<tr><th>feature</th><th>kind</th><th>PSI</th><th>KS</th><th>JS</th><th>p-value</th><th>effective n</th>"
    "<th>null share ref / cur</th><th>alarm</th><th>reference vs current</th></tr>"
)


def _accuracy_table(monitor: TaskMonitor) -> str:
    """Per version: its live figure and rows (or "not measured yet"), and the champion's backtest figure in a
    column of its own: a backtest is not a live measure."""
    champion = monitor.model_version or ""
    rows = dict(monitor.rows_by_version)
    rows.setdefault(champion, 0)
    lines = []
    for version, n in rows.items():
        live = monitor.live_by_version.get(version)
        shown = _fmt(live) if n and live is not None else NOT_MEASURED
        backtest = _fmt(monitor.backtest_value) if version == champion else ""
        lines.append(f"<tr><td>v{html.escape(version)}</td><td>{shown}</td><td>{n:,}</td><td>{backtest}</td></tr>")
    return (
        "<table><tr><th>version</th><th>live</th><th>live rows</th><th>backtest</th></tr>" + "".join(lines) + "</table>"
    )


def _task_section(monitor: TaskMonitor, windows: tuple[pl.DataFrame, pl.DataFrame] | None) -> str:
    parts = [f"<h2>{monitor.task}</h2>"]
    if monitor.model_version is None:
        notes = "; ".join(monitor.notes)
        return parts[0] + f'<p class="note">Not monitored: {html.escape(notes)}</p>'
    verdict = (
        f'<span class="bad">drift on {len(monitor.drifted_features)} feature(s)</span>'
        if monitor.drift_alarm
        else '<span class="ok">no data drift</span>'
    )
    pred = '<span class="bad">drifted</span>' if monitor.prediction_drift_alarm else '<span class="ok">stable</span>'
    if monitor.degraded:
        acc = '<span class="bad">degraded</span>'
    elif monitor.evaluated_rows == 0 or monitor.live_value is None:  # nothing measured is not a good result
        acc = f'<span class="note">{NOT_MEASURED}</span>'
    else:
        acc = '<span class="ok">within tolerance</span>'
    parts.append(
        f"<p>Champion v{html.escape(monitor.model_version)}: {verdict}; predictions {pred}; live accuracy {acc}. "
        f"Reference rows {monitor.reference_rows:,}, current rows {monitor.current_rows:,}.</p>"
    )
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in monitor.notes]
    parts.append("<h3>Prediction drift</h3>")
    if monitor.prediction_drift is not None:
        plot = _histogram(windows[0]["prediction"], windows[1]["prediction"], "numeric") if windows else ""
        parts.append(f"<table>{_HEAD}{_row(monitor.prediction_drift, plot)}</table>")
    parts.append(f"<h3>Live accuracy ({monitor.live_metric})</h3>")
    parts.append(_accuracy_table(monitor))
    parts.append(
        f"<p>Evaluated: {monitor.evaluated_rows:,} rows over {monitor.evaluated_days} day(s) "
        f"with known actuals.</p>{_accuracy_plot(monitor)}"
    )
    parts.append(f"<h3>Feature drift</h3><table>{_HEAD}{_feature_rows(monitor, windows)}</table>")
    return "".join(parts)


def write_html(report: MonitorReport, path: Path) -> Path:
    """The report a person reads: per task the verdicts, prediction drift, accuracy over time, per-feature drift."""
    sections = "".join(_task_section(m, report.windows.get(t)) for t, m in report.tasks.items())
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in report.notes)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>shelfcast monitoring {report.created_at:%Y-%m-%d}"
        f"</title><style>{_CSS}</style></head><body><h1>shelfcast monitoring</h1>"
        f"<p>{report.created_at:%Y-%m-%d %H:%M:%S %Z}: current window = the {report.window_days} days of origins "
        f"before {report.data_last_date}, against each champion's reference window saved at training. A feature "
        "alarms only with both a large effect (PSI or Jensen-Shannon) and a significant test after Bonferroni "
        f"correction. Calendar and age features are not tested.</p>{notes}{sections}</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


def evidently_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("evidently") is not None


def evidently_reports(report: MonitorReport, folder: Path) -> list[Path]:
    """Evidently's data drift report per task when the `reports` extra is installed; nothing otherwise."""
    try:
        from evidently import Report
        from evidently.presets import DataDriftPreset
    except ImportError:
        return []
    written = []
    for task, (reference, current) in report.windows.items():
        wanted = [f.feature for f in report.tasks[task].features] + ["prediction"]
        # Evidently refuses a column with no value in either window (`year_ago` before a year of history).
        columns = [
            c
            for c in wanted
            if reference[c].null_count() < reference.height and current[c].null_count() < current.height
        ]
        if skipped := sorted(set(wanted) - set(columns)):
            log.info("Evidently report for %s leaves out %s: no value in one window", task, ", ".join(skipped))
        try:
            snapshot = Report([DataDriftPreset()]).run(
                current_data=current.select(columns).to_pandas(), reference_data=reference.select(columns).to_pandas()
            )
            path = folder / f"evidently_{task}.html"
            snapshot.save_html(str(path))
            written.append(path)
        # Broad on purpose: Evidently (an optional extra) fails in its own ways on odd data, and its report
        # must never break monitoring.
        except Exception as exc:
            log.warning("Evidently report for %s not written: %s", task, exc)
    return written
