"""Rendering: resolved images -> the director's files, in xCAT's own formats."""

from .tree import RenderedDirector, RenderedFile, RenderedImage, RenderedVariant, render_director

__all__ = [
    "RenderedDirector",
    "RenderedFile",
    "RenderedImage",
    "RenderedVariant",
    "render_director",
]
