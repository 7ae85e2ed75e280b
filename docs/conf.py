"""Sphinx configuration of FedHub's docs (MyST Markdown, as JupyterHub and its spawners do).

    make docs      # docs/_build/html, warnings as errors

The reference pages are written at build time from the code: the traitlets' ``help``
(autodoc-traits), the REST routes' docstrings (``hub.api.ROUTES``) and the chart's values schema.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

from fedhub import __version__  # noqa: E402

project = "FedHub"
copyright = "FedHub's developers"
version = release = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "autodoc_traits", "fedhub_reference"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_title = f"FedHub {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
autodoc_member_order = "bysource"
