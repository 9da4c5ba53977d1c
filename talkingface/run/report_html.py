"""``report.html``: what a researcher looks at before trusting a number.

One self-contained page (images inlined): the metric table, per-clip LSE-C vs
LSE-D scatter, the sync-offset curves of the worst clips, and a contact sheet
of input / output mouth crops (and their difference) for a few clips.
"""
from __future__ import annotations

import base64
import html
import io
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from talkingface.atomic import atomic_write_text

log = logging.getLogger(__name__)


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _file_png(path: str | Path) -> str | None:
    try:
        return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
    except OSError:
        return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def scatter_figure(per_clip: list[dict[str, Any]]) -> Any:
    """The per-clip LSE-C / LSE-D scatter; the three worst clips are labelled, every label inside the axes."""
    points = [(r["id"], _num(r.get("lse_d")), _num(r.get("lse_c"))) for r in per_clip]
    points = [p for p in points if p[1] is not None and p[2] is not None]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    ax.scatter(xs, ys, s=18)
    ax.margins(0.08)
    ax.set_xlabel("LSE-D (lower is better)")
    ax.set_ylabel("LSE-C (higher is better)")
    ax.set_title("per-clip sync scores")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    x_mid, y_mid = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    for name, x, y in sorted(points, key=lambda p: p[2])[:3]:
        # text grows away from the nearer edge, and is shortened until it fits inside the axes
        right, top = x > x_mid, y > y_mid
        label = name
        while True:
            text = ax.annotate(label, (x, y), xytext=(-4 if right else 4, -4 if top else 4),
                               textcoords="offset points", fontsize=7, ha="right" if right else "left",
                               va="top" if top else "bottom")
            extent = text.get_window_extent(renderer)
            if (extent.x0 >= box.x0 and extent.x1 <= box.x1 and extent.y0 >= box.y0 and extent.y1 <= box.y1) \
                    or len(label) <= 4:
                break
            text.remove()
            label = label[: max(4, len(label) - 4) - 1] + "…"
    return fig


def scatter(per_clip: list[dict[str, Any]]) -> str | None:
    fig = scatter_figure(per_clip)
    return None if fig is None else _png(fig)


