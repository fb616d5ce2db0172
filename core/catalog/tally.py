"""Rebuild the per-cell tallies that triggers on ``images`` normally keep current.

Needed after an inventory correction that moves existing images to another
cell (a bag's luggage type or clutter level, an item's class, a scanner's
model): the triggers only see changes to ``images`` itself.
"""

from __future__ import annotations

from core.catalog.db import WriteTransaction

_COUNTED = (
    "i.usable = 1 AND i.split IS NOT NULL AND i.bag_id IS NOT NULL AND i.scanner_id IS NOT NULL"
)


def rebuild_tallies(txn: WriteTransaction) -> None:
    txn.execute("DELETE FROM setup_tally")
    txn.execute("DELETE FROM cell_tally")
    txn.execute(
        f"""INSERT INTO setup_tally (split, scanner_model_id, bag_id, item_key, pose_key, images)
            SELECT i.split, s.model_id, i.bag_id, IFNULL(i.item_id, 0), IFNULL(i.pose_id, 0), COUNT(*)
            FROM images i JOIN scanners s ON s.id = i.scanner_id
            WHERE {_COUNTED}
            GROUP BY 1, 2, 3, 4, 5"""
    )
    txn.execute("UPDATE tally_clock SET seq = seq + 1, reset_seq = seq + 1")
    # Readers holding a cache see the rebuild as a reset (every row is newer).
    txn.execute(
        """INSERT INTO cell_tally
               (split, class_key, luggage_type_id, clutter_level, scanner_model_id, pose_key, images, setups, seq)
           SELECT st.split, IFNULL(ti.class_id, 0), b.luggage_type_id, b.clutter_level,
                  st.scanner_model_id, st.pose_key, SUM(st.images), COUNT(*), (SELECT seq FROM tally_clock)
           FROM setup_tally st
           JOIN bags b ON b.id = st.bag_id
           LEFT JOIN threat_items ti ON ti.id = st.item_key
           GROUP BY 1, 2, 3, 4, 5, 6"""
    )
