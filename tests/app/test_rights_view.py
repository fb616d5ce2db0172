"""The window offers each role only what it may do: the other buttons are disabled, saying why and
who may; signing in as another user at a shared station changes them."""

from __future__ import annotations

import pytest

from core.catalog.db import current_actor
from core.lab import Lab
from core.users import add_user
from tests.app.helpers import show_window


def test_a_technician_sees_what_they_may_not_do_disabled_with_the_reason(qtbot, demo_lab, settings, monkeypatch):
    add_user(demo_lab, current_actor(), "administrator")
    add_user(demo_lab, "tom", "technician", pin="1111")
    add_user(demo_lab, "mia", "manager", pin="2222")
    with Lab.open(demo_lab.paths.root, user="tom", pin="1111") as lab:
        window = show_window(qtbot, lab, settings)
        try:
            assert window.user_button.text() == "Signed in: tom (technician)"
            assert window.today.technician.text() == "tom"
            for name in ("Quotas", "Inventory", "Runs"):
                window.show_area(name)
            qtbot.waitUntil(lambda: window.rights.gates and window.runs.queue.button is not None, timeout=20_000)
            for button, who in ((window.quotas.new_button, "a manager or an administrator"),
                                (window.inventory.import_button, "a manager or an administrator"),
                                (window.runs.new_button, "an ML engineer or an administrator"),
                                (window.runs.queue.button, "an ML engineer or an administrator")):
                assert not button.isEnabled(), button.text()
                assert "tom is signed in as technician" in button.toolTip() and who in button.toolTip()
            # An area enabling its button for its own reasons does not override the role.
            window.quotas.new_button.setEnabled(True)
            assert not window.quotas.new_button.isEnabled()
            # A manager signs in at the same station: quotas and inventory open up, runs stay shut.
            dialog = window.sign_in()
            dialog.name.setText("mia")
            dialog.pin.setText("9999")
            dialog.accept()
            assert "wrong PIN for mia" in dialog.message.text() and lab.catalog.identity.name == "tom"
            dialog.pin.setText("2222")
            dialog.accept()
            assert lab.catalog.identity.name == "mia" and window.user_button.text() == "Signed in: mia (manager)"
            assert window.today.technician.text() == "mia"
            assert window.quotas.new_button.isEnabled() and window.inventory.import_button.isEnabled()
            assert not window.runs.new_button.isEnabled() and "mia is signed in as manager" in \
                window.runs.new_button.toolTip()
        finally:
            window.close()


def test_an_open_lab_offers_everything(qtbot, demo_lab, settings):
    window = show_window(qtbot, demo_lab, settings)
    try:
        assert window.user_button.text() == "Open lab (no users set up)"
        window.show_area("Quotas")
        assert window.quotas.new_button.isEnabled()
    finally:
        window.close()


def test_an_administrator_manages_the_users_from_the_window(qtbot, demo_lab, settings):
    from core.users import list_users

    window = show_window(qtbot, demo_lab, settings)
    try:
        dialog = window.show_users()
        assert "the lab is open" in dialog.note.text() and dialog.add_button.isEnabled()
        form = dialog.add_user()  # the first user: this login, as administrator
        assert form.name.text() == current_actor() and form.role.currentData() == "administrator"
        form.accept()
        assert [u["name"] for u in list_users(demo_lab)] == [current_actor()]
        form = dialog.add_user()
        form.name.setText("tom")
        form.role.setCurrentIndex(form.role.findData("technician"))
        form.secret.setText("12")  # too short
        form.accept()
        assert "at least 4 digits" in dialog.message.text() and len(list_users(demo_lab)) == 1
        form = dialog.add_user()
        form.name.setText("tom")
        form.role.setCurrentIndex(form.role.findData("technician"))
        form.secret.setText("1234")
        form.accept()
        tom = next(u for u in list_users(demo_lab) if u["name"] == "tom")
        assert tom["role"] == "technician" and tom["has_pin"]
        dialog.table.selectRow(dialog.users.index(next(u for u in dialog.users if u["name"] == "tom")))
        form = dialog.change_user()
        form.role.setCurrentIndex(form.role.findData("manager"))
        form.accept()
        dialog.table.selectRow(dialog.users.index(next(u for u in dialog.users if u["name"] == "tom")))
        dialog.toggle_disabled()
        tom = next(u for u in list_users(demo_lab) if u["name"] == "tom")
        assert tom["role"] == "manager" and tom["disabled"]
        dialog.close()
        assert window.user_button.text() == f"Signed in: {current_actor()} (administrator)"
    finally:
        window.close()


@pytest.mark.parametrize("role", ["technician", "manager", "ml_engineer"])
def test_every_gated_button_follows_the_role(qtbot, demo_lab, settings, role):
    """Each button of app.rights.GATES, for each role: disabled with the reason where the role lacks
    its permission, left to its area where it holds it."""
    from app.rights import GATES, find_button

    add_user(demo_lab, current_actor(), "administrator")
    add_user(demo_lab, "pat", role, pin="4321")
    with Lab.open(demo_lab.paths.root, user="pat", pin="4321") as lab:
        window = show_window(qtbot, lab, settings)
        try:
            for name in ("Quotas", "Inventory", "Datasets", "Runs", "Dashboards"):
                window.show_area(name)
            qtbot.waitUntil(lambda: window.dashboards.production is not None, timeout=20_000)
            window.rights.install()
            who = lab.catalog.identity
            checked = 0
            for area, path, permission in GATES:
                button = find_button(getattr(window, area), path)
                gate = window.rights.gates[id(button)]
                assert gate.allowed() == who.may(permission), (area, path)
                if not who.may(permission):
                    button.setEnabled(True)  # whatever the area wants
                    assert not button.isEnabled() and "pat is signed in as" in button.toolTip(), (area, path)
                else:
                    assert "may not" not in button.toolTip()
                checked += 1
            assert checked == len(GATES)
        finally:
            window.close()
