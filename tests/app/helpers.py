"""Shared by the window tests."""


def show_window(qtbot, lab, settings):
    """The main window on ``lab``, shown at 1366x768 with its first area loaded."""
    from app.main_window import MainWindow

    win = MainWindow(lab, settings=settings)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.ready, timeout=10_000):
        win.resize(1366, 768)
        win.show()
    return win
