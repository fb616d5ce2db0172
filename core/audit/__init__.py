"""The audit log, read: the viewer's filters, per-object history and exports
(:mod:`core.audit.log`), and the hash chain that shows whether the log was
changed behind XLab's back (:mod:`core.audit.chain`).

Entries are written in one place, :meth:`core.catalog.db.WriteTransaction.audit`.
"""