def mouth_crop(frame: np.ndarray, size: int = 96) -> np.ndarray:
    """Lower half of the dlib face box (centre crop when no face is found)."""
    import cv2
    import dlib

    boxes = dlib.get_frontal_face_detector()(frame, 0)
    h, w = frame.shape[:2]
    if boxes:
        box = max(boxes, key=lambda b: b.width() * b.height())
        x0, x1 = max(box.left(), 0), min(box.right(), w)
        y0, y1 = max((box.top() + box.bottom()) // 2, 0), min(box.bottom() + box.height() // 8, h)
    else:
        x0, x1, y0, y1 = w // 4, 3 * w // 4, h // 2, 7 * h // 8
    crop = frame[y0:y1, x0:x1]
    return cv2.resize(crop, (size, size * max(1, crop.shape[0]) // max(1, crop.shape[1])))


def contact_sheet_figure(per_clip: list[dict[str, Any]], limit: int = 4) -> Any:
    """Mouth crops of a few clips: input / output / difference; each row captioned with the whole clip id."""
    import textwrap

    from talkingface.media import read_video

    rows = [r for r in per_clip if r.get("generated") and r.get("reference")][:limit]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(6, 2.2 * len(rows) + 0.8), squeeze=False)
    for (ax_in, ax_out, ax_diff), row in zip(axes, rows):
        caption = textwrap.fill(str(row["id"]), 30, break_long_words=True, break_on_hyphens=False)
        for ax in (ax_in, ax_out, ax_diff):
            ax.axis("off")
        try:
            out = read_video(row["generated"])
            ref = read_video(row["reference"])
        except Exception as exc:  # a broken clip must not break the report
            ax_in.set_title(f"{caption}\n{type(exc).__name__}", fontsize=7)
            continue
        index = min(out.num_frames, ref.num_frames) // 2
        a, b = mouth_crop(ref.frames[index]), mouth_crop(out.frames[index])
        h = min(a.shape[0], b.shape[0])
        diff = np.abs(a[:h].astype(np.int16) - b[:h].astype(np.int16)).mean(axis=2)
        for ax, image, title in ((ax_in, a, f"{caption}\ninput"), (ax_out, b, "output"),
                                 (ax_diff, diff, "|difference|")):
            ax.imshow(image, cmap="magma" if image.ndim == 2 else None)
            ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return fig


def contact_sheet(per_clip: list[dict[str, Any]], limit: int = 4) -> str | None:
    fig = contact_sheet_figure(per_clip, limit)
    return None if fig is None else _png(fig)


def _table(results: dict[str, Any]) -> str:
    cells = ["<tr><th>metric</th><th>mean</th><th>std</th><th>clips</th><th>note</th></tr>"]
    for name, agg in results.get("aggregate", {}).items():
        def fmt(v: Any) -> str:
            return "n/a" if _num(v) is None else f"{v:.4f}"
        cells.append(f"<tr><td>{html.escape(name)}</td><td>{fmt(agg.get('mean'))}</td><td>{fmt(agg.get('std'))}"
                     f"</td><td>{agg.get('count', '')}</td><td>{html.escape(str(agg.get('note', '')))}</td></tr>")
    return "<table>" + "".join(cells) + "</table>"


def _clips(results: dict[str, Any]) -> str:
    cells = ["<tr><th>clip</th><th>status</th><th>LSE-D</th><th>LSE-C</th><th>offset</th><th>reason</th></tr>"]
    for row in results.get("per_clip", []):
        def fmt(v: Any) -> str:
            return "" if _num(v) is None else f"{v:.3f}"
        cells.append(f"<tr><td>{html.escape(row['id'])}</td><td>{row.get('status')}</td><td>{fmt(row.get('lse_d'))}"
                     f"</td><td>{fmt(row.get('lse_c'))}</td><td>{row.get('lse_offset', '') or ''}</td>"
                     f"<td>{html.escape(str(row.get('error') or row.get('notes') or ''))}</td></tr>")
    return "<table>" + "".join(cells) + "</table>"


def write_report(run_dir: str | Path, results: dict[str, Any], worst: int = 3) -> Path:
    run_dir = Path(run_dir)
    per_clip = results.get("per_clip", [])
    parts = [f"<h1>talkingface report</h1><p>{html.escape(str(run_dir))}</p>"]
    if results.get("WARNING"):
        parts.append(f"<p class=warn>{html.escape(results['WARNING'])}</p>")
    counts = results.get("counts", {})
    parts.append("<p>" + ", ".join(f"{v} {k}" for k, v in counts.items()) + "</p>")
    parts.append("<h2>Metrics</h2>" + _table(results))
    image = scatter(per_clip)
    if image:
        parts.append(f"<h2>LSE-C vs LSE-D per clip</h2><img src='{image}'>")
    scored = [r for r in per_clip if _num(r.get("lse_c")) is not None and r.get("lse_plot")]
    if scored:
        parts.append("<h2>Sync-offset curves of the worst clips (lowest LSE-C)</h2>")
        for row in sorted(scored, key=lambda r: r["lse_c"])[:worst]:
            src = _file_png(row["lse_plot"])
            if src:
                parts.append(f"<figure><img src='{src}'><figcaption>{html.escape(row['id'])}</figcaption></figure>")
    try:
        sheet = contact_sheet(per_clip)
    except Exception as exc:  # the report is a convenience: never fail a run for it
        log.warning("contact sheet skipped: %s", exc)
        sheet = None
    if sheet:
        parts.append(f"<h2>Mouth crops: input / output / difference (middle frame)</h2><img src='{sheet}'>")
    parts.append("<h2>Clips</h2>" + _clips(results))
    style = ("body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}.warn{color:#b00;font-weight:bold}"
             "figure{display:inline-block;margin:4px}")
    page = f"<!doctype html><html><head><meta charset=utf-8><title>talkingface report</title><style>{style}</style>" \
           f"</head><body>{''.join(parts)}</body></html>"
    return atomic_write_text(run_dir / "report.html", page)
