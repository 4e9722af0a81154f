"""Fetch ml-latest-small from GroupLens and verify it against the checksum GroupLens publishes."""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
import zipfile
from pathlib import Path

from recsite.exceptions import ApplicationError

MOVIELENS_SMALL_URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"


def _fetch(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http/https only)
            return response.read()
    except OSError as exc:
        raise ApplicationError(f"download failed: {url}: {exc}") from exc


def movielens_download(
    *, dest: Path, url: str = MOVIELENS_SMALL_URL, timeout: float = 60.0
) -> Path:
    """Download ``url`` and ``url + '.md5'``, check the MD5, unzip into ``dest``.

    Returns the folder holding movies.csv. A checksum mismatch raises and keeps nothing.
    """
    if not url.startswith(("https://", "http://")):
        raise ApplicationError("only http(s) downloads are supported")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    payload = _fetch(url, timeout)
    published = _fetch(url + ".md5", timeout).decode("ascii", "replace").split()
    expected = published[0].lower() if published else ""
    actual = hashlib.md5(payload).hexdigest()  # noqa: S324 (GroupLens publishes MD5)
    if not expected or actual != expected:
        raise ApplicationError(
            "checksum mismatch: the download is corrupt or was tampered with; nothing was kept",
            {"expected_md5": expected, "actual_md5": actual},
        )
    archive = dest / Path(url).name
    archive.write_bytes(payload)
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            target = (dest / member).resolve()
            if not str(target).startswith(str(dest.resolve())):
                raise ApplicationError(f"unsafe path in archive: {member}")
        folder = dest / Path(url).stem
        if folder.exists():
            shutil.rmtree(folder)
        zf.extractall(dest)
    if not (folder / "movies.csv").exists():
        raise ApplicationError(f"the archive has no {folder.name}/movies.csv")
    return folder
