from scheduling_service.models import metadata
from scheduling_service.settings import Settings
from servicekit.migrations import run_env

run_env(metadata, lambda: Settings().sqlalchemy_url)
