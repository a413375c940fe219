"""The Blender-side domain that the operators and panels work on: strips as frame sources,
storage, painted keyframes, the style library, the options schema, jobs and the worker
processes that run them. It imports bpy but never torch (see docs/architecture.md)."""
