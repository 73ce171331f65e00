"""`ferkit webcam`: live emotions from a camera (the papers' realtime_prediction).

A window shows each face's box, label (track id, emotion, confidence), probability bars and the
FPS; press q (or close the window) to quit. ``--headless`` runs the same loop without a window
(machines without a screen), ``--record out.mp4`` keeps the annotated video, ``--source`` reads a
video file or stream URL instead of a camera. A camera that does not exist gives a one-line error.

Speed: the ``blazeface`` detector (6 ms per 640x360 frame) with ``--min-size 80`` (faces near the
camera: no tiles), ``--detect-every 4`` (faces followed by optical flow between detections) and
``--smoothing 0.5``: 81 FPS on the 640x360 sample clip on the 2-core
development CPU (``benchmarks/bench_video.py``). Give ``--min-size 24`` for faces far from the
camera, ``--stride 3`` to classify every third frame, ``--detector dlib-hog+blazeface`` for the
photos' default.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ferkit.cli.predict import add_common, make_recognizer
from ferkit.cli.video import FpsMeter, add_stream_options
from ferkit.errors import FerkitError

WINDOW = "ferkit webcam (q to quit)"


def _open_window() -> None:
    import cv2

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise FerkitError("webcam: no screen (DISPLAY is not set); "
                          "use --headless, with --record FILE to keep the video")
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error:
        raise FerkitError("webcam: this OpenCV has no window support (opencv-python-headless); use --headless, "
                          "or pip install opencv-python") from None


def run(a: argparse.Namespace) -> int:
    from ferkit.infer import VideoWriter, open_source
    from ferkit.viz import annotate

    if a.label_duration < 0:
        raise FerkitError(f"webcam: --label-duration must be >= 0, not {a.label_duration}")
    from ferkit.infer import StreamOptions, options_from_namespace

    stream = options_from_namespace(a, StreamOptions)
    src = open_source(a.source if a.source is not None else a.device)
    with src:
        if not a.headless:
            _open_window()
        rec = make_recognizer(a)
        writer = VideoWriter(a.record, src.fps, (src.width, src.height)) if a.record else None
        shown: dict[int, tuple[object, float]] = {}
        meter, n_frames, t0, quit_key = FpsMeter(), 0, time.perf_counter(), False
        try:
            for fr in rec.stream(src, stream):
                if fr.processed:
                    for f in fr.faces:
                        shown[f.track_id] = (f, fr.time_s)
                # a face stays labelled for --label-duration seconds after it was last seen
                shown = {k: v for k, v in shown.items() if fr.time_s - v[1] <= a.label_duration}
                img = annotate(fr.image, [v[0] for v in shown.values()], fps=meter.tick(),
                               landmarks=a.landmarks is not None)
                n_frames += 1
                if writer is not None:
                    writer.write(img)
                if not a.headless:
                    import cv2

                    cv2.imshow(WINDOW, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                    if ((cv2.waitKey(1) & 0xFF) in (ord("q"), 27)
                            or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1):
                        quit_key = True
                        break
        except KeyboardInterrupt:
            pass
        finally:
            if writer is not None:
                writer.close(commit=True)
            if not a.headless:
                import cv2

                cv2.destroyAllWindows()
    dt = time.perf_counter() - t0
    print(f"{src.name}: {n_frames} frames in {dt:.1f} s, {n_frames / dt if dt else 0:.1f} FPS"
          + (f"; recorded {a.record}" if a.record else "") + ("; quit" if quit_key else ""), file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    pr = sub.add_parser("webcam", help="live emotions from a camera (window, or --headless)",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("--device", type=int, default=0, help="camera index (default: %(default)s)")
    pr.add_argument("--source", help="read this video file or stream URL instead of a camera")
    pr.add_argument("--headless", action="store_true", help="no window (for machines without a screen)")
    pr.add_argument("--record", metavar="FILE.mp4", help="save the annotated video")
    pr.add_argument("--label-duration", type=float, default=0.5,
                    help="seconds a face's box and label stay on screen after it was last seen (default: %(default)s)")
    from ferkit.detect import VIDEO_DETECTOR

    # min_size 80: live, large faces, no upsampling or tiles (see the module doc)
    add_common(pr, camera=True, detector=VIDEO_DETECTOR, min_size=80)
    add_stream_options(pr)
    pr.set_defaults(func=run)
