"""The naive way to make a personalized video: one moviepy composite of the whole video per customer.

What a developer writes first: every scene a CompositeVideoClip of its background and its layers (with the
same sprites ours draws, so both ways show the same pictures), fades and slides as moviepy effects and
position functions, the scenes concatenated, the music looped under them, the whole thing written with
libx264 (preset ultrafast, like ours, so the comparison is about the method, not the preset). Used only by
bench/video.py as the baseline.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from comms.render.video import VideoRenderer
from comms.render.videos.frames import background_rgb
from comms.render.videos.layers import box_pixels, draw_image, draw_qr, draw_text
from comms.render.videos.spec import VideoTemplate


def render_naive(renderer: VideoRenderer, template: VideoTemplate, context: dict, out: Path,
                 fmt: str = "landscape") -> Path:
    from moviepy import (AudioFileClip, ColorClip, CompositeVideoClip, ImageClip, VideoFileClip, afx,
                         concatenate_videoclips, vfx)
    from PIL import Image

    size, fps = template.size(fmt), template.fps
    lang, rtl = context["customer"]["lang"], context["customer"]["dir"] == "rtl"
    words = renderer.words(template, context)
    media = renderer.settings.media_dir
    scenes, opened = [], []
    for w in words:
        scene, seconds = w.scene, w.frames / fps
        bg = scene.background
        if bg.video:
            clip = VideoFileClip(str(media / bg.video), audio=False).resized(size)
            opened.append(clip)
            base = clip.with_effects([vfx.Loop(duration=seconds)])
        elif bg.image:
            with Image.open(media / bg.image) as src:
                base = ImageClip(background_rgb(bg, size, src.convert("RGB")))
        elif bg.color:
            base = ColorClip(size, color=background_rgb(bg, (2, 2))[0, 0].tolist())
        else:
            base = ImageClip(background_rgb(bg, size))
        layers = [base.with_duration(seconds)]
        for layer, text in zip(scene.layers, w.layers):
            box = box_pixels(layer, fmt, size, rtl, scene.mirror_rtl)
            if layer.kind == "text":
                sprite = draw_text(text or "", layer, box, min(size) / 720, renderer.fonts, lang, rtl)
            elif layer.kind == "qr":
                sprite = draw_qr(text or "", layer, box, rtl)
            else:
                sprite = draw_image(media / layer.source, layer, box, rtl)
            if sprite is None:
                continue
            rgb = np.ascontiguousarray(sprite.rgba[..., :3])
            mask = ImageClip(sprite.rgba[..., 3].astype(np.float64) / 255.0, is_mask=True)
            clip = ImageClip(rgb).with_mask(mask)
            start = (layer.enter.at or 0.0) if layer.enter else 0.0
            effects = []
            if layer.enter and layer.enter.effect != "none":
                effects.append(vfx.CrossFadeIn(layer.enter.duration))
            end = seconds
            if layer.exit:
                end = layer.exit.at + layer.exit.duration if layer.exit.at is not None else seconds
                if layer.exit.effect != "none":
                    effects.append(vfx.CrossFadeOut(layer.exit.duration))
            clip = clip.with_start(start).with_duration(max(end - start, 1.0 / fps))
            x, y, dur = sprite.x, sprite.y, layer.enter.duration if layer.enter else 0
            effect = layer.enter.effect if layer.enter else "none"
            if effect == "slide":
                effect = "slide-left" if rtl else "slide-right"
            W, H = size
            dx, dy = {"slide-right": (-0.08 * W, 0), "slide-left": (0.08 * W, 0), "slide-up": (0, 0.08 * H),
                      "slide-down": (0, -0.08 * H)}.get(effect, (0, 0))
            if dx or dy:
                clip = clip.with_position(lambda t, x=x, y=y, d=dur, dx=dx, dy=dy: (
                    x + dx * (1 - min(t / max(d, 1e-6), 1.0)) ** 3, y + dy * (1 - min(t / max(d, 1e-6), 1.0)) ** 3))
            else:
                clip = clip.with_position((x, y))
            layers.append(clip.with_effects(effects) if effects else clip)
        scenes.append(CompositeVideoClip(layers, size=size).with_duration(seconds))
    video = concatenate_videoclips(scenes)
    audio = None
    if template.music:
        audio = AudioFileClip(str(media / template.music.file))
        opened.append(audio)
        track = audio.with_effects([afx.AudioLoop(duration=video.duration)]).with_volume_scaled(
            template.music.volume)
        video = video.with_audio(track)
    with tempfile.TemporaryDirectory(prefix="naive-video-") as tmp:
        video.write_videofile(str(out), fps=fps, codec="libx264", preset="ultrafast", audio_codec="aac",
                              temp_audiofile=str(Path(tmp) / "audio.m4a"), logger=None,
                              ffmpeg_params=["-pix_fmt", "yuv420p", "-movflags", "+faststart"])
    video.close()
    for clip in opened:
        clip.close()
    return out
