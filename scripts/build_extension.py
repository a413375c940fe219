"""Validate and build the extension zip with Blender's own builder (needs the bpy module).

    .venv/bin/python scripts/build_extension.py [OUT_DIR]     -> OUT_DIR/gan_style-<version>.zip

Install the zip in Blender: Edit > Preferences > Get Extensions > Install from Disk.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def builder_script() -> str:
    """blender_ext.py, the validator and builder that ships inside the bpy module."""
    import bpy
    return os.path.join(bpy.utils.system_resource('SCRIPTS'), "addons_core", "bl_pkg", "cli",
                        "blender_ext.py")


def build_extension(out_dir: str, python: str = sys.executable) -> str:
    """Validate the manifest, build the zip into out_dir (created) and return its path."""
    os.makedirs(out_dir, exist_ok=True)
    script = builder_script()
    for command in (["validate", ROOT], ["build", "--source-dir", ROOT, "--output-dir", out_dir]):
        done = subprocess.run([python, script, *command], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"blender_ext.py {command[0]} failed:\n{done.stdout}{done.stderr}")
    version = _manifest_version()
    path = os.path.join(out_dir, f"gan_style-{version}.zip")
    if not os.path.isfile(path):
        raise RuntimeError(f"the builder did not write {path}: {glob.glob(out_dir + '/*')}")
    return path


def _manifest_version() -> str:
    import tomllib
    with open(os.path.join(ROOT, "blender_manifest.toml"), "rb") as handle:
        return tomllib.load(handle)["version"]


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "dist")
    try:
        print(build_extension(target))
    except RuntimeError as exc:
        sys.exit(f"error: {exc}")
