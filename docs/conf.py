"""Sphinx configuration of rjtrial's documentation site (built by ``scripts/docs.sh``)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))

import rjtrial_docgen  # noqa: E402

import rjtrial  # noqa: E402

# Pages made from the code before Sphinx looks for sources: API pages, CLI reference,
# validation tables, the security policy.
rjtrial_docgen.generate(HERE)

project = "rjtrial"
author = "the rjtrial authors"
copyright = "the rjtrial authors"
release = rjtrial.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "rjtrial_sphinx",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}  # operations.md, also read on GitHub
root_doc = "index"
exclude_patterns = [
    "_build",
    "_generated",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
]
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["rjtrial.css"]

# ---------------------------------------------------------------- references must resolve
nitpicky = True
# Other projects' names (no intersphinx: the build reads nothing from the network) and the
# plain-English types numpydoc writes in "Parameters" (str, DataFrame, array-like, ...).
nitpick_ignore_regex = [
    # private modules and names (``rjtrial.survival._coxengine``) are not part of the API pages
    (r"py:.*", r"(.*\.)?_[A-Za-z].*"),
    (
        r"py:.*",
        r"(pandas|pd|numpy|np|scipy|statsmodels|lifelines|linearmodels|matplotlib|sqlalchemy|fastapi"
        r"|starlette|argparse|datetime|pathlib|os|typing|collections|concurrent|dask|jinja2)(\..*)?",
    ),
    (
        r"py:.*",
        r"(int|float|str|bool|dict|list|tuple|set|bytes|callable|object|None|Path|DataFrame|Series"
        r"|Generator|Axes|Figure|Mapping|Sequence|Iterable|Collection|Any|datetime|date)",
    ),
]

# ------------------------------------------------------------------------ autodoc / numpydoc
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # types are in the numpydoc "Parameters"; signatures stay readable
autodoc_default_options = {"member-order": "bysource"}
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -------------------------------------------------------------------------- example gallery
sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "analysis")],
    "gallery_dirs": ["auto_examples"],
    # Every script runs, except the recovery study (~20 minutes) and the power curve (120,000 simulated trials).
    "filename_pattern": r"^((?!recovery_study|power_curve).)*\.py$",
    "ignore_pattern": r"__init__\.py",
    "reset_argv": "rjtrial_sphinx.gallery_arguments",
    "reset_modules": ("matplotlib", "rjtrial_sphinx.exit_is_return"),
    "reset_modules_order": "both",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "plot_gallery": "True",
    "within_subsection_order": "FileNameSortKey",
}

# ---------------------------------------------------------------------------------- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"rjtrial {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 8,
}
html_show_sourcelink = False
html_last_updated_fmt = None
myst_heading_anchors = 2
suppress_warnings = []
