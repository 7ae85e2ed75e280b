"""The claims kept from the identity provider: who claims which login at a centre, as the
login rules ask it after every login (a login claimed by two users is refused to both)."""

from fedhub import claims


def test_who_claims_a_login_follows_each_new_login_at_once(tmp_path):
    claims.configure(tmp_path)
    try:
        claims.record("ann", {"centre_logins": {"alpha": "shared"}, "groups": ["physics"]})
        claims.record("ben", {"centre_logins": {"alpha": "shared", "gamma": "ben"}})
        assert claims.claim_owner("centre_logins", "alpha", "shared") == {"ann", "ben"}
        assert claims.claim_owner("centre_logins", "gamma", "ben") == {"ben"}
        # ben's next login (within the same clock tick) no longer claims it: seen by the next question
        claims.record("ben", {"centre_logins": {"alpha": "ben"}})
        assert claims.claim_owner("centre_logins", "alpha", "shared") == {"ann"}
        assert claims.claim_owner("centre_logins", "gamma", "ben") == set()
        (tmp_path / "claims" / "ann.json").unlink()  # an operator removes a user's record
        assert claims.claim_owner("centre_logins", "alpha", "shared") == set()
        assert claims.claimed_login("centre_logins", "alpha", "ben") == "ben"
    finally:
        claims.configure(None)
    assert claims.claim_owner("centre_logins", "alpha", "ben") == set()
