"""The style engine: learns a visual style from clips or images and stylizes video.

This package never imports bpy. Importing it stays light (no torch, no OpenCV), so that
Blender's process can use `gan.protocol` and `gan.stylefile` without loading torch; the heavy
modules (models, train, stylize) are imported only by the worker and the CLI.
"""

__version__ = "0.1.0"
