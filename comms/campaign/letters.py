"""After a campaign's letters are rendered: one print file in print order and its manifest.

Each letter was written once, as its own PDF/A file (the micro-site's download and the archive record,
its SHA-256 in the ledger). The print batch is assembled from those files, sorted by paper, country and
postal code, so what the print house prints is byte for byte what was archived; a letter appears in it
exactly once, however often a chunk ran. It is built in a private folder and moved into place file by file
(the manifest last), so two processes assembling it at once (a runner and the scheduler) never leave a
half-written batch.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy import select

from ..config import Settings
from ..render.letter import Letter
from ..render.letters.paper import paper_for
from ..render.letters.printbatch import PrintBatch, print_order
from ..store import Store
from ..store.ledger import jobs
from .states import JobState


def assemble_print_batch(settings: Settings, store: Store, campaign, duplex: bool | None = None):
    """(pdf path, manifest path) of the campaign's print batch, or None when it has no letters."""
    from ..render.context import customers_from_snapshot
    from ..store.snapshots import get_snapshot

    with store.begin() as conn:
        rows = conn.execute(select(jobs.c.customer_id, jobs.c.artifact, jobs.c.sha256).where(
            jobs.c.campaign_id == campaign.id, jobs.c.channel == "letter",
            jobs.c.state == JobState.SENT.value)).all()
    if not rows:
        return None
    if duplex is None:
        duplex = str(settings.get("print_duplex", default="false")).lower() in ("1", "true", "yes")
    # the print batch needs only where each letter goes: no full context (links, offers, words) per letter
    customers = customers_from_snapshot(get_snapshot(store, campaign.snapshot_id), [r.customer_id for r in rows])
    by_id = {r.customer_id: r for r in rows}
    contexts = print_order([{"customer": {
        "id": c.customer_id, "name": c.name, "country": c.country, "postal_code": c.postal_code or "",
        "address_lines": list(c.address_lines)}} for c in (customers[r.customer_id] for r in rows)])
    out = print_folder(settings, campaign)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".print-", dir=out.parent))
    try:
        with PrintBatch(work, duplex=duplex) as batch:
            for ctx in contexts:
                row = by_id[str(ctx["customer"]["id"])]
                pdf = Path(row.artifact).read_bytes()
                letter = Letter(pdf=pdf, pages=len(PdfReader(io.BytesIO(pdf)).pages), sha256=row.sha256,
                                paper=paper_for(ctx["customer"].get("country")), customer_id=row.customer_id)
                batch.add(letter, ctx)
        out.mkdir(exist_ok=True)
        for made in (batch.pdf_path, batch.manifest_path):
            os.replace(made, out / made.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out / batch.pdf_path.name, out / batch.manifest_path.name


def print_folder(settings: Settings, campaign) -> Path:
    return Path(settings.artifacts_dir) / campaign.name / "print"
