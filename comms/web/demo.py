"""Links for the demo: one working personal link per segment, from the newest segment run."""

from __future__ import annotations

from ..config import Settings
from ..errors import CommsError, StoreError
from ..payments import LinkSigner
from ..store import Store
from ..store.snapshots import get_segment_run, get_snapshot, load_assignments

DEMO_CAMPAIGN = "demo"


def demo_links(settings: Settings, store: Store, campaign: str = DEMO_CAMPAIGN,
               base_url: str | None = None) -> list[tuple[str, str, str]]:
    """[(segment, customer id, page URL)]: the first customer of each segment of the newest run, in the
    segments file's order, with a fresh link of ``campaign``. Empty when nothing is segmented yet.

    Example: for segment, _, url in demo_links(settings, store): print(segment, url)
    """
    try:
        snapshot = get_snapshot(store)
        run = get_segment_run(store, snapshot_id=snapshot.id)
    except StoreError:
        return []
    assignments = load_assignments(run)[["customer_id", "segment"]]
    signer = LinkSigner.from_settings(settings)
    base = (base_url or settings.base_url).rstrip("/")
    out = []
    for segment, group in assignments.groupby("segment", sort=False):
        customer_id = str(group.customer_id.iloc[0])
        out.append((str(segment), customer_id, f"{base}/p/{signer.sign(campaign, customer_id)}"))
    from ..segment.config import load_segments
    try:
        order = {name: i for i, name in enumerate(load_segments(settings.segments_file, settings.templates_dir).names)}
    except CommsError:
        order = {}
    return sorted(out, key=lambda x: (order.get(x[0], len(order)), x[0]))
