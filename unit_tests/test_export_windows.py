"""WindowSizer: how export windows grow and shrink."""

from datetime import timedelta

from source_iterable.export.windows import WindowSizer

DAY = timedelta(days=1)


def test_first_window_is_30_days():
    assert WindowSizer().first() == 30 * DAY


def test_empty_or_quick_windows_grow_up_to_four_times_and_stop_at_180_days():
    sizer = WindowSizer(target_seconds=60)

    assert sizer.after_success(30 * DAY, seconds=0.2, records=0) == 120 * DAY
    assert sizer.after_success(30 * DAY, seconds=10, records=5000) == 120 * DAY
    assert sizer.after_success(120 * DAY, seconds=1, records=0) == 180 * DAY


def test_windows_follow_the_target_duration_and_shrink_at_most_by_half():
    sizer = WindowSizer(target_seconds=60)

    assert sizer.after_success(10 * DAY, seconds=30, records=100) == 20 * DAY
    assert sizer.after_success(10 * DAY, seconds=120, records=100) == 5 * DAY
    assert sizer.after_success(10 * DAY, seconds=6000, records=100) == 5 * DAY


def test_a_drop_halves_and_caps_later_windows_of_the_sync():
    sizer = WindowSizer(target_seconds=60)

    assert sizer.after_drop(30 * DAY) == 15 * DAY
    assert sizer.after_success(15 * DAY, seconds=1, records=0) == 15 * DAY, (
        "a span the server could not serve is not tried again in the same sync"
    )


def test_spans_never_go_below_one_minute():
    sizer = WindowSizer()

    assert sizer.after_drop(timedelta(seconds=70)) == timedelta(minutes=1)
