"""The production static-files storage: WhiteNoise's compressed manifest storage that links a file
missing from the manifest by its plain name instead of failing the page.

A page linking such a file (``collectstatic`` not run yet, or run before an upgrade added the
file; the API docs link swagger-ui's) would otherwise be a 500. The file itself is then a 404
until ``collectstatic`` runs, and the first miss of each name is logged so that is found.
"""

from __future__ import annotations

import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class ForgivingManifestStorage(CompressedManifestStaticFilesStorage):
    manifest_strict = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._missing: set[str] = set()

    def hashed_name(self, name, content=None, filename=None) -> str:  # noqa: ANN001
        try:
            return super().hashed_name(name, content, filename)
        except ValueError:
            if name not in self._missing:
                self._missing.add(name)
                logger.warning("static file %s is not collected: run collectstatic", name)
            return name
