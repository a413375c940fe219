"""What a job shows of itself outside the panels: the end of a job in the console and, when
it failed in a window, a popup; redraws of the editors that show jobs."""

from __future__ import annotations

import bpy

from .job import FAILED, Job


def job_ended(job: Job) -> None:
    print(f"GAN Style: {job.title}: {job.status.lower()}: {job.message}")
    if job.state != FAILED or bpy.app.background:
        return
    wm = bpy.context.window_manager
    if wm is None or not len(wm.windows):
        return

    def draw(menu, _context):
        for line in wrap(job.message, 90):
            menu.layout.label(text=line)

    with bpy.context.temp_override(window=wm.windows[0]):
        wm.popup_menu(draw, title=f"GAN Style: {job.title} failed", icon='ERROR')


def wrap(text: str, width: int) -> list[str]:
    """Words of `text` in lines of at most `width` characters (labels do not wrap)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def redraw() -> None:
    """Tag the editors that show jobs (sequencer sidebar, preferences, status bar)."""
    wm = bpy.context.window_manager
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in ('SEQUENCE_EDITOR', 'PREFERENCES', 'STATUSBAR'):
                area.tag_redraw()
