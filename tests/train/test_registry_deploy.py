"""`deepclf deploy training` names the registry's from-scratch models itself (deploy may not import train)."""

from deepclf.deploy.training import TRAIN_MODELS
from deepclf.train.models import MODELS


def test_deploy_offers_exactly_the_models_that_train_from_scratch() -> None:
    assert set(TRAIN_MODELS) == {name for name, spec in MODELS.items() if not spec.transfer}
