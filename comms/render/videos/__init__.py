"""The parts of the video renderer (comms.render.video is the entry point).

    spec       templates/<treatment>/video.yaml: scenes, backgrounds, layers, animations, music, speech
    personal   which scenes depend on the customer (static analysis of their Jinja, conservative)
    fonts      Debian Noto/DejaVu faces, the Noto Sans + Hebrew merge, coverage-based choice per text
    layers     text (shaped with raqm, wrapped, shrunk to fit), images, logos and QR codes as RGBA
    frames     BT.709 YUV 4:2:0 compositing with numpy: backgrounds, fades, slides, unchanged-frame reuse
    encode     the one ffmpeg encoder setting every part shares, processes that always end, concat and mux
    cache      encoded static scenes and music tracks under <home>/cache/video/<key>/
    captions   WebVTT from the scenes' spoken or shown words
    stills     poster JPEG and animated WebP preview
    speech     optional spoken lines (espeak-ng) mixed over the music
"""
