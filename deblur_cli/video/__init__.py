"""Video files through any per-frame function, keeping timing, rotation, audio and metadata.

This package knows nothing about the network: ``process_video`` takes a callable that maps an
HxWx3 uint8 RGB frame to another, so the engine, tests and benchmarks plug in alike.

Design, and why:

* Streaming. A decoder thread and an encoder thread run beside the caller's thread, joined by
  bounded queues, so decoding and encoding overlap the model and memory stays bounded (a few
  frames ahead, up to ~64 MB behind), whatever the clip's length. Beside a network on the
  CPU the codecs run on one thread each rather than one per core (``codec_threads``).
* Timing. Every frame keeps its source timestamp (shifted only by ``--start``) in the source's
  time base, so variable frame rate and odd rates such as 30000/1001 survive exactly.
* Resume. The video is encoded in short segments (a couple of seconds each, every one starting
  on a keyframe) into a parts folder beside the output; a manifest records the finished ones.
  A killed run loses at most the segment in progress, and running again carries on after the
  last finished segment (never splicing in segments made with other settings). The final
  file is muxed from the segments' packets (no re-encode) plus the source's audio/subtitle
  packets, into a temporary file renamed at the very end.

Where each part lives:

    ffmpeg.py     PyAV import guard; what FFmpeg can read, write and hold
    timecode.py   --start/--end text into seconds
    probe.py      open, check and describe the source (VideoInfo)
    decode.py     source frames as RGB arrays with their timestamps
    threads.py    prefetch (decode ahead) and Sink (encode behind) worker threads
    encode.py     encoder settings and the checks made before any work
    segments.py   frames encoded into short segment files
    resume.py     the parts folder and its manifest of finished segments
    mux.py        segments + the source's other streams into the final file
    pipeline.py   process_video: all of the above, end to end
    png_frames.py export_frames: upright PNGs instead of a video
"""

from __future__ import annotations

from .decode import SourceFrame, decode_frames
from .encode import EncodeSettings, check_encoder, resolve_auto
from .ffmpeg import CONTAINERS, VIDEO_EXTENSIONS, container_format
from .mux import mux
from .pipeline import (
    SEGMENT_SECONDS,
    SEGMENT_WORK_SECONDS,
    FrameFn,
    FramesFn,
    ProgressFn,
    VideoResult,
    check_output,
    finished_output,
    process_video,
    unfinished_run,
)
from .png_frames import export_frames, finished_export, unfinished_export
from .probe import VideoInfo, probe
from .resume import (
    MANIFEST,
    MANIFEST_VERSION,
    Manifest,
    ResumeConflict,
    parts_folder,
    why_starting_over,
)
from .segments import ProcessedFrame, SegmentWriter
from .threads import QUEUE_FRAMES, Sink, prefetch
from .timecode import parse_time

__all__ = [
    "CONTAINERS",
    "MANIFEST",
    "MANIFEST_VERSION",
    "QUEUE_FRAMES",
    "SEGMENT_SECONDS",
    "SEGMENT_WORK_SECONDS",
    "VIDEO_EXTENSIONS",
    "EncodeSettings",
    "FrameFn",
    "FramesFn",
    "Manifest",
    "ProcessedFrame",
    "ProgressFn",
    "ResumeConflict",
    "SegmentWriter",
    "Sink",
    "SourceFrame",
    "VideoInfo",
    "VideoResult",
    "check_encoder",
    "check_output",
    "container_format",
    "decode_frames",
    "export_frames",
    "finished_export",
    "finished_output",
    "mux",
    "parse_time",
    "parts_folder",
    "prefetch",
    "probe",
    "process_video",
    "resolve_auto",
    "unfinished_export",
    "unfinished_run",
    "why_starting_over",
]
