"""The user's language (issue 26): which one a request gets, the catalogue holding every message
FedHub marks for translation, and the hub's pages and messages in Chinese."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from fedhub.federation import parse_federation
from fedhub.i18n import _, choose, use_language
from fedhub.i18n.catalogue import LOCALE_DIR
from fedhub.jobs.progress import pending_message
from fedhub.request import OptionError, parse_user_options
from fedhub.slurm.commands import JobInfo
from helpers.federations import GOOD

REPO = Path(__file__).resolve().parents[2]
PO = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "fedhub.po"
LAB_PO = REPO / "extensions" / "fedhub_lab" / "fedhub_lab" / "locale" / "zh_CN" / "LC_MESSAGES" / "fedhub_lab.po"


@pytest.mark.parametrize("cookie,header,expected", [
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
    (None, "zh", "zh_CN"),
    (None, "en-US,en;q=0.9,zh-CN;q=0.8", "en"),
    (None, "fr-FR,zh-Hans;q=0.5", "zh_CN"),
    (None, "zh-TW", "en"),  # no traditional-Chinese catalogue: English, not simplified
    (None, "de", "en"),
    (None, None, "en"),
    ("en", "zh-CN", "en"),  # the choice made on the hub's pages wins over the browser
    ("zh_CN", "en-US", "zh_CN"),
    ("klingon", "zh-CN", "zh_CN"),  # a cookie naming no language of FedHub's is ignored
])
def test_the_language_follows_the_choice_then_the_browser(cookie, header, expected):
    assert choose(cookie, header) == expected


def _ids(catalogue, translated_only=False):
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue
            if m.id and (not translated_only or (not m.fuzzy and all(
                m.string if isinstance(m.string, tuple) else [m.string])))}


@pytest.mark.parametrize("where,keywords,po", [
    # the hub: Python messages and Jinja templates
    ("spawners", ["_", "ngettext:1,2", "lazy"], PO),
    # the lab: the TypeScript's trans.__ / _n / _p (JupyterLab's ITranslator), the move's N_ sentences
    ("extensions/fedhub_lab", ["__", "_n:1,2", "_p:1c,2", "N_"], LAB_PO),
], ids=["hub", "lab"])
def test_every_marked_message_is_in_the_catalogue_and_translated(tmp_path, where, keywords, po):
    """pybabel extract over the sources, against the zh_CN catalogue: fails on a message missing,
    untranslated, or left in the catalogue after the code dropped it."""
    pot = tmp_path / "messages.pot"
    config = "fedhub/i18n/babel.cfg" if where == "spawners" else "babel.cfg"
    sources, defaults = ("fedhub", []) if where == "spawners" else (".", ["--no-default-keywords"])
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", config, *defaults,
                    *[f"-k{k}" for k in keywords], "--no-location", "-o", str(pot), sources],
                   cwd=REPO / where, check=True, capture_output=True)
    extracted = _ids(read_po(pot.open("rb")))
    catalogue = read_po(po.open("rb"))
    assert len(extracted) > 100
    assert sorted(extracted - _ids(catalogue, translated_only=True)) == [], f"not in {po.name}, or not translated"
    assert sorted(_ids(catalogue) - extracted) == [], "in the catalogue but no longer in the code"


def test_the_labs_catalogue_is_what_jupyterlabs_translator_reads():
    """The JSON the lab's build hook makes: the header the lab requires, two forms for a plural
    (or JupyterLab ignores the entry), and a place for every %N of the English."""
    hook = runpy.run_path(str(REPO / "extensions" / "fedhub_lab" / "hatch_catalogues.py"))
    data = hook["lab_catalogue"](LAB_PO)
    assert data[""]["language"] == "zh-CN" and data[""]["domain"] == "fedhub_lab"
    assert data[""]["plural_forms"].startswith("nplurals=1")
    assert data["Show Allocations"] == ["显示配额"]
    assert data["Kernel moved to %2 with %1 variable"] == ["内核已迁移到 %2，带有 %1 个变量", ""]
    for message in read_po(LAB_PO.open("rb")):
        if message.id:
            english = " ".join(message.id) if isinstance(message.id, tuple) else message.id
            key = message.id[0] if isinstance(message.id, tuple) else message.id
            assert set(re.findall(r"%\d", data[key][0])) == set(re.findall(r"%\d", english)), (key, data[key][0])


def test_the_installed_catalogue_is_compiled_from_the_po():
    compiled = read_mo((PO.with_suffix(".mo")).open("rb"))
    source = read_po(PO.open("rb"))
    def entries(catalogue):
        return {tuple(m.id) if isinstance(m.id, (list, tuple)) else m.id:
                tuple(m.string) if isinstance(m.string, (list, tuple)) else m.string for m in catalogue if m.id}
    assert entries(compiled) == entries(source), \
        "fedhub.mo is older than fedhub.po: run make deps (or reinstall FedHub)"


def test_an_option_refused_in_chinese_names_the_same_field(unix_users):
    federation = parse_federation(GOOD)
    use_language("zh_CN")
    try:
        with pytest.raises(OptionError) as refused:
            parse_user_options(federation, {"centre": "north", "cores": 999}, "alice")
    finally:
        use_language("en")
    assert refused.value.field == "cores"
    assert "超出了" in refused.value.message and "允许的范围" in refused.value.message, refused.value.message
    with pytest.raises(OptionError) as english:
        parse_user_options(federation, {"centre": "north", "cores": 999}, "alice")
    assert english.value.field == "cores" and "is outside what" in english.value.message


def test_slurms_pending_reason_is_explained_in_the_users_language():
    info = JobInfo(job_id="12", state="PENDING", reason="Resources", node=None, start_time=None)
    assert pending_message("Alpha", info) == "Pending at Alpha as job 12: waiting for Resources (the nodes it needs are busy)"
    use_language("zh_CN")
    try:
        assert pending_message("Alpha", info) == "在 Alpha 排队，作业号 12：等待 Resources（所需节点正忙）"
        assert _("Centre") == "中心"
    finally:
        use_language("en")


def test_no_translation_call_hides_inside_another():
    """pybabel reads only a call's own first argument: a trans.__ inside another's arguments
    would never reach the catalogue (how 'unknown' stayed English), so the lab has none."""
    call = re.compile(r"trans\.(__|_n|_p)\(")
    nested = []
    for path in sorted((REPO / "extensions" / "fedhub_lab" / "src").glob("*.ts*")):
        text = path.read_text()
        for found in call.finditer(text):
            depth, i, quote = 1, found.end(), None
            while depth and i < len(text):
                c = text[i]
                if quote:
                    i += c == "\\"
                    quote = None if c == quote else quote
                elif c in "'\"`":
                    quote = c
                else:
                    depth += {"(": 1, ")": -1}.get(c, 0)
                i += 1
            if call.search(text, found.end(), i):
                nested.append(f"{path.name}:{text.count(chr(10), 0, found.start()) + 1}")
    assert nested == [], f"move the inner call out (into a variable): {nested}"
