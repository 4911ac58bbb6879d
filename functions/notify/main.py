"""notify: object-store notifications (SeaweedFS filer webhook, S3/MinIO/Ceph records, or a CloudEvent
carrying S3 records) -> one ``object.created`` event per object, posted to K_SINK."""

import flask
import functions_framework

from shared.ingestion.notify import publish_notifications


@functions_framework.http
def notify(request: flask.Request) -> flask.Response:
    return publish_notifications(request)
