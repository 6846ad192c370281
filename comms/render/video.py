"""Personalized videos: a treatment's video.yaml and one customer's context in, MP4 + captions + poster +
animated preview out (the video channel of ``comms preview`` and of campaigns).

Only what is personal is rendered per customer. Scenes whose words are the same for every customer of a
treatment, locale and format are encoded once and cached (comms.render.videos.cache); a customer's personal
scenes are composited with numpy and piped into one ffmpeg with the very same encoder settings, and the parts
are joined by the concat demuxer with ``-c copy``, together with the cached music (also copied). A template
whose every scene is personal is encoded in one pass straight into the finished file (the plain path).

Outputs per customer, in ``<artifacts>/<campaign>/video/<customer>/`` (see :func:`artifact_dir`):
``video.mp4`` (H.264 yuv420p, AAC when there is audio, faststart), ``captions.vtt``, ``poster.jpg``,
``preview.webp``. Each render works in its own temporary folder, removed afterwards; every ffmpeg it starts
has ended when it returns; per-process caches are bounded, so a worker's memory stays flat.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..config import Settings
from ..errors import CommsError, InputError
from .sandbox import RenderError, compile_template, render_limited
from .strings import strings_for
from .videos.cache import PartCache, cache_key, file_digest
from .videos.captions import Cue, webvtt
from .videos.compose import Composer, Grab, SceneWords
from .videos.encode import FFmpeg, concat_list, encoder_args, ffmpeg_binary, mux_args
from .videos.fonts import Fonts
from .videos.personal import is_personal
from .videos.speech import Line, mixed_track, music_track
from .videos.spec import FORMATS, VideoTemplate, load_template
from .videos.stills import save_poster

__all__ = ["FORMATS", "RenderError", "VideoArtifacts", "VideoOutcome", "VideoRenderer", "artifact_dir", "preview",
           "render_segment", "safe_name"]
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


@dataclass(frozen=True)
class VideoArtifacts:
    """One customer's files; ``sha256`` is the MP4's (the same customer and template give the same bytes)."""

    mp4: Path
    vtt: Path
    poster: Path
    preview: Path
    seconds: float
    sha256: str


@dataclass(frozen=True)
class VideoOutcome:
    """One customer of a batch: artifacts, or the one-line reason the video could not be made."""

    customer_id: str
    artifacts: VideoArtifacts | None
    error: str | None = None


def safe_name(value: str) -> str:
    """A folder name for an id: itself when harmless, else a readable prefix and a hash (never ``..``)."""
    if _SAFE.match(value) and ".." not in value:
        return value
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", value)[:40].strip("_") or "id"
    return f"{clean}-{hashlib.sha256(value.encode('utf-8')).hexdigest()[:12]}"


def artifact_dir(settings: Settings, campaign: str, customer_id: str) -> Path:
    """Where a customer's video files live (the micro-site serves them from here)."""
    return settings.artifacts_dir / safe_name(campaign) / "video" / safe_name(customer_id)


