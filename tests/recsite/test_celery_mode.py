import logging

from django.conf import settings

from recsite import celery as celery_module


def test_without_redis_tasks_run_in_process_and_the_log_says_so_once(caplog, monkeypatch):
    assert settings.REDIS_URL is None or settings.CELERY_TASK_ALWAYS_EAGER is False
    monkeypatch.setattr(settings, "CELERY_TASK_ALWAYS_EAGER", True)
    monkeypatch.setattr(celery_module, "_announced", False)
    with caplog.at_level(logging.INFO, logger="recsite.celery"):
        celery_module.announce_mode()
        celery_module.announce_mode()
    lines = [r.message for r in caplog.records if "REDIS_URL is not set" in r.message]
    assert len(lines) == 1


def test_celery_is_json_only_with_time_limits():
    conf = celery_module.app.conf
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json" and conf.result_serializer == "json"
    assert conf.task_time_limit > conf.task_soft_time_limit > 0
