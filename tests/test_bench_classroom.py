"""The pure parts of `make bench-class`: percentiles, goals, tables, the section it replaces, argument checks,
the values it writes to the URL and the /proc parsing of its memory. No server, no clock."""

from __future__ import annotations

import pytest

from bench import classreport as cr
from bench import procmem
from bench.classroom import decimals, js_number, parse_args

PAGES = ["loss_scaling", "reduction", "accumulation"]


def test_percentile_interpolates_between_ranks():
    assert cr.percentile([], 50) is None
    assert cr.percentile([3.0], 95) == 3.0
    assert cr.percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert cr.percentile(list(map(float, range(1, 101))), 95) == pytest.approx(95.05)
    assert cr.percentile([1.0, 2.0], 0) == 1.0 and cr.percentile([1.0, 2.0], 100) == 2.0
    with pytest.raises(ValueError):
        cr.percentile([1.0], 101)


def action(kind: str, latency: float | None, errors=(), dropped="", phase="class") -> cr.Action:
    return cr.Action(phase, 0, "loss_scaling", kind, 0.0, latency, list(errors), dropped)


def sample(t: float, pss_mb: float, rss_mb: float | None = None) -> cr.MemSample:
    return cr.MemSample(t, int(pss_mb * 1024), int((rss_mb or pss_mb) * 1024), 3, 5)


def test_summary_leaves_failed_actions_out_of_the_latencies_and_counts_them():
    acts = [action("first_load", 1.0), action("rerun", 0.2), action("rerun", 0.4),
            action("rerun", None, errors=["timeout: no script_finished within 120 s"]),
            action("rerun", 0.3, errors=["exception: ValueError: x"]),
            action("rerun", None, dropped="websocket lost"), action("home", 9.0)]
    s = cr.summarize(cr.Phase("class", 5, 0, 10, acts, [sample(0, 300), sample(1, 500), sample(2, 400)]))
    assert s.first_load == cr.Spread(1, 1.0, 1.0, 1.0)
    assert s.rerun.n == 3 and s.rerun.max == 0.4  # the timed-out and dropped runs are not latencies
    assert (s.errors, s.dropped) == (2, 1)
    assert s.pss_mb == (300, 500, 400)
    assert "websocket lost" in s.messages


def summary(phase: str, students: int, rerun=(0.3, 1.0), first_p95=1.5, pss_peak=800.0, errors=0, dropped=0):
    return cr.Summary(phase, students, cr.Spread(10, 1.0, first_p95, 3.0), cr.Spread(50, rerun[0], rerun[1], 2.0),
                      errors, dropped, (100.0, pss_peak, 200.0), (120.0, pss_peak + 100, 220.0), ())


def test_goals_judge_the_class_of_30_and_the_lone_student():
    items = cr.goals([summary("one student", 1, rerun=(0.12, 0.2)), summary("class", 10, rerun=(9.0, 9.0)),
                      summary("class", 30, rerun=(0.35, 1.6), first_p95=2.5, pss_peak=1100)])
    met = {g.text: g.met for g in items}
    assert met["rerun p50 ≤ 0.4 s, 30 students"] is True  # the 10-student class is not the one judged
    assert met["rerun p95 ≤ 1.5 s, 30 students"] is False
    assert met["first load p95 ≤ 2 s, 30 students"] is False
    assert met["one student: rerun p50 ≤ 0.15 s"] is True
    assert met["0 errors, 0 dropped connections"] is True
    assert met["all processes ≤ 1 GB (peak PSS)"] is False


def test_the_browser_redraw_goal_is_judged_when_measured_and_said_when_not():
    one = [summary("one student", 1)]
    redraw = lambda items: next(g for g in items if "real browser" in g.text)  # noqa: E731
    assert redraw(cr.goals(one, 0.25)).met is True and redraw(cr.goals(one, 0.31)).met is False
    assert redraw(cr.goals(one)).met is None and redraw(cr.goals(one)).measured == "–"


def test_goals_without_a_class_of_30_are_not_measured_and_errors_anywhere_fail():
    items = cr.goals([summary("one student", 1, dropped=1), summary("class", 5)])
    met = {g.text: g for g in items}
    assert met["rerun p50 ≤ 0.4 s, 30 students"].met is None
    assert "largest: 5" in met["rerun p50 ≤ 0.4 s, 30 students"].measured
    assert met["0 errors, 0 dropped connections"].met is False
    assert "one student" in met["0 errors, 0 dropped connections"].measured


