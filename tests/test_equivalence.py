"""Appendix B: patterns of a soft-reset LIF under constant input, computed by the library."""

import json
from fractions import Fraction

import pytest

from snnjax.equivalence import as_fraction, constant_input_patterns, markdown_table


def test_paper_table_has_seven_patterns_with_exact_boundaries():
    intervals = constant_input_patterns(T=4, tau=2.0, v_threshold=1.0, v_reset=None)
    assert [iv.pattern for iv in intervals] == ["0000", "0001", "0010", "0101", "0110", "0111", "1111"]
    expected = [Fraction(16, 15), Fraction(8, 7), Fraction(4, 3), Fraction(12, 7), Fraction(28, 15), Fraction(2)]
    for iv, bound in zip(intervals[1:], expected):
        assert iv.lower == pytest.approx(float(bound), abs=1e-12)
    assert [iv.spike_count for iv in intervals] == [0, 1, 1, 2, 2, 3, 4]


def test_boundary_belongs_to_the_higher_pattern_because_spikes_fire_at_equality():
    intervals = constant_input_patterns(T=4, v_reset=None)
    assert intervals[-1].lower <= 2.0 and intervals[-2].upper <= 2.0


def test_hard_reset_has_fewer_patterns():
    patterns = [iv.pattern for iv in constant_input_patterns(T=4, v_reset=0.0)]
    assert patterns == ["0000", "0001", "0010", "0101", "1111"]


def test_markdown_and_fractions():
    table = markdown_table(constant_input_patterns(T=2, v_reset=None))
    assert table.splitlines()[0] == "| Firing pattern | Input interval | Spikes |"
    assert "| 00 | x < 4/3 | 0 |" in table and "x ≥ 2" in table
    assert as_fraction(1 / 3) == "1/3" and as_fraction(2.0) == "2" and as_fraction(0.123456789) == "0.123457"


def test_script_writes_json_and_refuses_to_overwrite_different_results(experiment, tmp_path, capsys):
    script = experiment("equivalence")
    out = tmp_path / "eq.json"
    result = script.main(["--out", str(out)])
    assert "| 0110 | 12/7 ≤ x < 28/15 | 2 |" in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["patterns"][1]["lower"]["exact"] == "16/15" and saved["patterns"][0]["lower"] is None
    assert len(result["patterns"]) == 7
    script.main(["--out", str(out)])  # identical content: fine
    with pytest.raises(SystemExit, match="exists with different content"):
        script.main(["--out", str(out), "--T", "3"])
    with pytest.raises(SystemExit):
        script.main(["--tau", "1.0"])
