"""The man pages: one header style, and every page renders with `man -l`
on an 80-column terminal without a single troff warning (issue 14)."""
import glob
import os
import re
import subprocess

import pytest

import mxb

PAGES = sorted(glob.glob(os.path.join(mxb.TOP, "docs/man/*.[1-8]")))


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_page_renders_without_warnings(page):
    r = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    assert "NAME" in r.stdout and "\\[" not in r.stdout


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_one_header_style(page):
    th = next(line for line in open(page) if line.startswith(".TH "))
    name, sec = os.path.basename(page).rsplit(".", 1)
    want = rf'^\.TH "?{re.escape(name.upper())}"? "?{sec}"? "2026" "mxbroker \d+\.\d+\.\d+" "mxbroker manual"$'
    assert re.match(want, th.strip()), th


def test_no_doubled_words():
    """e.g. ".B threads" followed by "query threads" renders "threads query threads"."""
    for page in PAGES:
        r = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="200", LC_ALL="C.UTF-8", MANPAGER="cat"))
        text = re.sub(r"\s+", " ", r.stdout)
        assert "threads query threads" not in text, page
