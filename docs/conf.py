"""Sphinx configuration of the poems_mu documentation (scverse template style)."""

from datetime import datetime
from importlib.metadata import metadata
from pathlib import Path

HERE = Path(__file__).parent

# -- project -----------------------------------------------------------------------------------------------------
info = metadata("poems_mu")
project = "poems_mu"
author = "poems_mu developers"
copyright = f"{datetime.now():%Y}, {author}"
version = info["Version"]
release = info["Version"]
repository_url = "https://github.com/poems-mu/poems_mu"

templates_path = ["_templates"]
html_static_path = ["_static"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "tutorials/README.md"]
master_doc = "index"
default_role = "literal"
needs_sphinx = "7.0"

# -- extensions --------------------------------------------------------------------------------------------------
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx_autodoc_typehints",  # after napoleon
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 copied into the site: the maths renders without network access
    "sphinx.ext.viewcode",
]

autosummary_generate = True
autosummary_ignore_module_all = False  # list what each module exports in __all__
autodoc_member_order = "groupwise"
autodoc_typehints = "description"
autodoc_mock_imports: list[str] = []
always_document_param_types = False
typehints_use_signature_return = False
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_include_init_with_doc = False
napoleon_use_rtype = True
napoleon_use_param = True
napoleon_custom_sections = [("Params", "Parameters")]

# -- MyST / notebooks --------------------------------------------------------------------------------------------
myst_enable_extensions = ["amsmath", "colon_fence", "deflist", "dollarmath", "html_image"]
myst_heading_anchors = 3
# the notebooks are executed by .ci/docs.sh (nbclient) and committed with their outputs; never re-run here
nb_execution_mode = "off"
nb_merge_streams = True
nb_output_stderr = "remove"
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# -- HTML --------------------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "poems_mu"
html_theme_options = {
    "repository_url": repository_url,
    "use_repository_button": False,
    "path_to_docs": "docs/",
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
pygments_style = "default"

suppress_warnings = [
    # the tutorials' markdown cells use their own heading levels
    "myst.header",
]
