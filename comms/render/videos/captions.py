"""WebVTT captions: one cue per scene, with its spoken line, its caption, or the words it shows.

Cue times are the scenes' boundaries in whole frames, the same arithmetic that cuts the video, so captions
stay in sync however scene durations round. Text is escaped for WebVTT (``&``, ``<``, ``>``; a customer's
name never becomes markup), blank lines inside a cue are removed (they would end it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def timestamp(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(cues: list[Cue], language: str = "") -> str:
    """The captions file; cues without words are left out."""
    out = ["WEBVTT", ""]
    if language:
        out = [f"WEBVTT - {language}", ""]
    n = 0
    for cue in cues:
        lines = [" ".join(ln.split()) for ln in cue.text.splitlines()]
        lines = [escape(ln) for ln in lines if ln]
        if not lines or cue.end <= cue.start:
            continue
        n += 1
        out += [str(n), f"{timestamp(cue.start)} --> {timestamp(cue.end)}", *lines, ""]
    return "\n".join(out)
