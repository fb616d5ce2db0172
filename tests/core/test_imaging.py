"""Windowing tables, window presets, pyramids cached in the store, and the pseudo-colour view."""

import numpy as np
import pytest

from core.errors import XLabError
from core.imaging import pseudocolour, pyramid, windowing
from core.imaging.pyramid import ImageChannels, ImageSource
from core.imaging.windowing import Window


def test_lut_maps_the_window_linearly_onto_0_to_255():
    table = windowing.lut(Window(level=1000, width=200), 65536)
    assert table.dtype == np.uint8 and table.shape == (65536,)
    assert table[0] == table[899] == table[900] == 0  # at and below level - width/2: black
    assert table[1100] == table[1101] == table[65535] == 255  # at and above level + width/2: white
    assert table[1000] == 128  # the level is mid-grey (127.5 rounds up)
    assert table[950] == 64  # 50/200 of the way: 63.75
    assert table[1050] == 191  # 150/200: 191.25
    assert np.all(np.diff(table.astype(int)) >= 0)


def test_lut_for_8_bit_data_and_a_one_value_window():
    table = windowing.lut(Window.between(10, 10), 256)  # widened to one stored value
    assert table.shape == (256,)
    assert table[10] == 0 and table[11] == 255


def test_apply_is_one_lookup_per_pixel():
    tile = np.array([[0, 900, 1000], [1100, 65535, 950]], np.uint16)
    out = windowing.apply(windowing.lut(Window(1000, 200), 65536), tile)
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 0, 128], [255, 255, 64]]


def _known_histogram() -> np.ndarray:
    """100 pixels at each value 0..999 (a 10-bit image): 100,000 pixels."""
    hist = np.zeros(65536, np.uint32)
    hist[:1000] = 100
    return hist


def test_percentiles_read_from_the_histogram():
    hist = _known_histogram()
    assert windowing.percentile(hist, 0.5) == 4  # 500 pixels lie at 0..4
    assert windowing.percentile(hist, 50) == 499
    assert windowing.percentile(hist, 99.5) == 994
    assert windowing.percentile(np.zeros(256, np.uint32), 50) == 0


def test_presets_on_a_known_histogram():
    hist = _known_histogram()
    assert windowing.preset("auto", hist) == Window.between(4, 994)
    # Full range: the image's own bit depth (values up to 999 → 10 bits), not 0-65535.
    assert windowing.preset("full range", hist) == Window.between(0, 1023)
    # Organic stretches 30-100 % of the air value (the 99.5th percentile), metal 0-40 %.
    organic, metal = windowing.preset("organic", hist), windowing.preset("metal", hist)
    assert (organic.low, organic.high) == pytest.approx((0.30 * 994, 994))
    assert (metal.low, metal.high) == pytest.approx((0, 0.40 * 994))
    with pytest.raises(ValueError, match="unknown window preset 'bone'.*full range, auto, organic, metal"):
        windowing.preset("bone", hist)


def test_histogram_counts_each_stored_value():
    pixels = np.array([[0, 5, 5], [65535, 5, 0]], np.uint16)
    hist = windowing.histogram(pixels)
    assert hist.shape == (65536,) and hist[0] == 2 and hist[5] == 3 and hist[65535] == 1 and hist.sum() == 6
    assert windowing.histogram(pixels.astype(np.uint8)).shape == (256,)
    assert windowing.full_scale(hist) == 65535
    assert windowing.full_scale(windowing.histogram(np.array([[200]], np.uint8))) == 255


def test_a_dragged_window_stays_within_the_data_range():
    win = Window(1000, 200)
    assert win.dragged(50, -20, 4095) == Window(1050, 180)
    assert win.dragged(-5000, -500, 4095) == Window(0, 1)
    assert win.dragged(9000, 9000, 4095) == Window(4095, 8190)


def _store_image(tmp_path, pixels):
    from tests.bench.bench_viewer import write_store_image

    return write_store_image(tmp_path / "store", pixels)


def test_pyramid_levels_halve_down_to_256_and_round_trip_through_the_store(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 16384, (601, 1001)).astype(np.uint16)  # odd sizes round up
    path = _store_image(tmp_path, pixels)
    source = ImageSource.from_store(path)
    sha = path.name[:64]
    assert source.cache == tmp_path / "store" / "pyramids" / sha[:2] / f"{sha}.npz"
    assert source.thumbnail == tmp_path / "store" / "thumbs" / sha[:2] / f"{sha}.png"
    assert source.cached() is None

    full = source.full()
    assert {k: v.shape for k, v in full.levels.items()} == {0: (601, 1001), 1: (301, 501), 2: (151, 251)}
    assert np.array_equal(full.levels[0], pixels)
    assert full.hist.sum() == pixels.size and full.pseudo == {}
    # Level 1 is the 2x2 average (INTER_AREA), so a smooth area keeps its value.
    assert abs(float(full.levels[1][:300, :500].mean()) - float(pixels[:600, :1000].mean())) < 2

    cached = source.cached()
    assert cached is not None and sorted(cached.levels) == [1, 2]  # level 0 is the stored file itself
    assert all(np.array_equal(cached.levels[k], full.levels[k]) for k in (1, 2))
    assert np.array_equal(cached.hist, full.hist)
    assert (cached.width, cached.height, cached.kind) == (1001, 601, "grey")
    assert cached.level_for(1.0) == 0 and cached.level_for(0.5) == 1 and cached.level_for(0.3) == 1
    assert cached.level_for(0.25) == 2 and cached.level_for(0.01) == 2


