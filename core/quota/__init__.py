"""Test-set-first quota plans: statistical sizing, deployment mix, versions, status."""
