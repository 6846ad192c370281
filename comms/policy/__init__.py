"""Contact policy: whether, and when, a customer may be contacted on a channel.

Applied when a campaign is planned and again right before each send, because things change in between
(a payment, a promise, an opt-out). Every "no" has a reason that is recorded on the job and shows in the
report; nothing is dropped silently.

Rules built in:
* do-not-contact and an open dispute stop every channel;
* consent per channel: e-mail needs ``consent_email`` and an address, a letter ``consent_letter`` and a
  postal address; the page and the video are published, not sent, and follow the e-mail/letter rules only
  through the messages that link to them;
* answers given on the page (payment, promise, plan, dispute, opt-outs) since planning stop reminders
  (comms.payments.status.contact_blockers_many);
* quiet hours: no e-mail is delivered outside 08:00-21:00 in the customer's own time zone (US Regulation F
  "convenient time"); such an e-mail is delayed to the next allowed moment, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

WINDOW_START = time(8, 0)
WINDOW_END = time(21, 0)


def email_window(settings) -> tuple[time, time]:
    """The hours e-mail may be delivered in, local to the customer: COMMS_EMAIL_WINDOW, default
    "08:00-21:00" (US Regulation F). A stricter jurisdiction narrows it; "00:00-24:00" turns it off."""
    text = str(settings.get("email_window", default="08:00-21:00"))
    try:
        start_s, end_s = (p.strip() for p in text.split("-"))
        start = time.fromisoformat(start_s)
        end = time.max if end_s == "24:00" else time.fromisoformat(end_s)
    except ValueError:
        from ..errors import ConfigError
        raise ConfigError("COMMS_EMAIL_WINDOW", f"{text!r}: use HH:MM-HH:MM, e.g. 08:00-21:00") from None
    if not start < end:
        from ..errors import ConfigError
        raise ConfigError("COMMS_EMAIL_WINDOW", f"{text!r}: the window must start before it ends")
    return start, end


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def next_allowed(now: datetime, tz: str, start: time = WINDOW_START, end: time = WINDOW_END) -> datetime | None:
    """None when ``now`` is inside the customer's window; else the next window opening (UTC, aware)."""
    local = now.astimezone(_zone(tz))
    if start <= local.time() < end:
        return None
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    opening = datetime.combine(day, start, tzinfo=_zone(tz))
    return opening.astimezone(timezone.utc)


@dataclass(frozen=True)
class CustomerFacts:
    """What the policy needs to know about a customer at planning time (from the snapshot)."""

    do_not_contact: bool
    dispute: bool
    consent_email: bool
    consent_letter: bool
    email: str | None
    has_address: bool


def planning_reason(facts: CustomerFacts, channel: str) -> str | None:
    """Why this customer must not get this channel (None: allowed). Checked at planning."""
    if facts.do_not_contact:
        return "do not contact"
    if facts.dispute:
        return "dispute open"
    if channel == "email":
        if not facts.consent_email:
            return "no consent for e-mail"
        if not facts.email:
            return "no e-mail address"
    if channel == "letter":
        if not facts.consent_letter:
            return "no consent for letters"
        if not facts.has_address:
            return "no postal address"
    return None
