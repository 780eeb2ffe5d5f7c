import pytest


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test keeps its uploads and reports in its own folder."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root
