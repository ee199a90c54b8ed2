"""The Lambda zip, built once for every test that needs it (the build downloads its dependencies)."""

import pytest

from tests.utils.lambda_zip import build_bundle


@pytest.fixture(scope="session")
def lambda_bundle(tmp_path_factory):
    return build_bundle(tmp_path_factory.mktemp("lambda") / "edge_lambda.zip")
