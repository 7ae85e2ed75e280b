"""Memory and walltime parsing: what users type, what Slurm is given."""

import pytest

from fedhub.units import format_memory_mb, format_walltime, parse_memory_mb, parse_walltime


@pytest.mark.parametrize("text,mb", [("512M", 512), ("2G", 2048), ("2g", 2048), ("1T", 1048576),
                                     ("1024", 1024), ("4GiB", 4096), (" 8G ", 8192), ("2048K", 2)])
def test_memory_parses_to_megabytes(text, mb):
    assert parse_memory_mb(text) == mb


@pytest.mark.parametrize("text", ["", "G", "2X", "-1G", "1.5G", "0", "2G; rm -rf /", "9999999999G", "1K"])
def test_bad_memory_is_rejected_with_an_example(text):
    with pytest.raises(ValueError, match="512M|out of range"):
        parse_memory_mb(text)


@pytest.mark.parametrize("text,seconds", [("01:00:00", 3600), ("1-02:00:00", 93600), ("90", 5400),
                                          ("00:01:00", 60), ("100:00:00", 360000)])
def test_walltime_parses_to_seconds(text, seconds):
    assert parse_walltime(text) == seconds


@pytest.mark.parametrize("text,fragment", [("1:60:00", "up to 59"), ("00:00:30", "at least one minute"),
                                           ("abc", "HH:MM:SS"), ("1:00", "HH:MM:SS"),
                                           ("400-00:00:00", "longer than a year")])
def test_bad_walltime_says_why(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_walltime(text)


def test_canonical_forms_round_trip():
    for mb in (1, 512, 1536, 2048, 1048576):
        assert parse_memory_mb(format_memory_mb(mb)) == mb
    for seconds in (60, 3600, 5400, 86400, 93784 - 4):
        assert parse_walltime(format_walltime(seconds)) == seconds
    assert format_walltime(93600) == "1-02:00:00"
    assert format_memory_mb(2048) == "2G"