class VideoRenderer:
    """Renders videos for many customers in one process; build one per worker and reuse it."""

    def __init__(self, settings: Settings, segments: Any = None):
        self.settings = settings
        self.segments = segments
        cache_root = Path(settings.get("video_cache_dir", default=settings.home / "cache" / "video"))
        self.parts = PartCache(cache_root)
        self.fonts = Fonts(cache_root / "fonts", settings.media_dir)
        self.composer = Composer(settings.media_dir, self.fonts, self.parts)
        self.ffmpeg = ffmpeg_binary(settings.get("ffmpeg", default=None))
        tmp = settings.get("video_tmp_dir", default=None)
        self.tmp_root = Path(tmp) if tmp else None
        self._compiled: OrderedDict[str, Any] = OrderedDict()
        self._personal: OrderedDict[tuple, bool] = OrderedDict()

    # -- templates and words ----------------------------------------------------------------------------

    def template(self, treatment: str) -> VideoTemplate:
        return load_template(self.settings.templates_dir / treatment / "video.yaml", self.settings.media_dir)

    def _render(self, source: str, context: dict, name: str) -> str:
        if "{" not in source:
            return source
        template = self._compiled.get(source)
        if template is None:
            template = compile_template(source, html=False, name=name)
            self._compiled[source] = template
            if len(self._compiled) > 512:
                self._compiled.popitem(last=False)
        return render_limited(template, context, max_bytes=4000, name=name)

    def _is_personal(self, source: str, treatment: str, locale: str) -> bool:
        key = (source, treatment, locale)
        found = self._personal.get(key)
        if found is None:
            found = is_personal(source, strings_for(self.settings.templates_dir, treatment, locale))
            self._personal[key] = found
            if len(self._personal) > 2048:
                self._personal.popitem(last=False)
        return found

    def words(self, template: VideoTemplate, context: dict) -> list[SceneWords]:
        """What every scene says for this customer, and which scenes are personal."""
        treatment, locale = context["treatment"]["name"], context["customer"]["locale"]
        out, start = [], 0
        for i, scene in enumerate(template.scenes):
            where = f"video {treatment} scene {scene.name}"
            sources = [lay.text if lay.kind == "text" else lay.qr if lay.kind == "qr" else None
                       for lay in scene.layers]
            layers = [None if s is None else self._render(s, context, f"{where} layer {k}")
                      for k, s in enumerate(sources)]
            speech = self._render(scene.speech, context, f"{where} speech") if scene.speech else ""
            shown = [t for lay, t in zip(scene.layers, layers) if lay.kind == "text" and lay.caption and t]
            caption = self._render(scene.caption, context, f"{where} caption") if scene.caption \
                else speech or "\n".join(shown)
            personal = any(self._is_personal(s, treatment, locale)
                           for s in [*sources, scene.speech, scene.caption] if s)
            frames = template.frames(scene)
            out.append(SceneWords(scene, i, start, frames, layers, speech.strip(), caption.strip(), personal))
            start += frames
        return out

    # -- one video --------------------------------------------------------------------------------------

    def render(self, context: dict, out_dir: Path, fmt: str = "landscape", *,
               template: VideoTemplate | None = None) -> VideoArtifacts:
        """One customer's video, captions, poster and preview in ``out_dir`` (created if needed)."""
        tpl = template or self.template(context["treatment"]["name"])
        size, fps = tpl.size(fmt), tpl.fps
        cust = context["customer"]
        lang, rtl = cust.get("lang") or cust["locale"], cust.get("dir") == "rtl"
        words = self.words(tpl, context)
        total = sum(w.frames for w in words)
        seconds = total / fps
        poster_scene, first, poster_at = _poster_plan(tpl, words)
        grab = Grab(poster=poster_scene.start + poster_at,
                    preview=(poster_scene.start + first, poster_scene.start + poster_at))
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.tmp_root is not None:
            self.tmp_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="comms-video-", dir=self.tmp_root))
        try:
            ff = FFmpeg(self.ffmpeg, work)
            audio = self._audio(tpl, words, seconds, lang, ff, work)
            mp4 = work / "video.mp4"
            runs = _runs(words)
            if len(runs) == 1 and runs[0][0].personal:  # the plain path: one pass into the finished file
                inputs = ["-i", str(audio)] if audio else []
                outputs = (["-map", "0:v:0", "-map", "1:a:0", "-c:a", "copy"] if audio else []) + \
                    ["-movflags", "+faststart", "-metadata", "comment=comms"]
                scenes = [(w, self.composer.frames(w, fmt, size, fps, lang, rtl, ff)) for w in runs[0]]
                self.composer.encode(scenes, size, fps, ff, mp4, grab, inputs, outputs)
            else:
                parts = []
                for k, run in enumerate(runs):
                    if run[0].personal:
                        scenes = [(w, self.composer.frames(w, fmt, size, fps, lang, rtl, ff)) for w in run]
                        parts.append(self.composer.encode(scenes, size, fps, ff, work / f"part-{k}.mp4", grab))
                    else:
                        parts += [self._static_part(w, fmt, size, fps, lang, rtl, ff) for w in run]
                listing = concat_list(parts, work / "parts.ffconcat")
                ff.run(mux_args(["-f", "concat", "-safe", "0", "-i", str(listing)], audio, mp4))
            if grab.poster_frame is None or grab.preview_frames is None:
                self._grab_from(poster_scene, grab, fmt, size, fps, lang, rtl, ff)
            save_poster(grab.poster_frame, size, work / "poster.jpg")
            grab.preview_frames.save(work / "preview.webp")
            cues = [Cue(w.start / fps, (w.start + w.frames) / fps, w.caption) for w in words]
            (work / "captions.vtt").write_text(webvtt(cues), encoding="utf-8")
            digest = _sha256(mp4)
            names = ("video.mp4", "captions.vtt", "poster.jpg", "preview.webp")
            for name in names:
                _install(work / name, out_dir / name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        mp4_out, vtt, poster, prev = (out_dir / n for n in names)
        return VideoArtifacts(mp4_out, vtt, poster, prev, round(seconds, 3), digest)

    def _static_part(self, w: SceneWords, fmt: str, size, fps: int, lang: str, rtl: bool, ff: FFmpeg) -> Path:
        scene = w.scene
        media = sorted({p for p in (scene.background.image, scene.background.video) if p} |
                       {lay.source for lay in scene.layers if lay.kind in ("image", "logo")})
        faces = [self.fonts.pick(t or "", lang, lay.font).ident for lay, t in zip(scene.layers, w.layers)
                 if lay.kind == "text" and t]
        key = cache_key(kind="scene", encoder=encoder_args(fps), size=size, fps=fps, fmt=fmt, lang=lang, rtl=rtl,
                        scene=scene.model_dump(mode="json"), words=w.key_words(), frames=w.frames, fonts=faces,
                        media={p: file_digest(self.settings.media_dir / p) for p in media})

        def produce(target: Path) -> None:
            frames = self.composer.frames(w, fmt, size, fps, lang, rtl, ff)
            self.composer.encode([(w, frames)], size, fps, ff, target)

        return self.parts.build(key, "part.mp4", produce)

    def _grab_from(self, w: SceneWords, grab: Grab, fmt, size, fps, lang, rtl, ff) -> None:
        """Poster and preview of a scene that was not encoded in this render (a cached static scene)."""
        for i, buf, changed in self.composer.frames(w, fmt, size, fps, lang, rtl, ff):
            grab.take(w.start + i, buf, changed, fps, size)
            if w.start + i >= grab.poster:
                break

    def _audio(self, tpl: VideoTemplate, words: list[SceneWords], seconds: float, lang: str, ff: FFmpeg,
               work: Path) -> Path | None:
        lines = [Line(w.start / tpl.fps, w.frames / tpl.fps, w.speech) for w in words if w.speech]
        if not lines and tpl.music is None:
            return None
        music = tpl.music.model_dump() if tpl.music else None
        digest = file_digest(self.settings.media_dir / tpl.music.file) if tpl.music else ""
        key = cache_key(kind="audio", music=music, media=digest, seconds=round(seconds, 3), lang=lang,
                        lines=[(ln.start, ln.seconds, ln.text) for ln in lines], volume=tpl.speech_volume)
        media = self.settings.media_dir

        def produce(target: Path) -> None:
            if lines:
                mixed_track(ff, media, tpl.music, lines, lang, seconds, tpl.speech_volume, target)
            else:
                music_track(ff, media, tpl.music, seconds, target)

        if any(w.personal and w.speech for w in words):
            target = work / "audio.m4a"
            produce(target)
            return target
        return self.parts.build(key, "audio.m4a", produce)

    # -- many videos ------------------------------------------------------------------------------------

    def render_many(self, contexts: Iterable[dict], out_root: Path, fmt: str = "landscape") -> list[VideoOutcome]:
        """Each customer's video into ``out_root/<customer id>/``; a customer whose video fails is reported
        with its reason and the others go on."""
        outcomes = []
        for context in contexts:
            cid = str(context["customer"]["id"])
            try:
                art = self.render(context, Path(out_root) / safe_name(cid), fmt)
                outcomes.append(VideoOutcome(cid, art))
            except CommsError as exc:
                outcomes.append(VideoOutcome(cid, None, str(exc)))
        return outcomes


def _runs(words: list[SceneWords]) -> list[list[SceneWords]]:
    """Consecutive personal scenes form one run (one encoder); each static scene is its own cached part."""
    runs: list[list[SceneWords]] = []
    for w in words:
        if runs and w.personal and runs[-1][-1].personal:
            runs[-1].append(w)
        else:
            runs.append([w])
    return runs


def _poster_plan(tpl: VideoTemplate, words: list[SceneWords]) -> tuple[SceneWords, int, int]:
    """The poster's scene (one with ``poster:``, else the first personal one, else the first), the frame in it
    where the preview starts (when the first layer shows: no blank opening frame in an e-mail) and the poster
    frame: the given time, or when every layer has entered, before any leaves."""
    chosen = next((w for w in words if w.scene.poster is not None), None) or \
        next((w for w in words if w.personal), words[0])
    scene = chosen.scene
    if scene.poster is not None:
        t = scene.poster
    else:
        entered = [(lay.enter.at or 0) + lay.enter.duration for lay in scene.layers if lay.enter]
        t = max(entered, default=0.0) + 0.2
        leaving = [lay.exit.at if lay.exit.at is not None else scene.duration - lay.exit.duration
                   for lay in scene.layers if lay.exit]
        if leaving:
            t = min(t, min(leaving) - 1.0 / tpl.fps)
    poster = min(max(0, round(t * tpl.fps)), chosen.frames - 1)
    shows = [(lay.enter.at or 0) + (lay.enter.duration / 2 if lay.enter.effect != "none" else 0)
             if lay.enter else 0.0 for lay in scene.layers]
    return chosen, min(round(min(shows, default=0.0) * tpl.fps), poster), poster


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _install(src: Path, dst: Path) -> None:
    """Move a finished file into place atomically (copy first when the folders are on different disks)."""
    try:
        src.replace(dst)
    except OSError:
        tmp = dst.with_name(f".{dst.name}.part")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)


