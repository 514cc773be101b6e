"""The benchmark table says when its own numbers are not to be trusted, or fall short."""

from bench.common import shortfall
from bench.report import busy_warning, cpu_busy_share


def test_a_run_started_on_a_busy_machine_carries_a_warning():
    warning = busy_warning({"cores": 2, "cpu_busy_at_start": 0.62})
    assert warning and "used 62% of its 2 cores" in warning[0]
    assert "not reliable" in warning[0]


def test_a_run_started_on_a_quiet_machine_has_no_warning():
    assert busy_warning({"cores": 2, "cpu_busy_at_start": 0.03}) == []


def test_the_busy_share_is_measured_and_sees_a_spinning_core():
    import multiprocessing

    def spin(stop):
        while not stop.is_set():
            pass

    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=spin, args=(stop,))
    spinner.start()
    try:
        share = cpu_busy_share(0.5)
    finally:
        stop.set()
        spinner.join()
    assert share is not None and share >= 0.9 / (multiprocessing.cpu_count() or 1)


def test_a_missed_ratio_says_by_how_much_and_where_the_reason_is():
    note = shortfall(416.0, 1640.0, "why write")
    assert note.startswith("SHORT by 0.25x (820 req/s needed, 416 reached)")
    assert "'why write' row" in note


def test_a_met_ratio_adds_nothing():
    assert shortfall(900.0, 1640.0, "why write") == ""
