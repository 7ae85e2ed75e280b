"""The spawn form: rendered from the federation, escaped, and read back through the same validation."""

import copy

import pytest

from fedhub.federation import parse_federation
from fedhub.spawning.form import form_to_options, options_from_form, render_options_form
from fedhub.request import OptionError
from helpers.federations import GOOD

pytestmark = pytest.mark.usefixtures("unix_users")  # north is a local centre: its logins are real accounts


def test_form_lists_centres_partitions_and_limits():
    html = render_options_form(parse_federation(GOOD), "alice")
    assert '<option value="north" selected>North</option>' in html
    assert 'data-centre="south"' in html and '"max_cores": 64' in html
    assert "up to 4 cores, 32G memory, 1-00:00:00 walltime, 2 x a100, 4 x dcu" in html


def test_form_escapes_operator_text():
    doc = copy.deepcopy(GOOD)
    doc["centres"][0]["name"] = "<script>alert(1)</script>"
    html = render_options_form(parse_federation(doc), "alice")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_form_preselects_the_previous_valid_choice():
    html = render_options_form(parse_federation(GOOD), "alice",
                               {"centre": "south", "partition": "batch", "cores": 3, "memory": "2G", "walltime": "01:00:00"})
    assert '<option value="south" selected>' in html and 'value="3"' in html


def test_form_fields_go_through_the_same_validation():
    fed = parse_federation(GOOD)
    data = {"_xsrf": ["x"], "centre": ["north"], "partition": ["cpu"], "cores": ["2"], "memory": ["1G"],
            "walltime": ["00:30:00"], "gpus": ["0"], "gpu_type": [""]}
    assert form_to_options(data) == {"centre": "north", "partition": "cpu", "cores": "2", "memory": "1G", "walltime": "00:30:00"}
    assert options_from_form(fed, data, "alice").cores == 2
    with pytest.raises(OptionError, match="choose 1-8"):
        options_from_form(fed, {**data, "cores": ["99"]}, "alice")
    with pytest.raises(OptionError, match="unknown option"):
        options_from_form(fed, {**data, "cmd": ["/bin/sh"]}, "alice")


def test_form_greys_out_centres_where_the_user_has_no_login_and_says_why():
    """Defect B1: the form offered centres where the user has no login; choosing one gave a 500."""
    html = render_options_form(parse_federation(GOOD), "zed1", allow_auto=True)
    assert ('<option value="north" disabled title="there is no such account; ask the centre for one">'
            "North (no login: there is no such account; ask the centre for one)</option>") in html
    assert '<option value="south" >south</option>' in html  # an ssh centre: its login node decides
    assert '"no_login": "there is no such account; ask the centre for one"' in html


def test_form_shows_what_the_hub_knows_beside_each_centre():
    from fedhub.spawning.form import allocation_text, centre_facts
    report = {"north": [{"centre": "north", "project": None, "level": "ok",
                         "core_hours": {"used": 2.5, "limit": 10.0}}],
              "south": [{"centre": "south", "project": None, "level": "used-up",
                         "core_hours": {"used": 11.0, "limit": 10.0}}]}
    facts = centre_facts(report, {"north": {"cpu": 3}}, {"north": 5})
    assert facts["north"] == {"idle_cores": {"cpu": 3}, "pending": 5, "allocation": {"": "7.5 of 10 core-h left"}}
    assert facts["south"]["allocation"] == {"": "allocation used up"}
    assert allocation_text({"core_hours": {"used": 1.25, "limit": None}}) == "1.2 core-h used, no limit"
    html = render_options_form(parse_federation(GOOD), "alice", facts=facts)
    assert '"idle_cores": {"cpu": 3}' in html and '"pending": 5' in html and '"allocation": {"": "7.5 of 10 core-h left"}' in html
    assert 'id="fedhub-centre-facts"' in html


def test_form_offers_the_saved_sessions_to_restore_and_escapes_them():
    from fedhub.spawning.snapshots import summary
    record = {"id": "ab12cd34ef56ab78", "saved": "2026-12-04T10:14:00+00:00", "centre_name": "Alpha <b>",
              "kernels": 3, "notebooks": 1}
    html = render_options_form(parse_federation(GOOD), "alice", snapshots=[{"id": record["id"],
                                                                            "summary": summary(record)}])
    assert 'name="restore"' in html and '<option value="ab12cd34ef56ab78" selected>Restore the session of ' in html
    assert "at Alpha &lt;b&gt; (3 kernels, 1 notebook)</option>" in html
    assert '<option value="">Start without it</option>' in html
    assert 'name="restore"' not in render_options_form(parse_federation(GOOD), "alice")
