"""The playbook tests' small project and receiver serve the consent tests too."""

from tests.playbooks.conftest import make_project, receiver  # noqa: F401