def test_a_damaged_or_older_cache_is_rebuilt_never_shown(tmp_path):
    pixels = np.tile(np.arange(700, dtype=np.uint16) * 20, (520, 1))
    path = _store_image(tmp_path, pixels)
    source = ImageSource.from_store(path)
    source.cache.parent.mkdir(parents=True)
    source.cache.write_bytes(b"PK\x03\x04 not a whole zip")
    assert source.cached() is None
    assert source.ensure_cached() is True
    assert source.cached() is not None
    assert source.ensure_cached() is False  # already there: nothing built

    # An older format, or levels that do not fit the image, count as missing too.
    good = source.cached()
    pyramid.save(good, source.cache)
    import json

    with np.load(source.cache) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["meta"]))
    np.savez(source.cache, **{**arrays, "meta": np.array(json.dumps({**meta, "version": 0}))})
    assert source.cached() is None
    np.savez(source.cache, **{**arrays, "level_1": arrays["level_1"][:-1]})
    assert source.cached() is None


def test_decode_errors_say_what_to_do(tmp_path):
    missing = tmp_path / "store" / "ab" / "cd" / ("abcd" + "0" * 60 + ".png")
    with pytest.raises(XLabError, match="missing from the store: restore the store from its backup"):
        pyramid.decode_file(missing)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(XLabError, match="cannot be shown: not a PNG, TIFF, JPEG or DICOM"):
        pyramid.decode_file(junk)
    # Outside the store layout there is nothing to cache, but the image still opens.
    assert ImageSource.from_store(junk).cache is None


def test_colour_and_8_bit_images_have_256_entry_windows(tmp_path):
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[..., 0] = 200
    source = ImageSource.from_store(_store_image(tmp_path, rgb))
    full = source.full()
    assert full.kind == "rgb" and full.hist is None and full.entries == 256
    assert full.levels[0][0, 0].tolist() == [200, 0, 0]  # RGB order kept through the store
    grey8 = ImageSource.from_store(_store_image(tmp_path, np.full((300, 300), 9, np.uint8))).full()
    assert grey8.kind == "grey" and grey8.entries == 256


def _material_scan():
    """Simulator channels of three regions: empty belt, 4 cm of organic, 6 mm of steel."""
    from core.simulator.physics import ThicknessStack, detect

    stack = ThicknessStack(120, 300)
    organic = np.zeros((120, 300), np.float32)
    organic[20:100, 20:130] = 4.0
    steel = np.zeros((120, 300), np.float32)
    steel[20:100, 170:280] = 0.6
    stack.add("organic", organic)
    stack.add("steel", steel)
    low_att, high_att = stack.attenuation()
    rng = np.random.default_rng(3)
    high = detect(high_att, rng, 0.01, 1.0, 14)
    low = detect(low_att, rng, 0.01, 1.0, 14)
    return low, high


def test_pseudo_colour_shows_organic_orange_and_metal_blue():
    low, high = _material_scan()
    pyr = pyramid.build(ImageChannels(high, low))
    rgb = pyr.pseudo[0].astype(int)
    organic = rgb[30:90, 30:120].reshape(-1, 3).mean(axis=0)
    metal = rgb[30:90, 180:270].reshape(-1, 3).mean(axis=0)
    belt = rgb[105:, :].reshape(-1, 3).mean(axis=0)
    r, g, b = organic
    assert r > g > b and r - b > 80, organic  # orange: red over green over blue
    r, g, b = metal
    assert b > 1.5 * g and b > 3 * r, metal  # blue
    assert belt.min() > 200  # the empty belt stays white
    # The same colours the simulated scanners write (one definition, imported).
    from core.simulator.physics import pseudo_colour

    assert np.array_equal(pyr.pseudo[0], pseudo_colour(low, high))


def test_pseudo_colour_needs_both_channels():
    low, high = _material_scan()
    assert pseudocolour.available(low, high)
    assert not pseudocolour.available(None, high)
    assert not pseudocolour.available(low[:, :10], high)
    assert pyramid.build(ImageChannels(high)).pseudo == {}  # grey only
    with pytest.raises(ValueError, match="two grey channels of one shape"):
        pseudocolour.render(None, high)
