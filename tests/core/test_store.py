import os

from core.store import ContentStore, link_atomic


def test_link_only_when_the_source_is_still_the_hashed_file(tmp_path):
    source = tmp_path / "drop.png"
    source.write_bytes(b"abc")
    st = os.stat(source)
    assert link_atomic(source, tmp_path / "store" / "a", (st.st_size, st.st_mtime_ns))
    assert os.stat(tmp_path / "store" / "a").st_ino == st.st_ino
    assert not link_atomic(source, tmp_path / "store" / "b", (st.st_size + 1, st.st_mtime_ns))
    assert not (tmp_path / "store" / "b").exists()
    assert not [p for p in (tmp_path / "store").iterdir() if p.name.startswith(".")]


def test_reconcile_removes_only_what_the_catalog_does_not_know(tmp_path):
    store = ContentStore(tmp_path)
    for sha in ("a" * 64, "b" * 64):
        store.begin(sha, ".png")
        store.put(sha, ".png", sha.encode())
        store.put_thumb(sha, b"thumb")
    removed = store.reconcile(lambda sha: sha == "a" * 64)
    assert removed == ["b" * 64]
    assert store.image_path("a" * 64, ".png").exists() and not store.image_path("b" * 64, ".png").exists()
    assert not store.thumb_path("b" * 64).exists()
    assert list(store.journal.iterdir()) == []
    assert store.orphans(lambda sha: sha == "a" * 64) == []