def preview(context: dict, *, settings: Settings, out_dir: Path, segments: Any = None,
            options: dict | None = None) -> list[Path]:
    """``comms preview --channel video``: one customer's video (landscape unless options['format'])."""
    fmt = (options or {}).get("format") or "landscape"
    if fmt not in FORMATS:
        raise InputError(f"unknown video format {fmt!r}; known: {', '.join(FORMATS)}")
    art = VideoRenderer(settings, segments).render(context, Path(out_dir), fmt)
    return [art.mp4, art.poster, art.preview, art.vtt]


def render_segment(settings: Settings, segment: str, *, campaign: str = "demo", limit: int = 6,
                   fmt: str = "landscape") -> list[VideoOutcome]:
    """The videos of up to ``limit`` customers of a segment of the newest segmentation (the README's demo):
    one customer per language first, so the demo shows every script, into <artifacts>/<campaign>/video/."""
    from ..models import Channel
    from ..payments import LinkSigner
    from ..segment.config import load_segments
    from ..store import Store
    from ..store.snapshots import get_segment_run, get_snapshot, load_assignments
    from .context import ContextBuilder, customers_from_snapshot

    segments = load_segments(settings.segments_file, settings.templates_dir)
    seg = next((s for s in segments.segments if s.name == segment), None)
    if seg is None:
        raise InputError(f"unknown segment {segment!r}; known: {', '.join(segments.names)}")
    if Channel.VIDEO not in seg.channels:
        raise InputError(f"segment {segment!r} does not use the video channel")
    store = Store.open(settings)
    try:
        snapshot = get_snapshot(store)
        assigned = load_assignments(get_segment_run(store, snapshot_id=snapshot.id))
    finally:
        store.dispose()
    ids = list(assigned.loc[assigned["segment"] == segment, "customer_id"].head(5000))
    customers = customers_from_snapshot(snapshot, ids)
    ordered = [customers[i] for i in ids if i in customers]
    by_language: dict[str, Any] = {}
    for c in ordered:
        by_language.setdefault(c.locale.split("-")[0], c)
    picked = list(by_language.values())[:limit]
    chosen = {c.customer_id for c in picked}
    picked += [c for c in ordered if c.customer_id not in chosen][:max(0, limit - len(picked))]
    builder = ContextBuilder(settings, segments, LinkSigner.from_settings(settings), campaign)
    renderer = VideoRenderer(settings, segments)
    return renderer.render_many((builder.build(c, segment) for c in picked),
                                settings.artifacts_dir / safe_name(campaign) / "video", fmt)

