"""Channel steps: what a claimed job of each channel does. A step gets customers whose contact rules passed,
builds their contexts (one builder per campaign and process) and returns one Outcome per job.

* page: the personal page is served live by the web app from the campaign's snapshot; "sent" means
  published: the customer's context builds and their link is minted.
* video: renders the MP4, captions, poster and preview into the campaign's artifacts.
* letter: renders PDF/A letters in batches into the campaign's artifacts; after the run, one print file and
  its manifest for the print house (finalize).
* email: renders the message, checks quiet hours again in the customer's time zone (outside 08:00-21:00 it
  goes back to planned with the next morning as ``not_before``), records "sending" with our message id, then
  delivers through the configured backend and records the provider's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..config import Settings
from ..models import Customer
from ..store import Store
from .run import Outcome, mark_sending
from .states import JobState

MAX_ATTEMPTS = 5


@dataclass
class Item:
    job_id: int
    customer: Customer
    segment: str
    attempts: int
    worker: str  # the claim: only the holder may send or record


class Step:
    channel = ""

    def __init__(self, settings: Settings, store: Store, campaign) -> None:
        from ..payments import LinkSigner
        from ..render.context import ContextBuilder
        from ..segment.config import load_segments

        self.settings = settings
        self.store = store
        self.campaign = campaign
        self.segments = load_segments(settings.segments_file, settings.templates_dir)
        as_of = datetime.fromisoformat(campaign["settings"]["as_of"]).date()
        self.builder = ContextBuilder(settings, self.segments, LinkSigner.from_settings(settings),
                                      campaign["name"], as_of=as_of, channels=campaign["channels"])
        self.out_dir = settings.artifacts_dir / campaign["name"] / self.channel

    def contexts(self, items: list[Item]) -> tuple[list[tuple[Item, dict]], list[Outcome]]:
        from ..render.sandbox import RenderError

        ok, failed = [], []
        for item in items:
            try:
                ok.append((item, self.builder.build(item.customer, item.segment)))
            except (RenderError, KeyError, ValueError) as exc:
                failed.append(Outcome(item.job_id, JobState.FAILED, reason=f"context: {exc}"[:500]))
        return ok, failed

    def process(self, items: list[Item]) -> list[Outcome]:
        raise NotImplementedError


class PageStep(Step):
    channel = "page"

    def process(self, items: list[Item]) -> list[Outcome]:
        ok, outcomes = self.contexts(items)
        outcomes += [Outcome(item.job_id, JobState.SENT) for item, _ in ok]
        return outcomes


class EmailStep(Step):
    channel = "email"

    def __init__(self, settings: Settings, store: Store, campaign) -> None:
        super().__init__(settings, store, campaign)
        from ..deliver import backend_from_settings
        from ..deliver.ratelimit import bucket_for
        from ..render.email import EmailRenderer

        self.renderer = EmailRenderer(settings, self.segments)
        self.backend = backend_from_settings(settings)
        self.backend.throttle = bucket_for(settings, store, self.backend.name)  # holds across all workers

    def process(self, items: list[Item]) -> list[Outcome]:
        from ..policy import email_window, next_allowed
        from ..render.sandbox import RenderError

        now = datetime.now(timezone.utc)
        window = email_window(self.settings)
        outcomes: list[Outcome] = []
        awake = []
        for item in items:  # quiet hours first: no context is built for an e-mail that has to wait
            later = next_allowed(now, item.customer.timezone, *window)
            if later is None:
                awake.append(item)
            else:
                outcomes.append(Outcome(item.job_id, JobState.PLANNED, not_before=later,
                                        reason="quiet hours in the customer's time zone"))
        ok, failed = self.contexts(awake)
        outcomes += failed
        ready = []
        for item, context in ok:
            try:
                ready.append((item, self.renderer.render(context)))
            except RenderError as exc:
                outcomes.append(Outcome(item.job_id, JobState.FAILED, reason=str(exc)[:500]))
        if not ready:
            return outcomes
        held = mark_sending(self.store, [(item.job_id, email.message_id) for item, email in ready], self.channel,
                            ready[0][0].worker)
        ready = [(item, email) for item, email in ready if item.job_id in held]
        if not ready:
            return outcomes
        results = self.backend.send_many([email for _, email in ready])
        for (item, email), res in zip(ready, results):
            if res.accepted:
                outcomes.append(Outcome(item.job_id, JobState.SENT, provider_id=res.provider_message_id,
                                        message_id=email.message_id))
            elif res.status.value == "deferred" and item.attempts < MAX_ATTEMPTS:
                # a temporary refusal the backend's own retries did not get past: back off, try later
                wait = max(res.retry_after or 0,
                           self.settings.get("email_retry_seconds", default=60, cast=int) * 2 ** (item.attempts - 1))
                outcomes.append(Outcome(item.job_id, JobState.RENDERED, reason=f"deferred: {res.error}"[:500],
                                        not_before=now + timedelta(seconds=wait)))
            else:
                outcomes.append(Outcome(item.job_id, JobState.FAILED,
                                        reason=f"{res.status.value}: {res.error}"[:500]))
        return outcomes


class LetterStep(Step):
    channel = "letter"

    def __init__(self, settings: Settings, store: Store, campaign) -> None:
        super().__init__(settings, store, campaign)
        from ..render.letter import LetterRenderer

        self.renderer = LetterRenderer(settings, self.segments)
        self.out_dir = settings.artifacts_dir / campaign["name"] / "letters"  # the micro-site's download

    def process(self, items: list[Item]) -> list[Outcome]:
        from ..render.letter import _safe_name as safe_name

        ok, outcomes = self.contexts(items)
        job_of = {str(item.customer.customer_id): item.job_id for item, _ in ok}
        errors: dict[str, str] = {}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for letter in self.renderer.render_many(
                [ctx for _, ctx in ok],
                on_error=lambda ctx, exc: errors.__setitem__(str(ctx["customer"]["id"]), str(exc))):
            path = self.out_dir / f"{safe_name(letter.customer_id)}.pdf"
            part = path.with_suffix(".pdf.part")
            part.write_bytes(letter.pdf)
            part.replace(path)  # atomic: the micro-site never serves half a letter
            outcomes.append(Outcome(job_of.pop(letter.customer_id), JobState.SENT, artifact=str(path),
                                    sha256=letter.sha256))
        for cid, job_id in job_of.items():
            outcomes.append(Outcome(job_id, JobState.FAILED, reason=errors.get(cid, "letter not rendered")[:500]))
        return outcomes


class VideoStep(Step):
    channel = "video"

    def __init__(self, settings: Settings, store: Store, campaign) -> None:
        super().__init__(settings, store, campaign)
        from ..render.video import VideoRenderer

        self.renderer = VideoRenderer(settings, self.segments)

    def process(self, items: list[Item]) -> list[Outcome]:
        from ..errors import CommsError
        from ..render.video import artifact_dir

        ok, outcomes = self.contexts(items)
        for item, ctx in ok:
            try:
                art = self.renderer.render(ctx, artifact_dir(self.settings, self.campaign["name"],
                                                             item.customer.customer_id))
                outcomes.append(Outcome(item.job_id, JobState.SENT, artifact=str(art.mp4), sha256=art.sha256))
            except CommsError as exc:
                outcomes.append(Outcome(item.job_id, JobState.FAILED, reason=str(exc)[:500]))
        return outcomes


STEPS = {"page": PageStep, "email": EmailStep, "letter": LetterStep, "video": VideoStep}


def step_for(channel: str, settings: Settings, store: Store, campaign) -> Step:
    return STEPS[channel](settings, store, campaign)


def finalize(channel: str, settings: Settings, store: Store, campaign) -> None:
    """After a channel's jobs ran: the print batch of the letters (other channels have nothing to do)."""
    if channel == "letter":
        from .letters import assemble_print_batch

        assemble_print_batch(settings, store, campaign)
