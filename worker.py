"""The Celery app for distributed mode.

    export COMMS_BROKER_URL=redis://127.0.0.1:6379/0 COMMS_DATABASE_URL=postgresql://postgres@127.0.0.1/comms
    celery -A worker worker -Q comms            # e-mail, letters, pages
    celery -A worker worker -Q video -c 2       # videos, on machines with cores to spare

Every machine needs the same COMMS_DATABASE_URL, COMMS_LINK_KEYS and a shared artifacts folder
(COMMS_ARTIFACTS_DIR). The package never imports this module.
"""

from comms.tasks import make_app

app = make_app()
