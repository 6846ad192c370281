"""Celery tasks: thin, they take ids, and the ledger makes them idempotent.

``comms.run_chunk(campaign_id, channel, job_ids)`` calls :func:`comms.campaign.run.process_chunk`, the same
function the embedded pool runs: it re-reads its jobs, claims only those still to do and records every result
before the task is acknowledged (``acks_late``), so a retried, duplicated or redelivered task never sends
twice, and a lost one is found again by the sweeper (expired lease) and re-enqueued.

``comms.tick`` is the scheduler (:mod:`comms.campaign.schedule`), called by Celery beat every
``COMMS_TICK_SECONDS``: it queues jobs that fell due (start time, quiet hours, retries) and sweeps after lost
workers, so a campaign goes on when the terminal that launched it is closed. Run ``celery -A worker beat``
once per deployment (or ``-B`` on one worker).

Queues: ``video`` for video renders (heavy: prefetch 1, recycled worker processes), ``comms`` for the rest.
Redis' visibility timeout is set above the longest task and every countdown, in all the places Celery reads it.
"""

from __future__ import annotations

from celery import Celery, shared_task
from celery.signals import worker_init

from .campaign.schedule import tick_seconds
from .config import Settings
from .errors import ConfigError

LONGEST_TASK = 3600  # seconds: a video chunk on a busy machine stays far below this
QUEUES = {"video": "video"}
DEFAULT_QUEUE = "comms"


def celery_config(settings: Settings) -> dict:
    broker = settings.get("broker_url", default=None)
    if not broker:
        raise ConfigError("COMMS_BROKER_URL", "is not set: distributed mode needs Redis or RabbitMQ "
                                              "(without it, campaigns run in-process)")
    visibility = {"visibility_timeout": LONGEST_TASK * 2}
    return {
        "broker_url": broker,
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": False,  # the sweeper, not a redelivery loop, finds lost work
        "worker_prefetch_multiplier": 1,
        "worker_max_tasks_per_child": 200,
        "task_default_queue": DEFAULT_QUEUE,
        "task_routes": {"comms.run_chunk": {"queue": DEFAULT_QUEUE}},
        "broker_transport_options": visibility,
        "result_backend_transport_options": visibility,
        "visibility_timeout": visibility["visibility_timeout"],
        "task_time_limit": LONGEST_TASK,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "beat_schedule": {"comms-tick": {"task": "comms.tick", "schedule": tick_seconds(settings),
                                         "options": {"queue": DEFAULT_QUEUE, "expires": tick_seconds(settings)}}},
        "beat_schedule_filename": str(settings.home / "celerybeat-schedule"),
    }


def make_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings.load()
    app = Celery("comms", include=["comms.tasks"])
    app.conf.update(celery_config(settings))
    return app


def queue_for(channel: str) -> str:
    return QUEUES.get(channel, DEFAULT_QUEUE)


@shared_task(name="comms.run_chunk", acks_late=True, ignore_result=True)
def run_chunk(campaign_id: int, channel: str, job_ids: list[int]) -> dict:
    from .campaign.run import process_chunk

    result = process_chunk(_settings(), campaign_id, channel, job_ids, _store())
    return {"claimed": result.claimed, **result.counts}


@shared_task(name="comms.tick", bind=True, ignore_result=True)
def tick(self) -> dict:
    from .campaign.schedule import tick as run_tick

    return {r.campaign: r.state for r in run_tick(_store(), _settings(), self.app)}


@worker_init.connect
def preload(**_) -> None:
    """Import what every chunk needs once, in the worker's main process: its pool processes, and those that
    replace them every ``worker_max_tasks_per_child`` tasks, are forked from it and start with the modules
    loaded (about 1.2 CPU-s each otherwise). Only modules: connections and renderers are made per process."""
    import importlib

    for name in ("comms.campaign.run", "comms.campaign.steps", "comms.campaign.customers", "comms.deliver.outbox",
                 "comms.render.email", "comms.render.letter", "comms.render.video", "comms.payments.status"):
        importlib.import_module(name)


_cache: dict = {}


def _settings() -> Settings:
    if "settings" not in _cache:
        _cache["settings"] = Settings.load()
    return _cache["settings"]


def _store():
    if "store" not in _cache:
        from .store import Store
        _cache["store"] = Store.open(_settings(), migrate=False)
    return _cache["store"]
