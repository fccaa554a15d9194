# coord's image: the CLI, the Celery workers and Flower (see docker-compose.yml).
#
#   docker build -t coord .
#   docker run --rm -e COORD_REDIS_URL=redis://HOST:6379/0 -e COORD_FLOWER_AUTH=admin:s3cret \
#     -p 127.0.0.1:5555:5555 coord                      # Flower (the default command)
#
# Flower binds 0.0.0.0 inside the container, so `coord flower` refuses to start
# without COORD_FLOWER_AUTH=user:password; docker-compose.yml passes it through
# (placeholder admin:change-me when unset: set your own).
#
# Todos run as shell commands in the workers: add the tools your `run:` commands
# need (git, make, compilers) to a derived image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    XDG_CACHE_HOME=/tmp/coord-cache

WORKDIR /app
COPY pyproject.toml README.md ./
COPY coordination ./coordination
COPY workers ./workers
RUN pip install . && useradd --create-home --uid 1000 coord
# The default catalog; docker-compose.yml mounts the host's over it.
COPY ecosystem.yaml ./

# Not root: Celery warns about root workers, and todos write into checkouts.
USER coord
EXPOSE 5555
CMD ["coord", "flower", "--address", "0.0.0.0", "--port", "5555"]
