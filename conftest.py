"""Root conftest of the monorepo: every package's tests get the shared pytest plugin (gpu tests skip without CUDA)."""

pytest_plugins = ["kdrepro_shared.pytest_plugin"]