def test_tables_render_one_row_each_and_dashes_for_nothing_measured():
    empty = cr.Summary("cold start", 1, cr.Spread.of([]), cr.Spread.of([]), 0, 0, None, None, ())
    lines = cr.phase_table([empty, summary("class", 30)])
    assert len(lines) == 4 and all(line.count("|") == lines[0].count("|") for line in lines)
    assert lines[2] == "| cold start | 1 | – / – / – | 0 | – / – / – | 0 | 0 | – | – |"
    assert "| 100 / 800 / 200 |" in lines[3]
    goal_lines = cr.goal_table([cr.Goal("g", "1 s", True), cr.Goal("h", "2 s", False), cr.Goal("i", "-", None)])
    assert [line.rsplit("|", 2)[1].strip() for line in goal_lines[2:]] == ["met", "**not met**", "not measured"]


def test_soak_rows_take_one_sample_per_interval_and_the_last():
    samples = [sample(t, 300 + t) for t in range(100, 171)]  # one a second, t = 100 .. 170
    rows = cr.soak_rows(samples, 100, 30)
    assert [s.t for s in rows] == [100, 130, 160, 170]
    assert cr.trend_mb_per_min(samples) == pytest.approx(60, rel=1e-2)  # 1 MB a second
    assert cr.trend_mb_per_min(samples[:1]) is None
    assert cr.soak_table(samples, 100, 30)[2].startswith("| 0 | 5 | 3 | 400 |")


SECTION = cr.SECTION + "\n\nnew table\n"


def test_section_is_appended_when_missing_and_the_rest_kept():
    doc = "# Performance\n\n| a |\n\n## Figure export\n\ntext\n"
    assert cr.replace_section(doc, SECTION) == doc + "\n" + SECTION
    assert cr.replace_section("# P\nno newline", SECTION) == "# P\nno newline\n\n" + SECTION
    assert cr.replace_section("", SECTION) == SECTION


def test_section_is_replaced_in_place_up_to_the_next_level_2_heading():
    before = "# Performance\n\nintro\n\n"
    after = "## Figure export\n\nexport text\n"
    old = cr.SECTION + "\n\nold table\n\n### Goals\n\nold goals\n```\n## not a heading, in a fence\n```\n\n"
    doc = before + old + after
    new = cr.replace_section(doc, SECTION)
    assert new == before + SECTION + "\n" + after
    assert cr.replace_section(new, SECTION) == new  # twice is once
    at_end = cr.replace_section(before + old, SECTION)
    assert at_end == before + SECTION
    with pytest.raises(ValueError):
        cr.replace_section(doc, "## Another section\n")


def test_arguments_are_parsed_and_checked():
    args = parse_args(["--students", "10,30", "--think", "0.5,2", "--pages", "reduction", "--no-write"], PAGES)
    assert args.students == [10, 30] and args.think == (0.5, 2.0) and args.pages == ["reduction"]
    assert args.visits == (1, 2) and args.moves == 5 and not args.seeds_own and args.soak == 0
    assert parse_args([], PAGES).pages == PAGES
    for bad in (["--students", "0"], ["--students", "61"], ["--students", "x"], ["--think", "3,1"],
                ["--pages", "nope"], ["--soak", "-1"], ["--soak", "99999"], ["--moves", "-1"], ["--visits", "2,1"],
                ["--port", "80"], ["--timeout", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad, PAGES)


def test_values_are_written_to_the_url_as_javascript_writes_them():
    assert [js_number(x) for x in (3.0, -9.0, 0.5, 0.1 + 0.2, 1e-6, 1e-7, 5e-5, 1e-8, 2.5e-10, 1e21)] == [
        "3", "-9", "0.5", "0.30000000000000004", "0.000001", "1e-7", "0.00005", "1e-8", "2.5e-10", "1e+21"]
    assert [decimals(s) for s in (1.0, 0.05, 0.1, 1e-7, 2.5)] == [0, 2, 1, 7, 1]


def test_proc_parsing_and_the_process_family():
    assert procmem.parse_stat_ppid("123 (python (worker) x) S 77 123 123 0") == 77
    assert procmem.parse_rollup("00-ff ---p 0 00:00 0 [rollup]\nRss:  1780 kB\nPss:   243 kB\nPss_Anon: 1 kB\n") == (
        243, 1780)
    assert procmem.parse_rollup("") == (0, 0)
    parent_of = {10: 1, 11: 10, 12: 11, 13: 10, 20: 1, 21: 20}
    assert procmem.descendants(10, parent_of) == [10, 11, 12, 13]
    assert procmem.descendants(99, parent_of) == [99]
