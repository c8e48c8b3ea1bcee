"""``from dve_teach.widgets import ReorderExplorer``: the path coursework uses. The views live in
`dve_teach.teach.widgets`; this module is that one under its old name (it adds nothing)."""
import sys

from .teach import widgets as _widgets

sys.modules[__name__] = _widgets
