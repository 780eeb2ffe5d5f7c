import pytest
from rest_framework.test import APIClient

from tests.support import start_qcluster


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("seller", password="pw-seller-123")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("other", password="pw-other-123")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("boss", password="pw-boss-123", is_staff=True,
                                                 is_superuser=True)


def _client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(user):
    return _client_for(user)


@pytest.fixture
def other_api(other_user):
    return _client_for(other_user)


@pytest.fixture
def staff_api(staff_user):
    return _client_for(staff_user)


@pytest.fixture
def qcluster(transactional_db, tmp_path):
    """A real qcluster process on the test database; killed at the end of the test."""
    started = []

    def start(**env):
        process = start_qcluster(tmp_path, name=f"qcluster-{len(started)}", **env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The default hasher costs ~0.3 s a user; these tests check behaviour, not hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
