from tests.artifacts.sources import source  # noqa: F401 - the fixture
