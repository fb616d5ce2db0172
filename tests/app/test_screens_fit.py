"""Every area fits a 1366x768 screen: no table scrolls sideways, no column is
cut below its header or spreads over most of the view.

Read-only: the test opens each area (and each Dashboards tab) on a demo lab with
today's sessions planned, and inspects its tables and trees.
"""

import pytest
from PySide6.QtWidgets import QAbstractItemView, QApplication, QHeaderView, QTableView, QTreeView

from core.demo import create_demo_lab
from tests.app.helpers import show_window

MAX_COLUMN_SHARE = 0.45


@pytest.fixture(scope="module")
def planned_demo(tmp_path_factory):
    lab = create_demo_lab(tmp_path_factory.mktemp("fit") / "demo")
    yield lab
    lab.close()


def column_problems(view: QAbstractItemView) -> list[str]:
    """What does not fit in one visible table or tree, as readable lines."""
    header: QHeaderView = view.horizontalHeader() if isinstance(view, QTableView) else view.header()
    model = view.model()
    width = view.viewport().width()
    name = view.objectName() or type(view).__name__
    problems = []
    if view.horizontalScrollBar().isVisible():
        problems.append(f"{name}: scrolls sideways ({header.length()} px of columns in {width} px)")
    metrics = header.fontMetrics()
    for section in range(header.count()):
        if header.isSectionHidden(section):
            continue
        title = str(model.headerData(section, header.orientation()) or "")  # may be on two lines
        size = header.sectionSize(section)
        if size < max(metrics.horizontalAdvance(line) for line in title.split("\n")):
            problems.append(f"{name}: column '{title}' is {size} px, narrower than its header")
        # The one column set to stretch (a name or description) may take the rest
        # and elide; any other column shows its whole content.
        stretched = header.sectionResizeMode(section) == QHeaderView.ResizeMode.Stretch
        if size > MAX_COLUMN_SHARE * width and not (stretched and _holds_text(model, section)):
            problems.append(f"{name}: column '{title}' is {size} px, over {MAX_COLUMN_SHARE:.0%} of {width} px")
        if not stretched and size < view.sizeHintForColumn(section) - 2:
            problems.append(f"{name}: column '{title}' is {size} px, cutting its content "
                            f"({view.sizeHintForColumn(section)} px)")
    return problems


def _holds_text(model, section: int) -> bool:
    return any(str(model.index(row, section).data() or "") for row in range(min(model.rowCount(), 50)))


def visible_views(area) -> list[QAbstractItemView]:
    return [v for v in area.findChildren(QAbstractItemView)
            if isinstance(v, (QTableView, QTreeView)) and v.isVisible()]


def settle(qtbot, area) -> None:
    """Layouts and deferred column sizing done (they run from the event loop)."""
    QApplication.processEvents()
    for view in visible_views(area):
        view.doItemsLayout()  # the delayed layout Qt would run on its next timer
    QApplication.processEvents()


def open_area(qtbot, window, name: str):
    area = window.areas[name]
    if area.isVisible():
        return area
    with qtbot.waitSignal(area.loaded, timeout=20_000):
        window.show_area(name)
    return area


AREAS = ["Today", "Dashboards:0", "Dashboards:1", "Dashboards:2", "Ingest", "Quotas", "Inventory", "Labels", "Datasets"]


@pytest.mark.parametrize("where", AREAS)
def test_area_fits_1366x768(qtbot, planned_demo, settings, where):
    window = show_window(qtbot, planned_demo, settings)
    try:
        name, _, tab = where.partition(":")
        area = open_area(qtbot, window, name)
        if tab:
            area.tabs.setCurrentIndex(int(tab))
        if name == "Inventory":
            views = []
            for index in range(area.tabs.count()):
                area.tabs.setCurrentIndex(index)
                settle(qtbot, area)
                views.append([p for v in visible_views(area) for p in column_problems(v)])
            problems = [p for section in views for p in section]
        else:
            settle(qtbot, area)
            problems = [p for v in visible_views(area) for p in column_problems(v)]
        assert window.width() <= 1366 and window.height() <= 768
        needs, has = area.minimumSizeHint(), window.stack.size()
        assert needs.width() <= has.width() and needs.height() <= has.height(), f"{where} needs {needs}, has {has}"
        assert not problems, "\n".join(problems)
    finally:
        window.close()
