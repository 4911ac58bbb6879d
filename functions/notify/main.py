"""notify: object-store notifications (SeaweedFS filer webhook, S3/MinIO/Ceph records, or a CloudEvent
carrying S3 records) -> one ``object.created`` event per object, posted to K_SINK."""

import flask
import functions_framework

from shared.ingestion.notify import publish_notifications
from shared.security.senders import refuse_unknown_sender


@functions_framework.http
def notify(request: flask.Request) -> flask.Response:
    if request.path.rstrip("/") != "/healthz" and (refused := refuse_unknown_sender(request)) is not None:
        return refused  # notifications from the object store's notifier only
    return publish_notifications(request)
