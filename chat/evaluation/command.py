"""``manage.py evaluate --protocol chat``: the command's options in, the report's text out."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from django.core.management.base import CommandError

from recsite.exceptions import ApplicationError

from .protocol import chat_quality_format, chat_quality_run


def chat_protocol_run(*, seed: int, as_json: bool, **options: Any) -> str:  # noqa: ANN401
    users = int(options.get("users") or 100)
    if users < 1:
        raise CommandError("--users must be at least 1")

    def progress(done: int, total: int) -> None:
        if not as_json and (done % 10 == 0 or done == total):
            sys.stderr.write(f"  {done}/{total} simulated users\n")

    try:
        report = chat_quality_run(
            users=users,
            seed=seed,
            llm_base_url=options.get("llm_base_url"),
            llm_api_key=os.environ.get("OPENAI_API_KEY"),
            retrain=not options.get("no_retrain"),
            progress=progress,
        )
    except ApplicationError as exc:
        raise CommandError(exc.message) from exc
    if as_json:
        return json.dumps(report)
    return chat_quality_format(report)
