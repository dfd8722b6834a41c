"""The package as a user installs it (README, Set up): a clone installed with pip install -e . finds its
bundled models; an install of the code alone says, in one line, where they are."""
import os

import pytest

from agegender import model


def test_the_bundled_models_are_found_beside_the_package_of_a_clone():
    assert model.load_model(model.BUNDLED_MODEL)[1]["classes"]


def test_an_install_of_the_code_alone_says_where_the_bundled_models_are(tmp_path, monkeypatch):
    monkeypatch.setattr(model, "BUNDLED_MODELS", str(tmp_path / "models"))  # site-packages has no models/
    with pytest.raises(model.ModelError, match=r"models/improved: missing: .*pip install -e \..*--model"):
        model.load_model(os.path.join(tmp_path / "models", "improved"))
