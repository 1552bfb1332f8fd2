"""HTTP serving: a FastAPI app with upload limits, a bounded worker pool and Prometheus metrics.

FastAPI is an optional dependency (``pip install 'vibe-check[serve]'``), so the app module is
imported only when :func:`create_app` is used.
"""

from __future__ import annotations

from ._metrics import ServiceMetrics
from ._settings import ServeSettings

__all__ = ["ServeSettings", "ServiceMetrics", "create_app"]


def create_app(model_or_path, *, settings: ServeSettings | None = None):
    """Build the FastAPI service (see :func:`vibe_check.serving._app.create_app`)."""
    from ._app import create_app as _create_app

    return _create_app(model_or_path, settings=settings)
