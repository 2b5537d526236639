from __future__ import annotations

from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "readiness.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from celery.signals import before_task_publish, task_postrun, task_prerun
        from django.core.signals import request_finished

        from readiness.observability import context

        # weak=False: the receivers are module functions, kept alive anyway; explicit for clarity.
        before_task_publish.connect(context.task_publish_carries_request_id, weak=False)
        task_prerun.connect(context.task_started, weak=False)
        task_postrun.connect(context.task_finished, weak=False)
        request_finished.connect(context.request_done, weak=False)
