"""launch: ``job.ready`` -> a run (a Kubernetes Job, or a local process); ``job.completed``/``job.failed``
-> the run ends; POST /kubernetes (the ApiServerSource's Job and Pod changes) -> runs that died unheard."""

import flask
import functions_framework

from events.processing import JobCompleted, JobFailed, JobReady
from shared.processing.launch import on_kubernetes_change, on_run_event
from shared.runtime import event_endpoint
from shared.security.senders import refuse_unknown_sender

_on_event = event_endpoint("launch", on_run_event, accepts=(JobReady, JobCompleted, JobFailed))


@functions_framework.http
def launch(request: flask.Request) -> flask.Response:
    if request.path.rstrip("/") == "/kubernetes":  # the ApiServerSource: a sender like the broker
        return refuse_unknown_sender(request) or on_kubernetes_change(request)
    return _on_event(request)
