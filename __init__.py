"""GAN Style: learn a visual style from clips and apply it to strips of the Video Sequence Editor.

Training and stylizing run in a separate Python process (`python -m gan worker`); Blender's
process never imports torch. See docs/architecture.md.
"""

from . import operators, ui


def register():
    operators.register()
    ui.register()


def unregister():
    ui.unregister()
    operators.unregister()
