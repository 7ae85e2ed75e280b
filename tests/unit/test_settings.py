"""FedHub's settings win over JupyterHub's where both name one: a Slurm job may wait in a queue,
so FederatedSpawner's start_timeout (900 s) and http_timeout (120 s) replace Spawner's 60 and 30.
(The spawner's split into collaborators once put JupyterHub's first; a 100-student class start
then failed 61 students after 60 s.)"""

from __future__ import annotations

from jupyterhub.spawner import Spawner
from traitlets.config import Config

from fedhub.spawning.settings import SpawnerSettings
from fedhub.spawning.spawner import FederatedSpawner


def test_every_setting_fedhub_redefines_has_fedhubs_default():
    both = set(SpawnerSettings.class_trait_names(config=True)) & set(Spawner.class_trait_names(config=True))
    assert {"start_timeout", "http_timeout"} <= both
    for name in both:
        assert FederatedSpawner.class_traits()[name].default_value == \
            SpawnerSettings.class_traits()[name].default_value, name
    assert (FederatedSpawner.start_timeout.default_value, FederatedSpawner.http_timeout.default_value) == (900, 120)


def test_an_operator_still_sets_them_under_either_name():
    for section in ("FederatedSpawner", "Spawner"):
        config = Config({section: {"start_timeout": 1234}})
        assert FederatedSpawner(config=config, _deprecated_db_session=None).start_timeout == 1234, section
